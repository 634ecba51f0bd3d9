//! `app manifests`: the objects a cluster receives for an app, read from the bundle its assignment names (for every renderer).

use super::{Error, GitOps, Result, invalid};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_common::ClusterName;
use switchyard_common::bundle::Bundle;
use switchyard_common::proto::AssignmentItem;

/// The objects of one app's bundle, and which clusters it is assigned to.
#[derive(utoipa::ToSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestsView {
    pub app: String,
    pub commit: String,
    pub digest: String,
    /// Clusters assigned exactly this bundle.
    pub clusters: Vec<String>,
    /// Namespace the agent gives namespaced objects that name none.
    pub namespace: Option<String>,
    /// In the bundle's canonical order.
    #[schema(value_type = Vec<Object>)]
    pub objects: Vec<Value>,
}

/// Which bundle to show: `cluster`'s, or the one every assigned cluster
/// shares. `assigned` is every (cluster, item) assigned the app.
pub(crate) fn choose<'a>(
    app: &str,
    cluster: Option<&str>,
    assigned: &'a [(String, AssignmentItem)],
) -> std::result::Result<&'a AssignmentItem, String> {
    if let Some(cluster) = cluster {
        return assigned
            .iter()
            .find(|(c, _)| c == cluster)
            .map(|(_, item)| item)
            .ok_or_else(|| {
                format!("cluster {cluster} is not assigned app {app} (yet); see `switchyard status {app}`")
            });
    }
    let Some((_, first)) = assigned.first() else {
        return Err(format!(
            "no cluster is assigned app {app} yet; see `switchyard app show {app}`"
        ));
    };
    if let Some((other, _)) = assigned.iter().find(|(_, i)| i.digest != first.digest) {
        return Err(format!(
            "clusters receive different bundles of app {app} (e.g. {} and {other}); choose one with --cluster",
            assigned[0].0
        ));
    }
    Ok(first)
}

impl GitOps {
    /// The objects `cluster` (or every assigned cluster, when they share
    /// one bundle) receives for app `name`.
    pub fn app_manifests(&self, name: &str, cluster: Option<&str>) -> Result<ManifestsView> {
        let app = self.load_app(name)?;
        if let Some(c) = cluster {
            let known = ClusterName::new(c.to_owned())
                .ok()
                .map(|n| self.store.cluster(&n))
                .transpose()?
                .flatten();
            if known.is_none() {
                return Err(invalid("cluster", format!("cluster {c} not found")));
            }
        }
        let assigned: Vec<(String, AssignmentItem)> = self
            .store
            .clusters()?
            .into_iter()
            .filter_map(|c| {
                let item = c.assignment.into_iter().find(|i| i.app == app.name)?;
                Some((c.name.to_string(), item))
            })
            .collect();
        let item = choose(&app.name, cluster, &assigned).map_err(|e| invalid("cluster", e))?;
        let compressed = self
            .store
            .bundle(&item.digest)?
            .ok_or_else(|| Error::Bundle(format!("bundle {} is not in the store", item.digest)))?;
        let max =
            usize::try_from(self.limits.max_rendered_bytes.saturating_mul(2)).unwrap_or(usize::MAX);
        let bundle = Bundle::decode(&compressed, &item.digest, max)
            .map_err(|e| Error::Bundle(format!("bundle {}: {e}", item.digest)))?;
        Ok(ManifestsView {
            app: app.name.clone(),
            commit: item.commit.clone(),
            digest: item.digest.clone(),
            clusters: assigned
                .iter()
                .filter(|(_, i)| i.digest == item.digest)
                .map(|(c, _)| c.clone())
                .collect(),
            namespace: item.namespace.clone(),
            objects: bundle.objects,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(digest: &str) -> AssignmentItem {
        AssignmentItem {
            app: "web".into(),
            commit: "c".into(),
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
        }
    }

    #[test]
    fn a_shared_bundle_needs_no_cluster_and_different_ones_do() {
        let same = vec![("a".to_owned(), item("d1")), ("b".to_owned(), item("d1"))];
        assert_eq!(choose("web", None, &same).unwrap().digest, "d1");
        let differ = vec![("a".to_owned(), item("d1")), ("b".to_owned(), item("d2"))];
        let e = choose("web", None, &differ).unwrap_err();
        assert!(e.contains("choose one with --cluster"), "{e}");
        assert_eq!(choose("web", Some("b"), &differ).unwrap().digest, "d2");
        assert!(choose("web", Some("c"), &differ).is_err());
        assert!(choose("web", None, &[]).unwrap_err().contains("no cluster"));
    }
}
