//! Outages cost time, not messages: with the real binary behind the fault
//! proxy, one dependency is down for a while (everything it is sent fails)
//! while the others work, on a queue that dead-letters after only two
//! receives. Nothing may reach the dead-letter queue, work that needs no
//! failing dependency keeps flowing, each data message is received exactly
//! once (held, not redelivered), and everything completes by itself once
//! the dependency is back. Visibility timeouts are minutes here, as in
//! production, and also the 10 s minimum for the lease test.

mod common;

use std::time::Duration;

use common::fault_proxy::{FaultConfig, FaultProxy};
use common::process::{Bootstrapped, WorkerProcess, bootstrap_with};
use common::{Moto, Stack, parse_metric, queue_depth, wait_for};

const WAIT: Duration = Duration::from_secs(120);
/// How long each outage lasts. Past the old redelivery schedule (10 s,
/// then 20 s, then dead-lettered with a `maxReceiveCount` of 2), so a
/// worker that leaves failing messages for redelivery fails these tests.
const OUTAGE: Duration = Duration::from_secs(45);

/// One JSON Lines object of `readings` readings of `device`, a minute
/// apart within one 15-minute window, at `temp` °C.
fn object(device: &str, readings: usize, temp: u32) -> Vec<u8> {
    (0..readings)
        .map(|i| {
            format!(
                "{{\"device_id\":\"{device}\",\"timestamp\":\"2025-10-19T12:{:02}:00Z\",\"engine_temp_c\":{temp}}}\n",
                i % 15
            )
        })
        .collect::<String>()
        .into_bytes()
}

struct Setup {
    moto: Moto,
    setup: Bootstrapped,
    stack: Stack,
    proxy: FaultProxy,
}

/// The emulator, resources whose queue dead-letters after two receives,
/// and a plain proxy.
async fn setup() -> Setup {
    let moto = Moto::start();
    let setup = bootstrap_with(&moto, &[("FLEETWATCH_MAX_RECEIVE_COUNT", "2")]);
    let stack = setup.stack(&moto).await;
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::new(21)).await;
    Setup {
        moto,
        setup,
        stack,
        proxy,
    }
}

impl Setup {
    fn worker(&self, extra: &[(&str, &str)]) -> WorkerProcess {
        let mut env = vec![("AWS_ENDPOINT_URL", self.proxy.endpoint.as_str())];
        env.extend_from_slice(extra);
        WorkerProcess::start(&self.moto, &self.setup, &env)
    }

    async fn dead_lettered(&self) -> (u64, u64) {
        queue_depth(&self.stack.clients, &self.setup.dead_letter_queue_url).await
    }
}

fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    parse_metric(text, name, labels) + 0.0
}

async fn metrics(worker: &WorkerProcess) -> String {
    wait_for("the worker's metrics", WAIT, || worker.metrics()).await
}

/// Waits until the table holds `count` readings and the queue is empty.
async fn wait_done(stack: &Stack, count: usize) {
    wait_for(
        &format!("{count} readings stored and the queue empty"),
        WAIT * 2,
        || async {
            let stored = stack.items().await.len();
            (stored >= count && stack.queue_depth().await == (0, 0)).then_some(())
        },
    )
    .await;
    assert_eq!(stack.items().await.len(), count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dynamodb_outage_holds_the_messages_and_dead_letters_nothing() {
    an_outage_holds_the_messages("dynamodb").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_outage_holds_the_messages_and_dead_letters_nothing() {
    an_outage_holds_the_messages("s3").await;
}

/// `service` refuses everything for [`OUTAGE`] while ten files arrive at a
/// worker with four slots and a visibility timeout of two minutes.
async fn an_outage_holds_the_messages(service: &str) {
    let s = setup().await;
    let mut worker = s.worker(&[
        ("FLEETWATCH_VISIBILITY_TIMEOUT", "120s"),
        ("FLEETWATCH_CONCURRENCY", "4"),
    ]);
    worker.wait_ready().await;
    s.proxy
        .set_config(FaultConfig::new(21).service(service, 1.0));
    const OBJECTS: usize = 10;
    for i in 0..OBJECTS {
        let device = format!("VHC{i:03}");
        s.stack
            .put_object(&format!("incoming/{device}.jsonl"), object(&device, 5, 80))
            .await;
    }
    wait_for("four messages held", WAIT, || async {
        let text = worker.metrics().await?;
        (metric(
            &text,
            "fleetwatch_messages_waiting",
            &[("dependency", service)],
        ) >= 4.0)
            .then_some(())
    })
    .await;
    // The outage goes on (its length, not a wait for a condition).
    tokio::time::sleep(OUTAGE).await;

    let text = metrics(&worker).await;
    let test_events = metric(
        &text,
        "fleetwatch_sqs_messages_ignored_total",
        &[("reason", "test_event")],
    );
    assert_eq!(
        metric(
            &text,
            "fleetwatch_sqs_messages_failed_total",
            &[("reason", "dynamodb")]
        ),
        0.0,
        "no message was left for redelivery"
    );
    assert_eq!(
        metric(&text, "fleetwatch_sqs_messages_received_total", &[]),
        4.0 + test_events,
        "only the four held messages were received: nothing more is taken while every slot waits"
    );
    assert_eq!(
        s.stack.queue_depth().await,
        (OBJECTS as u64 - 4, 4),
        "the held four are in flight, the rest wait in the queue"
    );
    assert_eq!(s.dead_lettered().await, (0, 0));
    let readyz = fleetwatch::health::probe(
        &format!("{}/readyz", worker.metrics_url),
        Duration::from_secs(2),
    )
    .await;
    assert!(
        format!("{readyz:?}").contains("503"),
        "/readyz reports the outage: {readyz:?}"
    );

    s.proxy.heal();
    wait_done(&s.stack, OBJECTS * 5).await;
    let text = metrics(&worker).await;
    assert_eq!(
        metric(&text, "fleetwatch_sqs_messages_received_total", &[]),
        OBJECTS as f64 + test_events,
        "each message was received exactly once"
    );
    assert_eq!(s.dead_lettered().await, (0, 0));
    assert!(worker.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sns_outage_keeps_other_traffic_flowing_and_loses_no_alert() {
    let s = setup().await;
    let mut worker = s.worker(&[
        ("FLEETWATCH_VISIBILITY_TIMEOUT", "60s"),
        // Two slots: three messages waiting for SNS would block everything
        // if they kept their slots.
        ("FLEETWATCH_CONCURRENCY", "2"),
    ]);
    worker.wait_ready().await;
    s.proxy.set_config(FaultConfig::new(21).service("sns", 1.0));
    const HOT: usize = 3;
    const COOL: usize = 8;
    for i in 0..HOT {
        let device = format!("HOT{i:02}");
        s.stack
            .put_object(&format!("incoming/{device}.jsonl"), object(&device, 4, 120))
            .await;
    }
    for i in 0..COOL {
        let device = format!("COOL{i:02}");
        s.stack
            .put_object(&format!("incoming/{device}.jsonl"), object(&device, 4, 80))
            .await;
    }
    // Every reading is stored and every message without an alert is done,
    // while SNS is still down; the hot ones wait, parked, for SNS alone.
    wait_for(
        "all readings stored, only the hot messages left",
        WAIT,
        || async {
            let text = worker.metrics().await?;
            let parked = metric(&text, "fleetwatch_messages_parked", &[]);
            let stored = s.stack.items().await.len();
            (stored == (HOT + COOL) * 4
                && parked == HOT as f64
                && s.stack.queue_depth().await == (0, HOT as u64))
                .then_some(())
        },
    )
    .await;
    tokio::time::sleep(OUTAGE).await;
    assert_eq!(s.dead_lettered().await, (0, 0));
    assert_eq!(s.stack.queue_depth().await, (0, HOT as u64));
    assert!(s.stack.drain_alerts().await.is_empty(), "SNS is down");

    s.proxy.heal();
    wait_done(&s.stack, (HOT + COOL) * 4).await;
    let alerts = wait_for("the three alerts", WAIT, || async {
        let alerts = s.stack.drain_alerts().await;
        (!alerts.is_empty()).then_some(alerts)
    })
    .await;
    let mut devices: Vec<String> = alerts
        .iter()
        .map(|a| a["device_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    devices.sort();
    assert_eq!(devices, ["HOT00", "HOT01", "HOT02"], "one alert each");
    let text = metrics(&worker).await;
    let test_events = metric(
        &text,
        "fleetwatch_sqs_messages_ignored_total",
        &[("reason", "test_event")],
    );
    assert_eq!(
        metric(&text, "fleetwatch_sqs_messages_received_total", &[]),
        (HOT + COOL) as f64 + test_events,
        "each message was received exactly once"
    );
    assert_eq!(metric(&text, "fleetwatch_messages_parked", &[]), 0.0);
    assert_eq!(s.dead_lettered().await, (0, 0));
    assert!(worker.terminate().await.success());
}

/// Visibility extensions fail eight requests in a row, then one succeeds
/// (more than the SDK's own three attempts per call absorb), while a
/// DynamoDB outage holds the message for two visibility timeouts and a
/// second worker polls the same queue: the lease is never lost, so the
/// second worker never gets the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_visibility_extension_does_not_lose_the_lease() {
    let s = setup().await;
    let env = [("FLEETWATCH_VISIBILITY_TIMEOUT", "20s")];
    let mut first = s.worker(&env);
    let mut second = s.worker(&env);
    first.wait_ready().await;
    second.wait_ready().await;
    s.proxy
        .set_config(FaultConfig::new(21).service("dynamodb", 1.0).intermittent(
            "sqs",
            "ChangeMessageVisibility",
            8,
        ));
    s.stack
        .put_object("incoming/slow.jsonl", object("SLOW1", 3, 80))
        .await;
    wait_for("the message to be held", WAIT, || async {
        let a = first.metrics().await?;
        let b = second.metrics().await?;
        let waiting = |t: &str| {
            metric(
                t,
                "fleetwatch_messages_waiting",
                &[("dependency", "dynamodb")],
            )
        };
        (waiting(&a) + waiting(&b) >= 1.0).then_some(())
    })
    .await;
    // Two visibility timeouts of outage.
    tokio::time::sleep(Duration::from_secs(40)).await;
    s.proxy.heal();
    wait_done(&s.stack, 3).await;
    let (a, b) = (metrics(&first).await, metrics(&second).await);
    let data = |t: &str| {
        metric(t, "fleetwatch_sqs_messages_received_total", &[])
            - metric(
                t,
                "fleetwatch_sqs_messages_ignored_total",
                &[("reason", "test_event")],
            )
    };
    assert_eq!(
        data(&a) + data(&b),
        1.0,
        "the message was received once: its lease held through failed extensions"
    );
    let failed_extensions = s
        .proxy
        .injected_requests()
        .iter()
        .filter(|r| r.operation == "ChangeMessageVisibility")
        .count();
    eprintln!("extensions failed by the proxy: {failed_extensions}");
    assert!(failed_extensions >= 4, "{failed_extensions}");
    let extended = metric(&a, "fleetwatch_sqs_visibility_extensions_total", &[])
        + metric(&b, "fleetwatch_sqs_visibility_extensions_total", &[]);
    assert!(extended >= 3.0, "{extended} extensions");
    assert_eq!(
        metric(&a, "fleetwatch_sqs_leases_lost_total", &[])
            + metric(&b, "fleetwatch_sqs_leases_lost_total", &[]),
        0.0
    );
    assert!(first.terminate().await.success());
    assert!(second.terminate().await.success());
}
