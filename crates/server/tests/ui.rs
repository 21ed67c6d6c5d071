//! The web UI through the full router, without a socket: the page, its assets, their
//! content types and security headers, and where unknown UI paths go.

mod support;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use support::*;
use tower::ServiceExt;

async fn get(router: &axum::Router, path: &str) -> (StatusCode, HeaderMap, String) {
    let response = router
        .clone()
        .oneshot(
            Request::builder()
                .uri(path)
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("router answers");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

fn router() -> (Fixture, driftless_engine::Engine, axum::Router) {
    let fixture = fixture("");
    let engine = fixture.start();
    let server = driftless_server::Server::new(engine.clone(), &fixture.config).expect("server");
    assert!(server.requires_tokens());
    let router = server.router();
    (fixture, engine, router)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_assets_are_served_without_a_token_under_a_strict_csp() {
    let (_fixture, engine, router) = router();

    for path in ["/", "/ui", "/ui/"] {
        let (status, headers, body) = get(&router, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(header(&headers, "content-type"), "text/html; charset=utf-8");
        let csp = header(&headers, "content-security-policy");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(csp.contains("connect-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
        assert!(body.contains("<script src=\"/ui/app.js\""), "{body}");
        assert!(body.contains("href=\"/ui/app.css\""), "{body}");
        // No inline script or style, and nothing from another origin (works offline).
        assert!(
            !body.contains("<script>") && !body.contains("<style"),
            "{body}"
        );
        assert!(!body.contains("http://") && !body.contains("https://"));
    }

    let (status, headers, body) = get(&router, "/ui/app.js").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        header(&headers, "content-type"),
        "text/javascript; charset=utf-8"
    );
    assert!(body.contains("/api/v1/apps"), "the script talks to the API");
    assert!(
        body.contains("sessionStorage"),
        "the token stays in the tab"
    );
    assert!(!body.contains("innerHTML"), "data is never parsed as HTML");

    let (status, headers, body) = get(&router, "/ui/app.css").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-type"), "text/css; charset=utf-8");
    assert!(body.contains("@media"), "a phone layout exists");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ui_paths_fall_back_and_the_api_stays_json() {
    let (_fixture, engine, router) = router();

    // A bookmarked view: the page, which routes itself.
    let (status, headers, body) = get(&router, "/ui/apps/web").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-type"), "text/html; charset=utf-8");
    assert!(body.contains("/ui/app.js"));

    // A missing file: a JSON 404 like every error, not the page served as a script.
    let (status, headers, body) = get(&router, "/ui/missing.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(header(&headers, "content-type"), "application/json");
    assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
    assert!(body.contains("no such UI file"), "{body}");

    // Outside /ui the API's JSON 404 still answers, and the API still wants a token.
    let (status, headers, body) = get(&router, "/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(header(&headers, "content-type"), "application/json");
    assert!(body.contains("no such route"), "{body}");
    let (status, _, _) = get(&router, "/api/v1/apps").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = call(&router, "GET", "/api/v1/apps", Some(VIEWER), &[], "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0]["name"], "web");
    engine.shutdown().await;
}
