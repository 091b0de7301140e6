//! Publishes alerts to an SNS topic with `PublishBatch`.
//!
//! Each alert is one SNS message with `MessageStructure: json`: a readable
//! text for email (and the `default` protocol) and a JSON document for SQS
//! and Lambda subscribers. Message attributes (`device_id`, `rule`,
//! `severity`, `kind`) let subscribers route alerts with filter policies
//! instead of one topic per vehicle.
//!
//! Failures are told apart by [`crate::failure`]: an entry (or a whole
//! call) SNS refuses for its content (`InvalidParameter`: a message too
//! long, an empty attribute) can never be published, so that alert is
//! *rejected*, reported in [`PublishOutcome::rejected`], and the others go
//! on; throttling and everything else is retried, then reported as an
//! error so the work is redone later.

use std::time::Duration;

use aws_sdk_sns::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use serde_json::json;

use super::Alert;
use crate::failure::{Classify, Dependency, FailureClass, classify_response, classify_sdk};
use crate::metrics;

/// PublishBatch takes at most ten entries.
const MAX_BATCH: usize = 10;
/// Attempts for entries SNS reports as failed (for a reason that may pass)
/// before the delivery fails.
const MAX_ATTEMPTS: u32 = crate::retry::SNS_ENTRIES_CALLS;

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// The `PublishBatch` call itself failed (an outage, throttling, a
    /// timeout); a call refused for its content becomes rejections instead.
    #[error("SNS PublishBatch to {topic} failed: {message}")]
    Call {
        topic: String,
        message: String,
        class: FailureClass,
    },
    /// SNS kept failing some entries with retryable errors.
    #[error(
        "SNS failed {count} alert(s) on {topic} after {MAX_ATTEMPTS} attempts, first: {code}: {message}"
    )]
    EntriesFailed {
        topic: String,
        count: usize,
        code: String,
        message: String,
        class: FailureClass,
    },
    #[error(transparent)]
    Ledger(#[from] super::ledger::LedgerError),
    /// Another worker holds live claims on `count` alerts; the last of
    /// those claims goes stale after `retry_after`.
    #[error(
        "{count} alert(s) are being published by another worker right now; retry in {retry_after:?} at the latest"
    )]
    Busy { count: usize, retry_after: Duration },
}

impl Classify for AlertError {
    fn class(&self) -> FailureClass {
        match self {
            AlertError::Call { class, .. } | AlertError::EntriesFailed { class, .. } => *class,
            AlertError::Ledger(e) => e.class(),
            AlertError::Busy { .. } => FailureClass::Contention,
        }
    }
}

impl AlertError {
    /// The dependency that failed: SNS, DynamoDB for the ledger, none for
    /// contention (no dependency is at fault).
    pub fn dependency(&self) -> Option<Dependency> {
        match self {
            AlertError::Call { .. } | AlertError::EntriesFailed { .. } => Some(Dependency::Sns),
            AlertError::Ledger(_) => Some(Dependency::DynamoDb),
            AlertError::Busy { .. } => None,
        }
    }
}

/// Sends alerts to one topic.
#[derive(Debug, Clone)]
pub struct AlertPublisher {
    /// The SNS client.
    client: aws_sdk_sns::Client,
    /// The topic every alert goes to.
    topic_arn: String,
}

/// An alert SNS refused for its content: publishing it again can never
/// succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Index of the alert in the slice given to [`AlertPublisher::publish`].
    pub index: usize,
    /// The `reason` label of `fleetwatch_alerts_rejected_total`: SNS's code
    /// in snake case, from a fixed set.
    pub reason: &'static str,
    /// SNS's error code as sent (empty when the request could not be built).
    pub code: String,
    /// SNS's explanation, for the log and the ledger.
    pub message: String,
}

/// What [`AlertPublisher::publish`] achieved.
#[derive(Debug, Default)]
pub struct PublishOutcome {
    /// Indices (into the published slice) of the alerts SNS accepted.
    pub accepted: Vec<usize>,
    /// Alerts SNS refused for good; neither accepted nor to be retried.
    pub rejected: Vec<Rejection>,
    /// What stopped the rest (neither accepted nor rejected), if anything:
    /// they are to be retried later.
    pub error: Option<AlertError>,
}

impl PublishOutcome {
    fn reject(&mut self, index: usize, code: Option<&str>, message: &str) {
        let code = code.unwrap_or_default();
        self.rejected.push(Rejection {
            index,
            reason: reason_label(code),
            code: code.to_owned(),
            message: message.to_owned(),
        });
    }
}

/// How one batch ended, when no error stopped it.
enum Batch<'a> {
    /// Every entry was accepted or rejected.
    Done,
    /// SNS refused the whole call for its content: one of these alerts (or
    /// several) is at fault, not telling which.
    Refused {
        pending: Vec<(usize, &'a Alert)>,
        code: Option<String>,
        message: String,
    },
}

impl AlertPublisher {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: String) -> Self {
        AlertPublisher { client, topic_arn }
    }

    /// Publishes every alert. Returns the indices of the alerts SNS
    /// accepted, those it refused for good, and the error that stopped the
    /// rest, if any (the work is then redone).
    pub async fn publish(&self, alerts: &[Alert]) -> PublishOutcome {
        let mut outcome = PublishOutcome::default();
        let indexed: Vec<(usize, &Alert)> = alerts.iter().enumerate().collect();
        for batch in indexed.chunks(MAX_BATCH) {
            let result = match self.publish_batch(batch, &mut outcome).await {
                Ok(Batch::Done) => Ok(()),
                Ok(Batch::Refused {
                    pending,
                    code,
                    message,
                }) if pending.len() > 1 => {
                    // One bad alert must not take nine good ones with it:
                    // send them one by one to find the refused ones.
                    tracing::warn!(alerts = pending.len(), code = code.as_deref().unwrap_or_default(), %message,
                        "SNS refused a whole batch; publishing its alerts one by one");
                    self.publish_singly(&pending, &mut outcome).await
                }
                Ok(Batch::Refused {
                    pending,
                    code,
                    message,
                }) => {
                    for (i, _) in pending {
                        outcome.reject(i, code.as_deref(), &message);
                    }
                    Ok(())
                }
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                outcome.error = Some(e);
                break;
            }
        }
        outcome
    }

    async fn publish_singly(
        &self,
        alerts: &[(usize, &Alert)],
        outcome: &mut PublishOutcome,
    ) -> Result<(), AlertError> {
        for one in alerts.chunks(1) {
            if let Batch::Refused { code, message, .. } = self.publish_batch(one, outcome).await? {
                outcome.reject(one[0].0, code.as_deref(), &message);
            }
        }
        Ok(())
    }

    /// Publishes one batch (≤ 10 alerts), retrying the entries SNS failed
    /// for a reason that may pass and rejecting those it refused for good.
    async fn publish_batch<'a>(
        &self,
        batch: &[(usize, &'a Alert)],
        outcome: &mut PublishOutcome,
    ) -> Result<Batch<'a>, AlertError> {
        let mut pending: Vec<(usize, &Alert)> = batch.to_vec();
        let mut backoff = crate::retry::SNS_ENTRIES.backoff();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut entries = Vec::with_capacity(pending.len());
            pending.retain(|&(i, alert)| match entry(i, alert) {
                Ok(e) => {
                    entries.push(e);
                    true
                }
                Err(message) => {
                    outcome.reject(i, None, &message);
                    false
                }
            });
            if entries.is_empty() {
                return Ok(Batch::Done);
            }
            let output = match self
                .client
                .publish_batch()
                .topic_arn(&self.topic_arn)
                .set_publish_batch_request_entries(Some(entries))
                .send()
                .await
            {
                Ok(output) => output,
                Err(e) => {
                    let message = DisplayErrorContext(&e).to_string();
                    let class = match classify_sdk(&e) {
                        // SNS names the parameter it refuses; a topic it
                        // will not take is the configuration's fault, never
                        // one alert's: waiting costs time, rejecting every
                        // alert would lose them.
                        FailureClass::Permanent if names_the_topic(&message) => {
                            FailureClass::Transient
                        }
                        class => class,
                    };
                    if class == FailureClass::Permanent {
                        let code = e
                            .as_service_error()
                            .and_then(|s| s.code())
                            .map(str::to_owned);
                        return Ok(Batch::Refused {
                            pending,
                            code,
                            message,
                        });
                    }
                    return Err(AlertError::Call {
                        topic: self.topic_arn.clone(),
                        message,
                        class,
                    });
                }
            };
            let failed = output.failed();
            let mut retry = Vec::new();
            let mut first_failure = None;
            let mut throttled = false;
            for (i, alert) in pending {
                let id = i.to_string();
                let Some(f) = failed.iter().find(|f| f.id() == id) else {
                    metrics::alert_published(alert.kind.as_str());
                    outcome.accepted.push(i);
                    continue;
                };
                // The entry's own fault flag stands for the HTTP status a
                // whole call would have had.
                let status = if f.sender_fault() { 400 } else { 500 };
                match classify_response(Some(f.code()), status) {
                    FailureClass::Permanent => {
                        outcome.reject(i, Some(f.code()), f.message().unwrap_or_default());
                    }
                    class => {
                        throttled |= class == FailureClass::Throttled;
                        first_failure.get_or_insert_with(|| {
                            (
                                f.code().to_owned(),
                                f.message().unwrap_or_default().to_owned(),
                            )
                        });
                        retry.push((i, alert));
                    }
                }
            }
            pending = retry;
            let Some((code, message)) = first_failure else {
                return Ok(Batch::Done);
            };
            let class = if throttled {
                FailureClass::Throttled
            } else {
                FailureClass::Transient
            };
            if attempt >= MAX_ATTEMPTS {
                return Err(AlertError::EntriesFailed {
                    topic: self.topic_arn.clone(),
                    count: pending.len(),
                    code,
                    message,
                    class,
                });
            }
            tracing::warn!(
                failed = pending.len(),
                attempt,
                code,
                "SNS failed some alerts; retrying them"
            );
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }
}

/// Whether an SNS refusal is about the `TopicArn` parameter
/// (`Invalid parameter: TopicArn`).
fn names_the_topic(message: &str) -> bool {
    message.contains("TopicArn")
}

/// The `reason` label for an SNS code that means "this alert is invalid":
/// a fixed set, so a label can never come from the network.
fn reason_label(code: &str) -> &'static str {
    match code {
        "InvalidParameter" | "InvalidParameterException" => "invalid_parameter",
        "InvalidParameterValue" | "InvalidParameterValueException" => "invalid_parameter_value",
        _ => "invalid_request",
    }
}

/// One entry of a `PublishBatch` request; an error says why it cannot be
/// built (the alert is then rejected like one SNS refused).
fn entry(id: usize, alert: &Alert) -> Result<PublishBatchRequestEntry, String> {
    let attr = |v: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(v)
            .build()
            .map_err(|e| e.to_string())
    };
    let text = email_text(alert);
    let body = json!({
        "default": text,
        "email": text,
        "sqs": machine_json(alert).to_string(),
        "lambda": machine_json(alert).to_string(),
    });
    PublishBatchRequestEntry::builder()
        .id(id.to_string())
        .subject(subject(alert))
        .message_structure("json")
        .message(body.to_string())
        .message_attributes("device_id", attr(&alert.device_id)?)
        .message_attributes("rule", attr(&alert.rule)?)
        .message_attributes("severity", attr(alert.kind.severity())?)
        .message_attributes("kind", attr(alert.kind.as_str())?)
        .build()
        .map_err(|e| e.to_string())
}

/// `Fleet alert: VHC002 engine_temp_c 124 > 100`: SNS subjects must be ASCII,
/// without line breaks, under 100 characters.
pub fn subject(alert: &Alert) -> String {
    let raw = match alert.kind {
        super::AlertKind::Safety => format!(
            "Fleet alert: {} {} {} {} {}",
            alert.device_id, alert.field, alert.worst_value, alert.op, alert.threshold
        ),
        super::AlertKind::Maintenance => {
            format!(
                "Fleet alert: {} maintenance predicted (score {})",
                alert.device_id, alert.worst_value
            )
        }
    };
    raw.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(99)
        .collect()
}

/// The human-readable text for email and the `default` protocol.
pub fn email_text(alert: &Alert) -> String {
    let what = match alert.kind {
        super::AlertKind::Safety => format!(
            "Vehicle {} broke the safety rule `{}`: worst value {} at {}.",
            alert.device_id, alert.rule, alert.worst_value, alert.worst_at
        ),
        super::AlertKind::Maintenance => format!(
            "Vehicle {} is predicted to need maintenance (model {}, score {} at {}).",
            alert.device_id,
            alert.model.as_deref().unwrap_or("unknown"),
            alert.worst_value,
            alert.worst_at
        ),
    };
    let span = if alert.count == 1 {
        "1 reading".to_owned()
    } else {
        format!(
            "{} readings between {} and {}",
            alert.count, alert.first, alert.last
        )
    };
    format!("{what}\n\n{span} in s3://{}/{}.\n", alert.bucket, alert.key)
}

/// The JSON document SQS and Lambda subscribers receive.
pub fn machine_json(alert: &Alert) -> serde_json::Value {
    json!({
        "type": "fleetwatch.alert",
        "kind": alert.kind.as_str(),
        "severity": alert.kind.severity(),
        "device_id": alert.device_id,
        "rule": alert.rule,
        "field": alert.field,
        "threshold": alert.threshold,
        "breaches": alert.count,
        "first_timestamp": alert.first.to_string(),
        "last_timestamp": alert.last.to_string(),
        "worst_value": alert.worst_value,
        "worst_timestamp": alert.worst_at.to_string(),
        "model": alert.model,
        "window_start": alert.window_start.to_string(),
        "source": { "bucket": alert.bucket, "key": alert.key },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::AlertKind;
    use crate::telemetry::Timestamp;

    fn alert() -> Alert {
        Alert {
            device_id: "VHC002".into(),
            kind: AlertKind::Safety,
            rule: "engine_temp_c > 100".into(),
            field: "engine_temp_c".into(),
            threshold: "100".into(),
            op: ">",
            count: 1,
            first: Timestamp::from_unix_millis(1_760_914_020_000),
            last: Timestamp::from_unix_millis(1_760_914_020_000),
            worst_value: "124".into(),
            worst_at: Timestamp::from_unix_millis(1_760_914_020_000),
            model: None,
            window_start: Timestamp::from_unix_millis(1_760_913_900_000),
            bucket: "b".into(),
            key: "fleet data.txt".into(),
        }
    }

    #[test]
    fn subject_is_short_ascii() {
        assert_eq!(
            subject(&alert()),
            "Fleet alert: VHC002 engine_temp_c 124 > 100"
        );
        let mut long = alert();
        long.device_id = "X".repeat(128);
        let s = subject(&long);
        assert!(s.len() < 100 && s.is_ascii());
    }

    #[test]
    fn a_refused_topic_is_not_an_alert_s_fault() {
        assert!(names_the_topic(
            "InvalidParameter: Invalid parameter: TopicArn"
        ));
        assert!(!names_the_topic(
            "InvalidParameter: Invalid parameter: Message too long"
        ));
        assert_eq!(reason_label("InvalidParameter"), "invalid_parameter");
        assert_eq!(reason_label("whatever SNS sends"), "invalid_request");
    }

    #[test]
    fn messages_carry_both_forms() {
        let a = alert();
        assert!(email_text(&a).contains("VHC002 broke the safety rule `engine_temp_c > 100`"));
        let j = machine_json(&a);
        assert_eq!(j["device_id"], "VHC002");
        assert_eq!(j["worst_value"], "124");
        assert_eq!(j["first_timestamp"], "2025-10-19T22:47:00.000Z");
        assert!(entry(0, &a).is_ok());
    }
}
