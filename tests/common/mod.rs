//! Test harness: a real AWS emulator (`moto_server`) on a free loopback
//! port per test, AWS clients pointed at it, the worker's resources created
//! by `fleetwatch bootstrap`'s own code, and helpers that wait on
//! conditions with a deadline (never fixed sleeps).
//!
//! The emulator is `tests/common/moto-server-atomic`: python3's
//! `moto[server]` with DynamoDB's writes made atomic, as DynamoDB's are (the
//! tests that race workers on one item need it; see that file). Set
//! `MOTO_SERVER` to use another executable.

#![allow(dead_code)] // each test binary uses its own subset

pub mod fault_proxy;
pub mod process;

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_sqs::types::QueueAttributeName;

use fleetwatch::app::WorkerBuild;
use fleetwatch::aws::Clients;
use fleetwatch::bootstrap::{self, Plan, Resources};
use fleetwatch::config::{self, WorkerSettings};

pub const REGION: &str = "us-east-1";

/// A running `moto_server`, killed on drop.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    pub fn start() -> Moto {
        let port = free_port();
        let program = std::env::var("MOTO_SERVER").unwrap_or_else(|_| {
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/common/moto-server-atomic"
            )
            .into()
        });
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program} (pip install 'moto[server]'): {e}"));
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not start within 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        moto
    }

    /// SDK configuration for this emulator with dummy credentials.
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
            .load()
            .await
    }

    pub async fn clients(&self) -> Clients {
        Clients::new(&self.sdk_config().await, true)
    }

    /// Environment for a child `fleetwatch` process pointed at this emulator.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", REGION.into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test's own DynamoDB reads (full scans of what the worker stored):
/// on a loaded 2-core machine one page from the emulator can take longer
/// than the worker's 10 s per attempt, and the inspection is not what is
/// under test, so it gets a minute and the SDK's retries.
pub fn patient(client: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
    let config = client
        .config()
        .to_builder()
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_secs(60))
                .build(),
        )
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn bootstrap_settings() -> Plan {
    Plan {
        bucket: "fleet-telemetry".into(),
        queue_name: "fleet-telemetry".into(),
        table: "fleet-readings".into(),
        topic_name: "fleet-alerts".into(),
        alarm_table: "fleet-alarms".into(),
        max_receive_count: 5,
    }
}

/// First redelivery delay of the tests' workers: the binary's 10 s would
/// only make the tests that fail a message wait longer.
pub const TEST_RETRY_BASE: Duration = Duration::from_secs(1);

/// `fleetwatch worker`'s settings exactly as the binary gets them (the real
/// command-line definition, its defaults and its validation:
/// [`config::try_parse_from`]), for `stack`'s
/// queue, table (unless `args` gives `--table`) and alarm table, with
/// `args` on top.
/// `FLEETWATCH_*` variables of the test's environment apply as they would
/// to the binary; the suite sets none.
pub fn worker_settings(stack: &Stack, args: &[&str]) -> WorkerSettings {
    let mut argv = vec![
        "fleetwatch",
        "worker",
        "--queue-url",
        stack.resources.queue_url.as_str(),
    ];
    if !args.contains(&"--table") {
        argv.extend(["--table", stack.resources.table.as_str()]);
    }
    if !args.contains(&"--alarm-table") {
        argv.extend(["--alarm-table", stack.resources.alarm_table.as_str()]);
    }
    argv.extend(args);
    let cli = fleetwatch::config::try_parse_from(argv.iter().copied())
        .unwrap_or_else(|e| panic!("{argv:?} was refused: {e}"));
    let config::Command::Worker(settings) = cli.command else {
        panic!("{argv:?} is not the worker")
    };
    *settings
}

/// The worker for `settings`, built by the binary's own builder
/// ([`fleetwatch::app::worker`]) on `clients` (the stack's, or ones with a
/// service behind a fault proxy), with [`TEST_RETRY_BASE`].
pub fn build_worker(settings: &WorkerSettings, clients: &Clients) -> WorkerBuild {
    let mut built = fleetwatch::app::worker(settings, clients).expect("the worker builds");
    built.loop_settings.retry_base = TEST_RETRY_BASE;
    built
}

/// The worker's resources plus a queue subscribed to the alert topic, so a
/// test can read every alert that was published.
pub struct Stack {
    pub clients: Clients,
    /// A second bucket with no notification, for tests that send their own
    /// notification bodies.
    pub raw_bucket: String,
    pub resources: Resources,
    pub alert_inbox_url: String,
}

impl Stack {
    pub async fn create(moto: &Moto) -> Stack {
        let clients = moto.clients().await;
        let resources = bootstrap::run(&clients, REGION, &bootstrap_settings())
            .await
            .expect("bootstrap");
        Stack::attach(clients, resources).await
    }

    /// A stack around resources created elsewhere (e.g. by the binary's
    /// bootstrap): adds the alert inbox and the raw bucket.
    pub async fn attach(clients: Clients, resources: Resources) -> Stack {
        let inbox = clients
            .sqs
            .create_queue()
            .queue_name("alert-inbox")
            .send()
            .await
            .unwrap();
        let alert_inbox_url = inbox.queue_url.unwrap();
        let inbox_arn = clients
            .sqs
            .get_queue_attributes()
            .queue_url(&alert_inbox_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&QueueAttributeName::QueueArn]
            .clone();
        clients
            .sns
            .subscribe()
            .topic_arn(&resources.topic_arn)
            .protocol("sqs")
            .endpoint(inbox_arn)
            .send()
            .await
            .unwrap();
        let raw_bucket = "fleet-raw".to_owned();
        clients
            .s3
            .create_bucket()
            .bucket(&raw_bucket)
            .send()
            .await
            .unwrap();
        Stack {
            clients,
            raw_bucket,
            resources,
            alert_inbox_url,
        }
    }

    /// Uploads to the notified bucket: S3 (the emulator) notifies the queue.
    pub async fn put_object(&self, key: &str, body: impl Into<Vec<u8>>) {
        self.put_object_in(&self.resources.bucket.clone(), key, body)
            .await;
    }

    /// Uploads to any bucket.
    pub async fn put_object_in(&self, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
        self.clients
            .s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(body.into()))
            .send()
            .await
            .unwrap();
    }

    /// Sends a raw message body to the worker's queue.
    pub async fn send(&self, body: impl Into<String>) {
        self.clients
            .sqs
            .send_message()
            .queue_url(&self.resources.queue_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    /// Sends the S3 event notification S3 would send for `keys` of the raw bucket.
    pub async fn notify_raw(&self, keys: &[&str]) {
        self.send(s3_event(&self.raw_bucket, keys)).await;
    }

    /// Every reading item in the table, keyed by (device_id, timestamp);
    /// the alert ledger's items (`alert#…`) and the fleet status records
    /// (`fleet#status`) are left out.
    pub async fn items(&self) -> HashMap<(String, String), HashMap<String, AttributeValue>> {
        let mut out = HashMap::new();
        let mut start = None;
        loop {
            let page = patient(&self.clients.dynamodb)
                .scan()
                .table_name(&self.resources.table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            for item in page.items.unwrap_or_default() {
                let key = (s(&item, "device_id"), s(&item, "timestamp"));
                // Neither the alert ledger nor the fleet status records.
                if !key.0.starts_with("alert#") && !key.0.starts_with("fleet#") {
                    out.insert(key, item);
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return out;
            }
        }
    }

    /// Visible plus in-flight messages of the worker's queue.
    pub async fn queue_depth(&self) -> (u64, u64) {
        queue_depth(&self.clients, &self.resources.queue_url).await
    }

    /// Reads the alerts that reached the inbox so far (the `sqs` JSON of
    /// each, plus the envelope's `_subject`, `_attributes` and SNS
    /// `_timestamp`), deleting them from the inbox.
    pub async fn drain_alerts(&self) -> Vec<serde_json::Value> {
        let mut alerts = Vec::new();
        loop {
            let out = self
                .clients
                .sqs
                .receive_message()
                .queue_url(&self.alert_inbox_url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                return alerts;
            }
            for m in messages {
                let envelope: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
                let inner = envelope["Message"].as_str().unwrap_or_default();
                let mut alert: serde_json::Value = serde_json::from_str(inner)
                    .unwrap_or_else(|_| serde_json::json!({ "raw": inner }));
                alert["_subject"] = envelope["Subject"].clone();
                alert["_timestamp"] = envelope["Timestamp"].clone();
                alert["_attributes"] = envelope["MessageAttributes"].clone();
                alerts.push(alert);
                self.clients
                    .sqs
                    .delete_message()
                    .queue_url(&self.alert_inbox_url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
}

pub async fn queue_depth(clients: &Clients, queue_url: &str) -> (u64, u64) {
    let attrs = clients
        .sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    let n = |k: QueueAttributeName| attrs.get(&k).and_then(|v| v.parse().ok()).unwrap_or(0);
    (
        n(QueueAttributeName::ApproximateNumberOfMessages),
        n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    )
}

pub type Item = HashMap<String, AttributeValue>;

pub fn s(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    match item.get(name) {
        Some(AttributeValue::S(v)) => v.clone(),
        other => panic!("{name} is not a string attribute: {other:?}"),
    }
}

pub fn n(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.clone(),
        other => panic!("{name} is not a number attribute: {other:?}"),
    }
}

pub fn m<'a>(
    item: &'a HashMap<String, AttributeValue>,
    name: &str,
) -> &'a HashMap<String, AttributeValue> {
    match item.get(name) {
        Some(AttributeValue::M(v)) => v,
        other => panic!("{name} is not a map attribute: {other:?}"),
    }
}

/// An S3 `ObjectCreated:Put` notification body, keys URL-encoded as S3 does.
pub fn s3_event(bucket: &str, keys: &[&str]) -> String {
    let records: Vec<serde_json::Value> = keys
        .iter()
        .map(|k| {
            serde_json::json!({
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventTime": "2025-10-19T22:47:00.000Z",
                "eventName": "ObjectCreated:Put",
                "s3": { "bucket": { "name": bucket }, "object": { "key": url_encode(k), "size": 1 } }
            })
        })
        .collect();
    serde_json::json!({ "Records": records }).to_string()
}

/// Form-style encoding as S3 applies to keys in notifications.
pub fn url_encode(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        match b {
            b' ' => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Polls `check` until it returns `Some`, failing the test at the deadline.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// POSTs JSON to the emulator's control API (`/moto-api/...`).
pub async fn moto_api_post(endpoint: &str, path: &str, body: &serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = endpoint.trim_start_matches("http://");
    let body = body.to_string();
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.split_whitespace().nth(1).unwrap_or_default();
    assert!(status.starts_with('2'), "{response}");
}

static METRICS: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
    std::sync::OnceLock::new();

/// Installs a Prometheus recorder for this test process (once).
pub fn install_metrics() {
    METRICS.get_or_init(|| {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .expect("a metrics recorder")
    });
}

/// The current value of a counter or gauge with exactly these labels, read
/// from the rendered exposition text (0 when absent). Counts are per test
/// process: nextest runs each test in its own process.
pub fn metric(name: &str, labels: &[(&str, &str)]) -> f64 {
    let Some(handle) = METRICS.get() else {
        return 0.0;
    };
    parse_metric(&handle.render(), name, labels)
}

/// Finds `name{labels} value` in Prometheus exposition text.
pub fn parse_metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let mut have: Vec<&str> = if label_text.is_empty() {
                vec![]
            } else {
                label_text.split(',').collect()
            };
            have.sort_unstable();
            let mut want: Vec<&str> = wanted.iter().map(String::as_str).collect();
            want.sort_unstable();
            (metric == name && have == want)
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}
