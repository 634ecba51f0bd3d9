//! Switchyard's QUIC settings: the agent's connection to the hub
//! ([`agent_client_config`], shared by the agent and the load generator so
//! that simulated agents behave like real ones), and a quinn runtime whose
//! endpoint driver keeps the UDP socket drained.
//!
//! ## The draining runtime
//!
//! quinn reads every datagram of an endpoint from one task, the endpoint
//! driver, and reads for at most 50 µs per turn (`RECV_TIME_BOUND`) before
//! it yields and waits for its next turn behind every other runnable task.
//! On a hub in a reconnect storm those are thousands of TLS handshakes: a
//! turn came round so rarely that the kernel's receive queue grew to 50 MB
//! and dropped datagrams, and each agent whose packet was dropped waited out
//! QUIC's doubling retransmission timer, computed from round trips the queue
//! had already stretched to seconds (BENCHMARKS.md, "Fleet scale").
//!
//! [`DrainingRuntime`] is quinn's tokio runtime with one difference: when
//! the endpoint driver yields because it still has work, it is polled again
//! at once, for up to [`DRIVER_TURN`] per turn, so a turn empties the socket
//! instead of taking 50 µs from it. Everything stays on the shared runtime:
//! no datagram crosses threads (a driver on a thread of its own also ended
//! the drops, but in the runs measured, waking thousands of connection
//! tasks from another thread raised the steady-state cost of status reports
//! from 18% to 26–28% of a core). When the socket is empty the driver
//! returns as it always did, so an idle or lightly loaded endpoint behaves
//! exactly as with [`quinn::TokioRuntime`].
//!
//! A turn still comes only after every task ahead of it has run; how many
//! tasks are runnable at once is the server's to bound (the hub bounds its
//! handshakes and its notifications in progress).

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// How often an agent sends a keep-alive when it has nothing else to send:
/// it keeps NAT bindings open, and after a hub restart the next keep-alive
/// is answered with a stateless reset, so agents notice within this time.
pub const AGENT_KEEP_ALIVE: Duration = Duration::from_secs(5);

/// An agent gives its connection up after this long without a packet from
/// the hub (four keep-alives unanswered), then reconnects.
pub const AGENT_IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// The agent's quinn client configuration over a rustls one: keep-alives
/// every [`AGENT_KEEP_ALIVE`], idle timeout [`AGENT_IDLE_TIMEOUT`].
pub fn agent_client_config(
    tls: rustls::ClientConfig,
) -> Result<quinn::ClientConfig, quinn::crypto::rustls::NoInitialCipherSuite> {
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .keep_alive_interval(Some(AGENT_KEEP_ALIVE))
        .max_idle_timeout(Some(
            AGENT_IDLE_TIMEOUT
                .try_into()
                .expect("20 s is a valid idle timeout"),
        ));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// The longest the endpoint driver holds a worker thread per turn. Long
/// enough to read thousands of datagrams; short enough that no other task
/// waits noticeably.
pub const DRIVER_TURN: Duration = Duration::from_millis(5);

/// quinn's tokio runtime, with the endpoint driver draining its socket.
pub struct DrainingRuntime {
    tokio: quinn::TokioRuntime,
    /// Set by the first spawn. quinn spawns the endpoint driver while it
    /// builds the endpoint (`Endpoint::new`), before any connection exists,
    /// so the first future spawned through a fresh runtime is the driver;
    /// connection drivers come later and are spawned unchanged.
    driver_spawned: AtomicBool,
}

impl DrainingRuntime {
    /// A runtime for one endpoint: pass it to [`quinn::Endpoint::new`] and
    /// use a new one for every endpoint.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            tokio: quinn::TokioRuntime,
            driver_spawned: AtomicBool::new(false),
        })
    }
}

impl fmt::Debug for DrainingRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DrainingRuntime").finish_non_exhaustive()
    }
}

impl quinn::Runtime for DrainingRuntime {
    fn new_timer(&self, at: std::time::Instant) -> Pin<Box<dyn quinn::AsyncTimer>> {
        self.tokio.new_timer(at)
    }

    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        if self.driver_spawned.swap(true, Ordering::SeqCst) {
            self.tokio.spawn(future);
        } else {
            self.tokio
                .spawn(Box::pin(Draining::new(future, DRIVER_TURN)));
        }
    }

    fn wrap_udp_socket(
        &self,
        socket: std::net::UdpSocket,
    ) -> io::Result<Arc<dyn quinn::AsyncUdpSocket>> {
        self.tokio.wrap_udp_socket(socket)
    }

    fn now(&self) -> std::time::Instant {
        self.tokio.now()
    }
}

/// A future polled again at once, for up to `turn`, whenever it wakes
/// itself while being polled (a task's way of saying it yielded with work
/// left). Wakes from elsewhere wake the task as usual.
struct Draining<F> {
    inner: tokio::task::coop::Unconstrained<F>,
    wake: Arc<SelfWake>,
    /// `wake` as the waker the inner future is polled with.
    inner_waker: Waker,
    turn: Duration,
}

impl<F: Future<Output = ()>> Draining<F> {
    fn new(inner: F, turn: Duration) -> Self {
        let wake = Arc::new(SelfWake::default());
        Self {
            // tokio's cooperative budget would otherwise make the socket
            // report "not ready" (and wake the task) after 128 reads in one
            // poll, which this loop would take for more work.
            inner: tokio::task::coop::unconstrained(inner),
            inner_waker: Waker::from(wake.clone()),
            wake,
            turn,
        }
    }
}

/// The waker the inner future sees. quinn keeps a clone of the driver's
/// first waker for good and wakes it when connections have work for the
/// endpoint, so it must stay valid across polls and reach the task.
#[derive(Default)]
struct SelfWake {
    /// A wake came since the last poll of the inner future began.
    woken: AtomicBool,
    /// The inner future is being polled: its own wakes are handled by the
    /// polling loop, not passed to the task.
    polling: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl SelfWake {
    fn wake_task(&self) {
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(task) = task.as_ref() {
            task.wake_by_ref();
        }
    }
}

impl Wake for SelfWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        if !self.polling.load(Ordering::SeqCst) {
            self.wake_task();
        }
    }
}

impl<F: Future<Output = ()> + Unpin> Future for Draining<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        {
            let mut task = this.wake.task.lock().unwrap_or_else(|e| e.into_inner());
            if !task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        let mut inner_cx = Context::from_waker(&this.inner_waker);
        let started = Instant::now();
        this.wake.polling.store(true, Ordering::SeqCst);
        let outcome = loop {
            // A wake that came before this point is served by this poll.
            this.wake.woken.store(false, Ordering::SeqCst);
            if Pin::new(&mut this.inner).poll(&mut inner_cx).is_ready() {
                break Poll::Ready(());
            }
            if !this.wake.woken.load(Ordering::SeqCst) || started.elapsed() >= this.turn {
                break Poll::Pending;
            }
        };
        this.wake.polling.store(false, Ordering::SeqCst);
        // Work left at the end of the turn, or a wake from another thread
        // between the last poll and here: the task must run again.
        if outcome.is_pending() && this.wake.woken.load(Ordering::SeqCst) {
            this.wake.wake_task();
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Yields (waking itself) `yields` times, counting polls, then finishes.
    struct Yielding {
        yields: usize,
        polls: Arc<AtomicUsize>,
    }

    impl Future for Yielding {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            if self.yields == 0 {
                return Poll::Ready(());
            }
            self.yields -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    /// Counts wakes of the task around the future under test.
    #[derive(Default)]
    struct CountingWaker(AtomicUsize);
    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_yielding_future_is_polled_again_within_one_turn() {
        let polls = Arc::new(AtomicUsize::new(0));
        let mut draining = Draining::new(
            Yielding {
                yields: 100,
                polls: polls.clone(),
            },
            Duration::from_secs(60),
        );
        let task = Arc::new(CountingWaker::default());
        let waker = Waker::from(task.clone());
        let outcome = Pin::new(&mut draining).poll(&mut Context::from_waker(&waker));
        assert!(outcome.is_ready());
        assert_eq!(polls.load(Ordering::SeqCst), 101);
        assert_eq!(task.0.load(Ordering::SeqCst), 0, "no wake needed");
    }

    #[test]
    fn a_turn_ends_after_its_time_and_the_task_is_woken_to_go_on() {
        let polls = Arc::new(AtomicUsize::new(0));
        let mut draining = Draining::new(
            Yielding {
                yields: usize::MAX,
                polls: polls.clone(),
            },
            Duration::from_millis(20),
        );
        let task = Arc::new(CountingWaker::default());
        let waker = Waker::from(task.clone());
        let started = Instant::now();
        let outcome = Pin::new(&mut draining).poll(&mut Context::from_waker(&waker));
        assert!(outcome.is_pending());
        assert!(started.elapsed() >= Duration::from_millis(20));
        assert!(polls.load(Ordering::SeqCst) > 1);
        assert_eq!(task.0.load(Ordering::SeqCst), 1, "woken to continue");
    }

    #[test]
    fn a_wake_from_outside_a_poll_reaches_the_task() {
        // Pending without waking itself: waits for someone else.
        struct Waiting(Arc<Mutex<Option<Waker>>>);
        impl Future for Waiting {
            type Output = ();
            fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
                *self.0.lock().unwrap() = Some(cx.waker().clone());
                Poll::Pending
            }
        }
        let kept = Arc::new(Mutex::new(None));
        let mut draining = Draining::new(Waiting(kept.clone()), Duration::from_secs(60));
        let task = Arc::new(CountingWaker::default());
        let waker = Waker::from(task.clone());
        assert!(
            Pin::new(&mut draining)
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        assert_eq!(task.0.load(Ordering::SeqCst), 0);
        let inner_waker = kept.lock().unwrap().clone().expect("waker kept");
        inner_waker.wake_by_ref();
        assert_eq!(task.0.load(Ordering::SeqCst), 1);
    }
}
