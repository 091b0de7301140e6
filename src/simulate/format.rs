//! Encodes simulated readings as text sentences, JSON Lines or CSV.
//!
//! Hand-written, allocation-light encoders: the simulator doubles as the
//! load generator, so formatting must not dominate. Numbers are written in
//! fixed-point from an integer, which is both fast and bit-for-bit the same
//! on every platform.

use super::SimFormat;
use super::vehicle::{FIELDS, Sample};

/// Civil date (year, month, day) from days since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Broken-down UTC time: (year, month, day, hour, minute, second).
pub fn utc_parts(unix_secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let (y, m, d) = civil_from_days(unix_secs.div_euclid(86_400));
    let s = unix_secs.rem_euclid(86_400) as u32;
    (y, m, d, s / 3600, s / 60 % 60, s % 60)
}

fn push_2(out: &mut Vec<u8>, v: u32) {
    out.push(b'0' + (v / 10 % 10) as u8);
    out.push(b'0' + (v % 10) as u8);
}

fn push_4(out: &mut Vec<u8>, v: i64) {
    // Years outside 0..=9999 are not produced by sane configs; write them
    // plainly rather than corrupt them.
    if (0..=9999).contains(&v) {
        push_2(out, (v / 100) as u32);
        push_2(out, (v % 100) as u32);
    } else {
        out.extend_from_slice(v.to_string().as_bytes());
    }
}

/// `2025-10-19T22:47:30Z`
pub fn push_rfc3339(out: &mut Vec<u8>, unix_secs: i64) {
    let (y, mo, d, h, mi, s) = utc_parts(unix_secs);
    push_4(out, y);
    out.push(b'-');
    push_2(out, mo);
    out.push(b'-');
    push_2(out, d);
    out.push(b'T');
    push_2(out, h);
    out.push(b':');
    push_2(out, mi);
    out.push(b':');
    push_2(out, s);
    out.push(b'Z');
}

/// `19-10-2025 22:47:30`, the day-first form of the original fleet sentences.
fn push_day_first(out: &mut Vec<u8>, unix_secs: i64) {
    let (y, mo, d, h, mi, s) = utc_parts(unix_secs);
    push_2(out, d);
    out.push(b'-');
    push_2(out, mo);
    out.push(b'-');
    push_4(out, y);
    out.push(b' ');
    push_2(out, h);
    out.push(b':');
    push_2(out, mi);
    out.push(b':');
    push_2(out, s);
}

/// Object-key-safe time, `2025-10-19T22-00-00Z` (no colons).
pub fn key_time(unix_secs: i64) -> String {
    let (y, mo, d, h, mi, s) = utc_parts(unix_secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}-{mi:02}-{s:02}Z")
}

fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

const POW10: [f64; 7] = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6];

/// Writes `v` rounded to `decimals` places (at most 6), e.g. `92.4`, `-0.5`,
/// `73`. Never writes `-0`.
pub fn push_fixed(out: &mut Vec<u8>, v: f64, decimals: u32) {
    let d = decimals.min(6) as usize;
    let scaled = (v * POW10[d]).round();
    let neg = scaled < 0.0;
    let mag = scaled.abs() as u64;
    if neg && mag != 0 {
        out.push(b'-');
    }
    let unit = POW10[d] as u64;
    push_u64(out, mag / unit);
    if d > 0 {
        out.push(b'.');
        let frac = mag % unit;
        let mut div = unit / 10;
        while div > 0 {
            out.push(b'0' + (frac / div % 10) as u8);
            div /= 10;
        }
    }
}

/// The header line of a CSV file (with its newline), or nothing.
pub fn header(format: SimFormat, out: &mut Vec<u8>) {
    if format == SimFormat::Csv {
        out.extend_from_slice(b"device_id,timestamp");
        for (name, _) in FIELDS {
            out.push(b',');
            out.extend_from_slice(name.as_bytes());
        }
        out.extend_from_slice(b",status\n");
    }
}

fn status(s: &Sample) -> &'static [u8] {
    if s.warning { b"warning" } else { b"ok" }
}

/// Appends one reading, with its trailing newline.
pub fn push_reading(format: SimFormat, device_id: &str, s: &Sample, out: &mut Vec<u8>) {
    match format {
        SimFormat::Text => {
            out.extend_from_slice(b"device_id ");
            out.extend_from_slice(device_id.as_bytes());
            out.extend_from_slice(b" reported at timestamp ");
            push_day_first(out, s.unix_secs);
            out.extend_from_slice(b" with ");
            for (i, (name, dec)) in FIELDS.iter().enumerate() {
                if s.present[i] {
                    out.extend_from_slice(name.as_bytes());
                    out.push(b' ');
                    push_fixed(out, s.values[i], *dec);
                    out.extend_from_slice(b", ");
                }
            }
            out.extend_from_slice(b"and status ");
            out.extend_from_slice(status(s));
            out.extend_from_slice(b".\n");
        }
        SimFormat::JsonLines => {
            // Device ids are `VHC` + digits: no JSON escaping is needed.
            out.extend_from_slice(b"{\"device_id\":\"");
            out.extend_from_slice(device_id.as_bytes());
            out.extend_from_slice(b"\",\"timestamp\":\"");
            push_rfc3339(out, s.unix_secs);
            out.push(b'"');
            for (i, (name, dec)) in FIELDS.iter().enumerate() {
                if s.present[i] {
                    out.extend_from_slice(b",\"");
                    out.extend_from_slice(name.as_bytes());
                    out.extend_from_slice(b"\":");
                    push_fixed(out, s.values[i], *dec);
                }
            }
            out.extend_from_slice(b",\"status\":\"");
            out.extend_from_slice(status(s));
            out.extend_from_slice(b"\"}\n");
        }
        SimFormat::Csv => {
            out.extend_from_slice(device_id.as_bytes());
            out.push(b',');
            push_rfc3339(out, s.unix_secs);
            for (i, (_, dec)) in FIELDS.iter().enumerate() {
                out.push(b',');
                if s.present[i] {
                    push_fixed(out, s.values[i], *dec);
                }
            }
            out.push(b',');
            out.extend_from_slice(status(s));
            out.push(b'\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(v: f64, d: u32) -> String {
        let mut out = Vec::new();
        push_fixed(&mut out, v, d);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fixed_point() {
        assert_eq!(fixed(92.44, 1), "92.4");
        assert_eq!(fixed(72.6, 0), "73");
        assert_eq!(fixed(-0.04, 1), "0.0");
        assert_eq!(fixed(-3.5, 2), "-3.50");
        assert_eq!(fixed(0.05, 2), "0.05");
        assert_eq!(fixed(48.123_456_7, 6), "48.123457");
        assert_eq!(fixed(10365.25, 1), "10365.3");
    }

    #[test]
    fn dates() {
        let mut out = Vec::new();
        push_rfc3339(&mut out, 1_760_914_050); // 2025-10-19T22:47:30Z
        assert_eq!(out, b"2025-10-19T22:47:30Z");
        out.clear();
        push_day_first(&mut out, 1_760_914_050);
        assert_eq!(out, b"19-10-2025 22:47:30");
        assert_eq!(key_time(1_760_911_200), "2025-10-19T22-00-00Z");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        // Cross-check a range of days against the `time` crate.
        for days in (-800_000..800_000).step_by(997) {
            let dt = time::OffsetDateTime::from_unix_timestamp(days * 86_400).unwrap();
            assert_eq!(
                civil_from_days(days),
                (i64::from(dt.year()), dt.month() as u32, u32::from(dt.day()))
            );
        }
    }
}
