//! The `sagemaker` backend against the emulator's SageMaker runtime, whose
//! answers a test queues (`/moto-api/static/sagemaker/endpoint-results`):
//! CSV and JSON batches, the original one-line `text` contract, a broken
//! endpoint (never stored as a prediction), and `store-unknown`.

mod common;

use common::{Moto, moto_api_post};
use fleetwatch::inference::embedded::EmbeddedModel;
use fleetwatch::inference::sagemaker::{Decision, RequestFormat, SageMakerPredictor};
use fleetwatch::inference::{Label, OnError, Predictor};
use fleetwatch::telemetry::{LineParser, Reading};

const ENDPOINT: &str = "fleet-endpoint";

fn readings() -> (Vec<Reading>, Vec<String>) {
    let lines: Vec<String> = (0..3)
        .map(|i| {
            format!(
                "{{\"device_id\":\"SM1\",\"timestamp\":{},\"engine_temp_c\":{},\"rpm\":2100,\"oil_pressure_kpa\":310}}",
                1_760_000_000 + i * 30,
                95 + i * 5
            )
        })
        .collect();
    let (parser, _) = LineParser::detect(&lines[0]);
    (
        lines.iter().map(|l| parser.parse(l).unwrap()).collect(),
        lines,
    )
}

async fn queue_answers(moto: &Moto, bodies: &[&str], content_type: &str) {
    let results: Vec<serde_json::Value> = bodies
        .iter()
        .map(|b| serde_json::json!({"Body": b, "ContentType": content_type, "InvokedProductionVariant": "AllTraffic", "CustomAttributes": ""}))
        .collect();
    moto_api_post(
        &moto.endpoint,
        "/moto-api/static/sagemaker/endpoint-results",
        &serde_json::json!({ "region": common::REGION, "results": results }),
    )
    .await;
}

async fn predictor(moto: &Moto, format: RequestFormat) -> Predictor {
    predictor_deciding(moto, format, Decision::Threshold(0.94)).await
}

async fn predictor_deciding(moto: &Moto, format: RequestFormat, decision: Decision) -> Predictor {
    let clients = moto.clients().await;
    Predictor::SageMaker(SageMakerPredictor::new(
        clients.sagemaker,
        ENDPOINT.into(),
        format,
        decision,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_batches_get_one_score_per_row() {
    let moto = Moto::start();
    queue_answers(&moto, &["0.97\n0.12\n0.5\n"], "text/csv").await;
    let (readings, raw) = readings();
    let p = predictor(&moto, RequestFormat::Csv)
        .await
        .predict(&readings, &raw, OnError::Retry)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        p.iter().map(|p| p.label).collect::<Vec<_>>(),
        [Label::Positive, Label::Negative, Label::Negative]
    );
    assert_eq!(p[0].score, 0.97);
    assert_eq!(p[0].model, "sagemaker:fleet-endpoint");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_answers_are_read_too() {
    let moto = Moto::start();
    queue_answers(
        &moto,
        &[r#"{"predictions":[{"score":0.2},{"score":0.99},{"score":0.3}]}"#],
        "application/json",
    )
    .await;
    let (readings, raw) = readings();
    let p = predictor(&moto, RequestFormat::Json)
        .await
        .predict(&readings, &raw, OnError::Retry)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p[1].label, Label::Positive);
    assert_eq!(p[2].score, 0.3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_text_contract_one_line_per_call() {
    let moto = Moto::start();
    // One answer per distinct line; all alike, as calls run concurrently.
    let answer = r#"{"probabilities":[0.04,0.96]}"#;
    queue_answers(&moto, &[answer, answer, answer], "application/json").await;
    let (readings, raw) = readings();
    let format = RequestFormat::Text {
        labels: vec!["NEGATIVE".into(), "POSITIVE".into()],
    };
    let p = predictor(&moto, format)
        .await
        .predict(&readings, &raw, OnError::Retry)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.len(), 3);
    assert!(
        p.iter()
            .all(|p| p.label == Label::Positive && p.score == 0.96)
    );
}

/// The original endpoint is not ours: with no threshold set, its answer
/// `{"probabilities":[0.1,0.9]}` is POSITIVE, as it said, although 0.9 is
/// under our model's threshold of 0.94; with a threshold set, the
/// threshold decides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_text_endpoint_keeps_its_own_labels_unless_a_threshold_is_set() {
    let moto = Moto::start();
    let (readings, raw) = readings();
    let format = RequestFormat::Text {
        labels: vec!["NEGATIVE".into(), "POSITIVE".into()],
    };
    let answers = [
        r#"{"probabilities":[0.1,0.9]}"#,
        r#"{"probabilities":[0.1,0.9]}"#,
        r#"{"probabilities":[0.1,0.9]}"#,
    ];
    queue_answers(&moto, &answers, "application/json").await;
    let own = predictor_deciding(&moto, format.clone(), Decision::EndpointLabel).await;
    assert_eq!(
        own.threshold(),
        Some(0.0),
        "every POSITIVE of its own counts"
    );
    let p = own
        .predict(&readings, &raw, OnError::Retry)
        .await
        .unwrap()
        .unwrap();
    assert!(
        p.iter()
            .all(|p| p.label == Label::Positive && p.score == 0.9),
        "{p:?}"
    );
    let p = predictor_deciding(&moto, format, Decision::Threshold(0.94))
        .await
        .predict(&readings, &raw, OnError::Retry)
        .await
        .unwrap()
        .unwrap();
    assert!(
        p.iter()
            .all(|p| p.label == Label::Negative && p.score == 0.9),
        "{p:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_endpoint_is_an_error_or_an_explicit_unknown() {
    let moto = Moto::start();
    // No answer queued: the emulator answers `body`, which is no score.
    let (readings, raw) = readings();
    let sagemaker = predictor(&moto, RequestFormat::Csv).await;
    let err = sagemaker
        .predict(&readings, &raw, OnError::Retry)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("fleet-endpoint"), "{err}");
    let unknown = sagemaker
        .predict(&readings, &raw, OnError::StoreUnknown)
        .await
        .unwrap()
        .unwrap();
    assert!(
        unknown
            .iter()
            .all(|p| p.label == Label::Unknown && p.score.is_nan())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sagemaker_serving_the_same_model_agrees_with_the_embedded_backend() {
    let moto = Moto::start();
    let (readings, raw) = readings();
    // What the built-in XGBoost container serving model-artifacts/fleetwatch.json
    // answers for these rows is what the evaluator computes (the evaluator
    // matches xgboost within 1e-6, see src/inference/xgboost.rs).
    let embedded = EmbeddedModel::builtin().unwrap();
    let expected = embedded.predict(&readings).unwrap();
    let body: String = expected.iter().map(|p| format!("{}\n", p.score)).collect();
    queue_answers(&moto, &[&body], "text/csv").await;
    let from_endpoint = predictor(&moto, RequestFormat::Csv)
        .await
        .predict(&readings, &raw, OnError::Retry)
        .await
        .unwrap()
        .unwrap();
    for (a, b) in expected.iter().zip(&from_endpoint) {
        assert_eq!(a.label, b.label);
        assert!((a.score - b.score).abs() < 1e-9);
    }
}

/// The endpoint refuses one reading for its content (a 424 `ModelError`,
/// injected by the proxy for the request rows that carry it): the refused
/// request is split until that row is alone; it is reported as refused and
/// the other readings are scored. When every row is refused, the endpoint
/// refuses the request kind itself: an error, not three rejected readings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_row_is_found_and_the_others_are_scored() {
    use common::fault_proxy::{FaultConfig, FaultProxy};
    use fleetwatch::inference::features::FeatureContext;
    let moto = Moto::start();
    // The bodies that reach the endpoint, in order: row 0 alone, row 1 alone.
    queue_answers(&moto, &["0.1\n", "0.2\n"], "text/csv").await;
    let lines: Vec<String> = [2100, 2200, 4242]
        .iter()
        .enumerate()
        .map(|(i, rpm)| {
            format!(
                "{{\"device_id\":\"SM{i}\",\"timestamp\":1760000000,\"engine_temp_c\":90,\"rpm\":{rpm}}}"
            )
        })
        .collect();
    let (parser, _) = LineParser::detect(&lines[0]);
    let readings: Vec<Reading> = lines.iter().map(|l| parser.parse(l).unwrap()).collect();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        FaultConfig::new(1).refuse_containing("sagemaker", "InvokeEndpoint", "4242"),
    )
    .await;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&proxy.endpoint)
        .region(aws_config::Region::new(common::REGION))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await;
    let clients = fleetwatch::aws::Clients::new(&sdk, true);
    let predictor = Predictor::SageMaker(SageMakerPredictor::new(
        clients.sagemaker,
        ENDPOINT.into(),
        RequestFormat::Csv,
        Decision::Threshold(0.94),
    ));
    let mut context = FeatureContext::new(100);
    let input = predictor.prepare(&mut context, &readings);
    let scored = predictor
        .score(&input, &readings, &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(scored.refused, [2], "the row carrying the refused value");
    assert_eq!(scored.predictions[0].score, 0.1);
    assert_eq!(scored.predictions[1].score, 0.2);
    assert_eq!(scored.predictions[2].label, Label::Unknown);

    // Every row refused: the endpoint refuses requests of this kind.
    proxy.set_config(FaultConfig::new(1).refuse_containing("sagemaker", "InvokeEndpoint", ","));
    let error = predictor.score(&input, &readings, &[]).await.unwrap_err();
    assert!(
        error.to_string().contains("refuses the requests"),
        "{error}"
    );
    assert!(
        fleetwatch::failure::Classify::class(&error).is_retryable(),
        "held like an outage, never a reason to drop the readings"
    );
}
