//! `fleetwatch simulate`'s settings (the `simulate` feature).

use std::time::Duration;

use clap::Args;

use super::s3::S3AddressingSettings;
use super::values::{parse_duration, parse_probability};

/// Settings of `fleetwatch simulate`.
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("destination").required(true).multiple(true).args(["out", "upload"])))]
pub struct SimulateSettings {
    /// Vehicles in the fleet.
    #[arg(long, default_value_t = 10)]
    pub vehicles: u32,
    /// Simulated hours.
    #[arg(long, default_value_t = 24.0)]
    pub hours: f64,
    /// Time between two readings of a running vehicle.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub interval: Duration,
    /// One file per vehicle per window of this length (as vehicles upload).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub window: Duration,
    /// Random seed: the same seed gives the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// File format.
    #[arg(long, value_enum, default_value_t = crate::simulate::SimFormat::JsonLines)]
    pub format: crate::simulate::SimFormat,
    /// Gzip every file.
    #[arg(long)]
    pub gzip: bool,
    /// Fraction of vehicles that develop a failure.
    #[arg(long, default_value_t = 0.3, value_parser = parse_probability)]
    pub failure_rate: f64,
    /// Start of the simulated period: RFC 3339, or `now` (the current hour).
    #[arg(long, default_value = "2025-10-19T00:00:00Z")]
    pub start: String,
    /// Write the files and ground_truth.json under this directory.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// Upload the files to s3://bucket/prefix.
    #[arg(long)]
    pub upload: Option<String>,
    /// Uploads in flight.
    #[arg(long, default_value_t = 16)]
    pub upload_concurrency: usize,
    /// S3 addressing.
    #[command(flatten)]
    pub s3: S3AddressingSettings,
}
