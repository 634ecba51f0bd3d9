//! Network faults between the hub and its agents: agents run in a network
//! namespace the test creates (`ip netns exec`), linked to the hub in the
//! root namespace by a veth pair. On that link: 20% loss and 300 ms latency
//! (tc netem), and a partition that outlasts the idle timeout and then
//! heals. After each fault, every agent converges: it gets the current
//! bundle and reports it. The namespace is removed even if the test fails.
//!
//! Skipped, with a message, only where the machine forbids namespaces (not
//! root, no CAP_NET_ADMIN, no `ip`). Where the kernel has no sch_netem, the
//! loss and latency come from a UDP relay in the test on the same link
//! instead (said in the output); the partition is always the link going down.

use serde_json::Value;
use std::time::{Duration, Instant};
use switchyard_tests::fleet::{SOON, TestAgent, TestHub, add_demo_app};
use switchyard_tests::netns::NetNs;
use switchyard_tests::process::wait_until;
use switchyard_tests::relay::{Faults, Relay};

const AGENTS: [&str; 3] = ["ns-1", "ns-2", "ns-3"];
/// Bound on convergence through a lossy or slow link (retransmissions,
/// reconnect backoff): generous, never a speed assertion.
const CONVERGE: Duration = Duration::from_secs(90);

/// Every agent reports `commit` as applied.
fn all_report(hub: &TestHub, commit: &str) -> bool {
    let out = hub.cli(&["status", "demo", "-o", "json"]);
    let Ok(rows) = serde_json::from_str::<Value>(&out.stdout) else {
        return false;
    };
    AGENTS.iter().all(|name| {
        rows.as_array().is_some_and(|rows| {
            rows.iter()
                .any(|r| r["cluster"] == *name && r["applied_commit"] == commit)
        })
    })
}

/// Push a change and wait (bounded) until every agent reports it; how long it took.
fn change_and_converge(
    hub: &TestHub,
    source: &switchyard_tests::git_server::GitRepoBuilder,
    dir: &std::path::Path,
    phase: &str,
) -> Duration {
    source.write(
        "demo/phase.yaml",
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: phase\ndata:\n  phase: {phase}\n"
        ),
    );
    let commit = source.commit(phase);
    source.publish(&dir.join("served"), "demo");
    let started = Instant::now();
    assert!(
        wait_until(CONVERGE, || all_report(hub, &commit)),
        "{phase}: not every agent reported {commit} within {CONVERGE:?}: {}",
        hub.cli(&["status", "demo", "-o", "json"]).stdout
    );
    started.elapsed()
}

#[test]
fn agents_behind_a_faulty_link_converge_once_the_fault_ends() {
    let ns = match NetNs::create() {
        Ok(ns) => ns,
        Err(why) => {
            eprintln!("SKIPPED: this machine does not allow network namespaces ({why})");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    // The minimum idle timeout, so that the partition below outlasts it.
    let hub = TestHub::start_on(
        dir.path(),
        &ns.host_addr,
        &["--public-name", &ns.host_addr, "--idle-timeout", "10s"],
    );
    let (hub_addr, _) = hub.agent_endpoint();
    let netem = ns.netem_available();
    let relay = match &netem {
        Ok(()) => None,
        Err(why) => {
            eprintln!(
                "tc netem is unavailable here ({why}; the kernel needs sch_netem): loss and latency come from a UDP relay on the link instead"
            );
            let listen = std::net::SocketAddr::new(ns.host_addr.parse().unwrap(), 0);
            Some(Relay::start(listen, hub_addr))
        }
    };
    let dial = relay.as_ref().map_or(hub_addr, |r| r.addr).to_string();
    let mut agents: Vec<TestAgent> = AGENTS
        .iter()
        .map(|name| TestAgent::new(dir.path(), name).in_netns(&ns.name))
        .collect();
    for (agent, name) in agents.iter_mut().zip(AGENTS) {
        let mut join = hub.add_cluster(name, &["role=far"]);
        let at = join.iter().position(|w| w == "--hub").expect("--hub") + 1;
        join[at] = dial.clone();
        let out = agent.join(&join);
        assert!(
            out.success(),
            "join {name} from the namespace: {}",
            out.stderr
        );
        agent.start();
    }
    for name in AGENTS {
        assert!(hub.wait_connected(name, true), "{name} never connected");
    }
    let source = add_demo_app(&hub, dir.path(), "role=far");
    let clean = change_and_converge(&hub, &source, dir.path(), "clean");
    eprintln!("clean link: all agents converged in {clean:?}");

    let how = if relay.is_some() { "relay" } else { "netem" };
    match &relay {
        None => ns.netem(&["loss", "20%"]).expect("netem loss"),
        Some(relay) => relay.set(Faults {
            loss: 0.2,
            ..Faults::default()
        }),
    }
    let lossy = change_and_converge(&hub, &source, dir.path(), "loss");
    eprintln!("20% loss each way ({how}): all agents converged in {lossy:?}");
    match &relay {
        None => ns.netem(&["delay", "300ms"]).expect("netem delay"),
        Some(relay) => relay.set(Faults {
            delay: Duration::from_millis(300),
            ..Faults::default()
        }),
    }
    let slow = change_and_converge(&hub, &source, dir.path(), "latency");
    eprintln!("300 ms latency each way ({how}): all agents converged in {slow:?}");
    match &relay {
        None => ns.clear_netem(),
        Some(relay) => relay.set(Faults::default()),
    }

    // A partition longer than the idle timeout: both ends give the
    // connections up. A commit lands meanwhile; once the link is back the
    // agents reconnect and converge.
    let down_at = Instant::now();
    ns.set_link(false).expect("link down");
    for name in AGENTS {
        assert!(
            wait_until(Duration::from_secs(40), || !hub.is_connected(name)),
            "{name} still counted as connected through a partition"
        );
    }
    let dropped = down_at.elapsed();
    source.write(
        "demo/phase.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: phase\ndata:\n  phase: partition\n",
    );
    let commit = source.commit("during the partition");
    source.publish(&dir.path().join("served"), "demo");
    assert!(wait_until(SOON, || hub.cli_json(&["app", "show", "demo"])
        ["deployed"]
        == commit.as_str()));
    assert!(!all_report(&hub, &commit), "reports crossed a partition");
    ns.set_link(true).expect("link up");
    let healed_at = Instant::now();
    assert!(
        wait_until(CONVERGE, || all_report(&hub, &commit)),
        "after the partition healed, not every agent reported {commit}: {}",
        hub.cli(&["status", "demo", "-o", "json"]).stdout
    );
    eprintln!(
        "partition of {:?} (the hub dropped every agent after {dropped:?}): all agents converged {:?} after it healed",
        healed_at - down_at,
        healed_at.elapsed()
    );
    for name in AGENTS {
        assert!(hub.is_connected(name), "{name} not reconnected");
    }
    drop(agents);
}
