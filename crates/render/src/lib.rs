//! Render: turns a read-only tree at a path into the objects of a desired set — plain
//! YAML/JSON manifests ([`render_manifests`]), a kustomization ([`render_source`]), or
//! host files byte for byte ([`render_files`]) — and refuses the whole revision if
//! anything is invalid, listing every problem with file:line:col ([`RenderErrors`]).
//! Also prints objects the way kubectl does ([`to_yaml`], [`to_json`]).
//!
//! SOPS: every file read while rendering goes through [`DecryptingTree`], so
//! SOPS-encrypted manifests, kustomize generator inputs and host files render decrypted
//! when a [`Decryption`] is given ([`render_source_with`], [`render_files_with`]), and
//! fail the render when none is: an encrypted file is never rendered as it is. What was
//! decrypted comes back as a [`SecretSet`] for redaction.
//!
//! Pure: files in, objects out. It reads only through [`driftless_model::Tree`] and must
//! not touch the network, the clock, the local file system or live state; it never logs,
//! and its errors never carry a decrypted value (they are redacted with the
//! [`SecretSet`]).
//!
//! # Guarantees
//! - Deterministic: files in byte order of their path, documents in file order.
//! - Bounded: file size, bytes read per render, documents per file, total objects,
//!   nesting depth and copies (aliases, kustomize patches) are capped by [`Limits`], the
//!   same figures for plain YAML/JSON, kustomize and SOPS; hostile input fails fast with
//!   a message naming the limit. Every recursion over parsed input is bounded by
//!   [`Limits::max_depth`], whose default keeps it inside a 2 MiB thread stack.
//! - Contained: a panic inside a render (a bug) becomes that render's error
//!   ([`RenderErrorKind::Internal`]), never an unwind into the caller.
//! - YAML means what `kubectl apply -f` would send: YAML 1.1 scalars as go-yaml v2
//!   resolves them (see the `resolve` module), keys made strings like sigs.k8s.io/yaml,
//!   `<<` merges applied in place as go-yaml v2 does. `tests/kubectl_oracle.rs` checks
//!   this against sigs.k8s.io/yaml itself.
//! - A key repeated in one mapping is an error (as with `YAMLToJSONStrict`), never a
//!   silent "last one wins".
//!
//! # Caveats
//! - Objects from a JSON file carry their document's position, not each item's.
//! - Integral floats (`1.0`, `1e+3`) become integers, as Go's JSON encoder writes them.
//! - YAML columns count characters; JSON error columns (from serde_json) count bytes.
//! - Memory while rendering is about 10 times the YAML's size for typical manifests and
//!   up to ~100 times for dense flow lists of numbers (a positioned tree, then JSON
//!   values); anchors are shared, so only counted alias copies add to it.

mod decrypt;
mod emit;
mod error;
mod files;
mod json;
mod kustomization;
mod manifests;
mod resolve;
mod walk;
mod yaml;

use std::panic::{AssertUnwindSafe, catch_unwind};

use driftless_model::{Object, Tree};

pub use decrypt::{DecryptingTree, Decryption, SecretSet};
/// Caps that keep hostile input from exhausting memory, stack or time; the same figures
/// bind every parser of a render (plain YAML/JSON here, kustomize, SOPS).
pub use driftless_model::Limits;
pub use driftless_sops::{Identities, KeySources, SopsError};
pub use emit::{to_json, to_yaml};
pub use error::{RenderError, RenderErrorKind, RenderErrors};
pub use kustomization::{
    KustomizeOutput, is_kustomization, render_kustomization, render_source, render_source_with,
};

/// A render's result with what it decrypted.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The objects, as the plain entry points return them.
    pub objects: Vec<Object>,
    /// Every decrypted value and file; empty when nothing was encrypted.
    pub secrets: SecretSet,
    /// For a kustomization: the exact text `kustomize build` prints (decrypted values
    /// included). `None` for plain manifests and files.
    pub kustomize_yaml: Option<String>,
}

/// Plain YAML/JSON: every `*.yaml`, `*.yml` and `*.json` under `path` (recursive, sorted
/// by path; `path` may also name one file), multi-document YAML, and any kind ending in
/// `List` that has `items` flattened like kubectl does.
///
/// Each object must be a mapping with a non-empty string `apiVersion`, `kind` and
/// `metadata.name` (and a string `metadata.namespace` if present); the same (group,
/// kind, namespace, name) twice is an error naming both places. Empty and comment-only
/// documents are skipped. Symlinks are followed only to files inside `path`.
///
/// The id of each object: group is `apiVersion` before `/` (empty for `v1`), namespace
/// is `metadata.namespace` or empty. Its origin is where its document (or list item) starts.
///
/// A SOPS-encrypted file is an error here (no key is given); use [`render_source_with`]
/// to decrypt.
///
/// # Errors
/// Any problem fails the whole render; every problem found is listed.
pub fn render_manifests(
    tree: &dyn Tree,
    path: &str,
    limits: &Limits,
) -> Result<Vec<Object>, RenderErrors> {
    guarded(path, || {
        let tree = DecryptingTree::with_limits(tree, None, limits);
        let objects = manifests::render(&tree, path, limits)?;
        kustomization::refuse_sops_metadata(&objects)?;
        Ok(objects)
    })
}

/// Runs one render so that a panic anywhere inside it (render, kustomize, sops) becomes
/// that render's error instead of unwinding into the caller, where it would take down
/// whatever else the thread was doing. Stack overflows cannot be caught; the depth limit
/// is what keeps every recursion short of one.
pub(crate) fn guarded<T>(
    path: &str,
    render: impl FnOnce() -> Result<T, RenderErrors>,
) -> Result<T, RenderErrors> {
    catch_unwind(AssertUnwindSafe(render)).unwrap_or_else(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        Err(RenderErrors(vec![RenderError::in_file(
            path,
            RenderErrorKind::Internal(what),
        )]))
    })
}

/// Files mode, for the host-files target: every file under directory `path` byte for
/// byte as [`driftless_model::Content::File`] with Git's executable bit, id
/// [`driftless_model::ObjectRef::file`] of its path relative to `path`.
///
/// A symlink whose target stays inside `path` renders as its target's content; one that
/// leaves `path`, is absolute, dangles or points at a directory is an error, as are
/// submodules and paths with `..`.
///
/// A SOPS-encrypted file is an error here (no key is given); use [`render_files_with`] to
/// decrypt.
///
/// # Errors
/// Any problem fails the whole render; every problem found is listed.
pub fn render_files(
    tree: &dyn Tree,
    path: &str,
    limits: &Limits,
) -> Result<Vec<Object>, RenderErrors> {
    render_files_with(tree, path, limits, None).map(|r| r.objects)
}

/// [`render_files`] with SOPS decryption: a file carrying SOPS metadata renders as its
/// plaintext (exactly what `sops -d` prints), and its name is a secret path in the
/// returned [`SecretSet`] (so its diff must be [`driftless_diff::secret_file_diff`]).
/// Other files render byte for byte.
///
/// # Errors
/// Any problem fails the whole render; every problem found is listed. An encrypted file
/// without a `decryption`, with no matching key, or that was tampered with is an error
/// naming the file and what to do. Error messages are redacted with the secrets
/// decrypted so far.
pub fn render_files_with(
    tree: &dyn Tree,
    path: &str,
    limits: &Limits,
    decryption: Option<&Decryption>,
) -> Result<Rendered, RenderErrors> {
    guarded(path, || render_files_inner(tree, path, limits, decryption))
}

fn render_files_inner(
    tree: &dyn Tree,
    path: &str,
    limits: &Limits,
    decryption: Option<&Decryption>,
) -> Result<Rendered, RenderErrors> {
    let tree = DecryptingTree::with_limits(tree, decryption, limits);
    let result = files::render(&tree, path, limits);
    let mut secrets = tree.secrets();
    match result {
        Ok((objects, decrypted)) => {
            for name in &decrypted {
                secrets.add_file_name(name);
            }
            Ok(Rendered {
                objects,
                secrets,
                kustomize_yaml: None,
            })
        }
        Err(errors) => Err(error::redact(errors, &secrets)),
    }
}
