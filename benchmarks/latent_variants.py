"""Variants of the per-specimen latent (issue 13), one set at a time: per seed, train with
``--latent D`` on the accuracy suite's split and print the RMSE of the deterministic mean path
after the warm-up (z fitted to it), and with the warm-up's errors weighted less against the
prior in that fit (WARMUP_WEIGHTS; 0: z = 0); one JSON line per seed, also appended to
results/latent-variants.jsonl.

    python benchmarks/latent_variants.py --set battery --seeds 0,1,2 --fitted-share 0.25
    python benchmarks/latent_variants.py --set ageing --seeds 0 --latent 0     # the default model

``--fitted-share`` sets training.FITTED_SHARE: the share of a training batch's specimens that run
with the z fitted to their warm-up instead of their own row of the latent table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks import realdata
from benchmarks.accuracy import forecast_rows, model_config, plan_for, warmup_lengths
from benchmarks.common import one_thread
from benchmarks.latent import HIDDEN
from durability_cli import forecasting, latent, training
from durability_cli.config import TrainConfig
from durability_cli.forecasting import ForecastConfig, forecast
from durability_cli.schema import Schema, validate
from durability_cli.synthetic import make_split

WARMUP_WEIGHTS = (1.0, 0.5, 0.25, 0.1, 0.03, 0.0)  # the fit's weight on the warm-up against the prior
RESULTS = Path(__file__).resolve().parent / "results" / "latent-variants.jsonl"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--set", required=True, help="a synthetic set (make_split) or a measured one (realdata)")
    p.add_argument("--seeds", default="0", help="comma-separated training seeds")
    p.add_argument("--latent", type=int, default=2, help="latent size D (0: the default model)")
    p.add_argument("--prior", type=float, default=0.1, help="--latent-prior")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--fitted-share", type=float, default=training.FITTED_SHARE)
    p.add_argument("--tag", default="", help="a label stored with each line")
    p.add_argument(
        "--split-seed",
        type=int,
        default=0,
        help="which specimens are the test ones (the accuracy suite's split is 0); measured sets only",
    )
    p.add_argument(
        "--oracle",
        action="store_true",
        help="the default model told each specimen's hidden factors as static columns "
        "(benchmarks/latent.py's oracle, on this script's split); implies --latent 0",
    )
    p.add_argument("--context", type=int, default=0, help="warm-up rows of a synthetic set (0: its own)")
    p.add_argument("--val-split", default="random", help="TrainConfig.val_split: random or stratified")
    a = p.parse_args()
    if a.oracle:
        a.latent = 0
    one_thread()
    training.FITTED_SHARE = a.fitted_share
    split = (
        realdata.split(a.set, seed=a.split_seed)
        if a.set in realdata.REAL_INFO
        else make_split(a.set, 32, 16, seed=0, hidden=a.oracle)
    )
    info = split["info"]
    if a.context:  # a longer or shorter warm-up, in training's validation and in the test
        info = dataclasses.replace(info, context=a.context)
    static = tuple(info.static) + (tuple(HIDDEN[a.set]) if a.oracle else ())
    schema = Schema("specimen_id", "time", info.target, info.covariates, static)
    ds = validate(split["train"], schema, source="train")
    test, clean = split["test"], split["test_clean"]
    warm = warmup_lengths(test, info)
    rows = forecast_rows(test, clean, warm, info.target)
    plan = plan_for(test, warm, info.target)

    def rmse(bundle) -> float:
        plan_ds = validate(plan, bundle.schema, source="plan")
        fc = forecast(bundle, plan_ds, ForecastConfig(samples=0)).forecast
        m = rows.merge(fc[["specimen_id", "time", f"{info.target}_mean"]], on=["specimen_id", "time"])
        return float(np.sqrt(np.nanmean((m[f"{info.target}_mean"] - m["y"]) ** 2)))

    for seed in [int(s) for s in a.seeds.split(",")]:
        t0 = time.perf_counter()
        cfg = TrainConfig(
            epochs=a.epochs,
            val_context=info.context,
            seed=seed,
            patience=a.epochs,
            val_split=a.val_split,
            ensemble=1,
        )
        bundle = training.train(ds, model_config(a.set, a.latent, a.prior), cfg)
        out = {
            "set": a.set,
            "seed": seed,
            "latent": a.latent,
            "prior": a.prior,
            "fitted_share": a.fitted_share,
            "epochs": a.epochs,
            "rmse": rmse(bundle),
            "best_epoch": bundle.summary["best_epoch"],
            "val": bundle.summary["best_val_rmse"],
            "train_s": round(time.perf_counter() - t0, 1),
            "tag": a.tag,
            "split_seed": a.split_seed,
            "oracle": a.oracle,
            "val_split": a.val_split,
            "context": info.context,
        }
        if a.latent:
            # the test RMSE with the fit's warm-up weighted less against the prior (latent.fit_posterior;
            # forecasts use 1; 0: z = 0 for every specimen, the population's forecast)
            out["val_z0"] = bundle.summary["latent_val_rmse_population"]
            out["rmse_by_weight"] = {"1": out["rmse"]}
            for w in WARMUP_WEIGHTS[1:]:
                forecasting.fit_posterior = partial(latent.fit_posterior, weight=w)
                try:
                    out["rmse_by_weight"][f"{w:g}"] = rmse(bundle)
                finally:
                    forecasting.fit_posterior = latent.fit_posterior
            out["rmse_z0"] = out["rmse_by_weight"]["0"]
            out["z_sd"] = [round(float(v), 3) for v in bundle.model.latent_table.detach().std(0)]
        print(json.dumps(out), flush=True)
        with open(RESULTS, "a") as f:
            f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
