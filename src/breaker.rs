//! Pausing receives while a dependency is failing.
//!
//! When messages fail because DynamoDB, S3, SNS or SageMaker is down,
//! receiving more of them only burns their receive counts: after the
//! queue's `maxReceiveCount` the redrive policy moves them to the dead-letter
//! queue, so a few minutes of outage would dead-letter all pending work.
//! Instead, a failure opens this breaker: the loop stops receiving for a
//! pause that doubles with each consecutive failure (2 s up to 60 s), then
//! lets exactly one message through as a probe. A success closes the
//! breaker and receiving resumes at full speed; a failure pauses again.
//! Messages nobody receives keep their receive counts, so an outage only
//! costs the probes.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

const BASE_PAUSE: Duration = Duration::from_secs(2);
const MAX_PAUSE: Duration = Duration::from_secs(60);

/// What the receive loop may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Receive normally.
    Closed,
    /// Wait until then, then send one probe.
    PausedUntil(Instant),
    /// A probe is in flight; wait for its outcome.
    Probing,
}

#[derive(Debug, Default)]
struct State {
    failures: u32,
    paused_until: Option<Instant>,
    probing: bool,
}

#[derive(Debug, Default)]
pub struct Breaker {
    state: Mutex<State>,
    changed: Notify,
}

impl Breaker {
    pub fn gate(&self) -> Gate {
        let Ok(state) = self.state.lock() else {
            return Gate::Closed;
        };
        match (state.probing, state.paused_until) {
            (true, _) => Gate::Probing,
            (false, Some(until)) => Gate::PausedUntil(until),
            (false, None) => Gate::Closed,
        }
    }

    /// The pause is over: one message goes through as a probe.
    pub fn start_probe(&self) {
        self.update(|s| {
            s.paused_until = None;
            s.probing = true;
        });
    }

    /// The probe's receive found nothing: no evidence either way.
    pub fn probe_found_nothing(&self) {
        self.update(|s| s.probing = false);
    }

    /// A message went through: its dependencies work.
    pub fn success(&self) {
        self.update(|s| *s = State::default());
    }

    /// A message failed; returns the pause that follows.
    pub fn failure(&self) -> Duration {
        let mut pause = Duration::ZERO;
        self.update(|s| {
            s.failures = s.failures.saturating_add(1);
            let factor = 1u32
                .checked_shl(s.failures.saturating_sub(1).min(16))
                .unwrap_or(u32::MAX);
            pause = BASE_PAUSE.saturating_mul(factor).min(MAX_PAUSE);
            s.paused_until = Some(Instant::now() + pause);
            s.probing = false;
        });
        crate::metrics::receive_paused(true);
        pause
    }

    /// Waits until the state changes (e.g. a probe's outcome).
    pub async fn changed(&self) {
        let notified = self.changed.notified();
        tokio::pin!(notified);
        // Register before checking, so a change in between is not missed.
        notified.as_mut().enable();
        if self.gate() != Gate::Probing {
            return;
        }
        notified.await;
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        if let Ok(mut state) = self.state.lock() {
            f(&mut state);
            if !state.probing && state.paused_until.is_none() {
                crate::metrics::receive_paused(false);
            }
        }
        self.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn failures_pause_then_probe_then_close() {
        let b = Breaker::default();
        assert_eq!(b.gate(), Gate::Closed);
        assert_eq!(b.failure(), Duration::from_secs(2));
        assert!(matches!(b.gate(), Gate::PausedUntil(_)));
        assert_eq!(
            b.failure(),
            Duration::from_secs(4),
            "consecutive failures pause longer"
        );
        b.start_probe();
        assert_eq!(b.gate(), Gate::Probing);
        assert_eq!(
            b.failure(),
            Duration::from_secs(8),
            "a failed probe pauses again"
        );
        b.start_probe();
        b.success();
        assert_eq!(b.gate(), Gate::Closed);
        assert_eq!(
            b.failure(),
            Duration::from_secs(2),
            "a success resets the pause"
        );
        for _ in 0..20 {
            b.failure();
        }
        assert_eq!(b.failure(), MAX_PAUSE);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_for_a_probe_ends_with_its_outcome() {
        let b = std::sync::Arc::new(Breaker::default());
        b.failure();
        b.start_probe();
        let waiter = tokio::spawn({
            let b = b.clone();
            async move { b.changed().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        b.probe_found_nothing();
        waiter.await.unwrap();
        assert!(matches!(b.gate(), Gate::Closed | Gate::PausedUntil(_)));
    }
}
