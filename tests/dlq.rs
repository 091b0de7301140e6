//! `fleetwatch dlq list | redrive | purge`, end to end: the real binary
//! against the emulator (moto), through the fault proxy where a redrive is
//! interrupted. The invariant under test: a listing leaves the dead-letter
//! queue as it was, and a redrive, however it stops, loses nothing (every
//! message is in the worker's queue or still in the dead-letter queue,
//! possibly both).

mod common;

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use aws_sdk_sqs::types::MessageAttributeValue;
use common::fault_proxy::{FaultConfig, FaultProxy};
use common::process::BIN;
use common::{Moto, Stack, queue_depth, s3_event, wait_for};

const WAIT: Duration = Duration::from_secs(60);

/// `fleetwatch dlq <args>` against `endpoint` with the stack's queue, run
/// off the async threads (the fault proxy runs on them).
async fn dlq(moto: &Moto, endpoint: &str, stack: &Stack, args: &[&str]) -> Output {
    let mut command = dlq_command(moto, endpoint, stack, args);
    tokio::task::spawn_blocking(move || command.output().expect("run fleetwatch dlq"))
        .await
        .expect("the command's thread")
}

fn dlq_command(moto: &Moto, endpoint: &str, stack: &Stack, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("dlq")
        .args(args)
        .envs(moto.env())
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("FLEETWATCH_QUEUE_URL", &stack.resources.queue_url)
        .env_remove("FLEETWATCH_DLQ_URL")
        .stdin(Stdio::null());
    command
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The worker's resources, with the `s3:TestEvent` the bucket's
/// notification set-up sent to the queue removed.
async fn stack(moto: &Moto) -> Stack {
    let stack = Stack::create(moto).await;
    drain(&stack, &stack.resources.queue_url.clone()).await;
    stack
}

/// Sends notifications for `n` objects straight to the dead-letter queue,
/// each with a message attribute; returns message id → body.
async fn dead_letter(stack: &Stack, n: usize) -> HashMap<String, String> {
    let mut sent = HashMap::new();
    for i in 0..n {
        let body = s3_event(
            &stack.resources.bucket,
            &[&format!("fleet/v{i}/2025-10-19T10.jsonl")],
        );
        let out = stack
            .clients
            .sqs
            .send_message()
            .queue_url(&stack.resources.dead_letter_queue_url)
            .message_body(&body)
            .message_attributes(
                "origin",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(format!("test-{i}"))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        sent.insert(out.message_id.unwrap(), body);
    }
    sent
}

/// Receives (and deletes) everything visible in a queue: body → origin attribute.
async fn drain(stack: &Stack, queue_url: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    loop {
        let page = stack
            .clients
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let messages = page.messages.unwrap_or_default();
        if messages.is_empty() {
            return out;
        }
        for m in messages {
            let origin = m
                .message_attributes
                .as_ref()
                .and_then(|a| a.get("origin"))
                .and_then(|v| v.string_value.clone());
            out.push((m.body.clone().unwrap_or_default(), origin));
            stack
                .clients
                .sqs
                .delete_message()
                .queue_url(queue_url)
                .receipt_handle(m.receipt_handle.unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

/// Waits until `queue_url` has `visible` messages visible and none in flight.
async fn wait_visible(stack: &Stack, queue_url: &str, visible: u64) {
    wait_for(
        &format!("{visible} visible messages in {queue_url}"),
        WAIT,
        || async { (queue_depth(&stack.clients, queue_url).await == (visible, 0)).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shows_ids_counts_and_objects_and_leaves_the_queue_as_it_was() {
    let moto = Moto::start();
    let stack = stack(&moto).await;
    let sent = dead_letter(&stack, 3).await;
    // A message the worker really dead-lettered: received until the
    // queue's redrive policy (maxReceiveCount 5) moved it.
    stack.send("not a notification").await;
    let dlq_url = stack.resources.dead_letter_queue_url.clone();
    wait_for("the poison message dead-lettered", WAIT, || async {
        let _ = stack
            .clients
            .sqs
            .receive_message()
            .queue_url(&stack.resources.queue_url)
            .visibility_timeout(0)
            .wait_time_seconds(0)
            .send()
            .await
            .unwrap();
        (queue_depth(&stack.clients, &dlq_url).await.0 == 4).then_some(())
    })
    .await;
    wait_visible(&stack, &dlq_url, 4).await;

    let output = dlq(&moto, &moto.endpoint, &stack, &["list", "--format", "json"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let listed: Vec<serde_json::Value> = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(listed.len(), 4, "{listed:?}");
    for (id, body) in &sent {
        let m = listed
            .iter()
            .find(|m| m["message_id"] == id.as_str())
            .unwrap_or_else(|| panic!("{id} not listed: {listed:?}"));
        let key = body
            .split("\"key\":\"")
            .nth(1)
            .and_then(|k| k.split('"').next())
            .unwrap();
        assert_eq!(
            m["objects"],
            serde_json::json!([format!("s3://{}/{key}", stack.resources.bucket)]),
            "{m}"
        );
        assert_eq!(m["receive_count"], 0, "never received before: {m}");
    }
    let poison = listed
        .iter()
        .find(|m| !sent.contains_key(m["message_id"].as_str().unwrap()))
        .unwrap();
    assert_eq!(poison["objects"], serde_json::json!([]), "{poison}");
    assert!(
        poison["ignored"]
            .as_str()
            .unwrap()
            .starts_with("not_a_notification"),
        "{poison}"
    );
    assert!(poison["receive_count"].as_u64().unwrap() >= 5, "{poison}");
    assert!(poison["first_receive"].is_string(), "{poison}");

    // Nothing was consumed: all four are visible again at once.
    wait_visible(&stack, &dlq_url, 4).await;

    // The table, with the queue named by --dlq-url instead.
    let output = dlq(
        &moto,
        &moto.endpoint,
        &stack,
        &["--dlq-url", &dlq_url, "list"],
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.starts_with("MESSAGE ID"), "{text}");
    assert_eq!(text.lines().count(), 5, "{text}");
    for id in sent.keys() {
        assert!(text.contains(id.as_str()), "{text}");
    }
    wait_visible(&stack, &dlq_url, 4).await;
    let bodies: HashSet<String> = drain(&stack, &dlq_url)
        .await
        .into_iter()
        .map(|(b, _)| b)
        .collect();
    assert!(
        sent.values().all(|b| bodies.contains(b)),
        "the bodies are unchanged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_redrive_moves_every_message_with_its_attributes() {
    let moto = Moto::start();
    let stack = stack(&moto).await;
    let sent = dead_letter(&stack, 12).await;
    let output = dlq(&moto, &moto.endpoint, &stack, &["redrive", "--all"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    // moto 5.2.1 has no StartMessageMoveTask: the fallback moved them.
    assert!(
        text.starts_with("moved 12 message(s)"),
        "{text}\n{}",
        stderr(&output)
    );
    assert!(stderr(&output).contains("StartMessageMoveTask is not available"));
    assert_eq!(
        queue_depth(&stack.clients, &stack.resources.dead_letter_queue_url).await,
        (0, 0)
    );
    let moved = drain(&stack, &stack.resources.queue_url.clone()).await;
    assert_eq!(moved.len(), 12);
    let bodies: HashSet<&String> = moved.iter().map(|(b, _)| b).collect();
    assert!(sent.values().all(|b| bodies.contains(b)));
    assert!(
        moved
            .iter()
            .all(|(_, origin)| origin.as_deref().is_some_and(|o| o.starts_with("test-")))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redrive_by_id_moves_only_those_and_names_the_missing() {
    let moto = Moto::start();
    let stack = stack(&moto).await;
    let sent = dead_letter(&stack, 4).await;
    let chosen: Vec<&String> = sent.keys().take(2).collect();
    let args = [
        "redrive",
        "--message-id",
        chosen[0],
        "--message-id",
        chosen[1],
    ];
    let output = dlq(&moto, &moto.endpoint, &stack, &args).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with("moved 2 message(s)"),
        "{}",
        stdout(&output)
    );
    let dlq_url = stack.resources.dead_letter_queue_url.clone();
    // The two others were held while looking, and released at once.
    wait_visible(&stack, &dlq_url, 2).await;
    let moved: HashSet<String> = drain(&stack, &stack.resources.queue_url.clone())
        .await
        .into_iter()
        .map(|(b, _)| b)
        .collect();
    assert_eq!(moved, chosen.iter().map(|id| sent[*id].clone()).collect());

    let output = dlq(
        &moto,
        &moto.endpoint,
        &stack,
        &["redrive", "--message-id", chosen[0]],
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("not in the dead-letter queue"),
        "{}",
        stderr(&output)
    );
    wait_visible(&stack, &dlq_url, 2).await;
}

/// Every message sent to the dead-letter queue is, after an interrupted
/// redrive, in the worker's queue or back in the dead-letter queue.
async fn assert_nothing_lost(stack: &Stack, sent: &HashMap<String, String>) -> (usize, usize) {
    let dlq_url = stack.resources.dead_letter_queue_url.clone();
    let main_url = stack.resources.queue_url.clone();
    let in_main: Vec<String> = drain(stack, &main_url)
        .await
        .into_iter()
        .map(|(b, _)| b)
        .collect();
    let in_dlq: Vec<String> = drain(stack, &dlq_url)
        .await
        .into_iter()
        .map(|(b, _)| b)
        .collect();
    for body in sent.values() {
        assert!(
            in_main.contains(body) || in_dlq.contains(body),
            "lost: {body}\nmain: {in_main:?}\ndlq: {in_dlq:?}"
        );
    }
    (in_main.len(), in_dlq.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redrive_whose_deletes_start_failing_half_way_loses_nothing() {
    let moto = Moto::start();
    let stack = stack(&moto).await;
    let sent = dead_letter(&stack, 30).await;
    // Slow calls, so the redrive is still running when the deletes break.
    let proxy = FaultProxy::start(
        &moto.endpoint,
        FaultConfig::new(11).latency(1.0, Duration::from_millis(60)),
    )
    .await;
    let mut command = dlq_command(&moto, &proxy.endpoint, &stack, &["redrive", "--all"]);
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("a few messages moved", WAIT, || async {
        (queue_depth(&stack.clients, &stack.resources.queue_url)
            .await
            .0
            >= 3)
            .then_some(())
    })
    .await;
    proxy.set_config(
        FaultConfig::new(11)
            .latency(1.0, Duration::from_millis(60))
            .operation("sqs", "DeleteMessage", 1.0),
    );
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("sqs:DeleteMessage on"),
        "{}",
        stderr(&output)
    );
    // Released at once on the failure, not after the hold.
    let (main, dlq_left) = assert_nothing_lost(&stack, &sent).await;
    assert!(main >= 3 && dlq_left >= 1, "main {main}, dlq {dlq_left}");
    assert!(main + dlq_left >= 30, "main {main}, dlq {dlq_left}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redrive_that_cannot_send_moves_nothing_and_loses_nothing() {
    let moto = Moto::start();
    let stack = stack(&moto).await;
    let sent = dead_letter(&stack, 5).await;
    let proxy = FaultProxy::start(
        &moto.endpoint,
        FaultConfig::new(5).operation("sqs", "SendMessage", 1.0),
    )
    .await;
    let output = dlq(&moto, &proxy.endpoint, &stack, &["redrive", "--all"]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("sqs:SendMessage on"),
        "{}",
        stderr(&output)
    );
    let dlq_url = stack.resources.dead_letter_queue_url.clone();
    wait_visible(&stack, &dlq_url, 5).await;
    let (main, dlq_left) = assert_nothing_lost(&stack, &sent).await;
    assert_eq!((main, dlq_left), (0, 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redrive_killed_half_way_loses_nothing() {
    let moto = Moto::start();
    let stack = stack(&moto).await;
    let sent = dead_letter(&stack, 30).await;
    let proxy = FaultProxy::start(
        &moto.endpoint,
        FaultConfig::new(3).latency(1.0, Duration::from_millis(60)),
    )
    .await;
    let mut child: Child = dlq_command(&moto, &proxy.endpoint, &stack, &["redrive", "--all"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("a few messages moved", WAIT, || async {
        (queue_depth(&stack.clients, &stack.resources.queue_url)
            .await
            .0
            >= 3)
            .then_some(())
    })
    .await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the redrive ended before the kill"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    drop(proxy);
    // The killed command released nothing: the messages it held (at most
    // one batch) come back when their hold expires. Every message is in
    // the worker's queue or the dead-letter queue, counted in flight too.
    let main_bodies: Vec<String> = drain(&stack, &stack.resources.queue_url.clone())
        .await
        .into_iter()
        .map(|(b, _)| b)
        .collect();
    let dlq_url = stack.resources.dead_letter_queue_url.clone();
    let (visible, held) = queue_depth(&stack.clients, &dlq_url).await;
    let dlq_bodies: Vec<String> = drain(&stack, &dlq_url)
        .await
        .into_iter()
        .map(|(b, _)| b)
        .collect();
    assert_eq!(dlq_bodies.len() as u64, visible);
    let missing = sent
        .values()
        .filter(|b| !main_bodies.contains(b) && !dlq_bodies.contains(b))
        .count() as u64;
    assert!(held <= 10, "at most one batch is held: {held}");
    assert!(
        missing <= held,
        "{missing} not in either queue, {held} held in the dead-letter queue"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_a_redrive_between_messages_and_releases_the_rest_at_once() {
    let moto = Moto::start();
    let stack = stack(&moto).await;
    let sent = dead_letter(&stack, 30).await;
    let proxy = FaultProxy::start(
        &moto.endpoint,
        FaultConfig::new(9).latency(1.0, Duration::from_millis(60)),
    )
    .await;
    let child = dlq_command(&moto, &proxy.endpoint, &stack, &["redrive", "--all"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("a few messages moved", WAIT, || async {
        (queue_depth(&stack.clients, &stack.resources.queue_url)
            .await
            .0
            >= 3)
            .then_some(())
    })
    .await;
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("interrupted after moving"),
        "{}",
        stderr(&output)
    );
    // Well inside the 60 s hold: the held messages were released, not left to expire.
    let dlq_url = stack.resources.dead_letter_queue_url.clone();
    wait_for(
        "no message held in the dead-letter queue",
        Duration::from_secs(20),
        || async { (queue_depth(&stack.clients, &dlq_url).await.1 == 0).then_some(()) },
    )
    .await;
    let (main, dlq_left) = assert_nothing_lost(&stack, &sent).await;
    assert_eq!(
        main + dlq_left,
        30,
        "stopped between messages: no duplicate"
    );
    assert!(main >= 3 && dlq_left >= 1, "main {main}, dlq {dlq_left}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_warns_when_the_dead_letter_queue_has_its_own_redrive_policy() {
    let moto = Moto::start();
    let stack = stack(&moto).await;
    dead_letter(&stack, 1).await;
    let inbox_arn = stack
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(&stack.alert_inbox_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    stack
        .clients
        .sqs
        .set_queue_attributes()
        .queue_url(&stack.resources.dead_letter_queue_url)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            serde_json::json!({ "deadLetterTargetArn": inbox_arn, "maxReceiveCount": "10" })
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    let output = dlq(&moto, &moto.endpoint, &stack, &["list"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("redrive policy of its own (maxReceiveCount 10)"),
        "{}",
        stderr(&output)
    );
    assert_eq!(stdout(&output).lines().count(), 2, "{}", stdout(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_refuses_without_yes_and_says_how_many() {
    let moto = Moto::start();
    let stack = stack(&moto).await;
    dead_letter(&stack, 3).await;
    let output = dlq(&moto, &moto.endpoint, &stack, &["purge"]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("purge would delete 3 message(s)"),
        "{}",
        stderr(&output)
    );
    assert!(stderr(&output).contains("--yes"));
    let dlq_url = stack.resources.dead_letter_queue_url.clone();
    assert_eq!(queue_depth(&stack.clients, &dlq_url).await, (3, 0));

    let output = dlq(&moto, &moto.endpoint, &stack, &["purge", "--yes"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with("purged 3 message(s)"),
        "{}",
        stdout(&output)
    );
    wait_visible(&stack, &dlq_url, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_without_a_redrive_policy_is_named() {
    let moto = Moto::start();
    let stack = stack(&moto).await;
    let output = dlq(
        &moto,
        &moto.endpoint,
        &stack,
        &["--queue-url", &stack.alert_inbox_url, "list"],
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains("has no RedrivePolicy") && text.contains("--dlq-url"),
        "{text}"
    );

    let missing = format!("{}/123456789012/no-such-dlq", moto.endpoint);
    let output = dlq(
        &moto,
        &moto.endpoint,
        &stack,
        &["--dlq-url", &missing, "list"],
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains(&format!("on {missing} failed")) && text.contains("does not exist"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_cut_by_max_messages_says_so_and_releases_everything() {
    let moto = Moto::start();
    let stack = stack(&moto).await;
    dead_letter(&stack, 12).await;
    let args = ["list", "--format", "json", "--max-messages", "5"];
    let output = dlq(&moto, &moto.endpoint, &stack, &args).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let listed: Vec<serde_json::Value> = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(listed.len(), 5);
    assert!(
        stderr(&output).contains("only the first are shown"),
        "{}",
        stderr(&output)
    );
    wait_visible(&stack, &stack.resources.dead_letter_queue_url, 12).await;
}

/// The empty-value rule (tests/settings.rs checks the `dlq` level) for
/// the nested actions: empty variables mean unset, empty flags are refused.
#[test]
fn nested_actions_follow_the_empty_value_rule() {
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = Command::new(BIN);
        command.args(args).arg("--print-settings");
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("FLEETWATCH_") {
                command.env_remove(name);
            }
        }
        command.envs(env.iter().copied()).output().unwrap()
    };
    let empty = [("FLEETWATCH_QUEUE_URL", ""), ("FLEETWATCH_DLQ_URL", "")];
    for action in [
        vec!["dlq", "list"],
        vec!["dlq", "list", "--format", "json"],
        vec!["dlq", "redrive", "--all"],
        vec!["dlq", "purge"],
    ] {
        let unset = run(&action, &[]);
        let with_empty = run(&action, &empty);
        assert!(unset.status.success(), "{action:?}: {}", stderr(&unset));
        assert_eq!(stdout(&unset), stdout(&with_empty), "{action:?}");
        for flag in ["--queue-url", "--dlq-url"] {
            let mut args = action.clone();
            args.extend([flag, ""]);
            let output = run(&args, &[]);
            assert_eq!(output.status.code(), Some(2), "{args:?}");
            assert!(stderr(&output).contains(flag), "{}", stderr(&output));
        }
    }
    let output = run(&["dlq", "redrive"], &[]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "redrive needs --all or --message-id"
    );
}

/// moto has no `StartMessageMoveTask`, so the path taken where SQS has it
/// is checked against a mocked SQS: `--all` starts one task from the
/// dead-letter queue to the worker's queue, and receives nothing itself.
#[tokio::test]
async fn a_full_redrive_uses_start_message_move_task_where_sqs_has_it() {
    use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
    use aws_sdk_sqs::operation::get_queue_attributes::GetQueueAttributesOutput;
    use aws_sdk_sqs::operation::start_message_move_task::StartMessageMoveTaskOutput;
    use aws_sdk_sqs::types::QueueAttributeName;
    use aws_smithy_mocks::{MockResponseInterceptor, RuleMode, create_mock_http_client, mock};
    use fleetwatch::ops::dlq::{Queues, Redriven, redrive_all};
    use tokio_util::sync::CancellationToken;

    const ARN: &str = "arn:aws:sqs:us-east-1:123456789012:";
    let attributes = mock!(aws_sdk_sqs::Client::get_queue_attributes).then_compute_output(|r| {
        let name = r
            .queue_url()
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .unwrap_or_default();
        let wants_arn = r.attribute_names().contains(&QueueAttributeName::QueueArn);
        let out = GetQueueAttributesOutput::builder();
        if wants_arn {
            out.attributes(QueueAttributeName::QueueArn, format!("{ARN}{name}"))
                .build()
        } else {
            out.attributes(QueueAttributeName::ApproximateNumberOfMessages, "7")
                .attributes(
                    QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                    "0",
                )
                .build()
        }
    });
    let task = mock!(aws_sdk_sqs::Client::start_message_move_task)
        .match_requests(|r| {
            r.source_arn() == Some(&format!("{ARN}fleet-dlq"))
                && r.destination_arn() == Some(&format!("{ARN}fleet"))
        })
        .then_output(|| {
            StartMessageMoveTaskOutput::builder()
                .task_handle("task-1")
                .build()
        });
    let interceptor = MockResponseInterceptor::new()
        .rule_mode(RuleMode::MatchAny)
        .with_rule(&attributes)
        .with_rule(&task);
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .build();
    let sqs = aws_sdk_sqs::Client::from_conf(config);
    let queues = Queues {
        dlq_url: "https://sqs.us-east-1.amazonaws.com/123456789012/fleet-dlq".into(),
        main_url: Some("https://sqs.us-east-1.amazonaws.com/123456789012/fleet".into()),
    };
    let outcome = redrive_all(&sqs, &queues, true, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        outcome,
        Redriven::MoveTask {
            handle: "task-1".into(),
            source_arn: format!("{ARN}fleet-dlq"),
            messages: 7,
        }
    );
    assert_eq!(task.num_calls(), 1);
}
