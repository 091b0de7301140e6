//! The rule overrides operators set with `fleetwatch rules set`, kept in
//! the alarm table (`FLEETWATCH_ALARM_TABLE`) so they take effect without a
//! redeploy: every worker reads them again every `FLEETWATCH_RULES_REFRESH`
//! ([`super::rule_book`]).
//!
//! # Items
//! One item per scope, all in one partition, so a worker loads every
//! override with one (paged) Query: `device_id = "rules#scopes"` (`#` never
//! appears in a device id), `record = <scope>` (`VHC001`, `TRK-*`,
//! `fleet=north`), with `rules` L of S (each rule as written), `updated_at`
//! N (epoch ms), `updated_by` S and an optional `note` S. Setting a scope
//! replaces its whole list; the last writer wins, as with any setting.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::rules::AlertRule;
use super::scope::Scope;
use crate::alarms::AlarmError;
use crate::alarms::store::{PARTITION, RECORD, call_error, now_millis};

/// The partition every override item is in.
pub const OVERRIDES: &str = "rules#scopes";

type Item = HashMap<String, AttributeValue>;

/// One scope's stored rules.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredScope {
    /// The vehicles the rules are for.
    pub scope: Scope,
    /// Its rules; for the scope's vehicles they replace the wider scopes'
    /// rules of the same field and kind.
    pub rules: Vec<AlertRule>,
    /// When they were set (epoch ms).
    pub updated_at_ms: i64,
    /// Who set them.
    pub updated_by: String,
    /// Why, as the operator wrote it.
    pub note: Option<String>,
}

/// What a load found: the overrides, and the items it could not read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Loaded {
    /// The overrides, by scope.
    pub scopes: Vec<StoredScope>,
    /// Items that are not overrides this version understands (written by
    /// hand, or by a newer version): each with why, for the log.
    pub unreadable: Vec<String>,
}

impl Loaded {
    /// The overrides as [`super::rule_set::RuleSet::new`] takes them.
    pub fn overrides(&self) -> Vec<(Scope, Vec<AlertRule>)> {
        self.scopes
            .iter()
            .map(|s| (s.scope.clone(), s.rules.clone()))
            .collect()
    }
}

/// The overrides in the alarm table.
#[derive(Debug, Clone)]
pub struct RuleStore {
    /// The DynamoDB client.
    client: aws_sdk_dynamodb::Client,
    /// `FLEETWATCH_ALARM_TABLE`.
    table: String,
}

impl RuleStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        RuleStore { client, table }
    }

    /// Every stored override.
    pub async fn load(&self) -> Result<Loaded, AlarmError> {
        let mut loaded = Loaded::default();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", PARTITION)
                .expression_attribute_values(":pk", AttributeValue::S(OVERRIDES.to_owned()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| call_error(&self.table, "Query", &e))?;
            for item in page.items.unwrap_or_default() {
                match parse(&item) {
                    Ok(scope) => loaded.scopes.push(scope),
                    Err(why) => loaded.unreadable.push(why),
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(loaded);
            }
        }
    }

    /// Sets `scope`'s rules (replacing what it had).
    pub async fn set(
        &self,
        scope: &Scope,
        rules: &[AlertRule],
        actor: &str,
        note: Option<&str>,
    ) -> Result<StoredScope, AlarmError> {
        let stored = StoredScope {
            scope: scope.clone(),
            rules: rules.to_vec(),
            updated_at_ms: now_millis(),
            updated_by: actor.to_owned(),
            note: note.map(str::to_owned),
        };
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item(&stored)))
            .send()
            .await
            .map_err(|e| call_error(&self.table, "PutItem", &e))?;
        Ok(stored)
    }

    /// Removes `scope`'s overrides; returns what it had, if anything.
    pub async fn clear(&self, scope: &Scope) -> Result<Option<StoredScope>, AlarmError> {
        let old = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PARTITION, AttributeValue::S(OVERRIDES.to_owned()))
            .key(RECORD, AttributeValue::S(scope.to_string()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| call_error(&self.table, "DeleteItem", &e))?;
        Ok(old.attributes.and_then(|item| parse(&item).ok()))
    }
}

fn item(stored: &StoredScope) -> Item {
    let mut item = Item::new();
    item.insert(PARTITION.into(), AttributeValue::S(OVERRIDES.into()));
    item.insert(RECORD.into(), AttributeValue::S(stored.scope.to_string()));
    item.insert(
        "rules".into(),
        AttributeValue::L(
            stored
                .rules
                .iter()
                .map(|r| AttributeValue::S(r.to_string()))
                .collect(),
        ),
    );
    item.insert(
        "updated_at".into(),
        AttributeValue::N(stored.updated_at_ms.to_string()),
    );
    item.insert(
        "updated_by".into(),
        AttributeValue::S(stored.updated_by.clone()),
    );
    if let Some(note) = &stored.note {
        item.insert("note".into(), AttributeValue::S(note.clone()));
    }
    item
}

/// An override item, or why it is not one.
fn parse(item: &Item) -> Result<StoredScope, String> {
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    };
    let record = text(RECORD).unwrap_or_default();
    let scope: Scope = record
        .parse()
        .map_err(|e| format!("record {record:?}: {e}"))?;
    let Some(AttributeValue::L(list)) = item.get("rules") else {
        return Err(format!("scope {scope}: no `rules` list"));
    };
    let rules = list
        .iter()
        .map(|v| match v {
            AttributeValue::S(s) => s
                .parse::<AlertRule>()
                .map_err(|e| format!("scope {scope}: {e}")),
            _ => Err(format!("scope {scope}: a rule that is not a string")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let updated_at_ms = match item.get("updated_at") {
        Some(AttributeValue::N(n)) => n.parse().unwrap_or_default(),
        _ => 0,
    };
    Ok(StoredScope {
        scope,
        rules,
        updated_at_ms,
        updated_by: text("updated_by").unwrap_or_default(),
        note: text("note"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_item_reads_back_as_written() {
        let stored = StoredScope {
            scope: "TRK-*".parse().unwrap(),
            rules: vec![
                "engine_temp_c > 95".parse().unwrap(),
                "oil_pressure_kpa < 120".parse().unwrap(),
            ],
            updated_at_ms: 1_764_650_000_000,
            updated_by: "ana".into(),
            note: Some("older engines".into()),
        };
        assert_eq!(parse(&item(&stored)), Ok(stored));
    }

    #[test]
    fn an_item_this_version_cannot_read_says_which_scope_and_why() {
        let mut bad = item(&StoredScope {
            scope: Scope::Device("VHC001".into()),
            rules: vec![],
            updated_at_ms: 0,
            updated_by: String::new(),
            note: None,
        });
        bad.insert(
            "rules".into(),
            AttributeValue::L(vec![AttributeValue::S("engine_temp_c >> 95".into())]),
        );
        let why = parse(&bad).unwrap_err();
        assert!(why.starts_with("scope VHC001: "), "{why}");
    }
}
