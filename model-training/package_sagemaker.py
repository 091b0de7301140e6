"""Packages fleetwatch's XGBoost model for the SageMaker built-in XGBoost
container (image ``sagemaker-xgboost:1.7-1``) and checks the package.

    model-training/.venv/bin/python model-training/package_sagemaker.py            # -> model-training/dist/model.tar.gz

Layout: a gzip'd tar holding exactly ONE regular file, ``xgboost-model``, at
the top level; its bytes are ``model-artifacts/fleetwatch.json`` unchanged. SageMaker
extracts ``model.tar.gz`` into ``/opt/ml/model``; the container's
algorithm-mode handler loads the file it finds there by trying
``pickle.load`` and then ``xgb.Booster().load_model(path)``. XGBoost 1.x
recognises a JSON model by its first byte (``{``) whatever the file name,
so the JSON that the embedded backend evaluates is the very document the
endpoint serves. Nothing else goes in the archive: the container loads the
files of the model directory as models (a metadata file beside it would
break loading, or be averaged in as a second model by newer containers).

The archive is reproducible (fixed mtime/owner/mode, gzip without a
timestamp), so the same model gives the same bytes and the same SHA-256,
which ``deploy_sagemaker.py`` uses to name SageMaker resources.

Check (always run, also by ``deploy_sagemaker.py``): extract the archive
into a temporary directory as SageMaker does, load it as the container
does, and score the rows of ``model-artifacts/fleetwatch.parity.json`` two ways:
directly (float32 matrix), and through the real request path (rows
formatted exactly as the worker writes them, decoded as the container
decodes ``text/csv``, the answer rendered and parsed back as the worker
parses it). Both must reproduce the ``probabilities`` xgboost recorded at
training time within 1e-6; the feature names and count must match the
metadata.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import pickle
import sys
import tarfile
import tempfile
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import sagemaker_csv  # noqa: E402

MODEL_FILE_NAME = "xgboost-model"
DEFAULT_MODEL = os.path.join(ROOT, "model-artifacts", "fleetwatch.json")
DEFAULT_OUT = os.path.join(HERE, "dist", "model.tar.gz")
TOLERANCE = 1e-6


def meta_path_for(model_path: str) -> str:
    base = model_path[: -len(".json")] if model_path.endswith(".json") else model_path
    return base + ".meta.json"


def parity_path_for(model_path: str) -> str:
    base = model_path[: -len(".json")] if model_path.endswith(".json") else model_path
    return base + ".parity.json"


def build_artifact(model_path: str, out_path: str) -> str:
    """Writes ``out_path`` (model.tar.gz); returns its SHA-256 (hex)."""
    with open(model_path, "rb") as fh:
        payload = fh.read()
    if not payload.lstrip().startswith(b"{"):
        raise SystemExit(f"{model_path} is not an XGBoost JSON model (Booster.save_model('...json'))")
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(MODEL_FILE_NAME)
        info.size = len(payload)
        info.mtime = 0
        info.mode = 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.type = tarfile.REGTYPE
        tar.addfile(info, io.BytesIO(payload))
    gz = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=gz, mtime=0, compresslevel=9) as fh:
        fh.write(tar_bytes.getvalue())
    data = gz.getvalue()
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "wb") as fh:
        fh.write(data)
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def extract_like_sagemaker(artifact: str, model_dir: str) -> list[str]:
    """Extracts the archive into ``model_dir`` (as SageMaker does into
    /opt/ml/model) after checking the layout; returns the member names."""
    with tarfile.open(artifact, "r:gz") as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        if names != [MODEL_FILE_NAME]:
            raise AssertionError(f"archive must hold exactly [{MODEL_FILE_NAME!r}], found {names}")
        m = members[0]
        if not m.isreg():
            raise AssertionError(f"{m.name} is not a regular file")
        src = tar.extractfile(m)
        assert src is not None
        with open(os.path.join(model_dir, m.name), "wb") as dst:
            dst.write(src.read())
    return names


def load_like_container(model_dir: str):
    """The algorithm-mode ``model_fn``: the file in the model directory,
    pickle first, then ``Booster.load_model``; one thread per worker."""
    import xgboost as xgb

    files = [f for f in os.listdir(model_dir) if os.path.isfile(os.path.join(model_dir, f))]
    if len(files) != 1:
        raise AssertionError(f"the model directory must hold one file, found {files}")
    path = os.path.join(model_dir, files[0])
    try:
        with open(path, "rb") as fh:
            booster = pickle.load(fh)
        fmt = "pkl_format"
    except Exception:
        booster = xgb.Booster()
        booster.load_model(path)
        fmt = "xgb_format"
    booster.set_param("nthread", 1)
    return booster, fmt


def load_parity(parity_path: str):
    with open(parity_path, encoding="utf-8") as fh:
        parity = json.load(fh)
    rows = np.array([[np.nan if v is None else v for v in r] for r in parity["rows"]], dtype=np.float32)
    return parity, rows, np.array(parity["probabilities"], dtype=np.float64)


def check_metadata(booster, meta: dict, parity: dict) -> None:
    names = meta["feature_names"]
    if booster.num_features() != meta["n_features"] or len(names) != meta["n_features"]:
        raise AssertionError(
            f"model has {booster.num_features()} features, metadata {meta['n_features']} ({len(names)} names)"
        )
    if booster.feature_names is not None and list(booster.feature_names) != list(names):
        raise AssertionError("the model's feature names differ from the metadata's (order matters)")
    if list(parity["feature_names"]) != list(names):
        raise AssertionError("the parity file's feature names differ from the metadata's")
    objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
    if objective != meta["objective"] or objective != "binary:logistic":
        raise AssertionError(f"objective {objective!r}, metadata {meta['objective']!r}")


def verify_artifact(artifact: str, meta_path: str, parity_path: str, tolerance: float = TOLERANCE) -> dict:
    """Extracts, loads and scores the package; raises AssertionError on any
    mismatch. Returns a summary."""
    import xgboost as xgb

    with open(meta_path, encoding="utf-8") as fh:
        meta = json.load(fh)
    parity, rows, expected = load_parity(parity_path)
    with tempfile.TemporaryDirectory() as model_dir:
        members = extract_like_sagemaker(artifact, model_dir)
        booster, fmt = load_like_container(model_dir)
    if fmt != "xgb_format":
        raise AssertionError("the model must load as an XGBoost model file, not a pickle")
    check_metadata(booster, meta, parity)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="ntree_limit is deprecated")
        direct = booster.predict(
            xgb.DMatrix(rows, missing=np.nan),
            ntree_limit=getattr(booster, "best_ntree_limit", 0),
            validate_features=False,
        )
    diff_direct = float(np.max(np.abs(direct.astype(np.float64) - expected)))

    # The request path: worker rows -> container decode -> predict -> text/csv
    # answer -> worker parse.
    scores = []
    for body, n in sagemaker_csv.split_payloads(sagemaker_csv.csv_rows(rows)):
        decoded = sagemaker_csv.container_csv_to_matrix(body.encode("utf-8"))
        if decoded.shape != (n, meta["n_features"]):
            raise AssertionError(f"container decoded {decoded.shape}, expected ({n}, {meta['n_features']})")
        answer = sagemaker_csv.container_response(sagemaker_csv.container_predict(booster, body.encode("utf-8")))
        got = sagemaker_csv.parse_scores(answer)
        if len(got) != n:
            raise AssertionError(f"{len(got)} scores for {n} rows")
        scores += got
    diff_csv = float(np.max(np.abs(np.array(scores) - expected)))

    summary = {
        "artifact": artifact,
        "sha256": sha256_file(artifact),
        "bytes": os.path.getsize(artifact),
        "members": members,
        "model_id": meta["model_id"],
        "version": meta["version"],
        "threshold": meta["threshold"],
        "rows": int(len(rows)),
        "rows_with_missing": int(np.isnan(rows).any(axis=1).sum()),
        "max_abs_diff_direct": diff_direct,
        "max_abs_diff_csv_path": diff_csv,
        "xgboost": xgb.__version__,
    }
    if not (diff_direct <= tolerance and diff_csv <= tolerance):
        raise AssertionError(f"scores differ from the recorded probabilities: {summary}")
    return summary


def package(model_path: str, out_path: str, meta_path: str | None = None, parity_path: str | None = None) -> dict:
    build_artifact(model_path, out_path)
    return verify_artifact(out_path, meta_path or meta_path_for(model_path), parity_path or parity_path_for(model_path))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL, help="XGBoost JSON model (default: model-artifacts/fleetwatch.json)")
    ap.add_argument("--meta", help="metadata (default: <model>.meta.json)")
    ap.add_argument("--parity", help="parity rows (default: <model>.parity.json)")
    ap.add_argument("--out", default=DEFAULT_OUT, help="output archive (default: model-training/dist/model.tar.gz)")
    args = ap.parse_args(argv)
    try:
        summary = package(args.model, args.out, args.meta, args.parity)
    except AssertionError as e:
        print(f"package check FAILED: {e}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
