//! What reaches the readings table, against the emulator: attributes input
//! cannot set (the TTL's `expires_at` above all), the reading TTL, readings
//! under a key already used in the object (item 10 of issue 8), and readings
//! DynamoDB can never take (rejected one by one, the rest of the object
//! stored). The splitting of a refused batch down to the item at fault is
//! also checked with `aws-smithy-mocks`, which counts the calls.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::ErrorMetadata;
use aws_sdk_dynamodb::operation::batch_write_item::{BatchWriteItemError, BatchWriteItemOutput};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use common::{Moto, Stack, m, metric, n, wait_for};
use fleetwatch::failure::{Classify, FailureClass};
use fleetwatch::metrics as mx;
use fleetwatch::pipeline::CHUNK_READINGS;
use fleetwatch::storage::{ItemRejectReason, ReadingStore, StoreError};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(120);

/// An in-process worker with alerts and a quarantine.
struct Running {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("worker stops in time")
            .expect("worker task did not panic");
    }
}

fn start(stack: &Stack, ttl: Option<&str>, max_line_bytes: usize) -> Running {
    common::install_metrics();
    let max_line_bytes = max_line_bytes.to_string();
    let mut args = vec![
        "--alert-topic-arn",
        stack.resources.topic_arn.as_str(),
        "--maintenance-alert-score",
        "off",
        "--max-line-bytes",
        max_line_bytes.as_str(),
        "--max-records",
        "1000000",
        "--quarantine-prefix",
        "quarantine/",
        "--concurrency",
        "4",
        "--visibility-timeout",
        "30s",
        "--shutdown-grace",
        "5s",
    ];
    if let Some(ttl) = ttl {
        args.extend(["--reading-ttl", ttl]);
    }
    let settings = common::worker_settings(stack, &args);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(
        common::build_worker(&settings, &stack.clients)
            .into_worker(Default::default())
            .run(shutdown.clone()),
    );
    Running { shutdown, task }
}

/// Waits until `count` objects were processed to their end and every
/// message is gone from the queue (deleted, not dead-lettered).
async fn wait_processed(stack: &Stack, count: f64) {
    wait_for(&format!("{count} objects processed"), WAIT, || async {
        let done = metric(mx::OBJECTS_PROCESSED, &[("outcome", "ok")]) >= count;
        (done && stack.queue_depth().await == (0, 0)).then_some(())
    })
    .await;
    let dead = common::queue_depth(&stack.clients, &stack.resources.dead_letter_queue_url).await;
    assert_eq!(dead, (0, 0), "nothing was dead-lettered");
}

async fn quarantine(stack: &Stack, key: &str) -> Vec<serde_json::Value> {
    let body = stack
        .clients
        .s3
        .get_object()
        .bucket(&stack.resources.bucket)
        .key(format!("quarantine/{key}.rejected.jsonl"))
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    String::from_utf8(body.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn rejected(reason: &str) -> f64 {
    metric(mx::RECORDS_REJECTED, &[("reason", reason)])
}

fn records(outcome: &str) -> f64 {
    metric(mx::RECORDS, &[("outcome", outcome)])
}

const EXPIRING: &str = "{\"device_id\":\"TTL1\",\"timestamp\":\"2025-10-19T22:47:00Z\",\"engine_temp_c\":90,\"expires_at\":1}\n\
                        {\"device_id\":\"TTL1\",\"timestamp\":\"2025-10-19T22:48:00.250Z\",\"engine_temp_c\":91}\n";

/// An input `expires_at` (here 1, which would have DynamoDB delete the
/// reading at once) is kept as `expires_at_input`; without a TTL no reading
/// carries a top-level `expires_at`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_cannot_set_the_ttl_attribute_and_readings_never_expire_without_a_ttl() {
    let moto = Moto::start();
    let stack = Stack::create(&moto).await;
    let worker = start(&stack, None, 64 * 1024);
    stack.put_object("in/expiring.jsonl", EXPIRING).await;
    wait_processed(&stack, 1.0).await;
    let items = stack.items().await;
    assert_eq!(items.len(), 2);
    let first = &items[&("TTL1".into(), "2025-10-19T22:47:00.000Z".into())];
    assert_eq!(n(first, "expires_at_input"), "1");
    for item in items.values() {
        assert!(!item.contains_key("expires_at"), "{item:?}");
    }
    worker.stop().await;
}

/// With `FLEETWATCH_READING_TTL=400d`, every reading expires 400 days
/// after its own timestamp (epoch seconds), the input's `expires_at`
/// notwithstanding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_ttl_every_reading_expires_after_its_own_timestamp() {
    let moto = Moto::start();
    let stack = Stack::create(&moto).await;
    let worker = start(&stack, Some("400d"), 64 * 1024);
    stack.put_object("in/expiring.jsonl", EXPIRING).await;
    wait_processed(&stack, 1.0).await;
    let items = stack.items().await;
    let first = &items[&("TTL1".into(), "2025-10-19T22:47:00.000Z".into())];
    let second = &items[&("TTL1".into(), "2025-10-19T22:48:00.250Z".into())];
    let days_400 = 400 * 86_400;
    assert_eq!(
        n(first, "expires_at"),
        (1_760_914_020 + days_400).to_string()
    );
    assert_eq!(n(first, "expires_at_input"), "1");
    assert_eq!(
        n(second, "expires_at"),
        (1_760_914_080 + days_400).to_string()
    );
    worker.stop().await;
}

fn original_line(device: &str, minute: &str, temp: u32) -> String {
    format!(
        "device_id {device} reported at timestamp 19-10-2025 22:{minute} with speed_kmph 73, engine_temp_c {temp}, and status ok.\n"
    )
}

/// Two different readings 30 s apart fall in the same minute of the
/// original format: the first is stored, the second rejected
/// (`duplicate_key`, with its line and the line kept); an exact repeat is a
/// duplicate, not a second stored reading; and this holds when the lines
/// are more than a chunk apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_different_reading_under_a_key_already_used_is_rejected() {
    let moto = Moto::start();
    let stack = Stack::create(&moto).await;
    let worker = start(&stack, None, 64 * 1024);

    let mut text = String::new();
    text.push_str(&original_line("VHC001", "47", 90)); // line 1: kept
    text.push_str(&original_line("VHC001", "47", 130)); // line 2: 30 s later, same minute
    text.push_str(&original_line("VHC001", "47", 90)); // line 3: exact repeat of line 1
    // Filler of other devices, so the next lines are chunks away.
    let filler = CHUNK_READINGS + 500;
    for i in 0..filler {
        let minute = format!("{:02}", i % 60);
        text.push_str(&original_line(&format!("FILL{}", i / 60), &minute, 80));
    }
    let far = filler + 4;
    text.push_str(&original_line("VHC001", "47", 99)); // `far`: different, > 1000 lines on
    text.push_str(&original_line("VHC001", "47", 90)); // `far + 1`: exact repeat
    let lines = far + 1;
    stack.put_object("in/minutes.txt", text).await;
    wait_processed(&stack, 1.0).await;

    let items = stack.items().await;
    let kept = &items[&("VHC001".into(), "2025-10-19T22:47:00.000Z".into())];
    assert_eq!(
        n(kept, "engine_temp_c"),
        "90",
        "the first reading of a key wins"
    );
    assert_eq!(n(m(kept, "source"), "line"), "1");
    assert_eq!(items.len(), 1 + filler);
    assert_eq!(rejected(ItemRejectReason::DuplicateKey.as_str()), 2.0);
    assert_eq!(records("duplicate"), 2.0);
    assert_eq!(records("stored"), (1 + filler) as f64);
    assert_eq!(
        records("stored") + records("duplicate") + records("rejected"),
        lines as f64,
        "every line is accounted for"
    );
    let q = quarantine(&stack, "in/minutes.txt").await;
    let lines_rejected: Vec<u64> = q.iter().map(|r| r["line"].as_u64().unwrap()).collect();
    assert_eq!(lines_rejected, [2, far as u64]);
    for r in &q {
        assert_eq!(r["reason"], "duplicate_key");
        assert!(r["detail"].as_str().unwrap().contains("line 1"), "{r}");
        assert!(r["text"].as_str().unwrap().contains("VHC001"), "{r}");
    }
    // The rejected hot reading (line 2, 130) raises no alert: the kept
    // reading (90) is below the rule.
    let alerts = stack.drain_alerts().await;
    assert!(
        alerts.iter().all(|a| a["device_id"] != "VHC001"),
        "{alerts:?}"
    );
    worker.stop().await;
}

fn json_line(device: &str, i: usize, temp: u32, extra: &str) -> String {
    format!(
        "{{\"device_id\":\"{device}\",\"timestamp\":{},\"engine_temp_c\":{temp}{extra}}}\n",
        1_760_000_000 + i * 60
    )
}

/// A reading over DynamoDB's 400 KB limit is rejected before writing
/// (`item_too_large`); one the emulator still refuses (it counts sizes its
/// own way, with a lower limit) is found by splitting its batch and
/// rejected alone (`dynamodb_rejected`, with DynamoDB's message). Neither
/// fails the object: the other readings, in the same batches, are stored,
/// the message is deleted, and the refused hot readings raise no alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_dynamodb_refuses_are_rejected_and_the_rest_is_stored() {
    let moto = Moto::start();
    let stack = Stack::create(&moto).await;
    let worker = start(&stack, None, 1024 * 1024);

    let mut text = String::new();
    for i in 0..20 {
        text.push_str(&json_line("OK1", i, 90, ""));
    }
    // Line 21: 420 KB, over DynamoDB's limit however it is counted.
    let huge = format!(",\"blob\":\"{}\"", "x".repeat(420 * 1024));
    text.push_str(&json_line("HUGE", 0, 130, &huge));
    for i in 0..10 {
        text.push_str(&json_line("OK2", i, 120, ""));
    }
    // Line 32: under 400 KB as DynamoDB counts, over the emulator's 405,000.
    let big = format!(",\"blob\":\"{}\"", "y".repeat(406_000));
    text.push_str(&json_line("BIG", 0, 130, &big));
    for i in 10..20 {
        text.push_str(&json_line("OK2", i, 90, ""));
    }
    stack.put_object("in/large.jsonl", text).await;
    wait_processed(&stack, 1.0).await;

    let items = stack.items().await;
    let count = |device: &str| items.keys().filter(|(d, _)| d == device).count();
    assert_eq!(count("OK1"), 20);
    assert_eq!(count("OK2"), 20);
    assert_eq!(count("HUGE"), 0);
    assert_eq!(count("BIG"), 0);
    assert_eq!(rejected("item_too_large"), 1.0);
    assert_eq!(rejected("dynamodb_rejected"), 1.0);
    assert_eq!(records("stored"), 40.0);
    let q = quarantine(&stack, "in/large.jsonl").await;
    assert_eq!(q.len(), 2, "{q:?}");
    assert_eq!(q[0]["line"], 21);
    assert_eq!(q[0]["reason"], "item_too_large");
    assert_eq!(q[1]["line"], 32);
    assert_eq!(q[1]["reason"], "dynamodb_rejected");
    assert!(
        q[1]["detail"]
            .as_str()
            .unwrap()
            .contains("ValidationException"),
        "{}",
        q[1]
    );
    let alerts = wait_for("OK2's alert", WAIT, || async {
        let alerts = stack.drain_alerts().await;
        (!alerts.is_empty()).then_some(alerts)
    })
    .await;
    // One alert per cooldown window OK2 was hot in; none for the others.
    let devices: std::collections::BTreeSet<&str> = alerts
        .iter()
        .map(|a| a["device_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        devices,
        ["OK2"].into(),
        "no alert for a reading not in the table"
    );
    worker.stop().await;
}

const TABLE: &str = "readings";

fn items(devices: &[&str]) -> Vec<HashMap<String, AttributeValue>> {
    devices
        .iter()
        .enumerate()
        .map(|(i, d)| {
            HashMap::from([
                ("device_id".to_owned(), AttributeValue::S((*d).into())),
                (
                    "timestamp".to_owned(),
                    AttributeValue::S(format!("2025-10-19T22:{:02}:00.000Z", i % 60)),
                ),
            ])
        })
        .collect()
}

fn names_bad(r: &aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemInput) -> bool {
    r.request_items()
        .and_then(|i| i.get(TABLE))
        .is_some_and(|writes| {
            writes.iter().any(|w| {
                w.put_request()
                    .and_then(|p| p.item().get("device_id"))
                    .is_some_and(|v| v == &AttributeValue::S("BAD".into()))
            })
        })
}

fn validation(message: &'static str) -> BatchWriteItemError {
    BatchWriteItemError::generic(
        ErrorMetadata::builder()
            .code("ValidationException")
            .message(message)
            .build(),
    )
}

/// A batch DynamoDB refuses as invalid is split in halves down to the item
/// at fault; only that item is rejected, every other one is written.
#[tokio::test(start_paused = true)]
async fn a_refused_batch_is_split_down_to_the_item_at_fault() {
    let refuse = mock!(aws_sdk_dynamodb::Client::batch_write_item)
        .match_requests(names_bad)
        .then_error(|| validation("Item size has exceeded the maximum allowed size"));
    let accept = mock!(aws_sdk_dynamodb::Client::batch_write_item)
        .then_output(|| BatchWriteItemOutput::builder().build());
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&refuse, &accept]);
    let store = ReadingStore::new(client, TABLE.into(), 2);
    let mut devices = vec!["OK"; 60];
    devices[37] = "BAD";
    let report = store.write(&items(&devices)).await.unwrap();
    assert_eq!(report.written, 59);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].index, 37);
    assert_eq!(
        report.rejected[0].reason,
        ItemRejectReason::DynamodbRejected
    );
    assert!(
        report.rejected[0].detail.contains("Item size has exceeded"),
        "{:?}",
        report.rejected[0]
    );
    // Batch 25..50 holds it: 25 → 13 → 6 → 3 → 1, each refused.
    assert_eq!(refuse.num_calls(), 5);
    // The two other batches, plus the halves without it (12, 7, 3, 2).
    assert_eq!(accept.num_calls(), 2 + 4);
}

/// A refusal over the keys means the table does not match, not that the
/// reading is bad: the write fails (retryable) instead of rejecting every
/// reading.
#[tokio::test(start_paused = true)]
async fn a_key_schema_mismatch_fails_the_write_instead_of_rejecting_readings() {
    let refuse = mock!(aws_sdk_dynamodb::Client::batch_write_item)
        .then_error(|| validation("The provided key element does not match the schema"));
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&refuse]);
    let store = ReadingStore::new(client, TABLE.into(), 1);
    let err = store.write(&items(&["A", "B", "C"])).await.unwrap_err();
    assert!(matches!(err, StoreError::TableRefused { .. }), "{err}");
    assert!(err.class().is_retryable(), "{err}");
}

/// Throttling is not a refusal: the write fails, retryable, nothing is
/// rejected and the batch is not split.
#[tokio::test(start_paused = true)]
async fn throttling_is_returned_not_rejected() {
    let whole = |r: &aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemInput| {
        r.request_items()
            .and_then(|i| i.get(TABLE))
            .is_some_and(|w| w.len() == 2)
    };
    let throttled = mock!(aws_sdk_dynamodb::Client::batch_write_item)
        .match_requests(whole)
        .then_error(|| {
            BatchWriteItemError::generic(
                ErrorMetadata::builder()
                    .code("ProvisionedThroughputExceededException")
                    .message("slow down")
                    .build(),
            )
        });
    let split = mock!(aws_sdk_dynamodb::Client::batch_write_item)
        .then_output(|| BatchWriteItemOutput::builder().build());
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&throttled, &split]);
    let store = ReadingStore::new(client, TABLE.into(), 1);
    let err = store.write(&items(&["A", "B"])).await.unwrap_err();
    assert_eq!(err.class(), FailureClass::Throttled, "{err}");
    assert!(throttled.num_calls() >= 1);
    assert_eq!(split.num_calls(), 0, "not split");
}
