output "kms_key_arn" {
  description = "ARN of the customer managed key encrypting every store."
  value       = aws_kms_key.this.arn
}

output "kms_key_alias" {
  description = "Alias of the key."
  value       = aws_kms_alias.this.name
}

output "bucket_name" {
  description = "Telemetry bucket; upload under notification_filter_prefix."
  value       = aws_s3_bucket.telemetry.bucket
}

output "bucket_arn" {
  description = "Telemetry bucket ARN."
  value       = aws_s3_bucket.telemetry.arn
}

output "upload_prefix" {
  description = "Key prefix that triggers processing."
  value       = var.notification_filter_prefix
}

output "queue_name" {
  description = "Telemetry queue name."
  value       = aws_sqs_queue.telemetry.name
}

output "queue_url" {
  description = "Telemetry queue URL (FLEETWATCH_QUEUE_URL)."
  value       = aws_sqs_queue.telemetry.url
}

output "queue_arn" {
  description = "Telemetry queue ARN."
  value       = aws_sqs_queue.telemetry.arn
}

output "dlq_name" {
  description = "Dead-letter queue name."
  value       = aws_sqs_queue.dlq.name
}

output "dlq_url" {
  description = "Dead-letter queue URL."
  value       = aws_sqs_queue.dlq.url
}

output "dlq_arn" {
  description = "Dead-letter queue ARN (source of `aws sqs start-message-move-task`)."
  value       = aws_sqs_queue.dlq.arn
}

output "table_name" {
  description = "DynamoDB table (FLEETWATCH_TABLE)."
  value       = aws_dynamodb_table.readings.name
}

output "table_arn" {
  description = "DynamoDB table ARN."
  value       = aws_dynamodb_table.readings.arn
}

output "alarm_table_name" {
  description = "DynamoDB table of alarms and the alert ledger (FLEETWATCH_ALARM_TABLE)."
  value       = aws_dynamodb_table.alarms.name
}

output "alarm_table_arn" {
  description = "DynamoDB alarm table ARN."
  value       = aws_dynamodb_table.alarms.arn
}

output "alert_topic_arn" {
  description = "SNS alert topic (FLEETWATCH_ALERT_TOPIC_ARN)."
  value       = aws_sns_topic.alerts.arn
}

output "ops_topic_arn" {
  description = "SNS topic receiving the CloudWatch alarms."
  value       = aws_sns_topic.ops.arn
}

output "sagemaker_endpoint_name" {
  description = "SageMaker endpoint name (null when not created)."
  value       = var.sagemaker_enabled ? aws_sagemaker_endpoint.this[0].name : null
}

output "sagemaker_endpoint_arn" {
  description = "SageMaker endpoint ARN (null when not created)."
  value       = var.sagemaker_enabled ? aws_sagemaker_endpoint.this[0].arn : null
}

output "cluster_name" {
  description = "ECS cluster name."
  value       = aws_ecs_cluster.this.name
}

output "cluster_arn" {
  description = "ECS cluster ARN."
  value       = aws_ecs_cluster.this.arn
}

output "service_name" {
  description = "ECS service name."
  value       = aws_ecs_service.worker.name
}

output "task_definition_arn" {
  description = "Current task definition revision."
  value       = aws_ecs_task_definition.worker.arn
}

output "task_role_arn" {
  description = "Worker task role (least privilege, from policies/worker-policy.json)."
  value       = aws_iam_role.task.arn
}

output "execution_role_arn" {
  description = "Task execution role."
  value       = aws_iam_role.execution.arn
}

output "security_group_id" {
  description = "Security group of the worker tasks."
  value       = aws_security_group.worker.id
}

output "log_group_name" {
  description = "CloudWatch log group of the worker."
  value       = aws_cloudwatch_log_group.worker.name
}

output "scaling_policy_arn" {
  description = "Backlog-per-task target tracking policy."
  value       = aws_appautoscaling_policy.backlog_per_task.arn
}

output "scale_to_zero_policy_arns" {
  description = "With min_tasks = 0: the step policies that start tasks when work arrives and stop them when the queue is idle (empty otherwise)."
  value       = concat(aws_appautoscaling_policy.start_on_work[*].arn, aws_appautoscaling_policy.idle_to_zero[*].arn)
}

output "alarm_names" {
  description = "CloudWatch alarms to the ops topic (the scale-to-zero alarms, which drive scaling, are not among them)."
  value = [
    aws_cloudwatch_metric_alarm.dlq_not_empty.alarm_name,
    aws_cloudwatch_metric_alarm.oldest_message_age.alarm_name,
    aws_cloudwatch_metric_alarm.worker_errors.alarm_name,
  ]
}

output "worker_environment" {
  description = "Environment the worker runs with (to reproduce locally)."
  value       = local.worker_environment
}
