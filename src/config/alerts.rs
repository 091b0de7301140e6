//! The alerts' settings: where they go, how often, on which rules, and
//! which predictions raise one.

use std::str::FromStr;
use std::time::Duration;

use clap::Args;

use super::values::parse_duration;
use crate::alerts::rule_set::ScopedRule;

/// Alerts: topic, cooldown, safety rules and the maintenance score.
#[derive(Debug, Clone, Args)]
pub struct AlertSettings {
    /// SNS topic ARN for alerts. When unset, no alerts are published.
    #[arg(long, env = "FLEETWATCH_ALERT_TOPIC_ARN", value_parser = parse_topic_arn)]
    pub alert_topic_arn: Option<String>,

    /// At most one alert per device and rule per window of this length (event
    /// time); also the de-duplication window of the alert ledger.
    #[arg(long, env = "FLEETWATCH_ALERT_COOLDOWN", default_value = "15m", value_parser = parse_cooldown)]
    pub alert_cooldown: Duration,

    /// The safety rules.
    #[command(flatten)]
    pub rules: AlertRulesSetting,

    /// How often each worker reads the rule overrides set with `fleetwatch
    /// rules set` again: an override applies to the objects a worker starts
    /// at most this long after it was set.
    #[arg(long, env = "FLEETWATCH_RULES_REFRESH", default_value = "30s", value_parser = parse_rules_refresh)]
    pub rules_refresh: Duration,

    /// A POSITIVE prediction scoring at least this raises a maintenance
    /// alert: `model` (the model's own decision threshold), `off`, or a
    /// probability from 0 to 1.
    #[arg(long, env = "FLEETWATCH_MAINTENANCE_ALERT_SCORE", default_value = "model", value_parser = parse_maintenance_alert_score)]
    pub maintenance_alert_score: MaintenanceAlertScore,
}

/// The configured safety rules, shared by the worker, `process` and
/// `fleetwatch rules`.
#[derive(Debug, Clone, Args)]
pub struct AlertRulesSetting {
    /// Comma-separated safety rules, each a threshold `field op number` (op:
    /// `>`, `>=`, `<`, `<=`, `==`, `!=`), sustained `field op number for 5m`,
    /// or a rate of change `field rises|falls AMOUNT within 10m` (durations
    /// from 1s to 24h), for every vehicle, or `SCOPE: rule` for some
    /// (a device id, a glob of ids like `TRK-*`, or a group attribute of
    /// the readings like `fleet=north`); `none` for no safety rules.
    /// Operators' overrides (`fleetwatch rules set`) come on top.
    #[arg(long, env = "FLEETWATCH_ALERT_RULES", default_value = "engine_temp_c > 100", value_parser = parse_alert_rules)]
    pub alert_rules: AlertRules,
}

/// The parsed `FLEETWATCH_ALERT_RULES`.
#[derive(Clone, PartialEq)]
pub struct AlertRules(pub Vec<ScopedRule>);

/// `--print-settings` shows the rules as written, not their parts.
impl std::fmt::Debug for AlertRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(ToString::to_string))
            .finish()
    }
}

/// When a prediction raises a maintenance alert.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaintenanceAlertScore {
    /// At the model's decision threshold.
    ModelThreshold,
    Off,
    AtLeast(f64),
}

impl MaintenanceAlertScore {
    /// The minimum score, given the model's threshold (`None`: no alerts).
    pub fn resolve(self, model_threshold: Option<f64>) -> Option<f64> {
        match self {
            MaintenanceAlertScore::ModelThreshold => model_threshold,
            MaintenanceAlertScore::Off => None,
            MaintenanceAlertScore::AtLeast(score) => model_threshold.map(|_| score),
        }
    }
}

fn parse_topic_arn(s: &str) -> Result<String, String> {
    if s.starts_with("arn:") && s.split(':').count() == 6 && s.contains(":sns:") {
        Ok(s.to_owned())
    } else {
        Err("FLEETWATCH_ALERT_TOPIC_ARN: expected an SNS topic ARN like arn:aws:sns:eu-west-1:123456789012:fleetwatch-alerts".into())
    }
}

fn parse_rules_refresh(s: &str) -> Result<Duration, String> {
    super::values::parse_duration_in(
        s,
        "FLEETWATCH_RULES_REFRESH",
        Duration::from_millis(100),
        Duration::from_secs(3600),
        "100ms to 1h",
    )
}

fn parse_cooldown(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s).map_err(|e| format!("FLEETWATCH_ALERT_COOLDOWN: {e}"))?;
    if (Duration::from_secs(1)..=Duration::from_secs(7 * 24 * 3600)).contains(&d) {
        Ok(d)
    } else {
        Err("FLEETWATCH_ALERT_COOLDOWN: expected a duration from 1s to 7 days (168h)".into())
    }
}

/// `none` switches the safety rules off; an empty list is refused rather
/// than silently meaning the same.
fn parse_alert_rules(s: &str) -> Result<AlertRules, String> {
    if s.trim() == "none" {
        return Ok(AlertRules(Vec::new()));
    }
    if s.split(',').all(|p| p.trim().is_empty()) {
        return Err("FLEETWATCH_ALERT_RULES: expected comma-separated rules like `engine_temp_c > 100`, `oil_pressure_kpa < 150 for 5m`, `engine_temp_c rises 15 within 10m` or `TRK-*: engine_temp_c > 105`, or `none`".into());
    }
    let mut rules = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let rule =
            ScopedRule::from_str(part).map_err(|e| format!("FLEETWATCH_ALERT_RULES: {e}"))?;
        rules.push(rule);
    }
    Ok(AlertRules(rules))
}

fn parse_maintenance_alert_score(s: &str) -> Result<MaintenanceAlertScore, String> {
    match s.trim() {
        "model" => Ok(MaintenanceAlertScore::ModelThreshold),
        "off" => Ok(MaintenanceAlertScore::Off),
        other => match other.parse::<f64>() {
            Ok(v) if (0.0..=1.0).contains(&v) => Ok(MaintenanceAlertScore::AtLeast(v)),
            _ => Err("FLEETWATCH_MAINTENANCE_ALERT_SCORE: expected `model`, `off` or a probability from 0 to 1".into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_kind_parses_in_the_list_and_prints_as_written() {
        let rules = parse_alert_rules(
            "engine_temp_c > 100, oil_pressure_kpa < 150 for 5m,engine_temp_c rises 15 within 10m , coolant_c falls 20 within 5m",
        )
        .unwrap();
        assert_eq!(
            format!("{rules:?}"),
            r#"["engine_temp_c > 100", "oil_pressure_kpa < 150 for 5m", "engine_temp_c rises 15 within 10m", "coolant_c falls 20 within 5m"]"#
        );
        let e =
            parse_alert_rules("engine_temp_c > 100, oil_pressure_kpa < 150 for 2d").unwrap_err();
        assert!(
            e.starts_with("FLEETWATCH_ALERT_RULES: \"oil_pressure_kpa < 150 for 2d\""),
            "{e}"
        );
        assert!(e.contains("from 1s to 24h"), "{e}");
    }
}
