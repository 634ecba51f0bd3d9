//! Raw protocol peers for tests: a QUIC client that sends arbitrary bytes to
//! the real hub, and a minimal fake hub that answers the real agent with
//! frames of our choosing (for example from a future protocol version).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use switchyard_certs::{AgentKey, CertificateAuthority, ServerCertificate, hub_server_config};
use switchyard_common::ClusterName;
use switchyard_common::proto::{
    Enroll, Enrolled, Hello, Message, PROTOCOL_VERSION, Welcome, encode_frame, read_message,
    write_message,
};

/// Bound on every raw exchange.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// A client endpoint on an ephemeral loopback port.
pub fn client_endpoint() -> quinn::Endpoint {
    quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).expect("client endpoint")
}

/// A client endpoint on an ephemeral port of loopback address `127.0.0.N`:
/// the whole 127/8 is loopback on Linux, so a test can play peers from
/// several source addresses against per-IP limits.
pub fn client_endpoint_on(n: u8) -> quinn::Endpoint {
    let addr = SocketAddr::from(([127, 0, 0, n], 0));
    quinn::Endpoint::client(addr).expect("client endpoint on a loopback address")
}

pub fn quic_client_config(tls: rustls::ClientConfig) -> quinn::ClientConfig {
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).expect("TLS 1.3 config");
    quinn::ClientConfig::new(Arc::new(crypto))
}

/// Connect to the hub without a client certificate, pinning its CA.
pub async fn connect_without_certificate(
    endpoint: &quinn::Endpoint,
    hub: SocketAddr,
    ca_sha256: &str,
) -> Result<quinn::Connection, quinn::ConnectionError> {
    let (tls, _probe) = switchyard_certs::bootstrap_client_config(ca_sha256).expect("pin");
    endpoint
        .connect_with(quic_client_config(tls), hub, "127.0.0.1")
        .expect("connect")
        .await
}

/// Start a handshake from `socket` and never finish it: one Initial packet
/// (a real ClientHello, as quinn builds it) and nothing more. The hub
/// answers and then waits for a peer that is gone. Like a hostile peer, it
/// advertises no idle timeout, so the hub's own (60 s) is the one that
/// applies.
pub fn abandoned_handshake(socket: &std::net::UdpSocket, hub: SocketAddr, ca_sha256: &str) {
    let (tls, _probe) = switchyard_certs::bootstrap_client_config(ca_sha256).expect("pin");
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).expect("TLS 1.3 config");
    let mut endpoint = quinn_proto::Endpoint::new(
        Arc::new(quinn_proto::EndpointConfig::default()),
        None,
        false,
        None,
    );
    let now = std::time::Instant::now();
    let mut config = quinn_proto::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn_proto::TransportConfig::default();
    transport.max_idle_timeout(None);
    config.transport_config(Arc::new(transport));
    let (_, mut conn) = endpoint
        .connect(now, config, hub, "127.0.0.1")
        .expect("connect");
    let mut datagram = Vec::new();
    let transmit = conn
        .poll_transmit(now, 1, &mut datagram)
        .expect("a client's first flight");
    socket
        .send_to(&datagram[..transmit.size], hub)
        .expect("send the Initial");
}

/// Send `message` on a new stream and read the answer (bounded).
pub async fn request(conn: &quinn::Connection, message: &Message) -> RawAnswer {
    exchange(conn, &encode_frame(message).expect("encodable")).await
}

/// The message in an answer, or why there was none.
pub fn answer_message(answer: RawAnswer) -> Result<Message, String> {
    match answer {
        RawAnswer::Bytes(bytes) => match switchyard_common::proto::decode_frame(&bytes) {
            Ok(switchyard_common::proto::Decoded::Message(message, _)) => Ok(message),
            other => Err(format!("undecodable answer: {other:?}")),
        },
        RawAnswer::Closed(reason) => Err(format!("connection closed: {reason}")),
    }
}

/// A cluster identity obtained through the raw protocol.
pub struct RawIdentity {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key: AgentKey,
}

/// Enroll with `token` over a connection without certificate; the hub's
/// answer if it is not `Enrolled`.
pub async fn enroll(
    endpoint: &quinn::Endpoint,
    hub: SocketAddr,
    ca_sha256: &str,
    token: &str,
) -> Result<RawIdentity, Message> {
    let conn = connect_without_certificate(endpoint, hub, ca_sha256)
        .await
        .expect("bootstrap connection");
    let key = AgentKey::generate().expect("key");
    let enroll = Message::Enroll(Enroll {
        token: token.to_owned(),
        csr_pem: key.csr_pem("raw").expect("csr"),
        agent_version: "raw-test".into(),
    });
    let answer = answer_message(request(&conn, &enroll).await)
        .unwrap_or_else(|e| panic!("enrollment got no answer: {e}"));
    conn.close(0u32.into(), b"done");
    match answer {
        Message::Enrolled(enrolled) => Ok(RawIdentity {
            ca_pem: enrolled.ca_pem,
            cert_pem: enrolled.cert_pem,
            key,
        }),
        other => Err(other),
    }
}

/// Connect with a cluster certificate and send Hello; the connection after
/// the hub's Welcome. `transport` shapes the client side (for example a tiny
/// receive window for a peer that reads slowly).
pub async fn connect_enrolled(
    endpoint: &quinn::Endpoint,
    hub: SocketAddr,
    identity: &RawIdentity,
    transport: quinn::TransportConfig,
) -> quinn::Connection {
    let tls =
        switchyard_certs::agent_client_config(&identity.ca_pem, &identity.cert_pem, &identity.key)
            .expect("mTLS config");
    let mut config = quic_client_config(tls);
    config.transport_config(Arc::new(transport));
    let conn = endpoint
        .connect_with(config, hub, "127.0.0.1")
        .expect("connect")
        .await
        .expect("handshake with a cluster certificate");
    let hello = Message::Hello(Hello {
        agent_version: "raw-test".into(),
        kubernetes_version: None,
        generation: 0,
    });
    match answer_message(request(&conn, &hello).await) {
        Ok(Message::Welcome(_)) => conn,
        other => panic!("expected Welcome, got {other:?}"),
    }
}

/// What came back after sending raw bytes on a new stream.
#[derive(Debug)]
pub enum RawAnswer {
    /// Bytes the peer sent before finishing the stream.
    Bytes(Vec<u8>),
    /// The connection was closed; the reason.
    Closed(quinn::ConnectionError),
}

/// Open a stream, write `bytes`, finish, and read the answer (bounded).
pub async fn exchange(conn: &quinn::Connection, bytes: &[u8]) -> RawAnswer {
    let attempt = async {
        let (mut send, mut recv) = conn.open_bi().await?;
        // Write errors show up as a closed connection below.
        let _ = send.write_all(bytes).await;
        let _ = send.finish();
        match recv.read_to_end(1 << 20).await {
            Ok(answer) => Ok(answer),
            Err(_) => Err(conn.closed().await),
        }
    };
    match tokio::time::timeout(EXCHANGE_TIMEOUT, attempt).await {
        Ok(Ok(answer)) => RawAnswer::Bytes(answer),
        Ok(Err(closed)) => RawAnswer::Closed(closed),
        Err(_) => panic!("no answer within {EXCHANGE_TIMEOUT:?}"),
    }
}

/// Wait (bounded) for the peer to close the connection and return why.
pub async fn closed(conn: &quinn::Connection) -> quinn::ConnectionError {
    tokio::time::timeout(EXCHANGE_TIMEOUT, conn.closed())
        .await
        .expect("connection not closed in time")
}

/// The application close code, if the peer closed with one.
pub fn close_code(error: &quinn::ConnectionError) -> Option<u64> {
    match error {
        quinn::ConnectionError::ApplicationClosed(close) => Some(close.error_code.into_inner()),
        _ => None,
    }
}

/// Encode `message`, then overwrite the header's protocol version.
pub fn frame_with_version(message: &Message, version: u16) -> Vec<u8> {
    let mut frame = encode_frame(message).expect("encodable");
    frame[4..6].copy_from_slice(&version.to_be_bytes());
    frame
}

/// A stand-in hub with its own CA: enrolls any token, then answers every
/// Hello with a Welcome framed as protocol version `welcome_version`.
pub struct FakeHub {
    pub addr: SocketAddr,
    pub ca_sha256: String,
    endpoint: quinn::Endpoint,
    _dir: tempfile::TempDir,
}

impl FakeHub {
    pub async fn start(welcome_version: u16) -> FakeHub {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = CertificateAuthority::load_or_create(dir.path()).expect("ca");
        let identity = ca
            .load_or_issue_server_identity(dir.path(), &["127.0.0.1".to_string()])
            .expect("server identity");
        let tls = hub_server_config(&ca, ServerCertificate::new(&identity).expect("identity"))
            .expect("server tls");
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).expect("quic tls");
        let config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        let endpoint =
            quinn::Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).expect("bind");
        let addr = endpoint.local_addr().expect("addr");
        let ca_sha256 = ca.fingerprint();
        let ca = Arc::new(ca);
        let accept = endpoint.clone();
        tokio::spawn(async move {
            while let Some(incoming) = accept.accept().await {
                let ca = ca.clone();
                tokio::spawn(async move {
                    let Ok(conn) = incoming.await else { return };
                    while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                        let Ok(Some(request)) = read_message(&mut recv).await else {
                            return;
                        };
                        let cluster = ClusterName::new("fake-cluster").unwrap();
                        match request {
                            Message::Enroll(enroll) => {
                                let cert = ca
                                    .sign_cluster_csr(
                                        &enroll.csr_pem,
                                        &cluster,
                                        Duration::from_secs(3600),
                                    )
                                    .expect("sign");
                                let answer = Message::Enrolled(Enrolled {
                                    cluster,
                                    cert_pem: cert.cert_pem,
                                    ca_pem: ca.cert_pem().to_owned(),
                                });
                                let _ = write_message(&mut send, &answer).await;
                            }
                            Message::Hello(_) => {
                                let welcome = Message::Welcome(Welcome {
                                    cluster,
                                    hub_version: "9.0.0".into(),
                                    generation: 1,
                                    heartbeat_secs: 30,
                                });
                                let frame = frame_with_version(&welcome, welcome_version);
                                let _ = send.write_all(&frame).await;
                            }
                            _ => return,
                        }
                        let _ = send.finish();
                        let _ = send.stopped().await;
                    }
                });
            }
        });
        FakeHub {
            addr,
            ca_sha256,
            endpoint,
            _dir: dir,
        }
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.endpoint.close(0u32.into(), b"test over");
    }
}

/// The protocol version this build speaks, for tests that forge others.
pub const CURRENT_VERSION: u16 = PROTOCOL_VERSION;
