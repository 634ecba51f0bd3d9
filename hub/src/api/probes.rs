//! Routes for probes and scrapers, which carry no token: liveness,
//! readiness and the Prometheus metrics. They answer with counts and
//! states, never names or secrets.

use super::AppState;
use super::error::{ApiError, ApiResult};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

#[utoipa::path(get, path = "/healthz", tag = "probes", summary = "Liveness", responses((status = 200, description = "alive", content_type = "text/plain", body = String)))]
pub(super) async fn healthz() -> &'static str {
    "ok\n"
}

/// Answer of `GET /readyz`.
#[derive(utoipa::ToSchema, Debug, Serialize, Deserialize)]
pub struct ReadyView {
    pub ready: bool,
    /// What the hub still waits for: `store`, `QUIC endpoint`, `first planning pass`.
    pub waiting_for: Vec<String>,
}

/// 200 once the store is open, the QUIC endpoint bound and the first
/// planning pass done; 503 before, naming what is missing. `/healthz`
/// stays the liveness check.
#[utoipa::path(get, path = "/readyz", tag = "probes", summary = "Readiness: 200 once store, QUIC endpoint and first planning pass are ready, else 503", responses((status = 200, description = "OK", body = ReadyView), (status = 503, description = "not ready yet", body = ReadyView)))]
pub(super) async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<ReadyView>) {
    let waiting_for: Vec<String> = state
        .fleet
        .readiness()
        .waiting_for()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let status = if waiting_for.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let ready = waiting_for.is_empty();
    (status, Json(ReadyView { ready, waiting_for }))
}

/// Prometheus text exposition of the hub's metrics.
#[utoipa::path(get, path = "/metrics", tag = "probes", summary = "Prometheus text exposition", responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String)))]
pub(super) async fn metrics(State(state): State<AppState>) -> ApiResult<Response> {
    let fleet = state.fleet.clone();
    let text = tokio::task::spawn_blocking(move || fleet.encode_metrics())
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
