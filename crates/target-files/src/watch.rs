//! Drift watch: an inotify watcher on the root, mapping events back to managed files.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use driftless_model::{DriftEvent, DriftNotifier, ObjectRef, TargetError};
use notify::{EventKind, RecursiveMode, Watcher};

use crate::paths::TMP_PREFIX;

/// Keeps the watcher alive; dropping it stops the watch.
pub(crate) struct WatchGuard {
    _watcher: notify::RecommendedWatcher,
}

pub(crate) fn start(
    root: PathBuf,
    ids: BTreeSet<ObjectRef>,
    notify: DriftNotifier,
) -> Result<WatchGuard, TargetError> {
    let ids: BTreeSet<ObjectRef> = ids.into_iter().filter(ObjectRef::is_file).collect();
    let handler_root = root.clone();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        match res {
            Ok(event) => {
                if matches!(event.kind, EventKind::Access(_)) {
                    return;
                }
                for path in &event.paths {
                    for id in affected(&handler_root, &ids, path) {
                        notify(DriftEvent { id });
                    }
                }
            }
            Err(e) => {
                // Overflow or a lost watch: say so; the engine's periodic full check
                // still catches any drift missed here.
                tracing::warn!(root = %handler_root.display(), error = %e, "files watch error");
            }
        }
    })
    .map_err(|e| watch_error(&root, e))?;
    watcher
        .watch(&root, RecursiveMode::Recursive)
        .map_err(|e| watch_error(&root, e))?;
    Ok(WatchGuard { _watcher: watcher })
}

fn watch_error(root: &Path, e: notify::Error) -> TargetError {
    TargetError::Unavailable(format!("cannot watch {}: {e}", root.display()))
}

/// The managed ids an event on `path` may have changed: the file itself, or every
/// managed file under it when `path` is a directory (moved or deleted whole).
/// Temp files of our own atomic writes and paths outside the root map to nothing.
fn affected(root: &Path, ids: &BTreeSet<ObjectRef>, path: &Path) -> Vec<ObjectRef> {
    let Ok(rel) = path.strip_prefix(root) else {
        return Vec::new();
    };
    let Some(rel) = rel.to_str() else {
        return Vec::new();
    };
    if rel
        .rsplit('/')
        .next()
        .is_some_and(|last| last.starts_with(TMP_PREFIX))
    {
        return Vec::new();
    }
    if rel.is_empty() {
        return ids.iter().cloned().collect();
    }
    let exact = ObjectRef::file(rel);
    if ids.contains(&exact) {
        return vec![exact];
    }
    // Everything named `rel/...`: '/' + 1 == '0', so the range [rel/, rel0) is exactly that.
    let lo = ObjectRef::file(format!("{rel}/"));
    let hi = ObjectRef::file(format!("{rel}0"));
    ids.range((Bound::Included(lo), Bound::Excluded(hi)))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_map_to_managed_files_only() {
        let root = Path::new("/srv/web");
        let ids: BTreeSet<_> = [
            "a.conf",
            "dir/b.conf",
            "dir/sub/c.conf",
            "dir0/x",
            "other/d",
        ]
        .into_iter()
        .map(ObjectRef::file)
        .collect();
        let names = |p: &str| -> Vec<String> {
            affected(root, &ids, Path::new(p))
                .into_iter()
                .map(|id| id.name)
                .collect()
        };
        assert_eq!(names("/srv/web/a.conf"), ["a.conf"]);
        assert_eq!(names("/srv/web/dir"), ["dir/b.conf", "dir/sub/c.conf"]);
        assert_eq!(names("/srv/web/dir/sub"), ["dir/sub/c.conf"]);
        assert!(names("/srv/web/unmanaged.txt").is_empty());
        assert!(names("/srv/web/dir/.driftless-tmp-1-2-3").is_empty());
        assert!(names("/srv/other/a.conf").is_empty());
        assert_eq!(names("/srv/web").len(), 5);
    }
}
