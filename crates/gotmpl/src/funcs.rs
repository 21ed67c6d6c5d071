//! Go's builtin functions (`and or not len index slice print printf println eq ne lt le
//! gt ge html js urlquery call`) and the typed signatures of caller-supplied functions.

use std::sync::Arc;

use crate::exec::{Call, FuncError};
use crate::fmt as gofmt;
use crate::value::{UintType, Value};

/// The Go type of a function parameter: decides how literals are read and which values
/// are accepted, with Go's messages (`wrong type for value; expected string; got int`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgType {
    /// `reflect.Value`: anything, nil and no value kept apart (Go's builtins take these).
    Value,
    /// `interface {}`.
    Any,
    String,
    /// Go `int`.
    Int,
    Int64,
    Float64,
    Bool,
    /// `[]interface {}`.
    List,
    /// `map[string]interface {}`.
    Map,
}

impl ArgType {
    pub fn go_name(self) -> &'static str {
        match self {
            ArgType::Value => "reflect.Value",
            ArgType::Any => "interface {}",
            ArgType::String => "string",
            ArgType::Int => "int",
            ArgType::Int64 => "int64",
            ArgType::Float64 => "float64",
            ArgType::Bool => "bool",
            ArgType::List => "[]interface {}",
            ArgType::Map => "map[string]interface {}",
        }
    }
}

pub(crate) type FuncImpl =
    Arc<dyn Fn(&mut Call<'_, '_>, Vec<Value>) -> Result<Value, FuncError> + Send + Sync>;

/// A caller-supplied template function with its Go signature.
#[derive(Clone)]
pub struct Func {
    pub(crate) params: Arc<[ArgType]>,
    pub(crate) variadic: Option<ArgType>,
    pub(crate) imp: FuncImpl,
}

impl Func {
    /// A function taking `params` (then any number of `variadic`, if given).
    pub fn new(
        params: &[ArgType],
        variadic: Option<ArgType>,
        imp: impl Fn(&mut Call<'_, '_>, Vec<Value>) -> Result<Value, FuncError> + Send + Sync + 'static,
    ) -> Func {
        crate::exec::new_func(params.to_vec(), variadic, Arc::new(imp))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Builtin {
    And,
    Or,
    Not,
    Len,
    Index,
    Slice,
    Print,
    Printf,
    Println,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Html,
    Js,
    Urlquery,
    Call,
}

pub(crate) fn builtin(name: &str) -> Option<Builtin> {
    Some(match name {
        "and" => Builtin::And,
        "or" => Builtin::Or,
        "not" => Builtin::Not,
        "len" => Builtin::Len,
        "index" => Builtin::Index,
        "slice" => Builtin::Slice,
        "print" => Builtin::Print,
        "printf" => Builtin::Printf,
        "println" => Builtin::Println,
        "eq" => Builtin::Eq,
        "ne" => Builtin::Ne,
        "lt" => Builtin::Lt,
        "le" => Builtin::Le,
        "gt" => Builtin::Gt,
        "ge" => Builtin::Ge,
        "html" => Builtin::Html,
        "js" => Builtin::Js,
        "urlquery" => Builtin::Urlquery,
        "call" => Builtin::Call,
        _ => return None,
    })
}

impl Builtin {
    /// Fixed parameters and the variadic one, as Go declares them.
    pub(crate) fn signature(self) -> (&'static [ArgType], Option<ArgType>) {
        use ArgType::*;
        match self {
            Builtin::And
            | Builtin::Or
            | Builtin::Eq
            | Builtin::Index
            | Builtin::Slice
            | Builtin::Call => (&[Value], Some(Value)),
            Builtin::Not | Builtin::Len => (&[Value], None),
            Builtin::Ne | Builtin::Lt | Builtin::Le | Builtin::Gt | Builtin::Ge => {
                (&[Value, Value], None)
            }
            Builtin::Print | Builtin::Println | Builtin::Html | Builtin::Js | Builtin::Urlquery => {
                (&[], Some(Any))
            }
            Builtin::Printf => (&[String], Some(Any)),
        }
    }
}

type BR = Result<Value, FuncError>;

fn err(s: impl Into<String>) -> FuncError {
    FuncError::Message(s.into())
}

/// Go's `indirectInterface`: a nil interface is no value.
fn unbox(v: &Value) -> &Value {
    match v {
        Value::Nil => &Value::Missing,
        v => v,
    }
}

pub(crate) fn run_builtin(b: Builtin, a: &[Value]) -> BR {
    match b {
        Builtin::And | Builtin::Or => unreachable!("and/or short-circuit in the executor"),
        Builtin::Call => unreachable!("call is dispatched by the executor"),
        Builtin::Not => Ok(Value::Bool(!a[0].is_true())),
        Builtin::Len => length(&a[0]),
        Builtin::Index => index(&a[0], &a[1..]),
        Builtin::Slice => slice(&a[0], &a[1..], &[]),
        Builtin::Print => Ok(Value::string(gofmt::sprint(a))),
        Builtin::Println => Ok(Value::string(gofmt::sprintln(a))),
        Builtin::Printf => {
            let Value::String(f) = &a[0] else {
                return Err(err("printf format is not a string"));
            };
            Ok(Value::string(gofmt::sprintf(f, &a[1..])))
        }
        Builtin::Eq => eq(&a[0], &a[1..]).map(Value::Bool),
        Builtin::Ne => eq(&a[0], &a[1..2]).map(|b| Value::Bool(!b)),
        Builtin::Lt => lt(&a[0], &a[1]).map(Value::Bool),
        Builtin::Le => le(&a[0], &a[1]).map(Value::Bool),
        Builtin::Gt => le(&a[0], &a[1]).map(|b| Value::Bool(!b)),
        Builtin::Ge => lt(&a[0], &a[1]).map(|b| Value::Bool(!b)),
        Builtin::Html => Ok(Value::string(html_escape(&eval_args(a)))),
        Builtin::Js => Ok(Value::string(js_escape(&eval_args(a)))),
        Builtin::Urlquery => Ok(Value::string(query_escape(&eval_args(a)))),
    }
}

/// `call`: our values hold no Go functions, so every callee is a non-function.
pub(crate) fn call(name: &str, a: &[Value]) -> BR {
    match unbox(&a[0]) {
        Value::Missing => Err(err("call of nil")),
        v => Err(err(format!(
            "non-function {name} of type {}",
            v.type_name()
        ))),
    }
}

fn length(v: &Value) -> BR {
    Ok(Value::int(match v {
        Value::Missing => return Err(err("reflect: call of reflect.Value.Type on zero Value")),
        Value::Nil => return Err(err("len of nil pointer")),
        Value::String(s) => s.len() as i64,
        Value::List(l) => l.len() as i64,
        Value::Map(m) => m.len() as i64,
        other => return Err(err(format!("len of type {}", other.type_name()))),
    }))
}

/// Go's `indexArg`: an integer index within 0..=cap.
fn index_arg(i: &Value, cap: usize) -> Result<usize, FuncError> {
    let x: i128 = match unbox(i) {
        Value::Int(x, _) => *x as i128,
        Value::Uint(x, _) => *x as i64 as i128,
        Value::Missing => return Err(err("cannot index slice/array with nil")),
        other => {
            return Err(err(format!(
                "cannot index slice/array with type {}",
                other.type_name()
            )));
        }
    };
    if x < 0 || x > cap as i128 {
        return Err(err(format!("index out of range: {x}")));
    }
    Ok(x as usize)
}

fn index(item: &Value, indexes: &[Value]) -> BR {
    let mut item = unbox(item).clone();
    if let Value::Missing = item {
        return Err(err("index of untyped nil"));
    }
    for ix in indexes {
        item = match &item {
            Value::Nil => return Err(err("index of nil pointer")),
            Value::List(l) => {
                let x = index_arg(ix, l.len())?;
                match l.get(x) {
                    Some(v) => v.clone(),
                    None => return Err(err("reflect: slice index out of range")),
                }
            }
            Value::String(s) => {
                let x = index_arg(ix, s.len())?;
                match s.as_bytes().get(x) {
                    Some(b) => Value::Uint(*b as u64, UintType::Uint8),
                    None => return Err(err("reflect: string index out of range")),
                }
            }
            Value::Map(m) => match unbox(ix) {
                Value::String(k) => m.get(&**k).cloned().unwrap_or(Value::Nil),
                Value::Missing => return Err(err("value is nil; should be of type string")),
                other => {
                    return Err(err(format!(
                        "value has type {}; should be string",
                        other.type_name()
                    )));
                }
            },
            other => {
                return Err(err(format!(
                    "can't index item of type {}",
                    other.type_name()
                )));
            }
        };
    }
    Ok(item)
}

/// `boxed[i]`: index i came from inside an interface, which Go's slice does not unwrap.
pub(crate) fn slice(item: &Value, indexes: &[Value], boxed: &[bool]) -> BR {
    let item = unbox(item);
    if let Value::Missing = item {
        return Err(err("slice of untyped nil"));
    }
    if indexes.len() > 3 {
        return Err(err(format!("too many slice indexes: {}", indexes.len())));
    }
    let len = match item {
        Value::String(s) => {
            if indexes.len() == 3 {
                return Err(err("cannot 3-index slice a string"));
            }
            s.len()
        }
        Value::List(l) => l.len(),
        other => {
            return Err(err(format!(
                "can't slice item of type {}",
                other.type_name()
            )));
        }
    };
    // Our lists have no spare capacity, so cap == len (Go may slice past len up to cap).
    let mut idx = [0, len, len];
    for (i, ix) in indexes.iter().enumerate() {
        if boxed.get(i).copied().unwrap_or(false) {
            return Err(err("cannot index slice/array with type interface {}"));
        }
        idx[i] = index_arg(ix, len)?;
    }
    if idx[0] > idx[1] {
        return Err(err(format!("invalid slice index: {} > {}", idx[0], idx[1])));
    }
    if indexes.len() == 3 && idx[1] > idx[2] {
        return Err(err(format!("invalid slice index: {} > {}", idx[1], idx[2])));
    }
    match item {
        Value::String(s) => match s.get(idx[0]..idx[1]) {
            Some(sub) => Ok(Value::string(sub)),
            None => Err(err("slice would split a UTF-8 character (not supported)")),
        },
        Value::List(l) => Ok(Value::list(l[idx[0]..idx[1]].to_vec())),
        _ => unreachable!("checked above"),
    }
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Kind {
    Invalid,
    Bool,
    Complex,
    Int,
    Float,
    String,
    Uint,
}

fn basic_kind(v: &Value) -> Kind {
    match v {
        Value::Bool(_) => Kind::Bool,
        Value::Int(..) => Kind::Int,
        Value::Uint(..) => Kind::Uint,
        Value::Float(_) => Kind::Float,
        Value::Complex(..) => Kind::Complex,
        Value::String(_) => Kind::String,
        _ => Kind::Invalid,
    }
}

fn as_i(v: &Value) -> i64 {
    if let Value::Int(i, _) = v { *i } else { 0 }
}

fn as_u(v: &Value) -> u64 {
    if let Value::Uint(u, _) = v { *u } else { 0 }
}

fn reflect_kind(v: &Value) -> u8 {
    match v {
        Value::Missing | Value::Nil => 0,
        Value::List(_) => 1,
        Value::Map(_) => 2,
        _ => 3,
    }
}

fn eq(a1: &Value, rest: &[Value]) -> Result<bool, FuncError> {
    let a1 = unbox(a1);
    if rest.is_empty() {
        return Err(err("missing argument for comparison"));
    }
    let k1 = basic_kind(a1);
    for a in rest {
        let a = unbox(a);
        let k2 = basic_kind(a);
        let truth = if k1 != k2 {
            match (k1, k2) {
                (Kind::Int, Kind::Uint) => as_i(a1) >= 0 && as_i(a1) as u64 == as_u(a),
                (Kind::Uint, Kind::Int) => as_i(a) >= 0 && as_u(a1) == as_i(a) as u64,
                _ => {
                    if !a1.is_nil() && !a.is_nil() {
                        return Err(err(format!(
                            "incompatible types for comparison: {} and {}",
                            a1.type_name(),
                            a.type_name()
                        )));
                    }
                    false
                }
            }
        } else {
            match (a1, a) {
                (Value::Bool(x), Value::Bool(y)) => x == y,
                (Value::Complex(r1, i1), Value::Complex(r2, i2)) => r1 == r2 && i1 == i2,
                (Value::Float(x), Value::Float(y)) => x == y,
                (Value::Int(x, _), Value::Int(y, _)) => x == y,
                (Value::String(x), Value::String(y)) => x == y,
                (Value::Uint(x, _), Value::Uint(y, _)) => x == y,
                _ => {
                    let (r1, r2) = (reflect_kind(a1), reflect_kind(a));
                    if r1 != r2 && r1 != 0 && r2 != 0 {
                        return Err(err(format!(
                            "non-comparable types {}: {}, {}: {}",
                            gofmt::sprintf("%s", std::slice::from_ref(a1)),
                            a1.type_name(),
                            a.type_name(),
                            gofmt::sprint(std::slice::from_ref(a))
                        )));
                    }
                    if a1.is_nil() || a.is_nil() {
                        a1.is_nil() == a.is_nil()
                    } else {
                        return Err(err(format!(
                            "non-comparable type {}: {}",
                            gofmt::sprintf("%s", std::slice::from_ref(a)),
                            a.type_name()
                        )));
                    }
                }
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

fn lt(a1: &Value, a2: &Value) -> Result<bool, FuncError> {
    let a1 = unbox(a1);
    let k1 = basic_kind(a1);
    if k1 == Kind::Invalid {
        return Err(err("invalid type for comparison"));
    }
    let a2 = unbox(a2);
    let k2 = basic_kind(a2);
    if k2 == Kind::Invalid {
        return Err(err("invalid type for comparison"));
    }
    if k1 != k2 {
        return match (k1, k2) {
            (Kind::Int, Kind::Uint) => Ok(as_i(a1) < 0 || (as_i(a1) as u64) < as_u(a2)),
            (Kind::Uint, Kind::Int) => Ok(as_i(a2) >= 0 && as_u(a1) < as_i(a2) as u64),
            _ => Err(err(format!(
                "incompatible types for comparison: {} and {}",
                a1.type_name(),
                a2.type_name()
            ))),
        };
    }
    Ok(match (a1, a2) {
        (Value::Float(x), Value::Float(y)) => x < y,
        (Value::Int(x, _), Value::Int(y, _)) => x < y,
        (Value::String(x), Value::String(y)) => x < y,
        (Value::Uint(x, _), Value::Uint(y, _)) => x < y,
        _ => return Err(err("invalid type for comparison")),
    })
}

fn le(a1: &Value, a2: &Value) -> Result<bool, FuncError> {
    if lt(a1, a2)? {
        return Ok(true);
    }
    eq(a1, std::slice::from_ref(a2))
}

/// Go's evalArgs for html/js/urlquery: one string as is, else Sprint with untyped nil
/// shown as `<no value>`.
fn eval_args(a: &[Value]) -> String {
    if let [Value::String(s)] = a {
        return s.to_string();
    }
    let mapped: Vec<Value> = a
        .iter()
        .map(|v| {
            if v.is_nil() {
                Value::string("<no value>")
            } else {
                v.clone()
            }
        })
        .collect();
    gofmt::sprint(&mapped)
}

pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\0' => out.push('\u{FFFD}'),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

pub(crate) fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u00{:02X}", c as u32)),
            c if c.is_ascii() => out.push(c),
            c if gofmt::is_print(c) => out.push(c),
            c => out.push_str(&format!("\\u{:04X}", c as u32)),
        }
    }
    out
}

/// Go's url.QueryEscape.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
