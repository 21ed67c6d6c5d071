//! CustomResourceDefinition (Established) and APIService (Available).

use driftless_model::Health;
use serde_json::Value;

use super::{Verdict, cond_status, cond_text, condition, healthy, verdict};

pub fn crd(obj: &Value) -> Verdict {
    if let Some(c) = condition(obj, "NamesAccepted")
        && cond_status(c) == "False"
    {
        return verdict(
            Health::Degraded,
            format!("names not accepted: {}", cond_text(c)),
        );
    }
    match condition(obj, "Established") {
        Some(c) if cond_status(c) == "True" => healthy(),
        _ => verdict(Health::Progressing, "not established yet"),
    }
}

pub fn api_service(obj: &Value) -> Verdict {
    match condition(obj, "Available") {
        Some(c) if cond_status(c) == "True" => healthy(),
        Some(c) if cond_status(c) == "False" => verdict(
            Health::Degraded,
            format!("Available=False: {}", cond_text(c)),
        ),
        _ => verdict(Health::Progressing, "availability not reported yet"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn crds_and_api_services() {
        let est = json!({"status": {"conditions": [{"type": "NamesAccepted", "status": "True"},
            {"type": "Established", "status": "True"}]}});
        assert_eq!(crd(&est), healthy());
        assert_eq!(
            crd(&json!({})),
            verdict(Health::Progressing, "not established yet")
        );
        let clash = json!({"status": {"conditions": [{"type": "NamesAccepted", "status": "False",
            "reason": "ListKindConflict", "message": "\"WidgetList\" is already in use"}]}});
        assert_eq!(crd(&clash).0, Health::Degraded);
        let down = json!({"status": {"conditions": [{"type": "Available", "status": "False",
            "reason": "MissingEndpoints", "message": "endpoints for service/metrics not found"}]}});
        assert_eq!(
            api_service(&down),
            verdict(
                Health::Degraded,
                "Available=False: MissingEndpoints: endpoints for service/metrics not found"
            )
        );
    }
}
