//! Walking a tree below a path: refusing unsafe paths, following symlinks only while they
//! stay inside the path, listing files in byte order of their full path.

use driftless_model::{EntryKind, PathError, Tree, join_inside};

use crate::Limits;
use crate::error::{RenderError, RenderErrorKind as K};

/// One regular file (or a symlink to one) found under the root.
#[derive(Debug, Clone)]
pub(crate) struct FileEntry {
    /// The entry's path in the tree (the link's own path for a symlink).
    pub path: String,
    /// The path relative to the root.
    pub rel: String,
    /// Where the bytes are read from (the final target for a symlink).
    pub read_path: String,
    pub executable: bool,
    pub size: u64,
}

/// What the root path is.
pub(crate) enum Root {
    Dir(String),
    File(String),
}

/// Checks and normalizes the requested path, then looks it up.
pub(crate) fn root(tree: &dyn Tree, path: &str) -> Result<Root, RenderError> {
    let refuse = |reason: &str| {
        RenderError::in_file(
            path,
            K::PathEscapes {
                path: path.to_owned(),
                reason: reason.to_owned(),
            },
        )
    };
    if path.starts_with('/') {
        return Err(refuse(
            "absolute paths are not allowed; give a path relative to the repository root",
        ));
    }
    if path.contains('\0') || path.contains('\\') {
        return Err(refuse("contains a NUL byte or a backslash"));
    }
    if path.split('/').any(|c| c == "..") {
        return Err(refuse("`..` components are not allowed"));
    }
    let norm: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let norm = norm.join("/");
    match tree.kind(&norm) {
        Ok(Some(EntryKind::Dir)) => Ok(Root::Dir(norm)),
        Ok(Some(EntryKind::File { .. })) => Ok(Root::File(norm)),
        Ok(Some(EntryKind::Symlink { .. })) => {
            Err(RenderError::in_file(&norm, K::NotADirectory(norm.clone())))
        }
        Ok(Some(EntryKind::Submodule)) => Err(RenderError::in_file(&norm, K::Submodule)),
        Ok(None) => Err(RenderError::in_file(&norm, K::PathNotFound(norm.clone()))),
        Err(e) => Err(RenderError::in_file(&norm, K::Unreadable(e.to_string()))),
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

fn rel_to<'a>(root: &str, path: &'a str) -> &'a str {
    if root.is_empty() {
        path
    } else {
        path.strip_prefix(root)
            .and_then(|p| p.strip_prefix('/'))
            .unwrap_or(path)
    }
}

fn inside(root: &str, path: &str) -> bool {
    root.is_empty() || path == root || path.strip_prefix(root).is_some_and(|p| p.starts_with('/'))
}

fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// Lists every file below directory `root` whose name `want` accepts, sorted by path.
/// Problems go to `errors`; the walk continues past them.
pub(crate) fn walk(
    tree: &dyn Tree,
    root: &str,
    limits: &Limits,
    want: &dyn Fn(&str) -> bool,
    errors: &mut Vec<RenderError>,
) -> Vec<FileEntry> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        let entries = match tree.list(&dir) {
            Ok(e) => e,
            Err(e) => {
                errors.push(RenderError::in_file(&dir, K::Unreadable(e.to_string())));
                continue;
            }
        };
        for entry in entries {
            let path = join(&dir, &entry.name);
            if entry.name.is_empty()
                || entry.name == "."
                || entry.name == ".."
                || entry.name.contains(['/', '\\', '\0'])
            {
                errors.push(RenderError::in_file(
                    &path,
                    K::PathEscapes {
                        path: entry.name.clone(),
                        reason: "a tree entry with this name could leave the directory".to_owned(),
                    },
                ));
                continue;
            }
            let file = match entry.kind {
                EntryKind::Dir => {
                    dirs.push(path);
                    continue;
                }
                EntryKind::Submodule => {
                    errors.push(RenderError::in_file(&path, K::Submodule));
                    continue;
                }
                _ if !want(&entry.name) => continue,
                EntryKind::File { executable, size } => FileEntry {
                    rel: rel_to(root, &path).to_owned(),
                    read_path: path.clone(),
                    path,
                    executable,
                    size,
                },
                EntryKind::Symlink { target } => match follow(tree, root, &path, &target) {
                    Ok((read_path, executable, size)) => FileEntry {
                        rel: rel_to(root, &path).to_owned(),
                        read_path,
                        path,
                        executable,
                        size,
                    },
                    Err(kind) => {
                        errors.push(RenderError::in_file(&path, kind));
                        continue;
                    }
                },
            };
            out.push(file);
            if out.len() > limits.max_total_objects {
                errors.push(RenderError::in_file(
                    root,
                    K::TooManyObjects(limits.max_total_objects),
                ));
                return out;
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Follows the symlink at `link` (pointing at `target`) to a regular file inside `root`.
fn follow(tree: &dyn Tree, root: &str, link: &str, target: &str) -> Result<(String, bool, u64), K> {
    let mut link = link.to_owned();
    let mut target = target.to_owned();
    let original = target.clone();
    for _ in 0..40 {
        let escapes = || K::SymlinkEscapes {
            target: original.clone(),
            root: root.to_owned(),
        };
        let resolved = match join_inside(parent(&link), &target) {
            Ok(p) => p,
            Err(PathError::Absolute(_) | PathError::EscapesRoot(_)) => return Err(escapes()),
            Err(e) => return Err(K::Unreadable(e.to_string())),
        };
        if !inside(root, &resolved) {
            return Err(escapes());
        }
        match tree.kind(&resolved) {
            Ok(Some(EntryKind::File { executable, size })) => {
                return Ok((resolved, executable, size));
            }
            Ok(Some(EntryKind::Symlink { target: next })) => {
                link = resolved;
                target = next;
            }
            Ok(Some(EntryKind::Dir | EntryKind::Submodule)) => {
                return Err(K::SymlinkToDir(original));
            }
            Ok(None) => return Err(K::DanglingSymlink(original)),
            Err(e) => return Err(K::Unreadable(e.to_string())),
        }
    }
    Err(K::SymlinkLoop)
}

/// Reads a file's bytes within the size limit.
pub(crate) fn read(
    tree: &dyn Tree,
    entry: &FileEntry,
    limits: &Limits,
) -> Result<Vec<u8>, RenderError> {
    let too_large = |size: u64| {
        RenderError::in_file(
            &entry.path,
            K::TooLarge {
                size,
                limit: limits.max_file_bytes,
            },
        )
    };
    if entry.size > limits.max_file_bytes {
        return Err(too_large(entry.size));
    }
    let data = tree.read(&entry.read_path).map_err(|e| {
        use driftless_model::TreeError;
        match &e {
            TreeError::Backend { source, .. } => {
                if let Some(d) = source.downcast_ref::<crate::decrypt::DecryptError>() {
                    return RenderError::at(
                        &entry.path,
                        d.line,
                        d.col,
                        K::Decrypt(d.message.clone()),
                    );
                }
                if let Some(crate::decrypt::TotalBytes(limit)) = source.downcast_ref() {
                    return RenderError::in_file(&entry.path, K::TooManyBytes(*limit));
                }
            }
            TreeError::TooLarge { size, limit, .. } => {
                return RenderError::in_file(
                    &entry.path,
                    K::TooLarge {
                        size: *size,
                        limit: *limit,
                    },
                );
            }
            _ => {}
        }
        RenderError::in_file(&entry.path, K::Unreadable(e.to_string()))
    })?;
    if data.len() as u64 > limits.max_file_bytes {
        return Err(too_large(data.len() as u64));
    }
    Ok(data)
}
