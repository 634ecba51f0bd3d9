//! The load generator's command line: the TLS reference benchmark completes
//! real mutual-TLS handshakes, and bad arguments get clear errors. (Also
//! makes `cargo test --workspace` build the binary the end-to-end test runs.)

use std::process::Command;

fn loadgen() -> Command {
    Command::new(env!("CARGO_BIN_EXE_switchyard-loadgen"))
}

#[test]
fn tls_bench_completes_mutual_handshakes() {
    let out = loadgen()
        .args(["tls-bench", "--duration", "200ms"])
        .output()
        .expect("running switchyard-loadgen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("one JSON line on stdout");
    assert_eq!(line["event"], "tls_bench");
    assert!(line["handshakes"].as_u64().unwrap() > 0, "{line}");
    assert!(
        line["server_us_per_handshake"].as_f64().unwrap() > 0.0,
        "{line}"
    );
}

#[test]
fn run_without_a_hub_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let out = loadgen()
        .args(["run", "--hub-dir"])
        .arg(dir.path())
        .args(["--agents", "3", "--duration", "5s"])
        .output()
        .expect("running switchyard-loadgen");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("hub.json"), "{stderr}");
}

#[test]
fn zero_agents_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = loadgen()
        .args(["run", "--hub-dir"])
        .arg(dir.path())
        .args(["--agents", "0"])
        .output()
        .expect("running switchyard-loadgen");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--agents must be at least 1"), "{stderr}");
}
