//! The browser's sign-in (OpenID Connect authorization code flow with
//! PKCE S256, state and nonce) and the CLI's settings route:
//!
//! - `GET /auth/oidc/login?next=/x` keeps a pending login server-side
//!   (short-lived, bounded in number) and redirects to the provider;
//! - `GET /auth/oidc/callback` checks the state, exchanges the code with
//!   the client secret, verifies the ID token, maps its groups to a role
//!   and hands the principal to a [`SessionSink`] (the web UI's sessions);
//! - `GET /api/v1/auth/oidc` tells `switchyard login` the issuer and the
//!   public client to use.
//!
//! All three are unauthenticated by nature. A failure answers a small HTML
//! page naming the reason, never a session.

use super::Provider;
use super::jwt::Identity;
use crate::auth::Principal;
use crate::sign_in::{Event, Method};
use crate::unix_now;
use axum::Extension;
use axum::Router;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a browser has to come back from the provider.
pub(super) const PENDING_TTL: Duration = Duration::from_secs(10 * 60);

/// Most sign-ins in progress at once; more are refused (503) until some
/// complete or expire, so anonymous requests cannot grow the hub's memory.
pub(super) const MAX_PENDING: usize = 10_000;

/// Where a successful sign-in goes: the web UI starts a session for the
/// principal and redirects to `next` (a path on this hub, already checked).
pub trait SessionSink: Send + Sync {
    fn start(&self, principal: Principal, next: &str) -> Response;
}

/// What `GET /api/v1/auth/oidc` answers: what `switchyard login` needs to
/// run the device flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CliSettings {
    pub issuer: String,
    /// The public client of the CLI (`--oidc-cli-client-id`).
    pub client_id: String,
    pub scopes: String,
}

#[derive(Debug)]
struct PendingLogin {
    verifier: String,
    nonce: String,
    next: String,
    redirect_uri: String,
    created: Instant,
}

/// Sign-ins between the redirect to the provider and the callback.
#[derive(Debug, Default)]
struct Pending {
    logins: HashMap<String, PendingLogin>,
}

impl Pending {
    /// Keep a login under `state`; false when too many are in progress.
    fn insert(&mut self, state: String, login: PendingLogin, now: Instant) -> bool {
        self.logins
            .retain(|_, l| now.duration_since(l.created) < PENDING_TTL);
        if self.logins.len() >= MAX_PENDING {
            return false;
        }
        self.logins.insert(state, login);
        true
    }

    /// Take the login of `state` (each state is used once), if not expired.
    fn take(&mut self, state: &str, now: Instant) -> Option<PendingLogin> {
        self.logins
            .remove(state)
            .filter(|l| now.duration_since(l.created) < PENDING_TTL)
    }
}

struct Flow {
    provider: Arc<Provider>,
    sink: Arc<dyn SessionSink>,
    sign_in: Arc<crate::sign_in::Guard>,
    https: bool,
    pending: Mutex<Pending>,
}

/// The routes; `sign_in` limits and audits callbacks; `https` says how the
/// admin listener is served, for the redirect URI derived from the Host
/// header when none is configured.
pub fn router(
    provider: Arc<Provider>,
    sink: Arc<dyn SessionSink>,
    sign_in: Arc<crate::sign_in::Guard>,
    https: bool,
) -> Router {
    let flow = Arc::new(Flow {
        provider,
        sink,
        sign_in,
        https,
        pending: Mutex::new(Pending::default()),
    });
    Router::new()
        .route("/auth/oidc/login", get(login))
        .route("/auth/oidc/callback", get(callback))
        .route("/api/v1/auth/oidc", get(cli_settings))
        .with_state(flow)
}

/// `next` if it is a path on this hub, else `/`: never a redirect to
/// another site (`//evil`, `https://evil`, `/\evil`).
pub(super) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// RFC 7636: the S256 challenge of a verifier.
pub(super) fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The page a failed sign-in answers: the reason and a way back.
fn failure(status: StatusCode, message: &str) -> Response {
    let page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Sign-in failed · Switchyard</title></head>\
         <body><main><h1>Sign-in failed</h1><p id=\"reason\">{}</p>\
         <p><a href=\"/login\">Back to sign-in</a></p></main></body></html>\n",
        escape(message)
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        page,
    )
        .into_response()
}

impl Flow {
    fn redirect_uri(&self, headers: &HeaderMap) -> Option<String> {
        if let Some(uri) = &self.provider.settings().redirect_uri {
            return Some(uri.clone());
        }
        let host = headers.get(header::HOST)?.to_str().ok()?;
        // A Host header that is not a plain authority is not echoed into
        // the URL (the provider checks the URI against its registration too).
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
        {
            return None;
        }
        let scheme = if self.https { "https" } else { "http" };
        Some(format!("{scheme}://{host}/auth/oidc/callback"))
    }
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

async fn login(
    State(flow): State<Arc<Flow>>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    let metadata = match flow.provider.metadata() {
        Ok(m) => m,
        Err(e) => return failure(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let Some(redirect_uri) = flow.redirect_uri(&headers) else {
        return failure(
            StatusCode::BAD_REQUEST,
            "the request names no usable Host; set --oidc-redirect-uri",
        );
    };
    let (state, nonce, verifier) = (random_token(), random_token(), random_token());
    let settings = flow.provider.settings();
    let mut url = match url::Url::parse(&metadata.authorization_endpoint) {
        Ok(url) => url,
        Err(e) => {
            return failure(
                StatusCode::BAD_GATEWAY,
                &format!("the provider's authorization_endpoint is not a URL: {e}"),
            );
        }
    };
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &settings.client_id)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", &settings.scopes)
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &pkce_challenge(&verifier))
        .append_pair("code_challenge_method", "S256");
    let login = PendingLogin {
        verifier,
        nonce,
        next: safe_next(query.next.as_deref()),
        redirect_uri,
        created: Instant::now(),
    };
    let kept = flow
        .pending
        .lock()
        .expect("not poisoned")
        .insert(state, login, Instant::now());
    if !kept {
        return failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many sign-ins are in progress; try again in a few minutes",
        );
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, url.to_string()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /auth/oidc/callback`: limited per client address like every
/// sign-in, and audited whatever its outcome.
async fn callback(
    State(flow): State<Arc<Flow>>,
    remote: Option<Extension<ConnectInfo<SocketAddr>>>,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let remote = remote.map(|Extension(ConnectInfo(addr))| addr);
    if let Err(wait) = flow.sign_in.admit(remote.map(|r| r.ip())) {
        let seconds = crate::sign_in::retry_after_seconds(wait);
        let mut response = failure(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("too many sign-in attempts from your address; try again in {seconds} seconds"),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, seconds.into());
        return response;
    }
    let (response, event) = match signed_in(&flow, query).await {
        Ok((principal, next)) => {
            let event = Event::SignedIn {
                who: principal.name.clone(),
                role: principal.role,
                method: Method::Oidc,
            };
            (flow.sink.start(principal, &next), event)
        }
        Err((status, reason)) => {
            let response = failure(status, &reason);
            let event = Event::Refused {
                method: Method::Oidc,
                reason,
            };
            (response, event)
        }
    };
    let status = response.status().as_u16();
    match flow
        .sign_in
        .record(event, "GET", "/auth/oidc/callback", status, remote)
        .await
    {
        Ok(()) => response,
        Err(e) => {
            tracing::error!(error = %e, "an OpenID sign-in could not be audited");
            failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("the audit log could not be written: {e}"),
            )
        }
    }
}

/// Check a callback: the principal signed in and where to go, or the
/// answer's status and the reason it was refused.
async fn signed_in(
    flow: &Flow,
    query: CallbackQuery,
) -> Result<(Principal, String), (StatusCode, String)> {
    let pending = query.state.as_deref().and_then(|state| {
        flow.pending
            .lock()
            .expect("not poisoned")
            .take(state, Instant::now())
    });
    let Some(pending) = pending else {
        tracing::warn!("OpenID sign-in refused: unknown or expired state");
        return Err((
            StatusCode::BAD_REQUEST,
            "this sign-in is unknown or expired (state does not match); start again".to_owned(),
        ));
    };
    if let Some(error) = query.error {
        let detail = query.error_description.unwrap_or_default();
        tracing::info!(%error, %detail, "OpenID sign-in refused by the provider");
        return Err((
            StatusCode::FORBIDDEN,
            format!("the provider refused the sign-in: {error} {detail}"),
        ));
    }
    let Some(code) = query.code else {
        return Err((
            StatusCode::BAD_REQUEST,
            "the provider sent no code".to_owned(),
        ));
    };
    let id_token = flow
        .provider
        .exchange_code(&code, &pending.redirect_uri, &pending.verifier)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "OpenID code exchange failed");
            (StatusCode::BAD_GATEWAY, e.to_string())
        })?;
    let identity: Identity = flow
        .provider
        .verify_id_token(&id_token, &pending.nonce, unix_now())
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "OpenID ID token refused");
            (
                StatusCode::BAD_GATEWAY,
                format!("the ID token is not valid: {e}"),
            )
        })?;
    let principal = flow.provider.principal(&identity).map_err(|e| {
        tracing::info!(user = %identity.user, error = %e, "OpenID sign-in refused");
        (StatusCode::FORBIDDEN, e.to_string())
    })?;
    tracing::info!(principal = %principal.name, role = %principal.role, "signed in with OpenID Connect");
    Ok((principal, pending.next))
}

async fn cli_settings(State(flow): State<Arc<Flow>>) -> Response {
    let settings = flow.provider.settings();
    axum::Json(CliSettings {
        issuer: settings.issuer.clone(),
        client_id: settings.cli_client_id.clone(),
        scopes: settings.scopes.clone(),
    })
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_hub() {
        assert_eq!(safe_next(Some("/apps/web?x=1")), "/apps/web?x=1");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "apps",
            "/a\nb",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn the_pkce_challenge_is_base64url_sha256_without_padding() {
        // Expected value from Python's hashlib and base64 (padding removed).
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mJ0kzHe4gT0o-ghDakGQ1Y0nSBMR8I"),
            "p99K2KJ0MM9vNV_W8OYc8ZRivQ6glGV_1LT0C5eYBxM"
        );
    }

    fn login_at(created: Instant) -> PendingLogin {
        PendingLogin {
            verifier: "v".into(),
            nonce: "n".into(),
            next: "/".into(),
            redirect_uri: "http://127.0.0.1/auth/oidc/callback".into(),
            created,
        }
    }

    #[test]
    fn pending_logins_are_used_once_expire_and_are_bounded() {
        let start = Instant::now();
        let mut pending = Pending::default();
        assert!(pending.insert("s1".into(), login_at(start), start));
        assert!(pending.take("s1", start).is_some());
        assert!(pending.take("s1", start).is_none(), "a state is used once");
        assert!(pending.insert("s2".into(), login_at(start), start));
        assert!(pending.take("s2", start + PENDING_TTL).is_none());
        for i in 0..MAX_PENDING {
            assert!(pending.insert(format!("b{i}"), login_at(start), start));
        }
        assert!(!pending.insert("over".into(), login_at(start), start));
        // Expired ones make room.
        let later = start + PENDING_TTL;
        assert!(pending.insert("after".into(), login_at(later), later));
    }

    #[test]
    fn failure_pages_escape_the_message() {
        assert_eq!(
            escape("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
        assert_eq!(
            failure(StatusCode::FORBIDDEN, "x").status(),
            StatusCode::FORBIDDEN
        );
    }
}
