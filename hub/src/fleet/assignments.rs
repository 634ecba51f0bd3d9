//! What each cluster is assigned, serving its bundles (and only its own),
//! and telling a connected agent that something changed.

use super::{Error, Fleet, Result};
use crate::bundle_frames::LoadError;
use crate::store;
use std::time::Duration;
use switchyard_common::ClusterName;
use switchyard_common::proto::{Assignment, Notification};
use tracing::warn;

/// Notifications the hub has on their way at once, per processor. A
/// notification is on its way until the agent acknowledges it, and the
/// agent acts on it at once (fetches its assignment, then the bundle), so
/// this bounds how many agents start an update per round trip: when the
/// hub is busy its round trips lengthen and the notifications slow down
/// with them, instead of 10,000 agents asking at the same instant and
/// overflowing the socket's receive queue.
pub(super) const NOTIFICATIONS_PER_PROCESSOR: usize = 128;

/// Longest a notification counts as on its way: an agent that does not
/// acknowledge within this time no longer holds up the others.
const NOTIFICATION_ACK_WAIT: Duration = Duration::from_secs(2);

impl Fleet {
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
