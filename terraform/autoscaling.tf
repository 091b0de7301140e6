# Scaling, as AWS CDK's QueueProcessingFargateService does it, in two layers:
#
# * Target tracking on backlog per task: visible messages / running tasks, held at
#   backlog_per_task_target (= acceptable latency / time per message; see
#   docs/operations.md, "Scale"). It sizes the service whenever a task runs.
# * With min_tasks = 0, step scaling on the absolute number of visible messages
#   starts tasks when work arrives and no task is wanted (target tracking cannot:
#   it scales in proportion to the current count, and there are no tasks to
#   divide by), and a second step policy scales to zero after
#   scale_to_zero_idle_minutes with nothing waiting or in flight.

locals {
  scale_to_zero = var.min_tasks == 0
  # Steps of the start-from-zero policy: n tasks for up to n x backlog_per_task_target
  # visible messages, what target tracking would ask for once tasks run (capped).
  from_zero_steps = min(var.max_tasks, 10)

  queue_dimensions   = { QueueName = aws_sqs_queue.telemetry.name }
  service_dimensions = { ClusterName = aws_ecs_cluster.this.name, ServiceName = aws_ecs_service.worker.name }
}

resource "aws_appautoscaling_target" "worker" {
  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.worker.name}"
  min_capacity       = var.min_tasks
  max_capacity       = var.max_tasks

  lifecycle {
    precondition {
      condition     = var.min_tasks <= var.max_tasks
      error_message = "min_tasks (${var.min_tasks}) must not be more than max_tasks (${var.max_tasks})."
    }
  }
}

resource "aws_appautoscaling_policy" "backlog_per_task" {
  name               = "${var.name}-backlog-per-task"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.worker.service_namespace
  scalable_dimension = aws_appautoscaling_target.worker.scalable_dimension
  resource_id        = aws_appautoscaling_target.worker.resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = var.backlog_per_task_target
    scale_out_cooldown = var.scale_out_cooldown
    scale_in_cooldown  = var.scale_in_cooldown

    customized_metric_specification {
      metrics {
        id          = "visible"
        label       = "Messages waiting in the telemetry queue"
        return_data = false
        metric_stat {
          metric {
            namespace   = "AWS/SQS"
            metric_name = "ApproximateNumberOfMessagesVisible"
            dimensions {
              name  = "QueueName"
              value = aws_sqs_queue.telemetry.name
            }
          }
          stat = "Sum"
        }
      }

      # With scale to zero, messages in flight count too: SQS reports them only
      # while there are some, so while a task works on the last objects the
      # metric stays above 0 and target tracking keeps a task (it rounds scale-in
      # up); when nothing is in flight the metric has no data and target tracking
      # leaves the last task to the idle policy below.
      dynamic "metrics" {
        for_each = local.scale_to_zero ? [1] : []
        content {
          id          = "in_flight"
          label       = "Messages being processed"
          return_data = false
          metric_stat {
            metric {
              namespace   = "AWS/SQS"
              metric_name = "ApproximateNumberOfMessagesNotVisible"
              dimensions {
                name  = "QueueName"
                value = aws_sqs_queue.telemetry.name
              }
            }
            stat = "Sum"
          }
        }
      }

      metrics {
        id          = "tasks"
        label       = "Running worker tasks"
        return_data = false
        metric_stat {
          metric {
            namespace   = "ECS/ContainerInsights"
            metric_name = "RunningTaskCount"
            dimensions {
              name  = "ClusterName"
              value = aws_ecs_cluster.this.name
            }
            dimensions {
              name  = "ServiceName"
              value = aws_ecs_service.worker.name
            }
          }
          stat = "Average"
        }
      }

      metrics {
        id          = "backlog_per_task"
        label       = "Backlog per task"
        expression  = local.scale_to_zero ? "(visible + in_flight) / tasks" : "visible / tasks"
        return_data = true
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.scale_in_cooldown > var.scale_out_cooldown
      error_message = "scale_in_cooldown (${var.scale_in_cooldown}) must be longer than scale_out_cooldown (${var.scale_out_cooldown})."
    }
  }
}

# ---------------------------------------------------------------- scale to zero

resource "aws_appautoscaling_policy" "start_on_work" {
  count              = local.scale_to_zero ? 1 : 0
  name               = "${var.name}-start-on-work"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.worker.service_namespace
  scalable_dimension = aws_appautoscaling_target.worker.scalable_dimension
  resource_id        = aws_appautoscaling_target.worker.resource_id

  step_scaling_policy_configuration {
    # Adds tasks rather than setting a count, so a late metric can only add
    # capacity (which target tracking trims), never stop working tasks.
    adjustment_type         = "ChangeInCapacity"
    cooldown                = var.scale_out_cooldown
    metric_aggregation_type = "Maximum"

    # Bounds are relative to the alarm threshold (1 message): n tasks for
    # (n-1) x target < visible <= n x target.
    dynamic "step_adjustment" {
      for_each = range(1, local.from_zero_steps + 1)
      content {
        metric_interval_lower_bound = (step_adjustment.value - 1) * var.backlog_per_task_target
        metric_interval_upper_bound = step_adjustment.value < local.from_zero_steps ? step_adjustment.value * var.backlog_per_task_target : null
        scaling_adjustment          = step_adjustment.value
      }
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "work_arrived" {
  count               = local.scale_to_zero ? 1 : 0
  alarm_name          = "${var.name}-work-arrived"
  alarm_description   = "Messages wait in ${local.queue_name} and the service wants no task: start tasks (scale from zero)."
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_appautoscaling_policy.start_on_work[0].arn]
  tags                = local.tags

  metric_query {
    id = "visible"
    metric {
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesVisible"
      dimensions  = local.queue_dimensions
      period      = 60
      stat        = "Maximum"
    }
  }

  # Desired rather than running tasks: once a task is asked for, the alarm clears
  # while it starts.
  metric_query {
    id = "desired"
    metric {
      namespace   = "ECS/ContainerInsights"
      metric_name = "DesiredTaskCount"
      dimensions  = local.service_dimensions
      period      = 60
      stat        = "Maximum"
    }
  }

  metric_query {
    id          = "waiting_without_tasks"
    label       = "Visible messages while no task is wanted"
    expression  = "IF(FILL(desired, 0) < 1, visible, 0)"
    return_data = true
  }
}

resource "aws_appautoscaling_policy" "idle_to_zero" {
  count              = local.scale_to_zero ? 1 : 0
  name               = "${var.name}-idle-to-zero"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.worker.service_namespace
  scalable_dimension = aws_appautoscaling_target.worker.scalable_dimension
  resource_id        = aws_appautoscaling_target.worker.resource_id

  step_scaling_policy_configuration {
    adjustment_type         = "ExactCapacity"
    cooldown                = var.scale_in_cooldown
    metric_aggregation_type = "Maximum"

    step_adjustment {
      metric_interval_upper_bound = 0
      scaling_adjustment          = 0
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "queue_idle" {
  count               = local.scale_to_zero ? 1 : 0
  alarm_name          = "${var.name}-queue-idle"
  alarm_description   = "Nothing waiting or in flight in ${local.queue_name} for ${var.scale_to_zero_idle_minutes} min: scale the workers to zero."
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  evaluation_periods  = var.scale_to_zero_idle_minutes
  datapoints_to_alarm = var.scale_to_zero_idle_minutes
  # No data (an inactive queue) is not proof of idleness: do nothing.
  treat_missing_data = "notBreaching"
  alarm_actions      = [aws_appautoscaling_policy.idle_to_zero[0].arn]
  tags               = local.tags

  metric_query {
    id = "visible"
    metric {
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesVisible"
      dimensions  = local.queue_dimensions
      period      = 60
      stat        = "Maximum"
    }
  }

  metric_query {
    id = "in_flight"
    metric {
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesNotVisible"
      dimensions  = local.queue_dimensions
      period      = 60
      stat        = "Maximum"
    }
  }

  # SQS reports in-flight messages only while there are some.
  metric_query {
    id          = "pending"
    label       = "Messages waiting or in flight"
    expression  = "visible + FILL(in_flight, 0)"
    return_data = true
  }
}
