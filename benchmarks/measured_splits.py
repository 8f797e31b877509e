"""The measured sets over several test splits (suite ``measured-splits`` of benchmarks/run.py).

The accuracy suite scores each measured set on one split (``realdata.split(name, seed=0)``): 11
Device-B devices, 7 Alloy-A specimens. A change of the defaults moved that one split by 10-18 %
and was level over five (benchmarks/results/notes.md, sessions 19 and 20). This suite trains the
default model (as the accuracy suite does: ensembles and length as `train` decides, validation
from the set's warm-up, training seed 0) on ``SPLITS`` test splits of every measured set and
scores it, and the three baselines, on each split's unseen specimens, so that "below every
baseline" and a change's gain can be read over the splits, not one draw of a dozen specimens.

    python benchmarks/run.py --only measured-splits           # 5 splits per set (about 25 minutes on one core)
    python benchmarks/run.py --only measured-splits --quick   # 2 splits, 6 epochs
"""

from __future__ import annotations

import statistics
import time

from benchmarks import accuracy, realdata, splits
from benchmarks.common import header, say

SPLITS = (0, 1, 2, 3, 4)
QUICK_SPLITS = (0, 1)


def run(quick: bool, names: list[str] | None = None) -> dict:
    """{set: {"splits": [one line per split], "summary": ...}} with the header of every suite."""
    settings = accuracy.QUICK if quick else accuracy.FULL
    chosen = QUICK_SPLITS if quick else SPLITS
    out = header("measured-splits", quick) | {"settings": {"splits": list(chosen), "seed": 0}, "sets": {}}
    for name in names or sorted(realdata.REAL_INFO):
        lines = []
        for split in chosen:
            t0 = time.perf_counter()
            line = splits.run_one(name, split, ({}, {}), [], seed=0, settings=settings, baselines=True)
            lines.append({"split": split} | line)
            best = min(line["baselines"].items(), key=lambda kv: kv[1]["rmse"])
            say(
                f"[splits] {name} split {split}: rmse {line['rmse']:.4g}, best baseline {best[0]} "
                f"{best[1]['rmse']:.4g} ({time.perf_counter() - t0:.0f} s)"
            )
        out["sets"][name] = {"splits": lines, "summary": summarize(lines)}
    return out


def summarize(lines: list[dict]) -> dict:
    """Mean RMSE and MAE over the splits, their spread (sd / mean), and how many splits the model
    won against the best baseline of each split."""
    rmse = [x["rmse"] for x in lines]
    best = [min(v["rmse"] for v in x["baselines"].values()) for x in lines]
    return {
        "rmse_mean": statistics.fmean(rmse),
        "rmse_spread": statistics.stdev(rmse) / statistics.fmean(rmse) if len(rmse) > 1 else 0.0,
        "mae_mean": statistics.fmean(x["mae"] for x in lines),
        "best_baseline_mean": statistics.fmean(best),
        "splits_below_every_baseline": sum(r < b for r, b in zip(rmse, best, strict=True)),
        "splits": len(lines),
    }
