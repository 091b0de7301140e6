//! Folding one object's breaches into alerts: one per device, rule and
//! cooldown window, with the count, the first and last time and the worst
//! value.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::alert::Test;
use super::rule_set::RuleSet;
use super::rules::Op;
use super::windowed::{Finding, WindowedBreach, format_value};
use super::{Alert, AlertKind, Breaches, Condition, Cooldown, Source};
use crate::inference::explanation::Contribution;
use crate::inference::{Label, Prediction};
use crate::telemetry::{Reading, Timestamp};

/// Open alerts (windows) past which the pipeline delivers what an object
/// has gathered so far instead of holding it to the object's end, so an
/// object with breaches spread over thousands of windows cannot grow the
/// [`BreachLog`] without limit. A window delivered early and met again
/// later in the object is suppressed by the ledger: still one alert.
pub const MAX_OPEN_ALERTS: usize = 1000;

/// The rule name of maintenance alerts.
pub const MAINTENANCE_RULE: &str = "maintenance_predicted";

/// An alert being folded, with the distance of its worst value past the
/// threshold (kept as a number so a later breach compares without
/// re-parsing the text).
#[derive(Debug)]
struct OpenAlert {
    /// The alert so far.
    alert: Alert,
    /// How far `alert.breaches.worst_value` is past the threshold.
    worst_distance: f64,
}

/// Breaches seen so far in one object, folded per device, rule and
/// cooldown window. Memory is bounded by the open alerts (devices × rules ×
/// windows), not by readings; the pipeline [`take`](BreachLog::take)s them
/// out early past [`MAX_OPEN_ALERTS`].
#[derive(Debug)]
pub struct BreachLog {
    /// The safety rules in force when the object started (one set for the
    /// whole object, however the rules change meanwhile).
    rules: Arc<RuleSet>,
    /// Which rules apply to each vehicle seen (by [`RuleSet::cache_key`]),
    /// when the rules are scoped; empty when every vehicle gets them all.
    applicable: HashMap<String, Arc<[usize]>>,
    /// Every rule's index, for a set that is the same for every vehicle.
    every_rule: Arc<[usize]>,
    /// A POSITIVE prediction scoring at least this raises a maintenance
    /// alert; `None` disables them.
    maintenance_min_score: Option<f64>,
    /// The windows breaches are folded into (the ledger's).
    cooldown: Cooldown,
    /// The open alerts by (device, kind, rule index, window start); a
    /// BTreeMap so alerts come out in a stable order (device, rule, time).
    open: BTreeMap<(String, AlertKind, usize, i64), OpenAlert>,
    /// The object the breaches come from, quoted in every alert.
    source: Source,
}

impl BreachLog {
    /// `maintenance_min_score`: a POSITIVE prediction scoring at least this
    /// raises a maintenance alert; `None` disables maintenance alerts.
    /// `cooldown` must be the ledger's ([`super::ledger::AlertLedger::cooldown`]).
    pub fn new(
        rules: Arc<RuleSet>,
        maintenance_min_score: Option<f64>,
        cooldown: Cooldown,
        bucket: &str,
        key: &str,
    ) -> Self {
        BreachLog {
            every_rule: (0..rules.entries().len()).collect(),
            rules,
            applicable: HashMap::new(),
            maintenance_min_score,
            cooldown,
            open: BTreeMap::new(),
            source: Source {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            },
        }
    }

    /// The rules that apply to `reading`'s vehicle, worked out once per
    /// vehicle (and group) of the object.
    fn rules_for(&mut self, reading: &Reading) -> Arc<[usize]> {
        if self.rules.is_uniform() {
            return self.every_rule.clone();
        }
        let key = self.rules.cache_key(reading);
        if let Some(found) = self.applicable.get(&key) {
            return found.clone();
        }
        let found: Arc<[usize]> = self.rules.applicable(reading).into();
        self.applicable.insert(key, found.clone());
        found
    }

    /// Evaluates every rule on one reading (and its prediction, if any).
    pub fn record(&mut self, reading: &Reading, prediction: Option<&Prediction>) {
        let applicable = self.rules_for(reading);
        for &index in applicable.iter() {
            let rule = &self.rules.entries()[index].rule;
            if let Some(value) = rule.breach(reading) {
                let distance = rule.severity_distance(value.as_f64());
                let breach = Breach {
                    kind: AlertKind::Safety,
                    index,
                    value: value.as_str(),
                    distance,
                    explanation: &[],
                    finding: None,
                };
                self.fold(&reading.device_id, reading.timestamp, breach, |log| {
                    let entry = &log.rules.entries()[index];
                    let mut condition = entry.condition.clone();
                    condition.scope = log.rules.scope_of(reading, index).map(ToString::to_string);
                    (entry.text.clone(), condition)
                });
            }
        }
        if let (Some(min), Some(p)) = (self.maintenance_min_score, prediction)
            && p.label == Label::Positive
            && p.score >= min
        {
            let score = format_score(p.score);
            let breach = Breach {
                kind: AlertKind::Maintenance,
                index: 0,
                value: &score,
                distance: p.score,
                explanation: &p.explanation,
                finding: None,
            };
            self.fold(&reading.device_id, reading.timestamp, breach, |_| {
                (
                    MAINTENANCE_RULE.to_owned(),
                    Condition {
                        kind: AlertKind::Maintenance,
                        field: "prediction.score".to_owned(),
                        test: Test::Compare {
                            op: Op::Ge,
                            threshold: format_score(min),
                        },
                        model: Some(p.model.clone()),
                        scope: None,
                    },
                )
            });
        }
    }

    /// Folds one breach of a windowed rule (the rule `index` of the
    /// [`RuleSet`], for `scope`, as [`RuleSet::scope_of`] names it) by
    /// `device`, found by [`super::windowed`].
    pub fn record_windowed(
        &mut self,
        device: &str,
        index: usize,
        scope: Option<&str>,
        breach: &WindowedBreach,
    ) {
        if index >= self.rules.entries().len() {
            return;
        }
        let value = format_value(breach.value);
        let folded = Breach {
            kind: AlertKind::Safety,
            index,
            value: &value,
            distance: breach.distance(),
            explanation: &[],
            finding: Some(&breach.finding),
        };
        self.fold(device, breach.at, folded, |log| {
            let entry = &log.rules.entries()[index];
            let mut condition = entry.condition.clone();
            condition.scope = scope.map(str::to_owned);
            (entry.text.clone(), condition)
        });
    }

    /// The rules this log evaluates (the object's).
    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    /// An empty log of the same rules, windows and object, for breaches
    /// gathered apart and then [`absorb`](BreachLog::absorb)ed.
    pub fn sibling(&self) -> BreachLog {
        BreachLog {
            rules: self.rules.clone(),
            applicable: HashMap::new(),
            every_rule: self.every_rule.clone(),
            maintenance_min_score: self.maintenance_min_score,
            cooldown: self.cooldown,
            open: BTreeMap::new(),
            source: self.source.clone(),
        }
    }

    /// Folds in the alerts of a [`sibling`](BreachLog::sibling): the same
    /// as if its breaches had been recorded here.
    pub fn absorb(&mut self, other: BreachLog) {
        for (key, theirs) in other.open {
            let Some(ours) = self.open.get_mut(&key) else {
                self.open.insert(key, theirs);
                continue;
            };
            let (b, t) = (&mut ours.alert.breaches, theirs.alert.breaches);
            b.count += t.count;
            b.first = b.first.min(t.first);
            b.last = b.last.max(t.last);
            if theirs.worst_distance > ours.worst_distance {
                b.worst_value = t.worst_value;
                b.worst_at = t.worst_at;
                b.explanation = t.explanation;
                b.finding = t.finding;
                ours.worst_distance = theirs.worst_distance;
            }
        }
    }

    /// Folds one breach into its window's alert; `describe` names the rule
    /// and its condition when the window opens.
    fn fold(
        &mut self,
        device: &str,
        at: Timestamp,
        breach: Breach<'_>,
        describe: impl FnOnce(&Self) -> (String, Condition),
    ) {
        let entry_key = (
            device.to_owned(),
            breach.kind,
            breach.index,
            self.cooldown.window_start(at).unix_millis(),
        );
        if let Some(open) = self.open.get_mut(&entry_key) {
            let b = &mut open.alert.breaches;
            b.count += 1;
            b.first = b.first.min(at);
            b.last = b.last.max(at);
            if breach.distance > open.worst_distance {
                b.worst_value = breach.value.to_owned();
                b.worst_at = at;
                b.explanation = breach.explanation.to_vec();
                b.finding = breach.finding.cloned();
                open.worst_distance = breach.distance;
            }
            return;
        }
        let (rule, condition) = describe(self);
        let alert = Alert {
            id: self.cooldown.alert_id(device, &rule, at),
            condition,
            breaches: Breaches {
                count: 1,
                first: at,
                last: at,
                worst_value: breach.value.to_owned(),
                worst_at: at,
                explanation: breach.explanation.to_vec(),
                finding: breach.finding.cloned(),
            },
            source: self.source.clone(),
        };
        self.open.insert(
            entry_key,
            OpenAlert {
                alert,
                worst_distance: breach.distance,
            },
        );
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
        std::mem::take(&mut self.open)
            .into_values()
            .map(|open| open.alert)
            .collect()
    }

    /// The alerts, one per device, rule and window, in a stable order.
    pub fn into_alerts(mut self) -> Vec<Alert> {
        self.take()
    }
}

/// One breach, as [`BreachLog::fold`] takes it.
struct Breach<'v> {
    /// Which kind of condition was broken.
    kind: AlertKind,
    /// The rule's index among the safety rules (0 for maintenance).
    index: usize,
    /// The offending value as written.
    value: &'v str,
    /// How far it is past the threshold; the larger, the worse.
    distance: f64,
    /// Why the model flagged the reading (maintenance only): kept with the
    /// worst value, so the alert says why with its worst reading's reasons.
    explanation: &'v [Contribution],
    /// What a windowed rule's breach showed, kept with the worst value.
    finding: Option<&'v Finding>,
}

fn format_score(score: f64) -> String {
    format!("{score:.4}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{Number, Timestamp, Value};
    use crate::test_input::{rule_set as rules, temperature_reading as reading};

    #[test]
    fn folds_breaches_per_device_and_rule() {
        let mut log = BreachLog::new(
            rules(&["engine_temp_c > 100"]),
            None,
            Cooldown::default(),
            "b",
            "k",
        );
        log.record(&reading("VHC002", 3, "110"), None);
        log.record(&reading("VHC002", 1, "124"), None);
        log.record(&reading("VHC002", 2, "101"), None);
        log.record(&reading("VHC001", 5, "102"), None);
        log.record(&reading("VHC003", 5, "90"), None);
        let alerts = log.into_alerts();
        assert_eq!(alerts.len(), 2);
        assert_eq!(alerts[0].id.device_id, "VHC001");
        let a = &alerts[1];
        let b = &a.breaches;
        assert_eq!((a.id.device_id.as_str(), b.count), ("VHC002", 3));
        assert_eq!(b.first, Timestamp::from_unix_millis(60_000));
        assert_eq!(b.last, Timestamp::from_unix_millis(180_000));
        assert_eq!(b.worst_value, "124");
        assert_eq!(b.worst_at, Timestamp::from_unix_millis(60_000));
        assert_eq!(a.id.rule, "engine_temp_c > 100");
        assert_eq!(a.id.window_start, Timestamp::from_unix_millis(0));
        assert_eq!(
            a.condition.test,
            Test::Compare {
                op: Op::Gt,
                threshold: "100".into()
            }
        );
    }

    #[test]
    fn the_worst_value_is_the_farthest_past_the_threshold() {
        let mut log = BreachLog::new(
            rules(&["oil_pressure_kpa < 150"]),
            None,
            Cooldown::default(),
            "b",
            "k",
        );
        let r = |minute: i64, v: &str| Reading {
            device_id: "VHC001".into(),
            timestamp: Timestamp::from_unix_millis(minute * 60_000),
            fields: vec![(
                "oil_pressure_kpa".into(),
                Value::Number(Number::parse(v).unwrap()),
            )],
        };
        for (minute, v) in [(1, "140"), (2, "1.2e2"), (3, "130")] {
            log.record(&r(minute, v), None);
        }
        let alerts = log.into_alerts();
        assert_eq!(alerts[0].breaches.worst_value, "1.2e2");
    }

    #[test]
    fn folds_per_cooldown_window() {
        let mut log = BreachLog::new(
            rules(&["engine_temp_c > 100"]),
            None,
            Cooldown::default(),
            "b",
            "k",
        );
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
                    a.id.window_start.unix_millis() / 60_000,
                    a.breaches.count,
                    a.breaches.worst_value.as_str(),
                    a.breaches.first.unix_millis() / 60_000,
                    a.breaches.last.unix_millis() / 60_000,
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
            again[0].id.window_start,
            Timestamp::from_unix_millis(15 * 60_000)
        );
    }

    #[test]
    fn maintenance_alerts_need_a_positive_prediction_above_the_level() {
        let mut log = BreachLog::new(rules(&[]), Some(0.8), Cooldown::default(), "b", "k");
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
        assert_eq!(alerts[0].id.device_id, "C");
        assert_eq!(alerts[0].id.rule, MAINTENANCE_RULE);
        assert_eq!(alerts[0].condition.kind, AlertKind::Maintenance);
        assert_eq!(alerts[0].breaches.count, 2);
        assert_eq!(alerts[0].breaches.worst_value, "0.9500");
        assert_eq!(alerts[0].condition.model.as_deref(), Some("m1"));
    }

    /// A maintenance alert says why with the reasons of its worst reading.
    #[test]
    fn a_maintenance_alert_keeps_the_reasons_of_its_worst_reading() {
        let mut log = BreachLog::new(rules(&[]), Some(0.8), Cooldown::default(), "b", "k");
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
        assert_eq!(alerts[0].breaches.worst_value, "0.9500");
        assert_eq!(alerts[0].breaches.explanation[0].feature, "vibration_max");
    }
}
