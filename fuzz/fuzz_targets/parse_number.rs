//! `telemetry::parse_number` on arbitrary text: an accepted number is finite,
//! within DynamoDB's range, its canonical text re-parses to itself with the
//! same value (and Rust's own float parser agrees); surrounding whitespace
//! never changes the result.
#![no_main]

mod common;

use fleetwatch::telemetry::parse_number;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let result = parse_number(text);
    if let Some(number) = &result {
        common::check_number(number);
    }
    assert_eq!(
        parse_number(text.trim()).map(|n| n.as_str().to_string()),
        result.map(|n| n.as_str().to_string()),
        "trimming changed the result"
    );
});
