# A complete fleetwatch deployment in an existing VPC:
#
#   terraform init
#   terraform apply -var vpc_id=vpc-... -var 'private_subnet_ids=["subnet-a","subnet-b"]' \
#     -var container_image=123456789012.dkr.ecr.eu-west-1.amazonaws.com/fleetwatch:0.1.0 \
#     -var ecr_repository_arn=arn:aws:ecr:eu-west-1:123456789012:repository/fleetwatch \
#     -var alert_email=fleet-ops@example.com
#
# Then upload telemetry to s3://<bucket_name>/incoming/.

module "fleetwatch" {
  source = "../.."

  name = "fleetwatch-${var.environment}"

  # Networking: tasks run in private subnets without public IPs.
  vpc_id             = var.vpc_id
  private_subnet_ids = var.private_subnet_ids

  # Image: build with `docker buildx build --platform linux/arm64` (linux/amd64
  # with use_fargate_spot: Fargate Spot runs only X86_64 tasks).
  container_image    = var.container_image
  ecr_repository_arn = var.ecr_repository_arn
  cpu_architecture   = var.use_fargate_spot ? "X86_64" : "ARM64"
  task_cpu           = 512
  task_memory        = 1024
  worker_concurrency = 8

  # Capacity: on demand, or one on-demand task and the rest on Fargate Spot
  # (interrupted tasks drain like any SIGTERM; their messages go back to the queue).
  capacity_provider_strategy = var.use_fargate_spot ? [
    { capacity_provider = "FARGATE", base = 1, weight = 0 },
    { capacity_provider = "FARGATE_SPOT", weight = 1 },
  ] : [{ capacity_provider = "FARGATE", weight = 1 }]

  # Queue and worker share this visibility timeout (FLEETWATCH_VISIBILITY_TIMEOUT).
  visibility_timeout_seconds = 120
  shutdown_grace             = 25
  stop_timeout               = 35

  # Deployments: apply waits for the new tasks; worker errors roll back.
  wait_for_steady_state     = true
  deployment_alarms_enabled = true

  # Storage.
  notification_filter_prefix   = "incoming/"
  notification_filter_suffix   = ""
  quarantine_prefix            = "quarantine/"
  raw_transition_days          = 30
  raw_transition_storage_class = "GLACIER_IR"
  table_ttl_attribute          = "expires_at"
  reading_ttl                  = var.reading_ttl
  deletion_protection          = true

  # Alerts: the email only receives alerts for two vehicles (SNS filter policy on
  # the device_id message attribute); remove the list to receive all of them.
  alert_email               = var.alert_email
  alert_email_device_filter = ["VHC001", "VHC002"]
  ops_email                 = var.ops_email
  alert_rules               = "engine_temp_c > 100"

  # Inference: in-process model unless a SageMaker artifact is given.
  sagemaker_enabled                    = var.sagemaker_model_data_url != ""
  sagemaker_model_data_url             = var.sagemaker_model_data_url
  sagemaker_endpoint_type              = "serverless"
  sagemaker_serverless_memory_mb       = 2048
  sagemaker_serverless_max_concurrency = 5

  # Scaling: min_tasks..10 tasks, 100 visible messages per task
  # (acceptable latency 200 s / measured 0.25 s per message per task with 8-way concurrency ~= 100 after headroom).
  # min_tasks = 0 scales to zero after 15 idle minutes (first file after idle waits minutes).
  min_tasks               = var.min_tasks
  max_tasks               = 10
  backlog_per_task_target = 100
  scale_out_cooldown      = 60
  scale_in_cooldown       = 300

  oldest_message_age_threshold_seconds = 900
  worker_error_threshold               = 10

  tags = {
    owner = "fleet-platform"
  }
}
