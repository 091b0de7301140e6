#!/usr/bin/env bash
# The compose stack's `encryption` step: creates fleetwatch's bucket, queues, table
# and topic in LocalStack, each encrypted with one customer managed KMS key as the
# Terraform module does on AWS, before `fleetwatch bootstrap` adds the rest (the
# redrive policy, the queue policy, the bucket notification). Bootstrap finds the
# existing resources and leaves their encryption alone. Every setting is read back
# at the end, so a LocalStack that ignored one stops the stack here.
#
# Runs in the LocalStack image (which ships the AWS CLI) against AWS_ENDPOINT_URL;
# safe to run again on every `docker compose up`.
set -euo pipefail

: "${AWS_ENDPOINT_URL:?AWS_ENDPOINT_URL must point at LocalStack}"
bucket=${FLEETWATCH_BUCKET:-fleetwatch-telemetry}
queue=${FLEETWATCH_QUEUE_NAME:-fleetwatch-telemetry}
table=${FLEETWATCH_TABLE:-fleetwatch-readings}
topic=${FLEETWATCH_TOPIC_NAME:-fleetwatch-alerts}
key_alias=alias/fleetwatch

awsl() { aws --endpoint-url "$AWS_ENDPOINT_URL" --output text "$@"; }
fail() { echo "encryption: $*" >&2; exit 1; }

# --- the key
key_id=$(awsl kms describe-key --key-id "$key_alias" --query KeyMetadata.KeyId 2>/dev/null || true)
if [[ -z "$key_id" || "$key_id" == None ]]; then
  key_id=$(awsl kms create-key --description "fleetwatch (compose)" --query KeyMetadata.KeyId)
  awsl kms create-alias --alias-name "$key_alias" --target-key-id "$key_id"
fi
key_arn=$(awsl kms describe-key --key-id "$key_id" --query KeyMetadata.Arn)
echo "encryption: key $key_arn ($key_alias)"

# --- bucket: SSE-KMS by default, with a bucket key (as s3.tf)
awsl s3api head-bucket --bucket "$bucket" >/dev/null 2>&1 || awsl s3api create-bucket --bucket "$bucket" >/dev/null
awsl s3api put-bucket-encryption --bucket "$bucket" --server-side-encryption-configuration \
  "{\"Rules\":[{\"ApplyServerSideEncryptionByDefault\":{\"SSEAlgorithm\":\"aws:kms\",\"KMSMasterKeyID\":\"$key_arn\"},\"BucketKeyEnabled\":true}]}"

# --- queue and dead-letter queue (as sqs.tf)
for name in "$queue-dlq" "$queue"; do
  url=$(awsl sqs get-queue-url --queue-name "$name" --query QueueUrl 2>/dev/null \
        || awsl sqs create-queue --queue-name "$name" --query QueueUrl)
  awsl sqs set-queue-attributes --queue-url "$url" \
    --attributes "KmsMasterKeyId=$key_arn,KmsDataKeyReusePeriodSeconds=300"
done

# --- table: the worker's key schema, KMS encryption and TTL on expires_at (as dynamodb.tf)
if ! awsl dynamodb describe-table --table-name "$table" >/dev/null 2>&1; then
  awsl dynamodb create-table --table-name "$table" \
    --attribute-definitions AttributeName=device_id,AttributeType=S AttributeName=timestamp,AttributeType=S \
    --key-schema AttributeName=device_id,KeyType=HASH AttributeName=timestamp,KeyType=RANGE \
    --billing-mode PAY_PER_REQUEST \
    --sse-specification "Enabled=true,SSEType=KMS,KMSMasterKeyId=$key_id" >/dev/null
  awsl dynamodb wait table-exists --table-name "$table"
fi
if [[ "$(awsl dynamodb describe-time-to-live --table-name "$table" --query TimeToLiveDescription.TimeToLiveStatus)" != ENABLED ]]; then
  awsl dynamodb update-time-to-live --table-name "$table" \
    --time-to-live-specification "Enabled=true,AttributeName=expires_at" >/dev/null
fi

# --- alert topic (as sns.tf)
topic_arn=$(awsl sns create-topic --name "$topic" --query TopicArn)
awsl sns set-topic-attributes --topic-arn "$topic_arn" --attribute-name KmsMasterKeyId --attribute-value "$key_arn"

# --- read everything back
expect_key() { # WHAT VALUE
  [[ "$2" == *"$key_id"* ]] || fail "$1 is not encrypted with $key_arn (got: ${2:-nothing})"
  echo "encryption: $1 uses the key"
}
expect_key "bucket $bucket" "$(awsl s3api get-bucket-encryption --bucket "$bucket" \
  --query 'ServerSideEncryptionConfiguration.Rules[0].ApplyServerSideEncryptionByDefault.KMSMasterKeyID')"
for name in "$queue-dlq" "$queue"; do
  url=$(awsl sqs get-queue-url --queue-name "$name" --query QueueUrl)
  expect_key "queue $name" "$(awsl sqs get-queue-attributes --queue-url "$url" \
    --attribute-names KmsMasterKeyId --query Attributes.KmsMasterKeyId)"
done
[[ "$(awsl dynamodb describe-table --table-name "$table" --query Table.SSEDescription.Status)" == ENABLED ]] \
  || fail "table $table has no server-side encryption"
expect_key "table $table" "$(awsl dynamodb describe-table --table-name "$table" --query Table.SSEDescription.KMSMasterKeyArn)"
expect_key "topic $topic" "$(awsl sns get-topic-attributes --topic-arn "$topic_arn" --query Attributes.KmsMasterKeyId)"
