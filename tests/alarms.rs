//! The alarm lifecycle against the emulator: a full life from the first
//! breach to resolution, workers racing on one alarm while an operator
//! acknowledges it, a snooze that runs out, and alarms closing by
//! themselves with exactly one "resolved" notification across workers.

mod common;

use std::time::Duration;

use common::{Moto, Stack, wait_for};
use fleetwatch::alarms::sweeper;
use fleetwatch::alarms::{Action, AlarmStore, State, Transition};
use fleetwatch::alerts::Test;
use fleetwatch::alerts::ledger::AlertLedger;
use fleetwatch::alerts::publisher::AlertPublisher;
use fleetwatch::alerts::rules::Op;
use fleetwatch::alerts::{
    Alert, AlertKind, AlertSink, Breaches, ClaimOwner, Condition, Cooldown, Source,
};
use fleetwatch::telemetry::Timestamp;
use tokio_util::sync::CancellationToken;

const RULE: &str = "engine_temp_c > 100";
const WINDOW: i64 = 15 * 60_000;
/// 2025-10-19T22:45:00Z, the start of a 15-minute window.
const T0: i64 = 1_760_913_900_000;

/// One alert of `device` in the `window`-th cooldown window after T0.
fn alert(device: &str, window: i64) -> Alert {
    let at = Timestamp::from_unix_millis(T0 + window * WINDOW + 60_000);
    Alert {
        id: Cooldown::default().alert_id(device, RULE, at),
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
            first: at,
            last: at,
            worst_value: "120".into(),
            worst_at: at,
            explanation: Vec::new(),
            finding: None,
        },
        source: Source {
            bucket: "b".into(),
            key: format!("{device}-{window}.txt"),
        },
    }
}

/// A worker's sink, as the binary builds it.
fn sink(stack: &Stack) -> AlertSink {
    AlertSink {
        publisher: AlertPublisher::new(
            stack.clients.sns.clone(),
            stack.resources.topic_arn.clone(),
        ),
        ledger: AlertLedger::new(
            stack.clients.dynamodb.clone(),
            stack.resources.alarm_table.clone(),
            Duration::from_secs(15 * 60),
            Duration::from_secs(30),
        ),
        alarms: store(stack),
    }
}

fn store(stack: &Stack) -> AlarmStore {
    AlarmStore::new(
        stack.clients.dynamodb.clone(),
        stack.resources.alarm_table.clone(),
    )
}

/// The `transition` of each notification received so far (drained), with
/// its device, checking that the JSON and the message attribute agree.
async fn transitions(stack: &Stack) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for n in stack.drain_alerts().await {
        let json = n["alarm"]["transition"]
            .as_str()
            .unwrap_or("none")
            .to_owned();
        let attribute = n["_attributes"]["transition"]["Value"]
            .as_str()
            .unwrap_or("none");
        assert_eq!(json, attribute, "JSON and attribute agree: {n:#}");
        let state = n["_attributes"]["alarm_state"]["Value"]
            .as_str()
            .unwrap_or("none");
        assert_eq!(n["alarm"]["state"].as_str().unwrap_or("none"), state);
        out.push((n["device_id"].as_str().unwrap_or_default().to_owned(), json));
    }
    out.sort();
    out
}

/// Waits until exactly `expected` notifications arrived, then checks that
/// nothing more comes for a moment.
async fn expect_transitions(stack: &Stack, expected: &[(&str, &str)]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut got = Vec::new();
    while got.len() < expected.len() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {expected:?}, got {got:?}"
        );
        got.extend(transitions(stack).await);
    }
    got.extend(transitions(stack).await);
    got.sort();
    let mut want: Vec<(String, String)> = expected
        .iter()
        .map(|(d, t)| ((*d).to_owned(), (*t).to_owned()))
        .collect();
    want.sort();
    assert_eq!(got, want);
}

fn owner(id: &str) -> ClaimOwner {
    ClaimOwner::new(id, 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_s_life_from_first_breach_to_resolution() {
    let moto = Moto::start();
    let stack = Stack::create(&moto).await;
    let sink = sink(&stack);
    let alarms = store(&stack);

    // First breach: ACTIVE, "opened". A replay of it: nothing more.
    assert_eq!(
        sink.deliver(vec![alert("VHC001", 0)], &owner("m1"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        sink.deliver(vec![alert("VHC001", 0)], &owner("m1"))
            .await
            .unwrap(),
        0
    );
    expect_transitions(&stack, &[("VHC001", "opened")]).await;
    let alarm = alarms.get("VHC001", RULE).await.unwrap().unwrap();
    assert_eq!(
        (alarm.state, alarm.episode, alarm.version),
        (State::Active, 1, 1)
    );

    // Unacknowledged: again in the next cooldown window, as a reminder.
    assert_eq!(
        sink.deliver(vec![alert("VHC001", 1)], &owner("m2"))
            .await
            .unwrap(),
        1
    );
    expect_transitions(&stack, &[("VHC001", "reminder")]).await;

    // Acknowledged: breaches are recorded, not notified.
    let acked = alarms
        .act(
            "VHC001",
            RULE,
            &Action::Acknowledge,
            "dana",
            Some("driver called, pulling over"),
        )
        .await
        .unwrap();
    assert_eq!(acked.state, State::Acknowledged);
    assert!(
        alarms
            .act("VHC001", RULE, &Action::Acknowledge, "dana", None)
            .await
            .is_err(),
        "acknowledging twice is refused"
    );
    assert_eq!(
        sink.deliver(vec![alert("VHC001", 2)], &owner("m3"))
            .await
            .unwrap(),
        0
    );
    let alarm = alarms.get("VHC001", RULE).await.unwrap().unwrap();
    // Four: the replay of the first window counted again (breach counts
    // are at least once; notifications are not).
    assert_eq!((alarm.state, alarm.breaches), (State::Acknowledged, 4));

    // Resolved by hand: NORMAL, and one "resolved" notification from the
    // next sweep (and none from the ones after).
    alarms
        .act(
            "VHC001",
            RULE,
            &Action::Resolve,
            "dana",
            Some("coolant topped up"),
        )
        .await
        .unwrap();
    let swept = sweeper::sweep(&sink, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!((swept.closed, swept.announced), (0, 1));
    assert_eq!(
        sweeper::sweep(&sink, Duration::from_secs(3600))
            .await
            .unwrap()
            .announced,
        0
    );
    expect_transitions(&stack, &[("VHC001", "resolved")]).await;

    // A new breach opens a second episode.
    assert_eq!(
        sink.deliver(vec![alert("VHC001", 3)], &owner("m4"))
            .await
            .unwrap(),
        1
    );
    expect_transitions(&stack, &[("VHC001", "opened")]).await;
    let alarm = alarms.get("VHC001", RULE).await.unwrap().unwrap();
    assert_eq!((alarm.state, alarm.episode), (State::Active, 2));

    // Every transition is stored with its time and actor.
    let history = alarms.history("VHC001", RULE).await.unwrap();
    let steps: Vec<(u64, Transition, State, &str, Option<&str>)> = history
        .iter()
        .map(|h| {
            (
                h.version,
                h.transition,
                h.to,
                h.actor.as_str(),
                h.note.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            (1, Transition::Opened, State::Active, "fleetwatch", None),
            (
                2,
                Transition::Acknowledged,
                State::Acknowledged,
                "dana",
                Some("driver called, pulling over")
            ),
            (
                3,
                Transition::Resolved,
                State::Normal,
                "dana",
                Some("coolant topped up")
            ),
            (4, Transition::Opened, State::Active, "fleetwatch", None),
        ]
    );
    assert!(history.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_racing_and_an_operator_acknowledging_agree() {
    let moto = Moto::start();
    let stack = Stack::create(&moto).await;
    let (worker_a, worker_b) = (sink(&stack), sink(&stack));
    let alarms = store(&stack);
    let devices: Vec<String> = (1..=4).map(|i| format!("RACE{i}")).collect();

    // Each device's alarm opened by both workers at once (same window),
    // then a second window from both while the operator acknowledges.
    for (n, device) in devices.iter().enumerate() {
        let (owner_a, owner_b) = (owner(&format!("a{n}")), owner(&format!("b{n}")));
        let (a, b) = tokio::join!(
            worker_a.deliver(vec![alert(device, 0)], &owner_a),
            worker_b.deliver(vec![alert(device, 0)], &owner_b),
        );
        // One of them publishes; the other finds it sent, or busy.
        let published = a.unwrap_or(0) + b.unwrap_or(0);
        assert!(published <= 1, "{device}: published {published}");
    }
    let expected: Vec<(&str, &str)> = devices.iter().map(|d| (d.as_str(), "opened")).collect();
    // The busy side's retry finds the alert sent.
    for (n, device) in devices.iter().enumerate() {
        let _ = worker_b
            .deliver(vec![alert(device, 0)], &owner(&format!("b{n}")))
            .await;
        let _ = worker_a
            .deliver(vec![alert(device, 0)], &owner(&format!("a{n}")))
            .await;
    }
    expect_transitions(&stack, &expected).await;

    let mut reminders = 0;
    for (n, device) in devices.iter().enumerate() {
        let (owner_a, owner_b) = (owner(&format!("a{n}-1")), owner(&format!("b{n}-1")));
        let (a, b, ack) = tokio::join!(
            worker_a.deliver(vec![alert(device, 1)], &owner_a),
            worker_b.deliver(vec![alert(device, 1)], &owner_b),
            alarms.act(device, RULE, &Action::Acknowledge, "dana", None),
        );
        ack.unwrap();
        reminders += a.unwrap_or(0) + b.unwrap_or(0);
        // Whatever the order, the alarm is acknowledged, once.
        let alarm = alarms.get(device, RULE).await.unwrap().unwrap();
        assert_eq!(alarm.state, State::Acknowledged);
        let history = alarms.history(device, RULE).await.unwrap();
        let kinds: Vec<Transition> = history.iter().map(|h| h.transition).collect();
        assert_eq!(
            kinds,
            [Transition::Opened, Transition::Acknowledged],
            "{device}"
        );
        assert_eq!(
            history.iter().map(|h| h.version).collect::<Vec<_>>(),
            [1, 2],
            "{device}: one version per transition"
        );
        // After the acknowledgement, neither worker notifies.
        assert_eq!(
            worker_a
                .deliver(vec![alert(device, 2)], &owner(&format!("a{n}-2")))
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            worker_b
                .deliver(vec![alert(device, 3)], &owner(&format!("b{n}-3")))
                .await
                .unwrap(),
            0
        );
    }
    // A reminder went out only where a worker decided before the ack, and
    // at most one per window.
    assert!(reminders <= devices.len(), "{reminders}");
    let got = transitions(&stack).await;
    assert!(got.iter().all(|(_, t)| t == "reminder"), "{got:?}");
    assert!(got.len() <= devices.len(), "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snooze_that_runs_out_reactivates_the_alarm() {
    let moto = Moto::start();
    let stack = Stack::create(&moto).await;
    let sink = sink(&stack);
    let alarms = store(&stack);

    sink.deliver(vec![alert("VHC007", 0)], &owner("m1"))
        .await
        .unwrap();
    expect_transitions(&stack, &[("VHC007", "opened")]).await;
    let snooze_ms = 2_000;
    let until_ms = fleetwatch::alarms::store::now_millis() + snooze_ms;
    let snoozed = alarms
        .act(
            "VHC007",
            RULE,
            &Action::Snooze { until_ms },
            "dana",
            Some("in the workshop"),
        )
        .await
        .unwrap();
    assert_eq!(
        (snoozed.state, snoozed.snoozed_until_ms),
        (State::Snoozed, Some(until_ms))
    );

    // Breaching while snoozed: recorded, not notified.
    assert_eq!(
        sink.deliver(vec![alert("VHC007", 1)], &owner("m2"))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        alarms.get("VHC007", RULE).await.unwrap().unwrap().state,
        State::Snoozed
    );

    // Still breaching once the snooze is over: ACTIVE again, notified.
    let mut window = 2;
    wait_for("the snooze to run out", Duration::from_secs(30), || {
        window += 1;
        let (sink, w) = (&sink, window);
        async move {
            let sent = sink
                .deliver(vec![alert("VHC007", w)], &owner(&format!("m{w}")))
                .await
                .unwrap();
            (sent == 1).then_some(())
        }
    })
    .await;
    assert!(
        fleetwatch::alarms::store::now_millis() >= until_ms,
        "not before the snooze ends"
    );
    expect_transitions(&stack, &[("VHC007", "reactivated")]).await;
    let alarm = alarms.get("VHC007", RULE).await.unwrap().unwrap();
    assert_eq!(
        (alarm.state, alarm.episode, alarm.snoozed_until_ms),
        (State::Active, 1, None)
    );
    // The next window is a reminder of the reactivated alarm.
    window += 1;
    sink.deliver(vec![alert("VHC007", window)], &owner("later"))
        .await
        .unwrap();
    expect_transitions(&stack, &[("VHC007", "reminder")]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_alarms_close_by_themselves_once_across_three_workers() {
    let moto = Moto::start();
    let stack = Stack::create(&moto).await;
    let sink = sink(&stack);
    let alarms = store(&stack);

    sink.deliver(vec![alert("QUIET1", 0), alert("QUIET2", 0)], &owner("m1"))
        .await
        .unwrap();
    expect_transitions(&stack, &[("QUIET1", "opened"), ("QUIET2", "opened")]).await;
    alarms
        .act("QUIET2", RULE, &Action::Acknowledge, "dana", None)
        .await
        .unwrap();

    // Three workers sweeping every 100 ms, alarms closing after 1.5 s
    // without a breach.
    let auto_close = Duration::from_millis(1500);
    let stop = CancellationToken::new();
    let sweepers: Vec<_> = (0..3)
        .map(|_| {
            tokio::spawn(sweeper::run(
                sink.clone(),
                auto_close,
                Duration::from_millis(100),
                stop.clone(),
            ))
        })
        .collect();
    wait_for("both alarms to close", Duration::from_secs(30), || {
        let alarms = &alarms;
        async move {
            let open = alarms.list(None, true).await.unwrap();
            let all = alarms.list(None, false).await.unwrap();
            (open.is_empty() && all.iter().all(|a| a.resolve_notice.is_none())).then_some(())
        }
    })
    .await;
    expect_transitions(
        &stack,
        &[("QUIET1", "auto_resolved"), ("QUIET2", "auto_resolved")],
    )
    .await;
    // Several more sweeps: still exactly one each.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(transitions(&stack).await, []);
    stop.cancel();
    for s in sweepers {
        s.await.unwrap();
    }
    for device in ["QUIET1", "QUIET2"] {
        let history = alarms.history(device, RULE).await.unwrap();
        let last = history.last().unwrap();
        assert_eq!(
            (last.transition, last.to, last.actor.as_str()),
            (Transition::AutoResolved, State::Normal, "fleetwatch")
        );
        assert_eq!(
            history
                .iter()
                .filter(|h| h.transition == Transition::AutoResolved)
                .count(),
            1
        );
    }
}
