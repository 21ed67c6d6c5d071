//! Structured fuzzing of every parser of repository content, on stable Rust, driven by
//! `cargo test`: random YAML, JSON, dotenv and kustomization trees (deep nesting,
//! aliases, merge keys, odd scalars, JSON patches that copy subtrees), and byte-level
//! mutations of the repository's own test corpora, fed to render, kustomize, the SOPS
//! readers and goyaml.
//!
//! # Running
//! Each target is one test in `tests/`. By default each runs for 2 seconds, so CI stays
//! quick; for a long run:
//!
//! ```sh
//! DRIFTLESS_FUZZ_SECS=1800 cargo test --release -p driftless-fuzz -- --nocapture --test-threads=1
//! DRIFTLESS_FUZZ_SECS=600 cargo test --release -p driftless-fuzz --test kustomize -- --nocapture
//! ```
//!
//! Every run prints its seed; `DRIFTLESS_FUZZ_SEED=<seed>` replays it, starting with the
//! input that failed (each input is generated from its own seed, `seed + index`).
//!
//! # What counts as a failure
//! - a panic (render turns panics into [`driftless_render::RenderErrorKind::Internal`]
//!   errors, which count too);
//! - a stack overflow: every input runs on a thread with a 2 MiB stack, as renders do
//!   on tokio's blocking threads, and an overflow aborts the test binary;
//! - one call taking longer than `DRIFTLESS_FUZZ_CALL_SECS` (default 10 s; inputs are
//!   small, so this means runaway work);
//! - the process's peak resident set going over `DRIFTLESS_FUZZ_MAX_RSS_MIB` (default
//!   2048);
//! - an error with an empty message.
//!
//! The failing input is written under `target/fuzz-failures/` and its seed printed.

pub mod input;
pub mod mem;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

pub use mem::MemTree;

/// The outcome of one call on one input: an error message, or nothing.
pub type Outcome = Result<(), String>;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Peak resident set of this process, in MiB (Linux).
fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

/// Runs `target` on inputs from `generate` for `DRIFTLESS_FUZZ_SECS` seconds (default 2)
/// and panics, naming the seed, on the first failure. `generate` gets a generator seeded
/// for that input alone; `describe` turns an input into text for the failure report.
pub fn fuzz<I: Send + 'static>(
    name: &str,
    generate: impl Fn(&mut fastrand::Rng) -> I,
    describe: impl Fn(&I) -> String,
    target: impl Fn(&I) -> Outcome + Send + Sync + Copy + 'static,
) {
    let secs = env_u64("DRIFTLESS_FUZZ_SECS").unwrap_or(2);
    let call_limit = Duration::from_secs(env_u64("DRIFTLESS_FUZZ_CALL_SECS").unwrap_or(10));
    let max_rss = env_u64("DRIFTLESS_FUZZ_MAX_RSS_MIB").unwrap_or(2048);
    let seed = env_u64("DRIFTLESS_FUZZ_SEED").unwrap_or_else(|| fastrand::u64(..) >> 12);
    eprintln!("fuzz {name}: seed {seed} for {secs} s (replay: DRIFTLESS_FUZZ_SEED={seed})");
    let failures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-failures");
    let _ = std::fs::create_dir_all(&failures);
    let current = failures.join(format!("{name}-running.txt"));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut count: u64 = 0;
    let mut errors: u64 = 0;
    let mut slowest = Duration::ZERO;
    while Instant::now() < deadline {
        let input_seed = seed.wrapping_add(count);
        let mut rng = fastrand::Rng::with_seed(input_seed);
        let input = generate(&mut rng);
        let text = describe(&input);
        // Kept on disk while it runs: if the process is killed (out of memory), the
        // input that did it is still there.
        let _ = std::fs::write(
            &current,
            format!("DRIFTLESS_FUZZ_SEED={input_seed}\n{text}"),
        );
        let start = Instant::now();
        // A fresh 2 MiB stack per input: the size renders get on tokio's blocking
        // threads. An overflow aborts the binary, which is the loudest failure there is.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || {
                let r = catch_unwind(AssertUnwindSafe(|| target(&input)));
                let _ = tx.send(r);
            })
            .expect("spawn a fuzz thread");
        // A call that never returns is reported at the bound, not waited for.
        let outcome = match rx.recv_timeout(call_limit) {
            Ok(r) => Ok(r),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Ok(Ok(Ok(()))),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(()),
        };
        let took = start.elapsed();
        slowest = slowest.max(took);
        let failure = match outcome {
            Err(()) | Ok(Err(_)) => Some("panicked".to_owned()),
            Ok(Ok(Err(e))) if e.trim().is_empty() => Some("an error with no message".to_owned()),
            Ok(Ok(Err(e))) if e.contains("internal error") => Some(format!("internal error: {e}")),
            Ok(Ok(Err(_))) => {
                errors += 1;
                None
            }
            Ok(Ok(Ok(()))) => None,
        };
        let failure = failure.or_else(|| {
            (took > call_limit).then(|| format!("took {took:?}, over the {call_limit:?} bound"))
        });
        let failure = failure.or_else(|| {
            (count.is_multiple_of(64) && peak_rss_mib() > max_rss).then(|| {
                format!(
                    "peak resident set {} MiB over {max_rss} MiB",
                    peak_rss_mib()
                )
            })
        });
        if let Some(why) = failure {
            let file = failures.join(format!("{name}-{input_seed}.txt"));
            let _ = std::fs::write(&file, &text);
            let shown: String = text.chars().take(4000).collect();
            panic!(
                "fuzz {name}: input {count} {why}\nreplay: DRIFTLESS_FUZZ_SEED={input_seed}\ninput saved to {}\n{shown}",
                file.display()
            );
        }
        count += 1;
    }
    let _ = std::fs::remove_file(&current);
    eprintln!(
        "fuzz {name}: {count} inputs in {secs} s ({errors} clean errors, slowest {slowest:?}, peak RSS {} MiB), no failure",
        peak_rss_mib()
    );
}
