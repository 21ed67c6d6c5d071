//! The contract between the engine and anything that holds live state.

use std::any::Any;
use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{ChangeSet, DesiredSet, Health, Inventory, ObjectRef, Plan};

/// Health of one live object, with the reason in plain words when not healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectHealth {
    pub id: ObjectRef,
    pub health: Health,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A live change noticed by a target's watch: the object may have drifted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftEvent {
    pub id: ObjectRef,
}

/// Called by a target's watch for each live change; must not block.
pub type DriftNotifier = Arc<dyn Fn(DriftEvent) + Send + Sync>;

/// Why a target call failed. Each variant says how the engine handles it.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The target cannot be reached or is not ready; retried with backoff.
    #[error("target unavailable: {0}")]
    Unavailable(String),
    /// The target refused an object as invalid; the sync fails until Git changes.
    #[error("{id}: rejected: {message}")]
    Rejected { id: ObjectRef, message: String },
    /// Another owner (app or field manager) holds the object; shown on both apps.
    #[error("{id}: conflict: {message}")]
    Conflict { id: ObjectRef, message: String },
    /// The desired set cannot be applied to this target (e.g. a manifest given to a
    /// files target, a path that escapes the root); fails until Git changes.
    #[error("{0}")]
    Unsupported(String),
    /// Local I/O failed; retried with backoff.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl TargetError {
    /// Whether retrying the same call later may succeed without a change in Git.
    pub fn is_transient(&self) -> bool {
        matches!(self, TargetError::Unavailable(_) | TargetError::Io { .. })
    }

    /// A short stable label for metrics (`reason="conflict"`).
    pub fn reason(&self) -> &'static str {
        match self {
            TargetError::Unavailable(_) => "unavailable",
            TargetError::Rejected { .. } => "rejected",
            TargetError::Conflict { .. } => "conflict",
            TargetError::Unsupported(_) => "unsupported",
            TargetError::Io { .. } => "io",
        }
    }
}

/// Options that shape a plan and its application.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncOptions {
    /// Plan deletes for inventory entries that left Git.
    pub prune: bool,
    /// Take over fields owned by another field manager (Kubernetes only).
    pub force_conflicts: bool,
}

/// Anything that holds live state driftless reconciles: host files, a Kubernetes cluster.
///
/// Guarantees expected of implementations: `plan` changes nothing; `apply` touches only
/// the objects its plan names and reports every one of them in the change set; deletes
/// come only from plan tasks, which come only from the inventory.
#[async_trait]
pub trait Target: Send + Sync {
    /// A short description for messages, e.g. `files:/srv/web`.
    fn describe(&self) -> String;

    /// Compares desired with live (and the inventory, for prunes) without changing anything.
    async fn plan(
        &self,
        desired: &DesiredSet,
        inventory: &Inventory,
        options: SyncOptions,
    ) -> Result<Plan, TargetError>;

    /// Carries out a plan in its order. Per-object failures appear as `Action::Failed`
    /// in the change set; an `Err` means the target itself failed mid-way.
    async fn apply(&self, plan: &Plan, options: SyncOptions) -> Result<ChangeSet, TargetError>;

    /// Health of the given live objects.
    async fn health(&self, ids: &[ObjectRef]) -> Result<Vec<ObjectHealth>, TargetError>;

    /// The inventory the target keeps itself, when it keeps one (Kubernetes stores it in
    /// the cluster so that a new process on another machine prunes correctly). `None`:
    /// the engine's store is the only copy.
    async fn load_inventory(&self) -> Result<Option<Inventory>, TargetError> {
        Ok(None)
    }

    /// Stores the inventory with the target, when it keeps one. Called before an apply
    /// (widened with everything about to be written) and after it (narrowed).
    async fn save_inventory(&self, _inventory: &Inventory) -> Result<(), TargetError> {
        Ok(())
    }

    /// Starts watching `ids` and calls `notify` for each live change. The watch lives as
    /// long as the returned guard.
    async fn watch(
        &self,
        ids: BTreeSet<ObjectRef>,
        notify: DriftNotifier,
    ) -> Result<Box<dyn Any + Send>, TargetError>;
}
