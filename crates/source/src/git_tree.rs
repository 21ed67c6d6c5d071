//! A commit's tree read straight from the object database, without a checkout.

use driftless_model::{EntryKind, Tree, TreeEntry, TreeError, normalize_rel_path};
use gix::ObjectId;
use gix::objs::tree::EntryKind as GitKind;

/// The read-only tree of one commit. `Send + Sync`: it keeps gix's thread-safe
/// repository and opens a cheap thread-local handle per call.
#[derive(Clone)]
pub struct GitTree {
    repo: gix::ThreadSafeRepository,
    commit: ObjectId,
    tree: ObjectId,
}

/// What a path names inside the tree.
enum Lookup {
    Found {
        kind: GitKind,
        id: ObjectId,
    },
    Missing,
    /// A parent component exists but is not a directory.
    UnderNonDir,
}

impl std::fmt::Debug for GitTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitTree")
            .field("commit", &self.commit)
            .field("tree", &self.tree)
            .finish()
    }
}

impl GitTree {
    pub(crate) fn new(repo: gix::ThreadSafeRepository, commit: ObjectId, tree: ObjectId) -> Self {
        GitTree { repo, commit, tree }
    }

    /// The commit this tree belongs to (full hex id).
    pub fn revision(&self) -> String {
        self.commit.to_string()
    }

    fn local(&self) -> gix::Repository {
        let mut repo = self.repo.to_thread_local();
        repo.object_cache_size_if_unset(4 * 1024 * 1024);
        repo
    }

    fn lookup(&self, repo: &gix::Repository, path: &str) -> Result<Lookup, TreeError> {
        let mut current = Lookup::Found {
            kind: GitKind::Tree,
            id: self.tree,
        };
        for component in path.split('/').filter(|c| !c.is_empty()) {
            let dir = match current {
                Lookup::Found {
                    kind: GitKind::Tree,
                    id,
                } => id,
                Lookup::Found { .. } => return Ok(Lookup::UnderNonDir),
                other => return Ok(other),
            };
            let tree = repo.find_tree(dir).map_err(|err| backend(path, err))?;
            let decoded = tree.decode().map_err(|err| backend(path, err))?;
            current = match decoded
                .entries
                .iter()
                .find(|e| e.filename == component.as_bytes())
            {
                Some(entry) => Lookup::Found {
                    kind: entry.mode.kind(),
                    id: entry.oid.to_owned(),
                },
                None => Lookup::Missing,
            };
        }
        Ok(current)
    }

    fn entry_kind(
        &self,
        repo: &gix::Repository,
        path: &str,
        kind: GitKind,
        id: ObjectId,
    ) -> Result<EntryKind, TreeError> {
        Ok(match kind {
            GitKind::Tree => EntryKind::Dir,
            GitKind::Blob | GitKind::BlobExecutable => EntryKind::File {
                executable: kind == GitKind::BlobExecutable,
                size: repo
                    .find_header(id)
                    .map_err(|err| backend(path, err))?
                    .size(),
            },
            GitKind::Link => {
                let blob = repo.find_blob(id).map_err(|err| backend(path, err))?;
                EntryKind::Symlink {
                    target: String::from_utf8_lossy(&blob.data).into_owned(),
                }
            }
            GitKind::Commit => EntryKind::Submodule,
        })
    }
}

fn backend(path: &str, err: gix::Error) -> TreeError {
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

impl Tree for GitTree {
    fn list(&self, dir: &str) -> Result<Vec<TreeEntry>, TreeError> {
        let dir = normalize_rel_path(dir)?;
        let repo = self.local();
        let id = match self.lookup(&repo, &dir)? {
            Lookup::Found {
                kind: GitKind::Tree,
                id,
            } => id,
            Lookup::Found { .. } => return Err(wrong(&dir, "not a directory")),
            Lookup::UnderNonDir => return Err(wrong(&dir, "a parent is not a directory")),
            Lookup::Missing => return Err(TreeError::NotFound(dir)),
        };
        let tree = repo.find_tree(id).map_err(|err| backend(&dir, err))?;
        let decoded = tree.decode().map_err(|err| backend(&dir, err))?;
        let mut entries = Vec::with_capacity(decoded.entries.len());
        for entry in &decoded.entries {
            let name = String::from_utf8_lossy(entry.filename).into_owned();
            let path = if dir.is_empty() {
                name.clone()
            } else {
                format!("{dir}/{name}")
            };
            let kind = self.entry_kind(&repo, &path, entry.mode.kind(), entry.oid.to_owned())?;
            entries.push(TreeEntry { name, kind });
        }
        // Git orders directories as if their names ended in '/'; the trait wants plain
        // byte order.
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    fn read(&self, path: &str) -> Result<Vec<u8>, TreeError> {
        let path = normalize_rel_path(path)?;
        let repo = self.local();
        match self.lookup(&repo, &path)? {
            Lookup::Found {
                kind: GitKind::Blob | GitKind::BlobExecutable,
                id,
            } => {
                let mut blob = repo.find_blob(id).map_err(|err| backend(&path, err))?;
                let mut data = blob.take_data();
                // gix hands over a reused buffer sized for the largest object read before
                // (often a big tree); without this, 100,000 small files held ~3.5 GB.
                data.shrink_to_fit();
                Ok(data)
            }
            Lookup::Found {
                kind: GitKind::Tree,
                ..
            } => Err(wrong(&path, "is a directory, not a file")),
            Lookup::Found {
                kind: GitKind::Link,
                ..
            } => Err(wrong(
                &path,
                "is a symlink; resolve its target and read that",
            )),
            Lookup::Found {
                kind: GitKind::Commit,
                ..
            } => Err(wrong(
                &path,
                "is a submodule; its files are not part of this repository",
            )),
            Lookup::UnderNonDir => Err(wrong(&path, "a parent is not a directory")),
            Lookup::Missing => Err(TreeError::NotFound(path)),
        }
    }

    fn kind(&self, path: &str) -> Result<Option<EntryKind>, TreeError> {
        let path = normalize_rel_path(path)?;
        if path.is_empty() {
            return Ok(Some(EntryKind::Dir));
        }
        let repo = self.local();
        match self.lookup(&repo, &path)? {
            Lookup::Found { kind, id } => self.entry_kind(&repo, &path, kind, id).map(Some),
            Lookup::Missing | Lookup::UnderNonDir => Ok(None),
        }
    }

    fn describe(&self) -> String {
        format!("git {}", &self.commit.to_string()[..7])
    }
}
