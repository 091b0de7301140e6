//! The worker's queue (`FLEETWATCH_QUEUE_URL`): read by the worker and by
//! `status`. (`dlq` takes it too, optional and global to its actions.)

use clap::Args;

/// The SQS queue that receives the bucket's notifications.
#[derive(Debug, Clone, Args)]
pub struct QueueSettings {
    /// URL of the SQS queue that receives the bucket's notifications.
    #[arg(id = "queue_url", long = "queue-url", value_name = "QUEUE_URL", env = "FLEETWATCH_QUEUE_URL", value_parser = parse_queue_url)]
    pub url: String,
}

pub(super) fn parse_queue_url(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("FLEETWATCH_QUEUE_URL is empty: it is required; expected a queue URL like https://sqs.eu-west-1.amazonaws.com/123456789012/fleetwatch-telemetry".into());
    }
    if (s.starts_with("https://") || s.starts_with("http://")) && s.len() > 8 {
        Ok(s.to_owned())
    } else {
        Err("FLEETWATCH_QUEUE_URL: expected a queue URL like https://sqs.eu-west-1.amazonaws.com/123456789012/fleetwatch-telemetry".into())
    }
}
