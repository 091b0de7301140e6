//! Building the worker from validated settings: the one place the worker
//! (the binary, and the tests through [`worker`]) and `fleetwatch process`
//! assemble the predictor, the store, the alert sink, the limits and the
//! quarantine, so they cannot drift apart. [`run`] is the whole `fleetwatch
//! worker` process around it: the health server, the start-up checks and
//! the loop until SIGTERM.

pub mod bootstrap;
pub mod run;
pub mod shutdown;
pub mod startup;

use crate::alarms::AlarmStore;
use crate::alerts::AlertSink;
use crate::alerts::ledger::AlertLedger;
use crate::alerts::publisher::AlertPublisher;
use crate::alerts::rule_book::RuleBook;
use crate::aws;
use crate::config::{
    InferenceBackend, InferenceSettings, PipelineSettings, SageMakerFormat, WorkerSettings,
};
use crate::health::Health;
use crate::inference::Predictor;
use crate::inference::embedded::EmbeddedModel;
use crate::inference::sagemaker::{Decision, RequestFormat, SageMakerPredictor};
use crate::object_reader::Limits;
use crate::pipeline::Pipeline;
use crate::quarantine::Quarantine;
use crate::storage::ReadingStore;
use crate::worker::{self, LoopSettings, Worker};

/// The worker, built but not started: its parts stay open so a test can
/// shorten what the command line does not set ([`LoopSettings::retry_base`]).
pub struct WorkerBuild {
    /// The client the loop receives, extends and deletes messages with.
    pub sqs: aws_sdk_sqs::Client,
    /// What each message's objects go through.
    pub pipeline: Pipeline,
    /// The loop's own settings (queue, concurrency, lease, grace).
    pub loop_settings: LoopSettings,
}

impl WorkerBuild {
    /// The loop, reporting to `health`; run it with [`Worker::run`].
    pub fn into_worker(self, health: Health) -> Worker {
        Worker::new(
            self.sqs,
            std::sync::Arc::new(self.pipeline),
            self.loop_settings,
            health,
        )
    }
}

/// The worker from its settings, talking to AWS through `clients` (the
/// binary's from the SDK's environment; a test's may point one service at
/// a fault proxy). Contacts nothing: the start-up checks are [`startup`]'s.
pub fn worker(
    settings: &WorkerSettings,
    clients: &aws::Clients,
) -> Result<WorkerBuild, BuildError> {
    Ok(WorkerBuild {
        sqs: clients.sqs.clone(),
        pipeline: pipeline(&settings.pipeline, clients, true, true)?,
        loop_settings: LoopSettings {
            queue_url: settings.queue.url.clone(),
            concurrency: settings.pipeline.processing.concurrency,
            visibility_timeout: settings.pipeline.processing.visibility_timeout,
            shutdown_grace: settings.server.shutdown_grace,
            retry_base: worker::RETRY_BASE,
        },
    })
}

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
    let predictor = predictor(&settings.inference, clients)?;
    let table = &settings.table.name;
    let limits = &settings.limits;
    let sink = match (&settings.alerts.alert_topic_arn, alerts) {
        (Some(arn), true) => Some(AlertSink {
            publisher: AlertPublisher::new(clients.sns.clone(), arn.clone()),
            // A claim outlives its worker by at most one visibility timeout:
            // past that, the message has been handed to another worker.
            ledger: AlertLedger::new(
                clients.dynamodb.clone(),
                settings.alarms.table.alarm_table.clone(),
                settings.alerts.alert_cooldown,
                settings.processing.visibility_timeout,
            ),
            alarms: AlarmStore::new(
                clients.dynamodb.clone(),
                settings.alarms.table.alarm_table.clone(),
            ),
        }),
        _ => None,
    };
    let maintenance_min_score = settings
        .alerts
        .maintenance_alert_score
        .resolve(predictor.threshold());
    Ok(Pipeline {
        s3: clients.s3.clone(),
        store: ReadingStore::new(
            clients.dynamodb.clone(),
            table.clone(),
            settings.storage.dynamodb_writers,
        )
        .with_reading_ttl(settings.storage.reading_ttl),
        predictor,
        rules: RuleBook::new(settings.alerts.rules.alert_rules.0.clone()),
        alerts: sink,
        maintenance_min_score,
        on_inference_error: settings.inference.on_inference_error,
        limits: Limits {
            max_line_bytes: limits.max_line_bytes,
            max_object_bytes: limits.max_object_bytes,
            max_gzip_ratio: limits.max_gzip_ratio,
            idle_timeout: settings.timeouts.s3_idle,
        },
        max_records: limits.max_records,
        max_future_skew: limits.max_future_skew,
        quarantine: limits
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
    settings: &InferenceSettings,
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
