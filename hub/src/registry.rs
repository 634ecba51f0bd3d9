//! Which clusters have a live agent connection right now, and the handle to
//! reach each of them (to notify it, or to cut it off when it is removed).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use switchyard_common::ClusterName;
use switchyard_common::proto::close_code;

#[derive(Default)]
pub(crate) struct Registry {
    live: Mutex<HashMap<ClusterName, quinn::Connection>>,
    /// Every cluster that connected since the hub started, to tell a
    /// reconnect from a first connection.
    seen: Mutex<HashSet<ClusterName>>,
}

impl Registry {
    /// Record `conn` as the cluster's connection. A previous connection of the
    /// same cluster is closed: an agent has one connection at a time. True
    /// if the cluster had connected before since the hub started.
    pub(crate) fn register(&self, cluster: &ClusterName, conn: quinn::Connection) -> bool {
        let reconnect = !self
            .seen
            .lock()
            .expect("registry lock")
            .insert(cluster.clone());
        let previous = self
            .live
            .lock()
            .expect("registry lock")
            .insert(cluster.clone(), conn);
        if let Some(previous) = previous {
            previous.close(
                close_code::SUPERSEDED.into(),
                b"superseded by a newer connection",
            );
        }
        reconnect
    }

    /// Forget `conn` if it is still the cluster's current connection.
    pub(crate) fn unregister(&self, cluster: &ClusterName, conn: &quinn::Connection) {
        let mut live = self.live.lock().expect("registry lock");
        if live
            .get(cluster)
            .is_some_and(|c| c.stable_id() == conn.stable_id())
        {
            live.remove(cluster);
        }
    }

    pub(crate) fn is_connected(&self, cluster: &ClusterName) -> bool {
        self.live
            .lock()
            .expect("registry lock")
            .contains_key(cluster)
    }

    pub(crate) fn connection(&self, cluster: &ClusterName) -> Option<quinn::Connection> {
        self.live
            .lock()
            .expect("registry lock")
            .get(cluster)
            .cloned()
    }

    pub(crate) fn connected_count(&self) -> usize {
        self.live.lock().expect("registry lock").len()
    }

    /// Close the cluster's connection at once with `code`.
    pub(crate) fn disconnect(&self, cluster: &ClusterName, code: u32, reason: &str) {
        let conn = self.live.lock().expect("registry lock").remove(cluster);
        if let Some(conn) = conn {
            conn.close(code.into(), reason.as_bytes());
        }
    }
}
