//! What the simulated fleet has done, and the JSON lines that say so.
//!
//! Events (one JSON object per line on stdout, times in Unix milliseconds):
//! - `registered`, `enrolled`: rate of each enrollment phase;
//! - `progress`: counters, every `--progress-interval`;
//! - `all_connected`: every agent holds a connection (again), with the
//!   spread of their latest connection times and the total connections made;
//! - `digest_everywhere`: every agent has fetched and verified this bundle,
//!   with the spread of the times at which they did;
//! - `synced`: with `--exit-when-synced`, the digests every agent holds.

use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// Unix time in milliseconds.
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Print one event line; a whole line per write so readers never see half.
pub(crate) fn emit(event: &Value) {
    let mut line = event.to_string();
    line.push('\n');
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.flush();
}

#[derive(Default)]
struct PerAgent {
    connected: bool,
    synced: bool,
    connected_at: u64,
}

#[derive(Default)]
struct Arrivals {
    agents: Vec<bool>,
    times: Vec<u64>,
    announced: bool,
}

/// Shared counters of the simulated fleet.
pub(crate) struct Stats {
    agents: usize,
    per_agent: Mutex<Vec<PerAgent>>,
    connected: AtomicUsize,
    synced: AtomicUsize,
    connections: AtomicU64,
    reports: AtomicU64,
    bundles: AtomicU64,
    errors: AtomicU64,
    updates: AtomicU64,
    update_bytes: AtomicU64,
    arrivals: Mutex<HashMap<String, Arrivals>>,
    all_synced: Notify,
}

impl Stats {
    pub(crate) fn new(agents: usize) -> Stats {
        Stats {
            agents,
            per_agent: Mutex::new((0..agents).map(|_| PerAgent::default()).collect()),
            connected: AtomicUsize::new(0),
            synced: AtomicUsize::new(0),
            connections: AtomicU64::new(0),
            reports: AtomicU64::new(0),
            bundles: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            updates: AtomicU64::new(0),
            update_bytes: AtomicU64::new(0),
            arrivals: Mutex::new(HashMap::new()),
            all_synced: Notify::new(),
        }
    }

    pub(crate) fn set_connected(&self, index: usize, connected: bool) {
        let mut per_agent = self.per_agent.lock().expect("stats lock");
        let agent = &mut per_agent[index];
        if agent.connected == connected {
            return;
        }
        agent.connected = connected;
        if !connected {
            self.connected.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        agent.connected_at = unix_ms();
        let connections = self.connections.fetch_add(1, Ordering::SeqCst) + 1;
        if self.connected.fetch_add(1, Ordering::SeqCst) + 1 == self.agents {
            let times: Vec<u64> = per_agent.iter().map(|a| a.connected_at).collect();
            emit(&json!({
                "event": "all_connected",
                "at_ms": unix_ms(),
                "connections": connections,
                "connected_at_ms": spread(times),
            }));
        }
    }

    pub(crate) fn set_synced(&self, index: usize, synced: bool) {
        let mut per_agent = self.per_agent.lock().expect("stats lock");
        let agent = &mut per_agent[index];
        if agent.synced == synced {
            return;
        }
        agent.synced = synced;
        if !synced {
            self.synced.fetch_sub(1, Ordering::SeqCst);
        } else if self.synced.fetch_add(1, Ordering::SeqCst) + 1 == self.agents {
            self.all_synced.notify_waiters();
        }
    }

    pub(crate) fn synced_count(&self) -> usize {
        self.synced.load(Ordering::SeqCst)
    }

    /// Resolves once every agent is synced.
    pub(crate) async fn wait_all_synced(&self) {
        loop {
            let notified = self.all_synced.notified();
            if self.synced_count() == self.agents {
                return;
            }
            notified.await;
        }
    }

    pub(crate) fn report_accepted(&self) {
        self.reports.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Wire bytes of one notification-to-report update of one agent.
    pub(crate) fn update_bytes(&self, bytes: u64) {
        self.updates.fetch_add(1, Ordering::Relaxed);
        self.update_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn bundle_verified(&self, index: usize, digest: &str) {
        self.bundles.fetch_add(1, Ordering::Relaxed);
        let now = unix_ms();
        let mut arrivals = self.arrivals.lock().expect("stats lock");
        let entry = arrivals.entry(digest.to_owned()).or_default();
        if entry.agents.is_empty() {
            entry.agents = vec![false; self.agents];
        }
        if std::mem::replace(&mut entry.agents[index], true) {
            return;
        }
        entry.times.push(now);
        if entry.times.len() == self.agents && !entry.announced {
            entry.announced = true;
            emit(&json!({
                "event": "digest_everywhere",
                "digest": digest,
                "agents": self.agents,
                "fetched_at_ms": spread(entry.times.clone()),
            }));
        }
    }

    /// Which digests how many synced agents hold, for `--exit-when-synced`.
    pub(crate) fn synced_summary(&self) -> Value {
        let arrivals = self.arrivals.lock().expect("stats lock");
        let digests: serde_json::Map<String, Value> = arrivals
            .iter()
            .map(|(digest, a)| (digest.clone(), json!(a.times.len())))
            .collect();
        json!({
            "event": "synced",
            "agents": self.agents,
            "synced": self.synced_count(),
            "digests": digests,
        })
    }

    fn progress(&self) -> Value {
        json!({
            "event": "progress",
            "at_ms": unix_ms(),
            "connected": self.connected.load(Ordering::SeqCst),
            "synced": self.synced_count(),
            "connections": self.connections.load(Ordering::SeqCst),
            "reports": self.reports.load(Ordering::Relaxed),
            "bundles": self.bundles.load(Ordering::Relaxed),
            "errors": self.errors.load(Ordering::Relaxed),
            "updates": self.updates.load(Ordering::Relaxed),
            "update_bytes": self.update_bytes.load(Ordering::Relaxed),
        })
    }
}

/// Minimum, median, 99th percentile and maximum of `values`.
fn spread(mut values: Vec<u64>) -> Value {
    values.sort_unstable();
    let at = |q: f64| {
        let rank = ((values.len() as f64 * q).ceil() as usize).clamp(1, values.len());
        values[rank - 1]
    };
    json!({"min": at(0.0), "p50": at(0.5), "p99": at(0.99), "max": at(1.0)})
}

/// Print a progress line every `interval`, forever.
pub(crate) async fn print_progress(stats: std::sync::Arc<Stats>, interval: Duration) {
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(50)));
    loop {
        tick.tick().await;
        emit(&stats.progress());
    }
}
