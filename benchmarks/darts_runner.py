"""Train and run Darts' RNNModel (LSTM, future covariates): the peer of benchmarks/accuracy.py.

Runs inside its own venv (benchmarks/.darts-venv), never imports durability_cli:

    benchmarks/.darts-venv/bin/python benchmarks/darts_runner.py JOB_DIR

JOB_DIR holds train.parquet (fit specimens), val.parquet (validation specimens), test.parquet
(test specimens: the runner reads only the first ``context`` target values of each, and the
conditions of every row) and config.json. It writes predictions.parquet (specimen_id, row,
y_pred: every test row after the warm-up) and result.json (settings, parameter count, wall times,
validation curve).

Alignment. Durability at row t is the state at the start of step t and the conditions at row t
are those during step t, so row t + 1 depends on the conditions of row t. Darts' RNNModel predicts
the target at t from (target t-1, covariates at t): the covariates handed to it at row t are
therefore the conditions of row t - 1 and the log length of step t - 1, the same information the
durability model sees. A categorical static column becomes constant one-hot covariates.

Best epoch. The trainer snapshots the weights after every epoch and stops once ``max_seconds``
of training wall time have passed. Afterwards every snapshot forecasts the validation specimens
free-running from their warm-up (as the durability model is validated), and the best snapshot
forecasts the test specimens. The time to the best is the training wall time at the end of the
best epoch; the validation forecasts are not counted in it.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _series_arrays(frame: pd.DataFrame, cfg: dict, stats: dict) -> list[dict]:
    """One dict per specimen: scaled target [L], shifted covariates [L, F] (see the docstring)."""
    out = []
    for sid, g in frame.groupby("specimen_id", sort=True):
        t = g["time"].to_numpy(np.float64)
        cond = g[cfg["covariates"]].to_numpy(np.float64)  # [L, C]
        step = np.diff(t)
        log_dt = np.log(np.where(step > 0, step, np.nan))
        log_dt = np.nan_to_num((log_dt - stats["dt_mean"]) / stats["dt_std"])  # [L-1]
        cond = (cond - stats["cond_mean"]) / stats["cond_std"]
        shifted = np.empty((len(t), cond.shape[1] + 1))
        shifted[1:, :-1], shifted[0, :-1] = cond[:-1], cond[0]
        shifted[1:, -1], shifted[0, -1] = log_dt, log_dt[0] if len(log_dt) else 0.0
        parts = [shifted]
        for col, vocab in stats["vocab"].items():
            onehot = np.zeros((len(t), len(vocab)))
            value = str(g[col].iloc[0])
            if value in vocab:
                onehot[:, vocab.index(value)] = 1.0
            parts.append(onehot)
        y = (g[cfg["target"]].to_numpy(np.float64) - stats["y_mean"]) / stats["y_std"]
        out.append({"id": sid, "y": y, "cov": np.concatenate(parts, axis=1)})
    return out


def _fit_stats(train: pd.DataFrame, cfg: dict) -> dict:
    step = train.groupby("specimen_id")["time"].diff().to_numpy()
    log_dt = np.log(step[np.isfinite(step) & (step > 0)])
    cond = train[cfg["covariates"]].to_numpy(np.float64)
    y = train[cfg["target"]].to_numpy(np.float64)
    return {
        "cond_mean": np.nanmean(cond, axis=0),
        "cond_std": np.maximum(np.nanstd(cond, axis=0), 1e-9),
        "dt_mean": float(log_dt.mean()),
        "dt_std": float(max(log_dt.std(), 1e-3)),
        "y_mean": float(np.nanmean(y)),
        "y_std": float(np.nanstd(y)),
        "vocab": {c: sorted(train[c].astype(str).unique().tolist()) for c in cfg["static"]},
    }


def _forecast(model, specimens: list[dict], context: int):
    """Free-running forecasts of rows context..L-1 of every specimen in one predict call."""
    from darts import TimeSeries

    horizon = max(len(s["y"]) for s in specimens) - context
    warmups, covs = [], []
    for s in specimens:
        cov = s["cov"]
        pad = horizon + context - len(cov)  # shorter specimens: hold the last row (never scored)
        cov = np.concatenate([cov, np.repeat(cov[-1:], pad, axis=0)]) if pad > 0 else cov
        warmups.append(TimeSeries.from_values(s["y"][:context].astype(np.float32)))
        covs.append(TimeSeries.from_values(cov.astype(np.float32)))
    preds = model.predict(
        n=horizon, series=warmups, future_covariates=covs, verbose=False, batch_size=len(warmups)
    )
    return [p.values()[: len(s["y"]) - context, 0] for p, s in zip(preds, specimens, strict=True)]


def main(job: Path) -> None:
    cfg = json.loads((job / "config.json").read_text())
    import torch

    torch.set_num_threads(int(cfg.get("threads", 1)))
    import pytorch_lightning as pl
    from darts import TimeSeries
    from darts.models import RNNModel

    train = pd.read_parquet(job / "train.parquet")
    val = pd.read_parquet(job / "val.parquet")
    test = pd.read_parquet(job / "test.parquet")
    stats = _fit_stats(train, cfg)
    train_s, val_s, test_s = (_series_arrays(f, cfg, stats) for f in (train, val, test))
    context = int(cfg["context"])
    min_len = min(len(s["y"]) for s in train_s)
    training_length = int(min(cfg["training_length"], min_len - 1))
    input_chunk = min(context, training_length - 1)

    snapshots: list[tuple[int, float, dict]] = []

    class Snapshot(pl.Callback):
        def on_train_start(self, trainer, pl_module):
            self.t0 = time.perf_counter()

        def on_train_epoch_end(self, trainer, pl_module):
            elapsed = time.perf_counter() - self.t0
            state = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
            snapshots.append((trainer.current_epoch + 1, elapsed, state))
            if elapsed >= cfg["max_seconds"]:
                trainer.should_stop = True

    settings = {
        "model": "LSTM",
        "hidden_dim": cfg["hidden"],
        "n_rnn_layers": cfg["layers"],
        "input_chunk_length": input_chunk,
        "training_length": training_length,
        "batch_size": cfg["batch_size"],
        "optimizer_kwargs": {"lr": cfg["lr"]},
        "n_epochs": cfg["max_epochs"],
        "random_state": cfg["seed"],
    }
    model = RNNModel(
        **settings,
        pl_trainer_kwargs={
            "accelerator": "cpu",
            "callbacks": [Snapshot()],
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "logger": False,
            "enable_checkpointing": False,
        },
    )
    series = [TimeSeries.from_values(s["y"].astype(np.float32)) for s in train_s]
    covs = [TimeSeries.from_values(s["cov"].astype(np.float32)) for s in train_s]
    t0 = time.perf_counter()
    model.fit(series, future_covariates=covs, verbose=False, stride=int(cfg.get("stride", 1)))
    fit_seconds = time.perf_counter() - t0
    params = sum(p.numel() for p in model.model.parameters())

    # free-running validation RMSE (durability units) of every snapshot
    y_val = np.concatenate([s["y"][context:] for s in val_s]) * stats["y_std"]
    curve, t_eval = [], time.perf_counter()
    stride = max(1, len(snapshots) // int(cfg.get("max_val_evals", 40)))
    chosen = sorted(set(range(len(snapshots) - 1, -1, -stride)))
    for i in chosen:
        epoch, elapsed, state = snapshots[i]
        model.model.load_state_dict(state)
        pred = np.concatenate(_forecast(model, val_s, context)) * stats["y_std"]
        rmse = float(np.sqrt(np.mean((pred - y_val) ** 2)))
        curve.append({"epoch": epoch, "seconds": elapsed, "val_rmse": rmse if np.isfinite(rmse) else None})
    val_eval_seconds = time.perf_counter() - t_eval
    finite = [c for c in curve if c["val_rmse"] is not None]
    best = min(finite, key=lambda c: c["val_rmse"]) if finite else curve[-1]
    model.model.load_state_dict(next(s for e, _, s in snapshots if e == best["epoch"]))

    t1 = time.perf_counter()
    preds = _forecast(model, test_s, context)
    predict_seconds = time.perf_counter() - t1
    rows = []
    for s, p in zip(test_s, preds, strict=True):
        rows.append(
            pd.DataFrame(
                {
                    "specimen_id": s["id"],
                    "row": np.arange(context, len(s["y"])),
                    "y_pred": p * stats["y_std"] + stats["y_mean"],
                }
            )
        )
    pd.concat(rows, ignore_index=True).to_parquet(job / "predictions.parquet", index=False)
    import darts

    result = {
        "darts_version": darts.__version__,
        "torch_version": torch.__version__,
        "settings": settings | {"stride": int(cfg.get("stride", 1)), "max_seconds": cfg["max_seconds"]},
        "covariates": [*cfg["covariates"], "log_dt", *(f"{c}=onehot" for c in cfg["static"])],
        "parameters": params,
        "fit_seconds": fit_seconds,
        "epochs_run": len(snapshots),
        "best_epoch": best["epoch"],
        "best_val_rmse": best["val_rmse"],
        "time_to_best": best["seconds"],
        "val_curve": curve,
        "val_eval_seconds": val_eval_seconds,
        "predict_seconds": predict_seconds,
        "n_fit_specimens": len(train_s),
        "n_val_specimens": len(val_s),
    }
    (job / "result.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
