//! The jq path expressions of `ignoreDifferences` rules (Argo CD's
//! `jqPathExpressions`): checked on the hub, evaluated on the agent with
//! jaq, a maintained jq implementation.
//!
//! A rule runs on every pass over every object it selects, on a small edge
//! machine, so only expressions that finish quickly are accepted: no
//! definitions, loops or generators of their own (`def`, `recurse(f)`,
//! `range`, `repeat`, `while`, `until`, `limit`, `reduce`, `foreach`,
//! `input`, `env`), no string interpolation and no `*` (which repeats
//! strings); what is left walks the object it is given and ends with it. At
//! most [`MAX_PATHS`] paths are taken from one expression.

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;
use serde_json::Value;

/// Longest expression accepted, in bytes.
pub const MAX_EXPRESSION: usize = 512;
/// Most paths taken from one expression on one object.
pub const MAX_PATHS: usize = 1000;

/// Functions and keywords an expression may use.
const ALLOWED: &[&str] = &[
    "select",
    "test",
    "startswith",
    "endswith",
    "contains",
    "inside",
    "has",
    "in",
    "length",
    "not",
    "type",
    "and",
    "or",
    "if",
    "then",
    "elif",
    "else",
    "end",
    "as",
    "try",
    "catch",
    "empty",
    "null",
    "true",
    "false",
    "any",
    "all",
    "map",
    "keys",
    "values",
    "index",
    "ltrimstr",
    "rtrimstr",
    "ascii_downcase",
    "ascii_upcase",
    "tostring",
    "tonumber",
    "objects",
    "arrays",
    "strings",
    "numbers",
    "booleans",
    "nulls",
    "iterables",
    "scalars",
    "first",
    "last",
    "getpath",
    "to_entries",
    "from_entries",
    "with_entries",
    "split",
    "join",
    "recurse",
];

/// One step of a path: a key of a map or an index of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// Whether `expression` is a path expression the agent will evaluate.
pub fn check(expression: &str) -> Result<(), String> {
    PathExpression::new(expression).map(drop)
}

/// A checked and compiled path expression: compile once, then run it on
/// as many objects as needed.
pub struct PathExpression {
    filter: jaq_core::compile::Filter<jaq_core::Native<data::JustLut<Val>>>,
}

impl PathExpression {
    /// Check `expression` (length, what it may use) and compile it.
    pub fn new(expression: &str) -> Result<PathExpression, String> {
        if expression.len() > MAX_EXPRESSION {
            return Err(format!(
                "is {} bytes long; at most {MAX_EXPRESSION} are accepted",
                expression.len()
            ));
        }
        lexical_check(expression)?;
        Ok(PathExpression {
            filter: compile(expression)?,
        })
    }

    /// The paths the expression names in `object` (at most [`MAX_PATHS`]);
    /// an error at run time (`.spec.x[]` where `x` is absent) ends the list.
    pub fn paths(&self, object: &Value) -> Result<Vec<Vec<Step>>, String> {
        let filter = &self.filter;
        let text = object.to_string();
        let input = jaq_json::read::parse_single(text.as_bytes()).map_err(|e| e.to_string())?;
        let ctx = Ctx::<data::JustLut<Val>>::new(&filter.lut, Vars::new([]));
        let mut out = Vec::new();
        for path in filter.id.run((ctx, input)).map(unwrap_valr).take(MAX_PATHS) {
            let Ok(path) = path else { break };
            let path: Value = serde_json::from_str(&path.to_string()).map_err(|e| e.to_string())?;
            let steps: Option<Vec<Step>> = path
                .as_array()
                .map(|steps| {
                    steps
                        .iter()
                        .map(|s| match s {
                            Value::String(k) => Some(Step::Key(k.clone())),
                            Value::Number(n) => n.as_u64().map(|i| Step::Index(i as usize)),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            // Slices and negative indices have no plain path: skipped.
            if let Some(steps) = steps.filter(|s| !s.is_empty()) {
                out.push(steps);
            }
        }
        Ok(out)
    }
}

fn compile(
    expression: &str,
) -> Result<jaq_core::compile::Filter<jaq_core::Native<data::JustLut<Val>>>, String> {
    let code = format!("path({expression})");
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs());
    let loader = Loader::new(defs);
    let arena = Arena::default();
    let modules = loader
        .load(
            &arena,
            File {
                code: code.as_str(),
                path: (),
            },
        )
        .map_err(|_| "is not a valid jq expression".to_owned())?;
    Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|_| "is not a valid jq expression (unknown function or variable)".to_owned())
}

/// Refuse what could loop, grow or read outside the object.
fn lexical_check(expression: &str) -> Result<(), String> {
    let bytes = expression.as_bytes();
    let mut i = 0;
    let mut previous: Option<u8> = None;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'"' {
            // A string literal: skip it, refusing interpolation.
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                if bytes[i] == b'\\' {
                    if bytes.get(i + 1) == Some(&b'(') {
                        return Err("uses string interpolation, which is not accepted here".into());
                    }
                    i += 1;
                }
                i += 1;
            }
            previous = Some(b'"');
            i += 1;
            continue;
        }
        if c == b'*' {
            return Err("uses '*', which is not accepted here".into());
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let word = &expression[start..i];
            // `.name` is a field, `$name` a variable, `@name` a format.
            let is_name = !matches!(previous, Some(b'.' | b'$' | b'@'));
            let called_with_arguments =
                bytes[i..].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'(');
            if is_name && (!ALLOWED.contains(&word) || (word == "recurse" && called_with_arguments))
            {
                return Err(format!(
                    "uses {word:?}, which is not accepted in ignore rules (only path walks, select and comparisons)"
                ));
            }
            previous = Some(b'a');
            continue;
        }
        if !c.is_ascii_whitespace() {
            previous = Some(c);
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(expression: &str, object: &Value) -> Result<Vec<Vec<Step>>, String> {
        PathExpression::new(expression)?.paths(object)
    }

    fn key(k: &str) -> Step {
        Step::Key(k.into())
    }

    #[test]
    fn argo_cd_style_expressions_name_their_paths() {
        let webhook = json!({"webhooks": [
            {"name": "a", "clientConfig": {"caBundle": "x"}},
            {"name": "b", "clientConfig": {"service": {}}},
        ]});
        assert_eq!(
            paths(".webhooks[]?.clientConfig.caBundle", &webhook).unwrap(),
            [
                vec![
                    key("webhooks"),
                    Step::Index(0),
                    key("clientConfig"),
                    key("caBundle")
                ],
                vec![
                    key("webhooks"),
                    Step::Index(1),
                    key("clientConfig"),
                    key("caBundle")
                ],
            ]
        );
        let pod = json!({"spec": {"containers": [{"name": "app", "image": "a"}, {"name": "istio-proxy", "image": "b"}]}});
        assert_eq!(
            paths(
                r#".spec.containers[] | select(.name == "istio-proxy") | .image"#,
                &pod
            )
            .unwrap(),
            [vec![
                key("spec"),
                key("containers"),
                Step::Index(1),
                key("image")
            ]]
        );
        // Nothing there: no paths, and no error.
        assert_eq!(
            paths(".status.x[]?", &pod).unwrap(),
            Vec::<Vec<Step>>::new()
        );
    }

    #[test]
    fn what_could_loop_or_grow_is_refused() {
        for bad in [
            "def f: f; f",
            "recurse(.a)",
            "[range(100000000)]",
            "repeat(.)",
            r#"("x" * 100000000)"#,
            r#""\(.a)""#,
            "input",
            "$ENV",
            ".a | env",
            "limit(3; .[])",
            "reduce .[] as $x (0; . + $x)",
        ] {
            assert!(check(bad).is_err(), "{bad} was accepted");
        }
        assert!(check(&".a".repeat(300)).is_err());
        for good in [
            ".spec.replicas",
            ".metadata.annotations.\"a/b\"",
            ".. | .caBundle? // empty",
            ".spec.template.spec.containers[] | select(.name | startswith(\"istio\"))",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
        assert!(check(".spec[").is_err());
    }
}
