//! kustomize's field-spec driven transformers: labels, annotations, namespace, prefix and
//! suffix, images, replicas and name-reference fixing. The field specs are the generated
//! fact table `generated/fieldspecs.yaml`.

use std::sync::OnceLock;

use crate::caps::Caps;
use crate::resource::{Gvk, Resource};
use crate::yaml::{self, Value};

/// Where a transformer writes: a slash path in resources of a selected kind.
#[derive(Debug, Clone)]
pub struct FieldSpec {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub path: Vec<String>,
    pub create: bool,
}

impl FieldSpec {
    pub fn from_value(v: &Value) -> FieldSpec {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        FieldSpec {
            group: s("group"),
            version: s("version"),
            kind: s("kind"),
            path: split_path(&s("path")),
            create: matches!(v.get("create"), Some(Value::Bool(true))),
        }
    }
    /// kustomize's "effectively equal": same path, and `self`'s kind selected by `o`'s.
    fn shadows(&self, o: &FieldSpec) -> bool {
        self.path == o.path
            && Gvk {
                group: self.group.clone(),
                version: self.version.clone(),
                kind: self.kind.clone(),
            }
            .selected_by(&o.group, &o.version, &o.kind)
    }
    /// kustomize's order of field specs: by its kind order, then group, version, kind.
    fn sort_key(&self) -> (i32, String) {
        let g = Gvk {
            group: self.group.clone(),
            version: self.version.clone(),
            kind: self.kind.clone(),
        };
        (g.type_order(), g.sort_string())
    }
    pub fn applies(&self, gvk: &Gvk) -> bool {
        gvk.selected_by(&self.group, &self.version, &self.kind)
    }
}

fn split_path(p: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = p.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek() == Some(&'/') {
            cur.push('/');
            chars.next();
        } else if c == '/' {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

/// One nameReference rule: resources of `gvk` are referred to from `referrers`.
#[derive(Debug, Clone)]
pub struct NameRef {
    pub gvk: Gvk,
    pub referrers: Vec<FieldSpec>,
}

/// Transformer field specs: kustomize's defaults plus `configurations` and `crds`.
#[derive(Debug, Clone)]
pub struct Config {
    /// False for kustomize's defaults; true once user or CRD field specs were merged in.
    pub custom: bool,
    pub name_prefix: Vec<FieldSpec>,
    pub name_suffix: Vec<FieldSpec>,
    pub common_labels: Vec<FieldSpec>,
    pub template_labels: Vec<FieldSpec>,
    /// `volumeClaimTemplateLabels`: where `labels` entries with
    /// `includeVolumeClaimTemplates` go besides metadata.
    pub volume_claim_template_labels: Vec<FieldSpec>,
    /// `labels` of a configuration: added to every `labels` entry's own field specs.
    pub labels: Vec<FieldSpec>,
    pub common_annotations: Vec<FieldSpec>,
    pub namespace: Vec<FieldSpec>,
    pub images: Vec<FieldSpec>,
    pub replicas: Vec<FieldSpec>,
    pub var_reference: Vec<FieldSpec>,
    pub name_reference: Vec<NameRef>,
}

impl Config {
    /// Reads a transformer configuration document (the format of kustomize's
    /// `configurations` files and of the generated defaults).
    pub fn from_value(root: &Value) -> Config {
        let list = |k: &str| -> Vec<FieldSpec> {
            root.get(k)
                .and_then(Value::as_seq)
                .map(|s| s.iter().map(FieldSpec::from_value).collect())
                .unwrap_or_default()
        };
        let name_reference = root
            .get("nameReference")
            .and_then(Value::as_seq)
            .map(|s| {
                s.iter()
                    .map(|e| {
                        let g = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                        NameRef {
                            gvk: Gvk {
                                group: g("group"),
                                version: g("version"),
                                kind: g("kind"),
                            },
                            referrers: e
                                .get("fieldSpecs")
                                .and_then(Value::as_seq)
                                .map(|f| f.iter().map(FieldSpec::from_value).collect())
                                .unwrap_or_default(),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        Config {
            custom: true,
            common_labels: list("commonLabels"),
            template_labels: list("templateLabels"),
            volume_claim_template_labels: list("volumeClaimTemplateLabels"),
            labels: list("labels"),
            common_annotations: list("commonAnnotations"),
            namespace: list("namespace"),
            images: list("images"),
            replicas: list("replicas"),
            var_reference: list("varReference"),
            name_prefix: list("namePrefix"),
            name_suffix: list("nameSuffix"),
            name_reference,
        }
    }

    /// The longest field spec path, for the depth limit: a transformer creating fields
    /// along a path recurses once per segment.
    pub fn longest_path(&self) -> usize {
        [
            &self.name_prefix,
            &self.name_suffix,
            &self.common_labels,
            &self.template_labels,
            &self.volume_claim_template_labels,
            &self.labels,
            &self.common_annotations,
            &self.namespace,
            &self.images,
            &self.replicas,
            &self.var_reference,
        ]
        .into_iter()
        .flatten()
        .chain(self.name_reference.iter().flat_map(|n| &n.referrers))
        .map(|f| f.path.len())
        .max()
        .unwrap_or(0)
    }

    /// Adds another configuration's field specs the way kustomize merges them: a spec is
    /// dropped when one already kept has its path and is selected by its kind selector,
    /// and kustomize merges twice (in file order, then again in its sorted order), so a
    /// kind-specific spec given by the user shadows the generic default for that path
    /// (`namePrefix: [{path: metadata/name, kind: X}]` prefixes only X). Two such specs
    /// that differ in `create` conflict.
    pub fn merge(&mut self, o: &Config) -> Result<(), String> {
        if !o.custom {
            // Everything starts from the defaults; only user additions need merging.
            return Ok(());
        }
        self.custom = true;
        fn add(dst: &mut Vec<FieldSpec>, src: &[FieldSpec], what: &str) -> Result<(), String> {
            for f in src {
                if let Some(d) = dst.iter().find(|d| d.shadows(f)) {
                    if d.create != f.create {
                        return Err(conflict(what, d, f));
                    }
                    continue;
                }
                dst.push(f.clone());
            }
            // The second pass, in kustomize's order of kinds.
            let mut order: Vec<usize> = (0..dst.len()).collect();
            order.sort_by_key(|&i| dst[i].sort_key());
            let mut keep = vec![false; dst.len()];
            let mut kept: Vec<usize> = Vec::new();
            for i in order {
                if let Some(&j) = kept.iter().find(|&&j| dst[j].shadows(&dst[i])) {
                    if dst[j].create != dst[i].create {
                        return Err(conflict(what, &dst[j], &dst[i]));
                    }
                    continue;
                }
                kept.push(i);
                keep[i] = true;
            }
            let mut it = keep.into_iter();
            dst.retain(|_| it.next().unwrap_or(true));
            Ok(())
        }
        fn conflict(what: &str, a: &FieldSpec, b: &FieldSpec) -> String {
            format!(
                "conflicting {what} field specs for path {:?} (kinds {:?} and {:?}): one sets create, the other not",
                a.path.join("/"),
                a.kind,
                b.kind
            )
        }
        add(&mut self.common_labels, &o.common_labels, "commonLabels")?;
        add(
            &mut self.template_labels,
            &o.template_labels,
            "templateLabels",
        )?;
        add(
            &mut self.volume_claim_template_labels,
            &o.volume_claim_template_labels,
            "volumeClaimTemplateLabels",
        )?;
        add(&mut self.labels, &o.labels, "labels")?;
        add(
            &mut self.common_annotations,
            &o.common_annotations,
            "commonAnnotations",
        )?;
        add(&mut self.namespace, &o.namespace, "namespace")?;
        add(&mut self.images, &o.images, "images")?;
        add(&mut self.replicas, &o.replicas, "replicas")?;
        add(&mut self.var_reference, &o.var_reference, "varReference")?;
        add(&mut self.name_prefix, &o.name_prefix, "namePrefix")?;
        add(&mut self.name_suffix, &o.name_suffix, "nameSuffix")?;
        for nr in &o.name_reference {
            match self.name_reference.iter_mut().find(|x| x.gvk == nr.gvk) {
                Some(x) => add(&mut x.referrers, &nr.referrers, "nameReference")?,
                None => self.name_reference.push(nr.clone()),
            }
        }
        Ok(())
    }
}

/// Field specs kustomize derives from an OpenAPI definitions document given in `crds`:
/// `x-kubernetes-annotation`, `x-kubernetes-label-selector`, `x-kubernetes-identity` and
/// object references (`x-kubernetes-object-ref-api-version`/`-kind`/`-name-key`).
pub fn config_from_openapi(doc: &Value) -> Config {
    let mut cfg = Config::from_value(&Value::Map(Vec::new()));
    let Some(defs) = doc.as_map() else { return cfg };
    fn walk(
        cfg: &mut Config,
        defs: &[(String, Value)],
        kind: &str,
        type_name: &str,
        path: &mut Vec<String>,
        depth: usize,
    ) {
        if depth > 32 {
            return;
        }
        let Some(def) = defs.iter().find(|(n, _)| n == type_name).map(|(_, d)| d) else {
            return;
        };
        let Some(Value::Map(props)) = def.path(&["Schema", "properties"]) else {
            return;
        };
        for (pname, prop) in props {
            path.push(pname.clone());
            let fs = |p: &[String]| FieldSpec {
                group: String::new(),
                version: String::new(),
                kind: kind.to_owned(),
                path: p.to_vec(),
                create: false,
            };
            if prop.get("x-kubernetes-annotation").is_some() {
                cfg.common_annotations.push(fs(path));
            }
            if prop.get("x-kubernetes-label-selector").is_some() {
                cfg.common_labels.push(fs(path));
            }
            if prop.get("x-kubernetes-identity").is_some() {
                cfg.name_prefix.push(fs(path));
                cfg.name_suffix.push(fs(path));
            }
            if let (Some(Value::Str(ver)), Some(Value::Str(k))) = (
                prop.get("x-kubernetes-object-ref-api-version"),
                prop.get("x-kubernetes-object-ref-kind"),
            ) {
                let key = prop
                    .get("x-kubernetes-object-ref-name-key")
                    .and_then(Value::as_str)
                    .unwrap_or("name");
                let mut p = path.clone();
                p.push(key.to_owned());
                cfg.name_reference.push(NameRef {
                    gvk: Gvk {
                        group: String::new(),
                        version: ver.clone(),
                        kind: k.clone(),
                    },
                    referrers: vec![fs(&p)],
                });
            }
            if let Some(Value::Str(r)) = prop.get("$ref") {
                let r = r.clone();
                walk(cfg, defs, kind, &r, path, depth + 1);
            }
            path.pop();
        }
    }
    for (name, def) in defs {
        let Some(props) = def.path(&["Schema", "properties"]) else {
            continue;
        };
        if props.get("kind").is_none()
            || props.get("apiVersion").is_none()
            || props.get("metadata").is_none()
        {
            continue;
        }
        let kind = name.rsplit('.').next().unwrap_or(name).to_owned();
        walk(&mut cfg, defs, &kind, name, &mut Vec::new(), 0);
    }
    cfg
}

/// kustomize's default configuration (generated table).
pub fn default_config() -> &'static Config {
    static C: OnceLock<Config> = OnceLock::new();
    C.get_or_init(|| {
        let text = include_str!("generated/fieldspecs.yaml");
        let docs = yaml::parse_docs(text).expect("generated field specs parse");
        let root = docs
            .first()
            .and_then(|d| d.node.as_ref())
            .map(yaml::resolve)
            .expect("generated field specs have a document")
            .expect("generated field specs resolve");
        let mut c = Config::from_value(&root);
        c.custom = false;
        c
    })
}

/// Visits every node at `path` (descending into sequences), creating missing maps when
/// `create`. The callback gets the parent map and the last key.
pub fn visit_path(
    v: &mut Value,
    path: &[String],
    create: bool,
    f: &mut dyn FnMut(&mut Value, &str),
) {
    if path.is_empty() {
        return;
    }
    if let Value::Seq(items) = v {
        for it in items {
            visit_path(it, path, create, f);
        }
        return;
    }
    let seg = path[0].trim_end_matches("[]");
    let is_list = path[0].ends_with("[]");
    if !matches!(v, Value::Map(_)) {
        return;
    }
    if path.len() == 1 {
        f(v, seg);
        return;
    }
    if v.get(seg).is_none() || matches!(v.get(seg), Some(Value::Null)) {
        if !create || is_list {
            return;
        }
        v.set(seg, Value::Map(Vec::new()));
    }
    if let Some(child) = v.get_mut(seg) {
        visit_path(child, &path[1..], create, f);
    }
}

/// Adds string pairs to the map at each field spec (labels/annotations).
pub fn add_map_pairs(res: &mut Resource, specs: &[FieldSpec], pairs: &[(String, String)]) {
    if pairs.is_empty() {
        return;
    }
    let gvk = res.gvk();
    for fs in specs.iter().filter(|fs| fs.applies(&gvk)) {
        visit_path(&mut res.value, &fs.path, fs.create, &mut |parent, key| {
            let exists = matches!(parent.get(key), Some(Value::Map(_)));
            if !exists {
                if !fs.create {
                    return;
                }
                parent.set(key, Value::Map(Vec::new()));
            }
            let m = parent.get_mut(key).expect("ensured above");
            for (k, val) in pairs {
                m.set(k, Value::Str(val.clone()));
            }
        });
    }
}

/// The namespace transformer.
pub fn set_namespace(cfg: &Config, res: &mut Resource, ns: &str) {
    let gvk = res.gvk();
    res.store_previous_id();
    if !gvk.is_cluster_scoped() {
        res.value
            .entry_map("metadata")
            .set("namespace", Value::Str(ns.to_owned()));
    }
    let core_v1 = res.value.get("apiVersion").and_then(Value::as_str) == Some("v1");
    let binding = gvk.kind == "RoleBinding" || gvk.kind == "ClusterRoleBinding";
    for fs in cfg.namespace.iter().filter(|fs| fs.applies(&gvk)) {
        // metadata.namespace was handled above; a Namespace's own name only when it is
        // the core v1 Namespace; binding subjects by the rule below.
        if fs.path == ["metadata", "namespace"]
            || (fs.path == ["metadata", "name"] && !core_v1)
            || (binding && fs.path == ["subjects", "namespace"])
        {
            continue;
        }
        visit_path(&mut res.value, &fs.path, fs.create, &mut |parent, key| {
            parent.set(key, Value::Str(ns.to_owned()));
        });
    }
    // kustomize moves only the subjects named `default` (of any kind) into the new
    // namespace, creating the field; other subjects keep theirs unless a name reference
    // to a ServiceAccount in the build moves them.
    if binding && let Some(Value::Seq(subjects)) = res.value.get_mut("subjects") {
        for s in subjects {
            if s.get("name").and_then(Value::as_str) == Some("default") {
                s.set("namespace", Value::Str(ns.to_owned()));
            }
        }
    }
    res.record();
}

/// Prefix and suffix on metadata.name (kustomize skips CRDs, APIServices and Namespaces).
pub fn add_prefix_suffix(cfg: &Config, res: &mut Resource, prefix: &str, suffix: &str) {
    let gvk = res.gvk();
    // kustomize leaves these kinds alone entirely.
    if gvk.kind == "CustomResourceDefinition"
        || gvk.kind == "Namespace"
        || (gvk.kind == "APIService" && gvk.group == "apiregistration.k8s.io")
    {
        return;
    }
    // Prefix, then suffix, each over its own field specs: a configuration that names
    // kinds for `metadata/name` limits the rename to those kinds.
    for (affix, specs, is_prefix) in [
        (prefix, &cfg.name_prefix, true),
        (suffix, &cfg.name_suffix, false),
    ] {
        if affix.is_empty() {
            continue;
        }
        let with = |s: &str| {
            if is_prefix {
                format!("{affix}{s}")
            } else {
                format!("{s}{affix}")
            }
        };
        for fs in specs.iter().filter(|fs| fs.applies(&gvk)) {
            if fs.path == ["metadata", "name"] {
                let name = with(res.name());
                res.set_name(&name);
                if is_prefix {
                    res.prefixes.push(affix.to_owned());
                } else {
                    res.suffixes.push(affix.to_owned());
                }
                continue;
            }
            visit_path(&mut res.value, &fs.path, false, &mut |parent, key| {
                if let Some(Value::Str(s)) = parent.get(key) {
                    let v = with(s);
                    parent.set(key, Value::Str(v));
                }
            });
        }
    }
}

/// An `images` entry.
#[derive(Debug, Clone, Default)]
pub struct ImageRule {
    pub name: String,
    pub new_name: String,
    pub new_tag: String,
    pub digest: String,
}

/// kustomize's image reference split: name, tag, digest. The search for `:` and `@`
/// starts at the first `/`, so a registry port is not taken for a tag.
fn split_image(image: &str) -> (&str, &str, &str) {
    let from = match image.find('/') {
        Some(i) if i > 0 => i,
        _ => 0,
    };
    let search = &image[from..];
    let at = search.find('@').map(|i| i + from);
    let colon = search.find(':').map(|i| i + from);
    match (colon, at) {
        (None, None) => (image, "", ""),
        (c, Some(d)) if c.is_none_or(|c| d < c) => (&image[..d], "", &image[d + 1..]),
        (Some(c), Some(d)) => (&image[..c], &image[c + 1..d], &image[d + 1..]),
        (Some(c), None) => (&image[..c], &image[c + 1..], ""),
        (None, Some(_)) => unreachable!("handled by the digest-only arm"),
    }
}

/// Whether an image reference is one an `images` entry names. kustomize puts the name
/// into a regular expression as it is (so a `.` matches any character), followed by an
/// optional tag and digest; a name that is not a valid expression matches nothing.
fn image_matcher(name: &str) -> Option<regex::Regex> {
    regex::Regex::new(&format!(
        "^{name}(:[a-zA-Z0-9_.{{}}-]*)?(@[a-zA-Z0-9]+([.+_-][a-zA-Z0-9]+)*:[a-zA-Z0-9_.{{}}-]*)?$"
    ))
    .ok()
}

fn updated_image(rule: &ImageRule, cur: &str) -> String {
    let (name, tag, digest) = split_image(cur);
    let name = if rule.new_name.is_empty() {
        name
    } else {
        rule.new_name.as_str()
    };
    // A new tag or digest replaces both the old tag and the old digest.
    let (tag, digest) = match (rule.new_tag.is_empty(), rule.digest.is_empty()) {
        (true, true) => (tag, digest),
        (false, true) => (rule.new_tag.as_str(), ""),
        (true, false) => ("", rule.digest.as_str()),
        (false, false) => (rule.new_tag.as_str(), rule.digest.as_str()),
    };
    let mut out = name.to_owned();
    if !tag.is_empty() {
        out.push(':');
        out.push_str(tag);
    }
    if !digest.is_empty() {
        out.push('@');
        out.push_str(digest);
    }
    out
}

/// Every `containers` and `initContainers` list anywhere in an object, innermost first:
/// kustomize rewrites their images whatever the kind (CRDs aside), before the field specs.
fn visit_container_lists(v: &mut Value, f: &mut dyn FnMut(&mut Vec<Value>)) {
    match v {
        Value::Map(m) => {
            for (k, child) in m.iter_mut() {
                visit_container_lists(child, f);
                if (k == "containers" || k == "initContainers")
                    && let Value::Seq(items) = child
                {
                    f(items);
                }
            }
        }
        Value::Seq(items) => {
            for it in items {
                visit_container_lists(it, f);
            }
        }
        _ => {}
    }
}

/// Applies one `images` entry to every resource.
pub fn apply_image(cfg: &Config, resources: &mut [Resource], rule: &ImageRule) {
    let Some(re) = image_matcher(&rule.name) else {
        return;
    };
    let update = |slot: &mut Value| {
        if let Value::Str(cur) = slot
            && re.is_match(cur)
        {
            *cur = updated_image(rule, cur);
        }
    };
    for res in resources {
        let gvk = res.gvk();
        if gvk.kind != "CustomResourceDefinition" {
            visit_container_lists(&mut res.value, &mut |items| {
                for it in items.iter_mut() {
                    if let Some(img) = it.get_mut("image") {
                        update(img);
                    }
                }
            });
        }
        for fs in cfg.images.iter().filter(|fs| fs.applies(&gvk)) {
            visit_path(&mut res.value, &fs.path, false, &mut |parent, key| {
                if let Some(img) = parent.get_mut(key) {
                    update(img);
                }
            });
        }
    }
}

/// Sets the replica count; false when the kind has no replicas field spec.
pub fn apply_replicas(cfg: &Config, res: &mut Resource, count: &Value) -> bool {
    let gvk = res.gvk();
    let mut hit = false;
    for fs in cfg.replicas.iter().filter(|fs| fs.applies(&gvk)) {
        hit = true;
        visit_path(&mut res.value, &fs.path, fs.create, &mut |parent, key| {
            parent.set(key, count.clone());
        });
    }
    hit
}

/// Fixes name references after all renames: every referrer field holding a name some
/// candidate has had before its current id (kustomize's previous ids; a resource never
/// renamed or re-namespaced is no candidate) is set to that candidate's current name.
pub fn fix_name_references(cfg: &Config, resources: &mut [Resource]) -> Result<(), String> {
    type Snap = (
        Gvk,
        Vec<String>,
        Vec<String>,
        String,
        String,
        (Vec<String>, Vec<String>),
    );
    let snapshot: Vec<Snap> = resources
        .iter()
        .map(|r| {
            (
                r.gvk(),
                r.prev_names.clone(),
                r.namespaces.clone(),
                r.name().to_owned(),
                r.namespace().to_owned(),
                (r.prefixes.clone(), r.suffixes.clone()),
            )
        })
        .collect();
    for referrer in resources.iter_mut() {
        let rgvk = referrer.gvk();
        let rns = referrer.namespace().to_owned();
        let rname = referrer.name().to_owned();
        // A RoleBinding's ServiceAccount subjects widen where it may refer; kustomize
        // refuses one whose namespace is there but not a string (blank, say).
        if rgvk.kind == "RoleBinding"
            && let Some(Value::Seq(subjects)) = referrer.value.get("subjects")
        {
            for s in subjects {
                if s.get("kind").and_then(Value::as_str) == Some("ServiceAccount")
                    && s.get("namespace").is_some_and(|n| n.as_str().is_none())
                {
                    return Err(format!(
                        "RoleBinding {}: field subjects: a ServiceAccount subject's namespace \
                         is blank or not a string",
                        if rns.is_empty() {
                            rname.clone()
                        } else {
                            format!("{rns}/{rname}")
                        }
                    ));
                }
            }
        }
        let affixes = (referrer.prefixes.clone(), referrer.suffixes.clone());
        for rule in &cfg.name_reference {
            for fs in rule.referrers.iter().filter(|fs| fs.applies(&rgvk)) {
                let candidates: Vec<usize> = snapshot
                    .iter()
                    .enumerate()
                    // A resource may refer to itself (its own name in an annotation).
                    .filter(|(_, c)| {
                        c.0.selected_by(&rule.gvk.group, &rule.gvk.version, &rule.gvk.kind)
                    })
                    .map(|(ci, _)| ci)
                    .collect();
                if candidates.is_empty() {
                    continue;
                }
                let mut err = None;
                visit_path(&mut referrer.value, &fs.path, false, &mut |parent, key| {
                    let parent_kind = parent
                        .get("kind")
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    let resolve_one =
                        |name: &str,
                         ns: Option<&str>,
                         is_map: bool|
                         -> Result<Option<(String, String)>, String> {
                            // kustomize looks a written namespace up among the
                            // candidates' effective namespaces, never blank.
                            if ns == Some("") {
                                return Ok(None);
                            }
                            let mut found: Vec<usize> = candidates
                                .iter()
                                .copied()
                                .filter(|&ci| snapshot[ci].1.iter().any(|n| n == name))
                                .collect();
                            if found.len() > 1 || ns.is_some() || !rgvk.is_cluster_scoped() {
                                let want = ns.map(str::to_owned).unwrap_or_else(|| rns.clone());
                                let same_ns: Vec<usize> = found
                                    .iter()
                                    .copied()
                                    .filter(|&ci| {
                                        let c = &snapshot[ci];
                                        // A namespace written in the reference
                                        // names where the candidate was when the
                                        // reference was written: any it has had.
                                        c.0.is_cluster_scoped()
                                            || ns_eq(&c.4, &want)
                                            || (ns.is_some() && c.2.iter().any(|h| ns_eq(h, &want)))
                                            || (ns.is_none() && rgvk.is_cluster_scoped())
                                    })
                                    .collect();
                                found = same_ns;
                            }
                            if found.len() > 1 {
                                // kustomize narrows by the affixes the referrer shares:
                                // first letting an empty list match anything, then
                                // strictly; each list compared on its common tail.
                                let lenient: Vec<usize> = found
                                    .iter()
                                    .copied()
                                    .filter(|&ci| affixes_match(&snapshot[ci].5, &affixes, true))
                                    .collect();
                                found = lenient;
                                if found.len() > 1 {
                                    let strict: Vec<usize> = found
                                        .iter()
                                        .copied()
                                        .filter(|&ci| {
                                            affixes_match(&snapshot[ci].5, &affixes, false)
                                        })
                                        .collect();
                                    found = strict;
                                }
                            }
                            // Candidates that would all write the same thing are one: the
                            // same name for a plain string; a map is given the namespace
                            // too, so there both must agree.
                            if found.len() > 1
                                && found.iter().all(|&ci| {
                                    snapshot[ci].3 == snapshot[found[0]].3
                                        && (!is_map || snapshot[ci].4 == snapshot[found[0]].4)
                                })
                            {
                                found.truncate(1);
                            }
                            match found.len() {
                                0 => Ok(None),
                                1 => Ok(Some((
                                    snapshot[found[0]].3.clone(),
                                    snapshot[found[0]].4.clone(),
                                ))),
                                _ => {
                                    let names: Vec<String> = found
                                        .iter()
                                        .map(|&ci| {
                                            let c = &snapshot[ci];
                                            if c.4.is_empty() {
                                                format!("{} {}", c.0.kind, c.3)
                                            } else {
                                                format!("{} {}/{}", c.0.kind, c.4, c.3)
                                            }
                                        })
                                        .collect();
                                    Err(format!(
                                        "the name reference in {} {}, field {}, has \
                                         multiple possible referrals for {} {name:?}: {}",
                                        rgvk.kind,
                                        if rns.is_empty() {
                                            rname.clone()
                                        } else {
                                            format!("{rns}/{rname}")
                                        },
                                        fs.path.join("/"),
                                        rule.gvk.kind,
                                        names.join(", ")
                                    ))
                                }
                            }
                        };
                    let parent_kind = parent_kind.clone();
                    if fs.path.len() > 1
                        && parent_kind.as_deref().is_some_and(|k| k != rule.gvk.kind)
                    {
                        return;
                    }
                    let Some(cur) = parent.get_mut(key) else {
                        return;
                    };
                    match cur {
                        Value::Str(s) => match resolve_one(s, None, false) {
                            Ok(Some((n, _))) => *s = n,
                            Ok(None) => {}
                            Err(e) => err = Some(e),
                        },
                        Value::Seq(items) => {
                            for it in items {
                                match it {
                                    Value::Str(s) => match resolve_one(s, None, false) {
                                        Ok(Some((n, _))) => *s = n,
                                        Ok(None) => {}
                                        Err(e) => err = Some(e),
                                    },
                                    Value::Map(_) => {
                                        if let Some(k) = it.get("kind").and_then(Value::as_str)
                                            && k != rule.gvk.kind
                                        {
                                            continue;
                                        }
                                        let ns = it
                                            .get("namespace")
                                            .and_then(Value::as_str)
                                            .map(str::to_owned);
                                        if let Some(Value::Str(s)) = it.get("name").cloned() {
                                            match resolve_one(&s, ns.as_deref(), true) {
                                                Ok(Some((n, cns))) => {
                                                    it.set("name", Value::Str(n));
                                                    if !cns.is_empty() {
                                                        it.set("namespace", Value::Str(cns));
                                                    }
                                                }
                                                Ok(None) => {}
                                                Err(e) => err = Some(e),
                                            }
                                        }
                                    }
                                    _ => {}
                                }
                            }
                        }
                        Value::Map(_) => {
                            if let Some(k) = cur.get("kind").and_then(Value::as_str)
                                && k != rule.gvk.kind
                            {
                                return;
                            }
                            // Like a list item: the map's own namespace picks the
                            // candidate, and the referral's namespace is written back.
                            let ns = cur
                                .get("namespace")
                                .and_then(Value::as_str)
                                .map(str::to_owned);
                            if let Some(Value::Str(s)) = cur.get("name").cloned() {
                                match resolve_one(&s, ns.as_deref(), true) {
                                    Ok(Some((n, cns))) => {
                                        cur.set("name", Value::Str(n));
                                        if !cns.is_empty() {
                                            cur.set("namespace", Value::Str(cns));
                                        }
                                    }
                                    Ok(None) => {}
                                    Err(e) => err = Some(e),
                                }
                            }
                        }
                        _ => {}
                    }
                });
                if let Some(e) = err {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

type Affixes = (Vec<String>, Vec<String>);

/// kustomize's comparison of the prefixes and suffixes two resources were given: each
/// list must end the same way as the other (the shorter one is the tail of the longer);
/// `allow_empty` lets an empty list match any.
fn affixes_match(a: &Affixes, b: &Affixes, allow_empty: bool) -> bool {
    fn same_tail(x: &[String], y: &[String], allow_empty: bool) -> bool {
        if allow_empty && (x.is_empty() || y.is_empty()) {
            return true;
        }
        let (short, long) = if x.len() <= y.len() { (x, y) } else { (y, x) };
        if short.is_empty() {
            return long.is_empty();
        }
        long.ends_with(short)
    }
    same_tail(&a.0, &b.0, allow_empty) && same_tail(&a.1, &b.1, allow_empty)
}

fn ns_eq(a: &str, b: &str) -> bool {
    let norm = |s: &str| if s.is_empty() { "default" } else { s }.to_owned();
    norm(a) == norm(b)
}

/// Replaces `$(NAME)` in the var-reference fields; records the names that were used.
/// A variable's value placed whole counts as a copy against the build's budget, and the
/// resource must stay under the depth limit.
pub fn substitute_vars(
    cfg: &Config,
    res: &mut Resource,
    vars: &[(String, Value)],
    used: &mut Vec<String>,
    caps: &Caps<'_>,
) -> Result<(), String> {
    let gvk = res.gvk();
    let mut over = None;
    for fs in cfg.var_reference.iter().filter(|fs| fs.applies(&gvk)) {
        visit_path(&mut res.value, &fs.path, false, &mut |parent, key| {
            let Some(v) = parent.get_mut(key) else { return };
            let mut one = |it: &mut Value| {
                if over.is_none()
                    && let Err(e) = subst_one(it, vars, used, caps)
                {
                    over = Some(e);
                }
            };
            match v {
                Value::Str(_) => one(v),
                Value::Seq(items) => items.iter_mut().for_each(one),
                Value::Map(m) => m.iter_mut().for_each(|(_, it)| one(it)),
                _ => {}
            }
        });
        if let Some(e) = over.take() {
            return Err(e);
        }
    }
    if res.value.height() > caps.limits.max_depth {
        return Err(caps.too_deep());
    }
    Ok(())
}

fn subst_one(
    v: &mut Value,
    vars: &[(String, Value)],
    used: &mut Vec<String>,
    caps: &Caps<'_>,
) -> Result<(), String> {
    let Value::Str(s) = v else { return Ok(()) };
    // A field that is exactly one reference keeps the variable's type.
    for (name, val) in vars {
        if *s == format!("$({name})") {
            used.push(name.clone());
            caps.copy(val)?;
            *v = val.clone();
            return Ok(());
        }
    }
    let mut out = String::new();
    let mut rest = s.as_str();
    while let Some(i) = rest.find("$(") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find(')') {
            Some(j) => {
                let name = &after[..j];
                match vars.iter().find(|(n, _)| n == name) {
                    Some((n, val)) => {
                        used.push(n.clone());
                        let text = val.scalar_text().unwrap_or_default();
                        caps.copy_weight(0, text.len() as u64)?;
                        out.push_str(&text);
                    }
                    None => {
                        out.push_str("$(");
                        out.push_str(name);
                        out.push(')');
                    }
                }
                rest = &after[j + 1..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    *s = out;
    Ok(())
}

#[cfg(test)]
mod image_tests {
    use super::*;

    /// kustomize's split: `:`/`@` are looked for from the first `/` on (registry ports).
    #[test]
    fn split_image_like_kustomize() {
        assert_eq!(split_image("nginx"), ("nginx", "", ""));
        assert_eq!(split_image("nginx:1.7"), ("nginx", "1.7", ""));
        assert_eq!(split_image("nginx@sha256:ab"), ("nginx", "", "sha256:ab"));
        assert_eq!(
            split_image("nginx:1@sha256:ab"),
            ("nginx", "1", "sha256:ab")
        );
        assert_eq!(
            split_image("host:1234/my/image"),
            ("host:1234/my/image", "", "")
        );
        assert_eq!(
            split_image("host:1234/my/image:v1"),
            ("host:1234/my/image", "v1", "")
        );
    }

    /// A new tag drops an old digest and a new digest drops an old tag
    /// (krusty TestTransfomersImageDefaultConfig).
    #[test]
    fn new_tag_or_digest_replaces_both() {
        let rule = |t: &str, d: &str| ImageRule {
            name: "docker".into(),
            new_name: "my-docker".into(),
            new_tag: t.into(),
            digest: d.into(),
        };
        assert_eq!(
            updated_image(&rule("", "sha256:25"), "docker:17-git"),
            "my-docker@sha256:25"
        );
        assert_eq!(
            updated_image(&rule("v3", ""), "docker:1@sha256:aa"),
            "my-docker:v3"
        );
        let re = image_matcher("docker").expect("valid");
        assert!(re.is_match("docker:17-git") && !re.is_match("docker2:1"));
        assert!(image_matcher("[").is_none());
    }
}
