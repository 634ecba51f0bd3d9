//! The physical reference for enrollment and reconnection rates: full TLS 1.3
//! handshakes with rustls and ring, with the hub's own configurations and key
//! types (ECDSA P-256 CA, server and client certificates; mutual TLS, no
//! resumption, as agents reconnect), client and server in one thread over
//! memory buffers. The server's share is timed on its own: that is what one
//! hub core can do at most.

use anyhow::Context;
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, ServerConnection};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchyard_certs::{AgentKey, CertificateAuthority};
use switchyard_common::ClusterName;

pub(crate) fn run(duration: Duration) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("creating a temporary CA dir")?;
    let ca = CertificateAuthority::load_or_create(dir.path())?;
    let identity = ca.load_or_issue_server_identity(dir.path(), &["localhost".to_owned()])?;
    let certificate = switchyard_certs::ServerCertificate::new(&identity)?;
    let server_config = Arc::new(switchyard_certs::hub_server_config(&ca, certificate)?);
    let key = AgentKey::generate()?;
    let cluster = ClusterName::new("tls-bench").context("cluster name")?;
    let issued = ca.sign_cluster_csr(
        &key.csr_pem("tls-bench")?,
        &cluster,
        Duration::from_secs(3600),
    )?;
    let mut client_config =
        switchyard_certs::agent_client_config(ca.cert_pem(), &issued.cert_pem, &key)?;
    client_config.resumption = rustls::client::Resumption::disabled();
    let client_config = Arc::new(client_config);
    let name = ServerName::try_from("localhost").context("server name")?;

    let started = Instant::now();
    let mut server_time = Duration::ZERO;
    let mut handshakes = 0u64;
    let mut buffer = Vec::with_capacity(16 * 1024);
    while started.elapsed() < duration {
        let mut client = ClientConnection::new(client_config.clone(), name.clone())?;
        let mut server = ServerConnection::new(server_config.clone())?;
        for _round in 0..10 {
            buffer.clear();
            while client.wants_write() {
                client.write_tls(&mut buffer)?;
            }
            let timed = Instant::now();
            let mut input = &buffer[..];
            while !input.is_empty() {
                server.read_tls(&mut input)?;
            }
            server.process_new_packets()?;
            let mut reply = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut reply)?;
            }
            server_time += timed.elapsed();
            let mut input = &reply[..];
            while !input.is_empty() {
                client.read_tls(&mut input)?;
            }
            client.process_new_packets()?;
            if !client.is_handshaking() && !server.is_handshaking() {
                break;
            }
        }
        anyhow::ensure!(
            !client.is_handshaking() && !server.is_handshaking(),
            "the handshake did not complete"
        );
        anyhow::ensure!(
            server.peer_certificates().is_some_and(|c| !c.is_empty()),
            "the server did not see the client certificate"
        );
        handshakes += 1;
    }
    let elapsed = started.elapsed();
    crate::stats::emit(&json!({
        "event": "tls_bench",
        "handshakes": handshakes,
        "elapsed_ms": elapsed.as_millis() as u64,
        "both_sides_per_sec": handshakes as f64 / elapsed.as_secs_f64(),
        "server_side_per_core_sec": handshakes as f64 / server_time.as_secs_f64(),
        "server_us_per_handshake": server_time.as_micros() as f64 / handshakes.max(1) as f64,
        "key_types": "ECDSA P-256 (CA, server, client), X25519 key exchange (rustls default)",
    }));
    Ok(())
}
