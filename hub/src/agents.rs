//! The QUIC endpoint agents dial: enrollment on unauthenticated connections,
//! and the control and request streams of enrolled (mutual-TLS) agents.
//! Every peer is held to the limits of [`crate::limits`].

use crate::fleet::{Fleet, Notifier};
use crate::limits::Guard;
use crate::metrics::Outcome;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use switchyard_common::ClusterName;
use switchyard_common::error_chain;
use switchyard_common::proto::{
    self, CertificateRenewed, DecodeError, Enrolled, ErrorCode, Message, Notification,
    StatusAccepted, StreamError, Welcome, close_code, read_message, write_message,
};
use tracing::{Instrument, debug, info, info_span, warn};

/// Error while serving one agent connection.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("handshake")]
    Handshake(#[source] quinn::ConnectionError),
    #[error(
        "handshake not finished within {:?}",
        crate::limits::HANDSHAKE_DEADLINE
    )]
    HandshakeDeadline,
    #[error("connection")]
    Connection(#[from] quinn::ConnectionError),
    #[error("protocol")]
    Protocol(#[source] StreamError),
    #[error("writing to stream")]
    Write(#[from] quinn::WriteError),
    #[error("peer certificate")]
    Certificate(#[source] switchyard_certs::Error),
    #[error("unexpected {0:?} message")]
    Unexpected(proto::Kind),
    #[error("peer took too long to send its request")]
    Timeout,
    #[error("peer did not read its reply within {0:?}")]
    SlowReader(Duration),
}

/// How often the one INFO line about agent connections is written.
const TALLY_EVERY: Duration = Duration::from_secs(10);

/// Agent connections made and ended since the last summary. At fleet scale
/// a line per connection (10,000 after a hub restart) drowns the log, so
/// those are DEBUG and INFO gets one line per [`TALLY_EVERY`] with counts.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    connected: AtomicU64,
    disconnected: AtomicU64,
}

impl Tally {
    fn connected(&self) {
        self.connected.fetch_add(1, Ordering::Relaxed);
    }

    fn disconnected(&self) {
        self.disconnected.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts since the last call (connected, disconnected), reset to zero.
    fn take(&self) -> (u64, u64) {
        (
            self.connected.swap(0, Ordering::Relaxed),
            self.disconnected.swap(0, Ordering::Relaxed),
        )
    }
}

/// Why a connection ended, in words: quinn's `closed by peer: 0` for an
/// agent that closed without a reason says nothing.
fn close_text(reason: Option<&quinn::ConnectionError>) -> String {
    use quinn::ConnectionError as E;
    match reason {
        None => "unknown".into(),
        Some(E::ApplicationClosed(close)) => {
            let why = String::from_utf8_lossy(&close.reason);
            match (close.error_code.into_inner(), why.is_empty()) {
                (0, true) => "closed by the agent".into(),
                (code, true) => format!("closed by the agent (code {code})"),
                (code, false) => format!("closed by the agent: {why} (code {code})"),
            }
        }
        Some(E::LocallyClosed) => "closed by the hub".into(),
        Some(E::TimedOut) => "idle timeout: the agent went silent".into(),
        Some(other) => other.to_string(),
    }
}

/// Accept agent connections until `shutdown` resolves.
pub(crate) async fn serve(
    endpoint: quinn::Endpoint,
    fleet: Arc<Fleet>,
    guard: Arc<Guard>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let tally = Arc::new(Tally::default());
    let mut summary = tokio::time::interval(TALLY_EVERY);
    summary.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = summary.tick() => {
                let (connected, disconnected) = tally.take();
                if connected + disconnected > 0 {
                    info!(
                        connected,
                        disconnected,
                        now_connected = fleet.registry().connected_count(),
                        every = ?TALLY_EVERY,
                        "agent connections"
                    );
                }
            }
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                let remote = incoming.remote_address();
                let Some(slot) = guard.connection_slot(remote.ip()) else {
                    warn!(
                        %remote,
                        limit = guard.limits().max_connections_per_ip,
                        "refused a connection: too many from this address"
                    );
                    incoming.refuse();
                    continue;
                };
                let fleet = fleet.clone();
                let guard = guard.clone();
                let tally = tally.clone();
                let span = info_span!("agent", %remote, cluster = tracing::field::Empty);
                tokio::spawn(
                    async move {
                        let _slot = slot;
                        if let Err(error) = handle_connection(incoming, fleet, &guard, &tally).await {
                            debug!(error = %error_chain(&error), "agent connection ended");
                        }
                    }
                    .instrument(span),
                );
            }
            () = &mut shutdown => break,
        }
    }
    endpoint.close(close_code::SHUTDOWN.into(), b"hub shutting down");
}

async fn handle_connection(
    incoming: quinn::Incoming,
    fleet: Arc<Fleet>,
    guard: &Guard,
    tally: &Tally,
) -> Result<(), Error> {
    let Some(conn) = handshake(incoming, guard).await? else {
        return Ok(());
    };
    let peer_cert = conn
        .peer_identity()
        .and_then(|any| {
            any.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
                .ok()
        })
        .and_then(|chain| chain.first().cloned());
    match peer_cert {
        None => serve_enrollment(conn, &fleet, guard).await,
        Some(cert) => {
            let peer = switchyard_certs::peer_identity(&cert).map_err(Error::Certificate)?;
            tracing::Span::current().record("cluster", tracing::field::display(&peer.cluster));
            match fleet.authenticate(&peer) {
                Ok(_) => serve_agent(conn, &fleet, peer, guard, tally).await,
                Err(error) => {
                    let code = refusal_close_code(&error);
                    warn!(serial = %peer.serial, code, error = %error_chain(&error), "refused agent certificate");
                    conn.close(code.into(), error.to_string().as_bytes());
                    Ok(())
                }
            }
        }
    }
}

/// How to close the connection of a peer whose certificate `authenticate`
/// did not accept. Only a verified refusal (revoked serial, removed cluster,
/// serial not current) says `REVOKED`, on which agents stop for good; a
/// failure to check (the store) says `UNAVAILABLE`, and the agent retries.
fn refusal_close_code(error: &crate::fleet::Error) -> u32 {
    match error.code() {
        ErrorCode::Revoked => close_code::REVOKED,
        _ => close_code::UNAVAILABLE,
    }
}

/// The TLS handshake, in its turn among the handshakes in progress
/// (`Guard::handshake_turn`); `None` when the attempt was refused because
/// its turn did not come in time.
async fn handshake(
    incoming: quinn::Incoming,
    guard: &Guard,
) -> Result<Option<quinn::Connection>, Error> {
    let Some(turn) = guard.handshake_turn().await else {
        warn!(
            waited = ?crate::limits::HANDSHAKE_WAIT_LIMIT,
            "refused a connection: the hub is busy with other handshakes"
        );
        incoming.refuse();
        return Ok(None);
    };
    let mut connecting = incoming.accept().map_err(Error::Handshake)?;
    // A handshake does its work in its first round trips; one that takes
    // longer is waiting for its peer (a slow link, or a peer that never
    // finishes) and gives its turn to the next, so stalled handshakes
    // cannot keep every other agent out.
    if let Ok(connected) =
        tokio::time::timeout(crate::limits::HANDSHAKE_TURN, &mut connecting).await
    {
        return connected.map(Some).map_err(Error::Handshake);
    }
    drop(turn);
    // Dropping `connecting` abandons the handshake, and with it this peer's
    // connection slot.
    tokio::time::timeout(
        crate::limits::HANDSHAKE_DEADLINE - crate::limits::HANDSHAKE_TURN,
        connecting,
    )
    .await
    .map_err(|_| Error::HandshakeDeadline)?
    .map(Some)
    .map_err(Error::Handshake)
}

/// Answer a frame that could not be decoded, then close the connection: a
/// peer that speaks garbage gets nothing more, and nobody else is affected.
async fn refuse(conn: &quinn::Connection, send: &mut quinn::SendStream, error: &StreamError) {
    let (code, close) = match error {
        StreamError::Decode(DecodeError::UnsupportedVersion { .. }) => (
            ErrorCode::UnsupportedVersion,
            close_code::UNSUPPORTED_VERSION,
        ),
        _ => (ErrorCode::BadRequest, close_code::PROTOCOL_ERROR),
    };
    let message = format!("hub refused the request: {}", error_chain(error));
    refuse_with(conn, send, code, close, message).await;
}

/// Send an error answer, then close the connection with `close`.
async fn refuse_with(
    conn: &quinn::Connection,
    send: &mut quinn::SendStream,
    code: ErrorCode,
    close: u32,
    message: String,
) {
    warn!(error = %message, "closing connection after a bad request");
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = write_message(send, &Message::error(code, message.clone())).await;
        let _ = send.finish();
        let _ = send.stopped().await;
    })
    .await;
    conn.close(close.into(), message.as_bytes());
}

/// Read one whole request within `timeout`. A peer that sends garbage, or
/// sends nothing, or dribbles its frame, gets an error answer and loses its
/// connection. `Ok(None)`: the stream ended before a frame began.
async fn read_request(
    conn: &quinn::Connection,
    send: &mut quinn::SendStream,
    recv: &mut quinn::RecvStream,
    timeout: Duration,
) -> Result<Option<Message>, Error> {
    match tokio::time::timeout(timeout, read_message(recv)).await {
        Ok(Ok(request)) => Ok(request),
        Ok(Err(error)) => {
            refuse(conn, send, &error).await;
            Err(Error::Protocol(error))
        }
        Err(_) => {
            let message = format!("no whole request within the request timeout ({timeout:?})");
            refuse_with(
                conn,
                send,
                ErrorCode::BadRequest,
                close_code::LIMIT_EXCEEDED,
                message,
            )
            .await;
            Err(Error::Timeout)
        }
    }
}

/// Write `message` and finish the stream. A peer that does not take the
/// whole reply within `timeout` has its stream reset: it would otherwise
/// hold this connection's requests and the hub's send buffer forever.
async fn reply(
    send: &mut quinn::SendStream,
    message: &Message,
    timeout: Duration,
) -> Result<(), Error> {
    let frame = proto::encode_frame(message)
        .map_err(|error| Error::Protocol(StreamError::Encode(error)))?;
    reply_frame(send, frame.into(), timeout).await
}

/// Accept the peer's first stream within the request timeout.
async fn first_stream(
    conn: &quinn::Connection,
    guard: &Guard,
) -> Result<(quinn::SendStream, quinn::RecvStream), Error> {
    match tokio::time::timeout(guard.limits().request_timeout, conn.accept_bi()).await {
        Ok(streams) => Ok(streams?),
        Err(_) => {
            conn.close(
                close_code::LIMIT_EXCEEDED.into(),
                b"no request within the request timeout",
            );
            Err(Error::Timeout)
        }
    }
}

async fn serve_enrollment(
    conn: quinn::Connection,
    fleet: &Fleet,
    guard: &Guard,
) -> Result<(), Error> {
    let limits = guard.limits();
    let (mut send, mut recv) = first_stream(&conn, guard).await?;
    // The bucket is charged before the request is read: a refused attempt
    // costs the hub no signing, and guessing tokens goes no faster.
    if let Err(wait) = guard.enrollment_attempt(conn.remote_address().ip()) {
        let text = format!(
            "too many enrollment attempts from this address; retry in {}s",
            wait.as_secs().max(1)
        );
        warn!(retry_in = ?wait, "enrollment attempt refused: rate limit");
        reply(
            &mut send,
            &Message::error(ErrorCode::RateLimited, text.clone()),
            limits.reply_timeout,
        )
        .await?;
        let _ = tokio::time::timeout(limits.reply_timeout, send.stopped()).await;
        conn.close(close_code::LIMIT_EXCEEDED.into(), text.as_bytes());
        return Ok(());
    }
    let Some(request) = read_request(&conn, &mut send, &mut recv, limits.request_timeout).await?
    else {
        return Ok(());
    };
    let Message::Enroll(enroll) = request else {
        let kind = request.kind();
        let text = "this connection has no client certificate: only enrollment is allowed; run `switchyard-agent join` first";
        reply(
            &mut send,
            &Message::error(ErrorCode::Unauthenticated, text),
            limits.reply_timeout,
        )
        .await?;
        let _ = send.stopped().await;
        conn.close(close_code::UNAUTHENTICATED.into(), text.as_bytes());
        return Err(Error::Unexpected(kind));
    };
    let enrolled = fleet.enroll(&enroll.token, &enroll.csr_pem);
    fleet
        .metrics()
        .enrollments
        .get_or_create(&Outcome::of(&enrolled))
        .inc();
    let answer = match enrolled {
        Ok((cluster, cert_pem)) => {
            info!(%cluster, agent_version = %enroll.agent_version, "agent enrolled");
            Message::Enrolled(Enrolled {
                cluster,
                cert_pem,
                ca_pem: fleet.ca().cert_pem().to_owned(),
            })
        }
        Err(error) => {
            warn!(error = %error_chain(&error), "enrollment refused");
            Message::error(error.code(), error.to_string())
        }
    };
    reply(&mut send, &answer, limits.reply_timeout).await?;
    // Let the answer reach the agent before the connection goes away.
    let _ = tokio::time::timeout(limits.reply_timeout, send.stopped()).await;
    conn.close(close_code::NORMAL.into(), b"enrollment done");
    Ok(())
}

async fn serve_agent(
    conn: quinn::Connection,
    fleet: &Fleet,
    peer: switchyard_certs::PeerIdentity,
    guard: &Guard,
    tally: &Tally,
) -> Result<(), Error> {
    let cluster = peer.cluster.clone();
    let limits = guard.limits();
    // The first stream is the control stream: Hello, then Welcome.
    let (mut send, mut recv) = first_stream(&conn, guard).await?;
    let hello = match read_request(&conn, &mut send, &mut recv, limits.request_timeout).await? {
        Some(Message::Hello(hello)) => hello,
        Some(other) => {
            let kind = other.kind();
            let message = format!("expected Hello on the control stream, got {kind:?}");
            refuse_with(
                &conn,
                &mut send,
                ErrorCode::BadRequest,
                close_code::PROTOCOL_ERROR,
                message,
            )
            .await;
            return Err(Error::Unexpected(kind));
        }
        None => return Ok(()),
    };
    let generation = match fleet.record_facts(
        &cluster,
        &hello.agent_version,
        hello.kubernetes_version.as_deref(),
    ) {
        Ok(Some(record)) => record.generation,
        Ok(None) => {
            conn.close(close_code::REVOKED.into(), b"cluster removed from the hub");
            return Ok(());
        }
        Err(error) => {
            warn!(error = %error_chain(&error), "store error on hello");
            conn.close(close_code::UNAVAILABLE.into(), b"hub store unavailable");
            return Ok(());
        }
    };
    reply(
        &mut send,
        &Message::Welcome(Welcome {
            cluster: cluster.clone(),
            hub_version: env!("CARGO_PKG_VERSION").to_owned(),
            generation,
            heartbeat_secs: fleet.settings().heartbeat.as_secs().max(1) as u32,
        }),
        limits.reply_timeout,
    )
    .await?;
    let reconnect = fleet.registry().register(&cluster, conn.clone());
    // A re-enrollment between the first check and the registration would
    // otherwise leave this connection, made with a certificate it revoked,
    // registered and served.
    if let Err(error) = fleet.authenticate(&peer) {
        fleet.registry().unregister(&cluster, &conn);
        let code = refusal_close_code(&error);
        warn!(serial = %peer.serial, code, error = %error_chain(&error), "refused agent certificate");
        conn.close(code.into(), error.to_string().as_bytes());
        return Ok(());
    }
    fleet.metrics().agent_connections.inc();
    if reconnect {
        fleet.metrics().agent_reconnects.inc();
    }
    tally.connected();
    fleet.publish(crate::fleet::FleetEvent::Cluster {
        cluster: cluster.to_string(),
        connected: true,
    });
    debug!(agent_version = %hello.agent_version, generation, reconnect, "agent connected");

    let result = serve_requests(&conn, fleet, &peer, limits).await;
    fleet.registry().unregister(&cluster, &conn);
    tally.disconnected();
    if !fleet.registry().is_connected(&cluster) {
        // Requests sent over this connection get no answer now. (A newer
        // connection of the cluster answers its own requests.)
        fleet.cancel_diffs(&cluster);
        fleet.publish(crate::fleet::FleetEvent::Cluster {
            cluster: cluster.to_string(),
            connected: false,
        });
    }
    debug!(reason = %close_text(conn.close_reason().as_ref()), "agent disconnected");
    result
}

async fn serve_requests(
    conn: &quinn::Connection,
    fleet: &Fleet,
    peer: &switchyard_certs::PeerIdentity,
    limits: &crate::limits::Limits,
) -> Result<(), Error> {
    loop {
        let (mut send, mut recv) = match conn.accept_bi().await {
            Ok(streams) => streams,
            Err(
                quinn::ConnectionError::ApplicationClosed(_)
                | quinn::ConnectionError::LocallyClosed
                | quinn::ConnectionError::TimedOut,
            ) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let Some(request) =
            read_request(conn, &mut send, &mut recv, limits.request_timeout).await?
        else {
            continue;
        };
        let answer = answer_request(fleet, peer, request);
        let replied = match answer {
            Answer::Message(message) => reply(&mut send, &message, limits.reply_timeout).await,
            Answer::Frame(frame) => reply_frame(&mut send, frame, limits.reply_timeout).await,
            Answer::Revoked(message) => {
                // The refusal first, so the agent reads why; then the
                // connection, made with a certificate that is no longer good.
                let _ = reply(&mut send, &message, limits.reply_timeout).await;
                let _ = tokio::time::timeout(limits.reply_timeout, send.stopped()).await;
                let reason = match &message {
                    Message::Error(e) => e.message.clone(),
                    _ => String::new(),
                };
                conn.close(close_code::REVOKED.into(), reason.as_bytes());
                return Ok(());
            }
        };
        match replied {
            Ok(()) => {}
            Err(error @ Error::SlowReader(_)) => {
                warn!(error = %error, "closing connection: the agent does not read its replies");
                conn.close(
                    close_code::LIMIT_EXCEEDED.into(),
                    b"replies not read within the reply timeout",
                );
                return Err(error);
            }
            Err(error) => debug!(error = %error_chain(&error), "could not answer request"),
        }
    }
}

/// A reply: a message to encode, or a frame encoded once and shared.
enum Answer {
    Message(Message),
    Frame(bytes::Bytes),
    /// A verified refusal of the connection's certificate: sent, then the
    /// connection is closed as revoked.
    Revoked(Message),
}

impl From<Message> for Answer {
    fn from(message: Message) -> Self {
        Answer::Message(message)
    }
}

/// [`reply`] for an already encoded frame (written without a copy).
async fn reply_frame(
    send: &mut quinn::SendStream,
    frame: bytes::Bytes,
    timeout: Duration,
) -> Result<(), Error> {
    match tokio::time::timeout(timeout, send.write_chunk(frame)).await {
        Ok(written) => written?,
        Err(_) => {
            let _ = send.reset(close_code::LIMIT_EXCEEDED.into());
            return Err(Error::SlowReader(timeout));
        }
    }
    let _ = send.finish();
    Ok(())
}

/// The answer to one request of an authenticated agent.
fn answer_request(
    fleet: &Fleet,
    peer: &switchyard_certs::PeerIdentity,
    request: Message,
) -> Answer {
    let cluster = &peer.cluster;
    let store_error = |error: crate::fleet::Error| {
        warn!(error = %error_chain(&error), "request failed");
        Message::error(error.code(), error.to_string())
    };
    if let Message::GetBundle(get) = &request {
        return match fleet.bundle_frame(cluster, &get.digest) {
            Ok(Some(frame)) => {
                fleet
                    .metrics()
                    .bundle_bytes_served
                    .inc_by(frame.len() as u64);
                Answer::Frame(frame)
            }
            Ok(None) => Message::error(
                ErrorCode::NotFound,
                format!("bundle {} is not assigned to cluster {cluster}", get.digest),
            )
            .into(),
            Err(error) => store_error(error).into(),
        };
    }
    let answer = match request {
        Message::ReportStatus(report) => {
            let recorded = fleet
                .record_facts(
                    cluster,
                    &report.agent_version,
                    report.kubernetes_version.as_deref(),
                )
                .and_then(|_| fleet.record_status(cluster, report.apps));
            match recorded {
                Ok(()) => {
                    fleet.metrics().status_reports.inc();
                    Message::StatusAccepted(StatusAccepted {})
                }
                Err(error) => store_error(error),
            }
        }
        Message::ReportDiff(report) => {
            let request_id = report.request_id;
            if fleet.record_diff(cluster, report) {
                Message::StatusAccepted(StatusAccepted {})
            } else {
                // Late (its caller timed out) or not this cluster's request.
                debug!(request_id, "diff report nobody waits for");
                Message::error(
                    ErrorCode::NotFound,
                    format!("no diff request {request_id} waits for cluster {cluster}"),
                )
            }
        }
        Message::GetAssignment(_) => match fleet.assignment(cluster) {
            Ok(assignment) => Message::Assignment(assignment),
            Err(error) => store_error(error),
        },
        Message::RenewCertificate(renew) => {
            match fleet.renew(cluster, &peer.serial, &renew.csr_pem) {
                Ok(cert_pem) => Message::CertificateRenewed(CertificateRenewed { cert_pem }),
                Err(error) if error.code() == ErrorCode::Revoked => {
                    warn!(serial = %peer.serial, %error, "renewal refused: the certificate is not current");
                    return Answer::Revoked(Message::error(error.code(), error.to_string()));
                }
                Err(error) => store_error(error),
            }
        }
        other => Message::error(
            ErrorCode::BadRequest,
            format!("{:?} is not a request an agent may send", other.kind()),
        ),
    };
    answer.into()
}

/// Notifications the hub has on their way at once, per processor. A
/// notification is on its way until the agent acknowledges it, and the
/// agent acts on it at once (fetches its assignment, then the bundle), so
/// this bounds how many agents start an update per round trip: when the
/// hub is busy its round trips lengthen and the notifications slow down
/// with them, instead of 10,000 agents asking at the same instant and
/// overflowing the socket's receive queue.
const NOTIFICATIONS_PER_PROCESSOR: usize = 128;

/// Longest a notification counts as on its way: an agent that does not
/// acknowledge within this time no longer holds up the others.
const NOTIFICATION_ACK_WAIT: Duration = Duration::from_secs(2);

/// The fleet's [`Notifier`] over QUIC: a stream the hub opens over the
/// agent's own connection (the only way to reach an agent behind NAT).
/// Notifications go out in the order asked, a bounded number at a time
/// (`NOTIFICATIONS_PER_PROCESSOR`), each until its agent acknowledges it.
pub(crate) struct QuicNotifier {
    on_their_way: Arc<tokio::sync::Semaphore>,
}

impl QuicNotifier {
    pub(crate) fn new() -> Self {
        Self {
            on_their_way: Arc::new(tokio::sync::Semaphore::new(
                NOTIFICATIONS_PER_PROCESSOR
                    * std::thread::available_parallelism().map_or(1, usize::from),
            )),
        }
    }
}

impl Notifier for QuicNotifier {
    fn deliver(&self, cluster: ClusterName, conn: quinn::Connection, notification: Notification) {
        let on_its_way = self.on_their_way.clone();
        tokio::spawn(async move {
            // `Err` only for a closed semaphore; nothing closes it.
            let Ok(_turn) = on_its_way.acquire_owned().await else {
                return;
            };
            if let Err(error) = send_notification(&conn, &notification, NOTIFICATION_ACK_WAIT).await
            {
                warn!(%cluster, %error, "notification not delivered; the agent resyncs on reconnect");
            }
        });
    }
}

/// Send one notification on a new unidirectional stream, then wait until
/// the agent has acknowledged all of it, at most `ack_wait` (an agent that
/// does not is not an error here: it resyncs when it reconnects).
async fn send_notification(
    conn: &quinn::Connection,
    notification: &Notification,
    ack_wait: Duration,
) -> Result<(), Error> {
    let mut send = conn.open_uni().await?;
    write_message(&mut send, &Message::Notify(notification.clone()))
        .await
        .map_err(Error::Protocol)?;
    let _ = send.finish();
    let _ = tokio::time::timeout(ack_wait, send.stopped()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tally_counts_since_the_last_summary() {
        let tally = super::Tally::default();
        assert_eq!(tally.take(), (0, 0));
        for _ in 0..3 {
            tally.connected();
        }
        tally.disconnected();
        assert_eq!(tally.take(), (3, 1));
        assert_eq!(tally.take(), (0, 0), "taking resets the counts");
    }

    #[test]
    fn close_reasons_say_who_closed() {
        use super::close_text;
        let closed = |code: u32, reason: &[u8]| {
            quinn::ConnectionError::ApplicationClosed(quinn::ApplicationClose {
                error_code: quinn::VarInt::from_u32(code),
                reason: reason.to_vec().into(),
            })
        };
        assert_eq!(close_text(Some(&closed(0, b""))), "closed by the agent");
        assert_eq!(
            close_text(Some(&closed(6, b"agent shutting down"))),
            "closed by the agent: agent shutting down (code 6)"
        );
        assert_eq!(
            close_text(Some(&quinn::ConnectionError::TimedOut)),
            "idle timeout: the agent went silent"
        );
        assert_eq!(close_text(None), "unknown");
    }

    use super::*;
    use crate::fleet::Error;
    use crate::store;
    use switchyard_common::ClusterName;

    #[test]
    fn only_a_verified_refusal_closes_as_revoked() {
        let name = ClusterName::new("edge-1").unwrap();
        let verified = [
            Error::Revoked("01".into()),
            Error::UnknownCertificate {
                cluster: name.clone(),
                serial: "01".into(),
            },
            Error::Store(store::Error::ClusterNotFound(name.clone())),
        ];
        for error in &verified {
            assert_eq!(refusal_close_code(error), close_code::REVOKED, "{error:?}");
        }
        let corrupt = serde_json::from_slice::<serde_json::Value>(b"{").unwrap_err();
        let unverified = [
            Error::Store(store::Error::Backend("disk gone".into())),
            Error::Store(store::Error::Corrupt {
                key: "edge-1".into(),
                source: corrupt,
            }),
        ];
        for error in &unverified {
            assert_eq!(
                refusal_close_code(error),
                close_code::UNAVAILABLE,
                "{error:?}"
            );
        }
    }
}
