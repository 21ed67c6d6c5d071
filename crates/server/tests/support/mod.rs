//! Test support: a real git repository (git CLI), a real engine on a files target, and
//! small HTTP helpers for router (`oneshot`) and loopback tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use driftless_engine::{Config, Engine, EngineOptions};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub const VIEWER: &str = "viewer-token-1";
pub const OPERATOR: &str = "operator-token-2";
pub const ADMIN: &str = "admin-token-3";
pub const HOOK_SECRET: &str = "It's a Secret to Everybody";

pub fn git(cwd: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .current_dir(cwd)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args([
            "-c",
            "user.name=Ada Tester",
            "-c",
            "user.email=ada@tests.invalid",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .output()
        .expect("git is installed");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A temp folder with a git repo (`repo/`), a target folder (`out/`), state and config.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub config: Config,
}

impl Fixture {
    pub fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    pub fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// Writes `index.html` and commits; returns the commit id.
    pub fn commit(&self, text: &str) -> String {
        std::fs::write(self.repo().join("index.html"), text).expect("write");
        git(&self.repo(), &["add", "-A"]);
        git(
            &self.repo(),
            &["commit", "-q", "-m", &format!("set {text}")],
        );
        git(&self.repo(), &["rev-parse", "HEAD"])
    }

    pub fn start(&self) -> Engine {
        Engine::start(
            &self.config,
            EngineOptions {
                state_dir: self.dir.path().join("state"),
                cache_dir: self.dir.path().join("cache"),
                background: true,
            },
        )
        .expect("engine starts")
    }

    pub fn applied(&self) -> Option<String> {
        std::fs::read_to_string(self.out().join("index.html")).ok()
    }
}

/// One files app `web` following `repo` on main (polling hourly, so only hooks and
/// explicit calls move it), three tokens, a github/gitlab/generic secret, and `extra`
/// YAML appended (e.g. notifications).
pub fn fixture(extra: &str) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).expect("mkdir");
    git(&repo, &["init", "-q"]);
    std::fs::write(dir.path().join("hook.secret"), format!("{HOOK_SECRET}\n")).expect("secret");
    let hash = driftless_server::hash_token;
    let text = format!(
        "apps:\n  - name: web\n    source: {{ repo: repo, ref: main, interval: 1h }}\n    target: {{ files: {{ root: out }} }}\nserver:\n  tokens:\n    - {{ name: ci-viewer, role: viewer, sha256: \"{}\" }}\n    - {{ name: ci-operator, role: operator, sha256: \"{}\" }}\n    - {{ name: root, role: admin, sha256: \"{}\" }}\n  webhooks:\n    github: {{ secretFile: hook.secret }}\n    gitlab: {{ secretFile: hook.secret }}\n    generic: {{ secretFile: hook.secret }}\n{extra}",
        hash(VIEWER),
        hash(OPERATOR),
        hash(ADMIN)
    );
    let config = Config::parse(&text, "driftless.yaml", dir.path()).expect("config parses");
    let fixture = Fixture { dir, config };
    fixture.commit("v1");
    fixture
}

/// Polls `probe` until it answers or `limit` passes.
pub async fn wait_for<T>(limit: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends one request through the router without a socket.
pub async fn call(
    router: &axum::Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = router
        .clone()
        .oneshot(request.body(body.into()).expect("request"))
        .await
        .expect("router answers");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

/// A GitHub push payload for the fixture's repository.
pub fn push_payload(repo: &Path, branch: &str) -> String {
    serde_json::json!({
        "ref": format!("refs/heads/{branch}"),
        "repository": { "clone_url": format!("file://{}", repo.display()), "html_url": "https://example.invalid/x" }
    })
    .to_string()
}

pub fn github_signature(body: &str) -> String {
    format!(
        "sha256={}",
        driftless_server::hooks::sign(HOOK_SECRET.as_bytes(), body.as_bytes())
    )
}
