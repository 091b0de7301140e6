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
//! It also makes the failures that have no status code:
//! - **hangs**: a request is read and then never answered (the connection
//!   stays open), as a wedged load balancer or a half-open connection does.
//!   Only the client's own timeout gets it out; [`FaultProxy::release_hung`]
//!   lets the held requests go on (forwarded late) for tests that need the
//!   hang to end. [`FaultConfig::hang`] aims at one operation.
//! - **outages**: a service fails every request (with the usual mix of 500,
//!   503 and throttling) until a deadline: [`FaultConfig::outage`],
//!   [`FaultProxy::outage`].
//! - **stalled bodies**: the response is forwarded with its full
//!   `Content-Length`, but only its first bytes are sent, then nothing
//!   (until [`FaultProxy::release_hung`]): [`FaultConfig::stall_body`], e.g.
//!   an S3 `GetObject` that stops mid-way.
//!
//! Operations are named as AWS does (`ReceiveMessage`, `BatchWriteItem`,
//! `PublishBatch`, `GetObject`, `InvokeEndpoint`): from `X-Amz-Target` for
//! the JSON protocols, the query protocol's `Action`, and the method and
//! path for S3 (path-style) and SageMaker.
//!
//! The service is read from the SigV4 `Authorization` header's credential
//! scope (`Credential=AKID/20250101/us-east-1/<service>/aws4_request`).
//! Decisions come from a small seeded PRNG (splitmix64, one stream per
//! service), so for a given seed the n-th request of a service always meets
//! the same fate; hangs and stalls draw from it only when one is aimed at
//! the request, so configurations without them see the same sequence as
//! before. Bodies are buffered (objects in tests are small), which handles
//! chunked bodies in both directions; both sides keep connections alive.
//!
//! The proxy runs on the current Tokio runtime and stops when dropped.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;
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
    /// Overrides `fault_rate` for one operation, keyed `service/Operation`
    /// (`dynamodb/UpdateItem`; operations are named as in the module
    /// documentation).
    pub operation_rate: HashMap<String, f64>,
    /// Fraction of an operation's requests read and never answered, keyed
    /// `service/Operation` or `service/*` (every operation of the service).
    pub hang_rate: HashMap<String, f64>,
    /// Services failing every request until the given instant.
    pub outages: HashMap<String, Instant>,
    /// Responses of an operation (keyed as `hang_rate`) of which only the
    /// first `after_bytes` body bytes are sent, then nothing.
    pub stalls: HashMap<String, Stall>,
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
    /// Requests of an operation (`service/Operation`) whose body contains
    /// the text are refused for their content, as the service refuses a
    /// payload it cannot take (SageMaker: 424 `ModelError`; others: 400
    /// `ValidationException`). Never forwarded.
    pub refusals: HashMap<String, String>,
    /// Requests of an operation (`service/Operation`) whose body contains
    /// the text fail with 503, as if the service were down for them alone
    /// (e.g. one partition's Query). Never forwarded.
    pub unavailable_containing: HashMap<String, String>,
}

impl FaultConfig {
    /// No faults at all: a plain proxy.
    pub fn new(seed: u64) -> FaultConfig {
        FaultConfig {
            seed,
            fault_rate: HashMap::new(),
            operation_rate: HashMap::new(),
            hang_rate: HashMap::new(),
            outages: HashMap::new(),
            stalls: HashMap::new(),
            latency_rate: 0.0,
            max_latency: Duration::ZERO,
            lost_batch_write_rate: 0.0,
            intermittent: HashMap::new(),
            refusals: HashMap::new(),
            unavailable_containing: HashMap::new(),
        }
    }

    /// Refuses the requests of one operation whose body contains `needle`
    /// (see `refusals`).
    pub fn refuse_containing(
        mut self,
        service: &str,
        operation: &str,
        needle: &str,
    ) -> FaultConfig {
        self.refusals
            .insert(format!("{service}/{operation}"), needle.to_owned());
        self
    }

    /// The requests of one operation whose body contains `needle` fail
    /// with 503 (see `unavailable_containing`).
    pub fn unavailable_containing(
        mut self,
        service: &str,
        operation: &str,
        needle: &str,
    ) -> FaultConfig {
        self.unavailable_containing
            .insert(format!("{service}/{operation}"), needle.to_owned());
        self
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

    /// Every request of `operation` (`*`: of any operation) of `service` is
    /// read and never answered.
    pub fn hang(self, service: &str, operation: &str) -> FaultConfig {
        self.hang_rate(service, operation, 1.0)
    }

    /// A fraction of the requests of `operation` is read and never answered.
    pub fn hang_rate(mut self, service: &str, operation: &str, rate: f64) -> FaultConfig {
        self.hang_rate
            .insert(format!("{service}/{operation}"), rate);
        self
    }

    /// `service` fails every request until `until` (then the other rates
    /// apply again).
    pub fn outage(mut self, service: &str, until: Instant) -> FaultConfig {
        self.outages.insert(service.to_owned(), until);
        self
    }

    /// Every successful response of `operation` sends `after_bytes` bytes
    /// of its body, then nothing, with the connection open.
    pub fn stall_body(mut self, service: &str, operation: &str, after_bytes: usize) -> FaultConfig {
        self.stalls.insert(
            format!("{service}/{operation}"),
            Stall {
                rate: 1.0,
                after_bytes,
            },
        );
        self
    }
}

/// A body that stops: see [`FaultConfig::stalls`].
#[derive(Debug, Clone, Copy)]
pub struct Stall {
    /// Fraction of the operation's successful responses that stall.
    pub rate: f64,
    /// Body bytes sent before the stall.
    pub after_bytes: usize,
}

/// The rule aimed at `service/operation`, else at every operation of the
/// service (`service/*`).
fn aimed<'a, T>(rules: &'a HashMap<String, T>, service: &str, operation: &str) -> Option<&'a T> {
    rules
        .get(&format!("{service}/{operation}"))
        .or_else(|| rules.get(&format!("{service}/*")))
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
    /// Requests read and never answered (held until released).
    pub hung: u64,
    /// Responses whose body stopped mid-way.
    pub stalled: u64,
    /// The upstream could not be reached (answered 502); not injected.
    pub upstream_errors: u64,
}

impl ServiceStats {
    /// Injected failures of any kind.
    pub fn injected(&self) -> u64 {
        self.internal_errors
            + self.unavailable
            + self.throttled
            + self.lost_responses
            + self.hung
            + self.stalled
    }
}

/// One request answered with an injected failure (or whose response was
/// lost), for tests that need to know which operation failed.
#[derive(Debug, Clone)]
pub struct InjectedRecord {
    pub service: String,
    /// The operation (`UpdateItem`, `GetObject`), named as in the module
    /// documentation.
    pub operation: String,
    /// The request body (JSON and query protocols), for matching keys.
    pub body: String,
    /// `internal`, `unavailable`, `throttled`, `lost_response`, `hang` or
    /// `stall`.
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
    /// Bumped by [`FaultProxy::release_hung`]: held requests and stalled
    /// bodies wait for it to change.
    release: watch::Sender<u64>,
    /// Set when the proxy is dropped: requests released then are answered
    /// with a 503 instead of being forwarded after the test is over.
    closed: std::sync::atomic::AtomicBool,
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
            release: watch::Sender::new(0),
            closed: std::sync::atomic::AtomicBool::new(false),
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

    /// `service` fails every request for `duration` from now, on top of the
    /// current settings.
    pub fn outage(&self, service: &str, duration: Duration) {
        self.shared
            .config
            .lock()
            .unwrap()
            .outages
            .insert(service.to_owned(), Instant::now() + duration);
    }

    /// Lets every request held by a hang go on (forwarded now) and every
    /// stalled body finish. A held request whose client has given up by
    /// then may still be forwarded, as a late duplicate of its retry would
    /// be. Hangs still configured go on catching new requests.
    pub fn release_hung(&self) {
        self.shared
            .release
            .send_modify(|generation| *generation += 1);
    }

    /// Stops injecting anything (latency included); requests are still
    /// forwarded and counted. Requests already held stay held (a client that
    /// hung stays hung until its own timeout): see [`FaultProxy::release_hung`].
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
        // Held requests end too (unforwarded), rather than outlive the proxy.
        self.shared
            .closed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.release_hung();
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
    /// Read the request, then hold it until released.
    hang: bool,
    /// Send this many body bytes of a successful response, then stall.
    stall_after: Option<usize>,
}

fn plan(shared: &Shared, service: &str, operation: &str) -> Plan {
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
    let in_outage = config
        .outages
        .get(service)
        .is_some_and(|until| Instant::now() < *until);
    let rate = if in_outage {
        1.0
    } else {
        config
            .operation_rate
            .get(&format!("{service}/{operation}"))
            .or_else(|| config.fault_rate.get(service))
            .copied()
            .unwrap_or(0.0)
    };
    let mut fault = (rng.f64() < rate).then(|| match rng.next_u64() % 3 {
        0 => Fault::Internal,
        1 => Fault::Unavailable,
        _ => Fault::Throttle,
    });
    let key = format!("{service}/{operation}");
    if let Some(&failures) = config.intermittent.get(&key) {
        let mut seen = shared.intermittent_seen.lock().unwrap();
        let n = seen.entry(key).or_insert(0);
        if *n % (failures + 1) < failures {
            fault = Some(Fault::Unavailable);
        }
        *n += 1;
    }
    let is_batch_write = service == "dynamodb" && operation == "BatchWriteItem";
    let lose_response =
        fault.is_none() && is_batch_write && rng.f64() < config.lost_batch_write_rate;
    // Drawn only when aimed at, so other configurations keep their sequence.
    let hang = fault.is_none()
        && !lose_response
        && aimed(&config.hang_rate, service, operation).is_some_and(|&r| rng.f64() < r);
    let stall_after = aimed(&config.stalls, service, operation)
        .filter(|_| fault.is_none() && !lose_response && !hang)
        .filter(|stall| rng.f64() < stall.rate)
        .map(|stall| stall.after_bytes);
    Plan {
        delay,
        fault,
        lose_response,
        hang,
        stall_after,
    }
}

/// The operation a request calls, named as AWS does (see the module
/// documentation); `METHOD /path` when it is none of the known shapes.
pub fn operation_of(
    service: &str,
    target: Option<&str>,
    method: &Method,
    path: &str,
    body: &[u8],
) -> String {
    if let Some(target) = target {
        return target.rsplit('.').next().unwrap_or(target).to_owned();
    }
    let action = std::str::from_utf8(body)
        .ok()
        .and_then(|b| b.split('&').find_map(|p| p.strip_prefix("Action=")));
    if let Some(action) = action {
        return action.to_owned();
    }
    let segments: Vec<&str> = path.trim_start_matches('/').splitn(2, '/').collect();
    let object_path = matches!(segments.as_slice(), [_, key] if !key.is_empty());
    let named = match (service, method.as_str()) {
        ("s3", "GET") if object_path => Some("GetObject"),
        ("s3", "PUT") if object_path => Some("PutObject"),
        ("s3", "HEAD") if object_path => Some("HeadObject"),
        ("s3", "DELETE") if object_path => Some("DeleteObject"),
        ("sagemaker", "POST") if path.ends_with("/invocations") => Some("InvokeEndpoint"),
        _ => None,
    };
    named.map_or_else(|| format!("{method} {path}"), str::to_owned)
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

/// What the proxy answers with: a buffered body, or one that stalls.
type ProxyBody = BoxBody<Bytes, Infallible>;

async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<ProxyBody> {
    let service = service_of(req.headers());
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let count = |f: &dyn Fn(&mut ServiceStats)| {
        let mut stats = shared.stats.lock().unwrap();
        f(stats.entry(service.clone()).or_default());
    };
    count(&|s| s.requests += 1);

    // Read the whole request first, as a server would before failing it
    // (and the query protocol names its operation in the body).
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return plain(StatusCode::BAD_REQUEST, "could not read the request body"),
    };
    let operation = operation_of(
        &service,
        target.as_deref(),
        &parts.method,
        parts.uri.path(),
        &body,
    );
    let (refused, unavailable) = {
        let config = shared.config.lock().unwrap();
        let key = format!("{service}/{operation}");
        let matches = |needles: &HashMap<String, String>| {
            needles.get(&key).is_some_and(|needle| {
                body.windows(needle.len().max(1))
                    .any(|w| w == needle.as_bytes())
            })
        };
        (
            matches(&config.refusals),
            matches(&config.unavailable_containing),
        )
    };
    if refused {
        return refusal(&service);
    }
    let mut plan = plan(shared, &service, &operation);
    if unavailable {
        plan.fault = Some(Fault::Unavailable);
    }
    if let Some(delay) = plan.delay {
        count(&|s| s.delayed += 1);
        tokio::time::sleep(delay).await;
    }
    let make_record = |kind: &'static str| {
        let text = if service == "s3" {
            String::new()
        } else {
            String::from_utf8_lossy(&body).into_owned()
        };
        InjectedRecord {
            service: service.clone(),
            operation: operation.clone(),
            body: text,
            kind,
        }
    };
    let record = |r: InjectedRecord| shared.injected.lock().unwrap().push(r);
    if plan.hang {
        count(&|s| s.hung += 1);
        record(make_record("hang"));
        // Held until released (or the proxy is dropped), however long the
        // client waits.
        let mut release = shared.release.subscribe();
        let _ = release.changed().await;
        if shared.closed.load(std::sync::atomic::Ordering::Relaxed) {
            return plain(StatusCode::SERVICE_UNAVAILABLE, "the proxy is gone");
        }
    }
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
    let stall = plan.stall_after.map(|after| (after, make_record("stall")));
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
    if let Some((after, stalled)) =
        stall.filter(|(after, _)| parts_out.status.is_success() && body_out.len() > *after)
    {
        count(&|s| s.stalled += 1);
        record(stalled);
        // The full length is announced, so the client waits for the rest.
        parts_out
            .headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(body_out.len()));
        let head = body_out.slice(..after);
        let tail = body_out.slice(after..);
        let mut release = shared.release.subscribe();
        let frames = futures_util::stream::once(async move { Ok(Frame::data(head)) }).chain(
            futures_util::stream::once(async move {
                let _ = release.changed().await;
                Ok(Frame::data(tail))
            }),
        );
        return Response::from_parts(parts_out, BodyExt::boxed(StreamBody::new(frames)));
    }
    Response::from_parts(parts_out, Full::new(body_out).boxed())
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

fn plain(status: StatusCode, text: &str) -> Response<ProxyBody> {
    let mut r = Response::new(Full::new(Bytes::from(text.to_owned())).boxed());
    *r.status_mut() = status;
    r
}

/// The service refusing a request for its content.
fn refusal(service: &str) -> Response<ProxyBody> {
    let (status, code) = if service == "sagemaker" {
        (424, "ModelError")
    } else {
        (400, "ValidationException")
    };
    let body = serde_json::json!({ "__type": code, "message": "refused by the test" }).to_string();
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    let headers = response.headers_mut();
    headers.insert("x-amzn-errortype", HeaderValue::from_static(code));
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("x-amzn-requestid", HeaderValue::from_static("refused"));
    response
}

/// An error response as the service would send it.
fn fault_response(
    service: &str,
    target: Option<&str>,
    fault: Fault,
    id: u64,
) -> Response<ProxyBody> {
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
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}
