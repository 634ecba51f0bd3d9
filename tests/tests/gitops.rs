//! GitOps end to end with the real binaries and real git servers: commits
//! reach exactly the clusters an app targets, manual apps wait for a sync,
//! rollbacks pin, labels move assignments, broken commits keep the last good
//! bundle, and webhooks trigger fetches.

use std::path::Path;
use std::time::Duration;
use switchyard_tests::fleet::{SOON, TestAgent, TestHub};
use switchyard_tests::git_server::{GitDaemon, GitHttpServer, GitRepoBuilder};
use switchyard_tests::process::wait_until;

const WEB: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    region: ${cluster.labels.region}
spec:
  replicas: REPLICAS
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
";

const LAB: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: lab-settings
data:
  mode: experimental
";

const BASE: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: fleet-base
";

fn web(replicas: u32) -> String {
    WEB.replace("REPLICAS", &replicas.to_string())
}

fn start_agent(dir: &Path, hub: &TestHub, name: &str, labels: &[&str]) -> TestAgent {
    hub.connect_agent(dir, name, labels)
}

fn short(sha: &str) -> &str {
    &sha[..8]
}

#[test]
fn commits_reach_exactly_the_targeted_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    let source = GitRepoBuilder::new();
    source.write("apps/web/deploy.yaml", web(1));
    source.write("apps/lab/cm.yaml", LAB);
    source.write("base/ns.yaml", BASE);
    let first = source.commit("web, lab and base");
    source.publish(&served, "fleet");
    let daemon = GitDaemon::start(&served);

    let hub = TestHub::start(dir.path(), &[]);
    hub.cli_ok(&[
        "repo",
        "add",
        "fleet",
        &daemon.url("fleet.git"),
        "--interval",
        "1s",
    ]);
    assert!(
        hub.repo_reaches("fleet", &first),
        "first fetch never happened"
    );
    let mut berlin = start_agent(dir.path(), &hub, "berlin", &["env=prod", "region=eu"]);
    let mut boston = start_agent(dir.path(), &hub, "boston", &["env=prod", "region=us"]);
    let mut lab = start_agent(dir.path(), &hub, "lab", &["env=staging", "region=eu"]);

    hub.cli_ok(&[
        "app",
        "create",
        "web",
        "--repo",
        "fleet",
        "--path",
        "apps/web",
        "--selector",
        "env=prod",
        "--namespace",
        "web",
        "--prune",
    ]);
    hub.cli_ok(&[
        "app",
        "create",
        "lab",
        "--repo",
        "fleet",
        "--path",
        "apps/lab",
        "--selector",
        "env in (staging,qa)",
    ]);
    hub.cli_ok(&["app", "create", "base", "--repo", "fleet", "--path", "base"]);

    let has = |plan: &str, app: &str, commit: &str| {
        plan.contains(&format!("app {app} at {}", short(commit)))
    };
    for agent in [&mut berlin, &mut boston] {
        agent.wait_plan("prod gets web and base", |p| {
            has(p, "web", &first) && has(p, "base", &first) && !p.contains("app lab")
        });
    }
    lab.wait_plan("staging gets lab and base", |p| {
        has(p, "lab", &first) && has(p, "base", &first) && !p.contains("app web")
    });
    assert!(
        berlin
            .latest_plan()
            .contains("would apply Deployment web/web (apps/v1)")
    );

    // One rendering, shared where identical: the app without variables has
    // one bundle for all; the one with ${cluster.labels.region} one per region.
    let digest = |agent: &mut TestAgent, app: &str| {
        let plan = agent.latest_plan();
        let line = plan
            .lines()
            .find(|l| l.contains(&format!("app {app} at")))
            .unwrap()
            .to_owned();
        line[line.find("(sha256:").unwrap() + 1..line.find(')').unwrap()].to_owned()
    };
    assert_eq!(digest(&mut berlin, "base"), digest(&mut lab, "base"));
    assert_ne!(digest(&mut berlin, "web"), digest(&mut boston, "web"));

    // A change merged to main reaches the prod clusters and no other.
    let lab_bundles_before = (digest(&mut lab, "lab"), digest(&mut lab, "base"));
    let lab_fetches_before = lab
        .process()
        .stderr_text()
        .matches("bundle fetched")
        .count();
    source.write("apps/web/deploy.yaml", web(2));
    let second = source.commit("scale web to 2");
    source.publish(&served, "fleet");
    for agent in [&mut berlin, &mut boston] {
        agent.wait_plan("prod follows main", |p| has(p, "web", &second));
    }
    // Staging's apps move to the new commit, but their content did not
    // change: same bundles, nothing downloaded, and still no web.
    lab.wait_plan("staging at the new commit", |p| has(p, "lab", &second));
    assert_eq!(
        (digest(&mut lab, "lab"), digest(&mut lab, "base")),
        lab_bundles_before
    );
    assert!(!lab.latest_plan().contains("app web"));
    assert_eq!(
        lab.process()
            .stderr_text()
            .matches("bundle fetched")
            .count(),
        lab_fetches_before,
        "staging downloaded a bundle for a prod-only change"
    );
    let history = hub.cli_json(&["app", "history", "web"]);
    let commits: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["commit"].as_str().unwrap())
        .collect();
    // Newest first, like `git log`.
    assert_eq!(commits, [second.as_str(), first.as_str()]);
    assert_eq!(history[0]["trigger"], "poll");
    assert_eq!(history[0]["summary"], "scale web to 2");
    assert!(history[0]["author"].as_str().unwrap().contains('@'));

    // Rollback pins the previous commit everywhere; sync resumes following.
    hub.cli_ok(&["app", "rollback", "web", "--to", short(&first)]);
    for agent in [&mut berlin, &mut boston] {
        agent.wait_plan("rollback", |p| has(p, "web", &first));
    }
    let shown = hub.cli_json(&["app", "show", "web"]);
    assert_eq!(shown["pinned"], true);
    assert_eq!(shown["pending"], second.as_str());
    hub.cli_ok(&["app", "sync", "web"]);
    berlin.wait_plan("sync after rollback", |p| has(p, "web", &second));

    // A cluster whose labels change follows: it gains web and loses lab.
    hub.cli_ok(&["cluster", "label", "lab", "env=prod"]);
    lab.wait_plan("relabeled cluster", |p| {
        has(p, "web", &second) && !p.contains("app lab")
    });

    // A broken commit: the error names file and line, the last good bundle stays.
    source.write(
        "apps/web/deploy.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n   bad: indentation\n",
    );
    let broken = source.commit("break web");
    source.publish(&served, "fleet");
    let ok_error = wait_until(SOON, || {
        let app = hub.cli_json(&["app", "show", "web"]);
        app["latest"] == broken.as_str()
            && app["errors"]["*"]
                .as_str()
                .is_some_and(|e| e.contains("deploy.yaml:"))
    });
    assert!(
        ok_error,
        "no render error shown: {}",
        hub.cli_json(&["app", "show", "web"])
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        has(&berlin.latest_plan(), "web", &second),
        "a broken commit withdrew the last good bundle"
    );
    let listing = hub.cli_ok(&["app", "list"]);
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("web") && l.contains("Error")),
        "{listing}"
    );

    // An agent restart reuses its cached bundles: nothing is downloaded again.
    berlin.stop();
    berlin.start();
    assert!(hub.wait_connected("berlin", true));
    berlin.wait_plan("restarted agent's plan", |p| has(p, "web", &second));
    assert!(
        !berlin.process().stderr_text().contains("bundle fetched"),
        "{}",
        berlin.process().stderr_text()
    );
}

#[test]
fn manual_apps_wait_for_sync() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    let source = GitRepoBuilder::new();
    source.write("guarded/cm.yaml", LAB);
    let first = source.commit("guarded app");
    source.publish(&served, "fleet");
    let hub = TestHub::start(dir.path(), &[]);
    hub.cli_ok(&[
        "repo",
        "add",
        "fleet",
        &format!("file://{}", served.join("fleet.git").display()),
        "--interval",
        "1s",
    ]);
    assert!(hub.repo_reaches("fleet", &first));
    let mut agent = start_agent(dir.path(), &hub, "edge", &[]);

    hub.cli_ok(&[
        "app", "create", "guarded", "--repo", "fleet", "--path", "guarded", "--manual",
    ]);
    let app = hub.cli_json(&["app", "show", "guarded"]);
    assert!(app["deployed"].is_null());
    assert_eq!(app["pending"], first.as_str());
    std::thread::sleep(Duration::from_millis(500));
    assert!(!agent.latest_plan().contains("app guarded"));

    let out = hub.cli_ok(&["app", "sync", "guarded"]);
    assert!(out.contains("synced"), "{out}");
    agent.wait_plan("synced manual app", |p| {
        p.contains(&format!("app guarded at {}", short(&first)))
    });

    // A new commit is pending, not deployed, until the next sync.
    source.write("guarded/cm.yaml", LAB.replace("experimental", "stable"));
    let second = source.commit("stabilize");
    source.publish(&served, "fleet");
    assert!(wait_until(SOON, || hub
        .cli_json(&["app", "show", "guarded"])["pending"]
        == second.as_str()));
    assert!(
        agent
            .latest_plan()
            .contains(&format!("app guarded at {}", short(&first)))
    );
    hub.cli_ok(&["app", "sync", "guarded", "--revision", &second]);
    agent.wait_plan("second sync", |p| {
        p.contains(&format!("app guarded at {}", short(&second)))
    });

    // Deleting the app withdraws it.
    hub.cli_ok(&["app", "delete", "guarded"]);
    agent.wait_plan("deleted app", |p| p.contains("no apps assigned"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_auth_and_a_signed_webhook() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    let source = GitRepoBuilder::new();
    source.write("app/cm.yaml", LAB);
    let first = source.commit("first");
    source.publish(&served, "fleet");
    let server =
        tokio::task::block_in_place(|| GitHttpServer::start(&served, Some(("ops", "hunter2"))));
    let password = dir.path().join("password");
    std::fs::write(&password, "hunter2\n").unwrap();
    let secret = dir.path().join("hook-secret");
    std::fs::write(&secret, "webhook-s3cret").unwrap();

    let hub = tokio::task::block_in_place(|| TestHub::start(dir.path(), &[]));
    let url = server.url("fleet.git");
    tokio::task::block_in_place(|| {
        hub.cli_ok(&[
            "repo",
            "add",
            "fleet",
            &url,
            "--interval",
            "1h",
            "--username",
            "ops",
            "--password-file",
            password.to_str().unwrap(),
            "--ca-file",
            server.ca_pem_path().to_str().unwrap(),
            "--webhook-secret-file",
            secret.to_str().unwrap(),
        ]);
        assert!(
            hub.repo_reaches("fleet", &first),
            "HTTPS fetch failed: {}",
            hub.cli_json(&["repo", "show", "fleet"])
        );
    });

    // A new commit is not seen (hourly polling) until a signed webhook comes.
    source.write("app/cm.yaml", LAB.replace("experimental", "stable"));
    let second = source.commit("second");
    source.publish(&served, "fleet");
    let hook = format!("{}/api/v1/webhooks/git", hub.admin_url());
    let body = serde_json::json!({
        "ref": "refs/heads/main",
        "repository": { "clone_url": url, "html_url": url.trim_end_matches(".git") },
    })
    .to_string();
    let sign = |secret: &[u8]| {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        format!(
            "sha256={}",
            hex::encode(ring::hmac::sign(&key, body.as_bytes()).as_ref())
        )
    };
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(hub.admin_tls())
        .build()
        .unwrap();
    let forged = client
        .post(&hook)
        .header("X-GitHub-Event", "push")
        .header("X-Hub-Signature-256", sign(b"wrong"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::task::block_in_place(|| {
        assert_eq!(
            hub.cli_json(&["repo", "show", "fleet"])["head"],
            first.as_str()
        );
        assert!(hub.process.stderr_text().contains("webhook refused"));
    });

    let accepted = client
        .post(&hook)
        .header("X-GitHub-Event", "push")
        .header("X-Hub-Signature-256", sign(b"webhook-s3cret"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        accepted.status().as_u16(),
        202,
        "{:?}",
        accepted.text().await
    );
    tokio::task::block_in_place(|| {
        assert!(
            hub.repo_reaches("fleet", &second),
            "webhook did not trigger a fetch"
        );
    });

    // GitLab sends the secret as a token, Gitea signs with a bare hex HMAC;
    // both in their own payload shapes.
    let third = {
        source.write("app/cm.yaml", LAB.replace("experimental", "third"));
        let sha = source.commit("third");
        source.publish(&served, "fleet");
        sha
    };
    let gitlab_body = serde_json::json!({
        "object_kind": "push",
        "ref": "refs/heads/main",
        "project": { "git_http_url": url, "web_url": url.trim_end_matches(".git") },
    })
    .to_string();
    let wrong_token = client
        .post(&hook)
        .header("X-Gitlab-Event", "Push Hook")
        .header("X-Gitlab-Token", "nope")
        .body(gitlab_body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_token.status().as_u16(), 401);
    let gitlab = client
        .post(&hook)
        .header("X-Gitlab-Event", "Push Hook")
        .header("X-Gitlab-Token", "webhook-s3cret")
        .body(gitlab_body)
        .send()
        .await
        .unwrap();
    assert_eq!(gitlab.status().as_u16(), 202);
    tokio::task::block_in_place(|| {
        assert!(hub.repo_reaches("fleet", &third));
    });

    source.write("app/cm.yaml", LAB.replace("experimental", "fourth"));
    let fourth = source.commit("fourth");
    source.publish(&served, "fleet");
    let gitea_body = serde_json::json!({
        "ref": "refs/heads/main",
        "repository": { "clone_url": url },
    })
    .to_string();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"webhook-s3cret");
    let gitea_signature = hex::encode(ring::hmac::sign(&key, gitea_body.as_bytes()).as_ref());
    let gitea = client
        .post(&hook)
        .header("X-Gitea-Event", "push")
        .header("X-GitHub-Event", "push")
        .header("X-Gitea-Signature", gitea_signature)
        .body(gitea_body)
        .send()
        .await
        .unwrap();
    assert_eq!(gitea.status().as_u16(), 202);
    tokio::task::block_in_place(|| {
        assert!(hub.repo_reaches("fleet", &fourth));
    });

    // A push for a repository the hub does not follow is checked against the
    // hub's own secret: signed with another (here a followed repo's), it is
    // refused like a forgery; signed with the hub's, it is not found.
    let stranger_body = r#"{"repository":{"clone_url":"https://elsewhere.example.com/x.git"}}"#;
    let sign_stranger = |secret: &[u8]| {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        format!(
            "sha256={}",
            hex::encode(ring::hmac::sign(&key, stranger_body.as_bytes()).as_ref())
        )
    };
    let hub_secret = std::fs::read_to_string(hub.data_dir().join("webhook-secret")).unwrap();
    for (secret, expected) in [
        (b"webhook-s3cret".to_vec(), 401),
        (hub_secret.trim().as_bytes().to_vec(), 404),
    ] {
        let stranger = client
            .post(&hook)
            .header("X-GitHub-Event", "push")
            .header("X-Hub-Signature-256", sign_stranger(&secret))
            .body(stranger_body)
            .send()
            .await
            .unwrap();
        assert_eq!(stranger.status().as_u16(), expected);
    }
}

#[test]
fn an_unreachable_repo_withdraws_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    let source = GitRepoBuilder::new();
    source.write("app/cm.yaml", LAB);
    let first = source.commit("first");
    source.publish(&served, "fleet");
    let mut daemon = GitDaemon::start(&served);
    let hub = TestHub::start(dir.path(), &[]);
    hub.cli_ok(&[
        "repo",
        "add",
        "fleet",
        &daemon.url("fleet.git"),
        "--interval",
        "1s",
    ]);
    assert!(hub.repo_reaches("fleet", &first));
    let mut agent = start_agent(dir.path(), &hub, "edge", &[]);
    hub.cli_ok(&["app", "create", "app", "--repo", "fleet", "--path", "app"]);
    agent.wait_plan("first", |p| {
        p.contains(&format!("app app at {}", short(&first)))
    });

    daemon.stop();
    assert!(
        wait_until(SOON, || hub.cli_json(&["repo", "show", "fleet"])["error"]
            .is_string()),
        "no fetch error reported"
    );
    let repo = hub.cli_json(&["repo", "show", "fleet"]);
    assert!(
        repo["error"].as_str().unwrap().contains("127.0.0.1"),
        "{repo}"
    );
    let listing = hub.cli_ok(&["repo", "list"]);
    assert!(listing.contains("Error"), "{listing}");
    // Still assigned, still the same commit.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        agent
            .latest_plan()
            .contains(&format!("app app at {}", short(&first)))
    );
    assert_eq!(
        hub.cli_json(&["app", "show", "app"])["deployed"],
        first.as_str()
    );
}
