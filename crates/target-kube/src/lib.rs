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

mod discovery;
mod health;
mod managers;
mod manifest;
mod watch;

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use driftless_model::{
    Action, ChangeSet, Content, DesiredSet, DriftNotifier, Health, Inventory, Object, ObjectHealth,
    ObjectRef, Plan, SyncOptions, Target, TargetError, Task, TaskOp,
};
use futures::{StreamExt, TryStreamExt};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, Preconditions, TypeMeta,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};

pub use health::{Verdict, assess as assess_health};
pub use manifest::{OWNER_LABEL, PRUNE_ANNOTATION, WAVE_ANNOTATION};

use discovery::{DiscoveryCache, Kind};
use manifest::{annotation, label, split_api_version, str_at};

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

/// A kube error in one line: the server's reason, code and message for API errors.
fn kube_error_text(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => {
            format!("{} ({}): {}", status.reason, status.code, status.message)
        }
        other => other.to_string(),
    }
}

/// Whether a write failed because its namespace does not exist (404 `namespaces "x" not
/// found`).
fn namespace_missing(e: &kube::Error) -> bool {
    matches!(api_status(e), Some((404, message)) if message.starts_with("namespaces \""))
}

fn api_status(e: &kube::Error) -> Option<(u16, &str)> {
    match e {
        kube::Error::Api(status) => Some((status.code, status.message.as_str())),
        _ => None,
    }
}

/// Whether an API error is the server refusing the object itself (it fails the same way
/// until the manifest changes) rather than a passing condition. Server-side apply
/// answers 500 "failed to create typed patch object" for a value of the wrong type.
fn refuses_object(code: u16, message: &str) -> bool {
    ((400..500).contains(&code) && code != 429)
        || (code == 500 && message.contains("failed to create typed patch object"))
}

/// `field manager "a"` or `field managers "a", "b"`.
fn quoted_list(managers: &[String]) -> String {
    let names: Vec<String> = managers.iter().map(|m| format!("{m:?}")).collect();
    let plural = if managers.len() == 1 { "" } else { "s" };
    format!("field manager{plural} {}", names.join(", "))
}

/// The managers an SSA 409 names (`conflict with "a" using apps/v1: .spec.replicas`).
fn conflict_managers(message: &str) -> Vec<String> {
    let mut managers: Vec<String> = Vec::new();
    for part in message.split("conflict with \"").skip(1) {
        if let Some((name, _)) = part.split_once('"')
            && !managers.iter().any(|m| m == name)
        {
            managers.push(name.to_owned());
        }
    }
    managers
}

/// `conflict with field manager(s) "a", "b": <server message>` for an SSA 409.
fn conflict_detail(message: &str) -> String {
    let managers = conflict_managers(message);
    if managers.is_empty() {
        return format!("field manager conflict: {message}");
    }
    let names: Vec<String> = managers.iter().map(|m| format!("{m:?}")).collect();
    format!(
        "conflict with field manager(s) {}: {message}",
        names.join(", ")
    )
}

/// A desired object made ready for the cluster.
struct Prepared {
    id: ObjectRef,
    manifest: Value,
    /// `None`: the kind comes from a CRD of the same revision and is not served yet.
    kind: Option<Kind>,
    phase: u8,
    wave: i32,
    origin: driftless_model::Origin,
}

/// Which LIST finds an object: (group, version, plural, namespace; empty when
/// cluster-scoped).
type ListKey = (String, String, String, String);

fn list_key(kind: &Kind, namespace: &str) -> ListKey {
    (
        kind.resource.group.clone(),
        kind.resource.version.clone(),
        kind.resource.plural.clone(),
        namespace.to_owned(),
    )
}

/// The app's live objects as LISTs by the owner label returned them, one LIST per kind
/// and namespace. An object that is not here may still exist (without our label, or in
/// a group that could not be listed): read it with a GET.
#[derive(Default)]
struct Listed {
    /// Per (kind, namespace) listed: name → object (with apiVersion and kind).
    groups: HashMap<ListKey, HashMap<String, Value>>,
}

impl Listed {
    /// Takes the listed object `id` of `kind` out, if the LIST returned it.
    fn take(&mut self, kind: &Kind, id: &ObjectRef) -> Option<Value> {
        self.groups
            .get_mut(&list_key(kind, &id.namespace))?
            .remove(&id.name)
    }
}

/// Kinds that CRDs of a desired set will define: (group, kind) → (namespaced, versions).
type PendingKinds = HashMap<(String, String), (bool, Vec<String>)>;

fn crd_kinds(desired: &DesiredSet) -> PendingKinds {
    let mut out = HashMap::new();
    for obj in &desired.objects {
        let Content::Manifest(v) = &obj.content else {
            continue;
        };
        let api_version = str_at(v, &["apiVersion"]).unwrap_or_default();
        let kind = str_at(v, &["kind"]).unwrap_or_default();
        if !manifest::is_crd(split_api_version(api_version).0, kind) {
            continue;
        }
        let (Some(group), Some(k)) = (
            str_at(v, &["spec", "group"]),
            str_at(v, &["spec", "names", "kind"]),
        ) else {
            continue;
        };
        let namespaced = str_at(v, &["spec", "scope"]) != Some("Cluster");
        let versions = v
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .map(|vs| {
                vs.iter()
                    .filter_map(|ver| ver.get("name").and_then(Value::as_str))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        out.insert((group.to_owned(), k.to_owned()), (namespaced, versions));
    }
    out
}

fn desired_namespaces(desired: &DesiredSet) -> HashSet<String> {
    desired
        .objects
        .iter()
        .filter(|o| o.id.group.is_empty() && o.id.kind == "Namespace")
        .map(|o| o.id.name.clone())
        .collect()
}

impl KubeTarget {
    /// A target for `app` through the kubeconfig (`$KUBECONFIG` or `~/.kube/config`;
    /// `context` names a context, else the current one) or, without a kubeconfig, the
    /// in-cluster service account. `namespace` is the app's namespace (default
    /// `default`).
    ///
    /// Errors: [`TargetError::Unsupported`] for a bad app name or an unknown context,
    /// [`TargetError::Unavailable`] when no configuration can be loaded.
    pub async fn connect(
        app: &str,
        context: Option<&str>,
        namespace: Option<&str>,
    ) -> Result<KubeTarget, TargetError> {
        Self::connect_with(None, app, context, namespace).await
    }

    /// As [`KubeTarget::connect`], reading the kubeconfig at `kubeconfig` when given
    /// (then never the in-cluster configuration).
    pub async fn connect_with(
        kubeconfig: Option<&Path>,
        app: &str,
        context: Option<&str>,
        namespace: Option<&str>,
    ) -> Result<KubeTarget, TargetError> {
        KubeConnections::default()
            .connect(kubeconfig, app, context, namespace)
            .await
    }
}

/// Connections shared by the targets of one engine: every target that names the same
/// kubeconfig and context gets the same client (one connection pool, one discovery) and
/// the same watchers, so 1,000 apps on one cluster hold one watch per kind and namespace.
/// Cheap to clone; create it on the tokio runtime the targets will run on.
#[derive(Clone, Default)]
pub struct KubeConnections {
    clients: Arc<std::sync::Mutex<HashMap<String, SharedClient>>>,
    watch_hubs: watch::WatchHubs,
}

/// A client made from one kubeconfig and context, kept for every target that names them.
#[derive(Clone)]
struct SharedClient {
    client: Client,
    discovery: DiscoveryCache,
    cluster: String,
}

impl KubeConnections {
    /// As [`KubeTarget::connect_with`], sharing the client and watchers with every target
    /// this value made for the same kubeconfig and context.
    pub async fn connect(
        &self,
        kubeconfig: Option<&Path>,
        app: &str,
        context: Option<&str>,
        namespace: Option<&str>,
    ) -> Result<KubeTarget, TargetError> {
        validate_app(app)?;
        let key = format!(
            "{}\u{0}{}",
            kubeconfig.map_or_else(|| "$KUBECONFIG".to_owned(), |p| p.display().to_string()),
            context.unwrap_or("")
        );
        let known = self
            .clients
            .lock()
            .expect("client cache lock")
            .get(&key)
            .cloned();
        let shared = match known {
            Some(shared) => shared,
            None => {
                let made = Self::client(kubeconfig, context).await?;
                self.clients
                    .lock()
                    .expect("client cache lock")
                    .entry(key.clone())
                    .or_insert(made)
                    .clone()
            }
        };
        let mut target = KubeTarget::new(shared.client, app, namespace)?;
        target.discovery = shared.discovery;
        target.cluster = shared.cluster;
        target.client_key = key;
        target.watch_hubs = self.watch_hubs.clone();
        Ok(target)
    }

    /// A client for the kubeconfig and context (or the in-cluster service account).
    async fn client(
        kubeconfig: Option<&Path>,
        context: Option<&str>,
    ) -> Result<SharedClient, TargetError> {
        let read = |path: Option<&Path>| {
            match path {
                Some(p) => Kubeconfig::read_from(p),
                None => Kubeconfig::read(),
            }
            .map_err(|e| TargetError::Unavailable(format!("reading the kubeconfig: {e}")))
        };
        let (config, cluster) = if context.is_some() || kubeconfig.is_some() {
            let kubeconfig = read(kubeconfig)?;
            let ctx = match context {
                Some(ctx) => ctx.to_owned(),
                None => kubeconfig.current_context.clone().ok_or_else(|| {
                    TargetError::Unsupported(
                        "the kubeconfig names no current context; name one".to_owned(),
                    )
                })?,
            };
            if !kubeconfig.contexts.iter().any(|c| c.name == ctx) {
                let known: Vec<&str> = kubeconfig
                    .contexts
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect();
                return Err(TargetError::Unsupported(format!(
                    "the kubeconfig has no context {ctx:?} (it has: {})",
                    known.join(", ")
                )));
            }
            let options = KubeConfigOptions {
                context: Some(ctx.clone()),
                ..KubeConfigOptions::default()
            };
            let config = Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| {
                    TargetError::Unavailable(format!("kubeconfig context {ctx:?}: {e}"))
                })?;
            (config, ctx)
        } else {
            let config = Config::infer().await.map_err(|e| {
                TargetError::Unavailable(format!(
                    "no Kubernetes configuration (kubeconfig or in-cluster): {e}"
                ))
            })?;
            let cluster = config.cluster_url.to_string();
            (config, cluster)
        };
        let mut config = config;
        // Name ourselves, as kubectl and client-go do: audit logs and API priority rules
        // match on the user agent.
        config.headers.push((
            http::header::USER_AGENT,
            http::HeaderValue::from_static(concat!("driftless/", env!("CARGO_PKG_VERSION"))),
        ));
        let client = Client::try_from(config)
            .map_err(|e| TargetError::Unavailable(format!("Kubernetes client: {e}")))?;
        Ok(SharedClient {
            discovery: DiscoveryCache::new(client.clone()),
            client,
            cluster,
        })
    }
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

    /// The live object: the listed one when the LIST returned it, else read by a GET.
    async fn live(
        &self,
        listed: Option<Value>,
        kind: &Kind,
        id: &ObjectRef,
    ) -> Result<Option<Value>, TargetError> {
        match listed {
            Some(live) => Ok(Some(live)),
            None => self.get(kind, id).await,
        }
    }

    /// The label selector of the app's objects.
    fn owner_selector(&self) -> String {
        format!("{OWNER_LABEL}={}", self.app)
    }

    /// Lists the app's live objects of each (kind, namespace) given (namespace empty for
    /// cluster-scoped kinds), a few LISTs at a time. A (kind, namespace) the server will
    /// not list for us is left out, and its objects are read one by one.
    async fn list_owned<'k>(
        &self,
        wanted: impl IntoIterator<Item = (&'k Kind, &'k str)>,
    ) -> Result<Listed, TargetError> {
        let mut groups: HashMap<ListKey, (Kind, String, usize)> = HashMap::new();
        for (kind, namespace) in wanted {
            groups
                .entry(list_key(kind, namespace))
                .or_insert_with(|| (kind.clone(), namespace.to_owned(), 0))
                .2 += 1;
        }
        // A LIST returns every object of the app of that kind: for one or two objects
        // (a live change of a few) reading each is cheaper.
        groups.retain(|_, (_, _, wanted)| *wanted >= LIST_AT_LEAST);
        let lists: Vec<(ListKey, Option<HashMap<String, Value>>)> =
            futures::stream::iter(groups.into_iter().map(
                |(key, (kind, namespace, _))| async move {
                    Ok::<_, TargetError>((key, self.list_one(&kind, &namespace).await?))
                },
            ))
            .buffer_unordered(PLAN_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(Listed {
            groups: lists
                .into_iter()
                .filter_map(|(key, objects)| Some((key, objects?)))
                .collect(),
        })
    }

    /// The app's live objects of `kind` in `namespace` by name, page by page; `None`
    /// when the server does not let us list them (403, 404, 405) or the listing
    /// expired between pages (410).
    async fn list_one(
        &self,
        kind: &Kind,
        namespace: &str,
    ) -> Result<Option<HashMap<String, Value>>, TargetError> {
        let what = if kind.namespaced {
            format!("{} objects in namespace {namespace}", kind.resource.kind)
        } else {
            format!("{} objects", kind.resource.kind)
        };
        let api = self.api(kind, namespace);
        let mut params = ListParams::default()
            .labels(&self.owner_selector())
            .limit(self.list_page_size);
        let mut out = HashMap::new();
        loop {
            let page = match api.list(&params).await {
                Ok(page) => page,
                Err(e) => match api_status(&e) {
                    Some((403 | 404 | 405 | 410, _)) => {
                        tracing::debug!(
                            what = %what,
                            error = %kube_error_text(&e),
                            "cannot list; reading each object instead"
                        );
                        return Ok(None);
                    }
                    _ => {
                        return Err(TargetError::Unavailable(format!(
                            "listing {what}: {}",
                            kube_error_text(&e)
                        )));
                    }
                },
            };
            for mut obj in page.items {
                let Some(name) = obj.metadata.name.clone() else {
                    continue;
                };
                // List items of built-in kinds come without apiVersion and kind; a GET
                // of the same version has them.
                obj.types = Some(TypeMeta {
                    api_version: kind.resource.api_version.clone(),
                    kind: kind.resource.kind.clone(),
                });
                let value = serde_json::to_value(obj).map_err(|e| {
                    TargetError::Unavailable(format!("listing {what}: unreadable object: {e}"))
                })?;
                out.insert(name, value);
            }
            match page.metadata.continue_.filter(|token| !token.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
        Ok(Some(out))
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

    /// Creates namespace `name` by server-side apply: labelled as the app's when Git holds
    /// it (the apply that follows fills in the rest of Git's Namespace), bare when it is
    /// made for `createNamespace`.
    async fn create_namespace(&self, name: &str, from_git: bool) -> Result<(), TargetError> {
        let mut body = json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name},
        });
        if from_git {
            manifest::set_owner_label(&mut body, &self.app);
        }
        let api: Api<DynamicObject> = Api::all_with(
            self.client.clone(),
            &kube::core::ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&()),
        );
        api.patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(|e| {
            TargetError::Unavailable(format!(
                "creating namespace {name:?}: {}",
                kube_error_text(&e)
            ))
        })?;
        tracing::info!(app = %self.app, namespace = name, from_git, "namespace created before the inventory");
        Ok(())
    }

    fn redacted(&self, v: &Value) -> Value {
        driftless_diff::redact_manifest(&manifest::strip_server_fields(v), &self.salt[..])
    }

    async fn prepare(
        &self,
        obj: &Object,
        pending: &PendingKinds,
        refreshed: &mut bool,
    ) -> Result<Prepared, TargetError> {
        let rejected = |message: String| TargetError::Rejected {
            id: obj.id.clone(),
            message: format!("{message} (from {})", obj.origin),
        };
        let Content::Manifest(source) = &obj.content else {
            return Err(TargetError::Unsupported(format!(
                "{}: the Kubernetes target only takes manifests, not files (from {})",
                obj.id, obj.origin
            )));
        };
        let api_version = str_at(source, &["apiVersion"])
            .filter(|s| !s.is_empty())
            .ok_or_else(|| rejected("the manifest has no apiVersion".to_owned()))?;
        let kind_name = str_at(source, &["kind"])
            .filter(|s| !s.is_empty())
            .ok_or_else(|| rejected("the manifest has no kind".to_owned()))?;
        let name = str_at(source, &["metadata", "name"])
            .filter(|s| !s.is_empty())
            .ok_or_else(|| rejected("the manifest has no metadata.name".to_owned()))?;
        let (group, version) = split_api_version(api_version);
        let kind = self
            .resolve(group, Some(version), kind_name, refreshed)
            .await?;
        let namespaced = match (
            &kind,
            pending.get(&(group.to_owned(), kind_name.to_owned())),
        ) {
            (Some(k), _) => k.namespaced,
            (None, Some((namespaced, versions))) if versions.iter().any(|v| v == version) => {
                *namespaced
            }
            (None, _) => {
                return Err(rejected(format!(
                    "kind {kind_name} of {api_version} is not served by the cluster, and no \
                     CustomResourceDefinition in this revision defines it"
                )));
            }
        };
        let namespace = if namespaced {
            str_at(source, &["metadata", "namespace"])
                .filter(|s| !s.is_empty())
                .unwrap_or(&self.namespace)
                .to_owned()
        } else {
            String::new()
        };
        let id = ObjectRef {
            group: group.to_owned(),
            kind: kind_name.to_owned(),
            namespace: namespace.clone(),
            name: name.to_owned(),
        };
        if id == self.inventory_id() {
            return Err(TargetError::Rejected {
                id,
                message: format!(
                    "this name is reserved for driftless's inventory of app {:?} (from {})",
                    self.app, obj.origin
                ),
            });
        }
        let wave = manifest::wave(source).map_err(|m| TargetError::Rejected {
            id: id.clone(),
            message: format!("{m} (from {})", obj.origin),
        })?;
        let mut out = source.clone();
        manifest::set_namespace(&mut out, &namespace);
        manifest::set_owner_label(&mut out, &self.app);
        Ok(Prepared {
            phase: manifest::phase(group, kind_name, namespaced),
            id,
            manifest: out,
            kind,
            wave,
            origin: obj.origin.clone(),
        })
    }

    /// The ownership check: a live object labelled for another app is a conflict.
    fn check_owner(&self, id: &ObjectRef, live: &Value) -> Result<(), TargetError> {
        match label(live, OWNER_LABEL) {
            Some(other) if other != self.app => Err(TargetError::Conflict {
                id: id.clone(),
                message: format!(
                    "the live object belongs to app {other:?} (label {OWNER_LABEL}={other}), \
                     not to {:?}; remove it from one of the two apps",
                    self.app
                ),
            }),
            _ => Ok(()),
        }
    }

    async fn dry_run(&self, kind: &Kind, p: &Prepared, force: bool) -> Result<Value, kube::Error> {
        let mut params = PatchParams::apply(FIELD_MANAGER).dry_run();
        if force {
            params = params.force();
        }
        let out = self
            .api(kind, &p.id.namespace)
            .patch(&p.id.name, &params, &Patch::Apply(&p.manifest))
            .await?;
        serde_json::to_value(out).map_err(kube::Error::SerdeError)
    }

    /// Plans one object; `listed` is its live object when a LIST returned it.
    async fn plan_one(
        &self,
        p: Prepared,
        listed: Option<Value>,
        new_namespaces: &HashSet<String>,
        options: SyncOptions,
    ) -> Result<Task, TargetError> {
        let desired_view = self.redacted(&p.manifest);
        let live = match &p.kind {
            Some(kind) => self.live(listed, kind, &p.id).await?,
            None => None,
        };
        if let Some(live) = &live {
            self.check_owner(&p.id, live)?;
        }
        let live_view = live.as_ref().map(|l| self.redacted(l));
        let mut note = String::new();
        // Managers named by a conflict that the policy does not let us force.
        let mut conflicting: Vec<String> = Vec::new();
        let predicted = match &p.kind {
            None => {
                note.push_str(
                    "# the kind is defined by a CustomResourceDefinition of this revision; \
                     the server checks the object when it is applied\n",
                );
                desired_view
            }
            Some(kind) => match self.dry_run(kind, &p, options.force_conflicts).await {
                Ok(v) => self.redacted(&v),
                Err(e) => match api_status(&e) {
                    Some((409, message)) => {
                        conflicting = conflict_managers(message);
                        note.push_str(&format!(
                            "# {}; not applied while sync.force is false\n",
                            conflict_detail(message)
                        ));
                        match self.dry_run(kind, &p, true).await {
                            Ok(v) => self.redacted(&v),
                            Err(_) => desired_view,
                        }
                    }
                    Some((404, _))
                        if live.is_none() && new_namespaces.contains(&p.id.namespace) =>
                    {
                        note.push_str(
                            "# the namespace is created by this revision; the server checks \
                             the object when it is applied\n",
                        );
                        desired_view
                    }
                    Some((code, message)) if refuses_object(code, message) => {
                        note.push_str(&format!("# the server refused a dry run: {message}\n"));
                        desired_view
                    }
                    _ => {
                        return Err(TargetError::Unavailable(format!(
                            "dry run of {}: {}",
                            p.id,
                            kube_error_text(&e)
                        )));
                    }
                },
            },
        };
        let diff = manifest::yaml_diff(live_view.as_ref(), Some(&predicted), &p.id);
        let op = match (&live, diff.is_empty() && note.is_empty()) {
            (None, _) => TaskOp::Create,
            (Some(_), true) => TaskOp::Unchanged,
            (Some(_), false) => TaskOp::Update,
        };
        let mut changed_by = match &live {
            Some(live) if op == TaskOp::Update => managers::drifted_by(live, &p.manifest),
            _ => Vec::new(),
        };
        let conflict = !conflicting.is_empty();
        for manager in conflicting {
            if !changed_by.contains(&manager) {
                changed_by.push(manager);
            }
        }
        if !changed_by.is_empty() {
            note.insert_str(
                0,
                &format!("# changed outside Git by {}\n", quoted_list(&changed_by)),
            );
        }
        let diff = format!("{note}{diff}");
        Ok(Task {
            phase: p.phase,
            wave: p.wave,
            id: p.id.clone(),
            op,
            desired: Some(Object {
                id: p.id,
                content: Content::Manifest(p.manifest),
                origin: p.origin,
            }),
            diff: (!diff.is_empty()).then_some(diff),
            changed_by,
            conflict,
        })
    }

    /// Why prune must leave a live object alone, if it must.
    fn prune_refusal(&self, live: &Value) -> Option<String> {
        match label(live, OWNER_LABEL) {
            Some(app) if app == self.app => {}
            Some(other) => return Some(format!("now labelled for app {other:?}")),
            None => return Some(format!("no longer carries the label {OWNER_LABEL}")),
        }
        if annotation(live, PRUNE_ANNOTATION) == Some("disabled") {
            return Some(format!("annotated {PRUNE_ANNOTATION}: disabled"));
        }
        None
    }

    async fn plan_prune(
        &self,
        inventory: &Inventory,
        wanted: &BTreeSet<ObjectRef>,
        listed: &mut Listed,
        refreshed: &mut bool,
    ) -> Result<Vec<Task>, TargetError> {
        let mut tasks = Vec::new();
        let mut seen = BTreeSet::new();
        let inventory_id = self.inventory_id();
        for raw in &inventory.entries {
            let (id, kind) = self.normalize_id(raw, refreshed).await?;
            if wanted.contains(&id) || id == inventory_id || !seen.insert(id.clone()) {
                continue;
            }
            let (phase, wave, diff) = match &kind {
                None => (
                    manifest::phase(&id.group, &id.kind, !id.namespace.is_empty()),
                    0,
                    Some(format!(
                        "# kind {} is no longer served; nothing left to delete\n",
                        id.kind
                    )),
                ),
                Some(k) => match self.live(listed.take(k, &id), k, &id).await? {
                    None => (manifest::phase(&id.group, &id.kind, k.namespaced), 0, None),
                    Some(live) => {
                        if let Some(why) = self.prune_refusal(&live) {
                            tracing::info!(%id, reason = %why, "not pruning");
                            continue;
                        }
                        let diff = manifest::yaml_diff(Some(&self.redacted(&live)), None, &id);
                        (
                            manifest::phase(&id.group, &id.kind, k.namespaced),
                            manifest::wave(&live).unwrap_or(0),
                            Some(diff),
                        )
                    }
                },
            };
            tasks.push(Task {
                phase,
                wave,
                id,
                op: TaskOp::Delete,
                desired: None,
                diff,
                changed_by: Vec::new(),
                conflict: false,
            });
        }
        Ok(tasks)
    }

    /// Waits until the CRD `id` reports Established, or says why not.
    async fn wait_established(&self, kind: &Kind, id: &ObjectRef) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + self.crd_timeout;
        loop {
            let last = match self.get(kind, id).await {
                Ok(Some(live)) => {
                    let (h, message) = health::assess(&id.group, &id.kind, &live);
                    match h {
                        Health::Healthy => return Ok(()),
                        Health::Degraded => {
                            return Err(format!(
                                "applied, but not usable: {}",
                                message.unwrap_or_default()
                            ));
                        }
                        _ => message.unwrap_or_default(),
                    }
                }
                Ok(None) => "it disappeared".to_owned(),
                Err(e) => e.to_string(),
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "applied, but not Established within {} s ({last})",
                    self.crd_timeout.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Applies one task's object; `Err` is the failure detail.
    async fn apply_one(
        &self,
        task: &Task,
        options: SyncOptions,
        refreshed: &mut bool,
        crd_applied: bool,
    ) -> Result<Action, String> {
        let Some(obj) = &task.desired else {
            return Err("plan task has no desired content".to_owned());
        };
        let Content::Manifest(manifest) = &obj.content else {
            return Err("the Kubernetes target only takes manifests".to_owned());
        };
        let api_version = str_at(manifest, &["apiVersion"]).unwrap_or_default();
        let (group, version) = split_api_version(api_version);
        // A kind defined by a CRD applied moments ago may take a little while to appear
        // in discovery and to accept requests.
        let settle = tokio::time::Instant::now() + Duration::from_secs(10);
        let kind = loop {
            match self
                .resolve(group, Some(version), &task.id.kind, refreshed)
                .await
            {
                Ok(Some(k)) => break k,
                Ok(None) if crd_applied && tokio::time::Instant::now() < settle => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    *refreshed = false;
                }
                Ok(None) => {
                    return Err(format!(
                        "kind {} of {api_version} is not served by the cluster",
                        task.id.kind
                    ));
                }
                Err(e) => return Err(e.to_string()),
            }
        };
        let mut params = PatchParams::apply(FIELD_MANAGER);
        if options.force_conflicts {
            params = params.force();
        }
        let api = self.api(&kind, &task.id.namespace);
        loop {
            match api
                .patch(&task.id.name, &params, &Patch::Apply(manifest))
                .await
            {
                Ok(_) => break,
                Err(e) => match api_status(&e) {
                    Some((409, message)) => return Err(conflict_detail(message)),
                    Some((404, _)) if crd_applied && tokio::time::Instant::now() < settle => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Some((_, message)) => return Err(message.to_owned()),
                    None => return Err(kube_error_text(&e)),
                },
            }
        }
        if manifest::is_crd(group, &task.id.kind) {
            self.wait_established(&kind, &task.id).await?;
            if let Err(e) = self.discovery.refresh().await {
                tracing::warn!(error = %e, "discovery refresh after a CRD failed");
            }
        }
        Ok(if task.op == TaskOp::Create {
            Action::Created
        } else {
            Action::Configured
        })
    }

    /// Deletes one pruned object after checking again that it is still ours.
    async fn delete_one(&self, id: &ObjectRef, refreshed: &mut bool) -> (Action, Option<String>) {
        let kind = match self.resolve(&id.group, None, &id.kind, refreshed).await {
            Ok(Some(k)) => k,
            Ok(None) => {
                return (
                    Action::Deleted,
                    Some("already gone (its kind is no longer served)".to_owned()),
                );
            }
            Err(e) => return (Action::Failed, Some(e.to_string())),
        };
        let live = match self.get(&kind, id).await {
            Ok(Some(live)) => live,
            Ok(None) => return (Action::Deleted, Some("already gone".to_owned())),
            Err(e) => return (Action::Failed, Some(e.to_string())),
        };
        if let Some(why) = self.prune_refusal(&live) {
            return (Action::Skipped, Some(format!("not pruned: {why}")));
        }
        let mut params = DeleteParams::background();
        if let Some(uid) = str_at(&live, &["metadata", "uid"]) {
            params = params.preconditions(Preconditions {
                uid: Some(uid.to_owned()),
                resource_version: None,
            });
        }
        match self
            .api(&kind, &id.namespace)
            .delete(&id.name, &params)
            .await
        {
            Ok(_) => (Action::Deleted, None),
            Err(e) => match api_status(&e) {
                Some((404, _)) => (Action::Deleted, Some("already gone".to_owned())),
                Some((409, message)) => (
                    Action::Failed,
                    Some(format!("replaced since it was checked: {message}")),
                ),
                _ => (Action::Failed, Some(kube_error_text(&e))),
            },
        }
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
        let mut refreshed = false;
        let pending = crd_kinds(desired);
        let mut new_namespaces = desired_namespaces(desired);
        if self.create_namespace {
            new_namespaces.insert(self.namespace.clone());
        }
        let mut prepared = Vec::with_capacity(desired.objects.len());
        let mut wanted = BTreeSet::new();
        for obj in &desired.objects {
            let p = self.prepare(obj, &pending, &mut refreshed).await?;
            if !wanted.insert(p.id.clone()) {
                return Err(TargetError::Rejected {
                    id: p.id,
                    message: format!("defined twice; the second time in {}", obj.origin),
                });
            }
            prepared.push(p);
        }
        // Live objects: one LIST per kind and namespace by our label; objects it does not
        // return (new ones, or someone else's) are read one by one in plan_one.
        let mut listed = self
            .list_owned(
                prepared
                    .iter()
                    .filter_map(|p| Some((p.kind.as_ref()?, p.id.namespace.as_str()))),
            )
            .await?;
        let work: Vec<(Prepared, Option<Value>)> = prepared
            .into_iter()
            .map(|p| {
                let live = p.kind.as_ref().and_then(|k| listed.take(k, &p.id));
                (p, live)
            })
            .collect();
        // Reads and dry runs are independent: a few at a time, results in input order
        // (so the first error reported is the first object's).
        let mut tasks: Vec<Task> = futures::stream::iter(
            work.into_iter()
                .map(|(p, live)| self.plan_one(p, live, &new_namespaces, options)),
        )
        .buffered(PLAN_CONCURRENCY)
        .try_collect()
        .await?;
        if options.prune {
            tasks.extend(
                self.plan_prune(inventory, &wanted, &mut listed, &mut refreshed)
                    .await?,
            );
        }
        Ok(Plan::new(desired.revision.clone(), tasks))
    }

    async fn apply(&self, plan: &Plan, options: SyncOptions) -> Result<ChangeSet, TargetError> {
        let mut changes = ChangeSet::default();
        let mut refreshed = false;
        let mut failed_at: Option<(u8, i32)> = None;
        let mut crd_applied = false;
        let applies: Vec<&Task> = plan
            .tasks
            .iter()
            .filter(|t| t.op != TaskOp::Delete)
            .collect();
        // Objects of one (phase, wave) do not depend on each other, so they are applied
        // several at a time; groups still run one after the other, in plan order.
        for group in applies.chunk_by(|a, b| (a.phase, a.wave) == (b.phase, b.wave)) {
            let key = (group[0].phase, group[0].wave);
            if failed_at.is_some_and(|at| key > at) {
                for task in group {
                    let action = if task.op == TaskOp::Unchanged {
                        (Action::Unchanged, None)
                    } else {
                        (Action::Skipped, Some(SKIPPED_AFTER_FAILURE.to_owned()))
                    };
                    changes.push(task.id.clone(), action.0, action.1);
                }
                continue;
            }
            // CRDs change discovery for what follows: keep those one at a time.
            let parallel = if group
                .iter()
                .any(|t| manifest::is_crd(&t.id.group, &t.id.kind))
            {
                1
            } else {
                APPLY_CONCURRENCY
            };
            type Outcome<'t> = (&'t Task, Option<Result<Action, String>>);
            let runs: Vec<std::pin::Pin<Box<dyn Future<Output = Outcome<'_>> + Send + '_>>> = group
                .iter()
                .map(|&task| {
                    Box::pin(async move {
                        if task.op == TaskOp::Unchanged {
                            return (task, None);
                        }
                        let mut refreshed_here = false;
                        let outcome = self
                            .apply_one(task, options, &mut refreshed_here, crd_applied)
                            .await;
                        (task, Some(outcome))
                    })
                        as std::pin::Pin<Box<dyn Future<Output = Outcome<'_>> + Send + '_>>
                })
                .collect();
            let outcomes: Vec<Outcome<'_>> = futures::stream::iter(runs)
                .buffered(parallel)
                .collect()
                .await;
            for (task, outcome) in outcomes {
                let id = task.id.clone();
                match outcome {
                    None => changes.push(id, Action::Unchanged, None),
                    Some(Ok(action)) => {
                        crd_applied |= manifest::is_crd(&id.group, &id.kind);
                        changes.push(id, action, None);
                    }
                    Some(Err(detail)) => {
                        tracing::warn!(%id, %detail, "apply failed");
                        failed_at.get_or_insert(key);
                        changes.push(id, Action::Failed, Some(detail));
                    }
                }
            }
        }
        for task in plan.tasks.iter().filter(|t| t.op == TaskOp::Delete) {
            if failed_at.is_some() {
                changes.push(
                    task.id.clone(),
                    Action::Skipped,
                    Some(PRUNE_SKIPPED_AFTER_FAILURE.to_owned()),
                );
                continue;
            }
            let (action, detail) = self.delete_one(&task.id, &mut refreshed).await;
            changes.push(task.id.clone(), action, detail);
        }
        tracing::info!(
            app = %self.app,
            created = changes.count(Action::Created),
            configured = changes.count(Action::Configured),
            deleted = changes.count(Action::Deleted),
            skipped = changes.count(Action::Skipped),
            failed = changes.count(Action::Failed),
            "kubernetes applied"
        );
        Ok(changes)
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
        let id = self.inventory_id();
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            &id.namespace,
            &kube::core::ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
        );
        let found = api.get_opt(&id.name).await.map_err(|e| {
            TargetError::Unavailable(format!("reading inventory {id}: {}", kube_error_text(&e)))
        })?;
        let Some(cm) = found else {
            return Ok(None);
        };
        let text = cm
            .data
            .get("data")
            .and_then(|d| d.get(INVENTORY_KEY))
            .and_then(Value::as_str)
            .unwrap_or("[]");
        let entries: BTreeSet<ObjectRef> =
            serde_json::from_str(text).map_err(|e| TargetError::Rejected {
                id: id.clone(),
                message: format!("the inventory's data.{INVENTORY_KEY} is not a list of ids: {e}"),
            })?;
        Ok(Some(Inventory { entries }))
    }

    async fn save_inventory(&self, inventory: &Inventory) -> Result<(), TargetError> {
        let id = self.inventory_id();
        let mut refreshed = false;
        let mut entries = BTreeSet::new();
        for raw in &inventory.entries {
            entries.insert(self.normalize_id(raw, &mut refreshed).await?.0);
        }
        let text = serde_json::to_string(&entries)
            .map_err(|e| TargetError::Unavailable(format!("encoding inventory {id}: {e}")))?;
        let body = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": id.name,
                "namespace": id.namespace,
                "labels": {OWNER_LABEL: self.app},
            },
            "data": {INVENTORY_KEY: text},
        });
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            &id.namespace,
            &kube::core::ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
        );
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let mut saved = api.patch(&id.name, &params, &Patch::Apply(&body)).await;
        // The inventory is the first thing written in a sync, so an app that brings its
        // own namespace (or asks for it with createNamespace) gets it here, first.
        if let Err(e) = &saved
            && namespace_missing(e)
        {
            let from_git = inventory.entries.iter().any(|entry| {
                entry.group.is_empty() && entry.kind == "Namespace" && entry.name == id.namespace
            });
            if from_git || self.create_namespace {
                self.create_namespace(&id.namespace, from_git).await?;
                saved = api.patch(&id.name, &params, &Patch::Apply(&body)).await;
            }
        }
        saved.map_err(|e| {
            TargetError::Unavailable(format!("saving inventory {id}: {}", kube_error_text(&e)))
        })?;
        Ok(())
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

    #[test]
    fn typed_patch_failures_are_refusals() {
        assert!(refuses_object(422, "Deployment.apps \"x\" is invalid"));
        assert!(refuses_object(
            500,
            "failed to create typed patch object (ns/x; apps/v1, Kind=Deployment): \
             .spec.replicas: expected numeric (int or float), got string"
        ));
        assert!(!refuses_object(500, "etcdserver: request timed out"));
        assert!(!refuses_object(429, "too many requests"));
    }

    #[test]
    fn conflicts_name_the_other_managers() {
        let msg = "Apply failed with 2 conflicts: conflict with \"intruder\" using v1: \
                   .data.a\nconflict with \"kubectl-edit\" using v1: .data.b";
        assert_eq!(
            conflict_detail(msg),
            format!("conflict with field manager(s) \"intruder\", \"kubectl-edit\": {msg}")
        );
        assert_eq!(conflict_detail("odd"), "field manager conflict: odd");
    }
}
