//! Why a render failed: every problem found, each with the place it was found.

use std::fmt;

use driftless_model::Origin;

/// One problem, at `file:line:col` (or just `file` when no position applies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderError {
    /// Where the problem is; line and column are 1-based, 0 when unknown.
    pub origin: Origin,
    /// What the problem is.
    pub kind: RenderErrorKind,
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.origin.file.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{}: {}", self.origin, self.kind)
        }
    }
}

impl std::error::Error for RenderError {}

/// The kinds of render problems. None is retried: the revision is refused as a whole
/// until its content changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderErrorKind {
    /// The YAML or JSON text does not parse.
    #[error("syntax error: {0}")]
    Syntax(String),
    /// A document is not a mapping (it is a list or a scalar).
    #[error("document is a {0}; expected a mapping with apiVersion, kind and metadata.name")]
    NotAMapping(&'static str),
    /// A required field is absent (or null).
    #[error("missing required field {0}")]
    MissingField(&'static str),
    /// A field has the wrong type or an empty value.
    #[error("{field} must be {expected}, found {found}")]
    WrongType {
        /// Dotted path of the field, e.g. `metadata.name`.
        field: String,
        /// What was expected, e.g. `a non-empty string`.
        expected: &'static str,
        /// What was found, e.g. `an integer`.
        found: String,
    },
    /// The same object (group, kind, namespace, name) is defined twice.
    #[error("duplicate object {id}; first defined at {other}")]
    Duplicate {
        /// The object's id as `namespace/Kind.group/name`.
        id: String,
        /// Where the first definition is.
        other: Origin,
    },
    /// A mapping repeats a key.
    #[error("duplicate mapping key {0:?}")]
    DuplicateKey(String),
    /// A mapping key has no JSON form (null, a mapping, a list, an integer above int64).
    #[error("mapping key {0} cannot become a JSON object key")]
    UnsupportedKey(String),
    /// A scalar has no JSON form or contradicts its tag (`.inf`, `!!int abc`).
    #[error("{0}")]
    InvalidValue(String),
    /// A raw U+0085, U+2028 or U+2029: a line break to YAML 1.1 (kubectl) but not to
    /// YAML 1.2, so the file would mean different things to different readers.
    #[error(
        "contains U+{:04X}, a line break in YAML 1.1 (kubectl) but not in YAML 1.2; write it escaped in a double-quoted string",
        *.0 as u32
    )]
    AmbiguousBreak(char),
    /// A `<<` merge key whose value is not a mapping or a list of mappings.
    #[error("merge key << needs a mapping or a list of mappings, found {0}")]
    BadMerge(&'static str),
    /// The file is larger than [`crate::Limits::max_file_bytes`].
    #[error("file is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// The file's size.
        size: u64,
        /// The limit in force.
        limit: u64,
    },
    /// A file holds more documents than [`crate::Limits::max_documents`].
    #[error("more than {0} documents in one file")]
    TooManyDocuments(usize),
    /// The path renders to more objects than [`crate::Limits::max_total_objects`].
    #[error("more than {0} objects in total")]
    TooManyObjects(usize),
    /// Aliases expand to more nodes than [`crate::Limits::max_alias_expansion`].
    #[error("aliases expand to more than {0} nodes (an alias bomb?)")]
    AliasBomb(usize),
    /// Aliases copy more than [`crate::Limits::max_total_bytes`] bytes of text.
    #[error("aliases copy more than {0} bytes (an alias bomb?)")]
    AliasBytes(u64),
    /// Nesting deeper than [`crate::Limits::max_depth`].
    #[error("nesting deeper than {0} levels")]
    TooDeep(usize),
    /// The render read more than [`crate::Limits::max_total_bytes`], all files together.
    #[error("the render reads more than {0} bytes in total (limit max_total_bytes)")]
    TooManyBytes(u64),
    /// A bug: the render panicked. The message is the panic's; nothing of the revision
    /// is applied, and other renders are unaffected.
    #[error("internal error: {0}")]
    Internal(String),
    /// The requested path is absolute, contains `..`, or a tree entry has an unsafe name.
    #[error("path {path:?} refused: {reason}")]
    PathEscapes {
        /// The path as given.
        path: String,
        /// Why it was refused.
        reason: String,
    },
    /// A symlink points outside the rendered path, or is absolute.
    #[error("symlink to {target:?} leaves {root:?}")]
    SymlinkEscapes {
        /// The link's target as stored.
        target: String,
        /// The rendered path (empty for the repository root).
        root: String,
    },
    /// A symlink points at nothing.
    #[error("symlink to {0:?} points at nothing")]
    DanglingSymlink(String),
    /// A symlink points at a directory or a submodule, which are not followed.
    #[error("symlink to {0:?} points at a directory; only links to files are rendered")]
    SymlinkToDir(String),
    /// Symlinks point at each other, or chain more than 40 times.
    #[error("too many levels of symlinks")]
    SymlinkLoop,
    /// A Git submodule: its contents are not part of the tree.
    #[error("is a Git submodule; submodule contents are not rendered")]
    Submodule,
    /// The tree could not be read here.
    #[error("cannot read: {0}")]
    Unreadable(String),
    /// The file is not UTF-8 text.
    #[error("not valid UTF-8 text: {0}")]
    NotUtf8(String),
    /// The path holds no manifest file at all.
    #[error("no *.yaml, *.yml or *.json files under {0:?}")]
    NoManifests(String),
    /// Files mode: the path holds no file at all (pruning everything is never implied).
    #[error("no files under {0:?}")]
    NoFiles(String),
    /// A kustomization failed to build; the message names its file and field.
    #[error("{0}")]
    Kustomize(String),
    /// A SOPS-encrypted file could not be decrypted: no key configured, no matching key,
    /// tampered with, or encrypted only for key types driftless does not support. The
    /// message says what to do and never holds a value or a key.
    #[error("{0}")]
    Decrypt(String),
    /// An object still holds SOPS metadata after decryption, so it would be applied
    /// encrypted; it is refused instead.
    #[error(
        "object {0} carries a top-level `sops` key (SOPS metadata) that decryption did not remove; encrypt the whole file with sops (metadata in its first document) so that driftless decrypts it, or remove the key"
    )]
    SopsMetadataLeft(String),
    /// Nothing exists at the requested path.
    #[error("path {0:?} does not exist")]
    PathNotFound(String),
    /// A directory was needed.
    #[error("path {0:?} is not a directory")]
    NotADirectory(String),
}

/// Every problem a render found, in path order. Display prints one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderErrors(pub Vec<RenderError>);

impl fmt::Display for RenderErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RenderErrors {}

impl RenderError {
    pub(crate) fn at(file: &str, line: usize, column: usize, kind: RenderErrorKind) -> Self {
        Self {
            origin: Origin {
                file: file.to_owned(),
                line,
                column,
            },
            kind,
        }
    }

    pub(crate) fn in_file(file: &str, kind: RenderErrorKind) -> Self {
        Self::at(file, 0, 0, kind)
    }
}

/// Replaces decrypted values in every message of `errors` (a YAML error may quote the
/// text it stopped at).
pub(crate) fn redact(errors: RenderErrors, secrets: &crate::SecretSet) -> RenderErrors {
    if secrets.value_count() == 0 {
        return errors;
    }
    use RenderErrorKind as K;
    let r = |s: String| secrets.redact(&s);
    RenderErrors(
        errors
            .0
            .into_iter()
            .map(|e| RenderError {
                origin: e.origin,
                kind: match e.kind {
                    K::Syntax(s) => K::Syntax(r(s)),
                    K::WrongType {
                        field,
                        expected,
                        found,
                    } => K::WrongType {
                        field: r(field),
                        expected,
                        found: r(found),
                    },
                    K::Duplicate { id, other } => K::Duplicate { id: r(id), other },
                    K::DuplicateKey(s) => K::DuplicateKey(r(s)),
                    K::UnsupportedKey(s) => K::UnsupportedKey(r(s)),
                    K::InvalidValue(s) => K::InvalidValue(r(s)),
                    K::PathEscapes { path, reason } => K::PathEscapes {
                        path: r(path),
                        reason,
                    },
                    K::Unreadable(s) => K::Unreadable(r(s)),
                    K::NotUtf8(s) => K::NotUtf8(r(s)),
                    K::Kustomize(s) => K::Kustomize(r(s)),
                    K::Decrypt(s) => K::Decrypt(r(s)),
                    K::Internal(s) => K::Internal(r(s)),
                    K::SopsMetadataLeft(s) => K::SopsMetadataLeft(r(s)),
                    other => other,
                },
            })
            .collect(),
    )
}
