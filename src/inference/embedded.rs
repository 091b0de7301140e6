//! The `embedded` backend: the XGBoost model evaluated in-process.
//!
//! The committed model (`model-artifacts/fleetwatch.json` and its metadata) is
//! compiled into the binary, so a worker predicts with no file to mount and
//! no network call; `FLEETWATCH_MODEL` points at another model file (its
//! metadata beside it as `<name>.meta.json`). Either way the model is
//! checked against its metadata and the worker's features at start-up.
//! Scoring a chunk of 1000 readings takes about 1.5 ms, too long to hold an
//! async runtime thread: [`super::Predictor`] runs it on a blocking thread
//! (the model is shared behind an `Arc`, so handing it over is cheap).
//! A POSITIVE prediction also carries why ([`super::explanation`]).

use std::path::Path;
use std::sync::Arc;

use super::explanation::{self, Contribution};
use super::features::{FEATURE_NAMES, extract};
use super::xgboost::{XgbError, XgbModel};
use super::{Label, Prediction};
use crate::telemetry::Reading;

const BUILTIN_MODEL: &[u8] = include_bytes!("../../model-artifacts/fleetwatch.json");
const BUILTIN_META: &[u8] = include_bytes!("../../model-artifacts/fleetwatch.meta.json");

#[derive(Debug, Clone)]
pub struct EmbeddedModel {
    /// Shared, so a clone for a blocking thread costs a reference count.
    model: Arc<XgbModel>,
    /// The model's id, stored with every prediction.
    id: String,
    /// Score at or above which a prediction is POSITIVE.
    threshold: f64,
}

impl EmbeddedModel {
    /// The model compiled into the binary.
    pub fn builtin() -> Result<EmbeddedModel, XgbError> {
        Ok(EmbeddedModel::new(XgbModel::from_json(
            BUILTIN_MODEL,
            BUILTIN_META,
            FEATURE_NAMES,
        )?))
    }

    /// A model file and the `<name>.meta.json` beside it.
    pub fn load(path: &Path) -> Result<EmbeddedModel, XgbError> {
        let meta = XgbModel::meta_path_for(path);
        Ok(EmbeddedModel::new(XgbModel::load(
            path,
            &meta,
            FEATURE_NAMES,
        )?))
    }

    fn new(model: XgbModel) -> EmbeddedModel {
        let meta = model.meta();
        EmbeddedModel {
            id: meta.model_id.clone(),
            threshold: meta.threshold,
            model: Arc::new(model),
        }
    }

    /// The model's id (from its metadata), stored with every prediction.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The decision threshold chosen at training time.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    pub fn n_trees(&self) -> usize {
        self.model.n_trees()
    }

    /// Predicts `readings` taken as one whole object.
    pub fn predict(&self, readings: &[Reading]) -> Result<Vec<Prediction>, XgbError> {
        self.predict_rows(&extract(readings))
    }

    /// Predicts feature rows (row-major, [`FEATURE_NAMES`] order), one
    /// prediction per row; a POSITIVE one carries its explanation (when the
    /// model file has the covers to compute it).
    pub fn predict_rows(&self, rows: &[f32]) -> Result<Vec<Prediction>, XgbError> {
        let mut predictions = self.score_rows(rows)?;
        self.explain_positives(rows, &mut predictions)?;
        Ok(predictions)
    }

    /// Scores feature rows without explaining them.
    pub fn score_rows(&self, rows: &[f32]) -> Result<Vec<Prediction>, XgbError> {
        let mut scores = Vec::with_capacity(rows.len() / FEATURE_NAMES.len());
        self.model
            .predict_batch(rows, FEATURE_NAMES.len(), &mut scores)?;
        Ok(scores
            .into_iter()
            .map(|s| {
                let score = f64::from(s);
                Prediction {
                    label: Label::from_score(score, self.threshold),
                    score,
                    model: self.id.clone(),
                    explanation: Vec::new(),
                }
            })
            .collect())
    }

    /// Explains the POSITIVE predictions of [`EmbeddedModel::score_rows`]
    /// (same rows, same order); nothing when the model cannot explain.
    pub fn explain_positives(
        &self,
        rows: &[f32],
        predictions: &mut [Prediction],
    ) -> Result<(), XgbError> {
        if !self.model.explains() {
            return Ok(());
        }
        for (p, row) in predictions.iter_mut().zip(rows.chunks(FEATURE_NAMES.len())) {
            if p.label == Label::Positive {
                p.explanation = self.explain(row)?;
            }
        }
        Ok(())
    }

    /// The features that pushed one row's score up most (TreeSHAP),
    /// largest first.
    pub fn explain(&self, row: &[f32]) -> Result<Vec<Contribution>, XgbError> {
        Ok(explanation::top(&self.model.contributions(row)?, row))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{Number, Timestamp, Value};

    #[test]
    fn the_builtin_model_loads_and_scores() {
        let model = EmbeddedModel::builtin().unwrap();
        assert_eq!(model.id(), "fleetwatch-xgb-v1");
        assert!(model.threshold() > 0.0 && model.threshold() < 1.0);
        let reading = |temp: &str| Reading {
            device_id: "V".into(),
            timestamp: Timestamp::from_unix_millis(0),
            fields: vec![(
                "engine_temp_c".into(),
                Value::Number(Number::parse(temp).unwrap()),
            )],
        };
        let p = model.predict(&[reading("90"), reading("124")]).unwrap();
        assert_eq!(p.len(), 2);
        assert!(
            p.iter()
                .all(|p| (0.0..=1.0).contains(&p.score) && p.model == "fleetwatch-xgb-v1")
        );
        assert!(model.predict(&[]).unwrap().is_empty());
    }

    /// Every POSITIVE parity row says why, with the three features that
    /// pushed its score up most; NEGATIVE rows carry nothing.
    #[test]
    fn positive_predictions_carry_their_top_three_reasons() {
        let model = EmbeddedModel::builtin().unwrap();
        let parity = crate::inference::parity::fixture();
        let rows = crate::inference::parity::rows(&parity["rows"]);
        let predictions = model.predict_rows(&rows).unwrap();
        let positives: Vec<_> = predictions
            .iter()
            .filter(|p| p.label == Label::Positive)
            .collect();
        assert!(!positives.is_empty(), "the parity rows include positives");
        for p in &predictions {
            if p.label != Label::Positive {
                assert!(p.explanation.is_empty());
                continue;
            }
            assert_eq!(p.explanation.len(), explanation::TOP, "{p:?}");
            assert!(
                p.explanation
                    .windows(2)
                    .all(|w| w[0].contribution >= w[1].contribution && w[1].contribution > 0.0)
            );
        }
    }

    #[test]
    fn a_model_file_that_does_not_exist_is_a_clear_error() {
        let err = EmbeddedModel::load(Path::new("/nonexistent/model.json")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/model.meta.json"),
            "{err}"
        );
    }
}
