//! Fleet operations: registering, enrolling, renewing and removing clusters.
//!
//! This is the hub's domain layer: the admin API and the agent endpoint both
//! call into it, and it owns the rules (single-use tokens, certificate
//! binding, revocation) whatever the transport.

use crate::bundle_frames::LoadError;
use crate::clock::{unix_now, unix_seconds};
use crate::registry::Registry;
use crate::status_reports::PairStates;
use crate::store::{self, ClusterRecord, StatusRecord, Store, TokenRecord};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchyard_certs::{CertificateAuthority, PeerIdentity};
use switchyard_common::proto::{AppStatus, Assignment, ErrorCode, Notification, close_code};
use switchyard_common::{ClusterName, NameError};
use tracing::{debug, info, warn};

/// See [`Fleet::adopt_after_restore`].
const RESTORE_SIGNING_MARGIN_SECS: u64 = 60;

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

/// A cluster and the one-time command that enrolls its agent.
#[derive(utoipa::ToSchema, Debug, Clone, Serialize, Deserialize)]
pub struct JoinInfo {
    pub cluster: ClusterView,
    pub token: String,
    pub token_expires: String,
    pub join_command: String,
}

/// A cluster as the admin API and CLI show it.
#[derive(utoipa::ToSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterView {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// `pending` until its agent enrolls, then `enrolled`.
    pub state: String,
    pub connected: bool,
    pub created_at: String,
    pub enrolled_at: Option<String>,
    pub last_seen: Option<String>,
    pub agent_version: Option<String>,
    pub kubernetes_version: Option<String>,
    pub cert_expires: Option<String>,
    pub generation: u64,
}

/// One row of `switchyard status`.
#[derive(utoipa::ToSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusView {
    pub app: String,
    pub cluster: String,
    /// `Synced`, `OutOfSync`, or `Unknown` until the agent reports the assigned bundle.
    pub sync: String,
    pub health: String,
    /// Commit the hub assigned.
    pub desired_commit: String,
    /// Commit the agent last reported as applied.
    pub applied_commit: Option<String>,
    pub message: Option<String>,
    pub connected: bool,
    /// When the agent observed this status (RFC 3339).
    pub observed_at: Option<String>,
    /// The objects of the app as the agent last reported them.
    #[schema(value_type = Vec<Object>)]
    pub resources: Vec<switchyard_common::proto::ResourceStatus>,
}

impl StatusView {
    fn new(
        cluster: &ClusterName,
        item: &switchyard_common::proto::AssignmentItem,
        report: Option<&StatusRecord>,
        connected: bool,
    ) -> StatusView {
        let current = report.filter(|r| r.status.digest == item.digest);
        let (sync, health, message) = match (report, current) {
            (_, Some(r)) => (
                format!("{:?}", r.status.sync),
                format!("{:?}", r.status.health),
                r.status.last_error.clone().or_else(|| {
                    r.status.resources.iter().find_map(|row| {
                        row.message
                            .clone()
                            .map(|m| format!("{} {}: {m}", row.kind, row.name))
                    })
                }),
            ),
            (Some(_), None) => (
                "OutOfSync".into(),
                "Progressing".into(),
                Some("the agent has not applied the assigned revision yet".into()),
            ),
            (None, None) => (
                "Unknown".into(),
                "Unknown".into(),
                Some(if connected {
                    "waiting for the agent's first report".into()
                } else {
                    "agent not connected".into()
                }),
            ),
        };
        StatusView {
            app: item.app.clone(),
            cluster: cluster.to_string(),
            sync,
            health,
            desired_commit: item.commit.clone(),
            applied_commit: report.map(|r| r.status.commit.clone()),
            message,
            connected,
            observed_at: report.map(|r| rfc3339(r.status.observed_at)),
            resources: current
                .map(|r| r.status.resources.clone())
                .unwrap_or_default(),
        }
    }
}

/// Labels in Kubernetes form: optional DNS prefix and `/`, a name of at most
/// 63 characters, values of at most 63 characters.
pub fn validate_label(key: &str, value: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::InvalidLabel(format!("{key}={value}"), why.into()));
    let name = key.rsplit_once('/').map_or(key, |(_, n)| n);
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let ok_edge = |s: &str| {
        s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && s.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
    };
    if name.is_empty() || name.len() > 63 || !name.chars().all(ok_char) || !ok_edge(name) {
        return bad("keys are up to 63 of [A-Za-z0-9-_.], starting and ending alphanumeric");
    }
    if let Some((prefix, _)) = key.rsplit_once('/')
        && (prefix.is_empty()
            || prefix.len() > 253
            || !prefix.split('.').all(|l| ClusterName::new(l).is_ok()))
    {
        return bad("a key prefix must be a DNS subdomain");
    }
    if value.len() > 63 || !value.chars().all(ok_char) || (!value.is_empty() && !ok_edge(value)) {
        return bad("values are up to 63 of [A-Za-z0-9-_.], starting and ending alphanumeric");
    }
    Ok(())
}

/// SHA-256 of a bootstrap token; only this is stored.
fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn new_token_record(cluster: &ClusterName, now: u64, ttl: Duration) -> (String, TokenRecord) {
    let record = TokenRecord {
        cluster: cluster.clone(),
        expires_at: now + ttl.as_secs().max(1),
        used_at: None,
    };
    (new_token(), record)
}

fn new_token() -> String {
    let mut secret = [0u8; 24];
    rand::rng().fill_bytes(&mut secret);
    format!("syb_{}", hex::encode(secret))
}

pub fn rfc3339(unix: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(unix)).to_string()
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
    /// Notifications on their way, bounded (see [`Fleet::notify`]).
    notifications: Arc<tokio::sync::Semaphore>,
}

/// Notifications the hub has on their way at once, per processor. A
/// notification is on its way until the agent acknowledges it, and the
/// agent acts on it at once (fetches its assignment, then the bundle), so
/// this bounds how many agents start an update per round trip: when the
/// hub is busy its round trips lengthen and the notifications slow down
/// with them, instead of 10,000 agents asking at the same instant and
/// overflowing the socket's receive queue.
const NOTIFICATIONS_PER_PROCESSOR: usize = 128;

/// Longest a notification counts as on its way: an agent that does not
/// acknowledge within this time no longer holds up the others.
const NOTIFICATION_ACK_WAIT: Duration = Duration::from_secs(2);

/// Every cluster's last status report, as received, mirroring the store's
/// status table. An agent reports on every heartbeat and every connection,
/// almost always the same thing: a report that differs from the stored one
/// only in its timestamps is kept here and written at most once per
/// [`LAST_SEEN_RESOLUTION`], so 10,000 agents reconnecting or reporting do
/// not rewrite 10,000 records. Losing those timestamps to a crash is
/// harmless: agents report again on every connection.
#[derive(Default)]
struct Reports {
    by_cluster: HashMap<String, LatestReport>,
}

struct LatestReport {
    records: Vec<StatusRecord>,
    /// When the stored copy was written (its `received_at`).
    stored_at: u64,
}

/// Two reports that differ at most in when they were observed and received.
/// Compared field by field, without copies: this runs on every report. The
/// pattern names every field, so a new one cannot be forgotten here.
fn same_facts(a: &[StatusRecord], b: &[StatusRecord]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(a, b)| {
            let AppStatus {
                app,
                commit,
                digest,
                sync,
                health,
                resources,
                last_error,
                observed_at: _,
            } = &a.status;
            (app, commit, digest, sync, health, resources, last_error)
                == (
                    &b.status.app,
                    &b.status.commit,
                    &b.status.digest,
                    &b.status.sync,
                    &b.status.health,
                    &b.status.resources,
                    &b.status.last_error,
                )
        })
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
            notifications: Arc::new(tokio::sync::Semaphore::new(
                NOTIFICATIONS_PER_PROCESSOR
                    * std::thread::available_parallelism().map_or(1, usize::from),
            )),
        }
    }

    /// Run `f` over the report cache, loading it from the store first if
    /// this is its first use.
    fn with_reports<T>(&self, f: impl FnOnce(&mut Reports) -> T) -> Result<T> {
        let mut guard = self.reports.lock().expect("reports lock");
        if guard.is_none() {
            let mut reports = Reports::default();
            for record in self.store.statuses()? {
                let latest = reports
                    .by_cluster
                    .entry(record.cluster.clone())
                    .or_insert_with(|| LatestReport {
                        records: Vec::new(),
                        stored_at: record.received_at,
                    });
                latest.stored_at = latest.stored_at.min(record.received_at);
                latest.records.push(record);
            }
            *guard = Some(reports);
        }
        Ok(f(guard.as_mut().expect("loaded above")))
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

    /// The `(sync, health)` of `cluster`'s assigned apps as its latest
    /// report shows them.
    fn pair_states_of(&self, cluster: &ClusterRecord) -> Result<Vec<(String, String)>> {
        let records = self.with_reports(|reports| {
            reports
                .by_cluster
                .get(cluster.name.as_str())
                .map(|latest| latest.records.clone())
                .unwrap_or_default()
        })?;
        Ok(cluster
            .assignment
            .iter()
            .map(|item| {
                let report = records
                    .iter()
                    .find(|r| r.status.app == item.app)
                    .map(|r| &r.status);
                crate::status_reports::pair_state(item, report)
            })
            .collect())
    }

    /// Run `f` over the gauges' pair states, loading them (one pass over
    /// the fleet) on first use.
    fn with_pair_states<T>(&self, f: impl FnOnce(&mut PairStates) -> T) -> Result<T> {
        let mut guard = self.pair_states.lock().expect("pair states lock");
        if guard.is_none() {
            let mut states = PairStates::default();
            for cluster in self.store.clusters()? {
                let pairs = self.pair_states_of(&cluster)?;
                states.replace(cluster.name.as_str(), pairs, &self.metrics);
            }
            *guard = Some(states);
        }
        Ok(f(guard.as_mut().expect("loaded above")))
    }

    /// Move the fleet gauges after `cluster`'s assignment or report
    /// changed. A store error leaves them as they were (and is logged): the
    /// gauges must not fail a report or a planning pass.
    ///
    /// The cluster and its report are read under the gauges' lock, so of
    /// two refreshes at once (a report and a planning pass) the later one
    /// counts what is latest.
    pub(crate) fn refresh_gauges(&self, cluster: &ClusterName) {
        let refreshed = self.with_pair_states(|states| -> Result<()> {
            let pairs = match self.store.cluster(cluster)? {
                Some(record) => self.pair_states_of(&record)?,
                None => Vec::new(),
            };
            states.replace(cluster.as_str(), pairs, &self.metrics);
            Ok(())
        });
        if let Err(error) = refreshed.and_then(|inner| inner) {
            warn!(%cluster, error = %switchyard_common::error_chain(&error), "fleet gauges not updated");
        }
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

    pub fn view(&self, record: &ClusterRecord) -> ClusterView {
        ClusterView {
            name: record.name.to_string(),
            labels: record.labels.clone(),
            state: if record.enrolled_at.is_some() {
                "enrolled".into()
            } else {
                "pending".into()
            },
            connected: self.registry.is_connected(&record.name),
            created_at: rfc3339(record.created_at),
            enrolled_at: record.enrolled_at.map(rfc3339),
            last_seen: record.last_seen.map(rfc3339),
            agent_version: record.agent_version.clone(),
            kubernetes_version: record.kubernetes_version.clone(),
            cert_expires: record.cert_not_after.map(rfc3339),
            generation: record.generation,
        }
    }

    /// Register a cluster and mint its single-use bootstrap token.
    pub fn add_cluster(
        &self,
        name: ClusterName,
        labels: BTreeMap<String, String>,
        token_ttl: Duration,
    ) -> Result<JoinInfo> {
        for (k, v) in &labels {
            validate_label(k, v)?;
        }
        let now = unix_now();
        let (token, record) = new_token_record(&name, now, token_ttl);
        let cluster = ClusterRecord::new(name.clone(), labels, now);
        self.store
            .create_cluster(&cluster, &token_hash(&token), &record)?;
        info!(cluster = %name, expires_at = record.expires_at, "cluster registered");
        Ok(self.join_info(&cluster, token, &record))
    }

    /// Mint a new bootstrap token for an existing cluster, for an agent that
    /// lost its identity or never used the first token. Enrolling with it
    /// replaces the cluster's certificate.
    pub fn new_bootstrap_token(&self, name: &ClusterName, token_ttl: Duration) -> Result<JoinInfo> {
        let (token, record) = new_token_record(name, unix_now(), token_ttl);
        self.store.create_token(&token_hash(&token), &record)?;
        let cluster = self
            .store
            .cluster(name)?
            .ok_or_else(|| store::Error::ClusterNotFound(name.clone()))?;
        info!(cluster = %name, expires_at = record.expires_at, "bootstrap token minted");
        Ok(self.join_info(&cluster, token, &record))
    }

    fn join_info(&self, cluster: &ClusterRecord, token: String, record: &TokenRecord) -> JoinInfo {
        // The token goes in the environment, not the arguments: a command
        // line is readable by every local user in /proc.
        let join_command = format!(
            "SWITCHYARD_JOIN_TOKEN={} switchyard-agent join --hub {} --ca-sha256 {}",
            token,
            self.settings.agent_address,
            self.ca.fingerprint()
        );
        JoinInfo {
            cluster: self.view(cluster),
            token,
            token_expires: rfc3339(record.expires_at),
            join_command,
        }
    }

    pub fn clusters(&self) -> Result<Vec<ClusterView>> {
        Ok(self
            .store
            .clusters()?
            .iter()
            .map(|c| self.view(c))
            .collect())
    }

    pub fn cluster(&self, name: &ClusterName) -> Result<Option<ClusterView>> {
        Ok(self.store.cluster(name)?.map(|c| self.view(&c)))
    }

    /// Remove a cluster: revoke its certificates and cut its connection now.
    pub fn remove_cluster(&self, name: &ClusterName) -> Result<Option<ClusterView>> {
        let Some(record) = self.store.remove_cluster(name, unix_now())? else {
            return Ok(None);
        };
        // Its reports must not greet a new cluster of the same name.
        self.store.put_statuses(name.as_str(), &[])?;
        self.with_reports(|r| r.by_cluster.remove(name.as_str()))?;
        self.refresh_gauges(name);
        let mut view = self.view(&record);
        self.registry
            .disconnect(name, close_code::REVOKED, "cluster removed from the hub");
        view.connected = false;
        info!(cluster = %name, serials = ?record.serials, "cluster removed and its certificates revoked");
        Ok(Some(view))
    }

    /// Set and remove labels; the cluster's assignment follows.
    pub fn label_cluster(
        &self,
        name: &ClusterName,
        set: &BTreeMap<String, String>,
        remove: &[String],
    ) -> Result<Option<ClusterView>> {
        for (k, v) in set {
            validate_label(k, v)?;
        }
        let updated = self.store.update_cluster(name, true, &mut |c| {
            for key in remove {
                c.labels.remove(key);
            }
            c.labels
                .extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
        })?;
        let Some(record) = updated else {
            return Ok(None);
        };
        Ok(Some(self.view(&record)))
    }

    /// Tell a connected agent something, on a stream the hub opens over the
    /// agent's own connection (the only way to reach an agent behind NAT).
    /// Notifications go out in the order asked, a bounded number at a time
    /// (`NOTIFICATIONS_PER_PROCESSOR`), each until its agent acknowledges it.
    pub fn notify(&self, cluster: &ClusterName, notification: Notification) {
        if let Some(conn) = self.registry.connection(cluster) {
            let cluster = cluster.clone();
            let on_its_way = self.notifications.clone();
            tokio::spawn(async move {
                // `Err` only for a closed semaphore; nothing closes it.
                let Ok(_turn) = on_its_way.acquire_owned().await else {
                    return;
                };
                if let Err(error) =
                    crate::agents::send_notification(&conn, &notification, NOTIFICATION_ACK_WAIT)
                        .await
                {
                    warn!(%cluster, %error, "notification not delivered; the agent resyncs on reconnect");
                }
            });
        }
    }

    /// Enroll an agent: spend its token and sign its CSR for the token's cluster.
    pub fn enroll(&self, token: &str, csr_pem: &str) -> Result<(ClusterName, String)> {
        let hash = token_hash(token);
        // Peek first to learn which cluster the certificate is for; the
        // redemption below re-checks everything atomically.
        let Some(pending) = self.store.token(&hash)? else {
            return Err(store::Error::TokenUnknown.into());
        };
        let now = unix_now();
        if let Some(used_at) = pending.used_at {
            return Err(store::Error::TokenUsed { used_at }.into());
        }
        if pending.expires_at <= now {
            return Err(store::Error::TokenExpired {
                expired_at: pending.expires_at,
            }
            .into());
        }
        let issued = self
            .ca
            .sign_cluster_csr(csr_pem, &pending.cluster, self.settings.cert_ttl)
            .map_err(Error::Sign)?;
        let record =
            self.store
                .redeem_token(&hash, now, &issued.serial, unix_seconds(issued.not_after))?;
        // The store revoked the serials the cluster held before; a
        // connection made with one of them goes now, not at its next
        // reconnect. The new agent has not connected yet: it connects once
        // it has this answer.
        self.registry.disconnect(
            &record.name,
            close_code::REVOKED,
            "cluster enrolled again: this certificate is revoked",
        );
        info!(cluster = %record.name, serial = %issued.serial, "cluster enrolled");
        Ok((record.name, issued.cert_pem))
    }

    /// Check a connecting agent's certificate against the fleet: the cluster
    /// must exist, and the serial must be one it holds and not revoked.
    pub fn authenticate(&self, peer: &PeerIdentity) -> Result<ClusterRecord> {
        if self.store.is_revoked(&peer.serial)? {
            return Err(Error::Revoked(peer.serial.clone()));
        }
        let Some(record) = self.store.cluster(&peer.cluster)? else {
            return Err(store::Error::ClusterNotFound(peer.cluster.clone()).into());
        };
        if !record.serials.contains(&peer.serial) {
            if let Some(adopted) = self.adopt_after_restore(&record, peer)? {
                return Ok(adopted);
            }
            return Err(Error::UnknownCertificate {
                cluster: peer.cluster.clone(),
                serial: peer.serial.clone(),
            });
        }
        Ok(record)
    }

    /// After `switchyard restore`, an agent may hold a certificate this hub's
    /// CA signed after the backup was taken (a renewal the backup missed).
    /// Such a certificate is accepted once, and replaces the recorded serials
    /// as a renewal would; one signed before the backup and absent from it
    /// had already been replaced, and stays refused.
    fn adopt_after_restore(
        &self,
        record: &ClusterRecord,
        peer: &PeerIdentity,
    ) -> Result<Option<ClusterRecord>> {
        let Some(backup_at) = record.restored_from else {
            return Ok(None);
        };
        let signed_at = unix_seconds(peer.not_before) + switchyard_certs::BACKDATE.as_secs();
        // A renewal signed just before the snapshot may have been recorded
        // just after it: allow for the time between signing and recording.
        if signed_at + RESTORE_SIGNING_MARGIN_SECS < backup_at {
            return Ok(None);
        }
        let not_after = unix_seconds(peer.not_after);
        let updated = self.store.update_cluster(&record.name, true, &mut |c| {
            if c.restored_from.take().is_some() {
                c.serials.insert(0, peer.serial.clone());
                c.serials.truncate(2);
                c.cert_not_after = Some(not_after);
            }
        })?;
        let adopted = updated.filter(|c| c.serials.contains(&peer.serial));
        if let Some(record) = &adopted {
            info!(cluster = %record.name, serial = %peer.serial, "certificate issued after the restored backup accepted");
        }
        Ok(adopted)
    }

    /// Record what an agent tells about itself; not flushed: losing the last
    /// few seconds of last-seen to a crash is harmless. Nothing is written
    /// when the facts are unchanged and last-seen is less than
    /// [`LAST_SEEN_RESOLUTION`] old: every status report of every agent
    /// would otherwise rewrite its cluster record.
    pub fn record_facts(
        &self,
        cluster: &ClusterName,
        agent_version: &str,
        kubernetes_version: Option<&str>,
    ) -> Result<Option<ClusterRecord>> {
        let now = unix_now();
        let Some(record) = self.store.cluster(cluster)? else {
            return Ok(None);
        };
        let recent = record
            .last_seen
            .is_some_and(|seen| now.saturating_sub(seen) < LAST_SEEN_RESOLUTION.as_secs());
        if recent
            && record.agent_version.as_deref() == Some(agent_version)
            && record.kubernetes_version.as_deref() == kubernetes_version
        {
            return Ok(Some(record));
        }
        Ok(self.store.update_cluster(cluster, false, &mut |c| {
            c.last_seen = Some(now);
            c.agent_version = Some(agent_version.to_owned());
            c.kubernetes_version = kubernetes_version.map(str::to_owned);
        })?)
    }

    /// Sign a renewed certificate for a cluster whose agent connected with
    /// the certificate `serial`. The previous certificate stays valid (until
    /// it expires) so the live connection, established with it, is not cut.
    /// Only a current serial renews: a connection whose certificate was
    /// replaced since (re-enrollment, or renewed twice by someone else)
    /// cannot extend its life.
    pub fn renew(&self, cluster: &ClusterName, serial: &str, csr_pem: &str) -> Result<String> {
        let not_current = || Error::UnknownCertificate {
            cluster: cluster.clone(),
            serial: serial.to_owned(),
        };
        if self.store.is_revoked(serial)? {
            return Err(Error::Revoked(serial.to_owned()));
        }
        let record = self
            .store
            .cluster(cluster)?
            .ok_or_else(|| store::Error::ClusterNotFound(cluster.clone()))?;
        if !record.serials.iter().any(|s| s == serial) {
            return Err(not_current());
        }
        let issued = self
            .ca
            .sign_cluster_csr(csr_pem, cluster, self.settings.cert_ttl)
            .map_err(Error::Sign)?;
        let not_after = unix_seconds(issued.not_after);
        // Checked again in the update: a re-enrollment may have replaced the
        // serials while this one was signing.
        let mut current = false;
        let updated = self.store.update_cluster(cluster, true, &mut |c| {
            current = c.serials.iter().any(|s| s == serial);
            if current {
                c.serials.insert(0, issued.serial.clone());
                c.serials.truncate(2);
                c.cert_not_after = Some(not_after);
                c.restored_from = None;
            }
        })?;
        if updated.is_none() {
            return Err(store::Error::ClusterNotFound(cluster.clone()).into());
        }
        if !current {
            return Err(not_current());
        }
        info!(%cluster, serial = %issued.serial, "certificate renewed");
        Ok(issued.cert_pem)
    }

    /// Keep what an agent reported about its apps: those assigned to its
    /// cluster, bounded (`status_reports::admit`).
    pub fn record_status(
        &self,
        cluster: &ClusterName,
        apps: Vec<switchyard_common::proto::AppStatus>,
    ) -> Result<()> {
        let received_at = unix_now();
        let Some(record) = self.store.cluster(cluster)? else {
            return Err(store::Error::ClusterNotFound(cluster.clone()).into());
        };
        let admitted = crate::status_reports::admit(&record.assignment, apps);
        if !admitted.unassigned.is_empty() {
            debug!(%cluster, apps = ?admitted.unassigned, "status report names apps not assigned to the cluster; left out");
            self.metrics
                .status_apps_refused
                .inc_by(admitted.unassigned.len() as u64);
        }
        if admitted.rows_dropped > 0 {
            debug!(%cluster, rows = admitted.rows_dropped, limit = crate::status_reports::MAX_RESOURCES_PER_APP, "status report has more resource rows than kept per app; the rest left out");
            self.metrics
                .status_rows_dropped
                .inc_by(admitted.rows_dropped as u64);
        }
        let mut records: Vec<StatusRecord> = admitted
            .apps
            .into_iter()
            .map(|status| StatusRecord {
                cluster: cluster.to_string(),
                status,
                received_at,
            })
            .collect();
        // The store keys reports by app; keep the same order here.
        records.sort_by(|a, b| a.status.app.cmp(&b.status.app));
        // A repeat is kept in memory only; anything else comes back to be written.
        let to_write =
            self.with_reports(
                |reports| match reports.by_cluster.get_mut(cluster.as_str()) {
                    Some(latest)
                        if same_facts(&latest.records, &records)
                            && received_at.saturating_sub(latest.stored_at)
                                < LAST_SEEN_RESOLUTION.as_secs() =>
                    {
                        latest.records = records;
                        None
                    }
                    _ => Some(records),
                },
            )?;
        let Some(records) = to_write else {
            return Ok(());
        };
        // Written outside the cache's lock: reports of other clusters do not
        // wait for this one's write.
        self.store.put_statuses(cluster.as_str(), &records)?;
        self.with_reports(|reports| {
            reports.by_cluster.insert(
                cluster.to_string(),
                LatestReport {
                    records,
                    stored_at: received_at,
                },
            )
        })?;
        self.refresh_gauges(cluster);
        Ok(())
    }

    /// One row per (cluster, assigned app): what the hub assigned and what
    /// the agent last reported about it.
    pub fn status(&self, app: Option<&str>) -> Result<Vec<StatusView>> {
        let reports: HashMap<(String, String), StatusRecord> = self.with_reports(|reports| {
            reports
                .by_cluster
                .values()
                .flat_map(|latest| &latest.records)
                .map(|r| ((r.cluster.clone(), r.status.app.clone()), r.clone()))
                .collect()
        })?;
        let mut rows = Vec::new();
        for cluster in self.store.clusters()? {
            let connected = self.registry.is_connected(&cluster.name);
            for item in &cluster.assignment {
                if app.is_some_and(|a| a != item.app) {
                    continue;
                }
                let report = reports.get(&(cluster.name.to_string(), item.app.clone()));
                rows.push(StatusView::new(&cluster.name, item, report, connected));
            }
        }
        rows.sort_by(|a, b| (&a.app, &a.cluster).cmp(&(&b.app, &b.cluster)));
        Ok(rows)
    }

    /// The cluster's current assignment.
    pub fn assignment(&self, cluster: &ClusterName) -> Result<Assignment> {
        let record = self
            .store
            .cluster(cluster)?
            .ok_or_else(|| store::Error::ClusterNotFound(cluster.clone()))?;
        Ok(Assignment {
            generation: record.generation,
            items: record.assignment,
        })
    }

    /// The encoded `Bundle` reply for a digest, if it is in the cluster's
    /// assignment: an agent sees its own bundles and nothing else. Shared
    /// by every agent that asks for the same digest.
    pub(crate) fn bundle_frame(
        &self,
        cluster: &ClusterName,
        digest: &str,
    ) -> Result<Option<bytes::Bytes>> {
        let record = self
            .store
            .cluster(cluster)?
            .ok_or_else(|| store::Error::ClusterNotFound(cluster.clone()))?;
        if !record.assignment.iter().any(|item| item.digest == digest) {
            return Ok(None);
        }
        let unavailable = |reason: String| Error::BundleUnavailable {
            digest: digest.to_owned(),
            reason,
        };
        match self
            .bundle_frames
            .get_or_load(digest, || self.store.bundle(digest))
        {
            Ok(Some(frame)) => Ok(Some(frame)),
            Ok(None) => Err(unavailable("not in the store".to_owned())),
            Err(LoadError::Load(error)) => Err(error.into()),
            Err(error @ LoadError::Unsendable(_)) => {
                Err(unavailable(switchyard_common::error_chain(&error)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_common::proto::{Health, SyncStatus};

    /// A sled store in a new temporary directory.
    fn sled_store() -> (tempfile::TempDir, Arc<dyn Store>) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(crate::store::SledStore::open(&dir.path().join("store")).unwrap());
        (dir, store)
    }

    /// A fleet over `store`, with its CA in `dir` (created on first use).
    fn fleet_over(store: &Arc<dyn Store>, dir: &std::path::Path) -> Fleet {
        let ca = CertificateAuthority::load_or_create(&dir.join("ca")).unwrap();
        let settings = FleetSettings {
            agent_address: "127.0.0.1:7700".into(),
            cert_ttl: Duration::from_secs(3600),
            heartbeat: Duration::from_secs(30),
        };
        Fleet::new(store.clone(), ca, settings)
    }

    fn report(sync: SyncStatus, observed_at: u64) -> Vec<AppStatus> {
        vec![AppStatus {
            app: "web".into(),
            commit: "c1".into(),
            digest: "sha256:d1".into(),
            sync,
            health: Health::Healthy,
            resources: Vec::new(),
            last_error: None,
            observed_at,
        }]
    }

    fn stored_observed_at(store: &Arc<dyn Store>) -> Vec<u64> {
        store
            .statuses()
            .unwrap()
            .iter()
            .map(|r| r.status.observed_at)
            .collect()
    }

    /// Register `name` with app `web` assigned (bundle `sha256:d1`).
    fn cluster_running_web(fleet: &Fleet, store: &Arc<dyn Store>, name: &ClusterName) {
        fleet
            .add_cluster(name.clone(), BTreeMap::new(), Duration::from_secs(60))
            .unwrap();
        store
            .update_cluster(name, true, &mut |c| {
                c.assignment = vec![switchyard_common::proto::AssignmentItem {
                    app: "web".into(),
                    commit: "c1".into(),
                    digest: "sha256:d1".into(),
                    namespace: None,
                    prune: true,
                    self_heal: false,
                    ownership: Default::default(),
                }];
            })
            .unwrap();
    }

    #[test]
    fn repeated_status_reports_are_not_rewritten_but_changes_are() {
        let (dir, store) = sled_store();
        let fleet = fleet_over(&store, dir.path());
        let name = ClusterName::new("edge-1").unwrap();
        cluster_running_web(&fleet, &store, &name);
        fleet
            .record_status(&name, report(SyncStatus::Synced, 100))
            .unwrap();
        assert_eq!(stored_observed_at(&store), [100]);

        // The same facts again: kept in memory, the store is not written.
        fleet
            .record_status(&name, report(SyncStatus::Synced, 130))
            .unwrap();
        assert_eq!(stored_observed_at(&store), [100]);
        let latest = fleet
            .with_reports(|r| r.by_cluster["edge-1"].records[0].status.observed_at)
            .unwrap();
        assert_eq!(latest, 130, "what `status` shows is the latest report");

        // Different facts: written at once.
        fleet
            .record_status(&name, report(SyncStatus::OutOfSync, 160))
            .unwrap();
        assert_eq!(stored_observed_at(&store), [160]);

        // A restarted hub starts from the store and does not rewrite a repeat.
        drop(fleet);
        let fleet = fleet_over(&store, dir.path());
        fleet
            .record_status(&name, report(SyncStatus::OutOfSync, 190))
            .unwrap();
        assert_eq!(stored_observed_at(&store), [160]);
        fleet
            .record_status(&name, report(SyncStatus::Synced, 220))
            .unwrap();
        assert_eq!(stored_observed_at(&store), [220]);
    }

    #[test]
    fn an_agent_gets_its_assigned_bundles_only_and_a_lost_one_is_the_hubs_fault() {
        let (dir, store) = sled_store();
        let fleet = fleet_over(&store, dir.path());
        let name = ClusterName::new("edge-1").unwrap();
        fleet
            .add_cluster(name.clone(), BTreeMap::new(), Duration::from_secs(60))
            .unwrap();
        let item = |app: &str, digest: &str| switchyard_common::proto::AssignmentItem {
            app: app.into(),
            commit: "c1".into(),
            digest: digest.into(),
            namespace: None,
            prune: true,
            self_heal: false,
            ownership: Default::default(),
        };
        store
            .update_cluster(&name, true, &mut |c| {
                c.assignment = vec![item("web", "sha256:stored"), item("db", "sha256:lost")];
            })
            .unwrap();
        store.put_bundle("sha256:stored", b"zstd bytes").unwrap();

        let frame = fleet.bundle_frame(&name, "sha256:stored").unwrap();
        assert!(frame.is_some_and(|f| f.len() > b"zstd bytes".len()));
        assert!(
            fleet
                .bundle_frame(&name, "sha256:not-assigned")
                .unwrap()
                .is_none()
        );
        let lost = fleet.bundle_frame(&name, "sha256:lost").unwrap_err();
        assert!(
            matches!(&lost, Error::BundleUnavailable { digest, .. } if digest == "sha256:lost"),
            "{lost:?}"
        );
        assert_eq!(lost.code(), ErrorCode::Internal);
    }

    #[test]
    fn the_fleet_gauges_follow_reports_and_removals_without_a_rescan() {
        let (dir, store) = sled_store();
        let fleet = fleet_over(&store, dir.path());
        let name = ClusterName::new("edge-1").unwrap();
        cluster_running_web(&fleet, &store, &name);
        let series = |text: &str, s: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(s)?.strip_prefix(' ')?.parse::<f64>().ok())
        };
        let unknown = r#"switchyard_app_clusters_by_sync{sync="Unknown"}"#;
        let synced = r#"switchyard_app_clusters_by_sync{sync="Synced"}"#;
        let text = fleet.encode_metrics().unwrap();
        assert_eq!(series(&text, unknown), Some(1.0), "{text}");

        fleet
            .record_status(&name, report(SyncStatus::Synced, 100))
            .unwrap();
        // Written behind the fleet's back, the store no longer agrees: a
        // scrape that recounted from the store would show this.
        store
            .update_cluster(&name, true, &mut |c| c.assignment.clear())
            .unwrap();
        let text = fleet.encode_metrics().unwrap();
        assert_eq!(series(&text, synced), Some(1.0), "{text}");
        assert_eq!(series(&text, unknown), None, "{text}");

        fleet.remove_cluster(&name).unwrap();
        let text = fleet.encode_metrics().unwrap();
        assert_eq!(series(&text, synced), None, "{text}");
    }

    #[test]
    fn labels_follow_kubernetes_rules() {
        for (k, v) in [
            ("env", "prod"),
            ("switchyard.dev/region", "eu-west-1"),
            ("tier", ""),
            ("a_b.c", "X.y_z"),
        ] {
            assert!(validate_label(k, v).is_ok(), "{k}={v}");
        }
        for (k, v) in [
            ("", "x"),
            ("-env", "x"),
            ("env", "has space"),
            ("env", "-x"),
            ("/env", "x"),
            ("Bad_Prefix/env", "x"),
            (&"k".repeat(64), "x"),
        ] {
            assert!(validate_label(k, v).is_err(), "{k}={v}");
        }
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert!(a.starts_with("syb_") && a.len() == 4 + 48);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
    }
}
