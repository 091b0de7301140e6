variable "region" {
  description = "AWS region."
  type        = string
  default     = "eu-west-1"
}

variable "environment" {
  description = "Environment tag."
  type        = string
  default     = "staging"
}

variable "vpc_id" {
  description = "Existing VPC."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (with a NAT gateway or VPC endpoints) in at least two AZs."
  type        = list(string)
}

variable "container_image" {
  description = "fleetwatch image, e.g. <account>.dkr.ecr.<region>.amazonaws.com/fleetwatch:0.1.0 (built for ARM64)."
  type        = string
}

variable "ecr_repository_arn" {
  description = "ECR repository of container_image, arn:aws:ecr:<region>:<account>:repository/<name> (required for an ECR image; null for a public registry)."
  type        = string
  default     = null
}

variable "alert_email" {
  description = "Receives maintenance alerts (confirm the subscription email)."
  type        = string
}

variable "ops_email" {
  description = "Receives CloudWatch alarms (null = alert_email)."
  type        = string
  default     = null
}

variable "sagemaker_model_data_url" {
  description = "s3:// URL of a trained XGBoost model.tar.gz; empty = in-process (embedded) model, no SageMaker."
  type        = string
  default     = ""
}

variable "reading_ttl" {
  description = "Keep readings this long, e.g. \"400d\" (null = forever)."
  type        = string
  default     = null
}

variable "min_tasks" {
  description = "Minimum worker tasks; 0 scales to zero when the queue is idle."
  type        = number
  default     = 1
}

variable "use_fargate_spot" {
  description = "Run all but one task on Fargate Spot (X86_64 tasks, so build the image for linux/amd64)."
  type        = bool
  default     = false
}
