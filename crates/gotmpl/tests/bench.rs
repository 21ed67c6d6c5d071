//! A rough speed figure, not a gate: a chart-like template set (builtins only, Sprig is
//! not in yet) parsed and rendered N times in-process, against the Go oracle doing the
//! same work per case. Run with
//! `cargo test -p driftless-gotmpl --release --test bench -- --ignored --nocapture`.

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Instant;

use driftless_gotmpl::{MissingKey, Templates, Value};
use serde_json::json;

const HELPERS: &str = r#"{{- define "app.name" -}}{{ .Chart.Name }}{{- end -}}
{{- define "app.fullname" -}}{{ printf "%s-%s" .Release.Name .Chart.Name }}{{- end -}}
{{- define "app.labels" -}}
app.kubernetes.io/name: {{ template "app.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ printf "%q" .Chart.AppVersion }}
{{- end -}}"#;

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ template "app.fullname" . }}
  labels:
{{ template "app.labels" . }}
spec:
  replicas: {{ .Values.replicaCount }}
  template:
    spec:
      containers:
{{- range $i, $c := .Values.containers }}
        - name: {{ $c.name }}
          image: "{{ $c.image.repository }}:{{ or $c.image.tag $.Chart.AppVersion }}"
          {{- with $c.ports }}
          ports:
          {{- range . }}
            - containerPort: {{ .port }}
              protocol: {{ or .protocol "TCP" }}
          {{- end }}
          {{- end }}
          {{- if $c.env }}
          env:
          {{- range $k, $v := $c.env }}
            - name: {{ $k }}
              value: {{ printf "%q" (print $v) }}
          {{- end }}
          {{- end }}
          resources:
            limits: {cpu: {{ $c.resources.cpu }}, memory: {{ $c.resources.memory }}}
{{- end }}
{{- if .Values.nodeSelector }}
      nodeSelector:
{{- range $k, $v := .Values.nodeSelector }}
        {{ $k }}: {{ $v }}
{{- end }}
{{- end }}
"#;

fn data() -> serde_json::Value {
    let containers: Vec<_> = (0..4)
        .map(|i| {
            json!({
                "name": format!("c{i}"),
                "image": {"repository": "registry.example.com/app", "tag": if i % 2 == 0 { json!("1.2.3") } else { json!(null) }},
                "ports": [{"port": 8080 + i}, {"port": 9090 + i, "protocol": "UDP"}],
                "env": {"A": "1", "B": "two", "C": true, "D": 1.5, "E": "x<y>&z"},
                "resources": {"cpu": "100m", "memory": "128Mi"}
            })
        })
        .collect();
    json!({
        "Chart": {"Name": "app", "AppVersion": "1.0.0"},
        "Release": {"Name": "prod"},
        "Values": {"replicaCount": 3, "containers": containers, "nodeSelector": {"disk": "ssd", "zone": "a"}}
    })
}

fn render_once(data: &serde_json::Value) -> String {
    let mut t = Templates::new();
    t.set_missing_key(MissingKey::Zero);
    t.parse("_helpers.tpl", HELPERS).expect("helpers");
    t.parse("deployment.yaml", DEPLOYMENT).expect("deployment");
    t.execute("deployment.yaml", &Value::from_json(data))
        .expect("render")
}

#[test]
#[ignore = "a speed figure; run explicitly in release"]
fn bench_chart_render() {
    let n = 2000;
    let d = data();
    let ours = render_once(&d);
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(render_once(&d));
    }
    let ours_t = start.elapsed();

    // The Go side: the same parse + render per case, through the oracle binary.
    let bin = common::oracle_binary();
    let case = json!({
        "templates": [{"name": "_helpers.tpl", "text": HELPERS}, {"name": "deployment.yaml", "text": DEPLOYMENT}],
        "exec": "deployment.yaml", "data": d, "typed": false, "missingkey": "zero"
    })
    .to_string();
    let run = |count: usize| {
        let mut input = String::new();
        for _ in 0..count {
            input.push_str(&case);
            input.push('\n');
        }
        let start = Instant::now();
        let mut child = Command::new(&bin)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("oracle");
        // Feed stdin from a thread: the oracle's output would fill the pipe otherwise.
        let mut stdin = child.stdin.take().expect("stdin");
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let out = child.wait_with_output().expect("oracle output");
        writer.join().expect("writer").expect("write");
        (start.elapsed(), out.stdout)
    };
    let (one, first) = run(1);
    let go_out: serde_json::Value =
        serde_json::from_slice(first.split(|b| *b == b'\n').next().unwrap_or_default())
            .expect("json");
    assert_eq!(
        go_out["out"].as_str(),
        Some(ours.as_str()),
        "the bench template must render identically"
    );
    let (all, _) = run(n + 1);
    let go_t = all.saturating_sub(one);
    println!(
        "gotmpl bench: {n} x (parse 2 files + render {} bytes): ours {:.1} µs/render, Go oracle {:.1} µs/render (process start excluded, JSON I/O included)",
        ours.len(),
        ours_t.as_secs_f64() * 1e6 / n as f64,
        go_t.as_secs_f64() * 1e6 / n as f64
    );
}
