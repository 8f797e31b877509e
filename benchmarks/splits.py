"""A variant against the default over several test splits of a set, by warm-up length.

The accuracy suite scores each set on one split: a measured set's (``realdata.split(name,
seed=0)``: a third of each temperature's devices unseen, warm-ups of a share of each specimen's
own rows) or a synthetic one's (``make_split(name, 32, 16, seed=0)``, warm-ups of ``context``
rows). Eleven or sixteen test specimens are few: this trains the suite's model (ensembles and
length as the default decides, validation from the set's warm-up, training seed ``--seed``) on several
splits, once per variant, and scores each on its test specimens (against the measured values,
noise included, as the suite) three ways:

- ``rmse``: the suite's score (each specimen from its own share of rows), and ``by_warmup`` the
  same split by warm-up length (which, on a real set, follows the specimen's length);
- ``fixed``: every test specimen forecast from the same N rows, for each N of ``--fixed``, all
  scored on the rows after the longest N (so the columns compare like with like).

    python benchmarks/splits.py --set device_b --splits 0,1,2,3,4 --variants "default;trend:trend=true"

A variant is ``name:field=value,...`` as in benchmarks/variants.py. Appends one JSON line per
(split, variant) to results/splits.jsonl (``--out``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import accuracy, realdata  # noqa: E402
from benchmarks.common import code_version, one_thread  # noqa: E402
from benchmarks.variants import parse_variants  # noqa: E402
from durability_cli.forecasting import ForecastConfig, forecast  # noqa: E402
from durability_cli.schema import Schema, validate  # noqa: E402
from durability_cli.synthetic import DATASET_INFO, make_split  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "splits.jsonl"


def rmse(rows: pd.DataFrame, fc: pd.DataFrame, target: str) -> float:
    """RMSE of the forecast mean on ``rows`` (forecast_rows' frame: the measured value in ``y``)."""
    merged = rows.merge(fc[["specimen_id", "time", f"{target}_mean"]], on=["specimen_id", "time"])
    if len(merged) != len(rows):
        raise RuntimeError(f"{len(rows) - len(merged)} rows without a forecast")
    return float(np.sqrt(np.mean((merged[f"{target}_mean"] - merged["y"]) ** 2)))


SETS = sorted(realdata.REAL_INFO) + sorted(DATASET_INFO)


def load_split(name: str, split_seed: int) -> dict:
    """The suite's split of ``name`` drawn with ``split_seed`` (0: the suite's own)."""
    if name in realdata.REAL_INFO:
        return realdata.split(name, seed=split_seed)
    return make_split(name, accuracy.FULL["n_train"], accuracy.FULL["n_test"], seed=split_seed)


def prepared(name: str, split_seed: int):
    """One split as the suite scores it: the set's info, the training table validated, the test
    table and its clean values, each test specimen's warm-up and the rows its forecast is scored on."""
    split = load_split(name, split_seed)
    info = split["info"]
    test, clean = split["test"], split["test_clean"]
    schema = Schema("specimen_id", "time", info.target, info.covariates, info.static)
    ds = validate(split["train"], schema, source=f"{name}-train")
    warmup = accuracy.warmup_lengths(test, info)
    return info, ds, test, clean, warmup, accuracy.forecast_rows(test, clean, warmup, info.target)


def run_one(
    name: str,
    split_seed: int,
    fields: tuple[dict, dict],
    fixed: list[int],
    seed: int = 0,
    settings: dict | None = None,
    baselines: bool = False,
) -> dict:
    """The suite's model (``settings``: accuracy.FULL's) of a variant on one test split, scored
    as the suite scores; with ``baselines``, persistence, linear and exponential on the same rows."""
    info, ds, test, clean, warmup, rows = prepared(name, split_seed)
    settings = dict(settings or accuracy.FULL) | {
        "seeds": [seed],
        "ensemble": 0,
        "options": {**fields[0], **fields[1]},
    }
    t0 = time.perf_counter()
    run, bundle = accuracy.run_model(ds, test, clean, rows, warmup, info, seed, settings)
    seconds = time.perf_counter() - t0

    def mean_path(plan_warmup: pd.Series) -> pd.DataFrame:
        plan = validate(accuracy.plan_for(test, plan_warmup, info.target), bundle.schema, source="plan")
        return forecast(bundle, plan, ForecastConfig(samples=0, seed=0)).forecast

    own = mean_path(warmup)
    by_warmup = {}
    for w in sorted(set(warmup.tolist())):
        ids = warmup.index[warmup == w]
        by_warmup[str(w)] = {
            "specimens": len(ids),
            "rmse": rmse(rows[rows["specimen_id"].isin(ids)], own, info.target),
        }
    out_fixed = {}
    if fixed:
        # every fixed warm-up leaves at least a row of each test specimen: the shortest decides
        common = accuracy.forecast_rows(test, clean, pd.Series(max(fixed), index=warmup.index), info.target)
        for w in fixed:
            out_fixed[str(w)] = rmse(common, mean_path(pd.Series(w, index=warmup.index)), info.target)
    out_baselines = {}
    if baselines:
        found = accuracy.run_baselines(test, rows, warmup, info, ds)
        out_baselines = {k: {"rmse": v["rmse"], "mae": v["mae"]} for k, v in found.items()}
    return {
        "baselines": out_baselines,
        "coverage80": run["scores"].get("coverage80"),
        "rmse": run["scores"]["rmse"],
        "mae": run["scores"]["mae"],
        "rmse_deterministic": rmse(rows, own, info.target),
        "by_warmup": by_warmup,
        "fixed": out_fixed,
        "test_specimens": len(warmup),
        "members": run["members"],
        "best_val_rmse": run["best_val_rmse"],
        "seconds": round(seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--set", required=True, choices=SETS, help="a set of the accuracy suite")
    p.add_argument("--splits", default="0,1,2", help="test-split seeds (0 is the suite's)")
    p.add_argument("--variants", default="default;trend:trend=true")
    p.add_argument("--fixed", default="3,6", help="warm-up rows every test specimen is also forecast from")
    p.add_argument("--out", type=Path, default=RESULTS, help="the JSON-lines file to append to")
    p.add_argument(
        "--seed", type=int, default=0, help="training seed (as the suite's: an ensemble of 5 trains 5s..5s+4)"
    )
    args = p.parse_args(argv)
    try:
        variants = parse_variants(args.variants)
    except ValueError as e:
        p.error(str(e))
    fixed = [int(x) for x in args.fixed.split(",") if x]
    table = load_split(args.set, 0)
    shortest = int(pd.concat([table["train"], table["test"]]).groupby("specimen_id").size().min())
    if fixed and max(fixed) >= shortest:
        p.error(f"--fixed {max(fixed)}: the shortest specimen of {args.set} has {shortest} rows; give fewer")
    one_thread()
    code = code_version()
    for split_seed in (int(s) for s in args.splits.split(",")):
        for label, fields in variants.items():
            line = {
                "set": args.set,
                "split": split_seed,
                "variant": label,
                "seed": args.seed,
                "fields": {**fields[0], **fields[1]},
            }
            line |= run_one(args.set, split_seed, fields, fixed, args.seed) | {"code": code}
            with args.out.open("a") as f:
                f.write(json.dumps(line) + "\n")
            print(
                f"{args.set} split {split_seed} seed {args.seed} {label}: RMSE {line['rmse']:.4f}", flush=True
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
