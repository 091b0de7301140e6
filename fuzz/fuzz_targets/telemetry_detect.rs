//! Format detection plus parsing, the way the pipeline reads an object:
//! lines split on `\n` (a trailing `\r` and a leading BOM stripped, blank
//! lines skipped), the format decided from the first line, a CSV header
//! consumed, every other line parsed.
#![no_main]

mod common;

use fleetwatch::telemetry::{Format, LineParser};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(object) = std::str::from_utf8(data) else {
        return;
    };
    let object = object.strip_prefix('\u{feff}').unwrap_or(object);
    let mut lines = object
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .filter(|line| !line.trim().is_empty());
    let Some(first) = lines.next() else {
        return;
    };
    let (parser, consumed) = LineParser::detect(first);
    match parser.format() {
        Format::JsonLines => {
            assert!(!consumed);
            // `detect` strips one more BOM itself.
            let line = first.strip_prefix('\u{feff}').unwrap_or(first);
            assert!(line.trim_start().starts_with('{'), "{first:?}");
        }
        Format::Csv { header } => {
            assert!(consumed, "a CSV header is consumed");
            assert!(header.len() >= 2, "{header:?}");
            assert!(header.iter().any(|c| c == "device_id"), "{header:?}");
            assert!(header.iter().any(|c| c == "timestamp"), "{header:?}");
        }
        Format::Text => assert!(!consumed),
    }
    if !consumed {
        common::check_parse(&parser, first);
    }
    for line in lines {
        common::check_parse(&parser, line);
    }
});
