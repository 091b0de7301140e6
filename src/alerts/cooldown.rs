//! The cooldown windows (`FLEETWATCH_ALERT_COOLDOWN`): the one place the
//! window arithmetic, and so an alert's identity, is computed. Readings'
//! alerts use windows aligned to the epoch; a silent vehicle's, windows
//! counted from the start of its silence.

use std::time::Duration;

use super::AlertId;
use crate::telemetry::Timestamp;

/// Event time cut into windows of this length, aligned to the epoch; each
/// (device, rule, window) gets at most one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cooldown {
    /// The window length in milliseconds, at least 1.
    millis: i64,
}

impl Cooldown {
    pub fn new(length: Duration) -> Self {
        Cooldown {
            millis: length.as_millis().clamp(1, i64::MAX as u128) as i64,
        }
    }

    /// The start of the window holding `at`.
    pub fn window_start(self, at: Timestamp) -> Timestamp {
        Timestamp::from_unix_millis(at.unix_millis().div_euclid(self.millis) * self.millis)
    }

    /// The start of the window holding `at`, windows counted from
    /// `origin` instead of the epoch (`at` before `origin` rounds down too).
    pub fn window_start_since(self, origin: Timestamp, at: Timestamp) -> Timestamp {
        let since = at.unix_millis().saturating_sub(origin.unix_millis());
        Timestamp::from_unix_millis(
            origin
                .unix_millis()
                .saturating_add(since.div_euclid(self.millis) * self.millis),
        )
    }

    /// The identity of an alert of a condition that began at `origin` (a
    /// vehicle's silence), at `at`: windows counted from `origin`, so each
    /// new occurrence gets its own first window.
    pub fn alert_id_since(
        self,
        device_id: &str,
        rule: &str,
        origin: Timestamp,
        at: Timestamp,
    ) -> AlertId {
        AlertId {
            device_id: device_id.to_owned(),
            rule: rule.to_owned(),
            window_start: self.window_start_since(origin, at),
        }
    }

    /// The identity of an alert for a breach of `rule` by `device_id` at
    /// `at`.
    pub fn alert_id(self, device_id: &str, rule: &str, at: Timestamp) -> AlertId {
        AlertId {
            device_id: device_id.to_owned(),
            rule: rule.to_owned(),
            window_start: self.window_start(at),
        }
    }
}

impl Default for Cooldown {
    /// `FLEETWATCH_ALERT_COOLDOWN`'s default, 15 minutes.
    fn default() -> Self {
        Cooldown::new(Duration::from_secs(15 * 60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_epoch_aligned_in_event_time() {
        let c = Cooldown::new(Duration::from_secs(15 * 60));
        let at = |ms| {
            c.window_start(Timestamp::from_unix_millis(ms))
                .unix_millis()
        };
        assert_eq!(at(0), 0);
        assert_eq!(at(899_999), 0);
        assert_eq!(at(900_000), 900_000);
        assert_eq!(
            at(-1),
            -900_000,
            "before the epoch rounds down, not to zero"
        );
        assert_eq!(
            Cooldown::new(Duration::ZERO),
            Cooldown::new(Duration::from_millis(1))
        );
        let since = |origin, ms| {
            c.window_start_since(
                Timestamp::from_unix_millis(origin),
                Timestamp::from_unix_millis(ms),
            )
            .unix_millis()
        };
        assert_eq!(since(1_000, 1_000), 1_000);
        assert_eq!(since(1_000, 900_999), 1_000);
        assert_eq!(since(1_000, 901_000), 901_000);
        assert_eq!(since(1_000, 999), -899_000);
    }
}
