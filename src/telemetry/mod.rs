//! Telemetry parsing: turns the lines of one S3 object into [`Reading`]s.
//!
//! The format of an object (JSON Lines, CSV with a header, or the fleet's
//! text formats) is decided once from its first non-blank line by
//! [`LineParser::detect`]; every line is then parsed on its own by
//! [`LineParser::parse`], which either yields a [`Reading`] or a
//! [`Rejection`] whose [`RejectReason`] is a stable metrics label.
//!
//! Every format funnels into the same field rules (see `fields.rs`), so a
//! vehicle gets the same reading whichever format its firmware writes.

use std::fmt;

mod csv;
mod fields;
mod json;
pub mod number;
pub mod reading;
mod text;
pub mod timestamp;

pub use fields::NUMERIC_FIELDS;
pub use number::{Number, parse_number};
pub use reading::{Reading, Value};
pub use timestamp::{Timestamp, format_rfc3339_millis, parse_timestamp};

/// Why a line was not turned into a reading. `as_str()` gives a stable
/// snake_case label used as a Prometheus label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The line's syntax is broken (bad JSON, unterminated quote, a pair
    /// without a value, a field name that is empty, too long or has control
    /// characters, ...).
    Malformed,
    MissingDeviceId,
    InvalidDeviceId,
    MissingTimestamp,
    InvalidTimestamp,
    TimestampOutOfRange,
    /// A value that is number-like but unusable: NaN/infinity, more than 38
    /// significant digits, or a magnitude DynamoDB cannot store.
    InvalidNumber,
    /// A known numeric field holding something that is not a number at all.
    InvalidField,
    CsvColumnCount,
    DuplicateField,
}

impl RejectReason {
    /// Every reason, so metrics can be pre-registered at zero.
    pub const ALL: &'static [RejectReason] = &[
        RejectReason::Malformed,
        RejectReason::MissingDeviceId,
        RejectReason::InvalidDeviceId,
        RejectReason::MissingTimestamp,
        RejectReason::InvalidTimestamp,
        RejectReason::TimestampOutOfRange,
        RejectReason::InvalidNumber,
        RejectReason::InvalidField,
        RejectReason::CsvColumnCount,
        RejectReason::DuplicateField,
    ];

    /// Stable snake_case label; changing one breaks dashboards and alerts.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Malformed => "malformed",
            RejectReason::MissingDeviceId => "missing_device_id",
            RejectReason::InvalidDeviceId => "invalid_device_id",
            RejectReason::MissingTimestamp => "missing_timestamp",
            RejectReason::InvalidTimestamp => "invalid_timestamp",
            RejectReason::TimestampOutOfRange => "timestamp_out_of_range",
            RejectReason::InvalidNumber => "invalid_number",
            RejectReason::InvalidField => "invalid_field",
            RejectReason::CsvColumnCount => "csv_column_count",
            RejectReason::DuplicateField => "duplicate_field",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected line: the reason plus a short human-readable detail naming the
/// offending field/value. Values inside the detail are truncated and
/// escaped (at most 64 characters, `escape_debug`) because the detail is
/// logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Rejection {
    pub reason: RejectReason,
    pub detail: String,
}

impl Rejection {
    pub(crate) fn new(reason: RejectReason, detail: impl Into<String>) -> Rejection {
        Rejection {
            reason,
            detail: detail.into(),
        }
    }
}

/// How a detail quotes an input value (see [`crate::log_text`]).
pub(crate) use crate::log_text::shown;

/// The format of one object, decided from its first non-blank line.
#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    JsonLines,
    Csv {
        header: Vec<String>,
    },
    /// The original fleet sentence or `key:value` pairs, decided per line.
    Text,
}

/// Parses the lines of one object.
#[derive(Debug, Clone)]
pub struct LineParser {
    format: Format,
}

impl LineParser {
    /// Looks at the first non-blank line (already stripped of BOM and line
    /// ending) and returns the parser for the object plus whether that first
    /// line was a CSV header (consumed, not a reading).
    ///
    /// `{` first → JSON Lines; a CSV row of ≥2 bare identifiers including
    /// `device_id` and `timestamp` → CSV with that header; otherwise text.
    pub fn detect(first_line: &str) -> (LineParser, bool) {
        let line = strip_bom(first_line);
        if line.trim_start().starts_with('{') {
            return (
                LineParser {
                    format: Format::JsonLines,
                },
                false,
            );
        }
        if let Some(header) = csv::header(line) {
            return (
                LineParser {
                    format: Format::Csv { header },
                },
                true,
            );
        }
        (
            LineParser {
                format: Format::Text,
            },
            false,
        )
    }

    pub fn format(&self) -> &Format {
        &self.format
    }

    /// Parses one non-blank line (no line ending, no BOM).
    pub fn parse(&self, line: &str) -> Result<Reading, Rejection> {
        let line = strip_bom(line);
        if line.trim().is_empty() {
            return Err(Rejection::new(RejectReason::Malformed, "blank line"));
        }
        match &self.format {
            Format::JsonLines => json::parse(line),
            Format::Csv { header } => csv::parse_row(header, line),
            Format::Text => text::parse(line),
        }
    }
}

/// Callers strip the BOM already; doing it again is free and keeps a stray
/// BOM from turning into a bogus field name.
fn strip_bom(line: &str) -> &str {
    line.strip_prefix('\u{feff}').unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for reason in RejectReason::ALL {
            let label = reason.as_str();
            assert!(seen.insert(label), "duplicate label {label}");
            assert!(label.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert_eq!(reason.to_string(), label);
        }
        assert_eq!(seen.len(), 10);
    }

    #[test]
    fn rejection_display() {
        let rejection = Rejection::new(RejectReason::InvalidField, "speed_kmph: \"fast\"");
        assert_eq!(rejection.to_string(), "invalid_field: speed_kmph: \"fast\"");
    }

    #[test]
    fn detect_json() {
        let (parser, consumed) = LineParser::detect("  {\"device_id\":\"A\"}");
        assert_eq!(parser.format(), &Format::JsonLines);
        assert!(!consumed);
    }

    #[test]
    fn detect_csv() {
        let (parser, consumed) = LineParser::detect("device_id, \"timestamp\",speed_kmph");
        assert_eq!(
            parser.format(),
            &Format::Csv {
                header: vec!["device_id".into(), "timestamp".into(), "speed_kmph".into()]
            }
        );
        assert!(consumed);
        let (parser, consumed) = LineParser::detect("\u{feff}timestamp,device_id");
        assert!(matches!(parser.format(), Format::Csv { .. }));
        assert!(consumed);
    }

    #[test]
    fn detect_text() {
        for line in [
            "device_id VHC001 reported at timestamp 19-10-2025 22:47 with speed_kmph 73.",
            "device_id:VHC001, timestamp:2025-11-15T10:00:00Z, engine_temp_c:124.0",
            // Identifiers, but device_id/timestamp missing: a data row, not a header.
            "speed_kmph,rpm",
            // A single identifier is not a header.
            "device_id",
            // Not bare identifiers.
            "device_id,timestamp,speed kmph",
            "device_id,timestamp,1abc",
            "device_id,timestamp,",
            "",
        ] {
            let (parser, consumed) = LineParser::detect(line);
            assert_eq!(parser.format(), &Format::Text, "{line:?}");
            assert!(!consumed);
        }
    }

    #[test]
    fn blank_line_is_malformed() {
        let (parser, _) = LineParser::detect("device_id:A");
        assert_eq!(
            parser.parse("   ").unwrap_err().reason,
            RejectReason::Malformed
        );
    }

    /// The same reading, written in each format, parses identically.
    #[test]
    fn all_formats_agree() {
        let expected_fields = vec![
            (
                "speed_kmph".to_string(),
                Value::Number(parse_number("73").unwrap()),
            ),
            (
                "status".to_string(),
                Value::Text("maintenance_required".into()),
            ),
        ];
        let objects: [&[&str]; 4] = [
            &[
                "device_id VHC001 reported at timestamp 19-10-2025 22:47 with speed_kmph 73, and status maintenance_required.",
            ],
            &[
                "device_id:VHC001, timestamp:2025-10-19T22:47:00Z, speed_kmph:73, status:maintenance_required",
            ],
            &[
                r#"{"device_id":"VHC001","timestamp":"2025-10-19 22:47","speed_kmph":73,"status":"maintenance_required"}"#,
            ],
            &[
                "device_id,timestamp,speed_kmph,status",
                "VHC001,1760914020,73,maintenance_required",
            ],
        ];
        for lines in objects {
            let (parser, consumed) = LineParser::detect(lines[0]);
            let data = if consumed { lines[1] } else { lines[0] };
            let reading = parser.parse(data).unwrap();
            assert_eq!(reading.device_id, "VHC001");
            assert_eq!(
                reading.timestamp.to_rfc3339_millis(),
                "2025-10-19T22:47:00.000Z"
            );
            assert_eq!(reading.fields, expected_fields, "{lines:?}");
        }
    }

    /// A tiny deterministic fuzzer: lines glued from fragments that hit the
    /// parsers' edge cases. The only assertion is "no panic", plus that
    /// every rejection detail stays short enough to log.
    #[test]
    fn random_lines_never_panic() {
        const FRAGMENTS: &[&str] = &[
            "device_id",
            "timestamp",
            "VHC001",
            " ",
            ",",
            ":",
            "\"",
            "\"\"",
            "{",
            "}",
            "[",
            "]",
            ".",
            "-",
            "+",
            "e",
            "E",
            "1",
            "0",
            "9",
            "1e999",
            "NaN",
            "inf",
            "19-10-2025",
            "22:47",
            "2025-11-15T10:00:00Z",
            "with",
            "and",
            "reported at",
            "é",
            "🚗",
            "\u{0}",
            "\t",
            "\u{feff}",
            "\\",
            "\\u00",
            "null",
            "true",
            "speed_kmph",
            "source",
            "/",
            "Z",
            "+02:00",
            "\u{202e}",
            "12.5.",
        ];
        for line in crate::test_input::fragment_runs(FRAGMENTS, 24, 20_000, 0x9e37_79b9_7f4a_7c15) {
            let (parser, _) = LineParser::detect(&line);
            for candidate in [
                LineParser::detect(&line).0,
                parser,
                LineParser::detect("{").0,
                LineParser::detect("device_id,timestamp,a,b").0,
            ] {
                if let Err(rejection) = candidate.parse(&line) {
                    assert!(rejection.detail.chars().count() < 400, "{rejection:?}");
                }
            }
            let _ = parse_timestamp(&line);
            let _ = parse_number(&line);
        }
    }
}
