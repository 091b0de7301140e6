//! `fleetwatch bootstrap`: creates what the worker needs against the
//! configured endpoint (LocalStack, moto, or a sandbox account): the
//! bucket, the queue with its dead-letter queue and redrive policy, the
//! bucket's notification to the queue, the readings table, the alarm table
//! and the alert topic.
//!
//! Every step is idempotent, so it can run on each `docker compose up`.
//! Production deployments use the Terraform module instead.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, Event, NotificationConfiguration,
    QueueConfiguration,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::json;

use crate::aws::Clients;

/// What to create: the names, already validated (by `config` for the
/// command line), and the dead-letter threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Bucket the vehicles upload to.
    pub bucket: String,
    /// The notification queue; its dead-letter queue gets `-dlq` appended.
    pub queue_name: String,
    /// DynamoDB table for readings (and the fleet status records).
    pub table: String,
    /// DynamoDB table for alarms, their history and the alert ledger.
    pub alarm_table: String,
    /// SNS topic for alerts.
    pub topic_name: String,
    /// Receives before a message is moved to the dead-letter queue.
    pub max_receive_count: u32,
}

/// The worker's view of what was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    pub bucket: String,
    pub queue_url: String,
    pub dead_letter_queue_url: String,
    pub table: String,
    /// Alarms, their history and the alert ledger.
    pub alarm_table: String,
    pub topic_arn: String,
}

impl Resources {
    /// Shell lines that configure a worker for these resources.
    pub fn exports(&self) -> String {
        format!(
            "export FLEETWATCH_BUCKET={}\nexport FLEETWATCH_QUEUE_URL={}\nexport FLEETWATCH_TABLE={}\nexport FLEETWATCH_ALARM_TABLE={}\nexport FLEETWATCH_ALERT_TOPIC_ARN={}\n# dead-letter queue: {}\n",
            self.bucket,
            self.queue_url,
            self.table,
            self.alarm_table,
            self.topic_arn,
            self.dead_letter_queue_url
        )
    }
}

#[derive(Debug, thiserror::Error)]
#[error("bootstrap: {step} failed: {message}")]
pub struct BootstrapError {
    step: &'static str,
    message: String,
}

fn fail<E: std::error::Error>(step: &'static str) -> impl FnOnce(E) -> BootstrapError {
    move |e| BootstrapError {
        step,
        message: aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
    }
}

/// Creates (or finds) every resource.
pub async fn run(
    clients: &Clients,
    region: &str,
    settings: &Plan,
) -> Result<Resources, BootstrapError> {
    create_bucket(clients, region, &settings.bucket).await?;

    let dlq_name = format!("{}-dlq", settings.queue_name);
    let dead_letter_queue_url = ensure_queue(clients, &dlq_name, &[]).await?;
    let dlq_arn = queue_arn(clients, &dead_letter_queue_url).await?;
    let redrive = json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": settings.max_receive_count.to_string() });
    let queue_url = ensure_queue(
        clients,
        &settings.queue_name,
        &[
            (QueueAttributeName::RedrivePolicy, redrive.to_string()),
            (QueueAttributeName::VisibilityTimeout, "60".into()),
            (
                QueueAttributeName::ReceiveMessageWaitTimeSeconds,
                "20".into(),
            ),
        ],
    )
    .await?;
    let arn = queue_arn(clients, &queue_url).await?;
    // Only this bucket may send to the queue.
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AllowBucketNotifications",
            "Effect": "Allow",
            "Principal": { "Service": "s3.amazonaws.com" },
            "Action": "sqs:SendMessage",
            "Resource": arn,
            "Condition": { "ArnLike": { "aws:SourceArn": format!("arn:aws:s3:::{}", settings.bucket) } }
        }]
    });
    clients
        .sqs
        .set_queue_attributes()
        .queue_url(&queue_url)
        .attributes(QueueAttributeName::Policy, policy.to_string())
        .send()
        .await
        .map_err(fail("setting the queue policy"))?;

    let notification = NotificationConfiguration::builder()
        .queue_configurations(
            QueueConfiguration::builder()
                .id("fleetwatch")
                .queue_arn(&arn)
                .events(Event::from("s3:ObjectCreated:*"))
                .build()
                .map_err(fail("building the bucket notification"))?,
        )
        .build();
    clients
        .s3
        .put_bucket_notification_configuration()
        .bucket(&settings.bucket)
        .notification_configuration(notification)
        .send()
        .await
        .map_err(fail("configuring the bucket notification"))?;

    create_table(clients, &settings.table, crate::storage::TIMESTAMP).await?;
    // Alarms, their history and the alert ledger.
    create_table(clients, &settings.alarm_table, crate::alarms::store::RECORD).await?;

    let topic_arn = clients
        .sns
        .create_topic()
        .name(&settings.topic_name)
        .send()
        .await
        .map_err(fail("creating the topic"))?
        .topic_arn
        .unwrap_or_default();

    Ok(Resources {
        bucket: settings.bucket.clone(),
        queue_url,
        dead_letter_queue_url,
        table: settings.table.clone(),
        alarm_table: settings.alarm_table.clone(),
        topic_arn,
    })
}

async fn create_bucket(
    clients: &Clients,
    region: &str,
    bucket: &str,
) -> Result<(), BootstrapError> {
    let mut request = clients.s3.create_bucket().bucket(bucket);
    // us-east-1 is the one region that refuses an explicit location.
    if region != "us-east-1" {
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build(),
        );
    }
    match request.send().await {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.code(),
                Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(fail("creating the bucket")(e)),
    }
}

/// Returns the queue's URL, creating it or updating its attributes.
async fn ensure_queue(
    clients: &Clients,
    name: &str,
    attributes: &[(QueueAttributeName, String)],
) -> Result<String, BootstrapError> {
    if let Ok(found) = clients.sqs.get_queue_url().queue_name(name).send().await
        && let Some(url) = found.queue_url
    {
        if !attributes.is_empty() {
            let mut request = clients.sqs.set_queue_attributes().queue_url(&url);
            for (k, v) in attributes {
                request = request.attributes(k.clone(), v);
            }
            request
                .send()
                .await
                .map_err(fail("updating the queue's attributes"))?;
        }
        return Ok(url);
    }
    let mut request = clients.sqs.create_queue().queue_name(name);
    for (k, v) in attributes {
        request = request.attributes(k.clone(), v);
    }
    let output = request.send().await.map_err(fail("creating a queue"))?;
    output.queue_url.ok_or(BootstrapError {
        step: "creating a queue",
        message: format!("no URL returned for {name}"),
    })
}

async fn queue_arn(clients: &Clients, url: &str) -> Result<String, BootstrapError> {
    let output = clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(fail("reading a queue's ARN"))?;
    output
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or(BootstrapError {
            step: "reading a queue's ARN",
            message: format!("no ARN for {url}"),
        })
}

/// Turns on the table's TTL on `expires_at`, which the alert ledger's
/// items always carry and readings carry with `FLEETWATCH_READING_TTL`, as
/// Terraform does. Asking again once it is on is an error, so look first.
async fn enable_ttl(clients: &Clients, table: &str) -> Result<(), BootstrapError> {
    let current = clients
        .dynamodb
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(fail("reading the table's TTL"))?;
    let on = current.time_to_live_description().is_some_and(|d| {
        d.attribute_name() == Some(crate::storage::EXPIRES_AT)
            && matches!(
                d.time_to_live_status(),
                Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
            )
    });
    if on {
        return Ok(());
    }
    let spec = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(crate::storage::EXPIRES_AT)
        .build()
        .map_err(fail("building the TTL setting"))?;
    clients
        .dynamodb
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(spec)
        .send()
        .await
        .map_err(fail("enabling the table's TTL"))?;
    Ok(())
}

/// Creates (or finds) a table keyed by `device_id` and `sort_key` (both S).
async fn create_table(
    clients: &Clients,
    table: &str,
    sort_key: &str,
) -> Result<(), BootstrapError> {
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(fail("building the table definition"))
    };
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(fail("building the table definition"))
    };
    let created = clients
        .dynamodb
        .create_table()
        .table_name(table)
        .attribute_definitions(attribute("device_id")?)
        .attribute_definitions(attribute(sort_key)?)
        .key_schema(key("device_id", KeyType::Hash)?)
        .key_schema(key(sort_key, KeyType::Range)?)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) => {}
        Err(e) => return Err(fail("creating the table")(e)),
    }
    // Wait until the table accepts writes.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = clients
            .dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(fail("waiting for the table"))?
            .table
            .and_then(|t| t.table_status);
        if status == Some(TableStatus::Active) {
            return enable_ttl(clients, table).await;
        }
        if Instant::now() > deadline {
            return Err(BootstrapError {
                step: "waiting for the table",
                message: format!("{table} is still {status:?} after 60 s"),
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
