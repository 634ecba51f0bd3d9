//! Between the admin API's views and requests and the canonical specs:
//! what `export` prints and what `apply` sends.

use super::documents::{AppSpec, GroupSpec, HelmSpec, RepoSpec, Target};
use super::validate::canonical_interval;
use crate::gitops::{AppRequest, AppView, GroupRequest, GroupView, RepoRequest, RepoView};

impl RepoSpec {
    pub fn from_view(view: &RepoView) -> Self {
        Self {
            url: view.url.clone(),
            repo_type: (view.kind != "git").then(|| view.kind.clone()),
            branch: view.branch.clone(),
            interval: canonical_interval(&view.interval).unwrap_or_else(|_| view.interval.clone()),
            username: view.username.clone(),
            password_file: view.password_file.clone(),
            ca_file: view.ca_file.clone(),
            plain_http: view.plain_http,
            webhook_secret_file: view.webhook_secret_file.clone(),
        }
    }

    pub fn request(&self, name: &str) -> RepoRequest {
        RepoRequest {
            name: name.to_owned(),
            url: self.url.clone(),
            branch: (!self.branch.is_empty()).then(|| self.branch.clone()),
            interval_secs: Some(
                humantime::parse_duration(&self.interval)
                    .map_or(30, |d| d.as_secs())
                    .max(1),
            ),
            username: self.username.clone(),
            password_file: self.password_file.clone(),
            ca_file: self.ca_file.clone(),
            plain_http: self.plain_http,
            webhook_secret_file: self.webhook_secret_file.clone(),
            kind: Some(match self.repo_type.as_deref() {
                Some("helm") => crate::store::RepoKind::Helm,
                Some("oci") => crate::store::RepoKind::Oci,
                _ => crate::store::RepoKind::Git,
            }),
        }
    }
}

impl GroupSpec {
    pub fn from_view(view: &GroupView) -> Self {
        Self {
            selector: view.selector.clone(),
        }
    }

    pub fn request(&self, name: &str) -> GroupRequest {
        GroupRequest {
            name: name.to_owned(),
            selector: self.selector.clone(),
        }
    }
}

impl AppSpec {
    pub fn from_view(view: &AppView) -> Self {
        Self {
            repo: view.repo.clone(),
            path: view.path.clone(),
            revision: view.revision_configured.clone(),
            chart: view.chart.clone(),
            chart_version: view.chart_version.clone(),
            target: Target {
                group: view.group.clone(),
                selector: view.selector.clone(),
            },
            namespace: view.namespace.clone(),
            renderer: view.renderer.clone(),
            plugin_command: view.plugin_command.clone(),
            helm: view
                .helm
                .as_ref()
                .map(|h| Box::new(HelmSpec::from_settings(h))),
            directory: view.directory.clone().map(Box::new),
            manual: view.sync_policy == "manual",
            prune: view.prune,
            self_heal: view.self_heal,
            adopt: view.adopt,
            prune_namespaces: view.prune_namespaces,
            prune_crds: view.prune_crds,
            force_conflicts: view.force_conflicts,
            ignore_differences: view.ignore_differences.clone(),
            create_namespace: view.create_namespace,
            prune_last: view.prune_last,
        }
    }

    /// Every field set, empty strings clearing what the spec leaves out,
    /// so the same request creates an app or makes an existing one match.
    pub fn request(&self, name: &str) -> AppRequest {
        AppRequest {
            name: Some(name.to_owned()),
            repo: Some(self.repo.clone()),
            path: Some(self.path.clone()),
            revision: Some(self.revision.clone().unwrap_or_default()),
            selector: Some(self.target.selector.clone()),
            group: Some(self.target.group.clone().unwrap_or_default()),
            namespace: Some(self.namespace.clone().unwrap_or_default()),
            renderer: Some(self.renderer.clone()),
            plugin_command: Some(self.plugin_command.clone().unwrap_or_default()),
            chart: Some(self.chart.clone().unwrap_or_default()),
            chart_version: Some(self.chart_version.clone().unwrap_or_default()),
            // Empty settings clear what the spec leaves out.
            helm: Some(
                self.helm
                    .as_deref()
                    .map(HelmSpec::settings)
                    .unwrap_or_default(),
            ),
            directory: Some(self.directory.as_deref().cloned().unwrap_or_default()),
            manual: Some(self.manual),
            prune: Some(self.prune),
            self_heal: Some(self.self_heal),
            adopt: Some(self.adopt),
            prune_namespaces: Some(self.prune_namespaces),
            prune_crds: Some(self.prune_crds),
            force_conflicts: Some(self.force_conflicts),
            ignore_differences: Some(self.ignore_differences.clone()),
            create_namespace: Some(self.create_namespace),
            prune_last: Some(self.prune_last),
        }
    }
}
