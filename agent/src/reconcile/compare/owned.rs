//! How the comparison lines up list items, from the fields Switchyard's
//! field manager owns.
//!
//! The API server records, per field manager, which fields it set
//! (`metadata.managedFields[].fieldsV1`). There a list the schema marks
//! associative (`x-kubernetes-list-type: map`: containers by `name`, ports
//! by `containerPort` and `protocol`, env by `name`) shows its items as
//! `k:{"name":"web"}` keys, a set list (`list-type: set`: finalizers) as
//! `v:"value"` keys, and an atomic list has no item keys at all. The agent
//! has no OpenAPI schema, so its own entry is how it learns which lists are
//! which:
//!
//! - a *map list* is compared item by item by key, in any order, and items
//!   only in live (a sidecar an admission webhook injected, a port another
//!   controller added) are not drift: server-side apply leaves them alone,
//!   so flagging them would repair forever;
//! - a *set list* needs every desired value somewhere in live;
//! - an *atomic* list, or any list before Switchyard has applied the object
//!   (no entry yet), keeps the positional comparison with equal lengths,
//!   since applying replaces the whole list.

use super::values::leaf_equal;
use serde_json::{Map, Value};

/// The field set Switchyard's `Apply` entry records for `live`, if any.
pub(super) fn our_fields(live: &Value) -> Option<&Value> {
    live.get("metadata")?
        .get("managedFields")?
        .as_array()?
        .iter()
        .find(|entry| {
            entry.get("manager").and_then(Value::as_str)
                == Some(crate::reconcile::cluster::FIELD_MANAGER)
                && entry.get("operation").and_then(Value::as_str) == Some("Apply")
        })?
        .get("fieldsV1")
}

/// The owned-field set below the map key `key`.
pub(super) fn child<'a>(fields: Option<&'a Value>, key: &str) -> Option<&'a Value> {
    fields?.as_object()?.get(&format!("f:{key}"))
}

/// How a list is compared (see the module documentation).
#[derive(Debug)]
pub(super) enum ListKind<'a> {
    Atomic,
    /// Item keys (`k:{...}`) with the field set of each.
    Map(Vec<(Map<String, Value>, &'a Value)>),
    Set,
}

/// The kind of the list whose owned-field set is `fields`.
pub(super) fn list_kind(fields: Option<&Value>) -> ListKind<'_> {
    let Some(entries) = fields.and_then(Value::as_object) else {
        return ListKind::Atomic;
    };
    let mut keyed = Vec::new();
    let mut set = false;
    for (name, item_fields) in entries {
        if let Some(key) = name.strip_prefix("k:") {
            // A key the server wrote is JSON; one that is not is ignored
            // rather than trusted.
            if let Ok(Value::Object(key)) = serde_json::from_str(key) {
                keyed.push((key, item_fields));
            }
        } else if name.starts_with("v:") {
            set = true;
        }
    }
    if !keyed.is_empty() {
        ListKind::Map(keyed)
    } else if set {
        ListKind::Set
    } else {
        ListKind::Atomic
    }
}

/// The live item a desired item of a map list stands for, with its owned
/// field set: the first live item whose key fields equal the desired item's
/// (a key field the desired item leaves out, like a port's defaulted
/// `protocol`, matches any value), among the keys Switchyard owns.
pub(super) fn matching_item<'l, 'f>(
    desired: &Value,
    live: &'l [Value],
    keys: &[(Map<String, Value>, &'f Value)],
) -> Option<(&'l Value, Option<&'f Value>)> {
    let desired = desired.as_object()?;
    // Which fields make up the key: the same for every item of one list.
    let key_fields: Vec<&String> = keys.first()?.0.keys().collect();
    let agrees = |item: &Map<String, Value>| {
        key_fields.iter().all(|field| match desired.get(*field) {
            None | Some(Value::Null) => true,
            Some(d) => item.get(*field).is_some_and(|l| leaf_equal(d, l, false)),
        })
    };
    let item = live
        .iter()
        .find(|item| item.as_object().is_some_and(agrees))?;
    let item_fields = keys.iter().find_map(|(key, fields)| {
        key.iter()
            .all(|(field, value)| item.get(field).is_some_and(|l| leaf_equal(value, l, false)))
            .then_some(*fields)
    });
    Some((item, item_fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live_with(fields: Value) -> Value {
        json!({"metadata": {"managedFields": [
            {"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {"f:x": {}}},
            {"manager": "switchyard", "operation": "Apply", "fieldsV1": fields},
        ]}})
    }

    #[test]
    fn only_our_apply_entry_counts() {
        let live = live_with(json!({"f:spec": {}}));
        assert_eq!(our_fields(&live), Some(&json!({"f:spec": {}})));
        let update = json!({"metadata": {"managedFields": [
            {"manager": "switchyard", "operation": "Update", "fieldsV1": {"f:spec": {}}},
        ]}});
        assert_eq!(our_fields(&update), None);
        assert_eq!(our_fields(&json!({"metadata": {}})), None);
    }

    #[test]
    fn list_kinds_come_from_item_keys() {
        let map = json!({"k:{\"name\":\"web\"}": {".": {}, "f:image": {}}});
        match list_kind(Some(&map)) {
            ListKind::Map(keys) => {
                assert_eq!(keys.len(), 1);
                assert_eq!(keys[0].0["name"], "web");
            }
            other => panic!("expected a map list, got {other:?}"),
        }
        assert!(matches!(
            list_kind(Some(&json!({"v:\"a\"": {}}))),
            ListKind::Set
        ));
        assert!(matches!(list_kind(Some(&json!({}))), ListKind::Atomic));
        assert!(matches!(list_kind(None), ListKind::Atomic));
        // A malformed key is not trusted as a map key.
        assert!(matches!(
            list_kind(Some(&json!({"k:not json": {}}))),
            ListKind::Atomic
        ));
    }

    #[test]
    fn items_match_by_key_whatever_their_position() {
        let fields = json!({
            "k:{\"containerPort\":53,\"protocol\":\"TCP\"}": {"f:name": {}},
            "k:{\"containerPort\":53,\"protocol\":\"UDP\"}": {"f:name": {}},
        });
        let ListKind::Map(keys) = list_kind(Some(&fields)) else {
            panic!("a map list")
        };
        let live = [
            json!({"containerPort": 53, "protocol": "UDP", "name": "dns"}),
            json!({"containerPort": 53, "protocol": "TCP", "name": "dns-tcp"}),
        ];
        let (item, item_fields) = matching_item(
            &json!({"containerPort": 53, "protocol": "TCP"}),
            &live,
            &keys,
        )
        .expect("a match");
        assert_eq!(item["name"], "dns-tcp");
        assert_eq!(item_fields, Some(&json!({"f:name": {}})));
        // A defaulted key field left out of desired matches any value.
        let (item, _) = matching_item(&json!({"containerPort": 53}), &live, &keys).unwrap();
        assert_eq!(item["protocol"], "UDP");
        assert!(matching_item(&json!({"containerPort": 80}), &live, &keys).is_none());
    }
}
