//! `telemetry::parse_timestamp` on arbitrary text: an accepted instant is in
//! 1970..=9999 and its RFC 3339 form parses back to the same millisecond;
//! surrounding whitespace never changes the result.
#![no_main]

mod common;

use fleetwatch::telemetry::{RejectReason, parse_timestamp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let result = parse_timestamp(text);
    match result {
        Ok(timestamp) => common::check_timestamp(timestamp),
        Err(reason) => assert!(
            matches!(
                reason,
                RejectReason::MissingTimestamp
                    | RejectReason::InvalidTimestamp
                    | RejectReason::TimestampOutOfRange
            ),
            "unexpected reason {reason:?}"
        ),
    }
    assert_eq!(parse_timestamp(text.trim()), result, "trimming changed the result");
});
