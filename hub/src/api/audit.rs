//! `/api/v1/audit`: the audit log of every authenticated mutation, and of
//! every web sign-in and sign-out ([`crate::sign_in`]).

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::ApiQuery;
use crate::auth::Role;
use crate::clock::rfc3339;
use crate::store::AuditRecord;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

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

const DEFAULT_AUDIT_LIMIT: usize = 100;
const MAX_AUDIT_LIMIT: usize = 10_000;

#[utoipa::path(get, path = "/audit", tag = "audit", summary = "The audit log, newest last", params(("since" = Option<String>, Query, description = "RFC 3339 time; older entries are left out"), ("limit" = Option<usize>, Query, description = "at most this many, newest (default 100)")), responses((status = 200, description = "OK", body = Vec<AuditView>), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn audit_log(
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
