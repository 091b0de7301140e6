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
}

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

fn parse_sweep_interval(s: &str) -> Result<Duration, String> {
    parse_duration_in(
        s,
        "FLEETWATCH_ALARM_SWEEP_INTERVAL",
        Duration::from_millis(100),
        Duration::from_secs(3600),
        "100ms to 1h",
    )
}
