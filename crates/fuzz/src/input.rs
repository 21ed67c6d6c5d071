//! Generators of hostile input: structured YAML/JSON/dotenv/kustomization text, and
//! byte-level mutations of seed files from the repository's own test corpora.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use fastrand::Rng;

use crate::MemTree;

/// Scalars that each YAML or JSON reader types differently, or that break naive code.
const SCALARS: &[&str] = &[
    "yes",
    "no",
    "on",
    "off",
    "y",
    "n",
    "true",
    "False",
    "~",
    "null",
    "",
    "0",
    "-0",
    "0x1F",
    "0o17",
    "0b101",
    "0755",
    "08",
    "1_000",
    "1e3",
    "1e400",
    "-1.5e-3",
    ".5",
    ".",
    ".inf",
    "-.Inf",
    ".NaN",
    "9223372036854775808",
    "18446744073709551616",
    "-9223372036854775809",
    "2001-12-14",
    "2001-12-14T21:59:43.10-05:00",
    "1:20",
    "<<",
    "sops",
    "mac",
    "lastmodified",
    "ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]",
    "ENC[",
    "$(V)",
    "$(",
    "é",
    "日本",
    "\u{feff}",
    "\u{85}",
    "\u{2028}",
    "a b",
    "a: b",
    "- a",
    "#c",
    "a #b",
    "'",
    "\"",
    "\\",
    "{",
    "[",
    "&a",
    "*a",
    "!!binary",
    "%",
    "@",
    "`",
    "\t",
    "kind",
    "metadata",
    "name",
    "apiVersion",
    "v1",
    "ConfigMap",
    "List",
    "items",
    "$patch",
    "delete",
    "replace",
];

/// Keys kustomize, render and sops look at.
const KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "namespace",
    "labels",
    "annotations",
    "spec",
    "data",
    "items",
    "sops",
    "mac",
    "lastmodified",
    "age",
    "recipient",
    "enc",
    "containers",
    "image",
    "ports",
    "port",
    "env",
    "value",
    "<<",
    "$patch",
    "a",
    "b",
    "x",
    "sops_mac",
];

pub fn pick<'a>(rng: &mut Rng, xs: &[&'a str]) -> &'a str {
    xs[rng.usize(..xs.len())]
}

/// A scalar as YAML text: plain, quoted, tagged or a block scalar.
pub fn yaml_scalar(rng: &mut Rng) -> String {
    let s = if rng.u8(..4) == 0 {
        random_text(rng, 12)
    } else {
        pick(rng, SCALARS).to_owned()
    };
    match rng.u8(..10) {
        0 => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
        1 => format!("'{}'", s.replace('\'', "''")),
        2 => format!("!!str {s}"),
        3 => format!("!!int {s}"),
        4 => format!("!custom {s}"),
        _ => s,
    }
}

pub fn random_text(rng: &mut Rng, max: usize) -> String {
    let n = rng.usize(..=max);
    (0..n)
        .map(|_| match rng.u8(..8) {
            0 => char::from_u32(rng.u32(0x20..0x3000)).unwrap_or('x'),
            1 => pick(rng, &[":", "#", "-", " ", "'", "\"", "{", "[", "&", "*"])
                .chars()
                .next()
                .unwrap_or('x'),
            _ => rng.alphanumeric(),
        })
        .collect()
}

/// Nodes one generated file may hold: deep trees stay narrow, wide ones shallow.
const NODES: usize = 400;

/// Random YAML for one node at `indent`, at most `depth` levels deep (past the depth
/// limit sometimes, on purpose). Anchors and aliases name `&aN`/`*aN`.
pub fn yaml_node(rng: &mut Rng, out: &mut String, indent: usize, depth: usize) {
    let mut budget = NODES;
    yaml_node_within(rng, out, indent, depth, &mut budget);
}

fn yaml_node_within(
    rng: &mut Rng,
    out: &mut String,
    indent: usize,
    depth: usize,
    budget: &mut usize,
) {
    let pad = " ".repeat(indent);
    *budget = budget.saturating_sub(1);
    if depth == 0 || *budget == 0 || rng.u8(..4) == 0 {
        match rng.u8(..12) {
            0 => out.push_str(&format!("*a{}", rng.u8(..4))),
            1 => out.push_str(&format!("&a{} {}", rng.u8(..4), yaml_scalar(rng))),
            2 => {
                out.push_str("|\n");
                out.push_str(&format!(
                    "{pad}  {}\n{pad}  {}",
                    random_text(rng, 20),
                    random_text(rng, 20)
                ));
            }
            _ => out.push_str(&yaml_scalar(rng)),
        }
        return;
    }
    match rng.u8(..6) {
        // A flow collection, possibly very deep on one line.
        0 => {
            let n = if rng.u8(..8) == 0 {
                rng.usize(90..160)
            } else {
                rng.usize(1..6)
            };
            for _ in 0..n {
                out.push_str(pick(rng, &["[", "{k: ", "[a, "]));
            }
            out.push_str(&yaml_scalar(rng).replace(['\n', ',', ']', '}'], ""));
            for _ in 0..n {
                out.push_str("]}");
            }
        }
        // A block mapping.
        1..=3 => {
            if rng.u8(..6) == 0 {
                out.push_str(&format!("&a{} ", rng.u8(..4)));
            }
            for i in 0..rng.usize(1..5) {
                out.push('\n');
                out.push_str(&pad);
                if rng.u8(..10) == 0 {
                    out.push_str(&format!("<<: *a{}", rng.u8(..4)));
                    continue;
                }
                let key = if i == 0 && rng.bool() {
                    pick(rng, KEYS).to_owned()
                } else {
                    yaml_scalar(rng)
                };
                out.push_str(&key.replace('\n', " "));
                out.push_str(": ");
                yaml_node_within(rng, out, indent + 2, depth - 1, budget);
            }
        }
        // A block sequence, sometimes `- - - …` deep.
        _ => {
            if rng.u8(..8) == 0 {
                out.push('\n');
                out.push_str(&pad);
                for _ in 0..rng.usize(90..160) {
                    out.push_str("- ");
                }
                out.push_str(&yaml_scalar(rng).replace('\n', " "));
                return;
            }
            for _ in 0..rng.usize(1..4) {
                out.push('\n');
                out.push_str(&pad);
                out.push_str("- ");
                yaml_node_within(rng, out, indent + 2, depth - 1, budget);
            }
        }
    }
}

/// A whole YAML file: one or more documents, often shaped like a manifest, sometimes
/// with a top-level `sops` metadata mapping.
pub fn yaml_file(rng: &mut Rng) -> String {
    let mut out = String::new();
    for d in 0..rng.usize(1..4) {
        if d > 0 || rng.u8(..4) == 0 {
            out.push_str("---\n");
        }
        if rng.bool() {
            out.push_str(&format!(
                "apiVersion: v1\nkind: {}\nmetadata:\n  name: {}\n",
                pick(rng, &["ConfigMap", "Secret", "List", "sops", "Deployment"]),
                pick(rng, &["a", "b", "sops", "x"]),
            ));
        }
        let depth = if rng.u8(..10) == 0 { 120 } else { 6 };
        out.push_str(pick(rng, KEYS));
        out.push_str(": ");
        yaml_node(rng, &mut out, 2, depth);
        out.push('\n');
        if rng.u8(..5) == 0 {
            out.push_str("sops:\n  mac: ENC[x]\n  lastmodified: \"2024-01-01T00:00:00Z\"\n  age:\n  - recipient: age1x\n    enc: x\n");
        }
    }
    out
}

/// Random JSON, possibly deep, possibly with a top-level `sops` object.
pub fn json_value(rng: &mut Rng, out: &mut String, depth: usize) {
    let mut budget = NODES;
    json_value_within(rng, out, depth, &mut budget);
}

fn json_value_within(rng: &mut Rng, out: &mut String, depth: usize, budget: &mut usize) {
    *budget = budget.saturating_sub(1);
    if depth == 0 || *budget == 0 || rng.u8(..3) == 0 {
        match rng.u8(..8) {
            0 => out.push_str(&rng.i64(..).to_string()),
            1 => out.push_str(pick(rng, &["1e400", "-0", "0.1", "1E+2", "true", "null"])),
            2 => out.push_str("\"\\ud800\\udc00\\u0041\""),
            _ => out.push_str(&format!("{:?}", pick(rng, SCALARS))),
        }
        return;
    }
    if rng.bool() {
        out.push('[');
        for i in 0..rng.usize(0..4) {
            if i > 0 {
                out.push(',');
            }
            json_value_within(rng, out, depth - 1, budget);
        }
        out.push(']');
    } else {
        out.push('{');
        for i in 0..rng.usize(0..4) {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!("{:?}:", pick(rng, KEYS)));
            json_value_within(rng, out, depth - 1, budget);
        }
        out.push('}');
    }
}

pub fn json_file(rng: &mut Rng) -> String {
    let mut out =
        String::from("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"j\"}");
    if rng.bool() {
        out.push_str(",\"sops\":");
        if rng.u8(..3) == 0 {
            let n = rng.usize(90..5000);
            out.push_str(&"[".repeat(n));
            out.push_str(&"]".repeat(n));
        } else {
            out.push_str("{\"mac\":\"ENC[x]\",\"lastmodified\":\"2024-01-01T00:00:00Z\",\"age\":[{\"recipient\":\"age1x\",\"enc\":\"x\"}]}");
        }
    }
    for _ in 0..rng.usize(0..3) {
        out.push_str(&format!(",{:?}:", pick(rng, KEYS)));
        let depth = if rng.u8(..8) == 0 { 140 } else { 5 };
        json_value(rng, &mut out, depth);
    }
    out.push('}');
    out
}

pub fn dotenv_file(rng: &mut Rng) -> String {
    let mut out = String::new();
    for _ in 0..rng.usize(0..12) {
        match rng.u8(..6) {
            0 => out.push_str(&format!("#{}\n", random_text(rng, 10))),
            1 => out.push_str(&format!(
                "sops_age__list_{}__map_{}={}\n",
                rng.usize(..5),
                pick(rng, &["enc", "recipient"]),
                random_text(rng, 8)
            )),
            2 => out.push_str(&format!(
                "sops_{}={}\n",
                pick(
                    rng,
                    &[
                        "mac",
                        "lastmodified",
                        "version",
                        "unencrypted_regex",
                        "key_groups__list_1__map_age__list_0__map_enc"
                    ]
                ),
                pick(rng, SCALARS)
            )),
            3 => out.push_str(&random_text(rng, 20)),
            _ => out.push_str(&format!(
                "{}={}\n",
                pick(rng, KEYS),
                pick(rng, SCALARS).replace('\n', "\\n")
            )),
        }
    }
    out
}

/// Byte-level damage: flips, insertions of hostile fragments, deletions, duplicated
/// chunks.
pub fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
    for _ in 0..rng.usize(1..6) {
        let len = data.len();
        match rng.u8(..6) {
            0 if len > 0 => {
                let i = rng.usize(..len);
                data[i] = pick(
                    rng,
                    &[
                        " ", ":", "-", "[", "]", "{", "}", "\n", "#", "&", "*", "!", "|", ">", "'",
                        "\"", "%", "@", "`", "\t", "a", "0", "\u{0}",
                    ],
                )
                .as_bytes()[0];
            }
            1 => {
                let i = rng.usize(..=len);
                let frag: String = match rng.u8(..5) {
                    0 => "[".repeat(rng.usize(1..200)),
                    1 => "- ".repeat(rng.usize(1..200)),
                    2 => format!("&a{} ", rng.u8(..3)),
                    3 => format!("*a{} ", rng.u8(..3)),
                    _ => yaml_scalar(rng),
                };
                data.splice(i..i, frag.into_bytes());
            }
            2 if len > 0 => {
                let a = rng.usize(..len);
                let b = (a + rng.usize(..64)).min(len);
                data.drain(a..b);
            }
            3 if len > 0 => {
                let a = rng.usize(..len);
                let b = (a + rng.usize(..256)).min(len);
                let chunk = data[a..b].to_vec();
                let at = rng.usize(..=data.len());
                data.splice(at..at, chunk);
            }
            4 if len > 0 => {
                let i = rng.usize(..len);
                data[i] = rng.u8(..);
            }
            _ => data.extend_from_slice(b"\n"),
        }
    }
}

/// The repository's own test corpora, read once: kustomize's differential cases (each a
/// small tree) and the single files of every `tests/` folder of the parsers.
pub struct Corpus {
    /// Kustomize case trees, by case name.
    pub cases: Vec<MemTree>,
    /// Loose YAML, JSON and dotenv files.
    pub files: Vec<(String, Vec<u8>)>,
}

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read_tree(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            read_tree(root, &p, out);
        } else if let (Ok(rel), Ok(data)) = (p.strip_prefix(root), std::fs::read(&p)) {
            out.insert(rel.to_string_lossy().into_owned(), data);
        }
    }
}

pub fn corpus() -> &'static Corpus {
    static C: OnceLock<Corpus> = OnceLock::new();
    C.get_or_init(|| {
        let cases_dir = crates_dir().join("kustomize/tests/cases");
        let mut cases = Vec::new();
        let mut files = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&cases_dir) {
            let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            dirs.sort();
            for d in dirs {
                let mut map = BTreeMap::new();
                read_tree(&d, &d, &mut map);
                for (p, data) in &map {
                    files.push((p.clone(), data.clone()));
                }
                cases.push(MemTree { files: map });
            }
        }
        let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
        let mut map = BTreeMap::new();
        read_tree(&seeds, &seeds, &mut map);
        files.extend(map);
        assert!(
            cases.len() > 100 && files.len() > 100,
            "the fuzz corpus is missing: crates/kustomize/tests/cases and crates/fuzz/seeds must exist ({} cases, {} files)",
            cases.len(),
            files.len()
        );
        Corpus { cases, files }
    })
}

/// A seed file of the corpus, by extension when one is wanted.
pub fn seed_file(rng: &mut Rng, ext: Option<&str>) -> (String, Vec<u8>) {
    let files = &corpus().files;
    for _ in 0..32 {
        let (p, d) = &files[rng.usize(..files.len())];
        if ext.is_none_or(|e| p.ends_with(e)) {
            return (p.clone(), d.clone());
        }
    }
    files[rng.usize(..files.len())].clone()
}

/// A real `sops`-encrypted seed from `seeds/` (encrypted for the test key).
pub fn sops_seed(rng: &mut Rng) -> Vec<u8> {
    let encrypted: Vec<&(String, Vec<u8>)> = corpus()
        .files
        .iter()
        .filter(|(p, _)| p.starts_with("enc-"))
        .collect();
    assert!(
        !encrypted.is_empty(),
        "crates/fuzz/seeds holds no enc-* file"
    );
    encrypted[rng.usize(..encrypted.len())].1.clone()
}

/// Kustomization fields to splice into a generated or corpus kustomization, hostile ones
/// included (self-copying JSON patches, long paths, deep values).
const KFIELDS: &[&str] = &[
    "namespace: ns1\n",
    "namePrefix: p-\n",
    "commonLabels:\n  a: b\n",
    "commonAnnotations:\n  n: \"1\"\n",
    "images:\n- name: nginx\n  newTag: \"2\"\n",
    "replicas:\n- name: web\n  count: 4\n",
    "configMapGenerator:\n- name: gen\n  literals: [k=v]\n  envs: [e.env]\n",
    "secretGenerator:\n- name: s\n  files: [f.txt]\n  envs: [e.env]\n",
    "patches:\n- target: {kind: \".*\"}\n  patch: |-\n    - op: copy\n      from: /metadata\n      path: /metadata/m\n    - op: copy\n      from: /metadata\n      path: /metadata/m2\n    - op: move\n      from: /metadata/m\n      path: /metadata/m3\n",
    "patches:\n- target: {kind: ConfigMap}\n  patch: |-\n    - op: add\n      path: /data/x\n      value: [[[[[[[[1]]]]]]]]\n",
    "patches:\n- path: p.yaml\n",
    "patchesStrategicMerge:\n- p.yaml\n",
    "patchesJson6902:\n- target: {version: v1, kind: ConfigMap, name: cm}\n  path: j.yaml\n",
    "replacements:\n- source: {kind: ConfigMap, name: cm, fieldPath: data}\n  targets:\n  - select: {kind: ConfigMap}\n    fieldPaths: [data.copy.a.b]\n    options: {create: true}\n",
    "vars:\n- name: V\n  objref: {kind: ConfigMap, name: cm, apiVersion: v1}\n  fieldref: {fieldpath: data}\n",
    "configurations: [conf.yaml]\n",
    "crds: [crd.json]\n",
    "components: [comp]\n",
    "sortOptions: {order: fifo}\n",
    "labels:\n- pairs: {x: y}\n  includeSelectors: true\n  fields:\n  - path: spec/a/b/c\n    create: true\n",
];

/// A kustomization tree: a corpus case with damage, or a generated one with hostile
/// fields, resources, patches and generator inputs.
pub fn kustomization(rng: &mut Rng) -> MemTree {
    let mut tree = if rng.bool() {
        let cases = &corpus().cases;
        cases[rng.usize(..cases.len())].clone()
    } else {
        let mut k = String::from("resources:\n- r.yaml\n");
        for _ in 0..rng.usize(1..6) {
            k.push_str(pick(rng, KFIELDS));
        }
        let cm = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  x: {}\n---\n",
            yaml_scalar(rng)
        );
        MemTree::default()
            .with("kustomization.yaml", k)
            .with("r.yaml", format!("{cm}{}", yaml_file(rng)))
            .with("p.yaml", yaml_file(rng))
            .with("j.yaml", format!("- op: {}\n  path: /data/x\n  from: /data\n  value: {}\n", pick(rng, &["add", "copy", "move", "replace", "remove", "test"]), yaml_scalar(rng)))
            .with("e.env", dotenv_file(rng))
            .with("f.txt", random_text(rng, 40))
            .with("conf.yaml", format!("commonLabels:\n- path: {}\n  create: true\n", vec!["a"; rng.usize(1..150)].join("/")))
            .with("crd.json", json_file(rng))
            .with("comp/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\ncommonLabels:\n  c: d\n")
    };
    // Damage one file, structurally or byte by byte.
    let paths: Vec<String> = tree.files.keys().cloned().collect();
    if !paths.is_empty() && rng.u8(..3) != 0 {
        let p = &paths[rng.usize(..paths.len())];
        if let Some(data) = tree.files.get_mut(p) {
            if rng.bool() {
                mutate(rng, data);
            } else {
                data.extend_from_slice(format!("\n{}: ", pick(rng, KEYS)).as_bytes());
                let mut node = String::new();
                yaml_node(rng, &mut node, 2, 8);
                data.extend_from_slice(node.as_bytes());
                data.push(b'\n');
            }
        }
    }
    tree
}
