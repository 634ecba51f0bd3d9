//! An app's `ignoreDifferences` rules applied to one desired object: every
//! field a rule names takes its live value (or is left out when live has
//! none), so those fields are never drift and an apply writes back what is
//! there, leaving them to whoever manages them (an autoscaler's replicas, a
//! controller's injected annotations), like Argo CD's
//! `RespectIgnoreDifferences`. An object that does not exist yet is created
//! with the desired values: there is nothing to keep.
//!
//! A rule may name field managers (`managedFieldsManagers`): the fields the
//! live object's `managedFields` assign to one of them take their live
//! values too, but only where the desired object sets them; one it leaves
//! out is not added, so server-side apply leaves it to that manager.

use serde_json::{Map, Value};
use switchyard_common::ignore_rules::{pointer_tokens, selects};
use switchyard_common::jq_paths::{PathExpression, Step};
use switchyard_common::proto::IgnoreRule;

/// `body` with the fields the rules selecting it name taken from `live`;
/// `None` when no rule selects it (use `body` as it is).
pub(crate) fn respect(body: &Value, live: &Value, rules: &[IgnoreRule]) -> Option<Value> {
    let api_version = body["apiVersion"].as_str().unwrap_or_default();
    let kind = body["kind"].as_str().unwrap_or_default();
    let name = body["metadata"]["name"].as_str().unwrap_or_default();
    // The app's namespace is filled in at apply time; live has it.
    let namespace = body["metadata"]["namespace"]
        .as_str()
        .or_else(|| live["metadata"]["namespace"].as_str());
    let mut selected = rules
        .iter()
        .filter(|rule| selects(rule, api_version, kind, name, namespace))
        .peekable();
    selected.peek()?;
    let mut out = body.clone();
    for rule in selected {
        for pointer in &rule.json_pointers {
            let Some(tokens) = pointer_tokens(pointer) else {
                continue;
            };
            match live.pointer(pointer) {
                Some(value) => set(&mut out, &tokens, value.clone()),
                None => remove(&mut out, &tokens),
            }
        }
        for expression in &rule.jq_path_expressions {
            // The hub checked the expression; one that fails here names
            // no field, which keeps the desired value. Compiled once for
            // both objects.
            let Ok(expression) = PathExpression::new(expression) else {
                continue;
            };
            // jq names a path for a missing field too (`path(.a)` of `{}`
            // is `["a"]`): only paths with a live value count as in live.
            let in_live: Vec<_> = expression
                .paths(live)
                .unwrap_or_default()
                .into_iter()
                .filter(|path| value_at(live, path).is_some())
                .collect();
            let in_desired = expression.paths(&out).unwrap_or_default();
            for path in &in_live {
                if let Some(value) = value_at(live, path) {
                    set(&mut out, &tokens_of(path), value.clone());
                }
            }
            for path in in_desired.iter().filter(|p| !in_live.contains(p)) {
                remove(&mut out, &tokens_of(path));
            }
        }
        for manager in &rule.managed_fields_managers {
            for fields in managed_by(live, manager) {
                take_managed(&mut out, live, fields);
            }
        }
    }
    Some(out)
}

/// The field sets (`fieldsV1`) the live object's `managedFields` record for
/// `manager`, whatever the operation.
fn managed_by<'v>(live: &'v Value, manager: &'v str) -> impl Iterator<Item = &'v Value> {
    live.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |entry| entry["manager"].as_str() == Some(manager))
        .filter_map(|entry| entry.get("fieldsV1"))
}

/// Whether a field set names the field as a whole (`{}` or `{".": {}}`).
fn whole(fields: &Value) -> bool {
    fields
        .as_object()
        .is_none_or(|entries| entries.keys().all(|k| k == "."))
}

/// Give every field `fields` names, and `out` sets, its value in `live`:
/// `f:NAME` is a map key, `k:{...}` the item of a keyed list with those key
/// fields (found by key in both, never by position). Set-list values
/// (`v:`) stay as desired: they are a value, not a field to take.
fn take_managed(out: &mut Value, live: &Value, fields: &Value) {
    let Some(entries) = fields.as_object() else {
        return;
    };
    for (name, below) in entries {
        if let Some(key) = name.strip_prefix("f:") {
            let (Value::Object(map), Some(live_value)) = (&mut *out, live.get(key)) else {
                continue;
            };
            let Some(desired) = map.get_mut(key) else {
                continue;
            };
            if whole(below) {
                *desired = live_value.clone();
            } else {
                take_managed(desired, live_value, below);
            }
        } else if let Some(key) = name.strip_prefix("k:") {
            // A key the server wrote is JSON; another is no field.
            let Ok(Value::Object(key)) = serde_json::from_str::<Value>(key) else {
                continue;
            };
            let matches = |item: &Value| key.iter().all(|(k, v)| item.get(k) == Some(v));
            let (Value::Array(items), Some(live_item)) = (
                &mut *out,
                live.as_array().and_then(|a| a.iter().find(|i| matches(i))),
            ) else {
                continue;
            };
            let Some(desired) = items.iter_mut().find(|i| matches(i)) else {
                continue;
            };
            if whole(below) {
                *desired = live_item.clone();
            } else {
                take_managed(desired, live_item, below);
            }
        }
    }
}

fn tokens_of(path: &[Step]) -> Vec<String> {
    path.iter()
        .map(|step| match step {
            Step::Key(key) => key.clone(),
            Step::Index(index) => index.to_string(),
        })
        .collect()
}

fn value_at<'v>(value: &'v Value, path: &[Step]) -> Option<&'v Value> {
    path.iter().try_fold(value, |at, step| match step {
        Step::Key(key) => at.get(key),
        Step::Index(index) => at.get(*index),
    })
}

/// Set the field at `tokens`, creating the maps on the way; a path through a
/// list item `body` does not have is left alone.
fn set(body: &mut Value, tokens: &[String], value: Value) {
    let Some((last, parents)) = tokens.split_last() else {
        return;
    };
    let mut at = body;
    for token in parents {
        at = match at {
            Value::Object(map) => map
                .entry(token.clone())
                .or_insert_with(|| Value::Object(Map::new())),
            Value::Array(items) => match token.parse::<usize>().ok().and_then(|i| items.get_mut(i))
            {
                Some(item) => item,
                None => return,
            },
            _ => return,
        };
    }
    match at {
        Value::Object(map) => {
            map.insert(last.clone(), value);
        }
        Value::Array(items) => {
            if let Some(item) = last.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                *item = value;
            }
        }
        _ => {}
    }
}

fn remove(body: &mut Value, tokens: &[String]) {
    let Some((last, parents)) = tokens.split_last() else {
        return;
    };
    let mut at = body;
    for token in parents {
        at = match at {
            Value::Object(map) => match map.get_mut(token) {
                Some(next) => next,
                None => return,
            },
            Value::Array(items) => match token.parse::<usize>().ok().and_then(|i| items.get_mut(i))
            {
                Some(item) => item,
                None => return,
            },
            _ => return,
        };
    }
    if let Value::Object(map) = at {
        map.remove(last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn replicas_rule() -> IgnoreRule {
        IgnoreRule {
            group: "apps".into(),
            kind: "Deployment".into(),
            json_pointers: vec!["/spec/replicas".into(), "/metadata/annotations/a~1b".into()],
            ..Default::default()
        }
    }

    fn deployment(replicas: i64) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "annotations": {"a/b": "git", "keep": "git"}},
               "spec": {"replicas": replicas, "template": {}}})
    }

    #[test]
    fn named_fields_take_live_values() {
        let mut live = deployment(7);
        live["metadata"]["annotations"]["a/b"] = json!("controller");
        let out = respect(&deployment(2), &live, &[replicas_rule()]).expect("selected");
        assert_eq!(out["spec"]["replicas"], 7);
        assert_eq!(out["metadata"]["annotations"]["a/b"], "controller");
        assert_eq!(out["metadata"]["annotations"]["keep"], "git");
    }

    #[test]
    fn a_field_live_lacks_is_left_out() {
        let mut live = deployment(2);
        live["spec"].as_object_mut().unwrap().remove("replicas");
        let out = respect(&deployment(2), &live, &[replicas_rule()]).unwrap();
        assert!(out["spec"].get("replicas").is_none(), "{out}");
        assert!(out["spec"].get("template").is_some());
    }

    #[test]
    fn unselected_objects_are_untouched() {
        let mut service = deployment(2);
        service["apiVersion"] = json!("v1");
        assert_eq!(respect(&service, &deployment(9), &[replicas_rule()]), None);
        let named = IgnoreRule {
            name: Some("api".into()),
            ..replicas_rule()
        };
        assert_eq!(respect(&deployment(2), &deployment(9), &[named]), None);
    }

    #[test]
    fn jq_paths_take_live_values_of_every_matching_item() {
        let rule = IgnoreRule {
            group: "admissionregistration.k8s.io".into(),
            kind: "ValidatingWebhookConfiguration".into(),
            jq_path_expressions: vec![".webhooks[]?.clientConfig.caBundle".into()],
            ..Default::default()
        };
        let hook = |bundles: [Option<&str>; 2]| {
            let webhooks: Vec<Value> = bundles
                .iter()
                .enumerate()
                .map(|(i, b)| match b {
                    Some(b) => json!({"name": format!("w{i}"), "clientConfig": {"caBundle": b, "url": "https://x"}}),
                    None => json!({"name": format!("w{i}"), "clientConfig": {"url": "https://x"}}),
                })
                .collect();
            json!({"apiVersion": "admissionregistration.k8s.io/v1",
                   "kind": "ValidatingWebhookConfiguration",
                   "metadata": {"name": "v"}, "webhooks": webhooks})
        };
        // The injector filled the first bundle; Git has a placeholder in the second.
        let out = respect(
            &hook([None, Some("placeholder")]),
            &hook([Some("injected"), None]),
            &[rule],
        )
        .unwrap();
        assert_eq!(out["webhooks"][0]["clientConfig"]["caBundle"], "injected");
        assert!(
            out["webhooks"][1]["clientConfig"].get("caBundle").is_none(),
            "{out}"
        );
        assert_eq!(out["webhooks"][1]["clientConfig"]["url"], "https://x");
    }

    #[test]
    fn fields_of_a_named_manager_take_live_values_where_desired_sets_them() {
        let rule = IgnoreRule {
            group: "apps".into(),
            kind: "Deployment".into(),
            managed_fields_managers: vec!["hpa".into()],
            ..Default::default()
        };
        let desired = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "web", "image": "web:2", "resources": {"limits": {"cpu": "1"}}},
                {"name": "log", "image": "log:1"}]}}}});
        let live = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "annotations": {"hpa/last": "x"}, "managedFields": [
                {"manager": "switchyard", "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
                {"manager": "hpa", "operation": "Update", "fieldsV1": {
                    "f:metadata": {"f:annotations": {"f:hpa/last": {}}},
                    "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                        "k:{\"name\":\"log\"}": {".": {}, "f:image": {}},
                        "k:{\"name\":\"web\"}": {"f:resources": {"f:limits": {"f:cpu": {}}}}}}}}}},
                {"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {"f:paused": {}}}}]},
            "spec": {"replicas": 7, "paused": true, "template": {"spec": {"containers": [
                {"name": "log", "image": "log:9"},
                {"name": "web", "image": "web:1", "resources": {"limits": {"cpu": "3"}}}]}}}});
        let out = respect(&desired, &live, std::slice::from_ref(&rule)).expect("selected");
        assert_eq!(out["spec"]["replicas"], 7);
        let containers = &out["spec"]["template"]["spec"]["containers"];
        // By key, not position; only the fields hpa owns.
        assert_eq!(containers[0]["image"], "web:2", "{out}");
        assert_eq!(containers[0]["resources"]["limits"]["cpu"], "3");
        assert_eq!(containers[1]["image"], "log:9");
        // Fields desired leaves out are not added; other managers' untouched.
        assert!(out["metadata"].get("annotations").is_none(), "{out}");
        assert!(out["spec"].get("paused").is_none(), "{out}");
        // A manager with no entry changes nothing.
        let other = IgnoreRule {
            managed_fields_managers: vec!["nobody".into()],
            ..rule
        };
        assert_eq!(respect(&desired, &live, &[other]), Some(desired));
    }

    #[test]
    fn list_items_are_reached_by_index_only_when_present() {
        let rule = IgnoreRule {
            group: "*".into(),
            kind: "*".into(),
            json_pointers: vec![
                "/spec/ports/0/nodePort".into(),
                "/spec/ports/3/nodePort".into(),
            ],
            ..Default::default()
        };
        let desired = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                             "spec": {"ports": [{"port": 80}]}});
        let live = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                          "spec": {"ports": [{"port": 80, "nodePort": 31000}]}});
        let out = respect(&desired, &live, &[rule]).unwrap();
        assert_eq!(
            out["spec"]["ports"],
            json!([{"port": 80, "nodePort": 31000}])
        );
    }
}
