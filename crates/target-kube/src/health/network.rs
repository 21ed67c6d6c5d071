//! Service and Ingress: load balancers are healthy once they have an address.

use driftless_model::Health;
use serde_json::Value;

use super::{Verdict, healthy, verdict};

fn has_ingress(obj: &Value) -> bool {
    obj.pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .is_some_and(|i| !i.is_empty())
}

pub fn service(obj: &Value) -> Verdict {
    if obj.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer")
        && !has_ingress(obj)
    {
        return verdict(Health::Progressing, "waiting for a load balancer address");
    }
    healthy()
}

pub fn ingress(obj: &Value) -> Verdict {
    if !has_ingress(obj) {
        return verdict(Health::Progressing, "waiting for an ingress address");
    }
    healthy()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn load_balancers_need_an_address() {
        let lb = json!({"spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {}}});
        assert_eq!(
            service(&lb),
            verdict(Health::Progressing, "waiting for a load balancer address")
        );
        let lb_up = json!({"spec": {"type": "LoadBalancer"},
            "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}});
        assert_eq!(service(&lb_up), healthy());
        assert_eq!(service(&json!({"spec": {"type": "ClusterIP"}})), healthy());
        assert_eq!(ingress(&json!({})).0, Health::Progressing);
        assert_eq!(ingress(&lb_up), healthy());
    }
}
