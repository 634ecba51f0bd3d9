//! The dry-run diff: a unified YAML diff from the live object, reduced to
//! the fields the desired object sets, to the desired object.

use super::owned::{ListKind, child, list_kind, matching_item, our_fields};
use super::secret::{is_secret, normalize_secret, redact_secret_data};
use super::values::{in_quantity_context, leaf_equal};
use super::{SERVER_METADATA, Segment, matches_absent};
use serde_json::{Map, Value};

/// A unified diff of YAML, from the live object (reduced to the fields the
/// desired object sets, so only what applying would change shows) to the
/// desired one, for dry-run output. Without a live object every line is an
/// addition. Empty when applying would change nothing. Secret values are
/// replaced by `(redacted)`, or `(redacted, changed)` where they differ.
pub(crate) fn diff(desired: &Value, live: Option<&Value>) -> String {
    let old_name = if live.is_some() {
        "live"
    } else {
        "live (absent)"
    };
    diff_named(desired, live, old_name, "desired")
}

/// [`diff`] with the given file names in its `---` and `+++` lines.
pub(crate) fn diff_named(
    desired: &Value,
    live: Option<&Value>,
    old_name: &str,
    new_name: &str,
) -> String {
    let secret = is_secret(desired);
    let mut new = strip_server_fields(&normalize_secret(desired));
    let mut old = live.map(|live| prune(&new, live, our_fields(live), &mut Vec::new()));
    if secret {
        redact_secret_data(&mut new, old.as_mut());
    }
    let old_text = old.as_ref().map(to_yaml).unwrap_or_default();
    let new_text = to_yaml(&new);
    if old_text == new_text {
        return String::new();
    }
    similar::TextDiff::from_lines(&old_text, &new_text)
        .unified_diff()
        .context_radius(3)
        .header(old_name, new_name)
        .to_string()
}

/// A unified diff that removes all of `live` (an object prune would
/// delete), without the fields the server owns, Secret values masked.
pub(crate) fn removal(live: &Value, old_name: &str, new_name: &str) -> String {
    let mut old = strip_server_fields(live);
    if is_secret(live) {
        if let Some(object) = old.as_object_mut() {
            object.remove("stringData");
        }
        redact_secret_data(&mut Value::Null, Some(&mut old));
    }
    let old_text = to_yaml(&old);
    similar::TextDiff::from_lines(old_text.as_str(), "")
        .unified_diff()
        .context_radius(3)
        .header(old_name, new_name)
        .to_string()
}

fn to_yaml(value: &Value) -> String {
    // Serialising a JSON value cannot realistically fail; if it ever does, a
    // JSON rendering still shows the change.
    serde_saphyr::to_string(value).unwrap_or_else(|_| {
        let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
        text.push('\n');
        text
    })
}

/// `desired` without the fields the comparison ignores.
fn strip_server_fields(desired: &Value) -> Value {
    let mut out = desired.clone();
    if let Some(object) = out.as_object_mut() {
        object.remove("status");
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            for key in SERVER_METADATA {
                metadata.remove(*key);
            }
        }
    }
    out
}

/// `live` reduced to the shape of `desired`: fields desired does not set are
/// dropped, and values equal under the comparison rules are replaced by the
/// desired spelling, so that the diff shows exactly the drift. Items of a
/// map list line up by key (see `owned`); live items no desired item
/// stands for are left out, since applying leaves them alone.
fn prune<'a>(
    desired: &'a Value,
    live: &Value,
    owned: Option<&Value>,
    path: &mut Vec<Segment<'a>>,
) -> Value {
    // A live null is an absent field (as in `walk`), e.g. a null list item.
    if live.is_null() && matches_absent(desired) {
        return desired.clone();
    }
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => {
            let mut out = Map::new();
            for (key, dv) in d {
                path.push(Segment::Key(key));
                match l.get(key).filter(|lv| !lv.is_null()) {
                    Some(lv) => {
                        out.insert(key.clone(), prune(dv, lv, child(owned, key), path));
                    }
                    // Absent in live but equivalent: show it unchanged.
                    None if matches_absent(dv) => {
                        out.insert(key.clone(), dv.clone());
                    }
                    None => {}
                }
                path.pop();
            }
            Value::Object(out)
        }
        (Value::Array(d), Value::Array(l)) => match list_kind(owned) {
            ListKind::Map(keys) => d
                .iter()
                .enumerate()
                .filter_map(|(i, dv)| {
                    let (lv, item_owned) = matching_item(dv, l, &keys)?;
                    path.push(Segment::Index(i));
                    let pruned = prune(dv, lv, item_owned, path);
                    path.pop();
                    Some(pruned)
                })
                .collect(),
            ListKind::Atomic | ListKind::Set => l
                .iter()
                .enumerate()
                .map(|(i, lv)| match d.get(i) {
                    Some(dv) => {
                        path.push(Segment::Index(i));
                        let pruned = prune(dv, lv, None, path);
                        path.pop();
                        pruned
                    }
                    // Items beyond the desired list would be removed: show them whole.
                    None => lv.clone(),
                })
                .collect(),
        },
        (Value::Object(_) | Value::Array(_), _) => live.clone(),
        (desired, live) => {
            if leaf_equal(desired, live, in_quantity_context(path)) {
                desired.clone()
            } else {
                live.clone()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{deployment, live_deployment};
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_shows_only_what_changes() {
        let desired = deployment("web:2", json!(2));
        let live = live_deployment("web:1", 2);
        let d = diff(&desired, Some(&live));
        assert!(d.starts_with("--- live\n+++ desired\n"), "{d}");
        let changed: Vec<&str> = d
            .lines()
            .filter(|l| {
                (l.starts_with('+') || l.starts_with('-'))
                    && !l.starts_with("+++")
                    && !l.starts_with("---")
            })
            .collect();
        assert_eq!(changed.len(), 2, "{d}");
        assert!(
            changed[0].starts_with('-') && changed[0].contains("web:1"),
            "{d}"
        );
        assert!(
            changed[1].starts_with('+') && changed[1].contains("web:2"),
            "{d}"
        );
        // Server defaults and status never appear.
        for noise in [
            "terminationMessagePath",
            "resourceVersion",
            "managedFields",
            "readyReplicas",
            "revisionHistoryLimit",
        ] {
            assert!(!d.contains(noise), "{noise} in:\n{d}");
        }
        // Equivalent quantities are not shown as changes.
        assert!(!d.contains("-          cpu"), "{d}");
    }

    #[test]
    fn diff_of_new_object_is_all_additions() {
        let desired = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}, "status": {}});
        let d = diff(&desired, None);
        assert!(d.starts_with("--- live (absent)\n+++ desired\n"), "{d}");
        let body: Vec<&str> = d.lines().skip(3).collect();
        assert!(!body.is_empty());
        assert!(body.iter().all(|l| l.starts_with('+')), "{d}");
        assert!(d.contains("+kind: ConfigMap"), "{d}");
        assert!(!d.contains("status"), "{d}");
    }

    #[test]
    fn a_removal_shows_every_line_removed_and_no_secret_value() {
        let live = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "namespace": "n", "uid": "u1", "resourceVersion": "7",
                "managedFields": [{"manager": "switchyard", "operation": "Apply"}]},
            "data": {"password": "aHVudGVyMg=="}, "type": "Opaque"});
        let d = removal(&live, "live/v1/Secret/n/s", "desired/v1/Secret/n/s");
        assert!(
            d.starts_with("--- live/v1/Secret/n/s\n+++ desired/v1/Secret/n/s\n"),
            "{d}"
        );
        let body: Vec<&str> = d.lines().skip(3).collect();
        assert!(!body.is_empty());
        assert!(body.iter().all(|l| l.starts_with('-')), "{d}");
        assert!(d.contains("-kind: Secret"), "{d}");
        assert!(d.contains("password: (redacted)"), "{d}");
        for hidden in [
            "aHVudGVyMg==",
            "hunter2",
            "managedFields",
            "resourceVersion",
        ] {
            assert!(!d.contains(hidden), "{hidden} in:\n{d}");
        }
    }

    #[test]
    fn diff_shows_removed_list_items() {
        let desired = json!({"spec": {"containers": [{"name": "a"}]}});
        let live =
            json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "sidecar"}]}});
        let d = diff(&desired, Some(&live));
        assert!(
            d.contains("-  - name: sidecar") || d.contains("- - name: sidecar"),
            "{d}"
        );
        assert!(!d.contains("image"), "{d}");
    }
}
