//! The messages of the protocol and who sends them.

use super::Kind;
use crate::ClusterName;
use serde::{Deserialize, Serialize};

/// Every message of the protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Agent → hub, first message on the control stream of an mTLS connection.
    Hello(Hello),
    /// Hub → agent, the answer to [`Hello`].
    Welcome(Welcome),
    /// Agent → hub on a connection without a client certificate.
    Enroll(Enroll),
    /// Hub → agent, the answer to [`Enroll`].
    Enrolled(Enrolled),
    /// Hub → agent, on a stream the hub opens.
    Notify(Notification),
    /// Agent → hub request for the current assignment.
    GetAssignment(GetAssignment),
    /// Hub → agent, the answer to [`GetAssignment`].
    Assignment(Assignment),
    /// Agent → hub request for one bundle of its assignment.
    GetBundle(GetBundle),
    /// Hub → agent, the answer to [`GetBundle`].
    Bundle(Bundle),
    /// Agent → hub: facts and per-app status; also the heartbeat.
    ReportStatus(StatusReport),
    /// Hub → agent, the answer to [`StatusReport`].
    StatusAccepted(StatusAccepted),
    /// Agent → hub: sign a new certificate for this cluster.
    RenewCertificate(RenewCertificate),
    /// Hub → agent, the answer to [`RenewCertificate`].
    CertificateRenewed(CertificateRenewed),
    /// Either way: the request failed.
    Error(ErrorMessage),
    /// Agent → hub: the answer to [`Notification::DiffRequested`]; the hub
    /// answers [`StatusAccepted`].
    ReportDiff(ReportDiff),
}

impl Message {
    pub fn kind(&self) -> Kind {
        match self {
            Message::Hello(_) => Kind::Hello,
            Message::Welcome(_) => Kind::Welcome,
            Message::Enroll(_) => Kind::Enroll,
            Message::Enrolled(_) => Kind::Enrolled,
            Message::Notify(_) => Kind::Notify,
            Message::GetAssignment(_) => Kind::GetAssignment,
            Message::Assignment(_) => Kind::Assignment,
            Message::GetBundle(_) => Kind::GetBundle,
            Message::Bundle(_) => Kind::Bundle,
            Message::ReportStatus(_) => Kind::ReportStatus,
            Message::StatusAccepted(_) => Kind::StatusAccepted,
            Message::RenewCertificate(_) => Kind::RenewCertificate,
            Message::CertificateRenewed(_) => Kind::CertificateRenewed,
            Message::Error(_) => Kind::Error,
            Message::ReportDiff(_) => Kind::ReportDiff,
        }
    }

    /// Shorthand for an error answer.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Message {
        Message::Error(ErrorMessage {
            code,
            message: message.into(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub agent_version: String,
    /// `None` when the agent runs without a cluster (dry-run).
    pub kubernetes_version: Option<String>,
    /// The assignment generation the agent holds (0 if none).
    pub generation: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    pub cluster: ClusterName,
    pub hub_version: String,
    /// The current assignment generation of this cluster.
    pub generation: u64,
    /// How often the agent should report status when nothing changes.
    pub heartbeat_secs: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enroll {
    /// The single-use bootstrap token from `switchyard cluster add`.
    pub token: String,
    /// PKCS#10 request for the key the agent generated; only its public key is used.
    pub csr_pem: String,
    pub agent_version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrolled {
    pub cluster: ClusterName,
    pub cert_pem: String,
    pub ca_pem: String,
}

/// What the hub can tell an agent unprompted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Notification {
    /// The cluster's assignment is now at this generation.
    AssignmentChanged { generation: u64 },
    /// Renew the client certificate now (for example after a CA rotation).
    RenewCertificate,
    /// Report full status and refetch the assignment.
    Resync,
    /// Compute what a sync of `app` would change, against the agent's live
    /// view, and send it back as a [`ReportDiff`] with this `request_id`
    /// (protocol v4).
    DiffRequested { request_id: u64, app: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetAssignment {
    /// The generation the agent holds, so the hub can answer "unchanged" cheaply.
    pub known_generation: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub generation: u64,
    pub items: Vec<AssignmentItem>,
}

/// One app assigned to a cluster at one commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentItem {
    pub app: String,
    pub commit: String,
    /// Digest of the bundle (`sha256:` + hex).
    pub digest: String,
    pub namespace: Option<String>,
    pub prune: bool,
    pub self_heal: bool,
    /// What the app may do to objects it did not create (protocol v2).
    #[serde(default)]
    pub ownership: Ownership,
    /// Fields the app leaves to others (protocol v3): never drift, and
    /// applied with their live values (Argo CD's `ignoreDifferences` with
    /// `RespectIgnoreDifferences`).
    #[serde(default)]
    pub ignore_differences: Vec<IgnoreRule>,
    /// The commit an operator confirmed the prune of `Prune=confirm`
    /// objects for (`switchyard app sync APP --prune`; protocol v4). The
    /// agent deletes such objects only when it names `commit`: a
    /// confirmation never carries over to a later commit.
    #[serde(default)]
    pub prune_confirmed: Option<String>,
    /// Create `namespace` when it is missing (protocol v4); when false, a
    /// missing namespace fails the app and nothing is created.
    #[serde(default = "create_namespace_default")]
    pub create_namespace: bool,
    /// Every object of the app is pruned last, as if it carried
    /// `PruneLast=true` (Argo CD's app-level sync option; protocol v4).
    #[serde(default)]
    pub prune_last: bool,
    /// How many explicit syncs (`app sync`, a rollback) the app has had.
    /// When it grows, the agent writes every object of the app once, as
    /// for a new bundle, so an explicit sync repairs drift on an app
    /// without self-heal, as in Argo CD (protocol v4).
    #[serde(default)]
    pub sync_requested: u64,
}

fn create_namespace_default() -> bool {
    true
}

/// One `ignoreDifferences` rule: which objects (API group and kind, `*` for
/// any; name and namespace when set) and which of their fields, as JSON
/// pointers (RFC 6901) and jq path expressions (`jq_paths`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IgnoreRule {
    /// API group (`""` for the core group, `apps`, ...), or `*`.
    pub group: String,
    /// Kind (`Deployment`), or `*`.
    pub kind: String,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub json_pointers: Vec<String>,
    pub jq_path_expressions: Vec<String>,
    /// Field managers (protocol v4): every field the live object's
    /// `managedFields` assign to one of them is left to it.
    #[serde(default)]
    pub managed_fields_managers: Vec<String>,
}

/// An app's opt-ins about objects it did not create and objects whose
/// deletion takes others along (docs/SECURITY.md, "What the agent
/// deletes"). All off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ownership {
    /// Write to objects that exist already and belong to no app (adopted
    /// objects are still never deleted).
    #[serde(default)]
    pub adopt: bool,
    /// Let prune and app deletion delete Namespaces the app created.
    #[serde(default)]
    pub prune_namespaces: bool,
    /// Let prune and app deletion delete CustomResourceDefinitions the app created.
    #[serde(default)]
    pub prune_crds: bool,
    /// Take over fields other field managers own.
    #[serde(default)]
    pub force_conflicts: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetBundle {
    pub digest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    pub digest: String,
    /// zstd-compressed canonical bundle; the agent verifies it against `digest`.
    pub compressed: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub agent_version: String,
    pub kubernetes_version: Option<String>,
    pub apps: Vec<AppStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppStatus {
    pub app: String,
    pub commit: String,
    pub digest: String,
    pub sync: SyncStatus,
    pub health: Health,
    pub resources: Vec<ResourceStatus>,
    pub last_error: Option<String>,
    /// Unix seconds at which the agent observed this status.
    pub observed_at: u64,
}

impl AppStatus {
    /// Equal but for when it was observed: nothing new to report or store.
    /// Compared field by field, without copies (agents and the hub run this
    /// on every status); the pattern names every field, so a new one cannot
    /// be forgotten here.
    pub fn same_facts(&self, other: &AppStatus) -> bool {
        let AppStatus {
            app,
            commit,
            digest,
            sync,
            health,
            resources,
            last_error,
            observed_at: _,
        } = self;
        (app, commit, digest, sync, health, resources, last_error)
            == (
                &other.app,
                &other.commit,
                &other.digest,
                &other.sync,
                &other.health,
                &other.resources,
                &other.last_error,
            )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceStatus {
    pub group: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub sync: SyncStatus,
    pub health: Health,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SyncStatus {
    Synced,
    OutOfSync,
    Unknown,
    /// A dry-run agent without a cluster planned the objects (printed them)
    /// and applied nothing. Last, so that the positions of the others (and
    /// with them every report an older agent sends) stay as they were.
    Planned,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Health {
    Healthy,
    Progressing,
    Degraded,
    Missing,
    Suspended,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusAccepted {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewCertificate {
    pub csr_pem: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRenewed {
    pub cert_pem: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorMessage {
    pub code: ErrorCode,
    pub message: String,
}

impl std::fmt::Display for ErrorMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:?})", self.message, self.code)
    }
}

/// Machine-readable reason of an [`ErrorMessage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The frame could not be decoded or was not expected here.
    BadRequest,
    /// The request needs a client certificate.
    Unauthenticated,
    /// The cluster may not see this.
    Forbidden,
    NotFound,
    /// The bootstrap token is not known to the hub.
    TokenUnknown,
    /// The bootstrap token was already used to enroll.
    TokenUsed,
    /// The bootstrap token expired before it was used.
    TokenExpired,
    /// The peer speaks another protocol version.
    UnsupportedVersion,
    /// The cluster was removed; its certificate is revoked.
    Revoked,
    Internal,
    /// Too many attempts from the peer's address; the message says when to retry.
    RateLimited,
}

/// Most objects one [`ReportDiff`] lists; past it the report says
/// `truncated`.
pub const DIFF_MAX_OBJECTS: usize = 500;
/// Most bytes of diff text one [`ReportDiff`] carries in total; past it
/// the report says `truncated`. Well below the kind's 1 MiB frame limit,
/// which also holds the object names.
pub const DIFF_MAX_BYTES: usize = 640 * 1024;

/// Agent → hub: what a sync of one app would change on the agent's
/// cluster, desired against live, computed from the agent's live view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportDiff {
    /// The `request_id` of the [`Notification::DiffRequested`] answered.
    pub request_id: u64,
    pub app: String,
    /// The objects a sync would change; in sync objects are left out.
    pub objects: Vec<ObjectDiff>,
    /// More objects differ than the report holds ([`DIFF_MAX_OBJECTS`],
    /// [`DIFF_MAX_BYTES`]).
    pub truncated: bool,
    /// Why no diff could be computed (the app is not assigned here, the
    /// agent has no cluster, the live view is not synced yet).
    pub error: Option<String>,
}

/// One object a sync would change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectDiff {
    /// `apps/v1`, `v1`, ...
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub change: Change,
    /// A unified diff of YAML from live to desired; Secret values are
    /// masked.
    pub diff: String,
}

/// What a sync would do to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Change {
    Create,
    Update,
    /// Prune would delete it.
    Delete,
}
