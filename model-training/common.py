"""Shared helpers for train.py and fleets.py: loading a simulated fleet
with its ground truth, labels, and the operator-facing metrics (alerts per
object, false alarms per vehicle-day, lead time)."""

from __future__ import annotations

import json
import os

import numpy as np

import features

HORIZON_MS = 24 * 3600 * 1000  # label: failure within the next 24 h
RULE_TEMP_C = 100.0  # the baseline rule: engine_temp_c > 100


def load_fleet(root: str):
    """Features, labels and bookkeeping for one simulator output directory."""
    data, keys = features.load_dir(root)
    with open(os.path.join(root, "ground_truth.json"), encoding="utf-8") as fh:
        gt = json.load(fh)
    fail = {v["device_id"]: v["failure_unix_secs"] for v in gt["vehicles"]}
    onset = {v["device_id"]: v["degradation_start_unix_secs"] for v in gt["vehicles"]}
    mode = {v["device_id"]: v["failure_mode"] for v in gt["vehicles"]}
    dev = data["device_id"]
    fail_ms = np.array([(fail[d] * 1000 if fail[d] is not None else np.iinfo(np.int64).max) for d in dev], dtype=np.int64)
    onset_ms = np.array([(onset[d] * 1000 if onset[d] is not None else np.iinfo(np.int64).max) for d in dev], dtype=np.int64)
    t = data["millis"]
    to_fail = fail_ms - t
    y = ((to_fail > 0) & (to_fail <= HORIZON_MS)).astype(np.int32)
    X = features.extract(data)
    return {
        "X": X,
        "y": y,
        "device_id": dev,
        "millis": t,
        "object": data["object"],
        "fail_ms": fail_ms,
        "onset_ms": onset_ms,
        "mode": mode,
        "fail": fail,
        "config": gt["config"],
        "keys": keys,
    }


def rule_flags(fleet) -> np.ndarray:
    temp = fleet["X"][:, features.FEATURE_NAMES.index("engine_temp_c")]
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(temp, nan=-1e9) > RULE_TEMP_C


def operator_metrics(fleet, flags: np.ndarray):
    """Alert-level metrics for boolean per-reading flags.

    - An *alert* is an object (one vehicle-hour file) with at least one
      flagged reading: the worker alerts per device per object.
    - A *false alarm* is an alert on an object whose readings all precede
      the vehicle's degradation onset (or a vehicle that never degrades).
    - Vehicle-days = healthy objects / 24 (one object per vehicle-hour).
    - Lead time, for each vehicle that fails within the data: hours from
      its first flagged reading at or after degradation onset to failure.
    """
    obj = fleet["object"]
    n_obj = int(obj.max()) + 1 if len(obj) else 0
    obj_last_t = np.full(n_obj, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(obj_last_t, obj, fleet["millis"])
    obj_onset = np.zeros(n_obj, dtype=np.int64)
    obj_onset[obj] = fleet["onset_ms"]
    healthy_obj = obj_last_t < obj_onset
    obj_flag = np.zeros(n_obj, dtype=bool)
    np.logical_or.at(obj_flag, obj, flags)
    vehicle_days = healthy_obj.sum() / 24.0
    false_alarms = int((obj_flag & healthy_obj).sum())

    end_ms = int(fleet["millis"].max())
    leads, missed, per_mode = [], 0, {}
    for dev, f in fleet["fail"].items():
        if f is None or f * 1000 > end_ms:
            continue
        m = fleet["device_id"] == dev
        t = fleet["millis"][m]
        ok = flags[m] & (t >= fleet["onset_ms"][m])
        mode = fleet["mode"][dev]
        per_mode.setdefault(mode, [])
        if ok.any():
            lead = (f * 1000 - t[ok].min()) / 3.6e6
            leads.append(lead)
            per_mode[mode].append(lead)
        else:
            missed += 1
            per_mode[mode].append(0.0)
    return {
        "false_alarms": false_alarms,
        "vehicle_days": float(vehicle_days),
        "fa_per_vehicle_day": false_alarms / vehicle_days if vehicle_days else float("nan"),
        "failures": len(leads) + missed,
        "detected": len(leads),
        "median_lead_h": float(np.median(leads)) if leads else 0.0,
        "median_lead_h_missed_as_0": float(np.median(leads + [0.0] * missed)) if (leads or missed) else 0.0,
        "per_mode": per_mode,
    }
