//! `fleetwatch process`'s settings: what to read, and how; the pipeline's
//! settings are the worker's own.

use std::time::Duration;

use clap::Args;

use super::values::parse_duration;
use super::worker::PipelineSettings;

/// Settings of `fleetwatch process`: what to read, and how; the pipeline's
/// settings are the worker's own.
#[derive(Debug, Clone, Args)]
pub struct ProcessSettings {
    /// What to process: `s3://bucket/prefix` (every object under the
    /// prefix), or local files and globs (`./data/*.jsonl.gz`). Required
    /// (checked when the command runs, so `--print-settings` works alone).
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<String>,

    /// Only S3 objects last modified at or after this: RFC 3339
    /// (`2026-11-30T00:00:00Z`) or a duration back from now (`2h`, `7d`).
    #[arg(long, value_parser = parse_when)]
    pub since: Option<When>,

    /// Only S3 objects last modified before this (same forms as `--since`).
    #[arg(long, value_parser = parse_when)]
    pub until: Option<When>,

    /// Only keys (or paths) matching this glob (`*` crosses `/`); repeatable.
    #[arg(long, value_parser = parse_glob)]
    pub include: Vec<glob::Pattern>,

    /// Skip keys (or paths) matching this glob; repeatable, wins over `--include`.
    #[arg(long, value_parser = parse_glob)]
    pub exclude: Vec<glob::Pattern>,

    /// Publish no alert (reprocess history quietly, e.g. after a model update).
    #[arg(long)]
    pub no_alerts: bool,

    /// Parse, predict and build the items and alerts, but send nothing; print
    /// the counts, the first alerts, readings/s, CPU seconds and peak RSS.
    /// Local files need no AWS access. Nothing is stored, so windowed rules
    /// (`… for 5m`, `… rises 15 within 10m`) see each object alone, in line
    /// order (a reading earlier than its device's previous one is left out
    /// of them).
    #[arg(long)]
    pub dry_run: bool,

    /// Record each finished object in this file (one line each), so an
    /// interrupted run can be resumed with `--resume`.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<std::path::PathBuf>,

    /// Skip the objects the `--checkpoint` file lists as finished.
    #[arg(long, requires = "checkpoint")]
    pub resume: bool,

    /// Seconds between two progress lines when stderr is not a terminal.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub progress_interval: Duration,

    /// The worker's pipeline settings (same flags and variables).
    #[command(flatten)]
    pub pipeline: PipelineSettings,
}

/// A point in time given as `--since`/`--until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// An absolute time, Unix milliseconds.
    At(i64),
    /// This long before the command starts.
    Ago(Duration),
}

impl When {
    /// Unix milliseconds, relative ones counted back from `now_millis`.
    pub fn unix_millis(self, now_millis: i64) -> i64 {
        match self {
            When::At(ms) => ms,
            When::Ago(d) => now_millis - d.as_millis() as i64,
        }
    }
}

fn parse_when(s: &str) -> Result<When, String> {
    // A time has a date (`-`); a duration never does.
    if s.contains('-') {
        return crate::telemetry::parse_timestamp(s)
            .map(|t| When::At(t.unix_millis()))
            .map_err(|_| {
                format!("expected an RFC 3339 time like 2026-11-30T00:00:00Z, got {s:?}")
            });
    }
    parse_duration(s).map(When::Ago).map_err(|_| {
        format!("expected an RFC 3339 time like 2026-11-30T00:00:00Z or a duration back from now like 2h or 7d, got {s:?}")
    })
}

fn parse_glob(s: &str) -> Result<glob::Pattern, String> {
    glob::Pattern::new(s)
        .map_err(|e| format!("expected a glob like `*.jsonl.gz` or `2026/11/*`: {e}"))
}
