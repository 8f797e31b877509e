"""Which way the forecast errs on specimens training saw and on new ones (issue 14, session 32).

On the suite's 96 fresh specimens the misses of the 80 % band and of the end-of-life interval are
mostly on one side (RESULTS.md, the bands rows): coating and battery lose durability faster than
forecast, crack grows faster. This asks whether training could have seen it. For each saved
suite model (``run.py --save-models DIR``: DIR/SET-sSEED.safetensors) it forecasts, from the set's
warm-up:

- its training table (every member saw these specimens: in-sample, or as its validation);
- each member's own validation specimens with that member alone (what `train` measures the
  band on, see training._validation_scores);
- the suite's 96 fresh specimens (accuracy.fresh_split);

and reports the bias of the mean column (forecast - measured), the shares of measured values
under and over the 80 % band, the RMSE left after taking away each tenth of the horizon's
mean error (an upper bound on a bias correction by horizon), and whether the error follows a
condition (evaluate's ``by_condition``: the rank correlation of each specimen's mean error with
its mean condition, the mean errors of the thirds with the least and the most of it).

    python benchmarks/seen_and_new.py --models DIR --sets coating,battery,crack,ageing --seeds 0,1,2

One JSON line per set and seed, appended to results/seen-and-new.jsonl.
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

from benchmarks.accuracy import fresh_split  # noqa: E402
from benchmarks.calibration import suite_set  # noqa: E402
from benchmarks.common import RESULTS, code_version, member_rows, one_thread  # noqa: E402
from durability_cli.api import Model, load  # noqa: E402
from durability_cli.schema import validate  # noqa: E402


def sides(model: Model, table, info) -> dict:
    """Bias and the shares under and over the 80 % band of ``model``'s backtest of ``table``, and
    the RMSE left if each tenth of the steps after the warm-up had its own mean error taken away
    (``rmse_debiased``: an upper bound on what a bias correction by horizon could gain, fitted on
    the very rows it is scored on)."""
    ev = model.evaluate(table, context=info.context, baselines=False, bounds=(None, None))
    m = ev.report["models"]["model"]
    bt = ev.backtest.dropna(subset=["y_true", "y_pred"])
    err = bt["y_pred"] - bt["y_true"]
    tenth = pd.qcut(bt["step"], 10, labels=False, duplicates="drop")
    left = err - err.groupby(tenth).transform("mean")
    return {
        "specimens": int(ev.backtest[model.schema.id_col].nunique()),
        "rmse": m["rmse"],
        "bias": m["bias"],
        "below80": m["below"]["80"],
        "above80": m["above"]["80"],
        "rmse_debiased": float(np.sqrt((left**2).mean())),
        # whether the error follows a condition (evaluate's by_condition, metrics.condition_trends)
        "by_condition": {
            name: {
                "rho": c["rank_correlation"],
                "low": c.get("low", {}).get("error"),
                "high": c.get("high", {}).get("error"),
                "follows": c["follows"],
            }
            for name, c in ev.report["by_condition"]["columns"].items()
        },
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", required=True, help="DIR of SET-sSEED.safetensors (run.py --save-models)")
    p.add_argument("--sets", default="coating,battery,crack,ageing")
    p.add_argument("--seeds", default="0,1,2")
    a = p.parse_args()
    one_thread()
    commit = code_version()["commit"]
    for name in a.sets.split(","):
        split, info, schema = suite_set(name)
        train = validate(split["train"], schema, source="train")
        fresh = validate(fresh_split(name, 96, info)["test"], schema, source="fresh")
        for seed in [int(s) for s in a.seeds.split(",")]:
            model = load(Path(a.models) / f"{name}-s{seed}.safetensors")
            members = []
            for member in model.bundle.members:
                one = Model(dataclasses.replace(member, others=[]))
                held = member_rows(member, split["train"])
                members.append(sides(one, validate(held, schema, source="validation"), info))
            rows = sum(x["specimens"] for x in members)
            pooled = pd.DataFrame(members)
            w = pooled["specimens"] / rows
            out = {
                "set": name,
                "seed": seed,
                "commit": commit,
                "training_table": sides(model, train, info),
                # each member on its own validation specimens, weighted by their count
                "validation": {k: float((pooled[k] * w).sum()) for k in ("bias", "below80", "above80")}
                | {"specimens": rows},
                "fresh": sides(model, fresh, info),
            }
            print(json.dumps(out), flush=True)
            with open(RESULTS / "seen-and-new.jsonl", "a") as f:
                f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
