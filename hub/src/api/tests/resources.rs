//! Resource rules seen through the API: a repo dry run checks the hub's
//! files and stores nothing; groups in use are not deleted; credentials in
//! repo URLs are refused; only an admin with a reason may sync outside the
//! tracked revision.

use super::*;

#[tokio::test]
async fn a_repo_dry_run_checks_the_hubs_files_and_stores_nothing() {
    let env = env().await;
    let before = env.snapshot();
    let (status, body) = env
        .call(
            "admin",
            "POST",
            "/api/v1/repos?dry_run=true",
            Some(&json!({"name": "r", "url": "https://example.invalid/r.git",
                         "username": "bot", "password_file": "/nonexistent/token"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/token"),
        "{body}"
    );
    let (status, body) = env
        .call(
            "admin",
            "POST",
            "/api/v1/repos?dry_run=true",
            Some(&json!({"name": "r", "url": "https://example.invalid/r.git"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "r");
    assert_eq!(env.snapshot(), before);
}

#[tokio::test]
async fn groups_in_use_are_not_deleted_and_renames_are_refused() {
    let env = env().await;
    let call = |method, path, body: Option<Value>| {
        let env = &env;
        async move { env.call("admin", method, path, body.as_ref()).await }
    };
    let (status, body) = call(
        "POST",
        "/api/v1/groups",
        Some(json!({"name": "edge", "selector": "tier = edge"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["selector"], "tier=edge");
    let (status, _) = call(
        "POST",
        "/api/v1/groups",
        Some(json!({"name": "edge", "selector": ""})),
    )
    .await;
    assert_eq!(status, 409);
    let (status, body) = call(
        "PUT",
        "/api/v1/groups/edge",
        Some(json!({"name": "other", "selector": ""})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = call(
        "POST",
        "/api/v1/repos",
        Some(json!({"name": "r", "url": "file:///nonexistent/r.git"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(
        "POST",
        "/api/v1/apps",
        Some(json!({"name": "web", "repo": "r", "path": "web", "group": "nope"})),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "cluster group nope not found");
    let (status, body) = call(
        "POST",
        "/api/v1/apps",
        Some(json!({"name": "web", "repo": "r", "path": "web", "group": "edge"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["group"], "edge");
    let (status, body) = call("DELETE", "/api/v1/groups/edge", None).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("web"), "{body}");
    let (status, body) = call("GET", "/api/v1/groups/edge", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["apps"], json!(["web"]));
}

#[tokio::test]
async fn credentials_in_repo_urls_are_refused_and_stored_ones_never_shown() {
    let env = env().await;
    let before = env.snapshot();
    for dry_run in ["", "?dry_run=true"] {
        let (status, body) = env
            .call(
                "admin",
                "POST",
                &format!("/api/v1/repos{dry_run}"),
                Some(&json!({"name": "r", "url": "https://bot:tok3n@example.invalid/r.git"})),
            )
            .await;
        assert_eq!(status, 422, "{body}");
        let error = body["error"].as_str().unwrap();
        assert!(
            error.contains("--username") && error.contains("--password-file"),
            "{error}"
        );
        assert!(
            !error.contains("tok3n"),
            "the refusal repeats the secret: {error}"
        );
    }
    assert_eq!(env.snapshot(), before);
    let (_, audit) = env.call("admin", "GET", "/api/v1/audit", None).await;
    assert!(!audit.to_string().contains("tok3n"), "{audit}");

    // A record stored by an older version that accepted such URLs.
    env.store
        .create_repo(&crate::store::RepoRecord {
            name: "old".into(),
            kind: Default::default(),
            url: "https://bot:tok3n@example.invalid/r.git".into(),
            branch: "main".into(),
            interval_secs: 3600,
            username: None,
            password_file: None,
            ca_file: None,
            plain_http: false,
            webhook_secret_file: None,
            created_at: unix_now(),
            fetch: Default::default(),
        })
        .unwrap();
    for path in ["/api/v1/repos/old", "/api/v1/repos"] {
        let (status, body) = env.call("viewer", "GET", path, None).await;
        assert_eq!(status, 200, "{body}");
        assert!(!body.to_string().contains("tok3n"), "{path}: {body}");
        assert!(
            body.to_string()
                .contains("https://***@example.invalid/r.git"),
            "{path}: {body}"
        );
    }
}

#[tokio::test]
async fn only_an_admin_with_a_reason_may_sync_outside_the_tracked_revision() {
    let env = env().await;
    let before = env.snapshot();
    let body = json!({"revision": "abc1234", "allow_unreachable": true, "reason": "hotfix"});
    let (status, answer) = env
        .call("operator", "POST", "/api/v1/apps/web/sync", Some(&body))
        .await;
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("role operator may not deploy a commit outside the app's tracked revision"),
        "{answer}"
    );
    let no_reason = json!({"revision": "abc1234", "allow_unreachable": true});
    let (status, answer) = env
        .call("root", "POST", "/api/v1/apps/web/sync", Some(&no_reason))
        .await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("--reason"),
        "{answer}"
    );
    // Past the override checks, an admin reaches the app lookup.
    let (status, answer) = env
        .call("root", "POST", "/api/v1/apps/web/sync", Some(&body))
        .await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(env.snapshot(), before);
}

#[tokio::test]
async fn names_are_dns_labels_refused_with_their_kind_and_reason() {
    let env = env().await;
    let before = env.snapshot();
    let long = "a".repeat(100);
    for (path, body, error) in [
        (
            "/api/v1/apps",
            json!({"name": "Web_App", "repo": "r", "path": "."}),
            "app name \"Web_App\": a name is a DNS label: lowercase letters, digits and '-', \
             starting and ending with a letter or digit"
                .to_owned(),
        ),
        (
            "/api/v1/apps",
            json!({"name": long, "repo": "r", "path": "."}),
            format!("app name {long:?}: a name is a DNS label of at most 63 characters, got 100"),
        ),
        (
            "/api/v1/repos",
            json!({"name": "Bad_Name", "url": "https://example.invalid/r.git"}),
            "repo name \"Bad_Name\": a name is a DNS label: lowercase letters, digits and '-', \
             starting and ending with a letter or digit"
                .to_owned(),
        ),
        (
            "/api/v1/groups",
            json!({"name": "edge.", "selector": ""}),
            "cluster group name \"edge.\": a name is a DNS label: lowercase letters, digits and \
             '-', starting and ending with a letter or digit"
                .to_owned(),
        ),
    ] {
        let (status, answer) = env.call("admin", "POST", path, Some(&body)).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (422, Some(error.as_str()))
        );
    }
    assert_eq!(env.snapshot(), before);
}

#[tokio::test]
async fn records_stored_before_the_name_rule_still_load_and_delete() {
    let env = env().await;
    env.store
        .create_repo(&crate::store::RepoRecord {
            name: "Bad_Name".into(),
            url: "https://example.invalid/r.git".into(),
            branch: "main".into(),
            interval_secs: 60,
            username: None,
            password_file: None,
            ca_file: None,
            plain_http: false,
            webhook_secret_file: None,
            kind: Default::default(),
            created_at: 0,
            fetch: Default::default(),
        })
        .unwrap();
    env.store
        .create_app(&crate::store::AppRecord {
            selector: "nothing=here".into(),
            ..crate::store::AppRecord::example("Web_App", "Bad_Name")
        })
        .unwrap();
    for path in ["/api/v1/apps/Web_App", "/api/v1/repos/Bad_Name"] {
        let (status, body) = env.call("viewer", "GET", path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (status, body) = env.call("admin", "GET", "/api/v1/apps", None).await;
    assert_eq!((status, body[0]["name"].as_str()), (200, Some("Web_App")));
    let (status, body) = env
        .call(
            "admin",
            "PATCH",
            "/api/v1/apps/Web_App",
            Some(&json!({"selector": "still=nothing"})),
        )
        .await;
    assert_eq!(
        (status, body["selector"].as_str()),
        (200, Some("still=nothing")),
        "{body}"
    );
    for path in ["/api/v1/apps/Web_App", "/api/v1/repos/Bad_Name"] {
        let (status, body) = env.call("admin", "DELETE", path, None).await;
        assert!((200..300).contains(&status), "{path}: {status} {body}");
        let (status, _) = env.call("viewer", "GET", path, None).await;
        assert_eq!(status, 404, "{path}");
    }
}
