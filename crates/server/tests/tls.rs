//! `serve --tls-cert/--tls-key`: HTTPS with a certificate made by the real openssl CLI;
//! plain HTTP to the TLS port gets nothing; unusable files are refused with a clear error.

use std::path::{Path, PathBuf};
use std::process::Command;

use driftless_engine::{Config, Engine, EngineOptions};
use driftless_server::{TlsConfig, TlsError};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (scripts/test installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A throwaway CA and a server certificate for 127.0.0.1 signed by it:
/// (certificate, key, CA certificate).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).expect("mkdir");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=driftless test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
        ],
    );
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .expect("ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "leaf.ext",
            "-out",
            "cert.pem",
        ],
    );
    (
        dir.join("cert.pem"),
        dir.join("key.pem"),
        dir.join("ca.pem"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_the_given_certificate_and_refuses_plain_http() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key, ca) = certificates(dir.path());
    let tls = TlsConfig::load(&cert, &key).expect("usable certificate and key");
    let config = Config::default();
    let engine = Engine::start(
        &config,
        EngineOptions {
            state_dir: dir.path().join("state"),
            cache_dir: dir.path().join("cache"),
            background: true,
        },
    )
    .expect("engine");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        driftless_server::serve_config(engine, &config, listener, Some(&tls), async {
            let _ = stopped.await;
        })
        .await
        .expect("serves");
    });

    let trusted = reqwest::Certificate::from_pem(&std::fs::read(&ca).expect("ca")).expect("pem");
    let https = reqwest::Client::builder()
        .tls_certs_only([trusted])
        .build()
        .expect("client");
    let answer = https
        .get(format!("https://{addr}/healthz"))
        .send()
        .await
        .expect("an HTTPS answer");
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.expect("body"), "ok");

    // A client that does not trust the certificate is refused, and so is plain HTTP.
    assert!(
        reqwest::get(format!("https://{addr}/healthz"))
            .await
            .is_err()
    );
    let plain = tokio::time::timeout(
        std::time::Duration::from_secs(15),
        reqwest::get(format!("http://{addr}/healthz")),
    )
    .await
    .expect("plain HTTP must not hang");
    assert!(plain.is_err(), "plain HTTP got an answer: {plain:?}");

    let _ = stop.send(());
    served.await.expect("stopped");
}

#[test]
fn unusable_certificate_or_key_files_are_refused_naming_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key, _) = certificates(dir.path());
    let missing = dir.path().join("missing.pem");
    let err = TlsConfig::load(&missing, &key).err().expect("refused");
    assert!(
        matches!(err, TlsError::Certificate { .. }) && err.to_string().contains("missing.pem"),
        "{err}"
    );
    let err = TlsConfig::load(&cert, &cert)
        .err()
        .expect("a certificate is no key");
    assert!(
        matches!(err, TlsError::Key { .. }) && err.to_string().contains("--tls-key"),
        "{err}"
    );
    let (other_cert, _, _) = certificates(&dir.path().join("other"));
    let err = TlsConfig::load(&other_cert, &key)
        .err()
        .expect("key of another certificate");
    assert!(matches!(err, TlsError::Mismatch(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_half_sent_tls_connections_are_cut_off_and_healthz_answers() {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key, ca) = certificates(dir.path());
    let tls = TlsConfig::load(&cert, &key).expect("usable certificate and key");
    let config = Config::default();
    let engine = Engine::start(
        &config,
        EngineOptions {
            state_dir: dir.path().join("state"),
            cache_dir: dir.path().join("cache"),
            background: true,
        },
    )
    .expect("engine");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let options = driftless_server::ServerOptions {
        limits: driftless_server::ConnectionLimits {
            header_read_timeout: Duration::from_millis(500),
            idle_timeout: Duration::from_millis(1500),
            max_connections: 32,
        },
        ..Default::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        driftless_server::serve_config_with(
            engine,
            &config,
            options,
            listener,
            Some(&tls),
            async {
                let _ = stopped.await;
            },
        )
        .await
        .expect("serves");
    });

    // More connections than the cap that never start a handshake.
    let mut silent = Vec::new();
    for _ in 0..60 {
        silent.push(tokio::net::TcpStream::connect(addr).await.expect("connect"));
    }
    // A TLS client that completes the handshake, then sends half a request head.
    let trusted = reqwest::Certificate::from_pem(&std::fs::read(&ca).expect("ca")).expect("pem");
    let https = reqwest::Client::builder()
        .tls_certs_only([trusted])
        .build()
        .expect("client");
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        https.get(format!("https://{addr}/healthz")).send(),
    )
    .await
    .expect("/healthz answers during the flood")
    .expect("an HTTPS answer");
    assert_eq!(answer.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    for (i, stream) in silent.iter_mut().enumerate() {
        let mut buf = [0u8; 64];
        let closed = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, stream.read(&mut buf)).await {
                Err(_) => break false,
                Ok(Ok(0) | Err(_)) => break true,
                Ok(Ok(_)) => continue,
            }
        };
        assert!(closed, "silent connection {i} still open");
    }
    // Writing to a closed connection fails or is ignored; the server is still fine.
    let _ = silent[0].write_all(b"hello").await;
    let answer = https
        .get(format!("https://{addr}/healthz"))
        .send()
        .await
        .expect("an HTTPS answer");
    assert_eq!(answer.status(), 200);
    let _ = stop.send(());
    served.await.expect("stopped");
}
