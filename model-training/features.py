"""Feature extraction for the fleetwatch maintenance model.

This is the Python twin of the worker's ``src/inference/features.rs`` and
must compute bit-identical values: same feature order, same per-object /
per-device rolling windows, same float64 arithmetic in the same order
(window sums oldest first), rounded once to float32 at the end. The table
of definitions lives in the Rust module doc; the parity fixture written by
``train.py`` (``model-artifacts/fleetwatch.parity.json``, key ``feature_fixture``)
lets the Rust tests check the two agree.

Vectorised over all rows of all objects at once: a row's lag-``k``
neighbour counts only if it belongs to the same (object, device) group.
"""

from __future__ import annotations

import gzip
import json
import os
from datetime import datetime

import numpy as np

WINDOW = 10

FEATURE_NAMES = [
    "speed_kmph",
    "rpm",
    "engine_temp_c",
    "coolant_temp_c",
    "oil_pressure_kpa",
    "battery_voltage",
    "vibration_mm_s",
    "fuel_level_percent",
    "oil_kpa_per_krpm",
    "engine_temp_slope_c_per_h",
    "engine_temp_mean",
    "coolant_temp_mean",
    "oil_kpa_per_krpm_mean",
    "battery_voltage_mean",
    "battery_voltage_dev",
    "vibration_mean",
    "vibration_max",
    "rpm_mean",
    "window_readings",
]

RAW = FEATURE_NAMES[:8]


def _num(v):
    # Only JSON numbers count (bools are ints in Python: exclude them).
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    return np.nan


def _millis(ts: str) -> int:
    dt = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return int(dt.timestamp()) * 1000 + dt.microsecond // 1000


def parse_jsonl(text: str, object_id: int):
    """Rows of one object: (device_ids, millis, raw[n, 8], object ids)."""
    devs, times, raw = [], [], []
    for line in text.splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        devs.append(rec["device_id"])
        times.append(_millis(rec["timestamp"]))
        raw.append([_num(rec.get(name)) for name in RAW])
    return devs, times, raw, [object_id] * len(devs)


def load_dir(root: str):
    """All simulator JSONL objects under ``root`` (``.jsonl`` or ``.jsonl.gz``)
    in sorted key order. Returns a dict of numpy arrays plus the object keys."""
    keys = []
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.endswith(".jsonl") or f.endswith(".jsonl.gz"):
                keys.append(os.path.relpath(os.path.join(dirpath, f), root))
    keys.sort()
    devs, times, raw, objs = [], [], [], []
    for i, key in enumerate(keys):
        path = os.path.join(root, key)
        opener = gzip.open if key.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as fh:
            d, t, r, o = parse_jsonl(fh.read(), i)
        devs += d
        times += t
        raw += r
        objs += o
    return {
        "device_id": np.array(devs, dtype=object),
        "millis": np.array(times, dtype=np.int64),
        "raw": np.array(raw, dtype=np.float64).reshape(-1, len(RAW)),
        "object": np.array(objs, dtype=np.int64),
    }, keys


def _groups(device_id, obj):
    """Group number per row: one group per (object, device)."""
    pairs = {}
    out = np.empty(len(device_id), dtype=np.int64)
    for i, (o, d) in enumerate(zip(obj.tolist(), device_id.tolist())):
        out[i] = pairs.setdefault((o, d), len(pairs))
    return out


def _positions(group):
    """Index of each row within its group (0, 1, 2, ...) in row order.
    Rows of a group need not be contiguous (several devices in one object)."""
    counts = {}
    pos = np.empty(len(group), dtype=np.int64)
    for i, g in enumerate(group.tolist()):
        pos[i] = counts.get(g, 0)
        counts[g] = pos[i] + 1
    return pos


def _lag_index(group):
    """lag[k][i] = row index of the k-th previous row of i's group, or -1."""
    n = len(group)
    prev = np.full(n, -1, dtype=np.int64)
    last = {}
    for i, g in enumerate(group.tolist()):
        prev[i] = last.get(g, -1)
        last[g] = i
    lags = [np.arange(n, dtype=np.int64)]
    for _ in range(1, WINDOW):
        p = lags[-1]
        lags.append(np.where(p >= 0, prev[np.maximum(p, 0)], -1))
    return lags


def extract(data) -> np.ndarray:
    """float32 feature matrix [n, len(FEATURE_NAMES)], NaN for missing."""
    raw = data["raw"]
    n = raw.shape[0]
    millis = data["millis"]
    group = _groups(data["device_id"], data["object"])
    lags = _lag_index(group)
    # Window order is oldest first: lag WINDOW-1 down to lag 0.
    order = list(range(WINDOW - 1, -1, -1))

    rpm = raw[:, 1]
    oil = raw[:, 4]
    with np.errstate(invalid="ignore", divide="ignore"):
        oil_krpm = np.where((rpm >= 400.0) & ~np.isnan(oil), oil / (rpm / 1000.0), np.nan)

    def lagged(values, k):
        idx = lags[k]
        return np.where(idx >= 0, values[np.maximum(idx, 0)], np.nan)

    def mean(values):
        s = np.zeros(n)
        c = np.zeros(n)
        for k in order:
            v = lagged(values, k)
            p = ~np.isnan(v)
            s = s + np.where(p, v, 0.0)
            c = c + p
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(c > 0, s / c, np.nan)

    def vmax(values):
        m = np.full(n, np.nan)
        for k in order:
            v = lagged(values, k)
            take = ~np.isnan(v) & (np.isnan(m) | (v > m))
            m = np.where(take, v, m)
        return m

    engine = raw[:, 2]

    def slope():
        sx = np.zeros(n)
        sy = np.zeros(n)
        c = np.zeros(n)
        xs, ys = {}, {}
        for k in order:
            idx = lags[k]
            t = np.where(idx >= 0, millis[np.maximum(idx, 0)], 0)
            x = (t - millis).astype(np.float64) / 3_600_000.0
            y = lagged(engine, k)
            p = ~np.isnan(y)
            xs[k], ys[k] = x, y
            sx = sx + np.where(p, x, 0.0)
            sy = sy + np.where(p, y, 0.0)
            c = c + p
        with np.errstate(invalid="ignore", divide="ignore"):
            mx = sx / c
            my = sy / c
        sxy = np.zeros(n)
        sxx = np.zeros(n)
        for k in order:
            p = ~np.isnan(ys[k])
            dx = xs[k] - mx
            sxy = sxy + np.where(p, dx * (ys[k] - my), 0.0)
            sxx = sxx + np.where(p, dx * dx, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where((c >= 3) & (sxx > 0), sxy / sxx, np.nan)

    volts = raw[:, 5]
    volts_mean = mean(volts)
    count = np.zeros(n)
    for k in order:
        count = count + (lags[k] >= 0)
    cols = [raw[:, j] for j in range(8)] + [
        oil_krpm,
        slope(),
        mean(engine),
        mean(raw[:, 3]),
        mean(oil_krpm),
        volts_mean,
        volts - volts_mean,
        mean(raw[:, 6]),
        vmax(raw[:, 6]),
        mean(rpm),
        count,
    ]
    assert len(cols) == len(FEATURE_NAMES)
    return np.stack(cols, axis=1).astype(np.float32)
