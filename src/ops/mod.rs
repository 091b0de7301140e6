//! Operator tools: the `fleetwatch` subcommands besides the worker that the
//! people running fleetwatch use, one module each, acting on existing data
//! and queues rather than running the worker loop. Each uses the worker's
//! own settings (flags and `FLEETWATCH_*` variables) and says clearly when
//! a resource is missing or a permission is denied.

pub mod alarms;
pub mod dlq;
pub mod dlq_command;
pub mod history;
pub mod output;
pub mod process;
pub mod rules;
pub mod status;
