//! Pruning: which inventory entries that left Git may be deleted, and deleting them
//! after checking again that they are still ours.

use std::collections::BTreeSet;

use driftless_model::{Action, Inventory, ObjectRef, TargetError, Task, TaskOp};
use kube::api::{DeleteParams, Preconditions};
use serde_json::Value;

use crate::api_errors::{api_status, kube_error_text};
use crate::manifest::{self, annotation, label, str_at};
use crate::plan::Listed;
use crate::{KubeTarget, OWNER_LABEL, PRUNE_ANNOTATION};

impl KubeTarget {
    /// Why prune must leave a live object alone, if it must.
    pub(crate) fn prune_refusal(&self, live: &Value) -> Option<String> {
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

    pub(crate) async fn plan_prune(
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

    /// Deletes one pruned object after checking again that it is still ours.
    pub(crate) async fn delete_one(
        &self,
        id: &ObjectRef,
        refreshed: &mut bool,
    ) -> (Action, Option<String>) {
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
