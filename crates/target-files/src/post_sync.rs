//! The optional command run after a sync that changed something.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// Output kept from a post-sync command; the rest is counted and dropped.
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024;

/// How a post-sync command went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostSyncResult {
    /// Exited with status 0 within the timeout.
    pub success: bool,
    /// The exit code; `None` when it could not start, was killed by a signal, or timed out.
    pub exit_code: Option<i32>,
    /// Standard output and standard error, interleaved as written, truncated to
    /// [`MAX_OUTPUT_BYTES`] (a note says so), followed by a note when it failed to
    /// start, was killed by a signal or timed out.
    pub output: String,
}

/// Runs `argv` (no shell) in `cwd` with stdin closed and stdout and stderr on one pipe,
/// killing it after `timeout`.
pub(crate) async fn run(argv: &[String], cwd: &Path, timeout: Duration) -> PostSyncResult {
    let Some((program, args)) = argv.split_first() else {
        return failed(String::from("[driftless: postSync command is empty]"));
    };
    let (reader, writer) = match std::io::pipe() {
        Ok(pair) => pair,
        Err(e) => {
            return failed(format!(
                "[driftless: cannot create a pipe for postSync: {e}]"
            ));
        }
    };
    let writer2 = match writer.try_clone() {
        Ok(w) => w,
        Err(e) => {
            return failed(format!(
                "[driftless: cannot create a pipe for postSync: {e}]"
            ));
        }
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer2)
        .kill_on_drop(true);
    let spawned = cmd.spawn();
    // Our copies of the write end must go, or the reader never sees end-of-file.
    drop(cmd);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => return failed(format!("[driftless: cannot run {program:?}: {e}]")),
    };
    let collector = tokio::task::spawn_blocking(move || collect(reader));

    let (success, exit_code, note) = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => match (status.code(), status.signal()) {
            (Some(code), _) => (code == 0, Some(code), None),
            (None, Some(sig)) => (
                false,
                None,
                Some(format!("[driftless: postSync killed by signal {sig}]")),
            ),
            (None, None) => (
                false,
                None,
                Some(String::from("[driftless: postSync ended without a status]")),
            ),
        },
        Ok(Err(e)) => (
            false,
            None,
            Some(format!("[driftless: waiting for postSync failed: {e}]")),
        ),
        Err(_) => {
            let _ = child.kill().await;
            (
                false,
                None,
                Some(format!(
                    "[driftless: postSync timed out after {timeout:?} and was killed]"
                )),
            )
        }
    };
    // A background process started by the command may hold the pipe open: give the
    // output a moment, then go on without the rest.
    let mut output = match tokio::time::timeout(Duration::from_secs(2), collector).await {
        Ok(Ok(text)) => text,
        _ => String::from("[driftless: output not collected: the pipe was still open]\n"),
    };
    if let Some(note) = note {
        if !output.is_empty() && !output.ends_with('\n') {
            output.push('\n');
        }
        output.push_str(&note);
    }
    PostSyncResult {
        success,
        exit_code,
        output,
    }
}

fn failed(output: String) -> PostSyncResult {
    PostSyncResult {
        success: false,
        exit_code: None,
        output,
    }
}

/// Reads the pipe to its end, keeping the first [`MAX_OUTPUT_BYTES`].
fn collect(mut reader: std::io::PipeReader) -> String {
    let mut kept = Vec::new();
    let mut dropped = 0usize;
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let room = MAX_OUTPUT_BYTES.saturating_sub(kept.len());
                let take = room.min(n);
                kept.extend_from_slice(&buf[..take]);
                dropped += n - take;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let mut text = String::from_utf8_lossy(&kept).into_owned();
    if dropped > 0 {
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!(
            "[driftless: output truncated to {MAX_OUTPUT_BYTES} bytes; {dropped} more bytes dropped]\n"
        ));
    }
    text
}
