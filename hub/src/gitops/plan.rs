//! Planning assignments: which apps, at which commit and bundle, each
//! cluster should run. Pure over its inputs; rendering and storing bundles
//! are passed in as closures so the decision can be tested on its own.

use crate::render::ObjectKey;
use crate::store::{AppRecord, ClusterRecord};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use switchyard_common::proto::AssignmentItem;
use switchyard_common::selector::Selector;

/// The bundle one cluster gets for one app, or why it cannot have one.
pub(crate) type BundleOutcome = Result<String, String>;

/// The new assignment of one cluster, and the per-app errors met planning it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ClusterPlan {
    pub(crate) items: Vec<AssignmentItem>,
    /// App name -> error for this cluster (the previous item was kept).
    pub(crate) errors: BTreeMap<String, String>,
}

/// Decide one cluster's assignment.
///
/// `bundle_for(app, cluster)` renders (cached by the caller) and returns the
/// digest of the cluster's bundle for the app's deployed commit. When it
/// fails, the cluster keeps the item it had for that app, so a broken commit
/// never withdraws what was running: the last good bundle stays assigned.
pub(crate) fn plan_cluster(
    cluster: &ClusterRecord,
    apps: &[(AppRecord, Selector)],
    mut bundle_for: impl FnMut(&AppRecord, &ClusterRecord) -> BundleOutcome,
) -> ClusterPlan {
    let mut plan = ClusterPlan::default();
    for (app, selector) in apps {
        if !selector.matches(&cluster.labels) {
            continue;
        }
        let Some(commit) = app.deployed.as_ref() else {
            continue;
        };
        match bundle_for(app, cluster) {
            Ok(digest) => plan.items.push(AssignmentItem {
                app: app.name.clone(),
                commit: commit.clone(),
                digest,
                namespace: app.namespace.clone(),
                prune: app.prune,
                self_heal: app.self_heal,
                ownership: app.ownership,
                ignore_differences: app.ignore_differences.iter().map(|r| r.to_rule()).collect(),
                prune_confirmed: app.prune_confirmed.clone(),
                create_namespace: app.create_namespace,
                prune_last: app.prune_last,
                sync_requested: app.sync_requests,
            }),
            Err(error) => {
                if let Some(previous) = cluster.assignment.iter().find(|i| i.app == app.name) {
                    plan.items.push(previous.clone());
                }
                plan.errors.insert(app.name.clone(), error);
            }
        }
    }
    plan.items.sort_by(|a, b| a.app.cmp(&b.app));
    plan
}

/// Objects one cluster would get from more than one app: for each app
/// concerned, a warning naming the other app and the object. The agent
/// writes such an object only for the app whose label it carries (the one
/// that created it) and reports a conflict for the other, so the hub says
/// it at planning time, before either agent runs. `keys_of(digest)` gives
/// the objects of a bundle, `None` when unknown (they are then not checked).
pub(crate) fn shared_objects(
    items: &[AssignmentItem],
    keys_of: impl Fn(&str) -> Option<Arc<Vec<ObjectKey>>>,
) -> BTreeMap<String, String> {
    let mut warnings = BTreeMap::new();
    if items.len() < 2 {
        return warnings;
    }
    let bundles: Vec<(&str, Arc<Vec<ObjectKey>>)> = items
        .iter()
        .filter_map(|i| Some((i.app.as_str(), keys_of(&i.digest)?)))
        .collect();
    let mut owner: HashMap<&ObjectKey, &str> = HashMap::new();
    // App -> other app -> the objects both define.
    let mut shared: BTreeMap<&str, BTreeMap<&str, Vec<&ObjectKey>>> = BTreeMap::new();
    for (app, keys) in &bundles {
        for key in keys.iter() {
            match owner.get(key) {
                Some(other) if other != app => {
                    shared
                        .entry(app)
                        .or_default()
                        .entry(other)
                        .or_default()
                        .push(key);
                    shared
                        .entry(other)
                        .or_default()
                        .entry(app)
                        .or_default()
                        .push(key);
                }
                Some(_) => {}
                None => {
                    owner.insert(key, app);
                }
            }
        }
    }
    for (app, others) in shared {
        let text: Vec<String> = others
            .iter()
            .map(|(other, keys)| {
                let more = match keys.len() {
                    1 => String::new(),
                    n => format!(" (and {} more objects)", n - 1),
                };
                format!("{}{more} is also defined by app {other}", keys[0])
            })
            .collect();
        warnings.insert(
            app.to_owned(),
            format!(
                "{} on this cluster: only the app that created it writes it; the other \
                 reports a conflict",
                text.join("; ")
            ),
        );
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_common::ClusterName;

    fn cluster(
        name: &str,
        labels: &[(&str, &str)],
        assignment: Vec<AssignmentItem>,
    ) -> ClusterRecord {
        let mut c = ClusterRecord::new(
            ClusterName::new(name).unwrap(),
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            0,
        );
        c.assignment = assignment;
        c
    }

    fn app(name: &str, selector: &str, deployed: Option<&str>) -> (AppRecord, Selector) {
        let record = AppRecord {
            selector: selector.into(),
            namespace: Some("web".into()),
            prune: true,
            deployed: deployed.map(str::to_owned),
            latest: deployed.map(str::to_owned),
            ..AppRecord::example(name, "r")
        };
        (record, Selector::parse(selector).unwrap())
    }

    fn item(app: &str, commit: &str, digest: &str) -> AssignmentItem {
        AssignmentItem {
            app: app.into(),
            commit: commit.into(),
            digest: digest.into(),
            namespace: Some("web".into()),
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

    #[test]
    fn only_matching_apps_with_a_deployed_commit_are_assigned() {
        let apps = vec![
            app("web", "env=prod", Some("c1")),
            app("lab", "env=staging", Some("c2")),
            app("manual-not-synced", "", None),
        ];
        let prod = cluster("a", &[("env", "prod")], vec![]);
        let plan = plan_cluster(&prod, &apps, |a, c| Ok(format!("d-{}-{}", a.name, c.name)));
        assert_eq!(plan.items, vec![item("web", "c1", "d-web-a")]);
        assert!(plan.errors.is_empty());
    }

    #[test]
    fn a_failing_render_keeps_the_last_good_item() {
        let apps = vec![app("web", "", Some("c2")), app("new", "", Some("c9"))];
        let c = cluster("a", &[], vec![item("web", "c1", "d-old")]);
        let plan = plan_cluster(&c, &apps, |_, _| Err("bad yaml at x.yaml:3".into()));
        // The app that was running keeps its bundle; the new one gets nothing.
        assert_eq!(plan.items, vec![item("web", "c1", "d-old")]);
        assert_eq!(plan.errors.len(), 2);
        assert_eq!(plan.errors["web"], "bad yaml at x.yaml:3");
    }

    #[test]
    fn items_are_sorted_so_equal_plans_compare_equal() {
        let apps = vec![app("zeta", "", Some("c")), app("alpha", "", Some("c"))];
        let c = cluster("a", &[], vec![]);
        let plan = plan_cluster(&c, &apps, |a, _| Ok(a.name.clone()));
        let names: Vec<_> = plan.items.iter().map(|i| i.app.as_str()).collect();
        assert_eq!(names, ["alpha", "zeta"]);
    }

    #[test]
    fn objects_two_apps_bring_to_one_cluster_are_named_for_both() {
        let key = |kind: &str, name: &str| ObjectKey {
            group: String::new(),
            kind: kind.into(),
            namespace: "shop".into(),
            name: name.into(),
        };
        let keys: HashMap<&str, Arc<Vec<ObjectKey>>> = [
            (
                "d-web",
                Arc::new(vec![key("ConfigMap", "settings"), key("Service", "web")]),
            ),
            (
                "d-api",
                Arc::new(vec![key("ConfigMap", "settings"), key("Service", "api")]),
            ),
            ("d-db", Arc::new(vec![key("Service", "db")])),
        ]
        .into_iter()
        .collect();
        let item = |app: &str, digest: &str| AssignmentItem {
            app: app.into(),
            commit: "c1".into(),
            digest: digest.into(),
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
        let lookup = |d: &str| keys.get(d).cloned();
        let items = [
            item("api", "d-api"),
            item("db", "d-db"),
            item("web", "d-web"),
        ];
        let found = shared_objects(&items, lookup);
        let tail = " on this cluster: only the app that created it writes it; the other reports a conflict";
        assert_eq!(
            found,
            BTreeMap::from([
                (
                    "api".to_owned(),
                    format!(
                        "ConfigMap settings in namespace shop is also defined by app web{tail}"
                    )
                ),
                (
                    "web".to_owned(),
                    format!(
                        "ConfigMap settings in namespace shop is also defined by app api{tail}"
                    )
                ),
            ])
        );
        // Apart, or with a bundle whose objects are unknown, nothing is said.
        assert!(shared_objects(&items[..2], lookup).is_empty());
        assert!(shared_objects(&[item("api", "d-api"), item("web", "unknown")], lookup).is_empty());
    }
}
