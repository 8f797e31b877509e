"""Would a validation-weighted combination of the model and the baselines help (issue 14's
``--combine``)? Measured before building it.

Per set and seed this trains one model (the accuracy suite's split and options, ``ensemble=1`` so
that its validation specimens are truly unseen), backtests its validation specimens and the test
specimens with the library's baselines (``Model.evaluate``: persistence, linear, exponential after
the same warm-up) and fits weights on the validation rows only:

- ``global``: one convex combination of model, persistence, linear and exponential (the weights
  >= 0, summing to 1, on a grid of 0.05) that minimises the validation squared error;
- ``by-lead``: the same per quarter of the validation leads (the horizon matters: the last
  measured value is hard to beat one step ahead);
- ``inverse-mse``: weights proportional to 1 / validation MSE (no fitting).

Each is applied to the test rows and scored by RMSE against the model alone.

    python benchmarks/combine.py --sets coating,ball,battery,crack,device_b --seeds 0,1

One JSON line per set and seed, appended to results/combine.jsonl.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import realdata  # noqa: E402
from benchmarks.common import RESULTS, code_version, one_thread  # noqa: E402

FORECASTERS = ("model", "persistence", "linear", "exponential")


def simplex(step: float = 0.05) -> np.ndarray:
    """[K, 4] every weight vector on the grid: >= 0, summing to 1."""
    n = round(1 / step)
    rows = [c for c in itertools.product(range(n + 1), repeat=len(FORECASTERS) - 1) if sum(c) <= n]
    return np.array([[*c, n - sum(c)] for c in rows], dtype=float) / n


def wide(backtest: pd.DataFrame) -> pd.DataFrame:
    """One row per forecast row, a column per forecaster's prediction, with y_true and lead."""
    keys = ["specimen", "origin", "time"]
    w = backtest.pivot_table(index=keys, columns="model", values="y_pred", aggfunc="first")
    first = backtest[backtest.model == "model"].set_index(keys)[["y_true", "lead"]]
    return w.join(first, how="inner").dropna(subset=list(FORECASTERS) + ["y_true"])


def best_weights(f: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    mse = (((f @ grid.T) - y[:, None]) ** 2).mean(axis=0)
    return grid[int(np.argmin(mse))]


def rmse(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - y) ** 2)))


def run(name: str, seed: int, epochs: int) -> dict:
    from benchmarks.accuracy import model_config
    from durability_cli import api
    from durability_cli.config import TrainConfig
    from durability_cli.schema import Schema, validate
    from durability_cli.synthetic import make_split
    from durability_cli.training import train

    real = name in realdata.REAL_INFO
    split = realdata.split(name, seed=0) if real else make_split(name, 32, 16, seed=0)
    info, train_df, test = split["info"], split["train"], split["test"]
    schema = Schema("specimen_id", "time", info.target, info.covariates, info.static)
    ds = validate(train_df, schema, source=f"{name}-train")
    cfg = TrainConfig(epochs=epochs, val_context=info.context, seed=seed, ensemble=1)
    model = api.Model(train(ds, model_config(name), cfg))
    warm = {"context_frac": info.warmup_fraction} if real else {"context": info.context}
    val_ids = set(model.summary["val_specimens"])
    val = train_df[train_df["specimen_id"].astype(str).isin(val_ids)]
    fit, score = (wide(model.evaluate(t, samples=0, **warm).backtest) for t in (val, test))
    F, y = fit[list(FORECASTERS)].to_numpy(), fit["y_true"].to_numpy()
    G, yt = score[list(FORECASTERS)].to_numpy(), score["y_true"].to_numpy()
    grid = simplex()
    out = {
        "set": name, "seed": seed, "epochs": epochs, "commit": code_version()["commit"],
        "val_specimens": len(val_ids), "val_rows": len(fit), "test_rows": len(score),
        "rmse": {f: rmse(G[:, i], yt) for i, f in enumerate(FORECASTERS)},
    }  # fmt: skip
    w = best_weights(F, y, grid)
    out["weights_global"] = dict(zip(FORECASTERS, w.round(2).tolist(), strict=True))
    out["rmse"]["global"] = rmse(G @ w, yt)
    inv = 1.0 / ((F - y[:, None]) ** 2).mean(axis=0)
    out["rmse"]["inverse-mse"] = rmse(G @ (inv / inv.sum()), yt)
    edges = np.quantile(fit["lead"].to_numpy(), [0.25, 0.5, 0.75])
    bins_fit, bins_test = (
        np.searchsorted(edges, fit["lead"].to_numpy()),
        np.searchsorted(edges, score["lead"].to_numpy()),
    )
    pred = np.empty_like(yt)
    out["weights_by_lead"] = []
    for b in range(4):
        wb = best_weights(F[bins_fit == b], y[bins_fit == b], grid) if (bins_fit == b).any() else w
        pred[bins_test == b] = G[bins_test == b] @ wb
        out["weights_by_lead"].append(dict(zip(FORECASTERS, wb.round(2).tolist(), strict=True)))
    out["rmse"]["by-lead"] = rmse(pred, yt)
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", default="coating,ball,battery,crack,device_b")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--out", default=str(RESULTS / "combine.jsonl"))
    a = p.parse_args(argv)
    one_thread()
    for name in a.sets.split(","):
        for seed in (int(s) for s in a.seeds.split(",")):
            line = run(name, seed, a.epochs)
            print(json.dumps(line), file=sys.stderr, flush=True)
            with open(a.out, "a") as fh:
                fh.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
