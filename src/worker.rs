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
//! While messages fail, the [`Breaker`] pauses receiving (with an
//! occasional single-message probe), so an outage of a dependency does not
//! burn through the messages' receive counts into the dead-letter queue.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::aws;
use crate::backoff::Backoff;
use crate::breaker::{Breaker, Gate};
use crate::health::Health;
use crate::metrics;
use crate::notification::{self, Notification};
use crate::pipeline::{ObjectOutcome, Pipeline};

/// SQS returns at most ten messages per receive.
const MAX_RECEIVE: usize = 10;
/// Long polling: the longest wait SQS allows.
const WAIT_SECONDS: i32 = 20;
/// SQS refuses to keep a message invisible longer than this after receipt.
const MAX_INVISIBLE: Duration = Duration::from_secs(12 * 3600);
/// Redelivery delay after a failure: `retry_base * 2^(receives-1)`, capped.
pub const RETRY_BASE: Duration = Duration::from_secs(10);
const RETRY_MAX: Duration = Duration::from_secs(15 * 60);

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
    breaker: Arc<Breaker>,
}

/// What a message task needs; cheap to clone into each task.
#[derive(Clone)]
struct TaskContext {
    sqs: aws_sdk_sqs::Client,
    pipeline: Arc<Pipeline>,
    queue_url: Arc<str>,
    health: Health,
    breaker: Arc<Breaker>,
    visibility_timeout: Duration,
    retry_base: Duration,
}

impl Worker {
    pub fn new(
        sqs: aws_sdk_sqs::Client,
        pipeline: Arc<Pipeline>,
        settings: LoopSettings,
        health: Health,
    ) -> Self {
        Worker {
            breaker: Arc::new(Breaker::default()),
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
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
        let ctx = TaskContext {
            sqs: self.sqs.clone(),
            pipeline: self.pipeline.clone(),
            queue_url: self.settings.queue_url.as_str().into(),
            health: self.health.clone(),
            breaker: self.breaker.clone(),
            visibility_timeout: self.settings.visibility_timeout,
            retry_base: self.settings.retry_base,
        };
        self.health.set_running(true);
        tracing::info!(queue_url = %self.settings.queue_url, concurrency = self.settings.concurrency, "worker started");

        loop {
            // While messages fail (a dependency is down), receive only an
            // occasional probe: see `breaker`.
            let probing = match self.breaker.gate() {
                Gate::Closed => false,
                Gate::Probing => {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = self.breaker.changed() => continue,
                    }
                }
                Gate::PausedUntil(until) => {
                    tracing::info!(resume_in = ?until.saturating_duration_since(tokio::time::Instant::now()),
                        "messages are failing: receiving is paused, then one message is tried");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep_until(until) => {}
                    }
                    if self.breaker.gate() != Gate::Closed {
                        self.breaker.start_probe();
                    }
                    true
                }
            };
            // Wait for a free slot before asking for work, so a message is
            // never received that cannot start at once.
            let first = tokio::select! {
                _ = shutdown.cancelled() => break,
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break, // the semaphore is never closed
                },
            };
            let free = if probing {
                1
            } else {
                (1 + permits.available_permits()).min(MAX_RECEIVE)
            };
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
                    if probing {
                        self.breaker.probe_found_nothing();
                    }
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
            if probing && messages.is_empty() {
                self.breaker.probe_found_nothing();
            }
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

/// Reports a message's outcome to the breaker exactly once. A message
/// that proves nothing about the dependencies (ignored, returned at
/// shutdown, a panicked task) still ends a probe, so the loop never waits
/// on a probe that will not report.
struct Outcome {
    breaker: Arc<Breaker>,
    reported: bool,
}

impl Outcome {
    fn success(mut self) {
        self.reported = true;
        self.breaker.success();
    }

    fn failure(mut self) {
        self.reported = true;
        self.breaker.failure();
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        if !self.reported {
            self.breaker.probe_found_nothing();
        }
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

/// Processes one message from receipt to deletion (or return).
async fn handle_message(
    ctx: TaskContext,
    message: Message,
    _permit: OwnedSemaphorePermit,
    abort: CancellationToken,
) {
    let _in_flight = InFlight::start();
    let outcome = Outcome {
        breaker: ctx.breaker.clone(),
        reported: false,
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
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
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

    let work = async {
        // Every object is attempted even when an earlier one fails, so one
        // bad object does not hold back the others' work; the message is
        // kept while any object still needs redoing.
        let mut first_error = None;
        for object in &objects {
            let result = ctx.pipeline.process_object(object).await;
            ctx.health.liveness().progress(); // an object finished
            match result {
                Ok(outcome) => log_outcome(&message_id, object, &outcome),
                Err(e) => {
                    tracing::warn!(%message_id, bucket = %object.bucket, key = %object.key, error = %e, "object failed; it will be retried");
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    };

    tokio::select! {
        result = work => match result {
            Ok(()) => {
                ctx.health.dependencies_ok();
                outcome.success();
                delete(&ctx, &receipt, &message_id).await
            }
            Err(e) => {
                metrics::message_failed(e.reason());
                ctx.health.dependency_failed(e.reason());
                outcome.failure();
                let delay = retry_delay(ctx.retry_base, receive_count);
                tracing::warn!(%message_id, receive_count, retry_in = ?delay, error = %e,
                    "message left for redelivery; the queue's redrive policy dead-letters it after maxReceiveCount receives");
                set_visibility(&ctx, &receipt, delay).await;
            }
        },
        _ = heartbeat(&ctx, &receipt, received_at, &message_id) => {}
        _ = abort.cancelled() => {
            set_visibility(&ctx, &receipt, Duration::ZERO).await;
            metrics::message_returned();
            tracing::info!(%message_id, "returned unfinished message to the queue");
        }
    }
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

/// Keeps the message invisible while it is worked on: every half timeout
/// the visibility is pushed a full timeout ahead, within SQS's 12-hour
/// ceiling. Ends (as a never-ready future) when it can no longer extend.
async fn heartbeat(ctx: &TaskContext, receipt: &str, received_at: Instant, message_id: &str) {
    let timeout = ctx.visibility_timeout;
    let mut ticker =
        tokio::time::interval_at(tokio::time::Instant::now() + timeout / 2, timeout / 2);
    loop {
        ticker.tick().await;
        let elapsed = received_at.elapsed();
        let remaining = MAX_INVISIBLE.saturating_sub(elapsed + Duration::from_secs(1));
        let extend = timeout.min(remaining);
        if extend.is_zero() {
            tracing::warn!(
                message_id,
                "message reached SQS's 12-hour visibility ceiling; it may be redelivered"
            );
            break;
        }
        let result = ctx
            .sqs
            .change_message_visibility()
            .queue_url(&*ctx.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(extend.as_secs() as i32)
            .send()
            .await;
        match result {
            Ok(_) => metrics::visibility_extended(),
            Err(e) => {
                let gone = e.as_service_error().is_some_and(|s| {
                    s.is_receipt_handle_is_invalid() || s.is_message_not_inflight()
                });
                tracing::warn!(message_id, error = %DisplayErrorContext(&e), "could not extend the message's visibility");
                if gone {
                    break;
                }
            }
        }
    }
    // The work goes on (its writes are idempotent); only the heartbeat stops.
    std::future::pending::<()>().await
}

/// The redelivery delay after the `receive_count`-th failed attempt.
pub fn retry_delay(base: Duration, receive_count: u32) -> Duration {
    let exponent = receive_count.saturating_sub(1).min(16);
    base.saturating_mul(1 << exponent).min(RETRY_MAX)
}

async fn delete(ctx: &TaskContext, receipt: &str, message_id: &str) {
    let result = ctx
        .sqs
        .delete_message()
        .queue_url(&*ctx.queue_url)
        .receipt_handle(receipt)
        .send()
        .await;
    match result {
        Ok(_) => metrics::message_deleted(),
        // The work is durable; the message will be redelivered and redone
        // idempotently. Nothing is lost.
        Err(e) => {
            tracing::warn!(message_id, error = %DisplayErrorContext(&e), "could not delete a processed message")
        }
    }
}

async fn set_visibility(ctx: &TaskContext, receipt: &str, delay: Duration) {
    let seconds = delay.as_secs().min(MAX_INVISIBLE.as_secs()) as i32;
    let result = ctx
        .sqs
        .change_message_visibility()
        .queue_url(&*ctx.queue_url)
        .receipt_handle(receipt)
        .visibility_timeout(seconds)
        .send()
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %DisplayErrorContext(&e), "could not change a message's visibility; it reappears after its timeout");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_probe_that_proves_nothing_still_ends() {
        let breaker = Arc::new(Breaker::default());
        breaker.failure();
        breaker.start_probe();
        assert_eq!(breaker.gate(), Gate::Probing);
        // An ignored message, a returned one, a panicked task: dropped unreported.
        drop(Outcome {
            breaker: breaker.clone(),
            reported: false,
        });
        assert_ne!(
            breaker.gate(),
            Gate::Probing,
            "the loop is not left waiting"
        );
        breaker.start_probe();
        Outcome {
            breaker: breaker.clone(),
            reported: false,
        }
        .success();
        assert_eq!(breaker.gate(), Gate::Closed);
    }

    #[test]
    fn retry_delay_grows_and_caps() {
        assert_eq!(retry_delay(RETRY_BASE, 1), Duration::from_secs(10));
        assert_eq!(retry_delay(RETRY_BASE, 2), Duration::from_secs(20));
        assert_eq!(retry_delay(RETRY_BASE, 4), Duration::from_secs(80));
        assert_eq!(retry_delay(RETRY_BASE, 100), RETRY_MAX);
    }
}
