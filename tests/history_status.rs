//! `fleetwatch history` and `fleetwatch status` end to end: the real
//! binary's worker processes objects into the emulator, then the operator
//! commands read them back.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::process::{BIN, Bootstrapped, WorkerProcess, bootstrap};
use common::{Moto, Stack, wait_for};

const WAIT: Duration = Duration::from_secs(90);

/// Runs `fleetwatch <args>` with bootstrap's settings.
fn fleetwatch(moto: &Moto, setup: &Bootstrapped, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .envs(moto.env())
        .envs(setup.exports.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("run fleetwatch")
}

fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn iso(unix_secs: i64) -> String {
    fleetwatch::telemetry::Timestamp::from_unix_millis(unix_secs * 1000).to_rfc3339_millis()
}

/// The current minute, minus three hours: readings of the last three hours.
fn base() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    now - now % 60 - 3 * 3600
}

/// One JSON Lines object per hour: V1 every 10 minutes (hot, 120 °C, in
/// the second hour), V2 once per object.
fn hourly_objects(base: i64) -> Vec<(String, String)> {
    (0..3)
        .map(|hour| {
            let mut body = String::new();
            for step in 0..6 {
                let at = base + hour * 3600 + step * 600;
                let temp = if hour == 1 { 120 } else { 85 + step };
                body.push_str(&format!(
                    "{{\"device_id\":\"V1\",\"timestamp\":\"{}\",\"engine_temp_c\":{temp},\"rpm\":{},\"status\":\"ok\"}}\n",
                    iso(at),
                    1000 + step * 100
                ));
            }
            body.push_str(&format!(
                "{{\"device_id\":\"V2\",\"timestamp\":\"{}\",\"engine_temp_c\":80}}\n",
                iso(base + hour * 3600)
            ));
            (format!("incoming/hour-{hour}.jsonl"), body)
        })
        .collect()
}

async fn processed(stack: &Stack, readings: usize) {
    wait_for("every reading stored", WAIT, || async {
        (stack.items().await.len() == readings).then_some(())
    })
    .await;
    wait_for("the queue to drain", WAIT, || async {
        (stack.queue_depth().await == (0, 0)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_over_a_time_range_spanning_several_objects() {
    let moto = Moto::start();
    let setup = bootstrap(&moto);
    let stack = setup.stack(&moto).await;
    let worker = WorkerProcess::start(&moto, &setup, &[]);
    worker.wait_ready().await;
    let base = base();
    for (key, body) in hourly_objects(base) {
        stack.put_object(&key, body).await;
    }
    processed(&stack, 21).await;

    // From the last reading of the first object to the second of the third.
    let (from, to) = (iso(base + 3000), iso(base + 2 * 3600 + 600));
    let out = stdout_of(&fleetwatch(
        &moto,
        &setup,
        &[
            "history", "V1", "--from", &from, "--to", &to, "--format", "json", "--limit", "all",
        ],
    ));
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let times: Vec<&str> = rows
        .iter()
        .map(|r| r["timestamp"].as_str().unwrap())
        .collect();
    let mut expected = vec![iso(base + 3000)];
    expected.extend((0..6).map(|s| iso(base + 3600 + s * 600)));
    expected.extend([iso(base + 7200), iso(base + 7800)]);
    assert_eq!(times, expected, "oldest first, both bounds included");
    assert!(rows.iter().all(|r| r["device_id"] == "V1"));
    let keys: std::collections::BTreeSet<&str> = rows
        .iter()
        .map(|r| r["source"]["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 3, "the range spans three objects: {keys:?}");
    assert!(
        rows.iter()
            .all(|r| ["POSITIVE", "NEGATIVE"].contains(&r["prediction"]["label"].as_str().unwrap())),
        "every reading has its prediction"
    );

    // --limit keeps the most recent readings of the range.
    let out = stdout_of(&fleetwatch(
        &moto,
        &setup,
        &[
            "history", "V1", "--from", &from, "--to", &to, "--limit", "2", "--format", "csv",
        ],
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with(
            "timestamp,prediction,score,rpm,engine_temp_c,status,model,source_key,source_line"
        ),
        "{out}"
    );
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[1].starts_with(&iso(base + 7200)) && lines[2].starts_with(&iso(base + 7800)),
        "{out}"
    );

    // --since: the last 3 hours and more hold all 18 readings of V1.
    let out = stdout_of(&fleetwatch(
        &moto,
        &setup,
        &["history", "V1", "--since", "4h"],
    ));
    assert_eq!(out.lines().count(), 19, "a header and 18 rows:\n{out}");
    assert!(out.starts_with("timestamp"), "{out}");
    println!("{out}");

    // --summary: the hot hour's alerts are in the ledger once published.
    let summary = wait_for("the alerts in the summary", WAIT, || async {
        let out = stdout_of(&fleetwatch(
            &moto,
            &setup,
            &[
                "history",
                "V1",
                "--from",
                &from,
                "--to",
                &to,
                "--summary",
                "--format",
                "json",
            ],
        ));
        let s: serde_json::Value = serde_json::from_str(&out).unwrap();
        let sent = s["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["rule"] == "engine_temp_c > 100" && a["state"] == "sent")
            .count();
        (sent >= 4).then_some(s)
    })
    .await;
    assert_eq!(summary["readings"], 9);
    assert_eq!(summary["fields"]["engine_temp_c"]["count"], 9);
    assert_eq!(summary["fields"]["engine_temp_c"]["max"], 120.0);
    assert_eq!(summary["fields"]["engine_temp_c"]["min"], 85.0);
    assert_eq!(summary["predicted"], 9);
    assert!(summary["positive_share"].is_number(), "{summary}");
    let table = stdout_of(&fleetwatch(
        &moto,
        &setup,
        &["history", "V1", "--from", &from, "--to", &to, "--summary"],
    ));
    assert!(
        table.contains("engine_temp_c") && table.contains("alerts: "),
        "{table}"
    );
    println!("{table}");

    // A missing table says so, naming the setting.
    let missing = fleetwatch(
        &moto,
        &setup,
        &["history", "V1", "--table", "no-such-table"],
    );
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("does not exist")
            && err.contains("no-such-table")
            && err.contains("FLEETWATCH_TABLE"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_with_dead_letters_and_a_vehicle_with_alerts_and_positive_predictions() {
    let moto = Moto::start();
    let setup = bootstrap(&moto);
    let stack = setup.stack(&moto).await;
    // Two notifications the worker gave up on, straight in the dead-letter queue.
    for body in ["{\"poison\":1}", "{\"poison\":2}"] {
        stack
            .clients
            .sqs
            .send_message()
            .queue_url(&setup.dead_letter_queue_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let worker = WorkerProcess::start(&moto, &setup, &[]);
    worker.wait_ready().await;
    let base = base();
    for (key, body) in hourly_objects(base) {
        stack.put_object(&key, body).await;
    }
    // V3 was hot ten days ago: an alert, but not a recent one.
    let old = base - 10 * 86_400;
    stack
        .put_object(
            "incoming/old.jsonl",
            format!(
                "{{\"device_id\":\"V3\",\"timestamp\":\"{}\",\"engine_temp_c\":130}}\n",
                iso(old)
            ),
        )
        .await;
    processed(&stack, 22).await;

    let status = |extra: &[&str]| {
        let mut args = vec!["status", "--metrics-url", &worker.metrics_url];
        args.extend_from_slice(extra);
        stdout_of(&fleetwatch(&moto, &setup, &args))
    };
    let json: serde_json::Value = serde_json::from_str(&status(&["--format", "json"])).unwrap();
    assert_eq!(json["queue"]["visible"], 0, "{json}");
    assert_eq!(json["queue"]["in_flight"], 0, "{json}");
    let dlq = &json["dead_letter_queue"];
    assert_eq!(dlq["visible"], 2, "{json}");
    assert_eq!(dlq["peeked"], 2, "{json}");
    assert_eq!(dlq["max_receive_count"], 5, "{json}");
    assert!(dlq["oldest_age_seconds"].as_u64().unwrap() < 600, "{json}");
    assert_eq!(json["worker"]["ready"], "ready", "{json}");
    assert!(
        json["worker"]["metrics"]["fleetwatch_sqs_messages_received_total"]
            .as_f64()
            .unwrap()
            >= 4.0,
        "{json}"
    );
    assert_eq!(json["vehicles_known"], 3, "{json}");
    let vehicles = json["vehicles"].as_array().unwrap();
    let v1 = vehicles
        .iter()
        .find(|v| v["device_id"] == "V1")
        .unwrap_or_else(|| panic!("V1 is listed: {json}"));
    assert!(
        vehicles.iter().all(|v| v["device_id"] != "V3"),
        "an alert ten days old is not recent: {json}"
    );
    let latest = iso(base + 2 * 3600 + 3000);
    assert_eq!(v1["last_reading_at"], latest.as_str(), "{v1}");
    assert_eq!(v1["last_reading"]["engine_temp_c"], 90, "{v1}");
    assert_eq!(v1["last_reading"]["source"]["key"], "incoming/hour-2.jsonl");
    assert!(
        v1["last_reading"]["prediction"]["label"].is_string(),
        "{v1}"
    );
    assert!(v1["last_positive_at"].is_string(), "{v1}");
    assert!(
        v1["last_alert_rule"] == "engine_temp_c > 100"
            || v1["last_alert_rule"] == "maintenance_predicted",
        "{v1}"
    );
    assert!(
        v1["last_alert_at"].as_str().unwrap() <= latest.as_str(),
        "{v1}"
    );
    // Peeking consumed nothing.
    assert_eq!(
        common::queue_depth(&stack.clients, &setup.dead_letter_queue_url).await,
        (2, 0)
    );

    // A replayed, older object moves no record backwards.
    stack
        .put_object(
            "incoming/hour-0-again.jsonl",
            hourly_objects(base)[0].1.clone(),
        )
        .await;
    wait_for("the replay processed", WAIT, || async {
        let text = worker.metrics().await?;
        let done = common::parse_metric(
            &text,
            "fleetwatch_objects_processed_total",
            &[("outcome", "ok")],
        );
        (done >= 5.0).then_some(())
    })
    .await;
    let again: serde_json::Value =
        serde_json::from_str(&status(&["--format", "json", "--all"])).unwrap();
    let v1 = again["vehicles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["device_id"] == "V1")
        .unwrap()
        .clone();
    assert_eq!(v1["last_reading_at"], latest.as_str(), "{v1}");
    assert_eq!(v1["last_reading"]["source"]["key"], "incoming/hour-2.jsonl");
    assert_eq!(
        again["vehicles"].as_array().unwrap().len(),
        3,
        "--all lists every vehicle"
    );

    let table = status(&[]);
    assert!(
        table.contains("dead-letter queue") && table.contains("depth 2"),
        "{table}"
    );
    println!("{table}");

    // A queue that does not exist says so, naming the setting.
    let missing = fleetwatch(
        &moto,
        &setup,
        &[
            "status",
            "--queue-url",
            &format!("{}/123456789012/nope", moto.endpoint),
        ],
    );
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("does not exist") && err.contains("FLEETWATCH_QUEUE_URL"),
        "{err}"
    );
}
