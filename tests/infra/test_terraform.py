"""Structural checks of terraform/ (no provider download needed): encryption on every
store, least privilege, the scaling policy's metric math, and the rest of issue 4."""

from __future__ import annotations

import re

import pytest

from conftest import ROOT, TERRAFORM, block, blocks

KEY_REF = "aws_kms_key.this.arn"


def ref(value) -> str:
    assert isinstance(value, str), value
    return value


def default(module, var: str):
    assert var in module.variables, f"variable {var} missing"
    return module.variables[var].get("default")


# ------------------------------------------------------------------ encryption


def test_kms_key_rotates_and_serves_every_store(root_module):
    key = root_module.resource("aws_kms_key", "this")
    assert key["enable_key_rotation"] is True
    assert "aws_iam_policy_document.kms" in key["policy"]
    statements = root_module.data["aws_iam_policy_document"]["kms"]["statement"]
    service_principals = {
        ident
        for s in statements
        for p in s.get("principals", [])
        if p["type"] == "Service"
        for ident in p["identifiers"]
    }
    assert "s3.amazonaws.com" in service_principals
    assert any(i.startswith("logs.") for i in service_principals)
    via = {
        v.split(".")[0]
        for s in statements
        for c in s.get("condition", [])
        if c["variable"] == "kms:ViaService"
        for v in c["values"]
    }
    assert {"s3", "sqs", "sns", "dynamodb"} <= via


def test_bucket_sse_kms_with_bucket_key(root_module):
    sse = root_module.resource("aws_s3_bucket_server_side_encryption_configuration", "telemetry")
    rule = block(sse, "rule")
    default_enc = block(rule, "apply_server_side_encryption_by_default")
    assert default_enc["sse_algorithm"] == "aws:kms"
    assert KEY_REF in ref(default_enc["kms_master_key_id"])
    assert rule["bucket_key_enabled"] is True


def test_every_queue_is_kms_encrypted(root_module):
    queues = root_module.all_of("aws_sqs_queue")
    assert set(queues) == {"telemetry", "dlq"}
    for name, q in queues.items():
        assert KEY_REF in ref(q.get("kms_master_key_id", "")), name
        assert "sqs_managed_sse_enabled" not in q, name


def test_every_table_uses_the_cmk(root_module):
    for name, t in root_module.all_of("aws_dynamodb_table").items():
        sse = block(t, "server_side_encryption")
        assert sse["enabled"] is True, name
        assert KEY_REF in ref(sse["kms_key_arn"]), name


def test_every_topic_is_kms_encrypted(root_module):
    for name, t in root_module.all_of("aws_sns_topic").items():
        assert KEY_REF in ref(t.get("kms_master_key_id", "")), name


def test_every_log_group_is_kms_encrypted(root_module):
    for name, lg in root_module.all_of("aws_cloudwatch_log_group").items():
        assert KEY_REF in ref(lg.get("kms_key_id", "")), name
        assert lg.get("retention_in_days"), name


# ------------------------------------------------------------------ bucket


def test_bucket_locked_down(root_module):
    pab = root_module.resource("aws_s3_bucket_public_access_block", "telemetry")
    for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
        assert pab[flag] is True, flag
    versioning = block(root_module.resource("aws_s3_bucket_versioning", "telemetry"), "versioning_configuration")
    assert versioning["status"] == "Enabled"
    policy = root_module.data["aws_iam_policy_document"]["bucket"]["statement"]
    tls = [
        s for s in policy
        if s["effect"] == "Deny"
        and any(c["variable"] == "aws:SecureTransport" and c["values"] == ["false"] for c in s["condition"])
    ]
    assert tls, "no TLS-only deny statement"


def test_bucket_lifecycle_moves_raw_data_to_colder_storage(root_module):
    lc = root_module.resource("aws_s3_bucket_lifecycle_configuration", "telemetry")
    transitions = [t for r in blocks(lc, "rule") for t in r.get("transition", [])]
    assert transitions
    assert "var.raw_transition_days" in transitions[0]["days"]
    assert default(root_module, "raw_transition_storage_class") in {
        "STANDARD_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"
    }


def test_bucket_notifies_queue_with_optional_filters(root_module):
    n = root_module.resource("aws_s3_bucket_notification", "telemetry")
    q = block(n, "queue")
    assert q["events"] == ["s3:ObjectCreated:*"]
    assert "aws_sqs_queue.telemetry.arn" in q["queue_arn"]
    assert "var.notification_filter_prefix" in q["filter_prefix"]
    assert "var.notification_filter_suffix" in q["filter_suffix"]
    assert any("aws_sqs_queue_policy.telemetry" in d for d in n["depends_on"])
    # The quarantine prefix must not re-trigger processing.
    assert default(root_module, "notification_filter_prefix") != default(root_module, "quarantine_prefix")


# ------------------------------------------------------------------ queue


def test_queue_long_polling_dlq_and_visibility(root_module):
    q = root_module.resource("aws_sqs_queue", "telemetry")
    assert q["receive_wait_time_seconds"] == 20
    assert "var.visibility_timeout_seconds" in q["visibility_timeout_seconds"]
    assert default(root_module, "visibility_timeout_seconds") >= 60
    redrive = q["redrive_policy"]
    assert "aws_sqs_queue.dlq.arn" in redrive and "maxReceiveCount" in redrive


def test_queue_policy_only_this_bucket(root_module):
    statements = root_module.data["aws_iam_policy_document"]["queue"]["statement"]
    assert len(statements) == 1
    s = statements[0]
    assert s["effect"] == "Allow" and s["actions"] == ["sqs:SendMessage"]
    assert s["principals"][0]["identifiers"] == ["s3.amazonaws.com"]
    conds = {c["variable"]: c for c in s["condition"]}
    assert "aws_s3_bucket.telemetry.arn" in conds["aws:SourceArn"]["values"][0]
    assert conds["aws:SourceAccount"]["values"] == ["${local.account_id}"]


# ------------------------------------------------------------------ table, topic


def test_table_schema_and_protection(root_module):
    t = root_module.resource("aws_dynamodb_table", "readings")
    assert t["hash_key"] == "device_id" and t["range_key"] == "timestamp"
    assert {(a["name"], a["type"]) for a in t["attribute"]} == {("device_id", "S"), ("timestamp", "S")}
    assert t["billing_mode"] == "PAY_PER_REQUEST"
    assert block(t, "point_in_time_recovery")["enabled"] is True
    assert "var.deletion_protection" in t["deletion_protection_enabled"]
    assert default(root_module, "deletion_protection") is True
    ttl = [d["ttl"] for d in t.get("dynamic", []) if "ttl" in d]
    assert ttl and "var.table_ttl_attribute" in ttl[0]["for_each"]


def test_alert_email_with_device_filter(root_module):
    sub = root_module.resource("aws_sns_topic_subscription", "alert_email")
    assert sub["protocol"] == "email"
    assert "aws_sns_topic.alerts.arn" in sub["topic_arn"]
    assert "device_id" in sub["filter_policy"]
    assert "MessageAttributes" in sub["filter_policy_scope"]


# ------------------------------------------------------------------ SageMaker


def test_sagemaker_is_optional_serverless_or_realtime(root_module):
    for rtype in ("aws_sagemaker_model", "aws_sagemaker_endpoint_configuration", "aws_sagemaker_endpoint"):
        assert "local.sagemaker_count" in root_module.resource(rtype, "this")["count"], rtype
    assert default(root_module, "sagemaker_enabled") is False
    image = root_module.data["aws_sagemaker_prebuilt_ecr_image"]["xgboost"]
    assert image["repository_name"] == "sagemaker-xgboost"
    cfg = root_module.resource("aws_sagemaker_endpoint_configuration", "this")
    variant = block(cfg, "production_variants")
    assert any("serverless_config" in d for d in variant["dynamic"])
    model = block(root_module.resource("aws_sagemaker_model", "this"), "primary_container")
    assert "var.sagemaker_model_data_url" in model["model_data_url"]


# ------------------------------------------------------------------ ECS


def container(root_module) -> dict:
    defs = root_module.locals["container_definitions"]
    assert isinstance(defs, list) and len(defs) == 1
    return defs[0]


def test_cluster_has_container_insights(root_module):
    settings = root_module.resource("aws_ecs_cluster", "this")["setting"]
    assert {"name": "containerInsights", "value": "enabled"} in settings


def test_task_definition(root_module):
    td = root_module.resource("aws_ecs_task_definition", "worker")
    assert td["requires_compatibilities"] == ["FARGATE"]
    assert td["network_mode"] == "awsvpc"
    rp = block(td, "runtime_platform")
    assert rp["cpu_architecture"] == "${var.cpu_architecture}"
    assert default(root_module, "cpu_architecture") in {"ARM64", "X86_64"}
    assert "ARM64" in root_module.text and "X86_64" in root_module.text
    assert "aws_iam_role.task.arn" in td["task_role_arn"]
    assert "aws_iam_role.execution.arn" in td["execution_role_arn"]
    assert td["task_role_arn"] != td["execution_role_arn"]


def test_container_definition(root_module):
    c = container(root_module)
    assert c["readonlyRootFilesystem"] is True
    assert c["stopTimeout"] == "${var.stop_timeout}"
    # After the grace the worker still returns unfinished messages and exits.
    assert default(root_module, "shutdown_grace") + 5 < default(root_module, "stop_timeout") <= 120
    assert c["healthCheck"]["command"] == ["CMD", "/usr/local/bin/fleetwatch", "healthcheck"]
    log = c["logConfiguration"]
    assert log["logDriver"] == "awslogs"
    assert "aws_cloudwatch_log_group.worker.name" in log["options"]["awslogs-group"]
    assert c["command"] == ["worker"]
    env = root_module.locals["managed_environment"]
    for var in ("FLEETWATCH_QUEUE_URL", "FLEETWATCH_TABLE", "FLEETWATCH_ALARM_TABLE", "FLEETWATCH_ALERT_TOPIC_ARN",
                "FLEETWATCH_INFERENCE", "FLEETWATCH_SAGEMAKER_ENDPOINT", "FLEETWATCH_SHUTDOWN_GRACE",
                "FLEETWATCH_VISIBILITY_TIMEOUT", "FLEETWATCH_READING_TTL"):
        assert var in env, var
    # extra_environment is merged last but may not override these (precondition).
    assert "local.managed_environment" in root_module.locals["worker_environment"]
    assert "var.extra_environment" in root_module.locals["worker_environment"]
    precondition_conditions = " ".join(
        p["condition"] for p in block(root_module.resource("aws_ecs_task_definition", "worker"), "lifecycle")["precondition"]
    )
    assert "setintersection(keys(var.extra_environment), keys(local.managed_environment))" in precondition_conditions


def test_queue_visibility_timeout_reaches_the_worker(root_module):
    """One variable feeds the queue and FLEETWATCH_VISIBILITY_TIMEOUT (issue 10: 120 s on
    the queue, 60 s asked by the worker on every receive)."""
    q = root_module.resource("aws_sqs_queue", "telemetry")
    assert q["visibility_timeout_seconds"] == "${var.visibility_timeout_seconds}"
    env = root_module.locals["managed_environment"]
    assert env["FLEETWATCH_VISIBILITY_TIMEOUT"] == "${var.visibility_timeout_seconds}s"


def test_reading_ttl_reaches_the_worker_and_the_table_expires_it(root_module):
    env = root_module.locals["managed_environment"]
    assert "var.reading_ttl" in env["FLEETWATCH_READING_TTL"]
    assert default(root_module, "reading_ttl") is None  # readings kept forever by default
    assert default(root_module, "table_ttl_attribute") == "expires_at"  # the worker's attribute
    described = root_module.variables["table_ttl_attribute"]["description"]
    assert "never expire" not in described and "reading_ttl" in described


def test_service_private_no_public_ip(root_module):
    svc = root_module.resource("aws_ecs_service", "worker")
    strategy = [d["capacity_provider_strategy"] for d in svc.get("dynamic", []) if "capacity_provider_strategy" in d]
    assert strategy and strategy[0]["for_each"] == "${var.capacity_provider_strategy}"
    assert "launch_type" not in svc  # conflicts with a capacity provider strategy
    assert default(root_module, "capacity_provider_strategy") == [{"capacity_provider": "FARGATE", "weight": 1}]
    net = block(svc, "network_configuration")
    assert net["assign_public_ip"] is False
    assert net["subnets"] == "${var.private_subnet_ids}"
    assert "desired_count" in str(block(svc, "lifecycle")["ignore_changes"])


def test_service_starts_after_its_permissions_exist(root_module):
    depends = root_module.resource("aws_ecs_service", "worker")["depends_on"]
    for needed in ("aws_iam_role_policy.task", "aws_iam_role_policy.execution",
                   "aws_ecs_cluster_capacity_providers.this"):
        assert any(needed in d for d in depends), needed


def test_deployments_roll_back(root_module):
    svc = root_module.resource("aws_ecs_service", "worker")
    breaker = block(svc, "deployment_circuit_breaker")
    assert breaker["enable"] is True and breaker["rollback"] is True
    alarms = [d["alarms"] for d in svc.get("dynamic", []) if "alarms" in d][0]
    assert "var.deployment_alarms_enabled" in alarms["for_each"]
    content = alarms["content"][0] if isinstance(alarms["content"], list) else alarms["content"]
    assert content["rollback"] is True and content["enable"] is True
    assert "aws_cloudwatch_metric_alarm.worker_errors.alarm_name" in content["alarm_names"]
    assert svc["wait_for_steady_state"] == "${var.wait_for_steady_state}"
    assert default(root_module, "wait_for_steady_state") is False


def test_module_reads_no_file_outside_its_folder(root_module):
    """The module is used as `source = "../.."` and from registries: a path that leaves
    its folder (the policy used to come from ../deploy/iam/) breaks it."""
    text = "\n".join(f.read_text() for f in sorted(TERRAFORM.rglob("*.tf")) if ".terraform" not in f.parts)
    calls = re.findall(r"\b(file|templatefile|filebase64|filebase64sha256|filemd5|filesha1|filesha256|filesha512|fileset|fileexists)\(\s*([^,)]+)", text)
    assert calls, "expected at least the worker policy to be read"
    for fn, path in calls:
        assert path.strip().startswith('"${path.module}/'), f"{fn}({path}): read files relative to path.module"
        assert ".." not in path, f"{fn}({path}) leaves the module's folder"
    assert "path.root" not in text and "path.cwd" not in text


def test_worker_policy_copies_are_identical():
    """deploy/iam/worker-policy.json serves deployments without Terraform; it must be the
    module's policy, byte for byte."""
    module_copy = (TERRAFORM / "policies" / "worker-policy.json").read_bytes()
    assert (ROOT / "deploy" / "iam" / "worker-policy.json").read_bytes() == module_copy


def test_task_role_uses_the_rendered_worker_policy(root_module, worker_policy):
    role_policy = root_module.resource("aws_iam_role_policy", "task")
    assert role_policy["policy"] == "${local.worker_policy}"
    rendered = root_module.locals["worker_policy_document"]
    assert "${path.module}/policies/worker-policy.json" in rendered
    placeholders = set(re.findall(r"\$\{(\w+)\}", (TERRAFORM / "policies/worker-policy.json").read_text()))
    supplied = set(re.findall(r"(\w+)\s*=", rendered.split("templatefile", 1)[1]))
    assert placeholders <= supplied, placeholders - supplied
    assert {"queue_arn", "bucket_arn", "table_arn", "alarm_table_arn", "topic_arn", "endpoint_arn", "kms_key_arn"} <= placeholders


# ------------------------------------------------------------------ IAM: no wildcard actions


def policy_document_statements(root_module):
    for name, doc in root_module.data.get("aws_iam_policy_document", {}).items():
        for s in doc.get("statement", []):
            yield f"data.aws_iam_policy_document.{name}", s
        for d in doc.get("dynamic", []):
            for s in d.get("statement", {}).get("content", []):
                yield f"data.aws_iam_policy_document.{name} (dynamic)", s


def test_no_wildcard_actions_in_terraform(root_module):
    found = 0
    for where, s in policy_document_statements(root_module):
        assert "not_actions" not in s, where
        if s.get("effect", "Allow") == "Deny":
            continue  # a Deny with s3:* only restricts (TLS-only bucket policy)
        for action in s["actions"]:
            found += 1
            assert "*" not in action, f"{where}: wildcard action {action}"
    assert found > 30
    # No raw JSON policies that would escape the check above.
    assert '"Action"' not in root_module.text
    assert not re.search(r'actions\s*=\s*\[\s*"\*"', root_module.text)


def test_worker_policy_least_privilege(worker_policy):
    expected = {
        "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes",
        # GetObjectVersion: the bucket is versioned, so notifications name a
        # version and the worker reads exactly that one.
        "s3:GetObject", "s3:GetObjectVersion", "s3:PutObject",
        "dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query",
        # The alarm table: alarms are read before each conditional write
        # (GetItem) and swept for auto-close (Scan).
        "dynamodb:GetItem", "dynamodb:Scan",
        "sns:Publish", "sagemaker:InvokeEndpoint", "kms:Decrypt", "kms:GenerateDataKey",
    }
    actions = set()
    for s in worker_policy["Statement"]:
        assert s["Effect"] == "Allow"
        assert "NotAction" not in s and "NotResource" not in s
        acts = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        for a in acts:
            assert "*" not in a, a
        actions.update(acts)
        resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        for r in resources:
            assert r != "*" and r.startswith("${"), r
    assert actions == expected
    by_sid = {s["Sid"]: s for s in worker_policy["Statement"]}
    assert by_sid["WriteQuarantinedObjects"]["Resource"] == "${bucket_arn}/${quarantine_prefix}*"
    assert by_sid["InvokeMaintenanceModel"]["Resource"] == "${endpoint_arn}"


# ------------------------------------------------------------------ scaling


def test_scaling_policy_backlog_per_task(root_module):
    target = root_module.resource("aws_appautoscaling_target", "worker")
    assert target["scalable_dimension"] == "ecs:service:DesiredCount"
    assert "var.min_tasks" in target["min_capacity"] and "var.max_tasks" in target["max_capacity"]
    policy = root_module.resource("aws_appautoscaling_policy", "backlog_per_task")
    assert policy["policy_type"] == "TargetTrackingScaling"
    cfg = block(policy, "target_tracking_scaling_policy_configuration")
    assert "var.backlog_per_task_target" in cfg["target_value"]
    metrics = blocks(block(cfg, "customized_metric_specification"), "metrics")
    by_id = {m["id"]: m for m in metrics}
    returned = [m for m in metrics if m["return_data"] is True]
    assert len(returned) == 1
    expr = returned[0]["expression"]
    # Without scale to zero: visible / tasks; with it, in-flight messages count too.
    m = re.fullmatch(r'\$\{local\.scale_to_zero \? "\(visible \+ in_flight\) / tasks" : "(\w+) / (\w+)"\}', expr)
    assert m, expr
    num = block(block(by_id[m.group(1)], "metric_stat"), "metric")
    den = block(block(by_id[m.group(2)], "metric_stat"), "metric")
    assert (num["namespace"], num["metric_name"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert (den["namespace"], den["metric_name"]) == ("ECS/ContainerInsights", "RunningTaskCount")
    assert "aws_sqs_queue.telemetry.name" in num["dimensions"][0]["value"]
    assert {d["name"] for d in den["dimensions"]} == {"ClusterName", "ServiceName"}
    assert default(root_module, "scale_in_cooldown") > default(root_module, "scale_out_cooldown")
    assert default(root_module, "min_tasks") >= 1  # scale to zero is opt-in (first-file latency)


def test_scale_to_zero_steps_on_visible_messages(root_module):
    """CDK's QueueProcessingFargateService: step scaling on the absolute number of visible
    messages takes the service from 0 to 1+ tasks; an idle alarm takes it back to 0."""
    start = root_module.resource("aws_appautoscaling_policy", "start_on_work")
    assert start["count"] == "${local.scale_to_zero ? 1 : 0}"
    assert root_module.locals["scale_to_zero"] == "${var.min_tasks == 0}"
    cfg = block(start, "step_scaling_policy_configuration")
    assert cfg["adjustment_type"] == "ChangeInCapacity"
    steps = [d["step_adjustment"] for d in cfg["dynamic"] if "step_adjustment" in d][0]
    assert "local.from_zero_steps" in steps["for_each"]
    arrived = root_module.resource("aws_cloudwatch_metric_alarm", "work_arrived")
    assert arrived["threshold"] == 1 and arrived["comparison_operator"] == "GreaterThanOrEqualToThreshold"
    assert "aws_appautoscaling_policy.start_on_work[0].arn" in arrived["alarm_actions"][0]
    queries = {q["id"]: q for q in arrived["metric_query"]}
    assert queries["visible"]["metric"][0]["metric_name"] == "ApproximateNumberOfMessagesVisible"
    assert queries["desired"]["metric"][0]["metric_name"] == "DesiredTaskCount"
    assert [q for q in arrived["metric_query"] if q.get("return_data")] == [queries["waiting_without_tasks"]]

    idle = root_module.resource("aws_cloudwatch_metric_alarm", "queue_idle")
    assert idle["evaluation_periods"] == "${var.scale_to_zero_idle_minutes}"
    assert idle["treat_missing_data"] == "notBreaching"
    idle_queries = {q["id"]: q for q in idle["metric_query"]}
    assert idle_queries["in_flight"]["metric"][0]["metric_name"] == "ApproximateNumberOfMessagesNotVisible"
    assert "FILL(in_flight, 0)" in idle_queries["pending"]["expression"]
    to_zero = block(root_module.resource("aws_appautoscaling_policy", "idle_to_zero"), "step_scaling_policy_configuration")
    assert to_zero["adjustment_type"] == "ExactCapacity"
    assert block(to_zero, "step_adjustment")["scaling_adjustment"] == 0


# ------------------------------------------------------------------ alarms and outputs


def test_alarms(root_module):
    alarms = root_module.all_of("aws_cloudwatch_metric_alarm")
    dlq = alarms["dlq_not_empty"]
    assert dlq["metric_name"] == "ApproximateNumberOfMessagesVisible"
    assert "aws_sqs_queue.dlq.name" in str(dlq["dimensions"])
    age = alarms["oldest_message_age"]
    assert age["metric_name"] == "ApproximateAgeOfOldestMessage"
    assert "aws_sqs_queue.telemetry.name" in str(age["dimensions"])
    errors = alarms["worker_errors"]
    assert "aws_cloudwatch_log_metric_filter.worker_errors" in errors["metric_name"]
    scaling = {"work_arrived", "queue_idle"}  # drive scale to zero, not people
    for name, a in alarms.items():
        if name in scaling:
            assert "aws_appautoscaling_policy." in str(a["alarm_actions"]), name
        else:
            assert "aws_sns_topic.ops.arn" in str(a["alarm_actions"]), name


def test_outputs(root_module):
    needed = {
        "bucket_name", "bucket_arn", "queue_url", "queue_arn", "dlq_url", "dlq_arn", "table_name",
        "table_arn", "alarm_table_name", "alarm_table_arn", "alert_topic_arn", "kms_key_arn", "cluster_name", "service_name",
        "task_role_arn", "execution_role_arn", "log_group_name", "sagemaker_endpoint_name",
    }
    assert needed <= set(root_module.outputs)
    for name, out in root_module.outputs.items():
        assert out.get("description"), name


def test_every_variable_documented_and_typed(root_module):
    for name, v in root_module.variables.items():
        assert v.get("description"), name
        assert v.get("type"), name


# ------------------------------------------------------------------ example


def test_example_uses_the_root_module_with_every_required_input(root_module, example_module):
    mod = example_module.modules["fleetwatch"]
    assert mod["source"] == "../.."
    required = {n for n, v in root_module.variables.items() if "default" not in v}
    assert required <= set(mod), required - set(mod)
    assert mod["alert_email"] == "${var.alert_email}"
    assert mod["alert_email_device_filter"]
    assert example_module.outputs


@pytest.mark.parametrize("directory", ["terraform", "terraform/examples/complete"])
def test_provider_pinned(directory):
    text = (ROOT / directory / "versions.tf").read_text()
    assert re.search(r'source\s*=\s*"hashicorp/aws"', text)
    assert re.search(r'version\s*=\s*">=\s*5\.\d+, < 7\.0"', text)
