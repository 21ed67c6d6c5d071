//! JSON files: one or more concatenated JSON values (as kubectl's decoder accepts),
//! parsed with serde_json, duplicate keys refused, nesting limited.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::Limits;
use crate::error::{RenderError, RenderErrorKind as K};
use crate::yaml::{Pos, float_value};

const DUPLICATE: &str = "\u{1}duplicate key:";

/// A JSON value that refuses duplicate keys while it is read.
struct Checked(Value);

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CheckedVisitor).map(Checked)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        float_value(v).ok_or_else(|| E::custom("number is not finite"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Checked(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if out.contains_key(&k) {
                return Err(de::Error::custom(format!("{DUPLICATE}{k}")));
            }
            let Checked(v) = map.next_value()?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

/// Tracks line and column while moving forward through the text.
struct Cursor<'a> {
    text: &'a str,
    offset: usize,
    pos: Pos,
}

impl Cursor<'_> {
    fn advance_to(&mut self, offset: usize) {
        for c in self.text[self.offset..offset].chars() {
            if c == '\n' {
                self.pos.line += 1;
                self.pos.col = 1;
            } else {
                self.pos.col += 1;
            }
        }
        self.offset = offset;
    }

    /// The position of the next non-whitespace character.
    fn next_token(&mut self) -> Pos {
        let skip = self.text[self.offset..]
            .find(|c: char| !c.is_ascii_whitespace())
            .unwrap_or(self.text.len() - self.offset);
        self.advance_to(self.offset + skip);
        self.pos
    }
}

/// Parses a JSON file into its non-null documents, each with its start position.
pub(crate) fn load(
    text: &str,
    file: &str,
    limits: &Limits,
    errors: &mut Vec<RenderError>,
) -> Vec<(Pos, Value)> {
    let mut docs = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Checked>();
    let mut cursor = Cursor {
        text,
        offset: 0,
        pos: Pos { line: 1, col: 1 },
    };
    let mut count = 0usize;
    loop {
        cursor.advance_to(stream.byte_offset());
        let start = cursor.next_token();
        let Some(next) = stream.next() else { break };
        match next {
            Ok(Checked(value)) => {
                count += 1;
                if count > limits.max_documents {
                    errors.push(RenderError::at(
                        file,
                        start.line,
                        start.col,
                        K::TooManyDocuments(limits.max_documents),
                    ));
                    break;
                }
                if too_deep(&value, limits.max_depth) {
                    errors.push(RenderError::at(
                        file,
                        start.line,
                        start.col,
                        K::TooDeep(limits.max_depth),
                    ));
                    continue;
                }
                if !value.is_null() {
                    docs.push((start, value));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                let msg = match msg.rfind(" at line ") {
                    Some(i) => msg[..i].to_owned(),
                    None => msg,
                };
                let kind = if msg.contains("recursion limit exceeded") {
                    K::TooDeep(limits.max_depth)
                } else if let Some(key) = msg.strip_prefix(DUPLICATE) {
                    K::DuplicateKey(key.to_owned())
                } else {
                    K::Syntax(msg)
                };
                errors.push(RenderError::at(file, e.line(), e.column().max(1), kind));
                break;
            }
        }
    }
    docs
}

/// Whether `value` nests deeper than `max` collections. Iterative.
fn too_deep(value: &Value, max: usize) -> bool {
    let mut stack = vec![(value, 0usize)];
    while let Some((v, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(a) => Box::new(a.iter()),
            Value::Object(o) => Box::new(o.values()),
            _ => continue,
        };
        if depth + 1 > max {
            return true;
        }
        stack.extend(children.map(|c| (c, depth + 1)));
    }
    false
}
