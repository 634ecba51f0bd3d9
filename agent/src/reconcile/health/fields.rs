//! Field readers for the health rules: absent or null is `None`, a wrong
//! type is an error (which makes the object's health Unknown, naming the
//! field), and `status.conditions` as typed entries.

use super::{Assessment, Check, Health};
use serde_json::Value;

pub(super) fn field_name(pointer: &str) -> String {
    pointer.trim_start_matches('/').replace('/', ".")
}

pub(super) fn string<'a>(object: &'a Value, pointer: &str) -> Result<Option<&'a str>, String> {
    match object.pointer(pointer) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{} is not a string", field_name(pointer))),
    }
}

pub(super) fn int(object: &Value, pointer: &str) -> Result<Option<i64>, String> {
    match object.pointer(pointer) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("{} is not an integer", field_name(pointer))),
    }
}

pub(super) fn boolean(object: &Value, pointer: &str) -> Result<Option<bool>, String> {
    match object.pointer(pointer) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(format!("{} is not a boolean", field_name(pointer))),
    }
}

pub(super) fn array<'a>(object: &'a Value, pointer: &str) -> Result<&'a [Value], String> {
    match object.pointer(pointer) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(format!("{} is not a list", field_name(pointer))),
    }
}

/// One entry of `status.conditions`.
pub(super) struct Condition<'a> {
    pub(super) type_: &'a str,
    pub(super) status: &'a str,
    pub(super) reason: &'a str,
    pub(super) message: &'a str,
    pub(super) observed_generation: Option<i64>,
}

pub(super) fn conditions(object: &Value) -> Result<Vec<Condition<'_>>, String> {
    array(object, "/status/conditions")?
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let what = |field: &str| format!("status.conditions[{i}].{field}");
            let text = |field: &str| match c.get(field) {
                None | Some(Value::Null) => Ok(""),
                Some(Value::String(s)) => Ok(s.as_str()),
                Some(_) => Err(format!("{} is not a string", what(field))),
            };
            if !c.is_object() {
                return Err(format!("status.conditions[{i}] is not an object"));
            }
            Ok(Condition {
                type_: text("type")?,
                status: text("status")?,
                reason: text("reason")?,
                message: text("message")?,
                observed_generation: match c.get("observedGeneration") {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(v.as_i64().ok_or_else(|| {
                        format!("{} is not an integer", what("observedGeneration"))
                    })?),
                },
            })
        })
        .collect()
}

pub(super) fn find<'c, 'a>(
    conditions: &'c [Condition<'a>],
    type_: &str,
) -> Option<&'c Condition<'a>> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// `metadata.generation` and `status.observedGeneration`, both defaulting to
/// 0 as in the typed Go structs Argo CD reads.
pub(super) fn generations(object: &Value) -> Result<(i64, i64), String> {
    Ok((
        int(object, "/metadata/generation")?.unwrap_or(0),
        int(object, "/status/observedGeneration")?.unwrap_or(0),
    ))
}

/// `spec.replicas`, which the API server defaults to 1.
pub(super) fn spec_replicas(object: &Value) -> Result<i64, String> {
    Ok(int(object, "/spec/replicas")?.unwrap_or(1))
}

pub(super) fn status_int(object: &Value, field: &str) -> Result<i64, String> {
    Ok(int(object, &format!("/status/{field}"))?.unwrap_or(0))
}

pub(super) fn progressing(message: impl Into<String>) -> Check {
    Ok(Assessment::new(Health::Progressing, message))
}

pub(super) fn healthy() -> Check {
    Ok(Assessment::bare(Health::Healthy))
}
