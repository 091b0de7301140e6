//! Silent vehicles: a vehicle that reported within the last day
//! ([`RECENT`]) and has sent nothing for `FLEETWATCH_SILENT_AFTER` raises
//! its `silent` alarm ([`RULE`]); the alarm closes when data arrives.
//!
//! # Judged by event time
//! "Sent nothing" is judged by the latest reading's **event time**, the
//! fleet status record's `last_reading_at` ([`crate::fleet_status`]), the
//! one time stored per vehicle: a vehicle whose unit buffers readings and
//! uploads them an hour late was silent for that hour, as far as anyone
//! watching it could tell. A reading dated in the future (a skewed unit
//! clock, within `FLEETWATCH_MAX_FUTURE_SKEW`) counts as reporting now.
//!
//! # Evaluation
//! Every sweep ([`super::sweeper`]) makes one paged Query of the fleet
//! status partition, projected to the device and `last_reading_at`
//! ([`SilenceWatch::vehicles`]), and decides per vehicle with [`step`]:
//! - silent, no open `silent` alarm, reported within [`RECENT`] → record a
//!   breach and notify through the alert path
//!   ([`crate::alerts::AlertSink::deliver`]): the alarm decides (ACTIVE
//!   yes, ACKNOWLEDGED/SNOOZED no) and the ledger makes it once per
//!   cooldown window, so several workers sweeping at once give one alarm
//!   and one notification;
//! - silent, its alarm open → a breach again only once per cooldown window
//!   (the window of its last recorded breach is older than now's), so an
//!   unacknowledged alarm is reminded per window and a snooze that ran out
//!   reactivates it, without a write per vehicle per sweep per worker;
//! - reporting again (`last_reading_at` within the threshold), its alarm
//!   open → closed (NORMAL, `auto_resolved`, actor `fleetwatch`) with one
//!   "resolved" notification, whatever its state.
//!
//! A `silent` alarm is never closed by the quiet-time auto-close
//! (`FLEETWATCH_ALARM_AUTO_CLOSE`): it closes when data arrives or when an
//! operator resolves it. One an operator resolved is not raised again for
//! the same silence (its `last_breach_event` is the last reading it was
//! raised for), only after the vehicle reports and falls silent again.
//! With `FLEETWATCH_SILENT_AFTER=off` nothing is evaluated and any
//! `silent` alarm left open closes by the quiet-time rule like the others.
//!
//! A silent alert's breaches carry the last reading's time as their event
//! time (so the alarm's `last_breach_event` names the silence) and the
//! silence's length as their worst value. Its cooldown windows are counted
//! from the moment the vehicle became silent (its last reading plus the
//! threshold; [`window_start`]), not from the epoch: every worker computes
//! the same windows for one silence, and a new silence (the vehicle
//! reported in between) gets a window, and so an "opened" notification, of
//! its own even within the same epoch-aligned window.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;

use super::Alarm;
use crate::alerts::alert::Test;
use crate::alerts::rules::Op;
use crate::alerts::{Alert, AlertKind, Breaches, Condition, Cooldown, Source};
use crate::failure::{Classify, FailureClass, classify_sdk};
use crate::fleet_status::{LAST_READING_AT, PARTITION};
use crate::storage;
use crate::telemetry::Timestamp;

/// The rule name of every `silent` alarm (no `field op number` rule can be
/// named so).
pub const RULE: &str = "silent";
/// Only a vehicle whose latest reading is at most this old raises a
/// `silent` alarm: one retired, or parked for the winter, stays quiet.
pub const RECENT: Duration = Duration::from_secs(24 * 3600);

/// What a sweep makes of a vehicle's latest reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A reading within the threshold (or dated in the future).
    Reporting,
    /// Nothing for `silent_for`, at least the threshold.
    Silent {
        /// Since the latest reading's event time.
        silent_for: Duration,
        /// Whether the latest reading is within [`RECENT`], so a new
        /// alarm may be raised.
        raises: bool,
    },
}

/// Judges a vehicle whose latest reading is `last_reading`, at `now`, with
/// the `after` threshold.
pub fn judge(now: Timestamp, last_reading: Timestamp, after: Duration) -> Verdict {
    let age_ms = now.unix_millis().saturating_sub(last_reading.unix_millis());
    let age = Duration::from_millis(u64::try_from(age_ms).unwrap_or(0));
    if age < after {
        Verdict::Reporting
    } else {
        Verdict::Silent {
            silent_for: age,
            raises: age <= RECENT,
        }
    }
}

/// What a sweep does about one vehicle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing to write.
    Nothing,
    /// Record a breach on its `silent` alarm and notify as the alarm says.
    Record,
    /// Close its open `silent` alarm: it reports again.
    Close,
}

/// The step for a vehicle judged `verdict` (with the `after` threshold)
/// whose latest reading is `last_reading`, given its `silent` alarm as the
/// sweep read it, at `now_ms` with the alert `cooldown`. `owed`: this
/// worker's last attempt to record it failed, so it is tried again
/// whatever the alarm shows.
pub fn step(
    verdict: Verdict,
    last_reading: Timestamp,
    after: Duration,
    alarm: Option<&Alarm>,
    now_ms: i64,
    cooldown: Cooldown,
    owed: bool,
) -> Step {
    let open = alarm.filter(|a| a.state.is_open());
    let Verdict::Silent { raises, .. } = verdict else {
        return if open.is_some() {
            Step::Close
        } else {
            Step::Nothing
        };
    };
    if owed {
        return Step::Record;
    }
    match (open, alarm) {
        // Once per cooldown window: a reminder may be due, or the end of a
        // snooze.
        (Some(open), _) => {
            let window = |ms| window_start(last_reading, after, cooldown, ms);
            if window(open.last_breach_ms) < window(now_ms) {
                Step::Record
            } else {
                Step::Nothing
            }
        }
        // Quiet for over a day: no new alarm.
        (None, _) if !raises => Step::Nothing,
        // Closed by an operator during this very silence.
        (None, Some(closed)) if same_silence(closed, last_reading) => Step::Nothing,
        (None, _) => Step::Record,
    }
}

/// The start of the cooldown window holding `at_ms` for the silence after
/// `last_reading` (windows counted from when it became silent).
pub fn window_start(
    last_reading: Timestamp,
    after: Duration,
    cooldown: Cooldown,
    at_ms: i64,
) -> Timestamp {
    cooldown.window_start_since(
        silent_from(last_reading, after),
        Timestamp::from_unix_millis(at_ms),
    )
}

/// When the silence after `last_reading` began.
fn silent_from(last_reading: Timestamp, after: Duration) -> Timestamp {
    let after_ms = after.as_millis().min(i64::MAX as u128) as i64;
    Timestamp::from_unix_millis(last_reading.unix_millis().saturating_add(after_ms))
}

/// Whether `alarm` was raised for the silence after `last_reading`.
fn same_silence(alarm: &Alarm, last_reading: Timestamp) -> bool {
    crate::telemetry::parse_timestamp(&alarm.last_breach_event).ok() == Some(last_reading)
}

/// The alert a silent vehicle raises at `now`.
pub fn alert(
    vehicle: &Vehicle,
    silent_for: Duration,
    after: Duration,
    now: Timestamp,
    cooldown: Cooldown,
) -> Alert {
    Alert {
        id: cooldown.alert_id_since(
            &vehicle.device_id,
            RULE,
            silent_from(vehicle.last_reading, after),
            now,
        ),
        condition: Condition {
            kind: AlertKind::Silent,
            field: "silent_for".into(),
            test: Test::Compare {
                op: Op::Ge,
                threshold: human(after),
            },
            model: None,
            scope: None,
        },
        breaches: Breaches {
            count: 1,
            first: vehicle.last_reading,
            last: vehicle.last_reading,
            worst_value: human(silent_for),
            worst_at: now,
            explanation: Vec::new(),
            finding: None,
        },
        // No object shows a silence.
        source: Source {
            bucket: String::new(),
            key: String::new(),
        },
    }
}

/// `12s`, `47m`, `2h 5m`, `3d 4h`: the silence in a subject line.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 if s % 3600 / 60 == 0 => format!("{}h", s / 3600),
        3600..86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ if s % 86_400 / 3600 == 0 => format!("{}d", s / 86_400),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// The note of a `silent` alarm closed because the vehicle reports again.
pub fn reporting_again(last_reading: Timestamp) -> String {
    format!("reporting again: last reading {last_reading}")
}

/// Sets `fleetwatch_silent_vehicles` and logs the count when it differs
/// from the `previous` sweep's (the one place both are emitted), after a
/// sweep judged the fleet.
pub fn report(silent: usize, known: usize, previous: Option<usize>) {
    crate::metrics::silent_vehicles(silent);
    if previous != Some(silent) {
        tracing::info!(
            silent,
            vehicles = known,
            "silent vehicles (reported within the last day, nothing for FLEETWATCH_SILENT_AFTER)"
        );
    }
}

/// A vehicle as the silence check sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vehicle {
    /// The device id.
    pub device_id: String,
    /// Its latest reading's event time.
    pub last_reading: Timestamp,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "listing the vehicles (Query of {PARTITION} on table {table}, FLEETWATCH_TABLE) failed: {message}"
)]
pub struct SilenceError {
    /// The readings table.
    table: String,
    /// The SDK error with its context.
    message: String,
    /// Whether retrying may help.
    class: FailureClass,
}

impl Classify for SilenceError {
    fn class(&self) -> FailureClass {
        self.class
    }
}

/// Where and how the sweeps look for silent vehicles.
#[derive(Debug, Clone)]
pub struct SilenceWatch {
    /// The readings table's client.
    client: aws_sdk_dynamodb::Client,
    /// The readings table (`FLEETWATCH_TABLE`), which holds the fleet
    /// status records.
    table: String,
    /// `FLEETWATCH_SILENT_AFTER`.
    pub after: Duration,
}

impl SilenceWatch {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String, after: Duration) -> Self {
        SilenceWatch {
            client,
            table,
            after,
        }
    }

    /// Every vehicle with a status record and a readable
    /// `last_reading_at`: one paged, eventually consistent Query of the
    /// fleet status partition, projected to the two attributes used.
    pub async fn vehicles(&self) -> Result<Vec<Vehicle>, SilenceError> {
        let mut vehicles = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .projection_expression("#device, #last")
                .expression_attribute_names("#pk", storage::DEVICE_ID)
                .expression_attribute_names("#device", storage::TIMESTAMP)
                .expression_attribute_names("#last", LAST_READING_AT)
                .expression_attribute_values(":pk", AttributeValue::S(PARTITION.to_owned()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| SilenceError {
                    table: self.table.clone(),
                    message: DisplayErrorContext(&e).to_string(),
                    class: classify_sdk(&e),
                })?;
            vehicles.extend(page.items().iter().filter_map(vehicle));
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(vehicles);
            }
        }
    }
}

fn vehicle(item: &HashMap<String, AttributeValue>) -> Option<Vehicle> {
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s.as_str()),
        _ => None,
    };
    Some(Vehicle {
        device_id: text(storage::TIMESTAMP)?.to_owned(),
        last_reading: crate::telemetry::parse_timestamp(text(LAST_READING_AT)?).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alarms::{State, Transition};

    const MIN: i64 = 60_000;
    /// 2026-12-02T05:00:00Z.
    const NOW: i64 = 1_796_187_600_000;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_unix_millis(ms)
    }

    fn alarm(state: State, last_breach_ms: i64, last_event: Timestamp) -> Alarm {
        Alarm {
            device_id: "VHC001".into(),
            rule: RULE.into(),
            kind: "silent".into(),
            state,
            version: 1,
            episode: 1,
            activation: Transition::Opened,
            activation_window: String::new(),
            opened_at_ms: last_breach_ms,
            changed_at_ms: last_breach_ms,
            last_breach_ms,
            last_breach_event: last_event.to_string(),
            breaches: 1,
            snoozed_until_ms: None,
            actor: "fleetwatch".into(),
            note: None,
            resolve_notice: None,
        }
    }

    #[test]
    fn silent_is_judged_by_the_age_of_the_latest_reading() {
        let after = Duration::from_secs(30 * 60);
        let judge_age = |age_ms: i64| judge(at(NOW), at(NOW - age_ms), after);
        assert_eq!(judge_age(0), Verdict::Reporting);
        assert_eq!(judge_age(30 * MIN - 1), Verdict::Reporting);
        assert_eq!(
            judge_age(30 * MIN),
            Verdict::Silent {
                silent_for: after,
                raises: true
            }
        );
        assert_eq!(
            judge_age(24 * 60 * MIN),
            Verdict::Silent {
                silent_for: RECENT,
                raises: true
            }
        );
        assert_eq!(
            judge_age(24 * 60 * MIN + 1),
            Verdict::Silent {
                silent_for: RECENT + Duration::from_millis(1),
                raises: false
            }
        );
        // A reading dated ahead of the clock is reporting, not an overflow.
        assert_eq!(judge_age(-5 * MIN), Verdict::Reporting);
        assert_eq!(
            judge(at(NOW), at(i64::MIN), after),
            Verdict::Silent {
                silent_for: Duration::from_millis(i64::MAX as u64),
                raises: false
            }
        );
    }

    #[test]
    fn steps_record_once_per_window_and_close_on_data() {
        let cooldown = Cooldown::new(Duration::from_secs(15 * 60));
        let last = at(NOW - 40 * MIN);
        let silent = judge(at(NOW), last, Duration::from_secs(30 * 60));
        // Silent since NOW - 10 min: its windows start at NOW - 10 min,
        // NOW + 5 min...
        let old = Verdict::Silent {
            silent_for: Duration::from_secs(2 * 86_400),
            raises: false,
        };
        let after = Duration::from_secs(30 * 60);
        let step_with =
            |v, alarm: Option<&Alarm>, owed| step(v, last, after, alarm, NOW, cooldown, owed);

        // No alarm: a recent silence raises one, an old one nothing.
        assert_eq!(step_with(silent, None, false), Step::Record);
        assert_eq!(step_with(old, None, false), Step::Nothing);
        assert_eq!(step_with(Verdict::Reporting, None, false), Step::Nothing);

        // Open, breach recorded in this window: nothing; in an earlier
        // window: again (a reminder, the end of a snooze); old or not.
        for state in [State::Active, State::Acknowledged, State::Snoozed] {
            let this_window = alarm(state, NOW, last);
            assert_eq!(step_with(silent, Some(&this_window), false), Step::Nothing);
            assert_eq!(step_with(silent, Some(&this_window), true), Step::Record);
            let same_window = alarm(state, NOW - 10 * MIN, last);
            assert_eq!(step_with(silent, Some(&same_window), false), Step::Nothing);
            let earlier = alarm(state, NOW - 10 * MIN - 1, last);
            assert_eq!(step_with(silent, Some(&earlier), false), Step::Record);
            assert_eq!(step_with(old, Some(&earlier), false), Step::Record);
            // Data again: closed, whatever its state.
            assert_eq!(
                step_with(Verdict::Reporting, Some(&this_window), false),
                Step::Close
            );
        }

        // Closed by an operator during this silence: not raised again;
        // a closed alarm of an earlier silence: raised.
        let resolved = alarm(State::Normal, NOW - MIN, last);
        assert_eq!(step_with(silent, Some(&resolved), false), Step::Nothing);
        let earlier_silence = alarm(State::Normal, NOW - 90 * MIN, at(NOW - 120 * MIN));
        assert_eq!(
            step_with(silent, Some(&earlier_silence), false),
            Step::Record
        );
        assert_eq!(
            step_with(Verdict::Reporting, Some(&resolved), false),
            Step::Nothing
        );
    }

    #[test]
    fn silences_read_plainly() {
        let s = |secs| human(Duration::from_secs(secs));
        assert_eq!(s(12), "12s");
        assert_eq!(s(47 * 60 + 5), "47m");
        assert_eq!(s(2 * 3600), "2h");
        assert_eq!(s(2 * 3600 + 5 * 60), "2h 5m");
        assert_eq!(s(86_400), "1d");
        assert_eq!(s(3 * 86_400 + 4 * 3600 + 59), "3d 4h");
        let vehicle = Vehicle {
            device_id: "VHC001".into(),
            last_reading: at(NOW - 47 * MIN),
        };
        let a = alert(
            &vehicle,
            Duration::from_secs(47 * 60),
            Duration::from_secs(1800),
            at(NOW),
            Cooldown::default(),
        );
        assert_eq!(a.id.rule, RULE);
        // Windows counted from when it became silent, 17 minutes ago (47
        // minutes without a reading, 30 allowed): its second window.
        assert_eq!(a.id.window_start, at(NOW - 2 * MIN));
        assert_eq!(a.condition.kind, AlertKind::Silent);
        assert_eq!(a.breaches.last, vehicle.last_reading);
        assert_eq!(a.breaches.worst_value, "47m");
    }
}
