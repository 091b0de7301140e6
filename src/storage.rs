//! Storing readings and their predictions in DynamoDB.
//!
//! Item layout (partition key `device_id`, sort key `timestamp`):
//! `device_id` S; `timestamp` S as RFC 3339 UTC with milliseconds, so keys
//! sort by time; each numeric field N, written from the decimal text it was
//! read as; every other field S; `prediction` M {label S, score N, model S,
//! and for an explained POSITIVE `contributions` L of M {feature S, value N,
//! contribution N}, its top three reasons} when a prediction was made; `source` M {bucket S, key S, line N};
//! `ingested_at` S; and, with `FLEETWATCH_READING_TTL`, `expires_at` N (the
//! table's TTL attribute). The attributes fleetwatch writes itself are
//! listed once, in [`OWNED_ATTRIBUTES`]: an input field with one of those
//! names is stored as `<name>_input`, so input can never overwrite them
//! (nor make DynamoDB delete a reading through its TTL).
//!
//! The key is the reading's identity, so a replayed message rewrites the
//! same items: writing is idempotent. Across objects the last write wins: a
//! corrected reading uploaded later in another object replaces the stored
//! one. Within one object the pipeline keeps the first reading of a key
//! (see `pipeline`); [`ReadingStore::write`] refuses a second item with a
//! key it was already given in the same call, as a safety net.
//!
//! Items go out with `BatchWriteItem` in batches of 25, several batches in
//! flight; `UnprocessedItems` are retried with backoff. A reading DynamoDB
//! can never take is rejected, not retried: the cheap checks
//! ([`check_item`]: size as DynamoDB counts it, N values it can store) run
//! before writing, and a batch DynamoDB still refuses as invalid
//! ([`FailureClass::Permanent`]) is split in halves down to the single
//! item, so only the items that fail alone are rejected. Every other
//! failure (throttling, 5xx, timeouts) is returned, so the message is not
//! deleted.
//!
//! [`ReadingStore::read_series`] reads a device's readings back (one paged,
//! strongly consistent `Query` on the key), for the windowed alert rules
//! (`alerts::windowed_scan`).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use futures_util::stream::{self, StreamExt, TryStreamExt};

use crate::failure::{self, Classify, Dependency, FailureClass, StepError};
use crate::inference::Prediction;
use crate::inference::explanation::Contribution;
use crate::metrics;
use crate::retry;
use crate::telemetry::number::{self, NumberError};
use crate::telemetry::{Reading, Timestamp, Value, parse_timestamp};

/// BatchWriteItem's limit.
pub const MAX_BATCH: usize = 25;
/// Calls for one batch before giving up on its unprocessed items.
const MAX_ATTEMPTS: u32 = retry::UNPROCESSED_ITEMS_CALLS;
/// DynamoDB's item size limit, 400 KB, attribute names included.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// The partition key: the vehicle.
pub const DEVICE_ID: &str = "device_id";
/// The sort key: when the reading was taken.
pub const TIMESTAMP: &str = "timestamp";
/// The model's prediction for the reading.
pub const PREDICTION: &str = "prediction";
/// Where the reading came from (bucket, key, line).
pub const SOURCE: &str = "source";
/// When fleetwatch stored the reading.
pub const INGESTED_AT: &str = "ingested_at";
/// The table's TTL attribute (epoch seconds): DynamoDB deletes the item
/// after it. Also used by the alert ledger's items in the alarm table.
pub const EXPIRES_AT: &str = "expires_at";

/// Every top-level attribute fleetwatch owns on a reading item: the two
/// key attributes (which input sets, as the reading's identity) and the
/// attributes fleetwatch writes itself, which input must never set. A new
/// attribute written by [`item`] belongs here.
pub const OWNED_ATTRIBUTES: &[&str] = &[
    DEVICE_ID,
    TIMESTAMP,
    PREDICTION,
    SOURCE,
    INGESTED_AT,
    EXPIRES_AT,
];
/// The key attributes among [`OWNED_ATTRIBUTES`].
pub const KEY_ATTRIBUTES: &[&str] = &[DEVICE_ID, TIMESTAMP];
/// Appended to an input field named like an owned attribute.
pub const INPUT_SUFFIX: &str = "_input";

/// The attribute an input field is stored under: its own name, or
/// `<name>_input` when fleetwatch owns `<name>` (keys excepted: they are
/// the reading's identity, taken from the input).
pub fn input_attribute_name(name: &str) -> std::borrow::Cow<'_, str> {
    if OWNED_ATTRIBUTES.contains(&name) && !KEY_ATTRIBUTES.contains(&name) {
        std::borrow::Cow::Owned(format!("{name}{INPUT_SUFFIX}"))
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

pub type Item = HashMap<String, AttributeValue>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DynamoDB BatchWriteItem on table {table} failed: {message}")]
    Call {
        table: String,
        message: String,
        /// How the caller should treat it (retryable unless DynamoDB
        /// refused the request itself).
        class: FailureClass,
    },
    #[error(
        "DynamoDB left {count} item(s) unprocessed on table {table} after {MAX_ATTEMPTS} attempts"
    )]
    Unprocessed { table: String, count: usize },
    #[error(
        "DynamoDB table {table} refused an item over its keys ({message}): the table's key \
         schema must be device_id (S) and timestamp (S)"
    )]
    TableRefused { table: String, message: String },
    #[error("could not build a DynamoDB request: {0}")]
    Build(String),
    #[error("DynamoDB Query of device {device:?} on table {table} failed: {message}")]
    Query {
        table: String,
        device: String,
        message: String,
        /// How the caller should treat it.
        class: FailureClass,
    },
}

impl Classify for StoreError {
    fn class(&self) -> FailureClass {
        match self {
            StoreError::Call { class, .. } | StoreError::Query { class, .. } => *class,
            // DynamoDB leaves items unprocessed when it lacks throughput.
            StoreError::Unprocessed { .. } => FailureClass::Throttled,
            // Neither is a fault of one reading: an operator fixes the
            // table, or it is a bug. Either way it costs time, not data.
            StoreError::TableRefused { .. } | StoreError::Build(_) => FailureClass::Transient,
        }
    }
}

impl StepError for StoreError {
    fn dependency(&self) -> Dependency {
        Dependency::DynamoDb
    }
}

/// Why an item was rejected instead of stored. `as_str()` is the `reason`
/// label of `fleetwatch_records_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemRejectReason {
    /// Over DynamoDB's 400 KB item limit, as DynamoDB counts it.
    ItemTooLarge,
    /// An N value DynamoDB cannot store (more than 38 significant digits,
    /// a magnitude outside 1e-130..1e126, or not a number at all).
    NumberOutOfRange,
    /// Another item with the same (device_id, timestamp) came first.
    DuplicateKey,
    /// DynamoDB refused the item alone as invalid; the detail is its message.
    DynamodbRejected,
}

impl ItemRejectReason {
    pub const ALL: &'static [ItemRejectReason] = &[
        ItemRejectReason::ItemTooLarge,
        ItemRejectReason::NumberOutOfRange,
        ItemRejectReason::DuplicateKey,
        ItemRejectReason::DynamodbRejected,
    ];

    /// Stable snake_case label; changing one breaks dashboards and alerts.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemRejectReason::ItemTooLarge => "item_too_large",
            ItemRejectReason::NumberOutOfRange => "number_out_of_range",
            ItemRejectReason::DuplicateKey => "duplicate_key",
            ItemRejectReason::DynamodbRejected => "dynamodb_rejected",
        }
    }
}

/// One item [`ReadingStore::write`] did not store, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedItem {
    /// Its position in the items given to `write`, so the caller can tell
    /// which reading (and line) it was.
    pub index: usize,
    pub reason: ItemRejectReason,
    /// What to tell the operator: the size, the attribute, or DynamoDB's
    /// own message.
    pub detail: String,
}

/// What [`ReadingStore::write`] did with the items it was given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Items now in the table.
    pub written: usize,
    /// Items refused for good, in index order; every other item was written.
    pub rejected: Vec<RejectedItem>,
}

/// Where a reading came from.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub line: u64,
}

/// The DynamoDB item for one reading. `expires_at` is the TTL attribute's
/// value (epoch seconds), from [`ReadingStore::expires_at`].
pub fn item(
    reading: &Reading,
    prediction: Option<&Prediction>,
    source: Source<'_>,
    ingested_at: &str,
    expires_at: Option<i64>,
) -> Item {
    let mut item = Item::with_capacity(reading.fields.len() + 6);
    for (name, value) in &reading.fields {
        let value = match value {
            Value::Number(n) => AttributeValue::N(n.as_str().to_owned()),
            // An empty text carries no information; storing it would only
            // make "absent" and "empty" two states to query for.
            Value::Text(t) if t.is_empty() => continue,
            Value::Text(t) => AttributeValue::S(t.clone()),
        };
        // The parser already renamed owned names; renaming here too keeps
        // a reading built any other way from overwriting them.
        item.insert(input_attribute_name(name).into_owned(), value);
    }
    // Written after the fields, so that not even a key can come from one.
    item.insert(
        DEVICE_ID.into(),
        AttributeValue::S(reading.device_id.clone()),
    );
    item.insert(
        TIMESTAMP.into(),
        AttributeValue::S(reading.timestamp.to_rfc3339_millis()),
    );
    if let Some(p) = prediction {
        let mut map = HashMap::with_capacity(3);
        map.insert("label".into(), AttributeValue::S(p.label.as_str().into()));
        map.insert("model".into(), AttributeValue::S(p.model.clone()));
        // An UNKNOWN prediction has no score: none is made up.
        if p.score.is_finite() {
            map.insert("score".into(), AttributeValue::N(format_score(p.score)));
        }
        if !p.explanation.is_empty() {
            map.insert("contributions".into(), contributions(&p.explanation));
        }
        item.insert(PREDICTION.into(), AttributeValue::M(map));
    }
    item.insert(
        SOURCE.into(),
        AttributeValue::M(HashMap::from([
            ("bucket".into(), AttributeValue::S(source.bucket.to_owned())),
            ("key".into(), AttributeValue::S(source.key.to_owned())),
            ("line".into(), AttributeValue::N(source.line.to_string())),
        ])),
    );
    item.insert(
        INGESTED_AT.into(),
        AttributeValue::S(ingested_at.to_owned()),
    );
    if let Some(at) = expires_at {
        item.insert(EXPIRES_AT.into(), AttributeValue::N(at.to_string()));
    }
    item
}

/// Why a POSITIVE prediction is POSITIVE, largest first: L of M {`feature`
/// S, `value` N (absent when the reading had none), `contribution` N in
/// log-odds}.
fn contributions(reasons: &[Contribution]) -> AttributeValue {
    AttributeValue::L(
        reasons
            .iter()
            .map(|c| {
                let mut m = HashMap::from([
                    ("feature".into(), AttributeValue::S(c.feature.to_owned())),
                    (
                        "contribution".into(),
                        AttributeValue::N(format!("{:.6}", c.contribution)),
                    ),
                ]);
                if c.value.is_finite() {
                    m.insert("value".into(), AttributeValue::N(c.value.to_string()));
                }
                AttributeValue::M(m)
            })
            .collect(),
    )
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

/// The size of an item as DynamoDB counts it against its 400 KB limit
/// (`CapacityUnitCalculations` in the DynamoDB guide): attribute names and
/// strings by their UTF-8 bytes, binaries by their raw bytes, a number as 1
/// byte per two significant digits plus 1, a boolean or null as 1, a map or
/// list as 3 bytes plus 1 per element plus its elements.
pub fn item_size(item: &Item) -> usize {
    ItemWalk::default().item_size(item)
}

/// DynamoDB's documented approximation for a number: leading and trailing
/// zeros trimmed, one byte per two significant digits, plus one.
fn number_size(text: &str) -> usize {
    let digits = number::scan(text)
        .and_then(|s| s.significant_len())
        .map_or(0, |(digits, _)| digits);
    digits.div_ceil(2) + 1
}

/// The checks DynamoDB would make on one item that can be made without a
/// call: its size, and every N value (nested ones too). `Err` names the
/// reason and what is wrong; an item both too large and holding a bad
/// number is reported as too large, as DynamoDB would.
///
/// One walk over the item does both: each N value is scanned once, for
/// its size and its limits together (this runs on every stored item).
pub fn check_item(item: &Item) -> Result<(), (ItemRejectReason, String)> {
    let mut walk = ItemWalk::default();
    let size = walk.item_size(item);
    if size > MAX_ITEM_BYTES {
        return Err((
            ItemRejectReason::ItemTooLarge,
            format!(
                "the item is {size} bytes as DynamoDB counts them, over its limit of {MAX_ITEM_BYTES} (400 KB)"
            ),
        ));
    }
    walk.first_bad_number.map_or(Ok(()), Err)
}

/// The one walk over an item behind [`item_size`] and [`check_item`]: it
/// sizes every value and remembers the first N value DynamoDB could not
/// store.
#[derive(Default)]
struct ItemWalk {
    /// The reason and detail for the first bad N value met, if any.
    first_bad_number: Option<(ItemRejectReason, String)>,
}

impl ItemWalk {
    fn item_size(&mut self, item: &Item) -> usize {
        item.iter()
            .map(|(name, value)| name.len() + self.value_size(name, value))
            .sum()
    }

    /// `name` is the attribute the value is under (the innermost map key),
    /// for the bad number's message.
    fn value_size(&mut self, name: &str, value: &AttributeValue) -> usize {
        match value {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => self.number_size(name, n),
            AttributeValue::B(b) => b.as_ref().len(),
            AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
            AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
            AttributeValue::Ns(ns) => ns.iter().map(|n| self.number_size(name, n)).sum(),
            AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
            AttributeValue::M(m) => {
                3 + m
                    .iter()
                    .map(|(k, v)| k.len() + self.value_size(k, v) + 1)
                    .sum::<usize>()
            }
            AttributeValue::L(l) => {
                3 + l
                    .iter()
                    .map(|v| self.value_size(name, v) + 1)
                    .sum::<usize>()
            }
            // A type this SDK does not know: count its debug text, an over-
            // rather than an under-estimate. fleetwatch never writes one.
            other => format!("{other:?}").len(),
        }
    }

    /// [`number_size`], checking DynamoDB's limits in the same scan.
    fn number_size(&mut self, name: &str, text: &str) -> usize {
        match number::storable_digits(text) {
            Ok(digits) => digits.div_ceil(2) + 1,
            Err(e) => {
                if self.first_bad_number.is_none() {
                    self.first_bad_number = Some(bad_number(name, text, e));
                }
                number_size(text)
            }
        }
    }
}

/// The reason and detail for an N value DynamoDB cannot store.
fn bad_number(name: &str, text: &str, e: NumberError) -> (ItemRejectReason, String) {
    let why = match e {
        NumberError::TooPrecise => "has more than 38 significant digits",
        NumberError::OutOfRange => "is outside 1e-130..1e126 in magnitude",
        NumberError::NonFinite | NumberError::NotANumber => "is not a finite decimal number",
    };
    (
        ItemRejectReason::NumberOutOfRange,
        format!(
            "attribute {}: {} {why}, which DynamoDB cannot store",
            crate::telemetry::shown(name),
            crate::telemetry::shown(text)
        ),
    )
}

/// Writes items to one table.
#[derive(Debug, Clone)]
pub struct ReadingStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    /// BatchWriteItem calls in flight per write (`FLEETWATCH_DYNAMODB_WRITERS`).
    writers: usize,
    /// How long a reading is kept after its own timestamp
    /// (`FLEETWATCH_READING_TTL`, through the table's TTL on `expires_at`);
    /// `None` keeps readings forever.
    reading_ttl: Option<Duration>,
}

/// How one BatchWriteItem batch failed.
enum BatchFailure {
    /// DynamoDB refused the request as invalid: `pending` (the batch, or
    /// what was left of it unprocessed, as indexes of the items) can never
    /// be written together.
    Refused {
        pending: Vec<usize>,
        message: String,
    },
    /// Anything else: returned to the caller.
    Failed(StoreError),
}

impl ReadingStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String, writers: usize) -> Self {
        ReadingStore {
            client,
            table,
            writers: writers.max(1),
            reading_ttl: None,
        }
    }

    /// Readings expire `ttl` after their own timestamp; `None` keeps them.
    pub fn with_reading_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.reading_ttl = ttl;
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The DynamoDB client, for the other records kept in the same table
    /// (the fleet status, [`crate::fleet_status`]).
    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    /// The `expires_at` of a reading's item: its own timestamp (epoch
    /// seconds) plus the TTL, so retention follows event time whatever the
    /// delay before upload. A reading older than the TTL is therefore
    /// deleted by DynamoDB soon after it is written. `None` without a TTL.
    pub fn expires_at(&self, reading: &Reading) -> Option<i64> {
        let ttl = i64::try_from(self.reading_ttl?.as_secs()).unwrap_or(i64::MAX);
        Some(
            reading
                .timestamp
                .unix_millis()
                .div_euclid(1000)
                .saturating_add(ttl),
        )
    }

    /// Writes every item DynamoDB can take and reports the ones it can
    /// never take ([`WriteReport::rejected`]); fails on anything that may
    /// succeed later (throttling, 5xx, timeouts), so the caller retries.
    ///
    /// A second item with a key already given in this call is rejected
    /// (`duplicate_key`), the first one winning: DynamoDB refuses a batch
    /// that names one key twice, and batches in flight together could
    /// otherwise land in either order.
    ///
    /// The items are borrowed: each call copies an item once, into the
    /// request that carries it, so a retried write costs no more copies
    /// than the first.
    pub async fn write(&self, items: &[Item]) -> Result<WriteReport, StoreError> {
        let mut rejected = Vec::new();
        let mut keys = HashSet::with_capacity(items.len());
        let mut accepted: Vec<usize> = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            if let Err((reason, detail)) = check_item(item) {
                rejected.push(RejectedItem {
                    index,
                    reason,
                    detail,
                });
                continue;
            }
            if !keys.insert(key_of(item)) {
                rejected.push(RejectedItem {
                    index,
                    reason: ItemRejectReason::DuplicateKey,
                    detail:
                        "an item with the same device_id and timestamp came first in this write"
                            .into(),
                });
                continue;
            }
            accepted.push(index);
        }
        let sent = accepted.len();
        let batches: Vec<Vec<usize>> = accepted.chunks(MAX_BATCH).map(<[usize]>::to_vec).collect();
        let refused = stream::iter(batches.into_iter().map(|b| self.write_batch(items, b)))
            .buffer_unordered(self.writers)
            .try_fold(Vec::new(), |mut all, refused| async move {
                all.extend(refused);
                Ok(all)
            })
            .await?;
        let written = sent - refused.len();
        metrics::dynamodb_items_written(written);
        rejected.extend(refused);
        rejected.sort_unstable_by_key(|r| r.index);
        Ok(WriteReport { written, rejected })
    }

    /// Writes one batch (`batch` indexes `items`); when DynamoDB refuses it
    /// as invalid, writes each half on its own, down to the single item,
    /// and returns the items refused alone. A batch with one bad item costs
    /// about 2·log2(25) ≈ 10 calls instead of failing the whole object.
    fn write_batch<'a>(
        &'a self,
        items: &'a [Item],
        batch: Vec<usize>,
    ) -> futures_util::future::BoxFuture<'a, Result<Vec<RejectedItem>, StoreError>> {
        Box::pin(async move {
            let (mut pending, message) = match self.send(items, batch).await {
                Ok(()) => return Ok(Vec::new()),
                Err(BatchFailure::Failed(e)) => return Err(e),
                Err(BatchFailure::Refused { pending, message }) => (pending, message),
            };
            if let [index] = pending.as_slice() {
                if blames_the_table(&message) {
                    return Err(StoreError::TableRefused {
                        table: self.table.clone(),
                        message,
                    });
                }
                return Ok(vec![RejectedItem {
                    index: *index,
                    reason: ItemRejectReason::DynamodbRejected,
                    detail: message,
                }]);
            }
            let second = pending.split_off(pending.len() / 2);
            let mut refused = self.write_batch(items, pending).await?;
            refused.extend(self.write_batch(items, second).await?);
            Ok(refused)
        })
    }

    /// One batch (`batch` indexes `items`), its `UnprocessedItems` retried
    /// with backoff.
    async fn send(&self, items: &[Item], mut batch: Vec<usize>) -> Result<(), BatchFailure> {
        let mut backoff = retry::UNPROCESSED_ITEMS.backoff();
        loop {
            let requests = batch
                .iter()
                .map(|&i| put_request(&items[i]))
                .collect::<Result<Vec<_>, _>>()
                .map_err(BatchFailure::Failed)?;
            let result = self
                .client
                .batch_write_item()
                .request_items(&self.table, requests)
                .send()
                .await;
            let output = match result {
                Ok(output) => output,
                Err(e) => {
                    let class = failure::classify_sdk(&e);
                    if class == FailureClass::Permanent {
                        let message = match (e.code(), e.message()) {
                            (Some(code), Some(message)) => format!("{code}: {message}"),
                            (Some(code), None) => code.to_owned(),
                            _ => DisplayErrorContext(&e).to_string(),
                        };
                        return Err(BatchFailure::Refused {
                            pending: batch,
                            message,
                        });
                    }
                    return Err(BatchFailure::Failed(StoreError::Call {
                        table: self.table.clone(),
                        message: DisplayErrorContext(&e).to_string(),
                        class,
                    }));
                }
            };
            let unprocessed = output
                .unprocessed_items()
                .and_then(|u| u.get(&self.table))
                .map(Vec::as_slice)
                .unwrap_or_default();
            if unprocessed.is_empty() {
                return Ok(());
            }
            // Back from the items DynamoDB names to the ones of the batch:
            // the keys are unique within a write.
            let left: HashSet<(&str, &str)> = unprocessed
                .iter()
                .filter_map(|w| Some(key_of(w.put_request()?.item())))
                .collect();
            batch.retain(|&i| left.contains(&key_of(&items[i])));
            if batch.len() != unprocessed.len() {
                return Err(BatchFailure::Failed(StoreError::Build(format!(
                    "DynamoDB left {} item(s) unprocessed, {} of them not in the batch",
                    unprocessed.len(),
                    unprocessed.len().saturating_sub(batch.len())
                ))));
            }
            if backoff.attempts() + 1 >= MAX_ATTEMPTS {
                return Err(BatchFailure::Failed(StoreError::Unprocessed {
                    table: self.table.clone(),
                    count: batch.len(),
                }));
            }
            metrics::dynamodb_unprocessed_retry();
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }
}

impl ReadingStore {
    /// Reads back `device`'s readings from `from` to `to` (both included)
    /// in time order (the sort key's), strongly consistent, so every
    /// reading whose write returned before this call is seen. Only the
    /// timestamp and `fields` (input names; stored as
    /// [`input_attribute_name`]) are read; `each` gets each reading's time
    /// and each field's value (`None` when absent or not a number), page by
    /// page, so a long series never sits in memory. Returns the readings
    /// read.
    pub async fn read_series(
        &self,
        device: &str,
        (from, to): (Timestamp, Timestamp),
        fields: &[String],
        mut each: impl FnMut(Timestamp, &[Option<f64>]),
    ) -> Result<u64, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("#d = :d AND #t BETWEEN :from AND :to")
            .expression_attribute_names("#d", DEVICE_ID)
            .expression_attribute_names("#t", TIMESTAMP)
            .expression_attribute_values(":d", AttributeValue::S(device.to_owned()))
            .expression_attribute_values(":from", AttributeValue::S(from.to_rfc3339_millis()))
            .expression_attribute_values(":to", AttributeValue::S(to.to_rfc3339_millis()));
        let mut projection = "#t".to_owned();
        let stored: Vec<String> = fields
            .iter()
            .map(|f| input_attribute_name(f).into_owned())
            .collect();
        for (i, name) in stored.iter().enumerate() {
            query = query.expression_attribute_names(format!("#f{i}"), name);
            projection.push_str(&format!(", #f{i}"));
        }
        let mut items = query
            .projection_expression(projection)
            .into_paginator()
            .items()
            .send();
        let mut values = vec![None; stored.len()];
        let mut read = 0;
        while let Some(item) = items.next().await {
            let item = item.map_err(|e| StoreError::Query {
                table: self.table.clone(),
                device: device.to_owned(),
                message: DisplayErrorContext(&e).to_string(),
                class: failure::classify_sdk(&e),
            })?;
            let Some(at) = item
                .get(TIMESTAMP)
                .and_then(|t| t.as_s().ok())
                .and_then(|t| parse_timestamp(t).ok())
            else {
                continue;
            };
            for (value, name) in values.iter_mut().zip(&stored) {
                *value = item
                    .get(name)
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse::<f64>().ok())
                    .filter(|v| v.is_finite());
            }
            read += 1;
            each(at, &values);
        }
        Ok(read)
    }
}

/// The request that puts a copy of `item`.
fn put_request(item: &Item) -> Result<WriteRequest, StoreError> {
    let put = PutRequest::builder()
        .set_item(Some(item.clone()))
        .build()
        .map_err(|e| StoreError::Build(e.to_string()))?;
    Ok(WriteRequest::builder().put_request(put).build())
}

/// Whether DynamoDB's refusal of a single item is about the table rather
/// than the item: every message about keys ("Missing the key …", "Type
/// mismatch for key …", "The provided key element does not match the
/// schema"). fleetwatch always writes both keys as non-empty strings, so
/// such a refusal means the table's key schema is not (device_id S,
/// timestamp S); rejecting readings over it would drop every one of them.
fn blames_the_table(message: &str) -> bool {
    message.to_ascii_lowercase().contains("key")
}

/// An item's (device_id, timestamp).
fn key_of(item: &Item) -> (&str, &str) {
    let part = |name: &str| match item.get(name) {
        Some(AttributeValue::S(s)) => s.as_str(),
        _ => "",
    };
    (part(DEVICE_ID), part(TIMESTAMP))
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

    const SRC: Source<'static> = Source {
        bucket: "b",
        key: "k k",
        line: 3,
    };

    #[test]
    fn item_layout() {
        let p = Prediction {
            label: Label::Positive,
            score: 0.8765432,
            model: "m1".into(),
            explanation: vec![
                Contribution {
                    feature: "oil_kpa_per_krpm",
                    value: 46.5,
                    contribution: 1.25,
                },
                Contribution {
                    feature: "vibration_max",
                    value: f32::NAN,
                    contribution: 0.5,
                },
            ],
        };
        let it = item(
            &reading("VHC1", 1_760_914_020_000, "0.1"),
            Some(&p),
            SRC,
            "now",
            None,
        );
        assert_eq!(it["device_id"], AttributeValue::S("VHC1".into()));
        assert_eq!(
            it["timestamp"],
            AttributeValue::S("2025-10-19T22:47:00.000Z".into())
        );
        assert_eq!(it["engine_temp_c"], AttributeValue::N("0.1".into()));
        assert_eq!(it["status"], AttributeValue::S("ok".into()));
        assert!(!it.contains_key("note"));
        assert!(!it.contains_key(EXPIRES_AT), "no TTL, no expires_at");
        let AttributeValue::M(pred) = &it["prediction"] else {
            panic!()
        };
        assert_eq!(pred["label"], AttributeValue::S("POSITIVE".into()));
        assert_eq!(pred["score"], AttributeValue::N("0.876543".into()));
        let AttributeValue::L(reasons) = &pred["contributions"] else {
            panic!("{pred:?}")
        };
        let AttributeValue::M(first) = &reasons[0] else {
            panic!()
        };
        assert_eq!(
            first["feature"],
            AttributeValue::S("oil_kpa_per_krpm".into())
        );
        assert_eq!(first["value"], AttributeValue::N("46.5".into()));
        assert_eq!(first["contribution"], AttributeValue::N("1.250000".into()));
        let AttributeValue::M(second) = &reasons[1] else {
            panic!()
        };
        assert!(!second.contains_key("value"), "a missing value is absent");
        let AttributeValue::M(source) = &it["source"] else {
            panic!()
        };
        assert_eq!(source["line"], AttributeValue::N("3".into()));
        let no_pred = item(&reading("VHC1", 0, "1"), None, SRC, "now", None);
        assert!(!no_pred.contains_key("prediction"));
    }

    /// Every attribute fleetwatch owns: an input field of that name never
    /// reaches the item under it, whatever built the reading.
    #[test]
    fn input_never_sets_an_owned_attribute() {
        for &name in OWNED_ATTRIBUTES {
            let mut r = reading("VHC1", 1_760_914_020_000, "90");
            r.fields
                .push((name.to_owned(), Value::Text("from input".into())));
            let p = Prediction {
                label: Label::Negative,
                score: 0.1,
                model: "m1".into(),
                explanation: Vec::new(),
            };
            let it = item(&r, Some(&p), SRC, "now", Some(42));
            assert_ne!(
                it[name],
                AttributeValue::S("from input".into()),
                "{name} was set by input"
            );
            if !KEY_ATTRIBUTES.contains(&name) {
                assert_eq!(
                    it[&format!("{name}_input")],
                    AttributeValue::S("from input".into()),
                    "{name} is kept as {name}_input"
                );
            }
        }
        assert_eq!(input_attribute_name("expires_at"), "expires_at_input");
        assert_eq!(input_attribute_name("device_id"), "device_id");
        assert_eq!(input_attribute_name("rpm"), "rpm");
    }

    #[test]
    fn expiry_follows_the_readings_own_time() {
        let client = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::Config::builder()
                .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
                .build(),
        );
        let store = ReadingStore::new(client, "t".into(), 1);
        let r = reading("V", 1_760_914_020_500, "1");
        assert_eq!(store.expires_at(&r), None);
        let store = store.with_reading_ttl(Some(Duration::from_secs(400 * 86_400)));
        assert_eq!(store.expires_at(&r), Some(1_760_914_020 + 400 * 86_400));
        let it = item(&r, None, SRC, "now", store.expires_at(&r));
        assert_eq!(
            it[EXPIRES_AT],
            AttributeValue::N((1_760_914_020i64 + 34_560_000).to_string())
        );
    }

    #[test]
    fn sizes_are_counted_as_dynamodb_does() {
        let it = Item::from([
            ("ab".into(), AttributeValue::S("héllo".into())), // 2 + 6
            ("n".into(), AttributeValue::N("12345".into())),  // 1 + 3 + 1
            ("z".into(), AttributeValue::N("-0.00100".into())), // 1 + 1 + 1
            ("t".into(), AttributeValue::Bool(true)),         // 1 + 1
            (
                "m".into(),
                // 1 + 3 + (1 + 1 + 1) + (1 + 2 + 1)
                AttributeValue::M(HashMap::from([
                    ("x".into(), AttributeValue::S("y".into())),
                    ("k".into(), AttributeValue::N("7".into())),
                ])),
            ),
            // 1 + 3 + (1 + 1) + 0
            (
                "l".into(),
                AttributeValue::L(vec![AttributeValue::Null(true)]),
            ),
        ]);
        assert_eq!(item_size(&it), 8 + 5 + 3 + 2 + 11 + 6);
        assert_eq!(number_size("0"), 1);
        assert_eq!(number_size(&"9".repeat(38)), 20);
    }

    #[test]
    fn items_dynamodb_cannot_take_are_found_before_writing() {
        let mut r = reading("V", 0, "1");
        assert_eq!(check_item(&item(&r, None, SRC, "now", None)), Ok(()));
        r.fields
            .push(("blob".into(), Value::Text("x".repeat(MAX_ITEM_BYTES))));
        let (reason, detail) = check_item(&item(&r, None, SRC, "now", None)).unwrap_err();
        assert_eq!(reason, ItemRejectReason::ItemTooLarge);
        assert!(detail.contains("400 KB"), "{detail}");
        for bad in ["1e200", "1e-131", &"1".repeat(39), "NaN", "12a"] {
            let mut it = item(&reading("V", 0, "1"), None, SRC, "now", None);
            it.insert("big".into(), AttributeValue::N(bad.to_owned()));
            let (reason, detail) = check_item(&it).unwrap_err();
            assert_eq!(reason, ItemRejectReason::NumberOutOfRange, "{bad}");
            assert!(detail.contains("big"), "{detail}");
            let mut nested = item(&reading("V", 0, "1"), None, SRC, "now", None);
            nested.insert(
                "m".into(),
                AttributeValue::M(HashMap::from([(
                    "inner".into(),
                    AttributeValue::N(bad.to_owned()),
                )])),
            );
            assert_eq!(
                check_item(&nested).unwrap_err().0,
                ItemRejectReason::NumberOutOfRange
            );
        }
    }

    #[test]
    fn the_one_pass_check_counts_sizes_as_item_size_does() {
        // An item of exactly the limit passes and one byte more fails, with
        // numbers at every depth counted in the same walk that checks them.
        let mut it = Item::from([
            ("n".into(), AttributeValue::N("-0.00100".into())),
            (
                "m".into(),
                AttributeValue::M(HashMap::from([(
                    "l".into(),
                    AttributeValue::L(vec![AttributeValue::N("12345".into())]),
                )])),
            ),
            (
                "ns".into(),
                AttributeValue::Ns(vec!["7".into(), "1e3".into()]),
            ),
        ]);
        let filler = MAX_ITEM_BYTES - item_size(&it) - "s".len();
        it.insert("s".into(), AttributeValue::S("x".repeat(filler)));
        assert_eq!(item_size(&it), MAX_ITEM_BYTES);
        assert_eq!(check_item(&it), Ok(()));
        it.insert("s".into(), AttributeValue::S("x".repeat(filler + 1)));
        assert_eq!(
            check_item(&it).unwrap_err().0,
            ItemRejectReason::ItemTooLarge
        );
        // Too large and a bad number: too large, as DynamoDB says.
        it.insert("bad".into(), AttributeValue::N("1e200".into()));
        assert_eq!(
            check_item(&it).unwrap_err().0,
            ItemRejectReason::ItemTooLarge
        );
    }

    #[test]
    fn reasons_are_unique_snake_case() {
        let mut seen = HashSet::new();
        for reason in ItemRejectReason::ALL {
            let label = reason.as_str();
            assert!(seen.insert(label), "duplicate {label}");
            assert!(label.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
    }

    #[test]
    fn store_errors_are_classified() {
        let call = |class| StoreError::Call {
            table: "t".into(),
            message: "m".into(),
            class,
        };
        assert_eq!(
            call(FailureClass::Throttled).class(),
            FailureClass::Throttled
        );
        assert_eq!(
            StoreError::Unprocessed {
                table: "t".into(),
                count: 1
            }
            .class(),
            FailureClass::Throttled
        );
        assert!(
            StoreError::TableRefused {
                table: "t".into(),
                message: "Missing the key timestamp".into()
            }
            .class()
            .is_retryable()
        );
        assert!(blames_the_table(
            "ValidationException: The provided key element does not match the schema"
        ));
        assert!(!blames_the_table(
            "ValidationException: Item size has exceeded the maximum allowed size"
        ));
    }

    #[test]
    fn scores_are_short_decimals() {
        assert_eq!(format_score(0.5), "0.5");
        assert_eq!(format_score(1.0), "1");
        assert_eq!(format_score(0.0), "0");
        assert_eq!(format_score(1e-9), "0");
    }
}
