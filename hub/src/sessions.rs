//! Web UI sessions: a browser signs in once (with a pasted API token, or
//! through single sign-on) and then carries a cookie instead of the token.
//!
//! Sessions live in memory only, so a hub restart signs everybody out. Only
//! the SHA-256 of a session id is kept, so a memory dump does not hand out
//! live cookies. A session made from an API token keeps that token's digest
//! and looks the token up again on every request: revoking or expiring the
//! token ends the session at once. Every session has a CSRF token that each
//! request other than GET must echo in `X-CSRF-Token`.

use crate::auth::{self, Authenticator, Principal};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use subtle::ConstantTimeEq;

/// Name of the session cookie.
pub const COOKIE: &str = "switchyard_session";

/// Header a mutation made with the session cookie must carry.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How long sessions last, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// A session unused this long ends.
    pub idle: u64,
    /// A session ends this long after sign-in, used or not.
    pub absolute: u64,
    /// At most this many sessions at once; signing in beyond it ends the
    /// least recently used one, so sign-ins cannot grow memory without end.
    pub max_sessions: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            idle: 2 * 3600,
            absolute: 12 * 3600,
            max_sessions: 10_000,
        }
    }
}

/// One signed-in browser.
#[derive(Debug, Clone)]
struct Session {
    principal: Principal,
    /// Digest of the API token signed in with; `None` for single sign-on.
    token: Option<[u8; 32]>,
    csrf: String,
    created: u64,
    last_used: u64,
}

/// What a request's session cookie resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub principal: Principal,
    /// The token the session's mutations must carry in `X-CSRF-Token`.
    pub csrf: String,
}

/// A `Set-Cookie` header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCookie(pub String);

/// Whether a session has ended at `now`: unused for longer than the idle
/// limit, or older than the absolute one.
fn expired(created: u64, last_used: u64, now: u64, limits: &SessionLimits) -> bool {
    now.saturating_sub(last_used) >= limits.idle || now.saturating_sub(created) >= limits.absolute
}

/// The session id in a `Cookie` header, if any.
pub fn session_id(cookie_header: Option<&str>) -> Option<&str> {
    cookie_header?
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// `next` if it is a path on this hub, else `/`: a sign-in must never send
/// the browser to another site (`//evil`, `https://evil`, `/\evil`).
pub fn local_path(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    if local { next } else { "/" }
}

/// Whether an `Origin` header names the host the request was sent to.
pub fn same_origin(origin: &str, host: Option<&str>) -> bool {
    let Some(host) = host else { return false };
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    rest.is_some_and(|rest| rest.eq_ignore_ascii_case(host))
}

/// Whether a mutation made with a session may go ahead: it carries the
/// session's CSRF token and, when the browser names its origin, comes
/// from this hub's own pages.
pub fn check_mutation(
    signed: &SignedIn,
    csrf_header: Option<&str>,
    origin: Option<&str>,
    host: Option<&str>,
) -> Result<(), auth::Error> {
    if let Some(origin) = origin
        && !same_origin(origin, host)
    {
        return Err(auth::Error::ForeignOrigin(origin.to_owned()));
    }
    let presented = csrf_header.unwrap_or_default().as_bytes();
    if presented.is_empty() || !bool::from(presented.ct_eq(signed.csrf.as_bytes())) {
        return Err(auth::Error::Csrf);
    }
    Ok(())
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn key_of(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// The signed-in browsers of one hub.
pub struct Sessions {
    auth: Arc<Authenticator>,
    limits: SessionLimits,
    /// Whether the cookie is marked `Secure` (the admin listener serves HTTPS).
    secure: bool,
    by_key: Mutex<HashMap<[u8; 32], Session>>,
}

impl Sessions {
    pub fn new(auth: Arc<Authenticator>, secure: bool) -> Self {
        Self::with_limits(auth, secure, SessionLimits::default())
    }

    pub fn with_limits(auth: Arc<Authenticator>, secure: bool, limits: SessionLimits) -> Self {
        Self {
            auth,
            limits,
            secure,
            by_key: Mutex::new(HashMap::new()),
        }
    }

    pub fn authenticator(&self) -> &Arc<Authenticator> {
        &self.auth
    }

    /// Whether cookies are marked `Secure`.
    pub fn secure(&self) -> bool {
        self.secure
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        // A panic while holding the lock leaves the map consistent (every
        // change is a single insert or remove), so a poisoned lock is used.
        self.by_key.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sign in with an API token's secret: the session acts as that token.
    pub fn sign_in_with_token(
        &self,
        secret: &str,
        now: u64,
    ) -> Result<(Principal, SessionCookie), auth::Error> {
        let digest = auth::digest_of(secret);
        if secret.trim().is_empty() {
            return Err(auth::Error::Missing);
        }
        let principal = self.auth.authenticate_digest(&digest, now)?;
        let (cookie, _) = self.start(principal.clone(), Some(digest), now);
        Ok((principal, cookie))
    }

    /// Start a session for a caller authenticated some other way (single
    /// sign-on): the cookie to set and the session's CSRF token.
    pub fn begin(&self, principal: Principal, now: u64) -> (SessionCookie, String) {
        self.start(principal, None, now)
    }

    fn start(
        &self,
        principal: Principal,
        token: Option<[u8; 32]>,
        now: u64,
    ) -> (SessionCookie, String) {
        let id = random_hex();
        let csrf = random_hex();
        let mut sessions = self.sessions();
        if sessions.len() >= self.limits.max_sessions {
            sessions.retain(|_, s| !expired(s.created, s.last_used, now, &self.limits));
        }
        if sessions.len() >= self.limits.max_sessions
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| *k)
        {
            sessions.remove(&oldest);
        }
        tracing::info!(actor = %principal.name, role = %principal.role, "web session started");
        sessions.insert(
            key_of(&id),
            Session {
                principal,
                token,
                csrf: csrf.clone(),
                created: now,
                last_used: now,
            },
        );
        (self.cookie(&id, Some(self.limits.absolute)), csrf)
    }

    fn cookie(&self, value: &str, max_age: Option<u64>) -> SessionCookie {
        let secure = if self.secure { "; Secure" } else { "" };
        let age = max_age.map_or_else(String::new, |a| format!("; Max-Age={a}"));
        SessionCookie(format!(
            "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/{age}{secure}"
        ))
    }

    /// The session a `Cookie` header carries at `now`. A session past its
    /// limits, or whose token is no longer valid, is ended here.
    pub fn resolve(&self, cookie_header: Option<&str>, now: u64) -> Result<SignedIn, auth::Error> {
        let id = session_id(cookie_header).ok_or(auth::Error::Missing)?;
        let key = key_of(id);
        let session = {
            let mut sessions = self.sessions();
            let Some(session) = sessions.get_mut(&key) else {
                return Err(auth::Error::SessionEnded);
            };
            if expired(session.created, session.last_used, now, &self.limits) {
                sessions.remove(&key);
                return Err(auth::Error::SessionEnded);
            }
            session.last_used = now;
            session.clone()
        };
        if let Some(digest) = session.token {
            match self.auth.authenticate_digest(&digest, now) {
                Ok(principal) if principal == session.principal => {}
                Ok(_) => {
                    self.sessions().remove(&key);
                    return Err(auth::Error::SessionEnded);
                }
                Err(e @ auth::Error::Store(_)) => return Err(e),
                Err(e) => {
                    self.sessions().remove(&key);
                    return Err(e);
                }
            }
        }
        Ok(SignedIn {
            principal: session.principal,
            csrf: session.csrf,
        })
    }

    /// End the session a `Cookie` header carries (if any); the cookie that
    /// clears it in the browser.
    pub fn end(&self, cookie_header: Option<&str>) -> SessionCookie {
        if let Some(id) = session_id(cookie_header)
            && let Some(session) = self.sessions().remove(&key_of(id))
        {
            tracing::info!(actor = %session.principal.name, "web session ended");
        }
        self.cookie("", Some(0))
    }

    /// How many sessions are open (ended ones not yet swept count too).
    pub fn len(&self) -> usize {
        self.sessions().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Start a session for `principal` and answer with its cookie and a
    /// redirect (303) to `next`, when that is a path on this hub, else `/`.
    /// For sign-in flows other than the token form (single sign-on).
    pub fn signed_in_response(&self, principal: Principal, next: &str, secure: bool) -> Response {
        let (SessionCookie(mut cookie), _) = self.begin(principal, crate::clock::unix_now());
        if secure && !self.secure {
            cookie.push_str("; Secure");
        }
        redirect_with_cookie(local_path(next), &cookie)
    }
}

/// A 303 to `location` that sets `cookie`.
pub fn redirect_with_cookie(location: &str, cookie: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(cookie) {
        headers.insert(header::SET_COOKIE, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::store::{SledStore, Store};

    const ADMIN: &str = "sya_admin-secret";

    fn sessions(limits: SessionLimits) -> (tempfile::TempDir, Sessions) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.path().join("s")).unwrap());
        let auth = Arc::new(Authenticator::new(store, ADMIN));
        (dir, Sessions::with_limits(auth, true, limits))
    }

    fn cookie_header(cookie: &SessionCookie) -> String {
        cookie.0.split(';').next().unwrap().to_owned()
    }

    #[test]
    fn a_cookie_is_http_only_strict_secure_and_names_no_secret() {
        let (_d, s) = sessions(SessionLimits::default());
        let (principal, cookie) = s.sign_in_with_token(ADMIN, 100).unwrap();
        assert_eq!(principal.role, Role::Admin);
        for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Secure"] {
            assert!(cookie.0.contains(flag), "{flag} missing: {}", cookie.0);
        }
        assert!(!cookie.0.contains(ADMIN));
        let id = session_id(Some(&cookie_header(&cookie)))
            .unwrap()
            .to_owned();
        assert_eq!(id.len(), 64, "256 random bits, hex");
        // Only the digest is kept.
        assert!(!s.sessions().contains_key(&{
            let mut k = [0u8; 32];
            k.copy_from_slice(&hex::decode(&id).unwrap());
            k
        }));
    }

    #[test]
    fn wrong_tokens_start_no_session() {
        let (_d, s) = sessions(SessionLimits::default());
        assert!(matches!(
            s.sign_in_with_token("syt_nope", 1),
            Err(auth::Error::Invalid)
        ));
        assert!(matches!(
            s.sign_in_with_token("  ", 1),
            Err(auth::Error::Missing)
        ));
        assert!(s.is_empty());
    }

    #[test]
    fn idle_and_absolute_limits_end_sessions() {
        let limits = SessionLimits {
            idle: 10,
            absolute: 25,
            max_sessions: 100,
        };
        let (_d, s) = sessions(limits);
        let (_, cookie) = s.sign_in_with_token(ADMIN, 100).unwrap();
        let header = cookie_header(&cookie);
        assert!(s.resolve(Some(&header), 109).is_ok());
        assert!(s.resolve(Some(&header), 118).is_ok(), "use renews idle");
        assert!(matches!(
            s.resolve(Some(&header), 125),
            Err(auth::Error::SessionEnded)
        ));
        let (_, cookie) = s.sign_in_with_token(ADMIN, 200).unwrap();
        let header = cookie_header(&cookie);
        assert!(matches!(
            s.resolve(Some(&header), 215),
            Err(auth::Error::SessionEnded)
        ));
        assert!(expired(0, 0, 10, &limits) && !expired(0, 5, 14, &limits));
    }

    #[test]
    fn revoking_the_token_ends_its_sessions() {
        let (_d, s) = sessions(SessionLimits::default());
        let (secret, _) = s
            .authenticator()
            .create("ops", Role::Operator, None, 10)
            .unwrap();
        let (principal, cookie) = s.sign_in_with_token(&secret, 10).unwrap();
        assert_eq!(principal.role, Role::Operator);
        let header = cookie_header(&cookie);
        assert_eq!(s.resolve(Some(&header), 11).unwrap().principal, principal);
        s.authenticator().revoke("ops", 12).unwrap();
        assert!(matches!(
            s.resolve(Some(&header), 13),
            Err(auth::Error::Revoked { .. })
        ));
        assert!(matches!(
            s.resolve(Some(&header), 14),
            Err(auth::Error::SessionEnded)
        ));
    }

    #[test]
    fn logout_ends_the_session_and_clears_the_cookie() {
        let (_d, s) = sessions(SessionLimits::default());
        let (cookie, _) = s.begin(
            Principal {
                name: "sso:alice".into(),
                role: Role::Viewer,
            },
            5,
        );
        let header = format!("theme=dark; {}", cookie_header(&cookie));
        assert!(s.resolve(Some(&header), 6).is_ok());
        let cleared = s.end(Some(&header));
        assert!(cleared.0.starts_with("switchyard_session=;") && cleared.0.contains("Max-Age=0"));
        assert!(s.resolve(Some(&header), 7).is_err());
    }

    #[test]
    fn the_oldest_session_goes_when_full() {
        let limits = SessionLimits {
            max_sessions: 2,
            ..SessionLimits::default()
        };
        let (_d, s) = sessions(limits);
        let first = cookie_header(&s.sign_in_with_token(ADMIN, 1).unwrap().1);
        let _ = s.sign_in_with_token(ADMIN, 2).unwrap();
        let _ = s.sign_in_with_token(ADMIN, 3).unwrap();
        assert_eq!(s.len(), 2);
        assert!(s.resolve(Some(&first), 4).is_err());
    }

    #[test]
    fn mutations_need_the_csrf_token_and_a_same_origin() {
        let signed = SignedIn {
            principal: Principal {
                name: "x".into(),
                role: Role::Admin,
            },
            csrf: "abc123".into(),
        };
        let host = Some("hub.example:7701");
        assert!(check_mutation(&signed, Some("abc123"), None, host).is_ok());
        assert!(
            check_mutation(
                &signed,
                Some("abc123"),
                Some("https://hub.example:7701"),
                host
            )
            .is_ok()
        );
        assert!(matches!(
            check_mutation(&signed, None, None, host),
            Err(auth::Error::Csrf)
        ));
        assert!(matches!(
            check_mutation(&signed, Some("abc124"), None, host),
            Err(auth::Error::Csrf)
        ));
        assert!(matches!(
            check_mutation(&signed, Some(""), None, host),
            Err(auth::Error::Csrf)
        ));
        assert!(matches!(
            check_mutation(&signed, Some("abc123"), Some("https://evil.example"), host),
            Err(auth::Error::ForeignOrigin(_))
        ));
        assert!(matches!(
            check_mutation(&signed, Some("abc123"), Some("null"), host),
            Err(auth::Error::ForeignOrigin(_))
        ));
    }

    #[test]
    fn next_stays_on_this_hub() {
        assert_eq!(local_path("/apps/web?x=1"), "/apps/web?x=1");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "apps",
            "",
        ] {
            assert_eq!(local_path(bad), "/", "{bad}");
        }
        assert_eq!(session_id(Some("a=b; switchyard_session=xyz")), Some("xyz"));
        assert_eq!(session_id(Some("switchyard_session=")), None);
    }
}
