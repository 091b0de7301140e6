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

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::alerts::rules::AlertRule;

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
/// the empty-value rule of the module documentation; exits with clap's
/// message (naming the setting) on a bad setting.
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
    Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut command))
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InferenceBackend {
    /// In-process model (no network call).
    Embedded,
    /// A SageMaker real-time or serverless endpoint.
    Sagemaker,
    /// No prediction is made or stored.
    None,
}

/// Settings of `fleetwatch worker`: the queue and the worker's own server
/// and shutdown, over the [`PipelineSettings`] it shares with `process`.
#[derive(Debug, Clone, Args)]
pub struct WorkerSettings {
    /// URL of the SQS queue that receives the bucket's notifications.
    #[arg(long, env = "FLEETWATCH_QUEUE_URL", value_parser = parse_queue_url)]
    pub queue_url: String,

    /// Address of the /metrics, /healthz and /readyz server.
    #[arg(long, env = "FLEETWATCH_METRICS_ADDR", default_value = "0.0.0.0:9090", value_parser = parse_socket_addr)]
    pub metrics_addr: SocketAddr,

    /// Time in-flight messages get to finish after SIGTERM before they are returned to the queue.
    #[arg(long, env = "FLEETWATCH_SHUTDOWN_GRACE", default_value = "25s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// Every setting of the pipeline (parsers, model, table, alerts, limits).
    #[command(flatten)]
    pub pipeline: PipelineSettings,
}

/// `settings.table` and the like read the shared pipeline settings, so the
/// worker's code is the same as before they were split out.
impl std::ops::Deref for WorkerSettings {
    type Target = PipelineSettings;

    fn deref(&self) -> &PipelineSettings {
        &self.pipeline
    }
}

/// The settings of an object's way through the pipeline, the same for the
/// worker and for `fleetwatch process` (same flags, same `FLEETWATCH_*`
/// variables), so a backfill parses, predicts, stores and alerts exactly as
/// the worker does.
#[derive(Debug, Clone, Args)]
pub struct PipelineSettings {
    /// DynamoDB table for readings (partition key `device_id` S, sort key `timestamp` S).
    #[arg(long, env = "FLEETWATCH_TABLE", default_value = "fleetwatch-readings", value_parser = parse_table_name)]
    pub table: String,

    /// SNS topic ARN for alerts. When unset, no alerts are published.
    #[arg(long, env = "FLEETWATCH_ALERT_TOPIC_ARN", value_parser = parse_topic_arn)]
    pub alert_topic_arn: Option<String>,

    /// At most one alert per device and rule per window of this length (event
    /// time); also the de-duplication window of the alert ledger.
    #[arg(long, env = "FLEETWATCH_ALERT_COOLDOWN", default_value = "15m", value_parser = parse_cooldown)]
    pub alert_cooldown: Duration,

    /// Comma-separated safety rules, each `field op number` with op one of
    /// > >= < <= == !=; `none` for no safety rules.
    #[arg(long, env = "FLEETWATCH_ALERT_RULES", default_value = "engine_temp_c > 100", value_parser = parse_alert_rules)]
    pub alert_rules: AlertRules,

    /// A POSITIVE prediction scoring at least this raises a maintenance
    /// alert: `model` (the model's own decision threshold), `off`, or a
    /// probability from 0 to 1.
    #[arg(long, env = "FLEETWATCH_MAINTENANCE_ALERT_SCORE", default_value = "model", value_parser = parse_maintenance_alert_score)]
    pub maintenance_alert_score: MaintenanceAlertScore,

    /// Where predictions come from.
    #[arg(long, env = "FLEETWATCH_INFERENCE", value_enum, default_value_t = InferenceBackend::Embedded)]
    pub inference: InferenceBackend,

    /// XGBoost JSON model for the embedded backend, with its metadata beside
    /// it as `<name>.meta.json`. Default: the model built into the binary.
    #[arg(long, env = "FLEETWATCH_MODEL")]
    pub model: Option<std::path::PathBuf>,

    /// SageMaker endpoint name (required when FLEETWATCH_INFERENCE=sagemaker).
    #[arg(long, env = "FLEETWATCH_SAGEMAKER_ENDPOINT", value_parser = parse_endpoint_name)]
    pub sagemaker_endpoint: Option<String>,

    /// Request format for the endpoint: `csv` (the built-in XGBoost
    /// container), `json` (`{"instances":[{"features":[…]}]}`), or `text`
    /// (one raw line per call, answered with `{"probabilities":[…]}`).
    #[arg(long, env = "FLEETWATCH_SAGEMAKER_FORMAT", value_enum, default_value_t = SageMakerFormat::Csv)]
    pub sagemaker_format: SageMakerFormat,

    /// In `text` mode, the labels in the order of the endpoint's probabilities.
    #[arg(long, env = "FLEETWATCH_SAGEMAKER_LABELS", default_value = "NEGATIVE,POSITIVE", value_parser = parse_labels)]
    pub sagemaker_labels: SageMakerLabels,

    /// What a failed prediction does: `retry` leaves the message for
    /// redelivery; `store-unknown` stores the readings with an UNKNOWN
    /// prediction (counted in fleetwatch_inference_unknown_total).
    #[arg(long, env = "FLEETWATCH_ON_INFERENCE_ERROR", value_enum, default_value_t = OnInferenceError::Retry)]
    pub on_inference_error: OnInferenceError,

    /// Score at or above which a SageMaker prediction is POSITIVE. Default:
    /// the threshold in the model's metadata (the endpoint serves the same model).
    #[arg(long, env = "FLEETWATCH_SAGEMAKER_THRESHOLD", value_parser = parse_probability)]
    pub sagemaker_threshold: Option<f64>,

    /// Messages (objects) processed at once. The default suits one vCPU: the
    /// work is mostly waiting on S3 and DynamoDB, not computing.
    #[arg(long, env = "FLEETWATCH_CONCURRENCY", default_value_t = 8, value_parser = parse_concurrency)]
    pub concurrency: usize,

    /// Visibility timeout requested for each received message; it is
    /// extended by this much every third of it while the message is being
    /// processed (also the alert ledger's claim lease).
    #[arg(long, env = "FLEETWATCH_VISIBILITY_TIMEOUT", default_value = "60s", value_parser = parse_visibility_timeout)]
    pub visibility_timeout: Duration,

    /// Longest accepted line, in bytes; longer lines are rejected, never buffered.
    #[arg(long, env = "FLEETWATCH_MAX_LINE_BYTES", default_value_t = 64 * 1024, value_parser = parse_max_line_bytes)]
    pub max_line_bytes: usize,

    /// Largest object accepted, in bytes, as stored and after decompression.
    #[arg(long, env = "FLEETWATCH_MAX_OBJECT_BYTES", default_value_t = 1 << 30, value_parser = parse_max_object_bytes)]
    pub max_object_bytes: u64,

    /// Most readings accepted from one object.
    #[arg(long, env = "FLEETWATCH_MAX_RECORDS", default_value_t = 5_000_000, value_parser = parse_max_records)]
    pub max_records: u64,

    /// Largest decompressed/compressed size ratio of a gzip object (a gzip
    /// bomb is refused, not expanded).
    #[arg(long, env = "FLEETWATCH_MAX_GZIP_RATIO", default_value_t = 100, value_parser = parse_gzip_ratio)]
    pub max_gzip_ratio: u64,

    /// Readings stamped further than this ahead of the clock are rejected.
    #[arg(long, env = "FLEETWATCH_MAX_FUTURE_SKEW", default_value = "24h", value_parser = parse_duration)]
    pub max_future_skew: Duration,

    /// Write rejected lines, with their reasons, to `<prefix><key>.rejected.jsonl`
    /// in the object's bucket. Objects under the prefix are never processed.
    #[arg(long, env = "FLEETWATCH_QUARANTINE_PREFIX", value_parser = parse_quarantine_prefix)]
    pub quarantine_prefix: Option<String>,

    /// DynamoDB BatchWriteItem calls in flight per object.
    #[arg(long, env = "FLEETWATCH_DYNAMODB_WRITERS", default_value_t = 4, value_parser = parse_writers)]
    pub dynamodb_writers: usize,

    /// Keep each reading this long after its own timestamp (e.g. `400d`):
    /// its item gets `expires_at` (epoch seconds), the attribute the table's
    /// TTL acts on. Unset: readings never expire.
    #[arg(long, env = "FLEETWATCH_READING_TTL", value_parser = parse_reading_ttl)]
    pub reading_ttl: Option<Duration>,

    /// Use path-style S3 addressing. Defaults to on when an endpoint override
    /// (AWS_ENDPOINT_URL or AWS_ENDPOINT_URL_S3) is set, as emulators need it.
    #[arg(long, env = "FLEETWATCH_S3_PATH_STYLE")]
    pub s3_path_style: Option<bool>,

    #[command(flatten)]
    pub timeouts: TimeoutSettings,
}

// ---- fleetwatch process ----------------------------------------------------

/// Settings of `fleetwatch process`: what to read, and how; the pipeline's
/// settings are the worker's own.
#[derive(Debug, Clone, Args)]
pub struct ProcessSettings {
    /// What to process: `s3://bucket/prefix` (every object under the
    /// prefix), or local files and globs (`./data/*.jsonl.gz`). Required
    /// (checked when the command runs, so `--print-settings` works alone).
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<String>,

    /// Only S3 objects last modified at or after this: RFC 3339
    /// (`2026-11-30T00:00:00Z`) or a duration back from now (`2h`, `7d`).
    #[arg(long, value_parser = parse_when)]
    pub since: Option<When>,

    /// Only S3 objects last modified before this (same forms as `--since`).
    #[arg(long, value_parser = parse_when)]
    pub until: Option<When>,

    /// Only keys (or paths) matching this glob (`*` crosses `/`); repeatable.
    #[arg(long, value_parser = parse_glob)]
    pub include: Vec<glob::Pattern>,

    /// Skip keys (or paths) matching this glob; repeatable, wins over `--include`.
    #[arg(long, value_parser = parse_glob)]
    pub exclude: Vec<glob::Pattern>,

    /// Publish no alert (reprocess history quietly, e.g. after a model update).
    #[arg(long)]
    pub no_alerts: bool,

    /// Parse, predict and build the items and alerts, but send nothing; print
    /// the counts, readings/s and CPU seconds. Local files need no AWS access.
    #[arg(long)]
    pub dry_run: bool,

    /// Record each finished object in this file (one line each), so an
    /// interrupted run can be resumed with `--resume`.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<std::path::PathBuf>,

    /// Skip the objects the `--checkpoint` file lists as finished.
    #[arg(long, requires = "checkpoint")]
    pub resume: bool,

    /// Seconds between two progress lines when stderr is not a terminal.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub progress_interval: Duration,

    /// The worker's pipeline settings (same flags and variables).
    #[command(flatten)]
    pub pipeline: PipelineSettings,
}

/// A point in time given as `--since`/`--until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// An absolute time, Unix milliseconds.
    At(i64),
    /// This long before the command starts.
    Ago(Duration),
}

impl When {
    /// Unix milliseconds, relative ones counted back from `now_millis`.
    pub fn unix_millis(self, now_millis: i64) -> i64 {
        match self {
            When::At(ms) => ms,
            When::Ago(d) => now_millis - d.as_millis() as i64,
        }
    }
}

fn parse_when(s: &str) -> Result<When, String> {
    // A time has a date (`-`); a duration never does.
    if s.contains('-') {
        return crate::telemetry::parse_timestamp(s)
            .map(|t| When::At(t.unix_millis()))
            .map_err(|_| {
                format!("expected an RFC 3339 time like 2026-11-30T00:00:00Z, got {s:?}")
            });
    }
    parse_duration(s).map(When::Ago).map_err(|_| {
        format!("expected an RFC 3339 time like 2026-11-30T00:00:00Z or a duration back from now like 2h or 7d, got {s:?}")
    })
}

fn parse_glob(s: &str) -> Result<glob::Pattern, String> {
    glob::Pattern::new(s)
        .map_err(|e| format!("expected a glob like `*.jsonl.gz` or `2026/11/*`: {e}"))
}

// ---- Timeouts and liveness -------------------------------------------------

/// How long the worker waits on AWS, and how long it may go without
/// progress before `/healthz` fails. Each timeout has exactly one setting;
/// `aws::Timeouts` and `object_reader::Limits` carry them to where they act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Args)]
pub struct TimeoutSettings {
    /// Connecting (TCP and TLS) to an AWS endpoint, every client. An
    /// in-region handshake takes milliseconds; 3 s still rides out one lost
    /// SYN (retransmitted after 1 s) without waiting long on a dead address.
    #[arg(long = "aws-connect-timeout", env = "FLEETWATCH_AWS_CONNECT_TIMEOUT", default_value = "3s", value_parser = parse_aws_connect_timeout)]
    pub aws_connect: Duration,

    /// One attempt of an AWS call (SQS, S3 up to the response headers,
    /// DynamoDB, SNS); a timed-out attempt is retried like a 5xx. These calls
    /// answer in tens of milliseconds, so 10 s only ever cuts a hung one.
    /// ReceiveMessage gets its 20 s long-poll wait on top.
    #[arg(long = "aws-call-timeout", env = "FLEETWATCH_AWS_CALL_TIMEOUT", default_value = "10s", value_parser = parse_aws_call_timeout)]
    pub aws_call: Duration,

    /// An S3 object body that sends no byte for this long fails the read (a
    /// transient error: the message is retried). Not a total: a 1 GiB object
    /// streams as long as bytes keep coming. 30 s is far beyond any pause of
    /// a healthy S3 stream. Only time spent waiting for bytes counts, never
    /// the worker's own pauses between reads (while it writes to DynamoDB).
    #[arg(long = "s3-idle-timeout", env = "FLEETWATCH_S3_IDLE_TIMEOUT", default_value = "30s", value_parser = parse_s3_idle_timeout)]
    pub s3_idle: Duration,

    /// One SageMaker InvokeEndpoint attempt: 70 s stays above the 60 s
    /// real-time invocation limit, so the endpoint, not us, times out first.
    #[arg(long = "sagemaker-timeout", env = "FLEETWATCH_SAGEMAKER_TIMEOUT", default_value = "70s", value_parser = parse_sagemaker_timeout)]
    pub sagemaker: Duration,

    /// `/healthz` fails (503) when the worker made no progress for this long:
    /// no receive returned and no message task moved. 5 min is well above
    /// the longest quiet spell of a healthy worker (a 20 s long poll, a
    /// receive pause of at most 60 s during an outage, a retry backoff of at
    /// most 60 s followed by an attempt bounded by the timeouts above), so
    /// only a wedged task trips it and the container health check replaces it.
    #[arg(long = "liveness-timeout", env = "FLEETWATCH_LIVENESS_TIMEOUT", default_value = "5m", value_parser = parse_liveness_timeout)]
    pub liveness: Duration,
}

/// A duration from `min` to `max`, with an error naming the variable.
fn parse_duration_in(
    s: &str,
    name: &str,
    min: Duration,
    max: Duration,
    range: &str,
) -> Result<Duration, String> {
    let d = parse_duration(s).map_err(|e| format!("{name}: {e}"))?;
    if (min..=max).contains(&d) {
        Ok(d)
    } else {
        Err(format!("{name}: expected a duration from {range}"))
    }
}

fn parse_aws_connect_timeout(s: &str) -> Result<Duration, String> {
    parse_duration_in(
        s,
        "FLEETWATCH_AWS_CONNECT_TIMEOUT",
        Duration::from_millis(100),
        Duration::from_secs(60),
        "100ms to 60s",
    )
}

fn parse_aws_call_timeout(s: &str) -> Result<Duration, String> {
    parse_duration_in(
        s,
        "FLEETWATCH_AWS_CALL_TIMEOUT",
        Duration::from_millis(500),
        Duration::from_secs(3600),
        "500ms to 1h",
    )
}

fn parse_s3_idle_timeout(s: &str) -> Result<Duration, String> {
    parse_duration_in(
        s,
        "FLEETWATCH_S3_IDLE_TIMEOUT",
        Duration::from_millis(500),
        Duration::from_secs(3600),
        "500ms to 1h",
    )
}

fn parse_sagemaker_timeout(s: &str) -> Result<Duration, String> {
    parse_duration_in(
        s,
        "FLEETWATCH_SAGEMAKER_TIMEOUT",
        Duration::from_secs(1),
        Duration::from_secs(3600),
        "1s to 1h",
    )
}

/// At least 30 s: below the 20 s long poll (plus its latency) an idle,
/// healthy worker would fail its health check.
fn parse_liveness_timeout(s: &str) -> Result<Duration, String> {
    parse_duration_in(
        s,
        "FLEETWATCH_LIVENESS_TIMEOUT",
        Duration::from_secs(30),
        Duration::from_secs(24 * 3600),
        "30s to 24h",
    )
}

// ---- end of timeouts and liveness -------------------------------------------

// ---- Operator tools: history and status ------------------------------------

/// Settings of `fleetwatch history`.
#[derive(Debug, Clone, Args)]
pub struct HistorySettings {
    /// The vehicle (its `device_id`).
    #[arg(value_parser = parse_device_id)]
    pub device: String,

    /// DynamoDB table for readings (the worker's `FLEETWATCH_TABLE`).
    #[arg(long, env = "FLEETWATCH_TABLE", default_value = "fleetwatch-readings", value_parser = parse_table_name)]
    pub table: String,

    /// Readings of the last period only (e.g. `2h`, `7d`), up to now and
    /// beyond (readings stamped ahead of the clock are included).
    #[arg(long, value_parser = parse_duration, conflicts_with_all = ["from", "to"])]
    pub since: Option<Duration>,

    /// Readings at or after this time (RFC 3339, `YYYY-MM-DD HH:MM[:SS]` UTC, or epoch seconds).
    #[arg(long, value_parser = parse_time_bound)]
    pub from: Option<crate::telemetry::Timestamp>,

    /// Readings at or before this time (same forms as `--from`).
    #[arg(long, value_parser = parse_time_bound)]
    pub to: Option<crate::telemetry::Timestamp>,

    /// At most this many readings, the most recent ones, printed oldest
    /// first; `all` for every reading of the range.
    #[arg(long, default_value = "100", value_parser = parse_limit)]
    pub limit: Limit,

    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,

    /// Print per field count, min, max and mean, the share of POSITIVE
    /// predictions and the alerts raised for the vehicle in the range,
    /// instead of the readings.
    #[arg(long)]
    pub summary: bool,
}

/// Settings of `fleetwatch status`.
#[derive(Debug, Clone, Args)]
pub struct StatusSettings {
    /// URL of the worker's queue (the worker's `FLEETWATCH_QUEUE_URL`); its
    /// dead-letter queue is found from its redrive policy.
    #[arg(long, env = "FLEETWATCH_QUEUE_URL", value_parser = parse_queue_url)]
    pub queue_url: String,

    /// DynamoDB table for readings (the worker's `FLEETWATCH_TABLE`).
    #[arg(long, env = "FLEETWATCH_TABLE", default_value = "fleetwatch-readings", value_parser = parse_table_name)]
    pub table: String,

    /// The worker's metrics server (e.g. `http://10.0.1.5:9090`): its
    /// `/metrics` and `/readyz` are shown too.
    #[arg(long, value_parser = parse_http_url)]
    pub metrics_url: Option<String>,

    /// Vehicles whose last POSITIVE prediction or last alert is this recent
    /// (in the readings' own time, against the clock) are listed.
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub recent: Duration,

    /// List every vehicle the worker has seen, not only the recent ones.
    #[arg(long)]
    pub all: bool,

    /// Output format (`csv` prints the vehicles only).
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

/// How an operator tool prints its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for a terminal.
    Table,
    /// One JSON document per line (for jq).
    Json,
    /// CSV with a header row.
    Csv,
}

/// `--limit`: a count, or every reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    All,
    Most(usize),
}

fn parse_limit(s: &str) -> Result<Limit, String> {
    match s.trim() {
        "all" => Ok(Limit::All),
        other => match other.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(Limit::Most(n)),
            _ => Err("--limit: expected a number of readings (at least 1) or `all`".into()),
        },
    }
}

/// A device id as the parsers accept it: 1-128 characters of
/// `[A-Za-z0-9_.:-]` (so never one of the `alert#`/`fleet#` key spaces).
fn parse_device_id(s: &str) -> Result<String, String> {
    let ok = (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b));
    if ok {
        Ok(s.to_owned())
    } else {
        Err("DEVICE: expected a device id, 1-128 characters of A-Z a-z 0-9 _ . : -".into())
    }
}

fn parse_time_bound(s: &str) -> Result<crate::telemetry::Timestamp, String> {
    crate::telemetry::parse_timestamp(s.trim()).map_err(|_| {
        format!("expected a time like 2025-10-19T22:00:00Z or `2025-10-19 22:00`, got {s:?}")
    })
}

fn parse_http_url(s: &str) -> Result<String, String> {
    if (s.starts_with("http://") || s.starts_with("https://")) && s.len() > 8 {
        Ok(s.trim_end_matches('/').to_owned())
    } else {
        Err(
            "--metrics-url: expected the worker's metrics server, like http://127.0.0.1:9090"
                .into(),
        )
    }
}

// ---- end of operator tools: history and status -----------------------------

/// Settings of `fleetwatch bootstrap`.
#[derive(Debug, Clone, Args)]
pub struct BootstrapSettings {
    /// Bucket the vehicles upload to.
    #[arg(long, env = "FLEETWATCH_BUCKET", default_value = "fleetwatch-telemetry", value_parser = parse_bucket_name)]
    pub bucket: String,
    /// Name of the notification queue (its dead-letter queue gets `-dlq` appended).
    #[arg(long, env = "FLEETWATCH_QUEUE_NAME", default_value = "fleetwatch-telemetry", value_parser = parse_queue_name)]
    pub queue_name: String,
    /// DynamoDB table for readings.
    #[arg(long, env = "FLEETWATCH_TABLE", default_value = "fleetwatch-readings", value_parser = parse_table_name)]
    pub table: String,
    /// SNS topic for alerts.
    #[arg(long, env = "FLEETWATCH_TOPIC_NAME", default_value = "fleetwatch-alerts", value_parser = parse_topic_name)]
    pub topic_name: String,
    /// Receives before a message is moved to the dead-letter queue.
    #[arg(long, env = "FLEETWATCH_MAX_RECEIVE_COUNT", default_value_t = 5, value_parser = parse_max_receive_count)]
    pub max_receive_count: u32,
    /// Use path-style S3 addressing (see `worker --help`).
    #[arg(long, env = "FLEETWATCH_S3_PATH_STYLE")]
    pub s3_path_style: Option<bool>,
}

impl BootstrapSettings {
    /// What `bootstrap::run` creates, free of the command line.
    pub fn plan(&self) -> crate::bootstrap::Plan {
        crate::bootstrap::Plan {
            bucket: self.bucket.clone(),
            queue_name: self.queue_name.clone(),
            table: self.table.clone(),
            topic_name: self.topic_name.clone(),
            max_receive_count: self.max_receive_count,
        }
    }
}

/// Settings of `fleetwatch healthcheck`.
#[derive(Debug, Clone, Args)]
pub struct HealthcheckSettings {
    /// URL to probe.
    #[arg(long, default_value = "http://127.0.0.1:9090/healthz")]
    pub url: String,
    /// Give up after this long.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub timeout: Duration,
}

// ---- dlq ---------------------------------------------------------------------

/// Settings of `fleetwatch dlq`: where the dead-letter queue is, and what
/// to do with it. The queue settings are global to the actions, so they
/// can follow either `dlq` or the action.
#[derive(Debug, Clone, Args)]
pub struct DlqSettings {
    /// URL of the worker's queue (the same setting as the worker's). Its
    /// `RedrivePolicy` names the dead-letter queue, and `redrive` sends the
    /// messages back to it. Needed unless `--dlq-url` is given and the
    /// action is `list` or `purge`.
    #[arg(long, env = "FLEETWATCH_QUEUE_URL", value_parser = parse_queue_url, global = true)]
    pub queue_url: Option<String>,

    /// URL of the dead-letter queue, when it should not be read from the
    /// queue's `RedrivePolicy` (for example without `sqs:GetQueueAttributes`
    /// on the main queue, or to inspect another dead-letter queue).
    #[arg(long, env = "FLEETWATCH_DLQ_URL", value_parser = parse_dlq_url, global = true)]
    pub dlq_url: Option<String>,

    /// What to do; `list` when none is given.
    #[command(subcommand)]
    pub action: Option<DlqAction>,
}

/// The actions of `fleetwatch dlq`.
#[derive(Debug, Clone, Subcommand)]
pub enum DlqAction {
    /// Show each message (id, receives, first receive, objects) without consuming any.
    List(DlqListSettings),
    /// Move messages back to the worker's queue.
    Redrive(DlqRedriveSettings),
    /// Delete every message of the dead-letter queue.
    Purge(DlqPurgeSettings),
}

impl Default for DlqAction {
    fn default() -> Self {
        DlqAction::List(DlqListSettings {
            format: ListFormat::Table,
            max_messages: 1000,
        })
    }
}

/// How `dlq list` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// Aligned columns for a terminal.
    Table,
    /// One JSON array, for scripts.
    Json,
}

/// Settings of `fleetwatch dlq list`.
#[derive(Debug, Clone, Args)]
pub struct DlqListSettings {
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// Most messages shown (each is held invisible while the listing runs).
    #[arg(long, default_value_t = 1000, value_parser = parse_dlq_max_messages)]
    pub max_messages: usize,
}

/// Settings of `fleetwatch dlq redrive`.
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["all", "message_id"])))]
pub struct DlqRedriveSettings {
    /// Move every message (with SQS `StartMessageMoveTask` where the
    /// service supports it).
    #[arg(long)]
    pub all: bool,
    /// Move only these messages (ids as `dlq list` shows them); repeatable.
    #[arg(long = "message-id", value_parser = parse_message_id)]
    pub message_id: Vec<String>,
    /// Never use `StartMessageMoveTask`: receive, send, then delete each message.
    #[arg(long)]
    pub no_move_task: bool,
}

/// Settings of `fleetwatch dlq purge`.
#[derive(Debug, Clone, Args)]
pub struct DlqPurgeSettings {
    /// Really delete: without it, `purge` only says how many messages it would delete.
    #[arg(long)]
    pub yes: bool,
}

fn parse_dlq_url(s: &str) -> Result<String, String> {
    if (s.starts_with("https://") || s.starts_with("http://")) && s.len() > 8 {
        Ok(s.to_owned())
    } else {
        Err("FLEETWATCH_DLQ_URL: expected a queue URL like https://sqs.eu-west-1.amazonaws.com/123456789012/fleetwatch-telemetry-dlq; leave it unset to read it from the queue's RedrivePolicy".into())
    }
}

fn parse_dlq_max_messages(s: &str) -> Result<usize, String> {
    parse_bounded(s, 1, 100_000, "--max-messages")
}

fn parse_message_id(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 100 || s.chars().any(char::is_whitespace) {
        Err("--message-id: expected an SQS message id as `dlq list` shows it".into())
    } else {
        Ok(s.to_owned())
    }
}

// ---- end of dlq --------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SageMakerFormat {
    Csv,
    Json,
    Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnInferenceError {
    Retry,
    StoreUnknown,
}

/// The parsed `FLEETWATCH_SAGEMAKER_LABELS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SageMakerLabels(pub Vec<String>);

fn parse_labels(s: &str) -> Result<SageMakerLabels, String> {
    let labels: Vec<String> = s.split(',').map(|l| l.trim().to_owned()).collect();
    if labels.len() >= 2
        && labels.iter().any(|l| l == "POSITIVE")
        && labels.iter().all(|l| !l.is_empty())
    {
        Ok(SageMakerLabels(labels))
    } else {
        Err("FLEETWATCH_SAGEMAKER_LABELS: expected a comma-separated label order naming POSITIVE, e.g. NEGATIVE,POSITIVE".into())
    }
}

/// When a prediction raises a maintenance alert.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaintenanceAlertScore {
    /// At the model's decision threshold.
    ModelThreshold,
    Off,
    AtLeast(f64),
}

impl MaintenanceAlertScore {
    /// The minimum score, given the model's threshold (`None`: no alerts).
    pub fn resolve(self, model_threshold: Option<f64>) -> Option<f64> {
        match self {
            MaintenanceAlertScore::ModelThreshold => model_threshold,
            MaintenanceAlertScore::Off => None,
            MaintenanceAlertScore::AtLeast(score) => model_threshold.map(|_| score),
        }
    }
}

fn parse_maintenance_alert_score(s: &str) -> Result<MaintenanceAlertScore, String> {
    match s.trim() {
        "model" => Ok(MaintenanceAlertScore::ModelThreshold),
        "off" => Ok(MaintenanceAlertScore::Off),
        other => match other.parse::<f64>() {
            Ok(v) if (0.0..=1.0).contains(&v) => Ok(MaintenanceAlertScore::AtLeast(v)),
            _ => Err("FLEETWATCH_MAINTENANCE_ALERT_SCORE: expected `model`, `off` or a probability from 0 to 1".into()),
        },
    }
}

/// Settings of `fleetwatch simulate`.
#[cfg(feature = "simulate")]
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("destination").required(true).multiple(true).args(["out", "upload"])))]
pub struct SimulateSettings {
    /// Vehicles in the fleet.
    #[arg(long, default_value_t = 10)]
    pub vehicles: u32,
    /// Simulated hours.
    #[arg(long, default_value_t = 24.0)]
    pub hours: f64,
    /// Time between two readings of a running vehicle.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub interval: Duration,
    /// One file per vehicle per window of this length (as vehicles upload).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub window: Duration,
    /// Random seed: the same seed gives the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// File format.
    #[arg(long, value_enum, default_value_t = crate::simulate::SimFormat::JsonLines)]
    pub format: crate::simulate::SimFormat,
    /// Gzip every file.
    #[arg(long)]
    pub gzip: bool,
    /// Fraction of vehicles that develop a failure.
    #[arg(long, default_value_t = 0.3, value_parser = parse_probability)]
    pub failure_rate: f64,
    /// Start of the simulated period: RFC 3339, or `now` (the current hour).
    #[arg(long, default_value = "2025-10-19T00:00:00Z")]
    pub start: String,
    /// Write the files and ground_truth.json under this directory.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// Upload the files to s3://bucket/prefix.
    #[arg(long)]
    pub upload: Option<String>,
    /// Uploads in flight.
    #[arg(long, default_value_t = 16)]
    pub upload_concurrency: usize,
    /// Use path-style S3 addressing (see `worker --help`).
    #[arg(long, env = "FLEETWATCH_S3_PATH_STYLE")]
    pub s3_path_style: Option<bool>,
}

fn parse_probability(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err("expected a probability from 0 to 1".into()),
    }
}

/// The parsed `FLEETWATCH_ALERT_RULES`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRules(pub Vec<AlertRule>);

impl PipelineSettings {
    /// Checks the settings that depend on each other.
    pub fn validate(&self) -> Result<(), String> {
        if self.inference == InferenceBackend::Sagemaker
            && self.sagemaker_endpoint.as_deref().is_none_or(str::is_empty)
        {
            return Err("FLEETWATCH_INFERENCE=sagemaker needs FLEETWATCH_SAGEMAKER_ENDPOINT (the endpoint's name)".into());
        }
        Ok(())
    }
}

/// Whether S3 should use path-style addressing: the explicit setting, or on
/// when the S3 endpoint is overridden (LocalStack and moto need it).
pub fn s3_path_style(explicit: Option<bool>) -> bool {
    explicit.unwrap_or_else(|| {
        ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
    })
}

fn parse_queue_url(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("FLEETWATCH_QUEUE_URL is empty: it is required; expected a queue URL like https://sqs.eu-west-1.amazonaws.com/123456789012/fleetwatch-telemetry".into());
    }
    if (s.starts_with("https://") || s.starts_with("http://")) && s.len() > 8 {
        Ok(s.to_owned())
    } else {
        Err("FLEETWATCH_QUEUE_URL: expected a queue URL like https://sqs.eu-west-1.amazonaws.com/123456789012/fleetwatch-telemetry".into())
    }
}

fn parse_table_name(s: &str) -> Result<String, String> {
    let ok = (3..=255).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(s.to_owned())
    } else {
        Err("FLEETWATCH_TABLE: expected a DynamoDB table name, 3-255 characters of A-Z a-z 0-9 _ . -".into())
    }
}

fn parse_bucket_name(s: &str) -> Result<String, String> {
    let ok = (3..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b));
    if ok {
        Ok(s.to_owned())
    } else {
        Err("FLEETWATCH_BUCKET: expected an S3 bucket name, 3-63 characters of a-z 0-9 - .".into())
    }
}

fn parse_queue_name(s: &str) -> Result<String, String> {
    let ok = (1..=76).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
    if ok {
        Ok(s.to_owned())
    } else {
        // 80 is SQS's limit; 4 are left for the dead-letter queue's `-dlq`.
        Err(
            "FLEETWATCH_QUEUE_NAME: expected a queue name, 1-76 characters of A-Z a-z 0-9 - _"
                .into(),
        )
    }
}

fn parse_topic_name(s: &str) -> Result<String, String> {
    let ok = (1..=256).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(
            "FLEETWATCH_TOPIC_NAME: expected a topic name, 1-256 characters of A-Z a-z 0-9 - _"
                .into(),
        )
    }
}

fn parse_max_receive_count(s: &str) -> Result<u32, String> {
    parse_bounded(s, 1, 1000, "FLEETWATCH_MAX_RECEIVE_COUNT").map(|n| n as u32)
}

fn parse_endpoint_name(s: &str) -> Result<String, String> {
    let ok = (1..=63).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-');
    if ok {
        Ok(s.to_owned())
    } else {
        Err("FLEETWATCH_SAGEMAKER_ENDPOINT: expected an endpoint name, 1-63 characters of A-Z a-z 0-9 and -".into())
    }
}

fn parse_topic_arn(s: &str) -> Result<String, String> {
    if s.starts_with("arn:") && s.split(':').count() == 6 && s.contains(":sns:") {
        Ok(s.to_owned())
    } else {
        Err("FLEETWATCH_ALERT_TOPIC_ARN: expected an SNS topic ARN like arn:aws:sns:eu-west-1:123456789012:fleetwatch-alerts".into())
    }
}

/// `none` switches the safety rules off; an empty list is refused rather
/// than silently meaning the same.
fn parse_alert_rules(s: &str) -> Result<AlertRules, String> {
    if s.trim() == "none" {
        return Ok(AlertRules(Vec::new()));
    }
    if s.split(',').all(|p| p.trim().is_empty()) {
        return Err("FLEETWATCH_ALERT_RULES: expected comma-separated rules like `engine_temp_c > 100`, or `none`".into());
    }
    let mut rules = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let rule = AlertRule::from_str(part).map_err(|e| format!("FLEETWATCH_ALERT_RULES: {e}"))?;
        rules.push(rule);
    }
    Ok(AlertRules(rules))
}

fn parse_concurrency(s: &str) -> Result<usize, String> {
    parse_bounded(s, 1, 256, "FLEETWATCH_CONCURRENCY")
}

fn parse_writers(s: &str) -> Result<usize, String> {
    parse_bounded(s, 1, 64, "FLEETWATCH_DYNAMODB_WRITERS")
}

fn parse_max_line_bytes(s: &str) -> Result<usize, String> {
    parse_bounded(s, 256, 16 * 1024 * 1024, "FLEETWATCH_MAX_LINE_BYTES")
}

fn parse_bounded(s: &str, min: usize, max: usize, name: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "{name}: expected a whole number from {min} to {max}"
        )),
    }
}

fn parse_max_object_bytes(s: &str) -> Result<u64, String> {
    parse_bounded(s, 1024, usize::MAX, "FLEETWATCH_MAX_OBJECT_BYTES").map(|n| n as u64)
}

fn parse_max_records(s: &str) -> Result<u64, String> {
    parse_bounded(s, 1, usize::MAX, "FLEETWATCH_MAX_RECORDS").map(|n| n as u64)
}

fn parse_gzip_ratio(s: &str) -> Result<u64, String> {
    parse_bounded(s, 2, 100_000, "FLEETWATCH_MAX_GZIP_RATIO").map(|n| n as u64)
}

/// Never empty: an empty prefix would make every key a quarantine key (an
/// empty FLEETWATCH_QUARANTINE_PREFIX is unset, see the module documentation).
fn parse_quarantine_prefix(s: &str) -> Result<String, String> {
    if s.is_empty() || s.starts_with('/') || s.len() > 512 {
        Err("FLEETWATCH_QUARANTINE_PREFIX: expected a key prefix such as `quarantine/` (no leading /); leave it unset for no quarantine".into())
    } else {
        Ok(s.to_owned())
    }
}

fn parse_socket_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| {
        "FLEETWATCH_METRICS_ADDR: expected an address and port like 0.0.0.0:9090".to_owned()
    })
}

fn parse_cooldown(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s).map_err(|e| format!("FLEETWATCH_ALERT_COOLDOWN: {e}"))?;
    if (Duration::from_secs(1)..=Duration::from_secs(7 * 24 * 3600)).contains(&d) {
        Ok(d)
    } else {
        Err("FLEETWATCH_ALERT_COOLDOWN: expected a duration from 1s to 7 days (168h)".into())
    }
}

fn parse_visibility_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s).map_err(|e| format!("FLEETWATCH_VISIBILITY_TIMEOUT: {e}"))?;
    if (Duration::from_secs(10)..=Duration::from_secs(12 * 3600)).contains(&d) {
        Ok(d)
    } else {
        Err("FLEETWATCH_VISIBILITY_TIMEOUT: expected a duration from 10s to 12h".into())
    }
}

/// `FLEETWATCH_READING_TTL`: a duration of at least one hour. Zero (or a
/// few seconds) would have DynamoDB delete readings as they are written.
fn parse_reading_ttl(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s).map_err(|e| format!("FLEETWATCH_READING_TTL: {e}"))?;
    if d >= Duration::from_secs(3600) {
        Ok(d)
    } else {
        Err("FLEETWATCH_READING_TTL: expected a retention of at least 1h, like 400d".into())
    }
}

/// Parses `500ms`, `25s`, `15m`, `2h`, `400d` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| {
            format!("expected a duration like 500ms, 25s, 15m, 2h or 400d, got {s:?}")
        })?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86_400.0,
        _ => {
            return Err(format!(
                "expected a duration like 500ms, 25s, 15m, 2h or 400d, got {s:?}"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("duration {s:?} is out of range"))
}

#[cfg(test)]
mod tests {
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
        assert_eq!(
            parse_reading_ttl("400d"),
            Ok(Duration::from_secs(400 * 86_400))
        );
        assert!(parse_reading_ttl("0d").is_err());
        assert!(parse_reading_ttl("soon").is_err());
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
        assert_eq!(w.alert_rules.0.len(), 1);
        assert_eq!(w.alert_rules.0[0].to_string(), "engine_temp_c > 100");
        assert_eq!(w.inference, InferenceBackend::Embedded);
        assert_eq!(w.shutdown_grace, Duration::from_secs(25));
        assert_eq!(w.metrics_addr.port(), 9090);
        assert!(w.validate().is_ok());
    }

    #[test]
    fn timeouts_default_to_what_the_clients_and_the_reader_assume() {
        let cli =
            Cli::try_parse_from(["fleetwatch", "worker", "--queue-url", "http://localhost/q"])
                .unwrap();
        let Command::Worker(w) = cli.command else {
            panic!("expected worker")
        };
        let t = w.timeouts;
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
        assert_eq!(w.timeouts.aws_call, Duration::from_millis(1500));
    }

    #[test]
    fn sagemaker_needs_an_endpoint() {
        let cli = Cli::try_parse_from([
            "fleetwatch",
            "worker",
            "--queue-url",
            "http://localhost/q",
            "--inference",
            "sagemaker",
        ])
        .unwrap();
        let Command::Worker(w) = cli.command else {
            panic!("expected worker")
        };
        assert!(
            w.validate()
                .unwrap_err()
                .contains("FLEETWATCH_SAGEMAKER_ENDPOINT")
        );
    }
}
