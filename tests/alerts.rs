//! Exactly-once alerts over at-least-once delivery: the alert ledger, the
//! cooldown, each crash window of the claim → publish → confirm protocol
//! (see `src/alerts/ledger.rs`), claims that know their owner, and alerts
//! SNS refuses for good, against a real emulator.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use common::fault_proxy::{FaultConfig, FaultProxy};
use common::{Moto, Stack, wait_for};
use fleetwatch::alerts::Test;
use fleetwatch::alerts::ledger::{AlertLedger, Claim};
use fleetwatch::alerts::publisher::AlertPublisher;
use fleetwatch::alerts::rules::Op;
use fleetwatch::alerts::{
    Alert, AlertError, AlertKind, AlertSink, Breaches, ClaimOwner, Condition, Cooldown, Source,
};
use fleetwatch::failure::{Classify, Dependency, FailureClass};
use fleetwatch::telemetry::Timestamp;

const MINUTE: i64 = 60_000;
/// 2025-10-19T22:45:00Z, the start of a 15-minute window.
const T0: i64 = 1_760_913_900_000;

fn alert(device: &str, first_ms: i64, key: &str) -> Alert {
    let first = Timestamp::from_unix_millis(first_ms);
    Alert {
        id: Cooldown::default().alert_id(device, "engine_temp_c > 100", first),
        condition: Condition {
            kind: AlertKind::Safety,
            field: "engine_temp_c".into(),
            test: Test::Compare {
                op: Op::Gt,
                threshold: "100".into(),
            },
            model: None,
            scope: None,
        },
        breaches: Breaches {
            count: 1,
            first,
            last: first,
            worst_value: "120".into(),
            worst_at: first,
            explanation: Vec::new(),
            finding: None,
        },
        source: Source {
            bucket: "b".into(),
            key: key.into(),
        },
    }
}

fn sink(stack: &Stack, lease: Duration) -> AlertSink {
    AlertSink {
        publisher: AlertPublisher::new(
            stack.clients.sns.clone(),
            stack.resources.topic_arn.clone(),
        ),
        ledger: ledger(stack, lease),
        alarms: alarms(stack),
    }
}

fn alarms(stack: &Stack) -> fleetwatch::alarms::AlarmStore {
    fleetwatch::alarms::AlarmStore::new(
        stack.clients.dynamodb.clone(),
        stack.resources.alarm_table.clone(),
    )
}

fn ledger(stack: &Stack, lease: Duration) -> AlertLedger {
    AlertLedger::new(
        stack.clients.dynamodb.clone(),
        stack.resources.alarm_table.clone(),
        Duration::from_secs(15 * 60),
        lease,
    )
}

/// A message's owner: its id and receive count.
fn owner(id: &str, attempt: u32) -> ClaimOwner {
    ClaimOwner::new(id, attempt)
}

/// Every alert that reached the inbox, waiting until `expected` arrived
/// and then checking that nothing more comes.
async fn alerts_received(stack: &Stack, expected: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut all = Vec::new();
    while all.len() < expected {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {expected} alert(s): {all:#?}"
        );
        all.extend(stack.drain_alerts().await);
    }
    all.extend(stack.drain_alerts().await);
    all
}

/// The (device, window_start) of each alert, sorted.
fn windows(alerts: &[serde_json::Value]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = alerts
        .iter()
        .map(|a| {
            (
                a["device_id"].as_str().unwrap().to_owned(),
                a["window_start"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The ledger entry of an alert.
async fn ledger_entry(stack: &Stack, alert: &Alert) -> HashMap<String, AttributeValue> {
    stack
        .clients
        .dynamodb
        .get_item()
        .table_name(&stack.resources.alarm_table)
        .key(
            "device_id",
            AttributeValue::S(format!("alert#{}", alert.id.device_id)),
        )
        .key(
            "record",
            AttributeValue::S(format!("{}#{}", alert.id.rule, alert.id.window_start)),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_default()
}

fn is_busy(claim: Claim) -> bool {
    matches!(claim, Claim::Busy { .. })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_publishes_nothing_and_the_cooldown_folds_files() {
    let moto = Moto::start();
    let stack = Stack::create(&moto).await;
    let sink = sink(&stack, Duration::from_secs(30));

    // First delivery: two devices, two alerts (one given twice: one owner
    // claiming one identity twice must still publish it once).
    let first = vec![
        alert("VHC001", T0 + MINUTE, "a.txt"),
        alert("VHC002", T0 + 2 * MINUTE, "a.txt"),
        alert("VHC001", T0 + 3 * MINUTE, "a.txt"),
    ];
    assert_eq!(
        sink.deliver(first.clone(), &owner("m1", 1)).await.unwrap(),
        2
    );
    // The same message again (a replay, a second worker, a restart).
    assert_eq!(sink.deliver(first, &owner("m1", 2)).await.unwrap(), 0);
    // Another file of VHC001 in the same 15-minute window: within cooldown.
    assert_eq!(
        sink.deliver(
            vec![alert("VHC001", T0 + 10 * MINUTE, "b.txt")],
            &owner("m2", 1)
        )
        .await
        .unwrap(),
        0
    );
    // VHC001 in the next window alerts again.
    assert_eq!(
        sink.deliver(
            vec![alert("VHC001", T0 + 16 * MINUTE, "c.txt")],
            &owner("m3", 1)
        )
        .await
        .unwrap(),
        1
    );

    let alerts = alerts_received(&stack, 3).await;
    assert_eq!(alerts.len(), 3, "{alerts:#?}");
    assert_eq!(
        windows(&alerts),
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
    let (message_a, message_b) = (owner("message-a", 1), owner("message-b", 1));

    // Killed after claiming, before publishing: another message is held
    // off while the claim is fresh, then takes it over. Late, never lost.
    let x = alert("CRASH1", T0, "k");
    assert_eq!(
        worker_a.claim(&x, &message_a).await.unwrap(),
        Claim::Publish
    );
    assert!(is_busy(worker_b.claim(&x, &message_b).await.unwrap()));
    wait_for(
        "the stale claim to be taken over",
        Duration::from_secs(20),
        || async {
            (worker_b.claim(&x, &message_b).await.unwrap() == Claim::Publish).then_some(())
        },
    )
    .await;

    // Killed after publishing, before confirming: the takeover publishes
    // again. This is the one duplicate the protocol allows, by design.
    let y = alert("CRASH2", T0, "k");
    assert_eq!(
        worker_a.claim(&y, &message_a).await.unwrap(),
        Claim::Publish
    );
    // (published here; the worker dies before `confirm`)
    wait_for(
        "the unconfirmed claim to go stale",
        Duration::from_secs(20),
        || async {
            (worker_b.claim(&y, &message_b).await.unwrap() == Claim::Publish).then_some(())
        },
    )
    .await;

    // Killed after confirming, before deleting the message: the replay
    // finds the alert sent and publishes nothing, whoever replays it.
    let z = alert("CRASH3", T0, "k");
    assert_eq!(
        worker_a.claim(&z, &message_a).await.unwrap(),
        Claim::Publish
    );
    worker_a.confirm(&z).await.unwrap();
    assert_eq!(
        worker_b.claim(&z, &message_b).await.unwrap(),
        Claim::AlreadySent
    );
    assert_eq!(
        worker_a.claim(&z, &owner("message-a", 2)).await.unwrap(),
        Claim::AlreadySent
    );

    // Through the sink: a fresh claim held by another message makes the
    // delivery fail as contention (retried, and not an SNS failure), with
    // the time the claim goes stale; the alert is not skipped.
    let sink = sink(&stack, Duration::from_secs(60));
    let w = alert("BUSY", T0, "k");
    assert_eq!(
        ledger(&stack, Duration::from_secs(60))
            .claim(&w, &owner("other-message", 1))
            .await
            .unwrap(),
        Claim::Publish
    );
    let err = sink
        .deliver(vec![w.clone()], &owner("this-message", 1))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("another worker"), "{err}");
    assert_eq!(err.class(), FailureClass::Contention);
    assert_eq!(err.dependency(), None, "no dependency is at fault");
    let AlertError::Busy { count, retry_after } = err else {
        panic!("not Busy: {err:?}");
    };
    assert_eq!(count, 1);
    assert!(
        retry_after > Duration::from_secs(50) && retry_after <= Duration::from_secs(60),
        "the claim goes stale a lease after it was taken: {retry_after:?}"
    );
    // Ledger items live in their own key space and never look like readings.
    assert!(stack.items().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_knows_its_owner() {
    let moto = Moto::start();
    let stack = Stack::create(&moto).await;
    // A lease far longer than the test: nothing here waits for it.
    let lease = Duration::from_secs(600);
    let ledger = ledger(&stack, lease);
    let x = alert("OWNED", T0, "k");

    assert_eq!(
        ledger.claim(&x, &owner("m1", 1)).await.unwrap(),
        Claim::Publish
    );
    // A retry within the same attempt (publishing failed) takes it at once.
    assert_eq!(
        ledger.claim(&x, &owner("m1", 1)).await.unwrap(),
        Claim::Publish
    );
    // So does the redelivery of the same message.
    assert_eq!(
        ledger.claim(&x, &owner("m1", 2)).await.unwrap(),
        Claim::Publish
    );
    // An earlier attempt still running never takes it back.
    assert!(is_busy(ledger.claim(&x, &owner("m1", 1)).await.unwrap()));
    // Another message waits for the lease, and is told how long.
    match ledger.claim(&x, &owner("m2", 9)).await.unwrap() {
        Claim::Busy { retry_after } => assert!(
            retry_after > Duration::from_secs(590) && retry_after <= lease,
            "{retry_after:?}"
        ),
        other => panic!("another owner's live claim must be Busy: {other:?}"),
    }
    // An owner without an id is nobody's: it never matches a claim.
    assert!(is_busy(ledger.claim(&x, &owner("", 9)).await.unwrap()));
    let entry = ledger_entry(&stack, &x).await;
    assert_eq!(entry["owner_id"], AttributeValue::S("m1".into()));
    assert_eq!(entry["attempt"], AttributeValue::N("2".into()));
    assert_eq!(entry["state"], AttributeValue::S("pending".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_that_failed_after_the_claim_is_retried_at_once_by_its_owner() {
    let moto = Moto::start();
    let stack = Stack::create(&moto).await;
    // SNS through a proxy that fails every call; the ledger goes straight
    // to the emulator.
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::new(7).service("sns", 1.0)).await;
    let sns_config = aws_sdk_sns::config::Builder::from(&moto.sdk_config().await)
        .endpoint_url(&proxy.endpoint)
        .retry_config(aws_sdk_sns::config::retry::RetryConfig::standard().with_max_attempts(1))
        .build();
    let lease = Duration::from_secs(600);
    let sink = AlertSink {
        publisher: AlertPublisher::new(
            aws_sdk_sns::Client::from_conf(sns_config),
            stack.resources.topic_arn.clone(),
        ),
        ledger: ledger(&stack, lease),
        alarms: alarms(&stack),
    };
    let alerts = vec![
        alert("RETRY1", T0 + MINUTE, "k"),
        alert("RETRY2", T0 + MINUTE, "k"),
    ];
    let message = owner("message-1", 1);

    // SNS fails after the claims are taken: an SNS failure, retryable.
    let err = sink
        .deliver(alerts.clone(), &message)
        .await
        .expect_err("SNS is down");
    assert!(err.class().is_retryable(), "{err}: {:?}", err.class());
    assert_eq!(err.dependency(), Some(Dependency::Sns));
    assert!(proxy.injected("sns") > 0);
    for a in &alerts {
        assert_eq!(
            ledger_entry(&stack, a).await["state"],
            AttributeValue::S("pending".into())
        );
    }
    // Meanwhile another message with the same alerts is held off.
    let other = sink
        .deliver(alerts.clone(), &owner("message-2", 1))
        .await
        .unwrap_err();
    assert_eq!(other.class(), FailureClass::Contention, "{other}");

    // SNS is back. The same attempt retried in-process publishes at once,
    // without waiting for its own claims' lease (600 s), and once.
    proxy.heal();
    let started = Instant::now();
    assert_eq!(sink.deliver(alerts.clone(), &message).await.unwrap(), 2);
    assert!(started.elapsed() < Duration::from_secs(30));
    // Called again (as a retry loop would after a later failure) and
    // redelivered: nothing more goes out.
    assert_eq!(sink.deliver(alerts.clone(), &message).await.unwrap(), 0);
    assert_eq!(
        sink.deliver(alerts.clone(), &owner("message-1", 2))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        sink.deliver(alerts.clone(), &owner("message-2", 1))
            .await
            .unwrap(),
        0
    );

    // The redelivery of a message whose attempt died after the claim also
    // takes over at once.
    let late = vec![alert("RETRY3", T0 + MINUTE, "k")];
    let killed = ledger(&stack, lease);
    assert_eq!(
        killed
            .claim(&late[0], &owner("message-3", 1))
            .await
            .unwrap(),
        Claim::Publish
    );
    // (the worker dies here; the message comes back with receive count 2)
    assert_eq!(sink.deliver(late, &owner("message-3", 2)).await.unwrap(), 1);

    let received = alerts_received(&stack, 3).await;
    let window = "2025-10-19T22:45:00.000Z".to_owned();
    assert_eq!(
        windows(&received),
        [
            ("RETRY1".to_owned(), window.clone()),
            ("RETRY2".to_owned(), window.clone()),
            ("RETRY3".to_owned(), window),
        ],
        "each alert exactly once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_sns_refuses_is_rejected_and_the_others_go_through() {
    common::install_metrics();
    let moto = Moto::start();
    let stack = Stack::create(&moto).await;
    let sink = sink(&stack, Duration::from_secs(60));

    // One entry SNS refuses: a message over SNS's 256 KB (a value with
    // 100 000 digits, quoted in each of the message's forms).
    let mut too_long = alert("REFUSED1", T0, "k");
    too_long.breaches.worst_value = format!("1{}", "0".repeat(100_000));
    // One that makes SNS refuse the whole PublishBatch call: an empty
    // message attribute (the `rule` attribute).
    let mut empty_attribute = alert("REFUSED2", T0, "k");
    empty_attribute.id.rule = String::new();
    let per_entry = vec![
        alert("GOOD1", T0, "k"),
        too_long.clone(),
        alert("GOOD2", T0, "k"),
    ];
    let whole_call = vec![
        alert("GOOD3", T0, "k"),
        empty_attribute.clone(),
        alert("GOOD4", T0, "k"),
    ];
    assert_eq!(
        sink.deliver(per_entry.clone(), &owner("m1", 1))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        sink.deliver(whole_call.clone(), &owner("m2", 1))
            .await
            .unwrap(),
        2
    );
    let rejected = |reason| {
        common::metric(
            "fleetwatch_alerts_rejected_total",
            &[("kind", "safety"), ("reason", reason)],
        )
    };
    assert_eq!(rejected("invalid_parameter"), 2.0);
    for refused in [&too_long, &empty_attribute] {
        let entry = ledger_entry(&stack, refused).await;
        assert_eq!(entry["state"], AttributeValue::S("rejected".into()));
        match &entry["reason"] {
            AttributeValue::S(r) => assert!(r.starts_with("InvalidParameter"), "{r}"),
            other => panic!("no reason: {other:?}"),
        }
    }
    let published = || common::metric("fleetwatch_alerts_published_total", &[("kind", "safety")]);
    assert_eq!(published(), 4.0);

    // Redelivered: the refused alerts are not tried again, nothing fails.
    assert_eq!(sink.deliver(per_entry, &owner("m1", 2)).await.unwrap(), 0);
    assert_eq!(sink.deliver(whole_call, &owner("m2", 2)).await.unwrap(), 0);
    assert_eq!(published(), 4.0);
    assert_eq!(rejected("invalid_parameter"), 2.0);

    let received = alerts_received(&stack, 4).await;
    let devices: Vec<String> = windows(&received).into_iter().map(|(d, _)| d).collect();
    assert_eq!(devices, ["GOOD1", "GOOD2", "GOOD3", "GOOD4"]);
}
