"""Calibrating a model's band on specimens it never saw: `durability calibrate` (split conformal).

Training can only check its band on the validation specimens, which also chose the
early-stopping epoch: their errors are optimistic, so `train` only ever widens the band
(training._calibration). An engineer who holds back a few specimens gets an honest check: each
is forecast from its warm-up (the same cut-offs as `evaluate`), and the band is scaled by the one
factor that makes the central ``level`` band cover that share of their measured values. Every
member's ``scale_calibration`` is multiplied by it, so forecasts, quantiles, paths and end-of-life
intervals all follow.

Why one factor is exact: a path is the mean path plus each member's scale (and z's spread) times
``scale_calibration`` (forecasting._member_rollout), so multiplying the factor by c moves every
path's distance from the mean, and with it every quantile's, by c. A row is inside the scaled band
when |y - mean| <= c x the band's half on its side (mean: the deterministic mean path); the factor is the ``level`` quantile of that
ratio over the calibration rows (method "higher": at least ``level`` of them are inside).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from durability_cli.artifact import ModelBundle
from durability_cli.errors import InputError

FEW_SPECIMENS = 10  # below this many calibration specimens the factor is a rough one (a warning says so)


def band_columns(level: float) -> tuple[float, float]:
    """The quantiles bounding the central ``level`` band, e.g. 0.8 -> (0.1, 0.9)."""
    if not 0.0 < level < 1.0:
        raise InputError(f"`level` must be between 0 and 1 (0.8: the p10-p90 band), got {level}")
    return round((1.0 - level) / 2.0, 6), round((1.0 + level) / 2.0, 6)


def check_calibratable(bundle: ModelBundle) -> None:
    """Refuse models whose band one factor cannot scale."""
    if bundle.model_config.loss != "gaussian":
        raise InputError(
            f"this model forecasts points only (--loss {bundle.model_config.loss}): there is no band to "
            "calibrate; train with --loss gaussian (the default)"
        )
    if bundle.train_config.feedback != "mean":
        raise InputError(
            "this model feeds back sampled values (--feedback sample): its paths are not the mean plus a "
            "scaled spread, so one factor cannot calibrate them; train with --feedback mean (the default)"
        )


def needed(backtest: pd.DataFrame, level: float, centre: np.ndarray | None = None) -> np.ndarray:
    """Per scored row (finite truth and band): the factor by which the band must be scaled for
    the row to fall inside it (0 on the centre; inf where the band has no width on that side).

    ``centre``: what the scaling moves the paths away from, the deterministic mean path (a
    backtest with samples=0; its rows in the same order). The sampled backtest's ``y_pred`` is
    the average of the paths, a Monte Carlo estimate of it (the default)."""
    lo_q, hi_q = band_columns(level)
    lo, hi = backtest[f"q{lo_q:g}"].to_numpy(float), backtest[f"q{hi_q:g}"].to_numpy(float)
    y = backtest["y_true"].to_numpy(float)
    mean = backtest["y_pred"].to_numpy(float) if centre is None else np.asarray(centre, dtype=float)
    ok = np.isfinite(y) & np.isfinite(mean) & np.isfinite(lo) & np.isfinite(hi)
    y, mean, lo, hi = y[ok], mean[ok], lo[ok], hi[ok]
    half = np.where(y >= mean, hi - mean, mean - lo)
    dev = np.abs(y - mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(dev == 0, 0.0, dev / np.where(half > 0, half, 0.0))
    return np.where(np.isnan(ratio), np.inf, ratio)


def band_factor(ratios: np.ndarray, level: float, source: str) -> float:
    """The smallest factor that puts at least ``level`` of the rows inside the scaled band."""
    if not len(ratios):
        raise InputError(
            f"{source}: no measured rows after the cut-offs to calibrate on; give specimens longer than "
            "their warm-up (--context / --context-frac / --origins)"
        )
    c = float(np.quantile(ratios, level, method="higher"))
    if not np.isfinite(c) or c <= 0:
        raise InputError(
            f"{source}: the band cannot be scaled to cover {level:.0%} of the rows (factor {c}): the "
            "forecast band has no width there; check that the model was trained with --loss gaussian"
        )
    return c


def rescaled(bundle: ModelBundle, factor: float, block: dict) -> ModelBundle:
    """A copy of ``bundle`` whose every member's band is ``factor`` x wider (the weights are
    shared, not copied), with ``block`` (what was calibrated on) in the summary."""
    members = []
    for member in bundle.members:
        summary = dict(member.summary)
        summary["scale_calibration"] = float(summary.get("scale_calibration") or 1.0) * factor
        members.append(dataclasses.replace(member, summary=summary, others=[]))
    members[0].summary["calibration"] = block
    return dataclasses.replace(members[0], others=members[1:])


def seen_specimens(bundle: ModelBundle, ids) -> list[str]:
    """The calibration specimens whose names are those of specimens any member trained or
    validated on (their errors would be in-sample: too small)."""
    seen: set[str] = set()
    for member in bundle.members:
        seen.update(map(str, member.summary.get("train_specimens") or []))
        seen.update(map(str, member.summary.get("val_specimens") or []))
    return sorted({str(i) for i in ids} & seen)


def coverage(ratios: np.ndarray, factor: float = 1.0) -> float:
    """Share of the rows inside the band scaled by ``factor``."""
    return float(np.mean(ratios <= factor)) if len(ratios) else float("nan")


def measure(bundle: ModelBundle, backtest: pd.DataFrame, centre: pd.DataFrame, level: float, source: str):
    """The factor and the record of it (summary["calibration"]) from a sampled backtest of the
    calibration specimens and the deterministic one (``centre``, samples=0) of the same rows."""
    if not centre[["specimen", "time"]].equals(backtest[["specimen", "time"]]):
        raise AssertionError("the deterministic and the sampled backtest scored different rows")
    ratios = needed(backtest, level, centre["y_pred"].to_numpy())
    factor = band_factor(ratios, level, source)
    ids = backtest["specimen"].unique()
    lo, hi = (backtest[f"q{q:g}"].to_numpy(float) for q in band_columns(level))
    width = float(np.nanmean(hi - lo))
    seen = seen_specimens(bundle, ids)
    warnings = []
    if len(ids) < FEW_SPECIMENS:
        warnings.append(
            f"the factor rests on {len(ids)} specimen(s); with fewer than {FEW_SPECIMENS} it can be far "
            "off: calibrate on more held-out specimens when you have them"
        )
    if seen:
        names = ", ".join(seen[:5]) + (", ..." if len(seen) > 5 else "")
        warnings.append(
            f"{len(seen)} calibration specimen(s) have the names of specimens the model trained or "
            f"validated on ({names}): if they are the same specimens, their errors are too small and "
            "the band will be too narrow"
        )
    block = {
        "source": source,
        "specimens": int(len(ids)),
        "rows": int(len(ratios)),
        "level": level,
        "factor": factor,
        "coverage_before": coverage(ratios),
        "coverage_after": coverage(ratios, factor),
        "width_before": width,
        "width_after": width * factor,
        "seen_specimens": len(seen),
        "warnings": warnings,
    }
    return factor, block
