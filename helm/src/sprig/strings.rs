//! Sprig's string functions: case, trimming, substrings, splitting, quoting,
//! wrapping and indentation, with Go's and xstrings' rules.

use super::*;

pub(super) fn add(m: &mut FuncMap) {
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
}

/// A Go `map[string]string` (what `split` returns): a missing key reads as "".
pub(super) struct StringMap(BTreeMap<String, String>);

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

pub(super) fn string_map(m: BTreeMap<String, String>) -> Value {
    Value::Object(std::rc::Rc::new(StringMap(m)))
}

pub(super) fn is_go_space(c: char) -> bool {
    c.is_whitespace()
}

pub(super) fn byte_slice(st: &str, lo: usize, hi: usize) -> String {
    String::from_utf8_lossy(&st.as_bytes()[lo..hi]).into_owned()
}

pub(super) fn indent(n: i64, v: &str) -> Result<String, String> {
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
pub(super) fn go_split(st: &str, sep: &str) -> Vec<String> {
    if sep.is_empty() {
        return st.chars().map(|c| c.to_string()).collect();
    }
    st.split(sep).map(str::to_string).collect()
}

/// Go's deprecated `strings.Title`: upper-cases letters that start words.
pub(super) fn title(st: &str) -> String {
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

pub(super) fn untitle(st: &str) -> String {
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
pub(super) fn delimited_case(st: &str, delim: char) -> String {
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

pub(super) fn camelcase(st: &str) -> String {
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
pub(super) fn wrap(st: &str, width: i64, newline: &str) -> String {
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
