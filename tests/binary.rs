//! The real `fleetwatch` binary against a real emulator: bootstrap, the
//! worker end to end with its metrics and health endpoints, and a SIGTERM
//! in the middle of an object.

mod common;

use std::process::Command;
use std::time::Duration;

use common::process::{BIN, WorkerProcess, bootstrap};
use common::{Moto, free_port, parse_metric, wait_for};

const FLEET_DATA: &[u8] = include_bytes!("data/fleet_data.txt");
const WAIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_end_to_end() {
    let moto = Moto::start();
    let setup = bootstrap(&moto);
    for wanted in [
        "FLEETWATCH_BUCKET",
        "FLEETWATCH_QUEUE_URL",
        "FLEETWATCH_TABLE",
        "FLEETWATCH_ALERT_TOPIC_ARN",
    ] {
        assert!(!setup.get(wanted).is_empty(), "{wanted}");
    }
    // Idempotent: a second run succeeds and prints the same.
    assert_eq!(bootstrap(&moto).stdout, setup.stdout);
    let stack = setup.stack(&moto).await;
    // The table expires what carries `expires_at` (ledger items; readings
    // with FLEETWATCH_READING_TTL), as Terraform sets it up.
    let ttl = stack
        .clients
        .dynamodb
        .describe_time_to_live()
        .table_name(&stack.resources.table)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
    assert_eq!(
        ttl.time_to_live_status(),
        Some(&aws_sdk_dynamodb::types::TimeToLiveStatus::Enabled)
    );
    // Empty optional settings, as `docker run -e VAR=` or a template's ""
    // give, mean unset. (An empty quarantine prefix once made every object
    // a quarantine object: nothing was stored and every message deleted.)
    let empty = [
        ("FLEETWATCH_QUARANTINE_PREFIX", ""),
        ("FLEETWATCH_SAGEMAKER_ENDPOINT", ""),
        ("FLEETWATCH_MODEL", ""),
        ("FLEETWATCH_ALERT_RULES", ""),
    ];
    let mut worker = WorkerProcess::start(&moto, &setup, &empty);
    worker.wait_ready().await;
    let health = fleetwatch::health::probe(
        &format!("{}/healthz", worker.metrics_url),
        Duration::from_secs(2),
    )
    .await;
    assert!(health.is_ok(), "{health:?}");

    stack
        .put_object("incoming/fleet_data.txt", FLEET_DATA)
        .await;
    let items = wait_for("two items", WAIT, || async {
        let items = stack.items().await;
        (items.len() == 2).then_some(items)
    })
    .await;
    assert!(items.contains_key(&("VHC002".to_owned(), "2025-10-19T22:47:00.000Z".to_owned())));
    wait_for("the queue to drain", WAIT, || async {
        (stack.queue_depth().await == (0, 0)).then_some(())
    })
    .await;

    let text = wait_for("the metrics", WAIT, || async {
        let text = worker.metrics().await?;
        let alerts = parse_metric(
            &text,
            "fleetwatch_alerts_published_total",
            &[("kind", "safety")],
        );
        let received = parse_metric(&text, "fleetwatch_sqs_messages_received_total", &[]);
        let deleted = parse_metric(&text, "fleetwatch_sqs_messages_deleted_total", &[]);
        (alerts == 2.0 && deleted == received).then_some(text)
    })
    .await;
    let value = |name: &str, labels: &[(&str, &str)]| parse_metric(&text, name, labels);
    // Each bootstrap run (two) made S3 send a test event; plus one data message.
    let test_events = value(
        "fleetwatch_sqs_messages_ignored_total",
        &[("reason", "test_event")],
    );
    assert!(test_events >= 1.0, "{text}");
    assert_eq!(
        value("fleetwatch_sqs_messages_received_total", &[]),
        test_events + 1.0
    );
    assert_eq!(
        value("fleetwatch_sqs_messages_deleted_total", &[]),
        test_events + 1.0
    );
    assert_eq!(
        value("fleetwatch_records_total", &[("outcome", "stored")]),
        2.0
    );
    assert_eq!(
        value("fleetwatch_objects_processed_total", &[("outcome", "ok")]),
        1.0
    );
    assert!(
        text.contains("fleetwatch_object_duration_seconds_bucket"),
        "histograms are exported"
    );
    assert!(text.contains("fleetwatch_queue_lag_seconds_count"));

    let alerts = stack.drain_alerts().await;
    assert_eq!(
        alerts.iter().filter(|a| a["kind"] == "safety").count(),
        2,
        "{alerts:#?}"
    );

    // The container health check command.
    let healthcheck = |url: &str| {
        Command::new(BIN)
            .args(["healthcheck", "--url", url, "--timeout", "2s"])
            .status()
            .unwrap()
            .success()
    };
    assert!(healthcheck(&format!("{}/healthz", worker.metrics_url)));

    let status = worker.terminate().await;
    assert!(status.success(), "graceful exit: {status:?}");
    assert!(
        !healthcheck(&format!("{}/healthz", worker.metrics_url)),
        "a stopped worker is unhealthy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_object_returns_the_message_and_loses_nothing() {
    let moto = Moto::start();
    let setup = bootstrap(&moto);
    let stack = setup.stack(&moto).await;
    const READINGS: usize = 8_000;
    let mut body = String::with_capacity(READINGS * 80);
    for i in 0..READINGS {
        body.push_str(&format!(
            "{{\"device_id\":\"BIG{:02}\",\"timestamp\":{},\"engine_temp_c\":90}}\n",
            i % 10,
            1_760_000_000 + i
        ));
    }
    let grace = [
        ("FLEETWATCH_SHUTDOWN_GRACE", "500ms"),
        ("FLEETWATCH_CONCURRENCY", "1"),
    ];
    let mut first = WorkerProcess::start(&moto, &setup, &grace);
    first.wait_ready().await;
    stack.put_object("incoming/big.jsonl", body).await;

    // Stop the worker as soon as part of the object is stored.
    wait_for("the first items", WAIT, || async {
        let scan = common::patient(&stack.clients.dynamodb)
            .scan()
            .table_name(&stack.resources.table)
            .limit(1)
            .send()
            .await
            .unwrap();
        (scan.count() > 0).then_some(())
    })
    .await;
    let status = first.terminate().await;
    assert!(status.success(), "graceful exit: {status:?}");
    let stored_at_stop = stack.items().await.len();
    assert!(
        stored_at_stop < READINGS,
        "the object was still being processed at SIGTERM"
    );

    // Returned with visibility 0: visible again at once, not after the
    // 60 s visibility timeout.
    wait_for(
        "the returned message to be visible",
        Duration::from_secs(20),
        || async { (stack.queue_depth().await.0 >= 1).then_some(()) },
    )
    .await;

    let _second = WorkerProcess::start(&moto, &setup, &[]);
    wait_for("every reading", Duration::from_secs(300), || async {
        (stack.items().await.len() == READINGS).then_some(())
    })
    .await;
    wait_for("the queue to drain", WAIT, || async {
        (stack.queue_depth().await == (0, 0)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_stops_the_worker_at_start_with_a_clear_message() {
    let moto = Moto::start();
    let setup = bootstrap(&moto);
    let output = Command::new(BIN)
        .arg("worker")
        .envs(moto.env())
        .envs(setup.exports.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("FLEETWATCH_TABLE", "no-such-table")
        .env(
            "FLEETWATCH_METRICS_ADDR",
            format!("127.0.0.1:{}", free_port()),
        )
        .output()
        .expect("run the worker");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no-such-table does not exist (dynamodb:Query)"),
        "{stderr}"
    );

    // The alarm table too, named by its setting: every alert needs it.
    let output = Command::new(BIN)
        .arg("worker")
        .envs(moto.env())
        .envs(setup.exports.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("FLEETWATCH_ALARM_TABLE", "no-such-alarms")
        .env(
            "FLEETWATCH_METRICS_ADDR",
            format!("127.0.0.1:{}", free_port()),
        )
        .output()
        .expect("run the worker");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no-such-alarms (FLEETWATCH_ALARM_TABLE) does not exist (dynamodb:Query)"),
        "{stderr}"
    );
}

#[test]
fn a_bad_setting_is_named() {
    let output = Command::new(BIN)
        .args(["worker", "--queue-url", "http://localhost/q"])
        .env("FLEETWATCH_ALERT_COOLDOWN", "forever")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("FLEETWATCH_ALERT_COOLDOWN"), "{stderr}");
}

/// Every file and its reading count under `dir` (ground truth excluded).
fn simulated(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n != "ground_truth.json") {
                let key = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((key, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_fleet_uploaded_to_s3_is_stored_reading_for_reading() {
    let args = [
        "simulate",
        "--vehicles",
        "3",
        "--hours",
        "2",
        "--interval",
        "60s",
        "--seed",
        "11",
        "--format",
        "csv",
        "--gzip",
    ];
    // Deterministic: the same seed writes the same bytes.
    let dirs: Vec<std::path::PathBuf> = (0..2)
        .map(|i| std::env::temp_dir().join(format!("fleetwatch-sim-{}-{i}", std::process::id())))
        .collect();
    for dir in &dirs {
        let status = Command::new(BIN)
            .args(args)
            .arg("--out")
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let files = simulated(&dirs[0]);
    assert_eq!(files, simulated(&dirs[1]));
    assert!(files.len() >= 6, "one file per vehicle per hour");
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dirs[0].join("ground_truth.json")).unwrap()).unwrap();
    assert_eq!(truth["vehicles"].as_array().unwrap().len(), 3);
    // Readings = data rows of every (gzip CSV) file.
    let expected: usize = files
        .iter()
        .map(|(_, bytes)| {
            let mut text = String::new();
            std::io::Read::read_to_string(
                &mut flate2::read::GzDecoder::new(bytes.as_slice()),
                &mut text,
            )
            .unwrap();
            text.lines().count() - 1
        })
        .sum();
    for dir in &dirs {
        let _ = std::fs::remove_dir_all(dir);
    }

    let moto = Moto::start();
    let setup = bootstrap(&moto);
    let stack = setup.stack(&moto).await;
    let _worker = WorkerProcess::start(&moto, &setup, &[]);
    let target = format!("s3://{}/incoming/", stack.resources.bucket);
    let status = Command::new(BIN)
        .args(args)
        .args(["--upload", &target])
        .envs(moto.env())
        .status()
        .unwrap();
    assert!(status.success());
    wait_for("every simulated reading", WAIT, || async {
        (stack.items().await.len() == expected).then_some(())
    })
    .await;
    wait_for("the queue to drain", WAIT, || async {
        (stack.queue_depth().await == (0, 0)).then_some(())
    })
    .await;
    let items = stack.items().await;
    assert!(
        items.values().all(|i| i.contains_key("prediction")),
        "every reading is predicted"
    );
}
