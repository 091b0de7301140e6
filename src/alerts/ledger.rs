//! The alert ledger: exactly-once alerts on top of at-least-once delivery,
//! and the per-device, per-rule cooldown.
//!
//! # Design
//! Each alert is identified by (device, rule, window), where the window is
//! the cooldown period (`FLEETWATCH_ALERT_COOLDOWN`, 15 min by default,
//! aligned to the epoch, in event time; see [`Cooldown`]) its breaches fall
//! in: the [`BreachLog`](super::BreachLog) folds breaches per window, so an
//! alert never spans two. A replayed message, a second worker or a restart
//! computes the same identity for the same breach, so one overheating
//! vehicle raises exactly one alert per rule per window however its
//! readings are cut into files and whatever order the files arrive in.
//!
//! The ledger lives in the readings table under its own key space:
//! `device_id = "alert#<device>"` (`#` cannot appear in a device id),
//! `timestamp = "<rule>#<window start>"`. Keeping it in the same table
//! needs no extra infrastructure or permission beyond `PutItem`/`UpdateItem`;
//! ledger items carry `expires_at` (epoch seconds) for DynamoDB TTL.
//!
//! Publishing is a claim protocol, because SNS standard topics have no
//! idempotency key:
//! 1. **claim**: a conditional `PutItem` writes `state = pending` if no
//!    entry exists, or if a pending entry is older than the lease (its
//!    worker died between claiming and confirming);
//! 2. **publish** through SNS;
//! 3. **confirm**: an `UpdateItem` sets `state = sent`.
//!
//! A claim that finds `sent` skips the alert (a replay); one that finds a
//! fresh `pending` claim reports [`Claim::Busy`]: another worker is
//! publishing it right now, and the message is retried later.
//!
//! # Crash windows
//! - Killed after the claim, before publishing: the claim goes stale after
//!   the lease and the redelivered message takes it over and publishes. The
//!   alert is late, never lost.
//! - Killed after SNS accepted the alert, before the confirmation landed: the
//!   same takeover publishes the alert a second time. The window spans the
//!   `PublishBatch` call in flight and the confirmations (made concurrently,
//!   each retried for up to half the lease, so a failing `UpdateItem` alone
//!   does not reopen it). It is the one place an alert can be duplicated,
//!   and the choice is deliberate: a duplicate alert is better than a lost
//!   one.
//! - Killed after confirming, before the SQS message is deleted: the replay
//!   finds `sent` and publishes nothing.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use super::{Alert, Cooldown};
use crate::backoff::Backoff;

/// How long ledger entries are kept (by DynamoDB TTL) after they are written.
const RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Debug, thiserror::Error)]
#[error("alert ledger ({operation} on table {table}) failed: {message}")]
pub struct LedgerError {
    operation: &'static str,
    table: String,
    message: String,
}

/// The outcome of a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This worker owns the alert: publish it, then [`AlertLedger::confirm`].
    Publish,
    /// Already published (a replay, or within the cooldown window).
    AlreadySent,
    /// Another worker claimed it moments ago; try again later.
    Busy,
}

#[derive(Debug, Clone)]
pub struct AlertLedger {
    client: aws_sdk_dynamodb::Client,
    table: String,
    /// The windows alerts are keyed by.
    cooldown: Cooldown,
    /// How long a pending claim protects an alert being published.
    lease: Duration,
}

impl AlertLedger {
    /// `lease`: how long a pending claim protects an alert being published;
    /// it must exceed the time a PublishBatch call can take.
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        table: String,
        cooldown: Duration,
        lease: Duration,
    ) -> Self {
        AlertLedger {
            client,
            table,
            cooldown: Cooldown::new(cooldown),
            lease,
        }
    }

    /// The cooldown windows this ledger keys alerts by; a [`super::BreachLog`]
    /// must fold breaches with the same one.
    pub fn cooldown(&self) -> Cooldown {
        self.cooldown
    }

    fn key(&self, alert: &Alert) -> HashMap<String, AttributeValue> {
        // Realigned, so an alert built with another window still gets a
        // key of this ledger's windows (a no-op for the BreachLog's alerts).
        let window = self.cooldown.window_start(alert.window_start);
        HashMap::from([
            (
                "device_id".to_owned(),
                AttributeValue::S(format!("alert#{}", alert.device_id)),
            ),
            (
                "timestamp".to_owned(),
                AttributeValue::S(format!("{}#{}", alert.rule, window)),
            ),
        ])
    }

    /// Step 1 of the protocol; see the module documentation.
    pub async fn claim(&self, alert: &Alert) -> Result<Claim, LedgerError> {
        let now = now_millis();
        let mut item = self.key(alert);
        item.insert("state".into(), AttributeValue::S("pending".into()));
        item.insert("claimed_at".into(), AttributeValue::N(now.to_string()));
        item.insert("kind".into(), AttributeValue::S(alert.kind.as_str().into()));
        item.insert(
            "breaches".into(),
            AttributeValue::N(alert.count.to_string()),
        );
        item.insert(
            "worst_value".into(),
            AttributeValue::S(alert.worst_value.clone()),
        );
        item.insert("source_key".into(), AttributeValue::S(alert.key.clone()));
        item.insert(
            "expires_at".into(),
            AttributeValue::N(((now / 1000) + RETENTION.as_secs() as i64).to_string()),
        );
        let stale_before = now - self.lease.as_millis() as i64;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(device_id) OR (#state = :pending AND claimed_at < :stale)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pending", AttributeValue::S("pending".into()))
            .expression_attribute_values(":stale", AttributeValue::N(stale_before.to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Publish),
            Err(e) => match e.as_service_error() {
                Some(aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(failed)) => {
                    let sent = matches!(
                        failed.item().and_then(|i| i.get("state")),
                        Some(AttributeValue::S(s)) if s == "sent"
                    );
                    Ok(if sent { Claim::AlreadySent } else { Claim::Busy })
                }
                _ => Err(self.error("PutItem", &e)),
            },
        }
    }

    /// Step 3 of the protocol: the alert was accepted by SNS. Retried with
    /// backoff for up to half the lease: until it lands, a redelivery would
    /// publish the alert again.
    pub async fn confirm(&self, alert: &Alert) -> Result<(), LedgerError> {
        let started = std::time::Instant::now();
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
        loop {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(self.key(alert)))
                .update_expression("SET #state = :sent, sent_at = :now")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":sent", AttributeValue::S("sent".into()))
                .expression_attribute_values(":now", AttributeValue::N(now_millis().to_string()))
                .send()
                .await;
            let e = match result {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            let delay = backoff.next_delay();
            if started.elapsed() + delay > self.lease / 2 {
                return Err(self.error("UpdateItem", &e));
            }
            tracing::warn!(device_id = %alert.device_id, rule = %alert.rule, error = %DisplayErrorContext(&e), "confirming a published alert failed; retrying");
            tokio::time::sleep(delay).await;
        }
    }

    fn error<E: std::error::Error>(&self, operation: &'static str, e: &E) -> LedgerError {
        LedgerError {
            operation,
            table: self.table.clone(),
            message: DisplayErrorContext(e).to_string(),
        }
    }
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
