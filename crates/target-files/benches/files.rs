//! Benchmark: the files target on a real directory. 1000 files of 1 KiB in 20
//! directories: plan + apply on an empty root, plan of an unchanged root, apply of 1000
//! updates, prune of all. Median of 5 runs. Prints figures and writes
//! bench/results/target-files-<date>.json.

use std::path::Path;
use std::time::Instant;

use driftless_model::{
    Content, DesiredSet, Inventory, Object, ObjectRef, Origin, SyncOptions, Target,
};
use driftless_target_files::FilesTarget;

const FILES: usize = 1000;
const RUNS: usize = 5;
const PRUNE: SyncOptions = SyncOptions {
    prune: true,
    force_conflicts: false,
};

fn desired(version: u8) -> DesiredSet {
    DesiredSet {
        revision: format!("v{version}"),
        objects: (0..FILES)
            .map(|i| {
                let name = format!("dir{:02}/file-{i:04}.conf", i % 20);
                let mut data = vec![b'a' + version; 1023];
                data.push(b'\n');
                Object {
                    id: ObjectRef::file(name.clone()),
                    content: Content::File {
                        data,
                        executable: i % 10 == 0,
                    },
                    origin: Origin {
                        file: name,
                        ..Origin::default()
                    },
                }
            })
            .collect(),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (v1, v2) = (desired(0), desired(1));
    let inv = Inventory { entries: v1.ids() };
    let empty = DesiredSet::default();
    let (mut create, mut noop, mut update, mut prune) = (vec![], vec![], vec![], vec![]);
    for _ in 0..RUNS {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = FilesTarget::new(dir.path().join("root"), None).expect("target");

        let t = Instant::now();
        let plan = target
            .plan(&v1, &Inventory::default(), PRUNE)
            .await
            .expect("plan");
        let cs = target.apply(&plan, PRUNE).await.expect("apply");
        create.push(ms(t));
        assert_eq!(cs.changes.len(), FILES);

        let t = Instant::now();
        let plan = target.plan(&v1, &inv, PRUNE).await.expect("plan");
        noop.push(ms(t));
        assert!(!plan.has_changes());

        let t = Instant::now();
        let plan = target.plan(&v2, &inv, PRUNE).await.expect("plan");
        target.apply(&plan, PRUNE).await.expect("apply");
        update.push(ms(t));

        let t = Instant::now();
        let plan = target.plan(&empty, &inv, PRUNE).await.expect("plan");
        target.apply(&plan, PRUNE).await.expect("apply");
        prune.push(ms(t));
        assert_eq!(std::fs::read_dir(target.root()).expect("root").count(), 0);
    }
    let (create, noop, update, prune) =
        (median(create), median(noop), median(update), median(prune));
    let per_s = |m: f64| FILES as f64 / m * 1000.0;
    println!("driftless files target, {FILES} files of 1 KiB in 20 dirs (median of {RUNS}):");
    println!(
        "  plan+apply, empty root   {create:8.1} ms = {:.0} files/s (each fsynced)",
        per_s(create)
    );
    println!(
        "  plan, nothing changed    {noop:8.1} ms = {:.0} files/s",
        per_s(noop)
    );
    println!(
        "  plan+apply, all updated  {update:8.1} ms = {:.0} files/s",
        per_s(update)
    );
    println!(
        "  plan+apply, prune all    {prune:8.1} ms = {:.0} files/s",
        per_s(prune)
    );

    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/results");
    std::fs::create_dir_all(&results).expect("mkdir bench/results");
    let json = serde_json::json!({
        "benchmark": "driftless files target: 1000 files of 1 KiB in 20 directories",
        "runs": RUNS,
        "create_ms": create,
        "plan_unchanged_ms": noop,
        "update_ms": update,
        "prune_ms": prune,
    });
    let path = results.join(format!("target-files-{date}.json"));
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&json).expect("json") + "\n",
    )
    .expect("write results");
    println!("wrote {}", path.display());
}
