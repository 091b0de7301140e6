//! Start-up checks: before taking any message, prove the worker can reach
//! its queue and table and holds the permissions it needs, so a missing
//! permission stops the task at once with the action named, instead of
//! surfacing later as a stream of failed messages.
//!
//! Only actions that can be exercised without side effects are probed
//! (`sqs:GetQueueAttributes`, `dynamodb:Query`); the others (`s3:GetObject`,
//! `dynamodb:BatchWriteItem`, `sns:Publish`, ...) are named by AWS in the
//! error of the first call that needs them, which the worker logs.

use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sqs::types::QueueAttributeName;

/// What the queue says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    /// `maxReceiveCount` of the redrive policy, when there is one.
    pub max_receive_count: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error("missing IAM permission {action} on {resource}: {message}")]
    Permission {
        action: &'static str,
        resource: String,
        message: String,
    },
    #[error("{resource} does not exist ({action}): {message}")]
    NotFound {
        action: &'static str,
        resource: String,
        message: String,
    },
    /// Throttling, 5xx, network: may succeed if tried again.
    #[error("{action} on {resource} failed: {message}")]
    Call {
        action: &'static str,
        resource: String,
        message: String,
    },
}

impl PreflightError {
    /// Whether trying again cannot help: the configuration or the role
    /// must change. Anything else is retried, so an outage at start-up
    /// does not turn into a restart loop.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, PreflightError::Call { .. })
    }
}

/// Sorts an AWS error into a missing permission, a missing resource or a
/// failed call, naming `action` and `resource` (also used by the operator
/// tools in [`crate::ops`]).
pub fn classify<E>(action: &'static str, resource: &str, e: &E) -> PreflightError
where
    E: ProvideErrorMetadata + std::error::Error,
{
    let message = DisplayErrorContext(e).to_string();
    let code = e.code().unwrap_or_default();
    let resource = resource.to_owned();
    let denied = code.contains("AccessDenied")
        || code == "UnauthorizedOperation"
        || message.contains("not authorized");
    let missing = matches!(
        code,
        "ResourceNotFoundException"
            | "QueueDoesNotExist"
            | "AWS.SimpleQueueService.NonExistentQueue"
    );
    if denied {
        PreflightError::Permission {
            action,
            resource,
            message,
        }
    } else if missing {
        PreflightError::NotFound {
            action,
            resource,
            message,
        }
    } else {
        PreflightError::Call {
            action,
            resource,
            message,
        }
    }
}

/// Checks the queue and the table; returns the queue's redrive settings.
pub async fn check(
    sqs: &aws_sdk_sqs::Client,
    dynamodb: &aws_sdk_dynamodb::Client,
    queue_url: &str,
    table: &str,
) -> Result<QueueInfo, PreflightError> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .map_err(|e| classify("sqs:GetQueueAttributes", queue_url, &e))?
        .attributes
        .unwrap_or_default();
    let max_receive_count = attributes
        .get(&QueueAttributeName::RedrivePolicy)
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
        .and_then(|p| match &p["maxReceiveCount"] {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        })
        .map(|n| n as u32);
    probe_table(dynamodb, table)
        .await
        .map_err(|e| classify("dynamodb:Query", table, &e))?;

    Ok(QueueInfo { max_receive_count })
}

/// A query for a key that never exists: proves the table is there and
/// readable by this role without touching any data.
pub async fn probe_table(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<(), aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::query::QueryError>> {
    dynamodb
        .query()
        .table_name(table)
        .key_condition_expression("device_id = :probe")
        .expression_attribute_values(
            ":probe",
            aws_sdk_dynamodb::types::AttributeValue::S("alert#fleetwatch-preflight".into()),
        )
        .limit(1)
        .send()
        .await
        .map(|_| ())
}

/// Checks that the alarm table (`FLEETWATCH_ALARM_TABLE`) is there and
/// readable, with a query for a key that never exists: without it every
/// alert would fail, so a worker that publishes alerts checks it at start.
pub async fn check_alarm_table(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<(), PreflightError> {
    probe_table(dynamodb, table).await.map_err(|e| {
        classify(
            "dynamodb:Query",
            &format!("{table} (FLEETWATCH_ALARM_TABLE)"),
            &e,
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::error::ErrorMetadata;
    use aws_sdk_sqs::operation::get_queue_attributes::GetQueueAttributesError;

    fn error(code: &str, message: &str) -> GetQueueAttributesError {
        GetQueueAttributesError::generic(
            ErrorMetadata::builder().code(code).message(message).build(),
        )
    }

    #[test]
    fn access_denied_names_the_action() {
        let e = classify(
            "sqs:GetQueueAttributes",
            "https://q",
            &error("AccessDenied", "User x is not authorized"),
        );
        let text = e.to_string();
        assert!(matches!(e, PreflightError::Permission { .. }), "{text}");
        assert!(
            text.starts_with("missing IAM permission sqs:GetQueueAttributes on https://q"),
            "{text}"
        );
        let e = classify(
            "dynamodb:Query",
            "t",
            &error("ResourceNotFoundException", "no table"),
        );
        assert!(matches!(e, PreflightError::NotFound { .. }) && e.is_fatal());
        let e = classify(
            "sqs:GetQueueAttributes",
            "q",
            &error("ServiceUnavailable", "later"),
        );
        assert!(!e.is_fatal(), "an outage is retried, not fatal");
    }
}
