//! `fleetwatch healthcheck`'s settings.

use std::time::Duration;

use clap::Args;

use super::values::parse_duration;

/// Settings of `fleetwatch healthcheck`.
#[derive(Debug, Clone, Args)]
pub struct HealthcheckSettings {
    /// URL to probe.
    #[arg(long, default_value = "http://127.0.0.1:9090/healthz")]
    pub url: String,
    /// Give up after this long.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub timeout: Duration,
}
