//! `values.schema.json` validation: the JSON Schema keywords charts use
//! (type, required, properties, additionalProperties, patternProperties, items,
//! enum, const, numeric and length bounds, pattern, allOf/anyOf/oneOf/not, local
//! `$ref`), checked on the coalesced values of each chart as Helm does.

use serde_json::Value as J;

/// Every violation of `schema` by `value`, as "path: message" lines.
pub fn validate(schema: &J, value: &J) -> Vec<String> {
    let mut out = Vec::new();
    check(schema, schema, value, "", &mut out, 0);
    out
}

fn type_ok(t: &str, v: &J) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        "integer" => v.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => true,
    }
}

fn json_type(v: &J) -> &'static str {
    match v {
        J::Null => "null",
        J::Bool(_) => "boolean",
        J::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => "integer",
        J::Number(_) => "number",
        J::String(_) => "string",
        J::Array(_) => "array",
        J::Object(_) => "object",
    }
}

fn at(path: &str) -> String {
    if path.is_empty() {
        "(root)".to_string()
    } else {
        path.to_string()
    }
}

fn resolve<'a>(root: &'a J, r: &str) -> Option<&'a J> {
    let p = r.strip_prefix('#')?;
    if p.is_empty() {
        return Some(root);
    }
    root.pointer(p)
}

fn check(root: &J, schema: &J, v: &J, path: &str, out: &mut Vec<String>, depth: usize) {
    if depth > 64 {
        out.push(format!("{}: schema nested too deeply", at(path)));
        return;
    }
    let Some(s) = schema.as_object() else {
        if schema == &J::Bool(false) {
            out.push(format!("{}: not allowed", at(path)));
        }
        return;
    };
    if let Some(r) = s.get("$ref").and_then(J::as_str) {
        match resolve(root, r) {
            Some(target) => check(root, target, v, path, out, depth + 1),
            None => out.push(format!("{}: cannot resolve $ref {r}", at(path))),
        }
    }
    if let Some(t) = s.get("type") {
        let ok = match t {
            J::String(t) => type_ok(t, v),
            J::Array(ts) => ts.iter().filter_map(J::as_str).any(|t| type_ok(t, v)),
            _ => true,
        };
        if !ok {
            let want = match t {
                J::String(t) => t.clone(),
                J::Array(ts) => ts
                    .iter()
                    .filter_map(J::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => String::new(),
            };
            out.push(format!(
                "{}: Invalid type. Expected: {want}, given: {}",
                at(path),
                json_type(v)
            ));
            return;
        }
    }
    if let Some(e) = s.get("enum").and_then(J::as_array) {
        if !e.iter().any(|x| x == v) {
            out.push(format!(
                "{}: value must be one of {}",
                at(path),
                J::Array(e.clone())
            ));
        }
    }
    if let Some(c) = s.get("const") {
        if c != v {
            out.push(format!("{}: value must be {c}", at(path)));
        }
    }
    if let Some(n) = v.as_f64() {
        let bound = |k: &str| s.get(k).and_then(J::as_f64);
        if let Some(m) = bound("minimum").filter(|m| n < *m) {
            out.push(format!(
                "{}: must be greater than or equal to {m}",
                at(path)
            ));
        }
        if let Some(m) = bound("maximum").filter(|m| n > *m) {
            out.push(format!("{}: must be less than or equal to {m}", at(path)));
        }
        if let Some(m) = bound("exclusiveMinimum").filter(|m| n <= *m) {
            out.push(format!("{}: must be greater than {m}", at(path)));
        }
        if let Some(m) = bound("exclusiveMaximum").filter(|m| n >= *m) {
            out.push(format!("{}: must be less than {m}", at(path)));
        }
        if let Some(m) = bound("multipleOf").filter(|m| *m > 0.0 && (n / m).fract() != 0.0) {
            out.push(format!("{}: must be a multiple of {m}", at(path)));
        }
    }
    if let Some(st) = v.as_str() {
        let len = st.chars().count() as u64;
        if let Some(m) = s.get("minLength").and_then(J::as_u64).filter(|m| len < *m) {
            out.push(format!(
                "{}: String length must be greater than or equal to {m}",
                at(path)
            ));
        }
        if let Some(m) = s.get("maxLength").and_then(J::as_u64).filter(|m| len > *m) {
            out.push(format!(
                "{}: String length must be less than or equal to {m}",
                at(path)
            ));
        }
        if let Some(p) = s.get("pattern").and_then(J::as_str) {
            match regex::Regex::new(p) {
                Ok(re) if !re.is_match(st) => {
                    out.push(format!("{}: Does not match pattern '{p}'", at(path)))
                }
                Ok(_) => {}
                Err(e) => out.push(format!("{}: invalid pattern {p:?}: {e}", at(path))),
            }
        }
    }
    if let Some(items) = v.as_array() {
        if let Some(m) = s
            .get("minItems")
            .and_then(J::as_u64)
            .filter(|m| (items.len() as u64) < *m)
        {
            out.push(format!("{}: Array must have at least {m} items", at(path)));
        }
        if let Some(m) = s
            .get("maxItems")
            .and_then(J::as_u64)
            .filter(|m| (items.len() as u64) > *m)
        {
            out.push(format!("{}: Array must have at most {m} items", at(path)));
        }
        if s.get("uniqueItems") == Some(&J::Bool(true)) {
            for (i, x) in items.iter().enumerate() {
                if items[..i].contains(x) {
                    out.push(format!("{}: array items must be unique", at(path)));
                    break;
                }
            }
        }
        if let Some(item_schema) = s.get("items") {
            for (i, x) in items.iter().enumerate() {
                check(root, item_schema, x, &format!("{path}.{i}"), out, depth + 1);
            }
        }
    }
    if let Some(obj) = v.as_object() {
        if let Some(req) = s.get("required").and_then(J::as_array) {
            for r in req.iter().filter_map(J::as_str) {
                if !obj.contains_key(r) {
                    out.push(format!("{}: {r} is required", at(path)));
                }
            }
        }
        let props = s.get("properties").and_then(J::as_object);
        let patterns: Vec<(regex::Regex, &J)> = s
            .get("patternProperties")
            .and_then(J::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| regex::Regex::new(k).ok().map(|r| (r, v)))
                    .collect()
            })
            .unwrap_or_default();
        for (k, x) in obj {
            let sub = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            let mut matched = false;
            if let Some(ps) = props.and_then(|p| p.get(k)) {
                matched = true;
                check(root, ps, x, &sub, out, depth + 1);
            }
            for (re, ps) in &patterns {
                if re.is_match(k) {
                    matched = true;
                    check(root, ps, x, &sub, out, depth + 1);
                }
            }
            if !matched {
                match s.get("additionalProperties") {
                    Some(J::Bool(false)) => out.push(format!(
                        "{}: Additional property {k} is not allowed",
                        at(path)
                    )),
                    Some(ap @ J::Object(_)) => check(root, ap, x, &sub, out, depth + 1),
                    _ => {}
                }
            }
        }
    }
    let passes = |sub: &J| {
        let mut o = Vec::new();
        check(root, sub, v, path, &mut o, depth + 1);
        o.is_empty()
    };
    if let Some(all) = s.get("allOf").and_then(J::as_array) {
        for sub in all {
            check(root, sub, v, path, out, depth + 1);
        }
    }
    if let Some(any) = s.get("anyOf").and_then(J::as_array) {
        if !any.iter().any(passes) {
            out.push(format!(
                "{}: Must validate at least one schema (anyOf)",
                at(path)
            ));
        }
    }
    if let Some(one) = s.get("oneOf").and_then(J::as_array) {
        if one.iter().filter(|x| passes(x)).count() != 1 {
            out.push(format!(
                "{}: Must validate one and only one schema (oneOf)",
                at(path)
            ));
        }
    }
    if let Some(not) = s.get("not") {
        if passes(not) {
            out.push(format!("{}: Must not validate the schema (not)", at(path)));
        }
    }
    if let (Some(cond), Some(obj_then)) = (s.get("if"), s.get("then")) {
        if passes(cond) {
            check(root, obj_then, v, path, out, depth + 1);
        } else if let Some(e) = s.get("else") {
            check(root, e, v, path, out, depth + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::validate;
    use serde_json::json;

    #[test]
    fn common_keywords() {
        let schema = json!({
            "type": "object",
            "required": ["image"],
            "properties": {
                "replicas": {"type": "integer", "minimum": 1},
                "image": {"type": "object", "properties": {"tag": {"type": "string", "pattern": "^v"}}},
                "mode": {"enum": ["a", "b"]},
                "ports": {"type": "array", "items": {"$ref": "#/definitions/port"}}
            },
            "definitions": {"port": {"type": "integer", "maximum": 65535}}
        });
        assert!(
            validate(
                &schema,
                &json!({"image": {"tag": "v1"}, "replicas": 2.0, "ports": [80]})
            )
            .is_empty()
        );
        let errs = validate(
            &schema,
            &json!({"replicas": 0.5, "mode": "c", "ports": [70000], "image": {"tag": "1"}}),
        );
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(
            validate(&schema, &json!({}))
                .iter()
                .any(|e| e.contains("image is required"))
        );
    }
}
