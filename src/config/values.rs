//! The value parsers the setting groups share: durations, bounded
//! numbers, probabilities. Each error names the setting it was given.

use std::time::Duration;

/// Parses `500ms`, `25s`, `15m`, `2h`, `400d` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| {
            format!("expected a duration like 500ms, 25s, 15m, 2h or 400d, got {s:?}")
        })?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86_400.0,
        _ => {
            return Err(format!(
                "expected a duration like 500ms, 25s, 15m, 2h or 400d, got {s:?}"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("duration {s:?} is out of range"))
}

/// A DynamoDB table name, with an error naming the variable.
pub(super) fn parse_table_name_of(s: &str, name: &str) -> Result<String, String> {
    let ok = (3..=255).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{name}: expected a DynamoDB table name, 3-255 characters of A-Z a-z 0-9 _ . -"
        ))
    }
}

/// A duration from `min` to `max`, with an error naming the variable.
pub(super) fn parse_duration_in(
    s: &str,
    name: &str,
    min: Duration,
    max: Duration,
    range: &str,
) -> Result<Duration, String> {
    let d = parse_duration(s).map_err(|e| format!("{name}: {e}"))?;
    if (min..=max).contains(&d) {
        Ok(d)
    } else {
        Err(format!("{name}: expected a duration from {range}"))
    }
}

pub(super) fn parse_bounded(s: &str, min: usize, max: usize, name: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "{name}: expected a whole number from {min} to {max}"
        )),
    }
}

pub(super) fn parse_probability(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err("expected a probability from 0 to 1".into()),
    }
}
