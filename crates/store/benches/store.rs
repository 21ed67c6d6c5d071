//! Benchmark: the store on a real file (WAL). Sync rows, events, inventory saves (fsynced)
//! and history reads; median of 5 runs. Prints figures and writes
//! bench/results/store-<date>.json.

use std::path::Path;
use std::time::Instant;

use driftless_model::{Action, ChangeSet, Inventory, ObjectRef};
use driftless_store::{NewEvent, NewSync, Severity, Store, SyncOutcome, SyncResult, Trigger};

const RUNS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median milliseconds of `RUNS` runs of `f`, each on a fresh store.
fn measure(mut f: impl FnMut(&Store)) -> f64 {
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let t = Instant::now();
        f(&store);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    median(times)
}

fn sync(app: &str, i: usize) -> NewSync {
    NewSync {
        app: app.into(),
        revision: format!("{i:040x}"),
        commit: None,
        trigger: Trigger::Poll,
        requested_by: None,
    }
}

fn outcome() -> SyncOutcome {
    let mut cs = ChangeSet::default();
    for i in 0..20 {
        cs.push(
            ObjectRef::file(format!("etc/file-{i}.conf")),
            Action::Configured,
            None,
        );
    }
    SyncOutcome {
        result: SyncResult::Succeeded,
        change_set: cs,
        error: None,
        post_sync_output: None,
    }
}

fn inventory(n: usize) -> Inventory {
    Inventory {
        entries: (0..n)
            .map(|i| ObjectRef {
                group: "apps".into(),
                kind: "Deployment".into(),
                namespace: format!("ns{}", i % 10),
                name: format!("object-{i}"),
            })
            .collect(),
    }
}

fn main() {
    const SYNCS: usize = 1000;
    const EVENTS: usize = 2000;
    const BIG: usize = 10_000;
    const SMALL_SAVES: usize = 100;

    let syncs_ms = measure(|s| {
        let out = outcome();
        for i in 0..SYNCS {
            let id = s.begin_sync(&sync("web", i)).expect("begin");
            s.finish_sync(id, &out).expect("finish");
        }
    });
    let events_ms = measure(|s| {
        for i in 0..EVENTS {
            s.record_event(&NewEvent {
                app: Some("web".into()),
                kind: "drift-detected".into(),
                severity: Severity::Warning,
                message: format!("etc/file-{i}.conf changed outside Git"),
                object: Some(ObjectRef::file(format!("etc/file-{i}.conf"))),
                revision: None,
            })
            .expect("event");
        }
    });
    let big = inventory(BIG);
    let big_save_ms = measure(|s| s.save_inventory("web", &big).expect("save"));
    let small = inventory(20);
    let small_saves_ms = measure(|s| {
        for _ in 0..SMALL_SAVES {
            s.save_inventory("web", &small).expect("save");
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    store.save_inventory("web", &big).expect("save");
    let out = outcome();
    for i in 0..5000 {
        let id = store
            .begin_sync(&sync(if i % 2 == 0 { "web" } else { "api" }, i))
            .expect("begin");
        store.finish_sync(id, &out).expect("finish");
    }
    let mut reads = Vec::new();
    let mut hist = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        std::hint::black_box(store.inventory("web").expect("read"));
        reads.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        for _ in 0..100 {
            std::hint::black_box(store.history("web", 50).expect("history"));
        }
        hist.push(t.elapsed().as_secs_f64() * 1000.0 / 100.0);
    }
    let inv_read_ms = median(reads);
    let history_ms = median(hist);

    println!(
        "driftless-store on {} (median of {RUNS}):",
        dir.path().display()
    );
    println!(
        "  {SYNCS} syncs begin+finish     {syncs_ms:8.1} ms  = {:.0} syncs/s",
        SYNCS as f64 / syncs_ms * 1000.0
    );
    println!(
        "  {EVENTS} events                 {events_ms:8.1} ms  = {:.0} events/s",
        EVENTS as f64 / events_ms * 1000.0
    );
    println!("  save inventory {BIG} entries {big_save_ms:8.1} ms (fsynced)");
    println!(
        "  save inventory 20 entries   {:8.2} ms per save (fsynced)",
        small_saves_ms / SMALL_SAVES as f64
    );
    println!("  read inventory {BIG} entries {inv_read_ms:8.1} ms");
    println!("  history(app, 50) of 5000 rows {history_ms:6.2} ms");

    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/results");
    std::fs::create_dir_all(&results).expect("mkdir bench/results");
    let json = serde_json::json!({
        "benchmark": "driftless-store on a real file, WAL",
        "runs": RUNS,
        "syncs": {"count": SYNCS, "median_ms": syncs_ms, "per_second": SYNCS as f64 / syncs_ms * 1000.0},
        "events": {"count": EVENTS, "median_ms": events_ms, "per_second": EVENTS as f64 / events_ms * 1000.0},
        "save_inventory_10k_ms": big_save_ms,
        "save_inventory_20_ms_each": small_saves_ms / SMALL_SAVES as f64,
        "read_inventory_10k_ms": inv_read_ms,
        "history_50_of_5000_ms": history_ms,
    });
    let path = results.join(format!("store-{date}.json"));
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&json).expect("json") + "\n",
    )
    .expect("write results");
    println!("wrote {}", path.display());
}
