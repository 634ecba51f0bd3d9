//! The hub's durable state behind a `Store` trait, so that a replicated
//! backend (etcd) can replace the embedded sled store for a highly available hub.

mod cluster_index;
mod directory;
mod sled_store;

pub use cluster_index::ClusterSummary;
pub use directory::{DirectorySettings, JsonnetArg, JsonnetSettings};
pub use sled_store::SledStore;
#[cfg(test)]
pub(crate) use sled_store::tests::revision as test_revision;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use switchyard_common::ClusterName;

/// Error from the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cluster {0} already exists")]
    ClusterExists(ClusterName),
    #[error("cluster {0} not found")]
    ClusterNotFound(ClusterName),
    #[error("unknown bootstrap token")]
    TokenUnknown,
    #[error("bootstrap token already used at {}", crate::clock::rfc3339(*used_at))]
    TokenUsed { used_at: u64 },
    #[error("bootstrap token expired at {}", crate::clock::rfc3339(*expired_at))]
    TokenExpired { expired_at: u64 },
    #[error("repo {0} already exists")]
    RepoExists(String),
    #[error("app {0} already exists")]
    AppExists(String),
    #[error("cluster group {0} already exists")]
    GroupExists(String),
    #[error("API token {0} already exists and is active; revoke it first")]
    ApiTokenExists(String),
    #[error("store backend")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("restore needs an empty store; this one already holds {0}")]
    NotEmpty(String),
    #[error("corrupt record under {key}")]
    Corrupt {
        key: String,
        #[source]
        source: serde_json::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A registered cluster as the hub remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRecord {
    pub name: ClusterName,
    pub labels: BTreeMap<String, String>,
    /// Unix seconds.
    pub created_at: u64,
    pub enrolled_at: Option<u64>,
    /// Serials of certificates that may still connect: the newest, and the one
    /// it replaced until that one expires, so renewal never strands a connection.
    pub serials: Vec<String>,
    pub cert_not_after: Option<u64>,
    pub agent_version: Option<String>,
    pub kubernetes_version: Option<String>,
    pub last_seen: Option<u64>,
    /// Bumped by every change to what the cluster should run.
    pub generation: u64,
    /// What the cluster should run at `generation`.
    #[serde(default)]
    pub assignment: Vec<switchyard_common::proto::AssignmentItem>,
    /// Set by `switchyard restore` to the time the backup was taken: a
    /// certificate issued to this cluster after that moment (a renewal the
    /// backup missed) is accepted once and replaces the recorded serials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<u64>,
}

impl ClusterRecord {
    pub fn new(name: ClusterName, labels: BTreeMap<String, String>, now: u64) -> Self {
        Self {
            name,
            labels,
            created_at: now,
            enrolled_at: None,
            serials: Vec::new(),
            cert_not_after: None,
            agent_version: None,
            kubernetes_version: None,
            last_seen: None,
            generation: 1,
            assignment: Vec::new(),
            restored_from: None,
        }
    }
}

/// A bootstrap token, stored under the SHA-256 of its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub cluster: ClusterName,
    pub expires_at: u64,
    pub used_at: Option<u64>,
}

/// A certificate that must never be accepted again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedRecord {
    pub cluster: ClusterName,
    pub revoked_at: u64,
}

/// A Git repository the hub follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoRecord {
    pub name: String,
    /// A Git repository, or a Helm chart repository (absent in records
    /// written before chart repositories existed: Git).
    #[serde(default, skip_serializing_if = "RepoKind::is_git")]
    pub kind: RepoKind,
    pub url: String,
    /// Branch apps follow when they name no revision.
    pub branch: String,
    pub interval_secs: u64,
    pub username: Option<String>,
    /// File holding the password or token (a reference, so the secret is
    /// not copied into the store or shown by the API).
    pub password_file: Option<String>,
    /// PEM bundle of CAs to trust for an HTTPS server with a private CA.
    pub ca_file: Option<String>,
    /// An OCI registry spoken to over http:// rather than https:// (like
    /// `helm --plain-http`); absent in older records: HTTPS.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub plain_http: bool,
    /// File holding the shared secret that webhook deliveries must be signed with.
    pub webhook_secret_file: Option<String>,
    pub created_at: u64,
    #[serde(default)]
    pub fetch: FetchState,
}

/// What a repo's URL serves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RepoKind {
    #[default]
    Git,
    /// An HTTP chart repository (`index.yaml`): its refs are the listed
    /// chart versions, `chart/version` → `digest created url`.
    Helm,
    /// Charts in an OCI registry (`oci://host/path`): the refs are the
    /// versions of the charts apps use, with the digests of their chart
    /// layers.
    Oci,
}

impl RepoKind {
    pub fn is_git(&self) -> bool {
        *self == RepoKind::Git
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            RepoKind::Git => "git",
            RepoKind::Helm => "helm",
            RepoKind::Oci => "oci",
        }
    }
}

/// Outcome of the latest fetches of a repo.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchState {
    pub last_attempt: Option<u64>,
    pub last_success: Option<u64>,
    /// Error of the latest attempt, cleared by a success.
    pub error: Option<String>,
    pub consecutive_failures: u32,
    /// Ref -> commit after the latest successful fetch.
    pub refs: BTreeMap<String, String>,
    /// The revisions the latest successful fetch asked for. Only tracked
    /// revisions are fetched, so one an app has just started to follow is
    /// unknown until a fetch that asked for it: until then the app waits
    /// instead of failing.
    #[serde(default)]
    pub tracked: Vec<String>,
}

/// How an app is rendered and where it goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRecord {
    pub name: String,
    pub repo: String,
    pub path: String,
    /// Branch, tag or commit; `None` follows the repo's branch.
    pub revision: Option<String>,
    /// Label selector over cluster labels (Kubernetes syntax).
    pub selector: String,
    /// Cluster group whose selector the app's targets must also match.
    #[serde(default)]
    pub group: Option<String>,
    pub namespace: Option<String>,
    /// `directory`, `kustomize`, `jsonnet`, `plugin` or `helm`.
    pub renderer: String,
    pub plugin_command: Option<String>,
    /// Values and release name of the `helm` renderer (absent in records
    /// written before it existed, and for other renderers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm: Option<HelmSettings>,
    /// File selection and jsonnet arguments of the `directory` and
    /// `jsonnet` renderers (absent when default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<DirectorySettings>,
    /// The chart an app from a chart repository deploys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
    /// Its version range (`^6.0`, an exact version); `None`: latest stable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart_version: Option<String>,
    /// Manual apps deploy only what `app sync` approved.
    pub manual: bool,
    pub prune: bool,
    pub self_heal: bool,
    /// Opt-ins about objects the app did not create (absent in records
    /// written before they existed: all off).
    #[serde(default)]
    pub ownership: switchyard_common::proto::Ownership,
    /// Fields left to others (`ignoreDifferences`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_differences: Vec<IgnoreDifference>,
    /// Create the app's namespace when it is missing (absent in records
    /// written before it existed: true, as it always was).
    #[serde(default = "yes")]
    pub create_namespace: bool,
    /// Prune every object of the app last, once the others are healthy
    /// (Argo CD's app-level `PruneLast=true`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prune_last: bool,
    /// The commit an operator confirmed the prune of its `Prune=confirm`
    /// objects for (`app sync --prune`); it confirms that commit only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune_confirmed: Option<String>,
    /// Explicit syncs and rollbacks so far: each one makes the agents
    /// write every object of the app once (see
    /// `AssignmentItem::sync_requested`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sync_requests: u64,
    pub created_at: u64,
    /// Commit deployed: for automatic apps the latest resolved commit unless
    /// pinned; for manual apps the approved one (`None` until first sync).
    pub deployed: Option<String>,
    /// Set by `app rollback`: the app stays on `deployed` and stops following
    /// its revision until `app sync`.
    pub pinned: bool,
    /// Latest commit its revision resolved to.
    pub latest: Option<String>,
    /// Why the latest render failed, per cluster or for all (`*`).
    #[serde(default)]
    pub errors: BTreeMap<String, String>,
    /// A render that failed, remembered so that it is not run again on
    /// every pass nor after a restart: only a new commit, changed
    /// renderer settings or limits, or `app sync` try it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render_failure: Option<RenderFailure>,
}

#[cfg(test)]
impl AppRecord {
    /// A directory app `name` of repo `repo` at the repo's root, targeting
    /// every cluster, automatic, nothing deployed: tests change what they need.
    pub(crate) fn example(name: &str, repo: &str) -> AppRecord {
        AppRecord {
            name: name.into(),
            repo: repo.into(),
            path: ".".into(),
            revision: None,
            selector: String::new(),
            group: None,
            namespace: None,
            renderer: "directory".into(),
            plugin_command: None,
            helm: None,
            directory: None,
            chart: None,
            chart_version: None,
            manual: false,
            prune: false,
            self_heal: false,
            ownership: Default::default(),
            ignore_differences: Vec::new(),
            create_namespace: true,
            prune_last: false,
            prune_confirmed: None,
            sync_requests: 0,
            created_at: 0,
            deployed: None,
            pinned: false,
            latest: None,
            errors: BTreeMap::new(),
            render_failure: None,
        }
    }
}

fn yes() -> bool {
    true
}

/// Fields of an app's objects it leaves to others, in the shape of Argo
/// CD's `ignoreDifferences` entries (so they can be copied from an
/// Application): never drift, and applied with their live values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IgnoreDifference {
    /// API group (`""` for core, `apps`, ...) or `*`.
    #[serde(default)]
    pub group: String,
    /// Kind (`Deployment`) or `*`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// JSON pointers (RFC 6901) to the fields, e.g. `/spec/replicas`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub json_pointers: Vec<String>,
    /// jq path expressions (`.webhooks[]?.clientConfig.caBundle`), of the
    /// kind `switchyard_common::jq_paths` accepts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jq_path_expressions: Vec<String>,
    /// Field managers (`kube-controller-manager`): every field the live
    /// object's `managedFields` assign to one of them is left to it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_fields_managers: Vec<String>,
}

impl IgnoreDifference {
    /// The rule as the agent receives it.
    pub fn to_rule(&self) -> switchyard_common::proto::IgnoreRule {
        switchyard_common::proto::IgnoreRule {
            group: self.group.clone(),
            kind: self.kind.clone(),
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            json_pointers: self.json_pointers.clone(),
            jq_path_expressions: self.jq_path_expressions.clone(),
            managed_fields_managers: self.managed_fields_managers.clone(),
        }
    }
}

/// How the `helm` renderer renders an app's chart, as `helm template`'s
/// flags would say it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelmSettings {
    /// `.Release.Name`; the app's name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_name: Option<String>,
    /// Values files (`-f`), in order: paths relative to the chart's
    /// directory (`..` may climb within the repo; a leading `/` starts at
    /// the repo's root), read at the same commit as the chart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values_files: Vec<String>,
    /// Inline values (a mapping), applied after the files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<serde_json::Value>,
    /// `--set` strings, applied last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<String>,
    /// Values files for the clusters a selector matches, applied after
    /// `values_files` (in this order) and before `values`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values_for: Vec<ValuesFor>,
}

/// A values file applied only to the clusters `selector` matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValuesFor {
    /// Label selector over cluster labels (Kubernetes syntax).
    pub selector: String,
    /// Path as in [`HelmSettings::values_files`].
    pub file: String,
}

/// A failed render of one app: what was rendered, and why it failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderFailure {
    pub commit: String,
    /// The renderer settings and limits it ran with, as the planner keys them.
    pub settings: String,
    pub error: String,
}

/// A named label selector apps can target instead of repeating it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub name: String,
    /// Label selector over cluster labels (Kubernetes syntax, normalized).
    pub selector: String,
    /// Unix seconds.
    pub created_at: u64,
}

/// One entry of an app's revision history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionRecord {
    pub commit: String,
    /// Unix seconds when the hub recorded it.
    pub at: u64,
    /// `new-commit` (seen on the revision), `sync`, `rollback`, `create`.
    pub event: String,
    /// What caused it: `poll`, `webhook`, `admin`.
    pub trigger: String,
    pub author: String,
    pub summary: String,
    /// Commit time, unix seconds.
    pub committed_at: u64,
    /// Whether this event made the commit the deployed one.
    #[serde(default)]
    pub deployed: bool,
}

/// The latest status an agent reported for one app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRecord {
    pub cluster: String,
    pub status: switchyard_common::proto::AppStatus,
    /// Unix seconds when the hub received it.
    pub received_at: u64,
}

/// A bearer token for the admin API, stored under its name; the secret
/// itself is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenRecord {
    pub name: String,
    pub role: crate::roles::Role,
    /// Hex SHA-256 of the secret.
    pub hash: String,
    /// Unix seconds.
    pub created_at: u64,
    pub expires_at: Option<u64>,
    pub revoked_at: Option<u64>,
    pub last_used: Option<u64>,
}

impl ApiTokenRecord {
    /// Neither revoked nor expired at `now`.
    pub fn is_active(&self, now: u64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }
}

/// One admin API mutation, or one web sign-in or sign-out, as the audit
/// log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Unix seconds.
    pub at: u64,
    /// Name of the token used (`admin` for the built-in admin token).
    pub actor: String,
    pub role: crate::roles::Role,
    pub method: String,
    /// Request path, without the query.
    pub path: String,
    /// What the request acts on, such as `app web`.
    pub target: Option<String>,
    /// HTTP status of the answer.
    pub status: u16,
    /// The error message of a refused or failed request.
    pub message: Option<String>,
    pub remote: Option<String>,
}

/// Every record of a store, table by table, as raw keys and values: what
/// `switchyard backup` saves and `switchyard restore` loads. Values are the
/// records' JSON (bundles: their compressed bytes), keys as documented on
/// each table, so the format does not depend on the backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub tables: BTreeMap<String, Vec<Row>>,
}

/// One key and its value.
pub type Row = (Vec<u8>, Vec<u8>);

impl Snapshot {
    pub fn records(&self) -> usize {
        self.tables.values().map(Vec::len).sum()
    }

    pub fn count(&self, table: &str) -> usize {
        self.tables.get(table).map_or(0, Vec::len)
    }
}

/// The hub's durable state. Every method that returns `Ok` after a change has
/// made that change durable: it survives a kill -9 of the hub.
pub trait Store: Send + Sync + 'static {
    /// Register a new cluster together with its first bootstrap token.
    fn create_cluster(
        &self,
        cluster: &ClusterRecord,
        token_hash: &str,
        token: &TokenRecord,
    ) -> Result<()>;

    fn cluster(&self, name: &ClusterName) -> Result<Option<ClusterRecord>>;

    fn clusters(&self) -> Result<Vec<ClusterRecord>>;

    /// Every cluster without its assignment's details, by name, from
    /// memory: what lists and pages read instead of [`Store::clusters`].
    fn cluster_summaries(&self) -> Result<Vec<std::sync::Arc<ClusterSummary>>>;

    /// Change a cluster in place; `None` if it does not exist. `durable`
    /// chooses whether to wait for the disk (facts and last-seen need not).
    fn update_cluster(
        &self,
        name: &ClusterName,
        durable: bool,
        change: &mut dyn FnMut(&mut ClusterRecord),
    ) -> Result<Option<ClusterRecord>>;

    /// Make every change so far durable: one wait for the disk after many
    /// `update_cluster(…, false, …)` (a planning pass over the fleet).
    fn flush(&self) -> Result<()>;

    /// Remove a cluster, revoke every certificate it holds and drop its
    /// tokens, all at once.
    fn remove_cluster(&self, name: &ClusterName, now: u64) -> Result<Option<ClusterRecord>>;

    /// Mint another bootstrap token for an existing cluster (re-enrollment).
    fn create_token(&self, token_hash: &str, token: &TokenRecord) -> Result<()>;

    /// Look a token up without using it.
    fn token(&self, token_hash: &str) -> Result<Option<TokenRecord>>;

    /// Spend a token and record the certificate issued with it, atomically:
    /// either the token is used, the cluster enrolled and the serials it
    /// held before revoked, or none of these.
    fn redeem_token(
        &self,
        token_hash: &str,
        now: u64,
        serial: &str,
        cert_not_after: u64,
    ) -> Result<ClusterRecord>;

    fn is_revoked(&self, serial: &str) -> Result<bool>;

    fn create_repo(&self, repo: &RepoRecord) -> Result<()>;
    fn repo(&self, name: &str) -> Result<Option<RepoRecord>>;
    fn repos(&self) -> Result<Vec<RepoRecord>>;
    fn update_repo(
        &self,
        name: &str,
        durable: bool,
        change: &mut dyn FnMut(&mut RepoRecord),
    ) -> Result<Option<RepoRecord>>;
    fn remove_repo(&self, name: &str) -> Result<Option<RepoRecord>>;

    fn create_app(&self, app: &AppRecord) -> Result<()>;
    fn app(&self, name: &str) -> Result<Option<AppRecord>>;
    fn apps(&self) -> Result<Vec<AppRecord>>;
    fn update_app(
        &self,
        name: &str,
        durable: bool,
        change: &mut dyn FnMut(&mut AppRecord),
    ) -> Result<Option<AppRecord>>;
    /// Remove an app and its history.
    fn remove_app(&self, name: &str) -> Result<Option<AppRecord>>;

    fn create_group(&self, group: &GroupRecord) -> Result<()>;
    fn group(&self, name: &str) -> Result<Option<GroupRecord>>;
    fn groups(&self) -> Result<Vec<GroupRecord>>;
    /// Replace a group's record (durable); `None` if it does not exist.
    fn update_group(
        &self,
        name: &str,
        change: &mut dyn FnMut(&mut GroupRecord),
    ) -> Result<Option<GroupRecord>>;
    fn remove_group(&self, name: &str) -> Result<Option<GroupRecord>>;

    /// Append to an app's history (durable).
    fn append_revision(&self, app: &str, revision: &RevisionRecord) -> Result<()>;
    /// An app's history, oldest first.
    fn revisions(&self, app: &str) -> Result<Vec<RevisionRecord>>;

    /// Replace what a cluster reported: one record per app it runs. Not
    /// flushed: agents report again on every change and heartbeat.
    fn put_statuses(&self, cluster: &str, statuses: &[StatusRecord]) -> Result<()>;
    /// Every cluster's latest reports.
    fn statuses(&self) -> Result<Vec<StatusRecord>>;

    /// Store a bundle under its digest (idempotent, durable).
    fn put_bundle(&self, digest: &str, compressed: &[u8]) -> Result<()>;
    fn bundle(&self, digest: &str) -> Result<Option<Vec<u8>>>;
    fn has_bundle(&self, digest: &str) -> Result<bool>;

    /// Store an admin API token (durable). Refused while a token of that
    /// name is active at `now`; an expired or revoked one is replaced, and
    /// its secret stops being recognised.
    fn create_api_token(&self, token: &ApiTokenRecord, now: u64) -> Result<()>;
    fn api_token(&self, name: &str) -> Result<Option<ApiTokenRecord>>;
    /// The token whose secret hashes to `hash`.
    fn api_token_by_hash(&self, hash: &str) -> Result<Option<ApiTokenRecord>>;
    fn api_tokens(&self) -> Result<Vec<ApiTokenRecord>>;
    /// Mark a token revoked at `now` (durable); one already revoked keeps
    /// its first revocation time. `None` if there is no such token.
    fn revoke_api_token(&self, name: &str, now: u64) -> Result<Option<ApiTokenRecord>>;
    /// Record a use of a token. Not flushed: losing a few seconds of
    /// last-used times to a crash is harmless.
    fn touch_api_token(&self, name: &str, now: u64) -> Result<()>;

    /// Append to the audit log (durable). There is no way to change or
    /// remove an entry.
    fn append_audit(&self, entry: &AuditRecord) -> Result<()>;
    /// Audit entries at or after `since` (unix seconds), oldest first; the
    /// newest `limit` of them when there are more.
    fn audit(&self, since: u64, limit: usize) -> Result<Vec<AuditRecord>>;

    /// Every table at one moment: no write is half-applied in it.
    fn snapshot(&self) -> Result<Snapshot>;
    /// Load a snapshot into this store, which must be empty (durable).
    fn restore(&self, snapshot: &Snapshot) -> Result<()>;
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
