//! How long the test environment takes: `testenv/build` when up to date, `testenv/run`
//! until ready and until torn down, and a namespace round trip on the shared cluster.
//! Prints the figures and writes bench/results/testenv-<date>.json.
//!
//! Run: `DRIFTLESS_TESTENV_BIN=$(testenv/build | tail -n1) cargo bench -p driftless-testenv`

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use driftless_testenv::{BIN_ENV, KUBECONFIG_ENV, cluster, tool};

const RUNS: usize = 3;
const NAMESPACES: usize = 20;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// (until ready, until exit) for `testenv/run -- true`.
fn one_run(bin: &Path) -> (Duration, Duration) {
    let start = Instant::now();
    let mut child = Command::new("bash")
        .arg(repo().join("testenv/run"))
        .args(["--", "true"])
        .env(BIN_ENV, bin)
        .env_remove(KUBECONFIG_ENV)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start testenv/run");
    let stderr = BufReader::new(child.stderr.take().expect("piped"));
    let mut ready = None;
    for line in stderr.lines().map_while(Result::ok) {
        if ready.is_none() && line.contains("control plane ready") {
            ready = Some(start.elapsed());
        }
    }
    let status = child.wait().expect("wait");
    assert!(status.success(), "testenv/run failed: {status}");
    (ready.expect("a ready line"), start.elapsed())
}

fn main() {
    let bin = tool("kubectl").parent().expect("a dir").to_owned();

    let build: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let out = Command::new("bash")
                .arg(repo().join("testenv/build"))
                .output()
                .expect("build");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            ms(t.elapsed())
        })
        .collect();
    let build_ms = median(build);

    let runs: Vec<_> = (0..RUNS).map(|_| one_run(&bin)).collect();
    let ready_ms = median(runs.iter().map(|r| ms(r.0)).collect());
    let total_ms = median(runs.iter().map(|r| ms(r.1)).collect());
    let teardown_ms = median(runs.iter().map(|r| ms(r.1 - r.0)).collect());

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let namespace_ms = runtime.block_on(async {
        let cluster = cluster().await;
        let mut times = Vec::new();
        for _ in 0..NAMESPACES {
            let t = Instant::now();
            let ns = cluster.namespace("bench").await;
            ns.cleanup().await.expect("cleanup");
            times.push(ms(t.elapsed()));
        }
        median(times)
    });

    println!("testenv (median)");
    println!("  testenv/build, up to date        {build_ms:8.1} ms");
    println!("  testenv/run until ready           {ready_ms:8.0} ms  ({RUNS} runs)");
    println!("  testenv/run teardown              {teardown_ms:8.0} ms");
    println!("  testenv/run -- true, total        {total_ms:8.0} ms");
    println!(
        "  namespace create + delete request {namespace_ms:8.1} ms  ({NAMESPACES} namespaces)"
    );

    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    let results = repo().join("bench/results");
    std::fs::create_dir_all(&results).expect("mkdir bench/results");
    let json = serde_json::json!({
        "benchmark": "driftless-testenv: build check, control plane start/stop, namespace round trip",
        "runs": RUNS,
        "build_up_to_date_ms": build_ms,
        "run_until_ready_ms": ready_ms,
        "run_teardown_ms": teardown_ms,
        "run_true_total_ms": total_ms,
        "namespace_create_delete_ms": namespace_ms,
        "namespaces": NAMESPACES,
    });
    let path = results.join(format!("testenv-{date}.json"));
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&json).expect("json") + "\n",
    )
    .expect("write");
    println!("wrote {}", path.display());
}
