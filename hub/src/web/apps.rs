//! `/apps` (every app with counts of its clusters' sync and health) and
//! `/apps/{name}` (revision, history with authors and messages, sync and
//! health per cluster, each object's health and message, render errors),
//! with the sync, approve, pin and rollback actions for operators.

use super::layout::{action, badge, blocking_page, commit, error_page, page, pager, time};
use super::{Error, WebState, may, signed_in};
use crate::auth::Role;
use crate::fleet::{AppDiffView, AppStatusPage, StatusView};
use crate::gitops::{AppView, RevisionView};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use switchyard_common::ClusterName;

/// Counts of an app's (app, cluster) pairs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Summary {
    pub clusters: usize,
    pub synced: usize,
    pub healthy: usize,
}

impl Summary {
    /// Count `clusters` more pairs in `(sync, health)`.
    fn add(&mut self, sync: &str, health: &str, clusters: usize) {
        self.clusters += clusters;
        if sync == "Synced" {
            self.synced += clusters;
        }
        if health == "Healthy" {
            self.healthy += clusters;
        }
    }
}

/// `GET /apps`.
pub(super) async fn list(State(state): State<WebState>, headers: HeaderMap, uri: Uri) -> Response {
    let signed = match signed_in(&state, &headers, &uri) {
        Ok(s) => s,
        Err(redirect) => return *redirect,
    };
    blocking_page("Apps", "/apps", &signed, move || -> Result<Markup, Error> {
        let apps = state.gitops.apps_without_cluster_lists()?;
        // From the per-app counts the fleet gauges keep with their pair
        // states, not a pass over every (app, cluster) pair.
        let counts = state.fleet.fold_app_counts(
            HashMap::<String, Summary>::new(),
            |counts, app, sync, health, clusters| {
                counts
                    .entry(app.to_owned())
                    .or_default()
                    .add(sync, health, clusters);
            },
        )?;
        Ok(html! {
            @if apps.is_empty() { p.muted { "No apps yet: " code { "switchyard app create" } } }
            @else {
                table #apps {
                    thead { tr {
                        th scope="col" { "App" } th scope="col" { "Repo / path" } th scope="col" { "Policy" }
                        th scope="col" { "Deployed" } th scope="col" { "Synced" } th scope="col" { "Healthy" } th scope="col" { "Problems" }
                    } }
                    tbody {
                        @for a in &apps {
                            @let s = counts.get(&a.name).copied().unwrap_or_default();
                            tr data-app=(a.name) {
                                th scope="row" { a href={ "/apps/" (a.name) } { (a.name) } }
                                td { (a.repo) " / " code { (a.path) } }
                                td { (a.sync_policy) @if a.pinned { " " (badge("pinned")) } @if a.pending.is_some() { " " (badge("Pending")) } }
                                td { (commit(a.deployed.as_deref())) }
                                td { (s.synced) " of " (s.clusters) }
                                td { (s.healthy) " of " (s.clusters) }
                                td { @if !a.errors.is_empty() { (badge("Error")) " " (a.errors.len()) } }
                            }
                        }
                    }
                }
            }
        })
    })
    .await
}

/// Clusters an app page lists at once.
const CLUSTERS_PER_PAGE: usize = 100;

/// Query of `GET /apps/{name}`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct AppQuery {
    /// Page of the cluster table (problems first).
    #[serde(default)]
    page: Option<usize>,
}

/// `GET /apps/{name}`.
pub(super) async fn detail(
    State(state): State<WebState>,
    Path(name): Path<String>,
    Query(query): Query<AppQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let signed = match signed_in(&state, &headers, &uri) {
        Ok(s) => s,
        Err(redirect) => return *redirect,
    };
    let operator = may(&signed.principal, Role::Operator);
    let title = format!("App {name}");
    blocking_page(
        &title,
        "/apps",
        &signed,
        move || -> Result<Markup, Error> {
            let app = match state.gitops.app(&name) {
                Ok(app) => app,
                Err(crate::gitops::Error::AppNotFound(_)) => {
                    return Err(Error::NotFound(format!("app {name}")));
                }
                Err(e) => return Err(e.into()),
            };
            let history = state.gitops.history(&name)?;
            let mut page =
                state
                    .fleet
                    .app_status_page(&name, query.page.unwrap_or(1), CLUSTERS_PER_PAGE)?;
            page.rows = crate::api::with_apps(page.rows, std::slice::from_ref(&app));
            Ok(detail_body(&app, &history, &page, operator))
        },
    )
    .await
}

fn detail_body(
    app: &AppView,
    history: &[RevisionView],
    listed: &AppStatusPage,
    operator: bool,
) -> Markup {
    // Problems first (not synced or not healthy), then by cluster, as the
    // fleet chose the page; a page at a time, so a large fleet's app page
    // stays small.
    let rows = &listed.rows;
    let mut assigned: Vec<&StatusView> = rows.iter().filter(|r| !r.cluster.is_empty()).collect();
    assigned.sort_by_key(|r| {
        (
            r.error.is_none() && r.sync == "Synced" && r.health == "Healthy",
            r.cluster.clone(),
        )
    });
    let (total, problems, page, pages) = (listed.total, listed.problems, listed.page, listed.pages);
    let sync_path = format!("/api/v1/apps/{}/sync", app.name);
    let rollback_path = format!("/api/v1/apps/{}/rollback", app.name);
    html! {
        dl.facts data-app=(app.name) {
            dt { "Source" } dd { (app.repo) " / " code { (app.path) } " at " code { (app.revision) } " (" (app.renderer) ")" }
            dt { "Sync policy" } dd { (app.sync_policy) @if app.pinned { " " (badge("pinned")) } }
            dt { "Latest commit" } dd { (commit(app.latest.as_deref())) }
            dt { "Deployed" } dd #deployed { (commit(app.deployed.as_deref())) }
            @if let Some(pending) = &app.pending { dt { "Waiting" } dd { (commit(Some(pending))) " " (badge("Pending")) } }
            dt { "Clusters" } dd { (app.assigned) " of " (app.target_count) " targeted have the deployed commit" }
        }
        @if operator {
            section.admin aria-label="Actions" {
                @if let Some(pending) = &app.pending {
                    (action("Approve and sync", "POST", &sync_path, Some(&json!({})),
                        &format!("Deploy commit {} of app {} to its clusters?", short(pending), app.name)))
                } @else {
                    (action("Sync", "POST", &sync_path, Some(&json!({})),
                        &format!("Sync app {} to its latest commit?", app.name)))
                }
                @if app.pinned {
                    (action("Unpin (follow the latest commit)", "POST", &sync_path, Some(&json!({})),
                        &format!("Unpin app {} and deploy its latest commit?", app.name)))
                } @else if let Some(deployed) = &app.deployed {
                    // A pin is a rollback to the commit that runs now.
                    (action("Pin at the deployed commit", "POST", &rollback_path, Some(&json!({"to": deployed})),
                        &format!("Pin app {} at {}? New commits wait until it is unpinned.", app.name, short(deployed))))
                }
            }
        }
        @if !app.errors.is_empty() {
            section.errors {
                h2 { "Render errors" }
                ul { @for (scope, message) in &app.errors {
                    li { @if scope != "*" { strong { (scope) ": " } } pre.error { (message) } }
                } }
            }
        }
        h2 { "Clusters" }
        @if total > 0 { p { (total) " clusters, " (problems) " not synced and healthy (listed first)." } }
        @if assigned.is_empty() {
            @for r in rows { p.muted { (r.message.as_deref().unwrap_or("assigned to no cluster")) } }
        } @else {
            table #app-clusters {
                thead { tr { th scope="col" { "Cluster" } th scope="col" { "Sync" } th scope="col" { "Health" } th scope="col" { "Applied" } th scope="col" { "Observed" } th scope="col" { "Message" } } }
                tbody {
                    @for r in &assigned {
                        tr data-app=(r.app) data-cluster=(r.cluster) {
                            th scope="row" { a href={ "/clusters/" (r.cluster) } { (r.cluster) } }
                            td.sync { (badge(&r.sync))
                                @if r.sync == "OutOfSync" {
                                    " " a.diff href={ "/apps/" (app.name) "/diff?cluster=" (r.cluster) } { "Diff" }
                                } }
                            td.health { (badge(&r.health)) }
                            td.applied { (commit(r.applied_commit.as_deref())) }
                            td { (time(r.observed_at.as_deref())) }
                            td { (r.error.as_deref().or(r.warning.as_deref()).or(r.message.as_deref()).unwrap_or("")) }
                        }
                    }
                }
            }
            @if pages > 1 { (pager(&format!("/apps/{}", app.name), page, pages)) }
            @for r in &assigned {
                @if !r.resources.is_empty() {
                    details {
                        summary { "Objects on " (r.cluster) " (" (r.resources.len()) ")" }
                        table {
                            thead { tr { th scope="col" { "Kind" } th scope="col" { "Namespace" } th scope="col" { "Name" } th scope="col" { "Sync" } th scope="col" { "Health" } th scope="col" { "Message" } } }
                            tbody { @for o in &r.resources {
                                @let sync = format!("{:?}", o.sync);
                                @let health = format!("{:?}", o.health);
                                tr {
                                    td { (o.kind) } td { (o.namespace.as_deref().unwrap_or("")) } td { (o.name) }
                                    td { (badge(&sync)) } td { (badge(&health)) }
                                    td { (o.message.as_deref().unwrap_or("")) }
                                }
                            } }
                        }
                    }
                }
            }
        }
        h2 { "History" }
        @if history.is_empty() { p.muted { "Nothing deployed yet." } }
        @else {
            table #history {
                thead { tr { th scope="col" { "Deployed" } th scope="col" { "Commit" } th scope="col" { "Event" } th scope="col" { "Author" } th scope="col" { "Message" }
                    @if operator { th scope="col" { "Action" } } } }
                tbody {
                    @for h in history {
                        tr data-commit=(h.commit) {
                            td { (time(Some(&h.at))) }
                            td { (commit(Some(&h.commit))) }
                            td { (h.event) " (" (h.trigger) ")" }
                            td { (h.author) }
                            td { (h.summary) }
                            @if operator {
                                td { @if app.deployed.as_deref() != Some(h.commit.as_str()) {
                                    (action("Roll back to this", "POST", &rollback_path, Some(&json!({"to": h.commit})),
                                        &format!("Roll app {} back to {} and pin it there?", app.name, short(&h.commit))))
                                } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Query of `GET /apps/{name}/diff`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct DiffQuery {
    /// The cluster to ask; without it, every connected cluster of the app.
    #[serde(default)]
    cluster: Option<String>,
}

/// How long the page waits for each agent.
const DIFF_WAIT: std::time::Duration =
    std::time::Duration::from_secs(crate::api::DEFAULT_DIFF_TIMEOUT_SECS);

/// `GET /apps/{name}/diff`: what a sync would change, per cluster, as the
/// agents answer it (the same as `switchyard app diff`).
pub(super) async fn diff(
    State(state): State<WebState>,
    Path(name): Path<String>,
    Query(query): Query<DiffQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let signed = match signed_in(&state, &headers, &uri) {
        Ok(s) => s,
        Err(redirect) => return *redirect,
    };
    let title = format!("Diff of app {name}");
    let found = {
        let (gitops, name) = (state.gitops.clone(), name.clone());
        tokio::task::spawn_blocking(move || gitops.app(&name)).await
    };
    match found {
        Ok(Ok(_)) => {}
        Ok(Err(crate::gitops::Error::AppNotFound(_))) => {
            return error_page(&signed, &Error::NotFound(format!("app {name}")));
        }
        Ok(Err(e)) => return error_page(&signed, &e.into()),
        Err(e) => return error_page(&signed, &Error::BadQuery(e.to_string())),
    }
    let only = match query
        .cluster
        .as_deref()
        .map(|c| ClusterName::new(c.to_owned()))
    {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(_)) => {
            return error_page(
                &signed,
                &Error::NotFound(format!("cluster {}", query.cluster.unwrap_or_default())),
            );
        }
    };
    let view = match state.fleet.app_diff(&name, only.as_ref(), DIFF_WAIT).await {
        Ok(Some(view)) => view,
        Ok(None) => {
            return error_page(
                &signed,
                &Error::NotFound(format!(
                    "app {name} on cluster {}",
                    query.cluster.unwrap_or_default()
                )),
            );
        }
        Err(e) => return error_page(&signed, &e.into()),
    };
    page(&title, "/apps", &signed, diff_body(&view))
}

fn diff_body(view: &AppDiffView) -> Markup {
    let line_class = |line: &str| {
        if line.starts_with("+++") || line.starts_with("---") {
            "file"
        } else if line.starts_with('+') {
            "add"
        } else if line.starts_with('-') {
            "del"
        } else {
            "ctx"
        }
    };
    html! {
        p { a href={ "/apps/" (view.app) } { "Back to app " (view.app) } }
        p.muted { "What a sync would change, desired (+) against live (−), as each cluster's agent sees it. Secret values are masked." }
        @if view.clusters.is_empty() { p { "App " (view.app) " is assigned to no cluster." } }
        @for c in &view.clusters {
            section.cluster-diff data-cluster=(c.cluster) {
                h2 { "Cluster " a href={ "/clusters/" (c.cluster) } { (c.cluster) } }
                @if let Some(e) = &c.error {
                    p.error { @if c.skipped { "Not asked: " } @else { "No complete diff: " } (e) }
                }
                @if c.objects.is_empty() && c.error.is_none() {
                    p { (badge("Synced")) " No differences." }
                }
                @for o in &c.objects {
                    h3 { (o.change) " " (o.kind) " " @if let Some(ns) = &o.namespace { (ns) "/" } (o.name) }
                    pre.diff { @for line in o.diff.lines() { span class=(line_class(line)) { (line) } } }
                }
                @if c.truncated { p.error { "More objects differ than one report holds; the list is cut." } }
            }
        }
        @if view.more_clusters > 0 {
            p { (view.more_clusters) " more clusters of the app were not asked (at most "
                (crate::fleet::MAX_CLUSTERS_PER_DIFF) " at once, OutOfSync first); open one from the app page." }
        }
    }
}

fn short(id: &str) -> &str {
    id.get(..10).unwrap_or(id)
}
