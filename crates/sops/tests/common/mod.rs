//! Helpers for tests against the real `sops`, `age` and `age-keygen`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The directory holding the real tools: `$DRIFTLESS_TESTENV_BIN`, else `$DRIFTLESS_PEER_BIN`.
/// Panics with a clear message when neither is set: these tests never skip silently.
pub fn tool_dir() -> PathBuf {
    for var in ["DRIFTLESS_TESTENV_BIN", "DRIFTLESS_PEER_BIN"] {
        if let Some(dir) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            let dir = PathBuf::from(dir);
            for tool in ["sops", "age-keygen"] {
                assert!(
                    dir.join(tool).is_file(),
                    "{var}={} has no `{tool}`; build the test environment (testenv/build) or point {var} at a directory with sops, age and age-keygen",
                    dir.display()
                );
            }
            return dir;
        }
    }
    panic!(
        "the SOPS differential tests need the real sops and age-keygen: set DRIFTLESS_TESTENV_BIN (from testenv/build) or DRIFTLESS_PEER_BIN to a directory holding them"
    );
}

/// A fresh age key pair made by the real `age-keygen`.
pub struct Key {
    pub file: PathBuf,
    pub recipient: String,
    pub secret: String,
}

pub fn keygen(dir: &Path, name: &str) -> Key {
    let file = dir.join(format!("{name}.txt"));
    let out = Command::new(tool_dir().join("age-keygen"))
        .arg("-o")
        .arg(&file)
        .output()
        .expect("run age-keygen");
    assert!(
        out.status.success(),
        "age-keygen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).expect("read key file");
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("age-keygen writes the public key")
        .to_string();
    let secret = text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .expect("secret key line")
        .to_string();
    Key {
        file,
        recipient,
        secret,
    }
}

fn sops(dir: &Path) -> Command {
    let mut cmd = Command::new(tool_dir().join("sops"));
    cmd.current_dir(dir);
    for var in [
        "SOPS_AGE_KEY",
        "SOPS_AGE_KEY_FILE",
        "SOPS_AGE_KEY_CMD",
        "SOPS_AGE_RECIPIENTS",
        "SOPS_PGP_FP",
        "SOPS_KMS_ARN",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("SOPS_AGE_SSH_PRIVATE_KEY_FILE", dir.join("no-ssh-key"));
    cmd.env("HOME", dir);
    cmd
}

/// Encrypts `plain` (written to `name`) with the real sops for `recipients`, with extra flags.
pub fn encrypt(
    dir: &Path,
    name: &str,
    plain: &[u8],
    recipients: &[&str],
    extra: &[&str],
) -> Vec<u8> {
    let path = dir.join(name);
    std::fs::write(&path, plain).expect("write plaintext");
    let out = sops(dir)
        .arg("encrypt")
        .arg("--age")
        .arg(recipients.join(","))
        .args(extra)
        .arg(&path)
        .output()
        .expect("run sops encrypt");
    assert!(
        out.status.success(),
        "sops encrypt {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// What the real `sops -d` prints for `encrypted` (saved as `name`), or its error text.
pub fn sops_decrypt(
    dir: &Path,
    name: &str,
    encrypted: &[u8],
    key: &Key,
) -> Result<Vec<u8>, String> {
    let path = dir.join(name);
    std::fs::write(&path, encrypted).expect("write encrypted file");
    let out = sops(dir)
        .env("SOPS_AGE_KEY_FILE", &key.file)
        .arg("-d")
        .arg(&path)
        .output()
        .expect("run sops -d");
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// An unencrypted ssh-ed25519 key made by `ssh-keygen`: (private key path, public key line).
pub fn ssh_keygen(dir: &Path) -> (PathBuf, String) {
    let path = dir.join("id_ed25519");
    let out = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "driftless-test",
            "-f",
        ])
        .arg(&path)
        .output()
        .expect("run ssh-keygen (openssh-client)");
    assert!(
        out.status.success(),
        "ssh-keygen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = std::fs::read_to_string(path.with_extension("pub")).expect("public key");
    let public = public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    (path, public)
}

/// `sops -d` with an SSH private key as the only identity.
pub fn sops_decrypt_ssh(
    dir: &Path,
    name: &str,
    encrypted: &[u8],
    ssh_key: &Path,
) -> Result<Vec<u8>, String> {
    let path = dir.join(name);
    std::fs::write(&path, encrypted).expect("write encrypted file");
    let out = sops(dir)
        .env("SOPS_AGE_SSH_PRIVATE_KEY_FILE", ssh_key)
        .arg("-d")
        .arg(&path)
        .output()
        .expect("run sops -d");
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Encrypts with the real sops using a config file (for rules that have no flag, such as
/// `encrypted_comment_regex` or `mac_only_encrypted`).
pub fn encrypt_with_config(dir: &Path, name: &str, plain: &[u8], config: &str) -> Vec<u8> {
    let path = dir.join(name);
    std::fs::write(&path, plain).expect("write plaintext");
    let config_path = dir.join(format!("{name}.sops-config.yaml"));
    std::fs::write(&config_path, config).expect("write config");
    let out = sops(dir)
        .arg("--config")
        .arg(&config_path)
        .arg("encrypt")
        .arg(&path)
        .output()
        .expect("run sops encrypt");
    assert!(
        out.status.success(),
        "sops encrypt {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
