//! Building the pipeline from validated settings: the one place the
//! worker (`main.rs`) and `fleetwatch process` assemble the predictor, the
//! store, the alert sink, the limits and the quarantine, so the two cannot
//! drift apart.

use crate::alerts::AlertSink;
use crate::alerts::ledger::AlertLedger;
use crate::alerts::publisher::AlertPublisher;
use crate::aws;
use crate::config::{InferenceBackend, OnInferenceError, PipelineSettings, SageMakerFormat};
use crate::inference::embedded::EmbeddedModel;
use crate::inference::sagemaker::{Decision, RequestFormat, SageMakerPredictor};
use crate::inference::{OnError, Predictor};
use crate::object_reader::Limits;
use crate::pipeline::Pipeline;
use crate::quarantine::Quarantine;
use crate::storage::ReadingStore;

/// A setting that validated but cannot be built: the model file.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("FLEETWATCH_MODEL={}: the model was refused: {message}", path.display())]
    Model {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("the built-in model was refused: {0}")]
    BuiltinModel(String),
}

/// The worker's pipeline from the same settings. `alerts` false leaves out
/// the sink (`--no-alerts`); quarantine applies to S3 inputs only.
pub fn pipeline(
    settings: &PipelineSettings,
    clients: &aws::Clients,
    alerts: bool,
    s3_input: bool,
) -> Result<Pipeline, BuildError> {
    let predictor = predictor(settings, clients)?;
    let sink = match (&settings.alert_topic_arn, alerts) {
        (Some(arn), true) => Some(AlertSink {
            publisher: AlertPublisher::new(clients.sns.clone(), arn.clone()),
            // A claim outlives its worker by at most one visibility timeout:
            // past that, the message has been handed to another worker.
            ledger: AlertLedger::new(
                clients.dynamodb.clone(),
                settings.table.clone(),
                settings.alert_cooldown,
                settings.visibility_timeout,
            ),
        }),
        _ => None,
    };
    let maintenance_min_score = settings
        .maintenance_alert_score
        .resolve(predictor.threshold());
    Ok(Pipeline {
        s3: clients.s3.clone(),
        store: ReadingStore::new(
            clients.dynamodb.clone(),
            settings.table.clone(),
            settings.dynamodb_writers,
        )
        .with_reading_ttl(settings.reading_ttl),
        predictor,
        rules: settings.alert_rules.0.clone(),
        alerts: sink,
        maintenance_min_score,
        on_inference_error: match settings.on_inference_error {
            OnInferenceError::Retry => OnError::Retry,
            OnInferenceError::StoreUnknown => OnError::StoreUnknown,
        },
        limits: Limits {
            max_line_bytes: settings.max_line_bytes,
            max_object_bytes: settings.max_object_bytes,
            max_gzip_ratio: settings.max_gzip_ratio,
            idle_timeout: settings.timeouts.s3_idle,
        },
        max_records: settings.max_records,
        max_future_skew: settings.max_future_skew,
        quarantine: settings
            .quarantine_prefix
            .clone()
            .filter(|_| s3_input)
            .map(|prefix| Quarantine::new(clients.s3.clone(), prefix)),
    })
}

/// The prediction backend. The model (built in, or FLEETWATCH_MODEL) is
/// loaded and checked even for SageMaker, whose default threshold in `csv`
/// and `json` mode is the model's: a bad model stops the command at start,
/// not mid-stream.
pub fn predictor(
    settings: &PipelineSettings,
    clients: &aws::Clients,
) -> Result<Predictor, BuildError> {
    if settings.inference == InferenceBackend::None {
        return Ok(Predictor::Disabled);
    }
    let model = match &settings.model {
        Some(path) => EmbeddedModel::load(path).map_err(|e| BuildError::Model {
            path: path.clone(),
            message: e.to_string(),
        })?,
        None => EmbeddedModel::builtin().map_err(|e| BuildError::BuiltinModel(e.to_string()))?,
    };
    Ok(match settings.inference {
        InferenceBackend::Embedded => Predictor::Embedded(model),
        InferenceBackend::Sagemaker => Predictor::SageMaker(SageMakerPredictor::new(
            clients.sagemaker.clone(),
            settings.sagemaker_endpoint.clone().unwrap_or_default(),
            match settings.sagemaker_format {
                SageMakerFormat::Csv => RequestFormat::Csv,
                SageMakerFormat::Json => RequestFormat::Json,
                SageMakerFormat::Text => RequestFormat::Text {
                    labels: settings.sagemaker_labels.0.clone(),
                },
            },
            // An endpoint in `text` mode is not ours: its own labels stand
            // unless a threshold is set. The others serve our model.
            match (settings.sagemaker_threshold, settings.sagemaker_format) {
                (Some(t), _) => Decision::Threshold(t),
                (None, SageMakerFormat::Text) => Decision::EndpointLabel,
                (None, _) => Decision::Threshold(model.threshold()),
            },
        )),
        InferenceBackend::None => Predictor::Disabled,
    })
}
