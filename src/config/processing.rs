//! How much work runs at once and how long each message is leased: the
//! worker's loop and `process` (whose alert ledger claims for as long).

use std::time::Duration;

use clap::Args;

use super::values::{parse_bounded, parse_duration};

/// Concurrency and the message lease.
#[derive(Debug, Clone, Args)]
pub struct ProcessingSettings {
    /// Messages (objects) processed at once. The default suits one vCPU: the
    /// work is mostly waiting on S3 and DynamoDB, not computing.
    #[arg(long, env = "FLEETWATCH_CONCURRENCY", default_value_t = 8, value_parser = parse_concurrency)]
    pub concurrency: usize,

    /// Visibility timeout requested for each received message; it is
    /// extended by this much every third of it while the message is being
    /// processed (also the alert ledger's claim lease).
    #[arg(long, env = "FLEETWATCH_VISIBILITY_TIMEOUT", default_value = "60s", value_parser = parse_visibility_timeout)]
    pub visibility_timeout: Duration,
}

fn parse_concurrency(s: &str) -> Result<usize, String> {
    parse_bounded(s, 1, 256, "FLEETWATCH_CONCURRENCY")
}

fn parse_visibility_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s).map_err(|e| format!("FLEETWATCH_VISIBILITY_TIMEOUT: {e}"))?;
    if (Duration::from_secs(10)..=Duration::from_secs(12 * 3600)).contains(&d) {
        Ok(d)
    } else {
        Err("FLEETWATCH_VISIBILITY_TIMEOUT: expected a duration from 10s to 12h".into())
    }
}
