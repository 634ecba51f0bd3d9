//! Per-cluster variables in rendered objects: `${cluster.name}` and `${cluster.labels.KEY}` inside string values.

use serde_json::Value;
use std::collections::BTreeMap;

/// Text that marks a string as using (or escaping) a cluster variable.
const MARK: &str = "${cluster.";

/// Why an object could not be specialised for a cluster. `object` is
/// `Kind/name` or `Kind/namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubstituteError {
    #[error(
        "unknown variable ${{{variable}}} in {object}: use ${{cluster.name}} or ${{cluster.labels.KEY}} (write $${{...}} for a literal ${{...}})"
    )]
    UnknownVariable { variable: String, object: String },
    #[error("{object} uses ${{cluster.labels.{label}}}, but the cluster has no label {label:?}")]
    MissingLabel { label: String, object: String },
    #[error("unterminated ${{cluster. in {object}: missing '}}'")]
    Unterminated { object: String },
}

/// Whether any string value in `objects` mentions `${cluster.` (a variable
/// or an escaped one). When false, `substitute` returns its input
/// unchanged for every cluster, so one bundle can serve them all.
pub fn needs_substitution(objects: &[Value]) -> bool {
    fn any(v: &Value) -> bool {
        match v {
            Value::String(s) => s.contains(MARK),
            Value::Array(items) => items.iter().any(any),
            Value::Object(map) => map.values().any(any),
            _ => false,
        }
    }
    objects.iter().any(any)
}

/// Replace `${cluster.name}` and `${cluster.labels.KEY}` in every string
/// value (not in keys) of `objects`; `$${cluster.…}` stands for a literal
/// `${cluster.…}`. Text that does not start with `${cluster.` (a shell
/// script's `${HOME}`, say) is left alone, escapes included, so
/// substitution never changes an object that `needs_substitution` passes.
pub fn substitute(
    objects: &[Value],
    cluster_name: &str,
    labels: &BTreeMap<String, String>,
) -> Result<Vec<Value>, SubstituteError> {
    let vars = Vars {
        cluster_name,
        labels,
    };
    objects
        .iter()
        .map(|o| {
            let mut o = o.clone();
            vars.walk(&mut o).map_err(|e| e.for_object(&o))?;
            Ok(o)
        })
        .collect()
}

struct Vars<'a> {
    cluster_name: &'a str,
    labels: &'a BTreeMap<String, String>,
}

/// An error before the object it happened in is known.
enum Problem {
    Unknown(String),
    Missing(String),
    Unterminated,
}

impl Problem {
    fn for_object(self, o: &Value) -> SubstituteError {
        let s = |v: &Value| v.as_str().unwrap_or("?").to_owned();
        let kind = s(&o["kind"]);
        let name = s(&o["metadata"]["name"]);
        let object = match o["metadata"]["namespace"].as_str() {
            Some(ns) => format!("{kind}/{ns}/{name}"),
            None => format!("{kind}/{name}"),
        };
        match self {
            Problem::Unknown(variable) => SubstituteError::UnknownVariable { variable, object },
            Problem::Missing(label) => SubstituteError::MissingLabel { label, object },
            Problem::Unterminated => SubstituteError::Unterminated { object },
        }
    }
}

impl Vars<'_> {
    fn walk(&self, v: &mut Value) -> Result<(), Problem> {
        match v {
            Value::String(s) if s.contains(MARK) => {
                *s = self.expand(s)?;
                Ok(())
            }
            Value::Array(items) => items.iter_mut().try_for_each(|i| self.walk(i)),
            Value::Object(map) => map.values_mut().try_for_each(|i| self.walk(i)),
            _ => Ok(()),
        }
    }

    fn expand(&self, s: &str) -> Result<String, Problem> {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find(MARK) {
            let escaped = rest[..i].ends_with('$');
            // Keep the text before the mark, minus the escaping '$'.
            out.push_str(&rest[..if escaped { i - 1 } else { i }]);
            let after = &rest[i + 2..];
            let end = after.find('}').ok_or(Problem::Unterminated)?;
            let variable = &after[..end];
            if escaped {
                out.push_str("${");
                out.push_str(variable);
                out.push('}');
            } else {
                out.push_str(self.value_of(variable)?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn value_of(&self, variable: &str) -> Result<&str, Problem> {
        if variable == "cluster.name" {
            return Ok(self.cluster_name);
        }
        match variable.strip_prefix("cluster.labels.") {
            Some(key) if !key.is_empty() => self
                .labels
                .get(key)
                .map(String::as_str)
                .ok_or_else(|| Problem::Missing(key.to_owned())),
            _ => Err(Problem::Unknown(variable.to_owned())),
        }
    }
}
