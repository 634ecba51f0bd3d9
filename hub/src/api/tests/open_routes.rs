//! Routes that take no admin token: probes, metrics and forge webhooks.

use super::*;

#[tokio::test]
async fn webhooks_and_healthz_need_no_token_and_are_not_audited() {
    let env = env().await;
    let (status, _) = env.call("none", "GET", "/healthz", None).await;
    assert_eq!(status, 200);
    let (status, body) = env
        .call("none", "POST", "/api/v1/webhooks/git", Some(&json!({})))
        .await;
    // Refused for its missing signature, not for a missing bearer token.
    assert!(matches!(status, 400 | 401), "{status} {body}");
    let message = body["error"].as_str().unwrap();
    assert!(!message.contains("bearer"), "{message}");
    assert!(env.store.audit(0, 100).unwrap().is_empty());
}

#[tokio::test]
async fn readyz_waits_for_store_quic_and_the_first_plan_and_metrics_need_no_token() {
    let env = env().await;
    let (status, body) = env.call("none", "GET", "/readyz", None).await;
    assert_eq!(status, 503);
    assert_eq!(
        body,
        json!({"ready": false, "waiting_for": ["store", "QUIC endpoint", "first planning pass"]})
    );
    env.fleet.readiness().store_opened();
    env.fleet.readiness().quic_bound();
    let (status, body) = env.call("none", "GET", "/readyz", None).await;
    assert_eq!(status, 503);
    assert_eq!(body["waiting_for"], json!(["first planning pass"]));
    env.fleet.readiness().first_plan_done();
    let (status, body) = env.call("none", "GET", "/readyz", None).await;
    assert_eq!(
        (status, body),
        (200, json!({"ready": true, "waiting_for": []}))
    );

    let request = Request::builder()
        .uri("/metrics")
        .body(Body::empty())
        .unwrap();
    let response = env.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8(text.to_vec()).unwrap();
    assert!(text.contains("\nswitchyard_connected_agents 0\n"), "{text}");
    assert!(env.store.audit(0, 100).unwrap().is_empty());
}

/// A push delivery signed GitHub-style with `secret` (unsigned if `None`).
async fn deliver(env: &Env, url: &str, secret: Option<&[u8]>) -> (u16, Value) {
    let body = json!({"ref": "refs/heads/main", "repository": {"clone_url": url}}).to_string();
    let mut request = Request::builder()
        .method("POST")
        .uri("/api/v1/webhooks/git")
        .header("X-GitHub-Event", "push");
    if let Some(secret) = secret {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let mac = hex::encode(ring::hmac::sign(&key, body.as_bytes()).as_ref());
        request = request.header("X-Hub-Signature-256", format!("sha256={mac}"));
    }
    let response = env
        .router
        .clone()
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn webhooks_do_not_tell_strangers_which_repos_are_followed() {
    let env = env().await;
    std::fs::write(env._dir.path().join("webhook-secret"), "hub-secret\n").unwrap();
    let followed = "file:///nonexistent/followed.git";
    let unknown = "file:///nonexistent/unknown.git";
    let (status, body) = env
        .call(
            "admin",
            "POST",
            "/api/v1/repos",
            Some(&json!({"name": "followed", "url": followed})),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    for secret in [None, Some(&b"guessed"[..])] {
        let known = deliver(&env, followed, secret).await;
        let stranger = deliver(&env, unknown, secret).await;
        assert_eq!(known.0, 401, "{known:?}");
        assert_eq!(
            known, stranger,
            "the answers differ, so they reveal the followed repo"
        );
    }
    // Whoever holds the hub's secret may learn that nobody follows a URL.
    let (status, body) = deliver(&env, unknown, Some(b"hub-secret")).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = deliver(&env, followed, Some(b"hub-secret")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["fetching"], json!(["followed"]));
}
