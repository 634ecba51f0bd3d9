//! Credentials end to end with the real binaries: what re-enrollment, a
//! restore and a failing store do to agent certificates, bootstrap tokens
//! and API tokens.

use switchyard_certs::AgentKey;
use switchyard_common::proto::{
    AppStatus, GetAssignment, Health, Hello, Message, RenewCertificate, ResourceStatus,
    StatusReport, SyncStatus, close_code,
};
use switchyard_tests::fleet::{SOON, TestAgent, TestHub};
use switchyard_tests::raw::{self, RawIdentity};

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

fn init_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Renew over `conn` with a new key; the identity the hub signed, or the
/// error (the hub's refusal, or how the connection closed).
async fn renew(conn: &quinn::Connection, ca_pem: &str) -> Result<RawIdentity, String> {
    let key = AgentKey::generate().unwrap();
    let request = Message::RenewCertificate(RenewCertificate {
        csr_pem: key.csr_pem("raw").unwrap(),
    });
    match raw::answer_message(raw::request(conn, &request).await)? {
        Message::CertificateRenewed(renewed) => Ok(RawIdentity {
            ca_pem: ca_pem.to_owned(),
            cert_pem: renewed.cert_pem,
            key,
        }),
        other => Err(format!("{other:?}")),
    }
}

/// Connect with `identity` and send Hello: the close code the hub answers
/// with, `None` if it welcomed the connection.
async fn hello_close_code(
    endpoint: &quinn::Endpoint,
    hub: &TestHub,
    identity: &RawIdentity,
) -> Option<u64> {
    let (addr, _) = hub.agent_endpoint();
    let tls =
        switchyard_certs::agent_client_config(&identity.ca_pem, &identity.cert_pem, &identity.key)
            .expect("mTLS config");
    let conn = endpoint
        .connect_with(raw::quic_client_config(tls), addr, "127.0.0.1")
        .expect("connect")
        .await
        .expect("handshake: the CA signed this certificate");
    let hello = Message::Hello(Hello {
        agent_version: "raw-test".into(),
        kubernetes_version: None,
        generation: 0,
    });
    match raw::request(&conn, &hello).await {
        raw::RawAnswer::Closed(reason) => raw::close_code(&reason),
        raw::RawAnswer::Bytes(_) => {
            conn.close(0u32.into(), b"done");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_enrollment_revokes_the_old_certificate_and_closes_its_connection() {
    init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let hub = tokio::task::block_in_place(|| TestHub::start(dir.path(), &[]));
    let (addr, pin) = hub.agent_endpoint();
    let endpoint = raw::client_endpoint();

    // The old identity, and a live connection made with it (a stolen copy).
    let token = tokio::task::block_in_place(|| hub.add_cluster_token("edge-1", &[]));
    let old = raw::enroll(&endpoint, addr, &pin, &token)
        .await
        .expect("first enrollment");
    let stolen =
        raw::connect_enrolled(&endpoint, addr, &old, quinn::TransportConfig::default()).await;

    // The operator re-enrolls the cluster with a fresh token and the real agent.
    let mut agent = TestAgent::new(dir.path(), "edge-1");
    tokio::task::block_in_place(|| {
        let fresh = hub.cli_json(&["cluster", "token", "edge-1"]);
        let joined = agent.join(&switchyard_tests::fleet::join_args(&fresh));
        assert!(joined.success(), "{}", joined.stderr);
    });

    // The old connection is cut as revoked at once...
    let closed = raw::closed(&stolen).await;
    assert_eq!(
        raw::close_code(&closed),
        Some(u64::from(close_code::REVOKED)),
        "{closed:?}"
    );
    // ...its certificate can no longer connect...
    assert_eq!(
        hello_close_code(&endpoint, &hub, &old).await,
        Some(u64::from(close_code::REVOKED))
    );
    // ...and the new agent works.
    tokio::task::block_in_place(|| {
        agent.start();
        assert!(
            hub.wait_connected("edge-1", true),
            "the re-enrolled agent never connected"
        );
        agent.stop();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_current_certificate_renews() {
    init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let hub = tokio::task::block_in_place(|| TestHub::start(dir.path(), &[]));
    let (addr, pin) = hub.agent_endpoint();
    let endpoint = raw::client_endpoint();
    let token = tokio::task::block_in_place(|| hub.add_cluster_token("edge-1", &[]));
    let first = raw::enroll(&endpoint, addr, &pin, &token)
        .await
        .expect("enrollment");

    // A connection made with the first certificate renews twice: the hub
    // keeps the newest two serials, so after the second renewal the first
    // serial (the one this connection holds) is no longer current.
    let stale =
        raw::connect_enrolled(&endpoint, addr, &first, quinn::TransportConfig::default()).await;
    renew(&stale, &first.ca_pem).await.expect("first renewal");
    let third = renew(&stale, &first.ca_pem).await.expect("second renewal");

    // A third renewal would extend a replaced certificate's life for ever:
    // refused, and the connection is closed as revoked.
    let refused = renew(&stale, &first.ca_pem).await;
    let error = refused.err().expect("a replaced certificate renewed");
    assert!(
        error.contains("is not the current certificate") || error.contains("closed"),
        "{error}"
    );
    let closed = raw::closed(&stale).await;
    assert_eq!(
        raw::close_code(&closed),
        Some(u64::from(close_code::REVOKED)),
        "{closed:?}"
    );
    // The current certificate still connects and renews.
    let current =
        raw::connect_enrolled(&endpoint, addr, &third, quinn::TransportConfig::default()).await;
    renew(&current, &first.ca_pem)
        .await
        .expect("the current certificate renews");
}

#[test]
fn the_join_token_never_needs_to_be_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &[]);

    // `cluster add` prints the token in the environment, not as an argument...
    let added = hub.cli(&["cluster", "add", "edge-1"]);
    assert!(added.success(), "{}", added.stderr);
    let command = added
        .stdout
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("SWITCHYARD_JOIN_TOKEN=syb_"))
        .unwrap_or_else(|| panic!("no join command with the variable:\n{}", added.stdout))
        .to_owned();
    assert!(
        command.contains(" switchyard-agent join --hub ") && !command.contains("--token"),
        "{command}"
    );
    assert!(added.stdout.contains("--token-file"), "{}", added.stdout);
    // ...and that command, run as printed by a shell, enrolls.
    let agent_dir = switchyard_tests::process::binary("switchyard-agent")
        .parent()
        .unwrap()
        .display()
        .to_string();
    let state = dir.path().join("agent-edge-1");
    let script = format!("{command} --state-dir '{}'", state.display());
    let path = format!("{agent_dir}:{}", std::env::var("PATH").unwrap_or_default());
    let joined = switchyard_tests::process::run(
        std::path::Path::new("sh"),
        &["-c".to_owned(), script],
        &[("PATH", path)],
        SOON,
    );
    assert!(joined.success(), "{}", joined.stderr);
    assert_eq!(hub.cluster("edge-1")["state"], "enrolled");

    // --token-file reads the token from a file.
    let added = hub.cli_json(&["cluster", "add", "edge-2"]);
    let token_file = dir.path().join("join-token");
    std::fs::write(
        &token_file,
        format!("{}\n", added["token"].as_str().unwrap()),
    )
    .unwrap();
    let (_, pin) = hub.agent_endpoint();
    let hub_address = added["join_command"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .skip_while(|w| *w != "--hub")
        .nth(1)
        .unwrap()
        .to_owned();
    let state = dir.path().join("agent-edge-2");
    let args = [
        "join",
        "--hub",
        &hub_address,
        "--ca-sha256",
        &pin,
        "--token-file",
        token_file.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]
    .map(str::to_owned);
    let joined = switchyard_tests::process::run(
        &switchyard_tests::process::binary("switchyard-agent"),
        &args,
        &[],
        SOON,
    );
    assert!(joined.success(), "{}", joined.stderr);
    assert_eq!(hub.cluster("edge-2")["state"], "enrolled");
}

/// `switchyard ARGS` against `hub` from "another machine": `--server` with
/// `token` and the hub's CA.
fn remote_cli(hub: &TestHub, token: &str, args: &[&str]) -> switchyard_tests::process::Output {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend([
        "--server".into(),
        hub.admin_url(),
        "--server-ca-file".into(),
        hub.ca_file().display().to_string(),
    ]);
    switchyard_tests::process::run(
        &switchyard_tests::process::binary("switchyard"),
        &all,
        &[("SWITCHYARD_TOKEN", token.to_owned())],
        SOON,
    )
}

#[test]
fn a_restore_does_not_bring_back_spent_or_revoked_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let old_dir = dir.path().join("old");
    let new_dir = dir.path().join("new");
    let mut old = TestHub::start(&old_dir, &[]);

    // At backup time: a bootstrap token not used yet, and a good API token.
    let join = old.add_cluster("edge-1", &[]);
    let created = old.cli_json(&["token", "create", "ci", "--role", "viewer"]);
    let api_token = created["secret"].as_str().unwrap().to_owned();
    assert!(remote_cli(&old, &api_token, &["cluster", "list"]).success());
    let file = dir.path().join("hub.backup");
    old.cli_json(&["backup", file.to_str().unwrap()]);
    let old_admin = std::fs::read_to_string(old.data_dir().join("admin-token")).unwrap();

    // After it: the token is spent and the API token revoked.
    let agent = TestAgent::new(dir.path(), "edge-1");
    assert!(agent.join(&join).success());
    assert!(old.cli(&["token", "revoke", "ci"]).success());
    let quic_port = old.quic_port();
    old.process.terminate(SOON);

    let restored = switchyard_tests::process::run(
        &switchyard_tests::process::binary("switchyard"),
        &[
            "restore".into(),
            file.display().to_string(),
            "--data-dir".into(),
            new_dir.join("hub").display().to_string(),
        ],
        &[],
        SOON,
    );
    assert!(restored.success(), "{}", restored.stderr);
    for says in [
        "1 unused bootstrap tokens dropped",
        "1 API tokens revoked",
        "admin-token on its first start",
    ] {
        assert!(
            restored.stdout.contains(says),
            "{says}:\n{}",
            restored.stdout
        );
    }
    let new = TestHub::start_at(&new_dir, quic_port, &[]);

    // Neither credential works on the restored hub.
    let again = TestAgent::new(dir.path(), "edge-1-again");
    let refused = again.join(&join);
    assert!(!refused.success(), "the spent token enrolled again");
    assert!(
        refused.stderr.contains("unknown bootstrap token"),
        "{}",
        refused.stderr
    );
    let refused = remote_cli(&new, &api_token, &["cluster", "list"]);
    assert!(!refused.success(), "the revoked API token still works");
    assert!(
        refused.stderr.contains("revoked") && refused.stderr.contains("401"),
        "{}",
        refused.stderr
    );
    // Nor does the old built-in admin token; the new one does.
    let new_admin = std::fs::read_to_string(new.data_dir().join("admin-token")).unwrap();
    assert_ne!(new_admin.trim(), old_admin.trim());
    assert!(!remote_cli(&new, old_admin.trim(), &["cluster", "list"]).success());
    let listed = remote_cli(&new, new_admin.trim(), &["cluster", "list"]);
    assert!(listed.success(), "{}", listed.stderr);
    assert!(listed.stdout.contains("edge-1"), "{}", listed.stdout);
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The sled files of a store (the database file, its config, snapshots).
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn existing_data_and_state_dirs_are_made_private_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut hub = TestHub::start(dir.path(), &[]);
    let port = hub.quic_port();
    let mut agent = TestAgent::new(dir.path(), "edge-1");
    assert!(agent.join(&hub.add_cluster("edge-1", &[])).success());
    agent.start();
    assert!(hub.wait_connected("edge-1", true));
    agent.stop();
    hub.process.terminate(SOON);

    // Someone loosened the modes while both were stopped.
    let data = hub.data_dir();
    let store_files = files_under(&data.join("store"));
    assert!(!store_files.is_empty());
    set_mode(&data, 0o755);
    set_mode(&data.join("store"), 0o755);
    for file in &store_files {
        set_mode(file, 0o644);
    }
    set_mode(&data.join("ca/ca-key.pem"), 0o644);
    set_mode(&data.join("admin-token"), 0o640);
    set_mode(&agent.state_dir, 0o755);
    set_mode(&agent.state_dir.join("tls.key"), 0o644);

    let hub = TestHub::start_at(dir.path(), port, &[]);
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("store")), 0o700);
    // sled may have replaced a snapshot file since; every file still there
    // was loosened above, and the database file itself always is.
    assert_eq!(mode(&data.join("store/db")), 0o600);
    for file in store_files.iter().filter(|f| f.exists()) {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    assert_eq!(mode(&data.join("ca/ca-key.pem")), 0o600);
    assert_eq!(mode(&data.join("admin-token")), 0o600);
    assert!(
        hub.process
            .stderr_text()
            .contains("was readable by others; made private"),
        "{}",
        hub.process.stderr_text()
    );

    agent.start();
    assert!(hub.wait_connected("edge-1", true));
    assert_eq!(mode(&agent.state_dir), 0o700);
    assert_eq!(mode(&agent.state_dir.join("tls.key")), 0o600);
    agent.stop();
}

#[test]
fn a_first_start_creates_its_directories_and_files_private() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &[]);
    switchyard_tests::fleet::add_demo_app(&hub, dir.path(), "");
    let mut agent = TestAgent::new(dir.path(), "edge-1");
    assert!(agent.join(&hub.add_cluster("edge-1", &[])).success());
    agent.start();
    assert!(hub.wait_connected("edge-1", true));
    let bundles = agent.state_dir.join("cache/bundles");
    let held = || {
        std::fs::read_dir(&bundles)
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().ends_with(".zst"))
            })
            .unwrap_or(false)
    };
    assert!(
        switchyard_tests::process::wait_until(SOON, held),
        "the agent never cached the demo bundle"
    );

    // Nothing has had a second start to be tightened by.
    let data = hub.data_dir();
    for private_dir in [
        data.join("ca"),
        agent.state_dir.join("cache"),
        bundles.clone(),
    ] {
        assert_eq!(mode(&private_dir), 0o700, "{}", private_dir.display());
    }
    let mut files = vec![
        data.join("ca/ca.pem"),
        data.join("ca/server.pem"),
        data.join("hub.json"),
        agent.state_dir.join("cache/assignment.json"),
    ];
    files.extend(
        std::fs::read_dir(&bundles)
            .unwrap()
            .map(|e| e.unwrap().path()),
    );
    for file in files {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    agent.stop();
}

#[test]
fn an_empty_webhook_secret_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &[]);
    let empty = dir.path().join("empty-secret");
    std::fs::write(&empty, "\n").unwrap();
    let url = format!("file://{}", dir.path().join("no-repo").display());
    let added = hub.cli(&[
        "repo",
        "add",
        "demo",
        &url,
        "--webhook-secret-file",
        empty.to_str().unwrap(),
    ]);
    assert!(!added.success(), "{}", added.stdout);
    assert!(
        added.stderr.contains("webhook secret is empty"),
        "{}",
        added.stderr
    );
}

/// One series of the hub's `/metrics`, 0 when absent.
async fn scrape(hub: &TestHub, series: &str) -> f64 {
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(hub.admin_tls())
        .build()
        .unwrap();
    let text = client
        .get(format!("{}/metrics", hub.admin_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

fn app_status(app: &str, digest: &str, rows: usize) -> AppStatus {
    AppStatus {
        app: app.into(),
        commit: "c1".into(),
        digest: digest.into(),
        sync: SyncStatus::Synced,
        health: Health::Healthy,
        resources: (0..rows)
            .map(|i| ResourceStatus {
                group: String::new(),
                kind: "ConfigMap".into(),
                namespace: Some("default".into()),
                name: format!("cm-{i}"),
                sync: SyncStatus::Synced,
                health: Health::Healthy,
                message: None,
            })
            .collect(),
        last_error: None,
        observed_at: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_keep_assigned_apps_only_with_bounded_rows() {
    init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let hub = tokio::task::block_in_place(|| TestHub::start(dir.path(), &[]));
    let (addr, pin) = hub.agent_endpoint();
    let endpoint = raw::client_endpoint();
    let token = tokio::task::block_in_place(|| hub.add_cluster_token("edge-1", &["env=prod"]));
    let identity = raw::enroll(&endpoint, addr, &pin, &token)
        .await
        .expect("enrollment");
    let _source = tokio::task::block_in_place(|| {
        switchyard_tests::fleet::add_demo_app(&hub, dir.path(), "env=prod")
    });
    let conn = raw::connect_enrolled(
        &endpoint,
        addr,
        &identity,
        quinn::TransportConfig::default(),
    )
    .await;
    let get = Message::GetAssignment(GetAssignment {
        known_generation: 0,
    });
    let mut digest = None;
    for _ in 0..100 {
        match raw::answer_message(raw::request(&conn, &get).await) {
            Ok(Message::Assignment(a)) if !a.items.is_empty() => {
                digest = Some(a.items[0].digest.clone());
                break;
            }
            Ok(Message::Assignment(_)) => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await
            }
            other => panic!("{other:?}"),
        }
    }
    let digest = digest.expect("the demo app was never assigned");

    let too_many = switchyard_hub::status_reports::MAX_RESOURCES_PER_APP + 10;
    let report = Message::ReportStatus(StatusReport {
        agent_version: "raw-test".into(),
        kubernetes_version: None,
        apps: vec![
            app_status("demo", &digest, too_many),
            app_status("not-assigned", "sha256:00", 1),
        ],
    });
    match raw::answer_message(raw::request(&conn, &report).await) {
        Ok(Message::StatusAccepted(_)) => {}
        other => panic!("{other:?}"),
    }

    let rows = tokio::task::block_in_place(|| hub.cli_json(&["status", "demo"]));
    let row = &rows.as_array().unwrap()[0];
    assert_eq!(row["cluster"], "edge-1");
    assert_eq!(
        row["resources"].as_array().unwrap().len(),
        switchyard_hub::status_reports::MAX_RESOURCES_PER_APP
    );
    assert_eq!(
        scrape(&hub, "switchyard_status_apps_refused_total").await,
        1.0
    );
    assert_eq!(
        scrape(&hub, "switchyard_status_rows_dropped_total").await,
        10.0
    );
    assert_eq!(
        scrape(&hub, r#"switchyard_app_clusters_by_sync{sync="Synced"}"#).await,
        1.0
    );
}
