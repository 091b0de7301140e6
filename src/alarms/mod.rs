//! Alarms: the lifecycle of each (vehicle, rule) over its alerts — opened
//! by the first breach, acknowledged or snoozed by an operator, closed by
//! an operator or after a quiet time — kept in the alarm table so every
//! worker and operator agrees on it.
//!
//! - [`state`]: the states, transitions and the rules between them;
//! - [`store`]: the alarm table, with conditional writes;
//! - [`silence`]: the `silent` alarm of a vehicle that stopped reporting;
//! - [`sweeper`]: what each worker does periodically (auto-close, the
//!   silence check, the "resolved" notifications);
//!
//! The alert path ([`crate::alerts::AlertSink::deliver`]) records every
//! alert's breaches on its alarm first; only an ACTIVE alarm's alerts are
//! published (once per cooldown window, by the ledger).

pub mod silence;
pub mod state;
pub mod store;
pub mod sweeper;

pub use state::{Action, State, Transition};
pub use store::{Alarm, AlarmError, AlarmStore, HistoryEntry};
