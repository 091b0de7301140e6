//! `fleetwatch simulate`: the command-line settings turned into a
//! [`SimConfig`], the fleet written to a directory and/or uploaded to S3.

use std::time::Duration;

use super::upload::{self, S3Target, UploadError};
use super::{SimConfig, SimError};
use crate::aws;
use crate::config::SimulateSettings;

/// Why the command failed, naming the flag when a setting is at fault.
#[derive(Debug, thiserror::Error)]
pub enum SimulateCommandError {
    #[error("--start {value:?}: {reason}; expected RFC 3339 or `now`")]
    Start { value: String, reason: String },
    #[error("--{0}: expected a whole number of seconds, at least 1s")]
    WholeSeconds(&'static str),
    #[error("--upload {value:?}: {reason}")]
    Target { value: String, reason: String },
    #[error(transparent)]
    Simulate(#[from] SimError),
    #[error(transparent)]
    Upload(#[from] UploadError),
}

/// Runs the command.
pub async fn run(settings: SimulateSettings) -> Result<(), SimulateCommandError> {
    let start = if settings.start == "now" {
        // The current hour, so a demo's data looks live on a dashboard.
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        crate::telemetry::Timestamp::from_unix_millis((secs - secs.rem_euclid(3600)) * 1000)
    } else {
        crate::telemetry::parse_timestamp(&settings.start).map_err(|reason| {
            SimulateCommandError::Start {
                value: settings.start.clone(),
                reason: reason.to_string(),
            }
        })?
    };
    let whole_seconds = |d: Duration, name: &'static str| {
        u32::try_from(d.as_secs())
            .ok()
            .filter(|s| *s > 0)
            .ok_or(SimulateCommandError::WholeSeconds(name))
    };
    let cfg = SimConfig {
        vehicles: settings.vehicles,
        hours: settings.hours,
        interval_secs: whole_seconds(settings.interval, "interval")?,
        seed: settings.seed,
        format: settings.format,
        gzip: settings.gzip,
        window_secs: whole_seconds(settings.window, "window")?,
        start_unix_secs: start.unix_millis().div_euclid(1000),
        failure_rate: settings.failure_rate,
    };
    cfg.validate()?;
    let started = std::time::Instant::now();
    if let Some(dir) = &settings.out {
        let summary = super::write_to_dir(&cfg, dir)?;
        tracing::info!(
            dir = %dir.display(), files = summary.files, readings = summary.readings, bytes = summary.bytes,
            seconds = started.elapsed().as_secs_f64(), "wrote the fleet and ground_truth.json"
        );
    }
    if let Some(target) = &settings.upload {
        let target: S3Target =
            target
                .parse()
                .map_err(|e: String| SimulateCommandError::Target {
                    value: target.clone(),
                    reason: e.to_string(),
                })?;
        let sdk = aws::load().await;
        let clients = aws::Clients::new(&sdk, settings.s3.path_style());
        let summary =
            upload::upload(&clients.s3, &cfg, &target, settings.upload_concurrency).await?;
        tracing::info!(
            bucket = %target.bucket, prefix = %target.prefix, files = summary.files, readings = summary.readings,
            bytes = summary.bytes, seconds = started.elapsed().as_secs_f64(), "uploaded the fleet"
        );
    }
    Ok(())
}
