//! The one shape every telemetry format is parsed into.
//!
//! A `Reading` is what a vehicle reported at one instant. Fields the vehicle
//! did not report are simply absent: nothing here ever invents a value.

use super::number::Number;
use super::timestamp::Timestamp;

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
