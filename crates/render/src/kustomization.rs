//! Kustomize trees: detected by their kustomization file and built natively in process.

use std::collections::BTreeSet;

use driftless_model::{Content, Object, ObjectRef, Origin, Tree};
use serde_json::Value;

use crate::decrypt::DecryptingTree;
use crate::error::{RenderError, RenderErrorKind as K, RenderErrors};
use crate::{Decryption, Limits, Rendered};

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
/// metadata.name, as plain manifests must. A SOPS-encrypted input is an error here (no key
/// is given); use [`render_source_with`] to decrypt.
pub fn render_kustomization(tree: &dyn Tree, path: &str) -> Result<KustomizeOutput, RenderErrors> {
    crate::guarded(path, || {
        let limits = Limits::default();
        let tree = DecryptingTree::with_limits(tree, None, &limits);
        let out = build(&tree, path, &limits)?;
        refuse_sops_metadata(&out.objects)?;
        Ok(out)
    })
}

fn build(tree: &dyn Tree, path: &str, limits: &Limits) -> Result<KustomizeOutput, RenderErrors> {
    let build = driftless_kustomize::build_with(tree, path, limits).map_err(|err| {
        // Place the error where the YAML reader found it, when it knows.
        let error = match err.location() {
            Some((file, line, col)) => RenderError::at(file, line, col, K::Kustomize(err.reason())),
            None => RenderError {
                origin: Origin::default(),
                kind: K::Kustomize(err.to_string()),
            },
        };
        RenderErrors(vec![error])
    })?;
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
/// one, plain YAML/JSON manifests otherwise. A SOPS-encrypted file is an error here (no
/// key is given); use [`render_source_with`] to decrypt.
pub fn render_source(
    tree: &dyn Tree,
    path: &str,
    limits: &Limits,
) -> Result<Vec<Object>, RenderErrors> {
    render_source_with(tree, path, limits, None).map(|r| r.objects)
}

/// [`render_source`] with SOPS decryption. Every file the render reads — plain manifests,
/// kustomize resources, and the `envs:` and `files:` of secret and config map generators
/// — is decrypted when it carries SOPS metadata, to exactly what `sops -d` prints, so a
/// generated Secret gets the same name hash as `kustomize build` on the decrypted files.
///
/// # Errors
/// Any problem fails the whole render; every problem found is listed. An encrypted file
/// without a `decryption`, with no matching key, tampered with or encrypted for key types
/// driftless does not support is an error naming the file and what to do; so is an object
/// that still carries a top-level `sops` key. Error messages are redacted with the secrets
/// decrypted so far.
pub fn render_source_with(
    tree: &dyn Tree,
    path: &str,
    limits: &Limits,
    decryption: Option<&Decryption>,
) -> Result<Rendered, RenderErrors> {
    crate::guarded(path, || render_source_inner(tree, path, limits, decryption))
}

fn render_source_inner(
    tree: &dyn Tree,
    path: &str,
    limits: &Limits,
    decryption: Option<&Decryption>,
) -> Result<Rendered, RenderErrors> {
    let tree = DecryptingTree::with_limits(tree, decryption, limits);
    let result = if is_kustomization(&tree, path)? {
        build(&tree, path, limits).map(|out| (out.objects, Some(out.yaml)))
    } else {
        crate::manifests::render(&tree, path, limits).map(|objects| (objects, None))
    };
    let mut secrets = tree.secrets();
    let (objects, kustomize_yaml) = result
        .and_then(|(objects, yaml)| {
            refuse_sops_metadata(&objects)?;
            Ok((objects, yaml))
        })
        .map_err(|errors| crate::error::redact(errors, &secrets))?;
    // Ids are printed everywhere; sops encrypts them too unless told otherwise, so
    // redacting them would only garble plans.
    let shown: BTreeSet<&str> = objects
        .iter()
        .flat_map(|o| {
            let api_version = match &o.content {
                Content::Manifest(m) => m.get("apiVersion").and_then(Value::as_str),
                _ => None,
            };
            [
                Some(o.id.kind.as_str()),
                Some(o.id.name.as_str()),
                Some(o.id.namespace.as_str()),
                api_version,
            ]
        })
        .flatten()
        .collect();
    secrets.forget_values(&shown);
    Ok(Rendered {
        objects,
        secrets,
        kustomize_yaml,
    })
}

/// Refuses objects that still hold SOPS metadata: they would be applied encrypted.
pub(crate) fn refuse_sops_metadata(objects: &[Object]) -> Result<(), RenderErrors> {
    let errors: Vec<RenderError> = objects
        .iter()
        .filter(|o| matches!(&o.content, Content::Manifest(m) if m.get("sops").is_some_and(Value::is_object)))
        .map(|o| RenderError {
            origin: o.origin.clone(),
            kind: K::SopsMetadataLeft(o.id.to_string()),
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(RenderErrors(errors))
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
