//! Multi-document YAML (or JSON) to validated Kubernetes objects, read the way kubectl reads manifests.
//!
//! The hub parses every rendered file and every renderer's output through
//! here. It lives in `common`, behind the `manifest` feature, so that the
//! fuzz targets in `fuzz/` can reach it without building the whole hub.

use serde_json::Value;
use serde_saphyr::{Budget, Options, Spanned};

/// Why text could not be read as manifests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("not UTF-8: {0}")]
    NotUtf8(String),
    #[error("{line}:{column}: {message}")]
    Yaml {
        line: u64,
        column: u64,
        message: String,
    },
    #[error("line {line}: document {document}: {message}")]
    InvalidObject {
        /// Line where the document starts, 1-based.
        line: u64,
        /// 1-based, counting every document of the text.
        document: usize,
        message: String,
    },
}

/// Parser settings close to kubectl's YAML 1.1 reader (sigs.k8s.io/yaml):
/// `0644` is octal (420), `yes`/`no` are booleans, duplicate keys are
/// errors, merge keys merge. Budgets are raised from serde-saphyr's
/// defaults, which suit config files, to fit generated manifests
/// (CRD bundles of thousands of documents and millions of nodes); the
/// input itself is bounded by the hub's tree limits.
fn options() -> Options {
    let mut budget = Budget::default();
    budget.max_documents = 100_000;
    budget.max_nodes = 20_000_000;
    budget.max_events = 50_000_000;
    budget.max_depth = 128;
    let mut options = Options::default();
    options.budget = Some(budget);
    options.legacy_octal_numbers = true;
    options.with_snippet = false;
    options
}

/// Parse `text` into objects: empty documents are skipped, `List` kinds
/// flattened, and every object checked for `apiVersion`, `kind` and
/// `metadata.name`. With `arrays`, a document may also be a sequence of
/// objects (what programs printing JSON tend to emit).
pub fn parse_objects(text: &[u8], arrays: bool) -> Result<Vec<Value>, ManifestError> {
    Ok(parse_located(text, arrays)?
        .into_iter()
        .map(|o| o.value)
        .collect())
}

/// An object and the document it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    /// Line where the document starts, 1-based.
    pub line: u64,
    /// 1-based, counting every document of the text.
    pub document: usize,
    pub value: Value,
}

/// [`parse_objects`], keeping where each object was read (objects of one
/// `List` or sequence share their document's place).
pub fn parse_located(text: &[u8], arrays: bool) -> Result<Vec<Located>, ManifestError> {
    let text = std::str::from_utf8(text).map_err(|e| ManifestError::NotUtf8(e.to_string()))?;
    let docs: Vec<Spanned<Value>> =
        serde_saphyr::from_multiple_with_options(text, options()).map_err(|e| yaml_error(&e))?;
    let mut out = Vec::with_capacity(docs.len());
    let mut objects = Vec::new();
    for (i, doc) in docs.into_iter().enumerate() {
        let document = i + 1;
        let line = doc.referenced.line();
        let invalid = |message: String| ManifestError::InvalidObject {
            line,
            document,
            message,
        };
        if doc.value.is_null() {
            continue;
        }
        match doc.value {
            Value::Array(items) if arrays => {
                for (i, item) in items.into_iter().enumerate() {
                    flatten(item, &mut objects).map_err(|e| invalid(format!("item {i}: {e}")))?;
                }
            }
            value => flatten(value, &mut objects).map_err(invalid)?,
        }
        out.extend(objects.drain(..).map(|value| Located {
            line,
            document,
            value,
        }));
    }
    Ok(out)
}

fn yaml_error(e: &serde_saphyr::Error) -> ManifestError {
    let e = e.without_snippet();
    let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
    ManifestError::Yaml {
        line,
        column,
        message: strip_location(&e.to_string()),
    }
}

/// serde-saphyr appends " at line L column C" to messages; the location is
/// printed in front instead, as compilers do.
fn strip_location(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message);
    match first.rfind(" at line ") {
        Some(i) => first[..i].to_owned(),
        None => first.to_owned(),
    }
}

/// Check `value` as an object, or flatten it if it is a list kind, into `out`.
pub fn flatten(value: Value, out: &mut Vec<Value>) -> Result<(), String> {
    let is_list = value
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"))
        && value.get("items").is_some_and(Value::is_array);
    if is_list {
        let Value::Object(mut map) = value else {
            return Err("not a mapping".into());
        };
        let Some(Value::Array(items)) = map.remove("items") else {
            return Ok(());
        };
        for (i, item) in items.into_iter().enumerate() {
            flatten(item, out).map_err(|e| format!("item {i}: {e}"))?;
        }
        return Ok(());
    }
    check_object(&value)?;
    out.push(value);
    Ok(())
}

fn check_object(value: &Value) -> Result<(), String> {
    let Some(map) = value.as_object() else {
        return Err(format!("expected a mapping, found {}", type_name(value)));
    };
    let field = |name: &str| match map.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(()),
        Some(Value::String(_)) => Err(format!("{name} is empty")),
        Some(other) => Err(format!(
            "{name} must be a string, found {}",
            type_name(other)
        )),
        None => Err(format!("missing {name}")),
    };
    field("apiVersion")?;
    field("kind")?;
    match map.get("metadata").and_then(|m| m.get("name")) {
        Some(Value::String(s)) if !s.is_empty() => Ok(()),
        Some(Value::String(_)) => Err("metadata.name is empty".into()),
        Some(other) => Err(format!(
            "metadata.name must be a string, found {}",
            type_name(other)
        )),
        None if generate_name(map).is_some() => {
            if is_hook(map) {
                Ok(())
            } else {
                Err("metadata.generateName without metadata.name is allowed only on hooks (annotation argocd.argoproj.io/hook or helm.sh/hook): the agent applies every other object by name".into())
            }
        }
        None if map.get("kind").and_then(Value::as_str) == Some("Kustomization") => {
            Err("missing metadata.name (a kustomization: use the kustomize renderer)".into())
        }
        None => Err("missing metadata.name".into()),
    }
}

/// Annotations that make an object a sync hook, which the agent creates
/// (POST) rather than applies, so it may be named by `generateName`.
pub const HOOK_ANNOTATIONS: [&str; 2] = ["argocd.argoproj.io/hook", "helm.sh/hook"];

fn generate_name(map: &serde_json::Map<String, Value>) -> Option<&str> {
    map.get("metadata")?
        .get("generateName")?
        .as_str()
        .filter(|s| !s.is_empty())
}

fn is_hook(map: &serde_json::Map<String, Value>) -> bool {
    let annotations = map.get("metadata").and_then(|m| m.get("annotations"));
    HOOK_ANNOTATIONS
        .iter()
        .any(|name| annotations.and_then(|a| a.get(*name)).is_some())
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}
