//! The QUIC plumbing enrollment and the simulated agents share: the client
//! endpoint, the agent's connection settings, one request and its answer,
//! and the identity an enrolled agent connects with.

use anyhow::{Context, anyhow, bail};
use std::net::SocketAddr;
use std::time::Duration;
use switchyard_common::proto::{Message, read_message, write_message};

/// How long the hub may take to answer one request (as the agent).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// An enrolled simulated agent: its cluster and mutual-TLS client config.
pub(crate) struct Identity {
    pub(crate) cluster: String,
    pub(crate) tls: quinn::ClientConfig,
}

/// A client endpoint on its own UDP port; many agents share one.
/// Its receive buffer is enlarged as the hub's is, since hundreds of
/// connections share it.
pub(crate) fn client_endpoint(hub: SocketAddr) -> anyhow::Result<quinn::Endpoint> {
    let bind: SocketAddr = if hub.is_ipv6() {
        (std::net::Ipv6Addr::LOCALHOST, 0).into()
    } else {
        (std::net::Ipv4Addr::LOCALHOST, 0).into()
    };
    let socket = std::net::UdpSocket::bind(bind).context("opening a UDP socket")?;
    let state = quinn::udp::UdpSocketState::new((&socket).into())?;
    let _ = state.set_recv_buffer_size((&socket).into(), 4 << 20);
    // Each real agent has a socket and a processor of its own; here
    // hundreds share one socket and the loadgen's two threads, and quinn's
    // stock driver would leave their socket to queue behind their handshakes.
    let runtime = switchyard_quic::DrainingRuntime::new();
    quinn::Endpoint::new(quinn::EndpointConfig::default(), None, socket, runtime)
        .context("starting a QUIC endpoint")
}

/// The agent's QUIC settings (keep-alives, idle timeout), the agent's own.
pub(crate) fn quic_config(tls: rustls::ClientConfig) -> anyhow::Result<quinn::ClientConfig> {
    switchyard_quic::agent_client_config(tls).context("TLS configuration unusable for QUIC")
}

/// One request on its own stream, one answer; an `Error` answer is an error.
pub(crate) async fn request(
    conn: &quinn::Connection,
    message: &Message,
) -> anyhow::Result<Message> {
    let (mut send, mut recv) = conn.open_bi().await?;
    write_message(&mut send, message).await?;
    let _ = send.finish();
    match tokio::time::timeout(ANSWER_TIMEOUT, read_message(&mut recv)).await {
        Err(_) => bail!(
            "no answer to {:?} within {ANSWER_TIMEOUT:?}",
            message.kind()
        ),
        Ok(Ok(Some(Message::Error(e)))) => bail!("hub refused {:?}: {e}", message.kind()),
        Ok(Ok(Some(answer))) => Ok(answer),
        Ok(Ok(None)) => Err(anyhow!("stream ended without an answer")),
        Ok(Err(e)) => Err(e.into()),
    }
}
