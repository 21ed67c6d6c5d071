//! to_yaml / to_json: golden output, and the YAML reading back to the same objects.

mod common;

use common::MemTree;
use driftless_model::{Content, Object, ObjectRef, Origin};
use driftless_render::{Limits, render_manifests, to_json, to_yaml};
use serde_json::{Value, json};

fn object(v: Value) -> Object {
    let name = v["metadata"]["name"].as_str().unwrap_or("x").to_owned();
    Object {
        id: ObjectRef {
            group: String::new(),
            kind: v["kind"].as_str().unwrap_or("ConfigMap").to_owned(),
            namespace: String::new(),
            name,
        },
        content: Content::Manifest(v),
        origin: Origin::default(),
    }
}

fn reparse(yaml: &str) -> Vec<Value> {
    let tree = MemTree::new().file("out.yaml", yaml);
    render_manifests(&tree, "", &Limits::default())
        .unwrap_or_else(|e| panic!("to_yaml output does not re-parse: {e}\n{yaml}"))
        .into_iter()
        .map(|o| match o.content {
            Content::Manifest(v) => v,
            Content::File { .. } => unreachable!(),
        })
        .collect()
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "prod", "labels": {"app": "web"}, "annotations": {}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "web",
                        "image": "nginx:1.27",
                        "args": ["--port", "8080", "-v"],
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                        "env": [{"name": "RATIO", "value": "0.5"}, {"name": "EMPTY", "value": ""}],
                        "resources": {"limits": {"cpu": 0.5, "memory": "128Mi"}},
                    }],
                    "tolerations": [],
                    "nodeSelector": null,
                    "matrix": [[1, 2], [], [{"a": true}]],
                }
            }
        }
    })
}

fn configmap() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cfg"},
        "data": {
            "script.sh": "#!/bin/sh\necho hi\n",
            "strip": "no trailing newline\nsecond",
            "keep": "two newlines\n\n",
            "indented": "  starts with spaces\nnext\n",
            "yes": "yes",
            "on": "on",
            "mode": "0755",
            "exp": "1e3",
            "tilde": "~",
            "empty": "",
            "null": "null",
            "colon": ": x",
            "hash": "#x",
            "star": "*",
            "quote": "it's",
            "lead": "  leading",
            "trail": "trailing ",
            "tab": "a\tb",
            "date": "2024-01-02",
            "sexagesimal": "1:20",
            "unicode": "héllo wörld ✓",
            "ctrl": "bell\u{7}",
            "crlf": "line\r\nline",
            "spacebreak": "a \nb",
            "merge": "<<",
            "dash": "- item",
            "url": "http://example.com/#anchor",
            "1": "numeric key",
        }
    })
}

#[test]
fn yaml_output_is_kubectl_style() {
    let yaml = to_yaml(&[object(deployment()), object(configmap())]);
    insta::assert_snapshot!(yaml, @r##"
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      namespace: prod
      labels:
        app: web
      annotations: {}
    spec:
      replicas: 3
      selector:
        matchLabels:
          app: web
      template:
        metadata:
          labels:
            app: web
        spec:
          containers:
          - name: web
            image: nginx:1.27
            args:
            - --port
            - "8080"
            - -v
            ports:
            - containerPort: 8080
              protocol: TCP
            env:
            - name: RATIO
              value: "0.5"
            - name: EMPTY
              value: ""
            resources:
              limits:
                cpu: 0.5
                memory: 128Mi
          tolerations: []
          nodeSelector: null
          matrix:
          - - 1
            - 2
          - []
          - - a: true
    ---
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: cfg
    data:
      script.sh: |
        #!/bin/sh
        echo hi
      strip: |-
        no trailing newline
        second
      keep: |+
        two newlines

      indented: |2
          starts with spaces
        next
      "yes": "yes"
      "on": "on"
      mode: "0755"
      exp: "1e3"
      tilde: "~"
      empty: ""
      "null": "null"
      colon: ': x'
      hash: '#x'
      star: '*'
      quote: it's
      lead: '  leading'
      trail: 'trailing '
      tab: "a\tb"
      date: "2024-01-02"
      sexagesimal: "1:20"
      unicode: héllo wörld ✓
      ctrl: "bell\x07"
      crlf: "line\r\nline"
      spacebreak: "a \nb"
      merge: "<<"
      dash: '- item'
      url: http://example.com/#anchor
      "1": numeric key
    "##);
}

#[test]
fn yaml_output_reads_back_to_the_same_objects() {
    let objects = vec![object(deployment()), object(configmap())];
    let back = reparse(&to_yaml(&objects));
    assert_eq!(back, vec![deployment(), configmap()]);
}

#[test]
fn tricky_strings_round_trip_in_every_position() {
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
        "--- x",
        "...",
        "---",
        "<<",
        "=",
        "2001-12-14",
        "12:30:45",
        "1.0",
        ".5",
        "+1",
        "\u{85}nel",
        "\u{feff}bom",
        "\u{2028}",
        "tab\tx",
        "\t",
        "\r",
        "back\\slash",
        "é",
        "😀",
        "a,b",
        "x:y",
    ];
    // Long ones are folded at 80 columns: plain, single- and double-quoted.
    let words = "word ".repeat(30).trim_end().to_owned();
    let long = [
        words.clone(),
        format!("x: {words}"),
        format!("{words}\ttab {words}"),
        format!("{words}  two  spaces {words}"),
        format!("\"{words} \"  {words}"),
        format!("{}{words}", " ".repeat(3)),
    ];
    let strings: Vec<&str> = strings
        .iter()
        .copied()
        .chain(long.iter().map(String::as_str))
        .collect();
    let mut data = serde_json::Map::new();
    let mut list = Vec::new();
    for (i, s) in strings.iter().enumerate() {
        data.insert(format!("k{i}"), json!(s));
        data.insert((*s).to_owned(), json!(i));
        list.push(json!(s));
        list.push(json!({ "v": s }));
        list.push(json!([s]));
    }
    let v = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "t"}, "data": data, "list": list});
    let back = reparse(&to_yaml(&[object(v.clone())]));
    assert_eq!(back, vec![v]);
}

#[test]
fn numbers_round_trip() {
    let v = json!({
        "apiVersion": "v1", "kind": "X", "metadata": {"name": "n"},
        "n": [0, -1, 9223372036854775807i64, -9223372036854775808i64, 18446744073709551615u64,
              1.5, -0.25, 1e-7, 1e20, 1.7976931348623157e308, 123456.789]
    });
    assert_eq!(reparse(&to_yaml(&[object(v.clone())])), vec![v]);
}

#[test]
fn json_output_is_a_kubectl_list_with_four_space_indent() {
    let objs = vec![object(
        json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "a"}, "data": {"k": "v"}}),
    )];
    insta::assert_snapshot!(to_json(&objs), @r#"
    {
        "apiVersion": "v1",
        "items": [
            {
                "kind": "ConfigMap",
                "apiVersion": "v1",
                "metadata": {
                    "name": "a"
                },
                "data": {
                    "k": "v"
                }
            }
        ],
        "kind": "List",
        "metadata": {
            "resourceVersion": ""
        }
    }
    "#);
}

#[test]
fn files_print_as_path_mode_and_content() {
    let text = Object {
        id: ObjectRef::file("etc/a.conf"),
        content: Content::File {
            data: b"x = 1\n".to_vec(),
            executable: false,
        },
        origin: Origin::default(),
    };
    let bin = Object {
        id: ObjectRef::file("bin/tool"),
        content: Content::File {
            data: vec![0xff, 0, 1],
            executable: true,
        },
        origin: Origin::default(),
    };
    insta::assert_snapshot!(to_yaml(&[text, bin]), @r"
    file: etc/a.conf
    executable: false
    size: 6
    content: |
      x = 1
    ---
    file: bin/tool
    executable: true
    size: 3
    contentBase64: /wAB
    ");
}

#[test]
fn very_long_keys_and_values_round_trip() {
    let long = "k".repeat(2000);
    let v = json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "long"},
        "data": {
            long.clone(): long,
            format!("{long}-map"): {"a": 1, "b": [1, {"c": "multi\nline\n"}]},
            format!("{long}-seq"): ["x", {long.clone(): "y"}],
            format!("{long}-text"): "multi\nline",
            format!("{long}\nmultiline key"): "z",
        }
    });
    let yaml = to_yaml(&[object(v.clone())]);
    assert!(yaml.contains(&format!("? {long}\n  : {long}\n")), "{yaml}");
    assert_eq!(reparse(&yaml), vec![v]);
}
