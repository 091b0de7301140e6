//! The windowed rule kinds (issue 13) against the emulator, with the real
//! worker: a rate of change (`engine_temp_c rises 15 within 10m`) and a
//! sustained condition (`oil_pressure_kpa < 150 for 5m`) give the same
//! alerts (device, rule, cooldown window) whether a vehicle's readings come
//! as one file, as one file a minute in order, reversed or shuffled, or all
//! at once to two workers; and none for a slow climb or a low pressure run
//! broken every few minutes.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::fault_proxy::{FaultConfig, FaultProxy};
use common::{Moto, Stack, metric, wait_for};
use fleetwatch::metrics as mx;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(240);
const RISES: &str = "engine_temp_c rises 15 within 10m";
const SUSTAINED: &str = "oil_pressure_kpa < 150 for 5m";
/// 2025-10-19T22:45:00Z, the start of a 15-minute cooldown window.
const T0: i64 = 1_760_913_900;
/// Minutes of readings, one a minute.
const MINUTES: i64 = 40;

/// One reading a minute of a vehicle that `breaks` the rules, or only
/// nearly does.
///
/// Breaking: 80 °C until minute 10, then +2.5 °C a minute to 100 °C at
/// minute 18 (+20 within 8 minutes; +15 within 10 minutes from minute 16 to
/// 22, all in the 23:00 window); oil pressure 300 kPa but 120 kPa from
/// minute 26 to 33 (low for 7 minutes: 5 minutes reached at minute 31, in
/// the 23:15 window).
///
/// Nearly: a slow climb from 80 °C to 100 °C over 30 minutes (at most
/// +6.7 °C within 10 minutes); 120 kPa every minute but 300 kPa every
/// fourth, so no run lasts more than 2 minutes.
fn drive(device: &str, breaks: bool) -> Vec<(i64, String)> {
    (0..MINUTES)
        .map(|m| {
            let (temp, oil) = if breaks {
                let temp = 80.0 + 2.5 * (m.clamp(10, 18) - 10) as f64;
                (temp, if (26..=33).contains(&m) { 120 } else { 300 })
            } else {
                let temp = 80.0 + 20.0 * m.min(30) as f64 / 30.0;
                (temp, if m % 4 == 0 { 300 } else { 120 })
            };
            let line = format!(
                "{{\"device_id\":\"{device}\",\"timestamp\":{},\"engine_temp_c\":{temp:.2},\"oil_pressure_kpa\":{oil},\"rpm\":1500}}",
                T0 + m * 60
            );
            (m, line)
        })
        .collect()
}

/// The files of one delivery: each file's minute span and its lines.
type Files = Vec<Vec<String>>;

/// The readings of `devices` (breaking or not) as one file a minute, in
/// order; `whole`: as one file.
fn files(devices: &[(&str, bool)], whole: bool) -> Files {
    let drives: Vec<Vec<(i64, String)>> = devices.iter().map(|(d, b)| drive(d, *b)).collect();
    let mut by_minute: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for drive in drives {
        for (m, line) in drive {
            by_minute
                .entry(if whole { 0 } else { m })
                .or_default()
                .push(line);
        }
    }
    by_minute.into_values().collect()
}

/// A fixed permutation that puts later minutes first, interleaved.
fn shuffle(files: Files) -> Files {
    let n = files.len();
    let mut order: Vec<usize> = (0..n).map(|i| (i * 17 + 5) % n).collect();
    order.dedup();
    assert_eq!(order.len(), n, "a permutation");
    order.into_iter().map(|i| files[i].clone()).collect()
}

/// (device, rule, window start) of each alert received, with how often.
fn received(alerts: &[serde_json::Value]) -> BTreeMap<(String, String, String), usize> {
    let mut out = BTreeMap::new();
    for a in alerts {
        let key = (
            a["device_id"].as_str().unwrap_or_default().to_owned(),
            a["rule"].as_str().unwrap_or_default().to_owned(),
            a["window_start"].as_str().unwrap_or_default().to_owned(),
        );
        *out.entry(key).or_default() += 1;
    }
    out
}

/// A worker with `rules` (`FLEETWATCH_ALERT_RULES`).
fn worker_with(stack: &Stack, rules: &str) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    worker_on(stack, &stack.clients, rules)
}

/// A worker with `rules` on `clients` (the stack's, or through a proxy).
fn worker_on(
    stack: &Stack,
    clients: &fleetwatch::aws::Clients,
    rules: &str,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let settings = common::worker_settings(
        stack,
        &[
            "--alert-topic-arn",
            &stack.resources.topic_arn,
            "--alert-rules",
            rules,
            "--maintenance-alert-score",
            "off",
            "--concurrency",
            "2",
            "--visibility-timeout",
            "60s",
            "--shutdown-grace",
            "5s",
        ],
    );
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn({
        let worker = common::build_worker(&settings, clients).into_worker(Default::default());
        let shutdown = shutdown.clone();
        async move {
            let _ = worker.run(shutdown).await;
        }
    });
    (shutdown, handle)
}

/// A worker with both rules.
fn worker(stack: &Stack) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    worker_with(stack, &format!("{RISES}, {SUSTAINED}"))
}

async fn processed(n: usize) {
    wait_for(&format!("{n} objects processed"), WAIT, || async {
        (metric(mx::OBJECTS_PROCESSED, &[("outcome", "ok")]) >= n as f64).then_some(())
    })
    .await;
}

fn queries() -> f64 {
    metric(
        mx::AWS_REQUESTS,
        &[("service", "dynamodb"), ("operation", "Query")],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windowed_rules_alert_alike_however_the_readings_are_split_and_ordered() {
    common::install_metrics();
    let moto = Moto::start();
    let stack = Stack::create(&moto).await;
    let (shutdown, handle) = worker(&stack);

    // Each delivery, one file processed after the other: its own pair of
    // vehicles, one breaking the rules (…-A), one only nearly (…-B).
    type Arrange = fn(Files) -> Files;
    let keep: Arrange = |f| f;
    let reverse: Arrange = |mut f| {
        f.reverse();
        f
    };
    let cases: [(&str, bool, Arrange); 4] = [
        ("ONEFILE", true, keep),
        ("MINUTES", false, keep),
        ("MINUTES-REV", false, reverse),
        ("MINUTES-SHUF", false, shuffle),
    ];
    let mut objects = 0;
    let mut queries_per_object = Vec::new();
    for (case, whole, arrange) in cases {
        let (a, b) = (format!("{case}-A"), format!("{case}-B"));
        let before = queries();
        let files = arrange(files(&[(&a, true), (&b, false)], whole));
        let count = files.len();
        for (n, file) in files.into_iter().enumerate() {
            stack
                .put_object(&format!("{case}/part-{n:02}.jsonl"), file.join("\n"))
                .await;
            objects += 1;
            processed(objects).await;
        }
        queries_per_object.push((case, (queries() - before) / count as f64));
    }
    wait_for("the queue to drain", WAIT, || async {
        (stack.queue_depth().await == (0, 0)).then_some(())
    })
    .await;
    let got = received(&stack.drain_alerts().await);

    // The single file is the reference, and it alerts where the readings
    // say: the climb in the 23:00 window, the low pressure in 23:15's.
    let of = |device: &str| -> Vec<(String, String, usize)> {
        got.iter()
            .filter(|((d, _, _), _)| d == device)
            .map(|((_, r, w), n)| (r.clone(), w.clone(), *n))
            .collect()
    };
    let reference = of("ONEFILE-A");
    assert_eq!(
        reference,
        [
            (RISES.to_owned(), "2025-10-19T23:00:00.000Z".to_owned(), 1),
            (
                SUSTAINED.to_owned(),
                "2025-10-19T23:15:00.000Z".to_owned(),
                1
            ),
        ],
        "{got:#?}"
    );
    for (case, ..) in cases {
        assert_eq!(of(&format!("{case}-A")), reference, "{case}: {got:#?}");
    }
    // Nearly breaking is not breaking, delivered whole or a minute at a
    // time in order or reversed (each file then adds to a contiguous span).
    for case in ["ONEFILE", "MINUTES", "MINUTES-REV"] {
        assert_eq!(of(&format!("{case}-B")), [], "{case}: {got:#?}");
    }
    // Shuffled, a file holding a good pressure reading can come after the
    // low readings around it: the run seen then is not the run there was
    // (the README says so). The slow climb never alerts: a rate of change
    // only gains breaches as readings arrive.
    eprintln!("shuffled, nearly breaking: {:?}", of("MINUTES-SHUF-B"));
    assert!(
        of("MINUTES-SHUF-B").iter().all(|(rule, ..)| rule != RISES),
        "{got:#?}"
    );
    // One Query per device per object (two devices in every file).
    for (case, per_object) in &queries_per_object {
        eprintln!("{case}: {per_object} Query calls per object");
        assert_eq!(*per_object, 2.0, "{case}");
    }
    shutdown.cancel();
    let _ = handle.await;
}

/// Two workers, every one-minute file uploaded at once: the objects are
/// processed concurrently, in no set order, and the alerts are the single
/// file's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_processing_the_files_at_once_alert_as_one_file() {
    common::install_metrics();
    let moto = Moto::start();
    let stack = Stack::create(&moto).await;
    let workers = [worker(&stack), worker(&stack)];
    let files = shuffle(files(&[("RACE-A", true), ("RACE-B", false)], false));
    let count = files.len();
    for (n, file) in files.into_iter().enumerate() {
        stack
            .put_object(&format!("race/part-{n:02}.jsonl"), file.join("\n"))
            .await;
    }
    processed(count).await;
    wait_for("the queue to drain", WAIT, || async {
        (stack.queue_depth().await == (0, 0)).then_some(())
    })
    .await;
    let got = received(&stack.drain_alerts().await);
    let a: Vec<_> = got
        .iter()
        .filter(|((d, ..), _)| d == "RACE-A")
        .map(|((_, r, w), n)| (r.as_str(), w.as_str(), *n))
        .collect();
    assert_eq!(
        a,
        [
            (RISES, "2025-10-19T23:00:00.000Z", 1),
            (SUSTAINED, "2025-10-19T23:15:00.000Z", 1),
        ],
        "{got:#?}"
    );
    assert!(
        !got.keys().any(|(d, r, _)| d == "RACE-B" && r == RISES),
        "{got:#?}"
    );
    for (shutdown, handle) in workers {
        shutdown.cancel();
        let _ = handle.await;
    }
}

/// A sustained breach can depend on a reading up to twice the duration
/// before it: low at minute 1 (file A), 5 and 8.5 (file B), the gaps under
/// 5 minutes, so the run reaches 5 minutes only at 8.5 (7.5 minutes). File
/// B processed first sees a run of 3.5 minutes; file A, processed after,
/// must report the breach at 8.5, 7.5 minutes past its own last reading (more than the
/// longest window: the only rule is the sustained one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sustained_breach_after_the_object_s_last_reading_is_reported_by_it() {
    common::install_metrics();
    let moto = Moto::start();
    let stack = Stack::create(&moto).await;
    let (shutdown, handle) = worker_with(&stack, SUSTAINED);
    let line = |seconds: i64, oil: u32| {
        format!(
            "{{\"device_id\":\"LATE\",\"timestamp\":{},\"oil_pressure_kpa\":{oil}}}",
            T0 + seconds
        )
    };
    let b = [line(300, 120), line(510, 120), line(540, 300)];
    stack.put_object("late/b.jsonl", b.join("\n")).await;
    processed(1).await;
    assert_eq!(received(&stack.drain_alerts().await).len(), 0);
    let a = [line(0, 300), line(60, 120)];
    stack.put_object("late/a.jsonl", a.join("\n")).await;
    processed(2).await;
    let got = wait_for("the sustained alert", WAIT, || async {
        let got = received(&stack.drain_alerts().await);
        (!got.is_empty()).then_some(got)
    })
    .await;
    assert_eq!(
        got.into_iter().collect::<Vec<_>>(),
        [(
            (
                "LATE".to_owned(),
                SUSTAINED.to_owned(),
                "2025-10-19T22:45:00.000Z".to_owned()
            ),
            1
        )]
    );
    shutdown.cancel();
    let _ = handle.await;
}

/// The read-back is a held step: while DynamoDB refuses every `Query`, the
/// object's alerts wait (nothing is published, the message is not
/// deleted); once it answers, they go out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_read_back_holds_the_alerts_until_dynamodb_answers() {
    common::install_metrics();
    let moto = Moto::start();
    let stack = Stack::create(&moto).await;
    let proxy = FaultProxy::start(
        &moto.endpoint,
        FaultConfig::new(13).operation("dynamodb", "Query", 1.0),
    )
    .await;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&proxy.endpoint)
        .region(aws_config::Region::new(common::REGION))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await;
    let clients = fleetwatch::aws::Clients::new(&config, true);
    let (shutdown, handle) = worker_on(&stack, &clients, SUSTAINED);
    let file = files(&[("HELD-A", true)], true).remove(0);
    stack.put_object("held/all.jsonl", file.join("\n")).await;
    wait_for("Query refused three times", WAIT, || async {
        (proxy.injected("dynamodb") >= 3).then_some(())
    })
    .await;
    assert_eq!(stack.drain_alerts().await.len(), 0, "no alert while held");
    assert_eq!(metric(mx::OBJECTS_PROCESSED, &[("outcome", "ok")]), 0.0);
    proxy.heal();
    processed(1).await;
    // Held in place, not redelivered: the data message was received once
    // (besides S3's test event), and nothing went to the dead-letter queue.
    let receives = metric(mx::SQS_MESSAGES_RECEIVED, &[]);
    let test_events = metric(mx::SQS_MESSAGES_IGNORED, &[("reason", "test_event")]);
    assert_eq!(
        receives - test_events,
        1.0,
        "received {receives}, test events {test_events}"
    );
    assert_eq!(
        common::queue_depth(&stack.clients, &stack.resources.dead_letter_queue_url).await,
        (0, 0)
    );
    let got = wait_for("the alert", WAIT, || async {
        let got = received(&stack.drain_alerts().await);
        (!got.is_empty()).then_some(got)
    })
    .await;
    assert_eq!(
        got.into_keys().collect::<Vec<_>>(),
        [(
            "HELD-A".to_owned(),
            SUSTAINED.to_owned(),
            "2025-10-19T23:15:00.000Z".to_owned()
        )]
    );
    shutdown.cancel();
    let _ = handle.await;
}
