//! Every metric the worker emits, named and described in one place.
//!
//! The rest of the code calls the small functions below instead of the
//! `metrics` macros, so names, labels and units cannot drift apart between
//! call sites, and this file is the catalogue an operator can read.

use std::time::Duration;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};

pub const SQS_MESSAGES_RECEIVED: &str = "fleetwatch_sqs_messages_received_total";
pub const SQS_MESSAGES_DELETED: &str = "fleetwatch_sqs_messages_deleted_total";
pub const SQS_MESSAGES_IGNORED: &str = "fleetwatch_sqs_messages_ignored_total";
pub const SQS_MESSAGES_FAILED: &str = "fleetwatch_sqs_messages_failed_total";
pub const SQS_MESSAGES_RETURNED: &str = "fleetwatch_sqs_messages_returned_total";
pub const SQS_RECEIVE_ERRORS: &str = "fleetwatch_sqs_receive_errors_total";
pub const SQS_VISIBILITY_EXTENSIONS: &str = "fleetwatch_sqs_visibility_extensions_total";
pub const OBJECTS_PROCESSED: &str = "fleetwatch_objects_processed_total";
pub const OBJECTS_REJECTED: &str = "fleetwatch_objects_rejected_total";
pub const OBJECT_BYTES: &str = "fleetwatch_object_bytes_total";
pub const RECORDS: &str = "fleetwatch_records_total";
pub const RECORDS_REJECTED: &str = "fleetwatch_records_rejected_total";
pub const ALERTS_PUBLISHED: &str = "fleetwatch_alerts_published_total";
pub const ALERTS_SUPPRESSED: &str = "fleetwatch_alerts_suppressed_total";
pub const DYNAMODB_UNPROCESSED_RETRIES: &str = "fleetwatch_dynamodb_unprocessed_retries_total";
pub const DYNAMODB_ITEMS_WRITTEN: &str = "fleetwatch_dynamodb_items_written_total";
pub const INFERENCE_ERRORS: &str = "fleetwatch_inference_errors_total";
pub const INFERENCE_UNKNOWN: &str = "fleetwatch_inference_unknown_total";
pub const MESSAGES_IN_FLIGHT: &str = "fleetwatch_messages_in_flight";
pub const SQS_RECEIVE_PAUSED: &str = "fleetwatch_sqs_receive_paused";
pub const OBJECT_DURATION: &str = "fleetwatch_object_duration_seconds";
pub const INFERENCE_DURATION: &str = "fleetwatch_inference_duration_seconds";
pub const QUEUE_LAG: &str = "fleetwatch_queue_lag_seconds";
pub const AWS_TIMEOUTS: &str = "fleetwatch_aws_timeouts_total";

/// Registers descriptions (the `# HELP` lines) and zero values for the
/// counters whose absence would otherwise be ambiguous on a dashboard.
pub fn describe() {
    describe_counter!(SQS_MESSAGES_RECEIVED, Unit::Count, "SQS messages received");
    describe_counter!(
        SQS_MESSAGES_DELETED,
        Unit::Count,
        "SQS messages deleted after their work was durable or found to be unneeded"
    );
    describe_counter!(
        SQS_MESSAGES_IGNORED,
        Unit::Count,
        "Messages deleted without work, by reason (test_event, not_object_created, not_a_notification)"
    );
    describe_counter!(
        SQS_MESSAGES_FAILED,
        Unit::Count,
        "Messages left for redelivery after a failure that may succeed later, by reason"
    );
    describe_counter!(
        SQS_MESSAGES_RETURNED,
        Unit::Count,
        "Messages made visible again at shutdown"
    );
    describe_counter!(
        SQS_RECEIVE_ERRORS,
        Unit::Count,
        "Failed ReceiveMessage calls"
    );
    describe_counter!(
        SQS_VISIBILITY_EXTENSIONS,
        Unit::Count,
        "Visibility timeout extensions of messages still being processed"
    );
    describe_counter!(
        OBJECTS_PROCESSED,
        Unit::Count,
        "S3 objects finished, by outcome (ok, missing, corrupt)"
    );
    describe_counter!(
        OBJECTS_REJECTED,
        Unit::Count,
        "Objects refused for breaking a limit, by reason (object_too_large, gzip_ratio, too_many_records)"
    );
    describe_counter!(
        OBJECT_BYTES,
        Unit::Bytes,
        "Bytes of S3 objects read (as stored, before decompression)"
    );
    describe_counter!(
        RECORDS,
        Unit::Count,
        "Non-blank lines, by outcome (stored, rejected)"
    );
    describe_counter!(
        RECORDS_REJECTED,
        Unit::Count,
        "Lines that could not be turned into a reading, by reason"
    );
    describe_counter!(
        ALERTS_SUPPRESSED,
        Unit::Count,
        "Alerts not published because the ledger shows them sent (a replay, or within the cooldown), by kind"
    );
    describe_counter!(
        ALERTS_PUBLISHED,
        Unit::Count,
        "Alerts accepted by SNS, by kind (safety, maintenance)"
    );
    describe_counter!(
        DYNAMODB_UNPROCESSED_RETRIES,
        Unit::Count,
        "BatchWriteItem calls repeated for UnprocessedItems"
    );
    describe_counter!(
        DYNAMODB_ITEMS_WRITTEN,
        Unit::Count,
        "Items written to DynamoDB"
    );
    describe_counter!(INFERENCE_ERRORS, Unit::Count, "Failed prediction calls");
    describe_counter!(
        INFERENCE_UNKNOWN,
        Unit::Count,
        "Readings stored with an UNKNOWN prediction after a failed prediction (FLEETWATCH_ON_INFERENCE_ERROR=store-unknown)"
    );
    describe_gauge!(
        MESSAGES_IN_FLIGHT,
        Unit::Count,
        "Messages being processed now"
    );
    describe_gauge!(
        SQS_RECEIVE_PAUSED,
        "1 while receiving is paused because messages fail (a dependency is down), else 0"
    );
    describe_histogram!(
        OBJECT_DURATION,
        Unit::Seconds,
        "Time to process one S3 object"
    );
    describe_histogram!(
        INFERENCE_DURATION,
        Unit::Seconds,
        "Time to predict one batch of readings"
    );
    describe_histogram!(
        QUEUE_LAG,
        Unit::Seconds,
        "Time from a message being sent to the queue to its receipt"
    );
    describe_counter!(
        AWS_TIMEOUTS,
        Unit::Count,
        "AWS calls cut by a timeout, by service and kind (connect, attempt: retried by the SDK; body_idle: an S3 body that stopped sending)"
    );
    gauge!(MESSAGES_IN_FLIGHT).set(0.0);
    gauge!(SQS_RECEIVE_PAUSED).set(0.0);
}

pub fn messages_received(n: usize) {
    counter!(SQS_MESSAGES_RECEIVED).increment(n as u64);
}

pub fn message_deleted() {
    counter!(SQS_MESSAGES_DELETED).increment(1);
}

pub fn message_ignored(reason: &'static str) {
    counter!(SQS_MESSAGES_IGNORED, "reason" => reason).increment(1);
}

pub fn message_failed(reason: &'static str) {
    counter!(SQS_MESSAGES_FAILED, "reason" => reason).increment(1);
}

pub fn message_returned() {
    counter!(SQS_MESSAGES_RETURNED).increment(1);
}

pub fn receive_error() {
    counter!(SQS_RECEIVE_ERRORS).increment(1);
}

pub fn visibility_extended() {
    counter!(SQS_VISIBILITY_EXTENSIONS).increment(1);
}

pub fn queue_lag(lag: Duration) {
    histogram!(QUEUE_LAG).record(lag.as_secs_f64());
}

pub fn receive_paused(paused: bool) {
    gauge!(SQS_RECEIVE_PAUSED).set(if paused { 1.0 } else { 0.0 });
}

pub fn in_flight(delta: f64) {
    gauge!(MESSAGES_IN_FLIGHT).increment(delta);
}

pub fn object_processed(outcome: &'static str, elapsed: Duration) {
    counter!(OBJECTS_PROCESSED, "outcome" => outcome).increment(1);
    histogram!(OBJECT_DURATION).record(elapsed.as_secs_f64());
}

pub fn object_rejected(limit: &'static str) {
    counter!(OBJECTS_REJECTED, "reason" => limit).increment(1);
}

pub fn object_bytes(n: u64) {
    counter!(OBJECT_BYTES).increment(n);
}

pub fn records_stored(n: usize) {
    counter!(RECORDS, "outcome" => "stored").increment(n as u64);
}

pub fn record_rejected(reason: &'static str) {
    counter!(RECORDS, "outcome" => "rejected").increment(1);
    counter!(RECORDS_REJECTED, "reason" => reason).increment(1);
}

pub fn alert_published(kind: &'static str) {
    counter!(ALERTS_PUBLISHED, "kind" => kind).increment(1);
}

pub fn alert_suppressed(kind: &'static str) {
    counter!(ALERTS_SUPPRESSED, "kind" => kind).increment(1);
}

pub fn dynamodb_unprocessed_retry() {
    counter!(DYNAMODB_UNPROCESSED_RETRIES).increment(1);
}

pub fn dynamodb_items_written(n: usize) {
    counter!(DYNAMODB_ITEMS_WRITTEN).increment(n as u64);
}

pub fn inference_unknown(readings: usize) {
    counter!(INFERENCE_UNKNOWN).increment(readings as u64);
}

pub fn inference(elapsed: Duration, ok: bool) {
    histogram!(INFERENCE_DURATION).record(elapsed.as_secs_f64());
    if !ok {
        counter!(INFERENCE_ERRORS).increment(1);
    }
}

/// A call to `service` timed out: `kind` is `connect`, `attempt` or
/// `body_idle`.
pub fn aws_timeout(service: &'static str, kind: &'static str) {
    counter!(AWS_TIMEOUTS, "service" => service, "kind" => kind).increment(1);
}
