//! Timestamp parsing and formatting for telemetry readings.
//!
//! Vehicles report time in several shapes (RFC 3339, `YYYY-MM-DD HH:MM`, the
//! original fleet's day-first `DD-MM-YYYY HH:MM`, epoch seconds or
//! milliseconds). All of them are normalised to UTC milliseconds here so the
//! rest of the service only ever sees one representation.

use time::{Date, Month, Time};

use super::RejectReason;
use super::number;
use std::fmt;

/// An instant in UTC with millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Milliseconds since 1970-01-01T00:00:00Z: every input form
    /// normalises to this one representation.
    unix_millis: i64,
}

impl Timestamp {
    pub fn from_unix_millis(unix_millis: i64) -> Timestamp {
        Timestamp { unix_millis }
    }

    /// The clock now: the one place the crate reads the wall clock in
    /// milliseconds (before 1970 reads as 1970).
    pub fn now() -> Timestamp {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Timestamp {
            unix_millis: millis,
        }
    }

    pub fn unix_millis(self) -> i64 {
        self.unix_millis
    }

    /// RFC 3339 in UTC with exactly three fractional digits,
    /// e.g. `2025-10-19T22:47:00.000Z`, so that the text sorts by time.
    pub fn to_rfc3339_millis(self) -> String {
        format_rfc3339_millis(self)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339_millis())
    }
}

/// 9999-12-31T23:59:59.999Z: the last instant a four-digit year can show.
const MAX_UNIX_MILLIS: i64 = 253_402_300_799_999;
/// Epoch values with at least this magnitude are milliseconds, smaller ones
/// seconds: 1e11 seconds is the year 5138, 1e11 milliseconds is March 1973,
/// so the two readings of one number never overlap for plausible data.
const MILLIS_THRESHOLD: u128 = 100_000_000_000;
const MILLIS_PER_DAY: i64 = 86_400_000;
/// Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

/// Parses a timestamp in any accepted form and normalises it to UTC.
///
/// Accepted: RFC 3339 (`2025-11-15T10:00:00Z`, `...T10:00:00.123+02:00`,
/// lowercase `t`/`z`, fractions of any length truncated to milliseconds);
/// `YYYY-MM-DD HH:MM[:SS[.fff]]` with a space or `T` and no zone (UTC);
/// `DD-MM-YYYY HH:MM[:SS]` or `DD/MM/YYYY ...` (day first, UTC); epoch
/// seconds or milliseconds as an integer or decimal (magnitude ≥ 1e11 means
/// milliseconds). Blank text is `MissingTimestamp`, unparseable text or an
/// impossible date/time `InvalidTimestamp`, and an instant before 1970 or
/// after 9999 `TimestampOutOfRange`.
pub fn parse_timestamp(text: &str) -> Result<Timestamp, RejectReason> {
    let text = text.trim();
    if text.is_empty() {
        return Err(RejectReason::MissingTimestamp);
    }
    let millis = match number::scan(text) {
        Some(scanned) => epoch_millis(&scanned)?,
        None => calendar_millis(text)?,
    };
    if !(0..=MAX_UNIX_MILLIS).contains(&millis) {
        return Err(RejectReason::TimestampOutOfRange);
    }
    Ok(Timestamp::from_unix_millis(millis))
}

/// Formats as RFC 3339 in UTC with exactly three fractional digits, e.g.
/// `2025-10-19T22:47:00.000Z`.
///
/// Total over every `i64`: years outside 0000–9999 (only reachable through
/// `Timestamp::from_unix_millis`, never from the parser) are written with an
/// explicit sign as ISO 8601 expanded years, so `Display` can never panic.
pub fn format_rfc3339_millis(timestamp: Timestamp) -> String {
    let millis = timestamp.unix_millis();
    let days = millis.div_euclid(MILLIS_PER_DAY);
    let in_day = millis.rem_euclid(MILLIS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let hour = in_day / 3_600_000;
    let minute = in_day / 60_000 % 60;
    let second = in_day / 1000 % 60;
    let milli = in_day % 1000;
    if !(0..=9999).contains(&year) {
        return format!(
            "{year:+05}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{milli:03}Z"
        );
    }
    // Digit by digit: this runs for every item stored, and `format!` costs
    // several times as much.
    let mut out = String::with_capacity(24);
    for (value, width, then) in [
        (year, 4, '-'),
        (month, 2, '-'),
        (day, 2, 'T'),
        (hour, 2, ':'),
        (minute, 2, ':'),
        (second, 2, '.'),
        (milli, 3, 'Z'),
    ] {
        for place in (0..width).rev() {
            let digit = (value / 10i64.pow(place)).rem_euclid(10) as u8;
            out.push(char::from(b'0' + digit));
        }
        out.push(then);
    }
    out
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day).
/// Howard Hinnant's `civil_from_days`, in i64 so it cannot overflow for any
/// day count derived from an i64 of milliseconds.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Epoch seconds or milliseconds, computed exactly from the decimal digits
/// (no float) so `1760914020.123` is exactly 1760914020123 ms.
fn epoch_millis(scanned: &number::Scanned<'_>) -> Result<i64, RejectReason> {
    let Some((digits, leading_exponent)) = scanned.significant() else {
        return Ok(0);
    };
    if scanned.negative {
        return Err(RejectReason::TimestampOutOfRange);
    }
    // 20+ integer digits is beyond any timestamp in either unit.
    if leading_exponent >= 20 {
        return Err(RejectReason::TimestampOutOfRange);
    }
    // Value = 0.d1d2d3... × 10^(leading_exponent + 1). Scale to thousandths
    // so both the seconds and the milliseconds reading are integers.
    let scale = leading_exponent + 1 + 3;
    let mut thousandths: u128 = 0;
    for (position, byte) in digits.bytes().enumerate() {
        let position = i64::try_from(position).unwrap_or(i64::MAX);
        if position >= scale {
            break;
        }
        thousandths = thousandths * 10 + u128::from(byte - b'0');
    }
    let written = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    for _ in written..scale {
        thousandths *= 10;
    }
    let whole = thousandths / 1000;
    let millis = if whole >= MILLIS_THRESHOLD {
        whole
    } else {
        thousandths
    };
    i64::try_from(millis).map_err(|_| RejectReason::TimestampOutOfRange)
}

/// A cursor over ASCII-structured timestamp text. Every accessor returns
/// `None` rather than panicking when the text runs out or does not match.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Cursor {
            bytes: text.as_bytes(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn eat(&mut self, expected: u8) -> bool {
        if self.peek() == Some(expected) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Exactly `count` ASCII digits as a number.
    fn digits(&mut self, count: usize) -> Option<u32> {
        let end = self.pos.checked_add(count)?;
        let slice = self.bytes.get(self.pos..end)?;
        let mut value: u32 = 0;
        for &byte in slice {
            if !byte.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u32::from(byte - b'0');
        }
        self.pos = end;
        Some(value)
    }

    /// One or more digits; returns the first three as milliseconds (padded),
    /// dropping the rest: fractions are truncated, never rounded, so a
    /// reading never moves into the next millisecond.
    fn fraction_millis(&mut self) -> Option<u16> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        let digits = self.bytes.get(start..self.pos)?;
        if digits.is_empty() {
            return None;
        }
        let mut millis: u16 = 0;
        for index in 0..3 {
            let digit = digits.get(index).map_or(0, |b| u16::from(b - b'0'));
            millis = millis * 10 + digit;
        }
        Some(millis)
    }
}

/// What the calendar forms parse into before validation.
struct Fields {
    year: i32,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    milli: u16,
    /// Offset east of UTC in seconds.
    offset_seconds: i64,
}

fn calendar_millis(text: &str) -> Result<i64, RejectReason> {
    let fields = parse_calendar(text).ok_or(RejectReason::InvalidTimestamp)?;
    let month = Month::try_from(fields.month).map_err(|_| RejectReason::InvalidTimestamp)?;
    let date = Date::from_calendar_date(fields.year, month, fields.day)
        .map_err(|_| RejectReason::InvalidTimestamp)?;
    let time = Time::from_hms_milli(fields.hour, fields.minute, fields.second, fields.milli)
        .map_err(|_| RejectReason::InvalidTimestamp)?;
    let days = i64::from(date.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY;
    let (hour, minute, second, milli) = time.as_hms_milli();
    let in_day = i64::from(hour) * 3_600_000
        + i64::from(minute) * 60_000
        + i64::from(second) * 1000
        + i64::from(milli);
    Ok(days * MILLIS_PER_DAY + in_day - fields.offset_seconds * 1000)
}

/// Recognises the calendar forms; `None` means "not a timestamp we know".
fn parse_calendar(text: &str) -> Option<Fields> {
    let mut cursor = Cursor::new(text);
    let (year, month, day) = if text.as_bytes().get(4) == Some(&b'-') {
        // YYYY-MM-DD
        let year = cursor.digits(4)?;
        cursor.eat(b'-').then_some(())?;
        let month = cursor.digits(2)?;
        cursor.eat(b'-').then_some(())?;
        let day = cursor.digits(2)?;
        (year, month, day)
    } else {
        // DD-MM-YYYY or DD/MM/YYYY, the original fleet's day-first format.
        let day = cursor.digits(2)?;
        let separator = cursor.peek().filter(|b| *b == b'-' || *b == b'/')?;
        cursor.eat(separator);
        let month = cursor.digits(2)?;
        cursor.eat(separator).then_some(())?;
        let year = cursor.digits(4)?;
        (year, month, day)
    };
    // Date and time are separated by `T`/`t` or one or more spaces.
    if !(cursor.eat(b'T') || cursor.eat(b't')) {
        cursor.eat(b' ').then_some(())?;
        while cursor.eat(b' ') {}
    }
    let hour = cursor.digits(2)?;
    cursor.eat(b':').then_some(())?;
    let minute = cursor.digits(2)?;
    let mut second = 0;
    let mut milli = 0;
    if cursor.eat(b':') {
        second = cursor.digits(2)?;
        if cursor.eat(b'.') || cursor.eat(b',') {
            milli = cursor.fraction_millis()?;
        }
    }
    let offset_seconds = parse_zone(&mut cursor)?;
    if !cursor.at_end() {
        return None;
    }
    Some(Fields {
        year: i32::try_from(year).ok()?,
        month: u8::try_from(month).ok()?,
        day: u8::try_from(day).ok()?,
        hour: u8::try_from(hour).ok()?,
        minute: u8::try_from(minute).ok()?,
        second: u8::try_from(second).ok()?,
        milli,
        offset_seconds,
    })
}

/// Optional zone: nothing (UTC), `Z`/`z`, or `±HH:MM` / `±HHMM`.
fn parse_zone(cursor: &mut Cursor<'_>) -> Option<i64> {
    if cursor.at_end() {
        return Some(0);
    }
    if cursor.eat(b'Z') || cursor.eat(b'z') {
        return Some(0);
    }
    let sign = if cursor.eat(b'+') {
        1
    } else if cursor.eat(b'-') {
        -1
    } else {
        return None;
    };
    let hours = cursor.digits(2)?;
    cursor.eat(b':');
    let minutes = cursor.digits(2)?;
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some(sign * (i64::from(hours) * 3600 + i64::from(minutes) * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc(text: &str) -> Result<String, RejectReason> {
        parse_timestamp(text).map(format_rfc3339_millis)
    }

    #[test]
    fn rfc3339() {
        assert_eq!(
            rfc("2025-11-15T10:00:00Z").unwrap(),
            "2025-11-15T10:00:00.000Z"
        );
        assert_eq!(
            rfc("2025-11-15T10:00:00.123+02:00").unwrap(),
            "2025-11-15T08:00:00.123Z"
        );
        assert_eq!(
            rfc("2025-11-15T01:00:00-05:30").unwrap(),
            "2025-11-15T06:30:00.000Z"
        );
        assert_eq!(
            rfc("2025-11-15t10:00:00.5z").unwrap(),
            "2025-11-15T10:00:00.500Z"
        );
        assert_eq!(
            rfc("2025-11-15T10:00:00.123456789Z").unwrap(),
            "2025-11-15T10:00:00.123Z"
        );
        assert_eq!(
            rfc("2025-11-15T10:00:00.9999Z").unwrap(),
            "2025-11-15T10:00:00.999Z"
        );
        assert_eq!(
            rfc("  2025-11-15T10:00:00Z  ").unwrap(),
            "2025-11-15T10:00:00.000Z"
        );
        assert_eq!(
            rfc("2025-11-15T10:00:00+0200").unwrap(),
            "2025-11-15T08:00:00.000Z"
        );
    }

    #[test]
    fn iso_without_zone_is_utc() {
        assert_eq!(rfc("2025-11-15 10:00").unwrap(), "2025-11-15T10:00:00.000Z");
        assert_eq!(
            rfc("2025-11-15 10:00:07").unwrap(),
            "2025-11-15T10:00:07.000Z"
        );
        assert_eq!(
            rfc("2025-11-15 10:00:07.25").unwrap(),
            "2025-11-15T10:00:07.250Z"
        );
        assert_eq!(
            rfc("2025-11-15T10:00:07").unwrap(),
            "2025-11-15T10:00:07.000Z"
        );
        assert_eq!(rfc("2025-11-15T10:00").unwrap(), "2025-11-15T10:00:00.000Z");
    }

    #[test]
    fn day_first_original_format() {
        assert_eq!(rfc("19-10-2025 22:47").unwrap(), "2025-10-19T22:47:00.000Z");
        assert_eq!(
            rfc("19-10-2025 22:47:05").unwrap(),
            "2025-10-19T22:47:05.000Z"
        );
        assert_eq!(rfc("01/02/2025 03:04").unwrap(), "2025-02-01T03:04:00.000Z");
        assert_eq!(
            rfc("19-10-2025  22:47").unwrap(),
            "2025-10-19T22:47:00.000Z"
        );
        // Mixed separators are not a date.
        assert_eq!(rfc("19-10/2025 22:47"), Err(RejectReason::InvalidTimestamp));
    }

    #[test]
    fn epoch_seconds_and_millis() {
        assert_eq!(rfc("1760914020").unwrap(), "2025-10-19T22:47:00.000Z");
        assert_eq!(rfc("1760914020.5").unwrap(), "2025-10-19T22:47:00.500Z");
        assert_eq!(
            rfc("1760914020.123987").unwrap(),
            "2025-10-19T22:47:00.123Z"
        );
        assert_eq!(rfc("1760914020123").unwrap(), "2025-10-19T22:47:00.123Z");
        assert_eq!(rfc("1760914020123.9").unwrap(), "2025-10-19T22:47:00.123Z");
        assert_eq!(rfc("1.76091402e9").unwrap(), "2025-10-19T22:47:00.000Z");
        assert_eq!(rfc("0").unwrap(), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc("-0").unwrap(), "1970-01-01T00:00:00.000Z");
        // Just below the threshold is seconds (year 5138), at it milliseconds.
        assert_eq!(rfc("99999999999").unwrap(), "5138-11-16T09:46:39.000Z");
        assert_eq!(rfc("100000000000").unwrap(), "1973-03-03T09:46:40.000Z");
    }

    #[test]
    fn invalid_dates() {
        for text in [
            "31-02-2025 10:00",
            "2025-02-30T10:00:00Z",
            "2025-13-01T10:00:00Z",
            "2025-11-15T25:00:00Z",
            "2025-11-15T10:60:00Z",
            "2025-11-15T10:00:61Z",
            "2025-11-15T10:00:00+24:00",
            "2025-11-15",
            "2025-11-15T10",
            "2025-11-15T10:00:00.Z",
            "2025-11-15T10:00:00Zjunk",
            "15 Nov 2025",
            "yesterday",
            "NaN",
            "1e",
            "2025-1１-15T10:00:00Z",
            "é",
        ] {
            assert_eq!(
                parse_timestamp(text),
                Err(RejectReason::InvalidTimestamp),
                "{text:?}"
            );
        }
        assert_eq!(parse_timestamp("   "), Err(RejectReason::MissingTimestamp));
    }

    #[test]
    fn out_of_range() {
        for text in [
            "1969-12-31T23:59:59.999Z",
            "1970-01-01T00:30:00+01:00",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:00:00-01:00",
            "-1",
            "-0.001",
            "253402300800000",
            "99999999999999999999999999",
            "1e300",
        ] {
            assert_eq!(
                parse_timestamp(text),
                Err(RejectReason::TimestampOutOfRange),
                "{text:?}"
            );
        }
        assert_eq!(
            rfc("9999-12-31T23:59:59.999Z").unwrap(),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(
            rfc("1970-01-01T00:00:00Z").unwrap(),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(rfc("253402300799999").unwrap(), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn formats_any_i64_without_panicking() {
        let f = |m| format_rfc3339_millis(Timestamp::from_unix_millis(m));
        assert_eq!(f(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(f(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(f(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert!(f(i64::MAX).starts_with('+'));
        assert!(f(i64::MIN).starts_with('-'));
    }

    #[test]
    fn round_trips_through_format() {
        for millis in [0, 1, 999, 86_399_999, 1_760_914_020_123, MAX_UNIX_MILLIS] {
            let text = format_rfc3339_millis(Timestamp::from_unix_millis(millis));
            assert_eq!(parse_timestamp(&text).unwrap().unix_millis(), millis);
        }
    }
}
