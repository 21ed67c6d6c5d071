//! Differential test: scalars and keys against `sigs.k8s.io/yaml.YAMLToJSON`, the step
//! `kubectl apply -f` uses to turn YAML into the JSON it sends (v1.6.0, go-yaml v2.4.2).
//!
//! Ignored by default because it builds the Go program in `tests/oracle` (needs `go`
//! and the Go module proxy). Run it with:
//! `cargo test -p driftless-render --test kubectl_oracle -- --ignored`

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::MemTree;
use driftless_model::Content;
use driftless_render::{Limits, render_manifests};
use serde_json::Value;

fn build_oracle() -> PathBuf {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oracle");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("yamloracle");
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(&src)
        .status()
        .expect("run go build (is Go installed?)");
    assert!(status.success(), "go build of the oracle failed");
    out
}

/// What sigs.k8s.io/yaml makes of `doc`: `Ok(json)` or `Err(message)`.
fn oracle(bin: &PathBuf, doc: &str) -> Result<Value, String> {
    let mut child = Command::new(bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run oracle");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(doc.as_bytes())
        .expect("write to oracle");
    let out = child.wait_with_output().expect("oracle output");
    let text = String::from_utf8(out.stdout).expect("oracle prints UTF-8");
    match text.strip_prefix("ERROR: ") {
        Some(msg) => Err(msg.trim().to_owned()),
        None => Ok(serde_json::from_str(&text).expect("oracle prints JSON")),
    }
}

fn ours(doc: &str) -> Result<Value, String> {
    let tree = MemTree::new().file("x.yaml", doc);
    match render_manifests(&tree, "", &Limits::default()) {
        Ok(objs) => match &objs[0].content {
            Content::Manifest(v) => Ok(v.clone()),
            Content::File { .. } => unreachable!(),
        },
        Err(e) => Err(e.to_string()),
    }
}

const SCALARS: &[&str] = &[
    "yes",
    "Yes",
    "YES",
    "yEs",
    "no",
    "on",
    "On",
    "off",
    "OFF",
    "y",
    "Y",
    "n",
    "N",
    "true",
    "True",
    "TRUE",
    "tRUE",
    "false",
    "~",
    "null",
    "Null",
    "NULL",
    "nil",
    "''",
    "\"\"",
    "0",
    "-0",
    "+0",
    "00",
    "07",
    "08",
    "09",
    "0755",
    "0o17",
    "0O17",
    "0x1F",
    "0X1f",
    "-0x1F",
    "+0x1F",
    "0b101",
    "-0b101",
    "0B11",
    "1_000",
    "_1",
    "1__0",
    "0x_1F",
    "1_0.5",
    "1e3",
    "1E3",
    "1e+3",
    "1e-3",
    "9E53",
    "-9e53",
    "3.5e38",
    "1.5e3",
    "1.",
    ".5",
    "+.5",
    "-.5",
    ".5e3",
    "._5",
    "1.2.3",
    "1:20",
    "1:2:3",
    "190:20:30.15",
    "2001-12-14",
    "2001-12-14T21:59:43.10Z",
    "2001-12-14 21:59:43.10",
    "2001-1-1",
    "2001-12",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "123456789012345678901234567890",
    "0.1",
    "1.0",
    "-1.0",
    "3.14159",
    "1e400",
    "1e-400",
    "4611686018427387904.0",
    "1e20",
    "-1e20",
    "1e21",
    "0.0",
    "-0.0",
    "1e19",
    ".inf",
    "-.Inf",
    ".nan",
    "0x",
    "0b",
    "0o",
    "0x1p3",
    "+",
    "-",
    ".",
    "..",
    "12abc",
    "v1",
    "1,000",
    "1 000",
    "<<",
    "'yes'",
    "\"0755\"",
    "!!str 12",
    "!!float 12",
    "!!int \"12\"",
    "!!bool yes",
    "!!null ''",
    "!custom 12",
    "|\n    text\n",
    ">-\n    a\n    b\n",
    "\"\\u00e9\\t\"",
    "'it''s'",
];

#[test]
#[ignore = "builds a Go program; run with --ignored"]
fn scalar_values_match_sigs_k8s_io_yaml() {
    let bin = build_oracle();
    let mut mismatches = Vec::new();
    for scalar in SCALARS {
        let doc = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\nv: {scalar}\n");
        let want = oracle(&bin, &doc).map(|v| v["v"].clone());
        let got = ours(&doc).map(|v| v["v"].clone());
        let same = match (&want, &got) {
            (Ok(a), Ok(b)) => a == b,
            (Err(_), Err(_)) => true,
            _ => false,
        };
        if !same {
            mismatches.push(format!("{scalar:?}: kubectl {want:?}, ours {got:?}"));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
#[ignore = "builds a Go program; run with --ignored"]
fn keys_match_sigs_k8s_io_yaml() {
    let bin = build_oracle();
    let mut mismatches = Vec::new();
    for scalar in SCALARS
        .iter()
        .filter(|s| !s.contains('\n') && !s.starts_with('!'))
    {
        let doc = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  {scalar}: v\n"
        );
        let want = oracle(&bin, &doc).map(|v| v["data"].clone());
        let got = ours(&doc).map(|v| v["data"].clone());
        let same = match (&want, &got) {
            (Ok(a), Ok(b)) => a == b,
            (Err(_), Err(_)) => true,
            _ => false,
        };
        if !same {
            mismatches.push(format!("key {scalar:?}: kubectl {want:?}, ours {got:?}"));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// What `to_yaml` prints must read back in kubectl as the same object.
#[test]
#[ignore = "builds a Go program; run with --ignored"]
fn to_yaml_output_reads_the_same_in_kubectl() {
    use driftless_model::{Object, ObjectRef, Origin};
    let bin = build_oracle();
    let strings = [
        "yes",
        "no",
        "on",
        "off",
        "y",
        "n",
        "true",
        "0755",
        "0x1F",
        "1e3",
        "1e+3",
        "1.",
        "1_000",
        "~",
        "",
        "null",
        ".inf",
        ".nan",
        ": x",
        "#x",
        "a #b",
        "a: b",
        "- x",
        "-",
        "?",
        "? x",
        "[x]",
        "{x}",
        "&a",
        "*a",
        "!t",
        "|",
        ">",
        "%d",
        "@x",
        "`x`",
        "'q'",
        "\"q\"",
        "  leading",
        "trailing  ",
        "multi\nline\n",
        "multi\nline",
        "\n",
        "\n\nx",
        "x\n\n\n",
        " \nx",
        "x\n  y",
        "  lead\nx\n",
        "--- x",
        "...",
        "---",
        "<<",
        "=",
        "2001-12-14",
        "12:30:45",
        "1:20",
        "1.0",
        ".5",
        "+1",
        "tab\tx",
        "\r",
        "back\\slash",
        "é",
        "😀",
        "a,b",
        "x:y",
    ];
    let mut data = serde_json::Map::new();
    let mut list = Vec::new();
    for (i, s) in strings.iter().enumerate() {
        data.insert(format!("k{i}"), Value::from(*s));
        data.insert((*s).to_owned(), Value::from(i));
        list.push(Value::from(*s));
        list.push(serde_json::json!({ "v": s }));
    }
    data.insert(
        "k".repeat(300),
        serde_json::json!({"nested": ["a", {"b": "multi\nline\n"}]}),
    );
    data.insert(
        format!("{}\nline", "q".repeat(200)),
        Value::from("explicit multi-line key"),
    );
    let numbers = serde_json::json!([
        0,
        -1,
        9223372036854775807i64,
        1.5,
        -0.25,
        1e-7,
        1e20,
        123456.789
    ]);
    let v = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "t"},
        "data": data, "list": list, "numbers": numbers,
    });
    let obj = Object {
        id: ObjectRef {
            group: String::new(),
            kind: "ConfigMap".into(),
            namespace: String::new(),
            name: "t".into(),
        },
        content: Content::Manifest(v.clone()),
        origin: Origin::default(),
    };
    let yaml = driftless_render::to_yaml(&[obj]);
    assert_eq!(oracle(&bin, &yaml), Ok(v), "{yaml}");
}

/// Whole documents: merge keys, anchors, block scalars, flow collections.
#[test]
#[ignore = "builds a Go program; run with --ignored"]
fn documents_match_sigs_k8s_io_yaml() {
    let bin = build_oracle();
    let head = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n";
    let bodies = [
        "base: &base {a: 1, b: 2}\nother: &other {b: 3, c: 4}\ndata:\n  <<: *base\n  b: 20\none:\n  <<: [*other, *base]\nbefore:\n  a: 0\n  <<: *base\n",
        "x: &a [1, {k: v}]\ny2: *a\n\"<<\": 3\n",
        "lit: |\n  a\n   b\n\n\nfold: >\n  a\n  b\n\n  c\nkeep: |+\n  k\n\nstrip: |-\n  s\n",
        "flow: {a: [1, 2, {b: c}], 'd': \"e\", f: }\nempty: []\nnone:\n",
        "s: 'it''s'\nd: \"tab\\tnl\\nuni\\u00e9\"\nmulti: this is\n  folded plain\n",
        "n: [0x10, 0o10, 010, 1_000, +5, -5, 1.5e3, .5, 1e400]\n",
    ];
    let mut mismatches = Vec::new();
    for body in bodies {
        let doc = format!("{head}{body}");
        let want = oracle(&bin, &doc);
        let got = ours(&doc);
        if want != got {
            mismatches.push(format!("{body}\n  kubectl {want:?}\n  ours    {got:?}"));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// Keys sorted at every level, as Go's encoder writes map keys.
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// With keys in Go's order, `to_yaml` prints what kubectl's YAML printer prints, byte
/// for byte: quoting, block scalars, list indentation and folding at 80 columns.
#[test]
#[ignore = "builds a Go program; run with --ignored"]
fn to_yaml_prints_like_kubectl() {
    use driftless_model::{Object, ObjectRef, Origin};
    let bin = build_oracle();
    let words = "word ".repeat(30);
    let words = words.trim_end();
    let cases = [
        serde_json::json!({"a": words, "b": "1e3", "c": "multi\nline\n", "d": "*", "e": "x: y",
            "f": ["yes", {"g": "on", "h": [words, "  lead\nx\n"]}], "h": 1.5, "i": "  lead\nx\n",
            "j": format!("x: {words}"), "k": format!("{words}\ttab {words}"),
            "l": format!("{words}  two  spaces {words}"), "m": format!("{words}{}", "x".repeat(60)),
            "n": {"deep": {"deeper": {"deepest": words}}}, "o": [], "p": {}, "q": null,
            "r": "it's", "s": "trailing \nspace", "t": "2024-01-02", "u": "keep\n\n", "v": "strip"}),
        serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"annotations": {"note": words}, "labels": {"app": "web"}, "name": "web"},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [{"args": ["--port", "8080"],
            "command": ["/bin/sh", "-c", format!("exec server {words}")], "image": "nginx:1.27",
            "name": "web", "ports": [{"containerPort": 8080}]}]}}}}),
    ];
    let mut mismatches = Vec::new();
    for case in cases {
        let v = sorted(&case);
        let obj = Object {
            id: ObjectRef::file("x"),
            content: Content::Manifest(v.clone()),
            origin: Origin::default(),
        };
        let ours = driftless_render::to_yaml(&[obj]);
        let mut child = Command::new(&bin)
            .arg("toyaml")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run oracle");
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(v.to_string().as_bytes())
            .expect("write to oracle");
        let out = child.wait_with_output().expect("oracle output");
        let theirs = String::from_utf8(out.stdout).expect("UTF-8");
        if ours != theirs {
            mismatches.push(format!("--- kubectl\n{theirs}--- ours\n{ours}"));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// Seeded random strings (quotes, colons, hashes, spaces, tabs, breaks, unicode, long
/// runs) print exactly as kubectl prints them, as values, list items and keys.
/// U+2028 and U+2029 are left out on purpose: go-yaml writes them raw as YAML 1.1 line
/// breaks, which a YAML 1.2 reader keeps as characters; we escape them (`\L`, `\P`).
#[test]
#[ignore = "builds a Go program; run with --ignored"]
fn random_strings_print_like_kubectl() {
    use driftless_model::{Object, ObjectRef, Origin};
    let bin = build_oracle();
    let pieces = [
        "a", "word", " ", "  ", ":", ": ", "#", " #", "-", "- ", "?", "'", "\"", "\\", "\n",
        "\n\n", "\t", "\r", "é", "✓", "😀", "\u{85}", "\u{feff}", "yes", "1", "0x", ".", "*", "&",
        "!", "|", ">", "%", "@", "`", ",", "[", "]", "{", "}", "~", "null", "---", "...",
    ];
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..20 {
        let mut strings = Vec::new();
        for _ in 0..200 {
            let n = (next() % 30) as usize;
            let len_boost = if next() % 4 == 0 { 40 } else { 0 };
            let s: String = (0..n + len_boost)
                .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                .collect();
            // go-yaml escapes every character of a string that starts with U+FEFF (its
            // BOM check reads the string's first bytes, not the current ones); we escape
            // only what needs it, so such strings are left out.
            if !s.starts_with('\u{feff}') {
                strings.push(s);
            }
        }
        let mut values = serde_json::Map::new();
        // One key per mapping: go-yaml's key order is not plain byte order.
        let mut keys = Vec::new();
        for (i, s) in strings.iter().enumerate() {
            values.insert(format!("k{i:04}"), Value::from(s.as_str()));
            keys.push(serde_json::json!({ s.clone(): i }));
        }
        let v = sorted(&serde_json::json!({"keys": keys, "list": strings, "values": values}));
        let obj = Object {
            id: ObjectRef::file("x"),
            content: Content::Manifest(v.clone()),
            origin: Origin::default(),
        };
        let ours = driftless_render::to_yaml(&[obj]);
        let mut child = Command::new(&bin)
            .arg("toyaml")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run oracle");
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(ascii_json(&v).as_bytes())
            .expect("write to oracle");
        let theirs = String::from_utf8(child.wait_with_output().expect("oracle output").stdout)
            .expect("UTF-8");
        if ours != theirs {
            let first = ours
                .lines()
                .zip(theirs.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            let show = |t: &str| {
                t.lines()
                    .skip(first.saturating_sub(2))
                    .take(6)
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            panic!(
                "round {round}, line {}:\n--- kubectl\n{}\n--- ours\n{}",
                first + 1,
                show(&theirs),
                show(&ours)
            );
        }
    }
}

/// JSON with every non-ASCII character escaped: JSONToYAML reads its input with a YAML
/// parser, which takes raw U+2028 or U+0085 for line breaks. (The input is also YAML.)
fn ascii_json(v: &Value) -> String {
    let mut out = String::new();
    for c in v.to_string().chars() {
        if c.is_ascii() {
            out.push(c);
        } else if (c as u32) <= 0xFFFF {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            // go-yaml takes no surrogate pairs; YAML's 8-digit escape is understood.
            out.push_str(&format!("\\U{:08x}", c as u32));
        }
    }
    out
}

/// Seeded random documents read the same as in kubectl: same JSON, or both refused.
///
/// Known differences, found with wider inputs than these and left out here: tags with
/// odd characters (`!1:20*b`), a block scalar indicator at column 0 as a value, quoted
/// scalars continued at column 0, and a tab-only last line are accepted by go-yaml and
/// refused here (refusing is safe); raw U+0085/U+2028/U+2029 are refused here because
/// YAML 1.1 reads them as line breaks and YAML 1.2 does not.
#[test]
#[ignore = "builds a Go program; run with --ignored"]
fn random_documents_read_like_kubectl() {
    let bin = build_oracle();
    let pieces = [
        "- ",
        ": ",
        "? ",
        "&a ",
        "*a",
        "<<: ",
        "!!str ",
        "[",
        "]",
        "{",
        "}",
        ", ",
        "'",
        "\"",
        "|",
        ">",
        " #c",
        "  ",
        "\t",
        "yes",
        "0x1F",
        "1e3",
        "~",
        "é",
        "\\",
        "a",
        "b",
        "1",
        ".5",
        "0755",
        "null",
        "-1",
        "+.inf",
        "2001-12-14",
        "1:20",
        "\\n",
        "x: y",
    ];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut both_ok, mut both_err) = (0, 0);
    let mut mismatches = Vec::new();
    for _ in 0..1500 {
        let n = 1 + (next() % 8) as usize;
        let value: String = (0..n)
            .map(|_| pieces[(next() % pieces.len() as u64) as usize])
            .collect();
        let doc = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\nv: {value}\n");
        match (oracle(&bin, &doc), ours(&doc)) {
            (Ok(a), Ok(b)) if a == b => both_ok += 1,
            (Err(_), Err(_)) => both_err += 1,
            (want, got) => {
                mismatches.push(format!("{value:?}\n  kubectl {want:?}\n  ours    {got:?}"))
            }
        }
    }
    eprintln!(
        "{both_ok} read the same, {both_err} refused by both, {} differ",
        mismatches.len()
    );
    assert!(
        both_ok > 300,
        "only {both_ok} documents parsed on both sides"
    );
    assert!(
        mismatches.is_empty(),
        "{} of {} differ ({both_ok} same, {both_err} both refused):\n{}",
        mismatches.len(),
        mismatches.len() + both_ok + both_err,
        mismatches
            .iter()
            .take(15)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
