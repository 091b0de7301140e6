//! The bad-input catalogue: each kind of broken or hostile input gets its
//! documented outcome and metric, and the good objects around it are all
//! processed. Runs the worker in-process (one test per process under
//! nextest, so the metric counts are this test's own).

mod common;

use std::time::Duration;

use common::{Moto, Stack, gzip, metric, wait_for};
use fleetwatch::metrics as m;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(120);

fn good(device: &str, n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"device_id\":\"{device}\",\"timestamp\":{},\"engine_temp_c\":90}}\n",
                1_760_000_000 + i * 60
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_has_its_outcome_and_the_good_objects_go_through() {
    common::install_metrics();
    let moto = Moto::start();
    let stack = Stack::create(&moto).await;
    // No alerts; 50 MiB objects, 1000 readings; the quarantine on.
    let settings = common::worker_settings(
        &stack,
        &[
            "--maintenance-alert-score",
            "off",
            "--max-line-bytes",
            "65536",
            "--max-object-bytes",
            "52428800",
            "--max-gzip-ratio",
            "100",
            "--max-records",
            "1000",
            "--quarantine-prefix",
            "quarantine/",
            "--concurrency",
            "4",
            "--visibility-timeout",
            "60s",
            "--shutdown-grace",
            "5s",
        ],
    );
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(
        common::build_worker(&settings, &stack.clients)
            .into_worker(Default::default())
            .run(shutdown.clone()),
    );

    // Good objects before the bad ones...
    stack
        .put_object("good/first.jsonl", good("GOOD1", 20))
        .await;
    // Messages that are not notifications, or name nothing that exists.
    stack.send("{\"Records\": [ this is not json").await;
    stack
        .send(common::s3_event("no-such-bucket", &["x.txt"]))
        .await;
    stack
        .send(common::s3_event(
            &stack.resources.bucket,
            &["no/such/object.txt"],
        ))
        .await;
    // Objects.
    stack.put_object("bad/empty.txt", Vec::new()).await;
    let binary: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    stack.put_object("bad/binary.bin", binary).await;
    let mut truncated = gzip(good("TRUNC", 900).as_bytes());
    truncated.truncate(truncated.len() * 2 / 3);
    stack.put_object("bad/truncated.jsonl.gz", truncated).await;
    let bomb = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![b' '; 1 << 20];
        for _ in 0..300 {
            e.write_all(&zeros).unwrap();
        }
        e.finish().unwrap()
    };
    stack.put_object("bad/bomb.gz", bomb).await;
    let mut long_line = good("LONG", 1);
    long_line.push_str(&"x".repeat(10 * 1024 * 1024));
    long_line.push('\n');
    long_line.push_str(&good("LONG2", 1));
    stack.put_object("bad/long-line.jsonl", long_line).await;
    let mut utf8 = good("UTF", 1).into_bytes();
    utf8.extend(b"{\"device_id\":\"UTF\",\"timestamp\":1760000999,\"note\":\"\xff\xfe\"}\n");
    stack.put_object("bad/invalid-utf8.jsonl", utf8).await;
    let dupes = "device_id:DUP, timestamp:2025-11-15T10:00:00Z, engine_temp_c:90\n\
                 device_id:DUP, timestamp:2025-11-15T10:00:00Z, engine_temp_c:91\n";
    stack.put_object("bad/duplicates.txt", dupes).await;
    // Every known numeric field given a word instead of a number.
    let wrong_types: String = fleetwatch::telemetry::NUMERIC_FIELDS
    .iter()
    .map(|f| {
        format!(
            "{{\"device_id\":\"TYPES\",\"timestamp\":\"2025-11-15T10:00:00Z\",\"{f}\":\"hot\"}}\n"
        )
    })
    .chain(["{\"device_id\":42,\"timestamp\":\"2025-11-15T10:00:00Z\"}\n".to_owned()])
    .collect();
    stack.put_object("bad/wrong-types.jsonl", wrong_types).await;
    let times = "device_id:TIME, timestamp:2999-01-01T00:00:00Z, engine_temp_c:90\n\
                 device_id:TIME, timestamp:1969-12-31T23:59:59Z, engine_temp_c:90\n\
                 device_id:TIME, timestamp:2025-11-15T10:00:00Z, engine_temp_c:90\n";
    stack.put_object("bad/timestamps.txt", times).await;
    stack
        .put_object("bad/too-many-records.jsonl", good("MANY", 1500))
        .await;
    // ...and after.
    stack.put_object("good/last.jsonl", good("GOOD2", 20)).await;

    // Everything is eventually deleted: nothing is stuck or retried forever.
    wait_for("the queue to drain", WAIT, || async {
        (stack.queue_depth().await == (0, 0)).then_some(())
    })
    .await;
    wait_for("the objects' outcomes", WAIT, || async {
        (metric(m::OBJECTS_PROCESSED, &[("outcome", "ok")]) >= 9.0).then_some(())
    })
    .await;

    let items = stack.items().await;
    let count = |device: &str| items.keys().filter(|(d, _)| d == device).count();
    assert_eq!(count("GOOD1"), 20);
    assert_eq!(count("GOOD2"), 20);
    assert_eq!(
        count("LONG") + count("LONG2"),
        2,
        "lines around a 10 MB line are kept"
    );
    assert_eq!(count("UTF"), 1);
    assert_eq!(count("DUP"), 1, "readings under one key are one item");
    let dup = &items[&("DUP".to_owned(), "2025-11-15T10:00:00.000Z".to_owned())];
    assert_eq!(
        common::n(dup, "engine_temp_c"),
        "90",
        "the first reading of a key wins; the different second one is rejected"
    );
    assert_eq!(count("TYPES"), 0);
    assert_eq!(count("TIME"), 1);
    assert!(
        count("TRUNC") > 0 && count("TRUNC") < 900,
        "a truncated gzip keeps what came before the damage"
    );
    assert_eq!(
        count("MANY"),
        1000,
        "readings up to FLEETWATCH_MAX_RECORDS are kept"
    );

    let value = |name: &str, labels: &[(&str, &str)]| metric(name, labels);
    assert_eq!(
        value(m::SQS_MESSAGES_IGNORED, &[("reason", "not_a_notification")]),
        1.0
    );
    assert!(value(m::OBJECTS_PROCESSED, &[("outcome", "missing")]) >= 2.0);
    assert_eq!(value(m::OBJECTS_PROCESSED, &[("outcome", "corrupt")]), 1.0);
    assert_eq!(value(m::OBJECTS_REJECTED, &[("reason", "gzip_ratio")]), 1.0);
    assert_eq!(
        value(m::OBJECTS_REJECTED, &[("reason", "too_many_records")]),
        1.0
    );
    assert_eq!(
        value(m::RECORDS_REJECTED, &[("reason", "line_too_long")]),
        1.0
    );
    // The invalid-UTF-8 object's bad line, plus the binary object's lines.
    assert!(value(m::RECORDS_REJECTED, &[("reason", "invalid_utf8")]) > 1.0);
    assert_eq!(
        value(m::RECORDS_REJECTED, &[("reason", "invalid_field")]),
        fleetwatch::telemetry::NUMERIC_FIELDS.len() as f64
    );
    assert_eq!(
        value(m::RECORDS_REJECTED, &[("reason", "invalid_device_id")]),
        1.0
    );
    assert_eq!(
        value(m::RECORDS_REJECTED, &[("reason", "timestamp_in_future")]),
        1.0
    );
    assert_eq!(
        value(m::RECORDS_REJECTED, &[("reason", "duplicate_key")]),
        1.0
    );
    assert_eq!(
        value(m::RECORDS_REJECTED, &[("reason", "timestamp_out_of_range")]),
        1.0
    );
    assert!(
        value(m::RECORDS_REJECTED, &[("reason", "invalid_utf8")])
            + value(m::RECORDS_REJECTED, &[("reason", "malformed")])
            >= 1.0,
        "the binary object's lines are rejected"
    );

    // The quarantine holds the rejected lines with their reasons, and is
    // never processed itself.
    let quarantined = stack
        .clients
        .s3
        .get_object()
        .bucket(&stack.resources.bucket)
        .key("quarantine/bad/timestamps.txt.rejected.jsonl")
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    let records: Vec<serde_json::Value> = String::from_utf8(quarantined.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["line"], 1);
    assert_eq!(records[0]["reason"], "timestamp_in_future");
    assert!(records[0]["text"].as_str().unwrap().contains("2999-01-01"));
    let bomb_record = stack
        .clients
        .s3
        .get_object()
        .bucket(&stack.resources.bucket)
        .key("quarantine/bad/bomb.gz.rejected.jsonl")
        .send()
        .await
        .unwrap();
    assert!(bomb_record.content_length().unwrap_or(0) > 0);
    assert!(
        value(m::OBJECTS_PROCESSED, &[("outcome", "skipped")]) >= 1.0,
        "quarantine objects are skipped"
    );

    shutdown.cancel();
    worker.await.unwrap();
}
