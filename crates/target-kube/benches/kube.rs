//! Benchmark: the Kubernetes target against the testenv control plane (etcd +
//! kube-apiserver + kube-controller-manager on loopback). 200 ConfigMaps of ~1 KiB in
//! a fresh namespace: plan + apply on an empty namespace, plan of an unchanged
//! namespace, plan + apply of 200 updates, prune of all. Median of 3 runs. Prints
//! figures and writes bench/results/target-kube-<date>.json.
//!
//! Run: `DRIFTLESS_TESTENV_BIN=$(testenv/build | tail -n1) cargo bench -p driftless-target-kube`.

use std::path::Path;
use std::time::Instant;

use driftless_model::{
    Action, Content, DesiredSet, Inventory, Object, ObjectRef, Origin, SyncOptions, Target,
};
use driftless_target_kube::KubeTarget;

const OBJECTS: usize = 200;
const RUNS: usize = 3;
const PRUNE: SyncOptions = SyncOptions {
    prune: true,
    force_conflicts: false,
};

fn desired(version: u8) -> DesiredSet {
    DesiredSet {
        revision: format!("v{version}"),
        objects: (0..OBJECTS)
            .map(|i| {
                let name = format!("cm-{i:04}");
                let value = String::from_utf8(vec![b'a' + version; 1000]).expect("ascii");
                Object {
                    id: ObjectRef {
                        group: String::new(),
                        kind: "ConfigMap".into(),
                        namespace: String::new(),
                        name: name.clone(),
                    },
                    content: Content::Manifest(serde_json::json!({
                        "apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": name}, "data": {"value": value}
                    })),
                    origin: Origin {
                        file: format!("{name}.yaml"),
                        line: 1,
                        column: 1,
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
    let cluster = driftless_testenv::cluster().await;
    let (v1, v2) = (desired(0), desired(1));
    let empty = DesiredSet::default();
    let (mut create, mut noop, mut update, mut prune) = (vec![], vec![], vec![], vec![]);
    for _ in 0..RUNS {
        let ns = cluster.namespace("bench").await;
        let target = KubeTarget::new(cluster.client(), "bench", Some(ns.name())).expect("target");

        let t = Instant::now();
        let plan = target
            .plan(&v1, &Inventory::default(), PRUNE)
            .await
            .expect("plan");
        let cs = target.apply(&plan, PRUNE).await.expect("apply");
        create.push(ms(t));
        assert_eq!(cs.count(Action::Created), OBJECTS);
        let inv = Inventory {
            entries: plan.tasks.iter().map(|t| t.id.clone()).collect(),
        };

        let t = Instant::now();
        let plan = target.plan(&v1, &inv, PRUNE).await.expect("plan");
        noop.push(ms(t));
        assert!(!plan.has_changes());

        let t = Instant::now();
        let plan = target.plan(&v2, &inv, PRUNE).await.expect("plan");
        let cs = target.apply(&plan, PRUNE).await.expect("apply");
        update.push(ms(t));
        assert_eq!(cs.count(Action::Configured), OBJECTS);

        let t = Instant::now();
        let plan = target.plan(&empty, &inv, PRUNE).await.expect("plan");
        let cs = target.apply(&plan, PRUNE).await.expect("apply");
        prune.push(ms(t));
        assert_eq!(cs.count(Action::Deleted), OBJECTS);
        ns.cleanup().await.expect("cleanup");
    }
    let (create, noop, update, prune) =
        (median(create), median(noop), median(update), median(prune));
    let per_s = |m: f64| OBJECTS as f64 / m * 1000.0;
    println!(
        "driftless kube target, {OBJECTS} ConfigMaps of 1 KiB, testenv cluster (median of {RUNS}):"
    );
    println!(
        "  plan+apply, all created  {create:8.1} ms = {:.0} objects/s",
        per_s(create)
    );
    println!(
        "  plan, nothing changed    {noop:8.1} ms = {:.0} objects/s",
        per_s(noop)
    );
    println!(
        "  plan+apply, all updated  {update:8.1} ms = {:.0} objects/s",
        per_s(update)
    );
    println!(
        "  plan+apply, prune all    {prune:8.1} ms = {:.0} objects/s",
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
        "benchmark": "driftless kube target: 200 ConfigMaps of 1 KiB, testenv control plane on loopback",
        "runs": RUNS,
        "create_ms": create,
        "plan_unchanged_ms": noop,
        "update_ms": update,
        "prune_ms": prune,
    });
    let path = results.join(format!("target-kube-{date}.json"));
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&json).expect("json") + "\n",
    )
    .expect("write results");
    println!("wrote {}", path.display());
}
