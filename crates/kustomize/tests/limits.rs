//! Hostile kustomizations fail with an error naming the file, the place when known, and
//! the limit, fast and on a 2 MiB stack (tokio's blocking threads, where the daemon
//! builds); input at the limits still builds there. Before `Limits` reached kustomize, an
//! alias bomb took gigabytes and deep input overflowed the stack.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use driftless_kustomize::{Limits, build, build_with};
use driftless_model::{EntryKind, Tree, TreeEntry, TreeError};

/// Files by path; directories are implied.
#[derive(Default, Clone)]
struct Mem(BTreeMap<String, Vec<u8>>);

impl Mem {
    fn file(mut self, path: &str, text: &str) -> Self {
        self.0.insert(path.to_owned(), text.as_bytes().to_vec());
        self
    }
    fn is_dir(&self, p: &str) -> bool {
        p.is_empty() || self.0.keys().any(|k| k.starts_with(&format!("{p}/")))
    }
}

impl Tree for Mem {
    fn list(&self, dir: &str) -> Result<Vec<TreeEntry>, TreeError> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut names: Vec<String> = self
            .0
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .map(|r| r.split('/').next().unwrap_or(r).to_owned())
            .collect();
        names.dedup();
        names
            .into_iter()
            .map(|name| {
                let kind = self.kind(&format!("{prefix}{name}"))?.expect("listed");
                Ok(TreeEntry { name, kind })
            })
            .collect()
    }
    fn read(&self, path: &str) -> Result<Vec<u8>, TreeError> {
        self.0
            .get(path)
            .cloned()
            .ok_or_else(|| TreeError::NotFound(path.to_owned()))
    }
    fn kind(&self, path: &str) -> Result<Option<EntryKind>, TreeError> {
        if let Some(d) = self.0.get(path) {
            return Ok(Some(EntryKind::File {
                executable: false,
                size: d.len() as u64,
            }));
        }
        Ok(self.is_dir(path).then_some(EntryKind::Dir))
    }
    fn describe(&self) -> String {
        "memory".into()
    }
}

/// Builds on a 2 MiB stack; returns the error text (or the YAML) and the time taken.
fn run(tree: Mem, limits: Limits) -> (Result<String, String>, Duration) {
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || {
            let start = Instant::now();
            let r = build_with(&tree, "", &limits)
                .map(|b| {
                    let _ = b.objects();
                    b.to_yaml()
                })
                .map_err(|e| e.to_string());
            (r, start.elapsed())
        })
        .expect("spawn")
        .join()
        .expect("no panic")
}

fn fails(tree: Mem) -> String {
    let (r, took) = run(tree, Limits::default());
    assert!(took < Duration::from_secs(5), "took {took:?}");
    r.expect_err("must fail")
}

fn one_resource(name: &str, text: &str) -> Mem {
    Mem::default()
        .file("kustomization.yaml", &format!("resources:\n- {name}\n"))
        .file(name, text)
}

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n";

/// The classic "billion laughs": nine levels of ten aliases each.
fn alias_bomb() -> String {
    let mut text = String::from(CM);
    text.push_str("data:\n  a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    for i in 1..=9 {
        let prev = format!("*a{}", i - 1);
        let refs = [prev.as_str(); 10].join(",");
        text.push_str(&format!("  a{i}: &a{i} [{refs}]\n"));
    }
    text
}

#[test]
fn an_alias_bomb_fails_fast_naming_the_limit() {
    let (r, took) = run(one_resource("bomb.yaml", &alias_bomb()), Limits::default());
    let e = r.expect_err("refused");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(
        e.starts_with("bomb.yaml:") && e.contains("aliases expand to more than 100000 nodes"),
        "{e}"
    );
}

#[test]
fn deep_flow_nesting_fails_with_its_place() {
    let text = format!("{CM}data: {}{}\n", "[".repeat(50_000), "]".repeat(50_000));
    let e = fails(one_resource("deep.yaml", &text));
    assert!(e.starts_with("deep.yaml:5:"), "{e}");
    assert!(e.ends_with("nesting deeper than 100 levels"), "{e}");
}

#[test]
fn deep_block_nesting_in_the_kustomization_itself_fails() {
    let text = format!("resources: []\nx:\n{}a\n", "- ".repeat(20_000));
    let e = fails(Mem::default().file("kustomization.yaml", &text));
    assert_eq!(
        e,
        "kustomization.yaml:3:199: nesting deeper than 100 levels"
    );
}

#[test]
fn a_file_over_the_size_limit_is_refused() {
    let limits = Limits {
        max_file_bytes: 1024,
        ..Limits::default()
    };
    let text = format!("{CM}data:\n  x: \"{}\"\n", "a".repeat(2000));
    let (r, _) = run(one_resource("big.yaml", &text), limits);
    let e = r.expect_err("too large");
    assert_eq!(
        e,
        format!(
            "big.yaml: file is {} bytes, over the limit of 1024 bytes",
            text.len()
        )
    );
}

#[test]
fn bytes_read_in_total_are_capped() {
    let limits = Limits {
        max_total_bytes: 1000,
        ..Limits::default()
    };
    let mut tree = Mem::default().file(
        "kustomization.yaml",
        "resources: [a.yaml, b.yaml, c.yaml]\n",
    );
    for n in ["a", "b", "c"] {
        let text = format!(
            "{}\ndata:\n  x: \"{}\"\n",
            CM.replace("cm", n),
            "a".repeat(300)
        );
        tree = tree.file(&format!("{n}.yaml"), &text);
    }
    let (r, _) = run(tree, limits);
    let e = r.expect_err("over budget");
    assert_eq!(
        e,
        "c.yaml: the build reads more than 1000 bytes in total (limit max_total_bytes)"
    );
}

#[test]
fn too_many_documents_fail() {
    let text = "---\na: 1\n".repeat(10_001);
    let e = fails(one_resource("many.yaml", &text));
    assert_eq!(
        e,
        "many.yaml:20001:1: more than 10000 documents in one file"
    );
}

#[test]
fn too_many_objects_fail() {
    let limits = Limits {
        max_total_objects: 10,
        ..Limits::default()
    };
    let text: String = (0..11)
        .map(|i| format!("{}---\n", CM.replace("cm", &format!("cm{i}"))))
        .collect();
    let (r, _) = run(one_resource("many.yaml", &text), limits);
    assert_eq!(
        r.expect_err("too many"),
        "kustomization.yaml: more than 10 objects in total (limit max_total_objects)"
    );
}

#[test]
fn a_json_patch_copying_a_subtree_into_itself_fails_past_the_budget() {
    // Each `copy` doubles `data.x`: thirty of them would make a billion nodes.
    let mut text = format!("{CM}data:\n  x: [");
    text.push_str(&vec!["\"v\""; 100].join(","));
    text.push_str("]\n");
    let ops: String = (0..30)
        .map(|_| "    - op: copy\n      from: /data/x\n      path: /data/x/-\n".to_owned())
        .collect();
    let tree = Mem::default()
        .file(
            "kustomization.yaml",
            &format!(
                "resources: [cm.yaml]\npatches:\n- target: {{kind: ConfigMap}}\n  patch: |-\n{ops}"
            ),
        )
        .file("cm.yaml", &text);
    let e = fails(tree);
    assert!(
        e.starts_with("kustomization.yaml: field patches: copies more than 100000 nodes"),
        "{e}"
    );
}

#[test]
fn a_json_patch_nesting_past_the_limit_fails_before_it_is_applied() {
    // `data.x` is 60 lists deep; the patch adds another 60 at the bottom of it.
    let path: String = "/0".repeat(57);
    let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
    let tree = Mem::default()
        .file(
            "kustomization.yaml",
            &format!(
                "resources: [cm.yaml]\npatches:\n- target: {{kind: ConfigMap}}\n  patch: |-\n    - op: add\n      path: /data/x{path}/0\n      value: {}\n",
                deep(60)
            ),
        )
        .file("cm.yaml", &format!("{CM}data:\n  x: {}\n", deep(60)));
    let e = fails(tree);
    assert!(e.contains("nesting deeper than 100 levels"), "{e}");
}

#[test]
fn a_long_replacement_path_is_refused() {
    let path = vec!["a"; 100_000].join(".");
    let tree = Mem::default()
        .file(
            "kustomization.yaml",
            &format!(
                "resources: [cm.yaml]\nreplacements:\n- source: {{kind: ConfigMap, name: cm, fieldPath: metadata.name}}\n  targets:\n  - select: {{kind: ConfigMap}}\n    fieldPaths: [{path}]\n    options: {{create: true}}\n"
            ),
        )
        .file("cm.yaml", CM);
    let e = fails(tree);
    assert!(e.contains("nesting deeper than 100 levels"), "{e}");
}

#[test]
fn a_long_field_spec_path_is_refused() {
    let path = vec!["a"; 100_000].join("/");
    let tree = Mem::default()
        .file(
            "kustomization.yaml",
            "resources: [cm.yaml]\nconfigurations: [conf.yaml]\ncommonLabels: {x: z}\n",
        )
        .file(
            "conf.yaml",
            &format!("commonLabels:\n- path: {path}\n  create: true\n"),
        )
        .file("cm.yaml", CM);
    let e = fails(tree);
    assert!(
        e.contains("a field spec path is deeper than 100 levels"),
        "{e}"
    );
}

/// A chain of `levels` kustomizations, each the only resource of the one above; the
/// last holds a ConfigMap at the depth limit with a patch and labels.
fn chain(levels: usize) -> Mem {
    let mut tree = Mem::default();
    let mut dir = String::new();
    for i in 0..levels {
        let k = if dir.is_empty() {
            "kustomization.yaml".to_owned()
        } else {
            format!("{dir}/kustomization.yaml")
        };
        let body = if i + 1 == levels {
            "resources: [cm.yaml]\ncommonLabels: {a: b}\npatches:\n- target: {kind: ConfigMap}\n  patch: |-\n    - op: copy\n      from: /data/x\n      path: /data/y\n"
        } else {
            "resources: [d]\nnamePrefix: p-\n"
        };
        tree = tree.file(&k, body);
        if i + 1 == levels {
            let cm = if dir.is_empty() {
                "cm.yaml".to_owned()
            } else {
                format!("{dir}/cm.yaml")
            };
            tree = tree.file(&cm, &nested_cm(100));
        }
        dir = if dir.is_empty() {
            "d".into()
        } else {
            format!("{dir}/d")
        };
    }
    tree
}

#[test]
fn kustomizations_nest_up_to_a_quarter_of_the_depth_limit() {
    // A nested kustomization costs far more stack than a level of YAML, so they may nest
    // max_depth / 4 deep; at that depth, with a document at the depth limit, the build
    // still fits a 2 MiB stack.
    let (r, _) = run(chain(25), Limits::default());
    let yaml = r.expect("25 nested kustomizations build");
    assert!(yaml.contains("name: p-p-p-"), "{yaml}");
    let e = fails(chain(26));
    assert!(
        e.contains("kustomizations nest deeper than 25 levels"),
        "{e}"
    );
    let e = fails(chain(2_000));
    assert!(
        e.contains("kustomizations nest deeper than 25 levels"),
        "{e}"
    );
}

/// A ConfigMap whose `data.x` nests `levels` lists deep in all (the document is level 1,
/// `data` level 2).
fn nested_cm(levels: usize) -> String {
    let inner = levels - 2;
    format!(
        "{CM}data:\n  x: {}1{}\n",
        "[".repeat(inner),
        "]".repeat(inner)
    )
}

#[test]
fn input_at_the_depth_limit_builds_on_a_small_stack() {
    let tree = Mem::default()
        .file(
            "kustomization.yaml",
            "resources: [cm.yaml]\ncommonLabels: {a: b}\npatches:\n- target: {kind: ConfigMap}\n  patch: |-\n    - op: copy\n      from: /data/x\n      path: /data/y\n",
        )
        .file("cm.yaml", &nested_cm(100));
    let (r, _) = run(tree.clone(), Limits::default());
    let yaml = r.expect("builds at the limit");
    assert!(yaml.contains("a: b"), "{yaml}");
    // One level more is refused.
    let tree = tree.file("cm.yaml", &nested_cm(101));
    let (r, _) = run(tree, Limits::default());
    assert!(
        r.expect_err("too deep")
            .contains("nesting deeper than 100 levels")
    );
}

#[test]
fn the_default_api_keeps_the_default_limits() {
    let e = build(&one_resource("bomb.yaml", &alias_bomb()), "")
        .expect_err("the alias bomb is refused without build_with too");
    assert!(e.to_string().contains("aliases expand"), "{e}");
}

#[test]
fn out_of_range_floats_stay_strings() {
    // Found by the fuzzer: `1e400` parsed to an infinity, whose printing panicked. Go's
    // ParseFloat refuses it, so go-yaml keeps the text; output from kustomize v5.8.2.
    let tree = one_resource(
        "r.yaml",
        &format!("{CM}spec:\n  f: 1e400\n  g: [1e400, -1e400]\n"),
    );
    let (r, _) = run(tree, Limits::default());
    assert_eq!(
        r.expect("builds"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\nspec:\n  f: 1e400\n  g:\n  - 1e400\n  - -1e400\n"
    );
}

#[test]
fn list_items_that_are_not_resources_are_refused() {
    // Found by the fuzzer: a List item that was a list reached the name prefixer, which
    // panicked; every item must be a mapping with kind and metadata.name.
    let tree = Mem::default()
        .file(
            "kustomization.yaml",
            "resources: [l.yaml]\nnamePrefix: p-\n",
        )
        .file(
            "l.yaml",
            "apiVersion: v1\nkind: List\nmetadata:\n  name: l\nitems:\n- - a\n",
        );
    let e = fails(tree);
    assert_eq!(
        e,
        "l.yaml: field resources: document at line 1: items[0] is not a mapping with kind and metadata.name"
    );
}
