//! API benchmarks: webhook-to-live latency for a files app, and `GET /api/v1/apps`
//! throughput with 1,000 apps under wrk. Prints figures and writes
//! bench/results/api-<date>.json. Run: `cargo bench -p driftless-server --bench api`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use driftless_engine::{Config, Engine, EngineOptions};
use support::*;

const PUSHES: usize = 100;
const APPS: usize = 1000;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn webhook_to_live() -> (f64, f64, f64) {
    let fixture = fixture("");
    let engine = fixture.start();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let config = fixture.config.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        driftless_server::serve_config(engine, &config, listener, None, async {
            let _ = stopped.await;
        })
        .await
        .expect("serves");
    });
    wait_for(Duration::from_secs(60), "first sync", || {
        (fixture.applied().as_deref() == Some("v1")).then_some(())
    })
    .await;
    let http = reqwest::Client::new();
    let body = push_payload(&fixture.repo(), "main");
    let mut latencies = Vec::new();
    for i in 0..PUSHES {
        let text = format!("v{}", i + 2);
        fixture.commit(&text);
        // Past the coalescing window, so every push is a leading-edge refresh.
        tokio::time::sleep(driftless_server::hooks::COALESCE).await;
        let start = Instant::now();
        let response = http
            .post(format!("{base}/hooks/github"))
            .header("x-hub-signature-256", github_signature(&body))
            .body(body.clone())
            .send()
            .await
            .expect("hook");
        assert_eq!(response.status(), 202);
        loop {
            if fixture.applied().as_deref() == Some(text.as_str()) {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "push {i} never applied"
            );
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        latencies.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let _ = stop.send(());
    let _ = served.await;
    latencies.sort_by(f64::total_cmp);
    let mean = latencies.iter().sum::<f64>() / latencies.len() as f64;
    (
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        mean,
    )
}

struct WrkResult {
    requests_per_sec: f64,
    latency: String,
    body_bytes: usize,
    raw: String,
}

async fn apps_throughput() -> WrkResult {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).expect("mkdir");
    git(&repo, &["init", "-q"]);
    std::fs::write(repo.join("index.html"), "v1").expect("write");
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "v1"]);
    let mut text = String::from("apps:\n");
    for i in 0..APPS {
        text.push_str(&format!(
            "  - name: app-{i}\n    source: {{ repo: repo, interval: 1h }}\n    target: {{ files: {{ root: out/{i} }} }}\n"
        ));
    }
    text.push_str(&format!(
        "server:\n  tokens:\n    - {{ name: bench, role: viewer, sha256: \"{}\" }}\n",
        driftless_server::hash_token(VIEWER)
    ));
    let config = Config::parse(&text, "bench.yaml", dir.path()).expect("config");
    // Apps act only when asked: the figure is the API's, not the reconcile loop's.
    let engine = Engine::start(
        &config,
        EngineOptions {
            state_dir: dir.path().join("state"),
            cache_dir: dir.path().join("cache"),
            background: false,
        },
    )
    .expect("engine");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        driftless_server::serve_config(engine, &config, listener, None, async {
            let _ = stopped.await;
        })
        .await
        .expect("serves");
    });
    let url = format!("http://{addr}/api/v1/apps");
    let body = reqwest::Client::new()
        .get(&url)
        .bearer_auth(VIEWER)
        .send()
        .await
        .expect("apps")
        .bytes()
        .await
        .expect("body");
    let apps: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(apps.as_array().map(Vec::len), Some(APPS));
    let output = tokio::process::Command::new("wrk")
        .args(["-t2", "-c16", "-d10s", "--latency", "-H"])
        .arg(format!("Authorization: Bearer {VIEWER}"))
        .arg(&url)
        .output()
        .await
        .expect("wrk is installed (apt-get install -y wrk)");
    let raw = String::from_utf8_lossy(&output.stdout).into_owned();
    let _ = stop.send(());
    let _ = served.await;
    let requests_per_sec = raw
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    let latency = raw
        .lines()
        .filter(|l| l.trim_start().starts_with("50%") || l.trim_start().starts_with("99%"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(", ");
    WrkResult {
        requests_per_sec,
        latency,
        body_bytes: body.len(),
        raw,
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (p50, p99, mean) = runtime.block_on(webhook_to_live());
    println!(
        "webhook-to-live over {PUSHES} pushes (files app, loopback): p50 {p50:.1} ms, p99 {p99:.1} ms, mean {mean:.1} ms"
    );
    let wrk = runtime.block_on(apps_throughput());
    println!(
        "GET /api/v1/apps with {APPS} apps ({} bytes), wrk -t2 -c16 -d10s: {:.0} req/s; latency {}",
        wrk.body_bytes, wrk.requests_per_sec, wrk.latency
    );
    let date = String::from_utf8(
        std::process::Command::new("date")
            .args(["-u", "+%Y-%m-%d"])
            .output()
            .expect("date")
            .stdout,
    )
    .expect("utf8");
    let results = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/results");
    std::fs::create_dir_all(&results).expect("results dir");
    let path = results.join(format!("api-{}.json", date.trim()));
    let json = serde_json::json!({
        "webhook_to_live_ms": {"pushes": PUSHES, "p50": p50, "p99": p99, "mean": mean},
        "get_apps": {
            "apps": APPS,
            "body_bytes": wrk.body_bytes,
            "wrk": "-t2 -c16 -d10s",
            "requests_per_sec": wrk.requests_per_sec,
            "latency_percentiles": wrk.latency,
            "raw": wrk.raw,
        },
        "machine": "2 cores, loopback",
    });
    std::fs::write(&path, serde_json::to_string_pretty(&json).expect("json"))
        .expect("write results");
    println!("wrote {}", path.display());
}
