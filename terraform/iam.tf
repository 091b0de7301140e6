# Task execution role (ECS agent: pull image, write logs) and task role (the worker itself).

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# ---------------------------------------------------------------- execution role
resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "execution" {
  #checkov:skip=CKV_AWS_356:ecr:GetAuthorizationToken does not support resource-level permissions.
  #checkov:skip=CKV_AWS_111:ecr:GetAuthorizationToken does not support resource-level permissions; all other statements name their resources.
  statement {
    sid       = "WriteWorkerLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.worker.arn}:log-stream:*"]
  }

  dynamic "statement" {
    for_each = var.ecr_repository_arn != null ? [var.ecr_repository_arn] : []
    content {
      sid = "PullWorkerImage"
      actions = [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
      ]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = var.ecr_repository_arn != null ? [1] : []
    content {
      sid       = "EcrAuth"
      actions   = ["ecr:GetAuthorizationToken"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# ---------------------------------------------------------------- task role
resource "aws_iam_role" "task" {
  name               = "${var.name}-worker"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = local.tags
}

locals {
  sagemaker_endpoint_arn = var.sagemaker_enabled ? aws_sagemaker_endpoint.this[0].arn : ""

  # policies/worker-policy.json is the worker's permissions, inside the module so
  # the module works wherever it is copied; deploy/iam/worker-policy.json is the
  # same file for deployments without Terraform (tests/infra keeps them equal).
  # The SageMaker statement is dropped when no endpoint is used.
  worker_policy_document = jsondecode(templatefile("${path.module}/policies/worker-policy.json", {
    queue_arn         = aws_sqs_queue.telemetry.arn
    bucket_arn        = aws_s3_bucket.telemetry.arn
    quarantine_prefix = var.quarantine_prefix
    table_arn         = aws_dynamodb_table.readings.arn
    alarm_table_arn   = aws_dynamodb_table.alarms.arn
    topic_arn         = aws_sns_topic.alerts.arn
    endpoint_arn      = local.sagemaker_endpoint_arn
    kms_key_arn       = aws_kms_key.this.arn
  }))

  worker_policy = jsonencode(merge(local.worker_policy_document, {
    Statement = [
      for s in local.worker_policy_document.Statement : s
      if s.Sid != "InvokeMaintenanceModel" || local.sagemaker_endpoint_arn != ""
    ]
  }))
}

resource "aws_iam_role_policy" "task" {
  name   = "worker"
  role   = aws_iam_role.task.id
  policy = local.worker_policy
}
