//! `fleetwatch status`: the queue (visible, in flight, delayed), its
//! dead-letter queue (depth, age of the oldest message), the worker's own
//! view (`--metrics-url`: `/readyz` and the main counters of `/metrics`),
//! and the vehicles with an alert or a POSITIVE prediction within
//! `--recent`, with their latest reading — from one Query of the fleet
//! status records ([`crate::fleet_status`]), never a table scan.
//!
//! # The oldest dead-letter message's age
//! SQS has no queue attribute for it (`ApproximateAgeOfOldestMessage` is a
//! CloudWatch metric only). `status` peeks instead: up to
//! [`PEEK_ROUNDS`] `ReceiveMessage` calls of 10 messages with
//! `VisibilityTimeout = 0`, reading each message's `SentTimestamp` (the
//! time the notification first entered the main queue, kept when SQS moves
//! a message to the dead-letter queue). Nothing is deleted and nothing is
//! hidden from others even for a moment; the one side effect is that each
//! peeked message's receive count goes up by one, which only matters to a
//! dead-letter queue that has a redrive policy of its own: then `status`
//! does not peek and says so. Standard queues answer a receive from a
//! sample of their servers, so with more messages than were seen the age
//! is a lower bound, and the output says how many messages were seen.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::{OutputFormat, StatusSettings};
use crate::fleet_status::{self as fs, PARTITION};
use crate::ops::output::{self, Item, KeyRange};
use crate::preflight::{self, PreflightError};
use crate::telemetry::NUMERIC_FIELDS;

/// Peeking rounds of 10 messages for the dead-letter queue's oldest age.
pub const PEEK_ROUNDS: usize = 5;
/// How long the worker's metrics server gets to answer.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    Aws(#[from] PreflightError),
    #[error("writing the output failed: {0}")]
    Output(#[from] std::io::Error),
}

/// One queue's counts.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct QueueCounts {
    pub url: String,
    /// Waiting to be received.
    pub visible: u64,
    /// Received and being worked on (or held through an outage).
    pub in_flight: u64,
    /// Sent with a delay (e.g. a message released for redelivery later).
    pub delayed: u64,
}

/// The dead-letter queue.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct DeadLetters {
    #[serde(flatten)]
    pub counts: QueueCounts,
    /// Receives before the main queue moves a message here.
    pub max_receive_count: Option<u64>,
    /// Seconds since the oldest message seen was first sent to the main queue.
    pub oldest_age_seconds: Option<u64>,
    /// Messages seen while peeking (the age is exact when it is the depth).
    pub peeked: u64,
    /// Why the age is unknown, when it is.
    pub note: Option<String>,
}

/// The worker's own view, from its metrics server.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct WorkerView {
    pub url: String,
    /// `/readyz`: `ready`, or its 503 answer (the failing dependencies), or
    /// why it could not be reached.
    pub ready: String,
    /// Selected series of `/metrics`, summed over their labels.
    pub metrics: BTreeMap<String, f64>,
}

/// One vehicle's status record.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Vehicle {
    pub device_id: String,
    pub last_reading_at: Option<String>,
    /// The latest reading (fields, prediction, source) as stored.
    pub last_reading: serde_json::Value,
    pub last_positive_at: Option<String>,
    pub last_positive_score: Option<f64>,
    pub last_alert_at: Option<String>,
    pub last_alert_rule: Option<String>,
    pub last_alert_kind: Option<String>,
    pub last_alert_value: Option<String>,
}

/// Everything `status` shows.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Status {
    pub queue: QueueCounts,
    /// `None` when the queue has no redrive policy.
    pub dead_letter_queue: Option<DeadLetters>,
    pub worker: Option<WorkerView>,
    /// Vehicles with an alert or a POSITIVE prediction within `recent`
    /// (every vehicle with `--all`).
    pub vehicles: Vec<Vehicle>,
    /// Vehicles with a status record.
    pub vehicles_known: u64,
    pub recent_seconds: u64,
}

/// `fleetwatch status`: the AWS environment's clients, printing to stdout.
pub async fn command(settings: &StatusSettings) -> Result<(), StatusError> {
    let clients = crate::aws::Clients::new(&crate::aws::load().await, false);
    let mut stdout = std::io::stdout().lock();
    run(&clients.sqs, &clients.dynamodb, settings, &mut stdout).await
}

/// Runs the command, printing to `out`.
pub async fn run(
    sqs: &aws_sdk_sqs::Client,
    dynamodb: &aws_sdk_dynamodb::Client,
    settings: &StatusSettings,
    out: &mut impl Write,
) -> Result<(), StatusError> {
    let status = gather(sqs, dynamodb, settings).await?;
    out.write_all(render(&status, settings.format).as_bytes())?;
    Ok(())
}

pub async fn gather(
    sqs: &aws_sdk_sqs::Client,
    dynamodb: &aws_sdk_dynamodb::Client,
    settings: &StatusSettings,
) -> Result<Status, StatusError> {
    let resource = format!("queue {} (FLEETWATCH_QUEUE_URL)", settings.queue.url);
    let (queue, attributes) = counts(sqs, &settings.queue.url, &resource).await?;
    let policy = attributes
        .get(&QueueAttributeName::RedrivePolicy)
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok());
    let dead_letter_queue = match policy {
        Some(policy) => Some(dead_letters(sqs, &policy).await?),
        None => None,
    };
    let worker = match &settings.metrics_url {
        Some(url) => Some(worker_view(url).await),
        None => None,
    };
    let records = output::query(
        dynamodb,
        &KeyRange {
            table: &settings.table.name,
            partition: PARTITION,
            from: None,
            to: None,
            descending: false,
            limit: None,
        },
    )
    .await?;
    let now = crate::telemetry::Timestamp::now().unix_millis();
    let since = crate::telemetry::Timestamp::from_unix_millis(
        now.saturating_sub(settings.recent.as_millis().min(i64::MAX as u128) as i64),
    )
    .to_rfc3339_millis();
    let recent = |item: &Item, name: &str| output::string(item, name).is_some_and(|t| *t >= *since);
    let vehicles_known = records.len() as u64;
    let vehicles = records
        .iter()
        .filter(|r| settings.all || recent(r, fs::LAST_POSITIVE_AT) || recent(r, fs::LAST_ALERT_AT))
        .map(vehicle)
        .collect();
    Ok(Status {
        queue,
        dead_letter_queue,
        worker,
        vehicles,
        vehicles_known,
        recent_seconds: settings.recent.as_secs(),
    })
}

fn vehicle(item: &Item) -> Vehicle {
    let s = |name: &str| output::string(item, name).map(str::to_owned);
    Vehicle {
        device_id: s(crate::storage::TIMESTAMP).unwrap_or_default(),
        last_reading_at: s(fs::LAST_READING_AT),
        last_reading: item
            .get(fs::LAST_READING)
            .map_or(serde_json::Value::Null, output::to_json),
        last_positive_at: s(fs::LAST_POSITIVE_AT),
        last_positive_score: output::number(item, fs::LAST_POSITIVE_SCORE),
        last_alert_at: s(fs::LAST_ALERT_AT),
        last_alert_rule: s(fs::LAST_ALERT_RULE),
        last_alert_kind: s(fs::LAST_ALERT_KIND),
        last_alert_value: s(fs::LAST_ALERT_VALUE),
    }
}

type Attributes = std::collections::HashMap<QueueAttributeName, String>;

async fn counts(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    resource: &str,
) -> Result<(QueueCounts, Attributes), PreflightError> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .map_err(|e| preflight::classify("sqs:GetQueueAttributes", resource, &e))?
        .attributes
        .unwrap_or_default();
    let n = |k: QueueAttributeName| attributes.get(&k).and_then(|v| v.parse().ok()).unwrap_or(0);
    let counts = QueueCounts {
        url: url.to_owned(),
        visible: n(QueueAttributeName::ApproximateNumberOfMessages),
        in_flight: n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        delayed: n(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
    };
    Ok((counts, attributes))
}

/// The dead-letter queue named by the main queue's redrive policy.
async fn dead_letters(
    sqs: &aws_sdk_sqs::Client,
    policy: &serde_json::Value,
) -> Result<DeadLetters, PreflightError> {
    let arn = policy["deadLetterTargetArn"].as_str().unwrap_or_default();
    let max_receive_count = match &policy["maxReceiveCount"] {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    };
    // arn:aws:sqs:<region>:<account>:<name>
    let parts: Vec<&str> = arn.split(':').collect();
    let (account, name) = match parts.as_slice() {
        [_, _, _, _, account, name] => (*account, *name),
        _ => {
            return Ok(DeadLetters {
                max_receive_count,
                note: Some(format!(
                    "the redrive policy names no dead-letter queue ARN ({arn:?})"
                )),
                ..DeadLetters::default()
            });
        }
    };
    let resource = format!("dead-letter queue {arn}");
    let url = sqs
        .get_queue_url()
        .queue_name(name)
        .queue_owner_aws_account_id(account)
        .send()
        .await
        .map_err(|e| preflight::classify("sqs:GetQueueUrl", &resource, &e))?
        .queue_url
        .unwrap_or_default();
    let (counts, attributes) = counts(sqs, &url, &resource).await?;
    let mut dlq = DeadLetters {
        counts,
        max_receive_count,
        ..DeadLetters::default()
    };
    if dlq.counts.visible == 0 {
        return Ok(dlq);
    }
    if attributes.contains_key(&QueueAttributeName::RedrivePolicy) {
        dlq.note = Some(
            "not peeked: the dead-letter queue has a redrive policy of its own, and a peek counts as a receive"
                .into(),
        );
        return Ok(dlq);
    }
    let mut oldest: Option<i64> = None;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..PEEK_ROUNDS {
        let messages = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .map_err(|e| preflight::classify("sqs:ReceiveMessage", &resource, &e))?
            .messages
            .unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for m in &messages {
            seen.insert(m.message_id().unwrap_or_default().to_owned());
            let sent = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                .and_then(|t| t.parse::<i64>().ok());
            if let Some(sent) = sent {
                oldest = Some(oldest.map_or(sent, |o| o.min(sent)));
            }
        }
        if seen.len() as u64 >= dlq.counts.visible {
            break;
        }
    }
    dlq.peeked = seen.len() as u64;
    let now = crate::telemetry::Timestamp::now().unix_millis();
    dlq.oldest_age_seconds = oldest.map(|o| (now.saturating_sub(o).max(0) / 1000) as u64);
    if dlq.peeked < dlq.counts.visible {
        dlq.note = Some(format!(
            "{} of {} messages seen: the oldest may be older",
            dlq.peeked, dlq.counts.visible
        ));
    }
    Ok(dlq)
}

/// The series of `/metrics` shown, summed over their labels.
const SHOWN_METRICS: &[&str] = &[
    crate::metrics::SQS_MESSAGES_RECEIVED,
    crate::metrics::SQS_MESSAGES_DELETED,
    crate::metrics::SQS_MESSAGES_FAILED,
    crate::metrics::MESSAGES_IN_FLIGHT,
    crate::metrics::MESSAGES_WAITING,
    crate::metrics::MESSAGES_PARKED,
    crate::metrics::DEPENDENCY_FAILING,
    crate::metrics::OBJECTS_PROCESSED,
    crate::metrics::RECORDS,
    crate::metrics::RECORDS_REJECTED,
    crate::metrics::ALERTS_PUBLISHED,
];

async fn worker_view(url: &str) -> WorkerView {
    let ready = match get(&format!("{url}/readyz")).await {
        Ok((200, _)) => "ready".to_owned(),
        Ok((code, body)) => format!("not ready ({code}): {}", body.trim()),
        Err(e) => format!("unreachable: {e}"),
    };
    let mut metrics = BTreeMap::new();
    if let Ok((200, text)) = get(&format!("{url}/metrics")).await {
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let name = series.split('{').next().unwrap_or_default();
            if SHOWN_METRICS.contains(&name)
                && let Ok(v) = value.parse::<f64>()
            {
                *metrics.entry(name.to_owned()).or_insert(0.0) += v;
            }
        }
    }
    WorkerView {
        url: url.to_owned(),
        ready,
        metrics,
    }
}

/// A plain HTTP/1.0 GET (the worker's metrics server speaks plain HTTP):
/// the status code and the body.
async fn get(url: &str) -> Result<(u16, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// metrics URLs are supported")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(authority).await?;
        let request =
            format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        (&mut stream)
            .take(16 * 1024 * 1024)
            .read_to_end(&mut response)
            .await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(HTTP_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no answer within {HTTP_TIMEOUT:?}"))?
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer from {url}"))?;
    Ok((code, body.to_owned()))
}

/// `engine_temp_c=120 rpm=1500 …`: the latest reading's known numbers.
fn reading_summary(reading: &serde_json::Value) -> String {
    NUMERIC_FIELDS
        .iter()
        .filter_map(|f| Some(format!("{f}={}", reading.get(*f)?)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn vehicle_rows(status: &Status) -> (Vec<String>, Vec<Vec<String>>) {
    let header = [
        "device",
        "last_reading_at",
        "prediction",
        "last_positive_at",
        "score",
        "last_alert_at",
        "alert",
        "value",
        "latest_reading",
    ]
    .map(String::from)
    .to_vec();
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    let rows = status
        .vehicles
        .iter()
        .map(|v| {
            let p = &v.last_reading["prediction"];
            let prediction = match (p["label"].as_str(), p["score"].as_f64()) {
                (Some(l), Some(s)) => format!("{l} {s}"),
                (Some(l), None) => l.to_owned(),
                _ => String::new(),
            };
            vec![
                v.device_id.clone(),
                o(&v.last_reading_at),
                prediction,
                o(&v.last_positive_at),
                v.last_positive_score
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                o(&v.last_alert_at),
                o(&v.last_alert_rule),
                o(&v.last_alert_value),
                reading_summary(&v.last_reading),
            ]
        })
        .collect();
    (header, rows)
}

pub fn render(status: &Status, format: OutputFormat) -> String {
    match format {
        OutputFormat::Json => serde_json::to_string(status).unwrap_or_default() + "\n",
        OutputFormat::Csv => {
            let (header, rows) = vehicle_rows(status);
            output::csv(&header, &rows)
        }
        OutputFormat::Table => {
            let q = &status.queue;
            let mut out = format!(
                "queue {}\n  visible {}, in flight {}, delayed {}\n",
                q.url, q.visible, q.in_flight, q.delayed
            );
            match &status.dead_letter_queue {
                None => out.push_str("dead-letter queue: none (the queue has no redrive policy)\n"),
                Some(d) => {
                    out.push_str(&format!(
                        "dead-letter queue {} (after {} receives)\n  depth {} (in flight {}, delayed {}), oldest message {}\n",
                        d.counts.url,
                        d.max_receive_count.map_or("?".into(), |n| n.to_string()),
                        d.counts.visible,
                        d.counts.in_flight,
                        d.counts.delayed,
                        d.oldest_age_seconds.map_or("-".into(), age),
                    ));
                    if let Some(note) = &d.note {
                        out.push_str(&format!("  ({note})\n"));
                    }
                }
            }
            if let Some(w) = &status.worker {
                out.push_str(&format!("worker {}\n  {}\n", w.url, w.ready));
                for (name, value) in &w.metrics {
                    out.push_str(&format!("  {name} {value}\n"));
                }
            }
            out.push_str(&format!(
                "vehicles: {} of {} with an alert or a POSITIVE prediction in the last {}\n",
                status.vehicles.len(),
                status.vehicles_known,
                age(status.recent_seconds)
            ));
            if !status.vehicles.is_empty() {
                let (header, rows) = vehicle_rows(status);
                out.push_str(&output::table(&header, &rows));
            }
            out
        }
    }
}

/// `3h 12m`, `45s`.
fn age(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_well() {
        assert_eq!(age(45), "45s");
        assert_eq!(age(125), "2m 5s");
        assert_eq!(age(3 * 3600 + 720), "3h 12m");
        assert_eq!(age(86_400 * 2 + 3600), "2d 1h");
    }
}
