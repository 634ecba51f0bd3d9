//! `switchyard app diff`: asking agents what a sync of an app would change.
//! The hub holds no cluster credential, so it asks the agent
//! (`Notification::DiffRequested`) and waits, bounded, for its `ReportDiff`.
//! Each request waits in [`PendingDiffs`] under an id only the hub knows;
//! an answer is taken only from the cluster that was asked, and a request
//! leaves the table when it is answered, when it times out, when its
//! caller goes away, or when the cluster's agent disconnects.

use super::Fleet;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use switchyard_common::ClusterName;
use switchyard_common::proto::{Change, Notification, ObjectDiff, ReportDiff};
use tokio::sync::oneshot;

/// Why a cluster did not answer a diff request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiffError {
    #[error("the agent is not connected")]
    NotConnected,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the agent disconnected before it answered")]
    Disconnected,
    #[error("too many diff requests in progress ({0}); try again")]
    Busy(usize),
}

/// Most diff requests waiting at once, over all clusters: each holds a
/// caller, and a flood must not grow the table without bound.
const MAX_PENDING: usize = 1024;

/// Most clusters one app diff without `--cluster` lists (and asks, when
/// connected): each answer may hold 640 KiB, and an app of a fleet of
/// thousands must not make one answer of gigabytes. Clusters reported
/// OutOfSync come first.
pub const MAX_CLUSTERS_PER_DIFF: usize = 20;

type Waiting = (ClusterName, oneshot::Sender<Result<ReportDiff, DiffError>>);

/// Diff requests waiting for their agent's answer.
#[derive(Default)]
pub(crate) struct PendingDiffs {
    next_id: AtomicU64,
    waiting: Mutex<HashMap<u64, Waiting>>,
}

/// Takes a request out of the table when its caller stops waiting, however
/// that happens (answer, timeout, a dropped HTTP request).
struct Registered<'a> {
    pending: &'a PendingDiffs,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.pending.lock().remove(&self.id);
    }
}

impl PendingDiffs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Waiting>> {
        self.waiting.lock().expect("pending diffs lock")
    }

    fn register(
        &self,
        cluster: &ClusterName,
    ) -> Result<
        (
            Registered<'_>,
            oneshot::Receiver<Result<ReportDiff, DiffError>>,
        ),
        DiffError,
    > {
        let (tx, rx) = oneshot::channel();
        let mut waiting = self.lock();
        if waiting.len() >= MAX_PENDING {
            return Err(DiffError::Busy(MAX_PENDING));
        }
        // Starts at 1; ids are never reused while the hub runs.
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        waiting.insert(id, (cluster.clone(), tx));
        Ok((Registered { pending: self, id }, rx))
    }

    /// Hand `report` to its waiting caller. False when no request of that
    /// id waits for this cluster (late, or not this cluster's to answer).
    fn complete(&self, cluster: &ClusterName, report: ReportDiff) -> bool {
        let mut waiting = self.lock();
        match waiting.get(&report.request_id) {
            Some((asked, _)) if asked == cluster => {}
            _ => return false,
        }
        let (_, tx) = waiting
            .remove(&report.request_id)
            .expect("present under the lock");
        tx.send(Ok(report)).is_ok()
    }

    /// Fail every request waiting for `cluster`.
    fn cancel(&self, cluster: &ClusterName) {
        let mut waiting = self.lock();
        let ids: Vec<u64> = waiting
            .iter()
            .filter(|(_, (asked, _))| asked == cluster)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some((_, tx)) = waiting.remove(&id) {
                let _ = tx.send(Err(DiffError::Disconnected));
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// One object's diff, as the API shows it.
#[derive(utoipa::ToSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectDiffView {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    /// `create`, `update`, or `delete` (prune would delete it).
    pub change: String,
    /// Unified diff, `--- live/...` to `+++ desired/...`.
    pub diff: String,
}

/// One cluster's answer.
#[derive(utoipa::ToSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterDiffView {
    pub cluster: String,
    /// The objects a sync would change; empty when in sync.
    pub objects: Vec<ObjectDiffView>,
    /// More objects differ than the agent sent.
    pub truncated: bool,
    /// Why this cluster has no diff (not connected, no answer in time, or
    /// the agent's reason); then `objects` is empty.
    pub error: Option<String>,
    /// The cluster was not asked: its agent is not connected (only when
    /// every cluster of the app was asked for).
    #[serde(default)]
    pub skipped: bool,
}

/// `GET /api/v1/apps/{name}/diff`.
#[derive(utoipa::ToSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppDiffView {
    pub app: String,
    pub clusters: Vec<ClusterDiffView>,
    /// Clusters of the app beyond the first [`MAX_CLUSTERS_PER_DIFF`]
    /// (OutOfSync first), neither asked nor listed: name one with `cluster`.
    #[serde(default)]
    pub more_clusters: usize,
}

impl AppDiffView {
    /// Whether any cluster that answered has a difference.
    pub fn differs(&self) -> bool {
        self.clusters.iter().any(|c| !c.objects.is_empty())
    }

    /// Whether any cluster that was asked gave no diff.
    pub fn failed(&self) -> bool {
        self.clusters
            .iter()
            .any(|c| c.error.is_some() && !c.skipped)
    }
}

fn change_name(change: Change) -> &'static str {
    match change {
        Change::Create => "create",
        Change::Update => "update",
        Change::Delete => "delete",
    }
}

fn object_view(object: ObjectDiff) -> ObjectDiffView {
    ObjectDiffView {
        api_version: object.api_version,
        kind: object.kind,
        namespace: object.namespace,
        name: object.name,
        change: change_name(object.change).to_owned(),
        diff: object.diff,
    }
}

/// A cluster's view of an answer (or of why there is none).
fn cluster_view(cluster: &ClusterName, answer: Result<ReportDiff, DiffError>) -> ClusterDiffView {
    match answer {
        Ok(report) => ClusterDiffView {
            cluster: cluster.to_string(),
            objects: report.objects.into_iter().map(object_view).collect(),
            truncated: report.truncated,
            error: report.error,
            skipped: false,
        },
        Err(error) => ClusterDiffView {
            cluster: cluster.to_string(),
            objects: Vec::new(),
            truncated: false,
            error: Some(error.to_string()),
            skipped: false,
        },
    }
}

impl Fleet {
    /// Ask `cluster`'s agent what a sync of `app` would change; wait at
    /// most `timeout` for the answer.
    pub async fn request_diff(
        &self,
        cluster: &ClusterName,
        app: &str,
        timeout: Duration,
    ) -> Result<ReportDiff, DiffError> {
        if !self.registry.is_connected(cluster) {
            return Err(DiffError::NotConnected);
        }
        let (registered, answer) = self.diffs.register(cluster)?;
        self.notify(
            cluster,
            Notification::DiffRequested {
                request_id: registered.id,
                app: app.to_owned(),
            },
        );
        let outcome = match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(answer)) => answer,
            // The sender went away without a word: only `cancel` and
            // `complete` take it, and both send.
            Ok(Err(_)) => Err(DiffError::Disconnected),
            Err(_) => Err(DiffError::Timeout(timeout)),
        };
        drop(registered);
        outcome
    }

    /// What a sync of `app` would change on `only` (when given) or on
    /// every cluster it is assigned to: connected clusters are asked at
    /// once, the others listed as skipped. `None` when `only` is not
    /// assigned the app.
    pub async fn app_diff(
        &self,
        app: &str,
        only: Option<&ClusterName>,
        timeout: Duration,
    ) -> super::Result<Option<AppDiffView>> {
        let mut assigned: Vec<ClusterName> = self
            .store
            .clusters()?
            .into_iter()
            .filter(|c| only.is_none_or(|o| *o == c.name))
            .filter(|c| c.assignment.iter().any(|item| item.app == app))
            .map(|c| c.name)
            .collect();
        if only.is_some() && assigned.is_empty() {
            return Ok(None);
        }
        let mut more_clusters = 0;
        if assigned.len() > MAX_CLUSTERS_PER_DIFF {
            // Where a diff is likely, first: connected and reported
            // OutOfSync, then connected, then by name.
            let out_of_sync: std::collections::HashSet<String> = self
                .status(Some(app))?
                .into_iter()
                .filter(|row| row.sync != "Synced")
                .map(|row| row.cluster)
                .collect();
            assigned.sort_by_cached_key(|c| {
                (
                    !self.registry.is_connected(c),
                    !out_of_sync.contains(c.as_str()),
                    c.to_string(),
                )
            });
            more_clusters = assigned.len() - MAX_CLUSTERS_PER_DIFF;
            assigned.truncate(MAX_CLUSTERS_PER_DIFF);
        }
        let asked = assigned.iter().map(|cluster| async move {
            if only.is_none() && !self.registry.is_connected(cluster) {
                return ClusterDiffView {
                    skipped: true,
                    ..cluster_view(cluster, Err(DiffError::NotConnected))
                };
            }
            cluster_view(cluster, self.request_diff(cluster, app, timeout).await)
        });
        let clusters = futures_util::future::join_all(asked).await;
        Ok(Some(AppDiffView {
            app: app.to_owned(),
            clusters,
            more_clusters,
        }))
    }

    /// An agent's `ReportDiff`; false when no request of its id waits for
    /// this cluster (late, or another cluster's).
    pub(crate) fn record_diff(&self, cluster: &ClusterName, report: ReportDiff) -> bool {
        self.diffs.complete(cluster, report)
    }

    /// The agent of `cluster` went away: its pending diff requests fail now
    /// rather than at their timeout.
    pub(crate) fn cancel_diffs(&self, cluster: &ClusterName) {
        self.diffs.cancel(cluster);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(id: u64) -> ReportDiff {
        ReportDiff {
            request_id: id,
            app: "web".into(),
            objects: Vec::new(),
            truncated: false,
            error: None,
        }
    }

    fn name(n: &str) -> ClusterName {
        ClusterName::new(n.to_owned()).unwrap()
    }

    #[test]
    fn an_answer_goes_to_the_request_of_the_cluster_asked() {
        let pending = PendingDiffs::default();
        let (registered, mut rx) = pending.register(&name("edge-1")).unwrap();
        // Another cluster cannot answer for it, nor can an unknown id.
        assert!(!pending.complete(&name("edge-2"), report(registered.id)));
        assert!(!pending.complete(&name("edge-1"), report(registered.id + 100)));
        assert!(rx.try_recv().is_err());
        assert!(pending.complete(&name("edge-1"), report(registered.id)));
        assert_eq!(rx.try_recv().unwrap().unwrap().request_id, registered.id);
        // Answered once; a second answer finds nothing.
        assert!(!pending.complete(&name("edge-1"), report(registered.id)));
    }

    #[test]
    fn requests_leave_the_table_when_dropped_or_cancelled() {
        let pending = PendingDiffs::default();
        let (first, _rx1) = pending.register(&name("edge-1")).unwrap();
        let (_second, mut rx2) = pending.register(&name("edge-2")).unwrap();
        let (_third, mut rx3) = pending.register(&name("edge-2")).unwrap();
        assert_eq!(pending.len(), 3);
        drop(first);
        assert_eq!(pending.len(), 2);
        pending.cancel(&name("edge-2"));
        assert_eq!(pending.len(), 0);
        assert_eq!(rx2.try_recv().unwrap(), Err(DiffError::Disconnected));
        assert_eq!(rx3.try_recv().unwrap(), Err(DiffError::Disconnected));
    }

    #[tokio::test]
    async fn an_app_of_many_clusters_lists_a_bounded_number_and_asks_no_absent_agent() {
        use super::super::test_support::{fleet_over, sled_store};
        let (dir, store) = sled_store();
        let fleet = fleet_over(&store, dir.path());
        let item = |app: &str| switchyard_common::proto::AssignmentItem {
            app: app.into(),
            commit: "c1".into(),
            digest: "sha256:00".into(),
            namespace: None,
            prune: false,
            self_heal: false,
            ownership: Default::default(),
            ignore_differences: Vec::new(),
            prune_confirmed: None,
            create_namespace: true,
            prune_last: false,
            sync_requested: 0,
        };
        let total = MAX_CLUSTERS_PER_DIFF + 5;
        for i in 0..total {
            let cluster = name(&format!("edge-{i:02}"));
            fleet
                .add_cluster(cluster.clone(), Default::default(), Duration::from_secs(60))
                .unwrap();
            let app = if i == 0 { "other" } else { "web" };
            store
                .update_cluster(&cluster, true, &mut |c| c.assignment = vec![item(app)])
                .unwrap();
        }
        let started = std::time::Instant::now();
        let view = fleet
            .app_diff("web", None, Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap();
        // Nobody connected: nobody waited for.
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(view.clusters.len(), MAX_CLUSTERS_PER_DIFF);
        assert_eq!(view.more_clusters, total - 1 - MAX_CLUSTERS_PER_DIFF);
        assert!(view.clusters.iter().all(|c| c.skipped));
        assert!(view.clusters.iter().all(|c| c.cluster != "edge-00"));
        assert!(!view.failed() && !view.differs());
        // A named cluster that is not connected is a failure, at once; one
        // without the app is none of the app's.
        let one = fleet
            .app_diff("web", Some(&name("edge-03")), Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            one.clusters[0].error.as_deref(),
            Some("the agent is not connected")
        );
        assert!(one.failed());
        assert_eq!(
            fleet
                .app_diff("web", Some(&name("edge-00")), Duration::from_secs(30))
                .await
                .unwrap(),
            None
        );
        assert_eq!(fleet.diffs.len(), 0);
    }

    #[test]
    fn the_table_is_bounded() {
        let pending = PendingDiffs::default();
        let held: Vec<_> = (0..MAX_PENDING)
            .map(|_| pending.register(&name("edge-1")).unwrap())
            .collect();
        assert!(matches!(
            pending.register(&name("edge-1")),
            Err(DiffError::Busy(_))
        ));
        drop(held);
        assert!(pending.register(&name("edge-1")).is_ok());
    }
}
