//! The alarms in DynamoDB: one item per (vehicle, rule) holding its state,
//! one item per transition holding the history, all in the alarm table
//! (`FLEETWATCH_ALARM_TABLE`), beside the alert ledger.
//!
//! # Items
//! The table's key is (`device_id`, `record`):
//! - `record = "alarm#<rule>"`: the alarm (see [`Alarm`] for the attributes);
//! - `record = "history#<rule>#<version>"`: the transition that made
//!   `version` (`from`, `to`, `transition`, `actor`, `note`, `at`);
//! - `device_id = "alert#<device>"`: the alert ledger ([`crate::alerts::ledger`]).
//!
//! # Agreement
//! Every write is conditional on what was read, so workers and operators
//! never overwrite each other's decisions: a state change is one
//! transaction (the alarm put on `version` and `breaches` as read, plus the
//! history item put only if absent); a breach that changes no state is an
//! update on `version` as read. A write that loses the race reads again
//! and decides again: an operator's acknowledgement that lands between a
//! worker's read and write makes the worker see ACKNOWLEDGED and stay
//! quiet. Breach counts are at least once (a replayed object counts again).

use std::collections::HashMap;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use super::state::{self, Action, State, Transition};
use crate::failure::{Classify, FailureClass, classify_sdk};

/// The partition key attribute (the device, or `alert#<device>`).
pub const PARTITION: &str = "device_id";
/// The sort key attribute: which record of the device this is.
pub const RECORD: &str = "record";
/// The actor of the transitions the workers make.
pub const WORKER_ACTOR: &str = "fleetwatch";
/// Conditional writes lost to another writer before giving up.
const MAX_RACES: u32 = crate::retry::ALARM_RACES_CALLS;

type Item = HashMap<String, AttributeValue>;

#[derive(Debug, thiserror::Error)]
pub enum AlarmError {
    /// A DynamoDB call failed.
    #[error("alarm table ({operation} on table {table}, FLEETWATCH_ALARM_TABLE) failed: {message}")]
    Call {
        /// The DynamoDB call.
        operation: &'static str,
        /// The table.
        table: String,
        /// The SDK error with its context.
        message: String,
        /// Whether retrying may help.
        class: FailureClass,
    },
    /// Other writers kept changing the alarm.
    #[error("alarm {device_id} `{rule}` kept changing under {MAX_RACES} attempts to update it")]
    Contended {
        /// The vehicle.
        device_id: String,
        /// The rule.
        rule: String,
    },
    /// An operator's action that does not apply.
    #[error("alarm {device_id} `{rule}`: {why}")]
    Refused {
        /// The vehicle.
        device_id: String,
        /// The rule.
        rule: String,
        /// Why (e.g. not open).
        why: String,
    },
}

impl Classify for AlarmError {
    fn class(&self) -> FailureClass {
        match self {
            AlarmError::Call { class, .. } => *class,
            AlarmError::Contended { .. } => FailureClass::Contention,
            AlarmError::Refused { .. } => FailureClass::Permanent,
        }
    }
}

/// One alarm: a (vehicle, rule) and where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    /// The vehicle.
    pub device_id: String,
    /// The rule as written, or `maintenance_predicted`.
    pub rule: String,
    /// `safety` or `maintenance`: the notifications' severity.
    pub kind: String,
    /// Where it stands.
    pub state: State,
    /// Bumped by every transition: the condition of every write.
    pub version: u64,
    /// How many times it has opened: names the episode a "resolved"
    /// notification closes.
    pub episode: u64,
    /// How the current episode became ACTIVE (opened, or reactivated
    /// after a snooze), so a replayed window is notified the same way.
    pub activation: Transition,
    /// The cooldown window (RFC 3339) of the breach that made it ACTIVE.
    pub activation_window: String,
    /// When the current episode opened (epoch ms).
    pub opened_at_ms: i64,
    /// When the last transition happened (epoch ms).
    pub changed_at_ms: i64,
    /// When a worker last recorded a breach (epoch ms, the workers' clock):
    /// what auto-close measures.
    pub last_breach_ms: i64,
    /// The event time of the latest breach recorded (RFC 3339).
    pub last_breach_event: String,
    /// Breaches recorded in this episode (at least once).
    pub breaches: u64,
    /// The end of the snooze (epoch ms), while SNOOZED.
    pub snoozed_until_ms: Option<i64>,
    /// Who made the last transition.
    pub actor: String,
    /// The operator's note with it.
    pub note: Option<String>,
    /// The episode whose "resolved" notification is still to be sent.
    pub resolve_notice: Option<u64>,
}

/// One stored transition.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// The alarm version it made.
    pub version: u64,
    /// The state before.
    pub from: State,
    /// The state after.
    pub to: State,
    /// The transition.
    pub transition: Transition,
    /// Who made it (an operator, or `fleetwatch`).
    pub actor: String,
    /// The operator's note.
    pub note: Option<String>,
    /// When (epoch ms).
    pub at_ms: i64,
}

/// A breach to record: what the alerts of one (vehicle, rule) show.
#[derive(Debug, Clone)]
pub struct BreachRecord<'a> {
    /// The vehicle.
    pub device_id: &'a str,
    /// The rule.
    pub rule: &'a str,
    /// `safety` or `maintenance`.
    pub kind: &'static str,
    /// Breaching readings.
    pub count: u64,
    /// The earliest cooldown window among them (RFC 3339): where an alarm
    /// they open is said to have opened.
    pub first_window: String,
    /// The latest breach's event time (RFC 3339).
    pub last_event: String,
}

/// The alarm table.
#[derive(Debug, Clone)]
pub struct AlarmStore {
    /// The DynamoDB client.
    client: aws_sdk_dynamodb::Client,
    /// `FLEETWATCH_ALARM_TABLE`.
    table: String,
}

impl AlarmStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        AlarmStore { client, table }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The alarm of (device, rule), read consistently.
    pub async fn get(&self, device_id: &str, rule: &str) -> Result<Option<Alarm>, AlarmError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(alarm_key(device_id, rule)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("GetItem", &e))?;
        Ok(out.item.as_ref().and_then(parse_alarm))
    }

    /// Records breaches: opens the alarm, reactivates it after a snooze, or
    /// counts them. Returns the alarm as written.
    pub async fn record_breach(&self, breach: &BreachRecord<'_>) -> Result<Alarm, AlarmError> {
        self.with_races(breach.device_id, breach.rule, |store| async move {
            let now = now_millis();
            let old = store.get(breach.device_id, breach.rule).await?;
            let change = state::on_breach(
                old.as_ref().map(|a| a.state),
                old.as_ref().and_then(|a| a.snoozed_until_ms),
                now,
            );
            let (to, transition) = match (change, old.clone()) {
                (Some(change), _) => change,
                // No state change: count the breach, on the version read.
                (None, Some(old)) => return store.count_breach(old, breach, now).await,
                // `on_breach` opens an absent alarm: not reached.
                (None, None) => return Ok(None),
            };
            let mut new = match &old {
                Some(old) => old.clone(),
                None => Alarm {
                    device_id: breach.device_id.to_owned(),
                    rule: breach.rule.to_owned(),
                    kind: breach.kind.to_owned(),
                    state: State::Normal,
                    version: 0,
                    episode: 0,
                    activation: Transition::Opened,
                    activation_window: String::new(),
                    opened_at_ms: now,
                    changed_at_ms: now,
                    last_breach_ms: now,
                    last_breach_event: String::new(),
                    breaches: 0,
                    snoozed_until_ms: None,
                    actor: WORKER_ACTOR.to_owned(),
                    note: None,
                    resolve_notice: None,
                },
            };
            if transition == Transition::Opened {
                new.episode += 1;
                new.opened_at_ms = now;
                new.breaches = 0;
            }
            new.state = to;
            new.activation = transition;
            new.activation_window = breach.first_window.clone();
            new.breaches += breach.count;
            new.last_breach_ms = now;
            new.last_breach_event = breach.last_event.clone();
            new.snoozed_until_ms = None;
            new.note = None;
            store
                .transition(old.as_ref(), new, transition, WORKER_ACTOR, None, now, None)
                .await
        })
        .await
    }

    /// An operator's action, by `actor` with an optional note.
    pub async fn act(
        &self,
        device_id: &str,
        rule: &str,
        action: &Action,
        actor: &str,
        note: Option<&str>,
    ) -> Result<Alarm, AlarmError> {
        self.with_races(device_id, rule, |store| async move {
            let now = now_millis();
            let Some(old) = store.get(device_id, rule).await? else {
                return Err(store.refused(device_id, rule, "there is no such alarm"));
            };
            let (to, transition) = action
                .apply(old.state)
                .map_err(|why| store.refused(device_id, rule, why))?;
            let mut new = old.clone();
            new.state = to;
            new.note = note.map(str::to_owned);
            new.snoozed_until_ms = match action {
                Action::Snooze { until_ms } => Some(*until_ms),
                _ => None,
            };
            if to == State::Normal {
                new.resolve_notice = Some(old.episode);
            }
            store
                .transition(Some(&old), new, transition, actor, note, now, None)
                .await
        })
        .await
    }

    /// Closes `alarm` (read by a sweep) when no breach was recorded since
    /// `quiet_since_ms`: NORMAL, with its "resolved" notification due.
    /// `None` when it changed meanwhile (a breach, another sweeper, an
    /// operator): nothing to do.
    pub async fn auto_close(
        &self,
        alarm: &Alarm,
        quiet_since_ms: i64,
    ) -> Result<Option<Alarm>, AlarmError> {
        let mut new = alarm.clone();
        new.state = State::Normal;
        new.note = None;
        new.snoozed_until_ms = None;
        new.resolve_notice = Some(alarm.episode);
        self.transition(
            Some(alarm),
            new,
            Transition::AutoResolved,
            WORKER_ACTOR,
            None,
            now_millis(),
            Some(quiet_since_ms),
        )
        .await
    }

    /// The alarms a sweep acts on: open ones without a breach since
    /// `quiet_since_ms`, and any whose "resolved" notification is due.
    pub async fn due(&self, quiet_since_ms: i64) -> Result<Vec<Alarm>, AlarmError> {
        self.scan(
            "begins_with(#record, :alarm) AND ((#state <> :normal AND last_breach_at < :quiet) \
             OR attribute_exists(resolve_notice))",
            &[
                (":normal", AttributeValue::S(State::Normal.as_str().into())),
                (":quiet", AttributeValue::N(quiet_since_ms.to_string())),
            ],
        )
        .await
    }

    /// Every alarm (or the open ones), of one vehicle or all.
    pub async fn list(
        &self,
        device_id: Option<&str>,
        open: bool,
    ) -> Result<Vec<Alarm>, AlarmError> {
        let mut alarms = match device_id {
            Some(device) => {
                let items = self.query(device, "alarm#").await?;
                items.iter().filter_map(parse_alarm).collect()
            }
            None => self.scan("begins_with(#record, :alarm)", &[]).await?,
        };
        if open {
            alarms.retain(|a| a.state.is_open());
        }
        alarms.sort_by(|a, b| (&a.device_id, &a.rule).cmp(&(&b.device_id, &b.rule)));
        Ok(alarms)
    }

    /// The transitions of one alarm, oldest first.
    pub async fn history(
        &self,
        device_id: &str,
        rule: &str,
    ) -> Result<Vec<HistoryEntry>, AlarmError> {
        let items = self.query(device_id, &format!("history#{rule}#")).await?;
        Ok(items.iter().filter_map(parse_history).collect())
    }

    /// Marks `episode`'s "resolved" notification as sent.
    pub async fn clear_resolve_notice(
        &self,
        alarm: &Alarm,
        episode: u64,
    ) -> Result<(), AlarmError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(alarm_key(&alarm.device_id, &alarm.rule)))
            .update_expression("REMOVE resolve_notice")
            .condition_expression("resolve_notice = :episode")
            .expression_attribute_values(":episode", AttributeValue::N(episode.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(self.error("UpdateItem", &e)),
        }
    }

    /// Runs `attempt` until it writes, re-reading after each lost race.
    async fn with_races<'s, F, Fut>(
        &'s self,
        device_id: &str,
        rule: &str,
        attempt: F,
    ) -> Result<Alarm, AlarmError>
    where
        F: Fn(&'s AlarmStore) -> Fut,
        Fut: std::future::Future<Output = Result<Option<Alarm>, AlarmError>>,
    {
        let mut backoff = crate::retry::ALARM_RACES.backoff();
        for _ in 0..MAX_RACES {
            if let Some(alarm) = attempt(self).await? {
                return Ok(alarm);
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
        Err(AlarmError::Contended {
            device_id: device_id.to_owned(),
            rule: rule.to_owned(),
        })
    }

    /// Counts breaches on an alarm whose state they do not change.
    async fn count_breach(
        &self,
        old: Alarm,
        breach: &BreachRecord<'_>,
        now: i64,
    ) -> Result<Option<Alarm>, AlarmError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(alarm_key(&old.device_id, &old.rule)))
            .update_expression(
                "SET last_breach_at = :now, last_breach_event = :event ADD breaches :count",
            )
            .condition_expression("#version = :version")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(":event", AttributeValue::S(breach.last_event.clone()))
            .expression_attribute_values(":count", AttributeValue::N(breach.count.to_string()))
            .expression_attribute_values(":version", AttributeValue::N(old.version.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => {
                let mut new = old;
                new.last_breach_ms = now;
                new.last_breach_event = breach.last_event.clone();
                new.breaches += breach.count;
                Ok(Some(new))
            }
            Err(e) if is_condition_failure(&e) => Ok(None),
            Err(e) => Err(self.error("UpdateItem", &e)),
        }
    }

    /// Writes `new` (one version past `old`) and its history entry in one
    /// transaction, if the alarm is still as read (and, with
    /// `quiet_since_ms`, still without a breach since then). `None` when
    /// it was not.
    #[allow(clippy::too_many_arguments)]
    async fn transition(
        &self,
        old: Option<&Alarm>,
        mut new: Alarm,
        transition: Transition,
        actor: &str,
        note: Option<&str>,
        now: i64,
        quiet_since_ms: Option<i64>,
    ) -> Result<Option<Alarm>, AlarmError> {
        new.version = old.map_or(0, |o| o.version) + 1;
        new.changed_at_ms = now;
        new.actor = actor.to_owned();
        let mut alarm_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(alarm_item(&new)));
        alarm_put = match old {
            None => alarm_put
                .condition_expression("attribute_not_exists(#record)")
                .expression_attribute_names("#record", RECORD),
            Some(old) => {
                let mut condition = "#version = :version AND breaches = :breaches".to_owned();
                alarm_put = alarm_put
                    .expression_attribute_names("#version", "version")
                    .expression_attribute_values(
                        ":version",
                        AttributeValue::N(old.version.to_string()),
                    )
                    .expression_attribute_values(
                        ":breaches",
                        AttributeValue::N(old.breaches.to_string()),
                    );
                if let Some(quiet) = quiet_since_ms {
                    condition.push_str(" AND last_breach_at < :quiet");
                    alarm_put = alarm_put.expression_attribute_values(
                        ":quiet",
                        AttributeValue::N(quiet.to_string()),
                    );
                }
                alarm_put.condition_expression(condition)
            }
        };
        let mut history = HashMap::from([
            (
                PARTITION.to_owned(),
                AttributeValue::S(new.device_id.clone()),
            ),
            (
                RECORD.to_owned(),
                AttributeValue::S(format!("history#{}#{:010}", new.rule, new.version)),
            ),
            (
                "version".to_owned(),
                AttributeValue::N(new.version.to_string()),
            ),
            (
                "from".to_owned(),
                AttributeValue::S(old.map_or(State::Normal, |o| o.state).as_str().into()),
            ),
            (
                "to".to_owned(),
                AttributeValue::S(new.state.as_str().into()),
            ),
            (
                "transition".to_owned(),
                AttributeValue::S(transition.as_str().into()),
            ),
            ("actor".to_owned(), AttributeValue::S(actor.to_owned())),
            ("at".to_owned(), AttributeValue::N(now.to_string())),
        ]);
        if let Some(note) = note {
            history.insert("note".to_owned(), AttributeValue::S(note.to_owned()));
        }
        let build = |put: Result<Put, _>| -> Result<TransactWriteItem, AlarmError> {
            let put = put.map_err(|e: aws_sdk_dynamodb::error::BuildError| AlarmError::Call {
                operation: "TransactWriteItems",
                table: self.table.clone(),
                message: e.to_string(),
                class: FailureClass::Permanent,
            })?;
            Ok(TransactWriteItem::builder().put(put).build())
        };
        let history_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(history))
            .condition_expression("attribute_not_exists(#record)")
            .expression_attribute_names("#record", RECORD)
            .build();
        let result = self
            .client
            .transact_write_items()
            .transact_items(build(alarm_put.build())?)
            .transact_items(build(history_put)?)
            .send()
            .await;
        match result {
            Ok(_) => {
                crate::metrics::alarm_transition(transition.as_str());
                tracing::info!(device_id = %new.device_id, rule = %new.rule,
                    transition = transition.as_str(), state = new.state.as_str(), actor,
                    version = new.version, "alarm transition");
                Ok(Some(new))
            }
            Err(e) if is_race(&e) => Ok(None),
            Err(e) => Err(self.error("TransactWriteItems", &e)),
        }
    }

    async fn query(&self, partition: &str, prefix: &str) -> Result<Vec<Item>, AlarmError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#record, :prefix)")
                .expression_attribute_names("#pk", PARTITION)
                .expression_attribute_names("#record", RECORD)
                .expression_attribute_values(":pk", AttributeValue::S(partition.to_owned()))
                .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.error("Query", &e))?;
            items.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// Every alarm item matching `filter` (which may use `#record`,
    /// `#state` and `:alarm`), one paginated Scan: the table holds alarms,
    /// history and ledger only, never readings.
    async fn scan(
        &self,
        filter: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<Vec<Alarm>, AlarmError> {
        let mut alarms = Vec::new();
        let mut start = None;
        loop {
            let mut request = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(filter)
                .expression_attribute_names("#record", RECORD)
                .expression_attribute_values(":alarm", AttributeValue::S("alarm#".into()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take());
            if filter.contains("#state") {
                request = request.expression_attribute_names("#state", "state");
            }
            for (name, value) in values {
                request = request.expression_attribute_values(*name, value.clone());
            }
            let page = request.send().await.map_err(|e| self.error("Scan", &e))?;
            alarms.extend(page.items().iter().filter_map(parse_alarm));
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(alarms);
            }
        }
    }

    fn refused(&self, device_id: &str, rule: &str, why: &str) -> AlarmError {
        AlarmError::Refused {
            device_id: device_id.to_owned(),
            rule: rule.to_owned(),
            why: why.to_owned(),
        }
    }

    fn error<E>(&self, operation: &'static str, e: &SdkError<E, HttpResponse>) -> AlarmError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        call_error(&self.table, operation, e)
    }
}

/// A failed call on the alarm table (alarms here, and the rule overrides
/// of [`crate::alerts::rule_store`], which live in the same table).
pub(crate) fn call_error<E>(
    table: &str,
    operation: &'static str,
    e: &SdkError<E, HttpResponse>,
) -> AlarmError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    AlarmError::Call {
        operation,
        table: table.to_owned(),
        message: DisplayErrorContext(e).to_string(),
        class: classify_sdk(e),
    }
}

/// Whether a write lost to another writer (a condition, or a transaction
/// conflicting with another).
fn is_race<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    match e.as_service_error().and_then(|s| s.code()) {
        Some("TransactionCanceledException") => {
            let message = e
                .as_service_error()
                .and_then(|s| s.message())
                .unwrap_or_default();
            message.contains("ConditionalCheckFailed") || message.contains("TransactionConflict")
        }
        Some("TransactionConflictException" | "ConditionalCheckFailedException") => true,
        _ => false,
    }
}

fn is_condition_failure<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException")
}

fn alarm_key(device_id: &str, rule: &str) -> Item {
    HashMap::from([
        (
            PARTITION.to_owned(),
            AttributeValue::S(device_id.to_owned()),
        ),
        (
            RECORD.to_owned(),
            AttributeValue::S(format!("alarm#{rule}")),
        ),
    ])
}

fn alarm_item(a: &Alarm) -> Item {
    let n = |v: i64| AttributeValue::N(v.to_string());
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let mut item = alarm_key(&a.device_id, &a.rule);
    item.extend([
        ("rule".to_owned(), s(&a.rule)),
        ("kind".to_owned(), s(&a.kind)),
        ("state".to_owned(), s(a.state.as_str())),
        ("version".to_owned(), n(a.version as i64)),
        ("episode".to_owned(), n(a.episode as i64)),
        ("activation".to_owned(), s(a.activation.as_str())),
        ("activation_window".to_owned(), s(&a.activation_window)),
        ("opened_at".to_owned(), n(a.opened_at_ms)),
        ("changed_at".to_owned(), n(a.changed_at_ms)),
        ("last_breach_at".to_owned(), n(a.last_breach_ms)),
        ("last_breach_event".to_owned(), s(&a.last_breach_event)),
        ("breaches".to_owned(), n(a.breaches as i64)),
        ("actor".to_owned(), s(&a.actor)),
    ]);
    if let Some(until) = a.snoozed_until_ms {
        item.insert("snoozed_until".to_owned(), n(until));
    }
    if let Some(note) = &a.note {
        item.insert("note".to_owned(), s(note));
    }
    if let Some(episode) = a.resolve_notice {
        item.insert("resolve_notice".to_owned(), n(episode as i64));
    }
    item
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    }
}

fn get_n(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

/// An alarm item; `None` for anything that is not one (never panics on
/// what the table holds).
fn parse_alarm(item: &Item) -> Option<Alarm> {
    Some(Alarm {
        device_id: get_s(item, PARTITION)?.to_owned(),
        rule: get_s(item, "rule")?.to_owned(),
        kind: get_s(item, "kind").unwrap_or("safety").to_owned(),
        state: State::parse(get_s(item, "state")?)?,
        version: get_n(item, "version")? as u64,
        episode: get_n(item, "episode").unwrap_or(0) as u64,
        activation: get_s(item, "activation")
            .and_then(Transition::parse)
            .unwrap_or(Transition::Opened),
        activation_window: get_s(item, "activation_window")
            .unwrap_or_default()
            .to_owned(),
        opened_at_ms: get_n(item, "opened_at").unwrap_or(0),
        changed_at_ms: get_n(item, "changed_at").unwrap_or(0),
        last_breach_ms: get_n(item, "last_breach_at").unwrap_or(0),
        last_breach_event: get_s(item, "last_breach_event")
            .unwrap_or_default()
            .to_owned(),
        breaches: get_n(item, "breaches").unwrap_or(0) as u64,
        snoozed_until_ms: get_n(item, "snoozed_until"),
        actor: get_s(item, "actor").unwrap_or_default().to_owned(),
        note: get_s(item, "note").map(str::to_owned),
        resolve_notice: get_n(item, "resolve_notice").map(|e| e as u64),
    })
}

fn parse_history(item: &Item) -> Option<HistoryEntry> {
    Some(HistoryEntry {
        version: get_n(item, "version")? as u64,
        from: State::parse(get_s(item, "from")?)?,
        to: State::parse(get_s(item, "to")?)?,
        transition: Transition::parse(get_s(item, "transition")?)?,
        actor: get_s(item, "actor").unwrap_or_default().to_owned(),
        note: get_s(item, "note").map(str::to_owned),
        at_ms: get_n(item, "at").unwrap_or(0),
    })
}

/// The wall clock, in the epoch milliseconds the alarm items hold.
pub fn now_millis() -> i64 {
    crate::telemetry::Timestamp::now().unix_millis()
}
