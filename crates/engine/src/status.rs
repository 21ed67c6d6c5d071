//! What the API, the CLI and the UI show about an app.

use driftless_model::{Health, ObjectRef, SyncStatus};
use driftless_store::{SyncRecord, SyncResult, Trigger};
use serde::Serialize;

use crate::config::{SourceConfig, SyncPolicy};

/// The commit an app's revision points at, as a person reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitSummary {
    pub revision: String,
    pub author: String,
    pub email: String,
    /// Author time, Unix seconds.
    pub time: i64,
    pub subject: String,
}

/// One managed object as the app sees it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStatus {
    pub id: ObjectRef,
    /// `Synced` when live equals desired; `OutOfSync` when it would be created, updated
    /// or pruned.
    pub status: SyncStatus,
    pub health: Health,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The last finished sync, in short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastSync {
    pub id: i64,
    pub revision: String,
    pub result: SyncResult,
    pub trigger: Trigger,
    pub finished_at: Option<i64>,
}

impl From<&SyncRecord> for LastSync {
    fn from(record: &SyncRecord) -> Self {
        LastSync {
            id: record.id,
            revision: record.revision.clone(),
            result: record.result,
            trigger: record.trigger,
            finished_at: record.finished_at,
        }
    }
}

/// Everything known about one app at this moment.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppStatus {
    pub name: String,
    pub source: SourceConfig,
    /// `files:/srv/web` or `kubernetes:context/namespace`.
    pub target: String,
    pub sync_policy: SyncPolicy,
    pub sync_status: SyncStatus,
    pub health: Health,
    /// The revision the app wants now (the ref's tip, or the rollback pin).
    pub revision: Option<String>,
    pub commit: Option<CommitSummary>,
    /// The revision of the last successful sync.
    pub applied_revision: Option<String>,
    pub last_sync: Option<LastSync>,
    /// What is wrong, in plain words (render errors carry file:line:col).
    pub error: Option<String>,
    pub suspended: bool,
    pub pinned_revision: Option<String>,
    /// Objects whose live state moved away from an applied revision.
    pub drifted: Vec<ObjectRef>,
    pub objects: Vec<ObjectStatus>,
    /// When the app last compared desired with live (Unix milliseconds).
    pub last_checked_at: Option<i64>,
    /// After a failed step: when the next attempt runs (Unix milliseconds). Failures
    /// back off exponentially, so a broken app never retries in a tight loop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_retry_at: Option<i64>,
}

/// The plan an app's last full step computed, as the diff route shows it: desired
/// contents dropped and everything decrypted redacted.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastPlan {
    /// The revision the plan was computed for.
    pub revision: String,
    /// When it was computed (Unix milliseconds).
    pub computed_at: i64,
    pub plan: driftless_model::Plan,
}
