//! JSON helpers: apply/merge-patch merging and simplified `managedFields` ownership sets.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

/// A field path such as `["spec", "replicas"]`. Lists are atomic leaves: no list-map keys.
pub(crate) type FieldPath = Vec<String>;
pub(crate) type FieldSet = BTreeSet<FieldPath>;

/// The part of an object that field ownership covers: everything but `apiVersion`, `kind`,
/// `status` and server-owned metadata (labels, annotations, finalizers and owner
/// references are the user-set metadata that is tracked).
pub(crate) fn tracked(obj: &Value) -> Value {
    let mut out = Map::new();
    if let Some(map) = obj.as_object() {
        for (k, v) in map {
            match k.as_str() {
                "apiVersion" | "kind" | "status" => {}
                "metadata" => {
                    let mut meta = Map::new();
                    for key in ["labels", "annotations", "finalizers", "ownerReferences"] {
                        if let Some(x) = v.get(key).filter(|x| !x.is_null()) {
                            meta.insert(key.to_string(), x.clone());
                        }
                    }
                    if !meta.is_empty() {
                        out.insert(k.clone(), Value::Object(meta));
                    }
                }
                _ => {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
    }
    Value::Object(out)
}

/// Leaf paths of a value: maps are descended, everything else (lists included) is a leaf.
pub(crate) fn leaf_paths(v: &Value) -> FieldSet {
    fn walk(v: &Value, prefix: &mut FieldPath, out: &mut FieldSet) {
        match v.as_object() {
            Some(map) if !map.is_empty() => {
                for (k, child) in map {
                    prefix.push(k.clone());
                    walk(child, prefix, out);
                    prefix.pop();
                }
            }
            _ if !prefix.is_empty() => {
                out.insert(prefix.clone());
            }
            _ => {}
        }
    }
    let mut out = FieldSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

/// Leaves whose value differs between two tracked views, as present in `new`.
pub(crate) fn changed_paths(old: &Value, new: &Value) -> FieldSet {
    leaf_paths(new)
        .into_iter()
        .filter(|p| get_path(old, p) != get_path(new, p))
        .collect()
}

pub(crate) fn get_path<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, k| cur.get(k.as_str()))
}

pub(crate) fn remove_path(v: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = v;
    for k in parents {
        match cur.get_mut(k.as_str()) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(map) = cur.as_object_mut() {
        map.remove(last);
    }
}

/// Whether two paths name the same field or one contains the other.
pub(crate) fn overlaps(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Apply merge: maps merge recursively, anything else (lists, scalars) replaces.
pub(crate) fn merge_apply(live: &mut Value, applied: &Value) {
    match (live.as_object_mut(), applied.as_object()) {
        (Some(l), Some(a)) => {
            for (k, v) in a {
                match l.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        merge_apply(existing, v)
                    }
                    _ => {
                        l.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        _ => *live = applied.clone(),
    }
}

/// RFC 7386 JSON merge patch: `null` deletes, maps merge, anything else replaces.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Some(p) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Some(t) = target.as_object_mut() {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// Encodes a field set in the `FieldsV1` shape: `{"f:spec":{"f:replicas":{}}}`.
pub(crate) fn to_fields_v1(set: &FieldSet) -> Value {
    fn insert(node: &mut Map<String, Value>, path: &[String]) {
        if let Some((first, rest)) = path.split_first() {
            let child = node
                .entry(format!("f:{first}"))
                .or_insert_with(|| json!({}));
            if let Some(m) = child.as_object_mut() {
                insert(m, rest);
            }
        }
    }
    let mut root = Map::new();
    for path in set {
        insert(&mut root, path);
    }
    Value::Object(root)
}

/// Decodes `FieldsV1`; nodes keyed otherwise (`k:`, `v:`, `.`) make their parent a leaf.
pub(crate) fn from_fields_v1(v: &Value) -> FieldSet {
    fn walk(v: &Value, prefix: &mut FieldPath, out: &mut FieldSet) {
        let children: Vec<(&str, &Value)> = v
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, c)| k.strip_prefix("f:").map(|k| (k, c)))
                    .collect()
            })
            .unwrap_or_default();
        let has_other = v
            .as_object()
            .is_some_and(|m| m.keys().any(|k| !k.starts_with("f:")));
        if (children.is_empty() || has_other) && !prefix.is_empty() {
            out.insert(prefix.clone());
        }
        if has_other {
            return;
        }
        for (k, c) in children {
            prefix.push(k.to_string());
            walk(c, prefix, out);
            prefix.pop();
        }
    }
    let mut out = FieldSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

/// `.spec.replicas`, as conflict messages print paths.
pub(crate) fn dotted(path: &[String]) -> String {
    path.iter().map(|k| format!(".{k}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> FieldPath {
        s.split('.').map(str::to_string).collect()
    }

    #[test]
    fn fields_v1_round_trip() {
        let set: FieldSet = [p("spec.replicas"), p("metadata.labels.app"), p("spec.x")]
            .into_iter()
            .collect();
        let enc = to_fields_v1(&set);
        assert_eq!(enc["f:spec"]["f:replicas"], json!({}));
        assert_eq!(from_fields_v1(&enc), set);
    }

    #[test]
    fn apply_merge_replaces_lists_and_merges_maps() {
        let mut live = json!({"spec": {"a": 1, "list": [1, 2], "m": {"x": 1}}});
        merge_apply(
            &mut live,
            &json!({"spec": {"list": [3], "m": {"y": 2}, "b": true}}),
        );
        assert_eq!(
            live,
            json!({"spec": {"a": 1, "list": [3], "m": {"x": 1, "y": 2}, "b": true}})
        );
    }

    #[test]
    fn merge_patch_deletes_with_null() {
        let mut live = json!({"a": {"b": 1, "c": 2}, "d": 3});
        merge_patch(&mut live, &json!({"a": {"b": null}, "d": [1]}));
        assert_eq!(live, json!({"a": {"c": 2}, "d": [1]}));
    }

    #[test]
    fn tracked_ignores_server_fields() {
        let obj = json!({
            "apiVersion": "v1", "kind": "ConfigMap", "status": {"x": 1},
            "metadata": {"name": "n", "resourceVersion": "3", "labels": {"a": "b"}},
            "data": {"k": "v"},
        });
        assert_eq!(
            leaf_paths(&tracked(&obj)),
            [p("data.k"), p("metadata.labels.a")].into_iter().collect()
        );
    }
}
