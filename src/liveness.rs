//! Liveness: whether the worker is still making progress, for `/healthz`.
//!
//! `/readyz` says whether the worker can do useful work right now; liveness
//! says whether it is stuck. A wedged worker (a call that never returns, a
//! task that never ends) still answers HTTP, so answering is not enough:
//! `/healthz` fails once nothing has moved for `FLEETWATCH_LIVENESS_TIMEOUT`,
//! and the container health check (`fleetwatch healthcheck`) has the task
//! replaced.
//!
//! Progress is any of:
//! - the receive loop turned: a receive returned, with messages or without,
//!   or failed;
//! - a message task made headway: an object finished (stored, refused or
//!   failed), a chunk was stored, a retry attempt completed.
//!
//! A heartbeat (a visibility extension) is not progress: a wedged task goes
//! on extending its message's visibility for ever.
//!
//! [`Liveness::progress`] is one atomic `fetch_max`, cheap enough to call on
//! every event. Time is tokio's clock, so tests drive it with paused time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// A shared progress clock; clones observe and feed the same clock.
#[derive(Debug, Clone)]
pub struct Liveness {
    inner: Arc<State>,
}

#[derive(Debug)]
struct State {
    /// How long without progress fails the check; `None` never fails (for
    /// code that runs pieces of the worker without its health check).
    timeout: Option<Duration>,
    /// Origin of `last_ms`: when this clock was created, which counts as
    /// progress (start-up has to begin somewhere).
    epoch: Instant,
    /// Milliseconds after `epoch` of the latest progress; only grows.
    last_ms: AtomicU64,
}

impl Liveness {
    /// A clock that fails its check after `timeout` without progress.
    pub fn new(timeout: Duration) -> Liveness {
        Liveness::with_timeout(Some(timeout))
    }

    /// A clock whose check never fails.
    pub fn disabled() -> Liveness {
        Liveness::with_timeout(None)
    }

    fn with_timeout(timeout: Option<Duration>) -> Liveness {
        Liveness {
            inner: Arc::new(State {
                timeout,
                epoch: Instant::now(),
                last_ms: AtomicU64::new(0),
            }),
        }
    }

    /// Records that the worker made progress now.
    pub fn progress(&self) {
        let now = self.elapsed_ms();
        self.inner.last_ms.fetch_max(now, Ordering::Relaxed);
    }

    /// Time since the latest progress.
    pub fn since_progress(&self) -> Duration {
        let last = self.inner.last_ms.load(Ordering::Relaxed);
        Duration::from_millis(self.elapsed_ms().saturating_sub(last))
    }

    /// `Ok` while the worker makes progress, else why it looks wedged.
    pub fn check(&self) -> Result<(), String> {
        let Some(timeout) = self.inner.timeout else {
            return Ok(());
        };
        let quiet = self.since_progress();
        if quiet < timeout {
            Ok(())
        } else {
            Err(format!(
                "wedged: no progress for {:.1} s (no receive returned, no message moved; \
                 FLEETWATCH_LIVENESS_TIMEOUT is {:.1} s)",
                quiet.as_secs_f64(),
                timeout.as_secs_f64()
            ))
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.inner.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

impl Default for Liveness {
    /// Never fails: see [`Liveness::disabled`].
    fn default() -> Self {
        Liveness::disabled()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(300);

    #[tokio::test(start_paused = true)]
    async fn fails_after_the_timeout_without_progress_and_recovers_with_progress() {
        let liveness = Liveness::new(TIMEOUT);
        assert_eq!(liveness.check(), Ok(()), "creation counts as progress");
        tokio::time::advance(TIMEOUT - Duration::from_secs(1)).await;
        assert_eq!(liveness.check(), Ok(()));
        tokio::time::advance(Duration::from_secs(2)).await;
        let why = liveness.check().unwrap_err();
        assert!(why.contains("no progress for 301.0 s"), "{why}");
        assert!(why.contains("FLEETWATCH_LIVENESS_TIMEOUT"), "{why}");

        liveness.progress();
        assert_eq!(liveness.check(), Ok(()));
        assert_eq!(liveness.since_progress(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_healthy_idle_loop_never_trips_it() {
        // Long polls returning every 20 s, a 60 s receive pause during an
        // outage, then a probe that takes 4 minutes to fail (SageMaker's
        // three 70 s attempts): progress keeps coming within the timeout.
        let liveness = Liveness::new(TIMEOUT);
        let clone = liveness.clone();
        let mut gaps = vec![Duration::from_secs(20); 180];
        gaps.extend([Duration::from_secs(60), Duration::from_secs(240)]);
        gaps.extend([Duration::from_secs(20); 10]);
        for gap in gaps {
            tokio::time::advance(gap).await;
            assert_eq!(liveness.check(), Ok(()), "after a gap of {gap:?}");
            clone.progress();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn progress_from_any_clone_counts() {
        let liveness = Liveness::new(Duration::from_secs(10));
        let tasks: Vec<_> = (0..4)
            .map(|i| {
                let l = liveness.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(i * 3)).await;
                    l.progress();
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        // The latest progress (at 9 s) wins, whatever the order of stores.
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(liveness.since_progress(), Duration::from_secs(9));
        assert_eq!(liveness.check(), Ok(()));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(liveness.check().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_disabled_clock_never_fails() {
        let liveness = Liveness::default();
        tokio::time::advance(Duration::from_secs(365 * 24 * 3600)).await;
        assert_eq!(liveness.check(), Ok(()));
    }
}
