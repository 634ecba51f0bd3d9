//! Go text/template's built-in functions: comparisons with Go's kind rules,
//! `not`, `len`, `index`, `slice`, `print*`, `html`, `js`, `urlquery`.

use super::exec::{Exec, FuncMap, Ty};
use crate::gofmt;
use crate::value::Value;

/// Adds Go's built-ins (`and`/`or` are handled by the executor: they short-circuit).
pub fn add(m: &mut FuncMap) {
    m.insert("not", &[Ty::Any], None, |_, a| {
        Ok(Value::Bool(!a[0].truthy()))
    });
    m.insert("len", &[Ty::Any], None, |e, a| {
        if a[0].is_nil() && e.arg_is_nil_interface(0) {
            return Err("len of nil pointer".into());
        }
        length(&a[0]).map(|n| Value::Int(n as i64))
    });
    m.insert("index", &[Ty::Any], Some(Ty::Any), |_, a| {
        index(&a[0], &a[1..])
    });
    m.insert("slice", &[Ty::Any], Some(Ty::Any), |_, a| {
        slice(&a[0], &a[1..])
    });
    m.insert("print", &[], Some(Ty::Any), |_, a| {
        Ok(Value::str(gofmt::sprint(&a)))
    });
    m.insert("println", &[], Some(Ty::Any), |_, a| {
        Ok(Value::str(gofmt::sprintln(&a)))
    });
    m.insert("printf", &[Ty::Str], Some(Ty::Any), |_, a| {
        Ok(Value::str(gofmt::sprintf(
            a[0].as_str().unwrap_or(""),
            &a[1..],
        )))
    });
    m.insert("html", &[], Some(Ty::Any), |_, a| {
        Ok(Value::str(html_escape(&eval_args(&a))))
    });
    m.insert("js", &[], Some(Ty::Any), |_, a| {
        Ok(Value::str(js_escape(&eval_args(&a))))
    });
    m.insert("urlquery", &[], Some(Ty::Any), |_, a| {
        Ok(Value::str(query_escape(&eval_args(&a))))
    });
    m.insert("eq", &[Ty::Any], Some(Ty::Any), eq_fn);
    m.insert("ne", &[Ty::Any, Ty::Any], None, |_, a| {
        eq(&a[0], &a[1..]).map(|b| Value::Bool(!b))
    });
    m.insert("lt", &[Ty::Any, Ty::Any], None, |_, a| {
        lt(&a[0], &a[1]).map(Value::Bool)
    });
    m.insert("le", &[Ty::Any, Ty::Any], None, |_, a| {
        le(&a[0], &a[1]).map(Value::Bool)
    });
    m.insert("gt", &[Ty::Any, Ty::Any], None, |_, a| {
        le(&a[0], &a[1]).map(|b| Value::Bool(!b))
    });
    m.insert("ge", &[Ty::Any, Ty::Any], None, |_, a| {
        lt(&a[0], &a[1]).map(|b| Value::Bool(!b))
    });
}

fn eq_fn(_: &mut Exec<'_>, a: Vec<Value>) -> Result<Value, String> {
    eq(&a[0], &a[1..]).map(Value::Bool)
}

#[derive(PartialEq, Clone, Copy)]
enum Kind {
    Invalid,
    Bool,
    Int,
    Float,
    Str,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) | Value::Int64(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::String(_) => Kind::Str,
        _ => Kind::Invalid,
    }
}

const BAD_COMPARISON: &str = "incompatible types for comparison";

/// Go 1.26 names both types: "incompatible types for comparison: int and bool".
fn bad_comparison(a: &Value, b: &Value) -> String {
    format!("{BAD_COMPARISON}: {} and {}", a.type_name(), b.type_name())
}
const BAD_COMPARISON_TYPE: &str = "invalid type for comparison";

/// Go's `eq`: true when the first argument equals any other.
pub fn eq(a: &Value, others: &[Value]) -> Result<bool, String> {
    if others.is_empty() {
        return Err("missing argument for comparison".into());
    }
    let k1 = kind(a);
    for b in others {
        let k2 = kind(b);
        let truth = if k1 != k2 {
            if !a.is_nil() && !b.is_nil() {
                return Err(bad_comparison(a, b));
            }
            false
        } else {
            match (a, b) {
                (Value::Bool(x), Value::Bool(y)) => x == y,
                (Value::Float(x), Value::Float(y)) => x == y,
                (Value::String(x), Value::String(y)) => x == y,
                _ if k1 == Kind::Int => a.as_int() == b.as_int(),
                (Value::Nil, Value::Nil) => true,
                (Value::Nil, _) | (_, Value::Nil) => false,
                (x, y) if x.type_name() != y.type_name() => {
                    return Err(format!(
                        "non-comparable types {}: {}, {}: {}",
                        gofmt::sprintf("%s", std::slice::from_ref(x)),
                        x.type_name(),
                        y.type_name(),
                        gofmt::sprint_value(y)
                    ));
                }
                (_, y) => {
                    return Err(format!(
                        "non-comparable type {}: {}",
                        gofmt::sprintf("%s", std::slice::from_ref(y)),
                        y.type_name()
                    ));
                }
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Go's `lt`.
pub fn lt(a: &Value, b: &Value) -> Result<bool, String> {
    let (k1, k2) = (kind(a), kind(b));
    if k1 == Kind::Invalid || k2 == Kind::Invalid {
        return Err(BAD_COMPARISON_TYPE.into());
    }
    if k1 != k2 {
        return Err(bad_comparison(a, b));
    }
    Ok(match (a, b) {
        (Value::Bool(_), _) => return Err(BAD_COMPARISON_TYPE.into()),
        (Value::Float(x), Value::Float(y)) => x < y,
        (Value::String(x), Value::String(y)) => x < y,
        _ => a.as_int() < b.as_int(),
    })
}

fn le(a: &Value, b: &Value) -> Result<bool, String> {
    if lt(a, b)? {
        return Ok(true);
    }
    eq(a, std::slice::from_ref(b))
}

fn length(v: &Value) -> Result<usize, String> {
    match v {
        Value::String(s) => Ok(s.len()),
        Value::Bytes(b) => Ok(b.len()),
        Value::List(l) => Ok(l.len()),
        Value::Map(m) => Ok(m.borrow().len()),
        Value::Object(o) => match o.to_data() {
            Value::Map(m) => Ok(m.borrow().len()),
            _ => Err(format!("len of type {}", o.type_name())),
        },
        // Go calls Type() on the invalid value for its message, which panics.
        Value::Nil => Err("reflect: call of reflect.Value.Type on zero Value".into()),
        v => Err(format!("len of type {}", v.type_name())),
    }
}

fn index_int(i: &Value) -> Result<i64, String> {
    match i {
        Value::Int(n) | Value::Int64(n) => Ok(*n),
        Value::Nil => Err("cannot index slice/array with nil".into()),
        v => Err(format!(
            "cannot index slice/array with type {}",
            v.type_name()
        )),
    }
}

fn index(item: &Value, idx: &[Value]) -> Result<Value, String> {
    let mut v = item.clone();
    for i in idx {
        v = match &v {
            Value::List(l) => {
                let x = index_int(i)?;
                if x < 0 || x as usize > l.len() {
                    return Err(format!("index out of range: {x}"));
                }
                // Go checks against the capacity, then reflect panics at the length.
                l.get(x as usize)
                    .cloned()
                    .ok_or("reflect: slice index out of range")?
            }
            Value::String(s) => {
                let x = index_int(i)?;
                if x < 0 || x as usize > s.len() {
                    return Err(format!("index out of range: {x}"));
                }
                if x as usize == s.len() {
                    return Err("reflect: string index out of range".into());
                }
                Value::Int(s.as_bytes()[x as usize] as i64)
            }
            Value::Map(m) => match i {
                Value::String(k) => m.borrow().get(&**k).cloned().unwrap_or(Value::Nil),
                Value::Nil => return Err("value is nil; should be of type string".into()),
                other => {
                    return Err(format!(
                        "value has type {}; should be string",
                        other.type_name()
                    ));
                }
            },
            Value::Object(o) => match (o.to_data(), i) {
                // A map[string]string's missing key is "" (its zero value), not nil.
                (Value::Map(_), Value::String(k)) if o.type_name() == "map[string]string" => {
                    o.field(k).unwrap_or_default()
                }
                (Value::Map(m), Value::String(k)) => {
                    m.borrow().get(&**k).cloned().unwrap_or(Value::Nil)
                }
                _ => return Err(format!("can't index item of type {}", o.type_name())),
            },
            Value::Nil => return Err("index of untyped nil".into()),
            other => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(v)
}

fn slice(item: &Value, idx: &[Value]) -> Result<Value, String> {
    if idx.len() > 3 {
        return Err(format!("too many slice indexes: {}", idx.len()));
    }
    let len = match item {
        Value::List(l) => l.len(),
        Value::String(s) => {
            if idx.len() == 3 {
                return Err("cannot 3-index slice a string".into());
            }
            s.len()
        }
        Value::Nil => return Err("slice of untyped nil".into()),
        v => return Err(format!("can't slice item of type {}", v.type_name())),
    };
    let mut ix = [0usize, len, len];
    for (n, i) in idx.iter().enumerate() {
        let x = index_int(i)?;
        if x < 0 || x as usize > len {
            return Err(format!("index out of range: {x}"));
        }
        ix[n] = x as usize;
    }
    if ix[0] > ix[1] {
        return Err(format!("invalid slice index: {} > {}", ix[0], ix[1]));
    }
    Ok(match item {
        Value::List(l) => Value::list(l[ix[0]..ix[1]].to_vec()),
        Value::String(s) => match s.get(ix[0]..ix[1]) {
            Some(t) => Value::str(t),
            None => Value::str(String::from_utf8_lossy(&s.as_bytes()[ix[0]..ix[1]]).into_owned()),
        },
        _ => Value::Nil,
    })
}

/// Go's `evalArgs`: one string argument as is, otherwise `fmt.Sprint`.
fn eval_args(a: &[Value]) -> String {
    if let [Value::String(s)] = a {
        return s.to_string();
    }
    gofmt::sprint(a)
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
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
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_comparison_kinds() {
        assert_eq!(eq(&Value::Int(1), &[Value::Int64(1)]), Ok(true));
        assert_eq!(
            eq(&Value::Int(1), &[Value::Float(1.0)]),
            Err("incompatible types for comparison: int and float64".to_string())
        );
        assert_eq!(eq(&Value::Nil, &[Value::str("x")]), Ok(false));
        assert_eq!(
            eq(&Value::str("a"), &[Value::str("b"), Value::str("a")]),
            Ok(true)
        );
        assert_eq!(
            lt(&Value::Nil, &Value::Int(1)),
            Err(BAD_COMPARISON_TYPE.to_string())
        );
        assert_eq!(lt(&Value::str("a"), &Value::str("b")), Ok(true));
        assert_eq!(le(&Value::Float(2.0), &Value::Float(2.0)), Ok(true));
    }

    #[test]
    fn index_and_slice() {
        let l = Value::list(vec![Value::Int(1), Value::Int(2), Value::Int(3)]);
        assert_eq!(index(&l, &[Value::Int(1)]), Ok(Value::Int(2)));
        assert_eq!(
            index(&l, &[Value::Int(3)]),
            Err("reflect: slice index out of range".to_string())
        );
        assert_eq!(
            index(&l, &[Value::Int(4)]),
            Err("index out of range: 4".to_string())
        );
        assert!(index(&l, &[Value::Float(1.0)]).is_err());
        assert_eq!(
            slice(&l, &[Value::Int(1)]),
            Ok(Value::list(vec![Value::Int(2), Value::Int(3)]))
        );
        assert_eq!(
            slice(&Value::str("hello"), &[Value::Int(1), Value::Int(3)]),
            Ok(Value::str("el"))
        );
    }
}
