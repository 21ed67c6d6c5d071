//! `testenv/build` refuses clearly when it cannot work: bad arguments, no Go, no proxy.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testenv/build")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("driftless-testenv-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn unknown_argument_is_a_usage_error() {
    let out = Command::new("bash")
        .arg(script())
        .arg("--fast")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "testenv/build: unknown argument '--fast'\nusage: testenv/build [--peers-only] [--flux]\n"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn without_go_it_says_to_install_go() {
    // A PATH with the tools the script needs before it looks for Go, but no Go.
    let tools = temp_dir("nogo");
    for name in ["bash", "dirname", "cat", "sha256sum", "cut"] {
        let which = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output();
        let found = String::from_utf8_lossy(&which.expect("sh").stdout)
            .trim()
            .to_owned();
        assert!(!found.is_empty(), "{name} is not installed");
        std::os::unix::fs::symlink(found, tools.join(name)).expect("symlink");
    }
    let out = Command::new(tools.join("bash"))
        .arg(script())
        .env("PATH", &tools)
        .env("DRIFTLESS_CACHE_DIR", tools.join("cache"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "testenv/build: error: Go is not on PATH. Install Go >= 1.26 (the go.mod files say \
         'go 1.26.0') and retry.\n"
    );
    assert!(out.stdout.is_empty(), "no bin dir is printed on failure");
    std::fs::remove_dir_all(&tools).expect("cleanup");
}

#[test]
fn without_the_module_proxy_it_names_the_proxy() {
    let dir = temp_dir("noproxy");
    let out = Command::new("bash")
        .arg(script())
        .arg("--peers-only")
        .env("DRIFTLESS_CACHE_DIR", dir.join("cache"))
        .env("GOMODCACHE", dir.join("modcache"))
        .env("GOPROXY", "off")
        .output()
        .expect("run");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("module lookup disabled by GOPROXY=off"),
        "Go's own error is shown: {err}"
    );
    assert!(
        err.ends_with(
            "testenv/build: error: [peers] cannot download the pinned Go modules: is the Go \
             module proxy reachable (GOPROXY=off)?\n"
        ),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "no bin dir is printed on failure");
    // Go makes module cache files read-only.
    let _ = Command::new("chmod").args(["-R", "u+w"]).arg(&dir).status();
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
