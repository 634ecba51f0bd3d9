//! Cluster groups: named label selectors that apps target by name, so a
//! fleet's slices ("edge", "eu-prod") are defined once and every app that
//! targets one follows when its selector changes.

use super::{Error, GitOps, Result, invalid};
use crate::clock::rfc3339;
use crate::clock::unix_now;
use crate::store::{AppRecord, GroupRecord};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use switchyard_common::selector::Selector;
use switchyard_common::{NameKind, validate_name};
use tracing::info;

/// `group create` / `PUT /groups/{name}` parameters.
#[derive(utoipa::ToSchema, Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRequest {
    pub name: String,
    /// Label selector (Kubernetes syntax); empty selects every cluster.
    #[serde(default)]
    pub selector: String,
}

/// A cluster group as the API shows it.
#[derive(utoipa::ToSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupView {
    pub name: String,
    pub selector: String,
    /// Clusters whose labels match the selector now.
    pub clusters: Vec<String>,
    /// Apps that target the group.
    pub apps: Vec<String>,
    pub created_at: String,
}

/// The selector an app's clusters must match: its group's selector and its
/// own, both (an app with neither targets every cluster). A group that does
/// not exist selects nothing, so a dangling name never widens a rollout.
pub(crate) fn target_selector(
    app: &AppRecord,
    groups: &HashMap<String, GroupRecord>,
) -> Result<Selector, String> {
    let own = Selector::parse(&app.selector).map_err(|e| format!("invalid selector: {e}"))?;
    let Some(name) = &app.group else {
        return Ok(own);
    };
    let group = groups
        .get(name)
        .ok_or_else(|| format!("cluster group {name} not found"))?;
    let theirs = Selector::parse(&group.selector)
        .map_err(|e| format!("invalid selector of cluster group {name}: {e}"))?;
    let mut requirements = theirs.requirements().to_vec();
    requirements.extend(own.requirements().iter().cloned());
    Ok(Selector::from_requirements(requirements))
}

/// Check a group's name and normalize its selector.
pub fn validate_group(request: &GroupRequest) -> Result<GroupRecord> {
    validate_name(NameKind::Group, &request.name)?;
    let selector =
        Selector::parse(&request.selector).map_err(|e| invalid("selector", e.to_string()))?;
    Ok(GroupRecord {
        name: request.name.clone(),
        selector: selector.to_string(),
        created_at: unix_now(),
    })
}

impl GitOps {
    pub(crate) fn groups_by_name(&self) -> Result<HashMap<String, GroupRecord>> {
        Ok(self
            .store
            .groups()?
            .into_iter()
            .map(|g| (g.name.clone(), g))
            .collect())
    }

    fn group_view(&self, group: &GroupRecord) -> Result<GroupView> {
        let selector = Selector::parse(&group.selector).ok();
        let clusters = self
            .store
            .cluster_summaries()?
            .iter()
            .filter(|c| selector.as_ref().is_some_and(|s| s.matches(&c.labels)))
            .map(|c| c.name.as_str().to_owned())
            .collect();
        let apps = self
            .store
            .apps()?
            .into_iter()
            .filter(|a| a.group.as_deref() == Some(group.name.as_str()))
            .map(|a| a.name)
            .collect();
        Ok(GroupView {
            name: group.name.clone(),
            selector: group.selector.clone(),
            clusters,
            apps,
            created_at: rfc3339(group.created_at),
        })
    }

    pub fn groups(&self) -> Result<Vec<GroupView>> {
        self.store
            .groups()?
            .iter()
            .map(|g| self.group_view(g))
            .collect()
    }

    pub fn group(&self, name: &str) -> Result<GroupView> {
        let group = self
            .store
            .group(name)?
            .ok_or_else(|| Error::GroupNotFound(name.to_owned()))?;
        self.group_view(&group)
    }

    pub async fn create_group(&self, request: GroupRequest) -> Result<GroupView> {
        let group = validate_group(&request)?;
        self.store.create_group(&group)?;
        info!(group = %group.name, selector = %group.selector, "cluster group created");
        self.group(&group.name)
    }

    /// Change a group's selector; the apps that target it follow at once.
    pub async fn replace_group(&self, name: &str, request: GroupRequest) -> Result<GroupView> {
        if request.name != name {
            return Err(invalid("name", "a cluster group cannot be renamed"));
        }
        let new = validate_group(&request)?;
        self.store
            .update_group(name, &mut |g| g.selector = new.selector.clone())?
            .ok_or_else(|| Error::GroupNotFound(name.to_owned()))?;
        info!(group = %name, selector = %new.selector, "cluster group changed");
        self.reconcile("admin").await?;
        self.group(name)
    }

    /// Remove a group no app targets.
    pub async fn delete_group(&self, name: &str) -> Result<GroupView> {
        let view = self.group(name)?;
        if !view.apps.is_empty() {
            return Err(Error::GroupInUse {
                group: name.to_owned(),
                apps: view.apps.join(", "),
            });
        }
        self.store.remove_group(name)?;
        info!(group = %name, "cluster group deleted");
        Ok(view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn app(selector: &str, group: Option<&str>) -> AppRecord {
        AppRecord {
            selector: selector.into(),
            group: group.map(str::to_owned),
            ..AppRecord::example("web", "r")
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn an_app_matches_its_group_and_its_own_selector_both() {
        let groups: HashMap<String, GroupRecord> = [(
            "edge".to_owned(),
            GroupRecord {
                name: "edge".into(),
                selector: "tier=edge".into(),
                created_at: 0,
            },
        )]
        .into();
        let both = target_selector(&app("env=prod", Some("edge")), &groups).unwrap();
        assert!(both.matches(&labels(&[("tier", "edge"), ("env", "prod")])));
        assert!(!both.matches(&labels(&[("tier", "edge"), ("env", "dev")])));
        assert!(!both.matches(&labels(&[("tier", "core"), ("env", "prod")])));
        let group_only = target_selector(&app("", Some("edge")), &groups).unwrap();
        assert!(group_only.matches(&labels(&[("tier", "edge")])));
        assert!(!group_only.matches(&labels(&[])));
        let neither = target_selector(&app("", None), &groups).unwrap();
        assert!(neither.matches(&labels(&[])));
        let missing = target_selector(&app("", Some("gone")), &groups).unwrap_err();
        assert_eq!(missing, "cluster group gone not found");
    }

    #[test]
    fn group_selectors_are_checked_and_normalized() {
        let ok = validate_group(&GroupRequest {
            name: "eu".into(),
            selector: "region in (eu-west,eu-central) , tier=edge".into(),
        })
        .unwrap();
        assert_eq!(ok.selector, "region in (eu-central,eu-west),tier=edge");
        let bad = validate_group(&GroupRequest {
            name: "eu".into(),
            selector: "region in (".into(),
        });
        assert!(
            matches!(
                bad,
                Err(Error::Invalid {
                    field: "selector",
                    ..
                })
            ),
            "{bad:?}"
        );
        assert!(
            validate_group(&GroupRequest {
                name: "a b".into(),
                selector: String::new(),
            })
            .is_err()
        );
    }
}
