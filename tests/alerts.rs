//! Exactly-once alerts over at-least-once delivery: the alert ledger, the
//! cooldown, and each crash window of the claim → publish → confirm
//! protocol (see `src/alerts/ledger.rs`), against a real emulator.

mod common;

use std::time::Duration;

use common::{Moto, Stack, wait_for};
use fleetwatch::alerts::ledger::{AlertLedger, Claim};
use fleetwatch::alerts::publisher::AlertPublisher;
use fleetwatch::alerts::{Alert, AlertKind, AlertSink, Cooldown};
use fleetwatch::telemetry::Timestamp;

const MINUTE: i64 = 60_000;
/// 2025-10-19T22:45:00Z, the start of a 15-minute window.
const T0: i64 = 1_760_913_900_000;

fn alert(device: &str, first_ms: i64, key: &str) -> Alert {
    let first = Timestamp::from_unix_millis(first_ms);
    Alert {
        device_id: device.into(),
        kind: AlertKind::Safety,
        rule: "engine_temp_c > 100".into(),
        field: "engine_temp_c".into(),
        threshold: "100".into(),
        op: ">",
        count: 1,
        first: Timestamp::from_unix_millis(first_ms),
        last: Timestamp::from_unix_millis(first_ms),
        worst_value: "120".into(),
        worst_at: Timestamp::from_unix_millis(first_ms),
        model: None,
        window_start: Cooldown::default().window_start(first),
        bucket: "b".into(),
        key: key.into(),
    }
}

fn sink(stack: &Stack, lease: Duration) -> AlertSink {
    AlertSink {
        publisher: AlertPublisher::new(
            stack.clients.sns.clone(),
            stack.resources.topic_arn.clone(),
        ),
        ledger: ledger(stack, lease),
    }
}

fn ledger(stack: &Stack, lease: Duration) -> AlertLedger {
    AlertLedger::new(
        stack.clients.dynamodb.clone(),
        stack.resources.table.clone(),
        Duration::from_secs(15 * 60),
        lease,
    )
}

/// Every alert that reached the inbox, waiting until `expected` arrived
/// and then checking that nothing more comes.
async fn alerts_received(stack: &Stack, expected: usize) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut all = Vec::new();
    while all.len() < expected {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {expected} alert(s): {all:#?}"
        );
        all.extend(stack.drain_alerts().await);
    }
    all.extend(stack.drain_alerts().await);
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_publishes_nothing_and_the_cooldown_folds_files() {
    let moto = Moto::start();
    let stack = Stack::create(&moto).await;
    let sink = sink(&stack, Duration::from_secs(30));

    // First delivery: two devices, two alerts.
    let first = vec![
        alert("VHC001", T0 + MINUTE, "a.txt"),
        alert("VHC002", T0 + 2 * MINUTE, "a.txt"),
    ];
    assert_eq!(sink.deliver(first.clone()).await.unwrap(), 2);
    // The same message again (a replay, a second worker, a restart).
    assert_eq!(sink.deliver(first).await.unwrap(), 0);
    // Another file of VHC001 in the same 15-minute window: within cooldown.
    assert_eq!(
        sink.deliver(vec![alert("VHC001", T0 + 10 * MINUTE, "b.txt")])
            .await
            .unwrap(),
        0
    );
    // VHC001 in the next window alerts again.
    assert_eq!(
        sink.deliver(vec![alert("VHC001", T0 + 16 * MINUTE, "c.txt")])
            .await
            .unwrap(),
        1
    );

    let alerts = alerts_received(&stack, 3).await;
    assert_eq!(alerts.len(), 3, "{alerts:#?}");
    let mut windows: Vec<(String, String)> = alerts
        .iter()
        .map(|a| {
            (
                a["device_id"].as_str().unwrap().to_owned(),
                a["window_start"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    windows.sort();
    assert_eq!(
        windows,
        [
            ("VHC001".to_owned(), "2025-10-19T22:45:00.000Z".to_owned()),
            ("VHC001".to_owned(), "2025-10-19T23:00:00.000Z".to_owned()),
            ("VHC002".to_owned(), "2025-10-19T22:45:00.000Z".to_owned()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_windows_of_the_claim_protocol() {
    let moto = Moto::start();
    let stack = Stack::create(&moto).await;
    let lease = Duration::from_secs(2);
    let worker_a = ledger(&stack, lease);
    let worker_b = ledger(&stack, lease);

    // Killed after claiming, before publishing: another worker is held off
    // while the claim is fresh, then takes it over. Late, never lost.
    let x = alert("CRASH1", T0, "k");
    assert_eq!(worker_a.claim(&x).await.unwrap(), Claim::Publish);
    assert_eq!(worker_b.claim(&x).await.unwrap(), Claim::Busy);
    wait_for(
        "the stale claim to be taken over",
        Duration::from_secs(20),
        || async { (worker_b.claim(&x).await.unwrap() == Claim::Publish).then_some(()) },
    )
    .await;

    // Killed after publishing, before confirming: the takeover publishes
    // again. This is the one duplicate the protocol allows, by design.
    let y = alert("CRASH2", T0, "k");
    assert_eq!(worker_a.claim(&y).await.unwrap(), Claim::Publish);
    // (published here; the worker dies before `confirm`)
    wait_for(
        "the unconfirmed claim to go stale",
        Duration::from_secs(20),
        || async { (worker_b.claim(&y).await.unwrap() == Claim::Publish).then_some(()) },
    )
    .await;

    // Killed after confirming, before deleting the message: the replay
    // finds the alert sent and publishes nothing.
    let z = alert("CRASH3", T0, "k");
    assert_eq!(worker_a.claim(&z).await.unwrap(), Claim::Publish);
    worker_a.confirm(&z).await.unwrap();
    assert_eq!(worker_b.claim(&z).await.unwrap(), Claim::AlreadySent);
    assert_eq!(worker_a.claim(&z).await.unwrap(), Claim::AlreadySent);

    // Through the sink: a fresh claim held by another worker makes the
    // delivery fail (the message is retried), not skip the alert.
    let sink = sink(&stack, Duration::from_secs(60));
    let w = alert("BUSY", T0, "k");
    assert_eq!(
        AlertLedger::new(
            stack.clients.dynamodb.clone(),
            stack.resources.table.clone(),
            Duration::from_secs(900),
            Duration::from_secs(60)
        )
        .claim(&w)
        .await
        .unwrap(),
        Claim::Publish
    );
    let err = sink
        .deliver(vec![alert("BUSY", T0, "k")])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("another worker"), "{err}");
    // Ledger items live in their own key space and never look like readings.
    assert!(stack.items().await.is_empty());
}
