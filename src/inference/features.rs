//! Model features computed from parsed readings: the exact contract between
//! the worker and the model trained by `model-training/train.py`.
//!
//! Any change here must be mirrored in `model-training/features.py` and the model
//! retrained; the parity fixture in `model-artifacts/fleetwatch.parity.json` checks
//! that both sides agree.
//!
//! # Definition
//! Readings are taken **in the order they appear in the object** (never
//! re-sorted) and grouped by `device_id`. For reading `i` of a device, its
//! *window* is that device's last [`WINDOW`] readings of the same object up
//! to and including `i` (fewer at the start of the object). Readings from
//! other objects are never used: the worker is stateless between objects.
//! The worker computes rows chunk by chunk through a [`FeatureContext`],
//! which carries each device's window over, so the split into chunks
//! changes nothing. It tracks at most [`MAX_CONTEXT_DEVICES`] devices per
//! object: past that, the device seen least recently is forgotten, and its
//! next reading starts a new window (counted in
//! `fleetwatch_feature_context_evictions_total`).
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

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;

use crate::metrics;
use crate::telemetry::reading::{Reading, Value};

/// Readings per device in a rolling window (the current one included).
pub const WINDOW: usize = 10;

/// The most devices whose windows one object's [`FeatureContext`] keeps.
/// A device costs about 1 KB (its window of [`WINDOW`] points of 80 bytes,
/// its id and bookkeeping), so the cap bounds an object's feature state at
/// about 10 MB, 80 MB with the default 8 objects in flight: affordable in
/// a 512 MB task, and enough for an aggregator uploading a fleet of 10,000
/// vehicles in one object without any window being cut short.
pub const MAX_CONTEXT_DEVICES: usize = 10_000;

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

/// Raw fields read from each reading are features 0–7 ([`raw_slot`]).
const SPEED: usize = 0;
const RPM: usize = 1;
const ENGINE: usize = 2;
const COOLANT: usize = 3;
const OIL: usize = 4;
const VOLTS: usize = 5;
const VIB: usize = 6;
const FUEL: usize = 7;
/// Index of the derived `oil_kpa_per_krpm` in the per-reading base values.
const OIL_PER_KRPM: usize = 8;
const N_BASE: usize = 9;

/// The slot of a raw field in the base values: its feature's column.
fn raw_slot(name: &str) -> Option<usize> {
    Some(match name {
        "speed_kmph" => SPEED,
        "rpm" => RPM,
        "engine_temp_c" => ENGINE,
        "coolant_temp_c" => COOLANT,
        "oil_pressure_kpa" => OIL,
        "battery_voltage" => VOLTS,
        "vibration_mm_s" => VIB,
        "fuel_level_percent" => FUEL,
        _ => return None,
    })
}

/// Per-reading base values (raw fields plus oil per krpm), `NaN` if missing.
/// One pass over the reading's fields (their names are unique), not one
/// search per raw field.
fn base(r: &Reading) -> [f64; N_BASE] {
    let mut b = [f64::NAN; N_BASE];
    for (name, value) in &r.fields {
        if let (Some(slot), Value::Number(n)) = (raw_slot(name), value) {
            b[slot] = n.as_f64();
        }
    }
    if b[RPM] >= 400.0 && !b[OIL].is_nan() {
        b[OIL_PER_KRPM] = b[OIL] / (b[RPM] / 1000.0);
    }
    b
}

/// What the features need of one reading: its base values and its time.
#[derive(Debug, Clone, Copy)]
struct Point {
    base: [f64; N_BASE],
    /// Unix milliseconds, for the temperature slope.
    time: i64,
}

/// A device's window, oldest first.
type Window = [Point];

/// Mean of the present values, oldest first; `NaN` if none.
fn mean(window: &Window, k: usize) -> f64 {
    let (mut sum, mut n) = (0.0f64, 0.0f64);
    for p in window {
        let v = p.base[k];
        if !v.is_nan() {
            sum += v;
            n += 1.0;
        }
    }
    if n > 0.0 { sum / n } else { f64::NAN }
}

fn max(window: &Window, k: usize) -> f64 {
    let mut m = f64::NAN;
    for p in window {
        let v = p.base[k];
        if !v.is_nan() && (m.is_nan() || v > m) {
            m = v;
        }
    }
    m
}

/// Least-squares slope of engine temperature (°C per hour) over the window.
fn temp_slope(window: &Window, now: i64) -> f64 {
    let x = |p: &Point| (p.time - now) as f64 / 3_600_000.0;
    let (mut sx, mut sy, mut n) = (0.0f64, 0.0f64, 0.0f64);
    for p in window {
        let y = p.base[ENGINE];
        if !y.is_nan() {
            sx += x(p);
            sy += y;
            n += 1.0;
        }
    }
    if n < 3.0 {
        return f64::NAN;
    }
    let (mx, my) = (sx / n, sy / n);
    let (mut sxy, mut sxx) = (0.0f64, 0.0f64);
    for p in window {
        let y = p.base[ENGINE];
        if !y.is_nan() {
            let dx = x(p) - mx;
            sxy += dx * (y - my);
            sxx += dx * dx;
        }
    }
    if sxx > 0.0 { sxy / sxx } else { f64::NAN }
}

/// The feature row of the newest point of `window` (its last).
fn row(window: &Window, p: &Point) -> [f64; 19] {
    let b = &p.base;
    let volts_mean = mean(window, VOLTS);
    [
        b[SPEED],
        b[RPM],
        b[ENGINE],
        b[COOLANT],
        b[OIL],
        b[VOLTS],
        b[VIB],
        b[FUEL],
        b[OIL_PER_KRPM],
        temp_slope(window, p.time),
        mean(window, ENGINE),
        mean(window, COOLANT),
        mean(window, OIL_PER_KRPM),
        volts_mean,
        b[VOLTS] - volts_mean,
        mean(window, VIB),
        max(window, VIB),
        mean(window, RPM),
        window.len() as f64,
    ]
}

/// Feature rows for `readings` taken as one whole object, row-major:
/// `readings.len() * FEATURE_NAMES.len()` values, `f32::NAN` for missing.
pub fn extract(readings: &[Reading]) -> Vec<f32> {
    FeatureContext::new(usize::MAX).extract(readings)
}

/// The rolling windows of one object's devices, carried from one chunk of
/// readings to the next, so that rows computed chunk by chunk equal the
/// rows of the whole object (bit for bit: the same values are summed in the
/// same order). Bounded: at most `max_devices` devices, the least recently
/// seen forgotten first.
#[derive(Debug)]
pub struct FeatureContext {
    /// The most devices kept; see [`MAX_CONTEXT_DEVICES`].
    max_devices: usize,
    /// Each kept device's slot in `slots`.
    devices: HashMap<Arc<str>, usize>,
    /// The kept devices' state; a slot freed by an eviction is reused.
    slots: Vec<Slot>,
    /// Slots freed by evictions.
    free: Vec<usize>,
    /// `(sequence number, slot)` of readings, oldest first. An entry is
    /// live while it matches its slot's latest sequence number (sequence
    /// numbers are never reused); the first live entry is the least
    /// recently seen device, the one evicted. Stale entries are dropped when
    /// they outnumber the devices, so this stays within twice the device
    /// count (plus a constant).
    recency: VecDeque<(u64, usize)>,
    /// The next reading's sequence number.
    next: u64,
    /// Devices added so far (one evicted and seen again counts twice).
    devices_seen: u64,
    /// Devices evicted so far.
    evictions: u64,
}

/// One kept device.
#[derive(Debug)]
struct Slot {
    /// Its id, to forget it when it is evicted.
    device: Arc<str>,
    /// Its last [`WINDOW`] points, oldest first.
    window: Vec<Point>,
    /// The sequence number of its latest reading; `u64::MAX` when free.
    last: u64,
}

impl FeatureContext {
    /// An empty context keeping at most `max_devices` devices (at least one).
    pub fn new(max_devices: usize) -> FeatureContext {
        FeatureContext {
            max_devices: max_devices.max(1),
            devices: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            recency: VecDeque::new(),
            next: 0,
            devices_seen: 0,
            evictions: 0,
        }
    }

    /// Feature rows of `readings` (row-major, `f32::NAN` for missing), each
    /// with the window of its device's earlier readings in this context;
    /// the windows then include `readings`.
    pub fn extract(&mut self, readings: &[Reading]) -> Vec<f32> {
        let mut out = Vec::with_capacity(readings.len() * FEATURE_NAMES.len());
        for r in readings {
            let p = Point {
                base: base(r),
                time: r.timestamp.unix_millis(),
            };
            let window = self.push(&r.device_id, p);
            out.extend(row(window, &p).iter().map(|&v| v as f32));
        }
        out
    }

    /// Adds a reading to its device's window and returns the window.
    fn push(&mut self, device: &str, p: Point) -> &Window {
        let seq = self.next;
        self.next += 1;
        let index = match self.devices.get(device) {
            Some(&index) => index,
            None => self.insert(device),
        };
        if self.recency.len() > 2 * self.devices.len() + 1024 {
            let slots = &self.slots;
            self.recency.retain(|&(s, i)| slots[i].last == s);
        }
        self.recency.push_back((seq, index));
        let slot = &mut self.slots[index];
        slot.last = seq;
        if slot.window.len() == WINDOW {
            slot.window.remove(0);
        }
        slot.window.push(p);
        &slot.window
    }

    /// Starts tracking a device (evicting the least recently seen one when
    /// full); returns its slot.
    fn insert(&mut self, device: &str) -> usize {
        if self.devices.len() >= self.max_devices {
            self.evict_least_recent();
        }
        let device: Arc<str> = Arc::from(device);
        let slot = Slot {
            device: Arc::clone(&device),
            window: Vec::with_capacity(WINDOW),
            last: u64::MAX,
        };
        let index = match self.free.pop() {
            Some(index) => {
                self.slots[index] = slot;
                index
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        self.devices.insert(device, index);
        self.devices_seen += 1;
        index
    }

    fn evict_least_recent(&mut self) {
        while let Some((seq, index)) = self.recency.pop_front() {
            let slot = &mut self.slots[index];
            if slot.last == seq {
                self.devices.remove(&slot.device);
                slot.last = u64::MAX;
                slot.window = Vec::new();
                self.free.push(index);
                self.evictions += 1;
                metrics::feature_context_evicted();
                return;
            }
        }
    }

    /// Devices whose windows are kept now.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// Devices added so far: the devices of the object, as long as none was
    /// evicted (one evicted and seen again counts twice).
    pub fn devices_seen(&self) -> u64 {
        self.devices_seen
    }

    /// Devices evicted so far.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }
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
    use crate::telemetry::{Number, Timestamp, Value};

    /// The raw fields fill the first eight columns, under their own names.
    #[test]
    fn raw_fields_are_the_first_feature_columns() {
        for (column, name) in FEATURE_NAMES.iter().enumerate() {
            let expected = (column < OIL_PER_KRPM).then_some(column);
            assert_eq!(raw_slot(name), expected, "{name}");
        }
    }

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

    /// The features `model-training/features.py` computed at training time from a
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

    fn same_bits(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
    }

    fn fixture_readings() -> Vec<Vec<Reading>> {
        let p = crate::inference::parity::fixture();
        p["feature_fixture"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| parse_jsonl(o["jsonl"].as_str().unwrap()))
            .collect()
    }

    /// Rows computed chunk by chunk through a context are the whole
    /// object's rows, bit for bit, whatever the chunk sizes.
    #[test]
    fn chunks_through_a_context_equal_the_whole_object() {
        for readings in fixture_readings() {
            let whole = extract(&readings);
            for size in [1, 2, 7, 10, 333] {
                let mut context = FeatureContext::new(MAX_CONTEXT_DEVICES);
                let chunked: Vec<f32> = readings
                    .chunks(size)
                    .flat_map(|c| context.extract(c))
                    .collect();
                assert!(same_bits(&whole, &chunked), "chunks of {size}");
            }
        }
    }

    /// The windows of the least recently seen devices are dropped past the
    /// cap, and counted; a forgotten device starts a new window.
    #[test]
    fn the_context_is_bounded_by_its_device_cap() {
        let mut context = FeatureContext::new(3);
        let mut rows = Vec::new();
        // A, B, C, A, D (evicts B, the least recently seen), B (evicts C).
        for (i, dev) in ["A", "B", "C", "A", "D", "B"].iter().enumerate() {
            rows.extend(context.extract(&[reading(dev, i as i64, &[("rpm", 1000.0)])]));
        }
        assert_eq!(context.len(), 3);
        assert_eq!(context.evictions(), 2);
        assert_eq!(
            context.devices_seen(),
            6 - 1,
            "A came back before any eviction"
        );
        assert_eq!(col(&rows, 3, "window_readings"), 2.0, "A kept its window");
        assert_eq!(col(&rows, 5, "window_readings"), 1.0, "B starts again");
        // Many devices, a small cap: the state never grows past it, and
        // the recency queue stays proportional to the devices kept.
        let mut context = FeatureContext::new(100);
        for round in 0..20 {
            let batch: Vec<Reading> = (0..1000)
                .map(|d| reading(&format!("D{d}"), round * 60, &[("rpm", 900.0)]))
                .collect();
            context.extract(&batch);
            assert!(context.len() <= 100);
            assert!(context.recency.len() <= 2 * context.len() + 1025);
            assert!(context.slots.len() <= 100, "evicted slots are reused");
        }
        assert_eq!(context.evictions(), 20 * 1000 - 100);
        // A cyclic fleet larger than the cap: every window restarts.
        let batch: Vec<Reading> = (0..200)
            .map(|d| reading(&format!("D{d}"), 99_999, &[]))
            .collect();
        let f = context.extract(&batch);
        assert!((0..200).all(|i| col(&f, i, "window_readings") == 1.0));
    }
}
