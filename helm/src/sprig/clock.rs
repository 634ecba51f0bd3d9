//! Sprig's random and time functions, deterministic: random values derive from
//! the caller's seed and the call site, `now` is the caller's fixed instant.

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

/// A time as `now` returns it: a Go `time.Time` printed as Go prints it.
pub(super) struct Time(i64);

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

pub(super) fn time_value(v: Value) -> Value {
    Value::Object(std::rc::Rc::new(Time(v.as_int().unwrap_or(0))))
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

pub(super) fn ymd(unix: i64) -> (i64, u32, u32, u32, u32, u32, u32) {
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
pub(super) fn format_time(layout: &str, unix: i64) -> String {
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
