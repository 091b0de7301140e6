"""Trains fleetwatch's maintenance model on simulator output.

Reproduce (from the repository root; the simulator writes JSONL):

    python3.11 -m venv model-training/.venv && model-training/.venv/bin/pip install -r model-training/requirements.txt
    fleetwatch simulate --vehicles 150 --hours 336 --interval 30s --seed 101 --format jsonl --failure-rate 0.5 --out model-training/data/train
    fleetwatch simulate --vehicles 100 --hours 336 --interval 30s --seed 202 --format jsonl --failure-rate 0.3 --out model-training/data/valid
    fleetwatch simulate --vehicles 150 --hours 336 --interval 30s --seed 303 --format jsonl --failure-rate 0.3 --out model-training/data/test
    model-training/.venv/bin/python model-training/train.py --train model-training/data/train --valid model-training/data/valid --out models
    # then the report across fleets: see model-training/fleets.py

Until `fleetwatch simulate` exposes `--failure-rate`, the data were made
with the standalone simulator binary built from the same `src/simulate`
(`sim OUT_DIR VEHICLES HOURS INTERVAL_SECS SEED jsonl FAILURE_RATE`):

    sim model-training/data/train 150 336 30 101 jsonl 0.5
    sim model-training/data/valid 100 336 30 202 jsonl 0.3
    sim model-training/data/test  150 336 30 303 jsonl 0.3

Training takes ~7 minutes on 2 cores (2.1 M rows, 150 trees).

Writes model-artifacts/fleetwatch.json (Booster.save_model), fleetwatch.meta.json
and fleetwatch.parity.json (model-training/parity.py: feature rows incl. missing
values with the probabilities, margins and TreeSHAP contributions xgboost
computed, plus a feature fixture: JSONL text and the features this module
computed from it).
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import xgboost as xgb
from sklearn.metrics import roc_auc_score

import common
import features
import parity

MODEL_ID = "fleetwatch-xgb-v1"
VERSION = "1.0.0"
# An operator tolerates about one false maintenance alert per vehicle per
# ~200 days: for a 100-vehicle fleet, one needless inspection every two
# days, which a workshop absorbs; far more and alerts get ignored.
TARGET_FA_PER_VEHICLE_DAY = 0.005

PARAMS = {
    "objective": "binary:logistic",
    "eval_metric": "auc",
    "tree_method": "hist",
    "max_depth": 5,
    "eta": 0.1,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 5,
    "base_score": 0.5,
    "nthread": 2,
}
ROUNDS = 150


def choose_threshold(valid, scores):
    """Lowest threshold whose false alarms per vehicle-day on the
    validation fleet stay within the target (lower = earlier detection)."""
    best = None
    for thr in np.round(np.arange(0.05, 0.96, 0.01), 2):
        m = common.operator_metrics(valid, scores >= thr)
        if m["fa_per_vehicle_day"] <= TARGET_FA_PER_VEHICLE_DAY:
            best = (float(thr), m)
            break
    if best is None:
        best = (0.95, common.operator_metrics(valid, scores >= 0.95))
    return best


def parity_rows(valid, rng):
    X = valid["X"]
    has_nan = np.isnan(X).any(axis=1)
    natural = rng.choice(np.where(has_nan)[0], 60, replace=False)
    pos = rng.choice(np.where(valid["y"] == 1)[0], 40, replace=False)
    plain = rng.choice(np.where(~has_nan)[0], 60, replace=False)
    blank = rng.choice(len(X), 40, replace=False)
    rows = np.concatenate([X[natural], X[pos], X[plain], X[blank]]).copy()
    # Blank 1-6 random features in the last 40 rows, so default
    # directions are exercised across all features.
    for r in rows[-40:]:
        r[rng.choice(X.shape[1], rng.integers(1, 7), replace=False)] = np.nan
    rows[-1, :] = np.nan  # all missing
    return rows


def feature_fixture(root, keys, n=3):
    """A few objects' JSONL text and the features computed from it."""
    out = []
    for key in keys[:: max(1, len(keys) // n)][:n]:
        with open(os.path.join(root, key), encoding="utf-8") as fh:
            text = fh.read()
        d, t, r, o = features.parse_jsonl(text, 0)
        data = {
            "device_id": np.array(d, dtype=object),
            "millis": np.array(t, dtype=np.int64),
            "raw": np.array(r, dtype=np.float64).reshape(-1, len(features.RAW)),
            "object": np.array(o, dtype=np.int64),
        }
        X = features.extract(data)
        out.append({"key": key, "jsonl": text, "features": [[None if np.isnan(v) else float(v) for v in row] for row in X]})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--valid", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    train = common.load_fleet(args.train)
    valid = common.load_fleet(args.valid)
    print(f"train rows {len(train['y'])} (pos {train['y'].sum()}), valid rows {len(valid['y'])}")
    dtrain = xgb.DMatrix(train["X"], label=train["y"], missing=np.nan, feature_names=features.FEATURE_NAMES)
    dvalid = xgb.DMatrix(valid["X"], label=valid["y"], missing=np.nan, feature_names=features.FEATURE_NAMES)
    booster = xgb.train({**PARAMS, "seed": args.seed}, dtrain, ROUNDS, evals=[(dvalid, "valid")], verbose_eval=25)
    scores = booster.predict(dvalid)
    auc = roc_auc_score(valid["y"], scores)
    thr, m = choose_threshold(valid, scores)
    print(f"valid AUC {auc:.4f}; threshold {thr} -> {m['fa_per_vehicle_day']:.4f} FA/vehicle-day, "
          f"median lead {m['median_lead_h']:.1f} h, detected {m['detected']}/{m['failures']}")

    os.makedirs(args.out, exist_ok=True)
    model_path = os.path.join(args.out, "fleetwatch.json")
    booster.save_model(model_path)
    cfg = json.loads(booster.save_config())
    base_score = float(cfg["learner"]["learner_model_param"]["base_score"])
    meta = {
        "model_id": MODEL_ID,
        "version": VERSION,
        "objective": PARAMS["objective"],
        "feature_names": features.FEATURE_NAMES,
        "n_features": len(features.FEATURE_NAMES),
        "threshold": thr,
        "base_score": base_score,
        "feature_window": features.WINDOW,
        "label": "failure within the next 24 h",
        "training_seed": args.seed,
        "training_data": {"train": train["config"], "valid": valid["config"]},
        "xgboost_version": xgb.__version__,
        "rounds": ROUNDS,
        "params": PARAMS,
        "valid_auc": auc,
        "target_false_alarms_per_vehicle_day": TARGET_FA_PER_VEHICLE_DAY,
    }
    with open(os.path.join(args.out, "fleetwatch.meta.json"), "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=2)
        fh.write("\n")

    rng = np.random.default_rng(12345)
    rows = parity_rows(valid, rng)
    fixture = feature_fixture(args.valid, valid["keys"])
    parity.write(os.path.join(args.out, "fleetwatch.parity.json"), parity.document(booster, MODEL_ID, rows, fixture))
    print("model", os.path.getsize(model_path), "bytes")


if __name__ == "__main__":
    main()
