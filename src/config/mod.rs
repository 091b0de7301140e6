//! Command-line and environment configuration.
//!
//! Every setting is a flag with an environment variable behind it (clap's
//! `env`), so the same binary is configured by flags on a laptop and by
//! environment in a container. Values are parsed into their real types here,
//! at start-up, so a bad setting stops the process with a message naming the
//! setting and the expected form instead of failing later mid-stream.
//! AWS itself (region, endpoint, credentials) is configured through the SDK's
//! standard variables (`AWS_REGION`, `AWS_ENDPOINT_URL`, the credentials
//! chain), not here.
//!
//! **One rule for empty values**: a `FLEETWATCH_*` variable set to the empty
//! string (what `docker run -e VAR=`, a compose `VAR:` line or a template's
//! `""` gives) is the same as an unset one: the documented default applies,
//! and a required setting is refused as missing, naming the variable. An
//! empty value typed on the command line (`--table ""`) is refused by the
//! setting's parser, naming the setting. [`parse`] applies the rule to every
//! setting of every subcommand, so a new setting cannot forget it.

//!
//! **Shape.** Settings come in groups, each declared once in a file of its
//! own and flattened (`#[command(flatten)]`) into every subcommand that
//! uses it: [`QueueSettings`], [`TableSettings`], [`StorageSettings`],
//! [`ProcessingSettings`], [`InferenceSettings`], [`AlertSettings`],
//! [`LimitSettings`], [`S3AddressingSettings`], [`TimeoutSettings`],
//! [`ServerSettings`]. [`WorkerSettings`] is the queue and the server over
//! the [`PipelineSettings`] it shares with `process`. Settings that depend on
//! each other are checked by [`try_parse_from`] itself, so a parsed [`Cli`]
//! is a valid one.
//!
//! **Adding a setting**: a field in its group (doc comment = `--help`;
//! `env = "FLEETWATCH_…"`; a `value_parser` whose error names the
//! variable), then README's settings table. **A group**: a file here with
//! a `#[derive(Args)]` struct, `pub mod` + `pub use` below, and a
//! `#[command(flatten)]` field in each subcommand's settings that needs it
//! (in [`PipelineSettings`] for the worker and `process`). **A
//! subcommand**: its settings struct in a file here, a [`Command`] variant,
//! and one arm in `main.rs` calling the library function that runs it.
//! `tests/settings.rs` then checks the new settings' empty-value rule by
//! itself.

mod alarms;
mod alerts;
mod bootstrap;
mod dlq;
mod healthcheck;
mod inference;
mod limits;
mod ops;
mod process;
mod processing;
mod queue;
mod s3;
mod server;
#[cfg(feature = "simulate")]
mod simulate;
mod storage;
mod timeouts;
mod values;
mod worker;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

pub use alarms::{AlarmSettings, AlarmTableSetting};
pub use alerts::{AlertRules, AlertRulesSetting, AlertSettings, MaintenanceAlertScore};
pub use bootstrap::BootstrapSettings;
pub use dlq::{
    DlqAction, DlqListSettings, DlqPurgeSettings, DlqRedriveSettings, DlqSettings, ListFormat,
};
pub use healthcheck::HealthcheckSettings;
pub use inference::{InferenceBackend, InferenceSettings, SageMakerFormat, SageMakerLabels};
pub use limits::LimitSettings;
pub use ops::{HistorySettings, Limit, OutputFormat, StatusSettings};
pub use process::{ProcessSettings, When};
pub use processing::ProcessingSettings;
pub use queue::QueueSettings;
pub use s3::{S3AddressingSettings, s3_path_style};
pub use server::ServerSettings;
#[cfg(feature = "simulate")]
pub use simulate::SimulateSettings;
pub use storage::{StorageSettings, TableSettings};
pub use timeouts::TimeoutSettings;
pub use values::parse_duration;
pub use worker::{PipelineSettings, WorkerSettings};

/// Vehicle-fleet telemetry monitoring and predictive maintenance on AWS.
#[derive(Debug, Parser)]
#[command(name = "fleetwatch", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log output format.
    #[arg(long, env = "FLEETWATCH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// Print the settings the command would run with (after defaults,
    /// environment and validation) and exit, without contacting AWS.
    #[arg(long, global = true)]
    pub print_settings: bool,
}

/// Parses the command line and the `FLEETWATCH_*` environment, applying
/// the empty-value rule of the module documentation and checking the
/// settings that depend on each other; exits with clap's message (naming
/// the setting) on a bad setting.
pub fn parse() -> Cli {
    match try_parse_from(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    }
}

/// [`parse`] for given arguments (the environment is still the process's).
pub fn try_parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let mut command = ignore_empty_env(Cli::command());
    let matches: ArgMatches = command.try_get_matches_from_mut(args)?;
    let cli = Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut command))?;
    // Settings that depend on each other: refused here like a bad value.
    cli.command.validate().map_err(|message| {
        clap::Error::raw(
            clap::error::ErrorKind::ArgumentConflict,
            format!("{message}\n"),
        )
    })?;
    Ok(cli)
}

/// Detaches every optional argument from its environment variable when
/// that variable is set but empty, so clap applies the default as if it
/// were unset. Required arguments keep theirs: their parser then refuses
/// the empty value with a message naming the variable.
fn ignore_empty_env(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| {
            let empty = arg
                .get_env()
                .and_then(std::env::var_os)
                .is_some_and(|value| value.is_empty());
            if empty && !arg.is_required_set() {
                arg.env(None::<&str>)
            } else {
                arg
            }
        })
        .mut_subcommands(ignore_empty_env)
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the worker: long-poll the queue and process every object it names.
    Worker(Box<WorkerSettings>),
    /// Create the bucket, queue, dead-letter queue, table and topic (idempotent).
    Bootstrap(BootstrapSettings),
    /// Probe the worker's /healthz endpoint; exit 0 when healthy (for container health checks).
    Healthcheck(HealthcheckSettings),
    /// Generate realistic fleet telemetry (and its ground truth) into a
    /// directory or straight into S3.
    #[cfg(feature = "simulate")]
    Simulate(SimulateSettings),
    /// Backfill or reprocess objects that already exist (an S3 prefix, or
    /// local files) through exactly the worker's pipeline.
    Process(Box<ProcessSettings>),
    /// Inspect, redrive or purge the dead-letter queue (`list` when no action is given).
    Dlq(DlqSettings),
    /// Print one vehicle's readings and predictions (one DynamoDB Query on
    /// its key range, never a Scan), or their summary.
    History(HistorySettings),
    /// Show the queue, the dead-letter queue, the worker's own view and the
    /// vehicles with an open alert or a recent POSITIVE prediction.
    Status(StatusSettings),
    /// List alarms, or acknowledge, snooze or resolve one.
    Alarms(crate::ops::alarms::AlarmsSettings),
    /// Give a vehicle, a glob of vehicles or a group its own safety rules
    /// (stored, applied by the workers without a redeploy), list them, or
    /// show which apply to a vehicle.
    Rules(crate::ops::rules::RulesSettings),
}

impl Command {
    /// Checks the settings that depend on each other (`None`: the command
    /// has none such).
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Command::Worker(settings) => settings.pipeline.validate(),
            Command::Process(settings) => settings.pipeline.validate(),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("25s"), Ok(Duration::from_secs(25)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(
            parse_duration("400d"),
            Ok(Duration::from_secs(400 * 86_400))
        );
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn bad_settings_name_the_variable() {
        let err = Cli::try_parse_from(["fleetwatch", "worker", "--queue-url", "nope"]).unwrap_err();
        assert!(err.to_string().contains("FLEETWATCH_QUEUE_URL"), "{err}");
        let err = Cli::try_parse_from([
            "fleetwatch",
            "worker",
            "--queue-url",
            "http://localhost/q",
            "--alert-rules",
            "engine_temp_c >> 100",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("FLEETWATCH_ALERT_RULES"), "{err}");
        let err = Cli::try_parse_from([
            "fleetwatch",
            "worker",
            "--queue-url",
            "http://localhost/q",
            "--concurrency",
            "0",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("FLEETWATCH_CONCURRENCY"), "{err}");
    }

    #[test]
    fn defaults() {
        let cli =
            Cli::try_parse_from(["fleetwatch", "worker", "--queue-url", "http://localhost/q"])
                .unwrap();
        let Command::Worker(w) = cli.command else {
            panic!("expected worker")
        };
        let rules = &w.pipeline.alerts.rules.alert_rules.0;
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].to_string(), "engine_temp_c > 100");
        assert_eq!(w.pipeline.inference.inference, InferenceBackend::Embedded);
        assert_eq!(w.server.shutdown_grace, Duration::from_secs(25));
        assert_eq!(w.server.metrics_addr.port(), 9090);
        assert!(w.pipeline.validate().is_ok());
    }

    #[test]
    fn timeouts_default_to_what_the_clients_and_the_reader_assume() {
        let cli =
            Cli::try_parse_from(["fleetwatch", "worker", "--queue-url", "http://localhost/q"])
                .unwrap();
        let Command::Worker(w) = cli.command else {
            panic!("expected worker")
        };
        let t = w.pipeline.timeouts;
        let aws = crate::aws::Timeouts::default();
        assert_eq!(
            (t.aws_connect, t.aws_call, t.sagemaker),
            (aws.connect, aws.call, aws.sagemaker)
        );
        assert_eq!(
            t.s3_idle,
            crate::object_reader::Limits::default().idle_timeout
        );
        assert_eq!(t.liveness, Duration::from_secs(300));
    }

    #[test]
    fn bad_timeouts_name_their_variable() {
        for (flag, value, variable) in [
            (
                "--aws-connect-timeout",
                "0s",
                "FLEETWATCH_AWS_CONNECT_TIMEOUT",
            ),
            ("--aws-call-timeout", "soon", "FLEETWATCH_AWS_CALL_TIMEOUT"),
            ("--s3-idle-timeout", "2h", "FLEETWATCH_S3_IDLE_TIMEOUT"),
            ("--sagemaker-timeout", "", "FLEETWATCH_SAGEMAKER_TIMEOUT"),
            ("--liveness-timeout", "10s", "FLEETWATCH_LIVENESS_TIMEOUT"),
        ] {
            let err = Cli::try_parse_from([
                "fleetwatch",
                "worker",
                "--queue-url",
                "http://localhost/q",
                flag,
                value,
            ])
            .unwrap_err();
            assert!(err.to_string().contains(variable), "{flag} {value}: {err}");
        }
        let cli = Cli::try_parse_from([
            "fleetwatch",
            "worker",
            "--queue-url",
            "http://localhost/q",
            "--aws-call-timeout",
            "1500ms",
        ])
        .unwrap();
        let Command::Worker(w) = cli.command else {
            panic!("expected worker")
        };
        assert_eq!(w.pipeline.timeouts.aws_call, Duration::from_millis(1500));
    }

    #[test]
    fn sagemaker_needs_an_endpoint_and_the_parse_says_so() {
        let err = try_parse_from([
            "fleetwatch",
            "worker",
            "--queue-url",
            "http://localhost/q",
            "--inference",
            "sagemaker",
        ])
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("FLEETWATCH_INFERENCE=sagemaker needs FLEETWATCH_SAGEMAKER_ENDPOINT"),
            "{err}"
        );
        assert_eq!(err.exit_code(), 2);
        for command in ["worker", "process"] {
            let mut args = vec!["fleetwatch", command, "--inference", "sagemaker"];
            if command == "worker" {
                args.extend(["--queue-url", "http://localhost/q"]);
            }
            let err = try_parse_from(args.iter().copied()).unwrap_err();
            assert!(
                err.to_string().contains("FLEETWATCH_SAGEMAKER_ENDPOINT"),
                "{command}: {err}"
            );
            args.extend(["--sagemaker-endpoint", "fleet-model"]);
            assert!(
                try_parse_from(args.iter().copied()).is_ok(),
                "{command} with an endpoint"
            );
        }
    }
}
