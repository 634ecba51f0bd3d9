//! How the admin API answers a failure: `{"error": "..."}` with a status
//! code chosen from the domain error, for handlers, extractors and the
//! fallback routes alike.

use crate::{auth, fleet, gitops};
use axum::Json;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// An API failure, answered as `{"error": "..."}` with its status code.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    malformed: bool,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            malformed: false,
        }
    }

    /// A refusal of the request's form: a body or query that does not
    /// parse, the wrong content type, a body over the limit.
    pub(super) fn malformed(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            malformed: true,
            ..Self::new(status, message)
        }
    }
}

/// What a handler adds to its request's audit entry (an admin override's
/// reason); `audited` stores it as the entry's message.
#[derive(Debug, Clone)]
pub(super) struct AuditNote(pub(super) String);

/// Marks the answer to a request refused for its form (see
/// [`ApiError::malformed`]): it reached no handler logic, so it is neither
/// audited nor counted as a use of its token. Nothing is written for it.
#[derive(Debug, Clone, Copy)]
struct MalformedRequest;

pub(super) fn is_malformed(response: &Response) -> bool {
    response.extensions().get::<MalformedRequest>().is_some()
}

/// Body of every error answer.
#[derive(utoipa::ToSchema, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response();
        if self.malformed {
            response.extensions_mut().insert(MalformedRequest);
        }
        response
    }
}

impl From<fleet::Error> for ApiError {
    fn from(error: fleet::Error) -> Self {
        let status = match &error {
            fleet::Error::Store(crate::store::Error::ClusterExists(_)) => StatusCode::CONFLICT,
            fleet::Error::Store(crate::store::Error::ClusterNotFound(_)) => StatusCode::NOT_FOUND,
            fleet::Error::InvalidLabel(..) | fleet::Error::InvalidName(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %switchyard_common::error_chain(&error), "admin request failed");
            format!("internal error: {error}")
        } else {
            error.to_string()
        };
        ApiError::new(status, message)
    }
}

pub(super) type ApiResult<T> = Result<T, ApiError>;

impl From<auth::Error> for ApiError {
    fn from(error: auth::Error) -> Self {
        use auth::Error as E;
        let status = match &error {
            E::Missing
            | E::Invalid
            | E::Rejected(_)
            | E::Expired { .. }
            | E::Revoked { .. }
            | E::SessionEnded => StatusCode::UNAUTHORIZED,
            E::Forbidden { .. } | E::Csrf | E::ForeignOrigin(_) => StatusCode::FORBIDDEN,
            E::InvalidName(_) | E::Reserved | E::InvalidTtl => StatusCode::UNPROCESSABLE_ENTITY,
            E::NotFound(_) => StatusCode::NOT_FOUND,
            E::Store(crate::store::Error::ApiTokenExists(_)) => StatusCode::CONFLICT,
            E::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %switchyard_common::error_chain(&error), "admin request failed");
        }
        ApiError::new(status, error.to_string())
    }
}

impl From<crate::store::Error> for ApiError {
    fn from(error: crate::store::Error) -> Self {
        auth::Error::Store(error).into()
    }
}

impl From<gitops::Error> for ApiError {
    fn from(error: gitops::Error) -> Self {
        use gitops::Error as E;
        let status = match &error {
            E::Store(
                crate::store::Error::RepoExists(_)
                | crate::store::Error::AppExists(_)
                | crate::store::Error::GroupExists(_),
            )
            | E::RepoInUse { .. }
            | E::GroupInUse { .. } => StatusCode::CONFLICT,
            E::Unreachable { .. } => StatusCode::FORBIDDEN,
            E::RepoNotFound(_) | E::AppNotFound(_) | E::GroupNotFound(_) => StatusCode::NOT_FOUND,
            E::Invalid { .. }
            | E::Name(_)
            | E::NotInHistory { .. }
            | E::NothingToRollBack(_)
            | E::NotFetched(_) => StatusCode::UNPROCESSABLE_ENTITY,
            // Unknown revisions, unreachable remotes: the caller can act on them.
            E::Git(_) => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %switchyard_common::error_chain(&error), "admin request failed");
        }
        ApiError::new(status, error.to_string())
    }
}

/// Largest error body kept in the audit log; error answers are small JSON.
pub(super) const AUDITED_ERROR_LIMIT: usize = 64 * 1024;

pub(super) async fn no_such_route(method: Method, uri: axum::extract::OriginalUri) -> ApiError {
    ApiError::malformed(
        StatusCode::NOT_FOUND,
        format!("no such route: {method} {}", uri.path()),
    )
}

pub(super) async fn method_not_allowed(
    method: Method,
    uri: axum::extract::OriginalUri,
) -> ApiError {
    ApiError::malformed(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method {method} is not allowed on {}", uri.path()),
    )
}

/// Every error answer is `{"error": "..."}`: one that some layer below
/// answered otherwise (plain text or empty) is rewrapped, keeping its
/// status and headers.
pub(super) async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, AUDITED_ERROR_LIMIT)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_owned();
    let error = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_lowercase()
    } else {
        text
    };
    let body = serde_json::to_vec(&ErrorBody { error }).expect("error body serializes");
    parts.headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}
