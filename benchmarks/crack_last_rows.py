"""Crack's last forecast row per test specimen: the truth, the default model's mean and band, and
the physics oracle's posterior mean and band (benchmarks/oracles.py), all from the 20-row warm-up.

    python benchmarks/crack_last_rows.py --seed 0

Trains the default model on the accuracy suite's split (32 specimens, 60 epochs) and prints one
row per test specimen of that split (a table on stdout); it shows the shape of the uncertainty
near the end of life, where the end-of-life interval is decided.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import oracles  # noqa: E402
from benchmarks.common import one_thread  # noqa: E402
from durability_cli import api  # noqa: E402
from durability_cli.synthetic import make_split  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=60)
    a = ap.parse_args()
    one_thread()
    split = make_split("crack", 32, 16, seed=0)
    info, test, clean = split["info"], split["test"], split["test_clean"]
    model = api.train(
        split["train"], target=info.target, covariates=list(info.covariates),
        epochs=a.epochs, val_context=info.context, seed=a.seed, ensemble=1,
    )  # fmt: skip
    pos = test.groupby("specimen_id").cumcount()
    plan = test.assign(**{info.target: test[info.target].where(pos < info.context)})
    fc = model.forecast(plan, samples=200).table.groupby("specimen_id").tail(1).set_index("specimen_id")
    warmup = pd.Series(info.context, index=test["specimen_id"].unique())
    mean, q10, q90, _, _ = oracles.oracle_forecast("crack", test, warmup, info.noise)
    last = test.groupby("specimen_id").tail(1).index
    out = pd.DataFrame(
        {
            "truth (clean)": clean.loc[last, info.target].to_numpy(),
            "model mean": fc[f"{info.target}_mean"].to_numpy(),
            "model p10": fc[f"{info.target}_p10"].to_numpy(),
            "model p90": fc[f"{info.target}_p90"].to_numpy(),
            "oracle mean": mean[last],
            "oracle p10": q10[last],
            "oracle p90": q90[last],
        },
        index=test.loc[last, "specimen_id"],
    )
    print(out.round(3).to_string())
    print(f"\nmodel band width at the last row: median {np.median(out['model p90'] - out['model p10']):.3f}")


if __name__ == "__main__":
    main()
