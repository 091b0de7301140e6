//! Processing one S3 object: read → parse → predict → store → alert.
//!
//! Readings flow through in chunks, so memory stays bounded whatever the
//! object's size: each chunk is predicted and written before the next is
//! read. Alerts are published only after every reading of the object is
//! stored, so a subscriber never hears of a reading that is not in the
//! table. Every non-blank line ends up either stored or counted as rejected
//! with a reason.

use std::time::Instant;

use crate::alerts::AlertSink;
use crate::alerts::BreachLog;
use crate::alerts::publisher::AlertError;
use crate::alerts::rules::AlertRule;
use crate::inference::{InferenceError, Predictor};
use crate::metrics;
use crate::notification::ObjectRef;
use crate::object_reader::{self, Line, LineReader, ReadError};
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
    /// The bytes are broken (e.g. truncated gzip). Lines read before the
    /// damage were processed normally.
    Corrupt {
        report: ObjectReport,
        reason: String,
    },
}

impl ObjectOutcome {
    pub fn label(&self) -> &'static str {
        match self {
            ObjectOutcome::Processed(_) => "ok",
            ObjectOutcome::Missing => "missing",
            ObjectOutcome::Corrupt { .. } => "corrupt",
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

/// A failure that may succeed later: the message is left for redelivery.
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
}

impl ProcessError {
    /// The `reason` label of `fleetwatch_sqs_messages_failed_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            ProcessError::Read(_) => "s3",
            ProcessError::Inference(_) => "inference",
            ProcessError::Store(_) => "dynamodb",
            ProcessError::Alert(_) => "sns",
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
    pub max_line_bytes: usize,
}

impl Pipeline {
    /// Processes one object to its end.
    pub async fn process_object(&self, object: &ObjectRef) -> Result<ObjectOutcome, ProcessError> {
        let started = Instant::now();
        let result = self.run(object).await;
        if let Ok(outcome) = &result {
            metrics::object_processed(outcome.label(), started.elapsed());
        }
        result
    }

    async fn run(&self, object: &ObjectRef) -> Result<ObjectOutcome, ProcessError> {
        let body = match object_reader::open(&self.s3, object).await {
            Ok(body) => body,
            Err(ReadError::Missing { code, .. }) => {
                tracing::warn!(bucket = %object.bucket, key = %object.key, %code, "object does not exist; nothing to process");
                return Ok(ObjectOutcome::Missing);
            }
            Err(e) => return Err(ProcessError::Read(e)),
        };
        let mut lines = LineReader::new(body.body, self.max_line_bytes, object)
            .await
            .map_err(ProcessError::Read)?;
        let mut chunk = Chunk::default();
        let mut breaches = BreachLog::new(
            &self.rules,
            self.maintenance_min_score,
            &object.bucket,
            &object.key,
        );
        let mut report = ObjectReport {
            gzip: lines.is_gzip(),
            ..ObjectReport::default()
        };
        let mut rejections = RejectionLog::new(object);
        let mut parser: Option<LineParser> = None;

        let corrupt = loop {
            let line = match lines.next_line().await {
                Ok(Some(line)) => line,
                Ok(None) => break None,
                Err(ReadError::Corrupt { message, .. }) => break Some(message),
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
                        Ok(reading) => chunk.push(reading, number),
                        Err(rejection) => rejections.record(
                            number,
                            rejection.reason.as_str(),
                            &rejection.detail,
                            Some(text),
                        ),
                    }
                }
                Line::TooLong { number, bytes } => rejections.record(
                    number,
                    "line_too_long",
                    &format!("{bytes} bytes, limit {}", self.max_line_bytes),
                    None,
                ),
                Line::InvalidUtf8 { number } => {
                    rejections.record(number, "invalid_utf8", "not valid UTF-8", None)
                }
            }
            if chunk.len() >= CHUNK_READINGS {
                report.stored += self.flush(&mut chunk, &mut breaches, object).await?;
            }
        };
        report.stored += self.flush(&mut chunk, &mut breaches, object).await?;
        report.rejected = rejections.finish();
        report.bytes = lines.source_bytes();
        metrics::object_bytes(report.bytes);

        let alerts = breaches.into_alerts();
        report.alerts = alerts.len() as u64;
        if let Some(sink) = &self.alerts
            && !alerts.is_empty()
        {
            sink.deliver(alerts).await?;
        }
        match corrupt {
            None => Ok(ObjectOutcome::Processed(report)),
            Some(reason) => Ok(ObjectOutcome::Corrupt { report, reason }),
        }
    }

    /// Predicts and stores the chunk, folds its breaches, and empties it.
    async fn flush(
        &self,
        chunk: &mut Chunk,
        breaches: &mut BreachLog<'_>,
        object: &ObjectRef,
    ) -> Result<u64, ProcessError> {
        if chunk.readings.is_empty() {
            return Ok(0);
        }
        let predictions = self.predictor.predict(&chunk.readings).await?;
        let ingested_at = now().to_rfc3339_millis();
        let items = chunk
            .readings
            .iter()
            .zip(&chunk.lines)
            .enumerate()
            .map(|(i, (reading, &line))| {
                let prediction = predictions.as_ref().and_then(|p| p.get(i));
                let source = storage::Source {
                    bucket: &object.bucket,
                    key: &object.key,
                    line,
                };
                storage::item(reading, prediction, source, &ingested_at)
            })
            .collect();
        self.store.write(items).await?;
        for (i, reading) in chunk.readings.iter().enumerate() {
            breaches.record(reading, predictions.as_ref().and_then(|p| p.get(i)));
        }
        let n = chunk.readings.len();
        metrics::records_stored(n);
        chunk.readings.clear();
        chunk.lines.clear();
        Ok(n as u64)
    }
}

/// Readings waiting to be predicted and stored, with their line numbers.
#[derive(Default)]
struct Chunk {
    readings: Vec<Reading>,
    lines: Vec<u64>,
}

impl Chunk {
    fn push(&mut self, reading: Reading, line: u64) {
        self.readings.push(reading);
        self.lines.push(line);
    }

    fn len(&self) -> usize {
        self.readings.len()
    }
}

/// Counts rejected lines and logs them at a bounded rate: the first few of
/// an object one by one, then one summary, so a broken file cannot flood
/// the logs.
struct RejectionLog<'a> {
    object: &'a ObjectRef,
    count: u64,
}

impl<'a> RejectionLog<'a> {
    fn new(object: &'a ObjectRef) -> Self {
        RejectionLog { object, count: 0 }
    }

    fn record(&mut self, line: u64, reason: &'static str, detail: &str, text: Option<&str>) {
        self.count += 1;
        metrics::record_rejected(reason);
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

    fn finish(self) -> u64 {
        if self.count > REJECTIONS_LOGGED {
            tracing::warn!(
                bucket = %self.object.bucket,
                key = %self.object.key,
                rejected = self.count,
                logged = REJECTIONS_LOGGED,
                "more lines were rejected than logged; see fleetwatch_records_rejected_total"
            );
        }
        self.count
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

    #[test]
    fn excerpts_are_short_and_escaped() {
        assert_eq!(excerpt("a\tb\"c"), "a\\tb\\\"c");
        let long = "x".repeat(500);
        let e = excerpt(&long);
        assert_eq!(e.chars().count(), EXCERPT_CHARS + 1);
        assert!(e.ends_with('…'));
    }
}
