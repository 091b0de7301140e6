//! One object holding the whole fleet (item 9 of issue 8): an aggregator
//! uploads readings of thousands of vehicles, interleaved, each minute.
//! Every reading is stored with the prediction the same device's readings
//! get when uploaded alone, and each is predicted exactly once.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Moto, Stack, m, metric, s, wait_for};
use fleetwatch::inference::embedded::EmbeddedModel;
use fleetwatch::metrics as mx;
use fleetwatch::telemetry::{LineParser, Reading};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(240);
const DEVICES: usize = 3000;
const ROUNDS: usize = 3;

/// Reading `round` of device `d`: values vary per device and round, so
/// that the rolling features (means, slope, window size) matter.
fn line(d: usize, round: usize) -> String {
    format!(
        "{{\"device_id\":\"F{d:04}\",\"timestamp\":{},\"engine_temp_c\":{},\"rpm\":{},\"oil_pressure_kpa\":{},\"battery_voltage\":{},\"vibration_mm_s\":{}}}",
        1_760_000_000 + round * 60,
        80 + (d * 7 + round * 11) % 45,
        800 + (d * 13 + round * 17) % 2000,
        150 + (d * 3 + round) % 200,
        12.0 + ((d + round * 5) % 30) as f64 / 10.0,
        (d * 11 + round * 3) % 25,
    )
}

/// The score text as the item stores it (six decimals, trailing zeros cut).
fn score_text(score: f64) -> String {
    let s = format!("{:.6}", score.clamp(0.0, 1.0));
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() { "0".into() } else { s.into() }
}

fn parse(lines: &[String]) -> Vec<Reading> {
    let (parser, _) = LineParser::detect(&lines[0]);
    lines.iter().map(|l| parser.parse(l).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_in_one_object_is_predicted_once_per_reading_as_each_device_alone() {
    common::install_metrics();
    let moto = Moto::start();
    let stack = Stack::create(&moto).await;
    let model = EmbeddedModel::builtin().unwrap();
    // No rules, no alerts; eight writers, two objects at a time.
    let settings = common::worker_settings(
        &stack,
        &[
            "--alert-rules",
            "none",
            "--maintenance-alert-score",
            "off",
            "--dynamodb-writers",
            "8",
            "--max-records",
            "1000000",
            "--concurrency",
            "2",
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
    let processed = |n: f64| async move {
        wait_for(&format!("{n} objects processed"), WAIT, || async {
            (metric(mx::OBJECTS_PROCESSED, &[("outcome", "ok")]) >= n).then_some(())
        })
        .await
    };

    // One vehicle uploaded alone: the reference.
    let alone: Vec<String> = (0..ROUNDS).map(|r| line(42, r)).collect();
    stack
        .put_object("alone/F0042.jsonl", alone.join("\n"))
        .await;
    processed(1.0).await;
    let alone_items = stack.items().await;
    let alone_scores: HashMap<String, String> = alone_items
        .iter()
        .map(|((_, ts), item)| (ts.clone(), common::n(m(item, "prediction"), "score")))
        .collect();
    assert_eq!(alone_scores.len(), ROUNDS);

    // The whole fleet, interleaved: round 0 of every device, then round 1...
    let fleet: Vec<String> = (0..ROUNDS)
        .flat_map(|r| (0..DEVICES).map(move |d| line(d, r)))
        .collect();
    stack.put_object("fleet/all.jsonl", fleet.join("\n")).await;
    processed(2.0).await;
    wait_for("the queue to drain", WAIT, || async {
        (stack.queue_depth().await == (0, 0)).then_some(())
    })
    .await;

    let items = stack.items().await;
    assert_eq!(items.len(), DEVICES * ROUNDS);
    // Each device's readings predicted on their own, as if uploaded alone.
    let mut by_device: HashMap<String, Vec<Reading>> = HashMap::new();
    for reading in parse(&fleet) {
        by_device
            .entry(reading.device_id.clone())
            .or_default()
            .push(reading);
    }
    for (device, readings) in &by_device {
        let expected = model.predict(readings).unwrap();
        for (reading, p) in readings.iter().zip(&expected) {
            let key = (device.clone(), reading.timestamp.to_rfc3339_millis());
            let item = &items[&key];
            assert_eq!(
                common::n(m(item, "prediction"), "score"),
                score_text(p.score),
                "{key:?}"
            );
            assert_eq!(s(m(item, "prediction"), "label"), p.label.as_str());
        }
    }
    for ((device, ts), item) in &items {
        if device == "F0042" {
            assert_eq!(
                common::n(m(item, "prediction"), "score"),
                alone_scores[ts],
                "the same as uploaded alone"
            );
        }
    }
    // Predicted once each: 3 readings alone, then the fleet's.
    assert_eq!(
        metric(mx::INFERENCE_ROWS, &[]),
        (ROUNDS + DEVICES * ROUNDS) as f64
    );
    assert_eq!(metric(mx::FEATURE_CONTEXT_EVICTIONS, &[]), 0.0);
    assert_eq!(
        metric(mx::RECORDS, &[("outcome", "stored")]),
        (ROUNDS + DEVICES * ROUNDS) as f64
    );

    shutdown.cancel();
    worker.await.unwrap();
}
