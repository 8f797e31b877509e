"""Backtests: hide each specimen's measurements after one or more cut-offs, forecast, and score the
model and the baselines on the hidden rows."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np
import pandas as pd

from durability_cli import limits, mixed_effects
from durability_cli.artifact import ModelBundle
from durability_cli.data import Series, to_series
from durability_cli.errors import InputError, MissingColumn, check_numbers
from durability_cli.forecasting import (
    Ends,
    ForecastConfig,
    drawn_paths,
    effective_max_step,
    interval_levels,
    keeps_ends,
    last_observed,
    own_steps,
    path_crossings,
    planned_steps,
    resolve_bounds,
    rollout,
)
from durability_cli.metrics import (
    BASELINES,
    PooledScores,
    baseline_frame,
    condition_trends,
    first_crossing,
    specimen_errors,
)
from durability_cli.outputs import clip
from durability_cli.schema import Dataset, Schema, id_codes, measured_lengths, run_lengths, specimen_starts

# the end-of-life interval a backtest scores (p10-p90, as forecast --eol-out) and its median
EOL_INTERVAL = (0.1, 0.5, 0.9)


@dataclass(frozen=True)
class BacktestConfig:
    """Where each specimen's truth is hidden and what is scored. Exactly one of ``context``,
    ``context_frac`` and ``origins`` chooses the cut-offs."""

    context: int | None = None  # rows observed per specimen before the forecast
    context_frac: float | None = None  # share of each specimen's rows observed before the forecast
    origins: int | None = None  # K rolling cut-offs per specimen (the prognostics metrics need K > 1)
    horizon: int | None = None  # score at most N steps after each cut-off; None = to the end
    baselines: bool = True  # also score persistence, linear trend, exponential fit, mixed-effects path
    # the end-of-life interval's ends past the horizon kept as times (the stretched mean's
    # crossings, conditions held) instead of +inf: calibrate measures its shift on them
    eol_past_horizon: bool = False

    def validate(self) -> None:
        check_numbers(
            whole={"context": self.context, "origins": self.origins, "horizon": self.horizon},
            real={"context_frac": self.context_frac},
        )
        cutoffs(np.zeros(0, dtype=np.int64), self)
        if self.horizon is not None and self.horizon < 1:
            raise InputError(
                f"`horizon` must be at least 1 step, got {self.horizon}; leave it out to score every hidden row"
            )


@dataclass
class EvalResult:
    report: dict  # overall scores (JSON-serialisable after metrics.to_jsonable)
    per_series: pd.DataFrame  # one row per (model, specimen)
    backtest: pd.DataFrame  # one row per forecast point and model
    specimens: pd.DataFrame  # one row per specimen: the model's mean error, the conditions (EvalStream)
    # the same table for each compared model, by its name (evaluate -m A -m B)
    compared_specimens: dict[str, pd.DataFrame] = field(default_factory=dict)


def _names(ids: list[str], at_most: int = 5) -> str:
    return ", ".join(ids[:at_most]) + (", ..." if len(ids) > at_most else "")


def cutoffs(lengths: np.ndarray, backtest: BacktestConfig) -> tuple[np.ndarray, np.ndarray]:
    """(specimen index, cut-off) pairs; the cut-off is the number of rows observed."""
    context, context_frac, origins = backtest.context, backtest.context_frac, backtest.origins
    chosen = [x is not None for x in (context, context_frac, origins)]
    if sum(chosen) != 1:
        raise InputError("evaluate needs exactly one of `context` N, `context_frac` F or `origins` K")
    n = len(lengths)
    if context is not None:
        if context < 1:
            raise InputError(f"`context` must be at least 1, got {context}")
        spec, cut = np.arange(n), np.full(n, context)
    elif context_frac is not None:
        if not 0.0 < context_frac < 1.0:
            raise InputError(f"`context_frac` must be between 0 and 1, got {context_frac}")
        spec, cut = np.arange(n), np.maximum(1, np.round(lengths * context_frac).astype(int))
    else:
        if origins < 1:
            raise InputError(f"`origins` must be at least 1, got {origins}")
        k = np.arange(1, origins + 1)
        spec = np.repeat(np.arange(n), origins)
        cut = np.maximum(2, (lengths[spec] * np.tile(k, n) / (origins + 1)).astype(int))
        # more origins than a specimen has rows to cut at: each cut-off once (a repeated one
        # weighted its forecast twice or more in every score), so a short specimen gets fewer
        new = np.r_[True, (spec[1:] != spec[:-1]) | (cut[1:] != cut[:-1])][: len(spec)]  # pairs come sorted
        spec, cut = spec[new], cut[new]
    keep = cut < lengths[spec]  # something must be left to forecast
    return spec[keep], cut[keep]


def evaluate(
    bundle: ModelBundle,
    ds: Dataset,
    cfg: ForecastConfig,
    backtest: BacktestConfig,
    others: dict[str, ModelBundle] | None = None,
) -> EvalResult:
    """Backtest the specimens of ``ds``: the table as one group of :class:`EvalStream`."""
    stream = EvalStream(bundle, [ds], cfg, backtest, source=ds.source, others=others)
    parts = list(stream)
    per_series = parts[0][0] if len(parts) == 1 else pd.concat([p[0] for p in parts], ignore_index=True)
    points = parts[0][1] if len(parts) == 1 else pd.concat([p[1] for p in parts], ignore_index=True)
    return EvalResult(stream.report, per_series, points, stream.specimens, stream.compared_specimens)


class EvalStream:
    """Backtest a sequence of Datasets (groups of whole specimens) one at a time.

    Iterating yields (per_series, backtest) for each group; afterwards ``report`` holds the
    scores of all groups pooled (``metrics.PooledScores``: a single group's are
    ``metrics.score_backtest``'s, several groups' equal them up to float rounding).

    ``others`` (name -> model bundle) are scored beside ``bundle`` on the same cut-offs, under
    their names; ``bundle`` stays "model", the one every other column's skill is measured
    against (see :func:`check_comparable`).
    """

    def __init__(
        self,
        bundle: ModelBundle,
        groups,
        cfg: ForecastConfig,
        backtest: BacktestConfig,
        *,
        source: str = "",
        others: dict[str, ModelBundle] | None = None,
    ):
        cfg.validate()
        backtest.validate()
        self.others = dict(others or {})
        check_comparable(bundle, self.others)
        self.bundle, self.groups, self.cfg, self.backtest, self.source = bundle, groups, cfg, backtest, source
        self.report: dict = {}
        # one row per specimen, after the run: the model's scored rows and mean error, and its
        # conditions over the rows forecast (metrics.specimen_errors; what by_condition ranks)
        self.specimens: pd.DataFrame | None = None
        self.compared_specimens: dict[str, pd.DataFrame] = {}  # the same, per compared model

    def __iter__(self) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
        pool = None
        sampled = False
        specimens = []  # each group's specimens: mean error and conditions (condition_trends)
        compared: dict[str, list] = {name: [] for name in self.others}  # the same, per compared model
        # each model's steps cut (--max-step auto), of how many cut-offs: the model's, then the others'
        cut = {name: np.zeros(2, dtype=np.int64) for name in ["model", *self.others]}
        given: list[str] = []  # every specimen's id (text), and those the model's forecasts scored
        scored: set[str] = set()
        for ds in self.groups:
            codes, text = id_codes(ds.frame, ds.schema.id_col)
            given += [str(text[c]) for c in np.unique(codes)]
            frames = backtest_frames(self.bundle, ds, self.cfg, self.backtest, self.others)
            if frames is None:
                continue
            mine = frames.points[(frames.points["model"] == "model") & np.isfinite(frames.points["y_true"])]
            scored.update(map(str, mine["specimen"].unique()))
            points, history, qs, drivers = frames.points, frames.history, frames.quantiles, frames.drivers
            for name, group_cut in frames.cut.items():
                cut[name] += group_cut
            if pool is None:
                pool = PooledScores(
                    quantiles=qs,
                    threshold=self.cfg.threshold,
                    direction=self.cfg.direction,
                    time_unit="days" if self.bundle.schema.time_is_datetime else "time",
                )
            sampled = qs is not None
            specimens.append(specimen_errors(points, drivers))
            for name, rows in compared.items():
                rows.append(specimen_errors(points, drivers, name))
            yield pool.add(points, history), points
        if pool is None:
            raise InputError(
                f"{self.source}: no specimen has a measured {self.bundle.schema.target} inside a warm-up "
                "with rows left "
                "after it; lower `context` if the specimens are shorter than it, or raise it past "
                "unmeasured first rows"
            )
        self.report = pool.report()
        self.report["target"] = self.bundle.schema.target
        self.report["warnings"] = self._warnings(given, scored)
        self.specimens = pd.concat(specimens, ignore_index=True)
        self.report["by_condition"] = condition_trends(self.specimens, self.report["models"]["model"]["rmse"])
        if compared:  # evaluate -m A -m B: whether each compared model's error follows them too
            self.compared_specimens = {
                name: pd.concat(rows, ignore_index=True) for name, rows in compared.items()
            }
            self.report["by_condition_compared"] = {
                name: condition_trends(rows, self.report["models"][name]["rmse"])
                for name, rows in self.compared_specimens.items()
            }
        self.report["settings"] = {
            "context": self.backtest.context,
            "context_frac": self.backtest.context_frac,
            "origins": self.backtest.origins,
            "horizon": self.backtest.horizon,
            "samples": self.cfg.samples if sampled else 0,
            "seed": self.cfg.seed,
            "source": self.source,
            **self._steps(self.bundle, cut["model"]),
        }
        if self.others:  # each compared model's own steps: its --max-step auto finds its own
            self.report["settings"]["compared_steps"] = {
                name: self._steps(other, cut[name]) for name, other in self.others.items()
            }

    def _warnings(self, given: list[str], scored: set[str]) -> list[str]:
        """What the scores leave out or flatter: specimens without a measured row after their
        cut-off (not scored), and specimens named as the model's training or validation ones."""
        from durability_cli.calibration import seen_specimens

        out = []
        left = [i for i in given if i not in scored]
        if left:
            why = (
                f"after the first {self.backtest.context} rows"
                if self.backtest.context
                else "after a cut-off"
            )
            fix = "; lower `context` to score them" if self.backtest.context else ""
            out.append(
                f"{len(left)} of {len(given)} specimen(s) are not scored, with no measured "
                f"{self.bundle.schema.target} {why} ({_names(left)}){fix}"
            )
        if self.backtest.baselines and mixed_effects.NAME not in self.bundle.summary:
            out.append(
                f"no {mixed_effects.NAME} baseline: the model file has no path fitted (it trained on "
                f"fewer than {mixed_effects.MIN_SPECIMENS} specimens measured long enough for one, or "
                "before the baseline existed); retrain on more specimens to be scored against it"
            )
        for name, bundle in {"model": self.bundle, **self.others}.items():
            seen = seen_specimens(bundle, sorted(scored))
            if seen:
                who = "the model" if name == "model" else f"model {name}"
                out.append(
                    f"{len(seen)} of the {len(scored)} specimen(s) scored have the names of specimens "
                    f"{who} trained or validated on ({_names(seen)}): if they are the same specimens, "
                    "the scores flatter it; backtest on specimens it never saw"
                )
        return out

    def _steps(self, bundle: ModelBundle, cut: np.ndarray) -> dict:
        """The steps a model's backtests ran (forecast's --max-step), how many auto cut and in how
        many backtests, and what its calibration ran (its block's max_step and cut_steps; None:
        uncalibrated, or older); ``draws``: whether its backtests drew paths, which a calibration
        scales (a point model's or --samples 0's mean it does not move)."""
        block = bundle.summary.get("calibration") or {}
        return {
            "max_step": effective_max_step(bundle, self.cfg.max_step) or "off",
            "cut_steps": int(cut[0]),
            "cut_backtests": int(cut[1]),
            "calibrated_max_step": block.get("max_step"),
            "calibrated_cut_steps": block.get("cut_steps"),
            "draws": drawn_paths(bundle, self.cfg) > 0,
        }


def check_comparable(bundle: ModelBundle, others: dict[str, ModelBundle]) -> Schema:
    """The columns a backtest of ``bundle`` beside ``others`` reads from the table: every model's
    conditions and static columns (each model then reads its own: a model with humidity can be
    compared with one without). The models must take the specimens, times and durability from
    the same columns, and no column may be a condition for one and static for another; else
    InputError naming the model and the columns."""
    reserved = {"model", *BASELINES, mixed_effects.NAME}
    s = bundle.schema
    conditions, static = list(s.covariates), list(s.static)
    for name, other in others.items():
        if name in reserved:
            raise InputError(f"a compared model cannot be named {name!r} (a column of the report); rename it")
        o = other.schema
        roles = ("id_col", "time_col", "target", "id_synthetic", "time_is_datetime")
        differ = [k for k in roles if getattr(o, k) != getattr(s, k)]
        if differ:
            mine, theirs = s.to_dict(), o.to_dict()
            diff = "; ".join(f"{k}: {theirs[k]} vs {mine[k]}" for k in differ)
            raise InputError(
                f"{name}: it reads the specimens, times or durability from other columns than the first "
                f"model ({diff}); compare models of the same id, time and target columns, or evaluate "
                "them one at a time"
            )
        conditions += [c for c in o.covariates if c not in conditions]
        static += [c for c in o.static if c not in static]
    both = sorted(set(conditions) & set(static))
    if both:
        raise InputError(
            f"column {', '.join(repr(c) for c in both)} is a condition for one compared model and static "
            "for another; evaluate them one at a time"
        )
    return replace(s, covariates=tuple(conditions), static=tuple(static))


@contextlib.contextmanager
def naming_the_model(bundle: ModelBundle, others: dict[str, ModelBundle]) -> Iterator[None]:
    """Reading a table for models compared with ``bundle``: a column the table lacks is named with
    the compared model that needs it ("the model needs ..." said the first model's name for a
    column only another reads)."""
    try:
        yield
    except MissingColumn as exc:
        if not (others and exc.model and exc.role in ("condition", "static")):
            raise
        if exc.column in (*bundle.schema.covariates, *bundle.schema.static):
            raise
        who = [name for name, o in others.items() if exc.column in (*o.schema.covariates, *o.schema.static)]
        if not who:
            raise
        raise exc.reworded(
            exc.template.replace("the model needs", f"compared model '{who[0]}' needs", 1)
        ) from None


def _read_by(ds: Dataset, bundle: ModelBundle) -> Dataset:
    """``ds`` as ``bundle`` reads it: its own conditions and static columns of the table (which
    may hold other compared models' columns too, check_comparable)."""
    return ds if ds.schema == bundle.schema else replace(ds, schema=bundle.schema)


class Frames(NamedTuple):
    """A backtest of one group of specimens (backtest_frames)."""

    points: pd.DataFrame  # every forecast row: the model's, then the others' and the baselines'
    history: pd.DataFrame  # the warm-up rows each forecast was fed
    quantiles: list[float] | None  # the quantile levels of ``points`` (None: point forecasts)
    drivers: pd.DataFrame  # each cut-off's conditions over its forecast rows (forecast_drivers)
    # each model's future steps --max-step auto cut, and of how many cut-offs ("model", then the others)
    cut: dict[str, tuple[int, int]]


def backtest_frames(
    bundle: ModelBundle,
    ds: Dataset,
    cfg: ForecastConfig,
    backtest: BacktestConfig,
    others: dict[str, ModelBundle] | None = None,
) -> Frames | None:
    """The backtest of ``ds`` (:class:`Frames`); None when no specimen is long enough for a
    cut-off. ``others``' rows follow the model's, under their names; each model reads its own
    columns of ``ds`` (check_comparable)."""
    series = to_series(_read_by(ds, bundle))
    N, T = series.y.shape
    P, S = N * (backtest.origins or 1), max(cfg.samples, 1)  # at most this many backtests
    limits.check_memory(
        P * T * (8 * (2 * series.cond.shape[2] + 12) + 12 * S),  # the backtests' arrays and every path
        f"{ds.source}: evaluate with {P:,} backtest(s) ({N:,} specimen(s) x {backtest.origins or 1:,} origin(s)) "
        f"over up to {T:,} steps x {S:,} sample path(s)",
        "use fewer `origins` or `samples`, or --chunk-specimens",
    )
    # the cut-offs spread over each specimen's measured rows: a share of rows, or K origins, that
    # counted the rows planned after the last measurement cut past it and scored nothing
    spec, cut = cutoffs(last_observed(series) + 1, backtest)
    horizon = backtest.horizon
    if len(spec) == 0:
        return None
    origin = _origin_numbers(spec)
    view = series.take(spec)  # one pseudo-specimen per (specimen, cut-off)
    end = view.lengths if horizon is None else np.minimum(view.lengths, cut + horizon)
    truth, hidden = _hide(view, origin, cut, end)
    last_obs = last_observed(hidden)
    usable = last_obs >= 0
    if not usable.any():
        return None
    keep = np.flatnonzero(usable)
    if not usable.all():
        hidden = hidden.take(keep)
        truth, cut, origin, last_obs = truth[usable], cut[usable], origin[usable], last_obs[usable]
        view = view.take(keep)
    past = backtest.eol_past_horizon
    frame, qs, cut_steps = _model_rows(bundle, hidden, view, truth, origin, last_obs, cfg, ds.source, past)
    frames, cuts = [frame], {"model": cut_steps}
    drivers = forecast_drivers(ds, bundle.schema, view, origin, last_obs + 1, end[keep])
    for name, other in (others or {}).items():  # the same cut-offs, another model
        own = hidden
        if other.schema != bundle.schema:  # its own columns of the same rows
            own = _hide(to_series(_read_by(ds, other)).take(spec[keep]), origin, cut, end[keep])[1]
            # and the columns only it reads, beside the first model's (by_condition_compared)
            theirs = forecast_drivers(ds, other.schema, own, origin, last_obs + 1, end[keep])
            drivers = drivers.join(theirs[[c for c in theirs.columns if c not in drivers.columns]])
        rows, levels, cuts[name] = _model_rows(
            other, own, view, truth, origin, last_obs, cfg, ds.source, past
        )
        frames.append(rows.assign(model=name))
        qs = qs or levels
    warm = np.isfinite(hidden.y)
    h_idx, ht_idx = np.nonzero(warm)
    history = pd.DataFrame(
        {
            "specimen": np.asarray(view.ids, dtype=object)[h_idx],
            "origin": origin[h_idx],
            "time": hidden.time[h_idx, ht_idx],
            "y": hidden.y[h_idx, ht_idx],
        }
    )
    if backtest.baselines:
        future = frame[["specimen", "origin", "time", "step", "lead", "y_true"]]
        frames += [baseline_frame(history, future, name) for name in BASELINES]
        paths = bundle.summary.get(mixed_effects.NAME)
        if paths is not None:  # the model file's population of paths (train fitted it)
            block = mixed_effects.forecast_block(mixed_effects.PathFit.from_json(paths), hidden, last_obs)
            cut = pd.MultiIndex.from_arrays([np.asarray(view.ids, dtype=object), origin])
            p = cut.get_indexer(pd.MultiIndex.from_frame(future[["specimen", "origin"]]))
            t = future["step"].to_numpy() + last_obs[p]
            frames.append(future.assign(y_pred=block[p, t], model=mixed_effects.NAME))
    return Frames(pd.concat(frames, ignore_index=True), history, qs, drivers, cuts)


def forecast_drivers(
    ds: Dataset, schema: Schema, view: Series, origin: np.ndarray, first: np.ndarray, end: np.ndarray
) -> pd.DataFrame:
    """One row per cut-off: the mean of each condition over the rows it forecast (row ``first``,
    the one after the last measured value of the warm-up, to ``end``), each static column's value
    (a categorical one's label, as text), and ``rows``, how many rows that mean is over. What
    ``metrics.condition_trends`` sets each specimen's error against."""
    pos = np.arange(view.cond.shape[1])[None, :]
    ahead = (pos >= first[:, None]) & (pos < end[:, None])  # [P, T]
    out = {"specimen": np.asarray(view.ids, dtype=object), "origin": origin, "rows": ahead.sum(1)}
    with np.errstate(invalid="ignore"):
        for j, name in enumerate(schema.covariates):
            values = np.where(ahead, view.cond[:, :, j], np.nan)
            seen = np.isfinite(values)
            total = np.where(seen, values, 0.0).sum(1)
            out[_driver_name(name)] = np.where(seen.any(1), total / np.maximum(seen.sum(1), 1), np.nan)
    # the numeric static columns, in to_series' order (it keeps the ones of a numeric dtype)
    numeric = [c for c in schema.static if pd.api.types.is_numeric_dtype(ds.frame[c])]
    for j, name in enumerate(numeric):
        out[_driver_name(name)] = view.static_numeric[:, j]
    # and the categorical ones' labels (material A, B), in to_series' order too
    for j, name in enumerate(c for c in schema.static if c not in numeric):
        out[_driver_name(name)] = np.asarray(view.static_categorical[:, j], dtype=object)
    return pd.DataFrame(out)


# the per-specimen tables' own columns (here and metrics.specimen_errors): a condition of that name
# is reported as "NAME (condition)"
_TAKEN = ("specimen", "origin", "rows", "n", "error")


def _driver_name(name: str) -> str:
    return f"{name} (condition)" if name in _TAKEN else name


def _hide(view: Series, origin: np.ndarray, cut: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, Series]:
    """(truth [P, T], the pseudo-specimens as the forecast sees them): each row of ``view`` cut
    off after ``cut`` measured rows and ended at ``end`` rows."""
    pos = np.arange(view.y.shape[1])[None, :]
    inside = pos < end[:, None]
    hidden = Series(
        # the first cut-off draws as `forecast` does for the specimen (its id seeds the paths), so
        # a backtest scores the forecast the same cut-off gives; the others draw apart
        ids=[str(sid) if o == 0 else f"{sid}#{o}" for sid, o in zip(view.ids, origin, strict=True)],
        lengths=end,
        time=np.where(inside, view.time, np.nan),
        cond=np.where(inside[..., None], view.cond, np.nan),
        y=np.where(pos < cut[:, None], view.y, np.nan),
        row=np.where(inside, view.row, -1),
        static_numeric=view.static_numeric,
        static_categorical=view.static_categorical,
    )
    return np.where(inside, view.y, np.nan), hidden


def _model_rows(
    bundle: ModelBundle,
    hidden: Series,
    view: Series,
    truth,
    origin,
    last_obs,
    cfg: ForecastConfig,
    source: str,
    past_horizon: bool = False,
) -> tuple[pd.DataFrame, list[float] | None, tuple[int, int]]:
    """One model's forecast rows of the backtest (named "model"), its quantile levels (None:
    a point model), and how many future steps of how many cut-offs --max-step auto cut;
    ``past_horizon``: interval_levels' option."""
    # with an end-of-life interval, each member's run is kept at each specimen's last row, for
    # the run past the horizon to go on from there
    ends = Ends() if keeps_ends(bundle, cfg) else None
    # the steps forecast runs (--max-step, by default auto): the rows it inserts are run and
    # never scored
    hidden, inserted, cut_by = planned_steps(bundle, hidden, last_obs, cfg.max_step, source)
    cut = (int(cut_by.sum()), int((cut_by > 0).sum()))
    mean, paths = rollout(bundle, hidden, last_obs, cfg, source=source, ends=ends, inserted=inserted)
    bounds = resolve_bounds(bundle, cfg.bounds)  # scored as forecast writes them: clipped
    if bounds is not None:
        mean = clip(mean, bounds)
        paths = None if paths is None else clip(paths.astype(np.float64), bounds)
    T = mean.shape[1]
    sel = np.isfinite(mean) & ~inserted[:, :T]  # [P, T] forecast rows
    p_idx, t_idx = np.nonzero(sel)
    step = own_steps(inserted, last_obs)[p_idx, t_idx]  # the plan's own steps ahead
    frame = pd.DataFrame(
        {
            "specimen": np.asarray(view.ids, dtype=object)[p_idx],
            "origin": origin[p_idx],
            "time": hidden.time[p_idx, t_idx],
            "step": step,
            "lead": hidden.time[p_idx, t_idx] - hidden.time[p_idx, last_obs[p_idx]],  # time after the cut-off
            "y_true": truth[p_idx, last_obs[p_idx] + step],
            "y_pred": mean[p_idx, t_idx],
        }
    )
    mean_eol = None
    if cfg.threshold is not None:
        # the mean path's crossing where forecast finds it: on the steps it ran, cut ones included
        # (the plan's own rows alone would interpolate across a cut step's pieces)
        # (+inf: no crossing within the horizon, as eol_p90's; NaN is left to the baselines' rows)
        mean_eol = path_crossings(hidden, last_obs, mean[:, None, :], cfg.threshold, cfg.direction)[:, 0]
        frame["eol_time"] = np.where(np.isnan(mean_eol), np.inf, mean_eol)[p_idx]
    qs = None
    if paths is not None:
        vals = np.moveaxis(paths, 1, 2)[sel].astype(np.float64)  # [R, S]; y_pred stays the mean path
        qs = sorted(set(cfg.quantiles) | {0.1, 0.9, 0.5, 0.05, 0.95, 0.25, 0.75})
        for q, col in zip(qs, np.quantile(vals, qs, axis=1), strict=True):
            frame[f"q{q:g}"] = col
        if cfg.threshold is not None:  # each forecast's end-of-life interval over its paths (inf: later)
            crossings = path_crossings(hidden, last_obs, paths, cfg.threshold, cfg.direction)
            # every specimen's records in order (the chunks' own let go: one copy held, not two)
            kept, ends = (None if ends is None else ends.take(np.arange(len(last_obs)))), None
            # the mean run past the horizon clipped as the paths are (a monotonic model's
            # training range, unless bounds were given), as forecast clips it
            levels, _ = interval_levels(
                bundle,
                hidden,
                last_obs,
                crossings,
                replace(cfg, bounds=bounds),
                EOL_INTERVAL,
                source,
                past_horizon=past_horizon,
                mean_eol=mean_eol,
                ends=kept,
                want_prob=False,
            )
            for name, v in zip(("eol_p10", "eol_p50", "eol_p90"), levels, strict=True):
                frame[name] = v[p_idx]
    frame["model"] = "model"
    return frame, qs, cut


def _origin_numbers(spec: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal specimen indices."""
    starts = np.r_[0, np.flatnonzero(spec[1:] != spec[:-1]) + 1]
    counts = run_lengths(starts, len(spec))
    return np.arange(len(spec)) - np.repeat(starts, counts)


def end_of_life_backtest(
    bundle: ModelBundle, ds: Dataset, cfg: ForecastConfig, backtest: BacktestConfig
) -> pd.DataFrame:
    """Predicted against measured end of life: hide each specimen's truth after its cut-off,
    forecast with ``cfg.threshold``, and find where the measured values first cross it.

    One cut-off per specimen (``context`` or ``context_frac``; ``horizon`` limits the rows
    forecast). Returns one row per specimen with a cut-off: ``specimen``, ``cutoff_time`` (its
    last measured time before the cut-off), ``eol_true`` (NaN when the data never reach the
    threshold), ``censor_time`` (the last measured time), ``eol_pred`` (the median crossing over
    the Monte Carlo paths, else the mean path's), ``eol_low``/``eol_high`` (the lowest and highest
    of ``cfg.quantiles``), ``horizon_end`` and ``status`` (as in ``forecast --eol-out``). Times
    are model times: the number itself, or days since 1970-01-01 for dates.
    """
    from dataclasses import replace

    from durability_cli.forecasting import forecast

    if cfg.threshold is None:
        raise InputError("the end-of-life comparison needs `threshold`")
    if backtest.origins is not None:
        raise InputError(
            "the end-of-life comparison uses one cut-off per specimen: give `context` or `context_frac`, "
            "not `origins`"
        )
    backtest.validate()
    s = ds.schema
    starts = specimen_starts(ds.frame, s.id_col)
    lengths = run_lengths(starts, len(ds.frame))
    spec, cut = cutoffs(measured_lengths(ds.frame, s, starts), backtest)  # over the measured rows
    if not len(spec):
        raise InputError(f"{ds.source}: every specimen is shorter than the cut-off; lower `context`")
    row_spec = np.repeat(np.arange(len(starts)), lengths)  # [rows]
    pos = np.arange(len(ds.frame)) - starts[row_spec]
    cut_of = np.full(len(starts), -1)
    cut_of[spec] = cut
    end = np.where(cut_of >= 0, lengths if backtest.horizon is None else cut_of + backtest.horizon, -1)
    keep = (cut_of[row_spec] >= 0) & (pos < end[row_spec])
    frame = ds.frame.copy()
    frame.loc[pos >= cut_of[row_spec], s.target] = np.nan
    frame = frame[keep].reset_index(drop=True)
    plan = replace(ds, frame=frame, t=np.ascontiguousarray(ds.t[keep]), notes=[])
    ids = np.asarray(ds.frame[s.id_col].astype(str).to_numpy()[starts[spec]], dtype=object)
    result = forecast(bundle, plan, cfg)
    eol = result.eol
    if s.id_col in eol.columns:  # one row per specimen of the plan, in its order
        eol = eol.set_index(eol[s.id_col].astype(str)).reindex(ids)
    if s.time_is_datetime:  # back to model time (days since 1970-01-01)
        for col in [
            c for c in eol.columns if c.startswith("eol_") or c in ("last_measured_time", "horizon_end")
        ]:
            eol[col] = (eol[col] - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
    levels = sorted(cfg.quantiles)
    low, high = (f"eol_p{q * 100:g}".replace(".", "_") for q in (levels[0], levels[-1]))
    middle = "eol_p50" if "eol_p50" in eol.columns else "eol_time"
    y = ds.frame[s.target].to_numpy(np.float64)
    truth, censor = [], []
    for k, i in enumerate(spec):
        rows = slice(starts[i], starts[i] + end[i])
        t, v = ds.t[rows], y[rows]
        after = t >= eol["last_measured_time"].iloc[k]  # from the warm-up's last measurement on
        # (a specimen the forecast skipped has NaN there: no row is after it, no crossing)
        truth.append(first_crossing(t[after], v[after], cfg.threshold, cfg.direction))
        measured = t[np.isfinite(v)]
        censor.append(measured.max() if measured.size else np.nan)
    table = pd.DataFrame(
        {
            "specimen": ids,
            "cutoff_time": eol["last_measured_time"].to_numpy(float),
            "eol_true": truth,
            "censor_time": censor,
            "eol_pred": eol[middle].to_numpy(float),
            "eol_low": eol[low].to_numpy(float) if low in eol.columns else np.nan,
            "eol_high": eol[high].to_numpy(float) if high in eol.columns else np.nan,
            "horizon_end": eol["horizon_end"].to_numpy(float),
            "status": eol["status"].to_numpy(),
        }
    )
    table.attrs["warnings"] = result.warnings  # the forecast's (steps cut, extrapolation, ...)
    return table
