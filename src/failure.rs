//! What a failure means for the work that met it: one classification of
//! every error the worker can meet, so each stage decides the same way
//! whether to retry, wait, or reject the input that caused it.
//!
//! - [`FailureClass::Transient`]: the same call may succeed later (5xx,
//!   timeouts, broken connections, unparseable responses, and also access
//!   or resource errors: an operator fixes the policy or creates the table
//!   and the work resumes; dropping data over a misconfiguration would be
//!   worse than waiting).
//! - [`FailureClass::Throttled`]: the service asked us to slow down.
//! - [`FailureClass::Permanent`]: the service refused *this input* (a
//!   validation error): retrying the same request can never succeed, so the
//!   offending reading or alert is rejected with a reason and the rest goes
//!   through.
//! - [`FailureClass::Contention`]: another worker holds what we need right
//!   now (an alert claim); not a failure of any dependency.
//!
//! Only error codes known to mean "this request's content is invalid" are
//! permanent; anything unknown is treated as transient, so an error we do
//! not recognise costs time, never data.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// How a failure should be handled; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    Transient,
    Throttled,
    Permanent,
    Contention,
}

impl FailureClass {
    /// Whether the same call may succeed if made again later.
    pub fn is_retryable(self) -> bool {
        matches!(self, FailureClass::Transient | FailureClass::Throttled)
    }
}

/// Errors that know their [`FailureClass`].
pub trait Classify {
    fn class(&self) -> FailureClass;
}

/// An error a held step can meet: its class and the dependency it blames.
/// Each stage's error says which of its failures are an outage of which
/// dependency, beside its [`Classify`] implementation; the retry loop
/// ([`crate::retry::hold`]) only reads the answer.
pub trait StepError: Classify + std::fmt::Display {
    fn dependency(&self) -> Dependency;

    /// For contention: when the blocking claim ends, if known.
    fn retry_after(&self) -> Option<std::time::Duration> {
        None
    }
}

/// The AWS service a piece of work depends on, as named in metrics
/// (`reason` labels), logs and `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dependency {
    S3,
    DynamoDb,
    Sns,
    Inference,
    Sqs,
}

impl Dependency {
    pub fn as_str(self) -> &'static str {
        match self {
            Dependency::S3 => "s3",
            Dependency::DynamoDb => "dynamodb",
            Dependency::Sns => "sns",
            Dependency::Inference => "inference",
            Dependency::Sqs => "sqs",
        }
    }
}

/// Error codes by which AWS services ask the caller to slow down.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "RequestThrottled",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "BandwidthLimitExceeded",
    "SlowDown",
    "PriorRequestNotComplete",
    "TransactionInProgressException",
    "KMSThrottlingException",
];

/// Error codes by which a service refuses the content of one request:
/// sending the same request again can never succeed.
const INVALID_INPUT_CODES: &[&str] = &[
    // DynamoDB: an item too large, a number out of range, an empty key...
    "ValidationException",
    // SNS: a message or attribute it will not take.
    "InvalidParameter",
    "InvalidParameterValue",
    "InvalidParameterException",
    "InvalidParameterValueException",
    // SageMaker runtime: the model or container refused this payload.
    "ModelError",
    "ValidationError",
];

/// Classifies an error returned by any AWS SDK client (they all share the
/// smithy `SdkError` type).
pub fn classify_sdk<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> FailureClass {
    match error {
        // The request could not even be built from this input.
        SdkError::ConstructionFailure(_) => FailureClass::Permanent,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            FailureClass::Transient
        }
        SdkError::ServiceError(service) => {
            classify_response(service.err().code(), service.raw().status().as_u16())
        }
        _ => FailureClass::Transient,
    }
}

/// Classifies an error response by its code and HTTP status.
pub fn classify_response(code: Option<&str>, status: u16) -> FailureClass {
    match code {
        Some(code) if THROTTLING_CODES.contains(&code) => FailureClass::Throttled,
        _ if status == 429 => FailureClass::Throttled,
        _ if status >= 500 => FailureClass::Transient,
        Some(code) if INVALID_INPUT_CODES.contains(&code) => FailureClass::Permanent,
        _ => FailureClass::Transient,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemError;

    fn service_error(code: &str, status: u16) -> SdkError<BatchWriteItemError, HttpResponse> {
        let err = BatchWriteItemError::generic(ErrorMetadata::builder().code(code).build());
        let raw = HttpResponse::new(status.try_into().unwrap(), "".into());
        SdkError::service_error(err, raw)
    }

    #[test]
    fn codes_and_statuses() {
        use FailureClass::*;
        assert_eq!(
            classify_sdk(&service_error("ValidationException", 400)),
            Permanent
        );
        assert_eq!(
            classify_sdk(&service_error(
                "ProvisionedThroughputExceededException",
                400
            )),
            Throttled
        );
        assert_eq!(
            classify_sdk(&service_error("InternalServerError", 500)),
            Transient
        );
        assert_eq!(classify_sdk(&service_error("Whatever", 429)), Throttled);
        // Access and missing resources cost time, never data.
        assert_eq!(
            classify_sdk(&service_error("AccessDeniedException", 400)),
            Transient
        );
        assert_eq!(
            classify_sdk(&service_error("ResourceNotFoundException", 400)),
            Transient
        );
        assert_eq!(
            classify_sdk(&service_error("SomethingNew", 400)),
            Transient,
            "an unknown code is never a reason to drop data"
        );
        let timeout: SdkError<BatchWriteItemError, HttpResponse> =
            SdkError::timeout_error("too slow");
        assert_eq!(classify_sdk(&timeout), Transient);
        assert!(Transient.is_retryable() && Throttled.is_retryable());
        assert!(!Permanent.is_retryable() && !Contention.is_retryable());
    }
}
