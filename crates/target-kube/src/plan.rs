//! Planning: desired objects made ready for the cluster, live objects read by LIST (GET
//! for the rest), and one server-side dry run per object compared with live.

use std::collections::{BTreeSet, HashMap, HashSet};

use driftless_model::{
    Content, DesiredSet, Inventory, Object, ObjectRef, Plan, SyncOptions, TargetError, Task, TaskOp,
};
use futures::{StreamExt, TryStreamExt};
use kube::api::{ListParams, Patch, PatchParams, TypeMeta};
use serde_json::Value;

use crate::api_errors::{
    api_status, conflict_detail, conflict_managers, kube_error_text, quoted_list, refuses_object,
};
use crate::discovery::Kind;
use crate::manifest::{self, label, split_api_version, str_at};
use crate::{FIELD_MANAGER, KubeTarget, LIST_AT_LEAST, OWNER_LABEL, PLAN_CONCURRENCY, managers};

/// A desired object made ready for the cluster.
pub(crate) struct Prepared {
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
pub(crate) type ListKey = (String, String, String, String);

pub(crate) fn list_key(kind: &Kind, namespace: &str) -> ListKey {
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
pub(crate) struct Listed {
    /// Per (kind, namespace) listed: name → object (with apiVersion and kind).
    groups: HashMap<ListKey, HashMap<String, Value>>,
}

impl Listed {
    /// Takes the listed object `id` of `kind` out, if the LIST returned it.
    pub(crate) fn take(&mut self, kind: &Kind, id: &ObjectRef) -> Option<Value> {
        self.groups
            .get_mut(&list_key(kind, &id.namespace))?
            .remove(&id.name)
    }
}

/// Kinds that CRDs of a desired set will define: (group, kind) → (namespaced, versions).
pub(crate) type PendingKinds = HashMap<(String, String), (bool, Vec<String>)>;

pub(crate) fn crd_kinds(desired: &DesiredSet) -> PendingKinds {
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

pub(crate) fn desired_namespaces(desired: &DesiredSet) -> HashSet<String> {
    desired
        .objects
        .iter()
        .filter(|o| o.id.group.is_empty() && o.id.kind == "Namespace")
        .map(|o| o.id.name.clone())
        .collect()
}

impl KubeTarget {
    /// The live object: the listed one when the LIST returned it, else read by a GET.
    pub(crate) async fn live(
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
    pub(crate) fn owner_selector(&self) -> String {
        format!("{OWNER_LABEL}={}", self.app)
    }

    /// Lists the app's live objects of each (kind, namespace) given (namespace empty for
    /// cluster-scoped kinds), a few LISTs at a time. A (kind, namespace) the server will
    /// not list for us is left out, and its objects are read one by one.
    pub(crate) async fn list_owned<'k>(
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
    pub(crate) async fn list_one(
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

    pub(crate) fn redacted(&self, v: &Value) -> Value {
        driftless_diff::redact_manifest(&manifest::strip_server_fields(v), &self.salt[..])
    }

    pub(crate) async fn prepare(
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
    pub(crate) fn check_owner(&self, id: &ObjectRef, live: &Value) -> Result<(), TargetError> {
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

    pub(crate) async fn dry_run(
        &self,
        kind: &Kind,
        p: &Prepared,
        force: bool,
    ) -> Result<Value, kube::Error> {
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
    pub(crate) async fn plan_one(
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

    pub(crate) async fn plan_objects(
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
}
