"""`durability calibrate` measured (issue 14): does a band calibrated on held-out specimens cover
what it says on new ones?

Per set and seed: train the default model on the accuracy suite's split (32 training specimens,
60 epochs, the set's warm-up as the validation warm-up), calibrate it on 16 more specimens of the
same generator (``make_split(set, 0, 16, seed=CAL_SEED)``: specimens neither training nor the
test saw), then backtest the suite's 16 test specimens from the set's warm-up with the model as
trained and as calibrated: 80 % band coverage, band width, end-of-life 80 % interval coverage, and
the RMSE (the mean path is the same: it checks that calibration moved only the band).

    python benchmarks/calibration.py --sets ageing,coating --seeds 0,1,2

One JSON line per set and seed, appended to results/calibration.jsonl.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.accuracy import model_config
from benchmarks.common import one_thread
from durability_cli import training
from durability_cli.api import Model
from durability_cli.config import TrainConfig
from durability_cli.schema import Schema, validate
from durability_cli.synthetic import make_split

RESULTS = Path(__file__).resolve().parent / "results" / "calibration.jsonl"
CAL_SEED = 1000  # the generator seed of the calibration specimens (the suite's split is seed 0)


def scores(model: Model, table, info) -> dict:
    """The backtest scores of ``model`` on ``table`` from the set's warm-up."""
    ev = model.evaluate(table, context=info.context, threshold=info.eol_threshold, baselines=False)
    m = ev.report["models"]["model"]
    eol = m.get("eol") or {}
    return {
        "rmse": m["rmse"],
        "coverage80": m["coverage"]["80"],
        "width80": m["interval_width"]["80"],
        "eol_coverage": eol.get("interval_coverage"),
        "eol_n": eol.get("interval_n"),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", default="ageing,coating,ball,battery,crack")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--latent", type=int, default=0, help="latent size (0: the default model)")
    a = p.parse_args()
    one_thread()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    for name in a.sets.split(","):
        split = make_split(name, 32, 16, seed=0)
        info = split["info"]
        schema = Schema("specimen_id", "time", info.target, info.covariates, info.static)
        extra = make_split(name, 0, 16, seed=CAL_SEED)["test"]
        extra["specimen_id"] = "cal-" + extra["specimen_id"].astype(str)  # not the training names
        held = validate(extra, schema, source="calibration")
        test = validate(split["test"], schema, source="test")
        for seed in [int(s) for s in a.seeds.split(",")]:
            cfg = TrainConfig(epochs=a.epochs, val_context=info.context, seed=seed)
            trained = Model(
                training.train(validate(split["train"], schema, source="train"), model_config(name, a.latent), cfg)
            )
            calibrated = trained.calibrate(held, context=info.context, threshold=info.eol_threshold)
            block = calibrated.summary["calibration"]
            out = {
                "set": name,
                "seed": seed,
                "latent": a.latent,
                "commit": commit,
                "k_trained": trained.summary.get("scale_calibration"),
                "factor": block["factor"],
                "cal_coverage_before": block["coverage_before"],
                "before": scores(trained, test, info),
                "after": scores(calibrated, test, info),
            }
            print(json.dumps(out), flush=True)
            with open(RESULTS, "a") as f:
                f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
