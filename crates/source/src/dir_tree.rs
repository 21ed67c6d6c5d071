//! A local folder as a read-only tree, confined to its root.

use std::fs;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use driftless_model::{EntryKind, Tree, TreeEntry, TreeError, normalize_rel_path};
use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, Stat, fstat, openat, readlinkat, statat};
use rustix::io::Errno;

use crate::error::SourceError;

/// A local directory as a [`Tree`]. Paths are normalized and may not leave the root;
/// symlinks are reported as [`EntryKind::Symlink`] and never followed, also not as a
/// parent component of a path.
///
/// # Guarantees
/// Every call walks from the root one directory at a time through opened directory
/// handles (`openat` with `O_NOFOLLOW`), and lists, inspects and opens relative to the
/// open parent. A directory swapped for a symlink at any moment, even in the middle of
/// a read, cannot redirect it outside the root: the walk refuses the symlink, or keeps
/// the directory it already opened.
///
/// # Caveats
/// The root itself is trusted: its path is resolved once, at [`DirTree::new`].
#[derive(Debug, Clone)]
pub struct DirTree {
    root: PathBuf,
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Where a walk to a path's parent ended.
enum Walk {
    /// The open parent directory and the entry's name in it (`None` for the root).
    Parent(OwnedFd, Option<String>),
    Missing,
    /// A component on the way is a symlink (never followed).
    UnderSymlink,
    /// A component on the way is a file or something else that is not a directory.
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

    /// Opens the parent directory of `path` by handles from the root, never following a
    /// symlink.
    fn walk(&self, path: &str) -> Result<Walk, TreeError> {
        let mut dir =
            openat(CWD, &self.root, DIR_FLAGS, Mode::empty()).map_err(|e| io(path, e.into()))?;
        let mut parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        let Some(last) = parts.pop() else {
            return Ok(Walk::Parent(dir, None));
        };
        for part in parts {
            dir = match openat(&dir, part, DIR_FLAGS, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => return Ok(Walk::Missing),
                // O_NOFOLLOW on a symlink fails with ELOOP; ENOTDIR for anything else.
                Err(Errno::LOOP) => return Ok(Walk::UnderSymlink),
                Err(Errno::NOTDIR) => {
                    return Ok(match statat(&dir, part, AtFlags::SYMLINK_NOFOLLOW) {
                        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                            Walk::UnderSymlink
                        }
                        _ => Walk::UnderNonDir,
                    });
                }
                Err(e) => return Err(io(path, e.into())),
            };
        }
        Ok(Walk::Parent(dir, Some(last.to_owned())))
    }

    /// What `name` in the open `dir` is, without following it.
    fn entry_kind(
        path: &str,
        dir: &OwnedFd,
        name: &str,
        st: &Stat,
    ) -> Result<Option<EntryKind>, TreeError> {
        Ok(match FileType::from_raw_mode(st.st_mode) {
            FileType::Symlink => {
                let target = readlinkat(dir, name, Vec::new()).map_err(|e| io(path, e.into()))?;
                Some(EntryKind::Symlink {
                    target: target.to_string_lossy().into_owned(),
                })
            }
            FileType::Directory => Some(EntryKind::Dir),
            FileType::RegularFile => Some(EntryKind::File {
                executable: st.st_mode & 0o111 != 0,
                size: u64::try_from(st.st_size).unwrap_or(0),
            }),
            // Sockets, fifos and devices have no place in a desired state.
            _ => None,
        })
    }

    /// Opens the directory at `dir` itself by handles.
    fn open_dir(&self, dir: &str) -> Result<OwnedFd, TreeError> {
        match self.walk(dir)? {
            Walk::Parent(fd, None) => Ok(fd),
            Walk::Parent(parent, Some(name)) => {
                match openat(&parent, name.as_str(), DIR_FLAGS, Mode::empty()) {
                    Ok(fd) => Ok(fd),
                    Err(Errno::NOENT) => Err(TreeError::NotFound(dir.to_owned())),
                    Err(Errno::LOOP) => Err(wrong(dir, "is a symlink; it is not followed")),
                    Err(Errno::NOTDIR) => {
                        match statat(&parent, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                                Err(wrong(dir, "is a symlink; it is not followed"))
                            }
                            _ => Err(wrong(dir, "not a directory")),
                        }
                    }
                    Err(e) => Err(io(dir, e.into())),
                }
            }
            Walk::Missing => Err(TreeError::NotFound(dir.to_owned())),
            Walk::UnderSymlink => Err(wrong(
                dir,
                "a parent is not a directory (a symlink, never followed)",
            )),
            Walk::UnderNonDir => Err(wrong(dir, "a parent is not a directory")),
        }
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
        let fd = self.open_dir(&dir)?;
        let mut entries = Vec::new();
        for entry in rustix::fs::Dir::read_from(&fd).map_err(|e| io(&dir, e.into()))? {
            let entry = entry.map_err(|e| io(&dir, e.into()))?;
            let Ok(name) = entry.file_name().to_str().map(str::to_owned) else {
                tracing::warn!(dir = %dir, name = ?entry.file_name(), "skipping a file name that is not UTF-8");
                continue;
            };
            if name == "." || name == ".." {
                continue;
            }
            let path = if dir.is_empty() {
                name.clone()
            } else {
                format!("{dir}/{name}")
            };
            let st = match statat(&fd, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                // Removed since it was listed.
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(io(&path, e.into())),
            };
            if let Some(kind) = Self::entry_kind(&path, &fd, &name, &st)? {
                entries.push(TreeEntry { name, kind });
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    fn read(&self, path: &str) -> Result<Vec<u8>, TreeError> {
        let path = normalize_rel_path(path)?;
        let (parent, name) = match self.walk(&path)? {
            Walk::Parent(_, None) => return Err(wrong(&path, "is a directory, not a file")),
            Walk::Parent(parent, Some(name)) => (parent, name),
            Walk::Missing => return Err(TreeError::NotFound(path)),
            Walk::UnderSymlink => {
                return Err(wrong(
                    &path,
                    "a parent is not a directory (a symlink, never followed)",
                ));
            }
            Walk::UnderNonDir => return Err(wrong(&path, "a parent is not a directory")),
        };
        // NONBLOCK: a FIFO swapped in must not hang the render.
        let fd = match openat(
            &parent,
            name.as_str(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Err(TreeError::NotFound(path)),
            Err(Errno::LOOP) => {
                return Err(wrong(
                    &path,
                    "is a symlink; resolve its target and read that",
                ));
            }
            Err(e) => return Err(io(&path, e.into())),
        };
        let st = fstat(&fd).map_err(|e| io(&path, e.into()))?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => {}
            FileType::Directory => return Err(wrong(&path, "is a directory, not a file")),
            _ => return Err(wrong(&path, "is not a regular file")),
        }
        let mut bytes = Vec::new();
        fs::File::from(fd)
            .read_to_end(&mut bytes)
            .map_err(|e| io(&path, e))?;
        Ok(bytes)
    }

    fn kind(&self, path: &str) -> Result<Option<EntryKind>, TreeError> {
        let path = normalize_rel_path(path)?;
        match self.walk(&path)? {
            Walk::Parent(_, None) => Ok(Some(EntryKind::Dir)),
            Walk::Parent(parent, Some(name)) => {
                match statat(&parent, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => Self::entry_kind(&path, &parent, &name, &st),
                    Err(Errno::NOENT) => Ok(None),
                    Err(e) => Err(io(&path, e.into())),
                }
            }
            Walk::Missing | Walk::UnderSymlink | Walk::UnderNonDir => Ok(None),
        }
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}
