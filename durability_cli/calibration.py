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
end-of-life intervals all follow, the mean path does not move.

With ``--sides each`` the record also holds a factor per bin for the band's half under the mean
and one for the half over it (``under``, ``over``), and the forecast moves each member's paths
away from that member's mean path by the factor of their side at each step (``scale_sides``)
instead. The mean path, which is the forecast's mean column, still does not move (nor does the
end-of-life pace's stretched mean); the paths' average does, since the halves move by different
factors. A quantile is taken to lie on the
side of the mean its paths lie on: a band that does not straddle the mean path (possible for a
latent model's skewed paths) is scaled by the other side's factor there.

Why a factor is exact: a path is the mean path plus each member's scale (and z's spread) times
``scale_calibration`` (forecasting._member_rollout), so multiplying that by c at a step moves every
path's distance from the mean there, and with it every quantile's, by c. A row is inside the scaled
band when |y - mean| <= c x the band's half on its side (mean: the deterministic mean path); a
bin's factor is the ``level`` quantile of that ratio over its rows (method "higher": at least
``level`` of them are inside); between the centres the factor is interpolated, so the coverage a
calibration reports after is that of the interpolated factors on its own rows.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from statistics import NormalDist

import numpy as np
import pandas as pd

from durability_cli.artifact import ModelBundle
from durability_cli.config import lopsided
from durability_cli.errors import InputError

TIE_MARGIN = 1e-5  # relative: a band wider by 0.001 %, see band_factor
# --sides: "both" scales the band's two halves alike (one factor, the default); "each" scales the
# half under the mean and the half over it by a factor each, so that (1 - level) / 2 of the rows
# fall on either side. New specimens' misses are often one-sided (on 96 fresh coating and battery
# specimens 8-24 % of the values fell under the 80 % band and 2-9 % over it), which one factor can
# only make up for by widening both halves. Measured on the suite's saved models, calibrated on 32
# new specimens with --bins 4 (benchmarks/calibrate_sides.py, results/calibrate-sides.jsonl): each against both,
# 80 % interval score x0.959 against x0.980 of the uncalibrated model's, CRPS x0.975 against
# x0.990, bands in 75-85 % on 18 of 24 against 15; but the end-of-life interval, whose upper end
# rarely misses, held more than 85 % of the crossings more often (in range on 11 against 16), so
# "both" stays the default. A factor per half moves the paths' average too (not the mean column,
# which is the mean path since session 48).
SIDES = ("both", "each")
MIN_SIDE = 0.05  # a half that (nearly) no row falls beyond keeps at least this share of its width
# --sides each on fewer specimens than this gets a warning: each factor then rests on the
# (1 - level) / 2 of the rows of a few specimens beyond it (with 16 and --bins 4 it gained less,
# and battery's RMSE moved the wrong way on 5 draws of 6, by 1.5-11 %)
SIDES_SPECIMENS = 30
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

    ``centre``: what the scaling moves the paths away from, the deterministic mean path (its rows
    in the same order); by default the backtest's ``y_pred``, which is that path."""
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


def needed_sides(backtest: pd.DataFrame, level: float, centre: np.ndarray | None = None):
    """:func:`needed`, each half apart: per scored row, the factor its half under the centre must
    be scaled by for the row not to fall under the band (0 for a row over the centre), the same
    for the half over it, and the row's step."""
    ratios, steps = needed(backtest, level, centre)
    lo_q, hi_q = band_columns(level)
    y = backtest["y_true"].to_numpy(float)
    mean = backtest["y_pred"].to_numpy(float) if centre is None else np.asarray(centre, dtype=float)
    lo, hi = backtest[f"q{lo_q:g}"].to_numpy(float), backtest[f"q{hi_q:g}"].to_numpy(float)
    ok = np.isfinite(y) & np.isfinite(mean) & np.isfinite(lo) & np.isfinite(hi)
    under = y[ok] < mean[ok]
    return np.where(under, ratios, 0.0), np.where(under, 0.0, ratios), steps


def side_factor(ratios: np.ndarray, level: float, source: str, side: str = "under") -> float:
    """The factor on one half of the band that leaves at most (1 - level) / 2 of the rows beyond
    it (at least MIN_SIDE: a half no row falls beyond keeps some width)."""
    try:
        return max(MIN_SIDE, band_factor(np.maximum(ratios, MIN_SIDE), (1 + level) / 2, source))
    except InputError as exc:
        if "no measured rows" in str(exc):
            raise
        raise InputError(
            f"{source}: the band's half {side} the mean has no width where more than {(1 - level) / 2:.0%} "
            "of the rows fall beyond it, so no factor can scale it; calibrate with --sides both"
        ) from None


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


def step_sides(block: dict | None, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """A calibration's factors on the band's half under the mean path and on the half over it at
    each step (interpolated as :func:`step_factors`), or None where it has one factor for both
    (``--sides both``, or a file from before session 32): the forecast then uses that one."""
    if not block or "under" not in block or "over" not in block:
        return None
    return np.interp(steps, block["centres"], block["under"]), np.interp(
        steps, block["centres"], block["over"]
    )


def scale_sides(mean: np.ndarray, paths: np.ndarray, sides: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """``paths`` [B, S, T] moved away from ``mean`` [B, T] by the factor of their side at each
    step (``sides``: [B, T] under, [B, T] over, or scalars)."""
    under, over = (np.broadcast_to(np.asarray(f, dtype=np.float64), mean.shape)[:, None, :] for f in sides)
    dev = paths - mean[:, None, :]
    return (mean[:, None, :] + dev * np.where(dev < 0, under, over)).astype(paths.dtype)


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
    # The row that sets c sits exactly on the scaled band's edge; a forecast made again with the
    # factor rounds differently (float32 paths) and could put it just outside (an ensemble's
    # calibration held 160 of 199 rows, its re-forecast 159), so c is nudged up by TIE_MARGIN.
    return c * (1 + TIE_MARGIN)


def calibrated(bundle: ModelBundle, block: dict | None) -> ModelBundle:
    """A copy of ``bundle`` (the weights shared, not copied) whose calibration is ``block`` (None:
    as trained): the record in the summary that the forecast reads (``step_factors``). The summary
    is copied whole (its history, its members' records), so that what a caller does to one
    model's summary does not show in the other's."""
    summary = copy.deepcopy({k: v for k, v in bundle.summary.items() if k != "calibration"})
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


def measure(
    backtest: pd.DataFrame,
    centre: pd.DataFrame | None,
    level: float,
    bins: int,
    source: str,
    sides: str = "both",
) -> dict:
    """The calibration (summary["calibration"]) from a sampled backtest of the calibration
    specimens with the model as trained, whose ``y_pred`` is the mean path the paths are scaled
    about (``centre``: another table of the same rows that holds it; None: the backtest's own):
    the factor per bin of steps (with ``sides="each"`` also one per half of the band,
    ``under`` and ``over``, which the forecast then uses), and the coverage, the shares under and
    over the band, and the width, before and after."""
    if sides not in SIDES:
        raise InputError(f"`sides` must be one of {', '.join(SIDES)}, got {sides!r}")
    centre = backtest if centre is None else centre
    if not centre[["specimen", "time"]].equals(backtest[["specimen", "time"]]):
        raise AssertionError("the deterministic and the sampled backtest scored different rows")
    ratios, steps = needed(backtest, level, centre["y_pred"].to_numpy())
    overall = band_factor(ratios, level, source)
    edges = step_edges(steps, bins)
    which = np.searchsorted(np.asarray(edges, dtype=np.int64), steps, side="left")
    factors = [band_factor(ratios[which == b], level, source) for b in range(len(edges) + 1)]
    centres = [float(np.median(steps[which == b])) for b in range(len(edges) + 1)]
    block = {"edges": edges, "centres": centres, "factors": factors}
    r_under, r_over, _ = needed_sides(backtest, level, centre["y_pred"].to_numpy())
    if sides == "each":
        for key, r in (("under", r_under), ("over", r_over)):
            block[key] = [side_factor(r[which == b], level, source, key) for b in range(len(edges) + 1)]
    per_side = step_sides(block, steps)
    after_under, after_over = per_side if per_side is not None else (step_factors(block, steps),) * 2
    lo, hi = (backtest[f"q{q:g}"].to_numpy(float) for q in band_columns(level))
    mean = centre["y_pred"].to_numpy(float)
    all_steps = backtest["step"].to_numpy(np.int64)
    all_sides = step_sides(block, all_steps) or (step_factors(block, all_steps),) * 2
    width_after = (mean - lo) * all_sides[0] + (hi - mean) * all_sides[1]
    width = hi - lo
    finite = np.isfinite(width) & np.isfinite(width_after)
    n = max(1, len(ratios))
    return block | {
        "source": source,
        "specimens": int(len(backtest["specimen"].unique())),
        "rows": int(len(ratios)),
        "level": level,
        "bins": len(factors),
        "sides": sides,
        "factor": overall,
        "coverage_before": coverage(ratios),
        "coverage_after": coverage(np.maximum(r_under / after_under, r_over / after_over)),
        "under_before": float((r_under > 1).sum() / n),
        "over_before": float((r_over > 1).sum() / n),
        "under_after": float((r_under > after_under).sum() / n),
        "over_after": float((r_over > after_over).sum() / n),
        "width_before": float(width[finite].mean()),
        "width_after": float(width_after[finite].mean()),
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
    under, over = block.get("under_before"), block.get("over_before")
    if block.get("sides") == "both" and under is not None and over is not None and lopsided(under, over):
        out.append(
            f"the band's misses were one-sided ({under:.0%} of the values under it, {over:.0%} over) and one "
            "factor widens both halves: --sides each scales them apart"
            + (f" (with {SIDES_SPECIMENS} or more specimens)" if block["specimens"] < SIDES_SPECIMENS else "")
        )
    if block.get("sides") == "each" and block["specimens"] < SIDES_SPECIMENS:
        out.append(
            f"--sides each on {block['specimens']} specimens: each half's factor rests on the few rows "
            f"beyond it; with fewer than {SIDES_SPECIMENS} specimens one factor (--sides both) was "
            "steadier on the benchmarks"
        )
    if block.get("errors_follow"):
        names = ", ".join(block["errors_follow"])
        out.append(
            f"the held-out errors follow {names} (evaluate's by_condition): a factor by step widens the band "
            "of every specimen alike, and its misses can gather at one end of that condition's range or both; "
            'see docs/GUIDE.md, "When the error follows a condition"'
        )
    if seen:
        names = ", ".join(seen[:5]) + (", ..." if len(seen) > 5 else "")
        out.append(
            f"{len(seen)} calibration specimen(s) have the names of specimens the model trained or "
            f"validated on ({names}): if they are the same specimens, their errors are too small and "
            "the band will be too narrow"
        )
    return out


# -- the end-of-life interval ------------------------------------------------------------------------
# The band's factor moves the paths, and with them the end-of-life interval, but an interval in time
# can still hold too few or too many of the true crossings: a path that is a little off in value
# crosses a flat threshold far off in time. So, with a threshold and --eol-interval, `calibrate` also
# measures the interval itself on the held-out crossings (conformalised quantile regression on the
# remaining life, in log time): the p10-p90 interval's remaining life after the cut-off is
# multiplied by exp(-shift) at its lower end and exp(+shift) at its upper end. A negative shift
# narrows it, never past the median crossing. Other quantiles move in proportion to their normal score (p5 by 1.28 x the shift
# of p10, p25 by half of it), the median stays. The interval is the one evaluate scores: p10-p90.
EOL_LEVEL = 0.8
_EOL_Z = NormalDist().inv_cdf(0.9)  # the normal score of the interval's upper end


def eol_shift(block: dict | None) -> float:
    """The calibration's shift of the end-of-life interval (0.0: none)."""
    eol = (block or {}).get("eol") or {}
    return float(eol.get("shift") or 0.0)


def life_factor(q: float, shift: float) -> float:
    """What a calibration's ``shift`` multiplies quantile ``q``'s remaining life by."""
    return math.exp(shift * NormalDist().inv_cdf(q) / _EOL_Z)


def shift_crossing(
    values: np.ndarray, q: float, median: np.ndarray, start: np.ndarray, shift: float
) -> np.ndarray:
    """Quantile ``q`` of the crossing times ([N], +inf: later than the horizon) moved by ``shift``:
    the remaining life after ``start`` (the cut-off) scaled by exp(shift x z_q / z_0.9); a
    narrowing (shift < 0) stops at the ``median`` crossing."""
    if not shift or q == 0.5:
        return values
    with np.errstate(invalid="ignore", over="ignore"):
        moved = start + (values - start) * life_factor(q, shift)
    moved = np.where(np.isfinite(values), moved, values)
    return np.minimum(moved, median) if q < 0.5 else np.maximum(moved, median)


def _log_life(t: np.ndarray, start: np.ndarray) -> np.ndarray:
    """log of the time after ``start`` (+inf stays +inf; a crossing at the cut-off is a tiny life)."""
    life = np.asarray(t, dtype=np.float64) - start
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(np.where(np.isfinite(life), np.maximum(life, 1e-12), life))


def eol_thresholds(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per scored forecast of ``table`` (metrics.eol_per_origin): from which shift on it is
    covered (``cover``), below which shift it is missed (``miss``), as evaluate will decide it
    (metrics.eol_interval_coverage) once the shift is in the model. The shift s moves the log
    remaining life of p10 by -s and of p90 by +s, neither past the median, and the forecast reports
    an end past the horizon as +inf (forecasting.interval_levels), so an end the backtest gives
    past the horizon (``eol_past_horizon``) can be brought within it. A crossed truth is covered
    from ``cover`` on and missed below it; a censored truth (after the last measured row) is
    covered once p90 lies past the horizon and p10 at or before the last measured row, missed
    while p90 lies before that row, undecided otherwise. -inf / +inf: always / never."""
    start = table["t_cut"].to_numpy(float)
    lo, mid, hi = (_log_life(table[c].to_numpy(float), start) for c in ("eol_p10", "eol_p50", "eol_p90"))
    true, cens = (
        _log_life(table["eol_true"].to_numpy(float), start),
        _log_life(table["censor"].to_numpy(float), start),
    )
    end = _log_life(table["horizon"].to_numpy(float), start)
    crossed = np.isfinite(table["eol_true"].to_numpy(float))
    with np.errstate(invalid="ignore"):
        # a crossed truth below the median needs the lower end down to it, above it the upper end up
        need = np.where(true < mid, lo - true, np.where(true > mid, true - hi, -np.inf))
        # p90 past the horizon from just after here on (-inf: already): at end - hi it stands on
        # the horizon's last row, which the forecast reports as a time, not as "later"
        gap = end - hi
        opens = np.where(mid > end, -np.inf, np.where(np.isfinite(gap), np.nextafter(gap, np.inf), gap))
        reach = np.where(mid <= cens, -np.inf, lo - cens)  # p10 at or before the last measured row
        cover = np.where(crossed, need, np.maximum(opens, reach))
        miss = np.where(crossed, need, np.where(mid >= cens, -np.inf, cens - hi))
    return np.where(np.isnan(cover), np.inf, cover), np.where(np.isnan(miss), -np.inf, miss), crossed


def eol_counts(cover: np.ndarray, miss: np.ndarray, shifts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(covered, decided) forecasts with the interval moved by each of ``shifts``."""
    covered = np.searchsorted(np.sort(cover), shifts, side="right")
    missed = len(miss) - np.searchsorted(np.sort(miss), shifts, side="right")
    return covered, covered + missed


def measure_eol(table: pd.DataFrame, source: str, level: float = EOL_LEVEL) -> dict:
    """The shift that makes the p10-p90 end-of-life interval hold ``level`` of the held-out
    crossings, with the coverage before and after. ``table``: the scored forecasts of a
    backtest of the band-calibrated model (metrics.eol_per_origin).

    Split conformal: the smallest shift under which at least ceil(level x (n + 1)) of the n
    decided forecasts are covered, so that a new specimen's interval holds its crossing with
    probability ``level`` or a little more (at most 1 / (n + 1) more). With fewer than
    level / (1 - level) forecasts (4 at 80 %), or when no shift gets there (crossings where no
    path crossed), the interval is left as the band makes it (shift 0) and ``reached`` is False."""
    cover, miss, crossed = eol_thresholds(table)
    candidates = np.unique(np.concatenate([cover, miss, [0.0]]))
    candidates = candidates[np.isfinite(candidates)]
    covered, decided = eol_counts(cover, miss, candidates)
    ok = (decided > 0) & (covered >= np.ceil(level * (decided + 1) - 1e-9))
    at_zero = eol_counts(cover, miss, np.array([0.0]))
    before, n_before = (float(at_zero[0][0] / at_zero[1][0]) if at_zero[1][0] else None), int(at_zero[1][0])
    shift = float(candidates[np.argmax(ok)]) if ok.any() else 0.0
    if shift:  # just past the breakpoint: the forecast's exp and log must not round it back
        shift += 1e-9 * max(1.0, abs(shift))
    after = eol_counts(cover, miss, np.array([shift]))
    return {
        "level": level,
        "interval": [0.1, 0.9],
        "shift": shift,
        "reached": bool(ok.any()),
        "coverage_before": before,
        "n_before": n_before,
        "coverage_after": float(after[0][0] / after[1][0]) if after[1][0] else None,
        "n": int(after[1][0]),
        "most_decided": int(decided.max(initial=0)),
        "crossed": int(crossed.sum()),
        "forecasts": int(len(table)),
        "source": source,
    }


def eol_hint(eol: dict) -> list[str]:
    """Without --eol-interval: a pointer to it when the band-calibrated interval held a share of
    the held-out crossings more than two binomial standard deviations from ``level`` (and at
    least 20 forecasts decided it)."""
    n, share, level = eol["n_before"], eol["coverage_before"], eol["level"]
    if n < 20 or share is None or abs(share - level) <= 2 * math.sqrt(level * (1 - level) / n):
        return []
    return [
        f"the end-of-life p10-p90 interval held {share:.0%} of {n} held-out crossings (the band's factor "
        f"alone); --eol-interval calibrates it on them to hold {level:.0%}"
    ]


def eol_warnings(eol: dict) -> list[str]:
    """What the user should know about the end-of-life interval's shift."""
    level = eol["level"]
    if eol["reached"]:
        if eol["n"] >= FEW_SPECIMENS:
            return []
        n = eol["n"]
        need = math.ceil(level * (n + 1) - 1e-9)  # measure_eol's split conformal count
        every = ", every one" if need >= n else ""
        return [
            f"the end-of-life interval's shift rests on {n} forecast(s); with fewer than {FEW_SPECIMENS} "
            f"it can be far off. To hold a new specimen's crossing with {level:.0%} probability it must "
            f"hold {need} of these {n}{every}, so it widens more than their share held suggests"
        ]
    if eol["most_decided"] < math.ceil(level / (1 - level) - 1e-9):
        return [
            f"{eol['most_decided']} held-out forecast(s) settle whether the end-of-life interval holds the "
            f"true crossing, too few to calibrate it at {level:.0%}: it is left as the band makes it; "
            "calibrate on more specimens measured past the threshold"
        ]
    return [
        f"no shift makes the end-of-life interval hold {level:.0%} of the held-out crossings: some came "
        "where no path of the forecast crossed and the mean, run on past the horizon at the paces the "
        "model measured, did not either (the forecast's mean misses them, widening cannot reach them); "
        "the interval is left as the band makes it"
    ]
