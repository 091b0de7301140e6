//! Hangs, stalls and a wedged worker, with the real binary behind the
//! fault proxy (`common::fault_proxy`): a call that is accepted and never
//! answered ends in a timeout and is retried, a body that stops mid-way
//! fails after `FLEETWATCH_S3_IDLE_TIMEOUT` and is read again, the
//! heartbeat survives a hung extension, and `/healthz` fails while nothing
//! moves, so the container health check replaces a wedged task.
//!
//! Timeouts are set small through the worker's settings so each test runs
//! in seconds, except where a 20 s long poll is part of the story. Waits
//! are on conditions with deadlines, never fixed sleeps.

mod common;

use std::time::{Duration, Instant};

use common::fault_proxy::{FaultConfig, FaultProxy, operation_of};
use common::process::{Bootstrapped, WorkerProcess, bootstrap};
use common::{Moto, Stack, parse_metric, queue_depth, wait_for};

const WAIT: Duration = Duration::from_secs(90);

/// A worker whose every AWS call goes through `proxy`, with `extra`
/// settings on top of bootstrap's.
fn start_worker(
    moto: &Moto,
    setup: &Bootstrapped,
    proxy: &FaultProxy,
    extra: &[(&str, &str)],
) -> WorkerProcess {
    let mut env = vec![("AWS_ENDPOINT_URL", proxy.endpoint.as_str())];
    env.extend_from_slice(extra);
    WorkerProcess::start(moto, setup, &env)
}

/// `n` readings of one device, one per minute; the first breaks the
/// default rule (`engine_temp_c > 100`) when `hot`.
fn readings(device: &str, n: usize, hot: bool) -> String {
    (0..n)
        .map(|i| {
            let temp = if hot && i == 0 { 120 } else { 80 };
            format!(
                "{{\"device_id\":\"{device}\",\"timestamp\":\"2025-10-19T10:{:02}:00Z\",\"engine_temp_c\":{temp}}}\n",
                i % 60
            )
        })
        .collect()
}

/// Waits until the table holds `n` readings of `device`.
async fn wait_stored(stack: &Stack, device: &str, n: usize, within: Duration) {
    wait_for(
        &format!("{n} readings of {device} stored"),
        within,
        || async {
            let stored = stack
                .items()
                .await
                .keys()
                .filter(|(d, _)| d == device)
                .count();
            (stored >= n).then_some(())
        },
    )
    .await;
}

async fn wait_queue_empty(stack: &Stack) {
    wait_for("the queue to be empty", WAIT, || async {
        (stack.queue_depth().await == (0, 0)).then_some(())
    })
    .await;
}

/// A counter of the worker's `/metrics` (0 while absent).
async fn worker_metric(worker: &WorkerProcess, name: &str, labels: &[(&str, &str)]) -> f64 {
    worker
        .metrics()
        .await
        .map_or(0.0, |text| parse_metric(&text, name, labels) + 0.0)
}

/// GET `path` of the worker's HTTP server: status and body.
async fn get(worker: &WorkerProcess, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = worker.metrics_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(authority).await.ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut text))
        .await
        .ok()?
        .ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

/// Before: no SQS call had a timeout, so a `ReceiveMessage` that was never
/// answered stopped the loop for good (and `/healthz` said 200). Now its
/// attempt ends after the 20 s wait plus `FLEETWATCH_AWS_CALL_TIMEOUT`, the
/// SDK retries, and the object uploaded meanwhile is processed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_receive_times_out_and_the_worker_carries_on() {
    let moto = Moto::start();
    let setup = bootstrap(&moto);
    let stack = setup.stack(&moto).await;
    // Hung from the first receive on (the start-up checks use other calls).
    let proxy = FaultProxy::start(
        &moto.endpoint,
        FaultConfig::new(1).hang("sqs", "ReceiveMessage"),
    )
    .await;
    let worker = start_worker(
        &moto,
        &setup,
        &proxy,
        &[("FLEETWATCH_AWS_CALL_TIMEOUT", "1s")],
    );
    wait_for("a hung ReceiveMessage", WAIT, || async {
        (proxy.stats("sqs").hung >= 1).then_some(())
    })
    .await;
    let hung_at = Instant::now();
    // Later receives go through; the hung one stays hung.
    proxy.heal();
    stack
        .put_object("incoming/after-hang.jsonl", readings("HANG01", 3, false))
        .await;
    wait_stored(&stack, "HANG01", 3, WAIT).await;
    wait_queue_empty(&stack).await;
    let waited = hung_at.elapsed();
    assert!(
        waited >= Duration::from_secs(20),
        "the hung receive was waited out, not answered ({waited:?})"
    );
    assert!(
        worker_metric(
            &worker,
            "fleetwatch_aws_timeouts_total",
            &[("service", "sqs"), ("kind", "attempt")]
        )
        .await
            >= 1.0
    );
    assert_eq!(get(&worker, "/healthz").await.map(|(s, _)| s), Some(200));
    eprintln!("hung receive: object stored {waited:?} after the hang");
}

/// Before: a `BatchWriteItem` that was never answered held its message
/// for ever (the heartbeat kept it invisible), nothing was stored. Now the
/// attempt times out and the write is retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_write_times_out_and_the_readings_are_stored() {
    let moto = Moto::start();
    let setup = bootstrap(&moto);
    let stack = setup.stack(&moto).await;
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::new(2)).await;
    let worker = start_worker(
        &moto,
        &setup,
        &proxy,
        &[("FLEETWATCH_AWS_CALL_TIMEOUT", "1s")],
    );
    worker.wait_ready().await;
    proxy.set_config(FaultConfig::new(2).hang("dynamodb", "BatchWriteItem"));
    stack
        .put_object("incoming/hung-write.jsonl", readings("WRITE01", 5, false))
        .await;
    wait_for("a hung BatchWriteItem", WAIT, || async {
        (proxy.stats("dynamodb").hung >= 1).then_some(())
    })
    .await;
    proxy.heal();
    wait_stored(&stack, "WRITE01", 5, WAIT).await;
    wait_queue_empty(&stack).await;
    assert!(
        worker_metric(
            &worker,
            "fleetwatch_aws_timeouts_total",
            &[("service", "dynamodb"), ("kind", "attempt")]
        )
        .await
            >= 1.0
    );
}

/// Before: an SNS `PublishBatch` that was never answered held its message
/// for ever and the alert never went out. Now the attempt times out, is
/// retried, and the alert is published once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_publish_times_out_and_the_alert_goes_out() {
    let moto = Moto::start();
    let setup = bootstrap(&moto);
    let stack = setup.stack(&moto).await;
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::new(3)).await;
    let worker = start_worker(
        &moto,
        &setup,
        &proxy,
        &[("FLEETWATCH_AWS_CALL_TIMEOUT", "1s")],
    );
    worker.wait_ready().await;
    proxy.set_config(FaultConfig::new(3).hang("sns", "PublishBatch"));
    stack
        .put_object("incoming/hung-publish.jsonl", readings("HOT01", 2, true))
        .await;
    wait_for("a hung PublishBatch", WAIT, || async {
        (proxy.stats("sns").hung >= 1).then_some(())
    })
    .await;
    proxy.heal();
    wait_stored(&stack, "HOT01", 2, WAIT).await;
    wait_queue_empty(&stack).await;
    let alerts = stack.drain_alerts().await;
    let hot = alerts.iter().filter(|a| a["device_id"] == "HOT01").count();
    // The hung attempt was never forwarded, so SNS saw one publication.
    assert_eq!(hot, 1, "{alerts:?}");
    assert!(
        worker_metric(
            &worker,
            "fleetwatch_aws_timeouts_total",
            &[("service", "sns"), ("kind", "attempt")]
        )
        .await
            >= 1.0
    );
}

/// Before: a hung `ChangeMessageVisibility` stopped the heartbeat for good
/// (it awaited the call for ever), so the message's lease ran out while it
/// was still being worked on. Now the extension times out, is retried, and
/// the heartbeat goes on: the message is received once.
///
/// The object's body is held mid-way by the proxy so the message is still
/// being processed across several heartbeats (10 s visibility: every third
/// of it, about 3 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_heartbeat_times_out_and_the_lease_is_kept() {
    let moto = Moto::start();
    let setup = bootstrap(&moto);
    let stack = setup.stack(&moto).await;
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::new(4)).await;
    let worker = start_worker(
        &moto,
        &setup,
        &proxy,
        &[
            ("FLEETWATCH_AWS_CALL_TIMEOUT", "2s"),
            ("FLEETWATCH_VISIBILITY_TIMEOUT", "10s"),
            // The held body must outlast the heartbeats, not time out.
            ("FLEETWATCH_S3_IDLE_TIMEOUT", "10m"),
        ],
    );
    worker.wait_ready().await;
    proxy.set_config(
        FaultConfig::new(4)
            .stall_body("s3", "GetObject", 100)
            .hang("sqs", "ChangeMessageVisibility"),
    );
    stack
        .put_object("incoming/slow.jsonl", readings("SLOW01", 20, false))
        .await;
    wait_for("a hung visibility extension", WAIT, || async {
        (proxy.stats("sqs").hung >= 1 && proxy.stats("s3").stalled >= 1).then_some(())
    })
    .await;
    // Extensions go through again; the body stays held.
    proxy.heal();
    wait_for(
        "two visibility extensions after the hung one",
        Duration::from_secs(30),
        || async {
            let extended =
                worker_metric(&worker, "fleetwatch_sqs_visibility_extensions_total", &[]).await;
            (extended >= 2.0).then_some(())
        },
    )
    .await;
    proxy.release_hung();
    wait_stored(&stack, "SLOW01", 20, WAIT).await;
    wait_queue_empty(&stack).await;
    let processed = worker_metric(
        &worker,
        "fleetwatch_objects_processed_total",
        &[("outcome", "ok")],
    )
    .await;
    assert_eq!(processed, 1.0, "the message was never handed out again");
    assert!(
        worker_metric(
            &worker,
            "fleetwatch_aws_timeouts_total",
            &[("service", "sqs"), ("kind", "attempt")]
        )
        .await
            >= 1.0
    );
}

/// A body that sends part of the object and then nothing fails after
/// `FLEETWATCH_S3_IDLE_TIMEOUT` as a transient error; the message is
/// retried and the object stored whole. (Before, only the SDK's built-in
/// stalled-stream protection, with its fixed 5 s grace, ended such a read:
/// not configurable and not counted, so this test failed on its metric.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_fails_after_the_idle_timeout_and_is_read_again() {
    let moto = Moto::start();
    let setup = bootstrap(&moto);
    let stack = setup.stack(&moto).await;
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::new(5)).await;
    let worker = start_worker(
        &moto,
        &setup,
        &proxy,
        &[("FLEETWATCH_S3_IDLE_TIMEOUT", "2s")],
    );
    worker.wait_ready().await;
    proxy.set_config(FaultConfig::new(5).stall_body("s3", "GetObject", 300));
    stack
        .put_object("incoming/stalls.jsonl", readings("STALL01", 30, false))
        .await;
    wait_for("a stalled body", WAIT, || async {
        (proxy.stats("s3").stalled >= 1).then_some(())
    })
    .await;
    let stalled_at = Instant::now();
    proxy.heal();
    // 2 s idle timeout, then the message's first redelivery delay (10 s).
    wait_stored(&stack, "STALL01", 30, Duration::from_secs(18)).await;
    wait_queue_empty(&stack).await;
    assert!(
        worker_metric(
            &worker,
            "fleetwatch_aws_timeouts_total",
            &[("service", "s3"), ("kind", "body_idle")]
        )
        .await
            >= 1.0
    );
    assert_eq!(
        queue_depth(&stack.clients, &setup.dead_letter_queue_url).await,
        (0, 0)
    );
    eprintln!(
        "stalled body: stored {:?} after the stall",
        stalled_at.elapsed()
    );
}

/// `fleetwatch_records_total{outcome="stored"}` of the worker.
async fn stored(worker: &WorkerProcess) -> f64 {
    worker_metric(worker, "fleetwatch_records_total", &[("outcome", "stored")]).await
}

/// Before: a read that failed after a chunk was stored restarted the
/// object from its start and counted its lines again, so
/// `fleetwatch_records_total` said more readings were stored (and
/// rejected) than the object holds. Now every line is counted once however
/// often the object is read. The restart is also visible in
/// `fleetwatch_aws_requests_total`: S3 was asked for the object more than
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_read_again_counts_each_line_once() {
    let moto = Moto::start();
    let setup = bootstrap(&moto);
    let stack = setup.stack(&moto).await;
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::new(6)).await;
    let worker = start_worker(
        &moto,
        &setup,
        &proxy,
        &[("FLEETWATCH_S3_IDLE_TIMEOUT", "2s")],
    );
    worker.wait_ready().await;
    const READINGS: usize = 2500;
    let mut text = String::new();
    for i in 0..READINGS {
        text.push_str(&format!(
            "{{\"device_id\":\"AGAIN01\",\"timestamp\":{},\"engine_temp_c\":80}}\n",
            1_760_000_000 + i * 60
        ));
        if i == 3 {
            text.push_str("not a reading\n"); // rejected
            text.push_str(&format!(
                // an exact repeat: a duplicate
                "{{\"device_id\":\"AGAIN01\",\"timestamp\":{},\"engine_temp_c\":80}}\n",
                1_760_000_000 + i * 60
            ));
        }
    }
    // The body stops after about 1,400 lines: one chunk of 1,000 is stored
    // before the read fails.
    proxy.set_config(FaultConfig::new(6).stall_body("s3", "GetObject", 100_000));
    stack.put_object("incoming/again.jsonl", text).await;
    wait_for("a chunk stored, then a stalled body", WAIT, || async {
        (proxy.stats("s3").stalled >= 1 && stored(&worker).await >= 1000.0).then_some(())
    })
    .await;
    proxy.heal();
    wait_stored(&stack, "AGAIN01", READINGS, WAIT).await;
    wait_queue_empty(&stack).await;
    assert_eq!(stored(&worker).await, READINGS as f64);
    assert_eq!(
        worker_metric(
            &worker,
            "fleetwatch_records_total",
            &[("outcome", "duplicate")]
        )
        .await,
        1.0
    );
    assert_eq!(
        worker_metric(
            &worker,
            "fleetwatch_records_total",
            &[("outcome", "rejected")]
        )
        .await,
        1.0
    );
    assert_eq!(
        worker_metric(
            &worker,
            "fleetwatch_records_rejected_total",
            &[("reason", "malformed")]
        )
        .await,
        1.0
    );
    let requests = |service: &'static str, operation: &'static str| {
        let worker = &worker;
        async move {
            worker_metric(
                worker,
                "fleetwatch_aws_requests_total",
                &[("service", service), ("operation", operation)],
            )
            .await
        }
    };
    assert!(
        requests("s3", "GetObject").await >= 2.0,
        "the object was read again"
    );
    assert!(requests("dynamodb", "BatchWriteItem").await >= (READINGS / 25) as f64);
    assert!(requests("sqs", "ReceiveMessage").await >= 1.0);
    assert!(
        requests("sqs", "DeleteMessage").await + requests("sqs", "DeleteMessageBatch").await >= 1.0
    );
}

/// Before: `/healthz` answered 200 whatever the loop did. Now, with every
/// receive hung and nothing to cut it (a 10 min call timeout stands in for
/// the missing timeouts), it fails with the reason once nothing has moved
/// for `FLEETWATCH_LIVENESS_TIMEOUT`, so `fleetwatch healthcheck` fails
/// too; when the hang ends it recovers by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_fails_while_the_worker_is_wedged_and_recovers() {
    let moto = Moto::start();
    let setup = bootstrap(&moto);
    let stack = setup.stack(&moto).await;
    let proxy = FaultProxy::start(
        &moto.endpoint,
        FaultConfig::new(6).hang("sqs", "ReceiveMessage"),
    )
    .await;
    let worker = start_worker(
        &moto,
        &setup,
        &proxy,
        &[
            ("FLEETWATCH_LIVENESS_TIMEOUT", "30s"),
            ("FLEETWATCH_AWS_CALL_TIMEOUT", "10m"),
        ],
    );
    wait_for("a hung ReceiveMessage", WAIT, || async {
        (proxy.stats("sqs").hung >= 1).then_some(())
    })
    .await;
    let hung_at = Instant::now();
    assert_eq!(
        get(&worker, "/healthz").await.map(|(s, _)| s),
        Some(200),
        "healthy until the liveness timeout"
    );
    let healthz = format!("{}/healthz", worker.metrics_url);
    let (status, body) = wait_for("/healthz to fail", WAIT, || async {
        get(&worker, "/healthz").await.filter(|(s, _)| *s != 200)
    })
    .await;
    assert_eq!(status, 503);
    assert!(
        body.contains("no progress") && body.contains("FLEETWATCH_LIVENESS_TIMEOUT"),
        "{body}"
    );
    assert!(hung_at.elapsed() >= Duration::from_secs(25), "{body}");
    assert!(
        fleetwatch::health::probe(&healthz, Duration::from_secs(3))
            .await
            .is_err(),
        "the container health check fails"
    );

    // The hang ends: the held receive is answered, with this message.
    proxy.heal();
    stack
        .put_object("incoming/unwedged.jsonl", readings("WEDGE01", 2, false))
        .await;
    proxy.release_hung();
    wait_for("/healthz to recover", WAIT, || async {
        fleetwatch::health::probe(&healthz, Duration::from_secs(3))
            .await
            .ok()
    })
    .await;
    wait_stored(&stack, "WEDGE01", 2, WAIT).await;
}

/// The proxy's own new faults: operations are named as AWS does, and an
/// outage ends at its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_names_operations_and_ends_an_outage_on_time() {
    use hyper::Method;
    let cases = [
        (
            "dynamodb",
            Some("DynamoDB_20120810.BatchWriteItem"),
            Method::POST,
            "/",
            "",
            "BatchWriteItem",
        ),
        (
            "sqs",
            Some("AmazonSQS.ReceiveMessage"),
            Method::POST,
            "/",
            "",
            "ReceiveMessage",
        ),
        (
            "sns",
            None,
            Method::POST,
            "/",
            "Action=PublishBatch&Version=2010-03-31",
            "PublishBatch",
        ),
        (
            "s3",
            None,
            Method::GET,
            "/bucket/incoming/a.jsonl",
            "",
            "GetObject",
        ),
        ("s3", None, Method::PUT, "/bucket/q/a", "", "PutObject"),
        ("s3", None, Method::GET, "/bucket", "", "GET /bucket"),
        (
            "sagemaker",
            None,
            Method::POST,
            "/endpoints/e/invocations",
            "",
            "InvokeEndpoint",
        ),
    ];
    for (service, target, method, path, body, expected) in cases {
        assert_eq!(
            operation_of(service, target, &method, path, body.as_bytes()),
            expected
        );
    }

    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, FaultConfig::new(7)).await;
    let mut config = moto.sdk_config().await.into_builder();
    config.set_endpoint_url(Some(proxy.endpoint.clone()));
    // No SDK retries: each call is one request the proxy decides on.
    let config = config
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    let clients = fleetwatch::aws::Clients::new(&config, true);
    let list = || async { clients.dynamodb.list_tables().send().await.is_ok() };
    assert!(list().await, "no outage yet");
    proxy.outage("dynamodb", Duration::from_secs(2));
    let started = Instant::now();
    assert!(!list().await, "down during the outage");
    assert!(
        clients.sqs.list_queues().send().await.is_ok(),
        "other services are unaffected"
    );
    wait_for("the outage to end", Duration::from_secs(10), || async {
        list().await.then_some(())
    })
    .await;
    assert!(started.elapsed() >= Duration::from_millis(1500));
}
