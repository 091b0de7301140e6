"""Scores the committed model on many simulated fleets and reports across
them (#14): the threshold is chosen so the false-alarm target holds on the
WORST validation fleet, and model-training/REPORT.md gives median and worst case
over held-out test fleets, next to the `engine_temp_c > 100` rule.

Per fleet (the simulator output is large: score it, then delete it):

    fleetwatch simulate --vehicles 150 --hours 336 --seed 1001 --failure-rate 0.3 --out /tmp/v1001
    .venv-model/bin/python model-training/fleets.py score --models model-artifacts --fleet /tmp/v1001 --out scores/v1001.json

then, from the score files (those behind the committed report are in
model-training/fleet-scores/, so the report regenerates in seconds):

    S=model-training/fleet-scores
    .venv-model/bin/python model-training/fleets.py report --models model-artifacts \
        --valid $S/v10*.json --test $S/t20*.json --cuts $S/c2001-*.json $S/t2001.json \
        --report model-training/REPORT.md --set-threshold

Alerts are counted per vehicle-hour (a vehicle-hour with a flagged reading
is one alert, as the worker alerts per device per hourly object), also for
fleets uploaded in other file lengths, so the figures of different cuts
compare.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import xgboost as xgb

import common
import features

THRESHOLDS = [round(t, 3) for t in list(np.arange(0.50, 0.99, 0.01)) + list(np.arange(0.990, 1.0, 0.001))]
TARGET = 0.005  # false alarms per vehicle-day, train.TARGET_FA_PER_VEHICLE_DAY


def hourly(fleet):
    """The fleet with one alert unit per (device, hour), whatever the files."""
    hour = fleet["millis"] // 3_600_000
    keys = {}
    unit = np.empty(len(hour), dtype=np.int64)
    for i, (d, h) in enumerate(zip(fleet["device_id"].tolist(), hour.tolist())):
        unit[i] = keys.setdefault((d, h), len(keys))
    return {**fleet, "object": unit}


class Metrics:
    """common.operator_metrics for many flag vectors of one fleet, with the
    per-fleet bookkeeping done once (the same definitions, checked against
    it on the rule's flags)."""

    def __init__(self, fleet):
        obj = fleet["object"]
        self.obj = obj
        self.n_obj = int(obj.max()) + 1
        last = np.full(self.n_obj, np.iinfo(np.int64).min, dtype=np.int64)
        np.maximum.at(last, obj, fleet["millis"])
        onset = np.zeros(self.n_obj, dtype=np.int64)
        onset[obj] = fleet["onset_ms"]
        self.healthy = last < onset
        self.vehicle_days = self.healthy.sum() / 24.0
        end_ms = int(fleet["millis"].max())
        dev = fleet["device_id"]
        order = np.argsort(dev, kind="stable")
        sorted_dev = dev[order]
        self.failing = []
        for d, f in fleet["fail"].items():
            if f is None or f * 1000 > end_ms:
                continue
            lo = np.searchsorted(sorted_dev, d, side="left")
            hi = np.searchsorted(sorted_dev, d, side="right")
            rows = order[lo:hi]
            rows = rows[fleet["millis"][rows] >= fleet["onset_ms"][rows]]
            self.failing.append((fleet["mode"][d], f * 1000, rows, fleet["millis"][rows]))

    def __call__(self, flags):
        obj_flag = np.zeros(self.n_obj, dtype=bool)
        obj_flag[self.obj[flags]] = True
        false_alarms = int((obj_flag & self.healthy).sum())
        leads, missed, per_mode = [], 0, {}
        for mode, fail_ms, rows, t in self.failing:
            per_mode.setdefault(mode, [])
            ok = flags[rows]
            if ok.any():
                lead = (fail_ms - t[ok].min()) / 3.6e6
                leads.append(lead)
                per_mode[mode].append(lead)
            else:
                missed += 1
                per_mode[mode].append(0.0)
        vd = float(self.vehicle_days)
        return {
            "false_alarms": false_alarms,
            "vehicle_days": vd,
            "fa_per_vehicle_day": false_alarms / vd if vd else float("nan"),
            "failures": len(leads) + missed,
            "detected": len(leads),
            "median_lead_h": float(np.median(leads)) if leads else 0.0,
            "median_lead_h_missed_as_0": float(np.median(leads + [0.0] * missed)) if (leads or missed) else 0.0,
            "per_mode": per_mode,
        }


def score(args):
    booster = xgb.Booster()
    booster.load_model(os.path.join(args.models, "fleetwatch.json"))
    fleet = hourly(common.load_fleet(args.fleet))
    s = booster.predict(xgb.DMatrix(fleet["X"], missing=np.nan, feature_names=features.FEATURE_NAMES))
    metrics = Metrics(fleet)
    rule = metrics(common.rule_flags(fleet))
    if args.check:
        slow = common.operator_metrics(fleet, common.rule_flags(fleet))
        assert slow == rule, (slow, rule)
    out = {
        "fleet": args.fleet,
        "config": fleet["config"],
        "readings": int(len(s)),
        "model": {str(t): metrics(s >= t) for t in THRESHOLDS},
        "rule": rule,
    }
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(out, fh)
    with open(os.path.join(args.models, "fleetwatch.meta.json"), encoding="utf-8") as fh:
        thr = json.load(fh)["threshold"]
    m = metrics(s >= thr)
    print(f"{args.fleet}: {len(s)} readings; at {thr} {m['fa_per_vehicle_day']:.4f} FA/vehicle-day, {m['detected']}/{m['failures']}")


def load(paths):
    out = []
    for p in paths:
        with open(p, encoding="utf-8") as fh:
            out.append(json.load(fh))
    return out


def choose(valid):
    """The lowest threshold whose worst validation fleet meets the target."""
    for t in THRESHOLDS:
        worst = max(v["model"][str(t)]["fa_per_vehicle_day"] for v in valid)
        if worst <= TARGET:
            return t, worst
    t = THRESHOLDS[-1]
    return t, max(v["model"][str(t)]["fa_per_vehicle_day"] for v in valid)


def stats(ms):
    """Median and worst over fleets of the operator figures."""
    det = [m["detected"] / m["failures"] for m in ms]
    lead = [m["median_lead_h_missed_as_0"] for m in ms]
    fa = [m["fa_per_vehicle_day"] for m in ms]
    return {
        "detection": (np.median(det), min(det)),
        "lead": (np.median(lead), min(lead)),
        "fa": (np.median(fa), max(fa)),
        "failures": sum(m["failures"] for m in ms),
    }


def mode_rows(ms):
    modes = sorted({k for m in ms for k in m["per_mode"]})
    rows = []
    for mode in modes:
        det, lead = [], []
        for m in ms:
            leads = m["per_mode"].get(mode, [])
            if not leads:
                continue
            det.append(sum(1 for x in leads if x > 0) / len(leads))
            lead.append(float(np.median(leads)))
        rows.append((mode, np.median(det), min(det), np.median(lead), min(lead)))
    return rows


def report(args):
    with open(os.path.join(args.models, "fleetwatch.meta.json"), encoding="utf-8") as fh:
        meta = json.load(fh)
    valid, test, cuts = load(args.valid), load(args.test), load(args.cuts or [])
    thr, worst_valid = choose(valid)
    key = str(thr)
    model = stats([t["model"][key] for t in test])
    rule = stats([t["rule"] for t in test])
    old = stats([t["model"][str(meta["threshold"])] for t in test]) if str(meta["threshold"]) in test[0]["model"] else None
    seeds = lambda fs: ", ".join(str(f["config"]["seed"]) for f in fs)
    cfg = test[0]["config"]
    L = []
    L.append("# Maintenance model: report across fleets\n")
    L.append(f"Generated by `model-training/fleets.py report` from the committed model `{meta['model_id']}` "
             f"(`model-artifacts/fleetwatch.json`, xgboost {meta['xgboost_version']}, {meta['rounds']} trees), "
             f"trained on seed {meta['training_data']['train']['seed']} (its first threshold was chosen on seed "
             f"{meta['training_data']['valid']['seed']}). Every fleet below has a seed training never touched: "
             f"{cfg['hours']:.0f} h, readings every {cfg['interval_secs']} s, failure rate {cfg['failure_rate']}, "
             f"hourly files (unless stated), {' or '.join(sorted({str(f['config']['vehicles']) for f in valid + test}, reverse=True))} "
             f"vehicles (per fleet below: on 2 shared cores a 150-vehicle fleet took up to 20 min to simulate and "
             f"score, so some fleets are the first 75 vehicles of their seed; the false-alarm rate is per vehicle-day "
             f"either way, and a smaller fleet is a noisier, so harsher, worst case).\n")
    L.append("## Threshold\n")
    L.append(f"Chosen on {len(valid)} validation fleets (seeds {seeds(valid)}): the lowest threshold at which the "
             f"**worst** of them stays within the target of {TARGET} false alarms per vehicle-day. "
             f"Result: **{thr}** (worst validation fleet {worst_valid:.4f}).\n")
    L.append("Validation fleets: " + ", ".join(f"seed {v['config']['seed']} ({v['config']['vehicles']} vehicles, "
             f"{v['model'][key]['vehicle_days']:.0f} healthy vehicle-days)" for v in valid) + ".\n")
    L.append("| threshold | validation FA/vehicle-day per fleet | worst |")
    L.append("|---|---|---|")
    for t in [x for x in THRESHOLDS if 0.9 <= x <= 0.995]:
        fas = [v["model"][str(t)]["fa_per_vehicle_day"] for v in valid]
        mark = " ←" if t == thr else ""
        L.append(f"| {t}{mark} | {', '.join(f'{x:.4f}' for x in fas)} | {max(fas):.4f} |")
    L.append("")
    L.append(f"## Held-out test fleets (seeds {seeds(test)})\n")
    L.append("Median and worst case over the fleets. Detection: failures with a flagged reading after degradation "
             "onset. Lead: per fleet the median hours from the first such flag to failure, missed failures counted "
             "as 0 h. False alarms: alerts (vehicle-hours with a flagged reading) before a vehicle's degradation "
             "onset, per healthy vehicle-day.\n")
    L.append("| detector | detection median (worst) | lead, missed = 0 h, median (worst) | false alarms / vehicle-day median (worst) |")
    L.append("|---|---|---|---|")

    def line(name, s):
        return (f"| {name} | {s['detection'][0]:.0%} ({s['detection'][1]:.0%}) | {s['lead'][0]:.1f} h ({s['lead'][1]:.1f} h) | "
                f"{s['fa'][0]:.4f} ({s['fa'][1]:.4f}) |")

    L.append(line(f"model ≥ {thr}", model))
    if old is not None and meta["threshold"] != thr:
        L.append(line(f"model ≥ {meta['threshold']} (previous threshold)", old))
    L.append(line("`engine_temp_c > 100`", rule))
    L.append("")
    L.append("Per fleet (model ≥ threshold | rule):\n")
    L.append("| seed | vehicles | failures | model detected | model lead (missed = 0) | model FA/vehicle-day | rule detected | rule lead | rule FA/vehicle-day |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for t in test:
        m, r = t["model"][key], t["rule"]
        L.append(f"| {t['config']['seed']} | {t['config']['vehicles']} | {m['failures']} | {m['detected']} | {m['median_lead_h_missed_as_0']:.1f} h | "
                 f"{m['fa_per_vehicle_day']:.4f} | {r['detected']} | {r['median_lead_h_missed_as_0']:.1f} h | {r['fa_per_vehicle_day']:.4f} |")
    L.append("")
    L.append("### Per failure mode (test fleets)\n")
    L.append("| failure mode | model detection median (worst) | model lead, missed = 0 h, median (worst) | rule detection median (worst) | rule lead median (worst) |")
    L.append("|---|---|---|---|---|")
    rm = {r[0]: r for r in mode_rows([t["rule"] for t in test])}
    for mode, dm, dw, lm, lw in mode_rows([t["model"][key] for t in test]):
        r = rm.get(mode, (mode, 0, 0, 0, 0))
        L.append(f"| {mode} | {dm:.0%} ({dw:.0%}) | {lm:.1f} h ({lw:.1f} h) | {r[1]:.0%} ({r[2]:.0%}) | {r[3]:.1f} h ({r[4]:.1f} h) |")
    L.append("")
    worst_test = model["fa"][1]
    L.append("## Does the target hold?\n")
    if worst_test <= TARGET:
        L.append(f"Yes: at {thr} the worst test fleet has {worst_test:.4f} false alarms per vehicle-day, within {TARGET}.\n")
    else:
        L.append(f"Not on every test fleet: at {thr} the worst has {worst_test:.4f} false alarms per vehicle-day "
                 f"(median {model['fa'][0]:.4f}), over the target of {TARGET}. Five validation fleets do not bound "
                 f"the spread of five others; a higher threshold buys the target at the cost of lead time (see the "
                 f"threshold table).\n")
    if cuts:
        L.append("## The same fleet in other file lengths\n")
        L.append("The rolling features see only the readings of the same file (the worker keeps no state between "
                 "objects), so the first readings of every file have short windows. The same fleet uploaded in "
                 f"other file lengths, scored at {thr}, alerts still counted per vehicle-hour:\n")
        L.append("| files | threshold | detected | lead, missed = 0 h | false alarms / vehicle-day |")
        L.append("|---|---|---|---|---|")
        for t in (thr, 0.9):
            for c in sorted(cuts, key=lambda c: c["config"]["window_secs"]):
                m = c["model"][str(t)]
                L.append(f"| {c['config']['window_secs'] // 60} min (seed {c['config']['seed']}, {c['config']['vehicles']} vehicles) | {t} | "
                         f"{m['detected']}/{m['failures']} | {m['median_lead_h_missed_as_0']:.1f} h | {m['fa_per_vehicle_day']:.4f} "
                         f"({m['false_alarms']}) |")
        L.append("")
        L.append("Shorter files cost a little: the first readings of each file see a short window, which makes a few "
                 "more healthy vehicle-hours score high. At the chosen threshold the effect stays within the target; "
                 "carrying a per-vehicle window across objects (or history-free features) is left for a later issue.\n")
    with open(args.report, "w", encoding="utf-8") as fh:
        fh.write("\n".join(L))
    print("\n".join(L))
    if args.set_threshold and meta["threshold"] != thr:
        meta["threshold"] = thr
        meta["threshold_choice"] = {
            "rule": f"lowest threshold with at most {TARGET} false alarms per vehicle-day on the worst validation fleet",
            "validation_seeds": [v["config"]["seed"] for v in valid],
            "worst_validation_fa_per_vehicle_day": worst_valid,
        }
        with open(os.path.join(args.models, "fleetwatch.meta.json"), "w", encoding="utf-8") as fh:
            json.dump(meta, fh, indent=2)
            fh.write("\n")
        print(f"threshold {thr} written to fleetwatch.meta.json")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("score")
    s.add_argument("--models", required=True)
    s.add_argument("--fleet", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--check", action="store_true", help="also compare with common.operator_metrics once")
    r = sub.add_parser("report")
    r.add_argument("--models", required=True)
    r.add_argument("--valid", nargs="+", required=True)
    r.add_argument("--test", nargs="+", required=True)
    r.add_argument("--cuts", nargs="*")
    r.add_argument("--report", required=True)
    r.add_argument("--set-threshold", action="store_true")
    args = ap.parse_args()
    score(args) if args.cmd == "score" else report(args)


if __name__ == "__main__":
    main()
