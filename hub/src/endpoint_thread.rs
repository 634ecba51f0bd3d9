//! A thread of its own for the QUIC endpoint's socket.
//!
//! quinn runs one endpoint driver per endpoint: it reads every datagram of
//! every agent from the UDP socket and hands each to its connection. On the
//! shared runtime it waits its turn behind every runnable task, and it reads
//! for at most 50 µs per turn (quinn's `RECV_TIME_BOUND`). When thousands of
//! agents reconnect at once the runnable tasks are thousands of TLS
//! handshakes, a turn comes round too rarely, the kernel's receive queue
//! fills (50 MB measured) and drops datagrams; an agent whose handshake
//! packet is dropped waits out QUIC's doubling retransmission timer (1, 2,
//! 4, 8 s). With 10,000 agents that made a tail of 10–25 s after everyone
//! else was back (BENCHMARKS.md, "Fleet scale").
//!
//! Here the driver runs on a single-threaded runtime on its own thread, and
//! the socket is registered with that runtime's reactor, so reading never
//! queues behind handshakes. Connection drivers, timers and everything else
//! stay on the main runtime; only the socket I/O moved.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A quinn [`quinn::Runtime`] that runs the endpoint driver on a dedicated
/// thread and spawns everything else on the runtime it is called from.
pub(crate) struct EndpointThread {
    /// The dedicated runtime; its thread runs until this value is dropped.
    handle: tokio::runtime::Handle,
    /// Taken by the first spawn: quinn spawns the endpoint driver when the
    /// endpoint is built (`Endpoint::new`), before any connection exists.
    driver_pending: Mutex<bool>,
    _stop: tokio::sync::oneshot::Sender<()>,
    main: quinn::TokioRuntime,
}

impl EndpointThread {
    pub(crate) fn start() -> io::Result<Arc<Self>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("quic-endpoint".into())
            .spawn(move || {
                // Runs the driver until the endpoint (and with it the last
                // reference to this value) is gone.
                let _ = runtime.block_on(stopped);
            })?;
        Ok(Arc::new(Self {
            handle,
            driver_pending: Mutex::new(true),
            _stop: stop,
            main: quinn::TokioRuntime,
        }))
    }
}

impl fmt::Debug for EndpointThread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointThread").finish_non_exhaustive()
    }
}

impl quinn::Runtime for EndpointThread {
    fn new_timer(&self, at: Instant) -> Pin<Box<dyn quinn::AsyncTimer>> {
        self.main.new_timer(at)
    }

    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        let driver = std::mem::take(&mut *self.driver_pending.lock().expect("spawn lock"));
        if driver {
            self.handle.spawn(future);
        } else {
            self.main.spawn(future);
        }
    }

    fn wrap_udp_socket(
        &self,
        socket: std::net::UdpSocket,
    ) -> io::Result<Arc<dyn quinn::AsyncUdpSocket>> {
        // Readiness of the socket is then reported by the dedicated thread's
        // reactor, not the busy main one; connection drivers on the main
        // runtime may still send on it (tokio allows I/O across runtimes).
        let _context = self.handle.enter();
        self.main.wrap_udp_socket(socket)
    }

    fn now(&self) -> Instant {
        self.main.now()
    }
}
