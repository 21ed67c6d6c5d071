//! Who changed a managed object behind Git's back: the field managers (from the live
//! object's `metadata.managedFields`) that own a field Git declares and whose live value
//! differs from Git's. Pure: live object and desired manifest in, manager names out.
//!
//! A `kubectl edit` or `kubectl patch` is an Update, which moves ownership of the fields it
//! changes to its manager (`kubectl-edit`, `kubectl-patch`); `kubectl scale` updates the
//! `scale` subresource as `kubectl`; another server-side applier owns what it applied.
//! Only fields whose values differ count, so a manager that merely shares ownership of an
//! equal value (e.g. `kubectl-create` after an adoption) is not blamed.

use serde_json::Value;

use crate::FIELD_MANAGER;

/// One manager that owns a drifted field, as shown in events: `kubectl-edit`, or
/// `kubectl (scale)` for a subresource.
pub fn drifted_by(live: &Value, desired: &Value) -> Vec<String> {
    let Some(entries) = live
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for entry in entries {
        let Some(manager) = entry.get("manager").and_then(Value::as_str) else {
            continue;
        };
        let subresource = entry
            .get("subresource")
            .and_then(Value::as_str)
            .unwrap_or("");
        // Our own fields, and status written by controllers (never ours to compare).
        if manager == FIELD_MANAGER || subresource == "status" {
            continue;
        }
        let Some(fields) = entry.get("fieldsV1") else {
            continue;
        };
        if owns_differing(fields, Some(live), desired, 0) {
            let name = if subresource.is_empty() {
                manager.to_owned()
            } else {
                format!("{manager} ({subresource})")
            };
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}

/// Nesting deeper than this in a managedFields set is not followed (the API server
/// bounds objects anyway; this keeps the walk safe on any input).
const MAX_DEPTH: usize = 64;

/// Whether the field set `fields` (fieldsV1 at this level) holds a leaf whose value in
/// `live` differs from `desired`. Only fields present in `desired` count.
fn owns_differing(fields: &Value, live: Option<&Value>, desired: &Value, depth: usize) -> bool {
    let Some(fields) = fields.as_object() else {
        return false;
    };
    if depth > MAX_DEPTH {
        return false;
    }
    if fields.is_empty() {
        // A leaf: the manager owns this value.
        return live != Some(desired);
    }
    for (key, sub) in fields {
        if let Some(name) = key.strip_prefix("f:") {
            let Some(want) = desired.get(name) else {
                continue;
            };
            let have = live.and_then(|l| l.get(name));
            if owns_differing(sub, have, want, depth + 1) {
                return true;
            }
        } else if let Some(item_key) = key.strip_prefix("k:") {
            let Ok(Value::Object(item_key)) = serde_json::from_str::<Value>(item_key) else {
                continue;
            };
            let matches = |item: &&Value| item_key.iter().all(|(k, v)| item.get(k) == Some(v));
            let Some(want) = desired.as_array().and_then(|a| a.iter().find(matches)) else {
                continue;
            };
            let have = live
                .and_then(Value::as_array)
                .and_then(|a| a.iter().find(matches));
            if owns_differing(sub, have, want, depth + 1) {
                return true;
            }
        } else if let Some(index) = key.strip_prefix("i:") {
            let Ok(index) = index.parse::<usize>() else {
                continue;
            };
            let Some(want) = desired.as_array().and_then(|a| a.get(index)) else {
                continue;
            };
            let have = live.and_then(Value::as_array).and_then(|a| a.get(index));
            if owns_differing(sub, have, want, depth + 1) {
                return true;
            }
        }
        // ".": owning that a map or item exists says nothing of its values. "v:" set
        // members: an added member alone is not a change to a value Git declares.
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(replicas: i64, image: &str, managed: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "managedFields": managed},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                {"name": "web", "image": image}
            ]}}}
        })
    }

    fn desired() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [
                {"name": "web", "image": "web:1"}
            ]}}}
        })
    }

    #[test]
    fn an_edit_is_blamed_on_its_manager_and_our_own_fields_are_not() {
        let live = deployment(
            5,
            "web:1",
            json!([
                {"manager": "driftless", "operation": "Apply", "fieldsV1": {"f:spec": {"f:template": {}}}},
                {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
                {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
                 "fieldsV1": {"f:status": {"f:replicas": {}}}}
            ]),
        );
        assert_eq!(drifted_by(&live, &desired()), ["kubectl-edit"]);
    }

    #[test]
    fn a_scale_names_the_subresource_and_list_items_are_matched_by_key() {
        let live = deployment(
            1,
            "web:2",
            json!([
                {"manager": "kubectl", "operation": "Update", "subresource": "scale",
                 "fieldsV1": {"f:spec": {"f:replicas": {}}}},
                {"manager": "other-apply", "operation": "Apply", "fieldsV1": {"f:spec": {"f:template": {"f:spec": {
                    "f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}}
                }}}}}
            ]),
        );
        // replicas equals Git's: kubectl's scale is not blamed; the image differs.
        assert_eq!(drifted_by(&live, &desired()), ["other-apply"]);
    }

    #[test]
    fn fields_git_does_not_declare_and_equal_values_blame_nobody() {
        let live = deployment(
            1,
            "web:1",
            json!([
                {"manager": "kubectl-create", "operation": "Update", "fieldsV1": {"f:spec": {
                    "f:replicas": {}, "f:paused": {}}}},
                {"manager": "hostile", "operation": "Update", "fieldsV1": "not a map"},
                {"operation": "Update", "fieldsV1": {"f:spec": {"f:replicas": {}}}}
            ]),
        );
        assert!(drifted_by(&live, &desired()).is_empty());
    }
}
