output "bucket_name" {
  description = "Upload telemetry to s3://<bucket_name>/incoming/."
  value       = module.fleetwatch.bucket_name
}

output "queue_url" {
  description = "Telemetry queue URL."
  value       = module.fleetwatch.queue_url
}

output "dlq_arn" {
  description = "Dead-letter queue ARN."
  value       = module.fleetwatch.dlq_arn
}

output "table_name" {
  description = "DynamoDB table."
  value       = module.fleetwatch.table_name
}

output "alert_topic_arn" {
  description = "SNS alert topic."
  value       = module.fleetwatch.alert_topic_arn
}

output "cluster_name" {
  description = "ECS cluster."
  value       = module.fleetwatch.cluster_name
}

output "service_name" {
  description = "ECS service."
  value       = module.fleetwatch.service_name
}

output "log_group_name" {
  description = "Worker logs."
  value       = module.fleetwatch.log_group_name
}

output "kms_key_arn" {
  description = "Customer managed key."
  value       = module.fleetwatch.kms_key_arn
}

output "sagemaker_endpoint_name" {
  description = "SageMaker endpoint (null when the embedded model is used)."
  value       = module.fleetwatch.sagemaker_endpoint_name
}
