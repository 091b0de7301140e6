//! Operator tools: subcommands that act on existing data and queues
//! rather than running the worker loop.

pub mod process;
