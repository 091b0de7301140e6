//! Where the windowed rules' readings come from: the readings table, read
//! back around each object's readings, so a windowed rule gives the same
//! alerts however a vehicle's readings are split into files and in
//! whatever order (or at the same moment) the files are processed.
//!
//! Per object, [`WindowedScan`] keeps each device's span (earliest and
//! latest event time) of the readings the object STORED. At the object's
//! end (and earlier, once it tracks more than [`MAX_DEVICES`] devices, so
//! memory stays bounded) it reads each device's readings back from the
//! table with one strongly consistent `Query` (paged, at most
//! [`QUERIES_IN_FLIGHT`] devices at once), from `min − 2·W` to `max + 2·W`
//! (W: the longest window among the windowed rules), only the timestamp and
//! the rules' fields, and runs the [`Evaluator`]s over it in one streaming
//! pass. It reports the breaches at readings from `min` to `max + 2·W`:
//! every breach whose evidence holds one of this object's readings. A rise
//! at b depends on readings in [b − W, b]; a sustained breach at r on the
//! readings of its run from the last one at least the duration D before r,
//! all within (r − 2·D, r] (each gap is at most D). So a breach that
//! depends on a reading at t of this object lies in [t, t + 2·W), and what
//! decides it lies within 2·W before it. (A report range of `max + W`
//! would miss a sustained breach at p + 1.5·D that needs this object's
//! reading p and two readings of another file.) The breaches fold into the
//! [`BreachLog`] like a threshold's: one alert per device, rule and
//! cooldown window, and the ledger makes two objects that both see a
//! breach one alert.
//!
//! **Why this holds under concurrency.** Each object queries after its own
//! readings are stored, and the queries are strongly consistent (a read
//! sees every write that returned before it). Of the objects whose readings
//! a breach depends on, the one that queries last sees all of them stored,
//! and its ranges cover the breach: every breach is found by at least one
//! object, whatever the order or overlap of their processing.
//!
//! **What it cannot do.** A rate of change only gains breaches as readings
//! arrive, but a sustained run can be broken by a reading that arrives
//! later: a run seen while a file holding a good reading in its middle has
//! not been processed yet alerts on what is stored, and the alert is not
//! taken back. Files that each hold a contiguous span, delivered in or out
//! of order, never show such a run.
//!
//! The read-back is a held step: while DynamoDB fails it is retried in
//! place (from the device's start: the evaluators restart), so no alert is
//! lost. Its cost is one `Query` per device per object (more pages for long
//! series), reading the object's readings again plus 4·W of context;
//! nothing at all when no windowed rule is configured.
//!
//! A dry run (`process --dry-run`) stores nothing, so there each object is
//! evaluated alone, its readings in the order they come: a reading earlier
//! than its device's previous one is left out of the windowed rules (and
//! counted in a warning).

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::stream::{self, StreamExt};

use super::BreachLog;
use super::rule_set::RuleSet;
use super::windowed::Evaluator;
use crate::fleet_status::MAX_DEVICES;
use crate::retry::{self, Attempt};
use crate::storage::{ReadingStore, StoreError};
use crate::telemetry::{Reading, Timestamp};

/// Devices read back at once per object.
pub const QUERIES_IN_FLIGHT: usize = 16;

/// The windowed rules of one object, and what it has shown of them so far.
#[derive(Debug)]
pub struct WindowedScan {
    /// The object's rule set (the [`BreachLog`]'s).
    rules: Arc<RuleSet>,
    /// The windowed rules: each one's index in the [`RuleSet`] and the
    /// index of its field in `fields`.
    windowed: Vec<(usize, usize)>,
    /// The fields the windowed rules read, each once: the read-back's
    /// projection.
    fields: Vec<String>,
    /// 2·W in milliseconds: how far around a device's span the table is
    /// read and breaches are reported.
    reach: i64,
    /// The windowed rules that apply to the vehicles seen, by
    /// [`RuleSet::cache_key`] (unused when every vehicle gets them all).
    applicable: HashMap<String, Applying>,
    /// Every windowed rule, for every vehicle.
    every: Applying,
    /// Read back from the table, or evaluate the object alone.
    how: How,
}

/// The windowed rules that apply to a vehicle: each one's position in
/// [`WindowedScan::windowed`] and the scope it was set for (quoted in the
/// alert; `None` for every vehicle).
type Applying = Arc<[(usize, Option<String>)]>;

/// One device's stored readings in the object.
#[derive(Debug)]
struct Span {
    /// The earliest reading's time.
    min: Timestamp,
    /// The latest reading's time.
    max: Timestamp,
    /// The windowed rules that apply to it (as its first reading showed).
    rules: Applying,
}

#[derive(Debug)]
enum How {
    /// The object's readings are stored: track each device's span of
    /// them, read back at the end.
    ReadBack {
        /// Each device's span.
        spans: HashMap<String, Span>,
    },
    /// Nothing is stored (a dry run): evaluate the readings as they come.
    InObject {
        /// Each device's applicable windowed rules (position, scope) and
        /// their evaluators.
        devices: HashMap<String, (Applying, Vec<Evaluator>)>,
        /// Readings left out for coming before their device's previous one
        /// (of evaluators already dropped past [`MAX_DEVICES`]).
        out_of_order: u64,
    },
}

impl WindowedScan {
    /// The scan of the object's `rules`; `None` when none is windowed.
    /// `read_back`: the object's readings are stored, and read back to be
    /// evaluated.
    pub fn new(rules: Arc<RuleSet>, read_back: bool) -> Option<WindowedScan> {
        let mut fields: Vec<String> = Vec::new();
        let mut windowed = Vec::new();
        let mut longest = 0;
        for (index, entry) in rules.entries().iter().enumerate() {
            let rule = &entry.rule;
            let Some(window) = rule.window() else {
                continue;
            };
            longest = longest.max(window.millis());
            let field = match fields.iter().position(|f| *f == rule.field) {
                Some(i) => i,
                None => {
                    fields.push(rule.field.clone());
                    fields.len() - 1
                }
            };
            windowed.push((index, field));
        }
        if windowed.is_empty() {
            return None;
        }
        let how = if read_back {
            How::ReadBack {
                spans: HashMap::new(),
            }
        } else {
            How::InObject {
                devices: HashMap::new(),
                out_of_order: 0,
            }
        };
        Some(WindowedScan {
            every: (0..windowed.len()).map(|p| (p, None)).collect(),
            rules,
            windowed,
            fields,
            reach: 2 * longest,
            applicable: HashMap::new(),
            how,
        })
    }

    /// The windowed rules that apply to `reading`'s vehicle.
    fn applying(&mut self, reading: &Reading) -> Applying {
        if self.rules.is_uniform() {
            return self.every.clone();
        }
        let key = self.rules.cache_key(reading);
        if let Some(found) = self.applicable.get(&key) {
            return found.clone();
        }
        let applicable = self.rules.applicable(reading);
        let found: Applying = self
            .windowed
            .iter()
            .enumerate()
            .filter(|(_, (index, _))| applicable.contains(index))
            .map(|(position, (index, _))| {
                let scope = self.rules.scope_of(reading, *index);
                (position, scope.map(ToString::to_string))
            })
            .collect();
        self.applicable.insert(key, found.clone());
        found
    }

    /// Evaluators for the windowed rules at `positions`.
    fn evaluators(&self, applying: &Applying) -> Vec<Evaluator> {
        applying
            .iter()
            .filter_map(|(position, _)| {
                let (index, _) = self.windowed[*position];
                Evaluator::new(&self.rules.entries()[index].rule)
            })
            .collect()
    }

    /// One reading of the object, stored (or, in a dry run, built); in a
    /// dry run its breaches go to `breaches` at once.
    pub fn stored(&mut self, reading: &Reading, breaches: &mut BreachLog) {
        let at = reading.timestamp;
        let known = match &self.how {
            How::ReadBack { spans } => spans.contains_key(&reading.device_id),
            How::InObject { devices, .. } => devices.contains_key(&reading.device_id),
        };
        let applying = (!known).then(|| self.applying(reading));
        let fresh = applying.as_ref().map(|a| self.evaluators(a));
        match &mut self.how {
            How::ReadBack { spans } => match (spans.get_mut(&reading.device_id), applying) {
                (Some(span), _) => {
                    span.min = span.min.min(at);
                    span.max = span.max.max(at);
                }
                (None, Some(rules)) => {
                    spans.insert(
                        reading.device_id.clone(),
                        Span {
                            min: at,
                            max: at,
                            rules,
                        },
                    );
                }
                (None, None) => {}
            },
            How::InObject {
                devices,
                out_of_order,
            } => {
                if !known && devices.len() >= MAX_DEVICES {
                    // Bounded memory: the windows restart.
                    *out_of_order += devices
                        .values()
                        .flat_map(|(_, e)| e)
                        .map(Evaluator::out_of_order)
                        .sum::<u64>();
                    devices.clear();
                }
                if let (Some(applying), Some(fresh)) = (applying, fresh) {
                    devices.insert(reading.device_id.clone(), (applying, fresh));
                }
                let Some((applying, evaluators)) = devices.get_mut(&reading.device_id) else {
                    return;
                };
                for ((position, scope), evaluator) in applying.iter().zip(evaluators) {
                    let (index, _) = self.windowed[*position];
                    let field = &self.rules.entries()[index].rule.field;
                    if let Some(value) = reading.number(field)
                        && let Some(breach) = evaluator.push(at, value)
                    {
                        breaches.record_windowed(
                            &reading.device_id,
                            index,
                            scope.as_deref(),
                            &breach,
                        );
                    }
                }
            }
        }
    }

    /// Whether to [`evaluate`](WindowedScan::evaluate) now rather than at
    /// the object's end: the spans tracked reached [`MAX_DEVICES`].
    pub fn is_full(&self) -> bool {
        match &self.how {
            How::ReadBack { spans } => spans.len() >= MAX_DEVICES,
            How::InObject { .. } => false,
        }
    }

    /// Reads back the devices tracked so far and folds their breaches into
    /// `breaches`, then starts afresh; a held step (see the module comment).
    /// In a dry run, only warns about readings left out.
    pub async fn evaluate(
        &mut self,
        store: &ReadingStore,
        attempt: Attempt<'_>,
        breaches: &mut BreachLog,
    ) -> Result<(), StoreError> {
        let spans = match &mut self.how {
            How::ReadBack { spans } => std::mem::take(spans),
            How::InObject {
                devices,
                out_of_order,
            } => {
                let left_out = *out_of_order
                    + devices
                        .values()
                        .flat_map(|(_, e)| e)
                        .map(Evaluator::out_of_order)
                        .sum::<u64>();
                if left_out > 0 {
                    tracing::warn!(
                        readings = left_out,
                        "a dry run evaluates windowed rules on each object alone, in the order of its lines; readings earlier than their device's previous one were left out of them"
                    );
                }
                return Ok(());
            }
        };
        let devices = spans.len();
        let blank = breaches.sibling();
        let this = &*self;
        let mut logs = stream::iter(spans.into_iter().map(|(device, span)| {
            let blank = &blank;
            async move {
                retry::hold(attempt, "evaluating windowed rules", || {
                    this.read_back(store, &device, &span, blank.sibling())
                })
                .await
            }
        }))
        .buffer_unordered(QUERIES_IN_FLIGHT);
        let mut read = 0;
        while let Some(result) = logs.next().await {
            let (log, readings) = result?;
            read += readings;
            breaches.absorb(log);
        }
        tracing::debug!(
            devices,
            readings = read,
            "windowed rules evaluated on the readings read back"
        );
        Ok(())
    }

    /// One device: its readings read back around its span through the
    /// evaluators; the breaches it reports, in `log`, and the readings read.
    async fn read_back(
        &self,
        store: &ReadingStore,
        device: &str,
        span: &Span,
        mut log: BreachLog,
    ) -> Result<(BreachLog, u64), StoreError> {
        let (min, max) = (span.min, span.max);
        let from = Timestamp::from_unix_millis(min.unix_millis().saturating_sub(self.reach).max(0));
        let to = Timestamp::from_unix_millis(max.unix_millis().saturating_add(self.reach));
        let mut evaluators = self.evaluators(&span.rules);
        let read = store
            .read_series(device, (from, to), &self.fields, |at, values| {
                for ((position, scope), evaluator) in span.rules.iter().zip(&mut evaluators) {
                    let (index, field) = self.windowed[*position];
                    if let Some(value) = values.get(field).copied().flatten()
                        && let Some(breach) = evaluator.push(at, value)
                        && at >= min
                    {
                        log.record_windowed(device, index, scope.as_deref(), &breach);
                    }
                }
            })
            .await?;
        Ok((log, read))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::Cooldown;
    use crate::alerts::windowed::Finding;
    use crate::test_input::{rule_set, temperature_reading as reading};

    #[test]
    fn no_windowed_rule_no_scan() {
        assert!(WindowedScan::new(rule_set(&["engine_temp_c > 100"]), true).is_none());
        assert!(WindowedScan::new(rule_set(&[]), false).is_none());
    }

    /// In a dry run the object's readings are evaluated as they come, per
    /// device and with the rules that apply to it; a reading out of order
    /// is left out.
    #[tokio::test]
    async fn a_dry_run_evaluates_the_object_alone() {
        let rules = rule_set(&[
            "engine_temp_c > 200",
            "engine_temp_c rises 15 within 10m",
            // C's own rule on the field replaces the fleet's for C.
            "C: engine_temp_c rises 5 within 10m",
        ]);
        let mut scan = WindowedScan::new(rules.clone(), false).unwrap();
        assert_eq!(scan.reach, 20 * 60_000);
        let mut log = BreachLog::new(rules, None, Cooldown::default(), "b", "k");
        for r in [
            reading("C", 0, "80"),
            reading("C", 5, "86"), // +6: C's rule, not the fleet's
            reading("A", 0, "80"),
            reading("B", 0, "80"),
            reading("A", 5, "90"),
            reading("B", 20, "99"), // 20 minutes later: no rise within 10m
            reading("A", 3, "60"),  // out of order: left out
            reading("A", 8, "96"),  // +16 from minute 0
        ] {
            scan.stored(&r, &mut log);
        }
        assert!(!scan.is_full());
        let alerts = log.into_alerts();
        assert_eq!(alerts.len(), 2, "{alerts:#?}");
        let c = &alerts[1];
        assert_eq!(c.id.device_id, "C");
        assert_eq!(c.id.rule, "engine_temp_c rises 5 within 10m");
        assert_eq!(c.condition.scope.as_deref(), Some("C"));
        let a = &alerts[0];
        assert_eq!(a.condition.scope, None);
        assert_eq!(a.id.device_id, "A");
        assert_eq!(a.id.rule, "engine_temp_c rises 15 within 10m");
        assert_eq!(a.breaches.worst_value, "96");
        assert_eq!(
            a.breaches.finding,
            Some(Finding::Change {
                from_at: Timestamp::from_unix_millis(0),
                from: 80.0
            })
        );
    }
}
