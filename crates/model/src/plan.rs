//! The sync plan (what would change, as data) and the change set (what did change).

use serde::{Deserialize, Serialize};

use crate::{Object, ObjectRef};

/// What a plan intends to do with one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskOp {
    Create,
    Update,
    /// Prune: in the inventory, no longer in Git.
    Delete,
    Unchanged,
}

/// One step of a plan. `desired` is `None` for a delete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Coarse ordering bucket chosen by the target (e.g. CRDs and Namespaces first).
    pub phase: u8,
    /// Finer ordering from the `driftless.dev/wave` annotation; 0 by default.
    pub wave: i32,
    pub id: ObjectRef,
    pub op: TaskOp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired: Option<Object>,
    /// A unified diff of live → desired with secret values redacted, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// Who changed the live object behind Git's back, when the target can tell (e.g. the
    /// Kubernetes field managers that own a drifted field: `kubectl-edit`).
    #[serde(default, rename = "changedBy", skip_serializing_if = "Vec::is_empty")]
    pub changed_by: Vec<String>,
    /// Applying would take fields from the other managers in `changed_by`, which the
    /// sync policy does not allow (Kubernetes `sync.force: false`): reported, not healed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub conflict: bool,
}

/// An ordered list of tasks for one revision. Applies run in (phase, wave, kind,
/// namespace, name) order; deletes run after all applies, in the reverse of that order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub revision: String,
    pub tasks: Vec<Task>,
}

impl Plan {
    /// Builds a plan with its tasks in the deterministic order described on [`Plan`].
    pub fn new(revision: impl Into<String>, mut tasks: Vec<Task>) -> Self {
        tasks.sort_by(|a, b| {
            let a_del = a.op == TaskOp::Delete;
            let b_del = b.op == TaskOp::Delete;
            let key = |t: &Task| {
                (
                    t.phase,
                    t.wave,
                    t.id.kind.clone(),
                    t.id.namespace.clone(),
                    t.id.name.clone(),
                    t.id.group.clone(),
                )
            };
            a_del.cmp(&b_del).then_with(|| {
                if a_del {
                    key(b).cmp(&key(a))
                } else {
                    key(a).cmp(&key(b))
                }
            })
        });
        Self {
            revision: revision.into(),
            tasks,
        }
    }

    /// Whether anything would be created, updated or deleted.
    pub fn has_changes(&self) -> bool {
        self.tasks.iter().any(|t| t.op != TaskOp::Unchanged)
    }

    /// Counts of (create, update, delete, unchanged).
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let count = |op| self.tasks.iter().filter(|t| t.op == op).count();
        (
            count(TaskOp::Create),
            count(TaskOp::Update),
            count(TaskOp::Delete),
            count(TaskOp::Unchanged),
        )
    }
}

/// What happened to one object in a mutating call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Created,
    Configured,
    Unchanged,
    Deleted,
    /// Left alone on purpose (opt-out annotation, not ours, conflict); see the detail.
    Skipped,
    /// The call for this object failed; see the detail.
    Failed,
}

/// One entry of a change set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub id: ObjectRef,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Every mutating call returns one: used for events, logs, history and the next inventory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSet {
    pub changes: Vec<Change>,
}

impl ChangeSet {
    pub fn push(&mut self, id: ObjectRef, action: Action, detail: Option<String>) {
        self.changes.push(Change { id, action, detail });
    }

    /// Whether anything was created, configured or deleted.
    pub fn changed_anything(&self) -> bool {
        self.changes.iter().any(|c| {
            matches!(
                c.action,
                Action::Created | Action::Configured | Action::Deleted
            )
        })
    }

    /// Whether any object failed.
    pub fn has_failures(&self) -> bool {
        self.changes.iter().any(|c| c.action == Action::Failed)
    }

    /// How many entries have `action`.
    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(phase: u8, wave: i32, kind: &str, name: &str, op: TaskOp) -> Task {
        Task {
            phase,
            wave,
            id: ObjectRef {
                group: String::new(),
                kind: kind.into(),
                namespace: String::new(),
                name: name.into(),
            },
            op,
            desired: None,
            diff: None,
            changed_by: Vec::new(),
            conflict: false,
        }
    }

    #[test]
    fn applies_in_order_then_deletes_in_reverse() {
        let plan = Plan::new(
            "r1",
            vec![
                task(2, 0, "ConfigMap", "b", TaskOp::Create),
                task(2, 0, "ConfigMap", "old1", TaskOp::Delete),
                task(0, 0, "Namespace", "ns", TaskOp::Update),
                task(2, -1, "ConfigMap", "z", TaskOp::Unchanged),
                task(0, 0, "Namespace", "oldns", TaskOp::Delete),
            ],
        );
        let names: Vec<_> = plan.tasks.iter().map(|t| t.id.name.as_str()).collect();
        assert_eq!(names, ["ns", "z", "b", "old1", "oldns"]);
        assert!(plan.has_changes());
        assert_eq!(plan.counts(), (1, 1, 2, 1));
    }
}
