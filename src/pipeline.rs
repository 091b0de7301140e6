//! Processing one S3 object: read → parse → predict → store → alert.
//!
//! Readings flow through in chunks, so memory stays bounded whatever the
//! object's size: each chunk is predicted and written before the next is
//! read. Each reading is predicted once; the rolling features' history of
//! the object's devices is carried from chunk to chunk in a bounded
//! [`FeatureContext`]. The object's alerts are handed back to the caller,
//! who publishes them only after every reading of the message is stored (or,
//! once more than [`MAX_OPEN_ALERTS`] are open, the pipeline publishes those
//! gathered so far after the chunk holding them is stored), so a subscriber
//! never hears of a reading that is not in the table. Every non-blank line ends up stored, counted as a duplicate
//! (an exact repeat of an earlier reading of the object), or counted as
//! rejected with a reason (and, with a quarantine prefix, written back to
//! S3): a line DynamoDB refuses is a rejected line like a malformed one.
//!
//! Within one object the first reading of a key (device_id, timestamp)
//! wins: a later line with the same key and the same fields is a duplicate,
//! one with different fields is rejected (`duplicate_key`), whatever the
//! chunking. Across objects the last write wins: a corrected reading
//! uploaded later in another object replaces the stored one.
//!
//! Each call to a dependency is a held step ([`retry::hold`]): while S3,
//! DynamoDB or the inference backend fails, the step is retried in place
//! and nothing already stored is redone. A transient failure while reading
//! the object restarts the object (its readings are rewritten, idempotently).
//!
//! The same stages serve `fleetwatch process`: [`Pipeline::process_from`]
//! reads an object from S3 or from a local file ([`Source`]), and in
//! [`Mode::DryRun`] builds the items and alerts exactly as for real but
//! writes, quarantines and publishes nothing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::alerts::rule_book::RuleBook;
use crate::alerts::windowed_scan::WindowedScan;
use crate::alerts::{
    Alert, AlertError, AlertSink, BreachLog, ClaimOwner, Cooldown, MAX_OPEN_ALERTS,
};
use crate::failure::{Classify, Dependency, FailureClass, StepError};
use crate::fleet_status::{self, FleetStatus, StatusBatch};
use crate::inference::features::{FeatureContext, MAX_CONTEXT_DEVICES};
use crate::inference::{InferenceError, OnError, Predictor, Scored};
use crate::key_ledger::{KeyLedger, KeySeen};
use crate::metrics;
use crate::notification::ObjectRef;
use crate::object_reader::{self, Limits, Line, LineReader, ObjectBody, ReadError};
use crate::quarantine::{Quarantine, QuarantineError, QuarantineRecords};
use crate::retry::{self, Attempt};
use crate::storage::{self, ItemRejectReason, ReadingStore, StoreError};
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
    /// Exact repeats of a reading earlier in the object, not stored again.
    pub duplicates: u64,
    /// Devices in the object, as the feature context counted them (a
    /// device evicted and seen again counts twice; 0 without predictions).
    pub devices: u64,
    pub alerts: u64,
    pub bytes: u64,
    pub gzip: bool,
    /// `rejected`, by reason (the `reason` label of
    /// `fleetwatch_records_rejected_total`), for `process`'s summary.
    pub rejected_by_reason: BTreeMap<&'static str, u64>,
}

/// Where an object's bytes come from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// `GetObject` of the object (what the worker does).
    S3,
    /// A local file (`fleetwatch process ./data/*.jsonl.gz`); the object's
    /// bucket and key only name it in items, logs and alerts.
    File(&'a std::path::Path),
}

/// Whether processing sends anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Store the readings, write the quarantine, publish early alerts.
    Live,
    /// Build the items and alerts but send nothing (`process --dry-run`).
    /// The cooldown shapes the alerts as the ledger's would, since there
    /// may be no sink to take it from. Only the object's first
    /// `alerts_kept` alerts are returned (for a listing): the report counts
    /// them all, and memory does not grow with the alerts.
    DryRun {
        alert_cooldown: Duration,
        alerts_kept: usize,
    },
}

/// An object processed to its end, and the alerts its readings raised,
/// still to be published.
#[derive(Debug)]
pub struct Processed {
    pub outcome: ObjectOutcome,
    /// Live: the alerts not published early. Dry run: the first
    /// `alerts_kept` of the object's alerts.
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

// `AlertError`'s own `dependency` (in `alerts`) decides which failures are
// an outage of SNS or DynamoDB; this only adapts it to the retry loop.
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

/// Everything needed to process objects; shared by all message tasks.
#[derive(Debug)]
pub struct Pipeline {
    pub s3: aws_sdk_s3::Client,
    pub store: ReadingStore,
    pub predictor: Predictor,
    /// The safety rules in force (configured, plus operators' overrides
    /// when a refresh task keeps them current); read once per object.
    pub rules: RuleBook,
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
        self.process_from(object, Source::S3, Mode::Live, attempt)
            .await
    }

    /// [`Pipeline::process_object`] from any [`Source`], live or dry.
    pub async fn process_from(
        &self,
        object: &ObjectRef,
        source: Source<'_>,
        mode: Mode,
        attempt: Attempt<'_>,
    ) -> Result<Processed, ProcessError> {
        let started = Instant::now();
        let counted = CountedSoFar::default();
        // Only reading errors are retried here, by reading the object again:
        // every other step was held where it failed.
        let result = retry::hold(attempt, "reading the object", || async {
            match self.run(object, source, mode, attempt, &counted).await {
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
        source: Source<'_>,
        mode: Mode,
        attempt: Attempt<'_>,
        counted: &CountedSoFar,
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
        let opened = match source {
            Source::S3 => object_reader::open(&self.s3, object).await,
            Source::File(path) => open_file(path, object).await,
        };
        let body = match opened {
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
        let mut object_run = ObjectRun::new(self, object, mode, attempt, counted);
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
            Timestamp::now().unix_millis() + self.max_future_skew.as_millis() as i64,
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
                            match object_run.keys.check(&reading, number) {
                                KeySeen::New => {
                                    let raw =
                                        self.predictor.needs_raw_lines().then(|| text.to_owned());
                                    object_run.chunk.push(reading, number, raw);
                                }
                                KeySeen::Same { kept } => {
                                    object_run.duplicates += 1;
                                    if number > object_run.counted_before.parsed {
                                        metrics::records_duplicate(1);
                                    }
                                    tracing::debug!(bucket = %object.bucket, key = %object.key, line = number, kept_line = kept, "exact duplicate of an earlier reading");
                                }
                                KeySeen::Different { kept } => object_run.rejections.record(
                                    number,
                                    ItemRejectReason::DuplicateKey.as_str(),
                                    &format!(
                                        "device {} at {} has a different reading earlier in this object, on line {kept}; the first reading of a key is kept",
                                        reading.device_id, reading.timestamp
                                    ),
                                    Some(text),
                                ),
                            }
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
            object_run.parsed_through(lines.line_number());
            if object_run.chunk.len() >= CHUNK_READINGS {
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
    /// Live, or a dry run that sends nothing.
    mode: Mode,
    /// In a dry run, the first of the alerts a live run would have
    /// published early (at most `alerts_kept`).
    held_alerts: Vec<Alert>,
    /// Readings read but not yet predicted and stored.
    chunk: Chunk,
    /// The devices' recent readings, for the features of the next chunks.
    features: FeatureContext,
    /// The keys seen so far, for duplicate detection across the object.
    keys: KeyLedger,
    /// Exact duplicates skipped so far.
    duplicates: u64,
    breaches: BreachLog,
    /// The windowed rules' evaluation (`None` without windowed rules): the
    /// object's readings read back once stored; see
    /// [`crate::alerts::windowed_scan`].
    windowed: Option<WindowedScan>,
    /// Alerts taken out of `breaches` so far (delivered early or at the end).
    alerts: u64,
    rejections: RejectionLog<'p>,
    /// What the object showed of each device, for the fleet status
    /// records written after its readings are stored.
    status: StatusBatch,
    /// How far the earlier attempts at this object counted its lines in
    /// the records metrics (this attempt counts only past that).
    counted_before: Counted,
    /// How far the attempts so far counted, this one included.
    counted: &'p CountedSoFar,
}

/// How far the records metrics (`fleetwatch_records_total`,
/// `fleetwatch_records_rejected_total`) have counted an object's lines. An
/// object whose read fails mid-way is read again from its start; its lines
/// then get the same outcomes, and only those past what an earlier attempt
/// counted are counted again, so every line is counted once.
#[derive(Debug, Clone, Copy, Default)]
struct Counted {
    /// Lines up to here had their outcome counted if it was decided while
    /// parsing (rejected, duplicate).
    parsed: u64,
    /// Lines up to here had their outcome counted if it was decided when
    /// their chunk was stored (stored, refused by the model or DynamoDB).
    flushed: u64,
}

/// [`Counted`] as the attempts at an object advance it.
#[derive(Debug, Default)]
struct CountedSoFar {
    parsed: AtomicU64,
    flushed: AtomicU64,
}

impl CountedSoFar {
    fn get(&self) -> Counted {
        Counted {
            parsed: self.parsed.load(Ordering::Relaxed),
            flushed: self.flushed.load(Ordering::Relaxed),
        }
    }
}

impl<'p> ObjectRun<'p> {
    fn new(
        pipeline: &'p Pipeline,
        object: &'p ObjectRef,
        mode: Mode,
        attempt: Attempt<'p>,
        counted: &'p CountedSoFar,
    ) -> Self {
        // The ledger's windows; without a sink they only shape the count.
        let cooldown = match mode {
            Mode::DryRun { alert_cooldown, .. } => Cooldown::new(alert_cooldown),
            Mode::Live => pipeline
                .alerts
                .as_ref()
                .map(|sink| sink.ledger.cooldown())
                .unwrap_or_default(),
        };
        // One rule set for the whole object, however the rules change meanwhile.
        let rules = pipeline.rules.current();
        ObjectRun {
            pipeline,
            object,
            attempt,
            mode,
            held_alerts: Vec::new(),
            chunk: Chunk::default(),
            features: FeatureContext::new(MAX_CONTEXT_DEVICES),
            keys: KeyLedger::default(),
            duplicates: 0,
            breaches: BreachLog::new(
                rules.clone(),
                pipeline.maintenance_min_score,
                cooldown,
                &object.bucket,
                &object.key,
            ),
            windowed: WindowedScan::new(rules, mode == Mode::Live),
            alerts: 0,
            rejections: RejectionLog::new(object, pipeline.quarantine.is_some(), counted.get()),
            status: StatusBatch::default(),
            counted_before: counted.get(),
            counted,
        }
    }

    /// Every line up to `line` has been parsed (and its outcome counted,
    /// when parsing decided it).
    fn parsed_through(&mut self, line: u64) {
        self.counted.parsed.fetch_max(line, Ordering::Relaxed);
    }

    /// Predicts and stores the chunk's readings and folds their breaches;
    /// returns how many were stored. Readings DynamoDB can never take are
    /// rejected lines: not stored, not counted as stored, and no alert is
    /// raised for them.
    async fn flush(&mut self) -> Result<u64, ProcessError> {
        let chunk = &mut self.chunk;
        if chunk.len() == 0 {
            return Ok(0);
        }
        let predictor = &self.pipeline.predictor;
        // Features once (they advance the devices' windows); the scoring
        // call may be repeated while the backend is down.
        let input = predictor.prepare(&mut self.features, &chunk.readings);
        let scored = match self.pipeline.on_inference_error {
            OnError::StoreUnknown => {
                match predictor.score(&input, &chunk.readings, &chunk.raw).await {
                    Ok(scored) => scored,
                    Err(e) => Some(Scored {
                        predictions: predictor.unknown(&chunk.readings, &e),
                        refused: Vec::new(),
                    }),
                }
            }
            OnError::Retry => {
                retry::hold(self.attempt, "predicting", || {
                    predictor.score(&input, &chunk.readings, &chunk.raw)
                })
                .await?
            }
        };
        let (predictions, refused_by_model) = match scored {
            Some(s) => (Some(s.predictions), s.refused),
            None => (None, Vec::new()),
        };
        let mut refused = vec![false; chunk.len()];
        for &i in &refused_by_model {
            if let Some(flag) = refused.get_mut(i) {
                *flag = true;
                let line = chunk.lines.get(i).copied().unwrap_or_default();
                self.rejections.record_refused(
                    line,
                    "inference_rejected",
                    "the SageMaker endpoint refused this reading",
                    None,
                );
            }
        }
        let ingested_at = Timestamp::now().to_rfc3339_millis();
        let prediction = |i: usize| predictions.as_ref().and_then(|p| p.get(i));
        let store = &self.pipeline.store;
        // Item k is the chunk's reading kept[k].
        let kept: Vec<usize> = (0..chunk.len()).filter(|&i| !refused[i]).collect();
        let items: Vec<storage::Item> = kept
            .iter()
            .map(|&i| {
                let reading = &chunk.readings[i];
                let source = storage::Source {
                    bucket: &self.object.bucket,
                    key: &self.object.key,
                    line: chunk.lines[i],
                };
                let expires_at = store.expires_at(reading);
                storage::item(reading, prediction(i), source, &ingested_at, expires_at)
            })
            .collect();
        let refused_by_store = match self.mode {
            Mode::Live => {
                retry::hold(self.attempt, "storing readings", || store.write(&items))
                    .await?
                    .rejected
            }
            // The items were built; nothing is sent.
            Mode::DryRun { .. } => Vec::new(),
        };
        for rejected in &refused_by_store {
            let Some(&i) = kept.get(rejected.index) else {
                continue;
            };
            refused[i] = true;
            let line = chunk.lines.get(i).copied().unwrap_or_default();
            // No text: lines are not kept past parsing (a chunk of them
            // could be 64 MB); the record names the line in the object.
            self.rejections
                .record_refused(line, rejected.reason.as_str(), &rejected.detail, None);
        }
        let mut stored = 0;
        let mut newly_counted = 0;
        for (i, reading) in chunk.readings.iter().enumerate() {
            if !refused[i] {
                self.breaches.record(reading, prediction(i));
                if let Some(windowed) = &mut self.windowed {
                    windowed.stored(reading, &mut self.breaches);
                }
                stored += 1;
                newly_counted += usize::from(chunk.lines[i] > self.counted_before.flushed);
            }
        }
        self.status.readings(
            kept.iter()
                .zip(&items)
                .filter(|(i, _)| !refused[**i])
                .map(|(&i, item)| (&chunk.readings[i], item, prediction(i))),
        );
        metrics::records_stored(newly_counted);
        if let Some(&last) = chunk.lines.last() {
            self.counted.flushed.fetch_max(last, Ordering::Relaxed);
        }
        self.attempt.liveness.progress(); // a chunk stored
        chunk.clear();
        if self.windowed.as_ref().is_some_and(WindowedScan::is_full) {
            self.evaluate_windowed().await?;
        }
        if self.breaches.len() > MAX_OPEN_ALERTS {
            self.deliver_early().await?;
        }
        if self.status.len() > fleet_status::MAX_DEVICES {
            self.write_status().await;
        }
        Ok(stored as u64)
    }

    /// Evaluates the windowed rules on the readings stored so far (read
    /// back from the table), folding their breaches into `breaches`.
    async fn evaluate_windowed(&mut self) -> Result<(), ProcessError> {
        if let Some(windowed) = &mut self.windowed {
            windowed
                .evaluate(&self.pipeline.store, self.attempt, &mut self.breaches)
                .await?;
        }
        Ok(())
    }

    /// Publishes the alerts gathered so far (their readings are stored),
    /// holding the message while SNS or the ledger fails.
    async fn deliver_early(&mut self) -> Result<(), ProcessError> {
        let alerts = self.breaches.take();
        self.alerts += alerts.len() as u64;
        self.status.alerts(&alerts);
        if let Mode::DryRun { alerts_kept, .. } = self.mode {
            let room = alerts_kept.saturating_sub(self.held_alerts.len());
            self.held_alerts.extend(alerts.into_iter().take(room));
            return Ok(());
        }
        let (pipeline, owner) = (self.pipeline, self.attempt.owner);
        retry::hold(self.attempt, "publishing alerts", || {
            pipeline.deliver_alerts(&alerts, owner)
        })
        .await?;
        Ok(())
    }

    /// Writes the fleet status records of the devices seen so far (their
    /// readings are stored) and starts a new batch; see [`fleet_status`].
    /// Not a held step: the records are a view for `fleetwatch status`,
    /// and waiting on them would hold the object's alerts back. A write
    /// that still fails after its few retries is logged and counted
    /// (`fleetwatch_fleet_status_errors_total`); the device's next object
    /// (or a replay of this one) brings its record up to date.
    async fn write_status(&mut self) {
        // A dry run writes nothing, status records included, but drops the
        // batch as a live run does, so its memory stays bounded too.
        if self.mode != Mode::Live {
            self.status = StatusBatch::default();
            return;
        }
        if self.status.is_empty() {
            return;
        }
        let store = &self.pipeline.store;
        let writer = FleetStatus::new(store.client().clone(), store.table().to_owned());
        if let Err(e) = writer.write_with_retries(&self.status).await {
            metrics::fleet_status_error();
            tracing::warn!(bucket = %self.object.bucket, key = %self.object.key, error = %e,
                "the fleet status records of the object's devices were not updated");
        }
        self.attempt.liveness.progress();
        self.status = StatusBatch::default();
    }

    /// Writes the quarantine; returns the report and the object's alerts
    /// not published yet.
    async fn finish(
        mut self,
        mut report: ObjectReport,
    ) -> Result<(ObjectReport, Vec<Alert>), ProcessError> {
        report.rejected = self.rejections.count;
        report.duplicates = self.duplicates;
        report.devices = self.features.devices_seen();
        if self.features.evictions() > 0 {
            tracing::warn!(
                bucket = %self.object.bucket,
                key = %self.object.key,
                devices = report.devices,
                evictions = self.features.evictions(),
                max_devices = MAX_CONTEXT_DEVICES,
                "the object holds readings of more devices than the feature context keeps; the least recently seen devices' windows restarted"
            );
        } else {
            tracing::debug!(bucket = %self.object.bucket, key = %self.object.key, devices = report.devices, "devices in the object");
        }
        self.evaluate_windowed().await?;
        let last = self.breaches.take();
        report.alerts = self.alerts + last.len() as u64;
        self.status.alerts(&last);
        self.write_status().await;
        let mut alerts = std::mem::take(&mut self.held_alerts);
        alerts.extend(last);
        if let Mode::DryRun { alerts_kept, .. } = self.mode {
            alerts.truncate(alerts_kept);
        }
        report.rejected_by_reason = std::mem::take(&mut self.rejections.by_reason);
        let records = self.rejections.finish();
        if self.mode != Mode::Live {
            return Ok((report, alerts));
        }
        if let (Some(q), Some(records)) = (&self.pipeline.quarantine, records) {
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
#[derive(Default)]
struct Chunk {
    readings: Vec<Reading>,
    /// Each reading's line in the object, for its item and its rejection.
    lines: Vec<u64>,
    /// The input lines, only for predictors that need them.
    raw: Vec<String>,
}

impl Chunk {
    fn push(&mut self, reading: Reading, line: u64, raw: Option<String>) {
        self.readings.push(reading);
        self.lines.push(line);
        self.raw.extend(raw);
    }

    fn len(&self) -> usize {
        self.readings.len()
    }

    fn clear(&mut self) {
        self.readings.clear();
        self.lines.clear();
        self.raw.clear();
    }
}

/// Counts rejected lines, logs them at a bounded rate (the first few of an
/// object one by one, then one summary, so a broken file cannot flood the
/// logs) and collects them for the quarantine.
struct RejectionLog<'a> {
    object: &'a ObjectRef,
    count: u64,
    /// `count` by reason, for the object's report.
    by_reason: BTreeMap<&'static str, u64>,
    quarantine: Option<QuarantineRecords>,
    /// What earlier attempts at the object counted in the metrics.
    counted_before: Counted,
}

impl<'a> RejectionLog<'a> {
    fn new(object: &'a ObjectRef, quarantine: bool, counted_before: Counted) -> Self {
        RejectionLog {
            object,
            count: 0,
            by_reason: BTreeMap::new(),
            quarantine: quarantine.then(QuarantineRecords::default),
            counted_before,
        }
    }

    /// A line rejected while parsing.
    fn record(&mut self, line: u64, reason: &'static str, detail: &str, text: Option<&str>) {
        let count = line > self.counted_before.parsed;
        self.note(line, reason, detail, text, count);
    }

    /// A reading refused when its chunk was stored (by the model or DynamoDB).
    fn record_refused(
        &mut self,
        line: u64,
        reason: &'static str,
        detail: &str,
        text: Option<&str>,
    ) {
        let count = line > self.counted_before.flushed;
        self.note(line, reason, detail, text, count);
    }

    /// `count`: whether the metrics count it (no earlier attempt did).
    fn note(
        &mut self,
        line: u64,
        reason: &'static str,
        detail: &str,
        text: Option<&str>,
        count: bool,
    ) {
        self.count += 1;
        *self.by_reason.entry(reason).or_default() += 1;
        if count {
            metrics::record_rejected(reason);
        }
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
    crate::log_text::excerpt(text, EXCERPT_CHARS)
}

/// Opens a local file as an object body. A file that cannot be opened
/// (absent, unreadable) is a missing object: opening it again would fail
/// the same way.
async fn open_file(path: &std::path::Path, object: &ObjectRef) -> Result<ObjectBody, ReadError> {
    let opened = match tokio::fs::File::open(path).await {
        Ok(file) => file.metadata().await.map(|m| (file, m.len())),
        Err(e) => Err(e),
    };
    match opened {
        Ok((file, len)) => Ok(ObjectBody {
            content_length: i64::try_from(len).ok(),
            body: Box::new(file),
        }),
        Err(e) => Err(ReadError::Missing {
            bucket: object.bucket.clone(),
            key: object.key.clone(),
            code: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{Timestamp, Value};

    fn reading(device: &str, ms: i64, fields: &[(&str, &str)]) -> Reading {
        Reading {
            device_id: device.into(),
            timestamp: Timestamp::from_unix_millis(ms),
            fields: fields
                .iter()
                .map(|(n, v)| {
                    let value = crate::telemetry::Number::parse(v)
                        .map_or_else(|| Value::Text((*v).into()), Value::Number);
                    ((*n).to_owned(), value)
                })
                .collect(),
        }
    }

    /// Predicting an object chunk by chunk, as `flush` does, calls the model
    /// once per chunk with that chunk's rows only, and gives each reading
    /// the prediction it gets when the object is predicted in one batch.
    #[test]
    fn each_reading_is_predicted_once_and_as_in_one_batch() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let model = crate::inference::embedded::EmbeddedModel::builtin().unwrap();
        let predictor = Predictor::Embedded(model.clone());
        // 7 devices interleaved, 2,600 readings: 3 chunks.
        let readings: Vec<Reading> = (0..2600)
            .map(|i| {
                let temp = format!("{}", 80 + (i * 7) % 40);
                let rpm = format!("{}", 700 + (i * 13) % 2500);
                reading(
                    &format!("V{}", i % 7),
                    i * 30_000,
                    &[
                        ("engine_temp_c", &temp),
                        ("rpm", &rpm),
                        ("oil_pressure_kpa", "300"),
                    ],
                )
            })
            .collect();
        let whole = model.predict(&readings).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let chunked = ::metrics::with_local_recorder(&recorder, || {
            runtime.block_on(async {
                let mut features = FeatureContext::new(MAX_CONTEXT_DEVICES);
                let mut chunk = Chunk::default();
                let mut out = Vec::new();
                for (i, r) in readings.iter().enumerate() {
                    chunk.push(r.clone(), i as u64 + 1, None);
                    if chunk.len() >= CHUNK_READINGS || i + 1 == readings.len() {
                        let p = predictor
                            .predict_with_context(
                                &mut features,
                                &chunk.readings,
                                &chunk.raw,
                                OnError::Retry,
                            )
                            .await
                            .unwrap()
                            .unwrap();
                        assert_eq!(p.len(), chunk.len());
                        out.extend(p);
                        chunk.clear();
                    }
                }
                out
            })
        });
        let text = handle.render();
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        assert_eq!(value(metrics::INFERENCE_ROWS), 2600.0, "{text}");
        assert_eq!(
            value(&format!("{}_count", metrics::INFERENCE_DURATION)),
            3.0,
            "{text}"
        );
        assert_eq!(chunked.len(), whole.len());
        for (i, (a, b)) in chunked.iter().zip(&whole).enumerate() {
            assert_eq!(a.score.to_bits(), b.score.to_bits(), "reading {i}");
        }
    }
}
