//! The fleet status record: one small item per vehicle, so that
//! `fleetwatch status` lists the vehicles with an open alert or a recent
//! POSITIVE prediction, with their latest reading, in one Query instead of
//! a full-table scan.
//!
//! # Layout
//! In the readings table, under its own key space (`#` never appears in a
//! device id): `device_id = "fleet#status"`, `timestamp = <device>`, with
//! - `last_reading_at` S and `last_reading` M: the device's latest reading
//!   (its fields, `prediction` and `source`; only its numbers and the
//!   prediction when the whole reading would be over [`MAX_READING_BYTES`]);
//! - `last_positive_at` S and `last_positive_score` N: its latest POSITIVE
//!   prediction;
//! - `last_alert_at` S (the alert's last breach), `last_alert_rule`,
//!   `last_alert_kind`, `last_alert_value` S: its latest alert raised;
//! - `updated_at` S: when a worker last changed the record.
//!
//! # Writes
//! After an object's readings are stored, the pipeline folds what the
//! object showed of each device ([`StatusBatch`]: latest reading, latest
//! POSITIVE, latest alert) and sends **one `UpdateItem` per device of the
//! object**, conditional on every part being newer than what is stored
//! (`attribute_not_exists(a) OR a < :t`, the RFC 3339 texts sorting by
//! time). When the condition fails, DynamoDB returns the stored record
//! (`ReturnValuesOnConditionCheckFailure = ALL_OLD`) and the parts that
//! are still newer are sent again, alone. So the record only moves
//! forward: a replayed message or an older file arriving late changes
//! nothing, and two workers racing on a device both end at the maximum.
//! The write is not a held step: it is retried a few times
//! ([`FleetStatus::write_with_retries`]), then logged and counted in
//! `fleetwatch_fleet_status_errors_total`, because holding an object's
//! alerts back for a view would be the wrong trade; the device's next
//! object (or a replay) brings its record up to date.
//! Cost per object: one write per device in order (1 WCU for a record
//! under 1 KB); a replay costs one failed conditional write per device
//! (which DynamoDB bills as a write); an out-of-order file at most one more
//! per device. An object with more devices than [`MAX_DEVICES`] writes its
//! batch early and starts afresh, so memory stays bounded.
//!
//! All records share one partition: DynamoDB serves up to 1,000 writes/s
//! to a partition, that is 1,000 (object, device) pairs per second for the
//! whole fleet, and `status` reads 1 MB per page (about 1,000 vehicles).

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use futures_util::StreamExt;

use crate::alerts::Alert;
use crate::failure::{Classify, FailureClass, classify_sdk};
use crate::inference::{Label, Prediction};
use crate::retry;
use crate::storage::{self, Item};
use crate::telemetry::{Reading, Timestamp};

/// The partition key of every status record.
pub const PARTITION: &str = "fleet#status";
/// Devices folded per object before the batch is written early.
pub const MAX_DEVICES: usize = 10_000;
/// A latest reading bigger than this is kept as its numbers only, so a
/// record stays small whatever the input.
pub const MAX_READING_BYTES: usize = 8 * 1024;
/// Devices updated at once.
const IN_FLIGHT: usize = 8;
/// Conditional rounds per device before giving up on a race (each round
/// sees a newer stored record, so this is only reached under contention).
const ROUNDS: usize = 5;

pub const LAST_READING_AT: &str = "last_reading_at";
pub const LAST_READING: &str = "last_reading";
pub const LAST_POSITIVE_AT: &str = "last_positive_at";
pub const LAST_POSITIVE_SCORE: &str = "last_positive_score";
pub const LAST_ALERT_AT: &str = "last_alert_at";
pub const LAST_ALERT_RULE: &str = "last_alert_rule";
pub const LAST_ALERT_KIND: &str = "last_alert_kind";
pub const LAST_ALERT_VALUE: &str = "last_alert_value";
pub const UPDATED_AT: &str = "updated_at";

#[derive(Debug, thiserror::Error)]
#[error("updating the fleet status of {device} (UpdateItem on table {table}) failed: {message}")]
pub struct StatusError {
    /// The device whose record was being updated.
    device: String,
    /// The table (`FLEETWATCH_TABLE`).
    table: String,
    /// The SDK error with its context.
    message: String,
    /// Whether retrying may help.
    class: FailureClass,
}

impl Classify for StatusError {
    fn class(&self) -> FailureClass {
        self.class
    }
}

/// What one object showed of one device so far.
#[derive(Debug, Clone, Default)]
struct DeviceUpdate {
    /// The latest reading stored and its `last_reading` map.
    latest: Option<(String, Item)>,
    /// The latest POSITIVE prediction: when, and its score.
    positive: Option<(String, String)>,
    /// The latest alert: its last breach, rule, kind and worst value.
    alert: Option<(String, String, &'static str, String)>,
}

/// The per-device updates of one object (or part of one).
#[derive(Debug, Default)]
pub struct StatusBatch {
    /// By device id.
    devices: HashMap<String, DeviceUpdate>,
}

impl StatusBatch {
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// Folds stored readings: `item` is each one's DynamoDB item.
    pub fn readings<'a>(
        &mut self,
        stored: impl Iterator<Item = (&'a Reading, &'a Item, Option<&'a Prediction>)>,
    ) {
        // The latest of each device in this chunk first, so only one item
        // per device is copied.
        let mut latest: HashMap<&str, (Timestamp, &Item)> = HashMap::new();
        for (reading, item, prediction) in stored {
            let at = reading.timestamp;
            latest
                .entry(&reading.device_id)
                .and_modify(|e| {
                    if at > e.0 {
                        *e = (at, item);
                    }
                })
                .or_insert((at, item));
            if let Some(p) = prediction.filter(|p| p.label == Label::Positive) {
                let at = at.to_rfc3339_millis();
                let entry = self.devices.entry(reading.device_id.clone()).or_default();
                if entry.positive.as_ref().is_none_or(|(t, _)| at > *t) {
                    let score = if p.score.is_finite() {
                        format!("{:.6}", p.score.clamp(0.0, 1.0))
                    } else {
                        "1".into()
                    };
                    entry.positive = Some((at, score));
                }
            }
        }
        for (device, (at, item)) in latest {
            let at = at.to_rfc3339_millis();
            let entry = self.devices.entry(device.to_owned()).or_default();
            if entry.latest.as_ref().is_none_or(|(t, _)| at > *t) {
                entry.latest = Some((at, reading_map(item)));
            }
        }
    }

    /// Folds the alerts raised (published or not yet).
    pub fn alerts(&mut self, alerts: &[Alert]) {
        for alert in alerts {
            let at = alert.breaches.last.to_rfc3339_millis();
            let entry = self.devices.entry(alert.id.device_id.clone()).or_default();
            if entry.alert.as_ref().is_none_or(|a| at > a.0) {
                entry.alert = Some((
                    at,
                    alert.id.rule.clone(),
                    alert.condition.kind.as_str(),
                    alert.breaches.worst_value.clone(),
                ));
            }
        }
    }
}

/// The `last_reading` map: the item without its key and bookkeeping, or
/// only its numbers and prediction when that would be large.
fn reading_map(item: &Item) -> Item {
    let skip = [
        storage::DEVICE_ID,
        storage::TIMESTAMP,
        storage::INGESTED_AT,
        storage::EXPIRES_AT,
    ];
    let map: Item = item
        .iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if storage::item_size(&map) <= MAX_READING_BYTES {
        return map;
    }
    map.into_iter()
        .filter(|(k, v)| matches!(v, AttributeValue::N(_)) || k == storage::PREDICTION)
        .collect()
}

/// Writes status records to the readings table.
#[derive(Debug, Clone)]
pub struct FleetStatus {
    /// The readings table's client.
    client: aws_sdk_dynamodb::Client,
    /// The readings table (`FLEETWATCH_TABLE`).
    table: String,
}

/// One part of a record: the attribute ordering it, its time, and the
/// attributes it sets.
struct Part {
    at_name: &'static str,
    at: String,
    values: Vec<(&'static str, AttributeValue)>,
}

impl FleetStatus {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        FleetStatus { client, table }
    }

    /// [`Self::write`], retried with backoff a few times when it may pass.
    /// Deliberately short: the records are a view, and the pipeline does
    /// not hold an object's alerts back for them (see `pipeline`).
    pub async fn write_with_retries(&self, batch: &StatusBatch) -> Result<(), StatusError> {
        let mut backoff = retry::FLEET_STATUS.backoff();
        loop {
            match self.write(batch).await {
                Ok(()) => return Ok(()),
                Err(e)
                    if e.class().is_retryable()
                        && backoff.attempts() + 1 < retry::FLEET_STATUS_CALLS =>
                {
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Applies every device's update (see the module documentation).
    /// Safe to call again with the same batch after an error.
    pub async fn write(&self, batch: &StatusBatch) -> Result<(), StatusError> {
        // A plain loop over FuturesUnordered rather than a stream adapter
        // with a closure: the future must stay `Send` for the worker's tasks.
        let mut pending = batch.devices.iter();
        let mut running = futures_util::stream::FuturesUnordered::new();
        let mut first_error = None;
        loop {
            while running.len() < IN_FLIGHT {
                match pending.next() {
                    Some((device, update)) => running.push(self.update(device, update)),
                    None => break,
                }
            }
            match running.next().await {
                Some(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Some(Ok(())) => {}
                None => return first_error.map_or(Ok(()), Err),
            }
        }
    }

    async fn update(&self, device: &str, update: &DeviceUpdate) -> Result<(), StatusError> {
        let mut parts = Vec::new();
        if let Some((at, map)) = &update.latest {
            parts.push(Part {
                at_name: LAST_READING_AT,
                at: at.clone(),
                values: vec![(LAST_READING, AttributeValue::M(map.clone()))],
            });
        }
        if let Some((at, score)) = &update.positive {
            parts.push(Part {
                at_name: LAST_POSITIVE_AT,
                at: at.clone(),
                values: vec![(LAST_POSITIVE_SCORE, AttributeValue::N(score.clone()))],
            });
        }
        if let Some((at, rule, kind, value)) = &update.alert {
            parts.push(Part {
                at_name: LAST_ALERT_AT,
                at: at.clone(),
                values: vec![
                    (LAST_ALERT_RULE, AttributeValue::S(rule.clone())),
                    (LAST_ALERT_KIND, AttributeValue::S((*kind).to_owned())),
                    (LAST_ALERT_VALUE, AttributeValue::S(value.clone())),
                ],
            });
        }
        for _ in 0..ROUNDS {
            if parts.is_empty() {
                return Ok(());
            }
            match self.send(device, &parts).await {
                Ok(None) => return Ok(()),
                // Keep only the parts still newer than the stored record.
                Ok(Some(stored)) => parts.retain(|p| match stored.get(p.at_name) {
                    Some(AttributeValue::S(t)) => p.at > *t,
                    _ => true,
                }),
                Err(e) => return Err(e),
            }
        }
        tracing::warn!(
            device_id = device,
            "fleet status: gave up after repeated races; the record is updated by the next object"
        );
        Ok(())
    }

    /// One conditional UpdateItem of `parts`; `Ok(Some(stored))` when the
    /// condition failed (the stored record, possibly empty).
    async fn send(&self, device: &str, parts: &[Part]) -> Result<Option<Item>, StatusError> {
        let mut sets = vec!["updated_at = :now".to_owned()];
        let mut conditions = Vec::new();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(storage::DEVICE_ID, AttributeValue::S(PARTITION.to_owned()))
            .key(storage::TIMESTAMP, AttributeValue::S(device.to_owned()))
            .expression_attribute_values(
                ":now",
                AttributeValue::S(crate::telemetry::Timestamp::now().to_rfc3339_millis()),
            )
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (i, part) in parts.iter().enumerate() {
            let at = format!(":at{i}");
            sets.push(format!("{} = {at}", part.at_name));
            conditions.push(format!(
                "(attribute_not_exists({0}) OR {0} < {at})",
                part.at_name
            ));
            request = request.expression_attribute_values(&at, AttributeValue::S(part.at.clone()));
            for (j, (name, value)) in part.values.iter().enumerate() {
                let v = format!(":v{i}_{j}");
                sets.push(format!("{name} = {v}"));
                request = request.expression_attribute_values(&v, value.clone());
            }
        }
        let result = request
            .update_expression(format!("SET {}", sets.join(", ")))
            .condition_expression(conditions.join(" AND "))
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                    Ok(Some(failed.item().cloned().unwrap_or_default()))
                }
                _ => Err(self.error(device, &e)),
            },
        }
    }

    fn error(
        &self,
        device: &str,
        e: &SdkError<UpdateItemError, aws_sdk_dynamodb::config::http::HttpResponse>,
    ) -> StatusError {
        StatusError {
            device: device.to_owned(),
            table: self.table.clone(),
            message: DisplayErrorContext(e).to_string(),
            class: classify_sdk(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{Number, Value};

    fn reading(device: &str, minute: i64, temp: &str) -> (Reading, Item) {
        let r = Reading {
            device_id: device.into(),
            timestamp: Timestamp::from_unix_millis(minute * 60_000),
            fields: vec![(
                "engine_temp_c".into(),
                Value::Number(Number::parse(temp).unwrap()),
            )],
        };
        let source = storage::Source {
            bucket: "b",
            key: "k",
            line: minute as u64,
        };
        let item = storage::item(&r, None, source, "now", Some(1));
        (r, item)
    }

    #[test]
    fn a_batch_keeps_each_devices_latest_reading_positive_and_alert() {
        let rows = [
            reading("A", 5, "90"),
            reading("A", 3, "95"),
            reading("B", 1, "80"),
        ];
        let positive = Prediction {
            label: Label::Positive,
            score: 0.9,
            model: "m".into(),
            explanation: Vec::new(),
        };
        let mut batch = StatusBatch::default();
        batch.readings(
            rows.iter()
                .enumerate()
                .map(|(i, (r, item))| (r, item, (i == 1).then_some(&positive))),
        );
        assert_eq!(batch.len(), 2);
        let a = &batch.devices["A"];
        let (at, map) = a.latest.as_ref().unwrap();
        assert_eq!(at, "1970-01-01T00:05:00.000Z");
        assert_eq!(map["engine_temp_c"], AttributeValue::N("90".into()));
        assert!(!map.contains_key(storage::EXPIRES_AT) && !map.contains_key("device_id"));
        assert_eq!(
            a.positive,
            Some(("1970-01-01T00:03:00.000Z".into(), "0.900000".into()))
        );
        assert!(batch.devices["B"].positive.is_none());
        // An earlier chunk's reading never replaces a later one.
        batch.readings(std::iter::once((&rows[1].0, &rows[1].1, None)));
        assert_eq!(
            batch.devices["A"].latest.as_ref().unwrap().0,
            "1970-01-01T00:05:00.000Z"
        );
    }
}
