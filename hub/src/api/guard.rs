//! The middleware in front of every authenticated route: authenticate,
//! authorize and, for mutations, write the audit entry before answering.

use super::AppState;
use super::BODY_LIMIT;
use super::error::{AUDITED_ERROR_LIMIT, ApiError, AuditNote, ErrorBody, is_malformed};
use super::extract::too_large_message;
use crate::auth::{self, Principal};
use crate::sessions;
use crate::store::AuditRecord;
use crate::unix_now;
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

/// Authenticate, authorize and, for mutations, audit every request to an
/// authenticated route. Requests without a valid token are answered before
/// anything is written, so an anonymous caller cannot grow the audit log.
pub(super) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let now = unix_now();
    let (principal, precheck) = match caller(&state, &request, now) {
        Ok(found) => found,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().strip_prefix("/api/v1").unwrap_or(m.as_str()))
        .unwrap_or_default();
    let rule = auth::rule_for(request.method().as_str(), route);
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        let response = match auth::authorize(&principal, &rule) {
            Ok(()) => next.run(request).await,
            Err(e) => ApiError::from(e).into_response(),
        };
        // A malformed request writes nothing, not even the token's last use.
        if !is_malformed(&response) {
            state.auth.touch(&principal, now);
        }
        return response;
    }
    audited(state, principal, precheck, rule, now, request, next).await
}

/// Who is calling: the bearer token's principal, or, for a request with no
/// `Authorization` header, the web session's. A session's mutation must
/// also pass the CSRF checks; that verdict is returned beside the caller so
/// a refusal is audited under the caller's name like any other.
fn caller(
    state: &AppState,
    request: &Request,
    now: u64,
) -> Result<(Principal, Result<(), auth::Error>), auth::Error> {
    let headers = request.headers();
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let authorization = text(header::AUTHORIZATION);
    let cookie = text(header::COOKIE);
    if authorization.is_some() || sessions::session_id(cookie).is_none() {
        return Ok((state.auth.authenticate(authorization, now)?, Ok(())));
    }
    let signed = state.sessions.resolve(cookie, now)?;
    let precheck = if matches!(*request.method(), Method::GET | Method::HEAD) {
        Ok(())
    } else {
        sessions::check_mutation(
            &signed,
            text(header::HeaderName::from_static(sessions::CSRF_HEADER)),
            text(header::ORIGIN),
            text(header::HOST),
        )
    };
    Ok((signed.principal, precheck))
}

/// Run a mutation (or refuse it) and append the outcome to the audit log,
/// durably, before answering.
async fn audited(
    state: AppState,
    principal: Principal,
    precheck: Result<(), auth::Error>,
    rule: auth::Rule,
    now: u64,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().to_string();
    // Inside the `/api/v1` nest the URI has lost its prefix; the original keeps it.
    let uri = request
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| request.uri().clone(), |u| u.0.clone());
    // A dry run is audited as one, so it is never mistaken for the change.
    let path = match uri.query() {
        Some(query) if query.contains("dry_run=true") => format!("{}?{query}", uri.path()),
        _ => uri.path().to_owned(),
    };
    let remote = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string());
    let (request, target) = target_of(&rule, request).await;
    let response = match request {
        Err(refusal) => refusal.into_response(),
        Ok(mut request) => match precheck.and_then(|()| auth::authorize(&principal, &rule)) {
            Err(e) => ApiError::from(e).into_response(),
            Ok(()) => {
                // Handlers whose rights depend on more than the route read it.
                request.extensions_mut().insert(principal.clone());
                next.run(request).await
            }
        },
    };
    if is_malformed(&response) {
        tracing::debug!(%method, %path, status = response.status().as_u16(), "malformed request refused; not audited");
        return response;
    }
    state.auth.touch(&principal, now);
    let status = response.status();
    let (response, message) = if status.is_success() {
        let note = response
            .extensions()
            .get::<AuditNote>()
            .map(|n| n.0.clone());
        (response, note)
    } else {
        let (parts, body) = response.into_parts();
        match axum::body::to_bytes(body, AUDITED_ERROR_LIMIT).await {
            Ok(bytes) => {
                let message = serde_json::from_slice::<ErrorBody>(&bytes)
                    .map(|b| b.error)
                    .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
                (
                    Response::from_parts(parts, axum::body::Body::from(bytes)),
                    Some(message),
                )
            }
            Err(e) => (
                Response::from_parts(parts, axum::body::Body::empty()),
                Some(format!("error answer not readable: {e}")),
            ),
        }
    };
    let entry = AuditRecord {
        at: now,
        actor: principal.name,
        role: principal.role,
        method,
        path,
        target,
        status: status.as_u16(),
        message,
        remote,
    };
    let store = state.store.clone();
    let written = tokio::task::spawn_blocking(move || store.append_audit(&entry)).await;
    match written {
        Ok(Ok(())) => response,
        Ok(Err(e)) => audit_failed(status, &e),
        Err(e) => audit_failed(status, &e),
    }
}

/// A mutation whose audit entry could not be written is reported as a
/// failure, naming what the request itself answered, so nobody mistakes an
/// unaudited change for an audited one.
fn audit_failed(status: StatusCode, error: &dyn std::error::Error) -> Response {
    tracing::error!(error = %error, request_status = status.as_u16(), "writing the audit log failed");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!(
            "the request was answered {} but the audit log could not be written: {error}",
            status.as_u16()
        ),
    )
    .into_response()
}

/// The `kind name` a request acts on: the route's `{name}`, or the `name`
/// field of a JSON body sent to a collection. The body is buffered for
/// that and handed on unchanged; one over the size limit is refused here.
async fn target_of(
    rule: &auth::Rule,
    request: Request,
) -> (Result<Request, ApiError>, Option<String>) {
    let Some(kind) = rule.target else {
        return (Ok(request), None);
    };
    let (mut parts, body) = request.into_parts();
    if let Ok(params) = RawPathParams::from_request_parts(&mut parts, &()).await
        && let Some((_, name)) = params.iter().find(|(k, _)| *k == "name")
    {
        let target = format!("{kind} {name}");
        return (Ok(Request::from_parts(parts, body)), Some(target));
    }
    let bytes = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let refusal = ApiError::malformed(StatusCode::PAYLOAD_TOO_LARGE, too_large_message());
            return (Err(refusal), None);
        }
    };
    let target = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_owned))
        .map(|name| format!("{kind} {name}"));
    let request = Request::from_parts(parts, axum::body::Body::from(bytes));
    (Ok(request), target)
}
