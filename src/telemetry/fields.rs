//! The field rules shared by every format.
//!
//! Each format parser only splits a line into `(name, value)` pairs and hands
//! them to [`ReadingBuilder`] in input order; the builder applies the rules
//! that make a reading (required `device_id`/`timestamp`, numeric fields,
//! duplicate and name checks, renames). Keeping them in one place is what
//! makes the formats agree.

use std::borrow::Cow;
use std::collections::HashSet;

use super::number::{self, NumberError};
use super::reading::{Reading, Value};
use super::timestamp::Timestamp;
use super::timestamp::parse_timestamp;
use super::{RejectReason, Rejection, shown};

/// Fields that must be numbers whenever they are present.
pub const NUMERIC_FIELDS: &[&str] = &[
    "speed_kmph",
    "rpm",
    "engine_temp_c",
    "coolant_temp_c",
    "oil_pressure_kpa",
    "battery_voltage",
    "vibration_mm_s",
    "fuel_level_percent",
    "gps_latitude",
    "gps_longitude",
    "odometer_km",
];

// Input fields named like an attribute fleetwatch writes itself
// (`storage::OWNED_ATTRIBUTES`: `prediction`, `source`, `ingested_at`, the
// TTL attribute `expires_at`, ...) are kept as `<name>_input` instead, so
// input can never overwrite or spoof them, nor make DynamoDB delete a
// reading. The list lives with the item layout, in one place.

const DEVICE_ID: &str = "device_id";
const TIMESTAMP: &str = "timestamp";
const MAX_DEVICE_ID_CHARS: usize = 128;
const MAX_FIELD_NAME_CHARS: usize = 255;

/// A field value as a format parser found it, before the field rules apply.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawValue<'a> {
    /// Text/CSV/key:value: already trimmed and unquoted; a number if it
    /// parses as one, text otherwise.
    Text(&'a str),
    /// A JSON string, unescaped (borrowed from the line when it has no
    /// escapes): text, except for known numeric fields.
    JsonString(Cow<'a, str>),
    /// A JSON number's exact text.
    JsonNumber(&'a str),
    JsonBool(bool),
    /// A JSON object or array, as compact JSON text.
    JsonComposite(String),
}

/// Collects the fields of one line into a [`Reading`].
#[derive(Debug, Default)]
pub(crate) struct ReadingBuilder {
    device_id: Option<String>,
    timestamp: Option<Timestamp>,
    /// The names seen so far (after renaming) that are not in `fields`:
    /// the keys and absent values, so that a repeat is caught even when
    /// the first occurrence was empty/null.
    others: Vec<String>,
    /// Every name seen so far, once a line has more than
    /// [`LINEAR_NAMES`] of them (a lookup in the few names of a usual
    /// line is faster without it).
    seen: Option<HashSet<String>>,
    fields: Vec<(String, Value)>,
}

/// Names of one line checked for repeats by a linear search, not a set.
const LINEAR_NAMES: usize = 32;

impl ReadingBuilder {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds one field. `None` is an absent value (empty CSV cell, JSON
    /// `null`, empty text value): it is recorded for duplicate detection
    /// but never stored, so nothing invents a value the vehicle did not send.
    pub(crate) fn add(&mut self, name: &str, value: Option<RawValue<'_>>) -> Result<(), Rejection> {
        check_name(name)?;
        let name = crate::storage::input_attribute_name(name);
        let name = name.as_ref();
        if !self.first_time(name) {
            return Err(Rejection::new(
                RejectReason::DuplicateField,
                format!("field {} appears more than once", shown(name)),
            ));
        }
        let present = value.is_some() && name != DEVICE_ID && name != TIMESTAMP;
        if !present {
            self.others.push(name.to_owned());
        }
        let Some(value) = value else {
            return Ok(());
        };
        match name {
            DEVICE_ID => self.device_id = Some(device_id(value)?),
            TIMESTAMP => self.timestamp = Some(timestamp(value)?),
            _ => {
                let value = field_value(name, value)?;
                self.fields.push((name.to_owned(), value));
            }
        }
        Ok(())
    }

    /// Whether `name` is new to this line (it is then remembered).
    fn first_time(&mut self, name: &str) -> bool {
        if let Some(seen) = &mut self.seen {
            return seen.insert(name.to_owned());
        }
        let mut names = self
            .fields
            .iter()
            .map(|(n, _)| n.as_str())
            .chain(self.others.iter().map(String::as_str));
        if names.any(|n| n == name) {
            return false;
        }
        if self.fields.len() + self.others.len() >= LINEAR_NAMES {
            let mut seen: HashSet<String> = self
                .fields
                .iter()
                .map(|(n, _)| n.clone())
                .chain(self.others.iter().cloned())
                .collect();
            seen.insert(name.to_owned());
            self.seen = Some(seen);
        }
        true
    }

    pub(crate) fn finish(self) -> Result<Reading, Rejection> {
        let device_id = self
            .device_id
            .ok_or_else(|| Rejection::new(RejectReason::MissingDeviceId, "no device_id field"))?;
        let timestamp = self
            .timestamp
            .ok_or_else(|| Rejection::new(RejectReason::MissingTimestamp, "no timestamp field"))?;
        Ok(Reading {
            device_id,
            timestamp,
            fields: self.fields,
        })
    }
}

/// Field names must be 1–255 characters without control characters: they
/// become DynamoDB attribute names and log/metric text.
fn check_name(name: &str) -> Result<(), Rejection> {
    let count = name.chars().count();
    if count == 0 {
        return Err(Rejection::new(RejectReason::Malformed, "empty field name"));
    }
    if count > MAX_FIELD_NAME_CHARS {
        return Err(Rejection::new(
            RejectReason::Malformed,
            format!("field name {} is longer than 255 characters", shown(name)),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Rejection::new(
            RejectReason::Malformed,
            format!("field name {} has control characters", shown(name)),
        ));
    }
    Ok(())
}

fn device_id(value: RawValue<'_>) -> Result<String, Rejection> {
    let text = match value {
        RawValue::Text(text) => text.to_string(),
        RawValue::JsonString(text) => text.into_owned(),
        other => {
            return Err(Rejection::new(
                RejectReason::InvalidDeviceId,
                format!("device_id must be a string, got {}", describe(&other)),
            ));
        }
    };
    if text.is_empty() {
        return Err(Rejection::new(
            RejectReason::MissingDeviceId,
            "device_id is empty",
        ));
    }
    let valid_chars = text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    // All-ASCII at this point, so bytes are characters.
    if !valid_chars || text.len() > MAX_DEVICE_ID_CHARS {
        return Err(Rejection::new(
            RejectReason::InvalidDeviceId,
            format!(
                "device_id {} must be 1-128 characters of [A-Za-z0-9_.:-]",
                shown(&text)
            ),
        ));
    }
    Ok(text)
}

fn timestamp(value: RawValue<'_>) -> Result<Timestamp, Rejection> {
    let text = match &value {
        RawValue::Text(text) | RawValue::JsonNumber(text) => *text,
        RawValue::JsonString(text) => text.as_ref(),
        other => {
            return Err(Rejection::new(
                RejectReason::InvalidTimestamp,
                format!(
                    "timestamp must be a string or number, got {}",
                    describe(other)
                ),
            ));
        }
    };
    parse_timestamp(text).map_err(|reason| {
        let problem = match reason {
            RejectReason::MissingTimestamp => "is empty",
            RejectReason::TimestampOutOfRange => "is outside 1970-01-01..9999-12-31",
            _ => "is not a valid date and time",
        };
        Rejection::new(reason, format!("timestamp {} {problem}", shown(text)))
    })
}

fn field_value(name: &str, value: RawValue<'_>) -> Result<Value, Rejection> {
    let numeric = NUMERIC_FIELDS.contains(&name);
    match value {
        RawValue::Text(text) | RawValue::JsonNumber(text) => {
            if numeric {
                required_number(name, text)
            } else {
                // Anything that is not a storable number is still worth
                // keeping as text for a field we know nothing about.
                Ok(number::parse_number(text)
                    .map_or_else(|| Value::Text(text.to_string()), Value::Number))
            }
        }
        // JSON strings stay text unless the field must be a number: only
        // then is "73" read as 73.
        RawValue::JsonString(text) if numeric => required_number(name, &text),
        RawValue::JsonString(text) => Ok(Value::Text(text.into_owned())),
        RawValue::JsonBool(_) | RawValue::JsonComposite(_) if numeric => Err(not_a_number(
            name,
            RejectReason::InvalidField,
            &describe(&value),
        )),
        RawValue::JsonBool(flag) => Ok(Value::Text(flag.to_string())),
        RawValue::JsonComposite(json) => Ok(Value::Text(json)),
    }
}

/// A known numeric field's value: NaN/infinity and numbers DynamoDB cannot
/// store are `InvalidNumber`, anything else that is not a number
/// `InvalidField`.
fn required_number(name: &str, text: &str) -> Result<Value, Rejection> {
    match number::parse_number_detailed(text) {
        Ok(number) => Ok(Value::Number(number)),
        Err(NumberError::NotANumber) => {
            Err(not_a_number(name, RejectReason::InvalidField, &shown(text)))
        }
        Err(NumberError::NonFinite | NumberError::TooPrecise | NumberError::OutOfRange) => Err(
            not_a_number(name, RejectReason::InvalidNumber, &shown(text)),
        ),
    }
}

fn not_a_number(name: &str, reason: RejectReason, what: &str) -> Rejection {
    let problem = if reason == RejectReason::InvalidNumber {
        "is not a finite number DynamoDB can store"
    } else {
        "must be a number"
    };
    Rejection::new(reason, format!("{}: {what} {problem}", shown(name)))
}

/// A short description of a non-text value for rejection details.
fn describe(value: &RawValue<'_>) -> String {
    match value {
        RawValue::Text(text) | RawValue::JsonNumber(text) => shown(text),
        RawValue::JsonString(text) => shown(text),
        RawValue::JsonBool(flag) => flag.to_string(),
        RawValue::JsonComposite(json) => shown(json),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::parse_number;

    fn build(pairs: &[(&str, Option<RawValue<'_>>)]) -> Result<Reading, Rejection> {
        let mut builder = ReadingBuilder::new();
        for (name, value) in pairs {
            builder.add(name, value.clone())?;
        }
        builder.finish()
    }

    fn base() -> Vec<(&'static str, Option<RawValue<'static>>)> {
        vec![
            ("device_id", Some(RawValue::Text("VHC001"))),
            ("timestamp", Some(RawValue::Text("2025-11-15T10:00:00Z"))),
        ]
    }

    fn with(extra: (&'static str, Option<RawValue<'static>>)) -> Result<Reading, Rejection> {
        let mut pairs = base();
        pairs.push(extra);
        build(&pairs)
    }

    fn reason(result: Result<Reading, Rejection>) -> RejectReason {
        result.unwrap_err().reason
    }

    fn num(text: &str) -> Value {
        Value::Number(parse_number(text).unwrap())
    }

    #[test]
    fn keeps_order_and_excludes_id_and_timestamp() {
        let reading = build(&[
            ("b", Some(RawValue::Text("2"))),
            ("device_id", Some(RawValue::Text("VHC-1.a:b_c"))),
            ("a", Some(RawValue::Text("x"))),
            ("timestamp", Some(RawValue::Text("1760914020"))),
            ("c", Some(RawValue::Text("3.50"))),
        ])
        .unwrap();
        assert_eq!(reading.device_id, "VHC-1.a:b_c");
        assert_eq!(
            reading.fields,
            vec![
                ("b".to_string(), num("2")),
                ("a".to_string(), Value::Text("x".into())),
                ("c".to_string(), num("3.50")),
            ]
        );
    }

    #[test]
    fn absent_stays_absent() {
        let reading = with(("speed_kmph", None)).unwrap();
        assert!(reading.fields.is_empty());
        assert_eq!(reading.number("speed_kmph"), None);
    }

    #[test]
    fn device_id_rules() {
        let mut pairs = base();
        pairs.remove(0);
        assert_eq!(reason(build(&pairs)), RejectReason::MissingDeviceId);
        pairs.push(("device_id", None));
        assert_eq!(reason(build(&pairs)), RejectReason::MissingDeviceId);
        for bad in ["VHC 001", "VHC/1", "é", "a\u{0}"] {
            let result = build(&[
                ("device_id", Some(RawValue::Text(bad))),
                ("timestamp", Some(RawValue::Text("0"))),
            ]);
            assert_eq!(reason(result), RejectReason::InvalidDeviceId, "{bad:?}");
        }
        let long = "a".repeat(129);
        let result = build(&[("device_id", Some(RawValue::Text(&long)))]);
        assert_eq!(reason(result), RejectReason::InvalidDeviceId);
        let max = "a".repeat(128);
        let ok = build(&[
            ("device_id", Some(RawValue::Text(&max))),
            ("timestamp", Some(RawValue::Text("0"))),
        ]);
        assert!(ok.is_ok());
        let result = build(&[("device_id", Some(RawValue::JsonNumber("12")))]);
        assert_eq!(reason(result), RejectReason::InvalidDeviceId);
        let result = build(&[("device_id", Some(RawValue::JsonBool(true)))]);
        assert_eq!(reason(result), RejectReason::InvalidDeviceId);
    }

    #[test]
    fn timestamp_rules() {
        let mut pairs = base();
        pairs.remove(1);
        assert_eq!(reason(build(&pairs)), RejectReason::MissingTimestamp);
        let bad = build(&[
            ("device_id", Some(RawValue::Text("A"))),
            ("timestamp", Some(RawValue::Text("31-02-2025 10:00"))),
        ]);
        let rejection = bad.unwrap_err();
        assert_eq!(rejection.reason, RejectReason::InvalidTimestamp);
        assert!(rejection.detail.contains("31-02-2025"));
        let bad = build(&[("timestamp", Some(RawValue::JsonBool(false)))]);
        assert_eq!(reason(bad), RejectReason::InvalidTimestamp);
        let early = build(&[("timestamp", Some(RawValue::Text("1969-01-01T00:00:00Z")))]);
        assert_eq!(reason(early), RejectReason::TimestampOutOfRange);
    }

    #[test]
    fn numeric_fields_must_be_numbers() {
        for field in NUMERIC_FIELDS {
            let rejection = with((field, Some(RawValue::Text("fast")))).unwrap_err();
            assert_eq!(rejection.reason, RejectReason::InvalidField);
            assert!(rejection.detail.contains(field));
        }
        assert_eq!(
            reason(with(("rpm", Some(RawValue::Text("NaN"))))),
            RejectReason::InvalidNumber
        );
        assert_eq!(
            reason(with(("rpm", Some(RawValue::Text("-inf"))))),
            RejectReason::InvalidNumber
        );
        assert_eq!(
            reason(with(("rpm", Some(RawValue::JsonNumber("1e400"))))),
            RejectReason::InvalidNumber
        );
        assert_eq!(
            reason(with(("rpm", Some(RawValue::JsonString("Infinity".into()))))),
            RejectReason::InvalidNumber
        );
        assert_eq!(
            reason(with(("rpm", Some(RawValue::JsonString("high".into()))))),
            RejectReason::InvalidField
        );
        assert_eq!(
            reason(with(("rpm", Some(RawValue::JsonBool(true))))),
            RejectReason::InvalidField
        );
        assert_eq!(
            reason(with(("rpm", Some(RawValue::JsonComposite("[1]".into()))))),
            RejectReason::InvalidField
        );
        let ok = with(("rpm", Some(RawValue::JsonString(" 3000 ".into())))).unwrap();
        assert_eq!(ok.fields, vec![("rpm".to_string(), num("3000"))]);
    }

    #[test]
    fn other_fields_fall_back_to_text() {
        let reading = with(("note", Some(RawValue::Text("NaN")))).unwrap();
        assert_eq!(reading.field("note"), Some(&Value::Text("NaN".into())));
        let reading = with(("big", Some(RawValue::JsonNumber("1e400")))).unwrap();
        assert_eq!(reading.field("big"), Some(&Value::Text("1e400".into())));
        let reading = with(("code", Some(RawValue::JsonString("42".into())))).unwrap();
        assert_eq!(reading.field("code"), Some(&Value::Text("42".into())));
        let reading = with(("ok", Some(RawValue::JsonBool(true)))).unwrap();
        assert_eq!(reading.field("ok"), Some(&Value::Text("true".into())));
    }

    #[test]
    fn duplicates_are_rejected() {
        let result = build(&[
            ("a", Some(RawValue::Text("1"))),
            ("a", Some(RawValue::Text("2"))),
        ]);
        assert_eq!(reason(result), RejectReason::DuplicateField);
        let result = build(&[("a", None), ("a", Some(RawValue::Text("2")))]);
        assert_eq!(reason(result), RejectReason::DuplicateField);
        let result = build(&[
            ("device_id", Some(RawValue::Text("A"))),
            ("device_id", Some(RawValue::Text("B"))),
        ]);
        assert_eq!(reason(result), RejectReason::DuplicateField);
        // A renamed field colliding with its own target is a duplicate too.
        let result = build(&[
            ("source", Some(RawValue::Text("x"))),
            ("source_input", Some(RawValue::Text("y"))),
        ]);
        assert_eq!(reason(result), RejectReason::DuplicateField);
    }

    #[test]
    fn reserved_names_are_renamed() {
        let mut pairs = base();
        pairs.push(("prediction", Some(RawValue::Text("ok"))));
        pairs.push(("source", Some(RawValue::Text("s3"))));
        pairs.push(("ingested_at", Some(RawValue::Text("now"))));
        let reading = build(&pairs).unwrap();
        let names: Vec<&str> = reading.fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["prediction_input", "source_input", "ingested_at_input"]
        );
    }

    /// Every attribute fleetwatch owns, the TTL's `expires_at` included:
    /// the keys are the reading's identity, never a field; anything else
    /// is stored under `<name>_input`.
    #[test]
    fn no_owned_attribute_is_a_field() {
        for &owned in crate::storage::OWNED_ATTRIBUTES {
            let mut pairs = base();
            if crate::storage::KEY_ATTRIBUTES.contains(&owned) {
                let reading = build(&pairs).unwrap();
                assert!(reading.field(owned).is_none());
                pairs.push((owned, Some(RawValue::Text("again"))));
                assert_eq!(reason(build(&pairs)), RejectReason::DuplicateField);
                continue;
            }
            pairs.push((owned, Some(RawValue::Text("1760000000"))));
            let reading = build(&pairs).unwrap();
            assert!(reading.field(owned).is_none(), "{owned} set by input");
            assert_eq!(
                reading.field(&format!("{owned}_input")),
                Some(&num("1760000000")),
                "{owned}"
            );
        }
    }

    #[test]
    fn field_names_are_checked() {
        assert_eq!(
            reason(with(("", Some(RawValue::Text("1"))))),
            RejectReason::Malformed
        );
        assert_eq!(
            reason(with(("a\tb", Some(RawValue::Text("1"))))),
            RejectReason::Malformed
        );
        let long: &'static str = "n".repeat(256).leak();
        assert_eq!(
            reason(with((long, Some(RawValue::Text("1"))))),
            RejectReason::Malformed
        );
        let max: &'static str = "é".repeat(255).leak();
        assert!(with((max, Some(RawValue::Text("1")))).is_ok());
        assert!(with(("engine temp °C", Some(RawValue::Text("1")))).is_ok());
    }
}
