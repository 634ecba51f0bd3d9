//! What one peer of the QUIC endpoint may cost the hub: connections per
//! source IP, streams per connection, how long it may take to send a request
//! or read a reply, how long it may stay silent, and how often one IP may try
//! to enroll; and what one render may cost. Every limit has a `switchyard
//! serve` flag; defaults suit a real fleet, and a load generator that runs
//! many agents from one IP raises them.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Error in a limit's configuration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    #[error("{flag} must be at least {min} MiB, got {got} MiB")]
    TooLittleMemory {
        flag: &'static str,
        min: u64,
        got: u64,
    },
    #[error("{flag} must be at least {min:?}, got {got:?}")]
    TooShort {
        flag: &'static str,
        min: Duration,
        got: Duration,
    },
}

/// Configured limits; see docs/OPERATIONS.md for the flags.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Connections (enrolled or not, handshakes included) one source IP may
    /// hold at once; more are refused during the handshake.
    pub max_connections_per_ip: u32,
    /// Request streams an agent may have open at once on one connection
    /// (QUIC flow control: the peer cannot open more).
    pub max_streams_per_connection: u32,
    /// Time a peer has to open its first stream and to send a whole request
    /// on it; a peer that sends nothing, or one byte at a time, is cut off.
    pub request_timeout: Duration,
    /// Time a peer has to read a whole reply or notification; one that stops
    /// reading is cut off instead of holding the hub's send buffers.
    pub reply_timeout: Duration,
    /// A connection silent for this long is closed (agents keep alive every 5 s).
    pub idle_timeout: Duration,
    /// Enrollment attempts one IP may make per minute, once its burst is spent.
    pub enroll_per_minute: u32,
    /// Enrollment attempts one IP may make at once.
    pub enroll_burst: u32,
    /// Time, memory and concurrency of renders.
    pub render: crate::render::sandbox::RenderLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections_per_ip: 256,
            max_streams_per_connection: 16,
            request_timeout: Duration::from_secs(10),
            reply_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            enroll_per_minute: 20,
            enroll_burst: 10,
            render: crate::render::sandbox::RenderLimits::default(),
        }
    }
}

impl Limits {
    /// Refuse limits that would cut off well-behaved agents or mean nothing.
    pub fn validate(&self) -> Result<(), Error> {
        for (flag, value) in [
            ("--max-connections-per-ip", self.max_connections_per_ip),
            (
                "--max-streams-per-connection",
                self.max_streams_per_connection,
            ),
            ("--enroll-per-minute", self.enroll_per_minute),
            ("--enroll-burst", self.enroll_burst),
            (
                "--render-concurrency",
                u32::try_from(self.render.concurrency).unwrap_or(u32::MAX),
            ),
        ] {
            if value == 0 {
                return Err(Error::Zero(flag));
            }
        }
        // Agents send a keep-alive every 5 s; anything shorter than two of
        // them would drop healthy, quiet agents.
        for (flag, min, got) in [
            (
                "--request-timeout",
                Duration::from_secs(1),
                self.request_timeout,
            ),
            (
                "--reply-timeout",
                Duration::from_secs(1),
                self.reply_timeout,
            ),
            ("--idle-timeout", Duration::from_secs(10), self.idle_timeout),
            (
                "--render-timeout",
                Duration::from_secs(1),
                self.render.timeout,
            ),
        ] {
            if got < min {
                return Err(Error::TooShort { flag, min, got });
            }
        }
        // Below this even the worker itself (its binary mapped, a jsonnet
        // thread's stack) cannot start.
        let mib = self.render.memory_bytes / (1024 * 1024);
        if mib < RENDER_MEMORY_MIN_MIB {
            return Err(Error::TooLittleMemory {
                flag: "--render-memory-mib",
                min: RENDER_MEMORY_MIN_MIB,
                got: mib,
            });
        }
        Ok(())
    }

    /// The QUIC transport settings these limits imply.
    pub(crate) fn transport(&self) -> quinn::TransportConfig {
        let mut transport = quinn::TransportConfig::default();
        // Agents open request streams; only the hub opens unidirectional ones.
        transport
            .max_concurrent_bidi_streams(self.max_streams_per_connection.into())
            .max_concurrent_uni_streams(0u32.into())
            .max_idle_timeout(Some(
                quinn::IdleTimeout::try_from(self.idle_timeout)
                    // Only absurd values (beyond 2^62 ms) fail; cap them.
                    .unwrap_or_else(|_| quinn::VarInt::MAX.into()),
            ));
        transport
    }
}

/// The least address space a render may be given.
const RENDER_MEMORY_MIN_MIB: u64 = 128;

/// The limits' state while the hub runs: live connections per IP and the
/// enrollment token buckets.
pub(crate) struct Guard {
    limits: Limits,
    connections: Arc<Mutex<HashMap<IpAddr, u32>>>,
    enrollments: DefaultKeyedRateLimiter<IpAddr>,
    handshakes: Arc<tokio::sync::Semaphore>,
    handshake_wait: Duration,
}

/// TLS handshakes the hub works on at once, per processor. A handshake is
/// CPU work in bursts between round trips; a few dozen per processor keep
/// every core busy. When thousands of agents reconnect at once, taking them
/// all on would only make every runnable task (and the endpoint driver that
/// reads the socket) wait behind thousands of others, every handshake
/// slower and the socket's queue overflowing. The rest wait their turn in
/// arrival order, their first packet kept by quinn, as cheap as a queue
/// entry.
const HANDSHAKES_PER_PROCESSOR: usize = 32;

/// Longest a handshake holds its turn. The handshake goes on after that,
/// no longer counted: its CPU work is done in the first round trips, and
/// one still going is waiting on its peer.
pub(crate) const HANDSHAKE_TURN: Duration = Duration::from_secs(2);

/// A handshake not finished this long after it began is abandoned, freeing
/// its peer's connection slot: an agent gives up on its own handshake
/// after its idle timeout, so one still unfinished has no agent waiting
/// for it. quinn alone would wait for the hub's idle timeout.
pub(crate) const HANDSHAKE_DEADLINE: Duration = switchyard_quic::AGENT_IDLE_TIMEOUT;

/// A connection attempt that waited this long for its turn is refused: its
/// agent's own handshake timeout is near, and a refusal makes it back off
/// and retry instead of finishing a handshake nobody waits for.
pub(crate) const HANDSHAKE_WAIT_LIMIT: Duration = Duration::from_secs(10);

/// Buckets kept before idle (full) ones are dropped, bounding the memory a
/// scan from many addresses can cost.
const BUCKETS_BEFORE_PRUNING: usize = 4096;

impl Guard {
    pub(crate) fn new(limits: Limits) -> Guard {
        let burst = NonZeroU32::new(limits.enroll_burst).unwrap_or(NonZeroU32::MIN);
        let rate = NonZeroU32::new(limits.enroll_per_minute).unwrap_or(NonZeroU32::MIN);
        let processors = std::thread::available_parallelism().map_or(1, usize::from);
        Guard {
            enrollments: RateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst)),
            connections: Arc::default(),
            handshakes: Arc::new(tokio::sync::Semaphore::new(
                HANDSHAKES_PER_PROCESSOR * processors,
            )),
            handshake_wait: HANDSHAKE_WAIT_LIMIT,
            limits,
        }
    }

    #[cfg(test)]
    fn with_handshakes(limits: Limits, at_once: usize, wait: Duration) -> Guard {
        Guard {
            handshakes: Arc::new(tokio::sync::Semaphore::new(at_once)),
            handshake_wait: wait,
            ..Guard::new(limits)
        }
    }

    /// Wait (in arrival order) until fewer than the most handshakes the hub
    /// works on at once are in progress, at most `HANDSHAKE_WAIT_LIMIT`;
    /// `None` when that time ran out. Hold the permit until the handshake
    /// is over.
    pub(crate) async fn handshake_turn(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        tokio::time::timeout(self.handshake_wait, self.handshakes.clone().acquire_owned())
            .await
            .ok()?
            .ok()
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A slot for one more connection from `ip`, or `None` when it holds
    /// `max_connections_per_ip` already. The slot is freed on drop.
    pub(crate) fn connection_slot(&self, ip: IpAddr) -> Option<ConnectionSlot> {
        let mut counts = self.connections.lock().expect("connection counts lock");
        let count = counts.entry(ip).or_insert(0);
        if *count >= self.limits.max_connections_per_ip {
            return None;
        }
        *count += 1;
        Some(ConnectionSlot {
            ip,
            counts: self.connections.clone(),
        })
    }

    /// Connections `ip` holds now.
    #[cfg(test)]
    pub(crate) fn connections_from(&self, ip: IpAddr) -> u32 {
        let counts = self.connections.lock().expect("connection counts lock");
        counts.get(&ip).copied().unwrap_or(0)
    }

    /// Take one enrollment attempt from `ip`'s bucket; `Err` says how long
    /// until the next attempt would be allowed.
    pub(crate) fn enrollment_attempt(&self, ip: IpAddr) -> Result<(), Duration> {
        if self.enrollments.len() > BUCKETS_BEFORE_PRUNING {
            self.enrollments.retain_recent();
            self.enrollments.shrink_to_fit();
        }
        self.enrollments
            .check_key(&ip)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// One connection's share of its IP's limit; released on drop.
pub(crate) struct ConnectionSlot {
    ip: IpAddr,
    counts: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().expect("connection counts lock");
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn connection_slots_are_counted_per_ip_and_freed_on_drop() {
        let guard = Guard::new(Limits {
            max_connections_per_ip: 2,
            ..Limits::default()
        });
        let a1 = guard.connection_slot(ip(1)).expect("first");
        let a2 = guard.connection_slot(ip(1)).expect("second");
        assert!(guard.connection_slot(ip(1)).is_none(), "third refused");
        let _b = guard
            .connection_slot(ip(2))
            .expect("another IP is not affected");
        drop(a1);
        assert_eq!(guard.connections_from(ip(1)), 1);
        let _a3 = guard
            .connection_slot(ip(1))
            .expect("a freed slot is reusable");
        drop(a2);
        assert_eq!(guard.connections_from(ip(1)), 1);
    }

    #[tokio::test]
    async fn handshakes_beyond_the_limit_wait_their_turn_then_give_up() {
        let guard = Arc::new(Guard::with_handshakes(
            Limits::default(),
            2,
            Duration::from_millis(300),
        ));
        let first = guard.handshake_turn().await.expect("first");
        let second = guard.handshake_turn().await.expect("second");
        let waiting = tokio::spawn({
            let guard = guard.clone();
            async move { guard.handshake_turn().await.is_some() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(first);
        assert!(waiting.await.unwrap(), "a freed turn goes to the waiter");
        // The waiter's turn ended with its task; `second` is still held, so
        // one turn is free.
        let third = guard
            .handshake_turn()
            .await
            .expect("the waiter's freed turn");
        assert!(
            guard.handshake_turn().await.is_none(),
            "no turn within the wait limit"
        );
        drop((second, third));
        assert!(guard.handshake_turn().await.is_some());
    }

    #[test]
    fn enrollment_attempts_are_limited_to_the_burst_then_the_rate() {
        let guard = Guard::new(Limits {
            enroll_burst: 3,
            enroll_per_minute: 1,
            ..Limits::default()
        });
        for attempt in 0..3 {
            assert!(guard.enrollment_attempt(ip(1)).is_ok(), "attempt {attempt}");
        }
        let wait = guard.enrollment_attempt(ip(1)).expect_err("burst spent");
        assert!(
            wait > Duration::from_secs(50) && wait <= Duration::from_secs(60),
            "one attempt a minute: next in {wait:?}"
        );
        assert!(guard.enrollment_attempt(ip(2)).is_ok(), "per IP");
    }

    #[test]
    fn limits_that_mean_nothing_or_drop_healthy_agents_are_refused() {
        assert!(Limits::default().validate().is_ok());
        let zero = Limits {
            enroll_burst: 0,
            ..Limits::default()
        };
        assert_eq!(
            zero.validate().unwrap_err().to_string(),
            "--enroll-burst must be at least 1"
        );
        let short = Limits {
            idle_timeout: Duration::from_secs(5),
            ..Limits::default()
        };
        assert!(
            short
                .validate()
                .unwrap_err()
                .to_string()
                .starts_with("--idle-timeout must be at least 10s")
        );
        let render = |change: &dyn Fn(&mut crate::render::sandbox::RenderLimits)| {
            let mut limits = Limits::default();
            change(&mut limits.render);
            limits.validate().map_err(|e| e.to_string())
        };
        assert_eq!(
            render(&|r| r.memory_bytes = 64 * 1024 * 1024),
            Err("--render-memory-mib must be at least 128 MiB, got 64 MiB".into())
        );
        assert_eq!(
            render(&|r| r.concurrency = 0),
            Err("--render-concurrency must be at least 1".into())
        );
        assert!(
            render(&|r| r.timeout = Duration::from_millis(10))
                .unwrap_err()
                .starts_with("--render-timeout must be at least 1s")
        );
    }
}
