//! The enrolled link end to end: notifications over the agent's own
//! connection, certificate renewal, removal and revocation, and a hub killed
//! with SIGKILL.

use std::time::{Duration, Instant};
use switchyard_tests::fleet::{SOON, TestAgent, TestHub, add_demo_app};
use switchyard_tests::process::wait_until;

fn enrolled_running_agent(dir: &std::path::Path, hub: &TestHub, name: &str) -> TestAgent {
    hub.connect_agent(dir, name, &[])
}

#[test]
fn label_changes_reach_the_agent_through_a_hub_opened_stream() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &[]);
    let mut agent = enrolled_running_agent(dir.path(), &hub, "edge-1");
    assert!(
        agent
            .process()
            .wait_for_stdout("assignment generation 1: no apps assigned", SOON)
    );
    let _source = add_demo_app(&hub, dir.path(), "env=prod");

    // The label makes the app target the cluster; the hub tells the agent
    // on a stream it opens over the agent's own connection.
    let labeled = hub.cli(&["cluster", "label", "edge-1", "env=prod", "zone=a"]);
    assert!(labeled.success(), "{}", labeled.stderr);
    assert!(
        agent
            .process()
            .wait_for_stdout("would apply ConfigMap demo", SOON),
        "the agent was not notified:\n{}",
        agent.process().stderr_text()
    );
    assert!(
        agent
            .process()
            .stderr_text()
            .contains("notified by the hub")
    );
    let removed = hub.cli(&["cluster", "label", "edge-1", "env-"]);
    assert!(removed.success(), "{}", removed.stderr);
    assert!(
        agent
            .process()
            .wait_for_stdout("assignment generation 3: no apps assigned", SOON)
    );
    let cluster = hub.cluster("edge-1");
    assert_eq!(cluster["labels"], serde_json::json!({"zone": "a"}));
    assert_eq!(cluster["generation"], 3);

    // Invalid labels are refused with the rule that was broken.
    let bad = hub.cli(&["cluster", "label", "edge-1", "bad key=x"]);
    assert!(!bad.success());
    assert!(bad.stderr.contains("invalid label"), "{}", bad.stderr);
}

#[test]
fn certificates_are_renewed_over_the_link_before_they_expire() {
    let dir = tempfile::tempdir().unwrap();
    // A 9 s lifetime: the agent renews after 6 s.
    let hub = TestHub::start(dir.path(), &["--cert-ttl", "9s"]);
    let mut agent = enrolled_running_agent(dir.path(), &hub, "edge-1");
    let first_expiry = hub.cluster("edge-1")["cert_expires"].clone();
    assert!(
        agent.process().wait_for_log("certificate renewed", SOON),
        "no renewal:\n{}",
        agent.process().stderr_text()
    );
    assert!(wait_until(SOON, || hub.cluster("edge-1")["cert_expires"]
        != first_expiry));

    // After the first certificate's lifetime has passed, a restarted agent
    // still gets in: with the renewed certificate.
    std::thread::sleep(Duration::from_secs(4));
    agent.stop();
    assert!(hub.wait_connected("edge-1", false));
    agent.start();
    assert!(
        hub.wait_connected("edge-1", true),
        "agent with a renewed certificate was refused:\n{}",
        agent.process().stderr_text()
    );
}

#[test]
fn a_removed_cluster_is_cut_off_at_once_and_cannot_return() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &[]);
    let mut doomed = enrolled_running_agent(dir.path(), &hub, "doomed");
    let mut bystander = enrolled_running_agent(dir.path(), &hub, "bystander");

    let removed_at = Instant::now();
    let out = hub.cli(&["cluster", "remove", "doomed"]);
    assert!(out.success(), "{}", out.stderr);
    assert!(
        doomed
            .process()
            .wait_for_log("cluster removed from the hub", SOON),
        "the agent never saw its connection closed:\n{}",
        doomed.process().stderr_text()
    );
    eprintln!(
        "removal noticed by the agent after {:?}",
        removed_at.elapsed()
    );

    // The agent retries once, is refused as revoked, and exits non-zero.
    let status = doomed
        .process()
        .wait_exit(SOON)
        .expect("revoked agent kept running");
    assert!(!status.success());
    assert!(
        doomed
            .process()
            .stderr_text()
            .contains("no longer accepts this agent's certificate"),
        "{}",
        doomed.process().stderr_text()
    );
    // Starting it again does not help.
    doomed.start();
    let status = doomed
        .process()
        .wait_exit(SOON)
        .expect("revoked agent kept running");
    assert!(!status.success());
    let listed = hub.cli(&["cluster", "show", "doomed"]);
    assert!(
        !listed.success() && listed.stderr.contains("not found"),
        "{}",
        listed.stderr
    );

    // The other agent never noticed.
    assert!(hub.is_connected("bystander"));
    assert!(bystander.process().is_running());
    assert!(
        !bystander
            .process()
            .stderr_text()
            .contains("connection to the hub failed")
    );
}

#[test]
fn agents_reconnect_by_themselves_after_the_hub_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let mut hub = TestHub::start(dir.path(), &[]);
    let mut agents: Vec<TestAgent> = ["edge-1", "edge-2", "edge-3"]
        .iter()
        .map(|name| enrolled_running_agent(dir.path(), &hub, name))
        .collect();
    // A cluster registered but not yet enrolled must survive too.
    let pending_join = hub.add_cluster("pending", &[]);
    let before: Vec<_> = ["edge-1", "edge-2", "edge-3"]
        .iter()
        .map(|n| hub.cluster(n)["enrolled_at"].clone())
        .collect();

    hub.kill9_and_restart();
    for name in ["edge-1", "edge-2", "edge-3"] {
        assert!(
            hub.wait_connected(name, true),
            "{name} did not reconnect:\n{}",
            hub.process.stderr_text()
        );
    }
    let after: Vec<_> = ["edge-1", "edge-2", "edge-3"]
        .iter()
        .map(|n| hub.cluster(n)["enrolled_at"].clone())
        .collect();
    assert_eq!(before, after, "enrollments changed across the crash");
    for agent in &mut agents {
        assert!(agent.process().is_running());
    }
    // The bootstrap token minted before the crash still works after it.
    let late = TestAgent::new(dir.path(), "pending");
    let out = late.join(&pending_join);
    assert!(out.success(), "{}", out.stderr);
}
