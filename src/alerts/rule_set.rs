//! The safety rules in force, and which of them apply to each vehicle.
//!
//! Rules come from two places: `FLEETWATCH_ALERT_RULES` (rules for every
//! vehicle, and optionally scoped ones, `TRK-*: engine_temp_c > 105`) and
//! the overrides operators store with `fleetwatch rules set`
//! ([`super::rule_store`]). A stored scope replaces the configured rules of
//! the same scope.
//!
//! **Which rules apply.** For each field and kind of rule (threshold,
//! sustained, rate of change), the rules of the most specific scopes that
//! match the vehicle and have such a rule apply; the wider scopes' rules of
//! that field and kind do not ([`Scope::rank`]). So
//! `VHC001: engine_temp_c > 95` replaces the default `engine_temp_c > 100`
//! for VHC001, and leaves its other fields' rules, and its temperature
//! rate-of-change rule, alone. Scopes of equal
//! rank add up (two groups a vehicle is in both apply).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use super::Condition;
use super::rules::{AlertRule, RuleKind, RuleParseError};
use super::scope::{Rank, Scope, ScopeParseError};
use crate::telemetry::Reading;

/// A rule and the vehicles it is for, as `FLEETWATCH_ALERT_RULES` writes
/// it: `engine_temp_c > 100` (every vehicle) or `SCOPE: rule`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopedRule {
    /// The vehicles it applies to.
    pub scope: Scope,
    /// The rule.
    pub rule: AlertRule,
}

/// Why a scoped rule could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopedRuleError {
    #[error(transparent)]
    Scope(#[from] ScopeParseError),
    #[error(transparent)]
    Rule(#[from] RuleParseError),
}

impl FromStr for ScopedRule {
    type Err = ScopedRuleError;

    /// The scope is what comes before the last `:` (a rule never holds
    /// one; a device id may).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.rsplit_once(':') {
            Some((scope, rule)) => Ok(ScopedRule {
                scope: scope.parse()?,
                rule: rule.parse()?,
            }),
            None => Ok(ScopedRule {
                scope: Scope::All,
                rule: s.parse()?,
            }),
        }
    }
}

impl fmt::Display for ScopedRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.scope {
            Scope::All => write!(f, "{}", self.rule),
            scope => write!(f, "{scope}: {}", self.rule),
        }
    }
}

/// One distinct rule of a set, with what its alerts say computed once.
#[derive(Debug, Clone)]
pub struct RuleEntry {
    /// The rule evaluated on the readings it applies to.
    pub rule: AlertRule,
    /// The rule as written: part of the alert's (and the alarm's) identity.
    pub text: String,
    /// The condition its alerts quote.
    pub condition: Condition,
}

/// Which rules a narrower scope's rule replaces: those on the same field
/// of the same kind (a vehicle's own rate-of-change rule does not take its
/// temperature limit away).
type Slot = (String, &'static str);

fn slot(rule: &AlertRule) -> Slot {
    let kind = match rule.kind {
        RuleKind::Threshold(_) => "threshold",
        RuleKind::Sustained { .. } => "sustained",
        RuleKind::Change { .. } => "change",
    };
    (rule.field.clone(), kind)
}

/// The rules of one scope, by the field and kind they are.
#[derive(Debug, Clone)]
struct ScopeRules {
    scope: Scope,
    rank: Rank,
    /// (Field, kind) → indices into [`RuleSet::entries`].
    by_field: BTreeMap<Slot, Vec<usize>>,
}

/// The rules in force: built once per change, shared by every object
/// processed while it is current.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    /// Every distinct rule (by its text).
    entries: Vec<RuleEntry>,
    /// The rules for every vehicle.
    all: Option<ScopeRules>,
    /// Device scopes, by device id (there may be one per vehicle).
    devices: HashMap<String, ScopeRules>,
    /// Glob and group scopes (few), narrowest first.
    patterns: Vec<ScopeRules>,
    /// Rules stored by operators (for the logs).
    overrides: usize,
}

impl RuleSet {
    /// The configured rules with the stored overrides on top (a stored
    /// scope replaces the configured rules of the same scope).
    pub fn new(configured: &[ScopedRule], overrides: &[(Scope, Vec<AlertRule>)]) -> RuleSet {
        let mut scopes: BTreeMap<Scope, Vec<AlertRule>> = BTreeMap::new();
        for r in configured {
            scopes
                .entry(r.scope.clone())
                .or_default()
                .push(r.rule.clone());
        }
        for (scope, rules) in overrides {
            scopes.insert(scope.clone(), rules.clone());
        }
        let mut set = RuleSet {
            overrides: overrides.iter().map(|(_, r)| r.len()).sum(),
            ..RuleSet::default()
        };
        let mut index_of: HashMap<String, usize> = HashMap::new();
        for (scope, rules) in scopes {
            let mut by_field: BTreeMap<Slot, Vec<usize>> = BTreeMap::new();
            for rule in rules {
                let text = rule.to_string();
                let index = *index_of.entry(text.clone()).or_insert_with(|| {
                    set.entries.push(RuleEntry {
                        condition: Condition::of_rule(&rule),
                        rule: rule.clone(),
                        text,
                    });
                    set.entries.len() - 1
                });
                let on_field = by_field.entry(slot(&rule)).or_default();
                if !on_field.contains(&index) {
                    on_field.push(index);
                }
            }
            let rules = ScopeRules {
                rank: scope.rank(),
                scope: scope.clone(),
                by_field,
            };
            match scope {
                Scope::All => set.all = Some(rules),
                Scope::Device(id) => {
                    set.devices.insert(id, rules);
                }
                Scope::Glob(_) | Scope::Group { .. } => set.patterns.push(rules),
            }
        }
        set.patterns.sort_by_key(|s| std::cmp::Reverse(s.rank));
        set
    }

    /// Every distinct rule; [`RuleSet::applicable`] returns indices into it.
    pub fn entries(&self) -> &[RuleEntry] {
        &self.entries
    }

    /// Whether there are no rules at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Rules stored by operators, in all.
    pub fn overrides(&self) -> usize {
        self.overrides
    }

    /// Whether every vehicle gets the same rules (no scope but the
    /// default): then [`RuleSet::applicable`] need not be asked per vehicle.
    pub fn is_uniform(&self) -> bool {
        self.devices.is_empty() && self.patterns.is_empty()
    }

    /// A key under which [`RuleSet::applicable`]'s answer for `reading`
    /// may be cached: the device id, plus the values of the group
    /// attributes the scopes look at.
    pub fn cache_key(&self, reading: &Reading) -> String {
        let mut key = reading.device_id.clone();
        for field in self.patterns.iter().filter_map(|s| s.scope.group_field()) {
            key.push('\u{0}');
            if let Some(crate::telemetry::Value::Text(t)) = reading.field(field) {
                key.push_str(t);
            }
        }
        key
    }

    /// The indices (into [`RuleSet::entries`], ascending) of the rules
    /// that apply to `reading`'s vehicle.
    pub fn applicable(&self, reading: &Reading) -> Vec<usize> {
        let matching = self.scoped_matching(reading).chain(self.all.iter());
        // Per field and kind: the best rank seen and the rules of that rank.
        let mut best: BTreeMap<&Slot, (Rank, Vec<usize>)> = BTreeMap::new();
        for scope in matching {
            for (key, rules) in &scope.by_field {
                let slot = best.entry(key).or_insert_with(|| (scope.rank, Vec::new()));
                if scope.rank > slot.0 {
                    *slot = (scope.rank, Vec::new());
                }
                if scope.rank == slot.0 {
                    slot.1.extend(rules);
                }
            }
        }
        let mut applicable: Vec<usize> = best.into_values().flat_map(|(_, r)| r).collect();
        applicable.sort_unstable();
        applicable.dedup();
        applicable
    }

    /// The scope an applicable rule was set for, when it is not every
    /// vehicle: quoted in the alert, so the operator knows it is an override.
    pub fn scope_of(&self, reading: &Reading, index: usize) -> Option<&Scope> {
        self.scoped_matching(reading)
            .find(|s| s.by_field.values().any(|r| r.contains(&index)))
            .map(|s| &s.scope)
    }

    /// The scopes other than every vehicle's that `reading` is in,
    /// narrowest first.
    fn scoped_matching<'s, 'r>(
        &'s self,
        reading: &'r Reading,
    ) -> impl Iterator<Item = &'s ScopeRules> + use<'s, 'r> {
        self.devices
            .get(&reading.device_id)
            .into_iter()
            .chain(self.patterns.iter().filter(|s| s.scope.matches(reading)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{Timestamp, Value};

    fn configured(rules: &[&str]) -> Vec<ScopedRule> {
        rules.iter().map(|r| r.parse().unwrap()).collect()
    }

    fn reading(device: &str, group: Option<&str>) -> Reading {
        Reading {
            device_id: device.to_owned(),
            timestamp: Timestamp::from_unix_millis(0),
            fields: group
                .map(|g| vec![("fleet".to_owned(), Value::Text(g.to_owned()))])
                .unwrap_or_default(),
        }
    }

    fn applicable(set: &RuleSet, r: &Reading) -> Vec<String> {
        set.applicable(r)
            .into_iter()
            .map(|i| set.entries()[i].text.clone())
            .collect()
    }

    #[test]
    fn scoped_rules_parse_at_the_last_colon_and_print_back() {
        for text in [
            "engine_temp_c > 100",
            "TRK-*: engine_temp_c > 105",
            "fleet:42: oil_pressure_kpa < 150",
            "fleet=north: engine_temp_c > 95",
        ] {
            let rule: ScopedRule = text.parse().unwrap();
            assert_eq!(rule.to_string(), text);
        }
        assert_eq!(
            "fleet:42: x > 1".parse::<ScopedRule>().unwrap().scope,
            Scope::Device("fleet:42".into())
        );
        assert!(matches!(
            "TRK 1: x > 1".parse::<ScopedRule>(),
            Err(ScopedRuleError::Scope(_))
        ));
        assert!(matches!(
            "TRK-1: x >".parse::<ScopedRule>(),
            Err(ScopedRuleError::Rule(_))
        ));
    }

    #[test]
    fn the_narrowest_scope_with_a_rule_on_a_field_wins_that_field_only() {
        let set = RuleSet::new(
            &configured(&[
                "engine_temp_c > 100",
                "oil_pressure_kpa < 150",
                "TRK-*: engine_temp_c > 105",
                "fleet=north: engine_temp_c > 98",
            ]),
            &[(
                Scope::Device("TRK-007".into()),
                vec!["engine_temp_c > 95".parse().unwrap()],
            )],
        );
        assert!(!set.is_uniform());
        assert_eq!(set.overrides(), 1);
        let cases = [
            (
                reading("VHC001", None),
                vec!["engine_temp_c > 100", "oil_pressure_kpa < 150"],
            ),
            (
                reading("VHC001", Some("north")),
                vec!["oil_pressure_kpa < 150", "engine_temp_c > 98"],
            ),
            (
                reading("TRK-001", Some("north")),
                vec!["oil_pressure_kpa < 150", "engine_temp_c > 105"],
            ),
            (
                reading("TRK-007", None),
                vec!["oil_pressure_kpa < 150", "engine_temp_c > 95"],
            ),
        ];
        for (r, expected) in cases {
            let mut got = applicable(&set, &r);
            let mut expected: Vec<String> = expected.into_iter().map(str::to_owned).collect();
            got.sort();
            expected.sort();
            assert_eq!(got, expected, "{}", r.device_id);
        }
        let trk7 = reading("TRK-007", None);
        let index = set
            .applicable(&trk7)
            .into_iter()
            .find(|&i| set.entries()[i].text == "engine_temp_c > 95")
            .unwrap();
        assert_eq!(
            set.scope_of(&trk7, index),
            Some(&Scope::Device("TRK-007".into()))
        );
        let default = set
            .applicable(&trk7)
            .into_iter()
            .find(|&i| set.entries()[i].text == "oil_pressure_kpa < 150")
            .unwrap();
        assert_eq!(set.scope_of(&trk7, default), None);
    }

    #[test]
    fn a_narrower_rule_replaces_only_the_wider_rules_of_its_kind() {
        let set = RuleSet::new(
            &configured(&[
                "engine_temp_c > 100",
                "engine_temp_c rises 15 within 10m",
                "VHC001: engine_temp_c rises 10 within 10m",
            ]),
            &[],
        );
        let mut got = applicable(&set, &reading("VHC001", None));
        got.sort();
        assert_eq!(
            got,
            vec!["engine_temp_c > 100", "engine_temp_c rises 10 within 10m"]
        );
    }

    #[test]
    fn a_stored_scope_replaces_the_configured_rules_of_that_scope() {
        let set = RuleSet::new(
            &configured(&["TRK-*: engine_temp_c > 105", "TRK-*: coolant_c > 90"]),
            &[(
                Scope::Glob("TRK-*".into()),
                vec!["engine_temp_c > 110".parse().unwrap()],
            )],
        );
        assert_eq!(
            applicable(&set, &reading("TRK-1", None)),
            vec!["engine_temp_c > 110"]
        );
    }

    #[test]
    fn equal_scopes_add_up_and_the_same_rule_is_one_entry() {
        let set = RuleSet::new(
            &configured(&["fleet=north: x > 1", "TRK-*: x > 1", "*-1: x > 2"]),
            &[],
        );
        assert_eq!(set.entries().len(), 2);
        // `TRK-*` has more literal characters than `*-1`: only it applies
        // to TRK-1, and a glob outranks the group.
        assert_eq!(
            applicable(&set, &reading("TRK-1", Some("north"))),
            vec!["x > 1"]
        );
        assert_eq!(
            applicable(&set, &reading("VAN-1", Some("north"))),
            vec!["x > 2"]
        );
        // Two globs of four literal characters each: both apply.
        let set = RuleSet::new(&configured(&["TRK-*: x > 1", "*K-01: x > 2"]), &[]);
        let mut got = applicable(&set, &reading("TRK-01", None));
        got.sort();
        assert_eq!(got, vec!["x > 1", "x > 2"]);
    }

    #[test]
    fn the_cache_key_holds_the_group_values_the_scopes_read() {
        let set = RuleSet::new(&configured(&["fleet=north: x > 1"]), &[]);
        assert_ne!(
            set.cache_key(&reading("V1", Some("north"))),
            set.cache_key(&reading("V1", Some("south")))
        );
        let plain = RuleSet::new(&configured(&["x > 1"]), &[]);
        assert!(plain.is_uniform());
        assert_eq!(plain.cache_key(&reading("V1", Some("north"))), "V1");
    }
}
