"""Where the model's error follows a condition, and who can see it (issue 14, session 33).

On the suite's 96 fresh specimens the forecast errs one way at one end of the driving condition
(stress, temperature) and the other way at the other end (evaluate's ``by_condition``,
metrics.condition_trends). For each saved suite model (``run.py --save-models DIR``:
DIR/SET-sSEED.safetensors) and the set's driving condition (``--condition``, else the first
one), this scores with the mean path (samples 0), from the set's warm-up:

- ``fresh``: the suite's 96 fresh specimens (accuracy.fresh_split), and two more draws of 96
  (``--draws``: generator seeds), each with its bias and the condition's trend;
- ``inside``: the fresh specimens whose mean condition over the rows forecast lies inside the
  training specimens' range, the trend again (is it extrapolation?);
- ``validation``: each member alone on its own validation specimens, pooled (what chose each
  member's epoch: does it see the trend? a specimen two members validate on counts twice);
- ``test``: the suite's own test specimens (unseen, chose nothing);
- ``thirds``: the 80 % band's coverage (200 paths) on the fresh specimens, by third of the
  condition (do the misses gather at its ends?).

    python benchmarks/condition_trends.py --models DIR --sets crack,coating,battery --seeds 0,1,2

One JSON line per set and seed, appended to results/condition-trends.jsonl.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks import accuracy  # noqa: E402
from benchmarks.calibration import suite_set  # noqa: E402
from benchmarks.common import RESULTS, code_version, member_rows, one_thread  # noqa: E402
from durability_cli.api import Model, load  # noqa: E402
from durability_cli.metrics import condition_trends  # noqa: E402
from durability_cli.schema import validate  # noqa: E402


def trend(model: Model, table: pd.DataFrame, schema, info, condition: str, samples: int = 0):
    """(the trend of ``condition`` as evaluate reports it, with the bias and RMSE; the
    evaluation) of ``model``'s backtest of ``table`` from the set's warm-up."""
    ev = model.evaluate(
        validate(table, schema, source="table"),
        context=info.context,
        baselines=False,
        bounds=(None, None),
        samples=samples,
    )
    m = ev.report["models"]["model"]
    return _short(ev.report["by_condition"], condition) | {"bias": m["bias"], "rmse": m["rmse"]}, ev


def _short(trends: dict, condition: str) -> dict:
    c = trends["columns"][condition]
    return {
        "specimens": c["specimens"],
        "rho": c["rank_correlation"],
        "low": (c.get("low") or {}).get("error"),
        "high": (c.get("high") or {}).get("error"),
        "follows": c["follows"],
    }


def _after(table: pd.DataFrame, context: int, condition: str) -> pd.Series:
    """Each specimen's mean ``condition`` over its rows after the first ``context``."""
    rows = table[table.groupby("specimen_id").cumcount() >= context]
    return rows.groupby("specimen_id")[condition].mean()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", required=True, help="DIR of SET-sSEED.safetensors (run.py --save-models)")
    p.add_argument("--sets", default="crack,coating,battery")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--condition", default=None, help="the condition to follow (default: the set's first)")
    p.add_argument("--draws", default="12,13", help="generator seeds of further fresh draws of 96")
    a = p.parse_args()
    one_thread()
    commit = code_version()["commit"]
    for name in a.sets.split(","):
        split, info, schema = suite_set(name)
        condition = a.condition or schema.covariates[0]
        fresh = accuracy.fresh_split(name, 96, info)["test"]
        draws = {
            seed: accuracy.fresh_split(name, 96, info, seed)["test"]
            for seed in map(int, filter(None, a.draws.split(",")))
        }
        # the training specimens' range of the condition's mean over the rows after the warm-up
        low, high = _after(split["train"], info.context, condition).agg(["min", "max"])
        fresh_means = _after(fresh, info.context, condition)
        inside = fresh[fresh["specimen_id"].map(fresh_means.between(low, high))]
        for seed in [int(s) for s in a.seeds.split(",")]:
            model = load(Path(a.models) / f"{name}-s{seed}.safetensors")
            out = {"set": name, "seed": seed, "commit": commit, "condition": condition}
            out["fresh"], _ = trend(model, fresh, schema, info, condition)
            out["draws"] = {str(s): trend(model, t, schema, info, condition)[0] for s, t in draws.items()}
            out["inside"] = trend(model, inside, schema, info, condition)[0] | {"range": [low, high]}
            out["test"], _ = trend(model, split["test"], schema, info, condition)
            pooled = []
            for member in model.bundle.members:
                one = Model(dataclasses.replace(member, others=[]))
                _, ev = trend(one, member_rows(member, split["train"]), schema, info, condition)
                pooled.append(ev.specimens)
            frame = pd.concat(pooled, ignore_index=True)
            rmse = float(np.sqrt((frame["error"] ** 2 * frame["n"]).sum() / frame["n"].sum()))
            out["validation"] = _short(condition_trends(frame, rmse), condition)
            _, ev = trend(model, fresh, schema, info, condition, samples=200)
            bt = ev.backtest.dropna(subset=["y_true"])
            held = (bt["y_true"] >= bt["q0.1"]) & (bt["y_true"] <= bt["q0.9"])
            ids = schema.id_col  # evaluate's tables name the id column as the table does
            third = pd.qcut(ev.specimens.set_index(ids)[condition], 3, labels=["low", "mid", "high"])
            out["thirds"] = held.groupby(bt[ids].map(third), observed=True).mean().to_dict()
            print(json.dumps(out), flush=True)
            with open(RESULTS / "condition-trends.jsonl", "a") as f:
                f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
