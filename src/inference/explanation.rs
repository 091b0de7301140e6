//! Why the embedded model flagged a vehicle: the features that pushed a
//! POSITIVE prediction most (TreeSHAP, [`super::treeshap`]), and the words
//! an operator reads in the maintenance alert.
//!
//! Only POSITIVE rows are explained (an explanation costs about a thousand
//! predictions), and only the three features pushing hardest towards
//! POSITIVE are kept: those are the reasons; features speaking against
//! maintenance are not.

use super::features::{FEATURE_NAMES, WINDOW};

/// Contributions kept per explained prediction.
pub const TOP: usize = 3;

/// One feature's part in a POSITIVE prediction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Contribution {
    /// The feature, one of [`FEATURE_NAMES`].
    pub feature: &'static str,
    /// Its value in the reading's row; `NaN` when missing (a missing value
    /// can be a reason too: it sends the row down the default branch).
    pub value: f32,
    /// How far it moved the score, in log-odds (margin): positive pushes
    /// towards POSITIVE.
    pub contribution: f32,
}

/// The [`TOP`] largest positive contributions of a row, largest first.
/// `phi` holds one value per feature then the bias; `row` the features.
pub fn top(phi: &[f64], row: &[f32]) -> Vec<Contribution> {
    let mut reasons: Vec<Contribution> = FEATURE_NAMES
        .iter()
        .zip(phi)
        .zip(row)
        .filter(|((_, c), _)| **c > 0.0)
        .map(|((feature, c), value)| Contribution {
            feature,
            value: *value,
            contribution: *c as f32,
        })
        .collect();
    reasons.sort_by(|a, b| b.contribution.total_cmp(&a.contribution));
    reasons.truncate(TOP);
    reasons
}

/// A number as an operator reads it: thousands separated, at most one
/// decimal (two for volts).
fn number(v: f32, decimals: usize) -> String {
    let text = format!("{:.*}", decimals, v.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut grouped = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    let sign = if v < 0.0 && text.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
        "-"
    } else {
        ""
    };
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

/// One reason in words, from what the feature means
/// (`src/inference/features.rs`): the window is the vehicle's last
/// readings in the same file, at most [`WINDOW`].
pub fn describe(c: &Contribution) -> String {
    let v = c.value;
    let recent = format!("its last {WINDOW} readings");
    if v.is_nan() {
        return format!("{} not reported", name(c.feature));
    }
    match c.feature {
        "speed_kmph" => format!("speed {} km/h", number(v, 0)),
        "rpm" => format!("engine at {} rpm", number(v, 0)),
        "engine_temp_c" => format!("engine temperature {} °C", number(v, 1)),
        "coolant_temp_c" => format!("coolant temperature {} °C", number(v, 1)),
        "oil_pressure_kpa" => format!("oil pressure {} kPa", number(v, 0)),
        "battery_voltage" => format!("battery at {} V", number(v, 2)),
        "vibration_mm_s" => format!("vibration {} mm/s", number(v, 1)),
        "fuel_level_percent" => format!("fuel level {} %", number(v, 0)),
        "oil_kpa_per_krpm" => format!(
            "oil pressure {} kPa per 1,000 rpm (at 2,000 rpm: {} kPa)",
            number(v, 0),
            number(2.0 * v, 0)
        ),
        "engine_temp_slope_c_per_h" if v >= 0.0 => format!(
            "engine temperature rising {} °C per hour over {recent}",
            number(v, 1)
        ),
        "engine_temp_slope_c_per_h" => format!(
            "engine temperature falling {} °C per hour over {recent}",
            number(-v, 1)
        ),
        "engine_temp_mean" => format!(
            "engine temperature averaging {} °C over {recent}",
            number(v, 1)
        ),
        "coolant_temp_mean" => format!(
            "coolant temperature averaging {} °C over {recent}",
            number(v, 1)
        ),
        "oil_kpa_per_krpm_mean" => format!(
            "oil pressure averaging {} kPa per 1,000 rpm over {recent} (at 2,000 rpm: {} kPa)",
            number(v, 0),
            number(2.0 * v, 0)
        ),
        "battery_voltage_mean" => format!("battery averaging {} V over {recent}", number(v, 2)),
        "battery_voltage_dev" if v >= 0.0 => {
            format!("battery {} V above its average over {recent}", number(v, 2))
        }
        "battery_voltage_dev" => format!(
            "battery {} V below its average over {recent}",
            number(-v, 2)
        ),
        "vibration_mean" => format!("vibration averaging {} mm/s over {recent}", number(v, 1)),
        "vibration_max" => format!("vibration peaking at {} mm/s over {recent}", number(v, 1)),
        "rpm_mean" => format!("engine averaging {} rpm over {recent}", number(v, 0)),
        "window_readings" => format!(
            "{} readings of this vehicle so far in the file",
            number(v, 0)
        ),
        other => format!("{other} = {}", number(v, 2)),
    }
}

/// What a feature is called in an alert.
fn name(feature: &str) -> &str {
    match feature {
        "speed_kmph" => "speed",
        "rpm" => "engine speed",
        "engine_temp_c" => "engine temperature",
        "coolant_temp_c" => "coolant temperature",
        "oil_pressure_kpa" => "oil pressure",
        "battery_voltage" => "battery voltage",
        "vibration_mm_s" => "vibration",
        "fuel_level_percent" => "fuel level",
        "oil_kpa_per_krpm" => "oil pressure per 1,000 rpm",
        "engine_temp_slope_c_per_h" => "engine temperature trend",
        "engine_temp_mean" => "average engine temperature",
        "coolant_temp_mean" => "average coolant temperature",
        "oil_kpa_per_krpm_mean" => "average oil pressure per 1,000 rpm",
        "battery_voltage_mean" => "average battery voltage",
        "battery_voltage_dev" => "battery voltage against its average",
        "vibration_mean" => "average vibration",
        "vibration_max" => "peak vibration",
        "rpm_mean" => "average engine speed",
        "window_readings" => "readings so far",
        other => other,
    }
}

/// The reasons in words for the alert, `…; …; …`; `None` without any.
pub fn sentence(reasons: &[Contribution]) -> Option<String> {
    if reasons.is_empty() {
        return None;
    }
    let parts: Vec<String> = reasons.iter().map(describe).collect();
    Some(parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_pushes_towards_positive_are_the_reasons() {
        let mut phi = vec![0.0; FEATURE_NAMES.len() + 1];
        let mut row = vec![1.0f32; FEATURE_NAMES.len()];
        phi[2] = 0.5; // engine_temp_c
        phi[8] = 1.5; // oil_kpa_per_krpm
        phi[9] = -2.0; // against: not a reason
        phi[16] = 0.7; // vibration_max
        phi[17] = 0.1;
        phi[FEATURE_NAMES.len()] = 9.0; // the bias is no feature
        row[8] = 46.0;
        let reasons = top(&phi, &row);
        assert_eq!(
            reasons.iter().map(|c| c.feature).collect::<Vec<_>>(),
            ["oil_kpa_per_krpm", "vibration_max", "engine_temp_c"]
        );
        assert_eq!(reasons[0].value, 46.0);
        assert!(top(&[0.0; 20], &row).is_empty());
    }

    #[test]
    fn reasons_read_as_an_operator_speaks() {
        let c = |feature, value| Contribution {
            feature,
            value,
            contribution: 1.0,
        };
        assert_eq!(
            describe(&c("oil_kpa_per_krpm", 46.2)),
            "oil pressure 46 kPa per 1,000 rpm (at 2,000 rpm: 92 kPa)"
        );
        assert_eq!(
            describe(&c("engine_temp_slope_c_per_h", -12.04)),
            "engine temperature falling 12.0 °C per hour over its last 10 readings"
        );
        assert_eq!(
            describe(&c("battery_voltage_dev", -0.412)),
            "battery 0.41 V below its average over its last 10 readings"
        );
        assert_eq!(
            describe(&c("rpm_mean", 2150.0)),
            "engine averaging 2,150 rpm over its last 10 readings"
        );
        assert_eq!(
            describe(&c("vibration_max", f32::NAN)),
            "peak vibration not reported"
        );
        assert_eq!(
            sentence(&[c("engine_temp_c", 104.31), c("speed_kmph", 12.0)]).unwrap(),
            "engine temperature 104.3 °C; speed 12 km/h"
        );
        assert_eq!(sentence(&[]), None);
        assert_eq!(number(-0.04, 1), "0.0");
        assert_eq!(number(1_234_567.0, 0), "1,234,567");
    }
}
