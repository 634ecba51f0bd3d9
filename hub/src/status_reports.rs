//! What the hub keeps of an agent's status report (only the apps assigned
//! to its cluster, each bounded in rows and text), and the fleet gauges
//! derived from reports and assignments, kept up to date as either changes
//! so that a `/metrics` scrape costs the same whatever the fleet's size.

use crate::metrics::Metrics;
use std::collections::HashMap;
use switchyard_common::proto::{AppStatus, AssignmentItem};

/// Resource rows kept per app and report. An app of more objects is
/// reported by its first rows; the agent still applies all of them.
pub const MAX_RESOURCES_PER_APP: usize = 5_000;

/// Longest resource message or app error kept, in bytes: enough for a
/// Kubernetes error, not for a flood.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// A report as the hub keeps it, and what was left out.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Admitted {
    pub(crate) apps: Vec<AppStatus>,
    /// Apps the report named that are not assigned to the cluster.
    pub(crate) unassigned: Vec<String>,
    /// Resource rows past [`MAX_RESOURCES_PER_APP`].
    pub(crate) rows_dropped: usize,
}

/// Keep what a cluster may report: its assigned apps (the first report of
/// each), at most [`MAX_RESOURCES_PER_APP`] rows each, messages cut to
/// [`MAX_MESSAGE_BYTES`]. Anything else an agent sends (a stolen identity,
/// a bug) would otherwise show in `status` or grow the store.
pub(crate) fn admit(assignment: &[AssignmentItem], apps: Vec<AppStatus>) -> Admitted {
    let mut admitted = Admitted::default();
    for mut app in apps {
        let assigned = assignment.iter().any(|item| item.app == app.app);
        if !assigned || admitted.apps.iter().any(|kept| kept.app == app.app) {
            admitted.unassigned.push(app.app);
            continue;
        }
        if app.resources.len() > MAX_RESOURCES_PER_APP {
            admitted.rows_dropped += app.resources.len() - MAX_RESOURCES_PER_APP;
            app.resources.truncate(MAX_RESOURCES_PER_APP);
        }
        for row in &mut app.resources {
            if let Some(message) = &mut row.message {
                cut(message);
            }
        }
        if let Some(error) = &mut app.last_error {
            cut(error);
        }
        admitted.apps.push(app);
    }
    admitted
}

/// Shorten `text` to at most [`MAX_MESSAGE_BYTES`], on a character boundary.
fn cut(text: &mut String) {
    if text.len() <= MAX_MESSAGE_BYTES {
        return;
    }
    let mut end = MAX_MESSAGE_BYTES - "…".len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push('…');
}

/// `(sync, health)` of one assigned (app, cluster) pair, as `status` shows
/// it: the report's when it is about the assigned bundle, `OutOfSync` and
/// `Progressing` when it is about another, `Unknown` without one.
pub(crate) fn pair_state(item: &AssignmentItem, report: Option<&AppStatus>) -> (String, String) {
    match report {
        Some(r) if r.digest == item.digest => (format!("{:?}", r.sync), format!("{:?}", r.health)),
        Some(_) => ("OutOfSync".into(), "Progressing".into()),
        None => ("Unknown".into(), "Unknown".into()),
    }
}

/// The `(sync, health)` of every cluster's assigned apps, mirrored into the
/// metrics' gauges: replacing one cluster's states moves only its own
/// pairs, so nothing is ever recounted over the whole fleet.
#[derive(Default)]
pub(crate) struct PairStates {
    by_cluster: HashMap<String, Vec<PairState>>,
    /// Per app, how many clusters' pairs are in each `(sync, health)`:
    /// moved with every replace, so the apps page reads 100 apps' counts
    /// instead of folding over every pair of the fleet (a million at
    /// 10,000 clusters × 100 apps, BENCHMARKS.md "Web UI at fleet scale").
    by_app: HashMap<String, HashMap<(String, String), usize>>,
    /// Moves whenever some pair's state changes (not on a report that
    /// repeats the last one): what was computed from the states at one
    /// generation holds until the next.
    generation: u64,
}

/// The state of one assigned (app, cluster) pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairState {
    pub app: String,
    pub sync: String,
    pub health: String,
}

impl PairStates {
    /// Replace the states of `cluster`'s pairs (none: it was removed).
    pub(crate) fn replace(&mut self, cluster: &str, states: Vec<PairState>, metrics: &Metrics) {
        if self
            .by_cluster
            .get(cluster)
            .map_or(states.is_empty(), |old| *old == states)
        {
            return;
        }
        self.generation += 1;
        let old = if states.is_empty() {
            self.by_cluster.remove(cluster)
        } else {
            self.by_cluster.insert(cluster.to_owned(), states.clone())
        };
        for pair in old.iter().flatten() {
            metrics.move_app_cluster(&pair.sync, &pair.health, -1);
            self.count_app(pair, false);
        }
        for pair in &states {
            metrics.move_app_cluster(&pair.sync, &pair.health, 1);
            self.count_app(pair, true);
        }
    }

    /// Count `pair` in (or out of) its app's counts; an app or a state
    /// with no pairs left is dropped, so the map holds only what exists.
    fn count_app(&mut self, pair: &PairState, add: bool) {
        let key = (pair.sync.clone(), pair.health.clone());
        if add {
            *self
                .by_app
                .entry(pair.app.clone())
                .or_default()
                .entry(key)
                .or_default() += 1;
            return;
        }
        let Some(states) = self.by_app.get_mut(&pair.app) else {
            return;
        };
        if let Some(count) = states.get_mut(&key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                states.remove(&key);
            }
        }
        if states.is_empty() {
            self.by_app.remove(&pair.app);
        }
    }

    /// See [`PairStates::generation`](#structfield.generation).
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Each app's clusters per `(sync, health)`: `f(app, sync, health, clusters)`.
    pub(crate) fn each_app_count(&self, mut f: impl FnMut(&str, &str, &str, usize)) {
        for (app, states) in &self.by_app {
            for ((sync, health), count) in states {
                f(app, sync, health, *count);
            }
        }
    }

    /// Every pair's state with its cluster, read in place (no copy of the
    /// fleet): the web UI's aggregates.
    pub(crate) fn each(&self, mut f: impl FnMut(&str, &PairState)) {
        for (cluster, pairs) in &self.by_cluster {
            for pair in pairs {
                f(cluster, pair);
            }
        }
    }

    #[cfg(test)]
    fn pairs(&self) -> usize {
        self.by_cluster.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use switchyard_common::proto::{Health, ResourceStatus, SyncStatus};

    fn item(app: &str, digest: &str) -> AssignmentItem {
        AssignmentItem {
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
        }
    }

    fn status(app: &str, digest: &str, rows: usize, message: &str) -> AppStatus {
        AppStatus {
            app: app.into(),
            commit: "c1".into(),
            digest: digest.into(),
            sync: SyncStatus::Synced,
            health: Health::Healthy,
            resources: (0..rows)
                .map(|i| ResourceStatus {
                    group: String::new(),
                    kind: "ConfigMap".into(),
                    namespace: None,
                    name: format!("cm-{i}"),
                    sync: SyncStatus::Synced,
                    health: Health::Healthy,
                    message: Some(message.into()),
                })
                .collect(),
            last_error: Some(message.into()),
            observed_at: 1,
        }
    }

    #[test]
    fn only_assigned_apps_are_kept_and_each_is_bounded() {
        let assignment = [item("web", "sha256:w"), item("db", "sha256:d")];
        let long = "é".repeat(MAX_MESSAGE_BYTES);
        let admitted = admit(
            &assignment,
            vec![
                status("web", "sha256:w", MAX_RESOURCES_PER_APP + 7, &long),
                status("intruder", "sha256:x", 1, "x"),
                status("db", "sha256:d", 2, "fine"),
                status("web", "sha256:w", 1, "a second report of web"),
            ],
        );
        let names: Vec<&str> = admitted.apps.iter().map(|a| a.app.as_str()).collect();
        assert_eq!(names, ["web", "db"]);
        assert_eq!(admitted.unassigned, ["intruder", "web"]);
        assert_eq!(admitted.rows_dropped, 7);
        let web = &admitted.apps[0];
        assert_eq!(web.resources.len(), MAX_RESOURCES_PER_APP);
        let message = web.resources[0].message.as_deref().unwrap();
        assert!(message.len() <= MAX_MESSAGE_BYTES && message.ends_with('…'));
        assert!(web.last_error.as_deref().unwrap().len() <= MAX_MESSAGE_BYTES);
        assert_eq!(admitted.apps[1], status("db", "sha256:d", 2, "fine"));
    }

    #[test]
    fn a_pair_shows_the_report_of_its_assigned_bundle_only() {
        let web = item("web", "sha256:new");
        assert_eq!(pair_state(&web, None), ("Unknown".into(), "Unknown".into()));
        let old = status("web", "sha256:old", 0, "");
        assert_eq!(
            pair_state(&web, Some(&old)),
            ("OutOfSync".into(), "Progressing".into())
        );
        let current = status("web", "sha256:new", 0, "");
        assert_eq!(
            pair_state(&web, Some(&current)),
            ("Synced".into(), "Healthy".into())
        );
    }

    #[test]
    fn replacing_a_clusters_states_moves_only_its_pairs() {
        let metrics = Metrics::default();
        let mut states = PairStates::default();
        let pair = |s: &str, h: &str| PairState {
            app: "web".to_owned(),
            sync: s.to_owned(),
            health: h.to_owned(),
        };
        states.replace("a", vec![pair("Synced", "Healthy"); 2], &metrics);
        states.replace("b", vec![pair("Unknown", "Unknown")], &metrics);
        let text = metrics.encode(0);
        assert!(
            text.contains("switchyard_app_clusters_by_sync{sync=\"Synced\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("switchyard_app_clusters_by_sync{sync=\"Unknown\"} 1"),
            "{text}"
        );

        states.replace("b", vec![pair("Synced", "Degraded")], &metrics);
        states.replace("a", Vec::new(), &metrics);
        assert_eq!(states.pairs(), 1);
        let text = metrics.encode(0);
        assert!(
            text.contains("switchyard_app_clusters_by_sync{sync=\"Synced\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("switchyard_app_clusters_by_health{health=\"Degraded\"} 1"),
            "{text}"
        );
        // A status nobody is in any more is gone, not left at its last count.
        assert!(!text.contains("sync=\"Unknown\""), "{text}");
        assert!(!text.contains("health=\"Healthy\""), "{text}");
    }

    /// Each app's counts as a fold over every pair computes them.
    fn counted_by_folding(states: &PairStates) -> BTreeMap<(String, String, String), usize> {
        let mut out = BTreeMap::new();
        states.each(|_, p| {
            *out.entry((p.app.clone(), p.sync.clone(), p.health.clone()))
                .or_default() += 1;
        });
        out
    }

    fn kept_counts(states: &PairStates) -> BTreeMap<(String, String, String), usize> {
        let mut out = BTreeMap::new();
        states.each_app_count(|app, sync, health, n| {
            out.insert((app.to_owned(), sync.to_owned(), health.to_owned()), n);
        });
        out
    }

    #[test]
    fn per_app_counts_follow_every_replace() {
        let metrics = Metrics::default();
        let mut states = PairStates::default();
        let pair = |app: &str, s: &str, h: &str| PairState {
            app: app.to_owned(),
            sync: s.to_owned(),
            health: h.to_owned(),
        };
        let steps: Vec<(&str, Vec<PairState>)> = vec![
            (
                "a",
                vec![
                    pair("web", "Synced", "Healthy"),
                    pair("db", "Synced", "Healthy"),
                ],
            ),
            ("b", vec![pair("web", "OutOfSync", "Progressing")]),
            ("c", vec![pair("web", "Synced", "Healthy")]),
            (
                "b",
                vec![
                    pair("web", "Synced", "Healthy"),
                    pair("db", "Unknown", "Unknown"),
                ],
            ),
            ("a", vec![pair("web", "Synced", "Degraded")]),
            ("c", Vec::new()),
        ];
        for (cluster, pairs) in steps {
            states.replace(cluster, pairs, &metrics);
            assert_eq!(kept_counts(&states), counted_by_folding(&states));
        }
        let counts = kept_counts(&states);
        assert_eq!(
            counts.get(&("web".into(), "Synced".into(), "Healthy".into())),
            Some(&1)
        );
        // db left cluster a and is Unknown on b only; no zero counts stay.
        assert_eq!(
            counts.get(&("db".into(), "Synced".into(), "Healthy".into())),
            None
        );
        states.replace("a", Vec::new(), &metrics);
        states.replace("b", Vec::new(), &metrics);
        assert!(kept_counts(&states).is_empty());
        assert!(states.by_app.is_empty());
    }

    #[test]
    fn the_generation_moves_only_when_a_pair_changes() {
        let metrics = Metrics::default();
        let mut states = PairStates::default();
        let pair = |s: &str| PairState {
            app: "web".to_owned(),
            sync: s.to_owned(),
            health: "Healthy".to_owned(),
        };
        let start = states.generation();
        states.replace("a", vec![pair("Synced")], &metrics);
        let first = states.generation();
        assert_ne!(first, start);
        // The same report again, and an absent cluster removed: no change.
        states.replace("a", vec![pair("Synced")], &metrics);
        states.replace("gone", Vec::new(), &metrics);
        assert_eq!(states.generation(), first);
        states.replace("a", vec![pair("OutOfSync")], &metrics);
        assert_ne!(states.generation(), first);
        let second = states.generation();
        states.replace("a", Vec::new(), &metrics);
        assert_ne!(states.generation(), second);
    }
}
