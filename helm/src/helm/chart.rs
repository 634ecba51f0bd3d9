//! Loading a chart from an in-memory file tree (path → bytes), as Helm's loader
//! does for a chart directory: Chart.yaml, values.yaml, templates/, charts/
//! (subchart directories), crds/ and every other file as `.Files`.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::Error;
use crate::value::Value;

/// One dependency as Chart.yaml declares it.
#[derive(Debug, Clone, Default)]
pub struct Dependency {
    pub name: String,
    pub version: String,
    pub repository: String,
    pub condition: String,
    pub tags: Vec<String>,
    pub alias: String,
    pub import_values: Vec<Value>,
    pub enabled: bool,
}

/// A loaded chart and its vendored subcharts.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Chart.yaml as `.Chart` shows it (Go field names).
    pub metadata: BTreeMap<String, Value>,
    pub name: String,
    pub version: String,
    pub is_library: bool,
    /// values.yaml.
    pub values: Value,
    /// `templates/...` path → source.
    pub templates: Vec<(String, String)>,
    /// Every other file (`.Files`), including crds/.
    pub files: Rc<BTreeMap<String, Rc<[u8]>>>,
    pub dependencies: Vec<Dependency>,
    pub subcharts: Vec<Chart>,
    /// Path from the root chart: "web", "web/charts/redis".
    pub full_path: String,
    /// values.schema.json.
    pub schema: Option<serde_json::Value>,
    pub is_root: bool,
}

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.to_string(),
        Some(Value::Nil) | None => String::new(),
        Some(v) => crate::gofmt::sprint_value(v),
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::List(l)) => l.iter().map(|x| text(Some(x))).collect(),
        _ => Vec::new(),
    }
}

impl Chart {
    /// Loads a chart directory from `files` (paths relative to the chart's
    /// directory, '/'-separated), applying its `.helmignore` as Helm does.
    pub fn load(files: &BTreeMap<String, Vec<u8>>) -> Result<Chart, Error> {
        let rules = match files.get(".helmignore") {
            Some(text) => IgnoreRules::parse(&String::from_utf8_lossy(text))?,
            None => IgnoreRules::default(),
        };
        let kept: BTreeMap<String, Vec<u8>> = files
            .iter()
            .filter(|(p, _)| !rules.ignores(p))
            .map(|(p, d)| (p.clone(), d.clone()))
            .collect();
        Self::load_at(&kept, None)
    }

    fn load_at(files: &BTreeMap<String, Vec<u8>>, parent: Option<&str>) -> Result<Chart, Error> {
        let chart_yaml = files
            .get("Chart.yaml")
            .ok_or_else(|| Error::Chart("Chart.yaml file is missing".into()))?;
        let meta = crate::yaml::parse_raw(&String::from_utf8_lossy(chart_yaml))
            .map_err(|e| Error::Chart(format!("cannot load Chart.yaml: {e}")))?;
        let m = match &meta {
            Value::Map(m) => m.borrow().clone(),
            _ => return Err(Error::Chart("cannot load Chart.yaml: not a mapping".into())),
        };
        let name = text(m.get("name"));
        if name.is_empty() {
            return Err(Error::Chart(
                "validation: chart.metadata.name is required".into(),
            ));
        }
        let api_version = text(m.get("apiVersion"));
        let version = text(m.get("version"));
        let chart_type = text(m.get("type"));
        let mut deps_src = m.get("dependencies").cloned();
        if api_version == "v1" || api_version.is_empty() {
            if let Some(req) = files.get("requirements.yaml") {
                let r = crate::yaml::parse_raw(&String::from_utf8_lossy(req))
                    .map_err(|e| Error::Chart(format!("cannot load requirements.yaml: {e}")))?;
                if let Value::Map(r) = r {
                    deps_src = r.borrow().get("dependencies").cloned();
                }
            }
        }
        let mut dependencies = Vec::new();
        if let Some(Value::List(l)) = &deps_src {
            for d in l.iter() {
                let Value::Map(d) = d else { continue };
                let d = d.borrow();
                dependencies.push(Dependency {
                    name: text(d.get("name")),
                    version: text(d.get("version")),
                    repository: text(d.get("repository")),
                    condition: text(d.get("condition")),
                    tags: strings(d.get("tags")),
                    alias: text(d.get("alias")),
                    import_values: match d.get("import-values") {
                        Some(Value::List(l)) => l.to_vec(),
                        _ => Vec::new(),
                    },
                    enabled: true,
                });
            }
        }
        let full_path = match parent {
            None => name.clone(),
            Some(p) => format!("{p}/charts/{name}"),
        };
        let values = match files.get("values.yaml") {
            Some(v) => match crate::yaml::parse(&String::from_utf8_lossy(v)).map_err(|e| Error::Chart(format!("cannot load values.yaml: {e}")))? {
                Value::Nil => Value::empty_map(),
                v @ Value::Map(_) => v,
                _ => return Err(Error::Chart("cannot load values.yaml: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal array into Go value of type map[string]interface {}".into())),
            },
            None => Value::empty_map(),
        };
        let schema = match files.get("values.schema.json") {
            Some(b) => Some(
                serde_json::from_slice(b)
                    .map_err(|e| Error::Chart(format!("cannot load values.schema.json: {e}")))?,
            ),
            None => None,
        };
        let mut templates = Vec::new();
        let mut other = BTreeMap::new();
        let mut sub_files: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
        let mut archives: Vec<(String, Vec<u8>)> = Vec::new();
        for (path, data) in files {
            match path.as_str() {
                "Chart.yaml" | "Chart.lock" | "values.yaml" | "values.schema.json"
                | "requirements.yaml" | "requirements.lock" => continue,
                _ => {}
            }
            if path.starts_with("templates/") {
                templates.push((path.clone(), String::from_utf8_lossy(data).into_owned()));
            } else if let Some(rest) = path.strip_prefix("charts/") {
                if rest.ends_with(".prov") {
                    other.insert(path.clone(), Rc::from(data.as_slice()));
                    continue;
                }
                let (cname, inner) = rest.split_once('/').unwrap_or((rest, ""));
                if inner.is_empty() {
                    if cname.ends_with(".tgz") || cname.ends_with(".tar.gz") {
                        archives.push((cname.to_string(), data.clone()));
                    }
                    continue;
                }
                sub_files
                    .entry(cname.to_string())
                    .or_default()
                    .insert(inner.to_string(), data.clone());
            } else {
                other.insert(path.clone(), Rc::from(data.as_slice()));
            }
        }
        let mut subcharts = Vec::new();
        for (cname, sf) in sub_files {
            if !sf.contains_key("Chart.yaml") {
                return Err(Error::Chart(format!(
                    "error unpacking subchart {cname} in {name}: Chart.yaml file is missing"
                )));
            }
            subcharts.push(Chart::load_at(&sf, Some(&full_path))?);
        }
        for (cname, data) in archives {
            let sf = unpack_archive(&data).map_err(|e| {
                Error::Chart(format!("error unpacking subchart {cname} in {name}: {e}"))
            })?;
            subcharts.push(Chart::load_at(&sf, Some(&full_path))?);
        }
        let mut metadata = BTreeMap::new();
        let s = |k: &str| Value::str(text(m.get(k)));
        metadata.insert("Name".into(), Value::str(name.as_str()));
        metadata.insert("Version".into(), Value::str(version.as_str()));
        metadata.insert("APIVersion".into(), Value::str(api_version.as_str()));
        metadata.insert("AppVersion".into(), s("appVersion"));
        metadata.insert("Description".into(), s("description"));
        metadata.insert("Home".into(), s("home"));
        metadata.insert("Icon".into(), s("icon"));
        metadata.insert("Condition".into(), s("condition"));
        metadata.insert("Tags".into(), s("tags"));
        metadata.insert("KubeVersion".into(), s("kubeVersion"));
        metadata.insert("Type".into(), Value::str(chart_type.as_str()));
        metadata.insert(
            "Deprecated".into(),
            Value::Bool(text(m.get("deprecated")) == "true"),
        );
        metadata.insert(
            "Keywords".into(),
            Value::list(
                strings(m.get("keywords"))
                    .into_iter()
                    .map(Value::str)
                    .collect(),
            ),
        );
        metadata.insert(
            "Sources".into(),
            Value::list(
                strings(m.get("sources"))
                    .into_iter()
                    .map(Value::str)
                    .collect(),
            ),
        );
        metadata.insert(
            "Annotations".into(),
            match m.get("annotations") {
                Some(Value::Map(a)) => Value::map(
                    a.borrow()
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::str(text(Some(v)))))
                        .collect(),
                ),
                _ => Value::empty_map(),
            },
        );
        let maintainers = match m.get("maintainers") {
            Some(Value::List(l)) => l
                .iter()
                .filter_map(|x| match x {
                    Value::Map(x) => {
                        let x = x.borrow();
                        let mut o = BTreeMap::new();
                        o.insert("Name".to_string(), Value::str(text(x.get("name"))));
                        o.insert("Email".to_string(), Value::str(text(x.get("email"))));
                        o.insert("URL".to_string(), Value::str(text(x.get("url"))));
                        Some(Value::map(o))
                    }
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        metadata.insert("Maintainers".into(), Value::list(maintainers));
        metadata.insert("IsRoot".into(), Value::Bool(parent.is_none()));
        Ok(Chart {
            metadata,
            name,
            version,
            is_library: chart_type == "library",
            values,
            templates,
            files: Rc::new(other),
            dependencies,
            subcharts,
            full_path,
            schema,
            is_root: parent.is_none(),
        })
    }

    /// Loads a chart packaged as a .tgz (as `helm package` writes it).
    pub fn load_archive(data: &[u8]) -> Result<Chart, Error> {
        Chart::load_archive_with(data, &BTreeMap::new())
    }

    /// Loads a chart archive with `extra` files added beside its own: the
    /// dependencies `helm dependency build` would have put in its charts/
    /// (`charts/NAME-VERSION.tgz`). A file of the archive is not replaced.
    pub fn load_archive_with(
        data: &[u8],
        extra: &BTreeMap<String, Vec<u8>>,
    ) -> Result<Chart, Error> {
        let mut files = archive_files(data)?;
        for (path, data) in extra {
            files.entry(path.clone()).or_insert_with(|| data.clone());
        }
        Chart::load(&files)
    }

    /// `.Chart` for templates.
    pub fn chart_value(&self) -> Value {
        let mut m = self.metadata.clone();
        m.insert("Name".into(), Value::str(self.name.as_str()));
        let deps = self
            .dependencies
            .iter()
            .map(|d| {
                let mut o = BTreeMap::new();
                o.insert("Name".to_string(), Value::str(d.name.as_str()));
                o.insert("Version".to_string(), Value::str(d.version.as_str()));
                o.insert("Repository".to_string(), Value::str(d.repository.as_str()));
                o.insert("Condition".to_string(), Value::str(d.condition.as_str()));
                o.insert(
                    "Tags".to_string(),
                    Value::list(d.tags.iter().map(|t| Value::str(t.as_str())).collect()),
                );
                o.insert("Enabled".to_string(), Value::Bool(d.enabled));
                o.insert(
                    "ImportValues".to_string(),
                    Value::list(d.import_values.clone()),
                );
                o.insert("Alias".to_string(), Value::str(d.alias.as_str()));
                Value::map(o)
            })
            .collect();
        m.insert("Dependencies".into(), Value::list(deps));
        Value::map(m)
    }

    /// The files of crds/, in path order.
    pub fn crds(&self) -> Vec<(String, Rc<[u8]>)> {
        self.files
            .iter()
            .filter(|(k, _)| k.starts_with("crds/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Largest chart archive accepted, unpacked (Helm's default limit).
const MAX_UNPACKED: u64 = 100 << 20;
/// Largest single file in an archive (Helm's default limit).
const MAX_FILE: u64 = 5 << 20;

/// The files of a chart archive, relative to its top directory, unpacked
/// under Helm's limits (100 MiB in all, 5 MiB a file).
pub fn archive_files(data: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, Error> {
    unpack_archive(data).map_err(|e| Error::Chart(format!("error unpacking chart archive: {e}")))
}

fn unpack_archive(data: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, String> {
    use std::io::Read as _;
    let gz = flate2::read::GzDecoder::new(data);
    let mut ar = tar::Archive::new(gz.take(MAX_UNPACKED + 1));
    let mut out = BTreeMap::new();
    let mut total = 0u64;
    for entry in ar.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .replace('\\', "/");
        let Some((_, rel)) = path.split_once('/') else {
            continue;
        };
        if rel.is_empty() || rel.split('/').any(|p| p == ".." || p.is_empty()) {
            return Err(format!("chart illegally contains path {path:?}"));
        }
        let size = entry.header().size().map_err(|e| e.to_string())?;
        if size > MAX_FILE {
            return Err(format!(
                "decompressed chart file {rel:?} is larger than the maximum file size {MAX_FILE}"
            ));
        }
        total += size;
        if total > MAX_UNPACKED {
            return Err(format!(
                "decompressed chart is larger than the maximum size {MAX_UNPACKED}"
            ));
        }
        let mut buf = Vec::with_capacity(size as usize);
        entry
            .by_ref()
            .take(MAX_FILE)
            .read_to_end(&mut buf)
            .map_err(|e| e.to_string())?;
        out.insert(rel.to_string(), buf);
    }
    if out.is_empty() {
        return Err("no files in chart archive".into());
    }
    Ok(out)
}

/// One `.helmignore` rule.
struct IgnoreRule {
    negate: bool,
    must_dir: bool,
    /// Match against the base name only (no '/' in the rule).
    base_only: bool,
    re: regex::Regex,
}

/// Helm's `.helmignore` rules (pkg/ignore), plus its default `templates/.?*`.
struct IgnoreRules(Vec<IgnoreRule>);

impl Default for IgnoreRules {
    fn default() -> IgnoreRules {
        IgnoreRules(vec![
            IgnoreRules::rule("templates/.?*")
                .expect("static rule")
                .expect("a rule"),
        ])
    }
}

impl IgnoreRules {
    fn parse(text: &str) -> Result<IgnoreRules, Error> {
        let mut rules = Vec::new();
        for line in text.lines() {
            if let Some(r) = Self::rule(line)? {
                rules.push(r);
            }
        }
        rules.extend(IgnoreRules::default().0);
        Ok(IgnoreRules(rules))
    }

    fn rule(line: &str) -> Result<Option<IgnoreRule>, Error> {
        let mut rule = line.trim();
        if rule.is_empty() || rule.starts_with('#') {
            return Ok(None);
        }
        if rule.contains("**") {
            return Err(Error::Chart(
                "double-star (**) syntax is not supported".into(),
            ));
        }
        let negate = rule.starts_with('!');
        if negate {
            rule = &rule[1..];
        }
        let must_dir = rule.ends_with('/');
        let rule = rule.trim_end_matches('/');
        let base_only = !rule.contains('/');
        let rule = rule.trim_start_matches('/');
        let re = match_regex(rule)
            .map_err(|e| Error::Chart(format!("syntax error in pattern {line:?}: {e}")))?;
        Ok(Some(IgnoreRule {
            negate,
            must_dir,
            base_only,
            re,
        }))
    }

    /// Whether a file is ignored: it matches, or one of its directories does.
    fn ignores(&self, path: &str) -> bool {
        if path == ".helmignore" {
            return false;
        }
        let parts: Vec<&str> = path.split('/').collect();
        for n in 1..=parts.len() {
            let p = parts[..n].join("/");
            if self.ignores_one(&p, n < parts.len()) {
                return true;
            }
        }
        false
    }

    fn ignores_one(&self, path: &str, is_dir: bool) -> bool {
        for r in &self.0 {
            let name = if r.base_only {
                path.rsplit('/').next().unwrap_or(path)
            } else {
                path
            };
            if r.negate {
                if r.must_dir && !is_dir {
                    return true;
                }
                if !r.re.is_match(name) {
                    return true;
                }
                continue;
            }
            if r.must_dir && !is_dir {
                continue;
            }
            if r.re.is_match(name) {
                return true;
            }
        }
        false
    }
}

/// Go's `filepath.Match` pattern as a regex: `*` and `?` stay within a path segment.
fn match_regex(pat: &str) -> Result<regex::Regex, regex::Error> {
    let mut re = String::from("^");
    let chars: Vec<char> = pat.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                let mut cls = String::from("[");
                i += 1;
                if matches!(chars.get(i), Some('^') | Some('!')) {
                    cls.push('^');
                    i += 1;
                }
                while i < chars.len() && chars[i] != ']' {
                    if chars[i] == '\\' || chars[i] == '[' {
                        cls.push('\\');
                    }
                    cls.push(chars[i]);
                    i += 1;
                }
                cls.push(']');
                re.push_str(&cls);
            }
            '\\' if i + 1 < chars.len() => {
                i += 1;
                re.push_str(&regex::escape(&chars[i].to_string()));
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    re.push('$');
    regex::Regex::new(&re)
}
