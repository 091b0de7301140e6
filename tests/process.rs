//! `fleetwatch process` end to end, the real binary against the emulator:
//! a backfill of a prefix the worker already partly processed (exactly the
//! expected items, and a second run adds none), `--dry-run` on local gzip
//! files (no AWS access), and an interrupted backfill resumed from its
//! checkpoint without redoing a finished object.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::process::{BIN, Bootstrapped, WorkerProcess, bootstrap};
use common::{Moto, Stack, gzip, m, s, wait_for};

const WAIT: Duration = Duration::from_secs(90);

/// `readings` JSON Lines of one device, a minute apart; reading 3 of each
/// object is hot (breaks `engine_temp_c > 100`).
fn object(device: &str, readings: usize) -> Vec<u8> {
    let mut out = String::new();
    for i in 0..readings {
        let temp = if i == 3 { 120 } else { 85 + (i % 10) };
        out.push_str(&format!(
            "{{\"device_id\":\"{device}\",\"timestamp\":\"2025-10-19T{:02}:{:02}:00Z\",\"engine_temp_c\":{temp},\"rpm\":{}}}\n",
            i / 60,
            i % 60,
            900 + i
        ));
    }
    out.into_bytes()
}

/// Runs `fleetwatch process` with bootstrap's settings and `args`.
fn process(moto: &Moto, setup: &Bootstrapped, args: &[&str]) -> Output {
    process_command(moto, setup, args)
        .output()
        .expect("run fleetwatch process")
}

fn process_command(moto: &Moto, setup: &Bootstrapped, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("process")
        .args(args)
        .envs(moto.env())
        .envs(setup.exports.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("FLEETWATCH_LOG_FORMAT", "json")
        .stdin(Stdio::null());
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The stored readings' (device, timestamp, source key).
async fn stored(stack: &Stack) -> BTreeSet<(String, String, String)> {
    stack
        .items()
        .await
        .into_iter()
        .map(|((device, ts), item)| {
            let key = match m(&item, "source").get("key") {
                Some(aws_sdk_dynamodb::types::AttributeValue::S(k)) => k.clone(),
                other => panic!("no source key: {other:?}"),
            };
            (device, ts, key)
        })
        .collect()
}

fn expected(objects: &[(&str, &str, usize)]) -> BTreeSet<(String, String, String)> {
    objects
        .iter()
        .flat_map(|(key, device, n)| {
            (0..*n).map(move |i| {
                (
                    (*device).to_owned(),
                    format!("2025-10-19T{:02}:{:02}:00.000Z", i / 60, i % 60),
                    (*key).to_owned(),
                )
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_of_a_partly_processed_prefix_adds_exactly_the_rest_and_a_rerun_adds_none() {
    let moto = Moto::start();
    let setup = bootstrap(&moto);
    let stack = setup.stack(&moto).await;

    // The worker processes the first two objects as they arrive.
    let mut worker = WorkerProcess::start(&moto, &setup, &[]);
    worker.wait_ready().await;
    let early = [
        ("fleet/2025/a.jsonl", "VA", 20),
        ("fleet/2025/b.jsonl.gz", "VB", 20),
    ];
    stack.put_object(early[0].0, object("VA", 20)).await;
    stack.put_object(early[1].0, gzip(&object("VB", 20))).await;
    let want_early = expected(&early);
    wait_for("the worker to store the first objects", WAIT, || async {
        (stored(&stack).await == want_early).then_some(())
    })
    .await;
    assert!(worker.terminate().await.success());
    let alerts = stack.drain_alerts().await;
    let alerts_by_worker = alerts.len();
    // Per object: the hot reading, and the maintenance prediction it gets.
    assert_eq!(alerts_by_worker, 4);
    // Each maintenance alert says why: its top reasons, in words.
    let maintenance: Vec<_> = alerts
        .iter()
        .filter(|a| a["kind"] == "maintenance")
        .collect();
    assert_eq!(maintenance.len(), 2);
    for alert in maintenance {
        let reasons = alert["reasons"].as_array().unwrap();
        assert!((1..=3).contains(&reasons.len()), "{alert}");
        for reason in reasons {
            assert!(reason["contribution"].as_f64().unwrap() > 0.0, "{alert}");
            assert!(!reason["text"].as_str().unwrap().is_empty(), "{alert}");
        }
    }

    // More objects arrive while no worker runs; some are not to be backfilled.
    let late = [
        ("fleet/2025/c.jsonl", "VC", 30),
        ("fleet/2026/d.jsonl", "VD", 10),
    ];
    stack.put_object(late[0].0, object("VC", 30)).await;
    stack.put_object(late[1].0, object("VD", 10)).await;
    stack.put_object("fleet/tmp/x.jsonl", object("VX", 5)).await;
    stack.put_object("other/y.jsonl", object("VY", 5)).await;

    let first = process(
        &moto,
        &setup,
        &[
            &format!("s3://{}/fleet/", stack.resources.bucket),
            "--exclude",
            "fleet/tmp/*",
            "--concurrency",
            "2",
        ],
    );
    let stdout = text(&first.stdout);
    assert!(first.status.success(), "{stdout}\n{}", text(&first.stderr));
    assert!(
        stdout.contains("objects: 4 of 4 done, all processed"),
        "{stdout}"
    );
    assert!(stdout.contains("readings: 80 stored"), "{stdout}");
    // stderr is not a terminal here: progress comes as plain log lines.
    let stderr = text(&first.stderr);
    assert!(
        stderr.contains(r#""message":"progress","objects":4,"total":4,"readings":80"#),
        "{stderr}"
    );
    let want: BTreeSet<_> = expected(&early)
        .into_iter()
        .chain(expected(&late))
        .collect();
    assert_eq!(stored(&stack).await, want);
    // The ledger knows the worker's alerts: only the new objects' are sent.
    let alerts: Vec<String> = stack
        .drain_alerts()
        .await
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(alerts.len(), 4, "{alerts:?}");
    assert!(alerts.iter().all(|a| a.contains("VC") || a.contains("VD")));

    // A second run rewrites the same items and adds none.
    let second = process(
        &moto,
        &setup,
        &[
            &format!("s3://{}/fleet/", stack.resources.bucket),
            "--exclude",
            "fleet/tmp/*",
            "--no-alerts",
        ],
    );
    let stdout = text(&second.stdout);
    assert!(
        second.status.success(),
        "{stdout}\n{}",
        text(&second.stderr)
    );
    assert!(
        stdout.contains("objects: 4 of 4 done, all processed"),
        "{stdout}"
    );
    assert_eq!(stored(&stack).await, want);
    assert!(stack.drain_alerts().await.is_empty());

    // LastModified and key filters (a dry run: nothing is written).
    let bucket_url = format!("s3://{}/fleet/", stack.resources.bucket);
    let none = process(
        &moto,
        &setup,
        &[&bucket_url, "--dry-run", "--until", "2001-01-01T00:00:00Z"],
    );
    assert!(none.status.success(), "{}", text(&none.stderr));
    assert!(text(&none.stdout).contains("objects: 0 of 0 done"));
    let recent = process(
        &moto,
        &setup,
        &[
            &bucket_url,
            "--dry-run",
            "--since",
            "1h",
            "--include",
            "fleet/2025/*",
        ],
    );
    let stdout = text(&recent.stdout);
    assert!(recent.status.success(), "{}", text(&recent.stderr));
    assert!(
        stdout.contains("objects: 3 of 3 done, all processed"),
        "{stdout}"
    );
    assert!(stdout.contains("readings: 70 built"), "{stdout}");
    assert_eq!(stored(&stack).await, want);

    // A missing table is named at once, before any object is held on it.
    let no_table = process(&moto, &setup, &[&bucket_url, "--table", "no-such-table"]);
    assert!(!no_table.status.success());
    let stderr = text(&no_table.stderr);
    assert!(
        stderr.contains(
            "the table no-such-table (FLEETWATCH_TABLE) cannot be used: it does not exist"
        ),
        "{stderr}"
    );

    // A missing bucket is named, with a failing exit status.
    let missing = process(&moto, &setup, &["s3://no-such-bucket-here/x/"]);
    assert!(!missing.status.success());
    let stderr = text(&missing.stderr);
    assert!(
        stderr.contains("the bucket no-such-bucket-here does not exist"),
        "{stderr}"
    );
}

#[test]
fn a_dry_run_of_local_gzip_files_needs_no_aws_and_reports_everything() {
    let dir = std::env::temp_dir().join(format!("fleetwatch-dry-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.jsonl.gz"), gzip(&object("LA", 10))).unwrap();
    let mut bad = object("LB", 6);
    bad.extend(b"{\"device_id\":\"LB\",\"engine_temp_c\":90}\n");
    bad.extend(b"not json at all\n");
    std::fs::write(dir.join("b.jsonl.gz"), gzip(&bad)).unwrap();
    std::fs::write(dir.join("ignored.txt"), b"not matched by the glob\n").unwrap();

    let output = Command::new(BIN)
        .args(["process", "--dry-run"])
        .arg(format!("{}/*.jsonl.gz", dir.display()))
        // Any AWS call would fail: nothing listens there.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env(
            "FLEETWATCH_ALERT_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:fleet-alerts",
        )
        .env("FLEETWATCH_AWS_CONNECT_TIMEOUT", "100ms")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    assert!(
        stdout.contains("objects: 2 of 2 done, all processed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("readings: 16 built (dry run: not written), 0 duplicates, 2 rejected"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  rejected missing_timestamp: 1"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("  rejected ").count(),
        2,
        "two reasons: {stdout}"
    );
    // Per file: the hot reading, and the maintenance prediction it gets.
    assert!(stdout.contains("alerts: 4 would be sent\n"), "{stdout}");
    assert!(
        stdout.contains("alert LA maintenance_predicted: 1 breaches"),
        "{stdout}"
    );
    assert!(
        stdout.contains("alert LA engine_temp_c > 100: 1 breaches"),
        "{stdout}"
    );
    assert!(
        stdout.contains("alert LB engine_temp_c > 100: 1 breaches"),
        "{stdout}"
    );
    assert!(stdout.contains(" readings/s, "), "{stdout}");
    assert!(stdout.contains(" CPU seconds"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_backfill_resumes_without_redoing_a_finished_object() {
    let moto = Moto::start();
    let setup = bootstrap(&moto);
    let stack = setup.stack(&moto).await;
    const OBJECTS: usize = 30;
    const READINGS: usize = 200;
    let keys: Vec<String> = (0..OBJECTS)
        .map(|i| format!("backfill/{i:03}.jsonl"))
        .collect();
    for (i, key) in keys.iter().enumerate() {
        stack
            .put_object(key, object(&format!("R{i:03}"), READINGS))
            .await;
    }
    let checkpoint =
        std::env::temp_dir().join(format!("fleetwatch-checkpoint-{}.txt", std::process::id()));
    let _ = std::fs::remove_file(&checkpoint);
    let url = format!("s3://{}/backfill/", stack.resources.bucket);
    let checkpoint_arg = checkpoint.display().to_string();
    let args = [
        url.as_str(),
        "--concurrency",
        "1",
        "--no-alerts",
        "--checkpoint",
        checkpoint_arg.as_str(),
    ];
    let lines = |path: &std::path::Path| -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    };

    let mut child = process_command(&moto, &setup, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("two objects to be checkpointed", WAIT, || {
        let n = lines(&checkpoint).len();
        async move { (n >= 2).then_some(()) }
    })
    .await;
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    wait_for("the interrupted run to exit", WAIT, || {
        let exited = child.try_wait().unwrap().is_some();
        async move { exited.then_some(()) }
    })
    .await;
    let output = child.wait_with_output().unwrap();
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "an interrupted run fails");
    assert!(stderr.contains("interrupted: "), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    let finished_first: Vec<String> = lines(&checkpoint);
    let done = finished_first.len();
    assert!(
        (2..OBJECTS).contains(&done),
        "stopped part-way: {done} of {OBJECTS}"
    );
    assert!(
        stderr.contains(&format!(
            "interrupted: {done} of {OBJECTS} objects finished"
        )),
        "{stderr}"
    );

    let resumed_at = fleetwatch::telemetry::Timestamp::from_unix_millis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
    )
    .to_rfc3339_millis();
    let mut resume_args = args.to_vec();
    resume_args.push("--resume");
    let resumed = process(&moto, &setup, &resume_args);
    let stdout = text(&resumed.stdout);
    assert!(
        resumed.status.success(),
        "{stdout}\n{}",
        text(&resumed.stderr)
    );
    let rest = OBJECTS - done;
    assert!(
        stdout.contains(&format!("objects: {rest} of {rest} done, all processed")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{done} skipped as finished (checkpoint)")),
        "{stdout}"
    );
    let all: HashSet<String> = lines(&checkpoint).into_iter().collect();
    assert_eq!(all.len(), OBJECTS, "every object is checkpointed once");

    // Every reading is stored; those of objects finished before the
    // interruption were not written again.
    let items = stack.items().await;
    assert_eq!(items.len(), OBJECTS * READINGS);
    let finished_first: HashSet<String> = finished_first
        .iter()
        .map(|id| {
            id.strip_prefix(&format!("s3://{}/", stack.resources.bucket))
                .unwrap()
                .to_owned()
        })
        .collect();
    for item in items.values() {
        let key = match m(item, "source").get("key") {
            Some(aws_sdk_dynamodb::types::AttributeValue::S(k)) => k.clone(),
            other => panic!("no source key: {other:?}"),
        };
        let ingested = s(item, "ingested_at");
        if finished_first.contains(&key) {
            assert!(ingested < resumed_at, "{key} was redone at {ingested}");
        } else {
            assert!(ingested >= resumed_at, "{key} was processed at {ingested}");
        }
    }
    let _ = std::fs::remove_file(&checkpoint);
}

/// One hot reading (breaking `engine_temp_c > 100`) for each of `devices` devices.
fn hot_readings(devices: usize) -> Vec<u8> {
    let temp = 120;
    let mut out = String::new();
    for d in 0..devices {
        out.push_str(&format!(
            "{{\"device_id\":\"D{d:06}\",\"timestamp\":\"2025-10-19T10:00:00Z\",\"engine_temp_c\":{temp},\"rpm\":900}}\n"
        ));
    }
    out.into_bytes()
}

/// A dry run's summary, and its peak RSS in MB.
fn dry_run(path: &std::path::Path) -> (String, f64) {
    let output = Command::new(BIN)
        .args(["process", "--dry-run"])
        .arg(path)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env(
            "FLEETWATCH_ALERT_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:fleet-alerts",
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    let peak = stdout
        .split("peak RSS ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|mb| mb.parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in the summary: {stdout}"));
    (stdout, peak)
}

/// A dry run lists the first alerts and counts every one, also past the
/// early-delivery threshold (1,000 open alerts), where it keeps only those
/// it lists; the summary ends with the run's peak RSS.
#[test]
fn a_dry_run_lists_the_first_alerts_and_counts_all_of_them() {
    const DEVICES: usize = 1_500;
    let dir = std::env::temp_dir().join(format!("fleetwatch-dry-alerts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let hot = dir.join("hot.jsonl");
    std::fs::write(&hot, hot_readings(DEVICES)).unwrap();
    let (summary, peak) = dry_run(&hot);
    let _ = std::fs::remove_dir_all(&dir);

    assert!(
        summary.contains(&format!("readings: {DEVICES} built")),
        "{summary}"
    );
    assert!(peak > 0.0, "{summary}");
    // Every hot reading breaks the temperature rule (the model may add
    // maintenance alerts of its own).
    let raised: u64 = summary
        .split("alerts: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no alert count: {summary}"));
    assert!(raised >= DEVICES as u64, "{summary}");
    assert!(summary.contains(&format!("alerts: {raised} would be sent\n")));
    assert_eq!(summary.matches("\n  alert ").count(), 20, "{summary}");
    assert!(
        summary.contains(&format!("  … and {} more\n", raised - 20)),
        "{summary}"
    );
}
