//! Apply and prune order of a bundle's objects: phases, sync waves, kind order.
//!
//! - Phase 0 holds every Namespace and CustomResourceDefinition, whatever
//!   their wave: the rest cannot be created before them, and the caller waits
//!   for the CRDs to be Established after applying it. `phases()[0]` is
//!   always this phase, even when empty, so callers can find it by index.
//! - Then one phase per sync wave (annotation `switchyard.dev/sync-wave`, or
//!   Argo CD's `argocd.argoproj.io/sync-wave` so repositories written for
//!   Argo CD keep their order; an integer string, default 0; Switchyard's
//!   wins when both are set), ascending; these phases are never empty.
//! - Within a phase: by kind in the order Helm and Argo CD use (config and
//!   RBAC before workloads, workloads before what routes to them), unknown
//!   kinds and custom resources last; then namespace (cluster-scoped first),
//!   then name, then position in the bundle, so the order is deterministic.
//!
//! Kinds are matched on API group and kind, so a custom resource named
//! `Service` is not ordered as a core Service.

use serde_json::Value;
use std::cmp::Ordering;

/// The annotation that puts an object in a sync wave.
pub(crate) const SYNC_WAVE_ANNOTATION: &str = "switchyard.dev/sync-wave";

/// Argo CD's sync-wave annotation, read when Switchyard's is absent.
pub(crate) const ARGOCD_SYNC_WAVE_ANNOTATION: &str = "argocd.argoproj.io/sync-wave";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OrderError {
    #[error("{object}: annotation {annotation} must be an integer, got {value}")]
    InvalidSyncWave {
        object: String,
        annotation: &'static str,
        value: String,
    },
}

/// Kinds in apply order, each with the API groups it lives in (legacy groups
/// included so old manifests sort the same).
const KIND_ORDER: &[(&str, &[&str])] = &[
    ("Namespace", &[""]),
    ("NetworkPolicy", &["networking.k8s.io", "extensions"]),
    ("ResourceQuota", &[""]),
    ("LimitRange", &[""]),
    ("PodSecurityPolicy", &["policy", "extensions"]),
    ("PodDisruptionBudget", &["policy"]),
    ("ServiceAccount", &[""]),
    ("Secret", &[""]),
    ("SecretList", &[""]),
    ("ConfigMap", &[""]),
    ("StorageClass", &["storage.k8s.io"]),
    ("PersistentVolume", &[""]),
    ("PersistentVolumeClaim", &[""]),
    ("CustomResourceDefinition", &["apiextensions.k8s.io"]),
    ("ClusterRole", &["rbac.authorization.k8s.io"]),
    ("ClusterRoleList", &["rbac.authorization.k8s.io"]),
    ("ClusterRoleBinding", &["rbac.authorization.k8s.io"]),
    ("ClusterRoleBindingList", &["rbac.authorization.k8s.io"]),
    ("Role", &["rbac.authorization.k8s.io"]),
    ("RoleList", &["rbac.authorization.k8s.io"]),
    ("RoleBinding", &["rbac.authorization.k8s.io"]),
    ("RoleBindingList", &["rbac.authorization.k8s.io"]),
    ("Service", &[""]),
    ("DaemonSet", &["apps", "extensions"]),
    ("Pod", &[""]),
    ("ReplicationController", &[""]),
    ("ReplicaSet", &["apps", "extensions"]),
    ("Deployment", &["apps", "extensions"]),
    ("HorizontalPodAutoscaler", &["autoscaling"]),
    ("StatefulSet", &["apps"]),
    ("Job", &["batch"]),
    ("CronJob", &["batch"]),
    ("IngressClass", &["networking.k8s.io"]),
    ("Ingress", &["networking.k8s.io", "extensions"]),
    ("APIService", &["apiregistration.k8s.io"]),
];

/// Rank of a kind we do not know: after every known kind.
const UNKNOWN_KIND: usize = KIND_ORDER.len();

fn str_at<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn group_of(object: &Value) -> &str {
    str_at(object, "/apiVersion")
        .rsplit_once('/')
        .map_or("", |(group, _)| group)
}

fn kind_rank(group: &str, kind: &str) -> usize {
    KIND_ORDER
        .iter()
        .position(|(k, groups)| *k == kind && groups.contains(&group))
        .unwrap_or(UNKNOWN_KIND)
}

/// Namespaces and CRDs must exist before anything that lives in them or is
/// an instance of them.
fn is_phase_zero(group: &str, kind: &str) -> bool {
    matches!(
        (group, kind),
        ("", "Namespace") | ("apiextensions.k8s.io", "CustomResourceDefinition")
    )
}

/// How an object is named in errors: `group/Kind namespace/name`.
fn describe(object: &Value) -> String {
    let group = group_of(object);
    let kind = str_at(object, "/kind");
    let kind = if group.is_empty() {
        kind.to_owned()
    } else {
        format!("{group}/{kind}")
    };
    let name = str_at(object, "/metadata/name");
    match str_at(object, "/metadata/namespace") {
        "" => format!("{kind} {name}"),
        namespace => format!("{kind} {namespace}/{name}"),
    }
}

/// The object's sync wave: its `switchyard.dev/sync-wave` annotation, else
/// Argo CD's `argocd.argoproj.io/sync-wave`, 0 when neither is set.
/// Surrounding whitespace is tolerated; anything but an integer is an error,
/// since silently applying an object in the wrong wave could create it
/// before what it depends on.
pub(crate) fn sync_wave(object: &Value) -> Result<i64, OrderError> {
    let annotations = object.pointer("/metadata/annotations");
    let (name, annotation) = [SYNC_WAVE_ANNOTATION, ARGOCD_SYNC_WAVE_ANNOTATION]
        .into_iter()
        .find_map(|name| {
            let value = annotations?.get(name)?;
            (!value.is_null()).then_some((name, value))
        })
        .unwrap_or((SYNC_WAVE_ANNOTATION, &Value::Null));
    match annotation {
        Value::Null => Ok(0),
        Value::String(text) => {
            text.trim()
                .parse::<i64>()
                .map_err(|_| OrderError::InvalidSyncWave {
                    object: describe(object),
                    annotation: name,
                    value: format!("{text:?}"),
                })
        }
        other => Err(OrderError::InvalidSyncWave {
            object: describe(object),
            annotation: name,
            value: format!("{other} (annotations are strings)"),
        }),
    }
}

/// Sort key within a phase.
struct Key<'a> {
    rank: usize,
    group: &'a str,
    kind: &'a str,
    namespace: &'a str,
    name: &'a str,
    index: usize,
}

impl Key<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank
            .cmp(&other.rank)
            // Unknown kinds share a rank; keep each kind together.
            .then_with(|| self.group.cmp(other.group))
            .then_with(|| self.kind.cmp(other.kind))
            // "" (cluster-scoped) sorts before any namespace.
            .then_with(|| self.namespace.cmp(other.namespace))
            .then_with(|| self.name.cmp(other.name))
            .then_with(|| self.index.cmp(&other.index))
    }
}

/// Groups of indices into `objects`, to apply one group after another.
/// `[0]` is always the Namespace/CRD phase (possibly empty); then one
/// non-empty group per sync wave, ascending.
pub(crate) fn phases(objects: &[Value]) -> Result<Vec<Vec<usize>>, OrderError> {
    // (wave or None for phase 0, key)
    let mut keyed = Vec::with_capacity(objects.len());
    for (index, object) in objects.iter().enumerate() {
        // Validate every annotation, phase 0 included, so a typo is reported
        // wherever it is.
        let wave = sync_wave(object)?;
        let group = group_of(object);
        let kind = str_at(object, "/kind");
        let wave = (!is_phase_zero(group, kind)).then_some(wave);
        let key = Key {
            rank: kind_rank(group, kind),
            group,
            kind,
            namespace: str_at(object, "/metadata/namespace"),
            name: str_at(object, "/metadata/name"),
            index,
        };
        keyed.push((wave, key));
    }
    // None < Some(_), so phase 0 comes first.
    keyed.sort_by(|(wave_a, a), (wave_b, b)| wave_a.cmp(wave_b).then_with(|| a.cmp(b)));

    let mut phases: Vec<Vec<usize>> = vec![Vec::new()];
    let mut current: Option<Option<i64>> = None;
    for (wave, key) in keyed {
        match wave {
            None => phases[0].push(key.index),
            Some(_) if current == Some(wave) => {
                if let Some(last) = phases.last_mut() {
                    last.push(key.index);
                }
            }
            Some(_) => {
                current = Some(wave);
                phases.push(vec![key.index]);
            }
        }
    }
    Ok(phases)
}

/// Indices into `objects` in the order to apply them: the phases, flattened.
pub(crate) fn apply_order(objects: &[Value]) -> Result<Vec<usize>, OrderError> {
    Ok(phases(objects)?.into_iter().flatten().collect())
}

/// Indices into `objects` in the order to delete them: the reverse of the
/// apply order, so dependents go first and namespaces and CRDs (whose
/// deletion takes everything in them along) go last.
pub(crate) fn prune_order(objects: &[Value]) -> Result<Vec<usize>, OrderError> {
    let mut order = apply_order(objects)?;
    order.reverse();
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn obj(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Value {
        let mut o = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}});
        if let Some(ns) = namespace {
            o["metadata"]["namespace"] = json!(ns);
        }
        o
    }

    fn with_wave(mut o: Value, wave: &str) -> Value {
        o["metadata"]["annotations"] = json!({SYNC_WAVE_ANNOTATION: wave});
        o
    }

    fn names(objects: &[Value], order: &[usize]) -> Vec<String> {
        order
            .iter()
            .map(|&i| {
                format!(
                    "{}/{}",
                    str_at(&objects[i], "/kind"),
                    str_at(&objects[i], "/metadata/name")
                )
            })
            .collect()
    }

    #[test]
    fn sync_wave_parsing() {
        let o = obj("v1", "ConfigMap", Some("a"), "c");
        assert_eq!(sync_wave(&o), Ok(0));
        assert_eq!(sync_wave(&with_wave(o.clone(), "5")), Ok(5));
        assert_eq!(sync_wave(&with_wave(o.clone(), "-3")), Ok(-3));
        assert_eq!(sync_wave(&with_wave(o.clone(), " 2 ")), Ok(2));
        assert_eq!(sync_wave(&with_wave(o.clone(), "+1")), Ok(1));
        let mut other = o.clone();
        other["metadata"]["annotations"] = json!({"other": "x"});
        assert_eq!(sync_wave(&other), Ok(0));
        assert_eq!(sync_wave(&json!(null)), Ok(0));
        assert_eq!(
            sync_wave(&json!({"metadata": {"annotations": "odd"}})),
            Ok(0)
        );
    }

    #[test]
    fn argo_cds_sync_wave_is_read_and_switchyards_wins() {
        let mut o = obj("v1", "ConfigMap", Some("a"), "c");
        o["metadata"]["annotations"] = json!({ARGOCD_SYNC_WAVE_ANNOTATION: "-2"});
        assert_eq!(sync_wave(&o), Ok(-2));
        o["metadata"]["annotations"] =
            json!({ARGOCD_SYNC_WAVE_ANNOTATION: "-2", SYNC_WAVE_ANNOTATION: "4"});
        assert_eq!(sync_wave(&o), Ok(4));
        o["metadata"]["annotations"] = json!({ARGOCD_SYNC_WAVE_ANNOTATION: "soon"});
        assert_eq!(
            sync_wave(&o).unwrap_err().to_string(),
            "ConfigMap a/c: annotation argocd.argoproj.io/sync-wave must be an integer, got \"soon\""
        );
    }

    #[test]
    fn invalid_sync_wave_names_the_object() {
        let o = with_wave(obj("apps/v1", "Deployment", Some("shop"), "web"), "first");
        let err = sync_wave(&o).unwrap_err();
        assert_eq!(
            err.to_string(),
            "apps/Deployment shop/web: annotation switchyard.dev/sync-wave must be an integer, got \"first\""
        );
        let o = with_wave(obj("v1", "Namespace", None, "shop"), "1.5");
        assert_eq!(
            sync_wave(&o).unwrap_err().to_string(),
            "Namespace shop: annotation switchyard.dev/sync-wave must be an integer, got \"1.5\""
        );
        let mut o = obj("v1", "ConfigMap", Some("a"), "c");
        o["metadata"]["annotations"] = json!({SYNC_WAVE_ANNOTATION: 3});
        assert!(sync_wave(&o).is_err());
        assert_eq!(
            sync_wave(&with_wave(o, "99999999999999999999"))
                .map_err(|e| matches!(e, OrderError::InvalidSyncWave { .. })),
            Err(true)
        );
    }

    #[test]
    fn errors_propagate_from_phases() {
        let objects = vec![
            obj("v1", "ConfigMap", Some("a"), "ok"),
            with_wave(obj("v1", "Namespace", None, "a"), "x"),
        ];
        assert!(phases(&objects).is_err());
        assert!(apply_order(&objects).is_err());
        assert!(prune_order(&objects).is_err());
    }

    #[test]
    fn kind_order_within_a_wave() {
        let objects = vec![
            obj("networking.k8s.io/v1", "Ingress", Some("a"), "ing"),
            obj("apps/v1", "Deployment", Some("a"), "web"),
            obj("example.com/v1", "Widget", Some("a"), "w"),
            obj("v1", "Service", Some("a"), "svc"),
            obj("v1", "ConfigMap", Some("a"), "cm"),
            obj(
                "rbac.authorization.k8s.io/v1",
                "RoleBinding",
                Some("a"),
                "rb",
            ),
            obj("v1", "ServiceAccount", Some("a"), "sa"),
            obj("v1", "Secret", Some("a"), "s"),
            obj("batch/v1", "Job", Some("a"), "j"),
            obj("rbac.authorization.k8s.io/v1", "ClusterRole", None, "cr"),
        ];
        let order = apply_order(&objects).unwrap();
        assert_eq!(
            names(&objects, &order),
            [
                "ServiceAccount/sa",
                "Secret/s",
                "ConfigMap/cm",
                "ClusterRole/cr",
                "RoleBinding/rb",
                "Service/svc",
                "Deployment/web",
                "Job/j",
                "Ingress/ing",
                "Widget/w",
            ]
        );
    }

    #[test]
    fn namespaces_and_crds_form_phase_zero_whatever_their_wave() {
        let objects = vec![
            obj("v1", "ConfigMap", Some("a"), "cm"),
            with_wave(obj("v1", "Namespace", None, "a"), "7"),
            obj(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                None,
                "widgets.example.com",
            ),
            obj("example.com/v1", "Widget", Some("a"), "w"),
        ];
        let p = phases(&objects).unwrap();
        assert_eq!(p, vec![vec![1, 2], vec![0, 3]]);
    }

    #[test]
    fn phase_zero_is_present_even_when_empty() {
        let objects = vec![obj("v1", "ConfigMap", Some("a"), "cm")];
        assert_eq!(phases(&objects).unwrap(), vec![vec![], vec![0]]);
        assert_eq!(phases(&[]).unwrap(), vec![Vec::<usize>::new()]);
        assert!(apply_order(&[]).unwrap().is_empty());
    }

    #[test]
    fn waves_ascend_including_negative() {
        let objects = vec![
            with_wave(obj("apps/v1", "Deployment", Some("a"), "late"), "10"),
            obj("apps/v1", "Deployment", Some("a"), "default"),
            with_wave(obj("batch/v1", "Job", Some("a"), "migrate"), "-1"),
            with_wave(obj("v1", "ConfigMap", Some("a"), "also-late"), "10"),
        ];
        let p = phases(&objects).unwrap();
        assert_eq!(p, vec![vec![], vec![2], vec![1], vec![3, 0]]);
    }

    #[test]
    fn ties_break_by_namespace_then_name_then_position() {
        let objects = vec![
            obj("v1", "ConfigMap", Some("b"), "x"),
            obj("v1", "ConfigMap", Some("a"), "y"),
            obj("v1", "ConfigMap", Some("a"), "x"),
            obj("v1", "ConfigMap", Some("a"), "x"),
        ];
        assert_eq!(apply_order(&objects).unwrap(), vec![2, 3, 1, 0]);
    }

    #[test]
    fn cluster_scoped_before_namespaced_of_same_kind() {
        let objects = vec![
            obj("example.com/v1", "Thing", Some("a"), "t"),
            obj("example.com/v1", "Thing", None, "t"),
        ];
        assert_eq!(apply_order(&objects).unwrap(), vec![1, 0]);
    }

    #[test]
    fn unknown_kinds_group_by_kind() {
        let objects = vec![
            obj("b.example.com/v1", "Alpha", Some("a"), "1"),
            obj("a.example.com/v1", "Zeta", Some("a"), "2"),
            obj("b.example.com/v1", "Alpha", Some("a"), "0"),
        ];
        assert_eq!(apply_order(&objects).unwrap(), vec![1, 2, 0]);
    }

    #[test]
    fn custom_kind_named_like_core_kind_is_unknown() {
        let objects = vec![
            obj("serving.knative.dev/v1", "Service", Some("a"), "ksvc"),
            obj("apps/v1", "Deployment", Some("a"), "web"),
        ];
        assert_eq!(apply_order(&objects).unwrap(), vec![1, 0]);
        // A non-apiextensions "CustomResourceDefinition" is not phase 0.
        let objects = vec![obj(
            "example.com/v1",
            "CustomResourceDefinition",
            None,
            "fake",
        )];
        assert_eq!(phases(&objects).unwrap(), vec![vec![], vec![0]]);
    }

    #[test]
    fn odd_objects_do_not_panic() {
        let objects = vec![
            json!(null),
            json!(42),
            json!({"kind": 5}),
            json!({"metadata": "x"}),
        ];
        let order = apply_order(&objects).unwrap();
        assert_eq!(order.len(), 4);
    }

    #[test]
    fn prune_is_reverse_of_apply() {
        let objects = vec![
            obj("v1", "Namespace", None, "a"),
            obj("apps/v1", "Deployment", Some("a"), "web"),
            obj("v1", "ConfigMap", Some("a"), "cm"),
            with_wave(obj("v1", "Service", Some("a"), "svc"), "1"),
        ];
        let prune = prune_order(&objects).unwrap();
        assert_eq!(
            names(&objects, &prune),
            [
                "Service/svc",
                "Deployment/web",
                "ConfigMap/cm",
                "Namespace/a"
            ]
        );
    }

    fn arb_object() -> impl Strategy<Value = Value> {
        let kinds = prop::sample::select(vec![
            ("v1", "Namespace"),
            ("v1", "ConfigMap"),
            ("apps/v1", "Deployment"),
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
            ("example.com/v1", "Widget"),
            ("v1", "Service"),
        ]);
        (
            kinds,
            prop::option::of("[ab]"),
            "[xyz]",
            prop::option::of(-2i64..3),
        )
            .prop_map(|((api_version, kind), namespace, name, wave)| {
                let o = obj(api_version, kind, namespace.as_deref(), &name);
                match wave {
                    Some(w) => with_wave(o, &w.to_string()),
                    None => o,
                }
            })
    }

    proptest! {
        #[test]
        fn order_is_a_permutation_and_independent_of_input_order(
            objects in prop::collection::vec(arb_object(), 0..12),
            seed in any::<u64>(),
        ) {
            let order = apply_order(&objects).unwrap();
            let mut sorted = order.clone();
            sorted.sort_unstable();
            prop_assert_eq!(sorted, (0..objects.len()).collect::<Vec<_>>());

            // Shuffle deterministically and check the objects come out in the
            // same sequence (up to identical duplicates).
            let mut shuffled: Vec<usize> = (0..objects.len()).collect();
            let n = shuffled.len();
            let mut s = seed;
            for i in (1..n).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let j = usize::try_from(s >> 33).unwrap_or(0) % (i + 1);
                shuffled.swap(i, j);
            }
            let shuffled_objects: Vec<Value> = shuffled.iter().map(|&i| objects[i].clone()).collect();
            // Compare identities: duplicates (same kind, namespace and name)
            // keep their bundle order, which shuffling changes.
            let identity = |o: &Value| {
                (
                    str_at(o, "/apiVersion").to_owned(),
                    str_at(o, "/kind").to_owned(),
                    str_at(o, "/metadata/namespace").to_owned(),
                    str_at(o, "/metadata/name").to_owned(),
                )
            };
            let a: Vec<_> = order.iter().map(|&i| identity(&objects[i])).collect();
            let b_order = apply_order(&shuffled_objects).unwrap();
            let b: Vec<_> = b_order.iter().map(|&i| identity(&shuffled_objects[i])).collect();
            prop_assert_eq!(a, b);

            let mut prune = prune_order(&objects).unwrap();
            prune.reverse();
            prop_assert_eq!(prune, order);
        }

        #[test]
        fn waves_never_decrease_after_phase_zero(objects in prop::collection::vec(arb_object(), 0..12)) {
            let p = phases(&objects).unwrap();
            for &i in &p[0] {
                let kind = str_at(&objects[i], "/kind");
                prop_assert!(kind == "Namespace" || kind == "CustomResourceDefinition");
            }
            let waves: Vec<i64> = p[1..].iter().map(|g| {
                prop_assert!(!g.is_empty());
                let w = sync_wave(&objects[g[0]]).unwrap();
                for &i in g {
                    prop_assert_eq!(sync_wave(&objects[i]).unwrap(), w);
                }
                Ok(w)
            }).collect::<Result<_, TestCaseError>>()?;
            prop_assert!(waves.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
