//! Renderers that turn an app's files at one commit into Kubernetes objects, and per-cluster variable substitution.
//!
//! Rendering is done once per commit and app; substitution once per cluster,
//! and only when some string uses a `${cluster.…}` variable, so clusters
//! without variables share one bundle.
//!
//! The hub never renders in its own process: [`sandbox`] runs [`render`]
//! in a worker process (`switchyard render-worker`, see [`worker`]) under
//! CPU, memory, output and wall-clock limits. A new renderer is a variant
//! of [`RendererKind`] and a branch of [`render`]; the worker runs it with
//! no further change.

mod directory;
mod duplicates;
pub(crate) use duplicates::ObjectKey;
mod helm;
mod jsonnet;
mod kustomize;
mod plugin;
mod process;
pub mod reaper;
pub mod sandbox;
mod source;
mod substitute;
pub mod wire;
pub mod worker;
mod yaml;

use crate::tree::{TreeFile, TreeLimits};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::path::{Component, Path, PathBuf};

pub use helm::{ClusterFacts, HelmInput, HelmUses, ValuesDocument, cluster_values};
pub use source::{DirectorySettings, JsonnetArg, JsonnetSettings, SettingsError, lib_path};
pub use substitute::{SubstituteError, needs_substitution, substitute};

/// How an app's files become objects.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum RendererKind {
    /// Every `*.yaml`, `*.yml`, `*.json` and `*.jsonnet` file, recursively
    /// unless [`RenderOptions::directory`] says otherwise.
    Directory,
    /// `kubectl kustomize` (or `kustomize build`) of the app's root, with
    /// the bases it names elsewhere in the repository.
    Kustomize,
    /// `main.jsonnet`, evaluated in-process with imports limited to the app
    /// and its library directories; without one, a directory app.
    Jsonnet,
    /// Any program printing YAML or JSON. The command is split on
    /// whitespace (no shell) and its first word looked up on PATH.
    Plugin { command: String },
    /// A Helm chart rendered in-process by `switchyard-helm`; values,
    /// release and seed come in [`RenderOptions::helm`].
    Helm,
}

impl fmt::Display for RendererKind {
    /// The kind's name: `directory`, `kustomize`, `jsonnet`, `plugin` or `helm`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Directory => "directory",
            Self::Kustomize => "kustomize",
            Self::Jsonnet => "jsonnet",
            Self::Plugin { .. } => "plugin",
            Self::Helm => "helm",
        })
    }
}

/// Why a renderer name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown renderer {0:?}: expected directory, kustomize, jsonnet, plugin or helm")]
pub struct UnknownRenderer(pub String);

impl std::str::FromStr for RendererKind {
    type Err = UnknownRenderer;
    /// Parses the names `Display` prints. `plugin` gets an empty command,
    /// which the caller fills in (e.g. from a `--command` flag); rendering
    /// with an empty command is an error.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "directory" => Ok(Self::Directory),
            "kustomize" => Ok(Self::Kustomize),
            "jsonnet" => Ok(Self::Jsonnet),
            "plugin" => Ok(Self::Plugin {
                command: String::new(),
            }),
            "helm" => Ok(Self::Helm),
            other => Err(UnknownRenderer(other.to_owned())),
        }
    }
}

/// Bounds and settings for one render. Time and memory are bounded by the
/// worker process the render runs in ([`sandbox`]), not here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenderOptions {
    pub limits: TreeLimits,
    /// Namespace for namespaced objects that name none. Not applied by
    /// `render`: carried for the caller, which knows the API's scopes.
    pub default_namespace: Option<String>,
    /// Values, release and seed of a Helm render (ignored by the others).
    pub helm: Option<HelmInput>,
    /// File selection and jsonnet arguments of directory and jsonnet apps.
    pub directory: DirectorySettings,
    /// Where the app is in its repository, and what else of the repository
    /// the render may read.
    pub repo: RepoContext,
}

/// The repository around an app: its path there, and the files outside
/// it a render may read (kustomize bases and components, jsonnet library
/// directories), read at the app's commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoContext {
    /// The app's directory, repository-relative; `""` at the root.
    pub app_path: String,
    /// Files by repository-relative path. The app's own files need not be
    /// among them.
    pub files: Vec<TreeFile>,
}

/// Why an app could not be rendered. Messages name the file (relative to
/// the app's path) and, where known, the line and column.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{path}:{line}:{column}: {message}")]
    Yaml {
        path: String,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("{path}: document {document}: {message}")]
    InvalidObject {
        path: String,
        /// 1-based, counting non-empty documents.
        document: usize,
        message: String,
    },
    #[error(
        "{object} is defined twice: at {first} and at {second}; an object may be defined once per app"
    )]
    Duplicate {
        object: String,
        first: String,
        second: String,
    },
    #[error("rendered output is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("{0}")]
    Jsonnet(String),
    /// Helm's own message, which names the chart file and line.
    #[error("{0}")]
    Helm(String),
    #[error(
        "the jsonnet renderer needs main.jsonnet or other *.jsonnet files at the app's path; none found"
    )]
    NoJsonnetEntry,
    #[error("the kustomize renderer needs kubectl or kustomize on the hub's PATH")]
    KustomizeMissing,
    #[error("the plugin renderer needs a command")]
    EmptyCommand,
    #[error("plugin program {0:?} is not on the hub's PATH")]
    ProgramNotFound(String),
    #[error("{program} printed more than {limit} bytes")]
    OutputLimit { program: String, limit: u64 },
    #[error("{program} failed ({status}); stderr: {stderr}")]
    Failed {
        program: String,
        status: String,
        stderr: String,
    },
    #[error("invalid path in app tree: {0:?}")]
    InvalidPath(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// Render `files` (an app's tree at one commit) with `kind`.
///
/// The objects come out in no particular order (bundles canonicalize);
/// each is a mapping with `apiVersion`, `kind` and `metadata.name`, and
/// `List` kinds are flattened.
pub fn render(
    kind: &RendererKind,
    files: &[TreeFile],
    options: &RenderOptions,
) -> Result<Vec<Value>, RenderError> {
    render_with_uses(kind, files, options).map(|(objects, _)| objects)
}

/// [`render`], and for Helm which cluster inputs the chart reached.
pub fn render_with_uses(
    kind: &RendererKind,
    files: &[TreeFile],
    options: &RenderOptions,
) -> Result<(Vec<Value>, Option<HelmUses>), RenderError> {
    let (objects, uses) = match kind {
        RendererKind::Directory => (directory::render(files, options)?, None),
        RendererKind::Kustomize => (kustomize::render(files, options)?, None),
        RendererKind::Jsonnet => (jsonnet::render(files, options)?, None),
        RendererKind::Plugin { command } => (plugin::render(command, files, options)?, None),
        RendererKind::Helm => {
            let (objects, uses) = helm::render(files, options.helm.as_ref(), options)?;
            (objects, Some(uses))
        }
    };
    duplicates::check(&objects, options.default_namespace.as_deref())?;
    let objects: Vec<Value> = objects.into_iter().map(|o| o.value).collect();
    check_rendered_size(&objects, options.limits.max_rendered_bytes)?;
    Ok((objects, uses))
}

/// The JSON size of `objects` must stay within `limit`: measured without
/// building the JSON, since it is built again when the bundle is encoded.
fn check_rendered_size(objects: &[Value], limit: u64) -> Result<(), RenderError> {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.saturating_add(buf.len() as u64);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    for o in objects {
        // Writing to a counter cannot fail.
        let _ = serde_json::to_writer(&mut count, o);
        if count.0 > limit {
            return Err(RenderError::TooLarge { limit });
        }
    }
    Ok(())
}

/// `path` as a relative path that stays inside a directory, or an error:
/// the Git reader promises this already, but files are written to disk
/// from it, so it is checked again.
fn safe_relative(path: &str) -> Result<PathBuf, RenderError> {
    let p = Path::new(path);
    let ok = !path.is_empty()
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if ok {
        Ok(p.to_path_buf())
    } else {
        Err(RenderError::InvalidPath(path.to_owned()))
    }
}

/// Write the tree into a fresh private (0700) temporary directory.
fn write_tree(files: &[TreeFile]) -> Result<tempfile::TempDir, RenderError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |context: String| move |source| RenderError::Io { context, source };
    let dir = tempfile::Builder::new()
        .prefix("switchyard-render-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .map_err(io("creating a temporary directory".into()))?;
    for f in files {
        let rel = safe_relative(&f.path)?;
        let target = dir.path().join(&rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(io(format!("creating {}", parent.display())))?;
        }
        std::fs::write(&target, &f.data).map_err(io(format!("writing {}", f.path)))?;
        let mode = if f.executable { 0o700 } else { 0o600 };
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
            .map_err(io(format!("setting the mode of {}", f.path)))?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests;
