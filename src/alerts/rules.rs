//! Safety rules and their evaluation on readings. A rule looks at one
//! numeric field and is one of three kinds:
//! - a threshold, `engine_temp_c > 100`: each reading that compares so;
//! - sustained, `oil_pressure_kpa < 150 for 5m`: the comparison held on
//!   every reading of the device for at least the duration;
//! - a rate of change, `engine_temp_c rises 15 within 10m` (or `falls`):
//!   the value moved by at least the amount from an earlier reading of the
//!   device at most the duration before.
//!
//! A threshold is decided by one reading ([`AlertRule::breach`]); the two
//! windowed kinds need the device's readings around it, and are evaluated by
//! [`super::windowed`].

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::telemetry::{Number, Reading, Value};

/// The shortest window a windowed rule may have.
pub const MIN_WINDOW: Duration = Duration::from_secs(1);
/// The longest window a windowed rule may have: evaluating it reads the
/// device's readings this far around each object (see the README's cost).
pub const MAX_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// A safety rule: the field it looks at and what of it breaks the rule.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    /// The numeric field the rule reads (`engine_temp_c`).
    pub field: String,
    /// What the readings of the field must show to break the rule.
    pub kind: RuleKind,
}

/// The three kinds of rule.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    /// Each reading that compares so breaks the rule.
    Threshold(Comparison),
    /// The comparison held on every reading for at least `duration`.
    Sustained {
        /// What each reading of the run must compare as.
        comparison: Comparison,
        /// How long the run must have lasted.
        duration: Window,
    },
    /// The value moved by at least `amount` within `within`.
    Change {
        /// Up (`rises`) or down (`falls`).
        direction: Direction,
        /// How much it must move: positive and finite.
        amount: Number,
        /// How far apart the two readings may be.
        within: Window,
    },
}

/// A comparison between a reading's value and a fixed threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// How the value is compared.
    pub op: Op,
    /// The threshold, as written (`100`, not `100.0`) and as a number.
    pub threshold: Number,
}

/// A rule's duration, as written (`5m`) and as a [`Duration`].
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// The duration, from [`MIN_WINDOW`] to [`MAX_WINDOW`].
    pub duration: Duration,
    /// As written, for the rule's text (its alarm's identity).
    text: String,
}

impl Window {
    /// The duration as written (`5m`).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The duration in milliseconds.
    pub fn millis(&self) -> i64 {
        i64::try_from(self.duration.as_millis()).unwrap_or(i64::MAX)
    }
}

/// Which way a rate-of-change rule looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Rises,
    Falls,
}

impl Direction {
    /// As written in a rule.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Rises => "rises",
            Direction::Falls => "falls",
        }
    }

    /// As written in an alert (`rose`, `fell`).
    pub fn past_tense(self) -> &'static str {
        match self {
            Direction::Rises => "rose",
            Direction::Falls => "fell",
        }
    }
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

impl Comparison {
    /// Whether `value` compares so.
    pub fn holds(&self, value: f64) -> bool {
        self.op.holds(value, self.threshold.as_f64())
    }

    /// How far `value` is past the threshold; the larger, the worse.
    pub fn severity_distance(&self, value: f64) -> f64 {
        let threshold = self.threshold.as_f64();
        match self.op {
            Op::Gt | Op::Ge => value - threshold,
            Op::Lt | Op::Le => threshold - value,
            Op::Eq | Op::Ne => (value - threshold).abs(),
        }
    }
}

/// The forms a rule can take, quoted by every parse error.
const EXPECTED: &str = "expected `field op number` (e.g. `engine_temp_c > 100`), \
`field op number for DURATION` (e.g. `oil_pressure_kpa < 150 for 5m`) or \
`field rises|falls AMOUNT within DURATION` (e.g. `engine_temp_c rises 15 within 10m`), \
with op one of > >= < <= == != and DURATION from 1s to 24h like 30s, 5m or 2h";

/// Why a rule could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{rule:?} is not a rule: {why}; {EXPECTED}")]
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
        let words: Vec<&str> = s.split_whitespace().collect();
        // `field rises|falls AMOUNT within DURATION`
        if let Some(at) = words.iter().position(|w| matches!(*w, "rises" | "falls")) {
            let direction = if words[at] == "rises" {
                Direction::Rises
            } else {
                Direction::Falls
            };
            let [field, _, amount, within, duration @ ..] = words.as_slice() else {
                return Err(err(
                    "a rate of change needs an amount and `within DURATION`",
                ));
            };
            if at != 1 {
                return Err(err("the field must be a name of letters, digits and _"));
            }
            if *within != "within" || duration.is_empty() {
                return Err(err(
                    "a rate of change needs `within DURATION` after the amount",
                ));
            }
            let amount = Number::parse(amount)
                .filter(|n| n.as_f64() > 0.0)
                .ok_or_else(|| err("the amount must be a positive finite number"))?;
            return Ok(AlertRule {
                field: parse_field(field).ok_or_else(|| err(FIELD))?,
                kind: RuleKind::Change {
                    direction,
                    amount,
                    within: parse_window(&duration.join(" ")).ok_or_else(|| err(DURATION))?,
                },
            });
        }
        // `field op number [for DURATION]`
        let (comparison, duration) = match words.iter().position(|w| *w == "for") {
            Some(at) if at + 1 == words.len() => return Err(err("`for` needs a duration")),
            Some(at) => (words[..at].join(" "), Some(words[at + 1..].join(" "))),
            None => (s.trim().to_owned(), None),
        };
        let (field, comparison) = parse_comparison(&comparison).map_err(err)?;
        let kind = match duration {
            None => RuleKind::Threshold(comparison),
            Some(d) => RuleKind::Sustained {
                comparison,
                duration: parse_window(&d).ok_or_else(|| err(DURATION))?,
            },
        };
        Ok(AlertRule { field, kind })
    }
}

const FIELD: &str = "the field must be a name of letters, digits and _";
const DURATION: &str = "the duration must be from 1s to 24h, like 30s, 5m or 2h";

fn parse_field(field: &str) -> Option<String> {
    let valid = !field.is_empty()
        && field.len() <= 255
        && field
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    valid.then(|| field.to_owned())
}

/// `engine_temp_c > 100`, spaces around the operator optional.
fn parse_comparison(s: &str) -> Result<(String, Comparison), &'static str> {
    // Find the operator: the first run of comparison characters.
    let start = s.find(['<', '>', '=', '!']).ok_or("no operator")?;
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
        _ => return Err("unknown operator"),
    };
    let field = parse_field(s[..start].trim()).ok_or(FIELD)?;
    let threshold =
        Number::parse(s[end..].trim()).ok_or("the threshold must be a finite number")?;
    Ok((field, Comparison { op, threshold }))
}

/// A duration of the settings' form (one parser: [`crate::config::parse_duration`]),
/// from [`MIN_WINDOW`] to [`MAX_WINDOW`]; kept as written.
fn parse_window(s: &str) -> Option<Window> {
    let duration = crate::config::parse_duration(s).ok()?;
    (MIN_WINDOW..=MAX_WINDOW)
        .contains(&duration)
        .then(|| Window {
            duration,
            text: s.trim().to_owned(),
        })
}

impl fmt::Display for AlertRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = &self.field;
        match &self.kind {
            RuleKind::Threshold(c) => {
                write!(f, "{field} {} {}", c.op.as_str(), c.threshold.as_str())
            }
            RuleKind::Sustained {
                comparison: c,
                duration,
            } => write!(
                f,
                "{field} {} {} for {}",
                c.op.as_str(),
                c.threshold.as_str(),
                duration.as_str()
            ),
            RuleKind::Change {
                direction,
                amount,
                within,
            } => write!(
                f,
                "{field} {} {} within {}",
                direction.as_str(),
                amount.as_str(),
                within.as_str()
            ),
        }
    }
}

impl AlertRule {
    /// The window a windowed rule looks over; `None` for a threshold.
    pub fn window(&self) -> Option<&Window> {
        match &self.kind {
            RuleKind::Threshold(_) => None,
            RuleKind::Sustained { duration, .. } => Some(duration),
            RuleKind::Change { within, .. } => Some(within),
        }
    }

    /// The offending value when `reading` breaks this threshold rule. A
    /// reading without the field (or with a non-numeric value) never breaks
    /// it; nor does any single reading break a windowed rule (see
    /// [`super::windowed`]).
    pub fn breach<'r>(&self, reading: &'r Reading) -> Option<&'r Number> {
        let RuleKind::Threshold(comparison) = &self.kind else {
            return None;
        };
        match reading.field(&self.field) {
            Some(Value::Number(n)) if comparison.holds(n.as_f64()) => Some(n),
            _ => None,
        }
    }

    /// How far `value` is past a threshold rule's threshold; the larger,
    /// the worse (0 for windowed rules, whose breaches carry their own).
    pub fn severity_distance(&self, value: f64) -> f64 {
        match &self.kind {
            RuleKind::Threshold(c) => c.severity_distance(value),
            _ => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Timestamp;

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

    fn threshold(rule: &AlertRule) -> &Comparison {
        match &rule.kind {
            RuleKind::Threshold(c) => c,
            other => panic!("not a threshold: {other:?}"),
        }
    }

    #[test]
    fn parses_and_prints() {
        let r: AlertRule = "engine_temp_c > 100".parse().unwrap();
        assert_eq!(r.field, "engine_temp_c");
        assert_eq!(threshold(&r).op, Op::Gt);
        assert_eq!(threshold(&r).threshold.as_f64(), 100.0);
        assert_eq!(r.to_string(), "engine_temp_c > 100");
        assert!(r.window().is_none());
        let r: AlertRule = "battery_voltage<=11.5".parse().unwrap();
        assert_eq!(r.to_string(), "battery_voltage <= 11.5");
        let r: AlertRule = "gps_latitude != -1e2".parse().unwrap();
        assert_eq!(threshold(&r).threshold.as_f64(), -100.0);
    }

    #[test]
    fn parses_and_prints_sustained_rules() {
        let r: AlertRule = "oil_pressure_kpa < 150 for 5m".parse().unwrap();
        let RuleKind::Sustained {
            comparison,
            duration,
        } = &r.kind
        else {
            panic!("{r:?}")
        };
        assert_eq!(
            (comparison.op, comparison.threshold.as_str()),
            (Op::Lt, "150")
        );
        assert_eq!(duration.duration, Duration::from_secs(300));
        assert_eq!(r.window().map(Window::millis), Some(300_000));
        assert_eq!(r.to_string(), "oil_pressure_kpa < 150 for 5m");
        // Spacing is normalised; the duration and numbers stay as written.
        let r: AlertRule = "  oil_pressure_kpa<150   for  90s ".parse().unwrap();
        assert_eq!(r.to_string(), "oil_pressure_kpa < 150 for 90s");
        assert_eq!(r.to_string().parse::<AlertRule>().unwrap(), r);
        let r: AlertRule = "engine_temp_c >= 1.05e2 for 2h".parse().unwrap();
        assert_eq!(r.to_string(), "engine_temp_c >= 1.05e2 for 2h");
    }

    #[test]
    fn parses_and_prints_rates_of_change() {
        let r: AlertRule = "engine_temp_c rises 15 within 10m".parse().unwrap();
        let RuleKind::Change {
            direction,
            amount,
            within,
        } = &r.kind
        else {
            panic!("{r:?}")
        };
        assert_eq!(*direction, Direction::Rises);
        assert_eq!(amount.as_f64(), 15.0);
        assert_eq!(within.duration, Duration::from_secs(600));
        assert_eq!(r.to_string(), "engine_temp_c rises 15 within 10m");
        let r: AlertRule = "oil_pressure_kpa falls 20.5 within 30s".parse().unwrap();
        assert!(matches!(
            r.kind,
            RuleKind::Change {
                direction: Direction::Falls,
                ..
            }
        ));
        assert_eq!(r.to_string(), "oil_pressure_kpa falls 20.5 within 30s");
        assert_eq!(r.to_string().parse::<AlertRule>().unwrap(), r);
        assert_eq!(r.window().map(Window::millis), Some(30_000));
        // The bounds are included.
        assert!("x rises 1 within 1s".parse::<AlertRule>().is_ok());
        assert!("x rises 1 within 24h".parse::<AlertRule>().is_ok());
    }

    #[test]
    fn no_single_reading_breaks_a_windowed_rule() {
        let r: AlertRule = "engine_temp_c > 100 for 5m".parse().unwrap();
        assert!(r.breach(&reading(Some("200"))).is_none());
        let r: AlertRule = "engine_temp_c rises 1 within 5m".parse().unwrap();
        assert!(r.breach(&reading(Some("200"))).is_none());
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

    /// Each malformed windowed rule is refused with the reason and the
    /// forms a rule can take.
    #[test]
    fn rejects_malformed_windowed_rules_saying_why() {
        for (bad, why) in [
            ("x < 150 for", "`for` needs a duration"),
            ("x < 150 for 0s", "from 1s to 24h"),
            ("x < 150 for 25h", "from 1s to 24h"),
            ("x < 150 for 500ms", "from 1s to 24h"),
            ("x < 150 for five minutes", "from 1s to 24h"),
            ("for 5m", "no operator"),
            ("x for 5m", "no operator"),
            ("x rises 15", "needs an amount and `within DURATION`"),
            ("x rises 15 in 10m", "`within DURATION`"),
            ("x rises 15 within", "`within DURATION`"),
            ("x rises 0 within 10m", "positive finite"),
            ("x falls -5 within 10m", "positive finite"),
            ("x rises NaN within 10m", "positive finite"),
            ("x rises 5 within 2d", "from 1s to 24h"),
            ("x y rises 5 within 2m", "the field must be"),
            ("rises 5 within 2m now", "the field must be"),
            ("x-y rises 5 within 2m", "the field must be"),
        ] {
            let e = bad.parse::<AlertRule>().unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(e.contains(&format!("{bad:?}")), "names the rule: {e}");
            assert!(
                e.contains("`field rises|falls AMOUNT within DURATION`")
                    && e.contains("`field op number for DURATION`"),
                "{e}"
            );
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
