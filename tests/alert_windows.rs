//! One alert per device, rule and cooldown window, and at least one for
//! every window that holds a breach, whatever the split of a vehicle's
//! readings into files and the order in which the files arrive: the
//! [`BreachLog`] of each file, then [`AlertSink::deliver`], against a real
//! emulator.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Moto, Stack};
use fleetwatch::alerts::ledger::AlertLedger;
use fleetwatch::alerts::publisher::AlertPublisher;
use fleetwatch::alerts::rule_set::RuleSet;
use fleetwatch::alerts::{AlertSink, BreachLog, ClaimOwner, Cooldown};
use fleetwatch::telemetry::{Number, Reading, Timestamp, Value};

const MINUTE: i64 = 60_000;
/// 2025-10-19T22:45:00Z, the start of a 15-minute window.
const T0: i64 = 1_760_913_900_000;
const COOLDOWN: Duration = Duration::from_secs(15 * 60);

/// One reading a minute from `from` to `to` (minutes after `T0`), hot
/// (120 °C) between `hot_from` and `hot_to`, normal (90 °C) otherwise.
fn drive(device: &str, from: i64, to: i64, hot_from: i64, hot_to: i64) -> Vec<Reading> {
    (from..to)
        .map(|minute| {
            let temp = if (hot_from..hot_to).contains(&minute) {
                "120"
            } else {
                "90"
            };
            Reading {
                device_id: device.into(),
                timestamp: Timestamp::from_unix_millis(T0 + minute * MINUTE),
                fields: vec![(
                    "engine_temp_c".into(),
                    Value::Number(Number::parse(temp).unwrap()),
                )],
            }
        })
        .collect()
}

/// The windows (as their start) that hold at least one breach.
fn breaching_windows(readings: &[Reading]) -> Vec<String> {
    let window = COOLDOWN.as_millis() as i64;
    let mut out: Vec<String> = readings
        .iter()
        .filter(|r| r.number("engine_temp_c").is_some_and(|t| t > 100.0))
        .map(|r| {
            Timestamp::from_unix_millis(r.timestamp.unix_millis().div_euclid(window) * window)
                .to_string()
        })
        .collect();
    out.dedup();
    out
}

/// Splits readings into files of `minutes` each, the first file starting
/// `offset` minutes into the drive.
fn split(readings: &[Reading], minutes: usize, offset: usize) -> Vec<Vec<Reading>> {
    let mut files = vec![readings[..offset.min(readings.len())].to_vec()];
    files.extend(
        readings[offset.min(readings.len())..]
            .chunks(minutes)
            .map(<[_]>::to_vec),
    );
    files.retain(|f| !f.is_empty());
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_breaching_window_is_alerted_exactly_once_whatever_the_files() {
    let moto = Moto::start();
    let stack = Stack::create(&moto).await;
    let sink = AlertSink {
        publisher: AlertPublisher::new(
            stack.clients.sns.clone(),
            stack.resources.topic_arn.clone(),
        ),
        ledger: AlertLedger::new(
            stack.clients.dynamodb.clone(),
            stack.resources.alarm_table.clone(),
            COOLDOWN,
            Duration::from_secs(60),
        ),
        alarms: fleetwatch::alarms::AlarmStore::new(
            stack.clients.dynamodb.clone(),
            stack.resources.alarm_table.clone(),
        ),
    };
    let rules = std::sync::Arc::new(RuleSet::new(&["engine_temp_c > 100".parse().unwrap()], &[]));

    // A vehicle driving from 22:45 to 23:55 that runs hot from 22:47 to
    // 23:42: 55 hot minutes over the windows 22:45, 23:00, 23:15 and 23:30.
    // Each way of cutting and ordering the files gets its own vehicle.
    type Arrange = fn(Vec<Vec<Reading>>) -> Vec<Vec<Reading>>;
    let keep: Arrange = |files| files;
    let reverse: Arrange = |mut files| {
        files.reverse();
        files
    };
    let shuffle: Arrange = |mut files| {
        // A fixed permutation that puts later windows first.
        let n = files.len();
        let mut out = Vec::with_capacity(n);
        for i in (1..n).step_by(2).chain((0..n).step_by(2)) {
            out.push(std::mem::take(&mut files[i]));
        }
        out
    };
    let cases: Vec<(&str, usize, usize, Arrange)> = vec![
        ("ONEFILE", 70, 0, keep),
        ("QUARTER", 15, 0, keep),
        ("QUARTER-REV", 15, 0, reverse),
        ("STRADDLE20", 20, 7, keep),
        ("STRADDLE20-REV", 20, 7, reverse),
        ("STRADDLE20-SHUF", 20, 7, shuffle),
        ("ODD13-SHUF", 13, 4, shuffle),
    ];
    let mut expected: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (device, minutes, offset, arrange) in &cases {
        let readings = drive(device, 0, 70, 2, 57);
        for window in breaching_windows(&readings) {
            expected.insert((device.to_string(), window), 1);
        }
        for (n, file) in arrange(split(&readings, *minutes, *offset))
            .into_iter()
            .enumerate()
        {
            let key = format!("{device}/part-{n}.jsonl");
            let mut log = BreachLog::new(
                rules.clone(),
                None,
                Cooldown::new(COOLDOWN),
                "fleet-telemetry",
                &key,
            );
            for reading in &file {
                log.record(reading, None);
            }
            // Each file is its own message.
            sink.deliver(log.into_alerts(), &ClaimOwner::new(&key, 1))
                .await
                .unwrap();
        }
    }
    assert_eq!(expected.len(), cases.len() * 4, "four hot windows each");

    let total: usize = expected.values().sum();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut alerts = Vec::new();
    while alerts.len() < total && std::time::Instant::now() < deadline {
        alerts.extend(stack.drain_alerts().await);
    }
    alerts.extend(stack.drain_alerts().await);
    let mut got: BTreeMap<(String, String), usize> = BTreeMap::new();
    for a in &alerts {
        let window = a["window_start"].as_str().unwrap_or("none").to_owned();
        *got.entry((a["device_id"].as_str().unwrap().to_owned(), window))
            .or_default() += 1;
    }
    assert_eq!(got, expected, "(device, window) → alerts published");
}
