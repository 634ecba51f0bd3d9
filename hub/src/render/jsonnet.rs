//! The jsonnet renderer: `main.jsonnet` (or, without one, every `*.jsonnet` file as a directory app) evaluated by jrsonnet in the render worker, with imports resolved only among the app's files and its library directories.

// `derive(Acyclic)` (jrsonnet's garbage collector marker) expands to an
// `unsafe impl`; the resolver holds only plain data, which is what the
// marker asserts.
#![allow(unsafe_code)]

use super::source::JsonnetSettings;
use super::yaml::{Sourced, flatten};
use super::{RenderError, RenderOptions};
use crate::tree::TreeFile;
use jrsonnet_evaluator::manifest::JsonFormat;
use jrsonnet_evaluator::tla::TlaArg;
use jrsonnet_evaluator::trace::PathResolver;
use jrsonnet_evaluator::{
    AsPathLike, Error as JrError, IStr, ImportFileNotFound, ImportResolver, SourcePath,
    SourceVirtual, State, Val, apply_tla,
};
use jrsonnet_gcmodule::Acyclic;
use serde_json::Value;
use std::collections::HashMap;
use std::rc::Rc;

const ENTRY: &str = "main.jsonnet";

/// Directories of the app searched after the importing file's own, like
/// Tanka's jpath: shared libraries and jsonnet-bundler's vendor tree. The
/// app's `jsonnet.libs` (repository paths) come after them.
const LIBRARY_DIRS: [&str; 2] = ["lib", "vendor"];

/// Every file an import can see, by repository-relative path: the app's
/// files and those of its library directories. Nothing else of the
/// repository, and nothing of the hub's disk, is reachable.
#[derive(Acyclic)]
struct AppFiles {
    files: Rc<HashMap<String, Vec<u8>>>,
    /// Repository-relative directories searched after the importer's own.
    search: Rc<Vec<String>>,
}

impl AppFiles {
    fn lookup(&self, dir: &str, path: &str) -> Option<String> {
        if path.starts_with('/') {
            return None;
        }
        let candidates = std::iter::once(dir).chain(self.search.iter().map(String::as_str));
        candidates
            .filter_map(|base| normalize(base, path))
            .find(|p| self.files.contains_key(p))
    }
}

/// `base/path` with `.` and `..` resolved; `None` if it climbs out of the
/// repository.
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
        match self.files.get(&name) {
            Some(data) => Ok(data.clone()),
            None => Err(jrsonnet_evaluator::ResolvedFileNotFound(resolved.clone()).into()),
        }
    }
}

/// What jsonnet files of one app are evaluated in: the files an import can
/// see and the app's arguments. Built once per render, shared by every
/// file a directory app evaluates.
pub(super) struct World {
    files: Rc<HashMap<String, Vec<u8>>>,
    search: Rc<Vec<String>>,
    /// `apps/web/` (with the slash) or `""`: app files' keys start with it.
    prefix: String,
    settings: JsonnetSettings,
    limit: u64,
}

// The evaluator thread takes the world by value; `Rc` is only shared
// inside that one thread, so it is sent as plain parts.
struct WorldParts {
    files: HashMap<String, Vec<u8>>,
    search: Vec<String>,
    prefix: String,
    settings: JsonnetSettings,
    limit: u64,
}

impl World {
    fn from_parts(p: WorldParts) -> Self {
        Self {
            files: Rc::new(p.files),
            search: Rc::new(p.search),
            prefix: p.prefix,
            settings: p.settings,
            limit: p.limit,
        }
    }

    /// The app-relative `path` of a message, for files inside the app.
    fn shown(&self, name: &str) -> String {
        name.strip_prefix(&self.prefix).unwrap_or(name).to_owned()
    }
}

fn world_parts(files: &[TreeFile], options: &RenderOptions) -> WorldParts {
    let app = super::source::lib_path(&options.repo.app_path).unwrap_or_default();
    let prefix = if app.is_empty() {
        String::new()
    } else {
        format!("{app}/")
    };
    let mut map: HashMap<String, Vec<u8>> = HashMap::new();
    for f in &options.repo.files {
        if let Some(p) = normalize("", &f.path) {
            map.insert(p, f.data.clone());
        }
    }
    // The app's own files win over a library's copy of the same path.
    for f in files {
        if let Some(p) = normalize(&app, &f.path) {
            map.insert(p, f.data.clone());
        }
    }
    let settings = options.directory.jsonnet.clone();
    let mut search: Vec<String> = LIBRARY_DIRS
        .iter()
        .map(|d| format!("{prefix}{d}"))
        .collect();
    search.extend(
        settings
            .libs
            .iter()
            .filter_map(|l| super::source::lib_path(l).ok()),
    );
    WorldParts {
        files: map,
        search,
        prefix,
        settings,
        limit: options.limits.max_rendered_bytes,
    }
}

/// Run `work` on a thread with a large stack: jrsonnet recurses deeply. It
/// cannot be interrupted; time and memory are bounded by the worker
/// process the render runs in (`sandbox`), which is killed whole.
fn on_evaluator_thread<T: Send + 'static>(
    entry: &str,
    work: impl FnOnce() -> Result<T, RenderError> + Send + 'static,
) -> Result<T, RenderError> {
    let evaluator = std::thread::Builder::new()
        .name("jsonnet".into())
        .stack_size(16 * 1024 * 1024)
        .spawn(work)
        .map_err(|source| RenderError::Io {
            context: "starting the jsonnet evaluator".into(),
            source,
        })?;
    match evaluator.join() {
        Ok(r) => r,
        Err(_) => Err(RenderError::Jsonnet(format!(
            "{entry}: the evaluator panicked"
        ))),
    }
}

pub(super) fn render(
    files: &[TreeFile],
    options: &RenderOptions,
) -> Result<Vec<Sourced>, RenderError> {
    let has_entry = files
        .iter()
        .any(|f| normalize("", &f.path).as_deref() == Some(ENTRY));
    if !has_entry {
        // Argo CD renders a jsonnet app as a directory: every `*.jsonnet`
        // (and plain manifest) file, `*.libsonnet` only imported.
        if files.iter().any(|f| f.path.ends_with(".jsonnet")) {
            return super::directory::render(files, options);
        }
        return Err(RenderError::NoJsonnetEntry);
    }
    let parts = world_parts(files, options);
    let objects = on_evaluator_thread(ENTRY, move || {
        let world = World::from_parts(parts);
        let entry = format!("{}{ENTRY}", world.prefix);
        evaluate_objects(&world, &entry)
    })?;
    Ok(sourced(ENTRY, objects))
}

/// The objects `file` evaluated to, each named by its place in the output:
/// evaluation leaves no trace of where in the file an object came from.
pub(super) fn sourced(file: &str, objects: Vec<Value>) -> Vec<Sourced> {
    objects
        .into_iter()
        .enumerate()
        .map(|(i, value)| Sourced {
            origin: format!("object {} of {file}'s output", i + 1),
            value,
        })
        .collect()
}

/// Evaluate the app's files at `paths` (app-relative) in one evaluator
/// thread, each to its objects in order.
pub(super) fn render_files(
    files: &[TreeFile],
    options: &RenderOptions,
    paths: Vec<String>,
) -> Result<Vec<Vec<Value>>, RenderError> {
    let parts = world_parts(files, options);
    let first = paths.first().cloned().unwrap_or_default();
    on_evaluator_thread(&first, move || {
        let world = World::from_parts(parts);
        paths
            .iter()
            .map(|p| evaluate_objects(&world, &format!("{}{p}", world.prefix)))
            .collect()
    })
}

/// Evaluate `entry` (repository-relative) to objects.
fn evaluate_objects(world: &World, entry: &str) -> Result<Vec<Value>, RenderError> {
    let shown = world.shown(entry);
    let json = evaluate(world, entry, &shown)?;
    let value: Value = serde_json::from_str(&json)
        .map_err(|e| RenderError::Jsonnet(format!("{shown}: output is not JSON: {e}")))?;
    let mut out = Vec::new();
    collect(value, "$", &shown, &mut out)?;
    Ok(out)
}

// jrsonnet's `apply_tla` takes a map keyed by `IStr`, an interned string
// whose interior mutability is its reference count: its hash never changes.
#[allow(clippy::mutable_key_type)]
fn evaluate(world: &World, entry: &str, shown: &str) -> Result<String, RenderError> {
    let mut builder = State::builder();
    let context = jrsonnet_stdlib::ContextInitializer::new(PathResolver::FileName);
    builder
        .import_resolver(AppFiles {
            files: world.files.clone(),
            search: world.search.clone(),
        })
        .context_initializer(context.clone());
    let state = builder.build();
    let _entered = state.enter();
    let describe = |e| describe(e, world, shown);
    for arg in &world.settings.ext_vars {
        if arg.code {
            let value = state
                .evaluate_snippet(format!("<ext-code {}>", arg.name), arg.value.as_str())
                .map_err(describe)?;
            context.add_ext_var(arg.name.as_str().into(), value);
        } else {
            context.add_ext_str(arg.name.as_str().into(), arg.value.as_str().into());
        }
    }
    let mut value = state.import(entry).map_err(describe)?;
    if !world.settings.tlas.is_empty() {
        let mut tlas: HashMap<IStr, TlaArg> = HashMap::new();
        for arg in &world.settings.tlas {
            let value = if arg.code {
                TlaArg::Val(
                    state
                        .evaluate_snippet(format!("<tla-code {}>", arg.name), arg.value.as_str())
                        .map_err(describe)?,
                )
            } else {
                TlaArg::String(arg.value.as_str().into())
            };
            tlas.insert(arg.name.as_str().into(), value);
        }
        value = apply_tla(&tlas, value).map_err(describe)?;
    } else if matches!(value, Val::Func(_)) {
        // A file that is a function gets its defaults, as `jsonnet` does.
        value = apply_tla(&HashMap::<IStr, TlaArg>::new(), value).map_err(describe)?;
    }
    let json = value.manifest(JsonFormat::minify()).map_err(describe)?;
    if json.len() as u64 > world.limit {
        return Err(RenderError::TooLarge { limit: world.limit });
    }
    Ok(json)
}

/// `file:line:column: message`, from the innermost frame that has a
/// location, then the rest of jsonnet's stack trace.
fn describe(e: JrError, world: &World, entry: &str) -> RenderError {
    // Virtual sources (the app's files) print as "virtual:PATH".
    let message = e
        .error()
        .to_string()
        .replace(&format!("virtual:{}", world.prefix), "")
        .replace("virtual:", "");
    let mut frames = e.trace().0.iter().filter_map(|el| {
        let span = el.location.as_ref()?;
        let [start] = span.0.map_source_locations(&[span.1]);
        let name = span.0.source_path().to_string();
        let name = world.shown(name.strip_prefix("virtual:").unwrap_or(&name));
        Some((
            format!("{name}:{}:{}", start.line, start.column),
            el.desc.clone(),
        ))
    });
    let mut text = match frames.next() {
        Some((at, _)) => format!("{at}: {message}"),
        None => format!("{entry}: {message}"),
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
fn collect(value: Value, at: &str, entry: &str, out: &mut Vec<Value>) -> Result<(), RenderError> {
    let invalid =
        |message: String| RenderError::Jsonnet(format!("{entry}: output {at}: {message}"));
    match value {
        Value::Null => Ok(()),
        Value::Object(map) if map.contains_key("apiVersion") && map.contains_key("kind") => {
            flatten(Value::Object(map), out).map_err(invalid)
        }
        Value::Object(map) => {
            for (k, v) in map {
                collect(v, &format!("{at}.{k}"), entry, out)?;
            }
            Ok(())
        }
        Value::Array(items) => {
            for (i, v) in items.into_iter().enumerate() {
                collect(v, &format!("{at}[{i}]"), entry, out)?;
            }
            Ok(())
        }
        other => Err(invalid(format!(
            "expected an object, an array or an object of objects, found {other}"
        ))),
    }
}
