"""Is a trained model's band too wide because its scale head lags behind the mean it was kept
with? (issue 14, session 24) Train one model on a suite set's split, then refit only the scale
head, by the Gaussian likelihood of the kept mean's free-running errors on the training
specimens from the set's warm-up (the mean and every other weight frozen), and report the
factor k that would make the band cover 80 % (``quantile(|error| / sd, 0.8) / 1.2816``) on the
training, validation and fresh test specimens, before and after. k near 1 on fresh specimens
after the refit would say the head lagged; k_train near 1 with k_test well above it, that
in-sample errors are smaller than new ones (what the validation factor then has to widen).
The model trains without train's own refit (``refit_scale=False``), then gets the same one
(durability_cli/scale_refit.py), so "before" is the head as trained and "after" what train keeps.

    python benchmarks/scale_refit.py --set ball --seeds 0 --trend-line true

One JSON line per seed, appended to results/scale-refit.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import accuracy as acc
from benchmarks.common import one_thread
from durability_cli import scale_refit, training
from durability_cli.config import TrainConfig
from durability_cli.data import to_series, to_tensors
from durability_cli.schema import Schema, validate
from durability_cli.synthetic import make_split

RESULTS = Path(__file__).resolve().parent / "results" / "scale-refit.jsonl"


def rollouts(t, context: int):
    """``t`` as scale_refit.refit reads it: the tensors, the warm-up's feed, the scored rows."""
    ctx = training.warmup_tensor(t, context)
    return [(t, training.warmup_feed(t, ctx), training.scored_rows(t, ctx))]


def k80(model, t, context: int) -> float:
    """The factor that would make the model's 80 % band hold 80 % of its errors on ``t``."""
    features, err = scale_refit.free_run_features(model, *rollouts(t, context)[0])
    return scale_refit.band_factor(model.scale_head, features, err)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--set", required=True)
    p.add_argument("--seeds", default="0")
    p.add_argument("--trend-line", choices=("true", "false"), default="true")
    p.add_argument("--fresh-test", type=int, default=96)
    a = p.parse_args()
    one_thread()
    split = make_split(a.set, 32, 16, seed=0)
    info = split["info"]
    schema = Schema("specimen_id", "time", info.target, info.covariates, info.static)
    fresh = acc.fresh_split(a.set, a.fresh_test, info)
    for seed in [int(s) for s in a.seeds.split(",")]:
        mcfg = replace(acc.model_config(a.set), trend_line=a.trend_line == "true")
        cfg = TrainConfig(epochs=0, val_context=info.context, seed=seed, ensemble=1, refit_scale=False)
        bundle = training.train(validate(split["train"], schema, source="train"), mcfg, cfg)
        model = bundle.model.eval()
        train = split["train"]
        held = train["specimen_id"].isin(bundle.summary["val_specimens"])
        tables = {"train": train[~held], "val": train[held], "test": fresh["test"]}
        t = {
            k: to_tensors(to_series(validate(v, schema, source=k)), bundle.scaler) for k, v in tables.items()
        }
        out = {"set": a.set, "seed": seed, "trend_line": a.trend_line == "true", "fresh_test": a.fresh_test}
        out["k_file"] = bundle.summary.get("scale_calibration")
        for k, tt in t.items():
            out[f"k_{k}_before"] = k80(model, tt, info.context)
        scale_refit.refit(model, rollouts(t["train"], info.context))  # what train now does
        for k, tt in t.items():
            out[f"k_{k}_after"] = k80(model, tt, info.context)
        print(json.dumps(out), flush=True)
        with open(RESULTS, "a") as f:
            f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
