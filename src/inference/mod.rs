//! Maintenance predictions: a [`Predictor`] takes a batch of readings and
//! returns, for each, whether the vehicle needs maintenance.
//!
//! Backends: `embedded` (a model evaluated in-process, no network call),
//! `sagemaker` (an endpoint, batched) and `none`. A failed prediction is an
//! error, never a made-up label: the caller leaves the message for
//! redelivery.
//!
//! The pipeline predicts an object chunk by chunk with
//! [`Predictor::predict_with_context`]: each reading is predicted once, its
//! rolling features taken from the object's [`features::FeatureContext`].

pub mod embedded;
pub mod explanation;
pub mod features;
pub mod sagemaker;
pub mod treeshap;
pub mod xgboost;

/// The training-time parity fixture (`model-artifacts/fleetwatch.parity.json`),
/// shared by the evaluator, feature and SageMaker tests.
#[cfg(test)]
pub(crate) mod parity {
    /// The fixture document.
    pub fn fixture() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/model-artifacts/fleetwatch.parity.json"
        );
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    /// A JSON array of feature rows as row-major `f32`, `null` as NaN.
    pub fn rows(v: &serde_json::Value) -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .flat_map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().map_or(f32::NAN, |x| x as f32))
            })
            .collect()
    }
}

use std::time::Instant;

use crate::failure::{Classify, Dependency, FailureClass, StepError};
use crate::metrics;
use crate::telemetry::Reading;
use features::{FEATURE_NAMES, FeatureContext};

/// Rows the embedded model scores on the async runtime's own thread. The
/// evaluator does about 660 k rows/s, so 64 rows take about 0.1 ms, the
/// most a task should run between two awaits; a blocking thread costs a
/// hand-over of some 10-50 µs, worth it only past that.
const INLINE_ROWS: usize = 64;

/// The predicted class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// Maintenance required.
    Positive,
    Negative,
    /// The prediction failed and `FLEETWATCH_ON_INFERENCE_ERROR=store-unknown`
    /// asked for the reading to be stored anyway, marked as not predicted.
    Unknown,
}

impl Label {
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Positive => "POSITIVE",
            Label::Negative => "NEGATIVE",
            Label::Unknown => "UNKNOWN",
        }
    }

    /// The label for a probability of POSITIVE against a decision threshold.
    pub fn from_score(score: f64, threshold: f64) -> Label {
        if score >= threshold {
            Label::Positive
        } else {
            Label::Negative
        }
    }
}

/// One reading's prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub label: Label,
    /// Probability of POSITIVE, in [0, 1].
    pub score: f64,
    /// Which model made it, so items written by different model versions
    /// can be told apart.
    pub model: String,
    /// Why a POSITIVE embedded prediction is POSITIVE: the features that
    /// pushed it most, largest first (at most three). Empty for NEGATIVE
    /// and UNKNOWN, and for SageMaker, whose container does not explain.
    pub explanation: Vec<explanation::Contribution>,
}

#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    #[error("the embedded model failed: {0}")]
    Embedded(#[from] xgboost::XgbError),
    #[error("SageMaker endpoint {endpoint} failed: {message}")]
    Endpoint {
        endpoint: String,
        message: String,
        /// From the SDK error: whether the call may pass later.
        class: FailureClass,
    },
    /// The endpoint refuses every row of this kind of request: a
    /// configuration problem (another model, a wrong format), held like an
    /// outage rather than a reason to drop the readings.
    #[error("SageMaker endpoint {endpoint} refuses the requests: {message}")]
    Refused { endpoint: String, message: String },
    #[error("SageMaker endpoint {endpoint} answered something unusable: {message}")]
    BadResponse { endpoint: String, message: String },
    #[error("the embedded model's thread failed: {0}")]
    Thread(String),
}

impl StepError for InferenceError {
    fn dependency(&self) -> Dependency {
        Dependency::Inference
    }
}

impl Classify for InferenceError {
    fn class(&self) -> FailureClass {
        match self {
            InferenceError::Endpoint { class, .. } => *class,
            // A model that cannot be evaluated, an answer that makes no
            // sense, an endpoint refusing everything: wait for a fix.
            InferenceError::Embedded(_)
            | InferenceError::BadResponse { .. }
            | InferenceError::Refused { .. }
            | InferenceError::Thread(_) => FailureClass::Transient,
        }
    }
}

/// A batch's predictions, in order, and the readings the model refused
/// for their content (index, reason): those are rejected, not stored. A
/// refused reading's slot in `predictions` holds an UNKNOWN placeholder.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub predictions: Vec<Prediction>,
    pub refused: Vec<usize>,
}

/// What to do when a prediction fails (`FLEETWATCH_ON_INFERENCE_ERROR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OnError {
    /// Fail the object: the message is left for redelivery (the default).
    #[default]
    Retry,
    /// Store the readings with an `UNKNOWN` prediction, and count them.
    StoreUnknown,
}

/// What [`Predictor::prepare`] computed for a batch.
#[derive(Debug)]
pub enum ModelInput {
    /// Predictions are disabled.
    Nothing,
    /// Row-major feature rows, one per reading.
    Rows(Vec<f32>),
    /// The endpoint takes the readings' raw lines.
    Lines,
}

/// The configured prediction backend.
#[derive(Debug)]
pub enum Predictor {
    /// No predictions: items are stored without a `prediction` attribute.
    Disabled,
    Embedded(embedded::EmbeddedModel),
    SageMaker(sagemaker::SageMakerPredictor),
}

impl Predictor {
    /// Predicts every reading of the batch, taken as one whole object, in
    /// order; `None` when predictions are disabled. `raw` holds the
    /// readings' input lines when [`Predictor::needs_raw_lines`] (else it
    /// may be empty).
    pub async fn predict(
        &self,
        readings: &[Reading],
        raw: &[String],
        on_error: OnError,
    ) -> Result<Option<Vec<Prediction>>, InferenceError> {
        let mut context = FeatureContext::new(usize::MAX);
        self.predict_with_context(&mut context, readings, raw, on_error)
            .await
    }

    /// Predicts the next readings of an object, each once, in order: their
    /// rolling features come from `context` (the object's earlier
    /// readings), which then includes them. `None` when predictions are
    /// disabled.
    pub async fn predict_with_context(
        &self,
        context: &mut FeatureContext,
        readings: &[Reading],
        raw: &[String],
        on_error: OnError,
    ) -> Result<Option<Vec<Prediction>>, InferenceError> {
        let input = self.prepare(context, readings);
        match self.score(&input, readings, raw).await {
            Err(e) if on_error == OnError::StoreUnknown => Ok(Some(self.unknown(readings, &e))),
            other => other.map(|scored| scored.map(|s| s.predictions)),
        }
    }

    /// The model's input for the next readings of an object: their feature
    /// rows, computed from `context`, which then includes them. Call once
    /// per batch; [`Predictor::score`] may then be called again after a
    /// failure without touching the context.
    pub fn prepare(&self, context: &mut FeatureContext, readings: &[Reading]) -> ModelInput {
        match self {
            Predictor::Disabled => ModelInput::Nothing,
            // One raw line per call: the endpoint computes what it needs.
            Predictor::SageMaker(endpoint) if endpoint.needs_raw_lines() => ModelInput::Lines,
            Predictor::Embedded(_) | Predictor::SageMaker(_) => {
                ModelInput::Rows(context.extract(readings))
            }
        }
    }

    /// Scores a prepared batch, in order; `None` when predictions are
    /// disabled. `raw` holds the readings' input lines when
    /// [`Predictor::needs_raw_lines`].
    pub async fn score(
        &self,
        input: &ModelInput,
        readings: &[Reading],
        raw: &[String],
    ) -> Result<Option<Scored>, InferenceError> {
        if readings.is_empty() {
            return Ok(None);
        }
        let started = Instant::now();
        metrics::inference_rows(readings.len());
        let result = match (self, input) {
            (Predictor::Disabled, _) | (_, ModelInput::Nothing) => return Ok(None),
            (Predictor::Embedded(model), ModelInput::Rows(rows)) => {
                score_off_runtime(model, rows.clone())
                    .await
                    .map(|predictions| Scored {
                        predictions,
                        refused: Vec::new(),
                    })
            }
            (Predictor::SageMaker(endpoint), ModelInput::Rows(rows)) => {
                let scores = endpoint.predict_rows(rows).await;
                scores.map(|s| self.scored(endpoint, &s))
            }
            (Predictor::SageMaker(endpoint), ModelInput::Lines) => {
                if raw.len() != readings.len() {
                    Err(InferenceError::BadResponse {
                        endpoint: endpoint.endpoint().to_owned(),
                        message: "text mode needs the raw line of every reading".into(),
                    })
                } else {
                    let scores = endpoint.predict_lines(raw).await;
                    scores.map(|s| self.scored(endpoint, &s))
                }
            }
            (Predictor::Embedded(_), ModelInput::Lines) => Err(InferenceError::BadResponse {
                endpoint: "embedded".into(),
                message: "the embedded model scores feature rows, not lines".into(),
            }),
        };
        metrics::inference(started.elapsed(), result.is_ok());
        result.map(Some)
    }

    fn scored(
        &self,
        endpoint: &sagemaker::SageMakerPredictor,
        scores: &[Option<sagemaker::Score>],
    ) -> Scored {
        let mut refused = Vec::new();
        let model = self.model_id();
        let predictions = endpoint
            .predictions(scores)
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                p.unwrap_or_else(|| {
                    refused.push(i);
                    Prediction {
                        label: Label::Unknown,
                        score: f64::NAN,
                        model: model.clone(),
                        explanation: Vec::new(),
                    }
                })
            })
            .collect();
        Scored {
            predictions,
            refused,
        }
    }

    /// What readings whose prediction failed are stored with under
    /// `FLEETWATCH_ON_INFERENCE_ERROR=store-unknown`: no score is made up.
    pub fn unknown(&self, readings: &[Reading], error: &InferenceError) -> Vec<Prediction> {
        tracing::warn!(error = %error, readings = readings.len(), "prediction failed; storing the readings as UNKNOWN");
        metrics::inference_unknown(readings.len());
        let model = self.model_id();
        readings
            .iter()
            .map(|_| Prediction {
                label: Label::Unknown,
                score: f64::NAN,
                model: model.clone(),
                explanation: Vec::new(),
            })
            .collect()
    }

    /// Whether [`Predictor::predict`] needs the raw input lines.
    pub fn needs_raw_lines(&self) -> bool {
        matches!(self, Predictor::SageMaker(s) if s.needs_raw_lines())
    }

    fn model_id(&self) -> String {
        match self {
            Predictor::Disabled => String::new(),
            Predictor::Embedded(m) => m.id().to_owned(),
            Predictor::SageMaker(s) => format!("sagemaker:{}", s.endpoint()),
        }
    }

    /// The score from which the backend's POSITIVE predictions count
    /// (`FLEETWATCH_MAINTENANCE_ALERT_SCORE=model`): the decision threshold,
    /// or 0 for an endpoint that decides its labels itself, whose every
    /// POSITIVE counts.
    pub fn threshold(&self) -> Option<f64> {
        match self {
            Predictor::Disabled => None,
            Predictor::Embedded(m) => Some(m.threshold()),
            Predictor::SageMaker(s) => Some(match s.decision() {
                sagemaker::Decision::Threshold(t) => t,
                sagemaker::Decision::EndpointLabel => 0.0,
            }),
        }
    }

    /// A name for logs.
    pub fn describe(&self) -> String {
        match self {
            Predictor::Disabled => "none".into(),
            Predictor::Embedded(m) => format!("embedded ({}, {} trees)", m.id(), m.n_trees()),
            Predictor::SageMaker(s) => format!("sagemaker ({})", s.endpoint()),
        }
    }
}

/// Scores feature rows with the embedded model, off the async runtime's
/// threads unless the batch is tiny ([`INLINE_ROWS`]), so that receives,
/// heartbeats and other messages keep their timing while a chunk is scored.
/// Explanations never run on the runtime: one costs about as much as a
/// thousand predictions, so a tiny batch with a POSITIVE row is explained
/// on a blocking thread.
///
/// `spawn_blocking` rather than `block_in_place`: `block_in_place` panics
/// on a current-thread runtime, and even on the multi-threaded one it
/// blocks the task's whole worker thread, including what else is running
/// in the same task (the message's heartbeat is `select!`ed with its
/// processing, so it would wait for the scoring). A blocking thread leaves
/// every async thread free; the model and rows move to it at the cost of a
/// reference count.
async fn score_off_runtime(
    model: &embedded::EmbeddedModel,
    rows: Vec<f32>,
) -> Result<Vec<Prediction>, InferenceError> {
    let model = model.clone();
    if rows.len() / FEATURE_NAMES.len() < INLINE_ROWS {
        let mut predictions = model.score_rows(&rows)?;
        if predictions.iter().all(|p| p.label != Label::Positive) {
            return Ok(predictions);
        }
        return tokio::task::spawn_blocking(move || {
            model
                .explain_positives(&rows, &mut predictions)
                .map(|()| predictions)
        })
        .await
        .map_err(|e| InferenceError::Thread(e.to_string()))?
        .map_err(InferenceError::from);
    }
    tokio::task::spawn_blocking(move || model.predict_rows(&rows))
        .await
        .map_err(|e| InferenceError::Thread(e.to_string()))?
        .map_err(InferenceError::from)
}
