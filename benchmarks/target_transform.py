"""Would a transformed target help? Measured before building a `--target-transform` option.

First-order decay (ageing: p = p0 exp(-D)) is a straight line in log p, second-order decay
(coating: s = s0 / (1 + D)) one in 1 / s, and a crack's remaining ligament L falls like
exp(growth) near the end, which log(c - L) straightens. This trains the default model on the
transformed target of the accuracy suite's split (outside the library: the table's target column
is replaced by f(y)), forecasts the test specimens from the set's warm-up, maps the forecast back
(the transformed mean -> f^-1(mean), the p10 / p90 through f^-1, swapped where f falls) and scores
it against the noisy test values in the raw units: RMSE, 80 % band coverage and end-of-life 80 %
interval coverage (from the raw band's crossings of the threshold: the paths of a mean-feedback
model are mean + scale x one draw, so a path quantile crosses where its band edge does).

    python benchmarks/target_transform.py --sets ageing --transforms none,log --seeds 0,1,2

One JSON line per set, transform and seed, appended to results/target-transform.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.accuracy import eol_truth, interval_coverages  # noqa: E402
from benchmarks.common import RESULTS, code_version, one_thread  # noqa: E402
from durability_cli import api  # noqa: E402
from durability_cli.metrics import first_crossing_matrix  # noqa: E402
from durability_cli.synthetic import make_split  # noqa: E402

# name -> (f, f^-1, whether f falls as y rises)
TRANSFORMS = {
    "none": (lambda y: y, lambda u: u, False),
    "log": (np.log, np.exp, False),
    "reciprocal": (lambda y: 1.0 / y, lambda u: 1.0 / u, True),
    "log-gap": (lambda y: np.log(1.03 - y), lambda u: 1.03 - np.exp(u), True),  # crack: 1.03 > any L
}


def first_crossing(v: np.ndarray, t: np.ndarray, threshold: float) -> float:
    """When v (from the warm-up's last row on) first falls to the threshold, linear between rows;
    +inf if it does not within the rows."""
    cross = float(first_crossing_matrix(t, v, threshold))
    return np.inf if np.isnan(cross) else cross


def run(name: str, transform: str, seed: int, epochs: int) -> dict:
    f, f_inv, falls = TRANSFORMS[transform]
    split = make_split(name, 32, 16, seed=0)
    info, train, test, clean = split["info"], split["train"].copy(), split["test"], split["test_clean"]
    ctx, target = info.context, info.target
    train[target] = f(train[target].to_numpy())
    model = api.train(
        train, target=target, covariates=list(info.covariates), static=list(info.static),
        epochs=epochs, val_context=ctx, seed=seed, ensemble=1,
    )  # fmt: skip
    plan = test.copy()
    pos = plan.groupby("specimen_id").cumcount().to_numpy()
    plan[target] = f(plan[target].to_numpy())
    plan.loc[pos >= ctx, target] = np.nan
    fc = model.forecast(plan, samples=50).table.set_index(["specimen_id", "time"])
    after = pos >= ctx
    rows = pd.MultiIndex.from_arrays([test["specimen_id"][after], test["time"][after]])
    mean = f_inv(fc.loc[rows, f"{target}_mean"].to_numpy())
    lo, hi = (f_inv(fc.loc[rows, f"{target}_p{q}"].to_numpy()) for q in (10, 90))
    lo, hi = (hi, lo) if falls else (lo, hi)
    y = test[target].to_numpy()[after]
    out = {
        "set": name, "transform": transform, "seed": seed, "epochs": epochs,
        "commit": code_version()["commit"], "best_epoch": model.summary["best_epoch"],
        "rmse": float(np.sqrt(np.mean((mean - y) ** 2))),
        "coverage80": float(np.mean((lo <= y) & (y <= hi))),
    }  # fmt: skip
    if info.eol_threshold is not None:
        truth = eol_truth(
            clean, pd.Series(ctx, index=test["specimen_id"].unique()), target, info.eol_threshold
        )
        ids, times = test["specimen_id"].to_numpy(), test["time"].to_numpy()
        bounds = []
        for sid in truth.index:
            mine = ids == sid
            last = np.flatnonzero(mine)[ctx - 1]  # the warm-up's last row: the crossings start there
            keep = mine[after]
            t = np.concatenate([[times[last]], times[after][keep]])
            start = clean[target].to_numpy()[last]
            bounds.append(
                [first_crossing(np.concatenate([[start], b[keep]]), t, info.eol_threshold) for b in (lo, hi)]
            )
        lower, upper = np.array(bounds).T
        out |= interval_coverages(lower, upper, truth)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="ageing,coating,crack")
    ap.add_argument("--transforms", default="none,log", help=f"comma-separated, of {', '.join(TRANSFORMS)}")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=60)
    a = ap.parse_args()
    one_thread()
    for name in a.sets.split(","):
        for seed in (int(s) for s in a.seeds.split(",")):
            for transform in a.transforms.split(","):
                r = run(name, transform, seed, a.epochs)
                print(json.dumps(r), flush=True)
                with open(RESULTS / "target-transform.jsonl", "a") as fh:
                    fh.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
