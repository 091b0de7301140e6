//! `fleetwatch dlq`'s settings: where the dead-letter queue is, and what to
//! do with it.

use clap::{Args, Subcommand, ValueEnum};

use super::queue::parse_queue_url;
use super::values::parse_bounded;

/// Settings of `fleetwatch dlq`: where the dead-letter queue is, and what
/// to do with it. The queue settings are global to the actions, so they
/// can follow either `dlq` or the action.
#[derive(Debug, Clone, Args)]
pub struct DlqSettings {
    /// URL of the worker's queue (the same setting as the worker's). Its
    /// `RedrivePolicy` names the dead-letter queue, and `redrive` sends the
    /// messages back to it. Needed unless `--dlq-url` is given and the
    /// action is `list` or `purge`.
    #[arg(long, env = "FLEETWATCH_QUEUE_URL", value_parser = parse_queue_url, global = true)]
    pub queue_url: Option<String>,

    /// URL of the dead-letter queue, when it should not be read from the
    /// queue's `RedrivePolicy` (for example without `sqs:GetQueueAttributes`
    /// on the main queue, or to inspect another dead-letter queue).
    #[arg(long, env = "FLEETWATCH_DLQ_URL", value_parser = parse_dlq_url, global = true)]
    pub dlq_url: Option<String>,

    /// What to do; `list` when none is given.
    #[command(subcommand)]
    pub action: Option<DlqAction>,
}

/// The actions of `fleetwatch dlq`.
#[derive(Debug, Clone, Subcommand)]
pub enum DlqAction {
    /// Show each message (id, receives, first receive, objects) without consuming any.
    List(DlqListSettings),
    /// Move messages back to the worker's queue.
    Redrive(DlqRedriveSettings),
    /// Delete every message of the dead-letter queue.
    Purge(DlqPurgeSettings),
}

impl Default for DlqAction {
    fn default() -> Self {
        DlqAction::List(DlqListSettings {
            format: ListFormat::Table,
            max_messages: 1000,
        })
    }
}

/// How `dlq list` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// Aligned columns for a terminal.
    Table,
    /// One JSON array, for scripts.
    Json,
}

/// Settings of `fleetwatch dlq list`.
#[derive(Debug, Clone, Args)]
pub struct DlqListSettings {
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// Most messages shown (each is held invisible while the listing runs).
    #[arg(long, default_value_t = 1000, value_parser = parse_dlq_max_messages)]
    pub max_messages: usize,
}

/// Settings of `fleetwatch dlq redrive`.
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["all", "message_id"])))]
pub struct DlqRedriveSettings {
    /// Move every message (with SQS `StartMessageMoveTask` where the
    /// service supports it).
    #[arg(long)]
    pub all: bool,
    /// Move only these messages (ids as `dlq list` shows them); repeatable.
    #[arg(long = "message-id", value_parser = parse_message_id)]
    pub message_id: Vec<String>,
    /// Never use `StartMessageMoveTask`: receive, send, then delete each message.
    #[arg(long)]
    pub no_move_task: bool,
}

/// Settings of `fleetwatch dlq purge`.
#[derive(Debug, Clone, Args)]
pub struct DlqPurgeSettings {
    /// Really delete: without it, `purge` only says how many messages it would delete.
    #[arg(long)]
    pub yes: bool,
}

fn parse_dlq_url(s: &str) -> Result<String, String> {
    if (s.starts_with("https://") || s.starts_with("http://")) && s.len() > 8 {
        Ok(s.to_owned())
    } else {
        Err("FLEETWATCH_DLQ_URL: expected a queue URL like https://sqs.eu-west-1.amazonaws.com/123456789012/fleetwatch-telemetry-dlq; leave it unset to read it from the queue's RedrivePolicy".into())
    }
}

fn parse_dlq_max_messages(s: &str) -> Result<usize, String> {
    parse_bounded(s, 1, 100_000, "--max-messages")
}

fn parse_message_id(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 100 || s.chars().any(char::is_whitespace) {
        Err("--message-id: expected an SQS message id as `dlq list` shows it".into())
    } else {
        Ok(s.to_owned())
    }
}
