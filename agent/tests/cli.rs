//! The `switchyard-agent` binary's command line on its own: version and the
//! errors a user meets before enrolling.
//!
//! Being an integration test of this package also makes `cargo test
//! --workspace` build the binary, which the end-to-end tests in `tests/` run.

use std::process::Command;

fn agent(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_switchyard-agent"))
        .args(args)
        .env_remove("SWITCHYARD_AGENT_STATE_DIR")
        .env_remove("SWITCHYARD_JOIN_TOKEN")
        .env_remove("KUBECONFIG")
        .output()
        .expect("run switchyard-agent")
}

#[test]
fn version_is_printed() {
    let out = agent(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("switchyard-agent {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn run_before_join_says_how_to_enroll() {
    let dir = tempfile::tempdir().unwrap();
    let out = agent(&[
        "run",
        "--dry-run",
        "--state-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("switchyard-agent join --hub"), "{stderr}");
}

#[test]
fn a_malformed_fingerprint_is_refused_before_dialing() {
    let dir = tempfile::tempdir().unwrap();
    let out = agent(&[
        "join",
        "--hub",
        "127.0.0.1:9",
        "--token",
        "syb_x",
        "--ca-sha256",
        "not-hex",
        "--state-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--ca-sha256"), "{stderr}");
    assert!(!dir.path().join("tls.key").exists());
}
