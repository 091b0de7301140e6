data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  # `name` on aws_region is current in provider 6.x; `id` still works in 5.x.
  region    = data.aws_region.current.id
  partition = data.aws_partition.current.partition

  bucket_name    = coalesce(var.bucket_name, "${var.name}-telemetry-${local.account_id}")
  table_name     = coalesce(var.table_name, "${var.name}-readings")
  alarm_table    = coalesce(var.alarm_table_name, "${var.name}-alarms")
  queue_name     = "${var.name}-telemetry"
  dlq_name       = "${var.name}-telemetry-dlq"
  topic_name     = "${var.name}-alerts"
  ops_topic_name = "${var.name}-ops"
  log_group_name = "/ecs/${var.name}"
  ops_email      = var.ops_email != null ? var.ops_email : var.alert_email

  tags = merge({ "app" = "fleetwatch", "fleetwatch:stack" = var.name }, var.tags)
}
