//! YAML as sops reads and writes it.
//!
//! Reading: block mappings and sequences, plain/quoted/block scalars, simple flow collections,
//! comment lines, several documents. Scalars are typed the way go-yaml v3 resolves them.
//! Writing: the rules of go-yaml v3's emitter with a 4-space indent, which `sops -d` uses:
//! which style a string gets, how comments sit, how nested blocks indent.

use crate::SopsError;
use crate::gofmt;
use crate::tree::{Entry, Value};
use driftless_goyaml::{is_base60_float, is_yaml_float};

// ---------------------------------------------------------------------------------------------
// Reading

#[derive(Debug)]
struct Line {
    no: usize,
    indent: usize,
    /// The line after its indentation.
    text: String,
    /// The whole line (for block scalars).
    raw: String,
    blank: bool,
    comment: bool,
}

struct Parser<'a> {
    lines: Vec<Line>,
    pos: usize,
    file: &'a str,
    /// Open mappings and sequences; the reader recurses once per level, so this is capped.
    depth: usize,
    max_depth: usize,
}

fn is_complex_key(text: &str) -> bool {
    text == "?" || text.starts_with("? ")
}

/// Whether a line opens a mapping entry.
fn is_map_start(text: &str) -> bool {
    is_complex_key(text) || split_key(text).is_some()
}

fn is_seq_line(text: &str) -> bool {
    text == "-" || text.starts_with("- ") || text.starts_with("-\t")
}

impl<'a> Parser<'a> {
    fn err(&self, line: usize, col: usize, reason: impl Into<String>) -> SopsError {
        SopsError::malformed(self.file, line, col, reason)
    }

    /// Opens one more level of nesting at the current line, refusing to go past the limit.
    fn enter(&mut self, indent: usize) -> Result<(), SopsError> {
        self.depth += 1;
        if self.depth > self.max_depth {
            let no = self.next_content().map_or(0, |j| self.lines[j].no);
            return Err(SopsError::too_deep(
                self.file,
                no,
                indent + 1,
                self.max_depth,
            ));
        }
        Ok(())
    }

    fn next_content(&self) -> Option<usize> {
        (self.pos..self.lines.len()).find(|&i| !self.lines[i].blank && !self.lines[i].comment)
    }

    /// The node after a map key or a bare `-`: more indented than `parent`, or a sequence
    /// at the same indent when it is a map value.
    fn node(&mut self, parent: isize, map_value: bool) -> Result<Value, SopsError> {
        let Some(j) = self.next_content() else {
            return Ok(Value::Null);
        };
        let l = &self.lines[j];
        let seq = is_seq_line(&l.text);
        let deeper = l.indent as isize > parent;
        if !(deeper || (map_value && seq && l.indent as isize == parent)) {
            return Ok(Value::Null);
        }
        let indent = l.indent;
        if seq {
            return self.seq(indent);
        }
        if is_map_start(&l.text) {
            return self.map(indent);
        }
        // A lone scalar on its own line.
        let (no, text) = (l.no, l.text.clone());
        self.pos = j + 1;
        let (v, _) = self.inline_value(&text, no, indent + 1, parent.max(0) as usize)?;
        Ok(v)
    }

    fn map(&mut self, indent: usize) -> Result<Value, SopsError> {
        self.enter(indent)?;
        let v = self.map_entries(indent);
        self.depth -= 1;
        v
    }

    fn map_entries(&mut self, indent: usize) -> Result<Value, SopsError> {
        let mut entries = Vec::new();
        while self.pos < self.lines.len() {
            let l = &self.lines[self.pos];
            if l.blank {
                self.pos += 1;
                continue;
            }
            if l.comment {
                if l.indent >= indent {
                    entries.push(Entry::Comment(l.text[1..].to_string()));
                    self.pos += 1;
                    continue;
                }
                break;
            }
            if l.indent < indent || is_seq_line(&l.text) && l.indent == indent {
                break;
            }
            if l.indent > indent {
                return Err(self.err(l.no, l.indent + 1, "unexpected indentation"));
            }
            let (no, text) = (l.no, l.text.clone());
            if is_complex_key(&text) {
                let (key, value, comments) = self.complex_pair(&text, no, indent)?;
                entries.extend(comments.into_iter().map(Entry::Comment));
                entries.push(Entry::Pair(key, value));
                continue;
            }
            let Some((key, rest_at)) = split_key(&text) else {
                return Err(self.err(no, indent + 1, "expected a 'key: value' line"));
            };
            let key = key.map_err(|r| self.err(no, indent + 1, r))?;
            let rest = text[rest_at..].trim_start();
            let rest_col = indent + text.len() - rest.len() + 1;
            self.pos += 1;
            let (value, comment) = if rest.is_empty() || rest.starts_with('#') {
                let comment = rest.strip_prefix('#').map(str::to_string);
                (self.node(indent as isize, true)?, comment)
            } else {
                self.inline_value(rest, no, rest_col, indent)?
            };
            if let Some(c) = comment {
                entries.push(Entry::Comment(c));
            }
            entries.push(Entry::Pair(key, value));
        }
        Ok(Value::Map(entries))
    }

    /// `? key` then `: value` on the next line (go-yaml writes keys over 128 bytes so).
    fn complex_pair(
        &mut self,
        text: &str,
        no: usize,
        indent: usize,
    ) -> Result<(String, Value, Vec<String>), SopsError> {
        let mut comments = Vec::new();
        let rest = text[1..].trim_start();
        self.pos += 1;
        let key = if rest.is_empty() {
            self.node(indent as isize, false)?
        } else {
            let (k, c) = self.inline_value(rest, no, indent + 3, indent)?;
            comments.extend(c);
            k
        };
        let key = match key {
            Value::Str(s) => s,
            Value::Map(_) | Value::Seq(_) => {
                return Err(self.err(no, indent + 1, "collection keys are not supported"));
            }
            other => scalar_text(&other),
        };
        let Some(j) = self.next_content() else {
            return Ok((key, Value::Null, comments));
        };
        let (vno, vindent, vtext) = {
            let l = &self.lines[j];
            (l.no, l.indent, l.text.clone())
        };
        if vindent != indent || !(vtext == ":" || vtext.starts_with(": ")) {
            return Ok((key, Value::Null, comments));
        }
        self.pos = j + 1;
        let rest = vtext[1..].trim_start();
        let value = if rest.is_empty() || rest.starts_with('#') {
            comments.extend(rest.strip_prefix('#').map(str::to_string));
            self.node(indent as isize, true)?
        } else {
            let (v, c) = self.inline_value(rest, vno, indent + 3, indent)?;
            comments.extend(c);
            v
        };
        Ok((key, value, comments))
    }

    fn seq(&mut self, indent: usize) -> Result<Value, SopsError> {
        self.enter(indent)?;
        let v = self.seq_items(indent);
        self.depth -= 1;
        v
    }

    fn seq_items(&mut self, indent: usize) -> Result<Value, SopsError> {
        let mut items = Vec::new();
        while self.pos < self.lines.len() {
            let l = &self.lines[self.pos];
            if l.blank {
                self.pos += 1;
                continue;
            }
            if l.comment {
                if l.indent >= indent {
                    items.push(Value::Comment(l.text[1..].to_string()));
                    self.pos += 1;
                    continue;
                }
                break;
            }
            if l.indent != indent || !is_seq_line(&l.text) {
                if l.indent > indent {
                    return Err(self.err(
                        l.no,
                        l.indent + 1,
                        "unexpected indentation in a sequence",
                    ));
                }
                break;
            }
            let rest = &l.text[1..];
            let trimmed = rest.trim_start_matches([' ', '\t']);
            if trimmed.is_empty() || trimmed.starts_with('#') {
                if let Some(c) = trimmed.strip_prefix('#') {
                    items.push(Value::Comment(c.to_string()));
                }
                self.pos += 1;
                items.push(self.node(indent as isize, false)?);
            } else {
                // Re-read the rest of the line as a node indented past the dash.
                let shift = 1 + rest.len() - trimmed.len();
                let trimmed = trimmed.to_string();
                let l = &mut self.lines[self.pos];
                l.indent += shift;
                l.text = trimmed;
                if is_seq_line(&l.text) || is_map_start(&l.text) {
                    items.push(self.node(indent as isize, false)?);
                } else {
                    let (no, text, col) = (l.no, l.text.clone(), l.indent + 1);
                    self.pos += 1;
                    let (v, comment) = self.inline_value(&text, no, col, indent)?;
                    if let Some(c) = comment {
                        items.push(Value::Comment(c));
                    }
                    items.push(v);
                }
            }
        }
        Ok(Value::Seq(items))
    }

    /// A value written after `key:` or `- `: scalar, flow collection or block scalar header.
    fn inline_value(
        &mut self,
        text: &str,
        no: usize,
        col: usize,
        owner_indent: usize,
    ) -> Result<(Value, Option<String>), SopsError> {
        let first = text.as_bytes()[0];
        match first {
            b'|' | b'>' => {
                let (header, comment) = match text.find(" #") {
                    Some(i) => (&text[..i], Some(text[i + 2..].to_string())),
                    None => (text, None),
                };
                let v = self.block_scalar(header.trim_end(), no, col, owner_indent)?;
                Ok((Value::Str(v), comment))
            }
            b'&' | b'*' | b'!' => {
                Err(self.err(no, col, "YAML anchors, aliases and tags are not supported"))
            }
            b'[' | b'{' => {
                let mut f = Flow {
                    s: text.as_bytes(),
                    pos: 0,
                    depth: self.depth,
                    max_depth: self.max_depth,
                };
                let v = f.value().map_err(|r| match r {
                    FlowError::TooDeep => {
                        SopsError::too_deep(self.file, no, col + f.pos, self.max_depth)
                    }
                    FlowError::Syntax(r) => self.err(no, col + f.pos, r),
                })?;
                let rest = text[f.pos..].trim();
                let comment = trailing_comment(rest).map_err(|r| self.err(no, col + f.pos, r))?;
                Ok((v, comment))
            }
            b'"' | b'\'' => {
                let (s, used) = quoted(text).map_err(|r| self.err(no, col, r))?;
                let rest = text[used..].trim();
                let comment = trailing_comment(rest).map_err(|r| self.err(no, col + used, r))?;
                Ok((Value::Str(s), comment))
            }
            _ => {
                let (plain, comment) = match text.find(" #").or_else(|| text.find("\t#")) {
                    Some(i) => (&text[..i], Some(text[i + 2..].to_string())),
                    None => (text, None),
                };
                Ok((resolve(plain.trim_end()), comment))
            }
        }
    }

    fn block_scalar(
        &mut self,
        header: &str,
        no: usize,
        col: usize,
        owner_indent: usize,
    ) -> Result<String, SopsError> {
        let literal = header.starts_with('|');
        let mut chomp = ' ';
        let mut explicit = None;
        for c in header[1..].chars() {
            match c {
                '-' | '+' => chomp = c,
                '1'..='9' => explicit = Some(c as usize - '0' as usize),
                _ => return Err(self.err(no, col, "invalid block scalar header")),
            }
        }
        // Content lines: blank ones, or ones indented past the owner.
        let start = self.pos;
        let mut end = start;
        while end < self.lines.len() {
            let l = &self.lines[end];
            if l.raw.trim().is_empty() || l.indent > owner_indent {
                end += 1;
            } else {
                break;
            }
        }
        let content_indent = match explicit {
            Some(n) => owner_indent + n,
            None => self.lines[start..end]
                .iter()
                .find(|l| !l.raw.trim().is_empty())
                .map_or(owner_indent + 1, |l| l.indent),
        };
        // Trailing lines that are less indented than the content (and not blank) end it.
        let mut body: Vec<&str> = Vec::new();
        for l in &self.lines[start..end] {
            if l.indent >= content_indent {
                body.push(&l.raw[content_indent..]);
            } else if l.raw.trim().is_empty() {
                body.push("");
            } else {
                break;
            }
        }
        self.pos = start + body.len();
        // Drop trailing blank lines into a count for chomping.
        let mut trailing = 0;
        while body.last() == Some(&"") {
            body.pop();
            trailing += 1;
        }
        let mut out = if literal {
            body.join("\n")
        } else {
            fold(&body)
        };
        if body.is_empty() {
            return Ok(match chomp {
                '+' => "\n".repeat(trailing),
                _ => String::new(),
            });
        }
        match chomp {
            '-' => {}
            '+' => out.push_str(&"\n".repeat(trailing + 1)),
            _ => out.push('\n'),
        }
        Ok(out)
    }
}

/// Folded block scalar lines: consecutive non-empty, non-indented lines join with a space; each
/// empty line contributes one newline.
fn fold(body: &[&str]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < body.len() {
        let line = body[i];
        if i > 0 {
            let prev = body[i - 1];
            let more = line.starts_with(' ') || prev.starts_with(' ');
            if line.is_empty() {
                out.push('\n');
            } else if prev.is_empty() {
                // newline(s) already pushed by the blank lines
            } else if more {
                out.push('\n');
            } else {
                out.push(' ');
            }
        }
        out.push_str(line);
        i += 1;
    }
    out
}

fn trailing_comment(rest: &str) -> Result<Option<String>, String> {
    if rest.is_empty() {
        Ok(None)
    } else if let Some(c) = rest.strip_prefix('#') {
        Ok(Some(c.to_string()))
    } else {
        Err("unexpected text after a value".to_string())
    }
}

/// Finds `key:` at the start of a line. Returns the key and where the rest begins.
fn split_key(text: &str) -> Option<(Result<String, String>, usize)> {
    if text.starts_with('#') || is_seq_line(text) {
        return None;
    }
    if text.starts_with('"') || text.starts_with('\'') {
        let (k, used) = quoted(text).ok()?;
        let after = &text[used..];
        let trimmed = after.trim_start();
        let rest = trimmed.strip_prefix(':')?;
        if !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
            return None;
        }
        return Some((Ok(k), text.len() - rest.len()));
    }
    if text.starts_with(['[', '{', '|', '>', '&', '*', '!', '?', '%', '@', '`']) {
        return None;
    }
    let b = text.as_bytes();
    for i in 0..b.len() {
        if b[i] == b'#' && i > 0 && (b[i - 1] == b' ' || b[i - 1] == b'\t') {
            return None;
        }
        if b[i] == b':' && (i + 1 == b.len() || b[i + 1] == b' ' || b[i + 1] == b'\t') {
            return Some((Ok(text[..i].trim_end().to_string()), i + 1));
        }
    }
    None
}

/// Reads a single- or double-quoted scalar at the start of `text`.
fn quoted(text: &str) -> Result<(String, usize), String> {
    let mut out = String::new();
    let quote = text.as_bytes()[0];
    let mut chars = text.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        if quote == b'\'' {
            if c == '\'' {
                if let Some((_, '\'')) = chars.peek() {
                    chars.next();
                    out.push('\'');
                    continue;
                }
                return Ok((out, i + 1));
            }
            out.push(c);
        } else {
            match c {
                '"' => return Ok((out, i + 1)),
                '\\' => {
                    let Some((_, e)) = chars.next() else { break };
                    out.push(match e {
                        '0' => '\0',
                        'a' => '\u{7}',
                        'b' => '\u{8}',
                        't' | '\t' => '\t',
                        'n' => '\n',
                        'v' => '\u{b}',
                        'f' => '\u{c}',
                        'r' => '\r',
                        'e' => '\u{1b}',
                        ' ' => ' ',
                        '"' => '"',
                        '/' => '/',
                        '\\' => '\\',
                        'N' => '\u{85}',
                        '_' => '\u{a0}',
                        'L' => '\u{2028}',
                        'P' => '\u{2029}',
                        'x' => hex_escape(2, &mut chars)?,
                        'u' => hex_escape(4, &mut chars)?,
                        'U' => hex_escape(8, &mut chars)?,
                        _ => return Err("unknown escape in a double-quoted string".to_string()),
                    });
                }
                c => out.push(c),
            }
        }
    }
    Err("unterminated quoted string (multi-line quoted strings are not supported)".to_string())
}

fn hex_escape(n: usize, chars: &mut impl Iterator<Item = (usize, char)>) -> Result<char, String> {
    let mut v = 0u32;
    for _ in 0..n {
        let (_, h) = chars.next().ok_or("short escape")?;
        v = v * 16 + h.to_digit(16).ok_or("bad hex escape")?;
    }
    char::from_u32(v).ok_or_else(|| "bad escape".to_string())
}

/// A flow collection on one line: `[a, b]`, `{k: v}`.
struct Flow<'a> {
    s: &'a [u8],
    pos: usize,
    /// Levels open, the block levels around the collection included.
    depth: usize,
    max_depth: usize,
}

/// Why a flow collection could not be read.
enum FlowError {
    /// Nested deeper than the limit.
    TooDeep,
    Syntax(String),
}

impl From<String> for FlowError {
    fn from(s: String) -> Self {
        FlowError::Syntax(s)
    }
}

impl From<&str> for FlowError {
    fn from(s: &str) -> Self {
        FlowError::Syntax(s.to_owned())
    }
}

impl Flow<'_> {
    fn ws(&mut self) {
        while self.pos < self.s.len() && (self.s[self.pos] == b' ' || self.s[self.pos] == b'\t') {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Result<Value, FlowError> {
        self.ws();
        if matches!(self.s.get(self.pos), Some(b'[' | b'{')) {
            self.depth += 1;
            if self.depth > self.max_depth {
                return Err(FlowError::TooDeep);
            }
            let v = self.read_value();
            self.depth -= 1;
            return v;
        }
        self.read_value()
    }

    /// Reads a value; `value` has counted its level when it is a collection.
    fn read_value(&mut self) -> Result<Value, FlowError> {
        match self.s.get(self.pos) {
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.ws();
                    if self.s.get(self.pos) == Some(&b']') {
                        self.pos += 1;
                        return Ok(Value::Seq(items));
                    }
                    items.push(self.value()?);
                    self.ws();
                    match self.s.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {}
                        _ => return Err("expected ',' or ']' in a flow sequence".into()),
                    }
                }
            }
            Some(b'{') => {
                self.pos += 1;
                let mut entries = Vec::new();
                loop {
                    self.ws();
                    if self.s.get(self.pos) == Some(&b'}') {
                        self.pos += 1;
                        return Ok(Value::Map(entries));
                    }
                    let key = match self.value()? {
                        Value::Str(s) => s,
                        other => scalar_text(&other),
                    };
                    self.ws();
                    if self.s.get(self.pos) != Some(&b':') {
                        return Err("expected ':' in a flow mapping".into());
                    }
                    self.pos += 1;
                    let v = self.value()?;
                    entries.push(Entry::Pair(key, v));
                    self.ws();
                    match self.s.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {}
                        _ => return Err("expected ',' or '}' in a flow mapping".into()),
                    }
                }
            }
            Some(b'"') | Some(b'\'') => {
                let text = std::str::from_utf8(&self.s[self.pos..]).map_err(|_| "invalid UTF-8")?;
                let (s, used) = quoted(text)?;
                self.pos += used;
                Ok(Value::Str(s))
            }
            Some(_) => {
                let start = self.pos;
                while self.pos < self.s.len() {
                    let c = self.s[self.pos];
                    if c == b',' || c == b']' || c == b'}' {
                        break;
                    }
                    if c == b':'
                        && matches!(
                            self.s.get(self.pos + 1),
                            None | Some(b' ') | Some(b',') | Some(b'}')
                        )
                    {
                        break;
                    }
                    self.pos += 1;
                }
                let text =
                    std::str::from_utf8(&self.s[start..self.pos]).map_err(|_| "invalid UTF-8")?;
                Ok(resolve(text.trim()))
            }
            None => Err("unterminated flow collection".into()),
        }
    }
}

/// Splits a stream into documents and parses each top-level mapping.
pub(crate) fn parse(
    data: &[u8],
    file: &str,
    max_depth: usize,
) -> Result<Vec<Vec<Entry>>, SopsError> {
    let text = std::str::from_utf8(data)
        .map_err(|_| SopsError::malformed(file, 0, 0, "the file is not valid UTF-8"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut docs: Vec<Vec<Line>> = vec![Vec::new()];
    let mut explicit_start = false;
    for (i, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if raw == "---" || raw.starts_with("--- ") {
            if !docs
                .last()
                .is_some_and(|d| d.iter().all(|l| l.blank || l.comment))
                || explicit_start
            {
                docs.push(Vec::new());
            }
            explicit_start = true;
            if raw.len() > 4 && !raw[4..].trim().is_empty() && !raw[4..].trim().starts_with('#') {
                return Err(SopsError::malformed(
                    file,
                    i + 1,
                    5,
                    "content on a '---' line is not supported",
                ));
            }
            continue;
        }
        if raw == "..."
            || (raw.starts_with('%')
                && docs
                    .last()
                    .is_some_and(|d| d.iter().all(|l| l.blank || l.comment)))
        {
            continue;
        }
        let indent = raw.len() - raw.trim_start_matches(' ').len();
        let body = &raw[indent..];
        let blank = body.trim().is_empty();
        docs.last_mut().expect("docs is never empty").push(Line {
            no: i + 1,
            indent,
            text: body.trim_end().to_string(),
            raw: raw.to_string(),
            blank,
            comment: !blank && body.starts_with('#'),
        });
    }
    let mut out = Vec::new();
    for lines in docs {
        // A document with nothing in it after another one (a trailing '---') adds nothing.
        if lines.iter().all(|l| l.blank) && !out.is_empty() {
            continue;
        }
        let mut p = Parser {
            lines,
            pos: 0,
            file,
            depth: 0,
            max_depth,
        };
        let v = match p.next_content() {
            None => Value::Map(
                p.lines
                    .iter()
                    .filter(|l| l.comment)
                    .map(|l| Entry::Comment(l.text[1..].to_string()))
                    .collect(),
            ),
            Some(j) => {
                let l = &p.lines[j];
                if is_seq_line(&l.text) {
                    return Err(p.err(
                        l.no,
                        1,
                        "YAML documents that are sequences are not supported",
                    ));
                }
                if !is_map_start(&l.text) {
                    return Err(p.err(l.no, 1, "YAML documents that are values are not supported"));
                }
                let indent = l.indent;
                let v = p.map(indent)?;
                if let Some(k) = p.next_content() {
                    let l = &p.lines[k];
                    return Err(p.err(l.no, l.indent + 1, "unexpected content"));
                }
                v
            }
        };
        match v {
            Value::Map(entries) => out.push(entries),
            _ => unreachable!("top level is parsed as a map"),
        }
    }
    Ok(out)
}

/// Types a plain scalar the way go-yaml v3 does.
pub(crate) fn resolve(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        _ => {}
    }
    let first = s.as_bytes()[0];
    if first == b'.' {
        if let Some(f) = go_parse_float(s) {
            return Value::Float(f);
        }
        return Value::Str(s.to_string());
    }
    if first.is_ascii_digit() || first == b'+' || first == b'-' {
        if let Some(t) = parse_timestamp(s) {
            return Value::Time(t);
        }
        let plain: String = s.chars().filter(|c| *c != '_').collect();
        if let Some(i) = go_parse_int(&plain) {
            return Value::Int(i);
        }
        if is_yaml_float(&plain)
            && let Some(f) = go_parse_float(&plain)
        {
            return Value::Float(f);
        }
        for (prefix, radix, neg) in [
            ("0b", 2, false),
            ("-0b", 2, true),
            ("0o", 8, false),
            ("-0o", 8, true),
        ] {
            if let Some(digits) = plain.strip_prefix(prefix)
                && let Ok(v) = i64::from_str_radix(digits, radix)
            {
                return Value::Int(if neg { -v } else { v });
            }
        }
    }
    Value::Str(s.to_string())
}

/// Go's `strconv.ParseInt(s, 0, 64)`.
fn go_parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) =
        if let Some(d) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (16, d)
        } else if let Some(d) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
            (8, d)
        } else if let Some(d) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
            (2, d)
        } else if body.len() > 1 && body.starts_with('0') {
            (8, &body[1..])
        } else {
            (10, body)
        };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let mag = u64::from_str_radix(digits, radix).ok()?;
    if neg {
        if mag <= i64::MAX as u64 + 1 {
            Some((mag as i128).wrapping_neg() as i64)
        } else {
            None
        }
    } else {
        i64::try_from(mag).ok()
    }
}

fn go_parse_float(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    if lower.contains("inf") || lower.contains("nan") || lower.contains('x') || lower.contains('_')
    {
        return None;
    }
    s.parse::<f64>().ok()
}

fn is_old_bool(s: &str) -> bool {
    matches!(
        s,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "on"
            | "On"
            | "ON"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "off"
            | "Off"
            | "OFF"
    )
}

/// Parses the timestamp forms go-yaml accepts and prints them as Go's RFC 3339 (nano).
fn parse_timestamp(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let mut i = 5;
    let num = |i: &mut usize, max: usize| -> Option<u32> {
        let st = *i;
        while *i < b.len() && b[*i].is_ascii_digit() && *i - st < max {
            *i += 1;
        }
        if *i == st {
            None
        } else {
            s[st..*i].parse().ok()
        }
    };
    let year: i32 = s[..4].parse().ok()?;
    let month = num(&mut i, 2)?;
    if b.get(i) != Some(&b'-') {
        return None;
    }
    i += 1;
    let day = num(&mut i, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let date = format!("{year:04}-{month:02}-{day:02}");
    if i == b.len() {
        return Some(format!("{date}T00:00:00Z"));
    }
    let sep = b[i];
    if !(sep == b'T' || sep == b't' || sep == b' ') {
        return None;
    }
    i += 1;
    let hour = num(&mut i, 2)?;
    if b.get(i) != Some(&b':') {
        return None;
    }
    i += 1;
    let min = num(&mut i, 2)?;
    if b.get(i) != Some(&b':') {
        return None;
    }
    i += 1;
    let sec = num(&mut i, 2)?;
    if hour > 23 || min > 59 || sec > 59 {
        return None;
    }
    let mut frac = String::new();
    if b.get(i) == Some(&b'.') {
        i += 1;
        let st = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == st || i - st > 9 {
            return None;
        }
        frac = s[st..i].trim_end_matches('0').to_string();
    }
    let zone = if sep == b' ' {
        if i != b.len() {
            return None;
        }
        "Z".to_string()
    } else {
        let z = &s[i..];
        if z == "Z" {
            "Z".to_string()
        } else {
            let zb = z.as_bytes();
            if zb.len() != 6 || !(zb[0] == b'+' || zb[0] == b'-') || zb[3] != b':' {
                return None;
            }
            let hh: u32 = z[1..3].parse().ok()?;
            let mm: u32 = z[4..6].parse().ok()?;
            if hh == 0 && mm == 0 {
                "Z".to_string()
            } else {
                z.to_string()
            }
        }
    };
    let frac = if frac.is_empty() {
        String::new()
    } else {
        format!(".{frac}")
    };
    Some(format!("{date}T{hour:02}:{min:02}:{sec:02}{frac}{zone}"))
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 {
                29
            } else {
                28
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

const BEST_INDENT: usize = 4;

/// How go-yaml v3 would print a scalar on one line (or as a block scalar).
enum Styled {
    Inline(String),
    Literal { hints: String, body: String },
}

/// The text of a non-string scalar.
pub(crate) fn scalar_text(v: &Value) -> String {
    match v {
        Value::Str(s) | Value::Time(s) | Value::Comment(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => gofmt::format_yaml(*f),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_string(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Value::Map(_) | Value::Seq(_) => String::new(),
    }
}

struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

fn is_break_at(b: &[u8], i: usize) -> bool {
    match b[i] {
        b'\r' | b'\n' => true,
        0xC2 => b.get(i + 1) == Some(&0x85),
        0xE2 => b.get(i + 1) == Some(&0x80) && matches!(b.get(i + 2), Some(0xA8) | Some(0xA9)),
        _ => false,
    }
}

fn is_blank_at(b: &[u8], i: usize) -> bool {
    matches!(b.get(i), Some(b' ') | Some(b'\t'))
}

/// libyaml's printable test, byte-wise as it is written there.
fn is_printable_at(b: &[u8], i: usize) -> bool {
    let c = b[i];
    let n1 = b.get(i + 1).copied().unwrap_or(0);
    let n2 = b.get(i + 2).copied().unwrap_or(0);
    c == 0x0A
        || (0x20..=0x7E).contains(&c)
        || (c == 0xC2 && n1 >= 0xA0)
        || (c > 0xC2 && c < 0xED)
        || (c == 0xED && n1 < 0xA0)
        || c == 0xEE
        || (c == 0xEF && !(n1 == 0xBB && n2 == 0xBF) && !(n1 == 0xBF && (n2 == 0xBE || n2 == 0xBF)))
}

fn width(c: u8) -> usize {
    if c & 0x80 == 0 {
        1
    } else if c & 0xE0 == 0xC0 {
        2
    } else if c & 0xF0 == 0xE0 {
        3
    } else if c & 0xF8 == 0xF0 {
        4
    } else {
        1
    }
}

fn analyze(s: &str) -> Analysis {
    let b = s.as_bytes();
    if b.is_empty() {
        return Analysis {
            multiline: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let mut block_indicators = b.len() >= 3 && (b.starts_with(b"---") || b.starts_with(b"..."));
    let (mut line_breaks, mut special, mut tabs) = (false, false, false);
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut prev_space, mut prev_break) = (false, false);
    let mut preceded_by_ws = true;
    let mut i = 0;
    while i < b.len() {
        let w = width(b[i]);
        let followed_by_ws = i + w >= b.len() || is_blank_at(b, i + w);
        if i == 0 {
            match b[i] {
                b'#' | b',' | b'[' | b']' | b'{' | b'}' | b'&' | b'*' | b'!' | b'|' | b'>'
                | b'\'' | b'"' | b'%' | b'@' | b'`' => block_indicators = true,
                b'?' | b':' if followed_by_ws => block_indicators = true,
                b'-' if followed_by_ws => block_indicators = true,
                _ => {}
            }
        } else {
            match b[i] {
                b':' if followed_by_ws => block_indicators = true,
                b'#' if preceded_by_ws => block_indicators = true,
                _ => {}
            }
        }
        if b[i] == b'\t' {
            tabs = true;
        } else if !is_printable_at(b, i) {
            special = true;
        }
        if b[i] == b' ' {
            if i == 0 {
                leading_space = true;
            }
            if i + w == b.len() {
                trailing_space = true;
            }
            if prev_break {
                break_space = true;
            }
            prev_space = true;
            prev_break = false;
        } else if is_break_at(b, i) {
            line_breaks = true;
            if i == 0 {
                leading_break = true;
            }
            if i + w == b.len() {
                trailing_break = true;
            }
            if prev_space {
                space_break = true;
            }
            prev_space = false;
            prev_break = true;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_by_ws = is_blank_at(b, i) || is_break_at(b, i) || b[i] == 0;
        i += w;
    }
    let mut a = Analysis {
        multiline: line_breaks,
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || tabs || special {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || special {
        a.block_allowed = false;
    }
    if line_breaks {
        a.block_plain_allowed = false;
    }
    if block_indicators {
        a.block_plain_allowed = false;
    }
    a
}

fn double_quoted(s: &str) -> String {
    let starts_with_bom = s.starts_with('\u{feff}');
    let mut out = String::from("\"");
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let w = width(b[i]);
        let ch = s[i..].chars().next().expect("i is on a char boundary");
        // go-yaml's BOM test looks at the start of the value, not at the current character: a
        // value that starts with a BOM has every character escaped.
        if !is_printable_at(b, i) || starts_with_bom || is_break_at(b, i) || ch == '"' || ch == '\\'
        {
            out.push('\\');
            match ch {
                '\0' => out.push('0'),
                '\u{7}' => out.push('a'),
                '\u{8}' => out.push('b'),
                '\t' => out.push('t'),
                '\n' => out.push('n'),
                '\u{b}' => out.push('v'),
                '\u{c}' => out.push('f'),
                '\r' => out.push('r'),
                '\u{1b}' => out.push('e'),
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                '\u{85}' => out.push('N'),
                '\u{a0}' => out.push('_'),
                '\u{2028}' => out.push('L'),
                '\u{2029}' => out.push('P'),
                c if (c as u32) <= 0xFF => out.push_str(&format!("x{:02X}", c as u32)),
                c if (c as u32) <= 0xFFFF => out.push_str(&format!("u{:04X}", c as u32)),
                c => out.push_str(&format!("U{:08X}", c as u32)),
            }
        } else {
            out.push(ch);
        }
        i += w;
    }
    out.push('"');
    out
}

fn style_string(s: &str, is_key: bool) -> Styled {
    #[derive(PartialEq)]
    enum St {
        Plain,
        Single,
        Double,
        Literal,
    }
    let can_plain =
        matches!(resolve_for_emit(s), Value::Str(_)) && !is_base60_float(s) && !is_old_bool(s);
    let mut style = if s.contains('\n') {
        St::Literal
    } else if can_plain {
        St::Plain
    } else {
        St::Double
    };
    let a = analyze(s);
    if is_key && a.multiline {
        style = St::Double;
    }
    if style == St::Plain && (!a.block_plain_allowed || (s.is_empty() && is_key)) {
        style = St::Single;
    }
    if style == St::Single && !a.single_quoted_allowed {
        style = St::Double;
    }
    if style == St::Literal && (!a.block_allowed || is_key) {
        style = St::Double;
    }
    match style {
        St::Plain => Styled::Inline(s.to_string()),
        St::Single => Styled::Inline(format!("'{}'", s.replace('\'', "''"))),
        St::Double => Styled::Inline(double_quoted(s)),
        St::Literal => {
            let b = s.as_bytes();
            let mut hints = String::from("|");
            if b[0] == b' ' || is_break_at(b, 0) {
                hints.push_str(&BEST_INDENT.to_string());
            }
            let ends_break = s.ends_with('\n');
            if !ends_break {
                hints.push('-');
            } else if s.len() == 1 || s[..s.len() - 1].ends_with('\n') {
                hints.push('+');
            }
            Styled::Literal {
                hints,
                body: s.to_string(),
            }
        }
    }
}

/// `resolve` as used to decide whether a string may go unquoted: timestamps count as typed.
fn resolve_for_emit(s: &str) -> Value {
    if s.is_empty() {
        return Value::Null;
    }
    resolve(s)
}

fn style_value(v: &Value, is_key: bool) -> Styled {
    match v {
        Value::Str(s) => style_string(s, is_key),
        Value::Bytes(b) => style_string(&String::from_utf8_lossy(b), is_key),
        other => Styled::Inline(scalar_text(other)),
    }
}

struct Writer {
    out: String,
}

impl Writer {
    fn indent(&mut self, n: usize) {
        for _ in 0..n {
            self.out.push(' ');
        }
    }

    fn comment(&mut self, indent: usize, c: &str) {
        self.indent(indent);
        self.out.push('#');
        self.out.push_str(c);
        self.out.push('\n');
    }

    /// Writes a scalar after "key:" or "-": a space then the text, ending the line.
    fn scalar_after(&mut self, v: &Value, block_indent: usize) {
        match style_value(v, false) {
            Styled::Inline(s) => {
                self.out.push(' ');
                if s.starts_with('\'') && s.contains(['\u{2028}', '\u{2029}']) {
                    // A line separator inside single quotes is written as is, and the text
                    // after it is indented like a continuation line.
                    let mut chars = s.chars().peekable();
                    while let Some(c) = chars.next() {
                        self.out.push(c);
                        if matches!(c, '\u{2028}' | '\u{2029}')
                            && !matches!(chars.peek(), Some('\u{2028}' | '\u{2029}'))
                        {
                            self.indent(block_indent);
                        }
                    }
                } else {
                    self.out.push_str(&s);
                }
                self.out.push('\n');
            }
            Styled::Literal { hints, body } => {
                self.out.push(' ');
                self.out.push_str(&hints);
                self.out.push('\n');
                let mut at_break = true;
                for ch in body.chars() {
                    if ch == '\n' {
                        self.out.push('\n');
                        at_break = true;
                    } else {
                        if at_break {
                            self.indent(block_indent);
                        }
                        self.out.push(ch);
                        at_break = false;
                    }
                }
                if !self.out.ends_with('\n') {
                    self.out.push('\n');
                }
            }
        }
    }

    fn key(&mut self, k: &str) {
        match style_string(k, true) {
            Styled::Inline(s) => self.out.push_str(&s),
            Styled::Literal { .. } => unreachable!("keys are never block scalars"),
        }
        self.out.push(':');
    }

    /// A value after `key:`, where the key is at column `indent`.
    fn map_value(&mut self, v: &Value, indent: usize) {
        let child = BEST_INDENT * ((indent + BEST_INDENT) / BEST_INDENT);
        match v {
            Value::Map(entries) if has_items_map(entries) => {
                self.out.push('\n');
                self.map(entries, child, false);
            }
            Value::Seq(items) if has_items_seq(items) => {
                self.out.push('\n');
                self.seq(items, child, false);
            }
            Value::Map(_) => self.out.push_str(" {}\n"),
            Value::Seq(_) => self.out.push_str(" []\n"),
            scalar => self.scalar_after(scalar, child),
        }
    }

    /// A mapping whose keys sit at column `indent`; `inline` when the first key follows "- ".
    fn map(&mut self, entries: &[Entry], indent: usize, mut inline: bool) {
        for e in entries {
            match e {
                Entry::Comment(c) => {
                    if inline {
                        // A comment can't share the "- " line; go-yaml puts it there and
                        // continues on the next line.
                        self.out.push('#');
                        self.out.push_str(c);
                        self.out.push('\n');
                        self.indent(indent);
                        inline = true;
                        continue;
                    }
                    self.comment(indent, c);
                }
                Entry::Pair(k, v) => {
                    if !inline {
                        self.indent(indent);
                    }
                    inline = false;
                    if is_simple_key(k) {
                        self.key(k);
                        self.map_value(v, indent);
                    } else {
                        self.out.push('?');
                        let child = BEST_INDENT * ((indent + BEST_INDENT) / BEST_INDENT);
                        self.scalar_after(&Value::Str(k.clone()), child);
                        self.indent(indent);
                        self.out.push(':');
                        self.map_value(v, indent);
                    }
                }
            }
        }
    }

    /// A sequence whose dashes sit at column `indent`; `inline` when the first dash follows "- ".
    fn seq(&mut self, items: &[Value], indent: usize, mut inline: bool) {
        for item in items {
            if let Value::Comment(c) = item {
                if inline {
                    self.out.push('#');
                    self.out.push_str(c);
                    self.out.push('\n');
                    self.indent(indent);
                    continue;
                }
                self.comment(indent, c);
                continue;
            }
            if !inline {
                self.indent(indent);
            }
            inline = false;
            self.out.push('-');
            match item {
                Value::Map(entries) if has_items_map(entries) => {
                    self.out.push(' ');
                    self.map(entries, indent + 2, true);
                }
                Value::Seq(items) if has_items_seq(items) => {
                    self.out.push(' ');
                    self.seq(items, indent + 2, true);
                }
                Value::Map(_) => self.out.push_str(" {}\n"),
                Value::Seq(_) => self.out.push_str(" []\n"),
                scalar => self.scalar_after(scalar, indent + 2),
            }
        }
    }
}

/// go-yaml writes a key inline unless it spans lines or is longer than 128 bytes.
fn is_simple_key(k: &str) -> bool {
    !analyze(k).multiline && k.len() <= 128
}

fn has_items_map(entries: &[Entry]) -> bool {
    entries.iter().any(|e| matches!(e, Entry::Pair(..)))
}

fn has_items_seq(items: &[Value]) -> bool {
    items.iter().any(|v| !matches!(v, Value::Comment(_)))
}

/// Prints documents the way `sops -d` prints YAML.
pub(crate) fn emit(docs: &[Vec<Entry>]) -> String {
    let mut w = Writer { out: String::new() };
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            w.out.push_str("---\n");
        }
        if has_items_map(doc) {
            w.map(doc, 0, false);
        } else {
            for e in doc {
                if let Entry::Comment(c) = e {
                    w.comment(0, c);
                }
            }
            w.out.push_str("{}\n");
        }
    }
    w.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_like_go_yaml() {
        assert_eq!(resolve("42"), Value::Int(42));
        assert_eq!(resolve("0x1F"), Value::Int(31));
        assert_eq!(resolve("010"), Value::Int(8));
        assert_eq!(resolve("08"), Value::Float(8.0));
        assert_eq!(resolve("1_000"), Value::Int(1000));
        assert_eq!(resolve("1e3"), Value::Float(1000.0));
        assert_eq!(resolve(".5"), Value::Float(0.5));
        assert_eq!(resolve("yes"), Value::Str("yes".into()));
        assert_eq!(
            resolve("2001-12-14"),
            Value::Time("2001-12-14T00:00:00Z".into())
        );
        assert_eq!(
            resolve("2001-12-14t21:59:43.10-05:00"),
            Value::Time("2001-12-14T21:59:43.1-05:00".into())
        );
        assert_eq!(resolve("12:30"), Value::Str("12:30".into()));
    }

    #[test]
    fn string_styles_follow_go_yaml() {
        let inline = |s: &str| match style_string(s, false) {
            Styled::Inline(s) => s,
            Styled::Literal { hints, .. } => hints,
        };
        assert_eq!(inline("hello"), "hello");
        assert_eq!(inline("yes"), "\"yes\"");
        assert_eq!(inline("a: b"), "'a: b'");
        assert_eq!(inline("x #y"), "'x #y'");
        assert_eq!(inline("a\tb"), "\"a\\tb\"");
        assert_eq!(inline(" space"), "' space'");
        assert_eq!(inline(""), "\"\"");
        assert_eq!(inline("12:30"), "\"12:30\"");
        assert_eq!(inline("a\nb"), "|-");
        assert_eq!(inline("a\nb\n"), "|");
        assert_eq!(inline("a\n\n"), "|+");
        assert_eq!(inline("a \nb"), "\"a \\nb\"");
    }
}
