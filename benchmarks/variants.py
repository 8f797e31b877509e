"""Training options side by side on small data: RMSE mean and seed spread, best epochs.

Issue 14 asks for training that is stable on small, noisy tables (seeds agreeing, early stopping
not fooled by a few validation specimens). This runs the accuracy suite's split (``make_split``:
``--n-train`` training specimens, ``--n-test`` unseen ones, forecast after ``context`` warm-up
rows) once per seed and variant, and reports the test RMSE against the noisy truth, its spread
over seeds (sd / mean) and the best epochs.

    python benchmarks/variants.py --sets ageing,coating --variants "default;ema:ema=0.9"
    python benchmarks/variants.py --quick          # 1 seed, 10 epochs (a smoke run)

A variant is ``name:field=value,field=value`` over TrainConfig or ModelConfig fields; a text
value's own commas are written as ``+`` (``transform=temperature=arrhenius+humidity=log``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import RESULTS, config_fields, one_thread  # noqa: E402
from benchmarks.latent import rmse_after_warmup  # noqa: E402
from durability_cli.config import ModelConfig, TrainConfig  # noqa: E402
from durability_cli.schema import Schema, validate  # noqa: E402
from durability_cli.synthetic import DATASET_INFO, make_split  # noqa: E402
from durability_cli.training import train  # noqa: E402


def parse_variants(text: str) -> dict[str, tuple[dict, dict]]:
    """ "default;ema:ema=0.9" -> {"default": ({}, {}), "ema": ({}, {"ema": 0.9})}: each variant's
    ModelConfig and TrainConfig fields, typed and checked as `train --config` does
    (common.config_fields; a text value's own commas written as +). Raises ValueError in one line."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, _, body = part.partition(":")
        out[name] = config_fields(
            [i for i in body.split(",") if i], source=f"variant {name}", plus_is_comma=True
        )
    return out


def run_one(name: str, seed: int, variant: tuple[dict, dict], args) -> dict:
    info = DATASET_INFO[name]
    split = make_split(name, args.n_train, args.n_test, seed=seed)
    schema = Schema("specimen_id", "time", info.target, info.covariates, tuple(info.static))
    ds = validate(split["train"], schema, source=f"{name}-train")
    model_opts, train_opts = variant
    if name == "ball":
        model_opts = {"lags": 3, **model_opts}
    cfg = TrainConfig(
        **{"epochs": args.epochs, "val_context": info.context, "seed": seed, "ensemble": 1, **train_opts}
    )
    t0 = time.perf_counter()
    bundle = train(ds, ModelConfig(**model_opts), cfg)
    seconds = time.perf_counter() - t0
    rmse, rmse_clean, _ = rmse_after_warmup(bundle, split["test"], split["test_clean"], info)
    return {
        "rmse": rmse,
        "rmse_clean": rmse_clean,
        "best_epoch": bundle.summary["best_epoch"],
        "epochs_run": len(bundle.summary["history"]),
        "train_seconds": round(seconds, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--sets", default="ageing,coating")
    p.add_argument("--seeds", default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--variants", default="default;ema:ema=0.9")
    p.add_argument("--n-train", type=int, default=32)
    p.add_argument("--n-test", type=int, default=16)
    p.add_argument("--out", default=str(RESULTS / "variants.json"))
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else ([0] if args.quick else [0, 1, 2])
    args.epochs = args.epochs or (10 if args.quick else 100)
    try:
        variants = parse_variants(args.variants)
    except ValueError as e:
        p.error(str(e))
    one_thread()
    results = {"settings": vars(args) | {"seeds": seeds}, "sets": {}}
    for name in args.sets.split(","):
        summary = {}
        for vname, variant in variants.items():
            runs = []
            for seed in seeds:
                runs.append(run_one(name, seed, variant, args))
                print(f"{name} seed {seed} {vname}: {runs[-1]}", file=sys.stderr, flush=True)
            vals = [r["rmse"] for r in runs]
            mean = statistics.fmean(vals)
            sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
            summary[vname] = {
                "options": {**variant[0], **variant[1]},
                "rmse_mean": mean,
                "rmse_sd_over_mean": sd / mean if mean else float("nan"),
                "rmse": vals,
                "best_epochs": [r["best_epoch"] for r in runs],
                "train_seconds": [r["train_seconds"] for r in runs],
            }
        results["sets"][name] = summary
        print(json.dumps({name: summary}, indent=1), file=sys.stderr, flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
