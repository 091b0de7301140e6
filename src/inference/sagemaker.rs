//! Predictions from a SageMaker endpoint.
//!
//! Readings are sent in batches as `text/csv` rows of the model's features
//! (the built-in XGBoost container's contract, no header), split so that no
//! request exceeds a row count or 5 MB (real-time endpoints refuse requests
//! over 6 MB). Several requests are in flight at once. The endpoint answers
//! one probability per row, as CSV/newline-separated numbers or JSON
//! (`{"predictions":[{"score":0.93}, ...]}`).

use aws_sdk_sagemakerruntime::error::DisplayErrorContext;
use aws_sdk_sagemakerruntime::primitives::Blob;
use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::features::{FEATURE_NAMES, csv_row, extract};
use super::{InferenceError, Label, Prediction};
use crate::telemetry::Reading;

/// Rows per request.
pub const MAX_ROWS: usize = 500;
/// Payload bytes per request, kept under the 6 MB real-time limit.
pub const MAX_PAYLOAD_BYTES: usize = 5 * 1024 * 1024;
/// Requests in flight per batch.
const IN_FLIGHT: usize = 4;

#[derive(Debug, Clone)]
pub struct SageMakerPredictor {
    client: aws_sdk_sagemakerruntime::Client,
    endpoint: String,
    threshold: f64,
    model_id: String,
}

impl SageMakerPredictor {
    pub fn new(client: aws_sdk_sagemakerruntime::Client, endpoint: String, threshold: f64) -> Self {
        let model_id = format!("sagemaker:{endpoint}");
        SageMakerPredictor {
            client,
            endpoint,
            threshold,
            model_id,
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    pub async fn predict(&self, readings: &[Reading]) -> Result<Vec<Prediction>, InferenceError> {
        let features = extract(readings);
        let rows: Vec<String> = features.chunks(FEATURE_NAMES.len()).map(csv_row).collect();
        let payloads = split_payloads(&rows, MAX_ROWS, MAX_PAYLOAD_BYTES);
        // `buffered` (not `buffer_unordered`) keeps the answers in row order.
        let scores: Vec<Vec<f64>> =
            stream::iter(payloads.into_iter().map(|(body, n)| self.invoke(body, n)))
                .buffered(IN_FLIGHT)
                .try_collect()
                .await?;
        Ok(scores
            .into_iter()
            .flatten()
            .map(|score| Prediction {
                label: Label::from_score(score, self.threshold),
                score,
                model: self.model_id.clone(),
            })
            .collect())
    }

    async fn invoke(&self, body: String, rows: usize) -> Result<Vec<f64>, InferenceError> {
        let output = self
            .client
            .invoke_endpoint()
            .endpoint_name(&self.endpoint)
            .content_type("text/csv")
            .accept("text/csv")
            .body(Blob::new(body.into_bytes()))
            .send()
            .await
            .map_err(|e| InferenceError::Endpoint {
                endpoint: self.endpoint.clone(),
                message: DisplayErrorContext(&e).to_string(),
            })?;
        let bad = |message: String| InferenceError::BadResponse {
            endpoint: self.endpoint.clone(),
            message,
        };
        let bytes = output.body().map(|b| b.as_ref()).unwrap_or_default();
        let text = std::str::from_utf8(bytes).map_err(|_| bad("the body is not UTF-8".into()))?;
        let scores = parse_scores(text).map_err(bad)?;
        if scores.len() != rows {
            return Err(bad(format!("{} scores for {rows} rows", scores.len())));
        }
        Ok(scores)
    }
}

/// Groups rows into request bodies of at most `max_rows` rows and
/// `max_bytes` bytes (a single row over the limit is sent alone).
pub fn split_payloads(rows: &[String], max_rows: usize, max_bytes: usize) -> Vec<(String, usize)> {
    let mut payloads = Vec::new();
    let mut body = String::new();
    let mut n = 0;
    for row in rows {
        if n > 0 && (n == max_rows || body.len() + row.len() + 1 > max_bytes) {
            payloads.push((std::mem::take(&mut body), n));
            n = 0;
        }
        body.push_str(row);
        body.push('\n');
        n += 1;
    }
    if n > 0 {
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

    #[test]
    fn payloads_respect_rows_and_bytes() {
        let rows: Vec<String> = (0..1200).map(|i| format!("{i},1,2")).collect();
        let p = split_payloads(&rows, 500, usize::MAX);
        assert_eq!(
            p.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
            [500, 500, 200]
        );
        let p = split_payloads(&rows, 500, 100);
        assert!(p.iter().all(|(b, _)| b.len() <= 100));
        assert_eq!(p.iter().map(|(_, n)| n).sum::<usize>(), 1200);
        assert_eq!(
            p.iter().map(|(b, _)| b.lines().count()).sum::<usize>(),
            1200
        );
    }
}
