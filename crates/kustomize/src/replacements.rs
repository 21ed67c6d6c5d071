//! The `replacements` field: copy a value from one resource into fields of others.

use regex::Regex;
use std::cell::RefCell;

use crate::caps::Caps;
use crate::resource::{Gvk, Resource};
use crate::yaml::Value;

/// Splits `a.b.[k=v].[x.y/z].0` into segments (dots inside brackets do not split).
pub fn split_field_path(p: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    for c in p.chars() {
        match c {
            '[' => {
                depth += 1;
                cur.push(c);
            }
            ']' => {
                depth -= 1;
                cur.push(c);
            }
            '.' if depth == 0 => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn seg_key(seg: &str) -> &str {
    // `[a.b/c]` without '=' is an escaped map key.
    if seg.starts_with('[') && seg.ends_with(']') && !seg.contains('=') {
        &seg[1..seg.len() - 1]
    } else {
        seg
    }
}

/// Finds the values at a field path (several when `*` is used).
pub fn lookup<'a>(v: &'a Value, path: &[String]) -> Vec<&'a Value> {
    let Some((seg, rest)) = path.split_first() else {
        return vec![v];
    };
    match v {
        Value::Map(_) => match v.get(seg_key(seg)) {
            Some(c) => lookup(c, rest),
            None => Vec::new(),
        },
        Value::Seq(items) => {
            if seg == "*" {
                return items.iter().flat_map(|i| lookup(i, rest)).collect();
            }
            if let Some((k, val)) = seg
                .strip_prefix('[')
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.split_once('='))
            {
                return items
                    .iter()
                    .filter(|i| i.get(k).and_then(Value::scalar_text).as_deref() == Some(val))
                    .flat_map(|i| lookup(i, rest))
                    .collect();
            }
            match seg.parse::<usize>() {
                Ok(i) => items.get(i).map(|x| lookup(x, rest)).unwrap_or_default(),
                Err(_) => Vec::new(),
            }
        }
        _ => Vec::new(),
    }
}

/// Sets the value at a field path; creates missing map keys when `create`.
/// Returns how many places were set.
pub fn set(
    v: &mut Value,
    path: &[String],
    create: bool,
    f: &dyn Fn(&Value) -> Value,
) -> Result<usize, String> {
    let Some((seg, rest)) = path.split_first() else {
        let nv = f(v);
        *v = nv;
        return Ok(1);
    };
    match v {
        Value::Map(_) => {
            let key = seg_key(seg);
            if v.get(key).is_none() {
                if !create {
                    return Ok(0);
                }
                let fresh = if rest.is_empty() {
                    Value::Null
                } else if rest[0].starts_with('[') && rest[0].contains('=')
                    || rest[0].parse::<usize>().is_ok()
                {
                    Value::Seq(Vec::new())
                } else {
                    Value::Map(Vec::new())
                };
                v.set(key, fresh);
            }
            let child = v.get_mut(key).expect("present or created");
            set(child, rest, create, f)
        }
        Value::Seq(items) => {
            if seg == "*" {
                let mut n = 0;
                for i in items.iter_mut() {
                    n += set(i, rest, create, f)?;
                }
                return Ok(n);
            }
            if let Some((k, val)) = seg
                .strip_prefix('[')
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.split_once('='))
            {
                let mut n = 0;
                for i in items.iter_mut() {
                    if i.get(k).and_then(Value::scalar_text).as_deref() == Some(val) {
                        n += set(i, rest, create, f)?;
                    }
                }
                return Ok(n);
            }
            match seg.parse::<usize>() {
                Ok(i) if i < items.len() => set(&mut items[i], rest, create, f),
                Ok(_) => Ok(0),
                Err(_) => Err(format!("cannot index a list with {seg:?}")),
            }
        }
        Value::Null if create => {
            *v = Value::Map(Vec::new());
            set(v, path, create, f)
        }
        _ => Ok(0),
    }
}

/// Whether a `select`/`reject` entry picks a resource.
pub fn selects(sel: &Value, r: &Resource) -> bool {
    let s = |k: &str| sel.get(k).and_then(Value::as_str).unwrap_or("");
    let g: Gvk = r.gvk();
    if !g.selected_by(s("group"), s("version"), s("kind")) {
        return false;
    }
    let name = s("name");
    if !name.is_empty() && r.name() != name && !r.names.iter().any(|n| n == name) {
        return false;
    }
    let ns = s("namespace");
    if !ns.is_empty() && r.namespace() != ns && !r.namespaces.iter().any(|n| n == ns) {
        return false;
    }
    true
}

/// A target's `select` or `reject` entry: kustomize reads its group, version, kind, name
/// and namespace as regular expressions that must match the whole value (an empty one
/// matches anything), tried against every name and namespace a resource has had.
struct IdPattern {
    group: Option<Regex>,
    version: Option<Regex>,
    kind: Option<Regex>,
    name: Option<Regex>,
    namespace: Option<Regex>,
}

impl IdPattern {
    fn new(sel: &Value) -> Result<IdPattern, String> {
        let re = |k: &str| -> Result<Option<Regex>, String> {
            match sel.get(k).and_then(Value::as_str).unwrap_or("") {
                "" => Ok(None),
                pat => Regex::new(&format!("^(?:{pat})$"))
                    .map(Some)
                    .map_err(|e| format!("{k} {pat:?} is not a valid regular expression: {e}")),
            }
        };
        Ok(IdPattern {
            group: re("group")?,
            version: re("version")?,
            kind: re("kind")?,
            name: re("name")?,
            namespace: re("namespace")?,
        })
    }

    /// Nothing to match by id (a reject made only of label or annotation selectors).
    fn is_empty(&self) -> bool {
        [
            &self.group,
            &self.version,
            &self.kind,
            &self.name,
            &self.namespace,
        ]
        .iter()
        .all(|r| r.is_none())
    }

    fn matches(&self, r: &Resource) -> bool {
        let ok = |re: &Option<Regex>, s: &str| re.as_ref().is_none_or(|re| re.is_match(s));
        let g = r.gvk();
        ok(&self.group, &g.group)
            && ok(&self.version, &g.version)
            && ok(&self.kind, &g.kind)
            && (ok(&self.name, r.name()) || r.names.iter().any(|n| ok(&self.name, n)))
            && (ok(&self.namespace, r.namespace())
                || r.namespaces.iter().any(|n| ok(&self.namespace, n)))
    }
}

/// Applies one replacement to the accumulated resources. Each value placed counts as a
/// copy against the build's budget, and must fit under the depth limit where it lands.
pub fn apply(rep: &Value, acc: &mut [Resource], caps: &Caps<'_>) -> Result<(), String> {
    let src = rep.get("source").ok_or("replacement needs a source")?;
    let matches: Vec<usize> = acc
        .iter()
        .enumerate()
        .filter(|(_, r)| selects(src, r))
        .map(|(i, _)| i)
        .collect();
    let si = match matches.as_slice() {
        [i] => *i,
        [] => return Err("replacement source matched no resource".into()),
        _ => return Err("replacement source matched more than one resource".into()),
    };
    let fp = src
        .get("fieldPath")
        .and_then(Value::as_str)
        .unwrap_or("metadata.name");
    let found = lookup(&acc[si].value, &split_field_path(fp));
    let mut value = match found.as_slice() {
        [v] => (*v).clone(),
        [] => {
            return Err(format!(
                "fieldPath {fp:?} is missing in the replacement source"
            ));
        }
        _ => {
            return Err(format!(
                "fieldPath {fp:?} matches more than one value in the source"
            ));
        }
    };
    if let Some(opts) = src.get("options")
        && let Some(delim) = opts.get("delimiter").and_then(Value::as_str)
    {
        let idx = match opts.get("index") {
            Some(Value::Int(i)) => *i,
            _ => 0,
        };
        let text = value.scalar_text().unwrap_or_default();
        let parts: Vec<&str> = text.split(delim).collect();
        if idx < 0 || idx as usize >= parts.len() {
            return Err(format!(
                "options.index {idx} is out of bounds for value {text:?}"
            ));
        }
        value = Value::Str(parts[idx as usize].to_owned());
    }
    for t in rep
        .get("targets")
        .and_then(Value::as_seq)
        .into_iter()
        .flatten()
    {
        let sel = IdPattern::new(t.get("select").ok_or("replacement target needs select")?)?;
        let rejects: Vec<IdPattern> = t
            .get("reject")
            .and_then(Value::as_seq)
            .into_iter()
            .flatten()
            .map(IdPattern::new)
            .collect::<Result<Vec<_>, String>>()?
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect();
        let opts = t.get("options");
        let create = matches!(opts.and_then(|o| o.get("create")), Some(Value::Bool(true)));
        let delim = opts
            .and_then(|o| o.get("delimiter"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let idx = match opts.and_then(|o| o.get("index")) {
            Some(Value::Int(i)) => *i,
            _ => 0,
        };
        for r in acc.iter_mut() {
            if !sel.matches(r) || rejects.iter().any(|x| x.matches(r)) {
                continue;
            }
            for p in t
                .get("fieldPaths")
                .and_then(Value::as_seq)
                .into_iter()
                .flatten()
            {
                let Some(p) = p.as_str() else { continue };
                let segs = split_field_path(p);
                // One container per segment above the value; also bounds the recursion
                // (and the maps `create` makes) by the length of the path.
                caps.fits(segs.len(), &value)
                    .map_err(|e| format!("fieldPath {p:?}: {e}"))?;
                let d = delim.clone();
                // The first copy past the budget stops copying; the error is reported
                // once `set` returns.
                let over: RefCell<Option<String>> = RefCell::new(None);
                let n = set(&mut r.value, &segs, create, &|old: &Value| {
                    if over.borrow().is_some() {
                        return Value::Null;
                    }
                    let new = match &d {
                        None => caps.copy(&value).map(|()| value.clone()),
                        Some(d) => {
                            let text = old.scalar_text().unwrap_or_default();
                            let mut parts: Vec<String> =
                                text.split(d.as_str()).map(str::to_owned).collect();
                            let newv = value.scalar_text().unwrap_or_default();
                            if idx < 0 {
                                parts.insert(0, newv);
                            } else if idx as usize >= parts.len() {
                                parts.push(newv);
                            } else {
                                parts[idx as usize] = newv;
                            }
                            let joined = parts.join(d);
                            caps.copy_weight(1, joined.len() as u64)
                                .map(|()| Value::Str(joined))
                        }
                    };
                    new.unwrap_or_else(|e| {
                        *over.borrow_mut() = Some(e);
                        Value::Null
                    })
                })?;
                if let Some(e) = over.into_inner() {
                    return Err(e);
                }
                if n == 0 && !create {
                    return Err(format!(
                        "unable to find field {p:?} in replacement target {}",
                        r.name()
                    ));
                }
            }
            r.record();
        }
    }
    Ok(())
}
