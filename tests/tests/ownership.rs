//! What the agent may delete, end to end with the real hub and agent and the
//! fake API server: only an explicit, readable change of desired state
//! deletes, and only objects Switchyard created (docs/SECURITY.md, "What the
//! agent deletes"). Damaged caches, failing discovery, pre-existing and
//! adopted objects, other apps' objects and other field managers' fields.

use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use switchyard_tests::cluster::OneCluster;
use switchyard_tests::fake_kube::FakeKube;
use switchyard_tests::fleet::{SOON, TestHub};
use switchyard_tests::git_server::GitRepoBuilder;
use switchyard_tests::manifests::{WEB_CONFIG, WIDGET, WIDGET_CRD};
use switchyard_tests::process::wait_until;

fn resource_row<'a>(status: &'a Value, kind: &str, name: &str) -> Option<&'a Value> {
    status["resources"]
        .as_array()?
        .iter()
        .find(|r| r["kind"] == kind && r["name"] == name)
}

/// Bring the hub back and check the agent re-fetches what it lost and
/// enforces again.
fn hub_returns_and_the_app_resumes(s: &mut OneCluster) {
    s.hub.kill9_and_restart();
    assert!(s.hub.wait_connected("edge", true));
    s.wait_status("web", "synced again after the hub returned", |r| {
        r["sync"] == "Synced"
    });
}

/// Scenario (A) of issue 14: one cached bundle is damaged while the agent
/// and the hub are down. The restarted agent must not take the app for
/// unassigned: nothing is deleted, and once the hub is back the agent
/// fetches the bundle again and resumes.
#[test]
fn a_damaged_cached_bundle_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = OneCluster::start_web(dir.path());
    s.create_web(&["--prune"]);
    s.wait("first sync", |f| {
        f.object("deployments", Some("web"), "web").is_some()
            && f.object("configmaps", Some("web"), "web-config").is_some()
    });

    s.hub.process.kill9();
    s.agent.stop();
    let bundles = s.agent.state_dir.join("cache/bundles");
    let mut damaged = 0;
    for entry in std::fs::read_dir(&bundles).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        damaged += 1;
    }
    assert_eq!(damaged, 1, "one app, one cached bundle");
    s.fake.clear_requests();

    let kubeconfig = s.kubeconfig.clone();
    s.agent.start_applying(&kubeconfig);
    assert!(
        s.agent.process().wait_for_log(
            "bundle unreadable; app not enforced and nothing of it pruned",
            SOON
        ),
        "{}",
        s.agent.process().stderr_text()
    );
    // Several resync passes (one a second) with the hub still down.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        s.deletes(),
        Vec::<String>::new(),
        "the agent deleted objects"
    );
    assert!(s.fake.object("deployments", Some("web"), "web").is_some());
    assert!(
        s.fake
            .object("configmaps", Some("web"), "web-config")
            .is_some()
    );
    assert!(s.agent.process().is_running());

    hub_returns_and_the_app_resumes(&mut s);
    assert_eq!(s.deletes(), Vec::<String>::new());
}

/// Scenario (A) seen from the hub: the cached bundle of a stopped agent is
/// damaged while its hub is down. When the hub comes back, the agent first
/// reports how things stand, so `switchyard status` shows the app Unknown
/// with the reason, and only then fetches the bundle again. The API server
/// answers slowly here, so the pass after the fetch takes seconds and the
/// Unknown stays visible long enough to be read; nothing is deleted at any
/// point, and the app is Synced once the API server is fast again.
#[test]
fn a_damaged_cached_bundle_is_reported_unknown_at_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = OneCluster::start_web(dir.path());
    s.create_web(&["--prune"]);
    s.wait_status("web", "first sync", |r| r["sync"] == "Synced");

    s.hub.process.kill9();
    s.agent.stop();
    for entry in std::fs::read_dir(s.agent.state_dir.join("cache/bundles")).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    }
    s.fake.clear_requests();
    let kubeconfig = s.kubeconfig.clone();
    s.agent.start_applying(&kubeconfig);
    assert!(
        s.agent.process().wait_for_log(
            "bundle unreadable; app not enforced and nothing of it pruned",
            SOON
        ),
        "{}",
        s.agent.process().stderr_text()
    );

    s.fake.set_delay(Duration::from_secs(2));
    s.hub.kill9_and_restart();
    s.wait_status("web", "Unknown with the reason at the hub", |r| {
        r["sync"] == "Unknown"
            && r["message"].as_str().is_some_and(|e| {
                e.contains("desired state unreadable, nothing applied or pruned")
                    && e.contains("damaged")
            })
    });
    assert_eq!(
        s.deletes(),
        Vec::<String>::new(),
        "the agent deleted objects"
    );

    s.fake.set_delay(Duration::ZERO);
    s.wait_status("web", "synced once the bundle is back", |r| {
        r["sync"] == "Synced"
    });
    assert_eq!(s.deletes(), Vec::<String>::new());
    assert!(s.fake.object("deployments", Some("web"), "web").is_some());
}

/// The agent reports before it fetches: here the fetch cannot succeed (the
/// cached bundle is gone and the cache's bundle dir is a read-only mount in
/// a mount namespace the test makes, so the fetched bundle cannot be
/// stored), yet the hub shows the app Unknown with the reason, and nothing
/// is deleted. An agent that fetched first never reported at all.
#[test]
fn the_hub_hears_of_an_unreadable_bundle_even_when_the_fetch_fails() {
    let probe = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: no mount namespace for the test");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut s = OneCluster::start_web(dir.path());
    s.create_web(&["--prune"]);
    s.wait_status("web", "first sync", |r| r["sync"] == "Synced");

    s.hub.process.kill9();
    s.agent.stop();
    let bundles = s.agent.state_dir.join("cache/bundles");
    for entry in std::fs::read_dir(&bundles).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    // As the agent's next start would make it; read-only, it cannot.
    std::fs::set_permissions(
        &bundles,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    s.fake.clear_requests();
    let script = r#"dir="$1"; shift
mount --bind "$dir" "$dir" && mount -o remount,bind,ro "$dir" "$dir" || exit 99
exec "$@""#;
    let args: Vec<String> = [
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
        bundles.to_str().unwrap(),
        switchyard_tests::process::binary("switchyard-agent")
            .to_str()
            .unwrap(),
        "run",
        "--kubeconfig",
        s.kubeconfig.to_str().unwrap(),
        "--resync-interval",
        "1s",
        "--max-backoff",
        "1s",
        "--state-dir",
        s.agent.state_dir.to_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec();
    let agent = switchyard_tests::process::Process::spawn(
        Path::new("unshare"),
        &args,
        &[],
        &dir.path().join("logs"),
        "agent-read-only-bundles",
    );
    assert!(
        agent.wait_for_log("bundle unavailable; app not enforced", SOON),
        "{}",
        agent.stderr_text()
    );

    s.hub.kill9_and_restart();
    assert!(
        agent.wait_for_log("refusing a bundle", SOON),
        "the fetched bundle was stored after all: {}",
        agent.stderr_text()
    );
    let ok = wait_until(SOON, || {
        s.status("web").first().is_some_and(|r| {
            r["sync"] == "Unknown"
                && r["message"].as_str().is_some_and(|e| {
                    e.contains("desired state unreadable, nothing applied or pruned")
                        && e.contains("missing or damaged")
                })
        })
    });
    assert!(
        ok,
        "the hub never heard: {:?}\nagent log:\n{}",
        s.status("web"),
        agent.stderr_text()
    );
    assert_eq!(
        s.deletes(),
        Vec::<String>::new(),
        "the agent deleted objects"
    );
    assert!(s.fake.object("deployments", Some("web"), "web").is_some());
}

/// A damaged cached assignment: the agent enforces and prunes nothing until
/// the hub sends a fresh assignment, then resumes.
#[test]
fn a_damaged_cached_assignment_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = OneCluster::start_web(dir.path());
    s.create_web(&["--prune"]);
    s.wait("first sync", |f| {
        f.object("deployments", Some("web"), "web").is_some()
    });

    s.hub.process.kill9();
    s.agent.stop();
    let assignment = s.agent.state_dir.join("cache/assignment.json");
    std::fs::write(
        &assignment,
        b"{\"generation\": 3, \"items\": [{\"app\": \"we",
    )
    .unwrap();
    s.fake.clear_requests();

    let kubeconfig = s.kubeconfig.clone();
    s.agent.start_applying(&kubeconfig);
    assert!(
        s.agent
            .process()
            .wait_for_log("assignment unreadable; enforcing and pruning nothing", SOON),
        "{}",
        s.agent.process().stderr_text()
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        s.deletes(),
        Vec::<String>::new(),
        "the agent deleted objects"
    );
    assert!(s.fake.object("deployments", Some("web"), "web").is_some());

    hub_returns_and_the_app_resumes(&mut s);
    assert_eq!(s.deletes(), Vec::<String>::new());
    let cached: Value = serde_json::from_slice(&std::fs::read(&assignment).unwrap())
        .expect("the fresh assignment replaced the damaged one");
    assert_eq!(cached["items"][0]["app"], "web");
}

/// Discovery of one kind fails during a pass (once, then persistently): the
/// object is Unknown, reported with the reason, and never pruned although
/// prune is on; when discovery works again the object is Synced.
#[test]
fn a_failing_discovery_prunes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = OneCluster::start_web(dir.path());
    s.source.write("web/crd.yaml", WIDGET_CRD);
    s.source.write("web/widget.yaml", WIDGET);
    s.commit("a widget");
    s.create_web(&["--prune"]);
    s.wait("widget applied", |f| {
        f.object("widgets.example.com", Some("web"), "gizmo")
            .is_some()
    });
    s.wait_status("web", "first sync", |r| r["sync"] == "Synced");

    // A restarted agent resolves kinds afresh; the first lookup of the
    // widget's kind fails, the next succeeds.
    s.agent.stop();
    s.fake.clear_requests();
    s.fake.fail_discovery("example.com", "v1", 500, Some(1));
    let kubeconfig = s.kubeconfig.clone();
    s.agent.start_applying(&kubeconfig);
    assert!(
        wait_until(SOON, || s
            .fake
            .requests()
            .iter()
            .filter(|r| r.path == "/apis/example.com/v1")
            .count()
            >= 2),
        "discovery was not asked again"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        s.deletes(),
        Vec::<String>::new(),
        "the agent pruned objects"
    );
    assert!(
        s.fake
            .object("widgets.example.com", Some("web"), "gizmo")
            .is_some()
    );

    // Persistently failing discovery: Unknown, with the reason, at the hub.
    s.agent.stop();
    s.fake.fail_discovery("example.com", "v1", 500, None);
    let kubeconfig = s.kubeconfig.clone();
    s.agent.start_applying(&kubeconfig);
    s.wait_status("web", "the widget reported Unknown", |r| {
        resource_row(r, "Widget", "gizmo").is_some_and(|w| {
            w["sync"] == "Unknown"
                && w["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("kind not resolved"))
        })
    });
    assert_eq!(
        s.deletes(),
        Vec::<String>::new(),
        "the agent pruned objects"
    );
    s.fake.clear_discovery_faults();
    s.wait_status("web", "synced once discovery works", |r| {
        r["sync"] == "Synced"
    });
    assert_eq!(s.deletes(), Vec::<String>::new());
}

/// Discovery of one kind answers 503 (an aggregated API server that is
/// down) on every request. kube-rs by itself retries a 503 with backoff for
/// minutes inside one pass; the agent bounds it: within the test's patience
/// the widget is reported Unknown with the 503 as the reason, nothing is
/// pruned, and once discovery works the app is Synced again.
#[test]
fn a_discovery_answering_503_is_bounded_and_prunes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = OneCluster::start_web(dir.path());
    s.source.write("web/crd.yaml", WIDGET_CRD);
    s.source.write("web/widget.yaml", WIDGET);
    s.commit("a widget");
    s.create_web(&["--prune"]);
    // The hub may deploy the commit before the widget's first.
    s.wait("widget applied", |f| {
        f.object("widgets.example.com", Some("web"), "gizmo")
            .is_some()
    });
    s.wait_status("web", "first sync", |r| {
        r["sync"] == "Synced" && resource_row(r, "Widget", "gizmo").is_some()
    });

    // A restarted agent resolves kinds afresh.
    s.agent.stop();
    s.fake.clear_requests();
    s.fake.fail_discovery("example.com", "v1", 503, None);
    let kubeconfig = s.kubeconfig.clone();
    s.agent.start_applying(&kubeconfig);
    s.wait_status("web", "the widget reported Unknown with the 503", |r| {
        resource_row(r, "Widget", "gizmo").is_some_and(|w| {
            w["sync"] == "Unknown"
                && w["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("kind not resolved") && m.contains("503"))
        })
    });
    let asked = s
        .fake
        .requests()
        .iter()
        .filter(|r| r.path == "/apis/example.com/v1")
        .count();
    assert!(asked >= 3, "discovery asked {asked} times");
    assert_eq!(
        s.deletes(),
        Vec::<String>::new(),
        "the agent pruned objects"
    );
    assert!(
        s.fake
            .object("widgets.example.com", Some("web"), "gizmo")
            .is_some()
    );

    s.fake.clear_discovery_faults();
    s.wait_status("web", "synced once discovery works", |r| {
        r["sync"] == "Synced"
    });
    assert_eq!(s.deletes(), Vec::<String>::new());
}

const SHARED_NS: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: shared
";

const OURS_IN_SHARED: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: ours
  namespace: shared
data:
  k: v
";

/// A Namespace and, inside it, another team's ConfigMap, both there before
/// Switchyard.
fn seed_shared_namespace(fake: &FakeKube) {
    fake.create_object(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shared"}}),
    )
    .unwrap();
    fake.create_object(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "stranger", "namespace": "shared"}, "data": {"team": "other"}}))
        .unwrap();
}

fn shared_survives(fake: &FakeKube) {
    assert!(
        fake.object("namespaces", None, "shared").is_some(),
        "the pre-existing Namespace was deleted"
    );
    assert!(
        fake.object("configmaps", Some("shared"), "stranger")
            .is_some(),
        "another team's ConfigMap was deleted"
    );
}

/// Scenario (B) of issue 14: an app lists a Namespace that existed before.
/// Without --adopt it is left alone (reported); the app's own object inside
/// it is created and, once removed from Git, pruned; the Namespace and the
/// stranger inside survive that prune and the app's deletion, while what
/// the app created is deleted. A Namespace the app created is pruned only
/// once --prune-namespaces is set.
#[test]
fn a_pre_existing_namespace_and_its_contents_survive_prune_and_app_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = OneCluster::start_web(dir.path());
    seed_shared_namespace(&s.fake);
    s.source.write("web/shared-ns.yaml", SHARED_NS);
    s.source.write("web/ours.yaml", OURS_IN_SHARED);
    s.source.write(
        "web/fresh-ns.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: fresh\n",
    );
    s.commit("shared namespace, ours inside, a fresh namespace");
    s.create_web(&["--prune"]);
    s.wait("the app's objects created", |f| {
        f.object("configmaps", Some("shared"), "ours").is_some()
            && f.object("namespaces", None, "fresh").is_some()
            && f.object("deployments", Some("web"), "web").is_some()
    });
    s.wait_status(
        "web",
        "the pre-existing Namespace reported, not adopted",
        |r| {
            resource_row(r, "Namespace", "shared").is_some_and(|row| {
                row["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("not adopted"))
            })
        },
    );
    let shared = s.fake.object("namespaces", None, "shared").unwrap();
    assert!(
        shared["metadata"]["labels"]["switchyard.dev/app"].is_null(),
        "a pre-existing Namespace was adopted without --adopt: {shared}"
    );
    let ours = s.fake.object("configmaps", Some("shared"), "ours").unwrap();
    assert_eq!(
        ours["metadata"]["annotations"]["switchyard.dev/created-by"],
        "web"
    );

    // Removed from Git: what the app created is pruned, but not a Namespace
    // (not without --prune-namespaces), and nothing that existed before.
    s.source.remove("web/shared-ns.yaml");
    s.source.remove("web/ours.yaml");
    s.source.remove("web/fresh-ns.yaml");
    s.commit("drop them");
    s.wait("the app's ConfigMap pruned", |f| {
        f.object("configmaps", Some("shared"), "ours").is_none()
    });
    s.wait_status("web", "the created Namespace kept and reported", |r| {
        resource_row(r, "Namespace", "fresh").is_some_and(|row| {
            row["message"]
                .as_str()
                .is_some_and(|m| m.contains("--prune-namespaces"))
        })
    });
    assert!(s.fake.object("namespaces", None, "fresh").is_some());
    shared_survives(&s.fake);
    s.cli(&["app", "update", "web", "--prune-namespaces"]);
    s.wait("the created Namespace pruned once allowed", |f| {
        f.object("namespaces", None, "fresh").is_none()
    });
    shared_survives(&s.fake);

    // The app is deleted: what it created goes, the rest stays.
    s.cli(&["app", "delete", "web"]);
    s.wait("the app's objects deleted", |f| {
        f.object("deployments", Some("web"), "web").is_none()
            && f.object("configmaps", Some("web"), "web-config").is_none()
    });
    shared_survives(&s.fake);
    std::thread::sleep(Duration::from_secs(2));
    shared_survives(&s.fake);
}

/// With --adopt (and even --prune-namespaces) the pre-existing Namespace is
/// adopted, yet never deleted: neither when it leaves Git nor when the app
/// is deleted, since Switchyard did not create it.
#[test]
fn an_adopted_namespace_is_never_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = OneCluster::start_web(dir.path());
    seed_shared_namespace(&s.fake);
    s.source.write("web/shared-ns.yaml", SHARED_NS);
    s.source.write("web/ours.yaml", OURS_IN_SHARED);
    s.commit("shared namespace, ours inside");
    s.create_web(&["--prune", "--adopt", "--prune-namespaces"]);
    s.wait("the Namespace adopted", |f| {
        f.object("namespaces", None, "shared")
            .is_some_and(|ns| ns["metadata"]["labels"]["switchyard.dev/app"] == "web")
            && f.object("configmaps", Some("shared"), "ours").is_some()
    });
    let shared = s.fake.object("namespaces", None, "shared").unwrap();
    assert!(
        shared["metadata"]["annotations"]["switchyard.dev/created-by"].is_null(),
        "an adopted object carries a creation record: {shared}"
    );
    s.wait_status("web", "synced", |r| r["sync"] == "Synced");

    s.source.remove("web/shared-ns.yaml");
    s.commit("drop the namespace from Git");
    std::thread::sleep(Duration::from_secs(3));
    shared_survives(&s.fake);
    assert!(
        s.fake
            .object("configmaps", Some("shared"), "ours")
            .is_some()
    );

    s.cli(&["app", "delete", "web"]);
    s.wait("the app's objects deleted", |f| {
        f.object("configmaps", Some("shared"), "ours").is_none()
            && f.object("deployments", Some("web"), "web").is_none()
    });
    std::thread::sleep(Duration::from_secs(2));
    shared_survives(&s.fake);
    assert!(
        !s.deletes()
            .iter()
            .any(|d| d.ends_with("/namespaces/shared")),
        "{:?}",
        s.deletes()
    );
}

/// The app's `--namespace` is created through the creation record like
/// any object. Here someone else creates `web` between the agent's read
/// (404) and its create, which the server then answers 200, not 201: the
/// Namespace keeps none of Switchyard's marks, and neither app deletion nor
/// `--prune-namespaces` deletes it or another team's ConfigMap inside.
#[test]
fn a_namespace_created_by_someone_else_in_the_race_is_not_the_apps() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = OneCluster::start_web(dir.path());
    s.fake.create_before_next_write(
        "/api/v1/namespaces/web",
        json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "web", "labels": {"team": "other"}}}),
    );
    s.create_web(&["--prune", "--prune-namespaces"]);
    s.wait("the app's objects created", |f| {
        f.object("deployments", Some("web"), "web").is_some()
            && f.object("configmaps", Some("web"), "web-config").is_some()
    });
    assert!(
        s.fake
            .writes()
            .iter()
            .any(|w| w.path == "/api/v1/namespaces/web"),
        "the agent never tried to create the namespace: {:?}",
        s.fake.writes()
    );
    s.fake
        .create_object(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "stranger", "namespace": "web"}, "data": {"team": "other"}}))
        .unwrap();
    s.wait_status("web", "synced", |r| r["sync"] == "Synced");
    let ns = s.fake.object("namespaces", None, "web").unwrap();
    let labels = &ns["metadata"]["labels"];
    assert_eq!(labels["team"], "other", "{ns}");
    assert!(
        labels["switchyard.dev/app"].is_null() && labels["app.kubernetes.io/managed-by"].is_null(),
        "someone else's Namespace was labelled as Switchyard's: {ns}"
    );
    let annotations = &ns["metadata"]["annotations"];
    assert!(
        annotations["switchyard.dev/created-by"].is_null()
            && annotations["switchyard.dev/hub"].is_null(),
        "someone else's Namespace keeps Switchyard's annotations: {ns}"
    );

    s.cli(&["app", "delete", "web"]);
    s.wait("the app's objects deleted", |f| {
        f.object("deployments", Some("web"), "web").is_none()
            && f.object("configmaps", Some("web"), "web-config").is_none()
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        s.fake.object("namespaces", None, "web").is_some(),
        "the Namespace someone else created was deleted"
    );
    assert!(
        s.fake
            .object("configmaps", Some("web"), "stranger")
            .is_some(),
        "another team's ConfigMap was deleted"
    );
    assert!(
        !s.deletes().iter().any(|d| d.ends_with("/namespaces/web")),
        "{:?}",
        s.deletes()
    );
}

/// A `--namespace` the app created (answered 201) is the app's: deleted
/// with the app when `--prune-namespaces` allows it, kept otherwise. A
/// `--namespace` that existed before is used, not labelled, not deleted.
#[test]
fn the_apps_namespace_goes_with_it_only_if_it_created_it_and_may_prune_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = OneCluster::start_web(dir.path());
    seed_shared_namespace(&s.fake);
    let create = |app: &str, namespace: &str, extra: &[&str]| {
        let mut args = vec![
            "app",
            "create",
            app,
            "--repo",
            "fleet",
            "--path",
            "web",
            "--namespace",
            namespace,
            "--prune",
        ];
        args.extend_from_slice(extra);
        s.cli(&args);
    };
    create("kept", "kept", &[]);
    create("gone", "gone", &["--prune-namespaces"]);
    create("there", "shared", &["--prune-namespaces"]);
    s.wait("the apps deployed", |f| {
        ["kept", "gone", "shared"]
            .iter()
            .all(|ns| f.object("deployments", Some(ns), "web").is_some())
    });
    for ns in ["kept", "gone"] {
        let live = s.fake.object("namespaces", None, ns).unwrap();
        assert_eq!(
            live["metadata"]["annotations"]["switchyard.dev/created-by"], ns,
            "{live}"
        );
        assert_eq!(
            live["metadata"]["labels"]["switchyard.dev/app"], ns,
            "{live}"
        );
    }
    let shared = s.fake.object("namespaces", None, "shared").unwrap();
    assert!(
        shared["metadata"]["labels"]
            .get("switchyard.dev/app")
            .is_none()
            && shared["metadata"]["annotations"]
                .get("switchyard.dev/created-by")
                .is_none(),
        "a pre-existing --namespace was marked as the app's: {shared}"
    );

    for app in ["kept", "gone", "there"] {
        s.cli(&["app", "delete", app]);
    }
    s.wait("the namespace the app created and may prune deleted", |f| {
        f.object("namespaces", None, "gone").is_none()
    });
    s.wait("the apps' deployments deleted", |f| {
        ["kept", "shared"]
            .iter()
            .all(|ns| f.object("deployments", Some(ns), "web").is_none())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        s.fake.object("namespaces", None, "kept").is_some(),
        "deleted without --prune-namespaces"
    );
    shared_survives(&s.fake);
}

/// A field another manager owns is not overwritten: the conflict is
/// reported with the field and the manager; with --force-conflicts the app
/// takes it over. (Self-heal of Switchyard's own fields after drift, which
/// forces, is covered in reconcile.rs.)
#[test]
fn another_managers_field_is_reported_not_overwritten_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = OneCluster::start_web(dir.path());
    s.create_web(&["--self-heal"]);
    s.wait("first sync", |f| {
        f.object("configmaps", Some("web"), "web-config").is_some()
    });
    s.fake
        .patch_out_of_band(
            "configmaps",
            Some("web"),
            "web-config",
            json!({"data": {"owner": "theirs"}}),
        )
        .unwrap();
    s.source
        .write("web/config.yaml", format!("{WEB_CONFIG}  owner: ours\n"));
    s.commit("Git wants the field too");
    s.wait_status("web", "the conflict reported", |r| {
        resource_row(r, "ConfigMap", "web-config").is_some_and(|row| {
            row["message"].as_str().is_some_and(|m| {
                m.contains(".data.owner")
                    && m.contains("out-of-band")
                    && m.contains("--force-conflicts")
            })
        })
    });
    let data = |s: &OneCluster| {
        s.fake
            .object("configmaps", Some("web"), "web-config")
            .unwrap()["data"]
            .clone()
    };
    assert_eq!(
        data(&s)["owner"],
        "theirs",
        "another manager's field was overwritten"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        data(&s)["owner"],
        "theirs",
        "another manager's field was overwritten"
    );

    s.cli(&["app", "update", "web", "--force-conflicts"]);
    s.wait("taken over with --force-conflicts", |f| {
        f.object("configmaps", Some("web"), "web-config")
            .is_some_and(|c| c["data"]["owner"] == "ours")
    });
    s.wait_status("web", "synced after forcing", |r| r["sync"] == "Synced");
}

/// The four opt-ins travel through `app create`/`app update`, `app show`,
/// `export` (only when on) and `apply -f` (an export applied back changes
/// nothing).
#[test]
fn the_opt_ins_flow_through_the_cli_export_and_apply() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    let source = GitRepoBuilder::new();
    source.write("web/config.yaml", WEB_CONFIG);
    source.commit("web");
    source.publish(&served, "fleet");
    let hub = TestHub::start(dir.path(), &[]);
    let url = format!("file://{}", served.join("fleet.git").display());
    let ok = |args: &[&str]| {
        let out = hub.cli(args);
        assert!(out.success(), "switchyard {args:?}: {}", out.stderr);
        out.stdout
    };
    ok(&["repo", "add", "fleet", &url]);
    let opts = |app: &str| {
        let shown = hub.cli_json(&["app", "show", app]);
        ["adopt", "prune_namespaces", "prune_crds", "force_conflicts"].map(|k| {
            shown[k]
                .as_bool()
                .unwrap_or_else(|| panic!("{k} in {shown}"))
        })
    };
    ok(&[
        "app",
        "create",
        "web",
        "--repo",
        "fleet",
        "--path",
        "web",
        "--adopt",
        "--prune-crds",
    ]);
    assert_eq!(opts("web"), [true, false, true, false]);
    ok(&["app", "update", "web", "--no-adopt", "--force-conflicts"]);
    assert_eq!(opts("web"), [false, false, true, true]);
    assert!(ok(&["app", "show", "web"]).contains("prune-crds, force-conflicts"));

    let exported = ok(&["export", "app"]);
    assert!(exported.contains("pruneCrds: true"), "{exported}");
    assert!(exported.contains("forceConflicts: true"), "{exported}");
    assert!(!exported.contains("adopt"), "{exported}");
    assert!(!exported.contains("pruneNamespaces"), "{exported}");
    let file = dir.path().join("export.yaml");
    std::fs::write(&file, &exported).unwrap();
    assert_eq!(
        ok(&["apply", "-f", file.to_str().unwrap()]).trim(),
        "app/web unchanged"
    );

    let doc = dir.path().join("api.yaml");
    std::fs::write(
        &doc,
        "apiVersion: switchyard.dev/v1\nkind: App\nmetadata:\n  name: api\nspec:\n  repo: fleet\n  path: web\n  adopt: true\n  pruneNamespaces: true\n",
    )
    .unwrap();
    ok(&["apply", "-f", doc.to_str().unwrap()]);
    assert_eq!(opts("api"), [true, true, false, false]);
}

/// Argo CD's `sync-options: Prune=false` (and Switchyard's own annotation)
/// keeps an object when it leaves Git, even with prune on; the object next
/// to it without the option is pruned.
#[test]
fn an_object_marked_prune_false_stays_when_it_leaves_git() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = OneCluster::start_web(dir.path());
    s.source.write(
        "web/keep.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: keep\n  annotations:\n    argocd.argoproj.io/sync-options: Prune=false\ndata:\n  k: v\n",
    );
    s.commit("a ConfigMap that must outlive its manifest");
    s.create_web(&["--prune"]);
    s.wait("first sync", |f| {
        f.object("configmaps", Some("web"), "keep").is_some()
            && f.object("configmaps", Some("web"), "web-config").is_some()
    });

    s.source.remove("web/keep.yaml");
    s.source.remove("web/config.yaml");
    s.commit("drop both ConfigMaps");
    s.wait("the unmarked ConfigMap pruned", |f| {
        f.object("configmaps", Some("web"), "web-config").is_none()
    });
    s.wait_status("web", "the kept one reported with its reason", |r| {
        resource_row(r, "ConfigMap", "keep").is_some_and(|row| {
            row["message"]
                .as_str()
                .is_some_and(|m| m.contains("Prune=false"))
        })
    });
    assert!(
        s.fake.object("configmaps", Some("web"), "keep").is_some(),
        "deletes: {:?}",
        s.deletes()
    );
    assert!(
        !s.deletes().iter().any(|d| d.ends_with("/configmaps/keep")),
        "{:?}",
        s.deletes()
    );
}
