//! API errors answered as Kubernetes `Status` bodies with the real status codes.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// What a real API server would answer instead of the object.
///
/// Each variant maps to one `reason` of `metav1.Status`, so clients that branch
/// on `ErrorResponse.reason` (as kube-rs users do) see what they would in a cluster.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// 404 for a named object (`details.name`/`details.kind` are filled in).
    #[error("{message}")]
    NotFound {
        message: String,
        name: String,
        group: String,
        kind: String,
    },
    /// 404 for a path that is not served at all (Status body, no details).
    #[error("the server could not find the requested resource")]
    NoResource,
    /// 404 with a plain-text body, as the real server answers unknown groups.
    #[error("404 page not found")]
    PageNotFound,
    #[error("{message}")]
    AlreadyExists {
        message: String,
        name: String,
        group: String,
        kind: String,
    },
    #[error("{0}")]
    Conflict(String),
    /// A server-side apply that would change fields other managers own, as
    /// the real server words it, with one `FieldManagerConflict` cause per
    /// (manager, field).
    #[error("{}", apply_conflict_message(api_version, conflicts))]
    ApplyConflict {
        api_version: String,
        /// (manager, field path like `.spec.replicas`)
        conflicts: Vec<(String, String)>,
    },
    #[error("{message}")]
    Invalid {
        message: String,
        name: String,
        group: String,
        kind: String,
    },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Expired(String),
    /// More requests in flight than the fake's limit (`FakeKube::set_max_in_flight`),
    /// as API Priority and Fairness answers: 429 with `Retry-After`.
    #[error("Too many requests, please try again later.")]
    TooManyRequests { retry_after_secs: u64 },
    /// Injected failure (`FakeKube::fail_next`) with any code.
    #[error("{message}")]
    Injected { code: u16, message: String },
}

impl ApiError {
    pub(crate) fn not_found(group: &str, plural: &str, name: &str) -> Self {
        ApiError::NotFound {
            message: format!("{} \"{name}\" not found", qualified(group, plural)),
            name: name.to_string(),
            group: group.to_string(),
            kind: plural.to_string(),
        }
    }

    pub(crate) fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        ApiError::AlreadyExists {
            message: format!("{} \"{name}\" already exists", qualified(group, plural)),
            name: name.to_string(),
            group: group.to_string(),
            kind: plural.to_string(),
        }
    }

    pub(crate) fn invalid(group: &str, kind: &str, name: &str, why: &str) -> Self {
        ApiError::Invalid {
            message: format!("{} \"{name}\" is invalid: {why}", qualified(group, kind)),
            name: name.to_string(),
            group: group.to_string(),
            kind: kind.to_string(),
        }
    }

    pub(crate) fn conflict_modified(group: &str, plural: &str, name: &str) -> Self {
        ApiError::Conflict(format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
             please apply your changes to the latest version and try again",
            qualified(group, plural)
        ))
    }

    pub fn code(&self) -> u16 {
        match self {
            ApiError::NotFound { .. } | ApiError::NoResource | ApiError::PageNotFound => 404,
            ApiError::AlreadyExists { .. }
            | ApiError::Conflict(_)
            | ApiError::ApplyConflict { .. } => 409,
            ApiError::Invalid { .. } => 422,
            ApiError::BadRequest(_) => 400,
            ApiError::Forbidden(_) => 403,
            ApiError::MethodNotAllowed => 405,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::Expired(_) => 410,
            ApiError::TooManyRequests { .. } => 429,
            ApiError::Injected { code, .. } => *code,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } | ApiError::NoResource | ApiError::PageNotFound => "NotFound",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict(_) | ApiError::ApplyConflict { .. } => "Conflict",
            ApiError::Invalid { .. } => "Invalid",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::MethodNotAllowed => "MethodNotAllowed",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::Expired(_) => "Expired",
            ApiError::TooManyRequests { .. } => "TooManyRequests",
            ApiError::Injected { code, .. } => match code {
                429 => "TooManyRequests",
                500 => "InternalError",
                503 => "ServiceUnavailable",
                504 => "Timeout",
                409 => "Conflict",
                404 => "NotFound",
                403 => "Forbidden",
                _ => "Unknown",
            },
        }
    }

    /// The `metav1.Status` body for this error.
    pub fn status_body(&self) -> Value {
        let mut body = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        match self {
            ApiError::NotFound {
                name, group, kind, ..
            }
            | ApiError::AlreadyExists {
                name, group, kind, ..
            } => {
                body["details"] = json!({"name": name, "group": group, "kind": kind});
            }
            ApiError::Invalid {
                name,
                group,
                kind,
                message,
            } => {
                body["details"] = json!({
                    "name": name, "group": group, "kind": kind,
                    "causes": [{"reason": "FieldValueInvalid", "message": message}],
                });
            }
            ApiError::ApplyConflict {
                api_version,
                conflicts,
            } => {
                let causes: Vec<Value> = conflicts
                    .iter()
                    .map(|(manager, field)| {
                        json!({
                            "reason": "FieldManagerConflict",
                            "message": format!("conflict with \"{manager}\" using {api_version}"),
                            "field": field,
                        })
                    })
                    .collect();
                body["details"] = json!({"causes": causes});
            }
            ApiError::TooManyRequests { retry_after_secs } => {
                body["details"] = json!({"retryAfterSeconds": retry_after_secs});
            }
            _ => {}
        }
        body
    }
}

/// The real server's wording (apimachinery `merge.Conflicts`): one line for a
/// single conflict, a list per manager otherwise.
fn apply_conflict_message(api_version: &str, conflicts: &[(String, String)]) -> String {
    let n = conflicts.len();
    if let [(manager, field)] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with \"{manager}\" using {api_version}: {field}"
        );
    }
    let mut managers: Vec<&str> = conflicts.iter().map(|(m, _)| m.as_str()).collect();
    managers.sort_unstable();
    managers.dedup();
    let mut out = format!("Apply failed with {n} conflicts:");
    for manager in managers {
        out.push_str(&format!(
            " conflicts with \"{manager}\" using {api_version}:"
        ));
        for (_, field) in conflicts.iter().filter(|(m, _)| m == manager) {
            out.push_str(&format!("\n- {field}"));
        }
    }
    out
}

/// `deployments.apps` or `configmaps`, as the real server names resources in messages.
pub(crate) fn qualified(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if let ApiError::PageNotFound = self {
            return (
                code,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "404 page not found\n",
            )
                .into_response();
        }
        let mut response = (
            code,
            [(header::CONTENT_TYPE, "application/json")],
            self.status_body().to_string(),
        )
            .into_response();
        if let ApiError::TooManyRequests { retry_after_secs } = self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(retry_after_secs),
            );
        }
        response
    }
}
