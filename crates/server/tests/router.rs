//! Every route, role and error through the router, without a socket.

mod support;

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::Value;
use support::*;

async fn started() -> (Fixture, driftless_engine::Engine, axum::Router) {
    let fixture = fixture("");
    let engine = fixture.start();
    let server = driftless_server::Server::new(engine.clone(), &fixture.config).expect("server");
    assert!(server.requires_tokens());
    let router = server.router();
    wait_for(Duration::from_secs(30), "first sync", || {
        (fixture.applied().as_deref() == Some("v1")).then_some(())
    })
    .await;
    // Diffs are served from the app's last check: wait for the one after the sync.
    wait_for(
        Duration::from_secs(30),
        "a plan after the first sync",
        || engine.last_plan("web").ok().flatten().map(|_| ()),
    )
    .await;
    (fixture, engine, router)
}

fn detail(body: &Value) -> &str {
    body["detail"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_gate_every_call_and_errors_are_json() {
    let (_fixture, engine, router) = started().await;
    let r = &router;

    // Open routes.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let (status, _) = call(r, "GET", path, None, &[], "").await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }

    // No token, bad token.
    let (status, body) = call(r, "GET", "/api/v1/apps", None, &[], "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "unauthorized");
    assert!(detail(&body).contains("missing bearer token"), "{body}");
    let (status, body) = call(r, "GET", "/api/v1/apps", Some("nope"), &[], "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(detail(&body), "invalid bearer token");
    // The actor header means nothing once tokens exist.
    let (status, _) = call(
        r,
        "POST",
        "/api/v1/apps/web/sync",
        None,
        &[("x-driftless-actor", "mallory")],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Viewer reads everything but the audit log, and changes nothing.
    let (status, body) = call(r, "GET", "/api/v1/apps", Some(VIEWER), &[], "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0]["name"], "web");
    for path in [
        "/api/v1/apps/web",
        "/api/v1/apps/web/diff",
        "/api/v1/apps/web/history?limit=5",
        "/api/v1/events?app=web&limit=10",
    ] {
        let (status, body) = call(r, "GET", path, Some(VIEWER), &[], "").await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let (status, body) = call(r, "GET", "/api/v1/apps/web/history", Some(VIEWER), &[], "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !body.as_array().unwrap().is_empty(),
        "the first sync is in history"
    );
    // A viewer's diff comes from the last check, with its time; planning now is an
    // operator's call.
    let (status, body) = call(r, "GET", "/api/v1/apps/web/diff", Some(VIEWER), &[], "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["computedAt"].as_i64().is_some_and(|t| t > 0), "{body}");
    assert!(body["tasks"].is_array(), "{body}");
    let (status, body) = call(r, "POST", "/api/v1/apps/web/diff", Some(OPERATOR), &[], "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["tasks"].is_array(), "{body}");
    for action in ["sync", "refresh", "suspend", "resume", "diff"] {
        let (status, body) = call(
            r,
            "POST",
            &format!("/api/v1/apps/web/{action}"),
            Some(VIEWER),
            &[],
            "",
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{action}");
        assert_eq!(body["error"], "forbidden");
        assert_eq!(
            detail(&body),
            "token \"ci-viewer\" has role viewer; this call needs operator"
        );
    }
    let (status, _) = call(r, "GET", "/api/v1/audit", Some(VIEWER), &[], "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(r, "GET", "/api/v1/audit", Some(OPERATOR), &[], "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Unknown app, bad JSON, bad query, unknown route.
    for (method, path) in [
        ("GET", "/api/v1/apps/nope"),
        ("GET", "/api/v1/apps/nope/diff"),
        ("GET", "/api/v1/apps/nope/history"),
        ("POST", "/api/v1/apps/nope/sync"),
        ("POST", "/api/v1/apps/nope/refresh"),
        ("POST", "/api/v1/apps/nope/suspend"),
        ("POST", "/api/v1/apps/nope/resume"),
        ("POST", "/api/v1/apps/nope/diff"),
    ] {
        let (status, body) = call(r, method, path, Some(OPERATOR), &[], "").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(detail(&body), "no app named \"nope\"", "{path}");
    }
    let json = [("content-type", "application/json")];
    let (status, body) = call(
        r,
        "POST",
        "/api/v1/apps/nope/rollback",
        Some(OPERATOR),
        &json,
        r#"{"revision":"x"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = call(
        r,
        "POST",
        "/api/v1/apps/web/rollback",
        Some(OPERATOR),
        &json,
        "{not json",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "bad request");
    assert!(
        detail(&body).starts_with("expected a JSON body {\"revision\""),
        "{body}"
    );
    let (status, body) = call(
        r,
        "POST",
        "/api/v1/apps/web/rollback",
        Some(OPERATOR),
        &json,
        r#"{"rev":"x"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(detail(&body).contains("unknown field `rev`"), "{body}");
    let (status, body) = call(
        r,
        "GET",
        "/api/v1/apps/web/history?limit=lots",
        Some(VIEWER),
        &[],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(detail(&body).starts_with("bad query string"), "{body}");
    let (status, body) = call(r, "GET", "/api/v2/things", Some(ADMIN), &[], "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(detail(&body).contains("/api/v1"), "{body}");
    let (status, body) = call(
        r,
        "POST",
        "/api/v1/apps/web/rollback",
        Some(OPERATOR),
        &json,
        r#"{"revision":"no-such-ref"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // Operator acts; the audit log names the token.
    let (status, body) = call(r, "POST", "/api/v1/apps/web/sync", Some(OPERATOR), &[], "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["app"], "web");
    let (status, _) = call(
        r,
        "POST",
        "/api/v1/apps/web/refresh",
        Some(OPERATOR),
        &[],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, body) = call(
        r,
        "POST",
        "/api/v1/apps/web/suspend",
        Some(OPERATOR),
        &[],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["suspended"], true);
    let (status, body) = call(r, "POST", "/api/v1/apps/web/resume", Some(ADMIN), &[], "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["suspended"], false);

    let (status, audit) = call(r, "GET", "/api/v1/audit?limit=100", Some(ADMIN), &[], "").await;
    assert_eq!(status, StatusCode::OK);
    let entries: Vec<(String, String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap_or("").to_owned(),
                e["action"].as_str().unwrap_or("").to_owned(),
                e["outcome"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let has = |actor: &str, action: &str, outcome: &str| {
        entries
            .iter()
            .any(|(a, b, c)| a == actor && b == action && c.starts_with(outcome))
    };
    assert!(has("ci-operator", "sync", "ok"), "{entries:?}");
    assert!(has("ci-operator", "refresh", "ok"), "{entries:?}");
    assert!(
        has("ci-operator", "refresh", "no app named \"nope\""),
        "{entries:?}"
    );
    assert!(has("ci-operator", "suspend", "ok"), "{entries:?}");
    assert!(has("root", "resume", "ok"), "{entries:?}");
    assert!(
        has(
            "ci-viewer",
            "POST /api/v1/apps/web/sync",
            "denied: token \"ci-viewer\" has role viewer"
        ),
        "{entries:?}"
    );
    assert!(
        has(
            "anonymous",
            "POST /api/v1/apps/web/sync",
            "denied: missing bearer token"
        ),
        "{entries:?}"
    );
    assert!(
        has("ci-operator", "GET /api/v1/audit", "denied"),
        "{entries:?}"
    );
    let (_, history) = call(r, "GET", "/api/v1/apps/web/history", Some(VIEWER), &[], "").await;
    assert!(
        history
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["requestedBy"].is_null() || h["requestedBy"] == "ci-operator"),
        "{history}"
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_exactly_the_routes_the_router_serves() {
    let (_fixture, engine, router) = started().await;
    let (status, _) = call(&router, "GET", "/api/v1/openapi.json", None, &[], "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, doc) = call(
        &router,
        "GET",
        "/api/v1/openapi.json",
        Some(VIEWER),
        &[],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    let mut documented = 0;
    for (path, methods) in paths {
        for (method, operation) in methods.as_object().expect("methods") {
            documented += 1;
            let concrete = path.replace("{name}", "web").replace("{provider}", "gitea");
            let (status, body) = call(
                &router,
                &method.to_uppercase(),
                &concrete,
                None,
                &[("x-driftless-request", "1")],
                "",
            )
            .await;
            let fallback = detail(&body).starts_with("no such route");
            assert!(
                !fallback && status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is documented but not served: {status} {body}"
            );
            let role = operation["x-driftless-role"].as_str().expect("role");
            if role == "open" {
                assert_ne!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
            } else {
                assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} must need a token"
                );
                assert!(operation["responses"]["401"].is_object(), "{method} {path}");
            }
        }
    }
    assert_eq!(documented, driftless_server::ROUTES.len());
    // A route the document does not list is not served.
    let (status, _) = call(&router, "DELETE", "/api/v1/apps/web", Some(ADMIN), &[], "").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_server_takes_the_local_actor_header() {
    let fixture = fixture("");
    let engine = fixture.start();
    let router = driftless_server::router(engine.clone());
    wait_for(Duration::from_secs(30), "first sync", || {
        (fixture.applied().as_deref() == Some("v1")).then_some(())
    })
    .await;
    let (status, _) = call(
        &router,
        "POST",
        "/api/v1/apps/web/suspend",
        None,
        &[("x-driftless-actor", "ada")],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, audit) = call(&router, "GET", "/api/v1/audit", None, &[], "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(audit[0]["actor"], "local:ada");
    assert_eq!(audit[0]["action"], "suspend");
    // Webhooks are not configured on an open server.
    let (status, body) = call(&router, "POST", "/hooks/github", None, &[], "{}").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(detail(&body).contains("server.webhooks.github"), "{body}");
    engine.shutdown().await;
}
