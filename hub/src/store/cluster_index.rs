//! What lists and pages show of every cluster, kept in memory beside the
//! stored records.
//!
//! A cluster record holds its whole assignment (a digest and options per
//! app), so reading the fleet from the store decodes every assignment: at
//! 10,000 clusters × 100 apps that is a quarter of a gigabyte of JSON per
//! page of the web UI. Lists need only the small fields and which commit of
//! which app each cluster runs, so the store keeps that here, updated by
//! the same calls that write a record. App names and commits are interned:
//! thousands of clusters share a handful of them.

use super::ClusterRecord;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use switchyard_common::ClusterName;

/// A cluster without its assignment's details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSummary {
    pub name: ClusterName,
    pub labels: BTreeMap<String, String>,
    pub created_at: u64,
    pub enrolled_at: Option<u64>,
    pub cert_not_after: Option<u64>,
    pub agent_version: Option<String>,
    pub kubernetes_version: Option<String>,
    pub last_seen: Option<u64>,
    pub generation: u64,
    /// `(app, commit)` of every app assigned, in assignment order.
    pub assigned: Vec<(Arc<str>, Arc<str>)>,
}

impl ClusterSummary {
    /// The summary of `record`, interning its strings in `strings`.
    fn of(record: &ClusterRecord, strings: &mut Interner) -> Self {
        Self {
            name: record.name.clone(),
            labels: record.labels.clone(),
            created_at: record.created_at,
            enrolled_at: record.enrolled_at,
            cert_not_after: record.cert_not_after,
            agent_version: record.agent_version.clone(),
            kubernetes_version: record.kubernetes_version.clone(),
            last_seen: record.last_seen,
            generation: record.generation,
            assigned: record
                .assignment
                .iter()
                .map(|item| (strings.intern(&item.app), strings.intern(&item.commit)))
                .collect(),
        }
    }

    /// The commit of `app` this cluster is assigned, if any.
    pub fn commit_of(&self, app: &str) -> Option<&str> {
        self.assigned
            .iter()
            .find(|(a, _)| &**a == app)
            .map(|(_, c)| &**c)
    }
}

impl From<&ClusterRecord> for ClusterSummary {
    /// A summary on its own (not interned): for one cluster at a time.
    fn from(record: &ClusterRecord) -> Self {
        Self::of(record, &mut Interner::default())
    }
}

/// One shared copy of each app name and commit.
#[derive(Debug, Default)]
struct Interner {
    strings: HashSet<Arc<str>>,
    /// Size after the last sweep: the next sweep waits until it doubled.
    swept_at: usize,
}

impl Interner {
    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(shared) = self.strings.get(s) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(s);
        self.strings.insert(shared.clone());
        shared
    }

    /// Forget strings no summary uses any more (old commits), once the set
    /// has doubled since the last sweep, so the cost stays proportional.
    fn sweep(&mut self) {
        if self.strings.len() < 2 * self.swept_at.max(512) {
            return;
        }
        self.strings.retain(|s| Arc::strong_count(s) > 1);
        self.swept_at = self.strings.len();
    }
}

/// Every cluster's summary, by name.
#[derive(Debug, Default)]
pub(super) struct ClusterIndex {
    clusters: BTreeMap<String, Arc<ClusterSummary>>,
    strings: Interner,
}

impl ClusterIndex {
    /// The index of `records` (the store's whole cluster table).
    pub(super) fn of<'a>(records: impl IntoIterator<Item = &'a ClusterRecord>) -> Self {
        let mut index = Self::default();
        for record in records {
            index.put(record);
        }
        index
    }

    /// `record` was written.
    pub(super) fn put(&mut self, record: &ClusterRecord) {
        let summary = ClusterSummary::of(record, &mut self.strings);
        self.clusters
            .insert(record.name.as_str().to_owned(), Arc::new(summary));
        self.strings.sweep();
    }

    /// `name` was removed.
    pub(super) fn remove(&mut self, name: &str) {
        self.clusters.remove(name);
    }

    /// Every summary, by name.
    pub(super) fn list(&self) -> Vec<Arc<ClusterSummary>> {
        self.clusters.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_common::proto::AssignmentItem;

    fn record(name: &str, apps: &[(&str, &str)]) -> ClusterRecord {
        let mut record = ClusterRecord::new(
            ClusterName::new(name).unwrap(),
            BTreeMap::from([("env".to_owned(), "prod".to_owned())]),
            7,
        );
        record.assignment = apps
            .iter()
            .map(|(app, commit)| AssignmentItem {
                app: (*app).to_owned(),
                commit: (*commit).to_owned(),
                digest: "sha256:0".into(),
                namespace: None,
                prune: false,
                self_heal: false,
                ownership: Default::default(),
                ignore_differences: Vec::new(),
                prune_confirmed: None,
                create_namespace: true,
                prune_last: false,
                sync_requested: 0,
            })
            .collect();
        record
    }

    #[test]
    fn summaries_follow_writes_and_share_strings() {
        let mut index = ClusterIndex::of(&[
            record("a", &[("web", "c1"), ("db", "c9")]),
            record("b", &[("web", "c1")]),
        ]);
        let list = index.list();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].commit_of("db"), Some("c9"));
        assert_eq!(list[1].commit_of("db"), None);
        // One copy of "web" and of "c1" for both clusters.
        assert!(Arc::ptr_eq(&list[0].assigned[0].1, &list[1].assigned[0].1));

        index.put(&record("b", &[("web", "c2")]));
        index.remove("a");
        let list = index.list();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].name.as_str(), "b");
        assert_eq!(list[0].commit_of("web"), Some("c2"));
        assert_eq!(list[0].labels["env"], "prod");
    }

    #[test]
    fn old_commits_are_forgotten_once_the_set_doubles() {
        let mut index = ClusterIndex::default();
        for i in 0..5_000 {
            index.put(&record("a", &[("web", &format!("c{i}"))]));
        }
        // Without the sweep every commit ever seen would stay: 5,001.
        assert!(
            index.strings.strings.len() <= 2 * 512 + 2,
            "{}",
            index.strings.strings.len()
        );
        assert_eq!(index.list()[0].commit_of("web"), Some("c4999"));
    }
}
