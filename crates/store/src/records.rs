//! The rows the store keeps, as the API shows them (camelCase JSON).

use std::fmt;
use std::str::FromStr;

use driftless_model::{ChangeSet, ObjectRef};
use serde::{Deserialize, Serialize};

/// The commit a sync applied, as Git recorded it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitMeta {
    pub author: String,
    pub email: String,
    /// Commit time, unix seconds.
    pub time: i64,
    /// The first line of the message.
    pub subject: String,
    /// The whole message.
    pub message: String,
}

/// What started a sync. Stored as its lowercase name (`selfheal` for [`Trigger::SelfHeal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// The periodic poll found a new revision.
    Poll,
    /// A Git host's webhook asked for a refresh.
    Webhook,
    /// A user asked (CLI, API, UI).
    Manual,
    /// A user asked for an earlier revision.
    Rollback,
    /// Live state drifted and self-heal reverted it.
    SelfHeal,
    /// The first reconcile after driftless started.
    Startup,
    /// A target watch reported a live change.
    Watch,
}

impl Trigger {
    /// Every trigger, for parsing and tests.
    pub const ALL: [Trigger; 7] = [
        Trigger::Poll,
        Trigger::Webhook,
        Trigger::Manual,
        Trigger::Rollback,
        Trigger::SelfHeal,
        Trigger::Startup,
        Trigger::Watch,
    ];

    /// The stored (and JSON) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Poll => "poll",
            Trigger::Webhook => "webhook",
            Trigger::Manual => "manual",
            Trigger::Rollback => "rollback",
            Trigger::SelfHeal => "selfheal",
            Trigger::Startup => "startup",
            Trigger::Watch => "watch",
        }
    }
}

/// The result of one sync attempt. Stored as its lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncResult {
    /// Started and not finished yet.
    Running,
    Succeeded,
    Failed,
    /// driftless stopped (crash, kill) before the sync finished; set at the next start.
    Interrupted,
}

impl SyncResult {
    /// Every result, for parsing and tests.
    pub const ALL: [SyncResult; 4] = [
        SyncResult::Running,
        SyncResult::Succeeded,
        SyncResult::Failed,
        SyncResult::Interrupted,
    ];

    /// The stored (and JSON) name.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncResult::Running => "running",
            SyncResult::Succeeded => "succeeded",
            SyncResult::Failed => "failed",
            SyncResult::Interrupted => "interrupted",
        }
    }
}

/// How serious an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    /// Every severity, for parsing and tests.
    pub const ALL: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Error];

    /// The stored (and JSON) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

macro_rules! text_enum {
    ($t:ty, $what:literal) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $t {
            type Err = UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownName {
                        what: $what,
                        name: s.to_owned(),
                    })
            }
        }
    };
}

text_enum!(Trigger, "trigger");
text_enum!(SyncResult, "sync result");
text_enum!(Severity, "severity");

/// A name that is not one of an enum's stored names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {name:?}")]
pub struct UnknownName {
    pub what: &'static str,
    pub name: String,
}

/// A sync about to start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewSync {
    pub app: String,
    pub revision: String,
    pub commit: Option<CommitMeta>,
    pub trigger: Trigger,
    /// Who asked (token name or `local`), for manual syncs and rollbacks.
    pub requested_by: Option<String>,
}

/// How a sync ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncOutcome {
    pub result: SyncResult,
    pub change_set: ChangeSet,
    pub error: Option<String>,
    pub post_sync_output: Option<String>,
}

/// One row of sync history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncRecord {
    pub id: i64,
    pub app: String,
    pub revision: String,
    pub commit: Option<CommitMeta>,
    pub trigger: Trigger,
    pub requested_by: Option<String>,
    /// Unix milliseconds.
    pub started_at: i64,
    /// Unix milliseconds; `None` while running.
    pub finished_at: Option<i64>,
    pub result: SyncResult,
    pub change_set: ChangeSet,
    pub error: Option<String>,
    pub post_sync_output: Option<String>,
}

/// How many objects of a sync's change set each action touched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeCounts {
    pub created: u64,
    pub configured: u64,
    pub unchanged: u64,
    pub deleted: u64,
    pub skipped: u64,
    pub failed: u64,
}

impl ChangeCounts {
    /// Every entry of the change set.
    pub fn total(&self) -> u64 {
        self.created + self.configured + self.unchanged + self.deleted + self.skipped + self.failed
    }
}

/// One row of sync history as lists show it: the change set as counts only (a change set
/// can name thousands of objects; [`SyncRecord`] has it whole), without `postSyncOutput`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncSummary {
    pub id: i64,
    pub app: String,
    pub revision: String,
    pub commit: Option<CommitMeta>,
    pub trigger: Trigger,
    pub requested_by: Option<String>,
    /// Unix milliseconds.
    pub started_at: i64,
    /// Unix milliseconds; `None` while running.
    pub finished_at: Option<i64>,
    pub result: SyncResult,
    pub changes: ChangeCounts,
    pub error: Option<String>,
}

/// Something worth telling a user about: drift detected or healed, a sync started or
/// finished, an error, a health change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewEvent {
    /// `None` for events about driftless itself.
    pub app: Option<String>,
    /// A short kebab-case kind, e.g. `drift-detected`, `sync-failed`.
    pub kind: String,
    pub severity: Severity,
    pub message: String,
    pub object: Option<ObjectRef>,
    pub revision: Option<String>,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRecord {
    pub id: i64,
    /// Unix milliseconds.
    pub at: i64,
    pub app: Option<String>,
    pub kind: String,
    pub severity: Severity,
    pub message: String,
    pub object: Option<ObjectRef>,
    pub revision: Option<String>,
}

/// Who asked for what, and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAudit {
    /// Token name, or `local` for the CLI and the open loopback API.
    pub actor: String,
    /// What was asked, e.g. `sync`, `rollback`, `suspend`.
    pub action: String,
    pub app: Option<String>,
    pub detail: Option<String>,
    /// `ok`, or the error.
    pub outcome: String,
}

/// A stored audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    pub id: i64,
    /// Unix milliseconds.
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub app: Option<String>,
    pub detail: Option<String>,
    pub outcome: String,
}

/// Per-app state that must survive a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppState {
    /// Automatic syncs are paused.
    pub suspended: bool,
    /// A rollback pinned the app to this revision until a user un-pins it.
    pub pinned_revision: Option<String>,
    /// The revision of the last successful apply.
    pub last_applied_revision: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_names_round_trip_and_match_json() {
        for t in Trigger::ALL {
            assert_eq!(t.as_str().parse::<Trigger>(), Ok(t));
            assert_eq!(
                serde_json::to_value(t).expect("json"),
                serde_json::Value::from(t.as_str())
            );
        }
        for r in SyncResult::ALL {
            assert_eq!(r.as_str().parse::<SyncResult>(), Ok(r));
            assert_eq!(
                serde_json::to_value(r).expect("json"),
                serde_json::Value::from(r.as_str())
            );
        }
        for s in Severity::ALL {
            assert_eq!(s.as_str().parse::<Severity>(), Ok(s));
            assert_eq!(
                serde_json::to_value(s).expect("json"),
                serde_json::Value::from(s.as_str())
            );
        }
        let err = "Poll".parse::<Trigger>().expect_err("names are lowercase");
        assert_eq!(err.to_string(), "unknown trigger \"Poll\"");
    }

    #[test]
    fn records_serialise_in_camel_case() {
        let st = AppState {
            suspended: true,
            pinned_revision: Some("abc".into()),
            last_applied_revision: None,
        };
        let json = serde_json::to_value(&st).expect("json");
        assert_eq!(json["pinnedRevision"], "abc");
        assert!(json.get("lastAppliedRevision").is_some());
    }
}
