//! What the worker knows of each dependency's health, shared by every
//! message task: whether S3, DynamoDB, SNS or the inference backend is
//! failing right now, and since when.
//!
//! Two decisions rest on it. `/readyz` names the dependencies that are
//! failing. And a message whose step keeps failing is held (retried in
//! place, its visibility extended) while the dependency fails for
//! everyone — an outage costs time, not receive counts — but released for
//! redelivery, towards the dead-letter queue, when the same dependency
//! keeps serving other messages meanwhile: then the message itself is the
//! problem (see [`crate::retry`]).

use std::collections::BTreeMap;
use std::sync::Mutex;

use tokio::time::Instant;

use crate::failure::Dependency;
use crate::metrics;

#[derive(Debug, Default, Clone, Copy)]
struct State {
    /// The last call that succeeded.
    last_success: Option<Instant>,
    /// The first failure since the last success: `Some` while failing.
    failing_since: Option<Instant>,
}

/// Health of every dependency; cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct DependencyHealth {
    states: Mutex<BTreeMap<Dependency, State>>,
}

impl DependencyHealth {
    /// A call to `dependency` succeeded.
    pub fn success(&self, dependency: Dependency) {
        self.update(dependency, |s| {
            s.last_success = Some(Instant::now());
            s.failing_since = None;
        });
    }

    /// A call to `dependency` failed in a way that may pass (not a refusal
    /// of one input, not contention).
    pub fn failure(&self, dependency: Dependency) {
        self.update(dependency, |s| {
            s.failing_since.get_or_insert_with(Instant::now);
        });
    }

    /// Whether `dependency` served any call after `since`.
    pub fn succeeded_since(&self, dependency: Dependency, since: Instant) -> bool {
        self.state(dependency)
            .last_success
            .is_some_and(|at| at > since)
    }

    /// The dependencies failing now, by name.
    pub fn failing(&self) -> Vec<&'static str> {
        self.states
            .lock()
            .map(|states| {
                states
                    .iter()
                    .filter(|(_, s)| s.failing_since.is_some())
                    .map(|(d, _)| d.as_str())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn state(&self, dependency: Dependency) -> State {
        self.states
            .lock()
            .ok()
            .and_then(|states| states.get(&dependency).copied())
            .unwrap_or_default()
    }

    fn update(&self, dependency: Dependency, f: impl FnOnce(&mut State)) {
        if let Ok(mut states) = self.states.lock() {
            let state = states.entry(dependency).or_default();
            f(state);
            metrics::dependency_failing(dependency.as_str(), state.failing_since.is_some());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn failing_until_a_success() {
        let h = DependencyHealth::default();
        assert!(h.failing().is_empty());
        let start = Instant::now();
        h.failure(Dependency::Sns);
        h.failure(Dependency::DynamoDb);
        assert_eq!(h.failing(), ["dynamodb", "sns"]);
        assert!(!h.succeeded_since(Dependency::Sns, start));
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        h.success(Dependency::Sns);
        assert_eq!(h.failing(), ["dynamodb"]);
        assert!(h.succeeded_since(Dependency::Sns, start));
        assert!(!h.succeeded_since(Dependency::Sns, Instant::now()));
    }
}
