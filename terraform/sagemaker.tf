# Optional: SageMaker endpoint serving a trained XGBoost model with the built-in image.
# The worker calls it only when FLEETWATCH_INFERENCE=sagemaker (set automatically below).

locals {
  sagemaker_count = var.sagemaker_enabled ? 1 : 0
  sagemaker_name  = "${var.name}-maintenance"
  # SageMaker appends a 26-character unique suffix to a name_prefix and allows
  # 63 characters in all, so the prefix is cut to 37.
  sagemaker_config_prefix = "${substr(local.sagemaker_name, 0, 36)}-"
  sagemaker_model_key_arn = coalesce(var.sagemaker_model_bucket_kms_key_arn, aws_kms_key.this.arn)
  # s3://bucket/path/model.tar.gz -> arn:aws:s3:::bucket/path/model.tar.gz
  sagemaker_model_object_arn = "arn:${local.partition}:s3:::${trimprefix(var.sagemaker_model_data_url, "s3://")}"
}

data "aws_sagemaker_prebuilt_ecr_image" "xgboost" {
  count           = local.sagemaker_count
  repository_name = "sagemaker-xgboost"
  image_tag       = var.sagemaker_xgboost_version
}

data "aws_iam_policy_document" "sagemaker_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["sagemaker.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "sagemaker" {
  count              = local.sagemaker_count
  name               = "${var.name}-sagemaker"
  assume_role_policy = data.aws_iam_policy_document.sagemaker_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "sagemaker" {
  count = local.sagemaker_count

  statement {
    sid       = "ReadModelArtifact"
    actions   = ["s3:GetObject"]
    resources = [local.sagemaker_model_object_arn]
  }

  statement {
    sid       = "DecryptModelArtifact"
    actions   = ["kms:Decrypt"]
    resources = [local.sagemaker_model_key_arn]
  }

  statement {
    sid = "PullBuiltInImage"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
    ]
    resources = ["arn:${local.partition}:ecr:${local.region}:${data.aws_sagemaker_prebuilt_ecr_image.xgboost[0].registry_id}:repository/sagemaker-xgboost"]
  }

  statement {
    #checkov:skip=CKV_AWS_356:ecr:GetAuthorizationToken does not support resource-level permissions.
    sid       = "EcrAuth"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "EndpointLogs"
    actions = [
      "logs:CreateLogGroup",
      "logs:CreateLogStream",
      "logs:DescribeLogStreams",
      "logs:PutLogEvents",
    ]
    resources = [
      "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/sagemaker/Endpoints/${local.sagemaker_name}",
      "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/sagemaker/Endpoints/${local.sagemaker_name}:log-stream:*",
    ]
  }

  statement {
    #checkov:skip=CKV_AWS_356:cloudwatch:PutMetricData does not support resource-level permissions; restricted to the SageMaker namespace by condition.
    sid       = "EndpointMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]
    condition {
      test     = "StringLike"
      variable = "cloudwatch:namespace"
      values   = ["/aws/sagemaker/*", "AWS/SageMaker"]
    }
  }
}

resource "aws_iam_role_policy" "sagemaker" {
  count  = local.sagemaker_count
  name   = "model-hosting"
  role   = aws_iam_role.sagemaker[0].id
  policy = data.aws_iam_policy_document.sagemaker[0].json
}

resource "aws_sagemaker_model" "this" {
  count              = local.sagemaker_count
  name               = local.sagemaker_name
  execution_role_arn = aws_iam_role.sagemaker[0].arn
  # The built-in XGBoost container needs no network at inference time.
  enable_network_isolation = true

  primary_container {
    image          = data.aws_sagemaker_prebuilt_ecr_image.xgboost[0].registry_path
    model_data_url = var.sagemaker_model_data_url
  }

  tags = local.tags

  lifecycle {
    precondition {
      condition     = startswith(var.sagemaker_model_data_url, "s3://")
      error_message = "sagemaker_model_data_url must be an s3:// URL when sagemaker_enabled."
    }
  }

  depends_on = [aws_iam_role_policy.sagemaker]
}

resource "aws_sagemaker_endpoint_configuration" "this" {
  #checkov:skip=CKV_AWS_98:kms_key_arn is set for realtime endpoints; serverless endpoints have no storage volume and reject a KMS key.
  count = local.sagemaker_count
  # A new name per model/config change so the endpoint can switch without downtime.
  name_prefix = local.sagemaker_config_prefix
  kms_key_arn = var.sagemaker_endpoint_type == "realtime" ? aws_kms_key.this.arn : null

  production_variants {
    variant_name           = "primary"
    model_name             = aws_sagemaker_model.this[0].name
    initial_instance_count = var.sagemaker_endpoint_type == "realtime" ? var.sagemaker_instance_count : null
    instance_type          = var.sagemaker_endpoint_type == "realtime" ? var.sagemaker_instance_type : null

    dynamic "serverless_config" {
      for_each = var.sagemaker_endpoint_type == "serverless" ? [1] : []
      content {
        memory_size_in_mb = var.sagemaker_serverless_memory_mb
        max_concurrency   = var.sagemaker_serverless_max_concurrency
      }
    }
  }

  tags = local.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_sagemaker_endpoint" "this" {
  count                = local.sagemaker_count
  name                 = local.sagemaker_name
  endpoint_config_name = aws_sagemaker_endpoint_configuration.this[0].name
  tags                 = local.tags
}
