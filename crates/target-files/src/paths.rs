//! Keeping every path inside the root: names are checked as text first, then each
//! directory on the way is checked on disk without following symlinks.

use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, fstat, fsync, mkdirat, openat, statat};
use rustix::io::Errno;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Live {
    /// Nothing (possibly because a parent directory does not exist yet).
    Absent,
    /// A regular file; `mode` holds its permission bits.
    File { executable: bool, mode: u32 },
    /// A symbolic link (never followed).
    Symlink,
    /// A directory.
    Dir,
    /// A socket, FIFO or device.
    Other,
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// A file's place under the root, held by open directory descriptors so that nothing
/// renamed or replaced along the way afterwards can redirect an operation.
pub(crate) struct Located {
    /// The components of the name.
    pub parts: Vec<String>,
    /// Open directories: the root, then each parent that exists, in order. Complete
    /// (one per component) when the file's parent directory exists.
    pub dirs: Vec<OwnedFd>,
    /// What is at the path now.
    pub live: Live,
}

impl Located {
    /// The open parent directory, when it exists.
    pub fn parent(&self) -> Option<&OwnedFd> {
        (self.dirs.len() == self.parts.len())
            .then(|| self.dirs.last().expect("root is always open"))
    }

    /// The file's own name within its parent.
    pub fn file_name(&self) -> &str {
        self.parts.last().expect("components() never returns empty")
    }

    /// Reads the regular file at this place, without following a symlink and without
    /// blocking on a FIFO swapped in since it was located.
    pub fn read(&self) -> io::Result<Vec<u8>> {
        let parent = self
            .parent()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let fd = openat(
            parent,
            self.file_name(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        if FileType::from_raw_mode(fstat(&fd)?.st_mode) != FileType::RegularFile {
            return Err(io::Error::other("no longer a regular file"));
        }
        let mut data = Vec::new();
        std::fs::File::from(fd).read_to_end(&mut data)?;
        Ok(data)
    }
}

/// Opens `root` (trusted: the configured target root).
fn open_root(root: &Path) -> io::Result<OwnedFd> {
    Ok(openat(
        CWD,
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// What a name inside `dir` is, without following it.
pub(crate) fn live_at(dir: &OwnedFd, name: &str) -> io::Result<Live> {
    match statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => Live::File {
                executable: st.st_mode & 0o111 != 0,
                mode: st.st_mode & 0o7777,
            },
            FileType::Symlink => Live::Symlink,
            FileType::Directory => Live::Dir,
            _ => Live::Other,
        }),
        Err(Errno::NOENT) => Ok(Live::Absent),
        Err(e) => Err(e.into()),
    }
}

/// Locates `name` under `root`: checks the name, then walks down from the root one
/// directory at a time with `O_NOFOLLOW`, so a parent that is a symlink (wherever it
/// points) or not a directory is refused. With `create_parents`, missing directories
/// are created (mode 0777 less the umask, each fsynced into its parent).
pub(crate) fn locate(root: &Path, name: &str, create_parents: bool) -> Result<Located, Refused> {
    let parts: Vec<String> = components(name)?.into_iter().map(str::to_owned).collect();
    let root_fd = open_root(root).map_err(|e| {
        Refused(format!(
            "{name:?}: cannot open the target root {}: {e}",
            root.display()
        ))
    })?;
    let mut dirs = vec![root_fd];
    for i in 0..parts.len() - 1 {
        let part = parts[i].as_str();
        let prefix = || parts[..=i].join("/");
        let dir = dirs.last().expect("root is always open");
        let opened = match openat(dir, part, DIR_FLAGS, Mode::empty()) {
            Err(Errno::NOENT) if create_parents => {
                match mkdirat(dir, part, Mode::from_raw_mode(0o777)) {
                    Ok(()) | Err(Errno::EXIST) => {
                        fsync(dir).map_err(|e| {
                            Refused(format!("{name:?}: fsync of a new directory: {e}"))
                        })?;
                        openat(dir, part, DIR_FLAGS, Mode::empty())
                    }
                    Err(e) => Err(e),
                }
            }
            other => other,
        };
        match opened {
            Ok(fd) => dirs.push(fd),
            Err(Errno::NOENT) if create_parents => {
                return Err(Refused(format!(
                    "{name:?}: directory {:?} vanished while being created; another process is changing the target root",
                    prefix()
                )));
            }
            Err(Errno::NOENT) => {
                return Ok(Located {
                    parts,
                    dirs,
                    live: Live::Absent,
                });
            }
            Err(e) => {
                let why = match live_at(dir, part) {
                    Ok(Live::Symlink) => format!(
                        "{name:?}: refused: parent directory {:?} is a symlink; driftless never writes through symlinks",
                        prefix()
                    ),
                    Ok(Live::File { .. } | Live::Other) => {
                        format!(
                            "{name:?}: refused: {:?} is a file, not a directory",
                            prefix()
                        )
                    }
                    _ => format!(
                        "{name:?}: cannot open directory {:?}: {}",
                        prefix(),
                        io::Error::from(e)
                    ),
                };
                return Err(Refused(why));
            }
        }
    }
    let parent = dirs.last().expect("root is always open");
    let file = parts.last().expect("components() never returns empty");
    let live =
        live_at(parent, file).map_err(|e| Refused(format!("{name:?}: cannot inspect: {e}")))?;
    Ok(Located { parts, dirs, live })
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
