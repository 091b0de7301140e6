//! The `fleetwatch` binary: parses the command line and wires the library's
//! pieces together. All behaviour lives in the library.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use fleetwatch::config::{self, Command, LogFormat, WorkerSettings};
use fleetwatch::liveness::Liveness;
use fleetwatch::simulate::{self, SimConfig, SimFormat, upload::S3Target};
use fleetwatch::worker::{LoopSettings, Worker};
use fleetwatch::{aws, bootstrap, health};

/// mimalloc instead of glibc's malloc: a reading's item is a map of small
/// strings, and freeing a chunk's worth of them at once made glibc spend
/// about a third of the worker's CPU in malloc and free (bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = config::parse();
    if cli.print_settings {
        return print_settings(&cli.command);
    }
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Worker(settings) => run_worker(*settings).await,
            Command::Bootstrap(settings) => run_bootstrap(settings).await,
            Command::Healthcheck(settings) => health::probe(&settings.url, settings.timeout)
                .await
                .context("healthcheck failed"),
            Command::Simulate(settings) => run_simulate(settings).await,
            Command::Process(settings) => Ok(fleetwatch::ops::process::run(*settings).await?),
            Command::Dlq(settings) => run_dlq(settings).await,
            Command::History(settings) => run_history(settings).await,
            Command::Status(settings) => run_status(settings).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--print-settings`: what the command would run with, after defaults,
/// the environment and validation; nothing is contacted.
fn print_settings(command: &Command) -> ExitCode {
    if let Command::Worker(settings) = command
        && let Err(e) = settings.validate()
    {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    println!("{command:#?}");
    ExitCode::SUCCESS
}

/// Logs go to stderr (stdout is kept for command output such as
/// `bootstrap`'s exports). `RUST_LOG` filters; the default is `info`.
fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
    }
}

async fn run_worker(settings: WorkerSettings) -> anyhow::Result<()> {
    settings.validate().map_err(anyhow::Error::msg)?;
    let metrics = health::install_metrics().context("installing the metrics recorder")?;
    let listener = health::bind(settings.metrics_addr)
        .await
        .with_context(|| format!("binding FLEETWATCH_METRICS_ADDR={}", settings.metrics_addr))?;

    // /healthz answers from the start, so a start-up check retried through
    // an outage (each attempt is progress) does not get the task replaced.
    let liveness = Liveness::new(settings.timeouts.liveness);
    let health_state = health::Health::with_liveness(liveness.clone());
    let server_stop = CancellationToken::new();
    let server = tokio::spawn(health::serve(
        listener,
        metrics,
        health_state.clone(),
        server_stop.clone(),
    ));

    let sdk = aws::load().await;
    let timeouts = aws::Timeouts {
        connect: settings.timeouts.aws_connect,
        call: settings.timeouts.aws_call,
        sagemaker: settings.timeouts.sagemaker,
    };
    let clients = aws::Clients::with_timeouts(
        &sdk,
        config::s3_path_style(settings.s3_path_style),
        &timeouts,
    );

    let queue = preflight(&clients, &settings, &liveness).await?;
    match queue.max_receive_count {
        Some(n) => tracing::info!(
            max_receive_count = n,
            "the queue dead-letters a message after {n} receives"
        ),
        None => tracing::warn!(
            "the queue has no redrive policy: a message that keeps failing is retried until it expires; add a dead-letter queue"
        ),
    }
    if settings.alert_topic_arn.is_none() {
        tracing::info!(
            "FLEETWATCH_ALERT_TOPIC_ARN is not set: rules are evaluated, but no alert is published"
        );
    }
    let pipeline = Arc::new(fleetwatch::app::pipeline(&settings, &clients, true, true)?);
    tracing::info!(
        inference = %pipeline.predictor.describe(),
        rules = %settings.alert_rules.0.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        maintenance_alert_score = ?pipeline.maintenance_min_score,
        table = %settings.table,
        "configuration"
    );

    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let loop_settings = LoopSettings {
        queue_url: settings.queue_url.clone(),
        concurrency: settings.concurrency,
        visibility_timeout: settings.visibility_timeout,
        shutdown_grace: settings.shutdown_grace,
        retry_base: fleetwatch::worker::RETRY_BASE,
    };
    Worker::new(clients.sqs.clone(), pipeline, loop_settings, health_state)
        .run(shutdown)
        .await;

    server_stop.cancel();
    let _ = server.await;
    Ok(())
}

/// Runs the start-up checks until they pass. A missing permission or
/// resource stops the worker; a transient failure (an outage) is retried
/// with backoff, so the task does not enter a restart loop.
async fn preflight(
    clients: &aws::Clients,
    settings: &WorkerSettings,
    liveness: &Liveness,
) -> anyhow::Result<fleetwatch::preflight::QueueInfo> {
    let mut backoff = fleetwatch::backoff::Backoff::new(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(30),
    );
    loop {
        let checked = fleetwatch::preflight::check(
            &clients.sqs,
            &clients.dynamodb,
            &settings.queue_url,
            &settings.table,
        )
        .await;
        liveness.progress(); // an attempt completed
        match checked {
            Ok(info) => return Ok(info),
            Err(e) if e.is_fatal() => {
                return Err(anyhow::Error::new(e).context("start-up check failed"));
            }
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in = ?delay, "start-up check failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted during the start-up checks"),
                }
            }
        }
    }
}

/// Cancels `token` on SIGTERM (what ECS and Docker send) or Ctrl-C.
async fn cancel_on_signal(token: CancellationToken) {
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C received"),
        _ = terminate => tracing::info!("SIGTERM received"),
    }
    token.cancel();
}

async fn run_bootstrap(settings: config::BootstrapSettings) -> anyhow::Result<()> {
    let sdk = aws::load().await;
    let region = sdk
        .region()
        .map(ToString::to_string)
        .context("no AWS region: set AWS_REGION (e.g. us-east-1)")?;
    let clients = aws::Clients::new(&sdk, config::s3_path_style(settings.s3_path_style));
    let resources = bootstrap::run(&clients, &region, &settings).await?;
    print!("{}", resources.exports());
    Ok(())
}

async fn run_simulate(settings: config::SimulateSettings) -> anyhow::Result<()> {
    let start = if settings.start == "now" {
        // The current hour, so a demo's data looks live on a dashboard.
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        fleetwatch::telemetry::Timestamp::from_unix_millis((secs - secs.rem_euclid(3600)) * 1000)
    } else {
        fleetwatch::telemetry::parse_timestamp(&settings.start).map_err(|reason| {
            anyhow::anyhow!(
                "--start {:?}: {reason}; expected RFC 3339 or `now`",
                settings.start
            )
        })?
    };
    let whole_seconds = |d: std::time::Duration, name: &str| {
        u32::try_from(d.as_secs())
            .ok()
            .filter(|s| *s > 0)
            .with_context(|| format!("--{name}: expected a whole number of seconds, at least 1s"))
    };
    let cfg = SimConfig {
        vehicles: settings.vehicles,
        hours: settings.hours,
        interval_secs: whole_seconds(settings.interval, "interval")?,
        seed: settings.seed,
        format: match settings.format {
            config::SimFileFormat::Text => SimFormat::Text,
            config::SimFileFormat::Jsonl => SimFormat::JsonLines,
            config::SimFileFormat::Csv => SimFormat::Csv,
        },
        gzip: settings.gzip,
        window_secs: whole_seconds(settings.window, "window")?,
        start_unix_secs: start.unix_millis().div_euclid(1000),
        failure_rate: settings.failure_rate,
    };
    cfg.validate()?;
    let started = std::time::Instant::now();
    if let Some(dir) = &settings.out {
        let summary = simulate::write_to_dir(&cfg, dir)?;
        tracing::info!(
            dir = %dir.display(), files = summary.files, readings = summary.readings, bytes = summary.bytes,
            seconds = started.elapsed().as_secs_f64(), "wrote the fleet and ground_truth.json"
        );
    }
    if let Some(target) = &settings.upload {
        let target: S3Target = target
            .parse()
            .map_err(|e| anyhow::anyhow!("--upload {target:?}: {e}"))?;
        let sdk = aws::load().await;
        let clients = aws::Clients::new(&sdk, config::s3_path_style(settings.s3_path_style));
        let summary =
            simulate::upload::upload(&clients.s3, &cfg, &target, settings.upload_concurrency)
                .await?;
        tracing::info!(
            bucket = %target.bucket, prefix = %target.prefix, files = summary.files, readings = summary.readings,
            bytes = summary.bytes, seconds = started.elapsed().as_secs_f64(), "uploaded the fleet"
        );
    }
    Ok(())
}

/// `fleetwatch dlq list | redrive | purge`: see `fleetwatch::ops::dlq`.
/// Results go to stdout, warnings and progress to the log (stderr).
async fn run_dlq(settings: config::DlqSettings) -> anyhow::Result<()> {
    use fleetwatch::ops::dlq;
    let sdk = aws::load().await;
    let clients = aws::Clients::new(&sdk, false);
    let sqs = &clients.sqs;
    // Ctrl-C/SIGTERM stop between messages; held messages are released.
    let stop = CancellationToken::new();
    tokio::spawn(cancel_on_signal(stop.clone()));
    let queues = dlq::locate(
        sqs,
        settings.queue_url.as_deref(),
        settings.dlq_url.as_deref(),
    )
    .await?;
    match settings.action.unwrap_or_default() {
        config::DlqAction::List(list) => {
            let listing = dlq::list(sqs, &queues.dlq_url, list.max_messages, &stop).await?;
            if let Some(n) = listing.own_max_receive_count {
                tracing::warn!(
                    dlq = %queues.dlq_url,
                    "the dead-letter queue has a redrive policy of its own (maxReceiveCount {n}): each listing counts as a receive, so a message listed often enough is moved on from it; remove that policy"
                );
            }
            if listing.interrupted {
                tracing::warn!("interrupted: only the messages seen so far are shown");
            } else if listing.truncated {
                tracing::warn!(
                    "more than {} messages: only the first are shown (--max-messages)",
                    list.max_messages
                );
            }
            match list.format {
                config::ListFormat::Table if listing.messages.is_empty() => {
                    emit(&format!(
                        "the dead-letter queue {} is empty\n",
                        queues.dlq_url
                    ))?;
                }
                config::ListFormat::Table => emit(&dlq::render_table(&listing.messages))?,
                config::ListFormat::Json => {
                    emit(&format!("{}\n", dlq::render_json(&listing.messages)))?
                }
            }
        }
        config::DlqAction::Redrive(redrive) => {
            let outcome = if redrive.all {
                dlq::redrive_all(sqs, &queues, !redrive.no_move_task, &stop).await?
            } else {
                dlq::redrive_ids(sqs, &queues, &redrive.message_id, &stop).await?
            };
            let main = queues.main_url.as_deref().unwrap_or_default();
            match outcome {
                dlq::Redriven::MoveTask {
                    handle,
                    source_arn,
                    messages,
                } => emit(&format!(
                    "started a message move task for about {messages} message(s) from {} to {main}\ntask handle: {handle}\nfollow it with: aws sqs list-message-move-tasks --source-arn {source_arn}\n",
                    queues.dlq_url
                ))?,
                dlq::Redriven::Moved { ids } => {
                    let mut text = format!(
                        "moved {} message(s) from {} to {main}\n",
                        ids.len(),
                        queues.dlq_url
                    );
                    for id in ids {
                        text.push_str(&id);
                        text.push('\n');
                    }
                    emit(&text)?;
                }
            }
        }
        config::DlqAction::Purge(purge) => {
            let count = dlq::purge(sqs, &queues.dlq_url, purge.yes).await?;
            emit(&format!(
                "purged {count} message(s) from {}\n",
                queues.dlq_url
            ))?;
        }
    }
    Ok(())
}

/// Writes command output to stdout; a closed pipe (`| head`) is not an error.
fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("writing to stdout"))
        }
        _ => Ok(()),
    }
}

/// `fleetwatch history DEVICE`: see `fleetwatch::ops::history`.
async fn run_history(settings: config::HistorySettings) -> anyhow::Result<()> {
    let clients = aws::Clients::new(&aws::load().await, false);
    let mut stdout = std::io::stdout().lock();
    fleetwatch::ops::history::run(&clients.dynamodb, &settings, &mut stdout)
        .await
        .with_context(|| format!("history of {}", settings.device))
}

/// `fleetwatch status`: see `fleetwatch::ops::status`.
async fn run_status(settings: config::StatusSettings) -> anyhow::Result<()> {
    let clients = aws::Clients::new(&aws::load().await, false);
    let mut stdout = std::io::stdout().lock();
    fleetwatch::ops::status::run(&clients.sqs, &clients.dynamodb, &settings, &mut stdout)
        .await
        .context("status")
}
