# Plans of the module with the real AWS provider and no AWS account (.ci/infra runs
# them with fake credentials): the defaults, SageMaker, the largest and the smallest
# settings, and inputs that must be refused.

provider "aws" {
  region                      = "eu-west-1"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
}

# The three look-ups that would call AWS.
override_data {
  target = data.aws_caller_identity.current
  values = {
    account_id = "123456789012"
    arn        = "arn:aws:iam::123456789012:user/terraform-test"
    id         = "123456789012"
    user_id    = "AIDATERRAFORMTEST"
  }
}

override_data {
  target = data.aws_region.current
  values = {
    id   = "eu-west-1"
    name = "eu-west-1"
  }
}

override_data {
  target = data.aws_partition.current
  values = {
    id                 = "aws"
    partition          = "aws"
    dns_suffix         = "amazonaws.com"
    reverse_dns_prefix = "com.amazonaws"
  }
}

variables {
  container_image    = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/fleetwatch:0.1.0"
  ecr_repository_arn = "arn:aws:ecr:eu-west-1:123456789012:repository/fleetwatch"
  vpc_id             = "vpc-0123456789abcdef0"
  private_subnet_ids = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
  alert_email        = "fleet-ops@example.com"
}

# ------------------------------------------------------------------ valid plans

run "defaults" {
  command = plan

  assert {
    condition     = output.worker_environment["FLEETWATCH_VISIBILITY_TIMEOUT"] == "120s" && aws_sqs_queue.telemetry.visibility_timeout_seconds == 120
    error_message = "the queue's visibility timeout must reach the worker as FLEETWATCH_VISIBILITY_TIMEOUT"
  }

  assert {
    condition     = output.worker_environment["FLEETWATCH_SHUTDOWN_GRACE"] == "25s" && aws_ecs_task_definition.worker.cpu == "512"
    error_message = "default shutdown grace or task size changed"
  }

  assert {
    condition     = output.worker_environment["FLEETWATCH_READING_TTL"] == ""
    error_message = "readings must be kept forever unless reading_ttl is set"
  }

  assert {
    condition     = aws_dynamodb_table.alarms.name == "${var.name}-alarms" && aws_dynamodb_table.alarms.range_key == "record" && output.worker_environment["FLEETWATCH_ALARM_TABLE"] == aws_dynamodb_table.alarms.name && one(aws_dynamodb_table.alarms.ttl).attribute_name == "expires_at"
    error_message = "the alarm table must be <name>-alarms keyed by (device_id, record), with TTL on expires_at, and given to the worker"
  }

  assert {
    condition     = one(aws_dynamodb_table.readings.ttl).attribute_name == "expires_at" && one(aws_dynamodb_table.readings.ttl).enabled
    error_message = "TTL must be enabled on expires_at by default (the alert ledger's expiry)"
  }

  assert {
    condition     = length(aws_appautoscaling_policy.start_on_work) == 0 && length(aws_cloudwatch_metric_alarm.queue_idle) == 0 && aws_appautoscaling_target.worker.min_capacity == 1
    error_message = "scale to zero must be off with min_tasks = 1"
  }

  assert {
    condition     = one(aws_ecs_service.worker.capacity_provider_strategy).capacity_provider == "FARGATE"
    error_message = "the default capacity must be on-demand Fargate"
  }

  assert {
    condition     = one(aws_ecs_service.worker.alarms).rollback && contains(one(aws_ecs_service.worker.alarms).alarm_names, "fleetwatch-worker-errors")
    error_message = "deployments must roll back on the worker-errors alarm by default"
  }

  assert {
    condition     = one(aws_ecs_service.worker.deployment_circuit_breaker).rollback && aws_ecs_service.worker.wait_for_steady_state == false
    error_message = "circuit breaker with rollback on; not waiting for steady state by default"
  }

  assert {
    condition     = length([for s in data.aws_iam_policy_document.execution.statement : s if s.sid == "PullWorkerImage"]) == 1
    error_message = "an ECR image with ecr_repository_arn must give the execution role pull access"
  }

  assert {
    condition     = length(aws_sagemaker_endpoint.this) == 0 && output.worker_environment["FLEETWATCH_INFERENCE"] == "embedded"
    error_message = "no SageMaker endpoint by default"
  }
}

run "sagemaker_enabled" {
  command = plan

  variables {
    # The longest allowed name: SageMaker's name_prefix limit (37) used to fail
    # the plan for names over 24 characters.
    name                     = "fleetwatch-production-eu-west-1"
    sagemaker_enabled        = true
    sagemaker_model_data_url = "s3://models-bucket/fleetwatch/model.tar.gz"
  }

  assert {
    condition     = length(aws_sagemaker_endpoint_configuration.this[0].name_prefix) <= 37 && startswith(aws_sagemaker_endpoint_configuration.this[0].name_prefix, "fleetwatch-production-eu-west-1-mai")
    error_message = "the endpoint configuration's name_prefix must fit SageMaker's 37 characters"
  }

  assert {
    condition     = aws_sagemaker_endpoint.this[0].name == "fleetwatch-production-eu-west-1-maintenance" && output.worker_environment["FLEETWATCH_INFERENCE"] == "sagemaker"
    error_message = "the worker must call the endpoint"
  }
}

run "largest_settings" {
  command = plan

  variables {
    name                                 = "fleetwatch-production-eu-west-1"
    container_image                      = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/fleetwatch@sha256:0000000000000000000000000000000000000000000000000000000000000000"
    ecr_repository_arn                   = "arn:aws:ecr:eu-west-1:123456789012:repository/team/fleetwatch"
    cpu_architecture                     = "X86_64"
    task_cpu                             = 16384
    task_memory                          = 122880
    worker_concurrency                   = 256
    visibility_timeout_seconds           = 43200
    message_retention_seconds            = 1209600
    max_receive_count                    = 1000
    shutdown_grace                       = 114
    stop_timeout                         = 120
    min_tasks                            = 0
    max_tasks                            = 1000
    backlog_per_task_target              = 100000
    scale_to_zero_idle_minutes           = 1440
    scale_out_cooldown                   = 3600
    scale_in_cooldown                    = 86400
    reading_ttl                          = "3650d"
    log_retention_days                   = 3653
    sagemaker_enabled                    = true
    sagemaker_model_data_url             = "s3://models-bucket/fleetwatch/model.tar.gz"
    sagemaker_endpoint_type              = "realtime"
    sagemaker_instance_type              = "ml.c5.4xlarge"
    sagemaker_instance_count             = 4
    metrics_ingress_cidrs                = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
    alert_email_device_filter            = ["VHC001", "VHC002", "VHC003"]
    extra_environment                    = { FLEETWATCH_ALERT_COOLDOWN = "1h", FLEETWATCH_MAX_OBJECT_BYTES = "10737418240" }
    wait_for_steady_state                = true
    deployment_alarm_names               = ["team-fleetwatch-latency"]
    oldest_message_age_threshold_seconds = 86400
    capacity_provider_strategy = [
      { capacity_provider = "FARGATE", base = 100000, weight = 1 },
      { capacity_provider = "FARGATE_SPOT", weight = 1000 },
    ]
  }

  assert {
    condition     = output.worker_environment["FLEETWATCH_VISIBILITY_TIMEOUT"] == "43200s" && output.worker_environment["FLEETWATCH_READING_TTL"] == "3650d"
    error_message = "visibility timeout and reading TTL must reach the worker"
  }

  assert {
    condition     = aws_appautoscaling_target.worker.min_capacity == 0 && length(aws_appautoscaling_policy.start_on_work) == 1 && length(aws_appautoscaling_policy.idle_to_zero) == 1
    error_message = "min_tasks = 0 must create the scale-to-zero policies"
  }

  assert {
    # Capped at 10 steps; the last one is open-ended.
    condition = (
      length(aws_appautoscaling_policy.start_on_work[0].step_scaling_policy_configuration[0].step_adjustment) == 10
      && one([for s in aws_appautoscaling_policy.start_on_work[0].step_scaling_policy_configuration[0].step_adjustment : s.scaling_adjustment if s.metric_interval_upper_bound == null || s.metric_interval_upper_bound == ""]) == 10
    )
    error_message = "the start-on-work steps must cover 1..10 tasks"
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.queue_idle[0].evaluation_periods == 1440
    error_message = "the idle alarm must wait scale_to_zero_idle_minutes"
  }

  assert {
    condition     = length(aws_ecs_service.worker.capacity_provider_strategy) == 2 && length(one(aws_ecs_service.worker.alarms).alarm_names) == 2
    error_message = "Spot strategy and extra deployment alarm"
  }

  assert {
    condition     = length(aws_sagemaker_endpoint_configuration.this[0].name_prefix) <= 37 && aws_sagemaker_endpoint_configuration.this[0].production_variants[0].initial_instance_count == 4
    error_message = "realtime SageMaker endpoint with a name_prefix that fits"
  }
}

run "smallest_settings" {
  command = plan

  variables {
    name                       = "fw"
    container_image            = "ghcr.io/fleetwatch/fleetwatch:0.1.0"
    ecr_repository_arn         = null
    task_cpu                   = 256
    task_memory                = 512
    worker_concurrency         = 1
    visibility_timeout_seconds = 10
    shutdown_grace             = 1
    stop_timeout               = 7
    min_tasks                  = 0
    max_tasks                  = 1
    backlog_per_task_target    = 0.5
    scale_to_zero_idle_minutes = 1
    scale_out_cooldown         = 0
    scale_in_cooldown          = 1
    table_ttl_attribute        = ""
    reading_ttl                = ""
    quarantine_prefix          = ""
    deployment_alarms_enabled  = false
    inference                  = "none"
    log_retention_days         = 1
  }

  assert {
    condition     = output.worker_environment["FLEETWATCH_VISIBILITY_TIMEOUT"] == "10s" && aws_sqs_queue.telemetry.visibility_timeout_seconds == 10
    error_message = "the smallest visibility timeout must reach queue and worker"
  }

  assert {
    # One task at most: a single, open-ended step.
    condition     = length(aws_appautoscaling_policy.start_on_work[0].step_scaling_policy_configuration[0].step_adjustment) == 1
    error_message = "with max_tasks = 1 the start-on-work policy has one step"
  }

  assert {
    condition     = length(aws_ecs_service.worker.alarms) == 0
    error_message = "deployment_alarms_enabled = false must leave the alarms out"
  }

  assert {
    condition     = length([for s in data.aws_iam_policy_document.execution.statement : s if s.sid == "PullWorkerImage"]) == 0
    error_message = "an image outside ECR needs no pull permission"
  }
}

run "stop_timeout_just_above_grace_plus_5" {
  command = plan

  variables {
    shutdown_grace = 25
    stop_timeout   = 31
  }
}

# ------------------------------------------------------------------ refused inputs

run "refuses_min_tasks_above_max_tasks" {
  command = plan
  variables {
    min_tasks = 5
    max_tasks = 2
  }
  expect_failures = [aws_appautoscaling_target.worker]
}

run "refuses_negative_min_tasks" {
  command = plan
  variables {
    min_tasks = -1
  }
  expect_failures = [var.min_tasks]
}

run "refuses_alarm_auto_close_without_unit" {
  command = plan
  variables {
    alarm_auto_close = "60"
  }
  expect_failures = [var.alarm_auto_close]
}

run "refuses_zero_max_tasks" {
  command = plan
  variables {
    min_tasks = 0
    max_tasks = 0
  }
  expect_failures = [var.max_tasks]
}

run "refuses_unknown_fargate_cpu" {
  command = plan
  variables {
    task_cpu = 768
  }
  expect_failures = [var.task_cpu]
}

run "refuses_invalid_fargate_pair" {
  command = plan
  variables {
    task_cpu    = 256
    task_memory = 4096
  }
  expect_failures = [aws_ecs_task_definition.worker]
}

run "refuses_off_step_fargate_memory" {
  command = plan
  variables {
    task_cpu    = 8192
    task_memory = 18432 # 8192 CPU takes 4096 MiB steps
  }
  expect_failures = [aws_ecs_task_definition.worker]
}

run "refuses_stop_timeout_equal_to_grace_plus_5" {
  command = plan
  variables {
    shutdown_grace = 25
    stop_timeout   = 30
  }
  expect_failures = [aws_ecs_task_definition.worker]
}

run "refuses_stop_timeout_over_fargate_limit" {
  command = plan
  variables {
    stop_timeout = 121
  }
  expect_failures = [var.stop_timeout]
}

run "refuses_ecr_image_without_repository_arn" {
  command = plan
  variables {
    ecr_repository_arn = null
  }
  expect_failures = [aws_ecs_task_definition.worker]
}

run "refuses_repository_arn_of_another_repository" {
  command = plan
  variables {
    ecr_repository_arn = "arn:aws:ecr:eu-west-1:123456789012:repository/other"
  }
  expect_failures = [aws_ecs_task_definition.worker]
}

run "refuses_malformed_repository_arn" {
  command = plan
  variables {
    ecr_repository_arn = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/fleetwatch"
  }
  expect_failures = [var.ecr_repository_arn]
}

run "refuses_extra_environment_overriding_module_settings" {
  command = plan
  variables {
    extra_environment = { FLEETWATCH_VISIBILITY_TIMEOUT = "60s" }
  }
  expect_failures = [aws_ecs_task_definition.worker]
}

run "refuses_visibility_timeout_below_worker_minimum" {
  command = plan
  variables {
    visibility_timeout_seconds = 9
  }
  expect_failures = [var.visibility_timeout_seconds]
}

run "refuses_fargate_spot_on_arm64" {
  command = plan
  variables {
    cpu_architecture           = "ARM64"
    capacity_provider_strategy = [{ capacity_provider = "FARGATE_SPOT", weight = 1 }]
  }
  expect_failures = [aws_ecs_service.worker]
}

run "refuses_unknown_capacity_provider" {
  command = plan
  variables {
    capacity_provider_strategy = [{ capacity_provider = "EC2", weight = 1 }]
  }
  expect_failures = [var.capacity_provider_strategy]
}

run "refuses_strategy_without_weight" {
  command = plan
  variables {
    capacity_provider_strategy = [{ capacity_provider = "FARGATE", base = 1, weight = 0 }]
  }
  expect_failures = [var.capacity_provider_strategy]
}

run "refuses_reading_ttl_without_unit" {
  command = plan
  variables {
    reading_ttl = "400 days"
  }
  expect_failures = [var.reading_ttl]
}

run "refuses_reading_ttl_on_another_ttl_attribute" {
  command = plan
  variables {
    reading_ttl         = "400d"
    table_ttl_attribute = "ttl"
  }
  expect_failures = [aws_dynamodb_table.readings]
}

run "refuses_scale_in_cooldown_not_longer_than_scale_out" {
  command = plan
  variables {
    scale_out_cooldown = 300
    scale_in_cooldown  = 300
  }
  expect_failures = [aws_appautoscaling_policy.backlog_per_task]
}

run "refuses_name_too_long" {
  command = plan
  variables {
    name = "fleetwatch-production-eu-west-12"
  }
  expect_failures = [var.name]
}

run "refuses_unknown_inference" {
  command = plan
  variables {
    inference = "sagemaker" # set sagemaker_enabled instead
  }
  expect_failures = [var.inference]
}

run "refuses_unknown_sagemaker_endpoint_type" {
  command = plan
  variables {
    sagemaker_endpoint_type = "async"
  }
  expect_failures = [var.sagemaker_endpoint_type]
}

run "refuses_sagemaker_without_s3_model" {
  command = plan
  variables {
    sagemaker_enabled        = true
    sagemaker_model_data_url = "https://example.com/model.tar.gz"
  }
  expect_failures = [aws_sagemaker_model.this]
}

run "refuses_unknown_cpu_architecture" {
  command = plan
  variables {
    cpu_architecture = "arm64"
  }
  expect_failures = [var.cpu_architecture]
}

run "refuses_empty_container_image" {
  command = plan
  variables {
    container_image = " "
  }
  expect_failures = [var.container_image]
}

run "refuses_shutdown_grace_leaving_no_stop_margin" {
  command = plan
  variables {
    shutdown_grace = 115
  }
  expect_failures = [var.shutdown_grace]
}

run "refuses_zero_backlog_target" {
  command = plan
  variables {
    backlog_per_task_target = 0
  }
  expect_failures = [var.backlog_per_task_target]
}

run "refuses_idle_minutes_beyond_a_day" {
  command = plan
  variables {
    min_tasks                  = 0
    scale_to_zero_idle_minutes = 1441
  }
  expect_failures = [var.scale_to_zero_idle_minutes]
}
