//! The delivery promise under crashes and faults, with the real binary:
//! a fleet of 60 objects (3 172 readings) goes through the worker while it
//! is SIGKILLed and restarted several times, while a proxy
//! (`common::fault_proxy`) injects 5xx and throttling errors, latency and
//! lost responses on every service, and through three workers on one
//! queue killed at random while faults are injected. Each time, at the end
//! the table holds exactly the fleet's readings (none missing, none extra),
//! the queue is empty, nothing was dead-lettered, every cooldown window
//! holding a breach was alerted, and no alert was published twice except in
//! the alert ledger's documented publish→confirm window. (Outages of one
//! service for minutes are `tests/outages.rs`; hangs are `tests/hangs.rs`.)

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::Select;
use common::fault_proxy::{FaultConfig, FaultProxy};
use common::process::{Bootstrapped, WorkerProcess, bootstrap};
use common::{Moto, Stack, parse_metric, queue_depth, wait_for};
use fleetwatch::simulate::{self, SimConfig, SimFormat};

/// Simulated engines run at ~70–95 °C in this fleet: 11 of its 60 objects
/// break this rule (the default `> 100` would never fire).
const RULE: &str = "engine_temp_c > 93";
const WAIT: Duration = Duration::from_secs(90);
/// The end state must be reached within this, counted from the last start.
const SETTLE: Duration = Duration::from_secs(170);
/// Items of the alert ledger's key space, not readings.
const LEDGER_PREFIX: &str = "alert#";

/// The fleet: its objects and exactly the keys they must produce.
struct Fleet {
    /// (object key, body); every third body gzip-compressed.
    objects: Vec<(String, Vec<u8>)>,
    keys: BTreeSet<(String, String)>,
    /// Devices with at least one reading breaking `RULE`.
    breaching_devices: BTreeSet<String>,
    /// (device, start of the 15-minute cooldown window) of every window
    /// holding a reading that breaks `RULE`: each must be alerted once.
    breaching_windows: BTreeSet<(String, String)>,
}

/// `fleetwatch simulate --vehicles 10 --hours 6 --interval 60s --format jsonl
/// --seed 7 --start 2025-10-19T10:00:00Z` (a working day: at night the
/// vehicles are parked and send little), generated in-process.
fn fleet() -> Fleet {
    let cfg = SimConfig {
        vehicles: 10,
        hours: 6.0,
        interval_secs: 60,
        seed: 7,
        format: SimFormat::JsonLines,
        gzip: false,
        window_secs: 3600,
        start_unix_secs: 1_760_868_000, // 2025-10-19T10:00:00Z
        ..SimConfig::default()
    };
    let threshold: f64 = RULE.rsplit(' ').next().unwrap().parse().unwrap();
    let mut fleet = Fleet {
        objects: Vec::new(),
        keys: BTreeSet::new(),
        breaching_devices: BTreeSet::new(),
        breaching_windows: BTreeSet::new(),
    };
    let cooldown = fleetwatch::alerts::Cooldown::default();
    let mut readings = 0;
    for (i, file) in simulate::files(&cfg).unwrap().enumerate() {
        let text = std::str::from_utf8(&file.bytes).unwrap();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let device = v["device_id"].as_str().unwrap().to_owned();
            let at =
                fleetwatch::telemetry::parse_timestamp(v["timestamp"].as_str().unwrap()).unwrap();
            let ts = at.to_string();
            if v["engine_temp_c"].as_f64().is_some_and(|t| t > threshold) {
                fleet.breaching_devices.insert(device.clone());
                fleet
                    .breaching_windows
                    .insert((device.clone(), cooldown.window_start(at).to_string()));
            }
            assert!(fleet.keys.insert((device, ts)), "duplicate reading");
            readings += 1;
        }
        let key = format!("incoming/{}", file.key);
        if i % 3 == 2 {
            fleet
                .objects
                .push((format!("{key}.gz"), common::gzip(&file.bytes)));
        } else {
            fleet.objects.push((key, file.bytes));
        }
    }
    assert!(fleet.objects.len() >= 50, "{}", fleet.objects.len());
    assert!(readings >= 3000, "{readings}");
    assert!(
        !fleet.breaching_devices.is_empty(),
        "no reading breaks {RULE}"
    );
    fleet
}

/// Starts the worker with every AWS call going to `endpoint` (the emulator
/// or the fault proxy), the test's alert rule, and a 10 s visibility timeout
/// (the minimum) so killed messages come back quickly.
fn start_worker(moto: &Moto, endpoint: &str, setup: &Bootstrapped) -> WorkerProcess {
    WorkerProcess::start(
        moto,
        setup,
        &[
            ("AWS_ENDPOINT_URL", endpoint),
            ("FLEETWATCH_ALERT_RULES", RULE),
            ("FLEETWATCH_VISIBILITY_TIMEOUT", "10s"),
        ],
    )
}

async fn upload(stack: &Stack, fleet: &Fleet) {
    for (key, body) in &fleet.objects {
        stack.put_object(key, body.clone()).await;
    }
}

/// Readings stored so far (ledger items excluded), counted without
/// fetching them.
async fn stored_count(stack: &Stack) -> usize {
    let mut total = 0;
    let mut start = None;
    loop {
        let page = common::patient(&stack.clients.dynamodb)
            .scan()
            .table_name(&stack.resources.table)
            .select(Select::Count)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        total += page.count() as usize;
        start = page.last_evaluated_key;
        if start.is_none() {
            return total;
        }
    }
}

/// The reading keys in the table, the alert ledger's key space excluded.
async fn reading_keys(stack: &Stack) -> BTreeSet<(String, String)> {
    stack
        .items()
        .await
        .into_keys()
        .filter(|(device, _)| !device.starts_with(LEDGER_PREFIX))
        .collect()
}

/// Waits for the end state and checks it: the table holds exactly the
/// fleet's keys, the queue has nothing visible or in flight, nothing was
/// dead-lettered. Returns every alert published.
async fn assert_end_state(stack: &Stack, fleet: &Fleet) -> Vec<Published> {
    let dlq = stack.resources.dead_letter_queue_url.clone();
    let keys = wait_for(
        "every reading stored and the queue empty",
        SETTLE,
        || async {
            let dead = queue_depth(&stack.clients, &dlq).await;
            assert_eq!(dead, (0, 0), "messages were dead-lettered");
            if stack.queue_depth().await != (0, 0) {
                return None;
            }
            let keys = reading_keys(stack).await;
            (keys.len() >= fleet.keys.len()).then_some(keys)
        },
    )
    .await;
    let missing: Vec<_> = fleet.keys.difference(&keys).take(10).collect();
    let extra: Vec<_> = keys.difference(&fleet.keys).take(10).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} stored, {} expected; missing (first 10): {missing:?}; extra (first 10): {extra:?}",
        keys.len(),
        fleet.keys.len()
    );
    // Still settled: nothing came back from a late redelivery.
    assert_eq!(stack.queue_depth().await, (0, 0));
    assert_eq!(queue_depth(&stack.clients, &dlq).await, (0, 0));

    // Alerts are published before the message is deleted and SNS delivers
    // to the inbox synchronously in the emulator: all are there now.
    drain_alerts(stack).await
}

/// One alert as a subscriber got it.
struct Published {
    /// The `sqs` JSON document.
    alert: serde_json::Value,
    /// When SNS accepted it (the envelope's `Timestamp`), Unix ms.
    at_ms: i64,
}

/// The breach an alert is about: (device, rule, window).
type BreachId = (String, String, String);

/// Reads (and deletes) every alert in the inbox, with the time SNS
/// accepted it.
async fn drain_alerts(stack: &Stack) -> Vec<Published> {
    stack
        .drain_alerts()
        .await
        .into_iter()
        .map(|alert| {
            assert!(
                alert.get("raw").is_none(),
                "the sqs form of an alert is JSON: {alert}"
            );
            let at_ms = alert["_timestamp"]
                .as_str()
                .and_then(|t| fleetwatch::telemetry::parse_timestamp(t).ok())
                .map(|t| t.unix_millis())
                .expect("an SNS Timestamp");
            Published { alert, at_ms }
        })
        .collect()
}

/// Groups alerts by breach. The identity is (device, rule, `window_start`)
/// when the alert carries `window_start` (the alert ledger's key);
/// otherwise (device, rule, `first_timestamp`), which a replay of the same
/// object reproduces exactly. Each group's publication times are sorted.
/// Also checks that every device that broke the rule was alerted.
fn group_alerts(alerts: &[Published], fleet: &Fleet) -> (BTreeMap<BreachId, Vec<i64>>, String) {
    assert!(!alerts.is_empty(), "no alert was published");
    let with_window = alerts
        .iter()
        .filter(|p| !p.alert["window_start"].is_null())
        .count();
    let mut groups: BTreeMap<BreachId, Vec<i64>> = BTreeMap::new();
    for p in alerts {
        let a = &p.alert;
        let field = |k: &str| match &a[k] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        };
        let window = if a["window_start"].is_null() {
            field("first_timestamp")
        } else {
            field("window_start")
        };
        groups
            .entry((field("device_id"), field("rule"), window))
            .or_default()
            .push(p.at_ms);
    }
    for times in groups.values_mut() {
        times.sort_unstable();
    }
    let alerted: BTreeSet<String> = alerts
        .iter()
        .filter(|p| p.alert["kind"] == "safety" && p.alert["rule"] == RULE)
        .filter_map(|p| p.alert["device_id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        alerted, fleet.breaching_devices,
        "every device that broke {RULE} is alerted, and only those"
    );
    let windows: BTreeSet<(String, String)> = groups
        .keys()
        .filter(|(_, rule, _)| rule == RULE)
        .map(|(device, _, window)| (device.clone(), window.clone()))
        .collect();
    let missing: Vec<_> = fleet.breaching_windows.difference(&windows).collect();
    let extra: Vec<_> = windows.difference(&fleet.breaching_windows).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "every window holding a breach is alerted, and only those: missing {missing:?}, extra {extra:?}"
    );
    let note = format!(
        "{} alerts for {} breaches, keyed by {}",
        alerts.len(),
        groups.len(),
        if with_window == alerts.len() {
            "window_start"
        } else if with_window == 0 {
            "first_timestamp (no window_start in the alerts yet)"
        } else {
            "window_start where present, else first_timestamp"
        }
    );
    (groups, note)
}

/// Asserts that no breach was alerted twice unless `explained` accepts
/// the duplicate (the documented crash window); returns the accepted ones.
fn assert_alerted_once(
    groups: &BTreeMap<BreachId, Vec<i64>>,
    explained: impl Fn(&BreachId, &[i64]) -> bool,
) -> Vec<BreachId> {
    let duplicates: Vec<_> = groups.iter().filter(|(_, t)| t.len() > 1).collect();
    let unexplained: Vec<_> = duplicates
        .iter()
        .filter(|(id, times)| !explained(id, times))
        .collect();
    assert!(
        unexplained.is_empty(),
        "{} of {} breaches were alerted more than once with no crash to explain it \
         ((device, rule, window) → SNS publication times, Unix ms): {unexplained:#?}",
        unexplained.len(),
        groups.len()
    );
    duplicates.into_iter().map(|(id, _)| id.clone()).collect()
}

/// The ledger's one documented duplicate window: a worker killed after SNS
/// accepted an alert and before its ledger confirmation landed. Every copy
/// but the last must have been accepted by SNS at most
/// [`CONFIRM_WINDOW_MS`] before a SIGKILL (the confirmation follows the
/// publication within milliseconds, a few hundred under injected latency
/// and retried faults) and not after it, allowing [`STAMP_SKEW_MS`] for the
/// emulator stamping a publication it received just before the kill.
fn in_publish_confirm_window(times: &[i64], kill_times_ms: &[i64]) -> bool {
    times[..times.len() - 1].iter().all(|&t| {
        kill_times_ms
            .iter()
            .any(|&k| (k - CONFIRM_WINDOW_MS..=k + STAMP_SKEW_MS).contains(&t))
    })
}

const CONFIRM_WINDOW_MS: i64 = 2_000;
const STAMP_SKEW_MS: i64 = 500;

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// splitmix64, for the kill schedule.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_nothing_and_duplicates_nothing() {
    /// SIGKILLs at most; at least `MIN_KILLS` must land while work is left.
    const KILLS: usize = 5;
    const MIN_KILLS: usize = 3;
    let started = Instant::now();
    let fleet = fleet();
    let moto = Moto::start();
    let setup = bootstrap(&moto);
    let stack = setup.stack(&moto).await;
    upload(&stack, &fleet).await;

    let mut rng = Rng(7);
    let mut kills_with_work_left = 0;
    let mut kill_times_ms = Vec::new();
    for round in 1..=KILLS {
        if stack.queue_depth().await == (0, 0) {
            break; // nothing left to interrupt
        }
        let mut worker = start_worker(&moto, &moto.endpoint, &setup);
        // Kill only once this worker is busy: it has taken a message. (The
        // previous worker's messages come back after their 10 s visibility.)
        let busy = wait_for("the worker to take a message", WAIT, || async {
            if let Some(text) = worker.metrics().await
                && parse_metric(&text, "fleetwatch_sqs_messages_received_total", &[]) > 0.0
            {
                return Some(true);
            }
            (stack.queue_depth().await == (0, 0)).then_some(false)
        })
        .await;
        if !busy {
            break;
        }
        // The random moment: anywhere in the next 1.5 s of its work.
        tokio::time::sleep(Duration::from_millis(rng.below(1500))).await;
        let depth = stack.queue_depth().await;
        kill_times_ms.push(unix_ms());
        worker.kill();
        let stored = stored_count(&stack).await;
        eprintln!(
            "kill {round}: queue {depth:?} just before; {stored} items stored after \
             (of {} readings); at {:?}",
            fleet.keys.len(),
            started.elapsed()
        );
        if depth != (0, 0) {
            kills_with_work_left += 1;
        }
    }
    assert!(
        kills_with_work_left >= MIN_KILLS,
        "only {kills_with_work_left} SIGKILLs came before the fleet was done"
    );

    let mut last = start_worker(&moto, &moto.endpoint, &setup);
    let alerts = assert_end_state(&stack, &fleet).await;
    let (groups, note) = group_alerts(&alerts, &fleet);
    eprintln!("SIGKILLs at (Unix ms): {kill_times_ms:?}");
    let accepted = assert_alerted_once(&groups, |_, times| {
        in_publish_confirm_window(times, &kill_times_ms)
    });
    assert!(last.terminate().await.success(), "graceful exit");
    eprintln!(
        "crash test: {} SIGKILLs, {note}; duplicates within the documented \
         publish→confirm crash window: {accepted:?}; {:?} in all",
        kill_times_ms.len(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_and_latency_on_every_service_lose_nothing() {
    let started = Instant::now();
    let fleet = fleet();
    let moto = Moto::start();
    let setup = bootstrap(&moto);
    let stack = setup.stack(&moto).await;
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::new(11)).await;
    let mut worker = start_worker(&moto, &proxy.endpoint, &setup);
    // Faults start once the worker is up: its start-up check
    // (`preflight::check`) exits on any error that outlasts the SDK's
    // retries, transient or not.
    worker.wait_ready().await;
    proxy.set_config(
        FaultConfig::new(11)
            .service("s3", 0.15)
            .service("sqs", 0.15)
            .service("dynamodb", 0.15)
            .service("sns", 0.2)
            .latency(0.2, Duration::from_millis(150))
            .lost_batch_writes(0.05),
    );
    upload(&stack, &fleet).await;

    let alerts = assert_end_state(&stack, &fleet).await;
    let (groups, note) = group_alerts(&alerts, &fleet);
    // No crash here, so no duplicate is expected, except (the ledger's
    // confirm is not retried beyond the SDK's attempts) after a failed
    // confirmation `UpdateItem` of that very alert: the redelivered message
    // then finds a stale `pending` claim and publishes again.
    let injected = proxy.injected_requests();
    let accepted = assert_alerted_once(&groups, |(device, rule, window), _| {
        confirmation_failed(&injected, device, rule, window)
    });
    if !accepted.is_empty() {
        eprintln!(
            "fault test: alerts published twice after a failed ledger confirmation: {accepted:?}"
        );
    }
    let stats = proxy.all_stats();
    eprintln!("fault test: {note}, {:?} in all", started.elapsed());
    for (service, s) in &stats {
        eprintln!("  {service}: {s:?}");
    }
    for service in ["s3", "sqs", "dynamodb", "sns"] {
        assert!(
            proxy.injected(service) > 0,
            "no fault was injected on {service}: {:?}",
            proxy.stats(service)
        );
    }
    // The worker's calls all went through the proxy.
    assert!(proxy.stats("s3").forwarded >= fleet.objects.len() as u64);
    proxy.heal();
    let text = worker.metrics().await.expect("the worker's metrics");
    let failed: Vec<_> = ["s3", "dynamodb", "sns", "inference"]
        .iter()
        .map(|r| {
            let n = parse_metric(
                &text,
                "fleetwatch_sqs_messages_failed_total",
                &[("reason", r)],
            );
            format!("{r}={}", n + 0.0)
        })
        .collect();
    eprintln!(
        "  worker: messages failed {failed:?}, receive errors {}, received {}, deleted {}",
        parse_metric(&text, "fleetwatch_sqs_receive_errors_total", &[]) + 0.0,
        parse_metric(&text, "fleetwatch_sqs_messages_received_total", &[]),
        parse_metric(&text, "fleetwatch_sqs_messages_deleted_total", &[]),
    );
    assert!(worker.terminate().await.success(), "graceful exit");
}

/// Three workers on one queue, each SIGKILLed at random moments and
/// restarted, while every service fails some requests (5xx, throttling,
/// lost `BatchWriteItem` responses) and answers late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_killed_at_random_under_faults_lose_nothing() {
    const WORKERS: usize = 3;
    const KILLS: usize = 6;
    let started = Instant::now();
    let fleet = fleet();
    let moto = Moto::start();
    let setup = bootstrap(&moto);
    let stack = setup.stack(&moto).await;
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::new(17)).await;
    let mut workers: Vec<WorkerProcess> = (0..WORKERS)
        .map(|_| start_worker(&moto, &proxy.endpoint, &setup))
        .collect();
    for w in &workers {
        w.wait_ready().await;
    }
    let faults = FaultConfig::new(17)
        .service("s3", 0.1)
        .service("sqs", 0.1)
        .service("dynamodb", 0.1)
        .service("sns", 0.1)
        .latency(0.2, Duration::from_millis(100))
        .lost_batch_writes(0.05);
    proxy.set_config(faults);

    // The fleet arrives in batches while the workers are killed: a kill
    // after each batch, at a random moment of its processing.
    let mut rng = Rng(17);
    let mut kill_times_ms = Vec::new();
    let batch = fleet.objects.len().div_ceil(KILLS);
    for (round, objects) in fleet.objects.chunks(batch).enumerate() {
        for (key, body) in objects {
            stack.put_object(key, body.clone()).await;
        }
        tokio::time::sleep(Duration::from_millis(200 + rng.below(1200))).await;
        let victim = rng.below(WORKERS as u64) as usize;
        let depth = stack.queue_depth().await;
        kill_times_ms.push(unix_ms());
        workers[victim].kill();
        eprintln!(
            "kill {}: worker {victim}; queue {depth:?} just before; {} items stored; at {:?}",
            round + 1,
            stored_count(&stack).await,
            started.elapsed()
        );
        workers[victim] = start_worker(&moto, &proxy.endpoint, &setup);
    }

    let alerts = assert_end_state(&stack, &fleet).await;
    let (groups, note) = group_alerts(&alerts, &fleet);
    let injected = proxy.injected_requests();
    let accepted = assert_alerted_once(&groups, |(device, rule, window), times| {
        in_publish_confirm_window(times, &kill_times_ms)
            || confirmation_failed(&injected, device, rule, window)
    });
    proxy.heal();
    for w in &mut workers {
        assert!(w.terminate().await.success(), "graceful exit");
    }
    eprintln!(
        "three workers: {} SIGKILLs, {note}; duplicates in the publish→confirm window: {accepted:?}; {:?} in all",
        kill_times_ms.len(),
        started.elapsed()
    );
}

/// The other way into the publish→confirm window without a crash: every
/// attempt at the ledger's confirmation of that very alert failed.
fn confirmation_failed(
    injected: &[common::fault_proxy::InjectedRecord],
    device: &str,
    rule: &str,
    window: &str,
) -> bool {
    injected.iter().any(|r| {
        r.operation == "UpdateItem"
            && r.body.contains(&format!("alert#{device}"))
            && r.body.contains(&format!("{rule}#{window}"))
    })
}

/// SNS accepts the alert, then the ledger's confirmation (`UpdateItem`)
/// fails beyond the SDK's retries for a while: the confirmation is retried
/// (for up to half the lease) instead of giving up, so the redelivered
/// message finds the alert sent and publishes nothing twice. (Before that
/// retry, this published the alert again.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_ledger_confirmation_does_not_publish_the_alert_again() {
    let moto = Moto::start();
    let setup = bootstrap(&moto);
    let stack = setup.stack(&moto).await;
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::new(3)).await;
    let mut worker = start_worker(&moto, &proxy.endpoint, &setup);
    worker.wait_ready().await;
    // Only the ledger's confirmations fail (claims are PutItem, readings
    // BatchWriteItem).
    proxy.set_config(FaultConfig::new(3).operation("dynamodb", "UpdateItem", 1.0));
    stack
        .put_object(
            "incoming/hot.jsonl",
            r#"{"device_id":"HOT01","timestamp":"2025-10-19T12:00:00Z","engine_temp_c":120}"#,
        )
        .await;
    // SNS accepted the alert and every attempt to confirm it failed.
    wait_for("a failed confirmation", WAIT, || async {
        let failed = proxy
            .injected_requests()
            .iter()
            .filter(|r| r.operation == "UpdateItem")
            .count();
        (failed >= 3 && proxy.stats("sns").forwarded >= 1).then_some(())
    })
    .await;
    proxy.heal();
    wait_for("the message to be done", SETTLE, || async {
        (stack.queue_depth().await == (0, 0)).then_some(())
    })
    .await;
    let alerts = drain_alerts(&stack).await;
    let hot = alerts
        .iter()
        .filter(|p| p.alert["device_id"] == "HOT01")
        .count();
    assert_eq!(hot, 1, "the alert for one breach was published {hot} times");
    assert!(worker.terminate().await.success());
}
