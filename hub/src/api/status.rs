//! `/api/v1/status`: sync and health of every (app, cluster) pair, and of
//! every app that has none: with the app's latest commit and whether it
//! rendered, errors first, so that a failure is the first thing seen.

use super::AppState;
use super::error::{ApiResult, ErrorBody};
use super::extract::ApiQuery;
use crate::fleet::{self, StatusView};
use crate::gitops::AppView;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

/// Query of `GET /api/v1/status`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct StatusQuery {
    #[serde(default)]
    pub app: Option<String>,
}

#[utoipa::path(get, path = "/status", tag = "status", summary = "Sync and health of every (app, cluster) pair, a row for each app assigned to no cluster, errors first", params(("app" = Option<String>, Query, description = "only this app")), responses((status = 200, description = "OK", body = Vec<fleet::StatusView>), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn status(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<StatusQuery>,
) -> ApiResult<Json<Vec<fleet::StatusView>>> {
    let rows = state.fleet.status(query.app.as_deref())?;
    // One app's view costs a pass over the clusters: only the one asked for.
    let apps = match &query.app {
        Some(only) => match state.gitops.app(only) {
            Ok(app) => vec![app],
            // No such app: no rows, as before (the CLI asks for the app first).
            Err(crate::gitops::Error::AppNotFound(_)) => Vec::new(),
            Err(e) => return Err(e.into()),
        },
        // The rows need counts only, not every cluster's name per app.
        None => state.gitops.apps_without_cluster_lists()?,
    };
    Ok(Json(with_apps(rows, &apps)))
}

/// Whether the app's latest commit rendered (see [`StatusView::latest_render`]).
fn latest_render(app: &AppView) -> Option<&'static str> {
    let latest = app.latest.as_ref()?;
    Some(if app.failed_commit.as_ref() == Some(latest) {
        "Failed"
    } else if app.running_counts.contains_key(latest) {
        "Rendered"
    } else {
        "Pending"
    })
}

/// The row of an app no cluster is assigned: why not.
fn unassigned_row(app: &AppView) -> StatusView {
    let message = if app.target_count == 0 {
        format!("targets no cluster; see `switchyard app show {}`", app.name)
    } else if app.deployed.is_none() && app.failed_commit.is_none() {
        if app.sync_policy == "manual" {
            format!("waits for `switchyard app sync {}`", app.name)
        } else {
            "waits for its first commit".into()
        }
    } else {
        format!(
            "assigned to none of the {} clusters it targets",
            app.target_count
        )
    };
    StatusView {
        app: app.name.clone(),
        cluster: String::new(),
        sync: "-".into(),
        health: "-".into(),
        desired_commit: String::new(),
        applied_commit: None,
        message: Some(message),
        error: app
            .errors
            .get("*")
            .or_else(|| app.errors.values().next())
            .cloned(),
        warning: None,
        latest_commit: None,
        latest_render: None,
        connected: false,
        observed_at: None,
        resources: Vec::new(),
    }
}

/// `rows` (one per assigned app and cluster) completed from `apps`: each
/// row carries its app's latest commit and whether it rendered, an app with
/// no row gets one (with an empty cluster) saying why, and rows with an
/// error come first, then by app and cluster.
pub(crate) fn with_apps(mut rows: Vec<StatusView>, apps: &[AppView]) -> Vec<StatusView> {
    for app in apps {
        if !rows.iter().any(|r| r.app == app.name) {
            rows.push(unassigned_row(app));
        }
        for row in rows.iter_mut().filter(|r| r.app == app.name) {
            row.warning = app.warnings.get(&row.cluster).cloned();
            row.latest_commit = app.latest.clone();
            row.latest_render = latest_render(app).map(str::to_owned);
        }
    }
    rows.sort_by(|a, b| {
        (a.error.is_none(), &a.app, &a.cluster).cmp(&(b.error.is_none(), &b.app, &b.cluster))
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn app(name: &str, targets: &[&str]) -> AppView {
        AppView {
            name: name.into(),
            repo: "config".into(),
            path: name.into(),
            revision: "main".into(),
            revision_configured: None,
            selector: String::new(),
            group: None,
            namespace: None,
            renderer: "directory".into(),
            plugin_command: None,
            helm: None,
            directory: None,
            chart: None,
            chart_version: None,
            sync_policy: "automatic".into(),
            prune: false,
            self_heal: false,
            adopt: false,
            prune_namespaces: false,
            prune_crds: false,
            force_conflicts: false,
            ignore_differences: Vec::new(),
            create_namespace: true,
            prune_last: false,
            prune_confirmed: None,
            latest: None,
            deployed: None,
            failed_commit: None,
            running_counts: BTreeMap::new(),
            running: None,
            pending: None,
            pinned: false,
            target_count: targets.len(),
            target_clusters: None,
            assigned: 0,
            errors: BTreeMap::new(),
            warnings: BTreeMap::new(),
            created_at: String::new(),
        }
    }

    fn row(app: &str, cluster: &str, commit: &str) -> StatusView {
        StatusView {
            app: app.into(),
            cluster: cluster.into(),
            sync: "Synced".into(),
            health: "Healthy".into(),
            desired_commit: commit.into(),
            applied_commit: Some(commit.into()),
            message: None,
            error: None,
            warning: None,
            latest_commit: None,
            latest_render: None,
            connected: true,
            observed_at: None,
            resources: Vec::new(),
        }
    }

    #[test]
    fn a_failed_latest_commit_is_shown_on_the_rows_and_sorted_first() {
        let mut web = app("web", &["a"]);
        web.latest = Some("c2".into());
        web.deployed = Some("c1".into());
        web.failed_commit = Some("c2".into());
        web.running_counts.insert("c1".into(), 1);
        let mut api = app("api", &["a"]);
        api.latest = Some("c1".into());
        api.deployed = Some("c1".into());
        api.running_counts.insert("c1".into(), 1);
        let mut failing = row("web", "a", "c1");
        failing.error = Some("render of app web at commit c2 failed: boom".into());
        let rows = with_apps(vec![row("api", "a", "c1"), failing], &[web, api]);
        let shown: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.app.as_str(),
                    r.latest_commit.as_deref(),
                    r.latest_render.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("web", Some("c2"), Some("Failed")),
                ("api", Some("c1"), Some("Rendered")),
            ]
        );
    }

    #[test]
    fn apps_assigned_nowhere_get_a_row_saying_why() {
        let nowhere = app("nowhere", &[]);
        let mut broken = app("broken", &["a", "b"]);
        broken.latest = Some("c1".into());
        broken.failed_commit = Some("c1".into());
        broken.errors.insert(
            "*".into(),
            "render of app broken at commit c1 failed: missing: no such directory".into(),
        );
        let mut manual = app("manual", &["a"]);
        manual.sync_policy = "manual".into();
        let rows = with_apps(Vec::new(), &[nowhere, broken, manual]);
        let shown: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.app.as_str(),
                    r.cluster.as_str(),
                    r.message.as_deref().unwrap_or_default(),
                    r.error.is_some(),
                    r.latest_render.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "broken",
                    "",
                    "assigned to none of the 2 clusters it targets",
                    true,
                    Some("Failed")
                ),
                (
                    "manual",
                    "",
                    "waits for `switchyard app sync manual`",
                    false,
                    None
                ),
                (
                    "nowhere",
                    "",
                    "targets no cluster; see `switchyard app show nowhere`",
                    false,
                    None
                ),
            ]
        );
    }
}
