//! Go's `time` package as Sprig's date functions see it, as pure functions:
//! layouts (`Format`, `Parse`), `Duration.String`, `ParseDuration` and
//! `Duration.Round`. The local zone is UTC, as on the hub and in Helm's
//! container images, so a parsed offset other than zero gets a fixed zone.

/// An instant with the zone it is shown in (Go's `time.Time`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GoTime {
    pub(crate) unix: i64,
    pub(crate) nanos: u32,
    /// Seconds east of UTC.
    pub(crate) offset: i32,
    /// The zone's name (`UTC`, `PST`); `None` is Go's fixed zone without a
    /// name, printed as its offset.
    pub(crate) zone: Option<&'static str>,
    /// A zone name read from the input that is not known here.
    pub(crate) zone_owned: Option<std::rc::Rc<str>>,
}

impl GoTime {
    pub(crate) fn utc(unix: i64, nanos: u32) -> GoTime {
        GoTime {
            unix,
            nanos,
            offset: 0,
            zone: Some("UTC"),
            zone_owned: None,
        }
    }

    fn zone_name(&self) -> Option<&str> {
        self.zone_owned.as_deref().or(self.zone)
    }

    /// Nanoseconds since the epoch, saturating like Go's `Sub`.
    pub(crate) fn unix_nanos(&self) -> i128 {
        i128::from(self.unix) * 1_000_000_000 + i128::from(self.nanos)
    }

    /// `t.Add(d)`, keeping the zone.
    pub(crate) fn add(&self, d: i64) -> GoTime {
        let n = self.unix_nanos() + i128::from(d);
        let mut t = self.clone_zone();
        t.unix = n.div_euclid(1_000_000_000) as i64;
        t.nanos = n.rem_euclid(1_000_000_000) as u32;
        t
    }

    fn clone_zone(&self) -> GoTime {
        self.clone()
    }
}

/// The year of a time in its zone.
pub(crate) fn year(t: &GoTime) -> i64 {
    fields(t).year
}

/// Go's zero `time.Time` (what `toDate` gives for text it cannot parse).
pub(crate) fn zero() -> GoTime {
    GoTime::utc(-62_135_596_800, 0)
}

// ---- calendar ----

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in(m: i64, y: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Wall-clock fields of a time in its own zone.
struct Fields {
    year: i64,
    month: i64,
    day: i64,
    yday: i64,
    hour: i64,
    min: i64,
    sec: i64,
    weekday: i64,
}

fn fields(t: &GoTime) -> Fields {
    let local = t.unix + i64::from(t.offset);
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    Fields {
        year,
        month,
        day,
        yday: days - days_from_civil(year, 1, 1) + 1,
        hour: secs / 3600,
        min: secs / 60 % 60,
        sec: secs % 60,
        // 1970-01-01 was a Thursday.
        weekday: (days + 4).rem_euclid(7),
    }
}

const LONG_MONTHS: [&str; 12] = [
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
const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

// ---- layouts ----

/// One layout element (Go's `std*` constants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Std {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PM,
    Pm,
    Tz,
    Iso8601Tz,
    Iso8601SecondsTz,
    Iso8601ShortTz,
    Iso8601ColonTz,
    Iso8601ColonSecondsTz,
    NumTz,
    NumSecondsTz,
    NumShortTz,
    NumColonTz,
    NumColonSecondsTz,
    /// `.000`: exactly this many digits; the separator (`.` or `,`).
    FracSecond0(usize, u8),
    /// `.999`: up to this many digits, trailing zeros dropped.
    FracSecond9(usize, u8),
}

fn starts_lower(s: &[u8]) -> bool {
    s.first().is_some_and(u8::is_ascii_lowercase)
}

/// Go's `nextStdChunk`: the literal text before the next element, the
/// element, and the rest of the layout.
fn next_std(layout: &str) -> (&str, Option<Std>, &str) {
    let b = layout.as_bytes();
    let at = |i: usize, s: &str| b.len() >= i + s.len() && &b[i..i + s.len()] == s.as_bytes();
    for i in 0..b.len() {
        let found: Option<(Std, usize)> = match b[i] {
            b'J' if at(i, "January") => Some((Std::LongMonth, 7)),
            b'J' if at(i, "Jan") && !starts_lower(&b[i + 3..]) => Some((Std::Month, 3)),
            b'M' if at(i, "Monday") => Some((Std::LongWeekDay, 6)),
            b'M' if at(i, "Mon") && !starts_lower(&b[i + 3..]) => Some((Std::WeekDay, 3)),
            b'M' if at(i, "MST") => Some((Std::Tz, 3)),
            b'0' if b.len() > i + 1 && (b'1'..=b'6').contains(&b[i + 1]) => Some((
                [
                    Std::ZeroMonth,
                    Std::ZeroDay,
                    Std::ZeroHour12,
                    Std::ZeroMinute,
                    Std::ZeroSecond,
                    Std::Year,
                ][usize::from(b[i + 1] - b'1')],
                2,
            )),
            b'0' if at(i, "002") => Some((Std::ZeroYearDay, 3)),
            b'1' if at(i, "15") => Some((Std::Hour, 2)),
            b'1' => Some((Std::NumMonth, 1)),
            b'2' if at(i, "2006") => Some((Std::LongYear, 4)),
            b'2' => Some((Std::Day, 1)),
            // "_2006" is a literal "_" and a year.
            b'_' if at(i, "_2006") => {
                return (&layout[..i + 1], Some(Std::LongYear), &layout[i + 5..]);
            }
            b'_' if at(i, "_2") => Some((Std::UnderDay, 2)),
            b'_' if at(i, "__2") => Some((Std::UnderYearDay, 3)),
            b'3' => Some((Std::Hour12, 1)),
            b'4' => Some((Std::Minute, 1)),
            b'5' => Some((Std::Second, 1)),
            b'P' if at(i, "PM") => Some((Std::PM, 2)),
            b'p' if at(i, "pm") => Some((Std::Pm, 2)),
            b'-' if at(i, "-070000") => Some((Std::NumSecondsTz, 7)),
            b'-' if at(i, "-07:00:00") => Some((Std::NumColonSecondsTz, 9)),
            b'-' if at(i, "-0700") => Some((Std::NumTz, 5)),
            b'-' if at(i, "-07:00") => Some((Std::NumColonTz, 6)),
            b'-' if at(i, "-07") => Some((Std::NumShortTz, 3)),
            b'Z' if at(i, "Z070000") => Some((Std::Iso8601SecondsTz, 7)),
            b'Z' if at(i, "Z07:00:00") => Some((Std::Iso8601ColonSecondsTz, 9)),
            b'Z' if at(i, "Z0700") => Some((Std::Iso8601Tz, 5)),
            b'Z' if at(i, "Z07:00") => Some((Std::Iso8601ColonTz, 6)),
            b'Z' if at(i, "Z07") => Some((Std::Iso8601ShortTz, 3)),
            c @ (b'.' | b',') if b.len() > i + 1 && (b[i + 1] == b'0' || b[i + 1] == b'9') => {
                let ch = b[i + 1];
                let mut j = i + 1;
                while j < b.len() && b[j] == ch {
                    j += 1;
                }
                // Only a fraction when the run of digits ends here.
                if j < b.len() && b[j].is_ascii_digit() {
                    None
                } else {
                    let n = j - (i + 1);
                    let std = if ch == b'0' {
                        Std::FracSecond0(n, c)
                    } else {
                        Std::FracSecond9(n, c)
                    };
                    return (&layout[..i], Some(std), &layout[j..]);
                }
            }
            _ => None,
        };
        if let Some((std, len)) = found {
            return (&layout[..i], Some(std), &layout[i + len..]);
        }
    }
    (layout, None, "")
}

fn pad(out: &mut String, v: i64, width: usize) {
    if v < 0 {
        out.push('-');
        out.push_str(&format!("{:0width$}", -v));
    } else {
        out.push_str(&format!("{v:0width$}"));
    }
}

/// Go's `Time.Format`.
pub(crate) fn format(t: &GoTime, layout: &str) -> String {
    let f = fields(t);
    let mut out = String::new();
    let mut rest = layout;
    loop {
        let (prefix, std, suffix) = next_std(rest);
        out.push_str(prefix);
        let Some(std) = std else { break };
        rest = suffix;
        let hour12 = if f.hour % 12 == 0 { 12 } else { f.hour % 12 };
        match std {
            Std::Year => pad(&mut out, f.year.rem_euclid(100), 2),
            Std::LongYear => pad(&mut out, f.year, 4),
            Std::Month => out.push_str(&LONG_MONTHS[f.month as usize - 1][..3]),
            Std::LongMonth => out.push_str(LONG_MONTHS[f.month as usize - 1]),
            Std::NumMonth => pad(&mut out, f.month, 0),
            Std::ZeroMonth => pad(&mut out, f.month, 2),
            Std::WeekDay => out.push_str(&LONG_DAYS[f.weekday as usize][..3]),
            Std::LongWeekDay => out.push_str(LONG_DAYS[f.weekday as usize]),
            Std::Day => pad(&mut out, f.day, 0),
            Std::UnderDay => {
                if f.day < 10 {
                    out.push(' ');
                }
                pad(&mut out, f.day, 0);
            }
            Std::ZeroDay => pad(&mut out, f.day, 2),
            Std::UnderYearDay => {
                if f.yday < 100 {
                    out.push(' ');
                    if f.yday < 10 {
                        out.push(' ');
                    }
                }
                pad(&mut out, f.yday, 0);
            }
            Std::ZeroYearDay => pad(&mut out, f.yday, 3),
            Std::Hour => pad(&mut out, f.hour, 2),
            Std::Hour12 => pad(&mut out, hour12, 0),
            Std::ZeroHour12 => pad(&mut out, hour12, 2),
            Std::Minute => pad(&mut out, f.min, 0),
            Std::ZeroMinute => pad(&mut out, f.min, 2),
            Std::Second => pad(&mut out, f.sec, 0),
            Std::ZeroSecond => pad(&mut out, f.sec, 2),
            Std::PM => out.push_str(if f.hour >= 12 { "PM" } else { "AM" }),
            Std::Pm => out.push_str(if f.hour >= 12 { "pm" } else { "am" }),
            Std::Tz => match t.zone_name() {
                Some(n) if !n.is_empty() => out.push_str(n),
                _ => {
                    let z = t.offset / 60;
                    out.push(if z < 0 { '-' } else { '+' });
                    pad(&mut out, i64::from(z.abs() / 60), 2);
                    pad(&mut out, i64::from(z.abs() % 60), 2);
                }
            },
            Std::Iso8601Tz
            | Std::Iso8601SecondsTz
            | Std::Iso8601ShortTz
            | Std::Iso8601ColonTz
            | Std::Iso8601ColonSecondsTz
                if t.offset == 0 =>
            {
                out.push('Z')
            }
            Std::Iso8601Tz
            | Std::Iso8601SecondsTz
            | Std::Iso8601ShortTz
            | Std::Iso8601ColonTz
            | Std::Iso8601ColonSecondsTz
            | Std::NumTz
            | Std::NumSecondsTz
            | Std::NumShortTz
            | Std::NumColonTz
            | Std::NumColonSecondsTz => {
                let z = t.offset / 60;
                let abs = t.offset.abs();
                out.push(if z < 0 { '-' } else { '+' });
                pad(&mut out, i64::from(z.abs() / 60), 2);
                let colon = matches!(
                    std,
                    Std::Iso8601ColonTz
                        | Std::NumColonTz
                        | Std::Iso8601ColonSecondsTz
                        | Std::NumColonSecondsTz
                );
                if !matches!(std, Std::NumShortTz | Std::Iso8601ShortTz) {
                    if colon {
                        out.push(':');
                    }
                    pad(&mut out, i64::from(z.abs() % 60), 2);
                }
                if matches!(
                    std,
                    Std::Iso8601SecondsTz
                        | Std::NumSecondsTz
                        | Std::NumColonSecondsTz
                        | Std::Iso8601ColonSecondsTz
                ) {
                    if colon {
                        out.push(':');
                    }
                    pad(&mut out, i64::from(abs % 60), 2);
                }
            }
            Std::FracSecond0(n, sep) => {
                out.push(sep as char);
                let digits = format!("{:09}", t.nanos);
                out.push_str(&digits[..n.min(9)]);
            }
            Std::FracSecond9(n, sep) => {
                let digits = format!("{:09}", t.nanos);
                let d = digits[..n.min(9)].trim_end_matches('0');
                if !d.is_empty() {
                    out.push(sep as char);
                    out.push_str(d);
                }
            }
        }
    }
    out
}

/// Go's `Time.String`.
pub(crate) fn display(t: &GoTime) -> String {
    format(t, "2006-01-02 15:04:05.999999999 -0700 MST")
}

fn go_quote(s: &str) -> String {
    format!("{s:?}")
}

/// A parse failure; `Display` is Go's `ParseError` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError(String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn cannot(layout: &str, value: &str, layout_elem: &str, value_elem: &str) -> ParseError {
    ParseError(format!(
        "parsing time {} as {}: cannot parse {} as {}",
        go_quote(value),
        go_quote(layout),
        go_quote(value_elem),
        go_quote(layout_elem)
    ))
}

fn with_msg(value: &str, msg: &str) -> ParseError {
    ParseError(format!("parsing time {}{msg}", go_quote(value)))
}

fn skip<'a>(mut value: &'a str, mut prefix: &str) -> Result<&'a str, ()> {
    while let Some(p) = prefix.chars().next() {
        if p == ' ' {
            if value.chars().next().is_some_and(|c| c != ' ') {
                return Err(());
            }
            prefix = prefix.trim_start_matches(' ');
            value = value.trim_start_matches(' ');
            continue;
        }
        if !value.starts_with(p) {
            return Err(());
        }
        prefix = &prefix[p.len_utf8()..];
        value = &value[p.len_utf8()..];
    }
    Ok(value)
}

fn digit(s: &str, i: usize) -> bool {
    s.as_bytes().get(i).is_some_and(u8::is_ascii_digit)
}

/// Go's `getnum`: one or two digits (exactly two when `fixed`).
fn getnum(s: &str, fixed: bool) -> Result<(i64, &str), ()> {
    if !digit(s, 0) {
        return Err(());
    }
    let b = s.as_bytes();
    if !digit(s, 1) {
        if fixed {
            return Err(());
        }
        return Ok((i64::from(b[0] - b'0'), &s[1..]));
    }
    Ok((
        i64::from(b[0] - b'0') * 10 + i64::from(b[1] - b'0'),
        &s[2..],
    ))
}

fn getnum3(s: &str, fixed: bool) -> Result<(i64, &str), ()> {
    let mut n = 0;
    let mut i = 0;
    while i < 3 && digit(s, i) {
        n = n * 10 + i64::from(s.as_bytes()[i] - b'0');
        i += 1;
    }
    if i == 0 || (fixed && i != 3) {
        return Err(());
    }
    Ok((n, &s[i..]))
}

fn lookup<'a>(tab: &[&str], value: &'a str) -> Result<(usize, &'a str), ()> {
    for (k, name) in tab.iter().enumerate() {
        if value.len() >= name.len()
            && value.as_bytes()[..name.len()].eq_ignore_ascii_case(name.as_bytes())
        {
            return Ok((k, &value[name.len()..]));
        }
    }
    Err(())
}

/// Go's `parseNanoseconds`: `value` starts with the separator.
fn parse_nanos(value: &str, nbytes: usize) -> Result<i64, ()> {
    let b = value.as_bytes();
    if !matches!(b.first(), Some(b'.' | b',')) {
        return Err(());
    }
    let nbytes = nbytes.min(10);
    let digits = &b[1..nbytes.min(b.len())];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(());
    }
    let ns = digits
        .iter()
        .fold(0i64, |n, c| n * 10 + i64::from(c - b'0'));
    Ok(ns * 10i64.pow((10 - nbytes) as u32))
}

/// Two ASCII digits at the start of `b`.
fn num2(b: &[u8]) -> Result<i64, ()> {
    match b {
        [x, y, ..] if x.is_ascii_digit() && y.is_ascii_digit() => {
            Ok(i64::from(x - b'0') * 10 + i64::from(y - b'0'))
        }
        _ => Err(()),
    }
}

/// Go's `parseTimeZone`: how many bytes of `value` look like a zone name.
fn parse_time_zone(value: &str) -> Option<usize> {
    let b = value.as_bytes();
    if b.len() < 3 {
        return None;
    }
    if value.starts_with("ChST") || value.starts_with("MeST") {
        return Some(4);
    }
    if let Some(rest) = value.strip_prefix("GMT") {
        return Some(3 + parse_signed_offset(rest));
    }
    if b[0] == b'+' || b[0] == b'-' {
        let n = parse_signed_offset(value);
        return (n > 0).then_some(n);
    }
    let upper = b
        .iter()
        .take(6)
        .take_while(|c| c.is_ascii_uppercase())
        .count();
    match upper {
        3 => Some(3),
        4 if b[3] == b'T' || value.starts_with("WITA") => Some(4),
        5 if b[4] == b'T' => Some(5),
        _ => None,
    }
}

fn parse_signed_offset(value: &str) -> usize {
    let b = value.as_bytes();
    if !matches!(b.first(), Some(b'+' | b'-')) {
        return 0;
    }
    let n = b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 18 {
        return 0;
    }
    match value[1..1 + n].parse::<u64>() {
        Ok(x) if x <= 12 => 1 + n,
        _ => 0,
    }
}

/// Go's `time.ParseInLocation(layout, value, time.Local)` with Local = UTC.
pub(crate) fn parse(layout_all: &str, value_all: &str) -> Result<GoTime, ParseError> {
    let (mut layout, mut value) = (layout_all, value_all);
    let (mut year, mut month, mut day, mut yday) = (0i64, -1i64, -1i64, -1i64);
    let (mut hour, mut min, mut sec, mut nsec) = (0i64, 0i64, 0i64, 0i64);
    let (mut pm_set, mut am_set) = (false, false);
    let mut utc = false;
    let mut zone_offset: Option<i64> = None;
    let mut zone_name = String::new();
    const SHORT_MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    const SHORT_DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    loop {
        let (prefix, std, suffix) = next_std(layout);
        let std_str = &layout[prefix.len()..layout.len() - suffix.len()];
        value = skip(value, prefix).map_err(|_| cannot(layout_all, value_all, prefix, value))?;
        let Some(std) = std else {
            if !value.is_empty() {
                return Err(with_msg(
                    value_all,
                    &format!(": extra text: {}", go_quote(value)),
                ));
            }
            break;
        };
        layout = suffix;
        let hold = value;
        let mut range_err: Option<&str> = None;
        let r: Result<(), ()> = (|| {
            match std {
                Std::Year => {
                    year = num2(value.as_bytes())?;
                    value = &value[2..];
                    year += if year >= 69 { 1900 } else { 2000 };
                }
                Std::LongYear => {
                    let b = value.as_bytes();
                    if b.len() < 4 || !b[..4].iter().all(u8::is_ascii_digit) {
                        return Err(());
                    }
                    year = num2(b)? * 100 + num2(&b[2..])?;
                    value = &value[4..];
                }
                Std::Month => {
                    let (m, v) = lookup(&SHORT_MONTHS, value)?;
                    month = m as i64 + 1;
                    value = v;
                }
                Std::LongMonth => {
                    let (m, v) = lookup(&LONG_MONTHS, value)?;
                    month = m as i64 + 1;
                    value = v;
                }
                Std::NumMonth | Std::ZeroMonth => {
                    let (m, v) = getnum(value, std == Std::ZeroMonth)?;
                    month = m;
                    value = v;
                    if !(1..=12).contains(&month) {
                        range_err = Some("month");
                    }
                }
                Std::WeekDay => value = lookup(&SHORT_DAYS, value)?.1,
                Std::LongWeekDay => value = lookup(&LONG_DAYS, value)?.1,
                Std::Day | Std::UnderDay | Std::ZeroDay => {
                    if std == Std::UnderDay && value.starts_with(' ') {
                        value = &value[1..];
                    }
                    let (d, v) = getnum(value, std == Std::ZeroDay)?;
                    day = d;
                    value = v;
                }
                Std::UnderYearDay | Std::ZeroYearDay => {
                    for _ in 0..2 {
                        if std == Std::UnderYearDay && value.starts_with(' ') {
                            value = &value[1..];
                        }
                    }
                    let (d, v) = getnum3(value, std == Std::ZeroYearDay)?;
                    yday = d;
                    value = v;
                }
                Std::Hour => {
                    let (h, v) = getnum(value, false)?;
                    hour = h;
                    value = v;
                    if !(0..24).contains(&hour) {
                        range_err = Some("hour");
                    }
                }
                Std::Hour12 | Std::ZeroHour12 => {
                    let (h, v) = getnum(value, std == Std::ZeroHour12)?;
                    hour = h;
                    value = v;
                    if !(0..=12).contains(&hour) {
                        range_err = Some("hour");
                    }
                }
                Std::Minute | Std::ZeroMinute => {
                    let (m, v) = getnum(value, std == Std::ZeroMinute)?;
                    min = m;
                    value = v;
                    if !(0..60).contains(&min) {
                        range_err = Some("minute");
                    }
                }
                Std::Second | Std::ZeroSecond => {
                    let (s, v) = getnum(value, std == Std::ZeroSecond)?;
                    sec = s;
                    value = v;
                    if !(0..60).contains(&sec) {
                        range_err = Some("second");
                        return Ok(());
                    }
                    // A fraction in the input that the layout does not ask for is still read.
                    let b = value.as_bytes();
                    if b.len() >= 2 && matches!(b[0], b'.' | b',') && digit(value, 1) {
                        if let (_, Some(Std::FracSecond0(..) | Std::FracSecond9(..)), _) =
                            next_std(layout)
                        {
                            return Ok(());
                        }
                        let mut n = 2;
                        while digit(value, n) {
                            n += 1;
                        }
                        nsec = parse_nanos(value, n)?;
                        value = &value[n..];
                    }
                }
                Std::PM | Std::Pm => {
                    if value.len() < 2 || !value.is_char_boundary(2) {
                        return Err(());
                    }
                    let p = &value[..2];
                    value = &value[2..];
                    match (std, p) {
                        (Std::PM, "PM") | (Std::Pm, "pm") => pm_set = true,
                        (Std::PM, "AM") | (Std::Pm, "am") => am_set = true,
                        _ => return Err(()),
                    }
                }
                Std::Iso8601Tz
                | Std::Iso8601SecondsTz
                | Std::Iso8601ShortTz
                | Std::Iso8601ColonTz
                | Std::Iso8601ColonSecondsTz
                    if value.starts_with('Z') =>
                {
                    value = &value[1..];
                    utc = true;
                }
                Std::Iso8601Tz
                | Std::Iso8601SecondsTz
                | Std::Iso8601ShortTz
                | Std::Iso8601ColonTz
                | Std::Iso8601ColonSecondsTz
                | Std::NumTz
                | Std::NumSecondsTz
                | Std::NumShortTz
                | Std::NumColonTz
                | Std::NumColonSecondsTz => {
                    let b = value.as_bytes();
                    // Byte offsets of hours, minutes, seconds (None: "00") and the rest.
                    let (hp, mp, sp, len): (usize, Option<usize>, Option<usize>, usize) = match std
                    {
                        Std::Iso8601ColonTz | Std::NumColonTz => {
                            if b.len() < 6 || b[3] != b':' {
                                return Err(());
                            }
                            (1, Some(4), None, 6)
                        }
                        Std::NumShortTz | Std::Iso8601ShortTz => (1, None, None, 3),
                        Std::Iso8601ColonSecondsTz | Std::NumColonSecondsTz => {
                            if b.len() < 9 || b[3] != b':' || b[6] != b':' {
                                return Err(());
                            }
                            (1, Some(4), Some(7), 9)
                        }
                        Std::Iso8601SecondsTz | Std::NumSecondsTz => (1, Some(3), Some(5), 7),
                        _ => (1, Some(3), None, 5),
                    };
                    if b.len() < len {
                        return Err(());
                    }
                    let hr = num2(&b[hp..])?;
                    let mm = mp.map_or(Ok(0), |k| num2(&b[k..]))?;
                    let ss = sp.map_or(Ok(0), |k| num2(&b[k..]))?;
                    let off = (hr * 60 + mm) * 60 + ss;
                    zone_offset = Some(match b[0] {
                        b'+' => off,
                        b'-' => -off,
                        _ => return Err(()),
                    });
                    value = &value[len..];
                }
                Std::Tz => {
                    if value.starts_with("UTC") {
                        utc = true;
                        value = &value[3..];
                        return Ok(());
                    }
                    let n = parse_time_zone(value).ok_or(())?;
                    zone_name = value[..n].to_string();
                    value = &value[n..];
                }
                Std::FracSecond0(n, _) => {
                    let ndigit = 1 + n;
                    if value.len() < ndigit {
                        return Err(());
                    }
                    nsec = parse_nanos(value, ndigit)?;
                    value = &value[ndigit..];
                }
                Std::FracSecond9(..) => {
                    let b = value.as_bytes();
                    if b.len() < 2 || !matches!(b[0], b'.' | b',') || !b[1].is_ascii_digit() {
                        return Ok(());
                    }
                    let mut i = 0;
                    while digit(value, i + 1) {
                        i += 1;
                    }
                    nsec = parse_nanos(value, 1 + i)?;
                    value = &value[1 + i..];
                }
            }
            Ok(())
        })();
        if let Some(what) = range_err {
            return Err(with_msg(value_all, &format!(": {what} out of range")));
        }
        if r.is_err() {
            return Err(cannot(layout_all, value_all, std_str, hold));
        }
    }
    if pm_set && hour < 12 {
        hour += 12;
    } else if am_set && hour == 12 {
        hour = 0;
    }
    if yday >= 0 {
        let (mut d, mut m) = (0, 0);
        if is_leap(year) {
            if yday == 31 + 29 {
                m = 2;
                d = 29;
            } else if yday > 31 + 29 {
                yday -= 1;
            }
        }
        if !(1..=365).contains(&yday) {
            return Err(with_msg(value_all, ": day-of-year out of range"));
        }
        if m == 0 {
            const BEFORE: [i64; 13] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365];
            m = (yday - 1) / 31 + 1;
            if BEFORE[m as usize] < yday {
                m += 1;
            }
            d = yday - BEFORE[m as usize - 1];
        }
        if month >= 0 && month != m {
            return Err(with_msg(value_all, ": day-of-year does not match month"));
        }
        month = m;
        if day >= 0 && day != d {
            return Err(with_msg(value_all, ": day-of-year does not match day"));
        }
        day = d;
    } else {
        if month < 0 {
            month = 1;
        }
        if day < 0 {
            day = 1;
        }
    }
    if day < 1 || day > days_in(month, year) {
        return Err(with_msg(value_all, ": day out of range"));
    }
    let wall = days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec;
    let nanos = nsec as u32;
    if utc {
        return Ok(GoTime::utc(wall, nanos));
    }
    if let Some(off) = zone_offset {
        let mut t = GoTime::utc(wall - off, nanos);
        // The local zone (UTC) is used when it has that offset and name.
        if off == 0 && (zone_name.is_empty() || zone_name == "UTC") {
            return Ok(t);
        }
        t.offset = off as i32;
        t.zone = None;
        t.zone_owned = (!zone_name.is_empty()).then(|| zone_name.as_str().into());
        return Ok(t);
    }
    if !zone_name.is_empty() {
        let mut t = GoTime::utc(wall, nanos);
        // An unknown zone name: Go keeps the name with offset 0 (GMT+N gives N
        // hours) and reads the clock time as UTC, without shifting it.
        let mut off = 0i64;
        if zone_name.len() > 3 && zone_name.starts_with("GMT") {
            off = zone_name[3..].parse::<i64>().unwrap_or(0) * 3600;
        }
        t.offset = off as i32;
        t.zone = None;
        t.zone_owned = Some(zone_name.as_str().into());
        return Ok(t);
    }
    Ok(GoTime::utc(wall, nanos))
}

// ---- durations ----

/// Go's `Duration.String`.
pub(crate) fn duration_string(d: i64) -> String {
    let neg = d < 0;
    let mut u = d.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        if u == 0 {
            return "0s".into();
        }
        let (prec, unit) = if u < 1_000 {
            (0, "ns")
        } else if u < 1_000_000 {
            (3, "µs")
        } else {
            (6, "ms")
        };
        let (int, frac) = frac_split(u, prec);
        out.push_str(&int.to_string());
        out.push_str(&frac);
        out.push_str(unit);
    } else {
        let (secs, frac) = frac_split(u, 9);
        u = secs;
        let s = format!("{}{frac}s", u % 60);
        u /= 60;
        if u > 0 {
            let m = format!("{}m", u % 60);
            u /= 60;
            if u > 0 {
                out.push_str(&format!("{u}h"));
            }
            out.push_str(&m);
        }
        out.push_str(&s);
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

/// `v / 10^prec` and its fraction as ".ddd" without trailing zeros.
fn frac_split(v: u64, prec: u32) -> (u64, String) {
    let p = 10u64.pow(prec);
    let frac = v % p;
    if frac == 0 {
        return (v / p, String::new());
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    (v / p, format!(".{}", digits.trim_end_matches('0')))
}

/// Go's `time.ParseDuration`.
pub(crate) fn parse_duration(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", go_quote(orig));
    let mut s = orig;
    let mut neg = false;
    if let Some(c) = s.as_bytes().first()
        && (*c == b'-' || *c == b'+')
    {
        neg = *c == b'-';
        s = &s[1..];
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    const LIMIT: u64 = 1 << 63;
    let mut d: u64 = 0;
    while !s.is_empty() {
        let b = s.as_bytes();
        if !(b[0] == b'.' || b[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // Leading integer.
        let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut v: u64 = 0;
        for c in &b[..n] {
            if v > LIMIT / 10 {
                return Err(invalid());
            }
            v = v * 10 + u64::from(c - b'0');
            if v > LIMIT {
                return Err(invalid());
            }
        }
        let pre = n > 0;
        s = &s[n..];
        let (mut f, mut scale, mut post) = (0u64, 1f64, false);
        if s.starts_with('.') {
            s = &s[1..];
            let m = s.bytes().take_while(u8::is_ascii_digit).count();
            let mut overflow = false;
            for c in s[..m].bytes() {
                if overflow {
                    continue;
                }
                if f > (LIMIT - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let y = f * 10 + u64::from(c - b'0');
                if y > LIMIT {
                    overflow = true;
                    continue;
                }
                f = y;
                scale *= 10.0;
            }
            post = m > 0;
            s = &s[m..];
        }
        if !pre && !post {
            return Err(invalid());
        }
        let i = s
            .bytes()
            .take_while(|c| !(*c == b'.' || c.is_ascii_digit()))
            .count();
        if i == 0 {
            return Err(format!("time: missing unit in duration {}", go_quote(orig)));
        }
        let u = &s[..i];
        s = &s[i..];
        let unit: u64 = match u {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    go_quote(u),
                    go_quote(orig)
                ));
            }
        };
        if v > LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if f > 0 {
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        d += v;
        if d > LIMIT {
            return Err(invalid());
        }
    }
    if neg {
        return Ok((d as i64).wrapping_neg());
    }
    if d > LIMIT - 1 {
        return Err(invalid());
    }
    Ok(d as i64)
}

/// Go's `Duration.Round(m)`.
pub(crate) fn round(d: i64, m: i64) -> i64 {
    if m <= 0 {
        return d;
    }
    let mut r = d % m;
    if d < 0 {
        r = -r;
        if r + r < m {
            return d + r;
        }
        return d.checked_sub(m - r).unwrap_or(i64::MIN);
    }
    if r + r < m {
        return d - r;
    }
    d.checked_add(m - r).unwrap_or(i64::MAX)
}

/// Go's `t.Sub(u)`, saturating.
pub(crate) fn sub(t: &GoTime, u: &GoTime) -> i64 {
    let n = t.unix_nanos() - u.unix_nanos();
    n.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(layout: &str, value: &str) -> String {
        match parse(layout, value) {
            Ok(t) => display(&t),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_like_go() {
        assert_eq!(
            p("2006-01-02", "2017-12-31"),
            "2017-12-31 00:00:00 +0000 UTC"
        );
        assert_eq!(
            p("2006-01-02T15:04:05Z07:00", "2020-05-06T07:08:09+02:00"),
            "2020-05-06 07:08:09 +0200 +0200"
        );
        assert_eq!(
            p("2006-01-02T15:04:05Z07:00", "2020-05-06T07:08:09.25Z"),
            "2020-05-06 07:08:09.25 +0000 UTC"
        );
        assert_eq!(
            p("Jan _2 3:04PM MST 2006", "Feb  3 4:05PM PST 2021"),
            "2021-02-03 16:05:00 +0000 PST"
        );
        assert_eq!(
            p("2006-01-02", "bad"),
            r#"parsing time "bad" as "2006-01-02": cannot parse "bad" as "2006""#
        );
        assert_eq!(
            p("2006-01-02", "2017-02-30"),
            r#"parsing time "2017-02-30": day out of range"#
        );
        assert_eq!(
            p("2006-01-02", "2017-12-31x"),
            r#"parsing time "2017-12-31x": extra text: "x""#
        );
        assert_eq!(p("2006 002", "2024 060"), "2024-02-29 00:00:00 +0000 UTC");
    }

    #[test]
    fn formats_like_go() {
        let t = GoTime::utc(1_514_678_400 + 13 * 3600 + 5, 120_000_000);
        assert_eq!(
            format(&t, "Mon Jan _2 03:04:05.000 PM -07:00 2006 .999 002"),
            "Sun Dec 31 01:00:05.120 PM +00:00 2017 .12 365"
        );
        assert_eq!(format(&t, "Z07:00"), "Z");
        assert_eq!(
            format(&GoTime::utc(-62_135_596_800, 0), "2006-01-02"),
            "0001-01-01"
        );
    }

    #[test]
    fn durations_like_go() {
        assert_eq!(duration_string(0), "0s");
        assert_eq!(duration_string(100_000 * 1_000_000_000), "27h46m40s");
        assert_eq!(duration_string(1_500), "1.5µs");
        assert_eq!(duration_string(-90_000_000_000), "-1m30s");
        assert_eq!(duration_string(i64::MAX), "2562047h47m16.854775807s");
        assert_eq!(duration_string(i64::MIN), "-2562047h47m16.854775808s");
        assert_eq!(parse_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("-1m30s"), Ok(-90_000_000_000));
        assert!(parse_duration("1").unwrap_err().contains("missing unit"));
        assert!(parse_duration("1x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("9999999999h").is_err());
        assert_eq!(round(1_499_999_999, 1_000_000_000), 1_000_000_000);
        assert_eq!(round(-1_500_000_000, 1_000_000_000), -2_000_000_000);
    }
}
