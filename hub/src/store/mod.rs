//! The hub's durable state behind a `Store` trait, so that a replicated
//! backend (etcd) can replace the embedded sled store for a highly available hub.

mod sled_store;

pub use sled_store::SledStore;

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
    #[error("bootstrap token already used at {}", crate::fleet::rfc3339(*used_at))]
    TokenUsed { used_at: u64 },
    #[error("bootstrap token expired at {}", crate::fleet::rfc3339(*expired_at))]
    TokenExpired { expired_at: u64 },
    #[error("store backend")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
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

    /// Change a cluster in place; `None` if it does not exist. `durable`
    /// chooses whether to wait for the disk (facts and last-seen need not).
    fn update_cluster(
        &self,
        name: &ClusterName,
        durable: bool,
        change: &mut dyn FnMut(&mut ClusterRecord),
    ) -> Result<Option<ClusterRecord>>;

    /// Remove a cluster, revoke every certificate it holds and drop its
    /// tokens, all at once.
    fn remove_cluster(&self, name: &ClusterName, now: u64) -> Result<Option<ClusterRecord>>;

    /// Mint another bootstrap token for an existing cluster (re-enrollment).
    fn create_token(&self, token_hash: &str, token: &TokenRecord) -> Result<()>;

    /// Look a token up without using it.
    fn token(&self, token_hash: &str) -> Result<Option<TokenRecord>>;

    /// Spend a token and record the certificate issued with it, atomically:
    /// either the token is used and the cluster enrolled, or neither.
    fn redeem_token(
        &self,
        token_hash: &str,
        now: u64,
        serial: &str,
        cert_not_after: u64,
    ) -> Result<ClusterRecord>;

    fn is_revoked(&self, serial: &str) -> Result<bool>;
}
