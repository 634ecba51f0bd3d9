//! Admin API tokens (listed without secrets, their uses shown) and the
//! audit log (filtered by time, limited to the newest).

use super::*;

#[tokio::test]
async fn tokens_are_listed_without_secrets_and_used_tokens_show_it() {
    let env = env().await;
    let (status, created) = env
        .call(
            "admin",
            "POST",
            "/api/v1/tokens",
            Some(&json!({"name": "ci", "role": "viewer", "ttl_secs": 3600})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with(auth::TOKEN_PREFIX));
    assert_eq!(created["state"], "active");
    assert!(created["expires_at"].is_string());

    // An active name is not minted twice; reserved and bad names are refused.
    let again = json!({"name": "ci", "role": "admin"});
    assert_eq!(
        env.call("admin", "POST", "/api/v1/tokens", Some(&again))
            .await
            .0,
        409
    );
    let reserved = json!({"name": "admin", "role": "admin"});
    assert_eq!(
        env.call("admin", "POST", "/api/v1/tokens", Some(&reserved))
            .await
            .0,
        422
    );
    let bad_role = json!({"name": "x", "role": "root"});
    assert_eq!(
        env.call("admin", "POST", "/api/v1/tokens", Some(&bad_role))
            .await
            .0,
        422
    );

    let mut env = env;
    env.secrets.insert("ci", secret.clone());
    assert_eq!(env.call("ci", "GET", "/api/v1/clusters", None).await.0, 200);
    let (status, list) = env.call("admin", "GET", "/api/v1/tokens", None).await;
    assert_eq!(status, 200);
    let text = list.to_string();
    assert!(!text.contains(&secret), "{text}");
    let ci = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci")
        .unwrap();
    assert_eq!(ci["role"], "viewer");
    assert!(ci["last_used"].is_string(), "{ci}");
    let revoked = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "revoked")
        .unwrap();
    assert_eq!(revoked["state"], "revoked");

    // Revoked at once; a revoked name can be minted again, with a new secret.
    assert_eq!(
        env.call("admin", "DELETE", "/api/v1/tokens/ci", None)
            .await
            .0,
        200
    );
    assert_eq!(env.call("ci", "GET", "/api/v1/clusters", None).await.0, 401);
    let (status, fresh) = env
        .call(
            "admin",
            "POST",
            "/api/v1/tokens",
            Some(&json!({"name": "ci", "role": "operator"})),
        )
        .await;
    assert_eq!(status, 201, "{fresh}");
    assert_eq!(env.call("ci", "GET", "/api/v1/clusters", None).await.0, 401);
    assert_eq!(
        env.call("admin", "DELETE", "/api/v1/tokens/nope", None)
            .await
            .0,
        404
    );
    assert_eq!(
        env.call("admin", "DELETE", "/api/v1/tokens/admin", None)
            .await
            .0,
        422
    );
}

#[tokio::test]
async fn audit_is_filtered_by_time_and_limited_to_the_newest() {
    let env = env().await;
    for name in ["a", "b", "c"] {
        let body = json!({ "name": name });
        assert_eq!(
            env.call("admin", "POST", "/api/v1/clusters", Some(&body))
                .await
                .0,
            201
        );
    }
    let (status, all) = env.call("admin", "GET", "/api/v1/audit", None).await;
    assert_eq!(status, 200);
    let targets: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["cluster a", "cluster b", "cluster c"]);
    let (_, newest) = env
        .call("admin", "GET", "/api/v1/audit?limit=2", None)
        .await;
    assert_eq!(newest[0]["target"], "cluster b");
    assert_eq!(newest.as_array().unwrap().len(), 2);
    let (_, future) = env
        .call(
            "admin",
            "GET",
            "/api/v1/audit?since=2999-01-01T00:00:00Z",
            None,
        )
        .await;
    assert_eq!(future, json!([]));
    let (status, body) = env
        .call("admin", "GET", "/api/v1/audit?since=yesterday", None)
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("RFC 3339"));
}
