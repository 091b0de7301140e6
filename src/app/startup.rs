//! The worker's start-up checks, retried until they pass: a missing
//! permission or resource stops the worker; a transient failure (an outage)
//! is retried with backoff, so the task does not enter a restart loop.

use std::fmt::Display;
use std::future::Future;

use crate::alarms::AlarmError;
use crate::alerts::rule_book::RuleBook;
use crate::alerts::rule_store::RuleStore;
use crate::aws;
use crate::failure::{Classify, FailureClass};
use crate::liveness::Liveness;
use crate::preflight::{self, PreflightError, QueueInfo};
use crate::retry;

/// Why the worker did not get past its start-up checks.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A check that trying again cannot fix (permission, missing resource).
    #[error("start-up check failed: {0}")]
    Check(PreflightError),
    /// The rule overrides could not be read for a reason trying again
    /// cannot fix (a missing permission on the alarm table).
    #[error("reading the alert rule overrides failed: {0}")]
    Rules(AlarmError),
    /// SIGINT arrived while a check was being retried.
    #[error("interrupted during the start-up checks")]
    Interrupted,
}

/// Runs [`preflight::check`] (and [`preflight::check_alarm_table`] when
/// `alarm_table` is given) until it passes (backing off by
/// [`retry::STARTUP`]), each attempt counted as
/// progress on `liveness` so `/healthz` stays green through an outage.
pub async fn check_until_ready(
    clients: &aws::Clients,
    queue_url: &str,
    table: &str,
    alarm_table: Option<&str>,
    liveness: &Liveness,
) -> Result<QueueInfo, StartupError> {
    until_ready(
        liveness,
        "start-up check",
        PreflightError::is_fatal,
        StartupError::Check,
        || async {
            let info = preflight::check(&clients.sqs, &clients.dynamodb, queue_url, table).await?;
            if let Some(alarms) = alarm_table {
                preflight::check_alarm_table(&clients.dynamodb, alarms).await?;
            }
            Ok(info)
        },
    )
    .await
}

/// Reads the rule overrides into `book` before the first object, retried
/// like the checks: a worker that started on the configured rules alone
/// would alert on limits an operator has changed.
pub async fn load_rules_until_ready(
    book: &RuleBook,
    store: &RuleStore,
    liveness: &Liveness,
) -> Result<(), StartupError> {
    let fatal = |e: &AlarmError| e.class() == FailureClass::Permanent;
    until_ready(
        liveness,
        "reading the alert rule overrides",
        fatal,
        StartupError::Rules,
        || book.refresh(store),
    )
    .await
    .map(|_| ())
}

/// Runs `attempt` until it passes (backing off by [`retry::STARTUP`]) or
/// fails for good, each attempt counted as progress on `liveness`.
async fn until_ready<T, E, Fut>(
    liveness: &Liveness,
    what: &str,
    is_fatal: impl Fn(&E) -> bool,
    fatal: impl FnOnce(E) -> StartupError,
    mut attempt: impl FnMut() -> Fut,
) -> Result<T, StartupError>
where
    E: Display,
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = retry::STARTUP.backoff();
    loop {
        let outcome = attempt().await;
        liveness.progress(); // an attempt completed
        match outcome {
            Ok(value) => return Ok(value),
            Err(e) if is_fatal(&e) => return Err(fatal(e)),
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in = ?delay, "{what} failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = tokio::signal::ctrl_c() => return Err(StartupError::Interrupted),
                }
            }
        }
    }
}
