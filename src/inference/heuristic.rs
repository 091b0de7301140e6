//! A plain, rule-based stand-in for the embedded model.
//!
//! It scores a reading from how far its engine and coolant temperatures,
//! oil pressure, battery voltage and vibration are from healthy ranges. It
//! knows nothing a trained model would learn; it exists so the `embedded`
//! backend makes a documented, deterministic prediction until the trained
//! XGBoost model replaces it. Its id says what it is.

use super::{Label, Prediction};
use crate::telemetry::Reading;

pub const MODEL_ID: &str = "fleetwatch-heuristic-v0";

#[derive(Debug, Clone)]
pub struct HeuristicModel {
    threshold: f64,
}

impl Default for HeuristicModel {
    fn default() -> Self {
        HeuristicModel { threshold: 0.5 }
    }
}

/// (field, healthy limit, direction, scale): each term adds
/// `(value - limit) / scale` when past the limit in `direction`.
const TERMS: &[(&str, f64, f64, f64)] = &[
    ("engine_temp_c", 100.0, 1.0, 10.0),
    ("coolant_temp_c", 100.0, 1.0, 10.0),
    ("oil_pressure_kpa", 150.0, -1.0, 50.0),
    ("battery_voltage", 12.0, -1.0, 0.5),
    ("vibration_mm_s", 7.0, 1.0, 3.0),
];

impl HeuristicModel {
    pub fn id(&self) -> &str {
        MODEL_ID
    }

    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    pub fn predict(&self, readings: &[Reading]) -> Vec<Prediction> {
        readings
            .iter()
            .map(|r| {
                let excess: f64 = TERMS
                    .iter()
                    .filter_map(|&(field, limit, direction, scale)| {
                        r.number(field)
                            .map(|v| ((v - limit) * direction / scale).max(0.0))
                    })
                    .sum();
                // Logistic: 0.5 right at a limit would alarm too often; the
                // -2 offset puts the 50 % point two scale units past it.
                let score = 1.0 / (1.0 + (-(4.0 * excess - 2.0)).exp());
                Prediction {
                    label: Label::from_score(score, self.threshold),
                    score,
                    model: MODEL_ID.to_owned(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{Number, Timestamp, Value};

    fn reading(fields: &[(&str, &str)]) -> Reading {
        Reading {
            device_id: "V".into(),
            timestamp: Timestamp::from_unix_millis(0),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), Value::Number(Number::parse(v).unwrap())))
                .collect(),
        }
    }

    #[test]
    fn hot_engines_need_maintenance_healthy_ones_do_not() {
        let m = HeuristicModel::default();
        let p = m.predict(&[
            reading(&[("engine_temp_c", "124")]),
            reading(&[("engine_temp_c", "85"), ("battery_voltage", "12.6")]),
            reading(&[]),
        ]);
        assert_eq!(p[0].label, Label::Positive);
        assert!(p[0].score > 0.9);
        assert_eq!(p[1].label, Label::Negative);
        assert!(p[1].score < 0.2);
        assert_eq!(p[2].label, Label::Negative, "no evidence is not a fault");
        assert_eq!(p[0].model, MODEL_ID);
    }
}
