//! The parser: tokens to trees, one tree per template name (`define` and `block` add
//! more), with Go's error messages (`template: NAME:LINE: …`) and node printing (the
//! `String()` forms Go's errors quote, e.g. `<.Values.x>`).

use std::fmt::Write as _;
use std::sync::Arc;

use crate::error::ParseError;
use crate::lex::{LexOptions, Tok, Token, lex};

/// Where the source of a tree came from, for error positions.
#[derive(Debug)]
pub(crate) struct Source {
    /// The name given to the `parse` call that read this text (Go's `ParseName`).
    pub parse_name: String,
    pub text: String,
}

impl Source {
    /// Go's `ErrorContext` location: `NAME:LINE:COL`, COL a byte offset in the line.
    pub fn location(&self, pos: usize) -> String {
        let pos = pos.min(self.text.len());
        let before = &self.text[..pos];
        let (line, col) = match before.rfind('\n') {
            Some(nl) => (before.matches('\n').count() + 1, pos - (nl + 1)),
            None => (1, pos),
        };
        format!("{}:{}:{}", self.parse_name, line, col)
    }
}

#[derive(Debug)]
pub(crate) struct Tree {
    pub name: String,
    pub source: Arc<Source>,
    pub root: List,
}

#[derive(Debug, Default)]
pub(crate) struct List {
    pub nodes: Vec<Node>,
}

#[derive(Debug)]
pub(crate) enum Node {
    Text(String),
    Comment(String),
    Action(Pipe),
    If(Branch),
    Range(Branch),
    With(Branch),
    Template {
        pos: usize,
        name: String,
        pipe: Option<Pipe>,
    },
    Break,
    Continue,
}

#[derive(Debug)]
pub(crate) struct Branch {
    pub pos: usize,
    pub pipe: Pipe,
    pub list: List,
    pub else_list: Option<List>,
}

#[derive(Debug)]
pub(crate) struct Pipe {
    pub pos: usize,
    pub is_assign: bool,
    pub decl: Vec<String>,
    pub cmds: Vec<Command>,
}

#[derive(Debug)]
pub(crate) struct Command {
    pub pos: usize,
    pub args: Vec<Arg>,
}

#[derive(Debug)]
pub(crate) struct Number {
    pub text: String,
    pub int: Option<i64>,
    pub uint: Option<u64>,
    pub float: Option<f64>,
    pub complex: Option<(f64, f64)>,
}

#[derive(Debug)]
pub(crate) enum Arg {
    Field {
        pos: usize,
        idents: Vec<String>,
    },
    Variable {
        pos: usize,
        idents: Vec<String>,
    },
    Identifier {
        pos: usize,
        name: String,
    },
    Dot {
        pos: usize,
    },
    Nil {
        pos: usize,
    },
    Bool {
        pos: usize,
        val: bool,
    },
    Number {
        pos: usize,
        num: Box<Number>,
    },
    String {
        pos: usize,
        quoted: String,
        text: String,
    },
    Pipe(Box<Pipe>),
    Chain {
        pos: usize,
        node: Box<Arg>,
        fields: Vec<String>,
    },
}

impl Arg {
    pub fn pos(&self) -> usize {
        match self {
            Arg::Field { pos, .. }
            | Arg::Variable { pos, .. }
            | Arg::Identifier { pos, .. }
            | Arg::Dot { pos }
            | Arg::Nil { pos }
            | Arg::Bool { pos, .. }
            | Arg::Number { pos, .. }
            | Arg::String { pos, .. }
            | Arg::Chain { pos, .. } => *pos,
            Arg::Pipe(p) => p.pos,
        }
    }
}

// ---- printing, as Go's String() methods do (text as %s, or %q in Go's parse tests) ----

pub(crate) fn write_list(out: &mut String, l: &List, quote_text: bool) {
    for n in &l.nodes {
        write_node(out, n, quote_text);
    }
}

pub(crate) fn write_node(out: &mut String, n: &Node, quote_text: bool) {
    match n {
        Node::Text(t) => {
            if quote_text {
                out.push_str(&crate::fmt::quote(t, false));
            } else {
                out.push_str(t);
            }
        }
        Node::Comment(t) => {
            let _ = write!(out, "{{{{{t}}}}}");
        }
        Node::Action(p) => {
            out.push_str("{{");
            write_pipe(out, p);
            out.push_str("}}");
        }
        Node::If(b) => write_branch(out, "if", b, quote_text),
        Node::Range(b) => write_branch(out, "range", b, quote_text),
        Node::With(b) => write_branch(out, "with", b, quote_text),
        Node::Template { name, pipe, .. } => {
            out.push_str("{{template ");
            out.push_str(&crate::fmt::quote(name, false));
            if let Some(p) = pipe {
                out.push(' ');
                write_pipe(out, p);
            }
            out.push_str("}}");
        }
        Node::Break => out.push_str("{{break}}"),
        Node::Continue => out.push_str("{{continue}}"),
    }
}

fn write_branch(out: &mut String, word: &str, b: &Branch, quote_text: bool) {
    let _ = write!(out, "{{{{{word} ");
    write_pipe(out, &b.pipe);
    out.push_str("}}");
    write_list(out, &b.list, quote_text);
    if let Some(e) = &b.else_list {
        out.push_str("{{else}}");
        write_list(out, e, quote_text);
    }
    out.push_str("{{end}}");
}

pub(crate) fn write_pipe(out: &mut String, p: &Pipe) {
    if !p.decl.is_empty() {
        out.push_str(&p.decl.join(", "));
        out.push_str(if p.is_assign { " = " } else { " := " });
    }
    for (i, c) in p.cmds.iter().enumerate() {
        if i > 0 {
            out.push_str(" | ");
        }
        write_command(out, c);
    }
}

pub(crate) fn write_command(out: &mut String, c: &Command) {
    for (i, a) in c.args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if let Arg::Pipe(p) = a {
            out.push('(');
            write_pipe(out, p);
            out.push(')');
        } else {
            write_arg(out, a);
        }
    }
}

pub(crate) fn write_arg(out: &mut String, a: &Arg) {
    match a {
        Arg::Field { idents, .. } => {
            for i in idents {
                out.push('.');
                out.push_str(i);
            }
        }
        Arg::Variable { idents, .. } => out.push_str(&idents.join(".")),
        Arg::Identifier { name, .. } => out.push_str(name),
        Arg::Dot { .. } => out.push('.'),
        Arg::Nil { .. } => out.push_str("nil"),
        Arg::Bool { val, .. } => out.push_str(if *val { "true" } else { "false" }),
        Arg::Number { num, .. } => out.push_str(&num.text),
        Arg::String { quoted, .. } => out.push_str(quoted),
        Arg::Pipe(p) => write_pipe(out, p),
        Arg::Chain { node, fields, .. } => {
            if let Arg::Pipe(p) = &**node {
                out.push('(');
                write_pipe(out, p);
                out.push(')');
            } else {
                write_arg(out, node);
            }
            for f in fields {
                out.push('.');
                out.push_str(f);
            }
        }
    }
}

pub(crate) fn arg_string(a: &Arg) -> String {
    let mut s = String::new();
    write_arg(&mut s, a);
    s
}

/// Go's `IsEmptyTree`: only space text and comments.
pub(crate) fn is_empty_list(l: &List) -> bool {
    l.nodes.iter().all(|n| match n {
        Node::Text(t) => t.trim_matches(|c: char| c.is_whitespace()).is_empty(),
        Node::Comment(_) => true,
        _ => false,
    })
}

// ---- the parser ----

/// What the parser needs from the caller.
pub(crate) struct ParseConfig<'a> {
    pub left_delim: &'a str,
    pub right_delim: &'a str,
    pub has_function: &'a dyn Fn(&str) -> bool,
    /// Go's limit on parenthesis nesting (10000 in Go; ours is lower because deep
    /// recursion would overflow a thread's stack before Go's limit).
    pub max_paren_depth: usize,
    /// Nesting of `if`/`range`/`with`/`define` bodies; Go has no limit, we need one for
    /// the same reason.
    pub max_nesting: usize,
    pub parse_comments: bool,
    pub skip_func_check: bool,
}

type PResult<T> = Result<T, ParseError>;

struct Parser<'a> {
    toks: Vec<Token>,
    cur: usize,
    /// Highest token index handed out: Go reports the line of its newest lexed token.
    seen: usize,
    name: String,
    source: Arc<Source>,
    cfg: &'a ParseConfig<'a>,
    vars: Vec<String>,
    range_depth: usize,
    paren_depth: usize,
    nesting: usize,
    action_line: usize,
    trees: Vec<Tree>,
}

/// Parses `text` as template `name`; returns every tree it defines, the main one last.
pub(crate) fn parse(name: &str, text: &str, cfg: &ParseConfig<'_>) -> PResult<Vec<Tree>> {
    let opts = LexOptions {
        break_ok: !(cfg.has_function)("break"),
        continue_ok: !(cfg.has_function)("continue"),
        emit_comment: cfg.parse_comments,
    };
    let toks = lex(text, cfg.left_delim, cfg.right_delim, &opts);
    let source = Arc::new(Source {
        parse_name: name.to_string(),
        text: text.to_string(),
    });
    let mut p = Parser {
        toks,
        cur: 0,
        seen: 0,
        name: name.to_string(),
        source,
        cfg,
        vars: vec!["$".into()],
        range_depth: 0,
        paren_depth: 0,
        nesting: 0,
        action_line: 0,
        trees: Vec::new(),
    };
    let root = p.parse_top()?;
    p.add_tree(name.to_string(), root)?;
    Ok(p.trees)
}

impl Parser<'_> {
    fn next(&mut self) -> Token {
        let t = self.toks[self.cur.min(self.toks.len() - 1)].clone();
        self.seen = self.seen.max(self.cur);
        if self.cur < self.toks.len() - 1 {
            self.cur += 1;
        } else {
            // Past the end: Eof again (the lexer keeps returning it).
            self.cur = self.toks.len();
        }
        t
    }

    fn backup(&mut self) {
        self.cur -= 1;
    }

    fn peek(&mut self) -> Token {
        let t = self.next();
        self.backup();
        t
    }

    fn next_non_space(&mut self) -> Token {
        loop {
            let t = self.next();
            if t.kind != Tok::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> Token {
        let t = self.next_non_space();
        self.backup();
        t
    }

    fn errorf(&self, msg: impl Into<String>) -> ParseError {
        let line = self.toks[self.seen.min(self.toks.len() - 1)].line;
        ParseError {
            message: format!("template: {}:{}: {}", self.name, line, msg.into()),
        }
    }

    fn unexpected(&self, tok: &Token, context: &str) -> ParseError {
        if tok.kind == Tok::Error {
            let mut extra = String::new();
            if self.action_line != 0 && self.action_line != tok.line {
                extra = format!(" in action started at {}:{}", self.name, self.action_line);
                if tok.val.ends_with(" action") {
                    extra = extra[" in action".len()..].to_string();
                }
            }
            return self.errorf(format!("{tok}{extra}"));
        }
        self.errorf(format!("unexpected {tok} in {context}"))
    }

    fn expect(&mut self, kind: Tok, context: &str) -> PResult<Token> {
        let t = self.next_non_space();
        if t.kind != kind {
            return Err(self.unexpected(&t, context));
        }
        Ok(t)
    }

    fn add_tree(&mut self, name: String, root: List) -> PResult<()> {
        if let Some(i) = self.trees.iter().position(|t| t.name == name) {
            if is_empty_list(&self.trees[i].root) {
                self.trees[i].root = root;
                return Ok(());
            }
            if !is_empty_list(&root) {
                return Err(self.errorf(format!(
                    "template: multiple definition of template {}",
                    crate::fmt::quote(&name, false)
                )));
            }
            return Ok(());
        }
        self.trees.push(Tree {
            name,
            source: self.source.clone(),
            root,
        });
        Ok(())
    }

    fn parse_top(&mut self) -> PResult<List> {
        let mut root = List::default();
        while self.peek().kind != Tok::Eof {
            if self.peek().kind == Tok::LeftDelim {
                self.next();
                if self.next_non_space().kind == Tok::Define {
                    self.parse_definition()?;
                    continue;
                }
                // Go's backup2: re-read the delimiter and the token after it.
                self.backup();
                while self.toks[self.cur - 1].kind == Tok::Space {
                    self.backup();
                }
                self.backup();
            }
            let n = self.text_or_action()?;
            match n {
                Ctl::End => return Err(self.errorf("unexpected {{end}}")),
                Ctl::Else => return Err(self.errorf("unexpected {{else}}")),
                Ctl::Node(n) => root.nodes.push(n),
            }
        }
        Ok(root)
    }

    fn parse_definition(&mut self) -> PResult<()> {
        let context = "define clause";
        let t = self.next_non_space();
        if t.kind != Tok::String && t.kind != Tok::RawString {
            return Err(self.unexpected(&t, context));
        }
        let name = unquote(&t.val).map_err(|e| self.errorf(e))?;
        self.expect(Tok::RightDelim, context)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let (list, end) = self.item_list()?;
        self.vars = saved_vars;
        if !matches!(end, Ctl::End) {
            return Err(self.errorf(format!("unexpected {} in {context}", ctl_string(&end))));
        }
        self.add_tree(name, list)
    }

    fn item_list(&mut self) -> PResult<(List, Ctl)> {
        self.nesting += 1;
        if self.nesting > self.cfg.max_nesting {
            return Err(self.errorf("max nesting depth exceeded"));
        }
        let mut list = List::default();
        while self.peek_non_space().kind != Tok::Eof {
            match self.text_or_action()? {
                Ctl::Node(n) => list.nodes.push(n),
                end => {
                    self.nesting -= 1;
                    return Ok((list, end));
                }
            }
        }
        Err(self.errorf("unexpected EOF"))
    }

    fn text_or_action(&mut self) -> PResult<Ctl> {
        let t = self.next_non_space();
        match t.kind {
            Tok::Text => Ok(Ctl::Node(Node::Text(t.val))),
            Tok::LeftDelim => {
                self.action_line = t.line;
                let r = self.action();
                self.action_line = 0;
                r
            }
            Tok::Comment => Ok(Ctl::Node(Node::Comment(t.val))),
            _ => Err(self.unexpected(&t, "input")),
        }
    }

    fn action(&mut self) -> PResult<Ctl> {
        let t = self.next_non_space();
        match t.kind {
            Tok::Block => return self.block_control().map(Ctl::Node),
            Tok::Break => {
                return self
                    .break_control("{{break}}")
                    .map(|_| Ctl::Node(Node::Break));
            }
            Tok::Continue => {
                return self
                    .break_control("{{continue}}")
                    .map(|_| Ctl::Node(Node::Continue));
            }
            Tok::Else => return self.else_control(),
            Tok::End => {
                self.expect(Tok::RightDelim, "end")?;
                return Ok(Ctl::End);
            }
            Tok::If => return self.if_control().map(Ctl::Node),
            Tok::Range => {
                let b = self.parse_control("range")?;
                return Ok(Ctl::Node(Node::Range(b)));
            }
            Tok::Template => return self.template_control().map(Ctl::Node),
            Tok::With => return self.with_control().map(Ctl::Node),
            _ => {}
        }
        self.backup();
        let pipe = self.pipeline("command", Tok::RightDelim)?;
        Ok(Ctl::Node(Node::Action(pipe)))
    }

    fn break_control(&mut self, what: &str) -> PResult<()> {
        let t = self.next_non_space();
        if t.kind != Tok::RightDelim {
            return Err(self.unexpected(&t, what));
        }
        if self.range_depth == 0 {
            return Err(self.errorf(format!("{what} outside {{{{range}}}}")));
        }
        Ok(())
    }

    fn if_control(&mut self) -> PResult<Node> {
        Ok(Node::If(self.parse_control("if")?))
    }

    fn with_control(&mut self) -> PResult<Node> {
        Ok(Node::With(self.parse_control("with")?))
    }

    fn else_control(&mut self) -> PResult<Ctl> {
        let p = self.peek_non_space();
        if p.kind == Tok::If || p.kind == Tok::With {
            return Ok(Ctl::Else);
        }
        self.expect(Tok::RightDelim, "else")?;
        Ok(Ctl::Else)
    }

    fn parse_control(&mut self, context: &str) -> PResult<Branch> {
        let nvars = self.vars.len();
        let pipe = self.pipeline(context, Tok::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let (list, next) = self.item_list()?;
        if context == "range" {
            self.range_depth -= 1;
        }
        let mut else_list = None;
        if let Ctl::Else = next {
            if context == "if" && self.peek().kind == Tok::If {
                self.next();
                else_list = Some(List {
                    nodes: vec![self.if_control()?],
                });
            } else if context == "with" && self.peek().kind == Tok::With {
                self.next();
                else_list = Some(List {
                    nodes: vec![self.with_control()?],
                });
            } else {
                let (l, next) = self.item_list()?;
                if !matches!(next, Ctl::End) {
                    return Err(self.errorf(format!("expected end; found {}", ctl_string(&next))));
                }
                else_list = Some(l);
            }
        }
        self.vars.truncate(nvars);
        Ok(Branch {
            pos: pipe.pos,
            pipe,
            list,
            else_list,
        })
    }

    fn block_control(&mut self) -> PResult<Node> {
        let context = "block clause";
        let t = self.next_non_space();
        let name = self.template_name(&t, context)?;
        let pipe = self.pipeline(context, Tok::RightDelim)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let saved_range = std::mem::replace(&mut self.range_depth, 0);
        let (list, end) = self.item_list()?;
        self.vars = saved_vars;
        self.range_depth = saved_range;
        if !matches!(end, Ctl::End) {
            return Err(self.errorf(format!("unexpected {} in {context}", ctl_string(&end))));
        }
        self.add_tree(name.clone(), list)?;
        Ok(Node::Template {
            pos: t.pos,
            name,
            pipe: Some(pipe),
        })
    }

    fn template_control(&mut self) -> PResult<Node> {
        let context = "template clause";
        let t = self.next_non_space();
        let name = self.template_name(&t, context)?;
        let mut pipe = None;
        if self.next_non_space().kind != Tok::RightDelim {
            self.backup();
            pipe = Some(self.pipeline(context, Tok::RightDelim)?);
        }
        Ok(Node::Template {
            pos: t.pos,
            name,
            pipe,
        })
    }

    fn template_name(&self, t: &Token, context: &str) -> PResult<String> {
        match t.kind {
            Tok::String | Tok::RawString => unquote(&t.val).map_err(|e| self.errorf(e)),
            _ => Err(self.unexpected(t, context)),
        }
    }

    fn pipeline(&mut self, context: &str, end: Tok) -> PResult<Pipe> {
        let first = self.peek_non_space();
        let mut pipe = Pipe {
            pos: first.pos,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        'decls: loop {
            let v = self.peek_non_space();
            if v.kind != Tok::Variable {
                break;
            }
            let vstart = self.cur;
            self.next_non_space();
            let after = self.peek();
            let next = self.peek_non_space();
            match next.kind {
                Tok::Assign | Tok::Declare => {
                    pipe.is_assign = next.kind == Tok::Assign;
                    self.next_non_space();
                    pipe.decl.push(v.val.clone());
                    self.vars.push(v.val);
                }
                Tok::Char if next.val == "," => {
                    self.next_non_space();
                    pipe.decl.push(v.val.clone());
                    self.vars.push(v.val);
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space().kind {
                            Tok::Variable | Tok::RightDelim | Tok::RightParen => continue 'decls,
                            _ => return Err(self.errorf("range can only initialize variables")),
                        }
                    }
                    return Err(self.errorf(format!("too many declarations in {context}")));
                }
                _ => {
                    // Not a declaration: put the variable (and a space after it) back.
                    let _ = after;
                    self.cur = vstart;
                }
            }
            break;
        }
        loop {
            let t = self.next_non_space();
            if t.kind == end {
                self.check_pipeline(&pipe, context)?;
                return Ok(pipe);
            }
            match t.kind {
                Tok::Bool
                | Tok::CharConstant
                | Tok::Complex
                | Tok::Dot
                | Tok::Field
                | Tok::Identifier
                | Tok::Number
                | Tok::Nil
                | Tok::RawString
                | Tok::String
                | Tok::Variable
                | Tok::LeftParen => {
                    self.backup();
                    let c = self.command()?;
                    pipe.cmds.push(c);
                }
                _ => return Err(self.unexpected(&t, context)),
            }
        }
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str) -> PResult<()> {
        if pipe.cmds.is_empty() {
            return Err(self.errorf(format!("missing value for {context}")));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                c.args[0],
                Arg::Bool { .. }
                    | Arg::Dot { .. }
                    | Arg::Nil { .. }
                    | Arg::Number { .. }
                    | Arg::String { .. }
            ) {
                return Err(self.errorf(format!(
                    "non executable command in pipeline stage {}",
                    i + 1
                )));
            }
        }
        Ok(())
    }

    fn command(&mut self) -> PResult<Command> {
        let pos = self.peek_non_space().pos;
        let mut cmd = Command {
            pos,
            args: Vec::new(),
        };
        loop {
            self.peek_non_space();
            if let Some(op) = self.operand()? {
                cmd.args.push(op);
            }
            let t = self.next();
            match t.kind {
                Tok::Space => continue,
                Tok::RightDelim | Tok::RightParen => self.backup(),
                Tok::Pipe => {}
                _ => return Err(self.unexpected(&t, "operand")),
            }
            break;
        }
        if cmd.args.is_empty() {
            return Err(self.errorf("empty command"));
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().kind != Tok::Field {
            return Ok(Some(node));
        }
        let pos = self.peek().pos;
        let mut fields = Vec::new();
        while self.peek().kind == Tok::Field {
            let f = self.next().val;
            fields.extend(f[1..].split('.').map(str::to_string));
        }
        Ok(Some(match node {
            Arg::Field { mut idents, .. } => {
                idents.extend(fields);
                Arg::Field { pos, idents }
            }
            Arg::Variable { mut idents, .. } => {
                idents.extend(fields);
                Arg::Variable { pos, idents }
            }
            Arg::Bool { .. }
            | Arg::String { .. }
            | Arg::Number { .. }
            | Arg::Nil { .. }
            | Arg::Dot { .. } => {
                return Err(self.errorf(format!(
                    "unexpected . after term {}",
                    crate::fmt::quote(&arg_string(&node), false)
                )));
            }
            other => Arg::Chain {
                pos,
                node: Box::new(other),
                fields,
            },
        }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let t = self.next_non_space();
        Ok(Some(match t.kind {
            Tok::Identifier => {
                if !self.cfg.skip_func_check && !(self.cfg.has_function)(&t.val) {
                    return Err(self.errorf(format!(
                        "function {} not defined",
                        crate::fmt::quote(&t.val, false)
                    )));
                }
                Arg::Identifier {
                    pos: t.pos,
                    name: t.val,
                }
            }
            Tok::Dot => Arg::Dot { pos: t.pos },
            Tok::Nil => Arg::Nil { pos: t.pos },
            Tok::Variable => {
                let idents: Vec<String> = t.val.split('.').map(str::to_string).collect();
                if !self.vars.iter().any(|v| *v == idents[0]) {
                    return Err(self.errorf(format!(
                        "undefined variable {}",
                        crate::fmt::quote(&idents[0], false)
                    )));
                }
                Arg::Variable { pos: t.pos, idents }
            }
            Tok::Field => Arg::Field {
                pos: t.pos,
                idents: t.val[1..].split('.').map(str::to_string).collect(),
            },
            Tok::Bool => Arg::Bool {
                pos: t.pos,
                val: t.val == "true",
            },
            Tok::CharConstant | Tok::Complex | Tok::Number => {
                let num = parse_number(&t.val, t.kind).map_err(|e| self.errorf(e))?;
                Arg::Number {
                    pos: t.pos,
                    num: Box::new(num),
                }
            }
            Tok::LeftParen => {
                if self.paren_depth >= self.cfg.max_paren_depth {
                    return Err(self.errorf("max expression depth exceeded"));
                }
                self.paren_depth += 1;
                let p = self.pipeline("parenthesized pipeline", Tok::RightParen);
                self.paren_depth -= 1;
                Arg::Pipe(Box::new(p?))
            }
            Tok::String | Tok::RawString => {
                let text = unquote(&t.val).map_err(|e| self.errorf(e))?;
                Arg::String {
                    pos: t.pos,
                    quoted: t.val,
                    text,
                }
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }
}

/// A node or the `{{end}}`/`{{else}}` that closes a list.
enum Ctl {
    Node(Node),
    End,
    Else,
}

fn ctl_string(c: &Ctl) -> String {
    match c {
        Ctl::End => "{{end}}".into(),
        Ctl::Else => "{{else}}".into(),
        Ctl::Node(n) => {
            let mut s = String::new();
            write_node(&mut s, n, false);
            s
        }
    }
}

// ---- literals ----

/// Go's strconv.Unquote for "…" and `…` literals.
pub(crate) fn unquote(s: &str) -> Result<String, String> {
    let bad = || "invalid syntax".to_string();
    if s.len() < 2 {
        return Err(bad());
    }
    if s.starts_with('`') {
        if !s.ends_with('`') {
            return Err(bad());
        }
        // Go drops carriage returns from raw strings.
        return Ok(s[1..s.len() - 1].replace('\r', ""));
    }
    if !s.starts_with('"') || !s.ends_with('"') {
        return Err(bad());
    }
    let body = &s[1..s.len() - 1];
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    while !rest.is_empty() {
        let (bytes, tail) = unquote_char(rest, b'"').map_err(|_| bad())?;
        out.extend_from_slice(&bytes);
        rest = tail;
    }
    String::from_utf8(out)
        .map_err(|_| "string literal is not valid UTF-8 (not supported)".to_string())
}

/// One character of a quoted literal: its bytes and the rest.
fn unquote_char(s: &str, quote: u8) -> Result<(Vec<u8>, &str), ()> {
    let b = s.as_bytes();
    let c = s.chars().next().ok_or(())?;
    if c as u32 == quote as u32 && (quote == b'\'' || quote == b'"') {
        return Err(());
    }
    if c != '\\' {
        if c == '\n' {
            return Err(());
        }
        return Ok((c.to_string().into_bytes(), &s[c.len_utf8()..]));
    }
    if b.len() < 2 {
        return Err(());
    }
    let e = b[1];
    let rest = &s[2..];
    let simple = |v: u8| Ok((vec![v], rest));
    match e {
        b'a' => simple(7),
        b'b' => simple(8),
        b'f' => simple(12),
        b'n' => simple(b'\n'),
        b'r' => simple(b'\r'),
        b't' => simple(b'\t'),
        b'v' => simple(11),
        b'\\' => simple(b'\\'),
        b'\'' | b'"' => {
            if e != quote {
                return Err(());
            }
            simple(e)
        }
        b'x' | b'u' | b'U' => {
            let n = match e {
                b'x' => 2,
                b'u' => 4,
                _ => 8,
            };
            if rest.len() < n {
                return Err(());
            }
            let hex = &rest[..n];
            let v = u32::from_str_radix(hex, 16).map_err(|_| ())?;
            if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(());
            }
            if e == b'x' {
                return Ok((vec![v as u8], &rest[n..]));
            }
            let ch = char::from_u32(v).ok_or(())?;
            Ok((ch.to_string().into_bytes(), &rest[n..]))
        }
        b'0'..=b'7' => {
            if rest.len() < 2 {
                return Err(());
            }
            let oct = &s[1..4];
            if !oct.bytes().all(|c| (b'0'..=b'7').contains(&c)) {
                return Err(());
            }
            let v = u32::from_str_radix(oct, 8).map_err(|_| ())?;
            if v > 255 {
                return Err(());
            }
            Ok((vec![v as u8], &s[4..]))
        }
        _ => Err(()),
    }
}

/// Go's `underscoreOK`: underscores only between digits or after a base prefix.
fn underscore_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut saw = b'^';
    let mut i = 0;
    if !b.is_empty() && (b[0] == b'-' || b[0] == b'+') {
        i = 1;
    }
    let mut hex = false;
    if b.len() - i >= 2 && b[i] == b'0' && matches!(b[i + 1] | 0x20, b'b' | b'o' | b'x') {
        hex = (b[i + 1] | 0x20) == b'x';
        i += 2;
        saw = b'0';
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

fn parse_uint_go(text: &str) -> Option<u64> {
    // strconv.ParseUint(text, 0, 64): no sign allowed.
    if text.starts_with(['+', '-']) {
        return None;
    }
    parse_unsigned_magnitude(text)
}

fn parse_unsigned_magnitude(text: &str) -> Option<u64> {
    if text.contains('_') && !underscore_ok(text) {
        return None;
    }
    let t: String = text.chars().filter(|&c| c != '_').collect();
    let lower = t.to_ascii_lowercase();
    let (digits, radix) = if let Some(r) = lower.strip_prefix("0x") {
        (r.to_string(), 16)
    } else if let Some(r) = lower.strip_prefix("0b") {
        (r.to_string(), 2)
    } else if let Some(r) = lower.strip_prefix("0o") {
        (r.to_string(), 8)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (lower[1..].to_string(), 8)
    } else {
        (lower, 10)
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    u64::from_str_radix(&digits, radix).ok()
}

fn parse_int_go(text: &str) -> Option<i64> {
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if body.starts_with(['+', '-']) {
        return None;
    }
    let u = parse_unsigned_magnitude(body)?;
    if neg {
        if u <= i64::MAX as u64 + 1 {
            Some((u as i128).wrapping_neg() as i64)
        } else {
            None
        }
    } else if u <= i64::MAX as u64 {
        Some(u as i64)
    } else {
        None
    }
}

/// Go's strconv.ParseFloat(s, 64) for the syntax the lexer lets through.
pub(crate) fn parse_float_go(text: &str) -> Option<f64> {
    if text.contains('_') && !underscore_ok(text) {
        return None;
    }
    let t: String = text.chars().filter(|&c| c != '_').collect();
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, &t[..]),
    };
    let lower = body.to_ascii_lowercase();
    let v = if let Some(h) = lower.strip_prefix("0x") {
        parse_hex_float(h)?
    } else {
        if lower.is_empty()
            || !lower
                .bytes()
                .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'+' | b'-'))
        {
            return None;
        }
        if lower.starts_with('e') || lower == "." {
            return None;
        }
        let v: f64 = lower.parse().ok()?;
        if v.is_infinite() {
            // Go returns ±Inf with a range error; callers treat errors as failure.
            return None;
        }
        v
    };
    Some(if neg { -v } else { v })
}

fn parse_hex_float(h: &str) -> Option<f64> {
    // mantissa [. fraction] p exponent — Go requires the p exponent for hex floats.
    let (mant, exp) = h.split_once('p')?;
    let exp: i64 = exp.parse().ok()?;
    let (ip, fp) = mant.split_once('.').unwrap_or((mant, ""));
    if ip.is_empty() && fp.is_empty() {
        return None;
    }
    let mut m: f64 = 0.0;
    for c in ip.chars().chain(fp.chars()) {
        m = m * 16.0 + c.to_digit(16)? as f64;
    }
    let e = exp - 4 * fp.len() as i64;
    let v = m * 2f64.powi(e.clamp(-2000, 2000) as i32);
    if v.is_infinite() { None } else { Some(v) }
}

/// Go's NumberNode construction: which of int/uint/float/complex the literal is.
pub(crate) fn parse_number(text: &str, kind: Tok) -> Result<Number, String> {
    let mut n = Number {
        text: text.to_string(),
        int: None,
        uint: None,
        float: None,
        complex: None,
    };
    match kind {
        Tok::CharConstant => {
            let inner = &text[1..];
            let (bytes, tail) =
                unquote_char(inner, b'\'').map_err(|_| "invalid syntax".to_string())?;
            if tail != "'" {
                return Err(format!("malformed character constant: {text}"));
            }
            let r = std::str::from_utf8(&bytes)
                .ok()
                .and_then(|s| s.chars().next())
                .map(|c| c as u32)
                .unwrap_or(bytes[0] as u32);
            n.int = Some(r as i64);
            n.uint = Some(r as u64);
            n.float = Some(r as f64);
            return Ok(n);
        }
        Tok::Complex => {
            // "re+imi": split at the sign that starts the imaginary part.
            let b = text.as_bytes();
            let mut split = None;
            for i in (1..b.len()).rev() {
                if (b[i] == b'+' || b[i] == b'-') && !matches!(b[i - 1] | 0x20, b'e' | b'p') {
                    split = Some(i);
                    break;
                }
            }
            let i = split.ok_or_else(|| "expected integer".to_string())?;
            let re = parse_float_go(&text[..i]).ok_or_else(|| "expected integer".to_string())?;
            let im = parse_float_go(&text[i..text.len() - 1])
                .ok_or_else(|| "expected integer".to_string())?;
            n.complex = Some((re, im));
            simplify_complex(&mut n);
            return Ok(n);
        }
        _ => {}
    }
    if let Some(body) = text.strip_suffix('i')
        && let Some(f) = parse_float_go(body)
    {
        n.complex = Some((0.0, f));
        simplify_complex(&mut n);
        return Ok(n);
    }
    let u = parse_uint_go(text);
    n.uint = u;
    if let Some(i) = parse_int_go(text) {
        n.int = Some(i);
        if i == 0 {
            n.uint = Some(0);
        }
    }
    if let Some(i) = n.int {
        n.float = Some(i as f64);
    } else if let Some(u) = n.uint {
        n.float = Some(u as f64);
    } else if let Some(f) = parse_float_go(text) {
        if !text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Err(format!(
                "integer overflow: {}",
                crate::fmt::quote(text, false)
            ));
        }
        n.float = Some(f);
        set_integral(&mut n, f);
    }
    if n.int.is_none() && n.uint.is_none() && n.float.is_none() {
        return Err(format!(
            "illegal number syntax: {}",
            crate::fmt::quote(text, false)
        ));
    }
    Ok(n)
}

fn simplify_complex(n: &mut Number) {
    let (re, im) = n.complex.unwrap_or_default();
    if im == 0.0 {
        n.float = Some(re);
        set_integral(n, re);
    }
}

/// Marks a float literal that is a whole number in range as also int/uint, as Go does.
fn set_integral(n: &mut Number, f: f64) {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    if f.fract() == 0.0 && (-TWO63..TWO63).contains(&f) && n.int.is_none() {
        n.int = Some(f as i64);
    }
    if f.fract() == 0.0 && (0.0..2.0 * TWO63).contains(&f) && n.uint.is_none() {
        n.uint = Some(f as u64);
    }
}
