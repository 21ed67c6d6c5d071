//! driftless decrypts files made by the real `sops` to exactly what `sops -d` prints, and
//! refuses what `sops -d` refuses.

mod common;

use common::{Key, encrypt, keygen, sops_decrypt};
use driftless_sops::{Format, Identities, KeySources, SopsError, decrypt};

fn ids(key: &Key) -> Identities {
    Identities::parse(&std::fs::read_to_string(&key.file).expect("key file"))
        .expect("age-keygen output parses")
}

/// Encrypts with sops, decrypts with sops and with driftless, and compares byte for byte.
fn roundtrip(name: &str, plain: &str, extra: &[&str]) -> (Vec<u8>, Vec<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = keygen(dir.path(), "key");
    let enc = encrypt(dir.path(), name, plain.as_bytes(), &[&key.recipient], extra);
    let enc_name = format!("enc.{name}");
    let expected = sops_decrypt(dir.path(), &enc_name, &enc, &key).expect("sops -d succeeds");
    let got =
        decrypt(&enc, Format::from_path(name), &ids(&key), &enc_name).expect("driftless decrypts");
    assert_eq!(
        String::from_utf8_lossy(&got.plaintext),
        String::from_utf8_lossy(&expected),
        "driftless output differs from sops -d for {name}"
    );
    assert_eq!(got.plaintext, expected);
    (enc, got.secret_values.clone())
}

const YAML: &str = r#"# top comment
apiVersion: v1
kind: Secret
metadata:
  name: db # line comment
  labels:
    app: web
stringData:
  password: "hunter2"
  port: 5432
  ratio: 0.25
  big: 1000000.0
  enabled: true
  disabled: false
  nothing: null
  empty: ""
  when: 2024-05-01
  quoted_yes: "yes"
  needs_quotes: "a: b # c"
  leading: " x"
  unicode: "héllo ✓ 😀"
  cert: |
    -----BEGIN CERT-----
    abc
    -----END CERT-----
  folded: >
    one
    two
list:
  # comment in a list
  - plain
  - 42
  - name: item
    # comment in a map in a list
    value: [1, 2]
  - - nested
    - seq
  - {}
  - []
# trailing comment
"#;

#[test]
fn yaml_with_comments_types_and_block_scalars() {
    let (_, secrets) = roundtrip("secret.yaml", YAML, &[]);
    assert!(
        secrets.iter().any(|s| s == "hunter2"),
        "secret values are reported for redaction"
    );
    assert!(secrets.iter().any(|s| s == "5432"));
}

#[test]
fn multi_document_yaml() {
    roundtrip(
        "multi.yaml",
        "a: 1\nb:\n  c: secret\n---\n# second\nx: [1, 2]\ny: two\n---\nz: {k: v}\n",
        &[],
    );
}

#[test]
fn yaml_with_encrypted_regex_leaves_metadata_clear() {
    let plain = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  password: aHVudGVyMg==\nstringData:\n  token: abc\n";
    let (enc, _) = roundtrip(
        "k8s.yaml",
        plain,
        &["--encrypted-regex", "^(data|stringData)$"],
    );
    let enc = String::from_utf8(enc).expect("utf-8");
    assert!(
        enc.contains("name: db"),
        "metadata stays in clear with encrypted_regex"
    );
    assert!(!enc.contains("aHVudGVyMg=="), "data is encrypted");
}

#[test]
fn yaml_with_unencrypted_suffix() {
    let plain = "user_pub: admin\npassword: s3cret\nnested:\n  host_pub: db.local\n  key: k\n";
    let (enc, secrets) = roundtrip("suffix.yaml", plain, &["--unencrypted-suffix", "_pub"]);
    let enc = String::from_utf8(enc).expect("utf-8");
    assert!(enc.contains("user_pub: admin") && enc.contains("host_pub: db.local"));
    assert!(
        !secrets.iter().any(|s| s == "admin"),
        "clear values are not reported as secrets"
    );
}

#[test]
fn yaml_with_default_unencrypted_suffix_and_unencrypted_regex() {
    roundtrip("default.yaml", "a_unencrypted: clear\nb: hidden\n", &[]);
    roundtrip(
        "uregex.yaml",
        "meta: {name: x}\nspec: {pw: y}\n",
        &["--unencrypted-regex", "^meta"],
    );
    roundtrip(
        "esuffix.yaml",
        "a_secret: 1\nb: 2\nc:\n  d_secret:\n    e: x\n",
        &["--encrypted-suffix", "_secret"],
    );
}

#[test]
fn json_keeps_order_and_go_number_forms() {
    let plain = r#"{"name": "x<y>&z", "n": 42, "f": 1.5, "big": 12345678901234567890, "tiny": 0.0000001,
 "t": true, "nul": null, "list": [1, "two", {"three": 3}, [], {}], "nested": {"b": {"a": "c"}},
 "empty": "", "uni": "héllo ✓ 😀", "esc": "a\"b\\c\n\t\u0001", "pass_unencrypted": "clear"}"#;
    roundtrip("secret.json", plain, &[]);
}

#[test]
fn dotenv_with_comments_and_newlines() {
    roundtrip(
        "secret.env",
        "A=1\n# a comment\nB=hello world\nC=multi\\nline\nD=\nE_unencrypted=clear\n",
        &[],
    );
}

#[test]
fn binary_files_come_back_byte_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = keygen(dir.path(), "key");
    // Every byte value, including ones that are not valid UTF-8.
    let plain: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    let enc = encrypt(dir.path(), "blob.bin", &plain, &[&key.recipient], &[]);
    let expected = sops_decrypt(dir.path(), "enc.blob.bin", &enc, &key).expect("sops -d");
    assert_eq!(expected, plain);
    let got = decrypt(&enc, Format::Binary, &ids(&key), "blob.bin").expect("decrypt");
    assert_eq!(got.plaintext, plain);
    roundtrip("notes.txt", "plain text\nsecond line\n", &[]);
}

#[test]
fn two_recipients_either_key_decrypts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let k1 = keygen(dir.path(), "k1");
    let k2 = keygen(dir.path(), "k2");
    let enc = encrypt(
        dir.path(),
        "two.yaml",
        b"pw: shared\n",
        &[&k1.recipient, &k2.recipient],
        &[],
    );
    for key in [&k1, &k2] {
        let expected = sops_decrypt(dir.path(), "enc.two.yaml", &enc, key).expect("sops -d");
        let got = decrypt(&enc, Format::Yaml, &ids(key), "two.yaml").expect("decrypt");
        assert_eq!(got.plaintext, expected);
    }
}

#[test]
fn wrong_key_is_refused_naming_file_and_recipients() {
    let dir = tempfile::tempdir().expect("tempdir");
    let right = keygen(dir.path(), "right");
    let wrong = keygen(dir.path(), "wrong");
    let enc = encrypt(dir.path(), "s.yaml", b"pw: x\n", &[&right.recipient], &[]);
    assert!(
        sops_decrypt(dir.path(), "enc.s.yaml", &enc, &wrong).is_err(),
        "sops refuses too"
    );
    let err = decrypt(&enc, Format::Yaml, &ids(&wrong), "apps/web/s.yaml").expect_err("wrong key");
    assert!(
        matches!(&err, SopsError::NoMatchingKey { recipients, .. } if recipients == &vec![right.recipient.clone()])
    );
    let msg = err.to_string();
    assert!(
        msg.contains("apps/web/s.yaml") && msg.contains(&right.recipient),
        "{msg}"
    );
    assert!(msg.contains("add the matching AGE-SECRET-KEY"), "{msg}");
}

#[test]
fn missing_key_is_refused() {
    let err = Identities::from_sources(KeySources::default()).expect_err("no keys");
    assert!(matches!(err, SopsError::NoKeys));
    assert!(err.to_string().contains("SOPS_AGE_KEY_FILE"), "{err}");
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.txt");
    let err = Identities::from_sources(KeySources {
        key_file: Some(&missing),
        ..KeySources::default()
    })
    .expect_err("missing file");
    assert!(
        err.to_string().contains("nope.txt")
            && err.to_string().contains("decryption.sops.ageKeyFile"),
        "{err}"
    );
}

/// Flips one base64 character inside the `data:` of the first match of `marker`.
fn flip_data(enc: &str, marker: &str) -> String {
    let at = enc.find(marker).expect("marker present");
    let data_at = at + enc[at..].find("data:").expect("data field") + "data:".len();
    let mut bytes = enc.as_bytes().to_vec();
    bytes[data_at] = if bytes[data_at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("still utf-8")
}

#[test]
fn tampered_value_is_refused_with_its_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = keygen(dir.path(), "key");
    let enc = encrypt(
        dir.path(),
        "t.yaml",
        b"db:\n  password: hunter2\n",
        &[&key.recipient],
        &[],
    );
    let bad = flip_data(&String::from_utf8(enc).expect("utf-8"), "password:");
    assert!(
        sops_decrypt(dir.path(), "enc.t.yaml", bad.as_bytes(), &key).is_err(),
        "sops refuses too"
    );
    let err = decrypt(bad.as_bytes(), Format::Yaml, &ids(&key), "t.yaml").expect_err("tampered");
    assert!(
        matches!(&err, SopsError::Tampered { path, .. } if path == "db:password"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("t.yaml") && err.to_string().contains("db:password"),
        "{err}"
    );
}

#[test]
fn tampered_mac_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = keygen(dir.path(), "key");
    let enc = encrypt(
        dir.path(),
        "m.yaml",
        b"pw: hunter2\n",
        &[&key.recipient],
        &[],
    );
    let bad = flip_data(&String::from_utf8(enc).expect("utf-8"), "mac: ENC[");
    assert!(
        sops_decrypt(dir.path(), "enc.m.yaml", bad.as_bytes(), &key).is_err(),
        "sops refuses too"
    );
    let err =
        decrypt(bad.as_bytes(), Format::Yaml, &ids(&key), "m.yaml").expect_err("tampered mac");
    assert!(matches!(err, SopsError::MacMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("m.yaml: MAC mismatch"), "{err}");
}

#[test]
fn changed_clear_value_breaks_the_mac() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = keygen(dir.path(), "key");
    let enc = encrypt(
        dir.path(),
        "c.yaml",
        b"user_unencrypted: alice\npw: x\n",
        &[&key.recipient],
        &[],
    );
    let bad = String::from_utf8(enc)
        .expect("utf-8")
        .replace("alice", "mallory");
    assert!(
        sops_decrypt(dir.path(), "enc.c.yaml", bad.as_bytes(), &key).is_err(),
        "sops refuses too"
    );
    let err = decrypt(bad.as_bytes(), Format::Yaml, &ids(&key), "c.yaml").expect_err("mac");
    assert!(matches!(err, SopsError::MacMismatch { .. }), "{err:?}");
}

#[test]
fn pgp_or_kms_only_file_is_unsupported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = keygen(dir.path(), "key");
    let enc = String::from_utf8(encrypt(
        dir.path(),
        "p.yaml",
        b"pw: x\n",
        &[&key.recipient],
        &[],
    ))
    .expect("utf-8");
    // Replace the age block of the metadata with a PGP and a KMS key.
    let start = enc.find("    age:\n").expect("age block");
    let end = enc
        .find("-----END AGE ENCRYPTED FILE-----\n")
        .expect("armor end")
        + "-----END AGE ENCRYPTED FILE-----\n".len();
    let others = "    kms:\n        - arn: arn:aws:kms:us-east-1:111122223333:key/abc\n          created_at: \"2024-01-01T00:00:00Z\"\n          enc: AQICAHg=\n          aws_profile: \"\"\n    pgp:\n        - created_at: \"2024-01-01T00:00:00Z\"\n          enc: |\n            -----BEGIN PGP MESSAGE-----\n            hQ==\n            -----END PGP MESSAGE-----\n          fp: 1234567890ABCDEF\n";
    let pgp_only = format!("{}{}{}", &enc[..start], others, &enc[end..]);
    assert!(
        sops_decrypt(dir.path(), "enc.p.yaml", pgp_only.as_bytes(), &key).is_err(),
        "sops cannot either"
    );
    let err =
        decrypt(pgp_only.as_bytes(), Format::Yaml, &ids(&key), "p.yaml").expect_err("unsupported");
    match &err {
        SopsError::UnsupportedKeyType { kinds, .. } => {
            assert_eq!(kinds, &vec!["kms".to_string(), "pgp".to_string()])
        }
        other => panic!("expected UnsupportedKeyType, got {other:?}"),
    }
    assert!(
        err.to_string()
            .contains("p.yaml: encrypted only for kms, pgp keys"),
        "{err}"
    );
}

#[test]
fn no_error_ever_shows_plaintext() {
    const SECRET: &str = "Tr0ub4dor-zebra-canary";
    let dir = tempfile::tempdir().expect("tempdir");
    let key = keygen(dir.path(), "key");
    let other = keygen(dir.path(), "other");
    let plain = format!("pw: {SECRET}\nclear_unencrypted: fine\n");
    let enc = String::from_utf8(encrypt(
        dir.path(),
        "n.yaml",
        plain.as_bytes(),
        &[&key.recipient],
        &[],
    ))
    .expect("utf-8");
    let cases = [
        decrypt(enc.as_bytes(), Format::Yaml, &ids(&other), "n.yaml").err(),
        decrypt(
            flip_data(&enc, "pw:").as_bytes(),
            Format::Yaml,
            &ids(&key),
            "n.yaml",
        )
        .err(),
        decrypt(
            flip_data(&enc, "mac: ENC[").as_bytes(),
            Format::Yaml,
            &ids(&key),
            "n.yaml",
        )
        .err(),
        decrypt(
            enc.replace("fine", "evil").as_bytes(),
            Format::Yaml,
            &ids(&key),
            "n.yaml",
        )
        .err(),
        decrypt(
            enc.replace("pw: ENC[AES256_GCM,", "pw: ENC[AES128,")
                .as_bytes(),
            Format::Yaml,
            &ids(&key),
            "n.yaml",
        )
        .err(),
        Identities::parse(&format!("{}\nnot-a-key {SECRET}\n", key.secret)).err(),
    ];
    for (i, err) in cases.into_iter().enumerate() {
        let err = err.unwrap_or_else(|| panic!("case {i} should fail"));
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(
                !text.contains(SECRET),
                "case {i} leaks the plaintext: {text}"
            );
            assert!(
                !text.contains(&key.secret),
                "case {i} leaks the secret key: {text}"
            );
        }
    }
    let ok = decrypt(enc.as_bytes(), Format::Yaml, &ids(&key), "n.yaml").expect("decrypts");
    assert!(
        !format!("{ok:?}").contains(SECRET),
        "Debug of Decrypted hides the plaintext"
    );
    assert!(
        !format!("{:?}", ids(&key)).contains("AGE-SECRET-KEY"),
        "Debug of Identities hides keys"
    );
}

#[test]
fn identities_come_from_file_env_file_and_env_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = keygen(dir.path(), "a");
    let b = keygen(dir.path(), "b");
    let c = keygen(dir.path(), "c");
    let all = Identities::from_sources(KeySources {
        key_file: Some(&a.file),
        env_key_file: Some(&b.file),
        env_key: Some(&c.secret),
        env_ssh_key_file: None,
    })
    .expect("three sources");
    assert_eq!(
        all.recipients(),
        vec![
            a.recipient.clone(),
            b.recipient.clone(),
            c.recipient.clone()
        ]
    );
    let enc = encrypt(dir.path(), "e.env", b"K=v\n", &[&c.recipient], &[]);
    let only_env = Identities::from_sources(KeySources {
        env_key: Some(&c.secret),
        ..KeySources::default()
    })
    .expect("env key");
    assert_eq!(
        decrypt(&enc, Format::Dotenv, &only_env, "e.env")
            .expect("decrypt")
            .plaintext,
        b"K=v\n"
    );
}

#[test]
fn is_encrypted_recognises_sops_files_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = keygen(dir.path(), "key");
    for (name, plain) in [
        ("a.yaml", "k: v\n"),
        ("a.json", "{\"k\": \"v\"}"),
        ("a.env", "K=v\n"),
        ("a.bin", "raw"),
    ] {
        let format = Format::from_path(name);
        let enc = encrypt(dir.path(), name, plain.as_bytes(), &[&key.recipient], &[]);
        assert!(
            driftless_sops::is_encrypted(&enc, format),
            "{name} encrypted"
        );
        assert!(
            !driftless_sops::is_encrypted(plain.as_bytes(), format),
            "{name} plain"
        );
    }
}

#[test]
fn value_not_in_enc_format_is_malformed_with_its_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = keygen(dir.path(), "key");
    let enc = String::from_utf8(encrypt(
        dir.path(),
        "f.yaml",
        b"db:\n  pw: x\n",
        &[&key.recipient],
        &[],
    ))
    .expect("utf-8");
    let bad = enc.replace("pw: ENC[AES256_GCM,", "pw: ENC[AES128,");
    assert!(
        sops_decrypt(dir.path(), "enc.f.yaml", bad.as_bytes(), &key).is_err(),
        "sops refuses too"
    );
    let e = decrypt(bad.as_bytes(), Format::Yaml, &ids(&key), "f.yaml").expect_err("malformed");
    assert_eq!(
        e.to_string(),
        "f.yaml: the value at 'db:pw' should be encrypted but is not in sops' ENC[AES256_GCM,…] format; fix the file or re-encrypt it with sops"
    );
}

/// Strings that go-yaml v3 prints plain, single-quoted, double-quoted or as block scalars.
const YAML_STRINGS: &str = r####"strings:
  s1: "-dash"
  s2: "- dash space"
  s3: "key: value"
  s4: "trailing "
  s5: "#hash"
  s6: "a # b"
  s7: "null"
  s8: "~"
  s9: "123"
  s10: "1.5"
  s11: "0x10"
  s12: "on"
  s13: "@at"
  s14: "it's"
  s15: "tab\there"
  s16: "emoji 😀"
  s17: "é accent"
  s18: "back\\slash"
  s19: "quote\"d"
  s20: "--- dashes"
  s21: "a:b"
  s22: "[bracket"
  s23: "x, y"
  s24: "?q"
  s25: "12:30"
  s26: "2020-01-01"
  s27: "*star"
  s28: "!bang"
  s29: "%pct"
  s30: "|pipe"
  s31: ">gt"
  s32: "c\r\nd"
  s33: "nbsp\u00a0x"
  s34: "bell\u0007"
  s35: ":colon"
  s36: "end:"
  s37: "."
  s38: ".5"
  s39: "+1"
  s40: "1e5"
  s41: "True"
"####;

/// Literal, folded, chomping and indentation-indicator cases.
const YAML_BLOCKS: &str = r####"multi:
  lit: |
    line one
      indented
    line three
  strip: |-
    no newline
  keep: |+
    keep newlines

  lead: "  leading spaces\nsecond"
  trail: "trailing space \nx"
  fold: >
    folded text
    continues here

    new para
  inseq:
    - |
      in a seq
      second
    - plain
  empty_line: "a\n\nb\n"
"####;

/// Comments before, between, after and inside nested blocks.
const YAML_COMMENTS: &str = r####"# head 1
# head 2
first: 1 # line comment
# before second
second:
  # head of nested
  a: 1
  # between
  b: 2
  # foot nested
# before list
list:
  # head of list
  - one
  # between items
  - two
  # foot of list
maps:
  - name: a
    # inside map in seq
    value: 1
  - name: b
    value: 2
# foot of doc
"####;

/// go-yaml's typing of plain scalars: ints in several bases, floats, timestamps, nulls.
const YAML_NUMBERS: &str = r####"nums:
  i: 12345678901
  neg: -7
  f1: 1.0
  f2: 0.1
  f3: 1e21
  f4: 123456789.123
  f5: -0.0
  f6: .inf
  f7: -.Inf
  f8: .nan
  o: 0o17
  b: 0b101
  u: 1_000_000
  ts: 2001-12-14t21:59:43.10-05:00
  ts2: 2001-12-14 21:59:43.10
  d: 2002-12-14
bools: [true, false, True, FALSE]
nulls: [~, null, ]
nested:
  - - - deep
  - []
  - {}
  - {a: 1, b: [x, y]}
  - ""
  -
  - null
key with spaces: v
"quoted key": v
'single': v
"yes": v
"####;

/// Comments after dashes, foot comments of deep maps, keys needing quotes, a key over 128
/// bytes, and characters go-yaml escapes.
const YAML_EDGES: &str = r####"seqmaps:
  - # comment right after dash
    a: 1
  - b: 2
    # foot of b map
  -
    c: 3
deep:
  l1:
    l2:
      l3: v
      # foot l2
    # foot l1
  # foot deep
other: x
"key: with colon": 1
"#hash key": 2
"- dash key": 3
"": empty key
aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: long
specials:
  - "0"
  - "-"
  - "?"
  - ":"
  - "a\u2028b"
  - "zw\u200bsp"
  - "\ufeffbom"
  - "x\u0085y"
  - "tab\tend\t"
  - "   "
  - "\n"
  - "\n\n"
  - "a\n"
  - " a\nb"
  - "multi\nline with trailing space \nz"
  - "a\r\nb"
  - "€uro"
  - "日本語"
  - "\x7f"
"####;

#[test]
fn yaml_string_quoting_matches_sops() {
    roundtrip("strings.yaml", YAML_STRINGS, &[]);
    // Left in clear, every quoting style sops writes must be read back and authenticate.
    roundtrip(
        "strings_clear.yaml",
        YAML_STRINGS,
        &["--encrypted-regex", "^nothing-matches$"],
    );
}

#[test]
fn yaml_block_scalars_match_sops() {
    roundtrip("blocks.yaml", YAML_BLOCKS, &[]);
    roundtrip(
        "blocks_clear.yaml",
        YAML_BLOCKS,
        &["--encrypted-regex", "^nothing-matches$"],
    );
}

#[test]
fn yaml_comment_placement_matches_sops() {
    roundtrip("comments.yaml", YAML_COMMENTS, &[]);
}

#[test]
fn yaml_number_and_time_forms_match_sops() {
    roundtrip("numbers.yaml", YAML_NUMBERS, &[]);
}

#[test]
fn yaml_edge_cases_match_sops() {
    roundtrip("edges.yaml", YAML_EDGES, &[]);
}

#[test]
fn json_and_dotenv_edge_cases_match_sops() {
    roundtrip(
        "edges.json",
        r####"{"a": [], "b": {}, "c": [[]], "d": [{"e": null}], "f": -0.0, "g": 1e300, "h": 5e-324, "i": 100000000000000000000000, "j": 0.1, "k": 123456789012, "l": "\u2028\u2029", "m": "/slash"}
"####,
        &[],
    );
    roundtrip(
        "edges.env",
        r####"URL=postgres://u:p@h/db?x=1
Q="quoted value"
S=  spaced  
EQ=a=b=c
#comment with = sign
EMPTY=
"####,
        &[],
    );
}

#[test]
fn every_single_byte_change_fails_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = keygen(dir.path(), "key");
    // sops authenticates values, not comments nor the key names of values left in clear, so
    // this document has neither: then every change must be refused or change nothing.
    let plain = "db:\n  user: app\n  pw: hunter2\nports: [1, 2]\nmulti: |\n  a\n  b\n";
    let enc = encrypt(
        dir.path(),
        "f.yaml",
        plain.as_bytes(),
        &[&key.recipient],
        &[],
    );
    let ids = ids(&key);
    let good = decrypt(&enc, Format::Yaml, &ids, "f.yaml")
        .expect("decrypts")
        .plaintext
        .clone();
    for i in 0..enc.len() {
        let mut bad = enc.clone();
        bad[i] = if bad[i] == b'X' { b'Y' } else { b'X' };
        // Never a panic; either an error, or (for bytes sops does not authenticate, such as
        // the recipient text or the version) exactly the original plaintext.
        let result = decrypt(&bad, Format::Yaml, &ids, "f.yaml");
        if let Ok(out) = result {
            assert_eq!(
                out.plaintext,
                good,
                "changing byte {i} ({:?}) gave different plaintext without an error",
                String::from_utf8_lossy(&enc[i.saturating_sub(20)..(i + 20).min(enc.len())])
            );
        }
    }
}

#[test]
fn ssh_ed25519_recipient_decrypts_with_the_ssh_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (private, public) = common::ssh_keygen(dir.path());
    let enc = encrypt(
        dir.path(),
        "ssh.yaml",
        b"pw: via-ssh\nn: 1\n",
        &[&public],
        &[],
    );
    let expected = common::sops_decrypt_ssh(dir.path(), "enc.ssh.yaml", &enc, &private)
        .expect("sops -d with ssh key");
    let ids = Identities::from_sources(KeySources {
        env_ssh_key_file: Some(&private),
        ..KeySources::default()
    })
    .expect("ssh identity");
    let got = decrypt(&enc, Format::Yaml, &ids, "ssh.yaml").expect("decrypt with ssh key");
    assert_eq!(got.plaintext, expected);
}

#[test]
fn passphrase_protected_ssh_key_is_refused_with_advice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("locked");
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "correct horse", "-f"])
        .arg(&path)
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success());
    let err = Identities::from_sources(KeySources {
        env_ssh_key_file: Some(&path),
        ..KeySources::default()
    })
    .expect_err("locked key");
    let msg = err.to_string();
    assert!(
        msg.contains("locked (SOPS_AGE_SSH_PRIVATE_KEY_FILE)") && msg.contains("passphrase"),
        "{msg}"
    );
}

#[test]
fn comment_regex_rules_and_mac_only_encrypted_match_sops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = keygen(dir.path(), "key");
    let plain = "# sops:enc\npw: secret\nuser: clear\nlist:\n  # sops:enc\n  - hidden\n  - shown\n# trailing\n";
    let cases = [
        ("enc_comment.yaml", "encrypted_comment_regex: \"sops:enc\""),
        (
            "unenc_comment.yaml",
            "unencrypted_comment_regex: \"sops:enc\"",
        ),
        (
            "mac_only.yaml",
            "encrypted_regex: \"^pw$\"\n    mac_only_encrypted: true",
        ),
        ("mac_only_suffix.yaml", "mac_only_encrypted: true"),
    ];
    for (name, rule) in cases {
        let config = format!("creation_rules:\n  - age: {}\n    {rule}\n", key.recipient);
        let enc = common::encrypt_with_config(dir.path(), name, plain.as_bytes(), &config);
        let enc_name = format!("enc.{name}");
        let expected = sops_decrypt(dir.path(), &enc_name, &enc, &key).expect("sops -d");
        let got = decrypt(&enc, Format::Yaml, &ids(&key), &enc_name).expect("decrypt");
        assert_eq!(
            String::from_utf8_lossy(&got.plaintext),
            String::from_utf8_lossy(&expected),
            "{name}"
        );
    }
}

#[test]
fn wrong_declared_type_is_malformed_with_its_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = keygen(dir.path(), "key");
    let enc = String::from_utf8(encrypt(
        dir.path(),
        "w.yaml",
        b"a:\n  pw: hunter2\n",
        &[&key.recipient],
        &[],
    ))
    .expect("utf-8");
    // The type is not authenticated, so these pass AES-GCM and fail on the type.
    let as_int = enc.replacen("type:str]", "type:int]", 1);
    let e = decrypt(as_int.as_bytes(), Format::Yaml, &ids(&key), "w.yaml").expect_err("bad int");
    assert_eq!(
        e.to_string(),
        "w.yaml: decrypted value is not a valid int at 'a:pw'; fix the file or re-encrypt it with sops"
    );
    assert!(!format!("{e:?}").contains("hunter2"));
    let bogus = enc.replacen("type:str]", "type:bogus]", 1);
    let e = decrypt(bogus.as_bytes(), Format::Yaml, &ids(&key), "w.yaml").expect_err("bad type");
    assert!(
        e.to_string()
            .contains("unknown value type 'bogus' at 'a:pw'"),
        "{e}"
    );
}

#[test]
fn case_insensitive_encrypted_regex_matches_sops() {
    let plain = "Metadata: {name: x}\nDATA: {pw: y}\nstringdata: {t: z}\n";
    roundtrip(
        "ci.yaml",
        plain,
        &["--encrypted-regex", "(?i)^(data|stringdata)$"],
    );
}
