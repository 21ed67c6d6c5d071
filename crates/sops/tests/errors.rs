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

#[test]
fn yaml_syntax_errors_name_line_column_and_reason() {
    let cases: [(&str, usize, usize, &str); 9] = [
        ("a: 1\nb: \"open\n", 2, 4, "unterminated quoted string"),
        ("a: 'x' y\n", 1, 7, "unexpected text after a value"),
        ("a: |x\n  b\n", 1, 4, "invalid block scalar header"),
        ("a: 1\njust text\n", 2, 1, "expected a 'key: value' line"),
        (
            "just a scalar\n",
            1,
            1,
            "documents that are values are not supported",
        ),
        (
            "a:\n  - x\n    y: 1\n",
            3,
            5,
            "unexpected indentation in a sequence",
        ),
        ("--- a: 1\n", 1, 5, "content on a '---' line"),
        ("a: [1, 2\n", 1, 9, "expected ',' or ']' in a flow sequence"),
        ("a: \"\\q\"\n", 1, 4, "unknown escape"),
    ];
    for (doc, line, col, reason) in cases {
        let (l, c, r) = malformed_at(&err(doc, Format::Yaml));
        assert_eq!((l, c), (line, col), "{doc:?}: {r}");
        assert!(r.contains(reason), "{doc:?}: {r}");
    }
    let (_, _, r) =
        malformed_at(&decrypt(b"a: \xff\n", Format::Yaml, &ids(), "f").expect_err("bad utf-8"));
    assert!(r.contains("not valid UTF-8"), "{r}");
}

#[test]
fn invalid_rule_regex_is_named() {
    let doc = format!("a: 1\n{META}    encrypted_regex: \"(unclosed\"\n");
    let (_, _, reason) = malformed_at(&err(&doc, Format::Yaml));
    assert_eq!(
        reason,
        "sops metadata encrypted_regex is not a valid regular expression"
    );
}

#[test]
fn non_ssh_text_as_ssh_key_is_refused() {
    let e = Identities::parse_ssh("not a key\n", "k.pem").expect_err("not ssh");
    assert!(
        e.to_string()
            .starts_with("k.pem: not an OpenSSH private key"),
        "{e}"
    );
}

#[test]
fn binary_file_without_data_key_is_not_a_sops_binary() {
    assert!(!driftless_sops::is_encrypted(
        b"{\"sops\": {\"mac\": \"m\", \"lastmodified\": \"t\"}}",
        Format::Binary
    ));
    assert!(driftless_sops::is_encrypted(
        b"{\"sops\": {\"mac\": \"m\", \"lastmodified\": \"t\"}}",
        Format::Json
    ));
}
