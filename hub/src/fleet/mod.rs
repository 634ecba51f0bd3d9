//! Fleet operations: registering, enrolling, renewing and removing clusters.
//!
//! This is the hub's domain layer: the admin API and the agent endpoint both
//! call into it, and it owns the rules (single-use tokens, certificate
//! binding, revocation) whatever the transport.
//!
//! By concern: `clusters` (register, list, label, remove), `enrollment`
//! (bootstrap tokens, certificates, peer authentication), `reports` (status
//! reports and the status table), `assignments` (what each cluster is
//! given, how its bundles are served and how it is told of a change).

mod assignments;
mod clusters;
mod diffs;
mod enrollment;
mod events;
mod reports;

pub use assignments::Notifier;
pub use clusters::{ClusterView, JoinInfo, validate_label};
pub use diffs::{AppDiffView, ClusterDiffView, DiffError, MAX_CLUSTERS_PER_DIFF, ObjectDiffView};
pub use events::{EVENT_BUFFER, FleetEvent};
pub use reports::{AppStatusPage, StatusView};

use crate::registry::Registry;
use crate::status_reports::PairStates;
use crate::store::{self, Store};
use reports::Reports;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchyard_certs::CertificateAuthority;
use switchyard_common::ClusterName;
use switchyard_common::NameError;
use switchyard_common::proto::ErrorCode;

/// Error from a fleet operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("signing the cluster certificate")]
    Sign(#[source] switchyard_certs::Error),
    #[error("invalid label {0:?}: {1}")]
    InvalidLabel(String, String),
    #[error(transparent)]
    InvalidName(#[from] NameError),
    #[error("certificate serial {0} is revoked")]
    Revoked(String),
    #[error("certificate serial {serial} is not the current certificate of cluster {cluster}")]
    UnknownCertificate {
        cluster: ClusterName,
        serial: String,
    },
    /// An assigned bundle the hub cannot serve: missing from the store, or
    /// beyond the frame limit of this release. A fault of the hub, not of
    /// the agent's request.
    #[error("bundle {digest} is assigned but cannot be served: {reason}")]
    BundleUnavailable { digest: String, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The protocol error code an agent sees for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Store(store::Error::TokenUnknown) => ErrorCode::TokenUnknown,
            Error::Store(store::Error::TokenUsed { .. }) => ErrorCode::TokenUsed,
            Error::Store(store::Error::TokenExpired { .. }) => ErrorCode::TokenExpired,
            Error::Store(store::Error::ClusterNotFound(_))
            | Error::Revoked(_)
            | Error::UnknownCertificate { .. } => ErrorCode::Revoked,
            Error::Sign(_) | Error::InvalidLabel(..) | Error::InvalidName(_) => {
                ErrorCode::BadRequest
            }
            Error::Store(_) | Error::BundleUnavailable { .. } => ErrorCode::Internal,
        }
    }
}

/// How stale a cluster's stored last-seen time may be while its agent keeps
/// reporting.
pub const LAST_SEEN_RESOLUTION: Duration = Duration::from_secs(60);

/// Hub settings the fleet rules depend on.
#[derive(Debug, Clone)]
pub struct FleetSettings {
    /// `HOST:PORT` agents dial, as printed in join commands.
    pub agent_address: String,
    /// Lifetime of cluster certificates.
    pub cert_ttl: Duration,
    /// How often agents report when nothing changes.
    pub heartbeat: Duration,
}

/// The hub's fleet state and the rules over it.
pub struct Fleet {
    store: Arc<dyn Store>,
    ca: CertificateAuthority,
    registry: Registry,
    settings: FleetSettings,
    metrics: crate::metrics::Metrics,
    readiness: crate::metrics::Readiness,
    /// The last status report of every cluster (see [`Reports`]); loaded
    /// from the store on first use.
    reports: Mutex<Option<Reports>>,
    /// What the fleet gauges count, moved as reports and assignments change;
    /// loaded from the store on first use. `reports` is locked while this
    /// is held, never the other way round.
    pair_states: Mutex<Option<PairStates>>,
    bundle_frames: crate::bundle_frames::BundleFrames,
    /// How agents are told of a change (see [`Fleet::notify`]).
    notifier: Option<Arc<dyn Notifier>>,
    /// Live changes for watchers (see [`Fleet::subscribe`]).
    events: tokio::sync::broadcast::Sender<FleetEvent>,
    /// Diff requests waiting for their agent (see [`Fleet::request_diff`]).
    diffs: diffs::PendingDiffs,
}

impl Fleet {
    pub fn new(store: Arc<dyn Store>, ca: CertificateAuthority, settings: FleetSettings) -> Self {
        Self {
            store,
            ca,
            registry: Registry::default(),
            settings,
            metrics: crate::metrics::Metrics::default(),
            readiness: crate::metrics::Readiness::default(),
            reports: Mutex::new(None),
            pair_states: Mutex::new(None),
            bundle_frames: crate::bundle_frames::BundleFrames::new(
                crate::bundle_frames::DEFAULT_BUDGET,
            ),
            notifier: None,
            events: tokio::sync::broadcast::channel(EVENT_BUFFER).0,
            diffs: diffs::PendingDiffs::default(),
        }
    }

    /// Tell connected agents of changes through `notifier` (the server
    /// passes the QUIC endpoint's).
    pub fn with_notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// What `/readyz` reports; the server marks each step as it happens.
    pub fn readiness(&self) -> &crate::metrics::Readiness {
        &self.readiness
    }

    /// The Prometheus exposition with the fleet gauges as they are now.
    /// Reads no store (but once, to load the gauges after a start): the
    /// gauges move as the fleet changes.
    pub fn encode_metrics(&self) -> Result<String> {
        self.with_pair_states(|_| ())?;
        Ok(self.metrics.encode(self.connected_count()))
    }

    pub fn settings(&self) -> &FleetSettings {
        &self.settings
    }

    pub fn ca(&self) -> &CertificateAuthority {
        &self.ca
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn connected_count(&self) -> usize {
        self.registry.connected_count()
    }
}

/// Shared by the fleet's unit tests.
#[cfg(test)]
mod test_support {
    use super::*;

    /// A sled store in a new temporary directory.
    pub(super) fn sled_store() -> (tempfile::TempDir, Arc<dyn Store>) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(crate::store::SledStore::open(&dir.path().join("store")).unwrap());
        (dir, store)
    }

    /// A fleet over `store`, with its CA in `dir` (created on first use).
    pub(super) fn fleet_over(store: &Arc<dyn Store>, dir: &std::path::Path) -> Fleet {
        let ca = CertificateAuthority::load_or_create(&dir.join("ca")).unwrap();
        let settings = FleetSettings {
            agent_address: "127.0.0.1:7700".into(),
            cert_ttl: Duration::from_secs(3600),
            heartbeat: Duration::from_secs(30),
        };
        Fleet::new(store.clone(), ca, settings)
    }
}
