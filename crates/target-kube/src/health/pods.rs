//! Pod, Job and PersistentVolumeClaim.

use driftless_model::Health;
use serde_json::Value;

use super::{Verdict, cond_status, cond_text, condition, healthy, verdict};

pub fn job(obj: &Value) -> Verdict {
    if obj.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
        return verdict(Health::Suspended, "job is suspended");
    }
    if let Some(c) = condition(obj, "Failed")
        && cond_status(c) == "True"
    {
        return verdict(Health::Degraded, format!("job failed: {}", cond_text(c)));
    }
    if let Some(c) = condition(obj, "Complete")
        && cond_status(c) == "True"
    {
        return healthy();
    }
    let active = obj
        .pointer("/status/active")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    verdict(
        Health::Progressing,
        format!("job running ({active} active pods)"),
    )
}

pub fn pod(obj: &Value) -> Verdict {
    let phase = obj
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending");
    // A crash loop shows as Running with a waiting container.
    let statuses = ["initContainerStatuses", "containerStatuses"]
        .iter()
        .filter_map(|k| obj.get("status")?.get(k)?.as_array())
        .flatten();
    for status in statuses {
        if let Some(waiting) = status.pointer("/state/waiting") {
            let reason = waiting
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if matches!(
                reason,
                "CrashLoopBackOff"
                    | "ImagePullBackOff"
                    | "ErrImagePull"
                    | "CreateContainerConfigError"
                    | "InvalidImageName"
            ) {
                let name = status.get("name").and_then(Value::as_str).unwrap_or("?");
                let message = waiting
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let text = if message.is_empty() {
                    format!("container {name}: {reason}")
                } else {
                    format!("container {name}: {reason}: {message}")
                };
                return verdict(Health::Degraded, text);
            }
        }
    }
    match phase {
        "Succeeded" => healthy(),
        "Failed" => {
            let why = obj
                .pointer("/status/message")
                .and_then(Value::as_str)
                .unwrap_or("pod failed");
            verdict(Health::Degraded, why.to_owned())
        }
        "Running" => match condition(obj, "Ready") {
            Some(c) if cond_status(c) == "True" => healthy(),
            Some(c) => verdict(
                Health::Progressing,
                format!("running, not ready: {}", cond_text(c)),
            ),
            None => verdict(Health::Progressing, "running, not ready yet"),
        },
        "Pending" => {
            let why = condition(obj, "PodScheduled")
                .filter(|c| cond_status(c) == "False")
                .map(|c| format!("pending: {}", cond_text(c)))
                .unwrap_or_else(|| "pending".to_owned());
            verdict(Health::Progressing, why)
        }
        other => verdict(Health::Unknown, format!("pod phase {other}")),
    }
}

pub fn pvc(obj: &Value) -> Verdict {
    match obj.pointer("/status/phase").and_then(Value::as_str) {
        Some("Bound") => healthy(),
        Some("Lost") => verdict(Health::Degraded, "claim lost its volume"),
        Some("Pending") | None => verdict(Health::Progressing, "waiting for a volume"),
        Some(other) => verdict(Health::Unknown, format!("claim phase {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn jobs() {
        let done = json!({"status": {"conditions": [{"type": "Complete", "status": "True"}]}});
        assert_eq!(job(&done), healthy());
        let failed = json!({"status": {"conditions": [{"type": "Failed", "status": "True",
            "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}});
        assert_eq!(
            job(&failed),
            verdict(
                Health::Degraded,
                "job failed: BackoffLimitExceeded: Job has reached the specified backoff limit"
            )
        );
        assert_eq!(
            job(&json!({"status": {"active": 1}})),
            verdict(Health::Progressing, "job running (1 active pods)")
        );
    }

    #[test]
    fn pods() {
        let ready = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(pod(&ready), healthy());
        assert_eq!(pod(&json!({"status": {"phase": "Succeeded"}})), healthy());
        let crash = json!({"status": {"phase": "Running", "containerStatuses": [{"name": "app",
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}}}]}});
        assert_eq!(
            pod(&crash),
            verdict(
                Health::Degraded,
                "container app: CrashLoopBackOff: back-off 5m0s"
            )
        );
        let unscheduled = json!({"status": {"phase": "Pending", "conditions": [{"type": "PodScheduled",
            "status": "False", "reason": "Unschedulable", "message": "0/0 nodes are available"}]}});
        assert_eq!(
            pod(&unscheduled),
            verdict(
                Health::Progressing,
                "pending: Unschedulable: 0/0 nodes are available"
            )
        );
        assert_eq!(
            pod(&json!({"status": {"phase": "Failed", "message": "OOMKilled"}})),
            verdict(Health::Degraded, "OOMKilled")
        );
    }

    #[test]
    fn claims() {
        assert_eq!(pvc(&json!({"status": {"phase": "Bound"}})), healthy());
        assert_eq!(
            pvc(&json!({"status": {"phase": "Lost"}})).0,
            Health::Degraded
        );
        assert_eq!(
            pvc(&json!({"status": {"phase": "Pending"}})).0,
            Health::Progressing
        );
    }
}
