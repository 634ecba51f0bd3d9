//! An app's lifecycle: creating, changing and deleting it, checking its
//! fields, and how the API shows it.

use super::{AppRequest, AppView, Error, GitOps, Result, groups, helm, invalid};
use crate::clock::rfc3339;
use crate::clock::unix_now;
use crate::render::RendererKind;
use crate::store::{AppRecord, RepoKind};
use std::collections::BTreeMap;
use switchyard_common::selector::Selector;
use switchyard_common::{NameKind, validate_name};
use tracing::info;

/// The commit an app shows as deployed, and the one that failed to render
/// if its chosen commit did: a commit that never rendered runs nowhere, so
/// it is not called deployed; the clusters' commit is, when they agree.
fn shown_deployed(
    app: &AppRecord,
    running: &BTreeMap<String, usize>,
) -> (Option<String>, Option<String>) {
    let failed = app.errors.values().any(|e| super::pass::is_render_error(e))
        || app
            .render_failure
            .as_ref()
            .is_some_and(|f| Some(&f.commit) == app.deployed.as_ref());
    match &app.deployed {
        Some(commit) if failed => {
            let only = (running.len() == 1)
                .then(|| running.keys().next().cloned())
                .flatten();
            (only, Some(commit.clone()))
        }
        deployed => (deployed.clone(), None),
    }
}

/// Which commit of which app every cluster runs, read once for a list of
/// apps: built in one pass over the store's cluster summaries, so listing
/// 100 apps over 10,000 clusters does not scan the fleet 100 times.
struct FleetAssignments {
    clusters: Vec<std::sync::Arc<crate::store::ClusterSummary>>,
    /// Per app: per commit, the indices (into `clusters`) running it.
    running:
        std::collections::HashMap<std::sync::Arc<str>, BTreeMap<std::sync::Arc<str>, Vec<usize>>>,
    /// Clusters with identical labels together: selectors are matched once
    /// per label set (fleets have few), not once per cluster.
    by_labels: Vec<Vec<usize>>,
}

impl FleetAssignments {
    /// Over `clusters`; with `only`, the assignments of that app alone.
    fn of(clusters: Vec<std::sync::Arc<crate::store::ClusterSummary>>, only: Option<&str>) -> Self {
        let mut running: std::collections::HashMap<_, BTreeMap<_, Vec<usize>>> =
            std::collections::HashMap::new();
        let mut label_sets: std::collections::HashMap<&BTreeMap<String, String>, usize> =
            std::collections::HashMap::new();
        let mut by_labels: Vec<Vec<usize>> = Vec::new();
        for (index, cluster) in clusters.iter().enumerate() {
            for (app, commit) in &cluster.assigned {
                if only.is_some_and(|o| o != &**app) {
                    continue;
                }
                running
                    .entry(app.clone())
                    .or_default()
                    .entry(commit.clone())
                    .or_default()
                    .push(index);
            }
            let set = *label_sets.entry(&cluster.labels).or_insert_with(|| {
                by_labels.push(Vec::new());
                by_labels.len() - 1
            });
            by_labels[set].push(index);
        }
        Self {
            running,
            by_labels,
            clusters,
        }
    }

    fn name(&self, index: usize) -> String {
        self.clusters[index].name.as_str().to_owned()
    }
}

impl GitOps {
    pub fn app_view(&self, app: &AppRecord) -> Result<AppView> {
        let fleet = FleetAssignments::of(self.store.cluster_summaries()?, Some(&app.name));
        self.app_view_over(app, &fleet, &self.groups_by_name()?, true)
    }

    /// [`GitOps::app_view`] over clusters and groups already read, so a
    /// list of apps reads the fleet once, not once per app. Without
    /// `cluster_lists`, `running` and `target_clusters` are `None` (the
    /// counts are there): for lists and pages that show counts only.
    fn app_view_over(
        &self,
        app: &AppRecord,
        fleet: &FleetAssignments,
        groups: &std::collections::HashMap<String, crate::store::GroupRecord>,
        cluster_lists: bool,
    ) -> Result<AppView> {
        let repo = self.store.repo(&app.repo)?;
        let selector = groups::target_selector(app, groups).ok();
        let empty = BTreeMap::new();
        let by_commit = fleet.running.get(app.name.as_str()).unwrap_or(&empty);
        let running_counts: BTreeMap<String, usize> = by_commit
            .iter()
            .map(|(commit, clusters)| (commit.to_string(), clusters.len()))
            .collect();
        let running: Option<BTreeMap<String, Vec<String>>> = cluster_lists.then(|| {
            by_commit
                .iter()
                .map(|(commit, clusters)| {
                    let names = clusters.iter().map(|&i| fleet.name(i)).collect();
                    (commit.to_string(), names)
                })
                .collect()
        });
        let mut targeted = vec![false; fleet.clusters.len()];
        if let Some(selector) = &selector {
            for set in &fleet.by_labels {
                if selector.matches(&fleet.clusters[set[0]].labels) {
                    for &index in set {
                        targeted[index] = true;
                    }
                }
            }
        }
        let target_count = targeted.iter().filter(|&&t| t).count();
        let targets: Option<Vec<String>> = cluster_lists.then(|| {
            (0..fleet.clusters.len())
                .filter(|&i| targeted[i])
                .map(|i| fleet.name(i))
                .collect()
        });
        let (deployed, failed_commit) = shown_deployed(app, &running_counts);
        // Targeted clusters that run the deployed commit.
        let assigned = deployed
            .as_deref()
            .and_then(|d| by_commit.get(d))
            .map_or(0, |clusters| {
                clusters.iter().filter(|&&i| targeted[i]).count()
            });
        Ok(AppView {
            name: app.name.clone(),
            repo: app.repo.clone(),
            path: app.path.clone(),
            revision: match &app.chart {
                Some(_) => app
                    .chart_version
                    .clone()
                    .unwrap_or_else(|| "latest stable".into()),
                None => app
                    .revision
                    .clone()
                    .or_else(|| repo.map(|r| r.branch))
                    .unwrap_or_default(),
            },
            revision_configured: app.revision.clone(),
            chart: app.chart.clone(),
            chart_version: app.chart_version.clone(),
            selector: app.selector.clone(),
            group: app.group.clone(),
            namespace: app.namespace.clone(),
            renderer: app.renderer.clone(),
            plugin_command: app.plugin_command.clone(),
            helm: app.helm.clone(),
            directory: app.directory.clone(),
            sync_policy: if app.manual { "manual" } else { "automatic" }.into(),
            prune: app.prune,
            self_heal: app.self_heal,
            adopt: app.ownership.adopt,
            prune_namespaces: app.ownership.prune_namespaces,
            prune_crds: app.ownership.prune_crds,
            force_conflicts: app.ownership.force_conflicts,
            ignore_differences: app.ignore_differences.clone(),
            create_namespace: app.create_namespace,
            prune_last: app.prune_last,
            prune_confirmed: app.prune_confirmed.clone(),
            latest: app.latest.clone(),
            deployed,
            failed_commit,
            running_counts,
            running,
            pending: app
                .latest
                .clone()
                .filter(|l| Some(l) != app.deployed.as_ref()),
            pinned: app.pinned,
            target_count,
            target_clusters: targets,
            assigned,
            errors: app.errors.clone(),
            warnings: self.caches.shared_objects(&app.name),
            created_at: rfc3339(app.created_at),
        })
    }

    pub fn apps(&self) -> Result<Vec<AppView>> {
        self.apps_page(true, None, None)
    }

    /// [`GitOps::apps`] without the per-cluster lists (`running` and
    /// `target_clusters` are `None`; the counts are there): what a list
    /// showing counts needs, without naming 10,000 clusters per app.
    pub fn apps_without_cluster_lists(&self) -> Result<Vec<AppView>> {
        self.apps_page(false, None, None)
    }

    /// The apps by name after `after` (all without), at most `limit` of
    /// them (all without), with or without the per-cluster lists.
    pub fn apps_page(
        &self,
        cluster_lists: bool,
        after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<AppView>> {
        let mut apps = self.store.apps()?;
        apps.sort_by(|a, b| a.name.cmp(&b.name));
        let apps = apps
            .iter()
            .filter(|a| after.is_none_or(|after| a.name.as_str() > after))
            .take(limit.unwrap_or(usize::MAX));
        let fleet = FleetAssignments::of(self.store.cluster_summaries()?, None);
        let groups = self.groups_by_name()?;
        apps.map(|a| self.app_view_over(a, &fleet, &groups, cluster_lists))
            .collect()
    }

    pub fn app(&self, name: &str) -> Result<AppView> {
        let app = self.load_app(name)?;
        self.app_view(&app)
    }

    pub(super) fn load_app(&self, name: &str) -> Result<AppRecord> {
        self.store
            .app(name)?
            .ok_or_else(|| Error::AppNotFound(name.to_owned()))
    }

    /// Check an app's fields, filling defaults.
    fn validate_app(&self, app: &mut AppRecord) -> Result<()> {
        let Some(repo) = self.store.repo(&app.repo)? else {
            return Err(Error::RepoNotFound(app.repo.clone()));
        };
        app.path = normalize_app_path(&app.path)?;
        check_chart(&repo, app)?;
        let selector =
            Selector::parse(&app.selector).map_err(|e| invalid("selector", e.to_string()))?;
        app.selector = selector.to_string();
        if let Some(group) = &app.group
            && self.store.group(group)?.is_none()
        {
            return Err(Error::GroupNotFound(group.clone()));
        }
        renderer_of(app).map_err(|e| invalid("renderer", e))?;
        helm::validate(&app.renderer, &app.path, app.helm.as_ref())
            .map_err(|e| invalid("helm", e))?;
        validate_directory(&app.renderer, app.directory.as_ref())
            .map_err(|e| invalid("directory", e))?;
        validate_ignore_differences(&app.ignore_differences)
            .map_err(|e| invalid("ignoreDifferences", e))?;
        if let Some(ns) = &app.namespace
            && switchyard_common::ClusterName::new(ns.clone()).is_err()
        {
            return Err(invalid("namespace", format!("{ns:?} is not a DNS label")));
        }
        Ok(())
    }

    pub async fn create_app(&self, request: AppRequest) -> Result<AppView> {
        let name = request
            .name
            .clone()
            .ok_or_else(|| invalid("name", "required"))?;
        let mut app = AppRecord {
            name,
            repo: request
                .repo
                .clone()
                .ok_or_else(|| invalid("repo", "required"))?,
            // A chart from a chart repository has no path in a tree.
            path: match (&request.path, &request.chart) {
                (Some(path), _) => path.clone(),
                (None, Some(_)) => ".".into(),
                (None, None) => return Err(invalid("path", "required")),
            },
            revision: request.revision.clone().filter(|r| !r.is_empty()),
            selector: request.selector.clone().unwrap_or_default(),
            group: request.group.clone().filter(|g| !g.is_empty()),
            namespace: request.namespace.clone().filter(|n| !n.is_empty()),
            renderer: request.renderer.clone().unwrap_or_else(|| {
                if request.chart.is_some() {
                    "helm"
                } else {
                    "directory"
                }
                .into()
            }),
            plugin_command: request.plugin_command.clone().filter(|c| !c.is_empty()),
            helm: request
                .helm
                .clone()
                .filter(|h| *h != crate::store::HelmSettings::default()),
            directory: request.directory.clone().filter(|d| !d.is_default()),
            manual: request.manual.unwrap_or(false),
            chart: request.chart.clone().filter(|c| !c.is_empty()),
            chart_version: request.chart_version.clone().filter(|v| !v.is_empty()),
            prune: request.prune.unwrap_or(false),
            self_heal: request.self_heal.unwrap_or(false),
            ownership: switchyard_common::proto::Ownership {
                adopt: request.adopt.unwrap_or(false),
                prune_namespaces: request.prune_namespaces.unwrap_or(false),
                prune_crds: request.prune_crds.unwrap_or(false),
                force_conflicts: request.force_conflicts.unwrap_or(false),
            },
            ignore_differences: request.ignore_differences.clone().unwrap_or_default(),
            create_namespace: request.create_namespace.unwrap_or(true),
            prune_last: request.prune_last.unwrap_or(false),
            prune_confirmed: None,
            sync_requests: 0,
            created_at: unix_now(),
            deployed: None,
            pinned: false,
            latest: None,
            errors: BTreeMap::new(),
            render_failure: None,
        };
        // Only new names: an app stored before the rule can still be updated.
        validate_name(NameKind::App, &app.name)?;
        self.validate_app(&mut app)?;
        self.store.create_app(&app)?;
        info!(app = %app.name, repo = %app.repo, path = %app.path, "app created");
        // Only tracked revisions (and, in an OCI registry, charts) are
        // fetched: one new to the repo arrives with this fetch.
        if app.revision.is_some() || app.chart.is_some() {
            self.fetch_soon(&app.repo);
        }
        self.reconcile("admin").await?;
        self.app(&app.name)
    }

    pub async fn update_app(&self, name: &str, request: AppRequest) -> Result<AppView> {
        let writing = self.planning.lock().await;
        let mut app = self.load_app(name)?;
        if let Some(n) = &request.name
            && n != name
        {
            return Err(invalid("name", "an app cannot be renamed"));
        }
        if let Some(v) = request.repo {
            app.repo = v;
        }
        if let Some(v) = request.path {
            app.path = v;
        }
        if let Some(v) = request.revision {
            app.revision = Some(v).filter(|r| !r.is_empty());
        }
        if let Some(v) = request.selector {
            app.selector = v;
        }
        if let Some(v) = request.group {
            app.group = Some(v).filter(|g| !g.is_empty());
        }
        if let Some(v) = request.namespace {
            app.namespace = Some(v).filter(|n| !n.is_empty());
        }
        if let Some(v) = request.renderer {
            app.renderer = v;
        }
        if let Some(v) = request.plugin_command {
            app.plugin_command = Some(v).filter(|c| !c.is_empty());
        }
        if let Some(v) = request.helm {
            app.helm = Some(v).filter(|h| *h != crate::store::HelmSettings::default());
        }
        if let Some(v) = request.directory {
            app.directory = Some(v).filter(|d| !d.is_default());
        }
        if let Some(v) = request.chart {
            app.chart = Some(v).filter(|c| !c.is_empty());
        }
        if let Some(v) = request.chart_version {
            app.chart_version = Some(v).filter(|v| !v.is_empty());
        }
        if let Some(v) = request.manual {
            app.manual = v;
        }
        if let Some(v) = request.prune {
            app.prune = v;
        }
        if let Some(v) = request.self_heal {
            app.self_heal = v;
        }
        if let Some(v) = request.adopt {
            app.ownership.adopt = v;
        }
        if let Some(v) = request.prune_namespaces {
            app.ownership.prune_namespaces = v;
        }
        if let Some(v) = request.prune_crds {
            app.ownership.prune_crds = v;
        }
        if let Some(v) = request.force_conflicts {
            app.ownership.force_conflicts = v;
        }
        if let Some(v) = request.ignore_differences {
            app.ignore_differences = v;
        }
        if let Some(v) = request.create_namespace {
            app.create_namespace = v;
        }
        if let Some(v) = request.prune_last {
            app.prune_last = v;
        }
        self.validate_app(&mut app)?;
        let updated = app.clone();
        self.store
            .update_app(name, true, &mut |a| *a = updated.clone())?
            .ok_or_else(|| Error::AppNotFound(name.to_owned()))?;
        drop(writing);
        // Only tracked revisions are fetched: a new one arrives with this fetch.
        self.fetch_soon(&app.repo);
        self.reconcile("admin").await?;
        self.app(name)
    }

    pub async fn delete_app(&self, name: &str) -> Result<AppView> {
        let app = self.load_app(name)?;
        let view = self.app_view(&app)?;
        self.store.remove_app(name)?;
        info!(app = %name, "app deleted");
        self.reconcile("admin").await?;
        Ok(view)
    }
}

/// Directory settings apply to the directory and jsonnet renderers only,
/// and must be valid (globs, argument names, library paths).
/// Field managers one app's ignore rules may name (the agent's live view
/// keeps the entries of as many, over all its apps).
const MAX_IGNORED_MANAGERS: usize = 16;

/// An app's `ignoreDifferences`, as the agent will read them; rules with
/// what the agent cannot apply yet are refused, never half applied.
pub(crate) fn validate_ignore_differences(
    rules: &[crate::store::IgnoreDifference],
) -> std::result::Result<(), String> {
    for (index, rule) in rules.iter().enumerate() {
        for (n, expression) in rule.jq_path_expressions.iter().enumerate() {
            switchyard_common::jq_paths::check(expression).map_err(|e| {
                format!("ignoreDifferences[{index}].jqPathExpressions[{n}] {expression:?} {e}")
            })?;
        }
        for (n, manager) in rule.managed_fields_managers.iter().enumerate() {
            if manager.trim().is_empty() || manager.len() > 128 {
                return Err(format!(
                    "ignoreDifferences[{index}].managedFieldsManagers[{n}] {manager:?} is not a field manager name"
                ));
            }
        }
    }
    // The agent keeps the managedFields entries of at most this many
    // managers in its live view.
    let managers: std::collections::BTreeSet<&str> = rules
        .iter()
        .flat_map(|r| &r.managed_fields_managers)
        .map(String::as_str)
        .collect();
    if managers.len() > MAX_IGNORED_MANAGERS {
        return Err(format!(
            "ignoreDifferences name {} field managers; at most {MAX_IGNORED_MANAGERS} are allowed",
            managers.len()
        ));
    }
    let rules: Vec<_> = rules.iter().map(|r| r.to_rule()).collect();
    switchyard_common::ignore_rules::validate(&rules).map_err(|e| e.to_string())
}

pub(crate) fn validate_directory(
    renderer: &str,
    directory: Option<&crate::render::DirectorySettings>,
) -> std::result::Result<(), String> {
    let Some(d) = directory.filter(|d| !d.is_default()) else {
        return Ok(());
    };
    if !matches!(renderer, "directory" | "jsonnet") {
        return Err(format!(
            "directory settings (recurse, include, exclude, jsonnet) apply to the directory and jsonnet renderers, not {renderer}"
        ));
    }
    d.validate().map_err(|e| e.to_string())
}

/// An app from a chart repository names a chart and is rendered by the
/// helm renderer from the chart's archive alone; an app from a Git repo
/// names no chart.
fn check_chart(repo: &crate::store::RepoRecord, app: &AppRecord) -> Result<()> {
    match (repo.kind, &app.chart) {
        (RepoKind::Git, None) => {
            if app.chart_version.is_some() {
                return Err(invalid("chart-version", "goes with --chart"));
            }
            Ok(())
        }
        (RepoKind::Git, Some(_)) => Err(invalid(
            "chart",
            format!(
                "repo {} is a Git repository: name the chart's directory with --path \
                 (--chart is for chart repositories, `repo add --type helm`)",
                repo.name
            ),
        )),
        (RepoKind::Helm | RepoKind::Oci, None) => Err(invalid(
            "chart",
            format!(
                "repo {} is a chart repository: name the chart with --chart",
                repo.name
            ),
        )),
        (RepoKind::Helm | RepoKind::Oci, Some(chart)) => {
            if chart.is_empty() || chart.contains(['/', ' ']) {
                return Err(invalid("chart", format!("{chart:?} is not a chart name")));
            }
            if app.renderer != "helm" {
                return Err(invalid(
                    "renderer",
                    "a chart from a chart repository is rendered by helm",
                ));
            }
            if app.path != "." || app.revision.is_some() {
                return Err(invalid(
                    "path",
                    "a chart from a chart repository has no --path or --revision; \
                     choose its version with --chart-version",
                ));
            }
            if let Some(range) = &app.chart_version
                && let Err(detail) = switchyard_helm::semver_compat::compare(range, "0.0.0")
            {
                return Err(invalid("chart-version", format!("{range:?}: {detail}")));
            }
            let settings = app.helm.clone().unwrap_or_default();
            if !settings.values_files.is_empty() || !settings.values_for.is_empty() {
                return Err(invalid(
                    "helm",
                    "values files are read from a Git repo; a chart from a chart repository \
                     takes inline values and --set",
                ));
            }
            Ok(())
        }
    }
}

/// Parse an app's renderer settings.
pub(crate) fn renderer_of(app: &AppRecord) -> Result<RendererKind, String> {
    renderer_kind(&app.renderer, app.plugin_command.as_deref())
}

/// A renderer name and, for `plugin`, its command.
pub(crate) fn renderer_kind(
    renderer: &str,
    plugin_command: Option<&str>,
) -> Result<RendererKind, String> {
    if renderer == "plugin" {
        let command = plugin_command
            .filter(|c| !c.trim().is_empty())
            .ok_or("the plugin renderer needs --plugin-command")?;
        return Ok(RendererKind::Plugin {
            command: command.to_owned(),
        });
    }
    renderer.parse::<RendererKind>().map_err(|e| format!("{e}"))
}

/// `a/b/`, `./a//b` -> `a/b`; the repo root is `.`; `..` and absolute paths are refused.
pub(crate) fn normalize_app_path(path: &str) -> Result<String> {
    if path.starts_with('/') {
        return Err(invalid(
            "path",
            format!("{path:?} must be relative to the repo root"),
        ));
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(invalid("path", format!("{path:?} may not contain '..'")));
            }
            p => parts.push(p),
        }
    }
    Ok(if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_manager_rules_are_accepted_within_bounds() {
        let rule = |managers: Vec<String>| crate::store::IgnoreDifference {
            group: "*".into(),
            kind: "*".into(),
            managed_fields_managers: managers,
            ..Default::default()
        };
        assert_eq!(
            validate_ignore_differences(&[rule(vec!["kube-controller-manager".into()])]),
            Ok(())
        );
        let e = validate_ignore_differences(&[rule(vec![" ".into()])]).unwrap_err();
        assert!(e.contains("managedFieldsManagers[0]"), "{e}");
        let many = (0..=MAX_IGNORED_MANAGERS)
            .map(|i| format!("m{i}"))
            .collect();
        let e = validate_ignore_differences(&[rule(many)]).unwrap_err();
        assert!(e.contains("at most 16"), "{e}");
    }

    #[test]
    fn app_paths_are_normalized_and_confined() {
        assert_eq!(normalize_app_path("apps/web/").unwrap(), "apps/web");
        assert_eq!(normalize_app_path("./apps//web").unwrap(), "apps/web");
        assert_eq!(normalize_app_path("").unwrap(), ".");
        assert_eq!(normalize_app_path(".").unwrap(), ".");
        assert!(normalize_app_path("../etc").is_err());
        assert!(normalize_app_path("apps/../../x").is_err());
        assert!(normalize_app_path("/etc").is_err());
    }

    fn record(kind: RepoKind) -> crate::store::RepoRecord {
        crate::store::RepoRecord {
            name: "charts".into(),
            kind,
            url: "https://charts.example.com".into(),
            branch: String::new(),
            interval_secs: 30,
            username: None,
            password_file: None,
            ca_file: None,
            plain_http: false,
            webhook_secret_file: None,
            created_at: 0,
            fetch: Default::default(),
        }
    }

    fn chart_app(chart: Option<&str>, range: Option<&str>) -> AppRecord {
        AppRecord {
            renderer: "helm".into(),
            chart: chart.map(str::to_owned),
            chart_version: range.map(str::to_owned),
            ..AppRecord::example("web", "charts")
        }
    }

    #[test]
    fn charts_go_with_chart_repositories_only() {
        let (helm, git) = (record(RepoKind::Helm), record(RepoKind::Git));
        assert!(check_chart(&helm, &chart_app(Some("podinfo"), Some("^6.0"))).is_ok());
        assert!(check_chart(&helm, &chart_app(Some("podinfo"), None)).is_ok());
        assert!(check_chart(&git, &chart_app(None, None)).is_ok());
        let refused = |repo, app: AppRecord, what: &str| {
            let e = check_chart(repo, &app).unwrap_err().to_string();
            assert!(e.contains(what), "{e}");
        };
        refused(&helm, chart_app(None, None), "name the chart with --chart");
        refused(
            &git,
            chart_app(Some("podinfo"), None),
            "is a Git repository",
        );
        refused(&git, chart_app(None, Some("^6")), "goes with --chart");
        refused(&helm, chart_app(Some("a/b"), None), "is not a chart name");
        refused(
            &helm,
            chart_app(Some("podinfo"), Some("^^6")),
            "chart-version",
        );
        let mut app = chart_app(Some("podinfo"), None);
        app.renderer = "directory".into();
        refused(&helm, app, "rendered by helm");
        let mut app = chart_app(Some("podinfo"), None);
        app.revision = Some("main".into());
        refused(&helm, app, "--chart-version");
        let mut app = chart_app(Some("podinfo"), None);
        app.helm = Some(crate::store::HelmSettings {
            values_files: vec!["prod.yaml".into()],
            ..Default::default()
        });
        refused(&helm, app, "inline values and --set");
    }
}
