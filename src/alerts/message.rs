//! Rendering notifications: the SNS subject, the text for email (and the
//! `default` protocol), the JSON document for SQS and Lambda subscribers
//! and the message attributes filter policies match on, for an alert (with
//! the state of its alarm) and for an alarm's resolution. Nothing here
//! decides whether anything is sent.

use serde_json::json;

use super::alert::Test;
use super::rules::Op;
use super::windowed::{Finding, format_value};
use super::{Alert, AlertKind};
use crate::alarms::{Alarm, State, Transition};
use crate::inference::explanation;
use crate::telemetry::Timestamp;

/// One notification, rendered, as [`super::publisher::AlertPublisher`]
/// sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The SNS subject (email).
    pub subject: String,
    /// The text for email and the `default` protocol.
    pub text: String,
    /// The JSON document for SQS and Lambda.
    pub document: serde_json::Value,
    /// Message attributes (name, value) for filter policies.
    pub attributes: Vec<(&'static str, String)>,
    /// The metrics' `kind` label.
    pub kind: AlertKind,
}

/// Where an alert's alarm stands as the alert is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmStatus {
    /// ACTIVE for every alert sent.
    pub state: State,
    /// `opened`, `reactivated` or `reminder`.
    pub transition: Transition,
    /// The alarm's episode (how many times it has opened).
    pub episode: u64,
}

/// An alert's notification.
pub fn render(alert: &Alert, alarm: Option<AlarmStatus>) -> Message {
    let mut document = machine_json(alert);
    let mut attributes: Vec<(&'static str, String)> = attributes(alert)
        .iter()
        .map(|(k, v)| (*k, (*v).to_owned()))
        .collect();
    let mut text = email_text(alert);
    if let Some(status) = alarm {
        document["alarm"] = json!({
            "state": status.state.as_str(),
            "transition": status.transition.as_str(),
            "episode": status.episode,
        });
        attributes.push(("alarm_state", status.state.as_str().to_owned()));
        attributes.push(("transition", status.transition.as_str().to_owned()));
        text.push_str(&format!(
            "\nAlarm: {} ({}). Acknowledge with `fleetwatch alarms ack {} '{}'`.\n",
            status.state,
            status.transition.as_str(),
            alert.id.device_id,
            alert.id.rule
        ));
    }
    Message {
        subject: subject(alert),
        text,
        document,
        attributes,
        kind: alert.condition.kind,
    }
}

/// The one "resolved" notification of an alarm's episode.
pub fn render_resolution(alarm: &Alarm, episode: u64) -> Message {
    let kind = if alarm.kind == AlertKind::Maintenance.as_str() {
        AlertKind::Maintenance
    } else {
        AlertKind::Safety
    };
    let resolved_at = Timestamp::from_unix_millis(alarm.changed_at_ms);
    let how = if alarm.actor == crate::alarms::store::WORKER_ACTOR {
        "closed by itself (no breach for the auto-close time)".to_owned()
    } else {
        format!("resolved by {}", alarm.actor)
    };
    let note = alarm
        .note
        .as_deref()
        .map(|n| format!(" Note: {n}"))
        .unwrap_or_default();
    let text = format!(
        "Vehicle {}: the alarm on `{}` is {how} at {resolved_at}.{note}\n\nLast breach at {} ({} breaches in this episode).\n",
        alarm.device_id, alarm.rule, alarm.last_breach_event, alarm.breaches
    );
    let transition = if alarm.actor == crate::alarms::store::WORKER_ACTOR {
        Transition::AutoResolved
    } else {
        Transition::Resolved
    };
    let document = json!({
        "type": "fleetwatch.alarm",
        "kind": kind.as_str(),
        "severity": kind.severity(),
        "device_id": alarm.device_id,
        "rule": alarm.rule,
        "alarm": {
            "state": State::Normal.as_str(),
            "transition": transition.as_str(),
            "episode": episode,
            "actor": alarm.actor,
            "note": alarm.note,
        },
        "resolved_at": resolved_at.to_string(),
        "opened_at": Timestamp::from_unix_millis(alarm.opened_at_ms).to_string(),
        "last_breach_timestamp": alarm.last_breach_event,
        "breaches": alarm.breaches,
    });
    let subject: String = format!("Fleet alarm resolved: {} {}", alarm.device_id, alarm.rule)
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(99)
        .collect();
    Message {
        subject,
        text,
        document,
        attributes: vec![
            ("device_id", alarm.device_id.clone()),
            ("rule", alarm.rule.clone()),
            ("severity", kind.severity().to_owned()),
            ("kind", kind.as_str().to_owned()),
            ("alarm_state", State::Normal.as_str().to_owned()),
            ("transition", transition.as_str().to_owned()),
        ],
        kind,
    }
}

/// `Fleet alert: VHC002 engine_temp_c 124 > 100`, `Fleet alert: VHC001
/// engine_temp_c rose 22 within 10m (85 -> 107)`, `Fleet alert: VHC001
/// oil_pressure_kpa < 150 for 5m (for 7m 30s, lowest 121)`: SNS subjects
/// must be ASCII, without line breaks, under 100 characters.
pub fn subject(alert: &Alert) -> String {
    let (id, c, b) = (&alert.id, &alert.condition, &alert.breaches);
    let raw = match (c.kind, &c.test, &b.finding) {
        (AlertKind::Maintenance, ..) => format!(
            "Fleet alert: {} maintenance predicted (score {})",
            id.device_id, b.worst_value
        ),
        (
            _,
            Test::Change {
                direction, within, ..
            },
            Some(Finding::Change { from, .. }),
        ) => {
            format!(
                "Fleet alert: {} {} {} {} within {within} ({} -> {})",
                id.device_id,
                c.field,
                direction.past_tense(),
                format_value((b.worst_value.parse::<f64>().unwrap_or(*from) - from).abs()),
                format_value(*from),
                b.worst_value
            )
        }
        (_, Test::Sustained { op, .. }, Some(Finding::Sustained { since, worst })) => format!(
            "Fleet alert: {} {} (for {}, {} {})",
            id.device_id,
            id.rule,
            format_span(b.worst_at.unix_millis() - since.unix_millis()),
            worst_word(*op),
            format_value(*worst)
        ),
        (_, Test::Compare { op, threshold }, _) => format!(
            "Fleet alert: {} {} {} {} {}",
            id.device_id,
            c.field,
            b.worst_value,
            op.as_str(),
            threshold
        ),
        // A windowed alert without its finding: the rule as written.
        _ => format!("Fleet alert: {} {}", id.device_id, id.rule),
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

/// What a sustained run's worst value is called.
fn worst_word(op: Op) -> &'static str {
    match op {
        Op::Lt | Op::Le => "lowest",
        Op::Gt | Op::Ge => "highest",
        Op::Eq | Op::Ne => "worst",
    }
}

/// A duration for people: `7m 30s`, `2h 5m`, `45s`.
fn format_span(millis: i64) -> String {
    let seconds = millis.max(0) / 1000;
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    let parts: Vec<String> = [(h, "h"), (m, "m"), (s, "s")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if parts.is_empty() {
        "0s".to_owned()
    } else {
        parts.join(" ")
    }
}

/// The human-readable text for email and the `default` protocol.
pub fn email_text(alert: &Alert) -> String {
    let (id, c, b) = (&alert.id, &alert.condition, &alert.breaches);
    // A scoped rule says whose it is, or the operator wonders why this
    // vehicle has a limit the others do not.
    let whose = c
        .scope
        .as_ref()
        .map(|s| format!(" (the rule for {s})"))
        .unwrap_or_default();
    let what = match (c.kind, &b.finding) {
        (AlertKind::Safety, Some(Finding::Change { from_at, from })) => format!(
            "Vehicle {} broke the safety rule `{}`{whose}: {} went from {} at {from_at} to {} at {}.",
            id.device_id,
            id.rule,
            c.field,
            format_value(*from),
            b.worst_value,
            b.worst_at
        ),
        (AlertKind::Safety, Some(Finding::Sustained { since, worst })) => format!(
            "Vehicle {} broke the safety rule `{}`{whose}: it held on every reading from {since} to {} ({}), worst value {}.",
            id.device_id,
            id.rule,
            b.worst_at,
            format_span(b.worst_at.unix_millis() - since.unix_millis()),
            format_value(*worst)
        ),
        (AlertKind::Safety, None) => format!(
            "Vehicle {} broke the safety rule `{}`{whose}: worst value {} at {}.",
            id.device_id, id.rule, b.worst_value, b.worst_at
        ),
        (AlertKind::Maintenance, _) => format!(
            "Vehicle {} is predicted to need maintenance (model {}, score {} at {}).{}",
            id.device_id,
            c.model.as_deref().unwrap_or("unknown"),
            b.worst_value,
            b.worst_at,
            // Why the model thinks so (the worst reading's top feature
            // contributions), when the backend explains.
            explanation::sentence(&b.explanation)
                .map(|why| format!("\n\nWhy (what raised the score most): {why}."))
                .unwrap_or_default()
        ),
    };
    let span = if b.count == 1 {
        "1 reading".to_owned()
    } else {
        format!("{} readings between {} and {}", b.count, b.first, b.last)
    };
    format!(
        "{what}\n\n{span} in s3://{}/{}.\n",
        alert.source.bucket, alert.source.key
    )
}

/// The JSON document SQS and Lambda subscribers receive: the rule's kind
/// and numbers (`rule_kind`, `threshold`, `window`, `amount`) and, for a
/// windowed rule, what its worst breach showed (`change` or `run`).
pub fn machine_json(alert: &Alert) -> serde_json::Value {
    let (id, c, b) = (&alert.id, &alert.condition, &alert.breaches);
    let (threshold, window, amount) = match &c.test {
        Test::Compare { threshold, .. } => (Some(threshold), None, None),
        Test::Sustained {
            threshold,
            duration,
            ..
        } => (Some(threshold), Some(duration), None),
        Test::Change { amount, within, .. } => (None, Some(within), Some(amount)),
    };
    let mut document = json!({
        "type": "fleetwatch.alert",
        "kind": c.kind.as_str(),
        "severity": c.kind.severity(),
        "device_id": id.device_id,
        "rule": id.rule,
        "field": c.field,
        "rule_kind": c.test.kind(),
        "threshold": threshold,
        "window": window,
        "amount": amount,
        "scope": c.scope,
        "breaches": b.count,
        "first_timestamp": b.first.to_string(),
        "last_timestamp": b.last.to_string(),
        "worst_value": b.worst_value,
        "worst_timestamp": b.worst_at.to_string(),
        "model": c.model,
        "reasons": b.explanation.iter().map(|c| json!({
            "feature": c.feature,
            "value": c.value.is_finite().then_some(c.value),
            "contribution": c.contribution,
            "text": explanation::describe(c),
        })).collect::<Vec<_>>(),
        "window_start": id.window_start.to_string(),
        "source": { "bucket": alert.source.bucket, "key": alert.source.key },
    });
    match &b.finding {
        Some(Finding::Change { from_at, from }) => {
            let to = b.worst_value.parse::<f64>().ok();
            document["change"] = json!({
                "from_value": from,
                "from_timestamp": from_at.to_string(),
                "to_value": to,
                "to_timestamp": b.worst_at.to_string(),
                "by": to.map(|to| (to - from).abs()),
            });
        }
        Some(Finding::Sustained { since, worst }) => {
            document["run"] = json!({
                "since": since.to_string(),
                "until": b.worst_at.to_string(),
                "lasted_seconds": (b.worst_at.unix_millis() - since.unix_millis()) as f64 / 1000.0,
                "worst_value": worst,
            });
        }
        None => {}
    }
    document
}

/// The message attributes (name, value) subscribers filter on.
pub fn attributes(alert: &Alert) -> [(&'static str, &str); 4] {
    [
        ("device_id", alert.id.device_id.as_str()),
        ("rule", alert.id.rule.as_str()),
        ("severity", alert.condition.kind.severity()),
        ("kind", alert.condition.kind.as_str()),
    ]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::alerts::rules::AlertRule;
    use crate::alerts::{AlertId, Breaches, Condition, Source};
    use crate::telemetry::Timestamp;

    pub(crate) fn alert() -> Alert {
        let at = Timestamp::from_unix_millis(1_760_914_020_000);
        Alert {
            id: AlertId {
                device_id: "VHC002".into(),
                rule: "engine_temp_c > 100".into(),
                window_start: Timestamp::from_unix_millis(1_760_913_900_000),
            },
            condition: Condition {
                kind: AlertKind::Safety,
                field: "engine_temp_c".into(),
                test: Test::Compare {
                    op: Op::Gt,
                    threshold: "100".into(),
                },
                model: None,
                scope: None,
            },
            breaches: Breaches {
                count: 1,
                first: at,
                last: at,
                worst_value: "124".into(),
                worst_at: at,
                explanation: Vec::new(),
                finding: None,
            },
            source: Source {
                bucket: "b".into(),
                key: "fleet data.txt".into(),
            },
        }
    }

    #[test]
    fn subject_is_short_ascii() {
        assert_eq!(
            subject(&alert()),
            "Fleet alert: VHC002 engine_temp_c 124 > 100"
        );
        let mut long = alert();
        long.id.device_id = "X".repeat(128);
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
        assert_eq!(j["window_start"], "2025-10-19T22:45:00.000Z");
        let status = AlarmStatus {
            state: State::Active,
            transition: Transition::Opened,
            episode: 1,
        };
        let m = render(&a, Some(status));
        assert_eq!(m.document["alarm"]["transition"], "opened");
        assert!(m.attributes.contains(&("transition", "opened".to_owned())));
        assert!(m.attributes.contains(&("alarm_state", "ACTIVE".to_owned())));
    }

    /// A windowed alert says what happened in words and numbers.
    #[test]
    fn windowed_alerts_say_what_happened() {
        let mut a = alert();
        let rule: AlertRule = "engine_temp_c rises 15 within 10m".parse().unwrap();
        a.id.rule = rule.to_string();
        a.condition = Condition::of_rule(&rule);
        a.breaches.worst_value = "107".into();
        let from_at = Timestamp::from_unix_millis(a.breaches.worst_at.unix_millis() - 480_000);
        a.breaches.finding = Some(Finding::Change {
            from_at,
            from: 85.0,
        });
        assert_eq!(
            subject(&a),
            "Fleet alert: VHC002 engine_temp_c rose 22 within 10m (85 -> 107)"
        );
        assert!(
            email_text(&a).contains("engine_temp_c went from 85 at 2025-10-19T22:39:00.000Z to 107 at 2025-10-19T22:47:00.000Z"),
            "{}",
            email_text(&a)
        );
        let j = machine_json(&a);
        assert_eq!(j["rule_kind"], "rises");
        assert_eq!(j["amount"], "15");
        assert_eq!(j["window"], "10m");
        assert_eq!(j["threshold"], serde_json::Value::Null);
        assert_eq!(j["change"]["by"], 22.0);
        assert_eq!(j["change"]["from_timestamp"], "2025-10-19T22:39:00.000Z");

        let rule: AlertRule = "oil_pressure_kpa < 150 for 5m".parse().unwrap();
        a.id.rule = rule.to_string();
        a.condition = Condition::of_rule(&rule);
        a.breaches.worst_value = "130".into();
        let since = Timestamp::from_unix_millis(a.breaches.worst_at.unix_millis() - 450_000);
        a.breaches.finding = Some(Finding::Sustained {
            since,
            worst: 121.0,
        });
        assert_eq!(
            subject(&a),
            "Fleet alert: VHC002 oil_pressure_kpa < 150 for 5m (for 7m 30s, lowest 121)"
        );
        let j = machine_json(&a);
        assert_eq!(j["rule_kind"], "sustained");
        assert_eq!(j["threshold"], "150");
        assert_eq!(j["window"], "5m");
        assert_eq!(j["run"]["lasted_seconds"], 450.0);
        assert_eq!(j["run"]["worst_value"], 121.0);
        assert_eq!(machine_json(&alert())["rule_kind"], "threshold");
        assert_eq!(format_span(7_200_000 + 5_000), "2h 5s");
    }

    /// A scoped rule's alert says whose rule it is, so an operator is not
    /// left wondering why this vehicle alerts below the fleet's limit.
    #[test]
    fn a_scoped_rules_alert_names_its_scope() {
        let mut a = alert();
        assert!(machine_json(&a)["scope"].is_null());
        a.id.rule = "engine_temp_c > 95".into();
        a.condition.test = Test::Compare {
            op: Op::Gt,
            threshold: "95".into(),
        };
        a.condition.scope = Some("VHC002".into());
        assert!(
            email_text(&a).contains(
                "broke the safety rule `engine_temp_c > 95` (the rule for VHC002): worst value 124"
            ),
            "{}",
            email_text(&a)
        );
        assert_eq!(machine_json(&a)["scope"], "VHC002");
    }

    /// A maintenance alert says why the model flagged the vehicle, in
    /// words (email) and as data (JSON).
    #[test]
    fn a_maintenance_alert_says_why() {
        let mut a = alert();
        a.condition.kind = AlertKind::Maintenance;
        a.condition.model = Some("fleetwatch-xgb-v1".into());
        a.breaches.worst_value = "0.9712".into();
        assert!(!email_text(&a).contains("Why"));
        a.breaches.explanation = vec![
            explanation::Contribution {
                feature: "oil_kpa_per_krpm",
                value: 46.2,
                contribution: 1.5,
            },
            explanation::Contribution {
                feature: "engine_temp_c",
                value: f32::NAN,
                contribution: 0.25,
            },
        ];
        let text = email_text(&a);
        assert!(
            text.contains(
                "Why (what raised the score most): oil pressure 46 kPa per 1,000 rpm (at 2,000 rpm: 92 kPa); engine temperature not reported."
            ),
            "{text}"
        );
        let reasons = &machine_json(&a)["reasons"];
        assert_eq!(reasons[0]["feature"], "oil_kpa_per_krpm");
        assert_eq!(reasons[1]["value"], serde_json::Value::Null);
        assert!(
            reasons[0]["text"]
                .as_str()
                .is_some_and(|t| t.contains("oil pressure"))
        );
    }
}
