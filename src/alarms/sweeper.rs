//! What every worker does periodically for the alarms: close those that
//! have been quiet for `FLEETWATCH_ALARM_AUTO_CLOSE`, raise and close the
//! `silent` alarms ([`super::silence`]), and send each closed episode's one
//! "resolved" notification (also for alarms an operator resolved). Several
//! workers sweep at once without doubling anything: closing is a
//! conditional write that one of them wins, a silent vehicle's
//! notification goes through the alert ledger like any alert, and a
//! resolution through the ledger under its own key.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::silence::{self, SilenceError, SilenceWatch, Step, Verdict};
use super::store::now_millis;
use super::{Alarm, AlarmError};
use crate::alerts::ledger::{Claim, ClaimOwner, LedgerError};
use crate::alerts::{AlertError, AlertSink, message};
use crate::telemetry::Timestamp;

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sweep {
    /// Alarms this sweep closed (quiet, or a silent vehicle reporting).
    pub closed: usize,
    /// "Resolved" notifications this sweep published.
    pub announced: usize,
    /// Vehicles this sweep found silent (reported within the last day).
    pub silent: usize,
    /// `silent` notifications this sweep published.
    pub raised: usize,
}

/// Why a sweep stopped early; the next one tries again.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Alerts(#[from] AlertError),
    #[error(transparent)]
    Silence(#[from] SilenceError),
}

impl From<AlarmError> for SweepError {
    fn from(e: AlarmError) -> Self {
        SweepError::Alerts(e.into())
    }
}

impl From<LedgerError> for SweepError {
    fn from(e: LedgerError) -> Self {
        SweepError::Alerts(e.into())
    }
}

/// One worker's sweeper.
#[derive(Debug)]
pub struct Sweeper {
    /// The alarms, the ledger and the topic.
    sink: AlertSink,
    /// `FLEETWATCH_ALARM_AUTO_CLOSE`.
    auto_close: Duration,
    /// `FLEETWATCH_ALARM_SWEEP_INTERVAL`.
    interval: Duration,
    /// The silence check; `None` with `FLEETWATCH_SILENT_AFTER=off`.
    silence: Option<SilenceWatch>,
    /// Claims this sweeper's silent alerts, one attempt per sweep, so a
    /// sweep takes over the claims an earlier one left unconfirmed at once.
    owner: ClaimOwner,
    /// Vehicles whose silent breach failed to be delivered: tried again
    /// at the next sweep even if their alarm shows this window's breach.
    owed: HashSet<String>,
    /// The silent vehicles the last check counted: the log line is written
    /// when the count changes, not every sweep.
    last_silent: Option<usize>,
}

impl Sweeper {
    pub fn new(
        sink: AlertSink,
        auto_close: Duration,
        interval: Duration,
        silence: Option<SilenceWatch>,
    ) -> Self {
        Sweeper {
            sink,
            auto_close,
            interval,
            silence,
            owner: ClaimOwner::unique(),
            owed: HashSet::new(),
            last_silent: None,
        }
    }

    /// Sweeps every `interval` until `shutdown`; errors are logged and the
    /// next sweep tries again.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            // Jittered, so workers started together do not sweep in lockstep.
            let pause = self.interval.mul_f64(0.75 + fastrand::f64() * 0.5);
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
            if let Err(e) = self.sweep().await {
                tracing::warn!(error = %e, "the alarm sweep failed; retrying at the next one");
            }
        }
    }

    /// One sweep: the silence check, then closes the alarms quiet for
    /// `auto_close` (never a `silent` one while the check runs: those close
    /// when data arrives) and announces every resolution not announced yet.
    pub async fn sweep(&mut self) -> Result<Sweep, SweepError> {
        self.owner.attempt = self.owner.attempt.saturating_add(1);
        let now = now_millis();
        let quiet_ms = self.auto_close.as_millis().min(i64::MAX as u128) as i64;
        let quiet_since = now.saturating_sub(quiet_ms);
        let mut done = Sweep::default();
        let mut silent_alarms = HashMap::new();
        let mut quiet = Vec::new();
        for alarm in self.sink.alarms.due(quiet_since).await? {
            if self.silence.is_some() && alarm.rule == silence::RULE {
                silent_alarms.insert(alarm.device_id.clone(), alarm);
            } else {
                quiet.push(alarm);
            }
        }
        let mut settled: Vec<Alarm> = Vec::new();
        if let Some(watch) = self.silence.clone() {
            let closed = self.watch(&watch, &silent_alarms, now, &mut done).await?;
            // Closed now, or closed earlier with the notice still due.
            let closed_now: HashSet<&str> = closed.iter().map(|a| a.device_id.as_str()).collect();
            let earlier: Vec<Alarm> = silent_alarms
                .values()
                .filter(|a| !closed_now.contains(a.device_id.as_str()))
                .filter(|a| a.resolve_notice.is_some())
                .cloned()
                .collect();
            settled.extend(closed);
            settled.extend(earlier);
        }
        for alarm in quiet {
            if alarm.state.is_open() && alarm.last_breach_ms < quiet_since {
                match self.sink.alarms.auto_close(&alarm, quiet_since).await? {
                    Some(closed) => {
                        done.closed += 1;
                        settled.push(closed);
                    }
                    // A breach, an operator or another worker came first.
                    None => continue,
                }
            } else {
                settled.push(alarm);
            }
        }
        for alarm in &settled {
            if self.announce(alarm).await? {
                done.announced += 1;
            }
        }
        Ok(done)
    }

    /// The silence check (see [`super::silence`]): raises, reminds and
    /// closes the `silent` alarms (`alarms`, by device, as the sweep read
    /// them). Returns the alarms it closed.
    async fn watch(
        &mut self,
        watch: &SilenceWatch,
        alarms: &HashMap<String, Alarm>,
        now: i64,
        done: &mut Sweep,
    ) -> Result<Vec<Alarm>, SweepError> {
        let vehicles = watch.vehicles().await?;
        let at = Timestamp::from_unix_millis(now);
        let cooldown = self.sink.ledger.cooldown();
        let owed = std::mem::take(&mut self.owed);
        let mut alerts = Vec::new();
        let mut closed = Vec::new();
        for vehicle in &vehicles {
            let verdict = silence::judge(at, vehicle.last_reading, watch.after);
            if matches!(verdict, Verdict::Silent { raises: true, .. }) {
                done.silent += 1;
            }
            let alarm = alarms.get(&vehicle.device_id);
            let is_owed = owed.contains(&vehicle.device_id);
            match silence::step(
                verdict,
                vehicle.last_reading,
                watch.after,
                alarm,
                now,
                cooldown,
                is_owed,
            ) {
                Step::Nothing => {}
                Step::Record => {
                    if let Verdict::Silent { silent_for, .. } = verdict {
                        alerts.push(silence::alert(
                            vehicle,
                            silent_for,
                            watch.after,
                            at,
                            cooldown,
                        ));
                    }
                }
                Step::Close => {
                    let Some(alarm) = alarm else { continue };
                    let note = silence::reporting_again(vehicle.last_reading);
                    // `None`: another worker or an operator came first.
                    if let Some(alarm) = self.sink.alarms.close_reporting(alarm, &note).await? {
                        done.closed += 1;
                        closed.push(alarm);
                    }
                }
            }
        }
        silence::report(done.silent, vehicles.len(), self.last_silent);
        self.last_silent = Some(done.silent);
        if alerts.is_empty() {
            return Ok(closed);
        }
        let devices: Vec<String> = alerts.iter().map(|a| a.id.device_id.clone()).collect();
        match self.sink.deliver(alerts, &self.owner).await {
            Ok(published) => done.raised += published,
            Err(e) => {
                // Another worker publishing the same window (`Busy`) is
                // expected when sweeps coincide; anything else is a failure.
                if matches!(e, AlertError::Busy { .. }) {
                    tracing::debug!(error = %e, "silent alerts claimed by another worker");
                } else {
                    tracing::warn!(error = %e, vehicles = devices.len(),
                        "delivering the silent alerts failed; retrying at the next sweep");
                }
                self.owed.extend(devices);
            }
        }
        Ok(closed)
    }

    /// Sends `alarm`'s pending "resolved" notification, once across the
    /// workers; whether this sweep published it.
    async fn announce(&self, alarm: &Alarm) -> Result<bool, SweepError> {
        let Some(episode) = alarm.resolve_notice else {
            return Ok(false);
        };
        let sink = &self.sink;
        let owner = ClaimOwner::unique();
        match sink.ledger.claim_resolution(alarm, episode, &owner).await? {
            Claim::Publish => {
                let notice = message::render_resolution(alarm, episode);
                let outcome = sink.publisher.publish(std::slice::from_ref(&notice)).await;
                if let Some(e) = outcome.error {
                    return Err(e.into());
                }
                for refused in &outcome.rejected {
                    tracing::error!(device_id = %alarm.device_id, rule = %alarm.rule, episode,
                        code = %refused.code, message = %refused.message,
                        "SNS refused the resolved notification; it is not retried");
                }
                // Accepted or refused for good: either way, settled.
                sink.ledger.confirm_resolution(alarm, episode).await?;
                sink.alarms.clear_resolve_notice(alarm, episode).await?;
                Ok(!outcome.accepted.is_empty())
            }
            Claim::AlreadySent => {
                sink.alarms.clear_resolve_notice(alarm, episode).await?;
                Ok(false)
            }
            // Another worker is announcing it right now.
            Claim::Busy { .. } => Ok(false),
        }
    }
}
