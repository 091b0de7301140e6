//! The prediction backend's settings: embedded model or SageMaker endpoint.

use clap::{Args, ValueEnum};

use super::values::parse_probability;
use crate::inference::OnError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InferenceBackend {
    /// In-process model (no network call).
    Embedded,
    /// A SageMaker real-time or serverless endpoint.
    Sagemaker,
    /// No prediction is made or stored.
    None,
}

/// Where predictions come from, and what a failed one does.
#[derive(Debug, Clone, Args)]
pub struct InferenceSettings {
    /// Where predictions come from.
    #[arg(long, env = "FLEETWATCH_INFERENCE", value_enum, default_value_t = InferenceBackend::Embedded)]
    pub inference: InferenceBackend,

    /// XGBoost JSON model for the embedded backend, with its metadata beside
    /// it as `<name>.meta.json`. Default: the model built into the binary.
    #[arg(long, env = "FLEETWATCH_MODEL")]
    pub model: Option<std::path::PathBuf>,

    /// SageMaker endpoint name (required when FLEETWATCH_INFERENCE=sagemaker).
    #[arg(long, env = "FLEETWATCH_SAGEMAKER_ENDPOINT", value_parser = parse_endpoint_name)]
    pub sagemaker_endpoint: Option<String>,

    /// Request format for the endpoint: `csv` (the built-in XGBoost
    /// container), `json` (`{"instances":[{"features":[…]}]}`), or `text`
    /// (one raw line per call, answered with `{"probabilities":[…]}`).
    #[arg(long, env = "FLEETWATCH_SAGEMAKER_FORMAT", value_enum, default_value_t = SageMakerFormat::Csv)]
    pub sagemaker_format: SageMakerFormat,

    /// In `text` mode, the labels in the order of the endpoint's probabilities.
    #[arg(long, env = "FLEETWATCH_SAGEMAKER_LABELS", default_value = "NEGATIVE,POSITIVE", value_parser = parse_labels)]
    pub sagemaker_labels: SageMakerLabels,

    /// What a failed prediction does: `retry` leaves the message for
    /// redelivery; `store-unknown` stores the readings with an UNKNOWN
    /// prediction (counted in fleetwatch_inference_unknown_total).
    #[arg(long, env = "FLEETWATCH_ON_INFERENCE_ERROR", value_enum, default_value_t = OnError::Retry)]
    pub on_inference_error: OnError,

    /// Score at or above which a SageMaker prediction is POSITIVE. Default:
    /// in `csv`/`json` mode the threshold in the model's metadata (the
    /// endpoint serves the same model); in `text` mode the endpoint's own
    /// decision, its most probable label.
    #[arg(long, env = "FLEETWATCH_SAGEMAKER_THRESHOLD", value_parser = parse_probability)]
    pub sagemaker_threshold: Option<f64>,
}

impl InferenceSettings {
    /// Checks the settings that depend on each other (run by
    /// [`super::try_parse_from`], so a bad combination stops the parse).
    pub fn validate(&self) -> Result<(), String> {
        if self.inference == InferenceBackend::Sagemaker
            && self.sagemaker_endpoint.as_deref().is_none_or(str::is_empty)
        {
            return Err("FLEETWATCH_INFERENCE=sagemaker needs FLEETWATCH_SAGEMAKER_ENDPOINT (the endpoint's name)".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SageMakerFormat {
    Csv,
    Json,
    Text,
}

/// The parsed `FLEETWATCH_SAGEMAKER_LABELS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SageMakerLabels(pub Vec<String>);

fn parse_labels(s: &str) -> Result<SageMakerLabels, String> {
    let labels: Vec<String> = s.split(',').map(|l| l.trim().to_owned()).collect();
    if labels.len() >= 2
        && labels.iter().any(|l| l == "POSITIVE")
        && labels.iter().all(|l| !l.is_empty())
    {
        Ok(SageMakerLabels(labels))
    } else {
        Err("FLEETWATCH_SAGEMAKER_LABELS: expected a comma-separated label order naming POSITIVE, e.g. NEGATIVE,POSITIVE".into())
    }
}

fn parse_endpoint_name(s: &str) -> Result<String, String> {
    let ok = (1..=63).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-');
    if ok {
        Ok(s.to_owned())
    } else {
        Err("FLEETWATCH_SAGEMAKER_ENDPOINT: expected an endpoint name, 1-63 characters of A-Z a-z 0-9 and -".into())
    }
}
