//! Real Git for the tests: repositories made with the git CLI, `git daemon` and
//! `git http-backend` (behind a small Basic-auth HTTP server) on loopback.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Runs git with no system or user configuration and fixed identities; panics with
/// git's stderr on failure. Returns trimmed stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = git_command(dir, args).output().expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

pub fn git_command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Ada Lovelace")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Charles Babbage")
        .env("GIT_COMMITTER_EMAIL", "charles@example.com")
        .env("GIT_TERMINAL_PROMPT", "0");
    cmd
}

/// Whether `id` is in the (bare) repository at `git_dir`.
pub fn has_object(git_dir: &Path, id: &str) -> bool {
    git_command(
        git_dir,
        &[
            "--git-dir",
            ".",
            "cat-file",
            "-e",
            &format!("{id}^{{commit}}"),
        ],
    )
    .stderr(Stdio::null())
    .status()
    .expect("git runs")
    .success()
}

/// An upstream repository in a temp dir: `<base>/<name>` is a non-bare repository
/// with a `main` branch, served from `<base>` by the daemon and the HTTP server.
pub struct Upstream {
    pub base: tempfile::TempDir,
    pub name: String,
}

impl Upstream {
    pub fn new(name: &str) -> Self {
        let base = tempfile::tempdir().expect("tempdir");
        let up = Upstream {
            base,
            name: name.to_owned(),
        };
        std::fs::create_dir_all(up.path()).expect("mkdir");
        up.git(&["init", "-q", "-b", "main"]);
        up
    }

    pub fn path(&self) -> PathBuf {
        self.base.path().join(&self.name)
    }

    pub fn git(&self, args: &[&str]) -> String {
        git(&self.path(), args)
    }

    /// Writes `file` (creating parent dirs) and commits it; returns the commit id.
    pub fn commit_file(&self, file: &str, content: &[u8], message: &str) -> String {
        let full = self.path().join(file);
        std::fs::create_dir_all(full.parent().expect("has parent")).expect("mkdir");
        std::fs::write(&full, content).expect("write");
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
        self.head()
    }

    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }
}

/// Waits until `addr` accepts TCP connections, or panics after `deadline`.
pub fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early with {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on port {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// `git daemon` serving `base` on a loopback port; killed on drop.
pub struct GitDaemon {
    child: Child,
    pub port: u16,
}

impl GitDaemon {
    pub fn start(base: &Path) -> Self {
        Self::start_with(base, &[])
    }

    /// Like `start`, with more `git daemon` options (say `--access-hook=…`).
    pub fn start_with(base: &Path, extra: &[&str]) -> Self {
        // A port picked here may be taken by someone else before the daemon binds it:
        // retry with another one.
        for _ in 0..5 {
            let port = free_port();
            let base_path = format!("--base-path={}", base.display());
            let port_arg = format!("--port={port}");
            let mut args = vec![
                "daemon",
                "--export-all",
                "--reuseaddr",
                "--informative-errors",
                &base_path,
                &port_arg,
                "--listen=127.0.0.1",
            ];
            args.extend_from_slice(extra);
            args.push(base.to_str().expect("utf-8 path"));
            let mut child = git_command(base, &args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("git daemon starts");
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return GitDaemon { child, port };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "git daemon did not listen on {port}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("git daemon could not bind a port");
    }

    pub fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback HTTP server in front of `git http-backend` (CGI) that requires HTTP Basic
/// auth with one username and password. Counts requests that fetch a pack.
pub struct HttpGit {
    pub port: u16,
    stop: Arc<AtomicBool>,
    pub pack_requests: Arc<AtomicUsize>,
    pub unauthorized: Arc<AtomicUsize>,
    accept: Option<JoinHandle<()>>,
}

impl HttpGit {
    pub fn start(project_root: &Path, user: &str, password: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let pack_requests = Arc::new(AtomicUsize::new(0));
        let unauthorized = Arc::new(AtomicUsize::new(0));
        let expected = format!("Basic {}", base64(format!("{user}:{password}").as_bytes()));
        let root = project_root.to_owned();
        let accept = {
            let stop = stop.clone();
            let pack_requests = pack_requests.clone();
            let unauthorized = unauthorized.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let root = root.clone();
                    let expected = expected.clone();
                    let pack_requests = pack_requests.clone();
                    let unauthorized = unauthorized.clone();
                    std::thread::spawn(move || {
                        let _ = serve(stream, &root, &expected, &pack_requests, &unauthorized);
                    });
                }
            })
        };
        HttpGit {
            port,
            stop,
            pack_requests,
            unauthorized,
            accept: Some(accept),
        }
    }

    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for HttpGit {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(handle) = self.accept.take() {
            let _ = handle.join();
        }
    }
}

fn serve(
    stream: TcpStream,
    root: &Path,
    expected_auth: &str,
    pack_requests: &AtomicUsize,
    unauthorized: &AtomicUsize,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut request_line = String::new();
    if reader.read_line(&mut request_line)? == 0 {
        return Ok(());
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("/").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        read_chunked(&mut reader)?
    } else {
        let len: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        body
    };
    if header("authorization").as_deref() != Some(expected_auth) {
        unauthorized.fetch_add(1, Ordering::SeqCst);
        let msg = b"authentication required\n";
        write!(
            writer,
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            msg.len()
        )?;
        writer.write_all(msg)?;
        return writer.flush();
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let contains = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    if method == "POST"
        && path.ends_with("/git-upload-pack")
        && (contains(b"command=fetch") || contains(b"want "))
    {
        pack_requests.fetch_add(1, Ordering::SeqCst);
    }
    let mut cgi = Command::new("/usr/lib/git-core/git-http-backend");
    cgi.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("REQUEST_METHOD", &method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("REMOTE_USER", "tester")
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(v) = header("content-type") {
        cgi.env("CONTENT_TYPE", v);
    }
    if let Some(v) = header("git-protocol") {
        cgi.env("GIT_PROTOCOL", &v).env("HTTP_GIT_PROTOCOL", v);
    }
    if let Some(v) = header("content-encoding") {
        cgi.env("HTTP_CONTENT_ENCODING", v);
    }
    let mut child = cgi.spawn()?;
    let mut stdin = child.stdin.take().expect("piped");
    let writer_thread = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let mut out = Vec::new();
    child.stdout.take().expect("piped").read_to_end(&mut out)?;
    let _ = writer_thread.join();
    child.wait()?;
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| (p, 4))
        .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|p| (p, 2)));
    let (head, content) = match split {
        Some((pos, len)) => (
            String::from_utf8_lossy(&out[..pos]).into_owned(),
            &out[pos + len..],
        ),
        None => (String::new(), &out[..]),
    };
    let mut status = "200 OK".to_owned();
    let mut response = String::new();
    for line in head.lines() {
        let line = line.trim_end();
        if let Some(value) = line.strip_prefix("Status:") {
            status = value.trim().to_owned();
        } else if !line.is_empty() {
            response.push_str(line);
            response.push_str("\r\n");
        }
    }
    write!(
        writer,
        "HTTP/1.1 {status}\r\n{response}Content-Length: {}\r\nConnection: close\r\n\r\n",
        content.len()
    )?;
    writer.write_all(content)?;
    writer.flush()
}

fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line)?;
        let size_text = size_line.trim().split(';').next().unwrap_or("0");
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        if size == 0 {
            // Trailer section ends with an empty line.
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    break;
                }
            }
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
    }
}

pub fn base64(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
