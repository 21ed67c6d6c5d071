//! Bad input is refused with a message that names the file, the place and the remedy.
//! These need no external tool: they fail before any key is used.

use driftless_sops::{Format, Identities, SopsError, decrypt};

const KEY: &str = "AGE-SECRET-KEY-13PZ06RVPNJY9QTJ4Z7HM50ZHY0Q2HRF6MXLSF7D44DKCZGWRZ3USXN9Q52";

fn ids() -> Identities {
    Identities::parse(&format!("# created: now\n# public key: x\n{KEY}\n")).expect("valid identity")
}

fn err(data: &str, format: Format) -> SopsError {
    decrypt(data.as_bytes(), format, &ids(), "apps/x/secret").expect_err("must fail")
}

fn malformed_at(e: &SopsError) -> (usize, usize, String) {
    match e {
        SopsError::Malformed {
            line, col, reason, ..
        } => (*line, *col, reason.clone()),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

const META: &str = "sops:\n    age:\n        - recipient: age1xd0ajjwjw7snqjxn7msxf87k79gk2vrgyc62xp45mnd965nm8alq7llr2d\n          enc: x\n    lastmodified: \"2024-01-01T00:00:00Z\"\n    mac: ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]\n    version: 3.11.0\n";

#[test]
fn yaml_bad_indentation_names_line_and_column() {
    let e = err("a: 1\n   b: 2\n", Format::Yaml);
    assert_eq!(
        malformed_at(&e),
        (2, 4, "unexpected indentation".to_string())
    );
    assert_eq!(
        e.to_string(),
        "apps/x/secret:2:4: unexpected indentation; fix the file or re-encrypt it with sops"
    );
}

#[test]
fn yaml_anchors_are_refused_with_location() {
    let (line, col, reason) = malformed_at(&err("a: 1\nb: &anchor 2\n", Format::Yaml));
    assert_eq!((line, col), (2, 4));
    assert!(reason.contains("anchors"), "{reason}");
}

#[test]
fn yaml_top_level_sequence_is_refused() {
    let (line, _, reason) = malformed_at(&err("# c\n- a\n", Format::Yaml));
    assert_eq!(line, 2);
    assert!(reason.contains("sequences are not supported"), "{reason}");
}

#[test]
fn invalid_json_names_line_and_column() {
    let (line, col, reason) = malformed_at(&err("{\n  \"a\": }\n", Format::Json));
    assert_eq!((line, col), (2, 8));
    assert!(reason.starts_with("invalid JSON"), "{reason}");
}

#[test]
fn dotenv_line_without_equals_names_line() {
    let (line, _, reason) = malformed_at(&err("A=1\nBROKEN\n", Format::Dotenv));
    assert_eq!(line, 2);
    assert!(reason.contains("no '='"), "{reason}");
}

#[test]
fn plain_file_is_not_encrypted() {
    let e = err("a: 1\n", Format::Yaml);
    assert!(matches!(e, SopsError::NotEncrypted { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("apps/x/secret: not a SOPS-encrypted file"),
        "{e}"
    );
    let e = err("{\"a\": 1}", Format::Json);
    assert!(matches!(e, SopsError::NotEncrypted { .. }), "{e:?}");
    let e = err("A=1\n", Format::Dotenv);
    assert!(matches!(e, SopsError::NotEncrypted { .. }), "{e:?}");
}

#[test]
fn two_encryption_rules_are_refused() {
    let doc = format!("a: 1\n{META}    encrypted_regex: ^a$\n    unencrypted_suffix: _u\n");
    let (_, _, reason) = malformed_at(&err(&doc, Format::Yaml));
    assert!(reason.contains("more than one of"), "{reason}");
}

#[test]
fn shamir_key_groups_are_unsupported() {
    let doc = "a: 1\nsops:\n    key_groups:\n        - age:\n            - recipient: r1\n              enc: x\n        - age:\n            - recipient: r2\n              enc: y\n    shamir_threshold: 2\n    lastmodified: \"2024-01-01T00:00:00Z\"\n    mac: m\n";
    let e = err(doc, Format::Yaml);
    assert!(
        matches!(&e, SopsError::UnsupportedKeyType { kinds, .. } if kinds[0].contains("Shamir")),
        "{e:?}"
    );
}

#[test]
fn metadata_without_keys_is_malformed() {
    let doc = "a: 1\nsops:\n    lastmodified: \"2024-01-01T00:00:00Z\"\n    mac: m\n";
    let (_, _, reason) = malformed_at(&err(doc, Format::Yaml));
    assert!(reason.contains("lists no key"), "{reason}");
}

#[test]
fn unreadable_age_stanza_is_no_matching_key() {
    let e = err(&format!("a: 1\n{META}"), Format::Yaml);
    assert!(matches!(e, SopsError::NoMatchingKey { .. }), "{e:?}");
}

#[test]
fn bad_identity_line_is_named_without_echoing_it() {
    let e = Identities::parse(&format!("# comment\n{KEY}\nAGE-SECRET-KEY-1NOTAKEY\n"))
        .expect_err("bad line");
    assert!(
        matches!(e, SopsError::InvalidIdentity { line: 3, .. }),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("line 3") && !e.to_string().contains("NOTAKEY"),
        "{e}"
    );
}

#[test]
fn format_is_chosen_by_extension_like_sops() {
    assert_eq!(Format::from_path("a/b.yaml"), Format::Yaml);
    assert_eq!(Format::from_path("b.YML"), Format::Yaml);
    assert_eq!(Format::from_path("b.json"), Format::Json);
    assert_eq!(Format::from_path(".env"), Format::Dotenv);
    assert_eq!(Format::from_path("prod.env"), Format::Dotenv);
    assert_eq!(Format::from_path("cert.pem"), Format::Binary);
    assert_eq!(Format::from_path("noext"), Format::Binary);
}
