"""Scores and baselines for backtests: pure functions on numpy arrays and pandas frames, no torch.

A backtest frame has one row per forecast point: ``specimen``, ``origin`` (which cut-off), ``time``,
``step`` (1 = first row after the cut-off), ``y_true`` (NaN = unmeasured, skipped everywhere),
``y_pred`` (the mean path), optional quantile columns ``q0.1``, ``q0.9``, ... and an optional
``model`` column. A history frame gives each (specimen, origin)'s warm-up: ``specimen``, ``origin``,
``time``, ``y``. :func:`score_backtest` turns both into the evaluation report.

Every score skips non-finite values; NaN becomes ``None`` only at the JSON boundary
(:func:`to_jsonable`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

KEYS = ["specimen", "origin"]  # one forecast = one (specimen, cut-off) pair
_NAN = float("nan")


def to_jsonable(obj):
    """Recursively turn numpy scalars/arrays into Python ones and NaN/inf into None."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, pd.DataFrame):
        return to_jsonable(obj.to_dict(orient="records"))
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if obj is None or obj is pd.NA or obj is pd.NaT:
        return None
    return obj


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if x.size else _NAN


def _finite(*arrays) -> tuple[np.ndarray, ...]:
    """The arrays as float64, restricted to positions where all of them are finite."""
    arrs = [np.asarray(a, dtype=np.float64).ravel() for a in arrays]
    ok = np.logical_and.reduce([np.isfinite(a) for a in arrs])
    return tuple(a[ok] for a in arrs)


# -- point and probabilistic scores ----------------------------------------------------------------
def point_scores(y_true, y_pred) -> dict:
    """MAE, RMSE, bias (mean pred - true), MAPE and sMAPE (both in %) over the finite pairs.

    Parameters: ``y_true``, ``y_pred`` [N]. MAPE skips rows with ``|y_true| < 1e-9``; sMAPE is
    ``100 * mean(2|e| / (|y| + |y_hat|))`` (0..200 %), a pair of exact zeros counting as 0.
    """
    t, p = _finite(y_true, y_pred)
    e = p - t
    nz = np.abs(t) >= 1e-9
    denom = np.abs(t) + np.abs(p)
    with np.errstate(invalid="ignore", divide="ignore"):
        sm = np.where(denom > 0, 2.0 * np.abs(e) / denom, 0.0)
    return {
        "n": int(e.size),
        "mae": _mean(np.abs(e)),
        "rmse": math.sqrt(_mean(e**2)) if e.size else _NAN,
        "bias": _mean(e),
        "mape": 100.0 * _mean(np.abs(e[nz]) / np.abs(t[nz])),
        "smape": 100.0 * _mean(sm),
    }


def mase_scale(history_y) -> float:
    """In-sample error of naive persistence on a warm-up: mean |one-step change|.

    ``history_y`` [T] in time order; NaN rows are dropped first, so a change spans a gap. Fewer than
    two observations give NaN. MASE of a forecast = its MAE / this scale (per series); a flat
    warm-up has scale 0 and its MASE is undefined, so :func:`score_backtest` leaves it out.
    """
    (y,) = _finite(history_y)
    return _mean(np.abs(np.diff(y))) if y.size >= 2 else _NAN


def interval_scores(y_true, lower, upper, level: float) -> dict:
    """Coverage, mean width and interval (Winkler) score of central intervals at ``level`` (0.8),
    and the share of rows under the interval (``below``) and over it (``above``): a calibrated
    interval misses about as often on each side, (1 - level) / 2 of the rows.

    Winkler score per row: ``width + 2/alpha * (lower - y)`` if y < lower,
    ``width + 2/alpha * (y - upper)`` if y > upper, with ``alpha = 1 - level``; lower is better.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    y, lo, hi = _finite(y_true, lower, upper)
    alpha = 1.0 - level
    width = hi - lo
    score = width + 2.0 / alpha * (np.maximum(lo - y, 0.0) + np.maximum(y - hi, 0.0))
    return {
        "n": int(y.size),
        "coverage": _mean(((y >= lo) & (y <= hi)).astype(float)),
        "below": _mean((y < lo).astype(float)),
        "above": _mean((y > hi).astype(float)),
        "width": _mean(width),
        "interval_score": _mean(score),
    }


def quantile_calibration(frame: pd.DataFrame) -> pd.DataFrame:
    """Per quantile column ``q<level>`` of a backtest frame (one model's rows): ``level``,
    ``observed`` (share of finite true values at or below the forecast quantile; a calibrated
    forecast has observed = level) and ``n`` (points scored)."""
    y = frame["y_true"].to_numpy(np.float64)
    rows = []
    for level, col in sorted(_quantile_columns(frame).items()):
        yy, q = _finite(y, frame[col])
        rows.append({"level": level, "observed": _mean((yy <= q).astype(float)), "n": yy.size})
    return pd.DataFrame(rows, columns=["level", "observed", "n"])


LOG_SPAN = 100  # leads spanning more than this ratio get log-spaced bins


def horizon_edges(lead, *, most: int = 30) -> np.ndarray:
    """Edges of bins of the time after the cut-off, up to the longest ``lead``: at most ``most``
    equal bins, each a whole number of the shortest lead (about one step) wide and the first
    starting at half of it; or, when the leads
    span more than ``LOG_SPAN`` times the shortest (specimens on very different time scales,
    whose short horizons would all fall in the first equal bin), ``most`` log-spaced bins from
    the shortest lead (the first edge is then above 0)."""
    lead = np.asarray(lead, dtype=np.float64)
    lead = lead[np.isfinite(lead) & (lead > 0)]
    if not lead.size:
        return np.array([0.0, 1.0])
    longest, shortest = float(lead.max()), float(lead.min())
    if longest > LOG_SPAN * shortest:
        return np.geomspace(shortest * (1 - 1e-9), longest, most + 1)
    # bins of a whole number of the shortest lead (about one step), from half a step: on a regular
    # grid each lead, k steps give or take float noise (dates converted to days), lies in the
    # middle of its bin, not on an edge that rounding would put it either side of
    m = max(1, int(np.ceil(longest / most / shortest - 1e-9)))
    n = max(1, int(np.ceil((longest - 0.5 * shortest) / (m * shortest) - 1e-9)))
    return 0.5 * shortest + m * shortest * np.arange(n + 1, dtype=np.float64)


def by_horizon(
    frame: pd.DataFrame, edges: np.ndarray, *, band: tuple[float, float] = (0.1, 0.9)
) -> pd.DataFrame:
    """Scores per model and bin of the time after the cut-off (column ``lead``, binned by
    ``edges``): ``model``, ``bin``, ``time`` (the bin's middle, geometric for log bins), ``rmse``, ``n`` (points),
    ``forecasts`` (distinct specimen and cut-off pairs) and ``coverage`` (share of true values
    inside the ``band`` quantiles; NaN for a model without them). Every bin appears for every
    model, empty ones with n = 0."""
    qcols = _quantile_columns(frame)
    lo, hi = _match(qcols, band[0]), _match(qcols, band[1])
    y, p = frame["y_true"].to_numpy(np.float64), frame["y_pred"].to_numpy(np.float64)
    d = frame.loc[np.isfinite(y) & np.isfinite(p)]
    k = len(edges) - 1
    work = pd.DataFrame(
        {
            "model": d["model"].to_numpy() if "model" in d.columns else "model",
            "bin": np.clip(np.searchsorted(edges, d["lead"].to_numpy(np.float64)) - 1, 0, k - 1),
            "e2": (d["y_pred"] - d["y_true"]).to_numpy(np.float64) ** 2,
            "forecast": pd.factorize(pd.MultiIndex.from_frame(d[KEYS]))[0],
            "inside": np.nan,
        }
    )
    if lo is not None and hi is not None:
        yy, a, b = (d[c].to_numpy(np.float64) for c in ("y_true", lo, hi))
        known = np.isfinite(a) & np.isfinite(b)
        work["inside"] = np.where(known, ((yy >= a) & (yy <= b)).astype(float), np.nan)
    out = (
        work.groupby(["model", "bin"], sort=False)
        .agg(
            mse=("e2", "mean"),
            n=("e2", "size"),
            forecasts=("forecast", "nunique"),
            coverage=("inside", "mean"),
        )
        .reindex(
            pd.MultiIndex.from_product([list(dict.fromkeys(work["model"])), range(k)], names=["model", "bin"])
        )
        .reset_index()
    )
    out["rmse"] = np.sqrt(out.pop("mse"))
    out[["n", "forecasts"]] = out[["n", "forecasts"]].fillna(0).astype(int)
    widths = np.diff(edges)
    log_bins = len(widths) > 1 and not np.allclose(widths, widths[0])  # horizon_edges' geomspace
    middle = np.sqrt(edges[:-1] * edges[1:]) if log_bins else (edges[:-1] + edges[1:]) / 2
    out["time"] = middle[out["bin"].to_numpy()]
    return out[["model", "bin", "time", "rmse", "n", "forecasts", "coverage"]]


def pinball_loss(y_true, q_pred, q: float) -> float:
    """Mean quantile (pinball) loss of the q-quantile forecast; for q = 0.5 it is MAE / 2."""
    y, p = _finite(y_true, q_pred)
    d = y - p
    return _mean(np.maximum(q * d, (q - 1.0) * d))


def crps_from_quantiles(y_true, quantile_frame, qs: Sequence[float]) -> float:
    """Approximate CRPS as 2 x the mean pinball loss over the quantile set.

    CRPS = 2 * integral over q in (0, 1) of the pinball loss; averaging over a handful of levels
    is a coarse Riemann sum of that integral. It is an approximation: fine with many evenly spread
    levels, biased with three. ``quantile_frame`` [N, Q] holds the forecasts, columns in ``qs``
    order. Rows with any non-finite value are skipped.
    """
    y = np.asarray(y_true, dtype=np.float64).ravel()
    Q = np.asarray(quantile_frame, dtype=np.float64).reshape(len(y), len(qs))  # [N, Q]
    ok = np.isfinite(y) & np.isfinite(Q).all(axis=1)
    if not ok.any():
        return _NAN
    d = y[ok, None] - Q[ok]  # [n, Q]
    q = np.asarray(qs, dtype=np.float64)[None, :]
    return float(2.0 * np.maximum(q * d, (q - 1.0) * d).mean())


# -- end of life: first crossing of a threshold ----------------------------------------------------
def _check_direction(direction: str) -> None:
    if direction not in ("below", "above"):
        raise ValueError(f"direction must be 'below' or 'above', got {direction!r}")


def _past(values, threshold: float, direction: str):
    """At or beyond the threshold (the protocol counts touching it as crossing)."""
    with np.errstate(invalid="ignore"):
        return values <= threshold if direction == "below" else values >= threshold


def first_crossing(times, values, threshold: float, direction: str = "below") -> float:
    """Time at which ``values`` first reach ``threshold``, linearly interpolated.

    ``times``, ``values`` [T]; rows where either is NaN are skipped, so the interpolation spans a
    gap. If the first valid value is already past the threshold, its time is returned; NaN if the
    threshold is never reached. This is the readable reference for :func:`first_crossing_matrix`.
    """
    _check_direction(direction)
    prev = None
    for t, v in zip(*_finite(times, values), strict=True):
        if _past(v, threshold, direction):
            if prev is None:
                return float(t)
            t0, v0 = prev
            return float(t0 + (threshold - v0) / (v - v0) * (t - t0))
        prev = (t, v)
    return _NAN


def first_crossing_matrix(times, values, threshold: float, direction: str = "below") -> np.ndarray:
    """:func:`first_crossing` for many paths at once, without a Python loop.

    Parameters
    ----------
    times : [N, T] (or [T]); NaN-padded entries allowed.
    values : [N, T] or [N, S, T] (S Monte Carlo samples share their specimen's times).

    Returns
    -------
    [N] or [N, S] crossing times, NaN where a path never reaches the threshold.
    """
    _check_direction(direction)
    t = np.asarray(times, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == t.ndim + 1:
        t = t[..., None, :]  # [N, 1, T]: samples share the time grid
    t, v = np.broadcast_arrays(t, v)
    T = v.shape[-1]
    if T == 0:
        return np.full(v.shape[:-1], np.nan)
    valid = np.isfinite(t) & np.isfinite(v)
    hit = valid & _past(v, threshold, direction)
    first = hit.argmax(axis=-1)[..., None]  # [..., 1] first row at/past the threshold
    # Last valid row strictly before `first`: a running max of valid row numbers, read at first - 1.
    idx_dtype = np.int32 if T < 2**31 else np.int64
    last_valid = np.maximum.accumulate(np.where(valid, np.arange(T, dtype=idx_dtype), -1), axis=-1)
    prev = np.take_along_axis(last_valid, np.maximum(first - 1, 0), axis=-1)
    prev = np.where(first > 0, prev, -1)
    t1, v1 = np.take_along_axis(t, first, -1), np.take_along_axis(v, first, -1)
    p0 = np.maximum(prev, 0)
    t0, v0 = np.take_along_axis(t, p0, -1), np.take_along_axis(v, p0, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        inter = t0 + (threshold - v0) / (v1 - v0) * (t1 - t0)
    out = np.where(prev >= 0, inter, t1)[..., 0]
    return np.where(hit.any(axis=-1), out, np.nan)


def eol_scores(pred_eol, true_eol, censor_time) -> dict:
    """End-of-life error over specimens, counting censored ones instead of dropping them.

    ``pred_eol``, ``true_eol`` [N] crossing times (NaN = no crossing within the test);
    ``censor_time`` scalar or [N], the end of each specimen's test.

    Returns counts (both_cross, only_pred, only_true, neither); ``mae`` and ``bias`` (pred - true)
    over specimens where both cross; and ``mae_lower_bound`` over all specimens: where one side
    does not cross, its EOL is only known to be after ``censor_time``, so the error is at least
    ``censor_time - (the other side's EOL)`` (0 if negative, and 0 where neither crosses).
    It is a lower bound on the error, not an estimate of it.
    """
    p = np.asarray(pred_eol, dtype=np.float64).ravel()
    t = np.asarray(true_eol, dtype=np.float64).ravel()
    c = np.broadcast_to(np.asarray(censor_time, dtype=np.float64), p.shape)
    fp, ft = np.isfinite(p), np.isfinite(t)
    both = fp & ft
    with np.errstate(invalid="ignore"):
        bound = np.where(both, np.abs(p - t), 0.0)
        bound = np.where(fp & ~ft, np.maximum(c - p, 0.0), bound)
        bound = np.where(~fp & ft, np.maximum(c - t, 0.0), bound)
    return {
        "n": int(p.size),
        "both_cross": int(both.sum()),
        "only_pred": int((fp & ~ft).sum()),
        "only_true": int((~fp & ft).sum()),
        "neither": int((~fp & ~ft).sum()),
        "mae": _mean(np.abs(p - t)[both]),
        "bias": _mean((p - t)[both]),
        "mae_lower_bound": _mean(bound[np.isfinite(bound)]),
    }


# -- prognostics metrics (Saxena, Celaya, Saha, Saha & Goebel 2010) --------------------------------
def alpha_lambda(
    t_origins, rul_pred, rul_true, alpha: float = 0.2, lambdas: Sequence[float] = (0.25, 0.5, 0.75)
) -> dict[float, float]:
    """alpha-lambda accuracy of one specimen's predictions made at several cut-offs.

    ``t_origins`` [K] prediction times, ``rul_pred`` / ``rul_true`` [K] remaining useful life there.
    Only origins before the true end of life (``rul_true > 0``) take part. For each lambda,
    ``t_lambda = t_start + lambda * (t_eol - t_start)`` with t_start the first such origin and
    ``t_eol = t + rul_true``; the prediction of the latest origin at or before t_lambda is judged.
    Returns {lambda: 1.0 if ``(1-alpha) r* <= r <= (1+alpha) r*`` else 0.0}; a NaN prediction (no
    predicted crossing) counts as outside; NaN where there is no usable origin.
    """
    t, rp, rt = (np.asarray(a, dtype=np.float64).ravel() for a in (t_origins, rul_pred, rul_true))
    use = np.isfinite(t) & np.isfinite(rt) & (rt > 0)
    t, rp, rt = t[use], rp[use], rt[use]
    if t.size == 0:
        return {float(lam): _NAN for lam in lambdas}
    order = np.argsort(t, kind="stable")
    t, rp, rt = t[order], rp[order], rt[order]
    t_eol = float(np.median(t + rt))  # the same for every origin up to rounding
    out = {}
    for lam in lambdas:
        t_lam = t[0] + lam * (t_eol - t[0])
        k = int(np.searchsorted(t, t_lam, side="right")) - 1  # latest origin at or before t_lam
        within = (1 - alpha) * rt[k] <= rp[k] <= (1 + alpha) * rt[k]  # False when rp is NaN
        out[float(lam)] = float(within)
    return out


def prognostic_horizon(
    t_origins, rul_pred, rul_true, eol_true: float, alpha: float = 0.2, *, life_start: float = 0.0
) -> float:
    """Prognostic horizon: t_EOL minus the first origin from which every later prediction stays
    within the alpha-bounds.

    Variant (the paper's PH): the bounds are absolute, ``rul_true +- alpha * t_life`` with
    ``t_life = eol_true - life_start``: a fixed width, not shrinking with RUL. ``life_start`` (the
    specimen's first time) keeps that width meaningful when times are not counted from 0.
    Only origins before ``eol_true`` take part; a NaN prediction is outside. NaN if never.
    """
    t, rp, rt = (np.asarray(a, dtype=np.float64).ravel() for a in (t_origins, rul_pred, rul_true))
    use = np.isfinite(t) & np.isfinite(rt) & (t < eol_true)
    t, rp, rt = t[use], rp[use], rt[use]
    order = np.argsort(t, kind="stable")
    t, rp, rt = t[order], rp[order], rt[order]
    with np.errstate(invalid="ignore"):
        ok = np.abs(rp - rt) <= alpha * (eol_true - life_start)
    stays = np.logical_and.accumulate(ok[::-1])[::-1]  # ok from here to the last origin
    if not stays.any():
        return _NAN
    return float(eol_true - t[stays.argmax()])


# -- baselines: (hist_t, hist_y, future_t) -> future_y ---------------------------------------------
def _observed(hist_t, hist_y) -> tuple[np.ndarray, np.ndarray]:
    t, y = _finite(hist_t, hist_y)
    order = np.argsort(t, kind="stable")
    return t[order], y[order]


def baseline_persistence(hist_t, hist_y, future_t) -> np.ndarray:
    """Hold the last observed warm-up value (NaN if nothing was observed)."""
    _, y = _observed(hist_t, hist_y)
    return np.full(np.shape(future_t), y[-1] if y.size else np.nan, dtype=np.float64)


def _line(dt: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    """Least-squares (intercept at dt = 0, slope); None when fewer than 2 distinct times."""
    n = dt.size
    sxx = n * (dt**2).sum() - dt.sum() ** 2
    if n < 2 or not sxx > 1e-12 * n * (dt**2).sum():
        return None
    slope = (n * (dt * y).sum() - dt.sum() * y.sum()) / sxx
    return float((y.sum() - slope * dt.sum()) / n), float(slope)


LINEAR_LAST = 10  # warm-up rows the linear baseline fits: the recent trend, not the whole history


def baseline_linear(hist_t, hist_y, future_t, last: int = LINEAR_LAST) -> np.ndarray:
    """Least-squares line through the last ``last`` observed warm-up rows; persistence if < 2."""
    t, y = _observed(hist_t, hist_y)
    t, y = t[-last:], y[-last:]
    fit = _line(t - t[-1], y) if t.size else None  # times relative to the cut-off: well conditioned
    if fit is None:
        return baseline_persistence(t, y, future_t)
    return fit[0] + fit[1] * (np.asarray(future_t, dtype=np.float64) - t[-1])


# Decay rate x warm-up span (e-folds over the warm-up). The low end is nearly a straight line,
# which is where straight or accelerating warm-ups land; the high end is a jump at the start.
_RATES = np.geomspace(1e-4, 1e2, 300)


def _exp_fit(x: np.ndarray, y: np.ndarray, k: np.ndarray):
    """Per rate k [R]: least-squares (c, a) of y = c + a exp(-k x) and the SSE, each [R]."""
    E = np.exp(-k[:, None] * x[None, :])  # [R, n]
    em, ym = E.mean(axis=1), y.mean()
    Ec = E - em[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        a = (Ec * (y - ym)).sum(axis=1) / (Ec**2).sum(axis=1)
    c = ym - a * em
    sse = ((y[None, :] - c[:, None] - a[:, None] * E) ** 2).sum(axis=1)
    return c, a, sse


def _exponential_predict(t: np.ndarray, y: np.ndarray, ft: np.ndarray) -> np.ndarray | None:
    span = t[-1] - t[0] if t.size else 0.0
    if t.size >= 3 and span > 0:
        # y = c + a exp(-b (t - t0)), b > 0: linear in (c, a) for a fixed rate, so search the
        # rate on a log grid and refine it by golden section (variable projection). Decay only,
        # so the extrapolation stays between the last fitted value and the asymptote c.
        x = (t - t[0]) / span
        c, a, sse = _exp_fit(x, y, _RATES)
        if np.isfinite(sse).any():
            i = int(np.nanargmin(sse))
            lo, hi = math.log(_RATES[max(i - 1, 0)]), math.log(_RATES[min(i + 1, len(_RATES) - 1)])
            g = (math.sqrt(5) - 1) / 2
            for _ in range(40):
                m1, m2 = hi - g * (hi - lo), lo + g * (hi - lo)
                s = _exp_fit(x, y, np.exp(np.array([m1, m2])))[2]
                lo, hi = (lo, m2) if s[0] <= s[1] else (m1, hi)
            k = np.array([math.exp((lo + hi) / 2)])
            c1, a1, s1 = _exp_fit(x, y, k)
            if s1[0] <= sse[i] or not np.isfinite(sse[i]):
                c, a, kk = c1[0], a1[0], k[0]
            else:
                c, a, kk = c[i], a[i], _RATES[i]
            return c + a * np.exp(-kk * (ft - t[0]) / span)
    if t.size >= 2 and span > 0 and (y > 0).all():
        # Ill-posed for three parameters: y = a exp(-b (t - t0)), a line through log y.
        fit = _line(t - t[0], np.log(y))
        if fit is not None:
            return np.exp(fit[0] + fit[1] * (ft - t[0]))
    return None


def baseline_exponential(hist_t, hist_y, future_t) -> np.ndarray:
    """Exponential-decay fit ``y = c + a exp(-b (t - t0))`` over all observed warm-up rows.

    Falls back to ``y = a exp(-b (t - t0))`` when there are too few rows for three parameters,
    and to :func:`baseline_linear` when no fit is possible or it predicts a non-finite value.
    Never raises.
    """
    ft = np.asarray(future_t, dtype=np.float64)
    try:
        t, y = _observed(hist_t, hist_y)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            pred = _exponential_predict(t, y, ft)
    except Exception:  # a baseline must never stop an evaluation; linear is the fallback
        pred = None
    if pred is None or not np.isfinite(pred[np.isfinite(ft)]).all():
        return baseline_linear(hist_t, hist_y, future_t)
    return pred


BASELINES: dict[str, Callable[..., np.ndarray]] = {
    "persistence": baseline_persistence,
    "linear": baseline_linear,
    "exponential": baseline_exponential,
}


def baseline_frame(history: pd.DataFrame, future: pd.DataFrame, name: str) -> pd.DataFrame:
    """Forecast ``future`` rows (specimen, origin, time, step, y_true) with baseline ``name``.

    Returns a copy of ``future`` (same index and order) with ``y_pred`` and ``model = name``.
    Persistence and linear are closed forms over grouped sums (no Python loop); the exponential fit
    loops over (specimen, origin) groups, ~1 ms each (a 300-rate grid plus 40 golden-section steps).
    """
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    h = history.loc[np.isfinite(history["time"]) & np.isfinite(history["y"]), KEYS + ["time", "y"]]
    h = h.sort_values(KEYS + ["time"], kind="stable")
    out = future.copy()
    ft = out["time"].to_numpy(dtype=np.float64)
    if name in ("persistence", "linear"):
        linear = name == "linear"
        tail = h.groupby(KEYS, sort=False).tail(LINEAR_LAST) if linear else h
        g = tail.groupby(KEYS, sort=False)
        t_last = g["time"].transform("last")
        dt = tail["time"] - t_last
        s = pd.DataFrame({"dt": dt, "dt2": dt**2, "y": tail["y"], "dty": dt * tail["y"]})
        agg = s.groupby([tail[k] for k in KEYS], sort=False).sum()
        agg["n"] = g.size()
        agg["t_last"], agg["y_last"] = g["time"].last(), g["y"].last()
        sxx = agg["n"] * agg["dt2"] - agg["dt"] ** 2
        line = linear & (agg["n"] >= 2) & (sxx > 1e-12 * agg["n"] * agg["dt2"])  # as _line
        slope = ((agg["n"] * agg["dty"] - agg["dt"] * agg["y"]) / sxx).where(line, 0.0)
        agg["b"] = slope
        agg["a"] = ((agg["y"] - slope * agg["dt"]) / agg["n"]).where(line, agg["y_last"])
        p = out[KEYS].merge(agg[["a", "b", "t_last"]].reset_index(), on=KEYS, how="left")
        out["y_pred"] = (p["a"] + p["b"] * (ft - p["t_last"])).to_numpy()
    else:
        out["y_pred"] = per_group(h, out, BASELINES[name])
    out["model"] = name
    return out


def per_group(history: pd.DataFrame, future: pd.DataFrame, fn) -> np.ndarray:
    """[len(future)] ``fn(hist_t, hist_y, future_t)`` of each (specimen, origin)'s rows of
    ``history`` (finite time and y, in time order) for its rows of ``future``; NaN without history."""
    pred = np.full(len(future), np.nan)
    hist_rows = history.groupby(KEYS, sort=False).indices
    ht, hy = history["time"].to_numpy(np.float64), history["y"].to_numpy(np.float64)
    ft = future["time"].to_numpy(np.float64)
    for key, rows in future.groupby(KEYS, sort=False).indices.items():
        hr = hist_rows.get(key)
        if hr is not None:
            pred[rows] = fn(ht[hr], hy[hr], ft[rows])
    return pred


def warmup_baseline_errors(
    time: np.ndarray, y: np.ndarray, lengths: np.ndarray, context: int | np.ndarray
) -> dict:
    """{baseline: errors (prediction - truth)} of every baseline on padded specimens ([N, T] raw
    time and durability, NaN = unmeasured) forecast from their first ``context`` rows (one count
    for all, or [N] one each), over the measured rows after them: the rows training's
    free-running validation scores."""
    N, T = y.shape
    pos = np.arange(T)[None, :]  # [1, T]
    inside = pos < np.asarray(lengths)[:, None]  # [N, T]
    context = np.broadcast_to(np.asarray(context), (N,))[:, None]  # [N, 1]
    specimen = np.broadcast_to(np.arange(N)[:, None], (N, T))

    def rows(mask: np.ndarray, column: str) -> pd.DataFrame:
        return pd.DataFrame({"specimen": specimen[mask], "origin": 0, "time": time[mask], column: y[mask]})

    history = rows(inside & (pos < context), "y")
    future = rows(inside & (pos >= context) & np.isfinite(y), "y_true")
    out = {}
    for name in BASELINES:
        err = (baseline_frame(history, future, name)["y_pred"] - future["y_true"]).to_numpy()
        out[name] = err[np.isfinite(err)]
    return out


# -- the backtest report ---------------------------------------------------------------------------
def _quantile_columns(frame: pd.DataFrame) -> dict[float, str]:
    """{level: column} for the columns named q<level>, 0 < level < 1."""
    found = {}
    for col in frame.columns:
        if isinstance(col, str) and col.startswith("q"):
            try:
                q = float(col[1:])
            except ValueError:
                continue
            if 0.0 < q < 1.0:
                found[q] = col
    return found


def _grouped_scores(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """n, mae, rmse, bias per group over finite (y_true, y_pred) rows; groups with none vanish."""
    ok = np.isfinite(df["y_true"]) & np.isfinite(df["y_pred"])
    d = df.loc[ok]
    e = d["y_pred"] - d["y_true"]
    s = pd.DataFrame({"abs": e.abs(), "sq": e**2, "err": e})
    agg = s.groupby([d[k] for k in by]).agg(
        n=("abs", "size"), mae=("abs", "mean"), mse=("sq", "mean"), bias=("err", "mean")
    )
    agg["rmse"] = np.sqrt(agg.pop("mse"))
    return agg


def _warmup_summary(history: pd.DataFrame) -> pd.DataFrame:
    """Per (specimen, origin): MASE scale, cut-off (last observed time and value), first time."""
    h = history.loc[np.isfinite(history["time"]) & np.isfinite(history["y"])]
    h = h.sort_values(KEYS + ["time"], kind="stable")
    g = h.groupby(KEYS)
    change = g["y"].diff().abs()
    return pd.DataFrame(
        {
            "scale": change.groupby([h[k] for k in KEYS]).mean(),
            "t_cut": g["time"].last(),
            "y_cut": g["y"].last(),
            "t_first": g["time"].first(),
        }
    )


def _eol_per_origin(rows: pd.DataFrame, warm: pd.DataFrame, threshold: float, direction: str) -> pd.DataFrame:
    """First crossing of y_pred and y_true per (specimen, origin).

    Both paths start from the last warm-up measurement, so a crossing between the cut-off and the
    first forecast row is interpolated the same way as in ``forecast --eol-out``. Where that
    measurement is already past the threshold the forecast is ``already_past`` and not scored.
    The truth is censored at the last measured forecast row (NaN when none was measured: such a
    forecast is counted as ``unmeasured`` and not scored either).
    """
    rows = rows.sort_values(KEYS + ["time"], kind="stable")
    grp = rows.groupby(KEYS, sort=False)
    g = grp.ngroup().to_numpy()
    pos = grp.cumcount().to_numpy() + 1  # column 0 holds the warm-up's last point
    keys = grp.size().index
    G, T = len(keys), int(pos.max(initial=0)) + 1
    start = warm.reindex(keys)
    times, pred, true = (np.full((G, T), np.nan) for _ in range(3))
    times[:, 0] = start["t_cut"].to_numpy()
    pred[:, 0] = true[:, 0] = start["y_cut"].to_numpy()
    times[g, pos] = rows["time"].to_numpy(np.float64)
    pred[g, pos] = rows["y_pred"].to_numpy(np.float64)
    true[g, pos] = rows["y_true"].to_numpy(np.float64)
    measured = np.where(np.isfinite(true[:, 1:]), times[:, 1:], np.nan)
    # fmax ignores NaN without a warning; a forecast with no measured row gets NaN.
    censor = np.fmax.reduce(measured, axis=1) if T > 1 else np.full(G, np.nan)
    horizon = np.fmax.reduce(times[:, 1:], axis=1) if T > 1 else np.full(G, np.nan)
    eol_pred = first_crossing_matrix(times, pred, threshold, direction)
    # a model's own: its mean's crossing on the steps it ran, cut ones too (+inf: none within the
    # horizon); a baseline's rows have none
    given = grp["eol_time"].first().reindex(keys).to_numpy(np.float64) if "eol_time" in rows else None
    if given is not None and not np.isnan(given).all():
        eol_pred = np.where(np.isinf(given), np.nan, given)
    out = pd.DataFrame(
        {
            "t_cut": times[:, 0],
            "t_first": start["t_first"].to_numpy(),
            "eol_pred": eol_pred,
            "eol_true": first_crossing_matrix(times, true, threshold, direction),
            "censor": censor,
            "horizon": horizon,
            "already_past": _past(true[:, 0], threshold, direction),
        },
        index=keys,
    )
    if {"eol_p10", "eol_p90"} <= set(rows.columns) and rows["eol_p90"].notna().any():
        cols = [c for c in ("eol_p10", "eol_p50", "eol_p90") if c in rows.columns]
        bounds = grp[cols].first()  # one interval per forecast, on each of its rows
        out[cols] = bounds.reindex(keys).to_numpy()
    return out


def eol_per_origin(frame: pd.DataFrame, history: pd.DataFrame, threshold: float, direction: str = "below"):
    """The model's scored forecasts of a backtest (evaluation.backtest_frames' frame and history),
    one row per (specimen, origin): cut-off ``t_cut``, predicted and true crossing, ``censor``,
    the last forecast row's time ``horizon`` and the interval over the paths (``eol_p10``,
    ``eol_p50``, ``eol_p90``; +inf: later than the horizon). Forecasts already past the threshold or with no measured row are left out, as in
    evaluate's end-of-life scores."""
    _check_direction(direction)
    rows = frame.loc[frame["model"] == "model"] if "model" in frame.columns else frame
    eol = _eol_per_origin(rows, _warmup_summary(history), threshold, direction)
    return eol.loc[~eol["already_past"] & eol["censor"].notna()]


def _prognostics(eol: pd.DataFrame, alpha: float, lambdas: Sequence[float]) -> dict:
    """Saxena et al. metrics over specimens with a true end of life and cut-offs before it."""
    hits = {float(lam): [] for lam in lambdas}
    ph, ph_rel = [], []
    live = eol.loc[~eol["already_past"]]
    for _, e in live.groupby(level="specimen", sort=False):
        t_eol = e["eol_true"].min()  # the first crossing any cut-off's test saw
        if not np.isfinite(t_eol):
            continue
        t = e["t_cut"].to_numpy()
        rul_true, rul_pred = t_eol - t, e["eol_pred"].to_numpy() - t
        for lam, v in alpha_lambda(t, rul_pred, rul_true, alpha, lambdas).items():
            hits[lam].append(v)
        life_start = e["t_first"].min()
        h = prognostic_horizon(t, rul_pred, rul_true, t_eol, alpha, life_start=life_start)
        ph.append(h)
        ph_rel.append(h / (t_eol - life_start) if t_eol > life_start else _NAN)
    ph, ph_rel = np.asarray(ph, dtype=np.float64), np.asarray(ph_rel, dtype=np.float64)
    return {
        "alpha": alpha,
        "n_specimens": int(ph.size),
        "alpha_lambda": {f"{lam:g}": _mean(np.asarray(v)[np.isfinite(v)]) for lam, v in hits.items()},
        "prognostic_horizon": _mean(ph[np.isfinite(ph)]),
        "prognostic_horizon_relative": _mean(ph_rel[np.isfinite(ph_rel)]),
        "ph_found": int(np.isfinite(ph).sum()),
    }


def _probabilistic_scores(rows: pd.DataFrame, qcols: dict[float, str], wanted: list[float]) -> dict:
    """Coverage / width / interval score per central interval, pinball per level, CRPS."""
    y = rows["y_true"].to_numpy(np.float64)
    qv = {q: rows[c].to_numpy(np.float64) for q in wanted if (c := _match(qcols, q))}
    present = [q for q in wanted if q in qv and np.isfinite(qv[q]).any()]
    if not present:
        return {}
    out = {"coverage": {}, "below": {}, "above": {}, "interval_width": {}, "interval_score": {}}
    for q in present:
        upper = next((p for p in present if abs(p - (1 - q)) < 1e-9), None)
        if q < 0.5 and upper is not None:
            key = f"{100 * (1 - 2 * q):g}"  # the pair (0.1, 0.9) is the "80" % interval
            s = interval_scores(y, qv[q], qv[upper], 1 - 2 * q)
            out["coverage"][key], out["interval_width"][key] = s["coverage"], s["width"]
            out["below"][key], out["above"][key] = s["below"], s["above"]
            out["interval_score"][key] = s["interval_score"]
    out["pinball"] = {f"{q:g}": pinball_loss(y, qv[q], q) for q in present}
    out["crps"] = crps_from_quantiles(y, np.column_stack([qv[q] for q in present]), present)
    return out


def score_backtest(
    frame: pd.DataFrame,
    history: pd.DataFrame,
    *,
    quantiles: list[float] | None = None,
    threshold: float | None = None,
    direction: str = "below",
    time_unit: str = "time",
    alpha: float = 0.2,
    lambdas: Sequence[float] = (0.25, 0.5, 0.75),
) -> tuple[dict, pd.DataFrame]:
    """Score every model of a backtest frame; see the module docstring for both frames.

    ``quantiles``: the levels to score (their ``q<level>`` columns); None = every such column.
    A model whose quantile columns are all NaN (the baselines) gets no probabilistic scores.
    MASE: per (specimen, origin) forecast, MAE / :func:`mase_scale` of its warm-up; a model's
    MASE is the mean over forecasts with a finite, non-zero scale, a specimen's the mean over its
    origins.
    End of life (with ``threshold``): see ``_eol_per_origin``; per-series EOL columns come from the
    specimen's earliest scored cut-off. Prognostics need more than one cut-off per specimen.

    Returns (report, per_series): report = {"models": {name: scores}, "skill": {baseline:
    1 - rmse_model / rmse_baseline}, "n_specimens", "n_origins", "threshold", "direction",
    "time_unit"}; per_series = one row per (model, specimen).
    """
    _check_direction(direction)
    if "model" not in frame.columns:
        frame = frame.assign(model="model")
    warm = _warmup_summary(history)
    qcols = _quantile_columns(frame)
    wanted = sorted(qcols) if quantiles is None else sorted(quantiles)
    n_origins = int(frame["origin"].nunique())
    models: dict[str, dict] = {}
    per_series = []
    names = list(dict.fromkeys(frame["model"]))
    names.sort(key=lambda n: n != "model")  # the model first, baselines in order of appearance
    for name in names:
        rows = frame.loc[frame["model"] == name]
        m = point_scores(rows["y_true"], rows["y_pred"])
        fc = _grouped_scores(rows, KEYS)
        fc["mase"] = fc["mae"] / warm["scale"].reindex(fc.index).where(lambda s: s > 0)
        m["mase"] = _mean(fc["mase"].to_numpy()[np.isfinite(fc["mase"].to_numpy())])
        by_step = _grouped_scores(rows, ["step"])
        steps = pd.RangeIndex(1, int(rows["step"].max()) + 1 if len(rows) else 1)
        m["rmse_by_step"] = by_step["rmse"].reindex(steps).astype(float).tolist()
        m["mae_by_step"] = by_step["mae"].reindex(steps).astype(float).tolist()
        m["n_by_step"] = by_step["n"].reindex(steps).fillna(0).astype(int).tolist()
        m.update(_probabilistic_scores(rows, qcols, wanted))
        specimens = pd.Index(rows["specimen"].unique(), name="specimen")
        series = _grouped_scores(rows, ["specimen"]).reindex(specimens)
        series["n"] = series["n"].fillna(0).astype(int)
        series["mase"] = fc["mase"].groupby(level="specimen").mean().reindex(specimens)
        series["eol_pred"] = series["eol_true"] = series["eol_error"] = np.nan
        if threshold is not None:
            eol = _eol_per_origin(rows, warm, threshold, direction)
            m["eol"], scored = _eol_summary(eol, time_unit)
            first = scored.sort_values("t_cut", kind="stable")
            first = first.loc[~first.index.get_level_values("specimen").duplicated()]
            first = first.droplevel("origin").reindex(specimens)
            series["eol_pred"] = first["eol_pred"]
            series["eol_true"] = first["eol_true"]
            series["eol_error"] = first["eol_pred"] - first["eol_true"]
            if n_origins > 1:
                m["prognostics"] = _prognostics(eol, alpha, lambdas)
        models[name] = m
        per_series.append(series.reset_index().assign(model=name))
    report = _report(
        models,
        n_specimens=int(frame["specimen"].nunique()),
        n_origins=n_origins,
        threshold=threshold,
        direction=direction,
        time_unit=time_unit,
    )
    cols = ["model", "specimen", "n", "mae", "rmse", "bias", "mase", "eol_pred", "eol_true", "eol_error"]
    table = pd.concat(per_series, ignore_index=True) if per_series else pd.DataFrame(columns=cols)
    _add_skill_spread(report, table)
    return report, table[cols]


# The skill's interval: specimens resampled with replacement (they, not rows, are independent),
# with a fixed seed so that a report reads the same on every run and however it was chunked
SKILL_LEVEL = 0.9
SKILL_RESAMPLES = 1000


def skill_spread(
    per_series: pd.DataFrame, baseline: str, *, level: float = SKILL_LEVEL, resamples: int = SKILL_RESAMPLES
) -> dict:
    """How surely the model beats ``baseline``, from ``per_series`` (one row per model and
    specimen: ``n`` scored points and their ``rmse``) over the specimens both scored.

    ``specimens_better``: specimens where the model's RMSE is the lower, of ``specimens``;
    ``low`` / ``high``: the central ``level`` interval of the skill 1 - RMSE_model /
    RMSE_baseline when the specimens are drawn again with replacement (``resamples`` times, seed
    0, the specimens in sorted order, so the interval does not depend on how the table was read).
    Fewer than 2 specimens: no interval (NaN)."""
    return _spread(_specimen_sums(per_series), baseline, level, resamples)


def _specimen_sums(per_series: pd.DataFrame) -> pd.DataFrame:
    """Squared-error sums ``sse`` and point counts ``n`` per specimen (rows) and model (columns)."""
    sse = per_series.assign(sse=per_series["rmse"] ** 2 * per_series["n"])
    return sse.pivot_table(index="specimen", columns="model", values=["sse", "n"], aggfunc="sum")


def _spread(wide: pd.DataFrame, baseline: str, level: float, resamples: int) -> dict:
    """:func:`skill_spread` from :func:`_specimen_sums`' table."""
    if "model" not in wide["n"] or baseline not in wide["n"]:
        return {
            "specimens": 0,
            "specimens_better": 0,
            "specimens_tied": 0,
            "level": level,
            "low": _NAN,
            "high": _NAN,
        }
    n_m, n_b = wide["n"]["model"].to_numpy(np.float64), wide["n"][baseline].to_numpy(np.float64)
    s_m, s_b = wide["sse"]["model"].to_numpy(np.float64), wide["sse"][baseline].to_numpy(np.float64)
    both = (n_m > 0) & (n_b > 0) & np.isfinite(s_m) & np.isfinite(s_b)
    order = np.argsort(wide.index.astype(str).to_numpy()[both], kind="stable")
    n_m, n_b, s_m, s_b = (a[both][order] for a in (n_m, n_b, s_m, s_b))
    k = len(n_m)
    out = {
        "specimens": int(k),
        "specimens_better": int((s_m / n_m < s_b / n_b).sum()),
        "specimens_tied": int((s_m / n_m == s_b / n_b).sum()),  # the same errors: a copy, calibrated
        "level": level,
        "low": _NAN,
        "high": _NAN,
    }
    if k < 2:
        return out
    rng = np.random.default_rng(0)
    draws = []
    block = max(1, 2_000_000 // k)  # resamples at a time: a few MB of indices whatever the table
    for start in range(0, resamples, block):
        idx = rng.integers(0, k, size=(min(block, resamples - start), k))
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.sqrt(s_m[idx].sum(1) / n_m[idx].sum(1)) / np.sqrt(s_b[idx].sum(1) / n_b[idx].sum(1))
        draws.append(1.0 - ratio)
    skill = np.concatenate(draws)
    skill = skill[np.isfinite(skill)]
    if skill.size:
        tail = 100 * (1 - level) / 2
        out["low"], out["high"] = (float(v) for v in np.percentile(skill, [tail, 100 - tail]))
    return out


def _add_skill_spread(report: dict, per_series: pd.DataFrame) -> None:
    """``report["skill_spread"]``: :func:`skill_spread` for each baseline of ``report["skill"]``."""
    if report.get("skill"):
        wide = _specimen_sums(per_series)  # once for every baseline
        report["skill_spread"] = {
            name: _spread(wide, name, SKILL_LEVEL, SKILL_RESAMPLES) for name in report["skill"]
        }


# When the model's error follows a condition. Over at least TREND_SPECIMENS specimens, a
# specimen's mean error (forecast - measured) set against its mean condition over the forecast
# rows "follows" the condition when the rank correlation is beyond TREND_Z / sqrt(n - 1) (about
# the 1 % two-sided level of a rank correlation under no relation) and the mean errors of the
# condition's highest and lowest thirds of the specimens differ by at least TREND_SIZE x the
# model's RMSE (so that many specimens do not flag a trend too small to matter).
TREND_SPECIMENS = 12
TREND_Z = 2.58
TREND_SIZE = 0.25
# A categorical column (material A, B) "follows" when, over the groups of at least TREND_GROUP
# specimens, a Kruskal-Wallis test of the specimens' mean errors gives p below TREND_P (the same
# 1 % level) and the groups' mean errors lie at least TREND_SIZE x the RMSE apart.
TREND_GROUP = 3
TREND_P = 0.01


def specimen_errors(points: pd.DataFrame, drivers: pd.DataFrame, model: str = "model") -> pd.DataFrame:
    """One row per specimen of a backtest of whole specimens (evaluation.Frames): ``n``, the
    model's scored rows, ``error``, its mean error (forecast - measured) over them, and each
    column of ``drivers`` (evaluation.forecast_drivers) averaged over the specimen's cut-offs,
    weighted by the rows each forecast (a categorical column: the specimen's label). ``model``:
    whose errors (a compared model's name in ``points``)."""
    rows = points[points["model"] == model]
    rows = rows[np.isfinite(rows["y_true"]) & np.isfinite(rows["y_pred"])]
    err = (rows["y_pred"] - rows["y_true"]).groupby(rows["specimen"], sort=False).agg(["size", "mean"])
    err.columns = ["n", "error"]
    names = [c for c in drivers.columns if c not in ("specimen", "origin", "rows")]
    labels = [c for c in names if not pd.api.types.is_numeric_dtype(drivers[c])]  # categorical statics
    order = names
    names = [c for c in names if c not in labels]
    # a condition's mean over the cut-offs, each weighted by its forecast rows (NaN: not measured)
    w = drivers["rows"].to_numpy(np.float64)[:, None] * np.isfinite(drivers[names].to_numpy(np.float64))
    weighted = pd.DataFrame(np.nan_to_num(drivers[names].to_numpy(np.float64)) * w, columns=names)
    weights = pd.DataFrame(w, columns=names)
    by = drivers["specimen"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        means = weighted.groupby(by, sort=False).sum() / weights.groupby(by, sort=False).sum()
    if labels:  # a specimen's label is the same at every cut-off
        means = means.join(drivers[labels].groupby(by, sort=False).first())[order]
    return err.join(means, how="inner").rename_axis("specimen").reset_index()


def condition_trends(specimens: pd.DataFrame, rmse: float) -> dict:
    """Whether the model's error follows a condition, from :func:`specimen_errors`' rows: per
    condition (and numeric static column), over the specimens where both are known, the rank
    correlation of the specimen's mean error with its mean condition, the mean error and the
    mean condition of the lowest and the highest third of the specimens by that condition, and
    ``follows`` (the rule above TREND_SPECIMENS); per categorical static column, each label's
    specimens and mean error and a Kruskal-Wallis test (``_category_trend``). Each specimen
    counts once, whatever its rows."""
    scored = specimens[specimens["n"] > 0]
    err = scored["error"].to_numpy(np.float64)
    out: dict = {"specimens": int(len(scored)), "columns": {}}
    for name in [c for c in scored.columns if c not in ("specimen", "n", "error")]:
        if not pd.api.types.is_numeric_dtype(scored[name]):
            out["columns"][name] = _category_trend(scored[name], err, rmse)
            continue
        x = scored[name].to_numpy(np.float64)
        ok = np.isfinite(x) & np.isfinite(err)
        k = int(ok.sum())
        block = {"specimens": k, "rank_correlation": _NAN, "follows": False}
        third = k // 3
        if third and np.ptp(x[ok]) > 0:
            xs, es = x[ok], err[ok]
            rho = float(pd.Series(xs).rank().corr(pd.Series(es).rank()))
            order = np.argsort(xs, kind="stable")
            low, high = order[:third], order[-third:]
            block |= {
                "rank_correlation": rho,
                "low": {"value": float(xs[low].mean()), "error": float(es[low].mean())},
                "high": {"value": float(xs[high].mean()), "error": float(es[high].mean())},
            }
            gap = abs(block["high"]["error"] - block["low"]["error"])
            block["follows"] = bool(
                k >= TREND_SPECIMENS
                and abs(rho) >= TREND_Z / math.sqrt(k - 1)
                and math.isfinite(rmse)
                and gap >= TREND_SIZE * rmse
            )
        out["columns"][name] = block
    return out


def _category_trend(labels: pd.Series, err: np.ndarray, rmse: float) -> dict:
    """condition_trends' block for a categorical column: ``kind`` "category", each label's
    ``groups`` entry (its specimens and their mean error, ordered from the lowest mean error),
    the Kruskal-Wallis ``p_value`` over the groups of at least TREND_GROUP specimens, and
    ``follows``."""
    known = labels.notna().to_numpy() & np.isfinite(err)
    lab = labels[known].astype(str).to_numpy()
    es = err[known]
    frame = (
        pd.DataFrame({"label": lab, "error": es}).groupby("label", sort=True)["error"].agg(["size", "mean"])
    )
    frame = frame.sort_values("mean", kind="stable")
    groups = {str(k): {"specimens": int(r["size"]), "error": float(r["mean"])} for k, r in frame.iterrows()}
    block = {
        "kind": "category",
        "specimens": int(known.sum()),
        "groups": groups,
        "p_value": _NAN,
        "follows": False,
    }
    tested = frame[frame["size"] >= TREND_GROUP]
    if len(tested) >= 2:
        inside = np.isin(lab, tested.index.to_numpy())
        block["p_value"] = _kruskal_p(lab[inside], es[inside])
        gap = float(tested["mean"].max() - tested["mean"].min())
        block["follows"] = bool(
            int(inside.sum()) >= TREND_SPECIMENS
            and block["p_value"] < TREND_P
            and math.isfinite(rmse)
            and gap >= TREND_SIZE * rmse
        )
    return block


def _kruskal_p(labels: np.ndarray, values: np.ndarray) -> float:
    """The Kruskal-Wallis test's p-value (chi-square approximation with G - 1 degrees of freedom,
    ties corrected) that the groups' values come from one distribution."""
    import torch

    n = len(values)
    ranks = pd.Series(values).rank().to_numpy()
    groups = pd.DataFrame({"g": labels, "r": ranks}).groupby("g")["r"].agg(["size", "sum"])
    h = 12.0 / (n * (n + 1)) * float((groups["sum"] ** 2 / groups["size"]).sum()) - 3.0 * (n + 1)
    ties = pd.Series(values).value_counts().to_numpy(np.float64)
    h /= max(1.0 - float((ties**3 - ties).sum()) / (n**3 - n), 1e-12)
    df = len(groups) - 1
    p = torch.special.gammaincc(
        torch.tensor(df / 2.0, dtype=torch.float64), torch.tensor(max(h, 0.0) / 2.0, dtype=torch.float64)
    )
    return float(p)


def _eol_summary(eol: pd.DataFrame, time_unit: str) -> tuple[dict, pd.DataFrame]:
    """End-of-life scores over the per-origin table, and the scored rows."""
    unmeasured = ~eol["already_past"] & eol["censor"].isna()  # no truth to compare with
    scored = eol.loc[~eol["already_past"] & ~unmeasured]
    out = eol_scores(scored["eol_pred"], scored["eol_true"], scored["censor"])
    out["already_past"] = int(eol["already_past"].sum())
    out["unmeasured"] = int(unmeasured.sum())
    out["time_unit"] = time_unit
    if "eol_p10" in scored:
        out.update(
            eol_interval_coverage(scored["eol_p10"], scored["eol_p90"], scored["eol_true"], scored["censor"])
        )
    return out, scored


def eol_interval_coverage(lower, upper, true_eol, censor_time, level: float = 0.8) -> dict:
    """How often the end-of-life interval [lower, upper] holds the true end of life.

    ``lower``, ``upper`` [N] (+inf: later than the forecast's horizon), ``true_eol`` [N] (NaN: the
    truth had not crossed by ``censor_time``, the last measured row, so it lies after it). A
    crossed truth is covered when inside. A censored truth is decided only where the interval
    settles it: missed when ``upper`` is before the censoring time, covered when the interval runs
    from at or before it to +inf; otherwise it is ``interval_undetermined`` and left out of the
    share. Returns ``interval_level``, ``interval_coverage``, ``interval_n`` (decided),
    ``interval_undetermined``, and on which side the decided misses fall: ``interval_early``, the
    truth crossed before the interval began (the specimen failed sooner than forecast), and
    ``interval_late``, it crossed after the interval ended or had still not crossed when it ended.
    A calibrated 80 % interval misses about 10 % of the decided specimens on each side.
    """
    lo, hi = (np.asarray(a, dtype=np.float64).ravel() for a in (lower, upper))
    t = np.asarray(true_eol, dtype=np.float64).ravel()
    c = np.broadcast_to(np.asarray(censor_time, dtype=np.float64), t.shape)
    known = np.isfinite(lo) | np.isinf(lo)  # NaN bounds: no interval (a point model)
    crossed = np.isfinite(t)
    with np.errstate(invalid="ignore"):
        covered = np.where(crossed, (lo <= t) & (t <= hi), np.isinf(hi) & (lo <= c))
        missed = np.where(crossed, ~covered, hi < c)
    decided = known & (covered | missed)
    n = int(decided.sum())
    with np.errstate(invalid="ignore"):
        early = known & crossed & (t < lo)
    return {
        "interval_level": level,
        "interval_coverage": float(covered[decided].mean()) if n else _NAN,
        "interval_n": n,
        "interval_undetermined": int((known & ~decided).sum()),
        "interval_early": int(early.sum()),
        "interval_late": int((known & missed & ~early).sum()),
    }


class PooledScores:
    """:func:`score_backtest` over a backtest given in pieces of disjoint specimens.

    ``add(frame, history)`` takes one piece and returns its per-series table (those rows are
    exactly what ``score_backtest`` gives for those specimens); ``report()`` gives the report of
    all pieces together. Only sums are kept for the row-level scores, and one small row per
    (specimen, cut-off) for MASE and end of life, so memory does not grow with the rows. The
    pooled numbers equal ``score_backtest``'s on the whole frame up to float rounding (sums of
    sums instead of one mean).
    """

    def __init__(
        self,
        *,
        quantiles: list[float] | None = None,
        threshold: float | None = None,
        direction: str = "below",
        time_unit: str = "time",
        alpha: float = 0.2,
        lambdas: Sequence[float] = (0.25, 0.5, 0.75),
    ):
        _check_direction(direction)
        self.options = {"threshold": threshold, "direction": direction, "time_unit": time_unit}
        self.quantiles, self.alpha, self.lambdas = quantiles, alpha, lambdas
        self.models: dict[str, dict] = {}
        self.specimens = 0
        self.origins: set = set()
        self.wanted: list[float] = []
        self.pieces = 0
        self.first: dict | None = None  # the report of the only piece, while there is one
        self.per_specimen: list[pd.DataFrame] = []

    def add(self, frame: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
        if "model" not in frame.columns:
            frame = frame.assign(model="model")
        report, per_series = score_backtest(
            frame, history, quantiles=self.quantiles, alpha=self.alpha, lambdas=self.lambdas, **self.options
        )
        self.first = report if self.pieces == 0 else None
        self.pieces += 1
        # one small row per (model, specimen): what the skill's interval resamples
        self.per_specimen.append(per_series[["model", "specimen", "n", "rmse"]])
        warm = _warmup_summary(history)
        qcols = _quantile_columns(frame)
        self.wanted = sorted(qcols) if self.quantiles is None else sorted(self.quantiles)
        self.specimens += int(frame["specimen"].nunique())
        self.origins.update(frame["origin"].unique().tolist())
        for name in dict.fromkeys(frame["model"]):
            rows = frame.loc[frame["model"] == name]
            self._add_model(self.models.setdefault(name, _new_pool()), rows, warm, qcols)
        return per_series

    def _add_model(self, st: dict, rows: pd.DataFrame, warm: pd.DataFrame, qcols: dict) -> None:
        t, p = _finite(rows["y_true"], rows["y_pred"])
        e = p - t
        nz = np.abs(t) >= 1e-9
        denom = np.abs(t) + np.abs(p)
        with np.errstate(invalid="ignore", divide="ignore"):
            sm = np.where(denom > 0, 2.0 * np.abs(e) / denom, 0.0)
        st["n"] += e.size
        st["abs"] += float(np.abs(e).sum())
        st["sq"] += float((e**2).sum())
        st["err"] += float(e.sum())
        st["ape"] += float((np.abs(e[nz]) / np.abs(t[nz])).sum())
        st["ape_n"] += int(nz.sum())
        st["sm"] += float(sm.sum())
        fc = _grouped_scores(rows, KEYS)
        mase = (fc["mae"] / warm["scale"].reindex(fc.index).where(lambda s: s > 0)).to_numpy()
        st["mase"] += float(mase[np.isfinite(mase)].sum())
        st["mase_n"] += int(np.isfinite(mase).sum())
        # per horizon step: counts and sums of |e| and e^2 over the finite rows
        if len(rows):
            st["max_step"] = max(st["max_step"], int(rows["step"].max()))
        ok = np.isfinite(rows["y_true"].to_numpy(np.float64)) & np.isfinite(
            rows["y_pred"].to_numpy(np.float64)
        )
        step = rows["step"].to_numpy()[ok].astype(np.int64)
        err = (rows["y_pred"].to_numpy(np.float64) - rows["y_true"].to_numpy(np.float64))[ok]
        size = max(len(st["step_n"]), int(step.max(initial=0)) + 1)
        for key, weights in (("step_n", None), ("step_abs", np.abs(err)), ("step_sq", err**2)):
            grown = np.zeros(size)
            grown[: len(st[key])] = st[key]
            st[key] = grown + np.bincount(step, weights=weights, minlength=size)
        # probabilistic: sums per interval, per level, and CRPS per set of levels present here
        y = rows["y_true"].to_numpy(np.float64)
        qv = {q: rows[c].to_numpy(np.float64) for q in self.wanted if (c := _match(qcols, q))}
        present = [q for q in self.wanted if q in qv and np.isfinite(qv[q]).any()]
        st["present"].update(present)
        for q in qv:
            upper = next((u for u in qv if abs(u - (1 - q)) < 1e-9), None)
            if q < 0.5 and upper is not None:
                yy, lo, hi = _finite(y, qv[q], qv[upper])
                alpha = 2 * q
                score = (hi - lo) + 2.0 / alpha * (np.maximum(lo - yy, 0.0) + np.maximum(yy - hi, 0.0))
                sums = st["interval"].setdefault(q, np.zeros(6))
                inside = ((yy >= lo) & (yy <= hi)).sum()
                sums += [yy.size, inside, (hi - lo).sum(), score.sum(), (yy < lo).sum(), (yy > hi).sum()]
            yy, pq = _finite(y, qv[q])
            d = yy - pq
            sums = st["pinball"].setdefault(q, np.zeros(2))
            sums += [d.size, np.maximum(q * d, (q - 1.0) * d).sum()]
        if present:
            Q = np.column_stack([qv[q] for q in present])  # [rows, Q]
            good = np.isfinite(y) & np.isfinite(Q).all(axis=1)
            d = y[good, None] - Q[good]
            levels = np.asarray(present)[None, :]
            sums = st["crps"].setdefault(tuple(present), np.zeros(2))
            sums += [d.size, np.maximum(levels * d, (levels - 1.0) * d).sum()]
        if self.options["threshold"] is not None:
            st["eol"].append(
                _eol_per_origin(rows, warm, self.options["threshold"], self.options["direction"])
            )

    def report(self) -> dict:
        """The scores of every piece added; with one piece, exactly ``score_backtest``'s."""
        if self.first is not None:
            return self.first

        def ratio(a, b) -> float:
            return float(a / b) if b else _NAN

        models: dict[str, dict] = {}
        names = list(self.models)
        names.sort(key=lambda n: n != "model")
        n_origins = len(self.origins)
        for name in names:
            st = self.models[name]
            n = st["n"]
            m = {
                "n": int(n),
                "mae": ratio(st["abs"], n),
                "rmse": math.sqrt(st["sq"] / n) if n else _NAN,
                "bias": ratio(st["err"], n),
                "mape": 100.0 * ratio(st["ape"], st["ape_n"]),
                "smape": 100.0 * ratio(st["sm"], n),
                "mase": ratio(st["mase"], st["mase_n"]),
            }
            k = st["max_step"] + 1
            cnt = np.zeros(k)
            cnt[: min(k, len(st["step_n"]))] = st["step_n"][:k]
            with np.errstate(invalid="ignore", divide="ignore"):
                sq = np.zeros(k)
                sq[: min(k, len(st["step_sq"]))] = st["step_sq"][:k]
                ab = np.zeros(k)
                ab[: min(k, len(st["step_abs"]))] = st["step_abs"][:k]
                m["rmse_by_step"] = np.where(cnt > 0, np.sqrt(sq / cnt), np.nan)[1:].tolist()
                m["mae_by_step"] = np.where(cnt > 0, ab / cnt, np.nan)[1:].tolist()
                m["n_by_step"] = cnt[1:].astype(int).tolist()
            present = [q for q in self.wanted if q in st["present"]]
            if present:
                out = {"coverage": {}, "below": {}, "above": {}, "interval_width": {}, "interval_score": {}}
                for q in present:
                    upper = next((u for u in present if abs(u - (1 - q)) < 1e-9), None)
                    if q < 0.5 and upper is not None:
                        key = f"{100 * (1 - 2 * q):g}"
                        c, covered, width, score, under, over = st["interval"][q]
                        out["coverage"][key] = ratio(covered, c)
                        out["below"][key], out["above"][key] = ratio(under, c), ratio(over, c)
                        out["interval_width"][key] = ratio(width, c)
                        out["interval_score"][key] = ratio(score, c)
                out["pinball"] = {f"{q:g}": ratio(st["pinball"][q][1], st["pinball"][q][0]) for q in present}
                c, total = st["crps"].get(tuple(present), (0, 0.0))
                out["crps"] = 2.0 * ratio(total, c)
                m.update(out)
            if self.options["threshold"] is not None:
                eol = pd.concat(st["eol"])  # a model is only here with rows, so with origins
                m["eol"], _ = _eol_summary(eol, self.options["time_unit"])
                if n_origins > 1:
                    m["prognostics"] = _prognostics(eol, self.alpha, self.lambdas)
            models[name] = m
        report = _report(models, n_specimens=self.specimens, n_origins=n_origins, **self.options)
        _add_skill_spread(report, pd.concat(self.per_specimen, ignore_index=True))
        return report


def _report(models: dict[str, dict], *, n_specimens: int, n_origins: int, **options) -> dict:
    """The report around the models' scores: each baseline's skill, 1 - RMSE_model / RMSE_baseline
    (the model first in ``models``), and the counts and settings."""
    report: dict = {"models": models}
    if "model" in models and len(models) > 1:
        base = models["model"]["rmse"]
        report["skill"] = {
            n: 1.0 - base / m["rmse"] if m["rmse"] > 0 else _NAN for n, m in models.items() if n != "model"
        }
    report.update({"n_specimens": n_specimens, "n_origins": n_origins})
    report.update({k: options[k] for k in ("threshold", "direction", "time_unit")})
    return report


def _new_pool() -> dict:
    return {
        "n": 0,
        "abs": 0.0,
        "sq": 0.0,
        "err": 0.0,
        "ape": 0.0,
        "ape_n": 0,
        "sm": 0.0,
        "mase": 0.0,
        "mase_n": 0,
        "max_step": 0,
        "step_n": np.zeros(0),
        "step_abs": np.zeros(0),
        "step_sq": np.zeros(0),
        "present": set(),
        "interval": {},
        "pinball": {},
        "crps": {},
        "eol": [],
    }


def _match(qcols: dict[float, str], q: float) -> str | None:
    """The column of level q, tolerating float round-off (1 - 0.9 != 0.1)."""
    return next((c for level, c in qcols.items() if abs(level - q) < 1e-9), None)
