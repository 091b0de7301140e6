//! The readiness state `/readyz` reports: whether the SQS loop runs, its
//! last receive succeeded, and which dependencies are failing; and the
//! progress clock `/healthz` reports on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::dependencies::DependencyHealth;
use crate::liveness::Liveness;

/// Shared readiness state, cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Health {
    inner: Arc<HealthState>,
    /// The progress clock `/healthz` reports on (by default one that never
    /// fails, for code that runs the loop without a health check).
    liveness: Liveness,
}

#[derive(Debug, Default)]
struct HealthState {
    running: AtomicBool,
    receive_failing: AtomicBool,
    /// Which of S3, DynamoDB, SNS and the inference backend are failing.
    dependencies: DependencyHealth,
}

impl Health {
    /// Health whose `/healthz` fails when `liveness` sees no progress.
    pub fn with_liveness(liveness: Liveness) -> Health {
        Health {
            inner: Arc::default(),
            liveness,
        }
    }

    /// The progress clock: the loop and the message tasks feed it.
    pub fn liveness(&self) -> &Liveness {
        &self.liveness
    }

    pub fn set_running(&self, running: bool) {
        self.inner.running.store(running, Ordering::Relaxed);
    }

    pub fn set_receive_ok(&self, ok: bool) {
        self.inner.receive_failing.store(!ok, Ordering::Relaxed);
    }

    /// What the message tasks report of each dependency.
    pub fn dependencies(&self) -> &DependencyHealth {
        &self.inner.dependencies
    }

    /// `Ok` when ready, else why not.
    pub fn readiness(&self) -> Result<(), String> {
        if !self.inner.running.load(Ordering::Relaxed) {
            return Err("not ready: the SQS loop is not running".into());
        }
        if self.inner.receive_failing.load(Ordering::Relaxed) {
            return Err("degraded: receiving from SQS is failing".into());
        }
        let failing = self.inner.dependencies.failing();
        if failing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "degraded: {} failing; messages that need it are held and retried",
                failing.join(", ")
            ))
        }
    }
}
