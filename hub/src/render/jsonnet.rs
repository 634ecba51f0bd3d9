//! The jsonnet renderer: `main.jsonnet` evaluated by jrsonnet (in the render worker), with imports resolved only among the app's files.

// `derive(Acyclic)` (jrsonnet's garbage collector marker) expands to an
// `unsafe impl`; the resolver holds only plain data, which is what the
// marker asserts.
#![allow(unsafe_code)]

use super::yaml::flatten;
use super::{RenderError, RenderOptions};
use crate::tree::TreeFile;
use jrsonnet_evaluator::manifest::JsonFormat;
use jrsonnet_evaluator::trace::PathResolver;
use jrsonnet_evaluator::{
    AsPathLike, Error as JrError, ImportFileNotFound, ImportResolver, SourcePath, SourceVirtual,
    State,
};
use jrsonnet_gcmodule::Acyclic;
use serde_json::Value;
use std::collections::HashMap;
use std::rc::Rc;

const ENTRY: &str = "main.jsonnet";

/// Directories searched after the importing file's own, like Tanka's
/// jpath: shared libraries and jsonnet-bundler's vendor tree.
const LIBRARY_DIRS: [&str; 2] = ["lib", "vendor"];

/// The app's files by normalized path: the whole world an import can see.
#[derive(Acyclic)]
struct AppFiles(Rc<HashMap<String, Vec<u8>>>);

impl AppFiles {
    fn lookup(&self, dir: &str, path: &str) -> Option<String> {
        if path.starts_with('/') {
            return None;
        }
        let candidates = std::iter::once(dir).chain(LIBRARY_DIRS);
        candidates
            .filter_map(|base| normalize(base, path))
            .find(|p| self.0.contains_key(p))
    }
}

/// `base/path` with `.` and `..` resolved; `None` if it climbs out of the app.
fn normalize(base: &str, path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in base.split('/').chain(path.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

impl ImportResolver for AppFiles {
    fn resolve_from(
        &self,
        from: &SourcePath,
        path: &dyn AsPathLike,
    ) -> jrsonnet_evaluator::Result<SourcePath> {
        let dir = from
            .downcast_ref::<SourceVirtual>()
            .map(|v| v.0.to_string())
            .map(|name| {
                name.rsplit_once('/')
                    .map_or(String::new(), |(d, _)| d.to_owned())
            })
            .unwrap_or_default();
        let requested = path.as_path().to_owned();
        match self.lookup(&dir, &requested.to_string()) {
            Some(p) => Ok(SourcePath::new(SourceVirtual(p.into()))),
            None => Err(ImportFileNotFound(from.clone(), requested).into()),
        }
    }

    fn load_file_contents(&self, resolved: &SourcePath) -> jrsonnet_evaluator::Result<Vec<u8>> {
        let name = resolved
            .downcast_ref::<SourceVirtual>()
            .map(|v| v.0.to_string())
            .unwrap_or_default();
        match self.0.get(&name) {
            Some(data) => Ok(data.clone()),
            None => Err(jrsonnet_evaluator::ResolvedFileNotFound(resolved.clone()).into()),
        }
    }
}

pub(super) fn render(
    files: &[TreeFile],
    options: &RenderOptions,
) -> Result<Vec<Value>, RenderError> {
    let map: HashMap<String, Vec<u8>> = files
        .iter()
        .filter_map(|f| normalize("", &f.path).map(|p| (p, f.data.clone())))
        .collect();
    if !map.contains_key(ENTRY) {
        let mut candidates: Vec<&str> = files
            .iter()
            .map(|f| f.path.as_str())
            .filter(|p| p.ends_with(".jsonnet"))
            .collect();
        candidates.sort_unstable();
        let candidates = if candidates.is_empty() {
            "none".to_owned()
        } else {
            candidates.join(", ")
        };
        return Err(RenderError::NoJsonnetEntry { candidates });
    }
    let limit = options.limits.max_rendered_bytes;
    // jrsonnet recurses deeply: it gets a thread with a large stack. It
    // cannot be interrupted; time and memory are bounded by the worker
    // process the render runs in (`sandbox`), which is killed whole.
    let evaluator = std::thread::Builder::new()
        .name("jsonnet".into())
        .stack_size(16 * 1024 * 1024)
        .spawn(move || evaluate(map, limit))
        .map_err(|source| RenderError::Io {
            context: "starting the jsonnet evaluator".into(),
            source,
        })?;
    let json = match evaluator.join() {
        Ok(r) => r?,
        Err(_) => {
            return Err(RenderError::Jsonnet(format!(
                "{ENTRY}: the evaluator panicked"
            )));
        }
    };
    let value: Value = serde_json::from_str(&json)
        .map_err(|e| RenderError::Jsonnet(format!("{ENTRY}: output is not JSON: {e}")))?;
    let mut out = Vec::new();
    collect(value, "$", &mut out)?;
    Ok(out)
}

fn evaluate(files: HashMap<String, Vec<u8>>, limit: u64) -> Result<String, RenderError> {
    let mut builder = State::builder();
    builder
        .import_resolver(AppFiles(Rc::new(files)))
        .context_initializer(jrsonnet_stdlib::ContextInitializer::new(
            PathResolver::FileName,
        ));
    let state = builder.build();
    let _entered = state.enter();
    let value = state.import(ENTRY).map_err(describe)?;
    let json = value.manifest(JsonFormat::minify()).map_err(describe)?;
    if json.len() as u64 > limit {
        return Err(RenderError::TooLarge { limit });
    }
    Ok(json)
}

/// `file:line:column: message`, from the innermost frame that has a
/// location, then the rest of jsonnet's stack trace.
fn describe(e: JrError) -> RenderError {
    // Virtual sources (the app's files) print as "virtual:PATH".
    let message = e.error().to_string().replace("virtual:", "");
    let mut frames = e.trace().0.iter().filter_map(|el| {
        let span = el.location.as_ref()?;
        let [start] = span.0.map_source_locations(&[span.1]);
        let name = span.0.source_path().to_string();
        let name = name.strip_prefix("virtual:").unwrap_or(&name).to_owned();
        Some((
            format!("{name}:{}:{}", start.line, start.column),
            el.desc.clone(),
        ))
    });
    let mut text = match frames.next() {
        Some((at, _)) => format!("{at}: {message}"),
        None => format!("{ENTRY}: {message}"),
    };
    for (at, desc) in frames.take(10) {
        text.push_str(&format!("\n    {at}: {desc}"));
    }
    RenderError::Jsonnet(text)
}

/// kubecfg's output conventions: an object with `apiVersion` and `kind`
/// is one object (or a List), an array is its elements, any other object
/// is its values; nested as deep as the author likes. Nulls are skipped so
/// conditionals can drop objects.
fn collect(value: Value, at: &str, out: &mut Vec<Value>) -> Result<(), RenderError> {
    let invalid =
        |message: String| RenderError::Jsonnet(format!("{ENTRY}: output {at}: {message}"));
    match value {
        Value::Null => Ok(()),
        Value::Object(map) if map.contains_key("apiVersion") && map.contains_key("kind") => {
            flatten(Value::Object(map), out).map_err(invalid)
        }
        Value::Object(map) => {
            for (k, v) in map {
                collect(v, &format!("{at}.{k}"), out)?;
            }
            Ok(())
        }
        Value::Array(items) => {
            for (i, v) in items.into_iter().enumerate() {
                collect(v, &format!("{at}[{i}]"), out)?;
            }
            Ok(())
        }
        other => Err(invalid(format!(
            "expected an object, an array or an object of objects, found {other}"
        ))),
    }
}
