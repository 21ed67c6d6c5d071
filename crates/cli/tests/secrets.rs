//! SOPS secrets through the whole loop: a file encrypted by the real `sops` lands
//! decrypted in the live folder, and its value reaches nothing else the process writes —
//! not the API, the diff, the history, the events, the log or the state database.
//!
//! Needs the real `sops` and `age-keygen` from testenv (`DRIFTLESS_TESTENV_BIN`).

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::*;

const PLAINTEXT: &str = "correct-horse-battery-staple-42";

fn tool(name: &str) -> PathBuf {
    let dir = std::env::var_os("DRIFTLESS_TESTENV_BIN").expect(
        "DRIFTLESS_TESTENV_BIN must name testenv's bin dir (run scripts/test, or testenv/build)",
    );
    PathBuf::from(dir).join(name)
}

fn run_ok(command: &mut Command) -> String {
    let out = command.output().expect("run");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file under `dir`, as bytes, that contains `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = fs::read(&path)
                && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
            {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn a_sops_secret_goes_live_decrypted_and_nowhere_else() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let key = tmp.path().join("age.key");
    run_ok(Command::new(tool("age-keygen")).arg("-o").arg(&key));
    let recipient = run_ok(Command::new(tool("age-keygen")).arg("-y").arg(&key))
        .trim()
        .to_owned();

    let repo = Repo::new(tmp.path());
    let plain = tmp.path().join("plain.env");
    fs::write(&plain, format!("DB_PASSWORD={PLAINTEXT}\nDB_USER=app\n")).expect("write");
    let encrypted = run_ok(
        Command::new(tool("sops"))
            .args([
                "encrypt",
                "--age",
                &recipient,
                "--input-type",
                "dotenv",
                "--output-type",
                "dotenv",
            ])
            .arg(&plain)
            .env("SOPS_DISABLE_VERSION_CHECK", "1"),
    );
    assert!(!encrypted.contains(PLAINTEXT), "sops did not encrypt");
    repo.write("secret.env", &encrypted)
        .write("app.conf", "workers = 4\n");
    let first = repo.commit_push("Add config and an encrypted secret");

    let live = tmp.path().join("live");
    let state = tmp.path().join("state");
    let config = tmp.path().join("driftless.yaml");
    fs::write(
        &config,
        format!(
            "apps:\n  - name: site\n    source: {{ repo: {}, ref: main, interval: 1s }}\n    target:\n      files: {{ root: {} }}\n    sync: {{ auto: true, selfHeal: false }}\n    decryption:\n      sops: {{ ageKeyFile: {} }}\n",
            repo.origin.display(),
            live.display(),
            key.display()
        ),
    )
    .expect("config");
    let server = Server::start(&config, &state);
    server.wait_applied("site", &first, Duration::from_secs(20));
    assert_eq!(
        read(&live.join("secret.env")).as_deref(),
        Some(format!("DB_PASSWORD={PLAINTEXT}\nDB_USER=app\n").as_str()),
        "the live file must hold what `sops -d` prints"
    );

    // A live edit of the secret file: the diff says it differs and shows neither value.
    fs::write(live.join("secret.env"), "DB_PASSWORD=typed-by-hand-999\n").expect("edit");
    wait_until(Duration::from_secs(10), "the drift to show", || {
        server.app("site")["syncStatus"] == "OutOfSync"
    });
    let diff = server.get("apps/site/diff").to_string();
    assert!(
        diff.contains("secret.env") && diff.contains("decrypted content differs (not shown)"),
        "{diff}"
    );
    assert!(
        !diff.contains("typed-by-hand-999") && !diff.contains(PLAINTEXT),
        "{diff}"
    );
    let plan = Command::new(bin())
        .args(["plan", "--config"])
        .arg(&config)
        .arg("--state")
        .arg(tmp.path().join("plan-state"))
        .output()
        .expect("plan");
    let plan_text = format!("{}{}", stdout(&plan), stderr(&plan));
    assert!(!plan_text.contains(PLAINTEXT), "{plan_text}");

    let out = server.cli(&["sync", "site"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(read(&live.join("secret.env")).is_some_and(|t| t.contains(PLAINTEXT)));

    // Everything else the process shows or writes is free of the value.
    let answers: Vec<String> = [
        "apps",
        "apps/site",
        "apps/site/history",
        "events?limit=1000",
    ]
    .iter()
    .map(|path| server.get(path).to_string())
    .collect();
    for answer in &answers {
        assert!(
            !answer.contains(PLAINTEXT),
            "API leaked the secret: {answer}"
        );
    }
    let log = server.log_text();
    assert!(!log.contains(PLAINTEXT), "the log leaked the secret");
    assert_eq!(
        files_containing(&state, PLAINTEXT),
        Vec::<PathBuf>::new(),
        "state files leaked the secret"
    );
}
