"""Offline tests of the SageMaker path (issue 5 §4).

    model-training/.venv/bin/python -m pytest model-training/test_sagemaker_package.py

(``model-training/.venv/bin/pip install -r model-training/requirements.txt -r model-training/requirements-dev.txt``
first.) Nothing here calls AWS: the container's request handling is
re-implemented in ``sagemaker_csv.py`` from the container's source, and the
deploy flow runs against botocore's Stubber, which checks every call's
parameters against the real SageMaker/S3 API models.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import check_endpoint  # noqa: E402
import deploy_sagemaker  # noqa: E402
import features  # noqa: E402
import package_sagemaker  # noqa: E402
import sagemaker_csv  # noqa: E402

MODEL = os.path.join(ROOT, "model-artifacts", "fleetwatch.json")
META = os.path.join(ROOT, "model-artifacts", "fleetwatch.meta.json")
PARITY = os.path.join(ROOT, "model-artifacts", "fleetwatch.parity.json")
RUST_FEATURES = os.path.join(ROOT, "src", "inference", "features.rs")
PY = sys.executable
ROLE = "arn:aws:iam::123456789012:role/fleetwatch-sagemaker"


@pytest.fixture(scope="module")
def meta():
    with open(META, encoding="utf-8") as fh:
        return json.load(fh)


@pytest.fixture(scope="module")
def parity():
    with open(PARITY, encoding="utf-8") as fh:
        return json.load(fh)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("pkg") / "model.tar.gz")
    sha = package_sagemaker.build_artifact(MODEL, out)
    return out, sha


@pytest.fixture(scope="module")
def booster(artifact, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("opt_ml_model"))
    package_sagemaker.extract_like_sagemaker(artifact[0], d)
    b, fmt = package_sagemaker.load_like_container(d)
    assert fmt == "xgb_format"
    return b


# ---------------------------------------------------------------- packaging


def test_archive_holds_exactly_xgboost_model_with_the_json_bytes(artifact):
    path, sha = artifact
    with tarfile.open(path, "r:gz") as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["xgboost-model"]
        m = members[0]
        assert m.isreg() and m.mode == 0o644 and m.uid == 0 and m.gid == 0
        data = tar.extractfile(m).read()
    with open(MODEL, "rb") as fh:
        assert data == fh.read()  # the JSON model itself, unchanged
    assert data.lstrip().startswith(b"{")
    assert hashlib.sha256(open(path, "rb").read()).hexdigest() == sha


def test_archive_is_reproducible(artifact, tmp_path):
    again = str(tmp_path / "again.tar.gz")
    assert package_sagemaker.build_artifact(MODEL, again) == artifact[1]


def test_container_loads_the_json_by_content_not_name(artifact, tmp_path):
    # The container tries pickle first: a JSON model must fail that and load
    # with Booster.load_model from a file named "xgboost-model" (no .json).
    import pickle

    package_sagemaker.extract_like_sagemaker(artifact[0], str(tmp_path))
    with pytest.raises(Exception):
        pickle.load(open(tmp_path / "xgboost-model", "rb"))
    booster, fmt = package_sagemaker.load_like_container(str(tmp_path))
    assert fmt == "xgb_format"
    assert booster.num_boosted_rounds() == 150


def test_packaged_model_reproduces_recorded_probabilities(artifact):
    summary = package_sagemaker.verify_artifact(artifact[0], META, PARITY)
    assert summary["rows"] == 200 and summary["rows_with_missing"] > 50
    assert summary["max_abs_diff_direct"] <= 1e-6
    assert summary["max_abs_diff_csv_path"] <= 1e-6


def test_package_check_rejects_an_extra_file(tmp_path):
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        tar.add(MODEL, arcname="xgboost-model")
        tar.add(META, arcname="fleetwatch.meta.json")
    with pytest.raises(AssertionError, match="exactly"):
        package_sagemaker.verify_artifact(str(bad), META, PARITY)


def test_package_check_rejects_a_different_model(tmp_path, parity):
    import xgboost as xgb

    rows = np.array([[np.nan if v is None else v for v in r] for r in parity["rows"]], dtype=np.float32)
    other = xgb.train(
        {"objective": "binary:logistic", "max_depth": 2},
        xgb.DMatrix(rows, label=(np.arange(len(rows)) % 2), feature_names=features.FEATURE_NAMES),
        3,
    )
    path = str(tmp_path / "other.json")
    other.save_model(path)
    out = str(tmp_path / "other.tar.gz")
    package_sagemaker.build_artifact(path, out)
    with pytest.raises(AssertionError, match="differ"):
        package_sagemaker.verify_artifact(out, META, PARITY)


# ---------------------------------------------------------------- CSV rows


def test_feature_order_is_the_trained_order_everywhere(meta, parity, booster):
    rust = open(RUST_FEATURES, encoding="utf-8").read()
    block = re.search(r"pub const FEATURE_NAMES: &\[&str\] = &\[(.*?)\];", rust, re.S).group(1)
    rust_names = re.findall(r'"([^"]+)"', block)
    assert rust_names == features.FEATURE_NAMES  # the worker's CSV columns
    assert meta["feature_names"] == features.FEATURE_NAMES  # what train.py trained on
    assert parity["feature_names"] == features.FEATURE_NAMES
    assert list(booster.feature_names) == features.FEATURE_NAMES  # inside the served model
    assert booster.num_features() == meta["n_features"] == 19


def test_csv_row_matches_the_worker_test_vectors():
    # src/inference/features.rs, test csv_rows_follow_the_sagemaker_contract
    assert sagemaker_csv.csv_row([1.0, float("nan"), 0.1, -2.5, float("inf"), 1e-7]) == "1,,0.1,-2.5,,0.0000001"
    assert sagemaker_csv.csv_row([float("nan"), float("nan")]) == ","
    assert sagemaker_csv.csv_row([]) == ""
    # Rust Display for f32: shortest digits, positional, no ".0"
    assert sagemaker_csv.csv_row([102.5, 3.0, -0.0, 1e20, None]) == "102.5,3,-0,100000000000000000000,"
    assert sagemaker_csv.format_value(np.float32(12.6375)) == "12.6375"
    assert sagemaker_csv.format_value(np.float32(1.0909091)) == "1.0909091"


def _shortest_digits(v: np.float32) -> int:
    """Fewest significant digits whose decimal reads back as the same f32
    (found by trying, independently of the formatter)."""
    for d in range(1, 10):
        with np.errstate(over="ignore"):  # 3.4e38 rounded to 1 digit overflows f32
            if np.float32(float(f"{float(v):.{d - 1}e}")) == v:
                return d
    raise AssertionError(v)


def _significant_digits(s: str) -> int:
    digits = s.lstrip("-").replace(".", "").lstrip("0").rstrip("0")
    return max(len(digits), 1)


def _check_cell(v: np.float32) -> None:
    s = sagemaker_csv.format_value(v)
    assert re.fullmatch(r"-?\d+(\.\d+)?", s), s  # no exponent, no "inf"/"nan"
    assert not s.endswith(".0")
    # The container parses float64, DMatrix narrows to float32: same f32.
    assert np.float32(np.float64(s)) == v, (v, s)
    # Python's own float() and numpy's string parsing agree.
    assert np.array([s]).astype(np.float64)[0] == float(s)
    if v != 0:
        assert _significant_digits(s) == _shortest_digits(v), (v, s)


def test_parity_values_round_trip_as_shortest_f32(parity):
    n = 0
    for row in parity["rows"] + [f for fx in parity["feature_fixture"] for f in fx["features"]]:
        for v in row:
            if v is not None:
                f = np.float32(v)
                assert float(f) == v  # the recorded values are f32 values
                _check_cell(f)
                n += 1
    assert n > 3000


def test_random_f32_values_round_trip():
    rng = np.random.default_rng(5)
    bits = rng.integers(0, 2**32, 20000, dtype=np.uint64).astype(np.uint32)
    values = bits.view(np.float32)
    values = values[np.isfinite(values)]
    edge = np.array([np.finfo(np.float32).max, np.finfo(np.float32).tiny, 1.4e-45, 16777217, 0.3, 2.675], np.float32)
    for v in np.concatenate([values, edge, -edge]):
        _check_cell(v)


def test_container_decodes_worker_rows_to_the_same_f32_matrix(parity):
    rows = np.array([[np.nan if v is None else v for v in r] for r in parity["rows"]], dtype=np.float32)
    lines = sagemaker_csv.csv_rows(rows)
    assert all(line.count(",") == 18 for line in lines)  # 19 cells, no header
    assert lines[-1] == "," * 18  # the all-missing row: empty cells only
    # Every row as the first line of a request: the container sniffs its
    # delimiter from the first line only.
    for i in range(len(lines)):
        assert sagemaker_csv.container_delimiter(lines[i] + "\n" + lines[0]) == ","
    (body, n), = sagemaker_csv.split_payloads(lines)
    assert n == len(rows) and body.endswith("\n") and not body.startswith("speed")
    decoded = sagemaker_csv.container_csv_to_matrix(body.encode()).astype(np.float32)
    assert decoded.shape == rows.shape
    assert np.array_equal(np.isnan(decoded), np.isnan(rows))
    assert np.array_equal(decoded[~np.isnan(rows)], rows[~np.isnan(rows)])


def test_feature_fixture_rows_score_the_same_through_csv(parity, booster):
    # Features computed from JSONL (the worker's twin features.py computes
    # them identically, checked by the Rust tests against this fixture).
    import xgboost as xgb

    for fx in parity["feature_fixture"]:
        X = np.array([[np.nan if v is None else v for v in r] for r in fx["features"]], dtype=np.float32)
        direct = booster.predict(xgb.DMatrix(X), validate_features=False)
        scores = []
        for body, _ in sagemaker_csv.split_payloads(sagemaker_csv.csv_rows(X), max_rows=137):
            answer = sagemaker_csv.container_response(sagemaker_csv.container_predict(booster, body.encode()))
            scores += sagemaker_csv.parse_scores(answer)
        assert np.array_equal(np.array(scores, dtype=np.float32), direct)


def test_payload_splitting_follows_the_worker():
    rows = [f"{i},1,2" for i in range(1200)]
    assert [n for _, n in sagemaker_csv.split_payloads(rows, 500, 10**9)] == [500, 500, 200]
    small = sagemaker_csv.split_payloads(rows, 500, 100)
    assert all(len(b) <= 100 for b, _ in small)
    assert sum(n for _, n in small) == 1200
    # 500 worst-case rows stay far below serverless' 4 MB request limit.
    worst = sagemaker_csv.csv_row([np.float32(-1.1754942e-38)] * 19)
    assert len(worst) * 500 < 4 * 10**6


def test_scores_are_read_like_the_worker():
    assert sagemaker_csv.parse_scores("0.1,0.9") == [0.1, 0.9]
    assert sagemaker_csv.parse_scores("0.1\n0.9\n") == [0.1, 0.9]
    assert sagemaker_csv.parse_scores('{"predictions":[{"score":0.2},{"score":0.7}]}') == [0.2, 0.7]
    assert sagemaker_csv.parse_scores("4.9e-05") == [4.9e-05]  # str(float) may use an exponent
    with pytest.raises(ValueError):
        sagemaker_csv.parse_scores("1.5")


# ---------------------------------------------------------------- check_endpoint


def test_check_endpoint_passes_against_the_emulated_container(parity, meta, booster):
    sent = []

    def invoke(body: bytes) -> str:
        sent.append(body)
        return sagemaker_csv.container_response(sagemaker_csv.container_predict(booster, body))

    lines = []
    assert check_endpoint.compare(parity, meta, invoke, out=lines.append) == 0
    assert len(sent) == 1 and sent[0].decode().count("\n") == 200
    assert sent[0].decode().splitlines() == sagemaker_csv.csv_rows(parity["rows"])
    assert json.loads(lines[0])["max_abs_diff"] <= 1e-6


def test_check_endpoint_fails_on_wrong_scores(parity, meta, booster):
    def shifted(body: bytes) -> str:
        p = sagemaker_csv.container_predict(booster, body)
        p[3] = min(1.0, p[3] + 1e-3)
        return sagemaker_csv.container_response(p)

    assert check_endpoint.compare(parity, meta, shifted, out=lambda *_: None) == 1
    assert check_endpoint.compare(parity, meta, lambda b: "0.5", out=lambda *_: None) == 1


def test_check_endpoint_print_body_is_the_worker_format(parity):
    out = subprocess.run(
        [PY, os.path.join(HERE, "check_endpoint.py"), "--endpoint", "x", "--print-body"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert out.splitlines() == sagemaker_csv.csv_rows(parity["rows"])
    assert out.splitlines()[0] == "0,0,20.5,21.1,0,12.65,0.04,38.7,,-2.56,21.55,21.5,,12.6375,0.0125,0.0325,0.04,0,4"


# ---------------------------------------------------------------- deploy


def _dry_run(*extra):
    cmd = [PY, os.path.join(HERE, "deploy_sagemaker.py"), "--s3", "s3://fleet-models/fleetwatch/models/",
           "--role-arn", ROLE, "--dry-run", *extra]
    res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "AWS_REGION": "", "AWS_DEFAULT_REGION": ""})
    return res


def _plan(res):
    assert res.returncode == 0, res.stderr
    text = res.stdout
    return json.loads(text[: text.index("\n}\n") + 2]), text


def test_dry_run_serverless(artifact, meta):
    plan, text = _plan(_dry_run("--region", "eu-west-1", "--serverless", "--memory", "2048", "--max-concurrency", "5"))
    sha = artifact[1]
    url = f"s3://fleet-models/fleetwatch/models/fleetwatch-xgb-v1/1.0.0/{sha[:12]}/model.tar.gz"
    calls = plan["calls"]
    assert plan["artifact"]["sha256"] == sha
    assert calls["s3.put_object"]["Bucket"] == "fleet-models"
    assert calls["s3.put_object"]["Key"] == url.split("fleet-models/", 1)[1]
    model = calls["sagemaker.create_model"]
    assert model["ModelName"] == f"fleetwatch-xgb-v1-1-0-0-{sha[:8]}"
    assert model["PrimaryContainer"] == {
        "Image": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1",
        "Mode": "SingleModel",
        "ModelDataUrl": url,
    }
    assert model["ExecutionRoleArn"] == ROLE and model["EnableNetworkIsolation"] is True
    config = calls["sagemaker.create_endpoint_config"]
    assert config["ProductionVariants"] == [{
        "VariantName": "primary",
        "ModelName": model["ModelName"],
        "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
    }]
    assert "KmsKeyId" not in config
    assert config["EndpointConfigName"].startswith(model["ModelName"] + "-")
    for name in (model["ModelName"], config["EndpointConfigName"], plan["endpoint_name"]):
        assert deploy_sagemaker.NAME_RE.match(name) and len(name) <= 63
    assert calls["sagemaker.create_endpoint"]["EndpointConfigName"] == config["EndpointConfigName"]
    assert calls["sagemaker.update_endpoint"] == {
        "EndpointName": "fleetwatch-maintenance", "EndpointConfigName": config["EndpointConfigName"]}
    assert "FLEETWATCH_INFERENCE=sagemaker\n" in text
    assert "FLEETWATCH_SAGEMAKER_ENDPOINT=fleetwatch-maintenance\n" in text
    assert f"FLEETWATCH_SAGEMAKER_THRESHOLD={meta['threshold']}\n" in text


def test_dry_run_real_time_gets_its_own_config():
    serverless, _ = _plan(_dry_run("--region", "us-east-1"))
    rt, _ = _plan(_dry_run("--region", "us-east-1", "--instance-type", "ml.m5.large", "--instances", "1",
                           "--endpoint-name", "fw-rt"))
    variant = rt["calls"]["sagemaker.create_endpoint_config"]["ProductionVariants"][0]
    assert variant == {"VariantName": "primary", "ModelName": rt["model_name"], "InstanceType": "ml.m5.large",
                       "InitialInstanceCount": 1, "InitialVariantWeight": 1.0}
    assert rt["calls"]["sagemaker.create_model"]["PrimaryContainer"]["Image"] == (
        "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1")
    assert rt["model_name"] == serverless["model_name"]  # same model ...
    assert rt["endpoint_config_name"] != serverless["endpoint_config_name"]  # ... new config
    assert rt["worker_env"]["FLEETWATCH_SAGEMAKER_ENDPOINT"] == "fw-rt"


@pytest.mark.parametrize("extra, message", [
    (["--memory", "1500"], "--memory"),
    (["--memory", "8192"], "--memory"),
    (["--max-concurrency", "0"], "--max-concurrency"),
    (["--max-concurrency", "201"], "--max-concurrency"),
    (["--instance-type", "m5.large"], "--instance-type"),
    (["--region", "xx-nowhere-1"], "--image-uri"),
])
def test_dry_run_refuses_bad_settings(extra, message):
    args = ["--region", "eu-west-1", *extra] if "--region" not in extra else extra
    res = _dry_run(*args)
    assert res.returncode != 0 and message in res.stderr


def test_image_uris():
    assert deploy_sagemaker.image_uri("cn-north-1") == (
        "450853457545.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-xgboost:1.7-1")
    assert deploy_sagemaker.image_uri("us-west-2") == (
        "246618743249.dkr.ecr.us-west-2.amazonaws.com/sagemaker-xgboost:1.7-1")


def test_long_names_stay_valid():
    name = deploy_sagemaker.sagemaker_name("a-very-long-model-id-" * 5, "10.20.30", "deadbeef")
    assert len(name) <= 63 and name.endswith("-deadbeef") and deploy_sagemaker.NAME_RE.match(name)


# ---------------------------------------------------------------- deploy against stubbed AWS


@pytest.fixture
def stubbed(monkeypatch):
    boto3 = pytest.importorskip("boto3")
    from botocore.stub import Stubber

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    session = boto3.session.Session(region_name="eu-west-1")
    s3, sm = session.client("s3"), session.client("sagemaker")
    with Stubber(s3) as s3_stub, Stubber(sm) as sm_stub:
        yield s3, sm, s3_stub, sm_stub
        s3_stub.assert_no_pending_responses()
        sm_stub.assert_no_pending_responses()


def _plan_for(artifact, *extra):
    args = deploy_sagemaker.parse_args(["--s3", "s3://fleet-models/fleetwatch/models/", "--role-arn", ROLE,
                                        "--region", "eu-west-1", *extra])
    meta = json.load(open(META, encoding="utf-8"))
    return deploy_sagemaker.build_plan(args, meta, artifact[0], artifact[1], os.path.getsize(artifact[0]))


def test_first_deploy_creates_everything(artifact, stubbed):
    from botocore.stub import ANY

    s3, sm, s3_stub, sm_stub = stubbed
    plan = _plan_for(artifact)
    calls = plan["calls"]
    put = calls["s3.put_object"]
    s3_stub.add_client_error("head_object", "404", "Not Found", 404,
                             expected_params={"Bucket": put["Bucket"], "Key": put["Key"]})
    s3_stub.add_response("put_object", {}, {**put, "Body": ANY})
    sm_stub.add_client_error("describe_model", "ValidationException", "Could not find model \"x\".",
                             expected_params={"ModelName": plan["model_name"]})
    sm_stub.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:eu-west-1:123456789012:model/x"},
                         calls["sagemaker.create_model"])
    sm_stub.add_client_error("describe_endpoint_config", "ValidationException",
                             "Could not find endpoint configuration \"x\".",
                             expected_params={"EndpointConfigName": plan["endpoint_config_name"]})
    sm_stub.add_response("create_endpoint_config", {"EndpointConfigArn": "arn:aws:sagemaker:eu-west-1:1:endpoint-config/x"},
                         calls["sagemaker.create_endpoint_config"])
    sm_stub.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint \"x\".",
                             expected_params={"EndpointName": "fleetwatch-maintenance"})
    sm_stub.add_response("create_endpoint", {"EndpointArn": "arn:aws:sagemaker:eu-west-1:1:endpoint/x"},
                         calls["sagemaker.create_endpoint"])
    assert deploy_sagemaker.apply(plan, s3, sm, log=lambda *_: None) == "created"


def _describe_endpoint(config_name, status="InService"):
    import datetime

    t = datetime.datetime(2025, 1, 1)
    return {"EndpointName": "fleetwatch-maintenance", "EndpointArn": "arn:aws:sagemaker:eu-west-1:1:endpoint/f",
            "EndpointConfigName": config_name, "EndpointStatus": status, "CreationTime": t, "LastModifiedTime": t}


def _already_there(plan, s3_stub, sm_stub):
    put = plan["calls"]["s3.put_object"]
    s3_stub.add_response("head_object", {"Metadata": {"sha256": plan["artifact"]["sha256"]}},
                         {"Bucket": put["Bucket"], "Key": put["Key"]})
    sm_stub.add_response("describe_model", {
        "ModelName": plan["model_name"], "ExecutionRoleArn": ROLE,
        "ModelArn": "arn:aws:sagemaker:eu-west-1:1:model/x", "CreationTime": __import__("datetime").datetime(2025, 1, 1),
    }, {"ModelName": plan["model_name"]})


def test_new_version_updates_the_endpoint(artifact, stubbed):
    s3, sm, s3_stub, sm_stub = stubbed
    plan = _plan_for(artifact, "--instance-type", "ml.m5.large")
    _already_there(plan, s3_stub, sm_stub)
    sm_stub.add_client_error("describe_endpoint_config", "ValidationException",
                             "Could not find endpoint configuration \"x\".")
    sm_stub.add_response("create_endpoint_config", {"EndpointConfigArn": "arn:aws:sagemaker:eu-west-1:1:endpoint-config/x"},
                         plan["calls"]["sagemaker.create_endpoint_config"])
    sm_stub.add_response("describe_endpoint", _describe_endpoint("fleetwatch-xgb-v1-0-9-0-00000000-11111111"))
    sm_stub.add_response("update_endpoint", {"EndpointArn": "arn:aws:sagemaker:eu-west-1:1:endpoint/f"},
                         plan["calls"]["sagemaker.update_endpoint"])
    assert deploy_sagemaker.apply(plan, s3, sm, log=lambda *_: None) == "updated"


def test_rerun_changes_nothing(artifact, stubbed):
    s3, sm, s3_stub, sm_stub = stubbed
    plan = _plan_for(artifact)
    _already_there(plan, s3_stub, sm_stub)
    sm_stub.add_response("describe_endpoint_config", {
        "EndpointConfigName": plan["endpoint_config_name"], "EndpointConfigArn": "arn:aws:sagemaker:eu-west-1:1:endpoint-config/x",
        "ProductionVariants": plan["calls"]["sagemaker.create_endpoint_config"]["ProductionVariants"],
        "CreationTime": __import__("datetime").datetime(2025, 1, 1),
    }, {"EndpointConfigName": plan["endpoint_config_name"]})
    sm_stub.add_response("describe_endpoint", _describe_endpoint(plan["endpoint_config_name"]))
    assert deploy_sagemaker.apply(plan, s3, sm, log=lambda *_: None) == "unchanged"


def test_upload_only_touches_s3_alone(artifact, stubbed):
    from botocore.stub import ANY

    s3, sm, s3_stub, sm_stub = stubbed
    plan = _plan_for(artifact, "--upload-only")
    put = plan["calls"]["s3.put_object"]
    s3_stub.add_response("head_object", {"Metadata": {"sha256": "an-older-artifact"}},
                         {"Bucket": put["Bucket"], "Key": put["Key"]})
    s3_stub.add_response("put_object", {}, {**put, "Body": ANY})
    assert deploy_sagemaker.apply(plan, s3, sm, log=lambda *_: None, upload_only=True) == "uploaded"
