# Alert topic (the worker publishes) and ops topic (CloudWatch alarms publish). Both KMS-encrypted.

resource "aws_sns_topic" "alerts" {
  name              = local.topic_name
  kms_master_key_id = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_sns_topic_subscription" "alert_email" {
  count     = var.alert_email != null ? 1 : 0
  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = var.alert_email

  # Example: deliver only alerts for some vehicles. The worker sets the `device_id`
  # message attribute on every alert.
  filter_policy_scope = length(var.alert_email_device_filter) > 0 ? "MessageAttributes" : null
  filter_policy       = length(var.alert_email_device_filter) > 0 ? jsonencode({ device_id = var.alert_email_device_filter }) : null
}

resource "aws_sns_topic" "ops" {
  name              = local.ops_topic_name
  kms_master_key_id = aws_kms_key.this.arn
  tags              = local.tags
}

data "aws_iam_policy_document" "ops_topic" {
  statement {
    sid     = "CloudWatchAlarms"
    effect  = "Allow"
    actions = ["sns:Publish"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    resources = [aws_sns_topic.ops.arn]
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_sns_topic_policy" "ops" {
  arn    = aws_sns_topic.ops.arn
  policy = data.aws_iam_policy_document.ops_topic.json
}

resource "aws_sns_topic_subscription" "ops_email" {
  count     = local.ops_email != null ? 1 : 0
  topic_arn = aws_sns_topic.ops.arn
  protocol  = "email"
  endpoint  = local.ops_email
}
