//! What the agent asks of its API server, counted by the fake with its
//! per-request latency on: a first sync is one server-side apply per object
//! (plus a bounded number of lists and watches), a no-op pass sends no
//! request per object, drift is repaired from the watch without reads, an
//! expired watch (410 Gone) lists again, a kind the agent may not watch is
//! read object by object, and 429 answers are retried after Retry-After.

use serde_json::json;
use std::path::Path;
use std::time::Duration;
use switchyard_tests::cluster::OneCluster;
use switchyard_tests::fake_kube::{FakeKube, RecordedRequest};
use switchyard_tests::fleet::SOON;
use switchyard_tests::process::wait_until;

const CONFIGMAPS: usize = 24;
const DEPLOYMENTS: usize = 8;
const OBJECTS: usize = CONFIGMAPS + DEPLOYMENTS;
/// Per-request latency of the fake in these tests: a small real control plane.
const LATENCY: Duration = Duration::from_millis(5);

fn manifests() -> String {
    let mut text = String::new();
    for i in 0..CONFIGMAPS {
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-{i}\ndata:\n  k: v{i}\n"
        ));
    }
    for i in 0..DEPLOYMENTS {
        text.push_str(&format!(
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-{i}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: web-{i}}}\n  template:\n    metadata:\n      labels: {{app: web-{i}}}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n"
        ));
    }
    text
}

/// What a request is: `GET object`, `GET list`, `GET watch`, `GET
/// discovery`, or the method of a write.
fn shape(r: &RecordedRequest) -> &'static str {
    if r.method == "PATCH" {
        return "PATCH";
    }
    if r.method != "GET" {
        return "other write";
    }
    if r.is_watch() {
        return "GET watch";
    }
    let parts: Vec<&str> = r.path.trim_matches('/').split('/').collect();
    let rest = match parts.first() {
        Some(&"api") if parts.len() > 2 => &parts[2..],
        Some(&"apis") if parts.len() > 3 => &parts[3..],
        _ => return "GET discovery",
    };
    match rest {
        [_resource] | ["namespaces", _, _resource] => "GET list",
        _ => "GET object",
    }
}

fn count(requests: &[RecordedRequest], what: &str) -> usize {
    requests.iter().filter(|r| shape(r) == what).count()
}

fn describe(requests: &[RecordedRequest]) -> String {
    requests
        .iter()
        .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A hub, one agent applying to a fake API server with latency, and the app
/// `web` of [`OBJECTS`] objects in namespace `web`.
struct Setup(OneCluster);

impl std::ops::Deref for Setup {
    type Target = OneCluster;
    fn deref(&self) -> &OneCluster {
        &self.0
    }
}

impl std::ops::DerefMut for Setup {
    fn deref_mut(&mut self) -> &mut OneCluster {
        &mut self.0
    }
}

impl Setup {
    /// `prepare` runs on the fake before the agent starts; `agent_args`
    /// follow `--kubeconfig F`.
    fn new(dir: &Path, agent_args: &[&str], prepare: impl FnOnce(&FakeKube)) -> Setup {
        let objects = manifests();
        Setup(
            OneCluster::builder(dir)
                .file("web/all.yaml", &objects)
                .agent_args(agent_args)
                .before_agent(|fake| {
                    fake.set_latency(LATENCY);
                    prepare(fake);
                })
                .start(),
        )
    }

    /// `app create web … --namespace web --selector env=prod EXTRA…`.
    fn create_app(&self, extra: &[&str]) {
        let mut args = vec!["--selector", "env=prod"];
        args.extend_from_slice(extra);
        self.create_web(&args);
    }

    fn all_present(&self) -> bool {
        self.fake.objects("configmaps", Some("web")).len() == CONFIGMAPS
            && self.fake.objects("deployments", Some("web")).len() == DEPLOYMENTS
    }

    fn wait_synced(&mut self) {
        let hub = &self.hub;
        let synced = wait_until(SOON, || {
            hub.cli_json(&["status", "web"])
                .as_array()
                .and_then(|rows| rows.first().cloned())
                .is_some_and(|r| r["sync"] == "Synced")
        });
        let present = self.all_present();
        assert!(
            synced && present,
            "first sync incomplete; agent log:\n{}",
            self.agent.process().stderr_text()
        );
    }
}

#[test]
fn first_sync_is_one_apply_per_object_and_a_no_op_pass_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Setup::new(dir.path(), &["--resync-interval", "1s"], |_| {});
    s.fake.clear_requests();
    s.create_app(&[]);
    s.wait_synced();
    // Passes triggered by our own writes' watch events are done too.
    s.wait_passes(2);
    let requests = s.fake.requests();
    // One server-side apply per object and one for the app's namespace;
    // each object's path exactly once.
    let mut patched: Vec<&str> = requests
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.path.as_str())
        .collect();
    patched.sort_unstable();
    let applied = patched.len();
    patched.dedup();
    assert_eq!(
        (applied, patched.len()),
        (OBJECTS + 1, OBJECTS + 1),
        "{}",
        describe(&requests)
    );
    assert_eq!(
        count(&requests, "other write"),
        0,
        "{}",
        describe(&requests)
    );
    assert_eq!(count(&requests, "GET object"), 0, "{}", describe(&requests));
    // Three kinds (Namespace, ConfigMap, Deployment): the live view's list
    // and the pre-existence list of each, and a watch each (renewed at most
    // once or twice in this time).
    let lists = count(&requests, "GET list");
    let watches = count(&requests, "GET watch");
    assert!(lists <= 6, "{lists} lists:\n{}", describe(&requests));
    assert!(watches <= 9, "{watches} watches:\n{}", describe(&requests));
    // Applied concurrently: more than one request served at a time.
    assert!(
        s.fake.in_flight_high_water() > 2,
        "high water {}",
        s.fake.in_flight_high_water()
    );

    // No-op resyncs, every second: no request at all but the open watches.
    s.fake.clear_requests();
    s.wait_passes(3);
    let requests: Vec<RecordedRequest> = s
        .fake
        .requests()
        .into_iter()
        .filter(|r| !r.is_watch())
        .collect();
    assert!(requests.is_empty(), "{}", describe(&requests));
}

#[test]
fn drift_is_repaired_from_the_watch_without_reading_objects() {
    let dir = tempfile::tempdir().unwrap();
    // No periodic resync in this test's time: only the watch can see drift.
    let mut s = Setup::new(dir.path(), &["--resync-interval", "1h"], |_| {});
    s.create_app(&["--self-heal"]);
    s.wait_synced();
    std::thread::sleep(Duration::from_millis(1000));
    s.fake.clear_requests();
    s.fake
        .patch_out_of_band(
            "configmaps",
            Some("web"),
            "config-3",
            json!({"data": {"k": "changed"}}),
        )
        .unwrap();
    let started = std::time::Instant::now();
    let fake = &s.fake;
    let repaired = wait_until(SOON, || {
        fake.object("configmaps", Some("web"), "config-3")
            .is_some_and(|o| o["data"]["k"] == "v3")
    });
    let took = started.elapsed();
    assert!(
        repaired,
        "drift not repaired; agent log:\n{}",
        s.agent.process().stderr_text()
    );
    assert!(took < Duration::from_secs(5), "repair took {took:?}");
    std::thread::sleep(Duration::from_millis(1000));
    let requests = s.fake.requests();
    // The apply, and its forced retry once the conflict shows the field
    // was ours; nothing else written, nothing read object by object.
    let patches: Vec<&RecordedRequest> = requests.iter().filter(|r| r.method == "PATCH").collect();
    assert!(
        (1..=2).contains(&patches.len())
            && patches
                .iter()
                .all(|r| r.path == "/api/v1/namespaces/web/configmaps/config-3"),
        "{}",
        describe(&requests)
    );
    assert_eq!(count(&requests, "GET object"), 0, "{}", describe(&requests));
    assert_eq!(
        count(&requests, "other write"),
        0,
        "{}",
        describe(&requests)
    );
}

#[test]
fn an_expired_watch_lists_again_and_the_view_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    // Watches renewed every second; no bookmarks, so a renewal after a
    // compaction resumes from a version the server forgot: 410 Gone.
    let mut s = Setup::new(
        dir.path(),
        &["--resync-interval", "1s", "--watch-timeout", "1s"],
        |fake| fake.set_bookmark_interval(Duration::from_secs(3600)),
    );
    s.create_app(&["--self-heal"]);
    s.wait_synced();
    s.wait_passes(2);
    // Newer versions than any labelled object's, then forget the history.
    s.fake
        .create_object(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "unrelated", "namespace": "default"}}))
        .unwrap();
    s.fake.clear_requests();
    s.fake.compact();
    let fake = &s.fake;
    let relisted = wait_until(SOON, || {
        fake.requests().iter().any(|r| {
            shape(r) == "GET list"
                && r.path == "/api/v1/configmaps"
                && r.param("labelSelector") == Some("switchyard.dev%2Fapp")
        })
    });
    assert!(
        relisted,
        "no list after the compaction:\n{}",
        describe(&s.fake.requests())
    );
    // The view serves again: drift is repaired, and passes read nothing.
    s.fake
        .patch_out_of_band(
            "configmaps",
            Some("web"),
            "config-5",
            json!({"data": {"k": "changed"}}),
        )
        .unwrap();
    let fake = &s.fake;
    assert!(
        wait_until(SOON, || fake
            .object("configmaps", Some("web"), "config-5")
            .is_some_and(|o| o["data"]["k"] == "v5")),
        "drift after the re-list not repaired"
    );
    s.wait_passes(1);
    s.fake.clear_requests();
    s.wait_passes(2);
    let objects = count(&s.fake.requests(), "GET object");
    assert_eq!(objects, 0, "{}", describe(&s.fake.requests()));
}

#[test]
fn a_kind_the_agent_may_not_watch_is_read_object_by_object() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Setup::new(dir.path(), &["--resync-interval", "1s"], |fake| {
        fake.forbid_verb("configmaps", "list");
        fake.forbid_verb("configmaps", "watch");
    });
    s.create_app(&[]);
    s.wait_synced();
    s.wait_passes(1);
    s.fake.clear_requests();
    // Three more passes: the first may have begun before the clear, so at
    // least two complete ones are in the requests.
    s.wait_passes(3);
    let requests = s.fake.requests();
    let object_reads: Vec<&RecordedRequest> = requests
        .iter()
        .filter(|r| shape(r) == "GET object")
        .collect();
    // Every ConfigMap is read on every pass (no view to trust), no
    // Deployment is (its view is synced); nothing is written.
    assert!(
        object_reads.len() >= 2 * CONFIGMAPS
            && object_reads.iter().all(|r| r.path.contains("/configmaps/")),
        "{}",
        describe(&requests)
    );
    assert!(
        requests.iter().all(|r| !r.is_write()),
        "{}",
        describe(&requests)
    );
}

#[test]
fn throttled_requests_are_retried_after_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Setup::new(
        dir.path(),
        &["--resync-interval", "1s", "--apply-concurrency", "8"],
        |_| {},
    );
    // Slower answers and room for three at once: applying eight at once
    // meets 429 with Retry-After: 1.
    s.fake.set_latency(Duration::from_millis(30));
    s.fake.set_max_in_flight(Some(3), 1);
    s.fake.clear_requests();
    s.create_app(&[]);
    s.wait_synced();
    let throttled = s.fake.throttled_requests();
    assert!(!throttled.is_empty(), "nothing was throttled");
    let requests = s.fake.requests();
    for t in &throttled {
        let again = requests.iter().find(|r| {
            r.at > t.at && r.method == t.method && r.path == t.path && r.query == t.query
        });
        // Not retried (a watch the agent gave up on): nothing to check.
        let Some(again) = again else { continue };
        let waited = again.at - t.at;
        assert!(
            waited >= Duration::from_millis(950),
            "{} {} retried after {waited:?}",
            t.method,
            t.path
        );
    }
    let patches_throttled = throttled.iter().filter(|r| r.method == "PATCH").count();
    assert!(
        patches_throttled > 0,
        "no apply was throttled: {}",
        describe(&throttled)
    );
}
