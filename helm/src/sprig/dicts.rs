//! Sprig's dict functions (`dict`, `get`, `set`, `merge`, `dig`, ...) and
//! mergo's merge rules.

use super::*;

pub(super) fn add(m: &mut FuncMap) {
    use Ty::*;
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
}

/// mergo's `Merge` (and with `overwrite`, `WithOverride`) for maps: `dst` is changed in place.
pub(super) fn merge_into(dst: &Value, src: &Value, overwrite: bool, depth: usize) {
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
