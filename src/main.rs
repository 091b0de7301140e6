//! The `fleetwatch` binary: parses the command line, starts logging and
//! runs the subcommand. All behaviour lives in the library; this file only
//! wires each subcommand to it and gives each failure its context.

use std::process::ExitCode;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

use fleetwatch::config::{self, Command, LogFormat};
use fleetwatch::{app, health, ops};

/// mimalloc instead of glibc's malloc: a worker makes some 55 small
/// allocations per reading (the SDK's item maps) and frees them a batch at
/// a time, which glibc pays for in bin consolidation and per-thread arenas
/// that keep freed memory. Measured end to end in bench/README.md. Built
/// with `no_thp`: with transparent huge pages its resident memory grew past
/// the worker's 100 MB bound.
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
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one subcommand to its end.
async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Worker(settings) => Ok(app::run::run(*settings).await?),
        Command::Bootstrap(settings) => Ok(app::bootstrap::run(&settings).await?),
        Command::Healthcheck(settings) => health::probe(&settings.url, settings.timeout)
            .await
            .context("healthcheck failed"),
        #[cfg(feature = "simulate")]
        Command::Simulate(settings) => Ok(fleetwatch::simulate::command::run(settings).await?),
        Command::Process(settings) => Ok(ops::process::run(*settings).await?),
        Command::Dlq(settings) => Ok(ops::dlq_command::run(settings).await?),
        Command::History(settings) => ops::history::command(&settings)
            .await
            .with_context(|| format!("history of {}", settings.device)),
        Command::Status(settings) => ops::status::command(&settings).await.context("status"),
        Command::Alarms(settings) => ops::alarms::command(&settings).await.context("alarms"),
        Command::Rules(settings) => ops::rules::command(&settings).await.context("rules"),
    }
}

/// `--print-settings`: what the command would run with, after defaults,
/// the environment and validation (all done by the parse); nothing is
/// contacted.
fn print_settings(command: &Command) -> ExitCode {
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
