"""`durability tune --jobs 2` against `--jobs 1`: what a budget buys when a trial's folds train at once.

Each trial of `tune` trains one model per fold. With `--jobs 2` the folds are shared between this
process and a second one (durability_cli/tuning.py, `_fold_scores_beside`). This runs the search on
the same table with the same budget, once with each `--jobs` (the order alternating per repeat),
and records how many trials started, completed and were pruned, the defaults' trial (trial 0, the
same settings in both) with its wall time, and the best score found.

    python benchmarks/tune_jobs.py --data sample_data/coating.csv --static material --budget 10m

Appends one JSON line per run pair to results/tune-jobs.jsonl. Meaningful only on a machine with at
least two free cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import code_version  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "tune-jobs.jsonl"


def search(data: str, static: list[str], budget: str, jobs: int) -> dict:
    import durability_cli as dur

    start = time.perf_counter()
    result = dur.tune(data, static=static, budget=budget, jobs=jobs)
    wall = time.perf_counter() - start
    trials = result.trials
    first = trials[trials["number"] == 0].iloc[0]
    return {
        "jobs": jobs,
        "wall_seconds": round(wall, 1),
        "trials": len(trials),
        "complete": int((trials["state"] == "COMPLETE").sum()),
        "pruned": int((trials["state"] == "PRUNED").sum()),
        "stopped": int((trials["state"] == "STOPPED").sum()),
        "defaults_rmse": None if first["state"] != "COMPLETE" else float(first["rmse"]),
        "defaults_seconds": float(first["seconds"]),
        "best_score": result.best_score,
        "best_is_defaults": result.best_score == result.default_score,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="sample_data/coating.csv")
    ap.add_argument("--static", default="material", help="comma-separated static columns")
    ap.add_argument("--budget", default="10m")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--jobs", default="1,2", help="which --jobs to run, e.g. 2 to rerun only that one")
    args = ap.parse_args()
    chosen = [int(j) for j in args.jobs.split(",")]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    static = [c for c in args.static.split(",") if c]
    for r in range(args.repeats):
        order = chosen if r % 2 == 0 else chosen[::-1]
        runs = [search(args.data, static, args.budget, jobs) for jobs in order]
        row = {
            "data": args.data,
            "budget": args.budget,
            "runs": sorted(runs, key=lambda run: run["jobs"]),
            "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "load_average_end": [round(x, 2) for x in os.getloadavg()],
            "code": code_version(),
        }
        print(json.dumps(row), flush=True)
        with open(RESULTS, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
