//! `fleetwatch worker`, the whole process: the metrics and health server
//! (answering from the start), the AWS clients, the start-up checks, then
//! the worker [`super::worker`] builds, until SIGTERM.

use std::net::SocketAddr;

use tokio_util::sync::CancellationToken;

use super::shutdown::cancel_on_signal;
use super::startup::{self, StartupError};
use super::{BuildError, worker};
use crate::alerts::rule_store::RuleStore;
use crate::aws;
use crate::config::WorkerSettings;
use crate::health::{self, Health};
use crate::liveness::Liveness;

/// Why the worker stopped before (or instead of) running.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("installing the metrics recorder: {0}")]
    Metrics(metrics_exporter_prometheus::BuildError),
    #[error("binding FLEETWATCH_METRICS_ADDR={addr}: {error}")]
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// Runs the worker until SIGTERM or Ctrl-C, then drains it.
pub async fn run(settings: WorkerSettings) -> Result<(), RunError> {
    let pipeline = &settings.pipeline;
    let metrics = health::install_metrics().map_err(RunError::Metrics)?;
    let listener = health::bind(settings.server.metrics_addr)
        .await
        .map_err(|error| RunError::Bind {
            addr: settings.server.metrics_addr,
            error,
        })?;

    // /healthz answers from the start, so a start-up check retried through
    // an outage (each attempt is progress) does not get the task replaced.
    let liveness = Liveness::new(pipeline.timeouts.liveness);
    let health_state = Health::with_liveness(liveness.clone());
    let server_stop = CancellationToken::new();
    let server = tokio::spawn(health::serve(
        listener,
        metrics,
        health_state.clone(),
        server_stop.clone(),
    ));

    let sdk = aws::load().await;
    let clients =
        aws::Clients::with_timeouts(&sdk, pipeline.s3.path_style(), &pipeline.timeouts.aws());

    let queue = startup::check_until_ready(
        &clients,
        &settings.queue.url,
        &pipeline.table.name,
        // The alarm table matters only to a worker that publishes alerts.
        pipeline
            .alerts
            .alert_topic_arn
            .as_ref()
            .map(|_| pipeline.alarms.table.alarm_table.as_str()),
        &liveness,
    )
    .await?;
    match queue.max_receive_count {
        Some(n) => tracing::info!(
            max_receive_count = n,
            "the queue dead-letters a message after {n} receives"
        ),
        None => tracing::warn!(
            "the queue has no redrive policy: a message that keeps failing is retried until it expires; add a dead-letter queue"
        ),
    }
    if pipeline.alerts.alert_topic_arn.is_none() {
        tracing::info!(
            "FLEETWATCH_ALERT_TOPIC_ARN is not set: rules are evaluated, but no alert is published"
        );
    }
    let built = worker(&settings, &clients)?;
    // The operators' rule overrides live in the alarm table, which only a
    // worker that publishes alerts uses.
    let rule_store = built
        .pipeline
        .alerts
        .as_ref()
        .map(|sink| RuleStore::new(clients.dynamodb.clone(), sink.alarms.table().to_owned()));
    if let Some(store) = &rule_store {
        startup::load_rules_until_ready(&built.pipeline.rules, store, &liveness).await?;
    }
    tracing::info!(
        inference = %built.pipeline.predictor.describe(),
        rules = %pipeline.alerts.rules.alert_rules.0.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        rule_overrides = built.pipeline.rules.current().overrides(),
        maintenance_alert_score = ?built.pipeline.maintenance_min_score,
        table = %pipeline.table.name,
        "configuration"
    );

    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    // Every worker sweeps the alarm table (auto-close, resolved
    // notifications); conditional writes keep the sweeps from doubling up.
    if let Some(sink) = built.pipeline.alerts.clone() {
        tokio::spawn(crate::alarms::sweeper::run(
            sink,
            pipeline.alarms.alarm_auto_close,
            pipeline.alarms.alarm_sweep_interval,
            shutdown.clone(),
        ));
    }
    // Overrides set with `fleetwatch rules set` reach the objects started
    // after the next refresh.
    if let Some(store) = rule_store {
        tokio::spawn(built.pipeline.rules.clone().run(
            store,
            pipeline.alerts.rules_refresh,
            shutdown.clone(),
        ));
    }
    built.into_worker(health_state).run(shutdown).await;

    server_stop.cancel();
    let _ = server.await;
    Ok(())
}
