//! Native Kustomize: builds a kustomization from a read-only tree in process, with the
//! same output as `kustomize build` (v5.8.2, the version [`KUSTOMIZE_VERSION`] names).
//!
//! Pure: files in, documents out. It must not touch the network or the file system
//! directly; everything is read through [`driftless_model::Tree`]. It must not depend on
//! other driftless crates except driftless-model.
//!
//! # Flow
//! For a kustomization: accumulate `resources` (files, directories with their own
//! kustomization, recursively), read `configurations`/`crds`, run the generators,
//! accumulate `components`, then run the transformers in kustomize's order
//! (patchesStrategicMerge, patches, namespace, prefix, suffix, labels, annotations,
//! patchesJson6902, replicas, images, replacements). At the top level only: hash
//! suffixes for generated ConfigMaps/Secrets, name-reference fixing, vars, legacy sort.
//!
//! # Guarantees
//! Output text follows kustomize's: documents go through JSON and are printed the way
//! go-yaml v2 does (see `yaml.rs`). Files a kustomization reads lie in or below its own
//! directory; directories may be anywhere inside the root; symlinks are followed only
//! while they stay inside the root; cycles are errors.
//!
//! # Caveats
//! Fields this crate does not implement (`helmCharts`; under `generators` and
//! `transformers`, configs other than the builtin ConfigMap/Secret generators and
//! PrefixSuffix, Namespace, Label, Annotations, Patch, PatchJson6902, ImageTag,
//! ReplicaCount and Replacement transformers;
//! `validators`, `openapi`, remote resources, `buildMetadata` origin/transformer
//! annotations, `images[].tagSuffix`, env-file lines read from the environment) fail
//! with [`KustomizeError::Unsupported`] or [`KustomizeError::Invalid`] naming the field;
//! nothing is silently ignored.
//!
//! Fact tables in `src/generated/` come from kustomize's own Go modules; regenerate with
//! `cd crates/kustomize/tools/gen-facts && go run . ../../src/generated`.

mod caps;
mod json6902;
mod replacements;
mod resource;
mod smp;
mod transform;
mod yaml;

/// The annotation marking a resource as input to the build, never part of its output.
const LOCAL_CONFIG: &str = "config.kubernetes.io/local-config";

use std::borrow::Cow;

use caps::Caps;
pub use driftless_model::Limits;
use driftless_model::{EntryKind, Tree, TreeError, join_inside};
use resource::{Gvk, Resource};
use sha2::Digest;
use yaml::Value;

/// The kustomize release whose behaviour this crate reproduces (it shows in the
/// `managedByLabel` build metadata).
pub const KUSTOMIZE_VERSION: &str = "v5.8.2";

/// File names kustomize recognises, in its lookup order.
pub const KUSTOMIZATION_FILES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Why a build failed. Messages name the kustomization file and the field.
#[derive(Debug, thiserror::Error)]
pub enum KustomizeError {
    /// Reading the tree failed.
    #[error("{0}")]
    Tree(#[from] TreeError),
    /// A file is not valid YAML (or holds values JSON cannot carry).
    #[error("{file}:{source}")]
    Yaml {
        file: String,
        #[source]
        source: yaml::YamlError,
    },
    /// A field this implementation does not support.
    #[error("{file}: field {field} is not supported")]
    Unsupported { file: String, field: String },
    /// A field holds something kustomize would reject.
    #[error("{file}: field {field}: {msg}")]
    Invalid {
        file: String,
        field: String,
        msg: String,
    },
    /// A path leaves the repository root.
    #[error("{file}: field {field}: {path:?} is outside the repository root")]
    OutsideRoot {
        file: String,
        field: String,
        path: String,
    },
    /// A kustomization includes itself, directly or through others.
    #[error("{file}: field {field}: cycle detected: {chain}")]
    Cycle {
        file: String,
        field: String,
        chain: String,
    },
    /// No kustomization file in a directory that needs one.
    #[error("{dir}: no kustomization.yaml, kustomization.yml or Kustomization found")]
    NoKustomization { dir: String },
    /// Two resources with the same id.
    #[error("{file}: may not add resource with an already registered id: {id}")]
    Conflict { file: String, id: String },
    /// The build went past one of its [`Limits`] (bytes read, objects, copies, depth).
    #[error("{file}: {msg}")]
    Limit { file: String, msg: String },
}

impl KustomizeError {
    /// The file, line and column the error is at, when a YAML reader knew them; then
    /// [`KustomizeError::reason`] is the message without the place.
    pub fn location(&self) -> Option<(&str, usize, usize)> {
        match self {
            KustomizeError::Yaml { file, source } => {
                let (line, col) = source.place();
                Some((file, line, col))
            }
            _ => None,
        }
    }

    /// The message without the place [`KustomizeError::location`] gives.
    pub fn reason(&self) -> String {
        match self {
            KustomizeError::Yaml { source, .. } => source.reason(),
            other => other.to_string(),
        }
    }
}

/// A generator with `behavior: merge` or `replace` over an existing resource: the new
/// resource takes the old one's place, with the old labels and annotations under its own
/// (its own win), the old name, namespace and name history, and for `merge` also the old
/// `data` and `binaryData` under its own (a Secret's old `stringData` counts as data).
/// Whatever else the old resource had is dropped, as kustomize drops it.
fn merge_generated(old: &mut Resource, mut new: Resource, merge: bool) {
    fn merged(old: Option<&Value>, new: Option<&Value>) -> Vec<(String, Value)> {
        let mut out: Vec<(String, Value)> = Vec::new();
        for (k, v) in [old, new]
            .into_iter()
            .flatten()
            .filter_map(Value::as_map)
            .flatten()
        {
            match out.iter_mut().find(|(ok, _)| ok == k) {
                Some(slot) => slot.1 = v.clone(),
                None => out.push((k.clone(), v.clone())),
            }
        }
        out
    }
    fn put(target: &mut Value, key: &str, m: Vec<(String, Value)>) {
        if m.is_empty() {
            target.remove(key);
        } else {
            target.set(key, Value::Map(m));
        }
    }
    for key in ["labels", "annotations"] {
        let m = merged(
            old.value.path(&["metadata", key]),
            new.value.path(&["metadata", key]),
        );
        put(new.value.entry_map("metadata"), key, m);
    }
    let meta = new.value.entry_map("metadata");
    meta.set("name", Value::Str(old.name().to_owned()));
    if old.namespace().is_empty() {
        meta.remove("namespace");
    } else {
        meta.set("namespace", Value::Str(old.namespace().to_owned()));
    }
    if merge {
        let mut old_data = old.value.get("data").cloned();
        let is_secret = new.value.get("apiVersion").and_then(Value::as_str) == Some("v1")
            && new.value.get("kind").and_then(Value::as_str) == Some("Secret");
        if is_secret && let Some(Value::Map(sd)) = old.value.get("stringData") {
            let mut d = match old_data {
                Some(Value::Map(m)) => m,
                _ => Vec::new(),
            };
            for (k, v) in sd {
                let text = v.scalar_text().unwrap_or_default();
                let enc = Value::Str(generated_base64(text.as_bytes()));
                match d.iter_mut().find(|(dk, _)| dk == k) {
                    Some(slot) => slot.1 = enc,
                    None => d.push((k.clone(), enc)),
                }
            }
            old_data = Some(Value::Map(d));
        }
        let data = merged(old_data.as_ref(), new.value.get("data"));
        put(&mut new.value, "data", data);
        let bin = merged(old.value.get("binaryData"), new.value.get("binaryData"));
        put(&mut new.value, "binaryData", bin);
    }
    // Build state (name history, affixes, origin) stays the old resource's; a hash
    // suffix only if both asked for one (merging into a plain resource never adds one).
    old.value = new.value;
    old.needs_hash = old.needs_hash && new.needs_hash;
    old.record();
}

/// Base64 as kustomize's generators store it: an encoding of 70 characters or more is cut
/// into lines of 70, each ending in a newline (so it is emitted as a `|` block and the
/// name hash covers the newlines); a shorter one stays on one line.
fn generated_base64(bytes: &[u8]) -> String {
    use base64::Engine;
    const LINE: usize = 70;
    let enc = base64::engine::general_purpose::STANDARD.encode(bytes);
    if enc.len() < LINE {
        return enc;
    }
    let mut out = String::with_capacity(enc.len() + enc.len() / LINE + 1);
    // Base64 is ASCII, so every byte offset is a char boundary.
    for chunk in enc.as_bytes().chunks(LINE) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out
}

/// The transformer configuration in force: kustomize's defaults until a kustomization
/// adds `configurations` or `crds`.
type Cfg = Cow<'static, transform::Config>;

/// The result of a build: documents in kustomize's output order.
#[derive(Debug, Clone)]
pub struct Build {
    docs: Vec<Value>,
}

impl Build {
    /// The YAML stream, byte-identical to `kustomize build` stdout.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        for (i, d) in self.docs.iter().enumerate() {
            if i > 0 {
                out.push_str("---\n");
            }
            out.push_str(&yaml::emit_doc(d));
        }
        out
    }
    /// The documents as JSON values.
    pub fn objects(&self) -> Vec<serde_json::Value> {
        self.docs.iter().map(Value::to_json).collect()
    }
}

/// Whether `dir` holds a kustomization file.
pub fn is_kustomization_dir(tree: &dyn Tree, dir: &str) -> Result<bool, KustomizeError> {
    Ok(find_kustomization(tree, dir)?.is_some())
}

/// Builds the kustomization in `dir` within the default [`Limits`]; returns the
/// documents in kustomize's output order.
pub fn build(tree: &dyn Tree, dir: &str) -> Result<Build, KustomizeError> {
    build_with(tree, dir, &Limits::default())
}

/// Builds the kustomization in `dir`; returns the documents in kustomize's output order.
///
/// Every file read (kustomizations, resources, patches, generator sources,
/// configurations) is held to `limits`: file size, bytes read in total, documents per
/// file, nesting depth (checked before anything recurses over it), and copies made by
/// YAML aliases, JSON patches, replacements and vars. The build holds at most
/// [`Limits::max_total_objects`] resources. Past a limit it fails with an error naming
/// the file (with line and column when the YAML reader knows them) and the limit.
pub fn build_with(tree: &dyn Tree, dir: &str, limits: &Limits) -> Result<Build, KustomizeError> {
    let mut b = Builder {
        tree,
        stack: Vec::new(),
        vars: Vec::new(),
        caps: Caps::new(limits),
    };
    let cfg0 = Cow::Borrowed(transform::default_config());
    let (mut res, k, cfg) = b.accumulate_target(dir, false, Vec::new(), cfg0, &Field::top())?;
    // Hash suffixes, then name references, at the top only.
    for r in res.iter_mut() {
        if r.needs_hash {
            let h = hash_resource(&r.value);
            let n = format!("{}-{}", r.name(), h);
            r.set_name(&n);
        }
    }
    transform::fix_name_references(&cfg, &mut res).map_err(|msg| KustomizeError::Invalid {
        file: k.file.clone(),
        field: "resources".into(),
        msg,
    })?;
    resolve_vars(&cfg, &b.vars, &mut res, &b.caps)?;
    // Local-config resources serve as reference sources and var targets only; kustomize
    // drops them last, unless the annotation says "false".
    res.retain(|r| {
        r.value
            .path(&["metadata", "annotations", LOCAL_CONFIG])
            .is_none_or(|v| v.scalar_text().as_deref() == Some("false"))
    });
    // Every transformer kept its output under the depth limit; this is the guarantee the
    // printers and hashes (which recurse) rely on.
    for r in &res {
        if r.value.height() > limits.max_depth {
            return Err(KustomizeError::Limit {
                file: k.file.clone(),
                msg: format!("{} {}: {}", r.gvk().kind, r.name(), b.caps.too_deep()),
            });
        }
    }
    let legacy = match k.value.get("sortOptions") {
        None => true,
        Some(so) => match so.get("order").and_then(Value::as_str) {
            Some("legacy") => true,
            Some("fifo") if so.get("legacySortOptions").is_some() => {
                return Err(KustomizeError::Invalid {
                    file: k.file.clone(),
                    field: "sortOptions.legacySortOptions".into(),
                    msg: "is set but sortOptions.order is \"fifo\", not \"legacy\"".into(),
                });
            }
            Some("fifo") => false,
            _ => {
                return Err(KustomizeError::Invalid {
                    file: k.file.clone(),
                    field: "sortOptions.order".into(),
                    msg: "must be one of [fifo, legacy]".into(),
                });
            }
        },
    };
    if legacy {
        let (first, last) = legacy_orders(&k)?;
        res.sort_by(|a, b| legacy_cmp(a, b, &first, &last));
    }
    Ok(Build {
        docs: res.into_iter().map(|r| r.value).collect(),
    })
}

struct Field {
    file: String,
    name: &'static str,
}

impl Field {
    fn top() -> Field {
        Field {
            file: String::new(),
            name: "",
        }
    }
}

struct Kust {
    file: String,
    dir: String,
    value: Value,
}

impl Kust {
    fn str(&self, k: &str) -> Result<Option<&str>, KustomizeError> {
        match self.value.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s)),
            Some(_) => Err(self.invalid(k, "must be a string")),
        }
    }
    fn list(&self, k: &str) -> Result<Vec<Value>, KustomizeError> {
        match self.value.get(k) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Seq(s)) => Ok(s.clone()),
            Some(_) => Err(self.invalid(k, "must be a list")),
        }
    }
    fn string_map(&self, k: &str) -> Result<Vec<(String, String)>, KustomizeError> {
        match self.value.get(k) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Map(m)) => m
                .iter()
                .map(|(key, v)| match v {
                    Value::Str(s) => Ok((key.clone(), s.clone())),
                    _ => Err(self.invalid(k, &format!("value of {key:?} must be a string"))),
                })
                .collect(),
            Some(_) => Err(self.invalid(k, "must be a map")),
        }
    }
    fn invalid(&self, field: &str, msg: &str) -> KustomizeError {
        KustomizeError::Invalid {
            file: self.file.clone(),
            field: field.into(),
            msg: msg.into(),
        }
    }
}

const SUPPORTED: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "resources",
    "bases",
    "components",
    "namespace",
    "namePrefix",
    "nameSuffix",
    "labels",
    "commonLabels",
    "commonAnnotations",
    "images",
    "replicas",
    "patches",
    "patchesStrategicMerge",
    "patchesJson6902",
    "configMapGenerator",
    "secretGenerator",
    "generatorOptions",
    "sortOptions",
    "replacements",
    "vars",
    "buildMetadata",
    "configurations",
    "crds",
    "generators",
    "transformers",
];

struct Builder<'a> {
    tree: &'a dyn Tree,
    stack: Vec<String>,
    /// `vars` declared anywhere in the build, with the file that declared them.
    vars: Vec<(Value, String)>,
    caps: Caps<'a>,
}

fn find_kustomization(tree: &dyn Tree, dir: &str) -> Result<Option<String>, KustomizeError> {
    let mut found = Vec::new();
    for name in KUSTOMIZATION_FILES {
        let p = if dir.is_empty() {
            name.to_owned()
        } else {
            format!("{dir}/{name}")
        };
        if let Some(k) = tree.kind(&p)?
            && !matches!(k, EntryKind::Dir)
        {
            found.push(p);
        }
    }
    if found.len() > 1 {
        return Err(KustomizeError::Invalid {
            file: found[0].clone(),
            field: "(file)".into(),
            msg: format!("found multiple kustomization files: {}", found.join(", ")),
        });
    }
    Ok(found.pop())
}

impl Builder<'_> {
    /// Resolves a path (following symlinks that stay inside the root) to a file or dir.
    fn resolve(
        &self,
        path: &str,
        f: &Field,
    ) -> Result<(String, Option<EntryKind>), KustomizeError> {
        let mut p = path.to_owned();
        for _ in 0..16 {
            match self.tree.kind(&p)? {
                Some(EntryKind::Symlink { target }) => {
                    let parent = p.rsplit_once('/').map(|x| x.0).unwrap_or("");
                    p = join_inside(parent, &target).map_err(|_| KustomizeError::OutsideRoot {
                        file: f.file.clone(),
                        field: f.name.into(),
                        path: path.into(),
                    })?;
                }
                other => return Ok((p, other)),
            }
        }
        Err(KustomizeError::Invalid {
            file: f.file.clone(),
            field: f.name.into(),
            msg: format!("{path}: too many levels of symbolic links"),
        })
    }

    fn read_text(&self, path: &str, f: &Field) -> Result<(String, Vec<u8>), KustomizeError> {
        let (p, kind) = self.resolve(path, f)?;
        match kind {
            Some(EntryKind::File { size, .. }) => {
                let data = self.read_file(&p, size)?;
                Ok((p, data))
            }
            _ => Err(KustomizeError::Invalid {
                file: f.file.clone(),
                field: f.name.into(),
                msg: format!("{path}: no such file"),
            }),
        }
    }

    /// Reads a file within the size limits: refused by its listed size before it is
    /// read, and by its real size after.
    fn read_file(&self, path: &str, size: u64) -> Result<Vec<u8>, KustomizeError> {
        self.caps.file_size(path, size)?;
        let data = self.tree.read(path)?;
        self.caps.read(path, data.len() as u64)?;
        Ok(data)
    }

    /// Parses a file's YAML documents within the limits, charging its aliases to the
    /// build's copy budget.
    fn parse(&self, text: &str, file: &str) -> Result<Vec<yaml::Doc>, KustomizeError> {
        let mut copied = self.caps.copied();
        let docs = yaml::parse_docs_with(text, self.caps.limits, &mut copied);
        self.caps.set_copied(copied);
        docs.map_err(|source| KustomizeError::Yaml {
            file: file.to_owned(),
            source,
        })
    }

    /// The non-null documents of a patch, configuration or replacements file.
    fn parse_values(&self, text: &str, origin: &str) -> Result<Vec<Value>, KustomizeError> {
        self.parse_values_with(text, origin, yaml::resolve)
    }

    /// The non-null documents of a patch; a repeated key keeps its first value.
    fn parse_patches(&self, text: &str, origin: &str) -> Result<Vec<Value>, KustomizeError> {
        self.parse_values_with(text, origin, yaml::resolve_first)
    }

    fn parse_values_with(
        &self,
        text: &str,
        origin: &str,
        resolve: fn(&yaml::Node) -> Result<Value, yaml::YamlError>,
    ) -> Result<Vec<Value>, KustomizeError> {
        let docs = self.parse(text, origin)?;
        let mut out = Vec::new();
        for d in docs {
            if let Some(n) = d.node {
                let mut v = resolve(&n).map_err(|source| KustomizeError::Yaml {
                    file: origin.to_owned(),
                    source,
                })?;
                stringify_annotations(&mut v, &n);
                if !matches!(v, Value::Null) {
                    out.push(v);
                }
            }
        }
        Ok(out)
    }

    /// Refuses field specs longer than the depth limit: the transformers create fields
    /// along them, recursing once per segment.
    fn check_specs(&self, k: &Kust, field: &str, longest: usize) -> Result<(), KustomizeError> {
        if longest > self.caps.limits.max_depth {
            return Err(KustomizeError::Limit {
                file: k.file.clone(),
                msg: format!(
                    "field {field}: a field spec path is deeper than {} levels",
                    self.caps.limits.max_depth
                ),
            });
        }
        Ok(())
    }

    fn join(&self, k: &Kust, field: &'static str, rel: &str) -> Result<String, KustomizeError> {
        if rel.contains("://") || rel.starts_with("github.com/") || rel.starts_with("git@") {
            return Err(KustomizeError::Unsupported {
                file: k.file.clone(),
                field: format!("{field} (remote {rel:?})"),
            });
        }
        join_inside(&k.dir, rel).map_err(|_| KustomizeError::OutsideRoot {
            file: k.file.clone(),
            field: field.into(),
            path: rel.into(),
        })
    }

    /// A file a kustomization reads must lie in or below the kustomization's directory
    /// (kustomize's default load restriction).
    fn join_file(
        &self,
        k: &Kust,
        field: &'static str,
        rel: &str,
    ) -> Result<String, KustomizeError> {
        let p = self.join(k, field, rel)?;
        let inside = k.dir.is_empty() || p == k.dir || p.starts_with(&format!("{}/", k.dir));
        if !inside {
            return Err(KustomizeError::OutsideRoot {
                file: k.file.clone(),
                field: field.into(),
                path: rel.into(),
            });
        }
        Ok(p)
    }

    fn load_kustomization(&self, dir: &str) -> Result<Kust, KustomizeError> {
        let file =
            find_kustomization(self.tree, dir)?.ok_or_else(|| KustomizeError::NoKustomization {
                dir: if dir.is_empty() {
                    ".".into()
                } else {
                    dir.into()
                },
            })?;
        let size = match self.tree.kind(&file)? {
            Some(EntryKind::File { size, .. }) => size,
            _ => 0,
        };
        let bytes = self.read_file(&file, size)?;
        let text = String::from_utf8_lossy(&bytes);
        let docs = self.parse(&text, &file)?;
        let value = match docs.first().and_then(|d| d.node.as_ref()) {
            Some(n) => yaml::resolve(n).map_err(|source| KustomizeError::Yaml {
                file: file.clone(),
                source,
            })?,
            None => Value::Map(Vec::new()),
        };
        if let Some(yaml::Node::Map(items)) = docs.first().and_then(|d| d.node.as_ref()) {
            for (kn, vn) in items {
                let key = yaml::node_text(kn);
                if let yaml::Node::Scalar {
                    text,
                    plain: true,
                    tag: None,
                    line,
                    col,
                } = vn
                    && ["namespace", "namePrefix", "nameSuffix"].contains(&key.as_str())
                    && yaml::v2_resolves_non_string(text)
                {
                    return Err(KustomizeError::Invalid {
                        file: format!("{file}:{line}:{col}"),
                        field: key.clone(),
                        msg: format!("{text:?} is not a string (quote it)"),
                    });
                }
                if key != "commonLabels" && key != "commonAnnotations" {
                    continue;
                }
                if let yaml::Node::Map(pairs) = vn {
                    for (pk, pv) in pairs {
                        if let yaml::Node::Scalar {
                            text,
                            plain: true,
                            tag: None,
                            line,
                            col,
                        } = pv
                            && yaml::v2_resolves_non_string(text)
                        {
                            return Err(KustomizeError::Invalid {
                                file: format!("{file}:{line}:{col}"),
                                field: format!("{key}.{}", yaml::node_text(pk)),
                                msg: format!("{text:?} is not a string (quote it)"),
                            });
                        }
                    }
                }
            }
        }
        let Value::Map(m) = &value else {
            return Err(KustomizeError::Invalid {
                file,
                field: "(document)".into(),
                msg: "kustomization must be a map".into(),
            });
        };
        for (key, _) in m {
            if !SUPPORTED.contains(&key.as_str()) {
                return Err(KustomizeError::Unsupported {
                    file,
                    field: key.clone(),
                });
            }
        }
        Ok(Kust {
            file,
            dir: dir.to_owned(),
            value,
        })
    }

    /// Loads resource documents from a file.
    fn load_resources(&self, path: &str, f: &Field) -> Result<Vec<Resource>, KustomizeError> {
        let (real, bytes) = self.read_text(path, f)?;
        let text = String::from_utf8_lossy(&bytes);
        let docs = self.parse(&text, &real)?;
        let mut out = Vec::new();
        for d in docs {
            let Some(node) = d.node else { continue };
            let mut v = yaml::resolve_unique(&node).map_err(|source| KustomizeError::Yaml {
                file: real.clone(),
                source,
            })?;
            if matches!(v, Value::Null) {
                continue;
            }
            stringify_annotations(&mut v, &node);
            if v.get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| k.ends_with("List"))
                && v.get("items").is_some()
            {
                if let Some(Value::Seq(items)) = v.get("items") {
                    for (i, it) in items.iter().enumerate() {
                        // Every transformer expects a resource to be a mapping.
                        if !matches!(it, Value::Map(_))
                            || it.get("kind").is_none()
                            || it.path(&["metadata", "name"]).is_none()
                        {
                            return Err(KustomizeError::Invalid {
                                file: real.clone(),
                                field: f.name.into(),
                                msg: format!(
                                    "document at line {}: items[{i}] is not a mapping with kind and metadata.name",
                                    d.line
                                ),
                            });
                        }
                        out.push(Resource::new(it.clone()));
                    }
                }
                continue;
            }
            if v.get("kind").is_none() || v.path(&["metadata", "name"]).is_none() {
                return Err(KustomizeError::Invalid {
                    file: real.clone(),
                    field: f.name.into(),
                    msg: format!(
                        "document at line {} is missing kind or metadata.name",
                        d.line
                    ),
                });
            }
            out.push(Resource::new(v));
        }
        Ok(out)
    }

    fn accumulate_target(
        &mut self,
        dir: &str,
        component: bool,
        mut acc: Vec<Resource>,
        cfg: Cfg,
        from: &Field,
    ) -> Result<(Vec<Resource>, Kust, Cfg), KustomizeError> {
        if let Some(pos) = self.stack.iter().position(|d| d == dir) {
            let mut chain: Vec<String> = self.stack[pos..].to_vec();
            chain.push(dir.to_owned());
            return Err(KustomizeError::Cycle {
                file: from.file.clone(),
                field: from.name.into(),
                chain: chain.join(" -> "),
            });
        }
        // Each nested kustomization is a level of recursion here, with frames far larger
        // than a YAML level's: a quarter of the depth limit keeps a whole build (the
        // documents at the depth limit included) inside a 2 MiB stack.
        let max_nesting = (self.caps.limits.max_depth / 4).max(1);
        if self.stack.len() >= max_nesting {
            return Err(KustomizeError::Limit {
                file: from.file.clone(),
                msg: format!(
                    "field {}: kustomizations nest deeper than {max_nesting} levels",
                    from.name
                ),
            });
        }
        let k = self.load_kustomization(dir)?;
        let kind = k.str("kind")?.unwrap_or("Kustomization");
        match (component, kind) {
            (true, "Component") | (false, "Kustomization") => {}
            (true, other) => {
                return Err(k.invalid("kind", &format!("expected kind Component, got {other}")));
            }
            (false, other) => {
                return Err(k.invalid(
                    "kind",
                    &format!(
                        "expected kind Kustomization, got {other} (components go under components:)"
                    ),
                ));
            }
        }
        // Each kind has exactly one API version; none written means that one.
        let want = if kind == "Component" {
            "kustomize.config.k8s.io/v1alpha1"
        } else {
            "kustomize.config.k8s.io/v1beta1"
        };
        if let Some(have) = k.str("apiVersion")?
            && !have.is_empty()
            && have != want
        {
            return Err(k.invalid("apiVersion", &format!("{have:?}: a {kind} must be {want}")));
        }
        self.stack.push(dir.to_owned());
        let r = self.accumulate_inner(&k, acc.split_off(0), cfg);
        self.stack.pop();
        let (res, cfg) = r?;
        Ok((res, k, cfg))
    }

    fn accumulate_inner(
        &mut self,
        k: &Kust,
        mut acc: Vec<Resource>,
        mut cfg: Cfg,
    ) -> Result<(Vec<Resource>, Cfg), KustomizeError> {
        let mut entries = k.list("resources")?;
        entries.extend(k.list("bases")?);
        let mut ids = Ids::of(&acc);
        for e in entries {
            let Some(rel) = e.as_str() else {
                return Err(k.invalid("resources", "entries must be strings"));
            };
            let path = self.join(k, "resources", rel)?;
            let f = Field {
                file: k.file.clone(),
                name: "resources",
            };
            let (real, kind) = self.resolve(&path, &f)?;
            let new = match kind {
                Some(EntryKind::Dir) => {
                    let sub_cfg = Cow::Borrowed(transform::default_config());
                    let (sub, _, sub_cfg) =
                        self.accumulate_target(&real, false, Vec::new(), sub_cfg, &f)?;
                    if sub_cfg.custom {
                        cfg.to_mut()
                            .merge(&sub_cfg)
                            .map_err(|m| k.invalid("configurations", &m))?;
                    }
                    sub
                }
                Some(EntryKind::File { .. }) => {
                    self.join_file(k, "resources", rel)?;
                    self.load_resources(&real, &f)?
                }
                _ => {
                    return Err(
                        k.invalid("resources", &format!("{rel}: no such file or directory"))
                    );
                }
            };
            for r in new {
                ids.append(&mut acc, r, &k.file, self.caps.limits)?;
            }
        }
        for c in k.list("configurations")? {
            let rel = c
                .as_str()
                .ok_or_else(|| k.invalid("configurations", "entries must be strings"))?;
            let p = self.join_file(k, "configurations", rel)?;
            let f = Field {
                file: k.file.clone(),
                name: "configurations",
            };
            let (real, bytes) = self.read_text(&p, &f)?;
            for d in self.parse_values(&String::from_utf8_lossy(&bytes), &real)? {
                cfg.to_mut()
                    .merge(&transform::Config::from_value(&d))
                    .map_err(|m| k.invalid("configurations", &m))?;
            }
        }
        for c in k.list("crds")? {
            let rel = c
                .as_str()
                .ok_or_else(|| k.invalid("crds", "entries must be strings"))?;
            let p = self.join_file(k, "crds", rel)?;
            let f = Field {
                file: k.file.clone(),
                name: "crds",
            };
            let (real, bytes) = self.read_text(&p, &f)?;
            for d in self.parse_values(&String::from_utf8_lossy(&bytes), &real)? {
                cfg.to_mut()
                    .merge(&transform::config_from_openapi(&d))
                    .map_err(|m| k.invalid("crds", &m))?;
            }
        }
        self.check_specs(k, "configurations", cfg.longest_path())?;
        self.run_generators(k, &mut acc)?;
        if acc.len() > self.caps.limits.max_total_objects {
            return Err(too_many_objects(&k.file, self.caps.limits));
        }
        for e in k.list("components")? {
            let Some(rel) = e.as_str() else {
                return Err(k.invalid("components", "entries must be strings"));
            };
            let path = self.join(k, "components", rel)?;
            let f = Field {
                file: k.file.clone(),
                name: "components",
            };
            let (real, kind) = self.resolve(&path, &f)?;
            if !matches!(kind, Some(EntryKind::Dir)) {
                return Err(k.invalid("components", &format!("{rel}: not a directory")));
            }
            let (out, _, c) = self.accumulate_target(&real, true, acc, cfg, &f)?;
            acc = out;
            cfg = c;
        }
        self.run_transformers(k, &mut acc, &cfg)?;
        for m in k.list("buildMetadata")? {
            match m.as_str() {
                Some("managedByLabel") => {
                    let pair = [(
                        "app.kubernetes.io/managed-by".to_owned(),
                        format!("kustomize-{KUSTOMIZE_VERSION}"),
                    )];
                    let spec = [transform::FieldSpec {
                        group: String::new(),
                        version: String::new(),
                        kind: String::new(),
                        path: vec!["metadata".into(), "labels".into()],
                        create: true,
                    }];
                    for r in acc.iter_mut() {
                        transform::add_map_pairs(r, &spec, &pair);
                    }
                }
                Some(other @ ("originAnnotations" | "transformerAnnotations")) => {
                    return Err(KustomizeError::Unsupported {
                        file: k.file.clone(),
                        field: format!("buildMetadata.{other}"),
                    });
                }
                _ => return Err(k.invalid("buildMetadata", "unknown build metadata option")),
            }
        }
        for v in k.list("vars")? {
            let name = v.get("name").and_then(Value::as_str).unwrap_or("");
            if self
                .vars
                .iter()
                .any(|(o, _)| o.get("name").and_then(Value::as_str) == Some(name))
            {
                return Err(k.invalid("vars", &format!("var {name:?} already encountered")));
            }
            self.vars.push((v, k.file.clone()));
        }
        Ok((acc, cfg))
    }

    fn run_generators(&mut self, k: &Kust, acc: &mut Vec<Resource>) -> Result<(), KustomizeError> {
        let global = k.value.get("generatorOptions").cloned();
        for (field, kind) in [
            ("configMapGenerator", "ConfigMap"),
            ("secretGenerator", "Secret"),
        ] {
            for g in k.list(field)? {
                let r = self.generate(k, field, kind, &g, global.as_ref())?;
                absorb_generated(k, field, acc, r, &g)?;
            }
        }
        // Builtin generator configs under `generators:` run after the fields above;
        // kustomization-wide generatorOptions do not reach them.
        for c in self.plugin_configs(k, "generators")? {
            let kind = c.get("kind").and_then(Value::as_str).unwrap_or("");
            let out_kind = match kind {
                "ConfigMapGenerator" => "ConfigMap",
                "SecretGenerator" => "Secret",
                other => {
                    return Err(KustomizeError::Unsupported {
                        file: k.file.clone(),
                        field: format!("generators (kind {other:?})"),
                    });
                }
            };
            let mut g = Value::Map(Vec::new());
            for (key, v) in c.as_map().into_iter().flatten() {
                if !matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    g.set(key, v.clone());
                }
            }
            for key in ["name", "namespace"] {
                if let Some(v) = c.path(&["metadata", key]) {
                    g.set(key, v.clone());
                }
            }
            let r = self.generate(k, "generators", out_kind, &g, None)?;
            absorb_generated(k, "generators", acc, r, &g)?;
        }
        Ok(())
    }

    fn generate(
        &self,
        k: &Kust,
        field: &'static str,
        kind: &str,
        g: &Value,
        global: Option<&Value>,
    ) -> Result<Resource, KustomizeError> {
        let name = g
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| k.invalid(field, "generator needs a name"))?;
        let mut data: Vec<(String, String)> = Vec::new();
        let mut binary: Vec<(String, Vec<u8>)> = Vec::new();
        let f = Field {
            file: k.file.clone(),
            name: field,
        };
        for src in g
            .get("envs")
            .and_then(Value::as_seq)
            .into_iter()
            .flatten()
            .chain(g.get("env"))
        {
            let Some(rel) = src.as_str() else { continue };
            let p = self.join_file(k, field, rel)?;
            let (_, bytes) = self.read_text(&p, &f)?;
            let text = String::from_utf8_lossy(&bytes);
            for (ln, line) in text.lines().enumerate() {
                let line = line.trim_start_matches('\u{feff}');
                let t = line.trim();
                if t.is_empty() || t.starts_with('#') {
                    continue;
                }
                match line.split_once('=') {
                    Some((key, val)) => {
                        push_kv(&mut data, key.trim_start().to_owned(), val.to_owned())
                    }
                    None => {
                        return Err(k.invalid(
                            field,
                            &format!("{rel}:{}: line without '=' (values from the environment are not supported)", ln + 1),
                        ));
                    }
                }
            }
        }
        for lit in g
            .get("literals")
            .and_then(Value::as_seq)
            .into_iter()
            .flatten()
        {
            let s = lit.scalar_text().unwrap_or_default();
            let Some((key, val)) = s.split_once('=') else {
                return Err(k.invalid(field, &format!("literal {s:?} is not key=value")));
            };
            let val = strip_quotes(val);
            push_kv(&mut data, key.to_owned(), val.to_owned());
        }
        for fe in g.get("files").and_then(Value::as_seq).into_iter().flatten() {
            let s = fe.scalar_text().unwrap_or_default();
            let (key, rel) = match s.split_once('=') {
                Some((a, b)) => (a.to_owned(), b.to_owned()),
                None => (s.rsplit('/').next().unwrap_or(&s).to_owned(), s.clone()),
            };
            let p = self.join_file(k, field, &rel)?;
            let (_, bytes) = self.read_text(&p, &f)?;
            match String::from_utf8(bytes) {
                Ok(text) if kind == "Secret" || !text.contains('\u{0}') => {
                    push_kv(&mut data, key, text)
                }
                Ok(text) => binary.push((key, text.into_bytes())),
                Err(e) => {
                    if kind == "Secret" {
                        // Secrets carry bytes base64-encoded anyway.
                        binary.push((key, e.into_bytes()));
                    } else {
                        binary.push((key, e.into_bytes()));
                    }
                }
            }
        }
        let mut obj: Value = Value::Map(Vec::new());
        obj.set("apiVersion", Value::Str("v1".into()));
        obj.set("kind", Value::Str(kind.into()));
        let mut meta = Value::Map(vec![("name".into(), Value::Str(name.into()))]);
        if let Some(ns) = g.get("namespace").and_then(Value::as_str) {
            meta.set("namespace", Value::Str(ns.into()));
        }
        // Options: generatorOptions, then the generator's own options.
        let mut labels: Vec<(String, String)> = Vec::new();
        let mut annotations: Vec<(String, String)> = Vec::new();
        let mut disable_hash = false;
        let mut immutable = false;
        for o in [global, g.get("options")].into_iter().flatten() {
            for (key, dst) in [("labels", &mut labels), ("annotations", &mut annotations)] {
                if let Some(Value::Map(m)) = o.get(key) {
                    for (kk, vv) in m {
                        push_kv(dst, kk.clone(), vv.scalar_text().unwrap_or_default());
                    }
                }
            }
            if let Some(Value::Bool(b)) = o.get("disableNameSuffixHash") {
                disable_hash = *b;
            }
            if let Some(Value::Bool(b)) = o.get("immutable") {
                immutable = *b;
            }
        }
        if !labels.is_empty() {
            meta.set(
                "labels",
                Value::Map(
                    labels
                        .into_iter()
                        .map(|(a, b)| (a, Value::Str(b)))
                        .collect(),
                ),
            );
        }
        if !annotations.is_empty() {
            meta.set(
                "annotations",
                Value::Map(
                    annotations
                        .into_iter()
                        .map(|(a, b)| (a, Value::Str(b)))
                        .collect(),
                ),
            );
        }
        obj.set("metadata", meta);
        if kind == "Secret" {
            let ty = g.get("type").and_then(Value::as_str).unwrap_or("Opaque");
            obj.set("type", Value::Str(ty.into()));
            let mut all: Vec<(String, Value)> = data
                .into_iter()
                .map(|(a, b)| (a, Value::Str(generated_base64(b.as_bytes()))))
                .collect();
            all.extend(
                binary
                    .into_iter()
                    .map(|(a, b)| (a, Value::Str(generated_base64(&b)))),
            );
            if !all.is_empty() {
                obj.set("data", Value::Map(all));
            }
        } else {
            if !data.is_empty() {
                obj.set(
                    "data",
                    Value::Map(data.into_iter().map(|(a, b)| (a, Value::Str(b))).collect()),
                );
            }
            if !binary.is_empty() {
                obj.set(
                    "binaryData",
                    Value::Map(
                        binary
                            .into_iter()
                            .map(|(a, b)| (a, Value::Str(generated_base64(&b))))
                            .collect(),
                    ),
                );
            }
        }
        if immutable {
            obj.set("immutable", Value::Bool(true));
        }
        let mut r = Resource::new(obj);
        r.generated = true;
        r.needs_hash = !disable_hash;
        Ok(r)
    }

    fn patch_docs(
        &self,
        k: &Kust,
        field: &'static str,
        p: &Value,
    ) -> Result<(String, Vec<Value>), KustomizeError> {
        // Returns (raw text, parsed documents) of an inline or file patch.
        let (text, origin) = match (p.get("patch"), p.get("path")) {
            (Some(Value::Str(s)), None) => (s.clone(), k.file.clone()),
            (None, Some(Value::Str(rel))) => {
                let path = self.join_file(k, field, rel)?;
                let f = Field {
                    file: k.file.clone(),
                    name: field,
                };
                let (real, bytes) = self.read_text(&path, &f)?;
                (String::from_utf8_lossy(&bytes).into_owned(), real)
            }
            (Some(_), Some(_)) => return Err(k.invalid(field, "patch and path cannot both be set")),
            _ => return Err(k.invalid(field, "a patch needs patch or path")),
        };
        let docs = self.parse_patches(&text, &origin)?;
        Ok((text, docs))
    }

    /// One `patches` entry (or a PatchTransformer's config): a strategic merge patch by
    /// id or target, or a JSON 6902 patch on a target.
    fn apply_patch(
        &self,
        k: &Kust,
        field: &'static str,
        acc: &mut Vec<Resource>,
        p: &Value,
    ) -> Result<(), KustomizeError> {
        let (_, docs) = self.patch_docs(k, field, p)?;
        let target = p.get("target");
        let is_json = docs.len() == 1 && matches!(docs[0], Value::Seq(_));
        let mut allow = (false, false);
        if let Some(opts) = p.get("options").and_then(Value::as_map) {
            for (o, v) in opts {
                let on = matches!(v, Value::Bool(true));
                match o.as_str() {
                    "allowNameChange" => allow.0 = on,
                    "allowKindChange" => allow.1 = on,
                    _ => return Err(k.invalid(field, &format!("unknown option {o}"))),
                }
            }
        }
        if is_json {
            let Some(t) = target else {
                return Err(k.invalid(field, "a JSON 6902 patch needs a target"));
            };
            apply_json_targets(k, field, acc, t, &docs[0], &self.caps)?;
        } else if let Some(t) = target {
            for d in &docs {
                let idx = select(k, field, acc, t)?;
                apply_smp_to(acc, &idx, d, allow)?;
            }
        } else {
            for d in &docs {
                apply_smp_by_id(k, field, acc, d)?;
            }
        }
        Ok(())
    }

    /// The builtin plugin configs a `generators` or `transformers` field lists: inline
    /// YAML (an entry holding a newline) or files of them.
    fn plugin_configs(
        &mut self,
        k: &Kust,
        field: &'static str,
    ) -> Result<Vec<Value>, KustomizeError> {
        let mut out = Vec::new();
        for e in k.list(field)? {
            let Some(entry) = e.as_str() else {
                return Err(k.invalid(field, "entries must be strings"));
            };
            if entry.contains('\n') {
                out.extend(self.parse_values(entry, &k.file)?);
                continue;
            }
            let path = self.join(k, field, entry)?;
            let f = Field {
                file: k.file.clone(),
                name: field,
            };
            let (real, kind) = self.resolve(&path, &f)?;
            if matches!(kind, Some(EntryKind::Dir)) {
                // A kustomization whose output is the configs, built like any other
                // (within the same nesting and object limits).
                let sub_cfg = Cow::Borrowed(transform::default_config());
                let (sub, _, _) = self.accumulate_target(&real, false, Vec::new(), sub_cfg, &f)?;
                out.extend(sub.into_iter().map(|r| r.value));
                continue;
            }
            if !matches!(kind, Some(EntryKind::File { .. })) {
                return Err(k.invalid(field, &format!("{entry}: no such file or directory")));
            }
            self.join_file(k, field, entry)?;
            let (real, bytes) = self.read_text(&real, &f)?;
            out.extend(self.parse_values(&String::from_utf8_lossy(&bytes), &real)?);
        }
        if out.len() > self.caps.limits.max_total_objects {
            return Err(too_many_objects(&k.file, self.caps.limits));
        }
        Ok(out)
    }

    /// Builtin transformer configs under `transformers:`, in their order, after the
    /// kustomization's own transformer fields. Each maps onto the transform its field
    /// would use, over the config's own field specs.
    fn run_plugin_transformers(
        &mut self,
        k: &Kust,
        acc: &mut Vec<Resource>,
        cfg: &transform::Config,
    ) -> Result<(), KustomizeError> {
        const FIELD: &str = "transformers";
        for c in self.plugin_configs(k, FIELD)? {
            let kind = c
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let specs: Vec<transform::FieldSpec> = c
                .get("fieldSpecs")
                .and_then(Value::as_seq)
                .map(|s| s.iter().map(transform::FieldSpec::from_value).collect())
                .unwrap_or_default();
            let longest = specs.iter().map(|f| f.path.len()).max().unwrap_or(0);
            self.check_specs(k, FIELD, longest)?;
            let pairs = |key: &str| -> Vec<(String, String)> {
                c.get(key)
                    .and_then(Value::as_map)
                    .map(|m| {
                        m.iter()
                            .map(|(a, b)| (a.clone(), b.scalar_text().unwrap_or_default()))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            match kind.as_str() {
                "PrefixSuffixTransformer" => {
                    let mut own = cfg.clone();
                    own.name_prefix = specs.clone();
                    own.name_suffix = specs;
                    let s = |f: &str| c.get(f).and_then(Value::as_str).unwrap_or("").to_owned();
                    let (prefix, suffix) = (s("prefix"), s("suffix"));
                    if !prefix.is_empty() || !suffix.is_empty() {
                        for r in acc.iter_mut() {
                            transform::add_prefix_suffix(&own, r, &prefix, &suffix);
                        }
                    }
                }
                "NamespaceTransformer" => {
                    if c.get("unsetOnly").is_some() || c.get("setRoleBindingSubjects").is_some() {
                        return Err(KustomizeError::Unsupported {
                            file: k.file.clone(),
                            field: format!("{FIELD} ({kind} unsetOnly/setRoleBindingSubjects)"),
                        });
                    }
                    let ns = c
                        .path(&["metadata", "namespace"])
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned();
                    if !ns.is_empty() {
                        let mut own = cfg.clone();
                        own.namespace = specs;
                        for r in acc.iter_mut() {
                            transform::set_namespace(&own, r, &ns);
                        }
                    }
                }
                "LabelTransformer" | "AnnotationsTransformer" => {
                    let key = if kind == "LabelTransformer" {
                        "labels"
                    } else {
                        "annotations"
                    };
                    let pairs = pairs(key);
                    for r in acc.iter_mut() {
                        transform::add_map_pairs(r, &specs, &pairs);
                    }
                }
                "PatchTransformer" => self.apply_patch(k, FIELD, acc, &c)?,
                "PatchJson6902Transformer" => {
                    // Its inline patch is `jsonOp`; a file is `path`, as in patches.
                    let mut entry = c.clone();
                    if let Some(op) = c.get("jsonOp") {
                        entry.set("patch", op.clone());
                    }
                    let (_, docs) = self.patch_docs(k, FIELD, &entry)?;
                    let Some(t) = c.get("target") else {
                        return Err(k.invalid(FIELD, "a PatchJson6902Transformer needs a target"));
                    };
                    let ops = match docs.into_iter().next() {
                        Some(v @ Value::Seq(_)) => v,
                        _ => {
                            return Err(k.invalid(FIELD, "patch must be a list of operations"));
                        }
                    };
                    apply_json_targets(k, FIELD, acc, t, &ops, &self.caps)?;
                }
                "ImageTagTransformer" => {
                    let img = c.get("imageTag").cloned().unwrap_or(Value::Null);
                    let s = |f: &str| img.get(f).and_then(|v| v.scalar_text()).unwrap_or_default();
                    if img.get("tagSuffix").is_some() {
                        return Err(KustomizeError::Unsupported {
                            file: k.file.clone(),
                            field: format!("{FIELD} ({kind} imageTag.tagSuffix)"),
                        });
                    }
                    let rule = transform::ImageRule {
                        name: s("name"),
                        new_name: s("newName"),
                        new_tag: s("newTag"),
                        digest: s("digest"),
                    };
                    let mut own = cfg.clone();
                    own.images = specs;
                    transform::apply_image(&own, acc, &rule);
                }
                "ReplicaCountTransformer" => {
                    let rep = c.get("replica").cloned().unwrap_or(Value::Null);
                    let name = rep.get("name").and_then(Value::as_str).unwrap_or("");
                    let Some(count) = rep.get("count") else {
                        return Err(
                            k.invalid(FIELD, "a ReplicaCountTransformer needs replica.count")
                        );
                    };
                    let mut own = cfg.clone();
                    own.replicas = specs;
                    // The same plugin as the `replicas` field: a miss is an error.
                    let mut hit = false;
                    for r in acc.iter_mut() {
                        if r.names.iter().any(|n| n == name) {
                            hit |= transform::apply_replicas(&own, r, count);
                        }
                    }
                    if !hit {
                        return Err(k.invalid(
                            FIELD,
                            &format!("resource with name {name} does not match a config"),
                        ));
                    }
                }
                "ReplacementTransformer" => {
                    for r in c
                        .get("replacements")
                        .and_then(Value::as_seq)
                        .into_iter()
                        .flatten()
                    {
                        if r.get("path").is_some() {
                            return Err(KustomizeError::Unsupported {
                                file: k.file.clone(),
                                field: format!("{FIELD} ({kind} replacements[].path)"),
                            });
                        }
                        replacements::apply(r, acc, &self.caps)
                            .map_err(|msg| k.invalid(FIELD, &msg))?;
                    }
                }
                other => {
                    return Err(KustomizeError::Unsupported {
                        file: k.file.clone(),
                        field: format!("{FIELD} (kind {other:?})"),
                    });
                }
            }
        }
        Ok(())
    }

    fn run_transformers(
        &mut self,
        k: &Kust,
        acc: &mut Vec<Resource>,
        cfg: &transform::Config,
    ) -> Result<(), KustomizeError> {
        // patchesStrategicMerge
        let smp_entries = k.list("patchesStrategicMerge")?;
        let mut smp_docs = 0usize;
        for p in &smp_entries {
            let docs = match p {
                Value::Str(s) if !s.contains('\n') && !s.trim_start().starts_with('{') => {
                    let path = self.join_file(k, "patchesStrategicMerge", s)?;
                    let f = Field {
                        file: k.file.clone(),
                        name: "patchesStrategicMerge",
                    };
                    let (real, bytes) = self.read_text(&path, &f)?;
                    self.parse_patches(&String::from_utf8_lossy(&bytes), &real)?
                }
                Value::Str(s) => self.parse_patches(s, &k.file)?,
                _ => return Err(k.invalid("patchesStrategicMerge", "entries must be strings")),
            };
            smp_docs += docs.len();
            for d in docs {
                apply_smp_by_id(k, "patchesStrategicMerge", acc, &d)?;
            }
        }
        // kustomize refuses a list whose files hold no patch at all (empty or only
        // comments): a typo'd or truncated patch file must not pass silently.
        if !smp_entries.is_empty() && smp_docs == 0 {
            return Err(k.invalid(
                "patchesStrategicMerge",
                &format!(
                    "the patches appear to be empty: {}",
                    smp_entries
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        for p in k.list("patches")? {
            self.apply_patch(k, "patches", acc, &p)?;
        }
        if let Some(ns) = k.str("namespace")? {
            for r in acc.iter_mut() {
                transform::set_namespace(cfg, r, ns);
            }
        }
        let prefix = k.str("namePrefix")?.unwrap_or("");
        let suffix = k.str("nameSuffix")?.unwrap_or("");
        if !prefix.is_empty() || !suffix.is_empty() {
            for r in acc.iter_mut() {
                transform::add_prefix_suffix(cfg, r, prefix, suffix);
            }
        }
        for l in k.list("labels")? {
            let pairs: Vec<(String, String)> = match l.get("pairs") {
                Some(Value::Map(m)) => m
                    .iter()
                    .map(|(a, b)| (a.clone(), b.scalar_text().unwrap_or_default()))
                    .collect(),
                _ => Vec::new(),
            };
            let mut specs: Vec<transform::FieldSpec> = l
                .get("fields")
                .and_then(Value::as_seq)
                .map(|s| s.iter().map(transform::FieldSpec::from_value).collect())
                .unwrap_or_default();
            let longest = specs.iter().map(|f| f.path.len()).max().unwrap_or(0);
            self.check_specs(k, "labels", longest)?;
            // A configuration's `labels` field specs apply to every entry, whatever it
            // includes.
            specs.extend(cfg.labels.iter().cloned());
            let on = |key: &str| matches!(l.get(key), Some(Value::Bool(true)));
            if on("includeSelectors") {
                specs.extend(cfg.common_labels.iter().cloned());
            } else {
                if on("includeTemplates") {
                    specs.extend(cfg.template_labels.iter().cloned());
                }
                if on("includeVolumeClaimTemplates") {
                    specs.extend(cfg.volume_claim_template_labels.iter().cloned());
                }
                specs.push(transform::FieldSpec {
                    group: String::new(),
                    version: String::new(),
                    kind: String::new(),
                    path: vec!["metadata".into(), "labels".into()],
                    create: true,
                });
            }
            for r in acc.iter_mut() {
                transform::add_map_pairs(r, &specs, &pairs);
            }
        }
        let common = k.string_map("commonLabels")?;
        for r in acc.iter_mut() {
            transform::add_map_pairs(r, &cfg.common_labels, &common);
        }
        let ann = k.string_map("commonAnnotations")?;
        for r in acc.iter_mut() {
            transform::add_map_pairs(r, &cfg.common_annotations, &ann);
        }
        for p in k.list("patchesJson6902")? {
            let (_, docs) = self.patch_docs(k, "patchesJson6902", &p)?;
            let Some(t) = p.get("target") else {
                return Err(k.invalid("patchesJson6902", "a patch needs a target"));
            };
            let ops = match docs.into_iter().next() {
                Some(v @ Value::Seq(_)) => v,
                _ => return Err(k.invalid("patchesJson6902", "patch must be a list of operations")),
            };
            apply_json_targets(k, "patchesJson6902", acc, t, &ops, &self.caps)?;
        }
        for rep in k.list("replicas")? {
            let name = rep.get("name").and_then(Value::as_str).unwrap_or("");
            let Some(count) = rep.get("count") else {
                return Err(k.invalid("replicas", "entry needs count"));
            };
            let mut hit = false;
            for r in acc.iter_mut() {
                if r.names.iter().any(|n| n == name) {
                    hit |= transform::apply_replicas(cfg, r, count);
                }
            }
            if !hit {
                return Err(k.invalid(
                    "replicas",
                    &format!("resource with name {name} does not match a config"),
                ));
            }
        }
        for img in k.list("images")? {
            let s = |f: &str| img.get(f).and_then(|v| v.scalar_text()).unwrap_or_default();
            if img.get("tagSuffix").is_some() {
                return Err(KustomizeError::Unsupported {
                    file: k.file.clone(),
                    field: "images.tagSuffix".into(),
                });
            }
            let rule = transform::ImageRule {
                name: s("name"),
                new_name: s("newName"),
                new_tag: s("newTag"),
                digest: s("digest"),
            };
            transform::apply_image(cfg, acc, &rule);
        }
        for rep in k.list("replacements")? {
            let reps = match rep.get("path").and_then(Value::as_str) {
                Some(rel) => {
                    let p = self.join_file(k, "replacements", rel)?;
                    let f = Field {
                        file: k.file.clone(),
                        name: "replacements",
                    };
                    let (real, bytes) = self.read_text(&p, &f)?;
                    let mut out = Vec::new();
                    for d in self.parse_values(&String::from_utf8_lossy(&bytes), &real)? {
                        match d {
                            Value::Seq(items) => out.extend(items),
                            other => out.push(other),
                        }
                    }
                    out
                }
                None => vec![rep.clone()],
            };
            for r in reps {
                replacements::apply(&r, acc, &self.caps)
                    .map_err(|msg| k.invalid("replacements", &msg))?;
            }
        }
        self.run_plugin_transformers(k, acc, cfg)?;
        Ok(())
    }
}

/// Adds a generated resource, or merges it into / replaces the one it names, as the
/// generator's `behavior` says.
fn absorb_generated(
    k: &Kust,
    field: &str,
    acc: &mut Vec<Resource>,
    r: Resource,
    g: &Value,
) -> Result<(), KustomizeError> {
    let behavior = g
        .get("behavior")
        .and_then(Value::as_str)
        .unwrap_or("create");
    let kind = r.gvk().kind;
    let ns = r.namespace().to_owned();
    let name = r.name().to_owned();
    let gvk = r.gvk();
    let existing = acc.iter().position(|e| e.had_id(&gvk, &name, &ns));
    match (behavior, existing) {
        ("create", None) => acc.push(r),
        ("create", Some(_)) => {
            return Err(KustomizeError::Conflict {
                file: k.file.clone(),
                id: format!("{kind} {name}"),
            });
        }
        ("merge", Some(i)) | ("replace", Some(i)) => {
            merge_generated(&mut acc[i], r, behavior == "merge");
        }
        (b @ ("merge" | "replace"), None) => {
            return Err(k.invalid(
                field,
                &format!("behavior {b} for {kind} {name}: no existing resource to {b}"),
            ));
        }
        (other, _) => {
            return Err(k.invalid(field, &format!("unknown behavior {other:?}")));
        }
    }
    Ok(())
}

/// Resolves `vars` against the final resources and substitutes `$(NAME)` references.
fn resolve_vars(
    cfg: &transform::Config,
    vars: &[(Value, String)],
    res: &mut [Resource],
    caps: &Caps<'_>,
) -> Result<(), KustomizeError> {
    if vars.is_empty() {
        return Ok(());
    }
    let mut values: Vec<(String, Value)> = Vec::new();
    for (v, file) in vars {
        let bad = |msg: String| KustomizeError::Invalid {
            file: file.clone(),
            field: "vars".into(),
            msg,
        };
        let name = v
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let objref = v
            .get("objref")
            .ok_or_else(|| bad(format!("var {name:?} needs objref")))?;
        let api = objref
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let (g, ver) = match api.rsplit_once('/') {
            Some((g, ver)) => (g, ver),
            None => ("", api),
        };
        let gvk = Gvk {
            group: objref
                .get("group")
                .and_then(Value::as_str)
                .unwrap_or(g)
                .to_owned(),
            version: objref
                .get("version")
                .and_then(Value::as_str)
                .unwrap_or(ver)
                .to_owned(),
            kind: objref
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        };
        let oname = objref.get("name").and_then(Value::as_str).unwrap_or("");
        let ons = objref.get("namespace").and_then(Value::as_str);
        let hits: Vec<&Resource> = res
            .iter()
            .filter(|r| {
                r.gvk().selected_by(&gvk.group, &gvk.version, &gvk.kind)
                    && r.names.iter().any(|n| n == oname)
                    && ons.is_none_or(|ns| r.namespaces.iter().any(|x| x == ns))
            })
            .collect();
        let target = match hits.as_slice() {
            [r] => *r,
            [] => {
                return Err(bad(format!(
                    "var {name:?} cannot be mapped to a field in the set of known resources"
                )));
            }
            _ => return Err(bad(format!("var {name:?} matches more than one resource"))),
        };
        let fp = v
            .path(&["fieldref", "fieldpath"])
            .and_then(Value::as_str)
            .unwrap_or("metadata.name");
        // kustomize's var field paths use a.b[0].c for list indexes.
        let mut segs = Vec::new();
        for part in fp.split('.') {
            match part.split_once('[') {
                Some((key, idx)) => {
                    segs.push(key.to_owned());
                    segs.push(idx.trim_end_matches(']').to_owned());
                }
                None => segs.push(part.to_owned()),
            }
        }
        let found = replacements::lookup(&target.value, &segs);
        let value = match found.as_slice() {
            [v] => (*v).clone(),
            _ => return Err(bad(format!("var {name:?}: field path {fp:?} not found"))),
        };
        values.push((name, value));
    }
    let mut used = Vec::new();
    for r in res.iter_mut() {
        transform::substitute_vars(cfg, r, &values, &mut used, caps).map_err(|msg| {
            KustomizeError::Invalid {
                file: vars[0].1.clone(),
                field: "vars".into(),
                msg,
            }
        })?;
    }
    Ok(())
}

fn push_kv(v: &mut Vec<(String, String)>, k: String, val: String) {
    if let Some(slot) = v.iter_mut().find(|(a, _)| *a == k) {
        slot.1 = val;
    } else {
        v.push((k, val));
    }
}

fn strip_quotes(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() >= 2
        && ((b[0] == b'"' && b[b.len() - 1] == b'"') || (b[0] == b'\'' && b[b.len() - 1] == b'\''))
    {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

/// kustomize reads every annotation value as its raw scalar text.
fn stringify_annotations(v: &mut Value, node: &yaml::Node) {
    let yaml::Node::Map(items) = node else { return };
    let Some(meta) = items
        .iter()
        .find(|(k, _)| yaml::node_text(k) == "metadata")
        .map(|x| &x.1)
    else {
        return;
    };
    let yaml::Node::Map(mitems) = meta else {
        return;
    };
    let Some(ann) = mitems
        .iter()
        .find(|(k, _)| yaml::node_text(k) == "annotations")
        .map(|x| &x.1)
    else {
        return;
    };
    let yaml::Node::Map(aitems) = ann else { return };
    if let Some(target) = v.get_mut("metadata").and_then(|m| m.get_mut("annotations")) {
        *target = Value::Map(
            aitems
                .iter()
                .map(|(k, val)| (yaml::node_text(k), Value::Str(yaml::node_text(val))))
                .collect(),
        );
    }
}

/// The ids already in an accumulator, so that adding resources stays linear.
struct Ids(std::collections::HashSet<(Gvk, String, String)>);

impl Ids {
    fn of(acc: &[Resource]) -> Ids {
        Ids(acc
            .iter()
            .map(|r| (r.gvk(), r.name().to_owned(), r.namespace().to_owned()))
            .collect())
    }

    /// Adds `r` unless its id is taken or the build would hold too many resources.
    fn append(
        &mut self,
        acc: &mut Vec<Resource>,
        r: Resource,
        file: &str,
        limits: &Limits,
    ) -> Result<(), KustomizeError> {
        let id = (r.gvk(), r.name().to_owned(), r.namespace().to_owned());
        if self.0.contains(&id) {
            return Err(KustomizeError::Conflict {
                file: file.to_owned(),
                id: format!("{} {}", id.0.kind, id.1),
            });
        }
        if acc.len() >= limits.max_total_objects {
            return Err(too_many_objects(file, limits));
        }
        self.0.insert(id);
        acc.push(r);
        Ok(())
    }
}

fn too_many_objects(file: &str, limits: &Limits) -> KustomizeError {
    KustomizeError::Limit {
        file: file.to_owned(),
        msg: format!(
            "more than {} objects in total (limit max_total_objects)",
            limits.max_total_objects
        ),
    }
}

fn apply_smp_by_id(
    k: &Kust,
    field: &str,
    acc: &mut Vec<Resource>,
    patch: &Value,
) -> Result<(), KustomizeError> {
    let gvk = Gvk::of(patch);
    let name = patch
        .path(&["metadata", "name"])
        .and_then(Value::as_str)
        .unwrap_or("");
    let ns = patch
        .path(&["metadata", "namespace"])
        .and_then(Value::as_str)
        .unwrap_or("");
    let idx: Vec<usize> = acc
        .iter()
        .enumerate()
        .filter(|(_, r)| r.had_id(&gvk, name, ns))
        .map(|(i, _)| i)
        .collect();
    if idx.is_empty() {
        return Err(k.invalid(
            field,
            &format!(
                "failed to find unique target for patch {} {}",
                gvk.kind, name
            ),
        ));
    }
    if idx.len() > 1 {
        return Err(k.invalid(
            field,
            &format!("multiple matches for patch {} {}", gvk.kind, name),
        ));
    }
    apply_smp_to(acc, &idx, patch, (false, false))
}

/// Applies an SMP document to the selected resources. `allow` is (name change, kind
/// change): by default the target keeps its own name and kind.
fn apply_smp_to(
    acc: &mut Vec<Resource>,
    idx: &[usize],
    patch: &Value,
    allow: (bool, bool),
) -> Result<(), KustomizeError> {
    if smp::is_delete(patch) {
        let mut i = 0;
        acc.retain(|_| {
            let keep = !idx.contains(&i);
            i += 1;
            keep
        });
        return Ok(());
    }
    for &i in idx {
        let r = &mut acc[i];
        let gvk = r.gvk();
        let name = r.name().to_owned();
        let ns = r.namespace().to_owned();
        let new_name = patch
            .path(&["metadata", "name"])
            .and_then(Value::as_str)
            .map(str::to_owned);
        let new_kind = patch.get("kind").and_then(Value::as_str).map(str::to_owned);
        let mut p = patch.clone();
        // The patch's own id does not rename the target unless allowed.
        if let Some(m) = p.get_mut("metadata") {
            m.remove("name");
            m.remove("namespace");
        }
        p.remove("apiVersion");
        p.remove("kind");
        smp::apply(&mut r.value, &p, &gvk);
        let name = match (allow.0, new_name) {
            (true, Some(n)) => n,
            _ => name,
        };
        r.value.entry_map("metadata").set("name", Value::Str(name));
        if !ns.is_empty() {
            r.value
                .entry_map("metadata")
                .set("namespace", Value::Str(ns));
        }
        if let (true, Some(kd)) = (allow.1, new_kind) {
            r.value.set("kind", Value::Str(kd));
        }
        r.record();
    }
    Ok(())
}

fn apply_json_targets(
    k: &Kust,
    field: &str,
    acc: &mut [Resource],
    t: &Value,
    ops: &Value,
    caps: &Caps<'_>,
) -> Result<(), KustomizeError> {
    let idx = select(k, field, acc, t)?;
    for i in idx {
        json6902::apply(&mut acc[i].value, ops, caps).map_err(|msg| k.invalid(field, &msg))?;
        acc[i].record();
    }
    Ok(())
}

/// Resources a `target` selector picks.
fn select(
    k: &Kust,
    field: &str,
    acc: &[Resource],
    t: &Value,
) -> Result<Vec<usize>, KustomizeError> {
    let s = |f: &str| t.get(f).and_then(Value::as_str).unwrap_or("").to_owned();
    let anchored = |p: &str| -> Result<Option<regex::Regex>, KustomizeError> {
        if p.is_empty() {
            return Ok(None);
        }
        regex::Regex::new(&format!("^(?:{p})$"))
            .map(Some)
            .map_err(|e| k.invalid(field, &format!("bad target pattern {p:?}: {e}")))
    };
    let name_re = anchored(&s("name"))?;
    let ns_re = anchored(&s("namespace"))?;
    let (group, version, kind) = (s("group"), s("version"), s("kind"));
    let labels = parse_selector(&s("labelSelector")).map_err(|m| k.invalid(field, &m))?;
    let anns = parse_selector(&s("annotationSelector")).map_err(|m| k.invalid(field, &m))?;
    let kind_re = anchored(&kind)?;
    let mut out = Vec::new();
    for (i, r) in acc.iter().enumerate() {
        let g = r.gvk();
        if !group.is_empty() && group != g.group || !version.is_empty() && version != g.version {
            continue;
        }
        if let Some(re) = &kind_re
            && !re.is_match(&g.kind)
        {
            continue;
        }
        if let Some(re) = &name_re
            && !re.is_match(r.name())
            && !r.names.iter().any(|n| re.is_match(n))
        {
            continue;
        }
        if let Some(re) = &ns_re
            && !re.is_match(r.namespace())
        {
            continue;
        }
        if !matches_selector(&labels, &r.labels()) || !matches_selector(&anns, &r.annotations()) {
            continue;
        }
        out.push(i);
    }
    Ok(out)
}

enum Req {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

fn parse_selector(s: &str) -> Result<Vec<Req>, String> {
    let mut out = Vec::new();
    let s = s.trim();
    if s.is_empty() {
        return Ok(out);
    }
    // Split on commas outside parentheses.
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    parts.push(cur);
    for p in parts {
        let p = p.trim();
        let list = |rest: &str| -> Result<Vec<String>, String> {
            let r = rest.trim();
            let inner = r
                .strip_prefix('(')
                .and_then(|x| x.strip_suffix(')'))
                .ok_or_else(|| format!("bad selector {p:?}"))?;
            Ok(inner.split(',').map(|x| x.trim().to_owned()).collect())
        };
        if let Some((k, v)) = p.split_once("!=") {
            out.push(Req::Ne(k.trim().into(), v.trim().into()));
        } else if let Some((k, v)) = p.split_once("==") {
            out.push(Req::Eq(k.trim().into(), v.trim().into()));
        } else if let Some((k, v)) = p.split_once('=') {
            out.push(Req::Eq(k.trim().into(), v.trim().into()));
        } else if let Some((k, v)) = p.split_once(" notin ") {
            out.push(Req::NotIn(k.trim().into(), list(v)?));
        } else if let Some((k, v)) = p.split_once(" in ") {
            out.push(Req::In(k.trim().into(), list(v)?));
        } else if let Some(k) = p.strip_prefix('!') {
            out.push(Req::NotExists(k.trim().into()));
        } else if !p.is_empty() {
            out.push(Req::Exists(p.into()));
        }
    }
    Ok(out)
}

fn matches_selector(reqs: &[Req], have: &[(String, String)]) -> bool {
    let get = |k: &str| have.iter().find(|(a, _)| a == k).map(|(_, b)| b.as_str());
    reqs.iter().all(|r| match r {
        Req::Eq(k, v) => get(k) == Some(v.as_str()),
        Req::Ne(k, v) => get(k) != Some(v.as_str()),
        Req::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
        Req::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
        Req::Exists(k) => get(k).is_some(),
        Req::NotExists(k) => get(k).is_none(),
    })
}

fn legacy_orders(k: &Kust) -> Result<(Vec<String>, Vec<String>), KustomizeError> {
    let first_default = resource::ORDER_FIRST;
    let last_default = resource::ORDER_LAST;
    let opts = k.value.path(&["sortOptions", "legacySortOptions"]);
    let list = |key: &str, d: &[&str]| -> Vec<String> {
        match opts.and_then(|o| o.get(key)).and_then(Value::as_seq) {
            Some(s) => s
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            None => d.iter().map(|s| (*s).to_owned()).collect(),
        }
    };
    Ok((
        list("orderFirst", &first_default),
        list("orderLast", &last_default),
    ))
}

fn legacy_cmp(a: &Resource, b: &Resource, first: &[String], last: &[String]) -> std::cmp::Ordering {
    let order = |kind: &str| -> i64 {
        if let Some(i) = first.iter().position(|k| k == kind) {
            return -(first.len() as i64) + i as i64;
        }
        if let Some(i) = last.iter().position(|k| k == kind) {
            return 1 + i as i64;
        }
        0
    };
    let (ga, gb) = (a.gvk(), b.gvk());
    if ga != gb {
        let (ia, ib) = (order(&ga.kind), order(&gb.kind));
        if ia != ib {
            return ia.cmp(&ib);
        }
        if ga.kind == "Namespace"
            && gb.kind == "Namespace"
            && (ga.group.is_empty() || gb.group.is_empty())
        {
            return gb.sort_string().cmp(&ga.sort_string());
        }
        return ga.sort_string().cmp(&gb.sort_string());
    }
    let id = |r: &Resource, g: &Gvk| {
        let ns = if r.namespace().is_empty() {
            "~X"
        } else {
            r.namespace()
        };
        let nm = if r.name().is_empty() { "~N" } else { r.name() };
        format!("{}|{}|{}", g.sort_string(), ns, nm)
    };
    id(a, &ga).cmp(&id(b, &gb))
}

/// kustomize's content hash of a generated ConfigMap or Secret (10 characters).
fn hash_resource(v: &Value) -> String {
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    // kustomize looks the name up under the single key "metadata/name", which never
    // exists, so the name always hashes as "".
    let name = Value::Str(String::new());
    let field = |k: &str| -> Value {
        match v.get(k) {
            None => Value::Str(String::new()),
            Some(x) => x.clone(),
        }
    };
    let mut m: Vec<(String, Value)> = vec![
        ("kind".into(), Value::Str(kind.into())),
        ("name".into(), name),
        ("data".into(), field("data")),
    ];
    if kind == "Secret" {
        m.push(("type".into(), field("type")));
        if let Some(sd @ Value::Map(_)) = v.get("stringData") {
            m.push(("stringData".into(), sd.clone()));
        }
    } else if let Some(bd @ Value::Map(_)) = v.get("binaryData") {
        m.push(("binaryData".into(), bd.clone()));
    }
    let mut s = String::new();
    yaml::go_json(&Value::Map(m), &mut s);
    let digest = sha2::Sha256::digest(s.as_bytes());
    let hex: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    hex.chars()
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value the real kustomize v5.8.2 prints for `configMapGenerator: [{name: cfg,
    /// literals: [a=b]}]` (the name is not part of kustomize's hash).
    #[test]
    fn configmap_hash_matches_kustomize() {
        let v = Value::Map(vec![
            ("apiVersion".into(), Value::Str("v1".into())),
            ("kind".into(), Value::Str("ConfigMap".into())),
            (
                "metadata".into(),
                Value::Map(vec![("name".into(), Value::Str("anything".into()))]),
            ),
            (
                "data".into(),
                Value::Map(vec![("a".into(), Value::Str("b".into()))]),
            ),
        ]);
        assert_eq!(hash_resource(&v), "4h2mbtbbt6");
    }

    /// Generated Secret and binaryData values: 70 base64 characters or more are cut into
    /// newline-ended lines of 70 (krusty TestGeneratorBasics, TestIssue3489).
    #[test]
    fn generated_base64_folds_long_values() {
        assert_eq!(generated_base64(b"apple"), "YXBwbGU=");
        // 51 bytes encode to 68 characters: one line, no newline.
        assert!(!generated_base64(&[0u8; 51]).contains('\n'));
        // 52 bytes encode to 72 characters: 70 + 2, each line newline-ended.
        let long = generated_base64(&[0u8; 52]);
        assert_eq!(long, format!("{}AA\n==\n", "A".repeat(68)));
    }
}
