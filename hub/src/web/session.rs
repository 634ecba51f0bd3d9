//! Signing in and out of the web UI: `GET /login` (the form), `POST /login`
//! (a pasted API token starts a session), `POST /logout`. The session store
//! itself is [`crate::sessions`]; its types are re-exported here for the
//! single sign-on flow, which ends in [`Sessions::signed_in_response`].

pub use crate::sessions::{SessionCookie, Sessions, SignedIn};

use super::WebState;
use super::layout::{html_response, redirect};
use crate::sessions::{local_path, redirect_with_cookie};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

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
                main #main {
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

/// `POST /login`: check the token, start a session, go to `next`.
pub(super) async fn login(
    State(state): State<WebState>,
    axum::extract::Form(form): axum::extract::Form<LoginForm>,
) -> Response {
    let next = local_path(&form.next);
    let sessions = state.sessions.clone();
    let token = form.token;
    let started = tokio::task::spawn_blocking(move || {
        sessions.sign_in_with_token(&token, crate::clock::unix_now())
    })
    .await;
    match started {
        Ok(Ok((principal, cookie))) => {
            tracing::info!(actor = %principal.name, "signed in to the web UI");
            redirect_with_cookie(next, &cookie.0)
        }
        Ok(Err(e)) => {
            let status = match e {
                crate::auth::Error::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::UNAUTHORIZED,
            };
            html_response(
                status,
                login_markup(next, Some(&format!("Not signed in: {e}")), state.oidc),
            )
        }
        Err(e) => html_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            login_markup(next, Some(&format!("Not signed in: {e}")), state.oidc),
        ),
    }
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
            redirect_with_cookie("/login", &cleared.0)
        }
        Err(_) => redirect("/login"),
    }
}
