# ECS cluster, Fargate task definition and service for `fleetwatch worker`.

resource "aws_cloudwatch_log_group" "worker" {
  #checkov:skip=CKV_AWS_338:Retention is a variable (default 30 days); one year of debug logs is a cost choice left to the user.
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  tags = local.tags
}

# Both Fargate providers are associated, so capacity_provider_strategy can move
# between on-demand and Spot without touching the cluster.
resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]
}

resource "aws_security_group" "worker" {
  name        = "${var.name}-worker"
  description = "fleetwatch worker tasks: HTTPS out to AWS APIs, optional Prometheus scrape in"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_egress_rule" "https" {
  #checkov:skip=CKV_AWS_382:The worker calls regional AWS APIs (S3, SQS, DynamoDB, SNS, KMS, SageMaker) whose addresses are not fixed; only TCP 443 is open. Use VPC endpoints to keep it private.
  security_group_id = aws_security_group.worker.id
  description       = "HTTPS to AWS APIs"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_ingress_rule" "metrics" {
  for_each          = toset(var.metrics_ingress_cidrs)
  security_group_id = aws_security_group.worker.id
  description       = "Prometheus scrape of /metrics"
  ip_protocol       = "tcp"
  from_port         = 9090
  to_port           = 9090
  cidr_ipv4         = each.value
}

locals {
  # Set by the module; extra_environment may not override them (see the task
  # definition's precondition), so e.g. the queue's visibility timeout and the
  # worker's always agree.
  managed_environment = {
    AWS_REGION                    = local.region
    FLEETWATCH_QUEUE_URL          = aws_sqs_queue.telemetry.url
    FLEETWATCH_TABLE              = aws_dynamodb_table.readings.name
    FLEETWATCH_ALARM_TABLE        = aws_dynamodb_table.alarms.name
    FLEETWATCH_ALARM_AUTO_CLOSE   = var.alarm_auto_close
    FLEETWATCH_ALERT_TOPIC_ARN    = aws_sns_topic.alerts.arn
    FLEETWATCH_INFERENCE          = var.sagemaker_enabled ? "sagemaker" : var.inference
    FLEETWATCH_SAGEMAKER_ENDPOINT = var.sagemaker_enabled ? aws_sagemaker_endpoint.this[0].name : ""
    FLEETWATCH_ALERT_RULES        = var.alert_rules
    FLEETWATCH_CONCURRENCY        = tostring(var.worker_concurrency)
    FLEETWATCH_METRICS_ADDR       = "0.0.0.0:9090"
    FLEETWATCH_LOG_FORMAT         = "json"
    FLEETWATCH_SHUTDOWN_GRACE     = "${var.shutdown_grace}s"
    FLEETWATCH_VISIBILITY_TIMEOUT = "${var.visibility_timeout_seconds}s"
    FLEETWATCH_QUARANTINE_PREFIX  = var.quarantine_prefix
    FLEETWATCH_READING_TTL        = var.reading_ttl == null ? "" : var.reading_ttl
  }

  worker_environment = merge(local.managed_environment, var.extra_environment)

  # Fargate's CPU/memory combinations (MiB per CPU size).
  fargate_memory_sizes = {
    "256"   = [512, 1024, 2048]
    "512"   = range(1024, 4097, 1024)
    "1024"  = range(2048, 8193, 1024)
    "2048"  = range(4096, 16385, 1024)
    "4096"  = range(8192, 30721, 1024)
    "8192"  = range(16384, 61441, 4096)
    "16384" = range(32768, 122881, 8192)
  }

  # <account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>[:tag|@digest], or null.
  ecr_image = try(regex("^(?P<account>[0-9]{12})\\.dkr\\.ecr(?:-fips)?\\.(?P<region>[a-z0-9-]+)\\.amazonaws\\.com(?:\\.cn)?/(?P<repository>[^:@]+)", var.container_image), null)

  container_definitions = [{
    name                   = "worker"
    image                  = var.container_image
    essential              = true
    command                = ["worker"]
    readonlyRootFilesystem = true
    stopTimeout            = var.stop_timeout
    user                   = "65532:65532"
    portMappings = [{
      containerPort = 9090
      protocol      = "tcp"
      name          = "metrics"
    }]
    environment = [
      # An empty value means "unset" to the worker, so it is left out.
      for k in sort(keys(local.worker_environment)) : { name = k, value = local.worker_environment[k] }
      if local.worker_environment[k] != ""
    ]
    mountPoints = [{
      sourceVolume  = "tmp"
      containerPath = "/tmp"
      readOnly      = false
    }]
    healthCheck = {
      command     = ["CMD", "/usr/local/bin/fleetwatch", "healthcheck"]
      interval    = 15
      timeout     = 5
      retries     = 3
      startPeriod = 15
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        "awslogs-group"         = aws_cloudwatch_log_group.worker.name
        "awslogs-region"        = local.region
        "awslogs-stream-prefix" = "worker"
      }
    }
    linuxParameters = {
      initProcessEnabled = true
    }
  }]
}

resource "aws_ecs_task_definition" "worker" {
  family                   = "${var.name}-worker"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  container_definitions    = jsonencode(local.container_definitions)

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # Writable scratch space; the root filesystem is read-only.
  volume {
    name = "tmp"
  }

  tags = local.tags

  lifecycle {
    precondition {
      condition     = contains(lookup(local.fargate_memory_sizes, tostring(var.task_cpu), []), var.task_memory)
      error_message = "task_memory = ${var.task_memory} is not a Fargate size for task_cpu = ${var.task_cpu}; allowed: ${join(", ", [for m in lookup(local.fargate_memory_sizes, tostring(var.task_cpu), []) : tostring(m)])} MiB."
    }
    precondition {
      condition     = var.stop_timeout > var.shutdown_grace + 5
      error_message = "stop_timeout (${var.stop_timeout}) must be more than shutdown_grace + 5 (${var.shutdown_grace + 5}) seconds, or ECS kills the worker while it returns unfinished messages."
    }
    precondition {
      condition     = local.ecr_image == null || var.ecr_repository_arn != null
      error_message = "container_image is an ECR image but ecr_repository_arn is null: set ecr_repository_arn = \"arn:aws:ecr:<region>:<account>:repository/<name>\" so the execution role may pull it (otherwise every task fails with CannotPullContainerError)."
    }
    precondition {
      condition     = local.ecr_image == null || var.ecr_repository_arn == null || endswith(coalesce(var.ecr_repository_arn, "-"), try(":ecr:${local.ecr_image.region}:${local.ecr_image.account}:repository/${local.ecr_image.repository}", "-"))
      error_message = "ecr_repository_arn must be the repository of container_image (arn:aws:ecr:${try(local.ecr_image.region, "")}:${try(local.ecr_image.account, "")}:repository/${try(local.ecr_image.repository, "")})."
    }
    precondition {
      condition     = length(setintersection(keys(var.extra_environment), keys(local.managed_environment))) == 0
      error_message = "extra_environment must not set ${join(", ", setintersection(keys(var.extra_environment), keys(local.managed_environment)))}: the module sets them from its own variables (e.g. FLEETWATCH_VISIBILITY_TIMEOUT from visibility_timeout_seconds)."
    }
  }
}

resource "aws_ecs_service" "worker" {
  name                               = "${var.name}-worker"
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.worker.arn
  platform_version                   = "LATEST"
  desired_count                      = var.min_tasks
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  enable_execute_command             = false
  propagate_tags                     = "SERVICE"
  wait_for_steady_state              = var.wait_for_steady_state
  # Lets a changed capacity_provider_strategy apply in place (the provider
  # otherwise replaces the service); it redeploys the tasks, which drain.
  force_new_deployment = true

  # Spot tasks get SIGTERM two minutes before they are reclaimed; the worker's
  # drain (shutdown_grace) returns unfinished messages to the queue.
  dynamic "capacity_provider_strategy" {
    for_each = var.capacity_provider_strategy
    content {
      capacity_provider = capacity_provider_strategy.value.capacity_provider
      weight            = capacity_provider_strategy.value.weight
      base              = capacity_provider_strategy.value.base
    }
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.worker.id]
    assign_public_ip = false
  }

  # Tasks that fail to start or stay unhealthy roll the deployment back...
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  # ...and so does a worker that starts but logs errors.
  dynamic "alarms" {
    for_each = var.deployment_alarms_enabled ? [1] : []
    content {
      alarm_names = concat([aws_cloudwatch_metric_alarm.worker_errors.alarm_name], var.deployment_alarm_names)
      enable      = true
      rollback    = true
    }
  }

  # Application Auto Scaling owns the desired count after creation.
  lifecycle {
    ignore_changes = [desired_count]

    precondition {
      condition     = var.cpu_architecture == "X86_64" || !contains([for s in var.capacity_provider_strategy : s.capacity_provider], "FARGATE_SPOT")
      error_message = "capacity_provider_strategy uses FARGATE_SPOT, which runs only X86_64 tasks: set cpu_architecture = \"X86_64\" (and build the image for linux/amd64)."
    }
  }

  # The first tasks must start with their permissions in place, and the
  # capacity providers must be associated before the service names them.
  depends_on = [
    aws_iam_role_policy.task,
    aws_iam_role_policy.execution,
    aws_ecs_cluster_capacity_providers.this,
  ]

  tags = local.tags
}
