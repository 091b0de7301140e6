//! The failure policy: how a step that failed is retried while its SQS
//! message is held.
//!
//! An outage of S3, DynamoDB, SNS or the inference backend must cost time,
//! not messages. Leaving a failed message for redelivery burns one receive
//! per attempt, and after the queue's `maxReceiveCount` the redrive policy
//! dead-letters it: with a count of 3, a minute of outage would do. So a
//! step that fails in a way that may pass ([`FailureClass::Transient`] or
//! [`FailureClass::Throttled`]) is retried in place, with backoff, while the
//! worker keeps the message invisible (the heartbeat extends it); its
//! receive count does not move however long the outage lasts, up to SQS's
//! 12-hour visibility ceiling ([`Attempt::hold_until`]).
//!
//! Holding forever would let one poisoned message (an object whose read
//! always fails while every other object reads fine) sit on a slot for
//! hours. So when the dependency keeps serving *other* work while this step
//! keeps failing for [`POISON_AFTER`], the step gives up and the message is
//! released for redelivery, towards the dead-letter queue, as before.
//!
//! [`FailureClass::Contention`] (another worker's live alert claim) waits
//! for the claim to end and is not a failure of anything;
//! [`FailureClass::Permanent`] is returned at once: the caller rejects the
//! input that caused it.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::alerts::ClaimOwner;
use crate::backoff::Backoff;
use crate::dependencies::DependencyHealth;
use crate::failure::{Dependency, FailureClass, StepError};
use crate::liveness::Liveness;
use crate::metrics;

// The policy table: every retry loop and redelivery delay of the worker
// takes its numbers from here, so "how long do we wait for X" has one
// answer. A `*_CALLS` bound ends a loop after that many calls (the first
// included); the other loops end on a deadline their caller owns.

/// Retrying a failing dependency while a message is held: from 1 s,
/// doubling to a minute, so a long outage costs a call a minute per held
/// message and recovery is noticed within a minute. Ends when the
/// dependency recovers, after [`POISON_AFTER`], or at
/// [`Attempt::hold_until`].
pub const OUTAGE: Policy = Policy {
    base: Duration::from_secs(1),
    max: Duration::from_secs(60),
};

/// Retrying a failed visibility extension before the current lease ends
/// (the lease's end is the deadline).
pub const HEARTBEAT: Policy = Policy {
    base: Duration::from_millis(500),
    max: Duration::from_secs(10),
};

/// Waiting for another worker's claim to be confirmed or to go stale (at
/// least the claim's own `retry_after`).
pub const CONTENTION: Policy = Policy {
    base: Duration::from_millis(500),
    max: Duration::from_secs(10),
};

/// Receiving from SQS after a failed `ReceiveMessage`: until shutdown.
pub const RECEIVE: Policy = Policy {
    base: Duration::from_millis(200),
    max: Duration::from_secs(30),
};

/// The worker's start-up checks while a dependency is unreachable: until
/// they pass, fail for good, or the process is stopped.
pub const STARTUP: Policy = Policy {
    base: Duration::from_secs(1),
    max: Duration::from_secs(30),
};

/// The `UnprocessedItems` DynamoDB hands back from a batch write: sent
/// again, at most [`UNPROCESSED_ITEMS_CALLS`] calls, then the step fails as
/// throttled and [`OUTAGE`] takes over.
pub const UNPROCESSED_ITEMS: Policy = Policy {
    base: Duration::from_millis(50),
    max: Duration::from_secs(5),
};
/// Calls of one batch write before its unprocessed items fail the step.
pub const UNPROCESSED_ITEMS_CALLS: u32 = 8;

/// The entries SNS failed in a `PublishBatch` for a reason that may pass:
/// sent again, at most [`SNS_ENTRIES_CALLS`] calls, then the step fails and
/// [`OUTAGE`] takes over.
pub const SNS_ENTRIES: Policy = Policy {
    base: Duration::from_millis(100),
    max: Duration::from_secs(5),
};
/// Calls of one `PublishBatch` before its failed entries fail the step.
pub const SNS_ENTRIES_CALLS: u32 = 5;

/// Recording a published (or refused) alert in the ledger: retried for up
/// to half the claim's lease, after which a redelivery could take the
/// claim over and publish again (the ledger owns that deadline).
pub const LEDGER_SETTLE: Policy = Policy {
    base: Duration::from_millis(50),
    max: Duration::from_secs(2),
};

/// Writing an object's fleet-status view: deliberately short, as the
/// records are a view and nothing waits for them; at most
/// [`FLEET_STATUS_CALLS`] calls (each with the SDK's own 3 attempts).
pub const FLEET_STATUS: Policy = Policy {
    base: Duration::from_millis(200),
    max: Duration::from_secs(2),
};
/// Calls of the fleet-status write per object: about 3 s of backoff.
pub const FLEET_STATUS_CALLS: u32 = 4;

/// The first redelivery delay of a message released after a failure; it
/// doubles with each receive up to [`REDELIVERY_MAX`] (see
/// [`redelivery_delay`]).
pub const REDELIVERY_BASE: Duration = Duration::from_secs(10);
/// The longest redelivery delay.
pub const REDELIVERY_MAX: Duration = Duration::from_secs(15 * 60);

/// A step failing this long while its dependency serves other work is
/// this message's own problem: it is released for redelivery.
pub const POISON_AFTER: Duration = Duration::from_secs(120);

/// A named backoff: where a retry loop starts and how far it grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The ceiling of the first delay.
    pub base: Duration,
    /// The ceiling no delay exceeds, however many attempts were made.
    pub max: Duration,
}

impl Policy {
    pub fn backoff(self) -> Backoff {
        Backoff::new(self.base, self.max)
    }
}

/// The redelivery delay after the `receive_count`-th failed receive:
/// `base * 2^(receive_count - 1)`, at most [`REDELIVERY_MAX`].
pub fn redelivery_delay(base: Duration, receive_count: u32) -> Duration {
    let exponent = receive_count.saturating_sub(1).min(16);
    base.saturating_mul(1 << exponent).min(REDELIVERY_MAX)
}

/// One attempt at a message: what every held step of it shares.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub health: &'a DependencyHealth,
    /// Who claims this attempt's alerts in the ledger (the message and its
    /// receive count), so its own claims are taken over at once.
    pub owner: &'a ClaimOwner,
    /// Each completed call is progress: a worker retrying through an
    /// outage is waiting, not wedged.
    pub liveness: &'a Liveness,
    /// Steps stop retrying then: the message must be released before SQS's
    /// visibility ceiling makes it visible to others anyway.
    pub hold_until: Instant,
}

/// Runs `call` until it succeeds, retrying the errors that may pass while
/// the message is held (see the module documentation), each blamed on the
/// dependency it names. Returns the last error when the step gives up.
pub async fn hold<T, E, F, Fut>(attempt: Attempt<'_>, what: &str, call: F) -> Result<T, E>
where
    E: StepError,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    hold_with(attempt, what, || {}, call).await
}

/// [`hold`], calling `before_retry` each time the step is about to wait
/// for a retry (the worker gives back its processing slot then).
pub async fn hold_with<T, E, F, Fut>(
    attempt: Attempt<'_>,
    what: &str,
    mut before_retry: impl FnMut(),
    mut call: F,
) -> Result<T, E>
where
    E: StepError,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = OUTAGE.backoff();
    let mut contention = CONTENTION.backoff();
    let mut failing_since: Option<Instant> = None;
    // The dependency the last failure blamed; a success clears it.
    let mut blamed: Option<Dependency> = None;
    let mut waiting = None;
    loop {
        let result = call().await;
        attempt.liveness.progress();
        let error = match result {
            Ok(value) => {
                if let Some(dependency) = blamed {
                    tracing::info!(
                        dependency = dependency.as_str(),
                        what,
                        "recovered; going on"
                    );
                    attempt.health.success(dependency);
                }
                return Ok(value);
            }
            Err(e) => e,
        };
        let dependency = error.dependency();
        let class = error.class();
        let delay = match class {
            FailureClass::Permanent => return Err(error),
            FailureClass::Contention => {
                let retry_after = error.retry_after().unwrap_or(Duration::ZERO);
                retry_after.max(contention.next_delay())
            }
            FailureClass::Transient | FailureClass::Throttled => {
                blamed = Some(dependency);
                attempt.health.failure(dependency);
                let since = *failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= POISON_AFTER
                    && attempt.health.succeeded_since(dependency, since)
                {
                    tracing::warn!(dependency = dependency.as_str(), what, error = %error, failing_for = ?since.elapsed(),
                        "still failing while the dependency serves other work; releasing the message");
                    return Err(error);
                }
                backoff.next_delay()
            }
        };
        if Instant::now() + delay >= attempt.hold_until {
            tracing::warn!(dependency = dependency.as_str(), what, error = %error,
                "the message cannot be held longer (SQS visibility ceiling); releasing it");
            return Err(error);
        }
        metrics::step_retried(dependency.as_str(), class_label(class));
        if waiting.is_none() && class != FailureClass::Contention {
            waiting = Some(Waiting::start(dependency));
        }
        tracing::warn!(dependency = dependency.as_str(), what, error = %error, retry_in = ?delay,
            class = class_label(class), "step failed; holding the message and retrying");
        before_retry();
        tokio::time::sleep(delay).await;
    }
}

fn class_label(class: FailureClass) -> &'static str {
    match class {
        FailureClass::Transient => "transient",
        FailureClass::Throttled => "throttled",
        FailureClass::Permanent => "permanent",
        FailureClass::Contention => "contention",
    }
}

/// Counts the message in `fleetwatch_messages_waiting{dependency}` while a
/// step of it waits for a failing dependency, however the wait ends.
struct Waiting(Dependency);

impl Waiting {
    fn start(dependency: Dependency) -> Waiting {
        metrics::messages_waiting(dependency.as_str(), 1.0);
        Waiting(dependency)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        metrics::messages_waiting(self.0.as_str(), -1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::Classify;
    use std::fmt;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug)]
    struct Failed(FailureClass, Dependency);

    impl fmt::Display for Failed {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{:?}", self.0)
        }
    }
    impl Classify for Failed {
        fn class(&self) -> FailureClass {
            self.0
        }
    }
    impl StepError for Failed {
        fn dependency(&self) -> Dependency {
            self.1
        }
    }

    static OWNER: std::sync::LazyLock<ClaimOwner> =
        std::sync::LazyLock::new(|| ClaimOwner::new("message-1", 1));
    static LIVENESS: std::sync::LazyLock<Liveness> = std::sync::LazyLock::new(Liveness::disabled);

    fn attempt(health: &DependencyHealth, hold: Duration) -> Attempt<'_> {
        Attempt {
            health,
            owner: &OWNER,
            liveness: &LIVENESS,
            hold_until: Instant::now() + hold,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_is_waited_out_however_long() {
        let health = DependencyHealth::default();
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        // Down for 15 minutes, for everyone.
        let result = hold(
            attempt(&health, Duration::from_secs(11 * 3600)),
            "test",
            || async {
                calls.fetch_add(1, Ordering::Relaxed);
                if started.elapsed() < Duration::from_secs(15 * 60) {
                    Err(Failed(FailureClass::Transient, Dependency::Sns))
                } else {
                    Ok(7)
                }
            },
        )
        .await;
        assert_eq!(result.unwrap(), 7);
        let n = calls.load(Ordering::Relaxed);
        assert!((15..=40).contains(&n), "{n} calls over 15 minutes");
        assert!(health.failing().is_empty(), "recovered");
    }

    #[tokio::test(start_paused = true)]
    async fn a_poisoned_step_is_released_while_others_succeed() {
        let health = DependencyHealth::default();
        let started = Instant::now();
        let result: Result<(), Failed> = hold(
            attempt(&health, Duration::from_secs(11 * 3600)),
            "test",
            || {
                // Another message reads from S3 fine meanwhile.
                health.success(Dependency::S3);
                async { Err(Failed(FailureClass::Transient, Dependency::S3)) }
            },
        )
        .await;
        assert!(result.is_err());
        let waited = started.elapsed();
        assert!(
            waited >= POISON_AFTER && waited < POISON_AFTER * 2,
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_return_at_once_and_the_ceiling_releases() {
        let health = DependencyHealth::default();
        let a = attempt(&health, Duration::from_secs(3600));
        let permanent: Result<(), _> = hold(a, "t", || async {
            Err(Failed(FailureClass::Permanent, Dependency::DynamoDb))
        })
        .await;
        assert_eq!(permanent.unwrap_err().0, FailureClass::Permanent);
        assert!(
            health.failing().is_empty(),
            "a refused input is not a dependency failure"
        );
        let started = Instant::now();
        let ceiling: Result<(), _> =
            hold(attempt(&health, Duration::from_secs(30)), "t", || async {
                Err(Failed(FailureClass::Transient, Dependency::S3))
            })
            .await;
        assert!(ceiling.is_err());
        assert!(started.elapsed() <= Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn contention_waits_without_blaming_the_dependency() {
        let health = DependencyHealth::default();
        let calls = AtomicU32::new(0);
        let result = hold(attempt(&health, Duration::from_secs(3600)), "t", || async {
            if calls.fetch_add(1, Ordering::Relaxed) < 3 {
                Err(Failed(FailureClass::Contention, Dependency::Sns))
            } else {
                Ok(())
            }
        })
        .await;
        assert!(result.is_ok());
        assert!(health.failing().is_empty());
    }

    #[test]
    fn the_policy_table() {
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        let table = [
            (OUTAGE, s(1), s(60)),
            (HEARTBEAT, ms(500), s(10)),
            (CONTENTION, ms(500), s(10)),
            (RECEIVE, ms(200), s(30)),
            (STARTUP, s(1), s(30)),
            (UNPROCESSED_ITEMS, ms(50), s(5)),
            (SNS_ENTRIES, ms(100), s(5)),
            (LEDGER_SETTLE, ms(50), s(2)),
            (FLEET_STATUS, ms(200), s(2)),
        ];
        for (policy, base, max) in table {
            assert_eq!(policy, Policy { base, max });
            let mut backoff = policy.backoff();
            let first = backoff.next_delay();
            assert!(first >= base / 2 && first <= base, "{policy:?}: {first:?}");
            for _ in 0..30 {
                let delay = backoff.next_delay();
                assert!(delay <= max, "{policy:?}: {delay:?}");
            }
            assert_eq!(backoff.ceiling(), max, "{policy:?} reaches its cap");
        }
        assert_eq!(
            (
                UNPROCESSED_ITEMS_CALLS,
                SNS_ENTRIES_CALLS,
                FLEET_STATUS_CALLS
            ),
            (8, 5, 4)
        );
        assert_eq!(POISON_AFTER, s(120));
    }

    #[test]
    fn redelivery_delay_grows_and_caps() {
        assert_eq!(
            redelivery_delay(REDELIVERY_BASE, 1),
            Duration::from_secs(10)
        );
        assert_eq!(
            redelivery_delay(REDELIVERY_BASE, 2),
            Duration::from_secs(20)
        );
        assert_eq!(
            redelivery_delay(REDELIVERY_BASE, 4),
            Duration::from_secs(80)
        );
        assert_eq!(redelivery_delay(REDELIVERY_BASE, 100), REDELIVERY_MAX);
    }
}
