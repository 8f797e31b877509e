"""The mixed-effects degradation path: the reliability engineer's own baseline (issue 14).

Persistence, the straight line and the exponential fit each read one specimen's warm-up alone.
The method of the reliability textbooks for a table of specimens measured alike (Lu & Meeker
1993; Meeker & Escobar 1998, ch. 13) also learns from the other specimens: every specimen follows
a path of one family, here a polynomial in the time since its first measurement,

    y(t) = b0 + b1 s + ... + bd s^d,   s = (t - t_first) / tau,

whose coefficients b vary between specimens around the population's mean ``mean`` with
covariance ``cov``, and each measurement carries noise of variance ``noise``. Fitted in two
stages on the training specimens (each specimen's least-squares b, then their mean, covariance and
the pooled residual variance), it forecasts a new specimen from its warm-up by the best linear
unbiased predictor: the population's b moved toward what the warm-up shows, as far as the warm-up's
rows outweigh the spread between specimens. A few rows leave the forecast near the population's
path; many give the specimen's own.

It sees neither the conditions nor the static columns, so it is a baseline, not a rival model:
where every specimen runs one test plan (the measured lasers, Alloy-A, luminosity in
benchmarks/data) it is hard to beat; where the conditions drive the decay it is poor, and the
degree ``train`` chooses on the validation specimens keeps it from being absurd. The model file
stores that degree fitted again on every specimen, validation ones included
(``summary["mixed_effects"]``), so that ``evaluate`` scores it on new specimens and ``--combine``
averages it into the forecast.
Pure numpy, no torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

NAME = "mixed_effects"  # the baseline's name in reports, beside persistence, linear, exponential
DEGREES = (1, 2, 3)  # the polynomial degrees train chooses among on its validation specimens
MIN_SPECIMENS = 3  # fewer specimens with enough rows for a degree: no population to learn from


@dataclass(frozen=True)
class PathFit:
    """The population of paths of one degree (the module docstring)."""

    degree: int
    tau: float  # time scale of s, the training specimens' longest measured span
    mean: np.ndarray  # [d + 1]
    cov: np.ndarray  # [d + 1, d + 1], positive semi-definite
    noise: float  # variance of a measurement about its specimen's path
    specimens: int  # training specimens the fit is over

    def to_json(self) -> dict:
        return {
            "degree": self.degree,
            "tau": self.tau,
            "mean": [float(v) for v in self.mean],
            "cov": [[float(v) for v in row] for row in self.cov],
            "noise": self.noise,
            "specimens": self.specimens,
        }

    @classmethod
    def from_json(cls, d: dict) -> PathFit:
        """The fit as ``to_json`` wrote it; ValueError naming what is wrong (modelfile.py)."""
        degree = d.get("degree")
        if not isinstance(degree, int) or isinstance(degree, bool) or degree not in DEGREES:
            raise ValueError(f"mixed_effects degree must be one of {DEGREES}, got {degree!r}")
        try:
            mean = np.asarray(d["mean"], dtype=np.float64)
            cov = np.asarray(d["cov"], dtype=np.float64)
            tau, noise, specimens = float(d["tau"]), float(d["noise"]), int(d["specimens"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"mixed_effects is not a fit: {exc}") from None
        k = degree + 1
        if mean.shape != (k,) or cov.shape != (k, k):
            raise ValueError(f"mixed_effects mean / cov must be {k} / {k}x{k} numbers for degree {degree}")
        if not (np.isfinite(mean).all() and np.isfinite(cov).all()):
            raise ValueError("mixed_effects mean / cov hold a non-finite number")
        if not (math.isfinite(tau) and tau > 0 and math.isfinite(noise) and noise > 0):
            raise ValueError("mixed_effects tau and noise must be positive numbers")
        return cls(degree, tau, mean, cov, noise, specimens)


def _basis(s: np.ndarray, degree: int) -> np.ndarray:
    """[n, d + 1] the powers s^0 .. s^d."""
    return np.power.outer(np.asarray(s, dtype=np.float64), np.arange(degree + 1))


def _measured(time: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One specimen's measured rows, in time order."""
    ok = np.isfinite(time) & np.isfinite(y)
    t, v = time[ok].astype(np.float64), y[ok].astype(np.float64)
    order = np.argsort(t, kind="stable")
    return t[order], v[order]


class _Accumulator:
    """Each training specimen's least-squares coefficients for every degree, one specimen at a
    time and kept as a few numbers each (a table trained in groups passes here group by group).
    A specimen's coefficients are fitted on its own time scale (its span) and put on the common
    one when the population is fitted: b_k times (tau / span)^k, the same path."""

    def __init__(self) -> None:
        self.coefs: dict[int, list[tuple[np.ndarray, float]]] = {d: [] for d in DEGREES}
        self.sse = dict.fromkeys(DEGREES, 0.0)
        self.rows = dict.fromkeys(DEGREES, 0)
        self.moments = np.zeros(3)  # count, sum and sum of squares of the measured values

    def add(self, series) -> None:
        for b in range(len(series.ids)):
            n = int(series.lengths[b])
            t, v = _measured(series.time[b, :n], series.y[b, :n])
            if t.size < 2 or not t[-1] > t[0]:
                continue
            span = float(t[-1] - t[0])
            s = (t - t[0]) / span
            self.moments += (v.size, v.sum(), v @ v)
            for d in DEGREES:
                if t.size < d + 2 or np.unique(t).size < d + 1:
                    continue  # a path of d + 1 coefficients needs a row more to show its noise
                X = _basis(s, d)
                coef, *_ = np.linalg.lstsq(X, v, rcond=None)
                r = v - X @ coef
                self.coefs[d].append((coef, span))
                self.sse[d] += float(r @ r)
                self.rows[d] += t.size

    def fit(self, degree: int) -> PathFit | None:
        found = self.coefs[degree]
        if len(found) < MIN_SPECIMENS:
            return None
        k = degree + 1
        tau = max(span for _, span in found)
        B = np.array([coef * (tau / span) ** np.arange(k) for coef, span in found])  # [N, k]
        cov = np.atleast_2d(np.cov(B, rowvar=False))
        w, U = np.linalg.eigh((cov + cov.T) / 2)
        cov = (U * np.clip(w, 0.0, None)) @ U.T  # positive semi-definite
        count, total, squares = self.moments
        scale = max(squares / count - (total / count) ** 2, 0.0) or 1.0
        noise = max(self.sse[degree] / max(self.rows[degree] - len(found) * k, 1), 1e-12 * scale)
        return PathFit(degree, tau, B.mean(axis=0), cov, noise, len(found))


def predict(fit: PathFit, hist_t, hist_y, future_t) -> np.ndarray:
    """The specimen's path at ``future_t`` given its measured warm-up (NaN without one): the
    population's coefficients updated by the warm-up (best linear unbiased predictor)."""
    ft = np.asarray(future_t, dtype=np.float64)
    t, v = _measured(np.asarray(hist_t, dtype=np.float64), np.asarray(hist_y, dtype=np.float64))
    if not t.size:
        return np.full(ft.shape, np.nan)
    Xw = _basis((t - t[0]) / fit.tau, fit.degree)
    K = Xw @ fit.cov @ Xw.T + fit.noise * np.eye(t.size)
    b = fit.mean + fit.cov @ Xw.T @ np.linalg.solve(K, v - Xw @ fit.mean)
    return _basis((ft - t[0]) / fit.tau, fit.degree) @ b


def frame(history: pd.DataFrame, future: pd.DataFrame, fit: PathFit) -> pd.DataFrame:
    """``future`` (one row per forecast row) with ``y_pred`` from each (specimen, origin)'s rows of
    ``history`` (time, y) and ``model`` = NAME, as metrics.baseline_frame gives the others."""
    from durability_cli.metrics import per_group

    h = history.loc[np.isfinite(history["time"]) & np.isfinite(history["y"])]
    out = future.copy()
    out["y_pred"] = per_group(h, out, lambda t, y, ft: predict(fit, t, y, ft))
    out["model"] = NAME
    return out


def _errors(fit: PathFit, series, warm: np.ndarray) -> np.ndarray:
    """Errors (prediction - truth) on the measured rows after each specimen's first ``warm`` rows."""
    out = []
    for b in range(len(series.ids)):
        n, w = int(series.lengths[b]), int(warm[b])
        t, y = series.time[b, :n], series.y[b, :n]
        after = np.isfinite(y[w:]) & np.isfinite(t[w:])
        if not after.any():
            continue
        pred = predict(fit, t[:w], y[:w], t[w:][after])
        out.append(pred - y[w:][after])
    return np.concatenate(out) if out else np.zeros(0)


def choose(train_parts: Iterable, val_parts: Iterable, warmups) -> tuple[PathFit | None, dict[int, float]]:
    """The fit on the training specimens (Series, group by group) of the degree whose forecasts
    of the validation specimens (Series, each with its warm-up rows from ``warmups(lengths)``)
    err least (the lower degree on a tie), and every degree's validation RMSE. None where no
    degree has enough training specimens."""
    acc = _Accumulator()
    for part in train_parts:
        acc.add(part)
    fits = {d: f for d in DEGREES if (f := acc.fit(d)) is not None}
    if not fits:
        return None, {}
    errors: dict[int, list[np.ndarray]] = {d: [] for d in fits}
    for part in val_parts:
        warm = np.asarray(warmups(part.lengths))
        for d, f in fits.items():
            errors[d].append(_errors(f, part, warm))
    scores = {}
    for d, e in errors.items():
        err = np.concatenate(e) if e else np.zeros(0)
        scores[d] = float(np.sqrt(np.mean(err**2))) if err.size and np.isfinite(err).all() else math.inf
    best = min(scores, key=lambda d: (scores[d], d))
    if not math.isfinite(scores[best]):
        return None, scores
    return fits[best], scores


def weight(model_rmse: list, path_rmse: list) -> float | None:
    """The model's weight in ``--combine mixed_effects``: b^2 / (m^2 + b^2), m and b the mean
    validation RMSEs of the model and of the path over an ensemble's members (one model: its
    own); None where either is missing or not a positive finite number."""
    pairs = [(m, b) for m, b in zip(model_rmse, path_rmse, strict=True) if m is not None and b is not None]
    if not pairs:
        return None
    m = sum(p[0] for p in pairs) / len(pairs)
    b = sum(p[1] for p in pairs) / len(pairs)
    if not (math.isfinite(m) and math.isfinite(b) and m > 0 and b > 0):
        return None
    return b * b / (m * m + b * b)


def forecast_block(fit: PathFit, series, last: np.ndarray) -> np.ndarray:
    """[B, T] each specimen's path on the rows after ``last[b]`` (its last warm-up row) from its
    measured rows up to it; NaN elsewhere (and where it has no measured row)."""
    B, T = series.y.shape
    out = np.full((B, T), np.nan)
    for b in range(B):
        n, w = int(series.lengths[b]), int(last[b]) + 1
        if w >= n:
            continue
        out[b, w:n] = predict(fit, series.time[b, :w], series.y[b, :w], series.time[b, w:n])
    return out


def fit_degree(parts: Iterable, degree: int) -> PathFit | None:
    """The population of paths of ``degree`` over every specimen of ``parts`` (Series)."""
    acc = _Accumulator()
    for part in parts:
        acc.add(part)
    return acc.fit(degree)


def cross_validated(
    series, warmups, folds: int = 5, seed: int = 0
) -> tuple[PathFit | None, dict[int, float]]:
    """The fit on every specimen of ``series`` of the degree whose forecasts err least over
    ``folds`` folds of the specimens (each fold forecast from its warm-up, ``warmups(lengths)``
    rows, by the fit on the others; the errors pooled), and each degree's pooled RMSE. For a
    table with no validation split of its own (the benchmarks' baseline)."""
    n = len(series.ids)
    order = np.random.default_rng(seed).permutation(n)
    sse: dict[int, float] = dict.fromkeys(DEGREES, 0.0)
    count: dict[int, int] = dict.fromkeys(DEGREES, 0)
    for k in range(min(folds, n)):
        held = np.sort(order[k::folds])
        rest = np.setdiff1d(np.arange(n), held)
        acc = _Accumulator()
        acc.add(series.take(rest))
        part = series.take(held)
        warm = np.asarray(warmups(part.lengths))
        for d in DEGREES:
            f = acc.fit(d)
            if f is None:
                sse[d] = math.inf
                continue
            err = _errors(f, part, warm)
            sse[d] += float(err @ err) if np.isfinite(err).all() else math.inf
            count[d] += err.size
    scores = {
        d: math.sqrt(sse[d] / count[d]) if count[d] and math.isfinite(sse[d]) else math.inf for d in DEGREES
    }
    best = min(scores, key=lambda d: (scores[d], d))
    if not math.isfinite(scores[best]):
        return None, scores
    acc = _Accumulator()
    acc.add(series)
    return acc.fit(best), scores
