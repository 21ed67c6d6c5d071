//! render_manifests: golden outputs and every refused input, with messages and places.

mod common;

use common::MemTree;
use driftless_model::{Content, Object};
use driftless_render::{Limits, RenderErrors, render_manifests};
use serde_json::{Value, json};

fn render(tree: &MemTree, path: &str) -> Result<Vec<Object>, RenderErrors> {
    render_manifests(tree, path, &Limits::default())
}

/// The error listing a user would see.
fn errors(tree: &MemTree, path: &str) -> String {
    errors_with(tree, path, &Limits::default())
}

fn errors_with(tree: &MemTree, path: &str, limits: &Limits) -> String {
    match render_manifests(tree, path, limits) {
        Ok(objs) => panic!("expected errors, rendered {} objects", objs.len()),
        Err(e) => e.to_string(),
    }
}

/// One line per object: id, origin, then its JSON.
fn summary(objects: &[Object]) -> String {
    let mut out = String::new();
    for o in objects {
        let Content::Manifest(v) = &o.content else {
            panic!("manifest expected")
        };
        out.push_str(&format!(
            "{} @ {}\n  {}\n",
            o.id,
            o.origin,
            serde_json::to_string(v).unwrap()
        ));
    }
    out
}

fn manifest(o: &Object) -> &Value {
    match &o.content {
        Content::Manifest(v) => v,
        Content::File { .. } => panic!("manifest expected"),
    }
}

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: NAME\n";

fn cm(name: &str) -> String {
    CM.replace("NAME", name)
}

#[test]
fn multi_document_yaml_skips_empty_and_comment_only_documents() {
    let text = "# leading comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: web\ndata:\n  k: v\n---\n---\n# only a comment\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n  namespace: web\nspec:\n  replicas: 2\n...\n";
    let tree = MemTree::new().file("app/all.yaml", text);
    let objs = render(&tree, "app").unwrap();
    insta::assert_snapshot!(summary(&objs), @r#"
    web/ConfigMap/a @ app/all.yaml:3:1
      {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"web"},"data":{"k":"v"}}
    web/Deployment.apps/api @ app/all.yaml:14:1
      {"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"api","namespace":"web"},"spec":{"replicas":2}}
    "#);
}

#[test]
fn lists_are_flattened_like_kubectl() {
    let text = r#"apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: one}
- apiVersion: v1
  kind: ConfigMapList
  items:
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: two}}
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: three}
---
apiVersion: v1
kind: SecretList
items: []
"#;
    let tree = MemTree::new().file("list.yaml", text);
    let objs = render(&tree, "").unwrap();
    insta::assert_snapshot!(summary(&objs), @r#"
    ConfigMap/one @ list.yaml:4:3
      {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"one"}}
    ConfigMap/two @ list.yaml:10:5
      {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"two"}}
    ConfigMap/three @ list.yaml:11:5
      {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"three"}}
    "#);
}

#[test]
fn json_files_keep_number_types_and_key_order() {
    let text = r#"
  {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "j"},
   "data": {"z": "1", "a": "2"}, "x": {"int": 7, "big": 18446744073709551615, "float": 1.5, "whole": 2.0}}
{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}]}
"#;
    let tree = MemTree::new().file("a.json", text);
    let objs = render(&tree, "").unwrap();
    insta::assert_snapshot!(summary(&objs), @r#"
    ConfigMap/j @ a.json:2:3
      {"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"j"},"data":{"z":"1","a":"2"},"x":{"int":7,"big":18446744073709551615,"float":1.5,"whole":2}}
    Secret/s @ a.json:4:1
      {"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"}}
    "#);
}

#[test]
fn nested_directories_render_in_path_order_and_ignore_other_files() {
    let tree = MemTree::new()
        .file(
            "deploy/z.json",
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"z"}}"#,
        )
        .file("deploy/a/x.yaml", &cm("ax"))
        .file("deploy/a.yaml", &cm("a"))
        .file("deploy/b/c/d.yml", &cm("bcd"))
        .file("deploy/README.md", "not yaml: [")
        .file("deploy/b/notes.txt", "{")
        .file("other/ignored.yaml", &cm("other"));
    let objs = render(&tree, "deploy").unwrap();
    let got: Vec<String> = objs
        .iter()
        .map(|o| format!("{} @ {}", o.id, o.origin))
        .collect();
    // Byte order of full paths: "a.yaml" < "a/x.yaml" because '.' < '/'.
    assert_eq!(
        got,
        [
            "ConfigMap/a @ deploy/a.yaml:1:1",
            "ConfigMap/ax @ deploy/a/x.yaml:1:1",
            "ConfigMap/bcd @ deploy/b/c/d.yml:1:1",
            "ConfigMap/z @ deploy/z.json:1:1",
        ]
    );
}

#[test]
fn a_single_file_path_renders_that_file() {
    let tree = MemTree::new().file("one.yaml", &cm("solo"));
    let objs = render(&tree, "one.yaml").unwrap();
    assert_eq!(objs.len(), 1);
    assert_eq!(objs[0].origin.to_string(), "one.yaml:1:1");
}

#[test]
fn ids_take_group_from_api_version_and_namespace_from_metadata() {
    let text = "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: r\n  namespace: ns\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns\n  namespace: null\n";
    let objs = render(&MemTree::new().file("r.yaml", text), "").unwrap();
    assert_eq!(objs[0].id.group, "rbac.authorization.k8s.io");
    assert_eq!(objs[0].id.namespace, "ns");
    assert_eq!(objs[1].id.group, "");
    assert_eq!(objs[1].id.namespace, "");
}

/// Keys are strings in JSON: sigs.k8s.io/yaml turns int keys into decimal, float keys into
/// FormatFloat(f, 'g', -1, 32), bool keys into "true"/"false", and refuses the rest.
#[test]
fn non_string_keys_become_strings_like_sigs_k8s_io_yaml() {
    let text = format!(
        "{CM}data:\n  on: a\n  1: b\n  0x10: c\n  1.5: d\n  2.0: e\n  \"on\": g\n  0755: h\n"
    );
    let objs = render(
        &MemTree::new().file("k.yaml", &text.replace("NAME", "k")),
        "",
    )
    .unwrap();
    assert_eq!(
        manifest(&objs[0])["data"],
        json!({"true": "a", "1": "b", "16": "c", "1.5": "d", "2": "e", "on": "g", "493": "h"})
    );
}

#[test]
fn a_key_that_repeats_after_conversion_is_a_duplicate() {
    // `on` and `yes` are both the key "true" once converted.
    let text = format!("{}data:\n  on: a\n  yes: b\n", cm("k"));
    assert_eq!(
        errors(&MemTree::new().file("k.yaml", &text), ""),
        "k.yaml:7:3: duplicate mapping key \"true\""
    );
}

#[test]
fn keys_without_a_json_form_are_refused() {
    let text = format!("{}data:\n  ~: a\n", cm("k"));
    assert_eq!(
        errors(&MemTree::new().file("k.yaml", &text), ""),
        "k.yaml:6:3: mapping key \"~\" (null) cannot become a JSON object key"
    );
    let text = format!("{}data:\n  18446744073709551615: a\n", cm("k"));
    assert_eq!(
        errors(&MemTree::new().file("k.yaml", &text), ""),
        "k.yaml:6:3: mapping key 18446744073709551615 (an integer above int64) cannot become a JSON object key"
    );
    let text = format!("{}data:\n  ? [a, b]\n  : c\n", cm("k"));
    assert_eq!(
        errors(&MemTree::new().file("k.yaml", &text), ""),
        "k.yaml:6:5: mapping key that is a mapping or a list cannot become a JSON object key"
    );
}

/// Values resolve with go-yaml v2's YAML 1.1 rules (see src/resolve.rs for the facts);
/// quoted and block scalars are always strings.
#[test]
fn scalar_values_resolve_like_kubectl() {
    let cases: &[(&str, Value)] = &[
        ("yes", json!(true)),
        ("No", json!(false)),
        ("on", json!(true)),
        ("y", json!(true)),
        ("~", json!(null)),
        ("", json!(null)),
        ("0755", json!(493)),
        ("0x1F", json!(31)),
        ("1_000", json!(1000)),
        ("1e3", json!(1000)),
        ("1.", json!(1)),
        ("1e400", json!("1e400")),
        ("1e+3", json!(1000)),
        ("1.5", json!(1.5)),
        ("08", json!(8)),
        (".5", json!(0.5)),
        ("2001-12-14", json!("2001-12-14")),
        ("1:20", json!("1:20")),
        ("'yes'", json!("yes")),
        ("\"0755\"", json!("0755")),
        ("!!str 12", json!("12")),
        ("!!float 12", json!(12)),
        ("!!int \"12\"", json!(12)),
        ("!custom 12", json!("12")),
        // Tags go-yaml v2 cannot resolve keep the text as a string.
        ("!!t 12", json!("12")),
        ("!!map x", json!("x")),
        ("9223372036854775807", json!(9223372036854775807i64)),
        ("18446744073709551615", json!(18446744073709551615u64)),
        // Beyond uint64 go-yaml falls back to float64, which is what kubectl sends.
        (
            "123456789012345678901234567890",
            json!(1.2345678901234568e29),
        ),
        // Go's JSON encoder writes this float64 as -9223372036854776000, past int64.
        ("-9223372036854775809", json!(-9223372036854775808.0f64)),
        // 2^62 as a float64 is written in shortest digits: 4611686018427388000.
        ("4611686018427387904.0", json!(4611686018427388000i64)),
    ];
    for (scalar, want) in cases {
        let text = format!("{}data:\n  v: {scalar}\n", cm("s"));
        let objs = render(&MemTree::new().file("s.yaml", &text), "")
            .unwrap_or_else(|e| panic!("{scalar}: {e}"));
        assert_eq!(&manifest(&objs[0])["data"]["v"], want, "scalar {scalar:?}");
    }
}

#[test]
fn scalars_without_a_json_form_or_against_their_tag_are_refused() {
    for (scalar, msg) in [
        (
            ".inf",
            "s.yaml:6:6: .inf is not a finite number; JSON cannot represent it",
        ),
        (
            "-.Inf",
            "s.yaml:6:6: -.Inf is not a finite number; JSON cannot represent it",
        ),
        (
            ".nan",
            "s.yaml:6:6: .nan is not a finite number; JSON cannot represent it",
        ),
        ("!!int abc", "s.yaml:6:6: cannot decode \"abc\" as !!int"),
        (
            "!!binary aGk=",
            "s.yaml:6:6: tag !!binary is not supported on a scalar",
        ),
    ] {
        let text = format!("{}data:\n  v: {scalar}\n", cm("s"));
        assert_eq!(
            errors(&MemTree::new().file("s.yaml", &text), ""),
            msg,
            "{scalar}"
        );
    }
}

#[test]
fn block_scalars_and_folding_are_strings() {
    let text = format!(
        "{}data:\n  lit: |\n    a\n     b\n  fold: >-\n    x\n    y\n  keep: |+\n    k\n\n",
        cm("b")
    );
    let objs = render(&MemTree::new().file("b.yaml", &text), "").unwrap();
    assert_eq!(
        manifest(&objs[0])["data"],
        json!({"lit": "a\n b\n", "fold": "x y", "keep": "k\n\n"})
    );
}

/// go-yaml v2 merges `<<` in place: merged keys overwrite earlier ones, later keys
/// overwrite merged ones, and in a list of maps the first map wins.
#[test]
fn merge_keys_follow_go_yaml_v2() {
    let text = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: m
base: &base {a: 1, b: 2}
other: &other {b: 3, c: 4}
data:
  <<: *base
  b: 20
one:
  <<: [*other, *base]
before:
  a: 0
  <<: *base
"#;
    let objs = render(&MemTree::new().file("m.yaml", text), "").unwrap();
    let v = manifest(&objs[0]);
    assert_eq!(v["data"], json!({"a": 1, "b": 20}));
    assert_eq!(v["one"], json!({"b": 3, "c": 4, "a": 1}));
    assert_eq!(v["before"], json!({"a": 1, "b": 2}));
}

#[test]
fn merge_of_a_scalar_is_refused() {
    let text = format!("{}data:\n  <<: 5\n", cm("m"));
    assert_eq!(
        errors(&MemTree::new().file("m.yaml", &text), ""),
        "m.yaml:6:7: merge key << needs a mapping or a list of mappings, found integer"
    );
}

#[test]
fn anchors_and_aliases_copy_values() {
    let text = format!(
        "{}data:\n  a: &x hello\n  b: *x\n  &k key: v\n  c: *k\n",
        cm("a")
    );
    let objs = render(&MemTree::new().file("a.yaml", &text), "").unwrap();
    assert_eq!(
        manifest(&objs[0])["data"],
        json!({"a": "hello", "b": "hello", "key": "v", "c": "key"})
    );
}

// ---- refused input ----

#[test]
fn unclosed_quote_names_line_and_column() {
    let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: \"abc\n";
    assert_eq!(
        errors(&MemTree::new().file("q.yaml", text), ""),
        "q.yaml:4:9: syntax error: while scanning a quoted scalar, found unexpected end of stream"
    );
}

#[test]
fn bad_indentation_names_line_and_column() {
    let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n labels: {}\n";
    let got = errors(&MemTree::new().file("i.yaml", text), "");
    assert!(got.starts_with("i.yaml:5:"), "{got}");
    assert!(got.contains("syntax error"), "{got}");
}

#[test]
fn json_syntax_errors_name_line_and_column() {
    let text = "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"ConfigMap\"\n  \"metadata\": {}\n}\n";
    assert_eq!(
        errors(&MemTree::new().file("bad.json", text), ""),
        "bad.json:4:3: syntax error: expected `,` or `}`"
    );
    let text = "{\"apiVersion\": \"v1\", \"kind\": \"A\", \"kind\": \"B\", \"metadata\": {\"name\": \"x\"}}";
    assert_eq!(
        errors(&MemTree::new().file("dup.json", text), ""),
        "dup.json:1:40: duplicate mapping key \"kind\""
    );
}

#[test]
fn duplicate_keys_are_refused_with_their_place() {
    let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n";
    assert_eq!(
        errors(&MemTree::new().file("d.yaml", text), ""),
        "d.yaml:5:3: duplicate mapping key \"name\""
    );
}

#[test]
fn a_file_over_the_size_limit_is_refused() {
    let limits = Limits {
        max_file_bytes: 100,
        ..Limits::default()
    };
    let big = format!("{}data:\n  blob: \"{}\"\n", cm("big"), "x".repeat(200));
    let tree = MemTree::new()
        .file("big.yaml", &big)
        .file("small.yaml", &cm("small"));
    assert_eq!(
        errors_with(&tree, "", &limits),
        format!(
            "big.yaml: file is {} bytes, over the limit of 100 bytes",
            big.len()
        )
    );
}

#[test]
fn too_many_documents_stops_the_file() {
    let limits = Limits {
        max_documents: 3,
        ..Limits::default()
    };
    let text = (0..5)
        .map(|i| cm(&format!("c{i}")))
        .collect::<Vec<_>>()
        .join("---\n");
    assert_eq!(
        errors_with(&MemTree::new().file("many.yaml", &text), "", &limits),
        "many.yaml:15:1: more than 3 documents in one file"
    );
}

#[test]
fn too_many_objects_in_total() {
    let limits = Limits {
        max_total_objects: 2,
        ..Limits::default()
    };
    let text = (0..3)
        .map(|i| cm(&format!("c{i}")))
        .collect::<Vec<_>>()
        .join("---\n");
    assert_eq!(
        errors_with(&MemTree::new().file("many.yaml", &text), "", &limits),
        "many.yaml:11:1: more than 2 objects in total"
    );
}

#[test]
fn billion_laughs_fails_fast() {
    let mut text = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lol\ndata:\n  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        text.push_str(&format!("  a{i}: &a{i} [{refs}]\n"));
    }
    // Fully expanded this is 10^10 strings; the limit stops it after 100,000 copied nodes.
    // a1..a3 copy 110 + 1,110 + 11,110 nodes; the 8th `*a3` on the a4 line passes 100,000.
    assert_eq!(
        errors(&MemTree::new().file("lol.yaml", &text), ""),
        "lol.yaml:10:47: aliases expand to more than 100000 nodes (an alias bomb?)"
    );
}

#[test]
fn the_alias_budget_spans_documents_and_files() {
    let limits = Limits {
        max_alias_expansion: 10,
        ..Limits::default()
    };
    // Each document copies a 4-node list once: 4 + 4 fit, the third copy does not.
    let doc = |name: &str| format!("{}data:\n  a: &x [1, 2, 3]\n  b: *x\n", cm(name));
    let tree = MemTree::new()
        .file("1.yaml", &format!("{}---\n{}", doc("a"), doc("b")))
        .file("2.yaml", &doc("c"));
    assert_eq!(
        errors_with(&tree, "", &limits),
        "2.yaml:7:6: aliases expand to more than 10 nodes (an alias bomb?)"
    );
}

#[test]
fn aliases_cannot_nest_deeper_than_the_limit() {
    let limits = Limits {
        max_depth: 5,
        ..Limits::default()
    };
    // `x` is 3 levels of lists defined at level 2; copied at level 3 it would reach 6.
    let text = format!("{}data:\n  a: &x [[[1]]]\n  b: [*x]\n", cm("d"));
    assert_eq!(
        errors_with(&MemTree::new().file("d.yaml", &text), "", &limits),
        "d.yaml:7:7: nesting deeper than 5 levels"
    );
    let text = format!("{}data:\n  a: &x [[[1]]]\n  b: *x\n", cm("d"));
    assert!(render_manifests(&MemTree::new().file("d.yaml", &text), "", &limits).is_ok());
}

#[test]
fn deep_flow_nesting_is_refused_without_overflowing_the_stack() {
    // The root mapping is level 1, `data` level 2, so the 99th `[` is level 101.
    let text = format!(
        "{}data:\n  x: {}{}\n",
        cm("deep"),
        "[".repeat(150),
        "]".repeat(150)
    );
    assert_eq!(
        errors(&MemTree::new().file("deep.yaml", &text), ""),
        "deep.yaml:6:104: nesting deeper than 100 levels"
    );
    // With 10,000 the scanner, looking ahead for a possible key, stops at its own limit
    // of 255 flow levels first.
    let text = format!(
        "{}data:\n  x: {}{}\n",
        cm("deep"),
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert_eq!(
        errors(&MemTree::new().file("deep.yaml", &text), ""),
        "deep.yaml:6:261: nesting deeper than 100 levels"
    );
}

#[test]
fn deep_block_nesting_is_refused_without_overflowing_the_stack() {
    let mut text = String::new();
    for i in 0..2_000 {
        text.push_str(&" ".repeat(i));
        text.push_str("a:\n");
    }
    assert_eq!(
        errors(&MemTree::new().file("deep.yaml", &text), ""),
        "deep.yaml:101:101: nesting deeper than 100 levels"
    );
}

#[test]
fn deep_json_is_refused() {
    let text = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let got = errors(&MemTree::new().file("deep.json", &text), "");
    assert!(got.starts_with("deep.json:1:"), "{got}");
    assert!(got.ends_with("nesting deeper than 100 levels"), "{got}");
}

#[test]
fn missing_fields_are_all_listed() {
    let text = "data:\n  a: b\n";
    assert_eq!(
        errors(&MemTree::new().file("m.yaml", text), ""),
        "m.yaml:1:1: missing required field kind\nm.yaml:1:1: missing required field apiVersion\nm.yaml:1:1: missing required field metadata.name"
    );
    let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {}\n";
    assert_eq!(
        errors(&MemTree::new().file("m.yaml", text), ""),
        "m.yaml:1:1: missing required field metadata.name"
    );
}

#[test]
fn wrong_field_types_are_refused() {
    for (name, found) in [
        ("123", "an integer"),
        ("yes", "a boolean"),
        ("[a]", "a list"),
        ("''", "an empty string"),
    ] {
        let text = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n");
        assert_eq!(
            errors(&MemTree::new().file("t.yaml", &text), ""),
            format!("t.yaml:4:9: metadata.name must be a non-empty string, found {found}"),
        );
    }
    let text = "apiVersion: 1\nkind: ConfigMap\nmetadata: x\n";
    assert_eq!(
        errors(&MemTree::new().file("t.yaml", text), ""),
        "t.yaml:1:13: apiVersion must be a non-empty string, found an integer\nt.yaml:3:11: metadata must be a mapping, found a string"
    );
}

#[test]
fn documents_that_are_lists_or_scalars_are_refused() {
    assert_eq!(
        errors(&MemTree::new().file("l.yaml", "- a\n- b\n"), ""),
        "l.yaml:1:1: document is a list; expected a mapping with apiVersion, kind and metadata.name"
    );
    assert_eq!(
        errors(&MemTree::new().file("s.yaml", "# hello\njust text\n"), ""),
        "s.yaml:2:1: document is a string; expected a mapping with apiVersion, kind and metadata.name"
    );
}

#[test]
fn duplicate_objects_across_files_name_both_places() {
    let tree = MemTree::new()
        .file("a.yaml", &cm("same"))
        .file("b/c.yaml", &format!("# x\n{}", cm("same")));
    assert_eq!(
        errors(&tree, ""),
        "b/c.yaml:2:1: duplicate object ConfigMap/same; first defined at a.yaml:1:1"
    );
    // Same name in another namespace or kind is another object.
    let tree = MemTree::new()
        .file("a.yaml", &cm("same"))
        .file("b.yaml", &format!("{}  namespace: other\n", cm("same")));
    assert_eq!(render(&tree, "").unwrap().len(), 2);
}

#[test]
fn every_error_of_every_file_is_listed_and_nothing_renders() {
    let tree = MemTree::new()
        .file("1.yaml", "kind: ConfigMap\nmetadata: {name: a}\n")
        .file("2.yaml", &cm("fine"))
        .file("3.yaml", "a: [\n");
    let got = errors(&tree, "");
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 2, "{got}");
    assert_eq!(lines[0], "1.yaml:1:1: missing required field apiVersion");
    assert!(lines[1].starts_with("3.yaml:2:1: syntax error"), "{got}");
}

#[test]
fn symlinks_inside_the_path_are_followed() {
    let tree = MemTree::new()
        .file("app/data.txt", &cm("through-link"))
        .symlink("app/sub/link.yaml", "../data.txt");
    let objs = render(&tree, "app").unwrap();
    assert_eq!(
        summary(&objs),
        "ConfigMap/through-link @ app/sub/link.yaml:1:1\n  {\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"through-link\"}}\n"
    );
}

#[test]
fn symlinks_leaving_the_path_absolute_or_dangling_are_refused() {
    let tree = MemTree::new()
        .file("app/ok.yaml", &cm("ok"))
        .file("shared/x.yaml", &cm("x"))
        .symlink("app/a.yaml", "../shared/x.yaml")
        .symlink("app/b.yaml", "/etc/passwd")
        .symlink("app/c.yaml", "missing.yaml")
        .symlink("app/d.yaml", "../../../../etc/passwd")
        .symlink("app/e.yaml", "f.yaml")
        .symlink("app/f.yaml", "e.yaml")
        .symlink("app/g.yaml", ".")
        .symlink("app/README", "/etc/passwd");
    assert_eq!(
        errors(&tree, "app"),
        [
            "app/a.yaml: symlink to \"../shared/x.yaml\" leaves \"app\"",
            "app/b.yaml: symlink to \"/etc/passwd\" leaves \"app\"",
            "app/c.yaml: symlink to \"missing.yaml\" points at nothing",
            "app/d.yaml: symlink to \"../../../../etc/passwd\" leaves \"app\"",
            "app/e.yaml: too many levels of symlinks",
            "app/f.yaml: too many levels of symlinks",
            "app/g.yaml: symlink to \".\" points at a directory; only links to files are rendered",
        ]
        .join("\n")
    );
}

#[test]
fn paths_with_dot_dot_or_absolute_are_refused() {
    let tree = MemTree::new().file("app/a.yaml", &cm("a"));
    assert_eq!(
        errors(&tree, "app/../app"),
        "app/../app: path \"app/../app\" refused: `..` components are not allowed"
    );
    assert_eq!(
        errors(&tree, "../x"),
        "../x: path \"../x\" refused: `..` components are not allowed"
    );
    assert_eq!(
        errors(&tree, "/app"),
        "/app: path \"/app\" refused: absolute paths are not allowed; give a path relative to the repository root"
    );
    // `.` and extra slashes are harmless.
    assert_eq!(render(&tree, "./app/").unwrap().len(), 1);
}

#[test]
fn a_missing_path_an_empty_dir_and_a_dir_without_manifests_are_errors() {
    let tree = MemTree::new()
        .dir("empty")
        .file("docs/README.md", "# hi")
        .file("app/a.yaml", &cm("a"));
    assert_eq!(
        errors(&tree, "nope/x"),
        "nope/x: path \"nope/x\" does not exist"
    );
    assert_eq!(
        errors(&tree, "empty"),
        "empty: no *.yaml, *.yml or *.json files under \"empty\""
    );
    assert_eq!(
        errors(&tree, "docs"),
        "docs: no *.yaml, *.yml or *.json files under \"docs\""
    );
    // Files that hold only comments or nothing render to nothing, which is not an error.
    let tree = MemTree::new()
        .file("c/a.yaml", "# nothing yet\n")
        .file("c/b.yml", "");
    assert_eq!(render(&tree, "c").unwrap().len(), 0);
}

#[test]
fn submodules_are_refused() {
    let tree = MemTree::new()
        .file("app/a.yaml", &cm("a"))
        .submodule("app/vendor");
    assert_eq!(
        errors(&tree, "app"),
        "app/vendor: is a Git submodule; submodule contents are not rendered"
    );
}

#[test]
fn non_utf8_files_are_refused_with_their_place() {
    let tree = MemTree::new().bytes("bin.yaml", b"apiVersion: v1\nkind: \xff\n", false);
    assert_eq!(
        errors(&tree, ""),
        "bin.yaml:2:7: not valid UTF-8 text: invalid utf-8 sequence of 1 bytes from index 21"
    );
}

#[test]
fn errors_are_listed_in_path_order() {
    let tree = MemTree::new()
        .file("a.yaml", "kind: X\n")
        .symlink("b/c/link.yaml", "/abs")
        .file("b/d.yaml", "- list\n")
        .symlink("z.yaml", "../up");
    assert_eq!(
        errors(&tree, ""),
        [
            "a.yaml:1:1: missing required field apiVersion",
            "a.yaml:1:1: missing required field metadata.name",
            "b/c/link.yaml: symlink to \"/abs\" leaves \"\"",
            "b/d.yaml:1:1: document is a list; expected a mapping with apiVersion, kind and metadata.name",
            "z.yaml: symlink to \"../up\" leaves \"\"",
        ]
        .join("\n")
    );
}

#[test]
fn crlf_line_ends_and_a_byte_order_mark_are_accepted() {
    let text = "\u{feff}apiVersion: v1\r\nkind: ConfigMap\r\nmetadata:\r\n  name: crlf\r\ndata:\r\n  text: |\r\n    a\r\n    b\r\n";
    let objs = render(&MemTree::new().file("w.yaml", text), "").unwrap();
    assert_eq!(manifest(&objs[0])["data"]["text"], json!("a\nb\n"));
    let text = "\u{feff}{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"bom\"}}";
    assert_eq!(
        render(&MemTree::new().file("w.json", text), "")
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn list_items_of_the_wrong_type_and_lists_without_items() {
    let text = "apiVersion: v1\nkind: List\nitems: {a: b}\n";
    assert_eq!(
        errors(&MemTree::new().file("l.yaml", text), ""),
        "l.yaml:3:8: items must be a list, found a mapping"
    );
    let text = "apiVersion: v1\nkind: List\nitems:\n- just a string\n- apiVersion: v1\n  kind: ConfigMap\n";
    assert_eq!(
        errors(&MemTree::new().file("l.yaml", text), ""),
        "l.yaml:4:3: document is a string; expected a mapping with apiVersion, kind and metadata.name\nl.yaml:5:3: missing required field metadata.name"
    );
    // A kind ending in "List" without `items` is an ordinary object.
    let text = "apiVersion: example.com/v1\nkind: AllowList\nmetadata:\n  name: allow\n";
    let objs = render(&MemTree::new().file("l.yaml", text), "").unwrap();
    assert_eq!(objs[0].id.to_string(), "AllowList.example.com/allow");
}

#[test]
fn json_documents_are_counted_and_located() {
    let limits = Limits {
        max_documents: 2,
        ..Limits::default()
    };
    let one = r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "NAME"}}"#;
    let text = format!(
        "{}\n\n  {}\n{}\n",
        one.replace("NAME", "a"),
        one.replace("NAME", "b"),
        one.replace("NAME", "c")
    );
    assert_eq!(
        errors_with(&MemTree::new().file("m.json", &text), "", &limits),
        "m.json:4:1: more than 2 documents in one file"
    );
    let objs = render(&MemTree::new().file("m.json", &text), "").unwrap();
    let origins: Vec<String> = objs.iter().map(|o| o.origin.to_string()).collect();
    assert_eq!(origins, ["m.json:1:1", "m.json:3:3", "m.json:4:1"]);
}

#[test]
fn an_alias_inside_its_own_anchor_is_refused() {
    let text = format!("{}data:\n  a: &x [1, *x]\n", cm("r"));
    assert_eq!(
        errors(&MemTree::new().file("r.yaml", &text), ""),
        "r.yaml:6:13: syntax error: alias refers to the node that contains it"
    );
}

#[test]
fn an_alias_to_an_undefined_anchor_is_refused() {
    let text = format!("{}data:\n  a: *nope\n", cm("u"));
    assert_eq!(
        errors(&MemTree::new().file("u.yaml", &text), ""),
        "u.yaml:6:6: syntax error: while parsing node, found unknown anchor"
    );
}

#[test]
fn a_tree_entry_named_dot_dot_is_refused() {
    // A hand-made Git tree can hold such a name; it must never be joined into a path.
    let tree = MemTree::new()
        .file("app/ok.yaml", &cm("ok"))
        .file("app/../x.yaml", &cm("x"));
    assert_eq!(
        errors(&tree, "app"),
        "app/..: path \"..\" refused: a tree entry with this name could leave the directory"
    );
}

#[test]
fn a_root_that_is_a_symlink_is_refused() {
    let tree = MemTree::new()
        .file("real/a.yaml", &cm("a"))
        .symlink("app", "real");
    assert_eq!(errors(&tree, "app"), "app: path \"app\" is not a directory");
}

#[test]
fn merge_of_a_list_holding_a_scalar_is_refused() {
    let text = format!("{}base: &b {{a: 1}}\ndata:\n  <<: [*b, 3]\n", cm("m"));
    assert_eq!(
        errors(&MemTree::new().file("m.yaml", &text), ""),
        "m.yaml:7:12: merge key << needs a mapping or a list of mappings, found integer"
    );
}

/// A tree whose backing store fails on read.
struct FailingRead(MemTree);

impl driftless_model::Tree for FailingRead {
    fn list(
        &self,
        dir: &str,
    ) -> Result<Vec<driftless_model::TreeEntry>, driftless_model::TreeError> {
        self.0.list(dir)
    }
    fn read(&self, path: &str) -> Result<Vec<u8>, driftless_model::TreeError> {
        Err(driftless_model::TreeError::Backend {
            path: path.to_owned(),
            source: "object 3f2a1bc is missing".into(),
        })
    }
    fn kind(
        &self,
        path: &str,
    ) -> Result<Option<driftless_model::EntryKind>, driftless_model::TreeError> {
        self.0.kind(path)
    }
    fn describe(&self) -> String {
        "failing".to_owned()
    }
}

#[test]
fn a_read_failure_is_reported_per_file() {
    let tree = FailingRead(MemTree::new().file("a.yaml", &cm("a")));
    let err = render_manifests(&tree, "", &Limits::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "a.yaml: cannot read: a.yaml: object 3f2a1bc is missing"
    );
}

#[test]
fn raw_yaml_1_1_line_breaks_are_refused_with_their_place() {
    // U+2028 ends a line for kubectl's YAML 1.1 parser but not for a YAML 1.2 one.
    let text = format!("{}data:\n  v: a\u{2028}b\n", cm("nel"));
    assert_eq!(
        errors(&MemTree::new().file("n.yaml", &text), ""),
        "n.yaml:6:7: contains U+2028, a line break in YAML 1.1 (kubectl) but not in YAML 1.2; write it escaped in a double-quoted string"
    );
    // Escaped, it is an ordinary character.
    let text = format!("{}data:\n  v: \"a\\Lb\\Nc\"\n", cm("nel"));
    let objs = render(&MemTree::new().file("n.yaml", &text), "").unwrap();
    assert_eq!(manifest(&objs[0])["data"]["v"], json!("a\u{2028}b\u{85}c"));
}
