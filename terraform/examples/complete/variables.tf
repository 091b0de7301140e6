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
  description = "ECR repository of container_image (null if the image is elsewhere)."
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
