"""docker-compose.yml: the local stack must come up in the right order, first time."""

from __future__ import annotations

import json
import re

import yaml

from conftest import ROOT

QUEUE_URL = "http://localstack:4566/000000000000/fleetwatch-telemetry"
TOPIC_ARN = "arn:aws:sns:us-east-1:000000000000:fleetwatch-alerts"
FLEETWATCH_IMAGE_SERVICES = ("bootstrap", "worker", "simulator")
LOCALSTACK_IMAGE = "localstack/localstack:4.4.0"

# The metric names the worker exports, read from their one home, src/metrics.rs,
# so a dashboard panel cannot name a metric that does not exist.
KNOWN_METRICS = set(
    re.findall(r'pub const [A-Z_]+: &str = "(fleetwatch_[a-z_]+)";', (ROOT / "src/metrics.rs").read_text())
)
HISTOGRAMS = {m for m in KNOWN_METRICS if m.endswith("_seconds")}


def env(service: dict) -> dict[str, str]:
    e = service.get("environment", {})
    if isinstance(e, list):
        e = dict(item.split("=", 1) for item in e)
    return {k: str(v) for k, v in e.items()}


def depends(service: dict) -> dict[str, str]:
    d = service.get("depends_on", {})
    assert isinstance(d, dict), "depends_on must use the long form with conditions"
    return {name: spec["condition"] for name, spec in d.items()}


def seconds(duration: str) -> float:
    total = 0.0
    for value, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration):
        total += float(value) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def healthcheck_cmd(service: dict) -> str:
    hc = service.get("healthcheck")
    assert hc, "missing healthcheck"
    test = hc["test"]
    return " ".join(test) if isinstance(test, list) else test


def test_services_present(compose):
    assert set(compose["services"]) == {
        "localstack", "encryption", "bootstrap", "worker", "prometheus", "grafana", "simulator"
    }


def test_images_are_pinned(compose):
    for name, svc in compose["services"].items():
        image = svc.get("image", "")
        assert image, f"{name} has no image"
        if name in FLEETWATCH_IMAGE_SERVICES:
            assert image == "fleetwatch:dev", name
            continue
        repo, _, tag = image.rpartition(":")
        assert repo and re.match(r"v?\d+\.\d+", tag), f"{name}: image {image!r} not pinned to a version"


def test_one_service_builds_the_image_the_others_run_it(compose):
    """Several services building one tag at once is a known intermittent failure."""
    builders = [n for n, svc in compose["services"].items() if "build" in svc]
    assert builders == ["bootstrap"]
    build = compose["services"]["bootstrap"]["build"]
    assert build["context"] == "." and build.get("dockerfile", "Dockerfile") == "Dockerfile"
    for name in FLEETWATCH_IMAGE_SERVICES:
        if name == "bootstrap":
            continue
        svc = compose["services"][name]
        assert svc["pull_policy"] == "never", f"{name} must not try to pull the locally built image"
    # Every service that runs the image starts after bootstrap, so after the build.
    assert "bootstrap" in depends(compose["services"]["worker"])
    assert "worker" in depends(compose["services"]["simulator"])


def test_fleetwatch_containers_have_read_only_root(compose):
    """As on ECS (readonlyRootFilesystem, /tmp scratch volume)."""
    for name in FLEETWATCH_IMAGE_SERVICES:
        svc = compose["services"][name]
        assert svc.get("read_only") is True, name
        assert "/tmp" in svc.get("tmpfs", []), name


def test_resources_are_encrypted_with_a_kms_key_before_bootstrap(compose):
    enc = compose["services"]["encryption"]
    assert enc["image"] == LOCALSTACK_IMAGE == compose["services"]["localstack"]["image"]
    assert depends(enc) == {"localstack": "service_healthy"}
    assert str(enc.get("restart", "no")) == "no"
    script_mount = next(v for v in enc["volumes"] if v.split(":")[1] == enc["entrypoint"][-1])
    script = ROOT / script_mount.split(":")[0]
    assert script.is_file() and script.stat().st_mode & 0o111, f"{script} must exist and be executable"
    text = script.read_text()
    assert "set -euo pipefail" in text
    for needed in (
        "kms create-key", "put-bucket-encryption", "aws:kms",
        "KmsMasterKeyId=", "--sse-specification", "SSEType=KMS",
        "--attribute-name KmsMasterKeyId", "AttributeName=expires_at",
        # read back, so a setting LocalStack ignored stops the stack
        "get-bucket-encryption", "get-queue-attributes", "SSEDescription", "get-topic-attributes",
    ):
        assert needed in text, needed
    # The same resource names for the encryption step and bootstrap.
    names = ("FLEETWATCH_BUCKET", "FLEETWATCH_QUEUE_NAME", "FLEETWATCH_TABLE", "FLEETWATCH_TOPIC_NAME")
    bs = env(compose["services"]["bootstrap"])
    for n in names:
        assert env(enc)[n] == bs[n], n
    w = env(compose["services"]["worker"])
    assert w["FLEETWATCH_TABLE"] == bs["FLEETWATCH_TABLE"]
    assert w["FLEETWATCH_QUEUE_URL"].rsplit("/", 1)[1] == bs["FLEETWATCH_QUEUE_NAME"]
    assert w["FLEETWATCH_ALERT_TOPIC_ARN"].rsplit(":", 1)[1] == bs["FLEETWATCH_TOPIC_NAME"]
    # The key schema the worker's bootstrap would create.
    assert "AttributeName=device_id,KeyType=HASH AttributeName=timestamp,KeyType=RANGE" in text


def test_localstack(compose):
    ls = compose["services"]["localstack"]
    services = set(env(ls)["SERVICES"].split(","))
    assert {"s3", "sqs", "dynamodb", "sns", "kms"} <= services
    assert "/_localstack/health" in healthcheck_cmd(ls)
    # Queue URLs must come back in the form the worker is given.
    assert env(ls)["LOCALSTACK_HOST"] == "localstack:4566"
    assert env(ls)["SQS_ENDPOINT_STRATEGY"] == "off"
    assert any("4566:4566" in str(p) for p in ls["ports"])


def test_bootstrap_runs_once_after_localstack_is_healthy(compose):
    bs = compose["services"]["bootstrap"]
    assert bs["command"] == ["bootstrap"]
    assert depends(bs) == {"localstack": "service_healthy", "encryption": "service_completed_successfully"}
    assert env(bs)["AWS_ENDPOINT_URL"] == "http://localstack:4566"
    assert env(bs)["FLEETWATCH_BUCKET"] == "fleetwatch-telemetry"
    assert str(bs.get("restart", "no")) == "no"


def test_worker_order_and_health(compose):
    w = compose["services"]["worker"]
    assert w["command"] == ["worker"]
    assert depends(w) == {
        "localstack": "service_healthy",
        "bootstrap": "service_completed_successfully",
    }
    assert healthcheck_cmd(w) == "CMD /usr/local/bin/fleetwatch healthcheck"
    # SIGTERM drain takes up to FLEETWATCH_SHUTDOWN_GRACE, then the worker returns
    # the rest to the queue: more than grace + 5 s.
    assert seconds(w["stop_grace_period"]) > seconds(env(w)["FLEETWATCH_SHUTDOWN_GRACE"]) + 5
    assert any(str(p).endswith("9090:9090") for p in w["ports"])


def test_worker_environment(compose):
    e = env(compose["services"]["worker"])
    assert e["AWS_ENDPOINT_URL"] == "http://localstack:4566"
    assert e["AWS_REGION"] == "us-east-1"
    assert e["AWS_ACCESS_KEY_ID"] and e["AWS_SECRET_ACCESS_KEY"]
    assert e["FLEETWATCH_QUEUE_URL"] == QUEUE_URL
    assert e["FLEETWATCH_TABLE"] == "fleetwatch-readings"
    assert e["FLEETWATCH_ALERT_TOPIC_ARN"] == TOPIC_ARN
    assert e["FLEETWATCH_INFERENCE"] in {"embedded", "sagemaker", "none"}
    assert e["FLEETWATCH_METRICS_ADDR"] == "0.0.0.0:9090"
    assert e["FLEETWATCH_LOG_FORMAT"] in {"text", "json"}
    # The region in the topic ARN matches the configured region.
    assert TOPIC_ARN.split(":")[3] == e["AWS_REGION"]
    # Readings expire (the retention path is exercised).
    assert re.fullmatch(r"[1-9]\d*(ms|s|m|h|d)", e["FLEETWATCH_READING_TTL"])


def test_worker_visibility_timeout_matches_the_queue(compose):
    """The queue's visibility timeout and the worker's must agree (in Terraform one
    variable feeds both); bootstrap gives the compose queue its value."""
    source = (ROOT / "src/bootstrap.rs").read_text()
    m = re.search(r'QueueAttributeName::VisibilityTimeout,\s*"(\d+)"', source)
    assert m, "the queue's VisibilityTimeout is no longer set where this test looks (src/bootstrap.rs)"
    w = env(compose["services"]["worker"])
    assert seconds(w["FLEETWATCH_VISIBILITY_TIMEOUT"]) == int(m.group(1))


def test_prometheus_scrapes_worker(compose):
    p = compose["services"]["prometheus"]
    assert depends(p) == {"worker": "service_healthy"}
    assert "/-/ready" in healthcheck_cmd(p)
    mounts = [v.split(":") for v in p["volumes"]]
    config = next(src for src, dst, *_ in mounts if dst == "/etc/prometheus/prometheus.yml")
    cfg = yaml.safe_load((ROOT / config).read_text())
    targets = [t for job in cfg["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    assert "worker:9090" in targets
    job = next(j for j in cfg["scrape_configs"] if any("worker:9090" in sc["targets"] for sc in j["static_configs"]))
    assert job.get("metrics_path", "/metrics") == "/metrics"


def test_grafana_provisioning(compose):
    g = compose["services"]["grafana"]
    assert depends(g) == {"prometheus": "service_healthy"}
    assert "/api/health" in healthcheck_cmd(g)
    mounts = {dst: src for src, dst, *_ in (v.split(":") for v in g["volumes"])}
    prov = ROOT / mounts["/etc/grafana/provisioning"]
    dash_dir = ROOT / mounts["/var/lib/grafana/dashboards"]
    ds = yaml.safe_load((prov / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    assert ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((prov / "dashboards" / "fleetwatch.yml").read_text())["providers"]
    assert providers[0]["options"]["path"] == "/var/lib/grafana/dashboards"
    dash = json.loads((dash_dir / "fleetwatch.json").read_text())
    for panel in dash["panels"]:
        assert panel["datasource"]["uid"] == ds["uid"], panel["title"]


def dashboard_exprs() -> list[str]:
    dash = json.loads((ROOT / "deploy/grafana/dashboards/fleetwatch.json").read_text())
    return [t["expr"] for p in dash["panels"] for t in p["targets"]]


def test_dashboard_uses_only_real_metrics():
    exprs = dashboard_exprs()
    assert len(exprs) >= 10
    for expr in exprs:
        for name in re.findall(r"\bfleetwatch_[a-z_]+", expr):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert base in KNOWN_METRICS, f"unknown metric {name} in {expr}"
            if base in HISTOGRAMS:
                assert name.endswith("_bucket") or name.endswith(("_sum", "_count")), expr


def test_dashboard_covers_the_issue():
    joined = "\n".join(dashboard_exprs())
    for needed in (
        "fleetwatch_records_total",                 # throughput
        "fleetwatch_records_rejected_total",        # rejected lines by reason
        "fleetwatch_queue_lag_seconds_bucket",      # queue lag
        "fleetwatch_messages_in_flight",            # in-flight messages
        "fleetwatch_inference_duration_seconds_bucket",  # inference latency
        "fleetwatch_dynamodb_unprocessed_retries_total",  # DynamoDB retries
        "fleetwatch_alerts_published_total",        # alerts
    ):
        assert needed in joined, needed
    assert re.search(r"sum by \(reason\) \(rate\(fleetwatch_records_rejected_total", joined)


def test_simulator_is_demo_only_and_uploads_to_the_bucket(compose):
    s = compose["services"]["simulator"]
    assert s["profiles"] == ["demo"]
    cmd = s["command"]
    assert cmd[0] == "simulate"
    upload = next(a.split("=", 1)[1] for a in cmd if a.startswith("--upload="))
    assert upload.startswith("s3://fleetwatch-telemetry/")
    assert env(s)["AWS_ENDPOINT_URL"] == "http://localstack:4566"
    assert depends(s) == {"worker": "service_healthy"}


def test_long_running_services_have_healthchecks(compose):
    for name in ("localstack", "worker", "prometheus", "grafana"):
        hc = compose["services"][name]["healthcheck"]
        assert hc["test"] and hc.get("interval"), name


def test_host_ports_unique_and_local(compose):
    seen = set()
    for name, svc in compose["services"].items():
        for p in svc.get("ports", []):
            parts = str(p).split(":")
            assert len(parts) == 3 and parts[0] == "127.0.0.1", f"{name}: bind {p} to 127.0.0.1"
            assert parts[1] not in seen, f"host port {parts[1]} used twice"
            seen.add(parts[1])
