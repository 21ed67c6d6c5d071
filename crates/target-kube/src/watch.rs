//! Drift watch: one label-selected watcher per managed kind and namespace, reporting
//! changes of managed ids. The guard aborts every watcher when dropped.

use std::collections::BTreeMap;
use std::time::Duration;

use driftless_model::{DriftEvent, DriftNotifier, ObjectRef, TargetError};
use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long `watch` waits for every watcher's initial list.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// What one watcher covers.
pub struct Watch {
    pub api: Api<DynamicObject>,
    pub group: String,
    pub kind: String,
    /// Empty for cluster-scoped kinds.
    pub namespace: String,
    /// Managed ids as the cluster names them → as the caller gave them (which may lack
    /// the defaulted namespace); events are reported with the caller's.
    pub ids: BTreeMap<ObjectRef, ObjectRef>,
}

/// Keeps the watchers running; dropping it stops them.
pub struct WatchGuard {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts the watchers and returns once each has listed its objects, so that any change
/// made after this returns is reported.
pub async fn start(
    watches: Vec<Watch>,
    selector: &str,
    notify: DriftNotifier,
) -> Result<WatchGuard, TargetError> {
    let mut guard = WatchGuard { tasks: Vec::new() };
    let mut ready = Vec::new();
    for w in watches {
        let (tx, rx) = oneshot::channel();
        let what = if w.namespace.is_empty() {
            format!("{} objects", w.kind)
        } else {
            format!("{} objects in namespace {}", w.kind, w.namespace)
        };
        ready.push((what, rx));
        let notify = notify.clone();
        let config = watcher::Config::default().labels(selector);
        guard.tasks.push(tokio::spawn(run(w, config, notify, tx)));
    }
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    for (what, rx) in ready {
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => {
                return Err(TargetError::Unavailable(format!(
                    "watch of {what} did not start within {} s",
                    READY_TIMEOUT.as_secs()
                )));
            }
        }
    }
    Ok(guard)
}

async fn run(w: Watch, config: watcher::Config, notify: DriftNotifier, ready: oneshot::Sender<()>) {
    let mut ready = Some(ready);
    let stream = watcher::watcher(w.api, config).default_backoff();
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::InitDone) => {
                if let Some(tx) = ready.take() {
                    let _ = tx.send(());
                } else if let Some(given) = w.ids.values().next() {
                    // A re-list after the watch broke off: changes made while it was down
                    // came back as a snapshot, not as events. Ask for one full look.
                    tracing::debug!(kind = %w.kind, "watch re-listed");
                    notify(DriftEvent { id: given.clone() });
                }
            }
            Ok(Event::Apply(obj) | Event::Delete(obj)) => {
                let id = ObjectRef {
                    group: w.group.clone(),
                    kind: w.kind.clone(),
                    namespace: obj.metadata.namespace.clone().unwrap_or_default(),
                    name: obj.metadata.name.clone().unwrap_or_default(),
                };
                if let Some(given) = w.ids.get(&id) {
                    tracing::debug!(%id, "live change");
                    notify(DriftEvent { id: given.clone() });
                }
            }
            Ok(Event::Init | Event::InitApply(_)) => {}
            Err(e) => tracing::warn!(kind = %w.kind, error = %e, "watch error; retrying"),
        }
    }
}
