//! Status reports from agents: what is kept (in memory and in the store),
//! the facts an agent tells about itself, and the status table built from
//! assignments and reports.

use super::{Fleet, LAST_SEEN_RESOLUTION, Result};
use crate::clock::rfc3339;
use crate::clock::unix_now;
use crate::status_reports::PairStates;
use crate::store::{self, ClusterRecord, StatusRecord};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use switchyard_common::ClusterName;
use tracing::{debug, warn};

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
    /// Why the hub could not give the cluster the app's deployed commit
    /// (a render error naming the chart file and line, a missing repo…):
    /// the cluster keeps its last good bundle meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Objects this app shares on this cluster with another app, naming
    /// it (see `AppView::warnings`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// The newest commit of the app's revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_commit: Option<String>,
    /// Whether `latest_commit` rendered: `Rendered` (clusters have it),
    /// `Failed` (why is in `error`), or `Pending` (no cluster has it yet: a
    /// manual app waiting for `app sync`, a pinned app, no cluster to render
    /// for, a render still running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_render: Option<String>,
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
                // An error first, then what makes the app OutOfSync (a
                // prune waiting for confirmation, say), then any message.
                r.status.last_error.clone().or_else(|| {
                    let out_of_sync = r
                        .status
                        .resources
                        .iter()
                        .filter(|row| row.sync != switchyard_common::proto::SyncStatus::Synced);
                    out_of_sync
                        .chain(r.status.resources.iter())
                        .find_map(|row| {
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
            error: None,
            warning: None,
            latest_commit: None,
            latest_render: None,
            connected,
            observed_at: report.map(|r| rfc3339(r.status.observed_at)),
            resources: current
                .map(|r| r.status.resources.clone())
                .unwrap_or_default(),
        }
    }
}

/// Every cluster's last status report, as received, mirroring the store's
/// status table. An agent reports on every heartbeat and every connection,
/// almost always the same thing: a report that differs from the stored one
/// only in its timestamps is kept here and written at most once per
/// [`LAST_SEEN_RESOLUTION`], so 10,000 agents reconnecting or reporting do
/// not rewrite 10,000 records. Losing those timestamps to a crash is
/// harmless: agents report again on every connection.
#[derive(Default)]
pub(super) struct Reports {
    pub(super) by_cluster: HashMap<String, LatestReport>,
}

pub(super) struct LatestReport {
    records: Vec<StatusRecord>,
    /// When the stored copy was written (its `received_at`).
    stored_at: u64,
}

/// Which of `records` (indices) tell a watcher of the fleet's events
/// something new: an app whose sync, health or commit differs from
/// `previous` (the cluster's last report, both sorted by app), or that
/// `previous` lacks. A report is written again when any app's facts change
/// and once per [`LAST_SEEN_RESOLUTION`] anyway; publishing every app of it
/// each time sent a watcher of 10,000 clusters with 100 apps a hundred
/// identical events per report, more than the channel holds
/// ([`super::EVENT_BUFFER`]), so every open page fell behind and reloaded.
fn news_for_watchers(previous: Option<&[StatusRecord]>, records: &[StatusRecord]) -> Vec<usize> {
    let seen = |record: &StatusRecord| {
        let Some(previous) = previous else {
            return false;
        };
        previous
            .binary_search_by(|p| p.status.app.as_str().cmp(&record.status.app))
            .ok()
            .and_then(|at| previous.get(at))
            .is_some_and(|p| {
                (&p.status.sync, &p.status.health, &p.status.commit)
                    == (
                        &record.status.sync,
                        &record.status.health,
                        &record.status.commit,
                    )
            })
    };
    records
        .iter()
        .enumerate()
        .filter(|(_, record)| !seen(record))
        .map(|(i, _)| i)
        .collect()
}

/// Two reports that differ at most in when they were observed and received.
fn same_facts(a: &[StatusRecord], b: &[StatusRecord]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.status.same_facts(&b.status))
}

impl Fleet {
    /// Run `f` over the report cache, loading it from the store first if
    /// this is its first use.
    pub(super) fn with_reports<T>(&self, f: impl FnOnce(&mut Reports) -> T) -> Result<T> {
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

    /// The `(sync, health)` of `cluster`'s assigned apps as its latest
    /// report shows them.
    fn pair_states_of(
        &self,
        cluster: &ClusterRecord,
    ) -> Result<Vec<crate::status_reports::PairState>> {
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
                let (sync, health) = crate::status_reports::pair_state(item, report);
                crate::status_reports::PairState {
                    app: item.app.clone(),
                    sync,
                    health,
                }
            })
            .collect())
    }

    /// Run `f` over the gauges' pair states, loading them (one pass over
    /// the fleet) on first use.
    pub(super) fn with_pair_states<T>(&self, f: impl FnOnce(&mut PairStates) -> T) -> Result<T> {
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

    /// Fold over the state of every assigned (app, cluster) pair, as the
    /// fleet gauges count them, without reading the store or copying the
    /// fleet: `f` gets the cluster and the pair.
    pub fn fold_pairs<T>(
        &self,
        init: T,
        mut f: impl FnMut(&mut T, &str, &crate::status_reports::PairState),
    ) -> Result<T> {
        let mut acc = init;
        self.with_pair_states(|states| states.each(|cluster, pair| f(&mut acc, cluster, pair)))?;
        Ok(acc)
    }

    /// A number that moves whenever some (app, cluster) pair's state
    /// changes: aggregates of the pair states computed at one generation
    /// hold until it moves.
    pub fn pair_states_generation(&self) -> Result<u64> {
        self.with_pair_states(|states| states.generation())
    }

    /// Fold over each app's cluster counts per `(sync, health)`:
    /// `f(acc, app, sync, health, clusters)`; kept up to date with every
    /// pair state, so this costs the number of apps, not of pairs.
    pub fn fold_app_counts<T>(
        &self,
        init: T,
        mut f: impl FnMut(&mut T, &str, &str, &str, usize),
    ) -> Result<T> {
        let mut acc = init;
        self.with_pair_states(|states| {
            states.each_app_count(|app, sync, health, n| f(&mut acc, app, sync, health, n))
        })?;
        Ok(acc)
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
        // A repeat is kept in memory only; anything else comes back to be
        // written, with the statuses watchers have not seen yet.
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
                    latest => {
                        let news =
                            news_for_watchers(latest.map(|l| l.records.as_slice()), &records);
                        Some((records, news))
                    }
                },
            )?;
        let Some((records, news)) = to_write else {
            return Ok(());
        };
        // Written outside the cache's lock: reports of other clusters do not
        // wait for this one's write.
        self.store.put_statuses(cluster.as_str(), &records)?;
        for record in news.into_iter().filter_map(|i| records.get(i)) {
            self.publish(super::FleetEvent::AppStatus {
                app: record.status.app.clone(),
                cluster: cluster.to_string(),
                sync: format!("{:?}", record.status.sync),
                health: format!("{:?}", record.status.health),
                commit: record.status.commit.clone(),
            });
        }
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
        self.status_where(app, None)
    }

    /// [`Fleet::status`] of one cluster's apps: reads that cluster only.
    pub fn cluster_status(&self, cluster: &ClusterName) -> Result<Vec<StatusView>> {
        self.status_where(None, Some(cluster))
    }

    fn status_where(
        &self,
        app: Option<&str>,
        only: Option<&ClusterName>,
    ) -> Result<Vec<StatusView>> {
        let clusters = match only {
            Some(name) => self.store.cluster(name)?.into_iter().collect(),
            None => self.store.clusters()?,
        };
        self.rows_of(&clusters, app, &self.errors_of(app)?)
    }

    /// The planner's errors of `app` (of every app if `None`), by app, each
    /// filed per cluster or under `*` for all.
    fn errors_of(&self, app: Option<&str>) -> Result<HashMap<String, BTreeMap<String, String>>> {
        let records = match app {
            Some(name) => self.store.app(name)?.into_iter().collect(),
            None => self.store.apps()?,
        };
        Ok(records
            .into_iter()
            .filter(|a| !a.errors.is_empty())
            .map(|a| (a.name, a.errors))
            .collect())
    }

    /// The rows of `clusters` (of `app` only, if given), sorted by app
    /// and cluster; `errors` as [`Fleet::errors_of`] gives them.
    fn rows_of(
        &self,
        clusters: &[ClusterRecord],
        app: Option<&str>,
        errors: &HashMap<String, BTreeMap<String, String>>,
    ) -> Result<Vec<StatusView>> {
        let reports: HashMap<(String, String), StatusRecord> = self.with_reports(|reports| {
            clusters
                .iter()
                .filter_map(|c| reports.by_cluster.get(c.name.as_str()))
                .flat_map(|latest| &latest.records)
                .filter(|r| app.is_none_or(|a| a == r.status.app))
                .map(|r| ((r.cluster.clone(), r.status.app.clone()), r.clone()))
                .collect()
        })?;
        let mut rows = Vec::new();
        for cluster in clusters {
            let connected = self.registry.is_connected(&cluster.name);
            for item in &cluster.assignment {
                if app.is_some_and(|a| a != item.app) {
                    continue;
                }
                let report = reports.get(&(cluster.name.to_string(), item.app.clone()));
                let mut row = StatusView::new(&cluster.name, item, report, connected);
                row.error = errors
                    .get(&item.app)
                    .and_then(|e| e.get(cluster.name.as_str()).or_else(|| e.get("*")).cloned());
                rows.push(row);
            }
        }
        rows.sort_by(|a, b| (&a.app, &a.cluster).cmp(&(&b.app, &b.cluster)));
        Ok(rows)
    }

    /// Page `page` (from 1; clamped) of `app`'s rows, `per_page` at a
    /// time, problems first (not synced, not healthy, or an error for that
    /// cluster), then by cluster. The gauges' in-memory pair states choose
    /// and order the clusters, so only the page's clusters are read from
    /// the store: an app page on a fleet of 10,000 reads 100 records.
    pub fn app_status_page(
        &self,
        app: &str,
        page: usize,
        per_page: usize,
    ) -> Result<AppStatusPage> {
        let all_errors = self.errors_of(Some(app))?;
        let errors = all_errors.get(app).cloned().unwrap_or_default();
        let fleet_wide = errors.contains_key("*");
        let mut order: Vec<(bool, String)> = self.with_pair_states(|states| {
            let mut order = Vec::new();
            states.each(|cluster, pair| {
                if pair.app == app {
                    let problem = fleet_wide
                        || errors.contains_key(cluster)
                        || pair.sync != "Synced"
                        || pair.health != "Healthy";
                    order.push((!problem, cluster.to_owned()));
                }
            });
            order
        })?;
        order.sort();
        let total = order.len();
        let problems = order.iter().filter(|(fine, _)| !fine).count();
        let pages = total.div_ceil(per_page.max(1)).max(1);
        let page = page.clamp(1, pages);
        let mut clusters = Vec::new();
        for (_, name) in order.iter().skip((page - 1) * per_page).take(per_page) {
            // Pair states are keyed by names the store accepted.
            if let Ok(name) = ClusterName::new(name.clone()) {
                clusters.extend(self.store.cluster(&name)?);
            }
        }
        let mut rows = self.rows_of(&clusters, Some(app), &all_errors)?;
        // Back into the page's order (rows_of sorts by cluster).
        let rank: HashMap<&str, usize> = order
            .iter()
            .enumerate()
            .map(|(i, (_, name))| (name.as_str(), i))
            .collect();
        rows.sort_by_key(|r| rank.get(r.cluster.as_str()).copied().unwrap_or(usize::MAX));
        Ok(AppStatusPage {
            rows,
            total,
            problems,
            page,
            pages,
        })
    }
}

/// One page of an app's per-cluster rows (see [`Fleet::app_status_page`]).
#[derive(Debug, Clone)]
pub struct AppStatusPage {
    pub rows: Vec<StatusView>,
    /// Clusters the app is assigned to.
    pub total: usize,
    /// Of those, the ones not synced, not healthy or with an error.
    pub problems: usize,
    /// The page shown (clamped) and how many there are.
    pub page: usize,
    pub pages: usize,
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{fleet_over, sled_store};
    use super::*;
    use crate::store::Store;
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;
    use switchyard_common::proto::{AppStatus, Health, SyncStatus};

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
                    ignore_differences: Vec::new(),
                    prune_confirmed: None,
                    create_namespace: true,
                    prune_last: false,
                    sync_requested: 0,
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

    fn status(app: &str, sync: SyncStatus, observed_at: u64) -> AppStatus {
        AppStatus {
            app: app.into(),
            ..report(sync, observed_at).remove(0)
        }
    }

    #[test]
    fn watchers_hear_of_the_apps_whose_status_changed_not_of_every_app_reported() {
        let (dir, store) = sled_store();
        let fleet = fleet_over(&store, dir.path());
        let name = ClusterName::new("edge-1").unwrap();
        cluster_running_web(&fleet, &store, &name);
        let mut assignment = store.cluster(&name).unwrap().unwrap().assignment;
        let mut api = assignment[0].clone();
        api.app = "api".into();
        assignment.insert(0, api);
        store
            .update_cluster(&name, true, &mut |c| c.assignment = assignment.clone())
            .unwrap();
        let mut events = fleet.subscribe();
        let mut heard = || {
            let mut got = Vec::new();
            while let Ok(event) = events.try_recv() {
                got.push(event);
            }
            got
        };
        let both = |web: SyncStatus, at: u64| {
            vec![
                status("api", SyncStatus::Synced, at),
                status("web", web, at),
            ]
        };
        fleet
            .record_status(&name, both(SyncStatus::Synced, 100))
            .unwrap();
        assert_eq!(heard().len(), 2, "the first report is news for both apps");

        // Only web's status changes: the report is written again, but api's
        // unchanged status is no news for an open page.
        fleet
            .record_status(&name, both(SyncStatus::OutOfSync, 130))
            .unwrap();
        assert_eq!(
            heard(),
            vec![super::super::FleetEvent::AppStatus {
                app: "web".into(),
                cluster: "edge-1".into(),
                sync: "OutOfSync".into(),
                health: "Healthy".into(),
                commit: "c1".into(),
            }]
        );
        assert_eq!(stored_observed_at(&store), [130, 130], "both written");
    }

    #[test]
    fn news_for_watchers_compares_sync_health_and_commit_per_app() {
        let record = |app: &str, sync: SyncStatus, commit: &str| StatusRecord {
            cluster: "edge-1".into(),
            status: AppStatus {
                commit: commit.into(),
                ..status(app, sync, 100)
            },
            received_at: 100,
        };
        let before = [
            record("api", SyncStatus::Synced, "c1"),
            record("web", SyncStatus::Synced, "c1"),
        ];
        let mut later = before.clone();
        for r in &mut later {
            r.status.observed_at = 200;
            r.received_at = 200;
        }
        assert!(news_for_watchers(Some(&before), &later).is_empty());
        assert_eq!(news_for_watchers(None, &later), [0, 1]);
        later[1].status.commit = "c2".into();
        assert_eq!(news_for_watchers(Some(&before), &later), [1]);
        later[0].status.health = Health::Degraded;
        assert_eq!(news_for_watchers(Some(&before), &later), [0, 1]);
        let added = [later[0].clone(), record("zzz", SyncStatus::Synced, "c1")];
        assert_eq!(news_for_watchers(Some(&before[..1]), &added), [0, 1]);
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
}
