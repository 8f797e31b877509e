"""Oracle benchmark for the per-specimen latent (issue 13): how much of the gap between the
default model and an oracle that is *told* each specimen's hidden factors does the latent close?

Per dataset with a hidden per-specimen factor (coating: the lot factor and s0; crack: the Paris
coefficient and the initial crack), the same split and settings as the accuracy suite
(``make_split(name, n_train, n_test, seed)``, warm-up ``context`` rows, forecast to the end),
three models per seed:

- default: the model as it is, with no latent;
- latent: ``ModelConfig(latent=D)``, z fitted to each test specimen's warm-up;
- oracle: the default model with the hidden factors given as numeric static columns.

gap closed = (RMSE_default - RMSE_latent) / (RMSE_default - RMSE_oracle).

    python benchmarks/latent.py                 # 3 seeds, both sets, results/latent.json
    python benchmarks/latent.py --quick         # 1 seed, fewer epochs (a smoke run)
    python benchmarks/latent.py --latent 2 --prior 0.1 --sets coating
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import RESULTS, one_thread  # noqa: E402
from durability_cli.artifact import save_bundle  # noqa: E402
from durability_cli.config import ModelConfig, TrainConfig  # noqa: E402
from durability_cli.forecasting import ForecastConfig, forecast  # noqa: E402
from durability_cli.schema import Schema, validate  # noqa: E402
from durability_cli.synthetic import DATASET_INFO, make_split  # noqa: E402
from durability_cli.training import train  # noqa: E402

HIDDEN = {"ageing": ("batch_factor", "p0"), "coating": ("lot", "s0"), "crack": ("paris_c", "cracked0")}


def rmse_after_warmup(bundle, test, clean, info) -> tuple[float, float, float]:
    """RMSE over the rows after the warm-up against the noisy and the clean test values, and the
    forecast's wall time."""
    plan = test.copy()
    pos = plan.groupby("specimen_id").cumcount().to_numpy()
    plan.loc[pos >= info.context, info.target] = np.nan
    ds = validate(plan, bundle.schema, source="plan")
    t0 = time.perf_counter()
    fc = forecast(bundle, ds, ForecastConfig(samples=0)).forecast
    seconds = time.perf_counter() - t0
    keep = pos >= info.context
    truth = test.loc[keep, ["specimen_id", "time", info.target]].assign(
        clean=clean.loc[keep, info.target].values
    )
    merged = truth.merge(fc[["specimen_id", "time", f"{info.target}_mean"]], on=["specimen_id", "time"])
    pred = merged[f"{info.target}_mean"].to_numpy()
    noisy = float(np.sqrt(np.nanmean((pred - merged[info.target].to_numpy()) ** 2)))
    clean_rmse = float(np.sqrt(np.nanmean((pred - merged["clean"].to_numpy()) ** 2)))
    return noisy, clean_rmse, seconds


def run_set(name: str, seed: int, args) -> dict:
    info = DATASET_INFO[name]
    split = make_split(name, args.n_train, args.n_test, seed=seed, hidden=True)
    hidden = HIDDEN[name]
    out = {}
    variants = {
        "default": (ModelConfig(lags=3) if name == "ball" else ModelConfig(), info.static),
        "latent": (ModelConfig(latent=args.latent, latent_prior=args.prior), info.static),
        "oracle": (ModelConfig(), info.static + hidden),
    }
    for variant, (mcfg, static) in variants.items():
        if args.only and variant not in args.only:
            continue
        schema = Schema("specimen_id", "time", info.target, info.covariates, tuple(static))
        ds = validate(split["train"], schema, source=f"{name}-train")
        t0 = time.perf_counter()
        bundle = train(
            ds, mcfg, TrainConfig(epochs=args.epochs, val_context=info.context, seed=seed, ensemble=1)
        )
        train_seconds = time.perf_counter() - t0
        if args.save_models:
            Path(args.save_models).mkdir(parents=True, exist_ok=True)
            save_bundle(bundle, Path(args.save_models) / f"{name}-{variant}-{seed}.safetensors")
        test_schema_ds = split["test"]
        rmse, rmse_clean, fc_seconds = rmse_after_warmup(bundle, test_schema_ds, split["test_clean"], info)
        out[variant] = {
            "rmse": rmse,
            "rmse_clean": rmse_clean,
            "train_seconds": round(train_seconds, 1),
            "forecast_seconds": round(fc_seconds, 3),
            "best_epoch": bundle.summary["best_epoch"],
            "best_val_rmse": bundle.summary["best_val_rmse"],
        }
        print(f"{name} seed {seed} {variant}: {out[variant]}", file=sys.stderr, flush=True)
    return out


def gap_closed(d: float, latent: float, oracle: float) -> float:
    return (d - latent) / (d - oracle) if d != oracle else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--sets", default="ageing,coating,crack")
    p.add_argument("--seeds", default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--latent", type=int, default=ModelConfig.latent or 2)
    p.add_argument("--prior", type=float, default=ModelConfig.latent_prior)
    p.add_argument("--only", default=None, help="comma-separated variants to run")
    p.add_argument("--n-train", type=int, default=32)
    p.add_argument("--n-test", type=int, default=16)
    p.add_argument("--out", default=str(RESULTS / "latent.json"))
    p.add_argument(
        "--save-models",
        default=None,
        help="also write each trained model to DIR/SET-VARIANT-SEED.safetensors",
    )
    args = p.parse_args()
    args.only = args.only.split(",") if args.only else None
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else ([0] if args.quick else [0, 1, 2])
    args.epochs = args.epochs or (10 if args.quick else 60)
    one_thread()
    results = {"settings": dataclasses.asdict(ModelConfig()) | vars(args) | {"seeds": seeds}, "sets": {}}
    for name in args.sets.split(","):
        runs = [run_set(name, seed, args) for seed in seeds]
        summary = {}
        for variant in runs[0]:
            vals = [r[variant]["rmse"] for r in runs]
            summary[variant] = {
                "rmse_mean": statistics.fmean(vals),
                "rmse_sd": statistics.stdev(vals) if len(vals) > 1 else 0.0,
                "rmse": vals,
                "forecast_seconds": statistics.fmean(r[variant]["forecast_seconds"] for r in runs),
            }
        if {"default", "latent", "oracle"} <= set(summary):
            summary["gap_closed"] = gap_closed(
                summary["default"]["rmse_mean"],
                summary["latent"]["rmse_mean"],
                summary["oracle"]["rmse_mean"],
            )
        results["sets"][name] = {"runs": runs, "summary": summary}
        print(json.dumps({name: summary}, indent=1), file=sys.stderr, flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
