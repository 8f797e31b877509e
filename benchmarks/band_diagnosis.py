"""Where a forecast's 80 % band width comes from (issues 13 and 14): per set and seed, train the
durability model (``--latent D`` or the default) on the accuracy suite's split, free-run the test
specimens from the set's warm-up, and report in scaled units

- the RMSE, the median predicted scale and the median sd of the mean path over draws of z;
- the 80 % coverage of the band from the scale alone, from z's draws alone and from both, each
  times the validation factor the model file holds (``scale_calibration``);
- the factor k that would make each of them cover 80 % of the test errors, and the same factor
  measured on the model's own validation specimens (what a calibration could use) and on the
  specimens it was fitted to (in-sample, biased low).

One JSON line per seed, also appended to results/band-diagnosis.jsonl.

    python benchmarks/band_diagnosis.py --set ageing --seeds 1 --latent 2
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from benchmarks import realdata
from benchmarks.accuracy import model_config
from benchmarks.common import one_thread
from durability_cli import training
from durability_cli.config import TrainConfig
from durability_cli.data import to_series, to_tensors
from durability_cli.latent import fit_posterior
from durability_cli.schema import Schema, validate
from durability_cli.synthetic import make_split

RESULTS = Path(__file__).resolve().parent / "results" / "band-diagnosis.jsonl"
Z80 = 1.2815515655446004  # the standard normal's 0.9 quantile: an 80 % central band is +- Z80 sd


@torch.no_grad()
def spreads(model, t, context: int):
    """|error|, predicted scale and the sd of the mean path over z's draws (zeros without a
    latent), flat over the scored rows (measured, after the warm-up), scaled units."""
    model.eval()
    feed = training.warmup_feed(t, context)
    z = cov = None
    if model.cfg.latent:
        z, cov = fit_posterior(model, t, torch.full((t.y.shape[0],), context))
    r = model.run(t, feed, latent=z)
    spread = (
        torch.zeros_like(r.mean) if z is None else training._latent_variance(model, t, feed, z, cov).sqrt()
    )
    T = t.y.shape[1]
    mask = (t.observed & t.valid)[:, 1:] & (torch.arange(1, T).unsqueeze(0) >= context)
    return (t.y[:, 1:] - r.mean)[mask].abs(), r.scale[mask], spread[mask]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--set", required=True)
    p.add_argument("--seeds", default="0")
    p.add_argument("--latent", type=int, default=2, help="latent size (0: the default model)")
    p.add_argument("--epochs", type=int, default=60, help="0: the automatic length, as train's default")
    p.add_argument("--trend-line", action="store_true", help="start every step from the warm-up's line")
    a = p.parse_args()
    one_thread()
    split = (
        realdata.split(a.set, seed=0) if a.set in realdata.REAL_INFO else make_split(a.set, 32, 16, seed=0)
    )
    info = split["info"]
    schema = Schema("specimen_id", "time", info.target, info.covariates, info.static)
    for seed in [int(s) for s in a.seeds.split(",")]:
        cfg = TrainConfig(epochs=a.epochs, val_context=info.context, seed=seed, patience=a.epochs, ensemble=1)
        bundle = training.train(
            validate(split["train"], schema, source="train"),
            replace(model_config(a.set, a.latent), trend_line=a.trend_line),
            cfg,
        )
        k = float(bundle.summary.get("scale_calibration") or 1.0)
        train = split["train"]
        val = train[train["specimen_id"].isin(bundle.summary["val_specimens"])]
        out = {
            "set": a.set,
            "seed": seed,
            "latent": a.latent,
            "trend_line": a.trend_line,
            "k_file": round(k, 4),
        }
        fit = train[~train["specimen_id"].isin(bundle.summary["val_specimens"])]
        for name, table in (("test", split["test"]), ("val", val), ("train", fit)):
            t = to_tensors(to_series(validate(table, schema, source=name)), bundle.scaler)
            err, scale, spread = spreads(bundle.model, t, info.context)
            both = torch.sqrt(scale**2 + spread**2)
            if name == "test":
                out["rmse_scaled"] = round(float(err.pow(2).mean().sqrt()), 4)
                out["scale_median"] = round(float(scale.median()), 4)
                out["z_spread_median"] = round(float(spread.median()), 4)
                for label, sd in (("scale", scale), ("z", spread), ("both", both)):
                    out[f"coverage_{label}"] = round(float((err <= Z80 * k * sd).float().mean()), 4)
            for label, sd in (("scale", scale), ("both", both)):
                ratio = (err / sd.clamp(min=1e-12)).numpy()
                out[f"k_{name}_{label}"] = round(float(np.quantile(ratio, 0.8)) / Z80, 4)
        print(json.dumps(out), flush=True)
        with open(RESULTS, "a") as f:
            f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
