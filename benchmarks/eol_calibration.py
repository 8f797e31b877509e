"""`durability calibrate --threshold --eol-interval` measured (issue 14): does the end-of-life
interval, calibrated on held-out specimens, hold 80 % of the true crossings of new ones?

Per set and seed: the default model trained on the accuracy suite's split (32 specimens, 60
epochs; cached in ``--models DIR`` so that a rerun skips the training), calibrated (``--bins 1``,
the set's threshold) on each of ``--draws`` sets of 16 new specimens (generator seeds 1000, ...)
and on all of them together ("pooled"), then backtested on 64 other new specimens (seed 2000) from
the set's warm-up three ways: as trained, with the band's factor alone (what `calibrate` does by
default), and with the band's factor and the end-of-life interval's shift (``--eol-interval``). Reported per
way: 80 % band coverage, end-of-life 80 % interval coverage and how many forecasts decided it.

    python benchmarks/eol_calibration.py --sets ageing,coating --seeds 0,1,2 --models eol-models
    python benchmarks/eol_calibration.py --sets crack --seeds 0 --trained DIR   # run.py --save-models DIR
    python benchmarks/eol_calibration.py --sets crack --seeds 0,1,2 --trained DIR --label "run.py --set warp=0.3"

One JSON line per set and seed, appended to results/eol-calibration.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd

from benchmarks.accuracy import model_config
from benchmarks.calibration import CAL_SEED, TEST_SEED, new_specimens, scores
from benchmarks.common import code_version, one_thread
from durability_cli import training
from durability_cli.api import Model, load
from durability_cli.calibration import calibrated
from durability_cli.config import TrainConfig
from durability_cli.schema import Schema, validate
from durability_cli.synthetic import make_split

RESULTS = Path(__file__).resolve().parent / "results" / "eol-calibration.jsonl"


def three_ways(trained: Model, held, test, info) -> dict:
    """Calibrate ``trained`` on ``held`` and score ``test`` with the band alone and with both."""
    both = trained.calibrate(
        held, context=info.context, threshold=info.eol_threshold, bins=1, eol_interval=True
    )
    block = both.summary["calibration"]
    band_only = Model(calibrated(trained.bundle, {k: v for k, v in block.items() if k != "eol"}))
    return {
        "specimens": block["specimens"],
        "factor": block["factor"],
        "eol": {
            k: block["eol"].get(k)
            for k in ("shift", "n", "crossed", "reached", "coverage_before", "coverage_after")
        },
        "band_only": scores(band_only, test, info),
        "both": scores(both, test, info),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", default="ageing,coating,battery,crack")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--draws", type=int, default=3, help="calibration sets of 16 specimens per model")
    p.add_argument("--models", type=Path, default=None, help="folder to keep the trained models in")
    p.add_argument(
        "--trained",
        type=Path,
        default=None,
        help="calibrate the models of run.py --save-models DIR (DIR/SET-sSEED.safetensors: the suite's "
        "default, or a variant such as --train-specimens 64) instead of training at --epochs",
    )
    p.add_argument(
        "--label",
        default=None,
        help="what the --trained models are, recorded as the line's model (default: the folder's name), "
        'e.g. "run.py --set warp=0.3 --save-models DIR"',
    )
    a = p.parse_args()
    one_thread()
    commit = code_version()["commit"]
    for name in a.sets.split(","):
        split = make_split(name, 32, 16, seed=0)
        info = split["info"]
        schema = Schema("specimen_id", "time", info.target, info.covariates, info.static)
        test = new_specimens(name, 64, TEST_SEED, "test-", schema)
        draws = [new_specimens(name, 16, CAL_SEED + d, f"cal{d}-", schema) for d in range(a.draws)]
        for seed in [int(s) for s in a.seeds.split(",")]:
            cached = None if a.models is None else a.models / f"{name}-{seed}-{a.epochs}.safetensors"
            if a.trained is not None:
                trained = load(a.trained / f"{name}-s{seed}.safetensors")
            elif cached is not None and cached.exists():
                trained = load(cached)
            else:
                cfg = TrainConfig(epochs=a.epochs, val_context=info.context, seed=seed, ensemble=1)
                table = validate(split["train"], schema, source="train")
                trained = Model(training.train(table, model_config(name, 0), cfg))
                if cached is not None:
                    cached.parent.mkdir(parents=True, exist_ok=True)
                    trained.save(cached)
            out = {
                "set": name,
                "seed": seed,
                "commit": commit,
                "threshold": info.eol_threshold,
                "model": (a.label or str(a.trained.name)) if a.trained is not None else f"{a.epochs} epochs",
                "as_trained": scores(trained, test, info),
                "draws": [three_ways(trained, held, test, info) for held in draws],
                "pooled": three_ways(trained, pd.concat([d.frame for d in draws]), test, info),
            }
            print(json.dumps(out), flush=True)
            with open(RESULTS, "a") as f:
                f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
