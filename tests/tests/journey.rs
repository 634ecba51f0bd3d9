//! The classic GitOps journey with the real binaries: a hub, three agents
//! each applying to its own fake Kubernetes API server, and a config repo
//! served by a real `git daemon`.

use serde_json::{Value, json};
use std::time::Duration;
use switchyard_tests::fake_kube::FakeKube;
use switchyard_tests::fleet::{SOON, TestAgent, TestHub};
use switchyard_tests::git_server::{GitDaemon, GitRepoBuilder};
use switchyard_tests::manifests::web_deployment;
use switchyard_tests::process::wait_until;

const GUARD: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: guard
data:
  level: LEVEL
";

struct Cluster {
    name: &'static str,
    fake: FakeKube,
    agent: TestAgent,
}

fn replicas(fake: &FakeKube) -> Option<i64> {
    fake.object("deployments", Some("shop"), "web")
        .and_then(|d| d["spec"]["replicas"].as_i64())
}

fn guard_level(fake: &FakeKube) -> Option<String> {
    fake.object("configmaps", Some("shop"), "guard")
        .and_then(|c| c["data"]["level"].as_str().map(str::to_owned))
}

/// Play the controller: mark the Deployment rolled out at its replicas.
fn roll_out(fake: &FakeKube) {
    if let Some(d) = fake.object("deployments", Some("shop"), "web") {
        let n = d["spec"]["replicas"].as_i64().unwrap_or(1);
        let generation = d["metadata"]["generation"].as_i64().unwrap_or(1);
        let _ = fake.set_status(
            "deployments",
            Some("shop"),
            "web",
            json!({"observedGeneration": generation, "replicas": n, "updatedReplicas": n, "readyReplicas": n, "availableReplicas": n}),
        );
    }
}

fn status_rows(hub: &TestHub, app: &str) -> Vec<Value> {
    hub.cli_json(&["status", app])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn the_gitops_journey() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    let source = GitRepoBuilder::new();
    source.write("web/deploy.yaml", web_deployment(1));
    source.write("guard/cm.yaml", GUARD.replace("LEVEL", "one"));
    let first = source.commit("web and guard");
    source.publish(&served, "fleet");
    let daemon = GitDaemon::start(&served);

    let mut hub = TestHub::start(dir.path(), &[]);
    let out = hub.cli(&[
        "repo",
        "add",
        "fleet",
        &daemon.url("fleet.git"),
        "--interval",
        "1s",
    ]);
    assert!(out.success(), "{}", out.stderr);

    let mut clusters: Vec<Cluster> = [
        ("berlin", "env=prod"),
        ("lisbon", "env=prod"),
        ("lab", "env=staging"),
    ]
    .into_iter()
    .map(|(name, label)| {
        let fake = runtime.block_on(FakeKube::start());
        let kubeconfig = dir.path().join(format!("{name}.kubeconfig"));
        fake.write_kubeconfig(&kubeconfig).unwrap();
        let agent = hub.connect_kube_agent(dir.path(), name, &[label], &kubeconfig);
        Cluster { name, fake, agent }
    })
    .collect();
    hub.cli_ok(&[
        "app",
        "create",
        "web",
        "--repo",
        "fleet",
        "--path",
        "web",
        "--namespace",
        "shop",
        "--selector",
        "env=prod",
        "--prune",
        "--self-heal",
    ]);
    hub.cli_ok(&[
        "app",
        "create",
        "guard",
        "--repo",
        "fleet",
        "--path",
        "guard",
        "--namespace",
        "shop",
        "--manual",
        "--prune",
    ]);

    // Merged to main: applied to every matching cluster and no other.
    let (prod, lab) = clusters.split_at_mut(2);
    for c in prod.iter() {
        assert!(
            wait_until(SOON, || replicas(&c.fake) == Some(1)),
            "{} never got web",
            c.name
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(replicas(&lab[0].fake), None, "staging got a prod app");

    // replicas 1 -> 2 reaches the prod clusters; status shows the new
    // revision, Synced and Healthy once the controllers roll out.
    source.write("web/deploy.yaml", web_deployment(2));
    let second = source.commit("scale web to 2");
    source.publish(&served, "fleet");
    for c in prod.iter() {
        assert!(
            wait_until(SOON, || replicas(&c.fake) == Some(2)),
            "{} never scaled",
            c.name
        );
    }
    let healthy = wait_until(SOON, || {
        prod.iter().for_each(|c| roll_out(&c.fake));
        let rows = status_rows(&hub, "web");
        rows.len() == 2
            && rows.iter().all(|r| {
                r["applied_commit"] == second.as_str()
                    && r["sync"] == "Synced"
                    && r["health"] == "Healthy"
            })
    });
    assert!(
        healthy,
        "web never Synced and Healthy at the new revision: {:?}",
        status_rows(&hub, "web")
    );

    // The manual app waits with its commit pending until `app sync`.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        clusters.iter().all(|c| guard_level(&c.fake).is_none()),
        "a manual app deployed itself"
    );
    assert_eq!(
        hub.cli_json(&["app", "show", "guard"])["pending"],
        second.as_str()
    );
    hub.cli_ok(&["app", "sync", "guard"]);
    for c in &clusters {
        assert!(
            wait_until(SOON, || guard_level(&c.fake).as_deref() == Some("one")),
            "{} never got guard",
            c.name
        );
    }
    // `app rollback --to` brings the previous commit back everywhere.
    hub.cli_ok(&["app", "rollback", "web", "--to", &first[..8]]);
    let (prod, lab) = clusters.split_at_mut(2);
    for c in prod.iter() {
        assert!(
            wait_until(SOON, || replicas(&c.fake) == Some(1)),
            "{} not rolled back",
            c.name
        );
    }

    // A cluster's labels change: its assignment follows (web added, guard stays).
    hub.cli_ok(&["cluster", "label", "lab", "env=prod"]);
    assert!(
        wait_until(SOON, || replicas(&lab[0].fake) == Some(1)),
        "relabeled lab never got web"
    );

    // The hub is killed mid-rollout and restarted: everything converges.
    source.write("guard/cm.yaml", GUARD.replace("LEVEL", "two"));
    let third = source.commit("guard level two");
    source.publish(&served, "fleet");
    std::thread::sleep(Duration::from_millis(300));
    hub.kill9_and_restart();
    for c in &clusters {
        assert!(
            hub.wait_connected(c.name, true),
            "{} did not reconnect",
            c.name
        );
    }
    assert!(
        wait_until(SOON, || hub.cli_json(&["app", "show", "guard"])["pending"]
            == third.as_str()),
        "the restarted hub lost the new commit"
    );
    hub.cli_ok(&["app", "sync", "guard"]);
    for c in &clusters {
        assert!(
            wait_until(SOON, || guard_level(&c.fake).as_deref() == Some("two")),
            "{} did not converge after the restart",
            c.name
        );
    }

    // A removed cluster is cut off and receives nothing more.
    hub.cli_ok(&["cluster", "remove", "lab"]);
    let lab = &mut clusters[2];
    assert!(
        lab.agent.process().wait_exit(SOON).is_some(),
        "removed agent kept running"
    );
    source.write("guard/cm.yaml", GUARD.replace("LEVEL", "three"));
    let fourth = source.commit("guard level three");
    source.publish(&served, "fleet");
    assert!(wait_until(SOON, || hub.cli_json(&["app", "show", "guard"])
        ["pending"]
        == fourth.as_str()));
    hub.cli_ok(&["app", "sync", "guard"]);
    for c in &clusters[..2] {
        assert!(wait_until(SOON, || guard_level(&c.fake).as_deref() == Some("three")));
    }
    assert_eq!(
        guard_level(&clusters[2].fake).as_deref(),
        Some("two"),
        "the removed cluster received a change"
    );
}
