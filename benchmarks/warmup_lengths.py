"""Forecasts from warm-ups shorter or longer than training's, by `--warmup-min` (issue 14).

`train --warmup-min 1` feeds every training rollout exactly `--val-context` measured rows; the
default (0) feeds 1 to `val_context`. A model trained the first way may lean on seeing that many
rows. This trains both on the accuracy suite's split of a set (ensembles as the default decides,
`val_context` the set's warm-up) and forecasts the same test specimens from several warm-up
lengths. Each forecast is scored on the rows after the longest warm-up, which every warm-up
length forecasts, so the columns compare like with like (and on its own rows, after its own
warm-up).

    python benchmarks/warmup_lengths.py --set ageing --seeds 0 --shares 0,1 --contexts 13,26,52,78

`--val-context N` trains on another warm-up than the set's; `--field FIELD=VALUE` (as run.py's
`--set`) trains a variant, named in each line by `--label`:

    python benchmarks/warmup_lengths.py --set ageing --shares 1 --val-context 39 --contexts 39,52,78 --label fixed39

Appends one JSON line per (set, seed, share, warm-up) to results/warmup-lengths.jsonl (`--out`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.accuracy import forecast_rows, model_config, plan_for, warmup_lengths  # noqa: E402
from benchmarks.common import code_version, config_fields, one_thread  # noqa: E402
from durability_cli.config import TrainConfig  # noqa: E402
from durability_cli.ensemble import resolve_auto  # noqa: E402
from durability_cli.forecasting import ForecastConfig, forecast  # noqa: E402
from durability_cli.schema import Schema, validate  # noqa: E402
from durability_cli.synthetic import make_split  # noqa: E402
from durability_cli.training import train  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "warmup-lengths.jsonl"


def rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - truth) ** 2)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", required=True, help="a synthetic set of the accuracy suite")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--shares", default="0,1", help="--warmup-min values to train")
    parser.add_argument("--contexts", default="", help="test warm-up rows (default: 0.5, 1, 1.5 x the set's)")
    parser.add_argument(
        "--val-context", type=int, default=0, help="training's --val-context (default: the set's warm-up)"
    )
    parser.add_argument(
        "--field",
        dest="fields",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="any other ModelConfig/TrainConfig field, as run.py's --set (repeatable)",
    )
    parser.add_argument("--label", default="", help="a name for the variant, written in each line")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the JSON-lines file to append to")
    args = parser.parse_args(argv)
    try:
        model_fields, train_fields = config_fields(args.fields, source="--field")
    except ValueError as e:
        parser.error(str(e))
    own = {"seed": "--seeds", "val_context": "--val-context", "warmup_min": "--shares"}
    for name in own.keys() & train_fields.keys():
        parser.error(f"--field {name}: the script sets it itself (use {own[name]})")
    one_thread()
    code = code_version()
    split = make_split(args.set, 32, 16, seed=0)
    info = split["info"]
    train_df, test, clean = split["train"], split["test"], split["test_clean"]
    contexts = (
        [int(c) for c in args.contexts.split(",")]
        if args.contexts
        else [max(2, int(round(f * info.context))) for f in (0.5, 1.0, 1.5)]
    )
    schema = Schema("specimen_id", "time", info.target, info.covariates, info.static)
    ds_train = validate(train_df, schema, source=f"{args.set}-train")
    mcfg = replace(model_config(args.set, 0, 0.1, "none"), **model_fields)
    val_context = args.val_context or info.context
    longest = max(contexts)
    common = forecast_rows(test, clean, warmup_lengths(test, replace(info, context=longest)), info.target)
    for seed in (int(s) for s in args.seeds.split(",")):
        for share in (float(s) for s in args.shares.split(",")):
            cfg = TrainConfig(
                **{"epochs": 0, **train_fields, "val_context": val_context, "warmup_min": share}
            )
            members = resolve_auto(ds_train, mcfg, cfg)[0].ensemble
            t0 = time.perf_counter()
            bundle = train(ds_train, mcfg, replace(cfg, seed=seed * members))
            seconds = time.perf_counter() - t0
            for context in contexts:
                warmup = warmup_lengths(test, replace(info, context=context))
                plan = validate(plan_for(test, warmup, info.target), bundle.schema, source="plan")
                fc = forecast(bundle, plan, ForecastConfig(samples=0)).forecast
                fc = fc[["specimen_id", "time", f"{info.target}_mean"]].rename(
                    columns={f"{info.target}_mean": "p"}
                )
                own = forecast_rows(test, clean, warmup, info.target).merge(fc, on=["specimen_id", "time"])
                same = common.merge(fc, on=["specimen_id", "time"])
                line = {
                    "set": args.set,
                    "seed": seed,
                    "warmup_min": share,
                    "val_context": val_context,
                    "variant": args.label,
                    "fields": args.fields,
                    "test_context": context,
                    "rmse_common_rows": rmse(same["p"].to_numpy(), same["y"].to_numpy()),
                    "rmse_own_rows": rmse(own["p"].to_numpy(), own["y"].to_numpy()),
                    "common_rows": len(same),
                    "members": members,
                    "parameters": bundle.summary["parameters"],
                    "train_seconds": round(seconds, 1),
                    "code": code,
                }
                print(json.dumps(line), flush=True)
                with args.out.open("a") as fh:
                    fh.write(json.dumps(line) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
