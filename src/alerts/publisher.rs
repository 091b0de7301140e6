//! Publishes alerts to an SNS topic with `PublishBatch`.
//!
//! Each alert is one SNS message with `MessageStructure: json`: a readable
//! text for email (and the `default` protocol) and a JSON document for SQS
//! and Lambda subscribers, with message attributes subscribers route on
//! (all rendered by [`super::message`]).
//!
//! Failures are told apart by [`crate::failure`]: an entry (or a whole
//! call) SNS refuses for its content (`InvalidParameter`: a message too
//! long, an empty attribute) can never be published, so that alert is
//! *rejected*, reported in [`PublishOutcome::rejected`], and the others go
//! on; throttling and everything else is retried, then reported as an
//! error so the work is redone later.

use aws_sdk_sns::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use serde_json::json;

use super::AlertError;
use super::message::Message;
use crate::failure::{FailureClass, classify_response, classify_sdk};
use crate::metrics;

/// PublishBatch takes at most ten entries.
const MAX_BATCH: usize = 10;
/// Attempts for entries SNS reports as failed (for a reason that may pass)
/// before the delivery fails.
const MAX_ATTEMPTS: u32 = crate::retry::SNS_ENTRIES_CALLS;

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
        pending: Vec<(usize, &'a Message)>,
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
    pub async fn publish(&self, messages: &[Message]) -> PublishOutcome {
        let mut outcome = PublishOutcome::default();
        let indexed: Vec<(usize, &Message)> = messages.iter().enumerate().collect();
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
        alerts: &[(usize, &Message)],
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
        batch: &[(usize, &'a Message)],
        outcome: &mut PublishOutcome,
    ) -> Result<Batch<'a>, AlertError> {
        let mut pending: Vec<(usize, &Message)> = batch.to_vec();
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
                    attempts: MAX_ATTEMPTS,
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
/// built (the message is then rejected like one SNS refused).
fn entry(id: usize, message: &Message) -> Result<PublishBatchRequestEntry, String> {
    let document = message.document.to_string();
    let body = json!({
        "default": message.text,
        "email": message.text,
        "sqs": document,
        "lambda": document,
    });
    let mut entry = PublishBatchRequestEntry::builder()
        .id(id.to_string())
        .subject(&message.subject)
        .message_structure("json")
        .message(body.to_string());
    for (name, value) in &message.attributes {
        let value = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .map_err(|e| e.to_string())?;
        entry = entry.message_attributes(*name, value);
    }
    entry.build().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn an_alert_makes_an_entry() {
        let m = crate::alerts::message::render(&crate::alerts::message::tests::alert(), None);
        let e = entry(0, &m).unwrap();
        assert_eq!(e.message_attributes().map(|a| a.len()), Some(4));
    }
}
