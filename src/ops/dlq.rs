//! `fleetwatch dlq`: the operator's view of the dead-letter queue, and the
//! ways out of it: `list`, `redrive` and `purge`.
//!
//! # Listing without consuming
//!
//! SQS has no peek: the only way to read a message is to receive it. `list`
//! receives every message with a short visibility timeout ([`HOLD`]),
//! holding each one invisible until the listing is complete (so a message
//! is never returned, and counted, twice), then makes them all visible again
//! at once with `ChangeMessageVisibility 0`. Nothing is deleted; if the
//! command dies half-way, the held messages come back by themselves when
//! [`HOLD`] expires. Receiving increments each message's receive count:
//! harmless on a dead-letter queue without a redrive policy of its own (the
//! normal set-up, checked and warned about otherwise, as each listing would
//! bring its messages one receive closer to being moved on). The receive
//! count shown is the one before the listing's own receive. A listing that
//! outlasts [`HOLD`] (tens of thousands of messages) stops when a receive
//! brings only messages it has already seen.
//!
//! # Redriving without losing
//!
//! `redrive --all` asks SQS to move the messages itself
//! (`StartMessageMoveTask`, asynchronous; the task handle is reported).
//! Where that is not available (emulators such as moto 5.2 do not implement
//! it), with `--no-move-task`, and always for `--message-id`, each message is
//! received, sent to the worker's queue with the same body and attributes,
//! and only then deleted from the dead-letter queue. An interruption between
//! the send and the delete leaves the message in both queues: a duplicate,
//! harmless because processing is idempotent; never a loss. A message the
//! worker dead-letters again while a long `--all` runs (it needs
//! `maxReceiveCount` failed receives, so minutes) may be moved a second
//! time in the same run.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, Message, MessageSystemAttributeName,
    QueueAttributeName,
};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::notification::{self, Notification};

/// How long a received message stays invisible while `list` or `redrive`
/// holds it: long enough to finish a listing of thousands of messages, short
/// enough that messages held by a killed command come back soon.
pub const HOLD: Duration = Duration::from_secs(60);

/// Messages per `ReceiveMessage` (the SQS maximum).
const BATCH: i32 = 10;

/// Seconds a receive waits for messages: one second lets SQS answer from
/// all its servers (a short poll samples only some) without stalling.
const RECEIVE_WAIT_SECONDS: i32 = 1;

/// What went wrong, naming the resource and what to do.
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    /// An SQS call failed; `hint` says what to do about it.
    #[error("{action} on {resource} failed: {message}{hint}")]
    Call {
        action: &'static str,
        resource: String,
        message: String,
        hint: &'static str,
    },
    #[error(
        "no dead-letter queue to work on: set FLEETWATCH_QUEUE_URL (the worker's queue; its RedrivePolicy names the dead-letter queue) or --dlq-url"
    )]
    NoQueue,
    #[error(
        "{0} has no RedrivePolicy, so no dead-letter queue: check FLEETWATCH_QUEUE_URL, or give the dead-letter queue with --dlq-url"
    )]
    NoRedrivePolicy(String),
    #[error("the RedrivePolicy of {queue} is not understood ({policy}): give --dlq-url")]
    BadRedrivePolicy { queue: String, policy: String },
    #[error(
        "redrive needs the worker's queue to send the messages to: set FLEETWATCH_QUEUE_URL (or --queue-url)"
    )]
    NoMainQueue,
    #[error(
        "the dead-letter queue is the worker's queue itself ({0}): check FLEETWATCH_QUEUE_URL and --dlq-url"
    )]
    SameQueue(String),
    #[error(
        "not in the dead-letter queue {queue}: {ids:?} (already redriven, purged, expired, or held by another command; see `fleetwatch dlq list`)"
    )]
    NotFound { queue: String, ids: Vec<String> },
    /// Ctrl-C (or SIGTERM) stopped the command between two messages.
    #[error(
        "interrupted after moving {moved} message(s); the messages held were made visible again, run the command again to go on"
    )]
    Interrupted { moved: usize },
    #[error(
        "purge would delete {count} message(s) from {queue}, which cannot be undone: run `fleetwatch dlq purge --yes` to do it"
    )]
    PurgeNeedsYes { queue: String, count: u64 },
}

fn call_error<E>(action: &'static str, resource: &str, e: &E) -> DlqError
where
    E: ProvideErrorMetadata + std::error::Error,
{
    let message = DisplayErrorContext(e).to_string();
    let code = e.code().unwrap_or_default();
    let hint = if code.contains("AccessDenied") || message.contains("not authorized") {
        " (a missing IAM permission: the operator's credentials need this action on this queue)"
    } else if code.contains("NonExistentQueue") || code == "QueueDoesNotExist" {
        " (the queue does not exist: check the URL and AWS_REGION)"
    } else if code.contains("PurgeQueueInProgress") {
        " (SQS allows one purge per queue every 60 s: try again in a minute)"
    } else {
        ""
    };
    DlqError::Call {
        action,
        resource: resource.to_owned(),
        message,
        hint,
    }
}

/// The queues an action works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queues {
    /// The dead-letter queue.
    pub dlq_url: String,
    /// The worker's queue, when known: where `redrive` sends messages.
    pub main_url: Option<String>,
}

/// Finds the dead-letter queue: `dlq_url` when given, else the target of
/// the main queue's `RedrivePolicy`.
pub async fn locate(
    sqs: &aws_sdk_sqs::Client,
    main_url: Option<&str>,
    dlq_url: Option<&str>,
) -> Result<Queues, DlqError> {
    let dlq_url = match (dlq_url, main_url) {
        (Some(dlq), _) => dlq.to_owned(),
        (None, Some(main)) => {
            let policy = redrive_policy(sqs, main)
                .await?
                .ok_or_else(|| DlqError::NoRedrivePolicy(main.to_owned()))?;
            let bad = || DlqError::BadRedrivePolicy {
                queue: main.to_owned(),
                policy: policy.raw.clone(),
            };
            let arn = policy.dead_letter_target_arn.clone().ok_or_else(bad)?;
            // arn:aws:sqs:<region>:<account>:<name>
            let parts: Vec<&str> = arn.split(':').collect();
            let [_, _, "sqs", _, account, name] = parts.as_slice() else {
                return Err(bad());
            };
            sqs.get_queue_url()
                .queue_name(*name)
                .queue_owner_aws_account_id(*account)
                .send()
                .await
                .map_err(|e| call_error("sqs:GetQueueUrl", &arn, &e))?
                .queue_url
                .ok_or_else(bad)?
        }
        (None, None) => return Err(DlqError::NoQueue),
    };
    if main_url == Some(dlq_url.as_str()) {
        return Err(DlqError::SameQueue(dlq_url));
    }
    Ok(Queues {
        dlq_url,
        main_url: main_url.map(str::to_owned),
    })
}

/// A queue's redrive policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedrivePolicy {
    /// The policy as SQS returns it, for messages.
    pub raw: String,
    /// Where failing messages go.
    pub dead_letter_target_arn: Option<String>,
    /// Receives before a message is moved there.
    pub max_receive_count: Option<u64>,
}

/// The `RedrivePolicy` of a queue, `None` when it has none.
pub async fn redrive_policy(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
) -> Result<Option<RedrivePolicy>, DlqError> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .map_err(|e| call_error("sqs:GetQueueAttributes", queue_url, &e))?
        .attributes
        .unwrap_or_default();
    let Some(raw) = attributes
        .get(&QueueAttributeName::RedrivePolicy)
        .filter(|p| !p.trim().is_empty())
    else {
        return Ok(None);
    };
    let value: serde_json::Value = serde_json::from_str(raw).unwrap_or_default();
    Ok(Some(RedrivePolicy {
        raw: raw.clone(),
        dead_letter_target_arn: value["deadLetterTargetArn"].as_str().map(str::to_owned),
        max_receive_count: match &value["maxReceiveCount"] {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        },
    }))
}

/// Messages in a queue: visible, in flight and delayed.
pub async fn depth(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<u64, DlqError> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .map_err(|e| call_error("sqs:GetQueueAttributes", queue_url, &e))?
        .attributes
        .unwrap_or_default();
    Ok(attributes
        .values()
        .filter_map(|v| v.parse::<u64>().ok())
        .sum())
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<String, DlqError> {
    sqs.get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| call_error("sqs:GetQueueAttributes", queue_url, &e))?
        .attributes
        .unwrap_or_default()
        .remove(&QueueAttributeName::QueueArn)
        .ok_or_else(|| DlqError::Call {
            action: "sqs:GetQueueAttributes",
            resource: queue_url.to_owned(),
            message: "no QueueArn in the answer".into(),
            hint: "",
        })
}

/// One dead-lettered message as `list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DlqMessage {
    /// The SQS message id, what `redrive --message-id` takes.
    pub message_id: String,
    /// Receives before this listing (SQS counts the listing's own too).
    pub receive_count: u64,
    /// When the message was first received (RFC 3339), if SQS says.
    pub first_receive: Option<String>,
    /// When it was sent to the worker's queue (RFC 3339), if SQS says.
    pub sent: Option<String>,
    /// The objects the notification names, `s3://bucket/key`.
    pub objects: Vec<String>,
    /// Why the body names no object, when it names none.
    pub ignored: Option<String>,
}

impl DlqMessage {
    fn from_sqs(m: &Message) -> DlqMessage {
        let attribute = |name: MessageSystemAttributeName| {
            m.attributes
                .as_ref()
                .and_then(|a| a.get(&name))
                .map(String::as_str)
        };
        let (objects, ignored) = match notification::decode(m.body().unwrap_or_default()) {
            Notification::Objects(objects) => (
                objects
                    .iter()
                    .map(|o| format!("s3://{}/{}", o.bucket, o.key))
                    .collect(),
                None,
            ),
            Notification::Ignore { reason, detail } => {
                (Vec::new(), Some(format!("{reason}: {detail}")))
            }
        };
        DlqMessage {
            message_id: m.message_id().unwrap_or_default().to_owned(),
            receive_count: attribute(MessageSystemAttributeName::ApproximateReceiveCount)
                .and_then(|c| c.parse::<u64>().ok())
                .map_or(0, |c| c.saturating_sub(1)),
            first_receive: attribute(MessageSystemAttributeName::ApproximateFirstReceiveTimestamp)
                .and_then(rfc3339_from_millis),
            sent: attribute(MessageSystemAttributeName::SentTimestamp)
                .and_then(rfc3339_from_millis),
            objects,
            ignored,
        }
    }
}

fn rfc3339_from_millis(millis: &str) -> Option<String> {
    let millis: i128 = millis.trim().parse().ok()?;
    time::OffsetDateTime::from_unix_timestamp_nanos(millis * 1_000_000)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// The result of `list`.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    /// The messages, in the order they were received.
    pub messages: Vec<DlqMessage>,
    /// Whether `max_messages` stopped the listing before the queue was exhausted.
    pub truncated: bool,
    /// Whether Ctrl-C stopped the listing (what was seen is shown).
    pub interrupted: bool,
    /// The dead-letter queue's own `maxReceiveCount`, when it has a redrive
    /// policy (each listing brings its messages one receive closer to it).
    pub own_max_receive_count: Option<u64>,
}

/// One receive, or `None` when `stop` is cancelled first.
async fn receive(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    stop: &CancellationToken,
) -> Result<Option<Vec<Message>>, DlqError> {
    let call = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(BATCH)
        .visibility_timeout(HOLD.as_secs() as i32)
        .wait_time_seconds(RECEIVE_WAIT_SECONDS)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send();
    let call = async {
        call.await
            .map_err(|e| call_error("sqs:ReceiveMessage", queue_url, &e))
    };
    tokio::select! {
        biased;
        _ = stop.cancelled() => Ok(None),
        out = call => Ok(Some(out?.messages.unwrap_or_default())),
    }
}

/// Makes held messages visible again at once. Best effort: a message this
/// fails for comes back by itself when [`HOLD`] expires.
async fn release(sqs: &aws_sdk_sqs::Client, queue_url: &str, held: &[Message]) {
    for chunk in held.chunks(BATCH as usize) {
        let entries: Vec<ChangeMessageVisibilityBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle()?)
                    .visibility_timeout(0)
                    .build()
                    .ok()
            })
            .collect();
        if entries.is_empty() {
            continue;
        }
        match sqs
            .change_message_visibility_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(out) if out.failed.is_empty() => {}
            Ok(out) => tracing::warn!(
                queue = queue_url, failed = out.failed.len(), hold = ?HOLD,
                "some messages could not be made visible again; they come back when their hold expires"
            ),
            Err(e) => tracing::warn!(
                queue = queue_url, error = %DisplayErrorContext(&e), hold = ?HOLD,
                "held messages could not be made visible again; they come back when their hold expires"
            ),
        }
    }
}

/// Lists up to `max_messages` messages without consuming any (see the
/// module documentation). `stop` ends the listing early (what was seen
/// is shown, and everything held is released).
pub async fn list(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    max_messages: usize,
    stop: &CancellationToken,
) -> Result<Listing, DlqError> {
    let own_max_receive_count = redrive_policy(sqs, dlq_url)
        .await?
        .and_then(|p| p.max_receive_count);
    let mut held: Vec<Message> = Vec::new();
    let mut seen = HashSet::new();
    let mut truncated = false;
    let mut interrupted = false;
    let result: Result<(), DlqError> = async {
        loop {
            let Some(batch) = receive(sqs, dlq_url, stop).await? else {
                interrupted = true;
                return Ok(());
            };
            if batch.is_empty() {
                return Ok(());
            }
            let before = seen.len();
            for m in batch {
                // Held messages are not received again; a duplicate
                // delivery of one (standard queues) is shown once, and
                // every receipt is released.
                seen.insert(m.message_id().unwrap_or_default().to_owned());
                held.push(m);
            }
            // Only messages already seen: their hold expired (a listing
            // longer than HOLD), so the queue is going round; stop.
            if seen.len() == before {
                return Ok(());
            }
            // One message past the limit tells a full queue from a cut one.
            if seen.len() > max_messages {
                truncated = true;
                return Ok(());
            }
        }
    }
    .await;
    let mut shown = HashSet::new();
    let messages = held
        .iter()
        .filter(|m| shown.insert(m.message_id().unwrap_or_default().to_owned()))
        .take(max_messages)
        .map(DlqMessage::from_sqs)
        .collect();
    release(sqs, dlq_url, &held).await;
    result?;
    Ok(Listing {
        messages,
        truncated,
        interrupted,
        own_max_receive_count,
    })
}

/// `list` as aligned columns.
pub fn render_table(messages: &[DlqMessage]) -> String {
    let rows: Vec<[String; 4]> = messages
        .iter()
        .map(|m| {
            let objects = if m.objects.is_empty() {
                format!("(none: {})", m.ignored.as_deref().unwrap_or("empty"))
            } else {
                m.objects.join(" ")
            };
            [
                m.message_id.clone(),
                m.receive_count.to_string(),
                m.first_receive.clone().unwrap_or_else(|| "-".into()),
                objects,
            ]
        })
        .collect();
    let header = ["MESSAGE ID", "RECEIVES", "FIRST RECEIVE", "OBJECTS"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: [&str; 4]| {
        format!(
            "{:<w0$}  {:>w1$}  {:<w2$}  {}\n",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        )
    };
    let mut out = line(header);
    for row in &rows {
        out.push_str(&line([&row[0], &row[1], &row[2], &row[3]]));
    }
    out
}

/// `list` as one JSON array.
pub fn render_json(messages: &[DlqMessage]) -> String {
    serde_json::to_string_pretty(messages).unwrap_or_else(|_| "[]".into())
}

/// What `redrive` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redriven {
    /// SQS moves the messages itself, asynchronously.
    MoveTask {
        /// The task's handle (for `CancelMessageMoveTask`).
        handle: String,
        /// The dead-letter queue's ARN, what `ListMessageMoveTasks` takes.
        source_arn: String,
        /// Messages in the dead-letter queue when the task started.
        messages: u64,
    },
    /// The messages were received, sent and deleted here.
    Moved {
        /// The ids (in the dead-letter queue) of the messages moved.
        ids: Vec<String>,
    },
}

/// Moves every message back to the worker's queue.
pub async fn redrive_all(
    sqs: &aws_sdk_sqs::Client,
    queues: &Queues,
    use_move_task: bool,
    stop: &CancellationToken,
) -> Result<Redriven, DlqError> {
    let main_url = queues.main_url.as_deref().ok_or(DlqError::NoMainQueue)?;
    if use_move_task {
        let source = queue_arn(sqs, &queues.dlq_url).await?;
        let destination = queue_arn(sqs, main_url).await?;
        let messages = depth(sqs, &queues.dlq_url).await?;
        match sqs
            .start_message_move_task()
            .source_arn(&source)
            .destination_arn(&destination)
            .send()
            .await
        {
            Ok(out) => {
                return Ok(Redriven::MoveTask {
                    handle: out.task_handle.unwrap_or_default(),
                    source_arn: source,
                    messages,
                });
            }
            Err(e) => tracing::warn!(
                code = e.code().unwrap_or("none"),
                http_status = e.raw_response().map_or(0, |r| r.status().as_u16()),
                message = e.message().unwrap_or_default(),
                "StartMessageMoveTask is not available here; moving the messages one by one (receive, send, delete)"
            ),
        }
    }
    move_messages(sqs, &queues.dlq_url, main_url, None, stop).await
}

/// Moves the given messages back to the worker's queue; fails naming the
/// ids that were not found (after moving the others).
pub async fn redrive_ids(
    sqs: &aws_sdk_sqs::Client,
    queues: &Queues,
    ids: &[String],
    stop: &CancellationToken,
) -> Result<Redriven, DlqError> {
    let main_url = queues.main_url.as_deref().ok_or(DlqError::NoMainQueue)?;
    let wanted: HashSet<String> = ids.iter().cloned().collect();
    let moved = move_messages(sqs, &queues.dlq_url, main_url, Some(&wanted), stop).await?;
    if let Redriven::Moved { ids: done } = &moved {
        let missing: Vec<String> = ids
            .iter()
            .filter(|id| !done.contains(id))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(DlqError::NotFound {
                queue: queues.dlq_url.clone(),
                ids: missing,
            });
        }
    }
    Ok(moved)
}

/// Receive → send → delete, message by message (see the module
/// documentation); `wanted: None` moves everything.
async fn move_messages(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    main_url: &str,
    wanted: Option<&HashSet<String>>,
    stop: &CancellationToken,
) -> Result<Redriven, DlqError> {
    let mut moved: Vec<String> = Vec::new();
    let mut done: HashSet<String> = HashSet::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut held: Vec<Message> = Vec::new();
    let result: Result<(), DlqError> = async {
        loop {
            if wanted.is_some_and(|w| w.len() == done.len()) {
                return Ok(());
            }
            let Some(batch) = receive(sqs, dlq_url, stop).await? else {
                return Err(DlqError::Interrupted { moved: done.len() });
            };
            if batch.is_empty() {
                return Ok(());
            }
            // Only messages already looked at (held past their HOLD, or
            // delivered twice): everything has been seen once; stop.
            let fresh = batch
                .iter()
                .filter(|m| seen.insert(m.message_id().unwrap_or_default().to_owned()))
                .count();
            if fresh == 0 {
                held.extend(batch);
                return Ok(());
            }
            let mut batch = batch.into_iter();
            while let Some(m) = batch.next() {
                let id = m.message_id().unwrap_or_default().to_owned();
                let take = wanted.is_none_or(|w| w.contains(&id)) && !done.contains(&id);
                if !take {
                    held.push(m);
                    continue;
                }
                // Between two messages, never between a send and its delete.
                if stop.is_cancelled() {
                    held.push(m);
                    held.extend(batch);
                    return Err(DlqError::Interrupted { moved: done.len() });
                }
                if let Err(e) = move_one(sqs, dlq_url, main_url, &m).await {
                    // This one and the rest of the batch go back at once;
                    // the one that failed may now be in both queues.
                    held.push(m);
                    held.extend(batch);
                    return Err(e);
                }
                tracing::info!(message_id = %id, "moved to the worker's queue");
                done.insert(id.clone());
                moved.push(id);
            }
        }
    }
    .await;
    release(sqs, dlq_url, &held).await;
    result?;
    Ok(Redriven::Moved { ids: moved })
}

/// Sends one message to the worker's queue, then deletes it from the
/// dead-letter queue: in that order, so a failure in between duplicates it.
async fn move_one(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    main_url: &str,
    m: &Message,
) -> Result<(), DlqError> {
    let system = |name: MessageSystemAttributeName| {
        m.attributes.as_ref().and_then(|a| a.get(&name)).cloned()
    };
    let attributes: Option<HashMap<_, _>> = m.message_attributes.clone().filter(|a| !a.is_empty());
    let mut send = sqs
        .send_message()
        .queue_url(main_url)
        .message_body(m.body().unwrap_or_default())
        .set_message_attributes(attributes);
    // FIFO queues: keep the group; the dead-letter id is a stable
    // deduplication id, so a retried send is not a second copy.
    if let Some(group) = system(MessageSystemAttributeName::MessageGroupId) {
        send = send
            .message_group_id(group)
            .message_deduplication_id(m.message_id().unwrap_or_default());
    }
    send.send()
        .await
        .map_err(|e| call_error("sqs:SendMessage", main_url, &e))?;
    let handle = m.receipt_handle().unwrap_or_default();
    sqs.delete_message()
        .queue_url(dlq_url)
        .receipt_handle(handle)
        .send()
        .await
        .map_err(|e| call_error("sqs:DeleteMessage", dlq_url, &e))?;
    Ok(())
}

/// Deletes every message of the dead-letter queue, after `confirmed`;
/// returns how many there were.
pub async fn purge(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    confirmed: bool,
) -> Result<u64, DlqError> {
    let count = depth(sqs, dlq_url).await?;
    if !confirmed {
        return Err(DlqError::PurgeNeedsYes {
            queue: dlq_url.to_owned(),
            count,
        });
    }
    sqs.purge_queue()
        .queue_url(dlq_url)
        .send()
        .await
        .map_err(|e| call_error("sqs:PurgeQueue", dlq_url, &e))?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(
            rfc3339_from_millis("1760914020000").as_deref(),
            Some("2025-10-19T22:47:00Z")
        );
        assert_eq!(rfc3339_from_millis("soon"), None);
    }

    #[test]
    fn table_has_a_header_and_one_row_per_message() {
        let text = render_table(&[DlqMessage {
            message_id: "m-1".into(),
            receive_count: 5,
            first_receive: None,
            sent: None,
            objects: vec!["s3://b/k".into()],
            ignored: None,
        }]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("MESSAGE ID"), "{text}");
        assert!(
            lines[1].contains("m-1") && lines[1].contains("s3://b/k"),
            "{text}"
        );
    }
}
