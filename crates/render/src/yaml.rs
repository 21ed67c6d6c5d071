//! YAML text to positioned JSON-shaped trees, within limits.
//!
//! Built on `saphyr-parser`'s event stream so that every node keeps its line and column,
//! nesting depth is checked before it grows, and alias expansion is counted before any
//! copy is made (a "billion laughs" document fails after at most
//! [`Limits::max_alias_expansion`] copied nodes). Scalars resolve with the rules of
//! [`crate::resolve`]; mapping keys become strings the way `sigs.k8s.io/yaml` makes them.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};
use serde_json::Value;

use crate::Limits;
use crate::error::{RenderError, RenderErrorKind as K};
use crate::resolve::{Scalar, go_format_float_key, resolve_plain};

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    fn of(span: &Span) -> Self {
        Self {
            line: span.start.line(),
            col: span.start.col() + 1,
        }
    }
}

/// A node with the position it starts at.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PNode {
    pub pos: Pos,
    pub val: PVal,
    /// Nodes in this subtree, itself included: what an alias to it costs.
    pub size: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PVal {
    Scalar(Value),
    Seq(Vec<PNode>),
    Map(Vec<(String, PNode)>),
    /// An anchored node, or an alias to one: shared, never copied while parsing. Copies
    /// are made only when converting to JSON, and aliases paid for them up front.
    Shared(Rc<PNode>),
}

impl PNode {
    /// The node itself, or the one it shares.
    pub fn resolved(&self) -> &PNode {
        match &self.val {
            PVal::Shared(inner) => inner.resolved(),
            _ => self,
        }
    }

    /// Takes the node out of its sharing: moved when this was the last reference,
    /// copied otherwise (an alias, already paid for).
    pub fn into_owned(self) -> PNode {
        match self.val {
            PVal::Shared(rc) => Rc::try_unwrap(rc)
                .unwrap_or_else(|rc| (*rc).clone())
                .into_owned(),
            _ => self,
        }
    }

    /// A short name of the node's type for messages.
    pub fn type_name(&self) -> &'static str {
        match &self.resolved().val {
            PVal::Seq(_) => "list",
            PVal::Map(_) => "mapping",
            PVal::Scalar(v) => json_type_name(v),
            PVal::Shared(_) => unreachable!("resolved() follows sharing"),
        }
    }

    /// Looks up a key of a mapping node; the value is returned resolved.
    pub fn get(&self, key: &str) -> Option<&PNode> {
        match &self.resolved().val {
            PVal::Map(entries) => entries
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.resolved()),
            _ => None,
        }
    }

    /// Converts into a JSON value, keys in document order. Iterative: deep trees cannot
    /// overflow the stack.
    pub fn into_json(self) -> Value {
        enum Work {
            Node(PNode),
            FinishSeq(usize),
            FinishMap(Vec<String>),
        }
        let mut work = vec![Work::Node(self)];
        let mut out: Vec<Value> = Vec::new();
        while let Some(w) = work.pop() {
            match w {
                Work::Node(n) => match n.into_owned().val {
                    PVal::Shared(_) => unreachable!("into_owned() ends sharing"),
                    PVal::Scalar(v) => out.push(v),
                    PVal::Seq(items) => {
                        work.push(Work::FinishSeq(items.len()));
                        work.extend(items.into_iter().rev().map(Work::Node));
                    }
                    PVal::Map(entries) => {
                        let (keys, vals): (Vec<String>, Vec<PNode>) = entries.into_iter().unzip();
                        work.push(Work::FinishMap(keys));
                        work.extend(vals.into_iter().rev().map(Work::Node));
                    }
                },
                Work::FinishSeq(n) => {
                    let items = out.split_off(out.len() - n);
                    out.push(Value::Array(items));
                }
                Work::FinishMap(keys) => {
                    let vals = out.split_off(out.len() - keys.len());
                    let map: serde_json::Map<String, Value> = keys.into_iter().zip(vals).collect();
                    out.push(Value::Object(map));
                }
            }
        }
        out.pop()
            .expect("the work list always produces one root value")
    }
}

pub(crate) fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "mapping",
    }
}

/// A non-empty document's root node.
pub(crate) type Document = PNode;

enum KeySlot {
    Key(String, Pos),
    Merge,
}

enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<PNode>,
        size: usize,
    },
    Map {
        pos: Pos,
        anchor: usize,
        entries: Vec<(String, PNode)>,
        /// Key positions, built only once a mapping grows past [`SMALL_MAP`] entries.
        index: Option<HashMap<String, usize>>,
        /// Keys that came from a `<<` merge: an explicit key may override them.
        merged: HashSet<String>,
        key: Option<KeySlot>,
        size: usize,
    },
}

/// Why a document stopped being built; the file may go on with the next document.
struct DocError(RenderError);

struct Builder<'a> {
    file: &'a str,
    limits: &'a Limits,
    stack: Vec<Frame>,
    /// Anchored nodes with their height (levels of nesting they bring along).
    anchors: HashMap<usize, (Rc<PNode>, usize)>,
    /// Nodes copied by aliases so far in this render (shared across files).
    expanded: &'a mut Expanded,
    in_document: bool,
    root: Option<PNode>,
}

/// Parses every document of `text`. Returns the non-empty documents' roots; problems go
/// to `errors`. A syntax error ends the file; other errors end only their document.
/// `expanded` counts what aliases copied, across every file of one render.
pub(crate) fn load(
    text: &str,
    file: &str,
    limits: &Limits,
    expanded: &mut Expanded,
    errors: &mut Vec<RenderError>,
) -> Vec<Document> {
    let mut docs = Vec::new();
    if let Some(at) = text.find(['\u{85}', '\u{2028}', '\u{2029}']) {
        let before = &text[..at];
        let line = before.matches('\n').count() + 1;
        let col = before[before.rfind('\n').map_or(0, |i| i + 1)..]
            .chars()
            .count()
            + 1;
        let c = text[at..].chars().next().expect("found at a char boundary");
        errors.push(RenderError::at(file, line, col, K::AmbiguousBreak(c)));
        return docs;
    }
    let mut parser = Parser::new_from_str(text);
    let mut builder = Builder {
        file,
        limits,
        stack: Vec::new(),
        anchors: HashMap::new(),
        expanded,
        in_document: false,
        root: None,
    };
    let mut skipping = false;
    let mut doc_count = 0usize;
    while let Some(next) = parser.next_event() {
        let (event, span) = match next {
            Ok(ev) => ev,
            Err(e) => {
                let m = e.marker();
                // The scanner's own cap of 255 flow levels can trigger first, because it
                // looks ahead for a possible key before any event is emitted.
                let kind = if e.info() == "recursion limit exceeded" {
                    K::TooDeep(limits.max_depth)
                } else {
                    K::Syntax(e.info().to_owned())
                };
                errors.push(RenderError::at(file, m.line(), m.col() + 1, kind));
                return docs;
            }
        };
        match event {
            Event::StreamStart | Event::Nothing => {}
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                doc_count += 1;
                if doc_count > limits.max_documents {
                    let p = Pos::of(&span);
                    errors.push(RenderError::at(
                        file,
                        p.line,
                        p.col,
                        K::TooManyDocuments(limits.max_documents),
                    ));
                    return docs;
                }
                skipping = false;
                builder.stack.clear();
                builder.anchors.clear();
                builder.root = None;
                builder.in_document = true;
            }
            Event::DocumentEnd => {
                builder.in_document = false;
                if let Some(root) = builder.root.take()
                    && !skipping
                    && !matches!(root.resolved().val, PVal::Scalar(Value::Null))
                {
                    docs.push(root);
                }
            }
            other => {
                if skipping || !builder.in_document {
                    continue;
                }
                if let Err(DocError(err)) = builder.event(other, &span) {
                    let fatal =
                        matches!(err.kind, K::AliasBomb(_) | K::AliasBytes(_) | K::TooDeep(_));
                    errors.push(err);
                    if fatal {
                        return docs;
                    }
                    skipping = true;
                }
            }
        }
    }
    docs
}

impl Builder<'_> {
    fn err(&self, pos: Pos, kind: K) -> DocError {
        DocError(RenderError::at(self.file, pos.line, pos.col, kind))
    }

    fn event(&mut self, event: Event<'_>, span: &Span) -> Result<(), DocError> {
        let pos = Pos::of(span);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                if self.expecting_key() {
                    let slot = self.scalar_key(&text, style, tag.as_deref(), pos)?;
                    if anchor != 0 {
                        // An anchored key can be reused as a value or another key.
                        if let Ok(value) = self.scalar_value(&text, style, tag.as_deref(), pos) {
                            let val = PVal::Scalar(value);
                            let node = Rc::new(PNode { pos, val, size: 1 });
                            self.anchors.insert(anchor, (node, 0));
                        }
                    }
                    self.set_key(slot);
                    return Ok(());
                }
                let value = self.scalar_value(&text, style, tag.as_deref(), pos)?;
                self.complete(
                    PNode {
                        pos,
                        val: PVal::Scalar(value),
                        size: 1,
                    },
                    anchor,
                )
            }
            Event::Alias(id) => {
                let Some((node, height)) = self.anchors.get(&id) else {
                    let open = self.stack.iter().any(|f| match f {
                        Frame::Seq { anchor, .. } | Frame::Map { anchor, .. } => *anchor == id,
                    });
                    let msg = if open {
                        "alias refers to the node that contains it"
                    } else {
                        "alias to an unknown anchor"
                    };
                    return Err(self.err(pos, K::Syntax(msg.to_owned())));
                };
                self.expanded.nodes = self.expanded.nodes.saturating_add(node.size);
                if self.expanded.nodes > self.limits.max_alias_expansion {
                    return Err(self.err(pos, K::AliasBomb(self.limits.max_alias_expansion)));
                }
                // Few nodes can still be many bytes (one long string aliased over and
                // over): the copies' text counts against the byte budget.
                self.expanded.bytes = self.expanded.bytes.saturating_add(text_bytes(node));
                if self.expanded.bytes > self.limits.max_total_bytes {
                    return Err(self.err(pos, K::AliasBytes(self.limits.max_total_bytes)));
                }
                // A copy brings its own nesting along: it must fit where it lands.
                if self.stack.len() + height > self.limits.max_depth {
                    return Err(self.err(pos, K::TooDeep(self.limits.max_depth)));
                }
                let node = PNode {
                    pos,
                    val: PVal::Shared(Rc::clone(node)),
                    size: node.size,
                };
                if self.expecting_key() {
                    let slot = match &node.resolved().val {
                        PVal::Scalar(v) => KeySlot::Key(self.key_from_value(v, pos)?, pos),
                        _ => {
                            return Err(self.err(
                                pos,
                                K::UnsupportedKey(format!("of type {}", node.type_name())),
                            ));
                        }
                    };
                    self.set_key(slot);
                    return Ok(());
                }
                self.complete(node, 0)
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.expecting_key() {
                    return Err(self.err(
                        pos,
                        K::UnsupportedKey("that is a mapping or a list".to_owned()),
                    ));
                }
                if self.stack.len() >= self.limits.max_depth {
                    return Err(self.err(pos, K::TooDeep(self.limits.max_depth)));
                }
                let frame = if matches!(event, Event::SequenceStart(..)) {
                    Frame::Seq {
                        pos,
                        anchor,
                        items: Vec::new(),
                        size: 1,
                    }
                } else {
                    Frame::Map {
                        pos,
                        anchor,
                        entries: Vec::new(),
                        index: None,
                        merged: HashSet::new(),
                        key: None,
                        size: 1,
                    }
                };
                self.stack.push(frame);
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let frame = self
                    .stack
                    .pop()
                    .expect("the parser balances start and end events");
                let (node, anchor) = match frame {
                    Frame::Seq {
                        pos,
                        anchor,
                        items,
                        size,
                    } => (
                        PNode {
                            pos,
                            val: PVal::Seq(items),
                            size,
                        },
                        anchor,
                    ),
                    Frame::Map {
                        pos,
                        anchor,
                        entries,
                        size,
                        ..
                    } => (
                        PNode {
                            pos,
                            val: PVal::Map(entries),
                            size,
                        },
                        anchor,
                    ),
                };
                self.complete(node, anchor)
            }
            _ => Ok(()),
        }
    }

    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
    }

    fn set_key(&mut self, slot: KeySlot) {
        if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
            *key = Some(slot);
        }
    }

    /// Places a finished node into its parent (or makes it the root).
    fn complete(&mut self, node: PNode, anchor: usize) -> Result<(), DocError> {
        let node = if anchor == 0 {
            node
        } else {
            let (pos, size, h) = (node.pos, node.size, height(&node));
            let shared = Rc::new(node);
            self.anchors.insert(anchor, (Rc::clone(&shared), h));
            PNode {
                pos,
                val: PVal::Shared(shared),
                size,
            }
        };
        let file = self.file;
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                Ok(())
            }
            Some(Frame::Seq { items, size, .. }) => {
                *size += node.size;
                items.push(node);
                Ok(())
            }
            Some(Frame::Map {
                entries,
                index,
                merged,
                key,
                size,
                ..
            }) => {
                *size += node.size;
                match key.take().expect("a value follows its key") {
                    KeySlot::Key(k, kpos) => {
                        if let Some(i) = find(entries, index, &k) {
                            if !merged.remove(&k) {
                                return Err(DocError(RenderError::at(
                                    file,
                                    kpos.line,
                                    kpos.col,
                                    K::DuplicateKey(k),
                                )));
                            }
                            entries[i].1 = node;
                        } else {
                            push_entry(entries, index, k, node);
                        }
                        Ok(())
                    }
                    KeySlot::Merge => {
                        // go-yaml v2 merges in place: merged keys overwrite what is already
                        // there, keys after `<<` overwrite merged ones, and in a list of
                        // maps the earlier map wins (it is applied last).
                        let node = node.into_owned();
                        let sources: Vec<PNode> = match node.val {
                            PVal::Map(_) => vec![node],
                            PVal::Seq(items) => {
                                if let Some(bad) = items
                                    .iter()
                                    .find(|n| !matches!(n.resolved().val, PVal::Map(_)))
                                {
                                    return Err(DocError(RenderError::at(
                                        file,
                                        bad.pos.line,
                                        bad.pos.col,
                                        K::BadMerge(bad.type_name()),
                                    )));
                                }
                                items.into_iter().rev().collect()
                            }
                            PVal::Scalar(ref v) => {
                                return Err(DocError(RenderError::at(
                                    file,
                                    node.pos.line,
                                    node.pos.col,
                                    K::BadMerge(json_type_name(v)),
                                )));
                            }
                            PVal::Shared(_) => unreachable!("into_owned() ends sharing"),
                        };
                        for source in sources {
                            let PVal::Map(src) = source.into_owned().val else {
                                continue;
                            };
                            for (k, v) in src {
                                merged.insert(k.clone());
                                if let Some(i) = find(entries, index, &k) {
                                    entries[i].1 = v;
                                } else {
                                    push_entry(entries, index, k, v);
                                }
                            }
                        }
                        Ok(())
                    }
                }
            }
        }
    }

    fn scalar_key(
        &self,
        text: &str,
        style: ScalarStyle,
        tag: Option<&Tag>,
        pos: Pos,
    ) -> Result<KeySlot, DocError> {
        let resolved = match self.resolve(text, style, tag, pos)? {
            None => return Ok(KeySlot::Key(text.to_owned(), pos)),
            Some(r) => r,
        };
        // sigs.k8s.io/yaml turns int, float and bool keys into strings and refuses the rest.
        let key = match resolved {
            Scalar::Str => text.to_owned(),
            Scalar::Merge => return Ok(KeySlot::Merge),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => go_format_float_key(f),
            Scalar::Null => {
                return Err(self.err(pos, K::UnsupportedKey(format!("{text:?} (null)"))));
            }
            Scalar::Uint(_) => {
                return Err(self.err(
                    pos,
                    K::UnsupportedKey(format!("{text} (an integer above int64)")),
                ));
            }
        };
        Ok(KeySlot::Key(key, pos))
    }

    fn key_from_value(&self, v: &Value, pos: Pos) -> Result<String, DocError> {
        Ok(match v {
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => i.to_string(),
                (None, Some(f)) if n.is_f64() => go_format_float_key(f),
                _ => {
                    return Err(self.err(
                        pos,
                        K::UnsupportedKey(format!("{n} (an integer above int64)")),
                    ));
                }
            },
            _ => {
                return Err(self.err(
                    pos,
                    K::UnsupportedKey(format!("of type {}", json_type_name(v))),
                ));
            }
        })
    }

    /// Resolves a scalar per its style and tag. `None` means "a string, verbatim".
    fn resolve(
        &self,
        text: &str,
        style: ScalarStyle,
        tag: Option<&Tag>,
        pos: Pos,
    ) -> Result<Option<Scalar>, DocError> {
        let core = match tag {
            Some(t) if t.is_yaml_core_schema() => Some(t.suffix.as_str()),
            // A local tag (`!foo`) is not resolvable in go-yaml v2: the text is kept.
            Some(_) => return Ok(None),
            None => None,
        };
        match core {
            None if style == ScalarStyle::Plain => Ok(Some(resolve_plain(text))),
            None | Some("str") | Some("timestamp") => Ok(None),
            Some(want @ ("int" | "float" | "bool" | "null")) => {
                // With a tag, go-yaml resolves the text whatever its quoting.
                let got = resolve_plain(text);
                let ok = match (want, &got) {
                    ("int", Scalar::Int(_) | Scalar::Uint(_)) => Some(got.clone()),
                    ("float", Scalar::Float(_)) => Some(got.clone()),
                    ("float", Scalar::Int(i)) => Some(Scalar::Float(*i as f64)),
                    ("float", Scalar::Uint(u)) => Some(Scalar::Float(*u as f64)),
                    ("bool", Scalar::Bool(_)) | ("null", Scalar::Null) => Some(got.clone()),
                    _ => None,
                };
                ok.map(Some).ok_or_else(|| {
                    self.err(
                        pos,
                        K::InvalidValue(format!("cannot decode {text:?} as !!{want}")),
                    )
                })
            }
            // go-yaml decodes base64 here; the bytes may not be text, so refuse.
            Some("binary") => Err(self.err(
                pos,
                K::InvalidValue("tag !!binary is not supported on a scalar".to_owned()),
            )),
            // Other tags are not resolvable in go-yaml v2: the text is kept as a string.
            Some(_) => Ok(None),
        }
    }

    fn scalar_value(
        &self,
        text: &str,
        style: ScalarStyle,
        tag: Option<&Tag>,
        pos: Pos,
    ) -> Result<Value, DocError> {
        let Some(resolved) = self.resolve(text, style, tag, pos)? else {
            return Ok(Value::String(text.to_owned()));
        };
        Ok(match resolved {
            Scalar::Null => Value::Null,
            Scalar::Bool(b) => Value::Bool(b),
            Scalar::Int(i) => Value::from(i),
            Scalar::Uint(u) => Value::from(u),
            Scalar::Str | Scalar::Merge => Value::String(text.to_owned()),
            Scalar::Float(f) => float_value(f).ok_or_else(|| {
                self.err(
                    pos,
                    K::InvalidValue(format!(
                        "{text} is not a finite number; JSON cannot represent it"
                    )),
                )
            })?,
        })
    }
}

/// What aliases copied in one render: nodes, and bytes of text.
#[derive(Debug, Default)]
pub(crate) struct Expanded {
    pub nodes: usize,
    pub bytes: u64,
}

/// Bytes of the strings and keys in a node. Iterative.
fn text_bytes(node: &PNode) -> u64 {
    let mut bytes = 0u64;
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        match &n.resolved().val {
            PVal::Scalar(Value::String(s)) => bytes += s.len() as u64,
            PVal::Scalar(_) | PVal::Shared(_) => bytes += 1,
            PVal::Seq(items) => stack.extend(items),
            PVal::Map(entries) => {
                for (k, v) in entries {
                    bytes += k.len() as u64;
                    stack.push(v);
                }
            }
        }
    }
    bytes
}

/// Levels of lists and mappings in a node (0 for a scalar). Iterative.
fn height(node: &PNode) -> usize {
    let mut max = 0;
    let mut stack = vec![(node, 0usize)];
    while let Some((n, depth)) = stack.pop() {
        match &n.resolved().val {
            PVal::Scalar(_) | PVal::Shared(_) => max = max.max(depth),
            PVal::Seq(items) => {
                max = max.max(depth + 1);
                stack.extend(items.iter().map(|c| (c, depth + 1)));
            }
            PVal::Map(entries) => {
                max = max.max(depth + 1);
                stack.extend(entries.iter().map(|(_, c)| (c, depth + 1)));
            }
        }
    }
    max
}

/// Mappings up to this size find keys by scanning; larger ones get a hash index.
const SMALL_MAP: usize = 16;

fn find(
    entries: &[(String, PNode)],
    index: &Option<HashMap<String, usize>>,
    key: &str,
) -> Option<usize> {
    match index {
        Some(index) => index.get(key).copied(),
        None => entries.iter().position(|(k, _)| k == key),
    }
}

fn push_entry(
    entries: &mut Vec<(String, PNode)>,
    index: &mut Option<HashMap<String, usize>>,
    key: String,
    node: PNode,
) {
    if let Some(index) = index {
        index.insert(key.clone(), entries.len());
    }
    entries.push((key, node));
    if index.is_none() && entries.len() > SMALL_MAP {
        *index = Some(
            entries
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (k.clone(), i))
                .collect(),
        );
    }
}

/// A float as kubectl sends it: Go's `json.Marshal` writes a float64 below 1e21 in
/// shortest round-trip digits without exponent (`8`, not `8.0`; 2^62 as
/// `4611686018427388000`), so an integral value becomes that integer text, read back as
/// a JSON number (an integer where it fits). NaN and infinities have no JSON form.
pub(crate) fn float_value(f: f64) -> Option<Value> {
    if !f.is_finite() {
        return None;
    }
    if f.fract() == 0.0 && f.abs() < 1e21 {
        let sci = format!("{f:e}");
        let (mantissa, exp) = sci
            .split_once('e')
            .expect("`{:e}` always prints an exponent");
        let exp: usize = exp
            .parse()
            .expect("an integral float of at least 1 has exponent >= 0");
        let negative = mantissa.starts_with('-');
        let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
        let mut text = String::with_capacity(exp + 2);
        if negative {
            text.push('-');
        }
        text.push_str(&digits);
        text.extend(std::iter::repeat_n(
            '0',
            (exp + 1).saturating_sub(digits.len()),
        ));
        if let Ok(n) = text.parse::<serde_json::Number>() {
            return Some(Value::Number(n));
        }
    }
    serde_json::Number::from_f64(f).map(Value::Number)
}
