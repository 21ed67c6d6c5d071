//! `testenv/run` as a user runs it: the command sees a working cluster, its exit code comes
//! back, and nothing is left running or on disk afterwards, also after Ctrl-C.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use driftless_testenv::{BIN_ENV, KUBECONFIG_ENV, tool};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testenv/run")
}

fn run_cmd() -> Command {
    // Fails with the how-to-build message when the binaries are missing.
    let bin = tool("kubectl").parent().expect("a dir").to_owned();
    let mut cmd = Command::new("bash");
    cmd.arg(script())
        .env(BIN_ENV, bin)
        .env_remove(KUBECONFIG_ENV)
        .env_remove("KUBECONFIG");
    cmd
}

/// The temp dir `testenv/run` reported in its "ready" line on stderr.
fn data_dir(stderr: &str) -> PathBuf {
    let line = stderr
        .lines()
        .find(|l| l.contains("control plane ready"))
        .unwrap_or_else(|| panic!("no ready line in:\n{stderr}"));
    let dir = line
        .rsplit_once("(data in ")
        .expect("data dir")
        .1
        .trim_end_matches(')');
    PathBuf::from(dir)
}

/// Processes whose command line mentions `dir` (etcd, apiserver, ... started for it).
fn processes_using(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(&needle) {
                found.push(cmdline);
            }
        }
    }
    found
}

fn assert_torn_down(dir: &Path) {
    assert!(!dir.exists(), "{} still exists", dir.display());
    let left = processes_using(dir);
    assert!(left.is_empty(), "still running: {left:#?}");
}

#[test]
fn the_command_gets_a_cluster_and_its_exit_code_comes_back() {
    let out = run_cmd()
        .args(["--", "sh", "-c"])
        .arg(
            "\"$DRIFTLESS_TESTENV_BIN/kubectl\" get namespace default --output=name \
             && test \"$KUBECONFIG\" = \"$DRIFTLESS_TESTENV_KUBECONFIG\" && echo same-kubeconfig; \
             exit 7",
        )
        .output()
        .expect("run testenv/run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(7),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_eq!(
        stdout, "namespace/default\nsame-kubeconfig\n",
        "stderr:\n{stderr}"
    );
    assert_torn_down(&data_dir(&stderr));
}

#[test]
fn ctrl_c_tears_everything_down() {
    let mut child = run_cmd()
        .args(["--", "sleep", "600"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start testenv/run");
    let stderr = child.stderr.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut seen = String::new();
    while !seen.contains("control plane ready") {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
            }
            Err(e) => panic!("no ready line ({e}); got:\n{seen}"),
        }
    }
    let dir = data_dir(&seen);
    assert!(
        !processes_using(&dir).is_empty(),
        "the control plane runs before Ctrl-C"
    );

    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    assert!(killed.expect("kill").success());
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130));
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
        seen.push_str(&line);
        seen.push('\n');
    }
    assert!(seen.contains("interrupted; tearing down"), "{seen}");
    assert_torn_down(&dir);
}

#[test]
fn usage_errors_say_what_is_wrong() {
    for (args, message) in [
        (&[][..], "testenv/run: no command given"),
        (&["--"][..], "testenv/run: no command given"),
        (
            &["kubectl"][..],
            "testenv/run: unknown argument 'kubectl' (put the command after --)",
        ),
    ] {
        let out = Command::new("bash")
            .arg(script())
            .args(args)
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with(message), "{args:?}: {stderr}");
        assert!(stderr.contains("usage: testenv/run"), "{stderr}");
    }
}

#[test]
fn servers_stop_even_when_testenv_run_is_killed_outright() {
    // The command waits for our stdin, so closing it ends the command too.
    let mut child = run_cmd()
        .args(["--", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start testenv/run");
    let stdin = child.stdin.take().expect("piped");
    let mut stderr = BufReader::new(child.stderr.take().expect("piped"));
    let mut seen = String::new();
    while !seen.contains("control plane ready") {
        let mut line = String::new();
        let n = stderr.read_line(&mut line).expect("read stderr");
        assert!(n > 0, "testenv/run ended before ready:\n{seen}");
        seen.push_str(&line);
    }
    let dir = data_dir(&seen);
    assert!(!processes_using(&dir).is_empty(), "the control plane runs");

    child.kill().expect("SIGKILL testenv/run"); // no trap can run
    child.wait().expect("wait");
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !processes_using(&dir).is_empty() {
        assert!(
            Instant::now() < deadline,
            "still running: {:#?}",
            processes_using(&dir)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Nobody was left to remove the data dir; the test does.
    std::fs::remove_dir_all(&dir).expect("remove the data dir");
}
