//! The worker end to end, in-process, against a real AWS emulator:
//! notification → S3 → parse → predict → DynamoDB → SNS, and the SQS
//! message's fate (deleted, ignored, or left for redelivery).

mod common;

use std::time::Duration;

use common::{Moto, Stack, gzip, m, n, s, wait_for};
use fleetwatch::app::WorkerBuild;
use fleetwatch::config::WorkerSettings;
use tokio_util::sync::CancellationToken;

const FLEET_DATA: &[u8] = include_bytes!("data/fleet_data.txt");
const WAIT: Duration = Duration::from_secs(60);

struct RunningWorker {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    health: fleetwatch::health::Health,
}

impl RunningWorker {
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("worker stops in time")
            .expect("worker task did not panic");
    }
}

/// The settings every worker of this file runs with, as the binary parses
/// them: alerts to the stack's topic, a 30 s lease, four at a time, `args`
/// on top (`--table`, `--inference`).
fn settings(stack: &Stack, args: &[&str]) -> WorkerSettings {
    let mut all = vec![
        "--alert-topic-arn",
        stack.resources.topic_arn.as_str(),
        "--visibility-timeout",
        "30s",
        "--concurrency",
        "4",
        "--shutdown-grace",
        "5s",
        "--max-records",
        "1000000",
    ];
    all.extend(args);
    common::worker_settings(stack, &all)
}

fn start(built: WorkerBuild) -> RunningWorker {
    common::install_metrics();
    let health = fleetwatch::health::Health::default();
    let worker = built.into_worker(health.clone());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(worker.run(shutdown.clone()));
    RunningWorker {
        shutdown,
        task,
        health,
    }
}

fn start_default(stack: &Stack) -> RunningWorker {
    start(common::build_worker(&settings(stack, &[]), &stack.clients))
}

/// Waits until the queue holds nothing, visible or in flight: every
/// message was deleted.
async fn wait_queue_empty(stack: &Stack) {
    wait_for("the queue to be empty", WAIT, || async {
        (stack.queue_depth().await == (0, 0)).then_some(())
    })
    .await;
}

async fn wait_items(
    stack: &Stack,
    count: usize,
) -> std::collections::HashMap<(String, String), common::Item> {
    wait_for(&format!("{count} items"), WAIT, || async {
        let items = stack.items().await;
        (items.len() >= count).then_some(items)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn original_scenario_two_readings_two_alerts() {
    let moto = Moto::start();
    let stack = Stack::create(&moto).await;
    let worker = start_default(&stack);

    // A key with a space arrives URL-encoded (`+`) in the notification.
    stack
        .put_object("uploads/fleet data 2025-10-19.txt", FLEET_DATA)
        .await;

    let items = wait_items(&stack, 2).await;
    wait_queue_empty(&stack).await;
    assert_eq!(items.len(), 2);
    let vhc2 = &items[&("VHC002".to_owned(), "2025-10-19T22:47:00.000Z".to_owned())];
    assert_eq!(n(vhc2, "engine_temp_c"), "124");
    assert_eq!(n(vhc2, "speed_kmph"), "83");
    assert_eq!(n(vhc2, "gps_latitude"), "12.398542");
    assert_eq!(s(vhc2, "status"), "maintenance_required");
    assert!(
        !vhc2.contains_key("rpm"),
        "absent fields stay absent, never 0"
    );
    let prediction = m(vhc2, "prediction");
    assert!(["POSITIVE", "NEGATIVE"].contains(&s(prediction, "label").as_str()));
    assert_eq!(s(prediction, "model"), "fleetwatch-xgb-v1");
    let score: f64 = n(prediction, "score").parse().unwrap();
    assert!((0.0..=1.0).contains(&score));
    let source = m(vhc2, "source");
    assert_eq!(s(source, "key"), "uploads/fleet data 2025-10-19.txt");
    assert_eq!(n(source, "line"), "3");
    let vhc1 = &items[&("VHC001".to_owned(), "2025-10-19T22:47:00.000Z".to_owned())];
    assert_eq!(n(vhc1, "engine_temp_c"), "102");
    assert_eq!(n(m(vhc1, "source"), "line"), "1");

    let alerts = wait_for("the alerts", WAIT, || async {
        let a = stack.drain_alerts().await;
        (!a.is_empty()).then_some(a)
    })
    .await;
    let mut safety: Vec<&serde_json::Value> =
        alerts.iter().filter(|a| a["kind"] == "safety").collect();
    safety.sort_by_key(|a| a["device_id"].as_str().map(str::to_owned));
    assert_eq!(safety.len(), 2, "{alerts:#?}");
    assert_eq!(safety[0]["device_id"], "VHC001");
    assert_eq!(safety[1]["device_id"], "VHC002");
    assert_eq!(safety[1]["worst_value"], "124");
    assert_eq!(safety[1]["rule"], "engine_temp_c > 100");
    assert_eq!(
        safety[1]["_subject"],
        "Fleet alert: VHC002 engine_temp_c 124 > 100"
    );
    assert_eq!(safety[1]["_attributes"]["device_id"]["Value"], "VHC002");
    assert_eq!(safety[1]["_attributes"]["severity"]["Value"], "critical");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_gzip_crlf_and_bom() {
    let moto = Moto::start();
    let stack = Stack::create(&moto).await;
    let worker = start_default(&stack);

    let jsonl = "{\"device_id\":\"J1\",\"timestamp\":\"2025-11-15T10:00:00Z\",\"engine_temp_c\":91.5,\"rpm\":2100,\"note\":\"ok\"}\n\
                 {\"device_id\":\"J1\",\"timestamp\":1763201100,\"engine_temp_c\":-1.5e1}\n";
    let csv = "\u{feff}device_id,timestamp,engine_temp_c,oil_pressure_kpa\r\nC1,2025-11-15 10:00,88,310\r\nC1,2025-11-15 10:01:30,,305\r\n";
    let kv = "device_id:K1, timestamp:2025-11-15T10:00:00.250+02:00, engine_temp_c:124.0\n";
    stack.put_object("formats/readings.jsonl", jsonl).await;
    stack.put_object("formats/readings.csv", csv).await;
    stack.put_object("formats/pairs.txt", kv).await;
    // Gzip by magic bytes, with and without the suffix.
    stack
        .put_object("formats/compressed.txt.gz", gzip(FLEET_DATA))
        .await;
    stack
        .put_object(
            "formats/compressed-no-suffix",
            gzip(b"device_id:Z1, timestamp:0, rpm:1\n"),
        )
        .await;

    let items = wait_items(&stack, 8).await;
    wait_queue_empty(&stack).await;
    let get = |d: &str, t: &str| &items[&(d.to_owned(), t.to_owned())];
    let j = get("J1", "2025-11-15T10:00:00.000Z");
    assert_eq!(n(j, "engine_temp_c"), "91.5");
    assert_eq!(n(j, "rpm"), "2100");
    assert_eq!(s(j, "note"), "ok");
    // Stored as written: no float round trip.
    assert_eq!(
        n(get("J1", "2025-11-15T10:05:00.000Z"), "engine_temp_c"),
        "-1.5e1"
    );
    assert_eq!(
        n(get("C1", "2025-11-15T10:00:00.000Z"), "oil_pressure_kpa"),
        "310"
    );
    let c2 = get("C1", "2025-11-15T10:01:30.000Z");
    assert!(
        !c2.contains_key("engine_temp_c"),
        "an empty CSV cell is an absent field"
    );
    assert_eq!(
        n(get("K1", "2025-11-15T08:00:00.250Z"), "engine_temp_c"),
        "124.0"
    );
    assert!(items.contains_key(&("VHC001".to_owned(), "2025-10-19T22:47:00.000Z".to_owned())));
    assert_eq!(n(get("Z1", "1970-01-01T00:00:00.000Z"), "rpm"), "1");
    assert_eq!(items.len(), 8);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_shapes_and_encoded_keys() {
    let moto = Moto::start();
    let stack = Stack::create(&moto).await;
    let bucket = stack.raw_bucket.clone();
    let line =
        |d: &str| format!("device_id:{d}, timestamp:2025-11-15T10:00:00Z, engine_temp_c:90\n");
    stack
        .put_object_in(&bucket, "plain/a b+c.txt", line("P1"))
        .await;
    stack
        .put_object_in(&bucket, "multi/one.txt", line("M1"))
        .await;
    stack
        .put_object_in(&bucket, "multi/two.txt", line("M2"))
        .await;
    stack
        .put_object_in(&bucket, "sns/wrapped.txt", line("S1"))
        .await;
    stack
        .put_object_in(&bucket, "eventbridge/é.txt", line("E1"))
        .await;

    stack.notify_raw(&["plain/a b+c.txt"]).await;
    stack.notify_raw(&["multi/one.txt", "multi/two.txt"]).await;
    let inner = common::s3_event(&bucket, &["sns/wrapped.txt"]);
    stack
        .send(serde_json::json!({"Type": "Notification", "MessageId": "1", "TopicArn": "arn:aws:sns:us-east-1:123456789012:t", "Message": inner}).to_string())
        .await;
    stack
        .send(
            serde_json::json!({
                "version": "0", "id": "x", "detail-type": "Object Created", "source": "aws.s3",
                "detail": {"bucket": {"name": bucket}, "object": {"key": common::url_encode("eventbridge/é.txt"), "size": 10}}
            })
            .to_string(),
        )
        .await;

    let worker = start_default(&stack);
    let items = wait_items(&stack, 5).await;
    wait_queue_empty(&stack).await;
    for d in ["P1", "M1", "M2", "S1", "E1"] {
        assert!(
            items.contains_key(&(d.to_owned(), "2025-11-15T10:00:00.000Z".to_owned())),
            "{d} missing"
        );
    }
    let p1 = &items[&("P1".to_owned(), "2025-11-15T10:00:00.000Z".to_owned())];
    assert_eq!(s(m(p1, "source"), "key"), "plain/a b+c.txt");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_lines_missing_objects_and_non_notifications() {
    let moto = Moto::start();
    let stack = Stack::create(&moto).await;
    let worker = start_default(&stack);

    let mixed = "device_id:G1, timestamp:2025-11-15T10:00:00Z, engine_temp_c:80\n\
                 this is not a reading\n\
                 device_id:G1, timestamp:31-02-2025 10:00, engine_temp_c:80\n\
                 device_id:bad id!, timestamp:2025-11-15T10:00:00Z\n\
                 device_id:G1, timestamp:2025-11-15T10:02:00Z, engine_temp_c:NaN\n\
                 device_id:G1, timestamp:2025-11-15T10:03:00Z, engine_temp_c:hot\n\
                 \n\
                 device_id:G1, timestamp:2025-11-15T10:04:00Z, engine_temp_c:81\n";
    stack.put_object("mixed.txt", mixed).await;
    stack.notify_raw(&["does/not/exist.txt"]).await;
    stack
        .send(r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"fleet-telemetry"}"#)
        .await;
    stack.send("this is not json").await;
    stack
        .send(r#"{"Records":[{"eventSource":"aws:s3","eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}"#)
        .await;

    let items = wait_items(&stack, 2).await;
    wait_queue_empty(&stack).await;
    assert_eq!(items.len(), 2, "only the two good lines are stored");
    assert!(items.contains_key(&("G1".to_owned(), "2025-11-15T10:00:00.000Z".to_owned())));
    let last = &items[&("G1".to_owned(), "2025-11-15T10:04:00.000Z".to_owned())];
    assert_eq!(n(m(last, "source"), "line"), "8");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_write_holds_the_message_until_it_succeeds() {
    let moto = Moto::start();
    let stack = Stack::create(&moto).await;
    // The worker writes to a table that does not exist yet: every attempt
    // fails, for every message. The message is held and its write retried
    // in place, so its receive count does not grow towards the DLQ.
    let worker = start(common::build_worker(
        &settings(&stack, &["--table", "late-table"]),
        &stack.clients,
    ));
    stack.put_object("fleet.txt", FLEET_DATA).await;

    wait_for("the write to be retried twice", WAIT, || async {
        (common::metric(
            fleetwatch::metrics::STEP_RETRIES,
            &[("dependency", "dynamodb"), ("class", "transient")],
        ) >= 2.0)
            .then_some(())
    })
    .await;
    assert_eq!(
        stack.queue_depth().await,
        (0, 1),
        "the message is held in flight while its work fails"
    );
    assert_eq!(
        common::metric(
            fleetwatch::metrics::SQS_MESSAGES_FAILED,
            &[("reason", "dynamodb")]
        ),
        0.0,
        "it was not left for redelivery"
    );
    let readiness = worker.health.readiness().unwrap_err();
    assert!(readiness.contains("dynamodb"), "{readiness}");
    assert!(stack.items().await.is_empty());

    // The table appears: the next delivery succeeds and the message goes.
    let mut settings = common::bootstrap_settings();
    settings.table = "late-table".into();
    fleetwatch::bootstrap::run(&stack.clients, common::REGION, &settings)
        .await
        .unwrap();
    wait_for("the late table to be written", WAIT, || async {
        let scan = common::patient(&stack.clients.dynamodb)
            .scan()
            .table_name("late-table")
            .send()
            .await
            .unwrap();
        let readings = scan
            .items()
            .iter()
            .filter(|item| {
                let device = s(item, "device_id");
                !device.starts_with("alert#") && !device.starts_with("fleet#")
            })
            .count();
        (readings == 2).then_some(())
    })
    .await;
    wait_queue_empty(&stack).await;
    assert_eq!(worker.health.readiness(), Ok(()), "recovered by itself");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_object_keeps_its_message_invisible() {
    let moto = Moto::start();
    let stack = Stack::create(&moto).await;
    common::install_metrics();
    // A 2 s visibility timeout, far shorter than the object takes: without
    // the heartbeat the message would be handed out again mid-way. (Below
    // what FLEETWATCH_VISIBILITY_TIMEOUT accepts, so set on the built loop.)
    let mut built =
        common::build_worker(&settings(&stack, &["--inference", "none"]), &stack.clients);
    built.loop_settings.visibility_timeout = Duration::from_secs(2);
    let worker = built.into_worker(Default::default());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(worker.run(shutdown.clone()));

    let body: String = (0..3000)
        .map(|i| {
            format!(
                "{{\"device_id\":\"LONG{}\",\"timestamp\":{},\"rpm\":900}}\n",
                i % 5,
                1_760_000_000 + i
            )
        })
        .collect();
    stack.put_object("incoming/long.jsonl", body).await;
    wait_items(&stack, 3000).await;
    wait_queue_empty(&stack).await;

    let extensions = common::metric(fleetwatch::metrics::SQS_VISIBILITY_EXTENSIONS, &[]);
    assert!(
        extensions >= 1.0,
        "the heartbeat extended the visibility ({extensions})"
    );
    let objects = common::metric(fleetwatch::metrics::OBJECTS_PROCESSED, &[("outcome", "ok")]);
    assert_eq!(
        objects, 1.0,
        "the object was processed once, never handed out again"
    );
    shutdown.cancel();
    task.await.unwrap();
}

/// Messages that finish together are deleted with one `DeleteMessageBatch`;
/// an entry SQS refuses (here a receipt it never issued) fails alone: the
/// others are deleted, and the message whose receipt was not given stays
/// in flight, to be redelivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_delete_reports_each_message_on_its_own() {
    let moto = Moto::start();
    let sqs = moto.clients().await.sqs;
    let url = sqs
        .create_queue()
        .queue_name("batch-delete")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    for i in 0..3 {
        sqs.send_message()
            .queue_url(&url)
            .message_body(format!("message {i}"))
            .send()
            .await
            .unwrap();
    }
    let mut receipts = Vec::new();
    while receipts.len() < 3 {
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .visibility_timeout(300)
            .send()
            .await
            .unwrap();
        receipts.extend(
            out.messages()
                .iter()
                .filter_map(|m| m.receipt_handle().map(str::to_owned)),
        );
    }
    let results = fleetwatch::worker::delete_batch(
        &sqs,
        &url,
        &[&receipts[0], "not-a-receipt", &receipts[2]],
    )
    .await;
    assert!(results[0].is_ok(), "{results:?}");
    assert!(results[1].is_err(), "{results:?}");
    assert!(results[2].is_ok(), "{results:?}");
    assert_eq!(
        common::queue_depth(&moto.clients().await, &url).await,
        (0, 1),
        "only the message whose receipt was not given is left, in flight"
    );
    // One receipt alone goes out as a plain DeleteMessage.
    assert_eq!(
        fleetwatch::worker::delete_batch(&sqs, &url, &[&receipts[1]]).await,
        vec![Ok(())]
    );
    assert_eq!(
        common::queue_depth(&moto.clients().await, &url).await,
        (0, 0)
    );
}
