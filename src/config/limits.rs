//! What input the pipeline accepts, and where it puts what it rejects.

use std::time::Duration;

use clap::Args;

use super::values::{parse_bounded, parse_duration};

/// Bounds on lines, objects and readings; the quarantine of rejected lines.
#[derive(Debug, Clone, Args)]
pub struct LimitSettings {
    /// Longest accepted line, in bytes; longer lines are rejected, never buffered.
    #[arg(long, env = "FLEETWATCH_MAX_LINE_BYTES", default_value_t = 64 * 1024, value_parser = parse_max_line_bytes)]
    pub max_line_bytes: usize,

    /// Largest object accepted, in bytes, as stored and after decompression.
    #[arg(long, env = "FLEETWATCH_MAX_OBJECT_BYTES", default_value_t = 1 << 30, value_parser = parse_max_object_bytes)]
    pub max_object_bytes: u64,

    /// Most readings accepted from one object.
    #[arg(long, env = "FLEETWATCH_MAX_RECORDS", default_value_t = 5_000_000, value_parser = parse_max_records)]
    pub max_records: u64,

    /// Largest decompressed/compressed size ratio of a gzip object (a gzip
    /// bomb is refused, not expanded).
    #[arg(long, env = "FLEETWATCH_MAX_GZIP_RATIO", default_value_t = 100, value_parser = parse_gzip_ratio)]
    pub max_gzip_ratio: u64,

    /// Readings stamped further than this ahead of the clock are rejected.
    #[arg(long, env = "FLEETWATCH_MAX_FUTURE_SKEW", default_value = "24h", value_parser = parse_duration)]
    pub max_future_skew: Duration,

    /// Write rejected lines, with their reasons, to `<prefix><key>.rejected.jsonl`
    /// in the object's bucket. Objects under the prefix are never processed.
    #[arg(long, env = "FLEETWATCH_QUARANTINE_PREFIX", value_parser = parse_quarantine_prefix)]
    pub quarantine_prefix: Option<String>,
}

fn parse_max_line_bytes(s: &str) -> Result<usize, String> {
    parse_bounded(s, 256, 16 * 1024 * 1024, "FLEETWATCH_MAX_LINE_BYTES")
}

fn parse_max_object_bytes(s: &str) -> Result<u64, String> {
    parse_bounded(s, 1024, usize::MAX, "FLEETWATCH_MAX_OBJECT_BYTES").map(|n| n as u64)
}

fn parse_max_records(s: &str) -> Result<u64, String> {
    parse_bounded(s, 1, usize::MAX, "FLEETWATCH_MAX_RECORDS").map(|n| n as u64)
}

fn parse_gzip_ratio(s: &str) -> Result<u64, String> {
    parse_bounded(s, 2, 100_000, "FLEETWATCH_MAX_GZIP_RATIO").map(|n| n as u64)
}

/// Never empty: an empty prefix would make every key a quarantine key (an
/// empty FLEETWATCH_QUARANTINE_PREFIX is unset, see the module documentation).
fn parse_quarantine_prefix(s: &str) -> Result<String, String> {
    if s.is_empty() || s.starts_with('/') || s.len() > 512 {
        Err("FLEETWATCH_QUARANTINE_PREFIX: expected a key prefix such as `quarantine/` (no leading /); leave it unset for no quarantine".into())
    } else {
        Ok(s.to_owned())
    }
}
