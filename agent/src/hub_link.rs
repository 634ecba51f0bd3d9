//! The agent's side of the QUIC link: dialing the hub, one request per
//! stream, and turning the hub's close codes into errors a person can act on.

use std::net::SocketAddr;
use std::time::Duration;
use switchyard_common::proto::{
    self, DecodeError, ErrorCode, ErrorMessage, Message, StreamError, close_code, read_message,
    write_message,
};

/// How long the hub may take to answer one request.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Error on the link to the hub.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("cannot resolve hub address {0}")]
    Resolve(String, #[source] std::io::Error),
    #[error("hub address {0} must be HOST:PORT")]
    BadAddress(String),
    #[error("opening a UDP socket")]
    Socket(#[source] std::io::Error),
    #[error("invalid TLS configuration for QUIC")]
    Tls(#[source] quinn::crypto::rustls::NoInitialCipherSuite),
    #[error("dialing the hub")]
    Connect(#[from] quinn::ConnectError),
    #[error("connection to the hub")]
    Connection(#[from] quinn::ConnectionError),
    /// The hub refuses this identity for good: the cluster was removed (its
    /// certificate revoked), re-enrolled elsewhere, or the hub was restored
    /// from a backup older than the certificate.
    #[error(
        "the hub no longer accepts this agent's certificate: {0}; {advice}",
        advice = re_enroll_advice(.0)
    )]
    Revoked(String),
    /// The hub could not check this agent's certificate (a fault of the
    /// hub, such as its store); the agent reconnects with backoff.
    #[error("the hub could not check this agent's certificate, retrying: {0}")]
    HubUnavailable(String),
    #[error("the agent's identity in its state dir is unusable: {0}")]
    Identity(String),
    #[error("the hub sent a bundle that fails verification: {0}")]
    BadBundle(String),
    #[error("protocol version mismatch: {0}")]
    VersionMismatch(String),
    #[error("the hub refused: {0}")]
    Refused(ErrorMessage),
    #[error("bad frame from the hub")]
    Protocol(#[source] StreamError),
    #[error("sending to the hub")]
    Write(#[from] quinn::WriteError),
    #[error("the hub answered {got:?} where {expected} was expected")]
    Unexpected {
        expected: &'static str,
        got: proto::Kind,
    },
    #[error("the hub did not answer within {0:?}")]
    Timeout(Duration),
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// What to do about a revoked identity, from the hub's reason. A removed
/// cluster is gone from the hub, so `cluster token` (which mints a join
/// command for a cluster the hub has) answers 404 there: it needs `cluster
/// add` again. A cluster that was enrolled again still exists.
fn re_enroll_advice(reason: &str) -> &'static str {
    if reason.contains("not the current certificate") || reason.contains("enrolled again") {
        "the cluster still exists on the hub with another identity; if this agent should be \
         that cluster, enroll it again with a new join command (`switchyard cluster token NAME` \
         on the hub)"
    } else {
        "if the cluster was removed from the hub, register it again with `switchyard cluster add \
         NAME` on the hub and run the join command that prints (with a new --state-dir, or after \
         removing this one)"
    }
}

impl Error {
    /// Map connection-level failures to what they mean for the agent.
    fn classify(self) -> Error {
        match self {
            Error::Connection(quinn::ConnectionError::ApplicationClosed(close)) => {
                let reason = String::from_utf8_lossy(&close.reason).into_owned();
                match u32::try_from(close.error_code.into_inner()) {
                    Ok(close_code::REVOKED) => Error::Revoked(reason),
                    Ok(close_code::UNSUPPORTED_VERSION) => Error::VersionMismatch(reason),
                    Ok(close_code::UNAVAILABLE) => Error::HubUnavailable(reason),
                    _ => Error::Connection(quinn::ConnectionError::ApplicationClosed(close)),
                }
            }
            Error::Protocol(StreamError::Decode(e @ DecodeError::UnsupportedVersion { .. })) => {
                Error::VersionMismatch(e.to_string())
            }
            Error::Refused(m) if m.code == ErrorCode::Revoked => Error::Revoked(m.message),
            Error::Refused(m) if m.code == ErrorCode::UnsupportedVersion => {
                Error::VersionMismatch(m.message)
            }
            other => other,
        }
    }

    /// Whether retrying can never help.
    pub(crate) fn is_permanent(&self) -> bool {
        matches!(self, Error::Revoked(_) | Error::Identity(_))
    }
}

/// Split `HOST:PORT` (or `[v6]:PORT`) into the TLS server name and resolve it.
pub(crate) async fn resolve(hub: &str) -> Result<(SocketAddr, String)> {
    let (host, _port) = hub
        .rsplit_once(':')
        .filter(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
        .ok_or_else(|| Error::BadAddress(hub.to_owned()))?;
    let server_name = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let addr = tokio::net::lookup_host(hub)
        .await
        .map_err(|e| Error::Resolve(hub.to_owned(), e))?
        .next()
        .ok_or_else(|| {
            Error::Resolve(
                hub.to_owned(),
                std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
            )
        })?;
    Ok((addr, server_name))
}

/// A client endpoint on an ephemeral UDP port of the right address family.
pub(crate) fn client_endpoint(hub: SocketAddr) -> Result<quinn::Endpoint> {
    let bind: SocketAddr = if hub.is_ipv6() {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    quinn::Endpoint::client(bind).map_err(Error::Socket)
}

/// A quinn client configuration from a rustls one, with keep-alives so that
/// NAT bindings stay open and a dead hub is noticed (settings shared with
/// the load generator, in `switchyard-quic`).
pub(crate) fn quic_client_config(tls: rustls::ClientConfig) -> Result<quinn::ClientConfig> {
    switchyard_quic::agent_client_config(tls).map_err(Error::Tls)
}

pub(crate) async fn dial(
    endpoint: &quinn::Endpoint,
    config: quinn::ClientConfig,
    addr: SocketAddr,
    server_name: &str,
) -> Result<quinn::Connection> {
    let connecting = endpoint.connect_with(config, addr, server_name)?;
    Ok(connecting.await?)
}

/// Send one request on a new stream and wait for its answer. An `Error`
/// answer becomes `Err(Refused)`.
pub(crate) async fn request(conn: &quinn::Connection, message: &Message) -> Result<Message> {
    let outcome = async {
        let (mut send, mut recv) = conn.open_bi().await?;
        write_message(&mut send, message)
            .await
            .map_err(Error::Protocol)?;
        let _ = send.finish();
        match tokio::time::timeout(ANSWER_TIMEOUT, read_message(&mut recv)).await {
            Err(_) => Err(Error::Timeout(ANSWER_TIMEOUT)),
            Ok(Err(StreamError::Truncated)) | Ok(Ok(None)) => {
                // The stream ended without an answer: usually because the
                // connection was closed, whose reason says more.
                match conn.close_reason() {
                    Some(reason) => Err(Error::Connection(reason)),
                    None => Err(Error::Protocol(StreamError::Truncated)),
                }
            }
            Ok(Err(e)) => Err(Error::Protocol(e)),
            Ok(Ok(Some(Message::Error(e)))) => Err(Error::Refused(e)),
            Ok(Ok(Some(answer))) => Ok(answer),
        }
    }
    .await;
    outcome.map_err(|e| match e {
        // Prefer the connection's close reason over a stream-level symptom.
        Error::Connection(_) | Error::Write(_) | Error::Protocol(StreamError::Io(_)) => {
            match conn.close_reason() {
                Some(reason) => Error::Connection(reason).classify(),
                None => e.classify(),
            }
        }
        other => other.classify(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed_with(code: u32) -> Error {
        Error::Connection(quinn::ConnectionError::ApplicationClosed(
            quinn::ApplicationClose {
                error_code: quinn::VarInt::from_u32(code),
                reason: b"why".to_vec().into(),
            },
        ))
        .classify()
    }

    #[test]
    fn a_removed_cluster_is_told_to_be_added_again() {
        for reason in [
            "cluster removed from the hub",
            "certificate serial 0a1b is revoked",
        ] {
            let text = Error::Revoked(reason.into()).to_string();
            assert!(text.contains("`switchyard cluster add NAME`"), "{text}");
            assert!(!text.contains("cluster token"), "{text}");
        }
        for reason in [
            "cluster enrolled again: this certificate is revoked",
            "certificate serial 0a1b is not the current certificate of cluster edge",
        ] {
            let text = Error::Revoked(reason.into()).to_string();
            assert!(text.contains("`switchyard cluster token NAME`"), "{text}");
        }
    }

    #[test]
    fn only_a_revocation_stops_the_agent_for_good() {
        assert!(closed_with(close_code::REVOKED).is_permanent());
        let unavailable = closed_with(close_code::UNAVAILABLE);
        assert!(
            matches!(unavailable, Error::HubUnavailable(_)),
            "{unavailable:?}"
        );
        for code in [
            close_code::UNAVAILABLE,
            close_code::SHUTDOWN,
            close_code::SUPERSEDED,
            close_code::LIMIT_EXCEEDED,
            // A code from a newer hub that this agent does not know.
            99,
        ] {
            assert!(!closed_with(code).is_permanent(), "close code {code}");
        }
        let internal = Error::Refused(ErrorMessage {
            code: ErrorCode::Internal,
            message: "store".into(),
        })
        .classify();
        assert!(!internal.is_permanent(), "{internal:?}");
    }
}
