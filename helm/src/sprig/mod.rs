//! Sprig's template functions as Helm exposes them (without `env`/`expandenv`),
//! with Sprig's argument types and conversions. Random and time functions are
//! deterministic: they derive from the caller's seed, the template and the call site.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine as _;
use rand::{Rng, SeedableRng};
use sha1::Digest as _;

use crate::gofmt;
use crate::template::{Exec, FuncMap, Ty};
use crate::value::Value;

mod certs;
mod clock;
mod crypto;
mod dicts;
mod encoding;
mod flow;
pub(crate) mod gotime;
mod lists;
mod numbers;
mod strings;
mod url;

/// What the deterministic functions derive from, given by the caller.
#[derive(Debug, Clone, Default)]
pub struct Host {
    /// Seed for `randAlphaNum`, `uuidv4`, ...: the same seed gives the same output.
    pub seed: Vec<u8>,
    /// What `now` returns, in Unix seconds (UTC).
    pub now_unix: i64,
}

type Args = Vec<Value>;
type Res = Result<Value, String>;

/// Sprig's `strval`: strings as is, everything else as `%v` prints it.
pub fn strval(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        v => gofmt::sprint_value(v),
    }
}

/// Sprig's `strslice`: a list's non-nil elements as strings, or the value as one string.
fn strslice(v: &Value) -> Vec<String> {
    match v {
        Value::List(l) => l.iter().filter(|x| !x.is_nil()).map(strval).collect(),
        Value::Nil => Vec::new(),
        v => vec![strval(v)],
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`, underscores allowed.
fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, u) = crate::value::parse_go_magnitude(&s.replace('_', ""))?;
    if neg {
        if u > i64::MAX as u64 + 1 {
            None
        } else {
            Some((u as i128).wrapping_neg() as i64)
        }
    } else {
        i64::try_from(u).ok()
    }
}

/// `cast.ToInt64` as Sprig uses it: unconvertible values are 0.
pub fn to_int64(v: &Value) -> i64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i,
        Value::Float(f) => {
            if f.is_nan() {
                i64::MIN
            } else {
                *f as i64
            }
        }
        Value::Bool(b) => i64::from(*b),
        Value::String(s) => {
            // cast trims a ".0..." decimal part before parsing.
            let t = match s.split_once('.') {
                Some((a, b)) if !a.is_empty() && b.bytes().all(|c| c == b'0') => a,
                _ => s,
            };
            parse_go_int(t).unwrap_or(0)
        }
        _ => 0,
    }
}

/// `cast.ToFloat64`.
pub fn to_float64(v: &Value) -> f64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) => s.parse::<f64>().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// Sprig's `empty`.
pub fn empty(v: &Value) -> bool {
    !v.truthy()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn i(v: &Value) -> i64 {
    v.as_int().unwrap_or(0)
}

fn list_of(v: &Value, what: &str) -> Result<Vec<Value>, String> {
    match v {
        Value::List(l) => Ok(l.to_vec()),
        // Sprig asks reflect.TypeOf(nil).Kind(), which panics.
        Value::Nil => {
            Err("runtime error: invalid memory address or nil pointer dereference".into())
        }
        v => Err(format!("Cannot {what} on type {}", go_kind_name(v))),
    }
}

/// Go's `reflect.Kind` name, as Sprig's list errors print it.
fn go_kind_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "invalid",
        Value::Bytes(_) | Value::List(_) => "slice",
        Value::Map(_) => "map",
        Value::Object(o) => o.kind(),
        v => v.type_name(),
    }
}

fn map_get(m: &Value) -> BTreeMap<String, Value> {
    match m {
        Value::Map(m) => m.borrow().clone(),
        _ => BTreeMap::new(),
    }
}

/// Adds Sprig's functions.
pub fn add(m: &mut FuncMap) {
    use Ty::*;
    strings::add(m);
    numbers::add(m);
    flow::add(m);
    encoding::add(m);
    lists::add(m);
    dicts::add(m);
    // Semantic versions.
    m.insert("semverCompare", &[Str, Str], None, |_, a| {
        crate::semver_compat::compare(s(&a[0]), s(&a[1])).map(Value::Bool)
    });
    m.insert("semver", &[Str], None, |_, a| {
        crate::semver_compat::version_value(s(&a[0]))
    });
    // Paths.
    m.insert("base", &[Str], None, |_, a| Ok(path_base(s(&a[0])).into()));
    m.insert("dir", &[Str], None, |_, a| Ok(path_dir(s(&a[0])).into()));
    m.insert("ext", &[Str], None, |_, a| {
        let b = s(&a[0]);
        Ok(match b.rfind(['.', '/']) {
            Some(k) if b.as_bytes()[k] == b'.' => b[k..].to_string(),
            _ => String::new(),
        }
        .into())
    });
    m.insert("isAbs", &[Str], None, |_, a| {
        Ok(Value::Bool(s(&a[0]).starts_with('/')))
    });
    clock::add(m);
    url::add(m);
    crypto::add(m);
    certs::add(m);
    // A render never reaches the network: chart content from Git must not
    // make the hub resolve names (and the answer would differ per hub).
    m.insert("getHostByName", &[Str], None, |_, a| {
        Err(format!(
            "switchyard renders charts with no network access, so it cannot resolve {:?}: \
             pass the address as a value instead (--set) and use that in place of getHostByName",
            s(&a[0])
        ))
    });
}

fn host(e: &Exec<'_>) -> Host {
    e.host.downcast_ref::<Host>().cloned().unwrap_or_default()
}

/// A generator seeded from the caller's seed, the call site and how often that
/// call site ran: stable across renders of the same inputs.
fn rng(e: &mut Exec<'_>) -> rand_chacha::ChaCha20Rng {
    let site = e.call_site();
    let seed = host(e).seed;
    let n = e.call_counts.entry(site.clone()).or_insert(0);
    *n += 1;
    let mut h = sha2::Sha256::new();
    h.update(seed);
    h.update(b"\0");
    h.update(site.as_bytes());
    h.update(b"\0");
    h.update(n.to_string().as_bytes());
    rand_chacha::ChaCha20Rng::from_seed(h.finalize().into())
}

fn path_base(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

fn path_dir(p: &str) -> String {
    match p.rfind('/') {
        None => ".".into(),
        Some(0) => "/".into(),
        Some(k) => {
            let d = p[..k].trim_end_matches('/');
            if d.is_empty() {
                "/".into()
            } else {
                d.to_string()
            }
        }
    }
}

pub(crate) fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::clock::*;
    use super::dicts::*;
    use super::encoding::*;
    use super::strings::*;
    use super::*;

    #[test]
    fn conversions_follow_cast() {
        assert_eq!(to_int64(&Value::str("0x10")), 16);
        assert_eq!(to_int64(&Value::str("12.0")), 12);
        assert_eq!(to_int64(&Value::str("1.5")), 0);
        assert_eq!(to_int64(&Value::Float(3.9)), 3);
        assert_eq!(to_float64(&Value::str("2.5")), 2.5);
    }

    #[test]
    fn string_helpers() {
        assert_eq!(title("hello wOrld-foo"), "Hello WOrld-Foo");
        assert_eq!(delimited_case("HTTPServerName", '_'), "http_server_name");
        assert_eq!(camelcase("http_server"), "HttpServer");
        assert_eq!(base32_encode(b"hi"), "NBUQ====");
        assert_eq!(base32_decode("NBUQ===="), Ok(b"hi".to_vec()));
        assert_eq!(base32_decode("NBUQ"), Err(0));
        assert_eq!(base32_decode("NBUQ====NBUQ===="), Err(4));
        assert_eq!(base32_decode("NB\nUQ===="), Ok(b"hi".to_vec()));
        assert_eq!(base32_decode("NBUQ=A=="), Err(4));
        assert_eq!(base32_decode("nbuq===="), Err(0));
        assert_eq!(base32_decode(""), Ok(Vec::new()));
        assert_eq!(adler32(b"Wikipedia"), 300286872);
        assert_eq!(
            format_time("2006-01-02T15:04:05Z07:00", 86400 + 3661),
            "1970-01-02T01:01:01Z"
        );
    }

    #[test]
    fn merge_keeps_non_empty_destination_values() {
        let dst = Value::from_json(&serde_json::json!({"a": 1, "b": "", "n": {"x": 1}}));
        let src =
            Value::from_json(&serde_json::json!({"a": 2, "b": "s", "c": 3, "n": {"x": 2, "y": 3}}));
        merge_into(&dst, &src, false, 0);
        assert_eq!(
            dst,
            Value::from_json(&serde_json::json!({"a": 1, "b": "s", "c": 3, "n": {"x": 1, "y": 3}}))
        );
        merge_into(&dst, &src, true, 0);
        assert_eq!(
            dst,
            Value::from_json(&serde_json::json!({"a": 2, "b": "s", "c": 3, "n": {"x": 2, "y": 3}}))
        );
    }
}
