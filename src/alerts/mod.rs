//! Alerting: which readings deserve a message, grouped so that one object
//! yields at most one alert per device, rule and cooldown window, and their
//! publication.
//!
//! The original Lambda sent one email per hot reading. Here the pieces are
//! kept apart:
//! - [`rules`]: the safety rules (threshold, sustained, rate of change) and
//!   the evaluation of a threshold on a reading;
//! - [`windowed`]: the evaluation of the windowed rules over a device's
//!   readings in time order;
//! - [`windowed_scan`]: where a windowed rule's readings come from: the
//!   table, read back around each object's readings (or the object alone,
//!   in a dry run);
//! - [`scope`]: which vehicles a rule is for (a device, a glob, a group);
//! - [`rule_set`]: which rules apply to each vehicle (the narrowest scope
//!   with a rule of a field and kind wins it);
//! - [`rule_store`] and [`rule_book`]: operators' overrides in the alarm
//!   table, and the set in force, refreshed from them;
//! - [`breach_log`]: the breaches of one object folded per device, rule and
//!   [`Cooldown`] window into [`Alert`]s (count, first and last time, worst
//!   value);
//! - [`alert`]: what an alert is — its identity ([`AlertId`], computed only
//!   by [`Cooldown::alert_id`]), the [`Condition`] broken, the
//!   [`Breaches`] seen and their [`Source`];
//! - [`ledger`]: the per-identity claim that makes publication once per
//!   window (a duplicate is possible only in its publish → confirm window);
//! - [`message`]: the subject, text, JSON and attributes of a message;
//! - [`publisher`]: SNS `PublishBatch`;
//! - [`sink`]: [`AlertSink::deliver`], claim → publish → confirm;
//! - [`error`]: [`AlertError`], what stopped a delivery.

pub mod alert;
pub mod breach_log;
pub mod cooldown;
pub mod error;
pub mod ledger;
pub mod message;
pub mod publisher;
pub mod rule_book;
pub mod rule_set;
pub mod rule_store;
pub mod rules;
pub mod scope;
pub mod sink;
pub mod windowed;
pub mod windowed_scan;

pub use alert::{Alert, AlertId, AlertKind, Breaches, Condition, Source, Test};
pub use breach_log::{BreachLog, MAX_OPEN_ALERTS};
pub use cooldown::Cooldown;
pub use error::AlertError;
pub use ledger::ClaimOwner;
pub use sink::AlertSink;
