"""Cross-fitted band calibration (issue 14), measured before it is built: can a model calibrate
its band without held-out specimens?

`durability calibrate` needs specimens the model never saw. A cross-fit makes every training
specimen such a specimen once: the training specimens are cut into K folds, member k of an
ensemble trains on the other K - 1 folds (with its own validation split inside them) and is
backtested on fold k from the set's warm-up; the out-of-fold backtests of all members, pooled,
give the band's factor (calibration.measure, one factor), which the ensemble of the K members
then carries. Scored on new specimens against the default model (trained on everything, band as
trained) and against the cross-fit ensemble uncalibrated:

    python benchmarks/crossfit.py --sets ageing,coating,battery --seeds 0
    python benchmarks/crossfit.py --sets device_b --seeds 0,1,2 --splits 0,1,2

Synthetic sets: the accuracy suite's 32 training specimens, 64 new test specimens (generator seed
2000, as benchmarks/calibration.py). device_b: the suite's split ``--splits`` (23 training, 11
test devices). One JSON line per set, split and seed, appended to results/crossfit.jsonl.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd

from benchmarks import realdata
from benchmarks.accuracy import model_config
from benchmarks.calibration import TEST_SEED, new_specimens, scores
from benchmarks.common import code_version, one_thread
from durability_cli import training
from durability_cli.api import Model, load
from durability_cli.calibration import calibrated, measure
from durability_cli.config import TrainConfig
from durability_cli.ensemble import combine
from durability_cli.schema import Schema, validate
from durability_cli.synthetic import make_split

RESULTS = Path(__file__).resolve().parent / "results" / "crossfit.jsonl"


def cross_fit(train: pd.DataFrame, schema, name: str, cfg: TrainConfig, folds: int, cut: dict):
    """The K members (member k without fold k) as one ensemble, and its out-of-fold calibration."""
    ids = np.array(sorted(train["specimen_id"].unique()))
    fold_of = dict(
        zip(
            ids[np.random.default_rng(cfg.seed).permutation(len(ids))],
            np.arange(len(ids)) % folds,
            strict=True,
        )
    )
    fold = train["specimen_id"].map(fold_of).to_numpy()
    members, backtests, centres = [], [], []
    for k in range(folds):
        rest = validate(train[fold != k], schema, source=f"fold{k}-train")
        member = training.train(rest, model_config(name, 0), dataclasses.replace(cfg, seed=cfg.seed + k))
        held = train[fold == k]
        one = Model(member)
        options = dict(baselines=False, bounds=(None, None), **cut)
        backtests.append(one.evaluate(held, samples=200, **options).backtest)
        centres.append(one.evaluate(held, samples=0, **options).backtest)
        members.append(member)
    block = measure(
        pd.concat(backtests, ignore_index=True), pd.concat(centres, ignore_index=True), 0.8, 1, "out-of-fold"
    )
    ensemble = combine(members)
    return Model(ensemble), Model(calibrated(ensemble, block)), block


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", default="ageing,coating,battery")
    p.add_argument("--seeds", default="0")
    p.add_argument("--splits", default="0", help="test splits of a measured set")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--models", type=Path, default=None, help="eol_calibration.py's trained default models")
    a = p.parse_args()
    one_thread()
    commit = code_version()["commit"]
    for name in a.sets.split(","):
        real = name in realdata.REAL_INFO
        for split_seed in [int(s) for s in a.splits.split(",")] if real else [0]:
            split = realdata.split(name, seed=split_seed) if real else make_split(name, 32, 16, seed=0)
            info = split["info"]
            schema = Schema("specimen_id", "time", info.target, info.covariates, info.static)
            test = split["test"] if real else new_specimens(name, 64, TEST_SEED, "test-", schema).frame
            cut = {"context_frac": info.warmup_fraction} if real else {"context": info.context}
            for seed in [int(s) for s in a.seeds.split(",")]:
                cfg = TrainConfig(epochs=a.epochs, val_context=info.context, seed=seed, ensemble=1)
                cached = None if a.models is None else a.models / f"{name}-{seed}-{a.epochs}.safetensors"
                if cached is not None and not real and cached.exists():  # benchmarks/eol_calibration.py's
                    single = load(cached)
                else:
                    table = validate(split["train"], schema, source="train")
                    single = Model(training.train(table, model_config(name, 0), cfg))
                raw, fitted, block = cross_fit(split["train"], schema, name, cfg, a.folds, cut)
                out = {
                    "set": name,
                    "split": split_seed,
                    "seed": seed,
                    "folds": a.folds,
                    "commit": commit,
                    "factor": block["factor"],
                    "oof_coverage_before": block["coverage_before"],
                    "single": scores(single, test, info, cut),
                    "crossfit_raw": scores(raw, test, info, cut),
                    "crossfit_calibrated": scores(fitted, test, info, cut),
                }
                print(json.dumps(out), flush=True)
                with open(RESULTS, "a") as f:
                    f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
