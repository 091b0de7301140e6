//! Operator tools: the subcommands people who run fleetwatch use besides
//! the worker, one module each, acting on existing data and queues rather
//! than running the worker loop.

pub mod dlq;
pub mod process;
