//! Whether a live object already holds what we would apply, and how it differs.
//!
//! Server-side apply lets the API server merge, so the agent cannot compare
//! whole objects: the live one carries defaults, other managers' fields and
//! normalised values. An object is *applied* when every field the desired
//! object sets is in the live object with an equal value:
//!
//! - Maps: subset. Keys only in live (server defaults, other managers) are
//!   ignored.
//! - Lists: same length, and each desired item applied to the live item at the
//!   same position, so defaults the server adds inside items
//!   (`containers[].terminationMessagePath`) are not drift. Items another
//!   controller appends (injected sidecars) are drift, by this rule.
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

use serde_json::{Map, Number, Value};
use std::fmt::Write as _;

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

/// Keys below which values are Kubernetes quantities.
const QUANTITY_PARENTS: &[&str] = &[
    "resources",
    "limits",
    "requests",
    "hard",
    "capacity",
    "overhead",
];

/// Longest rendering of a value in a drift line, in characters.
const MAX_VALUE_CHARS: usize = 60;

const REDACTED: &str = "(redacted)";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// True when every field `desired` sets is present in `live` with an equal
/// value (see the module documentation for what "equal" means).
pub(crate) fn is_applied(desired: &Value, live: &Value) -> bool {
    let desired = normalize_secret(desired);
    let mut sink = Sink {
        lines: Vec::new(),
        first_only: true,
        redact_secret: false,
    };
    walk(&desired, Some(live), &mut Vec::new(), &mut sink);
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
    walk(&desired, Some(live), &mut Vec::new(), &mut sink);
    sink.lines
}

/// A unified diff of YAML, from the live object (reduced to the fields the
/// desired object sets, so only what applying would change shows) to the
/// desired one, for dry-run output. Without a live object every line is an
/// addition. Empty when applying would change nothing. Secret values are
/// replaced by `(redacted)`, or `(redacted, changed)` where they differ.
pub(crate) fn diff(desired: &Value, live: Option<&Value>) -> String {
    let secret = is_secret(desired);
    let mut new = strip_server_fields(&normalize_secret(desired));
    let (mut old, old_name) = match live {
        Some(live) => (Some(prune(&new, live, &mut Vec::new())), "live"),
        None => (None, "live (absent)"),
    };
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
        .header(old_name, "desired")
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

fn walk<'a>(
    desired: &'a Value,
    live: Option<&Value>,
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
                walk(dv, l.get(key), path, sink);
                path.pop();
                if sink.done() {
                    return;
                }
            }
        }
        (Value::Array(d), Some(Value::Array(l))) => {
            if d.len() != l.len() {
                sink.report(path, &items(d.len()), &items(l.len()));
                return;
            }
            for (i, (dv, lv)) in d.iter().zip(l).enumerate() {
                path.push(Segment::Index(i));
                walk(dv, Some(lv), path, sink);
                path.pop();
                if sink.done() {
                    return;
                }
            }
        }
        (desired, Some(live)) => {
            if !leaf_equal(desired, live, in_quantity_context(path)) {
                sink.report(path, &render_value(desired), &render_value(live));
            }
        }
    }
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

fn in_quantity_context(path: &[Segment<'_>]) -> bool {
    let last_is_size_limit = matches!(path.last(), Some(Segment::Key("sizeLimit")));
    last_is_size_limit
        || path[..path.len().saturating_sub(1)]
            .iter()
            .any(|s| matches!(s, Segment::Key(k) if QUANTITY_PARENTS.contains(k)))
}

/// Equality of two values at the same path, where `desired` is not a
/// container that the walk descends into.
fn leaf_equal(desired: &Value, live: &Value, quantities: bool) -> bool {
    if let (Value::Number(d), Value::Number(l)) = (desired, live) {
        return numbers_equal(d, l);
    }
    if quantities && let (Some(d), Some(l)) = (quantity_of(desired), quantity_of(live)) {
        return d == l;
    }
    desired == live
}

/// Exact numeric equality across serde_json's integer and float forms.
fn numbers_equal(a: &Number, b: &Number) -> bool {
    fn int(n: &Number) -> Option<i128> {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    }
    // Floats are compared to integers exactly, so that a large integer is
    // not "equal" to a float it merely rounds to.
    fn float_as_int(f: f64) -> Option<i128> {
        // 2^126: well inside i128, and beyond any integer JSON gives us.
        const LIMIT: f64 = 85_070_591_730_234_615_865_843_651_857_942_052_864.0;
        // `as` saturates, and the range check makes it exact.
        (f.is_finite() && f.fract() == 0.0 && f.abs() < LIMIT).then_some(f as i128)
    }
    match (int(a), int(b)) {
        (Some(x), Some(y)) => x == y,
        (Some(x), None) => b.as_f64().and_then(float_as_int) == Some(x),
        (None, Some(y)) => a.as_f64().and_then(float_as_int) == Some(y),
        (None, None) => a.as_f64() == b.as_f64(),
    }
}

fn quantity_of(value: &Value) -> Option<i128> {
    match value {
        Value::String(s) => parse_quantity(s),
        Value::Number(n) => parse_quantity(&n.to_string()),
        _ => None,
    }
}

/// A Kubernetes quantity in nano-units, when it is one and fits exactly.
///
/// Grammar (k8s.io/apimachinery resource.Quantity): `[+-]` digits with an
/// optional fraction, then one of a decimal SI suffix (`n u m "" k M G T P E`),
/// a binary suffix (`Ki Mi Gi Ti Pi Ei`) or a decimal exponent (`e3`, `E-2`).
/// Values below a nano-unit or beyond i128 give `None`, and the caller then
/// compares the raw values instead.
fn parse_quantity(text: &str) -> Option<i128> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let number_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return None;
    }
    let mut mantissa: i128 = 0;
    for digit in whole.bytes().chain(fraction.bytes()) {
        mantissa = mantissa
            .checked_mul(10)?
            .checked_add(i128::from(digit - b'0'))?;
    }
    let fraction_digits = i32::try_from(fraction.len()).ok()?;
    let (exp10, exp2): (i32, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        _ => {
            let exponent = suffix.strip_prefix(['e', 'E'])?;
            let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            (exponent.parse::<i32>().ok()?, 0)
        }
    };
    let mut value = mantissa.checked_mul(1i128.checked_shl(exp2)?)?;
    // Scale to nano-units: value * 10^(exp10 - fraction_digits + 9).
    let scale = exp10 - fraction_digits + 9;
    if value == 0 {
        return Some(0);
    }
    if scale >= 0 {
        value = value.checked_mul(10i128.checked_pow(u32::try_from(scale).ok()?)?)?;
    } else {
        let divisor = 10i128.checked_pow(u32::try_from(-scale).ok()?)?;
        if value % divisor != 0 {
            return None;
        }
        value /= divisor;
    }
    Some(if negative { -value } else { value })
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

// ---- Secrets ----

fn is_secret(object: &Value) -> bool {
    object.get("apiVersion").and_then(Value::as_str) == Some("v1")
        && object.get("kind").and_then(Value::as_str) == Some("Secret")
}

fn is_secret_data_path(path: &[Segment<'_>]) -> bool {
    matches!(path.first(), Some(Segment::Key("data" | "stringData")))
}

/// A desired Secret with `stringData` folded into `data` as the server does
/// (stringData wins over data for the same key); anything else unchanged.
fn normalize_secret(desired: &Value) -> std::borrow::Cow<'_, Value> {
    use std::borrow::Cow;
    let string_data = match desired.get("stringData") {
        Some(Value::Object(m)) if is_secret(desired) => m,
        _ => return Cow::Borrowed(desired),
    };
    let mut out = desired.clone();
    let mut data = match desired.get("data") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    for (key, value) in string_data {
        // A non-string value is invalid for the server too; keep it as is so
        // it shows up as drift rather than vanishing.
        let encoded = match value {
            Value::String(s) => Value::String(base64(s.as_bytes())),
            other => other.clone(),
        };
        data.insert(key.clone(), encoded);
    }
    if let Some(object) = out.as_object_mut() {
        object.remove("stringData");
        object.insert("data".to_owned(), Value::Object(data));
    }
    Cow::Owned(out)
}

/// Standard base64 with padding, as the API server returns Secret data.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn redact_secret_data(desired: &mut Value, live: Option<&mut Value>) {
    let live_data = live
        .and_then(|l| l.get_mut("data"))
        .and_then(Value::as_object_mut);
    let desired_data = desired.get_mut("data").and_then(Value::as_object_mut);
    match (desired_data, live_data) {
        (Some(d), Some(l)) => {
            for (key, dv) in d.iter_mut() {
                let changed = l.get(key) != Some(dv);
                *dv = Value::String(
                    if changed {
                        "(redacted, changed)"
                    } else {
                        REDACTED
                    }
                    .to_owned(),
                );
            }
            for lv in l.values_mut() {
                *lv = Value::String(REDACTED.to_owned());
            }
        }
        (Some(d), None) => {
            for dv in d.values_mut() {
                *dv = Value::String(REDACTED.to_owned());
            }
        }
        (None, Some(l)) => {
            for lv in l.values_mut() {
                *lv = Value::String(REDACTED.to_owned());
            }
        }
        (None, None) => {}
    }
}

// ---- diff helpers ----

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
/// desired spelling, so that the diff shows exactly the drift.
fn prune<'a>(desired: &'a Value, live: &Value, path: &mut Vec<Segment<'a>>) -> Value {
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
                        out.insert(key.clone(), prune(dv, lv, path));
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
        (Value::Array(d), Value::Array(l)) => l
            .iter()
            .enumerate()
            .map(|(i, lv)| match d.get(i) {
                Some(dv) => {
                    path.push(Segment::Index(i));
                    let pruned = prune(dv, lv, path);
                    path.pop();
                    pruned
                }
                // Items beyond the desired list would be removed: show them whole.
                None => lv.clone(),
            })
            .collect(),
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
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn deployment(image: &str, replicas: Value) -> Value {
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
    fn live_deployment(image: &str, replicas: i64) -> Value {
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

    #[test]
    fn numbers_compare_numerically() {
        assert!(is_applied(&json!({"a": 1}), &json!({"a": 1.0})));
        assert!(is_applied(&json!({"a": 1.0}), &json!({"a": 1})));
        assert!(is_applied(&json!({"a": 0.5}), &json!({"a": 0.5})));
        assert!(!is_applied(&json!({"a": 1}), &json!({"a": 1.5})));
        assert!(is_applied(&json!({"a": u64::MAX}), &json!({"a": u64::MAX})));
        assert!(!is_applied(&json!({"a": u64::MAX}), &json!({"a": -1})));
        // 2^53 + 1 is not the float 2^53.
        assert!(!is_applied(
            &json!({"a": 9_007_199_254_740_993_i64}),
            &json!({"a": 9_007_199_254_740_992.0})
        ));
        assert!(is_applied(&json!({"a": -3}), &json!({"a": -3})));
    }

    #[test]
    fn int_or_string_types_differ() {
        assert!(!is_applied(&json!({"port": 80}), &json!({"port": "80"})));
        assert!(!is_applied(
            &json!({"targetPort": "8080"}),
            &json!({"targetPort": 8080})
        ));
        assert_eq!(
            drift(&json!({"port": 80}), &json!({"port": "80"})),
            ["port: 80 != \"80\""]
        );
        // Strings are not quantities outside resources either.
        assert!(!is_applied(
            &json!({"spec": {"replicas": "1"}}),
            &json!({"spec": {"replicas": 1}})
        ));
        assert!(!is_applied(
            &json!({"spec": {"x": "1000m"}}),
            &json!({"spec": {"x": "1"}})
        ));
    }

    #[test]
    fn quantities_under_resources() {
        let r = |cpu: Value, memory: Value| json!({"resources": {"limits": {"cpu": cpu, "memory": memory}}});
        assert!(is_applied(
            &r(json!("1000m"), json!("1Gi")),
            &r(json!("1"), json!("1024Mi"))
        ));
        assert!(is_applied(
            &r(json!(1), json!("1G")),
            &r(json!("1"), json!("1e9"))
        ));
        assert!(is_applied(
            &r(json!(0.5), json!("128Mi")),
            &r(json!("500m"), json!("134217728"))
        ));
        assert!(!is_applied(
            &r(json!("1100m"), json!("1Gi")),
            &r(json!("1"), json!("1Gi"))
        ));
        assert!(!is_applied(
            &r(json!("1"), json!("1Gi")),
            &r(json!("1"), json!("1G"))
        ));
        assert_eq!(
            drift(&r(json!("2"), json!("1Gi")), &r(json!("1"), json!("1Gi"))),
            ["resources.limits.cpu: \"2\" != \"1\""]
        );
        // Not a quantity on one side: compared as raw values.
        assert!(!is_applied(
            &r(json!("lots"), json!("1Gi")),
            &r(json!("1"), json!("1Gi"))
        ));
        // ResourceQuota, PV capacity, emptyDir sizeLimit.
        assert!(is_applied(
            &json!({"spec": {"hard": {"requests.cpu": "2000m", "pods": 10}}}),
            &json!({"spec": {"hard": {"requests.cpu": "2", "pods": "10"}}})
        ));
        assert!(is_applied(
            &json!({"spec": {"capacity": {"storage": "1Ti"}}}),
            &json!({"spec": {"capacity": {"storage": "1024Gi"}}})
        ));
        assert!(is_applied(
            &json!({"emptyDir": {"sizeLimit": "512Mi"}}),
            &json!({"emptyDir": {"sizeLimit": "0.5Gi"}})
        ));
    }

    #[test]
    fn quantity_parser() {
        let nano = 1_000_000_000_i128;
        assert_eq!(parse_quantity("1"), Some(nano));
        assert_eq!(parse_quantity("1000m"), Some(nano));
        assert_eq!(parse_quantity("100m"), Some(nano / 10));
        assert_eq!(parse_quantity("1n"), Some(1));
        assert_eq!(parse_quantity("1u"), Some(1000));
        assert_eq!(parse_quantity("1k"), Some(1000 * nano));
        assert_eq!(parse_quantity("1Ki"), Some(1024 * nano));
        assert_eq!(parse_quantity("1.5Gi"), Some(1_610_612_736 * nano));
        assert_eq!(parse_quantity("1Ei"), Some((1_i128 << 60) * nano));
        assert_eq!(parse_quantity("2E"), Some(2 * 10_i128.pow(18) * nano));
        assert_eq!(parse_quantity("1e3"), Some(1000 * nano));
        assert_eq!(parse_quantity("1E3"), Some(1000 * nano));
        assert_eq!(parse_quantity("5e-1"), Some(nano / 2));
        assert_eq!(parse_quantity("-1.5"), Some(-3 * nano / 2));
        assert_eq!(parse_quantity("+2"), Some(2 * nano));
        assert_eq!(parse_quantity(".5"), Some(nano / 2));
        assert_eq!(parse_quantity("5."), Some(5 * nano));
        assert_eq!(parse_quantity("0"), Some(0));
        assert_eq!(parse_quantity("0e-99"), Some(0));
        for bad in [
            "",
            "-",
            ".",
            "1..2",
            "1.2.3",
            "1x",
            "1ki",
            "1 Gi",
            " 1",
            "1e",
            "1e+",
            "e3",
            "1Gi1",
            "abc",
            "1e99999",
            "1.0000000001n",
        ] {
            assert_eq!(parse_quantity(bad), None, "{bad:?}");
        }
        // Beyond i128 nano-units: None rather than overflow.
        assert_eq!(parse_quantity("999999999999999999999999999999Ei"), None);
        assert_eq!(parse_quantity("1e40"), None);
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

    fn secret(data: Value, string_data: Option<Value>) -> Value {
        let mut s = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "type": "Opaque", "data": data});
        if let Some(sd) = string_data {
            s["stringData"] = sd;
        }
        s
    }

    #[test]
    fn base64_matches_known_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn secret_string_data_compares_as_data() {
        let desired = secret(
            json!({"user": "YWRtaW4="}),
            Some(json!({"password": "hunter2"})),
        );
        let live = secret(
            json!({"user": "YWRtaW4=", "password": "aHVudGVyMg=="}),
            None,
        );
        assert!(is_applied(&desired, &live));
        assert_eq!(diff(&desired, Some(&live)), "");
        let live = secret(json!({"user": "YWRtaW4=", "password": "b3RoZXI="}), None);
        assert!(!is_applied(&desired, &live));
        // stringData wins over data for the same key.
        let desired = secret(
            json!({"password": "b3RoZXI="}),
            Some(json!({"password": "hunter2"})),
        );
        let live = secret(json!({"password": "aHVudGVyMg=="}), None);
        assert!(is_applied(&desired, &live));
    }

    #[test]
    fn secret_values_never_leak() {
        let desired = secret(
            json!({"token": "c2VjcmV0LW5ldw=="}),
            Some(json!({"password": "hunter2"})),
        );
        let live = secret(
            json!({"token": "c2VjcmV0LW9sZA==", "password": "b2xk"}),
            None,
        );
        let lines = drift(&desired, &live);
        assert_eq!(
            lines,
            [
                "data.password: differs (value redacted)",
                "data.token: differs (value redacted)"
            ]
        );
        for text in [
            diff(&desired, Some(&live)),
            diff(&desired, None),
            lines.join("\n"),
        ] {
            for secret in ["hunter2", "aHVudGVyMg", "c2VjcmV0", "b2xk"] {
                assert!(!text.contains(secret), "{secret} leaked in:\n{text}");
            }
        }
        let d = diff(&desired, Some(&live));
        assert!(
            d.contains("+  password: (redacted, changed)")
                || d.contains("+  password: '(redacted, changed)'"),
            "{d}"
        );
        // A ConfigMap is not redacted.
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "new"}});
        let live_cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "old"}});
        assert_eq!(drift(&cm, &live_cm), ["data.k: \"new\" != \"old\""]);
    }

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

        #[test]
        fn quantity_parser_never_panics(s in "[-+]?[0-9.]{0,8}([numkMGTPE]|[KMGTPE]i|[eE][-+]?[0-9]{0,3})?") {
            let _ = parse_quantity(&s);
        }

        #[test]
        fn integer_quantities_scale(n in 0i64..1_000_000) {
            let n128 = i128::from(n);
            prop_assert_eq!(parse_quantity(&n.to_string()), Some(n128 * 1_000_000_000));
            prop_assert_eq!(parse_quantity(&format!("{n}m")), Some(n128 * 1_000_000));
            prop_assert_eq!(parse_quantity(&format!("{n}Ki")), Some(n128 * 1024 * 1_000_000_000));
        }
    }
}
