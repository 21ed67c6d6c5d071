//! The GitOps loop on host files, end to end: real Git repositories (git CLI,
//! `git fast-import`), real `driftless serve` processes on loopback, the JSON API.
//!
//! 1. commit-to-live for an app of 1,000 files (every file changes): with the
//!    post-receive hook of the quickstart (POST /refresh) and with polling at 1 s;
//! 2. drift-to-healed: one live file edited, polled every 1 ms until restored;
//! 3. steady state of `serve` with 1,000 apps x 100 files (one repository, a path per
//!    app, interval 30 s): time to the first full sync, then RSS and CPU over 60 s idle;
//! 4. no-op reconcile of 1,000 apps: POST /refresh to each, until every lastCheckedAt
//!    has moved; total, per app, CPU seconds.
//!
//! Prints a table and writes bench/results/loop-<date>.json. `--quick` runs the
//! smallest sizes once (CI smoke, under a minute) and writes to the temp folder;
//! `--out FILE` writes elsewhere; `DRIFTLESS_BIN` runs another driftless binary.
//! The 1,000-app scenario runs once (3 no-op refresh rounds), the others 5 times.
//! Run with `cargo bench -p driftless --bench loop [-- --quick]`.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// Sizes and repetitions of one run of the bench.
struct Sizes {
    quick: bool,
    /// Files in the commit-to-live app.
    big_files: usize,
    runs: usize,
    /// Apps and files per app in the steady-state setup.
    apps: usize,
    files_per_app: usize,
    idle: Duration,
    refresh_runs: usize,
}

impl Sizes {
    fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                quick,
                big_files: 100,
                runs: 1,
                apps: 20,
                files_per_app: 10,
                idle: Duration::from_secs(5),
                refresh_runs: 1,
            }
        } else {
            Sizes {
                quick,
                big_files: 1_000,
                runs: 5,
                apps: 1_000,
                files_per_app: 100,
                idle: Duration::from_secs(60),
                refresh_runs: 3,
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Git

fn git(cwd: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(cwd)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// One commit on refs/heads/main of `repo` (bare) with `files` added or changed, on top
/// of the current tip when there is one. Returns the new commit id.
fn commit_files(repo: &Path, files: &[(String, Vec<u8>)], message: &str, time: u64) -> String {
    let parent = Command::new("git")
        .args(["rev-parse", "--verify", "-q", "refs/heads/main"])
        .current_dir(repo)
        .output()
        .expect("git runs");
    let parent = String::from_utf8_lossy(&parent.stdout).trim().to_owned();
    let mut stream = Vec::new();
    writeln!(stream, "commit refs/heads/main").expect("write to memory");
    writeln!(stream, "author Bench <bench@example.com> {time} +0000").expect("write");
    writeln!(stream, "committer Bench <bench@example.com> {time} +0000").expect("write");
    writeln!(stream, "data {}\n{message}", message.len()).expect("write");
    if !parent.is_empty() {
        writeln!(stream, "from {parent}").expect("write");
    }
    for (path, content) in files {
        writeln!(stream, "M 644 inline {path}\ndata {}", content.len()).expect("write");
        stream.extend_from_slice(content);
        stream.push(b'\n');
    }
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(repo)
        .stdin(Stdio::piped())
        .spawn()
        .expect("git fast-import runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(&stream)
        .expect("feeding fast-import");
    assert!(child.wait().expect("fast-import ends").success());
    git(repo, &["rev-parse", "refs/heads/main"])
}

fn big_content(i: usize, revision: usize) -> Vec<u8> {
    format!(
        "file {i:04} revision {revision}\n{}\n",
        "abcdefgh".repeat(25 + i % 10)
    )
    .into_bytes()
}

// ---------------------------------------------------------------------------------------
// The server process

struct Server {
    child: Child,
    pid: u32,
    base: String,
    http: reqwest::blocking::Client,
}

impl Server {
    fn start(bin: &Path, config: &Path, state: &Path, log: &Path, rust_log: &str) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let log_file = std::fs::File::create(log).expect("log file");
        let child = Command::new(bin)
            .arg("serve")
            .arg("-c")
            .arg(config)
            .arg("--state")
            .arg(state)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("RUST_LOG", rust_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("driftless serve starts");
        let mut server = Server {
            pid: child.id(),
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("HTTP client"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "driftless serve exited ({status}):\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            if server
                .http
                .get(format!("{}/healthz", server.base))
                .send()
                .is_ok_and(|r| r.status().is_success())
            {
                return server;
            }
            assert!(Instant::now() < deadline, "serve did not answer /healthz");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn get(&self, path: &str) -> Value {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .expect("GET");
        assert!(response.status().is_success(), "GET {path}: {response:?}");
        response.json().expect("JSON answer")
    }

    fn refresh(&self, app: &str) {
        let response = self
            .http
            .post(format!("{}/api/v1/apps/{app}/refresh", self.base))
            .send()
            .expect("POST refresh");
        assert!(
            response.status().is_success(),
            "refresh {app}: {response:?}"
        );
    }

    /// Waits until `app` shows `revision` applied and Synced; returns its status.
    fn wait_synced(&self, app: &str, revision: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let status = self.get(&format!("/api/v1/apps/{app}"));
            if status["syncStatus"] == "Synced"
                && status["revision"] == revision
                && status["appliedRevision"] == revision
            {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "app {app} not synced to {revision} in {limit:?}: {}",
                serde_json::to_string(&json!({
                    "syncStatus": status["syncStatus"],
                    "revision": status["revision"],
                    "applied": status["appliedRevision"],
                    "error": status["error"],
                }))
                .unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `app` has had no step for `quiet` (its lastCheckedAt stays put).
    fn wait_quiet(&self, app: &str, quiet: Duration) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = self.get(&format!("/api/v1/apps/{app}"))["lastCheckedAt"].clone();
        let mut since = Instant::now();
        while since.elapsed() < quiet {
            assert!(Instant::now() < deadline, "app {app} never went quiet");
            std::thread::sleep(Duration::from_millis(20));
            let now = self.get(&format!("/api/v1/apps/{app}"))["lastCheckedAt"].clone();
            if now != last {
                last = now;
                since = Instant::now();
            }
        }
    }

    fn sample(&self) -> ProcSample {
        ProcSample::read(self.pid)
    }

    fn stop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("serve {} ignored SIGTERM for 30 s; killing it", self.pid);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------
// /proc

/// CPU time (seconds) of the process itself and of its waited-for children, RSS and
/// thread count, from /proc/<pid>/stat and /proc/<pid>/status.
#[derive(Clone, Copy)]
struct ProcSample {
    at: Instant,
    cpu_self: f64,
    cpu_children: f64,
    rss_mb: f64,
    threads: u64,
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

impl ProcSample {
    fn read(pid: u32) -> ProcSample {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/pid/stat");
        // Fields after the command name (which may hold spaces) start at field 3.
        let rest = &stat[stat.rfind(')').expect("stat has (comm)") + 2..];
        let fields: Vec<f64> = rest
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0.0))
            .collect();
        let ticks = clock_ticks();
        let status =
            std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/pid/status");
        let value = |key: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        ProcSample {
            at: Instant::now(),
            cpu_self: (fields[11] + fields[12]) / ticks,
            cpu_children: (fields[13] + fields[14]) / ticks,
            rss_mb: value("VmRSS:") as f64 / 1024.0,
            threads: value("Threads:"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Figures

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Median, min and max in milliseconds, with the samples.
fn stats_ms(samples: &[Duration]) -> Value {
    let mut sorted: Vec<f64> = samples.iter().map(|d| ms(*d)).collect();
    sorted.sort_by(f64::total_cmp);
    json!({
        "runs": sorted.len(),
        "median": sorted[sorted.len() / 2],
        "min": sorted[0],
        "max": sorted[sorted.len() - 1],
        "samples": samples.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
    })
}

fn fmt_stats(v: &Value) -> String {
    if v["runs"].as_u64() == Some(1) {
        format!("{:.1} ms (1 run)", v["median"].as_f64().unwrap_or(0.0))
    } else {
        format!(
            "{:.1} ms ({:.1}–{:.1}, {} runs)",
            v["median"].as_f64().unwrap_or(0.0),
            v["min"].as_f64().unwrap_or(0.0),
            v["max"].as_f64().unwrap_or(0.0),
            v["runs"]
        )
    }
}

fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
        / 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Log lines containing `needle`, and the distinct apps (`app=NAME`) they name.
fn count_in_log(log: &Path, needle: &str) -> (usize, usize) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(needle)).collect();
    let apps: BTreeSet<&str> = lines
        .iter()
        .filter_map(|l| l.split("app=").nth(1)?.split_whitespace().next())
        .collect();
    (lines.len(), apps.len())
}

// ---------------------------------------------------------------------------------------
// 1 and 2: one app of many files

fn app_config(name: &str, repo: &Path, path: &str, root: &Path, interval: &str) -> String {
    format!(
        "  - name: {name}\n    source:\n      repo: {}\n      ref: main\n      path: {path}\n      interval: {interval}\n    target:\n      files:\n        root: {}\n    sync:\n      auto: true\n      prune: true\n      selfHeal: true\n",
        repo.display(),
        root.display()
    )
}

/// Waits until every file `dir/fileNNNN.txt` has the content of `revision`.
fn wait_live(dir: &Path, files: usize, revision: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut pending: BTreeSet<usize> = (0..files).collect();
    loop {
        pending.retain(|&i| {
            std::fs::read(dir.join(format!("file{i:04}.txt"))).ok()
                != Some(big_content(i, revision))
        });
        if pending.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} files still without revision {revision} after {limit:?}",
            pending.len()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

struct Push {
    work: PathBuf,
    revision: usize,
}

impl Push {
    /// Makes the next commit (all files changed) in the work repository; returns its id.
    fn prepare(&mut self, files: usize) -> String {
        self.revision += 1;
        let changed: Vec<(String, Vec<u8>)> = (0..files)
            .map(|i| (format!("app/file{i:04}.txt"), big_content(i, self.revision)))
            .collect();
        commit_files(
            &self.work,
            &changed,
            &format!("revision {}\n", self.revision),
            1_700_000_000 + self.revision as u64 * 60,
        )
    }

    fn push(&self) {
        git(&self.work, &["push", "-q", "origin", "main"]);
    }
}

fn single_app(bin: &Path, base: &Path, sizes: &Sizes) -> Value {
    let files = sizes.big_files;
    let origin = base.join("single/origin.git");
    let work = base.join("single/work.git");
    std::fs::create_dir_all(&origin).expect("mkdir");
    std::fs::create_dir_all(&work).expect("mkdir");
    git(&origin, &["init", "-q", "--bare", "-b", "main"]);
    git(&work, &["init", "-q", "--bare", "-b", "main"]);
    git(
        &work,
        &["remote", "add", "origin", &origin.display().to_string()],
    );
    let mut push = Push {
        work: work.clone(),
        revision: 0,
    };
    let initial: Vec<(String, Vec<u8>)> = (0..files)
        .map(|i| (format!("app/file{i:04}.txt"), big_content(i, 0)))
        .collect();
    let mut head = commit_files(&work, &initial, "initial\n", 1_700_000_000);
    push.push();

    // The quickstart's post-receive hook: a push refreshes the app at once.
    let write_hook = |port_base: &str| {
        let hook = origin.join("hooks/post-receive");
        std::fs::write(
            &hook,
            format!(
                "#!/bin/sh\n'{}' app refresh big --server {port_base} >/dev/null 2>&1 || true\n",
                bin.display()
            ),
        )
        .expect("write hook");
        let _ = Command::new("chmod").arg("755").arg(&hook).status();
    };

    let mut results = serde_json::Map::new();
    for (variant, interval) in [("hook", "30s"), ("poll_1s", "1s")] {
        let dir = base.join(format!("single/{variant}"));
        let live = dir.join("live");
        std::fs::create_dir_all(&live).expect("mkdir");
        let config = dir.join("driftless.yaml");
        std::fs::write(
            &config,
            format!(
                "apps:\n{}",
                app_config("big", &origin, "app", &live, interval)
            ),
        )
        .expect("write config");
        let hook_path = origin.join("hooks/post-receive");
        let _ = std::fs::remove_file(&hook_path);
        let started = Instant::now();
        let mut server = Server::start(
            bin,
            &config,
            &dir.join("state"),
            &dir.join("serve.log"),
            "info",
        );
        server.wait_synced("big", &head, Duration::from_secs(120));
        let initial_sync = started.elapsed();
        if variant == "hook" {
            write_hook(&server.base);
        }
        server.wait_quiet("big", Duration::from_millis(300));

        let mut to_live = Vec::new();
        let mut push_times = Vec::new();
        let mut sync_spans = Vec::new();
        for _ in 0..sizes.runs {
            head = push.prepare(files);
            let t0 = Instant::now();
            push.push();
            push_times.push(t0.elapsed());
            wait_live(&live, files, push.revision, Duration::from_secs(120));
            to_live.push(t0.elapsed());
            let status = server.wait_synced("big", &head, Duration::from_secs(60));
            let history = server.get("/api/v1/apps/big/history?limit=1");
            let record = &history[0];
            assert_eq!(record["revision"], head.as_str(), "history shows the push");
            let span = record["finishedAt"].as_i64().unwrap_or(0)
                - record["startedAt"].as_i64().unwrap_or(0);
            sync_spans.push(Duration::from_millis(span.max(0) as u64));
            assert_eq!(status["syncStatus"], "Synced");
            server.wait_quiet("big", Duration::from_millis(300));
        }
        let mut entry = json!({
            "interval": interval,
            "trigger": if variant == "hook" { "post-receive hook: driftless app refresh (POST /refresh)" } else { "poll only" },
            "initial_sync_ms": ms(initial_sync),
            "commit_to_live_ms": stats_ms(&to_live),
            "push_ms": stats_ms(&push_times),
            "sync_record_span_ms": stats_ms(&sync_spans),
        });

        if variant == "hook" {
            // 2. drift-to-healed, on the same app.
            let mut heal = Vec::new();
            for run in 0..sizes.runs {
                let i = (run * 137 + 42) % files;
                let path = live.join(format!("file{i:04}.txt"));
                let original = std::fs::read(&path).expect("live file");
                let t0 = Instant::now();
                std::fs::write(&path, b"tampered behind Git's back\n").expect("tamper");
                let deadline = t0 + Duration::from_secs(60);
                loop {
                    if std::fs::read(&path).ok().as_deref() == Some(original.as_slice()) {
                        break;
                    }
                    assert!(Instant::now() < deadline, "drift was not healed in 60 s");
                    std::thread::sleep(Duration::from_millis(1));
                }
                heal.push(t0.elapsed());
                server.wait_synced("big", &head, Duration::from_secs(60));
                server.wait_quiet("big", Duration::from_millis(300));
            }
            entry["drift_to_healed_ms"] = stats_ms(&heal);
        }
        server.stop();
        results.insert(variant.to_owned(), entry);
    }
    let _ = std::fs::remove_file(origin.join("hooks/post-receive"));
    json!({ "files": files, "variants": results })
}

// ---------------------------------------------------------------------------------------
// 3 and 4: many apps in one repository

fn many_apps(bin: &Path, base: &Path, sizes: &Sizes) -> Value {
    let dir = base.join("many");
    let repo = dir.join("mono.git");
    std::fs::create_dir_all(&repo).expect("mkdir");
    git(&repo, &["init", "-q", "--bare", "-b", "main"]);
    let t = Instant::now();
    let mut files = Vec::with_capacity(sizes.apps * sizes.files_per_app);
    for a in 0..sizes.apps {
        for f in 0..sizes.files_per_app {
            files.push((
                format!("apps/app-{a:04}/conf/file{f:03}.conf"),
                format!(
                    "app {a} file {f}\nkey = value-{a}-{f}\n{}\n",
                    "#".repeat(40 + f % 20)
                )
                .into_bytes(),
            ));
        }
    }
    let head = commit_files(&repo, &files, "all apps\n", 1_700_000_000);
    drop(files);
    let repo_made = t.elapsed();

    let mut config = String::from("apps:\n");
    for a in 0..sizes.apps {
        config.push_str(&app_config(
            &format!("app-{a:04}"),
            &repo,
            &format!("apps/app-{a:04}"),
            &dir.join(format!("live/app-{a:04}")),
            "30s",
        ));
    }
    let config_path = dir.join("driftless.yaml");
    std::fs::write(&config_path, config).expect("write config");
    let names: Vec<String> = (0..sizes.apps).map(|a| format!("app-{a:04}")).collect();

    // Initial sync: from spawn until every app is Synced at head.
    let log = dir.join("serve.log");
    let start_wall = now_ms();
    let started = Instant::now();
    let server = Server::start(bin, &config_path, &dir.join("state"), &log, "info");
    let answering = started.elapsed();
    for name in &names {
        server.wait_synced(name, &head, Duration::from_secs(1800));
    }
    let initial = started.elapsed();
    let apps = server.get("/api/v1/apps");
    let last_finished = apps
        .as_array()
        .expect("app list")
        .iter()
        .filter_map(|a| a["lastSync"]["finishedAt"].as_i64())
        .max()
        .unwrap_or(start_wall);
    let after_sync = server.sample();

    // 3. Idle: RSS and CPU over the idle window.
    let idle_start = server.sample();
    let mut max_rss = idle_start.rss_mb;
    let mut max_threads = idle_start.threads;
    while idle_start.at.elapsed() < sizes.idle {
        std::thread::sleep(Duration::from_millis(500));
        let s = server.sample();
        max_rss = max_rss.max(s.rss_mb);
        max_threads = max_threads.max(s.threads);
    }
    let idle_end = server.sample();
    let idle_secs = idle_end.at.duration_since(idle_start.at).as_secs_f64();
    let idle_self = idle_end.cpu_self - idle_start.cpu_self;
    let idle_children = idle_end.cpu_children - idle_start.cpu_children;

    // 4. No-op reconcile of every app.
    let mut totals = Vec::new();
    let mut server_side = Vec::new();
    let mut cpu = Vec::new();
    for _ in 0..sizes.refresh_runs {
        let before = server.sample();
        let start_wall = now_ms();
        let t0 = Instant::now();
        for name in &names {
            server.refresh(name);
        }
        let posted = t0.elapsed();
        let mut latest = start_wall;
        for name in &names {
            let deadline = Instant::now() + Duration::from_secs(600);
            loop {
                let checked = server.get(&format!("/api/v1/apps/{name}"))["lastCheckedAt"]
                    .as_i64()
                    .unwrap_or(0);
                if checked > start_wall {
                    latest = latest.max(checked);
                    break;
                }
                assert!(Instant::now() < deadline, "{name} was never checked");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let total = t0.elapsed();
        let after = server.sample();
        totals.push(total);
        server_side.push(Duration::from_millis((latest - start_wall).max(0) as u64));
        cpu.push(json!({
            "posting_ms": ms(posted),
            "cpu_self_s": after.cpu_self - before.cpu_self,
            "cpu_children_s": after.cpu_children - before.cpu_children,
        }));
    }
    let totals_stats = stats_ms(&totals);
    let per_app = totals_stats["median"].as_f64().unwrap_or(0.0) / sizes.apps as f64;

    let watch_failures = count_in_log(&log, "cannot watch for drift");
    let mut drift = serde_json::Map::new();
    if !sizes.quick {
        // Drift on the first and the last app: the last may have no inotify watch.
        for name in [&names[0], &names[names.len() - 1]] {
            let path = dir.join(format!("live/{name}/conf/file007.conf"));
            let original = std::fs::read(&path).expect("live file");
            let t0 = Instant::now();
            std::fs::write(&path, b"tampered\n").expect("tamper");
            let deadline = t0 + Duration::from_secs(120);
            loop {
                if std::fs::read(&path).ok().as_deref() == Some(original.as_slice()) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{name}: drift not healed in 120 s"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            drift.insert(name.clone(), json!(ms(t0.elapsed())));
        }
    }
    let end = server.sample();
    drop(server);
    json!({
        "apps": sizes.apps,
        "files_per_app": sizes.files_per_app,
        "interval": "30s",
        "repository": "one bare repository, apps/app-NNNN per app, one commit",
        "repo_made_ms": ms(repo_made),
        "serve_answering_ms": ms(answering),
        "initial_sync_ms": ms(initial),
        "initial_sync_server_side_ms": last_finished - start_wall,
        "after_initial_sync": {
            "rss_mb": after_sync.rss_mb,
            "threads": after_sync.threads,
            "cpu_self_s": after_sync.cpu_self,
            "cpu_children_s": after_sync.cpu_children,
        },
        "idle": {
            "seconds": idle_secs,
            "rss_mb_start": idle_start.rss_mb,
            "rss_mb_end": idle_end.rss_mb,
            "rss_mb_max": max_rss,
            "threads_max": max_threads,
            "cpu_self_s": idle_self,
            "cpu_children_s": idle_children,
            "cpu_percent_self": 100.0 * idle_self / idle_secs,
            "cpu_percent_with_children": 100.0 * (idle_self + idle_children) / idle_secs,
        },
        "noop_refresh_all": {
            "total_ms": totals_stats,
            "server_side_last_check_ms": stats_ms(&server_side),
            "per_app_ms": per_app,
            "cpu": cpu,
        },
        "watch_failure_log_lines": watch_failures.0,
        "apps_without_drift_watch": watch_failures.1,
        "drift_to_healed_ms": drift,
        "rss_mb_end": end.rss_mb,
    })
}

// ---------------------------------------------------------------------------------------

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes = Sizes::new(quick);
    let args: Vec<String> = std::env::args().collect();
    let out_arg = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    let (bin, origin) = match std::env::var_os("DRIFTLESS_BIN") {
        Some(path) => (PathBuf::from(path), "from DRIFTLESS_BIN"),
        None => (
            PathBuf::from(env!("CARGO_BIN_EXE_driftless")),
            "built by cargo with this bench's profile",
        ),
    };
    println!("driftless binary: {} ({origin})", bin.display());
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let git_version = git(Path::new("."), &["--version"]);
    let started = Instant::now();
    let base = tempfile::tempdir().expect("temp dir");

    let single = single_app(&bin, base.path(), &sizes);
    let many = many_apps(&bin, base.path(), &sizes);
    let total = started.elapsed();

    let hook = &single["variants"]["hook"];
    let poll = &single["variants"]["poll_1s"];
    let idle = &many["idle"];
    let noop = &many["noop_refresh_all"];
    let rows: Vec<(String, String)> = vec![
        (
            format!("initial sync, 1 app x {} files", single["files"]),
            format!("{:.1} ms", hook["initial_sync_ms"].as_f64().unwrap_or(0.0)),
        ),
        (
            format!(
                "commit-to-live, {} files, hook (POST /refresh)",
                single["files"]
            ),
            fmt_stats(&hook["commit_to_live_ms"]),
        ),
        (
            "  of which git push (runs the hook)".to_owned(),
            fmt_stats(&hook["push_ms"]),
        ),
        (
            "  of which sync record span".to_owned(),
            fmt_stats(&hook["sync_record_span_ms"]),
        ),
        (
            format!("commit-to-live, {} files, polling at 1 s", single["files"]),
            fmt_stats(&poll["commit_to_live_ms"]),
        ),
        (
            "drift-to-healed (1 file edited)".to_owned(),
            fmt_stats(&hook["drift_to_healed_ms"]),
        ),
        (
            format!(
                "initial sync, {} apps x {} files",
                many["apps"], many["files_per_app"]
            ),
            format!(
                "{:.1} s (serve answering after {:.0} ms)",
                many["initial_sync_ms"].as_f64().unwrap_or(0.0) / 1000.0,
                many["serve_answering_ms"].as_f64().unwrap_or(0.0)
            ),
        ),
        (
            format!("idle {:.0} s: RSS", idle["seconds"].as_f64().unwrap_or(0.0)),
            format!(
                "{:.1} MB (max {:.1}, {} threads max)",
                idle["rss_mb_end"].as_f64().unwrap_or(0.0),
                idle["rss_mb_max"].as_f64().unwrap_or(0.0),
                idle["threads_max"]
            ),
        ),
        (
            "idle: CPU of serve (self / with git children)".to_owned(),
            format!(
                "{:.1} % / {:.1} % of one core",
                idle["cpu_percent_self"].as_f64().unwrap_or(0.0),
                idle["cpu_percent_with_children"].as_f64().unwrap_or(0.0)
            ),
        ),
        (
            format!("no-op refresh of all {} apps", many["apps"]),
            fmt_stats(&noop["total_ms"]),
        ),
        (
            "  per app".to_owned(),
            format!("{:.2} ms", noop["per_app_ms"].as_f64().unwrap_or(0.0)),
        ),
        (
            "  CPU s (self / children), first run".to_owned(),
            format!(
                "{:.2} / {:.2}",
                noop["cpu"][0]["cpu_self_s"].as_f64().unwrap_or(0.0),
                noop["cpu"][0]["cpu_children_s"].as_f64().unwrap_or(0.0)
            ),
        ),
        (
            "apps without a drift watch (log)".to_owned(),
            format!(
                "{} ({} warnings)",
                many["apps_without_drift_watch"], many["watch_failure_log_lines"]
            ),
        ),
    ];
    let mut rows = rows;
    if let Some(drift) = many["drift_to_healed_ms"].as_object() {
        for (name, value) in drift {
            rows.push((
                format!("drift-to-healed among {} apps: {name}", many["apps"]),
                format!("{:.1} ms", value.as_f64().unwrap_or(0.0)),
            ));
        }
    }
    let width = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    println!();
    for (name, value) in &rows {
        println!("{name:<width$}  {value}");
    }
    println!("\nwhole bench: {:.1} s", total.as_secs_f64());

    let result = json!({
        "bench": "driftless-loop",
        "date": today(),
        "mode": if quick { "quick" } else { "full" },
        "git": git_version,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "binary": bin.display().to_string(),
        "single_app": single,
        "many_apps": many,
        "total_seconds": total.as_secs_f64(),
        "loadavg_before": load_before.trim(),
        "loadavg_after": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
        "inotify_max_user_instances": std::fs::read_to_string("/proc/sys/fs/inotify/max_user_instances").unwrap_or_default().trim(),
        "note": "shared 2-core machine; other builds may run at the same time (see loadavg)",
    });
    let out = if let Some(out) = out_arg {
        out
    } else if quick {
        std::env::temp_dir().join("loop-quick.json")
    } else {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/results");
        std::fs::create_dir_all(&dir).expect("results folder");
        dir.join(format!("loop-{}.json", today()))
    };
    std::fs::write(
        &out,
        serde_json::to_string_pretty(&result).expect("JSON") + "\n",
    )
    .expect("write results");
    println!("wrote {}", out.display());
}
