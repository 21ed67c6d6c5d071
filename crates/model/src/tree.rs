//! A read-only view of a directory tree: a Git revision or a local folder.

/// What a tree entry is. Symlinks are reported, never followed, so that callers decide
/// (with [`crate::join_inside`]) whether the target stays inside the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file; `executable` mirrors Git's 100755 mode.
    File { executable: bool, size: u64 },
    /// A directory (Git tree).
    Dir,
    /// A symbolic link and the path it points to, as stored.
    Symlink { target: String },
    /// A Git submodule (gitlink). Its contents are not part of the tree.
    Submodule,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    /// The entry's name within its directory (no slashes).
    pub name: String,
    pub kind: EntryKind,
}

/// Why reading a tree failed.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// Nothing exists at that path.
    #[error("{0}: no such file or directory")]
    NotFound(String),
    /// A directory was expected and something else was found, or the reverse.
    #[error("{path}: {reason}")]
    WrongKind { path: String, reason: &'static str },
    /// The path was refused before any lookup.
    #[error(transparent)]
    Path(#[from] crate::PathError),
    /// The file is larger than the caller allows.
    #[error("{path}: file is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { path: String, size: u64, limit: u64 },
    /// The backing store failed (object database, file system).
    #[error("{path}: {source}")]
    Backend {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// A read-only tree of files addressed by normalized relative paths (`a/b.yaml`, the
/// root is `""`). Implementations: a Git revision read from the object database, and a
/// local directory. Neither follows symlinks on its own.
pub trait Tree: Send + Sync {
    /// Lists a directory's entries sorted by name (byte order).
    fn list(&self, dir: &str) -> Result<Vec<TreeEntry>, TreeError>;
    /// Reads a regular file's bytes.
    fn read(&self, path: &str) -> Result<Vec<u8>, TreeError>;
    /// The kind of the entry at `path`, `None` when absent. The root is always `Dir`.
    fn kind(&self, path: &str) -> Result<Option<EntryKind>, TreeError>;
    /// A short human description for messages, e.g. `git 3f2a1bc` or `/srv/deploy`.
    fn describe(&self) -> String;
}
