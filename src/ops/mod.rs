//! Operator tools: the `fleetwatch` subcommands besides the worker that the
//! people running fleetwatch use (issue 9). Each uses the worker's own
//! settings (flags and `FLEETWATCH_*` variables) and says clearly when a
//! resource is missing or a permission is denied.

pub mod history;
pub mod output;
pub mod status;
