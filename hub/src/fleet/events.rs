//! What changed in the fleet, as small events for whoever watches live
//! (the web UI's event stream): a cluster connected or went away, an app's
//! status on a cluster moved. Published on a broadcast channel; a watcher
//! that falls behind loses events and is told so by the channel (it then
//! resyncs from a full read), so a slow watcher never slows the fleet.

use super::Fleet;
use serde::Serialize;
use tokio::sync::broadcast;

/// How many events the channel holds for the slowest watcher.
pub const EVENT_BUFFER: usize = 1024;

/// One change, small enough to apply to a page without reading anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FleetEvent {
    /// An agent connected (`connected: true`) or its connection ended.
    Cluster { cluster: String, connected: bool },
    /// An agent reported an app's status on its cluster.
    AppStatus {
        app: String,
        cluster: String,
        sync: String,
        health: String,
        commit: String,
    },
    /// An app's record changed (new commit, sync, rollback): its pages
    /// should be read again.
    App { app: String },
}

impl Fleet {
    /// Watch the fleet's events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<FleetEvent> {
        self.events.subscribe()
    }

    /// Tell watchers of a change; with no watcher this costs nothing.
    pub fn publish(&self, event: FleetEvent) {
        // An error only means nobody watches.
        let _ = self.events.send(event);
    }
}
