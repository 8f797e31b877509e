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

Where the table has conditions, two more families bring them in, as accelerated degradation
tests are analysed (Meeker & Escobar ch. 21):

- ``+conditions``: each condition adds to the decay in proportion to how far it sits from the
  training specimens' mean,

      y(t) = b0 + b1 s + ... + bd s^d + sum_j g_j E_j(s),   E_j(s) = integral of (x_j - c_j) ds,

  the exposures E integrated over the rows (a row's conditions hold until the next row), ``g``
  (``effect``) the same for every specimen and ``centre`` the means c. Those fixed effects cannot
  be told from the slope by the two stages, so this family is fitted by the EM algorithm for
  linear mixed models (Laird & Ware 1982) on each specimen's rows reduced to a few by a QR.
- ``+accelerated``: the conditions run the specimen's clock (Arrhenius and Peck's laws make
  heat and humidity scale time): the polynomial path in the equivalent time, the integral of
  exp(r . (x - c)) dt, with ``rate`` r searched to forecast folds of the training specimens best,
  a stepped test (hotter midway) following the cumulative-exposure model of step-stress tests.

No family reads the static columns. ``train`` chooses the degree and the family on its
validation specimens; where every specimen runs one test plan (the measured lasers, Alloy-A in
benchmarks/data) the path is hard to beat, and where the conditions drive a decay that none of
the families follows it is poor, and the choice keeps it from being absurd. The model file
stores the chosen family fitted again on every specimen, validation ones included
(``summary["mixed_effects"]``; the accelerated family keeps the rates its training specimens
chose), so that ``evaluate`` scores it on new specimens and ``--combine`` averages it into the
forecast. Pure numpy, no torch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

NAME = "mixed_effects"  # the baseline's name in reports, beside persistence, linear, exponential
DEGREES = (1, 2, 3)  # the polynomial degrees train chooses among on its validation specimens
MIN_SPECIMENS = 3  # fewer specimens with enough rows for a degree: no population to learn from
CONDITIONS = "conditions"  # the family with the conditions' exposures: labels "2+conditions"
ACCELERATED = "accelerated"  # the family on the conditions' time scale: labels "2+accelerated"
FAMILIES = ("", CONDITIONS, ACCELERATED)  # without the conditions, with their exposures, on their clock
_MAX_KEPT = 500  # specimens the accelerated family is searched and fitted on (the first ones)
_RATE_GRID = np.linspace(-3.0, 3.0, 7)  # log time scale per standard deviation of a condition
_SEARCH_FOLDS = 3  # folds of the kept specimens that score each rate
_POWERS = max(DEGREES) + 1  # columns of s kept in each specimen's sums (the conditions' follow)
_EM_ITERATIONS, _EM_TOLERANCE = 200, 1e-6


@dataclass(frozen=True)
class PathFit:
    """The population of paths of one degree (the module docstring)."""

    degree: int
    tau: float  # time scale of s, the training specimens' longest measured span
    mean: np.ndarray  # [d + 1]
    cov: np.ndarray  # [d + 1, d + 1], positive semi-definite
    noise: float  # variance of a measurement about its specimen's path
    specimens: int  # training specimens the fit is over
    centre: np.ndarray | None = None  # [C] the conditions' time-weighted means; None: without them
    effect: np.ndarray | None = None  # [C] durability per unit of condition above centre, per tau
    rate: np.ndarray | None = None  # [C] log of the time scale per unit of condition above centre

    @property
    def label(self) -> str:
        """The family as the validation scores name it: "2", "2+conditions" or "2+accelerated"."""
        family = CONDITIONS if self.effect is not None else ACCELERATED if self.rate is not None else ""
        return f"{self.degree}+{family}" if family else str(self.degree)

    def to_json(self) -> dict:
        out = {
            "degree": self.degree,
            "tau": self.tau,
            "mean": [float(v) for v in self.mean],
            "cov": [[float(v) for v in row] for row in self.cov],
            "noise": self.noise,
            "specimens": self.specimens,
        }
        if self.effect is not None:
            out[CONDITIONS] = {
                "centre": [float(v) for v in self.centre],
                "effect": [float(v) for v in self.effect],
            }
        if self.rate is not None:
            out[ACCELERATED] = {
                "centre": [float(v) for v in self.centre],
                "rate": [float(v) for v in self.rate],
            }
        return out

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
        found = {}
        for family, key in ((CONDITIONS, "effect"), (ACCELERATED, "rate")):
            if (block := d.get(family)) is None:
                continue
            try:
                centre = np.asarray(block["centre"], dtype=np.float64)
                values = np.asarray(block[key], dtype=np.float64)
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"mixed_effects {family} are not a fit: {exc}") from None
            if centre.ndim != 1 or centre.shape != values.shape or not centre.size:
                raise ValueError(
                    f"mixed_effects {family}' centre and {key} must be lists of one number per condition"
                )
            if not (np.isfinite(centre).all() and np.isfinite(values).all()):
                raise ValueError(f"mixed_effects {family} hold a non-finite number")
            found[key], found["centre"] = values, centre
        if "effect" in found and "rate" in found:
            raise ValueError(f"mixed_effects is one family: {CONDITIONS} or {ACCELERATED}, not both")
        return cls(degree, tau, mean, cov, noise, specimens, **found)


def _basis(s: np.ndarray, degree: int) -> np.ndarray:
    """[n, d + 1] the powers s^0 .. s^d."""
    return np.power.outer(np.asarray(s, dtype=np.float64), np.arange(degree + 1))


def _measured(time: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One specimen's measured rows, in time order."""
    ok = np.isfinite(time) & np.isfinite(y)
    t, v = time[ok].astype(np.float64), y[ok].astype(np.float64)
    order = np.argsort(t, kind="stable")
    return t[order], v[order]


def _exposures(time: np.ndarray, x: np.ndarray, first: np.ndarray) -> np.ndarray:
    """[B, T, C] the integral of ``x`` [B, T, C] (each row's value held until the next row; NaN
    counts as 0) over ``time`` [B, T] from row ``first[b]`` to each row; 0 before it."""
    dt = np.diff(time, axis=1, append=time[:, -1:])
    dt[~np.isfinite(dt)] = 0.0
    step = np.nan_to_num(x) * dt[..., None]
    step[np.arange(time.shape[1])[None, :] < np.asarray(first)[:, None]] = 0.0
    out = np.zeros_like(step)
    np.cumsum(step[:, :-1], axis=1, out=out[:, 1:])
    return out


def _clock(time: np.ndarray, cond: np.ndarray, centre: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """[B, T] each row's time on the clock of a specimen held at ``centre``: every step's length
    times exp(rate . (x - centre)), x its first row's conditions (held until the next row; NaN
    counts as the centre). ``time`` [B, T] (NaN padded) and ``cond`` [B, T, C] in order."""
    if not time.shape[1]:
        return time
    dt = np.nan_to_num(np.diff(time, axis=1))
    speed = np.exp(np.clip(np.nan_to_num(cond[:, :-1] - centre) @ rate, -30.0, 30.0))
    out = np.empty_like(time, dtype=np.float64)
    out[:, 0] = time[:, 0]
    np.cumsum(speed * dt, axis=1, out=out[:, 1:])
    out[:, 1:] += time[:, :1]
    return np.where(np.isfinite(time), out, np.nan)


class _Accumulator:
    """Each training specimen's least-squares coefficients for every degree, one specimen at a
    time and kept as a few numbers each (a table trained in groups passes here group by group).
    A specimen's coefficients are fitted on its own time scale (its span) and put on the common
    one when the population is fitted: b_k times (tau / span)^k, the same path. Where the table
    has conditions, each specimen's rows of [1, s, s^2, s^3, exposures] and values reduced to a
    few by a QR, for the family with the conditions (:meth:`fit_conditions`), and the rows of
    the first ``_MAX_KEPT`` specimens, for the accelerated family (:meth:`fit_accelerated`)."""

    def __init__(self) -> None:
        self.coefs: dict[int, list[tuple[np.ndarray, float]]] = {d: [] for d in DEGREES}
        self.sse = dict.fromkeys(DEGREES, 0.0)
        self.rows = dict.fromkeys(DEGREES, 0)
        self.moments = np.zeros(3)  # count, sum and sum of squares of the measured values
        # the family with the conditions: per specimen R of the QR of its [F y], rows and span
        self.products: list[tuple[np.ndarray, int, float]] = []
        self.exposure = None  # [3, C] time, and time-weighted sums of x and x^2, over the rows
        self.kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # time, y, cond
        self.rates: dict = {}  # the accelerated family's search, the kept Series and their clock, once

    def add(self, series) -> None:
        N, T = series.y.shape
        if not N:
            return
        ok = np.arange(T)[None, :] < np.asarray(series.lengths)[:, None]
        ok &= np.isfinite(series.time) & np.isfinite(series.y)  # [N, T] the measured rows
        count = ok.sum(1)
        start = np.min(np.where(ok, series.time, np.inf), axis=1)
        span = np.max(np.where(ok, series.time, -np.inf), axis=1) - start
        usable = (count >= 2) & (span > 0) & np.isfinite(span)
        ordered = np.sort(np.where(ok, series.time, np.inf), axis=1)
        with np.errstate(invalid="ignore"):  # inf - inf past the measured rows
            distinct = 1 + ((np.diff(ordered, axis=1) > 0) & np.isfinite(ordered[:, 1:])).sum(1)
        span = np.where(usable, span, 1.0)
        s = np.where(ok, (series.time - np.where(usable, start, 0.0)[:, None]) / span[:, None], 0.0)
        v = np.where(ok, series.y, 0.0)
        self.moments += (count[usable].sum(), v[usable].sum(), (v[usable] ** 2).sum())
        for d in DEGREES:
            # a path of d + 1 coefficients needs a row more to show its noise
            fit = np.flatnonzero(usable & (count >= d + 2) & (distinct >= d + 1))
            if not fit.size:
                continue
            X = np.power(s[fit][..., None], np.arange(d + 1)) * ok[fit][..., None]  # [M, T, d + 1]
            Q, R = np.linalg.qr(X)  # each specimen's least squares, its unmeasured rows zero
            coef = np.linalg.solve(R, (np.swapaxes(Q, 1, 2) @ v[fit][..., None]))[..., 0]
            r = (v[fit] - (X @ coef[..., None])[..., 0]) * ok[fit]
            self.coefs[d].extend(zip(coef, span[fit].tolist(), strict=True))
            self.sse[d] += float((r * r).sum())
            self.rows[d] += int(count[fit].sum())
        if series.cond.ndim == 3 and series.cond.shape[2]:
            for b in np.flatnonzero(usable):
                n = int(series.lengths[b])
                self._add_exposures(series, b, n, float(start[b]), float(span[b]))
                if len(self.kept) < _MAX_KEPT:
                    order = np.argsort(series.time[b, :n], kind="stable")
                    self.kept.append((series.time[b, order], series.y[b, order], series.cond[b, order]))

    def _add_exposures(self, series, b: int, n: int, start: float, span: float) -> None:
        time, y, x = series.time[b, :n], series.y[b, :n], series.cond[b, :n]
        order = np.argsort(time, kind="stable")
        time, y, x = time[order], y[order], x[order]
        first = int(np.searchsorted(time, start))
        last = int(np.flatnonzero(np.isfinite(y))[-1])
        E = _exposures(time[None], x[None], np.array([first]))[0] / span
        rows = np.isfinite(y) & np.isfinite(time)
        F = np.hstack([_basis((time[rows] - start) / span, _POWERS - 1), E[rows]])
        v = y[rows].astype(np.float64)
        # the specimen as q + 1 rows: R of [F y] = QR holds F'F, F'y and y'y without forming them
        R = np.linalg.qr(np.c_[F, v], mode="r")
        pseudo = np.zeros((F.shape[1] + 1, F.shape[1] + 1))
        pseudo[: R.shape[0]] = R
        self.products.append((pseudo, v.size, span))
        dt = np.diff(time[first : last + 1])
        xs = np.nan_to_num(x[first:last])
        sums = np.stack([np.broadcast_to(dt.sum(), xs.shape[1:]), dt @ xs, dt @ xs**2])
        self.exposure = sums if self.exposure is None else self.exposure + sums

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
        noise = max(self.sse[degree] / max(self.rows[degree] - len(found) * k, 1), 1e-12 * self._scale())
        return PathFit(degree, tau, B.mean(axis=0), cov, noise, len(found))

    def _scale(self) -> float:
        count, total, squares = self.moments
        return max(squares / count - (total / count) ** 2, 0.0) or 1.0 if count else 1.0

    def fit_conditions(self, degree: int) -> PathFit | None:
        """The family with the conditions' exposures, by EM (Laird & Ware 1982): fixed effects
        (the mean path and the conditions' effects), random ones (each specimen's deviation from
        the mean path), maximum likelihood. None without conditions that vary over the training
        rows, or with too few specimens."""
        k = degree + 1
        if self.exposure is None or len(self.products) < max(MIN_SPECIMENS, k + 1):
            return None
        time, sx, sxx = self.exposure
        with np.errstate(invalid="ignore", divide="ignore"):
            centre = np.where(time > 0, sx / time, 0.0)
            spread = np.where(time > 0, sxx / time, 0.0) - centre**2
        active = np.flatnonzero(spread > 1e-12 * (centre**2 + 1.0))  # a constant one is the slope's
        if not active.size:
            return None
        tau = max(p[2] for p in self.products)
        C = centre.size
        cols = np.r_[np.arange(k), _POWERS + active]
        # onto the common time scale, then each exposure about the centre: E - c s
        L = np.eye(_POWERS + C)
        L[1, _POWERS:] = -centre
        F, y, n = [], [], []
        for pseudo, rows, span in self.products:
            r = span / tau
            scale = np.r_[r ** np.arange(_POWERS), np.full(C, r)]
            F.append(pseudo[:, :-1] @ (scale[:, None] * L)[:, cols])
            y.append(pseudo[:, -1])
            n.append(rows)
        beta, D, noise = _em(np.array(F), np.array(y), np.array(n), k, self.fit(degree), self._scale())
        if beta is None:
            return None
        effect = np.zeros(C)
        effect[active] = beta[k:]
        return PathFit(degree, tau, beta[:k], D, noise, len(self.products), centre, effect)

    def fit_accelerated(self, degree: int, warmups=None, like: PathFit | None = None) -> PathFit | None:
        """The accelerated family (Meeker & Escobar ch. 21: a condition that speeds the decay
        runs the specimen's clock faster): the path without conditions in each kept specimen's
        equivalent time (:func:`_clock`), the rates those of ``like`` or searched with
        ``warmups`` (:func:`_search_rates`, once per accumulator). None without conditions whose
        rates forecast better than none, or with too few specimens."""
        if len(self.kept) <= MIN_SPECIMENS:
            return None
        if "kept" not in self.rates:
            self.rates["kept"] = _kept_series(self.kept)
        kept = self.rates["kept"]
        if like is not None:
            found = (like.centre, like.rate) if like.rate is not None else None
        else:
            if "found" not in self.rates:
                self.rates["found"] = _search_rates(kept, warmups)
            found = self.rates["found"]
        if found is None:
            return None
        centre, rate = found
        key = (centre.tobytes(), rate.tobytes())  # the kept specimens on that clock, once for every degree
        if self.rates.get("clock", (None,))[0] != key:
            acc = _Accumulator()
            acc.add(_on_clock(kept, centre, rate))
            self.rates["clock"] = (key, acc)
        fit = self.rates["clock"][1].fit(degree)
        return None if fit is None else dataclasses.replace(fit, centre=centre, rate=rate)

    def fit_family(self, label: str, warmups=None, like: PathFit | None = None) -> PathFit | None:
        """The family ``label`` (:attr:`PathFit.label`); the accelerated one's rates from
        ``like``, else searched with ``warmups``."""
        degree, _, family = label.partition("+")
        if family == CONDITIONS:
            return self.fit_conditions(int(degree))
        if family == ACCELERATED:
            return self.fit_accelerated(int(degree), warmups, like)
        return self.fit(int(degree))


def _kept_series(kept: list):
    """The kept specimens (time, y, cond) as one padded Series."""
    from durability_cli.data import Series

    N, T, C = len(kept), max(len(k[0]) for k in kept), kept[0][2].shape[1]
    t, y, x = np.full((N, T), np.nan), np.full((N, T), np.nan), np.full((N, T, C), np.nan)
    for i, (kt, ky, kx) in enumerate(kept):
        t[i, : len(kt)], y[i, : len(ky)], x[i, : len(kx)] = kt, ky, kx
    lengths = np.array([len(k[0]) for k in kept])
    empty = np.zeros((N, 0))
    return Series([str(i) for i in range(N)], lengths, t, x, y, np.zeros((N, T), int), empty, empty)


def _on_clock(series, centre: np.ndarray, rate: np.ndarray):
    """``series`` on the equivalent time of (centre, rate), its conditions dropped (read)."""
    N, T = series.time.shape
    clock = _clock(series.time, series.cond, centre, rate)
    return dataclasses.replace(series, time=clock, cond=np.zeros((N, T, 0)))


def _search_rates(kept, warmups) -> tuple[np.ndarray, np.ndarray] | None:
    """(centre, rate) of the accelerated family: the conditions' time-weighted means, and the log
    time scale per unit of each that lets the path without conditions forecast the kept specimens
    (a Series) best over ``_SEARCH_FOLDS`` folds of them (a grid of ``_RATE_GRID`` standard
    deviations, then a golden-section search between the best's neighbours; one condition after
    another). None where no rate beats none."""
    dt = np.nan_to_num(np.diff(kept.time, axis=1))[..., None]  # [N, T - 1, 1], 0 in the padding
    x = np.nan_to_num(kept.cond[:, :-1])
    weight = dt.sum()
    if not weight > 0:
        return None
    centre = (dt * x).sum((0, 1)) / weight
    spread = np.sqrt(np.maximum((dt * (x - centre) ** 2).sum((0, 1)) / weight, 0.0))
    active = np.flatnonzero(spread > 1e-9 * (np.abs(centre) + 1.0))
    if not active.size:
        return None
    cache: dict[tuple, float] = {}

    def rates(z: np.ndarray) -> np.ndarray:
        rate = np.zeros(centre.size)
        rate[active] = z / spread[active]
        return rate

    def score(z: np.ndarray) -> float:
        key = tuple(np.round(z, 6))
        if key not in cache:
            found = _cv_scores(_on_clock(kept, centre, rates(z)), warmups, _SEARCH_FOLDS, families=("",))
            cache[key] = min(found.values())
        return cache[key]

    z = np.zeros(active.size)
    best = none = score(z)
    golden = (math.sqrt(5) - 1) / 2
    step = _RATE_GRID[1] - _RATE_GRID[0]
    for j in range(active.size):
        trial = z.copy()
        for g in _RATE_GRID:
            trial[j] = g
            if score(trial) < best:
                best, z = score(trial), trial.copy()
        lo, hi = z[j] - step, z[j] + step  # golden section between the grid's neighbours
        for _ in range(6):
            ta, tb = z.copy(), z.copy()
            ta[j], tb[j] = hi - golden * (hi - lo), lo + golden * (hi - lo)
            if score(ta) < score(tb):
                hi = tb[j]
            else:
                lo = ta[j]
            for t in (ta, tb):
                if score(t) < best:
                    best, z = score(t), t.copy()
    return (centre, rates(z)) if best < none else None


def _em(F, y, n, k: int, start: PathFit | None, scale: float):
    """Maximum-likelihood fixed effects ``beta`` [q], random-effect covariance D [k, k] and noise
    of y_i = F_i beta + X_i u_i + e_i (X_i the first k columns of F_i), by EM, from each
    specimen's rows rotated to a few (F [N, m, q], y [N, m]: R of the QR of its [F y], whose
    rows beyond the first q have no F and so only add to the residual) and its true row count n
    [N]; (None, None, None) where it fails."""
    N, m, q = F.shape
    total = float(n.sum())
    eye, rows = np.eye(k), np.eye(m)
    X = F[:, :, :k]
    S = np.swapaxes(X, 1, 2) @ X
    beta = np.linalg.lstsq(F.reshape(-1, q), y.reshape(-1), rcond=None)[0]
    if start is not None:
        D, noise = start.cov + 1e-9 * scale * eye, float(start.noise)
    else:
        D, noise = 0.1 * scale * eye, 0.1 * scale
    floor = 1e-12 * scale
    try:
        for _ in range(_EM_ITERATIONS):
            V = noise * rows + X @ D @ np.swapaxes(X, 1, 2)  # [N, m, m]
            VF = np.linalg.solve(V, F)
            Vy = np.linalg.solve(V, y[..., None])[..., 0]
            Ft = np.swapaxes(F, 1, 2)
            new_beta = np.linalg.lstsq((Ft @ VF).sum(0), (Ft @ Vy[..., None]).sum(0)[:, 0], rcond=None)[0]
            r = y - F @ new_beta  # [N, m]
            Vr = np.linalg.solve(V, r[..., None])[..., 0]
            u = (np.swapaxes(X, 1, 2) @ Vr[..., None])[..., 0] @ D  # [N, k] (D symmetric)
            # each deviation's posterior covariance, noise D (noise I + S D)^-1: no difference taken
            post = noise * np.swapaxes(
                np.linalg.solve(np.swapaxes(noise * eye + S @ D, 1, 2), np.broadcast_to(D, S.shape)), 1, 2
            )
            post = (post + np.swapaxes(post, 1, 2)) / 2
            new_D = (u[:, :, None] * u[:, None, :] + post).mean(0)
            e = r - (X @ u[..., None])[..., 0]
            new_noise = max(float(((e * e).sum(1) + np.einsum("nij,nji->n", post, S)).sum() / total), floor)
            done = (
                np.abs(new_beta - beta).max() <= _EM_TOLERANCE * (np.abs(beta).max() + 1e-12)
                and np.abs(new_D - D).max() <= _EM_TOLERANCE * (np.abs(D).max() + floor)
                and abs(new_noise - noise) <= _EM_TOLERANCE * noise
            )
            beta, D, noise = new_beta, new_D, new_noise
            if done:
                break
    except np.linalg.LinAlgError:
        return None, None, None
    if not (np.isfinite(beta).all() and np.isfinite(D).all() and math.isfinite(noise)):
        return None, None, None
    w, U = np.linalg.eigh(D)
    return beta, (U * np.clip(w, 0.0, None)) @ U.T, noise


def _conditions(fit: PathFit, cond, size: int, shape: tuple) -> np.ndarray:
    """[B, T, C] the rows' conditions for a fit that reads ``size`` of them; ValueError otherwise."""
    x = np.asarray(np.zeros((0,)) if cond is None else cond, dtype=np.float64)
    if x.shape != (*shape, size):
        got = x.shape[-1] if x.ndim == len(shape) + 1 else 0
        raise ValueError(
            f"the mixed-effects path {fit.label} reads {size} condition(s); these rows have {got}"
        )
    return x


def _block(fit: PathFit, time, y, cond, lengths, warm) -> np.ndarray:
    """[B, T] each specimen's path on its rows from ``warm[b]`` to ``lengths[b]`` (time [B, T] in
    order, NaN padded; y [B, T] read only on the first ``warm[b]`` rows, NaN = unmeasured; cond
    [B, T, C], read by a fit with the conditions) given its measured warm-up: the population's
    path moved toward the warm-up by the best linear unbiased predictor,
    b = mean + (noise I + cov X'X)^-1 cov X'(y - X mean), X the warm-up's rows. NaN elsewhere,
    and for a specimen without a measured warm-up row."""
    time, y = np.asarray(time, dtype=np.float64), np.asarray(y, dtype=np.float64)
    B, T = time.shape
    if not B or not T:
        return np.full((B, T), np.nan)
    pos = np.arange(T)[None, :]
    inside = pos < np.asarray(lengths)[:, None]
    warm = np.asarray(warm)[:, None]
    seen = inside & (pos < warm) & np.isfinite(y) & np.isfinite(time)  # [B, T] the warm-up's rows
    first = np.argmax(seen, axis=1)
    clock = time
    if fit.rate is not None:
        clock = _clock(time, _conditions(fit, cond, fit.rate.size, (B, T)), fit.centre, fit.rate)
    start = np.take_along_axis(clock, first[:, None], axis=1)
    usable = inside & np.isfinite(clock)
    X = _basis(np.where(usable, (clock - start) / fit.tau, 0.0), fit.degree)  # [B, T, k]
    offset = np.zeros((B, T))
    if fit.effect is not None:
        x = _conditions(fit, cond, fit.effect.size, (B, T)) - fit.centre
        offset = _exposures(clock, x, first) / fit.tau @ fit.effect
    gap = np.where(seen, y - X @ fit.mean - offset, 0.0)  # [B, T]
    # The sums over the warm-up's rows run in row order (a running sum's last entry), so that the
    # rows a chunk pads after a specimen (exact zeros here) cannot regroup them: a specimen's path
    # is the same bit for bit alone or in any chunk, as the model's own forecast is. Only the
    # columns up to the chunk's last warm-up row are summed.
    W = int(np.flatnonzero(seen.any(axis=0))[-1]) + 1 if seen.any() else 0
    Xs = X[:, :W] * seen[:, :W, None]
    S = _row_sum(True, Xs)  # [B, k, k] X'X
    k = fit.degree + 1
    lhs = fit.noise * np.eye(k) + fit.cov @ S
    # cov X'(y - X mean), each specimen's on its own
    rhs = (fit.cov @ _row_sum(False, Xs * gap[:, :W, None])[..., None])[..., 0]
    try:
        b = fit.mean + np.linalg.solve(lhs, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:  # rows at one time and no noise to speak of: the least-squares
        # answer, for that specimen alone (the others' as solve gives them, whatever their chunk)
        b = np.stack([fit.mean + _solve_one(m, r) for m, r in zip(lhs, rhs, strict=True)])
    pred = (X @ b[..., None])[..., 0] + offset
    return np.where(usable & (pos >= warm) & seen.any(1)[:, None], pred, np.nan)


def _solve_one(lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """One specimen's lhs^-1 rhs; the pseudo-inverse's where lhs is singular."""
    try:
        return np.linalg.solve(lhs[None], rhs[None, :, None])[0, :, 0]
    except np.linalg.LinAlgError:
        return (np.linalg.pinv(lhs) @ rhs[:, None])[:, 0]


ROW_SUM_BLOCK = 256  # warm-up rows per block of _row_sum's running sums (bounds its temporary)


def _row_sum(outer: bool, a: np.ndarray) -> np.ndarray:
    """``a`` [B, T, k] summed over its rows (axis 1), as outer products a a' [B, k, k] with
    ``outer``: row after row within blocks of ROW_SUM_BLOCK rows that start at row 0, the blocks'
    sums added in order. Rows of zeros after a specimen's (a chunk's padding) add exact zeros, so
    its sum is the same in any chunk."""
    B, T, k = a.shape
    total = np.zeros((B, k, k) if outer else (B, k))
    for lo in range(0, T, ROW_SUM_BLOCK):
        part = a[:, lo : lo + ROW_SUM_BLOCK]
        if outer:
            part = part[..., :, None] * part[..., None, :]
        total = total + np.cumsum(part, axis=1)[:, -1]
    return total


def predict_rows(fit: PathFit, time, y, cond, warm: int) -> np.ndarray:
    """[n - warm] one specimen's path on its rows after the first ``warm`` (time [n] in order, y
    [n] read only on those first rows, NaN = unmeasured; cond [n, C], read by a fit with the
    conditions) given its measured warm-up (:func:`_block`). NaN without a measured warm-up row."""
    time = np.asarray(time, dtype=np.float64)
    x = None if cond is None else np.asarray(cond, dtype=np.float64)[None]
    got = _block(fit, time[None], np.asarray(y, dtype=np.float64)[None], x, [time.size], [warm])
    return got[0, warm:]


def predict(fit: PathFit, hist_t, hist_y, future_t) -> np.ndarray:
    """The path without the conditions at ``future_t`` given a measured warm-up (NaN without
    one): :func:`predict_rows` for rows given as warm-up and future apart."""
    if fit.effect is not None or fit.rate is not None:
        raise ValueError(
            "a mixed-effects path that reads the conditions forecasts from rows with them (predict_rows)"
        )
    t, v = _measured(np.asarray(hist_t, dtype=np.float64), np.asarray(hist_y, dtype=np.float64))
    ft = np.asarray(future_t, dtype=np.float64)
    return predict_rows(fit, np.r_[t, ft], np.r_[v, np.full(ft.size, np.nan)], None, t.size)


def forecast_block(fit: PathFit, series, last: np.ndarray) -> np.ndarray:
    """[B, T] each specimen's path on the rows after ``last[b]`` (its last warm-up row) from its
    measured rows up to it; NaN elsewhere (and where it has no measured row)."""
    return _block(fit, series.time, series.y, series.cond, series.lengths, np.asarray(last) + 1)


def _errors(fit: PathFit, series, warm: np.ndarray) -> np.ndarray:
    """Errors (prediction - truth) on the measured rows after each specimen's first ``warm`` rows."""
    pred = forecast_block(fit, series, np.asarray(warm) - 1)
    B, T = series.y.shape
    after = (np.arange(T)[None, :] >= np.asarray(warm)[:, None]) & np.isfinite(series.y)
    after &= (np.arange(T)[None, :] < np.asarray(series.lengths)[:, None]) & np.isfinite(series.time)
    return (pred - series.y)[after]


def _labels(families=FAMILIES) -> list[str]:
    return [f"{d}+{family}" if family else str(d) for d in DEGREES for family in families]


def _fits(acc: _Accumulator, warmups) -> dict[str, PathFit]:
    """Every family the accumulated specimens can fit, by label (:attr:`PathFit.label`)."""
    return {label: f for label in _labels() if (f := acc.fit_family(label, warmups)) is not None}


def _best(scores: dict[str, float]) -> str:
    """The label of the least error; on a tie the lower degree, and without the conditions."""
    return min(scores, key=lambda label: (scores[label], label))


def choose(train_parts: Iterable, val_parts: Iterable, warmups) -> tuple[PathFit | None, dict[str, float]]:
    """The fit on the training specimens (Series, group by group) of the family (degree, with or
    without the conditions) whose forecasts of the validation specimens (Series, each with its
    warm-up rows from ``warmups(lengths)``) err least, and every family's validation RMSE by
    label. None where no degree has enough training specimens."""
    acc = _Accumulator()
    for part in train_parts:
        acc.add(part)
    fits = _fits(acc, warmups)
    if not fits:
        return None, {}
    errors: dict[str, list[np.ndarray]] = {label: [] for label in fits}
    for part in val_parts:
        warm = np.asarray(warmups(part.lengths))
        for label, f in fits.items():
            errors[label].append(_errors(f, part, warm))
    scores = {}
    for label, e in errors.items():
        err = np.concatenate(e) if e else np.zeros(0)
        scores[label] = float(np.sqrt(np.mean(err**2))) if err.size and np.isfinite(err).all() else math.inf
    best = _best(scores)
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


def refit(parts: Iterable, label: str, like: PathFit | None = None, warmups=None) -> PathFit | None:
    """The family ``label`` (:attr:`PathFit.label`) fitted over every specimen of ``parts``
    (Series); the accelerated family on the rates of ``like`` (or searched with ``warmups``)."""
    acc = _Accumulator()
    for part in parts:
        acc.add(part)
    return acc.fit_family(label, warmups, like)


def _cv_scores(series, warmups, folds: int = 5, seed: int = 0, families=FAMILIES) -> dict[str, float]:
    """Each family's pooled RMSE (inf where a fold cannot fit it) over ``folds`` folds of the
    specimens of ``series``, each fold forecast from its warm-up (``warmups(lengths)`` rows) by
    the fit on the others; families that no fold can fit are left out."""
    n = len(series.ids)
    order = np.random.default_rng(seed).permutation(n)
    sse = {label: 0.0 for label in _labels(("",))}
    count = dict.fromkeys(sse, 0)
    failed: set[str] = set()
    for k in range(min(folds, n)):
        held = np.sort(order[k::folds])
        rest = np.setdiff1d(np.arange(n), held)
        acc = _Accumulator()
        acc.add(series.take(rest))
        part = series.take(held)
        warm = np.asarray(warmups(part.lengths))
        for label in _labels(families):
            f = acc.fit_family(label, warmups)
            if f is None:
                failed.add(label)  # a family one fold cannot fit is not chosen
                continue
            err = _errors(f, part, warm)
            sse[label] = sse.get(label, 0.0) + (float(err @ err) if np.isfinite(err).all() else math.inf)
            count[label] = count.get(label, 0) + err.size
    return {
        label: math.sqrt(sse[label] / count[label])
        if count[label] and math.isfinite(sse[label]) and label not in failed
        else math.inf
        for label in sse
    }


def cross_validated(
    series, warmups, folds: int = 5, seed: int = 0
) -> tuple[PathFit | None, dict[str, float]]:
    """The fit on every specimen of ``series`` of the family whose forecasts err least over
    ``folds`` folds of the specimens (:func:`_cv_scores`), and each family's pooled RMSE by
    label. For a table with no validation split of its own (the benchmarks' baseline)."""
    scores = _cv_scores(series, warmups, folds, seed)
    best = _best(scores)
    if not math.isfinite(scores[best]):
        return None, scores
    return refit([series], best, warmups=warmups), scores
