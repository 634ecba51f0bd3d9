//! Malformed requests get JSON errors and write nothing: no audit entry,
//! no token use, no change to the store.

use super::*;

/// A request with a raw body and content type, as `root` (an admin token
/// whose uses are recorded); status, content type and body.
async fn raw_call(
    env: &Env,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, String, Value) {
    let mut request = Request::builder().method(method).uri(path).header(
        header::AUTHORIZATION,
        format!("Bearer {}", env.secrets["root"]),
    );
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    let mut request = request.body(Body::from(body)).unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(REMOTE.parse::<SocketAddr>().unwrap()));
    let response = env.router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, content_type, value)
}

/// Everything a request could write: the store's contents, every token
/// with its last use, and the audit log.
fn everything(env: &Env) -> Value {
    json!({
        "snapshot": env.snapshot(),
        "tokens": serde_json::to_value(env.store.api_tokens().unwrap()).unwrap(),
        "audit": env.store.audit(0, 10_000).unwrap().len(),
    })
}

#[tokio::test]
async fn malformed_requests_get_json_errors_and_write_nothing() {
    let env = env().await;
    let json = Some("application/json");
    let huge = {
        let mut body = br#"{"name":"big","repo":"r","path":""#.to_vec();
        body.extend(std::iter::repeat_n(b'a', 2 * BODY_LIMIT));
        body.extend(br#""}"#);
        body
    };
    // Method, path, content type, body, expected status, part of the error.
    type Malformed<'a> = (&'a str, &'a str, Option<&'a str>, Vec<u8>, u16, &'a str);
    let cases: Vec<Malformed> = vec![
        (
            "POST",
            "/api/v1/clusters",
            json,
            b"{\"name\": ".to_vec(),
            400,
            "parse",
        ),
        (
            "POST",
            "/api/v1/clusters",
            Some("text/plain"),
            br#"{"name":"x"}"#.to_vec(),
            415,
            "Content-Type: application/json",
        ),
        (
            "POST",
            "/api/v1/clusters",
            None,
            br#"{"name":"x"}"#.to_vec(),
            415,
            "Content-Type: application/json",
        ),
        (
            "POST",
            "/api/v1/clusters",
            json,
            br#"{"name":"x","colour":"red"}"#.to_vec(),
            422,
            "unknown field `colour`",
        ),
        (
            "POST",
            "/api/v1/apps",
            json,
            huge.clone(),
            413,
            "request body larger than 1048576 bytes",
        ),
        (
            "PATCH",
            "/api/v1/clusters/seed/labels",
            json,
            huge,
            413,
            "request body larger than 1048576 bytes",
        ),
        (
            "GET",
            "/api/v1/audit?limit=many",
            None,
            vec![],
            400,
            "limit",
        ),
        (
            "GET",
            "/api/v1/nope",
            None,
            vec![],
            404,
            "no such route: GET /api/v1/nope",
        ),
        (
            "POST",
            "/nope",
            json,
            b"{}".to_vec(),
            404,
            "no such route: POST /nope",
        ),
        (
            "PUT",
            "/api/v1/status",
            json,
            b"{}".to_vec(),
            405,
            "method PUT is not allowed on /api/v1/status",
        ),
        (
            "DELETE",
            "/api/v1/clusters",
            None,
            vec![],
            405,
            "method DELETE is not allowed on /api/v1/clusters",
        ),
        (
            "GET",
            "/api/v1/webhooks/git",
            None,
            vec![],
            405,
            "method GET is not allowed on /api/v1/webhooks/git",
        ),
        (
            "POST",
            "/healthz",
            None,
            vec![],
            405,
            "method POST is not allowed on /healthz",
        ),
    ];
    let before = everything(&env);
    for (method, path, content_type, body, status, says) in cases {
        let (got, content_type, answer) = raw_call(&env, method, path, content_type, body).await;
        assert_eq!(got, status, "{method} {path}: {answer}");
        assert_eq!(content_type, "application/json", "{method} {path}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{method} {path}: {answer}");
        assert_eq!(everything(&env), before, "{method} {path} wrote something");
    }

    // The same caller's well-formed request is recorded: the checks above
    // would have seen a write.
    let (status, _, answer) = raw_call(
        &env,
        "POST",
        "/api/v1/clusters",
        json,
        br#"{"name":"fine"}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    let after = everything(&env);
    assert_eq!(after["audit"], before["audit"].as_u64().unwrap() + 1);
    assert_ne!(after["tokens"], before["tokens"]);
}
