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

#[test]
fn every_flag_is_described_and_the_state_dir_default_is_shown() {
    for command in ["join", "run"] {
        let out = Command::new(env!("CARGO_BIN_EXE_switchyard-agent"))
            .args([command, "--help"])
            .env_remove("SWITCHYARD_AGENT_STATE_DIR")
            .env("XDG_STATE_HOME", "/xdg-state")
            .output()
            .expect("run switchyard-agent");
        assert!(out.status.success());
        let help = String::from_utf8_lossy(&out.stdout);
        // The default as this environment resolves it.
        assert!(
            help.contains("[default: /xdg-state/switchyard-agent]"),
            "{command}:\n{help}"
        );
        // A flag line is followed by its description: never a bare flag.
        let lines: Vec<&str> = help.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let flag = line.trim_start();
            if flag.starts_with("--") && !flag.contains("  ") {
                let next = lines.get(i + 1).map_or("", |l| l.trim());
                assert!(
                    !next.is_empty() && !next.starts_with('-'),
                    "{command}: {flag} has no description:\n{help}"
                );
            }
        }
    }
}

#[test]
fn join_to_a_port_with_nothing_listening_says_so() {
    // A UDP port that was free a moment ago: nothing answers there.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard-agent"))
        .args([
            "join",
            "--hub",
            &format!("127.0.0.1:{port}"),
            "--ca-sha256",
            &"ab".repeat(32),
            "--state-dir",
            dir.path().join("state").to_str().unwrap(),
        ])
        .env("SWITCHYARD_JOIN_TOKEN", "syb_x")
        .env_remove("SWITCHYARD_AGENT_STATE_DIR")
        .output()
        .expect("run switchyard-agent");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    // What it is doing is said at once, and the failure names the likely causes.
    assert!(
        stderr.contains("connecting to the hub (QUIC over UDP)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("no answer from the hub at 127.0.0.1:"),
        "{stderr}"
    );
    assert!(stderr.contains("UDP"), "{stderr}");
    assert!(!dir.path().join("state").join("tls.key").exists());
}
