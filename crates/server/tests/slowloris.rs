//! Connection bounds on real loopback sockets: half-sent request heads and idle
//! connections are closed after the (shortened) timeouts, more silent connections than
//! the cap cannot stop `/healthz` from answering, and the same holds over TLS.

mod support;

use std::time::{Duration, Instant};

use driftless_server::{ConnectionLimits, ServerOptions};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEADER_TIMEOUT: Duration = Duration::from_millis(500);
const IDLE_TIMEOUT: Duration = Duration::from_millis(1500);

fn options(max_connections: usize) -> ServerOptions {
    ServerOptions {
        limits: ConnectionLimits {
            header_read_timeout: HEADER_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            max_connections,
        },
        ..ServerOptions::default()
    }
}

/// Starts an open server with `options` on a free loopback port; returns its address
/// and the engine (shut down by the server when `stop` is sent).
async fn serve(
    options: ServerOptions,
) -> (
    Fixture,
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let fixture = fixture("");
    let engine = fixture.start();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        driftless_server::serve_open(engine, options, listener, async {
            let _ = stopped.await;
        })
        .await
        .expect("serve");
    });
    (fixture, addr, stop, task)
}

/// A connection that sent part of a request head and nothing more.
async fn half_sent(addr: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nX-Slow: 1").as_bytes())
        .await
        .expect("write");
    stream
}

/// Whether the server closed `stream` before `deadline` (reads until EOF or an error).
async fn closed_by(stream: &mut TcpStream, deadline: Instant) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// `GET /healthz` on a fresh connection; the status line.
async fn healthz(addr: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(
            format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    answer.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_headers_are_cut_off_and_healthz_answers_through_a_flood() {
    // More silent connections than the cap: the first 64 fill it, the rest wait in the
    // kernel's backlog until the header timeout frees their slots.
    let (_fixture, addr, stop, task) = serve(options(64)).await;
    let mut flood = Vec::new();
    for _ in 0..120 {
        flood.push(half_sent(&addr).await);
    }
    let started = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(10), healthz(&addr))
        .await
        .expect("/healthz answers during the flood");
    assert_eq!(status, "HTTP/1.1 200 OK");
    println!(
        "/healthz answered after {:?} under the flood",
        started.elapsed()
    );
    // Every half-sent connection is closed within a few header timeouts.
    let deadline = Instant::now() + Duration::from_secs(10);
    for (i, stream) in flood.iter_mut().enumerate() {
        assert!(
            closed_by(stream, deadline).await,
            "half-sent connection {i} still open after {:?}",
            started.elapsed()
        );
    }
    let _ = stop.send(());
    task.await.expect("server task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed() {
    let (_fixture, addr, stop, task) = serve(options(512)).await;
    let mut stream = TcpStream::connect(&addr).await.expect("connect");
    stream
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut buf = [0u8; 256];
    let n = stream.read(&mut buf).await.expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200 OK"));
    // The connection stays open for keep-alive, but not for ever.
    let started = Instant::now();
    assert!(
        closed_by(&mut stream, Instant::now() + IDLE_TIMEOUT * 4).await,
        "an idle kept-alive connection stayed open"
    );
    assert!(started.elapsed() >= HEADER_TIMEOUT.min(IDLE_TIMEOUT) / 2);
    // A connection that never sends a byte is closed too.
    let mut silent = TcpStream::connect(&addr).await.expect("connect");
    assert!(closed_by(&mut silent, Instant::now() + IDLE_TIMEOUT * 4).await);
    let _ = stop.send(());
    task.await.expect("server task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_request_body_is_cut_off() {
    let (_fixture, addr, stop, task) = serve(options(512)).await;
    let mut stream = TcpStream::connect(&addr).await.expect("connect");
    // A complete head promising a body that never comes.
    stream
        .write_all(
            format!(
                "POST /api/v1/apps/web/rollback HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"rev"
            )
            .as_bytes(),
        )
        .await
        .expect("write");
    assert!(
        closed_by(&mut stream, Instant::now() + IDLE_TIMEOUT * 4).await,
        "a stalled body kept the connection open"
    );
    let _ = stop.send(());
    task.await.expect("server task");
}
