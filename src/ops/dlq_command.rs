//! `fleetwatch dlq list | redrive | purge`: the command around
//! [`crate::ops::dlq`]. Results go to stdout, warnings and progress to the
//! log (stderr); Ctrl-C/SIGTERM stop between messages and the held
//! messages are released.

use tokio_util::sync::CancellationToken;

use crate::app::shutdown::cancel_on_signal;
use crate::aws;
use crate::config::{DlqAction, DlqSettings, ListFormat};
use crate::ops::dlq::{self, DlqError};
use crate::ops::output::emit;

/// Why the command failed.
#[derive(Debug, thiserror::Error)]
pub enum DlqCommandError {
    #[error(transparent)]
    Dlq(#[from] DlqError),
    #[error("writing to stdout: {0}")]
    Output(#[from] std::io::Error),
}

/// Runs the action `settings` names (`list` when none).
pub async fn run(settings: DlqSettings) -> Result<(), DlqCommandError> {
    let sdk = aws::load().await;
    let clients = aws::Clients::new(&sdk, false);
    let sqs = &clients.sqs;
    let stop = CancellationToken::new();
    tokio::spawn(cancel_on_signal(stop.clone()));
    let queues = dlq::locate(
        sqs,
        settings.queue_url.as_deref(),
        settings.dlq_url.as_deref(),
    )
    .await?;
    match settings.action.unwrap_or_default() {
        DlqAction::List(list) => {
            let listing = dlq::list(sqs, &queues.dlq_url, list.max_messages, &stop).await?;
            if let Some(n) = listing.own_max_receive_count {
                tracing::warn!(
                    dlq = %queues.dlq_url,
                    "the dead-letter queue has a redrive policy of its own (maxReceiveCount {n}): each listing counts as a receive, so a message listed often enough is moved on from it; remove that policy"
                );
            }
            if listing.interrupted {
                tracing::warn!("interrupted: only the messages seen so far are shown");
            } else if listing.truncated {
                tracing::warn!(
                    "more than {} messages: only the first are shown (--max-messages)",
                    list.max_messages
                );
            }
            match list.format {
                ListFormat::Table if listing.messages.is_empty() => {
                    emit(&format!(
                        "the dead-letter queue {} is empty\n",
                        queues.dlq_url
                    ))?;
                }
                ListFormat::Table => emit(&dlq::render_table(&listing.messages))?,
                ListFormat::Json => emit(&format!("{}\n", dlq::render_json(&listing.messages)))?,
            }
        }
        DlqAction::Redrive(redrive) => {
            let outcome = if redrive.all {
                dlq::redrive_all(sqs, &queues, !redrive.no_move_task, &stop).await?
            } else {
                dlq::redrive_ids(sqs, &queues, &redrive.message_id, &stop).await?
            };
            let main = queues.main_url.as_deref().unwrap_or_default();
            match outcome {
                dlq::Redriven::MoveTask {
                    handle,
                    source_arn,
                    messages,
                } => emit(&format!(
                    "started a message move task for about {messages} message(s) from {} to {main}\ntask handle: {handle}\nfollow it with: aws sqs list-message-move-tasks --source-arn {source_arn}\n",
                    queues.dlq_url
                ))?,
                dlq::Redriven::Moved { ids } => {
                    let mut text = format!(
                        "moved {} message(s) from {} to {main}\n",
                        ids.len(),
                        queues.dlq_url
                    );
                    for id in ids {
                        text.push_str(&id);
                        text.push('\n');
                    }
                    emit(&text)?;
                }
            }
        }
        DlqAction::Purge(purge) => {
            let count = dlq::purge(sqs, &queues.dlq_url, purge.yes).await?;
            emit(&format!(
                "purged {count} message(s) from {}\n",
                queues.dlq_url
            ))?;
        }
    }
    Ok(())
}
