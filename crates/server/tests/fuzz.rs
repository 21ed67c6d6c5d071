//! A seeded random walk over the HTTP surface: methods, paths (from the route table and
//! mangled), headers (tokens, hosts, origins, content types, signatures) and bodies
//! (valid-looking GitHub/GitLab/Gitea/generic push payloads with mutations, rollback
//! bodies, garbage), fed to the real router with `oneshot`. Every answer must be a
//! success or a well-formed JSON error with a status from the documented set, and
//! nothing may panic.
//!
//! `DRIFTLESS_FUZZ_SECS` (default 3) sets how long it runs, `DRIFTLESS_FUZZ_SEED`
//! replays a run (the seed is printed). A long run:
//! `DRIFTLESS_FUZZ_SECS=1800 cargo test -p driftless-server --release --test fuzz -- --nocapture`

mod support;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use support::*;
use tower::ServiceExt;

/// splitmix64: tiny, seedable, good enough to pick inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn one<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    /// Up to `max` random bytes.
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max);
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// Up to `max` characters, many of them special in URLs, JSON or terminals.
    fn text(&mut self, max: usize) -> String {
        let len = self.below(max);
        const ALPHABET: &[char] = &[
            'a', 'z', 'A', '0', '9', '-', '_', '.', '/', '%', '?', '#', '&', '=', ' ', '"', '\'',
            '\\', '{', '}', '[', ']', ':', ',', 'é', '日', '\u{0}', '\u{7f}', '\u{202e}', '+',
        ];
        (0..len).map(|_| *self.pick(ALPHABET)).collect()
    }
}

fn seed() -> u64 {
    match std::env::var("DRIFTLESS_FUZZ_SEED") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("DRIFTLESS_FUZZ_SEED={text:?} is not a number")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    }
}

fn duration() -> Duration {
    let secs = match std::env::var("DRIFTLESS_FUZZ_SECS") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("DRIFTLESS_FUZZ_SECS={text:?} is not a number")),
        Err(_) => 3.0,
    };
    Duration::from_secs_f64(secs)
}

/// A push payload as each provider sends it.
fn payload(rng: &mut Rng, provider: &str, repo: &str) -> serde_json::Value {
    let branch = rng
        .pick(&["main", "other", "", "refs/heads/main"])
        .to_string();
    let reference = match rng.below(4) {
        0 => format!("refs/tags/{branch}"),
        1 => branch.clone(),
        _ => format!("refs/heads/{branch}"),
    };
    let url = rng
        .pick(&[
            format!("file://{repo}"),
            repo.to_owned(),
            "https://github.com/o/r.git".to_owned(),
            "git@github.com:o/r.git".to_owned(),
            String::new(),
            "::::".to_owned(),
        ])
        .clone();
    match provider {
        "gitlab" => serde_json::json!({
            "object_kind": "push", "ref": reference,
            "project": {"git_http_url": url, "git_ssh_url": url, "web_url": "https://gitlab.example/o/r"},
            "commits": [{"id": "0123456789abcdef", "message": "m"}]
        }),
        "gitea" => serde_json::json!({
            "ref": reference, "before": "0", "after": "1",
            "repository": {"clone_url": url, "ssh_url": url, "html_url": url}
        }),
        "generic" => serde_json::json!({"ref": reference, "repository": url}),
        _ => serde_json::json!({
            "ref": reference, "created": false, "deleted": false,
            "repository": {"clone_url": url, "ssh_url": url, "html_url": url, "url": url},
            "pusher": {"name": "ada"}
        }),
    }
}

fn mutate(rng: &mut Rng, mut body: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.below(4) {
        match rng.below(7) {
            0 if !body.is_empty() => {
                let i = rng.below(body.len());
                body[i] = rng.next() as u8;
            }
            1 if !body.is_empty() => {
                let cut = rng.below(body.len());
                body.truncate(cut);
            }
            2 => {
                let i = rng.below(body.len() + 1);
                let junk = rng.text(40);
                body.splice(i..i, junk.into_bytes());
            }
            3 => {
                // Deep nesting, as a hostile payload would try.
                let depth = rng.below(5000);
                let mut deep = "[".repeat(depth).into_bytes();
                deep.extend(std::iter::repeat_n(b']', depth));
                body = deep;
            }
            4 => body = rng.bytes(256),
            5 => {
                let i = rng.below(body.len() + 1);
                body.splice(i..i, std::iter::repeat_n(b'x', rng.below(100_000)));
            }
            _ => body.extend_from_slice(b"\"ref\": null, {}"),
        }
    }
    body
}

fn path(rng: &mut Rng) -> String {
    let name = match rng.below(6) {
        0 | 1 => "web".to_owned(),
        2 => rng.text(20),
        3 => "a".repeat(rng.below(70_000)),
        4 => rng
            .pick(&["%ff%fe", "%", "..", "%2e%2e", "-", "web%00", "%E6%97%A5"])
            .to_string(),
        _ => String::new(),
    };
    let route = driftless_server::ROUTES[rng.below(driftless_server::ROUTES.len())].path;
    let mut path = route
        .replace("{name}", &name)
        .replace(
            "{provider}",
            rng.one(&["github", "gitlab", "gitea", "generic", "bitbucket", ""]),
        )
        .replace(
            "{id}",
            rng.one(&["1", "2", "0", "-1", "99999999999999999999", "x"]),
        );
    match rng.below(8) {
        0 => path = format!("/{}", rng.text(30)),
        1 => path.push_str(rng.one(&["/", "//", "/extra", "/.."])),
        2 => {
            path = rng
                .pick(&[
                    "/",
                    "/ui/app.js",
                    "/ui/x.png",
                    "/ui/deep/view",
                    "/api/v1/openapi.json",
                ])
                .to_string()
        }
        _ => {}
    }
    if rng.chance(40) {
        let (n, app) = (rng.next() % 100_000, rng.text(8));
        let query = rng
            .pick(&[
                format!("limit={n}"),
                "limit=-1".to_owned(),
                "limit=lots".to_owned(),
                format!("app={app}"),
                "app=web&limit=3".to_owned(),
                "unknown=1".to_owned(),
                "%zz".to_owned(),
                "limit=99999999999999999999999".to_owned(),
            ])
            .clone();
        path.push('?');
        path.push_str(&query);
    }
    // Bytes a URI may not hold make the request unbuildable: keep them percent-encoded.
    path.chars()
        .map(|c| {
            if c.is_ascii_graphic() {
                c.to_string()
            } else {
                let mut buf = [0u8; 4];
                c.encode_utf8(&mut buf)
                    .bytes()
                    .map(|b| format!("%{b:02X}"))
                    .collect()
            }
        })
        .collect()
}

fn request(rng: &mut Rng, repo: &str) -> Request<Body> {
    let method = rng
        .pick(&[
            "GET", "GET", "POST", "POST", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH",
            "FOO",
        ])
        .to_string();
    let path = path(rng);
    let provider = path
        .strip_prefix("/hooks/")
        .map(|p| p.split(['/', '?']).next().unwrap_or_default().to_owned())
        .unwrap_or_else(|| {
            rng.pick(&["github", "gitlab", "gitea", "generic"])
                .to_string()
        });
    let body: Vec<u8> = match rng.below(5) {
        0 => Vec::new(),
        1 => serde_json::json!({"revision": rng.pick(&["HEAD", "main", "v1", "0000000", ""]) })
            .to_string()
            .into_bytes(),
        2 => rng.bytes(512),
        _ => {
            let body = payload(rng, &provider, repo).to_string().into_bytes();
            if rng.chance(50) {
                mutate(rng, body)
            } else {
                body
            }
        }
    };
    let uri = match path.parse::<axum::http::Uri>() {
        Ok(uri) => uri,
        Err(_) => axum::http::Uri::from_static("/"),
    };
    let mut builder = Request::builder().method(method.as_str()).uri(uri);
    let mut headers: Vec<(String, String)> = Vec::new();
    if rng.chance(60) {
        let token = rng
            .pick(&[VIEWER, OPERATOR, ADMIN, "wrong", ""])
            .to_string();
        let scheme = rng.pick(&["Bearer ", "bearer ", "Basic ", ""]).to_string();
        headers.push(("authorization".into(), format!("{scheme}{token}")));
    }
    if rng.chance(50) {
        let ct = rng
            .pick(&[
                "application/json",
                "application/json; charset=utf-8",
                "text/plain",
                "application/x-www-form-urlencoded",
                "multipart/form-data",
                "",
                "application/jsonx",
            ])
            .to_string();
        headers.push(("content-type".into(), ct));
    }
    if rng.chance(50) {
        let host = rng
            .pick(&[
                "127.0.0.1:7420",
                "localhost:7420",
                "evil.example",
                "[::1]:7420",
                "[::1",
                "a:b:c",
                "",
                "10.0.0.1:7420",
            ])
            .to_string();
        headers.push(("host".into(), host));
    }
    if rng.chance(30) {
        let origin = rng
            .pick(&[
                "http://127.0.0.1:7420",
                "null",
                "http://evil.example",
                "https://localhost:7420",
                "garbage",
                "http://[::1]:7420",
            ])
            .to_string();
        headers.push(("origin".into(), origin));
    }
    if rng.chance(20) {
        headers.push(("x-driftless-request".into(), "1".into()));
    }
    if rng.chance(20) {
        headers.push(("x-driftless-actor".into(), rng.text(300)));
    }
    if rng.chance(15) {
        headers.push(("accept".into(), "text/event-stream".into()));
        if rng.chance(50) {
            headers.push((
                "last-event-id".into(),
                rng.pick(&["0", "-5", "x", "99999999999"]).to_string(),
            ));
        }
    }
    if rng.chance(70) {
        let good = driftless_server::hooks::sign(HOOK_SECRET.as_bytes(), &body);
        let sig = if rng.chance(70) { good } else { rng.text(64) };
        match provider.as_str() {
            "github" => headers.push(("x-hub-signature-256".into(), format!("sha256={sig}"))),
            "gitea" => headers.push(("x-gitea-signature".into(), sig)),
            "gitlab" => headers.push((
                "x-gitlab-token".into(),
                if rng.chance(70) {
                    HOOK_SECRET.to_owned()
                } else {
                    sig
                },
            )),
            _ => headers.push(("x-driftless-signature".into(), format!("sha256={sig}"))),
        }
    }
    if rng.chance(10) {
        headers.push((
            "content-length".into(),
            (rng.next() % 5_000_000).to_string(),
        ));
    }
    for (name, value) in headers {
        // Values a header may not hold are dropped: hyper refuses them before us.
        if let Ok(value) = axum::http::HeaderValue::from_str(&value) {
            builder = builder.header(name, value);
        }
    }
    builder.body(Body::from(body)).expect("request")
}

const SENSIBLE: &[u16] = &[
    200, 202, 400, 401, 403, 404, 405, 408, 413, 415, 421, 422, 503,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_requests_get_successes_or_json_errors() {
    let seed = seed();
    let limit = duration();
    println!("fuzz: seed {seed} (DRIFTLESS_FUZZ_SEED={seed} replays it), {limit:?}");
    let fixture = fixture("");
    let engine = fixture.start();
    let server = driftless_server::Server::new(engine.clone(), &fixture.config).expect("server");
    let routers = [
        server.router_for(Some("127.0.0.1:7420".parse().expect("addr"))),
        driftless_server::Server::open(engine.clone())
            .router_for(Some("127.0.0.1:7420".parse().expect("addr"))),
    ];
    wait_for(Duration::from_secs(30), "first sync", || {
        (fixture.applied().as_deref() == Some("v1")).then_some(())
    })
    .await;
    let repo = fixture.repo().display().to_string();
    let mut rng = Rng(seed);
    let started = Instant::now();
    let mut count = 0u64;
    let mut statuses = std::collections::BTreeMap::<u16, u64>::new();
    while started.elapsed() < limit {
        let request = request(&mut rng, &repo);
        let mut shown = format!(
            "{} {} {:?}",
            request.method(),
            request.uri(),
            request.headers()
        );
        if shown.len() > 400 {
            let mut cut = 400;
            while !shown.is_char_boundary(cut) {
                cut -= 1;
            }
            shown.truncate(cut);
            shown.push('…');
        }
        let is_head = request.method() == axum::http::Method::HEAD;
        let router = routers[rng.below(2)].clone();
        let response = tokio::time::timeout(Duration::from_secs(60), router.oneshot(request))
            .await
            .unwrap_or_else(|_| panic!("seed {seed}: no answer within 60 s to {shown}"))
            .expect("infallible");
        count += 1;
        let status = response.status();
        *statuses.entry(status.as_u16()).or_default() += 1;
        assert!(
            SENSIBLE.contains(&status.as_u16()),
            "seed {seed}: {status} for {shown}"
        );
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if content_type.starts_with("text/event-stream") {
            continue; // a live stream: never ends
        }
        let bytes = tokio::time::timeout(Duration::from_secs(60), response.into_body().collect())
            .await
            .unwrap_or_else(|_| panic!("seed {seed}: body never ended for {shown}"))
            .expect("body")
            .to_bytes();
        if status.is_success() || is_head {
            continue;
        }
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_else(|err| {
            panic!(
                "seed {seed}: {status} for {shown} is not JSON ({err}): {:?}",
                String::from_utf8_lossy(&bytes)
            )
        });
        let error = value["error"].as_str().unwrap_or_default();
        assert!(
            !error.is_empty() && value["detail"].is_string(),
            "seed {seed}: {status} for {shown}: not an error body: {value}"
        );
        assert_eq!(
            error,
            status
                .canonical_reason()
                .unwrap_or_default()
                .to_ascii_lowercase(),
            "seed {seed}: {shown}"
        );
        assert!(
            bytes.len() < 4096,
            "seed {seed}: a {} byte error for {shown}",
            bytes.len()
        );
    }
    println!(
        "fuzz: {count} requests in {:?}; statuses {statuses:?}",
        started.elapsed()
    );
    assert!(count > 0, "no request was made");
    assert!(
        statuses.contains_key(&StatusCode::OK.as_u16()) || count < 50,
        "nothing succeeded: the generator only makes noise"
    );
    engine.shutdown().await;
}
