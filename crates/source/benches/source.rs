//! driftless-source against the git CLI over `git daemon` on loopback, on a
//! 10,000-commit repository made with `git fast-import`:
//! - remote_ref vs `git ls-remote`
//! - cold fetch (clone into an empty cache) vs `git clone --bare`
//! - incremental fetch of 10 new commits vs `git fetch`
//!
//! Median of 5 runs with min and max; prints a table and writes
//! bench/results/source-<date>.json. Run with `cargo bench -p driftless-source`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use driftless_source::{Credentials, SourceCache};
use support::{GitDaemon, git, git_command};

const COMMITS: usize = 10_000;
const FILES: usize = 200;
const RUNS: usize = 5;

/// Appends `count` commits to refs/heads/main of the bare repository at `repo`.
fn fast_import(repo: &Path, start: usize, count: usize) {
    let mut stream = Vec::new();
    let parent = if start > 0 {
        Some(git(repo, &["rev-parse", "refs/heads/main"]))
    } else {
        None
    };
    for i in start..start + count {
        let time = 1_700_000_000 + i as u64 * 60;
        let message = format!("change {i}\n");
        writeln!(stream, "commit refs/heads/main").unwrap();
        writeln!(stream, "author Ada <ada@example.com> {time} +0000").unwrap();
        writeln!(stream, "committer Ada <ada@example.com> {time} +0000").unwrap();
        writeln!(stream, "data {}\n{message}", message.len()).unwrap();
        if i == start
            && let Some(parent) = &parent
        {
            writeln!(stream, "from {parent}").unwrap();
        }
        let content = format!(
            "file {} revision {i}\n{}\n",
            i % FILES,
            "x".repeat(200 + i % 300)
        );
        writeln!(stream, "M 644 inline dir{}/file{}.yaml", i % 10, i % FILES).unwrap();
        writeln!(stream, "data {}\n{content}", content.len()).unwrap();
    }
    let mut child = git_command(repo, &["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("git fast-import runs");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(&stream)
        .expect("write stream");
    assert!(child.wait().expect("fast-import finishes").success());
}

struct Stats {
    median: Duration,
    min: Duration,
    max: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    Stats {
        median: samples[samples.len() / 2],
        min: samples[0],
        max: samples[samples.len() - 1],
    }
}

fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn run_git(args: &[&str], dir: &Path) {
    let status = git_command(dir, args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?}");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
        / 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn main() {
    let base = tempfile::tempdir().expect("tempdir");
    let upstream = base.path().join("bench.git");
    std::fs::create_dir(&upstream).unwrap();
    git(&upstream, &["init", "-q", "--bare", "-b", "main"]);
    let made = time(|| fast_import(&upstream, 0, COMMITS));
    let pack_size: u64 = std::fs::read_dir(upstream.join("objects/pack"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    eprintln!(
        "made {COMMITS} commits in {:.0} ms ({} KiB of packs)",
        ms(made),
        pack_size / 1024
    );
    let daemon = GitDaemon::start(base.path());
    let url = daemon.url("bench.git");
    let work = tempfile::tempdir().expect("tempdir");

    // remote_ref vs git ls-remote
    let cache = SourceCache::new(work.path().join("warm"));
    let repo = cache.repo(&url, Credentials::default()).unwrap();
    let tip = git(&upstream, &["rev-parse", "main"]);
    assert_eq!(
        repo.remote_ref("main").unwrap().as_deref(),
        Some(tip.as_str())
    );
    let ours: Vec<_> = (0..RUNS)
        .map(|_| time(|| assert!(repo.remote_ref("main").unwrap().is_some())))
        .collect();
    let theirs: Vec<_> = (0..RUNS)
        .map(|_| time(|| run_git(&["ls-remote", &url, "refs/heads/main"], work.path())))
        .collect();
    let mut rows = vec![("remote_ref vs git ls-remote", stats(ours), stats(theirs))];

    // cold fetch vs git clone --bare
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for run in 0..RUNS {
        let cache = SourceCache::new(work.path().join(format!("cold-{run}")));
        let repo = cache.repo(&url, Credentials::default()).unwrap();
        ours.push(time(|| repo.fetch().unwrap()));
        assert_eq!(repo.resolve("main").unwrap(), tip);
        let dest = work.path().join(format!("clone-{run}.git"));
        theirs.push(time(|| {
            run_git(
                &["clone", "-q", "--bare", &url, dest.to_str().unwrap()],
                work.path(),
            )
        }));
        std::fs::remove_dir_all(cache.dir()).unwrap();
        std::fs::remove_dir_all(&dest).unwrap();
    }
    rows.push(("cold fetch vs git clone --bare", stats(ours), stats(theirs)));

    // incremental fetch of 10 commits vs git fetch
    let cache = SourceCache::new(work.path().join("incremental"));
    let repo = cache.repo(&url, Credentials::default()).unwrap();
    repo.fetch().unwrap();
    let clone = work.path().join("incremental-clone.git");
    run_git(
        &["clone", "-q", "--bare", &url, clone.to_str().unwrap()],
        work.path(),
    );
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for run in 0..RUNS {
        fast_import(&upstream, COMMITS + run * 10, 10);
        let tip = git(&upstream, &["rev-parse", "main"]);
        ours.push(time(|| repo.fetch().unwrap()));
        assert_eq!(repo.resolve("main").unwrap(), tip);
        theirs.push(time(|| {
            run_git(
                &[
                    "fetch",
                    "-q",
                    &url,
                    "+refs/heads/*:refs/heads/*",
                    "+refs/tags/*:refs/tags/*",
                ],
                &clone,
            )
        }));
        assert_eq!(git(&clone, &["rev-parse", "main"]), tip);
    }
    rows.push((
        "incremental fetch (10 commits) vs git fetch",
        stats(ours),
        stats(theirs),
    ));
    drop(daemon);

    let git_version = Command::new("git")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    println!(
        "\ndriftless-source vs {git_version}, {COMMITS} commits, git daemon on loopback, {RUNS} runs"
    );
    println!(
        "{:<46} {:>24} {:>24} {:>8}",
        "operation", "ours ms (min-max)", "git ms (min-max)", "ratio"
    );
    let mut json_rows = Vec::new();
    for (name, ours, theirs) in &rows {
        let ratio = ms(ours.median) / ms(theirs.median);
        println!(
            "{:<46} {:>24} {:>24} {:>7.2}x",
            name,
            format!(
                "{:.1} ({:.1}-{:.1})",
                ms(ours.median),
                ms(ours.min),
                ms(ours.max)
            ),
            format!(
                "{:.1} ({:.1}-{:.1})",
                ms(theirs.median),
                ms(theirs.min),
                ms(theirs.max)
            ),
            ratio
        );
        json_rows.push(format!(
            "    {{\"name\": \"{name}\", \"ours_ms\": {{\"median\": {:.3}, \"min\": {:.3}, \"max\": {:.3}}}, \
             \"git_ms\": {{\"median\": {:.3}, \"min\": {:.3}, \"max\": {:.3}}}, \"ratio_ours_over_git\": {ratio:.3}}}",
            ms(ours.median),
            ms(ours.min),
            ms(ours.max),
            ms(theirs.median),
            ms(theirs.min),
            ms(theirs.max)
        ));
    }
    println!("(ratio < 1: driftless-source is faster)");
    let json = format!(
        "{{\n  \"bench\": \"driftless-source\",\n  \"date\": \"{}\",\n  \"git\": \"{git_version}\",\n  \"commits\": {COMMITS},\n  \"runs\": {RUNS},\n  \"transport\": \"git daemon on 127.0.0.1\",\n  \"results\": [\n{}\n  ]\n}}\n",
        today(),
        json_rows.join(",\n")
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/results");
    std::fs::create_dir_all(&dir).expect("results dir");
    let dir = dir.canonicalize().unwrap_or(dir);
    let file = dir.join(format!("source-{}.json", today()));
    std::fs::write(&file, json).expect("write results");
    println!("wrote {}", file.display());
}
