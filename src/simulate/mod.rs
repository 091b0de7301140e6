//! Fleet simulator: deterministic, realistic vehicle telemetry with known
//! failures, for training and scoring the maintenance model and as the load
//! generator for benchmarks. Pure generation: no AWS, no clock, no I/O except
//! [`write_to_dir`].
//!
//! # Output
//! One file ("object") per vehicle per upload window (`window_secs`, aligned
//! to multiples of the window in Unix time), yielded in time order (window by
//! window, vehicle by vehicle) with a relative key such as
//! `VHC0001/2025-10-19T22-00-00Z.jsonl.gz`. Windows in which a vehicle sent
//! nothing (it had already failed) produce no file. Formats:
//! - `text`: the original fleet sentence, `device_id VHC0001 reported at
//!   timestamp 19-10-2025 22:47:30 with speed_kmph 73, rpm 2100, ...,
//!   odometer_km 10365.2, and status ok.` (day-first `DD-MM-YYYY HH:MM:SS`, UTC);
//! - `jsonl`: one JSON object per line, RFC 3339 `...Z` timestamps;
//! - `csv`: header row, RFC 3339 timestamps, empty cell for a missing value.
//!
//! Fields: `device_id, timestamp, speed_kmph, rpm, engine_temp_c,
//! coolant_temp_c, oil_pressure_kpa, battery_voltage, vibration_mm_s,
//! fuel_level_percent, gps_latitude, gps_longitude, odometer_km, status`
//! (`ok`, or `warning` when the dashboard would light up: engine above
//! 105 °C, or running with voltage below 12.0 V or oil below 100 kPa above
//! 1000 rpm). Each numeric field is independently missing from 0.1 % of
//! readings (sensor glitches).
//!
//! # Vehicles
//! Every vehicle has its own traits (home region, climate, shift hours,
//! thermostat, oil-pump and alternator characteristics, baseline vibration)
//! and a duty cycle: parked outside its 8–12 h daily shift (it then sends a
//! heartbeat every 15 minutes instead of every interval), and on shift a
//! Markov chain of idle (~4 min), city stop-and-go (~15 min) and highway
//! (~40 min) segments. Ambient temperature follows a daily sine cycle
//! (coolest ~03:00, warmest ~15:00 local). Engine temperature lags towards
//! thermostat + load heating (or towards ambient when parked); oil pressure
//! rises with rpm and falls with hot oil; the alternator holds ~14 V while
//! running.
//!
//! # Failure modes
//! A fraction `failure_rate` of vehicles develops one failure mode. Its
//! severity `s` rises from 0 at degradation onset (36–96 h before the
//! failure) as the square of elapsed time to 1 at failure, so it is subtle
//! for most of that period and accelerates at the end. At failure the
//! vehicle breaks down and reports nothing more. Signatures at severity `s`:
//! - `cooling_system`: engine temperature target rises by `s·(3 + 16·load)` °C
//!   (load = 0 at idle … 1 at ~3000 rpm), coolant follows, +2·s °C more;
//!   a plain `engine_temp_c > 100` rule sees it only late, under load.
//! - `oil_pump`: oil pressure at any given rpm falls by `50·s` %.
//! - `battery`: running voltage sags by `1.6·s` V (`1.95·s` at idle); the
//!   resting voltage drifts down by `0.7·s` V.
//! - `bearing`: vibration rises by `s·(4 + 0.002·rpm)` mm/s, with ±30 %
//!   jitter and occasional 2–6 mm/s spikes.
//!
//! # Determinism
//! The same [`SimConfig`] produces identical bytes on every platform: a
//! self-contained xoshiro256** PRNG per vehicle (see [`rng`]) and only
//! exactly-rounded float operations. Vehicle `i`'s data depends only on the
//! seed, `i` and the time settings, not on the fleet size (except for the
//! zero-padding width of device ids beyond 9999 vehicles).

pub mod command;
pub mod format;
pub mod rng;
pub mod upload;
pub mod vehicle;

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use vehicle::{Sample, Vehicle};

/// Output encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SimFormat {
    /// The original fleet sentence format.
    Text,
    /// JSON Lines.
    #[serde(rename = "jsonl")]
    #[value(name = "jsonl")]
    JsonLines,
    /// CSV with a header row.
    Csv,
}

impl SimFormat {
    /// File extension, without the `.gz`.
    pub fn extension(self) -> &'static str {
        match self {
            SimFormat::Text => "txt",
            SimFormat::JsonLines => "jsonl",
            SimFormat::Csv => "csv",
        }
    }
}

impl std::str::FromStr for SimFormat {
    type Err = SimError;
    fn from_str(s: &str) -> Result<SimFormat, SimError> {
        match s {
            "text" | "txt" => Ok(SimFormat::Text),
            "jsonl" | "json" => Ok(SimFormat::JsonLines),
            "csv" => Ok(SimFormat::Csv),
            other => Err(SimError::Config(format!(
                "unknown format {other:?} (expected text, jsonl or csv)"
            ))),
        }
    }
}

/// What to simulate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimConfig {
    pub vehicles: u32,
    pub hours: f64,
    /// Seconds between readings of a running vehicle.
    pub interval_secs: u32,
    pub seed: u64,
    pub format: SimFormat,
    pub gzip: bool,
    /// One file per vehicle per window of this many seconds.
    pub window_secs: u32,
    /// Start of the simulated period.
    pub start_unix_secs: i64,
    /// Fraction of vehicles that develop a failure mode (0..=1).
    pub failure_rate: f64,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            vehicles: 10,
            hours: 24.0,
            interval_secs: 30,
            seed: 1,
            format: SimFormat::JsonLines,
            gzip: false,
            window_secs: 3600,
            start_unix_secs: 1_760_832_000, // 2025-10-19T00:00:00Z
            failure_rate: 0.3,
        }
    }
}

impl SimConfig {
    /// Refuses configurations that cannot produce sensible output.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |m: &str| Err(SimError::Config(m.to_string()));
        if self.vehicles == 0 {
            return bad("vehicles must be at least 1");
        }
        if !(self.hours.is_finite() && self.hours > 0.0 && self.hours <= 24.0 * 3660.0) {
            return bad("hours must be a positive number of at most ten years");
        }
        if self.interval_secs == 0 {
            return bad("interval must be at least 1 second");
        }
        if self.window_secs == 0 {
            return bad("window must be at least 1 second");
        }
        if !(0.0..=1.0).contains(&self.failure_rate) {
            return bad("failure_rate must be between 0 and 1");
        }
        Ok(())
    }

    fn total_ticks(&self) -> i64 {
        (self.hours * 3600.0 / f64::from(self.interval_secs)).floor() as i64
    }
}

/// The failure a vehicle develops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    CoolingSystem,
    OilPump,
    Battery,
    Bearing,
}

/// Ground truth for one vehicle. Times may lie outside the simulated period
/// (degradation that began before it, failures after it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VehicleTruth {
    pub device_id: String,
    pub failure_mode: Option<FailureMode>,
    pub failure_unix_secs: Option<i64>,
    pub degradation_start_unix_secs: Option<i64>,
}

/// One generated object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimFile {
    /// Relative object key, e.g. `VHC0001/2025-10-19T22-00-00Z.jsonl.gz`.
    pub key: String,
    pub device_id: String,
    pub window_start_unix_secs: i64,
    /// Number of readings in the file.
    pub readings: usize,
    /// File content (gzip-compressed if the config says so).
    pub bytes: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid simulator configuration: {0}")]
    Config(String),
    #[error("writing {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("encoding ground truth: {0}")]
    Json(#[from] serde_json::Error),
}

/// Which vehicle fails, how and when. Computed from the seed alone, without
/// simulating any readings.
pub fn ground_truth(cfg: &SimConfig) -> Vec<VehicleTruth> {
    (0..cfg.vehicles)
        .map(|i| vehicle::Traits::draw(cfg, i).truth)
        .collect()
}

/// Iterator over the generated files, in time order. Memory use is one
/// vehicle state per vehicle plus one file.
pub struct Files {
    cfg: SimConfig,
    vehicles: Vec<Vehicle>,
    window_starts: i64,
    n_windows: i64,
    window: i64,
    vehicle: usize,
    total_ticks: i64,
    /// Next tick each vehicle will simulate (they advance window by window).
    next_tick: Vec<i64>,
    buf: Vec<u8>,
}

/// Generates the fleet's files one at a time.
pub fn files(cfg: &SimConfig) -> Result<Files, SimError> {
    cfg.validate()?;
    let w = i64::from(cfg.window_secs);
    let first = cfg.start_unix_secs.div_euclid(w) * w;
    let end = cfg.start_unix_secs + cfg.total_ticks() * i64::from(cfg.interval_secs);
    let n_windows = (end - first + w - 1).div_euclid(w).max(0);
    Ok(Files {
        cfg: cfg.clone(),
        vehicles: (0..cfg.vehicles).map(|i| Vehicle::new(cfg, i)).collect(),
        window_starts: first,
        n_windows,
        window: 0,
        vehicle: 0,
        total_ticks: cfg.total_ticks(),
        next_tick: vec![0; cfg.vehicles as usize],
        buf: Vec::new(),
    })
}

impl Files {
    /// Simulates vehicle `vi` over window `[ws, we)` into `self.buf`;
    /// returns the number of readings.
    fn fill(&mut self, vi: usize, we: i64) -> usize {
        let cfg = &self.cfg;
        let interval = i64::from(cfg.interval_secs);
        let dt = f64::from(cfg.interval_secs);
        let v = &mut self.vehicles[vi];
        let device_id = v.traits.device_id.clone();
        self.buf.clear();
        format::header(cfg.format, &mut self.buf);
        let mut n = 0;
        let mut tick = self.next_tick[vi];
        while tick < self.total_ticks {
            let t = cfg.start_unix_secs + tick * interval;
            if t >= we {
                break;
            }
            tick += 1;
            if v.failed_by(t) {
                continue;
            }
            let sample: Option<Sample> = v.step(t, dt, cfg.interval_secs);
            if let Some(s) = sample {
                format::push_reading(cfg.format, &device_id, &s, &mut self.buf);
                n += 1;
            }
        }
        self.next_tick[vi] = tick;
        n
    }
}

impl Iterator for Files {
    type Item = SimFile;

    fn next(&mut self) -> Option<SimFile> {
        let w = i64::from(self.cfg.window_secs);
        while self.window < self.n_windows {
            let ws = self.window_starts + self.window * w;
            let vi = self.vehicle;
            self.vehicle += 1;
            if self.vehicle == self.vehicles.len() {
                self.vehicle = 0;
                self.window += 1;
            }
            let n = self.fill(vi, ws + w);
            if n == 0 {
                continue;
            }
            let device_id = self.vehicles[vi].traits.device_id.clone();
            let mut key = format!(
                "{device_id}/{}.{}",
                format::key_time(ws),
                self.cfg.format.extension()
            );
            let bytes = if self.cfg.gzip {
                key.push_str(".gz");
                gzip(&self.buf)
            } else {
                self.buf.clone()
            };
            return Some(SimFile {
                key,
                device_id,
                window_start_unix_secs: ws,
                readings: n,
                bytes,
            });
        }
        None
    }
}

/// Fast gzip (level 1): the simulator is a load generator, and level 1
/// still shrinks this repetitive text ~5x. Writing to a `Vec` cannot fail.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4),
        flate2::Compression::fast(),
    );
    match enc.write_all(data).and_then(|()| enc.finish()) {
        Ok(v) => v,
        // Unreachable for an in-memory Vec; fall back to uncompressed
        // rather than panic.
        Err(_) => data.to_vec(),
    }
}

/// What [`write_to_dir`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteSummary {
    pub files: usize,
    pub readings: usize,
    pub bytes: u64,
}

/// The `ground_truth.json` document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroundTruthFile {
    pub config: SimConfig,
    pub vehicles: Vec<VehicleTruth>,
}

/// Writes every file under `dir` (creating `dir/VHC0001/...`) and
/// `dir/ground_truth.json` (the config and [`ground_truth`]).
pub fn write_to_dir(cfg: &SimConfig, dir: &Path) -> Result<WriteSummary, SimError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| SimError::Io { path, source }
    };
    let mut summary = WriteSummary::default();
    let mut made_dirs = std::collections::HashSet::new();
    for file in files(cfg)? {
        let path = dir.join(&file.key);
        if let Some(parent) = path.parent()
            && made_dirs.insert(parent.to_path_buf())
        {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, &file.bytes).map_err(io(&path))?;
        summary.files += 1;
        summary.readings += file.readings;
        summary.bytes += file.bytes.len() as u64;
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let truth = GroundTruthFile {
        config: cfg.clone(),
        vehicles: ground_truth(cfg),
    };
    let path = dir.join("ground_truth.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&truth)?).map_err(io(&path))?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(seed: u64, format: SimFormat, gzip: bool) -> SimConfig {
        SimConfig {
            vehicles: 5,
            hours: 30.0,
            seed,
            format,
            gzip,
            ..SimConfig::default()
        }
    }

    fn all_bytes(c: &SimConfig) -> Vec<(String, Vec<u8>)> {
        files(c).unwrap().map(|f| (f.key, f.bytes)).collect()
    }

    #[test]
    fn same_seed_same_bytes_different_seed_different() {
        for format in [SimFormat::Text, SimFormat::JsonLines, SimFormat::Csv] {
            let a = all_bytes(&cfg(7, format, true));
            assert_eq!(a, all_bytes(&cfg(7, format, true)));
            assert_ne!(a, all_bytes(&cfg(8, format, true)));
        }
        assert_eq!(
            ground_truth(&cfg(7, SimFormat::Csv, false)),
            ground_truth(&cfg(7, SimFormat::Text, true))
        );
        assert_ne!(
            ground_truth(&cfg(7, SimFormat::Csv, false)),
            ground_truth(&cfg(9, SimFormat::Csv, false))
        );
    }

    #[test]
    fn vehicle_data_does_not_depend_on_fleet_size() {
        let small = all_bytes(&SimConfig {
            vehicles: 2,
            ..cfg(3, SimFormat::JsonLines, false)
        });
        let big = all_bytes(&SimConfig {
            vehicles: 6,
            ..cfg(3, SimFormat::JsonLines, false)
        });
        for f in &small {
            assert!(big.contains(f), "{} differs", f.0);
        }
    }

    #[test]
    fn keys_windows_and_formats() {
        let c = SimConfig {
            vehicles: 2,
            hours: 2.0,
            start_unix_secs: 1_760_914_050,
            ..cfg(1, SimFormat::Text, false)
        };
        let fs: Vec<SimFile> = files(&c).unwrap().collect();
        assert!(
            fs.iter()
                .any(|f| f.key == "VHC0001/2025-10-19T22-00-00Z.txt"),
            "{:?}",
            fs.iter().map(|f| &f.key).collect::<Vec<_>>()
        );
        // Windows are aligned and in time order.
        for pair in fs.windows(2) {
            assert!(pair[0].window_start_unix_secs <= pair[1].window_start_unix_secs);
        }
        let text = String::from_utf8(fs[0].bytes.clone()).unwrap();
        let line = text.lines().next().unwrap();
        assert!(
            line.starts_with(
                "device_id VHC0001 reported at timestamp 19-10-2025 22:47:30 with speed_kmph "
            ),
            "{line}"
        );
        assert!(
            line.ends_with(", and status ok.") || line.ends_with(", and status warning."),
            "{line}"
        );

        let csv = files(&SimConfig {
            format: SimFormat::Csv,
            ..c.clone()
        })
        .unwrap()
        .next()
        .unwrap();
        let csv = String::from_utf8(csv.bytes).unwrap();
        let mut lines = csv.lines();
        assert_eq!(
            lines.next().unwrap(),
            "device_id,timestamp,speed_kmph,rpm,engine_temp_c,coolant_temp_c,oil_pressure_kpa,battery_voltage,vibration_mm_s,fuel_level_percent,gps_latitude,gps_longitude,odometer_km,status"
        );
        assert!(
            lines
                .next()
                .unwrap()
                .starts_with("VHC0001,2025-10-19T22:47:30Z,")
        );

        let js = files(&SimConfig {
            format: SimFormat::JsonLines,
            gzip: true,
            ..c
        })
        .unwrap()
        .next()
        .unwrap();
        assert!(js.key.ends_with(".jsonl.gz"));
        let mut plain = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&js.bytes[..]), &mut plain)
            .unwrap();
        let first: serde_json::Value = serde_json::from_str(plain.lines().next().unwrap()).unwrap();
        assert_eq!(first["device_id"], "VHC0001");
        assert_eq!(first["timestamp"], "2025-10-19T22:47:30Z");
        assert!(first["odometer_km"].is_number());
    }

    #[test]
    fn failing_vehicles_show_their_signature_and_stop() {
        let c = SimConfig {
            vehicles: 40,
            hours: 24.0 * 6.0,
            interval_secs: 60,
            failure_rate: 1.0,
            ..SimConfig::default()
        };
        let truth = ground_truth(&c);
        let mut last_seen = std::collections::HashMap::new();
        for f in files(&c).unwrap() {
            let text = String::from_utf8(f.bytes).unwrap();
            let last = text.lines().last().unwrap();
            let v: serde_json::Value = serde_json::from_str(last).unwrap();
            let ts = v["timestamp"].as_str().unwrap().to_string();
            last_seen.insert(f.device_id.clone(), ts);
        }
        for t in truth {
            let fail = t.failure_unix_secs.unwrap();
            let end = c.start_unix_secs + (c.hours * 3600.0) as i64;
            if fail < end {
                let mut expect = Vec::new();
                format::push_rfc3339(&mut expect, fail);
                assert!(
                    last_seen[&t.device_id].as_bytes() < &expect[..],
                    "{} reported after failure",
                    t.device_id
                );
            }
        }
    }

    #[test]
    fn write_to_dir_writes_files_and_truth() {
        let dir = std::env::temp_dir().join(format!("fleetwatch-sim-test-{}", std::process::id()));
        let c = SimConfig {
            vehicles: 3,
            hours: 3.0,
            ..SimConfig::default()
        };
        let s = write_to_dir(&c, &dir).unwrap();
        assert!(s.files >= 9 && s.readings > 0);
        let truth: GroundTruthFile =
            serde_json::from_slice(&std::fs::read(dir.join("ground_truth.json")).unwrap()).unwrap();
        assert_eq!(truth.vehicles.len(), 3);
        assert_eq!(truth.config, c);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_configs_are_refused() {
        assert!(
            files(&SimConfig {
                vehicles: 0,
                ..SimConfig::default()
            })
            .is_err()
        );
        assert!(
            files(&SimConfig {
                hours: f64::NAN,
                ..SimConfig::default()
            })
            .is_err()
        );
        assert!(
            files(&SimConfig {
                interval_secs: 0,
                ..SimConfig::default()
            })
            .is_err()
        );
        assert!("xml".parse::<SimFormat>().is_err());
        assert_eq!("jsonl".parse::<SimFormat>().unwrap(), SimFormat::JsonLines);
    }
}
