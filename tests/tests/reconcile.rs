//! The agent's reconciler end to end: the real hub and agent binaries, a
//! real git repo, and the fake Kubernetes API server speaking the HTTP
//! protocol kube-rs uses. First sync, updates, prune, drift with and without
//! self-heal, CRDs, unknown kinds, API errors, offline restarts and status.

use serde_json::{Value, json};
use std::time::Duration;
use switchyard_tests::cluster::OneCluster;
use switchyard_tests::fleet::SOON;
use switchyard_tests::manifests::{WIDGET, WIDGET_CRD, web_deployment};
use switchyard_tests::process::{Process, binary, wait_until};

/// The object `name` of `resource` in the namespace `web` on the fake cluster.
fn object(s: &OneCluster, resource: &str, name: &str) -> Option<Value> {
    s.fake.object(resource, Some("web"), name)
}

fn replicas(object: &Option<Value>) -> Option<i64> {
    object.as_ref().and_then(|o| o["spec"]["replicas"].as_i64())
}

#[test]
fn first_sync_update_no_op_and_prune() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = OneCluster::start_web(dir.path());
    s.create_web(&["--prune", "--selector", "env=prod"]);

    // First sync: the namespace is created, objects applied with our marks.
    s.wait("first sync", |f| {
        f.object("deployments", Some("web"), "web").is_some()
            && f.object("configmaps", Some("web"), "web-config").is_some()
    });
    assert!(s.fake.object("namespaces", None, "web").is_some());
    let deployment = object(&s, "deployments", "web").unwrap();
    assert_eq!(
        deployment["metadata"]["labels"]["switchyard.dev/app"],
        "web"
    );
    assert_eq!(
        deployment["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "switchyard"
    );
    let managers: Vec<&str> = deployment["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(managers.contains(&"switchyard"), "{managers:?}");
    assert!(s.fake.writes().iter().any(|w| {
        w.content_type
            .as_deref()
            .is_some_and(|c| c.contains("apply-patch"))
    }));

    // Health follows the cluster: Progressing until the Deployment is available.
    s.wait_status("web", "reported Progressing", |r| {
        r["sync"] == "Synced" && r["health"] == "Progressing"
    });
    s.fake
        .set_status("deployments", Some("web"), "web", json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1}))
        .unwrap();
    s.wait_status("web", "reported Healthy", |r| r["health"] == "Healthy");
    let table = s.hub.cli(&["status"]);
    assert!(
        table.stdout.lines().any(|l| l.starts_with("web")
            && l.contains("edge")
            && l.contains("Synced")
            && l.contains("Healthy")),
        "{}",
        table.stdout
    );

    // A no-op resync (every second here) sends no write, and no read
    // either: the objects come from the agent's watches.
    std::thread::sleep(Duration::from_millis(1500));
    let before = s.passes();
    s.fake.clear_requests();
    std::thread::sleep(Duration::from_millis(2500));
    assert!(s.passes() > before, "no resync happened");
    assert_eq!(
        s.fake.writes(),
        vec![],
        "a no-op reconcile wrote to the API server"
    );
    let reads: Vec<String> = s
        .fake
        .requests()
        .iter()
        .filter(|r| !r.is_watch())
        .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
        .collect();
    assert_eq!(
        reads,
        Vec::<String>::new(),
        "a no-op reconcile read objects"
    );

    // Update: replicas 1 -> 2 reaches the cluster.
    s.source.write("web/deploy.yaml", web_deployment(2));
    let second = s.commit("scale to 2");
    s.wait("update applied", |f| {
        replicas(&f.object("deployments", Some("web"), "web")) == Some(2)
    });
    s.wait_status("web", "new revision reported", |r| {
        r["applied_commit"] == second.as_str()
    });

    // Prune on: an object removed from Git is deleted.
    s.source.remove("web/config.yaml");
    s.commit("drop config");
    s.wait("pruned", |f| {
        f.object("configmaps", Some("web"), "web-config").is_none()
    });
    assert!(object(&s, "deployments", "web").is_some());
}

#[test]
fn drift_is_repaired_with_self_heal_and_reported_without() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = OneCluster::start_web(dir.path());
    s.create_web(&["--self-heal"]);
    s.wait("first sync", |f| {
        f.object("deployments", Some("web"), "web").is_some()
    });

    s.fake
        .patch_out_of_band(
            "deployments",
            Some("web"),
            "web",
            json!({"spec": {"replicas": 5}}),
        )
        .unwrap();
    s.wait("changed object restored", |f| {
        replicas(&f.object("deployments", Some("web"), "web")) == Some(1)
    });
    s.fake
        .delete_out_of_band("configmaps", Some("web"), "web-config")
        .unwrap();
    s.wait("deleted object recreated", |f| {
        f.object("configmaps", Some("web"), "web-config").is_some()
    });

    // Without self-heal, drift is reported and left alone.
    s.cli(&["app", "update", "web", "--no-self-heal"]);
    std::thread::sleep(Duration::from_millis(1500));
    s.fake
        .patch_out_of_band(
            "deployments",
            Some("web"),
            "web",
            json!({"spec": {"replicas": 7}}),
        )
        .unwrap();
    s.wait_status("web", "drift reported", |r| {
        r["sync"] == "OutOfSync"
            && r["resources"].as_array().unwrap().iter().any(|row| {
                row["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("spec.replicas"))
            })
    });
    assert_eq!(
        replicas(&object(&s, "deployments", "web")),
        Some(7),
        "drift was repaired with self-heal off"
    );
}

#[test]
fn crds_first_unknown_kinds_and_api_errors_fail_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = OneCluster::start_web(dir.path());
    s.fake.set_crd_establish_delay(Duration::from_millis(800));
    s.source.write("web/crd.yaml", WIDGET_CRD);
    s.source.write("web/widget.yaml", WIDGET);
    s.source.write(
        "web/unknown.yaml",
        "apiVersion: nowhere.example.com/v1\nkind: Ghost\nmetadata:\n  name: boo\n",
    );
    s.commit("crd, widget and a ghost");
    // Three server errors first: retried with backoff, never fatal.
    s.fake.fail_next(3, 500);
    s.create_web(&[]);

    s.wait("custom resource applied after its WIDGET_CRD", |f| {
        f.object("widgets.example.com", Some("web"), "gizmo")
            .is_some()
    });
    s.wait("the rest applied despite the ghost", |f| {
        f.object("deployments", Some("web"), "web").is_some()
    });
    s.wait_status("web", "unknown kind reported", |r| {
        r["sync"] == "OutOfSync" && r["message"].as_str().is_some_and(|m| m.contains("Ghost"))
    });
    assert!(s.agent.process().is_running());
}

#[test]
fn forbidden_objects_are_errors_and_the_agent_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = OneCluster::start_web(dir.path());
    s.fake.forbid("configmaps", Some("web"));
    s.create_web(&[]);
    s.wait("allowed object applied", |f| {
        f.object("deployments", Some("web"), "web").is_some()
    });
    s.wait_status("web", "forbidden reported", |r| {
        r["message"]
            .as_str()
            .is_some_and(|m| m.contains("403") || m.to_lowercase().contains("forbidden"))
    });
    s.fake.allow_all();
    s.wait("applied once allowed", |f| {
        f.object("configmaps", Some("web"), "web-config").is_some()
    });
    assert!(s.agent.process().is_running());
}

#[test]
fn a_restarted_agent_enforces_the_cache_while_the_hub_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = OneCluster::start_web(dir.path());
    s.create_web(&["--self-heal"]);
    s.wait("first sync", |f| {
        f.object("deployments", Some("web"), "web").is_some()
    });

    // The hub goes away; the agent restarts; someone deletes an object.
    s.hub.process.kill9();
    s.agent.stop();
    s.fake
        .delete_out_of_band("deployments", Some("web"), "web")
        .unwrap();
    let kubeconfig = s.kubeconfig.clone();
    s.agent.start_applying(&kubeconfig);
    s.wait("restored from the cache with no hub", |f| {
        f.object("deployments", Some("web"), "web").is_some()
    });

    // The hub comes back: the agent reconnects and reports what it did meanwhile.
    s.hub.kill9_and_restart();
    assert!(s.hub.wait_connected("edge", true));
    s.wait_status("web", "reported after reconnect", |r| r["sync"] == "Synced");
}

#[test]
fn an_unassigned_app_with_prune_is_removed_from_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = OneCluster::start_web(dir.path());
    s.create_web(&["--prune", "--selector", "env=prod"]);
    s.wait("first sync", |f| {
        f.object("deployments", Some("web"), "web").is_some()
    });
    // Someone else's object in the same namespace must survive the prune.
    s.fake
        .create_object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "not-ours", "namespace": "web"}}))
        .unwrap();

    // The cluster's labels change: the app no longer targets it.
    s.cli(&["cluster", "label", "edge", "env=staging"]);
    s.wait("unassigned app pruned", |f| {
        f.object("deployments", Some("web"), "web").is_none()
            && f.object("configmaps", Some("web"), "web-config").is_none()
    });
    assert!(
        s.fake
            .object("configmaps", Some("web"), "not-ours")
            .is_some(),
        "an object without the app's marks was deleted"
    );
}

#[test]
fn dry_run_against_a_cluster_prints_the_plan_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = OneCluster::start_web(dir.path());
    // An object the app applied before, with another replica count.
    s.fake
        .create_object(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}}),
        )
        .unwrap();
    s.fake
        .create_object(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "web", "labels": {"switchyard.dev/app": "web"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}
        }))
        .unwrap();
    s.agent.stop();
    let kubeconfig = s.kubeconfig.display().to_string();
    s.agent.start_with(&[
        "--dry-run",
        "--kubeconfig",
        &kubeconfig,
        "--resync-interval",
        "1s",
    ]);
    assert!(s.hub.wait_connected("edge", true));
    s.fake.clear_requests();
    s.create_web(&[]);
    let printed = wait_until(SOON, || {
        s.agent
            .process()
            .stdout_text()
            .contains("create ConfigMap web/web-config")
    });
    assert!(
        printed,
        "{}\n{}",
        s.agent.process().stdout_text(),
        s.agent.process().stderr_text()
    );
    let out = s.agent.process().stdout_text();
    assert!(out.contains("update Deployment web/web"), "{out}");
    assert!(out.contains("replicas"), "the update shows no diff: {out}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(s.fake.writes(), vec![], "a dry-run wrote to the API server");
    assert_eq!(replicas(&object(&s, "deployments", "web")), Some(3));
}

/// `switchyard app wait` against a real agent: exit 0 once the wanted state
/// is reached, 4 on timeout, 3 for an unknown app, 1 when the app is
/// Degraded, with progress on stderr.
#[test]
fn app_wait_reaches_times_out_and_fails_with_its_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = OneCluster::start_web(dir.path());
    let missing = s.hub.cli(&["app", "wait", "nope", "--timeout", "5s"]);
    assert_eq!(missing.status.code(), Some(3), "{}", missing.stderr);
    assert!(
        missing.stderr.contains("app nope not found"),
        "{}",
        missing.stderr
    );

    s.create_web(&["--selector", "env=prod"]);
    // Synced comes while the Deployment still rolls out...
    let synced = s
        .hub
        .cli(&["app", "wait", "web", "--synced", "--timeout", "15s"]);
    assert!(synced.success(), "{}", synced.stderr);
    assert_eq!(synced.stdout, "app web is synced on 1/1 clusters\n");
    // ...Healthy does not: a short timeout gives up and says what it waited for.
    let timed_out = s
        .hub
        .cli(&["app", "wait", "web", "--healthy", "--timeout", "2s"]);
    assert_eq!(timed_out.status.code(), Some(4), "{}", timed_out.stderr);
    assert!(
        timed_out.stderr.contains("error: timed out after 2s: app web: 0/1 clusters healthy; waiting for edge: Synced/Progressing"),
        "{}",
        timed_out.stderr
    );

    // A waiter started now returns as soon as the Deployment is available.
    let mut waiter = Process::spawn(
        &binary("switchyard"),
        &["app", "wait", "web", "--timeout", "60s"].map(String::from),
        &[(
            "SWITCHYARD_DATA_DIR",
            s.hub.data_dir().display().to_string(),
        )],
        &dir.path().join("logs"),
        "wait",
    );
    assert!(
        waiter.wait_for_log("app web: 0/1 clusters synced and healthy", SOON),
        "{}",
        waiter.stderr_text()
    );
    assert!(waiter.is_running(), "{}", waiter.stderr_text());
    s.fake
        .set_status("deployments", Some("web"), "web", json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1}))
        .unwrap();
    let status = waiter.wait_exit(SOON).expect("app wait returned");
    assert!(status.success(), "{status}: {}", waiter.stderr_text());
    assert_eq!(
        waiter.stdout_text(),
        "app web is synced and healthy on 1/1 clusters\n"
    );

    // A rollout past its deadline is Degraded: waiting for health fails at once.
    s.fake
        .set_status("deployments", Some("web"), "web", json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 0, "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet web-1 has timed out progressing."}]}))
        .unwrap();
    s.wait_status("web", "reported Degraded", |r| r["health"] == "Degraded");
    let degraded = s
        .hub
        .cli(&["app", "wait", "web", "--healthy", "--timeout", "30s"]);
    assert_eq!(degraded.status.code(), Some(1), "{}", degraded.stderr);
    assert!(
        degraded.stderr.contains("app web is Degraded on edge"),
        "{}",
        degraded.stderr
    );
}

/// An `ignoreDifferences` rule (Argo CD's shape) leaves a field to another
/// manager: an autoscaler's replicas are neither drift nor reverted by
/// self-heal; without the rule the same change is repaired.
#[test]
fn ignored_fields_are_left_to_others_and_a_bad_rule_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = OneCluster::start_web(dir.path());
    let rules = dir.path().join("ignore.yaml");
    std::fs::write(
        &rules,
        "- group: apps\n  kind: Deployment\n  jsonPointers:\n  - /spec/replicas\n",
    )
    .unwrap();
    let rules = rules.to_str().unwrap();
    s.create_web(&["--self-heal", "--ignore-differences-file", rules]);
    s.wait("first sync", |f| {
        replicas(&f.object("deployments", Some("web"), "web")) == Some(1)
    });
    let shown = s.cli(&["app", "show", "web"]);
    assert!(
        shown.contains("apps/Deployment /spec/replicas"),
        "app show lists the rule:\n{shown}"
    );

    // The "autoscaler" scales out; the agent runs passes and leaves it.
    s.fake
        .patch_out_of_band(
            "deployments",
            Some("web"),
            "web",
            json!({"spec": {"replicas": 5}}),
        )
        .unwrap();
    s.wait_passes(3);
    assert_eq!(replicas(&object(&s, "deployments", "web")), Some(5));
    s.wait_status("web", "synced with the ignored field changed", |r| {
        r["sync"] == "Synced"
    });

    // A rule the agent cannot apply is refused and changes nothing.
    let jq = dir.path().join("jq.yaml");
    std::fs::write(
        &jq,
        "- group: apps\n  kind: Deployment\n  jqPathExpressions:\n  - 'def f: f; f'\n",
    )
    .unwrap();
    let refused = s.hub.cli(&[
        "app",
        "update",
        "web",
        "--ignore-differences-file",
        jq.to_str().unwrap(),
    ]);
    assert!(!refused.status.success());
    let stderr = &refused.stderr;
    assert!(
        stderr.contains("jqPathExpressions[0]") && stderr.contains("not accepted in ignore rules"),
        "{stderr}"
    );
    let app = s.hub.cli_json(&["app", "show", "web"]);
    assert_eq!(
        app["ignore_differences"][0]["jsonPointers"],
        json!(["/spec/replicas"]),
        "{app}"
    );

    // Without the rule, self-heal takes the field back.
    let none = dir.path().join("none.yaml");
    std::fs::write(&none, "[]\n").unwrap();
    s.cli(&[
        "app",
        "update",
        "web",
        "--ignore-differences-file",
        none.to_str().unwrap(),
    ]);
    s.wait("replicas repaired once the rule is gone", |f| {
        replicas(&f.object("deployments", Some("web"), "web")) == Some(1)
    });
}
