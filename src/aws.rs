//! Building the AWS clients from one shared SDK configuration, with the
//! timeouts of every call the worker makes.
//!
//! Everything else comes from the SDK's standard sources (`AWS_REGION`,
//! `AWS_ENDPOINT_URL` and the per-service `AWS_ENDPOINT_URL_<SERVICE>`,
//! the credentials chain including the ECS task role), so the same binary
//! runs against AWS, LocalStack or moto without a setting of its own.
//!
//! # Timeouts
//!
//! No call may wait forever, and each timeout has one home (its setting in
//! `config::TimeoutSettings`):
//!
//! - **connect** (`FLEETWATCH_AWS_CONNECT_TIMEOUT`): TCP and TLS set-up,
//!   every client.
//! - **per attempt** (`FLEETWATCH_AWS_CALL_TIMEOUT`): SQS, S3, DynamoDB and
//!   SNS calls, from sending the request to the whole response (for S3
//!   `GetObject`, to the response headers; see below). `ReceiveMessage`
//!   long-polls, so it gets its wait on top: [`long_poll`].
//!   SageMaker has its own (`FLEETWATCH_SAGEMAKER_TIMEOUT`).
//! - **S3 bodies** are not bounded in total, so a 1 GiB object still
//!   streams: the object reader fails a body that sends no byte for
//!   `FLEETWATCH_S3_IDLE_TIMEOUT` (`object_reader::Limits::idle_timeout`).
//!   The SDK's own stalled-stream protection (a minimum throughput of
//!   1 B/s with a 5 s grace by default, neither configured nor counted
//!   here before) is switched off on the S3 client so that this one
//!   setting decides.
//!
//! The SDK's standard retry strategy (3 attempts, exponential backoff with
//! jitter) retries a timed-out attempt like a 5xx, so one call lasts at
//! most about 3 attempt timeouts plus two backoffs. That is safe for every
//! call the worker makes: `ReceiveMessage` (messages a lost response took
//! reappear after their visibility timeout), `DeleteMessage` and
//! `ChangeMessageVisibility` (idempotent), `BatchWriteItem` (puts of the
//! same keys), `GetObject`/`PutObject`, `InvokeEndpoint` (a pure function).
//! Two need care from their callers: an SNS `PublishBatch` attempt that
//! timed out may have been accepted, so its retry can publish an alert twice
//! (the documented publish→confirm window; leaving it to redelivery would
//! publish it twice just the same, only later), and a conditional `PutItem`
//! (an alert claim) retried after a timed-out attempt that did succeed
//! finds its own claim in place.
//!
//! Every HTTP request (each attempt, SDK retries included) is counted in
//! `fleetwatch_aws_requests_total{service, operation}`, and every timed-out
//! attempt in `fleetwatch_aws_timeouts_total{service, kind}`, by one
//! interceptor on every client, [`CountCalls`].

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_s3::config::StalledStreamProtectionConfig;
use aws_sdk_sqs::config::interceptors::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_sqs::error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;

use crate::metrics;

/// Loads the SDK configuration from the environment.
pub async fn load() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// The timeouts of the AWS clients; see the module documentation. The
/// defaults are those of `config::TimeoutSettings`, for the commands and
/// tests that build clients without the worker's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP and TLS connection set-up, every client.
    pub connect: Duration,
    /// One attempt of an SQS, S3, DynamoDB or SNS call.
    pub call: Duration,
    /// One attempt of a SageMaker `InvokeEndpoint`.
    pub sagemaker: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(3),
            call: Duration::from_secs(10),
            sagemaker: Duration::from_secs(70),
        }
    }
}

impl Timeouts {
    /// A connect timeout plus a per-attempt timeout of `attempt`.
    fn config(&self, attempt: Duration) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.connect)
            .operation_attempt_timeout(attempt)
            .build()
    }
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
    /// Clients with the default [`Timeouts`]. `s3_path_style`: address
    /// buckets as `endpoint/bucket` (emulators need it) instead of
    /// `bucket.endpoint`.
    pub fn new(config: &SdkConfig, s3_path_style: bool) -> Clients {
        Clients::with_timeouts(config, s3_path_style, &Timeouts::default())
    }

    /// Clients whose every call is bounded by `timeouts`.
    pub fn with_timeouts(config: &SdkConfig, s3_path_style: bool, timeouts: &Timeouts) -> Clients {
        let short = timeouts.config(timeouts.call);
        let sqs = aws_sdk_sqs::config::Builder::from(config)
            .timeout_config(short.clone())
            .interceptor(CountCalls { service: "sqs" })
            .build();
        let s3 = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(s3_path_style)
            .timeout_config(short.clone())
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
            .interceptor(CountCalls { service: "s3" })
            .build();
        let dynamodb = aws_sdk_dynamodb::config::Builder::from(config)
            .timeout_config(short.clone())
            .interceptor(CountCalls {
                service: "dynamodb",
            })
            .build();
        let sns = aws_sdk_sns::config::Builder::from(config)
            .timeout_config(short)
            .interceptor(CountCalls { service: "sns" })
            .build();
        let sagemaker = aws_sdk_sagemakerruntime::config::Builder::from(config)
            .timeout_config(timeouts.config(timeouts.sagemaker))
            .interceptor(CountCalls {
                service: "sagemaker",
            })
            .build();
        Clients {
            sqs: aws_sdk_sqs::Client::from_conf(sqs),
            s3: aws_sdk_s3::Client::from_conf(s3),
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb),
            sns: aws_sdk_sns::Client::from_conf(sns),
            sagemaker: aws_sdk_sagemakerruntime::Client::from_conf(sagemaker),
        }
    }
}

/// The per-call configuration of a `ReceiveMessage` that waits up to
/// `wait` for messages: the client's attempt timeout on top of the wait,
/// so a long poll is never cut short, and a hung one still ends. Use as
/// `.customize().config_override(aws::long_poll(&sqs, wait))`.
pub fn long_poll(sqs: &aws_sdk_sqs::Client, wait: Duration) -> aws_sdk_sqs::config::Builder {
    // Start from the client's own timeouts: an override replaces the
    // connector's settings as a whole, and must keep the connect timeout.
    let defaults = Timeouts::default();
    let base = sqs
        .config()
        .timeout_config()
        .cloned()
        .unwrap_or_else(|| defaults.config(defaults.call));
    let call = base.operation_attempt_timeout().unwrap_or(defaults.call);
    let timeouts = base
        .to_builder()
        .operation_attempt_timeout(wait + call)
        .build();
    aws_sdk_sqs::config::Builder::new().timeout_config(timeouts)
}

/// Counts every request sent (per service and operation) and every
/// timed-out attempt (connect or attempt timeouts, per service), whichever
/// call they belong to: one place for every client, so no call site can
/// forget. Attached to each client by [`Clients::with_timeouts`].
#[derive(Debug)]
pub struct CountCalls {
    /// The `service` label (`sqs`, `s3`, `dynamodb`, `sns`, `sagemaker`).
    service: &'static str,
}

impl Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "CountCalls"
    }

    /// Once per attempt, just before it goes on the wire: an SDK retry is
    /// one more request, as AWS bills and throttles it.
    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg.load::<Metadata>().map_or("unknown", Metadata::name);
        metrics::aws_request(self.service, operation);
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(Err(error)) = context.output_or_error() {
            if error.is_timeout_error() {
                metrics::aws_timeout(self.service, "attempt");
            } else if error.as_connector_error().is_some_and(|e| e.is_timeout()) {
                metrics::aws_timeout(self.service, "connect");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdk_config() -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-1"))
            .build()
    }

    #[test]
    fn every_client_gets_a_connect_and_an_attempt_timeout() {
        let timeouts = Timeouts {
            connect: Duration::from_secs(2),
            call: Duration::from_secs(7),
            sagemaker: Duration::from_secs(65),
        };
        let clients = Clients::with_timeouts(&sdk_config(), true, &timeouts);
        let check = |config: Option<&TimeoutConfig>, attempt: u64| {
            let config = config.expect("a timeout config");
            assert_eq!(config.connect_timeout(), Some(Duration::from_secs(2)));
            assert_eq!(
                config.operation_attempt_timeout(),
                Some(Duration::from_secs(attempt))
            );
        };
        check(clients.sqs.config().timeout_config(), 7);
        check(clients.s3.config().timeout_config(), 7);
        check(clients.dynamodb.config().timeout_config(), 7);
        check(clients.sns.config().timeout_config(), 7);
        check(clients.sagemaker.config().timeout_config(), 65);
        assert!(
            !clients
                .s3
                .config()
                .stalled_stream_protection()
                .is_some_and(|s| s.is_enabled()),
            "FLEETWATCH_S3_IDLE_TIMEOUT alone decides when a body stalls"
        );
    }

    #[test]
    fn a_long_poll_waits_on_top_of_the_call_timeout_and_keeps_the_connect_timeout() {
        let clients = Clients::new(&sdk_config(), true);
        let override_ = long_poll(&clients.sqs, Duration::from_secs(20)).build();
        let config = override_.timeout_config().expect("a timeout config");
        assert_eq!(
            config.operation_attempt_timeout(),
            Some(Duration::from_secs(30))
        );
        assert_eq!(config.connect_timeout(), Some(Duration::from_secs(3)));
    }
}
