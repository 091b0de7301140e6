//! `fleetwatch history DEVICE`: one vehicle's readings and predictions, or
//! their summary (per field count/min/max/mean, the share of POSITIVE
//! predictions, the alerts raised), from one paginated DynamoDB Query on
//! the device's key range — never a Scan.

use std::collections::BTreeMap;
use std::io::Write;

use crate::config::{HistorySettings, Limit, OutputFormat};
use crate::ops::output::{self, Item, KeyRange};
use crate::preflight::PreflightError;
use crate::storage::{OWNED_ATTRIBUTES, PREDICTION, SOURCE, TIMESTAMP};
use crate::telemetry::{NUMERIC_FIELDS, Timestamp};

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Aws(#[from] PreflightError),
    #[error("writing the output failed: {0}")]
    Output(#[from] std::io::Error),
}

/// The selected time range, as sort-key bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    /// Readings at or after this time (`--since`, `--from`).
    pub from: Option<Timestamp>,
    /// Readings at or before this time (`--to`).
    pub to: Option<Timestamp>,
}

impl Range {
    pub fn of(settings: &HistorySettings, now: Timestamp) -> Range {
        match settings.since {
            Some(since) => Range {
                from: Some(Timestamp::from_unix_millis(
                    now.unix_millis()
                        .saturating_sub(since.as_millis().min(i64::MAX as u128) as i64),
                )),
                to: None,
            },
            None => Range {
                from: settings.from,
                to: settings.to,
            },
        }
    }

    fn contains(&self, at: &str) -> bool {
        self.from
            .is_none_or(|f| at >= f.to_rfc3339_millis().as_str())
            && self.to.is_none_or(|t| at <= t.to_rfc3339_millis().as_str())
    }
}

/// `fleetwatch history`: the AWS environment's clients, printing to stdout.
pub async fn command(settings: &HistorySettings) -> Result<(), HistoryError> {
    let clients = crate::aws::Clients::new(&crate::aws::load().await, false);
    let mut stdout = std::io::stdout().lock();
    run(&clients.dynamodb, settings, &mut stdout).await
}

/// Runs the command, printing to `out`.
pub async fn run(
    dynamodb: &aws_sdk_dynamodb::Client,
    settings: &HistorySettings,
    out: &mut impl Write,
) -> Result<(), HistoryError> {
    let range = Range::of(settings, Timestamp::now());
    // Newest first so `--limit` keeps the most recent; printed oldest first.
    let mut readings = output::query(
        dynamodb,
        &KeyRange {
            table: &settings.table.name,
            partition: &settings.device,
            from: range.from.map(Timestamp::to_rfc3339_millis),
            to: range.to.map(Timestamp::to_rfc3339_millis),
            descending: true,
            limit: match settings.limit {
                Limit::All => None,
                Limit::Most(n) => Some(n),
            },
        },
    )
    .await?;
    readings.reverse();
    let text = if settings.summary {
        let alerts = output::query(
            dynamodb,
            &KeyRange {
                table: &settings.alarms.alarm_table,
                partition: &format!("alert#{}", settings.device),
                from: None,
                to: None,
                descending: false,
                limit: None,
            },
        )
        .await?;
        let summary = Summary::of(&settings.device, &range, &readings, &alerts);
        summary.render(settings.format)
    } else {
        render_readings(&settings.device, &readings, settings.format)
    };
    out.write_all(text.as_bytes())?;
    Ok(())
}

/// The columns of the readings: the known numeric fields in their usual
/// order, then the other input fields by name.
fn field_columns(readings: &[Item]) -> Vec<String> {
    let mut others = std::collections::BTreeSet::new();
    let mut known = vec![false; NUMERIC_FIELDS.len()];
    for item in readings {
        for name in item.keys() {
            match NUMERIC_FIELDS.iter().position(|f| f == name) {
                Some(i) => known[i] = true,
                None if !OWNED_ATTRIBUTES.contains(&name.as_str()) => {
                    others.insert(name.clone());
                }
                None => {}
            }
        }
    }
    NUMERIC_FIELDS
        .iter()
        .zip(known)
        .filter(|(_, k)| *k)
        .map(|(f, _)| (*f).to_owned())
        .chain(others)
        .collect()
}

fn prediction_cells(item: &Item) -> [String; 3] {
    match item.get(PREDICTION) {
        Some(aws_sdk_dynamodb::types::AttributeValue::M(p)) => [
            output::cell(p.get("label")),
            output::cell(p.get("score")),
            output::cell(p.get("model")),
        ],
        _ => Default::default(),
    }
}

fn render_readings(device: &str, readings: &[Item], format: OutputFormat) -> String {
    if format == OutputFormat::Json {
        return readings
            .iter()
            .map(|item| output::item_json(item).to_string() + "\n")
            .collect();
    }
    let fields = field_columns(readings);
    let mut header: Vec<String> = ["timestamp", "prediction", "score"]
        .map(String::from)
        .to_vec();
    header.extend(fields.iter().cloned());
    if format == OutputFormat::Csv {
        header.extend(["model", "source_key", "source_line"].map(String::from));
    }
    let rows: Vec<Vec<String>> = readings
        .iter()
        .map(|item| {
            let [label, score, model] = prediction_cells(item);
            let mut row = vec![output::cell(item.get(TIMESTAMP)), label, score];
            row.extend(fields.iter().map(|f| output::cell(item.get(f))));
            if format == OutputFormat::Csv {
                let source = match item.get(SOURCE) {
                    Some(aws_sdk_dynamodb::types::AttributeValue::M(s)) => {
                        [output::cell(s.get("key")), output::cell(s.get("line"))]
                    }
                    _ => Default::default(),
                };
                row.push(model);
                row.extend(source);
            }
            row
        })
        .collect();
    match format {
        OutputFormat::Csv => output::csv(&header, &rows),
        _ if readings.is_empty() => format!("no readings of {device} in the range\n"),
        _ => output::table(&header, &rows),
    }
}

/// Count, min, max and mean of one numeric field.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct FieldStats {
    pub count: u64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
}

/// One alert of the device, from the alert ledger.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AlertEntry {
    pub rule: String,
    /// Start of the cooldown window the alert covers.
    pub window_start: String,
    /// `sent`, `pending` (being published) or `rejected` (SNS refused it).
    pub state: String,
    /// `safety` or `maintenance`.
    pub kind: String,
    /// Breaching readings in the window (as far as the claiming object showed).
    pub breaches: String,
    pub worst_value: String,
    /// The object whose readings raised it.
    pub source_key: String,
}

/// `--summary`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Summary {
    pub device_id: String,
    /// First and last reading selected.
    pub first: Option<String>,
    pub last: Option<String>,
    pub readings: u64,
    /// Per numeric field, by name.
    pub fields: BTreeMap<String, FieldStats>,
    /// Readings with a POSITIVE or NEGATIVE prediction.
    pub predicted: u64,
    pub positive: u64,
    /// `positive / predicted`, when anything was predicted.
    pub positive_share: Option<f64>,
    /// Alerts whose window starts in the range.
    pub alerts: Vec<AlertEntry>,
}

impl Summary {
    pub fn of(device: &str, range: &Range, readings: &[Item], ledger: &[Item]) -> Summary {
        let mut fields: BTreeMap<String, FieldStats> = BTreeMap::new();
        let (mut predicted, mut positive) = (0, 0);
        for item in readings {
            for (name, value) in item {
                let aws_sdk_dynamodb::types::AttributeValue::N(n) = value else {
                    continue;
                };
                if OWNED_ATTRIBUTES.contains(&name.as_str()) {
                    continue;
                }
                let Ok(v) = n.parse::<f64>() else { continue };
                let s = fields.entry(name.clone()).or_insert(FieldStats {
                    count: 0,
                    min: f64::INFINITY,
                    max: f64::NEG_INFINITY,
                    mean: 0.0,
                });
                s.count += 1;
                s.min = s.min.min(v);
                s.max = s.max.max(v);
                // Running mean: no overflow of a sum, whatever the count.
                s.mean += (v - s.mean) / s.count as f64;
            }
            match prediction_cells(item)[0].as_str() {
                "POSITIVE" => {
                    predicted += 1;
                    positive += 1;
                }
                "NEGATIVE" => predicted += 1,
                _ => {}
            }
        }
        let alerts = ledger
            .iter()
            .filter_map(|item| {
                let (rule, window) =
                    output::string(item, crate::alarms::store::RECORD)?.rsplit_once('#')?;
                range.contains(window).then(|| AlertEntry {
                    rule: rule.to_owned(),
                    window_start: window.to_owned(),
                    state: output::cell(item.get("state")),
                    kind: output::cell(item.get("kind")),
                    breaches: output::cell(item.get("breaches")),
                    worst_value: output::cell(item.get("worst_value")),
                    source_key: output::cell(item.get("source_key")),
                })
            })
            .collect();
        Summary {
            device_id: device.to_owned(),
            first: readings
                .first()
                .and_then(|i| output::string(i, TIMESTAMP))
                .map(str::to_owned),
            last: readings
                .last()
                .and_then(|i| output::string(i, TIMESTAMP))
                .map(str::to_owned),
            readings: readings.len() as u64,
            fields,
            predicted,
            positive,
            positive_share: (predicted > 0).then(|| positive as f64 / predicted as f64),
            alerts,
        }
    }

    pub fn render(&self, format: OutputFormat) -> String {
        let header: Vec<String> = ["field", "count", "min", "max", "mean"]
            .map(String::from)
            .to_vec();
        let rows: Vec<Vec<String>> = self
            .fields
            .iter()
            .map(|(name, s)| {
                vec![
                    name.clone(),
                    s.count.to_string(),
                    short(s.min),
                    short(s.max),
                    short(s.mean),
                ]
            })
            .collect();
        match format {
            OutputFormat::Json => serde_json::to_string(self).unwrap_or_default() + "\n",
            OutputFormat::Csv => output::csv(&header, &rows),
            OutputFormat::Table => {
                let mut out = format!(
                    "{}: {} readings, {} to {}\n\n",
                    self.device_id,
                    self.readings,
                    self.first.as_deref().unwrap_or("-"),
                    self.last.as_deref().unwrap_or("-")
                );
                out.push_str(&output::table(&header, &rows));
                out.push_str(&match self.positive_share {
                    Some(share) => format!(
                        "\npredictions: {} of {} POSITIVE ({:.1} %)\n",
                        self.positive,
                        self.predicted,
                        share * 100.0
                    ),
                    None => "\npredictions: none\n".to_owned(),
                });
                if self.alerts.is_empty() {
                    out.push_str("alerts: none in the range\n");
                } else {
                    out.push_str(&format!("alerts: {}\n", self.alerts.len()));
                    let header: Vec<String> = [
                        "window_start",
                        "rule",
                        "kind",
                        "state",
                        "breaches",
                        "worst",
                        "object",
                    ]
                    .map(String::from)
                    .to_vec();
                    let rows: Vec<Vec<String>> = self
                        .alerts
                        .iter()
                        .map(|a| {
                            vec![
                                a.window_start.clone(),
                                a.rule.clone(),
                                a.kind.clone(),
                                a.state.clone(),
                                a.breaches.clone(),
                                a.worst_value.clone(),
                                a.source_key.clone(),
                            ]
                        })
                        .collect();
                    out.push_str(&output::table(&header, &rows));
                }
                out
            }
        }
    }
}

/// At most three decimals, no trailing zeros.
fn short(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue as A;

    fn reading(ts: &str, temp: &str, label: &str) -> Item {
        Item::from([
            ("device_id".into(), A::S("V1".into())),
            ("timestamp".into(), A::S(ts.into())),
            ("engine_temp_c".into(), A::N(temp.into())),
            (
                "prediction".into(),
                A::M(
                    [("label".to_owned(), A::S(label.into()))]
                        .into_iter()
                        .collect(),
                ),
            ),
        ])
    }

    #[test]
    fn summary_counts_fields_and_predictions() {
        let readings = [
            reading("2025-01-01T00:00:00.000Z", "90", "NEGATIVE"),
            reading("2025-01-01T00:01:00.000Z", "110", "POSITIVE"),
        ];
        let ledger = [Item::from([
            (
                "record".into(),
                A::S("engine_temp_c > 100#2025-01-01T00:00:00.000Z".into()),
            ),
            ("state".into(), A::S("sent".into())),
        ])];
        let range = Range {
            from: None,
            to: None,
        };
        let s = Summary::of("V1", &range, &readings, &ledger);
        let t = s.fields["engine_temp_c"];
        assert_eq!((t.count, t.min, t.max, t.mean), (2, 90.0, 110.0, 100.0));
        assert_eq!(
            (s.predicted, s.positive, s.positive_share),
            (2, 1, Some(0.5))
        );
        assert_eq!(s.alerts[0].rule, "engine_temp_c > 100");
        assert_eq!(short(100.0), "100");
        assert_eq!(short(0.12345), "0.123");
    }
}
