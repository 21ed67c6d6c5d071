//! A real loopback server on a real engine: signed pushes apply new commits, events
//! stream as SSE, /metrics parses, notification sinks receive events.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::Value;
use support::*;

struct Live {
    fixture: Fixture,
    base: String,
    http: reqwest::Client,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<()>,
}

async fn serve(extra: &str) -> Live {
    let fixture = fixture(extra);
    let engine = fixture.start();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = fixture.config.clone();
    let served = tokio::spawn(async move {
        driftless_server::serve_config(engine, &config, listener, None, async {
            let _ = stopped.await;
        })
        .await
        .expect("serves");
    });
    wait_for(Duration::from_secs(30), "first sync", || {
        (fixture.applied().as_deref() == Some("v1")).then_some(())
    })
    .await;
    Live {
        fixture,
        base,
        http: reqwest::Client::new(),
        stop,
        served,
    }
}

impl Live {
    async fn push(&self) -> reqwest::Response {
        let body = push_payload(&self.fixture.repo(), "main");
        self.http
            .post(format!("{}/hooks/github", self.base))
            .header("x-hub-signature-256", github_signature(&body))
            .header("x-github-event", "push")
            .body(body)
            .send()
            .await
            .expect("hook answered")
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), self.served)
            .await
            .expect("the server stops while a stream is open")
            .expect("serve task");
    }
}

/// Reads SSE frames until `until` accepts one; returns every frame read, as
/// (event, id, data JSON).
async fn read_sse(
    response: &mut reqwest::Response,
    mut until: impl FnMut(&str, &Value) -> bool,
) -> Vec<(String, i64, Value)> {
    let mut buffer = String::new();
    let mut frames = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let (mut event, mut id, mut data) = (String::new(), 0, String::new());
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().expect("numeric id");
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if event.is_empty() {
                continue; // keep-alive comment
            }
            let data: Value = serde_json::from_str(&data).expect("data is JSON");
            let done = until(&event, &data);
            frames.push((event, id, data));
            if done {
                return frames;
            }
        }
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .expect("an SSE frame in time")
            .expect("stream readable")
            .expect("stream still open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_push_applies_the_new_commit_and_streams_its_events() {
    let live = serve("").await;
    let mut stream = live
        .http
        .get(format!("{}/api/v1/events?app=web", live.base))
        .bearer_auth(VIEWER)
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("stream opens");
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );

    let v2 = live.fixture.commit("v2");
    let answer = live.push().await;
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    let answer: Value = answer.json().await.expect("json");
    assert_eq!(answer["apps"], serde_json::json!(["web"]));
    wait_for(Duration::from_secs(30), "v2 applied", || {
        (live.fixture.applied().as_deref() == Some("v2")).then_some(())
    })
    .await;

    let frames = read_sse(&mut stream, |event, data| {
        event == "sync-succeeded" && data["revision"] == v2.as_str()
    })
    .await;
    let kinds: Vec<&str> = frames.iter().map(|f| f.0.as_str()).collect();
    assert!(kinds.contains(&"sync-started"), "{kinds:?}");
    let (_, id, data) = frames.last().expect("a frame");
    assert_eq!(data["kind"], "sync-succeeded");
    assert_eq!(data["app"], "web");
    assert_eq!(data["id"].as_i64(), Some(*id));

    // Last-Event-ID replays what came after it from the store.
    let first_id = frames[0].1;
    let mut replay = live
        .http
        .get(format!("{}/api/v1/events?app=web", live.base))
        .bearer_auth(VIEWER)
        .header("accept", "text/event-stream")
        .header("last-event-id", (first_id - 1).to_string())
        .send()
        .await
        .expect("stream opens");
    let replayed = read_sse(&mut replay, |event, _| event == "sync-succeeded").await;
    let ids: Vec<i64> = replayed.iter().map(|f| f.1).collect();
    assert_eq!(ids, frames.iter().map(|f| f.1).collect::<Vec<_>>());

    // The history row of the push says it came from a webhook.
    let history: Value = live
        .http
        .get(format!("{}/api/v1/apps/web/history", live.base))
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(history[0]["revision"], v2.as_str());
    assert_eq!(history[0]["trigger"], "webhook");

    // /metrics parses strictly and says what happened.
    let text = live
        .http
        .get(format!("{}/metrics", live.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let samples = parse_metrics(&text);
    let get = |name: &str, labels: &[(&str, &str)]| -> f64 {
        let key: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        *samples
            .get(&(name.to_owned(), key))
            .unwrap_or_else(|| panic!("no sample {name}{labels:?} in\n{text}"))
    };
    assert_eq!(
        get(
            "driftless_app_sync_status",
            &[("app", "web"), ("status", "Synced")]
        ),
        1.0
    );
    assert_eq!(
        get(
            "driftless_app_sync_status",
            &[("app", "web"), ("status", "OutOfSync")]
        ),
        0.0
    );
    assert_eq!(
        get(
            "driftless_app_health",
            &[("app", "web"), ("health", "Healthy")]
        ),
        1.0
    );
    let repo = live.fixture.repo().display().to_string();
    assert_eq!(
        get(
            "driftless_app_info",
            &[("app", "web"), ("repo", &repo), ("revision", &v2)]
        ),
        1.0
    );
    let last = get(
        "driftless_app_last_sync_timestamp_seconds",
        &[("app", "web")],
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(last > now - 120.0 && last <= now + 1.0, "{last} vs {now}");
    assert!(
        get(
            "driftless_sync_duration_seconds_count",
            &[("app", "web"), ("result", "succeeded")]
        ) >= 1.0
    );
    assert_eq!(
        get(
            "driftless_webhook_requests_total",
            &[("provider", "github"), ("result", "accepted")]
        ),
        1.0
    );
    // Every look at the Git source is timed: the first sync and the pushed one at least.
    assert!(
        get(
            "driftless_git_fetch_duration_seconds_count",
            &[("repo", &repo)]
        ) >= 2.0
    );
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_hooks_are_refused_and_counted() {
    let live = serve("").await;
    let url = |kind: &str| format!("{}/hooks/{kind}", live.base);
    let body = push_payload(&live.fixture.repo(), "main");

    // Bad signature → 401, before the body is parsed.
    let response = live
        .http
        .post(url("github"))
        .header("x-hub-signature-256", github_signature("something else"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["detail"], "bad or missing github webhook signature");
    let response = live
        .http
        .post(url("generic"))
        .body("not even json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Signed but unknown repository or branch → 202 and nothing refreshed.
    for payload in [
        serde_json::json!({"ref": "refs/heads/main", "repository": {"clone_url": "https://github.com/else/where.git"}}),
        serde_json::json!({"ref": "refs/heads/dev", "repository": {"clone_url": format!("file://{}", live.fixture.repo().display())}}),
        serde_json::json!({"zen": "ping", "repository": {"clone_url": "x"}}),
    ] {
        let payload = payload.to_string();
        let response = live
            .http
            .post(url("github"))
            .header("x-hub-signature-256", github_signature(&payload))
            .body(payload)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["apps"], serde_json::json!([]));
    }

    // GitLab token and the generic signature, on the local repository path.
    let generic = serde_json::json!({"ref": "refs/heads/main", "repository": live.fixture.repo().display().to_string()}).to_string();
    let response = live
        .http
        .post(url("generic"))
        .header("x-driftless-signature", github_signature(&generic))
        .body(generic)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(
        response.json::<Value>().await.unwrap()["apps"],
        serde_json::json!(["web"])
    );
    let gitlab = serde_json::json!({"ref": "refs/heads/main", "project": {"git_http_url": format!("file://{}/", live.fixture.repo().display())}}).to_string();
    let response = live
        .http
        .post(url("gitlab"))
        .header("x-gitlab-token", HOOK_SECRET)
        .body(gitlab.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(
        response.json::<Value>().await.unwrap()["apps"],
        serde_json::json!(["web"])
    );
    let response = live
        .http
        .post(url("gitlab"))
        .header("x-gitlab-token", "guess")
        .body(gitlab)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Not configured / unknown kinds → 404.
    let response = live
        .http
        .post(url("gitea"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = live
        .http
        .post(url("bitbucket"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // A 10 MB body → 413, with a declared length and chunked (no length up front).
    let big = vec![b'x'; 10 * 1024 * 1024];
    let addr = live.base.trim_start_matches("http://");
    let answer = raw_post(
        addr,
        "/hooks/github",
        &format!("content-length: {}", big.len()),
        &big,
        false,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("webhook bodies are limited to 1048576 bytes"),
        "{answer}"
    );
    let answer = raw_post(
        addr,
        "/hooks/github",
        "transfer-encoding: chunked",
        &big,
        true,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    let text = live
        .http
        .get(format!("{}/metrics", live.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let samples = parse_metrics(&text);
    let count = |provider: &str, result: &str| {
        let key: BTreeMap<String, String> = [("provider", provider), ("result", result)]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        samples
            .get(&("driftless_webhook_requests_total".to_owned(), key))
            .copied()
            .unwrap_or(0.0)
    };
    assert_eq!(count("github", "bad_signature"), 1.0);
    assert_eq!(count("generic", "bad_signature"), 1.0);
    assert_eq!(count("gitlab", "bad_signature"), 1.0);
    assert_eq!(count("github", "ignored"), 3.0);
    assert_eq!(count("generic", "accepted"), 1.0);
    assert_eq!(count("gitlab", "accepted"), 1.0);
    assert_eq!(count("gitea", "not_configured"), 1.0);
    assert!(count("github", "too_large") >= 1.0);
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_sinks_receive_their_events_with_retries() {
    // A sink that fails twice before accepting the v2 event, and one that only wants
    // drift. The start-up sync of v1 may or may not be notified (it can finish before
    // the notifier subscribes), so only v2's notifications are asserted.
    let v2_cell: Arc<Mutex<String>> = Arc::default();
    let v2 = v2_cell.clone();
    let received: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let attempts: Arc<Mutex<u32>> = Arc::default();
    let sink = {
        let (received, attempts, v2) = (received.clone(), attempts.clone(), v2.clone());
        axum::Router::new().route(
            "/{name}",
            axum::routing::post(
                move |axum::extract::Path(name): axum::extract::Path<String>,
                      axum::Json(body): axum::Json<Value>| {
                    let (received, attempts, v2) = (received.clone(), attempts.clone(), v2.clone());
                    async move {
                        let is_v2 = body["revision"] == v2.lock().unwrap().as_str();
                        if name == "flaky" && is_v2 {
                            let mut n = attempts.lock().unwrap();
                            *n += 1;
                            if *n <= 2 {
                                return StatusCode::INTERNAL_SERVER_ERROR;
                            }
                        }
                        received.lock().unwrap().push((name, body));
                        StatusCode::OK
                    }
                },
            ),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sink_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, sink).await });

    let live = serve(&format!(
        "notifications:\n  - name: team\n    webhook: {{ url: \"{sink_url}/team\", format: json }}\n    events: [sync-succeeded, sync-failed]\n  - name: chat\n    webhook: {{ url: \"{sink_url}/chat\", format: slack }}\n    events: [sync-succeeded]\n  - name: flaky\n    webhook: {{ url: \"{sink_url}/flaky\" }}\n    events: [sync-succeeded]\n  - name: drift-only\n    webhook: {{ url: \"{sink_url}/drift\" }}\n    events: [drift-detected]\n"
    ))
    .await;
    let v2 = live.fixture.commit("v2");
    *v2_cell.lock().unwrap() = v2.clone();
    assert_eq!(live.push().await.status(), StatusCode::ACCEPTED);
    let about_v2 = |body: &Value| {
        body["revision"] == v2.as_str()
            || body["text"].as_str().is_some_and(|t| t.contains(&v2[..12]))
    };
    let got = wait_for(
        Duration::from_secs(30),
        "three sinks notified of v2",
        || {
            let got: Vec<(String, Value)> = received
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, body)| about_v2(body))
                .cloned()
                .collect();
            (got.len() >= 3).then_some(got)
        },
    )
    .await;
    let by = |name: &str| {
        got.iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.clone())
            .unwrap_or_else(|| panic!("{name} got nothing: {got:?}"))
    };
    let team = by("team");
    assert_eq!(team["kind"], "sync-succeeded");
    assert_eq!(team["app"], "web");
    assert_eq!(team["revision"], v2.as_str());
    let chat = by("chat");
    let text = chat["text"].as_str().expect("slack text");
    assert!(
        text.starts_with(&format!("[driftless] web: sync-succeeded at {}", &v2[..12])),
        "{text}"
    );
    assert_eq!(by("flaky")["kind"], "sync-succeeded");
    assert_eq!(*attempts.lock().unwrap(), 3, "two failures, then delivered");
    let all = received.lock().unwrap().clone();
    assert!(all.iter().all(|(n, _)| n != "drift"), "{all:?}");
    assert!(
        all.iter().all(|(_, b)| b["kind"] != "sync-started"
            && !b["text"].as_str().unwrap_or("").contains("sync-started")),
        "{all:?}"
    );
    live.stop().await;
}

/// Sends a POST on a raw socket while reading the answer concurrently, so that a server
/// that answers early and stops reading (as it should for an oversized body) is seen
/// answering rather than as a broken pipe.
async fn raw_post(addr: &str, path: &str, header: &str, body: &[u8], chunked: bool) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut read, mut write) = socket.into_split();
    let reader = tokio::spawn(async move {
        let mut answer = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = read.read(&mut buf).await {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                break;
            }
        }
        String::from_utf8_lossy(&answer).into_owned()
    });
    let head =
        format!("POST {path} HTTP/1.1\r\nhost: {addr}\r\n{header}\r\nconnection: close\r\n\r\n");
    if write.write_all(head.as_bytes()).await.is_ok() {
        for chunk in body.chunks(64 * 1024) {
            let sent = if chunked {
                let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
                write.write_all(&frame).await
            } else {
                write.write_all(chunk).await
            };
            if sent.is_err() {
                break; // the server stopped reading
            }
        }
        if chunked {
            let _ = write.write_all(b"0\r\n\r\n").await;
        }
    }
    tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("an answer in time")
        .expect("reader")
}

/// A strict parser for the OpenMetrics text format as far as driftless uses it: every
/// sample line is `name{label="value",...} number`, every family has HELP and TYPE before
/// its samples, and the text ends with `# EOF`.
fn parse_metrics(text: &str) -> BTreeMap<(String, BTreeMap<String, String>), f64> {
    let mut samples = BTreeMap::new();
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let lines = text.lines();
    let mut saw_eof = false;
    for line in lines {
        assert!(!saw_eof, "text after # EOF: {line}");
        if line == "# EOF" {
            saw_eof = true;
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(
                ["gauge", "counter", "histogram", "info"].contains(&kind),
                "{line}"
            );
            typed.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") || line.starts_with("# UNIT ") {
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment {line}");
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let body = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels in {line}"));
                let mut labels = BTreeMap::new();
                let mut rest = body;
                while !rest.is_empty() {
                    let (key, after) = rest
                        .split_once("=\"")
                        .unwrap_or_else(|| panic!("bad label in {line}"));
                    let mut value = String::new();
                    let mut chars = after.char_indices();
                    let end = loop {
                        let (i, c) = chars
                            .next()
                            .unwrap_or_else(|| panic!("unterminated label in {line}"));
                        match c {
                            '\\' => {
                                let (_, escaped) = chars.next().expect("escape");
                                value.push(if escaped == 'n' { '\n' } else { escaped });
                            }
                            '"' => break i,
                            c => value.push(c),
                        }
                    };
                    assert!(
                        key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                        "{line}"
                    );
                    labels.insert(key.to_owned(), value);
                    rest = &after[end + 1..];
                    rest = rest.strip_prefix(',').unwrap_or(rest);
                }
                (name, labels)
            }
            None => (series, BTreeMap::new()),
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        let family = typed
            .keys()
            .filter(|f| name.starts_with(f.as_str()))
            .max_by_key(|f| f.len())
            .unwrap_or_else(|| panic!("sample {name} before its TYPE"));
        assert!(name.starts_with(family.as_str()));
        assert!(
            samples.insert((name.to_owned(), labels), value).is_none(),
            "duplicate series {line}"
        );
    }
    assert!(saw_eof, "no # EOF");
    samples
}
