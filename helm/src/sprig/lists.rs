//! Sprig's list functions (`list`, `append`, `has`, `uniq`, `chunk`, ...),
//! with Sprig's errors for values that are not lists.

use super::*;

pub(super) fn add(m: &mut FuncMap) {
    use Ty::*;
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
}
