//! Processing one S3 object: read → parse → predict → store → alert.
//!
//! Readings flow through in chunks, so memory stays bounded whatever the
//! object's size: each chunk is predicted and written before the next is
//! read. The object's alerts are handed back to the caller, who publishes
//! them only after every reading of the message is stored (or, once more
//! than [`MAX_OPEN_ALERTS`] are open, the pipeline publishes those gathered
//! so far after the chunk holding them is stored), so a subscriber never
//! hears of a reading that is not in the table. Every non-blank line ends
//! up either stored or counted as rejected with a reason (and, with a
//! quarantine prefix, written back to S3).
//!
//! Each call to a dependency is a held step ([`retry::hold`]): while S3,
//! DynamoDB or the inference backend fails, the step is retried in place
//! and nothing already stored is redone. A transient failure while reading
//! the object restarts the object (its readings are rewritten, idempotently).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::alerts::publisher::AlertError;
use crate::alerts::rules::AlertRule;
use crate::alerts::{Alert, AlertSink, BreachLog, ClaimOwner, MAX_OPEN_ALERTS};
use crate::failure::{Classify, Dependency, FailureClass};
use crate::inference::features::WINDOW;
use crate::inference::{InferenceError, OnError, Predictor};
use crate::metrics;
use crate::notification::ObjectRef;
use crate::object_reader::{self, Limits, Line, LineReader, ReadError};
use crate::quarantine::{Quarantine, QuarantineError, QuarantineRecords};
use crate::retry::{self, Attempt, StepError};
use crate::storage::{self, ReadingStore, StoreError};
use crate::telemetry::{LineParser, Reading, Timestamp};

/// Readings predicted and written together. Large enough to fill many
/// DynamoDB batches and SageMaker requests, small enough to bound memory.
pub const CHUNK_READINGS: usize = 1000;
/// Rejected lines logged one by one per object; the rest are summarised.
const REJECTIONS_LOGGED: u64 = 10;
/// Characters of a rejected line quoted in the log.
const EXCERPT_CHARS: usize = 120;

/// How an object ended when nothing needs to be redone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectOutcome {
    /// Read to the end; every line stored or rejected.
    Processed(ObjectReport),
    /// The object (or its bucket) does not exist.
    Missing,
    /// A quarantine object: never processed.
    Skipped,
    /// The bytes are broken (e.g. truncated gzip). Lines read before the
    /// damage were processed normally.
    Corrupt {
        report: ObjectReport,
        reason: String,
    },
    /// The object broke a limit; lines before it were processed normally.
    Rejected {
        report: ObjectReport,
        limit: &'static str,
        reason: String,
    },
}

impl ObjectOutcome {
    /// The `outcome` label of `fleetwatch_objects_processed_total`.
    pub fn label(&self) -> &'static str {
        match self {
            ObjectOutcome::Processed(_) => "ok",
            ObjectOutcome::Missing => "missing",
            ObjectOutcome::Skipped => "skipped",
            ObjectOutcome::Corrupt { .. } => "corrupt",
            ObjectOutcome::Rejected { .. } => "rejected",
        }
    }
}

/// What happened to an object's lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectReport {
    pub stored: u64,
    pub rejected: u64,
    pub alerts: u64,
    pub bytes: u64,
    pub gzip: bool,
}

/// An object processed to its end, and the alerts its readings raised,
/// still to be published.
#[derive(Debug)]
pub struct Processed {
    pub outcome: ObjectOutcome,
    pub alerts: Vec<Alert>,
}

/// A step that failed and was not (or no longer) retried in place: the
/// message is left for redelivery.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Read(ReadError),
    #[error(transparent)]
    Inference(#[from] InferenceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Alert(#[from] AlertError),
    #[error(transparent)]
    Quarantine(#[from] QuarantineError),
}

impl ProcessError {
    /// The `reason` label of `fleetwatch_sqs_messages_failed_total`.
    pub fn reason(&self) -> &'static str {
        self.dependency().as_str()
    }
}

impl Classify for ProcessError {
    fn class(&self) -> FailureClass {
        match self {
            ProcessError::Read(e) => e.class(),
            ProcessError::Inference(e) => e.class(),
            ProcessError::Store(e) => e.class(),
            ProcessError::Alert(e) => e.class(),
            ProcessError::Quarantine(e) => e.class(),
        }
    }
}

impl StepError for ProcessError {
    fn dependency(&self) -> Dependency {
        match self {
            ProcessError::Read(_) | ProcessError::Quarantine(_) => Dependency::S3,
            ProcessError::Inference(_) => Dependency::Inference,
            ProcessError::Store(_) => Dependency::DynamoDb,
            ProcessError::Alert(e) => StepError::dependency(e),
        }
    }
}

impl StepError for ReadError {
    fn dependency(&self) -> Dependency {
        Dependency::S3
    }
}

impl StepError for QuarantineError {
    fn dependency(&self) -> Dependency {
        Dependency::S3
    }
}

impl StepError for InferenceError {
    fn dependency(&self) -> Dependency {
        Dependency::Inference
    }
}

impl StepError for StoreError {
    fn dependency(&self) -> Dependency {
        Dependency::DynamoDb
    }
}

impl StepError for AlertError {
    fn dependency(&self) -> Dependency {
        // Contention blames no dependency; it is labelled as publishing.
        AlertError::dependency(self).unwrap_or(Dependency::Sns)
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            AlertError::Busy { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

/// Interim classifications until each stage classifies its own errors
/// from the SDK's (every failure is treated as one that may pass).
mod interim {
    use super::*;

    impl Classify for ReadError {
        fn class(&self) -> FailureClass {
            FailureClass::Transient
        }
    }
    impl Classify for QuarantineError {
        fn class(&self) -> FailureClass {
            FailureClass::Transient
        }
    }
    impl Classify for InferenceError {
        fn class(&self) -> FailureClass {
            FailureClass::Transient
        }
    }
    impl Classify for StoreError {
        fn class(&self) -> FailureClass {
            FailureClass::Transient
        }
    }
}

/// Everything needed to process objects; shared by all message tasks.
#[derive(Debug)]
pub struct Pipeline {
    pub s3: aws_sdk_s3::Client,
    pub store: ReadingStore,
    pub predictor: Predictor,
    pub rules: Vec<AlertRule>,
    /// Where alerts go; `None` when no topic is configured.
    pub alerts: Option<AlertSink>,
    pub maintenance_min_score: Option<f64>,
    /// What a failed prediction does: fail the object, or store UNKNOWN.
    pub on_inference_error: OnError,
    pub limits: Limits,
    /// Readings per object; past it the object is refused.
    pub max_records: u64,
    /// Readings stamped further ahead of the clock are rejected.
    pub max_future_skew: Duration,
    pub quarantine: Option<Quarantine>,
}

impl Pipeline {
    /// Processes one object to its end; its alerts are returned, not
    /// published (see [`Pipeline::deliver_alerts`]).
    pub async fn process_object(
        &self,
        object: &ObjectRef,
        attempt: Attempt<'_>,
    ) -> Result<Processed, ProcessError> {
        let started = Instant::now();
        // Only reading errors are retried here, by reading the object again:
        // every other step was held where it failed.
        let result = retry::hold(attempt, "reading the object", || async {
            match self.run(object, attempt).await {
                Err(ProcessError::Read(e)) => Err(e),
                other => Ok(other),
            }
        })
        .await
        .unwrap_or_else(|e| Err(ProcessError::Read(e)));
        if let Ok(processed) = &result {
            let outcome = &processed.outcome;
            metrics::object_processed(outcome.label(), started.elapsed());
            if let ObjectOutcome::Rejected { limit, .. } = outcome {
                metrics::object_rejected(limit);
            }
        }
        result
    }

    /// Publishes alerts (at most once per device, rule and window; see
    /// [`crate::alerts::ledger`]). Returns how many were published now.
    /// Their ledger claims are made for `owner` (the SQS message and its
    /// receive count), so a retry or redelivery of the same message takes
    /// its own claims over at once.
    pub async fn deliver_alerts(
        &self,
        alerts: &[Alert],
        owner: &ClaimOwner,
    ) -> Result<usize, AlertError> {
        match &self.alerts {
            Some(sink) if !alerts.is_empty() => sink.deliver(alerts.to_vec(), owner).await,
            _ => Ok(0),
        }
    }

    async fn run(
        &self,
        object: &ObjectRef,
        attempt: Attempt<'_>,
    ) -> Result<Processed, ProcessError> {
        if self
            .quarantine
            .as_ref()
            .is_some_and(|q| q.covers(&object.key))
        {
            tracing::debug!(key = %object.key, "skipping a quarantine object");
            return Ok(Processed {
                outcome: ObjectOutcome::Skipped,
                alerts: Vec::new(),
            });
        }
        let body = match object_reader::open(&self.s3, object).await {
            Ok(body) => body,
            Err(ReadError::Missing { code, .. }) => {
                tracing::warn!(bucket = %object.bucket, key = %object.key, %code, "object does not exist; nothing to process");
                return Ok(Processed {
                    outcome: ObjectOutcome::Missing,
                    alerts: Vec::new(),
                });
            }
            Err(e) => return Err(ProcessError::Read(e)),
        };
        let mut object_run = ObjectRun::new(self, object, attempt);
        let max = self.limits.max_object_bytes;
        if let Some(length) = body.content_length.filter(|&l| l > 0 && l as u64 > max) {
            let reason =
                format!("{length} bytes stored, more than {max} (FLEETWATCH_MAX_OBJECT_BYTES)");
            return object_run
                .refuse(ObjectReport::default(), "object_too_large", reason)
                .await;
        }
        let mut lines = LineReader::new(body.body, self.limits, object)
            .await
            .map_err(ProcessError::Read)?;
        let mut report = ObjectReport {
            gzip: lines.is_gzip(),
            ..ObjectReport::default()
        };
        let mut parser: Option<LineParser> = None;
        let mut parsed: u64 = 0;
        let latest_allowed = Timestamp::from_unix_millis(
            now().unix_millis() + self.max_future_skew.as_millis() as i64,
        );

        let stopped = loop {
            let line = match lines.next_line().await {
                Ok(Some(line)) => line,
                Ok(None) => break None,
                Err(ReadError::Corrupt { message, .. }) => break Some(("corrupt", message)),
                Err(ReadError::Limit { limit, message, .. }) => {
                    break Some((limit.as_str(), message));
                }
                Err(e) => return Err(ProcessError::Read(e)),
            };
            match line {
                Line::Text { number, text } => {
                    let parser = match &parser {
                        Some(p) => p,
                        None => {
                            let (p, header) = LineParser::detect(text);
                            tracing::debug!(key = %object.key, format = ?p.format(), "detected format");
                            if header {
                                parser = Some(p);
                                continue;
                            }
                            parser.insert(p)
                        }
                    };
                    match parser.parse(text) {
                        Ok(reading) if reading.timestamp > latest_allowed => {
                            object_run.rejections.record(
                                number,
                                "timestamp_in_future",
                                &format!(
                                    "{} is more than {:?} ahead of the clock",
                                    reading.timestamp, self.max_future_skew
                                ),
                                Some(text),
                            )
                        }
                        Ok(reading) => {
                            parsed += 1;
                            if parsed > self.max_records {
                                break Some((
                                    "too_many_records",
                                    format!(
                                        "more than {} readings (FLEETWATCH_MAX_RECORDS)",
                                        self.max_records
                                    ),
                                ));
                            }
                            let raw = self.predictor.needs_raw_lines().then(|| text.to_owned());
                            object_run.chunk.push(reading, number, raw);
                        }
                        Err(rejection) => object_run.rejections.record(
                            number,
                            rejection.reason.as_str(),
                            &rejection.detail,
                            Some(text),
                        ),
                    }
                }
                Line::TooLong { number, bytes } => object_run.rejections.record(
                    number,
                    "line_too_long",
                    &format!(
                        "{bytes} bytes, limit {} (FLEETWATCH_MAX_LINE_BYTES)",
                        self.limits.max_line_bytes
                    ),
                    None,
                ),
                Line::InvalidUtf8 { number } => {
                    object_run
                        .rejections
                        .record(number, "invalid_utf8", "not valid UTF-8", None)
                }
            }
            if object_run.chunk.new_readings() >= CHUNK_READINGS {
                report.stored += object_run.flush().await?;
            }
        };
        report.stored += object_run.flush().await?;
        report.bytes = lines.source_bytes();
        metrics::object_bytes(report.bytes);
        match stopped {
            None => {
                let (report, alerts) = object_run.finish(report).await?;
                Ok(Processed {
                    outcome: ObjectOutcome::Processed(report),
                    alerts,
                })
            }
            Some(("corrupt", reason)) => {
                object_run.rejections.quarantine_object("corrupt", &reason);
                let (report, alerts) = object_run.finish(report).await?;
                Ok(Processed {
                    outcome: ObjectOutcome::Corrupt { report, reason },
                    alerts,
                })
            }
            Some((limit, reason)) => object_run.refuse(report, limit, reason).await,
        }
    }
}

/// The state of one object being processed.
struct ObjectRun<'p> {
    pipeline: &'p Pipeline,
    object: &'p ObjectRef,
    /// The message attempt this object belongs to: its held steps share it.
    attempt: Attempt<'p>,
    chunk: Chunk,
    breaches: BreachLog<'p>,
    /// Alerts taken out of `breaches` so far (delivered early or at the end).
    alerts: u64,
    rejections: RejectionLog<'p>,
}

impl<'p> ObjectRun<'p> {
    fn new(pipeline: &'p Pipeline, object: &'p ObjectRef, attempt: Attempt<'p>) -> Self {
        // The ledger's windows; without a sink they only shape the count.
        let cooldown = pipeline
            .alerts
            .as_ref()
            .map(|sink| sink.ledger.cooldown())
            .unwrap_or_default();
        ObjectRun {
            pipeline,
            object,
            attempt,
            chunk: Chunk::default(),
            breaches: BreachLog::new(
                &pipeline.rules,
                pipeline.maintenance_min_score,
                cooldown,
                &object.bucket,
                &object.key,
            ),
            alerts: 0,
            rejections: RejectionLog::new(object, pipeline.quarantine.is_some()),
        }
    }

    /// Predicts and stores the chunk's new readings and folds their
    /// breaches. The last readings of each device stay behind as context,
    /// so the model's rolling features see the same window whether or not
    /// an object is split into chunks.
    async fn flush(&mut self) -> Result<u64, ProcessError> {
        let chunk = &mut self.chunk;
        if chunk.new_readings() == 0 {
            return Ok(0);
        }
        let predictor = &self.pipeline.predictor;
        let on_error = self.pipeline.on_inference_error;
        let predictions = retry::hold(self.attempt, "predicting", || {
            predictor.predict(&chunk.readings, &chunk.raw, on_error)
        })
        .await?;
        let ingested_at = now().to_rfc3339_millis();
        let fresh = chunk.context..chunk.readings.len();
        let prediction = |i: usize| predictions.as_ref().and_then(|p| p.get(i));
        let items: Vec<storage::Item> = fresh
            .clone()
            .map(|i| {
                let source = storage::Source {
                    bucket: &self.object.bucket,
                    key: &self.object.key,
                    line: chunk.lines[i],
                };
                storage::item(&chunk.readings[i], prediction(i), source, &ingested_at)
            })
            .collect();
        let store = &self.pipeline.store;
        retry::hold(self.attempt, "storing readings", || {
            store.write(items.clone())
        })
        .await?;
        for i in fresh.clone() {
            self.breaches.record(&chunk.readings[i], prediction(i));
        }
        let n = fresh.len();
        metrics::records_stored(n);
        chunk.keep_context();
        if self.breaches.len() > MAX_OPEN_ALERTS {
            self.deliver_early().await?;
        }
        Ok(n as u64)
    }

    /// Publishes the alerts gathered so far (their readings are stored),
    /// holding the message while SNS or the ledger fails.
    async fn deliver_early(&mut self) -> Result<(), ProcessError> {
        let alerts = self.breaches.take();
        self.alerts += alerts.len() as u64;
        let (pipeline, owner) = (self.pipeline, self.attempt.owner);
        retry::hold(self.attempt, "publishing alerts", || {
            pipeline.deliver_alerts(&alerts, owner)
        })
        .await?;
        Ok(())
    }

    /// Writes the quarantine; returns the report and the object's alerts
    /// not published yet.
    async fn finish(
        mut self,
        mut report: ObjectReport,
    ) -> Result<(ObjectReport, Vec<Alert>), ProcessError> {
        report.rejected = self.rejections.count;
        let alerts = self.breaches.take();
        report.alerts = self.alerts + alerts.len() as u64;
        if let (Some(q), Some(records)) = (&self.pipeline.quarantine, self.rejections.finish()) {
            retry::hold(self.attempt, "writing the quarantine", || {
                q.write(self.object, &records)
            })
            .await?;
        }
        Ok((report, alerts))
    }

    /// Ends an object that broke a limit: what was read before stays
    /// processed; the object is logged, counted and quarantined.
    async fn refuse(
        mut self,
        report: ObjectReport,
        limit: &'static str,
        reason: String,
    ) -> Result<Processed, ProcessError> {
        tracing::warn!(bucket = %self.object.bucket, key = %self.object.key, limit, reason, "object refused");
        self.rejections.quarantine_object(limit, &reason);
        let (report, alerts) = self.finish(report).await?;
        Ok(Processed {
            outcome: ObjectOutcome::Rejected {
                report,
                limit,
                reason,
            },
            alerts,
        })
    }
}

/// Readings waiting to be predicted and stored, with their line numbers.
/// The first `context` readings were stored already and are kept only as
/// the rolling features' history.
#[derive(Default)]
struct Chunk {
    readings: Vec<Reading>,
    lines: Vec<u64>,
    /// The input lines, only for predictors that need them.
    raw: Vec<String>,
    context: usize,
}

impl Chunk {
    fn push(&mut self, reading: Reading, line: u64, raw: Option<String>) {
        self.readings.push(reading);
        self.lines.push(line);
        self.raw.extend(raw);
    }

    fn new_readings(&self) -> usize {
        self.readings.len() - self.context
    }

    /// Keeps each device's last `WINDOW - 1` readings as the next chunk's
    /// context, in their original order.
    fn keep_context(&mut self) {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let mut keep = vec![false; self.readings.len()];
        for (i, r) in self.readings.iter().enumerate().rev() {
            let n = seen.entry(r.device_id.as_str()).or_default();
            if *n < WINDOW - 1 {
                *n += 1;
                keep[i] = true;
            }
        }
        retain_marked(&mut self.readings, &keep);
        retain_marked(&mut self.lines, &keep);
        if !self.raw.is_empty() {
            retain_marked(&mut self.raw, &keep);
        }
        self.context = self.readings.len();
    }
}

/// Keeps the elements of `v` whose `keep` flag is set, in order.
fn retain_marked<T>(v: &mut Vec<T>, keep: &[bool]) {
    let mut flags = keep.iter();
    v.retain(|_| flags.next().copied().unwrap_or(false));
}

/// Counts rejected lines, logs them at a bounded rate (the first few of an
/// object one by one, then one summary, so a broken file cannot flood the
/// logs) and collects them for the quarantine.
struct RejectionLog<'a> {
    object: &'a ObjectRef,
    count: u64,
    quarantine: Option<QuarantineRecords>,
}

impl<'a> RejectionLog<'a> {
    fn new(object: &'a ObjectRef, quarantine: bool) -> Self {
        RejectionLog {
            object,
            count: 0,
            quarantine: quarantine.then(QuarantineRecords::default),
        }
    }

    fn record(&mut self, line: u64, reason: &'static str, detail: &str, text: Option<&str>) {
        self.count += 1;
        metrics::record_rejected(reason);
        if let Some(q) = &mut self.quarantine {
            q.line(line, reason, detail, text);
        }
        if self.count <= REJECTIONS_LOGGED {
            let excerpt = text.map(excerpt).unwrap_or_default();
            tracing::warn!(
                bucket = %self.object.bucket,
                key = %self.object.key,
                line,
                reason,
                detail,
                excerpt,
                "rejected line"
            );
        }
    }

    fn quarantine_object(&mut self, reason: &str, detail: &str) {
        if let Some(q) = &mut self.quarantine {
            q.object(reason, detail);
        }
    }

    /// Logs the summary; returns the quarantine records, if collected.
    fn finish(self) -> Option<QuarantineRecords> {
        if self.count > REJECTIONS_LOGGED {
            tracing::warn!(
                bucket = %self.object.bucket,
                key = %self.object.key,
                rejected = self.count,
                logged = REJECTIONS_LOGGED,
                "more lines were rejected than logged; see fleetwatch_records_rejected_total"
            );
        }
        self.quarantine
    }
}

/// A short, escaped excerpt of a line: object contents are data, not log
/// formatting, and a long line must not become a long log record.
fn excerpt(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(EXCERPT_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().nth(EXCERPT_CHARS).is_some() {
        out.push('…');
    }
    out
}

fn now() -> Timestamp {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Timestamp::from_unix_millis(millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Timestamp;

    #[test]
    fn excerpts_are_short_and_escaped() {
        assert_eq!(excerpt("a\tb\"c"), "a\\tb\\\"c");
        let long = "x".repeat(500);
        let e = excerpt(&long);
        assert_eq!(e.chars().count(), EXCERPT_CHARS + 1);
        assert!(e.ends_with('…'));
    }

    #[test]
    fn context_keeps_each_devices_last_readings_in_order() {
        let mut chunk = Chunk::default();
        for i in 0..30 {
            let device = if i % 3 == 0 { "A" } else { "B" };
            let reading = Reading {
                device_id: device.into(),
                timestamp: Timestamp::from_unix_millis(i),
                fields: vec![],
            };
            chunk.push(reading, i as u64 + 1, Some(format!("line {i}")));
        }
        chunk.keep_context();
        let a: Vec<i64> = chunk
            .readings
            .iter()
            .filter(|r| r.device_id == "A")
            .map(|r| r.timestamp.unix_millis())
            .collect();
        let b: Vec<i64> = chunk
            .readings
            .iter()
            .filter(|r| r.device_id == "B")
            .map(|r| r.timestamp.unix_millis())
            .collect();
        assert_eq!(a, [3, 6, 9, 12, 15, 18, 21, 24, 27]);
        assert_eq!(b.len(), WINDOW - 1);
        assert_eq!(*b.last().unwrap(), 29);
        assert_eq!(chunk.context, chunk.readings.len());
        assert_eq!(chunk.new_readings(), 0);
        assert_eq!(chunk.lines.len(), chunk.readings.len());
        assert_eq!(chunk.raw.len(), chunk.readings.len());
        assert_eq!(chunk.raw.last().map(String::as_str), Some("line 29"));
        let sorted = chunk
            .readings
            .windows(2)
            .all(|w| w[0].timestamp < w[1].timestamp);
        assert!(sorted, "original order is kept");
    }
}
