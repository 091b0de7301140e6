//! The CSV parser: the whole input as a row under a fixed header, and, when
//! the input has several lines and its first line is a CSV header, the
//! other lines as rows under that header.
#![no_main]

mod common;

use fleetwatch::telemetry::{Format, LineParser};
use libfuzzer_sys::fuzz_target;

const HEADER: &str = "device_id,timestamp,speed_kmph,status,rpm";

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let (parser, consumed) = LineParser::detect(HEADER);
    assert!(matches!(parser.format(), Format::Csv { .. }));
    assert!(consumed);
    common::check_parse(&parser, input);

    if let Some((header, rows)) = input.split_once('\n') {
        let (parser, consumed) = LineParser::detect(header);
        if let Format::Csv { header: columns } = parser.format() {
            assert!(consumed, "a CSV header is consumed");
            assert!(columns.iter().any(|c| c == "device_id"), "{columns:?}");
            assert!(columns.iter().any(|c| c == "timestamp"), "{columns:?}");
            for row in rows.split('\n') {
                common::check_parse(&parser, row);
            }
        }
    }
});
