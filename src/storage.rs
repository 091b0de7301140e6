//! Storing readings and their predictions in DynamoDB.
//!
//! Item layout (partition key `device_id`, sort key `timestamp`):
//! `device_id` S; `timestamp` S as RFC 3339 UTC with milliseconds, so keys
//! sort by time; each numeric field N, written from the decimal text it was
//! read as; every other field S; `prediction` M {label S, score N, model S}
//! when a prediction was made; `source` M {bucket S, key S, line N};
//! `ingested_at` S.
//!
//! The key is the reading's identity, so a replayed message rewrites the
//! same items: writing is idempotent. Items go out with `BatchWriteItem` in
//! batches of 25, several batches in flight; `UnprocessedItems` are retried
//! with backoff, and any failure is returned so the message is not deleted.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use futures_util::stream::{self, StreamExt, TryStreamExt};

use crate::backoff::Backoff;
use crate::inference::Prediction;
use crate::metrics;
use crate::telemetry::{Reading, Value};

/// BatchWriteItem's limit.
pub const MAX_BATCH: usize = 25;
/// Calls for one batch before giving up on its unprocessed items.
const MAX_ATTEMPTS: u32 = 8;

pub type Item = HashMap<String, AttributeValue>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DynamoDB BatchWriteItem on table {table} failed: {message}")]
    Call { table: String, message: String },
    #[error(
        "DynamoDB left {count} item(s) unprocessed on table {table} after {MAX_ATTEMPTS} attempts"
    )]
    Unprocessed { table: String, count: usize },
    #[error("could not build a DynamoDB request: {0}")]
    Build(String),
}

/// Where a reading came from.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub line: u64,
}

/// The DynamoDB item for one reading.
pub fn item(
    reading: &Reading,
    prediction: Option<&Prediction>,
    source: Source<'_>,
    ingested_at: &str,
) -> Item {
    let mut item = Item::with_capacity(reading.fields.len() + 5);
    item.insert(
        "device_id".into(),
        AttributeValue::S(reading.device_id.clone()),
    );
    item.insert(
        "timestamp".into(),
        AttributeValue::S(reading.timestamp.to_rfc3339_millis()),
    );
    for (name, value) in &reading.fields {
        let value = match value {
            Value::Number(n) => AttributeValue::N(n.as_str().to_owned()),
            // An empty text carries no information; storing it would only
            // make "absent" and "empty" two states to query for.
            Value::Text(t) if t.is_empty() => continue,
            Value::Text(t) => AttributeValue::S(t.clone()),
        };
        item.insert(name.clone(), value);
    }
    if let Some(p) = prediction {
        let mut map = HashMap::from([
            ("label".into(), AttributeValue::S(p.label.as_str().into())),
            ("model".into(), AttributeValue::S(p.model.clone())),
        ]);
        // An UNKNOWN prediction has no score: none is made up.
        if p.score.is_finite() {
            map.insert("score".into(), AttributeValue::N(format_score(p.score)));
        }
        item.insert("prediction".into(), AttributeValue::M(map));
    }
    item.insert(
        "source".into(),
        AttributeValue::M(HashMap::from([
            ("bucket".into(), AttributeValue::S(source.bucket.to_owned())),
            ("key".into(), AttributeValue::S(source.key.to_owned())),
            ("line".into(), AttributeValue::N(source.line.to_string())),
        ])),
    );
    item.insert(
        "ingested_at".into(),
        AttributeValue::S(ingested_at.to_owned()),
    );
    item
}

/// Six decimals is far below any model's resolution and keeps the N text short.
fn format_score(score: f64) -> String {
    let s = format!("{:.6}", score.clamp(0.0, 1.0));
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() {
        "0".into()
    } else {
        s.to_owned()
    }
}

/// Writes items to one table.
#[derive(Debug, Clone)]
pub struct ReadingStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    writers: usize,
}

impl ReadingStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String, writers: usize) -> Self {
        ReadingStore {
            client,
            table,
            writers: writers.max(1),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Writes every item, or fails. Items with the same key are collapsed
    /// first, the last one winning, as a replay would leave it: DynamoDB
    /// refuses a batch that names one key twice, and batches in flight
    /// together could otherwise land in either order.
    pub async fn write(&self, items: Vec<Item>) -> Result<(), StoreError> {
        let items = collapse_duplicate_keys(items);
        let count = items.len();
        let requests = items
            .into_iter()
            .map(|item| {
                PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map(|put| WriteRequest::builder().put_request(put).build())
                    .map_err(|e| StoreError::Build(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let batches: Vec<Vec<WriteRequest>> =
            requests.chunks(MAX_BATCH).map(<[_]>::to_vec).collect();
        stream::iter(batches.into_iter().map(|b| self.write_batch(b)))
            .buffer_unordered(self.writers)
            .try_collect::<()>()
            .await?;
        metrics::dynamodb_items_written(count);
        Ok(())
    }

    async fn write_batch(&self, mut batch: Vec<WriteRequest>) -> Result<(), StoreError> {
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
        loop {
            let output = self
                .client
                .batch_write_item()
                .request_items(&self.table, batch)
                .send()
                .await
                .map_err(|e| StoreError::Call {
                    table: self.table.clone(),
                    message: DisplayErrorContext(&e).to_string(),
                })?;
            batch = output
                .unprocessed_items()
                .and_then(|u| u.get(&self.table))
                .cloned()
                .unwrap_or_default();
            if batch.is_empty() {
                return Ok(());
            }
            if backoff.attempts() + 1 >= MAX_ATTEMPTS {
                return Err(StoreError::Unprocessed {
                    table: self.table.clone(),
                    count: batch.len(),
                });
            }
            metrics::dynamodb_unprocessed_retry();
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }
}

/// Keeps the last item of each (device_id, timestamp), in first-seen order.
fn collapse_duplicate_keys(items: Vec<Item>) -> Vec<Item> {
    let key = |item: &Item| {
        let part = |name: &str| match item.get(name) {
            Some(AttributeValue::S(s)) => s.clone(),
            _ => String::new(),
        };
        (part("device_id"), part("timestamp"))
    };
    let mut position: HashMap<(String, String), usize> = HashMap::with_capacity(items.len());
    let mut out: Vec<Item> = Vec::with_capacity(items.len());
    for item in items {
        match position.entry(key(&item)) {
            std::collections::hash_map::Entry::Occupied(slot) => out[*slot.get()] = item,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(out.len());
                out.push(item);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::Label;
    use crate::telemetry::{Number, Timestamp};

    fn reading(device: &str, ms: i64, temp: &str) -> Reading {
        Reading {
            device_id: device.into(),
            timestamp: Timestamp::from_unix_millis(ms),
            fields: vec![
                (
                    "engine_temp_c".into(),
                    Value::Number(Number::parse(temp).unwrap()),
                ),
                ("status".into(), Value::Text("ok".into())),
                ("note".into(), Value::Text(String::new())),
            ],
        }
    }

    #[test]
    fn item_layout() {
        let p = Prediction {
            label: Label::Positive,
            score: 0.8765432,
            model: "m1".into(),
        };
        let src = Source {
            bucket: "b",
            key: "k k",
            line: 3,
        };
        let it = item(
            &reading("VHC1", 1_760_914_020_000, "0.1"),
            Some(&p),
            src,
            "now",
        );
        assert_eq!(it["device_id"], AttributeValue::S("VHC1".into()));
        assert_eq!(
            it["timestamp"],
            AttributeValue::S("2025-10-19T22:47:00.000Z".into())
        );
        assert_eq!(it["engine_temp_c"], AttributeValue::N("0.1".into()));
        assert_eq!(it["status"], AttributeValue::S("ok".into()));
        assert!(!it.contains_key("note"));
        let AttributeValue::M(pred) = &it["prediction"] else {
            panic!()
        };
        assert_eq!(pred["label"], AttributeValue::S("POSITIVE".into()));
        assert_eq!(pred["score"], AttributeValue::N("0.876543".into()));
        let AttributeValue::M(source) = &it["source"] else {
            panic!()
        };
        assert_eq!(source["line"], AttributeValue::N("3".into()));
        let no_pred = item(&reading("VHC1", 0, "1"), None, src, "now");
        assert!(!no_pred.contains_key("prediction"));
    }

    #[test]
    fn duplicates_collapse_to_the_last() {
        let src = Source {
            bucket: "b",
            key: "k",
            line: 1,
        };
        let items = vec![
            item(&reading("A", 1, "1"), None, src, "t"),
            item(&reading("B", 1, "2"), None, src, "t"),
            item(&reading("A", 1, "3"), None, src, "t"),
        ];
        let out = collapse_duplicate_keys(items);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0]["engine_temp_c"], AttributeValue::N("3".into()));
        assert_eq!(out[1]["device_id"], AttributeValue::S("B".into()));
    }

    #[test]
    fn scores_are_short_decimals() {
        assert_eq!(format_score(0.5), "0.5");
        assert_eq!(format_score(1.0), "1");
        assert_eq!(format_score(0.0), "0");
        assert_eq!(format_score(1e-9), "0");
    }
}
