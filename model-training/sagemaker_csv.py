"""The worker's SageMaker CSV contract, in Python, and the container's side of it.

Worker side (``src/inference/features.rs::csv_row`` and
``src/inference/sagemaker.rs``): one row per reading, no header, the 19
features in the metadata's order as ``f32`` written with Rust's ``{}``
Display (the shortest decimal that reads back as the same ``f32``, never
in exponent notation: ``102.5``, ``0.1``, ``0.0000001``), an EMPTY cell for
a missing (non-finite) value, rows joined by ``\\n`` with a trailing
newline; a request carries at most 500 rows and 5 MiB. The answer is one
probability per row, comma/newline separated or JSON.

Container side (SageMaker built-in XGBoost, image ``sagemaker-xgboost:1.7-1``,
``sagemaker_xgboost_container/encoder.py::csv_to_dmatrix`` and the
algorithm-mode handler): the body is UTF-8 decoded and ``strip()``-ed, the
delimiter is sniffed from the first line (``csv.Sniffer``; an alphanumeric
guess falls back to ``,``), every line is split on it, empty cells become
``"nan"``, the whole is parsed as float64 and handed to ``xgb.DMatrix``
(float32 inside, NaN = missing). The answer to ``Accept: text/csv`` is
``",".join(map(str, predictions.tolist()))``.

``container_csv_to_matrix`` and ``container_response`` re-implement that
container code so the packaging check and the tests can run the exact
request/response path offline.
"""

from __future__ import annotations

import csv
import json
import math
from typing import Iterable, Sequence

import numpy as np

# src/inference/sagemaker.rs
MAX_ROWS = 500
MAX_PAYLOAD_BYTES = 5 * 1024 * 1024


def format_value(v) -> str:
    """One cell as the worker writes it: empty if missing/non-finite, else
    the f32 value in Rust ``{}`` Display form (shortest round-trip digits,
    positional notation, no trailing ``.0``)."""
    if v is None:
        return ""
    f = np.float32(v)
    if not np.isfinite(f):
        return ""
    # Dragon4 shortest-unique digits for float32, positional, trailing zeros
    # and a bare "." trimmed: Rust's Display for f32 (also "-0" for -0.0).
    return np.format_float_positional(f, unique=True, trim="-")


def csv_row(values: Sequence) -> str:
    return ",".join(format_value(v) for v in values)


def csv_rows(rows: Iterable[Sequence]) -> list[str]:
    return [csv_row(r) for r in rows]


def split_payloads(rows: Sequence[str], max_rows: int = MAX_ROWS, max_bytes: int = MAX_PAYLOAD_BYTES):
    """Request bodies as the worker groups them: ``[(body, n_rows), ...]``,
    each row followed by ``\\n`` (``sagemaker.rs::split_payloads``)."""
    payloads, body, n = [], [], 0
    size = 0
    for row in rows:
        row_bytes = len(row.encode("utf-8"))
        if n > 0 and (n == max_rows or size + row_bytes + 1 > max_bytes):
            payloads.append(("".join(body), n))
            body, n, size = [], 0, 0
        body.append(row + "\n")
        size += row_bytes + 1
        n += 1
    if n > 0:
        payloads.append(("".join(body), n))
    return payloads


def parse_scores(text: str) -> list[float]:
    """The worker's reading of a response (``sagemaker.rs::parse_scores``):
    CSV/newline numbers, or JSON ``{"predictions": [{"score": x} | x, ...]}``
    or a bare array; every score must be a probability."""
    t = text.strip()
    if t.startswith("{") or t.startswith("["):
        value = json.loads(t)
        items = value if isinstance(value, list) else value.get("predictions")
        if not isinstance(items, list):
            raise ValueError("JSON without a `predictions` array")
        scores = []
        for p in items:
            s = p.get("score", p) if isinstance(p, dict) else p
            if isinstance(s, bool) or not isinstance(s, (int, float)):
                raise ValueError("a prediction without a numeric score")
            scores.append(float(s))
    else:
        scores = [float(s.strip()) for s in t.replace("\n", ",").split(",") if s.strip()]
    for s in scores:
        if not (0.0 <= s <= 1.0):
            raise ValueError(f"score {s} is not a probability")
    return scores


# ---------------------------------------------------------------- container side


def container_delimiter(csv_string: str) -> str:
    """``encoder.csv_to_dmatrix``: sniff the first line (first 512 chars)."""
    sniffed = csv.Sniffer().sniff(csv_string.split("\n")[0][:512]).delimiter
    return "," if sniffed.isalnum() else sniffed


def container_csv_to_matrix(body: bytes | str) -> np.ndarray:
    """The float64 matrix the container builds from a ``text/csv`` body
    (before ``xgb.DMatrix``, which stores it as float32, NaN = missing)."""
    text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
    text = text.strip()
    delimiter = container_delimiter(text)
    cells = [["nan" if x == "" else x for x in line.split(delimiter)] for line in text.split("\n")]
    return np.array(cells).astype(np.float64)


def container_predict(booster, body: bytes | str) -> np.ndarray:
    """What the algorithm-mode handler computes for one request."""
    import warnings

    import xgboost as xgb

    dtest = xgb.DMatrix(container_csv_to_matrix(body))
    with warnings.catch_warnings():
        # The container still passes the deprecated ntree_limit (1.7 warns).
        warnings.filterwarnings("ignore", message="ntree_limit is deprecated")
        return booster.predict(
            dtest,
            ntree_limit=getattr(booster, "best_ntree_limit", 0),
            validate_features=False,
        )


def container_response(predictions: np.ndarray) -> str:
    """The ``text/csv`` answer of a real-time/serverless endpoint."""
    return ",".join(map(str, predictions.tolist()))


def f32_equal(a: float, b: float) -> bool:
    """Same float32 value (NaN equal to NaN)."""
    fa, fb = np.float32(a), np.float32(b)
    if math.isnan(fa) or math.isnan(fb):
        return bool(math.isnan(fa) and math.isnan(fb))
    return bool(fa == fb) and (math.copysign(1.0, fa) == math.copysign(1.0, fb))
