//! Renders started by planning passes and run outside the planning lock: each (app, commit, settings) at most once at a time, a bounded number at once.
//!
//! A pass that finds a render missing names it here and goes on without
//! it (the cluster keeps its last bundle for that app); the render runs in
//! a worker process on a blocking thread, its outcome lands in the
//! planner's cache, and whoever waits for it plans again. A render that
//! never ends thus holds one permit until its timeout, never the lock.

use super::pass::{Planner, RenderJob, RenderKey};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tokio::sync::{Semaphore, mpsc, watch};
use tracing::warn;

/// Becomes `true` when its render has finished (whatever the outcome).
pub(super) type Finished = watch::Receiver<bool>;

pub(super) struct Renders {
    permits: Arc<Semaphore>,
    running: Arc<Mutex<HashSet<RenderKey>>>,
    /// Told after every finished render, so the hub plans at once even
    /// when nobody waits for that render (see `GitOps::start`).
    finished_tx: mpsc::UnboundedSender<()>,
    finished_rx: Mutex<Option<mpsc::UnboundedReceiver<()>>>,
}

impl Renders {
    pub(super) fn new(concurrency: usize) -> Self {
        let (finished_tx, finished_rx) = mpsc::unbounded_channel();
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            running: Arc::default(),
            finished_tx,
            finished_rx: Mutex::new(Some(finished_rx)),
        }
    }

    /// The stream of "a render finished" events; `None` once taken.
    pub(super) fn take_finished(&self) -> Option<mpsc::UnboundedReceiver<()>> {
        self.finished_rx.lock().expect("renders lock").take()
    }

    /// Start every job not already running, on `planner`'s caches; returns
    /// what tells when each of those started here has finished. Renders
    /// already running are not waited for: a hung one must not hold up
    /// whoever asks for something else.
    pub(super) fn start(&self, jobs: Vec<RenderJob>, planner: &Arc<Planner>) -> Vec<Finished> {
        let mut started = Vec::new();
        for job in jobs {
            if !self
                .running
                .lock()
                .expect("renders lock")
                .insert(job.key.clone())
            {
                continue;
            }
            let (done_tx, done_rx) = watch::channel(false);
            started.push(done_rx);
            let permits = self.permits.clone();
            let running = self.running.clone();
            let finished = self.finished_tx.clone();
            let planner = planner.clone();
            tokio::spawn(async move {
                let key = job.key.clone();
                // Closed only if the semaphore is dropped, which it never is
                // while this task holds a reference.
                let _permit = permits.acquire_owned().await;
                let app = job.app.clone();
                if let Err(e) = tokio::task::spawn_blocking(move || planner.render_job(job)).await {
                    warn!(%app, error = %e, "render task failed");
                }
                running.lock().expect("renders lock").remove(&key);
                let _ = done_tx.send(true);
                let _ = finished.send(());
            });
        }
        started
    }
}
