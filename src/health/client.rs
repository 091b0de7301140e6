//! The `fleetwatch healthcheck` client: a probe of `/healthz` or `/readyz`
//! for container health checks.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
