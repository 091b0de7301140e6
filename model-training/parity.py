"""Writes model-artifacts/fleetwatch.parity.json: feature rows (with missing values)
and what the pinned xgboost computes for them (probabilities, margins and
`pred_contribs` TreeSHAP contributions), plus a feature fixture (JSONL text
and the features model-training/features.py computed from it). The Rust tests hold
the embedded evaluator, the feature code and the explanations to it.

train.py calls `write` after training. To add the contributions to an
existing parity file without retraining (same rows, same model):

    .venv-model/bin/python model-training/parity.py --models model-artifacts
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import xgboost as xgb

import features


def document(booster, model_id, rows, fixture):
    """The parity document for `rows` (NaN = missing)."""
    dm = xgb.DMatrix(rows, missing=np.nan, feature_names=features.FEATURE_NAMES)
    probs = booster.predict(dm)
    margins = booster.predict(dm, output_margin=True)
    # One column per feature, then the bias; each row sums to its margin.
    contribs = booster.predict(dm, pred_contribs=True)
    return {
        "model_id": model_id,
        "feature_names": features.FEATURE_NAMES,
        "rows": [[None if np.isnan(v) else float(v) for v in r] for r in rows],
        "probabilities": [float(p) for p in probs],
        "margins": [float(p) for p in margins],
        "contributions": [[float(c) for c in r] for r in contribs],
        "feature_fixture": fixture,
    }


def write(path, doc):
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(doc, fh)
        fh.write("\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", required=True)
    args = ap.parse_args()
    path = os.path.join(args.models, "fleetwatch.parity.json")
    with open(path, encoding="utf-8") as fh:
        old = json.load(fh)
    booster = xgb.Booster()
    booster.load_model(os.path.join(args.models, "fleetwatch.json"))
    rows = np.array([[np.nan if v is None else v for v in r] for r in old["rows"]], dtype=np.float32)
    doc = document(booster, old["model_id"], rows, old["feature_fixture"])
    # Same model, same rows: what was recorded must not move.
    assert np.allclose(doc["probabilities"], old["probabilities"], atol=1e-7), "the model is not the one the parity file was made with"
    write(path, doc)
    print(f"{path}: {len(rows)} rows with contributions")


if __name__ == "__main__":
    main()
