//! The hub's Prometheus metrics: counters and histograms the code paths bump
//! as things happen, and gauges of the fleet's state moved as it changes
//! (`status_reports::PairStates`), so that a scrape reads no store and
//! costs the same whatever the fleet's size.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// `result="ok"` or `result="failed"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct Outcome {
    result: &'static str,
}

impl Outcome {
    pub(crate) fn of<T, E>(result: &Result<T, E>) -> Self {
        Self {
            result: if result.is_ok() { "ok" } else { "failed" },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SyncLabel {
    sync: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HealthLabel {
    health: String,
}

/// Every metric the hub exports, registered once in one registry.
pub struct Metrics {
    registry: Registry,
    connected_agents: Gauge,
    app_clusters_by_sync: Family<SyncLabel, Gauge>,
    app_clusters_by_health: Family<HealthLabel, Gauge>,
    pub(crate) enrollments: Family<Outcome, Counter>,
    pub(crate) git_fetch_seconds: Family<Outcome, Histogram>,
    pub(crate) render_seconds: Family<Outcome, Histogram>,
    pub(crate) bundle_bytes_served: Counter,
    pub(crate) agent_connections: Counter,
    pub(crate) agent_reconnects: Counter,
    pub(crate) status_reports: Counter,
    pub(crate) status_apps_refused: Counter,
    pub(crate) status_rows_dropped: Counter,
}

/// Buckets from 5 ms to about 80 s: renders of a few objects take
/// milliseconds, fetches of a large repo over a slow link a minute.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("switchyard");
        let connected_agents = Gauge::default();
        registry.register(
            "connected_agents",
            "Agents with a live connection to the hub",
            connected_agents.clone(),
        );
        let app_clusters_by_sync = Family::<SyncLabel, Gauge>::default();
        registry.register(
            "app_clusters_by_sync",
            "Assigned (app, cluster) pairs by sync status (Synced, OutOfSync, Unknown)",
            app_clusters_by_sync.clone(),
        );
        let app_clusters_by_health = Family::<HealthLabel, Gauge>::default();
        registry.register(
            "app_clusters_by_health",
            "Assigned (app, cluster) pairs by health (Healthy, Progressing, Degraded, Missing, Unknown)",
            app_clusters_by_health.clone(),
        );
        let enrollments = Family::<Outcome, Counter>::default();
        registry.register(
            "enrollments",
            "Agent enrollment attempts by result",
            enrollments.clone(),
        );
        let git_fetch_seconds =
            Family::<Outcome, Histogram>::new_with_constructor(duration_histogram as fn() -> _);
        registry.register(
            "git_fetch_seconds",
            "Duration of Git fetches by result",
            git_fetch_seconds.clone(),
        );
        let render_seconds =
            Family::<Outcome, Histogram>::new_with_constructor(duration_histogram as fn() -> _);
        registry.register(
            "render_seconds",
            "Duration of app renders (read, render, bundle) by result",
            render_seconds.clone(),
        );
        let bundle_bytes_served = Counter::default();
        registry.register(
            "bundle_bytes_served",
            "Bundle bytes sent to agents (compressed bundles in their reply frames)",
            bundle_bytes_served.clone(),
        );
        let agent_connections = Counter::default();
        registry.register(
            "agent_connections",
            "Authenticated agent connections accepted",
            agent_connections.clone(),
        );
        let agent_reconnects = Counter::default();
        registry.register(
            "agent_reconnects",
            "Agent connections of clusters that had connected before since the hub started",
            agent_reconnects.clone(),
        );
        let status_reports = Counter::default();
        registry.register(
            "status_reports",
            "Status reports received from agents and stored",
            status_reports.clone(),
        );
        let status_apps_refused = Counter::default();
        registry.register(
            "status_apps_refused",
            "App reports left out of status reports: apps not assigned to the reporting cluster",
            status_apps_refused.clone(),
        );
        let status_rows_dropped = Counter::default();
        registry.register(
            "status_rows_dropped",
            "Resource rows left out of status reports past the per-app limit",
            status_rows_dropped.clone(),
        );
        Self {
            registry,
            connected_agents,
            app_clusters_by_sync,
            app_clusters_by_health,
            enrollments,
            git_fetch_seconds,
            render_seconds,
            bundle_bytes_served,
            agent_connections,
            agent_reconnects,
            status_reports,
            status_apps_refused,
            status_rows_dropped,
        }
    }
}

impl Metrics {
    pub(crate) fn observe(family: &Family<Outcome, Histogram>, outcome: Outcome, took: Duration) {
        family.get_or_create(&outcome).observe(took.as_secs_f64());
    }

    /// Count one (app, cluster) pair in (`delta` 1) or out (-1) of its
    /// sync and health series. A series whose count drops to zero is
    /// removed: a status nobody is in any more shows nothing, not its last
    /// count. Callers serialize their moves (`Fleet`'s pair states lock).
    pub(crate) fn move_app_cluster(&self, sync: &str, health: &str, delta: i64) {
        let sync = SyncLabel { sync: sync.into() };
        if self.app_clusters_by_sync.get_or_create(&sync).inc_by(delta) + delta <= 0 {
            self.app_clusters_by_sync.remove(&sync);
        }
        let health = HealthLabel {
            health: health.into(),
        };
        if self
            .app_clusters_by_health
            .get_or_create(&health)
            .inc_by(delta)
            + delta
            <= 0
        {
            self.app_clusters_by_health.remove(&health);
        }
    }

    /// The Prometheus text exposition (format 0.0.4); `connected_agents`
    /// from the connection registry, every other value as it stands.
    pub fn encode(&self, connected_agents: usize) -> String {
        self.connected_agents.set(connected_agents as i64);
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// What `/readyz` waits for: the store open, the QUIC endpoint bound and the
/// first planning pass done.
#[derive(Debug, Default)]
pub struct Readiness {
    store_open: AtomicBool,
    quic_bound: AtomicBool,
    planned: AtomicBool,
}

impl Readiness {
    pub fn store_opened(&self) {
        self.store_open.store(true, Ordering::Release);
    }

    pub fn quic_bound(&self) {
        self.quic_bound.store(true, Ordering::Release);
    }

    pub fn first_plan_done(&self) {
        self.planned.store(true, Ordering::Release);
    }

    /// What is still missing; empty when ready.
    pub fn waiting_for(&self) -> Vec<&'static str> {
        [
            (&self.store_open, "store"),
            (&self.quic_bound, "QUIC endpoint"),
            (&self.planned, "first planning pass"),
        ]
        .into_iter()
        .filter(|(done, _)| !done.load(Ordering::Acquire))
        .map(|(_, what)| what)
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn gauges_follow_the_moves_and_drop_statuses_no_longer_seen() {
        let metrics = Metrics::default();
        metrics.move_app_cluster("Synced", "Healthy", 1);
        metrics.move_app_cluster("Synced", "Progressing", 1);
        metrics.move_app_cluster("OutOfSync", "Healthy", 1);
        let text = metrics.encode(2);
        assert_eq!(value(&text, "switchyard_connected_agents"), Some(2.0));
        assert_eq!(
            value(&text, r#"switchyard_app_clusters_by_sync{sync="Synced"}"#),
            Some(2.0)
        );
        assert_eq!(
            value(
                &text,
                r#"switchyard_app_clusters_by_health{health="Healthy"}"#
            ),
            Some(2.0)
        );
        metrics.move_app_cluster("Synced", "Progressing", -1);
        metrics.move_app_cluster("OutOfSync", "Healthy", -1);
        let text = metrics.encode(0);
        assert_eq!(value(&text, "switchyard_connected_agents"), Some(0.0));
        assert_eq!(
            value(&text, r#"switchyard_app_clusters_by_sync{sync="Synced"}"#),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                r#"switchyard_app_clusters_by_sync{sync="OutOfSync"}"#
            ),
            None,
            "{text}"
        );
    }

    #[test]
    fn counters_and_histograms_are_exported_with_their_results() {
        let metrics = Metrics::default();
        metrics
            .enrollments
            .get_or_create(&Outcome::of::<(), ()>(&Ok(())))
            .inc();
        metrics
            .enrollments
            .get_or_create(&Outcome::of::<(), ()>(&Err(())))
            .inc();
        metrics
            .enrollments
            .get_or_create(&Outcome::of::<(), ()>(&Err(())))
            .inc();
        Metrics::observe(
            &metrics.git_fetch_seconds,
            Outcome::of::<(), ()>(&Ok(())),
            Duration::from_millis(30),
        );
        metrics.bundle_bytes_served.inc_by(1234);
        let text = metrics.encode(0);
        assert_eq!(
            value(&text, r#"switchyard_enrollments_total{result="ok"}"#),
            Some(1.0)
        );
        assert_eq!(
            value(&text, r#"switchyard_enrollments_total{result="failed"}"#),
            Some(2.0)
        );
        assert_eq!(
            value(&text, r#"switchyard_git_fetch_seconds_count{result="ok"}"#),
            Some(1.0)
        );
        // 30 ms falls in the 40 ms bucket and every one above it, not below.
        assert_eq!(
            value(
                &text,
                r#"switchyard_git_fetch_seconds_bucket{result="ok",le="0.04"}"#
            ),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            value(
                &text,
                r#"switchyard_git_fetch_seconds_bucket{result="ok",le="0.02"}"#
            ),
            Some(0.0)
        );
        assert_eq!(
            value(&text, "switchyard_bundle_bytes_served_total"),
            Some(1234.0)
        );
        // A family shows only once it has a member.
        assert!(!text.contains("switchyard_render_seconds"), "{text}");
        Metrics::observe(
            &metrics.render_seconds,
            Outcome::of::<(), ()>(&Err(())),
            Duration::from_secs(2),
        );
        let text = metrics.encode(0);
        assert!(
            text.contains("# TYPE switchyard_render_seconds histogram"),
            "{text}"
        );
        assert_eq!(
            value(&text, r#"switchyard_render_seconds_sum{result="failed"}"#),
            Some(2.0)
        );
    }

    #[test]
    fn readiness_names_what_it_waits_for() {
        let ready = Readiness::default();
        assert_eq!(
            ready.waiting_for(),
            ["store", "QUIC endpoint", "first planning pass"]
        );
        ready.store_opened();
        ready.quic_bound();
        assert_eq!(ready.waiting_for(), ["first planning pass"]);
        ready.first_plan_done();
        assert!(ready.waiting_for().is_empty());
    }
}
