//! A UDP relay with faults (loss, delay), for network tests on machines
//! whose kernel has no netem: agents dial the relay, which forwards every
//! datagram to the hub and back, dropping and delaying as told. Each client
//! address gets its own upstream socket, so the hub sees one stable peer per
//! agent. Stops (and frees its sockets) on drop.

use rand::RngExt;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;

/// Faults applied to every datagram, both ways.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Probability of dropping a datagram, 0.0..=1.0.
    pub loss: f64,
    /// Added one-way delay.
    pub delay: Duration,
}

/// A running relay.
pub struct Relay {
    /// Where agents send their datagrams.
    pub addr: SocketAddr,
    faults: Arc<Mutex<Faults>>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// Send `bytes` to `to` on `socket` after the faults: maybe not at all, maybe later.
fn forward(socket: &Arc<UdpSocket>, faults: &Mutex<Faults>, bytes: &[u8], to: SocketAddr) {
    let Faults { loss, delay } = *faults.lock().expect("faults lock");
    if rand::rng().random_bool(loss.clamp(0.0, 1.0)) {
        return;
    }
    let socket = socket.clone();
    let bytes = bytes.to_vec();
    tokio::spawn(async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let _ = socket.send_to(&bytes, to).await;
    });
}

impl Relay {
    /// Listen on `listen` (port 0 for any) and relay to `upstream`.
    pub fn start(listen: SocketAddr, upstream: SocketAddr) -> Relay {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("relay runtime");
        let front = runtime
            .block_on(UdpSocket::bind(listen))
            .expect("relay socket");
        let addr = front.local_addr().expect("relay address");
        let faults = Arc::new(Mutex::new(Faults::default()));
        let front = Arc::new(front);
        let task_faults = faults.clone();
        runtime.spawn(async move {
            let faults = task_faults;
            let mut upstreams: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
            let mut buf = vec![0u8; 65_536];
            loop {
                let Ok((n, client)) = front.recv_from(&mut buf).await else {
                    return;
                };
                let up = match upstreams.get(&client) {
                    Some(up) => up.clone(),
                    None => {
                        let bind = SocketAddr::new(upstream.ip(), 0);
                        let Ok(up) = UdpSocket::bind(bind).await else {
                            continue;
                        };
                        let up = Arc::new(up);
                        upstreams.insert(client, up.clone());
                        // Datagrams from the hub go back to this client.
                        let (up_rx, front, faults) = (up.clone(), front.clone(), faults.clone());
                        tokio::spawn(async move {
                            let mut buf = vec![0u8; 65_536];
                            while let Ok((n, _)) = up_rx.recv_from(&mut buf).await {
                                forward(&front, &faults, &buf[..n], client);
                            }
                        });
                        up
                    }
                };
                forward(&up, &faults, &buf[..n], upstream);
            }
        });
        Relay {
            addr,
            faults,
            runtime: Some(runtime),
        }
    }

    /// Apply `faults` from now on.
    pub fn set(&self, faults: Faults) {
        *self.faults.lock().expect("faults lock") = faults;
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
