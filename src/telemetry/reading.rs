//! The one shape every telemetry format is parsed into.
//!
//! A `Reading` is what a vehicle reported at one instant. Fields the vehicle
//! did not report are simply absent: nothing here ever invents a value.

use std::fmt;

/// One telemetry reading from one vehicle.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// 1–128 characters of `[A-Za-z0-9_.:-]`.
    pub device_id: String,
    /// When the reading was taken, normalised to UTC.
    pub timestamp: Timestamp,
    /// Every other field, in the order it appeared in the input.
    /// Never contains `device_id` or `timestamp`; names are unique.
    pub fields: Vec<(String, Value)>,
}

impl Reading {
    /// The value of a field, if the vehicle reported it.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The numeric value of a field, if it was reported and is a number.
    pub fn number(&self, name: &str) -> Option<f64> {
        match self.field(name) {
            Some(Value::Number(n)) => Some(n.as_f64()),
            _ => None,
        }
    }
}

/// A field's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(Number),
    Text(String),
}

/// A finite number that remembers the decimal text it was written as, so it
/// can be stored without a float round trip (`0.1` stays `0.1`).
#[derive(Debug, Clone, PartialEq)]
pub struct Number {
    text: String,
    value: f64,
}

impl Number {
    /// Parses decimal text: an optional sign, digits with an optional
    /// fraction, an optional exponent. NaN, infinities, hex and empty text are
    /// refused, as are values DynamoDB cannot store (more than 38 significant
    /// digits, magnitude outside 1e-130..1e126).
    pub fn parse(text: &str) -> Option<Number> {
        crate::telemetry::number::parse_number(text)
    }

    /// Builds a number from text already known to be canonical. Only for the
    /// number parser itself.
    pub(crate) fn from_canonical(text: String, value: f64) -> Number {
        Number { text, value }
    }

    /// Canonical decimal text, valid as a DynamoDB `N` value.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn as_f64(&self) -> f64 {
        self.value
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// An instant in UTC with millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    unix_millis: i64,
}

impl Timestamp {
    pub fn from_unix_millis(unix_millis: i64) -> Timestamp {
        Timestamp { unix_millis }
    }

    pub fn unix_millis(self) -> i64 {
        self.unix_millis
    }

    /// RFC 3339 in UTC with exactly three fractional digits,
    /// e.g. `2025-10-19T22:47:00.000Z`, so that the text sorts by time.
    pub fn to_rfc3339_millis(self) -> String {
        crate::telemetry::timestamp::format_rfc3339_millis(self)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339_millis())
    }
}
