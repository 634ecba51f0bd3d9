//! `/api/v1/groups`: cluster groups, the named selectors apps can target.

use super::AppState;
use super::error::{ApiResult, ErrorBody};
use super::extract::ApiJson;
use crate::gitops::{GroupRequest, GroupView};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

#[utoipa::path(get, path = "/groups", tag = "groups", summary = "List cluster groups", responses((status = 200, description = "OK", body = Vec<GroupView>), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn list_groups(State(state): State<AppState>) -> ApiResult<Json<Vec<GroupView>>> {
    Ok(Json(state.gitops.groups()?))
}

#[utoipa::path(post, path = "/groups", tag = "groups", summary = "Create a cluster group", request_body = GroupRequest, responses((status = 201, description = "created", body = GroupView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn create_group(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<GroupRequest>,
) -> ApiResult<(StatusCode, Json<GroupView>)> {
    Ok((
        StatusCode::CREATED,
        Json(state.gitops.create_group(request).await?),
    ))
}

#[utoipa::path(get, path = "/groups/{name}", tag = "groups", summary = "Show a cluster group", params(("name" = String, Path, description = "group name")), responses((status = 200, description = "OK", body = GroupView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn show_group(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<GroupView>> {
    Ok(Json(state.gitops.group(&name)?))
}

#[utoipa::path(put, path = "/groups/{name}", tag = "groups", summary = "Replace a cluster group's selector", request_body = GroupRequest, params(("name" = String, Path, description = "group name")), responses((status = 200, description = "OK", body = GroupView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn replace_group(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<GroupRequest>,
) -> ApiResult<Json<GroupView>> {
    Ok(Json(state.gitops.replace_group(&name, request).await?))
}

#[utoipa::path(delete, path = "/groups/{name}", tag = "groups", summary = "Delete a cluster group no app targets", params(("name" = String, Path, description = "group name")), responses((status = 200, description = "OK", body = GroupView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn delete_group(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<GroupView>> {
    Ok(Json(state.gitops.delete_group(&name).await?))
}
