//! `-o yaml` and `-o json` output, shaped like kubectl's.
//!
//! YAML follows go-yaml v2's encoder (what `kubectl get -o yaml` prints): block style,
//! 2-space indent, list items at their key's indent, strings plain unless plain text
//! would read back as another type (`"yes"`, `"0755"`, `""`) — then double-quoted — or
//! could not be plain (`': x'`, `'#x'`) — then single-quoted, multi-line strings as
//! literal blocks, long lines folded at spaces past column 80. With keys in Go's sorted
//! order the output is byte for byte what sigs.k8s.io/yaml's `JSONToYAML` prints
//! (`tests/kubectl_oracle.rs`), and it re-parses with this crate to the same JSON.

use std::borrow::Cow;

use driftless_model::{Content, Object};
use serde_json::{Map, Value};

use crate::resolve::{Scalar, is_base60_float, looks_like_timestamp, resolve_plain};

/// The objects as YAML documents separated by `---`.
pub fn to_yaml(objects: &[Object]) -> String {
    let mut out = String::new();
    for (i, o) in objects.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        write_root(&mut out, &printable(o));
    }
    out
}

/// The `kind: List` that `kubectl get -o json` prints for several objects; fields in
/// the order kubectl's encoder sorts them.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct List<'a> {
    api_version: &'static str,
    items: Vec<Cow<'a, Value>>,
    kind: &'static str,
    metadata: ListMeta,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ListMeta {
    resource_version: &'static str,
}

/// The objects as one `kind: List`, like `kubectl get -o json`: 4-space indent, keys of
/// each object in document order.
pub fn to_json(objects: &[Object]) -> String {
    let list = List {
        api_version: "v1",
        items: objects.iter().map(printable).collect(),
        kind: "List",
        metadata: ListMeta {
            resource_version: "",
        },
    };
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    serde::Serialize::serialize(&list, &mut ser)
        .expect("serializing JSON values into memory cannot fail");
    let mut s = String::from_utf8(buf).expect("serde_json writes UTF-8");
    s.push('\n');
    s
}

/// A manifest as itself; a host file as `{file, executable, size, content | contentBase64}`.
fn printable(o: &Object) -> Cow<'_, Value> {
    match &o.content {
        Content::Manifest(v) => Cow::Borrowed(v),
        Content::File { data, executable } => {
            let mut m = Map::new();
            m.insert("file".into(), o.id.name.clone().into());
            m.insert("executable".into(), (*executable).into());
            m.insert("size".into(), data.len().into());
            match std::str::from_utf8(data) {
                Ok(text) => m.insert("content".into(), text.into()),
                Err(_) => m.insert("contentBase64".into(), base64(data).into()),
            };
            Cow::Owned(Value::Object(m))
        }
    }
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn pad(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn write_root(out: &mut String, v: &Value) {
    match v {
        Value::Object(m) if !m.is_empty() => write_map(out, m, 0, false),
        Value::Array(a) if !a.is_empty() => write_seq(out, a, 0, false),
        other => {
            write_scalar_or_empty(out, other, 0);
            out.push('\n');
        }
    }
}

/// Writes a non-empty mapping whose keys sit at column `indent`. With `inline`, the
/// cursor is already placed (after `- `) for the first key.
fn write_map(out: &mut String, m: &Map<String, Value>, indent: usize, inline: bool) {
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 || !inline {
            pad(out, indent);
        }
        if k.len() > MAX_SIMPLE_KEY || k.chars().any(is_break) {
            // Like libyaml: a long or multi-line key is written as an explicit
            // `? key` / `: value` pair.
            out.push_str("? ");
            // Not a simple key: styled and folded like a value.
            write_string(out, k, indent, false);
            out.push('\n');
            pad(out, indent);
            out.push_str(": ");
            write_compact(out, v, indent);
            continue;
        }
        write_string(out, k, indent, true);
        out.push(':');
        match v {
            Value::Object(child) if !child.is_empty() => {
                out.push('\n');
                write_map(out, child, indent + 2, false);
            }
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                write_seq(out, items, indent, false);
            }
            other => {
                out.push(' ');
                write_scalar_or_empty(out, other, indent);
                out.push('\n');
            }
        }
    }
}

/// Writes a non-empty sequence whose `- ` sit at column `indent`.
fn write_seq(out: &mut String, items: &[Value], indent: usize, inline: bool) {
    for (i, v) in items.iter().enumerate() {
        if i > 0 || !inline {
            pad(out, indent);
        }
        out.push_str("- ");
        write_compact(out, v, indent);
    }
}

/// A node right after a `- ` or `: ` indicator at column `indent`: collections start on
/// the same line, their later lines at `indent + 2`.
fn write_compact(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(child) if !child.is_empty() => write_map(out, child, indent + 2, true),
        Value::Array(child) if !child.is_empty() => write_seq(out, child, indent + 2, true),
        other => {
            write_scalar_or_empty(out, other, indent);
            out.push('\n');
        }
    }
}

/// Longest key, in bytes, written as an implicit `key: value` (libyaml's limit; YAML
/// allows 1024 characters).
const MAX_SIMPLE_KEY: usize = 128;

/// A scalar, `{}` or `[]`, without the line break. `indent` is the column of the owning
/// key or dash.
fn write_scalar_or_empty(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                out.push_str(&format_float(f));
            } else {
                out.push_str(&n.to_string());
            }
        }
        Value::String(s) => write_string(out, s, indent, false),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

/// A float that go-yaml v2 reads back as the same float: plain decimals in the usual
/// range, otherwise an exponent with an explicit sign as go-yaml writes it (`1e+20`).
fn format_float(f: f64) -> String {
    let a = f.abs();
    if (1e-4..1e21).contains(&a) && f.fract() != 0.0 {
        return f.to_string();
    }
    let s = format!("{f:e}");
    match s.split_once('e') {
        Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
        _ => s,
    }
}

/// go-yaml's notion of a printable character (its check admits nothing beyond U+FFFF,
/// so emoji are written escaped), minus the line breaks.
fn is_printable(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{7E}' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        && !matches!(c, '\u{FEFF}' | '\u{2028}' | '\u{2029}')
}

/// Line breaks in YAML 1.1, which libyaml's emitter recognises.
fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// Writes a string scalar. `indent` is the column of the owning key or dash: block
/// scalars and wrapped lines continue at `indent + 2`. Keys are never wrapped.
fn write_string(out: &mut String, s: &str, indent: usize, is_key: bool) {
    let printable = s.chars().all(|c| c == '\n' || is_printable(c));
    let resolves_to_string = !s.is_empty() && resolve_plain(s) == Scalar::Str;
    let wrap = (!is_key).then_some(indent + 2);
    if s.contains('\n') {
        if !is_key && printable && literal_allowed(s) {
            let first_line = s.split('\n').find(|l| !l.is_empty()).unwrap_or("");
            let needs_indicator = first_line.starts_with(' ') || s.starts_with('\n');
            write_literal(out, s, indent, needs_indicator);
            return;
        }
        write_double(out, s, wrap);
        return;
    }
    if !resolves_to_string || is_base60_float(s) || looks_like_timestamp(s) {
        write_double(out, s, wrap);
    } else if plain_allowed(s) {
        write_wrapped(out, s, wrap, Quote::None);
    } else if printable {
        out.push('\'');
        write_wrapped(out, s, wrap, Quote::Single);
        out.push('\'');
    } else {
        write_double(out, s, wrap);
    }
}

/// libyaml's line width: a space past this column becomes a line break.
const BEST_WIDTH: usize = 80;

#[derive(Clone, Copy, PartialEq)]
enum Quote {
    None,
    Single,
}

/// The column the next character lands in.
fn column(out: &str) -> usize {
    out[out.rfind('\n').map_or(0, |i| i + 1)..].chars().count()
}

/// A plain or single-quoted scalar, folded at spaces past [`BEST_WIDTH`] like libyaml
/// (a single line break in a flow scalar reads back as one space).
fn write_wrapped(out: &mut String, s: &str, wrap: Option<usize>, quote: Quote) {
    let chars: Vec<char> = s.chars().collect();
    let mut spaces = false;
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let next_is_space = chars.get(i + 1) == Some(&' ');
            let inner = quote == Quote::None || (i != 0 && i + 1 != chars.len());
            if let Some(at) = wrap
                && !spaces
                && inner
                && !next_is_space
                && column(out) > BEST_WIDTH
            {
                out.push('\n');
                pad(out, at);
            } else {
                out.push(' ');
            }
            spaces = true;
        } else {
            if c == '\'' && quote == Quote::Single {
                out.push('\'');
            }
            out.push(c);
            spaces = false;
        }
    }
}

/// libyaml's analysis for a plain scalar in block context.
fn plain_allowed(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    if b[0] == b' ' || b[b.len() - 1] == b' ' {
        return false;
    }
    if !s.chars().all(is_printable) {
        return false;
    }
    let followed_by_space = |i: usize| b.get(i + 1).is_none_or(|&c| c == b' ');
    if matches!(
        b[0],
        b'#' | b','
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'&'
            | b'*'
            | b'!'
            | b'|'
            | b'>'
            | b'\''
            | b'"'
            | b'%'
            | b'@'
            | b'`'
    ) {
        return false;
    }
    if matches!(b[0], b'-' | b'?' | b':') && followed_by_space(0) {
        return false;
    }
    for i in 1..b.len() {
        if b[i] == b':' && followed_by_space(i) {
            return false;
        }
        if b[i] == b'#' && b[i - 1] == b' ' {
            return false;
        }
    }
    true
}

/// libyaml refuses block style when a space precedes a line break or ends the text.
fn literal_allowed(s: &str) -> bool {
    !s.contains(" \n") && !s.ends_with(' ')
}

fn write_literal(out: &mut String, s: &str, indent: usize, indicator: bool) {
    out.push('|');
    if indicator {
        out.push('2');
    }
    let body = if let Some(body) = s.strip_suffix('\n') {
        if body.ends_with('\n') || body.is_empty() {
            out.push('+');
        }
        body
    } else {
        out.push('-');
        s
    };
    out.push('\n');
    let lines: Vec<&str> = body.split('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        if !line.is_empty() {
            pad(out, indent + 2);
            out.push_str(line);
        }
        if i + 1 < lines.len() {
            out.push('\n');
        }
    }
}

/// A double-quoted scalar with escapes, folded at spaces past [`BEST_WIDTH`] like
/// libyaml (a space that starts the next line is escaped so it is kept).
fn write_double(out: &mut String, s: &str, wrap: Option<usize>) {
    out.push('"');
    let chars: Vec<char> = s.chars().collect();
    let mut spaces = false;
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            if let Some(at) = wrap
                && !spaces
                && i != 0
                && i + 1 != chars.len()
                && column(out) > BEST_WIDTH
            {
                out.push('\n');
                pad(out, at);
                if chars.get(i + 1) == Some(&' ') {
                    out.push('\\');
                }
            } else {
                out.push(' ');
            }
            spaces = true;
            continue;
        }
        spaces = false;
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            '\u{85}' => out.push_str("\\N"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if is_printable(c) => out.push(c),
            c if (c as u32) <= 0xFF => out.push_str(&format!("\\x{:02X}", c as u32)),
            c if (c as u32) <= 0xFFFF => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push_str(&format!("\\U{:08X}", c as u32)),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), want);
        }
    }

    #[test]
    fn floats_keep_a_signed_exponent() {
        assert_eq!(format_float(1.5), "1.5");
        assert_eq!(format_float(1e20), "1e+20");
        assert_eq!(format_float(1.5e-7), "1.5e-7");
        assert_eq!(format_float(-2.5e300), "-2.5e+300");
    }
}
