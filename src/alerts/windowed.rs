//! The evaluation of the windowed rules (sustained, rate of change) over one
//! device's readings, in time order, in one pass and with state bounded by
//! the window: an [`Evaluator`] per device and rule, fed `(time, value)`
//! with [`Evaluator::push`], says at each reading whether it breaks the
//! rule. Where the readings come from (the table, or one object in a dry
//! run) is [`super::windowed_scan`]'s business.
//!
//! - **Sustained** (`oil_pressure_kpa < 150 for 5m`): a run is a sequence of
//!   readings that all compare so; a reading that does not ends it, and so
//!   does a gap between two consecutive readings longer than the duration
//!   (nothing is known in between). A reading breaks the rule when its run
//!   has lasted at least the duration (its time minus the run's first
//!   reading's). The state is the run's start and its worst value.
//! - **Rate of change** (`engine_temp_c rises 15 within 10m`): reading b
//!   breaks the rule when an earlier reading a (0 < b − a ≤ within, in
//!   time) has b.v − a.v ≥ amount (`falls`: a.v − b.v ≥ amount). The state
//!   is a monotonic deque of the window's readings (the lowest for `rises`,
//!   the highest for `falls`, at its front): amortised O(1) a reading, at
//!   most the window's readings held. Readings at the same instant are
//!   never compared with one another.
//!
//! Readings must come in time order; one earlier than the device's
//! previous is left out ([`Evaluator::out_of_order`] counts them). A
//! reading without the rule's field is no reading for it: it neither
//! breaks nor ends a run.

use std::collections::VecDeque;

use super::rules::{AlertRule, Comparison, Direction, RuleKind};
use crate::telemetry::Timestamp;

/// What a breach of a windowed rule showed.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    /// The value moved from `from` (at `from_at`) to the breaching value.
    Change {
        /// When the earlier reading was taken.
        from_at: Timestamp,
        /// Its value: the lowest (rises) or highest (falls) in the window.
        from: f64,
    },
    /// The comparison has held since `since`.
    Sustained {
        /// The run's first reading.
        since: Timestamp,
        /// The run's worst value so far (the lowest for `<`, the highest
        /// for `>`).
        worst: f64,
    },
}

/// One reading that broke a windowed rule.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowedBreach {
    /// The breaching reading's time.
    pub at: Timestamp,
    /// Its value.
    pub value: f64,
    /// What made it a breach.
    pub finding: Finding,
}

/// A value for a message: at most six decimals, no trailing zeros
/// (`107`, `0.25`), so float arithmetic shows no `21.999999999999996`.
pub fn format_value(value: f64) -> String {
    let text = format!("{value:.6}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    match text {
        "-0" | "" => "0".to_owned(),
        t => t.to_owned(),
    }
}

impl WindowedBreach {
    /// How bad it is, to pick an alert's worst breach: the change, or how
    /// long the run has lasted (in milliseconds).
    pub fn distance(&self) -> f64 {
        match &self.finding {
            Finding::Change { from, .. } => (self.value - from).abs(),
            Finding::Sustained { since, .. } => {
                (self.at.unix_millis() - since.unix_millis()) as f64
            }
        }
    }
}

/// One windowed rule evaluated over one device's readings.
#[derive(Debug, Clone)]
pub struct Evaluator {
    /// The rule's parameters and its state.
    state: State,
    /// The time of the latest reading pushed.
    last_at: Option<Timestamp>,
    /// Readings left out for coming earlier than the one before.
    out_of_order: u64,
}

#[derive(Debug, Clone)]
enum State {
    Sustained {
        comparison: Comparison,
        /// The duration, in milliseconds.
        duration: i64,
        /// The run so far: its first reading's time and its worst value.
        run: Option<(Timestamp, f64)>,
    },
    Change {
        direction: Direction,
        amount: f64,
        /// The window, in milliseconds.
        within: i64,
        /// Readings strictly before the latest instant, within the window,
        /// each better placed (lower for rises) than those before it.
        window: VecDeque<(Timestamp, f64)>,
        /// Readings at the latest instant: not yet comparable with the
        /// next ones at the same instant, only with later ones.
        now: Vec<(Timestamp, f64)>,
    },
}

impl Evaluator {
    /// The evaluator of a windowed rule; `None` for a threshold.
    pub fn new(rule: &AlertRule) -> Option<Evaluator> {
        let state = match &rule.kind {
            RuleKind::Threshold(_) => return None,
            RuleKind::Sustained {
                comparison,
                duration,
            } => State::Sustained {
                comparison: comparison.clone(),
                duration: duration.millis(),
                run: None,
            },
            RuleKind::Change {
                direction,
                amount,
                within,
            } => State::Change {
                direction: *direction,
                amount: amount.as_f64(),
                within: within.millis(),
                window: VecDeque::new(),
                now: Vec::new(),
            },
        };
        Some(Evaluator {
            state,
            last_at: None,
            out_of_order: 0,
        })
    }

    /// Readings left out for coming earlier than the one before.
    pub fn out_of_order(&self) -> u64 {
        self.out_of_order
    }

    /// The next reading of the device's field; the breach, if it is one.
    pub fn push(&mut self, at: Timestamp, value: f64) -> Option<WindowedBreach> {
        let previous = self.last_at;
        if previous.is_some_and(|p| at < p) {
            self.out_of_order += 1;
            return None;
        }
        self.last_at = Some(at);
        match &mut self.state {
            State::Sustained {
                comparison,
                duration,
                run,
            } => {
                let gap = previous.map_or(0, |p| at.unix_millis() - p.unix_millis());
                if gap > *duration || !comparison.holds(value) {
                    *run = None;
                }
                if !comparison.holds(value) {
                    return None;
                }
                let (since, worst) = run.get_or_insert((at, value));
                if comparison.severity_distance(value) > comparison.severity_distance(*worst) {
                    *worst = value;
                }
                (at.unix_millis() - since.unix_millis() >= *duration).then_some(WindowedBreach {
                    at,
                    value,
                    finding: Finding::Sustained {
                        since: *since,
                        worst: *worst,
                    },
                })
            }
            State::Change {
                direction,
                amount,
                within,
                window,
                now,
            } => {
                // Rises compares with the lowest earlier value, falls with
                // the highest: `better(x, y)` when x is the one to keep.
                let better = |x: f64, y: f64| match direction {
                    Direction::Rises => x <= y,
                    Direction::Falls => x >= y,
                };
                if now.first().is_some_and(|(t, _)| *t < at) {
                    for (t, v) in now.drain(..) {
                        while window.back().is_some_and(|&(_, w)| better(v, w)) {
                            window.pop_back();
                        }
                        window.push_back((t, v));
                    }
                }
                while window
                    .front()
                    .is_some_and(|(t, _)| at.unix_millis() - t.unix_millis() > *within)
                {
                    window.pop_front();
                }
                now.push((at, value));
                let &(from_at, from) = window.front()?;
                let change = match direction {
                    Direction::Rises => value - from,
                    Direction::Falls => from - value,
                };
                // Decimal readings in binary floats: 0.3 − 0.1 is a hair
                // under 0.2, and still a change of 0.2.
                let slack = 4.0 * f64::EPSILON * value.abs().max(from.abs()).max(*amount);
                (change >= *amount - slack).then_some(WindowedBreach {
                    at,
                    value,
                    finding: Finding::Change { from_at, from },
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1000;
    const MIN: i64 = 60 * S;

    fn evaluate(rule: &str, samples: &[(i64, f64)]) -> Vec<WindowedBreach> {
        let rule: AlertRule = rule.parse().unwrap();
        let mut e = Evaluator::new(&rule).unwrap();
        samples
            .iter()
            .filter_map(|&(ms, v)| e.push(Timestamp::from_unix_millis(ms), v))
            .collect()
    }

    /// The breaching readings' times, in seconds.
    fn at(breaches: &[WindowedBreach]) -> Vec<i64> {
        breaches.iter().map(|b| b.at.unix_millis() / S).collect()
    }

    #[test]
    fn values_print_short() {
        assert_eq!(format_value(107.0), "107");
        assert_eq!(format_value(107.1 - 85.1), "22");
        assert_eq!(format_value(-0.25), "-0.25");
        assert_eq!(format_value(-0.0000001), "0");
    }

    #[test]
    fn a_threshold_has_no_evaluator() {
        assert!(Evaluator::new(&"x > 1".parse().unwrap()).is_none());
    }

    #[test]
    fn a_rise_within_the_window_breaks_the_rule() {
        // +15 exactly at exactly 10 minutes: both edges are included.
        let b = evaluate(
            "t rises 15 within 10m",
            &[(0, 85.0), (5 * MIN, 90.0), (10 * MIN, 100.0)],
        );
        assert_eq!(at(&b), [600]);
        assert_eq!(
            b[0].finding,
            Finding::Change {
                from_at: Timestamp::from_unix_millis(0),
                from: 85.0
            }
        );
        assert_eq!(b[0].distance(), 15.0);
        // One millisecond too late, or a hair too little: no breach.
        assert!(evaluate("t rises 15 within 10m", &[(0, 85.0), (10 * MIN + 1, 100.0)]).is_empty());
        assert!(evaluate("t rises 15 within 10m", &[(0, 85.0), (MIN, 99.99)]).is_empty());
    }

    #[test]
    fn a_rise_compares_with_the_lowest_reading_of_the_window() {
        let b = evaluate(
            "t rises 15 within 10m",
            &[
                (0, 80.0), // leaves the window before 11m
                (2 * MIN, 90.0),
                (4 * MIN, 86.0), // the lowest in the window at 11m
                (6 * MIN, 94.0),
                (11 * MIN, 101.0),
                (12 * MIN, 102.0),
            ],
        );
        assert_eq!(at(&b), [660, 720]);
        assert_eq!(
            b[0].finding,
            Finding::Change {
                from_at: Timestamp::from_unix_millis(4 * MIN),
                from: 86.0
            }
        );
    }

    #[test]
    fn a_fall_is_a_rise_the_other_way() {
        let b = evaluate(
            "p falls 20 within 5m",
            &[
                (0, 300.0),
                (MIN, 310.0),
                (3 * MIN, 295.0),
                (6 * MIN, 289.0),
                (7 * MIN, 270.0),
            ],
        );
        // At 6m the 310 of 1m is 5m back: 21 down. At 7m, 295 (3m) → 270.
        assert_eq!(at(&b), [360, 420]);
        assert_eq!(b[0].distance(), 21.0);
        assert!(evaluate("p falls 20 within 5m", &[(0, 300.0), (MIN, 330.0)]).is_empty());
    }

    #[test]
    fn readings_at_the_same_instant_are_not_compared() {
        let b = evaluate(
            "t rises 10 within 1m",
            &[(0, 50.0), (0, 70.0), (S, 55.0), (S, 65.0)],
        );
        // 70 at 0 is compared with nothing; 65 at 1s with 50 at 0.
        assert_eq!(at(&b), [1]);
        assert_eq!(b[0].value, 65.0);
    }

    #[test]
    fn decimal_changes_are_not_lost_to_float_rounding() {
        let b = evaluate("v rises 0.2 within 1m", &[(0, 0.1), (S, 0.3)]);
        assert_eq!(at(&b), [1]);
    }

    #[test]
    fn a_sustained_run_breaks_the_rule_once_it_lasted_the_duration() {
        // Low from 1m on, one reading a minute; 5m reached at 6m.
        let samples: Vec<(i64, f64)> = (0..9)
            .map(|m| (m * MIN, if m == 0 { 200.0 } else { 140.0 - m as f64 }))
            .collect();
        let b = evaluate("p < 150 for 5m", &samples);
        assert_eq!(at(&b), [360, 420, 480]);
        assert_eq!(
            b[2].finding,
            Finding::Sustained {
                since: Timestamp::from_unix_millis(MIN),
                worst: 132.0
            }
        );
        assert_eq!(b[2].distance(), (7 * MIN) as f64);
    }

    #[test]
    fn one_good_reading_breaks_a_run() {
        // Low every minute but good at 4m: the runs are 0–3m and 5–8m.
        let samples: Vec<(i64, f64)> = (0..9)
            .map(|m| (m * MIN, if m == 4 { 200.0 } else { 100.0 }))
            .collect();
        assert!(evaluate("p < 150 for 4m", &samples).is_empty());
        assert_eq!(at(&evaluate("p < 150 for 3m", &samples)), [180, 480]);
    }

    #[test]
    fn a_gap_longer_than_the_duration_ends_a_run() {
        // Exactly the duration apart: still the run.
        assert_eq!(
            at(&evaluate("p < 150 for 5m", &[(0, 100.0), (5 * MIN, 100.0)])),
            [300]
        );
        // Longer: nothing is known in between; the run starts again.
        let b = evaluate(
            "p < 150 for 5m",
            &[
                (0, 100.0),
                (5 * MIN + 1, 100.0),
                (9 * MIN, 100.0),
                (10 * MIN + 1, 100.0),
            ],
        );
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].at, Timestamp::from_unix_millis(10 * MIN + 1));
        assert!(
            matches!(b[0].finding, Finding::Sustained { since, .. } if since.unix_millis() == 5 * MIN + 1)
        );
    }

    #[test]
    fn readings_out_of_order_are_left_out_and_counted() {
        let rule: AlertRule = "p < 150 for 1m".parse().unwrap();
        let mut e = Evaluator::new(&rule).unwrap();
        assert!(e.push(Timestamp::from_unix_millis(MIN), 100.0).is_none());
        assert!(e.push(Timestamp::from_unix_millis(0), 100.0).is_none());
        assert_eq!(e.out_of_order(), 1);
        assert!(
            e.push(Timestamp::from_unix_millis(2 * MIN), 100.0)
                .is_some()
        );
    }

    /// The deque holds no more than the window's readings.
    #[test]
    fn state_stays_within_the_window() {
        let rule: AlertRule = "t rises 1000 within 1m".parse().unwrap();
        let mut e = Evaluator::new(&rule).unwrap();
        for i in 0..100_000i64 {
            // A slow climb: every reading stays a candidate until it leaves.
            e.push(Timestamp::from_unix_millis(i * S), i as f64);
        }
        let State::Change { window, .. } = &e.state else {
            panic!()
        };
        assert!(window.len() <= 61, "{}", window.len());
    }
}
