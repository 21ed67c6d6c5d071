//! Health from live objects: one rule per kind family, generic rules for the rest.
//! Pure functions over the object's JSON; the target fetches, these judge.

mod api;
mod network;
mod pods;
mod workloads;

use driftless_model::Health;
use serde_json::Value;

/// A verdict and, when not healthy, the reason in plain words.
pub type Verdict = (Health, Option<String>);

/// Health of one live object of `group`/`kind`.
pub fn assess(group: &str, kind: &str, obj: &Value) -> Verdict {
    match (group, kind) {
        ("apps", "Deployment") => workloads::deployment(obj),
        ("apps", "StatefulSet") => workloads::stateful_set(obj),
        ("apps", "DaemonSet") => workloads::daemon_set(obj),
        ("apps", "ReplicaSet") => workloads::replica_set(obj),
        ("batch", "Job") => pods::job(obj),
        ("", "Pod") => pods::pod(obj),
        ("", "PersistentVolumeClaim") => pods::pvc(obj),
        ("", "Service") => network::service(obj),
        ("networking.k8s.io", "Ingress") => network::ingress(obj),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => api::crd(obj),
        ("apiregistration.k8s.io", "APIService") => api::api_service(obj),
        _ => generic(obj),
    }
}

/// Healthy, with no message.
pub(crate) fn healthy() -> Verdict {
    (Health::Healthy, None)
}

pub(crate) fn verdict(health: Health, message: impl Into<String>) -> Verdict {
    (health, Some(message.into()))
}

/// An integer field at `path`, 0 when absent.
pub(crate) fn int(obj: &Value, path: &[&str]) -> i64 {
    let mut cur = obj;
    for key in path {
        match cur.get(key) {
            Some(v) => cur = v,
            None => return 0,
        }
    }
    cur.as_i64().unwrap_or(0)
}

/// An integer field at `path`, `None` when absent.
pub(crate) fn opt_int(obj: &Value, path: &[&str]) -> Option<i64> {
    let mut cur = obj;
    for key in path {
        cur = cur.get(key)?;
    }
    cur.as_i64()
}

/// The condition of `type_` in `status.conditions`.
pub(crate) fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj.get("status")?
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
}

/// `status` of a condition: "True", "False", "Unknown".
pub(crate) fn cond_status(c: &Value) -> &str {
    c.get("status").and_then(Value::as_str).unwrap_or("Unknown")
}

/// `reason: message` of a condition, or what there is of it.
pub(crate) fn cond_text(c: &Value) -> String {
    let reason = c.get("reason").and_then(Value::as_str).unwrap_or_default();
    let message = c.get("message").and_then(Value::as_str).unwrap_or_default();
    match (reason.is_empty(), message.is_empty()) {
        (false, false) => format!("{reason}: {message}"),
        (false, true) => reason.to_owned(),
        (true, false) => message.to_owned(),
        (true, true) => "no reason given".to_owned(),
    }
}

/// Whether the controller has seen the latest spec (`status.observedGeneration` ≥
/// `metadata.generation`); `None` when the object reports no observedGeneration.
pub(crate) fn observed_latest(obj: &Value) -> Option<bool> {
    let observed = opt_int(obj, &["status", "observedGeneration"])?;
    Some(observed >= int(obj, &["metadata", "generation"]))
}

/// For kinds without a rule: `Ready`/`Available` conditions that are False → Degraded,
/// a controller behind the spec → Progressing, else Healthy.
pub fn generic(obj: &Value) -> Verdict {
    for type_ in ["Ready", "Available"] {
        if let Some(c) = condition(obj, type_)
            && cond_status(c) == "False"
        {
            return verdict(Health::Degraded, format!("{type_}=False: {}", cond_text(c)));
        }
    }
    if observed_latest(obj) == Some(false) {
        return verdict(
            Health::Progressing,
            "the controller has not observed the latest spec yet",
        );
    }
    healthy()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn generic_rules() {
        assert_eq!(assess("example.com", "Widget", &json!({})), healthy());
        let failing = json!({"status": {"conditions": [
            {"type": "Ready", "status": "False", "reason": "NoBackend", "message": "db down"}]}});
        assert_eq!(
            assess("example.com", "Widget", &failing),
            verdict(Health::Degraded, "Ready=False: NoBackend: db down")
        );
        let behind = json!({"metadata": {"generation": 3}, "status": {"observedGeneration": 2}});
        assert_eq!(
            assess("example.com", "Widget", &behind).0,
            Health::Progressing
        );
        let caught_up = json!({"metadata": {"generation": 3}, "status": {"observedGeneration": 3}});
        assert_eq!(assess("example.com", "Widget", &caught_up), healthy());
    }
}
