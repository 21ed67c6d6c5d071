//! Hostile documents are refused with [`SopsError::Limit`] naming the place and the limit,
//! fast and on a 2 MiB stack (tokio's blocking threads, where the daemon decrypts); a
//! document at the depth limit still decrypts there. Each attack used to overflow the
//! stack (aborting the process) or pin a core.

mod common;

use std::time::{Duration, Instant};

use driftless_sops::{Format, Identities, Limits, SopsError, decrypt, decrypt_with, is_encrypted};

const KEY: &str = "AGE-SECRET-KEY-13PZ06RVPNJY9QTJ4Z7HM50ZHY0Q2HRF6MXLSF7D44DKCZGWRZ3USXN9Q52";

fn ids() -> Identities {
    Identities::parse(KEY).expect("valid identity")
}

/// Runs `f` on a thread with a 2 MiB stack; an overflow there aborts the test binary.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("no panic")
}

fn limit_err(data: String, format: Format) -> (SopsError, Duration) {
    on_small_stack(move || {
        let start = Instant::now();
        let e = decrypt(data.as_bytes(), format, &ids(), "x/s").expect_err("refused");
        (e, start.elapsed())
    })
}

fn place(e: &SopsError) -> (usize, usize, &str) {
    match e {
        SopsError::Limit {
            line, col, reason, ..
        } => (*line, *col, reason),
        other => panic!("expected a limit error, got {other:?}"),
    }
}

#[test]
fn deep_json_is_refused_with_its_place() {
    let n = 50_000;
    let data = format!("{{\"sops\":{}{}}}", "[".repeat(n), "]".repeat(n));
    let (e, took) = limit_err(data.clone(), Format::Json);
    // The object is level 1, so the 100th bracket (column 8 + 100) opens level 101.
    assert_eq!(place(&e), (1, 108, "nesting deeper than 100 levels"));
    assert_eq!(e.to_string(), "x/s:1:108: nesting deeper than 100 levels");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(!on_small_stack(move || is_encrypted(
        data.as_bytes(),
        Format::Json
    )));
}

#[test]
fn deep_binary_is_refused() {
    let n = 50_000;
    let data = format!("{{\"data\":{}{}}}", "{\"a\":".repeat(n), "}".repeat(n));
    let (e, _) = limit_err(data, Format::Binary);
    assert_eq!(place(&e).2, "nesting deeper than 100 levels");
}

#[test]
fn deep_yaml_block_sequences_are_refused_with_their_place() {
    let n = 20_000;
    let data = format!("a: b\nsops:\n{}x\n", "- ".repeat(n));
    let (e, took) = limit_err(data.clone(), Format::Yaml);
    // Level 1 is the document, 2 the first sequence: the 100th dash opens level 101.
    assert_eq!(place(&e), (3, 199, "nesting deeper than 100 levels"));
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(!on_small_stack(move || is_encrypted(
        data.as_bytes(),
        Format::Yaml
    )));
}

#[test]
fn deep_yaml_block_mappings_are_refused() {
    let mut data = String::from("sops:\n");
    for i in 0..200 {
        data.push_str(&" ".repeat(i + 1));
        data.push_str("k:\n");
    }
    let (e, _) = limit_err(data, Format::Yaml);
    let (line, col, reason) = place(&e);
    assert_eq!(reason, "nesting deeper than 100 levels");
    // Line n opens level n; line 101 is indented by 100 spaces.
    assert_eq!((line, col), (101, 101));
}

#[test]
fn deep_yaml_flow_collections_are_refused() {
    let n = 50_000;
    let data = format!("a:\n    b: {}{}\n", "{k: [".repeat(n), "]}".repeat(n));
    let (e, _) = limit_err(data, Format::Yaml);
    let (line, _, reason) = place(&e);
    assert_eq!((line, reason), (2, "nesting deeper than 100 levels"));
}

#[test]
fn the_depth_limit_is_configurable() {
    let data = format!("{{\"a\":{}{}}}", "[".repeat(10), "]".repeat(10));
    let limits = Limits {
        max_depth: 5,
        ..Limits::default()
    };
    let e = decrypt_with(data.as_bytes(), Format::Json, &ids(), "f", &limits).expect_err("deep");
    assert_eq!(place(&e).2, "nesting deeper than 5 levels");
    // Within the default limit the same file parses and fails only for lack of metadata.
    let e = decrypt(data.as_bytes(), Format::Json, &ids(), "f").expect_err("not encrypted");
    assert!(matches!(e, SopsError::NotEncrypted { .. }), "{e:?}");
}

fn dotenv_with_stanzas(n: usize) -> String {
    let mut text = String::from("A=ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]\n");
    for i in 0..n {
        text.push_str(&format!("sops_age__list_{i}__map_recipient=age1x\n"));
        text.push_str(&format!("sops_age__list_{i}__map_enc=x\n"));
    }
    text.push_str("sops_lastmodified=2024-01-01T00:00:00Z\nsops_mac=ENC[x]\n");
    text
}

#[test]
fn a_huge_dotenv_metadata_block_fails_fast() {
    // 100,000 stanzas, ~5 MiB: reading them used to be quadratic (minutes of CPU).
    let (e, took) = limit_err(dotenv_with_stanzas(100_000), Format::Dotenv);
    let (_, _, reason) = place(&e);
    assert!(
        reason.contains("100000 age recipients, more than the limit of 1000"),
        "{reason}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn a_file_over_the_size_limit_is_refused_before_reading() {
    let limits = Limits {
        max_file_bytes: 1000,
        ..Limits::default()
    };
    let data = dotenv_with_stanzas(100);
    let e = decrypt_with(data.as_bytes(), Format::Dotenv, &ids(), "big.env", &limits)
        .expect_err("too large");
    assert_eq!(
        e.to_string(),
        format!(
            "big.env: file is {} bytes, over the limit of 1000 bytes",
            data.len()
        )
    );
}

/// A document nested `levels` deep (the top-level mapping is level 1) holding one value.
fn nested_yaml(levels: usize) -> String {
    let mut out = String::new();
    for i in 0..levels - 1 {
        out.push_str(&" ".repeat(2 * i));
        out.push_str(&format!("k{i}:\n"));
    }
    out.push_str(&" ".repeat(2 * (levels - 1)));
    out.push_str("secret: hunter22\n");
    out
}

#[test]
fn a_file_at_the_depth_limit_decrypts_on_a_small_stack() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let key = common::keygen(tmp.path(), "k");
    let plain = nested_yaml(Limits::default().max_depth);
    let enc = common::encrypt(
        tmp.path(),
        "deep.yaml",
        plain.as_bytes(),
        &[&key.recipient],
        &[],
    );
    let ids = Identities::parse(&key.secret).expect("key");
    let out = on_small_stack(move || {
        decrypt(&enc, Format::Yaml, &ids, "deep.yaml").map(|d| d.plaintext.clone())
    })
    .expect("decrypts");
    let want = common::sops_decrypt(
        tmp.path(),
        "deep2.yaml",
        &common::encrypt(
            tmp.path(),
            "deep3.yaml",
            plain.as_bytes(),
            &[&key.recipient],
            &[],
        ),
        &key,
    )
    .expect("sops -d");
    assert_eq!(
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&want)
    );
    // One level more is refused.
    let deeper = nested_yaml(Limits::default().max_depth + 1);
    let enc = common::encrypt(
        tmp.path(),
        "deeper.yaml",
        deeper.as_bytes(),
        &[&key.recipient],
        &[],
    );
    let ids = Identities::parse(&key.secret).expect("key");
    let e = decrypt(&enc, Format::Yaml, &ids, "deeper.yaml").expect_err("too deep");
    assert_eq!(place(&e).2, "nesting deeper than 100 levels");
}
