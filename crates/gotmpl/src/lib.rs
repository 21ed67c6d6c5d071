//! Go's `text/template`, natively: the lexer, parser and executor of Go 1.26's template
//! language, Go's `fmt` for the values templates see, the builtin functions, and a
//! function table the caller fills (Sprig and Helm's functions plug in there).
//!
//! This crate owns the template language only. It must not know about Helm (charts,
//! releases, `.Values`) and does no I/O: templates and data come from the caller, output
//! goes back as a string. Hostile templates stop at [`Limits`] with an error.
//!
//! ```
//! use driftless_gotmpl::{Templates, Value};
//! let mut t = Templates::new();
//! t.parse("x", "{{range $k, $v := .}}{{$k}}={{$v}} {{end}}").unwrap();
//! let data = Value::from_json(&serde_json::json!({"b": 2, "a": 1000000}));
//! assert_eq!(t.execute("x", &data).unwrap(), "a=1e+06 b=2 ");
//! ```

mod error;
mod exec;
pub mod fmt;
mod funcs;
mod lex;
mod parse;
pub mod sprig;
mod value;

use std::collections::HashMap;
use std::sync::Arc;

pub use error::{Error, ExecError, ExecErrorKind, ParseError};
pub use exec::{Call, FuncError};
pub use funcs::{ArgType, Func};
pub use value::{IntType, UintType, Value};

/// Go's `missingkey` option: what a missing map key yields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MissingKey {
    /// "no value", printed `<no value>` (Go's default, `missingkey=default|invalid`).
    #[default]
    Default,
    /// The zero value of the map's element type: nil for `map[string]any`, printed
    /// `<nil>` (Helm's setting).
    Zero,
    /// An execution error.
    Error,
}

/// Caps that make a hostile template fail cleanly instead of exhausting the machine.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Nested `template`/`include` calls. Go allows 100000, which a native stack cannot
    /// hold; real charts nest a few levels.
    pub max_template_depth: usize,
    /// Bytes of output of one execution.
    pub max_output_bytes: usize,
    /// Nodes walked, commands evaluated and loop iterations, together.
    pub max_steps: u64,
    /// Nested parentheses in one action (Go: 10000; the error message is Go's).
    pub max_paren_depth: usize,
    /// Nested `if`/`range`/`with`/`define` bodies in one template text (Go: unlimited).
    pub max_nesting: usize,
    /// Template calls, control-structure bodies and parenthesized pipelines active at
    /// once during execution; bounds native stack use across template calls.
    pub max_exec_nesting: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // Sized so that execution and parsing fit a 2 MiB thread stack (a tokio worker's)
        // even in a debug build; real charts stay far below these.
        Limits {
            max_template_depth: 100,
            max_output_bytes: 64 << 20,
            max_steps: 50_000_000,
            max_paren_depth: 100,
            max_nesting: 100,
            max_exec_nesting: 300,
        }
    }
}

/// A set of named templates sharing one function table and options, as a Go
/// `*template.Template` and its associated templates do.
#[derive(Clone, Default)]
pub struct Templates {
    trees: HashMap<String, Arc<parse::Tree>>,
    funcs: exec::FuncMap,
    missing_key: MissingKey,
    limits: Limits,
    left_delim: String,
    right_delim: String,
    parse_comments: bool,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut funcs: Vec<&String> = self.funcs.keys().collect();
        funcs.sort();
        f.debug_struct("Templates")
            .field("templates", &self.names())
            .field("funcs", &funcs)
            .field("missing_key", &self.missing_key)
            .field("limits", &self.limits)
            .finish()
    }
}

impl Templates {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a function; must happen before parsing templates that call it.
    pub fn add_func(&mut self, name: &str, f: Func) -> &mut Self {
        self.funcs.insert(name.to_string(), f);
        self
    }

    /// Go's `Delims`; empty strings mean the defaults `{{` and `}}`.
    pub fn delims(&mut self, left: &str, right: &str) -> &mut Self {
        self.left_delim = left.to_string();
        self.right_delim = right.to_string();
        self
    }

    pub fn set_missing_key(&mut self, m: MissingKey) -> &mut Self {
        self.missing_key = m;
        self
    }

    /// Go's `Option("missingkey=…")`.
    pub fn option(&mut self, opt: &str) -> Result<&mut Self, Error> {
        let m = match opt {
            "missingkey=default" | "missingkey=invalid" => MissingKey::Default,
            "missingkey=zero" => MissingKey::Zero,
            "missingkey=error" => MissingKey::Error,
            _ if opt.starts_with("missingkey=") => {
                return Err(Error::Usage(format!("unrecognized option: {opt}")));
            }
            _ => return Err(Error::Usage(format!("unrecognized option: {opt}"))),
        };
        self.missing_key = m;
        Ok(self)
    }

    pub fn set_limits(&mut self, limits: Limits) -> &mut Self {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Keep comments as nodes (Go's `parse.ParseComments`); they never print.
    pub fn set_parse_comments(&mut self, on: bool) -> &mut Self {
        self.parse_comments = on;
        self
    }

    /// Parses `text` as template `name`, adding its `define`d templates to the set.
    /// A later definition replaces an earlier one, except that an empty body never
    /// replaces a non-empty one (Go's rule).
    pub fn parse(&mut self, name: &str, text: &str) -> Result<&mut Self, Error> {
        let funcs = &self.funcs;
        let has = |n: &str| funcs.contains_key(n) || funcs::builtin(n).is_some();
        let cfg = parse::ParseConfig {
            left_delim: &self.left_delim,
            right_delim: &self.right_delim,
            has_function: &has,
            max_paren_depth: self.limits.max_paren_depth,
            max_nesting: self.limits.max_nesting,
            parse_comments: self.parse_comments,
            skip_func_check: false,
        };
        let trees = parse::parse(name, text, &cfg)?;
        for t in trees {
            if let Some(old) = self.trees.get(&t.name)
                && parse::is_empty_list(&t.root)
                && !parse::is_empty_list(&old.root)
            {
                continue;
            }
            self.trees.insert(t.name.clone(), Arc::new(t));
        }
        Ok(self)
    }

    /// Whether a template of that name is defined.
    pub fn has(&self, name: &str) -> bool {
        self.trees.contains_key(name)
    }

    /// The defined template names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.trees.keys().cloned().collect();
        v.sort();
        v
    }

    /// Executes template `name` with `data` as dot and `$`.
    pub fn execute(&self, name: &str, data: &Value) -> Result<String, Error> {
        let Some(tree) = self.trees.get(name) else {
            return Err(Error::Exec(ExecError {
                template: name.to_string(),
                message: format!(
                    "template: no template {} associated with template {}",
                    fmt::quote(name, false),
                    fmt::quote(name, false)
                ),
                kind: ExecErrorKind::Template,
            }));
        };
        exec::State::new(self, tree).run(data)
    }

    /// Go's parse tree printed back (`Tree.Root.String()`), text quoted when asked — for
    /// tests against Go's parse tables.
    pub fn tree_string(&self, name: &str, quote_text: bool) -> Option<String> {
        let t = self.trees.get(name)?;
        let mut s = String::new();
        parse::write_list(&mut s, &t.root, quote_text);
        Some(s)
    }
}

/// Hooks for checking this crate against Go's own test tables. Not a stable API.
#[doc(hidden)]
pub mod testing {
    use crate::lex::{LexOptions, Tok, lex as run_lex};

    fn go_name(t: Tok) -> &'static str {
        match t {
            Tok::Error => "itemError",
            Tok::Bool => "itemBool",
            Tok::Char => "itemChar",
            Tok::CharConstant => "itemCharConstant",
            Tok::Comment => "itemComment",
            Tok::Complex => "itemComplex",
            Tok::Assign => "itemAssign",
            Tok::Declare => "itemDeclare",
            Tok::Eof => "itemEOF",
            Tok::Field => "itemField",
            Tok::Identifier => "itemIdentifier",
            Tok::LeftDelim => "itemLeftDelim",
            Tok::LeftParen => "itemLeftParen",
            Tok::Number => "itemNumber",
            Tok::Pipe => "itemPipe",
            Tok::RawString => "itemRawString",
            Tok::RightDelim => "itemRightDelim",
            Tok::RightParen => "itemRightParen",
            Tok::Space => "itemSpace",
            Tok::String => "itemString",
            Tok::Text => "itemText",
            Tok::Variable => "itemVariable",
            Tok::Block => "itemBlock",
            Tok::Break => "itemBreak",
            Tok::Continue => "itemContinue",
            Tok::Dot => "itemDot",
            Tok::Define => "itemDefine",
            Tok::Else => "itemElse",
            Tok::End => "itemEnd",
            Tok::If => "itemIf",
            Tok::Nil => "itemNil",
            Tok::Range => "itemRange",
            Tok::Template => "itemTemplate",
            Tok::With => "itemWith",
        }
    }

    /// Lexes as Go's lex tests do (comments emitted, break/continue keywords), up to and
    /// including the first EOF or error: (Go item type, byte offset, text, line).
    pub fn lex(input: &str, left: &str, right: &str) -> Vec<(&'static str, usize, String, usize)> {
        let opts = LexOptions {
            break_ok: true,
            continue_ok: true,
            emit_comment: true,
        };
        let mut out = Vec::new();
        for t in run_lex(input, left, right, &opts) {
            let end = matches!(t.kind, Tok::Eof | Tok::Error);
            out.push((go_name(t.kind), t.pos, t.val, t.line));
            if end {
                break;
            }
        }
        out
    }
}
