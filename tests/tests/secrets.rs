//! Secrets hygiene over the whole journey, with every process logging at
//! trace level for our crates: a hub, an agent enrolled with a join token,
//! admin API tokens, a repo fetched over HTTPS with a basic-auth password,
//! a backup. Then no token, private key or password may appear in any log
//! line of any process, nor in CLI output except where it is printed on
//! purpose; every file holding a secret is 0600; the store holds tokens
//! only hashed.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use switchyard_tests::fleet::{SOON, TestHub};
use switchyard_tests::git_server::{GitHttpServer, GitRepoBuilder};
use switchyard_tests::process::{Output, Process, binary, run, wait_until};

const LOG: &str = "debug,switchyard_hub=trace,switchyard_agent=trace,switchyard_common=trace,switchyard_certs=trace";
const GIT_PASSWORD: &str = "git-pa55word-4c1d9e";

/// Every CLI call of the journey, so its output can be checked afterwards.
struct Cli<'a> {
    hub: &'a TestHub,
    outputs: Vec<(String, Output)>,
}

impl Cli<'_> {
    fn run(&mut self, args: &[&str], envs: &[(&str, String)]) -> &Output {
        let mut env = vec![
            ("SWITCHYARD_LOG", LOG.to_owned()),
            (
                "SWITCHYARD_DATA_DIR",
                self.hub.data_dir().display().to_string(),
            ),
        ];
        env.extend(envs.iter().cloned());
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let out = run(&binary("switchyard"), &args, &env, SOON);
        assert!(out.success(), "switchyard {args:?} failed:\n{}", out.stderr);
        self.outputs.push((args.join(" "), out));
        &self.outputs.last().unwrap().1
    }

    fn json(&mut self, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.extend(["-o", "json"]);
        serde_json::from_str(&self.run(&args, &[]).stdout).unwrap()
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            files_under(&path, out);
        } else if kind.is_file() {
            out.push(path);
        }
    }
}

/// The lines of base64 inside every PEM private key in `text`: a key
/// leaked in any form (whole, or one line of it) contains one of them.
fn key_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("-----BEGIN") && line.contains("PRIVATE KEY") {
            inside = true;
        } else if line.starts_with("-----END") {
            inside = false;
        } else if inside && line.len() >= 40 {
            lines.push(line.to_owned());
        }
    }
    lines
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn no_secret_in_logs_or_outputs_secret_files_are_private_and_tokens_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    let source = GitRepoBuilder::new();
    source.write(
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\ndata:\n  k: v\n",
    );
    let head = source.commit("first");
    source.publish(&served, "fleet");
    let git = GitHttpServer::start(&served, Some(("ops", GIT_PASSWORD)));
    let password_file = dir.path().join("git-password");
    std::fs::write(&password_file, format!("{GIT_PASSWORD}\n")).unwrap();

    let mut hub = TestHub::start_with_env(dir.path(), &[], &[("SWITCHYARD_LOG", LOG.to_owned())]);
    let mut cli = Cli {
        hub: &hub,
        outputs: Vec::new(),
    };
    let url = git.url("fleet.git");
    cli.run(
        &[
            "repo",
            "add",
            "fleet",
            &url,
            "--username",
            "ops",
            "--password-file",
            password_file.to_str().unwrap(),
            "--ca-file",
            git.ca_pem_path().to_str().unwrap(),
            "--interval",
            "1s",
        ],
        &[],
    );
    assert!(
        wait_until(SOON, || cli.json(&["repo", "show", "fleet"])["head"]
            == head.as_str()),
        "HTTPS fetch with the password failed"
    );
    cli.run(
        &["app", "create", "demo", "--repo", "fleet", "--path", "app"],
        &[],
    );

    // Printed on purpose: the join command and a new token's secret.
    let added = cli.json(&["cluster", "add", "edge-1"]);
    let join = switchyard_tests::fleet::join_args(&added);
    let join_token = join[join.iter().position(|a| a == "--token").unwrap() + 1].clone();
    let created = cli.json(&["token", "create", "ci", "--role", "viewer"]);
    let api_token = created["secret"].as_str().unwrap().to_owned();
    let on_purpose = cli.outputs.len();

    // The agent joins and runs, logging at trace.
    let state_dir = dir.path().join("agent-edge-1");
    let mut args = join.clone();
    args.extend(["--state-dir".into(), state_dir.display().to_string()]);
    let joined = run(
        &binary("switchyard-agent"),
        &args,
        &[("SWITCHYARD_LOG", LOG.to_owned())],
        SOON,
    );
    assert!(joined.success(), "{}", joined.stderr);
    let mut agent = Process::spawn(
        &binary("switchyard-agent"),
        &[
            "run".into(),
            "--dry-run".into(),
            "--state-dir".into(),
            state_dir.display().to_string(),
        ],
        &[("SWITCHYARD_LOG", LOG.to_owned())],
        &dir.path().join("logs"),
        "agent-edge-1",
    );
    assert!(
        agent.wait_for_stdout("would apply ConfigMap demo", SOON),
        "{}",
        agent.stderr_text()
    );

    // The viewer token in use, and the reads an operator runs.
    let url_admin = hub.admin_url();
    let ca = hub.ca_file().display().to_string();
    cli.run(
        &[
            "cluster",
            "list",
            "--server",
            &url_admin,
            "--server-ca-file",
            &ca,
        ],
        &[("SWITCHYARD_TOKEN", api_token.clone())],
    );
    for args in [
        &["cluster", "show", "edge-1"][..],
        &["repo", "show", "fleet"],
        &["repo", "list"],
        &["app", "show", "demo"],
        &["status"],
        &["token", "list"],
        &["audit"],
    ] {
        cli.run(args, &[]);
        cli.json(args);
    }
    let backup = dir.path().join("hub.backup");
    cli.run(&["backup", backup.to_str().unwrap()], &[]);

    let outputs = std::mem::take(&mut cli.outputs);
    agent.terminate(SOON);
    hub.process.terminate(SOON);

    // Every secret of the journey.
    let data_dir = hub.data_dir();
    let mut secrets: BTreeMap<String, String> = BTreeMap::new();
    secrets.insert("join token".into(), join_token.clone());
    secrets.insert("API token".into(), api_token.clone());
    secrets.insert("git password".into(), GIT_PASSWORD.into());
    for (what, file) in [
        ("admin token", data_dir.join("admin-token")),
        ("webhook secret", data_dir.join("webhook-secret")),
    ] {
        let text = std::fs::read_to_string(&file).unwrap();
        secrets.insert(what.into(), text.trim().to_owned());
    }
    let mut hub_files = Vec::new();
    files_under(&data_dir, &mut hub_files);
    let mut agent_files = Vec::new();
    files_under(&state_dir, &mut agent_files);
    let mut key_files = Vec::new();
    for file in hub_files.iter().chain(&agent_files) {
        let text = String::from_utf8_lossy(&std::fs::read(file).unwrap()).into_owned();
        for (i, line) in key_lines(&text).into_iter().enumerate() {
            secrets.insert(format!("{} key line {i}", file.display()), line);
        }
        if text.contains("PRIVATE KEY") {
            key_files.push(file.clone());
        }
    }
    assert!(
        key_files.len() >= 3,
        "CA, server and agent keys: {key_files:?}"
    );

    // No secret in any log line of any process.
    let mut logs = Vec::new();
    files_under(&dir.path().join("logs"), &mut logs);
    assert!(logs.len() >= 4, "{logs:?}");
    // The logs were verbose enough to say something.
    let hub_log = std::fs::read_to_string(dir.path().join("logs/hub.err")).unwrap();
    assert!(
        hub_log.contains("DEBUG") && hub_log.contains("cluster enrolled"),
        "{hub_log}"
    );
    let mut leaks = Vec::new();
    for log in &logs {
        let text = std::fs::read_to_string(log).unwrap();
        for (what, secret) in &secrets {
            if let Some(line) = text.lines().find(|l| l.contains(secret.as_str())) {
                leaks.push(format!("{what} in {}: {line}", log.display()));
            }
        }
    }
    for output in [&joined] {
        for (what, secret) in &secrets {
            if output.stderr.contains(secret.as_str()) || output.stdout.contains(secret.as_str()) {
                leaks.push(format!("{what} in the output of switchyard-agent join"));
            }
        }
    }
    // Nor in CLI output, except the join command and the new token's secret.
    for (i, (command, output)) in outputs.iter().enumerate() {
        for (what, secret) in &secrets {
            let allowed = i < on_purpose
                && ((command.starts_with("cluster add") && secret == &join_token)
                    || (command.starts_with("token create") && secret == &api_token));
            let printed =
                output.stdout.contains(secret.as_str()) || output.stderr.contains(secret.as_str());
            if printed && !allowed {
                leaks.push(format!("{what} in the output of `switchyard {command}`"));
            }
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));

    // Every file holding a secret is readable by its owner only.
    let mut secret_files: Vec<PathBuf> = key_files;
    secret_files.extend([
        data_dir.join("admin-token"),
        data_dir.join("webhook-secret"),
        data_dir.join("quic-reset-key"),
        backup.clone(),
    ]);
    for file in hub_files.iter().chain(&agent_files) {
        let bytes = std::fs::read(file).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        if secrets.values().any(|s| text.contains(s.as_str())) {
            secret_files.push(file.clone());
        }
    }
    secret_files.sort();
    secret_files.dedup();
    let open: Vec<String> = secret_files
        .iter()
        .filter(|f| mode(f) & 0o077 != 0)
        .map(|f| format!("{} is {:o}", f.display(), mode(f)))
        .collect();
    assert!(open.is_empty(), "secret files readable by others: {open:?}");
    for d in [&data_dir, &state_dir] {
        assert_eq!(mode(d) & 0o077, 0, "{} is {:o}", d.display(), mode(d));
    }

    // Tokens are stored hashed: none of them is in the store's bytes, and
    // their SHA-256 is (so the scan did read the records).
    let mut store_files = Vec::new();
    files_under(&data_dir.join("store"), &mut store_files);
    let store: Vec<Vec<u8>> = store_files
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    for token in [&join_token, &api_token] {
        let hash = hex::encode(ring::digest::digest(
            &ring::digest::SHA256,
            token.as_bytes(),
        ));
        assert!(
            store
                .iter()
                .any(|bytes| bytes.windows(hash.len()).any(|w| w == hash.as_bytes())),
            "the hash of {token} is not in the store either: nothing was scanned"
        );
    }
    for (file, bytes) in store_files.iter().zip(&store) {
        for (what, token) in [
            ("join token", &join_token),
            ("API token", &api_token),
            ("admin token", &secrets["admin token"]),
        ] {
            assert!(
                !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
                "{what} stored in clear in {}",
                file.display()
            );
        }
    }
    println!(
        "checked {} secrets in {} log files and {} CLI outputs; {} secret files 0600; {} store files",
        secrets.len(),
        logs.len(),
        outputs.len(),
        secret_files.len(),
        store_files.len()
    );
}
