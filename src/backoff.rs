//! Exponential backoff with jitter: the mechanism behind every named retry
//! policy of [`crate::retry`] (which holds the numbers).
//!
//! Each delay is drawn uniformly from the upper half of the exponential
//! cap, `[cap/2, cap]` ("equal jitter"): random enough to spread the
//! retries of many tasks apart, so a throttled service is not hit again by
//! all of them at the same instant, while the floor keeps a retry loop
//! from ever spinning.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max,
            attempt: 0,
        }
    }

    /// The cap for the current attempt: `base * 2^attempt`, at most `max`.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(20)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// A random delay in `[ceiling/2, ceiling]` and one more attempt counted.
    /// Half the ceiling is kept as a floor so a retry loop can never spin.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        half + ceiling.saturating_sub(half).mul_f64(fastrand::f64())
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_caps() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let delays: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        for (i, d) in delays.iter().enumerate() {
            let cap = Duration::from_millis(100 * (1 << i)).min(Duration::from_secs(2));
            assert!(
                *d <= cap && *d >= cap / 2,
                "attempt {i}: {d:?} vs cap {cap:?}"
            );
        }
        assert_eq!(b.attempts(), 8);
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn never_overflows() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        for _ in 0..100 {
            assert!(b.next_delay() <= Duration::from_secs(30));
        }
    }
}
