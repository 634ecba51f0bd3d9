//! Splitting rendered templates into Kubernetes objects the way Helm does:
//! `---` separators, empty documents dropped, NOTES.txt and partials skipped,
//! objects ordered by Helm's install order, hooks kept (with their annotation) after them.

use std::collections::BTreeMap;

use super::Error;
use crate::value::Value;

/// One rendered object.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The template it came from.
    pub path: String,
    /// The document's text, trimmed.
    pub text: String,
    /// The parsed object.
    pub object: Value,
    pub kind: String,
    /// The `helm.sh/hook` annotation, when it is a hook.
    pub hook: Option<String>,
}

/// Helm's `InstallOrder`.
const INSTALL_ORDER: &[&str] = &[
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// Helm's `SplitManifests`: documents separated by `---` lines, trimmed, empty ones dropped.
pub fn split_documents(text: &str) -> Vec<String> {
    let sep = regex::Regex::new(r"(?:^|\s*\n)---\s*").expect("static regex");
    sep.split(text.trim())
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
        .collect()
}

fn get(v: &Value, path: &[&str]) -> Option<Value> {
    let mut cur = v.clone();
    for p in path {
        cur = match &cur {
            Value::Map(m) => m.borrow().get(*p).cloned()?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Every object of a render, in Helm's install order; hooks after the rest.
pub fn split_manifests(rendered: &BTreeMap<String, String>) -> Result<Vec<Manifest>, Error> {
    let mut regular = Vec::new();
    let mut hooks = Vec::new();
    for (path, text) in rendered {
        let base = path.rsplit('/').next().unwrap_or(path);
        if base == "NOTES.txt" || base.starts_with('_') || text.trim().is_empty() {
            continue;
        }
        for doc in split_documents(text) {
            let object = crate::yaml::parse(&doc)
                .map_err(|e| Error::Exec(format!("YAML parse error on {path}: {e}")))?;
            if object.is_nil() {
                continue;
            }
            let kind = get(&object, &["kind"])
                .and_then(|k| k.as_str().map(str::to_string))
                .unwrap_or_default();
            let hook = get(&object, &["metadata", "annotations", "helm.sh/hook"])
                .map(|h| crate::sprig::strval(&h));
            let m = Manifest {
                path: path.clone(),
                text: doc,
                object,
                kind,
                hook,
            };
            if m.hook.is_some() {
                hooks.push(m);
            } else {
                regular.push(m);
            }
        }
    }
    let rank = |k: &str| INSTALL_ORDER.iter().position(|x| *x == k);
    regular.sort_by(|a, b| match (rank(&a.kind), rank(&b.kind)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.kind.cmp(&b.kind),
    });
    regular.extend(hooks);
    Ok(regular)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_orders_and_drops_empty() {
        let mut r = BTreeMap::new();
        r.insert(
            "c/templates/a.yaml".to_string(),
            "kind: Deployment\n---\n# only a comment\n---\nkind: Service\n".to_string(),
        );
        r.insert("c/templates/NOTES.txt".to_string(), "hello".to_string());
        r.insert(
            "c/templates/b.yaml".to_string(),
            "---\nkind: Job\nmetadata:\n  annotations:\n    helm.sh/hook: post-install\n---\nkind: ConfigMap".to_string(),
        );
        let m = split_manifests(&r).unwrap();
        let kinds: Vec<&str> = m.iter().map(|x| x.kind.as_str()).collect();
        assert_eq!(kinds, ["ConfigMap", "Service", "Deployment", "Job"]);
        assert_eq!(m[3].hook.as_deref(), Some("post-install"));
    }
}
