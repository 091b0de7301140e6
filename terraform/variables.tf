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

variable "alarm_table_name" {
  description = "DynamoDB table for alarms, their history and the alert ledger (FLEETWATCH_ALARM_TABLE). Default: <name>-alarms."
  type        = string
  default     = null
}

variable "alarm_auto_close" {
  description = "An open alarm with no breach for this long closes by itself with one resolved notification (FLEETWATCH_ALARM_AUTO_CLOSE)."
  type        = string
  default     = "1h"

  validation {
    condition     = can(regex("^[0-9]+(ms|s|m|h|d)$", var.alarm_auto_close))
    error_message = "alarm_auto_close must be a duration like 30m, 1h or 2d."
  }
}

variable "table_ttl_attribute" {
  description = "DynamoDB TTL attribute (a Number of epoch seconds); \"\" disables TTL. The worker writes expires_at: on alert-ledger items always (now + 30 days), on readings when reading_ttl is set."
  type        = string
  default     = "expires_at"
}

variable "reading_ttl" {
  description = "FLEETWATCH_READING_TTL: how long readings are kept, as a whole number with a unit (ms, s, m, h, d), e.g. \"400d\". Each reading then carries expires_at = its own timestamp + this, and DynamoDB deletes it after that (within a few days). null or \"\" = readings never expire."
  type        = string
  default     = null

  validation {
    condition     = var.reading_ttl == null ? true : (var.reading_ttl == "" || can(regex("^[1-9][0-9]*(ms|s|m|h|d)$", var.reading_ttl)))
    error_message = "reading_ttl must be null, \"\" or a whole positive number with a unit (ms, s, m, h, d), e.g. \"400d\"."
  }
}

variable "deletion_protection" {
  description = "DynamoDB deletion protection."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------- queue
variable "visibility_timeout_seconds" {
  description = "Visibility timeout of the queue and of every receive: also passed to the worker as FLEETWATCH_VISIBILITY_TIMEOUT, which extends it at half this interval while an object is in progress."
  type        = number
  default     = 120

  validation {
    # The worker accepts 10s..12h; SQS's ceiling is also 12 h (43200 s).
    condition     = var.visibility_timeout_seconds >= 10 && var.visibility_timeout_seconds <= 43200 && floor(var.visibility_timeout_seconds) == var.visibility_timeout_seconds
    error_message = "visibility_timeout_seconds must be a whole number of seconds from 10 to 43200 (the worker's FLEETWATCH_VISIBILITY_TIMEOUT range, 10s..12h)."
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
  description = "Full image reference of the fleetwatch image, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/fleetwatch:0.1.0. An ECR image needs ecr_repository_arn."
  type        = string

  validation {
    condition     = length(trimspace(var.container_image)) > 0
    error_message = "container_image must be an image reference such as 123456789012.dkr.ecr.eu-west-1.amazonaws.com/fleetwatch:0.1.0."
  }
}

variable "ecr_repository_arn" {
  description = "ARN of the ECR repository holding container_image (grants the execution role pull access). Required for an ECR image; null = image pulled from a public registry."
  type        = string
  default     = null

  validation {
    condition     = var.ecr_repository_arn == null ? true : can(regex("^arn:aws[a-z-]*:ecr:[a-z0-9-]+:[0-9]{12}:repository/[a-z0-9][a-z0-9._/-]*$", var.ecr_repository_arn))
    error_message = "ecr_repository_arn must be null or an ECR repository ARN, arn:aws:ecr:<region>:<account>:repository/<name>."
  }
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
  description = "Fargate task CPU units: 256, 512, 1024, 2048, 4096, 8192 or 16384. task_memory must be a size Fargate offers for it."
  type        = number
  default     = 512

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.task_cpu)
    error_message = "task_cpu must be one of the Fargate CPU sizes 256, 512, 1024, 2048, 4096, 8192 or 16384."
  }
}

variable "task_memory" {
  description = "Fargate task memory (MiB), one of the sizes Fargate pairs with task_cpu (e.g. 512 CPU: 1024-4096 in 1024 steps)."
  type        = number
  default     = 1024
}

variable "worker_concurrency" {
  description = "FLEETWATCH_CONCURRENCY: objects processed at once per task."
  type        = number
  default     = 8
}

variable "shutdown_grace" {
  description = "FLEETWATCH_SHUTDOWN_GRACE (seconds): how long in-flight messages get after SIGTERM; stop_timeout must exceed it by more than 5 s."
  type        = number
  default     = 25

  validation {
    condition     = var.shutdown_grace >= 1 && var.shutdown_grace <= 114 && floor(var.shutdown_grace) == var.shutdown_grace
    error_message = "shutdown_grace must be a whole number of seconds from 1 to 114 (stop_timeout, at most 120 on Fargate, must exceed it by more than 5)."
  }
}

variable "stop_timeout" {
  description = "ECS stopTimeout (seconds between SIGTERM and SIGKILL), at most 120 on Fargate. Must be more than shutdown_grace + 5: after the grace the worker still returns unfinished messages to the queue and exits."
  type        = number
  default     = 35

  validation {
    condition     = var.stop_timeout >= 2 && var.stop_timeout <= 120 && floor(var.stop_timeout) == var.stop_timeout
    error_message = "stop_timeout must be a whole number of seconds from 2 to 120 (the Fargate maximum)."
  }
}

variable "extra_environment" {
  description = "Additional environment variables for the worker (e.g. FLEETWATCH_ALERT_COOLDOWN, FLEETWATCH_MAX_OBJECT_BYTES). Variables the module sets itself (see the worker_environment output) are refused: use their module variables."
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
  description = "Minimum running tasks. 0 = scale to zero: no task runs while the queue is idle, and the first file after idle waits for a task to start (a few minutes, see docs/operations.md)."
  type        = number
  default     = 1

  validation {
    condition     = var.min_tasks >= 0 && floor(var.min_tasks) == var.min_tasks
    error_message = "min_tasks must be a whole number, 0 or more (0 = scale to zero)."
  }
}

variable "max_tasks" {
  description = "Maximum running tasks (at least 1 and at least min_tasks)."
  type        = number
  default     = 10

  validation {
    condition     = var.max_tasks >= 1 && floor(var.max_tasks) == var.max_tasks
    error_message = "max_tasks must be a whole number, 1 or more."
  }
}

variable "backlog_per_task_target" {
  description = "Target visible messages per running task = acceptable latency (s) / time per message (s) (see docs/operations.md)."
  type        = number
  default     = 100

  validation {
    condition     = var.backlog_per_task_target > 0
    error_message = "backlog_per_task_target must be more than 0 (messages per task)."
  }
}

variable "scale_to_zero_idle_minutes" {
  description = "With min_tasks = 0: minutes with no message waiting or in flight before the service scales to zero."
  type        = number
  default     = 15

  validation {
    # A one-minute alarm may look back at most one day.
    condition     = var.scale_to_zero_idle_minutes >= 1 && var.scale_to_zero_idle_minutes <= 1440 && floor(var.scale_to_zero_idle_minutes) == var.scale_to_zero_idle_minutes
    error_message = "scale_to_zero_idle_minutes must be a whole number of minutes from 1 to 1440."
  }
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

# ---------------------------------------------------------------- capacity and deployments
variable "capacity_provider_strategy" {
  description = "Fargate capacity providers of the service, e.g. [{ capacity_provider = \"FARGATE\", base = 1, weight = 0 }, { capacity_provider = \"FARGATE_SPOT\", weight = 1 }] for one on-demand task and the rest on Spot. FARGATE_SPOT needs cpu_architecture = \"X86_64\"."
  type = list(object({
    capacity_provider = string
    weight            = number
    base              = optional(number, 0)
  }))
  default = [{ capacity_provider = "FARGATE", weight = 1 }]

  validation {
    condition = (
      length(var.capacity_provider_strategy) > 0
      && alltrue([for s in var.capacity_provider_strategy : contains(["FARGATE", "FARGATE_SPOT"], s.capacity_provider)])
      && length(distinct([for s in var.capacity_provider_strategy : s.capacity_provider])) == length(var.capacity_provider_strategy)
    )
    error_message = "capacity_provider_strategy must list FARGATE and/or FARGATE_SPOT, each at most once."
  }

  validation {
    condition = (
      alltrue([for s in var.capacity_provider_strategy : s.weight >= 0 && s.weight <= 1000 && floor(s.weight) == s.weight])
      && alltrue([for s in var.capacity_provider_strategy : s.base >= 0 && s.base <= 100000 && floor(s.base) == s.base])
      && anytrue([for s in var.capacity_provider_strategy : s.weight > 0])
      && length([for s in var.capacity_provider_strategy : s if s.base > 0]) <= 1
    )
    error_message = "capacity_provider_strategy: each weight must be a whole number 0-1000 (at least one above 0), each base a whole number 0-100000, and at most one entry may have a base."
  }
}

variable "wait_for_steady_state" {
  description = "Make terraform apply wait until the service's deployment has finished (new tasks healthy, old ones drained) and fail if it does not."
  type        = bool
  default     = false
}

variable "deployment_alarms_enabled" {
  description = "Roll a deployment back when the worker-errors alarm (or one of deployment_alarm_names) goes into ALARM while it runs. The deployment circuit breaker, which rolls back tasks that fail to start, is always on."
  type        = bool
  default     = true
}

variable "deployment_alarm_names" {
  description = "More CloudWatch alarm names (same account and region) that roll a deployment back when deployment_alarms_enabled."
  type        = list(string)
  default     = []
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
