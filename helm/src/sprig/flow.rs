//! Sprig's defaults and flow functions: `default`, `empty`, `coalesce`, `ternary`,
//! `fail`, JSON output (`toRawJson`, `toPrettyJson`), `deepCopy`, type tests
//! (`kindOf`, `typeIs`) and `deepEqual`.

use super::*;

pub(super) fn add(m: &mut FuncMap) {
    use Ty::*;
    // Defaults and flow.
    m.insert("default", &[Any], Some(Any), |_, a| {
        Ok(if a.len() < 2 || empty(&a[1]) {
            a[0].clone()
        } else {
            a[1].clone()
        })
    });
    m.insert("empty", &[Any], None, |_, a| Ok(Value::Bool(empty(&a[0]))));
    m.insert("coalesce", &[], Some(Any), |_, a| {
        Ok(a.iter().find(|v| !empty(v)).cloned().unwrap_or(Value::Nil))
    });
    m.insert("all", &[], Some(Any), |_, a| {
        Ok(Value::Bool(a.iter().all(|v| !empty(v))))
    });
    m.insert("any", &[], Some(Any), |_, a| {
        Ok(Value::Bool(a.iter().any(|v| !empty(v))))
    });
    m.insert("ternary", &[Any, Any, Bool], None, |_, a| {
        Ok(if a[2].truthy() {
            a[0].clone()
        } else {
            a[1].clone()
        })
    });
    m.insert("fail", &[Str], None, |_, a| Err(s(&a[0]).to_string()));
    m.insert("deepCopy", &[Any], None, |_, a| Ok(a[0].deep_copy()));
    m.insert("mustDeepCopy", &[Any], None, |_, a| Ok(a[0].deep_copy()));
    m.insert("toRawJson", &[Any], None, |_, a| {
        crate::json::to_json(&a[0], false, None).map(Value::from)
    });
    m.insert("mustToRawJson", &[Any], None, |_, a| {
        crate::json::to_json(&a[0], false, None).map(Value::from)
    });
    m.insert("toPrettyJson", &[Any], None, |_, a| {
        crate::json::to_json(&a[0], true, Some("  ")).map(Value::from)
    });
    m.insert("mustToPrettyJson", &[Any], None, |_, a| {
        crate::json::to_json(&a[0], true, Some("  ")).map(Value::from)
    });
    m.insert("mustToJson", &[Any], None, |_, a| {
        crate::json::to_json(&a[0], true, None).map(Value::from)
    });
    m.insert("mustFromJson", &[Str], None, |_, a| {
        crate::json::from_json(s(&a[0]))
    });
    m.insert("typeOf", &[Any], None, |_, a| Ok(a[0].type_name().into()));
    m.insert("typeIs", &[Str, Any], None, |_, a| {
        Ok(Value::Bool(s(&a[0]) == a[1].type_name()))
    });
    m.insert("kindOf", &[Any], None, |_, a| Ok(kind_of(&a[0]).into()));
    m.insert("kindIs", &[Str, Any], None, |_, a| {
        Ok(Value::Bool(s(&a[0]) == kind_of(&a[1])))
    });
    m.insert("deepEqual", &[Any, Any], None, |_, a| {
        Ok(Value::Bool(a[0] == a[1]))
    });
}

pub(super) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Nil => "invalid",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Int64(_) => "int64",
        Value::Float(_) => "float64",
        Value::String(_) => "string",
        Value::Bytes(_) | Value::List(_) => "slice",
        Value::Map(_) => "map",
        Value::Object(o) => o.kind(),
    }
}
