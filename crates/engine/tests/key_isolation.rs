//! Key isolation (issue 14, item 9): an app decrypts only when it opts in with
//! `decryption.sops`, and then only with its own key source; the daemon's
//! `SOPS_AGE_KEY_FILE` serves only apps that opt in without naming one.
//!
//! The daemon's environment must hold a working key for the attack to mean anything, and
//! the workspace forbids `unsafe` (`std::env::set_var`): so the test runs its body in a
//! child process of this test binary started with the key in its environment.
//! Needs testenv's `sops` and `age-keygen` (`DRIFTLESS_TESTENV_BIN`).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

const VALUE: &str = "isolated-secret-value-5555";
const CHILD: &str = "DRIFTLESS_KEY_ISOLATION_DIR";

fn config(repo: &Path, live: &Path, decryption: &str) -> String {
    format!(
        "apps:\n  - name: web\n    source: {{ repo: {}, path: site }}\n    target: {{ files: {{ root: {} }} }}\n{decryption}",
        repo.display(),
        live.display()
    )
}

#[test]
fn an_app_decrypts_only_with_its_own_key() {
    if let Some(dir) = std::env::var_os(CHILD) {
        return child(PathBuf::from(dir));
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let (key, recipient) = age_key(tmp.path(), "daemon.key");
    let repo = Repo::new(&tmp.path().join("repo"));
    repo.write("site/index.html", "hello\n");
    let text = sops_encrypt(tmp.path(), &recipient, "dotenv", &format!("V={VALUE}\n"));
    repo.write("site/app.env", text);
    repo.commit("one");
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "an_app_decrypts_only_with_its_own_key",
            "--nocapture",
        ])
        .env(CHILD, tmp.path())
        .env("SOPS_AGE_KEY_FILE", &key)
        .env_remove("SOPS_AGE_KEY")
        .output()
        .expect("run the child");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(text.contains("1 passed"), "the child ran the body:\n{text}");
}

/// Runs with the daemon's key in `SOPS_AGE_KEY_FILE`.
fn child(dir: PathBuf) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let repo = dir.join("repo");
        assert!(std::env::var_os("SOPS_AGE_KEY_FILE").is_some());

        // No `decryption:`: the daemon's key must not open the file; nothing applies.
        let live = dir.join("live-none");
        let state = dir.join("none");
        let engine = start(&config(&repo, &live, ""), &state);
        let err = engine
            .sync("web", "test")
            .await
            .expect_err("an encrypted file without decryption: fails")
            .to_string();
        assert!(err.contains("app.env"), "names the file: {err}");
        assert!(err.contains("decryption:"), "names the fix: {err}");
        assert!(
            !live.join("index.html").exists(),
            "nothing of the revision may apply"
        );
        let status = engine.app("web").expect("app");
        assert!(
            status
                .error
                .as_deref()
                .is_some_and(|e| e.contains("app.env")),
            "{:?}",
            status.error
        );
        engine.shutdown().await;

        // Its own key file, which cannot open the file: the daemon's key is not added.
        let (own, _) = age_key(&dir, "own.key");
        let live = dir.join("live-own");
        let state = dir.join("own");
        let engine = start(
            &config(
                &repo,
                &live,
                &format!(
                    "    decryption: {{ sops: {{ ageKeyFile: {} }} }}\n",
                    own.display()
                ),
            ),
            &state,
        );
        let err = engine
            .sync("web", "test")
            .await
            .expect_err("the app's own key cannot decrypt")
            .to_string();
        assert!(err.contains("app.env"), "{err}");
        assert!(!live.join("index.html").exists());
        engine.shutdown().await;

        // Opted in without a key source: the daemon's environment applies.
        let live = dir.join("live-env");
        let state = dir.join("env");
        let engine = start(
            &config(&repo, &live, "    decryption: { sops: {} }\n"),
            &state,
        );
        engine.sync("web", "test").await.expect("decrypts");
        let text = std::fs::read_to_string(live.join("app.env")).expect("live");
        assert!(text.contains(VALUE), "{text}");
        engine.shutdown().await;
    });
}
