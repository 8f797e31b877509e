"""Cost and quality of the warm-up fit of z (issue 13): for saved latent models, the forecast's
wall time and RMSE under several settings of the fit (latent.py's constants), all in one process
with the settings interleaved, so that a busy machine slows each alike; "no fit" forecasts with
z = 0 (the cost of the forecast alone, what a model without a latent pays).

    python benchmarks/latent.py --sets ageing --only latent --save-models /tmp/models
    python benchmarks/latent_fit.py --models /tmp/models --sets ageing --repeats 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import RESULTS, one_thread  # noqa: E402
from benchmarks.latent import rmse_after_warmup  # noqa: E402
from durability_cli import forecasting, latent  # noqa: E402
from durability_cli.artifact import load_bundle  # noqa: E402
from durability_cli.synthetic import DATASET_INFO, make_split  # noqa: E402

# the fit as it was before the early exit and the longer trust region (commit 8c402a1)
BEFORE = {"FIT_STEP_TOL": 0.0, "FIT_FREE_FROM": (0.0, 0.5), "FIT_ITERATIONS": 4, "MAX_STEP": 1.5}
VARIANTS = {  # name -> latent.py constants (None: no fit, z = 0)
    "no fit": None,
    "before": BEFORE,
    "tol 0.05": BEFORE | {"FIT_STEP_TOL": 0.05},
    "3 evaluations": BEFORE | {"FIT_ITERATIONS": 3},
    "free from 0 only": BEFORE | {"FIT_FREE_FROM": (0.0,)},
    "free from 0.5 only": BEFORE | {"FIT_FREE_FROM": (0.5,)},
    "now": {},  # latent.py's defaults
    "max step 3": BEFORE | {"MAX_STEP": 3.0},
    "max step 3, 3 evaluations": BEFORE | {"MAX_STEP": 3.0, "FIT_ITERATIONS": 3},
    "max step 3, tol 0.05": BEFORE | {"MAX_STEP": 3.0, "FIT_STEP_TOL": 0.05},
    "max step 3, tol 0.05, 3 evaluations": BEFORE
    | {"MAX_STEP": 3.0, "FIT_STEP_TOL": 0.05, "FIT_ITERATIONS": 3},
    "max step 5, 3 evaluations": BEFORE | {"MAX_STEP": 5.0, "FIT_ITERATIONS": 3},
}


def _prior_only(model, t, warm):
    B, D = t.y.shape[0], model.cfg.latent
    return t.y.new_zeros(B, D), torch.eye(D).expand(B, D, D).clone()


def measure(bundle, split, info, variant) -> tuple[float, float]:
    """(RMSE, seconds) of one forecast under ``variant``'s fit settings."""
    defaults = {k: getattr(latent, k) for k in tuple(BEFORE)}
    real_fit = forecasting.fit_posterior
    try:
        if variant is None:
            forecasting.fit_posterior = _prior_only
        else:
            for k, v in variant.items():
                setattr(latent, k, v)
        rmse, _, seconds = rmse_after_warmup(bundle, split["test"], split["test_clean"], info)
    finally:
        forecasting.fit_posterior = real_fit
        for k, v in defaults.items():
            setattr(latent, k, v)
    return rmse, seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--models", required=True, help="directory of SET-latent-SEED.safetensors (latent.py --save-models)"
    )
    p.add_argument("--sets", default="ageing")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument(
        "--variants",
        default=None,
        help="names of VARIANTS separated by ; (default: all; the first is the base of fit_over_forecast)",
    )
    p.add_argument("--n-train", type=int, default=32)
    p.add_argument("--n-test", type=int, default=16)
    p.add_argument("--out", default=str(RESULTS / "latent-fit.json"))
    args = p.parse_args()
    names = args.variants.split(";") if args.variants else list(VARIANTS)
    one_thread()
    results = {
        "command": " ".join(sys.argv),
        "repeats": args.repeats,
        "variants": {n: VARIANTS[n] for n in names},
    }
    results["models"] = {}
    for name in args.sets.split(","):
        info = DATASET_INFO[name]
        for path in sorted(Path(args.models).glob(f"{name}-latent-*.safetensors")):
            seed = int(path.stem.rsplit("-", 1)[1])
            bundle = load_bundle(path)
            split = make_split(name, args.n_train, args.n_test, seed=seed, hidden=True)
            times = {n: [] for n in names}
            rmse = {}
            for rep in range(args.repeats):
                order = names[rep % len(names) :] + names[: rep % len(names)]  # rotate who goes first
                for n in order:
                    rmse[n], seconds = measure(bundle, split, info, VARIANTS[n])
                    times[n].append(seconds)
            base = statistics.median(times[names[0]])
            row = {
                n: {"rmse": round(rmse[n], 5), "seconds": round(statistics.median(times[n]), 4)}
                | (
                    {"fit_over_forecast": round(statistics.median(times[n]) / base - 1, 2)}
                    if n != names[0]
                    else {}
                )
                for n in names
            }
            results["models"][path.name] = row
            print(path.name, json.dumps(row), file=sys.stderr, flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
