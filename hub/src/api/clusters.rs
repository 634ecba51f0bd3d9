//! `/api/v1/clusters`: register, list, show, label and remove clusters,
//! and mint their join commands.

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::ApiJson;
use crate::fleet::{ClusterView, JoinInfo};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use switchyard_common::ClusterName;

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

fn parse_name(name: &str) -> ApiResult<ClusterName> {
    ClusterName::new(name)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))
}

fn not_found(name: &ClusterName) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("cluster {name} not found"))
}

#[utoipa::path(post, path = "/clusters", tag = "clusters", summary = "Register a cluster; answers its single-use join command", request_body = AddClusterRequest, responses((status = 201, description = "created", body = JoinInfo), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn add_cluster(
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
pub(super) async fn new_token(
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
pub(super) async fn list_clusters(
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<ClusterView>>> {
    Ok(Json(state.fleet.clusters()?))
}

#[utoipa::path(get, path = "/clusters/{name}", tag = "clusters", summary = "Show a cluster", params(("name" = String, Path, description = "cluster name")), responses((status = 200, description = "OK", body = ClusterView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn show_cluster(
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
pub(super) async fn remove_cluster(
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

#[utoipa::path(patch, path = "/clusters/{name}/labels", tag = "clusters", summary = "Set and remove labels", request_body = LabelRequest, params(("name" = String, Path, description = "cluster name")), responses((status = 200, description = "OK", body = ClusterView), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn label_cluster(
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
