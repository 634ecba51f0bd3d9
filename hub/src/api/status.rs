//! `/api/v1/status`: sync and health of every (app, cluster) pair.

use super::AppState;
use super::error::{ApiResult, ErrorBody};
use super::extract::ApiQuery;
use crate::fleet;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

/// Query of `GET /api/v1/status`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct StatusQuery {
    #[serde(default)]
    pub app: Option<String>,
}

#[utoipa::path(get, path = "/status", tag = "status", summary = "Sync and health of every (app, cluster) pair", params(("app" = Option<String>, Query, description = "only this app")), responses((status = 200, description = "OK", body = Vec<fleet::StatusView>), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn status(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<StatusQuery>,
) -> ApiResult<Json<Vec<fleet::StatusView>>> {
    Ok(Json(state.fleet.status(query.app.as_deref())?))
}
