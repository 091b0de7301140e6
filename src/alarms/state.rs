//! An alarm's states and transitions, and the decisions made on them:
//! pure functions, so the rules of the lifecycle live in one place and the
//! store only makes them durable.
//!
//! ```text
//!            breach                  ack                 (next breach,
//!  NORMAL ──────────▶ ACTIVE ─────────────▶ ACKNOWLEDGED   not notified)
//!    ▲                 │  ▲  snooze --for
//!    │                 │  └──────────────── SNOOZED  (a breach after the
//!    │                 ▼                              snooze: reactivated)
//!    └──── resolve (operator), or no breach for FLEETWATCH_ALARM_AUTO_CLOSE
//! ```

use std::fmt;

/// Where an alarm stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// No open alarm: the rule is not being broken (or never was).
    Normal,
    /// Breaching and unacknowledged: notified on opening, then once per
    /// cooldown window.
    Active,
    /// An operator has taken it: breaches are recorded, not notified.
    Acknowledged,
    /// Silenced until a time; a breach after it reactivates the alarm.
    Snoozed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Normal => "NORMAL",
            State::Active => "ACTIVE",
            State::Acknowledged => "ACKNOWLEDGED",
            State::Snoozed => "SNOOZED",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        Some(match s {
            "NORMAL" => State::Normal,
            "ACTIVE" => State::Active,
            "ACKNOWLEDGED" => State::Acknowledged,
            "SNOOZED" => State::Snoozed,
            _ => return None,
        })
    }

    /// Whether the alarm is open (anything but NORMAL).
    pub fn is_open(self) -> bool {
        self != State::Normal
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change of state, or (for [`Transition::Reminder`]) a notification
/// without one. Carried in every notification's JSON and its `transition`
/// message attribute, so SNS filter policies can route them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transition {
    /// NORMAL → ACTIVE: the first breach.
    Opened,
    /// ACTIVE, a new cooldown window: notified again (no state change).
    Reminder,
    /// ACTIVE/SNOOZED → ACKNOWLEDGED by an operator.
    Acknowledged,
    /// ACTIVE/ACKNOWLEDGED → SNOOZED by an operator.
    Snoozed,
    /// SNOOZED → ACTIVE: a breach after the snooze ended.
    Reactivated,
    /// open → NORMAL: no breach for the auto-close time.
    AutoResolved,
    /// open → NORMAL by an operator.
    Resolved,
}

impl Transition {
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::Opened => "opened",
            Transition::Reminder => "reminder",
            Transition::Acknowledged => "acknowledged",
            Transition::Snoozed => "snoozed",
            Transition::Reactivated => "reactivated",
            Transition::AutoResolved => "auto_resolved",
            Transition::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Transition> {
        Some(match s {
            "opened" => Transition::Opened,
            "reminder" => Transition::Reminder,
            "acknowledged" => Transition::Acknowledged,
            "snoozed" => Transition::Snoozed,
            "reactivated" => Transition::Reactivated,
            "auto_resolved" => Transition::AutoResolved,
            "resolved" => Transition::Resolved,
            _ => return None,
        })
    }
}

/// What an operator asks of an alarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Take it: breaches are no longer notified.
    Acknowledge,
    /// Silence it until this time (epoch milliseconds).
    Snooze { until_ms: i64 },
    /// Close it now.
    Resolve,
}

impl Action {
    /// The state the action leads to and its transition, or why it does
    /// not apply to an alarm in `from`.
    pub fn apply(&self, from: State) -> Result<(State, Transition), &'static str> {
        match (self, from) {
            (_, State::Normal) => Err("the alarm is not open"),
            (Action::Acknowledge, State::Acknowledged) => Err("the alarm is already acknowledged"),
            (Action::Acknowledge, _) => Ok((State::Acknowledged, Transition::Acknowledged)),
            (Action::Snooze { .. }, _) => Ok((State::Snoozed, Transition::Snoozed)),
            (Action::Resolve, _) => Ok((State::Normal, Transition::Resolved)),
        }
    }
}

/// What a breach does to an alarm in `from` (`snoozed_until_ms` its snooze's
/// end, `now_ms` the clock): the new state and transition, if it changes.
pub fn on_breach(
    from: Option<State>,
    snoozed_until_ms: Option<i64>,
    now_ms: i64,
) -> Option<(State, Transition)> {
    match from {
        None | Some(State::Normal) => Some((State::Active, Transition::Opened)),
        Some(State::Snoozed) if snoozed_until_ms.is_none_or(|until| until <= now_ms) => {
            Some((State::Active, Transition::Reactivated))
        }
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaches_open_and_reactivate() {
        assert_eq!(
            on_breach(None, None, 0),
            Some((State::Active, Transition::Opened))
        );
        assert_eq!(
            on_breach(Some(State::Normal), None, 0),
            Some((State::Active, Transition::Opened))
        );
        assert_eq!(on_breach(Some(State::Active), None, 0), None);
        assert_eq!(on_breach(Some(State::Acknowledged), None, 0), None);
        assert_eq!(on_breach(Some(State::Snoozed), Some(10), 9), None);
        assert_eq!(
            on_breach(Some(State::Snoozed), Some(10), 10),
            Some((State::Active, Transition::Reactivated))
        );
    }

    #[test]
    fn operators_act_on_open_alarms_only() {
        assert!(Action::Acknowledge.apply(State::Normal).is_err());
        assert!(Action::Resolve.apply(State::Normal).is_err());
        assert!(Action::Acknowledge.apply(State::Acknowledged).is_err());
        assert_eq!(
            Action::Acknowledge.apply(State::Snoozed),
            Ok((State::Acknowledged, Transition::Acknowledged))
        );
        assert_eq!(
            Action::Snooze { until_ms: 5 }.apply(State::Acknowledged),
            Ok((State::Snoozed, Transition::Snoozed))
        );
        assert_eq!(
            Action::Resolve.apply(State::Active),
            Ok((State::Normal, Transition::Resolved))
        );
        for t in [
            Transition::Opened,
            Transition::Reminder,
            Transition::Acknowledged,
            Transition::Snoozed,
            Transition::Reactivated,
            Transition::AutoResolved,
            Transition::Resolved,
        ] {
            assert_eq!(Transition::parse(t.as_str()), Some(t));
        }
        for s in [
            State::Normal,
            State::Active,
            State::Acknowledged,
            State::Snoozed,
        ] {
            assert_eq!(State::parse(s.as_str()), Some(s));
        }
    }
}
