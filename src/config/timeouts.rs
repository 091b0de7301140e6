//! How long the worker waits on AWS, and how long it may go without
//! progress before `/healthz` fails.

use std::time::Duration;

use clap::Args;

use super::values::parse_duration_in;

/// How long the worker waits on AWS, and how long it may go without
/// progress before `/healthz` fails. Each timeout has exactly one setting;
/// `aws::Timeouts` and `object_reader::Limits` carry them to where they act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Args)]
pub struct TimeoutSettings {
    /// Connecting (TCP and TLS) to an AWS endpoint, every client. An
    /// in-region handshake takes milliseconds; 3 s still rides out one lost
    /// SYN (retransmitted after 1 s) without waiting long on a dead address.
    #[arg(long = "aws-connect-timeout", env = "FLEETWATCH_AWS_CONNECT_TIMEOUT", default_value = "3s", value_parser = parse_aws_connect_timeout)]
    pub aws_connect: Duration,

    /// One attempt of an AWS call (SQS, S3 up to the response headers,
    /// DynamoDB, SNS); a timed-out attempt is retried like a 5xx. These calls
    /// answer in tens of milliseconds, so 10 s only ever cuts a hung one.
    /// ReceiveMessage gets its 20 s long-poll wait on top.
    #[arg(long = "aws-call-timeout", env = "FLEETWATCH_AWS_CALL_TIMEOUT", default_value = "10s", value_parser = parse_aws_call_timeout)]
    pub aws_call: Duration,

    /// An S3 object body that sends no byte for this long fails the read (a
    /// transient error: the message is retried). Not a total: a 1 GiB object
    /// streams as long as bytes keep coming. 30 s is far beyond any pause of
    /// a healthy S3 stream. Only time spent waiting for bytes counts, never
    /// the worker's own pauses between reads (while it writes to DynamoDB).
    #[arg(long = "s3-idle-timeout", env = "FLEETWATCH_S3_IDLE_TIMEOUT", default_value = "30s", value_parser = parse_s3_idle_timeout)]
    pub s3_idle: Duration,

    /// One SageMaker InvokeEndpoint attempt: 70 s stays above the 60 s
    /// real-time invocation limit, so the endpoint, not us, times out first.
    #[arg(long = "sagemaker-timeout", env = "FLEETWATCH_SAGEMAKER_TIMEOUT", default_value = "70s", value_parser = parse_sagemaker_timeout)]
    pub sagemaker: Duration,

    /// `/healthz` fails (503) when the worker made no progress for this long:
    /// no receive returned and no message task moved. 5 min is well above
    /// the longest quiet spell of a healthy worker (a 20 s long poll, a
    /// receive pause of at most 60 s during an outage, a retry backoff of at
    /// most 60 s followed by an attempt bounded by the timeouts above), so
    /// only a wedged task trips it and the container health check replaces it.
    #[arg(long = "liveness-timeout", env = "FLEETWATCH_LIVENESS_TIMEOUT", default_value = "5m", value_parser = parse_liveness_timeout)]
    pub liveness: Duration,
}

impl TimeoutSettings {
    /// The AWS clients' timeouts.
    pub fn aws(&self) -> crate::aws::Timeouts {
        crate::aws::Timeouts {
            connect: self.aws_connect,
            call: self.aws_call,
            sagemaker: self.sagemaker,
        }
    }
}

fn parse_aws_connect_timeout(s: &str) -> Result<Duration, String> {
    parse_duration_in(
        s,
        "FLEETWATCH_AWS_CONNECT_TIMEOUT",
        Duration::from_millis(100),
        Duration::from_secs(60),
        "100ms to 60s",
    )
}

fn parse_aws_call_timeout(s: &str) -> Result<Duration, String> {
    parse_duration_in(
        s,
        "FLEETWATCH_AWS_CALL_TIMEOUT",
        Duration::from_millis(500),
        Duration::from_secs(3600),
        "500ms to 1h",
    )
}

fn parse_s3_idle_timeout(s: &str) -> Result<Duration, String> {
    parse_duration_in(
        s,
        "FLEETWATCH_S3_IDLE_TIMEOUT",
        Duration::from_millis(500),
        Duration::from_secs(3600),
        "500ms to 1h",
    )
}

fn parse_sagemaker_timeout(s: &str) -> Result<Duration, String> {
    parse_duration_in(
        s,
        "FLEETWATCH_SAGEMAKER_TIMEOUT",
        Duration::from_secs(1),
        Duration::from_secs(3600),
        "1s to 1h",
    )
}

/// At least 30 s: below the 20 s long poll (plus its latency) an idle,
/// healthy worker would fail its health check.
fn parse_liveness_timeout(s: &str) -> Result<Duration, String> {
    parse_duration_in(
        s,
        "FLEETWATCH_LIVENESS_TIMEOUT",
        Duration::from_secs(30),
        Duration::from_secs(24 * 3600),
        "30s to 24h",
    )
}
