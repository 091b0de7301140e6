//! Safety rules (`engine_temp_c > 100`) and their evaluation on readings.

use std::fmt;
use std::str::FromStr;

use crate::telemetry::{Reading, Value};

/// A comparison between a reading's numeric field and a fixed threshold.
/// A reading breaks the rule when the comparison holds.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    pub field: String,
    pub op: Op,
    pub threshold: f64,
    /// The threshold as written, for messages (`100`, not `100.0`).
    threshold_text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Gt => value > threshold,
            Op::Ge => value >= threshold,
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
            Op::Eq => value == threshold,
            Op::Ne => value != threshold,
        }
    }
}

/// Why a rule could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{rule:?} is not a rule: {why}; expected `field op number`, e.g. `engine_temp_c > 100`, with op one of > >= < <= == !="
)]
pub struct RuleParseError {
    rule: String,
    why: &'static str,
}

impl FromStr for AlertRule {
    type Err = RuleParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why| RuleParseError {
            rule: s.to_owned(),
            why,
        };
        let s = s.trim();
        // Find the operator: the first run of comparison characters.
        let start = s
            .find(['<', '>', '=', '!'])
            .ok_or_else(|| err("no operator"))?;
        let end = s[start..]
            .find(|c: char| !matches!(c, '<' | '>' | '=' | '!'))
            .map_or(s.len(), |i| start + i);
        let op = match &s[start..end] {
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            "<=" => Op::Le,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            _ => return Err(err("unknown operator")),
        };
        let field = s[..start].trim();
        let valid_field = !field.is_empty()
            && field.len() <= 255
            && field
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid_field {
            return Err(err("the field must be a name of letters, digits and _"));
        }
        let threshold_text = s[end..].trim();
        let threshold = crate::telemetry::Number::parse(threshold_text)
            .ok_or_else(|| err("the threshold must be a finite number"))?;
        Ok(AlertRule {
            field: field.to_owned(),
            op,
            threshold: threshold.as_f64(),
            threshold_text: threshold.as_str().to_owned(),
        })
    }
}

impl fmt::Display for AlertRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.field,
            self.op.as_str(),
            self.threshold_text
        )
    }
}

impl AlertRule {
    /// The threshold as written.
    pub fn threshold_text(&self) -> &str {
        &self.threshold_text
    }

    /// The offending value when `reading` breaks this rule. A reading without
    /// the field (or with a non-numeric value) never breaks it.
    pub fn breach<'r>(&self, reading: &'r Reading) -> Option<&'r crate::telemetry::Number> {
        match reading.field(&self.field) {
            Some(Value::Number(n)) if self.op.holds(n.as_f64(), self.threshold) => Some(n),
            _ => None,
        }
    }

    /// How far `value` is past the threshold; the larger, the worse.
    pub fn severity_distance(&self, value: f64) -> f64 {
        match self.op {
            Op::Gt | Op::Ge => value - self.threshold,
            Op::Lt | Op::Le => self.threshold - value,
            Op::Eq | Op::Ne => (value - self.threshold).abs(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{Number, Timestamp};

    fn reading(temp: Option<&str>) -> Reading {
        Reading {
            device_id: "VHC001".into(),
            timestamp: Timestamp::from_unix_millis(0),
            fields: temp
                .map(|t| {
                    vec![(
                        "engine_temp_c".into(),
                        Value::Number(Number::parse(t).unwrap()),
                    )]
                })
                .unwrap_or_default(),
        }
    }

    #[test]
    fn parses_and_prints() {
        let r: AlertRule = "engine_temp_c > 100".parse().unwrap();
        assert_eq!(r.field, "engine_temp_c");
        assert_eq!(r.op, Op::Gt);
        assert_eq!(r.threshold, 100.0);
        assert_eq!(r.to_string(), "engine_temp_c > 100");
        let r: AlertRule = "battery_voltage<=11.5".parse().unwrap();
        assert_eq!(r.to_string(), "battery_voltage <= 11.5");
        let r: AlertRule = "gps_latitude != -1e2".parse().unwrap();
        assert_eq!(r.threshold, -100.0);
    }

    #[test]
    fn rejects_nonsense() {
        for bad in [
            "engine_temp_c",
            "> 100",
            "engine_temp_c >> 100",
            "x > NaN",
            "x > ",
            "a b > 1",
            "x => 1",
        ] {
            assert!(bad.parse::<AlertRule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn evaluates() {
        let r: AlertRule = "engine_temp_c > 100".parse().unwrap();
        assert_eq!(
            r.breach(&reading(Some("124"))).map(|n| n.as_str()),
            Some("124")
        );
        assert!(r.breach(&reading(Some("100"))).is_none());
        assert!(
            r.breach(&reading(None)).is_none(),
            "an absent field never breaks a rule"
        );
        let r: AlertRule = "engine_temp_c >= 100".parse().unwrap();
        assert!(r.breach(&reading(Some("100"))).is_some());
        assert_eq!(r.severity_distance(124.0), 24.0);
    }
}
