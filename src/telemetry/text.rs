//! The fleet's text formats, recognised line by line:
//!
//! * the original sentence:
//!   `device_id VHC001 reported at timestamp 19-10-2025 22:47 with speed_kmph 73, ..., and status ok.`
//! * `key:value` pairs: `device_id:VHC001, timestamp:2025-11-15T10:00:00Z, engine_temp_c:124.0`
//!
//! A line whose first token is followed by `:` is pairs, anything else must
//! be the sentence. A `{` line is parsed as JSON so a JSON reading that ends
//! up in a text object is not lost.

use super::fields::{RawValue, ReadingBuilder};
use super::reading::Reading;
use super::{RejectReason, Rejection, json, shown};

pub(crate) fn parse(line: &str) -> Result<Reading, Rejection> {
    let line = line.trim();
    if line.starts_with('{') {
        return json::parse(line);
    }
    if is_key_value(line) {
        parse_pairs(line)
    } else {
        parse_sentence(line)
    }
}

/// True when the first token (up to whitespace, `:` or `,`) is followed,
/// after optional spaces, by `:`. The sentence form never is: its first
/// token is `device_id` followed by the id.
fn is_key_value(line: &str) -> bool {
    let rest = line.trim_start_matches(|c: char| !c.is_whitespace() && c != ':' && c != ',');
    rest.trim_start().starts_with(':')
}

/// `key:value, key:value, ...`, split on commas outside double quotes and
/// each pair on its FIRST `:` (timestamps contain colons).
fn parse_pairs(line: &str) -> Result<Reading, Rejection> {
    let mut builder = ReadingBuilder::new();
    for pair in split_outside_quotes(line)? {
        let pair = pair.trim();
        // Tolerate doubled or trailing commas.
        if pair.is_empty() {
            continue;
        }
        let Some((key, value)) = pair.split_once(':') else {
            return Err(Rejection::new(
                RejectReason::Malformed,
                format!("pair {} has no ':'", shown(pair)),
            ));
        };
        builder.add(unquote(key.trim()), present(unquote(value.trim())))?;
    }
    builder.finish()
}

/// `device_id <id> reported at timestamp <date time> with <k> <v>, ..., and <k> <v>.`
/// Keywords are matched case-insensitively and runs of spaces are fine.
fn parse_sentence(line: &str) -> Result<Reading, Rejection> {
    let not_recognised = || {
        Rejection::new(
            RejectReason::Malformed,
            format!(
                "expected 'device_id <id> reported at timestamp <time> with ...' or key:value pairs, got {}",
                shown(line)
            ),
        )
    };
    // The sentence ends with one period; strip exactly one so `12.5.`
    // keeps its decimal point.
    let body = line.strip_suffix('.').unwrap_or(line);

    let rest = expect_word(body, "device_id").ok_or_else(not_recognised)?;
    let (device_id, rest) = next_word(rest).ok_or_else(not_recognised)?;
    let rest = expect_word(rest, "reported").ok_or_else(not_recognised)?;
    let rest = expect_word(rest, "at").ok_or_else(not_recognised)?;
    let mut rest = expect_word(rest, "timestamp").ok_or_else(not_recognised)?;

    // The timestamp runs up to the word `with` (it contains a space), its
    // words rejoined with single spaces so extra spacing does not matter.
    let mut timestamp_words = Vec::new();
    let mut fields = "";
    while let Some((word, after)) = next_word(rest) {
        if word.eq_ignore_ascii_case("with") {
            fields = after;
            break;
        }
        timestamp_words.push(word);
        rest = after;
    }
    let timestamp = timestamp_words.join(" ");

    let mut builder = ReadingBuilder::new();
    builder.add("device_id", Some(RawValue::Text(device_id)))?;
    builder.add("timestamp", present(&timestamp))?;
    for pair in split_outside_quotes(fields)? {
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        let (mut key, mut value) = next_word(pair).ok_or_else(not_recognised)?;
        // `..., and status ok`: drop the `and`, unless it is itself the
        // key of a two-word pair.
        if key.eq_ignore_ascii_case("and")
            && let Some((next_key, next_value)) = next_word(value)
            && !next_value.trim().is_empty()
        {
            key = next_key;
            value = next_value;
        }
        let value = unquote(value.trim());
        if value.is_empty() {
            return Err(Rejection::new(
                RejectReason::Malformed,
                format!("field {} has no value", shown(key)),
            ));
        }
        builder.add(key, Some(RawValue::Text(value)))?;
    }
    builder.finish()
}

/// Splits off the first whitespace-delimited word: `(word, rest)`.
fn next_word(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start();
    if text.is_empty() {
        return None;
    }
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    text.split_at_checked(end)
}

/// Consumes `word` (case-insensitive) as the next word, returning the rest.
fn expect_word<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let (found, rest) = next_word(text)?;
    found.eq_ignore_ascii_case(word).then_some(rest)
}

/// Splits on commas that are not inside double quotes, so a quoted value may
/// contain commas. An unbalanced quote makes the line malformed.
fn split_outside_quotes(text: &str) -> Result<Vec<&str>, Rejection> {
    let mut parts = Vec::new();
    let mut in_quotes = false;
    let mut start = 0;
    for (index, c) in text.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => {
                parts.push(text.get(start..index).unwrap_or_default());
                start = index + 1;
            }
            _ => {}
        }
    }
    if in_quotes {
        return Err(Rejection::new(
            RejectReason::Malformed,
            format!("unbalanced double quote in {}", shown(text)),
        ));
    }
    parts.push(text.get(start..).unwrap_or_default());
    Ok(parts)
}

/// Removes one pair of surrounding double quotes. No escape processing: the
/// text formats have no escape syntax.
fn unquote(text: &str) -> &str {
    text.strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(text)
}

/// An empty value is an absent field, as in CSV.
fn present(text: &str) -> Option<RawValue<'_>> {
    (!text.is_empty()).then_some(RawValue::Text(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{Value, parse_number};

    fn num(text: &str) -> Value {
        Value::Number(parse_number(text).unwrap())
    }

    fn reject(line: &str) -> RejectReason {
        parse(line).unwrap_err().reason
    }

    const ORIGINAL: &str = "device_id VHC001 reported at timestamp 19-10-2025 22:47 with speed_kmph 73, fuel_level_percent 98, engine_temp_c 102, gps_latitude 12.398542, gps_longitude 79.921675, odometer_km 10365, and status maintenance_required.";

    #[test]
    fn original_sentence() {
        let reading = parse(ORIGINAL).unwrap();
        assert_eq!(reading.device_id, "VHC001");
        assert_eq!(
            reading.timestamp.to_rfc3339_millis(),
            "2025-10-19T22:47:00.000Z"
        );
        assert_eq!(
            reading.fields,
            vec![
                ("speed_kmph".to_string(), num("73")),
                ("fuel_level_percent".to_string(), num("98")),
                ("engine_temp_c".to_string(), num("102")),
                ("gps_latitude".to_string(), num("12.398542")),
                ("gps_longitude".to_string(), num("79.921675")),
                ("odometer_km".to_string(), num("10365")),
                (
                    "status".to_string(),
                    Value::Text("maintenance_required".into())
                ),
            ]
        );
    }

    #[test]
    fn sentence_tolerates_spacing_and_case() {
        let line = "  device_id   VHC001  Reported AT   timestamp  19-10-2025   22:47   WITH  speed_kmph  73 ,  and   status  ok .  ";
        let reading = parse(line).unwrap();
        assert_eq!(reading.device_id, "VHC001");
        assert_eq!(
            reading.timestamp.to_rfc3339_millis(),
            "2025-10-19T22:47:00.000Z"
        );
        assert_eq!(
            reading.fields,
            vec![
                ("speed_kmph".to_string(), num("73")),
                ("status".to_string(), Value::Text("ok".into())),
            ]
        );
    }

    #[test]
    fn sentence_strips_exactly_one_period() {
        let reading =
            parse("device_id A reported at timestamp 2025-11-15T10:00:00Z with gps_latitude 12.5.")
                .unwrap();
        assert_eq!(
            reading.fields,
            vec![("gps_latitude".to_string(), num("12.5"))]
        );
        let reading =
            parse("device_id A reported at timestamp 2025-11-15T10:00:00Z with note v1...")
                .unwrap();
        assert_eq!(reading.field("note"), Some(&Value::Text("v1..".into())));
    }

    #[test]
    fn sentence_variants() {
        // No fields at all.
        let reading = parse("device_id A reported at timestamp 19-10-2025 22:47.").unwrap();
        assert!(reading.fields.is_empty());
        // Multi-word and quoted values, a field literally named `and`.
        let reading = parse(
            r#"device_id A reported at timestamp 1760914020 with status needs service, note "a, b", and 5"#,
        )
        .unwrap();
        assert_eq!(
            reading.fields,
            vec![
                ("status".to_string(), Value::Text("needs service".into())),
                ("note".to_string(), Value::Text("a, b".into())),
                ("and".to_string(), num("5")),
            ]
        );
    }

    #[test]
    fn sentence_errors() {
        assert_eq!(reject("hello world"), RejectReason::Malformed);
        assert_eq!(reject("device_id"), RejectReason::Malformed);
        assert_eq!(
            reject("device_id A reported timestamp 19-10-2025 22:47"),
            RejectReason::Malformed
        );
        assert_eq!(
            reject("device_id A reported at timestamp 19-10-2025 22:47 with speed_kmph"),
            RejectReason::Malformed
        );
        assert_eq!(
            reject("device_id A reported at timestamp with speed_kmph 1"),
            RejectReason::MissingTimestamp
        );
        assert_eq!(
            reject("device_id A/B reported at timestamp 19-10-2025 22:47"),
            RejectReason::InvalidDeviceId
        );
        assert_eq!(
            reject("device_id A reported at timestamp 31-02-2025 22:47"),
            RejectReason::InvalidTimestamp
        );
        assert_eq!(
            reject("device_id A reported at timestamp 19-10-2025 22:47 with speed_kmph fast."),
            RejectReason::InvalidField
        );
        assert_eq!(
            reject("device_id A reported at timestamp 19-10-2025 22:47 with rpm 1, rpm 2."),
            RejectReason::DuplicateField
        );
        assert_eq!(
            reject(r#"device_id A reported at timestamp 19-10-2025 22:47 with note "x."#),
            RejectReason::Malformed
        );
    }

    #[test]
    fn key_value_pairs() {
        let reading =
            parse("device_id:VHC001, timestamp:2025-11-15T10:00:00Z, engine_temp_c:124.0").unwrap();
        assert_eq!(reading.device_id, "VHC001");
        assert_eq!(
            reading.timestamp.to_rfc3339_millis(),
            "2025-11-15T10:00:00.000Z"
        );
        assert_eq!(
            reading.fields,
            vec![("engine_temp_c".to_string(), num("124.0"))]
        );
    }

    #[test]
    fn key_value_quotes_spaces_and_empties() {
        let reading = parse(
            r#" "device_id" : "VHC001" ,timestamp : "19-10-2025 22:47",status:"a, b: c", rpm:"3000",, note:, "#,
        )
        .unwrap();
        assert_eq!(reading.device_id, "VHC001");
        assert_eq!(
            reading.fields,
            vec![
                ("status".to_string(), Value::Text("a, b: c".into())),
                ("rpm".to_string(), num("3000")),
            ]
        );
    }

    #[test]
    fn key_value_errors() {
        assert_eq!(
            reject("device_id:A, timestamp:0, oops"),
            RejectReason::Malformed
        );
        assert_eq!(
            reject("device_id:A, timestamp:0, :5"),
            RejectReason::Malformed
        );
        assert_eq!(reject("timestamp:0"), RejectReason::MissingDeviceId);
        assert_eq!(reject("device_id:A"), RejectReason::MissingTimestamp);
        assert_eq!(
            reject("device_id:A, timestamp:0, rpm:NaN"),
            RejectReason::InvalidNumber
        );
        assert_eq!(
            reject("device_id:A, timestamp:0, a:1, a:2"),
            RejectReason::DuplicateField
        );
        assert_eq!(
            reject("device_id:A, timestamp:0, note:\"x"),
            RejectReason::Malformed
        );
    }

    #[test]
    fn json_line_in_text_object() {
        let reading = parse(r#"{"device_id":"A","timestamp":0}"#).unwrap();
        assert_eq!(reading.device_id, "A");
    }

    #[test]
    fn weird_input_does_not_panic() {
        for line in [
            "\u{0}",
            "é:è",
            "🚗 🚗 🚗",
            ":",
            ",",
            "\"",
            "device_id \u{2028} reported at timestamp",
            "device_id A reported at timestamp 19-10-2025 22:47 with ,,,",
            "a:b:c:d",
            "device_id:\u{feff}",
        ] {
            let _ = parse(line);
        }
    }
}
