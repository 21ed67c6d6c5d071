//! The executor: walks a tree with a data value, as Go's text/template does — dot and
//! variables, truthiness, `range` over lists, sorted maps and ints, `break`/`continue`,
//! template calls with a fresh variable scope, and Go's error messages and positions.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, ExecError, ExecErrorKind};
use crate::fmt as gofmt;
use crate::funcs::{self, ArgType, Builtin, Func};
use crate::parse::{self, Arg, Branch, Command, Node, Number, Pipe, Tree};
use crate::value::{IntType, Value};
use crate::{Limits, MissingKey, Templates};

/// The current dot, and whether it sits inside an interface (an element of a list or
/// map): Go names such a receiver's type `interface {}` in errors.
#[derive(Clone)]
pub(crate) struct Dot {
    pub v: Value,
    pub boxed: bool,
}

struct Var<'t> {
    name: &'t str,
    v: Value,
    boxed: bool,
}

#[derive(PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

/// What the executor is looking at, for error context.
#[derive(Clone, Copy)]
enum At<'t> {
    None,
    Pipe(&'t Pipe),
    Command(&'t Command),
    Arg(&'t Arg),
    Node(&'t Node, usize),
}

type R<T> = Result<T, Error>;

pub(crate) struct State<'t> {
    set: &'t Templates,
    tree: &'t Tree,
    vars: Vec<Var<'t>>,
    depth: usize,
    /// Template calls, control-structure bodies and parenthesized pipelines being
    /// evaluated, together: what bounds native stack use.
    nest: usize,
    out: String,
    at: At<'t>,
    steps: u64,
    limits: &'t Limits,
}

impl<'t> State<'t> {
    pub(crate) fn new(set: &'t Templates, tree: &'t Tree) -> Self {
        State {
            set,
            tree,
            vars: Vec::new(),
            depth: 0,
            nest: 0,
            out: String::new(),
            at: At::None,
            steps: 0,
            limits: &set.limits,
        }
    }

    pub(crate) fn run(mut self, data: &Value) -> R<String> {
        let dot = Dot {
            v: data.clone(),
            boxed: false,
        };
        self.vars.push(Var {
            name: "$",
            v: data.clone(),
            boxed: false,
        });
        self.walk_list(&dot, &self.tree.root)?;
        Ok(self.out)
    }

    // ---- errors ----

    fn context(&self) -> Option<(usize, String)> {
        let mut s = String::new();
        let pos = match self.at {
            At::None => return None,
            At::Pipe(p) => {
                parse::write_pipe(&mut s, p);
                p.pos
            }
            At::Command(c) => {
                parse::write_command(&mut s, c);
                c.pos
            }
            At::Arg(a) => {
                parse::write_arg(&mut s, a);
                a.pos()
            }
            At::Node(n, pos) => {
                parse::write_node(&mut s, n, false);
                pos
            }
        };
        Some((pos, s))
    }

    fn error_kind(&self, msg: impl Into<String>, kind: ExecErrorKind) -> Error {
        let name = &self.tree.name;
        let message = match self.context() {
            None => format!("template: {}: {}", name, msg.into()),
            Some((pos, ctx)) => format!(
                "template: {}: executing {} at <{}>: {}",
                self.tree.source.location(pos),
                gofmt::quote(name, false),
                ctx,
                msg.into()
            ),
        };
        Error::Exec(ExecError {
            template: name.clone(),
            message,
            kind,
        })
    }

    fn errorf(&self, msg: impl Into<String>) -> Error {
        self.error_kind(msg, ExecErrorKind::Template)
    }

    fn step(&mut self) -> R<()> {
        self.steps += 1;
        if self.steps > self.limits.max_steps {
            return Err(self.error_kind(
                format!(
                    "execution exceeds the budget of {} steps",
                    self.limits.max_steps
                ),
                ExecErrorKind::Limit,
            ));
        }
        Ok(())
    }

    fn write(&mut self, s: &str) -> R<()> {
        if self.out.len() + s.len() > self.limits.max_output_bytes {
            return Err(self.error_kind(
                format!(
                    "output exceeds the limit of {} bytes",
                    self.limits.max_output_bytes
                ),
                ExecErrorKind::Limit,
            ));
        }
        self.out.push_str(s);
        Ok(())
    }

    /// Enters one level of recursion, failing cleanly before the native stack could.
    fn enter(&mut self) -> R<()> {
        self.nest += 1;
        if self.nest > self.limits.max_exec_nesting {
            self.nest -= 1;
            return Err(self.error_kind(
                format!(
                    "exceeded maximum nesting depth ({})",
                    self.limits.max_exec_nesting
                ),
                ExecErrorKind::Limit,
            ));
        }
        Ok(())
    }

    // ---- variables ----

    fn set_var(&mut self, name: &str, v: Value, boxed: bool) -> R<()> {
        for var in self.vars.iter_mut().rev() {
            if var.name == name {
                var.v = v;
                var.boxed = boxed;
                return Ok(());
            }
        }
        Err(self.errorf(format!("undefined variable: {name}")))
    }

    fn set_top_var(&mut self, n: usize, v: Value, boxed: bool) {
        let i = self.vars.len() - n;
        self.vars[i].v = v;
        self.vars[i].boxed = boxed;
    }

    fn var_value(&self, name: &str) -> R<Dot> {
        for var in self.vars.iter().rev() {
            if var.name == name {
                return Ok(Dot {
                    v: var.v.clone(),
                    boxed: var.boxed,
                });
            }
        }
        Err(self.errorf(format!("undefined variable: {name}")))
    }

    // ---- walking ----

    fn walk_list(&mut self, dot: &Dot, list: &'t parse::List) -> R<Flow> {
        for n in &list.nodes {
            let f = self.walk(dot, n)?;
            if f != Flow::Normal {
                return Ok(f);
            }
        }
        Ok(Flow::Normal)
    }

    fn walk(&mut self, dot: &Dot, node: &'t Node) -> R<Flow> {
        self.step()?;
        match node {
            Node::Text(t) => self.write(t)?,
            Node::Comment(_) => {}
            Node::Action(pipe) => {
                self.at = At::Node(node, pipe.pos);
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    self.at = At::Node(node, pipe.pos);
                    self.print_value(&v)?;
                }
            }
            Node::If(b) => return self.walk_if_with(dot, node, b, false),
            Node::With(b) => return self.walk_if_with(dot, node, b, true),
            Node::Range(b) => return self.walk_range(dot, node, b),
            Node::Template { pos, name, pipe } => {
                self.at = At::Node(node, *pos);
                self.walk_template(dot, node, *pos, name, pipe.as_ref())?;
            }
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn walk_if_with(&mut self, dot: &Dot, node: &'t Node, b: &'t Branch, with: bool) -> R<Flow> {
        self.enter()?;
        let r = self.walk_if_with_inner(dot, node, b, with);
        self.nest -= 1;
        r
    }

    fn walk_if_with_inner(
        &mut self,
        dot: &Dot,
        node: &'t Node,
        b: &'t Branch,
        with: bool,
    ) -> R<Flow> {
        let mark = self.vars.len();
        self.at = At::Node(node, b.pos);
        let v = self.eval_pipeline(dot, &b.pipe)?;
        let flow = if v.is_true() {
            if with {
                self.walk_list(&Dot { v, boxed: false }, &b.list)?
            } else {
                self.walk_list(dot, &b.list)?
            }
        } else if let Some(e) = &b.else_list {
            self.walk_list(dot, e)?
        } else {
            Flow::Normal
        };
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn one_iteration(&mut self, b: &'t Branch, mark: usize, index: Value, elem: Value) -> R<Flow> {
        let decl = &b.pipe.decl;
        if !decl.is_empty() {
            if b.pipe.is_assign {
                if decl.len() > 1 {
                    self.set_var(&decl[0], index.clone(), false)?;
                } else {
                    self.set_var(&decl[0], elem.clone(), true)?;
                }
            } else {
                self.set_top_var(1, elem.clone(), true);
            }
        }
        if decl.len() > 1 {
            if b.pipe.is_assign {
                self.set_var(&decl[1], elem.clone(), true)?;
            } else {
                self.set_top_var(2, index, false);
            }
        }
        let flow = self.walk_list(
            &Dot {
                v: elem,
                boxed: true,
            },
            &b.list,
        );
        self.vars.truncate(mark);
        flow
    }

    fn walk_range(&mut self, dot: &Dot, node: &'t Node, b: &'t Branch) -> R<Flow> {
        self.enter()?;
        let r = self.walk_range_inner(dot, node, b);
        self.nest -= 1;
        r
    }

    fn walk_range_inner(&mut self, dot: &Dot, node: &'t Node, b: &'t Branch) -> R<Flow> {
        self.at = At::Node(node, b.pos);
        let mark0 = self.vars.len();
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let mark = self.vars.len();
        let mut ran = false;
        match &val {
            Value::Int(..) | Value::Uint(..) => {
                if b.pipe.decl.len() > 1 {
                    // Go reports this at the last node the pipeline evaluated.
                    return Err(self.errorf(format!(
                        "can't use {} to iterate over more than one variable",
                        gofmt::sprint(std::slice::from_ref(&val))
                    )));
                }
                let n: u64 = match val {
                    Value::Int(i, _) => i.max(0) as u64,
                    Value::Uint(u, _) => u,
                    _ => 0,
                };
                for i in 0..n {
                    ran = true;
                    self.step()?;
                    let elem = match val {
                        Value::Int(_, t) => Value::Int(i as i64, t),
                        Value::Uint(_, t) => Value::Uint(i, t),
                        _ => Value::Missing,
                    };
                    // Go passes ints as the element, unboxed.
                    let f = self.one_iteration_unboxed(b, mark, elem)?;
                    if f == Flow::Break {
                        break;
                    }
                }
            }
            Value::List(items) => {
                for (i, e) in items.iter().enumerate() {
                    ran = true;
                    self.step()?;
                    if self.one_iteration(b, mark, Value::int(i as i64), e.clone())? == Flow::Break
                    {
                        break;
                    }
                }
            }
            Value::Map(m) => {
                for (k, e) in m.iter() {
                    ran = true;
                    self.step()?;
                    if self.one_iteration(b, mark, Value::string(k.as_str()), e.clone())?
                        == Flow::Break
                    {
                        break;
                    }
                }
            }
            Value::Missing | Value::Nil => {}
            other => {
                return Err(self.errorf(format!(
                    "range can't iterate over {}",
                    gofmt::sprint(std::slice::from_ref(other))
                )));
            }
        }
        let mut flow = Flow::Normal;
        if !ran && let Some(e) = &b.else_list {
            flow = self.walk_list(dot, e)?;
        }
        self.vars.truncate(mark0);
        // A `continue` in the else list continues an outer range; a `break` there is
        // swallowed by this range, as Go's walkRange recovers it for the whole node.
        Ok(if flow == Flow::Continue {
            Flow::Continue
        } else {
            Flow::Normal
        })
    }

    fn one_iteration_unboxed(&mut self, b: &'t Branch, mark: usize, elem: Value) -> R<Flow> {
        let decl = &b.pipe.decl;
        if !decl.is_empty() {
            if b.pipe.is_assign {
                self.set_var(&decl[0], elem.clone(), false)?;
            } else {
                self.set_top_var(1, elem.clone(), false);
            }
        }
        let flow = self.walk_list(
            &Dot {
                v: elem,
                boxed: false,
            },
            &b.list,
        );
        self.vars.truncate(mark);
        flow
    }

    fn walk_template(
        &mut self,
        dot: &Dot,
        node: &'t Node,
        pos: usize,
        name: &str,
        pipe: Option<&'t Pipe>,
    ) -> R<()> {
        let Some(tree) = self.set.trees.get(name) else {
            return Err(self.errorf(format!(
                "template {} not defined",
                gofmt::quote(name, false)
            )));
        };
        if self.depth >= self.limits.max_template_depth {
            return Err(self.error_kind(
                format!(
                    "exceeded maximum template depth ({})",
                    self.limits.max_template_depth
                ),
                ExecErrorKind::Limit,
            ));
        }
        let v = match pipe {
            Some(p) => self.eval_pipeline(dot, p)?,
            None => Value::Missing,
        };
        self.at = At::Node(node, pos);
        let tree: &'t Tree = tree;
        self.call_tree(tree, v)
    }

    /// Runs `tree` with `dot` in a fresh variable scope, writing to the output.
    fn call_tree(&mut self, tree: &'t Tree, v: Value) -> R<()> {
        self.enter()?;
        let r = self.call_tree_inner(tree, v);
        self.nest -= 1;
        r
    }

    fn call_tree_inner(&mut self, tree: &'t Tree, v: Value) -> R<()> {
        let saved_vars = std::mem::take(&mut self.vars);
        let saved_tree = self.tree;
        self.vars.push(Var {
            name: "$",
            v: v.clone(),
            boxed: false,
        });
        self.tree = tree;
        self.depth += 1;
        let r = self.walk_list(&Dot { v, boxed: false }, &tree.root);
        self.depth -= 1;
        self.tree = saved_tree;
        self.vars = saved_vars;
        r.map(|_| ())
    }

    /// Executes the named template into a string (for `include`-style functions).
    pub(crate) fn execute_named(&mut self, name: &str, data: Value) -> R<String> {
        let Some(tree) = self.set.trees.get(name) else {
            return Err(self.errorf(format!(
                "template {} not defined",
                gofmt::quote(name, false)
            )));
        };
        if self.depth >= self.limits.max_template_depth {
            return Err(self.error_kind(
                format!(
                    "exceeded maximum template depth ({})",
                    self.limits.max_template_depth
                ),
                ExecErrorKind::Limit,
            ));
        }
        let saved_out = std::mem::take(&mut self.out);
        let saved_at = self.at;
        let limit_left = self.limits.max_output_bytes.saturating_sub(saved_out.len());
        let r = self.call_tree(tree, data);
        let produced = std::mem::replace(&mut self.out, saved_out);
        self.at = saved_at;
        r?;
        if produced.len() > limit_left {
            return Err(self.error_kind(
                format!(
                    "output exceeds the limit of {} bytes",
                    self.limits.max_output_bytes
                ),
                ExecErrorKind::Limit,
            ));
        }
        Ok(produced)
    }

    fn print_value(&mut self, v: &Value) -> R<()> {
        let s = match v {
            Value::Missing => "<no value>".to_string(),
            v => gofmt::sprint(std::slice::from_ref(v)),
        };
        self.write(&s)
    }

    // ---- evaluation ----

    fn eval_pipeline(&mut self, dot: &Dot, pipe: &'t Pipe) -> R<Value> {
        self.at = At::Pipe(pipe);
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            let mut v = self.eval_command(dot, cmd, value.take())?;
            // A nil interface is dug out to "no value", as Go does after each command.
            if let Value::Nil = v {
                v = Value::Missing;
            }
            value = Some(v);
        }
        let value = value.unwrap_or(Value::Missing);
        for name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(name, value.clone(), false)?;
            } else {
                self.vars.push(Var {
                    name,
                    v: value.clone(),
                    boxed: false,
                });
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, args: &[Arg], has_final: bool) -> R<()> {
        if args.len() > 1 || has_final {
            return Err(self.errorf(format!(
                "can't give argument to non-function {}",
                parse::arg_string(&args[0])
            )));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Dot, cmd: &'t Command, fin: Option<Value>) -> R<Value> {
        self.step()?;
        let first = &cmd.args[0];
        match first {
            Arg::Field { idents, .. } => {
                self.at = At::Arg(first);
                return self.eval_field_chain(dot, dot.clone(), first, idents, &cmd.args, fin);
            }
            Arg::Chain { .. } => return self.eval_chain(dot, first, &cmd.args, fin),
            Arg::Identifier { name, .. } => {
                self.at = At::Arg(first);
                return self.eval_function(dot, name, At::Command(cmd), &cmd.args, fin);
            }
            Arg::Pipe(p) => {
                self.not_a_function(&cmd.args, fin.is_some())?;
                return self.eval_pipeline(dot, p);
            }
            Arg::Variable { .. } => return self.eval_variable(dot, first, &cmd.args, fin),
            _ => {}
        }
        self.at = At::Arg(first);
        self.not_a_function(&cmd.args, fin.is_some())?;
        match first {
            Arg::Bool { val, .. } => Ok(Value::Bool(*val)),
            Arg::Dot { .. } => Ok(dot.v.clone()),
            Arg::Nil { .. } => Err(self.errorf("nil is not a command")),
            Arg::Number { num, .. } => self.ideal_constant(first, num),
            Arg::String { text, .. } => Ok(Value::string(text.as_str())),
            _ => Err(self.errorf(format!(
                "can't evaluate command {}",
                gofmt::quote(&parse::arg_string(first), false)
            ))),
        }
    }

    fn ideal_constant(&mut self, node: &'t Arg, n: &Number) -> R<Value> {
        self.at = At::Arg(node);
        let t = &n.text;
        let is_hex_int = t.len() > 2
            && t.starts_with('0')
            && matches!(t.as_bytes()[1], b'x' | b'X')
            && !t.contains(['p', 'P']);
        let is_rune = t.starts_with('\'');
        if let Some((re, im)) = n.complex {
            return Ok(Value::Complex(re, im));
        }
        if let Some(f) = n.float
            && !is_hex_int
            && !is_rune
            && t.contains(['.', 'e', 'E', 'p', 'P'])
        {
            return Ok(Value::Float(f));
        }
        if let Some(i) = n.int {
            return Ok(Value::int(i));
        }
        if n.uint.is_some() {
            return Err(self.errorf(format!("{t} overflows int")));
        }
        Ok(Value::Missing)
    }

    fn eval_chain(
        &mut self,
        dot: &Dot,
        node: &'t Arg,
        args: &'t [Arg],
        fin: Option<Value>,
    ) -> R<Value> {
        let Arg::Chain {
            node: inner,
            fields,
            ..
        } = node
        else {
            unreachable!("eval_chain on a chain")
        };
        self.at = At::Arg(node);
        if let Arg::Nil { .. } = **inner {
            return Err(self.errorf(format!(
                "indirection through explicit nil in {}",
                parse::arg_string(node)
            )));
        }
        let v = self.eval_arg(dot, None, inner)?;
        self.eval_field_chain(dot, Dot { v, boxed: false }, node, fields, args, fin)
    }

    fn eval_variable(
        &mut self,
        dot: &Dot,
        node: &'t Arg,
        args: &'t [Arg],
        fin: Option<Value>,
    ) -> R<Value> {
        let Arg::Variable { idents, .. } = node else {
            unreachable!("eval_variable on a variable")
        };
        self.at = At::Arg(node);
        let v = self.var_value(&idents[0])?;
        if idents.len() == 1 {
            self.not_a_function(args, fin.is_some())?;
            return Ok(v.v);
        }
        self.eval_field_chain(dot, v, node, &idents[1..], args, fin)
    }

    fn eval_field_chain(
        &mut self,
        _dot: &Dot,
        mut recv: Dot,
        node: &'t Arg,
        idents: &[String],
        args: &[Arg],
        fin: Option<Value>,
    ) -> R<Value> {
        let n = idents.len();
        for id in &idents[..n - 1] {
            let v = self.eval_field(id, node, &[], false, &recv)?;
            recv = Dot { v, boxed: true };
        }
        let has_args = args.len() > 1 || fin.is_some();
        self.eval_field(&idents[n - 1], node, args, has_args, &recv)
    }

    fn eval_field(
        &mut self,
        name: &str,
        _node: &'t Arg,
        _args: &[Arg],
        has_args: bool,
        recv: &Dot,
    ) -> R<Value> {
        // No `at` here: Go reports field errors of a chain `(x).f` at the last node the
        // chain's operand evaluated.
        match &recv.v {
            Value::Missing => {
                if self.set.missing_key == MissingKey::Error {
                    return Err(self.errorf(format!(
                        "nil data; no entry for key {}",
                        gofmt::quote(name, false)
                    )));
                }
                Ok(Value::Missing)
            }
            Value::Nil => Err(self.errorf(format!("nil pointer evaluating interface {{}}.{name}"))),
            Value::Map(m) => {
                if has_args {
                    return Err(self.errorf(format!("{name} is not a method but has arguments")));
                }
                match m.get(name) {
                    Some(v) => Ok(v.clone()),
                    None => match self.set.missing_key {
                        MissingKey::Default => Ok(Value::Missing),
                        MissingKey::Zero => Ok(Value::Nil),
                        MissingKey::Error => Err(self.errorf(format!(
                            "map has no entry for key {}",
                            gofmt::quote(name, false)
                        ))),
                    },
                }
            }
            other => {
                let ty = if recv.boxed {
                    "interface {}"
                } else {
                    other.type_name()
                };
                Err(self.errorf(format!("can't evaluate field {name} in type {ty}")))
            }
        }
    }

    fn eval_function(
        &mut self,
        dot: &Dot,
        name: &str,
        call_node: At<'t>,
        args: &'t [Arg],
        fin: Option<Value>,
    ) -> R<Value> {
        if let Some(f) = self.set.funcs.get(name) {
            let f = f.clone();
            return self.eval_call(dot, Callee::User(f), call_node, name, args, fin);
        }
        if let Some(b) = funcs::builtin(name) {
            return self.eval_call(dot, Callee::Builtin(b), call_node, name, args, fin);
        }
        Err(self.errorf(format!(
            "{} is not a defined function",
            gofmt::quote(name, false)
        )))
    }

    fn eval_call(
        &mut self,
        dot: &Dot,
        callee: Callee,
        call_node: At<'t>,
        name: &str,
        args: &'t [Arg],
        fin: Option<Value>,
    ) -> R<Value> {
        let args: &'t [Arg] = if args.is_empty() { args } else { &args[1..] };
        let (params, variadic): (&[ArgType], Option<ArgType>) = match &callee {
            Callee::User(f) => (&f.params, f.variadic),
            Callee::Builtin(b) => b.signature(),
        };
        let num_in = args.len() + fin.is_some() as usize;
        let num_fixed = if variadic.is_some() {
            params.len()
        } else {
            args.len()
        };
        if variadic.is_some() {
            if num_in < params.len() {
                return Err(self.errorf(format!(
                    "wrong number of args for {name}: want at least {} got {}",
                    params.len(),
                    args.len()
                )));
            }
        } else if num_in != params.len() {
            return Err(self.errorf(format!(
                "wrong number of args for {name}: want {} got {}",
                params.len(),
                num_in
            )));
        }
        if let Callee::Builtin(b @ (Builtin::And | Builtin::Or)) = callee {
            let is_or = b == Builtin::Or;
            let mut v = Value::Missing;
            for a in args {
                v = self.eval_arg(dot, Some(ArgType::Value), a)?;
                if v.is_true() == is_or {
                    return Ok(v);
                }
            }
            if let Some(f) = fin {
                v = f;
            }
            return Ok(v);
        }
        let mut argv = Vec::with_capacity(num_in);
        // For `slice`: which arguments Go sees inside an interface.
        let mut boxed = Vec::new();
        let mut i = 0;
        while i < num_fixed && i < args.len() {
            argv.push(self.eval_arg(dot, Some(params[i]), &args[i])?);
            i += 1;
        }
        if let Some(vt) = variadic {
            while i < args.len() {
                argv.push(self.eval_arg(dot, Some(vt), &args[i])?);
                if let Callee::Builtin(Builtin::Slice) = callee {
                    boxed.push(!matches!(argv[i], Value::Missing) && self.is_boxed(dot, &args[i]));
                }
                i += 1;
            }
        }
        if let Some(f) = fin {
            let t = match variadic {
                Some(vt) if num_in > params.len() => vt,
                Some(_) => params[num_in - 1],
                None => params[params.len() - 1],
            };
            argv.push(self.validate_type(f, t, false)?);
        }
        let result = match callee {
            Callee::Builtin(Builtin::Call) => {
                let callee_name = match args.first() {
                    Some(a) => parse::arg_string(a),
                    None => gofmt::sprint(&argv[..1]),
                };
                funcs::call(&callee_name, &argv)
            }
            Callee::Builtin(Builtin::Slice) => funcs::slice(&argv[0], &argv[1..], &boxed),
            Callee::Builtin(b) => funcs::run_builtin(b, &argv),
            Callee::User(f) => {
                let mut call = Call { state: self };
                (f.imp)(&mut call, argv)
            }
        };
        match result {
            Ok(v) => Ok(v),
            Err(FuncError::Message(msg)) => {
                self.at = call_node;
                Err(self.errorf(format!("error calling {name}: {msg}")))
            }
            Err(FuncError::Nested(e)) => Err(e),
        }
    }

    fn can_be_nil(t: ArgType) -> bool {
        matches!(
            t,
            ArgType::Value | ArgType::Any | ArgType::List | ArgType::Map
        )
    }

    fn zero(t: ArgType) -> Value {
        match t {
            ArgType::Value => Value::Missing,
            ArgType::List => Value::list(Vec::new()),
            ArgType::Map => Value::map(Default::default()),
            _ => Value::Nil,
        }
    }

    fn validate_type(&self, v: Value, t: ArgType, _boxed: bool) -> R<Value> {
        if let Value::Missing = v {
            if Self::can_be_nil(t) {
                return Ok(Self::zero(t));
            }
            return Err(self.errorf(format!("invalid value; expected {}", t.go_name())));
        }
        let ok = matches!(
            (t, &v),
            (ArgType::Value | ArgType::Any, _)
                | (ArgType::String, Value::String(_))
                | (ArgType::Int, Value::Int(_, IntType::Int))
                | (ArgType::Int64, Value::Int(_, IntType::Int64))
                | (ArgType::Float64, Value::Float(_))
                | (ArgType::Bool, Value::Bool(_))
                | (ArgType::List, Value::List(_))
                | (ArgType::Map, Value::Map(_))
        );
        if ok {
            return Ok(v);
        }
        let got = if let Value::Nil = v {
            "interface {}"
        } else {
            v.type_name()
        };
        Err(self.errorf(format!(
            "wrong type for value; expected {}; got {}",
            t.go_name(),
            got
        )))
    }

    /// Whether Go would see argument `n` as a value inside an interface: map lookups,
    /// list elements (via dot or range variables) and `index` results.
    fn is_boxed(&self, dot: &Dot, n: &Arg) -> bool {
        match n {
            Arg::Dot { .. } => dot.boxed,
            Arg::Field { .. } | Arg::Chain { .. } => true,
            Arg::Variable { idents, .. } => {
                idents.len() > 1
                    || self
                        .vars
                        .iter()
                        .rev()
                        .find(|v| v.name == idents[0])
                        .is_some_and(|v| v.boxed)
            }
            _ => false,
        }
    }

    /// Go's evalArg: an argument evaluated for a parameter of type `t` (None: untyped,
    /// as for the receiver of a chain).
    fn eval_arg(&mut self, dot: &Dot, t: Option<ArgType>, n: &'t Arg) -> R<Value> {
        self.at = At::Arg(n);
        let v = match n {
            Arg::Dot { .. } => dot.v.clone(),
            Arg::Nil { .. } => {
                let t = t.unwrap_or(ArgType::Any);
                if Self::can_be_nil(t) {
                    return Ok(Self::zero(t));
                }
                return Err(self.errorf(format!("cannot assign nil to {}", t.go_name())));
            }
            Arg::Field { idents, .. } => {
                self.eval_field_chain(dot, dot.clone(), n, idents, std::slice::from_ref(n), None)?
            }
            Arg::Variable { .. } => self.eval_variable(dot, n, &[], None)?,
            Arg::Pipe(p) => {
                self.enter()?;
                let r = self.eval_pipeline(dot, p);
                self.nest -= 1;
                r?
            }
            Arg::Identifier { name, .. } => self.eval_function(dot, name, At::Arg(n), &[], None)?,
            Arg::Chain { .. } => self.eval_chain(dot, n, &[], None)?,
            _ => {
                let t = t.unwrap_or(ArgType::Any);
                return self.eval_constant(t, n);
            }
        };
        // No `at` reset: Go reports a type mismatch at the last node the argument
        // evaluated (inside a parenthesized call, its last argument).
        match t {
            None => Ok(v),
            Some(t) => self.validate_type(v, t, false),
        }
    }

    fn eval_constant(&mut self, t: ArgType, n: &'t Arg) -> R<Value> {
        let found = parse::arg_string(n);
        match t {
            ArgType::Bool => match n {
                Arg::Bool { val, .. } => Ok(Value::Bool(*val)),
                _ => Err(self.errorf(format!("expected bool; found {found}"))),
            },
            ArgType::Float64 => match n {
                Arg::Number { num, .. } if num.float.is_some() => {
                    Ok(Value::Float(num.float.unwrap_or_default()))
                }
                _ => Err(self.errorf(format!("expected float; found {found}"))),
            },
            ArgType::Int | ArgType::Int64 => match n {
                Arg::Number { num, .. } if num.int.is_some() => {
                    let ty = if t == ArgType::Int {
                        IntType::Int
                    } else {
                        IntType::Int64
                    };
                    Ok(Value::Int(num.int.unwrap_or_default(), ty))
                }
                _ => Err(self.errorf(format!("expected integer; found {found}"))),
            },
            ArgType::String => match n {
                Arg::String { text, .. } => Ok(Value::string(text.as_str())),
                _ => Err(self.errorf(format!("expected string; found {found}"))),
            },
            ArgType::Any | ArgType::Value => match n {
                Arg::Bool { val, .. } => Ok(Value::Bool(*val)),
                Arg::Number { num, .. } => self.ideal_constant(n, num),
                Arg::String { text, .. } => Ok(Value::string(text.as_str())),
                _ => Err(self.errorf(format!(
                    "can't handle assignment of {found} to empty interface argument"
                ))),
            },
            ArgType::List | ArgType::Map => Err(self.errorf(format!(
                "can't handle {found} for arg of type {}",
                t.go_name()
            ))),
        }
    }
}

enum Callee {
    User(Func),
    Builtin(Builtin),
}

/// How a function fails: with a message (Go wraps it as `error calling NAME: …`), or
/// with an error of a nested execution, passed through unchanged.
#[derive(Debug)]
pub enum FuncError {
    Message(String),
    Nested(Error),
}

impl From<String> for FuncError {
    fn from(s: String) -> Self {
        FuncError::Message(s)
    }
}

impl From<&str> for FuncError {
    fn from(s: &str) -> Self {
        FuncError::Message(s.to_string())
    }
}

/// What a caller-supplied function may do besides computing: run another template of
/// the same set (Helm's `include`).
pub struct Call<'s, 't> {
    state: &'s mut State<'t>,
}

impl Call<'_, '_> {
    /// Executes the named template of this set with `data` as dot and returns its output.
    pub fn execute_template(&mut self, name: &str, data: Value) -> Result<String, FuncError> {
        self.state
            .execute_named(name, data)
            .map_err(FuncError::Nested)
    }
}

/// The function table a set holds.
pub(crate) type FuncMap = HashMap<String, Func>;

pub(crate) fn new_func(
    params: Vec<ArgType>,
    variadic: Option<ArgType>,
    imp: funcs::FuncImpl,
) -> Func {
    Func {
        params: Arc::from(params),
        variadic,
        imp,
    }
}
