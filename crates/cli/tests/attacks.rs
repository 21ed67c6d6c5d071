//! The attacks of the security review, run against the `driftless` binary as an attacker
//! would run them: a hostile commit in one app's repository, a hostile web page or client
//! on the API, credentials pasted into a repository URL. Each gets a clear error or a
//! refusal, and the daemon keeps serving every other app.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

/// A repository in a new folder `name` of `dir`.
fn repo(dir: &Path, name: &str) -> Repo {
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).expect("mkdir");
    Repo::new(&folder)
}

/// Bytes in `dir` and below (the daemon's state: SQLite, WAL, Git cache).
fn size_of(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(entry.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// One raw HTTP/1.1 exchange; returns the status code (0 when the server closed first).
fn raw_request(base: &str, request: &str) -> u16 {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

#[test]
fn deep_hostile_files_never_take_the_daemon_down_and_every_other_app_keeps_syncing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let victim_repo = repo(tmp.path(), "victim");
    victim_repo
        .write("index.html", "v1\n")
        .commit_push("First page");
    let hostile_repo = repo(tmp.path(), "hostile");
    hostile_repo
        .write("readme.txt", "harmless\n")
        .commit_push("Harmless start");
    let victim_live = tmp.path().join("victim-live");
    let hostile_live = tmp.path().join("hostile-live");
    let config = tmp.path().join("driftless.yaml");
    write_config(
        &config,
        &[
            AppSpec::new("victim", &victim_repo.origin, &victim_live),
            AppSpec::new("hostile", &hostile_repo.origin, &hostile_live),
        ],
    );
    let server = Server::start(&config, &tmp.path().join("state"));
    server.wait_applied("victim", &victim_repo.head(), Duration::from_secs(30));
    server.wait_applied("hostile", &hostile_repo.head(), Duration::from_secs(30));

    // Files that nest far deeper than any stack allows, as JSON and as YAML; before the
    // fix any file containing `sops` went through the SOPS parsers and aborted the
    // process on every start.
    let depth = 200_000;
    let open = "[".repeat(depth);
    let close = "]".repeat(depth);
    // The reviewer's files (`sops` holding no SOPS metadata), and the same with real
    // SOPS metadata. A files app copies files byte for byte: none is SOPS-encrypted
    // within the limits, so each goes live as it is, and nothing parses it deeper.
    let metadata = "\"sops\": {\"mac\": \"m\", \"lastmodified\": \"2026-01-01T00:00:00Z\"}";
    let cases = [
        ("deep.json", format!("{{\"sops\": {open}{close}}}")),
        ("deep.yaml", format!("sops:\n{}x\n", "- ".repeat(depth))),
        (
            "enc.json",
            format!("{{\"data\": {open}{close}, {metadata}}}"),
        ),
        (
            "enc.yaml",
            format!(
                "data:\n{}x\nsops:\n  mac: m\n  lastmodified: '2026-01-01T00:00:00Z'\n",
                "- ".repeat(depth)
            ),
        ),
    ];
    for (name, text) in &cases {
        let name = *name;
        hostile_repo.write(name, text);
        let revision = hostile_repo.commit_push(&format!("Add {name}"));
        let _ = server.post("apps/hostile/refresh", None);
        server.wait_applied("hostile", &revision, Duration::from_secs(30));
        assert_eq!(
            read(&hostile_live.join(name)).as_deref(),
            Some(text.as_str())
        );
        hostile_repo.remove(name);
        hostile_repo.commit_push(&format!("Drop {name}"));

        // Still up, and the other app still follows its Git.
        let answer = client()
            .get(format!("{}/healthz", server.base))
            .send()
            .expect("the daemon answers");
        assert!(answer.status().is_success());
        let page = format!("after {name}\n");
        victim_repo.write("index.html", &page);
        let head = victim_repo.commit_push(&format!("Page after {name}"));
        server.wait_applied("victim", &head, Duration::from_secs(30));
        assert_eq!(read(&victim_live.join("index.html")), Some(page));
    }
    // Read as manifests, each is refused with its place and the limit it broke.
    for (name, text) in &cases {
        let dir = tmp.path().join("render").join(name.replace('.', "-"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join(name), text).expect("write");
        let out = Command::new(bin())
            .arg("render")
            .arg(&dir)
            .output()
            .expect("run driftless render");
        assert!(!out.status.success(), "{name} rendered");
        let err = stderr(&out);
        assert!(err.contains(&format!("{name}:")), "{name}: {err}");
        assert!(err.contains("nest"), "{name}: {err}");
    }
}

#[test]
fn a_kustomize_alias_bomb_fails_fast_with_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("bomb");
    std::fs::create_dir_all(&dir).expect("mkdir");
    // Nine levels of nine aliases each: 9^9 (387 million) nodes once expanded.
    let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
    for level in b'b'..=b'i' {
        let prev = (level - 1) as char;
        let this = level as char;
        text.push_str(&format!(
            "{this}: &{this} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
        ));
    }
    std::fs::write(dir.join("kustomization.yaml"), "resources: [bomb.yaml]\n").expect("write");
    std::fs::write(
        dir.join("bomb.yaml"),
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb\n{text}"),
    )
    .expect("write");
    let started = Instant::now();
    let out = Command::new(bin())
        .arg("render")
        .arg(&dir)
        .output()
        .expect("run driftless render");
    // A hang detector, not a speed target: before the fix this ran for minutes and
    // reached 7 GB.
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(!out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("bomb.yaml"), "{err}");
    assert!(err.to_lowercase().contains("alias"), "{err}");
}

#[test]
fn the_api_refuses_a_hostile_page_and_does_not_store_an_attackers_noise() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = repo(tmp.path(), "site");
    repo.write("index.html", "v1\n").commit_push("First page");
    let live = tmp.path().join("live");
    let config = tmp.path().join("driftless.yaml");
    write_config(&config, &[AppSpec::new("site", &repo.origin, &live)]);
    let state = tmp.path().join("state");
    let server = Server::start(&config, &state);
    server.wait_applied("site", &repo.head(), Duration::from_secs(30));
    let port = server.base.rsplit(':').next().expect("port").to_owned();

    // DNS rebinding: a page served from evil.example resolves to 127.0.0.1.
    let code = raw_request(
        &server.base,
        "GET /api/v1/apps HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    );
    assert!((400..500).contains(&code), "a foreign Host got {code}");
    // CSRF: a cross-site form post (no JSON type, a foreign Origin).
    let code = raw_request(
        &server.base,
        &format!(
            "POST /api/v1/apps/site/suspend HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://evil.example\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!((400..500).contains(&code), "a cross-site POST got {code}");
    let code = raw_request(
        &server.base,
        &format!(
            "POST /api/v1/apps/site/suspend HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(
        (400..500).contains(&code),
        "a simple (no-preflight) POST got {code}"
    );
    assert_eq!(
        server.app("site")["suspended"],
        false,
        "nothing was suspended"
    );

    // 300 unauthenticated POSTs naming a 60 KB app: refused, and the state barely grows.
    let before = size_of(&state);
    let name = "x".repeat(60 * 1024);
    let http = client();
    for _ in 0..300 {
        let answer = http
            .post(format!("{}/api/v1/apps/{name}/sync", server.base))
            .header("content-type", "application/json")
            .send()
            .expect("POST");
        assert!(answer.status().is_client_error(), "{}", answer.status());
    }
    let grown = size_of(&state).saturating_sub(before);
    assert!(
        grown < 2 * 1024 * 1024,
        "300 refused requests grew the state by {grown} bytes"
    );

    // Half-sent headers on many connections: health checks still answer.
    let mut slow = Vec::new();
    for _ in 0..120 {
        let mut stream =
            TcpStream::connect(server.base.trim_start_matches("http://")).expect("connect");
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            .expect("send part");
        slow.push(stream);
    }
    let answer = client()
        .get(format!("{}/healthz", server.base))
        .send()
        .expect("/healthz under a slow-headers flood");
    assert!(answer.status().is_success());
    drop(slow);
}

#[test]
fn credentials_in_a_repository_url_are_refused_at_load_and_never_echoed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = tmp.path().join("driftless.yaml");
    std::fs::write(
        &config,
        "apps:\n  - name: web\n    source:\n      repo: https://deploy:s3cr3t-t0ken@git.example.invalid/org/deploy.git\n    target:\n      files: { root: out }\n",
    )
    .expect("write");
    let out = Command::new(bin())
        .args(["plan", "-c"])
        .arg(&config)
        .output()
        .expect("run driftless plan");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("driftless.yaml:4:"), "file:line:col: {err}");
    assert!(err.contains("credentials"), "says what to do: {err}");
    assert!(
        !err.contains("s3cr3t-t0ken") && !stdout(&out).contains("s3cr3t-t0ken"),
        "the secret is echoed: {err}"
    );
}
