"""`durability calibrate` measured (issue 14): does a band calibrated on held-out specimens cover
what it says on new ones?

Per set and seed: train the default model (or ``--latent D``) on the accuracy suite's split (32
training specimens, 60 epochs, the set's warm-up as the validation warm-up). Then, for each of
``--draws`` calibration sets of ``--cal-specimens`` new specimens of the same generator (seeds
CAL_SEED, CAL_SEED + 1, ...), calibrate the model on them and backtest ``--test-specimens`` other
new specimens (seed TEST_SEED) from the set's warm-up, with the model as trained and as calibrated:
80 % band coverage, band width, end-of-life 80 % interval coverage, RMSE. A large test set and
several calibration draws separate what the calibration does from the luck of one small draw of
specimens (16 specimens' coverage moves by +-0.1 from draw to draw: specimens differ, and rows of
one specimen err together). "pooled": the model calibrated on all the draws together. Each
calibration is made twice: one factor for every step (--bins 1) and a factor per group of steps
(--bins 4, the default).

    python benchmarks/calibration.py --sets ageing,coating --seeds 0,1,2

One JSON line per set and seed, appended to results/calibration.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd

from benchmarks.accuracy import direction_of, model_config
from benchmarks.common import code_version, one_thread
from durability_cli import training
from durability_cli.api import Model
from durability_cli.config import TrainConfig
from durability_cli.schema import Schema, validate
from durability_cli.synthetic import make_split

RESULTS = Path(__file__).resolve().parent / "results" / "calibration.jsonl"
CAL_SEED = 1000  # generator seeds of the calibration specimens: 1000, 1001, ... (the suite's split: 0)
TEST_SEED = 2000  # generator seed of the test specimens
BINS = (1, 4)  # calibrate --bins: one factor for every step, and the default


def scores(model: Model, table, info, cut: dict | None = None) -> dict:
    """The backtest scores of ``model`` on ``table`` from the set's warm-up (``cut``: other
    cut-offs, e.g. {"context_frac": 1/3} for a measured set), end of life in the set's direction."""
    cut = {"context": info.context} if cut is None else cut
    ev = model.evaluate(
        table, threshold=info.eol_threshold, direction=direction_of(info), baselines=False, **cut
    )
    m = ev.report["models"]["model"]
    eol = m.get("eol") or {}
    return {
        "rmse": m["rmse"],
        "coverage80": m["coverage"]["80"],
        "below80": (m.get("below") or {}).get("80"),  # the share of values under the band
        "above80": (m.get("above") or {}).get("80"),
        "width80": m["interval_width"]["80"],
        "interval_score80": m["interval_score"]["80"],  # width + misses' distance / 0.1: lower is better
        "crps": m.get("crps"),
        "eol_coverage": eol.get("interval_coverage"),
        "eol_n": eol.get("interval_n"),
        "eol_early": eol.get("interval_early"),
        "eol_late": eol.get("interval_late"),
    }


def suite_set(name: str):
    """The accuracy suite's split of synthetic set ``name`` (32 training, 16 test specimens,
    seed 0), its info and its schema."""
    split = make_split(name, 32, 16, seed=0)
    info = split["info"]
    return split, info, Schema("specimen_id", "time", info.target, info.covariates, info.static)


def new_specimens(name: str, n: int, seed: int, prefix: str, schema):
    """``n`` new specimens of set ``name`` from generator seed ``seed``, ids prefixed (never the
    training specimens' names), validated."""
    table = make_split(name, 0, n, seed=seed)["test"]
    table["specimen_id"] = prefix + table["specimen_id"].astype(str)
    return validate(table, schema, source=prefix.rstrip("-"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", default="ageing,coating,ball,battery,crack")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--latent", type=int, default=0, help="latent size (0: the default model)")
    p.add_argument("--draws", type=int, default=3, help="calibration sets per model")
    p.add_argument("--cal-specimens", type=int, default=16)
    p.add_argument("--test-specimens", type=int, default=64)
    a = p.parse_args()
    one_thread()
    commit = code_version()["commit"]
    for name in a.sets.split(","):
        split = make_split(name, 32, 16, seed=0)
        info = split["info"]
        schema = Schema("specimen_id", "time", info.target, info.covariates, info.static)
        test = new_specimens(name, a.test_specimens, TEST_SEED, "test-", schema)
        draws = [
            new_specimens(name, a.cal_specimens, CAL_SEED + d, f"cal{d}-", schema) for d in range(a.draws)
        ]
        for seed in [int(s) for s in a.seeds.split(",")]:
            cfg = TrainConfig(epochs=a.epochs, val_context=info.context, seed=seed, ensemble=1)
            table = validate(split["train"], schema, source="train")
            trained = Model(training.train(table, model_config(name, a.latent), cfg))
            out = {
                "set": name,
                "seed": seed,
                "latent": a.latent,
                "commit": commit,
                "k_trained": trained.summary.get("scale_calibration"),
                "test_specimens": a.test_specimens,
                "cal_specimens": a.cal_specimens,
                "before": scores(trained, test, info),
                "draws": [],
            }
            for held in draws:
                row = {}
                for bins in BINS:
                    model = trained.calibrate(
                        held, context=info.context, threshold=info.eol_threshold, bins=bins
                    )
                    block = model.summary["calibration"]
                    row[f"bins{bins}"] = {
                        "factors": block["factors"],
                        "cal_coverage_before": block["coverage_before"],
                        "cal_eol_before": block.get("eol_interval_coverage_before"),
                        "cal_eol_after": block.get("eol_interval_coverage_after"),
                        "after": scores(model, test, info),
                    }
                out["draws"].append(row)
            everything = pd.concat([d.frame for d in draws])
            out["pooled"] = {}
            for bins in BINS:
                model = trained.calibrate(everything, context=info.context, bins=bins)
                out["pooled"][f"bins{bins}"] = {
                    "specimens": model.summary["calibration"]["specimens"],
                    "factors": model.summary["calibration"]["factors"],
                    "after": scores(model, test, info),
                }
            print(json.dumps(out), flush=True)
            with open(RESULTS, "a") as f:
                f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
