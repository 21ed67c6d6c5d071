//! End-to-end: the GitOps loop on host files, with real git repositories, real files,
//! real SQLite state and real `driftless` processes on loopback.

mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

const SECS_10: Duration = Duration::from_secs(10);
const SECS_30: Duration = Duration::from_secs(30);

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("driftless-e2e-")
        .tempdir()
        .expect("a temp dir")
}

/// The change-set entries of a history row as (action, path), sorted.
fn changes(row: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = row["changeSet"]["changes"]
        .as_array()
        .expect("a change set")
        .iter()
        .map(|c| {
            (
                c["action"].as_str().expect("action").to_owned(),
                c["id"]["name"].as_str().expect("name").to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

fn pair(action: &str, name: &str) -> (String, String) {
    (action.to_owned(), name.to_owned())
}

#[test]
fn a_new_commit_is_applied_and_recorded_in_history() {
    let tmp = tempdir();
    let repo = Repo::new(tmp.path());
    repo.write("site/index.html", "v1\n");
    let first = repo.commit_push("First page");
    let live = tmp.path().join("live");
    let config = tmp.path().join("driftless.yaml");
    let mut app = AppSpec::new("site", &repo.origin, &live);
    app.path = "site";
    write_config(&config, &[app]);
    let server = Server::start(&config, &tmp.path().join("state"));

    // No refresh: the 1s poll alone must find both revisions.
    wait_until(SECS_10, "the first revision to be applied", || {
        server.app("site")["appliedRevision"] == first.as_str()
    });
    assert_eq!(read(&live.join("index.html")).as_deref(), Some("v1\n"));

    repo.write("site/index.html", "v2\n")
        .write("site/about/team.html", "team\n");
    let second = repo.commit_push("Second page\n\nWith a body.");
    wait_until(SECS_10, "the second revision to be applied", || {
        server.app("site")["appliedRevision"] == second.as_str()
    });
    assert_eq!(read(&live.join("index.html")).as_deref(), Some("v2\n"));
    assert_eq!(
        read(&live.join("about/team.html")).as_deref(),
        Some("team\n")
    );

    let status = server.app("site");
    assert_eq!(status["syncStatus"], "Synced", "{status:#}");
    assert_eq!(status["commit"]["subject"], "Second page");
    assert_eq!(status["commit"]["author"], AUTHOR);

    let history = server.history("site");
    let newest = &history[0];
    assert_eq!(newest["revision"], second.as_str(), "{newest:#}");
    assert_eq!(newest["result"], "succeeded");
    assert_eq!(newest["trigger"], "poll");
    let oldest = history.last().expect("a first sync");
    assert_eq!(oldest["trigger"], "startup", "{oldest:#}");
    assert_eq!(newest["commit"]["author"], AUTHOR);
    assert_eq!(newest["commit"]["email"], EMAIL);
    assert_eq!(newest["commit"]["subject"], "Second page");
    assert_eq!(
        changes(newest),
        vec![
            pair("configured", "index.html"),
            pair("created", "about/team.html"),
        ]
    );
    let oldest = history.last().expect("two syncs");
    assert_eq!(oldest["revision"], first.as_str());
    assert_eq!(oldest["commit"]["subject"], "First page");
    assert_eq!(changes(oldest), vec![pair("created", "index.html")]);
    assert_eq!(history.len(), 2, "one row per sync: {history:#?}");
}

#[test]
fn self_heal_reverts_a_live_edit_within_two_seconds() {
    let tmp = tempdir();
    let repo = Repo::new(tmp.path());
    repo.write("app.conf", "workers = 4\n");
    let first = repo.commit_push("Config");
    let live = tmp.path().join("live");
    let config = tmp.path().join("driftless.yaml");
    let mut app = AppSpec::new("site", &repo.origin, &live);
    // A long interval: only the live watch can notice the edit in time.
    app.interval = "5m";
    app.self_heal = true;
    write_config(&config, &[app]);
    let server = Server::start(&config, &tmp.path().join("state"));
    wait_until(SECS_10, "the first sync", || {
        server.app("site")["appliedRevision"] == first.as_str()
    });

    let file = live.join("app.conf");
    let edited = Instant::now();
    fs::write(&file, "workers = 64\n").expect("edit the live file");
    wait_until(
        Duration::from_secs(2),
        "self-heal to revert the edit",
        || read(&file).as_deref() == Some("workers = 4\n"),
    );
    let took = edited.elapsed();
    eprintln!("self-heal reverted the edit in {took:?}");

    wait_until(SECS_10, "drift-detected then drift-healed events", || {
        let kinds = server.event_kinds("site");
        let detected = kinds.iter().position(|k| k == "drift-detected");
        let healed = kinds.iter().rposition(|k| k == "drift-healed");
        matches!((detected, healed), (Some(d), Some(h)) if d < h)
    });
    let history = server.history("site");
    let heal = history
        .iter()
        .find(|r| r["trigger"] == "selfheal")
        .unwrap_or_else(|| panic!("a self-heal sync in history: {history:#?}"));
    assert_eq!(heal["result"], "succeeded");
    assert_eq!(changes(heal), vec![pair("configured", "app.conf")]);
    wait_until(SECS_10, "the app to be Synced again", || {
        server.app("site")["syncStatus"] == "Synced"
    });
}

#[test]
fn without_self_heal_drift_stays_until_app_sync() {
    let tmp = tempdir();
    let repo = Repo::new(tmp.path());
    repo.write("app.conf", "workers = 4\n");
    let first = repo.commit_push("Config");
    let live = tmp.path().join("live");
    let config = tmp.path().join("driftless.yaml");
    let mut app = AppSpec::new("site", &repo.origin, &live);
    app.interval = "1s";
    write_config(&config, &[app]);
    let server = Server::start(&config, &tmp.path().join("state"));
    wait_until(SECS_10, "the first sync", || {
        server.app("site")["appliedRevision"] == first.as_str()
    });

    let file = live.join("app.conf");
    fs::write(&file, "workers = 64\n").expect("edit the live file");
    wait_until(SECS_10, "OutOfSync with the file listed as drifted", || {
        let status = server.app("site");
        status["syncStatus"] == "OutOfSync"
            && status["drifted"]
                .as_array()
                .is_some_and(|d| d.iter().any(|id| id["name"] == "app.conf"))
    });
    assert!(
        server
            .event_kinds("site")
            .contains(&"drift-detected".to_owned())
    );
    // Several polls later the edit is still there.
    let checked = server.app("site")["lastCheckedAt"].as_i64().unwrap_or(0);
    wait_until(SECS_10, "two more polls", || {
        server.app("site")["lastCheckedAt"].as_i64().unwrap_or(0) > checked + 1500
    });
    assert_eq!(read(&file).as_deref(), Some("workers = 64\n"));
    assert!(
        !server
            .event_kinds("site")
            .contains(&"drift-healed".to_owned()),
        "nothing may heal with selfHeal off"
    );

    let out = server.cli(&["sync", "site"]);
    assert!(out.status.success(), "app sync failed: {}", stderr(&out));
    assert_eq!(read(&file).as_deref(), Some("workers = 4\n"));
    let status = server.app("site");
    assert_eq!(status["syncStatus"], "Synced", "{status:#}");
    assert_eq!(status["drifted"], serde_json::json!([]), "{status:#}");
    let newest = &server.history("site")[0];
    assert_eq!(newest["trigger"], "manual");
    assert_eq!(newest["requestedBy"], "local:tester");
    assert_eq!(changes(newest), vec![pair("configured", "app.conf")]);
}

#[test]
fn deleted_in_git_is_pruned_only_with_prune_and_unmanaged_files_are_never_touched() {
    let tmp = tempdir();
    let repo = Repo::new(tmp.path());
    for dir in ["a", "b"] {
        repo.write(&format!("{dir}/keep.txt"), "keep\n")
            .write(&format!("{dir}/gone.txt"), "gone\n")
            .write(&format!("{dir}/sub/gone-too.txt"), "gone\n");
    }
    let first = repo.commit_push("Two apps");
    let (live_a, live_b) = (tmp.path().join("live-a"), tmp.path().join("live-b"));
    for live in [&live_a, &live_b] {
        fs::create_dir_all(live.join("sub")).expect("mkdir");
        fs::write(live.join("unmanaged.txt"), "mine\n").expect("write");
        fs::write(live.join("sub/unmanaged.txt"), "mine too\n").expect("write");
    }
    let config = tmp.path().join("driftless.yaml");
    let mut pruned = AppSpec::new("pruned", &repo.origin, &live_a);
    pruned.path = "a";
    pruned.prune = true;
    let mut kept = AppSpec::new("kept", &repo.origin, &live_b);
    kept.path = "b";
    kept.prune = false;
    write_config(&config, &[pruned, kept]);
    let server = Server::start(&config, &tmp.path().join("state"));
    for app in ["pruned", "kept"] {
        server.wait_applied(app, &first, SECS_10);
    }
    for live in [&live_a, &live_b] {
        assert_eq!(
            files_under(live),
            vec![
                "gone.txt",
                "keep.txt",
                "sub/gone-too.txt",
                "sub/unmanaged.txt",
                "unmanaged.txt"
            ]
        );
    }

    repo.remove("a/gone.txt")
        .remove("a/sub")
        .remove("b/gone.txt")
        .remove("b/sub");
    let second = repo.commit_push("Drop files");
    for app in ["pruned", "kept"] {
        server.wait_applied(app, &second, SECS_10);
    }
    assert_eq!(
        files_under(&live_a),
        vec!["keep.txt", "sub/unmanaged.txt", "unmanaged.txt"],
        "prune: true deletes what left Git and nothing else"
    );
    assert_eq!(
        files_under(&live_b),
        vec![
            "gone.txt",
            "keep.txt",
            "sub/gone-too.txt",
            "sub/unmanaged.txt",
            "unmanaged.txt"
        ],
        "prune: false keeps what left Git"
    );
    for live in [&live_a, &live_b] {
        assert_eq!(read(&live.join("unmanaged.txt")).as_deref(), Some("mine\n"));
        assert_eq!(
            read(&live.join("sub/unmanaged.txt")).as_deref(),
            Some("mine too\n")
        );
    }
    let newest = &server.history("pruned")[0];
    assert_eq!(
        changes(newest),
        vec![
            pair("deleted", "gone.txt"),
            pair("deleted", "sub/gone-too.txt"),
            pair("unchanged", "keep.txt"),
        ]
    );
}

#[cfg(unix)]
#[test]
fn a_revision_that_does_not_render_applies_nothing_and_a_fix_recovers() {
    let tmp = tempdir();
    let repo = Repo::new(tmp.path());
    repo.write("site/index.html", "v1\n")
        .write("site/a.txt", "a\n");
    let good = repo.commit_push("Good");
    let live = tmp.path().join("live");
    let config = tmp.path().join("driftless.yaml");
    let mut app = AppSpec::new("site", &repo.origin, &live);
    app.path = "site";
    app.interval = "5m";
    app.prune = true;
    write_config(&config, &[app]);
    let server = Server::start(&config, &tmp.path().join("state"));
    server.wait_applied("site", &good, SECS_10);

    // A bad revision: new and changed files, plus a link that leaves the app's path.
    repo.write("site/index.html", "v2\n")
        .write("site/new.txt", "new\n")
        .remove("site/a.txt");
    std::os::unix::fs::symlink("../outside.txt", repo.work.join("site/escape.txt"))
        .expect("make a symlink");
    repo.write("outside.txt", "secret\n");
    let bad = repo.commit_push("Bad link");
    let _ = server.post("apps/site/refresh", None);
    let status = wait_for(SECS_10, "the bad revision to be refused", || {
        let status = server.app("site");
        status["error"]
            .as_str()
            .is_some_and(|e| e.contains(&bad[..7]))
            .then_some(status)
    });
    let error = status["error"].as_str().expect("an error");
    assert!(error.contains("escape.txt"), "names the file: {error}");
    assert!(error.contains("leaves"), "says what is wrong: {error}");
    assert_eq!(status["syncStatus"], "Failed", "{status:#}");
    assert_eq!(
        status["revision"],
        bad.as_str(),
        "shows the refused revision"
    );
    assert_eq!(status["appliedRevision"], good.as_str());
    assert_eq!(files_under(&live), vec!["a.txt", "index.html"]);
    assert_eq!(read(&live.join("index.html")).as_deref(), Some("v1\n"));
    assert!(
        server
            .event_kinds("site")
            .contains(&"render-failed".to_owned())
    );
    let out = server.cli(&["get", "site"]);
    assert!(stdout(&out).contains("escape.txt"), "{}", stdout(&out));

    repo.remove("site/escape.txt");
    let fixed = repo.commit_push("Fix the link");
    server.wait_applied("site", &fixed, SECS_10);
    let status = server.app("site");
    assert!(status["error"].is_null(), "{status:#}");
    assert_eq!(files_under(&live), vec!["index.html", "new.txt"]);
    assert_eq!(read(&live.join("index.html")).as_deref(), Some("v2\n"));
}

#[test]
fn rollback_pins_the_app_until_resume() {
    let tmp = tempdir();
    let repo = Repo::new(tmp.path());
    repo.write("index.html", "v1\n");
    let first = repo.commit_push("v1");
    repo.write("index.html", "v2\n")
        .write("extra.txt", "extra\n");
    let second = repo.commit_push("v2");
    let live = tmp.path().join("live");
    let config = tmp.path().join("driftless.yaml");
    let mut app = AppSpec::new("site", &repo.origin, &live);
    app.interval = "1s";
    app.prune = true;
    write_config(&config, &[app]);
    let server = Server::start(&config, &tmp.path().join("state"));
    server.wait_applied("site", &second, SECS_10);
    assert_eq!(files_under(&live), vec!["extra.txt", "index.html"]);

    let out = server.cli(&["rollback", "site", &first]);
    assert!(out.status.success(), "rollback failed: {}", stderr(&out));
    assert!(
        stdout(&out).contains("Auto-sync is paused"),
        "{}",
        stdout(&out)
    );
    assert_eq!(files_under(&live), vec!["index.html"]);
    assert_eq!(read(&live.join("index.html")).as_deref(), Some("v1\n"));
    let status = server.app("site");
    assert_eq!(status["pinnedRevision"], first.as_str());
    assert_eq!(status["appliedRevision"], first.as_str());

    // New commits are not applied while pinned: several checks pass, v1 stays.
    repo.write("index.html", "v3\n");
    let third = repo.commit_push("v3");
    let checked = server.app("site")["lastCheckedAt"].as_i64().unwrap_or(0);
    let _ = server.post("apps/site/refresh", None);
    wait_until(SECS_10, "two more checks while pinned", || {
        server.app("site")["lastCheckedAt"].as_i64().unwrap_or(0) > checked + 1500
    });
    assert_eq!(read(&live.join("index.html")).as_deref(), Some("v1\n"));
    assert_eq!(server.app("site")["appliedRevision"], first.as_str());

    let history = server.history("site");
    let rollback = &history[0];
    assert_eq!(rollback["trigger"], "rollback", "{rollback:#}");
    assert_eq!(rollback["revision"], first.as_str());
    assert_eq!(rollback["requestedBy"], "local:tester");
    assert_eq!(
        changes(rollback),
        vec![
            pair("configured", "index.html"),
            pair("deleted", "extra.txt")
        ]
    );

    let out = server.cli(&["history", "site"]);
    let table = stdout(&out);
    let row = table
        .lines()
        .find(|l| l.contains("rollback"))
        .unwrap_or_else(|| panic!("a rollback row in `app history`: {table}"));
    assert!(
        row.contains("local:tester") && row.contains(&first[..7]),
        "{row}"
    );

    let out = server.cli(&["resume", "site"]);
    assert!(out.status.success(), "resume failed: {}", stderr(&out));
    wait_until(SECS_10, "the app to follow main again", || {
        server.app("site")["appliedRevision"] == third.as_str()
    });
    assert_eq!(read(&live.join("index.html")).as_deref(), Some("v3\n"));
    let status = server.app("site");
    assert!(status["pinnedRevision"].is_null(), "{status:#}");
}

#[test]
fn rollback_accepts_a_short_commit_id() {
    let tmp = tempdir();
    let repo = Repo::new(tmp.path());
    repo.write("index.html", "v1\n");
    let first = repo.commit_push("v1");
    repo.write("index.html", "v2\n");
    let second = repo.commit_push("v2");
    let live = tmp.path().join("live");
    let config = tmp.path().join("driftless.yaml");
    let mut app = AppSpec::new("site", &repo.origin, &live);
    app.interval = "5m";
    write_config(&config, &[app]);
    let server = Server::start(&config, &tmp.path().join("state"));
    server.wait_applied("site", &second, SECS_10);

    let out = server.cli(&["rollback", "site", &first[..7]]);
    assert!(
        out.status.success(),
        "rollback to {} failed: {}",
        &first[..7],
        stderr(&out)
    );
    assert_eq!(read(&live.join("index.html")).as_deref(), Some("v1\n"));
    assert_eq!(server.app("site")["pinnedRevision"], first.as_str());
}

/// Kills `serve` with SIGKILL while it writes ~3,000 files, restarts it, checks it
/// converges and records the interrupted sync, then deletes the files in Git and checks
/// every one of them is pruned. Returns what is left in the live folder besides
/// `keep.txt` (files driftless wrote and then forgot).
fn kill_mid_apply_then_prune_everything() -> Vec<String> {
    const FILES: usize = 3000;
    let tmp = tempdir();
    let repo = Repo::new(tmp.path());
    repo.write("site/keep.txt", "keep\n");
    for i in 0..FILES {
        repo.write(
            &format!("site/d{:02}/f{i:04}.txt", i % 30),
            &format!("file {i}\n"),
        );
    }
    let big = repo.commit_push("Three thousand files");
    let live = tmp.path().join("live");
    let state = tmp.path().join("state");
    let config = tmp.path().join("driftless.yaml");
    let mut app = AppSpec::new("site", &repo.origin, &live);
    app.path = "site";
    app.interval = "1s";
    app.prune = true;
    write_config(&config, &[app]);
    let managed = |live: &Path| -> Vec<String> {
        files_under(live)
            .into_iter()
            .filter(|f| !f.contains(".driftless-tmp-"))
            .collect()
    };

    let mut server = Server::spawn(&config, &state);
    let seen = wait_for(SECS_30, "the first files to be live", || {
        let n = files_under(&live).len();
        (n > 0).then_some(n)
    });
    server.kill();
    let after_kill = managed(&live).len();
    assert!(
        after_kill < FILES + 1,
        "the kill came too late to interrupt the apply ({seen} seen, {after_kill} after the kill)"
    );
    drop(server);

    let server = Server::start(&config, &state);
    server.wait_applied("site", &big, Duration::from_secs(45));
    assert_eq!(managed(&live).len(), FILES + 1);
    let history = server.history("site");
    let interrupted = history
        .iter()
        .position(|r| r["result"] == "interrupted")
        .unwrap_or_else(|| panic!("an interrupted sync in history: {history:#?}"));
    let succeeded = history
        .iter()
        .position(|r| r["result"] == "succeeded")
        .expect("a successful sync");
    assert!(
        succeeded < interrupted,
        "the success came after: {history:#?}"
    );
    assert_eq!(history[interrupted]["revision"], big.as_str());

    // Delete everything but keep.txt in Git: every one of the files must be pruned.
    repo.remove("site");
    repo.write("site/keep.txt", "keep\n");
    let small = repo.commit_push("Drop them");
    server.wait_applied("site", &small, Duration::from_secs(45));
    assert_eq!(
        managed(&live),
        vec!["keep.txt"],
        "every file written before the kill is pruned (the inventory forgot nothing)"
    );
    files_under(&live)
        .into_iter()
        .filter(|f| f != "keep.txt")
        .collect()
}

#[test]
fn a_kill_mid_apply_is_recorded_as_interrupted_and_no_managed_file_is_orphaned() {
    let leftovers = kill_mid_apply_then_prune_everything();
    if !leftovers.is_empty() {
        eprintln!("temporary files left by the kill (see the ignored test): {leftovers:?}");
    }
}

#[test]
fn a_kill_mid_write_leaves_no_temporary_file_behind() {
    let leftovers = kill_mid_apply_then_prune_everything();
    assert!(leftovers.is_empty(), "orphaned: {leftovers:?}");
}

#[test]
fn two_apps_claiming_one_file_both_fail_and_neither_writes_it() {
    let tmp = tempdir();
    let repo = Repo::new(tmp.path());
    repo.write("a/shared.conf", "from a\n")
        .write("a/only-a.txt", "a\n")
        .write("b/shared.conf", "from b\n")
        .write("b/only-b.txt", "b\n");
    repo.commit_push("Overlap");
    let live = tmp.path().join("live");
    let config = tmp.path().join("driftless.yaml");
    let mut one = AppSpec::new("alpha", &repo.origin, &live);
    one.path = "a";
    let mut two = AppSpec::new("beta", &repo.origin, &live);
    two.path = "b";
    write_config(&config, &[one, two]);
    let server = Server::start(&config, &tmp.path().join("state"));

    for (app, other) in [("alpha", "beta"), ("beta", "alpha")] {
        let status = wait_for(SECS_10, &format!("{app} to report the conflict"), || {
            let status = server.app(app);
            status["error"]
                .as_str()
                .is_some_and(|e| e.contains("ownership conflict"))
                .then_some(status)
        });
        let error = status["error"].as_str().expect("an error");
        assert!(error.contains(&format!("\"{other}\"")), "{error}");
        assert!(error.contains("shared.conf"), "{error}");
        assert_eq!(status["syncStatus"], "Failed", "{status:#}");
    }
    assert!(
        !live.join("shared.conf").exists(),
        "the contested file was written: {:?}",
        read(&live.join("shared.conf"))
    );
}

/// Runs `driftless ARGS` to completion.
fn run(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env("USER", "tester")
        .output()
        .expect("run driftless")
}

fn code(output: &std::process::Output) -> i32 {
    output.status.code().expect("exited normally")
}

#[test]
fn plan_exit_codes_apply_and_validate() {
    let tmp = tempdir();
    let repo = Repo::new(tmp.path());
    repo.write("site/index.html", "v1\n");
    repo.commit_push("v1");
    let live = tmp.path().join("live");
    let config = tmp.path().join("driftless.yaml");
    let mut app = AppSpec::new("site", &repo.origin, &live);
    app.path = "site";
    write_config(&config, &[app]);
    let cfg = config.to_str().expect("utf-8");
    let state = tmp.path().join("state");
    let st = state.to_str().expect("utf-8");

    let plan = run(&["plan", "-c", cfg, "--state", st], tmp.path());
    assert_eq!(code(&plan), 2, "pending change: {}", stderr(&plan));
    assert!(stdout(&plan).contains("index.html"), "{}", stdout(&plan));
    assert!(!live.join("index.html").exists(), "plan changes nothing");

    let apply = run(&["apply", "-c", cfg, "--state", st], tmp.path());
    assert_eq!(code(&apply), 0, "{}", stderr(&apply));
    assert_eq!(read(&live.join("index.html")).as_deref(), Some("v1\n"));

    let again = run(&["apply", "-c", cfg, "--state", st], tmp.path());
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    assert!(
        stdout(&again).contains("already in sync"),
        "{}",
        stdout(&again)
    );

    let plan = run(&["plan", "-c", cfg, "--state", st], tmp.path());
    assert_eq!(code(&plan), 0, "no change: {}", stderr(&plan));
    assert!(stdout(&plan).contains("No changes"), "{}", stdout(&plan));

    fs::write(live.join("index.html"), "edited\n").expect("edit live");
    let plan = run(
        &["plan", "-c", cfg, "--state", st, "-o", "json"],
        tmp.path(),
    );
    assert_eq!(code(&plan), 2, "drift is a pending change");
    let views: Value = serde_json::from_str(&stdout(&plan)).expect("plan -o json");
    assert_eq!(views[0]["tasks"][0]["op"], "update", "{views:#}");

    let plan = run(
        &["plan", "-c", cfg, "--state", st, "--app", "nope"],
        tmp.path(),
    );
    assert_eq!(code(&plan), 1);
    assert!(
        stderr(&plan).contains("no app named \"nope\" in the config (apps: site)"),
        "{}",
        stderr(&plan)
    );

    let bad = tmp.path().join("bad.yaml");
    fs::write(
        &bad,
        "apps:\n  - name: site\n    source: { repo: origin.git }\n    target: { files: { root: live } }\n    sink: true\n",
    )
    .expect("write");
    let plan = run(&["plan", "-c", "bad.yaml", "--state", st], tmp.path());
    assert_eq!(code(&plan), 1);
    assert!(stderr(&plan).contains("bad.yaml:5:5"), "{}", stderr(&plan));
    assert!(stderr(&plan).contains("sink"), "{}", stderr(&plan));

    // validate: every error of a bad folder, each located.
    let folder = tmp.path().join("manifests");
    fs::create_dir_all(&folder).expect("mkdir");
    fs::write(
        folder.join("a.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n",
    )
    .expect("write");
    fs::write(folder.join("b.yaml"), "apiVersion: v1\nkind: [oops\n").expect("write");
    fs::write(
        folder.join("c.yaml"),
        "apiVersion: v1\nmetadata:\n  name: nokind\n",
    )
    .expect("write");
    let validate = run(&["validate", folder.to_str().expect("utf-8")], tmp.path());
    assert_eq!(code(&validate), 1, "{}", stdout(&validate));
    let err = stderr(&validate);
    assert!(err.contains("b.yaml:3:1: syntax error"), "{err}");
    assert!(
        err.contains("c.yaml:1:1: missing required field kind"),
        "{err}"
    );
    assert!(err.contains("2 errors"), "{err}");
    fs::remove_file(folder.join("b.yaml")).expect("rm");
    fs::remove_file(folder.join("c.yaml")).expect("rm");
    let validate = run(&["validate", folder.to_str().expect("utf-8")], tmp.path());
    assert_eq!(code(&validate), 0, "{}", stderr(&validate));
    assert!(
        stdout(&validate).contains("valid, 1 objects"),
        "{}",
        stdout(&validate)
    );
}

#[test]
fn serve_refuses_bad_configs_with_locations_and_changes_nothing() {
    let tmp = tempdir();
    let cases = [
        (
            "unknown.yaml",
            "apps:\n  - name: web\n    source: { repo: origin.git }\n    target: { files: { root: live } }\n    snyc: {}\n",
            vec!["unknown.yaml:5:5", "snyc"],
        ),
        (
            "duration.yaml",
            "apps:\n  - name: web\n    source: { repo: origin.git, interval: soon }\n    target: { files: { root: live } }\n",
            vec!["duration.yaml:3:", "invalid duration \"soon\""],
        ),
        (
            "dupes.yaml",
            "apps:\n  - name: web\n    source: { repo: origin.git }\n    target: { files: { root: live } }\n  - name: web\n    source: { repo: origin.git }\n    target: { files: { root: live2 } }\n",
            vec![
                "dupes.yaml:5:11",
                "duplicate app name \"web\"",
                "dupes.yaml:2:11",
            ],
        ),
    ];
    for (file, text, wanted) in cases {
        fs::write(tmp.path().join(file), text).expect("write");
        let state = tmp.path().join("state");
        let port = free_port().to_string();
        let mut child = Command::new(bin())
            .args([
                "serve",
                "-c",
                file,
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .arg("--state")
            .arg(&state)
            .current_dir(tmp.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn serve");
        let status = wait_for(SECS_10, "serve to exit", || child.try_wait().ok().flatten());
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err)
            .expect("read stderr");
        assert_eq!(status.code(), Some(1), "{file}: {err}");
        for needle in wanted {
            assert!(err.contains(needle), "{file}: missing {needle:?} in {err}");
        }
        assert!(!state.exists(), "{file}: the state folder was created");
        assert!(
            !tmp.path().join("live").exists(),
            "{file}: live was created"
        );
    }
}

#[test]
fn quickstart_serves_the_whole_loop() {
    let tmp = tempdir();
    let dir = tmp.path().join("qs");
    let port = free_port();
    let log = tmp.path().join("quickstart.log");
    let mut child = spawn_quickstart(&dir, port, &log);
    let guard = KillOnDrop(&mut child, log.clone());

    wait_until(SECS_30, "the quickstart guide", || {
        read(&log).is_some_and(|t| t.contains("driftless quickstart is running"))
    });
    let text = read(&log).unwrap_or_default();
    assert!(text.contains("synced revision"), "{text}");
    let live = fs::canonicalize(&dir).expect("dir").join("live");
    assert_eq!(
        files_under(&live),
        vec!["bin/healthcheck.sh", "config/app.conf", "index.html"]
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(live.join("bin/healthcheck.sh"))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111, "executable bit: {mode:o}");
        let mode = fs::metadata(live.join("index.html"))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0, "not executable: {mode:o}");
    }

    let index = live.join("index.html");
    let original = read(&index).expect("index.html");
    append(&index, "tampered\n");
    wait_until(
        Duration::from_secs(2),
        "self-heal in the quickstart",
        || read(&index).as_deref() == Some(original.as_str()),
    );

    // A push goes live at once through the post-receive hook (the interval is 10s).
    let work = dir.join("work");
    fs::write(work.join("site/index.html"), "<p>Hello, driftless</p>\n").expect("edit");
    git(&work, &["commit", "--quiet", "-am", "Say hello"]);
    let pushed = Instant::now();
    git(&work, &["push", "--quiet", "origin", "main"]);
    wait_until(Duration::from_secs(5), "the push to go live", || {
        read(&index).as_deref() == Some("<p>Hello, driftless</p>\n")
    });
    eprintln!("push went live in {:?}", pushed.elapsed());

    // Ctrl-C/SIGTERM stops it cleanly; a second run picks up where the first left off,
    // with the hook pointing at the new port.
    sigterm(guard.0);
    let status = wait_for(Duration::from_secs(5), "quickstart to exit", || {
        guard.0.try_wait().ok().flatten()
    });
    assert_eq!(status.code(), Some(0), "{}", read(&log).unwrap_or_default());
    drop(guard);

    let port = free_port();
    let log = tmp.path().join("quickstart-again.log");
    let mut child = spawn_quickstart(&dir, port, &log);
    let guard = KillOnDrop(&mut child, log.clone());
    wait_until(SECS_30, "the second guide", || {
        read(&log).is_some_and(|t| t.contains("driftless quickstart is running"))
    });
    assert!(
        read(&log).is_some_and(|t| t.contains("Reusing the quickstart")),
        "{}",
        read(&log).unwrap_or_default()
    );
    assert_eq!(read(&index).as_deref(), Some("<p>Hello, driftless</p>\n"));
    fs::write(work.join("site/index.html"), "<p>Again</p>\n").expect("edit");
    git(&work, &["commit", "--quiet", "-am", "Again"]);
    git(&work, &["push", "--quiet", "origin", "main"]);
    wait_until(Duration::from_secs(5), "the second push to go live", || {
        read(&index).as_deref() == Some("<p>Again</p>\n")
    });
    drop(guard);
}

fn spawn_quickstart(dir: &Path, port: u16, log: &Path) -> std::process::Child {
    let out = fs::File::create(log).expect("log");
    let err = out.try_clone().expect("log");
    Command::new(bin())
        .args(["quickstart", "--dir"])
        .arg(dir)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("spawn quickstart")
}

struct KillOnDrop<'a>(&'a mut std::process::Child, std::path::PathBuf);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if std::thread::panicking() {
            eprintln!("----- log -----\n{}", read(&self.1).unwrap_or_default());
        }
    }
}

#[test]
fn sigterm_stops_serve_cleanly_and_promptly() {
    let tmp = tempdir();
    let repo = Repo::new(tmp.path());
    repo.write("index.html", "v1\n");
    let first = repo.commit_push("v1");
    let live = tmp.path().join("live");
    let config = tmp.path().join("driftless.yaml");
    write_config(&config, &[AppSpec::new("site", &repo.origin, &live)]);
    let mut server = Server::start(&config, &tmp.path().join("state"));
    server.wait_applied("site", &first, SECS_10);

    sigterm(&server.child);
    let asked = Instant::now();
    let status = wait_for(Duration::from_secs(5), "serve to exit on SIGTERM", || {
        server.child.try_wait().ok().flatten()
    });
    eprintln!("serve stopped {:?} after SIGTERM", asked.elapsed());
    assert_eq!(status.code(), Some(0), "{}", server.log_text());
    assert!(
        server.log_text().contains("stopped"),
        "{}",
        server.log_text()
    );
}

#[test]
fn suspend_stops_everything_until_resume_and_self_heal_guards_a_pin() {
    let tmp = tempdir();
    let repo = Repo::new(tmp.path());
    repo.write("app.conf", "v1\n");
    let first = repo.commit_push("v1");
    let live = tmp.path().join("live");
    let config = tmp.path().join("driftless.yaml");
    let mut app = AppSpec::new("site", &repo.origin, &live);
    app.interval = "1s";
    app.self_heal = true;
    write_config(&config, &[app]);
    let server = Server::start(&config, &tmp.path().join("state"));
    server.wait_applied("site", &first, SECS_10);
    let file = live.join("app.conf");

    let out = server.cli(&["suspend", "site"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server.app("site")["suspended"], true);
    fs::write(&file, "edited while suspended\n").expect("edit");
    repo.write("app.conf", "v2\n");
    let second = repo.commit_push("v2");
    let checked = server.app("site")["lastCheckedAt"].as_i64().unwrap_or(0);
    let _ = server.post("apps/site/refresh", None);
    wait_until(SECS_10, "two more checks while suspended", || {
        server.app("site")["lastCheckedAt"].as_i64().unwrap_or(0) > checked + 1500
    });
    assert_eq!(read(&file).as_deref(), Some("edited while suspended\n"));
    assert_eq!(server.app("site")["appliedRevision"], first.as_str());

    let out = server.cli(&["resume", "site"]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_until(SECS_10, "the app to catch up after resume", || {
        server.app("site")["appliedRevision"] == second.as_str()
    });
    assert_eq!(read(&file).as_deref(), Some("v2\n"));

    // Pinned by a rollback, self-heal keeps guarding the pinned content.
    let out = server.cli(&["rollback", "site", &first]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(read(&file).as_deref(), Some("v1\n"));
    fs::write(&file, "edited while pinned\n").expect("edit");
    wait_until(
        Duration::from_secs(2),
        "self-heal back to the pinned v1",
        || read(&file).as_deref() == Some("v1\n"),
    );
    assert_eq!(server.app("site")["pinnedRevision"], first.as_str());
}

#[test]
fn api_errors_are_json_and_say_what_to_do() {
    let tmp = tempdir();
    let repo = Repo::new(tmp.path());
    repo.write("index.html", "v1\n");
    let first = repo.commit_push("v1");
    let live = tmp.path().join("live");
    let config = tmp.path().join("driftless.yaml");
    write_config(&config, &[AppSpec::new("site", &repo.origin, &live)]);
    let server = Server::start(&config, &tmp.path().join("state"));
    server.wait_applied("site", &first, SECS_10);

    let (status, body) = server.post("apps/nope/refresh", None);
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "not found");
    assert!(
        body["detail"].as_str().is_some_and(|d| d.contains("nope")),
        "{body}"
    );

    let (status, body) = server.post("apps/site/rollback", Some(serde_json::json!({"rev": "x"})));
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("\"revision\"")),
        "{body}"
    );

    let out = server.cli(&["rollback", "site", "no-such-branch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no-such-branch"), "{}", stderr(&out));
    let status = server.app("site");
    assert!(
        status["pinnedRevision"].is_null(),
        "a failed rollback pins nothing: {status:#}"
    );
    assert_eq!(read(&live.join("index.html")).as_deref(), Some("v1\n"));
}

#[test]
fn sigterm_mid_apply_finishes_the_step_in_flight() {
    const FILES: usize = 300;
    let tmp = tempdir();
    let repo = Repo::new(tmp.path());
    for i in 0..FILES {
        repo.write(
            &format!("d{:02}/f{i:04}.txt", i % 30),
            &format!("file {i}\n"),
        );
    }
    let big = repo.commit_push("Many files");
    let live = tmp.path().join("live");
    let state = tmp.path().join("state");
    let config = tmp.path().join("driftless.yaml");
    let mut app = AppSpec::new("site", &repo.origin, &live);
    app.interval = "1s";
    write_config(&config, &[app]);
    let mut server = Server::spawn(&config, &state);
    let seen = wait_for(SECS_30, "the first files to be live", || {
        let n = files_under(&live).len();
        (n > 0).then_some(n)
    });
    sigterm(&server.child);
    assert!(seen < FILES, "SIGTERM came after the apply ({seen} files)");
    let status = wait_for(SECS_30, "serve to exit after finishing the apply", || {
        server.child.try_wait().ok().flatten()
    });
    assert_eq!(status.code(), Some(0), "{}", server.log_text());
    assert_eq!(
        files_under(&live).len(),
        FILES,
        "the step in flight was finished"
    );
    drop(server);

    let server = Server::start(&config, &state);
    let history = server.history("site");
    assert_eq!(history.len(), 1, "{history:#?}");
    assert_eq!(history[0]["result"], "succeeded", "{history:#?}");
    assert_eq!(history[0]["revision"], big.as_str());
}

#[cfg(unix)]
#[test]
fn self_heal_restores_a_deleted_file_and_a_changed_mode() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempdir();
    let repo = Repo::new(tmp.path());
    repo.write("conf/app.conf", "workers = 4\n")
        .write("bin/run.sh", "#!/bin/sh\necho ok\n");
    fs::set_permissions(
        repo.work.join("bin/run.sh"),
        fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    let first = repo.commit_push("Files");
    let live = tmp.path().join("live");
    let config = tmp.path().join("driftless.yaml");
    let mut app = AppSpec::new("site", &repo.origin, &live);
    app.interval = "5m";
    app.self_heal = true;
    write_config(&config, &[app]);
    let server = Server::start(&config, &tmp.path().join("state"));
    server.wait_applied("site", &first, SECS_10);
    let mode = |p: &Path| fs::metadata(p).map(|m| m.permissions().mode() & 0o777).ok();

    let conf = live.join("conf/app.conf");
    fs::remove_file(&conf).expect("delete a live file");
    wait_until(
        Duration::from_secs(2),
        "the deleted file to come back",
        || read(&conf).as_deref() == Some("workers = 4\n"),
    );

    fs::remove_dir_all(live.join("conf")).expect("delete a live folder");
    wait_until(
        Duration::from_secs(2),
        "the deleted folder to come back",
        || read(&conf).as_deref() == Some("workers = 4\n"),
    );

    // A live file swapped for a symlink: healing replaces the link, never writes through it.
    let outside = tmp.path().join("precious.txt");
    fs::write(&outside, "precious\n").expect("write");
    fs::remove_file(&conf).expect("rm");
    std::os::unix::fs::symlink(&outside, &conf).expect("symlink");
    wait_until(
        Duration::from_secs(2),
        "the link to be replaced by the file",
        || {
            fs::symlink_metadata(&conf).is_ok_and(|m| m.file_type().is_file())
                && read(&conf).as_deref() == Some("workers = 4\n")
        },
    );
    assert_eq!(read(&outside).as_deref(), Some("precious\n"));

    let script = live.join("bin/run.sh");
    assert_eq!(mode(&script), Some(0o755));
    fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).expect("chmod");
    wait_until(
        Duration::from_secs(2),
        "the executable bit to come back",
        || mode(&script) == Some(0o755),
    );
}

#[test]
fn post_sync_runs_after_a_change_and_its_failure_fails_the_sync() {
    let tmp = tempdir();
    let repo = Repo::new(tmp.path());
    repo.write("app.conf", "v1\n");
    let first = repo.commit_push("v1");
    let live = tmp.path().join("live");
    let config = tmp.path().join("driftless.yaml");
    let mut app = AppSpec::new("site", &repo.origin, &live);
    app.interval = "5m";
    // Runs in the live folder; fails when app.conf says "break".
    app.post_sync = Some(vec![
        "sh",
        "-c",
        "echo reloaded >> ../reloads.log; if grep -q break app.conf; then echo 'bad config' >&2; exit 3; fi",
    ]);
    write_config(&config, &[app]);
    let server = Server::start(&config, &tmp.path().join("state"));
    server.wait_applied("site", &first, SECS_10);
    let reloads = tmp.path().join("reloads.log");
    assert_eq!(read(&reloads).as_deref(), Some("reloaded\n"));

    repo.write("app.conf", "break\n");
    let bad = repo.commit_push("Break it");
    let _ = server.post("apps/site/refresh", None);
    let row = wait_for(SECS_10, "a failed sync of the breaking commit", || {
        server
            .history("site")
            .into_iter()
            .find(|r| r["revision"] == bad.as_str() && r["result"] == "failed")
    });
    let error = row["error"].as_str().expect("an error");
    assert!(error.contains("exit code 3"), "{error}");
    assert!(
        row["postSyncOutput"]
            .as_str()
            .is_some_and(|o| o.contains("bad config")),
        "{row:#}"
    );
    let reload_count = || read(&reloads).unwrap_or_default().lines().count();
    assert!(reload_count() >= 2);

    // Checking again (a refresh, or the watch seeing driftless's own writes) must not
    // record success for a reload that never succeeded: the command runs again.
    let checked = server.app("site")["lastCheckedAt"].as_i64().unwrap_or(0);
    let _ = server.post("apps/site/refresh", None);
    wait_until(SECS_10, "another check", || {
        server.app("site")["lastCheckedAt"].as_i64().unwrap_or(0) > checked
    });
    let status = server.app("site");
    assert_ne!(status["appliedRevision"], bad.as_str(), "{status:#}");
    assert!(
        status["error"]
            .as_str()
            .is_some_and(|e| e.contains("postSync")),
        "{status:#}"
    );

    let before = reload_count();
    let out = server.cli(&["sync", "site"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the retry fails again: {}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("exit code 3"), "{}", stderr(&out));
    assert!(reload_count() > before, "the failed command was run again");
    assert_ne!(server.app("site")["appliedRevision"], bad.as_str());

    // A check that changes nothing runs no command.
    repo.write("app.conf", "v3\n");
    let fixed = repo.commit_push("Fix it");
    server.wait_applied("site", &fixed, SECS_10);
    assert!(server.app("site")["error"].is_null());
    let runs = reload_count();
    let checked = server.app("site")["lastCheckedAt"].as_i64().unwrap_or(0);
    let _ = server.post("apps/site/refresh", None);
    wait_until(SECS_10, "another check", || {
        server.app("site")["lastCheckedAt"].as_i64().unwrap_or(0) > checked
    });
    assert_eq!(reload_count(), runs);
}

#[test]
fn files_are_applied_byte_for_byte_whatever_their_name_or_content() {
    let tmp = tempdir();
    let repo = Repo::new(tmp.path());
    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let names = [
        "empty.txt",
        "with space/naïve café.txt",
        "deep/a/b/c/d/e/f.conf",
        "no-newline",
        "crlf.ini",
    ];
    fs::create_dir_all(repo.work.join("img")).expect("mkdir");
    fs::write(repo.work.join("img/logo.bin"), &binary).expect("write");
    repo.write(names[0], "")
        .write(names[1], "unicode ✓\n")
        .write(names[2], "deep\n")
        .write(names[3], "no newline")
        .write(names[4], "a=1\r\nb=2\r\n");
    let first = repo.commit_push("Odd files");
    let live = tmp.path().join("live");
    let config = tmp.path().join("driftless.yaml");
    write_config(&config, &[AppSpec::new("site", &repo.origin, &live)]);
    let server = Server::start(&config, &tmp.path().join("state"));
    server.wait_applied("site", &first, SECS_10);

    assert_eq!(fs::read(live.join("img/logo.bin")).expect("binary"), binary);
    for name in names {
        assert_eq!(
            fs::read(live.join(name)).expect(name),
            fs::read(repo.work.join(name)).expect(name),
            "{name}"
        );
    }
    let status = server.app("site");
    assert_eq!(
        status["objects"].as_array().map(Vec::len),
        Some(6),
        "{status:#}"
    );
}

#[test]
fn a_ref_that_disappears_is_an_error_and_live_files_stay() {
    let tmp = tempdir();
    let repo = Repo::new(tmp.path());
    repo.write("index.html", "v1\n");
    let first = repo.commit_push("v1");
    let live = tmp.path().join("live");
    let config = tmp.path().join("driftless.yaml");
    let mut app = AppSpec::new("site", &repo.origin, &live);
    app.prune = true;
    app.interval = "5m";
    write_config(&config, &[app]);
    let server = Server::start(&config, &tmp.path().join("state"));
    server.wait_applied("site", &first, SECS_10);

    git(&repo.origin, &["update-ref", "-d", "refs/heads/main"]);
    let _ = server.post("apps/site/refresh", None);
    let status = wait_for(SECS_10, "the missing branch to be reported", || {
        let status = server.app("site");
        status["error"].is_string().then_some(status)
    });
    let error = status["error"].as_str().expect("an error");
    assert!(error.contains("main"), "names the ref: {error}");
    assert_eq!(read(&live.join("index.html")).as_deref(), Some("v1\n"));

    // A force-push of rewritten history brings it back.
    git(&repo.work, &["checkout", "--quiet", "--orphan", "fresh"]);
    repo.write("index.html", "rewritten\n");
    git(&repo.work, &["add", "--all"]);
    git(&repo.work, &["commit", "--quiet", "-m", "Rewritten"]);
    git(
        &repo.work,
        &["push", "--quiet", "--force", "origin", "fresh:main"],
    );
    let rewritten = repo.head();
    server.wait_applied("site", &rewritten, SECS_10);
    assert_eq!(
        read(&live.join("index.html")).as_deref(),
        Some("rewritten\n")
    );
}

#[test]
fn a_rollback_pin_and_history_survive_a_restart() {
    let tmp = tempdir();
    let repo = Repo::new(tmp.path());
    repo.write("index.html", "v1\n");
    let first = repo.commit_push("v1");
    repo.write("index.html", "v2\n");
    let second = repo.commit_push("v2");
    let live = tmp.path().join("live");
    let state = tmp.path().join("state");
    let config = tmp.path().join("driftless.yaml");
    let mut app = AppSpec::new("site", &repo.origin, &live);
    app.interval = "1s";
    write_config(&config, &[app]);
    let mut server = Server::start(&config, &state);
    server.wait_applied("site", &second, SECS_10);
    let out = server.cli(&["rollback", "site", &first]);
    assert!(out.status.success(), "{}", stderr(&out));
    sigterm(&server.child);
    let status = wait_for(SECS_10, "serve to exit", || {
        server.child.try_wait().ok().flatten()
    });
    assert_eq!(status.code(), Some(0));
    drop(server);

    repo.write("index.html", "v3\n");
    repo.commit_push("v3");
    let server = Server::start(&config, &state);
    wait_until(SECS_10, "the restarted server to check the app", || {
        server.app("site")["lastCheckedAt"].is_i64()
    });
    let status = server.app("site");
    assert_eq!(status["pinnedRevision"], first.as_str(), "{status:#}");
    assert_eq!(status["appliedRevision"], first.as_str(), "{status:#}");
    assert_eq!(status["syncStatus"], "Synced", "{status:#}");
    assert_eq!(read(&live.join("index.html")).as_deref(), Some("v1\n"));
    let history = server.history("site");
    let triggers: Vec<&str> = history
        .iter()
        .map(|r| r["trigger"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(triggers.len(), 2, "no sync after the restart: {history:#?}");
    assert_eq!(triggers[0], "rollback", "{history:#?}");
}
