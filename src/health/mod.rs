//! The worker's HTTP face: `/metrics` (Prometheus text), `/healthz` (the
//! worker is making progress: see [`crate::liveness`]) and `/readyz` (AWS
//! clients built, the SQS loop running and its last receive succeeded).
//!
//! [`readiness`] is the state the endpoints report, [`server`] serves
//! them, and [`client`] is the `healthcheck` probe that asks them. The
//! recorder `/metrics` renders is installed by [`crate::metrics::recorder`].

pub mod client;
pub mod readiness;
pub mod server;

pub use crate::metrics::recorder::install as install_metrics;
pub use client::{ProbeError, probe};
pub use readiness::Health;
pub use server::{bind, serve};
