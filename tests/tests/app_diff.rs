//! `switchyard app diff` end to end: the real hub and agent, the fake
//! Kubernetes API server. A field changed out of band (self-heal off) shows
//! as a unified diff and exit code 1, read from the agent's live view
//! without a request to the API server; once repaired by `app sync` (self-heal
//! still off) the diff is empty (exit 0); the web UI renders the same diff; a cluster whose agent is
//! stopped or does not answer is reported, not waited for forever. An
//! object prune would delete is all removed, and no Secret value reaches
//! the hub.

use serde_json::json;
use std::time::{Duration, Instant};
use switchyard_tests::cluster::OneCluster;
use switchyard_tests::process::wait_until;

fn replicas(s: &OneCluster) -> Option<i64> {
    s.fake
        .object("deployments", Some("web"), "web")
        .and_then(|o| o["spec"]["replicas"].as_i64())
}

/// Sign in to the web UI with the admin token; the session cookie.
async fn web_session(client: &reqwest::Client, s: &OneCluster) -> String {
    let token = std::fs::read_to_string(s.hub.data_dir().join("admin-token")).unwrap();
    let response = client
        .post(format!("{}/login", s.hub.admin_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}&next=%2F", token.trim()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn a_change_out_of_band_shows_in_the_diff_until_repaired_and_offline_clusters_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = OneCluster::start_web(dir.path());
    s.create_web(&["--prune"]);
    s.wait("first sync", |f| {
        f.object("deployments", Some("web"), "web").is_some()
    });
    s.wait_status("web", "synced", |r| r["sync"] == "Synced");

    // In sync: no differences, exit 0.
    let out = s.hub.cli(&["app", "diff", "web", "--cluster", "edge"]);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.stdout, "", "{}", out.stdout);

    // Changed out of band, self-heal off: reported, left alone.
    s.fake
        .patch_out_of_band(
            "deployments",
            Some("web"),
            "web",
            json!({"spec": {"replicas": 5}}),
        )
        .unwrap();
    s.wait_status("web", "drift reported", |r| r["sync"] == "OutOfSync");
    s.fake.clear_requests();
    let out = s.hub.cli(&["app", "diff", "web", "--cluster", "edge"]);
    assert_eq!(out.status.code(), Some(1), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.starts_with(
            "--- live/apps/v1/Deployment/web/web\n+++ desired/apps/v1/Deployment/web/web\n"
        ),
        "{}",
        out.stdout
    );
    let changed: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| {
            (l.starts_with('+') || l.starts_with('-'))
                && !l.starts_with("+++")
                && !l.starts_with("---")
        })
        .collect();
    assert_eq!(
        changed,
        vec!["-  replicas: 5", "+  replicas: 1"],
        "{}",
        out.stdout
    );
    // No colour codes when not on a terminal; the ConfigMap is in sync.
    assert!(!out.stdout.contains('\u{1b}'), "{}", out.stdout);
    assert!(!out.stdout.contains("web-config"), "{}", out.stdout);
    // The agent read its live view: no request reached the API server
    // (watches aside), and nothing was written.
    let reads: Vec<String> = s
        .fake
        .requests()
        .iter()
        .filter(|r| !r.is_watch())
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(reads, Vec::<String>::new(), "the diff asked the API server");
    assert_eq!(replicas(&s), Some(5));

    // -o json: every cluster of the app, each object with its change.
    let view = s.hub.cli(&["app", "diff", "web", "-o", "json"]);
    assert_eq!(view.status.code(), Some(1), "{}", view.stderr);
    let view: serde_json::Value = serde_json::from_str(&view.stdout).unwrap();
    assert_eq!(view["app"], "web");
    assert_eq!(view["clusters"][0]["cluster"], "edge");
    let objects = view["clusters"][0]["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 1, "{view}");
    assert_eq!(objects[0]["kind"], "Deployment");
    assert_eq!(objects[0]["change"], "update");

    // The web UI: the app page links the diff of the OutOfSync cluster,
    // and the diff page renders the same lines, with their markers.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(s.hub.admin_tls())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let cookie = web_session(&client, &s).await;
        let get = |path: &str| {
            client
                .get(format!("{}{path}", s.hub.admin_url()))
                .header("cookie", &cookie)
                .send()
        };
        let app_page = get("/apps/web").await.unwrap().text().await.unwrap();
        assert!(
            app_page.contains("href=\"/apps/web/diff?cluster=edge\""),
            "{app_page}"
        );
        let response = get("/apps/web/diff?cluster=edge").await.unwrap();
        assert_eq!(response.status(), 200);
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        let page = response.text().await.unwrap();
        assert!(page.contains("<pre class=\"diff\">"), "{page}");
        assert!(
            page.contains("<span class=\"del\">-  replicas: 5</span>"),
            "{page}"
        );
        assert!(
            page.contains("<span class=\"add\">+  replicas: 1</span>"),
            "{page}"
        );
        assert!(!page.contains("<script>"), "inline script in {page}");
        let missing = get("/apps/nope/diff").await.unwrap();
        assert_eq!(missing.status(), 404);
    });

    // Repaired by an explicit sync, self-heal still off (as a manual sync
    // in Argo CD): the agent writes the app's objects once more, and the
    // diff is empty again, exit 0.
    assert_eq!(replicas(&s), Some(5), "drift repaired before any sync");
    s.cli(&["app", "sync", "web"]);
    s.wait("repaired by app sync", |f| {
        f.object("deployments", Some("web"), "web")
            .and_then(|o| o["spec"]["replicas"].as_i64())
            == Some(1)
    });
    let clean = wait_until(Duration::from_secs(20), || {
        s.hub
            .cli(&["app", "diff", "web", "--cluster", "edge"])
            .status
            .code()
            == Some(0)
    });
    assert!(clean, "the diff did not become empty after the repair");

    // An agent that does not answer (stopped with SIGSTOP, its connection
    // still open): reported after --timeout, exit 6.
    let pid = s.agent.process().pid().to_string();
    let signal = |sig: &str| {
        let status = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    };
    signal("-STOP");
    let started = Instant::now();
    let out = s
        .hub
        .cli(&["app", "diff", "web", "--cluster", "edge", "--timeout", "2s"]);
    let took = started.elapsed();
    signal("-CONT");
    assert_eq!(out.status.code(), Some(6), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("no complete diff from edge"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("no answer within 2s"), "{}", out.stdout);
    assert!(took < Duration::from_secs(10), "took {took:?}");

    // An agent that is gone: named at once, not waited for.
    s.agent.stop();
    assert!(wait_until(Duration::from_secs(20), || {
        s.hub.cli_json(&["cluster", "list"])[0]["connected"] == false
    }));
    let started = Instant::now();
    let out = s.hub.cli(&["app", "diff", "web", "--cluster", "edge"]);
    assert_eq!(out.status.code(), Some(6), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("the agent is not connected"),
        "{}",
        out.stdout
    );
    // Without --cluster it is listed as not asked, and nothing failed.
    let out = s.hub.cli(&["app", "diff", "web"]);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("=== cluster edge: skipped: the agent is not connected"),
        "{}",
        out.stdout
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn an_object_prune_would_delete_is_all_removed() {
    use switchyard_tests::manifests::{WEB_CONFIG, web_deployment};
    let dir = tempfile::tempdir().unwrap();
    let first = |replicas| {
        web_deployment(replicas).replacen(
            "name: web\n",
            "name: web\n  annotations: {argocd.argoproj.io/sync-wave: \"-1\"}\n",
            1,
        )
    };
    let later = WEB_CONFIG.replace(
        "name: web-config\n",
        "name: web-later\n  annotations: {argocd.argoproj.io/sync-wave: \"1\"}\n",
    );
    let mut s = OneCluster::builder(dir.path())
        .file("web/deploy.yaml", &first(1))
        .file("web/config.yaml", WEB_CONFIG)
        .file("web/later.yaml", &later)
        .agent_args(&["--resync-interval", "1s", "--wave-wait", "1s"])
        .start();
    s.create_web(&["--prune"]);
    s.wait("wave -1 applied", |f| {
        f.object("deployments", Some("web"), "web").is_some()
    });
    let healthy = |s: &OneCluster| {
        s.fake
            .set_status(
                "deployments",
                Some("web"),
                "web",
                json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
                       "readyReplicas": 1, "availableReplicas": 1}),
            )
            .unwrap();
    };
    healthy(&s);
    s.wait("every wave applied", |f| {
        f.object("configmaps", Some("web"), "web-later").is_some()
    });
    s.wait_status("web", "synced", |r| r["sync"] == "Synced");

    // The next commit drops web-config and scales up: wave -1 is not
    // healthy at two replicas, so the sync stops before its end and prunes
    // nothing yet. The diff says what prune would delete.
    s.source.write("web/deploy.yaml", first(2));
    s.source.remove("web/config.yaml");
    s.commit("drop the config, scale up");
    s.wait("wave -1 applied again", |f| {
        f.object("deployments", Some("web"), "web")
            .and_then(|o| o["spec"]["replicas"].as_i64())
            == Some(2)
    });
    s.wait_status("web", "the next wave waits", |r| {
        r["message"]
            .as_str()
            .is_some_and(|m| m.contains("not healthy yet"))
    });
    assert!(
        s.fake
            .object("configmaps", Some("web"), "web-config")
            .is_some()
    );
    let out = s.hub.cli(&["app", "diff", "web", "--cluster", "edge"]);
    assert_eq!(out.status.code(), Some(1), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.starts_with(
            "--- live/v1/ConfigMap/web/web-config\n+++ desired/v1/ConfigMap/web/web-config\n@@ -1,"
        ),
        "{}",
        out.stdout
    );
    let body: Vec<&str> = out.stdout.lines().skip(3).collect();
    assert!(body.contains(&"-  greeting: hello"), "{}", out.stdout);
    assert!(body.iter().all(|l| l.starts_with('-')), "{}", out.stdout);
    let view = s
        .hub
        .cli(&["app", "diff", "web", "--cluster", "edge", "-o", "json"]);
    assert_eq!(view.status.code(), Some(1), "{}", view.stderr);
    let view: serde_json::Value = serde_json::from_str(&view.stdout).unwrap();
    let objects = view["clusters"][0]["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 1, "{view}");
    assert_eq!(objects[0]["change"], "delete", "{view}");
    assert_eq!(objects[0]["name"], "web-config", "{view}");
}

#[test]
fn secret_values_never_leave_the_agent() {
    // "hunter2" and "s3cr3t-changed", base64.
    const SECRET: &str = "apiVersion: v1
kind: Secret
metadata:
  name: db
type: Opaque
data:
  password: aHVudGVyMg==
  user: YWRtaW4=
";
    let dir = tempfile::tempdir().unwrap();
    let mut s = OneCluster::start(dir.path(), &[("web/secret.yaml", SECRET)]);
    s.create_web(&[]);
    s.wait("first sync", |f| {
        f.object("secrets", Some("web"), "db").is_some()
    });
    s.wait_status("web", "synced", |r| r["sync"] == "Synced");
    s.fake
        .patch_out_of_band(
            "secrets",
            Some("web"),
            "db",
            json!({"data": {"password": "czNjcjN0LWNoYW5nZWQ="}}),
        )
        .unwrap();
    s.wait_status("web", "drift reported", |r| r["sync"] == "OutOfSync");
    let out = s
        .hub
        .cli(&["app", "diff", "web", "--cluster", "edge", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}\n{}", out.stdout, out.stderr);
    for value in [
        "aHVudGVyMg==",
        "czNjcjN0LWNoYW5nZWQ=",
        "YWRtaW4=",
        "hunter2",
        "admin",
    ] {
        assert!(!out.stdout.contains(value), "{value} in:\n{}", out.stdout);
    }
    let view: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let diff = view["clusters"][0]["objects"][0]["diff"].as_str().unwrap();
    assert!(
        diff.contains("-  password: (redacted)\n+  password: (redacted, changed)\n"),
        "{diff}"
    );
    assert!(diff.contains("   user: (redacted)\n"), "{diff}");
}
