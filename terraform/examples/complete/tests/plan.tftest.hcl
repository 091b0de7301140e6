# Plans of the example with the real AWS provider and no AWS account. The first run
# uses exactly the variables of the command in main.tf's header (tests/infra checks
# that they agree), so the documented command is known to plan.

provider "aws" {
  region                      = "eu-west-1"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
}

override_data {
  target = module.fleetwatch.data.aws_caller_identity.current
  values = {
    account_id = "123456789012"
    arn        = "arn:aws:iam::123456789012:user/terraform-test"
    id         = "123456789012"
    user_id    = "AIDATERRAFORMTEST"
  }
}

override_data {
  target = module.fleetwatch.data.aws_region.current
  values = {
    id   = "eu-west-1"
    name = "eu-west-1"
  }
}

override_data {
  target = module.fleetwatch.data.aws_partition.current
  values = {
    id                 = "aws"
    partition          = "aws"
    dns_suffix         = "amazonaws.com"
    reverse_dns_prefix = "com.amazonaws"
  }
}

run "header_command" {
  command = plan

  variables {
    vpc_id             = "vpc-..."
    private_subnet_ids = ["subnet-a", "subnet-b"]
    container_image    = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/fleetwatch:0.1.0"
    ecr_repository_arn = "arn:aws:ecr:eu-west-1:123456789012:repository/fleetwatch"
    alert_email        = "fleet-ops@example.com"
  }

  assert {
    condition     = output.cluster_name == "fleetwatch-staging"
    error_message = "the example deploys fleetwatch-<environment>"
  }
}

run "spot_scale_to_zero_and_retention" {
  command = plan

  variables {
    vpc_id             = "vpc-0123456789abcdef0"
    private_subnet_ids = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
    container_image    = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/fleetwatch:0.1.0-amd64"
    ecr_repository_arn = "arn:aws:ecr:eu-west-1:123456789012:repository/fleetwatch"
    alert_email        = "fleet-ops@example.com"
    use_fargate_spot   = true
    min_tasks          = 0
    reading_ttl        = "400d"
  }

  assert {
    condition     = length(module.fleetwatch.scale_to_zero_policy_arns) == 2
    error_message = "min_tasks = 0 must create the scale-to-zero policies"
  }

  assert {
    condition     = module.fleetwatch.worker_environment["FLEETWATCH_READING_TTL"] == "400d"
    error_message = "reading_ttl must reach the worker"
  }
}
