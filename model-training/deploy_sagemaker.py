"""Deploys fleetwatch's model to a SageMaker endpoint (built-in XGBoost
1.7-1 container, CSV contract), serverless or real-time. See docs/sagemaker.md.

    model-training/.venv/bin/python model-training/deploy_sagemaker.py \\
        --s3 s3://my-bucket/fleetwatch/models/ \\
        --role-arn arn:aws:iam::123456789012:role/fleetwatch-sagemaker \\
        --region eu-west-1 --serverless --memory 2048 --max-concurrency 5 [--dry-run]

Steps (each skipped when already done, so re-running is safe):

1. package ``model-artifacts/fleetwatch.json`` as ``model.tar.gz`` and check it
   (``package_sagemaker.py``: layout, load, parity scores within 1e-6);
2. upload it to ``s3://bucket/prefix/<model_id>/<version>/<sha12>/model.tar.gz``
   (a new key per artifact: an existing Model's data is never overwritten);
3. ``CreateModel`` ``<model_id>-<version>-<sha8>`` with the region's
   ``sagemaker-xgboost:1.7-1`` image, network isolation on;
4. ``CreateEndpointConfig`` ``<model name>-<hash of the variant>``: a new
   config per model version and serving settings;
5. ``CreateEndpoint``, or ``UpdateEndpoint`` when the endpoint exists and
   serves another config (SageMaker swaps to the new config without
   downtime); nothing when it already serves this one.

``--dry-run`` prints each call's parameters as JSON and calls nothing
(boto3 is not even imported). Finally prints the worker's settings.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import package_sagemaker  # noqa: E402

XGBOOST_IMAGE_VERSION = "1.7-1"
IMAGE_REPOSITORY = "sagemaker-xgboost"

# Registry (account) of the built-in "sagemaker-xgboost" image, version 1.7-1,
# inference, per region. Source: aws/sagemaker-python-sdk,
# src/sagemaker/image_uri_config/xgboost.json ("inference" -> "versions" ->
# "1.7-1" -> "registries"), commit 02ed3cbfd8f1c519f8a829b545bb78a47a538546,
# the table behind `sagemaker.image_uris.retrieve("xgboost", region, "1.7-1")`
# (used here to keep the SDK out of the dependencies). The ISO partitions
# (us-iso*, us-isob*, us-isof*) are left out: pass --image-uri.
XGBOOST_1_7_1_REGISTRIES = {
    "af-south-1": "510948584623",
    "ap-east-1": "651117190479",
    "ap-northeast-1": "354813040037",
    "ap-northeast-2": "366743142698",
    "ap-northeast-3": "867004704886",
    "ap-south-1": "720646828776",
    "ap-south-2": "628508329040",
    "ap-southeast-1": "121021644041",
    "ap-southeast-2": "783357654285",
    "ap-southeast-3": "951798379941",
    "ap-southeast-4": "106583098589",
    "ca-central-1": "341280168497",
    "ca-west-1": "190319476487",
    "cn-north-1": "450853457545",
    "cn-northwest-1": "451049120500",
    "eu-central-1": "492215442770",
    "eu-central-2": "680994064768",
    "eu-north-1": "662702820516",
    "eu-south-1": "978288397137",
    "eu-south-2": "104374241257",
    "eu-west-1": "141502667606",
    "eu-west-2": "764974769150",
    "eu-west-3": "659782779980",
    "il-central-1": "898809789911",
    "me-central-1": "272398656194",
    "me-south-1": "801668240914",
    "sa-east-1": "737474898029",
    "us-east-1": "683313688378",
    "us-east-2": "257758044811",
    "us-gov-east-1": "237065988967",
    "us-gov-west-1": "414596584902",
    "us-west-1": "746614075791",
    "us-west-2": "246618743249",
}

# ProductionVariantServerlessConfig: MemorySizeInMB 1024..6144 in 1 GB steps,
# MaxConcurrency 1..200 (SageMaker API reference).
SERVERLESS_MEMORY_MB = (1024, 2048, 3072, 4096, 5120, 6144)
MAX_CONCURRENCY = 200
NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")  # SageMaker resource names
ROLE_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/\S+$")
DEFAULT_ENDPOINT = "fleetwatch-maintenance"  # = Terraform's "${var.name}-maintenance"
VARIANT = "primary"


def image_uri(region: str) -> str:
    try:
        account = XGBOOST_1_7_1_REGISTRIES[region]
    except KeyError:
        raise SystemExit(
            f"no sagemaker-xgboost:{XGBOOST_IMAGE_VERSION} registry known for region {region!r}; pass --image-uri"
        ) from None
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{domain}/{IMAGE_REPOSITORY}:{XGBOOST_IMAGE_VERSION}"


def slug(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-zA-Z0-9]", "-", text)).strip("-")


def sagemaker_name(*parts: str) -> str:
    """Joins parts into a valid SageMaker name (<= 63 chars); the last part
    (a hash) is always kept whole."""
    head = slug("-".join(parts[:-1]))
    tail = slug(parts[-1])
    head = head[: 63 - len(tail) - 1].rstrip("-")
    name = f"{head}-{tail}" if head else tail
    assert NAME_RE.match(name), name
    return name


def parse_s3(uri: str) -> tuple[str, str]:
    m = re.match(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(.*))?$", uri)
    if not m:
        raise SystemExit(f"--s3 must look like s3://bucket/prefix/, got {uri!r}")
    return m.group(1), (m.group(2) or "").strip("/")


def production_variant(args, model_name: str) -> dict:
    variant = {"VariantName": VARIANT, "ModelName": model_name}
    if args.instance_type:
        variant.update(
            InstanceType=args.instance_type,
            InitialInstanceCount=args.instances,
            InitialVariantWeight=1.0,
        )
    else:
        variant["ServerlessConfig"] = {"MemorySizeInMB": args.memory, "MaxConcurrency": args.max_concurrency}
    return variant


def validate(args) -> None:
    if args.upload_only and not args.role_arn:
        args.role_arn = "arn:aws:iam::000000000000:role/unused-with-upload-only"
    if not args.role_arn or not ROLE_RE.match(args.role_arn):
        raise SystemExit(f"--role-arn must be an IAM role ARN, got {args.role_arn!r}")
    if not NAME_RE.match(args.endpoint_name):
        raise SystemExit(f"--endpoint-name {args.endpoint_name!r} is not a valid SageMaker name")
    if args.instance_type:
        if not args.instance_type.startswith("ml."):
            raise SystemExit(f"--instance-type must be an ml.* type, got {args.instance_type!r}")
        if args.instances < 1:
            raise SystemExit("--instances must be at least 1")
    else:
        if args.memory not in SERVERLESS_MEMORY_MB:
            raise SystemExit(f"--memory must be one of {SERVERLESS_MEMORY_MB} (MB), got {args.memory}")
        if not 1 <= args.max_concurrency <= MAX_CONCURRENCY:
            raise SystemExit(f"--max-concurrency must be 1..{MAX_CONCURRENCY}, got {args.max_concurrency}")


def build_plan(args, meta: dict, artifact: str, sha256: str, size: int) -> dict:
    """Every name and API parameter of the deployment, from the arguments
    and the artifact alone (no AWS call)."""
    bucket, prefix = parse_s3(args.s3)
    key = "/".join(p for p in (prefix, meta["model_id"], meta["version"], sha256[:12], "model.tar.gz") if p)
    model_data_url = f"s3://{bucket}/{key}"
    model_name = sagemaker_name(meta["model_id"], meta["version"], sha256[:8])
    variant = production_variant(args, model_name)
    kms = args.kms_key_arn
    config_params = {"ProductionVariants": [variant]}
    if kms and args.instance_type:
        # Serverless variants have no storage volume and refuse a KmsKeyId.
        config_params["KmsKeyId"] = kms
    config_hash = hashlib.sha256(json.dumps(config_params, sort_keys=True).encode()).hexdigest()[:8]
    config_name = sagemaker_name(model_name, config_hash)
    tags = [
        {"Key": "fleetwatch:model-id", "Value": meta["model_id"]},
        {"Key": "fleetwatch:model-version", "Value": meta["version"]},
        {"Key": "fleetwatch:artifact-sha256", "Value": sha256},
    ]
    put = {
        "Bucket": bucket,
        "Key": key,
        "ContentType": "application/x-gzip",
        "Metadata": {"sha256": sha256, "model-id": meta["model_id"], "model-version": meta["version"]},
    }
    if kms:
        put.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=kms)
    return {
        "region": args.region,
        "artifact": {"path": artifact, "sha256": sha256, "bytes": size},
        "model_data_url": model_data_url,
        "model_name": model_name,
        "endpoint_config_name": config_name,
        "endpoint_name": args.endpoint_name,
        "calls": {
            "s3.put_object": put,
            "sagemaker.create_model": {
                "ModelName": model_name,
                "PrimaryContainer": {
                    "Image": args.image_uri or image_uri(args.region),
                    "Mode": "SingleModel",
                    "ModelDataUrl": model_data_url,
                },
                "ExecutionRoleArn": args.role_arn,
                # The built-in container needs no network at inference time.
                "EnableNetworkIsolation": True,
                "Tags": tags,
            },
            "sagemaker.create_endpoint_config": {"EndpointConfigName": config_name, **config_params, "Tags": tags},
            # Either call, depending on whether the endpoint exists.
            "sagemaker.create_endpoint": {
                "EndpointName": args.endpoint_name,
                "EndpointConfigName": config_name,
                "Tags": tags,
            },
            "sagemaker.update_endpoint": {"EndpointName": args.endpoint_name, "EndpointConfigName": config_name},
        },
        "worker_env": {
            "FLEETWATCH_INFERENCE": "sagemaker",
            "FLEETWATCH_SAGEMAKER_ENDPOINT": args.endpoint_name,
            "FLEETWATCH_SAGEMAKER_THRESHOLD": str(meta["threshold"]),
        },
    }


# ---------------------------------------------------------------- AWS


def _missing(err, *needles: str) -> bool:
    """A ClientError saying the thing does not exist."""
    code = err.response.get("Error", {}).get("Code", "")
    msg = err.response.get("Error", {}).get("Message", "")
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in ("404", "NoSuchKey", "NotFound", "ResourceNotFound"):
        return True
    return code == "ValidationException" and any(n in msg for n in needles) or status == 404


def apply(plan: dict, s3, sm, log=print, wait: bool = False, upload_only: bool = False) -> str:
    """Carries the plan out with boto3 clients; returns what happened to the
    endpoint: "created", "updated" or "unchanged" ("uploaded" with
    ``upload_only``)."""
    from botocore.exceptions import ClientError

    calls = plan["calls"]
    put = calls["s3.put_object"]
    try:
        head = s3.head_object(Bucket=put["Bucket"], Key=put["Key"])
        same = head.get("Metadata", {}).get("sha256") == plan["artifact"]["sha256"]
    except ClientError as e:
        if not _missing(e):
            raise
        same = False
    if same:
        log(f"s3: {plan['model_data_url']} already uploaded")
    else:
        with open(plan["artifact"]["path"], "rb") as fh:
            s3.put_object(Body=fh.read(), **put)
        log(f"s3: uploaded {plan['model_data_url']}")
    if upload_only:
        return "uploaded"

    model = calls["sagemaker.create_model"]
    try:
        sm.describe_model(ModelName=model["ModelName"])
        log(f"model {model['ModelName']} exists")
    except ClientError as e:
        if not _missing(e, "Could not find model"):
            raise
        sm.create_model(**model)
        log(f"model {model['ModelName']} created")

    config = calls["sagemaker.create_endpoint_config"]
    try:
        sm.describe_endpoint_config(EndpointConfigName=config["EndpointConfigName"])
        log(f"endpoint config {config['EndpointConfigName']} exists")
    except ClientError as e:
        if not _missing(e, "Could not find endpoint configuration"):
            raise
        sm.create_endpoint_config(**config)
        log(f"endpoint config {config['EndpointConfigName']} created")

    name = plan["endpoint_name"]
    try:
        current = sm.describe_endpoint(EndpointName=name)
    except ClientError as e:
        if not _missing(e, "Could not find endpoint"):
            raise
        current = None
    if current is None:
        sm.create_endpoint(**calls["sagemaker.create_endpoint"])
        outcome = "created"
    elif current.get("EndpointConfigName") == config["EndpointConfigName"]:
        outcome = "unchanged"
    else:
        status = current.get("EndpointStatus")
        if status not in ("InService", "Failed"):
            raise SystemExit(f"endpoint {name} is {status}; try again when it is InService")
        sm.update_endpoint(**calls["sagemaker.update_endpoint"])
        outcome = "updated"
    log(f"endpoint {name} {outcome} (config {config['EndpointConfigName']})")
    if wait and outcome != "unchanged":
        log(f"waiting for {name} to be InService ...")
        sm.get_waiter("endpoint_in_service").wait(EndpointName=name)
        log(f"endpoint {name} is InService")
    return outcome


# ---------------------------------------------------------------- CLI


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--s3", required=True, help="where to upload: s3://bucket/prefix/")
    ap.add_argument("--role-arn", help="SageMaker execution role (reads the artifact, pulls the image); required")
    ap.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    ap.add_argument("--endpoint-name", default=DEFAULT_ENDPOINT)
    ap.add_argument("--model", default=package_sagemaker.DEFAULT_MODEL, help="XGBoost JSON model")
    ap.add_argument("--artifact", help="an existing model.tar.gz (checked again); default: package --model now")
    kind = ap.add_mutually_exclusive_group()
    kind.add_argument("--serverless", action="store_true", help="serverless endpoint (the default)")
    kind.add_argument("--instance-type", help="real-time endpoint on this instance type, e.g. ml.m5.large")
    ap.add_argument("--memory", type=int, default=2048, help="serverless memory, MB (1024..6144, 1 GB steps)")
    ap.add_argument("--max-concurrency", type=int, default=5, help="serverless max concurrency (1..200)")
    ap.add_argument("--instances", type=int, default=1, help="real-time instance count")
    ap.add_argument("--kms-key-arn", help="KMS key for the S3 object (and a real-time endpoint's volume)")
    ap.add_argument("--image-uri", help="override the sagemaker-xgboost:1.7-1 image URI")
    ap.add_argument("--wait", action="store_true", help="wait until the endpoint is InService")
    ap.add_argument(
        "--upload-only",
        action="store_true",
        help="only upload the artifact (for Terraform's sagemaker_model_data_url); create no SageMaker resource",
    )
    ap.add_argument("--dry-run", action="store_true", help="print the API calls' parameters; call nothing")
    args = ap.parse_args(argv)
    if not args.region:
        ap.error("--region (or AWS_REGION) is required")
    validate(args)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    model_path = os.path.abspath(args.model)
    meta_path = package_sagemaker.meta_path_for(model_path)
    parity_path = package_sagemaker.parity_path_for(model_path)
    with open(meta_path, encoding="utf-8") as fh:
        meta = json.load(fh)
    with tempfile.TemporaryDirectory() as tmp:
        artifact = args.artifact or os.path.join(tmp, "model.tar.gz")
        if not args.artifact:
            package_sagemaker.build_artifact(model_path, artifact)
        try:
            summary = package_sagemaker.verify_artifact(artifact, meta_path, parity_path)
        except AssertionError as e:
            print(f"refusing to deploy: package check failed: {e}", file=sys.stderr)
            return 1
        plan = build_plan(args, meta, artifact, summary["sha256"], summary["bytes"])
        if args.dry_run:
            print(json.dumps({"dry_run": True, **plan}, indent=2))
        else:
            import boto3

            session = boto3.session.Session(region_name=args.region)
            apply(plan, session.client("s3"), session.client("sagemaker"), wait=args.wait, upload_only=args.upload_only)
        if args.upload_only:
            print(f"\n# Terraform: sagemaker_model_data_url = \"{plan['model_data_url']}\"")
            return 0
    print("\n# worker settings (threshold from " + os.path.relpath(meta_path) + ")")
    for k, v in plan["worker_env"].items():
        print(f"{k}={v}")
    print(
        "# the worker's role needs sagemaker:InvokeEndpoint on "
        f"arn:<partition>:sagemaker:{args.region}:<account>:endpoint/{args.endpoint_name}"
    )
    print(
        "# check it: model-training/.venv/bin/python model-training/check_endpoint.py "
        f"--endpoint {args.endpoint_name} --region {args.region}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
