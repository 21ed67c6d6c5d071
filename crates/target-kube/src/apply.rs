//! Applying a plan: (phase, wave) groups in order, objects of one group a few at a
//! time, CRDs waited on until Established, prune only when every apply succeeded.

use std::time::Duration;

use driftless_model::{
    Action, ChangeSet, Content, Health, ObjectRef, Plan, SyncOptions, TargetError, Task, TaskOp,
};
use futures::StreamExt;
use kube::api::{Patch, PatchParams};

use crate::api_errors::{api_status, conflict_detail, kube_error_text};
use crate::discovery::Kind;
use crate::manifest::{self, split_api_version, str_at};
use crate::{
    APPLY_CONCURRENCY, FIELD_MANAGER, KubeTarget, PRUNE_SKIPPED_AFTER_FAILURE,
    SKIPPED_AFTER_FAILURE, health,
};

impl KubeTarget {
    /// Waits until the CRD `id` reports Established, or says why not.
    pub(crate) async fn wait_established(&self, kind: &Kind, id: &ObjectRef) -> Result<(), String> {
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
    pub(crate) async fn apply_one(
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

    pub(crate) async fn apply_plan(
        &self,
        plan: &Plan,
        options: SyncOptions,
    ) -> Result<ChangeSet, TargetError> {
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
}
