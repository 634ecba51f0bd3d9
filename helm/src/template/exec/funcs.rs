//! The function table templates call into: Go parameter types, and each
//! function's signature and implementation.

use std::collections::HashMap;

use super::Exec;
use crate::value::Value;

/// A Go parameter type, as far as argument checking needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// `interface{}`
    Any,
    Str,
    Int,
    Int64,
    Float,
    Bool,
    List,
    Map,
}

impl Ty {
    pub(super) fn name(self) -> &'static str {
        match self {
            Ty::Any => "interface {}",
            Ty::Str => "string",
            Ty::Int => "int",
            Ty::Int64 => "int64",
            Ty::Float => "float64",
            Ty::Bool => "bool",
            Ty::List => "[]interface {}",
            Ty::Map => "map[string]interface {}",
        }
    }

    pub(super) fn can_be_nil(self) -> bool {
        matches!(self, Ty::Any | Ty::List | Ty::Map)
    }
}

/// A function's implementation: it gets the execution (for `include`, `tpl`,
/// deterministic randomness) and its checked arguments.
pub type NativeFn = fn(&mut Exec<'_>, Vec<Value>) -> Result<Value, String>;

/// A template function with its Go signature.
#[derive(Clone, Copy)]
pub struct Func {
    pub params: &'static [Ty],
    pub variadic: Option<Ty>,
    pub f: NativeFn,
}

/// The functions templates may call.
#[derive(Clone, Default)]
pub struct FuncMap {
    map: HashMap<&'static str, Func>,
}

impl FuncMap {
    pub fn insert(
        &mut self,
        name: &'static str,
        params: &'static [Ty],
        variadic: Option<Ty>,
        f: NativeFn,
    ) {
        self.map.insert(
            name,
            Func {
                params,
                variadic,
                f,
            },
        );
    }

    pub fn remove(&mut self, name: &str) {
        self.map.remove(name);
    }

    pub fn get(&self, name: &str) -> Option<&Func> {
        self.map.get(name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name) || name == "and" || name == "or"
    }
}
