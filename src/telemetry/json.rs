//! JSON Lines: one JSON object per line.
//!
//! `serde_json` (without `arbitrary_precision`/`preserve_order`, which the
//! crate does not enable) would turn numbers into f64 and sort or collapse
//! keys. Readings need the exact number text (`0.1`, big integers), the
//! input field order and duplicate detection, so the line is validated with
//! `serde_json` and then its top-level members are walked here by hand;
//! `serde_json` still decodes every string so escapes are handled properly.

use std::borrow::Cow;

use serde::de::IgnoredAny;

use super::fields::{RawValue, ReadingBuilder};
use super::reading::Reading;
use super::{RejectReason, Rejection};

pub(crate) fn parse(line: &str) -> Result<Reading, Rejection> {
    // Full validation first: afterwards the walk below only ever sees
    // well-formed JSON, which keeps it simple. serde_json ignores values
    // iteratively, so deep nesting cannot overflow the stack.
    if let Err(error) = serde_json::from_str::<IgnoredAny>(line) {
        return Err(Rejection::new(
            RejectReason::Malformed,
            format!("invalid JSON: {error}"),
        ));
    }
    let mut walker = Walker { text: line, pos: 0 };
    walker.skip_whitespace();
    if !walker.eat(b'{') {
        return Err(Rejection::new(
            RejectReason::Malformed,
            "line is JSON but not an object",
        ));
    }
    let mut builder = ReadingBuilder::new();
    walker.skip_whitespace();
    if !walker.eat(b'}') {
        loop {
            walker.skip_whitespace();
            let key_text = walker.string().ok_or_else(unexpected)?;
            let key = unescape(key_text).map_err(|error| {
                Rejection::new(RejectReason::Malformed, format!("bad field name: {error}"))
            })?;
            walker.skip_whitespace();
            if !walker.eat(b':') {
                return Err(unexpected());
            }
            walker.skip_whitespace();
            let value = walker.value()?;
            builder.add(&key, value)?;
            walker.skip_whitespace();
            if walker.eat(b',') {
                continue;
            }
            if walker.eat(b'}') {
                break;
            }
            return Err(unexpected());
        }
    }
    builder.finish()
}

/// The text of a validated JSON string token (quotes included): the slice
/// between the quotes when it has no escape, else `serde_json`'s decoding.
fn unescape(token: &str) -> Result<Cow<'_, str>, serde_json::Error> {
    match token.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) if !inner.contains('\\') => Ok(Cow::Borrowed(inner)),
        _ => serde_json::from_str::<String>(token).map(Cow::Owned),
    }
}

/// Only reachable if validation and the walk disagree; a rejection rather
/// than a panic keeps the fuzzing promise even then.
fn unexpected() -> Rejection {
    Rejection::new(RejectReason::Malformed, "unexpected JSON structure")
}

/// A cursor over already-validated JSON text.
struct Walker<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Walker<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// Text consumed since `start`.
    fn since(&self, start: usize) -> Option<&'a str> {
        self.text.get(start..self.pos)
    }

    /// A string token including its quotes.
    fn string(&mut self) -> Option<&'a str> {
        let start = self.pos;
        if !self.eat(b'"') {
            return None;
        }
        loop {
            match self.peek()? {
                b'\\' => self.pos += 2,
                b'"' => {
                    self.pos += 1;
                    return self.since(start);
                }
                _ => self.pos += 1,
            }
        }
    }

    /// An object or array including its brackets, skipping over strings so
    /// brackets inside them do not count.
    fn composite(&mut self) -> Option<&'a str> {
        let start = self.pos;
        let mut depth: usize = 0;
        loop {
            match self.peek()? {
                b'"' => {
                    self.string()?;
                }
                b'{' | b'[' => {
                    depth += 1;
                    self.pos += 1;
                }
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    self.pos += 1;
                    if depth == 0 {
                        return self.since(start);
                    }
                }
                _ => self.pos += 1,
            }
        }
    }

    /// One member value; `None` inside the `Ok` is JSON `null` (absent).
    fn value(&mut self) -> Result<Option<RawValue<'a>>, Rejection> {
        let start = self.pos;
        match self.peek().ok_or_else(unexpected)? {
            b'"' => {
                let token = self.string().ok_or_else(unexpected)?;
                let text = unescape(token).map_err(|error| {
                    Rejection::new(RejectReason::Malformed, format!("bad string: {error}"))
                })?;
                Ok(Some(RawValue::JsonString(text)))
            }
            b'{' | b'[' => {
                let token = self.composite().ok_or_else(unexpected)?;
                Ok(Some(RawValue::JsonComposite(compact(token))))
            }
            b't' => self.literal("true", Some(RawValue::JsonBool(true))),
            b'f' => self.literal("false", Some(RawValue::JsonBool(false))),
            b'n' => self.literal("null", None),
            _ => {
                while matches!(
                    self.peek(),
                    Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                ) {
                    self.pos += 1;
                }
                let token = self.since(start).ok_or_else(unexpected)?;
                if token.is_empty() {
                    return Err(unexpected());
                }
                Ok(Some(RawValue::JsonNumber(token)))
            }
        }
    }

    fn literal(
        &mut self,
        word: &str,
        value: Option<RawValue<'a>>,
    ) -> Result<Option<RawValue<'a>>, Rejection> {
        let rest = self.text.get(self.pos..).ok_or_else(unexpected)?;
        if !rest.starts_with(word) {
            return Err(unexpected());
        }
        self.pos += word.len();
        Ok(value)
    }
}

/// Removes insignificant whitespace from valid JSON, keeping its exact
/// number text and key order (a round trip through `serde_json::Value`
/// would change both).
fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            if c == '"' {
                in_string = true;
            }
            out.push(c);
        }
    }
    out
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

    #[test]
    fn basic_line() {
        let reading = parse(
            r#"{"device_id":"VHC001","timestamp":"2025-11-15T10:00:00Z","engine_temp_c":124.0}"#,
        )
        .unwrap();
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
    fn numbers_keep_their_text() {
        let reading = parse(
            r#"{"device_id":"A","timestamp":0,"x":0.1,"y":1e3,"z":123456789012345678901234567890,"w":-0,"v":1E-5}"#,
        )
        .unwrap();
        let texts: Vec<String> = reading
            .fields
            .iter()
            .map(|(_, v)| match v {
                Value::Number(n) => n.as_str().to_string(),
                Value::Text(t) => format!("text:{t}"),
            })
            .collect();
        assert_eq!(
            texts,
            ["0.1", "1e3", "123456789012345678901234567890", "-0", "1e-5"]
        );
        // Too many digits for DynamoDB: kept as text for an unknown field,
        // rejected for a known numeric one.
        let big = "1".repeat(40);
        let reading = parse(&format!(r#"{{"device_id":"A","timestamp":0,"x":{big}}}"#)).unwrap();
        assert_eq!(reading.field("x"), Some(&Value::Text(big.clone())));
        assert_eq!(
            reject(&format!(r#"{{"device_id":"A","timestamp":0,"rpm":{big}}}"#)),
            RejectReason::InvalidNumber
        );
    }

    #[test]
    fn value_kinds() {
        let reading = parse(
            r#" { "device_id" : "A" , "timestamp" : 1760914020123 , "status" : "ok \"quoted\" \u00e9" , "flag" : true , "off" : false , "gone" : null , "obj" : { "b" : [ 1 , "x y" ] , "a" : 2.50 } , "rpm" : "3000" , "code" : "42" } "#,
        )
        .unwrap();
        assert_eq!(
            reading.timestamp.to_rfc3339_millis(),
            "2025-10-19T22:47:00.123Z"
        );
        assert_eq!(
            reading.fields,
            vec![
                ("status".to_string(), Value::Text("ok \"quoted\" é".into())),
                ("flag".to_string(), Value::Text("true".into())),
                ("off".to_string(), Value::Text("false".into())),
                (
                    "obj".to_string(),
                    Value::Text(r#"{"b":[1,"x y"],"a":2.50}"#.into())
                ),
                ("rpm".to_string(), num("3000")),
                ("code".to_string(), Value::Text("42".into())),
            ]
        );
    }

    #[test]
    fn timestamp_as_string_or_epoch() {
        for ts in [
            r#""2025-10-19T22:47:00Z""#,
            "1760914020",
            "1760914020000",
            r#""19-10-2025 22:47""#,
            "1760914020.0",
        ] {
            let line = format!(r#"{{"device_id":"A","timestamp":{ts}}}"#);
            let reading = parse(&line).unwrap();
            assert_eq!(
                reading.timestamp.to_rfc3339_millis(),
                "2025-10-19T22:47:00.000Z",
                "{ts}"
            );
        }
        assert_eq!(
            reject(r#"{"device_id":"A","timestamp":true}"#),
            RejectReason::InvalidTimestamp
        );
        assert_eq!(
            reject(r#"{"device_id":"A","timestamp":{"s":1}}"#),
            RejectReason::InvalidTimestamp
        );
        assert_eq!(
            reject(r#"{"device_id":"A","timestamp":null}"#),
            RejectReason::MissingTimestamp
        );
    }

    #[test]
    fn device_id_must_be_a_string() {
        assert_eq!(
            reject(r#"{"device_id":1,"timestamp":0}"#),
            RejectReason::InvalidDeviceId
        );
        assert_eq!(
            reject(r#"{"device_id":["A"],"timestamp":0}"#),
            RejectReason::InvalidDeviceId
        );
        assert_eq!(
            reject(r#"{"device_id":null,"timestamp":0}"#),
            RejectReason::MissingDeviceId
        );
        assert_eq!(reject(r#"{}"#), RejectReason::MissingDeviceId);
    }

    #[test]
    fn numeric_fields() {
        for value in [r#""fast""#, "true", "{}", "[1]", r#""""#] {
            let line = format!(r#"{{"device_id":"A","timestamp":0,"speed_kmph":{value}}}"#);
            let rejection = parse(&line).unwrap_err();
            assert_eq!(rejection.reason, RejectReason::InvalidField, "{value}");
            assert!(rejection.detail.contains("speed_kmph"));
        }
        for value in [r#""NaN""#, r#""-Infinity""#, "1e200"] {
            let line = format!(r#"{{"device_id":"A","timestamp":0,"speed_kmph":{value}}}"#);
            assert_eq!(
                parse(&line).unwrap_err().reason,
                RejectReason::InvalidNumber,
                "{value}"
            );
        }
    }

    #[test]
    fn malformed_lines() {
        for line in [
            "{",
            r#"{"device_id":"A",}"#,
            r#"{"device_id":"A"} x"#,
            r#"{"device_id":"A"}{"b":1}"#,
            "[1,2]",
            r#""text""#,
            "42",
            "{'a':1}",
            r#"{"a":NaN}"#,
            "{\"a\":\"\u{0}\"}",
            r#"{"a\u0000b":1,"device_id":"A","timestamp":0}"#,
        ] {
            assert_eq!(reject(line), RejectReason::Malformed, "{line:?}");
        }
    }

    #[test]
    fn duplicates_are_detected() {
        assert_eq!(
            reject(r#"{"device_id":"A","timestamp":0,"a":1,"a":1}"#),
            RejectReason::DuplicateField
        );
        assert_eq!(
            reject(r#"{"device_id":"A","device_id":"A","timestamp":0}"#),
            RejectReason::DuplicateField
        );
        // Escapes are decoded before comparing names.
        assert_eq!(
            reject(r#"{"device_id":"A","timestamp":0,"a":1,"\u0061":1}"#),
            RejectReason::DuplicateField
        );
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let deep = format!(
            r#"{{"device_id":"A","timestamp":0,"x":{}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let _ = parse(&deep);
    }

    #[test]
    fn brackets_inside_strings() {
        let reading =
            parse(r#"{"device_id":"A","timestamp":0,"x":{"k":"}] \"{["},"y":1}"#).unwrap();
        assert_eq!(
            reading.field("x"),
            Some(&Value::Text(r#"{"k":"}] \"{["}"#.into()))
        );
        assert_eq!(reading.field("y"), Some(&num("1")));
    }

    #[test]
    fn compact_keeps_string_whitespace() {
        assert_eq!(
            compact("[ \"a b\" , { \"c\\\" d\" : 1 } ]"),
            r#"["a b",{"c\" d":1}]"#
        );
    }
}
