//! The HTTP admin API the CLI talks to (JSON over HTTP, bearer token).

use crate::fleet::{self, ClusterView, Fleet, JoinInfo};
use crate::gitops::{self, AppRequest, AppView, GitOps, RepoRequest, RepoView, RevisionView};
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
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
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

/// Body of every error answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response()
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
            tracing::error!(error = %crate::agents::error_chain(&error), "admin request failed");
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
    admin_token_hash: [u8; 32],
}

impl From<gitops::Error> for ApiError {
    fn from(error: gitops::Error) -> Self {
        use gitops::Error as E;
        let status = match &error {
            E::Store(crate::store::Error::RepoExists(_) | crate::store::Error::AppExists(_))
            | E::RepoInUse { .. } => StatusCode::CONFLICT,
            E::RepoNotFound(_) | E::AppNotFound(_) => StatusCode::NOT_FOUND,
            E::Invalid { .. }
            | E::NotInHistory { .. }
            | E::NothingToRollBack(_)
            | E::NotFetched(_) => StatusCode::UNPROCESSABLE_ENTITY,
            // Unknown revisions, unreachable remotes: the caller can act on them.
            E::Git(_) => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %crate::agents::error_chain(&error), "admin request failed");
        }
        ApiError::new(status, error.to_string())
    }
}

/// Request body of `POST /api/v1/apps/{name}/sync`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    #[serde(default)]
    pub revision: Option<String>,
}

/// Request body of `POST /api/v1/apps/{name}/rollback`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    #[serde(default)]
    pub to: Option<String>,
}

/// Request body of `POST /api/v1/clusters`.
#[derive(Debug, Serialize, Deserialize)]
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
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    #[serde(default)]
    pub token_ttl_secs: Option<u64>,
}

/// Request body of `PATCH /api/v1/clusters/{name}/labels`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelRequest {
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    #[serde(default)]
    pub remove: Vec<String>,
}

/// The admin API router. Built without a socket so tests can call it directly.
pub fn router(fleet: Arc<Fleet>, gitops: Arc<GitOps>, admin_token: String) -> Router {
    let state = AppState {
        fleet,
        gitops,
        admin_token_hash: Sha256::digest(admin_token.as_bytes()).into(),
    };
    let api = Router::new()
        .route("/clusters", get(list_clusters).post(add_cluster))
        .route("/clusters/{name}", get(show_cluster).delete(remove_cluster))
        .route("/clusters/{name}/labels", patch(label_cluster))
        .route("/clusters/{name}/tokens", post(new_token))
        .route("/repos", get(list_repos).post(add_repo))
        .route("/repos/{name}", get(show_repo).delete(remove_repo))
        .route("/apps", get(list_apps).post(create_app))
        .route(
            "/apps/{name}",
            get(show_app).patch(update_app).delete(delete_app),
        )
        .route("/apps/{name}/history", get(app_history))
        .route("/apps/{name}/sync", post(sync_app))
        .route("/apps/{name}/rollback", post(rollback_app))
        .route("/status", get(status))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .with_state(state.clone());
    // Forges authenticate with their signature, not the admin token.
    let hooks = Router::new()
        .route("/webhooks/git", post(git_webhook))
        .with_state(state);
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .nest("/api/v1", api.merge(hooks))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route") })
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
}

async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(presented) = presented else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing bearer token: set SWITCHYARD_TOKEN or run on the hub's machine with its --data-dir",
        )
        .into_response();
    };
    // Comparing digests keeps the comparison time independent of where the
    // presented token first differs from the real one.
    let digest: [u8; 32] = Sha256::digest(presented.trim().as_bytes()).into();
    if digest != state.admin_token_hash {
        return ApiError::new(StatusCode::UNAUTHORIZED, "invalid bearer token").into_response();
    }
    next.run(request).await
}

fn parse_name(name: &str) -> ApiResult<ClusterName> {
    ClusterName::new(name)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))
}

fn not_found(name: &ClusterName) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("cluster {name} not found"))
}

async fn add_cluster(
    State(state): State<AppState>,
    Json(request): Json<AddClusterRequest>,
) -> ApiResult<(StatusCode, Json<JoinInfo>)> {
    let name = parse_name(&request.name)?;
    let ttl = Duration::from_secs(request.token_ttl_secs.unwrap_or(3600));
    let added = state.fleet.add_cluster(name, request.labels, ttl)?;
    state.gitops.reconcile("admin").await?;
    Ok((StatusCode::CREATED, Json(added)))
}

async fn new_token(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Json(request): Json<TokenRequest>,
) -> ApiResult<(StatusCode, Json<JoinInfo>)> {
    let name = parse_name(&name)?;
    let ttl = Duration::from_secs(request.token_ttl_secs.unwrap_or(3600));
    let info = state.fleet.new_bootstrap_token(&name, ttl)?;
    Ok((StatusCode::CREATED, Json(info)))
}

async fn list_clusters(State(state): State<AppState>) -> ApiResult<Json<Vec<ClusterView>>> {
    Ok(Json(state.fleet.clusters()?))
}

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

async fn status(
    State(state): State<AppState>,
    axum::extract::Query(query): axum::extract::Query<StatusQuery>,
) -> ApiResult<Json<Vec<fleet::StatusView>>> {
    Ok(Json(state.fleet.status(query.app.as_deref())?))
}

async fn list_repos(State(state): State<AppState>) -> ApiResult<Json<Vec<RepoView>>> {
    Ok(Json(state.gitops.repos()?))
}

async fn add_repo(
    State(state): State<AppState>,
    Json(request): Json<RepoRequest>,
) -> ApiResult<(StatusCode, Json<RepoView>)> {
    Ok((StatusCode::CREATED, Json(state.gitops.add_repo(request)?)))
}

async fn show_repo(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<RepoView>> {
    Ok(Json(state.gitops.repo(&name)?))
}

async fn remove_repo(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<RepoView>> {
    Ok(Json(state.gitops.remove_repo(&name).await?))
}

async fn list_apps(State(state): State<AppState>) -> ApiResult<Json<Vec<AppView>>> {
    Ok(Json(state.gitops.apps()?))
}

async fn create_app(
    State(state): State<AppState>,
    Json(request): Json<AppRequest>,
) -> ApiResult<(StatusCode, Json<AppView>)> {
    Ok((
        StatusCode::CREATED,
        Json(state.gitops.create_app(request).await?),
    ))
}

async fn show_app(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<AppView>> {
    Ok(Json(state.gitops.app(&name)?))
}

async fn update_app(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Json(request): Json<AppRequest>,
) -> ApiResult<Json<AppView>> {
    Ok(Json(state.gitops.update_app(&name, request).await?))
}

async fn delete_app(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<AppView>> {
    Ok(Json(state.gitops.delete_app(&name).await?))
}

async fn app_history(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<RevisionView>>> {
    Ok(Json(state.gitops.history(&name)?))
}

async fn sync_app(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Json(request): Json<SyncRequest>,
) -> ApiResult<Json<AppView>> {
    Ok(Json(
        state
            .gitops
            .sync(&name, request.revision.as_deref())
            .await?,
    ))
}

async fn rollback_app(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Json(request): Json<RollbackRequest>,
) -> ApiResult<Json<AppView>> {
    Ok(Json(
        state.gitops.rollback(&name, request.to.as_deref()).await?,
    ))
}

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

async fn label_cluster(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Json(request): Json<LabelRequest>,
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
