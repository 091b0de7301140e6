//! One simulated vehicle: its fixed traits, its failure, and the physics
//! that advances it one sampling interval at a time.
//!
//! Each vehicle draws its traits from its own PRNG stream (derived from the
//! fleet seed and its index) and its moment-to-moment noise from another, so
//! the ground truth can be computed without simulating any readings, and a
//! vehicle's data does not depend on how many other vehicles there are.

use super::rng::{self, Rng};
use super::{FailureMode, SimConfig, VehicleTruth};

/// Number of telemetry fields besides `device_id`, `timestamp` and `status`.
pub const N_FIELDS: usize = 11;

/// Field names in the order they are written, with their decimal places.
pub const FIELDS: [(&str, u32); N_FIELDS] = [
    ("speed_kmph", 0),
    ("rpm", 0),
    ("engine_temp_c", 1),
    ("coolant_temp_c", 1),
    ("oil_pressure_kpa", 1),
    ("battery_voltage", 2),
    ("vibration_mm_s", 2),
    ("fuel_level_percent", 1),
    ("gps_latitude", 6),
    ("gps_longitude", 6),
    ("odometer_km", 1),
];

/// Probability that any one field is missing from a reading (a sensor or
/// CAN-bus glitch), so that consumers meet absent values in realistic data.
const FIELD_DROPOUT: f64 = 0.001;

/// Parked vehicles report a heartbeat this often instead of every interval.
const PARKED_HEARTBEAT_SECS: u32 = 900;

/// What the vehicle is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Parked,
    Idle,
    City,
    Highway,
}

/// Fixed traits of one vehicle.
#[derive(Debug, Clone)]
pub struct Traits {
    pub device_id: String,
    home_lat: f64,
    home_lon: f64,
    ambient_mean: f64,
    ambient_swing: f64,
    /// Hours east of UTC, so shifts follow local daylight.
    utc_offset_h: f64,
    shift_start_h: f64,
    shift_len_h: f64,
    highway_bias: f64,
    thermostat_c: f64,
    temp_load_gain: f64,
    oil_base_kpa: f64,
    oil_per_rpm: f64,
    vib_base: f64,
    alt_voltage: f64,
    rest_voltage: f64,
    odometer_km: f64,
    fuel_pct: f64,
    pub truth: VehicleTruth,
}

/// The fleet-wide device id for vehicle `index` (0-based): `VHC0001`…
pub fn device_id(index: u32, vehicles: u32) -> String {
    let width = vehicles.to_string().len().max(4);
    format!("VHC{:0width$}", index + 1)
}

impl Traits {
    pub fn draw(cfg: &SimConfig, index: u32) -> Traits {
        let mut r = Rng::new(rng::derive_seed(cfg.seed, 2 * u64::from(index)));
        let device_id = device_id(index, cfg.vehicles);
        let start = cfg.start_unix_secs as f64;
        let span = cfg.hours * 3600.0;
        let failing = r.chance(cfg.failure_rate);
        let mode = match r.next_u64() % 4 {
            0 => FailureMode::CoolingSystem,
            1 => FailureMode::OilPump,
            2 => FailureMode::Battery,
            _ => FailureMode::Bearing,
        };
        // Failures land from 6 h into the run to a day past its end, so
        // a run also contains vehicles that are degrading but have not
        // failed yet (their label horizon reaches past the data).
        let fail_at = r.range(start + 6.0 * 3600.0, start + span + 24.0 * 3600.0);
        let degradation_h = r.range(36.0, 96.0);
        let truth = if failing {
            VehicleTruth {
                device_id: device_id.clone(),
                failure_mode: Some(mode),
                failure_unix_secs: Some(fail_at.floor() as i64),
                degradation_start_unix_secs: Some((fail_at - degradation_h * 3600.0).floor() as i64),
            }
        } else {
            VehicleTruth {
                device_id: device_id.clone(),
                failure_mode: None,
                failure_unix_secs: None,
                degradation_start_unix_secs: None,
            }
        };
        let home_lon = r.range(-5.0, 25.0);
        Traits {
            device_id,
            home_lat: r.range(40.0, 58.0),
            home_lon,
            ambient_mean: r.range(2.0, 28.0),
            ambient_swing: r.range(3.0, 8.0),
            utc_offset_h: (home_lon / 15.0).round(),
            shift_start_h: r.range(5.0, 9.0),
            shift_len_h: r.range(8.0, 12.0),
            highway_bias: r.range(0.1, 0.7),
            thermostat_c: r.range(86.0, 91.0),
            temp_load_gain: r.range(3.0, 6.0),
            oil_base_kpa: r.range(70.0, 110.0),
            oil_per_rpm: r.range(0.08, 0.11),
            vib_base: r.range(0.8, 2.2),
            alt_voltage: r.range(13.9, 14.4),
            rest_voltage: r.range(12.4, 12.8),
            odometer_km: r.range(5_000.0, 250_000.0),
            fuel_pct: r.range(30.0, 100.0),
            truth,
        }
    }

    /// Degradation severity at time `t`: 0 before onset, rising as the
    /// square of elapsed fraction (slow at first, accelerating) to 1 at
    /// failure.
    fn severity(&self, t: f64) -> f64 {
        match (
            self.truth.degradation_start_unix_secs,
            self.truth.failure_unix_secs,
        ) {
            (Some(onset), Some(fail)) if t > onset as f64 => {
                let x = ((t - onset as f64) / (fail - onset) as f64).min(1.0);
                x * x
            }
            _ => 0.0,
        }
    }
}

/// One generated reading, before formatting. `present` marks fields that
/// were reported.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub unix_secs: i64,
    pub values: [f64; N_FIELDS],
    pub present: [bool; N_FIELDS],
    pub warning: bool,
}

/// A vehicle's evolving state.
#[derive(Debug, Clone)]
pub struct Vehicle {
    pub traits: Traits,
    rng: Rng,
    mode: Mode,
    mode_left_s: f64,
    speed: f64,
    cruise: f64,
    engine_c: f64,
    coolant_c: f64,
    heading: f64,
    lat: f64,
    lon: f64,
    odometer: f64,
    fuel: f64,
    rest_v: f64,
    ticks_parked: u32,
}

impl Vehicle {
    pub fn new(cfg: &SimConfig, index: u32) -> Vehicle {
        let traits = Traits::draw(cfg, index);
        let mut rng = Rng::new(rng::derive_seed(cfg.seed, 2 * u64::from(index) + 1));
        let ambient = traits.ambient_mean;
        Vehicle {
            lat: traits.home_lat + rng.range(-0.05, 0.05),
            lon: traits.home_lon + rng.range(-0.05, 0.05),
            odometer: traits.odometer_km,
            fuel: traits.fuel_pct,
            rest_v: traits.rest_voltage,
            heading: rng.range(0.0, 2.0 * std::f64::consts::PI),
            traits,
            rng,
            mode: Mode::Parked,
            mode_left_s: 0.0,
            speed: 0.0,
            cruise: 95.0,
            engine_c: ambient,
            coolant_c: ambient,
            ticks_parked: 0,
        }
    }

    /// Whether the vehicle has failed (broken down, off the road) by `t`.
    pub fn failed_by(&self, t: i64) -> bool {
        self.traits.truth.failure_unix_secs.is_some_and(|f| t >= f)
    }

    fn ambient(&self, t: f64) -> f64 {
        let local_h = (t / 3600.0 + self.traits.utc_offset_h).rem_euclid(24.0);
        // Coolest near 03:00 local, warmest near 15:00.
        self.traits.ambient_mean
            + self.traits.ambient_swing * rng::sin((local_h - 9.0) * std::f64::consts::PI / 12.0)
    }

    fn on_shift(&self, t: f64) -> bool {
        let local_h = (t / 3600.0 + self.traits.utc_offset_h).rem_euclid(24.0);
        let since = (local_h - self.traits.shift_start_h).rem_euclid(24.0);
        since < self.traits.shift_len_h
    }

    fn next_mode(&mut self) {
        let hb = self.traits.highway_bias;
        let u = self.rng.f64();
        let (mode, mean_s) = match self.mode {
            Mode::Parked | Mode::Idle => {
                if u < hb * 0.5 {
                    (Mode::Highway, 2400.0)
                } else {
                    (Mode::City, 900.0)
                }
            }
            Mode::City => {
                if u < 0.35 {
                    (Mode::Idle, 240.0)
                } else if u < 0.35 + hb * 0.65 {
                    (Mode::Highway, 2400.0)
                } else {
                    (Mode::City, 900.0)
                }
            }
            Mode::Highway => {
                if u < 0.15 {
                    (Mode::Idle, 300.0)
                } else {
                    (Mode::City, 900.0)
                }
            }
        };
        self.mode = mode;
        self.mode_left_s = mean_s * self.rng.range(0.3, 1.7);
        if mode == Mode::Highway {
            self.cruise = self.rng.range(80.0, 118.0);
        }
    }

    /// Advances the vehicle by `dt` seconds to time `t` and returns the
    /// reading it reports, if it reports one at this tick.
    pub fn step(&mut self, t: i64, dt: f64, interval_secs: u32) -> Option<Sample> {
        let tf = t as f64;
        let ambient = self.ambient(tf);
        let sev = self.traits.severity(tf);
        let mode = self.traits.truth.failure_mode;
        let sev_of = |m: FailureMode| if mode == Some(m) { sev } else { 0.0 };
        let (s_cool, s_oil, s_batt, s_bear) = (
            sev_of(FailureMode::CoolingSystem),
            sev_of(FailureMode::OilPump),
            sev_of(FailureMode::Battery),
            sev_of(FailureMode::Bearing),
        );

        // Duty cycle.
        if !self.on_shift(tf) {
            self.mode = Mode::Parked;
            self.mode_left_s = 0.0;
        } else if self.mode == Mode::Parked {
            // Start of shift: warm up at idle first.
            self.mode = Mode::Idle;
            self.mode_left_s = self.rng.range(120.0, 480.0);
        } else {
            self.mode_left_s -= dt;
            if self.mode_left_s <= 0.0 {
                self.next_mode();
            }
        }

        let r = &mut self.rng;
        let target_speed = match self.mode {
            Mode::Parked | Mode::Idle => 0.0,
            // Stop-and-go: a fresh target every tick.
            Mode::City => (32.0 + 18.0 * r.normal()).clamp(0.0, 65.0),
            Mode::Highway => self.cruise + 4.0 * r.normal(),
        };
        let k = (dt / 30.0).min(1.0) * 0.6;
        self.speed = (self.speed + (target_speed - self.speed) * k).max(0.0);
        if target_speed == 0.0 && self.speed < 3.0 {
            self.speed = 0.0;
        }
        let running = self.mode != Mode::Parked;
        let rpm = match self.mode {
            Mode::Parked => 0.0,
            _ if self.speed == 0.0 => 760.0 + 25.0 * r.normal(),
            Mode::Highway => 1150.0 + 9.5 * self.speed + 70.0 * r.normal(),
            _ => (950.0 + 30.0 * self.speed + 150.0 * r.normal()).clamp(800.0, 3600.0),
        };
        let load = if running {
            ((rpm - 700.0) / 2300.0).clamp(0.0, 1.0)
        } else {
            0.0
        };

        // Temperatures: first-order lag (implicit Euler, no exp needed)
        // towards the thermostat set point plus load heating, or towards
        // ambient when the engine is off. Cooling degradation adds heat
        // mostly under load: the radiator/pump can no longer reject it.
        let t_target = if running {
            self.traits.thermostat_c
                + self.traits.temp_load_gain * load
                + 0.08 * (ambient - 20.0)
                + s_cool * (3.0 + 16.0 * load)
        } else {
            ambient
        };
        let tau = if running { 300.0 } else { 2700.0 };
        let a = dt / (tau + dt);
        self.engine_c += (t_target - self.engine_c) * a;
        let c_target = if running {
            self.engine_c - 2.0 - 2.5 * load + 2.0 * s_cool
        } else {
            ambient
        };
        self.coolant_c += (c_target - self.coolant_c) * (dt / (tau * 1.2 + dt));
        let engine_c = self.engine_c + 0.3 * r.normal();
        let coolant_c = self.coolant_c + 0.3 * r.normal();

        // Oil pressure rises with rpm, falls with hot (thin) oil; a worn
        // pump delivers less at any given rpm.
        let oil = if running {
            let visc = 1.0 - 0.004 * (engine_c - 90.0);
            ((self.traits.oil_base_kpa + self.traits.oil_per_rpm * rpm)
                * visc
                * (1.0 - 0.5 * s_oil)
                + 7.0 * r.normal())
            .max(0.0)
        } else {
            0.0
        };

        // Battery: alternator regulates while running; a failing
        // alternator/battery sags, worse at idle (low alternator speed).
        self.rest_v += (self.traits.rest_voltage - 0.7 * s_batt - self.rest_v) * 0.01;
        let volts = if running {
            let idle_sag = if self.speed == 0.0 { 0.35 } else { 0.0 };
            self.traits.alt_voltage - s_batt * (1.6 + idle_sag) + 0.05 * r.normal()
        } else {
            self.rest_v + 0.02 * r.normal()
        };

        // Vibration: engine and road components; a worn bearing adds a
        // component growing with severity and rpm, with occasional spikes.
        let vib = if running {
            let mut v =
                self.traits.vib_base + 0.0005 * rpm + 0.012 * self.speed + 0.25 * r.normal();
            if s_bear > 0.0 {
                v += s_bear * (4.0 + 0.002 * rpm) * (1.0 + 0.3 * r.normal());
                if r.chance(0.05 * s_bear) {
                    v += r.range(2.0, 6.0);
                }
            }
            v.max(0.05)
        } else {
            0.02 + 0.02 * r.f64()
        };

        // Movement, fuel, odometer.
        let km = self.speed * dt / 3600.0;
        self.odometer += km;
        self.fuel -= km * 0.12 + if running { dt / 3600.0 * 0.8 } else { 0.0 };
        if self.fuel < 12.0 && self.speed == 0.0 {
            self.fuel = r.range(92.0, 100.0);
        }
        self.fuel = self.fuel.max(0.0);
        self.heading += 0.25 * r.normal();
        // Keep the fleet near home: steer back when more than ~30 km away.
        let (dlat, dlon) = (
            self.traits.home_lat - self.lat,
            self.traits.home_lon - self.lon,
        );
        if dlat * dlat + dlon * dlon > 0.09 && r.chance(0.2) {
            self.heading = if dlat.abs() > dlon.abs() {
                if dlat > 0.0 {
                    0.0
                } else {
                    std::f64::consts::PI
                }
            } else if dlon > 0.0 {
                std::f64::consts::FRAC_PI_2
            } else {
                -std::f64::consts::FRAC_PI_2
            };
        }
        self.lat += km * rng::cos(self.heading) / 111.0;
        self.lon += km * rng::sin(self.heading) / (111.0 * rng::cos(self.lat.to_radians()));

        // Parked vehicles only send a heartbeat.
        if running {
            self.ticks_parked = 0;
        } else {
            let every = (PARKED_HEARTBEAT_SECS / interval_secs.max(1)).max(1);
            let report = self.ticks_parked.is_multiple_of(every);
            self.ticks_parked = self.ticks_parked.wrapping_add(1);
            if !report {
                return None;
            }
        }

        let values = [
            self.speed,
            rpm,
            engine_c,
            coolant_c,
            oil,
            volts,
            vib,
            self.fuel,
            self.lat,
            self.lon,
            self.odometer,
        ];
        let mut present = [true; N_FIELDS];
        for p in present.iter_mut() {
            if r.chance(FIELD_DROPOUT) {
                *p = false;
            }
        }
        let warning =
            engine_c > 105.0 || (running && (volts < 12.0 || (rpm > 1000.0 && oil < 100.0)));
        Some(Sample {
            unix_secs: t,
            values,
            present,
            warning,
        })
    }
}
