//! A resource in the accumulator: its document plus the identity history kustomize keeps
//! (previous names and namespaces) so that references can be fixed at the end.

use crate::yaml::Value;

/// Kinds kustomize orders first (in this order) in its legacy output sort and its field
/// spec lists.
pub const ORDER_FIRST: [&str; 22] = [
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];
/// Kinds kustomize orders last.
pub const ORDER_LAST: [&str; 2] = [
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// Group, version, kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Gvk {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl Gvk {
    pub fn of(v: &Value) -> Gvk {
        let api = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let (group, version) = match api.rsplit_once('/') {
            Some((g, ver)) => (g.to_owned(), ver.to_owned()),
            None => (String::new(), api.to_owned()),
        };
        Gvk {
            group,
            version,
            kind: v
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        }
    }

    /// kustomize's `Gvk.String()` pieces, used by the legacy sort.
    pub fn sort_string(&self) -> String {
        let or = |s: &str, d: &str| {
            if s.is_empty() {
                d.to_owned()
            } else {
                s.to_owned()
            }
        };
        format!(
            "{}_{}_{}",
            or(&self.group, "~G"),
            or(&self.version, "~V"),
            or(&self.kind, "~K")
        )
    }

    /// kustomize's rank of a kind: negative for the first kinds, positive for the last,
    /// zero for all others.
    pub fn type_order(&self) -> i32 {
        let k = self.kind.as_str();
        if let Some(i) = ORDER_FIRST.iter().position(|x| *x == k) {
            return i as i32 - ORDER_FIRST.len() as i32;
        }
        ORDER_LAST
            .iter()
            .position(|x| *x == k)
            .map_or(0, |i| i as i32 + 1)
    }

    /// Whether a selector (empty fields are wildcards) selects this gvk.
    pub fn selected_by(&self, group: &str, version: &str, kind: &str) -> bool {
        (group.is_empty() || group == self.group)
            && (version.is_empty() || version == self.version)
            && (kind.is_empty() || kind == self.kind)
    }

    /// Whether kustomize knows this type to be cluster-scoped. It looks the type up by
    /// group and kind in Kubernetes' own schema, so a CRD kind that shares a built-in
    /// name (a `Namespace` of `servicebus.azure.com`) is namespaced like any other.
    pub fn is_cluster_scoped(&self) -> bool {
        matches!(
            (self.group.as_str(), self.kind.as_str()),
            (
                "",
                "Namespace" | "Node" | "PersistentVolume" | "ComponentStatus"
            ) | (
                "rbac.authorization.k8s.io",
                "ClusterRole" | "ClusterRoleBinding"
            ) | ("apiextensions.k8s.io", "CustomResourceDefinition")
                | (
                    "storage.k8s.io",
                    "StorageClass" | "CSIDriver" | "CSINode" | "VolumeAttachment"
                )
                | ("apiregistration.k8s.io", "APIService")
                | ("scheduling.k8s.io", "PriorityClass")
                | (
                    "admissionregistration.k8s.io",
                    "ValidatingWebhookConfiguration"
                        | "MutatingWebhookConfiguration"
                        | "ValidatingAdmissionPolicy"
                        | "ValidatingAdmissionPolicyBinding"
                )
                | ("policy" | "extensions", "PodSecurityPolicy")
                | ("networking.k8s.io", "IngressClass")
                | ("node.k8s.io", "RuntimeClass")
                | ("certificates.k8s.io", "CertificateSigningRequest")
                | (
                    "flowcontrol.apiserver.k8s.io",
                    "FlowSchema" | "PriorityLevelConfiguration"
                )
                | ("authentication.k8s.io", "TokenReview")
                | (
                    "authorization.k8s.io",
                    "SelfSubjectAccessReview" | "SelfSubjectRulesReview" | "SubjectAccessReview"
                )
        )
    }
}

/// One accumulated resource.
#[derive(Debug, Clone)]
pub struct Resource {
    pub value: Value,
    /// Every name this resource had, oldest first (the current name is last).
    pub names: Vec<String>,
    /// Every namespace it had, oldest first.
    pub namespaces: Vec<String>,
    /// Generated and waiting for a content-hash suffix.
    pub needs_hash: bool,
    /// Generator behaviour when this resource came from a generator.
    pub generated: bool,
    /// Name prefixes and suffixes applied, in order (used to pick between referral
    /// candidates that share an original name).
    pub prefixes: Vec<String>,
    pub suffixes: Vec<String>,
    /// The names kustomize stored as previous ids: before every rename or namespace
    /// change, and before any `namespace:` transform. Only these make a resource a
    /// name-reference candidate; one never touched is never a referral.
    pub prev_names: Vec<String>,
}

impl Resource {
    pub fn new(value: Value) -> Resource {
        let mut r = Resource {
            value,
            names: Vec::new(),
            namespaces: Vec::new(),
            needs_hash: false,
            generated: false,
            prefixes: Vec::new(),
            suffixes: Vec::new(),
            prev_names: Vec::new(),
        };
        r.names.push(r.name().to_owned());
        r.namespaces.push(r.namespace().to_owned());
        r
    }
    pub fn gvk(&self) -> Gvk {
        Gvk::of(&self.value)
    }
    pub fn name(&self) -> &str {
        self.value
            .path(&["metadata", "name"])
            .and_then(Value::as_str)
            .unwrap_or("")
    }
    pub fn namespace(&self) -> &str {
        self.value
            .path(&["metadata", "namespace"])
            .and_then(Value::as_str)
            .unwrap_or("")
    }
    pub fn set_name(&mut self, name: &str) {
        self.value
            .entry_map("metadata")
            .set("name", Value::Str(name.to_owned()));
        self.record();
    }
    /// Appends the current name/namespace to the history when they changed.
    pub fn record(&mut self) {
        let n = self.name().to_owned();
        let ns = self.namespace();
        if (self.names.last() != Some(&n) || self.namespaces.last().map(String::as_str) != Some(ns))
            && let Some(last) = self.names.last()
        {
            self.prev_names.push(last.clone());
        }
        if self.names.last() != Some(&n) {
            self.names.push(n);
        }
        let ns = self.namespace().to_owned();
        if self.namespaces.last() != Some(&ns) {
            self.namespaces.push(ns);
        }
    }
    /// Keeps the current name as a previous id, as kustomize's namespace transformer does
    /// for every resource it visits, changed or not.
    pub fn store_previous_id(&mut self) {
        let n = self.name().to_owned();
        self.prev_names.push(n);
    }
    pub fn labels(&self) -> Vec<(String, String)> {
        map_strings(self.value.path(&["metadata", "labels"]))
    }
    pub fn annotations(&self) -> Vec<(String, String)> {
        map_strings(self.value.path(&["metadata", "annotations"]))
    }
    /// Same kind family and a name/namespace this resource has had.
    pub fn had_id(&self, gvk: &Gvk, name: &str, ns: &str) -> bool {
        let g = self.gvk();
        g.selected_by(&gvk.group, &gvk.version, &gvk.kind)
            && self.names.iter().any(|n| n == name)
            && (ns.is_empty()
                && self
                    .namespaces
                    .iter()
                    .any(|x| x.is_empty() || x == "default")
                || self.namespaces.iter().any(|x| x == ns)
                || (ns == "default" && self.namespaces.iter().any(|x| x.is_empty())))
    }
}

fn map_strings(v: Option<&Value>) -> Vec<(String, String)> {
    match v {
        Some(Value::Map(m)) => m
            .iter()
            .map(|(k, v)| (k.clone(), v.scalar_text().unwrap_or_default()))
            .collect(),
        _ => Vec::new(),
    }
}
