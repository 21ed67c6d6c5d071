//! The attacks of issue 14 (items 4, 6 and 10) replayed through the real router:
//! unauthenticated noise must not grow the database, a foreign page must not drive the
//! API, and viewers must not make the server load unbounded data.

mod support;

use std::time::Duration;

use axum::http::StatusCode;
use driftless_store::{NewEvent, Severity};
use serde_json::Value;
use support::*;

fn detail(body: &Value) -> &str {
    body["detail"].as_str().unwrap_or_default()
}

/// Size of the database and its write-ahead log after a checkpoint.
fn db_bytes(fixture: &Fixture, engine: &driftless_engine::Engine) -> u64 {
    engine.store().checkpoint().expect("checkpoint");
    let state = fixture.dir.path().join("state");
    ["driftless.db", "driftless.db-wal", "driftless.db-shm"]
        .iter()
        .filter_map(|f| std::fs::metadata(state.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_noise_does_not_grow_the_database() {
    let fixture = fixture("");
    let engine = fixture.start();
    let router = driftless_server::Server::new(engine.clone(), &fixture.config)
        .expect("server")
        .router();
    wait_for(Duration::from_secs(30), "first sync", || {
        (fixture.applied().as_deref() == Some("v1")).then_some(())
    })
    .await;
    let before = db_bytes(&fixture, &engine);
    let name = "a".repeat(60 * 1024);
    // The attack from the issue: 300 POSTs without a token, each naming a 60 KB app.
    for i in 0..300 {
        let action = ["sync", "suspend", "resume", "refresh", "rollback"][i % 5];
        let (status, body) = call(
            &router,
            "POST",
            &format!("/api/v1/apps/{name}/{action}"),
            None,
            &[("content-type", "application/json")],
            "{}",
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{action}");
        assert!(detail(&body).contains("missing bearer token"));
    }
    // And an operator token refreshing an unknown 60 KB name (recorded by the server).
    for _ in 0..50 {
        let (status, body) = call(
            &router,
            "POST",
            &format!("/api/v1/apps/{name}/refresh"),
            Some(OPERATOR),
            &[],
            "",
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(detail(&body), "no app named <61440 bytes>");
    }
    let grown = db_bytes(&fixture, &engine).saturating_sub(before);
    println!("the database grew by {grown} bytes");
    assert!(grown < 256 * 1024, "the database grew by {grown} bytes");

    let audit = engine.store().audit(None, 10_000).expect("audit");
    assert!(
        audit.iter().all(|a| a.action.len() <= 256
            && a.app.as_deref().is_none_or(|app| app.len() <= 256)
            && a.outcome.len() <= 1024
            && !a.outcome.contains(&name[..1000])),
        "an audit row holds the name verbatim"
    );
    let denied: Vec<_> = audit
        .iter()
        .filter(|a| a.outcome.starts_with("denied"))
        .collect();
    assert!(
        !denied.is_empty() && denied.len() < 300,
        "denied calls are recorded at a bounded rate: {}",
        denied.len()
    );
    assert!(
        denied
            .iter()
            .all(|a| a.action.starts_with("POST /api/v1/apps/{unknown}/") && a.app.is_none()),
        "{:?}",
        denied[0]
    );
    assert!(
        audit
            .iter()
            .any(|a| a.action == "refresh" && a.outcome == "no app named <61440 bytes>")
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_calls_are_rate_limited_and_the_gap_is_counted() {
    let fixture = fixture("");
    let engine = fixture.start();
    let options = driftless_server::ServerOptions {
        audit_burst: 5,
        audit_per_second: 0.001,
        ..Default::default()
    };
    let router = driftless_server::Server::with_options(engine.clone(), &fixture.config, options)
        .expect("server")
        .router();
    for _ in 0..20 {
        let (status, _) = call(
            &router,
            "POST",
            "/api/v1/apps/web/sync",
            None,
            &[("x-driftless-request", "1")],
            "",
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let denied = engine.store().audit(None, 100).expect("audit");
    assert_eq!(denied.len(), 5, "the burst is recorded, the rest is not");
    assert!(
        denied.iter().all(|a| a.app.as_deref() == Some("web")),
        "known apps are named"
    );
    engine.shutdown().await;
}

/// An open (token-less) router as `serve` builds it on 127.0.0.1:7420.
async fn open_router() -> (Fixture, driftless_engine::Engine, axum::Router) {
    let fixture = fixture("");
    let engine = fixture.start();
    let options = driftless_server::ServerOptions {
        allowed_hosts: vec!["driftless.lan".to_owned()],
        ..Default::default()
    };
    let router = driftless_server::Server::open_with(engine.clone(), options)
        .router_for(Some("127.0.0.1:7420".parse().expect("addr")));
    wait_for(Duration::from_secs(30), "first sync", || {
        (fixture.applied().as_deref() == Some("v1")).then_some(())
    })
    .await;
    (fixture, engine, router)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_page_cannot_drive_the_open_server() {
    let (_fixture, engine, router) = open_router().await;
    let r = &router;
    let suspended = || engine.app("web").expect("app").suspended;

    // DNS rebinding: a foreign name pointed at 127.0.0.1 is refused on every route.
    for (method, path) in [
        ("GET", "/api/v1/apps"),
        ("GET", "/metrics"),
        ("GET", "/"),
        ("POST", "/api/v1/apps/web/suspend"),
    ] {
        let (status, body) = call(
            r,
            method,
            path,
            None,
            &[
                ("host", "evil.example:7420"),
                ("content-type", "application/json"),
            ],
            "",
        )
        .await;
        assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{method} {path}");
        assert_eq!(body["error"], "misdirected request");
        assert!(detail(&body).contains("\"evil.example:7420\""), "{body}");
        assert!(detail(&body).contains("server.allowedHosts"), "{body}");
    }
    assert!(!suspended());

    // CSRF: a foreign Origin is refused, even with a JSON body.
    let (status, body) = call(
        r,
        "POST",
        "/api/v1/apps/web/suspend",
        None,
        &[
            ("host", "127.0.0.1:7420"),
            ("origin", "http://evil.example"),
            ("content-type", "application/json"),
        ],
        "{}",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(detail(&body).contains("\"http://evil.example\""), "{body}");
    assert!(!suspended());
    // A "simple" cross-site form post (no Origin, as old browsers and some redirects
    // send it) lacks the JSON type and the custom header: refused, nothing changes.
    for content_type in ["text/plain", "application/x-www-form-urlencoded", ""] {
        let mut headers = vec![("host", "127.0.0.1:7420")];
        if !content_type.is_empty() {
            headers.push(("content-type", content_type));
        }
        let (status, body) = call(r, "POST", "/api/v1/apps/web/suspend", None, &headers, "").await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type}: {body}"
        );
        assert!(detail(&body).contains("X-Driftless-Request"), "{body}");
    }
    assert!(!suspended(), "a refused call changed nothing");

    // The web UI: same origin, JSON content type.
    let (status, body) = call(
        r,
        "POST",
        "/api/v1/apps/web/suspend",
        None,
        &[
            ("host", "127.0.0.1:7420"),
            ("origin", "http://127.0.0.1:7420"),
            ("content-type", "application/json"),
        ],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(suspended());
    // The CLI: the custom header, no body.
    let (status, body) = call(
        r,
        "POST",
        "/api/v1/apps/web/resume",
        None,
        &[("host", "localhost:7420"), ("x-driftless-request", "1")],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!suspended());
    // Reads from the UI and configured names pass.
    for host in [
        "127.0.0.1:7420",
        "[::1]:7420",
        "driftless.lan",
        "driftless.lan:7420",
    ] {
        let (status, _) = call(r, "GET", "/api/v1/apps", None, &[("host", host)], "").await;
        assert_eq!(status, StatusCode::OK, "{host}");
    }
    let (status, _) = call(
        r,
        "GET",
        "/api/v1/apps",
        None,
        &[
            ("host", "127.0.0.1:7420"),
            ("origin", "http://driftless.lan"),
        ],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Another port on loopback is another server.
    let (status, _) = call(
        r,
        "GET",
        "/healthz",
        None,
        &[("host", "127.0.0.1:8080")],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_pass_without_origin_or_content_type_rules() {
    let fixture = fixture("");
    let engine = fixture.start();
    let router = driftless_server::Server::new(engine.clone(), &fixture.config)
        .expect("server")
        .router_for(Some("0.0.0.0:7420".parse().expect("addr")));
    let body = push_payload(&fixture.repo(), "main");
    let signature = github_signature(&body);
    let (status, answer) = call(
        &router,
        "POST",
        "/hooks/github",
        None,
        &[
            ("host", "gitops.example.com"),
            ("origin", "https://github.com"),
            ("content-type", "application/x-www-form-urlencoded"),
            ("x-hub-signature-256", &signature),
        ],
        body,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["apps"][0], "web");
    // A token server without allowedHosts answers any name, but a foreign Origin still
    // gets nothing.
    let (status, _) = call(
        &router,
        "GET",
        "/api/v1/apps",
        Some(VIEWER),
        &[
            ("host", "gitops.example.com"),
            ("origin", "https://evil.example"),
        ],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        &router,
        "GET",
        "/api/v1/apps",
        Some(VIEWER),
        &[
            ("host", "gitops.example.com"),
            ("origin", "https://gitops.example.com"),
        ],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // A bearer token is itself proof that a page did not forge the call.
    let (status, _) = call(
        &router,
        "POST",
        "/api/v1/apps/web/refresh",
        Some(OPERATOR),
        &[],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_lists_counts_and_limits_are_capped() {
    let (_fixture, engine, router) = open_router().await;
    let r = &router;
    let host = [("host", "127.0.0.1:7420")];
    let (status, list) = call(r, "GET", "/api/v1/apps/web/history", None, &host, "").await;
    assert_eq!(status, StatusCode::OK);
    let first = &list[0];
    assert!(first.get("changeSet").is_none(), "{first}");
    assert_eq!(first["changes"]["created"], 1, "{first}");
    let id = first["id"].as_i64().expect("id");
    let (status, one) = call(
        r,
        "GET",
        &format!("/api/v1/apps/web/history/{id}"),
        None,
        &host,
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(
        one["changeSet"]["changes"][0]["id"]["name"], "index.html",
        "{one}"
    );
    for bad in ["999999", "x", "-1"] {
        let (status, body) = call(
            r,
            "GET",
            &format!("/api/v1/apps/web/history/{bad}"),
            None,
            &host,
            "",
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}: {body}");
    }
    // Another app's sync is not found through this app.
    let (status, _) = call(
        r,
        "GET",
        &format!("/api/v1/apps/nope/history/{id}"),
        None,
        &host,
        "",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // More rows than any list may return.
    let store = engine.store();
    for i in 0..300 {
        store
            .record_event(&NewEvent {
                app: Some("web".into()),
                kind: "drift-detected".into(),
                severity: Severity::Warning,
                message: format!("noise {i}"),
                object: None,
                revision: None,
            })
            .expect("event");
    }
    for _ in 0..220 {
        let id = store
            .begin_sync(&driftless_store::NewSync {
                app: "web".into(),
                revision: "r".into(),
                commit: None,
                trigger: driftless_store::Trigger::Poll,
                requested_by: None,
            })
            .expect("begin");
        store
            .finish_sync(
                id,
                &driftless_store::SyncOutcome {
                    result: driftless_store::SyncResult::Failed,
                    change_set: Default::default(),
                    error: None,
                    post_sync_output: None,
                },
            )
            .expect("finish");
    }
    for path in [
        "/api/v1/apps/web/history?limit=1000",
        "/api/v1/events?limit=1000",
        "/api/v1/audit?limit=100000",
    ] {
        let (status, rows) = call(r, "GET", path, None, &host, "").await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let n = rows.as_array().expect("array").len();
        assert!(n <= driftless_server::MAX_LIMIT, "{path}: {n} rows");
        if !path.contains("audit") {
            assert_eq!(n, driftless_server::MAX_LIMIT, "{path}");
        }
    }
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_from_event_zero_streams_every_stored_event_in_order() {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let (_fixture, engine, router) = open_router().await;
    let store = engine.store();
    let total = driftless_server::REPLAY_PAGE * 2 + 123;
    for i in 0..total {
        store
            .record_event(&NewEvent {
                app: Some("web".into()),
                kind: "drift-detected".into(),
                severity: Severity::Warning,
                message: format!("stored {i}"),
                object: None,
                revision: None,
            })
            .expect("event");
    }
    let request = axum::http::Request::builder()
        .uri("/api/v1/events?app=web")
        .header("host", "127.0.0.1:7420")
        .header("accept", "text/event-stream")
        .header("last-event-id", "0")
        .body(axum::body::Body::empty())
        .expect("request");
    let response = router.oneshot(request).await.expect("answer");
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut text = String::new();
    let mut messages = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while messages.len() < total {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let frame = tokio::time::timeout(left, body.frame())
            .await
            .expect("events keep coming")
            .expect("the stream is open")
            .expect("frame");
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
        while let Some(cut) = text.find("\n\n") {
            let block: String = text.drain(..cut + 2).collect();
            if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data:")) {
                let event: Value = serde_json::from_str(data.trim()).expect("event JSON");
                if let Some(message) = event["message"]
                    .as_str()
                    .filter(|m| m.starts_with("stored "))
                {
                    messages.push(message.to_owned());
                }
            }
        }
    }
    let expected: Vec<String> = (0..total).map(|i| format!("stored {i}")).collect();
    assert_eq!(messages, expected, "every stored event once, oldest first");
    engine.shutdown().await;
}
