//! The text parser (original fleet sentence and key:value pairs) on an
//! arbitrary line; a reading must satisfy every `Reading` invariant.
#![no_main]

mod common;

use fleetwatch::telemetry::{Format, LineParser};
use libfuzzer_sys::fuzz_target;

const FIRST_LINE: &str = "device_id VHC001 reported at timestamp 19-10-2025 22:47 with speed_kmph 73, and status ok.";

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let (parser, consumed) = LineParser::detect(FIRST_LINE);
    assert_eq!(parser.format(), &Format::Text);
    assert!(!consumed);
    common::check_parse(&parser, line);
});
