//! Alerting: which readings deserve a message, grouped so that one object
//! yields at most one alert per device, rule and cooldown window, and their
//! publication.
//!
//! The original Lambda sent one email per hot reading. Here the breaches of
//! one object are folded into a [`BreachLog`] per device, rule and cooldown
//! window (the same windows the [`ledger`] keys alerts by) and turned into
//! [`Alert`]s (count, first and last time, worst value within the window)
//! once the readings are stored; [`AlertSink::deliver`] sends them through
//! SNS exactly once per window.

pub mod ledger;
pub mod publisher;
pub mod rules;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use futures_util::StreamExt;

use crate::inference::explanation::Contribution;
use crate::inference::{Label, Prediction};
use crate::telemetry::{Reading, Timestamp};
pub use ledger::ClaimOwner;
use publisher::AlertError;
use rules::AlertRule;

/// Open alerts (windows) past which the pipeline delivers what an object
/// has gathered so far instead of holding it to the object's end, so an
/// object with breaches spread over thousands of windows cannot grow the
/// [`BreachLog`] without limit. A window delivered early and met again
/// later in the object is suppressed by the ledger: still one alert.
pub const MAX_OPEN_ALERTS: usize = 1000;
/// Claims made at once: enough to hide DynamoDB's latency when an object
/// yields many alerts, few enough not to flood the table.
const CLAIMS_IN_FLIGHT: usize = 16;

/// The cooldown (`FLEETWATCH_ALERT_COOLDOWN`): event time is cut into
/// windows of this length, aligned to the epoch, and each (device, rule,
/// window) gets at most one alert. The one place the window arithmetic
/// lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cooldown {
    /// The window length in milliseconds, at least 1.
    millis: i64,
}

impl Cooldown {
    pub fn new(length: Duration) -> Self {
        Cooldown {
            millis: length.as_millis().clamp(1, i64::MAX as u128) as i64,
        }
    }

    /// The start of the window holding `at`.
    pub fn window_start(self, at: Timestamp) -> Timestamp {
        Timestamp::from_unix_millis(at.unix_millis().div_euclid(self.millis) * self.millis)
    }
}

impl Default for Cooldown {
    /// `FLEETWATCH_ALERT_COOLDOWN`'s default, 15 minutes.
    fn default() -> Self {
        Cooldown::new(Duration::from_secs(15 * 60))
    }
}

/// Publishing alerts exactly once: the ledger's claim, SNS, the ledger's
/// confirmation (see [`ledger`] for the protocol and its crash windows).
#[derive(Debug, Clone)]
pub struct AlertSink {
    pub publisher: publisher::AlertPublisher,
    pub ledger: ledger::AlertLedger,
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
        let cooldown = self.ledger.cooldown();
        let mut seen = HashSet::new();
        let alerts = alerts.into_iter().filter(|a| {
            let window = cooldown.window_start(a.window_start).unix_millis();
            seen.insert((a.device_id.clone(), a.rule.clone(), window))
        });
        let claims: Vec<_> = futures_util::stream::iter(alerts)
            .map(|alert| async move {
                let claim = self.ledger.claim(&alert, owner).await;
                (alert, claim)
            })
            .buffered(CLAIMS_IN_FLIGHT)
            .collect()
            .await;
        let mut claimed = Vec::with_capacity(claims.len());
        let mut busy = 0;
        let mut retry_after = Duration::ZERO;
        let mut claim_error = None;
        for (alert, claim) in claims {
            match claim {
                Ok(ledger::Claim::Publish) => claimed.push(alert),
                Ok(ledger::Claim::AlreadySent) => {
                    crate::metrics::alert_suppressed(alert.kind.as_str());
                    tracing::debug!(device_id = %alert.device_id, rule = %alert.rule,
                        window_start = %alert.window_start, "alert already sent in this window");
                }
                Ok(ledger::Claim::Busy { retry_after: after }) => {
                    busy += 1;
                    retry_after = retry_after.max(after);
                    tracing::debug!(device_id = %alert.device_id, rule = %alert.rule,
                        window_start = %alert.window_start, retry_after = ?after,
                        "alert claimed by another worker");
                }
                // The alerts claimed still go out; this one is retried.
                Err(e) => {
                    claim_error.get_or_insert(e);
                }
            }
        }
        let outcome = self.publisher.publish(&claimed).await;
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
                crate::metrics::alert_rejected(alert.kind.as_str(), rejection.reason);
                tracing::error!(device_id = %alert.device_id, rule = %alert.rule,
                    window_start = %alert.window_start, kind = alert.kind.as_str(),
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
        if busy > 0 {
            return Err(AlertError::Busy {
                count: busy,
                retry_after,
            });
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

/// One alert: every breach of one rule by one device within one cooldown
/// window, as far as one object (or the part of it delivered early) shows.
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
    /// Readings that broke the rule within the window.
    pub count: u64,
    pub first: Timestamp,
    pub last: Timestamp,
    /// The worst offending value within the window, as written in the input.
    pub worst_value: String,
    pub worst_at: Timestamp,
    /// The model that made the prediction (maintenance alerts only).
    pub model: Option<String>,
    /// Why the model flagged the vehicle: the top reasons of the worst
    /// (highest-scoring) reading, largest first. Empty for safety alerts and
    /// for backends that do not explain (SageMaker).
    pub explanation: Vec<Contribution>,
    /// Start of the cooldown window every breach of this alert falls in:
    /// with device and rule, the alert's identity in the [`ledger`].
    pub window_start: Timestamp,
    pub bucket: String,
    pub key: String,
}

/// Breaches seen so far in one object, folded per device, rule and
/// cooldown window. Memory is bounded by the open alerts (devices × rules ×
/// windows), not by readings; the pipeline [`take`](BreachLog::take)s them
/// out early past [`MAX_OPEN_ALERTS`].
#[derive(Debug)]
pub struct BreachLog<'a> {
    /// The safety rules, evaluated on every reading.
    rules: &'a [AlertRule],
    /// A POSITIVE prediction scoring at least this raises a maintenance
    /// alert; `None` disables them.
    maintenance_min_score: Option<f64>,
    /// The windows breaches are folded into (the ledger's).
    cooldown: Cooldown,
    /// The open alerts by (device, kind, rule index, window start); a
    /// BTreeMap so alerts come out in a stable order (device, rule, time).
    open: BTreeMap<(String, AlertKind, usize, i64), Alert>,
    /// The object the breaches come from, quoted in every alert.
    bucket: String,
    key: String,
}

impl<'a> BreachLog<'a> {
    /// `maintenance_min_score`: a POSITIVE prediction scoring at least this
    /// raises a maintenance alert; `None` disables maintenance alerts.
    /// `cooldown` must be the ledger's ([`ledger::AlertLedger::cooldown`]).
    pub fn new(
        rules: &'a [AlertRule],
        maintenance_min_score: Option<f64>,
        cooldown: Cooldown,
        bucket: &str,
        key: &str,
    ) -> Self {
        BreachLog {
            rules,
            maintenance_min_score,
            cooldown,
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
            let worst = self.fold(reading, AlertKind::Maintenance, 0, &score, p.score, || {
                (
                    "maintenance_predicted".to_owned(),
                    "prediction.score".to_owned(),
                    format_score(min),
                    ">=",
                    Some(p.model.clone()),
                )
            });
            // The alert says why with the reasons of its worst reading.
            if let Some(alert) = worst {
                alert.explanation = p.explanation.clone();
            }
        }
    }

    /// Folds one breach into its alert; returns the alert when this
    /// reading is now its worst (so the caller can attach what goes with it).
    #[allow(clippy::type_complexity)]
    fn fold(
        &mut self,
        reading: &Reading,
        kind: AlertKind,
        index: usize,
        value: &str,
        distance: f64,
        describe: impl FnOnce() -> (String, String, String, &'static str, Option<String>),
    ) -> Option<&mut Alert> {
        let at = reading.timestamp;
        let window_start = self.cooldown.window_start(at);
        let entry_key = (
            reading.device_id.clone(),
            kind,
            index,
            window_start.unix_millis(),
        );
        if self.open.contains_key(&entry_key) {
            let alert = self.open.get_mut(&entry_key)?;
            alert.count += 1;
            alert.first = alert.first.min(at);
            alert.last = alert.last.max(at);
            let worst = worst_distance(alert, kind);
            if distance > worst {
                alert.worst_value = value.to_owned();
                alert.worst_at = at;
                return Some(alert);
            }
            return None;
        }
        let (rule, field, threshold, op, model) = describe();
        self.open.insert(
            entry_key.clone(),
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
                explanation: Vec::new(),
                window_start,
                bucket: self.bucket.clone(),
                key: self.key.clone(),
            },
        );
        self.open.get_mut(&entry_key)
    }

    /// The open alerts (windows with a breach not yet taken out).
    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Takes out the alerts gathered so far (one per device, rule and
    /// window, in a stable order) and starts afresh; breaches recorded later
    /// in an already taken window make a new alert for it, which the ledger
    /// then suppresses.
    pub fn take(&mut self) -> Vec<Alert> {
        std::mem::take(&mut self.open).into_values().collect()
    }

    /// The alerts, one per device, rule and window, in a stable order.
    pub fn into_alerts(mut self) -> Vec<Alert> {
        self.take()
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
        let mut log = BreachLog::new(&rules, None, Cooldown::default(), "b", "k");
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
        assert_eq!(a.window_start, Timestamp::from_unix_millis(0));
    }

    #[test]
    fn folds_per_cooldown_window() {
        let rules: Vec<AlertRule> = vec!["engine_temp_c > 100".parse().unwrap()];
        let mut log = BreachLog::new(&rules, None, Cooldown::default(), "b", "k");
        // Minutes 14 and 15 straddle the 15-minute boundary; 44 is a third
        // window. Out of order on purpose.
        for (minute, temp) in [
            (44, "105"),
            (15, "130"),
            (14, "120"),
            (16, "101"),
            (1, "90"),
        ] {
            log.record(&reading("VHC002", minute, temp), None);
        }
        assert_eq!(log.len(), 3);
        let alerts = log.take();
        assert!(log.is_empty(), "take empties the log");
        let windows: Vec<(i64, u64, &str, i64, i64)> = alerts
            .iter()
            .map(|a| {
                (
                    a.window_start.unix_millis() / 60_000,
                    a.count,
                    a.worst_value.as_str(),
                    a.first.unix_millis() / 60_000,
                    a.last.unix_millis() / 60_000,
                )
            })
            .collect();
        assert_eq!(
            windows,
            [
                (0, 1, "120", 14, 14),
                (15, 2, "130", 15, 16),
                (30, 1, "105", 44, 44)
            ]
        );
        // The log goes on after a take: a window seen again is a new alert
        // (the ledger suppresses it when it was delivered).
        log.record(&reading("VHC002", 20, "140"), None);
        let again = log.into_alerts();
        assert_eq!(again.len(), 1);
        assert_eq!(
            again[0].window_start,
            Timestamp::from_unix_millis(15 * 60_000)
        );
    }

    #[test]
    fn windows_are_epoch_aligned_in_event_time() {
        let c = Cooldown::new(Duration::from_secs(15 * 60));
        let at = |ms| {
            c.window_start(Timestamp::from_unix_millis(ms))
                .unix_millis()
        };
        assert_eq!(at(0), 0);
        assert_eq!(at(899_999), 0);
        assert_eq!(at(900_000), 900_000);
        assert_eq!(
            at(-1),
            -900_000,
            "before the epoch rounds down, not to zero"
        );
        assert_eq!(
            Cooldown::new(Duration::ZERO),
            Cooldown::new(Duration::from_millis(1))
        );
    }

    /// A maintenance alert says why with the reasons of its worst reading.
    #[test]
    fn a_maintenance_alert_keeps_the_reasons_of_its_worst_reading() {
        let rules: Vec<AlertRule> = vec![];
        let mut log = BreachLog::new(&rules, Some(0.8), Cooldown::default(), "b", "k");
        let p = |score, feature| Prediction {
            label: Label::Positive,
            score,
            model: "m1".into(),
            explanation: vec![Contribution {
                feature,
                value: 1.0,
                contribution: 0.5,
            }],
        };
        log.record(&reading("C", 1, "90"), Some(&p(0.85, "rpm")));
        log.record(&reading("C", 2, "90"), Some(&p(0.95, "vibration_max")));
        log.record(&reading("C", 3, "90"), Some(&p(0.90, "speed_kmph")));
        let alerts = log.into_alerts();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].worst_value, "0.9500");
        assert_eq!(alerts[0].explanation[0].feature, "vibration_max");
    }

    #[test]
    fn maintenance_alerts_need_a_positive_prediction_above_the_level() {
        let rules: Vec<AlertRule> = vec![];
        let mut log = BreachLog::new(&rules, Some(0.8), Cooldown::default(), "b", "k");
        let p = |label, score| Prediction {
            label,
            score,
            model: "m1".into(),
            explanation: Vec::new(),
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
