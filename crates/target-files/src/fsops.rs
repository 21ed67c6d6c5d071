//! The only code that writes or deletes under the root. Blocking; called from
//! `spawn_blocking`. Every operation goes through directory descriptors opened with
//! `O_NOFOLLOW` from the root down (see [`locate`]), never through a path string.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{AtFlags, Mode, OFlags, fchmod, fsync, openat, renameat, unlinkat};
use rustix::io::Errno;

use crate::paths::{Live, Located, TMP_PREFIX, locate};

/// The mode of a written file: as `git checkout` leaves it under umask 022, or, for a
/// file that came out of SOPS decryption, `decrypted_mode` (plus owner execute for an
/// executable one).
pub(crate) fn mode_for(executable: bool, decrypted_mode: Option<u32>) -> u32 {
    match (decrypted_mode, executable) {
        (Some(mode), true) => mode | 0o100,
        (Some(mode), false) => mode,
        (None, true) => 0o755,
        (None, false) => 0o644,
    }
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
/// or a file is refused. A symlink standing at the destination itself is replaced, not
/// followed.
pub(crate) fn write_file(
    root: &Path,
    name: &str,
    data: &[u8],
    mode: u32,
) -> Result<Written, String> {
    let loc = locate(root, name, true).map_err(|r| r.0)?;
    match loc.live {
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
    let Some(parent) = loc.parent() else {
        return Err(format!(
            "{name:?}: parent directory missing after creating it"
        ));
    };
    let (tmp_name, tmp) = create_temp(parent, mode)
        .map_err(|e| format!("{name:?}: cannot create a temp file next to it: {e}"))?;
    let result = (|| -> io::Result<()> {
        let mut f = &tmp;
        f.write_all(data)?;
        // The umask may have taken bits away at creation; set the mode exactly.
        fchmod(&tmp, Mode::from_raw_mode(mode))?;
        tmp.sync_all()?;
        renameat(parent, tmp_name.as_str(), parent, loc.file_name())?;
        fsync(parent)?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = unlinkat(parent, tmp_name.as_str(), AtFlags::empty());
        return Err(format!("{name:?}: write failed: {e}"));
    }
    Ok(match loc.live {
        Live::Absent => Written::Created,
        _ => Written::Replaced,
    })
}

/// A new temp file in `dir`, created exclusively (never opening an existing file or
/// following a symlink planted at its name).
fn create_temp(dir: &OwnedFd, mode: u32) -> io::Result<(String, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    for _ in 0..16 {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{TMP_PREFIX}{}-{n}-{nanos:08x}", std::process::id());
        match openat(
            dir,
            name.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        ) {
            Ok(fd) => return Ok((name, File::from(fd))),
            Err(Errno::EXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::Error::other("no free temp file name after 16 tries"))
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
    let loc = locate(root, name, false).map_err(|r| r.0)?;
    let outcome = match (loc.live, loc.parent()) {
        (Live::Absent, _) | (_, None) => Deleted::AlreadyAbsent,
        (Live::Dir, _) => {
            return Err(format!(
                "{name:?} is a directory now, not the file driftless wrote; left alone"
            ));
        }
        (Live::File { .. } | Live::Symlink | Live::Other, Some(parent)) => {
            match unlinkat(parent, loc.file_name(), AtFlags::empty()) {
                Ok(()) => {
                    // Durability of the unlink; best effort, the file is gone either way.
                    if let Err(e) = fsync(parent) {
                        tracing::debug!(name, error = %e, "fsync after delete failed");
                    }
                    Deleted::Removed
                }
                Err(Errno::NOENT) => Deleted::AlreadyAbsent,
                Err(e) => return Err(format!("{name:?}: cannot delete: {}", io::Error::from(e))),
            }
        }
    };
    remove_empty_parents(&loc);
    Ok(outcome)
}

/// Removes the file's parent directories that are empty now, deepest first; stops at
/// the first that is not (it holds something else, managed or not). Never the root.
fn remove_empty_parents(loc: &Located) {
    // dirs[i] is the directory holding parts[i]; dirs[0] is the root.
    for i in (1..loc.dirs.len()).rev() {
        // AT_REMOVEDIR only removes an empty directory.
        if unlinkat(
            &loc.dirs[i - 1],
            loc.parts[i - 1].as_str(),
            AtFlags::REMOVEDIR,
        )
        .is_err()
        {
            break;
        }
    }
}
