//! The only code that writes or deletes under the root. Blocking; called from
//! `spawn_blocking`.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::paths::{Live, TMP_PREFIX, components, resolve};

/// The mode of a written file, as `git checkout` leaves it under umask 022.
pub(crate) fn mode_for(executable: bool) -> u32 {
    if executable { 0o755 } else { 0o644 }
}

/// What a write did.
pub(crate) enum Written {
    Created,
    Replaced,
}

/// Writes `data` to `name` under `root` atomically: a temp file in the same directory,
/// written, chmodded, fsynced, renamed over the destination, then the directory fsynced.
/// A reader sees the old file or the new one, never a mix; a crash leaves at worst a
/// stray temp file. Missing parent directories are created; a parent that is a symlink
/// or a file is refused.
pub(crate) fn write_file(
    root: &Path,
    name: &str,
    data: &[u8],
    executable: bool,
) -> Result<Written, String> {
    let (path, live) = resolve(root, name).map_err(|r| r.0)?;
    match live {
        Live::Dir => {
            return Err(format!(
                "{name:?} is a directory; remove it to let driftless write the file"
            ));
        }
        Live::Other => {
            return Err(format!(
                "{name:?} is a socket, FIFO or device; not replacing it"
            ));
        }
        Live::Absent | Live::File { .. } | Live::Symlink => {}
    }
    let parts = components(name).map_err(|r| r.0)?;
    let dir =
        ensure_parents(root, &parts[..parts.len() - 1]).map_err(|e| format!("{name:?}: {e}"))?;
    let mode = mode_for(executable);
    let tmp = create_temp(&dir, mode).map_err(|e| {
        format!(
            "{name:?}: cannot create a temp file in {}: {e}",
            dir.display()
        )
    })?;
    let result = (|| {
        let mut f = &tmp.1;
        f.write_all(data)?;
        // The umask may have taken bits away at creation; set the mode exactly.
        f.set_permissions(Permissions::from_mode(mode))?;
        f.sync_all()?;
        fs::rename(&tmp.0, &path)?;
        sync_dir(&dir)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp.0);
        return Err(format!("{name:?}: write failed: {e}"));
    }
    Ok(match live {
        Live::Absent => Written::Created,
        _ => Written::Replaced,
    })
}

/// Creates the parent directories of a file under `root` as needed (each new one
/// fsynced into its parent), refusing symlinks and non-directories on the way.
fn ensure_parents(root: &Path, parents: &[&str]) -> io::Result<std::path::PathBuf> {
    let mut dir = root.to_path_buf();
    for part in parents {
        let parent = dir.clone();
        dir.push(part);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(io::Error::other(format!(
                    "{} is a symlink; refusing to write through it",
                    dir.display()
                )));
            }
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(io::Error::other(format!(
                    "{} is not a directory",
                    dir.display()
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match fs::create_dir(&dir) {
                    Ok(()) => sync_dir(&parent)?,
                    // Created concurrently by someone else: check it again next time round.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        if !fs::symlink_metadata(&dir)?.is_dir() {
                            return Err(io::Error::other(format!(
                                "{} is not a directory",
                                dir.display()
                            )));
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(dir)
}

/// A new temp file in `dir`, created exclusively (never opening an existing file or
/// following a symlink planted at its name).
fn create_temp(dir: &Path, mode: u32) -> io::Result<(std::path::PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    for _ in 0..16 {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(
            "{TMP_PREFIX}{}-{n}-{nanos:08x}",
            std::process::id()
        ));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("no free temp file name after 16 tries"))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// What a delete did.
pub(crate) enum Deleted {
    Removed,
    AlreadyAbsent,
}

/// Deletes the managed file `name` (or a symlink standing at its place, never what it
/// points to), then removes parent directories that became empty, deepest first,
/// stopping at the first that is not empty and never removing the root.
pub(crate) fn delete_file(root: &Path, name: &str) -> Result<Deleted, String> {
    let (path, live) = resolve(root, name).map_err(|r| r.0)?;
    let outcome = match live {
        Live::Absent => Deleted::AlreadyAbsent,
        Live::Dir => {
            return Err(format!(
                "{name:?} is a directory now, not the file driftless wrote; left alone"
            ));
        }
        Live::File { .. } | Live::Symlink | Live::Other => match fs::remove_file(&path) {
            Ok(()) => Deleted::Removed,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Deleted::AlreadyAbsent,
            Err(e) => return Err(format!("{name:?}: cannot delete: {e}")),
        },
    };
    let parts = components(name).map_err(|r| r.0)?;
    let mut dir = path.clone();
    dir.pop();
    if matches!(outcome, Deleted::Removed) {
        // Durability of the unlink; best effort, the file is gone either way.
        if let Err(e) = sync_dir(&dir) {
            tracing::debug!(dir = %dir.display(), error = %e, "fsync after delete failed");
        }
    }
    for _ in 1..parts.len() {
        // remove_dir only removes an empty directory: a directory holding anything
        // unmanaged (or another managed file) stays.
        match fs::remove_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(_) => break,
        }
        dir.pop();
    }
    Ok(outcome)
}
