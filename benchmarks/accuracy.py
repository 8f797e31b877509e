"""Accuracy suite (BENCHMARK_PROTOCOL.md): the durability model, the three baselines and Darts'
RNNModel on the synthetic datasets and the real measured ones (benchmarks/realdata.py), each
scored on the same forecast rows.

Per dataset: ``make_split`` (synthetic) or ``realdata.split`` (measured) gives train and test
specimens; every test specimen is forecast from its first ``context`` rows (DATASET_INFO; on a
real set a fraction of each specimen's own rows) to the end of its series. The durability model is
trained with its defaults except what the dataset needs (ball: --lags 3; coating: --static
material) and a fixed epoch budget, once per seed; Darts gets the same fit/validation specimens,
a comparable parameter count and the same wall-time budget (see darts_runner.py).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import oracles, realdata
from benchmarks.common import BENCH, ROOT, THREAD_ENV, config_fields, header, say
from durability_cli import mixed_effects
from durability_cli.artifact import save_bundle
from durability_cli.config import ModelConfig, TrainConfig
from durability_cli.data import to_series
from durability_cli.ensemble import resolve_auto
from durability_cli.forecasting import ForecastConfig, forecast, quantile_column
from durability_cli.metrics import (
    BASELINES,
    eol_interval_coverage,
    interval_scores,
    pinball_loss,
    point_scores,
)
from durability_cli.schema import Dataset, Schema, validate
from durability_cli.synthetic import DATASET_INFO, DATASETS, make_split
from durability_cli.training import split_specimens, train

DARTS_VENV = BENCH / ".darts-venv"
DARTS_PY = DARTS_VENV / "bin" / "python"
DARTS_INSTALL = "python -m venv benchmarks/.darts-venv && benchmarks/.darts-venv/bin/pip install 'darts[torch]' torch==2.13.0 pyarrow"

# fresh_test: each synthetic set's runs are also scored on that many new specimens (fresh_split)
FULL = {"n_train": 32, "n_test": 16, "epochs": 0, "seeds": [0, 1, 2], "samples": 200, "fresh_test": 96}
QUICK = {"n_train": 16, "n_test": 8, "epochs": 6, "seeds": [0], "samples": 100, "fresh_test": 0}
DARTS = {"hidden": 64, "layers": 2, "training_length": 64, "batch_size": 32, "lr": 1e-3, "stride": 1}
QUANTILES = (0.1, 0.5, 0.9)


def model_config(
    name: str,
    latent: int | str | None = None,
    latent_prior: float = ModelConfig.latent_prior,
    monotonic: str = "none",
) -> ModelConfig:
    """The suite's model for set ``name``; ``latent`` None: train's default."""
    return ModelConfig(
        lags=3 if name == "ball" else ModelConfig.lags,
        latent=ModelConfig.latent if latent is None else latent,
        latent_prior=latent_prior,
        monotonic=monotonic,
    )


# -- scoring ---------------------------------------------------------------------------------------
def reached(values, threshold: float, direction: str = "below"):
    """Where ``values`` are at or past the end-of-life threshold (at or below it, or at or above
    it with ``direction="above"``: a growing crack)."""
    return values >= threshold if direction == "above" else values <= threshold


def direction_of(info) -> str:
    """The dataset's end-of-life direction (synthetic sets all fall to their threshold)."""
    return getattr(info, "eol_direction", "below")


def score(
    rows: pd.DataFrame, threshold: float | None, probabilistic: bool = False, direction: str = "below"
) -> dict:
    """Scores of one forecaster over the forecast rows.

    ``rows``: one row per forecast row with specimen_id, row (position in the series), y (noisy
    test value), y_clean, y_pred and, when probabilistic, q0.1 / q0.9.
    """
    y, clean, pred = (rows[c].to_numpy(np.float64) for c in ("y", "y_clean", "y_pred"))
    noisy = point_scores(y, pred)
    vs_clean = point_scores(clean, pred)
    floor = float(np.sqrt(np.mean((y - clean) ** 2)))
    out = {
        "n_rows": noisy["n"],
        "missing_predictions": int((~np.isfinite(pred)).sum()),
        "rmse": noisy["rmse"],
        "mae": noisy["mae"],
        "bias": noisy["bias"],
        "rmse_clean": vs_clean["rmse"],
        "mae_clean": vs_clean["mae"],
        "noise_floor": floor,
        "rmse_over_floor": noisy["rmse"] / floor if floor > 0 else float("nan"),
    }
    if threshold is not None:
        out["eol"] = eol_rows(rows, threshold, direction)
    if probabilistic:
        iv = interval_scores(y, rows["q0.1"], rows["q0.9"], 0.8)
        out["coverage80"] = iv["coverage"]
        out["below80"], out["above80"] = iv["below"], iv["above"]  # which side the misses fall on
        out["coverage80_clean"] = interval_scores(clean, rows["q0.1"], rows["q0.9"], 0.8)["coverage"]
        out["interval80_width"] = iv["width"]
        out["pinball"] = {f"{q:g}": pinball_loss(y, rows[f"q{q:g}"], q) for q in (0.1, 0.9)}
    return out


def eol_rows(rows: pd.DataFrame, threshold: float, direction: str = "below") -> dict:
    """End of life in rows: per specimen the first forecast row at or past the threshold, for
    the forecast and for the clean truth; mean |difference| where both cross, and the counts."""

    def first(col):
        hit = rows.loc[reached(rows[col], threshold, direction)]
        return hit.groupby("specimen_id")["row"].min()

    ids = pd.Index(rows["specimen_id"].unique())
    pred, true = first("y_pred").reindex(ids), first("y_clean").reindex(ids)
    both = pred.notna() & true.notna()
    diff = (pred - true)[both]
    return {
        "specimens": len(ids),
        "both_cross": int(both.sum()),
        "only_forecast": int((pred.notna() & true.isna()).sum()),
        "only_truth": int((pred.isna() & true.notna()).sum()),
        "neither": int((pred.isna() & true.isna()).sum()),
        "mae_rows": float(diff.abs().mean()) if len(diff) else float("nan"),
        "bias_rows": float(diff.mean()) if len(diff) else float("nan"),
    }


def summarise(runs: list[dict]) -> dict:
    """Mean, sample standard deviation, min and max over seeds of every numeric score."""
    out = {}
    keys = [k for k, v in runs[0].items() if isinstance(v, int | float)]
    for k in keys:
        vals = [r[k] for r in runs if r.get(k) is not None and np.isfinite(r[k])]
        if vals:
            out[k] = {
                "mean": statistics.fmean(vals),
                "std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
                "min": min(vals),
                "max": max(vals),
            }
    for k in ("eol", "pinball"):
        if k in runs[0]:
            out[k] = summarise([r[k] for r in runs])
    return out


# -- the forecasters ---------------------------------------------------------------------------------
def warmup_lengths(test: pd.DataFrame, info) -> pd.Series:
    """Warm-up rows per test specimen: ``info.context`` for a synthetic set, a fraction of each
    specimen's own rows for a real one (its series differ in length)."""
    lengths = test.groupby("specimen_id", sort=False).size()
    if getattr(info, "real", False):
        return realdata.warmup_rows(lengths, info.warmup_fraction, info.warmup)
    return pd.Series(info.context, index=lengths.index, dtype=int)


def in_warmup(test: pd.DataFrame, warmup: pd.Series) -> np.ndarray:
    """Per row of ``test``: whether it lies in its specimen's warm-up."""
    pos = test.groupby("specimen_id").cumcount().to_numpy()
    return pos < test["specimen_id"].map(warmup).to_numpy()


def plan_for(test: pd.DataFrame, warmup: pd.Series, target: str) -> pd.DataFrame:
    """The forecast plan: ``test`` with ``target`` emptied after each specimen's warm-up."""
    plan = test.copy()
    plan.loc[~in_warmup(plan, warmup), target] = np.nan
    return plan


def forecast_rows(test: pd.DataFrame, clean: pd.DataFrame, warmup: pd.Series, target: str) -> pd.DataFrame:
    """The rows every forecaster must predict: those after each test specimen's warm-up."""
    pos = test.groupby("specimen_id").cumcount().to_numpy()
    keep = ~in_warmup(test, warmup)
    return pd.DataFrame(
        {
            "specimen_id": test["specimen_id"].to_numpy()[keep],
            "time": test["time"].to_numpy()[keep],
            "row": pos[keep],
            "y": test[target].to_numpy()[keep],
            "y_clean": clean[target].to_numpy()[keep],
        }
    )


def eol_truth(
    clean: pd.DataFrame, warmup: pd.Series, target: str, threshold: float, direction: str = "below"
) -> pd.DataFrame:
    """Per test specimen (index): ``eol_true``, when its clean truth first reaches ``threshold``
    after its warm-up (falls to it, or rises to it with ``direction="above"``), linear between
    rows as the forecast's crossings are (NaN: it never does, or it was already past it at the end
    of the warm-up: ``past``), and ``censor``, its last time."""
    out = {}
    for sid, g in clean.groupby("specimen_id", sort=False):
        t, v = g["time"].to_numpy(np.float64), g[target].to_numpy(np.float64)
        w = int(warmup[sid])
        below = np.flatnonzero(reached(v[w:], threshold, direction))
        eol, past = np.nan, bool(reached(v[w - 1], threshold, direction))
        if len(below) and not past:
            i = w + int(below[0])
            eol = t[i - 1] + (threshold - v[i - 1]) / (v[i] - v[i - 1]) * (t[i] - t[i - 1])
        out[sid] = (eol, float(t[-1]), past)
    return pd.DataFrame.from_dict(out, orient="index", columns=["eol_true", "censor", "past"])


def eol_interval(eol: pd.DataFrame | None, truth: pd.DataFrame) -> dict:
    """Coverage of the forecast's end-of-life p10-p90 interval over the test specimens, by
    ``evaluate``'s rule (metrics.eol_interval_coverage; a bound later than the horizon is +inf):
    a truth that crosses is held when inside; one that does not cross within its series is missed
    when the interval ends before, held when the interval runs from within the series to past it,
    and left out (``eol_interval_undetermined``) when the whole interval lies past the horizon,
    since the truth may then cross after the horizon but before the interval starts.

    Until session 31 the suite counted that last case as held (the p10 read as "not before the
    horizon", which the truth agrees with); ``eol_coverage80_later_held`` keeps that count. On a
    set where many specimens outlive the horizon it is close to 1 whatever the interval's width
    (ageing: 48 of 96 fresh specimens never cross). ``eol_specimens`` holds each scored
    specimen's bounds and truth, so that another rule can be scored without training again."""
    if eol is None or "eol_p10" not in eol:
        return {}
    e = eol.set_index("specimen_id").reindex(truth.index)
    keep = ~truth["past"].to_numpy() & (e["status"] != "already past").to_numpy()
    return interval_coverages(
        e["eol_p10"].to_numpy(np.float64)[keep],
        e["eol_p90"].to_numpy(np.float64)[keep],
        truth.loc[keep],
    )


def interval_coverages(lower: np.ndarray, upper: np.ndarray, truth: pd.DataFrame) -> dict:
    """:func:`eol_interval`'s scores from each specimen's bounds (NaN or +inf: later than the
    horizon) and ``truth`` (:func:`eol_truth`'s rows for the same specimens, in order)."""
    lo, hi = (np.where(np.isnan(b), np.inf, b) for b in (lower, upper))
    t, c = truth["eol_true"].to_numpy(np.float64), truth["censor"].to_numpy(np.float64)
    cov = eol_interval_coverage(lo, hi, t, c)
    later = eol_interval_coverage(np.where(np.isinf(lo), c, lo), hi, t, c)  # the rule before session 31
    finite = lambda v: [None if not np.isfinite(x) else float(x) for x in v]  # noqa: E731
    return {
        "eol_coverage80": cov["interval_coverage"],
        "eol_interval_n": cov["interval_n"],
        "eol_interval_undetermined": cov["interval_undetermined"],
        "eol_interval_early": cov["interval_early"],  # crossed before the interval began
        "eol_interval_late": cov["interval_late"],  # crossed after it ended, or outlived it
        "eol_coverage80_later_held": later["interval_coverage"],
        "eol_interval_n_later_held": later["interval_n"],
        "eol_specimens": {
            "specimen_id": [str(i) for i in truth.index],
            "p10": finite(lo),
            "p90": finite(hi),
            "eol_true": finite(t),
            "censor": finite(c),
        },
    }


MODEL_FIELDS = {f.name for f in fields(ModelConfig)}


# the suite's own settings: each has its flag in run.py (--epochs, --latent, ...) and its place
# in the results' settings, or is drawn per seed
OWN_OPTIONS = {"epochs", "patience", "seed", "ensemble", "latent", "latent_prior", "monotonic", "val_context"}


def parse_options(items: list[str]) -> dict:
    """["batch_size=16", "cell=gru"] -> {"batch_size": 16, "cell": "gru"} (run.py --set), typed and
    checked by common.config_fields. Raises ValueError, in one line, for an unknown field, one the
    suite sets itself (OWN_OPTIONS), or a value the field refuses."""
    for item in items:
        key = item.partition("=")[0]
        if key in OWN_OPTIONS:
            raise ValueError(
                f"--set {item}: the suite sets {key} itself (use its own option, or none for seed)"
            )
    model, training = config_fields(items, source="--set")
    return model | training


def validation_warmup(info, given: dict) -> dict:
    """The validation's warm-up, as the test's: a measured set whose test specimens start from a
    share of their own rows validates from that share (``val_context_frac``, since session 20;
    before, ``context`` rows for every specimen), the others from ``context`` rows; a variant's
    own ``val_context_frac`` or ``val_context`` (rows) replaces either."""
    if given.get("val_context"):
        return {"val_context": given["val_context"], "val_context_frac": 0.0}
    share = given.get("val_context_frac", getattr(info, "warmup_fraction", None) or 0.0)
    return {"val_context": 0, "val_context_frac": share} if share else {"val_context": info.context}


def _sig(x: float | None, digits: int = 5) -> float | None:
    """``x`` to ``digits`` significant digits (None and non-finite values as they are)."""
    return float(f"{x:.{digits}g}") if x is not None and np.isfinite(x) else x


def run_model(ds_train, test, clean, rows, warmup, info, seed: int, s: dict) -> tuple[dict, object]:
    curve: list[dict] = []
    elapsed = [0.0]

    def on_epoch(log):
        elapsed[0] += log.seconds
        # 5 significant digits: the curves are most of a run's file (an ensemble's 1,000 epochs)
        curve.append({"epoch": log.epoch, "seconds": round(elapsed[0], 3), "val_rmse": _sig(log.val_rmse)})

    mcfg = model_config(
        info.name,
        s.get("latent"),
        s.get("latent_prior", ModelConfig.latent_prior),
        s.get("monotonic", "none"),
    )
    given = s.get("options", {})
    cfg = TrainConfig(
        epochs=s["epochs"],
        patience=s.get("patience", 0),
        **validation_warmup(info, given),
        ensemble=s.get("ensemble", 0),
    )
    # the default (0, auto) decided as train decides it, so that the seeds below follow it
    mcfg = replace(mcfg, **{k: v for k, v in given.items() if k in MODEL_FIELDS})
    cfg = replace(cfg, **{k: v for k, v in given.items() if k not in MODEL_FIELDS})
    members = resolve_auto(ds_train, mcfg, cfg)[0].ensemble
    t0 = time.perf_counter()
    # an ensemble of N for seed s trains seeds s*N .. s*N + N - 1: no member shared between seeds
    bundle = train(ds_train, mcfg, replace(cfg, seed=seed * members), on_epoch=on_epoch)
    train_seconds = time.perf_counter() - t0

    scores, forecast_seconds = score_bundle(bundle, test, clean, rows, warmup, info, seed, s["samples"])
    summary = bundle.summary
    run = {
        "seed": seed,
        "scores": scores,
        "train_seconds": train_seconds,
        "forecast_seconds": forecast_seconds,
        "epochs_run": summary["epochs_run"],
        "best_epoch": summary["best_epoch"],
        "best_val_rmse": summary["best_val_rmse"],
        "parameters": summary["parameters"],
        "members": members,
        # what the automatic settings resolved to (train_config: the numbers the run used)
        "batch_size": bundle.train_config.batch_size,
        "epochs_max": bundle.train_config.epochs,
        "patience": bundle.train_config.patience,
        # each member's best and last epoch (a member kept at its first epochs never improved)
        "member_best_epochs": (summary.get("ensemble") or {}).get("best_epoch", [summary["best_epoch"]]),
        "member_epochs_run": (summary.get("ensemble") or {}).get("epochs_run", [summary["epochs_run"]]),
        "val_curve": curve,
        # --trend-line auto: which candidate it kept, and both one's validation RMSE (line_choice.py)
        "trend_line": bundle.model_config.trend_line,
        "trend_line_auto": summary.get("trend_line_auto"),
        "trend_line_val_rmse": summary.get("trend_line_val_rmse"),
        # --latent auto: the latent size the rule gave the model, and why (latent_choice.py)
        "latent": bundle.model_config.latent,
        "latent_auto": summary.get("latent_auto"),
        # every member's validation RMSE per epoch (what a study of patience replays)
        "member_val_curves": [
            [_sig(h["val_rmse"]) for h in m.summary.get("history", [])] for m in bundle.members
        ],
    }
    return run, bundle


# The synthetic sets' 16 test specimens move a comparison of two models by tens of percent either
# way (RESULTS.md, "The default chooses the line"): `run.py --fresh-test N` also scores every run
# on N new specimens of the same generator, drawn from this seed (the suite's split uses seed 0).
FRESH_SEED = 11


def fresh_split(name: str, n: int, info, seed: int = FRESH_SEED) -> dict:
    """``n`` new specimens of synthetic set ``name`` (generator seed ``seed``, the set's noise,
    complete series), ready to score: {"test", "clean", "rows", "warmup"}."""
    noisy, clean = DATASETS[name](n_specimens=n, seed=seed, noise=info.noise, missing_fraction=0.0)
    noisy, clean = (t.assign(specimen_id="fresh-" + t["specimen_id"].astype(str)) for t in (noisy, clean))
    warmup = warmup_lengths(noisy, info)
    rows = forecast_rows(noisy, clean, warmup, info.target)
    return {"test": noisy, "clean": clean, "rows": rows, "warmup": warmup}


def held_out(name: str) -> tuple[object, dict]:
    """(info, split) to score a saved model of set ``name`` on: a synthetic set's 96 fresh
    specimens (:func:`fresh_split`), a measured set's test split (``realdata.split``, seed 0),
    the split as {"test", "clean", "warmup"}."""
    if name in realdata.REAL_INFO:
        info = realdata.REAL_INFO[name]
        part = realdata.split(name, seed=0)
        test = part["test"]
        return info, {"test": test, "clean": part["test_clean"], "warmup": warmup_lengths(test, info)}
    info = DATASET_INFO[name]
    return info, fresh_split(name, 96, info)


def score_bundle(bundle, test, clean, rows, warmup, info, seed: int, samples: int) -> tuple[dict, float]:
    """The scores of a trained model's forecast of ``test`` from its warm-ups (one forecast call,
    ``samples`` paths; the deterministic mean path's RMSE beside them) and the call's seconds."""
    # The plan: the test table with durability emptied after the warm-up; one forecast call.
    ds_plan = validate(plan_for(test, warmup, info.target), bundle.schema, source="plan")
    cfg = ForecastConfig(
        samples=samples,
        quantiles=QUANTILES,
        threshold=info.eol_threshold,
        direction=direction_of(info),
        seed=seed,
    )
    t1 = time.perf_counter()
    result = forecast(bundle, ds_plan, cfg)
    forecast_seconds = time.perf_counter() - t1
    fc = result.forecast
    cols = {f"{info.target}_mean": "y_pred"}
    cols |= {quantile_column(info.target, q): f"q{q:g}" for q in QUANTILES}
    merged = rows.merge(
        fc[["specimen_id", "time", *cols]].rename(columns=cols), on=["specimen_id", "time"], how="left"
    )
    scores = score(merged, info.eol_threshold, probabilistic=True, direction=direction_of(info))
    if info.eol_threshold is not None:
        truth = eol_truth(clean, warmup, info.target, info.eol_threshold, direction_of(info))
        scores |= eol_interval(result.eol, truth)
    # the deterministic mean path (samples=0) for reference: the _mean column above is that path
    # since session 48 (before, the paths' average; runs saved earlier hold both)
    det = forecast(bundle, ds_plan, ForecastConfig(samples=0, seed=seed)).forecast
    det = rows.merge(
        det[["specimen_id", "time", f"{info.target}_mean"]].rename(columns={f"{info.target}_mean": "y_pred"}),
        on=["specimen_id", "time"],
        how="left",
    )
    scores["rmse_deterministic"] = score(det, None)["rmse"]
    return scores, forecast_seconds


def score_split(bundle, part: dict, info, seed: int, samples: int) -> dict:
    """:func:`score_bundle`'s scores on a split given as :func:`fresh_split` gives it."""
    return score_bundle(
        bundle, part["test"], part["clean"], part["rows"], part["warmup"], info, seed, samples
    )[0]


def save_member_paths(bundle, on: dict, info, path: Path) -> None:
    """Each ensemble member's deterministic mean path on ``on``'s forecast rows, one column each
    (``member0`` ...), beside the rows' specimen, time, noisy and clean values: what a study of
    combining members (or the candidates of two trainings) needs without training again."""
    plan = validate(plan_for(on["test"], on["warmup"], info.target), bundle.schema, source="plan")
    out = on["rows"].copy()
    for k, member in enumerate(bundle.members):
        fc = forecast(replace(member, others=[]), plan, ForecastConfig(samples=0)).forecast
        col = fc[["specimen_id", "time", f"{info.target}_mean"]].rename(
            columns={f"{info.target}_mean": f"member{k}"}
        )
        out = out.merge(col, on=["specimen_id", "time"], how="left")
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_parquet(path, index=False)


def mixed_effects_fit(train: Dataset, info):
    """The mixed-effects path (durability_cli/mixed_effects.py) fitted on the training table, its
    degree chosen over 5 folds of the training specimens, each forecast from the set's validation
    warm-up (``info.context`` rows, or a measured set's share of each specimen's rows): (the fit
    or None, each degree's pooled RMSE over the folds)."""
    if getattr(info, "real", False):

        def warmups(lengths):
            return realdata.warmup_rows(pd.Series(lengths), info.warmup_fraction, info.warmup).to_numpy()
    else:

        def warmups(lengths):
            return np.minimum(info.context, np.asarray(lengths) - 1)

    return mixed_effects.cross_validated(to_series(train), warmups)


def mixed_effects_baseline(
    train: Dataset, test: pd.DataFrame, rows: pd.DataFrame, warmup: pd.Series, info
) -> dict:
    """{"mixed_effects": scores} of :func:`mixed_effects_fit`'s path on ``rows``, scored as the
    other baselines, with its ``degree`` and each degree's ``cv_rmse`` ({} where it cannot be fitted)."""
    t0 = time.perf_counter()
    fit, cv = mixed_effects_fit(train, info)
    if fit is None:
        return {}
    pred = mixed_effects_forecast(fit, test, rows, warmup, info.target, info.covariates)
    scores = score(rows.assign(y_pred=pred), info.eol_threshold, direction=direction_of(info))
    return {
        mixed_effects.NAME: scores
        | {
            "seconds": time.perf_counter() - t0,
            "degree": fit.degree,
            "family": fit.label,
            "cv_rmse": cv,
        }
    }


def mixed_effects_forecast(
    fit, test: pd.DataFrame, rows: pd.DataFrame, warmup: pd.Series, target: str, conditions=()
) -> np.ndarray:
    """The mixed-effects path's forecast of ``rows`` [n] from each test specimen's warm-up (its
    ``conditions`` columns read by a fit with them)."""
    pred = np.full(len(rows), np.nan)
    at = rows.groupby("specimen_id").indices
    for sid, g in test.groupby("specimen_id", sort=False):
        idx = at.get(sid)
        if idx is None:
            continue
        t = g["time"].to_numpy(np.float64)
        w = int(warmup[sid])
        ahead = mixed_effects.predict_rows(
            fit, t, g[target].to_numpy(np.float64), g[list(conditions)].to_numpy(np.float64), w
        )
        pred[idx] = pd.Series(ahead, index=t[w:]).reindex(rows["time"].to_numpy()[idx]).to_numpy()
    return pred


def run_baselines(
    test: pd.DataFrame, rows: pd.DataFrame, warmup: pd.Series, info, train: Dataset | None = None
) -> dict:
    """Persistence, linear and exponential from each test specimen's warm-up; with ``train``, also
    the mixed-effects path fitted on it (:func:`mixed_effects_baseline`)."""
    out = {}
    warm = test.loc[in_warmup(test, warmup)]
    hist = {k: g for k, g in warm.groupby("specimen_id")}
    for name, fn in BASELINES.items():
        pred = np.full(len(rows), np.nan)
        t0 = time.perf_counter()
        for sid, idx in rows.groupby("specimen_id").indices.items():
            h = hist[sid]
            pred[idx] = fn(h["time"].to_numpy(), h[info.target].to_numpy(), rows["time"].to_numpy()[idx])
        seconds = time.perf_counter() - t0
        scores = score(rows.assign(y_pred=pred), info.eol_threshold, direction=direction_of(info))
        out[name] = scores | {"seconds": seconds}
    if train is not None:
        out.update(mixed_effects_baseline(train, test, rows, warmup, info))
    return out


def physics_oracle(name: str, test: pd.DataFrame, clean: pd.DataFrame, rows: pd.DataFrame, info) -> dict:
    """The physics oracle's scores (benchmarks/oracles.py): the generator's equations, every
    condition and the priors of the hidden per-specimen factors, not the factors; the posterior
    mean path given each specimen's noisy warm-up. No forecaster can expect to do better."""
    warmup = warmup_lengths(test, info)
    mean, q10, q90, eol, _ = oracles.oracle_forecast(name, test, warmup, info.noise)
    after = ~in_warmup(test, warmup)
    rows = rows.assign(y_pred=mean[after], **{"q0.1": q10[after], "q0.9": q90[after]})
    scores = score(rows, info.eol_threshold, probabilistic=True)
    return scores | (
        eol_interval(eol, eol_truth(clean, warmup, info.target, info.eol_threshold))
        if eol is not None
        else {}
    )


ORACLES = {name: functools.partial(physics_oracle, name) for name in oracles.SETS}


def ensure_darts() -> str | None:
    """Install Darts in its own venv on first use; None when ready, else why not."""
    if DARTS_PY.exists():
        probe = subprocess.run([str(DARTS_PY), "-c", "import darts, pyarrow"], capture_output=True, text=True)
        if probe.returncode == 0:
            return None
    say(f"installing Darts into {DARTS_VENV.relative_to(ROOT)} (once) ...")
    steps = [
        ["python3", "-m", "venv", str(DARTS_VENV)],
        [str(DARTS_VENV / "bin" / "pip"), "install", "--quiet", "darts[torch]", "torch==2.13.0", "pyarrow"],
    ]
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            return f"`{' '.join(cmd)}` failed: {(proc.stderr or proc.stdout).strip()[-800:]}"
    return None


def run_darts(
    train_df, fit_ids, val_ids, test, rows, info, seed: int, budget: float, epochs_cap: int
) -> dict:
    job = Path(tempfile.mkdtemp(prefix=f"darts-{info.name}-"))
    try:
        train_df[train_df["specimen_id"].isin(fit_ids)].to_parquet(job / "train.parquet", index=False)
        train_df[train_df["specimen_id"].isin(val_ids)].to_parquet(job / "val.parquet", index=False)
        test.to_parquet(job / "test.parquet", index=False)
        cfg = DARTS | {
            "target": info.target,
            "covariates": list(info.covariates),
            "static": list(info.static),
            "context": info.context,
            "max_seconds": budget,
            "max_epochs": epochs_cap,
            "seed": seed,
            "threads": 1,
        }
        (job / "config.json").write_text(json.dumps(cfg))
        t0 = time.perf_counter()
        proc = subprocess.run(
            [str(DARTS_PY), str(BENCH / "darts_runner.py"), str(job)],
            capture_output=True,
            text=True,
            env=os.environ | THREAD_ENV,
            timeout=max(600, 6 * budget),
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr.strip()[-1500:])
        result = json.loads((job / "result.json").read_text())
        pred = pd.read_parquet(job / "predictions.parquet")
        merged = rows.merge(pred, on=["specimen_id", "row"], how="left")
        result["scores"] = score(merged, info.eol_threshold, direction=direction_of(info))
        result["seed"] = seed
        result["process_seconds"] = wall
        return result
    finally:
        shutil.rmtree(job, ignore_errors=True)


# -- the suite ---------------------------------------------------------------------------------------
def run(
    quick: bool,
    datasets: list[str],
    with_darts: bool = True,
    darts_budget: float = 1.0,
    seeds: list[int] | None = None,
    latent: int | str | None = None,
    ensemble: int = 0,
    latent_prior: float | None = None,
    monotonic: str = "none",
    epochs: int | None = None,
    patience: int | None = None,
    options: dict | None = None,
    fresh_test: int | None = None,
    member_paths: str | None = None,
    context: int | None = None,
    save_models: str | None = None,
    train_specimens: int | None = None,
) -> dict:
    s = (
        (QUICK if quick else FULL)
        | ({"epochs": epochs} if epochs is not None else {})  # 0: train's auto length
        | ({"patience": patience} if patience is not None else {})  # else train's auto patience
        | ({"seeds": seeds} if seeds else {})
        | ({"latent": latent} if latent is not None else {})
        | {"ensemble": ensemble}  # 0: train's default (auto); runs before it was recorded: 1
        | ({"latent_prior": latent_prior} if latent and latent_prior is not None else {})
        | ({"monotonic": monotonic} if monotonic != "none" else {})
        | ({"options": options} if options else {})
        | ({"fresh_test": fresh_test} if fresh_test is not None else {})
        | ({"context": context} if context else {})
        | ({"n_train": train_specimens} if train_specimens else {})
    )
    fresh_test = s["fresh_test"]
    if fresh_test:
        s["fresh_seed"] = FRESH_SEED
    out = header("accuracy", quick) | {"settings": s | {"darts": DARTS, "darts_budget_factor": darts_budget}}
    darts_problem = ensure_darts() if with_darts else "skipped (--no-darts)"
    out["darts_status"] = darts_problem or "ok"
    out["datasets"] = {}
    for name in datasets:
        real = name in realdata.REAL_INFO
        if real:
            split = realdata.split(name, seed=0)
        else:
            split = make_split(name, s["n_train"], s["n_test"], seed=0)
        info = split["info"]
        if context and not real:  # a longer (or shorter) warm-up than the set's, for tests and validation
            info = replace(info, context=context)
        train_df, test, clean = split["train"], split["test"], split["test_clean"]
        schema = Schema("specimen_id", "time", info.target, info.covariates, info.static)
        ds_train = validate(train_df, schema, source=f"{name}-train")
        ids = to_series(ds_train).ids
        warmup = warmup_lengths(test, info)
        rows = forecast_rows(test, clean, warmup, info.target)
        entry = {
            "info": {
                "target": info.target,
                "covariates": list(info.covariates),
                "static": list(info.static),
                "context": info.context,
                "val_context_frac": validation_warmup(info, {}).get("val_context_frac"),
                "threshold": info.eol_threshold,
                "eol_direction": direction_of(info),
                "noise": info.noise,
                "train_specimens": train_df["specimen_id"].nunique(),
                "test_specimens": test["specimen_id"].nunique(),
                "train_rows": len(train_df),
                "forecast_rows": len(rows),
                "model_config": {"lags": model_config(name).lags, "static": list(info.static)}
                | (
                    {"latent": latent, "latent_prior": s.get("latent_prior", ModelConfig.latent_prior)}
                    if latent
                    else {}
                )
                | ({"ensemble": ensemble} if ensemble else {})
                | ({"monotonic": monotonic} if monotonic != "none" else {}),
            }
            | (
                {
                    "real": True,
                    "source": info.source,
                    "warmup_fraction": info.warmup_fraction,
                    "warmup": info.warmup,
                    "test_ids": sorted(test["specimen_id"].unique().tolist()),
                    "warmup_rows": {str(k): int(v) for k, v in warmup.items()},
                }
                if real
                else {}
            ),
            "baselines": run_baselines(test, rows, warmup, info, ds_train),
            "oracle": ORACLES[name](test, clean, rows, info) if name in ORACLES else None,
            "model": {"runs": []},
            "darts": {"runs": []},
        }
        fresh = None
        if fresh_test and not real:
            fresh = fresh_split(name, fresh_test, info)
            entry["fresh"] = {
                "test_specimens": fresh_test,
                "seed": FRESH_SEED,
                "forecast_rows": len(fresh["rows"]),
                "baselines": run_baselines(fresh["test"], fresh["rows"], fresh["warmup"], info, ds_train),
            }
        for seed in s["seeds"]:
            say(f"[accuracy] {name} seed {seed}: training the durability model ...")
            run_, bundle = run_model(ds_train, test, clean, rows, warmup, info, seed, s)
            entry["model"]["runs"].append(run_)
            say(
                f"[accuracy] {name} seed {seed}: rmse {run_['scores']['rmse']:.4g} "
                f"({run_['train_seconds']:.0f} s, {run_['epochs_run']} epochs)"
            )
            if fresh is not None:
                run_["scores_fresh"] = score_split(bundle, fresh, info, seed, s["samples"])
                say(
                    f"[accuracy] {name} seed {seed}: rmse on {fresh_test} fresh specimens {run_['scores_fresh']['rmse']:.4g}"
                )
            if member_paths:
                on = fresh or {"test": test, "clean": clean, "rows": rows, "warmup": warmup}
                save_member_paths(bundle, on, info, Path(member_paths) / f"{name}-s{seed}.parquet")
            if save_models:  # what a study of forecast-side rules rescores without training again
                Path(save_models).mkdir(parents=True, exist_ok=True)
                save_bundle(bundle, Path(save_models) / f"{name}-s{seed}.safetensors")
            if darts_problem is None and real and info.warmup is None:
                # darts_runner.py takes one warm-up length for every specimen
                entry["darts"]["error"] = (
                    "not run: the peer takes one warm-up length, this set one per specimen"
                )
            elif darts_problem is None:
                # the split of the model's first member (seed s x members: an ensemble's seeds)
                fit_idx, val_idx = split_specimens(
                    len(ids), TrainConfig().val_fraction, seed * run_.get("members", 1)
                )
                budget = darts_budget * run_["train_seconds"]
                say(f"[accuracy] {name} seed {seed}: Darts RNNModel, {budget:.0f} s budget ...")
                try:
                    d = run_darts(
                        train_df,
                        [ids[i] for i in fit_idx],
                        [ids[i] for i in val_idx],
                        test,
                        rows,
                        info,
                        seed,
                        budget,
                        epochs_cap=1000,
                    )
                    entry["darts"]["runs"].append(d)
                    say(f"[accuracy] {name} seed {seed}: Darts rmse {d['scores']['rmse']:.4g}")
                except Exception as exc:  # record and go on: the peer must not stop the suite
                    entry["darts"]["error"] = f"{type(exc).__name__}: {exc}"[-1500:]
                    say(f"[accuracy] Darts failed: {entry['darts']['error'][:300]}")
        entry["model"]["summary"] = summarise([r["scores"] for r in entry["model"]["runs"]])
        if fresh is not None:
            entry["fresh"]["summary"] = summarise([r["scores_fresh"] for r in entry["model"]["runs"]])
        if entry["darts"]["runs"]:
            entry["darts"]["summary"] = summarise([r["scores"] for r in entry["darts"]["runs"]])
        elif darts_problem:
            entry["darts"]["error"] = darts_problem
        entry["training_speed"] = time_to_reach(entry)
        out["datasets"][name] = entry
    return out


def time_to_reach(entry: dict) -> dict:
    """Per seed: Darts' best free-running validation RMSE and its training time to it, and the
    training time the durability model needed to first reach that RMSE on the same specimens."""
    pairs = []
    for m, d in zip(entry["model"]["runs"], entry["darts"]["runs"], strict=False):
        target = d.get("best_val_rmse")
        if target is None:
            continue
        ours = next((c["seconds"] for c in m["val_curve"] if c["val_rmse"] <= target), None)
        pairs.append(
            {
                "seed": m["seed"],
                "darts_best_val_rmse": target,
                "darts_time_to_best": d["time_to_best"],
                "darts_fit_seconds": d["fit_seconds"],
                "model_best_val_rmse": min(c["val_rmse"] for c in m["val_curve"]),
                "model_time_to_reach": ours,
                "ratio": ours / d["time_to_best"] if ours is not None else None,
            }
        )
    ratios = [p["ratio"] for p in pairs if p["ratio"] is not None]
    return {
        "pairs": pairs,
        "median_ratio": statistics.median(ratios) if len(ratios) == len(pairs) and ratios else None,
        "reached": f"{len(ratios)}/{len(pairs)}",
    }
