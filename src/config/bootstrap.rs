//! `fleetwatch bootstrap`'s settings: the names of what it creates.

use clap::Args;

use super::s3::S3AddressingSettings;
use super::storage::TableSettings;
use super::values::parse_bounded;

/// Settings of `fleetwatch bootstrap`.
#[derive(Debug, Clone, Args)]
pub struct BootstrapSettings {
    /// Bucket the vehicles upload to.
    #[arg(long, env = "FLEETWATCH_BUCKET", default_value = "fleetwatch-telemetry", value_parser = parse_bucket_name)]
    pub bucket: String,
    /// Name of the notification queue (its dead-letter queue gets `-dlq` appended).
    #[arg(long, env = "FLEETWATCH_QUEUE_NAME", default_value = "fleetwatch-telemetry", value_parser = parse_queue_name)]
    pub queue_name: String,
    /// The readings table.
    #[command(flatten)]
    pub table: TableSettings,
    /// The alarm table to create.
    #[command(flatten)]
    pub alarms: super::AlarmTableSetting,
    /// SNS topic for alerts.
    #[arg(long, env = "FLEETWATCH_TOPIC_NAME", default_value = "fleetwatch-alerts", value_parser = parse_topic_name)]
    pub topic_name: String,
    /// Receives before a message is moved to the dead-letter queue.
    #[arg(long, env = "FLEETWATCH_MAX_RECEIVE_COUNT", default_value_t = 5, value_parser = parse_max_receive_count)]
    pub max_receive_count: u32,
    /// S3 addressing.
    #[command(flatten)]
    pub s3: S3AddressingSettings,
}

impl BootstrapSettings {
    /// What `bootstrap::run` creates, free of the command line.
    pub fn plan(&self) -> crate::bootstrap::Plan {
        crate::bootstrap::Plan {
            bucket: self.bucket.clone(),
            queue_name: self.queue_name.clone(),
            table: self.table.name.clone(),
            alarm_table: self.alarms.alarm_table.clone(),
            topic_name: self.topic_name.clone(),
            max_receive_count: self.max_receive_count,
        }
    }
}

fn parse_bucket_name(s: &str) -> Result<String, String> {
    let ok = (3..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b));
    if ok {
        Ok(s.to_owned())
    } else {
        Err("FLEETWATCH_BUCKET: expected an S3 bucket name, 3-63 characters of a-z 0-9 - .".into())
    }
}

fn parse_queue_name(s: &str) -> Result<String, String> {
    let ok = (1..=76).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
    if ok {
        Ok(s.to_owned())
    } else {
        // 80 is SQS's limit; 4 are left for the dead-letter queue's `-dlq`.
        Err(
            "FLEETWATCH_QUEUE_NAME: expected a queue name, 1-76 characters of A-Z a-z 0-9 - _"
                .into(),
        )
    }
}

fn parse_topic_name(s: &str) -> Result<String, String> {
    let ok = (1..=256).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(
            "FLEETWATCH_TOPIC_NAME: expected a topic name, 1-256 characters of A-Z a-z 0-9 - _"
                .into(),
        )
    }
}

fn parse_max_receive_count(s: &str) -> Result<u32, String> {
    parse_bounded(s, 1, 1000, "FLEETWATCH_MAX_RECEIVE_COUNT").map(|n| n as u32)
}
