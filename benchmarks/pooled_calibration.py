"""Could an ensemble calibrate its bands on all its members' validation specimens (issue 14)?

One model's 80 % band is too wide on most sets (results/notes.md, "Why the bands are too wide"),
and its 5-6 validation specimens are too few to narrow it safely, so training only ever widens
(training._calibration). An ensemble of N has N validation splits, each scored by the one member
that did not train on it. Per set and seed this trains an ensemble of 5, forecasts the accuracy
suite's test specimens with each member's own factor (as the library does), then with one factor
pooled over every member's validation errors and allowed to narrow, and scores the 80 % band
(coverage, width, pinball) and the end-of-life interval each time.

    python benchmarks/pooled_calibration.py --sets device_b,coating --seeds 0,1,2

One JSON line per set and seed, also written to results/pooled-calibration.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


Z80 = 1.2815515655446004  # the 80 % central band is the mean +- Z80 scales


def pooled_factor(bundle, train_table, schema, context: int) -> tuple[float, int]:
    """The factor that makes the band cover 80 % of the members' validation errors, each member
    scored on its own validation specimens; and how many specimen scorings it pools."""
    import numpy as np
    import torch

    from durability_cli.data import to_series, to_tensors
    from durability_cli.schema import validate
    from durability_cli.training import _free_run_errors

    ratios, n = [], 0
    for member in bundle.members:
        val = train_table[train_table["specimen_id"].isin(member.summary["val_specimens"])]
        t = to_tensors(to_series(validate(val, schema, source="validation")), member.scaler)
        ratios.append(_free_run_errors(member.model, t, context, spread=1.0)[2])
        n += val["specimen_id"].nunique()
    return float(np.quantile(torch.cat(ratios).double().numpy(), 0.8)) / Z80, n


def measure(name: str, seed: int, members: int) -> dict:
    from benchmarks.ensemble_paths import band_scores, prepare

    case = prepare(name, seed, members)
    bundle, info = case["bundle"], case["split"]["info"]
    own = [float(m.summary.get("scale_calibration") or 1.0) for m in bundle.members]
    pooled, scored = pooled_factor(bundle, case["split"]["train"], case["schema"], info.context)
    out = {"set": name, "seed": seed, "members": members, "own_factors": own}
    out |= {"pooled_factor": pooled, "validation_specimens_pooled": scored}
    for label, factors in (("own", own), ("pooled", [pooled] * members)):
        for m, k in zip(bundle.members, factors, strict=True):
            m.summary["scale_calibration"] = k
        out[label] = band_scores(case, seed)
    return out


def main(argv=None) -> None:
    from benchmarks.ensemble_paths import run_sets

    run_sets(argv, measure, doc=__doc__, suite="pooled-calibration", sets="device_b,coating", seeds="0,1,2")


if __name__ == "__main__":
    main()
