//! The SQS loop: receive notifications, process each message in its own
//! task under a concurrency limit, delete a message only once its work is
//! durable, and shut down gracefully.
//!
//! Shutdown uses two tokens. `shutdown` (SIGTERM) stops receiving at once;
//! the tasks already running get `shutdown_grace` to finish. When the grace
//! runs out, `abort` is cancelled: each unfinished task drops its work and
//! makes its message visible again (`ChangeMessageVisibility` 0) so another
//! worker takes it immediately instead of after the visibility timeout.
//! Dropping work half-way is safe because every write is idempotent.
//!
//! **Outages cost time, not messages.** A step that fails because a
//! dependency is down is retried in place while the message is held (see
//! [`crate::retry`]): its visibility keeps being extended, so its receive
//! count does not move and the redrive policy never sees it. While every
//! slot is held, nothing more is received. A message whose readings are
//! stored and whose alerts alone wait (SNS or the alert ledger failing)
//! gives its processing slot back — up to [`PARKED_PER_SLOT`] such messages
//! per slot — so traffic that needs no alert keeps flowing.
//!
//! **Deleting.** A message is deleted once everything it owes is durable,
//! never before. Messages that finish while a delete call is in flight are
//! deleted together, with one `DeleteMessageBatch` (up to ten), by one
//! [`Deleter`] task; each message's task waits for its own entry's result,
//! and an entry SQS refuses (a receipt that is no longer valid) only costs
//! that message a redelivery, redone idempotently.
//!
//! **The lease.** The visibility is extended every third of the timeout by
//! a full timeout; a failed extension is retried with backoff until the
//! current lease ends, so one failed call never loses it. When the lease is
//! lost anyway (SQS no longer knows the receipt, or the lease ran out), the
//! work is dropped: another worker may have the message now.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::operation::change_message_visibility::builders::ChangeMessageVisibilityFluentBuilder;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::alerts::{Alert, AlertError, ClaimOwner};
use crate::aws;
use crate::health::Health;
use crate::metrics;
use crate::notification::{self, Notification};
use crate::pipeline::{ObjectOutcome, Pipeline, ProcessError};
use crate::retry::{self, Attempt};

/// SQS returns at most ten messages per receive.
const MAX_RECEIVE: usize = 10;
/// Long polling: the longest wait SQS allows.
const WAIT_SECONDS: i32 = 20;
/// SQS refuses to keep a message invisible longer than this after receipt.
const MAX_INVISIBLE: Duration = Duration::from_secs(12 * 3600);
/// A held message is released this long before SQS's ceiling, so its
/// redelivery delay is set by us rather than by the ceiling.
const HOLD_MARGIN: Duration = Duration::from_secs(5 * 60);
/// Messages waiting only for their alerts, per processing slot.
pub const PARKED_PER_SLOT: usize = 8;
/// The first redelivery delay after a failure (the policy lives in
/// [`crate::retry`]; this name is kept for the binary's wiring).
pub use crate::retry::REDELIVERY_BASE as RETRY_BASE;

/// Settings of the loop itself.
#[derive(Debug, Clone)]
pub struct LoopSettings {
    pub queue_url: String,
    pub concurrency: usize,
    pub visibility_timeout: Duration,
    pub shutdown_grace: Duration,
    /// First redelivery delay after a failure; doubles with each receive.
    pub retry_base: Duration,
}

/// The long-running worker.
pub struct Worker {
    sqs: aws_sdk_sqs::Client,
    pipeline: Arc<Pipeline>,
    settings: LoopSettings,
    health: Health,
}

/// What a message task needs; cheap to clone into each task.
#[derive(Clone)]
struct TaskContext {
    sqs: aws_sdk_sqs::Client,
    pipeline: Arc<Pipeline>,
    queue_url: Arc<str>,
    health: Health,
    /// Slots of messages waiting only for their alerts (see the module
    /// documentation).
    parked: Arc<Semaphore>,
    visibility_timeout: Duration,
    retry_base: Duration,
    /// Deletes finished messages, several per call (see the module
    /// documentation).
    deleter: Deleter,
}

impl Worker {
    pub fn new(
        sqs: aws_sdk_sqs::Client,
        pipeline: Arc<Pipeline>,
        settings: LoopSettings,
        health: Health,
    ) -> Self {
        Worker {
            sqs,
            pipeline,
            settings,
            health,
        }
    }

    /// Runs until `shutdown` is cancelled and in-flight work is finished or
    /// returned to the queue.
    pub async fn run(self, shutdown: CancellationToken) {
        let permits = Arc::new(Semaphore::new(self.settings.concurrency));
        let abort = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let mut backoff = retry::RECEIVE.backoff();
        let (deleter, deleting) = Deleter::start(self.sqs.clone(), self.settings.queue_url.clone());
        let ctx = TaskContext {
            sqs: self.sqs.clone(),
            pipeline: self.pipeline.clone(),
            queue_url: self.settings.queue_url.as_str().into(),
            health: self.health.clone(),
            parked: Arc::new(Semaphore::new(
                self.settings.concurrency.saturating_mul(PARKED_PER_SLOT),
            )),
            visibility_timeout: self.settings.visibility_timeout,
            retry_base: self.settings.retry_base,
            deleter,
        };
        self.health.set_running(true);
        tracing::info!(queue_url = %self.settings.queue_url, concurrency = self.settings.concurrency, "worker started");

        loop {
            // Wait for a free slot before asking for work, so a message is
            // never received that cannot start at once. While a dependency
            // is down every slot is held, and so nothing more is received.
            let first = tokio::select! {
                _ = shutdown.cancelled() => break,
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break, // the semaphore is never closed
                },
            };
            let free = (1 + permits.available_permits()).min(MAX_RECEIVE);
            let received = tokio::select! {
                // Dropping an in-flight receive is harmless: any message it
                // took reappears after its visibility timeout.
                _ = shutdown.cancelled() => break,
                r = self.receive(free) => r,
            };
            self.health.liveness().progress(); // the loop turned
            let messages = match received {
                Ok(messages) => {
                    backoff.reset();
                    self.health.set_receive_ok(true);
                    messages
                }
                Err(message) => {
                    metrics::receive_error();
                    self.health.set_receive_ok(false);
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %message, retry_in = ?delay, "receiving from SQS failed");
                    drop(first);
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(delay) => continue,
                    }
                }
            };
            metrics::messages_received(messages.len());
            let mut first = Some(first);
            for message in messages {
                let permit = match first.take() {
                    Some(p) => p,
                    // Only this loop takes permits, so `free` of them are there.
                    None => match permits.clone().acquire_owned().await {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                };
                tasks.spawn(handle_message(ctx.clone(), message, permit, abort.clone()));
            }
            while let Some(done) = tasks.try_join_next() {
                log_task_end(done);
            }
        }

        self.health.set_running(false);
        tracing::info!(in_flight = tasks.len(), grace = ?self.settings.shutdown_grace, "shutting down: no more receives");
        let drain = async {
            while let Some(done) = tasks.join_next().await {
                log_task_end(done);
            }
        };
        if tokio::time::timeout(self.settings.shutdown_grace, drain)
            .await
            .is_err()
        {
            tracing::warn!(
                unfinished = tasks.len(),
                "grace period over: returning unfinished messages to the queue"
            );
            abort.cancel();
            while let Some(done) = tasks.join_next().await {
                log_task_end(done);
            }
        }
        // Every task has ended: the last deletions go out, then it stops.
        drop(ctx);
        if let Err(e) = deleting.await {
            tracing::error!(error = %e, "the deleting task panicked");
        }
        tracing::info!("worker stopped");
    }

    async fn receive(&self, max: usize) -> Result<Vec<Message>, String> {
        let output = self
            .sqs
            .receive_message()
            .queue_url(&self.settings.queue_url)
            .max_number_of_messages(max as i32)
            .wait_time_seconds(WAIT_SECONDS)
            .visibility_timeout(self.settings.visibility_timeout.as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .customize()
            .config_override(aws::long_poll(
                &self.sqs,
                Duration::from_secs(WAIT_SECONDS as u64),
            ))
            .send()
            .await
            .map_err(|e| DisplayErrorContext(&e).to_string())?;
        Ok(output.messages.unwrap_or_default())
    }
}

fn log_task_end(result: Result<(), tokio::task::JoinError>) {
    if let Err(e) = result {
        // A panic is a bug; the message stays invisible until its timeout
        // and is then redelivered, so no work is lost.
        tracing::error!(error = %e, "message task panicked");
    }
}

/// Decrements the in-flight gauge however the task ends.
struct InFlight;

impl InFlight {
    fn start() -> InFlight {
        metrics::in_flight(1.0);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::in_flight(-1.0);
    }
}

/// The capacity a message task holds: a processing slot (one of
/// `FLEETWATCH_CONCURRENCY`) or, once only its alerts wait, a parked one.
struct Slot {
    processing: Option<OwnedSemaphorePermit>,
    parked: Option<OwnedSemaphorePermit>,
}

impl Slot {
    /// Trades the processing slot for a parked one, if one is free; else
    /// the message keeps its slot (back-pressure on receiving).
    fn park(&mut self, pool: &Arc<Semaphore>) {
        if self.parked.is_some() {
            return;
        }
        if let Ok(parked) = pool.clone().try_acquire_owned() {
            self.parked = Some(parked);
            self.processing = None;
            metrics::messages_parked(1.0);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.parked.is_some() {
            metrics::messages_parked(-1.0);
        }
    }
}

/// Processes one message from receipt to deletion (or return).
async fn handle_message(
    ctx: TaskContext,
    message: Message,
    permit: OwnedSemaphorePermit,
    abort: CancellationToken,
) {
    let _in_flight = InFlight::start();
    let mut slot = Slot {
        processing: Some(permit),
        parked: None,
    };
    let received_at = Instant::now();
    let message_id = message.message_id().unwrap_or_default().to_owned();
    let Some(receipt) = message.receipt_handle().map(str::to_owned) else {
        tracing::error!(%message_id, "message without a receipt handle");
        return;
    };
    let attribute = |name: MessageSystemAttributeName| {
        message
            .attributes()
            .and_then(|a| a.get(&name))
            .map(String::as_str)
    };
    let receive_count: u32 = attribute(MessageSystemAttributeName::ApproximateReceiveCount)
        .and_then(|c| c.parse().ok())
        .unwrap_or(1);
    if let Some(sent_ms) =
        attribute(MessageSystemAttributeName::SentTimestamp).and_then(|s| s.parse::<u64>().ok())
    {
        let now_ms = u64::try_from(crate::telemetry::Timestamp::now().unix_millis()).unwrap_or(0);
        metrics::queue_lag(Duration::from_millis(now_ms.saturating_sub(sent_ms)));
    }

    let objects = match notification::decode(message.body().unwrap_or_default()) {
        Notification::Ignore { reason, detail } => {
            metrics::message_ignored(reason.as_str());
            tracing::info!(%message_id, reason = reason.as_str(), detail, "ignoring message");
            delete(&ctx, &receipt, &message_id).await;
            return;
        }
        Notification::Objects(objects) => objects,
    };

    let owner = ClaimOwner::new(&message_id, receive_count);
    let attempt = Attempt {
        health: ctx.health.dependencies(),
        owner: &owner,
        liveness: ctx.health.liveness(),
        hold_until: received_at + MAX_INVISIBLE.saturating_sub(HOLD_MARGIN),
    };
    let work = async {
        // Every object is attempted even when an earlier one fails, so one
        // bad object does not hold back the others' work; the message is
        // kept while any object still needs redoing.
        let mut first_error = None;
        let mut alerts = Vec::new();
        for object in &objects {
            let result = ctx.pipeline.process_object(object, attempt).await;
            ctx.health.liveness().progress(); // an object finished
            match result {
                Ok(processed) => {
                    log_outcome(&message_id, object, &processed.outcome);
                    alerts.extend(processed.alerts);
                }
                Err(e) => {
                    tracing::warn!(%message_id, bucket = %object.bucket, key = %object.key, error = %e, "object failed; it will be retried");
                    first_error.get_or_insert(e);
                }
            }
        }
        // The alerts of the objects that went through are durable news:
        // they go out even if another object of the message failed.
        if let Err(e) = deliver_alerts(&ctx, &mut slot, attempt, &alerts).await {
            first_error.get_or_insert(ProcessError::Alert(e));
        }
        first_error.map_or(Ok(()), Err)
    };

    tokio::select! {
        result = work => match result {
            Ok(()) => delete(&ctx, &receipt, &message_id).await,
            Err(e) => {
                metrics::message_failed(e.reason());
                let delay = retry::redelivery_delay(ctx.retry_base, receive_count);
                tracing::warn!(%message_id, receive_count, retry_in = ?delay, error = %e,
                    "message left for redelivery; the queue's redrive policy dead-letters it after maxReceiveCount receives");
                set_visibility(&ctx, &receipt, delay).await;
            }
        },
        why = heartbeat(&ctx, &receipt, received_at, &message_id) => {
            metrics::lease_lost();
            tracing::warn!(%message_id, why, "lost the message's lease; dropping its work (whoever receives it next redoes it, idempotently)");
        }
        _ = abort.cancelled() => {
            set_visibility(&ctx, &receipt, Duration::ZERO).await;
            metrics::message_returned();
            tracing::info!(%message_id, "returned unfinished message to the queue");
        }
    }
}

/// Publishes the message's alerts. The readings are stored by now, so
/// when publishing fails in a way that may pass, the message gives back
/// its processing slot while it retries (see the module documentation).
async fn deliver_alerts(
    ctx: &TaskContext,
    slot: &mut Slot,
    attempt: Attempt<'_>,
    alerts: &[Alert],
) -> Result<(), AlertError> {
    if alerts.is_empty() {
        return Ok(());
    }
    let parked = &ctx.parked;
    retry::hold_with(
        attempt,
        "publishing alerts",
        || {
            if slot.parked.is_none() {
                slot.park(parked);
            }
        },
        || ctx.pipeline.deliver_alerts(alerts, attempt.owner),
    )
    .await
    .map(|_| ())
}

fn log_outcome(message_id: &str, object: &notification::ObjectRef, outcome: &ObjectOutcome) {
    match outcome {
        ObjectOutcome::Processed(r) => tracing::info!(
            message_id, bucket = %object.bucket, key = %object.key,
            stored = r.stored, rejected = r.rejected, alerts = r.alerts, bytes = r.bytes, gzip = r.gzip,
            "object processed"
        ),
        // Logged where they are decided.
        ObjectOutcome::Missing | ObjectOutcome::Skipped | ObjectOutcome::Rejected { .. } => {}
        ObjectOutcome::Corrupt { report, reason } => tracing::warn!(
            message_id, bucket = %object.bucket, key = %object.key,
            stored = report.stored, rejected = report.rejected, reason,
            "object is corrupt; the lines before the damage were processed"
        ),
    }
}

/// Keeps the message invisible while it is worked on (see the module
/// documentation). Returns only when the lease is lost, saying why.
async fn heartbeat(
    ctx: &TaskContext,
    receipt: &str,
    received_at: Instant,
    message_id: &str,
) -> &'static str {
    let timeout = ctx.visibility_timeout;
    let mut lease_end = received_at + timeout;
    let mut next = received_at + timeout / 3;
    loop {
        tokio::time::sleep_until(next).await;
        let left_under_ceiling =
            MAX_INVISIBLE.saturating_sub(received_at.elapsed() + Duration::from_secs(1));
        let extend = timeout.min(left_under_ceiling);
        if extend.is_zero() {
            tracing::warn!(
                message_id,
                "message reached SQS's 12-hour visibility ceiling; it becomes visible again"
            );
            tokio::time::sleep_until(lease_end).await;
            return "the 12-hour visibility ceiling";
        }
        let mut backoff = retry::HEARTBEAT.backoff();
        loop {
            let sent = Instant::now();
            let Some(left) = lease_end
                .checked_duration_since(sent)
                .filter(|d| !d.is_zero())
            else {
                return "every extension failed until the lease ran out";
            };
            let call = change_visibility(ctx, receipt, extend).send();
            // An extension that answers after the lease ended is worthless:
            // wait no longer than the lease.
            match tokio::time::timeout(left, call).await {
                Ok(Ok(_)) => {
                    metrics::visibility_extended();
                    lease_end = sent + extend;
                    break;
                }
                Ok(Err(e)) => {
                    let gone = e.as_service_error().is_some_and(|s| {
                        s.is_receipt_handle_is_invalid() || s.is_message_not_inflight()
                    });
                    if gone {
                        tracing::warn!(message_id, error = %DisplayErrorContext(&e), "SQS no longer knows the message's receipt");
                        return "SQS no longer knows the receipt";
                    }
                    tracing::warn!(message_id, error = %DisplayErrorContext(&e), lease_left = ?left, "could not extend the message's visibility; retrying");
                }
                Err(_) => {
                    tracing::warn!(
                        message_id,
                        "extending the message's visibility did not answer before the lease ended"
                    );
                }
            }
            let pause = backoff.next_delay();
            tokio::time::sleep_until((Instant::now() + pause).min(lease_end)).await;
        }
        next = Instant::now() + timeout / 3;
    }
}

async fn delete(ctx: &TaskContext, receipt: &str, message_id: &str) {
    match ctx.deleter.delete(receipt).await {
        Ok(()) => metrics::message_deleted(),
        // The work is durable; the message will be redelivered and redone
        // idempotently. Nothing is lost.
        Err(error) => {
            tracing::warn!(message_id, error, "could not delete a processed message")
        }
    }
}

/// One message to delete, and where its result goes.
struct Deletion {
    receipt: String,
    done: oneshot::Sender<Result<(), String>>,
}

/// The handle of the task that deletes finished messages: whatever is
/// waiting when a call can go out goes in it, up to SQS's ten per batch,
/// so no message waits for others to finish.
#[derive(Clone)]
struct Deleter {
    queue: mpsc::UnboundedSender<Deletion>,
}

impl Deleter {
    /// Starts the task; it ends once every handle is dropped and the
    /// deletions asked for are done.
    fn start(
        sqs: aws_sdk_sqs::Client,
        queue_url: String,
    ) -> (Deleter, tokio::task::JoinHandle<()>) {
        let (queue, mut waiting) = mpsc::unbounded_channel::<Deletion>();
        let task = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_RECEIVE);
            while waiting.recv_many(&mut batch, MAX_RECEIVE).await > 0 {
                let receipts: Vec<&str> = batch.iter().map(|d| d.receipt.as_str()).collect();
                let results = delete_batch(&sqs, &queue_url, &receipts).await;
                for (deletion, result) in batch.drain(..).zip(results) {
                    // The message's task may have been aborted meanwhile.
                    let _ = deletion.done.send(result);
                }
            }
        });
        (Deleter { queue }, task)
    }

    /// Deletes one message (with whatever else is waiting).
    async fn delete(&self, receipt: &str) -> Result<(), String> {
        let (done, result) = oneshot::channel();
        let deletion = Deletion {
            receipt: receipt.to_owned(),
            done,
        };
        if self.queue.send(deletion).is_err() {
            return Err("the worker is stopping".into());
        }
        result
            .await
            .unwrap_or_else(|_| Err("the deleting task ended".into()))
    }
}

/// Deletes up to ten messages by receipt handle in one call; one result per
/// receipt, in order: `Err` says why SQS (or the call) did not delete it.
pub async fn delete_batch(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    receipts: &[&str],
) -> Vec<Result<(), String>> {
    if let [receipt] = receipts {
        // One message: the plain call, as cheap and simpler to read in logs.
        let result = sqs
            .delete_message()
            .queue_url(queue_url)
            .receipt_handle(*receipt)
            .send()
            .await;
        return vec![
            result
                .map(|_| ())
                .map_err(|e| DisplayErrorContext(&e).to_string()),
        ];
    }
    let mut entries = Vec::with_capacity(receipts.len());
    for (i, receipt) in receipts.iter().enumerate() {
        match DeleteMessageBatchRequestEntry::builder()
            .id(i.to_string())
            .receipt_handle(*receipt)
            .build()
        {
            Ok(entry) => entries.push(entry),
            Err(e) => return receipts.iter().map(|_| Err(e.to_string())).collect(),
        }
    }
    let output = match sqs
        .delete_message_batch()
        .queue_url(queue_url)
        .set_entries(Some(entries))
        .send()
        .await
    {
        Ok(output) => output,
        Err(e) => {
            let error = DisplayErrorContext(&e).to_string();
            return receipts.iter().map(|_| Err(error.clone())).collect();
        }
    };
    // An entry SQS names neither as deleted nor as failed is not taken
    // as deleted.
    let mut results: Vec<Result<(), String>> = receipts
        .iter()
        .map(|_| Err("DeleteMessageBatch did not report this entry".to_owned()))
        .collect();
    for ok in output.successful() {
        if let Some(slot) = ok
            .id()
            .parse::<usize>()
            .ok()
            .and_then(|i| results.get_mut(i))
        {
            *slot = Ok(());
        }
    }
    for failed in output.failed() {
        if let Some(slot) = failed
            .id()
            .parse::<usize>()
            .ok()
            .and_then(|i| results.get_mut(i))
        {
            *slot = Err(format!(
                "{}: {}",
                failed.code(),
                failed.message().unwrap_or_default()
            ));
        }
    }
    results
}

async fn set_visibility(ctx: &TaskContext, receipt: &str, delay: Duration) {
    let result = change_visibility(ctx, receipt, delay).send().await;
    if let Err(e) = result {
        tracing::warn!(error = %DisplayErrorContext(&e), "could not change a message's visibility; it reappears after its timeout");
    }
}

/// The `ChangeMessageVisibility` call both the heartbeat (extending the
/// lease) and a failure (setting the redelivery delay) make, capped at
/// SQS's ceiling.
fn change_visibility(
    ctx: &TaskContext,
    receipt: &str,
    timeout: Duration,
) -> ChangeMessageVisibilityFluentBuilder {
    let seconds = timeout.as_secs().min(MAX_INVISIBLE.as_secs()) as i32;
    ctx.sqs
        .change_message_visibility()
        .queue_url(&*ctx.queue_url)
        .receipt_handle(receipt)
        .visibility_timeout(seconds)
}
