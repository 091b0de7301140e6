//! The rules in force for the whole worker: the configured ones
//! (`FLEETWATCH_ALERT_RULES`) with the operators' overrides
//! ([`super::rule_store`]) on top, read again every
//! `FLEETWATCH_RULES_REFRESH`. Each object is evaluated with the set that
//! was current when it started ([`RuleBook::current`]), so an object's
//! alerts never mix two versions of a rule.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::rule_set::{RuleSet, ScopedRule};
use super::rule_store::{Loaded, RuleStore};
use crate::alarms::AlarmError;
use crate::metrics;

/// The current rule set, shared by the pipeline (which reads it once per
/// object) and the refresh task (which replaces it). Cloning shares it.
#[derive(Debug, Clone)]
pub struct RuleBook {
    /// `FLEETWATCH_ALERT_RULES`, the base every refresh builds on.
    configured: Arc<[ScopedRule]>,
    /// The set in force; a `watch` so a replacement is one pointer swap
    /// and readers never wait.
    current: Arc<watch::Sender<Arc<RuleSet>>>,
    /// The overrides the current set was built from and the items that
    /// could not be read, to tell a change from a refresh that found the
    /// same (and to log each problem once, not every refresh).
    last: Arc<Mutex<Loaded>>,
}

impl RuleBook {
    /// The configured rules alone (no override read yet).
    pub fn new(configured: Vec<ScopedRule>) -> Self {
        let set = RuleSet::new(&configured, &[]);
        RuleBook {
            configured: configured.into(),
            current: Arc::new(watch::Sender::new(Arc::new(set))),
            last: Arc::new(Mutex::new(Loaded::default())),
        }
    }

    /// The rules in force now.
    pub fn current(&self) -> Arc<RuleSet> {
        self.current.borrow().clone()
    }

    /// The configured rules.
    pub fn configured(&self) -> &[ScopedRule] {
        &self.configured
    }

    /// Puts `loaded` in force if it differs from what is; returns whether
    /// it did. Logs the change, and each unreadable item once.
    pub fn apply(&self, mut loaded: Loaded) -> bool {
        // One item per scope: in scope order, two loads compare as equal.
        loaded.scopes.sort_by(|a, b| a.scope.cmp(&b.scope));
        let mut last = match self.last.lock() {
            Ok(last) => last,
            // A panic elsewhere while holding it leaves a plain value.
            Err(poisoned) => poisoned.into_inner(),
        };
        for why in loaded
            .unreadable
            .iter()
            .filter(|w| !last.unreadable.contains(w))
        {
            tracing::error!(table_item = %why,
                "a stored rule override cannot be read and is ignored; set it again with `fleetwatch rules set`");
        }
        let overrides = loaded.overrides();
        if last.overrides() == overrides {
            last.unreadable = loaded.unreadable;
            return false;
        }
        let set = RuleSet::new(&self.configured, &overrides);
        metrics::rule_overrides(set.overrides());
        tracing::info!(
            scopes = overrides.len(),
            rules = set.overrides(),
            overrides = %loaded.scopes.iter().map(|s| format!("{}: {}", s.scope,
                s.rules.iter().map(ToString::to_string).collect::<Vec<_>>().join(" | ")))
                .collect::<Vec<_>>().join("; "),
            "the alert rule overrides in force changed"
        );
        self.current.send_replace(Arc::new(set));
        *last = loaded;
        true
    }

    /// Reads the overrides and puts them in force; returns whether they changed.
    pub async fn refresh(&self, store: &RuleStore) -> Result<bool, AlarmError> {
        Ok(self.apply(store.load().await?))
    }

    /// Refreshes every `interval` until `shutdown`. A failed read keeps the
    /// rules in force (logged and counted in
    /// `fleetwatch_rule_refresh_errors_total`); the next refresh tries again.
    pub async fn run(self, store: RuleStore, interval: Duration, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
            if let Err(e) = self.refresh(&store).await {
                metrics::rule_refresh_error();
                tracing::warn!(error = %e,
                    "reading the alert rule overrides failed; the rules read before stay in force");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::rule_store::StoredScope;
    use crate::alerts::scope::Scope;

    fn stored(scope: &str, rules: &[&str], at: i64) -> StoredScope {
        StoredScope {
            scope: scope.parse().unwrap(),
            rules: rules.iter().map(|r| r.parse().unwrap()).collect(),
            updated_at_ms: at,
            updated_by: "ana".into(),
            note: None,
        }
    }

    #[test]
    fn a_refresh_that_finds_the_same_overrides_changes_nothing() {
        let book = RuleBook::new(vec!["engine_temp_c > 100".parse().unwrap()]);
        let before = book.current();
        assert!(before.is_uniform());
        let loaded = Loaded {
            scopes: vec![stored("VHC001", &["engine_temp_c > 95"], 1)],
            unreadable: vec![],
        };
        assert!(book.apply(loaded.clone()));
        let after = book.current();
        assert!(!after.is_uniform());
        assert_eq!(after.overrides(), 1);
        // The same again (even re-written later): no new set.
        let mut again = loaded;
        again.scopes[0].updated_at_ms = 2;
        assert!(!book.apply(again));
        assert!(Arc::ptr_eq(&after, &book.current()));
        // Cleared: back to the configured rules.
        assert!(book.apply(Loaded::default()));
        assert!(book.current().is_uniform());
        assert_eq!(book.configured()[0].scope, Scope::All);
    }
}
