//! Enrollment and certificates: bootstrap tokens, signing an agent's CSR,
//! authenticating a connecting agent, renewal, and adopting certificates
//! signed after a restored backup.

use super::{Error, Fleet, Result};
use crate::clock::{unix_now, unix_seconds};
use crate::secrets::token_hash;
use crate::store::{self, ClusterRecord, TokenRecord};
use rand::Rng;
use std::time::Duration;
use switchyard_certs::PeerIdentity;
use switchyard_common::ClusterName;
use switchyard_common::proto::close_code;
use tracing::info;

/// See [`Fleet::adopt_after_restore`].
const RESTORE_SIGNING_MARGIN_SECS: u64 = 60;

pub(super) fn new_token_record(
    cluster: &ClusterName,
    now: u64,
    ttl: Duration,
) -> (String, TokenRecord) {
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

impl Fleet {
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
