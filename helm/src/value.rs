//! The dynamic values templates work on, modelled on the Go types Helm's data has
//! (`interface{}`, `float64`, `int`, `int64`, `string`, `bool`, `[]interface{}`,
//! `map[string]interface{}`) plus host objects with methods (`.Files`, `.Capabilities`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

/// A Go map: shared and mutable, because Sprig's `set`/`unset`/`merge` mutate
/// maps in place and templates rely on seeing that through every reference.
pub type Map = Rc<RefCell<BTreeMap<String, Value>>>;

/// One template value.
#[derive(Clone, Default)]
pub enum Value {
    /// Go's nil interface (a missing key, `null` in YAML).
    #[default]
    Nil,
    Bool(bool),
    /// Go `int` (template integer constants, `len`, Sprig's `int`, `atoi`).
    Int(i64),
    /// Go `int64` (Sprig's arithmetic results, `int64`).
    Int64(i64),
    /// Go `float64` (every number in values: Helm decodes YAML through JSON).
    Float(f64),
    String(Rc<str>),
    /// Go `[]byte` (`.Files.GetBytes`).
    Bytes(Rc<[u8]>),
    /// Go `[]interface{}`.
    List(Rc<Vec<Value>>),
    Map(Map),
    /// A host object with fields and methods.
    Object(Rc<dyn Object>),
}

/// A host object: fields, methods and how `%v` prints it.
pub trait Object {
    /// The Go type name, used in error messages and `%T`.
    fn type_name(&self) -> &'static str;
    /// A field or a method called without arguments.
    fn field(&self, name: &str) -> Option<Value>;
    /// A method call with arguments. `None` when there is no such method.
    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        let _ = (name, args);
        None
    }
    /// Whether `name` is a method (then calling it with arguments is allowed).
    fn has_method(&self, name: &str) -> bool {
        let _ = name;
        false
    }
    /// Text of `{{ obj }}` (Go prints through a `String()` method when it has one).
    fn display(&self) -> String;
    /// `%v` text when the object is passed to a function by value (Go copies the
    /// struct, so a pointer-receiver `String()` no longer applies).
    fn value_repr(&self) -> String {
        self.display()
    }
    /// The plain data this object stands for when serialized (`toYaml`, `toJson`).
    fn to_data(&self) -> Value {
        Value::Nil
    }
    /// Go's `reflect.Kind` name of the value (`kindOf`): Helm's objects are
    /// pointers, Sprig's `time.Time` and certificates are structs.
    fn kind(&self) -> &'static str {
        "ptr"
    }
    /// The object itself, for functions that take this host type back as an argument.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

impl Value {
    pub fn str(s: impl Into<Rc<str>>) -> Value {
        Value::String(s.into())
    }

    pub fn list(v: Vec<Value>) -> Value {
        Value::List(Rc::new(v))
    }

    pub fn map(m: BTreeMap<String, Value>) -> Value {
        Value::Map(Rc::new(RefCell::new(m)))
    }

    pub fn empty_map() -> Value {
        Value::map(BTreeMap::new())
    }

    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Go's truthiness (`isTrue`): empty collections, zero numbers, false, nil are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) | Value::Int64(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::String(s) => !s.is_empty(),
            Value::Bytes(b) => !b.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.borrow().is_empty(),
            Value::Object(_) => true,
        }
    }

    /// Go's type name, as `%T` and error messages print it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Int64(_) => "int64",
            Value::Float(_) => "float64",
            Value::String(_) => "string",
            Value::Bytes(_) => "[]uint8",
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
            Value::Object(o) => o.type_name(),
        }
    }

    /// The integer value of an `int`/`int64`.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) | Value::Int64(i) => Some(*i),
            _ => None,
        }
    }

    /// Plain data for serialization: objects replaced by their data.
    pub fn to_data(&self) -> Value {
        match self {
            Value::Object(o) => o.to_data(),
            v => v.clone(),
        }
    }

    /// A deep copy (maps are shared references otherwise).
    pub fn deep_copy(&self) -> Value {
        self.deep_copy_depth(0)
    }

    fn deep_copy_depth(&self, depth: usize) -> Value {
        if depth > crate::MAX_DATA_DEPTH {
            return Value::Nil;
        }
        match self {
            Value::List(l) => Value::list(l.iter().map(|v| v.deep_copy_depth(depth + 1)).collect()),
            Value::Map(m) => Value::map(
                m.borrow()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.deep_copy_depth(depth + 1)))
                    .collect(),
            ),
            v => v.clone(),
        }
    }

    /// Converts JSON data (the caller's values) into a value; numbers become
    /// `float64` exactly as Helm's JSON decoding makes them.
    pub fn from_json(j: &serde_json::Value) -> Value {
        match j {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
            serde_json::Value::String(s) => Value::str(s.as_str()),
            serde_json::Value::Array(a) => Value::list(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => Value::map(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::gofmt::sprint_value(self))
    }
}

impl PartialEq for Value {
    /// Structural equality (Go's `reflect.DeepEqual` on data).
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Nil, Value::Nil) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) | (Value::Int64(a), Value::Int64(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::List(a), Value::List(b)) => a == b,
            (Value::Map(a), Value::Map(b)) => Rc::ptr_eq(a, b) || *a.borrow() == *b.borrow(),
            (Value::Object(a), Value::Object(b)) => Rc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::str(s)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::str(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

/// Sign and magnitude of an integer as Go's `strconv.ParseInt(s, 0, 64)`
/// reads it: an optional sign, then `0x`, `0o`, `0b` or a leading `0`
/// (octal) choose the base. `None` when it is not such a number or does
/// not fit 64 bits.
pub(crate) fn parse_go_magnitude(s: &str) -> Option<(bool, u64)> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let l = body.to_ascii_lowercase();
    let u = if let Some(h) = l.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()?
    } else if let Some(o) = l.strip_prefix("0o") {
        u64::from_str_radix(o, 8).ok()?
    } else if let Some(b) = l.strip_prefix("0b") {
        u64::from_str_radix(b, 2).ok()?
    } else if l.len() > 1 && l.starts_with('0') {
        u64::from_str_radix(&l[1..], 8).ok()?
    } else {
        if l.is_empty() || !l.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        l.parse::<u64>().ok()?
    };
    Some((neg, u))
}
