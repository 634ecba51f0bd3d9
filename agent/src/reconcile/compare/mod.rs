//! Whether a live object already holds what we would apply, and how it differs:
//! the walk over desired and live (`is_applied`, `drift`) here, value equality
//! (numbers, quantities) in `values`, Secrets in `secret`, the dry-run diff in
//! `diff`.
//!
//! Server-side apply lets the API server merge, so the agent cannot compare
//! whole objects: the live one carries defaults, other managers' fields and
//! normalised values. An object is *applied* when every field the desired
//! object sets is in the live object with an equal value:
//!
//! - Maps: subset. Keys only in live (server defaults, other managers) are
//!   ignored.
//! - Lists, lined up by what Switchyard's own `managedFields` entry says of
//!   them (`owned`): items of an associative list (containers by name, ports
//!   by port and protocol) are matched by key in any order, and items only
//!   in live (a sidecar an admission webhook injected) are not drift; every
//!   value of a set list must be in live; an atomic list, or any list of an
//!   object Switchyard has not applied yet, needs the same length and each
//!   desired item applied to the live item at the same position. Defaults
//!   the server adds inside items (`containers[].terminationMessagePath`)
//!   are never drift.
//! - Ignored in desired: top-level `status`, and `metadata.managedFields`,
//!   `resourceVersion`, `uid`, `creationTimestamp`, `generation`, `selfLink`,
//!   which the server owns.
//! - Numbers compare numerically (`1 == 1.0`); a number never equals a string
//!   (`port: 80` vs `port: "80"` is drift: they are different int-or-string
//!   values).
//! - Quantities: below a key named `resources`, `limits`, `requests`, `hard`,
//!   `capacity` or `overhead`, or at a key `sizeLimit`, two values that both
//!   parse as Kubernetes quantities compare by amount (`"1000m" == 1`,
//!   `"1Gi" == "1024Mi"`), since the server rewrites quantities to canonical
//!   form.
//! - A desired zero value (`null`, `false`, `0`, `""`, `[]`, `{}`, or a map of
//!   only such values) matches an absent live field: Kubernetes drops
//!   `omitempty` zero values when it stores an object, so `readOnly: false`
//!   never comes back. A desired `null` also requires the live field to be
//!   absent or `null`.
//! - Secrets: `stringData` is write-only (the server folds it into `data`), so
//!   desired `stringData` is compared as base64 `data`. Secret values never
//!   appear in `drift` or `diff` output.
//!
//! The caller must read the live object at the desired object's apiVersion.

mod diff;
mod owned;
mod secret;
mod values;

pub(crate) use diff::{diff, diff_named, removal};

use owned::{ListKind, child, list_kind, matching_item, our_fields};
use secret::{is_secret, is_secret_data_path, normalize_secret};
use serde_json::Value;
use std::fmt::Write as _;
use values::{in_quantity_context, leaf_equal};

/// Metadata fields the server owns; a desired object carrying them (copied
/// from a live object) must not count them as drift.
const SERVER_METADATA: &[&str] = &[
    "managedFields",
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "selfLink",
];

/// Longest rendering of a value in a drift line, in characters.
const MAX_VALUE_CHARS: usize = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// True when every field `desired` sets is present in `live` with an equal
/// value (see the module documentation for what "equal" means).
pub(crate) fn is_applied(desired: &Value, live: &Value) -> bool {
    no_difference(&normalize_secret(desired), live, our_fields(live))
}

/// Whether the walk finds no difference, stopping at the first.
fn no_difference(desired: &Value, live: &Value, owned: Option<&Value>) -> bool {
    let mut sink = Sink {
        lines: Vec::new(),
        first_only: true,
        redact_secret: false,
    };
    walk(desired, Some(live), owned, &mut Vec::new(), &mut sink);
    sink.lines.is_empty()
}

/// The differences between `desired` and `live`, one line each:
/// `spec.replicas: 2 != 3` (desired, then live), for status messages.
/// Empty exactly when [`is_applied`] is true.
pub(crate) fn drift(desired: &Value, live: &Value) -> Vec<String> {
    let redact_secret = is_secret(desired);
    let desired = normalize_secret(desired);
    let mut sink = Sink {
        lines: Vec::new(),
        first_only: false,
        redact_secret,
    };
    walk(
        &desired,
        Some(live),
        our_fields(live),
        &mut Vec::new(),
        &mut sink,
    );
    sink.lines
}

// ---- the walk ----

struct Sink {
    lines: Vec<String>,
    /// `is_applied` only needs to know whether there is a difference.
    first_only: bool,
    redact_secret: bool,
}

impl Sink {
    fn done(&self) -> bool {
        self.first_only && !self.lines.is_empty()
    }

    fn report(&mut self, path: &[Segment<'_>], desired: &str, live: &str) {
        let line = if self.redact_secret && is_secret_data_path(path) {
            format!("{}: differs (value redacted)", render_path(path))
        } else {
            format!("{}: {desired} != {live}", render_path(path))
        };
        self.lines.push(line);
    }
}

fn is_ignored(path: &[Segment<'_>], key: &str) -> bool {
    match path {
        [] => key == "status",
        [Segment::Key("metadata")] => SERVER_METADATA.contains(&key),
        _ => false,
    }
}

/// `owned` is Switchyard's owned-field set at this point of the object
/// (see `owned`), which says how the lists below line up.
fn walk<'a>(
    desired: &'a Value,
    live: Option<&Value>,
    owned: Option<&Value>,
    path: &mut Vec<Segment<'a>>,
    sink: &mut Sink,
) {
    if sink.done() {
        return;
    }
    let live = live.filter(|l| !l.is_null());
    match (desired, live) {
        (Value::Null, None) => {}
        (desired, None) => {
            if !matches_absent(desired) {
                sink.report(path, &render_value(desired), "(absent)");
            }
        }
        (Value::Object(d), Some(Value::Object(l))) => {
            for (key, dv) in d {
                if is_ignored(path, key) {
                    continue;
                }
                path.push(Segment::Key(key));
                walk(dv, l.get(key), child(owned, key), path, sink);
                path.pop();
                if sink.done() {
                    return;
                }
            }
        }
        (Value::Array(d), Some(Value::Array(l))) => walk_list(d, l, owned, path, sink),
        (desired, Some(live)) => {
            if !leaf_equal(desired, live, in_quantity_context(path)) {
                sink.report(path, &render_value(desired), &render_value(live));
            }
        }
    }
}

fn walk_list<'a>(
    desired: &'a [Value],
    live: &[Value],
    owned: Option<&Value>,
    path: &mut Vec<Segment<'a>>,
    sink: &mut Sink,
) {
    match list_kind(owned) {
        ListKind::Atomic => {
            if desired.len() != live.len() {
                sink.report(path, &items(desired.len()), &items(live.len()));
                return;
            }
            for (i, (dv, lv)) in desired.iter().zip(live).enumerate() {
                path.push(Segment::Index(i));
                walk(dv, Some(lv), None, path, sink);
                path.pop();
                if sink.done() {
                    return;
                }
            }
        }
        ListKind::Map(keys) => {
            for (i, dv) in desired.iter().enumerate() {
                path.push(Segment::Index(i));
                match matching_item(dv, live, &keys) {
                    Some((lv, item_owned)) => walk(dv, Some(lv), item_owned, path, sink),
                    None if dv.is_null() => {}
                    None => sink.report(path, &render_value(dv), "(absent)"),
                }
                path.pop();
                if sink.done() {
                    return;
                }
            }
        }
        ListKind::Set => {
            for (i, dv) in desired.iter().enumerate() {
                if !live.iter().any(|lv| is_applied_item(dv, lv)) {
                    path.push(Segment::Index(i));
                    sink.report(path, &render_value(dv), "(absent)");
                    path.pop();
                    if sink.done() {
                        return;
                    }
                }
            }
        }
    }
}

/// Whether one item of a set list is applied to a live item.
fn is_applied_item(desired: &Value, live: &Value) -> bool {
    no_difference(desired, live, None)
}

fn items(n: usize) -> String {
    if n == 1 {
        "1 item".to_owned()
    } else {
        format!("{n} items")
    }
}

/// Desired values that an absent live field satisfies (see module docs).
fn matches_absent(desired: &Value) -> bool {
    match desired {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.values().all(matches_absent),
    }
}

// ---- rendering ----

fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn render_path(path: &[Segment<'_>]) -> String {
    if path.is_empty() {
        return "(object)".to_owned();
    }
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(key) if is_plain_key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Key(key) => {
                let quoted = serde_json::to_string(key).unwrap_or_default();
                let _ = write!(out, "[{quoted}]");
            }
            Segment::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
        }
    }
    out
}

fn render_value(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= MAX_VALUE_CHARS {
        return text;
    }
    let mut short: String = text.chars().take(MAX_VALUE_CHARS - 1).collect();
    short.push('…');
    short
}

/// Objects the tests of every part of the comparison share.
#[cfg(test)]
mod fixtures {
    use serde_json::{Value, json};

    pub(super) fn deployment(image: &str, replicas: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{
                        "name": "web", "image": image,
                        "ports": [{"containerPort": 8080}],
                        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": 1}},
                    }]},
                },
            },
        })
    }

    /// What the API server returns for `deployment(...)`: defaults,
    /// normalised quantities, metadata noise and status.
    pub(super) fn live_deployment(image: &str, replicas: i64) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {
                "name": "web", "namespace": "shop", "labels": {"app": "web"},
                "uid": "0b7e", "resourceVersion": "4242", "generation": 3,
                "creationTimestamp": "2024-05-01T10:00:00Z",
                "annotations": {"deployment.kubernetes.io/revision": "3"},
                "managedFields": [{"manager": "switchyard", "operation": "Apply"}],
            },
            "spec": {
                "replicas": replicas,
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}, "creationTimestamp": null},
                    "spec": {
                        "containers": [{
                            "name": "web", "image": image, "imagePullPolicy": "IfNotPresent",
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File",
                            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1"}},
                        }],
                        "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                        "schedulerName": "default-scheduler", "securityContext": {},
                        "terminationGracePeriodSeconds": 30,
                    },
                },
            },
            "status": {"replicas": replicas, "readyReplicas": replicas},
        })
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{deployment, live_deployment};
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn live_with_server_defaults_is_applied() {
        let desired = deployment("web:1", json!(2));
        let live = live_deployment("web:1", 2);
        assert!(is_applied(&desired, &live));
        assert!(drift(&desired, &live).is_empty());
        assert_eq!(diff(&desired, Some(&live)), "");
    }

    #[test]
    fn changed_fields_are_drift() {
        let desired = deployment("web:2", json!(2));
        let live = live_deployment("web:1", 3);
        assert!(!is_applied(&desired, &live));
        assert_eq!(
            drift(&desired, &live),
            [
                "spec.replicas: 2 != 3",
                "spec.template.spec.containers[0].image: \"web:2\" != \"web:1\"",
            ]
        );
    }

    #[test]
    fn list_item_defaults_are_not_drift_but_length_is() {
        let desired = json!({"spec": {"containers": [{"name": "a", "image": "x"}]}});
        let live = json!({"spec": {"containers": [{"name": "a", "image": "x", "terminationMessagePath": "/dev/termination-log", "imagePullPolicy": "Always"}]}});
        assert!(is_applied(&desired, &live));
        let live =
            json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "istio-proxy"}]}});
        assert_eq!(
            drift(&desired, &live),
            ["spec.containers: 1 item != 2 items"]
        );
        // Order matters.
        let desired = json!({"args": ["a", "b"]});
        assert!(!is_applied(&desired, &json!({"args": ["b", "a"]})));
        assert!(is_applied(&desired, &json!({"args": ["a", "b"]})));
    }

    /// A Deployment as a real API server returns it after Switchyard applied
    /// `deployment("web:1", 2)` and an admission webhook injected a sidecar
    /// (first, as Istio does) with a port of its own: the field sets are in
    /// the `fieldsV1` format the server writes.
    fn injected_live() -> Value {
        let mut live = live_deployment("web:1", 2);
        live["metadata"]["managedFields"] = json!([
            {"manager": "switchyard", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {
                            "k:{\"name\":\"web\"}": {
                                ".": {}, "f:image": {}, "f:name": {},
                                "f:ports": {"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}},
                                "f:resources": {"f:limits": {"f:cpu": {}}, "f:requests": {"f:cpu": {}, "f:memory": {}}},
                            },
                        }},
                    },
                },
            }},
            {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
             "fieldsV1": {"f:status": {"f:replicas": {}}}},
        ]);
        let containers = live["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap();
        containers[0]["ports"].as_array_mut().unwrap().insert(
            0,
            json!({"containerPort": 15090, "protocol": "TCP", "name": "http-envoy-prom"}),
        );
        containers.insert(
            0,
            json!({"name": "istio-proxy", "image": "istio/proxyv2:1.22", "args": ["proxy", "sidecar"]}),
        );
        live
    }

    #[test]
    fn injected_items_of_lists_we_own_by_key_are_not_drift() {
        let desired = deployment("web:1", json!(2));
        let live = injected_live();
        assert!(is_applied(&desired, &live), "{:?}", drift(&desired, &live));
        assert!(drift(&desired, &live).is_empty());
        assert_eq!(diff(&desired, Some(&live)), "");
        // A change to our container is still found, at its own key.
        let desired = deployment("web:2", json!(2));
        assert_eq!(
            drift(&desired, &live),
            [r#"spec.template.spec.containers[0].image: "web:2" != "web:1""#]
        );
        let d = diff(&desired, Some(&live));
        let changed: Vec<&str> = d
            .lines()
            .filter(|l| !l.starts_with("---") && !l.starts_with("+++"))
            .filter(|l| l.starts_with('-') || l.starts_with('+'))
            .collect();
        assert_eq!(
            changed,
            ["-      - image: web:1", "+      - image: web:2"],
            "{d}"
        );
        assert!(!d.contains("istio"), "the sidecar is not ours to show: {d}");
    }

    #[test]
    fn a_keyed_item_missing_from_live_is_drift() {
        let mut desired = deployment("web:1", json!(2));
        desired["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "log-shipper", "image": "fluent-bit:3"}));
        let live = injected_live();
        assert!(!is_applied(&desired, &live));
        assert_eq!(
            drift(&desired, &live),
            [
                r#"spec.template.spec.containers[1]: {"image":"fluent-bit:3","name":"log-shipper"} != (absent)"#
            ]
        );
    }

    #[test]
    fn without_our_field_set_lists_stay_positional() {
        // Before Switchyard's first apply (or for another manager's entry
        // only) nothing says which lists are keyed: an extra item is drift.
        let desired = deployment("web:1", json!(2));
        let mut live = injected_live();
        live["metadata"]["managedFields"][0]["manager"] = json!("kubectl");
        assert_eq!(
            drift(&desired, &live),
            ["spec.template.spec.containers: 1 item != 2 items"]
        );
    }

    #[test]
    fn set_lists_need_every_desired_value() {
        let live = |finalizers: Value| {
            json!({"metadata": {
                "finalizers": finalizers,
                "managedFields": [{"manager": "switchyard", "operation": "Apply",
                    "fieldsV1": {"f:metadata": {"f:finalizers": {"v:\"example.com/ours\"": {}}}}}],
            }})
        };
        let desired = json!({"metadata": {"finalizers": ["example.com/ours"]}});
        assert!(is_applied(
            &desired,
            &live(json!(["other.io/theirs", "example.com/ours"]))
        ));
        assert_eq!(
            drift(&desired, &live(json!(["other.io/theirs"]))),
            [r#"metadata.finalizers[0]: "example.com/ours" != (absent)"#]
        );
    }

    #[test]
    fn missing_fields_are_drift() {
        assert_eq!(
            drift(
                &json!({"spec": {"a": 1, "b": {"c": "x"}}}),
                &json!({"spec": {"a": 1}})
            ),
            ["spec.b: {\"c\":\"x\"} != (absent)"]
        );
        assert_eq!(
            drift(&json!({"spec": {"a": 1}}), &json!({})),
            ["spec: {\"a\":1} != (absent)"]
        );
        assert!(!is_applied(&json!({"a": 1}), &json!({"a": null})));
    }

    #[test]
    fn zero_values_match_absent_fields() {
        let desired = json!({"spec": {"readOnly": false, "n": 0, "s": "", "l": [], "m": {}, "nested": {"x": false}, "nil": null}});
        assert!(is_applied(&desired, &json!({"spec": {}})));
        assert!(is_applied(&desired, &json!({})));
        assert_eq!(diff(&desired, Some(&json!({"spec": {}}))), "");
        // ...but not a different present value.
        assert!(!is_applied(
            &json!({"readOnly": false}),
            &json!({"readOnly": true})
        ));
        assert!(!is_applied(&json!({"n": 0}), &json!({"n": 1})));
        // A desired null wants the field gone.
        assert!(!is_applied(&json!({"x": null}), &json!({"x": 1})));
        assert!(is_applied(&json!({"x": null}), &json!({"x": null})));
    }

    #[test]
    fn null_list_items_are_absent_fields() {
        let desired = json!({"p": [[], {}, 0]});
        let live = json!({"p": [null, null, null]});
        assert!(is_applied(&desired, &live));
        assert_eq!(diff(&desired, Some(&live)), "");
        assert!(!is_applied(&json!({"p": [[1]]}), &live));
    }

    #[test]
    fn type_mismatch_of_containers() {
        assert!(!is_applied(&json!({"a": {"b": 1}}), &json!({"a": [1]})));
        assert!(!is_applied(&json!({"a": [1]}), &json!({"a": {"0": 1}})));
        assert!(!is_applied(&json!({"a": 1}), &json!({"a": {"b": 1}})));
        assert!(!is_applied(&json!({"a": "x"}), &json!("x")));
        assert!(is_applied(&json!(3), &json!(3.0)));
        assert_eq!(drift(&json!(1), &json!(2)), ["(object): 1 != 2"]);
    }

    #[test]
    fn metadata_noise_and_status_in_desired_are_ignored() {
        let desired = json!({
            "metadata": {"name": "x", "uid": "old", "resourceVersion": "1", "generation": 9,
                "creationTimestamp": "2020-01-01T00:00:00Z", "managedFields": [{"manager": "kubectl"}], "selfLink": "/x"},
            "spec": {"a": 1},
            "status": {"phase": "Old"},
        });
        let live = json!({"metadata": {"name": "x", "uid": "new", "resourceVersion": "77"}, "spec": {"a": 1}, "status": {"phase": "New"}});
        assert!(is_applied(&desired, &live));
        assert_eq!(diff(&desired, Some(&live)), "");
        // Only top-level status and metadata: nested ones are real fields.
        let desired = json!({"spec": {"status": "on", "metadata": {"uid": "u"}}});
        let live = json!({"spec": {"status": "off", "metadata": {"uid": "v"}}});
        assert_eq!(drift(&desired, &live).len(), 2);
        // Labels and annotations: subset.
        let desired = json!({"metadata": {"labels": {"app": "web"}}});
        let live = json!({"metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}}});
        assert!(is_applied(&desired, &live));
    }

    #[test]
    fn paths_quote_odd_keys() {
        let desired = json!({"metadata": {"annotations": {"switchyard.dev/sync-wave": "1"}}, "data": {"a b": "x"}});
        let live = json!({"metadata": {"annotations": {"switchyard.dev/sync-wave": "2"}}, "data": {"a b": "y"}});
        assert_eq!(
            drift(&desired, &live),
            [
                "data[\"a b\"]: \"x\" != \"y\"",
                "metadata.annotations[\"switchyard.dev/sync-wave\"]: \"1\" != \"2\"",
            ]
        );
    }

    #[test]
    fn long_values_are_shortened() {
        let long = "x".repeat(500);
        let lines = drift(&json!({"a": long}), &json!({"a": "y"}));
        assert_eq!(lines.len(), 1);
        assert!(lines[0].chars().count() < 100, "{}", lines[0]);
        assert!(lines[0].contains('…'));
    }

    // ---- properties ----

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            (-1e9f64..1e9).prop_map(|f| json!(f)),
            "[a-z0-9]{0,4}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,3}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn arb_object() -> impl Strategy<Value = Value> {
        prop::collection::btree_map("[a-z]{1,3}", arb_json(), 0..5)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
    }

    /// Adds a key the generator never produces to every map.
    fn add_fields(value: &mut Value) {
        match value {
            Value::Object(m) => {
                m.values_mut().for_each(add_fields);
                m.insert("extra".to_owned(), json!({"server": "default"}));
            }
            Value::Array(a) => a.iter_mut().for_each(add_fields),
            _ => {}
        }
    }

    /// JSON pointers of every scalar (including null) in `value`.
    fn scalar_paths(value: &Value, prefix: String, out: &mut Vec<String>) {
        match value {
            Value::Object(m) => {
                for (k, v) in m {
                    scalar_paths(v, format!("{prefix}/{k}"), out);
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    scalar_paths(v, format!("{prefix}/{i}"), out);
                }
            }
            _ => out.push(prefix),
        }
    }

    proptest! {
        // Some generated objects have no scalar (or number) to change.
        #![proptest_config(ProptestConfig { max_global_rejects: 1_000_000, ..ProptestConfig::default() })]

        #[test]
        fn a_value_is_applied_to_itself(x in arb_object()) {
            prop_assert!(is_applied(&x, &x));
            prop_assert!(drift(&x, &x).is_empty());
            prop_assert_eq!(diff(&x, Some(&x)), "");
        }

        #[test]
        fn extra_live_fields_keep_it_applied(x in arb_object()) {
            let mut live = x.clone();
            add_fields(&mut live);
            prop_assert!(is_applied(&x, &live));
            prop_assert_eq!(diff(&x, Some(&live)), "");
        }

        #[test]
        fn changing_a_desired_scalar_is_drift(x in arb_object(), pick in any::<prop::sample::Index>()) {
            let mut paths = Vec::new();
            scalar_paths(&x, String::new(), &mut paths);
            prop_assume!(!paths.is_empty());
            let path = &paths[pick.index(paths.len())];
            let mut live = x.clone();
            add_fields(&mut live);
            *live.pointer_mut(path).unwrap() = json!("\u{1}changed");
            prop_assert!(!is_applied(&x, &live));
            let lines = drift(&x, &live);
            prop_assert_eq!(lines.len(), 1);
            prop_assert!(!diff(&x, Some(&live)).is_empty());
        }

        #[test]
        fn changing_a_desired_number_is_drift(x in arb_object(), pick in any::<prop::sample::Index>()) {
            let mut paths = Vec::new();
            scalar_paths(&x, String::new(), &mut paths);
            paths.retain(|p| x.pointer(p).is_some_and(Value::is_number));
            prop_assume!(!paths.is_empty());
            let path = &paths[pick.index(paths.len())];
            let mut live = x.clone();
            let n = live.pointer_mut(path).unwrap();
            *n = match n.as_i64() {
                Some(i) => json!(i.wrapping_add(1)),
                None => json!(n.as_f64().unwrap_or(0.0) + 0.25),
            };
            prop_assert!(!is_applied(&x, &live));
        }

        #[test]
        fn drift_is_empty_iff_applied(x in arb_object(), y in arb_object()) {
            prop_assert_eq!(is_applied(&x, &y), drift(&x, &y).is_empty());
            // diff agrees too: no change shown when applied.
            if is_applied(&x, &y) {
                prop_assert_eq!(diff(&x, Some(&y)), "");
            }
        }
    }
}
