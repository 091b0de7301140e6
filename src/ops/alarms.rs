//! `fleetwatch alarms`: lists the alarms, shows one's history, and lets an
//! operator acknowledge, snooze or resolve one. Every action is a
//! conditional write on the alarm as read (see [`crate::alarms::store`]),
//! so an operator and the workers never overwrite each other.

use std::io::Write;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::alarms::store::now_millis;
use crate::alarms::{Action, Alarm, AlarmError, AlarmStore, HistoryEntry};
use crate::config::{AlarmTableSetting, OutputFormat, parse_duration};
use crate::ops::output;
use crate::telemetry::Timestamp;

/// Settings of `fleetwatch alarms`.
#[derive(Debug, Clone, Args)]
pub struct AlarmsSettings {
    /// What to do.
    #[command(subcommand)]
    pub action: AlarmCommand,

    /// The alarm table (the worker's `FLEETWATCH_ALARM_TABLE`).
    #[command(flatten)]
    pub table: AlarmTableSetting,
}

#[derive(Debug, Clone, Subcommand)]
pub enum AlarmCommand {
    /// List the alarms (every vehicle's, or one's).
    List {
        /// Open alarms only (ACTIVE, ACKNOWLEDGED, SNOOZED).
        #[arg(long)]
        open: bool,
        /// One vehicle's alarms only.
        #[arg(long)]
        device: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// Every transition of one alarm, oldest first.
    History {
        #[command(flatten)]
        target: Target,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// Acknowledge an open alarm: its breaches are recorded, no longer notified.
    Ack {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        by: Operator,
    },
    /// Silence an open alarm for a while; a breach after that reactivates it.
    Snooze {
        #[command(flatten)]
        target: Target,
        /// How long (e.g. `30m`, `2h`).
        #[arg(long = "for", value_parser = parse_snooze)]
        duration: Duration,
        #[command(flatten)]
        by: Operator,
    },
    /// Close an open alarm now (one "resolved" notification follows).
    Resolve {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        by: Operator,
    },
}

/// Which alarm.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The vehicle (its `device_id`).
    pub device: String,
    /// The rule as the alarm names it (`engine_temp_c > 100`, quoted), or
    /// `maintenance_predicted`.
    pub rule: String,
}

/// Who acts, and why.
#[derive(Debug, Clone, Args)]
pub struct Operator {
    /// A note stored with the transition.
    #[arg(long)]
    pub note: Option<String>,
    /// Who acts (stored with the transition); default: `$USER`.
    #[arg(long)]
    pub by: Option<String>,
}

impl Operator {
    /// Who acts: `--by`, else `$USER`, else `operator`.
    pub fn actor(&self) -> String {
        self.by
            .clone()
            .filter(|b| !b.trim().is_empty())
            .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(|| "operator".to_owned())
    }
}

fn parse_snooze(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s).map_err(|e| format!("--for: {e}"))?;
    if (Duration::from_secs(1)..=Duration::from_secs(90 * 24 * 3600)).contains(&d) {
        Ok(d)
    } else {
        Err("--for: expected a duration from 1s to 90 days (2160h)".into())
    }
}

/// `fleetwatch alarms`: the command on the environment's AWS account,
/// printing to stdout.
pub async fn command(settings: &AlarmsSettings) -> Result<(), AlarmsError> {
    let clients = crate::aws::Clients::new(&crate::aws::load().await, false);
    let mut stdout = std::io::stdout().lock();
    run(&clients.dynamodb, settings, &mut stdout).await
}

/// Runs the command, printing to `out`.
pub async fn run(
    dynamodb: &aws_sdk_dynamodb::Client,
    settings: &AlarmsSettings,
    out: &mut impl Write,
) -> Result<(), AlarmsError> {
    let store = AlarmStore::new(dynamodb.clone(), settings.table.alarm_table.clone());
    let text = match &settings.action {
        AlarmCommand::List {
            open,
            device,
            format,
        } => render_alarms(&store.list(device.as_deref(), *open).await?, *format),
        AlarmCommand::History { target, format } => {
            render_history(&store.history(&target.device, &target.rule).await?, *format)
        }
        AlarmCommand::Ack { target, by } => act(&store, target, &Action::Acknowledge, by).await?,
        AlarmCommand::Snooze {
            target,
            duration,
            by,
        } => {
            let until_ms =
                now_millis().saturating_add(duration.as_millis().min(i64::MAX as u128) as i64);
            act(&store, target, &Action::Snooze { until_ms }, by).await?
        }
        AlarmCommand::Resolve { target, by } => act(&store, target, &Action::Resolve, by).await?,
    };
    out.write_all(text.as_bytes())?;
    Ok(())
}

async fn act(
    store: &AlarmStore,
    target: &Target,
    action: &Action,
    by: &Operator,
) -> Result<String, AlarmError> {
    let alarm = store
        .act(
            &target.device,
            &target.rule,
            action,
            &by.actor(),
            by.note.as_deref(),
        )
        .await?;
    Ok(render_alarms(&[alarm], OutputFormat::Table))
}

#[derive(Debug, thiserror::Error)]
pub enum AlarmsError {
    #[error(transparent)]
    Alarm(#[from] AlarmError),
    #[error("writing the output failed: {0}")]
    Output(#[from] std::io::Error),
}

fn time(ms: i64) -> String {
    Timestamp::from_unix_millis(ms).to_string()
}

fn render_alarms(alarms: &[Alarm], format: OutputFormat) -> String {
    let header: Vec<String> = [
        "device_id",
        "rule",
        "state",
        "since",
        "by",
        "last_breach",
        "breaches",
        "snoozed_until",
        "note",
    ]
    .map(str::to_owned)
    .to_vec();
    let rows: Vec<Vec<String>> = alarms
        .iter()
        .map(|a| {
            vec![
                a.device_id.clone(),
                a.rule.clone(),
                a.state.to_string(),
                time(a.changed_at_ms),
                a.actor.clone(),
                a.last_breach_event.clone(),
                a.breaches.to_string(),
                a.snoozed_until_ms.map(time).unwrap_or_default(),
                a.note.clone().unwrap_or_default(),
            ]
        })
        .collect();
    output::render(&header, &rows, format, "no alarms\n")
}

fn render_history(entries: &[HistoryEntry], format: OutputFormat) -> String {
    let header: Vec<String> = ["at", "version", "transition", "from", "to", "by", "note"]
        .map(str::to_owned)
        .to_vec();
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|h| {
            vec![
                time(h.at_ms),
                h.version.to_string(),
                h.transition.as_str().to_owned(),
                h.from.to_string(),
                h.to.to_string(),
                h.actor.clone(),
                h.note.clone().unwrap_or_default(),
            ]
        })
        .collect();
    output::render(&header, &rows, format, "no such alarm\n")
}
