//! `switchyard backup` of a running hub and `switchyard restore` into a new
//! data dir: the restored hub serves the same clusters, apps and revisions,
//! and an agent whose certificate was renewed after the backup reconnects.

use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use switchyard_tests::fleet::{SOON, TestAgent, TestHub, add_demo_app};
use switchyard_tests::process::{Output, binary, run, wait_until};

/// Short enough that the agent renews (at two thirds) a few seconds after
/// the backup, long enough for the test to act in between.
const CERT_TTL: &str = "12s";

fn status_row(hub: &TestHub, app: &str, cluster: &str) -> Option<Value> {
    let out = hub.cli(&["status", app, "-o", "json"]);
    if !out.success() {
        return None;
    }
    serde_json::from_str::<Value>(&out.stdout)
        .ok()?
        .as_array()?
        .iter()
        .find(|r| r["cluster"] == cluster)
        .cloned()
}

fn reported_commit(hub: &TestHub, cluster: &str, commit: &str) -> bool {
    status_row(hub, "demo", cluster).is_some_and(|r| r["applied_commit"] == commit)
}

/// `switchyard restore FILE --data-dir DATA_DIR`, offline.
fn restore(file: &Path, data_dir: &Path) -> Output {
    let args = ["restore", path(file), "--data-dir", path(data_dir)];
    run(&binary("switchyard"), &args.map(str::to_owned), &[], SOON)
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

/// What must survive: everything but moment-to-moment fields.
fn durable_view(hub: &TestHub) -> Value {
    let mut clusters = hub.cli_json(&["cluster", "list"]);
    for c in clusters.as_array_mut().expect("cluster list") {
        let c = c.as_object_mut().expect("cluster");
        for volatile in ["connected", "last_seen", "cert_expires", "agent_version"] {
            c.remove(volatile);
        }
    }
    let mut apps = hub.cli_json(&["app", "list"]);
    for a in apps.as_array_mut().expect("app list") {
        // Sync counts depend on who is connected right now.
        a.as_object_mut().expect("app").retain(|k, _| {
            matches!(
                k.as_str(),
                "name" | "repo" | "path" | "selector" | "deployed" | "manual" | "prune"
            )
        });
    }
    serde_json::json!({
        "clusters": clusters,
        "apps": apps,
        "history": hub.cli_json(&["app", "history", "demo"]),
        "tokens": token_names_and_roles(hub),
        "groups": hub.cli_json(&["group", "list"]),
    })
}

/// API tokens survive a restore by name and role; their state does not (a
/// restore revokes them all, tests/tests/credentials.rs).
fn token_names_and_roles(hub: &TestHub) -> Value {
    let mut tokens = hub.cli_json(&["token", "list"]);
    for t in tokens.as_array_mut().expect("token list") {
        t.as_object_mut()
            .expect("token")
            .retain(|k, _| matches!(k.as_str(), "name" | "role" | "created_at"));
    }
    tokens
}

#[test]
fn a_restored_hub_serves_the_same_state_and_agents_reconnect_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let old_dir = dir.path().join("old");
    let new_dir = dir.path().join("new");
    let mut old = TestHub::start(&old_dir, &["--cert-ttl", CERT_TTL]);

    let join = old.add_cluster("edge-1", &["env=prod"]);
    let mut agent = TestAgent::new(dir.path(), "edge-1");
    let joined = agent.join(&join);
    assert!(joined.success(), "join: {}", joined.stderr);
    agent.start();
    assert!(old.wait_connected("edge-1", true), "agent never connected");
    let source = add_demo_app(&old, dir.path(), "env=prod");
    let first = source.head();
    assert!(
        wait_until(SOON, || reported_commit(&old, "edge-1", &first)),
        "agent never reported the first commit: {:?}",
        status_row(&old, "demo", "edge-1")
    );
    let group = old.cli(&["group", "create", "prod", "--selector", "env=prod"]);
    assert!(group.success(), "group create: {}", group.stderr);
    let viewer = old.cli(&["token", "create", "ci", "--role", "viewer"]);
    assert!(viewer.success(), "token create: {}", viewer.stderr);

    let file = dir.path().join("hub.backup");
    let taken = old.cli_json(&["backup", file.to_str().unwrap()]);
    assert_eq!(taken["clusters"], 1, "{taken}");
    assert_eq!(taken["apps"], 1, "{taken}");
    assert_eq!(taken["repos"], 1, "{taken}");
    assert_eq!(taken["groups"], 1, "{taken}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the backup holds the CA key");
    let before = durable_view(&old);

    // A renewal the backup does not know about: the agent's certificate is
    // then one the restored store has never recorded.
    let expires_at_backup = old.cluster("edge-1")["cert_expires"].clone();
    assert!(
        wait_until(SOON, || old.cluster("edge-1")["cert_expires"]
            != expires_at_backup),
        "the agent never renewed its certificate"
    );
    let quic_port = old.quic_port();
    old.process.terminate(SOON);

    // Restore refuses a data dir in use, and the refusal writes nothing.
    let refused = restore(&file, &old_dir.join("hub"));
    assert!(!refused.success());
    assert!(
        refused.stderr.contains("is not empty"),
        "{}",
        refused.stderr
    );

    let restored = restore(&file, &new_dir.join("hub"));
    assert!(restored.success(), "restore: {}", restored.stderr);
    assert!(
        restored
            .stdout
            .contains("1 clusters, 1 repos, 1 apps, 1 groups"),
        "{}",
        restored.stdout
    );

    let new = TestHub::start_at(&new_dir, quic_port, &["--cert-ttl", CERT_TTL]);
    assert!(
        new.wait_connected("edge-1", true),
        "the agent did not reconnect to the restored hub; hub log:\n{}",
        new.process.stderr_text()
    );
    assert_eq!(durable_view(&new), before);
    let tokens = new.cli_json(&["token", "list"]);
    let ci = tokens
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "ci"))
        .expect("token ci restored");
    assert_eq!(
        ci["state"], "revoked",
        "a restore revokes the API tokens of the backup"
    );

    // The restored hub does its work: a new commit reaches the agent.
    source.write(
        "demo/extra.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n",
    );
    let second = source.commit("add extra");
    source.publish(&dir.path().join("served"), "demo");
    assert!(
        wait_until(Duration::from_secs(40), || reported_commit(
            &new, "edge-1", &second
        )),
        "the new commit never reached the agent through the restored hub: {:?}",
        status_row(&new, "demo", "edge-1")
    );
    // And the agent keeps renewing against it.
    let expires = new.cluster("edge-1")["cert_expires"].clone();
    assert!(
        wait_until(SOON, || new.cluster("edge-1")["cert_expires"] != expires),
        "no renewal against the restored hub"
    );
    assert!(new.is_connected("edge-1"));
    agent.stop();
}
