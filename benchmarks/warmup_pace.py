"""Can a specimen's pace against the model's mean be read from its own warm-up? (issue 14)

    python benchmarks/warmup_pace.py --set crack --model DIR/crack-s0.safetensors
    python benchmarks/warmup_pace.py --set laser --model DIR/laser-s0.safetensors

On new specimens the measured path runs faster or slower than the forecast's mean (crack: log
pace sd about 0.5, eol_warp.py). If the warm-up carried that pace beyond what the network already
reads from it, the mean could be stretched in time per specimen at forecast time. For each test
specimen (a synthetic set's 96 fresh specimens, a measured set's test split): the mean forecast
from the first ``--frac`` of its warm-up, and the log factor w_warm that best stretches it onto the
rest of the warm-up (eol_warp.fit_one); the mean forecast from the whole warm-up (run on past the
horizon with the conditions held) and the log factor w_true that best stretches it onto the
truth after the warm-up. Reported: how w_warm and w_true correlate, and the RMSE after the warm-up
of the mean stretched by lambda x w_warm, lambda in 0 (the forecast as it is) .. 1.

One JSON line per call, appended to results/warmup-pace.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks import realdata  # noqa: E402
from benchmarks.accuracy import held_out, plan_for  # noqa: E402
from benchmarks.common import code_version, one_thread  # noqa: E402
from durability_cli import eol_warp  # noqa: E402
from durability_cli.artifact import load_bundle  # noqa: E402
from durability_cli.forecasting import ForecastConfig, forecast  # noqa: E402
from durability_cli.schema import validate  # noqa: E402
from durability_cli.synthetic import DATASET_INFO  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "warmup-pace.jsonl"
SHRINK = (0.0, 0.25, 0.5, 0.75, 1.0)
RUN_ON = 3.0  # the whole-warm-up mean is run to this many times its span, conditions held


def run_on(plan: pd.DataFrame, target: str, factor: float) -> pd.DataFrame:
    """``plan`` with rows added after each specimen's last, at its last step, conditions held."""
    parts = [plan]
    for _, g in plan.groupby("specimen_id", sort=False):
        t = g["time"].to_numpy(float)
        step, span = t[-1] - t[-2], t[-1] - t[0]
        k = int(np.ceil((factor - 1.0) * span / step))
        extra = pd.DataFrame({c: np.repeat(g[c].iloc[-1], k) for c in g.columns})
        extra["time"] = t[-1] + step * np.arange(1, k + 1)
        extra[target] = np.nan
        parts.append(extra)
    return pd.concat(parts, ignore_index=True).sort_values(["specimen_id", "time"], kind="stable")


def mean_path(bundle, test: pd.DataFrame, warm: pd.Series, target: str, factor: float | None = None):
    """{specimen: (times, mean)} of the deterministic mean forecast from ``warm`` rows."""
    plan = plan_for(test, warm, target)
    if factor:
        plan = run_on(plan, target, factor)
    fc = forecast(bundle, validate(plan, bundle.schema, source="plan"), ForecastConfig(samples=0)).forecast
    col = f"{target}_mean"
    return {
        sid: (g["time"].to_numpy(float), g[col].to_numpy(float))
        for sid, g in fc.groupby("specimen_id", sort=False)
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", required=True, choices=sorted(DATASET_INFO) + sorted(realdata.REAL_INFO))
    ap.add_argument("--model", required=True, type=Path, help="a model run.py --save-models wrote for --set")
    ap.add_argument(
        "--frac", type=float, default=0.5, help="the share of the warm-up the pace is fitted after"
    )
    args = ap.parse_args()
    one_thread()
    info, part = held_out(args.set)
    test, clean, warm = part["test"], part["clean"], part["warmup"]
    target = info.target
    bundle = load_bundle(args.model)
    whole = mean_path(bundle, test, warm, target, RUN_ON)
    early_rows = np.maximum(2, np.floor(warm * args.frac)).astype(int)
    early = mean_path(bundle, test, early_rows, target)
    fits, squares = [], {lam: [] for lam in SHRINK}
    clean_by = dict(tuple(clean.groupby("specimen_id", sort=False)))
    for sid, g in test.groupby("specimen_id", sort=False):
        c, c0 = int(warm[sid]), int(early_rows[sid])
        t, y = g["time"].to_numpy(float), g[target].to_numpy(float)
        truth = clean_by[sid][target].to_numpy(float)
        w_warm = None
        if c - c0 >= eol_warp.MIN_ROWS:
            et, em = early[sid]
            w_warm = eol_warp.fit_one(t[c0:c], y[c0:c], np.interp(t[c0:c], et, em), t[c0 - 1], y[c0 - 1])
        wt, wm = whole[sid]
        after = wt > t[c - 1]
        grid_t, grid_m = np.r_[t[c - 1], wt[after]], np.r_[y[c - 1], wm[after]]
        w_true = eol_warp.fit_one(t[c:], truth[c:], np.interp(t[c:], grid_t, grid_m), t[c - 1], y[c - 1])
        for lam in SHRINK:
            stretched = t[c - 1] + np.exp(lam * (w_warm or 0.0)) * (t[c:] - t[c - 1])
            squares[lam].append((np.interp(stretched, grid_t, grid_m) - y[c:]) ** 2)
        fits.append((w_warm, w_true))
    both = np.array([(a, b) for a, b in fits if a is not None and b is not None], dtype=float).reshape(-1, 2)
    out = {
        "set": args.set,
        "model": args.model.name,
        "commit": code_version()["commit"],
        "frac": args.frac,
        "specimens": len(fits),
        "fitted": len(both),
        "corr": float(np.corrcoef(both[:, 0], both[:, 1])[0, 1]) if len(both) > 2 else None,
        "sd_w_warm": float(both[:, 0].std(ddof=1)) if len(both) > 1 else None,
        "sd_w_true": float(both[:, 1].std(ddof=1)) if len(both) > 1 else None,
        "rmse": {f"{lam:g}": float(np.sqrt(np.mean(np.concatenate(v)))) for lam, v in squares.items()},
    }
    print(json.dumps(out))
    with open(RESULTS, "a") as f:
        f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
