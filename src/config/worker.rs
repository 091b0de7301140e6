//! `fleetwatch worker`'s settings, and the pipeline's that it shares with
//! `fleetwatch process`: each a flattened group declared once.

use clap::Args;

use super::alerts::AlertSettings;
use super::inference::InferenceSettings;
use super::limits::LimitSettings;
use super::processing::ProcessingSettings;
use super::queue::QueueSettings;
use super::s3::S3AddressingSettings;
use super::server::ServerSettings;
use super::storage::{StorageSettings, TableSettings};
use super::timeouts::TimeoutSettings;

/// Settings of `fleetwatch worker`: the queue and the worker's own server
/// and shutdown, over the [`PipelineSettings`] it shares with `process`.
#[derive(Debug, Clone, Args)]
pub struct WorkerSettings {
    /// The queue to long-poll.
    #[command(flatten)]
    pub queue: QueueSettings,

    /// The metrics/health server and the shutdown grace.
    #[command(flatten)]
    pub server: ServerSettings,

    /// Every setting of the pipeline (parsers, model, table, alerts, limits).
    #[command(flatten)]
    pub pipeline: PipelineSettings,
}

/// The settings of an object's way through the pipeline, the same for the
/// worker and for `fleetwatch process` (same flags, same `FLEETWATCH_*`
/// variables), so a backfill parses, predicts, stores and alerts exactly as
/// the worker does.
#[derive(Debug, Clone, Args)]
pub struct PipelineSettings {
    /// The readings table.
    #[command(flatten)]
    pub table: TableSettings,

    /// How readings are written.
    #[command(flatten)]
    pub storage: StorageSettings,

    /// Concurrency and the message lease.
    #[command(flatten)]
    pub processing: ProcessingSettings,

    /// The prediction backend.
    #[command(flatten)]
    pub inference: InferenceSettings,

    /// Alerts and their rules.
    #[command(flatten)]
    pub alerts: AlertSettings,

    /// The alarms' table and lifecycle timings.
    #[command(flatten)]
    pub alarms: super::AlarmSettings,

    /// Bounds on the input, and the quarantine.
    #[command(flatten)]
    pub limits: LimitSettings,

    /// S3 addressing.
    #[command(flatten)]
    pub s3: S3AddressingSettings,

    /// Timeouts on AWS and on the worker's own progress.
    #[command(flatten)]
    pub timeouts: TimeoutSettings,
}

impl PipelineSettings {
    /// Checks the settings that depend on each other.
    pub fn validate(&self) -> Result<(), String> {
        self.inference.validate()
    }
}
