//! The values templates see, modelled on what Go hands text/template from YAML/JSON:
//! `map[string]any`, `[]any`, `string`, `bool`, the integer kinds, `float64`, and nil.
//!
//! # YAML and JSON typing
//! - go-yaml v3 decoding into `any` keeps integers as `int` and floats as `float64`:
//!   [`Value::from_json_typed`] mirrors that (integers that fit `i64` become `int`,
//!   larger ones `uint64` as go-yaml does, the rest `float64`).
//! - Helm reads values with sigs.k8s.io/yaml, which converts YAML to JSON and decodes it
//!   with `encoding/json` into `any`: every number becomes `float64`, so `1000000` prints
//!   as `1e+06`. [`Value::from_json`] mirrors that JSON path.
//!
//! `Missing` is Go's "no value" (an invalid `reflect.Value`, what a missing map key
//! yields); `Nil` is a nil interface (a `null` in YAML/JSON). They print differently
//! (`<no value>` against `<nil>`) and behave differently under field access.

use std::collections::BTreeMap;
use std::sync::Arc;

/// Go's signed integer types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntType {
    Int,
    Int8,
    Int16,
    Int32,
    Int64,
}

/// Go's unsigned integer types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UintType {
    Uint,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Uintptr,
}

/// A template value. Cheap to clone: containers are shared.
#[derive(Clone, Debug)]
pub enum Value {
    /// Go's "no value": a missing map key, an unset variable's result.
    Missing,
    /// A nil interface (`null`).
    Nil,
    Bool(bool),
    Int(i64, IntType),
    Uint(u64, UintType),
    /// `float64`.
    Float(f64),
    /// `complex128` (only template literals such as `1i` make these).
    Complex(f64, f64),
    String(Arc<str>),
    /// `[]any`.
    List(Arc<Vec<Value>>),
    /// `map[string]any`; Go prints and ranges over maps in key order, as a BTreeMap does.
    Map(Arc<BTreeMap<String, Value>>),
}

impl Value {
    /// A Go `int`.
    pub fn int(i: i64) -> Value {
        Value::Int(i, IntType::Int)
    }

    pub fn string(s: impl Into<Arc<str>>) -> Value {
        Value::String(s.into())
    }

    pub fn list(v: Vec<Value>) -> Value {
        Value::List(Arc::new(v))
    }

    pub fn map(m: BTreeMap<String, Value>) -> Value {
        Value::Map(Arc::new(m))
    }

    /// Go's type name, as `%T` prints it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Missing | Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_, t) => match t {
                IntType::Int => "int",
                IntType::Int8 => "int8",
                IntType::Int16 => "int16",
                IntType::Int32 => "int32",
                IntType::Int64 => "int64",
            },
            Value::Uint(_, t) => match t {
                UintType::Uint => "uint",
                UintType::Uint8 => "uint8",
                UintType::Uint16 => "uint16",
                UintType::Uint32 => "uint32",
                UintType::Uint64 => "uint64",
                UintType::Uintptr => "uintptr",
            },
            Value::Float(_) => "float64",
            Value::Complex(..) => "complex128",
            Value::String(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
        }
    }

    /// Go's truthiness for `if`, `with`, `and`, `or`, `not`: the zero value of its type
    /// is false, and so are empty strings, lists and maps, nil and no value.
    pub fn is_true(&self) -> bool {
        match self {
            Value::Missing | Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i, _) => *i != 0,
            Value::Uint(u, _) => *u != 0,
            Value::Float(f) => *f != 0.0,
            Value::Complex(r, i) => *r != 0.0 || *i != 0.0,
            Value::String(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
        }
    }

    /// Nil or no value: what Go's builtins see as an invalid value.
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Missing | Value::Nil)
    }

    /// JSON decoded the way Go's `encoding/json` decodes into `any`: numbers become
    /// `float64` (Helm's values path).
    pub fn from_json(v: &serde_json::Value) -> Value {
        Self::convert_json(v, false)
    }

    /// JSON decoded with go-yaml v3's typing: integers stay `int`, the rest `float64`.
    pub fn from_json_typed(v: &serde_json::Value) -> Value {
        Self::convert_json(v, true)
    }

    fn convert_json(v: &serde_json::Value, typed: bool) -> Value {
        match v {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => {
                if typed {
                    if let Some(i) = n.as_i64() {
                        return Value::int(i);
                    }
                    if let Some(u) = n.as_u64() {
                        return Value::Uint(u, UintType::Uint64);
                    }
                }
                Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
            serde_json::Value::String(s) => Value::string(s.as_str()),
            serde_json::Value::Array(a) => {
                Value::list(a.iter().map(|x| Self::convert_json(x, typed)).collect())
            }
            serde_json::Value::Object(o) => Value::map(
                o.iter()
                    .map(|(k, x)| (k.clone(), Self::convert_json(x, typed)))
                    .collect(),
            ),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::string(s)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::string(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::int(i)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}
