//! What an alert is, in three parts kept apart: its identity
//! ([`AlertId`], the ledger's key), the condition that was broken
//! ([`Condition`]) and what the readings showed ([`Breaches`]), plus the
//! object they came from ([`Source`]). Rendering lives in
//! [`super::message`], ledger state in [`super::ledger`].

use crate::inference::explanation::Contribution;
use crate::telemetry::Timestamp;

use super::rules::{AlertRule, Direction, Op, RuleKind};
use super::windowed::Finding;

/// What kind of condition raised an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertKind {
    /// A reading broke a safety rule.
    Safety,
    /// The model predicts the vehicle needs maintenance.
    Maintenance,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Safety => "safety",
            AlertKind::Maintenance => "maintenance",
        }
    }

    /// The `severity` message attribute subscribers can filter on.
    pub fn severity(self) -> &'static str {
        match self {
            AlertKind::Safety => "critical",
            AlertKind::Maintenance => "warning",
        }
    }
}

/// Which alert this is: at most one is published per identity. Built only
/// by [`super::Cooldown::alert_id`], so the window is always aligned to the
/// cooldown that the ledger keys alerts by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AlertId {
    /// The vehicle that broke the rule.
    pub device_id: String,
    /// The rule as written (`engine_temp_c > 100`) or `maintenance_predicted`.
    pub rule: String,
    /// Start of the cooldown window every breach of the alert falls in.
    pub window_start: Timestamp,
}

/// The condition that was broken, for the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// Safety rule or maintenance prediction: the severity and the wording.
    pub kind: AlertKind,
    /// The field the rule looks at (`engine_temp_c`, or `prediction.score`).
    pub field: String,
    /// What of the field breaks the rule, for the subject line and JSON.
    pub test: Test,
    /// The model that made the prediction (maintenance alerts only).
    pub model: Option<String>,
    /// The vehicles the rule was set for (`VHC001`, `TRK-*`, `fleet=north`)
    /// when it is not a rule for every vehicle: the message says the rule
    /// is an override.
    pub scope: Option<String>,
}

/// What of a field breaks a rule: the rule's kind and its numbers, as
/// written.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// Each reading compared with a threshold (threshold rules, and the
    /// maintenance score).
    Compare { op: Op, threshold: String },
    /// The comparison held on every reading for `duration`.
    Sustained {
        op: Op,
        threshold: String,
        duration: String,
    },
    /// The value moved by `amount` within `within`.
    Change {
        direction: Direction,
        amount: String,
        within: String,
    },
}

impl Test {
    /// The rule's kind, in the JSON (`threshold`, `sustained`, `rises`,
    /// `falls`).
    pub fn kind(&self) -> &'static str {
        match self {
            Test::Compare { .. } => "threshold",
            Test::Sustained { .. } => "sustained",
            Test::Change { direction, .. } => direction.as_str(),
        }
    }
}

impl Condition {
    /// The condition a safety rule's alerts quote (for every vehicle: the
    /// scope is set per alert).
    pub fn of_rule(rule: &AlertRule) -> Condition {
        let test = match &rule.kind {
            RuleKind::Threshold(c) => Test::Compare {
                op: c.op,
                threshold: c.threshold.as_str().to_owned(),
            },
            RuleKind::Sustained {
                comparison: c,
                duration,
            } => Test::Sustained {
                op: c.op,
                threshold: c.threshold.as_str().to_owned(),
                duration: duration.as_str().to_owned(),
            },
            RuleKind::Change {
                direction,
                amount,
                within,
            } => Test::Change {
                direction: *direction,
                amount: amount.as_str().to_owned(),
                within: within.as_str().to_owned(),
            },
        };
        Condition {
            kind: AlertKind::Safety,
            field: rule.field.clone(),
            test,
            model: None,
            scope: None,
        }
    }
}

/// The breaches of one alert's window, as far as one object (or the part of
/// it delivered early) shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Breaches {
    /// Readings that broke the rule within the window.
    pub count: u64,
    /// Event time of the earliest breach.
    pub first: Timestamp,
    /// Event time of the latest breach.
    pub last: Timestamp,
    /// The worst offending value within the window, as written in the input
    /// (for a windowed rule: the value of its worst breach's reading).
    pub worst_value: String,
    /// Event time of the worst value.
    pub worst_at: Timestamp,
    /// Why the model flagged the worst reading: its top reasons, largest
    /// first. Empty for safety alerts and for backends that do not explain
    /// (SageMaker).
    pub explanation: Vec<Contribution>,
    /// What the worst breach of a windowed rule showed (where the change
    /// started, how long the run has lasted); `None` for the other rules.
    pub finding: Option<Finding>,
}

/// The object the breaches were read from, quoted in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The S3 bucket (or a placeholder for local files).
    pub bucket: String,
    /// The object key (or the local path).
    pub key: String,
}

/// One alert: every breach of one rule by one device within one cooldown
/// window, as far as one object shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The ledger's key: device, rule, window.
    pub id: AlertId,
    /// What was broken.
    pub condition: Condition,
    /// What the readings showed.
    pub breaches: Breaches,
    /// Where they came from.
    pub source: Source,
}
