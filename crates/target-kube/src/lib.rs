//! Kubernetes target: applies manifests with server-side apply, plans with server-side
//! dry runs, keeps each app's inventory in the cluster, judges health per kind and
//! watches managed objects for drift.
//!
//! It owns every call to the Kubernetes API for an app. It must not touch an object that
//! is not in its plan, delete anything that is not in the inventory and still labelled
//! as the app's, or guess server defaults on the client side.
//!
//! # Flow
//! - [`KubeTarget::connect`] reads a kubeconfig (a named context, or the current one) or
//!   the in-cluster service account; [`KubeTarget::new`] takes a ready client.
//! - [`Target::plan`] gives every desired object its namespace (the app's, for
//!   namespaced kinds that name none; never one for cluster-scoped kinds) and the label
//!   `app.driftless.dev/name: <app>`, dry-runs a server-side apply and compares the
//!   result with live, both without server-owned fields: Create, Update (with a unified
//!   YAML diff, Secret values redacted) or Unchanged; with prune, a Delete for each
//!   inventory entry that left Git and still carries our label and no
//!   `driftless.dev/prune: disabled`. Phase 0 = CRDs and Namespaces, 1 = other
//!   cluster-scoped, 2 = namespaced; `driftless.dev/wave` orders within a phase. Live
//!   objects come from one paginated LIST per kind and namespace, selected by our label;
//!   an object it does not return (new, or not labelled for us) is read with a GET, and
//!   a kind we may not list (403/404/405) is read object by object. Reads and dry runs
//!   go 8 at a time. A dry run that hits a field-manager conflict is
//!   repeated forced, so the diff shows what forcing would do, headed by a `#` line
//!   naming the other managers.
//! - [`Target::apply`] applies in plan order (field manager `driftless`), waits for each
//!   CRD to be Established, stops after the first (phase, wave) group with a failure
//!   (later objects are Skipped) and prunes, in reverse order, only when every apply
//!   succeeded.
//! - [`Target::load_inventory`] / [`Target::save_inventory`] keep the inventory in the
//!   ConfigMap `driftless-inventory-<app>` of the app's namespace.
//! - [`Target::health`] applies the rules of the `health` module to live objects, read as
//!   plan reads them (a LIST per kind and namespace, a GET for what it misses).
//! - [`Target::watch`] runs one label-selected watcher per managed kind and namespace.
//!
//! # Guarantees
//! - A live object labelled for another app is a [`TargetError::Conflict`] naming it.
//! - Field-manager conflicts are forced only when [`SyncOptions::force_conflicts`] says
//!   so; otherwise the object fails with the other managers named.
//! - Deletes re-check the label and the opt-out right before deleting, and delete with
//!   the uid seen then as a precondition.
//!
//! # Caveats
//! - Objects whose kind comes from a CRD in the same revision are planned as Create
//!   without a dry run (the kind does not exist yet); the server checks them at apply.
//! - The inventory ConfigMap lives in the app's namespace. When that namespace is
//!   missing at the first save, it is created first if the desired set holds it (an app
//!   may bring its own namespace) or [`KubeTarget::with_create_namespace`] is on.
//! - Ids given to `health`, `watch` and `save_inventory` may leave out the namespace of
//!   a namespaced object (the renderer's ids do); the app's namespace is assumed. Plan
//!   task ids always carry it.
//! - Two apps claiming one object: the second app's plan fails with a Conflict; the
//!   first app, whose label is on the object, does not see the claim.

// `TargetError` is the shared model's type, fixed by the `Target` trait.
#![allow(clippy::result_large_err)]

mod api_errors;
mod apply;
mod connect;
mod discovery;
mod health;
mod inventory;
mod managers;
mod manifest;
mod plan;
mod prune;
mod watch;

pub use connect::KubeConnections;

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use driftless_model::{
    ChangeSet, DesiredSet, DriftNotifier, Health, Inventory, ObjectHealth, ObjectRef, Plan,
    SyncOptions, Target, TargetError,
};
use kube::Client;
use kube::api::{Api, DynamicObject};
use serde_json::Value;

pub use health::{Verdict, assess as assess_health};
pub use manifest::{OWNER_LABEL, PRUNE_ANNOTATION, WAVE_ANNOTATION};

use api_errors::kube_error_text;
use discovery::{DiscoveryCache, Kind};

/// The field manager of every apply.
pub const FIELD_MANAGER: &str = "driftless";
/// The inventory ConfigMap is named this plus the app name.
pub const INVENTORY_PREFIX: &str = "driftless-inventory-";
/// The data key of the inventory ConfigMap that holds the ids as JSON.
pub const INVENTORY_KEY: &str = "entries";
/// How long apply waits for a CRD to become Established.
pub const DEFAULT_CRD_TIMEOUT: Duration = Duration::from_secs(30);
/// How many objects plan reads and dry-runs at once (and how many LISTs run at once).
const PLAN_CONCURRENCY: usize = 8;
/// Objects per page of a LIST of the app's live objects, unless set otherwise.
/// Fewer wanted objects of one kind and namespace than this are read by GET, not LIST.
const LIST_AT_LEAST: usize = 3;
pub const DEFAULT_LIST_PAGE_SIZE: u32 = 500;
/// Namespace of namespaced objects that name none, unless the app says otherwise.
pub const DEFAULT_NAMESPACE: &str = "default";

const SKIPPED_AFTER_FAILURE: &str = "not applied: an earlier object failed";
const PRUNE_SKIPPED_AFTER_FAILURE: &str = "not pruned: an earlier object failed";
/// How many objects of one (phase, wave) are applied at a time (as plan dry-runs them).
const APPLY_CONCURRENCY: usize = 8;

/// A Kubernetes cluster that driftless keeps equal to an app's manifests.
#[derive(Clone)]
pub struct KubeTarget {
    client: Client,
    /// Which targets may share watches: the same for every target connected through the
    /// same kubeconfig and context, unique for a target made from a client.
    client_key: String,
    watch_hubs: watch::WatchHubs,
    app: String,
    namespace: String,
    cluster: String,
    discovery: DiscoveryCache,
    /// Keys the markers that stand for secret values in diffs; random per process.
    salt: Arc<[u8; 32]>,
    crd_timeout: Duration,
    list_page_size: u32,
    /// Create the app's namespace when it is missing and Git does not hold it
    /// (`sync.createNamespace`).
    create_namespace: bool,
}

/// Checks that `app` can be a label value and part of a ConfigMap name.
fn validate_app(app: &str) -> Result<(), TargetError> {
    let ok_chars = app
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ok_ends = app
        .bytes()
        .next()
        .zip(app.bytes().last())
        .is_some_and(|(a, z)| a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric());
    if app.is_empty() || app.len() > 63 || !ok_chars || !ok_ends {
        return Err(TargetError::Unsupported(format!(
            "app name {app:?} cannot be used on Kubernetes: it must be 1-63 characters of \
             a-z, 0-9 and '-', starting and ending with a letter or digit"
        )));
    }
    Ok(())
}

fn random_salt() -> [u8; 32] {
    let mut salt = [0u8; 32];
    if let Err(e) = getrandom::fill(&mut salt) {
        // Without randomness the markers are still one-way digests, only unsalted.
        tracing::warn!(error = %e, "no random salt for secret markers; using a fixed one");
    }
    salt
}

impl KubeTarget {
    /// A target for `app` through `client`; `default_namespace` as in
    /// [`KubeTarget::connect`].
    pub fn new(
        client: Client,
        app: &str,
        default_namespace: Option<&str>,
    ) -> Result<KubeTarget, TargetError> {
        validate_app(app)?;
        static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let made = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(KubeTarget {
            discovery: DiscoveryCache::new(client.clone()),
            client,
            client_key: format!("client#{made}"),
            watch_hubs: watch::WatchHubs::default(),
            app: app.to_owned(),
            namespace: default_namespace
                .filter(|n| !n.is_empty())
                .unwrap_or(DEFAULT_NAMESPACE)
                .to_owned(),
            cluster: "cluster".to_owned(),
            salt: Arc::new(random_salt()),
            crd_timeout: DEFAULT_CRD_TIMEOUT,
            list_page_size: DEFAULT_LIST_PAGE_SIZE,
            create_namespace: false,
        })
    }

    /// Sets how long apply waits for a CRD to become Established.
    pub fn with_crd_timeout(mut self, timeout: Duration) -> Self {
        self.crd_timeout = timeout;
        self
    }

    /// Sets how many objects one page of a LIST of live objects holds (at least 1).
    pub fn with_list_page_size(mut self, objects: u32) -> Self {
        self.list_page_size = objects.max(1);
        self
    }

    /// Creates the app's namespace when it is missing and the desired set does not hold
    /// it (Argo CD's `CreateNamespace=true`). The namespace is not labelled as the app's,
    /// so it is never pruned.
    pub fn with_create_namespace(mut self, create: bool) -> Self {
        self.create_namespace = create;
        self
    }

    /// The app's namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The app name, as in the ownership label.
    pub fn app(&self) -> &str {
        &self.app
    }

    /// The id of the inventory ConfigMap.
    pub fn inventory_id(&self) -> ObjectRef {
        ObjectRef {
            group: String::new(),
            kind: "ConfigMap".to_owned(),
            namespace: self.namespace.clone(),
            name: format!("{INVENTORY_PREFIX}{}", self.app),
        }
    }

    /// One value of a Secret in the cluster (e.g. an age key for SOPS decryption),
    /// `namespace` defaulting to the app's.
    pub async fn secret_value(
        &self,
        namespace: Option<&str>,
        name: &str,
        key: &str,
    ) -> Result<Vec<u8>, TargetError> {
        let namespace = namespace.unwrap_or(&self.namespace);
        let api: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(self.client.clone(), namespace);
        let secret = match api.get_opt(name).await {
            Ok(Some(secret)) => secret,
            Ok(None) => {
                return Err(TargetError::Unsupported(format!(
                    "Secret {namespace}/{name} does not exist; create it with the key {key:?}"
                )));
            }
            Err(err) => {
                return Err(TargetError::Unavailable(format!(
                    "reading Secret {namespace}/{name}: {}",
                    kube_error_text(&err)
                )));
            }
        };
        secret
            .data
            .and_then(|mut data| data.remove(key))
            .map(|bytes| bytes.0)
            .ok_or_else(|| {
                TargetError::Unsupported(format!("Secret {namespace}/{name} has no key {key:?}"))
            })
    }

    fn api(&self, kind: &Kind, namespace: &str) -> Api<DynamicObject> {
        if kind.namespaced {
            Api::namespaced_with(self.client.clone(), namespace, &kind.resource)
        } else {
            Api::all_with(self.client.clone(), &kind.resource)
        }
    }

    async fn resolve(
        &self,
        group: &str,
        version: Option<&str>,
        kind: &str,
        refreshed: &mut bool,
    ) -> Result<Option<Kind>, TargetError> {
        self.discovery
            .resolve(group, version, kind, refreshed)
            .await
            .map_err(|e| TargetError::Unavailable(e.to_string()))
    }

    /// The live object as JSON, `None` when absent.
    async fn get(&self, kind: &Kind, id: &ObjectRef) -> Result<Option<Value>, TargetError> {
        let found = self
            .api(kind, &id.namespace)
            .get_opt(&id.name)
            .await
            .map_err(|e| {
                TargetError::Unavailable(format!("reading {id}: {}", kube_error_text(&e)))
            })?;
        found
            .map(|o| {
                serde_json::to_value(o).map_err(|e| {
                    TargetError::Unavailable(format!("reading {id}: unreadable object: {e}"))
                })
            })
            .transpose()
    }

    /// An id with the app's namespace filled in for namespaced kinds (ids written by
    /// the renderer carry the manifest's namespace, which may be empty), and with none
    /// for cluster-scoped kinds. Unknown kinds are returned unchanged.
    async fn normalize_id(
        &self,
        id: &ObjectRef,
        refreshed: &mut bool,
    ) -> Result<(ObjectRef, Option<Kind>), TargetError> {
        let kind = self.resolve(&id.group, None, &id.kind, refreshed).await?;
        let mut out = id.clone();
        match &kind {
            Some(k) if k.namespaced && out.namespace.is_empty() => {
                out.namespace = self.namespace.clone();
            }
            Some(k) if !k.namespaced => out.namespace.clear(),
            _ => {}
        }
        Ok((out, kind))
    }
}

#[async_trait]
impl Target for KubeTarget {
    fn describe(&self) -> String {
        format!("kubernetes:{}/{}", self.cluster, self.namespace)
    }

    async fn plan(
        &self,
        desired: &DesiredSet,
        inventory: &Inventory,
        options: SyncOptions,
    ) -> Result<Plan, TargetError> {
        self.plan_objects(desired, inventory, options).await
    }

    async fn apply(&self, plan: &Plan, options: SyncOptions) -> Result<ChangeSet, TargetError> {
        self.apply_plan(plan, options).await
    }

    async fn health(&self, ids: &[ObjectRef]) -> Result<Vec<ObjectHealth>, TargetError> {
        let mut refreshed = false;
        let mut resolved = Vec::with_capacity(ids.len());
        for raw in ids {
            resolved.push((raw, self.normalize_id(raw, &mut refreshed).await?));
        }
        // One LIST per kind and namespace by our label; a GET for each id it misses.
        let mut listed = self
            .list_owned(
                resolved
                    .iter()
                    .filter_map(|(_, (id, kind))| Some((kind.as_ref()?, id.namespace.as_str()))),
            )
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for (raw, (id, kind)) in resolved {
            let (health, message) = match kind {
                None => (
                    Health::Missing,
                    Some(format!("kind {} is not served by the cluster", id.kind)),
                ),
                Some(k) => match self.live(listed.take(&k, &id), &k, &id).await? {
                    None => (Health::Missing, Some("not found in the cluster".to_owned())),
                    Some(live) => health::assess(&id.group, &id.kind, &live),
                },
            };
            out.push(ObjectHealth {
                id: raw.clone(),
                health,
                message,
            });
        }
        Ok(out)
    }

    async fn load_inventory(&self) -> Result<Option<Inventory>, TargetError> {
        self.read_inventory().await
    }

    async fn save_inventory(&self, inventory: &Inventory) -> Result<(), TargetError> {
        self.write_inventory(inventory).await
    }

    async fn watch(
        &self,
        ids: BTreeSet<ObjectRef>,
        notify: DriftNotifier,
    ) -> Result<Box<dyn Any + Send>, TargetError> {
        let mut refreshed = false;
        type Managed = BTreeMap<ObjectRef, ObjectRef>;
        let mut groups: HashMap<(String, String, String, String), (Kind, Managed)> = HashMap::new();
        for raw in &ids {
            let (id, kind) = self.normalize_id(raw, &mut refreshed).await?;
            let Some(kind) = kind else {
                tracing::warn!(%id, "kind not served; not watching it");
                continue;
            };
            let key = (
                kind.resource.group.clone(),
                kind.resource.version.clone(),
                kind.resource.kind.clone(),
                id.namespace.clone(),
            );
            groups
                .entry(key)
                .or_insert_with(|| (kind.clone(), BTreeMap::new()))
                .1
                .insert(id, raw.clone());
        }
        let mut watches = Vec::new();
        for ((_, _, _, namespace), (kind, ids)) in groups {
            watches.push(watch::Watch {
                api: self.api(&kind, &namespace),
                group: kind.resource.group.clone(),
                version: kind.resource.version.clone(),
                kind: kind.resource.kind.clone(),
                namespace,
                ids,
            });
        }
        let guard = watch::start(&self.watch_hubs, &self.client_key, watches, notify).await?;
        Ok(Box::new(guard))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_must_suit_labels_and_names() {
        assert!(validate_app("web-1").is_ok());
        for bad in ["", "Web", "web_1", "-web", "web-", &"a".repeat(64)] {
            let err = validate_app(bad).unwrap_err().to_string();
            assert_eq!(
                err,
                format!(
                    "app name {bad:?} cannot be used on Kubernetes: it must be 1-63 characters \
                     of a-z, 0-9 and '-', starting and ending with a letter or digit"
                )
            );
        }
    }
}
