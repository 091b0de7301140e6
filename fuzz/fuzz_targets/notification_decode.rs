//! `notification::decode` on arbitrary SQS bodies: never panics; objects
//! have non-empty bucket and key; ignore details are short, escaped log
//! text; and an S3/EventBridge body wrapped in an SNS envelope decodes to
//! the same objects.
#![no_main]

mod common;

use fleetwatch::notification::{IgnoreReason, Notification, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    let decoded = decode(body);
    match &decoded {
        Notification::Objects(objects) => {
            assert!(!objects.is_empty(), "Objects is never empty");
            for object in objects {
                assert!(!object.bucket.is_empty(), "empty bucket: {object:?}");
                assert!(!object.key.is_empty(), "empty key: {object:?}");
                if let Some(version) = &object.version_id {
                    assert!(!version.is_empty(), "empty version_id: {object:?}");
                }
            }
        }
        Notification::Ignore { reason, detail } => {
            assert!(IgnoreReason::ALL.contains(reason));
            common::check_detail("ignore detail", detail);
        }
    }
    // SNS unwraps exactly one level, so a body that is not itself an SNS
    // envelope must mean the same thing inside one.
    if let Notification::Objects(objects) = &decoded
        && !is_sns_envelope(body)
    {
        let envelope = serde_json::json!({
            "Type": "Notification",
            "MessageId": "m",
            "TopicArn": "arn:aws:sns:eu-west-1:111122223333:fleet",
            "Message": body,
        });
        let wrapped = decode(&envelope.to_string());
        assert_eq!(
            wrapped,
            Notification::Objects(objects.clone()),
            "SNS-wrapped body decodes differently"
        );
    }
});

/// What `decode` would treat as an SNS envelope: a JSON object without
/// `Records` whose `Type` is `"Notification"`.
fn is_sns_envelope(body: &str) -> bool {
    let Ok(serde_json::Value::Object(object)) = serde_json::from_str(body) else {
        return false;
    };
    !object.contains_key("Records")
        && object.get("Type").and_then(serde_json::Value::as_str) == Some("Notification")
}
