//! Drift watch: an inotify watcher on the root, mapping events back to managed files.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use driftless_model::{DriftEvent, DriftNotifier, ObjectRef, TargetError};
use notify::{EventKind, RecursiveMode, Watcher};

use crate::paths::TMP_PREFIX;

/// One inotify instance for the whole process, shared by every files target: the kernel
/// allows only a few instances per user (128 by default), far fewer than the apps one
/// driftless may run. Each target registers a route (root, managed ids, notifier).
///
/// Two locks on purpose: notify calls the event handler on its own thread and `watch` /
/// `unwatch` wait for that thread, so the handler's lock (`ROUTES`) must never be held
/// while the watcher's lock (`WATCHER`) calls into notify.
static ROUTES: Mutex<BTreeMap<u64, Route>> = Mutex::new(BTreeMap::new());
static WATCHER: Mutex<Option<SharedWatcher>> = Mutex::new(None);
static NEXT_ROUTE: AtomicU64 = AtomicU64::new(1);

struct Route {
    root: PathBuf,
    ids: BTreeSet<ObjectRef>,
    notify: DriftNotifier,
}

struct SharedWatcher {
    watcher: notify::RecommendedWatcher,
    /// How many routes watch each root; a root is unwatched when its count drops to 0.
    roots: HashMap<PathBuf, usize>,
}

/// Keeps a route alive; dropping it stops watching for that target.
pub(crate) struct WatchGuard {
    route: u64,
    root: PathBuf,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        lock(&ROUTES).remove(&self.route);
        let mut shared = lock(&WATCHER);
        if let Some(shared) = shared.as_mut()
            && let Some(count) = shared.roots.get_mut(&self.root)
        {
            *count -= 1;
            if *count == 0 {
                shared.roots.remove(&self.root);
                let _ = shared.watcher.unwatch(&self.root);
            }
        }
    }
}

fn lock<T>(mutex: &'static Mutex<T>) -> std::sync::MutexGuard<'static, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn handle(res: notify::Result<notify::Event>) {
    match res {
        Ok(event) => {
            if matches!(event.kind, EventKind::Access(_)) {
                return;
            }
            let routes = lock(&ROUTES);
            for route in routes.values() {
                for path in &event.paths {
                    for id in affected(&route.root, &route.ids, path) {
                        (route.notify)(DriftEvent { id });
                    }
                }
            }
        }
        Err(e) => {
            // Overflow or a lost watch: say so; the engine's periodic full check still
            // catches any drift missed here.
            tracing::warn!(error = %e, "files watch error");
        }
    }
}

pub(crate) fn start(
    root: PathBuf,
    ids: BTreeSet<ObjectRef>,
    notify: DriftNotifier,
) -> Result<WatchGuard, TargetError> {
    let ids: BTreeSet<ObjectRef> = ids.into_iter().filter(ObjectRef::is_file).collect();
    {
        let mut shared = lock(&WATCHER);
        if shared.is_none() {
            let watcher = notify::recommended_watcher(handle).map_err(|e| watch_error(&root, e))?;
            *shared = Some(SharedWatcher {
                watcher,
                roots: HashMap::new(),
            });
        }
        let shared = shared.as_mut().expect("created above");
        let count = shared.roots.entry(root.clone()).or_insert(0);
        if *count == 0 {
            shared
                .watcher
                .watch(&root, RecursiveMode::Recursive)
                .map_err(|e| watch_error(&root, e))?;
        }
        *count += 1;
    }
    let route = NEXT_ROUTE.fetch_add(1, Ordering::Relaxed);
    lock(&ROUTES).insert(
        route,
        Route {
            root: root.clone(),
            ids,
            notify,
        },
    );
    Ok(WatchGuard { route, root })
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
