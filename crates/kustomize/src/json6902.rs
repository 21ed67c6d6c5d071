//! JSON patch (RFC 6902) over [`Value`].
//!
//! Bounded: every value an operation places is counted as a copy against the build's
//! budget, and must fit under the depth limit where it lands, both before it is placed
//! (a list of `copy` operations doubling a subtree into itself fails early).

use crate::caps::Caps;
use crate::yaml::Value;

fn pointer(p: &str) -> Result<Vec<String>, String> {
    if p.is_empty() {
        return Ok(Vec::new());
    }
    let rest = p
        .strip_prefix('/')
        .ok_or_else(|| format!("path {p:?} must start with '/'"))?;
    Ok(rest
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn get<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = v;
    for seg in path {
        cur = match cur {
            Value::Map(_) => cur.get(seg)?,
            Value::Seq(s) => s.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn parent<'a>(v: &'a mut Value, path: &[String], p: &str) -> Result<&'a mut Value, String> {
    let mut cur = v;
    for seg in &path[..path.len() - 1] {
        cur = match cur {
            Value::Map(_) => cur
                .get_mut(seg)
                .ok_or_else(|| format!("path {p:?}: missing {seg:?}"))?,
            Value::Seq(s) => {
                let i: usize = seg
                    .parse()
                    .map_err(|_| format!("path {p:?}: bad index {seg:?}"))?;
                s.get_mut(i)
                    .ok_or_else(|| format!("path {p:?}: index {i} out of range"))?
            }
            _ => return Err(format!("path {p:?}: cannot descend into a scalar")),
        };
    }
    Ok(cur)
}

fn add(v: &mut Value, p: &str, val: Value) -> Result<(), String> {
    let path = pointer(p)?;
    if path.is_empty() {
        *v = val;
        return Ok(());
    }
    let last = path.last().expect("non-empty").clone();
    let par = parent(v, &path, p)?;
    match par {
        Value::Map(_) => {
            par.set(&last, val);
            Ok(())
        }
        Value::Seq(s) => {
            if last == "-" {
                s.push(val);
                return Ok(());
            }
            let i: usize = last.parse().map_err(|_| format!("path {p:?}: bad index"))?;
            if i > s.len() {
                return Err(format!("path {p:?}: index {i} out of range"));
            }
            s.insert(i, val);
            Ok(())
        }
        _ => Err(format!("path {p:?}: parent is a scalar")),
    }
}

fn remove(v: &mut Value, p: &str) -> Result<Value, String> {
    let path = pointer(p)?;
    let last = path.last().ok_or("cannot remove the root")?.clone();
    let par = parent(v, &path, p)?;
    match par {
        Value::Map(_) => par
            .remove(&last)
            .ok_or_else(|| format!("path {p:?}: missing {last:?}")),
        Value::Seq(s) => {
            let i: usize = last.parse().map_err(|_| format!("path {p:?}: bad index"))?;
            if i >= s.len() {
                return Err(format!("path {p:?}: index {i} out of range"));
            }
            Ok(s.remove(i))
        }
        _ => Err(format!("path {p:?}: parent is a scalar")),
    }
}

/// Checks, before `val` is placed at pointer `p`, that the copy fits in the budget and
/// the result under the depth limit (the value sits under one container per segment).
fn place(caps: &Caps<'_>, p: &str, val: &Value, copied: bool) -> Result<(), String> {
    let levels = pointer(p)?.len();
    caps.fits(levels, val)
        .map_err(|e| format!("path {p:?}: {e}"))?;
    if copied {
        caps.copy(val)?;
    }
    Ok(())
}

/// Applies a list of operations.
pub fn apply(doc: &mut Value, ops: &Value, caps: &Caps<'_>) -> Result<(), String> {
    let Value::Seq(ops) = ops else {
        return Err("patch must be a list of operations".into());
    };
    for op in ops {
        let s = |k: &str| op.get(k).and_then(Value::as_str).map(str::to_owned);
        let kind = s("op").ok_or("operation without op")?;
        let path = s("path").ok_or("operation without path")?;
        let value = || {
            let v = op.get("value").unwrap_or(&Value::Null);
            place(caps, &path, v, true).map(|()| v.clone())
        };
        match kind.as_str() {
            "add" => add(doc, &path, value()?)?,
            "remove" => {
                remove(doc, &path)?;
            }
            "replace" => {
                let ptr = pointer(&path)?;
                if get(doc, &ptr).is_none() {
                    return Err(format!("replace: path {path:?} does not exist"));
                }
                let v = value()?;
                remove(doc, &path)?;
                add(doc, &path, v)?;
            }
            "move" => {
                let from = s("from").ok_or("move without from")?;
                if let Some(v) = get(doc, &pointer(&from)?) {
                    place(caps, &path, v, false)?;
                }
                let v = remove(doc, &from)?;
                add(doc, &path, v)?;
            }
            "copy" => {
                let from = s("from").ok_or("copy without from")?;
                let v = get(doc, &pointer(&from)?)
                    .ok_or_else(|| format!("copy: from {from:?} does not exist"))?;
                place(caps, &path, v, true)?;
                let v = v.clone();
                add(doc, &path, v)?;
            }
            "test" => {
                let v = get(doc, &pointer(&path)?);
                if v != op.get("value") {
                    return Err(format!("test failed at {path:?}"));
                }
            }
            other => return Err(format!("unknown operation {other:?}")),
        }
    }
    Ok(())
}
