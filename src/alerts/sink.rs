//! Delivering alerts: each alert's breaches recorded on its alarm (which
//! decides whether it is notified: only an ACTIVE alarm's are), then, for
//! those, once per window: the ledger's claim, SNS, the ledger's
//! confirmation (see [`super::ledger`] for the protocol and the crash window
//! in which a duplicate is possible).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use futures_util::StreamExt;

use super::ledger::{self, AlertLedger, ClaimOwner};
use super::message::{self, AlarmStatus};
use super::publisher::AlertPublisher;
use super::{Alert, AlertError};
use crate::alarms::store::BreachRecord;
use crate::alarms::{Alarm, AlarmError, AlarmStore, State, Transition};

/// Claims made at once: enough to hide DynamoDB's latency when an object
/// yields many alerts, few enough not to flood the table.
const CLAIMS_IN_FLIGHT: usize = 16;

/// Where alerts go: the topic, the ledger that makes them once per window,
/// and the alarms that decide whether they are notified.
#[derive(Debug, Clone)]
pub struct AlertSink {
    /// Sends the alerts to SNS.
    pub publisher: AlertPublisher,
    /// Claims, confirms and rejects them.
    pub ledger: AlertLedger,
    /// The alarms their breaches are recorded on.
    pub alarms: AlarmStore,
}

impl AlertSink {
    /// Publishes the alerts not published before, claiming them for
    /// `owner`. Returns how many were published now.
    ///
    /// Safe to call again with the same alerts and owner after any error
    /// (the same attempt retried in-process, or a redelivery): alerts
    /// already confirmed are skipped, this owner's unconfirmed claims are
    /// taken over at once, so nothing is published twice outside the
    /// ledger's documented crash window. An alert SNS refuses for good is
    /// rejected (logged, counted, marked in the ledger) and the others go
    /// through. An error stands for the alerts not done (a publishing
    /// error first, then the ledger's, then contention); its
    /// [`class`](crate::failure::Classify::class) says whether and how to
    /// retry ([`AlertError::Busy`] is contention and says when).
    pub async fn deliver(
        &self,
        alerts: Vec<Alert>,
        owner: &ClaimOwner,
    ) -> Result<usize, AlertError> {
        // One identity claimed twice by one owner would be published twice
        // (the second claim takes over the first): keep the first.
        let mut seen = HashSet::new();
        let alerts: Vec<Alert> = alerts
            .into_iter()
            .filter(|a| seen.insert(a.id.clone()))
            .collect();
        let (to_notify, alarm_error) = self.record_on_alarms(alerts).await;
        let claims: Vec<_> = futures_util::stream::iter(to_notify)
            .map(|(alert, status)| async move {
                let claim = self.ledger.claim(&alert, owner).await;
                (alert, status, claim)
            })
            .buffered(CLAIMS_IN_FLIGHT)
            .collect()
            .await;
        let mut claimed = Vec::with_capacity(claims.len());
        let mut busy = 0;
        let mut retry_after = Duration::ZERO;
        let mut claim_error = None;
        for (alert, status, claim) in claims {
            let id = &alert.id;
            match claim {
                Ok(ledger::Claim::Publish) => claimed.push((alert, status)),
                Ok(ledger::Claim::AlreadySent) => {
                    crate::metrics::alert_suppressed(alert.condition.kind.as_str());
                    tracing::debug!(device_id = %id.device_id, rule = %id.rule,
                        window_start = %id.window_start, "alert already sent in this window");
                }
                Ok(ledger::Claim::Busy { retry_after: after }) => {
                    busy += 1;
                    retry_after = retry_after.max(after);
                    tracing::debug!(device_id = %id.device_id, rule = %id.rule,
                        window_start = %id.window_start, retry_after = ?after,
                        "alert claimed by another worker");
                }
                // The alerts claimed still go out; this one is retried.
                Err(e) => {
                    claim_error.get_or_insert(e);
                }
            }
        }
        let messages: Vec<_> = claimed
            .iter()
            .map(|(alert, status)| message::render(alert, Some(*status)))
            .collect();
        let claimed: Vec<Alert> = claimed.into_iter().map(|(alert, _)| alert).collect();
        let outcome = self.publisher.publish(&messages).await;
        // Settle every alert SNS accepted or refused for good, all at once
        // and each with retries, before reporting any error: an accepted
        // alert left unconfirmed would be published again by the retry.
        let mut settles = futures_util::stream::FuturesUnordered::new();
        for &i in &outcome.accepted {
            if let Some(alert) = claimed.get(i) {
                settles.push(futures_util::future::Either::Left(
                    self.ledger.confirm(alert),
                ));
            }
        }
        for rejection in &outcome.rejected {
            if let Some(alert) = claimed.get(rejection.index) {
                let (id, kind) = (&alert.id, alert.condition.kind.as_str());
                crate::metrics::alert_rejected(kind, rejection.reason);
                tracing::error!(device_id = %id.device_id, rule = %id.rule,
                    window_start = %id.window_start, kind,
                    reason = rejection.reason, code = %rejection.code, message = %rejection.message,
                    "SNS refused the alert; it is not retried");
                let why = format!("{}: {}", rejection.code, rejection.message);
                settles.push(futures_util::future::Either::Right(async move {
                    self.ledger.reject(alert, &why).await
                }));
            }
        }
        let mut settle_error = None;
        while let Some(result) = settles.next().await {
            if let Err(e) = result {
                settle_error.get_or_insert(e);
            }
        }
        if let Some(e) = outcome.error {
            return Err(e);
        }
        if let Some(e) = settle_error.or(claim_error) {
            return Err(e.into());
        }
        if let Some(e) = alarm_error {
            return Err(e.into());
        }
        if busy > 0 {
            return Err(AlertError::Busy {
                count: busy,
                retry_after,
            });
        }
        Ok(outcome.accepted.len())
    }
}

impl AlertSink {
    /// Records the alerts' breaches on their alarms, one write per
    /// (vehicle, rule), and returns the alerts to notify with their alarm's
    /// status, and the first error (its alerts are left out: the retry
    /// records them again and decides then).
    async fn record_on_alarms(
        &self,
        alerts: Vec<Alert>,
    ) -> (Vec<(Alert, AlarmStatus)>, Option<AlarmError>) {
        let mut groups: BTreeMap<(String, String), Vec<Alert>> = BTreeMap::new();
        for alert in alerts {
            groups
                .entry((alert.id.device_id.clone(), alert.id.rule.clone()))
                .or_default()
                .push(alert);
        }
        let recorded: Vec<_> = futures_util::stream::iter(groups.into_values())
            .map(|group| async move {
                let alarm = self.alarms.record_breach(&breach_record(&group)).await;
                (group, alarm)
            })
            .buffered(CLAIMS_IN_FLIGHT)
            .collect()
            .await;
        let mut notify = Vec::new();
        let mut error = None;
        for (group, alarm) in recorded {
            let alarm = match alarm {
                Ok(alarm) => alarm,
                Err(e) => {
                    error.get_or_insert(e);
                    continue;
                }
            };
            for alert in group {
                match status_for(&alarm, &alert) {
                    Some(status) => notify.push((alert, status)),
                    None => {
                        crate::metrics::alert_held(alert.condition.kind.as_str());
                        tracing::debug!(device_id = %alert.id.device_id, rule = %alert.id.rule,
                            window_start = %alert.id.window_start, state = alarm.state.as_str(),
                            "alert not notified: its alarm is acknowledged or snoozed");
                    }
                }
            }
        }
        (notify, error)
    }
}

/// What the alerts of one (vehicle, rule) tell its alarm.
fn breach_record(group: &[Alert]) -> BreachRecord<'_> {
    let first = &group[0];
    BreachRecord {
        device_id: &first.id.device_id,
        rule: &first.id.rule,
        kind: first.condition.kind.as_str(),
        count: group.iter().map(|a| a.breaches.count).sum(),
        first_window: group
            .iter()
            .map(|a| a.id.window_start)
            .min()
            .unwrap_or(first.id.window_start)
            .to_string(),
        last_event: group
            .iter()
            .map(|a| a.breaches.last)
            .max()
            .unwrap_or(first.breaches.last)
            .to_string(),
    }
}

/// Whether an alert is notified, given its alarm after its breaches were
/// recorded: only an ACTIVE alarm's; the window it became ACTIVE in says how
/// it became so (opened, reactivated), every other window is a reminder.
/// Deterministic, so a replay names the same transition.
fn status_for(alarm: &Alarm, alert: &Alert) -> Option<AlarmStatus> {
    (alarm.state == State::Active).then(|| AlarmStatus {
        state: State::Active,
        transition: if alarm.activation_window == alert.id.window_start.to_string() {
            alarm.activation
        } else {
            Transition::Reminder
        },
        episode: alarm.episode,
    })
}
