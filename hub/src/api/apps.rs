//! `/api/v1/apps`: create, change and delete apps; their history, sync
//! and rollback.

use super::AppState;
use super::error::{ApiError, ApiResult, AuditNote, ErrorBody};
use super::extract::{ApiJson, ApiQuery};
use crate::auth::{Principal, Role};
use crate::fleet::AppDiffView;
use crate::gitops::{AppRequest, AppView, ManifestsView, RevisionView};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use switchyard_common::ClusterName;

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
    /// Confirm the prune of the app's `Prune=confirm` objects that left
    /// Git, for the commit this sync deploys only.
    #[serde(default)]
    pub prune: bool,
}

/// Request body of `POST /api/v1/apps/{name}/rollback`.
#[derive(utoipa::ToSchema, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    #[serde(default)]
    pub to: Option<String>,
}

/// What `GET /api/v1/apps` says about each app's clusters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum ClusterDetail {
    /// `running_counts` and `target_count` only (the default): at 10,000
    /// clusters the names would be most of the answer.
    #[default]
    Counts,
    /// Also `running` and `target_clusters`, naming every cluster.
    Names,
}

/// Query of `GET /api/v1/apps`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AppsQuery {
    #[serde(default)]
    pub clusters: ClusterDetail,
    /// Only apps whose name sorts after this one (the last of the previous page).
    #[serde(default)]
    pub after: Option<String>,
    /// At most this many apps (all without).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// Most apps one page of `GET /api/v1/apps?limit=N` may ask for.
pub(super) const MAX_APPS_LIMIT: usize = 10_000;

#[utoipa::path(get, path = "/apps", tag = "apps", summary = "List apps, by name", description = "Each app's clusters are counted (`running_counts`, `target_count`); `clusters=names` also names them (`running`, `target_clusters`), as `GET /apps/{name}` always does.", params(("clusters" = Option<String>, Query, description = "`counts` (default) or `names`"), ("after" = Option<String>, Query, description = "only apps whose name sorts after this one: the last name of the previous page"), ("limit" = Option<usize>, Query, description = "at most this many apps (1 to 10000; all without)")), responses((status = 200, description = "OK", body = Vec<AppView>), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn list_apps(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AppsQuery>,
) -> ApiResult<Json<Vec<AppView>>> {
    if let Some(limit) = query.limit
        && (limit == 0 || limit > MAX_APPS_LIMIT)
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("limit must be between 1 and {MAX_APPS_LIMIT}"),
        ));
    }
    Ok(Json(state.gitops.apps_page(
        query.clusters == ClusterDetail::Names,
        query.after.as_deref(),
        query.limit,
    )?))
}

#[utoipa::path(post, path = "/apps", tag = "apps", summary = "Create an app", request_body = AppRequest, responses((status = 201, description = "created", body = AppView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn create_app(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<AppRequest>,
) -> ApiResult<(StatusCode, Json<AppView>)> {
    Ok((
        StatusCode::CREATED,
        Json(state.gitops.create_app(request).await?),
    ))
}

#[utoipa::path(get, path = "/apps/{name}", tag = "apps", summary = "Show an app", params(("name" = String, Path, description = "app name")), responses((status = 200, description = "OK", body = AppView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn show_app(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<AppView>> {
    Ok(Json(state.gitops.app(&name)?))
}

#[utoipa::path(patch, path = "/apps/{name}", tag = "apps", summary = "Change an app (fields left out stay)", request_body = AppRequest, params(("name" = String, Path, description = "app name")), responses((status = 200, description = "OK", body = AppView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn update_app(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<AppRequest>,
) -> ApiResult<Json<AppView>> {
    Ok(Json(state.gitops.update_app(&name, request).await?))
}

#[utoipa::path(delete, path = "/apps/{name}", tag = "apps", summary = "Delete an app", params(("name" = String, Path, description = "app name")), responses((status = 200, description = "OK", body = AppView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn delete_app(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<AppView>> {
    Ok(Json(state.gitops.delete_app(&name).await?))
}

#[utoipa::path(get, path = "/apps/{name}/history", tag = "apps", summary = "Deployed revisions of an app, newest first", params(("name" = String, Path, description = "app name")), responses((status = 200, description = "OK", body = Vec<RevisionView>), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn app_history(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<RevisionView>>> {
    Ok(Json(state.gitops.history(&name)?))
}

/// Query of `GET /api/v1/apps/{name}/manifests`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestsQuery {
    /// The cluster whose bundle to show; needed when clusters' bundles differ.
    #[serde(default)]
    pub cluster: Option<String>,
}

#[utoipa::path(get, path = "/apps/{name}/manifests", tag = "apps", summary = "The objects a cluster receives for an app (its assigned bundle)", params(("name" = String, Path, description = "app name"), ("cluster" = Option<String>, Query, description = "the cluster whose bundle to show")), responses((status = 200, description = "OK", body = ManifestsView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn app_manifests(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<ManifestsQuery>,
) -> ApiResult<Json<ManifestsView>> {
    Ok(Json(
        state
            .gitops
            .app_manifests(&name, query.cluster.as_deref())?,
    ))
}

/// Query of `GET /api/v1/apps/{name}/diff`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    /// Only this cluster; without it, every connected cluster the app is
    /// assigned to.
    #[serde(default)]
    pub cluster: Option<String>,
    /// Seconds to wait for each agent's answer (default 10, at most 60).
    #[serde(default)]
    pub timeout: Option<u64>,
}

/// How long the hub waits for an agent's diff unless asked otherwise.
pub const DEFAULT_DIFF_TIMEOUT_SECS: u64 = 10;
/// The longest wait a caller may ask for: an HTTP request held longer
/// than this is more likely a stuck caller than a slow agent.
const MAX_DIFF_TIMEOUT_SECS: u64 = 60;

#[utoipa::path(get, path = "/apps/{name}/diff", tag = "apps", summary = "What a sync would change, desired against live, per cluster (asked of the agents; Secret values masked)", params(("name" = String, Path, description = "app name"), ("cluster" = Option<String>, Query, description = "only this cluster"), ("timeout" = Option<u64>, Query, description = "seconds to wait for each agent (default 10, at most 60)")), responses((status = 200, description = "OK; a cluster without an answer has `error`", body = AppDiffView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn app_diff(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<DiffQuery>,
) -> ApiResult<Json<AppDiffView>> {
    // 404 for an app that does not exist.
    state.gitops.app(&name)?;
    let secs = query.timeout.unwrap_or(DEFAULT_DIFF_TIMEOUT_SECS);
    if !(1..=MAX_DIFF_TIMEOUT_SECS).contains(&secs) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("timeout must be 1 to {MAX_DIFF_TIMEOUT_SECS} seconds"),
        ));
    }
    let only =
        match &query.cluster {
            Some(c) => Some(ClusterName::new(c.clone()).map_err(|_| {
                ApiError::new(StatusCode::NOT_FOUND, format!("cluster {c} not found"))
            })?),
            None => None,
        };
    let view = state
        .fleet
        .app_diff(&name, only.as_ref(), Duration::from_secs(secs))
        .await?;
    view.map(Json).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "app {name} is not assigned to cluster {}",
                query.cluster.as_deref().unwrap_or_default()
            ),
        )
    })
}

#[utoipa::path(post, path = "/apps/{name}/sync", tag = "apps", summary = "Deploy the pending (or a given) revision", request_body = SyncRequest, params(("name" = String, Path, description = "app name")), responses((status = 200, description = "OK", body = AppView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn sync_app(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<SyncRequest>,
) -> ApiResult<Response> {
    let reason = sync_override(&principal, &request)?;
    let view = state
        .gitops
        .sync(
            &name,
            request.revision.as_deref(),
            reason.as_deref(),
            request.prune,
        )
        .await?;
    let confirmed = view.prune_confirmed.clone().filter(|_| request.prune);
    let mut response = Json(view).into_response();
    let mut notes = Vec::new();
    if let Some(reason) = reason {
        notes.push(format!(
            "deployed {} outside the tracked revision (--allow-unreachable): {reason}",
            request.revision.as_deref().unwrap_or_default()
        ));
    }
    if let Some(commit) = confirmed {
        notes.push(format!(
            "confirmed the prune of Prune=confirm objects at commit {commit}"
        ));
    }
    if !notes.is_empty() {
        response
            .extensions_mut()
            .insert(AuditNote(notes.join("; ")));
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
pub(super) async fn rollback_app(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<RollbackRequest>,
) -> ApiResult<Json<AppView>> {
    Ok(Json(
        state.gitops.rollback(&name, request.to.as_deref()).await?,
    ))
}
