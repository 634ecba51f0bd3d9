//! Masterminds/semver (v3) versions and constraints as Sprig's `semver` and
//! `semverCompare` use them: lenient versions ("v1.2"), `^`, `~`, wildcards,
//! ranges, `||`, and "a prerelease only matches a constraint with a prerelease".

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::value::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: String,
    meta: String,
}

fn parse_version(s: &str) -> Result<Version, String> {
    let invalid = || "Invalid Semantic Version".to_string();
    let t = s.trim();
    let t = t.strip_prefix('v').unwrap_or(t);
    let (t, meta) = t.split_once('+').map_or((t, ""), |(a, b)| (a, b));
    let (core, pre) = t.split_once('-').map_or((t, ""), |(a, b)| (a, b));
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty()
        || parts.len() > 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()))
    {
        return Err(invalid());
    }
    let n = |k: usize| {
        parts
            .get(k)
            .map_or(Ok(0), |p| p.parse::<u64>().map_err(|_| invalid()))
    };
    Ok(Version {
        major: n(0)?,
        minor: n(1)?,
        patch: n(2)?,
        pre: pre.to_string(),
        meta: meta.to_string(),
    })
}

fn cmp_pre(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    let (pa, pb): (Vec<&str>, Vec<&str>) = (a.split('.').collect(), b.split('.').collect());
    for (x, y) in pa.iter().zip(pb.iter()) {
        let o = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(i), Ok(j)) => i.cmp(&j),
            (Ok(_), Err(_)) => Ordering::Less,
            (Err(_), Ok(_)) => Ordering::Greater,
            _ => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    pa.len().cmp(&pb.len())
}

fn cmp(a: &Version, b: &Version) -> Ordering {
    (a.major, a.minor, a.patch)
        .cmp(&(b.major, b.minor, b.patch))
        .then_with(|| cmp_pre(&a.pre, &b.pre))
}

/// One constraint term: operator, version, and which parts were wildcards/missing.
struct Term {
    op: String,
    v: Version,
    /// Number of explicitly given numeric parts (1..=3); wildcards are not counted.
    given: usize,
}

fn parse_term(s: &str) -> Result<Term, String> {
    let s = s.trim();
    let op_len = s
        .find(|c: char| c.is_ascii_digit() || c == 'v' || c == 'x' || c == 'X' || c == '*')
        .unwrap_or(s.len());
    let op = s[..op_len].trim().to_string();
    let rest = s[op_len..].trim();
    if !matches!(
        op.as_str(),
        "" | "=" | "!=" | ">" | "<" | ">=" | "=>" | "<=" | "=<" | "~" | "~>" | "^"
    ) {
        return Err(format!("improper constraint: {s}"));
    }
    let rest_v = rest.strip_prefix('v').unwrap_or(rest);
    let (core, tail) = match rest_v.find(['-', '+']) {
        Some(k) => (&rest_v[..k], &rest_v[k..]),
        None => (rest_v, ""),
    };
    let mut nums = Vec::new();
    for p in core.split('.') {
        if matches!(p, "x" | "X" | "*") {
            break;
        }
        nums.push(p);
    }
    if core.split('.').count() > 3 || core.is_empty() && rest.is_empty() {
        return Err(format!("improper constraint: {s}"));
    }
    let given = nums.len();
    let text = if given == 0 {
        format!("0.0.0{tail}")
    } else {
        format!("{}{tail}", nums.join("."))
    };
    let v = parse_version(&text).map_err(|_| format!("improper constraint: {s}"))?;
    Ok(Term { op, v, given })
}

fn bump(v: &Version, part: usize) -> Version {
    match part {
        0 => Version {
            major: v.major + 1,
            minor: 0,
            patch: 0,
            pre: String::new(),
            meta: String::new(),
        },
        1 => Version {
            major: v.major,
            minor: v.minor + 1,
            patch: 0,
            pre: String::new(),
            meta: String::new(),
        },
        _ => Version {
            major: v.major,
            minor: v.minor,
            patch: v.patch + 1,
            pre: String::new(),
            meta: String::new(),
        },
    }
}

fn check(t: &Term, v: &Version) -> bool {
    if !v.pre.is_empty() && t.v.pre.is_empty() {
        return false;
    }
    let c = cmp(v, &t.v);
    let wild = t.given < 3;
    match t.op.as_str() {
        "" | "=" => {
            if t.given == 0 {
                true
            } else if wild {
                c != Ordering::Less && cmp(v, &bump(&t.v, t.given - 1)) == Ordering::Less
            } else {
                c == Ordering::Equal
            }
        }
        "!=" => {
            if wild && t.given > 0 {
                !(c != Ordering::Less && cmp(v, &bump(&t.v, t.given - 1)) == Ordering::Less)
            } else {
                c != Ordering::Equal
            }
        }
        ">" => {
            if wild && t.given > 0 {
                cmp(v, &bump(&t.v, t.given - 1)) != Ordering::Less
            } else {
                c == Ordering::Greater
            }
        }
        ">=" | "=>" => c != Ordering::Less,
        "<" => c == Ordering::Less,
        "<=" | "=<" => {
            if wild && t.given > 0 {
                cmp(v, &bump(&t.v, t.given - 1)) == Ordering::Less
            } else {
                c != Ordering::Greater
            }
        }
        "~" | "~>" => {
            let upper = if t.given <= 1 {
                bump(&t.v, 0)
            } else {
                bump(&t.v, 1)
            };
            c != Ordering::Less && cmp(v, &upper) == Ordering::Less
        }
        "^" => {
            let upper = if t.v.major > 0 || t.given <= 1 {
                bump(&t.v, 0)
            } else if t.v.minor > 0 || t.given == 2 {
                bump(&t.v, 1)
            } else {
                bump(&t.v, 2)
            };
            c != Ordering::Less && cmp(v, &upper) == Ordering::Less
        }
        _ => false,
    }
}

/// Splits "a, b c || d" into OR groups of AND terms; "1.0 - 2.0" hyphen ranges too.
fn parse_constraint(s: &str) -> Result<Vec<Vec<Term>>, String> {
    let mut groups = Vec::new();
    for or in s.split("||") {
        let mut terms = Vec::new();
        let or = or.trim();
        if let Some((lo, hi)) = or.split_once(" - ") {
            terms.push(parse_term(&format!(">={}", lo.trim()))?);
            terms.push(parse_term(&format!("<={}", hi.trim()))?);
            groups.push(terms);
            continue;
        }
        // Terms are separated by commas or spaces; an operator may be followed by a space.
        let mut pending_op = String::new();
        for tok in or.split([',', ' ']).filter(|t| !t.is_empty()) {
            if tok.chars().all(|c| "=!<>~^".contains(c)) {
                pending_op.push_str(tok);
                continue;
            }
            terms.push(parse_term(&format!("{pending_op}{tok}"))?);
            pending_op.clear();
        }
        if terms.is_empty() {
            return Err(format!("improper constraint: {s}"));
        }
        groups.push(terms);
    }
    Ok(groups)
}

/// `semverCompare CONSTRAINT VERSION`.
pub fn compare(constraint: &str, version: &str) -> Result<bool, String> {
    let groups = parse_constraint(constraint)?;
    let v = parse_version(version)?;
    Ok(groups.iter().any(|g| g.iter().all(|t| check(t, &v))))
}

/// Orders two versions by semver precedence (build metadata ignored), as
/// Helm orders a chart's versions in a repository index.
pub fn compare_versions(a: &str, b: &str) -> Result<Ordering, String> {
    Ok(cmp(&parse_version(a)?, &parse_version(b)?))
}

/// Whether `version` is a prerelease (`1.0.0-rc.1`).
pub fn is_prerelease(version: &str) -> Result<bool, String> {
    Ok(!parse_version(version)?.pre.is_empty())
}

/// `semver VERSION`: a map with the version's parts.
pub fn version_value(s: &str) -> Result<Value, String> {
    let v = parse_version(s)?;
    let mut m = BTreeMap::new();
    m.insert("Major".into(), Value::Int64(v.major as i64));
    m.insert("Minor".into(), Value::Int64(v.minor as i64));
    m.insert("Patch".into(), Value::Int64(v.patch as i64));
    m.insert("Prerelease".into(), Value::str(v.pre));
    m.insert("Metadata".into(), Value::str(v.meta));
    Ok(Value::map(m))
}

#[cfg(test)]
mod tests {
    use super::compare;

    #[test]
    fn constraints_like_masterminds() {
        assert_eq!(compare(">=1.19-0", "v1.36.0"), Ok(true));
        assert_eq!(compare(">=1.19", "1.18.3"), Ok(false));
        assert_eq!(compare("^1.2.3", "1.9.0"), Ok(true));
        assert_eq!(compare("^1.2.3", "2.0.0"), Ok(false));
        assert_eq!(compare("~1.2.3", "1.2.9"), Ok(true));
        assert_eq!(compare("~1.2.3", "1.3.0"), Ok(false));
        assert_eq!(compare("1.2.x", "1.2.7"), Ok(true));
        assert_eq!(compare(">= 1.2, < 2.0", "1.5.0"), Ok(true));
        assert_eq!(compare("<1.0 || >=3", "3.1.0"), Ok(true));
        assert_eq!(compare(">=1.0.0", "1.2.0-beta.1"), Ok(false));
        assert_eq!(compare(">=1.0.0-0", "1.2.0-beta.1"), Ok(true));
        assert!(compare(">=1.0", "not-a-version").is_err());
    }
}
