//! The worker process's own: its metrics/health server and its shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use super::values::parse_duration;

/// The /metrics, /healthz and /readyz server, and the SIGTERM grace.
#[derive(Debug, Clone, Args)]
pub struct ServerSettings {
    /// Address of the /metrics, /healthz and /readyz server.
    #[arg(long, env = "FLEETWATCH_METRICS_ADDR", default_value = "0.0.0.0:9090", value_parser = parse_socket_addr)]
    pub metrics_addr: SocketAddr,

    /// Time in-flight messages get to finish after SIGTERM before they are returned to the queue.
    #[arg(long, env = "FLEETWATCH_SHUTDOWN_GRACE", default_value = "25s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
}

fn parse_socket_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| {
        "FLEETWATCH_METRICS_ADDR: expected an address and port like 0.0.0.0:9090".to_owned()
    })
}
