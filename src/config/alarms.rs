//! The alarm settings group: the table that holds alarms and the alert ledger,
//! and the timings of the alarms' lifecycle. Flattened into the worker's
//! (and `process`'s) settings, `bootstrap` and `fleetwatch alarms`.

use std::time::Duration;

use clap::Args;

use super::values::parse_duration_in;

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

    /// A vehicle that reported within the last day and has sent no reading
    /// for this long (by the readings' event time) raises its `silent`
    /// alarm, evaluated by every sweep; `off` (or `none`) disables it.
    #[arg(long, env = "FLEETWATCH_SILENT_AFTER", default_value = "30m", value_parser = parse_silent_after)]
    pub silent_after: SilentAfter,
}

/// The parsed `FLEETWATCH_SILENT_AFTER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SilentAfter(pub Option<Duration>);

fn parse_alarm_table(s: &str) -> Result<String, String> {
    super::values::parse_table_name_of(s, "FLEETWATCH_ALARM_TABLE")
}

fn parse_auto_close(s: &str) -> Result<Duration, String> {
    parse_duration_in(
        s,
        "FLEETWATCH_ALARM_AUTO_CLOSE",
        Duration::from_secs(1),
        Duration::from_secs(30 * 24 * 3600),
        "1s to 30 days (720h)",
    )
}

/// Up to 23 hours: a vehicle must have reported within the last day
/// ([`crate::alarms::silence::RECENT`]) and then been quiet this long, so a
/// longer threshold could never raise anything.
fn parse_silent_after(s: &str) -> Result<SilentAfter, String> {
    match s.trim() {
        "off" | "none" => Ok(SilentAfter(None)),
        _ => parse_duration_in(
            s,
            "FLEETWATCH_SILENT_AFTER",
            Duration::from_secs(1),
            Duration::from_secs(23 * 3600),
            "1s to 23h, or `off`",
        )
        .map(|d| SilentAfter(Some(d))),
    }
}

fn parse_sweep_interval(s: &str) -> Result<Duration, String> {
    parse_duration_in(
        s,
        "FLEETWATCH_ALARM_SWEEP_INTERVAL",
        Duration::from_millis(100),
        Duration::from_secs(3600),
        "100ms to 1h",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silent_after_is_bounded_or_off() {
        assert_eq!(
            parse_silent_after("30m"),
            Ok(SilentAfter(Some(Duration::from_secs(1800))))
        );
        assert_eq!(parse_silent_after("off"), Ok(SilentAfter(None)));
        assert_eq!(parse_silent_after("none"), Ok(SilentAfter(None)));
        for bad in ["0s", "24h", "soon", ""] {
            let e = parse_silent_after(bad).unwrap_err();
            assert!(e.starts_with("FLEETWATCH_SILENT_AFTER:"), "{bad:?}: {e}");
        }
    }
}
