//! Quarantine: rejected lines written back to S3 with their reasons, so
//! nothing is silently dropped.
//!
//! With `FLEETWATCH_QUARANTINE_PREFIX` set, the rejected lines of an object
//! `s3://bucket/key` are written as JSON Lines to
//! `s3://bucket/<prefix><key>.rejected.jsonl`, one `{"line", "reason",
//! "detail", "text"}` record per line, plus an `{"object": reason}` record
//! when the whole object was refused. A replayed message rewrites the same
//! key. Objects under the prefix are never processed themselves (the
//! bucket's notification would otherwise feed the quarantine back in).
//!
//! Memory is bounded: at most [`MAX_BUFFER_BYTES`] of records are kept per
//! object; past that, lines are still counted and the file says how many
//! were left out.

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use serde_json::json;

use crate::failure::{Classify, Dependency, FailureClass, StepError, classify_sdk};
use crate::notification::ObjectRef;

/// Records kept per object before only counting.
pub const MAX_BUFFER_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
#[error("writing the quarantine object s3://{bucket}/{key} failed: {message}")]
pub struct QuarantineError {
    bucket: String,
    key: String,
    message: String,
    /// From the SDK error: whether the write may pass later.
    class: FailureClass,
}

impl StepError for QuarantineError {
    fn dependency(&self) -> Dependency {
        Dependency::S3
    }
}

impl Classify for QuarantineError {
    fn class(&self) -> FailureClass {
        // The records are ours, not the input's: a refusal is a bug or a
        // misconfiguration to wait out, never a reason to drop the object.
        match self.class {
            FailureClass::Permanent => FailureClass::Transient,
            class => class,
        }
    }
}

/// Where rejected lines go.
#[derive(Debug, Clone)]
pub struct Quarantine {
    s3: aws_sdk_s3::Client,
    prefix: String,
}

impl Quarantine {
    pub fn new(s3: aws_sdk_s3::Client, prefix: String) -> Self {
        Quarantine { s3, prefix }
    }

    /// Whether `key` is itself a quarantine object.
    pub fn covers(&self, key: &str) -> bool {
        key.starts_with(&self.prefix)
    }

    pub fn key_for(&self, object: &ObjectRef) -> String {
        format!("{}{}.rejected.jsonl", self.prefix, object.key)
    }

    /// Writes the object's records (nothing when there are none).
    pub async fn write(
        &self,
        object: &ObjectRef,
        records: &QuarantineRecords,
    ) -> Result<(), QuarantineError> {
        if records.is_empty() {
            return Ok(());
        }
        let key = self.key_for(object);
        let mut body = records.buffer.clone().into_bytes();
        if records.left_out > 0 {
            body.extend(format!("{}\n", json!({ "left_out": records.left_out })).into_bytes());
        }
        self.s3
            .put_object()
            .bucket(&object.bucket)
            .key(&key)
            .content_type("application/x-ndjson")
            .metadata("source-key", object.key.escape_default().to_string())
            .body(ByteStream::from(body))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| QuarantineError {
                bucket: object.bucket.clone(),
                key,
                message: DisplayErrorContext(&e).to_string(),
                class: classify_sdk(&e),
            })
    }
}

/// The quarantine records of one object, bounded in size.
#[derive(Debug, Default)]
pub struct QuarantineRecords {
    buffer: String,
    count: u64,
    left_out: u64,
}

impl QuarantineRecords {
    pub fn line(&mut self, line: u64, reason: &str, detail: &str, text: Option<&str>) {
        self.push(json!({ "line": line, "reason": reason, "detail": detail, "text": text }));
    }

    /// The whole object was refused.
    pub fn object(&mut self, reason: &str, detail: &str) {
        self.push(json!({ "object": reason, "detail": detail }));
    }

    fn push(&mut self, record: serde_json::Value) {
        self.count += 1;
        let text = record.to_string();
        if self.buffer.len() + text.len() < MAX_BUFFER_BYTES {
            self.buffer.push_str(&text);
            self.buffer.push('\n');
        } else {
            self.left_out += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn text(&self) -> &str {
        &self.buffer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_json_lines_and_bounded() {
        let mut r = QuarantineRecords::default();
        assert!(r.is_empty());
        r.line(3, "malformed", "no device_id", Some("garbage \"quoted\""));
        r.object("gzip_ratio", "bomb");
        let lines: Vec<serde_json::Value> = r
            .text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["line"], 3);
        assert_eq!(lines[0]["text"], "garbage \"quoted\"");
        assert_eq!(lines[1]["object"], "gzip_ratio");
        let big = "x".repeat(64 * 1024);
        for i in 0..200 {
            r.line(i, "line_too_long", "", Some(&big));
        }
        assert!(r.text().len() < MAX_BUFFER_BYTES);
        assert!(r.left_out > 0);
    }
}
