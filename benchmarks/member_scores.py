"""Each ensemble member of a saved model forecast alone, and ways of combining them (issue 14).

    python benchmarks/member_scores.py --set laser --model DIR/laser-s0.safetensors

On a set's test specimens (a synthetic set's 96 fresh specimens, a measured set's test split),
each member's deterministic mean path from the warm-up, scored on the measured values after it;
then the model as it forecasts (the mean over its members), the members' median and their mean
without the highest and lowest at each row. Beside them each member's best validation RMSE, to
see whether validation tells the members that forecast new specimens badly.

One JSON line per call, appended to results/member-scores.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from benchmarks import realdata  # noqa: E402
from benchmarks.accuracy import forecast_rows, held_out, plan_for  # noqa: E402
from benchmarks.common import code_version, one_thread  # noqa: E402
from durability_cli.artifact import load_bundle  # noqa: E402
from durability_cli.forecasting import ForecastConfig, forecast  # noqa: E402
from durability_cli.schema import validate  # noqa: E402
from durability_cli.synthetic import DATASET_INFO  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "member-scores.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", required=True, choices=sorted(DATASET_INFO) + sorted(realdata.REAL_INFO))
    ap.add_argument("--model", required=True, type=Path, help="a model run.py --save-models wrote for --set")
    args = ap.parse_args()
    one_thread()
    info, part = held_out(args.set)
    test, clean, warm = part["test"], part["clean"], part["warmup"]
    rows = forecast_rows(test, clean, warm, info.target)
    bundle = load_bundle(args.model)
    plan = validate(plan_for(test, warm, info.target), bundle.schema, source="plan")
    col = f"{info.target}_mean"

    def on_rows(b) -> np.ndarray:
        fc = forecast(b, plan, ForecastConfig(samples=0)).forecast
        return rows.merge(fc[["specimen_id", "time", col]], on=["specimen_id", "time"], how="left")[
            col
        ].to_numpy()

    paths = np.array([on_rows(replace(m, others=[])) for m in bundle.members])  # [M, R]
    y = rows["y"].to_numpy()

    def rmse(p: np.ndarray) -> float:
        return round(float(np.sqrt(np.mean((p - y) ** 2))), 5)

    ordered = np.sort(paths, axis=0)
    out = {
        "set": args.set,
        "model": args.model.name,
        "commit": code_version()["commit"],
        "members": [rmse(p) for p in paths],
        "members_val_rmse": [round(float(m.summary.get("best_val_rmse", np.nan)), 5) for m in bundle.members],
        "model_rmse": rmse(on_rows(bundle)),
        "median": rmse(np.median(paths, axis=0)),
        "trimmed_mean": rmse(ordered[1:-1].mean(axis=0)) if len(paths) > 2 else None,
    }
    print(json.dumps(out))
    with open(RESULTS, "a") as f:
        f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
