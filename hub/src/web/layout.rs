//! What every page shares: the frame (navigation, who is signed in, the
//! CSRF token for the script), the response headers (Content-Security-
//! Policy, no caching of pages), the embedded assets, and small pieces such
//! as status badges and timestamps.

use super::Error;
use crate::auth::Role;
use crate::sessions::SignedIn;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// Pages may load scripts, styles and make requests only from this hub, and
/// run no inline script: an injected `<script>` would not run.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Digest of the assets, in their URLs: they are cached for a year, and a
/// hub with other assets names them differently.
pub(super) fn asset_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut hash = Sha256::new();
        hash.update(APP_JS);
        hash.update(APP_CSS);
        hex::encode(&hash.finalize()[..6])
    })
}

/// `GET /assets/{file}`: the embedded script and stylesheet.
pub(super) async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such asset").into_response(),
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Headers of every HTML answer.
fn secure_headers(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// An HTML answer with the page headers.
pub(super) fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    secure_headers(&mut response);
    response
}

/// A 303 to `location`.
pub(super) fn redirect(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// Percent-encode a query value (everything but unreserved characters).
pub(super) fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The navigation entries: (path, label, least role that sees it).
const NAV: &[(&str, &str, Role)] = &[
    ("/", "Fleet", Role::Viewer),
    ("/clusters", "Clusters", Role::Viewer),
    ("/apps", "Apps", Role::Viewer),
    ("/repos", "Repos", Role::Viewer),
    ("/audit", "Audit log", Role::Admin),
    ("/tokens", "API tokens", Role::Admin),
];

/// A full page: navigation, the signed-in caller, and `body`.
pub(super) fn page(title: &str, active: &str, signed: &SignedIn, body: Markup) -> Response {
    let version = asset_version();
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="csrf-token" content=(signed.csrf);
                meta name="role" content=(signed.principal.role.to_string());
                title { (title) " · Switchyard" }
                link rel="stylesheet" href={ "/assets/app.css?v=" (version) };
                script src={ "/assets/app.js?v=" (version) } defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "Switchyard" }
                    nav aria-label="Main" {
                        ul {
                            @for (path, label, role) in NAV {
                                @if signed.principal.role >= *role {
                                    li {
                                        a href=(path) aria-current=[(*path == active).then_some("page")] { (label) }
                                    }
                                }
                            }
                        }
                    }
                    div.who {
                        span { (signed.principal.name) " (" (signed.principal.role.to_string()) ")" }
                        span #live .live role="status" aria-live="polite" { "live: connecting" }
                        form method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(signed.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                div #flash role="alert" aria-live="assertive" {}
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    html_response(StatusCode::OK, markup)
}

/// A page-level error answer (no such object, a bad filter, a store error).
/// The page `title` whose body `build` makes off the async runtime (it
/// reads the store), or the error page for what `build` returned.
pub(super) async fn blocking_page(
    title: &str,
    active: &str,
    signed: &SignedIn,
    build: impl FnOnce() -> Result<Markup, Error> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(build).await {
        Ok(Ok(body)) => page(title, active, signed, body),
        Ok(Err(e)) => error_page(signed, &e),
        Err(e) => error_page(signed, &Error::BadQuery(e.to_string())),
    }
}

pub(super) fn error_page(signed: &SignedIn, error: &Error) -> Response {
    let status = match error {
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::BadQuery(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(error = %switchyard_common::error_chain(error), "web page failed");
    }
    let mut response = page(
        "Error",
        "",
        signed,
        html! { p.error { (error.to_string()) } },
    );
    *response.status_mut() = status;
    response
}

/// A timestamp: absolute in `title` and `datetime`; the script shows it
/// relative ("3 min ago").
pub(super) fn time(rfc3339: Option<&str>) -> Markup {
    match rfc3339 {
        None => html! { span.muted { "never" } },
        Some(at) => html! { time datetime=(at) title=(at) { (at) } },
    }
}

/// A status word with its colour: the word is always shown, so the page
/// reads the same without colour.
pub(super) fn badge(word: &str) -> Markup {
    let class = match word {
        "Synced" | "Healthy" | "connected" | "Rendered" | "active" => "ok",
        "OutOfSync" | "Progressing" | "Pending" | "pending" | "Missing" | "Suspended" => "warn",
        "Degraded" | "Failed" | "Error" | "disconnected" | "revoked" | "expired" => "bad",
        _ => "none",
    };
    html! { span class={ "badge " (class) } { (word) } }
}

/// A short commit id, the full one in `title`.
pub(super) fn commit(id: Option<&str>) -> Markup {
    match id {
        None | Some("") => html! { span.muted { "-" } },
        Some(id) => html! { code title=(id) { (id.get(..10).unwrap_or(id)) } },
    }
}

/// A button that calls the API after a confirmation (see app.js).
pub(super) fn action(
    label: &str,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
    confirm: &str,
) -> Markup {
    let body = body.map(|b| b.to_string());
    html! {
        button type="button" class="action" data-method=(method) data-path=(path)
            data-body=[body] data-confirm=(confirm) { (label) }
    }
}

/// Page links: previous and next, keeping the other query parameters.
pub(super) fn pager(base: &str, page: usize, pages: usize) -> Markup {
    let sep = if base.contains('?') { "&" } else { "?" };
    html! {
        nav.pager aria-label="Pages" {
            @if page > 1 {
                a href={ (base) (sep) "page=" (page - 1) } rel="prev" { "← Previous" }
            }
            span { "Page " (page) " of " (pages.max(1)) }
            @if page < pages {
                a href={ (base) (sep) "page=" (page + 1) } rel="next" { "Next →" }
            }
        }
    }
}
