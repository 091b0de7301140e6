//! fleetwatch: vehicle-fleet telemetry monitoring and predictive
//! maintenance on AWS.
//!
//! Data flows one way through one module per stage:
//! [`worker`] (the SQS loop) → [`notification`] (which objects a message
//! names) → [`object_reader`] (S3 bytes to lines) → [`telemetry`] (lines to
//! readings; [`key_ledger`] tells repeats within an object) →
//! [`inference`] (readings to predictions) → [`storage`]
//! (DynamoDB) → [`alerts`] (SNS), each alert gated by its alarm in
//! [`alarms`] (the lifecycle per vehicle and rule). [`pipeline`] drives one object through
//! the stages, each call to a dependency held and retried by [`retry`]
//! (errors classified by [`failure`], dependency health in
//! [`dependencies`]); [`app`] builds the worker and the pipeline from the
//! settings and runs the `fleetwatch worker` process;
//! [`metrics`], [`health`] and [`liveness`] are how the worker is observed
//! ([`log_text`] quotes untrusted text in its logs);
//! [`config`] is the command line, one settings group per file; [`ops`] holds the operator tools
//! (`process`, `history`, `status`, `dlq`, `alarms`) and [`fleet_status`] the
//! per-vehicle records `status` reads; `simulate` (behind the `simulate`
//! cargo feature, off by default) generates realistic fleet data for demos,
//! benchmarks and model training.

pub mod alarms;
pub mod alerts;
pub mod app;
pub mod aws;
pub mod backoff;
pub mod bootstrap;
pub mod config;
pub mod dependencies;
pub mod failure;
pub mod fleet_status;
pub mod health;
pub mod inference;
pub mod key_ledger;
pub mod liveness;
pub mod log_text;
pub mod metrics;
pub mod notification;
pub mod object_reader;
pub mod ops;
pub mod pipeline;
pub mod preflight;
pub mod quarantine;
pub mod retry;
#[cfg(feature = "simulate")]
pub mod simulate;
pub mod storage;
pub mod telemetry;
#[cfg(test)]
mod test_input;
pub mod worker;
