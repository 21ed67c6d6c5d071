//! Sync status and health, kept apart as Argo CD does: "is live what Git says" versus
//! "is what we applied actually working".

use serde::{Deserialize, Serialize};

/// Whether live state matches the desired state of the app's current revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SyncStatus {
    /// Live equals desired.
    Synced,
    /// Live differs from desired (new revision not applied yet, or drift).
    OutOfSync,
    /// The last attempt to render or apply failed.
    Failed,
    /// Not observed yet.
    Unknown,
}

/// Health of an object or an app, ordered from best to worst so that an app's health is
/// the worst of its objects' (`max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Health {
    Healthy,
    /// Deliberately paused (e.g. a suspended CronJob or app); not a failure.
    Suspended,
    Progressing,
    Unknown,
    Missing,
    Degraded,
}

impl Health {
    /// Whether `self` is worse than `other`.
    pub fn is_worse(self, other: Health) -> bool {
        self > other
    }

    /// The worst health of many; `Healthy` when there are none.
    pub fn worst(all: impl IntoIterator<Item = Health>) -> Health {
        all.into_iter().max().unwrap_or(Health::Healthy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_health_wins() {
        assert_eq!(
            Health::worst([Health::Healthy, Health::Progressing, Health::Healthy]),
            Health::Progressing
        );
        assert_eq!(
            Health::worst([Health::Missing, Health::Degraded]),
            Health::Degraded
        );
        assert_eq!(Health::worst([]), Health::Healthy);
        assert!(Health::Degraded.is_worse(Health::Missing));
        assert!(!Health::Healthy.is_worse(Health::Healthy));
    }
}
