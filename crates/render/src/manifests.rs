//! Plain YAML/JSON manifests: parse, flatten lists, validate, refuse duplicates.

use std::collections::HashMap;

use driftless_model::{Content, Object, ObjectRef, Origin, Tree};
use serde_json::Value;

use crate::error::{RenderError, RenderErrorKind as K, RenderErrors};
use crate::walk::{self, FileEntry, Root};
use crate::yaml::{PNode, PVal, Pos};
use crate::{Limits, json, yaml};

pub(crate) fn is_manifest_name(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json")
}

pub(crate) fn render(
    tree: &dyn Tree,
    path: &str,
    limits: &Limits,
) -> Result<Vec<Object>, RenderErrors> {
    let mut errors = Vec::new();
    let files = match walk::root(tree, path).map_err(|e| RenderErrors(vec![e]))? {
        Root::Dir(dir) => walk::walk(tree, &dir, limits, &is_manifest_name, &mut errors),
        Root::File(file) => match tree.kind(&file) {
            Ok(Some(driftless_model::EntryKind::File { executable, size })) => vec![FileEntry {
                rel: file.rsplit('/').next().unwrap_or(&file).to_owned(),
                read_path: file.clone(),
                path: file,
                executable,
                size,
            }],
            _ => Vec::new(),
        },
    };
    if files.is_empty() && errors.is_empty() {
        return Err(RenderErrors(vec![RenderError::in_file(
            path,
            K::NoManifests(path.to_owned()),
        )]));
    }

    let mut objects = Vec::new();
    let mut seen: HashMap<ObjectRef, Origin> = HashMap::new();
    let mut expanded = yaml::Expanded::default();
    'files: for file in &files {
        let data = match walk::read(tree, file, limits) {
            Ok(d) => d,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let text = match std::str::from_utf8(&data) {
            Ok(t) => t.strip_prefix('\u{feff}').unwrap_or(t),
            Err(e) => {
                let valid = &data[..e.valid_up_to()];
                let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
                let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                let col = String::from_utf8_lossy(&valid[line_start..])
                    .chars()
                    .count()
                    + 1;
                errors.push(RenderError::at(
                    &file.path,
                    line,
                    col,
                    K::NotUtf8(e.to_string()),
                ));
                continue;
            }
        };
        let docs: Vec<PNode> = if file.path.ends_with(".json") {
            json::load(text, &file.path, limits, &mut errors)
                .into_iter()
                .map(|(pos, v)| from_json(v, pos))
                .collect()
        } else {
            yaml::load(text, &file.path, limits, &mut expanded, &mut errors)
        };
        let mut work: Vec<PNode> = docs.into_iter().rev().collect();
        while let Some(node) = work.pop() {
            let origin = Origin {
                file: file.path.clone(),
                line: node.pos.line,
                column: node.pos.col,
            };
            match check(&node, &file.path, &mut errors) {
                Checked::Invalid => {}
                Checked::List => {
                    if let PVal::Map(entries) = node.into_owned().val
                        && let Some((_, items)) = entries.into_iter().find(|(k, _)| k == "items")
                        && let PVal::Seq(items) = items.into_owned().val
                    {
                        work.extend(items.into_iter().rev());
                    }
                }
                Checked::Object(id) => {
                    if let Some(first) = seen.get(&id) {
                        errors.push(RenderError {
                            origin,
                            kind: K::Duplicate {
                                id: id.to_string(),
                                other: first.clone(),
                            },
                        });
                        continue;
                    }
                    seen.insert(id.clone(), origin.clone());
                    objects.push(Object {
                        id,
                        content: Content::Manifest(node.into_json()),
                        origin,
                    });
                    if objects.len() > limits.max_total_objects {
                        let origin = objects
                            .last()
                            .map(|o: &Object| o.origin.clone())
                            .unwrap_or_default();
                        errors.push(RenderError {
                            origin,
                            kind: K::TooManyObjects(limits.max_total_objects),
                        });
                        break 'files;
                    }
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(objects)
    } else {
        // In path order; a file's own errors keep their order.
        errors.sort_by(|a, b| a.origin.file.cmp(&b.origin.file));
        Err(RenderErrors(errors))
    }
}

enum Checked {
    Invalid,
    /// A `*List` kind whose `items` (a list, or null) hold the objects.
    List,
    Object(ObjectRef),
}

/// Validates one document (or list item); collects every problem it has.
fn check(node: &PNode, file: &str, errors: &mut Vec<RenderError>) -> Checked {
    let node = node.resolved();
    let at = |pos: Pos, kind: K| RenderError::at(file, pos.line, pos.col, kind);
    if !matches!(node.val, PVal::Map(_)) {
        errors.push(at(node.pos, K::NotAMapping(node.type_name())));
        return Checked::Invalid;
    }
    let before = errors.len();
    let string_field =
        |parent: &PNode, key: &'static str, field: &'static str, errors: &mut Vec<RenderError>| {
            match parent.get(key) {
                None
                | Some(PNode {
                    val: PVal::Scalar(Value::Null),
                    ..
                }) => {
                    errors.push(at(node.pos, K::MissingField(field)));
                    None
                }
                Some(PNode {
                    val: PVal::Scalar(Value::String(s)),
                    ..
                }) if !s.is_empty() => Some(s.clone()),
                Some(other) => {
                    let found = match &other.val {
                        PVal::Scalar(Value::String(_)) => "an empty string".to_owned(),
                        _ => a(other.type_name()),
                    };
                    errors.push(at(
                        other.pos,
                        K::WrongType {
                            field: field.to_owned(),
                            expected: "a non-empty string",
                            found,
                        },
                    ));
                    None
                }
            }
        };
    let kind = string_field(node, "kind", "kind", errors);
    if let Some(k) = &kind
        && k.ends_with("List")
        && let Some(items) = node.get("items")
    {
        return match &items.val {
            PVal::Seq(_) | PVal::Scalar(Value::Null) => Checked::List,
            _ => {
                errors.push(at(
                    items.pos,
                    K::WrongType {
                        field: "items".to_owned(),
                        expected: "a list",
                        found: a(items.type_name()),
                    },
                ));
                Checked::Invalid
            }
        };
    }
    let api_version = string_field(node, "apiVersion", "apiVersion", errors);
    let mut name = None;
    let mut namespace = String::new();
    match node.get("metadata") {
        Some(
            meta @ PNode {
                val: PVal::Map(_), ..
            },
        ) => {
            name = string_field(meta, "name", "metadata.name", errors);
            match meta.get("namespace") {
                None
                | Some(PNode {
                    val: PVal::Scalar(Value::Null),
                    ..
                }) => {}
                Some(PNode {
                    val: PVal::Scalar(Value::String(s)),
                    ..
                }) => namespace = s.clone(),
                Some(other) => errors.push(at(
                    other.pos,
                    K::WrongType {
                        field: "metadata.namespace".to_owned(),
                        expected: "a string",
                        found: a(other.type_name()),
                    },
                )),
            }
        }
        None
        | Some(PNode {
            val: PVal::Scalar(Value::Null),
            ..
        }) => errors.push(at(node.pos, K::MissingField("metadata.name"))),
        Some(other) => errors.push(at(
            other.pos,
            K::WrongType {
                field: "metadata".to_owned(),
                expected: "a mapping",
                found: a(other.type_name()),
            },
        )),
    }
    match (api_version, kind, name) {
        (Some(api_version), Some(kind), Some(name)) if errors.len() == before => {
            let group = api_version
                .split_once('/')
                .map_or("", |(g, _)| g)
                .to_owned();
            Checked::Object(ObjectRef {
                group,
                kind,
                namespace,
                name,
            })
        }
        _ => Checked::Invalid,
    }
}

/// Wraps a JSON value as a positioned node; every node gets the document's position.
fn from_json(v: Value, pos: Pos) -> PNode {
    let (val, size) = match v {
        Value::Array(items) => {
            let items: Vec<PNode> = items.into_iter().map(|i| from_json(i, pos)).collect();
            let size = 1 + items.iter().map(|n| n.size).sum::<usize>();
            (PVal::Seq(items), size)
        }
        Value::Object(map) => {
            let entries: Vec<(String, PNode)> = map
                .into_iter()
                .map(|(k, v)| (k, from_json(v, pos)))
                .collect();
            let size = 1 + entries.iter().map(|(_, n)| n.size).sum::<usize>();
            (PVal::Map(entries), size)
        }
        scalar => (PVal::Scalar(scalar), 1),
    };
    PNode { pos, val, size }
}

/// "a list", "an integer".
fn a(name: &str) -> String {
    if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {name}")
    } else {
        format!("a {name}")
    }
}
