//! Slow and hostile peers against the real hub: silent connections, frames
//! sent a byte at a time, a peer that opens every stream it may, one that
//! never reads its replies, a connection flood from one address, handshakes
//! started and abandoned, and guessed join tokens. Each is cut off by a limit of `switchyard serve`, while a
//! well-behaved agent keeps being served and the hub's memory stays bounded.
//!
//! Hostile peers bind other loopback addresses (127.0.0.N) than the real
//! agent, as they would be other hosts: per-IP limits must not touch others.

use std::time::{Duration, Instant};
use switchyard_common::proto::{
    Enroll, ErrorCode, GetAssignment, Message, close_code, encode_frame,
};
use switchyard_tests::fleet::{SOON, TestAgent, TestHub, add_demo_app};
use switchyard_tests::raw;

fn init_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Resident set size of `pid` in KiB, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc status")
}

/// The application close code the hub gave `conn`, waiting (bounded) for it.
async fn close_code_of(conn: &quinn::Connection) -> Option<u64> {
    let reason = tokio::time::timeout(SOON, conn.closed())
        .await
        .expect("the hub never closed the connection");
    raw::close_code(&reason)
}

/// Whether the hub refused the connection in its handshake (`CONNECTION_REFUSED`).
fn refused_in_handshake(attempt: &Result<quinn::Connection, quinn::ConnectionError>) -> bool {
    matches!(
        attempt,
        Err(quinn::ConnectionError::ConnectionClosed(close))
            if close.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED
    )
}

/// Generous bound for the hub to cut off one hostile peer (its limits are 2 s here).
const CUT_OFF: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_peers_are_cut_off_while_a_good_agent_is_served() {
    init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(
        dir.path(),
        &["--request-timeout", "2s", "--reply-timeout", "2s"],
    );
    let (addr, pin) = hub.agent_endpoint();
    let mut good = TestAgent::new(dir.path(), "good");
    assert!(good.join(&hub.add_cluster("good", &[])).success());
    good.start();
    assert!(hub.wait_connected("good", true));
    let _source = add_demo_app(&hub, dir.path(), "role=served");
    // Raw peers with cluster certificates: one well-behaved (to time its
    // requests), two hostile, all targeted by the demo app so that their
    // assignments carry a bundle digest and a commit.
    let mut identities = Vec::new();
    for name in ["probe", "hog", "deaf"] {
        let token = hub.add_cluster_token(name, &["role=served"]);
        let endpoint = raw::client_endpoint();
        identities.push(
            raw::enroll(&endpoint, addr, &pin, &token)
                .await
                .unwrap_or_else(|refused| panic!("{name} not enrolled: {refused:?}")),
        );
    }
    let deaf_identity = identities.pop().unwrap();
    let hog_identity = identities.pop().unwrap();
    let probe_identity = identities.pop().unwrap();
    let hub_pid = hub.process.pid();
    let rss_before = rss_kib(hub_pid);

    // 1. Silent: 30 handshakes from 127.0.0.2 that never open a stream.
    let silent = tokio::spawn(async move {
        let endpoint = raw::client_endpoint_on(2);
        let mut conns = Vec::new();
        for _ in 0..30 {
            conns.push(
                raw::connect_without_certificate(&endpoint, addr, &pin)
                    .await
                    .expect("handshake"),
            );
        }
        let mut codes = Vec::new();
        for conn in &conns {
            codes.push(close_code_of(conn).await);
        }
        codes
    });

    // 2. Dribbler: 5 peers from 127.0.0.3 sending an Enroll frame one byte
    // every 200 ms (a whole frame would take minutes).
    let (_, pin) = hub.agent_endpoint();
    let dribblers = tokio::spawn(async move {
        let endpoint = raw::client_endpoint_on(3);
        let frame = encode_frame(&Message::Enroll(Enroll {
            token: "syb_dribble".into(),
            csr_pem: "x".repeat(600),
            agent_version: "dribbler".into(),
        }))
        .unwrap();
        let mut tasks = Vec::new();
        for _ in 0..5 {
            let conn = raw::connect_without_certificate(&endpoint, addr, &pin)
                .await
                .expect("handshake");
            let frame = frame.clone();
            tasks.push(tokio::spawn(async move {
                let started = Instant::now();
                let (mut send, _recv) = conn.open_bi().await.expect("stream");
                let mut sent = 0;
                for byte in &frame {
                    if conn.close_reason().is_some() || send.write_all(&[*byte]).await.is_err() {
                        break;
                    }
                    sent += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if started.elapsed() > CUT_OFF {
                        break;
                    }
                }
                (sent, frame.len(), close_code_of(&conn).await)
            }));
        }
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        results
    });

    // 3. Stream hog from 127.0.0.4: opens streams, one byte on each, until
    // the hub's stream limit stops it.
    let hog = tokio::spawn(async move {
        let endpoint = raw::client_endpoint_on(4);
        let conn = raw::connect_enrolled(
            &endpoint,
            addr,
            &hog_identity,
            quinn::TransportConfig::default(),
        )
        .await;
        let mut streams = Vec::new();
        for _ in 0..100 {
            match tokio::time::timeout(Duration::from_millis(500), conn.open_bi()).await {
                Ok(Ok((mut send, recv))) => {
                    if send.write_all(&[0]).await.is_err() {
                        break;
                    }
                    streams.push((send, recv));
                }
                // Out of stream credit, or closed by the hub.
                _ => break,
            }
        }
        (streams.len(), close_code_of(&conn).await)
    });

    // 4. Deaf peer from 127.0.0.5: a 16-byte receive window, asks for its
    // assignment and never reads the answer.
    let deaf = tokio::spawn(async move {
        let endpoint = raw::client_endpoint_on(5);
        let mut transport = quinn::TransportConfig::default();
        transport
            .stream_receive_window(16u32.into())
            .receive_window(64u32.into());
        let conn = raw::connect_enrolled(&endpoint, addr, &deaf_identity, transport).await;
        let mut streams = Vec::new();
        for _ in 0..3 {
            let Ok((mut send, recv)) = conn.open_bi().await else {
                break;
            };
            let request = encode_frame(&Message::GetAssignment(GetAssignment {
                known_generation: 0,
            }))
            .unwrap();
            if send.write_all(&request).await.is_err() {
                break;
            }
            let _ = send.finish();
            streams.push((send, recv));
        }
        close_code_of(&conn).await
    });

    // Meanwhile a well-behaved raw agent's requests are answered, and the
    // real agent gets a new assignment.
    let probe_endpoint = raw::client_endpoint();
    let probe = raw::connect_enrolled(
        &probe_endpoint,
        addr,
        &probe_identity,
        quinn::TransportConfig::default(),
    )
    .await;
    let relabel_at = Instant::now();
    assert!(
        hub.cli(&["cluster", "label", "good", "role=served"])
            .success()
    );
    let mut latencies = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let answer = raw::request(
            &probe,
            &Message::GetAssignment(GetAssignment {
                known_generation: 0,
            }),
        )
        .await;
        match raw::answer_message(answer) {
            Ok(Message::Assignment(assignment)) => {
                assert_eq!(assignment.items.len(), 1, "{assignment:?}")
            }
            other => panic!("the probe was not served: {other:?}"),
        }
        latencies.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        good.process()
            .wait_for_stdout("would apply ConfigMap demo", SOON),
        "the good agent was not served during the attack:\n{}",
        good.process().stderr_text()
    );
    let converged = relabel_at.elapsed();
    latencies.sort();
    eprintln!(
        "during the attack: probe GetAssignment min {:?} median {:?} max {:?}; good agent converged {converged:?} after the relabel",
        latencies[0],
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );

    let limit = Some(u64::from(close_code::LIMIT_EXCEEDED));
    let codes = tokio::time::timeout(SOON, silent).await.unwrap().unwrap();
    assert!(codes.iter().all(|c| *c == limit), "silent peers: {codes:?}");
    for (sent, len, code) in tokio::time::timeout(SOON, dribblers)
        .await
        .unwrap()
        .unwrap()
    {
        assert!(sent < len, "a dribbler got its whole frame in");
        assert_eq!(code, limit, "dribbler after {sent} of {len} bytes");
    }
    let (opened, code) = tokio::time::timeout(SOON, hog).await.unwrap().unwrap();
    // 16 streams by default, and the control stream (Hello) holds one of
    // them for the connection's life.
    assert_eq!(
        opened, 15,
        "the hub grants 16 concurrent streams by default"
    );
    assert_eq!(code, limit, "stream hog");
    let code = tokio::time::timeout(SOON, deaf).await.unwrap().unwrap();
    assert_eq!(code, limit, "deaf peer");

    // The well-behaved peers are still connected and served.
    assert!(hub.is_connected("good"));
    assert!(matches!(
        raw::answer_message(
            raw::request(
                &probe,
                &Message::GetAssignment(GetAssignment {
                    known_generation: 0
                })
            )
            .await
        ),
        Ok(Message::Assignment(_))
    ));
    let rss_after = rss_kib(hub_pid);
    eprintln!(
        "hub RSS before the attack {rss_before} KiB, after {rss_after} KiB (+{} KiB)",
        rss_after.saturating_sub(rss_before)
    );
    // The attack held about 40 connections and 20 streams; a hub that kept
    // per-peer buffers or tasks would grow far past this.
    assert!(
        rss_after < rss_before + 64 * 1024,
        "hub RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    let log = hub.process.stderr_text();
    assert!(log.contains("does not read its replies"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_ip_and_enrollment_attempts_are_limited() {
    init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(
        dir.path(),
        &[
            "--max-connections-per-ip",
            "4",
            "--enroll-burst",
            "3",
            "--enroll-per-minute",
            "1",
        ],
    );
    let (addr, pin) = hub.agent_endpoint();

    // Four connections from 127.0.0.2 are let in; the fifth is refused in
    // the handshake.
    let flood = raw::client_endpoint_on(2);
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(
            raw::connect_without_certificate(&flood, addr, &pin)
                .await
                .expect("within the limit"),
        );
    }
    let refused = raw::connect_without_certificate(&flood, addr, &pin).await;
    assert!(
        refused_in_handshake(&refused),
        "the fifth connection from one address: {refused:?}"
    );
    // Another address is not affected: a real agent enrolls and connects.
    let mut agent = TestAgent::new(dir.path(), "edge-1");
    let joined = agent.join(&hub.add_cluster("edge-1", &[]));
    assert!(joined.success(), "{}", joined.stderr);
    agent.start();
    assert!(hub.wait_connected("edge-1", true));
    // A closed connection frees its slot.
    held.pop().unwrap().close(0u32.into(), b"bye");
    let mut reconnected = None;
    for _ in 0..40 {
        match raw::connect_without_certificate(&flood, addr, &pin).await {
            Ok(conn) => {
                reconnected = Some(conn);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    assert!(reconnected.is_some(), "the freed slot was never reusable");
    assert!(
        hub.process
            .stderr_text()
            .contains("refused a connection: too many from this address")
    );

    // Guessing join tokens from 127.0.0.3: three wrong guesses are answered,
    // the fourth attempt is refused without being read, even with a good token.
    let guesser = raw::client_endpoint_on(3);
    for guess in 0..3 {
        let answer = raw::enroll(&guesser, addr, &pin, &format!("syb_guess{guess}")).await;
        match answer {
            Err(Message::Error(e)) => assert_eq!(e.code, ErrorCode::TokenUnknown, "{e:?}"),
            Err(other) => panic!("guess {guess}: {other:?}"),
            Ok(_) => panic!("guess {guess} enrolled"),
        }
    }
    let good_token = hub.add_cluster_token("edge-2", &[]);
    let limited_at = Instant::now();
    match raw::enroll(&guesser, addr, &pin, &good_token).await {
        Err(Message::Error(e)) => {
            assert_eq!(e.code, ErrorCode::RateLimited, "{e:?}");
            assert!(e.message.contains("retry in"), "{}", e.message);
        }
        other => panic!(
            "fourth attempt: {:?}",
            other.map(|_| "enrolled").map_err(|m| m.kind())
        ),
    }
    // The token was not spent: from another address it enrolls.
    let other = raw::client_endpoint_on(4);
    assert!(
        raw::enroll(&other, addr, &pin, &good_token).await.is_ok(),
        "a rate-limited attempt must not spend the token"
    );
    eprintln!(
        "enrollment limit: 3 attempts at once, then 1 a minute per address (refused in {:?}); 1,000 guesses from one address take > 16 h",
        limited_at.elapsed()
    );
    // Both ends of the flood are still alive and the hub still serves.
    drop(held);
    assert!(hub.is_connected("edge-1"));
}

/// The hub works on a bounded number of handshakes at once (32 per
/// processor) and makes the rest wait. Handshakes whose peer vanished after
/// its first packet must not hold those turns until the hub gives up on
/// them (its idle timeout, 60 s): an agent arriving behind more of them
/// than there are turns is still let in, within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_handshakes_do_not_keep_agents_out() {
    init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &[]);
    let (addr, pin) = hub.agent_endpoint();
    let turns = 32 * std::thread::available_parallelism().map_or(1, usize::from);
    let vanishing = std::net::UdpSocket::bind("127.0.0.3:0").unwrap();
    for _ in 0..turns + 16 {
        raw::abandoned_handshake(&vanishing, addr, &pin);
    }
    // Let the hub take them all on before the agent arrives.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let token = hub.add_cluster_token("late", &[]);
    let endpoint = raw::client_endpoint();
    let started = Instant::now();
    let enrolled = raw::enroll(&endpoint, addr, &pin, &token).await;
    assert!(
        enrolled.is_ok(),
        "an agent behind {} abandoned handshakes: {:?} after {:?}",
        turns + 16,
        enrolled.err(),
        started.elapsed()
    );
}

/// An abandoned handshake holds its address's connection slot only until
/// the hub gives it up (20 s, when an agent would have given up its own),
/// not for the hub's whole idle timeout (60 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_handshakes_free_their_connection_slots() {
    init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), &["--max-connections-per-ip", "2"]);
    let (addr, pin) = hub.agent_endpoint();
    let vanishing = std::net::UdpSocket::bind("127.0.0.4:0").unwrap();
    for _ in 0..2 {
        raw::abandoned_handshake(&vanishing, addr, &pin);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let endpoint = raw::client_endpoint_on(4);
    let refused = raw::connect_without_certificate(&endpoint, addr, &pin).await;
    assert!(
        refused_in_handshake(&refused),
        "both slots of 127.0.0.4 are held: {refused:?}"
    );
    // Then the slots come free (20 s after the handshakes began), well
    // before the hub's idle timeout of 60 s.
    let started = Instant::now();
    let connected = loop {
        if let Ok(conn) = raw::connect_without_certificate(&endpoint, addr, &pin).await {
            break Some(conn);
        }
        if started.elapsed() > Duration::from_secs(30) {
            break None;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert!(
        connected.is_some(),
        "127.0.0.4 still locked out {:?} after its handshakes were abandoned",
        started.elapsed()
    );
}
