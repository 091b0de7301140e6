# Telemetry bucket: vehicles upload here; every new object under the prefix notifies the queue.

resource "aws_s3_bucket" "telemetry" {
  #checkov:skip=CKV_AWS_18:Server access logging needs a separate log bucket the user owns; enable it there (CloudTrail data events are the alternative).
  #checkov:skip=CKV_AWS_144:Cross-region replication is a disaster-recovery choice outside this module; raw telemetry can be re-uploaded.
  bucket        = local.bucket_name
  force_destroy = var.bucket_force_destroy
  tags          = local.tags
}

resource "aws_s3_bucket_ownership_controls" "telemetry" {
  bucket = aws_s3_bucket.telemetry.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "telemetry" {
  bucket                  = aws_s3_bucket.telemetry.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "telemetry" {
  bucket = aws_s3_bucket.telemetry.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "telemetry" {
  bucket = aws_s3_bucket.telemetry.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "telemetry" {
  bucket = aws_s3_bucket.telemetry.id

  rule {
    id     = "raw-to-colder-storage"
    status = "Enabled"
    filter {
      prefix = var.notification_filter_prefix
    }
    transition {
      days          = var.raw_transition_days
      storage_class = var.raw_transition_storage_class
    }
  }

  rule {
    id     = "housekeeping"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.telemetry]
}

data "aws_iam_policy_document" "bucket" {
  # Deny statements only; "s3:*" in a Deny restricts, it grants nothing.
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.telemetry.arn,
      "${aws_s3_bucket.telemetry.arn}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "DenyOutdatedTLS"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.telemetry.arn, "${aws_s3_bucket.telemetry.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }
}

resource "aws_s3_bucket_policy" "telemetry" {
  bucket = aws_s3_bucket.telemetry.id
  policy = data.aws_iam_policy_document.bucket.json

  depends_on = [aws_s3_bucket_public_access_block.telemetry]
}

resource "aws_s3_bucket_notification" "telemetry" {
  bucket = aws_s3_bucket.telemetry.id

  queue {
    id            = "fleetwatch-telemetry"
    queue_arn     = aws_sqs_queue.telemetry.arn
    events        = ["s3:ObjectCreated:*"]
    filter_prefix = var.notification_filter_prefix != "" ? var.notification_filter_prefix : null
    filter_suffix = var.notification_filter_suffix != "" ? var.notification_filter_suffix : null
  }

  # S3 test-sends to the queue when the notification is created: the policy must exist first.
  depends_on = [aws_sqs_queue_policy.telemetry]
}
