//! Pure helpers over manifests: identity, labels, waves, server-owned fields, YAML text.

use driftless_model::{Content, Object, ObjectRef, Origin};
use serde_json::{Map, Value};

/// The label that marks an object as applied by one app.
pub const OWNER_LABEL: &str = "app.driftless.dev/name";
/// The annotation that orders objects within a phase.
pub const WAVE_ANNOTATION: &str = "driftless.dev/wave";
/// The annotation that opts an object out of prune (`disabled`).
pub const PRUNE_ANNOTATION: &str = "driftless.dev/prune";
/// Client-side apply's copy of the object: not ours to diff.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// `apiVersion` split into group (empty for core) and version.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

/// A string field at `path` (`["metadata", "name"]`).
pub fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for key in path {
        cur = cur.get(key)?;
    }
    cur.as_str()
}

/// The value of label `key`, if any.
pub fn label<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get("metadata")?.get("labels")?.get(key)?.as_str()
}

/// The value of annotation `key`, if any.
pub fn annotation<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get("metadata")?.get("annotations")?.get(key)?.as_str()
}

/// The `metadata` map, created when missing or not a map.
fn metadata_mut(v: &mut Value) -> &mut Map<String, Value> {
    let obj = match v {
        Value::Object(o) => o,
        other => {
            *other = Value::Object(Map::new());
            other.as_object_mut().expect("just made a map")
        }
    };
    let meta = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut().expect("metadata is a map")
}

/// Sets `metadata.namespace` (or removes it when `namespace` is empty).
pub fn set_namespace(v: &mut Value, namespace: &str) {
    let meta = metadata_mut(v);
    if namespace.is_empty() {
        meta.remove("namespace");
    } else {
        meta.insert("namespace".into(), Value::String(namespace.into()));
    }
}

/// Adds the ownership label for `app`, replacing any other value.
pub fn set_owner_label(v: &mut Value, app: &str) {
    let meta = metadata_mut(v);
    let labels = meta
        .entry("labels")
        .or_insert_with(|| Value::Object(Map::new()));
    if !labels.is_object() {
        *labels = Value::Object(Map::new());
    }
    labels
        .as_object_mut()
        .expect("labels is a map")
        .insert(OWNER_LABEL.into(), Value::String(app.into()));
}

/// The wave from the `driftless.dev/wave` annotation (0 when absent), or why it is bad.
pub fn wave(v: &Value) -> Result<i32, String> {
    match v
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(WAVE_ANNOTATION))
    {
        None => Ok(0),
        Some(Value::String(s)) => s.trim().parse::<i32>().map_err(|_| {
            format!("annotation {WAVE_ANNOTATION}: {s:?} is not an integer (e.g. \"-1\", \"2\")")
        }),
        Some(other) => Err(format!(
            "annotation {WAVE_ANNOTATION}: {other} is not a string; write it as \"<int>\""
        )),
    }
}

/// Ordering phase: 0 for CRDs and Namespaces, 1 for other cluster-scoped objects, 2 for
/// namespaced objects.
pub fn phase(group: &str, kind: &str, namespaced: bool) -> u8 {
    let crd = group == "apiextensions.k8s.io" && kind == "CustomResourceDefinition";
    let ns = group.is_empty() && kind == "Namespace";
    if crd || ns {
        0
    } else if namespaced {
        2
    } else {
        1
    }
}

/// Whether `group`/`kind` is a CustomResourceDefinition.
pub fn is_crd(group: &str, kind: &str) -> bool {
    group == "apiextensions.k8s.io" && kind == "CustomResourceDefinition"
}

/// The object without what the server owns (managedFields, resourceVersion, generation,
/// uid, creationTimestamp, status) and without client-side apply's annotation.
pub fn strip_server_fields(v: &Value) -> Value {
    let mut out = v.clone();
    if let Value::Object(obj) = &mut out {
        obj.remove("status");
        if let Some(Value::Object(meta)) = obj.get_mut("metadata") {
            for key in [
                "managedFields",
                "resourceVersion",
                "generation",
                "uid",
                "creationTimestamp",
                "selfLink",
            ] {
                meta.remove(key);
            }
            let empty = match meta.get_mut("annotations") {
                Some(Value::Object(ann)) => {
                    ann.remove(LAST_APPLIED);
                    ann.is_empty()
                }
                _ => false,
            };
            if empty {
                meta.remove("annotations");
            }
        }
    }
    out
}

/// Keys sorted at every level, as Go prints maps.
pub fn sort_keys(v: &Value) -> Value {
    match v {
        Value::Object(obj) => {
            let mut keys: Vec<&String> = obj.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), sort_keys(&obj[k]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(sort_keys).collect()),
        other => other.clone(),
    }
}

/// YAML text of a manifest, keys sorted, as `kubectl get -o yaml` prints it.
pub fn to_yaml(v: &Value) -> String {
    let obj = Object {
        id: ObjectRef::file(""),
        content: Content::Manifest(sort_keys(v)),
        origin: Origin::default(),
    };
    driftless_render::to_yaml(std::slice::from_ref(&obj))
}

/// Diff text of live → desired, both already stripped and redacted; empty when equal.
pub fn yaml_diff(live: Option<&Value>, desired: Option<&Value>, id: &ObjectRef) -> String {
    let old = live.map(to_yaml);
    let new = desired.map(to_yaml);
    driftless_diff::file_diff(
        old.as_deref().map(str::as_bytes),
        new.as_deref().map(str::as_bytes),
        &id.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn waves_parse_or_say_why_not() {
        let with = |w: Value| json!({"metadata": {"annotations": {WAVE_ANNOTATION: w}}});
        assert_eq!(wave(&json!({"metadata": {}})), Ok(0));
        assert_eq!(wave(&with(json!("-2"))), Ok(-2));
        let err = wave(&with(json!("soon"))).unwrap_err();
        assert_eq!(
            err,
            "annotation driftless.dev/wave: \"soon\" is not an integer (e.g. \"-1\", \"2\")"
        );
        let err = wave(&with(json!(3))).unwrap_err();
        assert!(err.contains("3 is not a string"), "{err}");
    }

    #[test]
    fn phases_put_crds_and_namespaces_first() {
        assert_eq!(
            phase("apiextensions.k8s.io", "CustomResourceDefinition", false),
            0
        );
        assert_eq!(phase("", "Namespace", false), 0);
        assert_eq!(phase("rbac.authorization.k8s.io", "ClusterRole", false), 1);
        assert_eq!(phase("apps", "Deployment", true), 2);
    }

    #[test]
    fn server_fields_are_dropped_and_ours_kept() {
        let live = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "uid": "u", "resourceVersion": "7", "generation": 2,
                "creationTimestamp": "t", "managedFields": [],
                "annotations": {LAST_APPLIED: "{}"}, "labels": {"x": "y"}},
            "data": {"k": "v"}, "status": {"phase": "x"}
        });
        assert_eq!(
            strip_server_fields(&live),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "a", "labels": {"x": "y"}}, "data": {"k": "v"}})
        );
    }

    #[test]
    fn labels_and_namespaces_are_set() {
        let mut v = json!({"kind": "ConfigMap", "metadata": {"name": "a", "namespace": "x"}});
        set_owner_label(&mut v, "web");
        set_namespace(&mut v, "");
        assert_eq!(label(&v, OWNER_LABEL), Some("web"));
        assert_eq!(str_at(&v, &["metadata", "namespace"]), None);
        set_namespace(&mut v, "prod");
        assert_eq!(str_at(&v, &["metadata", "namespace"]), Some("prod"));
    }

    #[test]
    fn yaml_diff_shows_changed_lines_only() {
        let id = ObjectRef {
            group: String::new(),
            kind: "ConfigMap".into(),
            namespace: "ns".into(),
            name: "a".into(),
        };
        let old = json!({"kind": "ConfigMap", "data": {"b": "1", "a": "x"}});
        let new = json!({"data": {"a": "x", "b": "2"}, "kind": "ConfigMap"});
        let diff = yaml_diff(Some(&old), Some(&new), &id);
        assert!(diff.contains("-  b: \"1\"\n+  b: \"2\"\n"), "{diff}");
        assert!(
            diff.starts_with("--- a/ns/ConfigMap/a\n+++ b/ns/ConfigMap/a\n"),
            "{diff}"
        );
        assert_eq!(yaml_diff(Some(&old), Some(&old), &id), "");
        let created = yaml_diff(None, Some(&new), &id);
        assert!(
            created.starts_with("--- /dev/null\n+++ b/ns/ConfigMap/a\n"),
            "{created}"
        );
    }
}
