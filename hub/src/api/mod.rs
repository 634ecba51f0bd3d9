//! The HTTP admin API the CLI talks to (JSON over HTTP, bearer tokens with
//! roles, an audit log of every mutation).
//!
//! One module per resource (`clusters`, `repos`, `groups`, `apps`,
//! `tokens`, `audit`, `status`, `backup`, `webhooks`), the probes, and the
//! shared parts: `error` (how failures are answered), `extract` (bodies and
//! queries), `guard` (authentication, authorization, audit) and `openapi`.

mod apps;
mod audit;
mod backup;
mod clusters;
mod error;
mod extract;
mod groups;
mod guard;
mod openapi;
mod probes;
mod repos;
mod status;
mod tokens;
mod webhooks;

pub use apps::{
    DEFAULT_DIFF_TIMEOUT_SECS, DiffQuery, ManifestsQuery, RollbackRequest, SyncRequest,
};
pub use audit::{AuditQuery, AuditView};
pub use backup::DataDir;
pub use clusters::{AddClusterRequest, LabelRequest, TokenRequest};
pub use error::{ApiError, ErrorBody};
pub use extract::DryRunQuery;
pub use probes::ReadyView;
pub use status::StatusQuery;
pub(crate) use status::with_apps;
pub use tokens::{CreateTokenRequest, CreatedToken, TokenView};

use crate::auth::Authenticator;
use crate::fleet::Fleet;
use crate::gitops::GitOps;
use crate::sessions::Sessions;
use crate::store::Store;
use axum::Router;
use axum::middleware;
use error::{json_errors, method_not_allowed, no_such_route};
use openapi::{ApiDoc, OpenApiDocument};
use std::sync::Arc;

/// Largest request body accepted.
const BODY_LIMIT: usize = 1024 * 1024;

#[derive(Clone)]
struct AppState {
    fleet: Arc<Fleet>,
    gitops: Arc<GitOps>,
    store: Arc<dyn Store>,
    auth: Arc<Authenticator>,
    /// Web UI sessions: a request with the session cookie and no bearer
    /// token acts as the session's caller.
    sessions: Arc<Sessions>,
}

/// The admin API router. Built without a socket so tests can call it
/// directly; the remote address in the audit log comes from
/// `ConnectInfo<SocketAddr>`, which the server provides.
pub fn router(
    fleet: Arc<Fleet>,
    gitops: Arc<GitOps>,
    store: Arc<dyn Store>,
    admin_token: String,
) -> Router {
    router_with(fleet, gitops, store, admin_token, None)
}

/// [`router`], also accepting the bearer tokens `verifier` accepts (an
/// OpenID provider's JWTs).
pub fn router_with(
    fleet: Arc<Fleet>,
    gitops: Arc<GitOps>,
    store: Arc<dyn Store>,
    admin_token: String,
    verifier: Option<Arc<dyn crate::auth::BearerVerifier>>,
) -> Router {
    let auth = Arc::new(Authenticator::new(store.clone(), &admin_token).with_verifier(verifier));
    router_with_sessions(fleet, gitops, store, Arc::new(Sessions::new(auth, false)))
}

/// The admin API router, accepting the web UI's `sessions` besides bearer
/// tokens (their authenticator checks the tokens).
pub fn router_with_sessions(
    fleet: Arc<Fleet>,
    gitops: Arc<GitOps>,
    store: Arc<dyn Store>,
    sessions: Arc<Sessions>,
) -> Router {
    let state = AppState {
        fleet,
        gitops,
        auth: sessions.authenticator().clone(),
        sessions,
        store,
    };
    let (router, description) = routes(state);
    let description = OpenApiDocument(Arc::new(
        description
            .to_pretty_json()
            .expect("the OpenAPI description serializes"),
    ));
    router
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(no_such_route)
        .layer(axum::Extension(description))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(json_errors))
}

/// Every route with its handler and its OpenAPI description, from one
/// source (each handler's `#[utoipa::path]`), so the served routes and
/// `/openapi.json` cannot drift apart.
fn routes(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let guard = middleware::from_fn_with_state(state.clone(), guard::guard);
    described_routes(|api| api.route_layer(guard))
        .with_state(state)
        .split_for_parts()
}

/// The OpenAPI description of every route, as `/openapi.json` serves it.
pub fn description() -> utoipa::openapi::OpenApi {
    described_routes(|api| api).into_openapi()
}

type Described = utoipa_axum::router::OpenApiRouter<AppState>;

/// The routes; `authenticated` wraps the ones that need a bearer token.
fn described_routes(authenticated: impl FnOnce(Described) -> Described) -> Described {
    use utoipa::OpenApi as _;
    use utoipa_axum::routes;
    let api = Described::new()
        .routes(routes!(clusters::list_clusters, clusters::add_cluster))
        .routes(routes!(clusters::show_cluster, clusters::remove_cluster))
        .routes(routes!(clusters::label_cluster))
        .routes(routes!(clusters::new_token))
        .routes(routes!(repos::list_repos, repos::add_repo))
        .routes(routes!(
            repos::show_repo,
            repos::replace_repo,
            repos::remove_repo
        ))
        .routes(routes!(repos::refresh_repo))
        .routes(routes!(groups::list_groups, groups::create_group))
        .routes(routes!(
            groups::show_group,
            groups::replace_group,
            groups::delete_group
        ))
        .routes(routes!(apps::list_apps, apps::create_app))
        .routes(routes!(apps::show_app, apps::update_app, apps::delete_app))
        .routes(routes!(apps::app_history))
        .routes(routes!(apps::app_manifests))
        .routes(routes!(apps::app_diff))
        .routes(routes!(apps::sync_app))
        .routes(routes!(apps::rollback_app))
        .routes(routes!(status::status))
        .routes(routes!(tokens::list_api_tokens, tokens::create_api_token))
        .routes(routes!(tokens::revoke_api_token))
        .routes(routes!(audit::audit_log))
        .routes(routes!(backup::take_backup));
    // Forges authenticate with their signature, not the admin token.
    let hooks = Described::new().routes(routes!(webhooks::git_webhook));
    // Probes and scrapers carry no token: these answer with counts and
    // states, never names or secrets.
    Described::with_openapi(ApiDoc::openapi())
        .routes(routes!(probes::healthz))
        .routes(routes!(probes::readyz))
        .routes(routes!(probes::metrics))
        .routes(routes!(openapi::openapi_json))
        .nest("/api/v1", authenticated(api).merge(hooks))
}

#[cfg(test)]
mod tests;
