"""Should z also set a specimen's pace? Measured before building it (issue 13, "input, initial
state, or the rate head: measure which").

Today z enters the network as an input at every step, beside the static columns. A hidden rate
factor (ageing's batch factor, coating's lot) multiplies the whole decay, which an input can only
approximate within the range the training specimens span. The variant here also multiplies every
step of the rate head by exp(w . z), w learned and started at 0 (so it starts as today's model):
one direction of z is then "this specimen ages k times as fast", without a ceiling. The patch is
applied to the model class in this process only (``--pace``); nothing in the library changes.

Trains on the accuracy suite's split (32 specimens, 60 epochs, ``--latent 2``), backtests 64 new
specimens from the set's warm-up (benchmarks.calibration.scores), one thread:

    python benchmarks/latent_pace.py --sets ageing,coating,battery --seeds 0,1,2
    python benchmarks/latent_pace.py --sets ageing --seeds 0 --pace     # only the variant

One JSON line per set, seed and variant, appended to results/latent-pace.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.accuracy import model_config  # noqa: E402
from benchmarks.calibration import TEST_SEED, new_specimens, scores  # noqa: E402
from benchmarks.common import RESULTS, code_version, one_thread  # noqa: E402
from durability_cli import model as model_module  # noqa: E402
from durability_cli import training  # noqa: E402
from durability_cli.api import Model  # noqa: E402
from durability_cli.config import TrainConfig  # noqa: E402
from durability_cli.schema import Schema, validate  # noqa: E402
from durability_cli.synthetic import make_split  # noqa: E402


def patch_pace(start: float = 0.0) -> None:
    """FeedbackRNN with a learned w [D] and every residual step times exp(w . z) (z: the last D
    static inputs, where _static puts it); w starts at (start, 0, ...)."""
    cls = model_module.FeedbackRNN
    init, rate = cls.__init__, cls._rate

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.latent_pace = None
        if self.cfg.latent:
            w = torch.zeros(self.cfg.latent)
            w[0] = start
            self.latent_pace = nn.Parameter(w)

    def _static(self, static_num, static_cat, latent, B):
        out = static_of(self, static_num, static_cat, latent, B)
        z = out[:, -self.cfg.latent :]
        self._pace = torch.exp((z * self.latent_pace).cumsum(-1)[..., -1]).unsqueeze(1)  # [B, 1], row-wise
        return out

    def _rate(self, dt):
        r = rate(self, dt)
        pace = getattr(self, "_pace", None)
        return r * pace if r is not None and pace is not None and pace.shape[0] == r.shape[0] else r

    static_of = cls._static
    cls.__init__, cls._static, cls._rate = __init__, _static, _rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="ageing,coating,battery")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--pace", action="store_true", help="run only the variant (this process is patched)")
    ap.add_argument("--base", action="store_true", help="run only today's latent model")
    ap.add_argument("--pace-start", type=float, default=0.0, help="w's first component at the start")
    a = ap.parse_args()
    one_thread()
    variants = ["pace"] if a.pace else ["base"] if a.base else ["base", "pace"]
    for variant in variants:
        if variant == "pace":
            patch_pace(a.pace_start)
        for name in a.sets.split(","):
            split = make_split(name, 32, 16, seed=0)
            info = split["info"]
            schema = Schema("specimen_id", "time", info.target, info.covariates, info.static)
            test = new_specimens(name, 64, TEST_SEED, "test-", schema)
            for seed in (int(s) for s in a.seeds.split(",")):
                cfg = TrainConfig(epochs=a.epochs, val_context=info.context, seed=seed, ensemble=1)
                t0 = time.perf_counter()
                bundle = training.train(
                    validate(split["train"], schema, source="train"), model_config(name, 2), cfg
                )
                out = {
                    "set": name, "seed": seed, "variant": variant, "commit": code_version()["commit"],
                    "train_seconds": round(time.perf_counter() - t0, 1),
                    "best_epoch": bundle.summary["best_epoch"],
                } | scores(Model(bundle), test, info)  # fmt: skip
                if variant == "pace":
                    out["w"] = [round(float(v), 4) for v in bundle.model.latent_pace.detach()]
                    out["pace_start"] = a.pace_start
                print(json.dumps(out), flush=True)
                with open(RESULTS / "latent-pace.jsonl", "a") as fh:
                    fh.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
