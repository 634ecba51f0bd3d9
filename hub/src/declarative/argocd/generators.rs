//! ApplicationSet generators' parameters and templates: the parameters a
//! directory or cluster yields, template merging and `{{…}}` substitution
//! (fasttemplate and Go-template styles), and cluster selectors as labels.

use super::*;

/// Parameters of a Git generator's path (Argo CD's `path`, `path.basename`…).
pub(super) fn path_params(dir: &str, go: bool) -> BTreeMap<String, String> {
    let basename = dir.rsplit('/').next().unwrap_or(dir).to_owned();
    let normalized: String = basename
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut p = BTreeMap::new();
    p.insert(
        if go { "path.path" } else { "path" }.to_owned(),
        dir.to_owned(),
    );
    p.insert("path.basename".into(), basename);
    p.insert("path.basenameNormalized".into(), normalized);
    p
}

/// A generator's own `template` merged over the set's.
pub(super) fn merged_template(base: &Value, over: &Value) -> Value {
    let mut out = base.clone();
    merge(&mut out, over);
    out
}

pub(super) fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) if !o.is_null() => *b = o.clone(),
        _ => {}
    }
}

/// `a: {b: c}` as `a.b = c`; scalars as their text.
pub(super) fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_owned()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                flatten(&key(k), v, out);
            }
        }
        Value::String(s) => {
            out.insert(prefix.to_owned(), s.clone());
        }
        Value::Null | Value::Array(_) => {}
        other => {
            out.insert(prefix.to_owned(), other.to_string());
        }
    }
}

/// Every string of `template` with `{{key}}` (or `{{.key}}` for Go
/// templates) replaced, spaces inside the braces allowed.
pub(super) fn substitute(template: &Value, params: &BTreeMap<String, String>, go: bool) -> Value {
    match template {
        Value::String(s) => Value::String(substitute_text(s, params, go)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| substitute(v, params, go)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (substitute_text(k, params, go), substitute(v, params, go)))
                .collect::<Map<_, _>>(),
        ),
        other => other.clone(),
    }
}

pub(super) fn substitute_text(text: &str, params: &BTreeMap<String, String>, go: bool) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        let inner = rest[start + 2..start + len].trim();
        let key = if go {
            inner.strip_prefix('.')
        } else {
            Some(inner)
        };
        match key.and_then(|k| params.get(k)) {
            Some(value) => {
                out.push_str(&rest[..start]);
                out.push_str(value);
            }
            None => out.push_str(&rest[..start + len + 2]),
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

/// The first `{{…}}` left in any string of `value`.
pub(super) fn unresolved(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => s.find("{{").map(|i| {
            let end = s[i..].find("}}").map_or(s.len(), |e| i + e + 2);
            s[i..end].to_owned()
        }),
        Value::Array(items) => items.iter().find_map(unresolved),
        Value::Object(map) => map.values().find_map(unresolved),
        _ => None,
    }
}

/// A Kubernetes `LabelSelector` (matchLabels, matchExpressions) as
/// Switchyard's selector text.
pub(super) fn label_selector(selector: &Value) -> Result<String, String> {
    let mut parts = Vec::new();
    if let Some(labels) = selector["matchLabels"].as_object() {
        for (k, v) in labels {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    for e in selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = e["key"]
            .as_str()
            .ok_or("matchExpressions[].key is missing")?;
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        parts.push(match e["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_owned(),
            "DoesNotExist" => format!("!{key}"),
            other => return Err(format!("matchExpressions operator {other:?} is unknown")),
        });
    }
    let text = parts.join(",");
    switchyard_common::selector::Selector::parse(&text)
        .map(|s| s.to_string())
        .map_err(|e| format!("cluster selector {text:?}: {e}"))
}

/// A label value naming a cluster by its API server URL's host.
pub(super) fn cluster_label_value(server: &str) -> String {
    let host = server
        .split("://")
        .nth(1)
        .unwrap_or(server)
        .split(['/', ':'])
        .next()
        .unwrap_or(server);
    host.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

pub(super) fn cluster_label_valid(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric())
}
