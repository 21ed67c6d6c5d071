//! Throughput of `render_manifests`: 5,000 generated manifests (ConfigMaps and
//! Deployments of realistic size) in 50 files, read from an in-memory tree so that only
//! parsing, validation and conversion are measured. Prints manifests/s (median of 5
//! runs, with min and max) and writes bench/results/render-<date>.json.
//!
//! Run with `cargo bench -p driftless-render`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::MemTree;
use driftless_render::{Limits, render_manifests, to_json, to_yaml};

const FILES: usize = 50;
const PER_FILE: usize = 100;
const RUNS: usize = 5;

fn configmap(i: usize) -> String {
    let mut s = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-{i}\n  namespace: team-{ns}\n  labels:\n    app.kubernetes.io/name: svc-{i}\n    app.kubernetes.io/part-of: shop\n  annotations:\n    driftless.dev/wave: \"1\"\ndata:\n",
        ns = i % 7
    );
    for k in 0..12 {
        s.push_str(&format!("  KEY_{k}: \"value-{i}-{k}\"\n"));
    }
    s.push_str("  app.properties: |\n    server.port=8080\n    logging.level=info\n    feature.flags=a,b,c\n    cache.ttl=300\n");
    s
}

fn deployment(i: usize) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: svc-{i}
  namespace: team-{ns}
  labels:
    app.kubernetes.io/name: svc-{i}
    app.kubernetes.io/version: "1.4.{i}"
spec:
  replicas: 3
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      app.kubernetes.io/name: svc-{i}
  strategy:
    type: RollingUpdate
    rollingUpdate: {{maxSurge: 25%, maxUnavailable: 0}}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: svc-{i}
      annotations:
        prometheus.io/scrape: "true"
        prometheus.io/port: "9090"
    spec:
      serviceAccountName: svc-{i}
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
      containers:
      - name: app
        image: registry.example.com/shop/svc-{i}:1.4.{i}
        imagePullPolicy: IfNotPresent
        args: ["--port=8080", "--metrics-port=9090", "--log-format=json"]
        ports:
        - {{name: http, containerPort: 8080, protocol: TCP}}
        - {{name: metrics, containerPort: 9090, protocol: TCP}}
        env:
        - name: POD_NAMESPACE
          valueFrom:
            fieldRef: {{fieldPath: metadata.namespace}}
        - name: CONFIG_HASH
          value: "{i:08x}"
        envFrom:
        - configMapRef: {{name: config-{i}}}
        resources:
          requests: {{cpu: 100m, memory: 128Mi}}
          limits: {{cpu: "1", memory: 512Mi}}
        readinessProbe:
          httpGet: {{path: /ready, port: http}}
          periodSeconds: 5
        livenessProbe:
          httpGet: {{path: /healthz, port: http}}
          initialDelaySeconds: 10
        volumeMounts:
        - {{name: tmp, mountPath: /tmp}}
      volumes:
      - name: tmp
        emptyDir: {{}}
"#,
        ns = i % 7
    )
}

fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
        / 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn stats(mut xs: Vec<f64>) -> (f64, f64, f64) {
    xs.sort_by(f64::total_cmp);
    (xs[xs.len() / 2], xs[0], xs[xs.len() - 1])
}

fn main() {
    let mut tree = MemTree::new();
    let mut bytes = 0usize;
    for f in 0..FILES {
        let docs: Vec<String> = (0..PER_FILE)
            .map(|j| {
                let i = f * PER_FILE + j;
                if i.is_multiple_of(2) {
                    configmap(i)
                } else {
                    deployment(i)
                }
            })
            .collect();
        let text = docs.join("---\n");
        bytes += text.len();
        tree = tree.file(&format!("apps/shop/part-{f:02}/manifests.yaml"), &text);
    }
    let total = FILES * PER_FILE;
    let limits = Limits::default();

    // Warm-up, and a check that the bench measures a successful render.
    let objects =
        render_manifests(&tree, "apps/shop", &limits).expect("generated manifests render");
    assert_eq!(objects.len(), total);

    let mut rates = Vec::new();
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let objects = render_manifests(&tree, "apps/shop", &limits).expect("render");
        let elapsed = start.elapsed();
        assert_eq!(objects.len(), total);
        times.push(elapsed.as_secs_f64());
        rates.push(total as f64 / elapsed.as_secs_f64());
    }
    let (median, min, max) = stats(rates);
    let (t_median, _, _) = stats(times);
    let mib_s = bytes as f64 / (1024.0 * 1024.0) / t_median;

    let mut emit_times = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let y = to_yaml(&objects);
        let j = to_json(&objects);
        std::hint::black_box((y, j));
        emit_times.push(start.elapsed());
    }
    emit_times.sort();
    let emit_median: Duration = emit_times[RUNS / 2];

    // Other builds share this machine; the load average says how much.
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "render_manifests: {total} manifests in {FILES} files ({:.1} MiB); {cpus} CPUs, load average {load}",
        bytes as f64 / 1048576.0
    );
    println!(
        "  median {median:.0} manifests/s (min {min:.0}, max {max:.0}) over {RUNS} runs; {t_median:.3} s per render; {mib_s:.1} MiB/s"
    );
    println!(
        "to_yaml + to_json of {total} objects: median {:.3} s",
        emit_median.as_secs_f64()
    );

    let json = format!(
        "{{\n  \"bench\": \"driftless-render\",\n  \"date\": \"{}\",\n  \"case\": \"render_manifests, {total} manifests (ConfigMaps and Deployments) in {FILES} files, in-memory tree\",\n  \"bytes\": {bytes},\n  \"runs\": {RUNS},\n  \"manifests_per_s\": {{\"median\": {median:.0}, \"min\": {min:.0}, \"max\": {max:.0}}},\n  \"seconds_per_render_median\": {t_median:.4},\n  \"mib_per_s_median\": {mib_s:.2},\n  \"emit_yaml_and_json_seconds_median\": {:.4},\n  \"cpus\": {cpus},\n  \"load_average_1m\": \"{load}\"\n}}\n",
        today(),
        emit_median.as_secs_f64()
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/results");
    std::fs::create_dir_all(&dir).expect("create bench/results");
    let file = dir.join(format!("render-{}.json", today()));
    std::fs::write(&file, json).expect("write bench results");
    println!("wrote {}", file.display());
}
