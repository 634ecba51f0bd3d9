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

#[test]
fn serve_settings_come_from_flags_then_environment_then_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config = dir.path().join("hub.yaml");
    std::fs::write(
        &config,
        "# too short on purpose\ncert-ttl: 1s\nheartbeat: 10ms\n",
    )
    .unwrap();
    let serve = |extra: &[&str], envs: &[(&str, &str)]| {
        let mut args = vec![
            "serve",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ];
        args.extend(extra);
        let out = switchyard(&args, envs);
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // The file alone, the environment over the file, a flag over both.
    let stderr = serve(&[], &[]);
    assert!(
        stderr.contains("--cert-ttl must be at least 3s, got 1s"),
        "{stderr}"
    );
    let stderr = serve(&[], &[("SWITCHYARD_CERT_TTL", "2s")]);
    assert!(stderr.contains("got 2s"), "{stderr}");
    let stderr = serve(&["--cert-ttl", "1500ms"], &[("SWITCHYARD_CERT_TTL", "2s")]);
    assert!(stderr.contains("got 1.5s"), "{stderr}");
    // What the command line leaves unset still comes from the file.
    let stderr = serve(&["--cert-ttl", "1h"], &[]);
    assert!(
        stderr.contains("--heartbeat must be at least 1s, got 10ms"),
        "{stderr}"
    );
    assert!(!data_dir.exists());

    // Unknown keys and bad values: file, line and column.
    std::fs::write(
        &config,
        "quic-listen: 127.0.0.1:0\nhttp-lisen: 127.0.0.1:0\n",
    )
    .unwrap();
    let stderr = serve(&[], &[]);
    assert!(
        stderr.contains(&format!("{}:2:", config.display())) && stderr.contains("http-lisen"),
        "{stderr}"
    );
    let out = switchyard(&["serve", "--config", "/nonexistent/hub.yaml"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("cannot read config file /nonexistent/hub.yaml"),
        "{stderr}"
    );
}

#[test]
fn a_hub_runs_from_its_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("from-file");
    let config = dir.path().join("hub.yaml");
    std::fs::write(
        &config,
        format!(
            "data-dir: {}\nquic-listen: 127.0.0.1:0\nhttp-listen: 127.0.0.1:0\nhttp-insecure: true\npublic-names: [hub.test]\nlog-format: json\n",
            data_dir.display()
        ),
    )
    .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    command
        .args(["serve", "--config", config.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SWITCHYARD_") {
            command.env_remove(key);
        }
    }
    let mut hub = command.spawn().unwrap();
    let file = data_dir.join("hub.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !file.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = hub.kill();
    let output = hub.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let endpoints: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap_or_default())
            .unwrap_or_else(|e| panic!("no hub.json ({e}); stderr:\n{stderr}"));
    assert!(
        endpoints["admin_url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "{endpoints}"
    );
    assert!(
        endpoints["agent_address"]
            .as_str()
            .unwrap()
            .starts_with("hub.test:"),
        "{endpoints}"
    );
    // JSON logs, as the file asked.
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        serde_json::from_str::<serde_json::Value>(first).is_ok(),
        "{stderr}"
    );
}

fn help(args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.push("--help");
    let out = switchyard(&all, &[]);
    assert!(out.status.success(), "{args:?} --help failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text of one help section: from `heading:` to the next heading (a
/// line that is not indented; long help has blank lines inside sections).
fn section(help: &str, heading: &str) -> String {
    let mut lines = help.lines().skip_while(|l| *l != format!("{heading}:"));
    assert!(lines.next().is_some(), "no {heading} section:\n{help}");
    lines
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn connection_flags_appear_only_where_a_hub_is_asked() {
    for args in [&["serve"][..], &["quickstart"], &["restore"]] {
        let text = help(args);
        for flag in ["--server", "--server-ca-file", "--ca-sha256"] {
            assert!(!text.contains(flag), "{args:?} shows {flag}:\n{text}");
        }
    }
    assert!(!help(&["quickstart"]).contains("--data-dir"));
    for args in [
        &["cluster", "list"][..],
        &["app", "create"],
        &["repo", "add"],
        &["status"],
        &["apply"],
        &["token", "create"],
    ] {
        let text = help(args);
        let connection = section(&text, "Connection");
        for flag in ["--data-dir", "--server", "--server-ca-file", "--ca-sha256"] {
            assert!(connection.contains(flag), "{args:?}:\n{text}");
        }
    }
    // `repo add`: the hub's CA and the Git server's CA under their own headings.
    let text = help(&["repo", "add"]);
    let flags = |heading: &str| -> Vec<String> {
        section(&text, heading)
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("--"))
            .map(|l| l.split_whitespace().next().unwrap_or_default().to_owned())
            .collect()
    };
    assert!(
        flags("Git server").contains(&"ca-file".to_owned()),
        "{text}"
    );
    assert!(
        !flags("Git server").contains(&"ca-sha256".to_owned()),
        "{text}"
    );
    assert!(!flags("Options").contains(&"ca-file".to_owned()), "{text}");
    assert!(
        flags("Connection").contains(&"ca-sha256".to_owned()),
        "{text}"
    );
    // Serve's flags in groups.
    let text = help(&["serve"]);
    assert!(section(&text, "Render limits").contains("--render-timeout"));
    assert!(section(&text, "Git limits").contains("--git-max-pack-bytes"));
    assert!(section(&text, "Listen").contains("--quic-listen"));
}

#[test]
fn connection_flags_where_they_mean_nothing_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = switchyard(
        &[
            "quickstart",
            "--exit",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let dir_arg = dir.path().join("qs").display().to_string();
    let out = switchyard(
        &[
            "--server",
            "https://hub:7701",
            "quickstart",
            "--exit",
            "--dir",
            &dir_arg,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--server is not an option of `switchyard quickstart`"),
        "{stderr}"
    );
    // Nothing was started or created.
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}
