//! Model features computed from parsed readings: the exact contract between
//! the worker and the model trained by `model/train.py`.
//!
//! Any change here must be mirrored in `model/features.py` and the model
//! retrained; the parity fixture in `models/fleetwatch.parity.json` checks
//! that both sides agree.
//!
//! # Definition
//! Readings are taken **in the order they appear in the object** (never
//! re-sorted) and grouped by `device_id`. For reading `i` of a device, its
//! *window* is that device's last [`WINDOW`] readings of the same object up
//! to and including `i` (fewer at the start of the object). Readings from
//! other objects are never used: the worker is stateless between objects.
//! All arithmetic is in `f64`, summing in window order (oldest first),
//! then each feature is rounded once to `f32`. `NaN` means missing.
//!
//! | # | name | definition |
//! |---|------|------------|
//! | 0–7 | `speed_kmph`, `rpm`, `engine_temp_c`, `coolant_temp_c`, `oil_pressure_kpa`, `battery_voltage`, `vibration_mm_s`, `fuel_level_percent` | the reading's own numeric value (missing if absent or not a number) |
//! | 8 | `oil_kpa_per_krpm` | `oil_pressure_kpa / (rpm / 1000)` if both present and `rpm >= 400` (engine running), else missing |
//! | 9 | `engine_temp_slope_c_per_h` | least-squares slope of `engine_temp_c` against time in hours over the window's readings that have it: `x = (t_j − t_i) ms / 3_600_000`, `mx = Σx/n`, `my = Σy/n`, slope `= Σ(x−mx)(y−my) / Σ(x−mx)²`; missing if `n < 3` or `Σ(x−mx)² = 0` |
//! | 10 | `engine_temp_mean` | mean of the window's present `engine_temp_c` (`Σ/n`); missing if none |
//! | 11 | `coolant_temp_mean` | same for `coolant_temp_c` |
//! | 12 | `oil_kpa_per_krpm_mean` | same for feature 8 |
//! | 13 | `battery_voltage_mean` | same for `battery_voltage` |
//! | 14 | `battery_voltage_dev` | `battery_voltage − battery_voltage_mean` (missing if the reading has no voltage) |
//! | 15 | `vibration_mean` | mean of `vibration_mm_s` |
//! | 16 | `vibration_max` | max of `vibration_mm_s`; missing if none |
//! | 17 | `rpm_mean` | mean of `rpm` |
//! | 18 | `window_readings` | number of readings in the window, present values or not (1..=WINDOW) |
//!
//! GPS position, odometer and fuel are not signals of the modelled failures;
//! fuel is kept only as a weak context feature, position and odometer are
//! left out so the model cannot learn where or which vehicle it is.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt::Write as _;

use crate::telemetry::reading::Reading;

/// Readings per device in a rolling window (the current one included).
pub const WINDOW: usize = 10;

/// Feature names, in model column order.
pub const FEATURE_NAMES: &[&str] = &[
    "speed_kmph",
    "rpm",
    "engine_temp_c",
    "coolant_temp_c",
    "oil_pressure_kpa",
    "battery_voltage",
    "vibration_mm_s",
    "fuel_level_percent",
    "oil_kpa_per_krpm",
    "engine_temp_slope_c_per_h",
    "engine_temp_mean",
    "coolant_temp_mean",
    "oil_kpa_per_krpm_mean",
    "battery_voltage_mean",
    "battery_voltage_dev",
    "vibration_mean",
    "vibration_max",
    "rpm_mean",
    "window_readings",
];

/// Raw fields read from each reading, in feature order (features 0–7).
const RAW: [&str; 8] = [
    "speed_kmph",
    "rpm",
    "engine_temp_c",
    "coolant_temp_c",
    "oil_pressure_kpa",
    "battery_voltage",
    "vibration_mm_s",
    "fuel_level_percent",
];
const SPEED: usize = 0;
const RPM: usize = 1;
const ENGINE: usize = 2;
const COOLANT: usize = 3;
const OIL: usize = 4;
const VOLTS: usize = 5;
const VIB: usize = 6;
/// Index of the derived `oil_kpa_per_krpm` in the per-reading base values.
const OIL_PER_KRPM: usize = 8;
const N_BASE: usize = 9;

/// Per-reading base values (raw fields plus oil per krpm), `NaN` if missing.
fn base(r: &Reading) -> [f64; N_BASE] {
    let mut b = [f64::NAN; N_BASE];
    for (slot, name) in b.iter_mut().zip(RAW) {
        if let Some(v) = r.number(name) {
            *slot = v;
        }
    }
    if b[RPM] >= 400.0 && !b[OIL].is_nan() {
        b[OIL_PER_KRPM] = b[OIL] / (b[RPM] / 1000.0);
    }
    b
}

/// Mean of the present values, oldest first; `NaN` if none.
fn mean(window: &[usize], bases: &[[f64; N_BASE]], k: usize) -> f64 {
    let (mut sum, mut n) = (0.0f64, 0.0f64);
    for &j in window {
        let v = bases[j][k];
        if !v.is_nan() {
            sum += v;
            n += 1.0;
        }
    }
    if n > 0.0 { sum / n } else { f64::NAN }
}

fn max(window: &[usize], bases: &[[f64; N_BASE]], k: usize) -> f64 {
    let mut m = f64::NAN;
    for &j in window {
        let v = bases[j][k];
        if !v.is_nan() && (m.is_nan() || v > m) {
            m = v;
        }
    }
    m
}

/// Least-squares slope of engine temperature (°C per hour) over the window.
fn temp_slope(window: &[usize], bases: &[[f64; N_BASE]], times: &[i64], now: i64) -> f64 {
    let x = |j: usize| (times[j] - now) as f64 / 3_600_000.0;
    let (mut sx, mut sy, mut n) = (0.0f64, 0.0f64, 0.0f64);
    for &j in window {
        let y = bases[j][ENGINE];
        if !y.is_nan() {
            sx += x(j);
            sy += y;
            n += 1.0;
        }
    }
    if n < 3.0 {
        return f64::NAN;
    }
    let (mx, my) = (sx / n, sy / n);
    let (mut sxy, mut sxx) = (0.0f64, 0.0f64);
    for &j in window {
        let y = bases[j][ENGINE];
        if !y.is_nan() {
            let dx = x(j) - mx;
            sxy += dx * (y - my);
            sxx += dx * dx;
        }
    }
    if sxx > 0.0 { sxy / sxx } else { f64::NAN }
}

/// Feature rows for `readings`, row-major: `readings.len() *
/// FEATURE_NAMES.len()` values, `f32::NAN` for missing.
pub fn extract(readings: &[Reading]) -> Vec<f32> {
    let nf = FEATURE_NAMES.len();
    let mut out = Vec::with_capacity(readings.len() * nf);
    let bases: Vec<[f64; N_BASE]> = readings.iter().map(base).collect();
    let times: Vec<i64> = readings.iter().map(|r| r.timestamp.unix_millis()).collect();
    // Each device's last WINDOW reading indices, oldest first.
    let mut recent: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, r) in readings.iter().enumerate() {
        let w = match recent.entry(r.device_id.as_str()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(Vec::with_capacity(WINDOW)),
        };
        if w.len() == WINDOW {
            w.remove(0);
        }
        w.push(i);
        let b = &bases[i];
        let volts_mean = mean(w, &bases, VOLTS);
        let row = [
            b[SPEED],
            b[RPM],
            b[ENGINE],
            b[COOLANT],
            b[OIL],
            b[VOLTS],
            b[VIB],
            b[7],
            b[OIL_PER_KRPM],
            temp_slope(w, &bases, &times, times[i]),
            mean(w, &bases, ENGINE),
            mean(w, &bases, COOLANT),
            mean(w, &bases, OIL_PER_KRPM),
            volts_mean,
            b[VOLTS] - volts_mean,
            mean(w, &bases, VIB),
            max(w, &bases, VIB),
            mean(w, &bases, RPM),
            w.len() as f64,
        ];
        debug_assert_eq!(row.len(), nf);
        out.extend(row.iter().map(|&v| v as f32));
    }
    out
}

/// One row in the SageMaker built-in XGBoost CSV contract: no header, no
/// label column, values comma-separated in [`FEATURE_NAMES`] order, an
/// empty cell for a missing value. Values are written in Rust's shortest
/// round-trip form, so the container parses back the very same `f32`.
/// Infinities cannot come from [`extract`]; they are written as missing
/// because the CSV contract has no spelling for them.
pub fn csv_row(features: &[f32]) -> String {
    let mut s = String::with_capacity(features.len() * 8);
    for (i, v) in features.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        if v.is_finite() {
            // Writing to a String cannot fail.
            let _ = write!(s, "{v}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::reading::{Number, Timestamp, Value};

    fn reading(dev: &str, secs: i64, fields: &[(&str, f64)]) -> Reading {
        Reading {
            device_id: dev.to_string(),
            timestamp: Timestamp::from_unix_millis(secs * 1000),
            fields: fields
                .iter()
                .map(|(n, v)| {
                    (
                        n.to_string(),
                        Value::Number(Number::parse(&v.to_string()).unwrap()),
                    )
                })
                .collect(),
        }
    }

    fn col(rows: &[f32], i: usize, name: &str) -> f32 {
        let k = FEATURE_NAMES.iter().position(|n| *n == name).unwrap();
        rows[i * FEATURE_NAMES.len() + k]
    }

    #[test]
    fn shape_and_raw_values() {
        let rs = vec![reading(
            "A",
            0,
            &[
                ("rpm", 2000.0),
                ("oil_pressure_kpa", 300.0),
                ("engine_temp_c", 90.0),
            ],
        )];
        let f = extract(&rs);
        assert_eq!(f.len(), FEATURE_NAMES.len());
        assert_eq!(col(&f, 0, "rpm"), 2000.0);
        assert_eq!(col(&f, 0, "oil_kpa_per_krpm"), 150.0);
        assert!(col(&f, 0, "speed_kmph").is_nan());
        assert!(col(&f, 0, "engine_temp_slope_c_per_h").is_nan());
        assert_eq!(col(&f, 0, "engine_temp_mean"), 90.0);
        assert_eq!(col(&f, 0, "window_readings"), 1.0);
        assert!(extract(&[]).is_empty());
    }

    #[test]
    fn oil_ratio_needs_a_running_engine() {
        let f = extract(&[reading("A", 0, &[("rpm", 0.0), ("oil_pressure_kpa", 0.0)])]);
        assert!(col(&f, 0, "oil_kpa_per_krpm").is_nan());
        assert!(col(&f, 0, "oil_kpa_per_krpm_mean").is_nan());
    }

    #[test]
    fn slope_mean_max_and_deviation_per_device() {
        // Device A heats 1 °C per 30 s = 120 °C/h; device B interleaved, flat.
        let mut rs = Vec::new();
        for k in 0..15 {
            rs.push(reading(
                "A",
                k * 30,
                &[
                    ("engine_temp_c", 80.0 + k as f64),
                    ("vibration_mm_s", k as f64),
                    ("battery_voltage", 14.0),
                ],
            ));
            rs.push(reading("B", k * 30, &[("engine_temp_c", 90.0)]));
        }
        let f = extract(&rs);
        assert!(col(&f, 0, "engine_temp_slope_c_per_h").is_nan()); // A, 1 point
        assert!(col(&f, 2, "engine_temp_slope_c_per_h").is_nan()); // A, 2 points
        assert!((col(&f, 4, "engine_temp_slope_c_per_h") - 120.0).abs() < 1e-3);
        assert_eq!(col(&f, 5, "engine_temp_slope_c_per_h"), 0.0); // B flat
        // A's 15th reading (row 28): window = readings 5..=14.
        assert_eq!(col(&f, 28, "window_readings"), 10.0);
        assert_eq!(col(&f, 28, "engine_temp_mean"), 89.5);
        assert_eq!(col(&f, 28, "vibration_mean"), 9.5);
        assert_eq!(col(&f, 28, "vibration_max"), 14.0);
        assert_eq!(col(&f, 28, "battery_voltage_dev"), 0.0);
        assert_eq!(col(&f, 29, "window_readings"), 10.0);
        assert!(col(&f, 29, "vibration_max").is_nan());
    }

    #[test]
    fn missing_values_are_skipped_in_windows() {
        let rs = vec![
            reading("A", 0, &[("battery_voltage", 14.0)]),
            reading("A", 30, &[]),
            reading("A", 60, &[("battery_voltage", 13.0)]),
        ];
        let f = extract(&rs);
        assert!(col(&f, 1, "battery_voltage_dev").is_nan());
        assert_eq!(col(&f, 1, "battery_voltage_mean"), 14.0);
        assert_eq!(col(&f, 2, "battery_voltage_mean"), 13.5);
        assert_eq!(col(&f, 2, "battery_voltage_dev"), -0.5);
    }

    #[test]
    fn csv_rows_follow_the_sagemaker_contract() {
        assert_eq!(
            csv_row(&[1.0, f32::NAN, 0.1, -2.5, f32::INFINITY, 1e-7]),
            "1,,0.1,-2.5,,0.0000001"
        );
        assert_eq!(csv_row(&[f32::NAN, f32::NAN]), ",");
        assert_eq!(csv_row(&[]), "");
        let parsed: f32 = "0.1".parse().unwrap();
        assert_eq!(parsed, 0.1f32);
    }

    /// JSONL → readings, for the fixture only (the worker has its own parser).
    fn parse_jsonl(text: &str) -> Vec<Reading> {
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let o = v.as_object().unwrap();
                let ts = time::OffsetDateTime::parse(
                    o["timestamp"].as_str().unwrap(),
                    &time::format_description::well_known::Rfc3339,
                )
                .unwrap();
                Reading {
                    device_id: o["device_id"].as_str().unwrap().to_string(),
                    timestamp: Timestamp::from_unix_millis(
                        (ts.unix_timestamp_nanos() / 1_000_000) as i64,
                    ),
                    fields: o
                        .iter()
                        .filter(|(k, _)| *k != "device_id" && *k != "timestamp")
                        .map(|(k, v)| {
                            let val = match v {
                                serde_json::Value::Number(n) => {
                                    Value::Number(Number::parse(&n.to_string()).unwrap())
                                }
                                other => {
                                    Value::Text(other.as_str().unwrap_or_default().to_string())
                                }
                            };
                            (k.clone(), val)
                        })
                        .collect(),
                }
            })
            .collect()
    }

    /// The features `model/features.py` computed at training time from a
    /// few simulator objects must be bit-identical to ours.
    #[test]
    fn identical_to_the_python_trainer() {
        let p = crate::inference::parity::fixture();
        assert_eq!(p["feature_names"], serde_json::json!(FEATURE_NAMES));
        let fixture = p["feature_fixture"].as_array().unwrap();
        assert!(!fixture.is_empty());
        for obj in fixture {
            let rows = extract(&parse_jsonl(obj["jsonl"].as_str().unwrap()));
            let want = crate::inference::parity::rows(&obj["features"]);
            assert_eq!(rows.len(), want.len(), "{}", obj["key"]);
            for (i, (a, b)) in rows.iter().zip(&want).enumerate() {
                assert!(
                    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                    "{} cell {i}: {a} vs {b}",
                    obj["key"]
                );
            }
        }
    }
}
