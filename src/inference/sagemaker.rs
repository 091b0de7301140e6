//! Predictions from a SageMaker endpoint.
//!
//! Three request formats (`FLEETWATCH_SAGEMAKER_FORMAT`):
//! - `csv` (default): batches of `text/csv` rows of the model's features,
//!   no header, an empty cell for a missing value: the contract of the
//!   built-in XGBoost container, which serves the same model file as the
//!   embedded backend, so both give the same answers.
//! - `json`: the same rows as SageMaker's common JSON request format,
//!   `{"instances":[{"features":[…]}]}` with `null` for a missing value, for
//!   custom containers that take JSON.
//! - `text`: the original deployment's contract, kept for users of an
//!   existing endpoint: one raw telemetry line per call as
//!   `application/x-text`, answered with `{"probabilities":[…]}` in the
//!   label order given by `FLEETWATCH_SAGEMAKER_LABELS`. That endpoint is
//!   not ours: unless `FLEETWATCH_SAGEMAKER_THRESHOLD` is set, its own
//!   decision (the most probable label) is the label ([`Decision`]).
//!
//! Batches are split by row count and by payload bytes (real-time endpoints
//! refuse requests over 6 MB); several requests are in flight at once and
//! the answers are put back in row order. Throttling and 5xx are retried by
//! the SDK; a call that still fails fails the batch (never a made-up label),
//! and the pipeline holds the message while the endpoint is down. A request
//! refused for its content (a 4xx such as `ModelError`) is split until the
//! rows at fault are alone: those readings are rejected, the rest scored.
//! When every row is refused, the endpoint refuses this kind of request
//! (another model, a wrong format): that holds the message instead.

use aws_sdk_sagemakerruntime::error::DisplayErrorContext;
use aws_sdk_sagemakerruntime::primitives::Blob;
use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::features::{FEATURE_NAMES, csv_row};
use super::{InferenceError, Label, Prediction};
use crate::failure::{Classify, FailureClass, classify_sdk};

/// One score per row; `None` for a row the endpoint refused.
pub type Scores = Vec<Option<Score>>;

/// One row's answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// Probability of POSITIVE, in [0, 1]: what is stored as the score.
    pub probability: f64,
    /// In `text` mode, whether POSITIVE is the endpoint's most probable
    /// label: its own decision, kept when no threshold is set. `None` for
    /// answers that carry one probability only (CSV, JSON).
    pub endpoint_says_positive: Option<bool>,
}

/// How a score becomes a label.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// POSITIVE at or above this probability (`FLEETWATCH_SAGEMAKER_THRESHOLD`,
    /// or the model's threshold for an endpoint serving our model).
    Threshold(f64),
    /// The endpoint's own decision: its most probable label in `text` mode,
    /// a probability of at least 0.5 for answers of one probability.
    EndpointLabel,
}

impl Decision {
    fn label(self, score: Score) -> Label {
        match (self, score.endpoint_says_positive) {
            (Decision::Threshold(t), _) => Label::from_score(score.probability, t),
            (Decision::EndpointLabel, Some(true)) => Label::Positive,
            (Decision::EndpointLabel, Some(false)) => Label::Negative,
            (Decision::EndpointLabel, None) => Label::from_score(score.probability, 0.5),
        }
    }
}

/// Calls spent splitting one refused request to find its rows at fault
/// (a single bad row among 500 takes about 18).
const MAX_SPLIT_CALLS: usize = 64;

/// Rows per request.
pub const MAX_ROWS: usize = 500;
/// Payload bytes per request, kept under the 6 MB real-time limit.
pub const MAX_PAYLOAD_BYTES: usize = 5 * 1024 * 1024;
/// Requests in flight per batch.
const IN_FLIGHT: usize = 4;
/// Requests in flight in `text` mode, where each carries a single line.
const TEXT_IN_FLIGHT: usize = 8;

/// How readings are sent to the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestFormat {
    Csv,
    Json,
    /// One raw line per call; `labels` names the classes in the order of
    /// the endpoint's `probabilities`.
    Text {
        labels: Vec<String>,
    },
}

#[derive(Debug, Clone)]
pub struct SageMakerPredictor {
    client: aws_sdk_sagemakerruntime::Client,
    endpoint: String,
    format: RequestFormat,
    /// How answers become labels.
    decision: Decision,
    model_id: String,
}

impl SageMakerPredictor {
    pub fn new(
        client: aws_sdk_sagemakerruntime::Client,
        endpoint: String,
        format: RequestFormat,
        decision: Decision,
    ) -> Self {
        let model_id = format!("sagemaker:{endpoint}");
        SageMakerPredictor {
            client,
            endpoint,
            format,
            decision,
            model_id,
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// How answers become labels.
    pub fn decision(&self) -> Decision {
        self.decision
    }

    /// Whether predictions need the raw input lines (`text` mode).
    pub fn needs_raw_lines(&self) -> bool {
        matches!(self.format, RequestFormat::Text { .. })
    }

    /// Scores feature rows (row-major, [`FEATURE_NAMES`] per row) in `csv`
    /// or `json` mode. Rows the endpoint refuses for their content (a 4xx
    /// such as `ModelError`) are found by splitting the refused request and
    /// come back as `None`; the rest are scored.
    pub async fn predict_rows(&self, rows: &[f32]) -> Result<Scores, InferenceError> {
        let rows: Vec<&[f32]> = rows.chunks(FEATURE_NAMES.len()).collect();
        let payloads = self.payloads(&rows);
        // `buffered` (not `buffer_unordered`) keeps the answers in row order.
        let mut offset = 0;
        let requests = payloads.into_iter().map(|(body, n)| {
            let part = &rows[offset..offset + n];
            offset += n;
            self.score_part(body, part)
        });
        let answers: Vec<Scores> = stream::iter(requests)
            .buffered(IN_FLIGHT)
            .try_collect()
            .await?;
        self.all_refused(answers.into_iter().flatten().collect())
    }

    /// Scores raw lines in `text` mode, one per call; a line the endpoint
    /// refuses for its content comes back as `None`.
    pub async fn predict_lines(&self, raw: &[String]) -> Result<Scores, InferenceError> {
        let RequestFormat::Text { labels } = &self.format else {
            return Err(self.bad("raw lines are only sent in text mode".into()));
        };
        let positive = labels.iter().position(|l| l == "POSITIVE").unwrap_or(1);
        let answer = Answer::Probabilities { positive };
        // Owned items: a closure over borrowed items here trips rustc's
        // higher-ranked `Send` check (rust-lang/rust#102211).
        let lines: Vec<String> = raw.to_vec();
        let answers: Scores = stream::iter(lines.into_iter().map(|line| async move {
            match self.invoke(line, 1, "application/x-text", answer).await {
                Ok(scores) => Ok(scores.first().copied()),
                Err(e) if e.class() == FailureClass::Permanent => {
                    tracing::warn!(endpoint = %self.endpoint, error = %e, "the endpoint refused a line");
                    Ok(None)
                }
                Err(e) => Err(e),
            }
        }))
        .buffered(TEXT_IN_FLIGHT)
        .try_collect()
        .await?;
        self.all_refused(answers)
    }

    /// The predictions for scores, `None` kept for refused rows.
    pub fn predictions(&self, scores: &[Option<Score>]) -> Vec<Option<Prediction>> {
        scores
            .iter()
            .map(|score| {
                score.map(|score| Prediction {
                    label: self.decision.label(score),
                    score: score.probability,
                    model: self.model_id.clone(),
                    explanation: Vec::new(),
                })
            })
            .collect()
    }

    fn payloads(&self, rows: &[&[f32]]) -> Vec<(String, usize)> {
        match self.format {
            RequestFormat::Json => split_json(rows, MAX_ROWS, MAX_PAYLOAD_BYTES),
            _ => split_csv(rows, MAX_ROWS, MAX_PAYLOAD_BYTES),
        }
    }

    fn content_type(&self) -> &'static str {
        match self.format {
            RequestFormat::Json => "application/json",
            _ => "text/csv",
        }
    }

    /// Scores one request's rows; when the endpoint refuses the request
    /// for its content, splits it in halves until the refused rows are
    /// alone, within [`MAX_SPLIT_CALLS`] calls.
    async fn score_part(&self, body: String, rows: &[&[f32]]) -> Result<Scores, InferenceError> {
        let mut budget = MAX_SPLIT_CALLS;
        self.bisect(body, rows, &mut budget).await
    }

    fn bisect<'a>(
        &'a self,
        body: String,
        rows: &'a [&'a [f32]],
        budget: &'a mut usize,
    ) -> futures_util::future::BoxFuture<'a, Result<Scores, InferenceError>> {
        Box::pin(async move {
            let error = match self
                .invoke(body, rows.len(), self.content_type(), Answer::Scores)
                .await
            {
                Ok(scores) => return Ok(scores.into_iter().map(Some).collect()),
                Err(e) if e.class() == FailureClass::Permanent => e,
                Err(e) => return Err(e),
            };
            if rows.len() == 1 {
                tracing::warn!(endpoint = %self.endpoint, error = %error, "the endpoint refused a row");
                return Ok(vec![None]);
            }
            if *budget < 2 {
                return Err(InferenceError::Refused {
                    endpoint: self.endpoint.clone(),
                    message: format!(
                        "refused requests too often to find the rows at fault: {error}"
                    ),
                });
            }
            *budget -= 2;
            let (left, right) = rows.split_at(rows.len() / 2);
            let body_of = |part: &[&[f32]]| {
                self.payloads(part)
                    .into_iter()
                    .next()
                    .map(|(b, _)| b)
                    .unwrap_or_default()
            };
            let (left_body, right_body) = (body_of(left), body_of(right));
            let mut scores = self.bisect(left_body, left, budget).await?;
            scores.extend(self.bisect(right_body, right, budget).await?);
            Ok(scores)
        })
    }

    /// Every row refused is the endpoint refusing requests of this kind (a
    /// model that takes other features, a wrong content type), not rows at
    /// fault: an error that holds the message, never a reason to drop data.
    fn all_refused(&self, scores: Scores) -> Result<Scores, InferenceError> {
        if !scores.is_empty() && scores.iter().all(Option::is_none) {
            return Err(InferenceError::Refused {
                endpoint: self.endpoint.clone(),
                message: format!("every one of {} rows was refused", scores.len()),
            });
        }
        Ok(scores)
    }

    fn bad(&self, message: String) -> InferenceError {
        InferenceError::BadResponse {
            endpoint: self.endpoint.clone(),
            message,
        }
    }

    async fn invoke(
        &self,
        body: String,
        rows: usize,
        content_type: &'static str,
        answer: Answer,
    ) -> Result<Vec<Score>, InferenceError> {
        let accept = if content_type == "text/csv" {
            "text/csv"
        } else {
            "application/json"
        };
        let output = self
            .client
            .invoke_endpoint()
            .endpoint_name(&self.endpoint)
            .content_type(content_type)
            .accept(accept)
            .body(Blob::new(body.into_bytes()))
            .send()
            .await
            .map_err(|e| InferenceError::Endpoint {
                endpoint: self.endpoint.clone(),
                message: DisplayErrorContext(&e).to_string(),
                class: classify_sdk(&e),
            })?;
        let bad = |message: String| InferenceError::BadResponse {
            endpoint: self.endpoint.clone(),
            message,
        };
        let bytes = output.body().map(|b| b.as_ref()).unwrap_or_default();
        let text = std::str::from_utf8(bytes).map_err(|_| bad("the body is not UTF-8".into()))?;
        let scores = match answer {
            Answer::Scores => parse_scores(text).map(|scores| {
                scores
                    .into_iter()
                    .map(|probability| Score {
                        probability,
                        endpoint_says_positive: None,
                    })
                    .collect()
            }),
            Answer::Probabilities { positive } => parse_probabilities(text, positive),
        }
        .map_err(bad)?;
        if scores.len() != rows {
            return Err(bad(format!("{} scores for {rows} rows", scores.len())));
        }
        Ok(scores)
    }
}

/// How to read an answer.
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// One score per row (CSV or JSON).
    Scores,
    /// The original contract's `{"probabilities":[…]}`.
    Probabilities { positive: usize },
}

/// Groups feature rows into `text/csv` bodies of at most `max_rows` rows
/// and `max_bytes` bytes (a single row over the limit is sent alone).
pub fn split_csv(rows: &[&[f32]], max_rows: usize, max_bytes: usize) -> Vec<(String, usize)> {
    split(
        rows.iter().map(|r| csv_row(r) + "\n"),
        max_rows,
        max_bytes,
        "",
        "",
        "",
    )
}

/// Groups feature rows into `{"instances":[{"features":[…]}]}` bodies.
pub fn split_json(rows: &[&[f32]], max_rows: usize, max_bytes: usize) -> Vec<(String, usize)> {
    // Written by hand so each value keeps its shortest f32 text (`0.1`, not
    // the `0.10000000149011612` of a widening to f64), as in the CSV.
    let instance = |row: &&[f32]| {
        let features: Vec<String> = row
            .iter()
            .map(|v| {
                if v.is_finite() {
                    v.to_string()
                } else {
                    "null".to_owned()
                }
            })
            .collect();
        format!("{{\"features\":[{}]}}", features.join(","))
    };
    split(
        rows.iter().map(instance),
        max_rows,
        max_bytes,
        "{\"instances\":[",
        ",",
        "]}",
    )
}

fn split(
    items: impl Iterator<Item = String>,
    max_rows: usize,
    max_bytes: usize,
    open: &str,
    separator: &str,
    close: &str,
) -> Vec<(String, usize)> {
    let mut payloads = Vec::new();
    let mut body = String::from(open);
    let mut n = 0;
    for item in items {
        let grown = body.len() + separator.len() + item.len() + close.len();
        if n > 0 && (n == max_rows || grown > max_bytes) {
            body.push_str(close);
            payloads.push((std::mem::replace(&mut body, String::from(open)), n));
            n = 0;
        }
        if n > 0 {
            body.push_str(separator);
        }
        body.push_str(&item);
        n += 1;
    }
    if n > 0 {
        body.push_str(close);
        payloads.push((body, n));
    }
    payloads
}

/// Reads one probability per row from a CSV/newline body or a JSON body
/// (`{"predictions":[{"score":x}|x, ...]}` or a bare array).
pub fn parse_scores(text: &str) -> Result<Vec<f64>, String> {
    let trimmed = text.trim();
    let scores: Vec<f64> = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let value: serde_json::Value =
            serde_json::from_str(trimmed).map_err(|e| format!("invalid JSON: {e}"))?;
        let list = match &value {
            serde_json::Value::Array(list) => list,
            other => other
                .get("predictions")
                .and_then(|p| p.as_array())
                .ok_or("JSON without a `predictions` array")?,
        };
        list.iter()
            .map(|p| {
                p.get("score")
                    .unwrap_or(p)
                    .as_f64()
                    .ok_or("a prediction without a numeric score")
            })
            .collect::<Result<_, _>>()?
    } else {
        trimmed
            .split([',', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<f64>()
                    .map_err(|_| format!("{:?} is not a number", s.escape_debug().to_string()))
            })
            .collect::<Result<_, _>>()?
    };
    check_probabilities(scores)
}

/// Reads the original endpoint's `{"probabilities":[…]}` (or a bare list):
/// the probability at `positive`, and whether it is the largest (a tie goes
/// to POSITIVE).
pub fn parse_probabilities(text: &str, positive: usize) -> Result<Vec<Score>, String> {
    let value: serde_json::Value =
        serde_json::from_str(text.trim()).map_err(|e| format!("invalid JSON: {e}"))?;
    let list = value
        .get("probabilities")
        .unwrap_or(&value)
        .as_array()
        .ok_or("JSON without a `probabilities` array")?;
    // Some endpoints nest one list per input: [[p0, p1]].
    let list = match list.first().and_then(|f| f.as_array()) {
        Some(inner) if list.len() == 1 => inner,
        _ => list,
    };
    let all: Vec<f64> = list
        .iter()
        .map(|p| p.as_f64().ok_or("a probability that is not a number"))
        .collect::<Result<_, _>>()?;
    let p = *all
        .get(positive)
        .ok_or_else(|| format!("no probability at position {positive} of {}", all.len()))?;
    check_probabilities(all.clone())?;
    Ok(vec![Score {
        probability: p,
        endpoint_says_positive: Some(all.iter().all(|other| *other <= p)),
    }])
}

fn check_probabilities(scores: Vec<f64>) -> Result<Vec<f64>, String> {
    match scores.iter().find(|s| !(0.0..=1.0).contains(*s)) {
        Some(s) => Err(format!("score {s} is not a probability")),
        None => Ok(scores),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_in_every_shape() {
        assert_eq!(parse_scores("0.1\n0.9\n").unwrap(), [0.1, 0.9]);
        assert_eq!(parse_scores("0.1,0.9").unwrap(), [0.1, 0.9]);
        assert_eq!(
            parse_scores(r#"{"predictions":[{"score":0.2},{"score":0.7}]}"#).unwrap(),
            [0.2, 0.7]
        );
        assert_eq!(
            parse_scores(r#"{"predictions":[0.2,0.7]}"#).unwrap(),
            [0.2, 0.7]
        );
        assert!(parse_scores("abc").is_err());
        assert!(parse_scores("1.5").is_err());
        assert!(parse_scores(r#"{"probabilities":[0.1]}"#).is_err());
    }

    fn probability(text: &str, positive: usize) -> f64 {
        parse_probabilities(text, positive).unwrap()[0].probability
    }

    #[test]
    fn probabilities_of_the_original_contract() {
        assert_eq!(probability(r#"{"probabilities":[0.2,0.8]}"#, 1), 0.8);
        assert_eq!(probability(r#"{"probabilities":[0.2,0.8]}"#, 0), 0.2);
        assert_eq!(probability(r#"[[0.3,0.7]]"#, 1), 0.7);
        assert!(parse_probabilities(r#"{"probabilities":[0.2]}"#, 1).is_err());
        assert!(parse_probabilities("nope", 1).is_err());
    }

    /// The endpoint's own decision is its most probable label: 0.9 for
    /// POSITIVE is POSITIVE, whatever our model's threshold; three labels
    /// where POSITIVE leads with 0.4 are POSITIVE too. A threshold, when
    /// set, overrides it.
    #[test]
    fn an_endpoint_that_is_not_ours_keeps_its_own_labels() {
        let label = |text: &str, positive: usize, decision: Decision| {
            decision.label(parse_probabilities(text, positive).unwrap()[0])
        };
        let own = Decision::EndpointLabel;
        assert_eq!(
            label(r#"{"probabilities":[0.1,0.9]}"#, 1, own),
            Label::Positive
        );
        assert_eq!(
            label(r#"{"probabilities":[0.9,0.1]}"#, 1, own),
            Label::Negative
        );
        assert_eq!(
            label(r#"{"probabilities":[0.9,0.1]}"#, 0, own),
            Label::Positive
        );
        assert_eq!(
            label(r#"{"probabilities":[0.3,0.4,0.3]}"#, 1, own),
            Label::Positive
        );
        assert_eq!(
            label(r#"{"probabilities":[0.35,0.3,0.35]}"#, 1, own),
            Label::Negative
        );
        let set = Decision::Threshold(0.94);
        assert_eq!(
            label(r#"{"probabilities":[0.1,0.9]}"#, 1, set),
            Label::Negative
        );
        assert_eq!(
            label(r#"{"probabilities":[0.05,0.95]}"#, 1, set),
            Label::Positive
        );
        // One probability (CSV, JSON): the endpoint's cut is 0.5.
        let one = |p| Score {
            probability: p,
            endpoint_says_positive: None,
        };
        assert_eq!(own.label(one(0.6)), Label::Positive);
        assert_eq!(own.label(one(0.4)), Label::Negative);
    }

    fn rows(n: usize) -> Vec<Vec<f32>> {
        (0..n).map(|i| vec![i as f32, f32::NAN, 2.5]).collect()
    }

    #[test]
    fn csv_payloads_respect_rows_and_bytes() {
        let owned = rows(1200);
        let rows: Vec<&[f32]> = owned.iter().map(Vec::as_slice).collect();
        let p = split_csv(&rows, 500, usize::MAX);
        assert_eq!(
            p.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
            [500, 500, 200]
        );
        assert!(p[0].0.starts_with("0,,2.5\n1,,2.5\n"));
        let p = split_csv(&rows, 500, 100);
        assert!(p.iter().all(|(b, _)| b.len() <= 100));
        assert_eq!(p.iter().map(|(_, n)| n).sum::<usize>(), 1200);
        assert_eq!(
            p.iter().map(|(b, _)| b.lines().count()).sum::<usize>(),
            1200
        );
    }

    #[test]
    fn json_payloads_are_valid_and_bounded() {
        let owned = rows(1200);
        let rows: Vec<&[f32]> = owned.iter().map(Vec::as_slice).collect();
        let p = split_json(&rows, 500, 4000);
        assert_eq!(p.iter().map(|(_, n)| n).sum::<usize>(), 1200);
        for (body, n) in &p {
            assert!(body.len() <= 4000);
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            let instances = v["instances"].as_array().unwrap();
            assert_eq!(instances.len(), *n);
            assert!(
                instances[0]["features"][1].is_null(),
                "missing is null, never 0"
            );
        }
    }

    /// The CSV the endpoint receives carries exactly the features the model
    /// was trained on: every value of the training-time parity rows (with
    /// their missing values) survives the trip through the CSV text bit for
    /// bit, in the model's column order.
    #[test]
    fn csv_rows_carry_the_trained_features_exactly() {
        let parity = crate::inference::parity::fixture();
        assert_eq!(parity["feature_names"], serde_json::json!(FEATURE_NAMES));
        let rows: Vec<Vec<f32>> = crate::inference::parity::rows(&parity["rows"])
            .chunks(FEATURE_NAMES.len())
            .map(<[f32]>::to_vec)
            .collect();
        assert!(
            rows.iter().any(|r| r.iter().any(|v| v.is_nan())),
            "the sample has missing values"
        );
        let refs: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        let (body, n) = &split_csv(&refs, usize::MAX, usize::MAX)[0];
        assert_eq!(*n, rows.len());
        for (line, row) in body.lines().zip(&rows) {
            let cells: Vec<&str> = line.split(',').collect();
            assert_eq!(cells.len(), FEATURE_NAMES.len());
            for (cell, want) in cells.iter().zip(row) {
                if want.is_nan() {
                    assert_eq!(*cell, "", "missing is an empty cell");
                } else {
                    assert_eq!(
                        cell.parse::<f32>().unwrap().to_bits(),
                        want.to_bits(),
                        "{cell}"
                    );
                }
            }
        }
    }
}
