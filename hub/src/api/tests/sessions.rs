//! The API called with a web session's cookie instead of a bearer token:
//! reads need only the cookie; every mutation also needs the session's CSRF
//! token and, when the browser sends one, this hub's own Origin. Refusals
//! are audited under the session's caller; bearer callers are unchanged.

use super::*;

const HOST: &str = "hub.test:7701";

/// A session for token `who` of the env: its `Cookie` header and CSRF token.
fn session(env: &Env, who: &str) -> (String, String) {
    let (_, cookie) = env
        .sessions
        .sign_in_with_token(&env.secrets[who], unix_now())
        .unwrap();
    let header = cookie.0.split(';').next().unwrap().to_owned();
    let csrf = env
        .sessions
        .resolve(Some(&header), unix_now())
        .unwrap()
        .csrf;
    (header, csrf)
}

/// Call with a cookie, and optionally a CSRF token and an Origin.
async fn call_with_cookie(
    env: &Env,
    cookie: &str,
    method: &str,
    path: &str,
    csrf: Option<&str>,
    origin: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::COOKIE, cookie)
        .header(header::HOST, HOST);
    if let Some(csrf) = csrf {
        request = request.header("X-CSRF-Token", csrf);
    }
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    let body = match body {
        Some(body) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(body.to_string())
        }
        None => Body::empty(),
    };
    let mut request = request.body(body).unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(REMOTE.parse::<SocketAddr>().unwrap()));
    let response = env.router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn labels(value: &str) -> Value {
    json!({ "set": { "tier": value } })
}

#[tokio::test]
async fn a_session_reads_with_its_cookie_alone() {
    let env = env().await;
    let (cookie, _) = session(&env, "viewer");
    let (status, body) =
        call_with_cookie(&env, &cookie, "GET", "/api/v1/clusters", None, None, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["name"], "seed");
    // Role gating is the API's: a viewer's session may not read the audit log.
    let (status, body) =
        call_with_cookie(&env, &cookie, "GET", "/api/v1/audit", None, None, None).await;
    assert_eq!(status, 403, "{body}");
    // A made-up cookie is no session.
    let (status, body) = call_with_cookie(
        &env,
        "switchyard_session=00ff",
        "GET",
        "/api/v1/clusters",
        None,
        None,
        None,
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"].as_str().unwrap().contains("sign in again"));
}

#[tokio::test]
async fn a_session_mutation_needs_its_csrf_token_and_a_same_origin() {
    let env = env().await;
    let (cookie, csrf) = session(&env, "root");
    let path = "/api/v1/clusters/seed/labels";
    let before = env.snapshot();
    let refusals: [(Option<&str>, Option<&str>, &str); 4] = [
        (None, None, "X-CSRF-Token"),
        (Some("0123"), None, "X-CSRF-Token"),
        (Some(""), None, "X-CSRF-Token"),
        (Some(&csrf), Some("https://evil.example"), "cross-origin"),
    ];
    for (token, origin, says) in refusals {
        let (status, body) = call_with_cookie(
            &env,
            &cookie,
            "PATCH",
            path,
            token,
            origin,
            Some(&labels("web")),
        )
        .await;
        assert_eq!(status, 403, "{token:?} {origin:?}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(says),
            "{token:?} {origin:?}: {body}"
        );
    }
    assert_eq!(env.snapshot(), before, "a refused mutation changed state");
    // Each refusal is in the audit log, under the session's caller.
    let (_, audit) = env.call("admin", "GET", "/api/v1/audit", None).await;
    let refused: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "root" && e["status"] == 403)
        .collect();
    assert_eq!(refused.len(), 4, "{audit}");
    assert_eq!(refused[0]["target"], "cluster seed");
    // With the token and this hub's origin, the same request goes through.
    let origin = format!("https://{HOST}");
    let (status, body) = call_with_cookie(
        &env,
        &cookie,
        "PATCH",
        path,
        Some(&csrf),
        Some(&origin),
        Some(&labels("web")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["labels"]["tier"], "web");
    // Another session's token is not this one's.
    let (_, other_csrf) = session(&env, "root");
    let (status, _) = call_with_cookie(
        &env,
        &cookie,
        "PATCH",
        path,
        Some(&other_csrf),
        None,
        Some(&labels("db")),
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_viewer_session_with_its_csrf_token_is_still_a_viewer() {
    let env = env().await;
    let (cookie, csrf) = session(&env, "viewer");
    let (status, body) = call_with_cookie(
        &env,
        &cookie,
        "PATCH",
        "/api/v1/clusters/seed/labels",
        Some(&csrf),
        None,
        Some(&labels("web")),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "role viewer may not label clusters");
}

#[tokio::test]
async fn revoking_the_token_ends_the_session_at_the_api() {
    let env = env().await;
    let (cookie, _) = session(&env, "spare");
    let (status, _) =
        call_with_cookie(&env, &cookie, "GET", "/api/v1/clusters", None, None, None).await;
    assert_eq!(status, 200);
    let (status, _) = env
        .call("admin", "DELETE", "/api/v1/tokens/spare", None)
        .await;
    assert_eq!(status, 200);
    let (status, body) =
        call_with_cookie(&env, &cookie, "GET", "/api/v1/clusters", None, None, None).await;
    assert_eq!(status, 401, "{body}");
}

#[tokio::test]
async fn a_bearer_token_needs_no_csrf_token_even_beside_a_cookie() {
    let env = env().await;
    let (cookie, _) = session(&env, "viewer");
    // The bearer token decides, not the cookie: an admin token's mutation
    // goes through without a CSRF token (scripts are not browsers).
    let mut request = Request::builder()
        .method("PATCH")
        .uri("/api/v1/clusters/seed/labels")
        .header(header::COOKIE, &cookie)
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN_SECRET}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(labels("web").to_string()))
        .unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(REMOTE.parse::<SocketAddr>().unwrap()));
    let response = env.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
