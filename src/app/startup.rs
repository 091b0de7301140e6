//! The worker's start-up checks, retried until they pass: a missing
//! permission or resource stops the worker; a transient failure (an outage)
//! is retried with backoff, so the task does not enter a restart loop.

use crate::aws;
use crate::liveness::Liveness;
use crate::preflight::{self, PreflightError, QueueInfo};
use crate::retry;

/// Why the worker did not get past its start-up checks.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A check that trying again cannot fix (permission, missing resource).
    #[error("start-up check failed: {0}")]
    Check(PreflightError),
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
    let mut backoff = retry::STARTUP.backoff();
    loop {
        let checked = match (
            preflight::check(&clients.sqs, &clients.dynamodb, queue_url, table).await,
            alarm_table,
        ) {
            (Ok(info), Some(alarms)) => preflight::check_alarm_table(&clients.dynamodb, alarms)
                .await
                .map(|()| info),
            (other, _) => other,
        };
        liveness.progress(); // an attempt completed
        match checked {
            Ok(info) => return Ok(info),
            Err(e) if e.is_fatal() => return Err(StartupError::Check(e)),
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in = ?delay, "start-up check failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = tokio::signal::ctrl_c() => return Err(StartupError::Interrupted),
                }
            }
        }
    }
}
