//! The settings of the operator tools `history` and `status`.

use std::time::Duration;

use clap::{Args, ValueEnum};

use super::queue::QueueSettings;
use super::storage::TableSettings;
use super::values::parse_duration;

/// Settings of `fleetwatch history`.
#[derive(Debug, Clone, Args)]
pub struct HistorySettings {
    /// The vehicle (its `device_id`).
    #[arg(value_parser = parse_device_id)]
    pub device: String,

    /// The readings table (the worker's `FLEETWATCH_TABLE`).
    #[command(flatten)]
    pub table: TableSettings,

    /// The alarm table, which holds the alert ledger `--summary` lists.
    #[command(flatten)]
    pub alarms: super::AlarmTableSetting,

    /// Readings of the last period only (e.g. `2h`, `7d`), up to now and
    /// beyond (readings stamped ahead of the clock are included).
    #[arg(long, value_parser = parse_duration, conflicts_with_all = ["from", "to"])]
    pub since: Option<Duration>,

    /// Readings at or after this time (RFC 3339, `YYYY-MM-DD HH:MM[:SS]` UTC, or epoch seconds).
    #[arg(long, value_parser = parse_time_bound)]
    pub from: Option<crate::telemetry::Timestamp>,

    /// Readings at or before this time (same forms as `--from`).
    #[arg(long, value_parser = parse_time_bound)]
    pub to: Option<crate::telemetry::Timestamp>,

    /// At most this many readings, the most recent ones, printed oldest
    /// first; `all` for every reading of the range.
    #[arg(long, default_value = "100", value_parser = parse_limit)]
    pub limit: Limit,

    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,

    /// Print per field count, min, max and mean, the share of POSITIVE
    /// predictions and the alerts raised for the vehicle in the range,
    /// instead of the readings.
    #[arg(long)]
    pub summary: bool,
}

/// Settings of `fleetwatch status`.
#[derive(Debug, Clone, Args)]
pub struct StatusSettings {
    /// The worker's queue (the worker's `FLEETWATCH_QUEUE_URL`); its
    /// dead-letter queue is found from its redrive policy.
    #[command(flatten)]
    pub queue: QueueSettings,

    /// The readings table (the worker's `FLEETWATCH_TABLE`).
    #[command(flatten)]
    pub table: TableSettings,

    /// The worker's metrics server (e.g. `http://10.0.1.5:9090`): its
    /// `/metrics` and `/readyz` are shown too.
    #[arg(long, value_parser = parse_http_url)]
    pub metrics_url: Option<String>,

    /// Vehicles whose last POSITIVE prediction or last alert is this recent
    /// (in the readings' own time, against the clock) are listed.
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub recent: Duration,

    /// List every vehicle the worker has seen, not only the recent ones.
    #[arg(long)]
    pub all: bool,

    /// Output format (`csv` prints the vehicles only).
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

/// How an operator tool prints its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for a terminal.
    Table,
    /// One JSON document per line (for jq).
    Json,
    /// CSV with a header row.
    Csv,
}

/// `--limit`: a count, or every reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    All,
    Most(usize),
}

fn parse_limit(s: &str) -> Result<Limit, String> {
    match s.trim() {
        "all" => Ok(Limit::All),
        other => match other.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(Limit::Most(n)),
            _ => Err("--limit: expected a number of readings (at least 1) or `all`".into()),
        },
    }
}

/// A device id as the parsers accept it: 1-128 characters of
/// `[A-Za-z0-9_.:-]` (so never one of the `alert#`/`fleet#` key spaces).
fn parse_device_id(s: &str) -> Result<String, String> {
    let ok = (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b));
    if ok {
        Ok(s.to_owned())
    } else {
        Err("DEVICE: expected a device id, 1-128 characters of A-Z a-z 0-9 _ . : -".into())
    }
}

fn parse_time_bound(s: &str) -> Result<crate::telemetry::Timestamp, String> {
    crate::telemetry::parse_timestamp(s.trim()).map_err(|_| {
        format!("expected a time like 2025-10-19T22:00:00Z or `2025-10-19 22:00`, got {s:?}")
    })
}

fn parse_http_url(s: &str) -> Result<String, String> {
    if (s.starts_with("http://") || s.starts_with("https://")) && s.len() > 8 {
        Ok(s.trim_end_matches('/').to_owned())
    } else {
        Err(
            "--metrics-url: expected the worker's metrics server, like http://127.0.0.1:9090"
                .into(),
        )
    }
}
