//! The readings table (`FLEETWATCH_TABLE`, shared by every subcommand that
//! touches it) and how the pipeline writes to it.

use std::time::Duration;

use clap::Args;

use super::values::{parse_bounded, parse_duration};

/// The DynamoDB table: the worker, `process`, `history`, `status` and
/// `bootstrap` all name it with the same setting.
#[derive(Debug, Clone, Args)]
pub struct TableSettings {
    /// DynamoDB table for readings (partition key `device_id` S, sort key
    /// `timestamp` S); also the alert ledger's and the fleet status records'.
    #[arg(id = "table", long = "table", value_name = "TABLE", env = "FLEETWATCH_TABLE", default_value = "fleetwatch-readings", value_parser = parse_table_name)]
    pub name: String,
}

/// How the pipeline writes readings.
#[derive(Debug, Clone, Args)]
pub struct StorageSettings {
    /// DynamoDB BatchWriteItem calls in flight per object.
    #[arg(long, env = "FLEETWATCH_DYNAMODB_WRITERS", default_value_t = 4, value_parser = parse_writers)]
    pub dynamodb_writers: usize,

    /// Keep each reading this long after its own timestamp (e.g. `400d`):
    /// its item gets `expires_at` (epoch seconds), the attribute the table's
    /// TTL acts on. Unset: readings never expire.
    #[arg(long, env = "FLEETWATCH_READING_TTL", value_parser = parse_reading_ttl)]
    pub reading_ttl: Option<Duration>,
}

fn parse_table_name(s: &str) -> Result<String, String> {
    super::values::parse_table_name_of(s, "FLEETWATCH_TABLE")
}

fn parse_writers(s: &str) -> Result<usize, String> {
    parse_bounded(s, 1, 64, "FLEETWATCH_DYNAMODB_WRITERS")
}

/// `FLEETWATCH_READING_TTL`: a duration of at least one hour. Zero (or a
/// few seconds) would have DynamoDB delete readings as they are written.
fn parse_reading_ttl(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s).map_err(|e| format!("FLEETWATCH_READING_TTL: {e}"))?;
    if d >= Duration::from_secs(3600) {
        Ok(d)
    } else {
        Err("FLEETWATCH_READING_TTL: expected a retention of at least 1h, like 400d".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_ttls() {
        assert_eq!(
            parse_reading_ttl("400d"),
            Ok(Duration::from_secs(400 * 86_400))
        );
        assert!(parse_reading_ttl("0d").is_err());
        assert!(parse_reading_ttl("soon").is_err());
    }
}
