//! Sync hooks and waves, end to end with the real hub and agent and the fake
//! API server (issue 18, items 3 and 4): a PreSync Job runs before the rest
//! is applied, is created by `generateName` and deleted as its delete
//! policy says; a failed hook stops the sync and runs the SyncFail hook;
//! hooks run once per (app, commit), across agent restarts; a wave waits
//! for the previous one to be healthy.

use serde_json::{Value, json};
use switchyard_tests::cluster::OneCluster;
use switchyard_tests::manifests;

/// A Job hook in namespace `web`; `metadata` is the YAML of its metadata
/// block (name or generateName, annotations), indented by two spaces.
fn job(metadata: &str) -> String {
    format!(
        "apiVersion: batch/v1
kind: Job
metadata:
{metadata}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: migrate
        image: busybox:1.36
        command: [\"true\"]
"
    )
}

fn jobs(s: &OneCluster) -> Vec<Value> {
    s.fake.objects("jobs", Some("web"))
}

fn job_named<'a>(jobs: &'a [Value], prefix: &str) -> Option<&'a Value> {
    jobs.iter().find(|j| {
        j["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with(prefix))
    })
}

fn complete() -> Value {
    json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]})
}

fn failed() -> Value {
    json!({"failed": 1, "conditions": [{"type": "Failed", "status": "True",
        "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]})
}

fn hook_row<'a>(status: &'a Value, message: &str) -> Option<&'a Value> {
    status["resources"]
        .as_array()?
        .iter()
        .find(|r| r["kind"] == "Job" && r["message"].as_str().is_some_and(|m| m.contains(message)))
}

/// Index of the first recorded request with this method whose path
/// contains `path`.
fn first(s: &OneCluster, method: &str, path: &str) -> Option<usize> {
    s.fake
        .requests()
        .iter()
        .position(|r| r.method == method && r.path.contains(path))
}

#[test]
fn a_presync_job_runs_first_once_per_commit_and_is_deleted_when_it_succeeded() {
    let dir = tempfile::tempdir().unwrap();
    let hook = job("  generateName: migrate-
  annotations:
    argocd.argoproj.io/hook: PreSync
    argocd.argoproj.io/hook-delete-policy: HookSucceeded");
    let mut s = OneCluster::builder(dir.path())
        .file("web/deploy.yaml", &manifests::web_deployment(1))
        .file("web/config.yaml", manifests::WEB_CONFIG)
        .file("web/migrate.yaml", &hook)
        .start();
    s.create_web(&[]);
    s.wait("the PreSync Job is created by generateName", |f| {
        job_named(&f.objects("jobs", Some("web")), "migrate-").is_some()
    });
    let created = jobs(&s);
    let name = job_named(&created, "migrate-").unwrap()["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(name.len(), "migrate-".len() + 5, "{name}");
    // While the Job runs, nothing else of the app is applied.
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(s.fake.object("deployments", Some("web"), "web").is_none());
    assert!(
        s.fake
            .object("configmaps", Some("web"), "web-config")
            .is_none()
    );

    s.fake
        .set_status("jobs", Some("web"), &name, complete())
        .unwrap();
    s.wait("the Deployment is applied after the hook", |f| {
        f.object("deployments", Some("web"), "web").is_some()
    });
    let post = first(&s, "POST", "/jobs").expect("the hook was created by POST");
    let deploy = first(&s, "PATCH", "/deployments/web").expect("the Deployment was applied");
    assert!(post < deploy, "the hook ran after the Deployment");
    s.wait("HookSucceeded deletes the Job", |f| {
        f.object("jobs", Some("web"), &name).is_none()
    });
    s.wait_status("web", "the hook's outcome in the status", |r| {
        hook_row(r, "PreSync hook: Succeeded").is_some_and(|h| h["name"] == name.as_str())
    });

    // Restarted at the same commit: the hook does not run again.
    s.agent.stop();
    s.fake.clear_requests();
    let kubeconfig = s.kubeconfig.clone();
    s.agent.start_applying(&kubeconfig);
    s.wait_passes(3);
    assert_eq!(first(&s, "POST", "/jobs"), None, "the hook ran again");
    assert!(jobs(&s).is_empty());

    // A new commit runs it again, before the change is applied.
    s.source.write(
        "web/config.yaml",
        manifests::WEB_CONFIG.replace("hello", "bonjour"),
    );
    s.commit("greet in French");
    s.wait("a new commit runs the hook again", |f| {
        job_named(&f.objects("jobs", Some("web")), "migrate-").is_some()
    });
    let second = job_named(&jobs(&s), "migrate-").unwrap()["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(second, name);
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(
        s.fake
            .object("configmaps", Some("web"), "web-config")
            .unwrap()["data"]["greeting"],
        "hello",
        "the change was applied before its PreSync hook finished"
    );
    s.fake
        .set_status("jobs", Some("web"), &second, complete())
        .unwrap();
    s.wait("the change is applied after the hook", |f| {
        f.object("configmaps", Some("web"), "web-config")
            .is_some_and(|c| c["data"]["greeting"] == "bonjour")
    });
}

#[test]
fn a_failed_presync_hook_stops_the_sync_and_runs_the_syncfail_hook() {
    let dir = tempfile::tempdir().unwrap();
    let presync = job("  name: migrate
  annotations:
    argocd.argoproj.io/hook: PreSync");
    let syncfail = job("  generateName: cleanup-
  annotations:
    argocd.argoproj.io/hook: SyncFail");
    let mut s = OneCluster::builder(dir.path())
        .file("web/deploy.yaml", &manifests::web_deployment(1))
        .file("web/migrate.yaml", &presync)
        .file("web/cleanup.yaml", &syncfail)
        .start();
    s.create_web(&[]);
    s.wait("the PreSync Job is created", |f| {
        f.object("jobs", Some("web"), "migrate").is_some()
    });
    assert!(job_named(&jobs(&s), "cleanup-").is_none());
    s.fake
        .set_status("jobs", Some("web"), "migrate", failed())
        .unwrap();
    s.wait("the SyncFail hook runs", |f| {
        job_named(&f.objects("jobs", Some("web")), "cleanup-").is_some()
    });
    s.wait_status("web", "the failure is reported, naming the hook", |r| {
        r["sync"] == "OutOfSync"
            && r["message"].as_str().is_some_and(|m| {
                m.contains("PreSync hook Job migrate failed") && m.contains("backoff limit")
            })
            && hook_row(r, "PreSync hook: Failed").is_some()
            && hook_row(r, "SyncFail hook: Running").is_some()
    });
    let shown = s.hub.cli_json(&["app", "show", "web"]);
    let hooks = shown["hooks"]
        .as_array()
        .expect("app show -o json lists hooks");
    assert!(
        hooks.iter().any(|h| h["phase"] == "PreSync"
            && h["name"] == "migrate"
            && h["state"] == "Failed"
            && h["message"]
                .as_str()
                .is_some_and(|m| m.contains("backoff limit"))),
        "{shown}"
    );
    let text = s.cli(&["app", "show", "web"]);
    assert!(
        text.contains("Hooks (this commit):") && text.contains("Job web/migrate"),
        "{text}"
    );
    // Nothing after the failed hook is applied, pass after pass; the
    // default policy (BeforeHookCreation) keeps the failed Job to look at.
    s.wait_passes(3);
    assert!(s.fake.object("deployments", Some("web"), "web").is_none());
    assert!(s.fake.object("jobs", Some("web"), "migrate").is_some());
    assert_eq!(
        jobs(&s).len(),
        2,
        "the hooks ran more than once at one commit"
    );
}

#[test]
fn before_hook_creation_deletes_the_previous_runs_object() {
    let dir = tempfile::tempdir().unwrap();
    let hook = job("  name: migrate
  annotations:
    helm.sh/hook: pre-install,pre-upgrade");
    // A chart's test hook, as `helm create` writes one: not applied.
    let test = "apiVersion: v1
kind: Pod
metadata:
  name: web-test-connection
  annotations: {helm.sh/hook: test}
spec:
  restartPolicy: Never
  containers:
  - name: wget
    image: busybox:1.36
";
    let mut s = OneCluster::builder(dir.path())
        .file("web/config.yaml", manifests::WEB_CONFIG)
        .file("web/migrate.yaml", &hook)
        .file("web/test.yaml", test)
        .start();
    s.create_web(&[]);
    s.wait("the Helm pre-install hook runs", |f| {
        f.object("jobs", Some("web"), "migrate").is_some()
    });
    let uid = s.fake.object("jobs", Some("web"), "migrate").unwrap()["metadata"]["uid"].clone();
    s.fake
        .set_status("jobs", Some("web"), "migrate", complete())
        .unwrap();
    s.wait("the ConfigMap follows", |f| {
        f.object("configmaps", Some("web"), "web-config").is_some()
    });
    s.wait_status("web", "Synced, the test hook reported, not applied", |r| {
        r["sync"] == "Synced"
            && r["resources"].as_array().is_some_and(|rows| {
                rows.iter().any(|row| {
                    row["name"] == "web-test-connection"
                        && row["message"]
                            .as_str()
                            .is_some_and(|m| m.contains("Helm hook test is not supported"))
                })
            })
    });
    assert!(
        s.fake
            .object("pods", Some("web"), "web-test-connection")
            .is_none()
    );
    // Default policy: the Job stays until the next run.
    assert!(s.fake.object("jobs", Some("web"), "migrate").is_some());
    assert!(s.deletes().is_empty());

    s.source.write(
        "web/config.yaml",
        manifests::WEB_CONFIG.replace("hello", "bonjour"),
    );
    s.commit("greet in French");
    s.wait("the next run replaces the Job", |f| {
        f.object("jobs", Some("web"), "migrate")
            .is_some_and(|j| j["metadata"]["uid"] != uid)
    });
    assert_eq!(
        s.deletes()
            .iter()
            .filter(|d| d.contains("/jobs/migrate"))
            .count(),
        1,
        "{:?}",
        s.deletes()
    );
}

#[test]
fn a_wave_waits_until_the_previous_wave_is_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let db = manifests::web_deployment(1).replacen(
        "name: web\n",
        "name: db\n  annotations: {argocd.argoproj.io/sync-wave: \"-1\"}\n",
        1,
    );
    let app = manifests::WEB_CONFIG.replace(
        "name: web-config\n",
        "name: web-config\n  annotations: {argocd.argoproj.io/sync-wave: \"1\"}\n",
    );
    let mut s = OneCluster::builder(dir.path())
        .file("web/db.yaml", &db)
        .file("web/config.yaml", &app)
        .agent_args(&["--resync-interval", "1s", "--wave-wait", "1s"])
        .start();
    s.create_web(&[]);
    s.wait("wave -1 is applied", |f| {
        f.object("deployments", Some("web"), "db").is_some()
    });
    s.wait_status("web", "the status says the next wave waits", |r| {
        r["message"]
            .as_str()
            .is_some_and(|m| m.contains("wave -1 not healthy yet"))
    });
    assert!(
        s.fake
            .object("configmaps", Some("web"), "web-config")
            .is_none(),
        "wave 1 was applied while wave -1 was not healthy"
    );
    s.fake
        .set_status(
            "deployments",
            Some("web"),
            "db",
            json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
                   "readyReplicas": 1, "availableReplicas": 1}),
        )
        .unwrap();
    s.wait("wave 1 follows once wave -1 is healthy", |f| {
        f.object("configmaps", Some("web"), "web-config").is_some()
    });
}

#[test]
fn unknown_sync_options_are_reported_and_ignore_extraneous_keeps_the_app_synced() {
    let dir = tempfile::tempdir().unwrap();
    let kept = manifests::WEB_CONFIG.replace(
        "name: web-config\n",
        "name: web-config\n  annotations:\n    argocd.argoproj.io/sync-options: Prune=false,Frobnicate=yes\n    argocd.argoproj.io/compare-options: IgnoreExtraneous\n",
    );
    let mut s = OneCluster::builder(dir.path())
        .file("web/deploy.yaml", &manifests::web_deployment(1))
        .file("web/config.yaml", &kept)
        .start();
    s.create_web(&["--prune"]);
    s.wait_status("web", "the unknown option is named on its object", |r| {
        r["resources"].as_array().is_some_and(|rows| {
            rows.iter().any(|row| {
                row["name"] == "web-config"
                    && row["message"].as_str().is_some_and(|m| {
                        m.contains(
                        "unknown option ignored: argocd.argoproj.io/sync-options: Frobnicate=yes",
                    )
                    })
            })
        })
    });
    s.source.remove("web/config.yaml");
    s.commit("drop the config");
    s.wait_status("web", "kept, extraneous, and still Synced", |r| {
        r["sync"] == "Synced"
            && r["resources"].as_array().is_some_and(|rows| {
                rows.iter().any(|row| {
                    row["name"] == "web-config"
                        && row["message"]
                            .as_str()
                            .is_some_and(|m| m.contains("IgnoreExtraneous"))
                })
            })
    });
    assert!(
        s.fake
            .object("configmaps", Some("web"), "web-config")
            .is_some()
    );
}

#[test]
fn postsync_hooks_run_once_everything_is_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let hook = job("  generateName: smoke-
  annotations:
    argocd.argoproj.io/hook: PostSync
    argocd.argoproj.io/hook-delete-policy: HookFailed");
    let mut s = OneCluster::builder(dir.path())
        .file("web/deploy.yaml", &manifests::web_deployment(1))
        .file("web/smoke.yaml", &hook)
        .agent_args(&["--resync-interval", "1s", "--wave-wait", "1s"])
        .start();
    s.create_web(&[]);
    s.wait("the Deployment is applied", |f| {
        f.object("deployments", Some("web"), "web").is_some()
    });
    s.wait_status("web", "the PostSync hooks wait for health", |r| {
        r["message"]
            .as_str()
            .is_some_and(|m| m.contains("Deployment web/web is Progressing"))
    });
    assert!(
        jobs(&s).is_empty(),
        "PostSync ran before the app was healthy"
    );
    s.fake
        .set_status(
            "deployments",
            Some("web"),
            "web",
            json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
                   "readyReplicas": 1, "availableReplicas": 1}),
        )
        .unwrap();
    s.wait("the PostSync hook runs once the app is healthy", |f| {
        job_named(&f.objects("jobs", Some("web")), "smoke-").is_some()
    });
    let name = job_named(&jobs(&s), "smoke-").unwrap()["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    s.fake
        .set_status("jobs", Some("web"), &name, complete())
        .unwrap();
    s.wait_status("web", "Synced with the hook's success", |r| {
        r["sync"] == "Synced" && hook_row(r, "PostSync hook: Succeeded").is_some()
    });
    // HookFailed only: a hook that succeeded stays.
    assert!(s.fake.object("jobs", Some("web"), &name).is_some());
}

#[test]
fn replace_true_writes_by_put_and_drops_fields_others_set() {
    let dir = tempfile::tempdir().unwrap();
    let replaced = manifests::WEB_CONFIG.replace(
        "name: web-config\n",
        "name: web-config\n  annotations:\n    argocd.argoproj.io/sync-options: Replace=true\n",
    );
    let mut s = OneCluster::builder(dir.path())
        .file("web/config.yaml", &replaced)
        .start();
    s.create_web(&[]);
    s.wait("first sync", |f| {
        f.object("configmaps", Some("web"), "web-config").is_some()
    });
    s.fake
        .patch_out_of_band(
            "configmaps",
            Some("web"),
            "web-config",
            json!({"data": {"extra": "set by hand"}}),
        )
        .unwrap();
    s.fake.clear_requests();
    s.source
        .write("web/config.yaml", replaced.replace("hello", "bonjour"));
    s.commit("greet in French");
    s.wait("replaced with the new content only", |f| {
        f.object("configmaps", Some("web"), "web-config")
            .is_some_and(|c| c["data"] == json!({"greeting": "bonjour"}))
    });
    assert!(
        first(&s, "PUT", "/configmaps/web-config").is_some(),
        "not written by PUT"
    );
    assert_eq!(first(&s, "PATCH", "/configmaps/web-config"), None);
}

#[test]
fn a_sync_hook_runs_with_its_wave_between_the_waves_around_it() {
    let dir = tempfile::tempdir().unwrap();
    let before = manifests::WEB_CONFIG.replace(
        "name: web-config\n",
        "name: before\n  annotations: {argocd.argoproj.io/sync-wave: \"0\"}\n",
    );
    let after = manifests::WEB_CONFIG.replace(
        "name: web-config\n",
        "name: after\n  annotations: {argocd.argoproj.io/sync-wave: \"2\"}\n",
    );
    let hook = job("  generateName: seed-
  annotations:
    argocd.argoproj.io/hook: Sync
    argocd.argoproj.io/sync-wave: \"1\"");
    let mut s = OneCluster::builder(dir.path())
        .file("web/before.yaml", &before)
        .file("web/after.yaml", &after)
        .file("web/seed.yaml", &hook)
        .start();
    s.create_web(&[]);
    s.wait("the Sync hook of wave 1 runs after wave 0", |f| {
        job_named(&f.objects("jobs", Some("web")), "seed-").is_some()
    });
    assert!(s.fake.object("configmaps", Some("web"), "before").is_some());
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(
        s.fake.object("configmaps", Some("web"), "after").is_none(),
        "wave 2 was applied while the Sync hook of wave 1 ran"
    );
    let name = job_named(&jobs(&s), "seed-").unwrap()["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    s.fake
        .set_status("jobs", Some("web"), &name, complete())
        .unwrap();
    s.wait("wave 2 follows the hook", |f| {
        f.object("configmaps", Some("web"), "after").is_some()
    });
    s.wait_status("web", "Synced with the Sync hook's success", |r| {
        r["sync"] == "Synced" && hook_row(r, "Sync hook: Succeeded").is_some()
    });
}
