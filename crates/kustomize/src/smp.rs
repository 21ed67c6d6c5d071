//! Strategic merge patch with the merge keys and strategies of built-in kinds, read from
//! the generated fact table `generated/smp_schema.txt` (see tools/gen-facts).
//!
//! Observed kustomize behaviour (checked against v5.8.2 by the differential suite):
//! - a list with a single merge key (or a primitive list with the `merge` strategy)
//!   yields the patch's items first, in patch order, merged with their counterparts, then
//!   the remaining original items in their order;
//! - a list with several `x-kubernetes-list-map-keys` (Service ports, container ports,
//!   topology spread constraints) identifies items by all keys (absent = absent): new
//!   items come first, matched items are merged in place, and a patch item whose merge key
//!   matches an original item but whose other keys differ is dropped;
//! - lists without schema information (custom resources included) are replaced.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::resource::Gvk;
use crate::yaml::Value;

#[derive(Debug, Clone)]
struct Field {
    child: Option<String>,
    merge_key: Option<String>,
    merge: bool,
    /// x-kubernetes-list-map-keys: when present, items are identified by all of them.
    map_keys: Vec<String>,
}

struct Schema {
    kinds: HashMap<(String, String, String), String>,
    defs: HashMap<String, HashMap<String, Field>>,
}

fn schema() -> &'static Schema {
    static S: OnceLock<Schema> = OnceLock::new();
    S.get_or_init(|| {
        let text = include_str!("generated/smp_schema.txt");
        let mut kinds = HashMap::new();
        let mut defs: HashMap<String, HashMap<String, Field>> = HashMap::new();
        let mut cur: Option<String> = None;
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let parts: Vec<&str> = line.split_whitespace().collect();
            let opt = |s: &str| if s == "-" { None } else { Some(s.to_owned()) };
            if line.starts_with("kind ") && parts.len() == 5 {
                let g = if parts[1] == "-" { "" } else { parts[1] };
                kinds.insert(
                    (g.to_owned(), parts[2].to_owned(), parts[3].to_owned()),
                    parts[4].to_owned(),
                );
            } else if line.starts_with("def ") && parts.len() == 2 {
                cur = Some(parts[1].to_owned());
                defs.entry(parts[1].to_owned()).or_default();
            } else if let (Some(d), 7) = (&cur, parts.len()) {
                let strategy = parts[5];
                defs.entry(d.clone()).or_default().insert(
                    parts[0].to_owned(),
                    Field {
                        child: opt(parts[2]),
                        merge_key: opt(parts[4]),
                        merge: strategy.split(',').any(|s| s == "merge"),
                        map_keys: opt(parts[6])
                            .map(|k| k.split(',').map(str::to_owned).collect())
                            .unwrap_or_default(),
                    },
                );
            }
        }
        Schema { kinds, defs }
    })
}

fn def_for(gvk: &Gvk) -> Option<&'static str> {
    schema()
        .kinds
        .get(&(gvk.group.clone(), gvk.version.clone(), gvk.kind.clone()))
        .map(String::as_str)
}

/// Applies a strategic merge patch to a resource document.
pub fn apply(dest: &mut Value, patch: &Value, gvk: &Gvk) {
    merge_map(dest, patch, def_for(gvk));
}

/// Whether the patch document asks to delete the whole resource.
pub fn is_delete(patch: &Value) -> bool {
    patch.get("$patch").and_then(Value::as_str) == Some("delete")
}

fn directive(v: &Value) -> Option<&str> {
    v.get("$patch").and_then(Value::as_str)
}

/// Patch content as it lands in the result: `$patch` directives and nulls removed, list
/// items marked for deletion dropped. Other `$` keys are kept, as kustomize does.
fn strip(v: &Value) -> Value {
    match v {
        Value::Map(m) => Value::Map(
            m.iter()
                .filter(|(k, _)| k != "$patch")
                .filter(|(_, v)| !matches!(v, Value::Null))
                .map(|(k, v)| (k.clone(), strip(v)))
                .collect(),
        ),
        Value::Seq(s) => Value::Seq(
            s.iter()
                .filter(|x| directive(x).is_none())
                .map(strip)
                .collect(),
        ),
        other => other.clone(),
    }
}

fn merge_map(dest: &mut Value, patch: &Value, def: Option<&str>) {
    let Some(pm) = patch.as_map() else {
        *dest = strip(patch);
        return;
    };
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        *dest = strip(patch);
        return;
    }
    if !matches!(dest, Value::Map(_)) {
        *dest = strip(patch);
        return;
    }
    let fields = def.and_then(|d| schema().defs.get(d));
    for (k, pv) in pm {
        if k == "$patch" {
            continue;
        }
        if matches!(pv, Value::Null) || directive(pv) == Some("delete") {
            dest.remove(k);
            continue;
        }
        if let Value::Seq(items) = pv {
            if items
                .iter()
                .any(|x| directive(x) == Some("delete") && x.as_map().is_some_and(|m| m.len() == 1))
            {
                dest.remove(k);
                continue;
            }
            if items.iter().any(|x| {
                directive(x) == Some("replace") && x.as_map().is_some_and(|m| m.len() == 1)
            }) {
                dest.set(k, strip(pv));
                continue;
            }
        }
        let field = fields.and_then(|f| f.get(k));
        let child = field.and_then(|f| f.child.as_deref());
        match (dest.get_mut(k), pv) {
            (Some(dv @ Value::Map(_)), Value::Map(_)) => merge_map(dv, pv, child),
            (Some(dv @ Value::Seq(_)), Value::Seq(ps)) => merge_list(dv, ps, field),
            _ => dest.set(k, strip(pv)),
        }
    }
}

fn merge_list(dest: &mut Value, patch: &[Value], field: Option<&Field>) {
    let Some(f) = field else {
        *dest = strip(&Value::Seq(patch.to_vec()));
        return;
    };
    let Value::Seq(orig) = dest else {
        return;
    };
    if let (Some(key), true) = (&f.merge_key, f.merge) {
        let mut out = Vec::new();
        let mut used = vec![false; orig.len()];
        let mut deleted = vec![false; orig.len()];
        let mut merged_in_place: Vec<Option<Value>> = vec![None; orig.len()];
        let keys: Vec<&str> = if f.map_keys.is_empty() {
            vec![key.as_str()]
        } else {
            f.map_keys.iter().map(String::as_str).collect()
        };
        for p in patch {
            if directive(p) == Some("replace") {
                // Observed: an item asking to replace itself is ignored.
                continue;
            }
            let pk = p.get(key);
            let same = |o: &Value| keys.iter().all(|k| o.get(k) == p.get(k));
            let found = orig
                .iter()
                .enumerate()
                .find(|(i, o)| !used[*i] && pk.is_some() && same(o))
                .map(|(i, _)| i);
            let delete = directive(p) == Some("delete");
            // Observed: with list-map-keys, an item whose merge key matches an original
            // item but whose other keys differ is dropped.
            let shadowed = found.is_none()
                && keys.len() > 1
                && pk.is_some()
                && orig.iter().any(|o| o.get(key) == pk);
            match found {
                Some(i) => {
                    used[i] = true;
                    if delete {
                        deleted[i] = true;
                        continue;
                    }
                    let mut item = orig[i].clone();
                    merge_map(&mut item, p, f.child.as_deref());
                    if keys.len() > 1 {
                        // Observed: list-map-keys lists keep merged items in place.
                        merged_in_place[i] = Some(item);
                    } else {
                        out.push(item);
                    }
                }
                None if delete || shadowed => {}
                None => out.push(strip(p)),
            }
        }
        if keys.len() > 1 {
            for (i, o) in orig.iter().enumerate() {
                if deleted[i] {
                    continue;
                }
                out.push(merged_in_place[i].take().unwrap_or_else(|| o.clone()));
            }
            *dest = Value::Seq(out);
            return;
        }
        for (i, o) in orig.iter().enumerate() {
            if !used[i] {
                out.push(o.clone());
            }
        }
        *dest = Value::Seq(out);
    } else if f.merge && patch.iter().all(|p| !matches!(p, Value::Map(_))) {
        let mut out: Vec<Value> = Vec::new();
        for p in patch {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
        for o in orig.iter() {
            if !out.contains(o) {
                out.push(o.clone());
            }
        }
        *dest = Value::Seq(out);
    } else {
        *dest = strip(&Value::Seq(patch.to_vec()));
    }
}
