//! Signing in and out of the web UI: `GET /login` (the form), `POST /login`
//! (a pasted API token starts a session), `POST /logout`. The session store
//! itself is [`crate::sessions`]; its types are re-exported here for the
//! single sign-on flow, which ends in [`Sessions::signed_in_response`].

pub use crate::sessions::{SessionCookie, Sessions, SignedIn};

use super::WebState;
use super::layout::{html_response, redirect};
use crate::sessions::{local_path, redirect_with_cookie};
use crate::sign_in::{Event, Method};
use axum::Extension;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use std::net::SocketAddr;

/// Query of `GET /login`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct LoginQuery {
    #[serde(default)]
    next: Option<String>,
}

/// Form of `POST /login`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: String,
}

fn login_markup(next: &str, error: Option<&str>, oidc: bool) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Sign in · Switchyard" }
                link rel="stylesheet" href={ "/assets/app.css?v=" (super::layout::asset_version()) };
            }
            body.login {
                a.skip href="#main" { "Skip to content" }
                main #main tabindex="-1" {
                    h1 { "Sign in to Switchyard" }
                    @if let Some(error) = error {
                        p.error role="alert" { (error) }
                    }
                    form method="post" action="/login" {
                        input type="hidden" name="next" value=(next);
                        label for="token" { "API token" }
                        input #token type="password" name="token" autocomplete="off" required autofocus;
                        p.hint {
                            "An API token from " code { "switchyard token create NAME --role viewer" }
                            " or the hub's built-in admin token (DATA_DIR/admin-token). "
                            "The page acts with that token's role."
                        }
                        button type="submit" { "Sign in" }
                    }
                    @if oidc {
                        p { a href={ "/auth/oidc/login?next=" (super::layout::query_escape(next)) } { "Sign in with SSO" } }
                    }
                }
            }
        }
    }
}

/// `GET /login`: the sign-in form.
pub(super) async fn login_form(
    State(state): State<WebState>,
    Query(query): Query<LoginQuery>,
) -> Response {
    let next = local_path(query.next.as_deref().unwrap_or("/"));
    html_response(StatusCode::OK, login_markup(next, None, state.oidc))
}

/// The caller's address, when the server provides it (an in-process test
/// router does not).
pub(super) type Remote = Option<Extension<ConnectInfo<SocketAddr>>>;

fn remote_of(remote: &Remote) -> Option<SocketAddr> {
    remote.as_ref().map(|Extension(ConnectInfo(addr))| *addr)
}

/// The answer to a sign-in over the limit: 429 with `Retry-After` and a
/// page that says when to try again.
pub(super) fn too_many(next: &str, wait: std::time::Duration, oidc: bool) -> Response {
    let seconds = crate::sign_in::retry_after_seconds(wait);
    let message =
        format!("Too many sign-in attempts from your address. Try again in {seconds} seconds.");
    let mut response = html_response(
        StatusCode::TOO_MANY_REQUESTS,
        login_markup(next, Some(&message), oidc),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, seconds.into());
    response
}

/// `POST /login`: check the token, start a session, go to `next`. Each
/// attempt counts against the caller's address's limit; each outcome is
/// audited.
pub(super) async fn login(
    State(state): State<WebState>,
    remote: Remote,
    axum::extract::Form(form): axum::extract::Form<LoginForm>,
) -> Response {
    let next = local_path(&form.next);
    let remote = remote_of(&remote);
    if let Err(wait) = state.sign_in.admit(remote.map(|r| r.ip())) {
        return too_many(next, wait, state.oidc);
    }
    let sessions = state.sessions.clone();
    let token = form.token;
    let secret = token.clone();
    let started = tokio::task::spawn_blocking(move || {
        sessions.sign_in_with_token(&token, crate::clock::unix_now())
    })
    .await;
    // (whether the hub failed rather than the caller, why)
    let started = match started {
        Ok(Ok(found)) => Ok(found),
        Ok(Err(e)) => Err((matches!(e, crate::auth::Error::Store(_)), e.to_string())),
        Err(e) => Err((true, e.to_string())),
    };
    let (response, event) = match started {
        Ok((principal, cookie)) => {
            tracing::info!(actor = %principal.name, "signed in to the web UI");
            let event = Event::SignedIn {
                who: principal.name,
                role: principal.role,
                method: Method::Token,
            };
            (redirect_with_cookie(next, &cookie.0), event)
        }
        Err((internal, reason)) => {
            // Whatever the reason says, it never carries the token itself.
            let reason = if secret.is_empty() {
                reason
            } else {
                reason.replace(&secret, "[token]")
            };
            let status = if internal {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::UNAUTHORIZED
            };
            let page = login_markup(next, Some(&format!("Not signed in: {reason}")), state.oidc);
            let event = Event::Refused {
                method: Method::Token,
                reason,
            };
            (html_response(status, page), event)
        }
    };
    audited(&state, event, "POST", "/login", response, remote).await
}

/// Form of `POST /logout`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`: end the session (when the form carries its CSRF token,
/// so another site cannot sign the user out) and clear the cookie.
pub(super) async fn logout(
    State(state): State<WebState>,
    remote: Remote,
    headers: HeaderMap,
    axum::extract::Form(form): axum::extract::Form<LogoutForm>,
) -> Response {
    let cookie = headers.get(header::COOKIE).and_then(|v| v.to_str().ok());
    let now = crate::clock::unix_now();
    match state.sessions.resolve(cookie, now) {
        Ok(signed) => {
            let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
            if let Err(e) = crate::sessions::check_mutation(&signed, Some(&form.csrf), origin, host)
            {
                return html_response(StatusCode::FORBIDDEN, html! { p { (e.to_string()) } });
            }
            let cleared = state.sessions.end(cookie);
            let event = Event::SignedOut {
                who: signed.principal.name,
                role: signed.principal.role,
            };
            let response = redirect_with_cookie("/login", &cleared.0);
            audited(
                &state,
                event,
                "POST",
                "/logout",
                response,
                remote_of(&remote),
            )
            .await
        }
        Err(_) => redirect("/login"),
    }
}

/// Append the audit entry of `event` and answer `response`; if the audit
/// log cannot be written, a 500 page instead (a sign-in is not let through
/// unrecorded).
async fn audited(
    state: &WebState,
    event: Event,
    http_method: &str,
    path: &str,
    response: Response,
    remote: Option<SocketAddr>,
) -> Response {
    let status = response.status().as_u16();
    match state
        .sign_in
        .record(event, http_method, path, status, remote)
        .await
    {
        Ok(()) => response,
        Err(e) => {
            tracing::error!(error = %e, "a sign-in or sign-out could not be audited");
            html_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                html! { p { "The audit log could not be written: " (e.to_string()) } },
            )
        }
    }
}
