//! What an `ignoreDifferences` rule selects and which fields it names: the
//! one reading of a rule, for the hub that validates it and the agent that
//! applies it (the rule itself travels in `proto::IgnoreRule`).

use crate::proto::IgnoreRule;

/// Why a rule cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("ignoreDifferences[{index}]: kind is required (a kind such as Deployment, or \"*\")")]
    MissingKind { index: usize },
    #[error(
        "ignoreDifferences[{index}]: lists no jsonPointers, jqPathExpressions or managedFieldsManagers, so it ignores nothing"
    )]
    NoFields { index: usize },
    #[error(
        "ignoreDifferences[{index}]: {pointer:?} is not a JSON pointer: it must start with '/' (e.g. /spec/replicas), and '~' only as ~0 or ~1"
    )]
    BadPointer { index: usize, pointer: String },
    #[error(
        "ignoreDifferences[{index}]: {pointer:?} would ignore the whole object or its identity; name a field below it"
    )]
    Identity { index: usize, pointer: String },
}

/// The tokens of a JSON pointer (RFC 6901), unescaped; `None` when it is not one.
pub fn pointer_tokens(pointer: &str) -> Option<Vec<String>> {
    let rest = pointer.strip_prefix('/')?;
    rest.split('/')
        .map(|token| {
            let mut out = String::new();
            let mut chars = token.chars();
            while let Some(c) = chars.next() {
                if c == '~' {
                    match chars.next() {
                        Some('0') => out.push('~'),
                        Some('1') => out.push('/'),
                        _ => return None,
                    }
                } else {
                    out.push(c);
                }
            }
            Some(out)
        })
        .collect()
}

/// Check every rule of an app, naming the first bad one.
pub fn validate(rules: &[IgnoreRule]) -> Result<(), RuleError> {
    for (index, rule) in rules.iter().enumerate() {
        if rule.kind.is_empty() {
            return Err(RuleError::MissingKind { index });
        }
        if rule.json_pointers.is_empty()
            && rule.jq_path_expressions.is_empty()
            && rule.managed_fields_managers.is_empty()
        {
            return Err(RuleError::NoFields { index });
        }
        for pointer in &rule.json_pointers {
            let bad = || RuleError::BadPointer {
                index,
                pointer: pointer.clone(),
            };
            let tokens = pointer_tokens(pointer).ok_or_else(bad)?;
            // Ignoring these would make the agent apply an object without
            // its identity or kind.
            let identity = matches!(
                tokens.iter().map(String::as_str).collect::<Vec<_>>()[..],
                [""] | ["apiVersion"]
                    | ["kind"]
                    | ["metadata"]
                    | ["metadata", "name" | "namespace"]
            );
            if identity {
                return Err(RuleError::Identity {
                    index,
                    pointer: pointer.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Whether `rule` selects the object with this apiVersion, kind, name and namespace.
pub fn selects(
    rule: &IgnoreRule,
    api_version: &str,
    kind: &str,
    name: &str,
    namespace: Option<&str>,
) -> bool {
    let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
    (rule.group == "*" || rule.group == group)
        && (rule.kind == "*" || rule.kind == kind)
        && rule.name.as_deref().is_none_or(|n| n == name)
        && rule
            .namespace
            .as_deref()
            .is_none_or(|n| Some(n) == namespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(group: &str, kind: &str, pointers: &[&str]) -> IgnoreRule {
        IgnoreRule {
            group: group.into(),
            kind: kind.into(),
            json_pointers: pointers.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn pointers_unescape() {
        assert_eq!(
            pointer_tokens("/metadata/annotations/a~1b~0c"),
            Some(vec![
                "metadata".into(),
                "annotations".into(),
                "a/b~c".into()
            ])
        );
        assert_eq!(pointer_tokens("spec/replicas"), None);
        assert_eq!(pointer_tokens("/a~2"), None);
    }

    #[test]
    fn bad_rules_are_named() {
        assert_eq!(
            validate(&[rule("apps", "Deployment", &["/spec/replicas"])]),
            Ok(())
        );
        assert_eq!(
            validate(&[
                rule("apps", "Deployment", &["/spec/replicas"]),
                rule("", "", &["/x"])
            ]),
            Err(RuleError::MissingKind { index: 1 })
        );
        assert_eq!(
            validate(&[rule("", "Service", &["spec.ports"])]),
            Err(RuleError::BadPointer {
                index: 0,
                pointer: "spec.ports".into()
            })
        );
        assert_eq!(
            validate(&[rule("", "Service", &[])]),
            Err(RuleError::NoFields { index: 0 })
        );
        for pointer in ["", "/", "/metadata/name", "/kind"] {
            assert!(
                validate(&[rule("", "Service", &[pointer])]).is_err(),
                "{pointer}"
            );
        }
    }

    #[test]
    fn selection_by_group_kind_name_namespace() {
        let deployments = rule("apps", "Deployment", &["/spec/replicas"]);
        assert!(selects(
            &deployments,
            "apps/v1",
            "Deployment",
            "web",
            Some("shop")
        ));
        assert!(!selects(
            &deployments,
            "v1",
            "Deployment",
            "web",
            Some("shop")
        ));
        assert!(!selects(
            &deployments,
            "apps/v1",
            "StatefulSet",
            "web",
            None
        ));
        let core = rule("", "ConfigMap", &["/data"]);
        assert!(selects(&core, "v1", "ConfigMap", "x", None));
        let one = IgnoreRule {
            name: Some("web".into()),
            namespace: Some("shop".into()),
            ..rule("*", "*", &["/spec"])
        };
        assert!(selects(&one, "apps/v1", "Deployment", "web", Some("shop")));
        assert!(!selects(
            &one,
            "apps/v1",
            "Deployment",
            "web",
            Some("other")
        ));
        assert!(!selects(&one, "apps/v1", "Deployment", "api", Some("shop")));
    }
}
