//! Equality of two leaf values at the same path: numbers numerically, and
//! Kubernetes quantities by amount below resource-like keys.

use super::Segment;
use serde_json::{Number, Value};

/// Keys below which values are Kubernetes quantities.
const QUANTITY_PARENTS: &[&str] = &[
    "resources",
    "limits",
    "requests",
    "hard",
    "capacity",
    "overhead",
];

pub(super) fn in_quantity_context(path: &[Segment<'_>]) -> bool {
    let last_is_size_limit = matches!(path.last(), Some(Segment::Key("sizeLimit")));
    last_is_size_limit
        || path[..path.len().saturating_sub(1)]
            .iter()
            .any(|s| matches!(s, Segment::Key(k) if QUANTITY_PARENTS.contains(k)))
}

/// Equality of two values at the same path, where `desired` is not a
/// container that the walk descends into.
pub(super) fn leaf_equal(desired: &Value, live: &Value, quantities: bool) -> bool {
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

#[cfg(test)]
mod tests {
    use super::super::{drift, is_applied};
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

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

    proptest! {
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
