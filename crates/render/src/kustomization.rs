//! Kustomize trees: detected by their kustomization file and built natively in process.

use driftless_model::{Content, Object, ObjectRef, Origin, Tree};
use serde_json::Value;

use crate::Limits;
use crate::error::{RenderError, RenderErrorKind as K, RenderErrors};

/// File names kustomize looks for, in its order of preference.
const KUSTOMIZATION_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// A built kustomization: the exact text `kustomize build` prints, and its objects.
#[derive(Debug, Clone)]
pub struct KustomizeOutput {
    pub yaml: String,
    pub objects: Vec<Object>,
}

/// Whether `path` is a folder holding a kustomization file.
pub fn is_kustomization(tree: &dyn Tree, path: &str) -> Result<bool, RenderErrors> {
    driftless_kustomize::is_kustomization_dir(tree, path).map_err(|err| one(path, err.to_string()))
}

/// Builds the kustomization in `path`. Every object must still carry apiVersion, kind and
/// metadata.name, as plain manifests must.
pub fn render_kustomization(tree: &dyn Tree, path: &str) -> Result<KustomizeOutput, RenderErrors> {
    let build = driftless_kustomize::build(tree, path).map_err(|err| one(path, err.to_string()))?;
    let file = kustomization_file(tree, path);
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    for manifest in build.objects() {
        match id_of(&manifest) {
            Ok(id) => objects.push(Object {
                id,
                content: Content::Manifest(manifest),
                origin: Origin {
                    file: file.clone(),
                    line: 0,
                    column: 0,
                },
            }),
            Err(missing) => errors.push(RenderError::in_file(&file, K::MissingField(missing))),
        }
    }
    if !errors.is_empty() {
        return Err(RenderErrors(errors));
    }
    Ok(KustomizeOutput {
        yaml: build.to_yaml(),
        objects,
    })
}

/// What a source path renders to for an API target: a kustomization when the folder has
/// one, plain YAML/JSON manifests otherwise.
pub fn render_source(
    tree: &dyn Tree,
    path: &str,
    limits: &Limits,
) -> Result<Vec<Object>, RenderErrors> {
    if is_kustomization(tree, path)? {
        render_kustomization(tree, path).map(|out| out.objects)
    } else {
        crate::render_manifests(tree, path, limits)
    }
}

fn kustomization_file(tree: &dyn Tree, path: &str) -> String {
    let join = |name: &str| {
        if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}/{name}")
        }
    };
    KUSTOMIZATION_FILES
        .iter()
        .map(|name| join(name))
        .find(|candidate| matches!(tree.kind(candidate), Ok(Some(_))))
        .unwrap_or_else(|| join(KUSTOMIZATION_FILES[0]))
}

fn id_of(manifest: &Value) -> Result<ObjectRef, &'static str> {
    let text = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let api_version = text(manifest.get("apiVersion")).ok_or("apiVersion")?;
    let kind = text(manifest.get("kind")).ok_or("kind")?;
    let metadata = manifest.get("metadata");
    let name = text(metadata.and_then(|m| m.get("name"))).ok_or("metadata.name")?;
    let namespace = text(metadata.and_then(|m| m.get("namespace"))).unwrap_or_default();
    let group = api_version
        .rsplit_once('/')
        .map(|(g, _)| g.to_owned())
        .unwrap_or_default();
    Ok(ObjectRef {
        group,
        kind,
        namespace,
        name,
    })
}

fn one(path: &str, message: String) -> RenderErrors {
    let _ = path;
    RenderErrors(vec![RenderError {
        origin: Origin::default(),
        kind: K::Kustomize(message),
    }])
}
