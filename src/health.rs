//! The worker's HTTP face: `/metrics` (Prometheus text), `/healthz` (the
//! worker is making progress: see [`crate::liveness`]) and `/readyz` (AWS
//! clients built, the SQS loop running and its last receive succeeded).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::dependencies::DependencyHealth;
use crate::liveness::Liveness;

/// Histogram buckets in seconds: from a fast DynamoDB write to a large object.
const BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Shared readiness state, cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Health {
    inner: Arc<HealthState>,
    /// The progress clock `/healthz` reports on (by default one that never
    /// fails, for code that runs the loop without a health check).
    liveness: Liveness,
}

#[derive(Debug, Default)]
struct HealthState {
    running: AtomicBool,
    receive_failing: AtomicBool,
    /// Which of S3, DynamoDB, SNS and the inference backend are failing.
    dependencies: DependencyHealth,
}

impl Health {
    /// Health whose `/healthz` fails when `liveness` sees no progress.
    pub fn with_liveness(liveness: Liveness) -> Health {
        Health {
            inner: Arc::default(),
            liveness,
        }
    }

    /// The progress clock: the loop and the message tasks feed it.
    pub fn liveness(&self) -> &Liveness {
        &self.liveness
    }

    pub fn set_running(&self, running: bool) {
        self.inner.running.store(running, Ordering::Relaxed);
    }

    pub fn set_receive_ok(&self, ok: bool) {
        self.inner.receive_failing.store(!ok, Ordering::Relaxed);
    }

    /// What the message tasks report of each dependency.
    pub fn dependencies(&self) -> &DependencyHealth {
        &self.inner.dependencies
    }

    /// `Ok` when ready, else why not.
    pub fn readiness(&self) -> Result<(), String> {
        if !self.inner.running.load(Ordering::Relaxed) {
            return Err("not ready: the SQS loop is not running".into());
        }
        if self.inner.receive_failing.load(Ordering::Relaxed) {
            return Err("degraded: receiving from SQS is failing".into());
        }
        let failing = self.inner.dependencies.failing();
        if failing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "degraded: {} failing; messages that need it are held and retried",
                failing.join(", ")
            ))
        }
    }
}

/// Installs the Prometheus recorder as the global `metrics` recorder.
pub fn install_metrics() -> Result<PrometheusHandle, metrics_exporter_prometheus::BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets(BUCKETS)?
        .install_recorder()?;
    crate::metrics::describe();
    Ok(handle)
}

/// Binds `addr`; call before [`serve`] so a taken port fails start-up.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until `shutdown` is cancelled. Also runs the recorder's upkeep,
/// which keeps histogram memory bounded between scrapes.
pub async fn serve(
    listener: TcpListener,
    metrics: PrometheusHandle,
    health: Health,
    shutdown: CancellationToken,
) {
    let upkeep = {
        let metrics = metrics.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => metrics.run_upkeep(),
                }
            }
        })
    };
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics server: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let metrics = metrics.clone();
        let health = health.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let response = respond(&req, &metrics, &health);
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "metrics server: connection error");
            }
        });
    }
    upkeep.abort();
}

fn respond(
    req: &Request<Incoming>,
    metrics: &PrometheusHandle,
    health: &Health,
) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, content_type: &'static str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(content_type),
        );
        response
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    match req.uri().path() {
        "/metrics" => text(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            metrics.render(),
        ),
        "/healthz" => match health.liveness().check() {
            Ok(()) => text(StatusCode::OK, "text/plain", "ok\n".into()),
            Err(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("{why}\n"),
            ),
        },
        "/readyz" => match health.readiness() {
            Ok(()) => text(StatusCode::OK, "text/plain", "ready\n".into()),
            Err(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("{why}\n"),
            ),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /metrics, /healthz or /readyz\n".into(),
        ),
    }
}

/// Why a health probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{0:?} is not an http://host:port/path URL")]
    BadUrl(String),
    #[error("could not reach {url}: {source}")]
    Io { url: String, source: std::io::Error },
    #[error("{url} did not answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("{url} answered {status:?}")]
    Unhealthy { url: String, status: String },
}

/// `fleetwatch healthcheck`: one plain HTTP/1.0 GET and a look at the
/// status line. Written by hand because it is all a container health check
/// needs, and distroless images have no curl.
pub async fn probe(url: &str, timeout: Duration) -> Result<(), ProbeError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| ProbeError::BadUrl(url.into()))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    if authority.is_empty() {
        return Err(ProbeError::BadUrl(url.into()));
    }
    let io = |source| ProbeError::Io {
        url: url.into(),
        source,
    };
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(authority)
            .await
            .map_err(io)?;
        let request =
            format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.map_err(io)?;
        let mut head = Vec::with_capacity(256);
        // The status line is all we need; cap what is read.
        (&mut stream)
            .take(4096)
            .read_to_end(&mut head)
            .await
            .map_err(io)?;
        Ok::<_, ProbeError>(head)
    };
    let head = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ProbeError::Timeout {
            url: url.into(),
            timeout,
        })??;
    let status_line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    if status_line.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        Err(ProbeError::Unhealthy {
            url: url.into(),
            status: status_line,
        })
    }
}
