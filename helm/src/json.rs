//! JSON as Go's encoding/json writes and reads it for template data: HTML-safe
//! escaping, Go's float formatting, sorted keys, numbers read as float64.

use std::fmt::Write as _;

use crate::value::Value;

/// `json.Marshal` (or `MarshalIndent` with `indent`); `escape_html` as Go's default encoder.
pub fn to_json(v: &Value, escape_html: bool, indent: Option<&str>) -> Result<String, String> {
    let mut out = String::new();
    write(&mut out, &v.to_data(), escape_html, indent, 0)?;
    Ok(out)
}

fn newline(out: &mut String, indent: Option<&str>, depth: usize) {
    if let Some(ind) = indent {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(ind);
        }
    }
}

fn write(
    out: &mut String,
    v: &Value,
    esc: bool,
    indent: Option<&str>,
    depth: usize,
) -> Result<(), String> {
    if depth > crate::MAX_DATA_DEPTH {
        return Err("json: unsupported value: encountered a cycle".into());
    }
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) | Value::Int64(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&go_json_float(*f)?),
        Value::String(s) => write_str(out, s, esc),
        Value::Bytes(b) => {
            use base64::Engine as _;
            write_str(
                out,
                &base64::engine::general_purpose::STANDARD.encode(b),
                esc,
            )
        }
        Value::List(l) => {
            if l.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, x) in l.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent, depth + 1);
                write(out, &x.to_data(), esc, indent, depth + 1)?;
            }
            newline(out, indent, depth);
            out.push(']');
        }
        Value::Map(m) => {
            let m = m.borrow();
            if m.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent, depth + 1);
                write_str(out, k, esc);
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                write(out, &x.to_data(), esc, indent, depth + 1)?;
            }
            newline(out, indent, depth);
            out.push('}');
        }
        Value::Object(o) => write(out, &o.to_data(), esc, indent, depth + 1)?,
    }
    Ok(())
}

/// Go's encoding/json float64 text.
pub fn go_json_float(f: f64) -> Result<String, String> {
    if !f.is_finite() {
        return Err(format!(
            "json: unsupported value: {}",
            crate::gofmt::sprint_value(&Value::Float(f))
        ));
    }
    let a = f.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let s = crate::gofmt::format_float_e(f, None, false);
        // Go writes e-07 as e-7.
        let s = match s.split_once('e') {
            Some((m, e)) => {
                let (sign, digits) = e.split_at(1);
                format!("{m}e{sign}{}", digits.trim_start_matches('0').max("0"))
            }
            None => s,
        };
        return Ok(s);
    }
    Ok(format!("{f}"))
}

fn write_str(out: &mut String, s: &str, esc: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' if esc => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `json.Unmarshal` into `interface{}`: numbers become float64.
pub fn from_json(s: &str) -> Result<Value, String> {
    let j: serde_json::Value = serde_json::from_str(s).map_err(|e| e.to_string())?;
    Ok(Value::from_json(&j))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_json_text() {
        let v = Value::from_json(
            &serde_json::json!({"b": [1, 2.5, "<x>"], "a": null, "e": 1e-7, "big": 1e21}),
        );
        assert_eq!(
            to_json(&v, true, None).unwrap(),
            r#"{"a":null,"b":[1,2.5,"\u003cx\u003e"],"big":1e+21,"e":1e-7}"#
        );
        assert_eq!(
            to_json(&Value::list(vec![]), true, Some("  ")).unwrap(),
            "[]"
        );
        let v = Value::from_json(&serde_json::json!({"a": [1]}));
        assert_eq!(
            to_json(&v, true, Some("  ")).unwrap(),
            "{\n  \"a\": [\n    1\n  ]\n}"
        );
    }
}
