//! Objects: what a revision wants to exist, and how each one is identified.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The identity of one managed object, stable across revisions.
///
/// For Kubernetes: API group (empty for the core group), kind, namespace (empty for
/// cluster-scoped objects) and name. For host files: group `""`, kind `File`, no
/// namespace, and the path relative to the target root as the name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    pub group: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    /// The id of a host file at `path` (relative to the target root).
    pub fn file(path: impl Into<String>) -> Self {
        Self {
            group: String::new(),
            kind: "File".to_owned(),
            namespace: String::new(),
            name: path.into(),
        }
    }

    /// Whether this id names a host file rather than an API object.
    pub fn is_file(&self) -> bool {
        self.group.is_empty() && self.kind == "File"
    }
}

impl fmt::Display for ObjectRef {
    /// `Kind/name`, `Kind.group/name`, with `namespace/` in front when namespaced; files
    /// print as their path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_file() {
            return f.write_str(&self.name);
        }
        if !self.namespace.is_empty() {
            write!(f, "{}/", self.namespace)?;
        }
        if self.group.is_empty() {
            write!(f, "{}/{}", self.kind, self.name)
        } else {
            write!(f, "{}.{}/{}", self.kind, self.group, self.name)
        }
    }
}

/// Where in the source tree an object came from, for error messages and the UI.
/// `line` and `column` are 1-based and point at the start of the object's document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.file)
        } else {
            write!(f, "{}:{}:{}", self.file, self.line, self.column)
        }
    }
}

/// The desired content of an object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Content {
    /// An API object (parsed YAML/JSON, keys in document order).
    Manifest(serde_json::Value),
    /// A host file, byte for byte, with Git's executable bit.
    File { data: Vec<u8>, executable: bool },
}

/// One desired object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Object {
    pub id: ObjectRef,
    pub content: Content,
    pub origin: Origin,
}

/// Everything one revision's path rendered to, in deterministic order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DesiredSet {
    /// The commit id the objects came from (empty for a local folder).
    pub revision: String,
    pub objects: Vec<Object>,
}

impl DesiredSet {
    /// The ids of all objects, for comparison against an inventory.
    pub fn ids(&self) -> BTreeSet<ObjectRef> {
        self.objects.iter().map(|o| o.id.clone()).collect()
    }
}

/// The ids of the objects an app last applied: the only things prune may delete.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    pub entries: BTreeSet<ObjectRef>,
}

/// The group prefix of the inventory entries that mark an object as holding decrypted
/// content (see [`Inventory::with_decrypted`]). A `/` can never appear in a real API
/// group, so a mark never collides with an object.
const DECRYPTED_MARK: &str = "decrypted.driftless.dev/";

impl Inventory {
    /// This inventory plus one mark entry per id in `decrypted`: the ids whose live
    /// content came out of SOPS decryption. The marks ride in the inventory the engine
    /// already persists (no schema of its own), so that after a restart, a rename or the
    /// file leaving Git, its old content is still known to be secret.
    pub fn with_decrypted(&self, decrypted: &BTreeSet<ObjectRef>) -> Inventory {
        let mut entries = self.entries.clone();
        entries.extend(decrypted.iter().map(|id| ObjectRef {
            group: format!("{DECRYPTED_MARK}{}", id.group),
            ..id.clone()
        }));
        Inventory { entries }
    }

    /// Splits off the marks [`Inventory::with_decrypted`] added: the inventory proper
    /// (what a target may prune) and the ids marked as decrypted.
    pub fn split_decrypted(&self) -> (Inventory, BTreeSet<ObjectRef>) {
        let mut entries = BTreeSet::new();
        let mut decrypted = BTreeSet::new();
        for id in &self.entries {
            match id.group.strip_prefix(DECRYPTED_MARK) {
                Some(group) => {
                    decrypted.insert(ObjectRef {
                        group: group.to_owned(),
                        ..id.clone()
                    });
                }
                None => {
                    entries.insert(id.clone());
                }
            }
        }
        (Inventory { entries }, decrypted)
    }

    /// Inventory entries that the desired set no longer contains: prune candidates.
    pub fn orphans<'a>(
        &'a self,
        desired: &'a BTreeSet<ObjectRef>,
    ) -> impl Iterator<Item = &'a ObjectRef> {
        self.entries.iter().filter(move |id| !desired.contains(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kube(group: &str, kind: &str, ns: &str, name: &str) -> ObjectRef {
        ObjectRef {
            group: group.into(),
            kind: kind.into(),
            namespace: ns.into(),
            name: name.into(),
        }
    }

    #[test]
    fn displays_ids_like_kubectl() {
        assert_eq!(
            kube("apps", "Deployment", "web", "api").to_string(),
            "web/Deployment.apps/api"
        );
        assert_eq!(
            kube("", "Namespace", "", "web").to_string(),
            "Namespace/web"
        );
        assert_eq!(ObjectRef::file("etc/app.conf").to_string(), "etc/app.conf");
    }

    #[test]
    fn decrypted_marks_round_trip_and_never_look_like_objects() {
        let inv = Inventory {
            entries: [ObjectRef::file("a"), kube("", "ConfigMap", "ns", "c")].into(),
        };
        let marked: BTreeSet<_> =
            [ObjectRef::file("gone"), kube("", "ConfigMap", "ns", "c")].into();
        let stored = inv.with_decrypted(&marked);
        assert_eq!(stored.entries.len(), 4);
        assert!(
            stored
                .entries
                .iter()
                .all(|id| !id.group.contains('/') || !id.is_file())
        );
        let (back, decrypted) = stored.split_decrypted();
        assert_eq!(back, inv);
        assert_eq!(decrypted, marked);
    }

    #[test]
    fn orphans_are_inventory_minus_desired() {
        let inv = Inventory {
            entries: [ObjectRef::file("a"), ObjectRef::file("b")].into(),
        };
        let desired: BTreeSet<_> = [ObjectRef::file("b"), ObjectRef::file("c")].into();
        let orphans: Vec<_> = inv.orphans(&desired).cloned().collect();
        assert_eq!(orphans, vec![ObjectRef::file("a")]);
    }
}
