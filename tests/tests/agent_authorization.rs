//! Who may ask the hub what over the agent protocol: every request kind,
//! sent by every kind of caller, to the real hub over real QUIC, checked
//! against one table of expected answers.
//!
//! The callers: the cluster itself (`own`); another enrolled cluster asking
//! for `own`'s things (`other`); a removed cluster; `own`'s key with a
//! certificate from the hub's CA that carries `own`'s serial but expired
//! yesterday; no client certificate; and a certificate for `own`'s name
//! from a foreign CA. Every request except Hello and Enroll is sent after a
//! Hello, as a real agent does; a caller without a certificate sends it as
//! its first and only request.

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use switchyard_certs::AgentKey;
use switchyard_common::proto::{
    AppStatus, Decoded, Enroll, GetAssignment, GetBundle, Health, Hello, Message, Notification,
    RenewCertificate, ReportDiff, StatusReport, SyncStatus, decode_frame, encode_frame,
};
use switchyard_tests::fleet::{SOON, TestHub, add_demo_app, join_args};
use switchyard_tests::raw::{self, RawAnswer};

/// Columns of the table.
const CALLERS: [&str; 6] = [
    "own",
    "other",
    "removed",
    "expired",
    "no cert",
    "foreign CA",
];

/// What a caller that never gets past the handshake or the certificate
/// check sees, whatever it asks.
const REVOKED: &str = "closed 2 (revoked)";
const EXPIRED: &str = "TLS alert 45 (certificate expired)";
const NO_CERT: &str = "Error Unauthenticated; closed 5";
/// The foreign CA has the hub CA's name, so the chain is built and its
/// signature check fails: decrypt_error.
const FOREIGN: &str = "TLS alert 51 (bad signature)";

/// Rows of the table: the request, and the expected answer per caller, in
/// the order of [`CALLERS`]. `other` always asks for `own`'s things.
const EXPECTED: [(&str, [&str; 6]); 8] = [
    (
        "Enroll",
        [
            "Error BadRequest; token unused",
            "Error BadRequest; token unused",
            REVOKED,
            EXPIRED,
            "Enrolled join-no-cert; token spent",
            FOREIGN,
        ],
    ),
    (
        "Hello",
        [
            "Welcome own",
            "Welcome other",
            REVOKED,
            EXPIRED,
            NO_CERT,
            FOREIGN,
        ],
    ),
    (
        "GetAssignment",
        [
            "Assignment [demo]",
            "Assignment []",
            REVOKED,
            EXPIRED,
            NO_CERT,
            FOREIGN,
        ],
    ),
    (
        "GetBundle of own's app",
        [
            "Bundle of own's demo",
            "Error NotFound",
            REVOKED,
            EXPIRED,
            NO_CERT,
            FOREIGN,
        ],
    ),
    (
        "ReportStatus of own's app",
        [
            "StatusAccepted; own's row shows it",
            "StatusAccepted; own's row unchanged",
            REVOKED,
            EXPIRED,
            NO_CERT,
            FOREIGN,
        ],
    ),
    (
        "Notify (a hub's message)",
        [
            "Error BadRequest",
            "Error BadRequest",
            REVOKED,
            EXPIRED,
            NO_CERT,
            FOREIGN,
        ],
    ),
    (
        "RenewCertificate naming own",
        [
            "CertificateRenewed for own",
            "CertificateRenewed for other",
            REVOKED,
            EXPIRED,
            NO_CERT,
            FOREIGN,
        ],
    ),
    // A diff nobody asked for (no request of that id waits for the
    // caller) is refused; the connection stays.
    (
        "ReportDiff nobody asked for",
        [
            "Error NotFound",
            "Error NotFound",
            REVOKED,
            EXPIRED,
            NO_CERT,
            FOREIGN,
        ],
    ),
];

/// A client identity: certificate chain PEM and its key.
struct Identity {
    cert_pem: String,
    key: AgentKey,
}

struct Env {
    hub: TestHub,
    addr: SocketAddr,
    pin: String,
    hub_ca_pem: String,
    endpoint: quinn::Endpoint,
    /// Per column; `None` for the caller without a certificate.
    identities: Vec<Option<Identity>>,
    /// Digest and commit of the bundle assigned to `own`.
    own_digest: String,
    own_commit: String,
}

fn init_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn frame(message: &Message) -> Vec<u8> {
    encode_frame(message).expect("encodable")
}

fn decode_answer(bytes: &[u8]) -> Message {
    match decode_frame(bytes) {
        Ok(Decoded::Message(message, _)) => message,
        other => panic!("undecodable answer {other:?}: {bytes:?}"),
    }
}

fn hello() -> Message {
    Message::Hello(Hello {
        agent_version: "0.1.0".into(),
        kubernetes_version: None,
        generation: 0,
    })
}

/// The join token of a `cluster add -o json` answer.
fn add_cluster(hub: &TestHub, name: &str, labels: &[&str]) -> String {
    let mut args = vec!["cluster", "add", name];
    for label in labels {
        args.extend(["--label", label]);
    }
    let args = join_args(&hub.cli_json(&args));
    let i = args.iter().position(|a| a == "--token").expect("--token");
    args[i + 1].clone()
}

impl Env {
    async fn connect(&self, column: usize) -> Result<quinn::Connection, quinn::ConnectionError> {
        match &self.identities[column] {
            None => raw::connect_without_certificate(&self.endpoint, self.addr, &self.pin).await,
            Some(identity) => {
                let tls = switchyard_certs::agent_client_config(
                    &self.hub_ca_pem,
                    &identity.cert_pem,
                    &identity.key,
                )
                .expect("client tls");
                let connecting = self
                    .endpoint
                    .connect_with(raw::quic_client_config(tls), self.addr, "127.0.0.1")
                    .expect("connect");
                tokio::time::timeout(raw::EXCHANGE_TIMEOUT, connecting)
                    .await
                    .expect("handshake within the exchange timeout")
            }
        }
    }

    /// Enroll a fresh key with `token` over a connection without certificate.
    async fn enroll(&self, name: &str, token: &str) -> Identity {
        let key = AgentKey::generate().unwrap();
        let conn = raw::connect_without_certificate(&self.endpoint, self.addr, &self.pin)
            .await
            .unwrap();
        let request = Message::Enroll(Enroll {
            token: token.to_owned(),
            csr_pem: key.csr_pem(name).unwrap(),
            agent_version: "0.1.0".into(),
        });
        match raw::exchange(&conn, &frame(&request)).await {
            RawAnswer::Bytes(bytes) => match decode_answer(&bytes) {
                Message::Enrolled(enrolled) => {
                    assert_eq!(enrolled.cluster.as_str(), name);
                    Identity {
                        cert_pem: enrolled.cert_pem,
                        key,
                    }
                }
                other => panic!("enrolling {name}: {other:?}"),
            },
            RawAnswer::Closed(reason) => panic!("enrolling {name}: {reason}"),
        }
    }

    /// Own's status row of app demo, as `switchyard status` shows it.
    fn own_row(&self) -> Value {
        let rows = blocking(|| self.hub.cli_json(&["status"]));
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["app"] == "demo" && r["cluster"] == "own")
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Whether cluster `name` has enrolled.
    fn enrolled(&self, name: &str) -> bool {
        blocking(|| self.hub.cluster(name))["state"] == "enrolled"
    }

    /// Run one cell and describe what the caller got.
    async fn cell(&self, row: usize, column: usize) -> String {
        let caller = CALLERS[column].to_lowercase().replace(" ", "-");
        let join_cluster = format!("join-{caller}");
        let request = match row {
            0 => {
                let token = blocking(|| add_cluster(&self.hub, &join_cluster, &[]));
                let key = AgentKey::generate().unwrap();
                Message::Enroll(Enroll {
                    token,
                    csr_pem: key.csr_pem(&join_cluster).unwrap(),
                    agent_version: "0.1.0".into(),
                })
            }
            1 => hello(),
            2 => Message::GetAssignment(GetAssignment {
                known_generation: 0,
            }),
            3 => Message::GetBundle(GetBundle {
                digest: self.own_digest.clone(),
            }),
            4 => Message::ReportStatus(StatusReport {
                agent_version: "0.1.0".into(),
                kubernetes_version: None,
                apps: vec![AppStatus {
                    app: "demo".into(),
                    commit: self.own_commit.clone(),
                    digest: self.own_digest.clone(),
                    sync: SyncStatus::OutOfSync,
                    health: Health::Degraded,
                    resources: vec![],
                    last_error: Some(format!("report from {caller}")),
                    observed_at: switchyard_hub::unix_now(),
                }],
            }),
            5 => Message::Notify(Notification::Resync),
            6 => {
                let key = AgentKey::generate().unwrap();
                Message::RenewCertificate(RenewCertificate {
                    csr_pem: key.csr_pem("own").unwrap(),
                })
            }
            7 => Message::ReportDiff(ReportDiff {
                request_id: 1,
                app: "demo".into(),
                objects: Vec::new(),
                truncated: false,
                error: None,
            }),
            _ => unreachable!(),
        };
        let conn = match self.connect(column).await {
            Ok(conn) => conn,
            Err(refused) => return describe_close(&refused),
        };
        let with_certificate = self.identities[column].is_some();
        if with_certificate && row != 1 {
            match raw::exchange(&conn, &frame(&hello())).await {
                RawAnswer::Bytes(bytes) => match decode_answer(&bytes) {
                    Message::Welcome(_) => {}
                    other => return format!("Hello answered {}", describe(self, &other)),
                },
                RawAnswer::Closed(reason) => return describe_close(&reason),
            }
        }
        let answer = match raw::exchange(&conn, &frame(&request)).await {
            RawAnswer::Bytes(bytes) => decode_answer(&bytes),
            RawAnswer::Closed(reason) => return describe_close(&reason),
        };
        let mut text = describe(self, &answer);
        if let Message::Error(_) = answer {
            // Whether the hub closed the connection after its error: it
            // takes no more requests then, so a second one ends in the close.
            let probe = Message::GetAssignment(GetAssignment {
                known_generation: 0,
            });
            if let RawAnswer::Closed(reason) = raw::exchange(&conn, &frame(&probe)).await {
                text = format!("{text}; {}", describe_close(&reason));
            }
        }
        match row {
            0 => {
                let spent = self.enrolled(&join_cluster);
                text = format!("{text}; token {}", if spent { "spent" } else { "unused" });
            }
            4 if matches!(answer, Message::StatusAccepted(_)) => {
                let shown = self.own_row()["message"] == format!("report from {caller}").as_str();
                text = format!(
                    "{text}; own's row {}",
                    if shown { "shows it" } else { "unchanged" }
                );
            }
            _ => {}
        }
        conn.close(0u32.into(), b"cell done");
        text
    }
}

fn describe(env: &Env, message: &Message) -> String {
    match message {
        Message::Welcome(w) => format!("Welcome {}", w.cluster),
        Message::Enrolled(e) => format!("Enrolled {}", e.cluster),
        Message::Assignment(a) => {
            let apps: Vec<&str> = a.items.iter().map(|i| i.app.as_str()).collect();
            format!("Assignment [{}]", apps.join(", "))
        }
        Message::Bundle(b) if b.digest == env.own_digest => "Bundle of own's demo".into(),
        Message::Bundle(b) => format!("Bundle {}", b.digest),
        Message::StatusAccepted(_) => "StatusAccepted".into(),
        Message::CertificateRenewed(renewed) => {
            let der = CertificateDer::from_pem_slice(renewed.cert_pem.as_bytes()).unwrap();
            let peer = switchyard_certs::peer_identity(&der).unwrap();
            format!("CertificateRenewed for {}", peer.cluster)
        }
        Message::Error(e) => format!("Error {:?}", e.code),
        other => format!("{:?}", other.kind()),
    }
}

/// Why a connection ended, from the client's side.
fn describe_close(error: &quinn::ConnectionError) -> String {
    match error {
        quinn::ConnectionError::ApplicationClosed(close) => {
            let code = close.error_code.into_inner();
            let name = match code {
                1 => "protocol error",
                2 => "revoked",
                4 => "superseded",
                5 => return format!("closed {code}"),
                _ => "other",
            };
            format!("closed {code} ({name})")
        }
        quinn::ConnectionError::ConnectionClosed(close) => {
            // A TLS alert travels as a QUIC CRYPTO_ERROR: 0x100 + the alert.
            let code = u64::from(close.error_code);
            match code.checked_sub(0x100).filter(|alert| *alert < 0x100) {
                Some(45) => "TLS alert 45 (certificate expired)".into(),
                Some(48) => "TLS alert 48 (unknown CA)".into(),
                Some(51) => "TLS alert 51 (bad signature)".into(),
                Some(alert) => format!("TLS alert {alert}"),
                None => format!("transport close {error}"),
            }
        }
        other => format!("connection error {other}"),
    }
}

/// A certificate for `own`'s name, key and serial from the hub's CA, valid
/// from two days ago until yesterday: only its expiry can refuse it.
fn expired_copy(hub: &TestHub, own: &Identity) -> Identity {
    let ca_dir = hub.data_dir().join("ca");
    let ca_pem = std::fs::read_to_string(ca_dir.join("ca.pem")).unwrap();
    let ca_key =
        KeyPair::from_pem(&std::fs::read_to_string(ca_dir.join("ca-key.pem")).unwrap()).unwrap();
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).unwrap();
    let own_der = CertificateDer::from_pem_slice(own.cert_pem.as_bytes()).unwrap();
    let own_peer = switchyard_certs::peer_identity(&own_der).unwrap();

    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "own");
    dn.push(DnType::OrganizationName, "switchyard-cluster");
    params.distinguished_name = dn;
    params.subject_alt_names = vec![SanType::URI("switchyard://cluster/own".try_into().unwrap())];
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(SerialNumber::from_slice(
        &hex::decode(&own_peer.serial).unwrap(),
    ));
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(2);
    params.not_after = now - time::Duration::days(1);
    let key = KeyPair::from_pem(&own.key.to_pem()).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let copy_der = CertificateDer::from(cert.der().to_vec());
    // Same identity as far as the hub's serial check goes.
    assert_eq!(
        switchyard_certs::peer_identity(&copy_der).unwrap().serial,
        own_peer.serial
    );
    Identity {
        cert_pem: cert.pem(),
        key: AgentKey::from_pem(&own.key.to_pem()).unwrap(),
    }
}

/// A perfectly formed certificate for `own` from another CA.
fn foreign_identity(dir: &std::path::Path) -> Identity {
    let foreign =
        switchyard_certs::CertificateAuthority::load_or_create(&dir.join("foreign-ca")).unwrap();
    let key = AgentKey::generate().unwrap();
    let issued = foreign
        .sign_cluster_csr(
            &key.csr_pem("own").unwrap(),
            &switchyard_common::ClusterName::new("own").unwrap(),
            Duration::from_secs(3600),
        )
        .unwrap();
    Identity {
        cert_pem: issued.cert_pem,
        key,
    }
}

async fn setup(dir: &std::path::Path) -> Env {
    // Every row is also tried without a certificate, each an enrollment
    // attempt from 127.0.0.1: a burst the table's rows fit into.
    let hub = TestHub::start(dir, &["--enroll-burst", "20"]);
    let endpoints: Value =
        serde_json::from_slice(&std::fs::read(hub.data_dir().join("hub.json")).unwrap()).unwrap();
    let addr = endpoints["agent_address"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let pin = endpoints["ca_sha256"].as_str().unwrap().to_owned();
    let hub_ca_pem = std::fs::read_to_string(hub.data_dir().join("ca/ca.pem")).unwrap();
    let own_token = blocking(|| add_cluster(&hub, "own", &["team=a"]));
    let other_token = blocking(|| add_cluster(&hub, "other", &["team=b"]));
    let removed_token = blocking(|| add_cluster(&hub, "removed", &["team=a"]));
    let mut env = Env {
        hub,
        addr,
        pin,
        hub_ca_pem,
        endpoint: raw::client_endpoint(),
        identities: Vec::new(),
        own_digest: String::new(),
        own_commit: String::new(),
    };
    let own = env.enroll("own", &own_token).await;
    let other = env.enroll("other", &other_token).await;
    let removed = env.enroll("removed", &removed_token).await;
    let expired = expired_copy(&env.hub, &own);
    let foreign = foreign_identity(dir);
    env.identities = vec![
        Some(own),
        Some(other),
        Some(removed),
        Some(expired),
        None,
        Some(foreign),
    ];

    let _source = blocking(|| add_demo_app(&env.hub, dir, "team=a"));
    // Wait (bounded) until own's assignment carries the demo bundle.
    let deadline = Instant::now() + SOON;
    while env.own_digest.is_empty() {
        assert!(Instant::now() < deadline, "own was never assigned demo");
        let conn = env.connect(0).await.unwrap();
        let _ = raw::exchange(&conn, &frame(&hello())).await;
        let get = Message::GetAssignment(GetAssignment {
            known_generation: 0,
        });
        if let RawAnswer::Bytes(bytes) = raw::exchange(&conn, &frame(&get)).await
            && let Message::Assignment(a) = decode_answer(&bytes)
            && let Some(item) = a.items.first()
        {
            env.own_digest = item.digest.clone();
            env.own_commit = item.commit.clone();
        } else {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        conn.close(0u32.into(), b"setup");
    }
    let removed = blocking(|| env.hub.cli(&["cluster", "remove", "removed"]));
    assert!(removed.success(), "{}", removed.stderr);
    env
}

/// The table as text: one line per request, one column per caller.
fn render(table: &[(&str, Vec<String>)]) -> String {
    let first = table.iter().map(|(r, _)| r.len()).max().unwrap_or(0);
    let mut widths: Vec<usize> = CALLERS.iter().map(|c| c.len()).collect();
    for (_, cells) in table {
        for (w, cell) in widths.iter_mut().zip(cells) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = format!("{:first$}", "request \\ caller");
    for (c, w) in CALLERS.iter().zip(&widths) {
        out.push_str(&format!(" | {c:w$}"));
    }
    out.push('\n');
    for (request, cells) in table {
        out.push_str(&format!("{request:first$}"));
        for (cell, w) in cells.iter().zip(&widths) {
            out.push_str(&format!(" | {cell:w$}"));
        }
        out.push('\n');
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_agent_request_against_every_kind_of_caller() {
    init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let env = setup(dir.path()).await;

    let mut table = Vec::new();
    let mut wrong = Vec::new();
    for (row, (request, expected)) in EXPECTED.iter().enumerate() {
        let mut cells = Vec::new();
        for (column, want) in expected.iter().enumerate() {
            let got = env.cell(row, column).await;
            if got != *want {
                wrong.push(format!(
                    "{request} as {}: got {got:?}, want {want:?}",
                    CALLERS[column]
                ));
            }
            cells.push(got);
        }
        table.push((*request, cells));
    }
    println!("{}", render(&table));
    assert!(
        wrong.is_empty(),
        "{}\n\n{}",
        wrong.join("\n"),
        render(&table)
    );
    // No refused caller left a trace: own's row still shows own's report,
    // and the removed cluster did not come back.
    assert_eq!(env.own_row()["message"], "report from own");
    let clusters = blocking(|| env.hub.cli_json(&["cluster", "list"]));
    assert!(
        !clusters
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "removed"),
        "{clusters}"
    );
}

#[test]
fn the_table_covers_every_request_kind_an_agent_can_send() {
    // Every kind but the hub's answers is a row; Notify stands for those.
    let rows: Vec<&str> = EXPECTED
        .iter()
        .map(|(r, _)| r.split_whitespace().next().unwrap())
        .collect();
    for kind in switchyard_common::proto::Kind::ALL {
        use switchyard_common::proto::Kind::*;
        let sent_by_agents = matches!(
            kind,
            Hello
                | Enroll
                | GetAssignment
                | GetBundle
                | ReportStatus
                | RenewCertificate
                | ReportDiff
        );
        if sent_by_agents {
            assert!(
                rows.contains(&format!("{kind:?}").as_str()),
                "{kind:?} has no row"
            );
        }
    }
}
