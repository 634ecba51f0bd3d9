//! Registering, listing, labelling and removing clusters, and how the API
//! shows one.

use super::enrollment::new_token_record;
use super::{Error, Fleet, Result};
use crate::clock::rfc3339;
use crate::clock::unix_now;
use crate::secrets::token_hash;
use crate::store::{self, ClusterRecord, TokenRecord};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use switchyard_common::ClusterName;
use switchyard_common::proto::close_code;
use tracing::info;

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

impl Fleet {
    pub fn view(&self, record: &ClusterRecord) -> ClusterView {
        self.summary_view(&store::ClusterSummary::from(record))
    }

    /// How the API shows a cluster, from its summary.
    pub fn summary_view(&self, record: &store::ClusterSummary) -> ClusterView {
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

    /// Every cluster, by name, from the store's in-memory summaries (no
    /// assignment is decoded).
    pub fn clusters(&self) -> Result<Vec<ClusterView>> {
        Ok(self
            .store
            .cluster_summaries()?
            .iter()
            .map(|c| self.summary_view(c))
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
