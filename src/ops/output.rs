//! What the operator tools share to read and print DynamoDB items: a
//! paginated Query, AttributeValue → JSON, and aligned tables / CSV.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::config::OutputFormat;
use crate::preflight::{self, PreflightError};

pub type Item = HashMap<String, AttributeValue>;

/// One key-range Query, every page of it (never a Scan).
#[derive(Debug, Clone)]
pub struct KeyRange<'a> {
    /// The table (`FLEETWATCH_TABLE`), named in errors.
    pub table: &'a str,
    /// The partition: a device, `alert#<device>` or `fleet#status`.
    pub partition: &'a str,
    /// Sort keys at or after this one.
    pub from: Option<String>,
    /// Sort keys at or before this one.
    pub to: Option<String>,
    /// Newest (highest sort key) first.
    pub descending: bool,
    /// Stop after this many items.
    pub limit: Option<usize>,
}

/// Runs the Query page by page until the range or the limit is exhausted.
pub async fn query(
    client: &aws_sdk_dynamodb::Client,
    range: &KeyRange<'_>,
) -> Result<Vec<Item>, PreflightError> {
    let condition = match (&range.from, &range.to) {
        (Some(_), Some(_)) => "device_id = :d AND #ts BETWEEN :from AND :to",
        (Some(_), None) => "device_id = :d AND #ts >= :from",
        (None, Some(_)) => "device_id = :d AND #ts <= :to",
        (None, None) => "device_id = :d",
    };
    let resource = format!("DynamoDB table {} (FLEETWATCH_TABLE)", range.table);
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let mut request = client
            .query()
            .table_name(range.table)
            .key_condition_expression(condition)
            .expression_attribute_values(":d", AttributeValue::S(range.partition.to_owned()))
            .scan_index_forward(!range.descending)
            .set_exclusive_start_key(start.take());
        if range.from.is_some() || range.to.is_some() {
            // `timestamp` is a DynamoDB reserved word.
            request = request.expression_attribute_names("#ts", crate::storage::TIMESTAMP);
        }
        if let Some(from) = &range.from {
            request = request.expression_attribute_values(":from", AttributeValue::S(from.clone()));
        }
        if let Some(to) = &range.to {
            request = request.expression_attribute_values(":to", AttributeValue::S(to.clone()));
        }
        if let Some(limit) = range.limit {
            let left = limit.saturating_sub(items.len()).clamp(1, 1000);
            request = request.limit(left as i32);
        }
        let page = request
            .send()
            .await
            .map_err(|e| preflight::classify("dynamodb:Query", &resource, &e))?;
        items.extend(page.items.unwrap_or_default());
        if let Some(limit) = range.limit
            && items.len() >= limit
        {
            items.truncate(limit);
            return Ok(items);
        }
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(items),
        }
    }
}

/// An attribute as JSON: N as a JSON number (as a string when JSON cannot
/// hold it), S as a string, maps and lists as such.
pub fn to_json(value: &AttributeValue) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        AttributeValue::S(s) => J::String(s.clone()),
        AttributeValue::N(n) => n
            .parse::<serde_json::Number>()
            .map_or_else(|_| J::String(n.clone()), J::Number),
        AttributeValue::Bool(b) => J::Bool(*b),
        AttributeValue::Null(_) => J::Null,
        AttributeValue::M(m) => item_json(m),
        AttributeValue::L(l) => J::Array(l.iter().map(to_json).collect()),
        AttributeValue::Ss(v) => J::Array(v.iter().cloned().map(J::String).collect()),
        AttributeValue::Ns(v) => J::Array(
            v.iter()
                .map(|n| to_json(&AttributeValue::N(n.clone())))
                .collect(),
        ),
        other => J::String(format!("{other:?}")),
    }
}

/// A whole item (or map) as a JSON object, keys sorted.
pub fn item_json(item: &Item) -> serde_json::Value {
    let sorted: std::collections::BTreeMap<&String, serde_json::Value> =
        item.iter().map(|(k, v)| (k, to_json(v))).collect();
    serde_json::json!(sorted)
}

/// An attribute as one cell of text: numbers and strings as stored.
pub fn cell(value: Option<&AttributeValue>) -> String {
    match value {
        None => String::new(),
        Some(AttributeValue::S(s)) => s.clone(),
        Some(AttributeValue::N(n)) => n.clone(),
        Some(other) => to_json(other).to_string(),
    }
}

/// A string attribute, if it is one.
pub fn string<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    }
}

/// A number attribute as f64, if it is one.
pub fn number(item: &Item, name: &str) -> Option<f64> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

/// Rows as aligned columns under a header (two spaces between columns).
pub fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, c) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  "));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(header);
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

/// Rows as CSV under a header (RFC 4180 quoting).
pub fn csv(header: &[String], rows: &[Vec<String>]) -> String {
    let quote = |c: &String| {
        if c.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", c.replace('"', "\"\""))
        } else {
            c.clone()
        }
    };
    let mut out = String::new();
    for row in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        out.push_str(&row.iter().map(quote).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

/// Writes command output to stdout; a closed pipe (`| head`) is not an error.
pub fn emit(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e),
        _ => Ok(()),
    }
}

/// Rows as `format`: aligned columns (`empty` when there are none), CSV,
/// or one JSON object of strings per line.
pub fn render(
    header: &[String],
    rows: &[Vec<String>],
    format: OutputFormat,
    empty: &str,
) -> String {
    match format {
        OutputFormat::Table if rows.is_empty() => empty.to_owned(),
        OutputFormat::Table => table(header, rows),
        OutputFormat::Csv => csv(header, rows),
        OutputFormat::Json => rows
            .iter()
            .map(|row| {
                let object: serde_json::Map<String, serde_json::Value> = header
                    .iter()
                    .zip(row)
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect();
                format!("{}\n", serde_json::Value::Object(object))
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_csv() {
        let header = vec!["a".to_owned(), "bb".to_owned()];
        let rows = vec![vec!["xxx".to_owned(), "y".to_owned()]];
        assert_eq!(table(&header, &rows), "a    bb\nxxx  y\n");
        let rows = vec![vec!["x,y".to_owned(), "q\"".to_owned()]];
        assert_eq!(csv(&header, &rows), "a,bb\n\"x,y\",\"q\"\"\"\n");
        assert_eq!(
            to_json(&AttributeValue::N("1.50".into())),
            serde_json::json!(1.5)
        );
    }
}
