//! What every worker does periodically for the alarms: close those that
//! have been quiet for `FLEETWATCH_ALARM_AUTO_CLOSE`, and send each closed
//! episode's one "resolved" notification (also for alarms an operator
//! resolved). Several workers sweep at once without doubling anything:
//! closing is a conditional write that one of them wins, and the
//! notification goes through the alert ledger under its own key.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::alerts::ledger::{Claim, ClaimOwner};
use crate::alerts::{AlertError, AlertSink, message};

use super::store::now_millis;

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sweep {
    /// Alarms this sweep closed.
    pub closed: usize,
    /// "Resolved" notifications this sweep published.
    pub announced: usize,
}

/// Sweeps every `interval` until `shutdown`; errors are logged and the
/// next sweep tries again.
pub async fn run(
    sink: AlertSink,
    auto_close: Duration,
    interval: Duration,
    shutdown: CancellationToken,
) {
    loop {
        // Jittered, so workers started together do not sweep in lockstep.
        let pause = interval.mul_f64(0.75 + fastrand::f64() * 0.5);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
        if let Err(e) = sweep(&sink, auto_close).await {
            tracing::warn!(error = %e, "the alarm sweep failed; retrying at the next one");
        }
    }
}

/// One sweep: closes the alarms quiet for `auto_close` and announces every
/// resolution not announced yet.
pub async fn sweep(sink: &AlertSink, auto_close: Duration) -> Result<Sweep, AlertError> {
    let quiet_ms = auto_close.as_millis().min(i64::MAX as u128) as i64;
    let quiet_since = now_millis().saturating_sub(quiet_ms);
    let mut done = Sweep::default();
    for alarm in sink.alarms.due(quiet_since).await? {
        let alarm = if alarm.state.is_open() && alarm.last_breach_ms < quiet_since {
            match sink.alarms.auto_close(&alarm, quiet_since).await? {
                Some(closed) => {
                    done.closed += 1;
                    closed
                }
                // A breach, an operator or another worker came first.
                None => continue,
            }
        } else {
            alarm
        };
        let Some(episode) = alarm.resolve_notice else {
            continue;
        };
        let owner = ClaimOwner::unique();
        match sink
            .ledger
            .claim_resolution(&alarm, episode, &owner)
            .await?
        {
            Claim::Publish => {
                let notice = message::render_resolution(&alarm, episode);
                let outcome = sink.publisher.publish(std::slice::from_ref(&notice)).await;
                if let Some(e) = outcome.error {
                    return Err(e);
                }
                if !outcome.accepted.is_empty() {
                    done.announced += 1;
                }
                for refused in &outcome.rejected {
                    tracing::error!(device_id = %alarm.device_id, rule = %alarm.rule, episode,
                        code = %refused.code, message = %refused.message,
                        "SNS refused the resolved notification; it is not retried");
                }
                // Accepted or refused for good: either way, settled.
                sink.ledger.confirm_resolution(&alarm, episode).await?;
                sink.alarms.clear_resolve_notice(&alarm, episode).await?;
            }
            Claim::AlreadySent => sink.alarms.clear_resolve_notice(&alarm, episode).await?,
            // Another worker is announcing it right now.
            Claim::Busy { .. } => {}
        }
    }
    Ok(done)
}
