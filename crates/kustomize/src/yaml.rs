//! YAML in and out, the way kustomize does it.
//!
//! Input follows go-yaml v3 resolution (YAML 1.2 core schema plus Go's integer syntax);
//! output follows what `kustomize build` prints: every document goes through JSON and is
//! re-emitted by go-yaml v2 (sorted keys in its "natural" order, 2-space indent, indentless
//! sequences, long scalars folded at column 80).

use driftless_goyaml::{is_base60_float, is_yaml_float};
use driftless_model::Limits;
use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// A decoded YAML value. Maps keep insertion order (output sorts them anyway).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Value>),
    Map(Map),
}

/// An insertion-ordered string-keyed map.
pub type Map = Vec<(String, Value)>;

/// Why a YAML document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    /// The text is not valid YAML.
    #[error("{line}:{col}: {msg}")]
    Syntax {
        line: usize,
        col: usize,
        msg: String,
    },
    /// A mapping key is not a string (kustomize cannot turn it into JSON).
    #[error("{line}:{col}: mapping key {key:?} is not a string")]
    NonStringKey {
        line: usize,
        col: usize,
        key: String,
    },
    /// A mapping repeats a key (kustomize refuses this in resources).
    #[error("{line}:{col}: mapping key {key:?} already defined at line {first_line}")]
    DuplicateKey {
        line: usize,
        col: usize,
        key: String,
        first_line: usize,
    },
    /// A value JSON cannot carry (infinity, NaN).
    #[error("{line}:{col}: value {text:?} cannot be represented in JSON")]
    NotJson {
        line: usize,
        col: usize,
        text: String,
    },
    /// An alias names an anchor that was never defined.
    #[error("{line}:{col}: unknown alias")]
    UnknownAlias { line: usize, col: usize },
    /// Lists and mappings nest deeper than [`Limits::max_depth`].
    #[error("{line}:{col}: nesting deeper than {limit} levels")]
    TooDeep {
        line: usize,
        col: usize,
        limit: usize,
    },
    /// Anchors and aliases copy more than [`Limits::max_alias_expansion`] nodes or
    /// [`Limits::max_total_bytes`] bytes (an alias bomb).
    #[error("{line}:{col}: aliases expand to {msg} (an alias bomb?)")]
    AliasBomb {
        line: usize,
        col: usize,
        msg: String,
    },
    /// More documents than [`Limits::max_documents`] in one file.
    #[error("{line}:{col}: more than {limit} documents in one file")]
    TooManyDocuments {
        line: usize,
        col: usize,
        limit: usize,
    },
}

impl YamlError {
    /// The line and column the error is at.
    pub fn place(&self) -> (usize, usize) {
        match self {
            YamlError::Syntax { line, col, .. }
            | YamlError::NonStringKey { line, col, .. }
            | YamlError::DuplicateKey { line, col, .. }
            | YamlError::NotJson { line, col, .. }
            | YamlError::UnknownAlias { line, col }
            | YamlError::TooDeep { line, col, .. }
            | YamlError::AliasBomb { line, col, .. }
            | YamlError::TooManyDocuments { line, col, .. } => (*line, *col),
        }
    }

    /// The message without its place.
    pub fn reason(&self) -> String {
        let (line, col) = self.place();
        let text = self.to_string();
        text.strip_prefix(&format!("{line}:{col}: "))
            .map_or(text.clone(), str::to_owned)
    }
}

impl Value {
    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }
    pub fn as_map_mut(&mut self) -> Option<&mut Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_seq(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }
    /// Looks up a key in a map value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.as_map_mut()?
            .iter_mut()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
    /// Follows a path of map keys.
    pub fn path(&self, keys: &[&str]) -> Option<&Value> {
        let mut cur = self;
        for k in keys {
            cur = cur.get(k)?;
        }
        Some(cur)
    }
    /// Sets a key in a map value (appends when new). No-op on non-maps.
    pub fn set(&mut self, key: &str, v: Value) {
        if let Value::Map(m) = self {
            if let Some(slot) = m.iter_mut().find(|(k, _)| k == key) {
                slot.1 = v;
            } else {
                m.push((key.to_owned(), v));
            }
        }
    }
    /// Removes a key from a map value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        if let Value::Map(m) = self {
            let i = m.iter().position(|(k, _)| k == key)?;
            return Some(m.remove(i).1);
        }
        None
    }
    /// The map at `key`, created when absent or not a map. A value that is not a map
    /// itself becomes one first (resources are refused unless they are maps, so this
    /// only keeps the function total).
    pub fn entry_map(&mut self, key: &str) -> &mut Value {
        if !matches!(self, Value::Map(_)) {
            *self = Value::Map(Vec::new());
        }
        let Value::Map(m) = self else {
            unreachable!("made a map above")
        };
        let i = match m.iter().position(|(k, _)| k == key) {
            Some(i) => {
                if !matches!(m[i].1, Value::Map(_)) {
                    m[i].1 = Value::Map(Vec::new());
                }
                i
            }
            None => {
                m.push((key.to_owned(), Value::Map(Vec::new())));
                m.len() - 1
            }
        };
        &mut m[i].1
    }
    /// The scalar as kustomize's string view (what `.Value` of a yaml.v3 node holds).
    pub fn scalar_text(&self) -> Option<String> {
        Some(match self {
            Value::Null => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::UInt(i) => i.to_string(),
            Value::Float(f) => format_go_g(*f),
            Value::Str(s) => s.clone(),
            _ => return None,
        })
    }
    /// Converts to serde_json.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::UInt(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::Seq(s) => serde_json::Value::Array(s.iter().map(Value::to_json).collect()),
            Value::Map(m) => {
                serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }
}

/// A parsed node before resolution to [`Value`]: scalars keep their text and style so
/// that kustomize's string views (annotations) can be reproduced.
#[derive(Debug, Clone)]
pub enum Node {
    Scalar {
        text: String,
        plain: bool,
        tag: Option<String>,
        line: usize,
        col: usize,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// One document with the line it starts on.
#[derive(Debug, Clone)]
pub struct Doc {
    pub node: Option<Node>,
    pub line: usize,
}

fn syntax(span: &Span, msg: impl Into<String>) -> YamlError {
    YamlError::Syntax {
        line: span.start.line(),
        col: span.start.col() + 1,
        msg: msg.into(),
    }
}

/// Parses a (multi-document) YAML stream into nodes, within the default [`Limits`].
pub fn parse_docs(text: &str) -> Result<Vec<Doc>, YamlError> {
    parse_docs_with(text, &Limits::default(), &mut Copied::default())
}

/// What a build has copied so far: nodes, and the bytes of their strings.
#[derive(Debug, Default, Clone, Copy)]
pub struct Copied {
    pub nodes: usize,
    pub bytes: u64,
}

impl Copied {
    /// Adds a copy; `Err` names the limit it went past.
    pub fn add(&mut self, nodes: usize, bytes: u64, limits: &Limits) -> Result<(), String> {
        self.nodes = self.nodes.saturating_add(nodes);
        self.bytes = self.bytes.saturating_add(bytes);
        if self.nodes > limits.max_alias_expansion {
            return Err(format!(
                "more than {} nodes (limit max_alias_expansion)",
                limits.max_alias_expansion
            ));
        }
        if self.bytes > limits.max_total_bytes {
            return Err(format!(
                "more than {} bytes (limit max_total_bytes)",
                limits.max_total_bytes
            ));
        }
        Ok(())
    }
}

/// Parses a (multi-document) YAML stream into nodes. Nesting deeper than
/// [`Limits::max_depth`] is refused before it is built (every later walk recurses once per
/// level), and so are more than [`Limits::max_documents`] documents. An alias is a copy:
/// its nodes and string bytes are added to `copied` (shared by every file of a build)
/// before it is made, and past [`Limits::max_alias_expansion`] nodes or
/// [`Limits::max_total_bytes`] bytes the file is refused.
pub fn parse_docs_with(
    text: &str,
    limits: &Limits,
    copied: &mut Copied,
) -> Result<Vec<Doc>, YamlError> {
    let mut parser = Parser::new_from_str(text);
    let mut docs = Vec::new();
    // Anchored nodes with their weight (nodes, string bytes) and height (levels).
    let mut anchors: std::collections::HashMap<usize, (Node, (usize, u64), usize)> =
        Default::default();
    // Stack of open collections: (node, pending key, anchor id).
    enum Open {
        Seq(Vec<Node>, usize),
        Map(Vec<(Node, Node)>, Option<Node>, usize),
    }
    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<Node> = None;
    let mut doc_line = 1;
    let at = |span: &Span| (span.start.line(), span.start.col() + 1);
    for ev in parser.by_ref() {
        let (ev, span) = ev.map_err(|e| {
            let (line, col) = (e.marker().line(), e.marker().col() + 1);
            // The scanner's own cap of flow levels can trigger before our count does.
            if e.info() == "recursion limit exceeded" {
                YamlError::TooDeep {
                    line,
                    col,
                    limit: limits.max_depth,
                }
            } else {
                YamlError::Syntax {
                    line,
                    col,
                    msg: e.info().to_owned(),
                }
            }
        })?;
        let done: Option<(Node, usize)> = match ev {
            Event::StreamStart | Event::StreamEnd | Event::Nothing => None,
            Event::DocumentStart(_) => {
                if docs.len() >= limits.max_documents {
                    let (line, col) = at(&span);
                    return Err(YamlError::TooManyDocuments {
                        line,
                        col,
                        limit: limits.max_documents,
                    });
                }
                root = None;
                doc_line = span.start.line();
                None
            }
            Event::DocumentEnd => {
                docs.push(Doc {
                    node: root.take(),
                    line: doc_line,
                });
                anchors.clear();
                None
            }
            Event::Alias(id) => {
                let (line, col) = at(&span);
                let (n, (nodes, bytes), height) = anchors
                    .get(&id)
                    .ok_or(YamlError::UnknownAlias { line, col })?;
                if let Err(msg) = copied.add(*nodes, *bytes, limits) {
                    return Err(YamlError::AliasBomb { line, col, msg });
                }
                // A copy brings its own nesting along: it must fit where it lands.
                if stack.len() + height > limits.max_depth {
                    return Err(YamlError::TooDeep {
                        line,
                        col,
                        limit: limits.max_depth,
                    });
                }
                Some((n.clone(), 0))
            }
            Event::Scalar(text, style, anchor, tag) => {
                let tag = tag.map(|t| tag_name(&t));
                Some((
                    Node::Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain,
                        tag,
                        line: span.start.line(),
                        col: span.start.col() + 1,
                    },
                    anchor,
                ))
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if stack.len() >= limits.max_depth {
                    let (line, col) = at(&span);
                    return Err(YamlError::TooDeep {
                        line,
                        col,
                        limit: limits.max_depth,
                    });
                }
                stack.push(if matches!(ev, Event::SequenceStart(..)) {
                    Open::Seq(Vec::new(), anchor)
                } else {
                    Open::Map(Vec::new(), None, anchor)
                });
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Open::Seq(items, a)) => Some((Node::Seq(items), a)),
                _ => return Err(syntax(&span, "unbalanced sequence")),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Open::Map(items, _, a)) => Some((Node::Map(items), a)),
                _ => return Err(syntax(&span, "unbalanced mapping")),
            },
        };
        if let Some((node, anchor)) = done {
            if anchor != 0 {
                // Keeping the anchored node is a copy too: nested anchors around a large
                // block would otherwise copy it once per level.
                let (nodes, bytes, height) = node.measure();
                if let Err(msg) = copied.add(nodes, bytes, limits) {
                    let (line, col) = at(&span);
                    return Err(YamlError::AliasBomb { line, col, msg });
                }
                anchors.insert(anchor, (node.clone(), (nodes, bytes), height));
            }
            match stack.last_mut() {
                None => root = Some(node),
                Some(Open::Seq(items, _)) => items.push(node),
                Some(Open::Map(items, pending, _)) => match pending.take() {
                    None => *pending = Some(node),
                    Some(k) => items.push((k, node)),
                },
            }
        }
    }
    Ok(docs)
}

impl Node {
    /// Nodes in this subtree (itself included), the bytes of its scalars, and its levels
    /// of nesting (0 for a scalar). Iterative.
    fn measure(&self) -> (usize, u64, usize) {
        let (mut size, mut bytes, mut height) = (0, 0u64, 0);
        let mut work = vec![(self, 0usize)];
        while let Some((n, depth)) = work.pop() {
            size += 1;
            match n {
                Node::Scalar { text, .. } => {
                    bytes += text.len() as u64;
                    height = height.max(depth);
                }
                Node::Seq(items) => {
                    height = height.max(depth + 1);
                    work.extend(items.iter().map(|c| (c, depth + 1)));
                }
                Node::Map(pairs) => {
                    height = height.max(depth + 1);
                    for (k, v) in pairs {
                        work.push((k, depth + 1));
                        work.push((v, depth + 1));
                    }
                }
            }
        }
        (size, bytes, height)
    }
}

impl Value {
    /// Nodes in this value (itself included) and the bytes of its strings and keys:
    /// what copying it costs. Iterative.
    pub fn weight(&self) -> (usize, u64) {
        let (mut n, mut bytes) = (0, 0u64);
        let mut work = vec![self];
        while let Some(v) = work.pop() {
            n += 1;
            match v {
                Value::Str(s) => bytes += s.len() as u64,
                Value::Seq(items) => work.extend(items),
                Value::Map(m) => {
                    for (k, v) in m {
                        bytes += k.len() as u64;
                        work.push(v);
                    }
                }
                _ => {}
            }
        }
        (n, bytes)
    }

    /// Levels of lists and mappings (0 for a scalar). Iterative, so it is safe on any
    /// value; the recursive walks check it first.
    pub fn height(&self) -> usize {
        let mut max = 0;
        let mut work = vec![(self, 0usize)];
        while let Some((v, depth)) = work.pop() {
            match v {
                Value::Seq(items) => {
                    max = max.max(depth + 1);
                    work.extend(items.iter().map(|c| (c, depth + 1)));
                }
                Value::Map(m) => {
                    max = max.max(depth + 1);
                    work.extend(m.iter().map(|(_, c)| (c, depth + 1)));
                }
                _ => max = max.max(depth),
            }
        }
        max
    }
}

fn tag_name(t: &saphyr_parser::Tag) -> String {
    if t.handle == "tag:yaml.org,2002:" || t.handle == "!!" {
        format!("!!{}", t.suffix)
    } else {
        format!("{}{}", t.handle, t.suffix)
    }
}

/// Resolves a node to a value with go-yaml v3's rules.
pub fn resolve(node: &Node) -> Result<Value, YamlError> {
    resolve_keys(node, Repeats::LastWins)
}

/// Like [`resolve`], but a mapping that repeats a key (by its written text, as go-yaml
/// compares them) is an error: kustomize decodes every resource strictly, while it lets
/// kustomization files and patches keep the last value.
pub fn resolve_unique(node: &Node) -> Result<Value, YamlError> {
    resolve_keys(node, Repeats::Refused)
}

/// Like [`resolve`], but a repeated key keeps its first value: kustomize applies a patch
/// as a YAML node tree, where a field lookup finds the first key of that name.
pub fn resolve_first(node: &Node) -> Result<Value, YamlError> {
    resolve_keys(node, Repeats::FirstWins)
}

/// What a mapping that repeats a key (by its written text) means.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Repeats {
    LastWins,
    FirstWins,
    Refused,
}

fn resolve_keys(node: &Node, repeats: Repeats) -> Result<Value, YamlError> {
    let resolve = |n: &Node| resolve_keys(n, repeats);
    let unique = repeats != Repeats::LastWins;
    match node {
        Node::Scalar {
            text,
            plain,
            tag,
            line,
            col,
        } => resolve_scalar(text, *plain, tag.as_deref(), *line, *col),
        Node::Seq(items) => Ok(Value::Seq(
            items.iter().map(resolve).collect::<Result<_, _>>()?,
        )),
        Node::Map(items) => {
            let mut m: Map = Vec::with_capacity(items.len());
            // Key positions, so that a mapping with many keys is not quadratic to read.
            let mut index: std::collections::HashMap<String, usize> =
                std::collections::HashMap::new();
            // Written key text -> its line, when repeats are not simply overwritten.
            let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
            for (k, v) in items {
                if unique
                    && let Node::Scalar {
                        text, line, col, ..
                    } = k
                    && let Some(&first_line) = seen.get(text.as_str())
                {
                    if repeats == Repeats::FirstWins {
                        continue;
                    }
                    return Err(YamlError::DuplicateKey {
                        line: *line,
                        col: *col,
                        key: text.clone(),
                        first_line,
                    });
                }
                if unique && let Node::Scalar { text, line, .. } = k {
                    seen.insert(text.as_str(), *line);
                }
                let key = match k {
                    Node::Scalar {
                        text, line, col, ..
                    } => match resolve(k)? {
                        Value::Str(s) => s,
                        _ => {
                            return Err(YamlError::NonStringKey {
                                line: *line,
                                col: *col,
                                key: text.clone(),
                            });
                        }
                    },
                    _ => {
                        return Err(YamlError::NonStringKey {
                            line: 0,
                            col: 0,
                            key: "<collection>".into(),
                        });
                    }
                };
                if key == "<<" {
                    // Merge key: fold the referenced map(s) in without overriding.
                    let merged = resolve(v)?;
                    let sources = match merged {
                        Value::Map(mm) => vec![mm],
                        Value::Seq(s) => s
                            .into_iter()
                            .filter_map(|x| match x {
                                Value::Map(mm) => Some(mm),
                                _ => None,
                            })
                            .collect(),
                        _ => vec![],
                    };
                    for src in sources {
                        for (kk, vv) in src {
                            if !index.contains_key(&kk) {
                                index.insert(kk.clone(), m.len());
                                m.push((kk, vv));
                            }
                        }
                    }
                    continue;
                }
                let val = resolve(v)?;
                match index.get(&key) {
                    Some(&i) => m[i].1 = val,
                    None => {
                        index.insert(key.clone(), m.len());
                        m.push((key, val));
                    }
                }
            }
            Ok(Value::Map(m))
        }
    }
}

/// The raw text of a scalar node ("" for collections), as kustomize's string views see it.
pub fn node_text(node: &Node) -> String {
    match node {
        Node::Scalar { text, .. } => text.clone(),
        _ => String::new(),
    }
}

fn resolve_scalar(
    text: &str,
    plain: bool,
    tag: Option<&str>,
    line: usize,
    col: usize,
) -> Result<Value, YamlError> {
    let not_json = || YamlError::NotJson {
        line,
        col,
        text: text.to_owned(),
    };
    match tag {
        Some("!!str") => return Ok(Value::Str(text.to_owned())),
        Some("!!binary") => {
            use base64::Engine;
            let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(clean)
                .map_err(|_| YamlError::Syntax {
                    line,
                    col,
                    msg: "invalid !!binary data".into(),
                })?;
            return Ok(Value::Str(String::from_utf8_lossy(&bytes).into_owned()));
        }
        Some("!!null") => return Ok(Value::Null),
        Some("!!bool") | Some("!!int") | Some("!!float") => {}
        Some(t) if !t.starts_with("!!") && !plain => return Ok(Value::Str(text.to_owned())),
        _ => {}
    }
    if !plain && tag.is_none() {
        return Ok(Value::Str(text.to_owned()));
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        "true" | "True" | "TRUE" => return Ok(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Ok(Value::Bool(false)),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF"
        | ".nan" | ".NaN" | ".NAN" => return Err(not_json()),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if first.is_ascii_digit() || first == b'-' || first == b'+' || first == b'.' {
        if let Some(v) = go_parse_int(text) {
            return Ok(v);
        }
        // Go's ParseFloat fails out of range (`1e400`), and go-yaml then keeps the
        // text as a string; Rust's parse would give an infinity JSON cannot carry.
        if is_yaml_float(text)
            && let Ok(f) = text.replace('_', "").parse::<f64>()
            && f.is_finite()
        {
            return Ok(Value::Float(f));
        }
        if first != b'.'
            && let Some(d) = parse_date(text)
        {
            return Ok(Value::Str(d));
        }
    }
    Ok(Value::Str(text.to_owned()))
}

/// `YYYY-MM-DD` (v3 resolves it to a timestamp, which JSON prints as RFC 3339).
fn parse_date(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.split('-').collect();
    if parts.len() != 3 || parts[0].len() != 4 {
        return None;
    }
    if !parts
        .iter()
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let m: u32 = parts[1].parse().ok()?;
    let d: u32 = parts[2].parse().ok()?;
    if parts[1].len() > 2 || parts[2].len() > 2 || !(1..=12).contains(&m) || !(1..=31).contains(&d)
    {
        return None;
    }
    Some(format!("{}-{:02}-{:02}T00:00:00Z", parts[0], m, d))
}

/// Go's `strconv.ParseInt(s, 0, 64)` then `ParseUint` (underscores allowed between digits).
fn go_parse_int(s: &str) -> Option<Value> {
    let (neg, body) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let (radix, digits, prefixed) =
        if let Some(r) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (16, r, true)
        } else if let Some(r) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
            (8, r, true)
        } else if let Some(r) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
            (2, r, true)
        } else if body.len() > 1 && body.starts_with('0') {
            (8, &body[1..], true)
        } else {
            (10, body, false)
        };
    // Underscores: only between digits, or right after a base prefix.
    if digits.is_empty() {
        return None;
    }
    let bytes = digits.as_bytes();
    let mut prev_us = !prefixed;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'_' {
            if prev_us && !(i == 0 && prefixed) {
                return None;
            }
            if i == 0 && !prefixed {
                return None;
            }
            prev_us = true;
        } else {
            prev_us = false;
        }
    }
    if bytes.last() == Some(&b'_') {
        return None;
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if clean.is_empty() {
        return None;
    }
    let mag = u128::from_str_radix(&clean, radix).ok()?;
    if neg {
        if mag <= (i64::MAX as u128) + 1 {
            return Some(Value::Int((-(mag as i128)) as i64));
        }
        return None;
    }
    if mag <= i64::MAX as u128 {
        Some(Value::Int(mag as i64))
    } else if mag <= u64::MAX as u128 {
        Some(Value::UInt(mag as u64))
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------
// Output: go-yaml v2 emitter behaviour over JSON-decoded values.

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)`.
pub fn format_go_g(f: f64) -> String {
    if !f.is_finite() {
        // Values are finite once read; Go's spelling, should one ever get here.
        return if f.is_nan() {
            "NaN"
        } else if f > 0.0 {
            "+Inf"
        } else {
            "-Inf"
        }
        .into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let e = format!("{:e}", f); // shortest digits: "-1.2345e6"
    let (mant, exp) = e.split_once('e').expect("rust {:e} has an exponent");
    let exp: i32 = exp.parse().expect("integer exponent");
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

/// The text a float takes after the JSON round trip and v2's re-emission.
fn float_text(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e21 {
        // JSON prints it without a fraction; v2 reads it back as an integer when it fits.
        let as_int = f as i128;
        if as_int >= i64::MIN as i128 && as_int <= u64::MAX as i128 {
            return as_int.to_string();
        }
    }
    format_go_g(f)
}

/// go-yaml v2's map key order.
pub fn v2_key_less(a: &str, b: &str) -> bool {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let n = ar.len().min(br.len());
    for i in 0..n {
        if ar[i] == br[i] {
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i] < br[i];
        }
        if al || bl {
            return bl;
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 {
                j -= 1;
                if !ar[j].is_ascii_digit() {
                    break;
                }
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an.wrapping_mul(10).wrapping_add(ar[ai] as i64 - '0' as i64);
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn.wrapping_mul(10).wrapping_add(br[bi] as i64 - '0' as i64);
            bi += 1;
        }
        if an != bn {
            return an < bn;
        }
        if ai != bi {
            return ai < bi;
        }
        return ar[i] < br[i];
    }
    ar.len() < br.len()
}

/// Sorts map entries in go-yaml v2's order (stable insertion sort like Go's sort.Sort is
/// not needed: keys are unique).
pub fn sorted_entries(m: &Map) -> Vec<&(String, Value)> {
    let mut v: Vec<&(String, Value)> = m.iter().collect();
    v.sort_by(|x, y| {
        if v2_key_less(&x.0, &y.0) {
            std::cmp::Ordering::Less
        } else if v2_key_less(&y.0, &x.0) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
    v
}

#[derive(Clone, Copy, PartialEq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_printable(c: char) -> bool {
    let u = c as u32;
    u == 0x0A
        || (0x20..=0x7E).contains(&u)
        || u == 0x85
        || (0xA0..=0xD7FF).contains(&u)
        || ((0xE000..=0xFFFD).contains(&u) && u != 0xFEFF)
}

struct Analysis {
    multiline: bool,
    block_plain: bool,
    single: bool,
    block: bool,
}

fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            multiline: false,
            block_plain: true,
            single: true,
            block: false,
        };
    }
    let chars: Vec<char> = s.chars().collect();
    let mut block_ind = false;
    let mut line_breaks = false;
    let mut special = false;
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut prev_space, mut prev_break) = (false, false);
    if s.starts_with("---") || s.starts_with("...") {
        block_ind = true;
    }
    let mut preceded_ws = true;
    let n = chars.len();
    for i in 0..n {
        let c = chars[i];
        let followed_ws =
            i + 1 >= n || matches!(chars[i + 1], ' ' | '\t') || is_break(chars[i + 1]);
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => block_ind = true,
                '?' | ':' | '-' if followed_ws => block_ind = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_ws => block_ind = true,
                '#' if preceded_ws => block_ind = true,
                _ => {}
            }
        }
        if !is_printable(c) {
            special = true;
        }
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i + 1 == n {
                trailing_space = true;
            }
            if prev_break {
                break_space = true;
            }
            prev_space = true;
            prev_break = false;
        } else if is_break(c) {
            line_breaks = true;
            if i == 0 {
                leading_break = true;
            }
            if i + 1 == n {
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
        preceded_ws = matches!(c, ' ' | '\t') || is_break(c);
    }
    let mut a = Analysis {
        multiline: line_breaks,
        block_plain: true,
        single: true,
        block: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain = false;
    }
    if trailing_space {
        a.block = false;
    }
    if break_space {
        a.block_plain = false;
        a.single = false;
    }
    if space_break || special {
        a.block_plain = false;
        a.single = false;
        a.block = false;
    }
    if line_breaks || block_ind {
        a.block_plain = false;
    }
    a
}

/// Would go-yaml v2 read this plain text back as something other than a string?
pub(crate) fn v2_resolves_non_string(s: &str) -> bool {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" | "n"
        | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" | ""
        | "~" | "null" | "Null" | "NULL" | ".nan" | ".NaN" | ".NAN" | ".inf" | ".Inf" | ".INF"
        | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF" => {
            return true;
        }
        _ => {}
    }
    let first = s.as_bytes()[0];
    if first == b'.' {
        return go_parse_float(s);
    }
    if first.is_ascii_digit() || first == b'-' || first == b'+' {
        if is_v2_timestamp(s) {
            return true;
        }
        let plain = s.replace('_', "");
        if plain.is_empty() {
            return false;
        }
        if go_parse_int(&plain).is_some() {
            return true;
        }
        if is_yaml_float(&plain) && in_float_range(&plain) {
            return true;
        }
        if let Some(r) = plain.strip_prefix("0b") {
            return !r.is_empty() && r.bytes().all(|b| b == b'0' || b == b'1');
        }
        if let Some(r) = plain.strip_prefix("-0b") {
            return !r.is_empty() && r.bytes().all(|b| b == b'0' || b == b'1');
        }
    }
    false
}

/// Go's ParseFloat on text starting with '.': decimal forms only.
fn go_parse_float(s: &str) -> bool {
    is_yaml_float(s) && in_float_range(s)
}

/// Whether Go's `ParseFloat` accepts the text: out of range (`1e400`) it fails, and
/// go-yaml keeps the scalar as a string.
fn in_float_range(s: &str) -> bool {
    s.parse::<f64>().is_ok_and(f64::is_finite)
}

fn is_v2_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let i = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if i != 4 || i == b.len() || b[i] != b'-' {
        return false;
    }
    // Date part "2006-1-2" then optional time; accept the common shapes.
    let (date, rest) = match s.find(['T', 't', ' ']) {
        Some(p) => (&s[..p], Some(&s[p + 1..])),
        None => (s, None),
    };
    let parts: Vec<&str> = date.split('-').collect();
    if parts.len() != 3
        || parts[1].is_empty()
        || parts[2].is_empty()
        || parts[1].len() > 2
        || parts[2].len() > 2
        || !parts.iter().all(|p| p.bytes().all(|c| c.is_ascii_digit()))
    {
        return false;
    }
    let m: u32 = parts[1].parse().unwrap_or(0);
    let d: u32 = parts[2].parse().unwrap_or(0);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return false;
    }
    match rest {
        None => true,
        Some(t) => {
            let t = t.trim_end_matches('Z');
            let hms: Vec<&str> = t.split(':').collect();
            hms.len() >= 3 && hms[0].bytes().all(|c| c.is_ascii_digit()) && !hms[0].is_empty()
        }
    }
}

struct Emitter {
    out: String,
    column: usize,
}

const BEST_WIDTH: usize = 80;

impl Emitter {
    fn put(&mut self, c: char) {
        self.out.push(c);
        if c == '\n' {
            self.column = 0;
        } else {
            self.column += 1;
        }
    }
    fn put_str(&mut self, s: &str) {
        for c in s.chars() {
            self.put(c);
        }
    }
    fn newline_indent(&mut self, indent: usize) {
        self.put('\n');
        for _ in 0..indent {
            self.put(' ');
        }
    }

    /// Writes a scalar string value after `key:`/`- ` (a space is written first).
    /// `indent` is the indent continuation lines use. `key` marks simple-key context.
    fn string(&mut self, s: &str, indent: usize, key: bool) {
        let can_plain = !v2_resolves_non_string(s) && !is_base60_float(s);
        let mut style = if s.contains('\n') {
            Style::Literal
        } else if can_plain {
            Style::Plain
        } else {
            Style::Double
        };
        let a = analyze(s);
        if key && a.multiline {
            style = Style::Double;
        }
        if style == Style::Plain && (!a.block_plain || (s.is_empty() && key)) {
            style = Style::Single;
        }
        if style == Style::Single && !a.single {
            style = Style::Double;
        }
        if style == Style::Literal && (!a.block || key) {
            style = Style::Double;
        }
        let allow_breaks = !key;
        match style {
            Style::Plain => {
                let chars: Vec<char> = s.chars().collect();
                let mut spaces = false;
                for i in 0..chars.len() {
                    let c = chars[i];
                    if c == ' ' {
                        if allow_breaks
                            && !spaces
                            && self.column > BEST_WIDTH
                            && chars.get(i + 1) != Some(&' ')
                        {
                            self.newline_indent(indent);
                        } else {
                            self.put(c);
                        }
                        spaces = true;
                    } else {
                        self.put(c);
                        spaces = false;
                    }
                }
            }
            Style::Single => {
                self.put('\'');
                let chars: Vec<char> = s.chars().collect();
                let mut spaces = false;
                let n = chars.len();
                for i in 0..n {
                    let c = chars[i];
                    if c == ' ' {
                        if allow_breaks
                            && !spaces
                            && self.column > BEST_WIDTH
                            && i > 0
                            && i < n - 1
                            && chars.get(i + 1) != Some(&' ')
                        {
                            self.newline_indent(indent);
                        } else {
                            self.put(c);
                        }
                        spaces = true;
                    } else {
                        if c == '\'' {
                            self.put('\'');
                        }
                        self.put(c);
                        spaces = false;
                    }
                }
                self.put('\'');
            }
            Style::Double => {
                self.put('"');
                let chars: Vec<char> = s.chars().collect();
                let n = chars.len();
                let mut spaces = false;
                for i in 0..n {
                    let c = chars[i];
                    if !is_printable(c) || c == '\u{FEFF}' || is_break(c) || c == '"' || c == '\\' {
                        self.put('\\');
                        let u = c as u32;
                        match u {
                            0x00 => self.put('0'),
                            0x07 => self.put('a'),
                            0x08 => self.put('b'),
                            0x09 => self.put('t'),
                            0x0A => self.put('n'),
                            0x0B => self.put('v'),
                            0x0C => self.put('f'),
                            0x0D => self.put('r'),
                            0x1B => self.put('e'),
                            0x22 => self.put('"'),
                            0x5C => self.put('\\'),
                            0x85 => self.put('N'),
                            0xA0 => self.put('_'),
                            0x2028 => self.put('L'),
                            0x2029 => self.put('P'),
                            _ => {
                                let s = if u <= 0xFF {
                                    format!("x{u:02X}")
                                } else if u <= 0xFFFF {
                                    format!("u{u:04X}")
                                } else {
                                    format!("U{u:08X}")
                                };
                                self.put_str(&s);
                            }
                        }
                        spaces = false;
                    } else if c == ' ' {
                        if allow_breaks && !spaces && self.column > BEST_WIDTH && i > 0 && i < n - 1
                        {
                            self.newline_indent(indent);
                            if chars.get(i + 1) == Some(&' ') {
                                self.put('\\');
                            }
                        } else {
                            self.put(c);
                        }
                        spaces = true;
                    } else {
                        self.put(c);
                        spaces = false;
                    }
                }
                self.put('"');
            }
            Style::Literal => {
                self.put('|');
                let first = s.chars().next().unwrap_or('x');
                if first == ' ' || is_break(first) {
                    self.put('2');
                }
                let chars: Vec<char> = s.chars().collect();
                let last = chars.last().copied();
                if !last.is_some_and(is_break) {
                    self.put('-');
                } else if chars.len() == 1 || is_break(chars[chars.len() - 2]) {
                    self.put('+');
                }
                self.put('\n');
                let mut breaks = true;
                for &c in &chars {
                    if is_break(c) {
                        self.put('\n');
                        breaks = true;
                    } else {
                        if breaks {
                            for _ in 0..indent {
                                self.put(' ');
                            }
                        }
                        self.put(c);
                        breaks = false;
                    }
                }
                // The block ends with its own newline if the text did; otherwise add one.
                if !breaks {
                    self.put('\n');
                }
                return;
            }
        }
        if !key {
            self.put('\n');
        }
    }

    /// Writes a scalar (non-collection) value followed by a newline.
    fn scalar(&mut self, v: &Value, indent: usize) {
        match v {
            Value::Null => self.put_str("null\n"),
            Value::Bool(b) => {
                self.put_str(if *b { "true" } else { "false" });
                self.put('\n');
            }
            Value::Int(i) => {
                self.put_str(&i.to_string());
                self.put('\n');
            }
            Value::UInt(i) => {
                self.put_str(&i.to_string());
                self.put('\n');
            }
            Value::Float(f) => {
                self.put_str(&float_text(*f));
                self.put('\n');
            }
            Value::Str(s) => self.string(s, indent, false),
            Value::Seq(s) if s.is_empty() => self.put_str("[]\n"),
            Value::Map(m) if m.is_empty() => self.put_str("{}\n"),
            _ => unreachable!("collections are handled by the caller"),
        }
    }

    fn is_block(v: &Value) -> bool {
        match v {
            Value::Seq(s) => !s.is_empty(),
            Value::Map(m) => !m.is_empty(),
            _ => false,
        }
    }

    /// A block mapping whose first key is written at the current position and the rest
    /// at `indent`.
    fn map(&mut self, m: &Map, indent: usize) {
        for (i, (k, v)) in sorted_entries(m).into_iter().enumerate() {
            if i > 0 {
                for _ in 0..indent {
                    self.put(' ');
                }
            }
            self.string(k, indent, true);
            self.put(':');
            match v {
                Value::Map(mm) if !mm.is_empty() => {
                    self.newline_indent(indent + 2);
                    self.map(mm, indent + 2);
                }
                Value::Seq(ss) if !ss.is_empty() => {
                    self.newline_indent(indent);
                    self.seq(ss, indent);
                }
                _ => {
                    self.put(' ');
                    self.scalar(v, indent + 2);
                }
            }
        }
    }

    /// A block sequence whose first dash is at the current position, the rest at `indent`.
    fn seq(&mut self, s: &[Value], indent: usize) {
        for (i, v) in s.iter().enumerate() {
            if i > 0 {
                for _ in 0..indent {
                    self.put(' ');
                }
            }
            self.put('-');
            if Self::is_block(v) {
                self.put(' ');
                match v {
                    Value::Map(mm) => self.map(mm, indent + 2),
                    Value::Seq(ss) => self.seq(ss, indent + 2),
                    _ => unreachable!("is_block"),
                }
            } else {
                self.put(' ');
                self.scalar(v, indent + 2);
            }
        }
    }
}

/// Emits one document the way `kustomize build` prints it.
pub fn emit_doc(v: &Value) -> String {
    let mut e = Emitter {
        out: String::new(),
        column: 0,
    };
    match v {
        Value::Map(m) if !m.is_empty() => e.map(m, 0),
        Value::Seq(s) if !s.is_empty() => e.seq(s, 0),
        other => e.scalar(other, 0),
    }
    e.out
}

/// Go's `encoding/json` string encoding (with HTML escaping), used for hashes.
pub fn go_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's `json.Marshal` of a decoded value (maps sorted by key bytes).
pub fn go_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::UInt(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&go_json_float(*f)),
        Value::Str(s) => go_json_string(s, out),
        Value::Seq(s) => {
            out.push('[');
            for (i, x) in s.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json(x, out);
            }
            out.push(']');
        }
        Value::Map(m) => {
            let mut es: Vec<&(String, Value)> = m.iter().collect();
            es.sort_by(|a, b| a.0.cmp(&b.0));
            out.push('{');
            for (i, (k, x)) in es.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json_string(k, out);
                out.push(':');
                go_json(x, out);
            }
            out.push('}');
        }
    }
}

fn go_json_float(f: f64) -> String {
    let a = f.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let s = format_go_g(f);
        // Go's JSON writes e-07 as e-7.
        s.replace("e-0", "e-").replace("e+0", "e+")
    } else if f.fract() == 0.0 {
        format!("{}", f as i128)
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(text: &str) -> Node {
        parse_docs(text)
            .expect("valid YAML")
            .remove(0)
            .node
            .expect("one document")
    }

    #[test]
    fn repeated_keys_by_mode() {
        let n = node("a: 1\nb:\n- c: x\n  c: y\n");
        let e = resolve_unique(&n).expect_err("a repeat is refused");
        assert_eq!(
            e.to_string(),
            "4:3: mapping key \"c\" already defined at line 3"
        );
        let first = resolve_first(&n).expect("first wins");
        assert_eq!(
            first.path(&["b"]).and_then(|b| match b {
                Value::Seq(s) => s[0].get("c").and_then(Value::as_str).map(str::to_owned),
                _ => None,
            }),
            Some("x".to_owned())
        );
        let last = resolve(&n).expect("last wins");
        assert_eq!(
            last.path(&["b"]).and_then(|b| match b {
                Value::Seq(s) => s[0].get("c").and_then(Value::as_str).map(str::to_owned),
                _ => None,
            }),
            Some("y".to_owned())
        );
        // A key merged in with `<<` and then written is no repeat.
        let merged = node("x: &m\n  a: 1\ny:\n  <<: *m\n  a: 2\n");
        assert!(resolve_unique(&merged).is_ok());
    }
}
