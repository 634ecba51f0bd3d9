//! One object, one definition: a render that defines the same object twice
//! (same API group, kind, namespace and name) is refused, naming both
//! places, instead of leaving the agent to apply it twice with the last
//! write winning.

use super::RenderError;
use super::yaml::Sourced;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;

/// Common cluster-scoped kinds (API group, kind): a namespace written on
/// them, or the app's default one, does not make them different objects.
/// Others (custom resources) are told apart by the namespace they name.
const CLUSTER_SCOPED: &[(&str, &str)] = &[
    ("", "Namespace"),
    ("", "Node"),
    ("", "PersistentVolume"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("storage.k8s.io", "StorageClass"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("networking.k8s.io", "IngressClass"),
    ("node.k8s.io", "RuntimeClass"),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    ("apiregistration.k8s.io", "APIService"),
];

/// What makes an object the same object on a cluster. The version is not
/// part of it: `apps/v1` and `apps/v1beta2` Deployments named alike are one
/// Deployment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ObjectKey {
    pub(crate) group: String,
    pub(crate) kind: String,
    /// Empty for objects that name none and have no default namespace
    /// (cluster-scoped objects among them).
    pub(crate) namespace: String,
    pub(crate) name: String,
}

impl ObjectKey {
    /// The key of a checked object (`apiVersion`, `kind`, `metadata.name`
    /// are strings); an object naming no namespace takes `default_namespace`.
    pub(crate) fn of(object: &Value, default_namespace: Option<&str>) -> ObjectKey {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_owned();
        let api_version = text(object.get("apiVersion"));
        let group = api_version
            .split_once('/')
            .map_or("", |(group, _)| group)
            .to_owned();
        let metadata = object.get("metadata");
        let kind = text(object.get("kind"));
        let namespace = if CLUSTER_SCOPED.contains(&(group.as_str(), kind.as_str())) {
            String::new()
        } else {
            metadata
                .and_then(|m| m.get("namespace"))
                .and_then(Value::as_str)
                .filter(|ns| !ns.is_empty())
                .or(default_namespace)
                .unwrap_or_default()
                .to_owned()
        };
        ObjectKey {
            group,
            kind,
            namespace,
            name: text(metadata.and_then(|m| m.get("name"))),
        }
    }
}

impl fmt::Display for ObjectKey {
    /// `Deployment.apps web in namespace shop`, `ConfigMap settings`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind)?;
        if !self.group.is_empty() {
            write!(f, ".{}", self.group)?;
        }
        write!(f, " {}", self.name)?;
        if !self.namespace.is_empty() {
            write!(f, " in namespace {}", self.namespace)?;
        }
        Ok(())
    }
}

/// Refuse `objects` if two of them are the same object; the error names
/// the first pair found, in render order.
pub(super) fn check(
    objects: &[Sourced],
    default_namespace: Option<&str>,
) -> Result<(), RenderError> {
    let mut seen: HashMap<ObjectKey, &str> = HashMap::with_capacity(objects.len());
    for o in objects {
        // A hook named by generateName gets its name from the server at
        // each run: never the same object as another.
        if o.value["metadata"]["name"].is_null() {
            continue;
        }
        let key = ObjectKey::of(&o.value, default_namespace);
        if let Some(first) = seen.get(&key) {
            return Err(RenderError::Duplicate {
                object: key.to_string(),
                first: (*first).to_owned(),
                second: o.origin.clone(),
            });
        }
        seen.insert(key, &o.origin);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sourced(origin: &str, value: Value) -> Sourced {
        Sourced {
            origin: origin.into(),
            value,
        }
    }

    fn cm(name: &str, namespace: Option<&str>) -> Value {
        let mut v = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
        if let Some(ns) = namespace {
            v["metadata"]["namespace"] = json!(ns);
        }
        v
    }

    #[test]
    fn the_same_object_twice_is_refused_naming_both_places() {
        let objects = [
            sourced("a.yaml:1 (document 1)", cm("settings", None)),
            sourced("b.yaml:5 (document 2)", cm("other", None)),
            sourced("b.yaml:9 (document 3)", cm("settings", None)),
        ];
        let e = check(&objects, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ConfigMap settings is defined twice: at a.yaml:1 (document 1) and at b.yaml:9 \
             (document 3); an object may be defined once per app"
        );
    }

    #[test]
    fn identity_is_group_kind_namespace_and_name_not_version() {
        let deploy = |version: &str, ns: &str| {
            json!({"apiVersion": version, "kind": "Deployment",
                   "metadata": {"name": "web", "namespace": ns}})
        };
        // Different namespaces, kinds and groups are different objects.
        let distinct = [
            sourced("1", cm("web", Some("a"))),
            sourced("2", cm("web", Some("b"))),
            sourced("3", deploy("apps/v1", "a")),
            sourced("4", deploy("example.com/v1", "a")),
        ];
        assert!(check(&distinct, None).is_ok());
        // Another version of one group is the same object.
        let same = [
            sourced("1", deploy("apps/v1", "a")),
            sourced("2", deploy("apps/v1beta2", "a")),
        ];
        let e = check(&same, None).unwrap_err().to_string();
        assert!(
            e.starts_with("Deployment.apps web in namespace a is defined twice"),
            "{e}"
        );
        // No namespace means the app's namespace.
        let defaulted = [
            sourced("1", cm("web", None)),
            sourced("2", cm("web", Some("shop"))),
        ];
        assert!(check(&defaulted, None).is_ok());
        assert!(check(&defaulted, Some("shop")).is_err());
    }

    #[test]
    fn cluster_scoped_kinds_have_no_namespace() {
        let role = |ns: Option<&str>| {
            let mut v = json!({"apiVersion": "rbac.authorization.k8s.io/v1",
                               "kind": "ClusterRole", "metadata": {"name": "reader"}});
            if let Some(ns) = ns {
                v["metadata"]["namespace"] = json!(ns);
            }
            v
        };
        assert_eq!(
            ObjectKey::of(&role(Some("a")), None),
            ObjectKey::of(&role(None), Some("b"))
        );
        assert_eq!(
            ObjectKey::of(&role(None), Some("b")).to_string(),
            "ClusterRole.rbac.authorization.k8s.io reader"
        );
    }
}
