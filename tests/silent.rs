//! Silent vehicles against the emulator, with three real workers (each
//! built by the binary's own builder from the command-line settings, with
//! its own clients, running its loop and its alarm sweeper) on the same
//! tables: a vehicle that reports and then goes quiet raises exactly one
//! `silent` alarm and one notification, resolves with one "resolved"
//! notification when it reports again and re-opens when it goes quiet
//! again; a vehicle quiet for over a day raises nothing; acknowledging a
//! silent alarm stops its notifications.

mod common;

use std::time::Duration;

use common::{Moto, Stack, wait_for};
use fleetwatch::alarms::{AlarmStore, State, Transition};
use fleetwatch::telemetry::Timestamp;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The vehicle's `silent` alarm rule.
const RULE: &str = fleetwatch::alarms::silence::RULE;

/// Three workers, each with its loop and its sweeper.
struct Fleet {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Fleet {
    async fn start(moto: &Moto, stack: &Stack, args: &[&str]) -> Fleet {
        let mut all = vec![
            "--alert-topic-arn",
            stack.resources.topic_arn.as_str(),
            "--alarm-sweep-interval",
            "200ms",
            "--inference",
            "none",
            "--visibility-timeout",
            "30s",
            "--shutdown-grace",
            "5s",
        ];
        all.extend(args);
        let settings = common::worker_settings(stack, &all);
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let clients = moto.clients().await;
            let mut built = common::build_worker(&settings, &clients);
            let sweeper = built.sweeper.take().expect("a worker with a topic sweeps");
            tasks.push(tokio::spawn(sweeper.run(stop.clone())));
            let worker = built.into_worker(Default::default());
            tasks.push(tokio::spawn(worker.run(stop.clone())));
        }
        Fleet { stop, tasks }
    }

    async fn stop(self) {
        self.stop.cancel();
        for task in self.tasks {
            task.await.unwrap();
        }
    }
}

fn store(stack: &Stack) -> AlarmStore {
    AlarmStore::new(
        stack.clients.dynamodb.clone(),
        stack.resources.alarm_table.clone(),
    )
}

/// One reading of `device`, `ago` before now.
fn reading(device: &str, ago: Duration) -> String {
    let at = Timestamp::from_unix_millis(Timestamp::now().unix_millis() - ago.as_millis() as i64);
    format!("{{\"device_id\":\"{device}\",\"timestamp\":\"{at}\",\"engine_temp_c\":90}}\n")
}

/// The fleet status record's `last_reading_at` of `device`, once stored.
async fn last_reading_at(stack: &Stack, device: &str) -> Option<String> {
    let out = stack
        .clients
        .dynamodb
        .get_item()
        .table_name(&stack.resources.table)
        .key(
            "device_id",
            aws_sdk_dynamodb::types::AttributeValue::S("fleet#status".into()),
        )
        .key(
            "timestamp",
            aws_sdk_dynamodb::types::AttributeValue::S(device.into()),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.item.map(|item| common::s(&item, "last_reading_at"))
}

/// Waits until exactly `n` notifications arrived (failing on more).
async fn notifications(stack: &Stack, n: usize) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut got = Vec::new();
    while got.len() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {n} notification(s): {got:#?}"
        );
        got.extend(stack.drain_alerts().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(got.len(), n, "more than {n} notification(s): {got:#?}");
    got
}

/// Nothing more arrives while every worker sweeps several more times.
async fn nothing_more(stack: &Stack) {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let more = stack.drain_alerts().await;
    assert!(more.is_empty(), "unexpected notifications: {more:#?}");
}

/// The (`kind`, `transition`, episode) of a notification, checking that
/// the JSON and the message attributes agree.
fn describe(n: &serde_json::Value) -> (String, String, u64) {
    let kind = n["kind"].as_str().unwrap_or_default().to_owned();
    assert_eq!(n["_attributes"]["kind"]["Value"], kind.as_str(), "{n:#}");
    let transition = n["alarm"]["transition"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        n["_attributes"]["transition"]["Value"],
        transition.as_str(),
        "{n:#}"
    );
    assert_eq!(n["device_id"], "VHC001", "{n:#}");
    (
        kind,
        transition,
        n["alarm"]["episode"].as_u64().unwrap_or(0),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_vehicle_with_exactly_one_alarm_across_three_workers() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("fleetwatch=debug")
        .try_init();
    let moto = Moto::start();
    let stack = Stack::create(&moto).await;
    let alarms = store(&stack);
    // A day-long cooldown: one notification per alarm state here, however
    // often the workers sweep. 15 s of silence: time enough for the
    // reading that ends it to be stored and seen before it is old again.
    let fleet = Fleet::start(
        &moto,
        &stack,
        &["--silent-after", "15s", "--alert-cooldown", "24h"],
    )
    .await;

    // VHC001 reported 30 s ago, then nothing: silent as soon as its reading
    // is stored. OLD001 last reported 25 hours ago: nothing is raised.
    let mut body = reading("VHC001", Duration::from_secs(30));
    body.push_str(&reading("OLD001", Duration::from_secs(25 * 3600)));
    stack.put_object("first.jsonl", body).await;

    let opened = notifications(&stack, 1).await;
    assert_eq!(describe(&opened[0]), ("silent".into(), "opened".into(), 1));
    let last = last_reading_at(&stack, "VHC001").await.unwrap();
    let subject = opened[0]["_subject"].as_str().unwrap();
    assert!(
        subject.starts_with("Fleet alert: VHC001 silent for ")
            && subject.ends_with(&format!("(last reading {last})")),
        "{subject}"
    );
    assert_eq!(opened[0]["last_reading_at"], last.as_str());
    assert_eq!(opened[0]["_attributes"]["alarm_state"]["Value"], "ACTIVE");
    nothing_more(&stack).await;

    // One alarm, opened once, whatever the three workers did.
    let alarm = alarms.get("VHC001", RULE).await.unwrap().unwrap();
    assert_eq!(
        (alarm.state, alarm.episode, alarm.kind.as_str()),
        (State::Active, 1, "silent")
    );
    assert_eq!(alarm.last_breach_event, last);
    assert!(
        alarms.get("OLD001", RULE).await.unwrap().is_none(),
        "a vehicle quiet for over a day raises nothing"
    );
    assert!(last_reading_at(&stack, "OLD001").await.is_some());
    // `fleetwatch alarms list` shows it like any alarm.
    let listed = alarms_command(&stack, &["list", "--open"]).await;
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("VHC001") && l.contains("silent") && l.contains("ACTIVE")),
        "{listed}"
    );

    // It reports again: the alarm resolves, with one notification.
    stack
        .put_object("second.jsonl", reading("VHC001", Duration::ZERO))
        .await;
    let resolved = notifications(&stack, 1).await;
    assert_eq!(
        describe(&resolved[0]),
        ("silent".into(), "auto_resolved".into(), 1)
    );
    assert_eq!(resolved[0]["_attributes"]["alarm_state"]["Value"], "NORMAL");
    let alarm = alarms.get("VHC001", RULE).await.unwrap().unwrap();
    assert_eq!(
        (alarm.state, alarm.actor.as_str()),
        (State::Normal, "fleetwatch")
    );

    // Quiet again past the threshold: a second episode, opened once.
    let reopened = notifications(&stack, 1).await;
    assert_eq!(
        describe(&reopened[0]),
        ("silent".into(), "opened".into(), 2)
    );
    nothing_more(&stack).await;
    fleet.stop().await;

    let history = alarms.history("VHC001", RULE).await.unwrap();
    let steps: Vec<(Transition, State, &str)> = history
        .iter()
        .map(|h| (h.transition, h.to, h.actor.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            (Transition::Opened, State::Active, "fleetwatch"),
            (Transition::AutoResolved, State::Normal, "fleetwatch"),
            (Transition::Opened, State::Active, "fleetwatch"),
        ]
    );
    assert!(
        history[1]
            .note
            .as_deref()
            .is_some_and(|n| n.starts_with("reporting again")),
        "{history:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledging_a_silent_alarm_silences_its_reminders() {
    let moto = Moto::start();
    let stack = Stack::create(&moto).await;
    let alarms = store(&stack);
    // One-second cooldown windows: an unacknowledged silent alarm is
    // reminded every second.
    let fleet = Fleet::start(
        &moto,
        &stack,
        &["--silent-after", "2s", "--alert-cooldown", "1s"],
    )
    .await;
    stack
        .put_object("quiet.jsonl", reading("VHC001", Duration::from_secs(5)))
        .await;

    // Opened, then at least one reminder.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|(_, t, _): &(String, String, u64)| t == "reminder")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for the opening and a reminder: {seen:?}"
        );
        seen.extend(stack.drain_alerts().await.iter().map(describe));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen[0], ("silent".into(), "opened".into(), 1));
    assert_eq!(
        seen.iter().filter(|(_, t, _)| t == "opened").count(),
        1,
        "{seen:?}"
    );

    let acked = alarms_command(&stack, &["ack", "VHC001", RULE, "--note", "unit replaced"]).await;
    assert!(acked.contains("ACKNOWLEDGED"), "{acked}");
    let acked_at = fleetwatch::alarms::store::now_millis();

    // The workers keep recording the silence, window after window...
    wait_for(
        "breaches recorded two windows after the acknowledgement",
        Duration::from_secs(60),
        || {
            let alarms = &alarms;
            async move {
                let alarm = alarms.get("VHC001", RULE).await.unwrap()?;
                (alarm.last_breach_ms >= acked_at + 2_000).then_some(())
            }
        },
    )
    .await;
    // ...and notify none of them: what came after the acknowledgement was
    // decided before it (a window that started before it).
    for n in stack.drain_alerts().await {
        assert_eq!(describe(&n).1, "reminder");
        let window =
            fleetwatch::telemetry::parse_timestamp(n["window_start"].as_str().unwrap()).unwrap();
        assert!(
            window.unix_millis() <= acked_at,
            "notified after the acknowledgement: {n:#}"
        );
    }
    let alarm = alarms.get("VHC001", RULE).await.unwrap().unwrap();
    assert_eq!(alarm.state, State::Acknowledged);
    fleet.stop().await;
}

/// Runs `fleetwatch alarms ARGS` (its own code, on the stack's alarm
/// table) and returns what it printed.
async fn alarms_command(stack: &Stack, args: &[&str]) -> String {
    let mut argv = vec![
        "fleetwatch",
        "alarms",
        "--alarm-table",
        stack.resources.alarm_table.as_str(),
    ];
    argv.extend(args);
    let cli = fleetwatch::config::try_parse_from(argv.iter().copied())
        .unwrap_or_else(|e| panic!("{argv:?} was refused: {e}"));
    let fleetwatch::config::Command::Alarms(settings) = cli.command else {
        panic!("{argv:?} is not `alarms`")
    };
    let mut out = Vec::new();
    fleetwatch::ops::alarms::run(&stack.clients.dynamodb, &settings, &mut out)
        .await
        .unwrap();
    String::from_utf8(out).unwrap()
}
