//! A fault-injecting HTTP/1.1 proxy between a process under test and the
//! emulator.
//!
//! Every request is forwarded to the upstream endpoint, except that on a
//! chosen fraction of requests per AWS service the proxy answers itself
//! with an injected failure instead: HTTP 500, HTTP 503 or throttling, each
//! in the error format of the service's protocol (AWS JSON with
//! `X-Amz-Target` for DynamoDB and SQS, REST-JSON for SageMaker, REST-XML
//! for S3, the query protocol's XML for SNS). An injected failure is never
//! forwarded: a 5xx means "not done", as with AWS. Optionally it also adds
//! latency, and "loses" DynamoDB `BatchWriteItem` responses: the write is
//! forwarded and done, then the client gets a 500 (it must treat the write
//! as not done and redo it, idempotently).
//!
//! The service is read from the SigV4 `Authorization` header's credential
//! scope (`Credential=AKID/20250101/us-east-1/<service>/aws4_request`).
//! Decisions come from a small seeded PRNG (splitmix64, one stream per
//! service), so for a given seed the n-th request of a service always meets
//! the same fate. Bodies are buffered (objects in
//! tests are small), which handles chunked bodies in both directions; both
//! sides keep connections alive.
//!
//! The proxy runs on the current Tokio runtime and stops when dropped.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The services the proxy tells apart (anything else is `other`).
pub const SERVICES: [&str; 5] = ["s3", "sqs", "dynamodb", "sns", "sagemaker"];

/// What to inject.
#[derive(Debug, Clone)]
pub struct FaultConfig {
    pub seed: u64,
    /// Fraction (0..=1) of each service's requests answered with an
    /// injected 500, 503 or throttling error (equally likely).
    pub fault_rate: HashMap<String, f64>,
    /// Overrides `fault_rate` for one operation of a JSON-protocol service,
    /// keyed `service/Operation` (`dynamodb/UpdateItem`).
    pub operation_rate: HashMap<String, f64>,
    /// Fraction of requests (of any service) delayed before being handled.
    pub latency_rate: f64,
    /// Longest added delay (uniform between 0 and this).
    pub max_latency: Duration,
    /// Fraction of DynamoDB `BatchWriteItem` requests that are forwarded
    /// (the write happens) but answered with a 500.
    pub lost_batch_write_rate: f64,
    /// Operations (`service/Operation`) whose requests fail in runs: `n`
    /// failures, then one success, again and again. Deterministic whatever
    /// else runs.
    pub intermittent: HashMap<String, u64>,
}

impl FaultConfig {
    /// No faults at all: a plain proxy.
    pub fn new(seed: u64) -> FaultConfig {
        FaultConfig {
            seed,
            fault_rate: HashMap::new(),
            operation_rate: HashMap::new(),
            latency_rate: 0.0,
            max_latency: Duration::ZERO,
            lost_batch_write_rate: 0.0,
            intermittent: HashMap::new(),
        }
    }

    /// Requests of one operation fail `failures` at a time, each run
    /// followed by one success (see `intermittent`).
    pub fn intermittent(mut self, service: &str, operation: &str, failures: u64) -> FaultConfig {
        self.intermittent
            .insert(format!("{service}/{operation}"), failures);
        self
    }

    /// The same fault rate on every known service.
    pub fn all_services(mut self, rate: f64) -> FaultConfig {
        for s in SERVICES {
            self.fault_rate.insert(s.to_owned(), rate);
        }
        self
    }

    pub fn service(mut self, service: &str, rate: f64) -> FaultConfig {
        self.fault_rate.insert(service.to_owned(), rate);
        self
    }

    /// A fault rate for one operation (`X-Amz-Target`'s suffix) only.
    pub fn operation(mut self, service: &str, operation: &str, rate: f64) -> FaultConfig {
        self.operation_rate
            .insert(format!("{service}/{operation}"), rate);
        self
    }

    pub fn latency(mut self, rate: f64, max: Duration) -> FaultConfig {
        self.latency_rate = rate;
        self.max_latency = max;
        self
    }

    pub fn lost_batch_writes(mut self, rate: f64) -> FaultConfig {
        self.lost_batch_write_rate = rate;
        self
    }
}

/// Counters for one service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceStats {
    pub requests: u64,
    pub forwarded: u64,
    pub internal_errors: u64,
    pub unavailable: u64,
    pub throttled: u64,
    /// Forwarded `BatchWriteItem`s answered with a 500 anyway.
    pub lost_responses: u64,
    pub delayed: u64,
    /// The upstream could not be reached (answered 502); not injected.
    pub upstream_errors: u64,
}

impl ServiceStats {
    /// Injected failures of any kind.
    pub fn injected(&self) -> u64 {
        self.internal_errors + self.unavailable + self.throttled + self.lost_responses
    }
}

/// One request answered with an injected failure (or whose response was
/// lost), for tests that need to know which operation failed.
#[derive(Debug, Clone)]
pub struct InjectedRecord {
    pub service: String,
    /// `X-Amz-Target`'s operation (`UpdateItem`), the query protocol's
    /// `Action`, or the HTTP method and path for REST services.
    pub operation: String,
    /// The request body (JSON and query protocols), for matching keys.
    pub body: String,
    /// `internal`, `unavailable`, `throttled` or `lost_response`.
    pub kind: &'static str,
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Internal,
    Unavailable,
    Throttle,
}

struct Shared {
    upstream: Uri,
    client: Client<HttpConnector, Full<Bytes>>,
    config: Mutex<FaultConfig>,
    /// One PRNG stream per service, so the n-th request of a service meets
    /// the same fate for a given seed whatever the other services do.
    rngs: Mutex<HashMap<String, SplitMix64>>,
    stats: Mutex<HashMap<String, ServiceStats>>,
    injected: Mutex<Vec<InjectedRecord>>,
    request_ids: std::sync::atomic::AtomicU64,
    /// Requests seen per intermittent operation.
    intermittent_seen: Mutex<HashMap<String, u64>>,
}

/// A running proxy; stops accepting when dropped.
pub struct FaultProxy {
    /// `http://127.0.0.1:<port>`: point `AWS_ENDPOINT_URL` here.
    pub endpoint: String,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (e.g. `http://127.0.0.1:5000`).
    pub async fn start(upstream: &str, config: FaultConfig) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr: SocketAddr = listener.local_addr().unwrap();
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(5))
            .build(connector);
        let shared = Arc::new(Shared {
            upstream: upstream.parse().expect("an upstream URL"),
            client,
            rngs: Mutex::new(HashMap::new()),
            config: Mutex::new(config),
            stats: Mutex::new(HashMap::new()),
            injected: Mutex::new(Vec::new()),
            request_ids: std::sync::atomic::AtomicU64::new(1),
            intermittent_seen: Mutex::new(HashMap::new()),
        });
        let accept_shared = shared.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let shared = accept_shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(handle(&shared, req).await) }
                    });
                    // Errors here are the client going away mid-request
                    // (e.g. a SIGKILLed worker): nothing to do.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FaultProxy {
            endpoint: format!("http://{addr}"),
            shared,
            accept,
        }
    }

    /// Replaces the fault settings (the PRNG streams keep their state).
    pub fn set_config(&self, config: FaultConfig) {
        *self.shared.config.lock().unwrap() = config;
    }

    /// Stops injecting anything (latency included); requests are still
    /// forwarded and counted.
    pub fn heal(&self) {
        let seed = self.shared.config.lock().unwrap().seed;
        self.set_config(FaultConfig::new(seed));
    }

    /// The counters of one service (all zero if it was never seen).
    pub fn stats(&self, service: &str) -> ServiceStats {
        self.shared
            .stats
            .lock()
            .unwrap()
            .get(service)
            .cloned()
            .unwrap_or_default()
    }

    /// The counters of every service seen.
    pub fn all_stats(&self) -> HashMap<String, ServiceStats> {
        self.shared.stats.lock().unwrap().clone()
    }

    /// Injected failures on one service.
    pub fn injected(&self, service: &str) -> u64 {
        self.stats(service).injected()
    }

    /// Every request that was failed (or whose response was lost), in order.
    pub fn injected_requests(&self) -> Vec<InjectedRecord> {
        self.shared.injected.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// splitmix64: tiny, good enough for picking faults, deterministic.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What the proxy decided for one request, drawn up front under one lock
/// so a seed gives a reproducible sequence.
struct Plan {
    delay: Option<Duration>,
    fault: Option<Fault>,
    lose_response: bool,
}

fn plan(shared: &Shared, service: &str, target: Option<&str>) -> Plan {
    let config = shared.config.lock().unwrap();
    let mut rngs = shared.rngs.lock().unwrap();
    let rng = rngs.entry(service.to_owned()).or_insert_with(|| {
        // FNV-1a of the name, mixed into the seed.
        let name = service.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        SplitMix64(config.seed ^ name)
    });
    let delay = (rng.f64() < config.latency_rate)
        .then(|| config.max_latency.mul_f64(rng.f64()))
        .filter(|d| !d.is_zero());
    let operation = target.map(|t| t.rsplit('.').next().unwrap_or(t));
    let rate = operation
        .and_then(|op| config.operation_rate.get(&format!("{service}/{op}")))
        .or_else(|| config.fault_rate.get(service))
        .copied()
        .unwrap_or(0.0);
    let mut fault = (rng.f64() < rate).then(|| match rng.next_u64() % 3 {
        0 => Fault::Internal,
        1 => Fault::Unavailable,
        _ => Fault::Throttle,
    });
    if let Some(op) = operation {
        let key = format!("{service}/{op}");
        if let Some(&failures) = config.intermittent.get(&key) {
            let mut seen = shared.intermittent_seen.lock().unwrap();
            let n = seen.entry(key).or_insert(0);
            if *n % (failures + 1) < failures {
                fault = Some(Fault::Unavailable);
            }
            *n += 1;
        }
    }
    let is_batch_write =
        service == "dynamodb" && target.is_some_and(|t| t.ends_with(".BatchWriteItem"));
    let lose_response =
        fault.is_none() && is_batch_write && rng.f64() < config.lost_batch_write_rate;
    Plan {
        delay,
        fault,
        lose_response,
    }
}

/// The service named in the SigV4 credential scope.
pub fn service_of(headers: &HeaderMap) -> String {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.split("Credential=").nth(1))
        .and_then(|cred| {
            let scope = cred.split([',', ' ']).next()?;
            // AKID/date/region/service/aws4_request
            scope.split('/').nth(3).map(str::to_owned)
        })
        .unwrap_or_else(|| "other".to_owned())
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let service = service_of(req.headers());
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let plan = plan(shared, &service, target.as_deref());
    let count = |f: &dyn Fn(&mut ServiceStats)| {
        let mut stats = shared.stats.lock().unwrap();
        f(stats.entry(service.clone()).or_default());
    };
    count(&|s| s.requests += 1);

    // Read the whole request first, as a server would before failing it.
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return plain(StatusCode::BAD_REQUEST, "could not read the request body"),
    };
    if let Some(delay) = plan.delay {
        count(&|s| s.delayed += 1);
        tokio::time::sleep(delay).await;
    }
    let make_record = |kind: &'static str| {
        let operation = match &target {
            Some(t) => t.rsplit('.').next().unwrap_or(t).to_owned(),
            None => std::str::from_utf8(&body)
                .ok()
                .and_then(|b| b.split('&').find_map(|p| p.strip_prefix("Action=")))
                .map_or_else(
                    || format!("{} {}", parts.method, parts.uri.path()),
                    str::to_owned,
                ),
        };
        let text = if service == "s3" {
            String::new()
        } else {
            String::from_utf8_lossy(&body).into_owned()
        };
        InjectedRecord {
            service: service.clone(),
            operation,
            body: text,
            kind,
        }
    };
    let record = |r: InjectedRecord| shared.injected.lock().unwrap().push(r);
    if let Some(fault) = plan.fault {
        count(&|s| match fault {
            Fault::Internal => s.internal_errors += 1,
            Fault::Unavailable => s.unavailable += 1,
            Fault::Throttle => s.throttled += 1,
        });
        record(make_record(match fault {
            Fault::Internal => "internal",
            Fault::Unavailable => "unavailable",
            Fault::Throttle => "throttled",
        }));
        let id = shared
            .request_ids
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return fault_response(&service, target.as_deref(), fault, id);
    }

    // Forward: same method, path, query and headers (Host included: it is
    // signed), minus hop-by-hop headers; the body is re-framed by hyper.
    let lost = plan.lose_response.then(|| make_record("lost_response"));
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let uri = Uri::builder()
        .scheme(shared.upstream.scheme().cloned().unwrap_or(http_scheme()))
        .authority(shared.upstream.authority().unwrap().clone())
        .path_and_query(path)
        .build()
        .expect("a forward URI");
    let mut forward = Request::builder().method(parts.method.clone()).uri(uri);
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    *forward.headers_mut().unwrap() = headers;
    let forward = forward.body(Full::new(body)).expect("a forward request");

    let response = match shared.client.request(forward).await {
        Ok(r) => r,
        Err(e) => {
            count(&|s| s.upstream_errors += 1);
            return plain(StatusCode::BAD_GATEWAY, &format!("upstream: {e}"));
        }
    };
    let (mut parts_out, body_out) = response.into_parts();
    let body_out = match body_out.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            count(&|s| s.upstream_errors += 1);
            return plain(StatusCode::BAD_GATEWAY, &format!("upstream body: {e}"));
        }
    };
    count(&|s| s.forwarded += 1);
    if let Some(lost) = lost {
        count(&|s| s.lost_responses += 1);
        record(lost);
        let id = shared
            .request_ids
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return fault_response(&service, target.as_deref(), Fault::Internal, id);
    }
    let head_length = (parts.method == Method::HEAD)
        .then(|| parts_out.headers.get(header::CONTENT_LENGTH).cloned())
        .flatten();
    strip_hop_by_hop(&mut parts_out.headers);
    if let Some(length) = head_length {
        parts_out.headers.insert(header::CONTENT_LENGTH, length);
    }
    Response::from_parts(parts_out, Full::new(body_out))
}

fn http_scheme() -> hyper::http::uri::Scheme {
    hyper::http::uri::Scheme::HTTP
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::CONTENT_LENGTH,
        header::TE,
        header::TRAILER,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(text.to_owned())));
    *r.status_mut() = status;
    r
}

/// An error response as the service would send it.
fn fault_response(
    service: &str,
    target: Option<&str>,
    fault: Fault,
    id: u64,
) -> Response<Full<Bytes>> {
    let request_id = format!("injected-{id:08}");
    let (status, code) = match (service, fault) {
        ("dynamodb", Fault::Internal) => (500, "InternalServerError"),
        ("dynamodb", Fault::Throttle) => (400, "ProvisionedThroughputExceededException"),
        ("s3", Fault::Throttle) => (503, "SlowDown"),
        ("sns", Fault::Throttle) => (400, "Throttling"),
        (_, Fault::Throttle) => (400, "ThrottlingException"),
        ("sagemaker", Fault::Internal) => (500, "InternalFailure"),
        (_, Fault::Internal) => (500, "InternalError"),
        (_, Fault::Unavailable) => (503, "ServiceUnavailable"),
    };
    let status = StatusCode::from_u16(status).unwrap();
    let fault_side = if status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    let mut headers = HeaderMap::new();
    let mut set = |k: &'static str, v: &str| {
        headers.insert(k, HeaderValue::from_str(v).unwrap());
    };
    set("x-amzn-requestid", &request_id);
    let body = if target.is_some() || service == "sagemaker" {
        // AWS JSON 1.0/1.1 (DynamoDB, SQS) or REST-JSON (SageMaker runtime).
        let namespace = match service {
            "dynamodb" => "com.amazonaws.dynamodb.v20120810#",
            "sqs" => "com.amazonaws.sqs#",
            _ => "",
        };
        set(
            "content-type",
            match service {
                "sqs" | "dynamodb" => "application/x-amz-json-1.0",
                _ => "application/json",
            },
        );
        set("x-amzn-errortype", code);
        if service == "sqs" {
            // SQS is awsQueryCompatible: the query-protocol code rides along.
            set("x-amzn-query-error", &format!("{code};{fault_side}"));
        }
        serde_json::json!({ "__type": format!("{namespace}{code}"), "message": "injected" })
            .to_string()
    } else if service == "s3" {
        set("content-type", "application/xml");
        set("x-amz-request-id", &request_id);
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>injected</Message><RequestId>{request_id}</RequestId></Error>"
        )
    } else {
        // The query protocol (SNS, and SQS when it is not JSON).
        set("content-type", "text/xml");
        format!(
            "<ErrorResponse><Error><Type>{fault_side}</Type><Code>{code}</Code><Message>injected</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}
