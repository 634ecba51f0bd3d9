//! `/clusters` (filter by label selector, connection state and a search,
//! a page at a time) and `/clusters/{name}` (labels, certificate, last seen,
//! and the status of every app assigned to the cluster).

use super::layout::{action, badge, blocking_page, commit, pager, query_escape, time};
use super::{Error, WebState, may, signed_in};
use crate::auth::Role;
use crate::fleet::ClusterView;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use switchyard_common::selector::Selector;

/// Clusters per page.
pub(super) const PAGE_SIZE: usize = 100;

/// Query of `GET /clusters`.
#[derive(Debug, Default, Clone, Deserialize)]
pub(super) struct ClustersQuery {
    /// A Kubernetes label selector (`env=prod,region in (eu,us)`).
    #[serde(default)]
    pub selector: Option<String>,
    /// Part of the name.
    #[serde(default)]
    pub q: Option<String>,
    /// `connected`, `disconnected` or `pending`.
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub page: Option<usize>,
}

fn connection(c: &ClusterView) -> &'static str {
    if c.connected {
        "connected"
    } else if c.state == "pending" {
        "pending"
    } else {
        "disconnected"
    }
}

/// The clusters a query selects, in name order, and the number of pages.
pub(super) fn select(
    clusters: Vec<ClusterView>,
    query: &ClustersQuery,
) -> Result<(Vec<ClusterView>, usize, usize), Error> {
    let selector = match query.selector.as_deref().map(str::trim) {
        None | Some("") => Selector::everything(),
        Some(text) => {
            Selector::parse(text).map_err(|e| Error::BadQuery(format!("selector {text:?}: {e}")))?
        }
    };
    let needle = query.q.as_deref().unwrap_or("").trim().to_lowercase();
    let mut matching: Vec<ClusterView> = clusters
        .into_iter()
        .filter(|c| selector.matches(&c.labels))
        .filter(|c| needle.is_empty() || c.name.to_lowercase().contains(&needle))
        .filter(|c| {
            query
                .state
                .as_deref()
                .is_none_or(|s| s.is_empty() || s == connection(c))
        })
        .collect();
    matching.sort_by(|a, b| a.name.cmp(&b.name));
    let total = matching.len();
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let page = query.page.unwrap_or(1).clamp(1, pages);
    let shown = matching
        .into_iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .collect();
    Ok((shown, total, pages))
}

/// `GET /clusters`.
pub(super) async fn list(
    State(state): State<WebState>,
    Query(query): Query<ClustersQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let signed = match signed_in(&state, &headers, &uri) {
        Ok(s) => s,
        Err(redirect) => return *redirect,
    };
    let admin = may(&signed.principal, Role::Admin);
    blocking_page(
        "Clusters",
        "/clusters",
        &signed,
        move || -> Result<Markup, Error> {
            let (shown, total, pages) = select(state.fleet.clusters()?, &query)?;
            Ok(list_body(&shown, total, pages, &query, admin))
        },
    )
    .await
}

fn list_body(
    shown: &[ClusterView],
    total: usize,
    pages: usize,
    query: &ClustersQuery,
    admin: bool,
) -> Markup {
    let selector = query.selector.clone().unwrap_or_default();
    let q = query.q.clone().unwrap_or_default();
    let wanted = query.state.clone().unwrap_or_default();
    let base = format!(
        "/clusters?selector={}&q={}&state={}",
        query_escape(&selector),
        query_escape(&q),
        query_escape(&wanted)
    );
    html! {
        form.filters method="get" action="/clusters" role="search" {
            label { "Label selector " input type="text" name="selector" value=(selector) placeholder="env=prod,region in (eu,us)"; }
            label { "Name contains " input type="search" name="q" value=(q); }
            label { "State "
                select name="state" {
                    @for s in ["", "connected", "disconnected", "pending"] {
                        option value=(s) selected[s == wanted] { @if s.is_empty() { "any" } @else { (s) } }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
        p { (total) " clusters match." }
        table #clusters {
            thead { tr {
                th scope="col" { "Cluster" } th scope="col" { "Connection" } th scope="col" { "Labels" }
                th scope="col" { "Agent" } th scope="col" { "Kubernetes" } th scope="col" { "Last seen" }
            } }
            tbody {
                @for c in shown {
                    tr data-cluster=(c.name) {
                        th scope="row" { a href={ "/clusters/" (c.name) } { (c.name) } }
                        td.conn { (badge(connection(c))) }
                        td { @for (k, v) in &c.labels { code.label { (k) "=" (v) } " " } }
                        td { (c.agent_version.as_deref().unwrap_or("-")) }
                        td { (c.kubernetes_version.as_deref().unwrap_or("-")) }
                        td { (time(c.last_seen.as_deref())) }
                    }
                }
            }
        }
        (pager(&base, query.page.unwrap_or(1).clamp(1, pages), pages))
        @if admin {
            section.admin {
                h2 { "Register a cluster" }
                form.api-form data-method="POST" data-path="/api/v1/clusters" data-kind="register"
                    data-confirm="Register this cluster? Its join command is shown once." {
                    label { "Name " input type="text" name="name" required pattern="[a-z0-9]([a-z0-9-]*[a-z0-9])?"; }
                    label { "Labels " input type="text" name="labels" placeholder="env=prod,region=eu"; }
                    button type="submit" { "Register" }
                }
                pre #join-command hidden {}
            }
        }
    }
}

/// `GET /clusters/{name}`.
pub(super) async fn detail(
    State(state): State<WebState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let signed = match signed_in(&state, &headers, &uri) {
        Ok(s) => s,
        Err(redirect) => return *redirect,
    };
    let admin = may(&signed.principal, Role::Admin);
    let title = format!("Cluster {name}");
    blocking_page(
        &title,
        "/clusters",
        &signed,
        move || -> Result<Markup, Error> {
            let parsed = switchyard_common::ClusterName::new(&name)
                .map_err(|_| Error::NotFound(format!("cluster {name}")))?;
            let cluster = state
                .fleet
                .cluster(&parsed)?
                .ok_or_else(|| Error::NotFound(format!("cluster {name}")))?;
            let rows = state.fleet.cluster_status(&parsed)?;
            Ok(detail_body(&cluster, &rows, admin))
        },
    )
    .await
}

fn detail_body(c: &ClusterView, rows: &[crate::fleet::StatusView], admin: bool) -> Markup {
    let path = format!("/api/v1/clusters/{}", c.name);
    html! {
        dl.facts data-cluster=(c.name) {
            dt { "Connection" } dd.conn { (badge(connection(c))) }
            dt { "Enrolled" } dd { (time(c.enrolled_at.as_deref())) }
            dt { "Last seen" } dd { (time(c.last_seen.as_deref())) }
            dt { "Certificate expires" } dd { (time(c.cert_expires.as_deref())) }
            dt { "Agent" } dd { (c.agent_version.as_deref().unwrap_or("-")) }
            dt { "Kubernetes" } dd { (c.kubernetes_version.as_deref().unwrap_or("-")) }
            dt { "Labels" } dd { @if c.labels.is_empty() { span.muted { "none" } } @for (k, v) in &c.labels { code.label { (k) "=" (v) } " " } }
        }
        @if admin {
            section.admin {
                h2 { "Labels" }
                form.api-form data-method="PATCH" data-path={ (path) "/labels" } data-kind="labels"
                    data-confirm={ "Change the labels of cluster " (c.name) "?" } {
                    label { "Set " input type="text" name="set" placeholder="env=prod,tier=web"; }
                    label { "Remove " input type="text" name="remove" placeholder="tier,zone"; }
                    button type="submit" { "Apply labels" }
                }
                (action("Remove cluster", "DELETE", &path, None,
                    &format!("Remove cluster {}? Its agent is disconnected and its certificate no longer accepted.", c.name)))
            }
        }
        h2 { "Apps" }
        @if rows.is_empty() { p.muted { "No app is assigned to this cluster." } }
        @else {
            table {
                thead { tr { th scope="col" { "App" } th scope="col" { "Sync" } th scope="col" { "Health" } th scope="col" { "Desired" } th scope="col" { "Applied" } th scope="col" { "Message" } } }
                tbody {
                    @for r in rows {
                        tr data-app=(r.app) data-cluster=(r.cluster) {
                            th scope="row" { a href={ "/apps/" (r.app) } { (r.app) } }
                            td.sync { (badge(&r.sync)) }
                            td.health { (badge(&r.health)) }
                            td { (commit(Some(&r.desired_commit))) }
                            td.applied { (commit(r.applied_commit.as_deref())) }
                            td { (r.error.as_deref().or(r.message.as_deref()).unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}
