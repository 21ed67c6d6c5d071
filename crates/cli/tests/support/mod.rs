//! Test support for the end-to-end tests: real git repositories (git CLI), a real
//! `driftless serve` process on a free loopback port, pollers and small HTTP helpers.

#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_driftless")
}

/// Fixed identity for every commit the tests make.
pub const AUTHOR: &str = "Ada Tester";
pub const EMAIL: &str = "ada@tests.invalid";

/// A `git` command isolated from the user's and the system's configuration.
pub fn git_command(cwd: &Path) -> Command {
    let mut command = Command::new("git");
    command
        .current_dir(cwd)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .args([
            "-c",
            &format!("user.name={AUTHOR}"),
            "-c",
            &format!("user.email={EMAIL}"),
            "-c",
            "init.defaultBranch=main",
            "-c",
            "core.symlinks=true",
        ]);
    command
}

/// Runs git in `cwd`; panics with git's stderr when it fails. Returns trimmed stdout.
pub fn git(cwd: &Path, args: &[&str]) -> String {
    let output = git_command(cwd)
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

/// A bare "origin" and a working clone, side by side in one folder.
pub struct Repo {
    pub origin: PathBuf,
    pub work: PathBuf,
}

impl Repo {
    /// Makes `<dir>/origin.git` (bare, branch main) and `<dir>/work` (a clone of it).
    pub fn new(dir: &Path) -> Repo {
        let origin = dir.join("origin.git");
        let work = dir.join("work");
        git(
            dir,
            &[
                "init",
                "--quiet",
                "--bare",
                "--initial-branch=main",
                "origin.git",
            ],
        );
        git(dir, &["clone", "--quiet", "origin.git", "work"]);
        git(&work, &["checkout", "--quiet", "-B", "main"]);
        Repo { origin, work }
    }

    /// Writes `text` at `path` in the working clone (folders made as needed).
    pub fn write(&self, path: &str, text: &str) -> &Repo {
        let file = self.work.join(path);
        fs::create_dir_all(file.parent().expect("a file has a folder")).expect("mkdir");
        fs::write(&file, text).expect("write a file in the working clone");
        self
    }

    /// Deletes `path` (a file or a folder) from the working clone.
    pub fn remove(&self, path: &str) -> &Repo {
        let target = self.work.join(path);
        if target.is_dir() {
            fs::remove_dir_all(&target).expect("remove a folder");
        } else {
            fs::remove_file(&target).expect("remove a file");
        }
        self
    }

    /// Stages everything, commits with `subject` and pushes main; returns the full id.
    pub fn commit_push(&self, subject: &str) -> String {
        git(&self.work, &["add", "--all"]);
        git(
            &self.work,
            &["commit", "--quiet", "--allow-empty", "-m", subject],
        );
        git(&self.work, &["push", "--quiet", "origin", "HEAD:main"]);
        self.head()
    }

    /// The full commit id of the working clone's HEAD.
    pub fn head(&self) -> String {
        git(&self.work, &["rev-parse", "HEAD"])
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind an ephemeral port")
        .local_addr()
        .expect("local address")
        .port()
}

/// Polls `condition` until it holds or `limit` passes; panics naming `what` on timeout.
pub fn wait_until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    loop {
        if condition() {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Like [`wait_until`], but hands back the value `probe` produced.
pub fn wait_for<T>(limit: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One app of a test config.
pub struct AppSpec<'a> {
    pub name: &'a str,
    pub repo: &'a Path,
    pub path: &'a str,
    pub root: &'a Path,
    pub interval: &'a str,
    pub prune: bool,
    pub self_heal: bool,
    pub auto: bool,
    /// `target.files.postSync` argv.
    pub post_sync: Option<Vec<&'a str>>,
}

impl<'a> AppSpec<'a> {
    pub fn new(name: &'a str, repo: &'a Path, root: &'a Path) -> AppSpec<'a> {
        AppSpec {
            name,
            repo,
            path: "",
            root,
            interval: "1s",
            prune: false,
            self_heal: false,
            auto: true,
            post_sync: None,
        }
    }
}

/// Writes a config file with `apps` at `path`.
pub fn write_config(path: &Path, apps: &[AppSpec<'_>]) {
    let mut text = String::from("apps:\n");
    for app in apps {
        text.push_str(&format!(
            "  - name: {}\n    source:\n      repo: {}\n      ref: main\n      path: \"{}\"\n      interval: {}\n    target:\n      files:\n        root: {}\n{}    sync:\n      auto: {}\n      prune: {}\n      selfHeal: {}\n",
            app.name,
            app.repo.display(),
            app.path,
            app.interval,
            app.root.display(),
            app.post_sync.as_ref().map_or_else(String::new, |argv| format!(
                "        postSync: {}\n",
                serde_json::to_string(argv).expect("argv as JSON")
            )),
            app.auto,
            app.prune,
            app.self_heal,
        ));
    }
    fs::write(path, text).expect("write the config");
}

/// A running `driftless serve`, killed on drop; its log is printed when a test fails.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub log: PathBuf,
    pub config: PathBuf,
    pub state: PathBuf,
}

impl Server {
    /// Starts `serve` on a free port with its state in `state` and waits for /readyz.
    pub fn start(config: &Path, state: &Path) -> Server {
        let server = Server::spawn(config, state);
        server.wait_ready();
        server
    }

    /// Starts `serve` without waiting.
    pub fn spawn(config: &Path, state: &Path) -> Server {
        let port = free_port();
        let log = state.with_extension(format!("{port}.log"));
        let out = fs::File::create(&log).expect("create the server log");
        let err = out.try_clone().expect("clone the log handle");
        let child = Command::new(bin())
            .args(["serve", "-c"])
            .arg(config)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--state"])
            .arg(state)
            .env("RUST_LOG", "info")
            .env("USER", "tester")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn driftless serve");
        Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            config: config.to_path_buf(),
            state: state.to_path_buf(),
        }
    }

    pub fn wait_ready(&self) {
        let client = client();
        let url = format!("{}/readyz", self.base);
        wait_until(
            Duration::from_secs(20),
            "the server to answer /readyz",
            || {
                client
                    .get(&url)
                    .send()
                    .is_ok_and(|r| r.status().is_success())
            },
        );
    }

    /// `<base>/api/v1/<path>`.
    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v1/{path}", self.base)
    }

    pub fn get(&self, path: &str) -> Value {
        get_json(&self.api(path))
    }

    pub fn post(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        post_json(&self.api(path), body)
    }

    pub fn app(&self, name: &str) -> Value {
        self.get(&format!("apps/{name}"))
    }

    /// Whole sync records, newest first: the list has change counts only, so each row
    /// is read again through `history/{id}` for its change set and postSync output.
    pub fn history(&self, name: &str) -> Vec<Value> {
        match self.get(&format!("apps/{name}/history")) {
            Value::Array(rows) => rows
                .iter()
                .map(|row| self.get(&format!("apps/{name}/history/{}", row["id"])))
                .collect(),
            other => panic!("history is not a list: {other}"),
        }
    }

    /// Event kinds recorded for `app`, oldest first.
    pub fn event_kinds(&self, app: &str) -> Vec<String> {
        let events = self.get(&format!("events?app={app}&limit=1000"));
        let mut kinds: Vec<(i64, String)> = events
            .as_array()
            .expect("events are a list")
            .iter()
            .map(|e| {
                (
                    e["id"].as_i64().expect("event id"),
                    e["kind"].as_str().expect("event kind").to_owned(),
                )
            })
            .collect();
        kinds.sort();
        kinds.into_iter().map(|(_, k)| k).collect()
    }

    /// Asks the app to look at Git now and waits until it applied `revision`.
    pub fn wait_applied(&self, app: &str, revision: &str, limit: Duration) {
        let _ = self.post(&format!("apps/{app}/refresh"), None);
        wait_until(limit, &format!("{app} to apply {revision}"), || {
            let status = self.app(app);
            status["appliedRevision"] == revision && status["syncStatus"] == "Synced"
        });
    }

    /// Runs `driftless app ARGS --server <base>`.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .arg("app")
            .args(args)
            .args(["--server", &self.base])
            .env("USER", "tester")
            .output()
            .expect("run driftless app")
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "----- driftless serve log ({}) -----\n{}\n----- end of log -----",
                self.log.display(),
                self.log_text()
            );
        }
    }
}

/// Sends SIGTERM to a child process.
pub fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM failed");
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client")
}

pub fn get_json(url: &str) -> Value {
    let response = client().get(url).send().expect("GET");
    let status = response.status();
    let text = response.text().expect("body");
    assert!(status.is_success(), "GET {url}: {status}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {url}: not JSON ({e}): {text}"))
}

/// POSTs `body` (JSON) with an actor header; returns the status and the JSON answer
/// (`null` when empty).
pub fn post_json(url: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = client().post(url).header("x-driftless-actor", "tester");
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().expect("POST");
    let status = response.status().as_u16();
    let text = response.text().expect("body");
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {url}: not JSON ({e}): {text}"))
    };
    (status, value)
}

/// Every file below `root`, as sorted paths relative to it.
pub fn files_under(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(_) => out.push(
                    path.strip_prefix(root)
                        .expect("below root")
                        .display()
                        .to_string(),
                ),
                Err(_) => {}
            }
        }
    }
    out.sort();
    out
}

/// Reads a file, `None` when it does not exist.
pub fn read(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok()
}

/// Appends `text` to a file in place (an edit behind Git's back).
pub fn append(path: &Path, text: &str) {
    let mut file = fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open a live file");
    file.write_all(text.as_bytes()).expect("append");
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}
