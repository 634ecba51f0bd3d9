//! The web UI: server-rendered pages for the fleet, served by the hub on
//! the admin listener beside the API.
//!
//! Pages are HTML built with `maud` (escaped by default); one small
//! JavaScript file turns buttons into calls to the same `/api/v1` routes the
//! CLI uses (so the API's role checks and audit log apply unchanged) and
//! applies the live events of `/events`. Both assets and the stylesheet are
//! embedded in the binary. Every page needs a web session
//! ([`crate::sessions`]); without one it redirects to `/login`.

mod admin;
mod apps;
mod clusters;
mod events;
mod layout;
mod overview;
#[cfg(test)]
mod scale;
pub mod session;

use crate::auth::Principal;
use crate::fleet::Fleet;
use crate::gitops::GitOps;
use crate::sessions::{Sessions, SignedIn};
use crate::store::Store;
use axum::Router;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use std::sync::Arc;

/// Why a page could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Fleet(#[from] crate::fleet::Error),
    #[error(transparent)]
    GitOps(#[from] crate::gitops::Error),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error(transparent)]
    Auth(#[from] crate::auth::Error),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    BadQuery(String),
}

/// What every page handler reads.
#[derive(Clone)]
pub struct WebState {
    pub fleet: Arc<Fleet>,
    pub gitops: Arc<GitOps>,
    pub store: Arc<dyn Store>,
    pub sessions: Arc<Sessions>,
    /// Limits and audits sign-ins and sign-outs.
    pub sign_in: Arc<crate::sign_in::Guard>,
    /// Whether single sign-on is configured: `/login` then offers it.
    pub oidc: bool,
    /// Turns true when the hub stops: open event streams end.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// The overview's last heat map, reused while the fleet's pair states
    /// and groups are unchanged.
    pub heat_map: Arc<overview::HeatMapMemo>,
}

/// The web UI's routes (pages, sign-in, assets, events). They have no
/// fallback, so they merge with the API router, whose fallback answers
/// every other path.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(overview::page))
        .route("/clusters", get(clusters::list))
        .route("/clusters/{name}", get(clusters::detail))
        .route("/apps", get(apps::list))
        .route("/apps/{name}", get(apps::detail))
        .route("/apps/{name}/diff", get(apps::diff))
        .route("/repos", get(admin::repos))
        .route("/audit", get(admin::audit))
        .route("/tokens", get(admin::tokens))
        .route("/login", get(session::login_form).post(session::login))
        .route("/logout", post(session::logout))
        .route("/events", get(events::stream))
        .route("/assets/{file}", get(layout::asset))
        .with_state(state)
}

/// The signed-in caller of a page request, or the redirect to `/login`
/// that brings them back here after signing in.
fn signed_in(state: &WebState, headers: &HeaderMap, uri: &Uri) -> Result<SignedIn, Box<Response>> {
    let cookie = headers
        .get(axum::http::header::COOKIE)
        .and_then(|v| v.to_str().ok());
    state
        .sessions
        .resolve(cookie, crate::clock::unix_now())
        .map_err(|_| {
            let next = uri.path_and_query().map_or("/", |p| p.as_str());
            Box::new(layout::redirect(&format!(
                "/login?next={}",
                layout::query_escape(next)
            )))
        })
}

/// Whether the caller's role reaches `role` (to decide which controls a
/// page shows; the API decides what is allowed).
fn may(principal: &Principal, role: crate::auth::Role) -> bool {
    principal.role >= role
}
