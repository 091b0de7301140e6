# ---------------------------------------------------------------- naming
variable "name" {
  description = "Name prefix for every resource (cluster, service, queue, table, topic, roles)."
  type        = string
  default     = "fleetwatch"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name must be 2-31 characters of lowercase letters, digits and dashes."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------- storage
variable "bucket_name" {
  description = "Telemetry bucket name. Default: <name>-telemetry-<account id>."
  type        = string
  default     = null
}

variable "bucket_force_destroy" {
  description = "Allow terraform destroy to delete a non-empty bucket (keep false in production)."
  type        = bool
  default     = false
}

variable "notification_filter_prefix" {
  description = "Only objects under this key prefix notify the queue (\"\" = all). Keep it disjoint from quarantine_prefix."
  type        = string
  default     = "incoming/"
}

variable "notification_filter_suffix" {
  description = "Only objects with this key suffix notify the queue (\"\" = all), e.g. \".txt\" or \".gz\"."
  type        = string
  default     = ""
}

variable "quarantine_prefix" {
  description = "Key prefix the worker copies unreadable objects to (FLEETWATCH_QUARANTINE_PREFIX). The worker may only PutObject here."
  type        = string
  default     = "quarantine/"
}

variable "raw_transition_days" {
  description = "Days after which raw telemetry objects move to raw_transition_storage_class."
  type        = number
  default     = 30
}

variable "raw_transition_storage_class" {
  description = "Colder storage class for raw telemetry (STANDARD_IA, INTELLIGENT_TIERING, GLACIER_IR, GLACIER, DEEP_ARCHIVE)."
  type        = string
  default     = "GLACIER_IR"
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which overwritten/deleted object versions are removed."
  type        = number
  default     = 90
}

variable "table_name" {
  description = "DynamoDB table name. Default: <name>-readings."
  type        = string
  default     = null
}

variable "table_ttl_attribute" {
  description = "Name of a Number attribute holding an epoch-seconds expiry; \"\" disables TTL. The worker's alert-ledger items carry expires_at (readings carry none and never expire)."
  type        = string
  default     = "expires_at"
}

variable "deletion_protection" {
  description = "DynamoDB deletion protection."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------- queue
variable "visibility_timeout_seconds" {
  description = "SQS visibility timeout. Must exceed the worker's visibility heartbeat interval (the worker extends it while an object is in progress)."
  type        = number
  default     = 120

  validation {
    condition     = var.visibility_timeout_seconds >= 60 && var.visibility_timeout_seconds <= 43200
    error_message = "visibility_timeout_seconds must be between 60 and 43200."
  }
}

variable "max_receive_count" {
  description = "Receives before a message moves to the dead-letter queue."
  type        = number
  default     = 5
}

variable "message_retention_seconds" {
  description = "Retention on the main queue (the DLQ keeps messages 14 days)."
  type        = number
  default     = 345600
}

# ---------------------------------------------------------------- alerts
variable "alert_email" {
  description = "Email address subscribed to the alert topic (must confirm the subscription). null = no subscription."
  type        = string
  default     = null
}

variable "alert_email_device_filter" {
  description = "If non-empty, the email subscription only receives alerts whose device_id message attribute is in this list (SNS filter policy)."
  type        = list(string)
  default     = []
}

variable "ops_email" {
  description = "Email for CloudWatch alarms (DLQ, message age, worker errors). null = alert_email."
  type        = string
  default     = null
}

variable "alert_rules" {
  description = "FLEETWATCH_ALERT_RULES."
  type        = string
  default     = "engine_temp_c > 100"
}

# ---------------------------------------------------------------- inference
variable "inference" {
  description = "FLEETWATCH_INFERENCE when no SageMaker endpoint is created: embedded or none. Forced to sagemaker when sagemaker_enabled."
  type        = string
  default     = "embedded"

  validation {
    condition     = contains(["embedded", "none"], var.inference)
    error_message = "inference must be embedded or none (set sagemaker_enabled for sagemaker)."
  }
}

variable "sagemaker_enabled" {
  description = "Create a SageMaker model, endpoint configuration and endpoint and point the worker at it."
  type        = bool
  default     = false
}

variable "sagemaker_model_data_url" {
  description = "s3://bucket/key/model.tar.gz of a trained XGBoost model (required when sagemaker_enabled)."
  type        = string
  default     = ""
}

variable "sagemaker_model_bucket_kms_key_arn" {
  description = "KMS key of the bucket holding the model artifact if it is not this module's key; null = this module's key."
  type        = string
  default     = null
}

variable "sagemaker_xgboost_version" {
  description = "Tag of the built-in SageMaker XGBoost image."
  type        = string
  default     = "1.7-1"
}

variable "sagemaker_endpoint_type" {
  description = "serverless or realtime."
  type        = string
  default     = "serverless"

  validation {
    condition     = contains(["serverless", "realtime"], var.sagemaker_endpoint_type)
    error_message = "sagemaker_endpoint_type must be serverless or realtime."
  }
}

variable "sagemaker_serverless_memory_mb" {
  description = "Serverless endpoint memory (1024-6144, 1 GB steps)."
  type        = number
  default     = 2048
}

variable "sagemaker_serverless_max_concurrency" {
  description = "Serverless endpoint max concurrency (1-200)."
  type        = number
  default     = 5
}

variable "sagemaker_instance_type" {
  description = "Instance type of a realtime endpoint."
  type        = string
  default     = "ml.m5.large"
}

variable "sagemaker_instance_count" {
  description = "Instance count of a realtime endpoint."
  type        = number
  default     = 1
}

# ---------------------------------------------------------------- ECS
variable "container_image" {
  description = "Full image reference of the fleetwatch image, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/fleetwatch:0.1.0."
  type        = string
}

variable "ecr_repository_arn" {
  description = "ARN of the ECR repository holding container_image (grants the execution role pull access). null = image pulled from elsewhere."
  type        = string
  default     = null
}

variable "vpc_id" {
  description = "VPC of the service."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets for the tasks (need a NAT gateway or VPC endpoints for S3, SQS, DynamoDB, SNS, KMS, ECR, Logs)."
  type        = list(string)
}

variable "metrics_ingress_cidrs" {
  description = "CIDRs allowed to scrape :9090 (Prometheus). Empty = no ingress."
  type        = list(string)
  default     = []
}

variable "cpu_architecture" {
  description = "Fargate CPU architecture: ARM64 (Graviton, cheaper) or X86_64. The image must be built for it."
  type        = string
  default     = "ARM64"

  validation {
    condition     = contains(["ARM64", "X86_64"], var.cpu_architecture)
    error_message = "cpu_architecture must be ARM64 or X86_64."
  }
}

variable "task_cpu" {
  description = "Fargate task CPU units."
  type        = number
  default     = 512
}

variable "task_memory" {
  description = "Fargate task memory (MiB)."
  type        = number
  default     = 1024
}

variable "worker_concurrency" {
  description = "FLEETWATCH_CONCURRENCY: objects processed at once per task."
  type        = number
  default     = 8
}

variable "shutdown_grace" {
  description = "FLEETWATCH_SHUTDOWN_GRACE (seconds); stop_timeout must be larger."
  type        = number
  default     = 25
}

variable "stop_timeout" {
  description = "ECS stopTimeout (seconds between SIGTERM and SIGKILL); at least shutdown_grace + 5, at most 120 on Fargate."
  type        = number
  default     = 30

  validation {
    condition     = var.stop_timeout >= 30 && var.stop_timeout <= 120
    error_message = "stop_timeout must be between 30 and 120."
  }
}

variable "extra_environment" {
  description = "Additional environment variables for the worker (e.g. FLEETWATCH_ALERT_COOLDOWN, FLEETWATCH_MAX_OBJECT_BYTES)."
  type        = map(string)
  default     = {}
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention of the worker log group."
  type        = number
  default     = 30
}

# ---------------------------------------------------------------- scaling
variable "min_tasks" {
  description = "Minimum running tasks (>= 1: the backlog-per-task metric divides by the running task count)."
  type        = number
  default     = 1

  validation {
    condition     = var.min_tasks >= 1
    error_message = "min_tasks must be at least 1."
  }
}

variable "max_tasks" {
  description = "Maximum running tasks."
  type        = number
  default     = 10
}

variable "backlog_per_task_target" {
  description = "Target visible messages per running task = acceptable latency (s) / time per message (s) (see docs/operations.md)."
  type        = number
  default     = 100
}

variable "scale_out_cooldown" {
  description = "Seconds between scale-out activities."
  type        = number
  default     = 60
}

variable "scale_in_cooldown" {
  description = "Seconds between scale-in activities (longer than scale-out)."
  type        = number
  default     = 300
}

# ---------------------------------------------------------------- alarms
variable "oldest_message_age_threshold_seconds" {
  description = "Alarm when the oldest visible message is older than this."
  type        = number
  default     = 900
}

variable "worker_error_threshold" {
  description = "Alarm when the worker logs at least this many ERROR lines in 5 minutes."
  type        = number
  default     = 10
}
