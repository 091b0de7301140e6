//! Invariants shared by the fuzz targets. Every check is a documented
//! promise of the `fleetwatch` API; a failed `assert!` is a bug report.
#![allow(dead_code)]

use std::collections::HashSet;

use fleetwatch::telemetry::{
    LineParser, NUMERIC_FIELDS, Number, Reading, Rejection, Timestamp, Value, parse_number,
    parse_timestamp,
};

/// 9999-12-31T23:59:59.999Z, the last instant `parse_timestamp` accepts.
pub const MAX_UNIX_MILLIS: i64 = 253_402_300_799_999;

/// A rejection detail quotes at most a couple of values, each at most 64
/// characters escaped with `escape_debug` (≤ 10 characters per input
/// character), so it stays short whatever the line's length.
pub const MAX_DETAIL_CHARS: usize = 4096;

/// Input names the builder renames so they cannot spoof service attributes.
const RENAMED: &[&str] = &["prediction", "source", "ingested_at"];

/// Checks the result of `LineParser::parse`.
pub fn check_parse(parser: &LineParser, line: &str) {
    match parser.parse(line) {
        Ok(reading) => check_reading(&reading),
        Err(rejection) => check_detail("rejection detail", &rejection_detail(&rejection)),
    }
}

fn rejection_detail(rejection: &Rejection) -> String {
    // Display must work too, it is what gets logged.
    let shown = rejection.to_string();
    assert!(shown.starts_with(rejection.reason.as_str()));
    rejection.detail.clone()
}

/// Log text built from untrusted input: bounded and free of control
/// characters (so it cannot forge log lines).
pub fn check_detail(what: &str, detail: &str) {
    let count = detail.chars().count();
    assert!(
        count <= MAX_DETAIL_CHARS,
        "{what} is {count} characters long"
    );
    assert!(
        !detail.chars().any(char::is_control),
        "{what} has a control character: {detail:?}"
    );
}

pub fn check_reading(reading: &Reading) {
    let id = &reading.device_id;
    assert!(
        (1..=128).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-')),
        "bad device_id {id:?}"
    );
    check_timestamp(reading.timestamp);

    let mut names = HashSet::new();
    for (name, value) in &reading.fields {
        assert!(names.insert(name.as_str()), "field {name:?} twice");
        assert!(
            name != "device_id" && name != "timestamp",
            "reserved name {name:?} in fields"
        );
        assert!(!RENAMED.contains(&name.as_str()), "{name:?} was not renamed");
        let chars = name.chars().count();
        assert!((1..=255).contains(&chars), "field name of {chars} chars");
        assert!(!name.chars().any(char::is_control), "control char in {name:?}");
        match value {
            Value::Number(number) => check_number(number),
            Value::Text(_) => assert!(
                !NUMERIC_FIELDS.contains(&name.as_str()),
                "numeric field {name:?} kept as text"
            ),
        }
    }
}

/// A parsed timestamp is in 1970..=9999 and its RFC 3339 text parses back
/// to the same instant.
pub fn check_timestamp(timestamp: Timestamp) {
    let millis = timestamp.unix_millis();
    assert!(
        (0..=MAX_UNIX_MILLIS).contains(&millis),
        "timestamp {millis} out of range"
    );
    let text = timestamp.to_rfc3339_millis();
    assert_eq!(text.len(), 24, "{text:?}");
    assert_eq!(
        parse_timestamp(&text).map(|t| t.unix_millis()),
        Ok(millis),
        "{text:?} does not parse back"
    );
}

/// A parsed number is finite, storable by DynamoDB, and its canonical text
/// is a fixed point of the parser.
pub fn check_number(number: &Number) {
    let value = number.as_f64();
    let text = number.as_str();
    assert!(value.is_finite(), "{text:?} -> {value}");
    assert!(
        value == 0.0 || (9.9e-131..=1e126).contains(&value.abs()),
        "{text:?} -> {value} outside DynamoDB's range"
    );
    assert!(!text.starts_with('+') && !text.starts_with('.'), "{text:?}");
    let again = parse_number(text).unwrap_or_else(|| panic!("{text:?} does not re-parse"));
    assert_eq!(again.as_str(), text, "canonical text is not canonical");
    assert_eq!(again.as_f64().to_bits(), value.to_bits(), "{text:?}");
    let std_value: f64 = text.parse().expect("canonical text is a Rust float");
    assert_eq!(std_value.to_bits(), value.to_bits(), "{text:?}");
}
