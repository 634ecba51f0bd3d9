//! The `switchyard` binary's command line on its own: version, help, and the
//! errors a user meets before any hub runs.
//!
//! Being an integration test of this package also makes `cargo test
//! --workspace` build the binary, which the end-to-end tests in `tests/` run.

use std::process::Command;

fn switchyard(args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    command.args(args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SWITCHYARD_") {
            command.env_remove(key);
        }
    }
    for (k, v) in envs {
        command.env(k, v);
    }
    command.output().expect("run switchyard")
}

#[test]
fn version_and_help_name_the_commands() {
    let out = switchyard(&["--version"], &[]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("switchyard {}", env!("CARGO_PKG_VERSION"))
    );
    let help = switchyard(&["--help"], &[]);
    let text = String::from_utf8_lossy(&help.stdout);
    for command in [
        "serve",
        "cluster",
        "repo",
        "app",
        "group",
        "apply",
        "export",
        "status",
        "quickstart",
    ] {
        assert!(
            text.contains(command),
            "{command} missing from --help:\n{text}"
        );
    }
}

#[test]
fn admin_commands_without_a_hub_say_how_to_start_one() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("nothing-here");
    let out = switchyard(
        &["cluster", "list"],
        &[("SWITCHYARD_DATA_DIR", data_dir.to_str().unwrap())],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no hub found"), "{stderr}");
    assert!(stderr.contains("switchyard serve --data-dir"), "{stderr}");

    // --server works before or after the subcommand, like kubectl's flags.
    for args in [
        ["cluster", "list", "--server", "http://127.0.0.1:9"],
        ["--server", "http://127.0.0.1:9", "cluster", "list"],
    ] {
        let remote = switchyard(&args, &[]);
        assert!(!remote.status.success());
        assert!(
            String::from_utf8_lossy(&remote.stderr).contains("SWITCHYARD_TOKEN"),
            "{args:?}: {}",
            String::from_utf8_lossy(&remote.stderr)
        );
    }
}

#[test]
fn invalid_serve_configuration_is_refused_before_binding() {
    let dir = tempfile::tempdir().unwrap();
    let out = switchyard(
        &[
            "serve",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--cert-ttl",
            "1s",
        ],
        &[],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--cert-ttl must be at least 3s"),
        "{stderr}"
    );
    // Nothing was created: validation comes before any file is written.
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[test]
fn plain_http_is_refused_off_loopback_before_binding() {
    let dir = tempfile::tempdir().unwrap();
    let out = switchyard(
        &[
            "serve",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--http-listen",
            "0.0.0.0:0",
            "--http-insecure",
        ],
        &[],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--http-insecure serves the admin API without TLS")
            && stderr.contains("0.0.0.0:0 is not one"),
        "{stderr}"
    );
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[test]
fn an_https_server_without_a_ca_to_trust_is_refused() {
    let out = switchyard(
        &["cluster", "list", "--server", "https://127.0.0.1:9"],
        &[("SWITCHYARD_TOKEN", "sya_x")],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--server-ca-file FILE") && stderr.contains("--ca-sha256 HEX"),
        "{stderr}"
    );
    let out = switchyard(
        &[
            "cluster",
            "list",
            "--server",
            "https://127.0.0.1:9",
            "--ca-sha256",
            "abc",
        ],
        &[("SWITCHYARD_TOKEN", "sya_x")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("ca fingerprint must be 64 hex characters"),
        "{stderr}"
    );
}
