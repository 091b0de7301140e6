//! Decodes an SQS message body into the S3 objects to process.
//!
//! Bodies arrive in several shapes depending on how the bucket is wired to
//! the queue: a plain S3 event notification, the same wrapped in an SNS
//! envelope, an EventBridge "Object Created" event, or the `s3:TestEvent`
//! S3 sends when a notification is configured. Every body decodes to either
//! the objects to read or a reason to ignore the message; decoding never
//! fails and never panics, because a poison message must still be deleted.

use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

use crate::log_text::shown;

/// One S3 object to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// The bucket the notification names.
    pub bucket: String,
    /// The object key, URL-decoded: usable as is with `GetObject`.
    pub key: String,
    /// The version the notification announced, read exactly (a later
    /// overwrite cannot change what the message stands for).
    pub version_id: Option<String>,
}

/// Why a message holds nothing to process. `as_str()` is a stable metrics
/// label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IgnoreReason {
    /// The `s3:TestEvent` S3 sends when notifications are configured.
    TestEvent,
    /// A valid S3 event, but not about a newly created object.
    NotObjectCreated,
    /// Not a notification we understand (bad JSON, unknown shape, missing
    /// bucket or key, undecodable key).
    NotANotification,
}

impl IgnoreReason {
    pub const ALL: &'static [IgnoreReason] = &[
        IgnoreReason::TestEvent,
        IgnoreReason::NotObjectCreated,
        IgnoreReason::NotANotification,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IgnoreReason::TestEvent => "test_event",
            IgnoreReason::NotObjectCreated => "not_object_created",
            IgnoreReason::NotANotification => "not_a_notification",
        }
    }
}

impl std::fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one SQS message body means.
#[derive(Debug, Clone, PartialEq)]
pub enum Notification {
    /// Objects to read, in record order (never empty).
    Objects(Vec<ObjectRef>),
    /// Nothing to read; `detail` is short, escaped text for the log.
    Ignore {
        reason: IgnoreReason,
        detail: String,
    },
}

/// How many event names a `NotObjectCreated` detail lists.
const LISTED_EVENT_NAMES: usize = 5;

/// Decodes an SQS message body. See the module docs for the shapes.
pub fn decode(body: &str) -> Notification {
    match serde_json::from_str::<Value>(body) {
        Ok(value) => decode_value(&value, true),
        Err(error) => ignore(
            IgnoreReason::NotANotification,
            format!("body is not JSON: {error}"),
        ),
    }
}

fn decode_value(value: &Value, allow_sns: bool) -> Notification {
    let Some(object) = value.as_object() else {
        return ignore(IgnoreReason::NotANotification, "body is not a JSON object");
    };
    if let Some(records) = object.get("Records") {
        return decode_s3_event(records);
    }
    if object.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        let bucket = object.get("Bucket").and_then(Value::as_str).unwrap_or("");
        return ignore(
            IgnoreReason::TestEvent,
            format!("s3:TestEvent for bucket {}", shown(bucket)),
        );
    }
    if object.get("Type").and_then(Value::as_str) == Some("Notification") {
        return decode_sns(object, allow_sns);
    }
    if object.get("source").and_then(Value::as_str) == Some("aws.s3")
        && object.contains_key("detail-type")
    {
        return decode_eventbridge(object);
    }
    ignore(
        IgnoreReason::NotANotification,
        "JSON object without Records, Event, SNS Message or EventBridge detail",
    )
}

/// SNS wraps the S3 event as a JSON string in `Message`. Only one level is
/// unwrapped: SNS never nests envelopes, so a second one is garbage.
fn decode_sns(object: &Map<String, Value>, allow_sns: bool) -> Notification {
    if !allow_sns {
        return ignore(
            IgnoreReason::NotANotification,
            "SNS envelope nested inside an SNS envelope",
        );
    }
    let Some(message) = object.get("Message").and_then(Value::as_str) else {
        return ignore(
            IgnoreReason::NotANotification,
            "SNS envelope without a string Message",
        );
    };
    match serde_json::from_str::<Value>(message) {
        Ok(inner) => decode_value(&inner, false),
        Err(error) => ignore(
            IgnoreReason::NotANotification,
            format!("SNS Message is not JSON: {error}"),
        ),
    }
}

fn decode_s3_event(records: &Value) -> Notification {
    let Some(records) = records.as_array() else {
        return ignore(IgnoreReason::NotANotification, "Records is not an array");
    };
    if records.is_empty() {
        return ignore(IgnoreReason::NotANotification, "Records is empty");
    }
    let mut objects = Vec::new();
    let mut other_events = Vec::new();
    for (index, record) in records.iter().enumerate() {
        let Some(event_name) = record.get("eventName").and_then(Value::as_str) else {
            return ignore(
                IgnoreReason::NotANotification,
                format!("record {index} has no eventName"),
            );
        };
        if !is_object_created(event_name) {
            other_events.push(event_name);
            continue;
        }
        let s3 = record.get("s3");
        let bucket = s3
            .and_then(|s3| s3.get("bucket"))
            .and_then(|bucket| bucket.get("name"));
        let object = s3.and_then(|s3| s3.get("object"));
        match object_ref(bucket, object, "versionId") {
            Ok(object) => objects.push(object),
            Err(problem) => {
                return ignore(
                    IgnoreReason::NotANotification,
                    format!("record {index}: {problem}"),
                );
            }
        }
    }
    if objects.is_empty() {
        let mut names: Vec<String> = other_events
            .iter()
            .take(LISTED_EVENT_NAMES)
            .map(|name| shown(name))
            .collect();
        if other_events.len() > LISTED_EVENT_NAMES {
            names.push(format!(
                "and {} more",
                other_events.len() - LISTED_EVENT_NAMES
            ));
        }
        return ignore(
            IgnoreReason::NotObjectCreated,
            format!("event names: {}", names.join(", ")),
        );
    }
    Notification::Objects(objects)
}

/// AWS sends `ObjectCreated:Put`; the `s3:` prefixed form is what
/// S3-compatible stores (MinIO, Ceph) send, accepted so local setups work.
fn is_object_created(event_name: &str) -> bool {
    let name = event_name.strip_prefix("s3:").unwrap_or(event_name);
    name.starts_with("ObjectCreated:")
}

/// EventBridge delivers S3 events with `detail-type` naming the event.
///
/// Key encoding: the S3 user guide's "EventBridge event message structure"
/// page (docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html) only
/// shows `"key": "example-key"` and does not say either way. AWS's own
/// Powertools for Lambda (Python) decodes `detail.object.key` with
/// `unquote_plus` (`S3EventBridgeNotificationObject.key`), and OpenSearch
/// Data Prepper's `S3EventBridgeNotification` uses `SdkHttpUtils.urlDecode`,
/// i.e. both treat it as form-encoded like the classic notification. We do
/// the same. The risk if it were ever sent raw is limited to keys holding a
/// literal `+` or `%XX`, which AWS already lists as characters to avoid.
fn decode_eventbridge(object: &Map<String, Value>) -> Notification {
    let detail_type = object
        .get("detail-type")
        .and_then(Value::as_str)
        .unwrap_or("");
    if detail_type != "Object Created" {
        return ignore(
            IgnoreReason::NotObjectCreated,
            format!("EventBridge detail-type {}", shown(detail_type)),
        );
    }
    let detail = object.get("detail");
    let bucket = detail
        .and_then(|detail| detail.get("bucket"))
        .and_then(|bucket| bucket.get("name"));
    let s3_object = detail.and_then(|detail| detail.get("object"));
    match object_ref(bucket, s3_object, "version-id") {
        Ok(object) => Notification::Objects(vec![object]),
        Err(problem) => ignore(
            IgnoreReason::NotANotification,
            format!("EventBridge event: {problem}"),
        ),
    }
}

/// Builds an [`ObjectRef`] from the bucket name and object JSON; the error
/// is a short description for the ignore detail.
fn object_ref(
    bucket: Option<&Value>,
    object: Option<&Value>,
    version_field: &str,
) -> Result<ObjectRef, String> {
    let bucket = bucket
        .and_then(Value::as_str)
        .filter(|name| !name.is_empty())
        .ok_or("missing or empty bucket name")?;
    let raw_key = object
        .and_then(|object| object.get("key"))
        .and_then(Value::as_str)
        .filter(|key| !key.is_empty())
        .ok_or("missing or empty object key")?;
    let key = decode_key(raw_key)?;
    if key.is_empty() {
        return Err("object key is empty".to_string());
    }
    // An odd version is dropped rather than failing an otherwise good
    // notification: the object is then read at its latest version.
    let version_id = object
        .and_then(|object| object.get(version_field))
        .and_then(Value::as_str)
        .filter(|version| !version.is_empty())
        .map(str::to_string);
    Ok(ObjectRef {
        bucket: bucket.to_string(),
        key,
        version_id,
    })
}

/// S3 notifications encode keys form-style: a space is `+` and everything
/// else unsafe is `%XX` (so a real `+` is `%2B`). `+` must become a space
/// BEFORE percent-decoding, or a decoded `%2B` would turn into a space.
fn decode_key(raw: &str) -> Result<String, String> {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|key| key.into_owned())
        .map_err(|_| format!("object key {} is not UTF-8 once decoded", shown(raw)))
}

fn ignore(reason: IgnoreReason, detail: impl Into<String>) -> Notification {
    Notification::Ignore {
        reason,
        detail: detail.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(event_name: &str, bucket: &str, key: &str) -> String {
        format!(
            r#"{{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"eu-west-1","eventName":"{event_name}","s3":{{"s3SchemaVersion":"1.0","bucket":{{"name":"{bucket}","arn":"arn:aws:s3:::{bucket}"}},"object":{{"key":"{key}","size":442,"eTag":"abc","versionId":"v1","sequencer":"0055"}}}}}}"#
        )
    }

    fn event(records: &[String]) -> String {
        format!(r#"{{"Records":[{}]}}"#, records.join(","))
    }

    fn objects(notification: Notification) -> Vec<ObjectRef> {
        match notification {
            Notification::Objects(objects) => objects,
            other => panic!("expected objects, got {other:?}"),
        }
    }

    fn ignored(notification: Notification) -> (IgnoreReason, String) {
        match notification {
            Notification::Ignore { reason, detail } => (reason, detail),
            other => panic!("expected ignore, got {other:?}"),
        }
    }

    fn key_of(raw: &str) -> String {
        let body = event(&[record("ObjectCreated:Put", "b", raw)]);
        objects(decode(&body)).remove(0).key
    }

    fn sns(message: &str) -> String {
        serde_json::json!({
            "Type": "Notification",
            "MessageId": "m-1",
            "TopicArn": "arn:aws:sns:eu-west-1:123456789012:t",
            "Subject": "Amazon S3 Notification",
            "Message": message,
            "Timestamp": "2025-11-15T10:00:00.000Z",
        })
        .to_string()
    }

    #[test]
    fn plain_s3_event() {
        let body = event(&[record(
            "ObjectCreated:Put",
            "fleet",
            "fleet+data%2F2025.txt",
        )]);
        assert_eq!(
            objects(decode(&body)),
            vec![ObjectRef {
                bucket: "fleet".into(),
                key: "fleet data/2025.txt".into(),
                version_id: Some("v1".into()),
            }]
        );
    }

    #[test]
    fn odd_size_and_optional_version() {
        let body = r#"{"Records":[{"eventName":"ObjectCreated:CompleteMultipartUpload","s3":{"bucket":{"name":"b"},"object":{"key":"k","size":-1,"versionId":null}}}]}"#;
        let object = objects(decode(body)).remove(0);
        assert_eq!(object.version_id, None);
    }

    #[test]
    fn multiple_records() {
        let body = event(&[
            record("ObjectCreated:Put", "b", "a.txt"),
            record("ObjectCreated:Copy", "c", "b.txt"),
        ]);
        let found = objects(decode(&body));
        assert_eq!(found.len(), 2);
        assert_eq!(
            (found[0].bucket.as_str(), found[0].key.as_str()),
            ("b", "a.txt")
        );
        assert_eq!(
            (found[1].bucket.as_str(), found[1].key.as_str()),
            ("c", "b.txt")
        );
    }

    #[test]
    fn mixed_created_and_removed() {
        let body = event(&[
            record("ObjectRemoved:Delete", "b", "gone.txt"),
            record("ObjectCreated:Post", "b", "new.txt"),
        ]);
        let found = objects(decode(&body));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].key, "new.txt");
    }

    #[test]
    fn only_removed_is_not_object_created() {
        let body = event(&[
            record("ObjectRemoved:Delete", "b", "x"),
            record("ObjectRestore:Completed", "b", "y"),
        ]);
        let (reason, detail) = ignored(decode(&body));
        assert_eq!(reason, IgnoreReason::NotObjectCreated);
        assert!(detail.contains("ObjectRemoved:Delete"), "{detail}");
        assert!(detail.contains("ObjectRestore:Completed"), "{detail}");
    }

    #[test]
    fn s3_prefixed_event_names() {
        let body = event(&[record("s3:ObjectCreated:Put", "b", "k")]);
        assert_eq!(objects(decode(&body)).len(), 1);
    }

    #[test]
    fn url_encoded_keys() {
        assert_eq!(key_of("my+file.txt"), "my file.txt");
        assert_eq!(key_of("c%2B%2B+notes.txt"), "c++ notes.txt");
        assert_eq!(key_of("a%2Fb%2Fc.csv"), "a/b/c.csv");
        assert_eq!(key_of("dir/plain.txt"), "dir/plain.txt");
        assert_eq!(key_of("v%C3%A9hicule+%F0%9F%9A%97.txt"), "véhicule 🚗.txt");
        assert_eq!(key_of("100%25.txt"), "100%.txt");
        // An invalid escape is kept literally, as S3 would never emit one.
        assert_eq!(key_of("bad%zz"), "bad%zz");
        assert_eq!(key_of("%3D%3A%2C"), "=:,");
    }

    #[test]
    fn key_that_is_not_utf8() {
        let body = event(&[record("ObjectCreated:Put", "b", "bad%FF%FE")]);
        let (reason, detail) = ignored(decode(&body));
        assert_eq!(reason, IgnoreReason::NotANotification);
        assert!(detail.contains("UTF-8"), "{detail}");
    }

    #[test]
    fn missing_or_empty_bucket_or_key() {
        for body in [
            r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{},"object":{"key":"k"}}}]}"#,
            r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{}}}]}"#,
            r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":""},"object":{"key":"k"}}}]}"#,
            r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":""}}}]}"#,
            r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":7}}}]}"#,
            r#"{"Records":[{"eventName":"ObjectCreated:Put"}]}"#,
            r#"{"Records":[]}"#,
            r#"{"Records":{}}"#,
        ] {
            let (reason, _) = ignored(decode(body));
            assert_eq!(reason, IgnoreReason::NotANotification, "{body}");
        }
        // One bad created record spoils the message, even next to good ones.
        let body = event(&[
            record("ObjectCreated:Put", "b", "ok"),
            record("ObjectCreated:Put", "", "k"),
        ]);
        assert_eq!(ignored(decode(&body)).0, IgnoreReason::NotANotification);
    }

    #[test]
    fn test_event() {
        let body = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2025-11-15T10:00:00.000Z","Bucket":"fleet","RequestId":"R","HostId":"H"}"#;
        let (reason, detail) = ignored(decode(body));
        assert_eq!(reason, IgnoreReason::TestEvent);
        assert!(detail.contains("fleet"));
    }

    #[test]
    fn sns_envelope() {
        let inner = event(&[record("ObjectCreated:Put", "b", "x+y.txt")]);
        let found = objects(decode(&sns(&inner)));
        assert_eq!(found[0].key, "x y.txt");
    }

    #[test]
    fn sns_wrapped_test_event() {
        let inner = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"}"#;
        assert_eq!(ignored(decode(&sns(inner))).0, IgnoreReason::TestEvent);
    }

    #[test]
    fn sns_garbage() {
        for message in ["not json", "[]", r#"{"hello":1}"#] {
            assert_eq!(
                ignored(decode(&sns(message))).0,
                IgnoreReason::NotANotification,
                "{message}"
            );
        }
        // Only one level of envelope is unwrapped.
        let inner = event(&[record("ObjectCreated:Put", "b", "k")]);
        let twice = sns(&sns(&inner));
        assert_eq!(ignored(decode(&twice)).0, IgnoreReason::NotANotification);
        let no_message = r#"{"Type":"Notification","Message":{"Records":[]}}"#;
        assert_eq!(
            ignored(decode(no_message)).0,
            IgnoreReason::NotANotification
        );
    }

    fn eventbridge(detail_type: &str, key: &str) -> String {
        format!(
            r#"{{"version":"0","id":"17793124","detail-type":"{detail_type}","source":"aws.s3","account":"111122223333","time":"2021-11-12T00:00:00Z","region":"ca-central-1","resources":["arn:aws:s3:::b"],"detail":{{"version":"0","bucket":{{"name":"b"}},"object":{{"key":"{key}","size":5,"etag":"e","version-id":"IYV3p45","sequencer":"617"}},"request-id":"N4N7","requester":"123456789012","reason":"PutObject"}}}}"#
        )
    }

    #[test]
    fn eventbridge_object_created() {
        let found = objects(decode(&eventbridge(
            "Object Created",
            "fleet+data%2F2025.txt",
        )));
        assert_eq!(
            found,
            vec![ObjectRef {
                bucket: "b".into(),
                key: "fleet data/2025.txt".into(),
                version_id: Some("IYV3p45".into()),
            }]
        );
    }

    #[test]
    fn eventbridge_other_detail_types() {
        let (reason, detail) = ignored(decode(&eventbridge("Object Deleted", "k")));
        assert_eq!(reason, IgnoreReason::NotObjectCreated);
        assert!(detail.contains("Object Deleted"));
        let missing = r#"{"detail-type":"Object Created","source":"aws.s3","detail":{"bucket":{"name":"b"}}}"#;
        assert_eq!(ignored(decode(missing)).0, IgnoreReason::NotANotification);
    }

    #[test]
    fn garbage() {
        for body in [
            "",
            "   ",
            "not json",
            "{",
            "null",
            "42",
            r#""Records""#,
            "[]",
            "{}",
            r#"{"Event":"s3:SomethingElse"}"#,
            r#"{"detail-type":"Object Created","source":"aws.ec2","detail":{}}"#,
            "\u{feff}{}",
            "{\"Records\":[\u{0}]}",
        ] {
            assert_eq!(
                ignored(decode(body)).0,
                IgnoreReason::NotANotification,
                "{body:?}"
            );
        }
    }

    #[test]
    fn nested_garbage() {
        for body in [
            r#"{"Records":[1,"x",null]}"#,
            r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":"nope"}]}"#,
            r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":["b"],"object":{"key":"k"}}}]}"#,
            r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":{"x":1}},"object":{"key":"k"}}}]}"#,
        ] {
            assert_eq!(
                ignored(decode(body)).0,
                IgnoreReason::NotANotification,
                "{body}"
            );
        }
        // Deeply nested JSON hits serde_json's recursion limit, not the stack.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(ignored(decode(&deep)).0, IgnoreReason::NotANotification);
    }

    #[test]
    fn labels() {
        let labels: Vec<&str> = IgnoreReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            labels,
            ["test_event", "not_object_created", "not_a_notification"]
        );
    }

    #[test]
    fn details_are_escaped_and_short() {
        let long_name = format!("Evil\n{}", "x".repeat(200));
        let body = event(&[record(&long_name.replace('\n', "\\n"), "b", "k")]);
        let (_, detail) = ignored(decode(&body));
        assert!(!detail.contains('\n'));
        assert!(detail.len() < 200, "{detail}");
    }

    #[test]
    fn random_bodies_never_panic() {
        const FRAGMENTS: &[&str] = &[
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            "\"Records\"",
            "\"eventName\"",
            "\"ObjectCreated:Put\"",
            "\"s3\"",
            "\"bucket\"",
            "\"name\"",
            "\"object\"",
            "\"key\"",
            "\"a%FF+b\"",
            "\"Type\"",
            "\"Notification\"",
            "\"Message\"",
            "\"detail-type\"",
            "\"Object Created\"",
            "\"source\"",
            "\"aws.s3\"",
            "\"detail\"",
            "1",
            "null",
            "\"size\"",
            "-1",
            "\"\"",
        ];
        for body in crate::test_input::fragment_runs(FRAGMENTS, 40, 20_000, 0x2545_f491_4f6c_dd1d) {
            let _ = decode(&body);
            let _ = decode(&sns(&body));
        }
    }
}
