//! `fleetwatch rules`: give one vehicle, a family of vehicles (`TRK-*`) or
//! a group (`fleet=north`) its own limits without a redeploy, and see
//! which rules apply to a vehicle. Overrides are stored in the alarm table
//! ([`crate::alerts::rule_store`]); every worker reads them again every
//! `FLEETWATCH_RULES_REFRESH`.

use std::io::Write;

use clap::{Args, Subcommand};

use crate::alarms::AlarmError;
use crate::alerts::rule_set::RuleSet;
use crate::alerts::rule_store::{RuleStore, StoredScope};
use crate::alerts::rules::AlertRule;
use crate::alerts::scope::Scope;
use crate::config::{AlarmTableSetting, AlertRulesSetting, OutputFormat};
use crate::ops::alarms::Operator;
use crate::ops::output;
use crate::telemetry::{Reading, Timestamp, Value};

/// Settings of `fleetwatch rules`.
#[derive(Debug, Clone, Args)]
pub struct RulesSettings {
    /// What to do.
    #[command(subcommand)]
    pub action: RulesCommand,

    /// The alarm table, where overrides are stored (the worker's `FLEETWATCH_ALARM_TABLE`).
    #[command(flatten)]
    pub table: AlarmTableSetting,

    /// The configured rules (the worker's `FLEETWATCH_ALERT_RULES`), which
    /// overrides come on top of: `list` and `show` print them.
    #[command(flatten)]
    pub configured: AlertRulesSetting,
}

#[derive(Debug, Clone, Subcommand)]
pub enum RulesCommand {
    /// Give a scope its own rules, replacing what it had: each replaces the
    /// wider scopes' rules of its field and kind for the scope's vehicles (`fleetwatch rules set VHC001 'engine_temp_c > 95'`).
    Set {
        /// A device id (`VHC001`), a glob of device ids (`TRK-*`, `?` for
        /// one character) or a group attribute of the readings (`fleet=north`).
        #[arg(value_parser = parse_scope)]
        scope: Scope,
        /// The rules, each as in `FLEETWATCH_ALERT_RULES` without a scope
        /// (quote each: `'engine_temp_c > 95'`).
        #[arg(required = true, value_parser = parse_rule)]
        rules: Vec<AlertRule>,
        #[command(flatten)]
        by: Operator,
    },
    /// Remove a scope's overrides: its vehicles get the wider scopes' rules again.
    Clear {
        /// The scope, as it was set.
        #[arg(value_parser = parse_scope)]
        scope: Scope,
    },
    /// The configured rules and every stored override.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// The rules that apply to one vehicle now, and the scope each comes from.
    Show {
        /// The vehicle (its `device_id`).
        device: String,
        /// A text field its readings carry, for group scopes (`fleet=north`); repeatable.
        #[arg(long = "attr", value_parser = parse_attribute)]
        attributes: Vec<(String, String)>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
}

fn parse_scope(s: &str) -> Result<Scope, String> {
    s.parse().map_err(|e| format!("SCOPE: {e}"))
}

fn parse_rule(s: &str) -> Result<AlertRule, String> {
    s.parse().map_err(|e| format!("RULE: {e}"))
}

fn parse_attribute(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() && !v.trim().is_empty() => {
            Ok((k.trim().to_owned(), v.trim().to_owned()))
        }
        _ => Err("--attr: expected FIELD=VALUE, like fleet=north".into()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error(transparent)]
    Alarm(#[from] AlarmError),
    #[error("writing the output failed: {0}")]
    Output(#[from] std::io::Error),
}

/// `fleetwatch rules`: the command on the environment's AWS account,
/// printing to stdout.
pub async fn command(settings: &RulesSettings) -> Result<(), RulesError> {
    let clients = crate::aws::Clients::new(&crate::aws::load().await, false);
    let mut stdout = std::io::stdout().lock();
    run(&clients.dynamodb, settings, &mut stdout).await
}

/// Runs the command, printing to `out`.
pub async fn run(
    dynamodb: &aws_sdk_dynamodb::Client,
    settings: &RulesSettings,
    out: &mut impl Write,
) -> Result<(), RulesError> {
    let store = RuleStore::new(dynamodb.clone(), settings.table.alarm_table.clone());
    let configured = &settings.configured.alert_rules.0;
    let text = match &settings.action {
        RulesCommand::Set { scope, rules, by } => {
            let stored = store
                .set(scope, rules, &by.actor(), by.note.as_deref())
                .await?;
            format!(
                "set {}: {} (by {})\nWorkers apply it to the objects they start after their next refresh (FLEETWATCH_RULES_REFRESH, 30s by default).\n",
                stored.scope,
                join(&stored.rules),
                stored.updated_by
            )
        }
        RulesCommand::Clear { scope } => match store.clear(scope).await? {
            Some(old) => format!(
                "cleared {}: {} (set by {} at {})\n",
                old.scope,
                join(&old.rules),
                old.updated_by,
                Timestamp::from_unix_millis(old.updated_at_ms)
            ),
            None => format!("{scope} had no overrides; nothing changed\n"),
        },
        RulesCommand::List { format } => {
            let loaded = store.load().await?;
            let mut rows: Vec<Vec<String>> = configured
                .iter()
                .map(|r| {
                    vec![
                        r.scope.to_string(),
                        r.rule.to_string(),
                        "FLEETWATCH_ALERT_RULES".to_owned(),
                        String::new(),
                        String::new(),
                    ]
                })
                .collect();
            rows.extend(loaded.scopes.iter().map(stored_row));
            let mut text = output::render(&list_header(), &rows, *format, "no rules\n");
            for why in &loaded.unreadable {
                text.push_str(&format!(
                    "unreadable override (ignored by the workers): {why}\n"
                ));
            }
            text
        }
        RulesCommand::Show {
            device,
            attributes,
            format,
        } => {
            let set = RuleSet::new(configured, &store.load().await?.overrides());
            let reading = Reading {
                device_id: device.clone(),
                timestamp: Timestamp::now(),
                fields: attributes
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::Text(v.clone())))
                    .collect(),
            };
            let header = ["rule", "scope"].map(str::to_owned).to_vec();
            let rows: Vec<Vec<String>> = set
                .applicable(&reading)
                .into_iter()
                .map(|i| {
                    vec![
                        set.entries()[i].text.clone(),
                        set.scope_of(&reading, i)
                            .map_or_else(|| "*".to_owned(), ToString::to_string),
                    ]
                })
                .collect();
            output::render(&header, &rows, *format, "no rules apply\n")
        }
    };
    out.write_all(text.as_bytes())?;
    Ok(())
}

fn join(rules: &[AlertRule]) -> String {
    rules
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn list_header() -> Vec<String> {
    ["scope", "rule", "from", "set", "note"]
        .map(str::to_owned)
        .to_vec()
}

fn stored_row(stored: &StoredScope) -> Vec<String> {
    vec![
        stored.scope.to_string(),
        join(&stored.rules),
        format!("fleetwatch rules set (by {})", stored.updated_by),
        Timestamp::from_unix_millis(stored.updated_at_ms).to_string(),
        stored.note.clone().unwrap_or_default(),
    ]
}
