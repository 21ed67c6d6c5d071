//! Cost of SOPS decryption while rendering: 100 Secret manifests (10 values each)
//! encrypted by the real `sops` for a key from the real `age-keygen`, rendered from an
//! in-memory tree with `render_source_with` (decrypting), against the same files already
//! decrypted by `sops -d` rendered without decryption; and `SecretSet::redact` over a
//! 1 MiB text. Prints medians of 5 runs and writes bench/results/render-sops-<date>.json.
//!
//! Run with `DRIFTLESS_TESTENV_BIN=$(testenv/build | tail -n1) cargo bench -p driftless-render --bench sops`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use common::MemTree;
use driftless_render::{Decryption, Identities, Limits, render_source, render_source_with};

const FILES: usize = 100;
const VALUES: usize = 10;
const RUNS: usize = 5;

fn tool(name: &str) -> PathBuf {
    let dir = std::env::var_os("DRIFTLESS_TESTENV_BIN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .expect("set DRIFTLESS_TESTENV_BIN=$(testenv/build | tail -n1)");
    dir.join(name)
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.env_remove("SOPS_AGE_KEY").output().expect("run tool");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn time<T>(mut f: impl FnMut() -> T) -> f64 {
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        std::hint::black_box(f());
        times.push(start.elapsed().as_secs_f64());
    }
    median(times)
}

fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
        / 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
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
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let key = dir.join("key.txt");
    run(Command::new(tool("age-keygen")).arg("-o").arg(&key));
    let key_text = std::fs::read_to_string(&key).expect("key");
    let recipient = key_text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("public key")
        .to_owned();

    let mut encrypted = MemTree::new();
    let mut plain = MemTree::new();
    let mut bytes = 0;
    for f in 0..FILES {
        let mut text = format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: secret-{f}\n  namespace: shop\nstringData:\n"
        );
        for v in 0..VALUES {
            text.push_str(&format!("  KEY_{v}: value-{f}-{v}-{:016x}\n", f * 7919 + v));
        }
        let path = dir.join(format!("s{f}.yaml"));
        std::fs::write(&path, &text).expect("write");
        let enc = run(Command::new(tool("sops"))
            .current_dir(dir)
            .env("HOME", dir)
            .env_remove("SOPS_AGE_KEY_FILE")
            .args(["encrypt", "--age", &recipient])
            .arg(&path));
        let dec = {
            std::fs::write(&path, &enc).expect("write");
            run(Command::new(tool("sops"))
                .current_dir(dir)
                .env("HOME", dir)
                .env("SOPS_AGE_KEY_FILE", &key)
                .arg("-d")
                .arg(&path))
        };
        bytes += enc.len();
        encrypted = encrypted.bytes(&format!("app/s{f:03}.yaml"), &enc, false);
        plain = plain.bytes(&format!("app/s{f:03}.yaml"), &dec, false);
    }
    let decryption = Decryption::new(Identities::parse(&key_text).expect("identities"));
    let limits = Limits::default();

    let rendered = render_source_with(&encrypted, "app", &limits, Some(&decryption))
        .expect("encrypted files render");
    assert_eq!(rendered.objects.len(), FILES);
    assert_eq!(
        rendered.objects,
        render_source(&plain, "app", &limits).expect("plain renders"),
        "decrypting gives what sops -d gives"
    );

    let t_decrypt = time(|| render_source_with(&encrypted, "app", &limits, Some(&decryption)));
    let t_plain = time(|| render_source(&plain, "app", &limits));
    let per_file_ms = (t_decrypt - t_plain) / FILES as f64 * 1000.0;

    let sample = driftless_render::to_yaml(&rendered.objects);
    let mut text = String::new();
    while text.len() < 1024 * 1024 {
        text.push_str(&sample);
    }
    let t_redact = time(|| rendered.secrets.redact(&text));
    let redacted = rendered.secrets.redact(&text);
    assert!(!redacted.contains("value-0-0-"), "redaction works");
    let values = rendered.secrets.value_count();

    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "render_source_with: {FILES} SOPS-encrypted Secrets x {VALUES} values ({:.1} KiB); {cpus} CPUs, load average {load}",
        bytes as f64 / 1024.0
    );
    println!(
        "  decrypting render median {t_decrypt:.3} s; same files pre-decrypted {t_plain:.3} s; {per_file_ms:.2} ms per encrypted file"
    );
    println!(
        "SecretSet::redact of {:.1} MiB with {values} values: median {t_redact:.3} s",
        text.len() as f64 / 1048576.0
    );
    let json = format!(
        "{{\n  \"bench\": \"driftless-render sops\",\n  \"date\": \"{}\",\n  \"case\": \"{FILES} SOPS-encrypted Secrets with {VALUES} values each, in-memory tree\",\n  \"encrypted_bytes\": {bytes},\n  \"runs\": {RUNS},\n  \"decrypting_render_seconds_median\": {t_decrypt:.4},\n  \"plain_render_seconds_median\": {t_plain:.4},\n  \"decrypt_ms_per_file\": {per_file_ms:.3},\n  \"redact_text_bytes\": {},\n  \"redact_values\": {values},\n  \"redact_seconds_median\": {t_redact:.4},\n  \"cpus\": {cpus},\n  \"load_average_1m\": \"{load}\"\n}}\n",
        today(),
        text.len()
    );
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/results");
    std::fs::create_dir_all(&out).expect("create bench/results");
    let file = out.join(format!("render-sops-{}.json", today()));
    std::fs::write(&file, json).expect("write bench results");
    println!("wrote {}", file.display());
}
