//! The HTTP admin API the CLI talks to (JSON over HTTP, bearer tokens with
//! roles, an audit log of every mutation).

use crate::auth::{self, Authenticator, Principal, Role};
use crate::fleet::{self, ClusterView, Fleet, JoinInfo, rfc3339};
use crate::gitops::{
    self, AppRequest, AppView, GitOps, GroupRequest, GroupView, RepoRequest, RepoView, RevisionView,
};
use crate::store::{ApiTokenRecord, AuditRecord, Store};
use crate::unix_now;
use axum::extract::{
    ConnectInfo, FromRequestParts, MatchedPath, Path, RawPathParams, Request, State,
};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use switchyard_common::ClusterName;

/// Largest request body accepted.
const BODY_LIMIT: usize = 1024 * 1024;

/// An API failure, answered as `{"error": "..."}` with its status code.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    malformed: bool,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            malformed: false,
        }
    }

    /// A refusal of the request's form: a body or query that does not
    /// parse, the wrong content type, a body over the limit.
    fn malformed(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            malformed: true,
            ..Self::new(status, message)
        }
    }
}

/// What a handler adds to its request's audit entry (an admin override's
/// reason); `audited` stores it as the entry's message.
#[derive(Debug, Clone)]
struct AuditNote(String);

/// Marks the answer to a request refused for its form (see
/// [`ApiError::malformed`]): it reached no handler logic, so it is neither
/// audited nor counted as a use of its token. Nothing is written for it.
#[derive(Debug, Clone, Copy)]
struct MalformedRequest;

fn is_malformed(response: &Response) -> bool {
    response.extensions().get::<MalformedRequest>().is_some()
}

/// A JSON request body; its rejections are answered like every other error.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S, T> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::malformed(rejection.status(), too_large_message()))
            }
            Err(rejection) => Err(ApiError::malformed(
                rejection.status(),
                rejection.body_text(),
            )),
        }
    }
}

/// A query string; its rejections are answered like every other error.
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| ApiQuery(value))
            .map_err(|rejection| ApiError::malformed(rejection.status(), rejection.body_text()))
    }
}

fn too_large_message() -> String {
    format!("request body larger than {BODY_LIMIT} bytes")
}

/// Body of every error answer.
#[derive(utoipa::ToSchema, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response();
        if self.malformed {
            response.extensions_mut().insert(MalformedRequest);
        }
        response
    }
}

impl From<fleet::Error> for ApiError {
    fn from(error: fleet::Error) -> Self {
        let status = match &error {
            fleet::Error::Store(crate::store::Error::ClusterExists(_)) => StatusCode::CONFLICT,
            fleet::Error::Store(crate::store::Error::ClusterNotFound(_)) => StatusCode::NOT_FOUND,
            fleet::Error::InvalidLabel(..) | fleet::Error::InvalidName(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %switchyard_common::error_chain(&error), "admin request failed");
            format!("internal error: {error}")
        } else {
            error.to_string()
        };
        ApiError::new(status, message)
    }
}

type ApiResult<T> = Result<T, ApiError>;

#[derive(Clone)]
struct AppState {
    fleet: Arc<Fleet>,
    gitops: Arc<GitOps>,
    store: Arc<dyn Store>,
    auth: Arc<Authenticator>,
}

impl From<auth::Error> for ApiError {
    fn from(error: auth::Error) -> Self {
        use auth::Error as E;
        let status = match &error {
            E::Missing | E::Invalid | E::Expired { .. } | E::Revoked { .. } => {
                StatusCode::UNAUTHORIZED
            }
            E::Forbidden { .. } => StatusCode::FORBIDDEN,
            E::InvalidName(_) | E::Reserved | E::InvalidTtl => StatusCode::UNPROCESSABLE_ENTITY,
            E::NotFound(_) => StatusCode::NOT_FOUND,
            E::Store(crate::store::Error::ApiTokenExists(_)) => StatusCode::CONFLICT,
            E::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %switchyard_common::error_chain(&error), "admin request failed");
        }
        ApiError::new(status, error.to_string())
    }
}

impl From<crate::store::Error> for ApiError {
    fn from(error: crate::store::Error) -> Self {
        auth::Error::Store(error).into()
    }
}

impl From<gitops::Error> for ApiError {
    fn from(error: gitops::Error) -> Self {
        use gitops::Error as E;
        let status = match &error {
            E::Store(
                crate::store::Error::RepoExists(_)
                | crate::store::Error::AppExists(_)
                | crate::store::Error::GroupExists(_),
            )
            | E::RepoInUse { .. }
            | E::GroupInUse { .. } => StatusCode::CONFLICT,
            E::Unreachable { .. } => StatusCode::FORBIDDEN,
            E::RepoNotFound(_) | E::AppNotFound(_) | E::GroupNotFound(_) => StatusCode::NOT_FOUND,
            E::Invalid { .. }
            | E::NotInHistory { .. }
            | E::NothingToRollBack(_)
            | E::NotFetched(_) => StatusCode::UNPROCESSABLE_ENTITY,
            // Unknown revisions, unreachable remotes: the caller can act on them.
            E::Git(_) => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %switchyard_common::error_chain(&error), "admin request failed");
        }
        ApiError::new(status, error.to_string())
    }
}

/// Request body of `POST /api/v1/apps/{name}/sync`.
#[derive(utoipa::ToSchema, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    #[serde(default)]
    pub revision: Option<String>,
    /// Deploy `revision` even if it is not in the history of the app's
    /// tracked revision. Admin only; needs `reason`, which the audit log keeps.
    #[serde(default)]
    pub allow_unreachable: bool,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Request body of `POST /api/v1/apps/{name}/rollback`.
#[derive(utoipa::ToSchema, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    #[serde(default)]
    pub to: Option<String>,
}

/// Request body of `POST /api/v1/clusters`.
#[derive(utoipa::ToSchema, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddClusterRequest {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Lifetime of the bootstrap token, in seconds (default one hour).
    #[serde(default)]
    pub token_ttl_secs: Option<u64>,
}

/// Request body of `POST /api/v1/clusters/{name}/tokens`.
#[derive(utoipa::ToSchema, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    #[serde(default)]
    pub token_ttl_secs: Option<u64>,
}

/// Request body of `PATCH /api/v1/clusters/{name}/labels`.
#[derive(utoipa::ToSchema, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelRequest {
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    #[serde(default)]
    pub remove: Vec<String>,
}

/// Request body of `POST /api/v1/tokens`.
#[derive(utoipa::ToSchema, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    pub name: String,
    pub role: Role,
    /// Lifetime in seconds; none means the token never expires.
    #[serde(default)]
    pub ttl_secs: Option<u64>,
}

/// An admin API token as the API shows it (never its secret).
#[derive(utoipa::ToSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenView {
    pub name: String,
    pub role: Role,
    /// `active`, `expired` or `revoked`.
    pub state: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub last_used: Option<String>,
}

impl TokenView {
    fn new(record: &ApiTokenRecord, now: u64) -> Self {
        let state = if record.revoked_at.is_some() {
            "revoked"
        } else if record.is_active(now) {
            "active"
        } else {
            "expired"
        };
        Self {
            name: record.name.clone(),
            role: record.role,
            state: state.to_owned(),
            created_at: rfc3339(record.created_at),
            expires_at: record.expires_at.map(rfc3339),
            revoked_at: record.revoked_at.map(rfc3339),
            last_used: record.last_used.map(rfc3339),
        }
    }
}

/// Answer of `POST /api/v1/tokens`: the only time the secret is shown.
#[derive(utoipa::ToSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: TokenView,
    pub secret: String,
}

/// Query of `GET /api/v1/audit`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// RFC 3339 time (UTC, `Z`); entries before it are left out.
    #[serde(default)]
    pub since: Option<String>,
    /// At most this many entries, the newest ones (default 100).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// One audit log entry as the API shows it.
#[derive(utoipa::ToSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditView {
    pub time: String,
    pub actor: String,
    pub role: Role,
    pub method: String,
    pub path: String,
    pub target: Option<String>,
    pub status: u16,
    pub message: Option<String>,
    pub remote: Option<String>,
}

impl From<AuditRecord> for AuditView {
    fn from(r: AuditRecord) -> Self {
        Self {
            time: rfc3339(r.at),
            actor: r.actor,
            role: r.role,
            method: r.method,
            path: r.path,
            target: r.target,
            status: r.status,
            message: r.message,
            remote: r.remote,
        }
    }
}

/// The running hub's data dir, given to the router as an extension: the
/// backup route reads the hub's identity files from it.
#[derive(Debug, Clone)]
pub struct DataDir(pub std::path::PathBuf);

/// `POST /api/v1/backup`: a consistent snapshot of the store and the hub's
/// identity files, as one archive (see [`crate::backup`]). A POST so that
/// the audit log records who took a copy of the CA key.
#[utoipa::path(post, path = "/backup", tag = "backup", summary = "A consistent backup archive of the hub", responses((status = 200, description = "the archive", content_type = "application/octet-stream", body = Vec<u8>), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
async fn take_backup(
    State(state): State<AppState>,
    data_dir: Option<axum::Extension<DataDir>>,
) -> ApiResult<Response> {
    let Some(axum::Extension(DataDir(dir))) = data_dir else {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "this hub was started without a data dir to back up",
        ));
    };
    let store = state.store.clone();
    let taken =
        tokio::task::spawn_blocking(move || crate::backup::take(store.as_ref(), &dir, unix_now()))
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let (archive, summary) = taken.map_err(|e| {
        let chain = switchyard_common::error_chain(&e);
        tracing::error!(error = %chain, "backup failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("backup failed: {chain}"),
        )
    })?;
    tracing::info!(
        clusters = summary.clusters,
        apps = summary.apps,
        bytes = summary.bytes,
        "backup taken"
    );
    Ok(([(header::CONTENT_TYPE, "application/zstd")], archive).into_response())
}

const DEFAULT_AUDIT_LIMIT: usize = 100;
const MAX_AUDIT_LIMIT: usize = 10_000;

/// The admin API router. Built without a socket so tests can call it
/// directly; the remote address in the audit log comes from
/// `ConnectInfo<SocketAddr>`, which the server provides.
pub fn router(
    fleet: Arc<Fleet>,
    gitops: Arc<GitOps>,
    store: Arc<dyn Store>,
    admin_token: String,
) -> Router {
    let state = AppState {
        fleet,
        gitops,
        auth: Arc::new(Authenticator::new(store.clone(), &admin_token)),
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
    let guard = middleware::from_fn_with_state(state.clone(), guard);
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
        .routes(routes!(list_clusters, add_cluster))
        .routes(routes!(show_cluster, remove_cluster))
        .routes(routes!(label_cluster))
        .routes(routes!(new_token))
        .routes(routes!(list_repos, add_repo))
        .routes(routes!(show_repo, replace_repo, remove_repo))
        .routes(routes!(list_groups, create_group))
        .routes(routes!(show_group, replace_group, delete_group))
        .routes(routes!(list_apps, create_app))
        .routes(routes!(show_app, update_app, delete_app))
        .routes(routes!(app_history))
        .routes(routes!(sync_app))
        .routes(routes!(rollback_app))
        .routes(routes!(status))
        .routes(routes!(list_api_tokens, create_api_token))
        .routes(routes!(revoke_api_token))
        .routes(routes!(audit_log))
        .routes(routes!(take_backup));
    // Forges authenticate with their signature, not the admin token.
    let hooks = Described::new().routes(routes!(git_webhook));
    // Probes and scrapers carry no token: these answer with counts and
    // states, never names or secrets.
    Described::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
        .nest("/api/v1", authenticated(api).merge(hooks))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Switchyard hub admin API",
        description = "JSON over HTTPS with the hub's own certificate. Every route under /api/v1 but the webhook needs a bearer token whose role allows it; errors are {\"error\": \"...\"}."
    ),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
    }
}

/// The served OpenAPI document, rendered once.
#[derive(Clone)]
struct OpenApiDocument(Arc<String>);

#[utoipa::path(get, path = "/healthz", tag = "probes", summary = "Liveness", responses((status = 200, description = "alive", content_type = "text/plain", body = String)))]
async fn healthz() -> &'static str {
    "ok\n"
}

#[utoipa::path(get, path = "/openapi.json", tag = "probes", summary = "This description of the admin API", responses((status = 200, description = "OpenAPI 3.1 document", body = Object)))]
async fn openapi_json(axum::Extension(document): axum::Extension<OpenApiDocument>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document.0.as_str().to_owned(),
    )
        .into_response()
}

async fn no_such_route(method: Method, uri: axum::extract::OriginalUri) -> ApiError {
    ApiError::malformed(
        StatusCode::NOT_FOUND,
        format!("no such route: {method} {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: axum::extract::OriginalUri) -> ApiError {
    ApiError::malformed(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method {method} is not allowed on {}", uri.path()),
    )
}

/// Every error answer is `{"error": "..."}`: one that some layer below
/// answered otherwise (plain text or empty) is rewrapped, keeping its
/// status and headers.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, AUDITED_ERROR_LIMIT)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_owned();
    let error = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_lowercase()
    } else {
        text
    };
    let body = serde_json::to_vec(&ErrorBody { error }).expect("error body serializes");
    parts.headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// Answer of `GET /readyz`.
#[derive(utoipa::ToSchema, Debug, Serialize, Deserialize)]
pub struct ReadyView {
    pub ready: bool,
    /// What the hub still waits for: `store`, `QUIC endpoint`, `first planning pass`.
    pub waiting_for: Vec<String>,
}

/// 200 once the store is open, the QUIC endpoint bound and the first
/// planning pass done; 503 before, naming what is missing. `/healthz`
/// stays the liveness check.
#[utoipa::path(get, path = "/readyz", tag = "probes", summary = "Readiness: 200 once store, QUIC endpoint and first planning pass are ready, else 503", responses((status = 200, description = "OK", body = ReadyView), (status = 503, description = "not ready yet", body = ReadyView)))]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<ReadyView>) {
    let waiting_for: Vec<String> = state
        .fleet
        .readiness()
        .waiting_for()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let status = if waiting_for.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let ready = waiting_for.is_empty();
    (status, Json(ReadyView { ready, waiting_for }))
}

/// Prometheus text exposition of the hub's metrics.
#[utoipa::path(get, path = "/metrics", tag = "probes", summary = "Prometheus text exposition", responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String)))]
async fn metrics(State(state): State<AppState>) -> ApiResult<Response> {
    let fleet = state.fleet.clone();
    let text = tokio::task::spawn_blocking(move || fleet.encode_metrics())
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// Largest error body kept in the audit log; error answers are small JSON.
const AUDITED_ERROR_LIMIT: usize = 64 * 1024;

/// Authenticate, authorize and, for mutations, audit every request to an
/// authenticated route. Requests without a valid token are answered before
/// anything is written, so an anonymous caller cannot grow the audit log.
async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let now = unix_now();
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = match state.auth.authenticate(authorization, now) {
        Ok(principal) => principal,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().strip_prefix("/api/v1").unwrap_or(m.as_str()))
        .unwrap_or_default();
    let rule = auth::rule_for(request.method().as_str(), route);
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        let response = match auth::authorize(&principal, &rule) {
            Ok(()) => next.run(request).await,
            Err(e) => ApiError::from(e).into_response(),
        };
        // A malformed request writes nothing, not even the token's last use.
        if !is_malformed(&response) {
            state.auth.touch(&principal, now);
        }
        return response;
    }
    audited(state, principal, rule, now, request, next).await
}

/// Run a mutation (or refuse it) and append the outcome to the audit log,
/// durably, before answering.
async fn audited(
    state: AppState,
    principal: Principal,
    rule: auth::Rule,
    now: u64,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().to_string();
    // Inside the `/api/v1` nest the URI has lost its prefix; the original keeps it.
    let uri = request
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| request.uri().clone(), |u| u.0.clone());
    // A dry run is audited as one, so it is never mistaken for the change.
    let path = match uri.query() {
        Some(query) if query.contains("dry_run=true") => format!("{}?{query}", uri.path()),
        _ => uri.path().to_owned(),
    };
    let remote = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string());
    let (request, target) = target_of(&rule, request).await;
    let response = match request {
        Err(refusal) => refusal.into_response(),
        Ok(mut request) => match auth::authorize(&principal, &rule) {
            Err(e) => ApiError::from(e).into_response(),
            Ok(()) => {
                // Handlers whose rights depend on more than the route read it.
                request.extensions_mut().insert(principal.clone());
                next.run(request).await
            }
        },
    };
    if is_malformed(&response) {
        tracing::debug!(%method, %path, status = response.status().as_u16(), "malformed request refused; not audited");
        return response;
    }
    state.auth.touch(&principal, now);
    let status = response.status();
    let (response, message) = if status.is_success() {
        let note = response
            .extensions()
            .get::<AuditNote>()
            .map(|n| n.0.clone());
        (response, note)
    } else {
        let (parts, body) = response.into_parts();
        match axum::body::to_bytes(body, AUDITED_ERROR_LIMIT).await {
            Ok(bytes) => {
                let message = serde_json::from_slice::<ErrorBody>(&bytes)
                    .map(|b| b.error)
                    .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
                (
                    Response::from_parts(parts, axum::body::Body::from(bytes)),
                    Some(message),
                )
            }
            Err(e) => (
                Response::from_parts(parts, axum::body::Body::empty()),
                Some(format!("error answer not readable: {e}")),
            ),
        }
    };
    let entry = AuditRecord {
        at: now,
        actor: principal.name,
        role: principal.role,
        method,
        path,
        target,
        status: status.as_u16(),
        message,
        remote,
    };
    let store = state.store.clone();
    let written = tokio::task::spawn_blocking(move || store.append_audit(&entry)).await;
    match written {
        Ok(Ok(())) => response,
        Ok(Err(e)) => audit_failed(status, &e),
        Err(e) => audit_failed(status, &e),
    }
}

/// A mutation whose audit entry could not be written is reported as a
/// failure, naming what the request itself answered, so nobody mistakes an
/// unaudited change for an audited one.
fn audit_failed(status: StatusCode, error: &dyn std::error::Error) -> Response {
    tracing::error!(error = %error, request_status = status.as_u16(), "writing the audit log failed");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!(
            "the request was answered {} but the audit log could not be written: {error}",
            status.as_u16()
        ),
    )
    .into_response()
}

/// The `kind name` a request acts on: the route's `{name}`, or the `name`
/// field of a JSON body sent to a collection. The body is buffered for
/// that and handed on unchanged; one over the size limit is refused here.
async fn target_of(
    rule: &auth::Rule,
    request: Request,
) -> (Result<Request, ApiError>, Option<String>) {
    let Some(kind) = rule.target else {
        return (Ok(request), None);
    };
    let (mut parts, body) = request.into_parts();
    if let Ok(params) = RawPathParams::from_request_parts(&mut parts, &()).await
        && let Some((_, name)) = params.iter().find(|(k, _)| *k == "name")
    {
        let target = format!("{kind} {name}");
        return (Ok(Request::from_parts(parts, body)), Some(target));
    }
    let bytes = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let refusal = ApiError::malformed(StatusCode::PAYLOAD_TOO_LARGE, too_large_message());
            return (Err(refusal), None);
        }
    };
    let target = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_owned))
        .map(|name| format!("{kind} {name}"));
    let request = Request::from_parts(parts, axum::body::Body::from(bytes));
    (Ok(request), target)
}

#[utoipa::path(post, path = "/tokens", tag = "tokens", summary = "Create an admin API token; the secret is shown once", request_body = CreateTokenRequest, responses((status = 201, description = "created", body = CreatedToken), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
async fn create_api_token(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CreateTokenRequest>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let now = unix_now();
    let ttl = request.ttl_secs.map(Duration::from_secs);
    let (secret, record) = state.auth.create(&request.name, request.role, ttl, now)?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: TokenView::new(&record, now),
            secret,
        }),
    ))
}

#[utoipa::path(get, path = "/tokens", tag = "tokens", summary = "List admin API tokens (never their secrets)", responses((status = 200, description = "OK", body = Vec<TokenView>), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
async fn list_api_tokens(State(state): State<AppState>) -> ApiResult<Json<Vec<TokenView>>> {
    let now = unix_now();
    Ok(Json(
        state
            .auth
            .tokens()?
            .iter()
            .map(|t| TokenView::new(t, now))
            .collect(),
    ))
}

#[utoipa::path(delete, path = "/tokens/{name}", tag = "tokens", summary = "Revoke an admin API token", params(("name" = String, Path, description = "token name")), responses((status = 200, description = "OK", body = TokenView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
async fn revoke_api_token(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<TokenView>> {
    let now = unix_now();
    Ok(Json(TokenView::new(&state.auth.revoke(&name, now)?, now)))
}

#[utoipa::path(get, path = "/audit", tag = "audit", summary = "The audit log, newest last", params(("since" = Option<String>, Query, description = "RFC 3339 time; older entries are left out"), ("limit" = Option<usize>, Query, description = "at most this many, newest (default 100)")), responses((status = 200, description = "OK", body = Vec<AuditView>), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
async fn audit_log(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Vec<AuditView>>> {
    let since = match query.since.as_deref() {
        None => 0,
        Some(text) => humantime::parse_rfc3339_weak(text)
            .map(crate::clock::unix_seconds)
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "since={text:?} is not an RFC 3339 time such as 2025-01-31T12:00:00Z: {e}"
                    ),
                )
            })?,
    };
    let limit = query.limit.unwrap_or(DEFAULT_AUDIT_LIMIT);
    if limit == 0 || limit > MAX_AUDIT_LIMIT {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("limit must be between 1 and {MAX_AUDIT_LIMIT}"),
        ));
    }
    let entries = state.store.audit(since, limit)?;
    Ok(Json(entries.into_iter().map(AuditView::from).collect()))
}

fn parse_name(name: &str) -> ApiResult<ClusterName> {
    ClusterName::new(name)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))
}

fn not_found(name: &ClusterName) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("cluster {name} not found"))
}

#[utoipa::path(post, path = "/clusters", tag = "clusters", summary = "Register a cluster; answers its single-use join command", request_body = AddClusterRequest, responses((status = 201, description = "created", body = JoinInfo), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
async fn add_cluster(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<AddClusterRequest>,
) -> ApiResult<(StatusCode, Json<JoinInfo>)> {
    let name = parse_name(&request.name)?;
    let ttl = Duration::from_secs(request.token_ttl_secs.unwrap_or(3600));
    let added = state.fleet.add_cluster(name, request.labels, ttl)?;
    state.gitops.reconcile("admin").await?;
    Ok((StatusCode::CREATED, Json(added)))
}

#[utoipa::path(post, path = "/clusters/{name}/tokens", tag = "clusters", summary = "Mint a new single-use join command", request_body = TokenRequest, params(("name" = String, Path, description = "cluster name")), responses((status = 201, description = "created", body = JoinInfo), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
async fn new_token(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<TokenRequest>,
) -> ApiResult<(StatusCode, Json<JoinInfo>)> {
    let name = parse_name(&name)?;
    let ttl = Duration::from_secs(request.token_ttl_secs.unwrap_or(3600));
    let info = state.fleet.new_bootstrap_token(&name, ttl)?;
    Ok((StatusCode::CREATED, Json(info)))
}

#[utoipa::path(get, path = "/clusters", tag = "clusters", summary = "List clusters", responses((status = 200, description = "OK", body = Vec<ClusterView>), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
async fn list_clusters(State(state): State<AppState>) -> ApiResult<Json<Vec<ClusterView>>> {
    Ok(Json(state.fleet.clusters()?))
}

#[utoipa::path(get, path = "/clusters/{name}", tag = "clusters", summary = "Show a cluster", params(("name" = String, Path, description = "cluster name")), responses((status = 200, description = "OK", body = ClusterView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
async fn show_cluster(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<ClusterView>> {
    let name = parse_name(&name)?;
    state
        .fleet
        .cluster(&name)?
        .map(Json)
        .ok_or_else(|| not_found(&name))
}

#[utoipa::path(delete, path = "/clusters/{name}", tag = "clusters", summary = "Remove a cluster: revoke its certificate and disconnect its agent", params(("name" = String, Path, description = "cluster name")), responses((status = 200, description = "OK", body = ClusterView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
async fn remove_cluster(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<ClusterView>> {
    let name = parse_name(&name)?;
    state
        .fleet
        .remove_cluster(&name)?
        .map(Json)
        .ok_or_else(|| not_found(&name))
}

/// Query of `GET /api/v1/status`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct StatusQuery {
    #[serde(default)]
    pub app: Option<String>,
}

#[utoipa::path(get, path = "/status", tag = "status", summary = "Sync and health of every (app, cluster) pair", params(("app" = Option<String>, Query, description = "only this app")), responses((status = 200, description = "OK", body = Vec<fleet::StatusView>), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
async fn status(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<StatusQuery>,
) -> ApiResult<Json<Vec<fleet::StatusView>>> {
    Ok(Json(state.fleet.status(query.app.as_deref())?))
}

#[utoipa::path(get, path = "/repos", tag = "repos", summary = "List repos", responses((status = 200, description = "OK", body = Vec<RepoView>), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
async fn list_repos(State(state): State<AppState>) -> ApiResult<Json<Vec<RepoView>>> {
    Ok(Json(state.gitops.repos()?))
}

/// Query of the routes that take `?dry_run=true`: check everything the
/// hub would check (files named on its machine included) and store nothing.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DryRunQuery {
    #[serde(default)]
    pub dry_run: bool,
}

#[utoipa::path(post, path = "/repos", tag = "repos", summary = "Follow a repo (with dry_run=true: only check it)", request_body = RepoRequest, params(("dry_run" = Option<bool>, Query, description = "check, change nothing")), responses((status = 201, description = "created", body = RepoView), (status = 200, description = "dry run: the repo as it would be", body = RepoView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
async fn add_repo(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<DryRunQuery>,
    ApiJson(request): ApiJson<RepoRequest>,
) -> ApiResult<(StatusCode, Json<RepoView>)> {
    if query.dry_run {
        let checked = state.gitops.check_repo(request)?;
        return Ok((StatusCode::OK, Json(state.gitops.repo_view(&checked))));
    }
    Ok((StatusCode::CREATED, Json(state.gitops.add_repo(request)?)))
}

#[utoipa::path(put, path = "/repos/{name}", tag = "repos", summary = "Replace a repo's settings (with dry_run=true: only check them)", request_body = RepoRequest, params(("name" = String, Path, description = "repo name"), ("dry_run" = Option<bool>, Query, description = "check, change nothing")), responses((status = 200, description = "OK", body = RepoView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
async fn replace_repo(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<DryRunQuery>,
    ApiJson(request): ApiJson<RepoRequest>,
) -> ApiResult<Json<RepoView>> {
    if query.dry_run {
        let checked = state.gitops.check_repo(request)?;
        return Ok(Json(state.gitops.repo_view(&checked)));
    }
    Ok(Json(state.gitops.replace_repo(&name, request).await?))
}

#[utoipa::path(get, path = "/groups", tag = "groups", summary = "List cluster groups", responses((status = 200, description = "OK", body = Vec<GroupView>), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
async fn list_groups(State(state): State<AppState>) -> ApiResult<Json<Vec<GroupView>>> {
    Ok(Json(state.gitops.groups()?))
}

#[utoipa::path(post, path = "/groups", tag = "groups", summary = "Create a cluster group", request_body = GroupRequest, responses((status = 201, description = "created", body = GroupView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
async fn create_group(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<GroupRequest>,
) -> ApiResult<(StatusCode, Json<GroupView>)> {
    Ok((
        StatusCode::CREATED,
        Json(state.gitops.create_group(request).await?),
    ))
}

#[utoipa::path(get, path = "/groups/{name}", tag = "groups", summary = "Show a cluster group", params(("name" = String, Path, description = "group name")), responses((status = 200, description = "OK", body = GroupView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
async fn show_group(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<GroupView>> {
    Ok(Json(state.gitops.group(&name)?))
}

#[utoipa::path(put, path = "/groups/{name}", tag = "groups", summary = "Replace a cluster group's selector", request_body = GroupRequest, params(("name" = String, Path, description = "group name")), responses((status = 200, description = "OK", body = GroupView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
async fn replace_group(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<GroupRequest>,
) -> ApiResult<Json<GroupView>> {
    Ok(Json(state.gitops.replace_group(&name, request).await?))
}

#[utoipa::path(delete, path = "/groups/{name}", tag = "groups", summary = "Delete a cluster group no app targets", params(("name" = String, Path, description = "group name")), responses((status = 200, description = "OK", body = GroupView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
async fn delete_group(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<GroupView>> {
    Ok(Json(state.gitops.delete_group(&name).await?))
}

#[utoipa::path(get, path = "/repos/{name}", tag = "repos", summary = "Show a repo", params(("name" = String, Path, description = "repo name")), responses((status = 200, description = "OK", body = RepoView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
async fn show_repo(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<RepoView>> {
    Ok(Json(state.gitops.repo(&name)?))
}

#[utoipa::path(delete, path = "/repos/{name}", tag = "repos", summary = "Stop following a repo no app uses", params(("name" = String, Path, description = "repo name")), responses((status = 200, description = "OK", body = RepoView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
async fn remove_repo(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<RepoView>> {
    Ok(Json(state.gitops.remove_repo(&name).await?))
}

#[utoipa::path(get, path = "/apps", tag = "apps", summary = "List apps", responses((status = 200, description = "OK", body = Vec<AppView>), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
async fn list_apps(State(state): State<AppState>) -> ApiResult<Json<Vec<AppView>>> {
    Ok(Json(state.gitops.apps()?))
}

#[utoipa::path(post, path = "/apps", tag = "apps", summary = "Create an app", request_body = AppRequest, responses((status = 201, description = "created", body = AppView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
async fn create_app(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<AppRequest>,
) -> ApiResult<(StatusCode, Json<AppView>)> {
    Ok((
        StatusCode::CREATED,
        Json(state.gitops.create_app(request).await?),
    ))
}

#[utoipa::path(get, path = "/apps/{name}", tag = "apps", summary = "Show an app", params(("name" = String, Path, description = "app name")), responses((status = 200, description = "OK", body = AppView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
async fn show_app(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<AppView>> {
    Ok(Json(state.gitops.app(&name)?))
}

#[utoipa::path(patch, path = "/apps/{name}", tag = "apps", summary = "Change an app (fields left out stay)", request_body = AppRequest, params(("name" = String, Path, description = "app name")), responses((status = 200, description = "OK", body = AppView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
async fn update_app(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<AppRequest>,
) -> ApiResult<Json<AppView>> {
    Ok(Json(state.gitops.update_app(&name, request).await?))
}

#[utoipa::path(delete, path = "/apps/{name}", tag = "apps", summary = "Delete an app", params(("name" = String, Path, description = "app name")), responses((status = 200, description = "OK", body = AppView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
async fn delete_app(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<AppView>> {
    Ok(Json(state.gitops.delete_app(&name).await?))
}

#[utoipa::path(get, path = "/apps/{name}/history", tag = "apps", summary = "Deployed revisions of an app, newest first", params(("name" = String, Path, description = "app name")), responses((status = 200, description = "OK", body = Vec<RevisionView>), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
async fn app_history(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<RevisionView>>> {
    Ok(Json(state.gitops.history(&name)?))
}

#[utoipa::path(post, path = "/apps/{name}/sync", tag = "apps", summary = "Deploy the pending (or a given) revision", request_body = SyncRequest, params(("name" = String, Path, description = "app name")), responses((status = 200, description = "OK", body = AppView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
async fn sync_app(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<SyncRequest>,
) -> ApiResult<Response> {
    let reason = sync_override(&principal, &request)?;
    let view = state
        .gitops
        .sync(&name, request.revision.as_deref(), reason.as_deref())
        .await?;
    let mut response = Json(view).into_response();
    if let Some(reason) = reason {
        response.extensions_mut().insert(AuditNote(format!(
            "deployed {} outside the tracked revision (--allow-unreachable): {reason}",
            request.revision.as_deref().unwrap_or_default()
        )));
    }
    Ok(response)
}

/// The reason of an override of the tracked-revision rule, if the request
/// asks for one: only an admin may, only for an explicit revision, and
/// only with a reason for the audit log.
fn sync_override(principal: &Principal, request: &SyncRequest) -> ApiResult<Option<String>> {
    if !request.allow_unreachable {
        return Ok(None);
    }
    if principal.role < Role::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "role {} may not deploy a commit outside the app's tracked revision \
                 (--allow-unreachable is for admins)",
                principal.role
            ),
        ));
    }
    if request.revision.is_none() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "--allow-unreachable needs --revision: the commit to deploy",
        ));
    }
    match request.reason.as_deref().map(str::trim) {
        Some(reason) if !reason.is_empty() => Ok(Some(reason.to_owned())),
        _ => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "--allow-unreachable needs --reason: why this commit, for the audit log",
        )),
    }
}

#[utoipa::path(post, path = "/apps/{name}/rollback", tag = "apps", summary = "Pin an earlier revision", request_body = RollbackRequest, params(("name" = String, Path, description = "app name")), responses((status = 200, description = "OK", body = AppView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
async fn rollback_app(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<RollbackRequest>,
) -> ApiResult<Json<AppView>> {
    Ok(Json(
        state.gitops.rollback(&name, request.to.as_deref()).await?,
    ))
}

#[utoipa::path(post, path = "/webhooks/git", tag = "webhooks", summary = "Push webhook from GitHub, GitLab or Gitea/Forgejo (signed; no bearer token)", request_body = Object, responses((status = 202, description = "repos being fetched", body = Object), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)))]
async fn git_webhook(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    use gitops::WebhookRefusal as R;
    match state.gitops.handle_webhook(&headers, &body) {
        Ok(repos) => Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "fetching": repos })),
        )),
        Err(R::Invalid(e @ gitops::webhook::WebhookError::BadSignature(_)))
        | Err(R::Invalid(e @ gitops::webhook::WebhookError::MissingSignature(..))) => {
            Err(ApiError::new(StatusCode::UNAUTHORIZED, e.to_string()))
        }
        Err(R::Invalid(e)) => Err(ApiError::new(StatusCode::BAD_REQUEST, e.to_string())),
        Err(e @ R::NoRepo(_)) => Err(ApiError::new(StatusCode::NOT_FOUND, e.to_string())),
        Err(e @ R::Internal(_)) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            e.to_string(),
        )),
    }
}

#[utoipa::path(patch, path = "/clusters/{name}/labels", tag = "clusters", summary = "Set and remove labels", request_body = LabelRequest, params(("name" = String, Path, description = "cluster name")), responses((status = 200, description = "OK", body = ClusterView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
async fn label_cluster(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<LabelRequest>,
) -> ApiResult<Json<ClusterView>> {
    let name = parse_name(&name)?;
    state
        .fleet
        .label_cluster(&name, &request.set, &request.remove)?
        .ok_or_else(|| not_found(&name))?;
    state.gitops.reconcile("admin").await?;
    state
        .fleet
        .cluster(&name)?
        .map(Json)
        .ok_or_else(|| not_found(&name))
}

#[cfg(test)]
mod tests;
