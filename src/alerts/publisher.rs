//! Publishes alerts to an SNS topic with `PublishBatch`.
//!
//! Each alert is one SNS message with `MessageStructure: json`: a readable
//! text for email (and the `default` protocol) and a JSON document for SQS
//! and Lambda subscribers. Message attributes (`device_id`, `rule`,
//! `severity`, `kind`) let subscribers route alerts with filter policies
//! instead of one topic per vehicle.

use std::time::Duration;

use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use serde_json::json;

use super::Alert;
use crate::backoff::Backoff;
use crate::failure::{Classify, Dependency, FailureClass, classify_response, classify_sdk};
use crate::metrics;

/// PublishBatch takes at most ten entries.
const MAX_BATCH: usize = 10;
/// Attempts for entries SNS reports as failed before the object is failed.
const MAX_ATTEMPTS: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// The `PublishBatch` call itself failed.
    #[error("SNS PublishBatch to {topic} failed: {message}")]
    Call {
        topic: String,
        message: String,
        class: FailureClass,
    },
    /// SNS kept failing some entries; `class` is that of the first one's code.
    #[error(
        "SNS refused {count} alert(s) on {topic} after {MAX_ATTEMPTS} attempts, first: {code}: {message}"
    )]
    Refused {
        topic: String,
        count: usize,
        code: String,
        message: String,
        class: FailureClass,
    },
    #[error("could not build an SNS request: {0}")]
    Build(String),
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
            AlertError::Call { class, .. } | AlertError::Refused { class, .. } => *class,
            // Building a request from this alert fails the same way every time.
            AlertError::Build(_) => FailureClass::Permanent,
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
            AlertError::Call { .. } | AlertError::Refused { .. } | AlertError::Build(_) => {
                Some(Dependency::Sns)
            }
            AlertError::Ledger(_) => Some(Dependency::DynamoDb),
            AlertError::Busy { .. } => None,
        }
    }
}

/// Sends alerts to one topic.
#[derive(Debug, Clone)]
pub struct AlertPublisher {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl AlertPublisher {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: String) -> Self {
        AlertPublisher { client, topic_arn }
    }

    /// Publishes every alert. Returns the indices of the alerts SNS
    /// accepted, and the error that stopped the rest, if any (the message is
    /// then not deleted and the work is redone).
    pub async fn publish(&self, alerts: &[Alert]) -> PublishOutcome {
        let mut outcome = PublishOutcome::default();
        for (n, chunk) in alerts.chunks(MAX_BATCH).enumerate() {
            if let Err(e) = self
                .publish_batch(n * MAX_BATCH, chunk, &mut outcome.accepted)
                .await
            {
                outcome.error = Some(e);
                break;
            }
        }
        outcome
    }

    async fn publish_batch(
        &self,
        offset: usize,
        alerts: &[Alert],
        accepted: &mut Vec<usize>,
    ) -> Result<(), AlertError> {
        let mut pending: Vec<(usize, &Alert)> = alerts.iter().enumerate().collect();
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let entries = pending
                .iter()
                .map(|(i, a)| entry(*i, a))
                .collect::<Result<Vec<_>, _>>()?;
            let output = self
                .client
                .publish_batch()
                .topic_arn(&self.topic_arn)
                .set_publish_batch_request_entries(Some(entries))
                .send()
                .await
                .map_err(|e| AlertError::Call {
                    topic: self.topic_arn.clone(),
                    message: aws_sdk_sns::error::DisplayErrorContext(&e).to_string(),
                    class: classify_sdk(&e),
                })?;
            let failed = output.failed();
            let is_failed = |i: usize| failed.iter().any(|f| f.id() == i.to_string());
            for (i, alert) in pending.iter().filter(|(i, _)| !is_failed(*i)) {
                metrics::alert_published(alert.kind.as_str());
                accepted.push(offset + i);
            }
            if failed.is_empty() {
                return Ok(());
            }
            if attempt >= MAX_ATTEMPTS {
                let first = &failed[0];
                let status = if first.sender_fault() { 400 } else { 500 };
                return Err(AlertError::Refused {
                    topic: self.topic_arn.clone(),
                    count: failed.len(),
                    code: first.code().to_owned(),
                    message: first.message().unwrap_or_default().to_owned(),
                    class: classify_response(Some(first.code()), status),
                });
            }
            tracing::warn!(
                failed = failed.len(),
                attempt,
                "SNS refused some alerts; retrying them"
            );
            pending.retain(|(i, _)| is_failed(*i));
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }
}

/// What [`AlertPublisher::publish`] achieved.
#[derive(Debug, Default)]
pub struct PublishOutcome {
    /// Indices (into the published slice) of the alerts SNS accepted.
    pub accepted: Vec<usize>,
    pub error: Option<AlertError>,
}

fn entry(id: usize, alert: &Alert) -> Result<PublishBatchRequestEntry, AlertError> {
    let attr = |v: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(v)
            .build()
            .map_err(|e| AlertError::Build(e.to_string()))
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
        .map_err(|e| AlertError::Build(e.to_string()))
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
