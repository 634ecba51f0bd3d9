//! `/api/v1/backup`: a consistent backup archive of the hub.

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorBody};
use crate::unix_now;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The running hub's data dir, given to the router as an extension: the
/// backup route reads the hub's identity files from it.
#[derive(Debug, Clone)]
pub struct DataDir(pub std::path::PathBuf);

/// `POST /api/v1/backup`: a consistent snapshot of the store and the hub's
/// identity files, as one archive (see [`crate::backup`]). A POST so that
/// the audit log records who took a copy of the CA key.
#[utoipa::path(post, path = "/backup", tag = "backup", summary = "A consistent backup archive of the hub", responses((status = 200, description = "the archive", content_type = "application/octet-stream", body = Vec<u8>), (status = "4XX", description = "refused; the reason is in `error`", body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn take_backup(
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
