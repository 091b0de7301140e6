//! Inputs the unit tests share: random texts for the tests that feed a
//! decoder or parser thousands of made-up texts to show it never panics
//! (each a random run of fragments chosen to hit the grammar's edges), and
//! the rule sets and readings the alert tests fold.

use std::sync::Arc;

use crate::alerts::rule_set::{RuleSet, ScopedRule};
use crate::telemetry::{Number, Reading, Timestamp, Value};

/// The rule set of `rules` as `FLEETWATCH_ALERT_RULES` writes them, no overrides.
pub fn rule_set(rules: &[&str]) -> Arc<RuleSet> {
    let configured: Vec<ScopedRule> = rules
        .iter()
        .map(|r| r.parse().expect("a test rule parses"))
        .collect();
    Arc::new(RuleSet::new(&configured, &[]))
}

/// A reading of `device` at `minute` (from the epoch) with only `engine_temp_c`.
pub fn temperature_reading(device: &str, minute: i64, temp: &str) -> Reading {
    Reading {
        device_id: device.into(),
        timestamp: Timestamp::from_unix_millis(minute * 60_000),
        fields: vec![(
            "engine_temp_c".into(),
            Value::Number(Number::parse(temp).expect("a test number parses")),
        )],
    }
}

/// `count` texts of up to `max_pieces - 1` fragments each, drawn by a
/// xorshift64 generator from `seed` (deterministic, so a failure repeats).
pub fn fragment_runs<'a>(
    fragments: &'a [&'a str],
    max_pieces: u64,
    count: usize,
    seed: u64,
) -> impl Iterator<Item = String> + 'a {
    let mut state = seed;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count).map(move |_| {
        let mut text = String::new();
        for _ in 0..next() % max_pieces {
            let index = usize::try_from(next() % fragments.len() as u64).unwrap_or(0);
            text.push_str(fragments[index]);
        }
        text
    })
}
