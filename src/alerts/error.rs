//! The alert subsystem's one error type: what stopped alerts from being
//! delivered, classified for the retry policy (see [`crate::failure`]).

use std::time::Duration;

use super::ledger::LedgerError;
use crate::alarms::AlarmError;
use crate::failure::{Classify, Dependency, FailureClass};

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// The `PublishBatch` call itself failed (an outage, throttling, a
    /// timeout); a call refused for its content becomes rejections instead.
    #[error("SNS PublishBatch to {topic} failed: {message}")]
    Call {
        /// The topic, so a wrong `FLEETWATCH_ALERT_TOPIC_ARN` shows.
        topic: String,
        /// The SDK error with its context.
        message: String,
        /// Whether and how retrying may help.
        class: FailureClass,
    },
    /// SNS kept failing some entries with retryable errors.
    #[error(
        "SNS failed {count} alert(s) on {topic} after {attempts} attempts, first: {code}: {message}"
    )]
    EntriesFailed {
        /// The topic published to.
        topic: String,
        /// Entries still failing.
        count: usize,
        /// Attempts made.
        attempts: u32,
        /// SNS's code for the first failing entry.
        code: String,
        /// SNS's explanation for it.
        message: String,
        /// Throttled or transient.
        class: FailureClass,
    },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Recording the breaches on their alarm failed.
    #[error(transparent)]
    Alarm(#[from] AlarmError),
    /// Another worker holds live claims on `count` alerts; the last of
    /// those claims goes stale after `retry_after`.
    #[error(
        "{count} alert(s) are being published by another worker right now; retry in {retry_after:?} at the latest"
    )]
    Busy {
        /// Alerts held by other owners.
        count: usize,
        /// When the last of their claims goes stale.
        retry_after: Duration,
    },
}

impl Classify for AlertError {
    fn class(&self) -> FailureClass {
        match self {
            AlertError::Call { class, .. } | AlertError::EntriesFailed { class, .. } => *class,
            AlertError::Ledger(e) => e.class(),
            AlertError::Alarm(e) => e.class(),
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
            AlertError::Alarm(AlarmError::Call { .. }) => Some(Dependency::DynamoDb),
            AlertError::Alarm(_) => None,
            AlertError::Busy { .. } => None,
        }
    }
}
