//! What the emulator cannot produce, with `aws-smithy-mocks`: DynamoDB
//! answering `UnprocessedItems` (retried with backoff until written, or
//! reported after the attempts run out) and throttling errors.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::batch_write_item::{BatchWriteItemError, BatchWriteItemOutput};
use aws_sdk_dynamodb::types::error::ProvisionedThroughputExceededException;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use fleetwatch::storage::{ReadingStore, StoreError};

const TABLE: &str = "readings";

fn items(n: usize) -> Vec<HashMap<String, AttributeValue>> {
    (0..n)
        .map(|i| {
            HashMap::from([
                ("device_id".to_owned(), AttributeValue::S("V1".into())),
                (
                    "timestamp".to_owned(),
                    AttributeValue::S(format!("2025-10-19T22:{:02}:00.000Z", i % 60)),
                ),
            ])
        })
        .collect()
}

fn unprocessed(n: usize) -> BatchWriteItemOutput {
    let requests = items(n)
        .into_iter()
        .map(|item| {
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                .build()
        })
        .collect();
    BatchWriteItemOutput::builder()
        .unprocessed_items(TABLE, requests)
        .build()
}

#[tokio::test(start_paused = true)]
async fn unprocessed_items_are_retried_until_written() {
    let partial = mock!(aws_sdk_dynamodb::Client::batch_write_item).then_output(|| unprocessed(5));
    let rest = mock!(aws_sdk_dynamodb::Client::batch_write_item)
        .match_requests(|r| {
            r.request_items()
                .and_then(|i| i.get(TABLE))
                .is_some_and(|w| w.len() == 5)
        })
        .then_output(|| BatchWriteItemOutput::builder().build());
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&partial, &rest]);
    let store = ReadingStore::new(client, TABLE.into(), 1);
    store.write(&items(20)).await.unwrap();
    assert_eq!(partial.num_calls(), 1);
    assert_eq!(
        rest.num_calls(),
        1,
        "only the unprocessed items are sent again"
    );
}

#[tokio::test(start_paused = true)]
async fn items_that_stay_unprocessed_fail_the_write() {
    let stuck = mock!(aws_sdk_dynamodb::Client::batch_write_item).then_output(|| unprocessed(3));
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&stuck]);
    let store = ReadingStore::new(client, TABLE.into(), 1);
    match store.write(&items(3)).await {
        Err(StoreError::Unprocessed { count: 3, .. }) => {}
        other => panic!("expected Unprocessed, got {other:?}"),
    }
    assert_eq!(stuck.num_calls(), 8, "a bounded number of attempts");
}

#[tokio::test(start_paused = true)]
async fn throttling_fails_the_write_so_the_message_is_retried() {
    let throttled = mock!(aws_sdk_dynamodb::Client::batch_write_item).then_error(|| {
        BatchWriteItemError::ProvisionedThroughputExceededException(
            ProvisionedThroughputExceededException::builder()
                .message("slow down")
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&throttled]);
    let store = ReadingStore::new(client, TABLE.into(), 2);
    let err = store.write(&items(30)).await.unwrap_err();
    assert!(matches!(err, StoreError::Call { .. }), "{err}");
    assert!(err.to_string().contains("slow down"), "{err}");
}
