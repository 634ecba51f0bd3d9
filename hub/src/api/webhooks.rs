//! `/api/v1/webhooks/git`: push webhooks from forges, authenticated by
//! their signature rather than a bearer token.

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorBody};
use crate::gitops;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

#[utoipa::path(post, path = "/webhooks/git", tag = "webhooks", summary = "Push webhook from GitHub, GitLab or Gitea/Forgejo (signed; no bearer token)", request_body = Object, responses((status = 202, description = "repos being fetched", body = Object), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)))]
pub(super) async fn git_webhook(
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
