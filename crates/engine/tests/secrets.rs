//! Decrypted values through the real engine, files target, git and sops/age (issue 14,
//! items 2, 7, 8 and 9): they are written owner-only, never shown in a diff (also after
//! the file left Git, was renamed or became plain, across a restart), never reach
//! events, history, status or logs, and an app decrypts only with its own key.
//!
//! Needs testenv's `sops` and `age-keygen` (`DRIFTLESS_TESTENV_BIN`); fails without them.

mod support;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use driftless_engine::Engine;
use support::*;

const GONE: &str = "gone-value-1111-secret";
const MOVED: &str = "moved-value-2222-secret";
const TURNS_PLAIN: &str = "plain-value-3333-secret";

/// Every log line the engine writes in this test binary (one global subscriber).
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer: Arc<Mutex<Vec<u8>>> = Arc::default();
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || LogWriter(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        buffer
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

/// Asserts that nothing the engine keeps or shows holds `secret`.
async fn assert_nowhere(engine: &Engine, app: &str, state: &Path, secret: &str) {
    let status = serde_json::to_string(&engine.app(app).expect("app")).expect("json");
    assert!(!status.contains(secret), "status: {status}");
    let history = serde_json::to_string(&engine.history(app, 100).expect("history")).expect("json");
    assert!(!history.contains(secret), "history: {history}");
    let events = serde_json::to_string(&engine.store().events(None, None, 1000).expect("events"))
        .expect("json");
    assert!(!events.contains(secret), "events: {events}");
    if let Some(plan) = engine.last_plan(app).expect("app") {
        let plan = serde_json::to_string(&plan).expect("json");
        assert!(!plan.contains(secret), "last plan: {plan}");
    }
    let logs = String::from_utf8_lossy(&logs().lock().expect("log lock")).into_owned();
    assert!(!logs.contains(secret), "logs hold the secret");
    assert_eq!(
        files_containing(state, secret),
        Vec::<std::path::PathBuf>::new(),
        "state files hold the secret"
    );
}

fn files_app(repo: &Repo, live: &Path, key: &Path, extra: &str) -> String {
    format!(
        "apps:\n  - name: web\n    source: {{ repo: {}, path: site }}\n    target: {{ files: {{ root: {}{extra} }} }}\n    sync: {{ prune: true }}\n    decryption: {{ sops: {{ ageKeyFile: {} }} }}\n",
        repo.dir.display(),
        live.display(),
        key.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decrypted_file_never_shows_in_a_diff_after_it_left_git_even_across_a_restart() {
    logs();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (key, recipient) = age_key(tmp.path(), "age.key");
    let repo = Repo::new(&tmp.path().join("repo"));
    for (file, value) in [
        ("gone.env", GONE),
        ("moved.env", MOVED),
        ("plain.env", TURNS_PLAIN),
    ] {
        let text = sops_encrypt(
            tmp.path(),
            &recipient,
            "dotenv",
            &format!("VALUE={value}\n"),
        );
        repo.write(&format!("site/{file}"), text);
    }
    repo.write("site/index.html", "hello\n");
    repo.commit("secrets");
    let live = tmp.path().join("live");
    let config = files_app(&repo, &live, &key, "");

    let engine = start(&config, tmp.path());
    engine.sync("web", "test").await.expect("first sync");
    let on_disk = std::fs::read_to_string(live.join("gone.env")).expect("live file");
    assert!(on_disk.contains(GONE), "decrypted live: {on_disk}");
    // Item 8: decrypted files are the owner's alone; plain files keep Git's mode.
    assert_eq!(mode(&live.join("gone.env")), 0o600);
    assert_eq!(mode(&live.join("index.html")), 0o644);
    engine.shutdown().await;
    drop(engine);

    // The encrypted file leaves Git, another is renamed, a third becomes a plain file.
    repo.remove("site/gone.env");
    git(&repo.dir, &["mv", "site/moved.env", "site/moved2.env"]);
    repo.write("site/plain.env", "PUBLIC=1\n");
    repo.commit("drop, rename, unencrypt");

    // A new engine on the same state: nothing in memory knows what was decrypted.
    let engine = start(&config, tmp.path());
    let plan = engine.plan("web").await.expect("plan");
    let ops: Vec<(String, driftless_model::TaskOp)> = plan
        .tasks
        .iter()
        .map(|t| (t.id.name.clone(), t.op))
        .collect();
    for expected in [
        ("gone.env", driftless_model::TaskOp::Delete),
        ("moved.env", driftless_model::TaskOp::Delete),
        ("plain.env", driftless_model::TaskOp::Update),
    ] {
        assert!(
            ops.iter()
                .any(|(n, op)| n == expected.0 && *op == expected.1),
            "{expected:?} not in {ops:?}"
        );
    }
    let shown = serde_json::to_string(&plan).expect("json");
    for secret in [GONE, MOVED, TURNS_PLAIN] {
        assert!(!shown.contains(secret), "the diff shows {secret}: {shown}");
    }
    assert!(
        shown.contains("decrypted content differs (not shown)"),
        "{shown}"
    );

    engine.sync("web", "test").await.expect("prune sync");
    assert!(!live.join("gone.env").exists() && !live.join("moved.env").exists());
    assert_eq!(mode(&live.join("moved2.env")), 0o600);
    // Plain now: written as Git has it, and its (public) diff is shown again later.
    assert_eq!(mode(&live.join("plain.env")), 0o644);
    for secret in [GONE, MOVED, TURNS_PLAIN] {
        assert_nowhere(&engine, "web", &tmp.path().join("state"), secret).await;
    }
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mode_of_decrypted_files_is_configurable() {
    logs();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (key, recipient) = age_key(tmp.path(), "age.key");
    let repo = Repo::new(&tmp.path().join("repo"));
    let text = sops_encrypt(
        tmp.path(),
        &recipient,
        "dotenv",
        "A=configurable-mode-value\n",
    );
    repo.write("site/app.env", text);
    repo.commit("one");
    let live = tmp.path().join("live");
    // A file left 0644 by an older version is fixed too: the mode is part of the plan.
    std::fs::create_dir_all(&live).expect("live");
    std::fs::write(live.join("app.env"), "A=configurable-mode-value\n").expect("write");
    let engine = start(
        &files_app(&repo, &live, &key, ", decryptedMode: \"0640\""),
        tmp.path(),
    );
    engine.sync("web", "test").await.expect("sync");
    assert_eq!(mode(&live.join("app.env")), 0o640);
    let plan = engine.plan("web").await.expect("plan");
    assert!(!plan.has_changes(), "{plan:?}");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_sync_output_and_errors_never_carry_a_decrypted_value() {
    logs();
    const VALUE: &str = "post-sync-echoed-secret-9876";
    let tmp = tempfile::tempdir().expect("tempdir");
    let (key, recipient) = age_key(tmp.path(), "age.key");
    let repo = Repo::new(&tmp.path().join("repo"));
    let text = sops_encrypt(
        tmp.path(),
        &recipient,
        "dotenv",
        &format!("TOKEN={VALUE}\n"),
    );
    repo.write("site/app.env", text);
    repo.commit("one");
    let live = tmp.path().join("live");
    // The reload command prints the secret and fails: its output goes to history and
    // its failure (quoting the output) to the error, the events and the status.
    let engine = start(
        &files_app(
            &repo,
            &live,
            &key,
            ", postSync: [sh, -c, \"cat app.env; echo reload failed >&2; exit 3\"]",
        ),
        tmp.path(),
    );
    let err = engine
        .sync("web", "test")
        .await
        .expect_err("postSync fails")
        .to_string();
    assert!(!err.contains(VALUE), "{err}");
    assert!(
        err.contains("<redacted:sops>"),
        "redacted, not dropped: {err}"
    );
    let history = engine.history("web", 10).expect("history");
    let record = history.first().expect("a history row");
    let output = record.post_sync_output.clone().unwrap_or_default();
    assert!(
        output.contains("TOKEN=<redacted:sops>") && output.contains("reload failed"),
        "{output}"
    );
    assert!(
        engine
            .app("web")
            .expect("app")
            .error
            .is_some_and(|e| e.contains("postSync command failed")),
        "status shows the failure"
    );
    assert_nowhere(&engine, "web", &tmp.path().join("state"), VALUE).await;
    engine.shutdown().await;
}
