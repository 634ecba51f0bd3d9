//! App- and object-level sync options end to end (real hub and agent, a
//! real git repo, the fake Kubernetes API server): `Prune=confirm` with
//! `app sync --prune`, `--create-namespace=false`, field-manager ignore
//! rules and `PruneLast=true`.

use serde_json::Value;
use switchyard_tests::cluster::OneCluster;
use switchyard_tests::manifests::web_deployment;

fn config_map(name: &str, options: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  annotations:\n    argocd.argoproj.io/sync-options: {options}\ndata:\n  greeting: hello\n"
    )
}

fn row<'a>(status: &'a Value, name: &str) -> Option<&'a Value> {
    status["resources"]
        .as_array()?
        .iter()
        .find(|r| r["name"] == name)
}

fn message(status: &Value, name: &str) -> String {
    row(status, name)
        .and_then(|r| r["message"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// An object marked `Prune=confirm` that left Git stays, and its app is
/// OutOfSync, until an operator confirms with `app sync --prune`; the
/// confirmation is for that commit only, so the next prune needs another.
#[test]
fn prune_confirm_waits_for_app_sync_prune_at_each_commit() {
    let dir = tempfile::tempdir().unwrap();
    let deployment = web_deployment(1);
    let first = config_map("first", "Prune=confirm");
    let second = config_map("second", "Prune=confirm");
    let mut s = OneCluster::start(
        dir.path(),
        &[
            ("web/deploy.yaml", &deployment),
            ("web/first.yaml", &first),
            ("web/second.yaml", &second),
        ],
    );
    s.create_web(&["--prune"]);
    s.wait("first sync", |f| {
        f.object("configmaps", Some("web"), "first").is_some()
            && f.object("configmaps", Some("web"), "second").is_some()
    });

    s.source.remove("web/first.yaml");
    let c2 = s.commit("drop first");
    let waits = "prune waits for confirmation: switchyard app sync web --prune";
    s.wait_status("web", "prune waits for confirmation", |r| {
        r["applied_commit"] == c2.as_str()
            && r["sync"] == "OutOfSync"
            && message(r, "first").contains(waits)
    });
    s.wait_passes(3);
    assert!(
        s.fake.object("configmaps", Some("web"), "first").is_some(),
        "deleted without a confirmation"
    );
    // The app's row says why it is OutOfSync, before the Deployment's rollout.
    let row = &s.status("web")[0];
    assert!(
        row["message"].as_str().is_some_and(|m| m.contains(waits)),
        "{row}"
    );

    let out = s.cli(&["app", "sync", "web", "--prune"]);
    assert!(out.contains("prune confirmed for commit"), "{out}");
    s.wait("pruned once confirmed", |f| {
        f.object("configmaps", Some("web"), "first").is_none()
    });
    s.wait_status("web", "synced after the prune", |r| r["sync"] == "Synced");
    let history = s.cli(&["app", "history", "web"]);
    assert!(history.contains("sync --prune"), "{history}");
    let audit = s.hub.cli_json(&["audit", "--since", "1h"]);
    let confirmed = format!("confirmed the prune of Prune=confirm objects at commit {c2}");
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["message"].as_str() == Some(confirmed.as_str())),
        "{audit:#}"
    );
    let app = s.hub.cli_json(&["app", "show", "web"]);
    assert_eq!(app["prune_confirmed"], c2.as_str(), "{app}");

    // A later commit: the confirmation of c2 does not carry over.
    s.source.remove("web/second.yaml");
    let c3 = s.commit("drop second");
    s.wait_status("web", "the next prune waits again", |r| {
        r["applied_commit"] == c3.as_str() && message(r, "second").contains(waits)
    });
    s.wait_passes(3);
    assert!(
        s.fake.object("configmaps", Some("web"), "second").is_some(),
        "an old confirmation deleted an object at a later commit"
    );
    s.cli(&["app", "sync", "web", "--prune"]);
    s.wait("pruned after the second confirmation", |f| {
        f.object("configmaps", Some("web"), "second").is_none()
    });
    assert!(s.fake.object("deployments", Some("web"), "web").is_some());
}

fn replicas(s: &OneCluster) -> Option<i64> {
    s.fake
        .object("deployments", Some("web"), "web")
        .and_then(|o| o["spec"]["replicas"].as_i64())
}

/// `--ignore-field-manager`: the fields another manager's managedFields
/// entry owns (here `out-of-band`, as an autoscaler would) are neither
/// drift nor taken back by self-heal; without the rule they are.
#[test]
fn fields_of_an_ignored_field_manager_are_left_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = OneCluster::start_web(dir.path());
    s.create_web(&["--self-heal", "--ignore-field-manager", "out-of-band"]);
    s.wait("first sync", |f| {
        f.object("deployments", Some("web"), "web").is_some()
    });
    let shown = s.cli(&["app", "show", "web"]);
    assert!(shown.contains("*/* manager:out-of-band"), "{shown}");

    s.fake
        .patch_out_of_band(
            "deployments",
            Some("web"),
            "web",
            serde_json::json!({"spec": {"replicas": 5}}),
        )
        .unwrap();
    s.wait_passes(3);
    assert_eq!(replicas(&s), Some(5), "self-heal took the field back");
    s.wait_status("web", "synced with the other manager's field", |r| {
        r["sync"] == "Synced"
    });

    // Without the rule, self-heal takes it back.
    s.cli(&["app", "update", "web", "--ignore-field-manager", ""]);
    let app = s.hub.cli_json(&["app", "show", "web"]);
    assert!(app.get("ignore_differences").is_none(), "{app}");
    s.wait("replicas repaired", |f| {
        f.object("deployments", Some("web"), "web")
            .and_then(|o| o["spec"]["replicas"].as_i64())
            == Some(1)
    });
}

/// `--create-namespace=false`: a missing namespace fails the app with a
/// clear message and nothing is written; once someone creates it, the app
/// syncs into it (and never owns it). The setting goes through `export`
/// and `apply -f` as `createNamespace: false`.
#[test]
fn without_create_namespace_a_missing_namespace_fails_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = OneCluster::start_web(dir.path());
    s.create_web(&["--create-namespace=false"]);
    let missing = "namespace web does not exist and the app does not create it";
    s.wait_status("web", "the app fails on the missing namespace", |r| {
        r["message"].as_str().is_some_and(|m| m.contains(missing))
    });
    s.wait_passes(2);
    assert!(s.fake.object("namespaces", None, "web").is_none());
    assert_eq!(s.fake.writes(), vec![], "something was written");
    let table = s.hub.cli(&["status", "web"]).stdout;
    assert!(table.contains("namespace web does not exist"), "{table}");

    let exported = s.cli(&["export", "app"]);
    assert!(exported.contains("createNamespace: false"), "{exported}");

    // Someone creates it: the app syncs, and the namespace is not its own.
    s.fake
        .create_object(serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}}))
        .unwrap();
    s.wait("synced into the namespace", |f| {
        f.object("deployments", Some("web"), "web").is_some()
    });
    let ns = s.fake.object("namespaces", None, "web").unwrap();
    assert!(
        ns["metadata"]["labels"]["switchyard.dev/app"].is_null(),
        "{ns}"
    );

    // The App document turns it back on; export then leaves it out (the default).
    let doc = exported.replace("createNamespace: false\n", "");
    let file = dir.path().join("app.yaml");
    std::fs::write(&file, &doc).unwrap();
    s.cli(&["apply", "-f", file.to_str().unwrap()]);
    let app = s.hub.cli_json(&["app", "show", "web"]);
    assert_eq!(app["create_namespace"], true, "{app}");
    let off = doc.replace("spec:\n", "spec:\n  createNamespace: false\n");
    std::fs::write(&file, &off).unwrap();
    s.cli(&["apply", "-f", file.to_str().unwrap()]);
    let app = s.hub.cli_json(&["app", "show", "web"]);
    assert_eq!(app["create_namespace"], false, "{app}");
}

/// `PruneLast=true`: pruned in a final implicit wave, once every other
/// object of the app is healthy; other prunes do not wait.
#[test]
fn prune_last_waits_for_the_app_to_be_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let deployment = web_deployment(1);
    let last = config_map("last", "PruneLast=true");
    let plain = config_map("plain", "ServerSideApply=true");
    let mut s = OneCluster::start(
        dir.path(),
        &[
            ("web/deploy.yaml", &deployment),
            ("web/last.yaml", &last),
            ("web/plain.yaml", &plain),
        ],
    );
    s.create_web(&["--prune"]);
    s.wait("first sync", |f| {
        f.object("configmaps", Some("web"), "last").is_some()
            && f.object("configmaps", Some("web"), "plain").is_some()
    });
    // The Deployment has no status yet: Progressing.
    s.source.remove("web/last.yaml");
    s.source.remove("web/plain.yaml");
    s.commit("drop both");
    s.wait("the plain prune does not wait", |f| {
        f.object("configmaps", Some("web"), "plain").is_none()
    });
    s.wait_status("web", "PruneLast waits for health", |r| {
        message(r, "last").contains("PruneLast=true: pruned once the app is healthy")
    });
    s.wait_passes(2);
    assert!(
        s.fake.object("configmaps", Some("web"), "last").is_some(),
        "pruned before the app was healthy"
    );
    s.fake
        .set_status(
            "deployments",
            Some("web"),
            "web",
            serde_json::json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1}),
        )
        .unwrap();
    s.wait("pruned once healthy", |f| {
        f.object("configmaps", Some("web"), "last").is_none()
    });
    s.wait_status("web", "synced and healthy", |r| {
        r["sync"] == "Synced" && r["health"] == "Healthy"
    });
}

/// The app-level `--prune-last` (Argo CD's `syncOptions: [PruneLast=true]`):
/// every object that left Git waits for the others to be healthy.
#[test]
fn app_level_prune_last_defers_every_prune() {
    let dir = tempfile::tempdir().unwrap();
    let deployment = web_deployment(1);
    let plain = config_map("plain", "ServerSideApply=true");
    let mut s = OneCluster::start(
        dir.path(),
        &[("web/deploy.yaml", &deployment), ("web/plain.yaml", &plain)],
    );
    s.create_web(&["--prune", "--prune-last"]);
    s.wait("first sync", |f| {
        f.object("configmaps", Some("web"), "plain").is_some()
    });
    s.source.remove("web/plain.yaml");
    s.commit("drop plain");
    s.wait_status("web", "the prune waits for health", |r| {
        message(r, "plain").contains("PruneLast=true: pruned once the app is healthy")
    });
    assert!(s.fake.object("configmaps", Some("web"), "plain").is_some());
    s.fake
        .set_status(
            "deployments",
            Some("web"),
            "web",
            serde_json::json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1}),
        )
        .unwrap();
    s.wait("pruned once healthy", |f| {
        f.object("configmaps", Some("web"), "plain").is_none()
    });
    let exported = s.cli(&["export", "app"]);
    assert!(exported.contains("pruneLast: true"), "{exported}");
}
