//! Every metric the worker emits, named and described in one place.
//!
//! The rest of the code calls the small functions below instead of the
//! `metrics` macros, so names, labels and units cannot drift apart between
//! call sites, and this file is the catalogue an operator can read.

pub mod recorder;

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
pub const ALERTS_REJECTED: &str = "fleetwatch_alerts_rejected_total";
pub const ALARM_TRANSITIONS: &str = "fleetwatch_alarm_transitions_total";
pub const ALERTS_HELD: &str = "fleetwatch_alerts_held_total";
pub const DYNAMODB_UNPROCESSED_RETRIES: &str = "fleetwatch_dynamodb_unprocessed_retries_total";
pub const DYNAMODB_ITEMS_WRITTEN: &str = "fleetwatch_dynamodb_items_written_total";
pub const INFERENCE_ERRORS: &str = "fleetwatch_inference_errors_total";
pub const INFERENCE_UNKNOWN: &str = "fleetwatch_inference_unknown_total";
pub const FLEET_STATUS_ERRORS: &str = "fleetwatch_fleet_status_errors_total";
pub const MESSAGES_IN_FLIGHT: &str = "fleetwatch_messages_in_flight";
pub const SQS_LEASES_LOST: &str = "fleetwatch_sqs_leases_lost_total";
pub const STEP_RETRIES: &str = "fleetwatch_step_retries_total";
pub const MESSAGES_WAITING: &str = "fleetwatch_messages_waiting";
pub const MESSAGES_PARKED: &str = "fleetwatch_messages_parked";
pub const DEPENDENCY_FAILING: &str = "fleetwatch_dependency_failing";
pub const OBJECT_DURATION: &str = "fleetwatch_object_duration_seconds";
pub const INFERENCE_DURATION: &str = "fleetwatch_inference_duration_seconds";
pub const QUEUE_LAG: &str = "fleetwatch_queue_lag_seconds";
pub const FEATURE_CONTEXT_EVICTIONS: &str = "fleetwatch_feature_context_evictions_total";
pub const INFERENCE_ROWS: &str = "fleetwatch_inference_rows_total";
pub const AWS_TIMEOUTS: &str = "fleetwatch_aws_timeouts_total";
pub const AWS_REQUESTS: &str = "fleetwatch_aws_requests_total";
pub const RULE_OVERRIDES: &str = "fleetwatch_rule_overrides";
pub const RULE_REFRESH_ERRORS: &str = "fleetwatch_rule_refresh_errors_total";

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
        "Non-blank lines, by outcome (stored, duplicate: an exact repeat of a reading earlier in the same object, rejected)"
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
        ALARM_TRANSITIONS,
        Unit::Count,
        "Alarm state changes written by this process, by transition (opened, acknowledged, snoozed, reactivated, auto_resolved, resolved)"
    );
    describe_counter!(
        ALERTS_HELD,
        Unit::Count,
        "Alerts not published because their alarm is acknowledged or snoozed, by kind"
    );
    describe_counter!(
        ALERTS_REJECTED,
        Unit::Count,
        "Alerts SNS refused for their content (never retried; marked rejected in the ledger), by kind and reason (invalid_parameter, invalid_parameter_value, invalid_request)"
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
    describe_counter!(
        FLEET_STATUS_ERRORS,
        Unit::Count,
        "Objects whose fleet status records (for `fleetwatch status`) could not be updated; the device's next object updates them"
    );
    describe_gauge!(
        MESSAGES_IN_FLIGHT,
        Unit::Count,
        "Messages being processed now"
    );
    describe_counter!(
        SQS_LEASES_LOST,
        Unit::Count,
        "Messages whose visibility could not be extended before it ran out; their work was dropped (another worker redoes it)"
    );
    describe_counter!(
        STEP_RETRIES,
        Unit::Count,
        "Steps retried in place while their message is held, by dependency and class (transient, throttled, contention)"
    );
    describe_gauge!(
        MESSAGES_WAITING,
        Unit::Count,
        "Messages held while a step of theirs waits for a failing dependency, by dependency"
    );
    describe_gauge!(
        MESSAGES_PARKED,
        Unit::Count,
        "Messages whose readings are stored, waiting only for their alerts to be published (outside FLEETWATCH_CONCURRENCY)"
    );
    describe_gauge!(
        DEPENDENCY_FAILING,
        "1 while a dependency (s3, dynamodb, sns, inference) is failing, else 0"
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
        FEATURE_CONTEXT_EVICTIONS,
        Unit::Count,
        "Devices dropped from an object's feature history because it tracked the most devices it may; their next readings start a new window"
    );
    describe_counter!(
        INFERENCE_ROWS,
        Unit::Count,
        "Readings sent to the model or endpoint for a prediction"
    );
    describe_counter!(
        AWS_TIMEOUTS,
        Unit::Count,
        "AWS calls cut by a timeout, by service and kind (connect, attempt: retried by the SDK; body_idle: an S3 body that stopped sending)"
    );
    describe_counter!(
        AWS_REQUESTS,
        Unit::Count,
        "HTTP requests sent to AWS, SDK retries included, by service (sqs, s3, dynamodb, sns, sagemaker) and operation (e.g. BatchWriteItem)"
    );
    describe_gauge!(
        RULE_OVERRIDES,
        Unit::Count,
        "Rules stored with `fleetwatch rules set` that the worker applies now, over every scope"
    );
    describe_counter!(
        RULE_REFRESH_ERRORS,
        Unit::Count,
        "Failed reads of the rule overrides; the worker keeps the rules it last read"
    );
    gauge!(MESSAGES_IN_FLIGHT).set(0.0);
    gauge!(MESSAGES_PARKED).set(0.0);
    counter!(RULE_REFRESH_ERRORS).absolute(0);
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

pub fn lease_lost() {
    counter!(SQS_LEASES_LOST).increment(1);
}

pub fn step_retried(dependency: &'static str, class: &'static str) {
    counter!(STEP_RETRIES, "dependency" => dependency, "class" => class).increment(1);
}

pub fn messages_waiting(dependency: &'static str, delta: f64) {
    gauge!(MESSAGES_WAITING, "dependency" => dependency).increment(delta);
}

pub fn messages_parked(delta: f64) {
    gauge!(MESSAGES_PARKED).increment(delta);
}

pub fn dependency_failing(dependency: &'static str, failing: bool) {
    gauge!(DEPENDENCY_FAILING, "dependency" => dependency).set(if failing { 1.0 } else { 0.0 });
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

/// Exact repeats of a reading already seen in the same object: collapsed
/// into the stored one, counted so that every line is accounted for.
pub fn records_duplicate(n: usize) {
    counter!(RECORDS, "outcome" => "duplicate").increment(n as u64);
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

pub fn alarm_transition(transition: &'static str) {
    counter!(ALARM_TRANSITIONS, "transition" => transition).increment(1);
}

pub fn alert_held(kind: &'static str) {
    counter!(ALERTS_HELD, "kind" => kind).increment(1);
}

pub fn alert_rejected(kind: &'static str, reason: &'static str) {
    counter!(ALERTS_REJECTED, "kind" => kind, "reason" => reason).increment(1);
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

pub fn fleet_status_error() {
    counter!(FLEET_STATUS_ERRORS).increment(1);
}

pub fn feature_context_evicted() {
    counter!(FEATURE_CONTEXT_EVICTIONS).increment(1);
}

pub fn inference_rows(rows: usize) {
    counter!(INFERENCE_ROWS).increment(rows as u64);
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

/// One request to `service` went out (an attempt: SDK retries count).
pub fn aws_request(service: &'static str, operation: &str) {
    counter!(AWS_REQUESTS, "service" => service, "operation" => operation.to_owned()).increment(1);
}

/// The rule overrides in force changed (or were read for the first time).
pub fn rule_overrides(rules: usize) {
    gauge!(RULE_OVERRIDES).set(rules as f64);
}

/// Reading the rule overrides failed.
pub fn rule_refresh_error() {
    counter!(RULE_REFRESH_ERRORS).increment(1);
}
