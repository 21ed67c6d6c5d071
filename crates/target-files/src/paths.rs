//! Keeping every path inside the root: names are checked as text first, then each
//! directory on the way is checked on disk without following symlinks.

use std::io;
use std::path::{Path, PathBuf};

/// Prefix of the temporary files an atomic write leaves for a moment next to its
/// destination. The watch ignores these; desired files may not use the prefix.
pub(crate) const TMP_PREFIX: &str = ".driftless-tmp-";

/// Why a path was refused. The message names the path and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused(pub String);

/// Checks a file id's name as text and returns its components: relative, normalized
/// (no empty, `.` or `..` components), no NUL or backslash, not a reserved name.
pub(crate) fn components(name: &str) -> Result<Vec<&str>, Refused> {
    let refuse = |why: &str| Err(Refused(format!("{name:?}: refused: {why}")));
    if name.is_empty() {
        return refuse("empty path");
    }
    if name.starts_with('/') {
        return refuse("absolute path; expected a path relative to the target root");
    }
    if name.contains('\0') || name.contains('\\') {
        return refuse("contains a NUL byte or a backslash");
    }
    let parts: Vec<&str> = name.split('/').collect();
    if parts.contains(&"..") {
        return refuse("`..` would leave the target root");
    }
    if parts.iter().any(|p| p.is_empty() || *p == ".") {
        return refuse("not a normalized path (empty or `.` component)");
    }
    if parts.iter().any(|p| p.starts_with(TMP_PREFIX)) {
        return refuse(&format!(
            "names starting with {TMP_PREFIX} are reserved for driftless"
        ));
    }
    Ok(parts)
}

/// What lies at a path inside the root, found without following symlinks.
#[derive(Debug)]
pub(crate) enum Live {
    /// Nothing (possibly because a parent directory does not exist yet).
    Absent,
    /// A regular file.
    File { executable: bool },
    /// A symbolic link (never followed).
    Symlink,
    /// A directory.
    Dir,
    /// A socket, FIFO or device.
    Other,
}

/// Resolves `name` under `root`: checks the name, then every parent directory on disk.
/// A parent that is a symlink (wherever it points) or not a directory is refused.
/// Returns the full path and what is there now.
pub(crate) fn resolve(root: &Path, name: &str) -> Result<(PathBuf, Live), Refused> {
    let parts = components(name)?;
    let (file, parents) = parts
        .split_last()
        .expect("components() never returns empty");
    let mut path = root.to_path_buf();
    for (i, part) in parents.iter().enumerate() {
        path.push(part);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(Refused(format!(
                    "{name:?}: refused: parent directory {:?} is a symlink; driftless never writes through symlinks",
                    parts[..=i].join("/")
                )));
            }
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(Refused(format!(
                    "{name:?}: refused: {:?} is a file, not a directory",
                    parts[..=i].join("/")
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                path.extend(&parents[i + 1..]);
                path.push(file);
                return Ok((path, Live::Absent));
            }
            Err(e) => {
                return Err(Refused(format!(
                    "{name:?}: cannot inspect {:?}: {e}",
                    parts[..=i].join("/")
                )));
            }
        }
    }
    path.push(file);
    let live = match std::fs::symlink_metadata(&path) {
        Ok(meta) => {
            let ft = meta.file_type();
            if ft.is_symlink() {
                Live::Symlink
            } else if ft.is_dir() {
                Live::Dir
            } else if ft.is_file() {
                use std::os::unix::fs::PermissionsExt;
                Live::File {
                    executable: meta.permissions().mode() & 0o111 != 0,
                }
            } else {
                Live::Other
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Live::Absent,
        Err(e) => return Err(Refused(format!("{name:?}: cannot inspect: {e}"))),
    };
    Ok((path, live))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_as_text() {
        assert_eq!(
            components("a/b/c.conf").expect("fine"),
            ["a", "b", "c.conf"]
        );
        let msg = |n| components(n).expect_err("refused").0;
        assert_eq!(msg(""), "\"\": refused: empty path");
        assert_eq!(
            msg("/etc/passwd"),
            "\"/etc/passwd\": refused: absolute path; expected a path relative to the target root"
        );
        assert_eq!(
            msg("a/../../x"),
            "\"a/../../x\": refused: `..` would leave the target root"
        );
        assert_eq!(
            msg("a/../b"),
            "\"a/../b\": refused: `..` would leave the target root"
        );
        assert_eq!(
            msg("a//b"),
            "\"a//b\": refused: not a normalized path (empty or `.` component)"
        );
        assert!(msg("./a").contains("not a normalized path"));
        assert!(msg("a\\b").contains("backslash"));
        assert!(msg("d/.driftless-tmp-x").contains("reserved for driftless"));
    }
}
