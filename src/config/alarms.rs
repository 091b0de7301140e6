//! The alarm settings group: the table that holds alarms and the alert ledger,
//! and the timings of the alarms' lifecycle. Flattened into the worker's
//! (and `process`'s) settings, `bootstrap` and `fleetwatch alarms`.

use std::time::Duration;

use clap::Args;

use super::parse_duration;

/// The alarm table's name, shared by every command that touches it.
#[derive(Debug, Clone, Args)]
pub struct AlarmTableSetting {
    /// DynamoDB table for alarms, their history and the alert ledger (kept
    /// apart from the readings so scans and exports of readings see readings only).
    #[arg(long, env = "FLEETWATCH_ALARM_TABLE", default_value = "fleetwatch-alarms", value_parser = parse_alarm_table)]
    pub alarm_table: String,
}

/// The worker's alarm settings.
#[derive(Debug, Clone, Args)]
pub struct AlarmSettings {
    /// The alarm table.
    #[command(flatten)]
    pub table: AlarmTableSetting,

    /// An open alarm whose rule has not been broken for this long (by the
    /// workers' clock) closes by itself (NORMAL) with one "resolved" notification.
    #[arg(long, env = "FLEETWATCH_ALARM_AUTO_CLOSE", default_value = "1h", value_parser = parse_auto_close)]
    pub alarm_auto_close: Duration,

    /// How often each worker looks for alarms to close and resolutions to
    /// announce; a resolution is announced at most this long after it is due.
    #[arg(long, env = "FLEETWATCH_ALARM_SWEEP_INTERVAL", default_value = "30s", value_parser = parse_sweep_interval)]
    pub alarm_sweep_interval: Duration,
}

fn parse_alarm_table(s: &str) -> Result<String, String> {
    let ok = (3..=255).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(s.to_owned())
    } else {
        Err("FLEETWATCH_ALARM_TABLE: expected a DynamoDB table name, 3-255 characters of A-Z a-z 0-9 _ . -".into())
    }
}

fn parse_auto_close(s: &str) -> Result<Duration, String> {
    in_range(
        s,
        "FLEETWATCH_ALARM_AUTO_CLOSE",
        Duration::from_secs(1),
        Duration::from_secs(30 * 24 * 3600),
        "1s to 30 days (720h)",
    )
}

fn parse_sweep_interval(s: &str) -> Result<Duration, String> {
    in_range(
        s,
        "FLEETWATCH_ALARM_SWEEP_INTERVAL",
        Duration::from_millis(100),
        Duration::from_secs(3600),
        "100ms to 1h",
    )
}

fn in_range(
    s: &str,
    name: &str,
    min: Duration,
    max: Duration,
    range: &str,
) -> Result<Duration, String> {
    let d = parse_duration(s).map_err(|e| format!("{name}: {e}"))?;
    if (min..=max).contains(&d) {
        Ok(d)
    } else {
        Err(format!("{name}: expected a duration from {range}"))
    }
}
