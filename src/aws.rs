//! Building the AWS clients from one shared SDK configuration.
//!
//! Everything comes from the SDK's standard sources (`AWS_REGION`,
//! `AWS_ENDPOINT_URL` and the per-service `AWS_ENDPOINT_URL_<SERVICE>`,
//! the credentials chain including the ECS task role), so the same binary
//! runs against AWS, LocalStack or moto without a setting of its own.

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_sagemakerruntime::config::timeout::TimeoutConfig;

/// SageMaker may take a while on a large batch; 70 s stays above the
/// 60 s real-time invocation limit so the endpoint, not us, times out first.
const SAGEMAKER_TIMEOUT: Duration = Duration::from_secs(70);

/// Loads the SDK configuration from the environment.
pub async fn load() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// All clients the worker uses, built from one configuration.
#[derive(Debug, Clone)]
pub struct Clients {
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sns: aws_sdk_sns::Client,
    pub sagemaker: aws_sdk_sagemakerruntime::Client,
}

impl Clients {
    /// `s3_path_style`: address buckets as `endpoint/bucket` (emulators
    /// need it) instead of `bucket.endpoint`.
    pub fn new(config: &SdkConfig, s3_path_style: bool) -> Clients {
        let s3 = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(s3_path_style)
            .build();
        let sagemaker = aws_sdk_sagemakerruntime::config::Builder::from(config)
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(SAGEMAKER_TIMEOUT)
                    .build(),
            )
            .build();
        Clients {
            sqs: aws_sdk_sqs::Client::new(config),
            s3: aws_sdk_s3::Client::from_conf(s3),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            sns: aws_sdk_sns::Client::new(config),
            sagemaker: aws_sdk_sagemakerruntime::Client::from_conf(sagemaker),
        }
    }
}
