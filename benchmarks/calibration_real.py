"""`durability calibrate` on a measured set (issue 14): does the band calibrated on held-out
devices cover what it says on the next one?

The measured Device-B set has 34 devices, too few to set aside a calibration set beside the test
set, so this cross-fits: per test split (``--splits``: which 11 devices are the test ones) and
training seed, the default model is trained on the other 23 (60 epochs, as the accuracy suite);
then each test device is scored by the model calibrated (``--bins 1``) on the other 10 test
devices, every device from a third of its rows (the suite's warm-up). Pooled over the test
devices: the 80 % band coverage and the end-of-life 80 % interval coverage, as trained and
calibrated; and the factors the 10-device calibrations chose.

    python benchmarks/calibration_real.py --splits 0,1,2 --seeds 0,1,2

One JSON line per split and seed, appended to results/calibration-real.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd

from benchmarks import realdata
from benchmarks.accuracy import model_config
from benchmarks.common import code_version, one_thread
from durability_cli import training
from durability_cli.api import Model
from durability_cli.config import TrainConfig
from durability_cli.schema import Schema, validate

RESULTS = Path(__file__).resolve().parent / "results" / "calibration-real.jsonl"


def pooled(parts: list) -> dict:
    """80 % band and end-of-life interval coverage over the rows and forecasts of ``parts``
    (one Evaluation per device, or one for all)."""
    rows = pd.concat([p.backtest for p in parts])
    rows = rows[np.isfinite(rows["y_true"])]
    inside = (rows["q0.1"] <= rows["y_true"]) & (rows["y_true"] <= rows["q0.9"])
    eol = [p.report["models"]["model"].get("eol") or {} for p in parts]
    eol = [e for e in eol if e.get("interval_n")]  # a device whose interval decided nothing
    n = sum(e["interval_n"] for e in eol)
    covered = sum(e["interval_coverage"] * e["interval_n"] for e in eol)
    return {
        "coverage80": float(inside.mean()),
        "rows": len(rows),
        "eol_coverage": covered / n if n else None,
        "eol_n": n,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--set", default="device_b")
    p.add_argument("--splits", default="0,1,2")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--latent", type=int, default=0, help="latent size (0: the default model)")
    a = p.parse_args()
    one_thread()
    commit = code_version()["commit"]
    for split_seed in [int(s) for s in a.splits.split(",")]:
        split = realdata.split(a.set, seed=split_seed)
        info = split["info"]
        schema = Schema("specimen_id", "time", info.target, info.covariates, info.static)
        table = validate(split["train"], schema, source="train")
        test = split["test"]
        options = dict(context_frac=info.warmup_fraction, threshold=info.eol_threshold, samples=200)
        for seed in [int(s) for s in a.seeds.split(",")]:
            cfg = TrainConfig(epochs=a.epochs, val_context=info.context, seed=seed, ensemble=1)
            trained = Model(training.train(table, model_config(a.set, a.latent), cfg))
            devices = sorted(test["specimen_id"].unique())
            before, after, factors = [], [], []
            for device in devices:
                one = test[test["specimen_id"] == device]
                others = test[test["specimen_id"] != device]
                model = trained.calibrate(others, **options)
                factors.append(model.summary["calibration"]["factor"])
                before.append(trained.evaluate(one, baselines=False, **options))
                after.append(model.evaluate(one, baselines=False, **options))
            out = {
                "set": a.set,
                "split": split_seed,
                "seed": seed,
                "latent": a.latent,
                "commit": commit,
                "devices": len(devices),
                "k_trained": trained.summary.get("scale_calibration"),
                "factors": factors,
                "before": pooled(before),
                "after": pooled(after),
            }
            print(json.dumps(out), flush=True)
            with open(RESULTS, "a") as f:
                f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
