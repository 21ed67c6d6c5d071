//! Drift watch. Watchers are shared: one per (client, kind, namespace) for every app that
//! connected through the same kubeconfig and context, selecting every object driftless
//! labels, and reporting each change to the apps whose managed ids it touches. So 1,000
//! apps in one namespace hold one watch connection, not 1,000. A guard unsubscribes its
//! app when dropped; the last one out stops the watcher.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use driftless_model::{DriftEvent, DriftNotifier, ObjectRef, TargetError};
use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch as signal;
use tokio::task::JoinHandle;

use crate::OWNER_LABEL;

/// How long `watch` waits for every watcher's initial list.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// What one app wants watched of one kind in one namespace.
pub struct Watch {
    pub api: Api<DynamicObject>,
    pub group: String,
    pub version: String,
    pub kind: String,
    /// Empty for cluster-scoped kinds.
    pub namespace: String,
    /// Managed ids as the cluster names them → as the caller gave them (which may lack
    /// the defaulted namespace); events are reported with the caller's.
    pub ids: BTreeMap<ObjectRef, ObjectRef>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct HubKey {
    client: String,
    group: String,
    version: String,
    kind: String,
    namespace: String,
}

struct Subscriber {
    ids: BTreeMap<ObjectRef, ObjectRef>,
    notify: DriftNotifier,
}

/// The apps one shared watcher reports to.
#[derive(Default)]
struct Subscribers {
    by_id: HashMap<u64, Subscriber>,
    /// Subscriber ids per watched object id, so an event finds its apps at once.
    index: HashMap<ObjectRef, Vec<u64>>,
}

impl Subscribers {
    fn add(&mut self, id: u64, subscriber: Subscriber) {
        for cluster_id in subscriber.ids.keys() {
            self.index.entry(cluster_id.clone()).or_default().push(id);
        }
        self.by_id.insert(id, subscriber);
    }

    /// Removes a subscriber; true when none is left.
    fn remove(&mut self, id: u64) -> bool {
        if let Some(gone) = self.by_id.remove(&id) {
            for cluster_id in gone.ids.keys() {
                if let Some(subs) = self.index.get_mut(cluster_id) {
                    subs.retain(|s| *s != id);
                    if subs.is_empty() {
                        self.index.remove(cluster_id);
                    }
                }
            }
        }
        self.by_id.is_empty()
    }

    /// Tells the apps watching `id` that it changed.
    fn changed(&self, id: &ObjectRef) {
        for s in self.index.get(id).into_iter().flatten() {
            if let Some(sub) = self.by_id.get(s)
                && let Some(given) = sub.ids.get(id)
            {
                tracing::debug!(%id, "live change");
                (sub.notify)(DriftEvent { id: given.clone() });
            }
        }
    }

    /// After a re-list, changes made while the watch was down arrived as a snapshot, not
    /// as events: every app asks for one full look.
    fn relisted(&self) {
        for sub in self.by_id.values() {
            if let Some(given) = sub.ids.values().next() {
                (sub.notify)(DriftEvent { id: given.clone() });
            }
        }
    }
}

/// One shared watcher.
struct Hub {
    subscribers: Arc<Mutex<Subscribers>>,
    /// True once the initial list is done: changes after that are reported.
    ready: signal::Receiver<bool>,
    task: JoinHandle<()>,
}

/// The shared watchers of one set of targets (one engine). Their tasks run on the tokio
/// runtime that started them, so a set never outlives its runtime's users.
#[derive(Clone, Default)]
pub struct WatchHubs(Arc<Mutex<HashMap<HubKey, Arc<Hub>>>>);

/// Keeps an app subscribed; dropping it unsubscribes, and stops watchers nobody uses.
pub struct WatchGuard {
    hubs: WatchHubs,
    subscriptions: Vec<(HubKey, u64)>,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        let mut hubs = self.hubs.0.lock().expect("watch hubs lock");
        for (key, id) in self.subscriptions.drain(..) {
            if let Some(hub) = hubs.get(&key)
                && hub
                    .subscribers
                    .lock()
                    .expect("watch subscribers lock")
                    .remove(id)
            {
                hub.task.abort();
                hubs.remove(&key);
            }
        }
    }
}

/// Subscribes the app to a shared watcher per (kind, namespace) of `watches`, starting
/// the ones not running yet, and returns once each has listed its objects, so that any
/// change made after this returns is reported. `client` says which targets may share.
pub async fn start(
    hubs: &WatchHubs,
    client: &str,
    watches: Vec<Watch>,
    notify: DriftNotifier,
) -> Result<WatchGuard, TargetError> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut guard = WatchGuard {
        hubs: hubs.clone(),
        subscriptions: Vec::new(),
    };
    let mut waits = Vec::new();
    {
        let mut hubs = hubs.0.lock().expect("watch hubs lock");
        for w in watches {
            let key = HubKey {
                client: client.to_owned(),
                group: w.group.clone(),
                version: w.version.clone(),
                kind: w.kind.clone(),
                namespace: w.namespace.clone(),
            };
            let what = if w.namespace.is_empty() {
                format!("{} objects", w.kind)
            } else {
                format!("{} objects in namespace {}", w.kind, w.namespace)
            };
            let hub = hubs
                .entry(key.clone())
                .or_insert_with(|| spawn_hub(w.api, &w.group, &w.kind))
                .clone();
            let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            hub.subscribers.lock().expect("watch subscribers lock").add(
                id,
                Subscriber {
                    ids: w.ids,
                    notify: notify.clone(),
                },
            );
            guard.subscriptions.push((key, id));
            waits.push((what, hub.ready.clone()));
        }
    }
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    for (what, mut ready) in waits {
        let listed = tokio::time::timeout_at(deadline, ready.wait_for(|r| *r)).await;
        if !matches!(listed, Ok(Ok(_))) {
            // `guard` drops here and unsubscribes.
            return Err(TargetError::Unavailable(format!(
                "watch of {what} did not start within {} s",
                READY_TIMEOUT.as_secs()
            )));
        }
    }
    Ok(guard)
}

fn spawn_hub(api: Api<DynamicObject>, group: &str, kind: &str) -> Arc<Hub> {
    let (ready_tx, ready) = signal::channel(false);
    let subscribers = Arc::new(Mutex::new(Subscribers::default()));
    let (group, kind) = (group.to_owned(), kind.to_owned());
    let task = {
        let subscribers = subscribers.clone();
        tokio::spawn(async move {
            // Every object driftless manages, whichever app: the hub serves them all.
            let config = watcher::Config::default().labels(OWNER_LABEL);
            let stream = watcher::watcher(api, config).default_backoff();
            futures::pin_mut!(stream);
            let mut listed = false;
            while let Some(event) = stream.next().await {
                match event {
                    Ok(Event::InitDone) if listed => {
                        tracing::debug!(%kind, "watch re-listed");
                        subscribers
                            .lock()
                            .expect("watch subscribers lock")
                            .relisted();
                    }
                    Ok(Event::InitDone) => {
                        listed = true;
                        let _ = ready_tx.send(true);
                    }
                    Ok(Event::Apply(obj) | Event::Delete(obj)) => {
                        let id = ObjectRef {
                            group: group.clone(),
                            kind: kind.clone(),
                            namespace: obj.metadata.namespace.clone().unwrap_or_default(),
                            name: obj.metadata.name.clone().unwrap_or_default(),
                        };
                        subscribers
                            .lock()
                            .expect("watch subscribers lock")
                            .changed(&id);
                    }
                    Ok(Event::Init | Event::InitApply(_)) => {}
                    Err(e) => tracing::warn!(%kind, error = %e, "watch error; retrying"),
                }
            }
        })
    };
    Arc::new(Hub {
        subscribers,
        ready,
        task,
    })
}
