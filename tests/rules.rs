//! Rules per vehicle and per group against the emulator, through the real
//! binary: scoped rules in `FLEETWATCH_ALERT_RULES`, an operator's
//! per-device override set with `fleetwatch rules set` changing an alert,
//! and overrides changed while the worker runs taking effect without a
//! restart.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use common::fault_proxy::{FaultConfig, FaultProxy};
use common::process::{BIN, Bootstrapped, WorkerProcess, bootstrap};
use common::{Moto, Stack, parse_metric, wait_for};

const WAIT: Duration = Duration::from_secs(90);

/// `fleetwatch rules ARGS` against the emulator with bootstrap's settings
/// and the worker's configured rules; returns stdout, asserting success.
fn rules(moto: &Moto, setup: &Bootstrapped, configured: &str, args: &[&str]) -> String {
    let output = Command::new(BIN)
        .arg("rules")
        .args(args)
        .envs(moto.env())
        .envs(setup.exports.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("FLEETWATCH_ALERT_RULES", configured)
        .output()
        .expect("run fleetwatch rules");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "fleetwatch rules {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn line(device: &str, minute: u32, fields: &str) -> String {
    format!(
        r#"{{"device_id":"{device}","timestamp":"2025-10-19T{minute_h:02}:{minute_m:02}:00Z",{fields}}}"#,
        minute_h = 10 + minute / 60,
        minute_m = minute % 60
    )
}

/// The (device, rule, scope) of every alert received until `count` have
/// arrived.
async fn alerts(stack: &Stack, count: usize) -> BTreeSet<(String, String, String)> {
    let deadline = std::time::Instant::now() + WAIT;
    let mut all = Vec::new();
    while all.len() < count {
        assert!(
            std::time::Instant::now() < deadline,
            "waited for {count} alerts, got {all:#?}"
        );
        all.extend(stack.drain_alerts().await);
        // A poll interval, not a wait for the condition.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got: BTreeSet<_> = all
        .iter()
        .map(|a| {
            (
                a["device_id"].as_str().unwrap_or_default().to_owned(),
                a["rule"].as_str().unwrap_or_default().to_owned(),
                a["scope"].as_str().unwrap_or("*").to_owned(),
            )
        })
        .collect();
    assert_eq!(all.len(), got.len(), "one alert each: {all:#?}");
    got
}

fn set(items: &[(&str, &str, &str)]) -> BTreeSet<(String, String, String)> {
    items
        .iter()
        .map(|(d, r, s)| ((*d).to_owned(), (*r).to_owned(), (*s).to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vehicles_own_limits_change_its_alerts_without_a_redeploy() {
    let moto = Moto::start();
    let setup = bootstrap(&moto);
    let stack = setup.stack(&moto).await;
    let configured =
        "engine_temp_c > 100, TRK-*: engine_temp_c > 105, fleet=north: oil_pressure_kpa < 150";

    // An older engine gets a lower limit before the worker starts.
    let out = rules(
        &moto,
        &setup,
        configured,
        &[
            "set",
            "VHC001",
            "engine_temp_c > 95",
            "--by",
            "ana",
            "--note",
            "2009 engine",
        ],
    );
    assert!(
        out.starts_with("set VHC001: engine_temp_c > 95 (by ana)"),
        "{out}"
    );
    let shown = rules(
        &moto,
        &setup,
        configured,
        &["show", "VHC001", "--format", "csv"],
    );
    assert_eq!(shown, "rule,scope\nengine_temp_c > 95,VHC001\n", "{shown}");
    let shown = rules(
        &moto,
        &setup,
        configured,
        &["show", "VAN-1", "--attr", "fleet=north", "--format", "csv"],
    );
    assert_eq!(
        shown,
        "rule,scope\nengine_temp_c > 100,*\noil_pressure_kpa < 150,fleet=north\n"
    );
    let listed = rules(&moto, &setup, configured, &["list", "--format", "csv"]);
    assert!(
        listed.contains("TRK-*,engine_temp_c > 105,FLEETWATCH_ALERT_RULES"),
        "{listed}"
    );
    assert!(
        listed.contains("VHC001,engine_temp_c > 95,fleetwatch rules set (by ana)"),
        "{listed}"
    );
    assert!(listed.contains("2009 engine"), "{listed}");

    let mut worker = WorkerProcess::start(
        &moto,
        &setup,
        &[
            ("FLEETWATCH_ALERT_RULES", configured),
            ("FLEETWATCH_RULES_REFRESH", "200ms"),
            ("FLEETWATCH_INFERENCE", "none"),
        ],
    );
    worker.wait_ready().await;

    let first = [
        // Under its own limit (95) but not the default (100): alerts, once,
        // under the override only, also at 101.
        line("VHC001", 0, r#""engine_temp_c":97"#),
        line("VHC001", 1, r#""engine_temp_c":101"#),
        // The default limit: 97 is fine.
        line("VHC002", 0, r#""engine_temp_c":97"#),
        // The TRK-* limit replaces the default for that field: 103 is fine, 107 is not.
        line("TRK-001", 0, r#""engine_temp_c":103"#),
        line("TRK-002", 0, r#""engine_temp_c":107"#),
        // A group rule, on the group's vehicles only.
        line("VAN-1", 0, r#""fleet":"north","oil_pressure_kpa":140"#),
        line("VAN-2", 0, r#""fleet":"south","oil_pressure_kpa":140"#),
    ]
    .join("\n");
    stack.put_object("incoming/first.jsonl", first).await;
    assert_eq!(
        alerts(&stack, 3).await,
        set(&[
            ("TRK-002", "engine_temp_c > 105", "TRK-*"),
            ("VAN-1", "oil_pressure_kpa < 150", "fleet=north"),
            ("VHC001", "engine_temp_c > 95", "VHC001"),
        ])
    );

    // While the worker runs: VHC001 goes back to the default, VHC002 gets
    // a lower limit and a second rule.
    let out = rules(&moto, &setup, configured, &["clear", "VHC001"]);
    assert!(
        out.starts_with("cleared VHC001: engine_temp_c > 95 (set by ana"),
        "{out}"
    );
    rules(
        &moto,
        &setup,
        configured,
        &[
            "set",
            "VHC002",
            "engine_temp_c > 90",
            "coolant_temp_c > 110",
        ],
    );
    wait_for("the worker to read the new overrides", WAIT, || async {
        let text = worker.metrics().await?;
        (parse_metric(&text, "fleetwatch_rule_overrides", &[]) == 2.0).then_some(())
    })
    .await;
    let second = [
        line("VHC001", 60, r#""engine_temp_c":97"#),
        line("VHC002", 60, r#""engine_temp_c":97,"coolant_temp_c":112"#),
    ]
    .join("\n");
    stack.put_object("incoming/second.jsonl", second).await;
    assert_eq!(
        alerts(&stack, 2).await,
        set(&[
            ("VHC002", "coolant_temp_c > 110", "VHC002"),
            ("VHC002", "engine_temp_c > 90", "VHC002"),
        ])
    );
    wait_for("the queue to drain", WAIT, || async {
        (stack.queue_depth().await == (0, 0)).then_some(())
    })
    .await;
    assert!(
        stack.drain_alerts().await.is_empty(),
        "VHC001 at 97 is under the default limit again"
    );
    worker.terminate().await;
}

/// A worker that cannot read the overrides at start (the alarm table's
/// override Query failing while the rest of DynamoDB answers) waits for
/// them instead of starting on the configured rules alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_does_not_start_without_the_overrides() {
    let moto = Moto::start();
    let setup = bootstrap(&moto);
    let stack = setup.stack(&moto).await;
    let configured = "engine_temp_c > 100";
    rules(
        &moto,
        &setup,
        configured,
        &["set", "VHC001", "engine_temp_c > 95"],
    );
    // Only the Query of the overrides' partition fails, with 503s.
    let proxy = FaultProxy::start(
        &moto.endpoint,
        FaultConfig::new(5).unavailable_containing("dynamodb", "Query", "rules#scopes"),
    )
    .await;
    let worker = WorkerProcess::start(
        &moto,
        &setup,
        &[
            ("AWS_ENDPOINT_URL", proxy.endpoint.as_str()),
            ("FLEETWATCH_ALERT_RULES", configured),
            ("FLEETWATCH_INFERENCE", "none"),
        ],
    );
    wait_for("the override read to fail and be retried", WAIT, || async {
        (proxy.injected("dynamodb") >= 4).then_some(())
    })
    .await;
    let ready = fleetwatch::health::probe(
        &format!("{}/readyz", worker.metrics_url),
        Duration::from_secs(2),
    )
    .await;
    assert!(ready.is_err(), "not ready before the overrides are read");
    proxy.heal();
    worker.wait_ready().await;
    stack
        .put_object(
            "incoming/after.jsonl",
            line("VHC001", 0, r#""engine_temp_c":97"#),
        )
        .await;
    assert_eq!(
        alerts(&stack, 1).await,
        set(&[("VHC001", "engine_temp_c > 95", "VHC001")])
    );
}

#[test]
fn a_bad_scope_or_rule_is_refused_with_the_expected_form() {
    for (args, expected) in [
        (vec!["set", "VHC 1", "x > 1"], "expected a device id"),
        (vec!["set", "VHC001", "x >> 1"], "is not a rule"),
        (vec!["set", "VHC001"], "required"),
        (
            vec!["show", "VHC001", "--attr", "fleet"],
            "expected FIELD=VALUE",
        ),
    ] {
        let output = Command::new(BIN).arg("rules").args(&args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let output = Command::new(BIN)
        .args(["rules", "list"])
        .env("FLEETWATCH_ALERT_RULES", "TRK 1: x > 1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("FLEETWATCH_ALERT_RULES"), "{stderr}");
}
