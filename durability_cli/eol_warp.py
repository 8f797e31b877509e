"""The end-of-life interval's second source: how fast a specimen runs, which its warm-up leaves open.

The forecast's Monte Carlo paths are the mean path plus a spread in value (forecasting.py). A
specimen whose hidden rate differs from the typical one (a crack growth coefficient, a cell's fade
rate) does not follow the mean a little higher or lower: it follows it faster or slower. Where the
decay accelerates (a crack that runs away), a spread in value gives a narrow spread in time, and
the paths' p10-p90 end-of-life interval held the true crossing for 25-38 % of crack's new
specimens (benchmarks/RESULTS.md) while their rows' band held 80 %.

So training also measures the rate's spread: each validation specimen's free-running mean path is
stretched in time after its warm-up, ``m(t0 + (t - t0) w)``, and the factor w that brings it
closest to the measured rows (least squares over a grid of log w, on the rows the stretched path
still reaches) is kept (summary["eol_warp"]["log_w"], per member); so is each training
specimen's, in-sample, from the same warm-up (``train_log_w``, at most MAX_TRAIN_SPECIMENS). The
log factors' median and standard deviation, pooled over both and every member, describe how much
faster or slower a new specimen may run. When a forecast is given a threshold, the mean path is
run on past the horizon with the conditions held (each specimen as far as its own span asks for
the fastest quantile asked for to be found; no further once every mean has crossed),
its crossing T_m found, and the quantile q of the crossing time under that spread is
``t0 + (T_m - t0) exp(-median + sd z_q)`` (z_q the normal score: a faster specimen crosses
sooner). Below the median that quantile stands where too few paths cross within the horizon to
give one, above it the later of the two counts (:func:`envelope`); the median stays the paths'.
Quantiles past the horizon stay "later than the horizon". The specimens training saw run closer
to the mean than new ones, so the forecast uses twice their spread (SPREAD_FACTOR).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from durability_cli.data import Series

GRID = np.linspace(-1.5, 1.5, 301)  # the log factors tried: a specimen 4.5 x faster to 4.5 x slower
MIN_OVERLAP = 1 / 3  # the stretched mean must still reach a third of the rows after the warm-up
MIN_ROWS = 3  # ... and at least this many
TIE = 0.02  # log factors within 2 % of the best squared error count as equally good: the nearest to 0 wins
MIN_SPECIMENS = 5  # fewer specimens fitted than this: no spread is measured, the paths alone decide
# The spread a forecast uses is that of the validation specimens' and (in-sample) the training
# specimens' log factors pooled, times this. Both spread less than new specimens' (on crack, sd
# 0.34-0.35 and 0.15-0.34 against 0.51-0.52; coating 0.19 and 0.14 against 0.24): the validation
# specimens chose the early-stopping epoch, the training ones were fitted, and the mean's own
# crossing is uncertain too. x2 on the pooled spread put crack's interval at 81-86 % of new
# specimens on two seeds, where x2 on the validation's alone gave 55 % on one of them
# (benchmarks/results/notes.md, session 30).
SPREAD_FACTOR = 2.0
# the training specimens whose pace is measured (the first ones): the spread's sample
MAX_TRAIN_SPECIMENS = 512
MAX_FACTOR = 10.0  # how far past the horizon the mean is run, as a multiple of the forecast's span
MAX_EXTRA_ROWS = 20_000  # ... and at most this many rows per specimen
# calibrate's backtest runs the mean as far as a shift of the interval (calibration.py) this large
# needs, so that it can measure a shift that brings ends past the horizon within it: exp(1.5)
# x the lowest quantile's own reach (within MAX_FACTOR). The largest shift measured on the
# benchmarks was 1.36 (crack; benchmarks/results/eol-calibration.jsonl, 84 calibrations).
CALIBRATE_SHIFT = 1.5


def fit_one(times: np.ndarray, truth: np.ndarray, mean: np.ndarray, t0: float, y0: float) -> float | None:
    """The log factor w for one specimen: ``times`` [R] of its measured rows after the warm-up,
    ``truth`` [R] their values, ``mean`` [R] the free-running mean at those rows; ``t0``, ``y0``
    the last warm-up row. None when the rows after the warm-up are too few to say."""
    ok = np.isfinite(truth) & np.isfinite(mean) & np.isfinite(times)
    times, truth, mean = times[ok], truth[ok], mean[ok]
    if len(times) < MIN_ROWS or not np.isfinite(t0) or not np.isfinite(y0) or times[-1] <= t0:
        return None
    grid_t = np.r_[t0, times]
    grid_m = np.r_[y0, mean]
    need = max(MIN_ROWS, math.ceil(MIN_OVERLAP * len(times)))
    stretched = t0 + np.outer(np.exp(GRID), times - t0)  # [G, R] each row's time on the mean path
    inside = stretched <= times[-1]  # the stretched mean still reaches it
    squared = np.where(inside, (np.interp(stretched, grid_t, grid_m) - truth) ** 2, 0.0)
    count = inside.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        errors = np.where(count >= need, squared.sum(axis=1) / np.maximum(count, 1), np.inf)
    if not np.isfinite(errors).any():
        return None
    best = errors.min()
    good = np.flatnonzero(errors <= best * (1 + TIE) + 1e-12)
    return float(GRID[good[np.argmin(np.abs(GRID[good]))]])


def fit(series: Series, mean: np.ndarray, cut: np.ndarray) -> list[float]:
    """The log factor of each specimen of ``series`` that can be fitted: ``mean`` [N, T] the
    free-running mean (any units, the truth's; NaN where not forecast), ``cut`` [N] each one's
    last warm-up row."""
    out = []
    for b in range(len(series.ids)):
        c, n = int(cut[b]), int(series.lengths[b])
        if c < 0 or c >= n - 1:
            continue
        after = slice(c + 1, n)
        lw = fit_one(
            series.time[b, after], series.y[b, after], mean[b, after], series.time[b, c], series.y[b, c]
        )
        if lw is not None:
            out.append(round(lw, 4))
    return out


def spread(bundle) -> tuple[float, float, int] | None:
    """(median, standard deviation x SPREAD_FACTOR, count) of the log factors over every
    member's validation and training specimens, or None when fewer than MIN_SPECIMENS were
    fitted (or the file predates them)."""
    return spread_of([m.summary for m in bundle.members])


def _values(summaries: list[dict]) -> list[float]:
    """Every member's log factors: its validation specimens' (``log_w``) and its training
    specimens' (``train_log_w``; files from before session 30 hold only the first)."""
    return [
        v
        for s in summaries
        for key in ("log_w", "train_log_w")
        for v in (s.get("eol_warp") or {}).get(key) or []
    ]


def spread_of(summaries: list[dict]) -> tuple[float, float, int] | None:
    """:func:`spread` from the members' training summaries."""
    values = _values(summaries)
    if len(values) < MIN_SPECIMENS:
        return None
    v = np.asarray(values, dtype=np.float64)
    return float(np.median(v)), SPREAD_FACTOR * float(np.std(v, ddof=1)), len(v)


def text(summaries: list[dict]) -> str:
    """What ``inspect`` and ``train`` say about the rate's spread ("" without one)."""
    found = spread_of(summaries)
    if found is None:
        return ""
    centre, sd, n = found
    z = NormalDist().inv_cdf(0.9)
    lo, hi = math.exp(centre - sd * z), math.exp(centre + sd * z)
    return (
        f"from {n} fits of validation and training specimens' pace against the mean path, a new "
        f"specimen may run {lo:.2f}-{hi:.2f} x as fast (p10-p90, log sd {sd:.2f}, {SPREAD_FACTOR:g} x "
        "theirs): where no path crosses by an end of the end-of-life interval, the mean run that much "
        "faster or slower sets it"
    )


def factor(centre: float, sd: float, quantiles, sooner: float = 1.0) -> float:
    """How far past the horizon (a multiple of the span from the cut-off to the horizon's end) the
    mean must run for the lowest quantile's crossing to be found within the horizon; ``sooner``:
    how many times a calibration's shift shortens that quantile's remaining life besides (below
    1, a lengthening, counts as 1)."""
    low = min(quantiles)
    z = -NormalDist().inv_cdf(low) if 0 < low < 0.5 else 0.0
    return float(min(MAX_FACTOR, math.exp(max(centre, 0.0) + sd * z) * max(sooner, 1.0)))


def last_rows(series: Series) -> np.ndarray:
    """[N] each specimen's last row (the last with a frame row: a backtest hides the rest)."""
    rows = series.row >= 0
    return rows.shape[1] - 1 - np.argmax(rows[:, ::-1], axis=1)


def _extra_rows(series: Series, last_obs: np.ndarray, stretch: float):
    """:func:`extend`'s arithmetic: each specimen's last row, its time, the step that continues
    it, and how many rows it adds."""
    idx = np.arange(len(series.ids))
    last = last_rows(series)
    t_end = series.time[idx, last]
    prev = series.time[idx, np.maximum(last - 1, 0)]
    step = np.where(t_end - prev > 0, t_end - prev, 1.0)
    span = t_end - series.time[idx, np.maximum(last_obs, 0)]
    need = np.ceil(np.maximum(stretch - 1.0, 0.0) * span / step)
    ks = np.clip(np.nan_to_num(need, nan=1.0), 1, MAX_EXTRA_ROWS).astype(np.int64)
    return last, t_end, step, ks


def extended_lengths(series: Series, last_obs: np.ndarray, stretch: float) -> np.ndarray:
    """[N] each specimen's length in :func:`extend`'s series, without making it."""
    last, _, _, ks = _extra_rows(series, last_obs, stretch)
    return last + 1 + ks


def extend(series: Series, last_obs: np.ndarray, stretch: float) -> Series:
    """``series`` with rows added after each specimen's last row (the last with a frame row: a
    backtest's hidden rows are not its rows), as many as it needs to run the mean to ``stretch`` x
    the span from its cut-off (``last_obs``) to its last row (at least one, at most
    MAX_EXTRA_ROWS; its own need, so that what it finds does not depend on the other specimens
    run beside it): the step continues the last spacing and the conditions are held at the last
    row's. The added rows point at the last row of the frame (``row``) so that the rollout counts
    them as rows; they are never reported."""
    N, T = series.y.shape
    last, t_end, step, ks = _extra_rows(series, last_obs, stretch)
    T2 = int((last + 1 + ks).max(initial=1))
    time = np.full((N, T2), np.nan)
    cond = np.full((N, T2, series.cond.shape[2]), np.nan)
    y = np.full((N, T2), np.nan)
    row = np.full((N, T2), -1, dtype=series.row.dtype)
    for b in range(N):
        n, k = int(last[b]) + 1, int(ks[b])
        time[b, :n], cond[b, :n], y[b, :n], row[b, :n] = (
            series.time[b, :n],
            series.cond[b, :n],
            series.y[b, :n],
            series.row[b, :n],
        )
        time[b, n : n + k] = t_end[b] + step[b] * np.arange(1, k + 1)
        cond[b, n : n + k] = series.cond[b, n - 1]
        row[b, n : n + k] = series.row[b, n - 1]
    return Series(
        ids=series.ids,
        lengths=last + 1 + ks,
        time=time,
        cond=cond,
        y=y,
        row=row,
        static_numeric=series.static_numeric,
        static_categorical=series.static_categorical,
    )


def crossing_quantiles(
    mean_crossing: np.ndarray, start: np.ndarray, horizon_end: np.ndarray, centre: float, sd: float, quantiles
) -> list[np.ndarray]:
    """Quantile q of the crossing time [N] under the rate's spread: the mean path's crossing
    ``mean_crossing`` (+inf / NaN: none within its run) moved in the remaining life after
    ``start`` by exp(-centre + sd z_q); +inf past ``horizon_end``."""
    out = []
    life = np.where(np.isfinite(mean_crossing), mean_crossing - start, np.inf)
    for q in quantiles:
        with np.errstate(invalid="ignore", over="ignore"):
            t = start + life * math.exp(-centre + sd * NormalDist().inv_cdf(q))
        out.append(np.where(np.isfinite(t) & (t <= horizon_end), t, np.inf))
    return out


def envelope(paths_q: list[np.ndarray], warp_q: list[np.ndarray], quantiles) -> list[np.ndarray]:
    """The interval's ends from both sources: below the median the paths' crossing where enough
    of them cross within the horizon, else the stretched mean's; above it the later of the two
    (+inf: later than the horizon); the median stays the paths'.

    Where the paths cross, their spread in value already spans the specimen's pace (battery's
    interval held 77 % of new specimens' crossings; taking the earlier of the two there made it
    89-94 %); where they do not, they say nothing about when, and the stretched mean does (crack:
    36 % -> 81 %). benchmarks/results/notes.md, session 29."""
    out = []
    for q, p, w in zip(quantiles, paths_q, warp_q, strict=True):
        out.append(np.where(np.isfinite(p), p, w) if q < 0.5 else np.maximum(p, w) if q > 0.5 else p)
    return out
