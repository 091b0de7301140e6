//! Rendering an alert: the SNS subject, the text for email (and the
//! `default` protocol), the JSON document for SQS and Lambda subscribers
//! and the message attributes filter policies match on. Nothing here
//! decides whether an alert is sent.

use serde_json::json;

use super::{Alert, AlertKind};

/// `Fleet alert: VHC002 engine_temp_c 124 > 100`: SNS subjects must be ASCII,
/// without line breaks, under 100 characters.
pub fn subject(alert: &Alert) -> String {
    let (id, c, b) = (&alert.id, &alert.condition, &alert.breaches);
    let raw = match c.kind {
        AlertKind::Safety => format!(
            "Fleet alert: {} {} {} {} {}",
            id.device_id,
            c.field,
            b.worst_value,
            c.op.as_str(),
            c.threshold
        ),
        AlertKind::Maintenance => format!(
            "Fleet alert: {} maintenance predicted (score {})",
            id.device_id, b.worst_value
        ),
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
    let (id, c, b) = (&alert.id, &alert.condition, &alert.breaches);
    let what = match c.kind {
        AlertKind::Safety => format!(
            "Vehicle {} broke the safety rule `{}`: worst value {} at {}.",
            id.device_id, id.rule, b.worst_value, b.worst_at
        ),
        AlertKind::Maintenance => format!(
            "Vehicle {} is predicted to need maintenance (model {}, score {} at {}).",
            id.device_id,
            c.model.as_deref().unwrap_or("unknown"),
            b.worst_value,
            b.worst_at
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

/// The JSON document SQS and Lambda subscribers receive.
pub fn machine_json(alert: &Alert) -> serde_json::Value {
    let (id, c, b) = (&alert.id, &alert.condition, &alert.breaches);
    json!({
        "type": "fleetwatch.alert",
        "kind": c.kind.as_str(),
        "severity": c.kind.severity(),
        "device_id": id.device_id,
        "rule": id.rule,
        "field": c.field,
        "threshold": c.threshold,
        "breaches": b.count,
        "first_timestamp": b.first.to_string(),
        "last_timestamp": b.last.to_string(),
        "worst_value": b.worst_value,
        "worst_timestamp": b.worst_at.to_string(),
        "model": c.model,
        "window_start": id.window_start.to_string(),
        "source": { "bucket": alert.source.bucket, "key": alert.source.key },
    })
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
    use crate::alerts::rules::Op;
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
                op: Op::Gt,
                threshold: "100".into(),
                model: None,
            },
            breaches: Breaches {
                count: 1,
                first: at,
                last: at,
                worst_value: "124".into(),
                worst_at: at,
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
    }
}
