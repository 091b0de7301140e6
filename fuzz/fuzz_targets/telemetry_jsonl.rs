//! The JSON Lines parser on an arbitrary line; a reading must satisfy every
//! `Reading` invariant.
#![no_main]

mod common;

use fleetwatch::telemetry::{Format, LineParser};
use libfuzzer_sys::fuzz_target;

const FIRST_LINE: &str = r#"{"device_id":"VHC001","timestamp":"2025-11-15T10:00:00Z","engine_temp_c":124.0}"#;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let (parser, consumed) = LineParser::detect(FIRST_LINE);
    assert_eq!(parser.format(), &Format::JsonLines);
    assert!(!consumed);
    common::check_parse(&parser, line);
});
