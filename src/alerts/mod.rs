//! Alerting: which readings deserve a message, grouped so that one object
//! yields at most one alert per device and rule, and their publication.
//!
//! The original Lambda sent one email per hot reading. Here the breaches of
//! one object are folded into a [`BreachLog`] and turned into [`Alert`]s
//! (count, first and last time, worst value) once the object's readings are
//! stored; the [`publisher`] sends them through SNS.

pub mod ledger;
pub mod publisher;
pub mod rules;

use std::collections::BTreeMap;

use futures_util::StreamExt;

use crate::inference::{Label, Prediction};
use crate::telemetry::{Reading, Timestamp};
use rules::AlertRule;

/// Publishing alerts exactly once: the ledger's claim, SNS, the ledger's
/// confirmation (see [`ledger`] for the protocol and its crash windows).
#[derive(Debug, Clone)]
pub struct AlertSink {
    pub publisher: publisher::AlertPublisher,
    pub ledger: ledger::AlertLedger,
}

impl AlertSink {
    /// Publishes the alerts not published before. Returns how many were
    /// published now; an error leaves the rest to a redelivery.
    pub async fn deliver(&self, mut alerts: Vec<Alert>) -> Result<usize, publisher::AlertError> {
        let mut claimed = Vec::with_capacity(alerts.len());
        let mut busy = 0;
        for mut alert in alerts.drain(..) {
            self.ledger.assign_window(&mut alert);
            match self.ledger.claim(&alert).await? {
                ledger::Claim::Publish => claimed.push(alert),
                ledger::Claim::AlreadySent => {
                    crate::metrics::alert_suppressed(alert.kind.as_str());
                    tracing::debug!(device_id = %alert.device_id, rule = %alert.rule, "alert already sent in this window");
                }
                ledger::Claim::Busy => busy += 1,
            }
        }
        let outcome = self.publisher.publish(&claimed).await;
        // Confirm every accepted alert, all at once and each with retries,
        // before reporting any error: an accepted alert left unconfirmed
        // would be published again by the redelivery.
        let mut confirms = futures_util::stream::FuturesUnordered::new();
        for &i in &outcome.accepted {
            if let Some(alert) = claimed.get(i) {
                confirms.push(self.ledger.confirm(alert));
            }
        }
        let mut confirm_error = None;
        while let Some(result) = confirms.next().await {
            if let Err(e) = result {
                confirm_error.get_or_insert(e);
            }
        }
        if let Some(e) = outcome.error {
            return Err(e);
        }
        if let Some(e) = confirm_error {
            return Err(e.into());
        }
        if busy > 0 {
            return Err(publisher::AlertError::Busy { count: busy });
        }
        Ok(outcome.accepted.len())
    }
}

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

/// One alert: every breach of one rule by one device within one object.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub device_id: String,
    pub kind: AlertKind,
    /// The rule as written (`engine_temp_c > 100`) or `maintenance_predicted`.
    pub rule: String,
    /// The field the rule looks at (`engine_temp_c`, or `prediction.score`).
    pub field: String,
    /// The threshold the value was compared with, as written.
    pub threshold: String,
    /// The comparison (`>`), for the subject line.
    pub op: &'static str,
    /// Readings that broke the rule.
    pub count: u64,
    pub first: Timestamp,
    pub last: Timestamp,
    /// The worst offending value, as written in the input.
    pub worst_value: String,
    pub worst_at: Timestamp,
    /// The model that made the prediction (maintenance alerts only).
    pub model: Option<String>,
    /// Start of the cooldown window of the first breach: with device and
    /// rule, the alert's identity in the [`ledger`].
    pub window_start: Option<Timestamp>,
    pub bucket: String,
    pub key: String,
}

/// Breaches seen so far in one object, folded per device and rule.
/// Memory is bounded by devices × rules, not by readings.
#[derive(Debug)]
pub struct BreachLog<'a> {
    rules: &'a [AlertRule],
    maintenance_min_score: Option<f64>,
    // BTreeMap so alerts come out in a stable order (device, then rule).
    open: BTreeMap<(String, AlertKind, usize), Alert>,
    bucket: String,
    key: String,
}

impl<'a> BreachLog<'a> {
    /// `maintenance_min_score`: a POSITIVE prediction scoring at least this
    /// raises a maintenance alert; `None` disables maintenance alerts.
    pub fn new(
        rules: &'a [AlertRule],
        maintenance_min_score: Option<f64>,
        bucket: &str,
        key: &str,
    ) -> Self {
        BreachLog {
            rules,
            maintenance_min_score,
            open: BTreeMap::new(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        }
    }

    /// Evaluates every rule on one reading (and its prediction, if any).
    pub fn record(&mut self, reading: &Reading, prediction: Option<&Prediction>) {
        for (index, rule) in self.rules.iter().enumerate() {
            if let Some(value) = rule.breach(reading) {
                let distance = rule.severity_distance(value.as_f64());
                self.fold(
                    reading,
                    AlertKind::Safety,
                    index,
                    value.as_str(),
                    distance,
                    || {
                        (
                            rule.to_string(),
                            rule.field.clone(),
                            rule.threshold_text().to_owned(),
                            rule.op.as_str(),
                            None,
                        )
                    },
                );
            }
        }
        if let (Some(min), Some(p)) = (self.maintenance_min_score, prediction)
            && p.label == Label::Positive
            && p.score >= min
        {
            let score = format_score(p.score);
            self.fold(reading, AlertKind::Maintenance, 0, &score, p.score, || {
                (
                    "maintenance_predicted".to_owned(),
                    "prediction.score".to_owned(),
                    format_score(min),
                    ">=",
                    Some(p.model.clone()),
                )
            });
        }
    }

    #[allow(clippy::type_complexity)]
    fn fold(
        &mut self,
        reading: &Reading,
        kind: AlertKind,
        index: usize,
        value: &str,
        distance: f64,
        describe: impl FnOnce() -> (String, String, String, &'static str, Option<String>),
    ) {
        let at = reading.timestamp;
        let entry_key = (reading.device_id.clone(), kind, index);
        match self.open.get_mut(&entry_key) {
            Some(alert) => {
                alert.count += 1;
                alert.first = alert.first.min(at);
                alert.last = alert.last.max(at);
                let worst = worst_distance(alert, kind);
                if distance > worst {
                    alert.worst_value = value.to_owned();
                    alert.worst_at = at;
                }
            }
            None => {
                let (rule, field, threshold, op, model) = describe();
                self.open.insert(
                    entry_key,
                    Alert {
                        device_id: reading.device_id.clone(),
                        kind,
                        rule,
                        field,
                        threshold,
                        op,
                        count: 1,
                        first: at,
                        last: at,
                        worst_value: value.to_owned(),
                        worst_at: at,
                        model,
                        window_start: None,
                        bucket: self.bucket.clone(),
                        key: self.key.clone(),
                    },
                );
            }
        }
    }

    /// The alerts, one per device and rule, in a stable order.
    pub fn into_alerts(self) -> Vec<Alert> {
        self.open.into_values().collect()
    }
}

/// The distance of the current worst value past its threshold, recomputed
/// from the stored texts so the log needs no extra state per alert.
fn worst_distance(alert: &Alert, kind: AlertKind) -> f64 {
    let value = alert
        .worst_value
        .parse::<f64>()
        .unwrap_or(f64::NEG_INFINITY);
    let threshold = alert.threshold.parse::<f64>().unwrap_or(0.0);
    match (kind, alert.op) {
        (AlertKind::Maintenance, _) => value,
        (_, ">" | ">=") => value - threshold,
        (_, "<" | "<=") => threshold - value,
        _ => (value - threshold).abs(),
    }
}

fn format_score(score: f64) -> String {
    format!("{score:.4}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{Number, Value};

    fn reading(device: &str, minute: i64, temp: &str) -> Reading {
        Reading {
            device_id: device.into(),
            timestamp: Timestamp::from_unix_millis(minute * 60_000),
            fields: vec![(
                "engine_temp_c".into(),
                Value::Number(Number::parse(temp).unwrap()),
            )],
        }
    }

    #[test]
    fn folds_breaches_per_device_and_rule() {
        let rules: Vec<AlertRule> = vec!["engine_temp_c > 100".parse().unwrap()];
        let mut log = BreachLog::new(&rules, None, "b", "k");
        log.record(&reading("VHC002", 3, "110"), None);
        log.record(&reading("VHC002", 1, "124"), None);
        log.record(&reading("VHC002", 2, "101"), None);
        log.record(&reading("VHC001", 5, "102"), None);
        log.record(&reading("VHC003", 5, "90"), None);
        let alerts = log.into_alerts();
        assert_eq!(alerts.len(), 2);
        assert_eq!(alerts[0].device_id, "VHC001");
        let a = &alerts[1];
        assert_eq!((a.device_id.as_str(), a.count), ("VHC002", 3));
        assert_eq!(a.first, Timestamp::from_unix_millis(60_000));
        assert_eq!(a.last, Timestamp::from_unix_millis(180_000));
        assert_eq!(a.worst_value, "124");
        assert_eq!(a.worst_at, Timestamp::from_unix_millis(60_000));
        assert_eq!(a.rule, "engine_temp_c > 100");
    }

    #[test]
    fn maintenance_alerts_need_a_positive_prediction_above_the_level() {
        let rules: Vec<AlertRule> = vec![];
        let mut log = BreachLog::new(&rules, Some(0.8), "b", "k");
        let p = |label, score| Prediction {
            label,
            score,
            model: "m1".into(),
        };
        log.record(&reading("A", 1, "90"), Some(&p(Label::Positive, 0.7)));
        log.record(&reading("B", 1, "90"), Some(&p(Label::Negative, 0.9)));
        log.record(&reading("C", 1, "90"), Some(&p(Label::Positive, 0.85)));
        log.record(&reading("C", 2, "90"), Some(&p(Label::Positive, 0.95)));
        let alerts = log.into_alerts();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].device_id, "C");
        assert_eq!(alerts[0].kind, AlertKind::Maintenance);
        assert_eq!(alerts[0].count, 2);
        assert_eq!(alerts[0].worst_value, "0.9500");
        assert_eq!(alerts[0].model.as_deref(), Some("m1"));
    }
}
