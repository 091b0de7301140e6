//! CSV objects: a header row naming the fields, then one reading per row.
//!
//! Cells follow RFC 4180 within a single line (double-quoted cells with `""`
//! escapes and commas inside quotes). Records spanning several lines are not
//! supported: the service reads objects line by line, and telemetry values
//! never legitimately contain newlines.

use super::fields::{RawValue, ReadingBuilder};
use super::reading::Reading;
use super::{RejectReason, Rejection};

/// Returns the header if `line` is one: at least two cells, all bare
/// identifiers (`[A-Za-z_][A-Za-z0-9_]*`, optionally quoted), including both
/// `device_id` and `timestamp`. Anything else means the object is not CSV.
pub(crate) fn header(line: &str) -> Option<Vec<String>> {
    let cells = split_cells(line).ok()?;
    let is_header = cells.len() >= 2
        && cells.iter().all(|cell| is_identifier(cell))
        && cells.iter().any(|cell| cell == "device_id")
        && cells.iter().any(|cell| cell == "timestamp");
    is_header.then_some(cells)
}

/// Parses one data row against the header. An empty cell is an absent field.
pub(crate) fn parse_row(header: &[String], line: &str) -> Result<Reading, Rejection> {
    let cells =
        split_cells(line).map_err(|problem| Rejection::new(RejectReason::Malformed, problem))?;
    if cells.len() != header.len() {
        return Err(Rejection::new(
            RejectReason::CsvColumnCount,
            format!("row has {} cells, header has {}", cells.len(), header.len()),
        ));
    }
    let mut builder = ReadingBuilder::new();
    for (name, cell) in header.iter().zip(&cells) {
        let value = (!cell.is_empty()).then_some(RawValue::Text(cell));
        builder.add(name, value)?;
    }
    builder.finish()
}

fn is_identifier(cell: &str) -> bool {
    let mut bytes = cell.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Splits one line into trimmed cells, unquoting quoted ones. The error is a
/// short description for the rejection detail.
fn split_cells(line: &str) -> Result<Vec<String>, String> {
    let mut cells = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut cell = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated quote in cell {}", cells.len() + 1)),
                    Some('"') => {
                        if chars.next_if_eq(&'"').is_some() {
                            cell.push('"');
                        } else {
                            break;
                        }
                    }
                    Some(c) => cell.push(c),
                }
            }
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            if chars.peek().is_some_and(|c| *c != ',') {
                return Err(format!(
                    "text after the closing quote of cell {}",
                    cells.len() + 1
                ));
            }
        } else {
            // Unquoted: everything up to the next comma. A stray quote in
            // the middle is kept literally, as most CSV readers do.
            while let Some(c) = chars.next_if(|c| *c != ',') {
                cell.push(c);
            }
        }
        cells.push(cell.trim().to_string());
        if chars.next().is_none() {
            return Ok(cells);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{LineParser, Value, parse_number};

    fn cells(line: &str) -> Vec<String> {
        split_cells(line).unwrap()
    }

    #[test]
    fn splits_rfc4180_cells() {
        assert_eq!(cells("a,b,c"), ["a", "b", "c"]);
        assert_eq!(cells(" a , b ,c "), ["a", "b", "c"]);
        assert_eq!(
            cells(r#""a,b","say ""hi""",c"#),
            ["a,b", r#"say "hi""#, "c"]
        );
        assert_eq!(cells(r#" "x" , "" ,"#), ["x", "", ""]);
        assert_eq!(cells(""), [""]);
        assert_eq!(cells(","), ["", ""]);
        assert_eq!(cells(r#"ab"c,d"#), [r#"ab"c"#, "d"]);
        assert_eq!(cells("é,🚗"), ["é", "🚗"]);
    }

    #[test]
    fn rejects_broken_quotes() {
        assert!(split_cells(r#""abc"#).is_err());
        assert!(split_cells(r#""abc"x,d"#).is_err());
        assert!(split_cells(r#"a,"b"#).is_err());
    }

    #[test]
    fn detects_header() {
        assert_eq!(
            header(r#""device_id","timestamp""#).unwrap(),
            ["device_id", "timestamp"]
        );
        assert!(header("device_id,timestamp,_x1").is_some());
        assert!(header("device_id,timestamp,\"bad").is_none());
        assert!(header("VHC001,2025-11-15T10:00:00Z").is_none());
    }

    fn parser() -> LineParser {
        let (parser, consumed) = LineParser::detect("device_id,timestamp,speed_kmph,status,rpm");
        assert!(consumed);
        parser
    }

    #[test]
    fn parses_rows() {
        let reading = parser()
            .parse(r#"VHC001,2025-11-15T10:00:00Z,73.5,"needs service, soon","#)
            .unwrap();
        assert_eq!(reading.device_id, "VHC001");
        assert_eq!(
            reading.fields,
            vec![
                (
                    "speed_kmph".to_string(),
                    Value::Number(parse_number("73.5").unwrap())
                ),
                (
                    "status".to_string(),
                    Value::Text("needs service, soon".into())
                ),
            ]
        );
    }

    #[test]
    fn empty_cells_are_absent() {
        let reading = parser().parse("VHC001,1760914020,,,").unwrap();
        assert!(reading.fields.is_empty());
        assert_eq!(reading.number("speed_kmph"), None);
    }

    #[test]
    fn column_count_must_match() {
        let parser = parser();
        assert_eq!(
            parser.parse("VHC001,1760914020,1,ok").unwrap_err().reason,
            RejectReason::CsvColumnCount
        );
        assert_eq!(
            parser
                .parse("VHC001,1760914020,1,ok,2,3")
                .unwrap_err()
                .reason,
            RejectReason::CsvColumnCount
        );
    }

    #[test]
    fn row_errors() {
        let parser = parser();
        let reject = |line| parser.parse(line).unwrap_err().reason;
        assert_eq!(
            reject(r#"VHC001,"1760914020,1,ok,2"#),
            RejectReason::Malformed
        );
        assert_eq!(reject(",1760914020,1,ok,2"), RejectReason::MissingDeviceId);
        assert_eq!(reject("VHC001,,1,ok,2"), RejectReason::MissingTimestamp);
        assert_eq!(
            reject("VHC001,1760914020,fast,ok,2"),
            RejectReason::InvalidField
        );
        assert_eq!(
            reject("VHC001,1760914020,NaN,ok,2"),
            RejectReason::InvalidNumber
        );
        assert_eq!(
            reject("VHC001,31-02-2025 10:00,1,ok,2"),
            RejectReason::InvalidTimestamp
        );
    }

    #[test]
    fn duplicate_header_names_reject_rows() {
        let (parser, consumed) = LineParser::detect("device_id,timestamp,rpm,rpm");
        assert!(consumed);
        assert_eq!(
            parser.parse("A,0,1,2").unwrap_err().reason,
            RejectReason::DuplicateField
        );
    }

    #[test]
    fn reserved_header_names_are_renamed() {
        let (parser, _) = LineParser::detect("device_id,timestamp,source");
        let reading = parser.parse("A,0,x").unwrap();
        assert_eq!(
            reading.field("source_input"),
            Some(&Value::Text("x".into()))
        );
        assert_eq!(reading.field("source"), None);
    }
}
