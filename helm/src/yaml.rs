//! YAML as Helm reads and writes it: YAML 1.1 scalars (goyaml.v2's `yes`/`on`,
//! octal, merge keys) converted through JSON like sigs.k8s.io/yaml (numbers
//! become float64, keys strings), and goyaml.v2's block output for `toYaml`.

use std::collections::BTreeMap;

use saphyr_parser_bw::{Event, Parser, ScalarStyle};

use crate::value::Value;

/// A YAML reading failure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("yaml: {0}")]
pub struct YamlError(pub String);

type Result<T, E = YamlError> = std::result::Result<T, E>;

/// Parses every document of a YAML stream.
pub fn parse_all(src: &str) -> Result<Vec<Value>> {
    parse_all_mode(src, false)
}

/// Parses one document keeping plain scalars as their text (nulls stay null):
/// how Chart.yaml's string fields read `version: 1.0` as "1.0".
pub fn parse_raw(src: &str) -> Result<Value> {
    Ok(parse_all_mode(src, true)?
        .into_iter()
        .next()
        .unwrap_or(Value::Nil))
}

fn parse_all_mode(src: &str, raw: bool) -> Result<Vec<Value>> {
    let mut p = Parser::new_from_str(src);
    let mut docs = Vec::new();
    let mut anchors: BTreeMap<usize, Value> = BTreeMap::new();
    while let Some(ev) = p.next_event() {
        let (ev, _span) = ev.map_err(|e| YamlError(e.to_string()))?;
        match ev {
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                let v = node(&mut p, &mut anchors, 0, raw)?;
                docs.push(v);
            }
            _ => return Err(YamlError("unexpected event".into())),
        }
    }
    Ok(docs)
}

/// Parses one document (an empty input is null).
pub fn parse(src: &str) -> Result<Value> {
    let docs = parse_all(src)?;
    Ok(docs.into_iter().next().unwrap_or(Value::Nil))
}

fn next<'a>(p: &mut Parser<'a, saphyr_parser_bw::StrInput<'a>>) -> Result<Event<'a>> {
    match p.next_event() {
        Some(Ok((e, _))) => Ok(e),
        Some(Err(e)) => Err(YamlError(e.to_string())),
        None => Err(YamlError("unexpected end of input".into())),
    }
}

fn node<'a>(
    p: &mut Parser<'a, saphyr_parser_bw::StrInput<'a>>,
    anchors: &mut BTreeMap<usize, Value>,
    depth: usize,
    raw: bool,
) -> Result<Value> {
    let ev = next(p)?;
    node_from(p, ev, anchors, depth, raw)
}

fn node_from<'a>(
    p: &mut Parser<'a, saphyr_parser_bw::StrInput<'a>>,
    ev: Event<'a>,
    anchors: &mut BTreeMap<usize, Value>,
    depth: usize,
    raw: bool,
) -> Result<Value> {
    if depth > crate::MAX_DATA_DEPTH {
        return Err(YamlError("document nested too deeply".into()));
    }
    match ev {
        Event::DocumentEnd | Event::StreamEnd => Ok(Value::Nil),
        Event::Alias(id) => anchors
            .get(&id)
            .cloned()
            .ok_or_else(|| YamlError("unknown anchor".into())),
        Event::Scalar(text, style, anchor, tag) => {
            let tag_suffix = tag.as_ref().map(|t| t.suffix.clone());
            let v = match tag_suffix.as_deref() {
                Some("str") => Value::str(text.as_ref()),
                Some("binary") => {
                    use base64::Engine as _;
                    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
                    match base64::engine::general_purpose::STANDARD.decode(clean) {
                        Ok(b) => Value::str(String::from_utf8_lossy(&b).into_owned()),
                        Err(_) => {
                            return Err(YamlError(
                                "!!binary value contains invalid base64 data".into(),
                            ));
                        }
                    }
                }
                _ if style == ScalarStyle::Plain && raw => match resolve_plain(&text) {
                    Value::Nil => Value::Nil,
                    Value::Bool(b) => Value::str(b.to_string()),
                    // sigs.k8s.io/yaml writes a number bound for a string field
                    // as an int, or as a float32 in %g form: 1.10 becomes "1.1".
                    Value::Float(_) => {
                        let plain: String = text.chars().filter(|c| *c != '_').collect();
                        match go_parse_int(&plain) {
                            Some(i) => Value::str(i.to_string()),
                            None => Value::str(float32_text(&plain)),
                        }
                    }
                    _ => Value::str(text.as_ref()),
                },
                _ if style == ScalarStyle::Plain => match resolve_plain(&text) {
                    // sigs.k8s.io/yaml goes through JSON, which has no infinities or NaN.
                    Value::Float(f) if !f.is_finite() => {
                        let shown = if f.is_nan() {
                            "NaN"
                        } else if f > 0.0 {
                            "+Inf"
                        } else {
                            "-Inf"
                        };
                        return Err(YamlError(format!(
                            "error converting YAML to JSON: json: unsupported value: {shown}"
                        )));
                    }
                    v => v,
                },
                _ => Value::str(text.as_ref()),
            };
            if anchor > 0 {
                anchors.insert(anchor, v.clone());
            }
            Ok(v)
        }
        Event::SequenceStart(anchor, _) => {
            let mut items = Vec::new();
            loop {
                let e = next(p)?;
                if matches!(e, Event::SequenceEnd) {
                    break;
                }
                items.push(node_from(p, e, anchors, depth + 1, raw)?);
            }
            let v = Value::list(items);
            if anchor > 0 {
                anchors.insert(anchor, v.clone());
            }
            Ok(v)
        }
        Event::MappingStart(anchor, _) => {
            let mut m = BTreeMap::new();
            let mut merged: Vec<Value> = Vec::new();
            loop {
                let e = next(p)?;
                if matches!(e, Event::MappingEnd) {
                    break;
                }
                let is_merge = matches!(&e, Event::Scalar(t, ScalarStyle::Plain, _, None) if t.as_ref() == "<<");
                let k = node_from(p, e, anchors, depth + 1, raw)?;
                let v = node(p, anchors, depth + 1, raw)?;
                if is_merge {
                    match v {
                        Value::List(l) => merged.extend(l.iter().cloned()),
                        v => merged.push(v),
                    }
                    continue;
                }
                m.insert(key_string(&k)?, v);
            }
            // Merged keys never override keys written in the mapping itself.
            for src in merged {
                match src {
                    Value::Map(sm) => {
                        for (k, v) in sm.borrow().iter() {
                            m.entry(k.clone()).or_insert_with(|| v.clone());
                        }
                    }
                    _ => {
                        return Err(YamlError(
                            "map merge requires map or sequence of maps as the value".into(),
                        ));
                    }
                }
            }
            let v = Value::map(m);
            if anchor > 0 {
                anchors.insert(anchor, v.clone());
            }
            Ok(v)
        }
        _ => Err(YamlError("unexpected event".into())),
    }
}

/// A mapping key as sigs.k8s.io/yaml turns it into a JSON object key.
fn key_string(k: &Value) -> Result<String> {
    Ok(match k {
        Value::String(s) => s.to_string(),
        Value::Float(f) => {
            if f.is_infinite() {
                if *f > 0.0 {
                    ".inf".into()
                } else {
                    "-.inf".into()
                }
            } else if f.is_nan() {
                ".nan".into()
            } else if f.fract() == 0.0 && f.abs() < 1e15 {
                format!("{}", *f as i64)
            } else {
                crate::gofmt::format_float_g(*f, None)
            }
        }
        Value::Bool(b) => b.to_string(),
        Value::Nil => return Err(YamlError("unsupported map key: null".into())),
        _ => return Err(YamlError("unsupported map key".into())),
    })
}

/// YAML 1.1 resolution of a plain scalar as goyaml.v2 does it; numbers become float64.
fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Nil,
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => {
            return Value::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False" | "FALSE" => {
            return Value::Bool(false);
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let first = s.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return Value::str(s);
    }
    let plain: String = s.chars().filter(|c| *c != '_').collect();
    if let Some(i) = go_parse_int(&plain) {
        return Value::Float(i as f64);
    }
    if let Some(rest) = plain.strip_prefix("0b") {
        if let Ok(i) = i64::from_str_radix(rest, 2) {
            return Value::Float(i as f64);
        }
    }
    if is_yaml_float(&plain)
        && let Ok(f) = plain.parse::<f64>()
    {
        return Value::Float(f);
    }
    Value::str(s)
}

/// `strconv.FormatFloat(f, 'g', -1, 32)` of a YAML float.
fn float32_text(plain: &str) -> String {
    let f = plain.parse::<f64>().unwrap_or(0.0) as f32;
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let shortest: f64 = format!("{f:e}").parse().unwrap_or(0.0);
    crate::gofmt::format_float_g(shortest, None)
}

/// `strconv.ParseInt(s, 0, 64)` (with ParseUint's range as a fallback).
fn go_parse_int(s: &str) -> Option<i128> {
    let (neg, u) = crate::value::parse_go_magnitude(s)?;
    let v = u as i128;
    let v = if neg { -v } else { v };
    if neg && v < i64::MIN as i128 {
        return None;
    }
    Some(v)
}

/// goyaml.v2's float syntax: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'-') | Some(b'+')) {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let st = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - st
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e') | Some(b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-') | Some(b'+')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// How goyaml.v2 (libyaml's analysis) writes a one-line string in block context.
#[derive(PartialEq)]
enum Style {
    Plain,
    Single,
    Double,
}

fn style_of(s: &str) -> Style {
    // goyaml.v2 double-quotes strings that would read back as another type.
    if s.is_empty()
        || !matches!(resolve_plain(s), Value::String(_))
        || is_base60_float(s)
        || is_timestamp(s)
    {
        return Style::Double;
    }
    let chars: Vec<char> = s.chars().collect();
    if chars.iter().any(|c| !yaml_printable(*c) || *c == '\n') {
        return Style::Double;
    }
    let mut indicators = s.starts_with("---") || s.starts_with("...");
    let blank_at = |i: usize| i >= chars.len() || chars[i] == ' ' || chars[i] == '\t';
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_ws = blank_at(i + 1);
        if i == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(c)
                || (c == '-' && followed_by_ws)
                || ((c == '?' || c == ':') && followed_by_ws)
            {
                indicators = true;
            }
        } else if (c == ':' && followed_by_ws) || (c == '#' && chars[i - 1] == ' ') {
            indicators = true;
        }
    }
    let edge_space = chars[0] == ' ' || chars[chars.len() - 1] == ' ';
    if indicators || edge_space {
        return Style::Single;
    }
    Style::Plain
}

/// goyaml.v2 resolves plain scalars in these layouts (after a four-digit
/// year and a dash) as timestamps, so it quotes such strings.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    [
        "2006-1-2T15:4:5.999999999Z07:00",
        "2006-1-2t15:4:5.999999999Z07:00",
        "2006-1-2 15:4:5.999999999",
        "2006-1-2",
    ]
    .iter()
    .any(|layout| crate::sprig::gotime::parse(layout, s).is_ok())
}

/// goyaml.v2 quotes "base 60" numbers like 1:20.
fn is_base60_float(s: &str) -> bool {
    let re = regex::Regex::new(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")
        .expect("static regex");
    re.is_match(s)
}

/// libyaml's notion of a printable character (others are escaped in double quotes).
fn yaml_printable(c: char) -> bool {
    matches!(c as u32, 0x0A | 0x20..=0x7E | 0x85 | 0xA0..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
        && c != '\u{feff}'
}

/// libyaml's double-quoted style with its escapes.
fn quote_double(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            '\u{85}' => out.push_str("\\N"),
            '\u{a0}' => out.push_str("\\_"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if yaml_printable(c) => out.push(c),
            c => {
                let n = c as u32;
                if n <= 0xff {
                    out.push_str(&format!("\\x{n:02X}"));
                } else if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04X}"));
                } else {
                    out.push_str(&format!("\\U{n:08X}"));
                }
            }
        }
    }
    out.push('"');
    out
}

fn scalar_inline(s: &str) -> String {
    match style_of(s) {
        Style::Plain => s.to_string(),
        Style::Single => format!("'{}'", s.replace('\'', "''")),
        Style::Double => quote_double(s),
    }
}

/// Whether a multi-line string can be written as a literal block.
fn literal_ok(s: &str) -> bool {
    if s.starts_with(' ') || s.starts_with('\n') {
        // Needs an indentation indicator; double quotes are simpler and exact.
        return false;
    }
    !s.chars().any(|c| {
        (c.is_control() && c != '\n')
            || c == '\u{feff}'
            || c == '\u{2028}'
            || c == '\u{2029}'
            || c == '\u{85}'
    }) && !s.split('\n').any(|l| l.ends_with(' '))
}

fn literal(s: &str, indent: usize) -> String {
    let trailing = s.len() - s.trim_end_matches('\n').len();
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let body = s.strip_suffix('\n').unwrap_or(s);
    let pad = " ".repeat(indent);
    let mut out = format!("|{chomp}\n");
    for l in body.split('\n') {
        if !l.is_empty() {
            out.push_str(&pad);
            out.push_str(l);
        }
        out.push('\n');
    }
    out
}

/// goyaml.v2's key order: letters before digits, digit runs compared as numbers.
pub fn yaml_key_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (ar, br): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let (al, bl) = (ar[i].is_alphabetic(), br[i].is_alphabetic());
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (mut an, mut bn) = (0i128, 0i128);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an
                .saturating_mul(10)
                .saturating_add((ar[ai] as u8 - b'0') as i128);
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn
                .saturating_mul(10)
                .saturating_add((br[bi] as u8 - b'0') as i128);
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

/// A number as it comes back from JSON into goyaml.v2: integral values as ints.
fn number_text(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            ".inf".into()
        } else {
            "-.inf".into()
        };
    }
    if f.fract() == 0.0 && f.abs() < 1e21 {
        if f.abs() <= i64::MAX as f64 {
            return format!("{}", f as i64);
        }
        return crate::gofmt::format_float_g(f, None);
    }
    crate::gofmt::format_float_g(f, None)
}

/// `toYaml`: sigs.k8s.io/yaml's `Marshal`, without the final newline trimmed.
pub fn to_yaml(v: &Value) -> Result<String, String> {
    let v = v.to_data();
    let mut out = String::new();
    match &v {
        Value::Map(m) if !m.borrow().is_empty() => emit_map(&mut out, &v, 0, 0)?,
        Value::List(l) if !l.is_empty() => emit_list(&mut out, &v, 0, 0)?,
        v => {
            // A top-level literal block is indented by libyaml's best indent, 2.
            let (inline, block) = scalar(v, 2)?;
            out.push_str(&fold(&inline, 0, 2));
            if block.is_none() {
                out.push('\n');
            } else if let Some(b) = block {
                out.push_str(&b);
            }
        }
    }
    Ok(out)
}

/// A scalar or empty collection: the text after "key: " and, for literal blocks,
/// the block body (the inline part is then the header).
fn scalar(v: &Value, indent: usize) -> Result<(String, Option<String>), String> {
    Ok(match v {
        Value::Nil => ("null".into(), None),
        Value::Bool(b) => (b.to_string(), None),
        Value::Int(i) | Value::Int64(i) => (i.to_string(), None),
        Value::Float(f) => {
            if !f.is_finite() {
                return Err(format!(
                    "json: unsupported value: {}",
                    crate::gofmt::sprint_value(v)
                ));
            }
            (number_text(*f), None)
        }
        Value::String(s) => {
            if s.contains('\n') && literal_ok(s) {
                let l = literal(s, indent);
                let (head, body) = l.split_once('\n').unwrap_or((&l, ""));
                (head.to_string(), Some(format!("\n{body}")))
            } else if s.contains('\n') {
                (quote_double(s), None)
            } else {
                (scalar_inline(s), None)
            }
        }
        Value::Bytes(b) => {
            use base64::Engine as _;
            (base64::engine::general_purpose::STANDARD.encode(b), None)
        }
        Value::List(_) => ("[]".into(), None),
        Value::Map(_) => ("{}".into(), None),
        Value::Object(o) => return scalar(&o.to_data(), indent),
    })
}

fn sorted_entries(m: &Value) -> Vec<(String, Value)> {
    let mut e: Vec<(String, Value)> = match m {
        Value::Map(m) => m
            .borrow()
            .iter()
            .map(|(k, v)| (k.clone(), v.to_data()))
            .collect(),
        _ => Vec::new(),
    };
    e.sort_by(|a, b| yaml_key_cmp(&a.0, &b.0));
    e
}

fn is_nonempty_collection(v: &Value) -> bool {
    match v {
        Value::Map(m) => !m.borrow().is_empty(),
        Value::List(l) => !l.is_empty(),
        _ => false,
    }
}

fn emit_map(out: &mut String, m: &Value, indent: usize, depth: usize) -> Result<(), String> {
    if depth > crate::MAX_DATA_DEPTH {
        return Err("data nested too deeply".into());
    }
    let pad = " ".repeat(indent);
    for (i, (k, v)) in sorted_entries(m).into_iter().enumerate() {
        if i > 0 || !out.ends_with("- ") {
            out.push_str(&pad);
        }
        if out.ends_with("- ") && i == 0 {
            // First key of a list item sits on the dash's line.
        }
        out.push_str(&scalar_inline(&k));
        out.push(':');
        match &v {
            Value::Map(_) if is_nonempty_collection(&v) => {
                out.push('\n');
                emit_map(out, &v, indent + 2, depth + 1)?;
            }
            Value::List(_) if is_nonempty_collection(&v) => {
                out.push('\n');
                emit_list(out, &v, indent, depth + 1)?;
            }
            v => {
                let (inline, block) = scalar(v, indent + 2)?;
                out.push(' ');
                let col = column(out);
                out.push_str(&fold(&inline, col, indent + 2));
                match block {
                    Some(b) => out.push_str(&b),
                    None => out.push('\n'),
                }
            }
        }
    }
    Ok(())
}

fn emit_list(out: &mut String, l: &Value, indent: usize, depth: usize) -> Result<(), String> {
    if depth > crate::MAX_DATA_DEPTH {
        return Err("data nested too deeply".into());
    }
    let Value::List(items) = l else { return Ok(()) };
    let pad = " ".repeat(indent);
    for v in items.iter() {
        let v = v.to_data();
        if !out.ends_with("- ") || out.is_empty() {
            out.push_str(&pad);
        }
        out.push_str("- ");
        match &v {
            Value::Map(_) if is_nonempty_collection(&v) => {
                emit_map(out, &v, indent + 2, depth + 1)?
            }
            Value::List(_) if is_nonempty_collection(&v) => {
                emit_list(out, &v, indent + 2, depth + 1)?
            }
            v => {
                let (inline, block) = scalar(v, indent + 2)?;
                let col = column(out);
                out.push_str(&fold(&inline, col, indent + 2));
                match block {
                    Some(b) => out.push_str(&b),
                    None => out.push('\n'),
                }
            }
        }
    }
    Ok(())
}

/// Characters written on the current line.
fn column(out: &str) -> usize {
    out.rsplit('\n').next().unwrap_or("").chars().count()
}

/// libyaml's line folding at its best width of 80: a space past column 80 (not
/// doubled, not at the ends of quoted text) becomes a line break and indentation.
fn fold(inline: &str, start_col: usize, indent: usize) -> String {
    if !inline.contains(' ') || start_col + inline.chars().count() <= BEST_WIDTH + 1 {
        return inline.to_string();
    }
    let chars: Vec<char> = inline.chars().collect();
    let quoted = matches!(chars[0], '\'' | '"');
    let (first, last) = if quoted {
        (1, chars.len().saturating_sub(2))
    } else {
        (0, chars.len() - 1)
    };
    let mut out = String::with_capacity(inline.len() + 16);
    let mut col = start_col;
    let mut prev_space = false;
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let next_space = chars.get(i + 1) == Some(&' ');
            let at_edge = quoted && (i == first || i == last);
            if !prev_space && col > BEST_WIDTH && !next_space && !at_edge {
                out.push('\n');
                out.push_str(&" ".repeat(indent));
                col = indent;
                prev_space = true;
                continue;
            }
            prev_space = true;
        } else {
            prev_space = false;
        }
        out.push(c);
        col += 1;
    }
    out
}

/// libyaml's preferred line width.
const BEST_WIDTH: usize = 80;

/// Canonical JSON of a parsed document, for comparing renders.
pub fn to_canonical_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Nil => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) | Value::Int64(i) => serde_json::json!(*i as f64),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::String(format!("{f}"))),
        Value::String(s) => serde_json::Value::String(s.to_string()),
        Value::Bytes(b) => serde_json::Value::String(String::from_utf8_lossy(b).into_owned()),
        Value::List(l) => serde_json::Value::Array(l.iter().map(to_canonical_json).collect()),
        Value::Map(m) => serde_json::Value::Object(
            m.borrow()
                .iter()
                .map(|(k, v)| (k.clone(), to_canonical_json(v)))
                .collect(),
        ),
        Value::Object(o) => to_canonical_json(&o.to_data()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml11_scalars_and_json_numbers() {
        let v = parse("a: yes\nb: 0x10\nc: 1.5\nd: '1'\ne: ~\nf: 2024-01-01\ng: 010\n").unwrap();
        let j = to_canonical_json(&v);
        assert_eq!(
            j,
            serde_json::json!({"a": true, "b": 16.0, "c": 1.5, "d": "1", "e": null, "f": "2024-01-01", "g": 8.0})
        );
    }

    #[test]
    fn infinities_are_rejected_like_json() {
        assert!(
            parse("a: .inf")
                .unwrap_err()
                .to_string()
                .contains("unsupported value: +Inf")
        );
        assert!(parse_raw("a: .inf").is_ok());
    }

    #[test]
    fn anchors_and_merge_keys() {
        let v = parse("base: &b {x: 1, z: 2}\nd:\n  <<: *b\n  z: 3\n").unwrap();
        assert_eq!(
            to_canonical_json(&v)["d"],
            serde_json::json!({"x": 1.0, "z": 3.0})
        );
    }

    #[test]
    fn to_yaml_round_trips() {
        let src = serde_json::json!({"b": [1, {"x": "y", "z": [true]}], "a": "multi\nline\n", "c": "yes", "d": "", "e": 1.5, "f": {}, "g": "a: b", "n": null, "k10": 1, "k9": 2});
        let v = Value::from_json(&src);
        let text = to_yaml(&v).unwrap();
        let back = parse(&text).unwrap();
        assert_eq!(to_canonical_json(&back), to_canonical_json(&v), "{text}");
        assert!(
            text.starts_with(
                "a: |\n  multi\n  line\nb:\n- 1\n- x: \"y\"\n  z:\n  - true\nc: \"yes\"\nd: \"\"\n"
            ),
            "{text}"
        );
        assert!(text.contains("k9: 2\nk10: 1\n"), "{text}");
    }
}
