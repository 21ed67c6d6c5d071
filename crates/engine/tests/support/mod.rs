//! Test support for the engine's security tests: real git repositories made with the git
//! CLI, real SOPS files encrypted by testenv's `sops` with a key from its `age-keygen`,
//! and an engine started on a config text.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use driftless_engine::{Config, Engine, EngineOptions};

/// A `git` command isolated from the user's and the system's configuration.
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
        "git {} failed in {}:\n{}",
        args.join(" "),
        cwd.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A working repository (non-bare, branch main) the engine reads as `file://`.
pub struct Repo {
    pub dir: PathBuf,
}

impl Repo {
    pub fn new(dir: &Path) -> Repo {
        std::fs::create_dir_all(dir).expect("repo dir");
        git(dir, &["init", "--quiet", "--initial-branch=main"]);
        Repo {
            dir: dir.to_owned(),
        }
    }

    pub fn write(&self, path: &str, content: impl AsRef<[u8]>) {
        let file = self.dir.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(file, content).expect("write");
    }

    pub fn remove(&self, path: &str) {
        git(&self.dir, &["rm", "--quiet", path]);
    }

    /// Commits everything; returns the new revision.
    pub fn commit(&self, message: &str) -> String {
        git(&self.dir, &["add", "-A"]);
        git(&self.dir, &["commit", "--quiet", "-m", message]);
        git(&self.dir, &["rev-parse", "HEAD"])
    }
}

/// A testenv binary; panics (the test fails loudly) when testenv is not built.
pub fn tool(name: &str) -> PathBuf {
    driftless_testenv::tool(name)
}

pub fn run_ok(command: &mut Command) -> String {
    let out = command.output().expect("run");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An age key made by the real `age-keygen`: (key file, recipient).
pub fn age_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    run_ok(Command::new(tool("age-keygen")).arg("-o").arg(&key));
    let recipient = run_ok(Command::new(tool("age-keygen")).arg("-y").arg(&key))
        .trim()
        .to_owned();
    (key, recipient)
}

/// `plaintext` encrypted by the real `sops` for `recipient`, as `kind` (yaml, dotenv…).
pub fn sops_encrypt(dir: &Path, recipient: &str, kind: &str, plaintext: &str) -> String {
    let plain = dir.join(format!("plain-{}.{kind}", std::process::id()));
    std::fs::write(&plain, plaintext).expect("write plaintext");
    let encrypted = run_ok(
        Command::new(tool("sops"))
            .args([
                "encrypt",
                "--age",
                recipient,
                "--input-type",
                kind,
                "--output-type",
                kind,
            ])
            .arg(&plain)
            .env("SOPS_DISABLE_VERSION_CHECK", "1")
            .env_remove("SOPS_AGE_KEY_FILE")
            .env_remove("SOPS_AGE_KEY"),
    );
    std::fs::remove_file(&plain).expect("remove plaintext");
    encrypted
}

/// Starts a one-shot engine (apps act only when asked) on `yaml`.
pub fn start(yaml: &str, state: &Path) -> Engine {
    let config = Config::parse(yaml, "driftless.yaml", state).expect("valid config");
    Engine::start(
        &config,
        EngineOptions {
            state_dir: state.join("state"),
            cache_dir: state.join("cache"),
            background: false,
        },
    )
    .expect("engine starts")
}

/// Polls `check` until it returns `Some` or `limit` passes; panics with `what` then.
pub async fn eventually<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every file under `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path)
                && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
            {
                found.push(path);
            }
        }
    }
    found
}
