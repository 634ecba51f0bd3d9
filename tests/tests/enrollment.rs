//! Enrollment end to end with the real binaries: join, connect, reconnect
//! with the same identity, refused tokens, and CA pinning.

use std::time::Duration;
use switchyard_tests::fleet::{TestAgent, TestHub};

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn enrolled_agent_connects_and_reconnects_with_the_same_identity() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &[]);
    let join = hub.add_cluster("edge-1", &["env=prod"]);
    assert_eq!(hub.cluster("edge-1")["state"], "pending");

    let mut agent = TestAgent::new(dir.path(), "edge-1");
    let joined = agent.join(&join);
    assert!(joined.success(), "join failed: {}", joined.stderr);
    assert!(
        joined.stdout.contains("enrolled as cluster edge-1"),
        "{}",
        joined.stdout
    );

    agent.start();
    assert!(hub.wait_connected("edge-1", true), "agent never connected");
    let first = hub.cluster("edge-1");
    assert_eq!(first["state"], "enrolled");
    assert_eq!(first["agent_version"], env!("CARGO_PKG_VERSION"));
    // Dry-run agents have no cluster to report a version of.
    assert!(first["kubernetes_version"].is_null());
    assert!(first["cert_expires"].is_string());
    assert_eq!(first["labels"]["env"], "prod");

    agent.stop();
    assert!(
        hub.wait_connected("edge-1", false),
        "hub still shows the stopped agent"
    );
    agent.start();
    assert!(
        hub.wait_connected("edge-1", true),
        "restarted agent never reconnected"
    );
    let second = hub.cluster("edge-1");
    assert_eq!(second["enrolled_at"], first["enrolled_at"]);
    assert_eq!(second["cert_expires"], first["cert_expires"]);
    let hub_log = hub.process.stderr_text();
    assert_eq!(count(&hub_log, "cluster enrolled"), 1, "{hub_log}");
    assert!(count(&hub_log, "agent connected") >= 2, "{hub_log}");

    // The table view shows the same facts a person would look for.
    let table = hub.cli(&["cluster", "list"]);
    assert!(table.success());
    let row = table
        .stdout
        .lines()
        .find(|l| l.starts_with("edge-1"))
        .expect("row for edge-1");
    assert!(
        row.contains("Connected") && row.contains("env=prod") && row.contains("none"),
        "{row}"
    );
    let yaml = hub.cli(&["cluster", "show", "edge-1", "-o", "yaml"]);
    assert!(
        yaml.success() && yaml.stdout.contains("name: edge-1"),
        "{}",
        yaml.stdout
    );
}

#[test]
fn reused_unknown_and_expired_tokens_are_refused_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &[]);

    // Reused: the first join spends the token.
    let join = hub.add_cluster("edge-1", &[]);
    assert!(TestAgent::new(dir.path(), "first").join(&join).success());
    let enrolled = hub.cluster("edge-1");
    let second = TestAgent::new(dir.path(), "second");
    let reused = second.join(&join);
    assert!(!reused.success());
    assert!(
        reused.stderr.contains("bootstrap token already used"),
        "{}",
        reused.stderr
    );
    assert!(second.has_no_identity());
    assert_eq!(
        hub.cluster("edge-1"),
        enrolled,
        "a refused join changed the cluster"
    );

    // Unknown: a token the hub never minted.
    let mut unknown = join.clone();
    let token_at = unknown.iter().position(|a| a == "--token").unwrap() + 1;
    unknown[token_at] = "syb_000000000000000000000000000000000000000000000000".into();
    let stranger = TestAgent::new(dir.path(), "stranger");
    let refused = stranger.join(&unknown);
    assert!(!refused.success());
    assert!(
        refused.stderr.contains("unknown bootstrap token"),
        "{}",
        refused.stderr
    );
    assert!(stranger.has_no_identity());

    // Expired: minted with a one-second lifetime.
    let added = hub.cli_json(&["cluster", "add", "edge-2", "--token-ttl", "1s"]);
    let join = switchyard_tests::fleet::join_args(&added);
    std::thread::sleep(Duration::from_millis(2100));
    let late = TestAgent::new(dir.path(), "late");
    let expired = late.join(&join);
    assert!(!expired.success());
    assert!(
        expired.stderr.contains("bootstrap token expired"),
        "{}",
        expired.stderr
    );
    assert!(late.has_no_identity());
    let edge2 = hub.cluster("edge-2");
    assert_eq!(edge2["state"], "pending");
    assert!(edge2["cert_expires"].is_null());

    // A fresh token for the same cluster works.
    let renewed = hub.cli_json(&["cluster", "token", "edge-2"]);
    let ok = late.join(&switchyard_tests::fleet::join_args(&renewed));
    assert!(ok.success(), "{}", ok.stderr);
    assert_eq!(hub.cluster("edge-2")["state"], "enrolled");
}

#[test]
fn a_wrong_ca_fingerprint_stops_the_agent_before_it_sends_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &[]);
    let join = hub.add_cluster("edge-1", &[]);

    let mut wrong = join.clone();
    let pin_at = wrong.iter().position(|a| a == "--ca-sha256").unwrap() + 1;
    let real_pin = wrong[pin_at].clone();
    wrong[pin_at] = "ab".repeat(32);
    let agent = TestAgent::new(dir.path(), "edge-1");
    let refused = agent.join(&wrong);
    assert!(!refused.success());
    assert!(
        refused.stderr.contains("the token was NOT sent"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains(&real_pin),
        "the error should show what the hub presented"
    );
    assert!(agent.has_no_identity());
    // The hub never saw an enrollment attempt, so the token is still good.
    let hub_log = hub.process.stderr_text();
    assert!(!hub_log.contains("enrollment refused"), "{hub_log}");
    let ok = agent.join(&join);
    assert!(ok.success(), "{}", ok.stderr);

    // A malformed fingerprint is refused before dialing anything.
    let mut malformed = join.clone();
    malformed[pin_at] = "not-hex".into();
    let out = TestAgent::new(dir.path(), "other").join(&malformed);
    assert!(!out.success());
    assert!(out.stderr.contains("--ca-sha256"), "{}", out.stderr);
}

#[test]
fn an_agent_that_is_already_enrolled_refuses_to_join_again() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &[]);
    let agent = TestAgent::new(dir.path(), "edge-1");
    assert!(agent.join(&hub.add_cluster("edge-1", &[])).success());
    let again = agent.join(&hub.add_cluster("edge-2", &[]));
    assert!(!again.success());
    assert!(
        again.stderr.contains("already enrolled as cluster edge-1"),
        "{}",
        again.stderr
    );
}

#[test]
fn a_corrupt_identity_is_a_clear_error_not_a_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &[]);
    let mut agent = TestAgent::new(dir.path(), "edge-1");
    assert!(agent.join(&hub.add_cluster("edge-1", &[])).success());
    std::fs::write(
        agent.state_dir.join("tls.crt"),
        "-----BEGIN CERTIFICATE-----\ngarbage\n",
    )
    .unwrap();
    agent.start();
    let status = agent
        .process()
        .wait_exit(switchyard_tests::fleet::SOON)
        .expect("an agent with a corrupt certificate kept running");
    assert!(!status.success());
    let log = agent.process().stderr_text();
    assert!(
        log.contains("identity in its state dir is unusable"),
        "{log}"
    );
    assert!(!log.contains("revoked"), "{log}");

    // And a state dir that was never enrolled says how to enroll.
    let mut stranger = TestAgent::new(dir.path(), "never-joined");
    stranger.start();
    assert!(
        stranger
            .process()
            .wait_exit(switchyard_tests::fleet::SOON)
            .is_some()
    );
    assert!(
        stranger
            .process()
            .stderr_text()
            .contains("switchyard-agent join"),
        "{}",
        stranger.process().stderr_text()
    );
}
