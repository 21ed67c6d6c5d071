//! Hostile input through the user-visible entry point, `render_source_with`: every attack
//! fails that render with a clear error naming the limit, fast and on a 2 MiB stack (the
//! size of tokio's blocking threads, where the daemon renders), and never aborts the
//! process. Each test reproduces an attack that crashed or exhausted the daemon before.

mod common;

use std::time::{Duration, Instant};

use common::MemTree;
use driftless_model::{EntryKind, Tree, TreeEntry, TreeError};
use driftless_render::{
    Decryption, Identities, Limits, RenderErrorKind, RenderErrors, render_files_with,
    render_source_with,
};

/// A test identity (not used for anything else); attacks fail before any key is tried.
const KEY: &str = "AGE-SECRET-KEY-13PZ06RVPNJY9QTJ4Z7HM50ZHY0Q2HRF6MXLSF7D44DKCZGWRZ3USXN9Q52";

fn decryption() -> Decryption {
    Decryption::new(Identities::parse(KEY).expect("valid identity"))
}

/// Runs `f` on a thread with a 2 MiB stack. A stack overflow there aborts the whole test
/// binary, which is exactly the failure these tests guard against.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(f)
        .expect("spawn a thread")
        .join()
        .expect("the render thread must not panic")
}

/// Renders `tree` at `path` with a key and the default limits on a small stack; returns
/// the errors and how long it took.
fn render_err(tree: MemTree, path: &'static str) -> (RenderErrors, Duration) {
    on_small_stack(move || {
        let start = Instant::now();
        let d = decryption();
        let r = render_source_with(&tree, path, &Limits::default(), Some(&d));
        (r.expect_err("hostile input must fail"), start.elapsed())
    })
}

fn one_error(errors: &RenderErrors) -> &driftless_render::RenderError {
    assert_eq!(errors.0.len(), 1, "one error expected:\n{errors}");
    &errors.0[0]
}

#[test]
fn sops_json_deep_nesting_is_a_clean_error() {
    // `{"sops":[[[[…` of 100 KB: the SOPS JSON reader used to recurse once per bracket.
    let n = 50_000;
    let text = format!("{{\"sops\":{}{}}}", "[".repeat(n), "]".repeat(n));
    let (errors, took) = render_err(MemTree::new().file("app/s.json", &text), "app");
    let e = one_error(&errors);
    assert_eq!(e.origin.file, "app/s.json");
    assert!(e.origin.line >= 1, "{e}");
    assert!(
        matches!(e.kind, RenderErrorKind::TooDeep(100)),
        "expected the depth limit, got: {e}"
    );
    assert!(
        e.to_string().contains("nesting deeper than 100 levels"),
        "{e}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn sops_yaml_deep_nesting_is_a_clean_error() {
    // `sops:\n- - - …`: the SOPS YAML reader used to recurse once per dash.
    let n = 20_000;
    let text = format!("a: b\nsops:\n{}x\n", "- ".repeat(n));
    let (errors, took) = render_err(MemTree::new().file("app/s.yaml", &text), "app");
    let e = one_error(&errors);
    assert_eq!(e.origin.file, "app/s.yaml");
    assert_eq!(e.origin.line, 3, "{e}");
    assert!(matches!(e.kind, RenderErrorKind::TooDeep(100)), "{e}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn sops_yaml_deep_flow_nesting_is_a_clean_error() {
    // The same in a flow collection on one line.
    let n = 50_000;
    let text = format!("sops: {}{}\n", "[".repeat(n), "]".repeat(n));
    let (errors, _) = render_err(MemTree::new().file("app/s.yaml", &text), "app");
    let e = one_error(&errors);
    assert_eq!(e.origin.file, "app/s.yaml");
    assert!(matches!(e.kind, RenderErrorKind::TooDeep(_)), "{e}");
}

/// A dotenv file carrying sops metadata with `n` age stanzas.
fn sops_dotenv(n: usize) -> String {
    let mut text = String::from("A=ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]\n");
    for i in 0..n {
        text.push_str(&format!("sops_age__list_{i}__map_recipient=age1x\n"));
    }
    text.push_str("sops_lastmodified=2024-01-01T00:00:00Z\nsops_mac=ENC[x]\nsops_version=3.9.0\n");
    text
}

#[test]
fn sops_dotenv_with_a_huge_metadata_block_fails_fast() {
    // 150,000 age stanzas (~6 MiB, under the file limit): reading the metadata used to
    // take quadratic time, pinning a core for many minutes.
    let text = sops_dotenv(150_000);
    assert!(text.len() < 8 * 1024 * 1024);
    let tree = MemTree::new()
        .file(
            "app/kustomization.yaml",
            "secretGenerator:\n- name: s\n  envs: [s.env]\n",
        )
        .file("app/s.env", &text);
    let (errors, took) = render_err(tree, "app");
    let e = one_error(&errors);
    assert!(e.to_string().contains("app/s.env"), "{e}");
    assert!(e.to_string().contains("age recipients"), "{e}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn sops_dotenv_over_the_file_limit_is_refused_before_parsing() {
    let text = sops_dotenv(250_000);
    assert!(text.len() > 8 * 1024 * 1024);
    let tree = MemTree::new()
        .file(
            "app/kustomization.yaml",
            "secretGenerator:\n- name: s\n  envs: [s.env]\n",
        )
        .file("app/s.env", &text);
    let (errors, took) = render_err(tree.clone(), "app");
    let e = one_error(&errors);
    assert!(e.to_string().contains("app/s.env"), "{e}");
    assert!(
        e.to_string().contains("over the limit of 8388608 bytes"),
        "{e}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // Files mode reads every file: the same refusal.
    let e = render_files_with(&tree, "app", &Limits::default(), Some(&decryption()))
        .expect_err("too large");
    assert!(
        matches!(e.0[0].kind, RenderErrorKind::TooLarge { .. }),
        "{e}"
    );
}

#[test]
fn a_sops_word_in_a_plain_file_renders_as_plain() {
    // Only a top-level `sops` mapping with the metadata makes a file encrypted: a kind
    // named sops, a value mentioning sops and a nested `sops` key are plain YAML.
    let tree = MemTree::new()
        .file(
            "app/a.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sops\ndata:\n  note: encrypted with sops\n  sops: \"yes\"\n",
        )
        .file(
            "app/b.yaml",
            "apiVersion: example.com/v1\nkind: sops\nmetadata:\n  name: b\nspec:\n  sops:\n    mac: x\n    lastmodified: y\n",
        )
        .file(
            "app/c.json",
            "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\"},\"data\":{\"x\":\"{\\\"sops\\\":{\\\"mac\\\":1}}\"}}",
        );
    let rendered = on_small_stack(move || {
        render_source_with(&tree, "app", &Limits::default(), None).map(|r| r.objects)
    })
    .expect("plain files render without a key");
    let names: Vec<&str> = rendered.iter().map(|o| o.id.name.as_str()).collect();
    assert_eq!(names, ["sops", "b", "c"]);
}

#[test]
fn too_many_documents_is_a_clean_error() {
    let text: String = (0..10_001)
        .map(|i| format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}}}\n"))
        .collect();
    let (errors, _) = render_err(MemTree::new().file("app/m.yaml", &text), "app");
    let e = one_error(&errors);
    assert!(
        matches!(e.kind, RenderErrorKind::TooManyDocuments(10_000)),
        "{e}"
    );
    assert_eq!(e.origin.line, 40_001, "{e}");
}

#[test]
fn total_bytes_read_per_render_are_capped() {
    // Ten files of 1 MiB each, with a 4 MiB budget for the whole render.
    let mut tree = MemTree::new();
    let body = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: N\ndata:\n  x: \"{}\"\n",
        "a".repeat(1024 * 1024)
    );
    for i in 0..10 {
        tree = tree.file(
            &format!("app/f{i}.yaml"),
            &body.replace("name: N", &format!("name: n{i}")),
        );
    }
    let limits = Limits {
        max_total_bytes: 4 * 1024 * 1024,
        ..Limits::default()
    };
    let e = render_source_with(&tree, "app", &limits, None).expect_err("over budget");
    assert!(
        e.0.iter()
            .any(|e| e.to_string().contains("4194304 bytes in total")),
        "{e}"
    );
}

/// A tree whose reads panic, standing in for any bug in the render code.
struct PanickingTree(MemTree);

impl Tree for PanickingTree {
    fn list(&self, dir: &str) -> Result<Vec<TreeEntry>, TreeError> {
        self.0.list(dir)
    }
    fn read(&self, path: &str) -> Result<Vec<u8>, TreeError> {
        panic!("boom while reading {path}")
    }
    fn kind(&self, path: &str) -> Result<Option<EntryKind>, TreeError> {
        self.0.kind(path)
    }
    fn describe(&self) -> String {
        "panicking".to_owned()
    }
}

#[test]
fn a_panic_inside_a_render_is_that_renders_error() {
    let tree = PanickingTree(MemTree::new().file("app/a.yaml", "a: 1\n"));
    let e = render_source_with(&tree, "app", &Limits::default(), None)
        .expect_err("the panic becomes an error");
    let text = e.to_string();
    assert!(text.starts_with("app: internal error: "), "{text}");
    assert!(text.contains("boom while reading app/a.yaml"), "{text}");
    let e = render_files_with(&tree, "app", &Limits::default(), None).expect_err("same");
    assert!(e.to_string().contains("internal error: boom"), "{e}");
    let kz = PanickingTree(MemTree::new().file("k/kustomization.yaml", "resources: []\n"));
    let e = render_source_with(&kz, "k", &Limits::default(), None).expect_err("same");
    assert!(e.to_string().contains("internal error: boom"), "{e}");
}

fn kustomization(resource: &str) -> MemTree {
    MemTree::new()
        .file("k/kustomization.yaml", "resources: [r.yaml]\n")
        .file("k/r.yaml", resource)
}

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n";

#[test]
fn a_kustomize_alias_bomb_fails_fast() {
    let mut text = format!(
        "{CM}data:\n  a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
    );
    for i in 1..=9 {
        let prev = format!("*a{}", i - 1);
        text.push_str(&format!(
            "  a{i}: &a{i} [{}]\n",
            [prev.as_str(); 10].join(",")
        ));
    }
    let (errors, took) = render_err(kustomization(&text), "k");
    let e = one_error(&errors);
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert_eq!(e.origin.file, "k/r.yaml");
    assert!(e.origin.line > 5, "{e}");
    assert!(
        e.to_string()
            .contains("aliases expand to more than 100000 nodes"),
        "{e}"
    );
}

#[test]
fn kustomize_deep_nesting_names_the_place() {
    let text = format!("{CM}data: {}{}\n", "[".repeat(50_000), "]".repeat(50_000));
    let (errors, _) = render_err(kustomization(&text), "k");
    let e = one_error(&errors);
    assert_eq!(
        (e.origin.file.as_str(), e.origin.line),
        ("k/r.yaml", 5),
        "{e}"
    );
    assert!(
        e.to_string().ends_with("nesting deeper than 100 levels"),
        "{e}"
    );
}

#[test]
fn a_kustomize_resource_over_the_file_limit_is_refused() {
    let text = format!("{CM}data:\n  x: \"{}\"\n", "a".repeat(9 * 1024 * 1024));
    let (errors, _) = render_err(kustomization(&text), "k");
    let e = one_error(&errors);
    assert!(
        e.to_string().contains("k/r.yaml")
            && e.to_string().contains("over the limit of 8388608 bytes"),
        "{e}"
    );
}

#[test]
fn kustomize_too_many_documents_fail() {
    let (errors, _) = render_err(kustomization(&"---\na: 1\n".repeat(10_001)), "k");
    let e = one_error(&errors);
    assert_eq!(
        e.to_string(),
        "k/r.yaml:20001:1: more than 10000 documents in one file"
    );
}

#[test]
fn a_json6902_patch_copying_a_subtree_into_itself_fails() {
    let ops: String = (0..30)
        .map(|_| "    - op: copy\n      from: /data/x\n      path: /data/x/-\n".to_owned())
        .collect();
    let tree = MemTree::new()
        .file(
            "k/kustomization.yaml",
            &format!(
                "resources: [r.yaml]\npatches:\n- target: {{kind: ConfigMap}}\n  patch: |-\n{ops}"
            ),
        )
        .file(
            "k/r.yaml",
            &format!("{CM}data:\n  x: [{}]\n", ["\"v\""; 100].join(",")),
        );
    let (errors, took) = render_err(tree, "k");
    let e = one_error(&errors);
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(
        e.to_string()
            .contains("field patches: copies more than 100000 nodes (limit max_alias_expansion)"),
        "{e}"
    );
}

#[test]
fn plain_input_at_the_depth_limit_renders_on_a_small_stack() {
    // The document is level 1 and `data` level 2: 98 lists bring `x` to level 100.
    let deep = format!("{}1{}", "[".repeat(98), "]".repeat(98));
    let yaml = format!("{CM}data:\n  x: {deep}\n");
    let json = format!(
        "{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"j\"}},\"data\":{{\"x\":{deep}}}}}"
    );
    let tree = MemTree::new()
        .file("app/a.yaml", &yaml)
        .file("app/b.json", &json)
        .file(
            "k/kustomization.yaml",
            "resources: [r.yaml]\ncommonLabels: {a: b}\n",
        )
        .file("k/r.yaml", &yaml);
    let out = on_small_stack(move || {
        let d = decryption();
        let plain = render_source_with(&tree, "app", &Limits::default(), Some(&d))
            .map(|r| driftless_render::to_yaml(&r.objects));
        let kz = render_source_with(&tree, "k", &Limits::default(), Some(&d))
            .map(|r| driftless_render::to_json(&r.objects));
        (plain, kz)
    });
    out.0.expect("plain manifests at the limit render");
    out.1.expect("a kustomization at the limit renders");
}

#[test]
fn aliases_of_one_long_string_are_capped_by_bytes() {
    // Few nodes, many bytes: a 1 MiB string aliased 100 times would be 100 MiB of copies.
    let mut text = format!("{CM}data:\n  s: &s \"{}\"\n  l: [", "a".repeat(1024 * 1024));
    text.push_str(&["*s"; 100].join(","));
    text.push_str("]\n");
    let limits = Limits {
        max_total_bytes: 32 * 1024 * 1024,
        ..Limits::default()
    };
    let tree = MemTree::new().file("app/a.yaml", &text);
    let e = render_source_with(&tree, "app", &limits, None).expect_err("refused");
    let e = one_error(&e);
    assert!(
        matches!(e.kind, RenderErrorKind::AliasBytes(33_554_432)),
        "{e}"
    );
    assert_eq!((e.origin.line, e.origin.column), (7, 103), "{e}");
}
