//! The load generator at CI size: 200 simulated agents (real enrollment, real
//! mutual-TLS QUIC, the real protocol) against the real hub; every one of
//! them must fetch the app's bundle and verify it against the digest the
//! bundle's content has, and the hub must see each report that digest.
//! The large runs are benchmarks (BENCHMARKS.md), not tests.

use serde_json::{Value, json};
use std::time::Duration;
use switchyard_common::bundle::Bundle;
use switchyard_tests::fleet::TestHub;
use switchyard_tests::git_server::GitRepoBuilder;
use switchyard_tests::process::{binary, run};

const AGENTS: usize = 200;

const CONFIG: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: fleet-settings
  namespace: ops
data:
  level: high
";

#[test]
fn every_simulated_agent_fetches_and_verifies_the_bundle() {
    let dir = tempfile::tempdir().unwrap();
    // Every simulated agent comes from 127.0.0.1: lift the per-IP limits.
    let hub = TestHub::start(dir.path(), &switchyard_tests::fleet::ONE_IP_FLEET);
    let source = GitRepoBuilder::new();
    source.write("settings/cm.yaml", CONFIG);
    let head = source.commit("settings");
    let bare = source.publish(&dir.path().join("served"), "config");
    let url = format!("file://{}", bare.display());
    let out = hub.cli(&["repo", "add", "config", &url, "--interval", "1s"]);
    assert!(out.success(), "repo add: {}", out.stderr);
    assert!(
        hub.repo_reaches("config", &head),
        "config repo never fetched"
    );
    let out = hub.cli(&[
        "app",
        "create",
        "settings",
        "--repo",
        "config",
        "--path",
        "settings",
        "--selector",
        "fleet=load",
    ]);
    assert!(out.success(), "app create: {}", out.stderr);

    let agents = AGENTS.to_string();
    let hub_dir = hub.data_dir().display().to_string();
    let args: Vec<String> = [
        "run",
        "--hub-dir",
        &hub_dir,
        "--agents",
        &agents,
        "--label",
        "fleet=load",
        "--sockets",
        "4",
        "--exit-when-synced",
        "--duration",
        "50s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = run(
        &binary("switchyard-loadgen"),
        &args,
        &[],
        Duration::from_secs(60),
    );
    assert!(
        out.success(),
        "loadgen failed:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    let events: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("loadgen prints JSON lines"))
        .collect();
    let event = |name: &str| {
        events
            .iter()
            .find(|e| e["event"] == name)
            .unwrap_or_else(|| panic!("no {name} event in:\n{}", out.stdout))
    };
    assert_eq!(event("enrolled")["agents"], AGENTS);

    // The digest is the SHA-256 of the canonical form of what is in Git.
    let expected = Bundle::new(vec![json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "fleet-settings", "namespace": "ops"},
        "data": {"level": "high"},
    })])
    .digest();
    let synced = event("synced");
    assert_eq!(synced["synced"], AGENTS);
    assert_eq!(
        synced["digests"],
        json!({ expected.as_str(): AGENTS }),
        "every agent holds exactly the one bundle"
    );
    let everywhere = event("digest_everywhere");
    assert_eq!(everywhere["digest"], expected.as_str());

    // The hub saw every agent report the assigned digest (Synced means the
    // reported digest equals the one the hub assigned).
    let rows = hub.cli_json(&["status", "settings"]);
    let rows = rows.as_array().expect("status rows");
    assert_eq!(rows.len(), AGENTS, "one row per simulated cluster");
    for row in rows {
        assert_eq!(row["sync"], "Synced", "{row}");
        assert_eq!(row["desired_commit"], head.as_str(), "{row}");
        assert_eq!(row["applied_commit"], head.as_str(), "{row}");
    }
}
