//! JSON as sops reads and writes it: object key order kept, every number a float64, output
//! indented with one tab per level the way Go's `json.Indent` does, strings escaped like
//! Go's `json.Marshal` (HTML-safe).

use crate::SopsError;
use crate::gofmt;
use crate::tree::{Entry, Value};

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    file: &'a str,
    /// Open objects and arrays; the reader recurses once per level, so this is capped.
    depth: usize,
    max_depth: usize,
}

impl<'a> Parser<'a> {
    fn place(&self) -> (usize, usize) {
        let before = &self.s[..self.pos.min(self.s.len())];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let col = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
        (line, col)
    }

    fn err(&self, reason: &str) -> SopsError {
        let (line, col) = self.place();
        SopsError::malformed(self.file, line, col, format!("invalid JSON: {reason}"))
    }

    /// Opens one more level of nesting, refusing to go past the limit.
    fn enter(&mut self) -> Result<(), SopsError> {
        self.depth += 1;
        if self.depth > self.max_depth {
            let (line, col) = self.place();
            return Err(SopsError::too_deep(self.file, line, col, self.max_depth));
        }
        Ok(())
    }

    fn ws(&mut self) {
        while self.pos < self.s.len() && matches!(self.s[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.pos).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), SopsError> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected '{}'", c as char)))
        }
    }

    fn value(&mut self) -> Result<Value, SopsError> {
        if matches!(self.peek(), Some(b'{' | b'[')) {
            self.enter()?;
            let v = self.read_value();
            self.depth -= 1;
            return v;
        }
        self.read_value()
    }

    /// Reads a value; `value` has counted its level when it is an object or an array.
    fn read_value(&mut self) -> Result<Value, SopsError> {
        match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                let mut entries = Vec::new();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Ok(Value::Map(entries));
                }
                loop {
                    if self.peek() != Some(b'"') {
                        return Err(self.err("expected an object key"));
                    }
                    let k = self.string()?;
                    self.expect(b':')?;
                    let v = self.value()?;
                    entries.push(Entry::Pair(k, v));
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(Value::Map(entries));
                        }
                        _ => return Err(self.err("expected ',' or '}'")),
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(Value::Seq(items));
                }
                loop {
                    items.push(self.value()?);
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Value::Seq(items));
                        }
                        _ => return Err(self.err("expected ',' or ']'")),
                    }
                }
            }
            Some(b'"') => Ok(Value::Str(self.string()?)),
            Some(b't') => self.word("true", Value::Bool(true)),
            Some(b'f') => self.word("false", Value::Bool(false)),
            Some(b'n') => self.word("null", Value::Null),
            Some(c) if c == b'-' || c.is_ascii_digit() => {
                let start = self.pos;
                while self.pos < self.s.len()
                    && matches!(
                        self.s[self.pos],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.pos += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.pos])
                    .map_err(|_| self.err("bad number"))?;
                text.parse::<f64>()
                    .map(Value::Float)
                    .map_err(|_| self.err("bad number"))
            }
            Some(_) => Err(self.err("unexpected character")),
            None => Err(self.err("unexpected end of input")),
        }
    }

    fn word(&mut self, w: &str, v: Value) -> Result<Value, SopsError> {
        if self.s[self.pos..].starts_with(w.as_bytes()) {
            self.pos += w.len();
            Ok(v)
        } else {
            Err(self.err("unexpected word"))
        }
    }

    fn hex4(&mut self) -> Result<u32, SopsError> {
        let h = self
            .s
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.err("short \\u escape"))?;
        let h = std::str::from_utf8(h).map_err(|_| self.err("bad \\u escape"))?;
        let v = u32::from_str_radix(h, 16).map_err(|_| self.err("bad \\u escape"))?;
        self.pos += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, SopsError> {
        self.pos += 1; // opening quote
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.pos) else {
                return Err(self.err("unterminated string"));
            };
            self.pos += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.s.get(self.pos) else {
                        return Err(self.err("unterminated string"));
                    };
                    self.pos += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            if (0xD800..0xDC00).contains(&hi)
                                && self.s[self.pos..].starts_with(b"\\u")
                            {
                                let save = self.pos;
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if (0xDC00..0xE000).contains(&lo) {
                                    char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                                        .unwrap_or('\u{FFFD}')
                                } else {
                                    self.pos = save;
                                    '\u{FFFD}'
                                }
                            } else {
                                char::from_u32(hi).unwrap_or('\u{FFFD}')
                            }
                        }
                        _ => return Err(self.err("bad escape")),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                c => out.push(c),
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

/// Parses a JSON document whose top level is an object.
pub(crate) fn parse(data: &[u8], file: &str, max_depth: usize) -> Result<Value, SopsError> {
    let mut p = Parser {
        s: data,
        pos: 0,
        file,
        depth: 0,
        max_depth,
    };
    if p.peek() != Some(b'{') {
        return Err(p.err("the top level must be an object"));
    }
    let v = p.value()?;
    if p.peek().is_some() {
        return Err(p.err("trailing data after the top-level object"));
    }
    Ok(v)
}

/// Go `json.Marshal` of a string (HTML-safe escaping).
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", ch as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn indent(out: &mut String, level: usize) {
    out.push('\n');
    for _ in 0..level {
        out.push('\t');
    }
}

fn write_map(out: &mut String, entries: &[Entry], level: usize) {
    let pairs: Vec<(&String, &Value)> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Pair(k, v) => Some((k, v)),
            Entry::Comment(_) => None,
        })
        .collect();
    if pairs.is_empty() {
        out.push_str("{}");
        return;
    }
    out.push('{');
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        indent(out, level + 1);
        write_string(out, k);
        out.push_str(": ");
        write_value(out, v, level + 1);
    }
    indent(out, level);
    out.push('}');
}

fn write_value(out: &mut String, v: &Value, level: usize) {
    match v {
        Value::Map(entries) => write_map(out, entries, level),
        Value::Seq(items) => {
            let items: Vec<&Value> = items
                .iter()
                .filter(|v| !matches!(v, Value::Comment(_)))
                .collect();
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, level + 1);
                write_value(out, v, level + 1);
            }
            indent(out, level);
            out.push(']');
        }
        Value::Str(s) | Value::Time(s) | Value::Comment(s) => write_string(out, s),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&gofmt::format_json(*f)),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Null => out.push_str("null"),
        Value::Bytes(b) => write_string(out, &String::from_utf8_lossy(b)),
    }
}

/// Prints a top-level object the way `sops -d` prints JSON.
pub(crate) fn emit_map(entries: &[Entry]) -> String {
    let mut out = String::new();
    write_map(&mut out, entries, 0);
    out.push('\n');
    out
}
