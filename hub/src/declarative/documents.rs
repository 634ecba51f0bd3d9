//! The declarative documents: their kinds, each kind's spec in canonical
//! form, and where a document was read.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// The only API version there is.
pub const API_VERSION: &str = "switchyard.dev/v1";

/// Kinds of documents, in the order `apply` applies them: groups and repos
/// before the apps that name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Kind {
    ClusterGroup,
    Repo,
    App,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::ClusterGroup, Kind::Repo, Kind::App];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ClusterGroup => "ClusterGroup",
            Kind::Repo => "Repo",
            Kind::App => "App",
        }
    }

    /// The lowercase word `apply` prints, as in `repo/config created`.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::ClusterGroup => "clustergroup",
            Kind::Repo => "repo",
            Kind::App => "app",
        }
    }

    /// A kind as a person types it on the command line: `repo`, `Repos`,
    /// `clustergroup`, `group`, …
    pub fn from_cli(text: &str) -> Option<Kind> {
        match text.to_ascii_lowercase().trim_end_matches('s') {
            "repo" => Some(Kind::Repo),
            "app" => Some(Kind::App),
            "clustergroup" | "group" => Some(Kind::ClusterGroup),
            _ => None,
        }
    }

    pub(super) fn from_document(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Spec fields a document of this kind may have.
    pub(super) fn fields(self) -> &'static [&'static str] {
        match self {
            Kind::Repo => &[
                "url",
                "type",
                "branch",
                "interval",
                "username",
                "passwordFile",
                "caFile",
                "plainHttp",
                "webhookSecretFile",
            ],
            Kind::ClusterGroup => &["selector"],
            Kind::App => &[
                "repo",
                "path",
                "revision",
                "chart",
                "chartVersion",
                "target",
                "namespace",
                "renderer",
                "pluginCommand",
                "helm",
                "directory",
                "manual",
                "prune",
                "selfHeal",
                "adopt",
                "pruneNamespaces",
                "pruneCrds",
                "forceConflicts",
                "ignoreDifferences",
                "createNamespace",
                "pruneLast",
            ],
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A repo's settings in canonical form. Credentials are never in it, only
/// the paths of files on the hub's machine that hold them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepoSpec {
    pub url: String,
    /// `helm` for a chart repository; absent for Git.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub repo_type: Option<String>,
    /// Empty (and not written) for a chart repository.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub branch: String,
    /// As `humantime` prints it, so equal intervals compare equal.
    pub interval: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// An OCI registry reached over http:// (written only when true).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub plain_http: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret_file: Option<String>,
}

/// A cluster group's settings in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupSpec {
    pub selector: String,
}

/// Which clusters an app goes to: those its group selects and its own
/// selector selects, both; neither means every cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Target {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub selector: String,
}

impl Target {
    pub(super) fn is_empty(&self) -> bool {
        self.group.is_none() && self.selector.is_empty()
    }
}

/// An app's settings in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppSpec {
    pub repo: String,
    pub path: String,
    /// `None` follows the repo's branch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The chart, for an app from a chart repository.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
    /// Its version range; `None`: the latest stable version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chart_version: Option<String>,
    #[serde(skip_serializing_if = "Target::is_empty")]
    pub target: Target,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub renderer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin_command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Boxed, as `directory`: it keeps `Spec` small.
    pub helm: Option<Box<HelmSpec>>,
    /// As Argo CD's `spec.source.directory`: recurse, include, exclude,
    /// jsonnet (tlas, extVars, libs).
    /// Boxed: most apps have none, and it is the largest field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory: Option<Box<crate::render::DirectorySettings>>,
    pub manual: bool,
    pub prune: bool,
    pub self_heal: bool,
    /// Opt-ins about objects the app did not create; exported only when on.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub prune_namespaces: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub prune_crds: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub force_conflicts: bool,
    /// Fields left to others, as Argo CD's `ignoreDifferences`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignore_differences: Vec<crate::store::IgnoreDifference>,
    /// Create the namespace when it is missing; exported only when off
    /// (Switchyard's default is on, Argo CD's off).
    #[serde(skip_serializing_if = "is_true")]
    pub create_namespace: bool,
    /// Prune every object last (Argo CD's app-level `PruneLast=true`);
    /// exported only when on.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub prune_last: bool,
}

/// Whether a setting is on (left out of an export when on is the default).
fn is_true(on: &bool) -> bool {
    *on
}

/// The `helm:` block of an app: `helm template`'s flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HelmSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_name: Option<String>,
    /// Paths relative to the chart's directory, applied in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values_files: Vec<String>,
    /// Inline values (a mapping), applied after the files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<serde_json::Value>,
    /// `--set` strings, applied last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<String>,
    /// Values files for the clusters a selector matches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values_for: Vec<crate::store::ValuesFor>,
}

impl HelmSpec {
    pub(super) fn from_settings(s: &crate::store::HelmSettings) -> Self {
        Self {
            release_name: s.release_name.clone(),
            values_files: s.values_files.clone(),
            values: s.values.clone(),
            set: s.set.clone(),
            values_for: s.values_for.clone(),
        }
    }

    pub(super) fn settings(&self) -> crate::store::HelmSettings {
        crate::store::HelmSettings {
            release_name: self.release_name.clone(),
            values_files: self.values_files.clone(),
            values: self.values.clone(),
            set: self.set.clone(),
            values_for: self.values_for.clone(),
        }
    }
}

/// The spec of one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Spec {
    ClusterGroup(GroupSpec),
    Repo(RepoSpec),
    App(AppSpec),
}

impl Spec {
    pub fn kind(&self) -> Kind {
        match self {
            Spec::ClusterGroup(_) => Kind::ClusterGroup,
            Spec::Repo(_) => Kind::Repo,
            Spec::App(_) => Kind::App,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Metadata {
    pub name: String,
}

/// One document, as `export` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    pub api_version: &'static str,
    pub kind: Kind,
    pub metadata: Metadata,
    pub spec: Spec,
}

impl Document {
    pub fn new(name: &str, spec: Spec) -> Self {
        Self {
            api_version: API_VERSION,
            kind: spec.kind(),
            metadata: Metadata {
                name: name.to_owned(),
            },
            spec,
        }
    }

    pub fn name(&self) -> &str {
        &self.metadata.name
    }
}

/// Where something was read: file, document (from 1) and line (from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub document: usize,
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: document {}, line {}",
            self.file, self.document, self.line
        )
    }
}

/// A document read from a file, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced {
    pub document: Document,
    pub origin: Origin,
    /// Lines of `spec.repo` and `spec.target.group`, for reference errors.
    pub(super) references: BTreeMap<&'static str, usize>,
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub origin: Origin,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}
