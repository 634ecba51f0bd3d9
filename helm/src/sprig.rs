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
        Value::Object(_) => "ptr",
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
    // Strings.
    m.insert("upper", &[Str], None, |_, a| {
        Ok(s(&a[0]).to_uppercase().into())
    });
    m.insert("lower", &[Str], None, |_, a| {
        Ok(s(&a[0]).to_lowercase().into())
    });
    m.insert("title", &[Str], None, |_, a| Ok(title(s(&a[0])).into()));
    m.insert("untitle", &[Str], None, |_, a| Ok(untitle(s(&a[0])).into()));
    m.insert("swapcase", &[Str], None, |_, a| {
        Ok(s(&a[0])
            .chars()
            .map(|c| {
                if c.is_uppercase() {
                    c.to_lowercase().collect::<String>()
                } else {
                    c.to_uppercase().collect()
                }
            })
            .collect::<String>()
            .into())
    });
    m.insert("trim", &[Str], None, |_, a| {
        Ok(s(&a[0]).trim_matches(is_go_space).into())
    });
    m.insert("trimAll", &[Str, Str], None, |_, a| {
        Ok(s(&a[1]).trim_matches(|c| s(&a[0]).contains(c)).into())
    });
    m.insert("trimall", &[Str, Str], None, |_, a| {
        Ok(s(&a[1]).trim_matches(|c| s(&a[0]).contains(c)).into())
    });
    m.insert("trimSuffix", &[Str, Str], None, |_, a| {
        Ok(s(&a[1]).strip_suffix(s(&a[0])).unwrap_or(s(&a[1])).into())
    });
    m.insert("trimPrefix", &[Str, Str], None, |_, a| {
        Ok(s(&a[1]).strip_prefix(s(&a[0])).unwrap_or(s(&a[1])).into())
    });
    m.insert("nospace", &[Str], None, |_, a| {
        Ok(s(&a[0])
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .into())
    });
    m.insert("trunc", &[Int, Str], None, |_, a| {
        let (c, st) = (i(&a[0]), s(&a[1]));
        let n = st.len() as i64;
        Ok(if c < 0 && n + c > 0 {
            byte_slice(st, (n + c) as usize, n as usize)
        } else if c >= 0 && n > c {
            byte_slice(st, 0, c as usize)
        } else {
            st.to_string()
        }
        .into())
    });
    m.insert("substr", &[Int, Int, Str], None, |_, a| {
        let (start, end, st) = (i(&a[0]), i(&a[1]), s(&a[2]));
        let n = st.len() as i64;
        let (lo, hi) = if start < 0 {
            (0, end)
        } else if end < 0 || end > n {
            (start, n)
        } else {
            (start, end)
        };
        if lo < 0 || hi < lo || hi > n {
            return Err(format!(
                "runtime error: slice bounds out of range [{lo}:{hi}]"
            ));
        }
        Ok(byte_slice(st, lo as usize, hi as usize).into())
    });
    m.insert("repeat", &[Int, Str], None, |_, a| {
        let n = i(&a[0]);
        if n < 0 {
            return Err("strings: negative Repeat count".into());
        }
        if (n as u128) * (s(&a[1]).len() as u128) > (64 << 20) {
            return Err("repeat: result too large".into());
        }
        Ok(s(&a[1]).repeat(n as usize).into())
    });
    m.insert("abbrev", &[Int, Str], None, |_, a| {
        let (w, st) = (i(&a[0]), s(&a[1]));
        if w < 4 || st.chars().count() as i64 <= w {
            return Ok(st.into());
        }
        let keep: String = st.chars().take((w - 3) as usize).collect();
        Ok(format!("{keep}...").into())
    });
    m.insert("initials", &[Str], None, |_, a| {
        Ok(s(&a[0])
            .split_whitespace()
            .filter_map(|w| w.chars().next())
            .collect::<String>()
            .into())
    });
    m.insert("wrap", &[Int, Str], None, |_, a| {
        Ok(wrap(s(&a[1]), i(&a[0]), "\n").into())
    });
    m.insert("wrapWith", &[Int, Str, Str], None, |_, a| {
        Ok(wrap(s(&a[2]), i(&a[0]), s(&a[1])).into())
    });
    m.insert("contains", &[Str, Str], None, |_, a| {
        Ok(Value::Bool(s(&a[1]).contains(s(&a[0]))))
    });
    m.insert("hasPrefix", &[Str, Str], None, |_, a| {
        Ok(Value::Bool(s(&a[1]).starts_with(s(&a[0]))))
    });
    m.insert("hasSuffix", &[Str, Str], None, |_, a| {
        Ok(Value::Bool(s(&a[1]).ends_with(s(&a[0]))))
    });
    m.insert("quote", &[], Some(Any), |_, a| {
        Ok(a.iter()
            .filter(|v| !v.is_nil())
            .map(|v| gofmt::go_quote(&strval(v)))
            .collect::<Vec<_>>()
            .join(" ")
            .into())
    });
    m.insert("squote", &[], Some(Any), |_, a| {
        Ok(a.iter()
            .filter(|v| !v.is_nil())
            .map(|v| format!("'{}'", strval(v)))
            .collect::<Vec<_>>()
            .join(" ")
            .into())
    });
    m.insert("cat", &[], Some(Any), |_, a| {
        let parts: Vec<String> = a
            .iter()
            .filter(|v| !v.is_nil())
            .map(gofmt::sprint_value)
            .collect();
        Ok(parts.join(" ").into())
    });
    m.insert("indent", &[Int, Str], None, |_, a| {
        Ok(indent(i(&a[0]), s(&a[1]))?.into())
    });
    m.insert("nindent", &[Int, Str], None, |_, a| {
        Ok(format!("\n{}", indent(i(&a[0]), s(&a[1]))?).into())
    });
    m.insert("replace", &[Str, Str, Str], None, |_, a| {
        Ok(s(&a[2]).replace(s(&a[0]), s(&a[1])).into())
    });
    m.insert("plural", &[Str, Str, Int], None, |_, a| {
        Ok(if i(&a[2]) == 1 {
            a[0].clone()
        } else {
            a[1].clone()
        })
    });
    m.insert("snakecase", &[Str], None, |_, a| {
        Ok(delimited_case(s(&a[0]), '_').into())
    });
    m.insert("kebabcase", &[Str], None, |_, a| {
        Ok(delimited_case(s(&a[0]), '-').into())
    });
    m.insert("camelcase", &[Str], None, |_, a| {
        Ok(camelcase(s(&a[0])).into())
    });
    m.insert("shuffle", &[Str], None, |e, a| {
        let mut chars: Vec<char> = s(&a[0]).chars().collect();
        let mut r = rng(e);
        for k in (1..chars.len()).rev() {
            let j = r.random_range(0..=k);
            chars.swap(k, j);
        }
        Ok(chars.into_iter().collect::<String>().into())
    });
    m.insert("join", &[Str, Any], None, |_, a| {
        Ok(strslice(&a[1]).join(s(&a[0])).into())
    });
    m.insert("split", &[Str, Str], None, |_, a| {
        let parts = go_split(s(&a[1]), s(&a[0]))
            .into_iter()
            .enumerate()
            .map(|(k, p)| (format!("_{k}"), p))
            .collect();
        Ok(string_map(parts))
    });
    m.insert("splitList", &[Str, Str], None, |_, a| {
        Ok(Value::list(
            go_split(s(&a[1]), s(&a[0]))
                .into_iter()
                .map(Value::str)
                .collect(),
        ))
    });
    m.insert("splitn", &[Str, Int, Str], None, |_, a| {
        let n = i(&a[1]);
        let parts: Vec<&str> = if n < 0 {
            s(&a[2]).split(s(&a[0])).collect()
        } else {
            s(&a[2]).splitn(n as usize, s(&a[0])).collect()
        };
        Ok(string_map(
            parts
                .into_iter()
                .enumerate()
                .map(|(k, p)| (format!("_{k}"), p.to_string()))
                .collect(),
        ))
    });
    m.insert("sortAlpha", &[Any], None, |_, a| {
        Ok(match &a[0] {
            Value::List(_) => {
                let mut v = strslice(&a[0]);
                v.sort();
                Value::list(v.into_iter().map(Value::str).collect())
            }
            v => Value::list(vec![Value::str(strval(v))]),
        })
    });
    m.insert("toString", &[Any], None, |_, a| Ok(strval(&a[0]).into()));
    m.insert("toStrings", &[Any], None, |_, a| {
        Ok(Value::list(
            strslice(&a[0]).into_iter().map(Value::str).collect(),
        ))
    });
    // Conversions and math.
    m.insert("atoi", &[Str], None, |_, a| {
        Ok(Value::Int(s(&a[0]).parse::<i64>().unwrap_or(0)))
    });
    m.insert("int", &[Any], None, |_, a| Ok(Value::Int(to_int64(&a[0]))));
    m.insert("int64", &[Any], None, |_, a| {
        Ok(Value::Int64(to_int64(&a[0])))
    });
    m.insert("float64", &[Any], None, |_, a| {
        Ok(Value::Float(to_float64(&a[0])))
    });
    m.insert("toDecimal", &[Any], None, |_, a| {
        Ok(Value::Int64(
            i64::from_str_radix(&strval(&a[0]), 8).unwrap_or(0),
        ))
    });
    m.insert("add1", &[Any], None, |_, a| {
        Ok(Value::Int64(to_int64(&a[0]).wrapping_add(1)))
    });
    m.insert("add", &[], Some(Any), |_, a| {
        Ok(Value::Int64(
            a.iter().fold(0i64, |x, y| x.wrapping_add(to_int64(y))),
        ))
    });
    m.insert("sub", &[Any, Any], None, |_, a| {
        Ok(Value::Int64(to_int64(&a[0]).wrapping_sub(to_int64(&a[1]))))
    });
    m.insert("mul", &[Any], Some(Any), |_, a| {
        Ok(Value::Int64(
            a.iter().fold(1i64, |x, y| x.wrapping_mul(to_int64(y))),
        ))
    });
    m.insert("div", &[Any, Any], None, |_, a| {
        let d = to_int64(&a[1]);
        if d == 0 {
            return Err("runtime error: integer divide by zero".into());
        }
        Ok(Value::Int64(to_int64(&a[0]).wrapping_div(d)))
    });
    m.insert("mod", &[Any, Any], None, |_, a| {
        let d = to_int64(&a[1]);
        if d == 0 {
            return Err("runtime error: integer divide by zero".into());
        }
        Ok(Value::Int64(to_int64(&a[0]).wrapping_rem(d)))
    });
    m.insert("max", &[Any], Some(Any), |_, a| {
        Ok(Value::Int64(a.iter().map(to_int64).max().unwrap_or(0)))
    });
    m.insert("biggest", &[Any], Some(Any), |_, a| {
        Ok(Value::Int64(a.iter().map(to_int64).max().unwrap_or(0)))
    });
    m.insert("min", &[Any], Some(Any), |_, a| {
        Ok(Value::Int64(a.iter().map(to_int64).min().unwrap_or(0)))
    });
    m.insert("add1f", &[Any], None, |_, a| {
        Ok(Value::Float(to_float64(&a[0]) + 1.0))
    });
    m.insert("addf", &[], Some(Any), |_, a| {
        Ok(Value::Float(a.iter().map(to_float64).sum()))
    });
    m.insert("subf", &[Any], Some(Any), |_, a| {
        Ok(Value::Float(
            a[1..]
                .iter()
                .fold(to_float64(&a[0]), |x, y| x - to_float64(y)),
        ))
    });
    m.insert("mulf", &[Any], Some(Any), |_, a| {
        Ok(Value::Float(
            a[1..]
                .iter()
                .fold(to_float64(&a[0]), |x, y| x * to_float64(y)),
        ))
    });
    m.insert("divf", &[Any], Some(Any), |_, a| {
        Ok(Value::Float(
            a[1..]
                .iter()
                .fold(to_float64(&a[0]), |x, y| x / to_float64(y)),
        ))
    });
    m.insert("maxf", &[Any], Some(Any), |_, a| {
        Ok(Value::Float(
            a.iter().map(to_float64).fold(f64::NEG_INFINITY, f64::max),
        ))
    });
    m.insert("minf", &[Any], Some(Any), |_, a| {
        Ok(Value::Float(
            a.iter().map(to_float64).fold(f64::INFINITY, f64::min),
        ))
    });
    m.insert("floor", &[Any], None, |_, a| {
        Ok(Value::Float(to_float64(&a[0]).floor()))
    });
    m.insert("ceil", &[Any], None, |_, a| {
        Ok(Value::Float(to_float64(&a[0]).ceil()))
    });
    m.insert("round", &[Any, Int], Some(Float), |_, a| {
        let round_on = a.get(2).map(to_float64).unwrap_or(0.5);
        let pow = 10f64.powi(i(&a[1]) as i32);
        let digit = pow * to_float64(&a[0]);
        // Go's math.Modf keeps the sign in the fraction: -2.5 rounds to -3.
        let r = if digit.fract() >= round_on {
            digit.ceil()
        } else {
            digit.floor()
        };
        Ok(Value::Float(r / pow))
    });
    m.insert("until", &[Int], None, |_, a| {
        Ok(until_step(0, i(&a[0]), if i(&a[0]) < 0 { -1 } else { 1 }))
    });
    m.insert("untilStep", &[Int, Int, Int], None, |_, a| {
        Ok(until_step(i(&a[0]), i(&a[1]), i(&a[2])))
    });
    m.insert("seq", &[], Some(Any), |_, a| {
        let p: Vec<i64> = a.iter().map(to_int64).collect();
        let (start, step, end) = match p.as_slice() {
            [] => return Ok(Value::str("")),
            [e] => (1, if *e < 1 { -1 } else { 1 }, *e),
            [s0, e] => (*s0, if e < s0 { -1 } else { 1 }, *e),
            [s0, st, e, ..] => (*s0, *st, *e),
        };
        let mut out = Vec::new();
        if step != 0 {
            let mut x = start;
            while (step > 0 && x <= end) || (step < 0 && x >= end) {
                out.push(x.to_string());
                if out.len() > 1_000_000 {
                    return Err("seq: too many elements".into());
                }
                x += step;
            }
        }
        Ok(out.join(" ").into())
    });
    // Defaults and flow.
    m.insert("default", &[Any], Some(Any), |_, a| {
        Ok(if a.len() < 2 || empty(&a[1]) {
            a[0].clone()
        } else {
            a[1].clone()
        })
    });
    m.insert("empty", &[Any], None, |_, a| Ok(Value::Bool(empty(&a[0]))));
    m.insert("coalesce", &[], Some(Any), |_, a| {
        Ok(a.iter().find(|v| !empty(v)).cloned().unwrap_or(Value::Nil))
    });
    m.insert("all", &[], Some(Any), |_, a| {
        Ok(Value::Bool(a.iter().all(|v| !empty(v))))
    });
    m.insert("any", &[], Some(Any), |_, a| {
        Ok(Value::Bool(a.iter().any(|v| !empty(v))))
    });
    m.insert("ternary", &[Any, Any, Bool], None, |_, a| {
        Ok(if a[2].truthy() {
            a[0].clone()
        } else {
            a[1].clone()
        })
    });
    m.insert("fail", &[Str], None, |_, a| Err(s(&a[0]).to_string()));
    m.insert("deepCopy", &[Any], None, |_, a| Ok(a[0].deep_copy()));
    m.insert("mustDeepCopy", &[Any], None, |_, a| Ok(a[0].deep_copy()));
    m.insert("toRawJson", &[Any], None, |_, a| {
        crate::json::to_json(&a[0], false, None).map(Value::from)
    });
    m.insert("mustToRawJson", &[Any], None, |_, a| {
        crate::json::to_json(&a[0], false, None).map(Value::from)
    });
    m.insert("toPrettyJson", &[Any], None, |_, a| {
        crate::json::to_json(&a[0], true, Some("  ")).map(Value::from)
    });
    m.insert("mustToPrettyJson", &[Any], None, |_, a| {
        crate::json::to_json(&a[0], true, Some("  ")).map(Value::from)
    });
    m.insert("mustToJson", &[Any], None, |_, a| {
        crate::json::to_json(&a[0], true, None).map(Value::from)
    });
    m.insert("mustFromJson", &[Str], None, |_, a| {
        crate::json::from_json(s(&a[0]))
    });
    m.insert("typeOf", &[Any], None, |_, a| Ok(a[0].type_name().into()));
    m.insert("typeIs", &[Str, Any], None, |_, a| {
        Ok(Value::Bool(s(&a[0]) == a[1].type_name()))
    });
    m.insert("kindOf", &[Any], None, |_, a| Ok(kind_of(&a[0]).into()));
    m.insert("kindIs", &[Str, Any], None, |_, a| {
        Ok(Value::Bool(s(&a[0]) == kind_of(&a[1])))
    });
    m.insert("deepEqual", &[Any, Any], None, |_, a| {
        Ok(Value::Bool(a[0] == a[1]))
    });
    // Encoding and hashes.
    m.insert("b64enc", &[Str], None, |_, a| {
        Ok(base64::engine::general_purpose::STANDARD
            .encode(s(&a[0]))
            .into())
    });
    m.insert("b64dec", &[Str], None, |_, a| {
        Ok(
            match base64::engine::general_purpose::STANDARD.decode(s(&a[0])) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned().into(),
                Err(e) => go_b64_error(&e).into(),
            },
        )
    });
    m.insert("b32enc", &[Str], None, |_, a| {
        Ok(base32_encode(s(&a[0]).as_bytes()).into())
    });
    m.insert("sha256sum", &[Str], None, |_, a| {
        Ok(hex(&sha2::Sha256::digest(s(&a[0]).as_bytes())).into())
    });
    m.insert("sha1sum", &[Str], None, |_, a| {
        Ok(hex(&sha1::Sha1::digest(s(&a[0]).as_bytes())).into())
    });
    m.insert("adler32sum", &[Str], None, |_, a| {
        Ok(adler32(s(&a[0]).as_bytes()).to_string().into())
    });
    // Regular expressions (Go's RE2 syntax; Rust's regex crate is RE2-compatible).
    m.insert("regexMatch", &[Str, Str], None, |_, a| {
        Ok(Value::Bool(
            regex::Regex::new(s(&a[0])).is_ok_and(|r| r.is_match(s(&a[1]))),
        ))
    });
    m.insert("mustRegexMatch", &[Str, Str], None, |_, a| {
        Ok(Value::Bool(re(s(&a[0]))?.is_match(s(&a[1]))))
    });
    m.insert("regexFind", &[Str, Str], None, |_, a| {
        Ok(re(s(&a[0]))?
            .find(s(&a[1]))
            .map(|x| x.as_str())
            .unwrap_or("")
            .into())
    });
    m.insert("mustRegexFind", &[Str, Str], None, |_, a| {
        Ok(re(s(&a[0]))?
            .find(s(&a[1]))
            .map(|x| x.as_str())
            .unwrap_or("")
            .into())
    });
    m.insert("regexFindAll", &[Str, Str, Int], None, regex_find_all);
    m.insert("mustRegexFindAll", &[Str, Str, Int], None, regex_find_all);
    m.insert("regexReplaceAll", &[Str, Str, Str], None, |_, a| {
        Ok(re(s(&a[0]))?
            .replace_all(s(&a[1]), s(&a[2]))
            .into_owned()
            .into())
    });
    m.insert("mustRegexReplaceAll", &[Str, Str, Str], None, |_, a| {
        Ok(re(s(&a[0]))?
            .replace_all(s(&a[1]), s(&a[2]))
            .into_owned()
            .into())
    });
    m.insert("regexReplaceAllLiteral", &[Str, Str, Str], None, |_, a| {
        Ok(re(s(&a[0]))?
            .replace_all(s(&a[1]), regex::NoExpand(s(&a[2])))
            .into_owned()
            .into())
    });
    m.insert("regexSplit", &[Str, Str, Int], None, |_, a| {
        let r = re(s(&a[0]))?;
        let n = i(&a[2]);
        let parts: Vec<Value> = if n < 0 {
            r.split(s(&a[1])).map(Value::str).collect()
        } else if n == 0 {
            Vec::new()
        } else {
            r.splitn(s(&a[1]), n as usize).map(Value::str).collect()
        };
        Ok(Value::list(parts))
    });
    m.insert("regexQuoteMeta", &[Str], None, |_, a| {
        Ok(regex::escape(s(&a[0])).into())
    });
    // Lists.
    m.insert("list", &[], Some(Any), |_, a| Ok(Value::list(a)));
    m.insert("tuple", &[], Some(Any), |_, a| Ok(Value::list(a)));
    m.insert("first", &[Any], None, |_, a| {
        Ok(list_of(&a[0], "find first")?
            .first()
            .cloned()
            .unwrap_or(Value::Nil))
    });
    m.insert("mustFirst", &[Any], None, |_, a| {
        Ok(list_of(&a[0], "find first")?
            .first()
            .cloned()
            .unwrap_or(Value::Nil))
    });
    m.insert("last", &[Any], None, |_, a| {
        Ok(list_of(&a[0], "find last")?
            .last()
            .cloned()
            .unwrap_or(Value::Nil))
    });
    m.insert("mustLast", &[Any], None, |_, a| {
        Ok(list_of(&a[0], "find last")?
            .last()
            .cloned()
            .unwrap_or(Value::Nil))
    });
    m.insert("rest", &[Any], None, |_, a| {
        let l = list_of(&a[0], "find rest")?;
        Ok(if l.is_empty() {
            Value::Nil
        } else {
            Value::list(l[1..].to_vec())
        })
    });
    m.insert("initial", &[Any], None, |_, a| {
        let l = list_of(&a[0], "find initial")?;
        Ok(if l.is_empty() {
            Value::Nil
        } else {
            Value::list(l[..l.len() - 1].to_vec())
        })
    });
    for name in ["append", "push", "mustAppend", "mustPush"] {
        m.insert(name, &[Any, Any], None, |_, a| {
            let mut l = list_of(&a[0], "push")?;
            l.push(a[1].clone());
            Ok(Value::list(l))
        });
    }
    for name in ["prepend", "mustPrepend"] {
        m.insert(name, &[Any, Any], None, |_, a| {
            let mut l = list_of(&a[0], "prepend")?;
            l.insert(0, a[1].clone());
            Ok(Value::list(l))
        });
    }
    m.insert("concat", &[], Some(Any), |_, a| {
        let mut out = Vec::new();
        for l in &a {
            match l {
                Value::List(l) => out.extend(l.iter().cloned()),
                v => return Err(format!("Cannot concat type {} as list", go_kind_name(v))),
            }
        }
        Ok(Value::list(out))
    });
    m.insert("reverse", &[Any], None, |_, a| {
        let mut l = list_of(&a[0], "find reverse")?;
        l.reverse();
        Ok(Value::list(l))
    });
    m.insert("uniq", &[Any], None, |_, a| {
        let mut out: Vec<Value> = Vec::new();
        for v in list_of(&a[0], "find uniq")? {
            if !out.contains(&v) {
                out.push(v);
            }
        }
        Ok(Value::list(out))
    });
    m.insert("without", &[Any], Some(Any), |_, a| {
        let l = list_of(&a[0], "find without")?;
        Ok(Value::list(
            l.into_iter().filter(|v| !a[1..].contains(v)).collect(),
        ))
    });
    m.insert("has", &[Any, Any], None, |_, a| {
        Ok(Value::Bool(match &a[1] {
            Value::Nil => false,
            Value::List(l) => l.contains(&a[0]),
            v => return Err(format!("Cannot find has on type {}", go_kind_name(v))),
        }))
    });
    m.insert("compact", &[Any], None, |_, a| {
        Ok(Value::list(
            list_of(&a[0], "compact")?
                .into_iter()
                .filter(|v| !empty(v))
                .collect(),
        ))
    });
    m.insert("slice", &[Any], Some(Any), |_, a| {
        let l = match &a[0] {
            Value::List(l) => l.to_vec(),
            v => {
                return Err(format!(
                    "list should be type of slice or array but {}",
                    go_kind_name(v)
                ));
            }
        };
        if l.is_empty() {
            return Ok(Value::Nil);
        }
        let start = a.get(1).map(to_int64).unwrap_or(0);
        let end = a.get(2).map(to_int64).unwrap_or(l.len() as i64);
        if start < 0 || end < start || end as usize > l.len() {
            return Err("reflect.Value.Slice: slice index out of bounds".to_string());
        }
        Ok(Value::list(l[start as usize..end as usize].to_vec()))
    });
    m.insert("chunk", &[Int, Any], None, |_, a| {
        let size = i(&a[0]);
        let l = list_of(&a[1], "chunk")?;
        if size <= 0 {
            return Err("runtime error: integer divide by zero".into());
        }
        Ok(Value::list(
            l.chunks(size as usize)
                .map(|c| Value::list(c.to_vec()))
                .collect(),
        ))
    });
    // Dicts.
    m.insert("dict", &[], Some(Any), |_, a| {
        let mut d = BTreeMap::new();
        for pair in a.chunks(2) {
            let k = strval(&pair[0]);
            d.insert(k, pair.get(1).cloned().unwrap_or_else(|| Value::str("")));
        }
        Ok(Value::map(d))
    });
    m.insert("get", &[Map, Str], None, |_, a| {
        Ok(map_get(&a[0])
            .get(s(&a[1]))
            .cloned()
            .unwrap_or_else(|| Value::str("")))
    });
    m.insert("set", &[Map, Str, Any], None, |_, a| match &a[0] {
        Value::Map(d) => {
            d.borrow_mut().insert(s(&a[1]).to_string(), a[2].clone());
            Ok(a[0].clone())
        }
        _ => Err("assignment to entry in nil map".into()),
    });
    m.insert("unset", &[Map, Str], None, |_, a| {
        if let Value::Map(d) = &a[0] {
            d.borrow_mut().remove(s(&a[1]));
        }
        Ok(a[0].clone())
    });
    m.insert("hasKey", &[Map, Str], None, |_, a| {
        Ok(Value::Bool(map_get(&a[0]).contains_key(s(&a[1]))))
    });
    m.insert("pluck", &[Str], Some(Map), |_, a| {
        Ok(Value::list(
            a[1..]
                .iter()
                .filter_map(|d| map_get(d).get(s(&a[0])).cloned())
                .collect(),
        ))
    });
    m.insert("keys", &[], Some(Map), |_, a| {
        let mut out = Vec::new();
        for d in &a {
            out.extend(map_get(d).into_keys().map(Value::str));
        }
        Ok(Value::list(out))
    });
    m.insert("values", &[Map], None, |_, a| {
        Ok(Value::list(map_get(&a[0]).into_values().collect()))
    });
    m.insert("pick", &[Map], Some(Str), |_, a| {
        let d = map_get(&a[0]);
        Ok(Value::map(
            a[1..]
                .iter()
                .filter_map(|k| d.get(s(k)).map(|v| (s(k).to_string(), v.clone())))
                .collect(),
        ))
    });
    m.insert("omit", &[Map], Some(Str), |_, a| {
        let d = map_get(&a[0]);
        Ok(Value::map(
            d.into_iter()
                .filter(|(k, _)| !a[1..].iter().any(|x| s(x) == k))
                .collect(),
        ))
    });
    m.insert("dig", &[], Some(Any), |_, a| {
        if a.len() < 3 {
            return Err("dig needs at least three arguments".into());
        }
        let dict = a.last().cloned().unwrap_or_default();
        let default = a[a.len() - 2].clone();
        let mut cur = match dict {
            Value::Map(_) => dict,
            v => {
                return Err(format!(
                    "interface conversion: interface {{}} is {}, not map[string]interface {{}}",
                    go_kind_name(&v)
                ));
            }
        };
        for k in &a[..a.len() - 2] {
            let key = k
                .as_str()
                .ok_or("interface conversion: interface {} is not string")?;
            let next = map_get(&cur).get(key).cloned();
            match next {
                Some(v) => cur = v,
                None => return Ok(default),
            }
        }
        Ok(cur)
    });
    for (name, overwrite) in [
        ("merge", false),
        ("mustMerge", false),
        ("mergeOverwrite", true),
        ("mustMergeOverwrite", true),
    ] {
        let f: crate::template::NativeFn = if overwrite {
            |_, a| {
                for src in &a[1..] {
                    merge_into(&a[0], src, true, 0);
                }
                Ok(a[0].clone())
            }
        } else {
            |_, a| {
                for src in &a[1..] {
                    merge_into(&a[0], src, false, 0);
                }
                Ok(a[0].clone())
            }
        };
        m.insert(name, &[Map], Some(Map), f);
    }
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
    // Deterministic randomness.
    m.insert("randAlphaNum", &[Int], None, |e, a| {
        rand_string(
            e,
            i(&a[0]),
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        )
    });
    m.insert("randAlpha", &[Int], None, |e, a| {
        rand_string(
            e,
            i(&a[0]),
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        )
    });
    m.insert("randNumeric", &[Int], None, |e, a| {
        rand_string(e, i(&a[0]), b"0123456789")
    });
    m.insert("randAscii", &[Int], None, |e, a| {
        let set: Vec<u8> = (32u8..127).collect();
        rand_string(e, i(&a[0]), &set)
    });
    m.insert("randInt", &[Int, Int], None, |e, a| {
        let (lo, hi) = (i(&a[0]), i(&a[1]));
        if hi <= lo {
            return Err("invalid argument to Intn".into());
        }
        Ok(Value::Int(rng(e).random_range(lo..hi)))
    });
    m.insert("uuidv4", &[], None, |e, _| {
        let mut b = [0u8; 16];
        rng(e).fill(&mut b);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h = hex(&b);
        Ok(format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
        .into())
    });
    // Time: `now` is the caller's fixed instant, so renders are reproducible.
    m.insert("now", &[], None, |e, _| {
        Ok(time_value(Value::Int64(host(e).now_unix)))
    });
    m.insert("unixEpoch", &[Any], None, |_, a| {
        Ok(Value::str(unix_of(&a[0]).to_string()))
    });
    m.insert("date", &[Str, Any], None, |_, a| {
        Ok(format_time(s(&a[0]), unix_of(&a[1])).into())
    });
    m.insert("dateInZone", &[Str, Any, Str], None, |_, a| {
        if s(&a[2]) != "UTC" {
            return Err(format!(
                "time zone {:?} is not supported (only UTC)",
                s(&a[2])
            ));
        }
        Ok(format_time(s(&a[0]), unix_of(&a[1])).into())
    });
    m.insert("htmlDate", &[Any], None, |_, a| {
        Ok(format_time("2006-01-02", unix_of(&a[0])).into())
    });
    // Functions that need cryptography or I/O this engine does not do (yet).
    for name in [
        "genCA",
        "genCAWithKey",
        "genSelfSignedCert",
        "genSelfSignedCertWithKey",
        "genSignedCert",
        "genSignedCertWithKey",
        "genPrivateKey",
        "derivePassword",
        "buildCustomCert",
        "encryptAES",
        "decryptAES",
        "bcrypt",
        "htpasswd",
        "randBytes",
        "getHostByName",
        "toDate",
        "mustToDate",
        "dateModify",
        "mustDateModify",
        "ago",
        "duration",
        "durationRound",
        "urlParse",
        "urlJoin",
        "b32dec",
    ] {
        m.insert(name, &[], Some(Any), |e, _| {
            Err(format!(
                "this function is not supported by switchyard's Helm engine yet (called at {})",
                e.call_site()
            ))
        });
    }
}

/// A Go `map[string]string` (what `split` returns): a missing key reads as "".
struct StringMap(BTreeMap<String, String>);

impl crate::value::Object for StringMap {
    fn type_name(&self) -> &'static str {
        "map[string]string"
    }
    fn field(&self, name: &str) -> Option<Value> {
        Some(Value::str(self.0.get(name).cloned().unwrap_or_default()))
    }
    fn display(&self) -> String {
        crate::gofmt::sprint_value(&self.to_data())
    }
    fn to_data(&self) -> Value {
        Value::map(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), Value::str(v.as_str())))
                .collect(),
        )
    }
}

fn string_map(m: BTreeMap<String, String>) -> Value {
    Value::Object(std::rc::Rc::new(StringMap(m)))
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

fn rand_string(e: &mut Exec<'_>, n: i64, set: &[u8]) -> Res {
    if n < 0 {
        return Err("runtime error: makeslice: len out of range".into());
    }
    if n > 1 << 20 {
        return Err("random string too long".into());
    }
    let mut r = rng(e);
    Ok((0..n)
        .map(|_| set[r.random_range(0..set.len())] as char)
        .collect::<String>()
        .into())
}

/// A time as `now` returns it: a Go `time.Time` printed as Go prints it.
struct Time(i64);

impl crate::value::Object for Time {
    fn type_name(&self) -> &'static str {
        "time.Time"
    }
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Unix" => Some(Value::Int64(self.0)),
            "Year" => Some(Value::Int(ymd(self.0).0)),
            _ => None,
        }
    }
    fn has_method(&self, name: &str) -> bool {
        matches!(name, "Format" | "UTC")
    }
    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        match (name, args) {
            ("Format", [Value::String(f)]) => Some(Ok(format_time(f, self.0).into())),
            ("UTC", []) => Some(Ok(time_value(Value::Int64(self.0)))),
            _ => None,
        }
    }
    fn display(&self) -> String {
        format_time("2006-01-02 15:04:05.999999999 -0700 MST", self.0)
    }
}

fn time_value(v: Value) -> Value {
    Value::Object(std::rc::Rc::new(Time(v.as_int().unwrap_or(0))))
}

fn unix_of(v: &Value) -> i64 {
    match v {
        Value::Object(o) if o.type_name() == "time.Time" => {
            o.field("Unix").and_then(|u| u.as_int()).unwrap_or(0)
        }
        Value::Int(x) | Value::Int64(x) => *x,
        Value::Float(f) => *f as i64,
        _ => 0,
    }
}

fn ymd(unix: i64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let dt =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    (
        dt.year() as i64,
        dt.month() as u32,
        dt.day() as u32,
        dt.hour() as u32,
        dt.minute() as u32,
        dt.second() as u32,
        dt.weekday().number_days_from_sunday() as u32,
    )
}

/// Go's `time.Format` for a UTC instant and the common layout elements.
pub fn format_time(layout: &str, unix: i64) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    let (y, mo, d, h, mi, se, wd) = ymd(unix);
    let mut out = String::new();
    let mut rest = layout;
    type Element<'a> = (&'a str, Box<dyn Fn() -> String>);
    let table: &[Element<'_>] = &[
        (
            "January",
            Box::new(move || MONTHS[mo as usize - 1].to_string()),
        ),
        ("Monday", Box::new(move || DAYS[wd as usize].to_string())),
        ("2006", Box::new(move || format!("{y:04}"))),
        ("MST", Box::new(|| "UTC".to_string())),
        ("-0700", Box::new(|| "+0000".to_string())),
        ("-07:00", Box::new(|| "+00:00".to_string())),
        ("Z07:00", Box::new(|| "Z".to_string())),
        ("Z0700", Box::new(|| "Z".to_string())),
        (".999999999", Box::new(String::new)),
        (".000000000", Box::new(|| ".000000000".to_string())),
        (".000", Box::new(|| ".000".to_string())),
        (
            "Jan",
            Box::new(move || MONTHS[mo as usize - 1][..3].to_string()),
        ),
        ("Mon", Box::new(move || DAYS[wd as usize][..3].to_string())),
        ("01", Box::new(move || format!("{mo:02}"))),
        ("02", Box::new(move || format!("{d:02}"))),
        ("_2", Box::new(move || format!("{d:>2}"))),
        ("15", Box::new(move || format!("{h:02}"))),
        (
            "03",
            Box::new(move || format!("{:02}", if h % 12 == 0 { 12 } else { h % 12 })),
        ),
        ("04", Box::new(move || format!("{mi:02}"))),
        ("05", Box::new(move || format!("{se:02}"))),
        ("06", Box::new(move || format!("{:02}", y % 100))),
        (
            "PM",
            Box::new(move || if h >= 12 { "PM".into() } else { "AM".into() }),
        ),
        (
            "pm",
            Box::new(move || if h >= 12 { "pm".into() } else { "am".into() }),
        ),
        ("1", Box::new(move || mo.to_string())),
        ("2", Box::new(move || d.to_string())),
        (
            "3",
            Box::new(move || (if h % 12 == 0 { 12 } else { h % 12 }).to_string()),
        ),
        ("4", Box::new(move || mi.to_string())),
        ("5", Box::new(move || se.to_string())),
    ];
    'outer: while !rest.is_empty() {
        for (k, f) in table {
            if let Some(r) = rest.strip_prefix(k) {
                out.push_str(&f());
                rest = r;
                continue 'outer;
            }
        }
        let c = rest.chars().next().unwrap_or(' ');
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn regex_find_all(_: &mut Exec<'_>, a: Args) -> Res {
    let r = re(s(&a[0]))?;
    let n = i(&a[2]);
    let it = r.find_iter(s(&a[1])).map(|x| Value::str(x.as_str()));
    Ok(Value::list(if n < 0 {
        it.collect()
    } else {
        it.take(n as usize).collect()
    }))
}

fn re(p: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(p)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("error parsing regexp: {e}"))
}

fn is_go_space(c: char) -> bool {
    c.is_whitespace()
}

fn byte_slice(st: &str, lo: usize, hi: usize) -> String {
    String::from_utf8_lossy(&st.as_bytes()[lo..hi]).into_owned()
}

fn indent(n: i64, v: &str) -> Result<String, String> {
    if n < 0 {
        return Err("strings: negative Repeat count".into());
    }
    if n > 1 << 16 {
        return Err("indent too large".into());
    }
    let pad = " ".repeat(n as usize);
    Ok(format!("{pad}{}", v.replace('\n', &format!("\n{pad}"))))
}

/// Go's `strings.Split`: an empty separator splits into UTF-8 characters.
fn go_split(st: &str, sep: &str) -> Vec<String> {
    if sep.is_empty() {
        return st.chars().map(|c| c.to_string()).collect();
    }
    st.split(sep).map(str::to_string).collect()
}

/// Go's deprecated `strings.Title`: upper-cases letters that start words.
fn title(st: &str) -> String {
    let mut out = String::with_capacity(st.len());
    let mut prev = ' ';
    for c in st.chars() {
        let sep = if prev.is_ascii() {
            !(prev.is_ascii_alphanumeric() || prev == '_')
        } else if prev.is_alphabetic() || prev.is_numeric() {
            false
        } else {
            prev.is_whitespace()
        };
        if sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev = c;
    }
    out
}

fn untitle(st: &str) -> String {
    let mut out = String::with_capacity(st.len());
    let mut at_start = true;
    for c in st.chars() {
        if at_start && !c.is_whitespace() {
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
        at_start = c.is_whitespace();
    }
    out
}

/// huandu/xstrings' snake/kebab case: words split at case changes and separators.
fn delimited_case(st: &str, delim: char) -> String {
    let mut out = String::new();
    let chars: Vec<char> = st.chars().collect();
    for (k, &c) in chars.iter().enumerate() {
        if c == '_' || c == '-' || c == ' ' || c == '.' {
            if !out.is_empty() && !out.ends_with(delim) {
                out.push(delim);
            }
            continue;
        }
        if c.is_uppercase() {
            let prev = if k > 0 { chars[k - 1] } else { ' ' };
            let next = chars.get(k + 1).copied().unwrap_or(' ');
            if !out.is_empty()
                && !out.ends_with(delim)
                && (prev.is_lowercase()
                    || prev.is_numeric()
                    || (prev.is_uppercase() && next.is_lowercase()))
            {
                out.push(delim);
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out.trim_end_matches(delim).to_string()
}

fn camelcase(st: &str) -> String {
    let mut out = String::new();
    let mut up = true;
    for c in st.chars() {
        if c == '_' || c == '-' || c == ' ' {
            up = true;
            continue;
        }
        if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// goutils' `WrapCustom(str, width, newline, false)`.
fn wrap(st: &str, width: i64, newline: &str) -> String {
    let width = width.max(1) as usize;
    let mut out = Vec::new();
    for line in st.split('\n') {
        let mut cur = String::new();
        for word in line.split(' ').filter(|w| !w.is_empty()) {
            if !cur.is_empty() && cur.len() + 1 + word.len() > width {
                out.push(std::mem::take(&mut cur));
            }
            if !cur.is_empty() {
                cur.push(' ');
            }
            cur.push_str(word);
        }
        out.push(cur);
    }
    out.join(newline)
}

fn until_step(start: i64, stop: i64, step: i64) -> Value {
    let mut v = Vec::new();
    if step == 0 || (step > 0 && start >= stop) || (step < 0 && start <= stop) {
        return Value::list(v);
    }
    let mut x = start;
    while (step > 0 && x < stop) || (step < 0 && x > stop) {
        v.push(Value::Int(x));
        if v.len() > 1_000_000 {
            break;
        }
        x += step;
    }
    Value::list(v)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Nil => "invalid",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Int64(_) => "int64",
        Value::Float(_) => "float64",
        Value::String(_) => "string",
        Value::Bytes(_) | Value::List(_) => "slice",
        Value::Map(_) => "map",
        Value::Object(_) => "ptr",
    }
}

/// mergo's `Merge` (and with `overwrite`, `WithOverride`) for maps: `dst` is changed in place.
pub fn merge_into(dst: &Value, src: &Value, overwrite: bool, depth: usize) {
    let (Value::Map(d), Value::Map(s)) = (dst, src) else {
        return;
    };
    if depth > crate::MAX_DATA_DEPTH || std::rc::Rc::ptr_eq(d, s) {
        return;
    }
    let entries: Vec<(String, Value)> = s
        .borrow()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, sv) in entries {
        let dv = d.borrow().get(&k).cloned();
        match (&dv, &sv) {
            (Some(dv @ Value::Map(_)), Value::Map(_)) if !empty(dv) => {
                merge_into(dv, &sv, overwrite, depth + 1);
            }
            (Some(dv), _) if !empty(dv) && !overwrite => {}
            (Some(_), Value::Nil) if !overwrite => {}
            _ => {
                if sv.is_nil() && !overwrite && dv.is_none() {
                    continue;
                }
                d.borrow_mut().insert(k, sv);
            }
        }
    }
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

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + x as u32) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

fn base32_encode(data: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    for chunk in data.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let n = u64::from_be_bytes([0, 0, 0, buf[0], buf[1], buf[2], buf[3], buf[4]]);
        let chars = (chunk.len() * 8).div_ceil(5);
        for k in 0..8 {
            if k < chars {
                out.push(A[((n >> (35 - k * 5)) & 31) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn go_b64_error(e: &base64::DecodeError) -> String {
    match e {
        base64::DecodeError::InvalidByte(off, _)
        | base64::DecodeError::InvalidLastSymbol(off, _) => {
            format!("illegal base64 data at input byte {off}")
        }
        _ => "illegal base64 data at input byte 0".into(),
    }
}

#[cfg(test)]
mod tests {
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
