//! `/api/v1/tokens`: admin API tokens (created with their secret shown
//! once, listed without it, revoked).

use super::AppState;
use super::error::{ApiResult, ErrorBody};
use super::extract::ApiJson;
use crate::auth::Role;
use crate::clock::rfc3339;
use crate::store::ApiTokenRecord;
use crate::unix_now;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::time::Duration;

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

#[utoipa::path(post, path = "/tokens", tag = "tokens", summary = "Create an admin API token; the secret is shown once", request_body = CreateTokenRequest, responses((status = 201, description = "created", body = CreatedToken), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn create_api_token(
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
pub(super) async fn list_api_tokens(
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<TokenView>>> {
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
pub(super) async fn revoke_api_token(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<TokenView>> {
    let now = unix_now();
    Ok(Json(TokenView::new(&state.auth.revoke(&name, now)?, now)))
}
