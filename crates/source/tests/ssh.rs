//! ssh transport against a throwaway OpenSSH server on a loopback port. Skipped (with a
//! message) where `/usr/sbin/sshd` is not installed (Debian package openssh-server).

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use driftless_source::{Credentials, SourceCache, SourceError};
use support::{Upstream, free_port};

const SSHD: &str = "/usr/sbin/sshd";

struct Sshd {
    child: Child,
    port: u16,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
        .arg(path)
        .stdout(Stdio::null())
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success());
}

/// Starts sshd accepting only `client.pub`, or returns None when sshd is unavailable.
fn start_sshd(dir: &Path) -> Option<Sshd> {
    if !Path::new(SSHD).exists() {
        eprintln!("skipped: {SSHD} is not installed (apt-get install openssh-server)");
        return None;
    }
    // sshd insists on its privilege separation directory.
    if let Err(err) = std::fs::create_dir_all("/run/sshd") {
        eprintln!("skipped: sshd needs /run/sshd, which cannot be created here: {err}");
        return None;
    }
    keygen(&dir.join("host"));
    keygen(&dir.join("client"));
    keygen(&dir.join("stranger"));
    std::fs::copy(dir.join("client.pub"), dir.join("authorized_keys")).expect("copy key");
    for _ in 0..5 {
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host\nAuthorizedKeysFile {dir}/authorized_keys\n\
             PidFile {dir}/sshd.pid\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n\
             AcceptEnv GIT_PROTOCOL\nLogLevel ERROR\n",
            dir = dir.display()
        );
        std::fs::write(dir.join("sshd_config"), config).expect("write config");
        let mut child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sshd starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                let host_pub = std::fs::read_to_string(dir.join("host.pub")).expect("host key");
                let mut fields = host_pub.split_whitespace();
                let (kind, key) = (fields.next().expect("kind"), fields.next().expect("key"));
                std::fs::write(
                    dir.join("known_hosts"),
                    format!("[127.0.0.1]:{port} {kind} {key}\n"),
                )
                .expect("write");
                std::fs::write(dir.join("empty_known_hosts"), "").expect("write");
                return Some(Sshd { child, port });
            }
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            assert!(Instant::now() < deadline, "sshd did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("sshd could not start");
}

fn user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn ssh_with_a_key_clones_and_wrong_keys_or_hosts_fail_clearly() {
    let keys = tempfile::tempdir().unwrap();
    let Some(sshd) = start_sshd(keys.path()) else {
        return;
    };
    let up = Upstream::new("deploy");
    up.commit_file("a.yaml", b"a: 1\n", "first");
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = SourceCache::new(cache_dir.path().to_owned());
    let url = format!(
        "ssh://{}@127.0.0.1:{}{}",
        user(),
        sshd.port,
        up.path().display()
    );
    let creds = |key: &str, known: &str| Credentials {
        ssh_key_file: Some(keys.path().join(key)),
        ssh_known_hosts: Some(keys.path().join(known)),
        ..Credentials::default()
    };

    let repo = cache.repo(&url, creds("client", "known_hosts")).unwrap();
    assert_eq!(
        repo.remote_ref("main").unwrap().as_deref(),
        Some(up.head().as_str())
    );
    assert_eq!(repo.update("main").unwrap(), up.head());
    let new = up.commit_file("a.yaml", b"a: 2\n", "second");
    assert_eq!(repo.update("main").unwrap(), new);
    assert_eq!(repo.fetch_count(), 2);
    // scp-like spelling of the same repository shares the cache.
    let scp = cache
        .repo(
            &format!("{}@127.0.0.1:{}", user(), up.path().display()),
            creds("client", "known_hosts"),
        )
        .unwrap();
    assert_eq!(
        scp.key(),
        format!("ssh://{}@127.0.0.1{}", user(), up.path().display())
    );

    let stranger = cache.repo(&url, creds("stranger", "known_hosts")).unwrap();
    let err = stranger.update("main").unwrap_err();
    assert!(matches!(err, SourceError::AuthFailed { .. }), "{err:?}");
    assert!(err.to_string().contains("refused the ssh key"), "{err}");

    let unknown_host = cache
        .repo(&url, creds("client", "empty_known_hosts"))
        .unwrap();
    let err = unknown_host.update("main").unwrap_err();
    assert!(matches!(err, SourceError::HostKey { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("host key verification failed for ssh://"),
        "{err}"
    );

    // No ssh log files are left behind in the cache directory.
    let leftovers: Vec<_> = std::fs::read_dir(cache_dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
