//! One task per repo: fetch at its interval, at once when a webhook says
//! so, and back off while the repo is unreachable.

use super::GitOps;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tracing::{Instrument, debug, info_span};

/// Longest wait between attempts while a repo keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
const FIRST_RETRY: Duration = Duration::from_secs(2);

pub(super) struct Poller {
    wake: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Poller {
    pub(super) fn spawn(gitops: Arc<GitOps>, repo: String) -> Poller {
        let wake = Arc::new(Notify::new());
        let span = info_span!("repo", %repo);
        let task = tokio::spawn(poll(gitops, repo, wake.clone()).instrument(span));
        Poller { wake, task }
    }

    pub(super) fn wake(&self) {
        self.wake.notify_one();
    }

    pub(super) fn stop(self) {
        self.task.abort();
    }
}

/// Delay before the next attempt after `failures` failures in a row:
/// doubling from two seconds up to five minutes, whatever the interval, so a
/// broken server is not hammered and a fixed one is picked up soon.
pub(super) fn retry_delay(interval: Duration, failures: u32) -> Duration {
    if failures == 0 {
        return interval;
    }
    FIRST_RETRY
        .checked_mul(2u32.saturating_pow(failures.saturating_sub(1).min(16)))
        .map_or(MAX_BACKOFF, |d| d.min(MAX_BACKOFF))
}

async fn poll(gitops: Arc<GitOps>, repo: String, wake: Arc<Notify>) {
    let mut trigger = "poll";
    loop {
        let result = gitops.fetch_repo(&repo, trigger).await;
        let Ok(Some(record)) = gitops.store.repo(&repo) else {
            debug!("repo removed; poller stops");
            return;
        };
        let interval = Duration::from_secs(record.interval_secs.max(1));
        let delay = if result.is_ok() {
            interval
        } else {
            retry_delay(interval, record.fetch.consecutive_failures)
        };
        debug!(?delay, "next fetch");
        trigger = tokio::select! {
            () = tokio::time::sleep(delay) => "poll",
            () = wake.notified() => "webhook",
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_repos_back_off_to_five_minutes() {
        let interval = Duration::from_secs(30);
        assert_eq!(retry_delay(interval, 0), interval);
        assert_eq!(retry_delay(interval, 1), Duration::from_secs(2));
        assert_eq!(retry_delay(interval, 2), Duration::from_secs(4));
        assert_eq!(retry_delay(interval, 8), Duration::from_secs(256));
        assert_eq!(retry_delay(interval, 9), MAX_BACKOFF);
        assert_eq!(retry_delay(interval, u32::MAX), MAX_BACKOFF);
        let mut previous = Duration::ZERO;
        for failures in 1..100 {
            let d = retry_delay(interval, failures);
            assert!(d >= previous && d <= MAX_BACKOFF);
            previous = d;
        }
    }
}
