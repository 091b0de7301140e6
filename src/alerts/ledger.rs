//! The alert ledger: one alert per window on top of at-least-once delivery
//! (a rare duplicate only in the publish → confirm window described below),
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
//! The ledger lives in the alarm table (`FLEETWATCH_ALARM_TABLE`, beside
//! the alarms, never among the readings) under its own key space:
//! `device_id = "alert#<device>"` (`#` cannot appear in a device id),
//! `record = "<rule>#<window start>"`, and `"<rule>#resolved#<episode>"`
//! for the one "resolved" notification of an alarm's episode; ledger items
//! carry `expires_at` (epoch seconds) for DynamoDB TTL.
//!
//! Publishing is a claim protocol, because SNS standard topics have no
//! idempotency key:
//! 1. **claim**: a conditional `PutItem` writes `state = pending` with the
//!    claim's [`ClaimOwner`] (the SQS message id and its receive count) if
//!    no entry exists, if a pending entry is older than the lease (its
//!    worker died between claiming and confirming), or if a pending entry
//!    belongs to the same owner at the same or an earlier attempt (this
//!    message's own claim, left by a failed or killed attempt);
//! 2. **publish** through SNS;
//! 3. **confirm**: an `UpdateItem` sets `state = sent`; or, when SNS
//!    refused the alert itself (a parameter error, which no retry can fix),
//!    **reject**: `state = rejected` with the reason.
//!
//! A claim that finds `sent` or `rejected` skips the alert (a replay); one
//! that finds a live `pending` claim of another owner, or of a later
//! attempt of the same message, reports [`Claim::Busy`] with the time left
//! until that claim goes stale: another worker is publishing it right now.
//! That is contention, not a failure of SNS or DynamoDB.
//!
//! # Crash windows
//! - Failed or killed after the claim, before publishing (an SNS error, a
//!   shutdown, a crash): a retry of the same attempt, or the redelivered
//!   message (the same message id, a higher receive count), takes its own
//!   claim over at once and publishes. Another message with an alert for
//!   the same window is held off ([`Claim::Busy`]) until the lease ends,
//!   then takes the claim over. The alert is late, never lost.
//! - Killed (or a response lost) after SNS accepted the alert, before the
//!   confirmation landed: the takeover publishes the alert a second time.
//!   The window spans the `PublishBatch` call in flight and the
//!   confirmations (made concurrently, each retried for up to half the
//!   lease, so a failing `UpdateItem` alone does not reopen it). It is the
//!   one place an alert can be duplicated, and the choice is deliberate: a
//!   duplicate alert is better than a lost one. The same span is what a
//!   message that lost its visibility lease risks: its redelivery (a later
//!   attempt) takes over at once, so an alert the earlier, still running
//!   attempt is publishing at that moment goes out twice; an earlier
//!   attempt never takes a later one's claim back.
//! - Killed after confirming, before the SQS message is deleted: the replay
//!   finds `sent` and publishes nothing.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use super::{Alert, AlertId, Cooldown};
use crate::alarms::Alarm;
use crate::alarms::store::{PARTITION, RECORD};
use crate::failure::{Classify, FailureClass, classify_sdk};

/// How long ledger entries are kept (by DynamoDB TTL) after they are written.
const RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// Longest refusal reason kept in a `rejected` entry: SNS's messages are
/// short, and an entry must stay far below DynamoDB's item size limit.
const REASON_CHARS: usize = 512;

#[derive(Debug, thiserror::Error)]
#[error("alert ledger ({operation} on table {table}) failed: {message}")]
pub struct LedgerError {
    /// The DynamoDB call that failed.
    operation: &'static str,
    /// The table, so a wrong `FLEETWATCH_TABLE` shows in the message.
    table: String,
    /// The SDK error with its context.
    message: String,
    /// Whether retrying may help, from the SDK error (see [`crate::failure`]).
    class: FailureClass,
}

impl Classify for LedgerError {
    fn class(&self) -> FailureClass {
        self.class
    }
}

/// Who takes a claim: the piece of work and which attempt of it, so that a
/// retry or a redelivery of the same work recognises its own claim and
/// takes it over at once instead of waiting for the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimOwner {
    /// The SQS message id (the same on every redelivery of a message), or
    /// [`ClaimOwner::unique`] for work that does not come from the queue.
    /// An empty id never matches: such claims are taken over only when
    /// stale.
    pub id: String,
    /// The message's receive count: a claim of the same id is taken over
    /// by the same or a later attempt, never by an earlier one (a stale
    /// attempt still running must not take the claim back).
    pub attempt: u32,
}

impl ClaimOwner {
    pub fn new(id: impl Into<String>, attempt: u32) -> Self {
        ClaimOwner {
            id: id.into(),
            attempt,
        }
    }

    /// An owner no other work shares, for callers outside the SQS loop.
    pub fn unique() -> Self {
        ClaimOwner {
            id: format!("run-{:016x}", fastrand::u64(..)),
            attempt: 1,
        }
    }
}

/// The outcome of a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This worker owns the alert: publish it, then [`AlertLedger::confirm`]
    /// (or [`AlertLedger::reject`]).
    Publish,
    /// Already done: published, or refused by SNS for good (a replay, or
    /// within the cooldown window).
    AlreadySent,
    /// Another owner holds a live claim; it goes stale after `retry_after`
    /// (by then it is confirmed, or this owner may take it over).
    Busy { retry_after: Duration },
}

#[derive(Debug, Clone)]
pub struct AlertLedger {
    /// Reads and writes the ledger's items.
    client: aws_sdk_dynamodb::Client,
    /// The alarm table, which holds the ledger under `alert#…` keys.
    table: String,
    /// The windows alerts are keyed by.
    cooldown: Cooldown,
    /// How long a pending claim of another owner protects an alert.
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

    /// The item key of an alert's identity. The window comes from the
    /// identity as built by [`Cooldown::alert_id`]; it is never recomputed.
    fn key(&self, id: &AlertId) -> HashMap<String, AttributeValue> {
        ledger_key(&id.device_id, format!("{}#{}", id.rule, id.window_start))
    }

    /// The item key of an alarm episode's "resolved" notification.
    fn resolution_key(&self, alarm: &Alarm, episode: u64) -> HashMap<String, AttributeValue> {
        ledger_key(
            &alarm.device_id,
            format!("{}#resolved#{episode}", alarm.rule),
        )
    }

    /// [`Self::claim`] for the "resolved" notification of `alarm`'s `episode`.
    pub async fn claim_resolution(
        &self,
        alarm: &Alarm,
        episode: u64,
        owner: &ClaimOwner,
    ) -> Result<Claim, LedgerError> {
        let details = HashMap::from([("kind".to_owned(), AttributeValue::S(alarm.kind.clone()))]);
        self.claim_key(self.resolution_key(alarm, episode), details, owner)
            .await
    }

    /// [`Self::confirm`] for a "resolved" notification.
    pub async fn confirm_resolution(&self, alarm: &Alarm, episode: u64) -> Result<(), LedgerError> {
        let what = format!("{} {} resolved#{episode}", alarm.device_id, alarm.rule);
        self.settle(self.resolution_key(alarm, episode), &what, "sent", None)
            .await
    }

    /// Step 1 of the protocol; see the module documentation.
    pub async fn claim(&self, alert: &Alert, owner: &ClaimOwner) -> Result<Claim, LedgerError> {
        let details = HashMap::from([
            (
                "kind".to_owned(),
                AttributeValue::S(alert.condition.kind.as_str().into()),
            ),
            (
                "breaches".to_owned(),
                AttributeValue::N(alert.breaches.count.to_string()),
            ),
            (
                "worst_value".to_owned(),
                AttributeValue::S(alert.breaches.worst_value.clone()),
            ),
            (
                "source_key".to_owned(),
                AttributeValue::S(alert.source.key.clone()),
            ),
        ]);
        self.claim_key(self.key(&alert.id), details, owner).await
    }

    /// Claims the ledger item `key`, writing `details` with the claim.
    async fn claim_key(
        &self,
        mut item: HashMap<String, AttributeValue>,
        details: HashMap<String, AttributeValue>,
        owner: &ClaimOwner,
    ) -> Result<Claim, LedgerError> {
        let now = now_millis();
        item.extend(details);
        item.insert("state".into(), AttributeValue::S("pending".into()));
        item.insert("claimed_at".into(), AttributeValue::N(now.to_string()));
        item.insert("owner_id".into(), AttributeValue::S(owner.id.clone()));
        item.insert(
            "attempt".into(),
            AttributeValue::N(owner.attempt.to_string()),
        );
        item.insert(
            "expires_at".into(),
            AttributeValue::N(((now / 1000) + RETENTION.as_secs() as i64).to_string()),
        );
        let lease_ms = self.lease.as_millis().min(i64::MAX as u128) as i64;
        let stale_before = now.saturating_sub(lease_ms);
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pending", AttributeValue::S("pending".into()))
            .expression_attribute_values(":stale", AttributeValue::N(stale_before.to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let condition = if owner.id.is_empty() {
            "attribute_not_exists(device_id) OR (#state = :pending AND claimed_at < :stale)"
        } else {
            request = request
                .expression_attribute_values(":owner", AttributeValue::S(owner.id.clone()))
                .expression_attribute_values(
                    ":attempt",
                    AttributeValue::N(owner.attempt.to_string()),
                );
            "attribute_not_exists(device_id) OR (#state = :pending AND (claimed_at < :stale \
             OR (owner_id = :owner AND attempt <= :attempt)))"
        };
        match request.condition_expression(condition).send().await {
            Ok(_) => Ok(Claim::Publish),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    let old = failed.item();
                    let state = match old.and_then(|i| i.get("state")) {
                        Some(AttributeValue::S(s)) => s.as_str(),
                        _ => "",
                    };
                    if matches!(state, "sent" | "rejected") {
                        return Ok(Claim::AlreadySent);
                    }
                    let claimed_at = match old.and_then(|i| i.get("claimed_at")) {
                        Some(AttributeValue::N(n)) => n.parse::<i64>().ok(),
                        _ => None,
                    };
                    // Unknown claim time: assume it was just taken.
                    let left = claimed_at.map_or(lease_ms, |at| {
                        at.saturating_add(lease_ms).saturating_sub(now)
                    });
                    Ok(Claim::Busy {
                        retry_after: Duration::from_millis(left.clamp(0, lease_ms) as u64),
                    })
                }
                _ => Err(self.error("PutItem", &e)),
            },
        }
    }

    /// Step 3 of the protocol: the alert was accepted by SNS. Retried with
    /// backoff for up to half the lease: until it lands, a redelivery would
    /// publish the alert again.
    pub async fn confirm(&self, alert: &Alert) -> Result<(), LedgerError> {
        self.settle(self.key(&alert.id), &describe(&alert.id), "sent", None)
            .await
    }

    /// The alternative to step 3: SNS refused the alert itself (`reason`),
    /// so no later claim publishes it again. Retried like [`Self::confirm`].
    pub async fn reject(&self, alert: &Alert, reason: &str) -> Result<(), LedgerError> {
        let reason: String = reason.chars().take(REASON_CHARS).collect();
        self.settle(
            self.key(&alert.id),
            &describe(&alert.id),
            "rejected",
            Some(&reason),
        )
        .await
    }

    /// Sets the state of the ledger item `key` (`what` names it in logs).
    async fn settle(
        &self,
        key: HashMap<String, AttributeValue>,
        what: &str,
        state: &str,
        reason: Option<&str>,
    ) -> Result<(), LedgerError> {
        let started = std::time::Instant::now();
        let mut backoff = crate::retry::LEDGER_SETTLE.backoff();
        loop {
            let mut request = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key.clone()))
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":state", AttributeValue::S(state.to_owned()))
                .expression_attribute_values(":now", AttributeValue::N(now_millis().to_string()));
            request = match reason {
                Some(reason) => request
                    .update_expression("SET #state = :state, settled_at = :now, reason = :reason")
                    .expression_attribute_values(":reason", AttributeValue::S(reason.to_owned())),
                None => request.update_expression("SET #state = :state, settled_at = :now"),
            };
            let e = match request.send().await {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            let delay = backoff.next_delay();
            if started.elapsed() + delay > self.lease / 2 {
                return Err(self.error("UpdateItem", &e));
            }
            tracing::warn!(alert = what, state,
                error = %DisplayErrorContext(&e), "recording an alert in the ledger failed; retrying");
            tokio::time::sleep(delay).await;
        }
    }

    fn error<E>(&self, operation: &'static str, e: &SdkError<E, HttpResponse>) -> LedgerError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        LedgerError {
            operation,
            table: self.table.clone(),
            message: DisplayErrorContext(e).to_string(),
            class: classify_sdk(e),
        }
    }
}

/// An alert's identity in logs: `VHC002 engine_temp_c > 100 2025-…Z`.
fn describe(id: &AlertId) -> String {
    format!("{} {} {}", id.device_id, id.rule, id.window_start)
}

fn ledger_key(device_id: &str, record: String) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            PARTITION.to_owned(),
            AttributeValue::S(format!("alert#{device_id}")),
        ),
        (RECORD.to_owned(), AttributeValue::S(record)),
    ])
}

fn now_millis() -> i64 {
    crate::telemetry::Timestamp::now().unix_millis()
}
