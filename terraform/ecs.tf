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
  worker_environment = merge({
    AWS_REGION                    = local.region
    FLEETWATCH_QUEUE_URL          = aws_sqs_queue.telemetry.url
    FLEETWATCH_TABLE              = aws_dynamodb_table.readings.name
    FLEETWATCH_ALERT_TOPIC_ARN    = aws_sns_topic.alerts.arn
    FLEETWATCH_INFERENCE          = var.sagemaker_enabled ? "sagemaker" : var.inference
    FLEETWATCH_SAGEMAKER_ENDPOINT = var.sagemaker_enabled ? aws_sagemaker_endpoint.this[0].name : ""
    FLEETWATCH_ALERT_RULES        = var.alert_rules
    FLEETWATCH_CONCURRENCY        = tostring(var.worker_concurrency)
    FLEETWATCH_METRICS_ADDR       = "0.0.0.0:9090"
    FLEETWATCH_LOG_FORMAT         = "json"
    FLEETWATCH_SHUTDOWN_GRACE     = "${var.shutdown_grace}s"
    FLEETWATCH_QUARANTINE_PREFIX  = var.quarantine_prefix
  }, var.extra_environment)

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
}

resource "aws_ecs_service" "worker" {
  name                               = "${var.name}-worker"
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.worker.arn
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  desired_count                      = var.min_tasks
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  enable_execute_command             = false
  propagate_tags                     = "SERVICE"

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.worker.id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  # Application Auto Scaling owns the desired count after creation.
  lifecycle {
    ignore_changes = [desired_count]
  }

  tags = local.tags
}
