"""Checks that a deployed SageMaker endpoint gives the embedded model's answers.

    model-training/.venv/bin/python model-training/check_endpoint.py --endpoint fleetwatch-maintenance --region eu-west-1

Sends the rows of ``model-artifacts/fleetwatch.parity.json`` (200 feature rows, about
half with missing values, one all-missing) exactly as the worker sends
readings: ``text/csv``, no header, the features in the metadata's order as
f32 in Rust Display form, an EMPTY cell for a missing value, at most 500
rows / 5 MiB per request, ``Accept: text/csv``. Reads the answers as the
worker does (CSV/newline numbers or ``{"predictions":[{"score":..}]}``) and
compares them with the ``probabilities`` xgboost recorded at training time
(the same figures the embedded backend reproduces within 1e-6).

Exit 0 when every score is within --tolerance (default 1e-5) and every
POSITIVE/NEGATIVE label at the metadata's threshold agrees; 1 on a
mismatch; 2 when the endpoint cannot be called.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import sagemaker_csv  # noqa: E402

DEFAULT_PARITY = os.path.join(ROOT, "model-artifacts", "fleetwatch.parity.json")
DEFAULT_META = os.path.join(ROOT, "model-artifacts", "fleetwatch.meta.json")
TOLERANCE = 1e-5


def request_bodies(parity: dict) -> list[tuple[str, int]]:
    """The parity rows as the worker would send them."""
    return sagemaker_csv.split_payloads(sagemaker_csv.csv_rows(parity["rows"]))


def compare(parity: dict, meta: dict, invoke, tolerance: float = TOLERANCE, out=print) -> int:
    """``invoke(body: bytes) -> str`` calls the endpoint. Returns the exit code."""
    expected = np.array(parity["probabilities"], dtype=np.float64)
    if meta["feature_names"] != parity["feature_names"]:
        out("the parity rows' feature names differ from the metadata's")
        return 1
    scores: list[float] = []
    for body, n in request_bodies(parity):
        text = invoke(body.encode("utf-8"))
        try:
            got = sagemaker_csv.parse_scores(text)
        except ValueError as e:
            out(f"unreadable answer ({e}): {text[:200]!r}")
            return 1
        if len(got) != n:
            out(f"{len(got)} scores for {n} rows")
            return 1
        scores += got
    got = np.array(scores)
    diff = np.abs(got - expected)
    thr = float(meta["threshold"])
    label_mismatch = int(((got >= thr) != (expected >= thr)).sum())
    worst = int(np.argmax(diff))
    out(
        json.dumps(
            {
                "rows": int(len(got)),
                "max_abs_diff": float(diff.max()),
                "worst_row": worst,
                "worst": {"endpoint": float(got[worst]), "recorded": float(expected[worst])},
                "over_tolerance": int((diff > tolerance).sum()),
                "label_mismatches_at_threshold": label_mismatch,
                "threshold": thr,
                "tolerance": tolerance,
            },
            indent=2,
        )
    )
    if diff.max() > tolerance or label_mismatch:
        out("MISMATCH: the endpoint does not serve the embedded model's answers")
        return 1
    out("OK: the endpoint matches the embedded model")
    return 0


def boto3_invoker(endpoint: str, region: str):
    import boto3
    from botocore.config import Config

    # The worker's settings: 70 s socket timeout, retries on throttling.
    client = boto3.client(
        "sagemaker-runtime",
        region_name=region,
        config=Config(read_timeout=70, retries={"max_attempts": 5, "mode": "adaptive"}),
    )

    def invoke(body: bytes) -> str:
        resp = client.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Accept="text/csv", Body=body)
        return resp["Body"].read().decode("utf-8")

    return invoke


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    ap.add_argument("--parity", default=DEFAULT_PARITY)
    ap.add_argument("--meta", default=DEFAULT_META)
    ap.add_argument("--tolerance", type=float, default=TOLERANCE)
    ap.add_argument("--print-body", action="store_true", help="print the CSV request bodies and exit")
    args = ap.parse_args(argv)
    with open(args.parity, encoding="utf-8") as fh:
        parity = json.load(fh)
    with open(args.meta, encoding="utf-8") as fh:
        meta = json.load(fh)
    if args.print_body:
        for body, _ in request_bodies(parity):
            sys.stdout.write(body)
        return 0
    if not args.region:
        ap.error("--region (or AWS_REGION) is required")
    invoke = boto3_invoker(args.endpoint, args.region)
    try:
        return compare(parity, meta, invoke, args.tolerance)
    except Exception as e:  # botocore errors: endpoint missing, access denied, ModelError ...
        print(f"cannot call endpoint {args.endpoint}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
