//! The model's input features, computed from readings in a fixed order.
//!
//! The same rows feed the embedded model and the SageMaker endpoint (as CSV,
//! the built-in XGBoost container's contract), so both backends see exactly
//! what the model was trained on. Missing values stay missing (NaN in
//! memory, an empty CSV cell on the wire), never 0.

use std::fmt::Write;

use crate::telemetry::Reading;

/// Feature names, in column order.
pub const FEATURE_NAMES: &[&str] = &[
    "speed_kmph",
    "rpm",
    "engine_temp_c",
    "coolant_temp_c",
    "oil_pressure_kpa",
    "battery_voltage",
    "vibration_mm_s",
    "fuel_level_percent",
    "odometer_km",
];

/// Row-major features of `readings`: `readings.len() * FEATURE_NAMES.len()`
/// values, NaN where a field is missing.
pub fn extract(readings: &[Reading]) -> Vec<f32> {
    let mut out = Vec::with_capacity(readings.len() * FEATURE_NAMES.len());
    for r in readings {
        out.extend(
            FEATURE_NAMES
                .iter()
                .map(|f| r.number(f).map_or(f32::NAN, |v| v as f32)),
        );
    }
    out
}

/// One CSV row (no header, no line ending), an empty cell for a missing value.
pub fn csv_row(features: &[f32]) -> String {
    let mut row = String::with_capacity(features.len() * 8);
    for (i, v) in features.iter().enumerate() {
        if i > 0 {
            row.push(',');
        }
        if !v.is_nan() {
            let _ = write!(row, "{v}");
        }
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{Number, Timestamp, Value};

    #[test]
    fn missing_values_stay_missing() {
        let r = Reading {
            device_id: "V".into(),
            timestamp: Timestamp::from_unix_millis(0),
            fields: vec![(
                "engine_temp_c".into(),
                Value::Number(Number::parse("102.5").unwrap()),
            )],
        };
        let f = extract(&[r]);
        assert_eq!(f.len(), FEATURE_NAMES.len());
        assert_eq!(csv_row(&f), ",,102.5,,,,,,");
    }
}
