//! Benchmark: 50 overlays × 20 resources over shared bases. For each overlay,
//! `kustomize build` (one process per overlay, as Argo CD's repo-server does) against
//! driftless in process. Median of 5 runs with min and max; writes
//! bench/results/kustomize-<date>.json.
//!
//! Needs the real kustomize: $DRIFTLESS_TESTENV_BIN/kustomize or $DRIFTLESS_KUSTOMIZE.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const OVERLAYS: usize = 50;
const BASES: usize = 4;
const PER_BASE: usize = 5; // 4 bases × 5 = 20 resources per overlay
const RUNS: usize = 5;

fn write(p: &Path, s: &str) {
    std::fs::create_dir_all(p.parent().expect("has parent")).expect("mkdir");
    std::fs::write(p, s).expect("write");
}

fn make_tree(root: &Path) {
    for b in 0..BASES {
        let dir = root.join(format!("bases/b{b}"));
        let mut k = String::from("resources:\n");
        for r in 0..PER_BASE {
            let name = format!("app{b}-{r}");
            k.push_str(&format!("- {name}.yaml\n"));
            let doc = if r < 3 {
                format!(
                    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  labels:\n    app: {name}\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n      - name: main\n        image: nginx:1.25\n        envFrom:\n        - configMapRef:\n            name: settings\n        ports:\n        - containerPort: 8080\n"
                )
            } else {
                format!(
                    "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  selector:\n    app: {name}\n  ports:\n  - port: 80\n    targetPort: 8080\n"
                )
            };
            write(&dir.join(format!("{name}.yaml")), &doc);
        }
        write(&dir.join("kustomization.yaml"), &k);
    }
    for o in 0..OVERLAYS {
        let dir = root.join(format!("overlays/o{o}"));
        let mut k = String::from("resources:\n");
        for b in 0..BASES {
            k.push_str(&format!("- ../../bases/b{b}\n"));
        }
        k.push_str(&format!(
            "namespace: team-{o}\nnamePrefix: o{o}-\ncommonLabels:\n  overlay: o{o}\nimages:\n- name: nginx\n  newTag: \"1.{o}\"\nreplicas:\n- name: app0-0\n  count: 3\nconfigMapGenerator:\n- name: settings\n  literals:\n  - OVERLAY=o{o}\n  - LEVEL=info\npatches:\n- target:\n    kind: Deployment\n  patch: |-\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata:\n      name: any\n    spec:\n      template:\n        spec:\n          containers:\n          - name: main\n            resources:\n              limits:\n                memory: 128Mi\n"
        ));
        write(&dir.join("kustomization.yaml"), &k);
    }
}

fn stats(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(v[v.len() / 2]), ms(v[0]), ms(v[v.len() - 1]))
}

fn main() {
    let bin = common::kustomize_bin();
    let version = Command::new(&bin)
        .arg("version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let tmp =
        std::env::temp_dir().join(format!("driftless-kustomize-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    make_tree(&tmp);
    let tree = common::DirTree(tmp.clone());

    // Sanity: both agree on every overlay before timing.
    for o in 0..OVERLAYS {
        let dir = format!("overlays/o{o}");
        let out = Command::new(&bin)
            .arg("build")
            .arg(tmp.join(&dir))
            .output()
            .expect("run kustomize");
        assert!(
            out.status.success(),
            "kustomize failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ours = driftless_kustomize::build(&tree, &dir)
            .expect("driftless build")
            .to_yaml();
        assert_eq!(
            ours,
            String::from_utf8_lossy(&out.stdout),
            "outputs differ for {dir}"
        );
    }

    let mut kz = Vec::new();
    let mut dl = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        for o in 0..OVERLAYS {
            let out = Command::new(&bin)
                .arg("build")
                .arg(tmp.join(format!("overlays/o{o}")))
                .output()
                .expect("run kustomize");
            assert!(out.status.success());
        }
        kz.push(t.elapsed());
        let t = Instant::now();
        for o in 0..OVERLAYS {
            let b = driftless_kustomize::build(&tree, &format!("overlays/o{o}")).expect("build");
            std::hint::black_box(b.to_yaml());
        }
        dl.push(t.elapsed());
    }
    let _ = std::fs::remove_dir_all(&tmp);
    let (km, kmin, kmax) = stats(kz);
    let (dm, dmin, dmax) = stats(dl);
    let ratio = km / dm;
    println!(
        "kustomize build ({version}), {OVERLAYS} overlays x {} resources, per full pass:",
        BASES * PER_BASE
    );
    println!(
        "  kustomize  median {km:9.1} ms  (min {kmin:.1}, max {kmax:.1})  = {:.2} ms/overlay",
        km / OVERLAYS as f64
    );
    println!(
        "  driftless  median {dm:9.1} ms  (min {dmin:.1}, max {dmax:.1})  = {:.3} ms/overlay",
        dm / OVERLAYS as f64
    );
    println!("  speed-up   {ratio:.1}x");

    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/results");
    std::fs::create_dir_all(&results).expect("mkdir bench/results");
    let json = serde_json::json!({
        "benchmark": "kustomize build per overlay vs driftless in-process",
        "kustomize_version": version,
        "overlays": OVERLAYS,
        "resources_per_overlay": BASES * PER_BASE,
        "runs": RUNS,
        "kustomize_ms": {"median": km, "min": kmin, "max": kmax, "per_overlay_median": km / OVERLAYS as f64},
        "driftless_ms": {"median": dm, "min": dmin, "max": dmax, "per_overlay_median": dm / OVERLAYS as f64},
        "speedup_median": ratio,
        "outputs_identical": true,
    });
    let path = results.join(format!("kustomize-{date}.json"));
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&json).expect("json") + "\n",
    )
    .expect("write results");
    println!("wrote {}", path.display());
}
