//! What each cluster is assigned, serving its bundles (and only its own),
//! and telling a connected agent that something changed.

use super::{Error, Fleet, Result};
use crate::bundle_frames::LoadError;
use crate::store;
use switchyard_common::ClusterName;
use switchyard_common::proto::{Assignment, Notification};

/// How the fleet tells a connected agent that something changed. The fleet
/// decides whom to tell and what; the transport (the QUIC endpoint in
/// `agents`) implements the delivery, so domain logic never calls into it.
pub trait Notifier: Send + Sync {
    /// Deliver `notification` to `cluster`'s agent over its connection
    /// `conn`, in the background; a notification that is not delivered is
    /// not an error (the agent resyncs when it reconnects).
    fn deliver(&self, cluster: ClusterName, conn: quinn::Connection, notification: Notification);
}

impl Fleet {
    /// Tell a connected agent something, through the [`Notifier`] the
    /// server gave the fleet (see [`Fleet::with_notifier`]). An agent that is
    /// not connected is not told: it asks for its assignment when it
    /// connects. A fleet without a notifier (the domain tested alone) tells
    /// no one.
    pub fn notify(&self, cluster: &ClusterName, notification: Notification) {
        if let (Some(notifier), Some(conn)) = (&self.notifier, self.registry.connection(cluster)) {
            notifier.deliver(cluster.clone(), conn, notification);
        }
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
    use super::super::test_support::{fleet_over, sled_store};
    use super::*;
    use std::collections::BTreeMap;
    use std::time::Duration;
    use switchyard_common::proto::ErrorCode;

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
            ignore_differences: Vec::new(),
            prune_confirmed: None,
            create_namespace: true,
            prune_last: false,
            sync_requested: 0,
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
}
