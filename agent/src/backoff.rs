//! Reconnect delays: exponential growth with jitter, so that a fleet cut off
//! at once (a hub restart) does not come back at once.

use std::time::Duration;

/// Exponential backoff with "equal jitter": the delay is half the capped
/// exponential step plus a random share of the other half, so it never drops
/// to zero (no hot loop) yet spreads agents over the window.
///
/// The first retry after a success is different: "full jitter" anywhere in
/// `[0, first_spread]`. A hub that shuts down closes every connection in the
/// same instant; equal jitter over the first 500 ms step would bring 10,000
/// agents back within 250 ms, far beyond the handshakes a hub can do.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    base: Duration,
    max: Duration,
    first_spread: Duration,
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max: max.max(base),
            first_spread: base,
            attempt: 0,
        }
    }

    /// Spread the first retry over `[0, spread]` (capped at the maximum).
    pub(crate) fn with_first_spread(mut self, spread: Duration) -> Self {
        self.first_spread = spread.min(self.max);
        self
    }

    /// Forget past failures (after a connection that worked).
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The next delay; `unit` is a random number in [0, 1).
    pub(crate) fn next_delay(&mut self, unit: f64) -> Duration {
        let attempt = self.attempt;
        self.attempt = self.attempt.saturating_add(1);
        if attempt == 0 {
            return self.first_spread.mul_f64(unit.clamp(0.0, 1.0));
        }
        let step = delay_ceiling(self.base, self.max, attempt);
        let half = step / 2;
        half + half.mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// `base * 2^attempt`, capped at `max`, without overflow.
fn delay_ceiling(base: Duration, max: Duration, attempt: u32) -> Duration {
    let factor = 2u32.checked_pow(attempt.min(31)).unwrap_or(u32::MAX);
    base.checked_mul(factor).map_or(max, |d| d.min(max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn grows_then_caps() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let delays: Vec<Duration> = (0..10).map(|_| b.next_delay(1.0)).collect();
        assert_eq!(delays[0], Duration::from_millis(500));
        assert_eq!(delays[1], Duration::from_secs(1));
        assert_eq!(delays[2], Duration::from_secs(2));
        assert_eq!(delays[9], Duration::from_secs(30));
        b.reset();
        assert_eq!(b.next_delay(1.0), Duration::from_millis(500));
    }

    #[test]
    fn first_retry_spreads_from_zero() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(30))
            .with_first_spread(Duration::from_secs(3));
        assert_eq!(b.next_delay(0.0), Duration::ZERO);
        // Later attempts are the usual exponential steps.
        assert_eq!(b.next_delay(1.0), Duration::from_secs(1));
        b.reset();
        assert_eq!(b.next_delay(0.5), Duration::from_millis(1500));
    }

    proptest! {
        #[test]
        fn delays_stay_within_bounds(
            base_ms in 1u64..10_000,
            max_ms in 1u64..600_000,
            spread_ms in 0u64..10_000,
            attempts in 0usize..200,
            units in proptest::collection::vec(0.0f64..1.0, 200),
        ) {
            let base = Duration::from_millis(base_ms);
            let max = Duration::from_millis(max_ms).max(base);
            let spread = Duration::from_millis(spread_ms);
            let mut b = Backoff::new(base, max).with_first_spread(spread);
            let mut previous_ceiling = Duration::ZERO;
            for (attempt, unit) in units.iter().take(attempts).enumerate() {
                let ceiling = delay_ceiling(base, max, attempt as u32);
                let d = b.next_delay(*unit);
                if attempt == 0 {
                    // Full jitter, anywhere up to the spread (and the cap).
                    prop_assert!(d <= spread.min(max));
                    continue;
                }
                // Never above the cap, never below half the current step.
                prop_assert!(d <= max);
                prop_assert!(d <= ceiling);
                prop_assert!(d >= ceiling / 2);
                // The step never shrinks while failures continue.
                prop_assert!(ceiling >= previous_ceiling);
                previous_ceiling = ceiling;
            }
        }
    }
}
