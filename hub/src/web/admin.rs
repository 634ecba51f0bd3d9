//! `/repos` (fetch state and last error of every repo), and the admin-only
//! `/audit` (the audit log, newest first) and `/tokens` (API tokens).

use super::layout::{action, badge, commit, error_page, page, time};
use super::{Error, WebState, may, signed_in};
use crate::auth::Role;
use crate::clock::rfc3339;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

/// Audit entries a page shows at most.
const AUDIT_PAGE: usize = 200;

async fn build(
    state: WebState,
    headers: HeaderMap,
    uri: Uri,
    title: &'static str,
    least: Role,
    body: impl FnOnce(&WebState, bool) -> Result<Markup, Error> + Send + 'static,
) -> Response {
    let signed = match signed_in(&state, &headers, &uri) {
        Ok(s) => s,
        Err(redirect) => return *redirect,
    };
    if !may(&signed.principal, least) {
        let mut response = error_page(
            &signed,
            &Error::BadQuery(format!(
                "role {} may not see this page",
                signed.principal.role
            )),
        );
        *response.status_mut() = StatusCode::FORBIDDEN;
        return response;
    }
    let admin = may(&signed.principal, Role::Admin);
    let built = tokio::task::spawn_blocking(move || body(&state, admin)).await;
    match built {
        Ok(Ok(markup)) => page(title, uri.path(), &signed, markup),
        Ok(Err(e)) => error_page(&signed, &e),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// `GET /repos`.
pub(super) async fn repos(State(state): State<WebState>, headers: HeaderMap, uri: Uri) -> Response {
    build(state, headers, uri, "Repos", Role::Viewer, |state, admin| {
        let repos = state.gitops.repos()?;
        Ok(html! {
            @if repos.is_empty() { p.muted { "No repos yet: " code { "switchyard repo add" } } }
            @else {
                table #repos {
                    thead { tr {
                        th scope="col" { "Repo" } th scope="col" { "URL" } th scope="col" { "Branch" } th scope="col" { "Head" }
                        th scope="col" { "State" } th scope="col" { "Last fetch" } th scope="col" { "Last success" } th scope="col" { "Last error" }
                        @if admin { th scope="col" { "Action" } }
                    } }
                    tbody {
                        @for r in &repos {
                            @let state = if r.fetching.is_some() { "fetching" } else if r.error.is_some() { "Failed" } else if r.last_success.is_some() { "Synced" } else { "Pending" };
                            tr {
                                th scope="row" { (r.name) }
                                td { code { (r.url) } }
                                td { (r.branch) }
                                td { (commit(r.head.as_deref())) }
                                td { (badge(state)) }
                                td { (time(r.last_fetch.as_deref())) }
                                td { (time(r.last_success.as_deref())) }
                                td { @if let Some(e) = &r.error { span.error { (e) } } }
                                @if admin {
                                    td { (action("Refresh", "POST", &format!("/api/v1/repos/{}/refresh", r.name), None,
                                        &format!("Fetch repo {} now?", r.name))) }
                                }
                            }
                        }
                    }
                }
            }
        })
    })
    .await
}

/// Query of `GET /audit`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct AuditPageQuery {
    /// Only entries by this actor.
    #[serde(default)]
    actor: Option<String>,
}

/// `GET /audit` (admins).
pub(super) async fn audit(
    State(state): State<WebState>,
    Query(query): Query<AuditPageQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    build(state, headers, uri, "Audit log", Role::Admin, move |state, _| {
        let mut entries = state.store.audit(0, AUDIT_PAGE)?;
        entries.reverse();
        let actor = query.actor.unwrap_or_default();
        entries.retain(|e| actor.is_empty() || e.actor == actor);
        Ok(html! {
            form.filters method="get" action="/audit" {
                label { "Actor " input type="text" name="actor" value=(actor); }
                button type="submit" { "Filter" }
            }
            p.hint { "The newest " (AUDIT_PAGE) " entries; " code { "switchyard audit --since TIME" } " reads further back." }
            table #audit {
                thead { tr { th scope="col" { "Time" } th scope="col" { "Actor" } th scope="col" { "Request" } th scope="col" { "Target" } th scope="col" { "Status" } th scope="col" { "Message" } th scope="col" { "From" } } }
                tbody { @for e in &entries {
                    tr {
                        td { (time(Some(&rfc3339(e.at)))) }
                        td { (e.actor) " (" (e.role.to_string()) ")" }
                        td { code { (e.method) " " (e.path) } }
                        td { (e.target.as_deref().unwrap_or("")) }
                        td { @if e.status < 400 { (badge("ok")) } @else { (badge("Failed")) } " " (e.status) }
                        td { (e.message.as_deref().unwrap_or("")) }
                        td { (e.remote.as_deref().unwrap_or("")) }
                    }
                } }
            }
        })
    })
    .await
}

/// `GET /tokens` (admins).
pub(super) async fn tokens(
    State(state): State<WebState>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    build(state, headers, uri, "API tokens", Role::Admin, |state, admin| {
        let now = crate::clock::unix_now();
        let tokens = state.sessions.authenticator().tokens()?;
        Ok(html! {
            p.hint { "Create tokens with " code { "switchyard token create NAME --role viewer|operator|admin" } "." }
            table #tokens {
                thead { tr { th scope="col" { "Name" } th scope="col" { "Role" } th scope="col" { "State" } th scope="col" { "Created" } th scope="col" { "Expires" } th scope="col" { "Last used" } th scope="col" { "Action" } } }
                tbody { @for t in &tokens {
                    @let word = if t.revoked_at.is_some() { "revoked" } else if t.is_active(now) { "active" } else { "expired" };
                    tr {
                        th scope="row" { (t.name) }
                        td { (t.role.to_string()) }
                        td { (badge(word)) }
                        td { (time(Some(&rfc3339(t.created_at)))) }
                        td { (time(t.expires_at.map(rfc3339).as_deref())) }
                        td { (time(t.last_used.map(rfc3339).as_deref())) }
                        td { @if admin && word == "active" {
                            (action("Revoke", "DELETE", &format!("/api/v1/tokens/{}", t.name), None,
                                &format!("Revoke API token {}? Its web sessions end too.", t.name)))
                        } }
                    }
                } }
            }
        })
    })
    .await
}
