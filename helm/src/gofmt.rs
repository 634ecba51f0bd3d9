//! Go's `fmt` printing (`Sprint`, `Sprintln`, `Sprintf`) for the value kinds
//! templates see, so `{{ . }}`, `print` and `printf` print exactly what Go prints.

use crate::value::Value;

/// `fmt.Sprint(v)` of one value (the `%v` verb).
pub fn sprint_value(v: &Value) -> String {
    let mut out = String::new();
    fmt_v(&mut out, v, 0);
    out
}

/// `fmt.Sprint(args...)`: spaces between operands when neither is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::String(_)) && !matches!(args[i - 1], Value::String(_)) {
            out.push(' ');
        }
        fmt_v(&mut out, a, 0);
    }
    out
}

/// `fmt.Sprintln(args...)`: always spaces, and a newline.
pub fn sprintln(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        fmt_v(&mut out, a, 0);
    }
    out.push('\n');
    out
}

fn fmt_v(out: &mut String, v: &Value, depth: usize) {
    if depth > crate::MAX_DATA_DEPTH {
        out.push_str("...");
        return;
    }
    match v {
        Value::Nil => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) | Value::Int64(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&format_float_g(*f, None)),
        Value::String(s) => out.push_str(s),
        Value::Bytes(b) => {
            out.push('[');
            for (i, x) in b.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(&x.to_string());
            }
            out.push(']');
        }
        Value::List(l) => {
            out.push('[');
            for (i, x) in l.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                fmt_v(out, x, depth + 1);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push_str("map[");
            for (i, (k, x)) in m.borrow().iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                fmt_v(out, x, depth + 1);
            }
            out.push(']');
        }
        Value::Object(o) => out.push_str(&o.value_repr()),
    }
}

/// Shortest decimal digits and decimal-point position of a finite, non-negative float:
/// value = 0.DIGITS × 10^dp.
fn shortest_digits(f: f64) -> (String, i32) {
    let s = format!("{:e}", f);
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let digits = digits.trim_end_matches('0').to_string();
    if digits.is_empty() {
        return ("0".into(), 1);
    }
    (digits, exp + 1)
}

/// Digits rounded to `prec` significant digits, trailing zeros trimmed.
fn prec_digits(f: f64, prec: usize) -> (String, i32) {
    let s = format!("{:.*e}", prec.saturating_sub(1), f);
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let digits = digits.trim_end_matches('0').to_string();
    if digits.is_empty() {
        return ("0".into(), 1);
    }
    (digits, exp + 1)
}

fn special_float(f: f64) -> Option<String> {
    if f.is_nan() {
        Some("NaN".into())
    } else if f.is_infinite() {
        Some(if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        })
    } else {
        None
    }
}

/// Go's `%e` body from digits: d.ddde±XX with `frac` fraction digits (None: all digits).
fn fmt_e(neg: bool, digits: &str, dp: i32, frac: Option<usize>, upper: bool) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    let d: Vec<char> = digits.chars().collect();
    out.push(d.first().copied().unwrap_or('0'));
    let frac = frac.unwrap_or(d.len().saturating_sub(1));
    if frac > 0 {
        out.push('.');
        for i in 1..=frac {
            out.push(d.get(i).copied().unwrap_or('0'));
        }
    }
    let exp = if digits == "0" { 0 } else { dp - 1 };
    out.push(if upper { 'E' } else { 'e' });
    out.push(if exp < 0 { '-' } else { '+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        out.push('0');
    }
    out.push_str(&a.to_string());
    out
}

/// Go's `%f` body from digits with `frac` fraction digits.
fn fmt_f(neg: bool, digits: &str, dp: i32, frac: usize) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    let d: Vec<char> = digits.chars().collect();
    if dp > 0 {
        for i in 0..dp as usize {
            out.push(d.get(i).copied().unwrap_or('0'));
        }
    } else {
        out.push('0');
    }
    if frac > 0 {
        out.push('.');
        for i in 0..frac as i32 {
            let idx = dp + i;
            let c = if idx < 0 {
                '0'
            } else {
                d.get(idx as usize).copied().unwrap_or('0')
            };
            out.push(c);
        }
    }
    out
}

/// `strconv.FormatFloat(f, 'g', prec, 64)` with Go's `%v` rule for the shortest form
/// (exponent form when the exponent is < -4 or >= 21... no: >= the precision, 6 when shortest... see body).
pub fn format_float_g(f: f64, prec: Option<usize>) -> String {
    if let Some(s) = special_float(f) {
        return s;
    }
    let neg = f.is_sign_negative() && f != 0.0 || (f == 0.0 && f.is_sign_negative());
    let a = f.abs();
    let (digits, dp, eprec) = match prec {
        None => {
            let (d, dp) = shortest_digits(a);
            (d, dp, 6)
        }
        Some(p) => {
            let p = p.max(1);
            let (d, dp) = prec_digits(a, p);
            let mut eprec = p as i32;
            if eprec > d.len() as i32 && d.len() as i32 >= dp {
                eprec = d.len() as i32;
            }
            (d, dp, eprec)
        }
    };
    let exp = if digits == "0" { 0 } else { dp - 1 };
    if exp < -4 || exp >= eprec {
        fmt_e(neg, &digits, dp, None, false)
    } else {
        let frac = (digits.len() as i32 - dp).max(0) as usize;
        fmt_f(neg, &digits, dp, frac)
    }
}

/// `strconv.FormatFloat(f, 'f', prec, 64)`.
pub fn format_float_f(f: f64, prec: usize) -> String {
    if let Some(s) = special_float(f) {
        return s;
    }
    let s = format!("{:.*}", prec, f);
    if s.starts_with("-") && s.trim_start_matches(['-', '0', '.']).is_empty() && f == 0.0 {
        return s;
    }
    s
}

/// `strconv.FormatFloat(f, 'e', prec, 64)`.
pub fn format_float_e(f: f64, prec: Option<usize>, upper: bool) -> String {
    if let Some(s) = special_float(f) {
        return s;
    }
    let neg = f.is_sign_negative();
    let a = f.abs();
    match prec {
        None => {
            let (d, dp) = shortest_digits(a);
            fmt_e(neg, &d, dp, None, upper)
        }
        Some(p) => {
            let (d, dp) = prec_digits(a, p + 1);
            fmt_e(neg, &d, dp, Some(p), upper)
        }
    }
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

fn is_go_printable(c: char) -> bool {
    // An approximation of unicode.IsPrint: control and format characters are not printable.
    !(c.is_control() || matches!(c as u32, 0x00AD | 0x200B..=0x200F | 0x2028..=0x202E | 0xFEFF))
}

struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

fn pad(spec: &Spec, s: String) -> String {
    let Some(w) = spec.width else { return s };
    let n = s.chars().count();
    if n >= w {
        return s;
    }
    let fill = w - n;
    if spec.minus {
        format!("{s}{}", " ".repeat(fill))
    } else if spec.zero {
        // Zero padding goes after a sign.
        let (sign, rest) = if s.starts_with(['-', '+', ' ']) {
            s.split_at(1)
        } else {
            ("", s.as_str())
        };
        format!("{sign}{}{rest}", "0".repeat(fill))
    } else {
        format!("{}{s}", " ".repeat(fill))
    }
}

fn bad_verb(verb: char, v: &Value) -> String {
    match v {
        Value::Nil => format!("%!{verb}(<nil>)"),
        _ => format!("%!{verb}({}={})", v.type_name(), sprint_value(v)),
    }
}

fn fmt_int(spec: &Spec, verb: char, i: i64) -> Option<String> {
    let neg = i < 0;
    let a = i.unsigned_abs();
    let mut body = match verb {
        'd' | 'v' => a.to_string(),
        'x' => format!("{a:x}"),
        'X' => format!("{a:X}"),
        'o' => format!("{a:o}"),
        'O' => format!("0o{a:o}"),
        'b' => format!("{a:b}"),
        'c' => {
            return Some(pad(
                spec,
                char::from_u32(i as u32).unwrap_or('\u{FFFD}').to_string(),
            ));
        }
        'q' => {
            let c = char::from_u32(i as u32).unwrap_or('\u{FFFD}');
            let q = go_quote(&c.to_string());
            let inner = &q[1..q.len() - 1];
            let inner = if inner == "'" {
                "\\'".to_string()
            } else {
                inner.replace("\\\"", "\"")
            };
            return Some(pad(spec, format!("'{inner}'")));
        }
        'U' => return Some(pad(spec, format!("U+{:04X}", i))),
        _ => return None,
    };
    if let Some(p) = spec.prec {
        while body.len() < p {
            body.insert(0, '0');
        }
    }
    if spec.sharp {
        match verb {
            'x' => body.insert_str(0, "0x"),
            'X' => body.insert_str(0, "0X"),
            'o' => body.insert(0, '0'),
            _ => {}
        }
    }
    let sign = if neg {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    };
    Some(pad(spec, format!("{sign}{body}")))
}

fn fmt_float(spec: &Spec, verb: char, f: f64) -> Option<String> {
    let mut s = match verb {
        'v' | 'g' => format_float_g(f, spec.prec),
        'G' => format_float_g(f, spec.prec).to_uppercase(),
        'f' | 'F' => format_float_f(f, spec.prec.unwrap_or(6)),
        'e' => format_float_e(f, Some(spec.prec.unwrap_or(6)), false),
        'E' => format_float_e(f, Some(spec.prec.unwrap_or(6)), true),
        _ => return None,
    };
    if spec.plus && !s.starts_with('-') {
        s.insert(0, '+');
    } else if spec.space && !s.starts_with('-') {
        s.insert(0, ' ');
    }
    Some(pad(spec, s))
}

fn fmt_str(spec: &Spec, verb: char, s: &str) -> Option<String> {
    let s = match spec.prec {
        Some(p) if matches!(verb, 's' | 'v' | 'q') => s.chars().take(p).collect::<String>(),
        _ => s.to_string(),
    };
    let body = match verb {
        's' | 'v' => s,
        'q' => {
            if spec.sharp && !s.contains('`') {
                format!("`{s}`")
            } else {
                go_quote(&s)
            }
        }
        'x' => s.bytes().map(|b| format!("{b:02x}")).collect(),
        'X' => s.bytes().map(|b| format!("{b:02X}")).collect(),
        _ => return None,
    };
    Some(pad(spec, body))
}

/// One operand formatted with one verb, as Go's `printArg` does.
fn fmt_arg(spec: &Spec, verb: char, v: &Value, depth: usize) -> String {
    if verb == 'T' {
        return pad(spec, v.type_name().to_string());
    }
    let r = match v {
        // A nil inside a list or map prints as <nil> whatever the verb (Go's printValue).
        Value::Nil if depth > 0 => Some(pad(spec, "<nil>".into())),
        Value::Nil => {
            if verb == 'v' {
                Some(pad(spec, "<nil>".into()))
            } else {
                None
            }
        }
        Value::Bool(b) => match verb {
            'v' | 't' => Some(pad(spec, b.to_string())),
            _ => None,
        },
        Value::Int(i) | Value::Int64(i) => fmt_int(spec, verb, *i),
        Value::Float(f) => fmt_float(spec, verb, *f),
        Value::String(s) => fmt_str(spec, verb, s),
        Value::Bytes(b) => match verb {
            's' | 'q' | 'x' | 'X' => fmt_str(spec, verb, &String::from_utf8_lossy(b)),
            _ => {
                let parts: Vec<String> = b
                    .iter()
                    .map(|x| fmt_arg(spec, verb, &Value::Int(*x as i64), depth + 1))
                    .collect();
                Some(format!("[{}]", parts.join(" ")))
            }
        },
        Value::List(l) if depth <= crate::MAX_DATA_DEPTH => {
            let parts: Vec<String> = l
                .iter()
                .map(|x| fmt_arg(spec, verb, x, depth + 1))
                .collect();
            Some(format!("[{}]", parts.join(" ")))
        }
        Value::Map(m) if depth <= crate::MAX_DATA_DEPTH => {
            let parts: Vec<String> = m
                .borrow()
                .iter()
                .map(|(k, x)| {
                    format!(
                        "{}:{}",
                        fmt_arg(spec, verb, &Value::str(k.as_str()), depth + 1),
                        fmt_arg(spec, verb, x, depth + 1)
                    )
                })
                .collect();
            Some(format!("map[{}]", parts.join(" ")))
        }
        Value::List(_) | Value::Map(_) => Some("...".into()),
        Value::Object(o) => match verb {
            'v' | 's' => Some(pad(spec, o.value_repr())),
            _ => None,
        },
    };
    r.unwrap_or_else(|| bad_verb(verb, v))
}

/// `fmt.Sprintf(format, args...)`.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut argi = 0usize;
    let chars: Vec<char> = format.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '%' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        let mut spec = Spec {
            minus: false,
            plus: false,
            sharp: false,
            space: false,
            zero: false,
            width: None,
            prec: None,
        };
        while i < chars.len() {
            match chars[i] {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = !spec.minus,
                _ => break,
            }
            i += 1;
        }
        // Width.
        if i < chars.len() && chars[i] == '*' {
            i += 1;
            match args.get(argi).and_then(Value::as_int) {
                Some(w) => {
                    if w < 0 {
                        spec.minus = true;
                    }
                    spec.width = Some(w.unsigned_abs().min(1 << 16) as usize);
                }
                None => out.push_str("%!(BADWIDTH)"),
            }
            argi += 1;
        } else {
            let mut w = None;
            while i < chars.len() && chars[i].is_ascii_digit() {
                w = Some(
                    w.unwrap_or(0usize)
                        .saturating_mul(10)
                        .saturating_add(chars[i] as usize - '0' as usize)
                        .min(1 << 16),
                );
                i += 1;
            }
            spec.width = w;
        }
        // Precision.
        if i < chars.len() && chars[i] == '.' {
            i += 1;
            if i < chars.len() && chars[i] == '*' {
                i += 1;
                match args.get(argi).and_then(Value::as_int) {
                    Some(p) if p >= 0 => spec.prec = Some((p as usize).min(1 << 16)),
                    _ => out.push_str("%!(BADPREC)"),
                }
                argi += 1;
            } else {
                let mut p = 0usize;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    p = p
                        .saturating_mul(10)
                        .saturating_add(chars[i] as usize - '0' as usize)
                        .min(1 << 16);
                    i += 1;
                }
                spec.prec = Some(p);
            }
        }
        if i >= chars.len() {
            out.push_str("%!(NOVERB)");
            break;
        }
        let verb = chars[i];
        i += 1;
        if verb == '%' {
            out.push('%');
            continue;
        }
        match args.get(argi) {
            None => out.push_str(&format!("%!{verb}(MISSING)")),
            Some(v) => out.push_str(&fmt_arg(&spec, verb, v, 0)),
        }
        argi += 1;
    }
    if argi < args.len() {
        out.push_str("%!(EXTRA ");
        let parts: Vec<String> = args[argi..]
            .iter()
            .map(|v| match v {
                Value::Nil => "<nil>".to_string(),
                v => format!("{}={}", v.type_name(), sprint_value(v)),
            })
            .collect();
        out.push_str(&parts.join(", "));
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_go() {
        assert_eq!(sprint_value(&Value::Float(1.0)), "1");
        assert_eq!(sprint_value(&Value::Float(1.5)), "1.5");
        assert_eq!(sprint_value(&Value::Float(1_000_000.0)), "1e+06");
        assert_eq!(sprint_value(&Value::Float(123456.0)), "123456");
        assert_eq!(sprint_value(&Value::Float(0.0001)), "0.0001");
        assert_eq!(sprint_value(&Value::Float(0.00001)), "1e-05");
        assert_eq!(sprint_value(&Value::Float(-2.5e21)), "-2.5e+21");
        assert_eq!(format_float_f(1.23456, 2), "1.23");
        assert_eq!(format_float_e(1234.5678, Some(2), false), "1.23e+03");
    }

    #[test]
    fn printf_verbs() {
        let a = [
            Value::str("x"),
            Value::Int(5),
            Value::Float(2.5),
            Value::Bool(true),
        ];
        assert_eq!(sprintf("%s-%d-%v-%t", &a), "x-5-2.5-true");
        assert_eq!(sprintf("%q", &[Value::str("a\"b")]), "\"a\\\"b\"");
        assert_eq!(sprintf("%d", &[Value::Float(1.0)]), "%!d(float64=1)");
        assert_eq!(sprintf("%s", &[Value::Nil]), "%!s(<nil>)");
        assert_eq!(sprintf("%v", &[Value::Nil]), "<nil>");
        // Found by the differential test (seed 1003): nested nils print as <nil> with any verb.
        assert_eq!(
            sprintf("%s", &[Value::list(vec![Value::Nil, Value::Float(1.0)])]),
            "[<nil> %!s(float64=1)]"
        );
        assert_eq!(
            sprintf(
                "%05d|%-4s|%x",
                &[Value::Int(42), Value::str("ab"), Value::Int(255)]
            ),
            "00042|ab  |ff"
        );
        assert_eq!(sprintf("%d %d", &[Value::Int(1)]), "1 %!d(MISSING)");
        assert_eq!(
            sprintf("%d", &[Value::Int(1), Value::str("z")]),
            "1%!(EXTRA string=z)"
        );
        assert_eq!(sprintf("%.2f", &[Value::Float(1.005)]), "1.00");
        assert_eq!(sprintf("%6.2f%%", &[Value::Float(1.23456)]), "  1.23%");
    }

    #[test]
    fn sprint_spacing() {
        assert_eq!(
            sprint(&[Value::Int(1), Value::Int(2), Value::str("a"), Value::Int(3)]),
            "1 2a3"
        );
        assert_eq!(sprintln(&[Value::str("a"), Value::str("b")]), "a b\n");
    }
}
