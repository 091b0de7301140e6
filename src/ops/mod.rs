//! Operator tools: the subcommands people who run fleetwatch use besides
//! the worker (one module each).

pub mod dlq;
