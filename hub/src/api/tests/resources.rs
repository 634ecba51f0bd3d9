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

/// `GET /api/v1/apps` counts each app's clusters instead of naming them
/// (`?clusters=names` names them, as one app's view always does), and
/// pages by name with `limit` and `after`.
#[tokio::test]
async fn the_app_list_counts_clusters_and_pages_by_name() {
    let env = env().await;
    for name in ["a", "b"] {
        env.fleet
            .add_cluster(
                ClusterName::new(name).unwrap(),
                BTreeMap::new(),
                Duration::from_secs(3600),
            )
            .unwrap();
    }
    for (name, selector) in [("one", ""), ("two", "nothing=here"), ("three", "")] {
        env.store
            .create_app(&crate::store::AppRecord {
                selector: selector.into(),
                ..crate::store::AppRecord::example(name, "config")
            })
            .unwrap();
    }
    let commit = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
    for cluster in ["seed", "a"] {
        env.store
            .update_cluster(&ClusterName::new(cluster).unwrap(), false, &mut |record| {
                record.assignment = vec![switchyard_common::proto::AssignmentItem {
                    app: "one".into(),
                    commit: commit.into(),
                    digest: format!("sha256:{:064}", 1),
                    namespace: None,
                    prune: false,
                    self_heal: false,
                    ownership: Default::default(),
                    ignore_differences: Vec::new(),
                    prune_confirmed: None,
                    create_namespace: true,
                    prune_last: false,
                    sync_requested: 0,
                }];
            })
            .unwrap();
    }
    let list = |query: &'static str| {
        let env = &env;
        async move {
            env.call("viewer", "GET", &format!("/api/v1/apps{query}"), None)
                .await
        }
    };
    let names = |body: &Value| -> Vec<String> {
        body.as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, body) = list("").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(&body), ["one", "three", "two"]);
    let one = &body[0];
    assert_eq!(one["target_count"], 3, "{one}");
    assert_eq!(one["running_counts"], json!({ commit: 2 }), "{one}");
    for named in ["running", "target_clusters"] {
        assert!(one.get(named).is_none(), "{named} in the list: {one}");
    }
    assert_eq!(body[2]["target_count"], 0);
    // Opting into the names.
    let (status, body) = list("?clusters=names").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["target_clusters"], json!(["a", "b", "seed"]));
    assert_eq!(body[0]["running"], json!({ commit: ["a", "seed"] }));
    assert_eq!(body[2]["target_clusters"], json!([]));
    // One app's view always names them.
    let (status, one) = env.call("viewer", "GET", "/api/v1/apps/one", None).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["target_clusters"], json!(["a", "b", "seed"]));
    assert_eq!(one["running"], json!({ commit: ["a", "seed"] }));
    assert_eq!(one["target_count"], 3);
    // Pages.
    let (_, page) = list("?limit=2").await;
    assert_eq!(names(&page), ["one", "three"]);
    let (_, page) = list("?limit=2&after=three").await;
    assert_eq!(names(&page), ["two"]);
    let (_, page) = list("?after=two").await;
    assert_eq!(names(&page), Vec::<String>::new());
    for bad in ["?limit=0", "?limit=10001", "?clusters=all", "?page=2"] {
        let (status, body) = list(bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
}
