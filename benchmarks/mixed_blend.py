"""The default model and the mixed-effects path averaged: measured before building it.

The mixed-effects path (durability_cli/mixed_effects.py) beats the default model on some
measured sets whose specimens share one test plan. Would a forecast that averages the two beat
both? This trains the default model as the suite does (splits.py: the suite's options, the
automatic ensemble and line, training seed ``--seed``) on several test splits of a set, fits the
path on the same training specimens (accuracy.mixed_effects_fit), and scores on the test
specimens (each from its own warm-up, against the measured values) the model's mean path
(deterministic), the path's, and their averages with the model's weight ``w`` in
``--weights``.

    python benchmarks/mixed_blend.py --set laser --splits 0,1,2,3,4

Appends one JSON line per split to results/mixed-blend.jsonl (``--out``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import accuracy  # noqa: E402
from benchmarks.common import code_version, one_thread  # noqa: E402
from benchmarks.splits import SETS, prepared  # noqa: E402
from durability_cli.forecasting import ForecastConfig, forecast  # noqa: E402
from durability_cli.schema import validate  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "mixed-blend.jsonl"


def run_split(name: str, split_seed: int, seed: int, weights: list[float]) -> dict:
    info, ds, test, clean, warmup, rows = prepared(name, split_seed)
    settings = dict(accuracy.FULL) | {"seeds": [seed], "ensemble": 0}
    run, bundle = accuracy.run_model(ds, test, clean, rows, warmup, info, seed, settings)
    plan = validate(accuracy.plan_for(test, warmup, info.target), bundle.schema, source="plan")
    fc = forecast(bundle, plan, ForecastConfig(samples=0, seed=0)).forecast
    col = f"{info.target}_mean"
    model = rows[["specimen_id", "time"]].merge(fc[["specimen_id", "time", col]], how="left")[col].to_numpy()
    fit, cv = accuracy.mixed_effects_fit(ds, info)
    path = accuracy.mixed_effects_forecast(fit, test, rows, warmup, info.target, info.covariates)
    y = rows["y"].to_numpy()

    def rmse(pred) -> float:
        return float(np.sqrt(np.mean((pred - y) ** 2)))

    return {
        "set": name,
        "split": split_seed,
        "seed": seed,
        "rmse": {"model": rmse(model), "mixed_effects": rmse(path)}
        | {f"w{w:g}": rmse(w * model + (1 - w) * path) for w in weights},
        "degree": fit.degree,
        "family": fit.label,
        "cv_rmse": cv,
        # each member's, on its own validation specimens (one model: its own)
        "model_val_rmse": (bundle.summary.get("ensemble") or {}).get("best_val_rmse")
        or [bundle.summary.get("best_val_rmse")],
        "val_baseline_rmse": (bundle.summary.get("ensemble") or {}).get("val_baseline_rmse")
        or [bundle.summary.get("val_baseline_rmse")],
        "members": len(bundle.members),
        "train_seconds": round(run["train_seconds"], 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--set", required=True, choices=SETS, help="a set of the accuracy suite")
    p.add_argument("--splits", default="0,1,2,3,4", help="test-split seeds (0 is the suite's)")
    p.add_argument("--seed", type=int, default=0, help="training seed (an ensemble of 5 trains 5s..5s+4)")
    p.add_argument("--weights", default="0.25,0.5,0.75", help="the model's weights in the averages")
    p.add_argument("--out", type=Path, default=RESULTS, help="the JSON-lines file to append to")
    args = p.parse_args(argv)
    one_thread()
    code = code_version()
    weights = [float(w) for w in args.weights.split(",")]
    for split_seed in (int(s) for s in args.splits.split(",")):
        line = run_split(args.set, split_seed, args.seed, weights) | {"code": code}
        with args.out.open("a") as f:
            f.write(json.dumps(line) + "\n")
        print(
            f"{args.set} split {split_seed}: " + ", ".join(f"{k} {v:.4g}" for k, v in line["rmse"].items()),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
