//! Test support: a local directory as a `Tree`, and the real kustomize binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use driftless_model::{EntryKind, Tree, TreeEntry, TreeError};

/// A directory on disk, read without following symlinks.
pub struct DirTree(pub PathBuf);

impl DirTree {
    fn full(&self, p: &str) -> PathBuf {
        if p.is_empty() {
            self.0.clone()
        } else {
            self.0.join(p)
        }
    }
}

fn backend(path: &str, e: std::io::Error) -> TreeError {
    if e.kind() == std::io::ErrorKind::NotFound {
        TreeError::NotFound(path.to_owned())
    } else {
        TreeError::Backend {
            path: path.to_owned(),
            source: Box::new(e),
        }
    }
}

fn kind_of(m: &std::fs::Metadata, full: &Path) -> EntryKind {
    if m.file_type().is_symlink() {
        let target = std::fs::read_link(full)
            .map(|t| t.to_string_lossy().into_owned())
            .unwrap_or_default();
        EntryKind::Symlink { target }
    } else if m.is_dir() {
        EntryKind::Dir
    } else {
        EntryKind::File {
            executable: false,
            size: m.len(),
        }
    }
}

impl Tree for DirTree {
    fn list(&self, dir: &str) -> Result<Vec<TreeEntry>, TreeError> {
        let full = self.full(dir);
        let mut out = Vec::new();
        for e in std::fs::read_dir(&full).map_err(|e| backend(dir, e))? {
            let e = e.map_err(|e| backend(dir, e))?;
            let m = std::fs::symlink_metadata(e.path()).map_err(|e| backend(dir, e))?;
            out.push(TreeEntry {
                name: e.file_name().to_string_lossy().into_owned(),
                kind: kind_of(&m, &e.path()),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
    fn read(&self, path: &str) -> Result<Vec<u8>, TreeError> {
        std::fs::read(self.full(path)).map_err(|e| backend(path, e))
    }
    fn kind(&self, path: &str) -> Result<Option<EntryKind>, TreeError> {
        let full = self.full(path);
        match std::fs::symlink_metadata(&full) {
            Ok(m) => Ok(Some(kind_of(&m, &full))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(backend(path, e)),
        }
    }
    fn describe(&self) -> String {
        self.0.display().to_string()
    }
}

/// The real kustomize binary: `$DRIFTLESS_TESTENV_BIN/kustomize`, else `$DRIFTLESS_KUSTOMIZE`.
pub fn kustomize_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("DRIFTLESS_TESTENV_BIN") {
        let p = Path::new(&dir).join("kustomize");
        if p.exists() {
            return p;
        }
    }
    if let Some(p) = std::env::var_os("DRIFTLESS_KUSTOMIZE") {
        return PathBuf::from(p);
    }
    panic!(
        "the real kustomize is needed: set DRIFTLESS_TESTENV_BIN (testenv bin dir) or DRIFTLESS_KUSTOMIZE (path to the binary){}",
        if std::env::var_os("CI").is_some() {
            " — CI must provide it"
        } else {
            ""
        }
    );
}
