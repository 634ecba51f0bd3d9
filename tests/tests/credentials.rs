//! Credentials end to end with the real binaries: what re-enrollment, a
//! restore and a failing store do to agent certificates, bootstrap tokens
//! and API tokens.

use switchyard_tests::fleet::{SOON, TestAgent, TestHub};

/// Replace the stored record of cluster `name` in the (stopped) hub's
/// store by `bytes`; the record it held before.
fn replace_cluster_record(hub: &TestHub, name: &str, bytes: &[u8]) -> Vec<u8> {
    let db = sled::open(hub.data_dir().join("store")).expect("open the stopped hub's store");
    let clusters = db.open_tree("clusters").expect("clusters tree");
    let before = clusters
        .insert(name.as_bytes(), bytes)
        .expect("write the record")
        .expect("the cluster had a record");
    db.flush().expect("flush");
    before.to_vec()
}

#[test]
fn a_store_error_while_authenticating_is_retried_not_a_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let mut hub = TestHub::start(dir.path(), &[]);
    let port = hub.quic_port();
    let mut agent = TestAgent::new(dir.path(), "edge-1");
    assert!(agent.join(&hub.add_cluster("edge-1", &[])).success());
    agent.start();
    assert!(hub.wait_connected("edge-1", true), "agent never connected");

    // The hub comes back with a record it cannot read: `authenticate` fails
    // on the store, which proves nothing about the certificate.
    hub.process.terminate(SOON);
    let good = replace_cluster_record(&hub, "edge-1", b"{ damaged");
    let mut damaged = TestHub::start_at(dir.path(), port, &[]);
    assert!(
        damaged
            .process
            .wait_for_log("refused agent certificate", SOON),
        "the agent never came back to the damaged hub:\n{}",
        damaged.process.stderr_text()
    );
    assert!(
        agent
            .process()
            .wait_for_log("could not check this agent's certificate, retrying", SOON),
        "{}",
        agent.process().stderr_text()
    );
    // Several refusals later, the agent is still trying.
    let again = switchyard_tests::process::wait_until(SOON, || {
        damaged
            .process
            .stderr_text()
            .matches("refused agent certificate")
            .count()
            >= 3
    });
    assert!(again, "{}", damaged.process.stderr_text());
    assert!(agent.process().is_running(), "the agent gave up");
    let log = agent.process().stderr_text();
    assert!(!log.contains("giving up"), "{log}");

    // Repaired, the hub accepts the same certificate again.
    damaged.process.terminate(SOON);
    replace_cluster_record(&damaged, "edge-1", &good);
    let repaired = TestHub::start_at(dir.path(), port, &[]);
    assert!(
        repaired.wait_connected("edge-1", true),
        "the agent did not reconnect to the repaired hub:\n{}",
        agent.process().stderr_text()
    );
}
