//! Deployment, StatefulSet, DaemonSet, ReplicaSet: rolled out when the controller has
//! seen the latest spec and every replica is updated and available.

use driftless_model::Health;
use serde_json::Value;

use super::{Verdict, cond_status, cond_text, condition, healthy, int, observed_latest, verdict};

const WAITING_FOR_CONTROLLER: &str = "waiting for the controller to observe the latest spec";

pub fn deployment(obj: &Value) -> Verdict {
    if obj.pointer("/spec/paused").and_then(Value::as_bool) == Some(true) {
        return verdict(Health::Suspended, "deployment is paused");
    }
    if let Some(c) = condition(obj, "Progressing")
        && c.get("reason").and_then(Value::as_str) == Some("ProgressDeadlineExceeded")
    {
        return verdict(Health::Degraded, cond_text(c));
    }
    if observed_latest(obj) != Some(true) {
        return verdict(Health::Progressing, WAITING_FOR_CONTROLLER);
    }
    let want = obj
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let updated = int(obj, &["status", "updatedReplicas"]);
    let available = int(obj, &["status", "availableReplicas"]);
    let total = int(obj, &["status", "replicas"]);
    if updated < want {
        return verdict(
            Health::Progressing,
            format!("{updated} of {want} replicas updated"),
        );
    }
    if total > updated {
        return verdict(
            Health::Progressing,
            format!("{} old replicas pending termination", total - updated),
        );
    }
    if available < want {
        // Available=False is normal while a rollout progresses; it is an outage once
        // the Progressing condition says the rollout stopped.
        if let Some(c) = condition(obj, "Available")
            && cond_status(c) == "False"
            && condition(obj, "Progressing").is_some_and(|p| cond_status(p) == "False")
        {
            return verdict(
                Health::Degraded,
                format!("Available=False: {}", cond_text(c)),
            );
        }
        return verdict(
            Health::Progressing,
            format!("{available} of {want} updated replicas available"),
        );
    }
    healthy()
}

pub fn stateful_set(obj: &Value) -> Verdict {
    if observed_latest(obj) != Some(true) {
        return verdict(Health::Progressing, WAITING_FOR_CONTROLLER);
    }
    let want = obj
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let ready = int(obj, &["status", "readyReplicas"]);
    if ready < want {
        return verdict(
            Health::Progressing,
            format!("{ready} of {want} replicas ready"),
        );
    }
    let rolling = obj
        .pointer("/spec/updateStrategy/type")
        .and_then(Value::as_str)
        != Some("OnDelete");
    if rolling {
        let updated = int(obj, &["status", "updatedReplicas"]);
        if updated < want {
            return verdict(
                Health::Progressing,
                format!("{updated} of {want} replicas updated"),
            );
        }
        let current = obj
            .pointer("/status/currentRevision")
            .and_then(Value::as_str);
        let update = obj
            .pointer("/status/updateRevision")
            .and_then(Value::as_str);
        if current != update {
            return verdict(Health::Progressing, "rolling update in progress");
        }
    }
    healthy()
}

pub fn daemon_set(obj: &Value) -> Verdict {
    if observed_latest(obj) != Some(true) {
        return verdict(Health::Progressing, WAITING_FOR_CONTROLLER);
    }
    let want = int(obj, &["status", "desiredNumberScheduled"]);
    let updated = int(obj, &["status", "updatedNumberScheduled"]);
    let available = int(obj, &["status", "numberAvailable"]);
    if updated < want {
        return verdict(
            Health::Progressing,
            format!("{updated} of {want} pods updated"),
        );
    }
    if available < want {
        return verdict(
            Health::Progressing,
            format!("{available} of {want} updated pods available"),
        );
    }
    healthy()
}

pub fn replica_set(obj: &Value) -> Verdict {
    if let Some(c) = condition(obj, "ReplicaFailure")
        && cond_status(c) == "True"
    {
        return verdict(Health::Degraded, cond_text(c));
    }
    if observed_latest(obj) != Some(true) {
        return verdict(Health::Progressing, WAITING_FOR_CONTROLLER);
    }
    let want = obj
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let available = int(obj, &["status", "availableReplicas"]);
    if available < want {
        return verdict(
            Health::Progressing,
            format!("{available} of {want} replicas available"),
        );
    }
    healthy()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A Deployment of 2 replicas as kube-controller-manager 1.37.2 reported it in the
    /// testenv cluster, where no pod ever runs (no kubelet, no scheduler); recorded by
    /// `tests/cluster.rs::deployment_health_follows_the_controller`.
    fn deployment_waiting() -> Value {
        json!({
            "metadata": {"generation": 1},
            "spec": {"replicas": 2},
            "status": {"observedGeneration":1,"replicas":2,"updatedReplicas":2,"unavailableReplicas":2,
                "terminatingReplicas":0,"conditions":[
                {"type":"Available","status":"False","lastUpdateTime":"2026-11-23T13:15:06Z",
                 "lastTransitionTime":"2026-11-23T13:15:06Z","reason":"MinimumReplicasUnavailable",
                 "message":"Deployment does not have minimum availability."},
                {"type":"Progressing","status":"True","lastUpdateTime":"2026-11-23T13:15:06Z",
                 "lastTransitionTime":"2026-11-23T13:15:06Z","reason":"ReplicaSetUpdated",
                 "message":"ReplicaSet \"busy-58f74ff6f9\" is progressing."}]}
        })
    }

    #[test]
    fn deployment_rollout_states() {
        assert_eq!(
            deployment(&deployment_waiting()),
            verdict(Health::Progressing, "0 of 2 updated replicas available")
        );
        let mut stopped = deployment_waiting();
        stopped["status"]["conditions"][1]["status"] = json!("False");
        stopped["status"]["conditions"][1]["reason"] = json!("NewReplicaSetCreated");
        assert_eq!(
            deployment(&stopped),
            verdict(
                Health::Degraded,
                "Available=False: MinimumReplicasUnavailable: Deployment does not have minimum availability."
            )
        );

        let mut one_up = deployment_waiting();
        one_up["status"]["availableReplicas"] = json!(1);
        assert_eq!(
            deployment(&one_up),
            verdict(Health::Progressing, "1 of 2 updated replicas available")
        );

        let mut done = deployment_waiting();
        done["status"]["availableReplicas"] = json!(2);
        done["status"]["conditions"][0]["status"] = json!("True");
        assert_eq!(deployment(&done), healthy());

        let mut new_spec = done.clone();
        new_spec["metadata"]["generation"] = json!(2);
        assert_eq!(
            deployment(&new_spec),
            verdict(Health::Progressing, WAITING_FOR_CONTROLLER)
        );

        let mut stuck = deployment_waiting();
        stuck["status"]["conditions"][1] = json!({"type": "Progressing", "status": "False",
            "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"busy-58f74ff6f9\" has timed out progressing."});
        assert_eq!(
            deployment(&stuck),
            verdict(
                Health::Degraded,
                "ProgressDeadlineExceeded: ReplicaSet \"busy-58f74ff6f9\" has timed out progressing."
            )
        );

        let mut surge = done.clone();
        surge["status"]["replicas"] = json!(3);
        assert_eq!(
            deployment(&surge),
            verdict(Health::Progressing, "1 old replicas pending termination")
        );
        assert_eq!(
            deployment(&json!({"spec": {"replicas": 1}})).0,
            Health::Progressing
        );
    }

    #[test]
    fn stateful_and_daemon_sets() {
        let sts = json!({"metadata": {"generation": 2}, "spec": {"replicas": 3},
            "status": {"observedGeneration": 2, "readyReplicas": 3, "updatedReplicas": 3,
                "currentRevision": "a", "updateRevision": "b"}});
        assert_eq!(
            stateful_set(&sts),
            verdict(Health::Progressing, "rolling update in progress")
        );
        let mut done = sts.clone();
        done["status"]["currentRevision"] = json!("b");
        assert_eq!(stateful_set(&done), healthy());
        let mut short = done.clone();
        short["status"]["readyReplicas"] = json!(1);
        assert_eq!(
            stateful_set(&short),
            verdict(Health::Progressing, "1 of 3 replicas ready")
        );

        let ds = json!({"metadata": {"generation": 1}, "status": {"observedGeneration": 1,
            "desiredNumberScheduled": 4, "updatedNumberScheduled": 4, "numberAvailable": 3}});
        assert_eq!(
            daemon_set(&ds),
            verdict(Health::Progressing, "3 of 4 updated pods available")
        );
    }

    #[test]
    fn replica_sets() {
        let failing = json!({"status": {"conditions": [{"type": "ReplicaFailure", "status": "True",
            "reason": "FailedCreate", "message": "quota exceeded"}]}});
        assert_eq!(
            replica_set(&failing),
            verdict(Health::Degraded, "FailedCreate: quota exceeded")
        );
        let ok = json!({"metadata": {"generation": 1}, "spec": {"replicas": 0},
            "status": {"observedGeneration": 1}});
        assert_eq!(replica_set(&ok), healthy());
    }
}
