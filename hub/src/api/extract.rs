//! Extractors for request bodies and query strings whose rejections are
//! answered like every other error, and the query shared by routes that
//! can dry-run.

use super::BODY_LIMIT;
use super::error::ApiError;
use axum::Json;
use axum::extract::{FromRequestParts, Request};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// A JSON request body; its rejections are answered like every other error.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S, T> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::malformed(rejection.status(), too_large_message()))
            }
            Err(rejection) => Err(ApiError::malformed(
                rejection.status(),
                rejection.body_text(),
            )),
        }
    }
}

/// A query string; its rejections are answered like every other error.
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| ApiQuery(value))
            .map_err(|rejection| ApiError::malformed(rejection.status(), rejection.body_text()))
    }
}

pub(super) fn too_large_message() -> String {
    format!("request body larger than {BODY_LIMIT} bytes")
}

/// Query of the routes that take `?dry_run=true`: check everything the
/// hub would check (files named on its machine included) and store nothing.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DryRunQuery {
    #[serde(default)]
    pub dry_run: bool,
}
