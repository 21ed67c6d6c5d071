//! A real crash: a child process writes syncs and inventories as fast as it can and is
//! killed with SIGKILL at a random moment; the parent then reopens the database and
//! checks that nothing is torn and nothing acknowledged is lost.
//!
//! The child is this test binary itself, started on the ignored test
//! `crash_child_writer` with `CRASH_CHILD_STATE` set.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use driftless_model::{Action, ChangeSet, Inventory, ObjectRef};
use driftless_store::{NewSync, Store, SyncOutcome, SyncResult, Trigger};

const CHILD_ENV: &str = "CRASH_CHILD_STATE";
const APPS: [&str; 3] = ["alpha", "beta", "gamma"];

/// How many entries version `v` of an app's inventory has: varies so that a torn write
/// could not pass for a whole one.
fn size_of_version(v: u64) -> u64 {
    1 + (v * 37) % 300
}

/// Version `v` of `app`'s inventory: every entry names the version.
fn inventory_version(app: &str, v: u64) -> Inventory {
    Inventory {
        entries: (0..size_of_version(v))
            .map(|i| ObjectRef::file(format!("{app}/v{v}/file-{i}")))
            .collect(),
    }
}

/// Which whole version an inventory is, or a description of how it is torn.
fn which_version(app: &str, inv: &Inventory) -> Result<Option<u64>, String> {
    if inv.entries.is_empty() {
        return Ok(None);
    }
    let versions: BTreeSet<u64> = inv
        .entries
        .iter()
        .map(|e| {
            let rest = e
                .name
                .strip_prefix(&format!("{app}/v"))
                .ok_or("foreign entry")?;
            let v = rest.split('/').next().ok_or("no version")?;
            v.parse::<u64>().map_err(|_| "bad version")
        })
        .collect::<Result<_, _>>()?;
    if versions.len() != 1 {
        return Err(format!("{app}: entries of several versions {versions:?}"));
    }
    let v = *versions.first().expect("one version");
    if *inv != inventory_version(app, v) {
        return Err(format!(
            "{app}: version {v} has {} entries, expected {}",
            inv.entries.len(),
            size_of_version(v)
        ));
    }
    Ok(Some(v))
}

fn changes_for(v: u64) -> ChangeSet {
    let mut cs = ChangeSet::default();
    for i in 0..(v % 7) {
        cs.push(
            ObjectRef::file(format!("v{v}/changed-{i}")),
            Action::Configured,
            None,
        );
    }
    cs
}

/// The child's work: loop over versions, for each app begin a sync, save the
/// inventory, finish the sync, and print `done <app> <version>` once all three calls
/// have returned. Runs until killed.
#[test]
#[ignore = "run only as the child of the crash test"]
fn crash_child_writer() {
    let Ok(state) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = Store::open(Path::new(&state)).expect("child opens the store");
    // Each app continues after the last version an earlier child began for it.
    let last: Vec<u64> = APPS
        .iter()
        .map(|app| {
            store
                .last_sync(app, false)
                .expect("read")
                .map_or(0, |s| s.revision.parse().expect("numeric revision"))
        })
        .collect();
    let start = last.iter().min().copied().unwrap_or(0) + 1;
    println!("ready {start}");
    for v in start.. {
        for (app, last) in APPS.iter().copied().zip(&last) {
            if v <= *last {
                continue;
            }
            let id = store
                .begin_sync(&NewSync {
                    app: app.into(),
                    revision: v.to_string(),
                    commit: None,
                    trigger: Trigger::Poll,
                    requested_by: None,
                })
                .expect("begin");
            store
                .save_inventory(app, &inventory_version(app, v))
                .expect("save");
            store
                .finish_sync(
                    id,
                    &SyncOutcome {
                        result: SyncResult::Succeeded,
                        change_set: changes_for(v),
                        error: None,
                        post_sync_output: Some(format!("output of {v}")),
                    },
                )
                .expect("finish");
            println!("done {app} {v}");
        }
    }
}

/// A cheap random number from the clock: enough to vary the kill point between runs.
fn random_below(n: u64) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    u64::from(nanos.wrapping_mul(2_654_435_761)) % n
}

#[test]
fn a_store_killed_mid_write_reopens_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary path");
    let mut all_interrupted = BTreeSet::new();
    for round in 0..6 {
        let mut child = Command::new(&exe)
            .args([
                "crash_child_writer",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        // Let the child get going, then kill it after a random pause, so that the kill
        // lands at a different point of a write each round (not just after a print).
        let get_going = 3 + random_below(20);
        let mut acked: Vec<(String, u64)> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        let parse = |line: String, acked: &mut Vec<(String, u64)>| {
            if let Some(rest) = line.strip_prefix("done ") {
                let (app, v) = rest.split_once(' ').expect("done <app> <v>");
                acked.push((app.to_owned(), v.parse().expect("version")));
            }
        };
        while (acked.len() as u64) < get_going {
            assert!(Instant::now() < deadline, "child too slow");
            let line = lines
                .next()
                .expect("child exited early")
                .expect("read child output");
            parse(line, &mut acked);
        }
        std::thread::sleep(Duration::from_micros(random_below(30_000)));
        // SIGKILL on Unix: no destructors, no flush, no rollback.
        child.kill().expect("kill child");
        let status = child.wait().expect("reap child");
        assert!(!status.success(), "round {round}: the child was killed");
        // Everything the child printed before it died was acknowledged by the store.
        for line in lines {
            parse(line.expect("read child output"), &mut acked);
        }

        let store = Store::open(dir.path()).expect("reopens cleanly after kill -9");
        let interrupted = store.interrupt_unfinished().expect("interrupt");
        assert!(
            interrupted.len() <= 1,
            "round {round}: at most the one sync in flight, got {}",
            interrupted.len()
        );
        all_interrupted.extend(interrupted.iter().map(|s| s.id));
        for app in APPS {
            let inv = store.inventory(app).expect("read inventory");
            let version = which_version(app, &inv)
                .unwrap_or_else(|torn| panic!("round {round}: torn inventory: {torn}"));
            // Every acknowledged save is there (or a later one).
            let last_acked = acked
                .iter()
                .filter(|(a, _)| a == app)
                .map(|(_, v)| *v)
                .max();
            if let Some(acked_v) = last_acked {
                let v = version.expect("an acknowledged inventory exists");
                assert!(
                    v >= acked_v,
                    "round {round}: {app} has v{v}, acked v{acked_v}"
                );
            }
            // History rows are whole: each finished row has its change set and output;
            // revisions go down one by one, newest first.
            let hist = store.history(app, 100_000).expect("history");
            for pair in hist.windows(2) {
                let (newer, older) = (&pair[0], &pair[1]);
                let (n, o): (u64, u64) = (
                    newer.revision.parse().expect("number"),
                    older.revision.parse().expect("number"),
                );
                assert!(
                    n == o + 1,
                    "round {round}: {app} history skips from {o} to {n}"
                );
                assert!(newer.id > older.id);
            }
            for rec in &hist {
                let v: u64 = rec.revision.parse().expect("number");
                match rec.result {
                    SyncResult::Succeeded => {
                        assert_eq!(rec.change_set, changes_for(v), "round {round}");
                        assert_eq!(
                            rec.post_sync_output.as_deref(),
                            Some(format!("output of {v}").as_str())
                        );
                        assert!(rec.finished_at.is_some());
                    }
                    SyncResult::Interrupted => {
                        assert!(all_interrupted.contains(&rec.id), "round {round}");
                        assert_eq!(rec.change_set, ChangeSet::default());
                    }
                    other => panic!("round {round}: sync {} left {other:?}", rec.id),
                }
                // The inventory saved for v is there whenever its sync finished.
                if rec.result == SyncResult::Succeeded {
                    assert!(version.is_some_and(|iv| iv >= v), "round {round}");
                }
            }
        }
        drop(store);
    }
    eprintln!(
        "crash test: 6 kills, {} syncs found interrupted mid-write",
        all_interrupted.len()
    );
}
