//! Sprig's random and time functions, deterministic: random values derive from
//! the caller's seed and the call site, `now` is the caller's fixed instant.

use super::gotime::{self, GoTime};
use super::*;

pub(super) fn add(m: &mut FuncMap) {
    use Ty::*;
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
    m.insert("date", &[Str, Any], None, |e, a| {
        Ok(gotime::format(&date_arg(e, &a[1]), s(&a[0])).into())
    });
    m.insert("dateInZone", &[Str, Any, Str], None, |e, a| {
        if s(&a[2]) != "UTC" {
            return Err(format!(
                "time zone {:?} is not supported (only UTC)",
                s(&a[2])
            ));
        }
        Ok(gotime::format(&date_arg(e, &a[1]), s(&a[0])).into())
    });
    m.insert("htmlDate", &[Any], None, |e, a| {
        Ok(gotime::format(&date_arg(e, &a[0]), "2006-01-02").into())
    });
    // Parsing (the local zone is UTC).
    m.insert("toDate", &[Str, Str], None, |_, a| {
        Ok(time_of(
            gotime::parse(s(&a[0]), s(&a[1])).unwrap_or_else(|_| gotime::zero()),
        ))
    });
    m.insert("mustToDate", &[Str, Str], None, |_, a| {
        gotime::parse(s(&a[0]), s(&a[1]))
            .map(time_of)
            .map_err(|e| e.to_string())
    });
    for name in ["dateModify", "date_modify"] {
        m.insert(name, &[Str, Any], None, |_, a| {
            let t = want_time(&a[1])?;
            Ok(time_of(match gotime::parse_duration(s(&a[0])) {
                Ok(d) => t.add(d),
                Err(_) => t,
            }))
        });
    }
    for name in ["mustDateModify", "must_date_modify"] {
        m.insert(name, &[Str, Any], None, |_, a| {
            let t = want_time(&a[1])?;
            Ok(time_of(t.add(gotime::parse_duration(s(&a[0]))?)))
        });
    }
    // Durations; "since" is measured from the caller's fixed `now`.
    m.insert("ago", &[Any], None, |e, a| {
        let now = GoTime::utc(host(e).now_unix, 0);
        let t = match &a[0] {
            Value::Int(x) | Value::Int64(x) => GoTime::utc(*x, 0),
            v => as_time(v).unwrap_or_else(|| now.clone()),
        };
        Ok(gotime::duration_string(gotime::round(gotime::sub(&now, &t), 1_000_000_000)).into())
    });
    m.insert("duration", &[Any], None, |_, a| {
        let n = match &a[0] {
            Value::String(x) => parse_int10(x),
            Value::Int64(x) => *x,
            _ => 0,
        };
        Ok(gotime::duration_string(n.wrapping_mul(1_000_000_000)).into())
    });
    m.insert("durationRound", &[Any], None, |e, a| {
        let d = match &a[0] {
            Value::String(x) => gotime::parse_duration(x).unwrap_or(0),
            Value::Int64(x) => *x,
            v => match as_time(v) {
                Some(t) => gotime::sub(&GoTime::utc(host(e).now_unix, 0), &t),
                None => 0,
            },
        };
        Ok(duration_round(d).into())
    });
}

/// Go's `strconv.ParseInt(s, 10, 64)` as Sprig's `duration` uses it: the
/// value Go returns beside its error (0, or the bound on overflow).
fn parse_int10(s: &str) -> i64 {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return 0;
    }
    let mut v: i128 = 0;
    for c in digits.bytes() {
        v = (v * 10 + i128::from(c - b'0')).min(i128::from(u64::MAX));
    }
    let v = if neg { -v } else { v };
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Sprig's `durationRound`: the largest whole unit, years of 365 days and months of 30.
pub(super) fn duration_round(d: i64) -> String {
    let u = d.unsigned_abs();
    const SECOND: u64 = 1_000_000_000;
    const MINUTE: u64 = 60 * SECOND;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    for (unit, suffix) in [
        (365 * DAY, "y"),
        (30 * DAY, "mo"),
        (DAY, "d"),
        (HOUR, "h"),
        (MINUTE, "m"),
        (SECOND, "s"),
    ] {
        if u > unit {
            return format!("{}{suffix}", u / unit);
        }
    }
    "0s".into()
}

pub(super) fn rand_string(e: &mut Exec<'_>, n: i64, set: &[u8]) -> Res {
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

/// A time as `now` and `toDate` return it: a Go `time.Time` printed as Go prints it.
pub(super) struct Time(pub(super) GoTime);

impl crate::value::Object for Time {
    fn type_name(&self) -> &'static str {
        "time.Time"
    }
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Unix" => Some(Value::Int64(self.0.unix)),
            "Year" => Some(Value::Int(gotime::year(&self.0))),
            _ => None,
        }
    }
    fn has_method(&self, name: &str) -> bool {
        matches!(name, "Format" | "UTC")
    }
    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        match (name, args) {
            ("Format", [Value::String(f)]) => Some(Ok(gotime::format(&self.0, f).into())),
            ("UTC", []) => Some(Ok(time_of(GoTime::utc(self.0.unix, self.0.nanos)))),
            _ => None,
        }
    }
    fn display(&self) -> String {
        gotime::display(&self.0)
    }
    fn kind(&self) -> &'static str {
        "struct"
    }
    /// Go's `Time.MarshalJSON`: RFC 3339 with nanoseconds.
    fn to_data(&self) -> Value {
        Value::str(gotime::format(
            &self.0,
            "2006-01-02T15:04:05.999999999Z07:00",
        ))
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

pub(super) fn time_value(v: Value) -> Value {
    time_of(GoTime::utc(v.as_int().unwrap_or(0), 0))
}

pub(super) fn time_of(t: GoTime) -> Value {
    Value::Object(std::rc::Rc::new(Time(t)))
}

/// The `time.Time` a value holds, if it is one.
pub(super) fn as_time(v: &Value) -> Option<GoTime> {
    match v {
        Value::Object(o) => o
            .as_any()
            .and_then(|a| a.downcast_ref::<Time>())
            .map(|t| t.0.clone()),
        _ => None,
    }
}

/// A Go argument of type `time.Time`: anything else is the error Go's template gives.
pub(super) fn want_time(v: &Value) -> Result<GoTime, String> {
    as_time(v).ok_or_else(|| match v {
        Value::Nil => "invalid value; expected time.Time".to_string(),
        v => format!(
            "wrong type for value; expected time.Time; got {}",
            v.type_name()
        ),
    })
}

/// The instant Sprig's `date` functions format, in UTC: a time, or Unix
/// seconds as an integer; anything else is `now`, as in Sprig.
fn date_arg(e: &Exec<'_>, v: &Value) -> GoTime {
    match v {
        Value::Int(x) | Value::Int64(x) => GoTime::utc(*x, 0),
        v => match as_time(v) {
            Some(t) => GoTime::utc(t.unix, t.nanos),
            None => GoTime::utc(host(e).now_unix, 0),
        },
    }
}

pub(super) fn unix_of(v: &Value) -> i64 {
    match v {
        Value::Object(o) if o.type_name() == "time.Time" => {
            o.field("Unix").and_then(|u| u.as_int()).unwrap_or(0)
        }
        Value::Int(x) | Value::Int64(x) => *x,
        Value::Float(f) => *f as i64,
        _ => 0,
    }
}

/// Go's `time.Format` for a UTC instant.
#[cfg(test)]
pub(super) fn format_time(layout: &str, unix: i64) -> String {
    gotime::format(&GoTime::utc(unix, 0), layout)
}
