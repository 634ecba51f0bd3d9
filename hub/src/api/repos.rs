//! `/api/v1/repos`: follow, show, replace and stop following Git repos.

use super::AppState;
use super::error::{ApiResult, ErrorBody};
use super::extract::{ApiJson, ApiQuery, DryRunQuery};
use crate::gitops::{RepoRequest, RepoView};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

#[utoipa::path(get, path = "/repos", tag = "repos", summary = "List repos", responses((status = 200, description = "OK", body = Vec<RepoView>), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn list_repos(State(state): State<AppState>) -> ApiResult<Json<Vec<RepoView>>> {
    Ok(Json(state.gitops.repos()?))
}

#[utoipa::path(post, path = "/repos", tag = "repos", summary = "Follow a repo (with dry_run=true: only check it)", request_body = RepoRequest, params(("dry_run" = Option<bool>, Query, description = "check, change nothing")), responses((status = 201, description = "created", body = RepoView), (status = 200, description = "dry run: the repo as it would be", body = RepoView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn add_repo(
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
pub(super) async fn replace_repo(
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

#[utoipa::path(get, path = "/repos/{name}", tag = "repos", summary = "Show a repo", params(("name" = String, Path, description = "repo name")), responses((status = 200, description = "OK", body = RepoView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn show_repo(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<RepoView>> {
    Ok(Json(state.gitops.repo(&name)?))
}

#[utoipa::path(post, path = "/repos/{name}/refresh", tag = "repos", summary = "Fetch a repo now instead of at its next poll; answers at once, the fetch runs in the background", params(("name" = String, Path, description = "repo name")), responses((status = 202, description = "fetch requested", body = RepoView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn refresh_repo(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<(axum::http::StatusCode, Json<RepoView>)> {
    let repo = state.gitops.repo(&name)?;
    state.gitops.fetch_soon(&name);
    Ok((axum::http::StatusCode::ACCEPTED, Json(repo)))
}

#[utoipa::path(delete, path = "/repos/{name}", tag = "repos", summary = "Stop following a repo no app uses", params(("name" = String, Path, description = "repo name")), responses((status = 200, description = "OK", body = RepoView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn remove_repo(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<RepoView>> {
    Ok(Json(state.gitops.remove_repo(&name).await?))
}
