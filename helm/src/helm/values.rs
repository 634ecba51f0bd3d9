//! Helm's values: merging values files, `--set` parsing (strvals), coalescing
//! chart defaults with user values (nulls delete defaults), subchart scoping
//! with `global`, dependency conditions/tags and import-values.

use std::collections::BTreeMap;

use super::Error;
use super::chart::Chart;
use crate::value::Value;

fn table(v: &Value) -> Option<BTreeMap<String, Value>> {
    match v {
        Value::Map(m) => Some(m.borrow().clone()),
        _ => None,
    }
}

/// `values.MergeValues`'s merge of one values file over another: maps merge
/// recursively, anything else replaces. Works on deep copies.
pub fn merge_maps(a: &Value, b: &Value) -> Value {
    let mut out = table(a).unwrap_or_default();
    for (k, v) in table(b).unwrap_or_default() {
        if let (Value::Map(_), Some(prev @ Value::Map(_))) = (&v, out.get(&k)) {
            let merged = merge_maps(prev, &v);
            out.insert(k, merged);
            continue;
        }
        out.insert(k, v.deep_copy());
    }
    Value::map(out)
}

/// `coalesceTablesFullKey`: fills `dst` from `src` where `dst` has nothing; with
/// `merge` false a null in `dst` deletes the key. Returns the new `dst`.
fn coalesce_tables(dst: &Value, src: &Value, merge: bool, depth: usize) -> Value {
    let Some(mut d) = table(dst) else {
        return dst.clone();
    };
    let Some(s) = table(src) else {
        return dst.clone();
    };
    if depth > crate::MAX_DATA_DEPTH {
        return dst.clone();
    }
    for (k, sv) in s {
        match d.get(&k).cloned() {
            Some(Value::Nil) if !merge => {
                d.remove(&k);
            }
            None if !merge && sv.is_nil() => {}
            None => {
                d.insert(
                    k,
                    if merge {
                        sv.deep_copy()
                    } else {
                        strip_nulls(&sv)
                    },
                );
            }
            Some(dv @ Value::Map(_)) => {
                if let Value::Map(_) = sv {
                    d.insert(k, coalesce_tables(&dv, &sv, merge, depth + 1));
                }
            }
            Some(_) => {}
        }
    }
    Value::map(d)
}

/// A deep copy of chart defaults without their null entries: Helm drops a
/// default that is null, at any depth of a table (lists are left alone).
fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Map(m) => Value::map(
            m.borrow()
                .iter()
                .filter(|(_, x)| !x.is_nil())
                .map(|(k, x)| (k.clone(), strip_nulls(x)))
                .collect(),
        ),
        v => v.deep_copy(),
    }
}

/// `coalesceValues`: chart defaults under user values.
fn coalesce_values(chart: &Chart, v: &mut BTreeMap<String, Value>, merge: bool) {
    for (k, cv) in table(&chart.values).unwrap_or_default() {
        match v.get(&k).cloned() {
            Some(Value::Nil) if !merge => {
                v.remove(&k);
            }
            Some(dest @ Value::Map(_)) => {
                if let Value::Map(_) = cv {
                    v.insert(k, coalesce_tables(&dest, &cv, merge, 0));
                }
            }
            Some(_) => {}
            None if !merge && cv.is_nil() => {}
            None => {
                v.insert(
                    k,
                    if merge {
                        cv.deep_copy()
                    } else {
                        strip_nulls(&cv)
                    },
                );
            }
        }
    }
}

/// `coalesceGlobals`: the parent's globals win over the subchart's.
fn coalesce_globals(dest: &mut BTreeMap<String, Value>, src: &BTreeMap<String, Value>) {
    let mut dg = match dest.get("global") {
        None => BTreeMap::new(),
        Some(g) => match table(g) {
            Some(t) => t,
            None => return,
        },
    };
    let sg = match src.get("global") {
        None => BTreeMap::new(),
        Some(g) => match table(g) {
            Some(t) => t,
            None => return,
        },
    };
    for (k, v) in sg {
        if let Value::Map(_) = v {
            let vv = v.deep_copy();
            match dg.get(&k) {
                None => {
                    dg.insert(k, vv);
                }
                Some(dv @ Value::Map(_)) => {
                    let merged = coalesce_tables(&vv, dv, true, 0);
                    dg.insert(k, merged);
                }
                Some(_) => {}
            }
        } else if matches!(dg.get(&k), Some(Value::Map(_))) {
            // A table is not replaced by a scalar.
        } else {
            dg.insert(k, v);
        }
    }
    dest.insert("global".into(), Value::map(dg));
}

/// `coalesce`: a chart's values, then each subchart's section with globals.
fn coalesce(chart: &Chart, dest: &mut BTreeMap<String, Value>, merge: bool) -> Result<(), Error> {
    coalesce_values(chart, dest, merge);
    for sub in &chart.subcharts {
        let mut dv = match dest.get(&sub.name) {
            None => BTreeMap::new(),
            Some(v) => match table(v) {
                Some(t) => t,
                None => {
                    return Err(Error::Values(format!(
                        "type mismatch on {}: %!t({}={})",
                        sub.name,
                        v.type_name(),
                        crate::gofmt::sprint_value(v)
                    )));
                }
            },
        };
        coalesce_globals(&mut dv, dest);
        coalesce(sub, &mut dv, merge)?;
        dest.insert(sub.name.clone(), Value::map(dv));
    }
    Ok(())
}

/// `CoalesceValues(chart, vals)`: the values templates see.
pub fn coalesce_values_root(chart: &Chart, vals: &Value) -> Result<Value, Error> {
    let mut dest = table(&vals.deep_copy()).unwrap_or_default();
    coalesce(chart, &mut dest, false)?;
    Ok(Value::map(dest))
}

fn merge_values_root(chart: &Chart, vals: &Value) -> Result<Value, Error> {
    let mut dest = table(&vals.deep_copy()).unwrap_or_default();
    coalesce(chart, &mut dest, true)?;
    Ok(Value::map(dest))
}

/// `Values.PathValue`-style lookup of a dotted path; `None` when absent.
fn path_value(v: &Value, path: &str) -> Option<Value> {
    let mut cur = v.clone();
    for part in path.split('.') {
        cur = table(&cur)?.get(part)?.clone();
    }
    Some(cur)
}

fn version_ok(constraint: &str, version: &str) -> bool {
    crate::semver_compat::compare(constraint, version).unwrap_or(false)
}

/// `processDependencyEnabled`: drops subcharts disabled by conditions or tags,
/// and renames aliased ones. `cvals` are the root's coalesced values.
fn process_enabled(
    chart: &mut Chart,
    vals: &Value,
    path: &str,
    top: Option<&Value>,
) -> Result<(), Error> {
    if chart.dependencies.is_empty() {
        return Ok(());
    }
    let existing = std::mem::take(&mut chart.subcharts);
    let mut deps: Vec<Chart> = Vec::new();
    'outer: for e in &existing {
        for req in &chart.dependencies {
            if e.name == req.name && version_ok(&req.version, &e.version) {
                continue 'outer;
            }
        }
        deps.push(e.clone());
    }
    for req in chart.dependencies.iter_mut() {
        if let Some(c) = existing
            .iter()
            .find(|c| c.name == req.name && version_ok(&req.version, &c.version))
        {
            let mut c = c.clone();
            if !req.alias.is_empty() {
                c.name = req.alias.clone();
                rename_full_path(&mut c, &chart.full_path);
            }
            deps.push(c);
        }
        if !req.alias.is_empty() {
            req.name = req.alias.clone();
        }
        req.enabled = true;
    }
    chart.subcharts = deps;
    let cvals = match top {
        Some(t) => t.clone(),
        None => coalesce_values_root(chart, vals)?,
    };
    // Tags: the root's `tags` table.
    if let Some(tags) = path_value(&cvals, "tags").and_then(|t| table(&t)) {
        for req in chart.dependencies.iter_mut() {
            let (mut has_true, mut has_false) = (false, false);
            for t in &req.tags {
                match tags.get(t) {
                    Some(Value::Bool(true)) => has_true = true,
                    Some(Value::Bool(false)) => has_false = true,
                    _ => {}
                }
            }
            if !has_true && has_false {
                req.enabled = false;
            } else if has_true || !has_false {
                req.enabled = true;
            }
        }
    }
    // Conditions: the first path that holds a bool decides.
    for req in chart.dependencies.iter_mut() {
        for c in req.condition.trim().split(',') {
            let c = c.trim();
            if c.is_empty() {
                continue;
            }
            if let Some(Value::Bool(b)) = path_value(&cvals, &format!("{path}{c}")) {
                req.enabled = b;
                break;
            }
        }
    }
    let disabled: Vec<String> = chart
        .dependencies
        .iter()
        .filter(|r| !r.enabled)
        .map(|r| r.name.clone())
        .collect();
    chart.subcharts.retain(|c| !disabled.contains(&c.name));
    chart.dependencies.retain(|r| !disabled.contains(&r.name));
    for sub in chart.subcharts.iter_mut() {
        let subpath = format!("{path}{}.", sub.name);
        process_enabled(sub, vals, &subpath, Some(&cvals))?;
    }
    Ok(())
}

fn rename_full_path(c: &mut Chart, parent: &str) {
    c.full_path = format!("{parent}/charts/{}", c.name);
    let fp = c.full_path.clone();
    for s in c.subcharts.iter_mut() {
        rename_full_path(s, &fp);
    }
}

/// `pathToMap`: nests `data` under a dotted path ("." is the top).
fn path_to_map(path: &str, data: Value) -> Value {
    if path == "." || path.is_empty() {
        return data;
    }
    let mut v = data;
    for part in path
        .trim_start_matches('.')
        .split('.')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        let mut m = BTreeMap::new();
        m.insert(part.to_string(), v);
        v = Value::map(m);
    }
    v
}

/// `processImportValues` (with merge, as `helm template` uses it), bottom-up.
fn process_imports(chart: &mut Chart) -> Result<(), Error> {
    for sub in chart.subcharts.iter_mut() {
        process_imports(sub)?;
    }
    if chart.dependencies.is_empty() {
        return Ok(());
    }
    let cvals = merge_values_root(chart, &Value::empty_map())?;
    let mut b = Value::empty_map();
    let mut any = false;
    for r in &chart.dependencies {
        for iv in &r.import_values {
            match iv {
                Value::Map(m) => {
                    let m = m.borrow();
                    let child = m
                        .get("child")
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    let parent = m
                        .get("parent")
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    if let Some(t @ Value::Map(_)) =
                        path_value(&cvals, &format!("{}.{child}", r.name))
                    {
                        b = merge_tables(&b, &path_to_map(&parent, t.deep_copy()));
                        any = true;
                    }
                }
                Value::String(s) => {
                    if let Some(t @ Value::Map(_)) =
                        path_value(&cvals, &format!("{}.exports.{s}", r.name))
                    {
                        b = merge_tables(&b, &t.deep_copy());
                        any = true;
                    }
                }
                _ => {}
            }
        }
    }
    if any
        || !chart
            .dependencies
            .iter()
            .all(|d| d.import_values.is_empty())
    {
        chart.values = merge_tables(&cvals, &b);
    }
    Ok(())
}

/// `MergeTables(dst, src)`: `dst` wins; src fills gaps, recursively.
fn merge_tables(dst: &Value, src: &Value) -> Value {
    coalesce_tables(dst, src, true, 0)
}

/// `ProcessDependenciesWithMerge`.
pub fn process_dependencies(chart: &mut Chart, vals: &Value) -> Result<(), Error> {
    process_enabled(chart, vals, "", None)?;
    process_imports(chart)
}

/// Helm's strvals parser for `--set a.b=c,d[0]=e`: ints become int64, `true`/`false`/`null` typed.
pub fn parse_set(s: &str, base: &Value) -> Result<Value, Error> {
    let mut out = base.deep_copy();
    if !matches!(out, Value::Map(_)) {
        out = Value::empty_map();
    }
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        // Key path up to '='.
        let mut path: Vec<PathPart> = Vec::new();
        let mut cur = String::new();
        loop {
            if i >= chars.len() {
                if cur.is_empty() && path.is_empty() {
                    return Ok(out);
                }
                return Err(Error::Values(format!(
                    "key {:?} has no value",
                    join_path(&path, &cur)
                )));
            }
            let c = chars[i];
            i += 1;
            match c {
                '\\' => {
                    if i < chars.len() {
                        cur.push(chars[i]);
                        i += 1;
                    }
                }
                '.' => {
                    path.push(PathPart::Key(std::mem::take(&mut cur)));
                }
                '[' => {
                    if !cur.is_empty() {
                        path.push(PathPart::Key(std::mem::take(&mut cur)));
                    }
                    let mut n = String::new();
                    while i < chars.len() && chars[i] != ']' {
                        n.push(chars[i]);
                        i += 1;
                    }
                    i += 1;
                    let idx: usize = n
                        .parse()
                        .map_err(|_| Error::Values(format!("failed to parse index: {n}")))?;
                    if idx > 65536 {
                        return Err(Error::Values(format!(
                            "index of {idx} is greater than maximum supported index 65536"
                        )));
                    }
                    path.push(PathPart::Index(idx));
                    if i < chars.len() && chars[i] == '.' {
                        i += 1;
                    }
                }
                '=' => {
                    if !cur.is_empty() {
                        path.push(PathPart::Key(std::mem::take(&mut cur)));
                    }
                    break;
                }
                ',' => {
                    return Err(Error::Values(format!(
                        "key {:?} has no value (cannot end with ,)",
                        join_path(&path, &cur)
                    )));
                }
                c => cur.push(c),
            }
        }
        // Value up to an unescaped ',' (or a {list}).
        let value = if i < chars.len() && chars[i] == '{' {
            i += 1;
            let mut items = Vec::new();
            let mut cur = String::new();
            while i < chars.len() && chars[i] != '}' {
                match chars[i] {
                    '\\' if i + 1 < chars.len() => {
                        cur.push(chars[i + 1]);
                        i += 1;
                    }
                    ',' => items.push(typed(&std::mem::take(&mut cur))),
                    c => cur.push(c),
                }
                i += 1;
            }
            if i >= chars.len() {
                return Err(Error::Values("list must terminate with '}'".into()));
            }
            i += 1;
            if !cur.is_empty() || !items.is_empty() {
                items.push(typed(&cur));
            }
            if i < chars.len() && chars[i] == ',' {
                i += 1;
            }
            Value::list(items)
        } else {
            let mut v = String::new();
            while i < chars.len() && chars[i] != ',' {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    v.push(chars[i + 1]);
                    i += 2;
                    continue;
                }
                v.push(chars[i]);
                i += 1;
            }
            i += 1;
            typed(&v)
        };
        set_path(&out, &path, value)?;
    }
    Ok(out)
}

enum PathPart {
    Key(String),
    Index(usize),
}

fn join_path(p: &[PathPart], last: &str) -> String {
    let mut s: Vec<String> = p
        .iter()
        .map(|x| match x {
            PathPart::Key(k) => k.clone(),
            PathPart::Index(i) => format!("[{i}]"),
        })
        .collect();
    if !last.is_empty() {
        s.push(last.to_string());
    }
    s.join(".")
}

/// strvals' `typedVal`.
fn typed(v: &str) -> Value {
    if v.eq_ignore_ascii_case("true") {
        return Value::Bool(true);
    }
    if v.eq_ignore_ascii_case("false") {
        return Value::Bool(false);
    }
    if v.eq_ignore_ascii_case("null") {
        return Value::Nil;
    }
    if v == "0" {
        return Value::Int64(0);
    }
    if !v.is_empty() && !v.starts_with('0') && !v.starts_with('+') {
        if let Ok(i) = v.parse::<i64>() {
            return Value::Int64(i);
        }
    }
    Value::str(v)
}

fn set_path(root: &Value, path: &[PathPart], value: Value) -> Result<(), Error> {
    let Some((first, rest)) = path.split_first() else {
        return Err(Error::Values("key has no name".into()));
    };
    match (first, root) {
        (PathPart::Key(k), Value::Map(m)) => {
            if rest.is_empty() {
                m.borrow_mut().insert(k.clone(), value);
                return Ok(());
            }
            let child = m.borrow().get(k).cloned();
            let child = match (child, &rest[0]) {
                (Some(c @ Value::Map(_)), PathPart::Key(_)) => c,
                (Some(Value::List(l)), PathPart::Index(_)) => Value::List(l),
                (_, PathPart::Key(_)) => Value::empty_map(),
                (_, PathPart::Index(_)) => Value::list(Vec::new()),
            };
            let child = set_in(child, rest, value)?;
            m.borrow_mut().insert(k.clone(), child);
            Ok(())
        }
        _ => Err(Error::Values("invalid key".into())),
    }
}

fn set_in(node: Value, path: &[PathPart], value: Value) -> Result<Value, Error> {
    match (&path[0], node) {
        (PathPart::Key(_), m @ Value::Map(_)) => {
            set_path(&m, path, value)?;
            Ok(m)
        }
        (PathPart::Index(i), Value::List(l)) => {
            let mut l = l.to_vec();
            while l.len() <= *i {
                l.push(Value::Nil);
            }
            if path.len() == 1 {
                l[*i] = value;
            } else {
                let child = match (&l[*i], &path[1]) {
                    (c @ Value::Map(_), PathPart::Key(_)) => c.clone(),
                    (Value::List(x), PathPart::Index(_)) => Value::List(x.clone()),
                    (_, PathPart::Key(_)) => Value::empty_map(),
                    (_, PathPart::Index(_)) => Value::list(Vec::new()),
                };
                l[*i] = set_in(child, &path[1..], value)?;
            }
            Ok(Value::list(l))
        }
        _ => Err(Error::Values("invalid key".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::to_canonical_json;

    fn set(s: &str) -> serde_json::Value {
        let v = parse_set(s, &Value::empty_map()).unwrap();
        crate::json::to_json(&v, false, None)
            .map(|t| serde_json::from_str(&t).unwrap())
            .unwrap()
    }

    #[test]
    fn strvals_like_helm() {
        assert_eq!(
            set("a.b=c,d=1,e=true,f=null,g=0,h=01"),
            serde_json::json!({"a": {"b": "c"}, "d": 1, "e": true, "f": null, "g": 0, "h": "01"})
        );
        assert_eq!(set("a[1]=x"), serde_json::json!({"a": [null, "x"]}));
        assert_eq!(set("a\\.b=c"), serde_json::json!({"a.b": "c"}));
        assert_eq!(set("l={x,y}"), serde_json::json!({"l": ["x", "y"]}));
        assert_eq!(set("a=x\\,y"), serde_json::json!({"a": "x,y"}));
        assert_eq!(set("a[0].b=1"), serde_json::json!({"a": [{"b": 1}]}));
        assert!(parse_set("a", &Value::empty_map()).is_err());
        assert!(parse_set("a[99999999]=1", &Value::empty_map()).is_err());
        let _ = to_canonical_json(&Value::Nil);
    }
}
