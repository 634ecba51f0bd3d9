//! Secrets in the comparison: `stringData` compared as the base64 `data` the
//! server stores, and values never shown in drift or diff output.

use super::Segment;
use serde_json::{Map, Value};

const REDACTED: &str = "(redacted)";

pub(super) fn is_secret(object: &Value) -> bool {
    object.get("apiVersion").and_then(Value::as_str) == Some("v1")
        && object.get("kind").and_then(Value::as_str) == Some("Secret")
}

pub(super) fn is_secret_data_path(path: &[Segment<'_>]) -> bool {
    matches!(path.first(), Some(Segment::Key("data" | "stringData")))
}

/// A desired Secret with `stringData` folded into `data` as the server does
/// (stringData wins over data for the same key); anything else unchanged.
pub(super) fn normalize_secret(desired: &Value) -> std::borrow::Cow<'_, Value> {
    use std::borrow::Cow;
    let string_data = match desired.get("stringData") {
        Some(Value::Object(m)) if is_secret(desired) => m,
        _ => return Cow::Borrowed(desired),
    };
    let mut out = desired.clone();
    let mut data = match desired.get("data") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    for (key, value) in string_data {
        // A non-string value is invalid for the server too; keep it as is so
        // it shows up as drift rather than vanishing.
        let encoded = match value {
            Value::String(s) => Value::String(base64(s.as_bytes())),
            other => other.clone(),
        };
        data.insert(key.clone(), encoded);
    }
    if let Some(object) = out.as_object_mut() {
        object.remove("stringData");
        object.insert("data".to_owned(), Value::Object(data));
    }
    Cow::Owned(out)
}

/// Standard base64 with padding, as the API server returns Secret data.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub(super) fn redact_secret_data(desired: &mut Value, live: Option<&mut Value>) {
    let live_data = live
        .and_then(|l| l.get_mut("data"))
        .and_then(Value::as_object_mut);
    let desired_data = desired.get_mut("data").and_then(Value::as_object_mut);
    match (desired_data, live_data) {
        (Some(d), Some(l)) => {
            for (key, dv) in d.iter_mut() {
                let changed = l.get(key) != Some(dv);
                *dv = Value::String(
                    if changed {
                        "(redacted, changed)"
                    } else {
                        REDACTED
                    }
                    .to_owned(),
                );
            }
            for lv in l.values_mut() {
                *lv = Value::String(REDACTED.to_owned());
            }
        }
        (Some(d), None) => {
            for dv in d.values_mut() {
                *dv = Value::String(REDACTED.to_owned());
            }
        }
        (None, Some(l)) => {
            for lv in l.values_mut() {
                *lv = Value::String(REDACTED.to_owned());
            }
        }
        (None, None) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::{diff, drift, is_applied};
    use super::*;
    use serde_json::json;

    fn secret(data: Value, string_data: Option<Value>) -> Value {
        let mut s = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "type": "Opaque", "data": data});
        if let Some(sd) = string_data {
            s["stringData"] = sd;
        }
        s
    }

    #[test]
    fn base64_matches_known_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn secret_string_data_compares_as_data() {
        let desired = secret(
            json!({"user": "YWRtaW4="}),
            Some(json!({"password": "hunter2"})),
        );
        let live = secret(
            json!({"user": "YWRtaW4=", "password": "aHVudGVyMg=="}),
            None,
        );
        assert!(is_applied(&desired, &live));
        assert_eq!(diff(&desired, Some(&live)), "");
        let live = secret(json!({"user": "YWRtaW4=", "password": "b3RoZXI="}), None);
        assert!(!is_applied(&desired, &live));
        // stringData wins over data for the same key.
        let desired = secret(
            json!({"password": "b3RoZXI="}),
            Some(json!({"password": "hunter2"})),
        );
        let live = secret(json!({"password": "aHVudGVyMg=="}), None);
        assert!(is_applied(&desired, &live));
    }

    #[test]
    fn secret_values_never_leak() {
        let desired = secret(
            json!({"token": "c2VjcmV0LW5ldw=="}),
            Some(json!({"password": "hunter2"})),
        );
        let live = secret(
            json!({"token": "c2VjcmV0LW9sZA==", "password": "b2xk"}),
            None,
        );
        let lines = drift(&desired, &live);
        assert_eq!(
            lines,
            [
                "data.password: differs (value redacted)",
                "data.token: differs (value redacted)"
            ]
        );
        for text in [
            diff(&desired, Some(&live)),
            diff(&desired, None),
            lines.join("\n"),
        ] {
            for secret in ["hunter2", "aHVudGVyMg", "c2VjcmV0", "b2xk"] {
                assert!(!text.contains(secret), "{secret} leaked in:\n{text}");
            }
        }
        let d = diff(&desired, Some(&live));
        assert!(
            d.contains("+  password: (redacted, changed)")
                || d.contains("+  password: '(redacted, changed)'"),
            "{d}"
        );
        // A ConfigMap is not redacted.
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "new"}});
        let live_cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "old"}});
        assert_eq!(drift(&cm, &live_cm), ["data.k: \"new\" != \"old\""]);
    }
}
