"""Calibrating a model's band on specimens it never saw: `durability calibrate` (split conformal).

Training can only check its band on the validation specimens, which also chose the
early-stopping epoch: their errors are optimistic, so `train` only ever widens the band
(training._calibration). An engineer who holds back a few specimens gets an honest check: each
is forecast from its warm-up (the same cut-offs as `evaluate`), and the band is scaled so that its
central ``level`` band covers that share of their measured values. The error of a free run grows
with the steps since the warm-up, and the model's own spread does not always grow as fast (on
coating the p10-p90 band held 95 % of the first 32 steps and 65 % after step 98), so the factor is
measured per band of steps: ``bins`` groups of steps with as many calibration rows each. The
factors go into the model file (summary["calibration"]: ``edges`` of the bins, each bin's median
step in ``centres`` and its factor in ``factors``) and the forecast multiplies each member's spread
at step s after the warm-up by ``step_factors`` (linear between the centres): paths, quantiles and
end-of-life intervals all follow, the mean does not move.

Why a factor is exact: a path is the mean path plus each member's scale (and z's spread) times
``scale_calibration`` (forecasting._member_rollout), so multiplying that by c at a step moves every
path's distance from the mean there, and with it every quantile's, by c. A row is inside the scaled
band when |y - mean| <= c x the band's half on its side (mean: the deterministic mean path); a
bin's factor is the ``level`` quantile of that ratio over its rows (method "higher": at least
``level`` of them are inside); between the centres the factor is interpolated, so the coverage a
calibration reports after is that of the interpolated factors on its own rows.
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


def needed(backtest: pd.DataFrame, level: float, centre: np.ndarray | None = None):
    """Per scored row (finite truth and band): the factor by which the band must be scaled for
    the row to fall inside it (0 on the centre; inf where the band has no width on that side),
    and the row's step after its cut-off.

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
    return np.where(np.isnan(ratio), np.inf, ratio), backtest["step"].to_numpy(np.int64)[ok]


def step_edges(steps: np.ndarray, bins: int) -> list[int]:
    """The last step of each bin but the last: ``bins`` groups of steps with about as many rows
    each (fewer where many rows share a step)."""
    if bins < 1:
        raise InputError(f"`bins` must be at least 1 (1: one factor for every step), got {bins}")
    if bins == 1 or not len(steps):
        return []
    cuts = np.quantile(steps, np.arange(1, bins) / bins, method="lower").astype(int)
    return sorted({int(c) for c in cuts if c < steps.max()})


def step_factors(block: dict | None, steps: np.ndarray) -> np.ndarray | float:
    """The calibration's factor at each step after the warm-up (1.0 without a calibration):
    each bin's factor at its median step, linear in between and flat beyond the first and the
    last, so that a path does not jump where one bin meets the next."""
    if not block or "factors" not in block:
        return 1.0
    return np.interp(steps, block["centres"], block["factors"])


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


def calibrated(bundle: ModelBundle, block: dict | None) -> ModelBundle:
    """A copy of ``bundle`` (the weights shared, not copied) whose calibration is ``block`` (None:
    as trained): the record in the summary that the forecast reads (``step_factors``)."""
    summary = {k: v for k, v in bundle.summary.items() if k != "calibration"}
    if block is not None:
        summary["calibration"] = block
    return dataclasses.replace(bundle, summary=summary)


def seen_specimens(bundle: ModelBundle, ids) -> list[str]:
    """The calibration specimens whose names are those of specimens any member trained or
    validated on (their errors would be in-sample: too small)."""
    seen: set[str] = set()
    for member in bundle.members:
        seen.update(map(str, member.summary.get("train_specimens") or []))
        seen.update(map(str, member.summary.get("val_specimens") or []))
    return sorted({str(i) for i in ids} & seen)


def coverage(ratios: np.ndarray, factor: np.ndarray | float = 1.0) -> float:
    """Share of the rows inside the band scaled by ``factor`` (one, or one per row)."""
    return float(np.mean(ratios <= factor)) if len(ratios) else float("nan")


def measure(backtest: pd.DataFrame, centre: pd.DataFrame, level: float, bins: int, source: str) -> dict:
    """The calibration (summary["calibration"]) from a sampled backtest of the calibration
    specimens with the model as trained and the deterministic one (``centre``, samples=0) of the
    same rows: the factor per bin of steps, and the coverage and width before and after."""
    if not centre[["specimen", "time"]].equals(backtest[["specimen", "time"]]):
        raise AssertionError("the deterministic and the sampled backtest scored different rows")
    ratios, steps = needed(backtest, level, centre["y_pred"].to_numpy())
    overall = band_factor(ratios, level, source)
    edges = step_edges(steps, bins)
    which = np.searchsorted(np.asarray(edges, dtype=np.int64), steps, side="left")
    factors = [band_factor(ratios[which == b], level, source) for b in range(len(edges) + 1)]
    centres = [float(np.median(steps[which == b])) for b in range(len(edges) + 1)]
    block = {"edges": edges, "centres": centres, "factors": factors}
    per_row = step_factors(block, steps)
    ids = backtest["specimen"].unique()
    lo, hi = (backtest[f"q{q:g}"].to_numpy(float) for q in band_columns(level))
    width = hi - lo
    finite = np.isfinite(width)
    return block | {
        "source": source,
        "specimens": int(len(ids)),
        "rows": int(len(ratios)),
        "level": level,
        "bins": len(factors),
        "factor": overall,
        "coverage_before": coverage(ratios),
        "coverage_after": coverage(ratios, per_row),
        "width_before": float(width[finite].mean()),
        "width_after": float(
            (width * step_factors(block, backtest["step"].to_numpy(np.int64)))[finite].mean()
        ),
    }


def warnings(block: dict, seen: list[str]) -> list[str]:
    """What the user should know about a calibration: too few specimens, or ``seen`` ones
    (``seen_specimens``: with the names of specimens the model trained on)."""
    out = []
    if block["specimens"] < FEW_SPECIMENS:
        out.append(
            f"the factors rest on {block['specimens']} specimen(s); with fewer than {FEW_SPECIMENS} they can "
            "be far off: calibrate on more held-out specimens when you have them"
        )
    if seen:
        names = ", ".join(seen[:5]) + (", ..." if len(seen) > 5 else "")
        out.append(
            f"{len(seen)} calibration specimen(s) have the names of specimens the model trained or "
            f"validated on ({names}): if they are the same specimens, their errors are too small and "
            "the band will be too narrow"
        )
    return out
