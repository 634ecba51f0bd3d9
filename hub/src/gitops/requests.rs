//! What the admin API sends to the GitOps engine (requests) and what it is
//! shown (views) for repos, apps and their history.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `repo add` parameters.
#[derive(utoipa::ToSchema, Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoRequest {
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub interval_secs: Option<u64>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password_file: Option<String>,
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Speak to an OCI registry over http:// (only `--type oci`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub plain_http: bool,
    #[serde(default)]
    pub webhook_secret_file: Option<String>,
    /// `git` (the default) or `helm` (an HTTP chart repository).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub kind: Option<crate::store::RepoKind>,
}

/// A fetch in progress, as the API shows it.
#[derive(utoipa::ToSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchActivity {
    /// What the fetch is doing (`connecting`, `receiving pack`, `indexing`…).
    pub stage: String,
    /// Progress within the stage (objects, bytes), out of `total` when known.
    pub done: u64,
    pub total: Option<u64>,
    /// When the fetch started (RFC 3339).
    pub started_at: String,
}

/// A repo as the API shows it (never its secrets).
#[derive(utoipa::ToSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepoView {
    pub name: String,
    /// `git` or `helm`.
    #[serde(default)]
    pub kind: String,
    pub url: String,
    pub branch: String,
    pub interval: String,
    pub username: Option<String>,
    pub password_file: Option<String>,
    pub ca_file: Option<String>,
    /// An OCI registry reached over http:// instead of https://.
    #[serde(default)]
    pub plain_http: bool,
    pub webhook_secret_file: Option<String>,
    pub created_at: String,
    pub last_fetch: Option<String>,
    pub last_success: Option<String>,
    pub error: Option<String>,
    /// Commit of the followed branch after the latest fetch.
    pub head: Option<String>,
    pub refs: usize,
    /// The fetch running now, if any.
    #[serde(default)]
    pub fetching: Option<FetchActivity>,
}

/// `app create` / `app update` parameters; on update, `None` keeps a field.
#[derive(utoipa::ToSchema, Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub repo: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub revision: Option<String>,
    /// Label selector; `K=V` pairs from repeated `--selector` are joined with commas.
    #[serde(default)]
    pub selector: Option<String>,
    /// Cluster group to target (with the selector, if any); empty clears it.
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub renderer: Option<String>,
    #[serde(default)]
    pub plugin_command: Option<String>,
    /// The chart, for an app from a chart repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
    /// Its version range or exact version; latest stable when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart_version: Option<String>,
    /// Settings of the helm renderer; on update, replaces them whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub helm: Option<crate::store::HelmSettings>,
    /// Directory settings (recurse, include, exclude, jsonnet arguments and
    /// libraries); on update, replaces them whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub directory: Option<crate::render::DirectorySettings>,
    #[serde(default)]
    pub manual: Option<bool>,
    #[serde(default)]
    pub prune: Option<bool>,
    #[serde(default)]
    pub self_heal: Option<bool>,
    /// Write to objects that exist already and belong to no app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt: Option<bool>,
    /// Let prune and app deletion delete Namespaces the app created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune_namespaces: Option<bool>,
    /// Let prune and app deletion delete CRDs the app created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune_crds: Option<bool>,
    /// Take over fields other field managers own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_conflicts: Option<bool>,
    /// Fields the app leaves to others (Argo CD's `ignoreDifferences`);
    /// on update, a list replaces the app's rules and `[]` removes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_differences: Option<Vec<crate::store::IgnoreDifference>>,
    /// Create the app's namespace when it is missing (default true); when
    /// false, a missing namespace fails the app and nothing is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_namespace: Option<bool>,
    /// Prune every object last, once the others are healthy (Argo CD's
    /// app-level `PruneLast=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune_last: Option<bool>,
}

/// An app as the API shows it.
#[derive(utoipa::ToSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppView {
    pub name: String,
    pub repo: String,
    pub path: String,
    pub revision: String,
    /// The revision as configured; `None` follows the repo's branch.
    #[serde(default)]
    pub revision_configured: Option<String>,
    /// The chart, for an app from a chart repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
    /// Its version range as configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart_version: Option<String>,
    pub selector: String,
    /// Cluster group the app targets (together with `selector`).
    #[serde(default)]
    pub group: Option<String>,
    pub namespace: Option<String>,
    pub renderer: String,
    pub plugin_command: Option<String>,
    /// Values files, inline values, `--set`, release name and per-cluster
    /// values files of the helm renderer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub helm: Option<crate::store::HelmSettings>,
    /// Directory settings of directory and jsonnet apps (absent when default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub directory: Option<crate::render::DirectorySettings>,
    pub sync_policy: String,
    pub prune: bool,
    pub self_heal: bool,
    #[serde(default)]
    pub adopt: bool,
    #[serde(default)]
    pub prune_namespaces: bool,
    #[serde(default)]
    pub prune_crds: bool,
    #[serde(default)]
    pub force_conflicts: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_differences: Vec<crate::store::IgnoreDifference>,
    /// Create the app's namespace when it is missing.
    #[serde(default = "crate::gitops::requests::yes")]
    pub create_namespace: bool,
    /// Prune every object last, once the others are healthy.
    #[serde(default)]
    pub prune_last: bool,
    /// The commit an operator confirmed the prune of `Prune=confirm`
    /// objects for (`app sync --prune`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune_confirmed: Option<String>,
    /// Latest commit the revision resolved to.
    pub latest: Option<String>,
    /// Commit assigned to clusters: the one the app deploys, once it
    /// rendered. While that commit fails to render (it is then
    /// `failed_commit`), the commit the clusters still run if they all run
    /// one, else none.
    pub deployed: Option<String>,
    /// The commit the app should deploy but could not render (why is in
    /// `errors`); its clusters keep what `running` shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_commit: Option<String>,
    /// What the clusters run: commit -> how many clusters are assigned it.
    #[serde(default)]
    pub running_counts: BTreeMap<String, usize>,
    /// What the clusters run: commit -> the clusters assigned it. Only in
    /// the view of one app (`GET /api/v1/apps/{name}`) and in the list with
    /// `?clusters=names`: at fleet scale the names are most of the list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<BTreeMap<String, Vec<String>>>,
    /// A newer commit waiting for `app sync` (manual apps) or held back by a pin.
    pub pending: Option<String>,
    pub pinned: bool,
    /// How many clusters the group and selector target.
    #[serde(default)]
    pub target_count: usize,
    /// The clusters the group and selector target, by name: like `running`,
    /// only in the view of one app and in the list with `?clusters=names`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_clusters: Option<Vec<String>>,
    /// How many targeted clusters have `deployed` assigned.
    pub assigned: usize,
    /// `*` for errors that concern every cluster, else the cluster name.
    pub errors: BTreeMap<String, String>,
    /// Cluster -> objects the app shares there with another app (naming
    /// it), as the last planning pass found them: only one of the two apps
    /// writes such an object; the other's agent reports a conflict.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub warnings: BTreeMap<String, String>,
    pub created_at: String,
}

impl AppView {
    /// The targeted clusters' names; empty in a view without them.
    pub fn target_names(&self) -> &[String] {
        self.target_clusters.as_deref().unwrap_or_default()
    }
}

/// One line of `app history`.
#[derive(utoipa::ToSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevisionView {
    pub commit: String,
    pub at: String,
    pub event: String,
    pub trigger: String,
    pub author: String,
    pub summary: String,
    pub committed_at: String,
}

/// Default of `create_namespace` in views written before it existed.
pub(crate) fn yes() -> bool {
    true
}
