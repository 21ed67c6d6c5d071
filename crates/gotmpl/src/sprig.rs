//! Sprig v3.3.0 functions, a first family: strings, defaults and the non-mutating list
//! and dict constructors, with Sprig's signatures and conversions (`strval`, `strslice`,
//! `empty`). See [`add_to`] for the list; everything else of Sprig's `TxtFuncMap` is not
//! here yet and fails at parse time as an undefined function.

use std::collections::BTreeMap;

use crate::fmt as gofmt;
use crate::{ArgType, Func, FuncError, Templates, Value};

/// Sprig's `strval`: strings as they are, everything else as `%v` prints it.
pub fn strval(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string(),
        v => gofmt::sprintf("%v", std::slice::from_ref(v)),
    }
}

/// Sprig's `strslice`: a list's non-nil elements as strings, nil as no strings, any
/// other value as one string.
fn strslice(v: &Value) -> Vec<String> {
    match v {
        Value::List(l) => l.iter().filter(|e| !e.is_nil()).map(strval).collect(),
        Value::Missing | Value::Nil => Vec::new(),
        v => vec![strval(v)],
    }
}

/// Sprig's `empty`: Go's zero values and empty containers.
pub fn empty(v: &Value) -> bool {
    !v.is_true()
}

fn s(v: &Value) -> &str {
    match v {
        Value::String(s) => s,
        _ => "",
    }
}

fn i(v: &Value) -> i64 {
    match v {
        Value::Int(i, _) => *i,
        _ => 0,
    }
}

fn repeat(str: &str, count: i64) -> Result<String, FuncError> {
    if count < 0 {
        return Err("strings: negative Repeat count".into());
    }
    Ok(str.repeat(count as usize))
}

fn indent(spaces: i64, v: &str) -> Result<String, FuncError> {
    let pad = repeat(" ", spaces)?;
    Ok(format!("{pad}{}", v.replace('\n', &format!("\n{pad}"))))
}

/// A byte range of a string, as Go slices strings; cutting a UTF-8 character is refused
/// (Go would produce invalid text).
fn byte_slice(s: &str, start: usize, end: usize) -> Result<Value, FuncError> {
    match s.get(start..end) {
        Some(x) => Ok(Value::string(x)),
        None => Err("string slice would split a UTF-8 character (not supported)".into()),
    }
}

fn substr(start: i64, end: i64, s: &str) -> Result<Value, FuncError> {
    let len = s.len() as i64;
    if start < 0 {
        if end < 0 {
            return Err(format!("runtime error: slice bounds out of range [:{end}]").into());
        }
        if end > len {
            return Err(format!(
                "runtime error: slice bounds out of range [:{end}] with length {len}"
            )
            .into());
        }
        return byte_slice(s, 0, end as usize);
    }
    if end < 0 || end > len {
        if start > len {
            return Err(format!("runtime error: slice bounds out of range [{start}:{len}]").into());
        }
        return byte_slice(s, start as usize, len as usize);
    }
    if start > end {
        return Err(format!("runtime error: slice bounds out of range [{start}:{end}]").into());
    }
    byte_slice(s, start as usize, end as usize)
}

fn trunc(c: i64, s: &str) -> Result<Value, FuncError> {
    let len = s.len() as i64;
    if c < 0 && len + c > 0 {
        return byte_slice(s, (len + c) as usize, len as usize);
    }
    if c >= 0 && len > c {
        return byte_slice(s, 0, c as usize);
    }
    Ok(Value::string(s))
}

/// Go's unicode simple case mapping, approximated per character: where Rust's full
/// mapping is one character it is the simple one; otherwise Go keeps the character.
fn map_simple(c: char, upper: bool) -> char {
    let mut it: Box<dyn Iterator<Item = char>> = if upper {
        Box::new(c.to_uppercase())
    } else {
        Box::new(c.to_lowercase())
    };
    match (it.next(), it.next()) {
        (Some(x), None) => x,
        _ => c,
    }
}

/// Go's strings.Title: a letter after a separator is title-cased.
fn title(s: &str) -> String {
    let is_sep = |c: char| {
        if c.is_ascii() {
            return !(c.is_ascii_alphanumeric() || c == '_');
        }
        if c.is_alphabetic() || c.is_numeric() {
            return false;
        }
        c.is_whitespace()
    };
    let to_title = |c: char| match c {
        // Digraphs have a title case distinct from their upper case.
        '\u{1C4}'..='\u{1C6}' => '\u{1C5}',
        '\u{1C7}'..='\u{1C9}' => '\u{1C8}',
        '\u{1CA}'..='\u{1CC}' => '\u{1CB}',
        '\u{1F1}'..='\u{1F3}' => '\u{1F2}',
        c => map_simple(c, true),
    };
    let mut prev = ' ';
    s.chars()
        .map(|c| {
            let out = if is_sep(prev) { to_title(c) } else { c };
            prev = c;
            out
        })
        .collect()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64enc(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Go's base64.StdEncoding.DecodeString, with its error positions (Sprig prints the
/// error as the result): quanta of four, `\r`/`\n` skipped, `=` padding only at the end.
fn b64dec(src: &str) -> Result<Vec<u8>, String> {
    let src = src.as_bytes();
    let corrupt = |at: usize| format!("illegal base64 data at input byte {at}");
    let skip_nl = |mut i: usize| {
        while i < src.len() && (src[i] == b'\n' || src[i] == b'\r') {
            i += 1;
        }
        i
    };
    let mut out = Vec::new();
    let mut si = 0;
    loop {
        let mut q = [0u32; 4];
        let mut dlen = 4;
        let mut trailing: Option<usize> = None;
        let mut j = 0;
        while j < 4 {
            if si == src.len() {
                if j == 0 {
                    return Ok(out);
                }
                return Err(corrupt(si - j));
            }
            let c = src[si];
            si += 1;
            if let Some(v) = B64.iter().position(|&x| x == c) {
                q[j] = v as u32;
                j += 1;
                continue;
            }
            if c == b'\n' || c == b'\r' {
                continue;
            }
            if c != b'=' || j < 2 {
                return Err(corrupt(si - 1));
            }
            if j == 2 {
                si = skip_nl(si);
                if si == src.len() {
                    return Err(corrupt(src.len()));
                }
                if src[si] != b'=' {
                    return Err(corrupt(si - 1));
                }
                si += 1;
            }
            si = skip_nl(si);
            if si < src.len() {
                trailing = Some(si);
            }
            dlen = j;
            break;
        }
        let n = q[0] << 18 | q[1] << 12 | q[2] << 6 | q[3];
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..dlen - 1]);
        if let Some(at) = trailing {
            return Err(corrupt(at));
        }
        if dlen < 4 {
            return Ok(out);
        }
    }
}

/// The longest list `until` builds.
const UNTIL_MAX: u64 = 1_000_000;

/// reflect.DeepEqual on template values: same Go type and equal contents.
pub fn deep_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Missing | Value::Nil, Value::Missing | Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x, tx), Value::Int(y, ty)) => tx == ty && x == y,
        (Value::Uint(x, tx), Value::Uint(y, ty)) => tx == ty && x == y,
        // DeepEqual compares floats with ==, so NaN is unequal to itself.
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Complex(a1, b1), Value::Complex(a2, b2)) => a1 == a2 && b1 == b2,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| deep_equal(p, q))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| deep_equal(v, w)))
        }
        _ => false,
    }
}

/// reflect's Kind name, as Sprig's list errors print it.
fn kind_name(v: &Value) -> Result<&'static str, FuncError> {
    Ok(match v {
        // reflect.TypeOf(nil).Kind() dereferences nil: Go panics, the call fails so.
        Value::Missing | Value::Nil => {
            return Err("runtime error: invalid memory address or nil pointer dereference".into());
        }
        Value::List(_) => "slice",
        Value::Map(_) => "map",
        v => v.type_name(),
    })
}

/// The list argument of Sprig's list functions, or Go's error for `what` on other kinds.
fn as_list<'v>(v: &'v Value, what: &str) -> Result<&'v [Value], FuncError> {
    match v {
        Value::List(l) => Ok(l),
        other => Err(format!("Cannot {what} on type {}", kind_name(other)?).into()),
    }
}

fn list_fns(t: &mut Templates) {
    use ArgType::{Any, Int};
    let f = |t: &mut Templates,
             name: &str,
             params: &[ArgType],
             variadic: Option<ArgType>,
             imp: fn(&[Value]) -> Result<Value, FuncError>| {
        t.add_func(name, Func::new(params, variadic, move |_, a| imp(&a)));
    };
    f(t, "first", &[Any], None, |a| {
        Ok(as_list(&a[0], "find first")?
            .first()
            .cloned()
            .unwrap_or(Value::Nil))
    });
    f(t, "last", &[Any], None, |a| {
        Ok(as_list(&a[0], "find last")?
            .last()
            .cloned()
            .unwrap_or(Value::Nil))
    });
    f(t, "rest", &[Any], None, |a| {
        // An empty list gives a typed nil slice, which prints as [].
        let l = as_list(&a[0], "find rest")?;
        Ok(Value::list(l.get(1..).unwrap_or_default().to_vec()))
    });
    f(t, "initial", &[Any], None, |a| {
        let l = as_list(&a[0], "find initial")?;
        Ok(Value::list(l[..l.len().saturating_sub(1)].to_vec()))
    });
    let push: fn(&[Value]) -> Result<Value, FuncError> = |a| {
        let mut l = as_list(&a[0], "push")?.to_vec();
        l.push(a[1].clone());
        Ok(Value::list(l))
    };
    f(t, "append", &[Any, Any], None, push);
    f(t, "push", &[Any, Any], None, push);
    f(t, "prepend", &[Any, Any], None, |a| {
        let mut l = vec![a[1].clone()];
        l.extend_from_slice(as_list(&a[0], "prepend")?);
        Ok(Value::list(l))
    });
    f(t, "concat", &[], Some(Any), |a| {
        let mut out = Vec::new();
        for l in a {
            match l {
                Value::List(l) => out.extend_from_slice(l),
                other => {
                    return Err(format!("Cannot concat type {} as list", kind_name(other)?).into());
                }
            }
        }
        Ok(Value::list(out))
    });
    f(t, "reverse", &[Any], None, |a| {
        let mut l = as_list(&a[0], "find reverse")?.to_vec();
        l.reverse();
        Ok(Value::list(l))
    });
    f(t, "uniq", &[Any], None, |a| {
        let mut out: Vec<Value> = Vec::new();
        for v in as_list(&a[0], "find uniq")? {
            if !out.iter().any(|o| deep_equal(o, v)) {
                out.push(v.clone());
            }
        }
        Ok(Value::list(out))
    });
    f(t, "without", &[Any], Some(Any), |a| {
        let l = as_list(&a[0], "find without")?;
        Ok(Value::list(
            l.iter()
                .filter(|v| !a[1..].iter().any(|o| deep_equal(o, v)))
                .cloned()
                .collect(),
        ))
    });
    f(t, "has", &[Any, Any], None, |a| match &a[1] {
        Value::Missing | Value::Nil => ok(false),
        Value::List(l) => ok(l.iter().any(|v| deep_equal(v, &a[0]))),
        other => Err(format!("Cannot find has on type {}", kind_name(other)?).into()),
    });
    f(t, "compact", &[Any], None, |a| {
        Ok(Value::list(
            as_list(&a[0], "compact")?
                .iter()
                .filter(|v| !empty(v))
                .cloned()
                .collect(),
        ))
    });
    f(t, "until", &[Int], None, |a| {
        let n = i(&a[0]);
        // A runaway count fails instead of allocating without bound (Go would try).
        if n.unsigned_abs() > UNTIL_MAX {
            return Err(format!("until: count {n} exceeds the limit of {UNTIL_MAX}").into());
        }
        let r: Vec<Value> = if n >= 0 {
            (0..n).map(Value::int).collect()
        } else {
            (0..-n).map(|k| Value::int(-k)).collect()
        };
        Ok(Value::list(r))
    });
}

fn ok(v: impl Into<Value>) -> Result<Value, FuncError> {
    Ok(v.into())
}

/// Adds the implemented Sprig functions to a template set.
pub fn add_to(t: &mut Templates) {
    list_fns(t);
    use ArgType::{Any, Bool, Int, Map, String as Str};
    let f = |t: &mut Templates,
             name: &str,
             params: &[ArgType],
             variadic: Option<ArgType>,
             imp: fn(&[Value]) -> Result<Value, FuncError>| {
        t.add_func(name, Func::new(params, variadic, move |_, a| imp(&a)));
    };
    f(t, "trim", &[Str], None, |a| ok(s(&a[0]).trim()));
    f(t, "trimAll", &[Str, Str], None, |a| {
        let cut = s(&a[0]);
        ok(s(&a[1]).trim_matches(|c| cut.contains(c)))
    });
    f(t, "trimPrefix", &[Str, Str], None, |a| {
        ok(s(&a[1]).strip_prefix(s(&a[0])).unwrap_or(s(&a[1])))
    });
    f(t, "trimSuffix", &[Str, Str], None, |a| {
        ok(s(&a[1]).strip_suffix(s(&a[0])).unwrap_or(s(&a[1])))
    });
    f(t, "upper", &[Str], None, |a| {
        ok(s(&a[0])
            .chars()
            .map(|c| map_simple(c, true))
            .collect::<String>())
    });
    f(t, "lower", &[Str], None, |a| {
        ok(s(&a[0])
            .chars()
            .map(|c| map_simple(c, false))
            .collect::<String>())
    });
    f(t, "title", &[Str], None, |a| ok(title(s(&a[0]))));
    f(t, "repeat", &[Int, Str], None, |a| {
        repeat(s(&a[1]), i(&a[0])).map(Value::from)
    });
    f(t, "substr", &[Int, Int, Str], None, |a| {
        substr(i(&a[0]), i(&a[1]), s(&a[2]))
    });
    f(t, "trunc", &[Int, Str], None, |a| trunc(i(&a[0]), s(&a[1])));
    // goutils.DeleteWhiteSpace reads each byte as a Latin-1 character (so UTF-8 text
    // comes out as mojibake, and bytes 0x85 and 0xA0 count as spaces): same here.
    // When nothing is removed it returns the input untouched.
    f(t, "nospace", &[Str], None, |a| {
        let src = s(&a[0]);
        let kept: String = src
            .bytes()
            .map(char::from)
            .filter(|c| !c.is_whitespace())
            .collect();
        ok(if kept.chars().count() == src.len() {
            src.to_string()
        } else {
            kept
        })
    });
    f(t, "contains", &[Str, Str], None, |a| {
        ok(s(&a[1]).contains(s(&a[0])))
    });
    f(t, "hasPrefix", &[Str, Str], None, |a| {
        ok(s(&a[1]).starts_with(s(&a[0])))
    });
    f(t, "hasSuffix", &[Str, Str], None, |a| {
        ok(s(&a[1]).ends_with(s(&a[0])))
    });
    f(t, "quote", &[], Some(Any), |a| {
        ok(a.iter()
            .filter(|v| !v.is_nil())
            .map(|v| gofmt::quote(&strval(v), false))
            .collect::<Vec<_>>()
            .join(" "))
    });
    f(t, "squote", &[], Some(Any), |a| {
        ok(a.iter()
            .filter(|v| !v.is_nil())
            .map(|v| format!("'{}'", strval(v)))
            .collect::<Vec<_>>()
            .join(" "))
    });
    f(t, "cat", &[], Some(Any), |a| {
        let kept: Vec<Value> = a.iter().filter(|v| !v.is_nil()).cloned().collect();
        let format = vec!["%v"; kept.len()].join(" ");
        ok(gofmt::sprintf(&format, &kept))
    });
    f(t, "indent", &[Int, Str], None, |a| {
        indent(i(&a[0]), s(&a[1])).map(Value::from)
    });
    f(t, "nindent", &[Int, Str], None, |a| {
        indent(i(&a[0]), s(&a[1])).map(|x| Value::from(format!("\n{x}")))
    });
    f(t, "replace", &[Str, Str, Str], None, |a| {
        ok(s(&a[2]).replace(s(&a[0]), s(&a[1])))
    });
    f(t, "plural", &[Str, Str, Int], None, |a| {
        ok(if i(&a[2]) == 1 { s(&a[0]) } else { s(&a[1]) })
    });
    f(t, "toString", &[Any], None, |a| ok(strval(&a[0])));
    f(t, "default", &[Any], Some(Any), |a| {
        Ok(if a.len() < 2 || empty(&a[1]) {
            a[0].clone()
        } else {
            a[1].clone()
        })
    });
    f(t, "empty", &[Any], None, |a| ok(empty(&a[0])));
    f(t, "coalesce", &[], Some(Any), |a| {
        Ok(a.iter().find(|v| !empty(v)).cloned().unwrap_or(Value::Nil))
    });
    f(t, "ternary", &[Any, Any, Bool], None, |a| {
        Ok(if a[2].is_true() {
            a[0].clone()
        } else {
            a[1].clone()
        })
    });
    f(t, "list", &[], Some(Any), |a| Ok(Value::list(a.to_vec())));
    f(t, "join", &[Str, Any], None, |a| {
        ok(strslice(&a[1]).join(s(&a[0])))
    });
    f(t, "splitList", &[Str, Str], None, |a| {
        let (sep, orig) = (s(&a[0]), s(&a[1]));
        let parts: Vec<Value> = if sep.is_empty() {
            orig.chars().map(|c| Value::string(c.to_string())).collect()
        } else {
            orig.split(sep).map(Value::string).collect()
        };
        Ok(Value::list(parts))
    });
    f(t, "sortAlpha", &[Any], None, |a| {
        let mut v = match &a[0] {
            Value::List(_) => strslice(&a[0]),
            other => vec![strval(other)],
        };
        v.sort();
        Ok(Value::list(v.into_iter().map(Value::from).collect()))
    });
    f(t, "dict", &[], Some(Any), |a| {
        let mut m = BTreeMap::new();
        for kv in a.chunks(2) {
            m.insert(
                strval(&kv[0]),
                kv.get(1).cloned().unwrap_or_else(|| Value::string("")),
            );
        }
        Ok(Value::map(m))
    });
    f(t, "get", &[Map, Str], None, |a| match &a[0] {
        Value::Map(m) => Ok(m
            .get(s(&a[1]))
            .cloned()
            .unwrap_or_else(|| Value::string(""))),
        _ => ok(""),
    });
    f(t, "hasKey", &[Map, Str], None, |a| match &a[0] {
        Value::Map(m) => ok(m.contains_key(s(&a[1]))),
        _ => ok(false),
    });
    f(t, "b64enc", &[Str], None, |a| {
        ok(b64enc(s(&a[0]).as_bytes()))
    });
    f(t, "b64dec", &[Str], None, |a| match b64dec(s(&a[0])) {
        Ok(b) => match String::from_utf8(b) {
            Ok(x) => ok(x),
            Err(_) => Err("decoded bytes are not UTF-8 (not supported)".into()),
        },
        Err(e) => ok(e),
    });
}
