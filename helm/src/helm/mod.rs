//! Helm's chart model on top of the template and Sprig layers: loading a chart
//! from memory, values, `.Release`/`.Chart`/`.Capabilities`/`.Files`/`.Template`,
//! Helm's built-ins (`include`, `tpl`, `required`, `toYaml`, ...), rendering every
//! template like Helm's engine, and splitting the output into objects.

pub mod chart;
pub mod manifests;
pub mod objects;
pub mod schema;
pub mod values;

use std::collections::BTreeMap;
use std::rc::Rc;

pub use chart::Chart;
pub use manifests::{Manifest, split_manifests};

use crate::template::{self, Exec, ExecError, FuncMap, Limits, Templates, Ty};
use crate::value::Value;

/// A rendering failure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Chart(String),
    #[error("{0}")]
    Values(String),
    /// A template failed to parse: `parse error at (FILE:LINE): MSG`.
    #[error("parse error at ({location}): {msg}")]
    Parse { location: String, msg: String },
    /// A template failed to execute (Go's text, or Helm's for `required`).
    #[error("{0}")]
    Exec(String),
    /// A resource limit was hit.
    #[error("{0}")]
    Limit(String),
}

type Result<T, E = Error> = std::result::Result<T, E>;

/// What `helm template` would be told on its command line.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    pub release_name: String,
    pub namespace: String,
    pub revision: i64,
    pub is_install: bool,
    pub is_upgrade: bool,
    /// `.Capabilities.KubeVersion`, like "v1.36.0".
    pub kube_version: String,
    /// `.Capabilities.APIVersions`; `None` is Helm's default set.
    pub api_versions: Option<Vec<String>>,
    /// Values files, in order (later wins), each a map.
    pub values: Vec<Value>,
    /// `--set` strings, in order.
    pub set: Vec<String>,
    /// Seed of the deterministic random functions.
    pub seed: Vec<u8>,
    /// `now`, in Unix seconds.
    pub now_unix: i64,
    pub limits: Limits,
}

impl Default for RenderOptions {
    fn default() -> RenderOptions {
        RenderOptions {
            release_name: "release-name".into(),
            namespace: "default".into(),
            revision: 1,
            is_install: true,
            is_upgrade: false,
            kube_version: objects::DEFAULT_KUBE_VERSION.into(),
            api_versions: None,
            values: Vec::new(),
            set: Vec::new(),
            seed: Vec::new(),
            now_unix: 0,
            limits: Limits::default(),
        }
    }
}

/// The full function map templates see: Go built-ins, Sprig (minus `env`,
/// `expandenv`) and Helm's own.
pub fn funcs() -> FuncMap {
    let mut m = FuncMap::default();
    template::builtins::add(&mut m);
    crate::sprig::add(&mut m);
    m.insert("toYaml", &[Ty::Any], None, |_, a| {
        Ok(Value::str(
            crate::yaml::to_yaml(&a[0])
                .map(|s| s.strip_suffix('\n').unwrap_or(&s).to_string())
                .unwrap_or_default(),
        ))
    });
    m.insert("mustToYaml", &[Ty::Any], None, |_, a| {
        Ok(Value::str(
            crate::yaml::to_yaml(&a[0])?
                .trim_end_matches('\n')
                .to_string(),
        ))
    });
    m.insert("fromYaml", &[Ty::Str], None, |_, a| {
        Ok(from_yaml_map(a[0].as_str().unwrap_or("")))
    });
    m.insert("fromYamlArray", &[Ty::Str], None, |_, a| {
        Ok(match crate::yaml::parse(a[0].as_str().unwrap_or("")) {
            Ok(v @ Value::List(_)) => v,
            Ok(Value::Nil) => Value::list(Vec::new()),
            Ok(v) => Value::list(vec![Value::str(format!(
                "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type []interface {{}}",
                json_kind(&v)
            ))]),
            Err(e) => Value::list(vec![Value::str(e.to_string())]),
        })
    });
    m.insert("toJson", &[Ty::Any], None, |_, a| {
        Ok(Value::str(
            crate::json::to_json(&a[0], true, None).unwrap_or_default(),
        ))
    });
    m.insert("fromJson", &[Ty::Str], None, |_, a| {
        let mut out = BTreeMap::new();
        match crate::json::from_json(a[0].as_str().unwrap_or("")) {
            Ok(Value::Map(m)) => return Ok(Value::Map(m)),
            Ok(v) => {
                out.insert(
                    "Error".into(),
                    Value::str(format!(
                        "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                        json_kind(&v)
                    )),
                );
            }
            Err(e) => {
                out.insert("Error".into(), Value::str(e));
            }
        }
        Ok(Value::map(out))
    });
    m.insert("fromJsonArray", &[Ty::Str], None, |_, a| {
        Ok(match crate::json::from_json(a[0].as_str().unwrap_or("")) {
            Ok(v @ Value::List(_)) => v,
            Ok(v) => Value::list(vec![Value::str(format!(
                "json: cannot unmarshal {} into Go value of type []interface {{}}",
                json_kind(&v)
            ))]),
            Err(e) => Value::list(vec![Value::str(e)]),
        })
    });
    m.insert("toToml", &[Ty::Any], None, |_, a| {
        Ok(Value::str(objects::to_toml(&a[0])))
    });
    m.insert("include", &[Ty::Str, Ty::Any], None, |e, a| {
        let name = a[0].as_str().unwrap_or("").to_string();
        e.include(&name, a[1].clone()).map(Value::str)
    });
    m.insert("tpl", &[Ty::Str, Ty::Any], None, tpl);
    m.insert("required", &[Ty::Str, Ty::Any], None, |_, a| {
        let missing = match &a[1] {
            Value::Nil => true,
            Value::String(s) => s.is_empty(),
            _ => false,
        };
        if missing {
            return Err(format!(
                "{WARN_START}{}{WARN_END}",
                a[0].as_str().unwrap_or("")
            ));
        }
        Ok(a[1].clone())
    });
    m.insert(
        "lookup",
        &[Ty::Str, Ty::Str, Ty::Str, Ty::Str],
        None,
        |_, _| Ok(Value::empty_map()),
    );
    m
}

const WARN_START: &str = "HELM_ERR_START";
const WARN_END: &str = "HELM_ERR_END";

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::List(_) => "array",
        Value::Map(_) => "object",
        Value::String(_) => "string",
        Value::Bool(_) => "bool",
        Value::Nil => "null",
        _ => "number",
    }
}

fn from_yaml_map(s: &str) -> Value {
    let mut out = BTreeMap::new();
    match crate::yaml::parse(s) {
        Ok(Value::Map(m)) => return Value::Map(m),
        Ok(Value::Nil) => return Value::empty_map(),
        Ok(v) => {
            out.insert(
                "Error".to_string(),
                Value::str(format!(
                    "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                    json_kind(&v)
                )),
            );
        }
        Err(e) => {
            out.insert(
                "Error".to_string(),
                Value::str(format!("error converting YAML to JSON: {e}")),
            );
        }
    }
    Value::map(out)
}

/// Helm's `tpl`: renders a string as a template with the given data, seeing every
/// named template of the chart; `<no value>` becomes empty as in the top-level output.
fn tpl(e: &mut Exec<'_>, a: Vec<Value>) -> std::result::Result<Value, String> {
    let text = a[0].as_str().unwrap_or("").to_string();
    let vals = &a[1];
    let name = match vals {
        Value::Map(m) => m.borrow().get("Template").and_then(|t| match t {
            Value::Map(t) => t
                .borrow()
                .get("Name")
                .and_then(|n| n.as_str().map(str::to_string)),
            _ => None,
        }),
        _ => None,
    };
    let Some(name) = name else {
        return Err(format!(
            "cannot retrieve Template.Name from values inside tpl function: {text}"
        ));
    };
    match e.execute_text(&name, &text, vals.clone()) {
        Ok(s) => Ok(Value::str(s.replace("<no value>", ""))),
        Err(err) => Err(format!(
            "error during tpl function execution for {text:?}: {err}"
        )),
    }
}

/// Turns an execution error into Helm's text: `required`'s message as
/// `execution error at (LOC): MSG`, everything else as Go prints it.
fn cleanup_exec_error(e: ExecError) -> Error {
    if e.is_limit() {
        return Error::Limit(e.to_string());
    }
    let text = e.to_string();
    if let (Some(s), Some(t)) = (text.find(WARN_START), text.find(WARN_END))
        && s < t
    {
        let msg = &text[s + WARN_START.len()..t];
        let location = match &e {
            ExecError::At { location, .. } => location.clone(),
            _ => String::new(),
        };
        return Error::Exec(format!("execution error at ({location}): {msg}"));
    }
    Error::Exec(text)
}

/// One template to render: its name, source and per-chart data.
struct Renderable {
    name: String,
    src: String,
    vals: Value,
    base_path: String,
    partial: bool,
}

/// `ValidateAgainstSchema`: each chart's schema against its own values section.
fn validate_schemas(chart: &Chart, vals: &Value, out: &mut String) {
    if let Some(schema) = &chart.schema {
        let errs = schema::validate(schema, &crate::yaml::to_canonical_json(vals));
        if !errs.is_empty() {
            out.push_str(&format!("{}:\n", chart.name));
            for e in errs {
                out.push_str(&format!("- {e}\n"));
            }
        }
    }
    for sub in &chart.subcharts {
        let section = match vals {
            Value::Map(m) => m
                .borrow()
                .get(&sub.name)
                .cloned()
                .unwrap_or_else(Value::empty_map),
            _ => Value::empty_map(),
        };
        validate_schemas(sub, &section, out);
    }
}

/// Helm's parse/execute order: deeper paths first, then reverse lexical order.
fn sort_templates(names: &mut [String]) {
    names.sort_by(|a, b| {
        let (ca, cb) = (a.matches('/').count(), b.matches('/').count());
        cb.cmp(&ca).then_with(|| b.cmp(a))
    });
}

/// Gathers a chart's templates with their data; returns the chart's top-level
/// data, which its parent shows as `.Subcharts.NAME`.
fn collect(
    chart: &Chart,
    parent_vals: &Value,
    caps: &Value,
    release: &Value,
    out: &mut Vec<Renderable>,
) -> Value {
    let values = if chart.is_root {
        match parent_vals {
            Value::Map(m) => m
                .borrow()
                .get("Values")
                .cloned()
                .unwrap_or_else(Value::empty_map),
            _ => Value::empty_map(),
        }
    } else {
        let parent_values = match parent_vals {
            Value::Map(m) => m.borrow().get("Values").cloned().unwrap_or_default(),
            _ => Value::Nil,
        };
        match parent_values {
            Value::Map(m) => match m.borrow().get(&chart.name) {
                Some(v @ Value::Map(_)) => v.clone(),
                _ => Value::empty_map(),
            },
            _ => Value::empty_map(),
        }
    };
    let mut next = BTreeMap::new();
    next.insert("Chart".to_string(), chart.chart_value());
    next.insert(
        "Files".to_string(),
        objects::files_value(chart.files.clone()),
    );
    next.insert("Release".to_string(), release.clone());
    next.insert("Capabilities".to_string(), caps.clone());
    next.insert("Values".to_string(), values);
    let next = Value::map(next);
    let mut subcharts = BTreeMap::new();
    for sub in &chart.subcharts {
        subcharts.insert(sub.name.clone(), collect(sub, &next, caps, release, out));
    }
    if let Value::Map(m) = &next {
        m.borrow_mut()
            .insert("Subcharts".to_string(), Value::map(subcharts));
    }
    for (path, src) in &chart.templates {
        let base = path.rsplit('/').next().unwrap_or(path);
        if chart.is_library && !base.starts_with('_') {
            continue;
        }
        out.push(Renderable {
            name: format!("{}/{}", chart.full_path, path),
            src: src.clone(),
            vals: next.clone(),
            base_path: format!("{}/templates", chart.full_path),
            partial: base.starts_with('_'),
        });
    }
    next
}

/// A loaded chart rendered: template path → text (partials left out), as Helm's engine returns.
pub fn render(chart: &Chart, opts: &RenderOptions) -> Result<BTreeMap<String, String>> {
    let mut chart = chart.clone();
    // User values: files in order, then --set.
    let mut user = Value::empty_map();
    for v in &opts.values {
        user = values::merge_maps(&user, v);
    }
    for s in &opts.set {
        user = values::parse_set(s, &user)?;
    }
    values::process_dependencies(&mut chart, &user)?;
    let vals = values::coalesce_values_root(&chart, &user)?;
    let mut violations = String::new();
    validate_schemas(&chart, &vals, &mut violations);
    if !violations.is_empty() {
        return Err(Error::Values(format!(
            "values don't meet the specifications of the schema(s) in the following chart(s):\n{violations}"
        )));
    }
    let caps = objects::capabilities_value(&opts.kube_version, opts.api_versions.clone())?;
    let mut release = BTreeMap::new();
    release.insert("Name".to_string(), Value::str(opts.release_name.as_str()));
    release.insert("Namespace".to_string(), Value::str(opts.namespace.as_str()));
    release.insert("IsUpgrade".to_string(), Value::Bool(opts.is_upgrade));
    release.insert("IsInstall".to_string(), Value::Bool(opts.is_install));
    release.insert("Revision".to_string(), Value::Int(opts.revision));
    release.insert("Service".to_string(), Value::str("Helm"));
    let release = Value::map(release);
    let mut top = BTreeMap::new();
    top.insert("Values".to_string(), vals);
    let top = Value::map(top);
    let mut list = Vec::new();
    let _ = collect(&chart, &top, &caps, &release, &mut list);
    let funcs = funcs();
    let mut names: Vec<String> = list.iter().map(|r| r.name.clone()).collect();
    sort_templates(&mut names);
    let by_name: BTreeMap<&str, &Renderable> = list.iter().map(|r| (r.name.as_str(), r)).collect();
    let mut templates = Templates::default();
    for n in &names {
        let r = by_name[n.as_str()];
        templates
            .add(&r.name, &r.src, &funcs)
            .map_err(|e| Error::Parse {
                location: format!("{}:{}", e.file, e.line),
                msg: e.msg,
            })?;
    }
    let host = crate::sprig::Host {
        seed: opts.seed.clone(),
        now_unix: opts.now_unix,
    };
    let mut exec = Exec::new(&templates, &funcs, opts.limits, &host);
    let mut out = BTreeMap::new();
    for n in &names {
        let r = by_name[n.as_str()];
        if r.partial {
            continue;
        }
        if let Value::Map(m) = &r.vals {
            let mut t = BTreeMap::new();
            t.insert("Name".to_string(), Value::str(r.name.as_str()));
            t.insert("BasePath".to_string(), Value::str(r.base_path.as_str()));
            m.borrow_mut().insert("Template".to_string(), Value::map(t));
        }
        let text = exec
            .execute(&r.name, r.vals.clone())
            .map_err(cleanup_exec_error)?;
        out.insert(r.name.clone(), text.replace("<no value>", ""));
    }
    Ok(out)
}

/// Loads and renders a chart given as path → bytes.
pub fn render_files(
    files: &BTreeMap<String, Vec<u8>>,
    opts: &RenderOptions,
) -> Result<BTreeMap<String, String>> {
    let chart = Chart::load(files)?;
    render(&chart, opts)
}

/// Keeps `Rc` in the public surface honest for callers holding files.
pub type SharedFiles = Rc<BTreeMap<String, Rc<[u8]>>>;
