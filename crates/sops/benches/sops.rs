//! Decrypting 1,000 small SOPS-encrypted Secrets: driftless in-process against `sops -d` run
//! once per file. Needs the real tools (`$DRIFTLESS_TESTENV_BIN`, else `$DRIFTLESS_PEER_BIN`).
//! Prints the figures and writes `bench/results/sops-<date>.json`.
//!
//! `cargo bench -p driftless-sops --bench sops`; `DRIFTLESS_BENCH_SOPS_RUNS` sets how many
//! timed runs the `sops -d` side gets (default 5).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use driftless_sops::{Format, Identities, decrypt};

const FILES: usize = 1_000;
const RUNS: usize = 5;

fn tool_dir() -> PathBuf {
    for var in ["DRIFTLESS_TESTENV_BIN", "DRIFTLESS_PEER_BIN"] {
        if let Some(dir) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            return PathBuf::from(dir);
        }
    }
    eprintln!(
        "the sops benchmark needs the real sops and age-keygen: set DRIFTLESS_TESTENV_BIN or DRIFTLESS_PEER_BIN"
    );
    std::process::exit(2);
}

fn secret(i: usize) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app-{i}\n  namespace: prod\ntype: Opaque\nstringData:\n  username: user{i}\n  password: pw-{i}-{:x}\n  port: {}\n  url: postgres://db-{i}.internal:5432/app\n",
        i * 2_654_435_761 % 1_000_003,
        5000 + i % 1000
    )
}

fn sops(bin: &Path, key_file: &Path) -> Command {
    let mut cmd = Command::new(bin.join("sops"));
    for var in ["SOPS_AGE_KEY", "SOPS_AGE_KEY_CMD", "SOPS_AGE_RECIPIENTS"] {
        cmd.env_remove(var);
    }
    cmd.env("SOPS_AGE_KEY_FILE", key_file);
    cmd
}

struct Stats {
    median: f64,
    min: f64,
    max: f64,
    runs: usize,
}

fn stats(mut xs: Vec<f64>) -> Stats {
    xs.sort_by(f64::total_cmp);
    Stats {
        median: xs[xs.len() / 2],
        min: xs[0],
        max: xs[xs.len() - 1],
        runs: xs.len(),
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Today's date (UTC) as YYYY-MM-DD, from the days since 1970-01-01.
fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Civil-from-days (Howard Hinnant's algorithm, public domain description).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn main() {
    let bin = tool_dir();
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("key.txt");
    let out = Command::new(bin.join("age-keygen"))
        .arg("-o")
        .arg(&key_file)
        .output()
        .expect("run age-keygen");
    assert!(out.status.success(), "age-keygen failed");
    let key_text = std::fs::read_to_string(&key_file).expect("key file");
    let recipient = key_text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("public key line")
        .to_string();
    let ids = Identities::parse(&key_text).expect("identities");

    // Encrypt the files with the real sops, two at a time.
    let setup = Instant::now();
    let paths: Vec<PathBuf> = (0..FILES)
        .map(|i| dir.path().join(format!("secret-{i:04}.enc.yaml")))
        .collect();
    std::thread::scope(|s| {
        for half in paths.chunks(FILES / 2) {
            let (bin, key_file, recipient, dir) = (&bin, &key_file, &recipient, dir.path());
            s.spawn(move || {
                for path in half {
                    let i: usize = path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .and_then(|n| n[7..11].parse().ok())
                        .expect("index");
                    let plain = dir.join(format!("secret-{i:04}.yaml"));
                    std::fs::write(&plain, secret(i)).expect("write plaintext");
                    let out = sops(bin, key_file)
                        .args(["encrypt", "--age", recipient])
                        .arg(&plain)
                        .output()
                        .expect("sops encrypt");
                    assert!(
                        out.status.success(),
                        "sops encrypt: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    std::fs::write(path, out.stdout).expect("write encrypted");
                }
            });
        }
    });
    println!(
        "setup: encrypted {FILES} Secrets with sops in {:.1}s",
        secs(setup.elapsed())
    );

    let data: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| std::fs::read(p).expect("read encrypted"))
        .collect();

    // Correctness once: driftless prints what sops -d prints, for a sample.
    for i in [0, FILES / 2, FILES - 1] {
        let expected = sops(&bin, &key_file)
            .arg("-d")
            .arg(&paths[i])
            .output()
            .expect("sops -d");
        let got = decrypt(&data[i], Format::Yaml, &ids, "bench").expect("decrypt");
        assert_eq!(
            got.plaintext, expected.stdout,
            "output differs from sops -d for file {i}"
        );
    }

    let mut ours = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let mut bytes = 0;
        for (i, d) in data.iter().enumerate() {
            let out = decrypt(d, Format::Yaml, &ids, &paths[i].to_string_lossy()).expect("decrypt");
            bytes += out.plaintext.len();
        }
        std::hint::black_box(bytes);
        ours.push(secs(t.elapsed()));
    }

    let sops_runs: usize = std::env::var("DRIFTLESS_BENCH_SOPS_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(RUNS);
    let mut theirs = Vec::new();
    for _ in 0..sops_runs.max(1) {
        let t = Instant::now();
        for p in &paths {
            let out = sops(&bin, &key_file)
                .arg("-d")
                .arg(p)
                .output()
                .expect("sops -d");
            assert!(out.status.success());
        }
        theirs.push(secs(t.elapsed()));
    }

    let ours = stats(ours);
    let theirs = stats(theirs);
    let ratio = theirs.median / ours.median;
    let version = Command::new(bin.join("sops"))
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        });
    let version = version.unwrap_or_default();
    println!("decrypt {FILES} small Secrets (4 values each):");
    println!(
        "  driftless in-process: median {:.3}s (min {:.3}, max {:.3}) over {} runs = {:.1} µs/file",
        ours.median,
        ours.min,
        ours.max,
        ours.runs,
        ours.median / FILES as f64 * 1e6
    );
    println!(
        "  sops -d per file ({version}): median {:.2}s (min {:.2}, max {:.2}) over {} runs = {:.1} ms/file",
        theirs.median,
        theirs.min,
        theirs.max,
        theirs.runs,
        theirs.median / FILES as f64 * 1e3
    );
    println!("  ratio (sops / driftless): {ratio:.0}x");

    let json = format!(
        "{{\n  \"benchmark\": \"sops-decrypt-1000-secrets\",\n  \"date\": \"{}\",\n  \"files\": {FILES},\n  \"values_per_file\": 4,\n  \"sops_version\": \"{version}\",\n  \"driftless_in_process_s\": {{\"median\": {:.6}, \"min\": {:.6}, \"max\": {:.6}, \"runs\": {}}},\n  \"sops_d_per_file_s\": {{\"median\": {:.6}, \"min\": {:.6}, \"max\": {:.6}, \"runs\": {}}},\n  \"ratio_sops_over_driftless\": {:.2},\n  \"machine\": \"{} cores\"\n}}\n",
        today(),
        ours.median,
        ours.min,
        ours.max,
        ours.runs,
        theirs.median,
        theirs.min,
        theirs.max,
        theirs.runs,
        ratio,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/results");
    std::fs::create_dir_all(&results).expect("create bench/results");
    let file = results.join(format!("sops-{}.json", today()));
    std::fs::write(&file, json).expect("write results");
    println!("wrote {}", file.display());
}
