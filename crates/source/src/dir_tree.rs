//! A local folder as a read-only tree, confined to its root.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use driftless_model::{EntryKind, Tree, TreeEntry, TreeError, normalize_rel_path};

use crate::error::SourceError;

/// A local directory as a [`Tree`]. Paths are normalized and may not leave the root;
/// symlinks are reported as [`EntryKind::Symlink`] and never followed, also not as a
/// parent component of a path.
///
/// # Caveats
/// Confinement is checked per call with `lstat` on every component and an identity
/// check of the opened file; it assumes nobody swaps directories for symlinks inside the
/// root while a read is running.
#[derive(Debug, Clone)]
pub struct DirTree {
    root: PathBuf,
}

enum Lookup {
    Found(PathBuf, fs::Metadata),
    Missing,
    UnderNonDir,
}

impl DirTree {
    /// A tree rooted at `root`, which must be an existing directory.
    pub fn new(root: PathBuf) -> Result<Self, SourceError> {
        let canonical = fs::canonicalize(&root).map_err(|e| SourceError::io(&root, e))?;
        let meta = fs::metadata(&canonical).map_err(|e| SourceError::io(&canonical, e))?;
        if !meta.is_dir() {
            return Err(SourceError::io(
                root,
                std::io::Error::new(
                    std::io::ErrorKind::NotADirectory,
                    "not a directory; a local source must be a folder",
                ),
            ));
        }
        Ok(DirTree { root: canonical })
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Walks `path` component by component without following any symlink.
    fn lookup(&self, path: &str) -> Result<Lookup, TreeError> {
        let mut current = self.root.clone();
        let mut meta = fs::symlink_metadata(&current).map_err(|e| io(path, e))?;
        for component in path.split('/').filter(|c| !c.is_empty()) {
            if !meta.is_dir() {
                return Ok(Lookup::UnderNonDir);
            }
            current.push(component);
            meta = match fs::symlink_metadata(&current) {
                Ok(meta) => meta,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    return Ok(Lookup::Missing);
                }
                Err(err) => return Err(io(path, err)),
            };
        }
        Ok(Lookup::Found(current, meta))
    }

    fn entry_kind(
        path: &str,
        full: &Path,
        meta: &fs::Metadata,
    ) -> Result<Option<EntryKind>, TreeError> {
        let kind = meta.file_type();
        Ok(if kind.is_symlink() {
            let target = fs::read_link(full).map_err(|e| io(path, e))?;
            Some(EntryKind::Symlink {
                target: target.to_string_lossy().into_owned(),
            })
        } else if kind.is_dir() {
            Some(EntryKind::Dir)
        } else if kind.is_file() {
            Some(EntryKind::File {
                executable: meta.permissions().mode() & 0o111 != 0,
                size: meta.len(),
            })
        } else {
            // Sockets, fifos and devices have no place in a desired state.
            None
        })
    }
}

fn io(path: &str, err: std::io::Error) -> TreeError {
    TreeError::Backend {
        path: path.to_owned(),
        source: Box::new(err),
    }
}

fn wrong(path: &str, reason: &'static str) -> TreeError {
    TreeError::WrongKind {
        path: path.to_owned(),
        reason,
    }
}

impl Tree for DirTree {
    fn list(&self, dir: &str) -> Result<Vec<TreeEntry>, TreeError> {
        let dir = normalize_rel_path(dir)?;
        let full = match self.lookup(&dir)? {
            Lookup::Found(full, meta) if meta.is_dir() => full,
            Lookup::Found(_, meta) if meta.file_type().is_symlink() => {
                return Err(wrong(&dir, "is a symlink; it is not followed"));
            }
            Lookup::Found(..) => return Err(wrong(&dir, "not a directory")),
            Lookup::UnderNonDir => return Err(wrong(&dir, "a parent is not a directory")),
            Lookup::Missing => return Err(TreeError::NotFound(dir)),
        };
        let mut entries = Vec::new();
        for entry in fs::read_dir(&full).map_err(|e| io(&dir, e))? {
            let entry = entry.map_err(|e| io(&dir, e))?;
            let Ok(name) = entry.file_name().into_string() else {
                tracing::warn!(dir = %full.display(), name = ?entry.file_name(), "skipping a file name that is not UTF-8");
                continue;
            };
            let path = if dir.is_empty() {
                name.clone()
            } else {
                format!("{dir}/{name}")
            };
            let meta = fs::symlink_metadata(entry.path()).map_err(|e| io(&path, e))?;
            if let Some(kind) = Self::entry_kind(&path, &entry.path(), &meta)? {
                entries.push(TreeEntry { name, kind });
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    fn read(&self, path: &str) -> Result<Vec<u8>, TreeError> {
        let path = normalize_rel_path(path)?;
        let (full, meta) = match self.lookup(&path)? {
            Lookup::Found(full, meta) => (full, meta),
            Lookup::UnderNonDir => return Err(wrong(&path, "a parent is not a directory")),
            Lookup::Missing => return Err(TreeError::NotFound(path)),
        };
        let kind = meta.file_type();
        if kind.is_symlink() {
            return Err(wrong(
                &path,
                "is a symlink; resolve its target and read that",
            ));
        }
        if kind.is_dir() {
            return Err(wrong(&path, "is a directory, not a file"));
        }
        if !kind.is_file() {
            return Err(wrong(&path, "is not a regular file"));
        }
        let bytes = fs::read(&full).map_err(|e| io(&path, e))?;
        // The file we read must be the one we checked: a symlink swapped in meanwhile
        // would show up as another inode.
        let after = fs::symlink_metadata(&full).map_err(|e| io(&path, e))?;
        if after.ino() != meta.ino() || after.dev() != meta.dev() || !after.file_type().is_file() {
            return Err(wrong(&path, "changed while being read"));
        }
        Ok(bytes)
    }

    fn kind(&self, path: &str) -> Result<Option<EntryKind>, TreeError> {
        let path = normalize_rel_path(path)?;
        match self.lookup(&path)? {
            Lookup::Found(full, meta) => Self::entry_kind(&path, &full, &meta),
            Lookup::Missing | Lookup::UnderNonDir => Ok(None),
        }
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}
