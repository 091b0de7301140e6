//! `fleetwatch process`: backfill and reprocessing of objects that already
//! exist, an S3 prefix (ListObjectsV2, paginated, filtered on LastModified
//! and key globs) or local files, through exactly the worker's pipeline
//! ([`Pipeline::process_from`]): the same parsers, model, items, keys and
//! alert rules, so a second run rewrites the same items and adds none.
//!
//! Objects run `--concurrency` at a time. Ctrl-C stops starting objects,
//! lets those in flight finish (a second Ctrl-C stops at once) and says how
//! far the run got; with `--checkpoint FILE` each finished object is
//! appended to the file, and `--resume` skips them. `--dry-run` builds the
//! items and alerts and sends nothing. The summary on stdout and the exit
//! status say whether every object was processed.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::alerts::{Alert, ClaimOwner};
use crate::aws;
use crate::config::ProcessSettings;
use crate::dependencies::DependencyHealth;
use crate::liveness::Liveness;
use crate::notification::ObjectRef;
use crate::pipeline::{Mode, ObjectOutcome, ObjectReport, Pipeline, Source};
use crate::retry::{self, Attempt};

/// The bucket name local files get in items, logs and alerts.
pub const LOCAL_BUCKET: &str = "local";
/// A held step of a backfill gives up after this long (there is no SQS
/// lease to respect; this only bounds a run stuck on a dead dependency).
const HOLD_LIMIT: Duration = Duration::from_secs(3600);
/// Alerts a dry run lists one by one; the rest are counted.
const ALERTS_LISTED: usize = 20;

/// Why `fleetwatch process` stopped short.
#[derive(Debug, thiserror::Error)]
pub enum ProcessCommandError {
    #[error(
        "nothing to process: give an s3://bucket/prefix or local files (e.g. `fleetwatch process ./data/*.jsonl.gz`)"
    )]
    NoInput,
    #[error(
        "{0:?}: an s3:// input must be the only one (run one command per bucket prefix, another for local files)"
    )]
    MixedInputs(String),
    #[error("{input:?}: expected s3://bucket/prefix with a bucket name")]
    BadS3Url { input: String },
    #[error("{pattern:?}: not a valid path glob: {message}")]
    BadGlob { pattern: String, message: String },
    #[error("{input:?}: no such file, and no file matches it")]
    NoMatch { input: String },
    #[error("listing s3://{bucket}/{prefix} failed: {message}")]
    List {
        bucket: String,
        prefix: String,
        message: String,
    },
    #[error(transparent)]
    Build(#[from] crate::app::BuildError),
    #[error("reading the alert rule overrides (`fleetwatch rules`) failed: {0}")]
    Rules(#[from] crate::alarms::AlarmError),
    #[error("the table {table} (FLEETWATCH_TABLE) cannot be used: {message}")]
    Table { table: String, message: String },
    #[error("checkpoint file {path}: {error}; check the path and its permissions")]
    Checkpoint {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "interrupted: {finished} of {total} objects finished{resume}; objects in flight were {abandoned}"
    )]
    Interrupted {
        finished: usize,
        total: usize,
        resume: String,
        abandoned: &'static str,
    },
    #[error("{failed} of {total} objects were not processed completely (see the summary)")]
    Incomplete { failed: usize, total: usize },
}

/// One object to process: where it is, and its line in the checkpoint.
#[derive(Debug, Clone)]
struct Target {
    /// Bucket and key (for local files: [`LOCAL_BUCKET`] and the path).
    object: ObjectRef,
    /// The local file, for local inputs.
    path: Option<PathBuf>,
    /// `s3://bucket/key` or the path: the checkpoint's record of it.
    id: String,
}

/// How one object ended, sent from its task to the run's loop.
#[derive(Debug)]
struct Finished {
    /// The checkpoint id of the object.
    id: String,
    /// The outcome and the alerts published, or the error that stopped it.
    result: Result<(ObjectOutcome, Vec<Alert>, usize), String>,
}

/// Counts of the whole run, for the progress and the summary.
#[derive(Debug, Default)]
struct Totals {
    /// Objects ended (whatever the outcome).
    done: usize,
    /// Objects read to their end (or skipped as quarantine objects).
    ok: usize,
    /// Objects that no longer exist.
    missing: usize,
    /// Objects whose bytes are broken, or that broke a limit.
    refused: usize,
    /// Objects a dependency failure stopped (not checkpointed: retried on `--resume`).
    failed: usize,
    /// Readings stored (in a dry run: items built).
    stored: u64,
    /// Exact repeats within an object.
    duplicates: u64,
    /// Rejected lines, by reason.
    rejected: BTreeMap<&'static str, u64>,
    /// Alerts the rules raised.
    alerts_raised: u64,
    /// Alerts published now (the ledger skips those already published).
    alerts_published: usize,
    /// In a dry run, the first [`ALERTS_LISTED`] alerts that would be sent,
    /// for the listing (`alerts_raised` counts them all).
    would_send: Vec<Alert>,
}

impl Totals {
    fn rejected_count(&self) -> u64 {
        self.rejected.values().sum()
    }

    fn add(&mut self, report: &ObjectReport) {
        self.stored += report.stored;
        self.duplicates += report.duplicates;
        self.alerts_raised += report.alerts;
        for (reason, n) in &report.rejected_by_reason {
            *self.rejected.entry(reason).or_default() += n;
        }
    }
}

/// Runs `fleetwatch process`.
pub async fn run(settings: ProcessSettings) -> Result<(), ProcessCommandError> {
    let started = Instant::now();
    let cpu_at_start = cpu_seconds();
    let input = Input::parse(&settings.inputs)?;
    let offline = settings.dry_run && matches!(input, Input::Local(_));
    let clients = if offline {
        offline_clients()
    } else {
        let sdk = aws::load().await;
        aws::Clients::with_timeouts(
            &sdk,
            settings.pipeline.s3.path_style(),
            &settings.pipeline.timeouts.aws(),
        )
    };
    let mut targets = match &input {
        Input::S3 { bucket, prefix } => list_s3(&clients.s3, bucket, prefix, &settings).await?,
        Input::Local(patterns) => list_local(patterns, &settings)?,
    };
    let listed = targets.len();
    if !settings.dry_run && !targets.is_empty() {
        check_table(&clients.dynamodb, &settings.pipeline.table.name).await?;
    }

    let finished_before = match (&settings.checkpoint, settings.resume) {
        (Some(path), true) => read_checkpoint(path)?,
        _ => HashSet::new(),
    };
    targets.retain(|t| !finished_before.contains(&t.id));
    let skipped = listed - targets.len();
    let mut checkpoint = match &settings.checkpoint {
        Some(path) => Some(Checkpoint::open(path, settings.resume)?),
        None => None,
    };

    let mode = if settings.dry_run {
        Mode::DryRun {
            alert_cooldown: settings.pipeline.alerts.alert_cooldown,
            alerts_kept: ALERTS_LISTED,
        }
    } else {
        Mode::Live
    };
    let sends_alerts = !settings.no_alerts && settings.pipeline.alerts.alert_topic_arn.is_some();
    let pipeline = Arc::new(crate::app::pipeline(
        &settings.pipeline,
        &clients,
        !settings.no_alerts,
        matches!(input, Input::S3 { .. }),
    )?);
    // The operators' overrides, as the worker applies them; they live in
    // the alarm table, which an offline dry run does not reach.
    match (&pipeline.alerts, offline) {
        (Some(sink), false) => {
            let store = crate::alerts::rule_store::RuleStore::new(
                clients.dynamodb.clone(),
                sink.alarms.table().to_owned(),
            );
            pipeline.rules.refresh(&store).await?;
        }
        (Some(_), true) => tracing::info!(
            "a dry run of local files contacts nothing: only FLEETWATCH_ALERT_RULES apply, not the overrides of `fleetwatch rules set`"
        ),
        (None, _) => {}
    }
    tracing::info!(
        objects = targets.len(),
        skipped_as_finished = skipped,
        dry_run = settings.dry_run,
        alerts = sends_alerts,
        inference = %pipeline.predictor.describe(),
        "processing"
    );

    let total = targets.len();
    let queue = Arc::new(Mutex::new(VecDeque::from(targets)));
    let stop = CancellationToken::new();
    let health = Arc::new(DependencyHealth::default());
    let (tx, mut rx) = mpsc::channel::<Finished>(64);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..settings.pipeline.processing.concurrency.min(total.max(1)) {
        tasks.spawn(object_task(
            Arc::clone(&pipeline),
            Arc::clone(&queue),
            Arc::clone(&health),
            stop.clone(),
            tx.clone(),
            mode,
        ));
    }
    drop(tx);

    let mut totals = Totals::default();
    let mut progress = Progress::new(total, settings.progress_interval);
    let mut interrupts = 0;
    let mut signals = Signals::new();
    loop {
        tokio::select! {
            finished = rx.recv() => {
                let Some(finished) = finished else { break };
                let id = finished.id.clone();
                let finished_for_good = record(&mut totals, finished, settings.dry_run);
                if let Some(cp) = checkpoint.as_mut()
                    && finished_for_good
                {
                    cp.append(&id)?;
                }
                progress.update(&totals, started);
            }
            () = signals.next() => {
                interrupts += 1;
                stop.cancel();
                if interrupts == 1 {
                    progress.message("Ctrl-C: finishing the objects in flight, starting no new one (Ctrl-C again to stop now)");
                } else {
                    break;
                }
            }
        }
    }
    progress.finish();
    let in_flight_abandoned = interrupts > 1;
    tasks.abort_all();

    print_summary(
        &totals,
        total,
        skipped,
        settings.dry_run,
        sends_alerts,
        started.elapsed(),
        cpu_seconds() - cpu_at_start,
    );
    if stop.is_cancelled() && totals.done < total {
        let resume = match &settings.checkpoint {
            Some(path) => format!(
                "; continue with the same command and `--resume` (checkpoint {})",
                path.display()
            ),
            None => "; no --checkpoint was given, so a rerun starts over (idempotently)".into(),
        };
        return Err(ProcessCommandError::Interrupted {
            finished: totals.done,
            total,
            resume,
            abandoned: if in_flight_abandoned {
                "abandoned (they are not in the checkpoint and will be redone)"
            } else {
                "finished"
            },
        });
    }
    let not_ok = totals.done - totals.ok;
    if not_ok > 0 {
        return Err(ProcessCommandError::Incomplete {
            failed: not_ok,
            total,
        });
    }
    Ok(())
}

/// Ctrl-C (SIGINT) and SIGTERM, listened to for the whole run so that no
/// signal arriving between two waits is missed.
struct Signals {
    #[cfg(unix)]
    /// SIGINT and SIGTERM streams (`None` if they could not be set up).
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let streams = match (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) {
                (Ok(int), Ok(term)) => Some((int, term)),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::error!(error = %e, "cannot listen for Ctrl-C; the run cannot be interrupted cleanly");
                    None
                }
            };
            Signals { streams }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// Waits for the next Ctrl-C or SIGTERM.
    async fn next(&mut self) {
        #[cfg(unix)]
        match &mut self.streams {
            Some((int, term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            None => std::future::pending().await,
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Folds one finished object into the totals. Returns whether the object
/// is finished for good (checkpointed): everything but a failure, which a
/// rerun may get past.
fn record(totals: &mut Totals, finished: Finished, dry_run: bool) -> bool {
    totals.done += 1;
    match finished.result {
        Ok((outcome, alerts, published)) => {
            totals.alerts_published += published;
            if dry_run {
                let room = ALERTS_LISTED.saturating_sub(totals.would_send.len());
                totals.would_send.extend(alerts.into_iter().take(room));
            }
            match &outcome {
                ObjectOutcome::Processed(report) => {
                    totals.ok += 1;
                    totals.add(report);
                }
                ObjectOutcome::Skipped => totals.ok += 1,
                ObjectOutcome::Missing => {
                    totals.missing += 1;
                    tracing::warn!(object = %finished.id, "the object does not exist");
                }
                ObjectOutcome::Corrupt { report, reason } => {
                    totals.refused += 1;
                    totals.add(report);
                    tracing::warn!(object = %finished.id, reason, "the object is corrupt; the lines before the damage were processed");
                }
                ObjectOutcome::Rejected { report, reason, .. } => {
                    totals.refused += 1;
                    totals.add(report);
                    tracing::warn!(object = %finished.id, reason, "the object was refused; the lines before the limit were processed");
                }
            }
            true
        }
        Err(error) => {
            totals.failed += 1;
            tracing::error!(object = %finished.id, %error, "the object failed; it is not checkpointed and a rerun redoes it");
            false
        }
    }
}

/// Takes objects off the shared queue until it is empty or the run stops.
async fn object_task(
    pipeline: Arc<Pipeline>,
    queue: Arc<Mutex<VecDeque<Target>>>,
    health: Arc<DependencyHealth>,
    stop: CancellationToken,
    tx: mpsc::Sender<Finished>,
    mode: Mode,
) {
    let liveness = Liveness::disabled();
    loop {
        if stop.is_cancelled() {
            return;
        }
        let next = queue.lock().ok().and_then(|mut q| q.pop_front());
        let Some(target) = next else { return };
        // One owner per object: a rerun of the same object takes its own
        // ledger claims over at once.
        let owner = ClaimOwner::new(format!("process:{}", target.id), 1);
        let attempt = Attempt {
            health: &health,
            owner: &owner,
            liveness: &liveness,
            hold_until: tokio::time::Instant::now() + HOLD_LIMIT,
        };
        let source = match &target.path {
            Some(path) => Source::File(path),
            None => Source::S3,
        };
        let result = match pipeline
            .process_from(&target.object, source, mode, attempt)
            .await
        {
            Ok(processed) => {
                let published = if mode == Mode::Live {
                    retry::hold(attempt, "publishing alerts", || {
                        pipeline.deliver_alerts(&processed.alerts, &owner)
                    })
                    .await
                    .map_err(|e| e.to_string())
                } else {
                    Ok(0)
                };
                published.map(|n| (processed.outcome, processed.alerts, n))
            }
            Err(e) => Err(e.to_string()),
        };
        let finished = Finished {
            id: target.id,
            result,
        };
        if tx.send(finished).await.is_err() {
            return;
        }
    }
}

/// What the command was asked to read.
enum Input {
    S3 { bucket: String, prefix: String },
    Local(Vec<String>),
}

impl Input {
    fn parse(inputs: &[String]) -> Result<Input, ProcessCommandError> {
        let Some(first) = inputs.first() else {
            return Err(ProcessCommandError::NoInput);
        };
        if let Some(s3) = inputs.iter().find(|i| i.starts_with("s3://")) {
            if inputs.len() > 1 {
                return Err(ProcessCommandError::MixedInputs(s3.clone()));
            }
            let rest = &first["s3://".len()..];
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(ProcessCommandError::BadS3Url {
                    input: first.clone(),
                });
            }
            return Ok(Input::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.to_owned(),
            });
        }
        Ok(Input::Local(inputs.to_vec()))
    }
}

/// Whether `--include`/`--exclude` keep this key or path.
fn selected(name: &str, settings: &ProcessSettings) -> bool {
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: false,
        require_literal_leading_dot: false,
    };
    (settings.include.is_empty()
        || settings
            .include
            .iter()
            .any(|p| p.matches_with(name, options)))
        && !settings
            .exclude
            .iter()
            .any(|p| p.matches_with(name, options))
}

/// Every object under the prefix, filtered, in key order.
async fn list_s3(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    settings: &ProcessSettings,
) -> Result<Vec<Target>, ProcessCommandError> {
    let now = crate::telemetry::Timestamp::now().unix_millis();
    let since = settings.since.map(|w| w.unix_millis(now));
    let until = settings.until.map(|w| w.unix_millis(now));
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    let mut targets = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            let code = e.code().unwrap_or_default().to_owned();
            let message = match code.as_str() {
                "NoSuchBucket" => format!("the bucket {bucket} does not exist (check the name and AWS_REGION)"),
                "AccessDenied" => "access denied: the credentials need s3:ListBucket on the bucket and s3:GetObject on its objects".to_owned(),
                _ => DisplayErrorContext(&e).to_string(),
            };
            ProcessCommandError::List {
                bucket: bucket.to_owned(),
                prefix: prefix.to_owned(),
                message,
            }
        })?;
        for object in page.contents() {
            let Some(key) = object.key() else { continue };
            if key.ends_with('/') || !selected(key, settings) {
                continue;
            }
            let modified = object.last_modified().and_then(|t| t.to_millis().ok());
            let in_range = |m: i64| since.is_none_or(|s| m >= s) && until.is_none_or(|u| m < u);
            if (since.is_some() || until.is_some()) && !modified.is_some_and(in_range) {
                continue;
            }
            targets.push(Target {
                object: ObjectRef {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                    version_id: None,
                },
                path: None,
                id: format!("s3://{bucket}/{key}"),
            });
        }
    }
    Ok(targets)
}

/// Local files: each input is a path or a glob (expanded here, for shells
/// that pass it through quoted), filtered by `--include`/`--exclude`.
fn list_local(
    patterns: &[String],
    settings: &ProcessSettings,
) -> Result<Vec<Target>, ProcessCommandError> {
    let mut paths = Vec::new();
    for pattern in patterns {
        let before = paths.len();
        if Path::new(pattern).is_file() {
            paths.push(PathBuf::from(pattern));
        } else {
            let matches = glob::glob(pattern).map_err(|e| ProcessCommandError::BadGlob {
                pattern: pattern.clone(),
                message: e.to_string(),
            })?;
            paths.extend(matches.filter_map(Result::ok).filter(|p| p.is_file()));
        }
        if paths.len() == before {
            return Err(ProcessCommandError::NoMatch {
                input: pattern.clone(),
            });
        }
    }
    let mut seen = HashSet::new();
    Ok(paths
        .into_iter()
        .filter(|p| selected(&p.to_string_lossy(), settings))
        .filter(|p| seen.insert(p.clone()))
        .map(|path| {
            let key = path.to_string_lossy().into_owned();
            Target {
                object: ObjectRef {
                    bucket: LOCAL_BUCKET.to_owned(),
                    key: key.clone(),
                    version_id: None,
                },
                id: key,
                path: Some(path),
            }
        })
        .collect())
}

/// Fails at once, naming the table, when readings cannot be written to
/// it (absent, or no permission), instead of holding every object on it.
async fn check_table(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<(), ProcessCommandError> {
    let probe = crate::preflight::probe_table(dynamodb, table).await;
    let Err(e) = probe else { return Ok(()) };
    let code = e.code().unwrap_or_default();
    let message = if code == "ResourceNotFoundException" {
        "it does not exist; create it with `fleetwatch bootstrap`, or check the name and AWS_REGION"
            .to_owned()
    } else if code.contains("AccessDenied") {
        "access denied: the credentials need dynamodb:Query and dynamodb:BatchWriteItem on it (and dynamodb:UpdateItem for the alert ledger)".to_owned()
    } else {
        format!("the probe Query failed: {}", DisplayErrorContext(&e))
    };
    Err(ProcessCommandError::Table {
        table: table.to_owned(),
        message,
    })
}

/// Clients that are never called (a dry run of local files): built from
/// a fixed configuration, so no credentials, region or metadata service
/// is looked up.
fn offline_clients() -> aws::Clients {
    let sdk = aws_config::SdkConfig::builder()
        .region(aws_config::Region::new("us-east-1"))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    aws::Clients::new(&sdk, true)
}

/// The checkpoint file: one finished object per line, appended and
/// flushed as each finishes, so an interruption at any point loses at most
/// the objects in flight.
struct Checkpoint {
    /// Where the records go (for errors).
    path: PathBuf,
    /// The file, open for appending.
    file: std::fs::File,
}

impl Checkpoint {
    /// Opens the file; without `--resume` an existing one is started over.
    fn open(path: &Path, resume: bool) -> Result<Checkpoint, ProcessCommandError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(resume)
            .write(true)
            .truncate(!resume)
            .open(path)
            .map_err(|error| ProcessCommandError::Checkpoint {
                path: path.to_owned(),
                error,
            })?;
        Ok(Checkpoint {
            path: path.to_owned(),
            file,
        })
    }

    fn append(&mut self, id: &str) -> Result<(), ProcessCommandError> {
        writeln!(self.file, "{id}")
            .and_then(|()| self.file.sync_data())
            .map_err(|error| ProcessCommandError::Checkpoint {
                path: self.path.clone(),
                error,
            })
    }
}

/// The objects a checkpoint file lists as finished (none when it does not exist yet).
fn read_checkpoint(path: &Path) -> Result<HashSet<String>, ProcessCommandError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashSet::new()),
        Err(error) => Err(ProcessCommandError::Checkpoint {
            path: path.to_owned(),
            error,
        }),
    }
}

/// Progress: a bar on a terminal, plain log lines every interval otherwise.
struct Progress {
    /// The bar, when stderr is a terminal.
    bar: Option<indicatif::ProgressBar>,
    /// Objects to process in this run.
    total: usize,
    /// Between two log lines (no terminal).
    interval: Duration,
    /// When the last log line was written.
    last_line: Instant,
}

impl Progress {
    fn new(total: usize, interval: Duration) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            let style = indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} objects · {msg} · ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        Progress {
            bar,
            total,
            interval,
            last_line: Instant::now(),
        }
    }

    fn update(&mut self, totals: &Totals, started: Instant) {
        let readings_per_second = totals.stored as f64 / started.elapsed().as_secs_f64().max(1e-9);
        let message = format!(
            "{} readings ({readings_per_second:.0}/s), {} rejected",
            totals.stored,
            totals.rejected_count()
        );
        if let Some(bar) = &self.bar {
            bar.set_position(totals.done as u64);
            bar.set_message(message);
            return;
        }
        if self.last_line.elapsed() < self.interval && totals.done < self.total {
            return;
        }
        self.last_line = Instant::now();
        let elapsed = started.elapsed().as_secs_f64();
        let rate = totals.done as f64 / elapsed.max(1e-9);
        let eta = (self.total - totals.done) as f64 / rate.max(1e-9);
        tracing::info!(
            objects = totals.done,
            total = self.total,
            readings = totals.stored,
            readings_per_second = format!("{readings_per_second:.0}"),
            rejected = totals.rejected_count(),
            objects_per_second = format!("{rate:.1}"),
            eta_seconds = format!("{eta:.0}"),
            "progress"
        );
    }

    fn message(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => tracing::warn!("{text}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The final summary, on stdout.
fn print_summary(
    totals: &Totals,
    total: usize,
    skipped: usize,
    dry_run: bool,
    sends_alerts: bool,
    elapsed: Duration,
    cpu: f64,
) {
    let mut out = String::new();
    let verdict = if totals.done == total && totals.done == totals.ok {
        "all processed"
    } else {
        "NOT all processed"
    };
    out.push_str(&format!(
        "objects: {} of {total} done, {verdict} ({} ok, {} missing, {} corrupt or refused, {} failed)",
        totals.done, totals.ok, totals.missing, totals.refused, totals.failed
    ));
    if skipped > 0 {
        out.push_str(&format!("; {skipped} skipped as finished (checkpoint)"));
    }
    out.push('\n');
    out.push_str(&format!(
        "readings: {} {}, {} duplicates, {} rejected\n",
        totals.stored,
        if dry_run {
            "built (dry run: not written)"
        } else {
            "stored"
        },
        totals.duplicates,
        totals.rejected_count()
    ));
    for (reason, n) in &totals.rejected {
        out.push_str(&format!("  rejected {reason}: {n}\n"));
    }
    if dry_run {
        let n = totals.alerts_raised;
        if sends_alerts {
            out.push_str(&format!("alerts: {n} would be sent\n"));
        } else {
            out.push_str(&format!(
                "alerts: {n} raised, none would be sent (--no-alerts, or FLEETWATCH_ALERT_TOPIC_ARN is unset)\n"
            ));
        }
        for a in totals.would_send.iter().take(ALERTS_LISTED) {
            out.push_str(&format!(
                "  alert {} {}: {} breaches {}..{}, worst {} at {} ({})\n",
                a.id.device_id,
                a.id.rule,
                a.breaches.count,
                a.breaches.first,
                a.breaches.last,
                a.breaches.worst_value,
                a.breaches.worst_at,
                if a.source.bucket == LOCAL_BUCKET {
                    a.source.key.clone()
                } else {
                    format!("s3://{}/{}", a.source.bucket, a.source.key)
                }
            ));
        }
    } else {
        out.push_str(&format!(
            "alerts: {} raised, {} published now{}\n",
            totals.alerts_raised,
            totals.alerts_published,
            if sends_alerts {
                ""
            } else {
                " (not sent: --no-alerts or no FLEETWATCH_ALERT_TOPIC_ARN)"
            }
        ));
    }
    let listed = totals.would_send.len() as u64;
    if dry_run && totals.alerts_raised > listed {
        out.push_str(&format!("  … and {} more\n", totals.alerts_raised - listed));
    }
    let secs = elapsed.as_secs_f64();
    out.push_str(&format!(
        "time: {secs:.2} s, {:.0} readings/s, {cpu:.2} CPU seconds, peak RSS {:.1} MB\n",
        totals.stored as f64 / secs.max(1e-9),
        peak_rss_bytes() as f64 / 1e6
    ));
    print!("{out}");
    let _ = std::io::stdout().flush();
}

/// The process's resource usage so far (`None` if it cannot be read).
fn usage() -> Option<libc::rusage> {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a live rusage; RUSAGE_SELF is always valid.
    (unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0).then_some(usage)
}

/// CPU time (user + system) the process has used so far.
fn cpu_seconds() -> f64 {
    let Some(usage) = usage() else { return 0.0 };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// The most resident memory the process has held so far (0 if unknown).
fn peak_rss_bytes() -> u64 {
    let max_rss = usage().map_or(0, |u| u64::try_from(u.ru_maxrss).unwrap_or(0));
    // macOS reports bytes, Linux and the BSDs kilobytes.
    if cfg!(target_os = "macos") {
        max_rss
    } else {
        max_rss * 1024
    }
}
