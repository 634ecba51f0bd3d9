//! Hostile and mismatched peers against the real hub and the real agent:
//! foreign certificates, missing certificates, garbage and oversized frames,
//! and protocol version mismatches on both sides.

use std::time::Duration;
use switchyard_common::proto::{
    Decoded, ErrorCode, GetAssignment, HEADER_LEN, Hello, Kind, Message, close_code, decode_frame,
};
use switchyard_tests::fleet::{SOON, TestAgent, TestHub, add_demo_app, join_args};
use switchyard_tests::raw::{self, FakeHub, RawAnswer};

fn hub_addr(hub: &TestHub) -> (std::net::SocketAddr, String) {
    hub.agent_endpoint()
}

fn decode_answer(bytes: &[u8]) -> Message {
    match decode_frame(bytes).expect("a decodable answer") {
        Decoded::Message(message, _) => message,
        Decoded::Incomplete(_) => panic!("truncated answer"),
    }
}

fn init_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_certificate_reaches_nothing_but_enrollment() {
    init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &[]);
    let (addr, pin) = hub_addr(&hub);
    let endpoint = raw::client_endpoint();

    for request in [
        Message::Hello(Hello {
            agent_version: "x".into(),
            kubernetes_version: None,
            generation: 0,
        }),
        Message::GetAssignment(GetAssignment {
            known_generation: 0,
        }),
    ] {
        let conn = raw::connect_without_certificate(&endpoint, addr, &pin)
            .await
            .expect("the handshake itself is allowed");
        let frame = switchyard_common::proto::encode_frame(&request).unwrap();
        match raw::exchange(&conn, &frame).await {
            RawAnswer::Bytes(bytes) => match decode_answer(&bytes) {
                Message::Error(e) => {
                    assert_eq!(e.code, ErrorCode::Unauthenticated);
                    assert!(e.message.contains("only enrollment"), "{}", e.message);
                }
                other => panic!("expected an error, got {other:?}"),
            },
            RawAnswer::Closed(reason) => panic!("closed without an answer: {reason}"),
        }
        let reason = raw::closed(&conn).await;
        assert_eq!(
            raw::close_code(&reason),
            Some(u64::from(close_code::UNAUTHENTICATED))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_a_foreign_ca_is_refused_in_the_handshake() {
    init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &[]);
    let (addr, _pin) = hub_addr(&hub);

    // A foreign CA issues a perfectly formed cluster certificate.
    let foreign =
        switchyard_certs::CertificateAuthority::load_or_create(&dir.path().join("foreign"))
            .unwrap();
    let key = switchyard_certs::AgentKey::generate().unwrap();
    let cert = foreign
        .sign_cluster_csr(
            &key.csr_pem("edge-1").unwrap(),
            &switchyard_common::ClusterName::new("edge-1").unwrap(),
            Duration::from_secs(3600),
        )
        .unwrap();
    // Trust the real hub's CA so only the client side can fail.
    let hub_ca = std::fs::read_to_string(hub.data_dir().join("ca/ca.pem")).unwrap();
    let tls = switchyard_certs::agent_client_config(&hub_ca, &cert.cert_pem, &key).unwrap();
    let endpoint = raw::client_endpoint();
    let connecting = endpoint
        .connect_with(raw::quic_client_config(tls), addr, "127.0.0.1")
        .unwrap();
    // With TLS 1.3 the client may finish before the server rejects its
    // certificate; then the refusal shows on the first stream.
    match tokio::time::timeout(raw::EXCHANGE_TIMEOUT, connecting)
        .await
        .unwrap()
    {
        Err(refused) => {
            assert!(
                matches!(
                    refused,
                    quinn::ConnectionError::TransportError(_)
                        | quinn::ConnectionError::ConnectionClosed(_)
                ),
                "{refused}"
            );
        }
        Ok(conn) => {
            let frame =
                switchyard_common::proto::encode_frame(&Message::GetAssignment(GetAssignment {
                    known_generation: 0,
                }))
                .unwrap();
            match raw::exchange(&conn, &frame).await {
                RawAnswer::Closed(reason) => {
                    assert!(
                        matches!(
                            reason,
                            quinn::ConnectionError::ConnectionClosed(_)
                                | quinn::ConnectionError::TransportError(_)
                        ),
                        "{reason}"
                    );
                }
                RawAnswer::Bytes(bytes) => panic!("foreign certificate got an answer: {bytes:?}"),
            }
        }
    }
    // The hub itself is unaffected.
    assert!(hub.cli(&["cluster", "list"]).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_oversized_frames_close_only_the_offending_connection() {
    init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &[]);
    let (addr, pin) = hub_addr(&hub);
    let mut agent = TestAgent::new(dir.path(), "edge-1");
    assert!(agent.join(&hub.add_cluster("edge-1", &[])).success());
    agent.start();
    assert!(hub.wait_connected("edge-1", true));
    let endpoint = raw::client_endpoint();

    let mut oversized = Vec::new();
    oversized.extend_from_slice(&(Kind::Enroll.limit() + 1).to_be_bytes());
    oversized.extend_from_slice(&raw::CURRENT_VERSION.to_be_bytes());
    oversized.push(Kind::Enroll as u8);
    let mut bad_body = Vec::new();
    bad_body.extend_from_slice(&16u32.to_be_bytes());
    bad_body.extend_from_slice(&raw::CURRENT_VERSION.to_be_bytes());
    bad_body.push(Kind::Enroll as u8);
    bad_body.extend_from_slice(&[0xff; 16]);
    let mut unknown_kind = Vec::new();
    unknown_kind.extend_from_slice(&8u32.to_be_bytes());
    unknown_kind.extend_from_slice(&raw::CURRENT_VERSION.to_be_bytes());
    unknown_kind.push(0xee);
    unknown_kind.extend_from_slice(&[0x5a; 8]);
    let truncated = {
        let mut frame =
            switchyard_common::proto::encode_frame(&Message::GetAssignment(GetAssignment {
                known_generation: 0,
            }))
            .unwrap();
        frame.truncate(frame.len() - 1);
        frame
    };

    for (what, bytes) in [
        ("oversized", oversized),
        ("malformed body", bad_body),
        ("unknown kind", unknown_kind),
        ("truncated", truncated),
    ] {
        let conn = raw::connect_without_certificate(&endpoint, addr, &pin)
            .await
            .unwrap();
        let answer = raw::exchange(&conn, &bytes).await;
        if let RawAnswer::Bytes(bytes) = &answer {
            match decode_answer(bytes) {
                Message::Error(e) => {
                    assert_eq!(e.code, ErrorCode::BadRequest, "{what}: {}", e.message)
                }
                other => panic!("{what}: expected an error, got {other:?}"),
            }
        }
        let reason = raw::closed(&conn).await;
        assert_eq!(
            raw::close_code(&reason),
            Some(u64::from(close_code::PROTOCOL_ERROR)),
            "{what}: {reason}"
        );
    }

    // Pure noise: whatever its first bytes claim, the connection is closed
    // with a protocol error or a version mismatch, never served.
    let noise: Vec<u8> = (0..200u32).map(|i| (i * 37 % 251) as u8).collect();
    let conn = raw::connect_without_certificate(&endpoint, addr, &pin)
        .await
        .unwrap();
    let _ = raw::exchange(&conn, &noise).await;
    let reason = raw::closed(&conn).await;
    let code = raw::close_code(&reason).expect("closed by the hub");
    assert!(
        code == u64::from(close_code::PROTOCOL_ERROR)
            || code == u64::from(close_code::UNSUPPORTED_VERSION),
        "{reason}"
    );

    // The enrolled agent kept its connection and still hears from the hub.
    assert!(hub.is_connected("edge-1"));
    let _source = tokio::task::block_in_place(|| add_demo_app(&hub, dir.path(), "after=garbage"));
    assert!(
        hub.cli(&["cluster", "label", "edge-1", "after=garbage"])
            .success()
    );
    assert!(
        agent
            .process()
            .wait_for_stdout("would apply ConfigMap demo", SOON)
    );
    assert!(
        !agent
            .process()
            .stderr_text()
            .contains("connection to the hub failed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_names_a_protocol_version_mismatch() {
    init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &[]);
    let (addr, pin) = hub_addr(&hub);
    let endpoint = raw::client_endpoint();
    let conn = raw::connect_without_certificate(&endpoint, addr, &pin)
        .await
        .unwrap();
    let hello = Message::Hello(Hello {
        agent_version: "9.0.0".into(),
        kubernetes_version: None,
        generation: 0,
    });
    let next = raw::CURRENT_VERSION + 1;
    let answer = raw::exchange(&conn, &raw::frame_with_version(&hello, next)).await;
    let RawAnswer::Bytes(bytes) = answer else {
        panic!("closed without an answer: {answer:?}");
    };
    assert!(bytes.len() > HEADER_LEN);
    match decode_answer(&bytes) {
        Message::Error(e) => {
            assert_eq!(e.code, ErrorCode::UnsupportedVersion);
            assert!(
                e.message.contains(&format!("version {next}"))
                    && e.message
                        .contains(&format!("version {}", raw::CURRENT_VERSION)),
                "{}",
                e.message
            );
        }
        other => panic!("expected an error, got {other:?}"),
    }
    let reason = raw::closed(&conn).await;
    assert_eq!(
        raw::close_code(&reason),
        Some(u64::from(close_code::UNSUPPORTED_VERSION))
    );
    assert!(
        hub.process
            .wait_for_log(&format!("peer speaks protocol version {next}"), SOON)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_names_a_protocol_version_mismatch() {
    init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let next = raw::CURRENT_VERSION + 1;
    let fake = FakeHub::start(next).await;
    let join = join_args(&serde_json::json!({
        "join_command": format!(
            "switchyard-agent join --hub {} --token syb_fake --ca-sha256 {}",
            fake.addr, fake.ca_sha256
        )
    }));
    let mut agent = TestAgent::new(dir.path(), "fake-cluster");
    let joined = tokio::task::block_in_place(|| agent.join(&join));
    assert!(joined.success(), "{}", joined.stderr);
    agent.start();
    let named = tokio::task::block_in_place(|| {
        agent.process().wait_for_log(
            &format!(
                "peer speaks protocol version {next}, this side speaks version {}",
                raw::CURRENT_VERSION
            ),
            SOON,
        )
    });
    assert!(named, "{}", agent.process().stderr_text());
    // It is an error the agent survives: it keeps retrying for when the
    // hub (or the agent) is upgraded.
    assert!(agent.process().is_running());
}
