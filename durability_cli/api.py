"""The Python API: train, forecast, evaluate, plot, save and load, from a notebook or a script.

    import durability_cli as dur
    model = dur.train(df, target="capacity", static=["material"], epochs=200)
    fc = model.forecast(plan, samples=200, threshold=0.8)      # fc.table, fc.end_of_life
    report = model.evaluate(test, context=40)                   # report.table(), report.to_dict()
    model.plot_forecast(plan, threshold=0.8)                     # a matplotlib Figure
    model.save("capacity.safetensors"); model = dur.load("capacity.safetensors")

Every table argument is a pandas DataFrame, a pyarrow Table, or a path (CSV, Parquet, a folder of
Parquet files; ``-`` is stdin). Errors are ``DurabilityError`` subclasses whose message names the
argument at fault (``folds must be at least 2``); the command line writes the same message with
its flags. The commands of ``durability_cli.cli`` are thin layers over the functions below; the
``*_files`` functions are the commands' pipelines, which also write their outputs a group of
specimens at a time.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from durability_cli.config import AUTO_NUMBERS, AUTO_SWITCHES, ModelConfig, TrainConfig, auto_number
from durability_cli.errors import DurabilityError, InputError, check_numbers

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from durability_cli.artifact import ModelBundle
    from durability_cli.evaluation import BacktestConfig
    from durability_cli.forecasting import ForecastConfig, ForecastResult
    from durability_cli.schema import Dataset, Schema

TableLike = Any  # a pandas DataFrame, a pyarrow Table, or a path (str or os.PathLike)
DEFAULT_QUANTILES = (0.1, 0.5, 0.9)
# The levels a calibration plot checks: 0.05, 0.10, ..., 0.95.
CALIBRATION_LEVELS = tuple(round(0.05 * k, 2) for k in range(1, 20))


# -- tables ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Columns:
    """Which column plays which role; None = auto-detected (see docs/GUIDE.md)."""

    id_col: str | None = None
    time_col: str | None = None
    target: str | None = None
    covariates: tuple[str, ...] | None = None
    static: tuple[str, ...] | None = None
    fmt: str | None = None  # input format of a path whose name does not tell: csv, parquet, jsonl

    @classmethod
    def of(cls, id_col=None, time_col=None, target=None, covariates=None, static=None, fmt=None) -> Columns:
        """Columns from names as a user writes them: lists, or comma-separated text."""
        return cls(id_col, time_col, target, _tuple(covariates), _tuple(static), fmt)


def read(
    data: TableLike,
    *,
    columns: Columns = Columns(),
    schema: Schema | None = None,
    require_target: bool = True,
    plan: bool = False,
    sheet: str | None = None,
) -> Dataset:
    """``data`` as a validated Dataset: the roles of ``columns``, or exactly a model's ``schema``.
    A Dataset already read with that schema is returned as it is. ``plan=True`` reads a
    ``future`` table: no target needed, and a specimen may have a single row (one planned step
    after its history). ``sheet``: the sheet of an Excel workbook to read (else its first)."""
    from durability_cli.schema import Dataset, load_dataset

    if isinstance(data, Dataset) and (schema is None or data.schema == schema):
        return data
    names = _names(columns)
    how = dict(schema=schema, require_target=require_target and not plan, min_rows=1 if plan else 2)
    if isinstance(data, str | os.PathLike):
        from durability_cli.io import sheet_format

        return load_dataset(str(data), fmt=sheet_format(columns.fmt, sheet, "`sheet`"), **how, **names)
    if sheet is not None:
        raise InputError(
            f"`sheet` {sheet!r} names a sheet of a workbook's path; this table is in memory already"
        )
    from durability_cli.schema import frame_dataset

    try:
        return frame_dataset(_as_frame(data, columns, schema), "DataFrame", **how, names=names)
    except InputError as exc:  # a row named by its place, and by the label the caller's index gives it
        said = _index_rows(exc.template, data, columns, schema)
        if said == exc.template:
            raise
        raise exc.reworded(said) from None


def _index_rows(message: str, data, columns: Columns, schema: Schema | None) -> str:
    """``message`` about a DataFrame's rows (numbered from 1) with each row's index label beside
    it, "row 4, index 3866", where the index is not the rows' places (a filtered or sorted
    table); the message as it is otherwise."""
    import pandas as pd

    from durability_cli.io import relabel_rows

    if not isinstance(data, pd.DataFrame) or _index_fills_roles(data, columns, schema):
        return message
    labels = data.index
    if labels.equals(pd.RangeIndex(len(labels))):  # the rows' places already
        return message

    def label(k) -> str:
        text = str(k)
        return text if not isinstance(k, str) else repr(k)

    ok = range(1, len(labels) + 1)
    return relabel_rows(
        message,
        lambda k: f"row {k}, index {label(labels[k - 1])}" if k in ok else None,
        lambda a, b: (
            f"rows {a} and {b}, index {label(labels[a - 1])} and {label(labels[b - 1])}"
            if a in ok and b in ok
            else None
        ),
    )


def _names(columns: Columns) -> dict:
    return {
        "id_col": columns.id_col,
        "time_col": columns.time_col,
        "target": columns.target,
        "covariates": None if columns.covariates is None else list(columns.covariates),
        "static": None if columns.static is None else list(columns.static),
    }


def _as_frame(data, columns: Columns = Columns(), schema: Schema | None = None) -> pd.DataFrame:
    """``data`` as a DataFrame numbered from 0. An index whose every level fills a role the columns
    lack (``df.set_index(["specimen_id", "time"])``) is read as those columns; any other index
    (a row counter, even a named one) is dropped, as it was before."""
    import pandas as pd
    import pyarrow as pa

    if isinstance(data, pa.Table):
        from durability_cli.io import arrow_to_frame

        return arrow_to_frame(data, "table")
    if isinstance(data, pd.DataFrame):
        if _index_fills_roles(data, columns, schema):
            return data.reset_index()
        return data.reset_index(drop=True)
    raise InputError(f"`data` must be a DataFrame, a pyarrow Table or a path, got {type(data).__name__}")


def _index_fills_roles(data: pd.DataFrame, columns: Columns, schema: Schema | None) -> bool:
    """Whether every level of ``data``'s index is named for a role the columns do not fill: the
    id or the time (the name given, the model's, or a usual one such as specimen_id or cycle), or
    a condition, static column or target named by ``columns`` or ``schema``."""
    from durability_cli.schema import ID_NAMES, TIME_NAMES

    have = {str(c).lower() for c in data.columns}
    own = schema if schema is not None else columns

    def lacking(name: str, given: str | None, usual: tuple[str, ...]) -> bool:
        wanted = {given.lower()} if given else {u.lower() for u in usual}
        return name in wanted and not have & wanted

    named = [own.target, *(getattr(own, "covariates", None) or ()), *(getattr(own, "static", None) or ())]
    named = {str(n).lower() for n in named if n}
    levels = [None if n is None else str(n).lower() for n in data.index.names]
    return all(
        n is not None
        and (
            lacking(n, own.id_col, ID_NAMES)
            or lacking(n, own.time_col, TIME_NAMES)
            or (n in named and n not in have)
        )
        for n in levels
    )


def _is_parquet_path(data, fmt: str | None) -> bool:
    from durability_cli.streaming import is_parquet

    return isinstance(data, str | os.PathLike) and is_parquet(str(data), fmt)


# -- results ---------------------------------------------------------------------------------------
@dataclass
class Forecast:
    """A forecast: one row per future row of every specimen, and the end of life per specimen."""

    table: pd.DataFrame  # [scenario], id, static, time, <target>_mean, quantiles, conditions, extrapolated
    end_of_life: pd.DataFrame | None  # one row per specimen, when a threshold was given
    paths: pd.DataFrame | None  # id, time, sample, value: the Monte Carlo paths (paths=True)
    warnings: list[str] = field(default_factory=list)  # held conditions, skipped specimens, extrapolation
    result: ForecastResult | None = None  # the counts and settings of the run

    def __repr__(self) -> str:
        rows = f"{len(self.table):,} rows"
        if self.result is not None:
            rows += f" of {self.result.specimens:,} specimen(s)"
        eol = "none" if self.end_of_life is None else f"{len(self.end_of_life):,} rows"
        paths = "none" if self.paths is None else f"{len(self.paths):,} rows"
        return f"Forecast({rows}; end_of_life: {eol}; paths: {paths}; {len(self.warnings)} warning(s))"

    @classmethod
    def of(cls, result: ForecastResult, first: Sequence[str] = ()) -> Forecast:
        """``result`` as a Forecast, its warnings after the lines ``first``."""
        return cls(result.forecast, result.eol, result.paths, [*first, *result.warnings], result)


@dataclass
class Evaluation:
    """A backtest's scores: ``report`` as ``durability evaluate --json`` writes it."""

    report: dict
    per_series: pd.DataFrame | None = None  # one row per (model, specimen)
    backtest: pd.DataFrame | None = None  # one row per forecast point and model
    # one row per specimen: ``n`` scored rows, the model's mean ``error`` (forecast - measured)
    # over them, its mean of each condition over the rows forecast and its static columns (a
    # categorical one's label): what by_condition ranks
    specimens: pd.DataFrame | None = None
    # the same table for each compared model (``evaluate(compare=...)``), by its name
    compared_specimens: dict[str, pd.DataFrame] = field(default_factory=dict)
    # what `durability evaluate` says after its table: steps cut, a threshold sought against the data
    warnings: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        scores = ", ".join(
            f"{name} {m['rmse']:.4g}"
            for name, m in self.report.get("models", {}).items()
            if m.get("rmse") is not None
        )
        points = "" if self.backtest is None else f"; backtest: {len(self.backtest):,} rows"
        n = self.report.get("n_specimens")
        return f"Evaluation(RMSE {scores}{'' if n is None else f' over {n} specimen(s)'}{points}; .table() for all)"

    def table(self) -> pd.DataFrame:
        """One row per model (the model, any compared ones, then the baselines): RMSE, MAE,
        bias, MASE, the model's skill against each other row with the 5th and 95th percentiles
        of it over the specimens drawn again, the specimens it won and those where both erred
        alike (tied), 80% interval coverage and end-of-life error."""
        import pandas as pd

        skill = self.report.get("skill", {})
        spread = self.report.get("skill_spread", {})
        rows = []
        for name, m in self.report["models"].items():
            rows.append(
                {
                    "model": name,
                    "rmse": m.get("rmse"),
                    "mae": m.get("mae"),
                    "bias": m.get("bias"),
                    "mase": m.get("mase"),
                    "skill": skill.get(name),
                    "skill_p5": spread.get(name, {}).get("low"),
                    "skill_p95": spread.get(name, {}).get("high"),
                    "specimens_won": spread.get(name, {}).get("specimens_better"),
                    "specimens_tied": spread.get(name, {}).get("specimens_tied"),
                    "coverage_80": (m.get("coverage") or {}).get("80"),
                    "eol_mae": (m.get("eol") or {}).get("mae"),
                }
            )
        return pd.DataFrame(rows).set_index("model")

    def to_dict(self) -> dict:
        """The report as plain JSON values (NaN as None)."""
        from durability_cli.metrics import to_jsonable

        return to_jsonable(self.report)


# -- the model -------------------------------------------------------------------------------------
class Model:
    """A trained model: forecast, evaluate, draw, save. ``bundle`` holds the network and its
    metadata; ``schema``, ``model_config``, ``train_config`` and ``summary`` describe it."""

    path: str | None = None  # the file it was loaded from (recorded with a forecast)

    def __init__(self, bundle: ModelBundle):
        if isinstance(bundle, str | os.PathLike):
            raise InputError(
                f"Model() takes a trained model, not a file name: load {str(bundle)!r} with load(path)"
            )
        self.bundle = bundle

    @property
    def warnings(self) -> list[str]:
        """What ``durability train`` warns of after its summary: a baseline that forecast the
        validation specimens better, a latent on short warm-ups, a run that ended while its
        validation RMSE still improved, a monotonic constraint against the data."""
        from durability_cli.render import training_warnings

        return training_warnings(self.bundle)

    def __repr__(self) -> str:
        m, s = self.model_config, self.schema
        n = len(self.bundle.members)
        members = f", ensemble of {n}" if n > 1 else ""
        return f"Model({m.cell} {m.layers}x{m.hidden}, lags {m.lags}, target {s.target!r}{members})"

    schema = property(lambda self: self.bundle.schema)
    model_config = property(lambda self: self.bundle.model_config)
    train_config = property(lambda self: self.bundle.train_config)
    summary = property(lambda self: self.bundle.summary)

    def save(self, path: str | os.PathLike) -> None:
        """Write the model file (safetensors weights and JSON metadata; no pickle)."""
        from durability_cli.artifact import save_bundle

        save_bundle(self.bundle, path)

    def describe(self, path: str = "") -> dict:
        """Schema, hyper-parameters, scaling and training summary, as ``durability inspect --json``."""
        from durability_cli.artifact import describe_bundle

        return describe_bundle(self.bundle, path)

    def forecast(
        self,
        data: TableLike,
        *,
        horizon: int | None = None,
        future: TableLike | None = None,
        hold_conditions: bool = False,
        samples: int = 200,
        quantiles: tuple[float, ...] = DEFAULT_QUANTILES,
        threshold: float | None = None,
        direction: str = "below",
        seed: int = 0,
        strict: bool = False,
        paths: bool = False,
        device: str = "cpu",
        amp: bool = False,
        bounds: tuple[float | None, float | None] | None = None,
        set: dict[str, float] | None = None,  # noqa: A002 (the CLI's --set)
        scenarios: TableLike | dict | None = None,
        max_step: float | str | None = None,
        sheet: str | None = None,
        future_sheet: str | None = None,
    ) -> Forecast:
        """Forecast each specimen of ``data`` from its measured history over its future rows
        (rows with conditions and no durability), or ``horizon`` steps ahead with
        ``hold_conditions``; with ``threshold``, the end of life of each specimen.

        What-if: ``set`` ({condition: value}) replaces those conditions on every future row;
        ``scenarios`` (a table with a ``scenario`` column and condition columns, or a dict
        {name: {condition: value}}) makes one forecast per scenario, with a ``scenario`` column
        (each scenario draws the same random numbers). ``bounds`` (low, high; None = open) clips
        the mean, quantiles and paths; by default a monotonic model clips to its training range.
        ``max_step``: future steps longer than this are cut into equal pieces of at most this
        length for the network, the forecast written at the plan's rows (the CLI's --max-step);
        "auto": each step not typical of the training steps at its conditions (forecasting.StepDomain);
        "off": the plan's steps as given. By default "auto" where the model file keeps a sample of
        its training steps (files since session 49), else as given. ``sheet`` and
        ``future_sheet``: the sheets of Excel workbooks that hold ``data`` and ``future`` (else
        each workbook's first)."""
        from durability_cli.forecasting import forecast
        from durability_cli.render import direction_warnings

        cfg = forecast_config(
            samples, quantiles, threshold, direction, seed, strict, device, amp, bounds, max_step=max_step
        )
        _check_horizon(horizon, hold_conditions)
        _sheet_needs(future, future_sheet, "future")
        conditions, scenario_list = what_if(self, set, scenarios)
        ds = read(data, schema=self.schema, sheet=sheet)
        fut = None if future is None else read(future, schema=self.schema, plan=True, sheet=future_sheet)
        result = forecast(
            self.bundle,
            ds,
            cfg,
            horizon=horizon,
            hold_conditions=hold_conditions,
            future=fut,
            want_paths=paths,
            conditions=conditions,
            scenarios=scenario_list,
        )
        if ds.id_integer or ds.time_zone is not None:  # the caller's integer ids and zone, to join its table
            from dataclasses import replace

            result = replace(
                result,
                **{
                    k: _as_given(getattr(result, k), ds, self.schema, times=())
                    for k in ("forecast", "eol", "paths")
                },
            )
        return Forecast.of(
            result, direction_warnings(self.summary, threshold, direction)
        )  # said first, as the CLI

    def evaluate(
        self,
        data: TableLike,
        *,
        context: int | None = None,
        context_frac: float | None = None,
        origins: int | None = None,
        horizon: int | None = None,
        baselines: bool = True,
        samples: int = 200,
        threshold: float | None = None,
        direction: str = "below",
        seed: int = 0,
        device: str = "cpu",
        amp: bool = False,
        quantiles: tuple[float, ...] = DEFAULT_QUANTILES,
        bounds: tuple[float | None, float | None] | None = None,
        compare: dict[str, Model] | None = None,
        max_step: float | str | None = None,
        sheet: str | None = None,
    ) -> Evaluation:
        """Backtest: hide each specimen's truth after ``context`` rows (or ``context_frac`` of
        them, or at ``origins`` rolling cut-offs), forecast, and score against the baselines.
        ``quantiles`` adds quantile columns to ``Evaluation.backtest`` (the 5, 10, 25, 50, 75, 90
        and 95 % ones are always there); ``CALIBRATION_LEVELS`` is what :meth:`plot_calibration`
        wants. ``bounds`` clips the forecasts as :meth:`forecast` does (the default too).
        ``compare`` (name -> Model) scores other models on the same cut-offs, as columns of the
        report beside the baselines: this model stays "model", and each skill and
        ``skill_spread`` says how surely it beats them. Each reads its own conditions and static
        columns of ``data`` (a model with humidity against one without), all from the same id,
        time and durability columns. ``max_step``: the steps each backtest's forecast runs, as
        :meth:`forecast`'s (the default: auto where the model file keeps its training steps); the
        report's ``settings`` says what ran (``max_step``) and how many steps auto cut
        (``cut_steps``, of ``cut_backtests`` cut-offs). The tables give times as the table does
        (dates where its time column holds dates; the spans ``lead`` and ``eol_error`` in days)
        and integer ids as integers, as ``durability evaluate`` writes them."""
        options = dict(locals())
        del options["self"], options["data"]
        return self._evaluation(data, _as_written, **options)

    def _evaluation(
        self,
        data,
        given,
        *,
        context,
        context_frac,
        origins,
        horizon,
        baselines,
        samples,
        threshold,
        direction,
        seed,
        device,
        amp,
        quantiles,
        bounds,
        compare,
        max_step,
        sheet,
    ) -> Evaluation:
        """:meth:`evaluate`, its tables made by ``given(frame, table, schema)``: _as_written for
        the caller, or the run's own terms (model time, ids as text) for :meth:`calibrate`."""
        from durability_cli.evaluation import BacktestConfig, check_comparable, evaluate, naming_the_model

        cfg = forecast_config(
            samples, quantiles, threshold, direction, seed, False, device, amp, bounds, max_step=max_step
        )
        backtest = BacktestConfig(context, context_frac, origins, horizon, baselines)
        backtest.validate()
        others = _compared(compare)
        columns = check_comparable(self.bundle, others)  # every model's columns
        with naming_the_model(self.bundle, others):
            table = read(data, schema=columns, sheet=sheet)
        result = evaluate(self.bundle, table, cfg, backtest, others)
        from durability_cli.render import cut_notes, direction_warnings

        return Evaluation(
            result.report,
            given(result.per_series, table, self.schema),
            given(result.backtest, table, self.schema),
            given(result.specimens, table, self.schema),
            {name: given(t, table, self.schema) for name, t in result.compared_specimens.items()},
            cut_notes(result.report)
            + result.report.get("warnings", [])
            + direction_warnings(self.summary, threshold, direction),
        )

    def calibrate(
        self,
        data: TableLike,
        *,
        context: int | None = None,
        context_frac: float | None = None,
        origins: int | None = None,
        horizon: int | None = None,
        level: float = 0.8,
        bins: int = 1,
        samples: int = 200,
        threshold: float | None = None,
        direction: str = "below",
        eol_interval: bool = False,
        seed: int = 0,
        device: str = "cpu",
        sides: str = "both",
        max_step: float | str | None = None,
        sheet: str | None = None,
    ) -> Model:
        """A copy of this model whose band is scaled so that its central ``level`` band covers
        that share of the measured values of ``data``: specimens the model never saw, each
        forecast from its warm-up (the cut-offs of :meth:`evaluate`). Split conformal: one factor
        for every step, or one per ``bins`` groups of steps after the warm-up (see
        calibration.py). A calibration replaces the one before; the model as trained is what is
        measured. The new model's ``summary["calibration"]`` holds the factors and the coverage
        before and after (with ``threshold``, the end-of-life interval's too); the weights are
        shared with this model. ``eol_interval`` (with ``threshold``) also moves the end-of-life
        p10-p90 interval so that it holds 80 % of the held-out crossings (calibration.measure_eol;
        the shift is in ``summary["calibration"]["eol"]``). ``sides``: "both" scales the band's two halves
        by one factor (the default); "each" scales the half under the mean and the half over it
        apart, so that at most (1 - level) / 2 of the rows fall under the band and as many over it
        (calibration.SIDES). ``max_step``: the steps each backtest's forecast runs, as
        :meth:`evaluate`'s (give what the forecasts to be calibrated will use); recorded in the
        block with how many steps auto cut."""
        from durability_cli.calibration import (
            SIDES,
            band_columns,
            calibrated,
            check_calibratable,
            eol_hint,
            eol_warnings,
            measure,
            measure_eol,
            seen_specimens,
            warnings,
        )

        check_calibratable(self.bundle)
        check_numbers(whole={"bins": bins, "samples": samples}, real={"level": level})
        if sides not in SIDES:  # before the backtests, which take the time
            raise InputError(f"`sides` must be one of {', '.join(SIDES)}, got {sides!r}")
        if eol_interval and threshold is None:
            raise InputError(
                "calibrating the end-of-life interval needs the threshold that defines the end of life "
                "(`threshold` X)"
            )
        if samples < 20:
            raise InputError(f"`samples` must be at least 20 to calibrate a band, got {samples}")
        band = band_columns(level)
        cutoffs = {"context": context, "context_frac": context_frac, "origins": origins, "horizon": horizon}
        options = dict(
            **cutoffs,
            baselines=False,
            samples=samples,
            threshold=threshold,
            direction=direction,
            seed=seed,
            device=device,
            quantiles=tuple(sorted(set(DEFAULT_QUANTILES) | set(band))),
            bounds=(None, None),  # the band as the model makes it: clipping is not a scaling
            max_step=max_step,
        )
        data = read(data, schema=self.schema, sheet=sheet)
        trained = Model(calibrated(self.bundle, None))
        # in the run's own terms (model time, ids as text): what measure and seen_specimens read
        before = trained._evaluation(data, _as_run, amp=False, compare=None, sheet=None, **options)
        # the paths move away from the deterministic mean path, the centre of the scaling: the
        # backtest's y_pred is that path (a second, deterministic backtest gave the same numbers)
        block = measure(before.backtest, None, level, bins, data.source, sides)
        ran = before.report["settings"]  # the steps the backtests ran (--max-step) and the cuts
        block |= {"cutoffs": cutoffs, "samples": samples, "seed": seed}
        block |= {k: ran[k] for k in ("max_step", "cut_steps")}
        # the conditions the held-out errors follow (evaluate's by_condition): a factor by step cannot
        trends = before.report["by_condition"]["columns"]
        block["errors_follow"] = [name for name, c in trends.items() if c["follows"]]
        seen = seen_specimens(self.bundle, before.backtest["specimen"].unique())
        block |= {"seen_specimens": len(seen), "warnings": warnings(block, seen)}
        out = Model(calibrated(self.bundle, block))  # its summary holds this block
        if threshold is not None:
            # the end-of-life interval, measured on the band-calibrated paths (calibration.measure_eol)
            from durability_cli.evaluation import BacktestConfig, backtest_frames
            from durability_cli.metrics import eol_per_origin

            cfg = forecast_config(
                samples,
                options["quantiles"],
                threshold,
                direction,
                seed,
                device=device,
                bounds=(None, None),
                max_step=max_step,
            )
            frame, history, *_ = backtest_frames(
                out.bundle, data, cfg, BacktestConfig(**cutoffs, baselines=False, eol_past_horizon=True)
            )
            eol = measure_eol(eol_per_origin(frame, history, threshold, direction), data.source)
            scored = before.report["models"]["model"].get("eol") or {}
            block["eol_interval_coverage_before"] = scored.get("interval_coverage")
            # evaluate's count (crossings decided within the horizon), which the 'before' is over;
            # the 'after' is over the crossings decided on the mean run on past the horizon
            block["eol_interval_n_before"] = scored.get("interval_n")
            block["eol_interval_coverage_band"] = eol["coverage_before"]
            if eol_interval:  # the shift goes into the model; without it, the band's effect is reported
                block["eol"] = eol | {"threshold": threshold, "direction": direction}
                block["warnings"] += eol_warnings(eol)
            else:
                block["warnings"] += eol_hint(eol)
            block["eol_interval_coverage_after"] = eol[
                "coverage_after" if eol_interval else "coverage_before"
            ]
            block["eol_interval_n"] = eol["n"] if eol_interval else eol["n_before"]
        return out

    def plot_forecast(
        self,
        data: TableLike,
        *,
        truth: TableLike | None = None,
        specimens: list[str] | str | None = None,
        max_specimens: int = 12,
        horizon: int | None = None,
        hold_conditions: bool = False,
        samples: int = 200,
        threshold: float | None = None,
        direction: str = "below",
        seed: int = 0,
        future: TableLike | None = None,
        quantiles: tuple[float, ...] | str = (0.1, 0.25, 0.5, 0.75, 0.9),
        time_unit: str | None = None,
        max_step: float | str | None = None,
        sheet: str | None = None,
        future_sheet: str | None = None,
        truth_sheet: str | None = None,
    ) -> Figure:
        """Forecast ``data`` (with the ``future`` rows appended, as :meth:`forecast`, whose
        ``max_step`` this takes) and draw history, median, interval bands (the outer two pairs of
        ``quantiles``), threshold and end of life, one panel per specimen; ``truth`` (the hidden
        values; ``truth_sheet``: its workbook's sheet) as hollow markers. :meth:`forecast` then
        :meth:`plot_result` draw the same, with the forecast's warnings kept."""
        from durability_cli.forecasting import forecast

        cfg = forecast_config(samples, quantiles, threshold, direction, seed, max_step=max_step)
        _check_horizon(horizon, hold_conditions)
        _sheet_needs(future, future_sheet, "future")
        _sheet_needs(truth, truth_sheet, "truth")
        ds = read(data, schema=self.schema, sheet=sheet)
        fut = None if future is None else read(future, schema=self.schema, plan=True, sheet=future_sheet)
        result = forecast(self.bundle, ds, cfg, horizon=horizon, hold_conditions=hold_conditions, future=fut)
        chosen = None if specimens is None else list(_tuple(specimens))  # a list, or comma-separated ids
        return self.plot_result(
            ds,
            result,
            truth=truth,
            threshold=threshold,
            specimens=chosen,
            max_specimens=max_specimens,
            time_unit=time_unit,
            truth_sheet=truth_sheet,
        )

    def history(self) -> pd.DataFrame:
        """The per-epoch training log: loss, free-running validation RMSE, teacher forcing; an
        ensemble's with a ``member`` column (1, 2, ...), its members one after the other."""
        import pandas as pd

        members = self.bundle.members
        if len(members) == 1:
            return pd.DataFrame(self.summary["history"])
        return pd.concat(
            [pd.DataFrame(m.summary["history"]).assign(member=k + 1) for k, m in enumerate(members)],
            ignore_index=True,
        )

    def plot_result(
        self,
        data: TableLike | Dataset,
        result: Forecast | ForecastResult,
        *,
        truth: TableLike | None = None,
        threshold: float | None = None,
        specimens: list[str] | None = None,
        max_specimens: int = 12,
        time_unit: str | None = None,
        truth_sheet: str | None = None,
    ) -> Figure:
        """Draw a forecast made earlier (``result``: a Forecast, or its ``table``) over the history
        it was made from; ``truth`` (``truth_sheet``: its workbook's sheet) as hollow markers."""
        import pandas as pd

        from durability_cli.forecasting import ForecastResult
        from durability_cli.plotting import plot_forecasts
        from durability_cli.schema import Dataset

        s = self.schema
        if isinstance(result, Forecast):
            table, eol = result.table, result.end_of_life
        elif isinstance(result, ForecastResult):
            table, eol = result.forecast, result.eol
        elif isinstance(result, pd.DataFrame):
            table, eol = result, None
        else:
            raise InputError(
                f"`result` must be a forecast (what Model.forecast returns), got {type(result).__name__}"
            )
        if s.id_col not in table.columns:
            raise InputError(f"`result` has no id column '{s.id_col}': give the forecast this model made")
        _sheet_needs(truth, truth_sheet, "truth")
        history = data if isinstance(data, Dataset) else read(data, schema=s)
        zone = history.time_zone  # drawn at the clock times of the zone the table's dates had
        table, eol = (  # the run's ids are text, as the history's
            None if t is None else _on_clock(t.assign(**{s.id_col: t[s.id_col].astype(str)}), zone)
            for t in (table, eol)
        )
        return plot_forecasts(
            _on_clock(history.frame, zone),
            table,
            id_col=s.id_col,
            time_col=s.time_col,
            target=s.target,
            truth=None if truth is None else _on_clock(read(truth, schema=s, sheet=truth_sheet).frame, zone),
            threshold=threshold,
            eol=eol,
            specimens=specimens,
            max_specimens=max_specimens,
            time_unit=self._time_unit(time_unit),
        )

    def plot_history(self) -> Figure:
        """The training loss, free-running validation RMSE and teacher forcing per epoch."""
        from durability_cli.plotting import plot_training_history

        others = [m.summary["history"] for m in self.bundle.others]
        return plot_training_history(self.summary["history"], loss=self.model_config.loss, others=others)

    def plot_errors(
        self, evaluation: Evaluation, *, time_unit: str | None = None, min_count: int = 3
    ) -> Figure:
        """An evaluation's RMSE by forecast horizon, the model against the baselines, with the
        forecasts scored below. With the backtest points (``evaluation.backtest``), the horizon
        is the time after the cut-off in bins (``time_unit`` names it); without (a chunked
        run), the step. Bins or steps scored on fewer than ``min_count`` forecasts are left out
        of the lines."""
        from durability_cli.plotting import plot_horizon_errors

        _check_evaluation(evaluation)
        style = dict(metric="RMSE", unit=self.schema.target, min_count=min_count)
        style.update(time_unit=self._time_unit(time_unit), count_label=_count_label(evaluation))
        horizon = _by_horizon(_run_names(evaluation.backtest, self.schema))
        if horizon is not None:
            by_time = {name: rows["rmse"].tolist() for name, rows in horizon.groupby("model", sort=False)}
            model = horizon.loc[horizon["model"] == next(iter(by_time))]
            return plot_horizon_errors(
                by_time, times=model["time"].tolist(), counts=model["forecasts"].tolist(), **style
            )
        models = evaluation.report["models"]
        first = models.get("model") or next(iter(models.values()))
        by_step = {name: m["rmse_by_step"] for name, m in models.items()}
        return plot_horizon_errors(by_step, counts=first.get("n_by_step"), **style)

    def plot_conditions(self, evaluation: Evaluation) -> Figure:
        """Each specimen's mean error against its mean of each condition over the rows forecast,
        a panel per condition, with the means of the thirds with the least and the most of it:
        what the report's ``by_condition`` ranks (see docs/GUIDE.md, "When the error follows a
        condition"). An evaluation with compared models (``evaluate(compare=...)``) draws each of
        them too, in a colour of its own, from ``by_condition_compared``."""
        from durability_cli.plotting import plot_condition_errors

        _check_evaluation(evaluation)
        if evaluation.specimens is None:
            raise InputError("the evaluation has no per-specimen errors: make it with Model.evaluate")
        trends = evaluation.report.get("by_condition") or {}
        others = evaluation.report.get("by_condition_compared") or {}
        compared = {
            name: (table, others[name])
            for name, table in evaluation.compared_specimens.items()
            if name in others
        }
        return plot_condition_errors(
            evaluation.specimens, trends, target=self.schema.target, compared=compared
        )

    def plot_calibration(
        self, evaluation: Evaluation, *, time_unit: str | None = None, min_count: int = 3
    ) -> Figure:
        """Can the intervals be trusted? From an evaluation's backtest points: the observed share
        of true values below each forecast quantile against its level (evaluate with
        ``quantiles=CALIBRATION_LEVELS`` for every level from 0.05 to 0.95), and the p10-p90
        coverage by time after the cut-off."""
        from durability_cli.metrics import quantile_calibration
        from durability_cli.plotting import plot_calibration

        _check_evaluation(evaluation)
        points = _run_names(evaluation.backtest, self.schema)
        if points is None or not any(str(c).startswith("q") for c in points.columns):
            raise InputError(
                "the evaluation has no quantile forecasts: evaluate a Gaussian model with `samples` > 0 "
                "(a point model, loss mse or huber, gives no intervals)"
            )
        rows = points.loc[points["model"] == "model"] if "model" in points.columns else points
        horizon = _by_horizon(rows)
        return plot_calibration(
            quantile_calibration(rows),
            horizon["coverage"].tolist(),
            band_level=0.8,
            times=horizon["time"].tolist(),
            counts=horizon["forecasts"].tolist(),
            time_unit=self._time_unit(time_unit),
            min_count=min_count,
            count_label=_count_label(evaluation),
        )

    def end_of_life_backtest(
        self,
        data: TableLike,
        *,
        threshold: float,
        context: int | None = None,
        context_frac: float | None = None,
        horizon: int | None = None,
        samples: int = 200,
        direction: str = "below",
        seed: int = 0,
        max_step: float | str | None = None,
        sheet: str | None = None,
    ) -> pd.DataFrame:
        """Predicted against measured end of life per specimen: the truth hidden after
        ``context`` rows (or ``context_frac`` of them), a forecast to ``threshold`` (its steps
        as :meth:`forecast`'s ``max_step``), and the measured first crossing (``eol_true``, NaN
        when the data end before it); see ``evaluation.end_of_life_backtest`` for the columns. The
        forecast's warnings (steps cut, extrapolation) are in ``table.attrs["warnings"]``. Where
        the time column holds dates, so do the times (an end of life past the horizon: NaT)."""
        from durability_cli.evaluation import BacktestConfig, end_of_life_backtest

        cfg = forecast_config(samples, DEFAULT_QUANTILES, threshold, direction, seed, max_step=max_step)
        backtest = BacktestConfig(context, context_frac, None, horizon, False)
        from durability_cli.render import direction_warnings

        ds = read(data, schema=self.schema, sheet=sheet)
        table = end_of_life_backtest(self.bundle, ds, cfg, backtest)
        said = direction_warnings(self.summary, threshold, direction) + table.attrs.get("warnings", [])
        table = _own_names(_as_given(table, ds, self.schema, times=EOL_TIMES), self.schema)
        table.attrs["warnings"] = said
        return table

    def plot_end_of_life(
        self, table: pd.DataFrame, *, threshold: float, time_unit: str | None = None, direction: str = "below"
    ) -> Figure:
        """Predicted (median, p10-p90) against true end of life per specimen, from the table of
        :meth:`end_of_life_backtest` made with the same ``threshold``; specimens whose data end
        before the threshold are marked apart."""
        from durability_cli.plotting import plot_end_of_life

        table = table.copy()
        unit = self._time_unit(time_unit)
        if self.schema.time_is_datetime:  # days since the first cut-off's date, not since 1970
            import numpy as np
            import pandas as pd

            zoned = [table[c].dt.tz for c in EOL_TIMES if isinstance(table[c].dtype, pd.DatetimeTZDtype)]
            table = _on_clock(table, zoned[0] if zoned else None)  # the days counted on the table's clock
            for c in EOL_TIMES:  # end_of_life_backtest's dates, in model time again (NaT: NaN)
                if pd.api.types.is_datetime64_any_dtype(table[c]):
                    table[c] = (table[c] - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
            origin = float(np.floor(np.nanmin(table["cutoff_time"])))
            table[list(EOL_TIMES)] = table[list(EOL_TIMES)] - origin
            unit = f"days since {pd.Timestamp('1970-01-01') + pd.Timedelta(days=origin):%Y-%m-%d}"
        return plot_end_of_life(table, threshold=threshold, time_unit=unit, direction=direction)

    def _time_unit(self, time_unit: str | None) -> str | None:
        """The unit for time axes: as given, else days for a date column, else unknown (None). A
        date column's spans are in days: another unit there would relabel them, not convert."""
        return time_unit_of(self.schema, time_unit)


def _check_evaluation(evaluation) -> None:
    if not isinstance(evaluation, Evaluation):
        raise InputError(
            f"`evaluation` must be what Model.evaluate returns, got {type(evaluation).__name__}"
            + ("; pass the Evaluation itself, not its report" if isinstance(evaluation, dict) else "")
        )


def time_unit_of(schema: Schema, time_unit: str | None) -> str | None:
    """``time_unit`` as given (checked against a date column, whose spans are days), else days
    for a date column, else None."""
    if schema.time_is_datetime:
        if time_unit and time_unit.strip().lower() not in ("day", "days", "d"):
            raise InputError(
                f"`time_unit` {time_unit}: the time column '{schema.time_col}' holds dates, whose spans "
                "are drawn and scored in days; leave `time_unit` out"
            )
        return "days"
    return time_unit or None


def _by_horizon(points: pd.DataFrame | None) -> pd.DataFrame | None:
    """Backtest points scored per bin of time after the cut-off (``metrics.by_horizon``), the
    bins sized on the model's points; None without points."""
    if points is None or "lead" not in points.columns or not len(points):
        return None
    from durability_cli.metrics import by_horizon, horizon_edges

    own = points.loc[points["model"] == "model"] if "model" in points.columns else points
    return by_horizon(points, horizon_edges(own["lead"]))


def _count_label(evaluation: Evaluation) -> str:
    """What the per-step counts count: specimens with one cut-off each, else forecasts."""
    return "specimens scored" if evaluation.report.get("n_origins", 1) <= 1 else "forecasts scored"


def load(path: str | os.PathLike) -> Model:
    """Read a model file written by :meth:`Model.save` or ``durability train`` (checked first)."""
    from durability_cli.artifact import load_bundle

    model = Model(load_bundle(path))
    model.path = str(path)
    return model


def what_if(model: Model, set: dict | None, scenarios) -> tuple[dict, list | None]:  # noqa: A002
    """The checked ``set`` conditions and ``scenarios`` (None: no scenarios) of a forecast."""
    from durability_cli.scenarios import check_conditions, read_scenarios

    covariates = model.schema.covariates
    conditions = check_conditions(set, covariates)
    if scenarios is None:
        return conditions, None
    return conditions, read_scenarios(scenarios, covariates, base=conditions)


def describe_file(path: str | os.PathLike) -> dict:
    """A model file's schema, hyper-parameters, scaling and training summary, as ``durability
    inspect --json`` shows them: read from its header without importing torch (fast), the
    metadata checked, the weights neither read nor checked (:func:`load` does that)."""
    from durability_cli.modelfile import describe_file as describe

    return describe(path)


def set_threads(threads: int) -> None:
    """CPU threads for torch; 1 is fastest for the small sequential recurrent steps. A count far
    beyond the machine's cores is refused (torch would start them all and may crash)."""
    import torch

    from durability_cli.limits import check_threads

    torch.set_num_threads(check_threads(threads))


def forecast_config(
    samples: int = 200,
    quantiles: tuple[float, ...] | str = DEFAULT_QUANTILES,
    threshold: float | None = None,
    direction: str = "below",
    seed: int = 0,
    strict: bool = False,
    device: str = "cpu",
    amp: bool = False,
    bounds: tuple[float | None, float | None] | str | None = None,
    max_step: float | str | None = None,
) -> ForecastConfig:
    """A checked ForecastConfig (``device`` auto picks a GPU when torch sees one; ``quantiles``
    may be comma-separated text, ``bounds`` the text LO,HI)."""
    import numpy as np

    from durability_cli.data import resolve_device
    from durability_cli.forecasting import ForecastConfig
    from durability_cli.outputs import parse_bounds

    if isinstance(bounds, str):
        bounds = parse_bounds(bounds)
    elif bounds is not None and (not isinstance(bounds, list | tuple | np.ndarray) or len(bounds) != 2):
        raise InputError(f"`bounds` must be (low, high), each a number or None, got {bounds!r}")

    if isinstance(quantiles, str):
        try:
            quantiles = tuple(float(q) for q in quantiles.split(",") if q.strip())
        except ValueError:
            raise InputError(f"`quantiles` must be numbers separated by commas, got {quantiles!r}") from None
    else:
        try:  # any sequence of levels: a list, a tuple, a numpy array, a Series
            quantiles = tuple(quantiles)
        except TypeError:  # a bare number
            raise InputError(
                f"`quantiles` must be a list of levels such as (0.1, 0.5, 0.9), got {quantiles!r}"
            ) from None

    try:  # the columns in order of level, each once (0.975,0.025,0.5 wrote p97_5,p2_5,p50)
        quantiles = tuple(sorted(dict.fromkeys(quantiles)))
    except TypeError:
        pass  # levels that do not compare: ForecastConfig.validate names the bad one
    cfg = ForecastConfig(
        samples=samples,
        quantiles=tuple(quantiles),
        threshold=threshold,
        direction=direction,
        seed=seed,
        strict=strict,
        device=str(resolve_device(device)),
        amp=amp,
        bounds=None if bounds is None else tuple(bounds),
        max_step=_max_step(max_step),
    )
    cfg.validate()
    return cfg


def _max_step(value) -> float | str | None:
    """``max_step`` as a length, "auto" or "off" (the CLI hands it over as text)."""
    if value is None or not isinstance(value, str):
        return value
    if value.strip().lower() in ("auto", "off"):
        return value.strip().lower()
    try:
        return float(value)
    except ValueError:
        raise InputError(f"`max_step` must be a step length, auto or off, got {value!r}") from None


def _check_horizon(horizon: int | None, hold_conditions: bool) -> None:
    from durability_cli.forecasting import check_horizon

    check_horizon(horizon)
    if hold_conditions and not horizon:
        raise InputError("`hold_conditions` needs `horizon` N")


# -- training --------------------------------------------------------------------------------------
MODEL_OPTIONS = tuple(f.name for f in fields(ModelConfig))
TRAIN_OPTIONS = tuple(f.name for f in fields(TrainConfig))


def torch_device(name: str = "auto"):
    """The torch device for ``name``: auto (a GPU when torch sees one), cpu or cuda[:N]."""
    from durability_cli.data import resolve_device

    return resolve_device(name)


def check_checkpoint(path: str) -> None:
    """Read a training checkpoint's header and metadata (a bad one is one clear error)."""
    from durability_cli.artifact import CHECKPOINT_FORMAT, read_safetensors

    read_safetensors(path, expect=CHECKPOINT_FORMAT)


def resume_warnings(path: str, options: dict) -> list[str]:
    """What a resumed run should know before it starts: `epochs` other than the checkpoint's plan
    (allowed, to train on) stretches the learning rate's cosine from the epoch it resumes at, so
    the model is neither the interrupted run's nor an uninterrupted run of the new length."""
    from durability_cli.artifact import CHECKPOINT_FORMAT
    from durability_cli.modelfile import read_header

    given = options.get("epochs")
    if not isinstance(given, int) or given <= 0:
        return []  # auto: decided from the table as before
    try:
        info = read_header(path, expect=CHECKPOINT_FORMAT)[2]
    except DurabilityError:
        return []  # a bad checkpoint is refused in one line where it is loaded
    planned, done = (info.get("train_config") or {}).get("epochs"), info.get("epoch")
    if not isinstance(planned, int) or planned == given:
        return []
    return [
        f"the checkpoint's run planned {planned} epochs and this one {given}: from epoch {done} on the "
        f"learning rate follows the cosine of {given}, so the model is not what an uninterrupted run of "
        f"either length gives (resume with `epochs` {planned} for that)"
    ]


def configs(options: dict, *, source: str = "options") -> tuple[ModelConfig, TrainConfig]:
    """ModelConfig and TrainConfig from ``options`` (any of their fields; None = the default)."""
    from durability_cli.config import build, unknown_keys

    unknown = unknown_keys(options, ModelConfig, TrainConfig)
    if unknown:
        raise InputError(f"{source}: unknown option(s) {', '.join(unknown)}")
    return build(ModelConfig, options, source=source), build(TrainConfig, options, source=source)


def check_init_from(base: ModelConfig, options: dict) -> None:
    """Fine-tuning keeps the model it starts from: a model option given with another value than
    the starting model's is an error, not silently replaced."""
    for name in MODEL_OPTIONS:
        value = options.get(name)
        if name in AUTO_NUMBERS and value is not None:  # "2" from the command line is 2
            value = auto_number(name, value)
        if name in (*AUTO_SWITCHES, *AUTO_NUMBERS) and value == "auto":
            continue  # decided as the model it starts from (line_choice.py, latent_choice.py)
        if value is not None and value != getattr(base, name):
            raise InputError(
                f"`{name}` {value} differs from the `init_from` model's {getattr(base, name)}; fine-tuning "
                f"keeps the model's shape: leave `{name}` out, or train a new model without `init_from`"
            )


def train(
    data: TableLike,
    *,
    target: str | None = None,
    id_col: str | None = None,
    time_col: str | None = None,
    covariates: list[str] | None = None,
    static: list[str] | None = None,
    fmt: str | None = None,
    sheet: str | None = None,
    init_from: Model | str | os.PathLike | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: str | os.PathLike | None = None,
    device: str = "cpu",
    on_epoch: Callable | None = None,
    on_start: Callable[[dict], None] | None = None,
    jobs: int = 1,
    **options,
) -> Model:
    """Train the recurrent feedback model on the specimens of ``data``.

    ``options`` are the fields of ``config.ModelConfig`` (``cell``, ``hidden``, ``layers``,
    ``dropout``, ``lags``, ``loss``, ``residual``, ``monotonic``, ...) and ``config.TrainConfig``
    (``epochs``, ``batch_size``, ``lr``, ``patience``, ``window``, ``val_fraction``, ``seed``,
    ``teacher_forcing``, ``tf_schedule``, ``chunk_specimens``, ``ensemble``, ...), with their
    defaults when left out; ``ensemble=N`` trains N members (seeds ``seed`` .. ``seed + N - 1``)
    into one model, and the default ``ensemble=0`` (auto) 5 of them where fewer than 15 specimens
    validate, else one (``ensemble.resolve_auto``; ``Model.summary["ensemble_auto"]`` says which).
    ``trend_line`` is True, False or the default "auto": train without and with the warm-up's line
    and keep the line where most members validate better with it (line_choice.py;
    ``Model.summary["trend_line_auto"]`` says which; twice the training time). ``latent`` is a
    size D (0 = none) or the default "auto": a latent of 2 with the line where validation warms up
    on at least 50 rows, none on shorter warm-ups (latent_choice.py; ``summary["latent_auto"]``).
    ``sheet`` names the sheet of an Excel workbook to read (else its first);
    ``init_from`` fine-tunes a trained model (its shape and scaling are kept);
    ``checkpoint`` is written after every epoch and ``resume`` continues from one;
    ``on_epoch(log)`` and ``on_start(info)`` report progress. ``jobs=2`` (or 0: as many as the
    free CPUs allow) trains ``trend_line="auto"``'s two candidates at the same time, the line's in
    a second process, and splits the members of an ensemble that cannot train stacked (a latent,
    ``ema``, ``amp``) among the processes (the same model, in about half the time); those
    processes are started with ``spawn``, so a script that calls this at its top level needs
    ``if __name__ == "__main__":``.
    """
    from durability_cli.aside import resolve_jobs

    for name, given in (("on_epoch", on_epoch), ("on_start", on_start)):  # (not once training has begun)
        if given is not None and not callable(given):
            raise InputError(
                f"`{name}` must be a function (called with each {name[3:]}'s facts), got {given!r}"
            )
    from durability_cli.io import sheet_format

    if sheet is not None and not isinstance(data, str | os.PathLike):
        raise InputError(
            f"`sheet` {sheet!r} names a sheet of a workbook's path; this table is in memory already"
        )
    columns = Columns.of(id_col, time_col, target, covariates, static, sheet_format(fmt, sheet, "`sheet`"))
    run = TrainRun(data, columns, options, init_from=init_from)
    return run.fit(
        checkpoint=checkpoint,
        resume=resume,
        device=device,
        on_epoch=on_epoch,
        on_start=on_start,
        jobs=resolve_jobs(jobs, _torch_threads()),
    )


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def tune(
    data: TableLike,
    *,
    budget: str | float = "20m",
    trials: int | None = None,
    folds: int = 3,
    epochs: int = 0,
    patience: int = 0,
    seed: int = 0,
    storage: str | os.PathLike | None = None,
    study: str | None = None,
    point_losses: bool = False,
    check: float = 0.0,
    val_context_frac: float = 0.0,
    jobs: int = 1,
    target: str | None = None,
    id_col: str | None = None,
    time_col: str | None = None,
    covariates: list[str] | None = None,
    static: list[str] | None = None,
    fmt: str | None = None,
    on_trial: Callable[[dict], None] | None = None,
    **options,
):
    """Search the model and training settings for ``data`` with Optuna (docs/TRAINING.md).

    ``budget`` is wall-clock time over all trials (seconds, or text such as ``90s``, ``10m``,
    ``1h``); ``trials`` caps their number; each trial trains ``folds`` models, one per held-out
    fold of specimens, for up to ``epochs`` with ``patience`` (0, the default: 100 and 30, and the
    settings returned leave the length to ``train``'s automatic rule; a number given is kept in
    them). ``options`` are ``train`` options every trial keeps.
    ``storage`` (a SQLite file) keeps the trials: the same call again continues the study.
    Every trial keeps the Gaussian loss (a band and end-of-life intervals) unless ``point_losses``
    lets the search try mse and huber too. ``check`` (a share, e.g. 0.2) holds that many specimens
    back from the whole search; the best and the defaults are then compared on them and the
    defaults kept unless the best wins (``result.check``). ``val_context_frac`` (a share, e.g.
    0.33) scores the search and validates every trial from that share of each specimen's rows,
    as ``train(val_context_frac=...)`` and ``evaluate(context_frac=...)`` do, and is kept in the
    settings returned; 0: from the automatic row count. ``jobs=2`` (or 0: as many as the free CPUs
    allow) trains each trial's folds in that many processes at once (the same scores; started with
    ``spawn``, so a script that calls this at its top level needs ``if __name__ == "__main__":``).
    Returns a ``tuning.TuneResult``: ``best_params`` (pass them to :func:`train`), ``best_score``,
    ``default_score``, ``trials`` (a DataFrame) and ``to_toml()``.
    """
    from durability_cli.aside import resolve_jobs
    from durability_cli.tuning import TuneConfig, parse_duration
    from durability_cli.tuning import tune as search

    cfg = TuneConfig(
        budget=parse_duration(budget),
        trials=trials,
        folds=folds,
        epochs=epochs,
        patience=patience,
        seed=seed,
        storage=None if storage is None else str(storage),
        study=study,
        point_losses=point_losses,
        check=check,
        val_context_frac=val_context_frac,
        jobs=resolve_jobs(jobs, _torch_threads()),
    )
    cfg.validate()
    ds = read(data, columns=Columns.of(id_col, time_col, target, covariates, static, fmt))
    result = search(ds, cfg, fixed=options, on_trial=on_trial)
    # the column roles as given: to_toml() writes them in the config's [data] table
    result.columns = dict(
        id_col=id_col, time_col=time_col, target=target, covariates=covariates, static=static
    )
    return result


def _tuple(names) -> tuple[str, ...] | None:
    if isinstance(names, str):  # a TOML value for a column list: one comma-separated string
        names = [part.strip() for part in names.split(",") if part.strip()]
    return None if names is None else tuple(names)


def train_options(config: str | None, given: dict, names: dict, fmt: str | None) -> tuple[dict, Columns]:
    """``durability train``'s options: those of the ``config`` TOML file overridden by the flags
    ``given`` (None = not given), and the column roles (flags first, then the file's)."""
    from durability_cli import config as cfgmod

    values = cfgmod.load_toml(config)
    unknown = [k for k in cfgmod.unknown_keys(values, ModelConfig, TrainConfig) if k not in names]
    if unknown:
        raise InputError(f"{config}: unknown option(s) {', '.join(unknown)}; see durability train --help")
    roles = {k: names[k] or values.pop(k, None) for k in names}
    for k in names:
        values.pop(k, None)
    for k, v in roles.items():  # a config file's [data] values: a name, or (lists) names
        many = k in ("covariates", "static")
        ok = (
            isinstance(v, str)
            or v is None
            or (many and isinstance(v, list | tuple) and all(isinstance(x, str) for x in v))
        )
        if not ok:
            what = "a column name or a list of them" if many else "a column name"
            raise InputError(f"{config}: {k} must be {what}, got {v!r}")
    values.update({k: v for k, v in given.items() if v is not None})
    if values.get("trend_line") is True:  # asked for, where the model cannot add it: refused, not ignored
        from durability_cli.line_choice import applies

        why = applies(
            ModelConfig(residual=values.get("residual", True), monotonic=values.get("monotonic", "none"))
        )
        if why:
            raise InputError(
                f"`trend_line` cannot be used here: {why}; drop it (by default the line is left out with these "
                "options)"
            )
    return values, Columns.of(**roles, fmt=fmt)


class TrainRun:
    """One training run, in two steps: opening reads and checks the table (a Parquet table with
    ``chunk_specimens`` is opened a group at a time), ``fit`` trains. The command line opens first,
    so that a bad input is one line before any process is started."""

    def __init__(self, data: TableLike, columns: Columns, options: dict, *, init_from=None, source="options"):
        self.model_config, self.train_config = configs(options, source=source)
        self.base = load(init_from).bundle if isinstance(init_from, str | os.PathLike) else None
        self.base_name = str(init_from) if isinstance(init_from, str | os.PathLike) else "a Model"
        if isinstance(init_from, Model):
            self.base = init_from.bundle
        if self.base is not None:
            check_init_from(self.base.model_config, options)
        schema = self.base.schema if self.base is not None else None
        size = self.train_config.chunk_specimens
        self.table = _training_table(data, columns, schema, size)
        self.notes = list(self.table.notes)
        self.warnings = [] if self.base is None else unseen_labels(self.base, self.table)
        transform = (self.base.model_config if self.base is not None else self.model_config).transform
        self.warnings += temperature_units(transform, self.table)

    def check_every_group(self) -> None:
        """Read and check every group (a grouped table's groups are otherwise read in training),
        here, where a bad one is one line (in torchrun's workers it is a traceback each)."""
        from durability_cli.data import to_series
        from durability_cli.training import refuse_unmeasured

        for ds in self.table if self.train_config.chunk_specimens else [self.table]:
            refuse_unmeasured(to_series(ds), ds.schema, ds.source)

    def fit(
        self, *, checkpoint=None, resume=None, device="cpu", on_epoch=None, on_start=None, dist=None, jobs=1
    ) -> Model:
        """Train; ``dist`` makes this process one rank of a torchrun job (``parallel.from_env``);
        ``jobs``: how many processes may train at once (aside.py)."""
        from durability_cli.training import train

        bundle = train(
            self.table,
            self.model_config,
            self.train_config,
            checkpoint=None if checkpoint is None else str(checkpoint),
            resume=None if resume is None else str(resume),
            init_from=self.base,
            on_epoch=on_epoch,
            on_start=on_start,
            device=device if not isinstance(device, str) else torch_device(device),
            dist=dist,
            jobs=jobs,
        )
        if self.base is not None:  # inspect says what the weights started from
            base = self.base.summary
            bundle.summary["fine_tuned_from"] = {
                "model": self.base_name,
                "source": base.get("source"),
                "n_specimens": base.get("n_specimens"),
            }
        return Model(bundle)

    def fit_files(
        self, output: str, *, checkpoint: str, resume=None, history=None, device="auto", dist=None, **report
    ):
        """``durability train``: train as this process or this torchrun rank (signals stop every
        rank at the same step), then write the model file (rank 0), the history table and remove
        the checkpoint. A run that diverged still writes its best weights, then raises."""
        from durability_cli import parallel
        from durability_cli.io import write_table
        from durability_cli.training import TrainingDiverged

        main_rank = dist is None or dist.main
        where = parallel.rank_device(device, dist)
        try:
            with (
                parallel.stop_signals(dist),
                parallel.process_group(dist, torch_device(where)) as dist,
            ):
                model = self.fit(checkpoint=checkpoint, resume=resume, device=where, dist=dist, **report)
        except TrainingDiverged as exc:
            if exc.bundle is not None and main_rank:
                Model(exc.bundle).save(output)
            raise
        except KeyboardInterrupt:  # between epochs' loops (e.g. between two candidates or members)
            from durability_cli.training import TrainingInterrupted

            kept = Path(checkpoint).exists() if checkpoint is not None else False
            raise TrainingInterrupted(
                f"training interrupted; continue with `resume` {checkpoint}"
                if kept
                else "training interrupted before its first epoch ended; there is nothing to resume"
            ) from None
        if main_rank:
            model.save(output)
            if history:
                write_table(model.history(), history)
            from durability_cli.ensemble import remove_checkpoints

            # the trained model's options: an automatic ensemble's resolved size names its members' files
            remove_checkpoints(checkpoint, model.bundle.train_config)
        return model


def _in_memory(table) -> Dataset | None:
    """The Dataset behind a table to train on, where it is in memory (a Dataset, or FrameGroups
    of one); None for a Parquet table read a group at a time."""
    from durability_cli.schema import Dataset

    return table if isinstance(table, Dataset) else getattr(table, "dataset", None)


def unseen_labels(base: ModelBundle, table) -> list[str]:
    """Warnings for the static labels of ``table`` (a Dataset, or groups of one in memory) that
    the ``init_from`` model never saw: fine-tuning keeps the model's labels, so their specimens
    train the embedding every unseen label shares, and a forecast still calls them unseen. A
    Parquet table read a group at a time is not read here for it."""
    import pandas as pd

    ds = _in_memory(table)
    out = []
    for name, vocab in [] if ds is None else base.scaler.static_vocab.items():
        labels = pd.unique(ds.frame[name].astype(str))
        new = sorted(set(labels) - {str(v) for v in vocab})
        if new:
            out.append(
                f"static '{name}' = {', '.join(map(repr, new[:5]))}{' ...' if len(new) > 5 else ''} is not "
                f"among the `init_from` model's labels ({', '.join(map(str, vocab[:8]))}): fine-tuning keeps "
                "them, so these specimens train the one embedding of unseen labels and a forecast still "
                "warns about them; to learn the new label as its own, train a new model"
            )
    return out


def temperature_units(transform: str, table) -> list[str]:
    """Warnings where an Arrhenius transform's unit looks wrong for its column's values: 1000 /
    (x + 273.15) on values that all lie at 200 or above (kelvin, or a hot test in °C), or
    1000 / x on values that all lie below 150 (°C given as kelvin). Read only where the table is
    in memory."""
    import numpy as np

    from durability_cli.transforms import parse

    ds = _in_memory(table)
    out = []
    for column, name in ({} if ds is None else parse(transform)).items():
        if column not in ds.frame or name not in ("arrhenius", "arrhenius-kelvin"):
            continue
        values = ds.frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
        values = values[np.isfinite(values)]
        if not values.size:
            continue
        lo, hi = float(values.min()), float(values.max())
        if name == "arrhenius" and lo >= 200:
            out.append(
                f"`transform` {column}=arrhenius reads °C (1000 / (x + 273.15)), and '{column}' runs "
                f"{lo:g} to {hi:g}: if that is kelvin, use {column}=arrhenius-kelvin"
            )
        elif name == "arrhenius-kelvin" and 0 < lo and hi < 150:  # at 0 or below: refused anyway
            out.append(
                f"`transform` {column}=arrhenius-kelvin reads kelvin (1000 / x), and '{column}' runs "
                f"{lo:g} to {hi:g}: if that is °C, use {column}=arrhenius"
            )
    return out


def _training_table(data, columns: Columns, schema, size: int):
    """The table to train on: a Dataset, or with ``size`` groups of that many specimens (a
    Parquet file or folder read a group at a time, column roles worked out on its first rows or
    the ``init_from`` model's; anything else read and checked whole, then cut)."""
    from durability_cli.schema import measured_only
    from durability_cli.streaming import FrameGroups, SpecimenGroups, probe_frame

    if not size:
        return measured_only(read(data, columns=columns, schema=schema))
    if not _is_parquet_path(data, columns.fmt):
        return FrameGroups(measured_only(read(data, columns=columns, schema=schema)), size)
    notes = []
    if schema is None:
        from durability_cli.schema import resolve_schema

        schema, notes = resolve_schema(
            probe_frame(str(data)), source=str(data), require_target=True, **_names(columns)
        )
    groups = SpecimenGroups(str(data), schema, size=size, require_target=True, measured_only=True)
    groups.notes[:0] = notes
    return groups


# -- the commands' pipelines: files in, files out, a group of specimens at a time ------------------
@dataclass(frozen=True)
class Outputs:
    """Where a command writes its tables (None = not written); ``-`` is stdout."""

    table: str | None = None  # forecast rows (forecast) or the metrics JSON (evaluate; None = stdout)
    eol: str | None = None
    paths: str | None = None
    per_series: str | None = None
    backtest: str | None = None
    fmt: str | None = None  # format of the table on stdout
    meta: str | None = None  # the JSON record of the run (forecast)
    precision: int | None = None  # significant digits; None = 6 in CSV / JSON Lines, all in Parquet; 0 = all


@dataclass
class Run:
    """What a command did: the specimens it found, and its result (None: the shard held none)."""

    total: int  # specimens in the input (before the shard)
    result: Any = None  # ForecastResult or Evaluation
    dataset: Dataset | None = None  # the input (this shard's), when it was read whole


def _whole(
    model: Model, data: str, fmt, shard, require_target: bool = True, schema=None
) -> tuple[int, Dataset | None]:
    """(specimens in ``data``, the Dataset of this shard's specimens or None when it holds none),
    read with ``schema`` (default: the model's)."""
    from durability_cli.parallel import take_shard
    from durability_cli.schema import load_dataset, specimen_starts

    ds = load_dataset(data, fmt=fmt, schema=schema or model.schema, require_target=require_target)
    total = len(specimen_starts(ds.frame, ds.schema.id_col))
    return total, ds if shard is None else take_shard(ds, *shard)


def _all_or_none(fn: Callable) -> Callable:
    """``fn`` with every file it writes moved onto its name at its end, together (io.together;
    imported when called, as this module imports no table library at its own import)."""
    import functools

    @functools.wraps(fn)
    def run(*args, **kwargs):
        from durability_cli.io import all_or_none

        return all_or_none(fn)(*args, **kwargs)

    return run


@_all_or_none
def forecast_files(
    model: Model,
    data: str,
    cfg: ForecastConfig,
    outputs: Outputs,
    *,
    size: int | None = None,
    fmt: str | None = None,
    shard: tuple[int, int] | None = None,
    horizon: int | None = None,
    hold_conditions: bool = False,
    future: TableLike | None = None,
    conditions: dict[str, float] | None = None,
    scenarios: str | None = None,
) -> Run:
    """``durability forecast``: the forecast of ``data`` written to ``outputs``; with ``size``,
    a group of that many specimens at a time, each group's rows written as they come."""
    from durability_cli.forecasting import ForecastStream, forecast, resolve_bounds
    from durability_cli.io import in_zone, write_table
    from durability_cli.parallel import take_shard
    from durability_cli.streaming import date_units, quote_hint, specimen_groups, with_future

    _check_horizon(horizon, hold_conditions)
    if outputs.paths and (cfg.samples == 0 or model.model_config.loss != "gaussian"):
        why = (
            "`samples` 0 draws none" if cfg.samples == 0 else f"a {model.model_config.loss} model draws none"
        )
        raise InputError(f"--paths-out writes the Monte Carlo paths, and {why}; drop one")
    conditions, scenario_list = what_if(model, conditions, scenarios)
    options = {
        "horizon": horizon,
        "hold_conditions": hold_conditions,
        "want_paths": outputs.paths is not None,
        "conditions": conditions,
        "scenarios": scenario_list,
    }
    settings = _forecast_settings(model, cfg, outputs, options, resolve_bounds(model.bundle, cfg.bounds))
    settings |= {"data": _source_name(data, fmt), "future": None if future is None else _source_name(future)}
    tidy = _tidier(model.schema, outputs)
    if size is None:
        total, ds = _whole(model, data, fmt, shard)
        if ds is None:
            return Run(total)
        fut = None if future is None else read(future, schema=model.schema, plan=True)
        if fut is not None and shard is not None:
            fut = take_shard(fut, *shard)
        result = forecast(model.bundle, ds, cfg, future=fut, **options)
        for path, table in (
            (outputs.table, result.forecast),
            (outputs.eol, result.eol),
            (outputs.paths, result.paths),
        ):
            if path and table is not None:
                table = in_zone(tidy(table, path, outputs.fmt), ds.time_zone)
                table.attrs["durability"] = settings | result.info
                write_table(table, path, fmt=outputs.fmt, time_units=date_units(ds))
        _write_meta(outputs.meta, settings | result.info)
        return Run(total, result, ds)
    grouped = specimen_groups(data, model.schema, size=size, fmt=fmt, shard=shard)
    if not len(grouped.ids):
        return Run(grouped.total)
    source = "stdin" if data == "-" else str(data)
    groups = grouped.groups
    if future is not None:
        fut = read(future, schema=model.schema, plan=True)
        groups = with_future(groups, fut, grouped.ids, size=size, source=str(data), shard=shard)
    stream = ForecastStream(model.bundle, groups, cfg, source=source, **options)
    paths = (outputs.table, outputs.eol, outputs.paths)
    with _writers(
        paths,
        quote_hint(grouped.ids),
        fmt=outputs.fmt,
        attrs={"durability": settings},
        time_units=grouped.time_units,
    ) as write:
        for part in stream:
            tables = (part.forecast, part.eol, part.paths)
            zone = grouped.time_zone  # (known once the first group is read)
            write(*(in_zone(tidy(t, p, outputs.fmt), zone) for t, p in zip(tables, paths, strict=True)))
    _write_meta(outputs.meta, settings | stream.result.info)
    return Run(grouped.total, stream.result)


def _source_name(table, fmt: str | None = None) -> str:
    """What a run's record names an input by: its path (with the sheet ``fmt`` names: "book.xlsx
    sheet 'plan'", as a table read from it is named), "stdin", or "DataFrame" (a table in memory)."""
    from durability_cli.schema import Dataset

    if isinstance(table, Dataset):
        return table.source
    if isinstance(table, str | os.PathLike):
        from durability_cli.io import table_name

        return table_name(table, fmt)
    return "DataFrame"


def _forecast_settings(model: Model, cfg: ForecastConfig, outputs: Outputs, options: dict, bounds) -> dict:
    """What a forecast's outputs record about how it was made (the Parquet metadata, --meta-out)."""
    from durability_cli import __version__
    from durability_cli.forecasting import drawn_paths, effective_max_step
    from durability_cli.outputs import file_digest

    scenarios = options["scenarios"]
    return {
        "durability_version": __version__,
        "model": file_digest(model.path),
        "samples": drawn_paths(model.bundle, cfg),
        "seed": cfg.seed,
        "quantiles": list(cfg.quantiles),
        "threshold": cfg.threshold,
        "direction": cfg.direction,
        "bounds": None if bounds is None else list(bounds),
        "precision": outputs.precision,  # None: 6 significant digits in CSV / JSON Lines, all in Parquet
        "horizon": options["horizon"],
        "hold_conditions": options["hold_conditions"],
        "set": options["conditions"],
        "scenarios": None if scenarios is None else {s.name: s.values for s in scenarios},
        "max_step": effective_max_step(model.bundle, cfg.max_step) or "off",
    }


def _tidier(
    schema: Schema, outputs: Outputs, inputs: tuple[str, ...] = ("last_measured_time", "horizon_end")
):
    """``tidy(table, path, fmt)``: ``table`` rounded for the file at ``path``: ``outputs.precision``
    significant digits, by default 6 in CSV and JSON Lines and every digit in Parquet; the
    table's time, conditions and static columns and ``inputs`` (measured, or spans of measured
    times) to every digit they were typed with (outputs.INPUT_DIGITS)."""
    from durability_cli.outputs import tidy

    inputs = (schema.time_col, *schema.covariates, *schema.static, *inputs)

    def tidy_for(table, path, fmt):
        if table is None or not path:
            return table
        return tidy(table, _output_digits(outputs, path, fmt), inputs)

    return tidy_for


def _output_digits(outputs: Outputs, path: str, fmt: str | None) -> int | None:
    """The significant digits of a table written to ``path``: ``outputs.precision``, by default 6
    in CSV and JSON Lines; None (every digit) in Parquet by default and for a precision of 0."""
    from durability_cli.io import format_for
    from durability_cli.outputs import DEFAULT_PRECISION

    digits = outputs.precision
    if digits is None:
        digits = None if format_for(path, fmt) == "parquet" else DEFAULT_PRECISION
    return digits or None


def _write_meta(path: str | None, info: dict) -> None:
    """The run's record as JSON, written atomically (a sidecar of a CSV forecast)."""
    if not path:
        return
    import json

    from durability_cli.io import atomic_path
    from durability_cli.metrics import to_jsonable

    text = json.dumps(to_jsonable(info), indent=2) + "\n"
    if path == "-":
        import sys

        sys.stdout.write(text)
        sys.stdout.flush()
        return
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


@contextlib.contextmanager
def _writers(
    paths: tuple,
    quote: bool,
    *,
    fmt: str | None = None,
    attrs: dict | None = None,
    time_units: dict[str, int] | None = None,
):
    """``write(*tables)``: each table appended to its file in ``paths`` (None: not written); each
    whose destination names no format gets ``fmt`` (io.format_for), the first ``attrs``; a CSV's
    time columns get at least ``time_units`` (streaming.Grouped). Files are complete when the
    block ends."""
    from durability_cli.streaming import TableWriter

    with contextlib.ExitStack() as stack:
        writers = [
            stack.enter_context(
                TableWriter(
                    path, quote=quote, fmt=fmt, attrs=attrs if i == 0 else None, time_units=time_units
                )
            )
            if path
            else None
            for i, path in enumerate(paths)
        ]

        def write(*tables):
            for writer, table in zip(writers, tables, strict=True):
                if writer is not None and table is not None:
                    writer.write(table)

        yield write


@_all_or_none
def evaluate_files(
    model: Model,
    data: str,
    cfg: ForecastConfig,
    backtest: BacktestConfig,
    outputs: Outputs,
    *,
    size: int | None = None,
    fmt: str | None = None,
    shard: tuple[int, int] | None = None,
    compare: dict[str, Model] | None = None,
) -> Run:
    """``durability evaluate``: the backtest of ``data``, its per-series and point tables written
    to ``outputs``; with ``size``, a group of that many specimens at a time. ``compare``: other
    models scored on the same cut-offs (:meth:`Model.evaluate`)."""
    from durability_cli.evaluation import EvalStream, check_comparable, naming_the_model
    from durability_cli.io import in_zone
    from durability_cli.streaming import date_units, quote_hint, specimen_groups

    backtest.validate()
    others = _compared(compare)
    columns = check_comparable(model.bundle, others)  # before the table is read: every model's
    tidy = _tidier(model.schema, outputs, inputs=("time", "lead", "y_true"))

    def as_written(table, zone, path):
        """A table as its file gets it: dates in the table's zone, its names, an end later than
        the horizon empty (as with dates, and in forecast's tables), digits as forecast's."""
        import numpy as np

        if (
            table is not None
            and "lead" in table.columns
            and path
            and _output_digits(outputs, path, outputs.fmt)
        ):
            from durability_cli.outputs import INPUT_DIGITS, round_significant

            # time - cut-off: to the digits of the time it was taken from (not 0.27999999999999936)
            lead = round_significant(table["lead"].to_numpy(), INPUT_DIGITS, table["time"].to_numpy())
            table = table.assign(lead=lead)
        table = _own_names(in_zone(_dated(table, model.schema), zone), model.schema)
        later = [c for c in table.columns if c.startswith("eol_") and table[c].dtype.kind == "f"]
        if later:
            table = table.assign(**{c: table[c].where(table[c] != np.inf) for c in later})
        return tidy(table, path, outputs.fmt)

    if size is None:
        from durability_cli.evaluation import evaluate
        from durability_cli.io import write_table

        with naming_the_model(model.bundle, others):
            total, ds = _whole(model, data, fmt, shard, schema=columns)
        if ds is None:
            return Run(total)
        result = evaluate(model.bundle, ds, cfg, backtest, others)
        for path, table in ((outputs.per_series, result.per_series), (outputs.backtest, result.backtest)):
            if path:
                written = as_written(table, ds.time_zone, path)
                write_table(written, path, fmt=outputs.fmt, time_units=date_units(ds))
        report = _shard_note(result.report, shard)
        found = Evaluation(
            report, result.per_series, result.backtest, result.specimens, result.compared_specimens
        )
        return Run(total, found, ds)
    with naming_the_model(model.bundle, others):
        grouped = specimen_groups(data, columns, size=size, fmt=fmt, shard=shard)
    if not len(grouped.ids):
        return Run(grouped.total)
    source = "stdin" if data == "-" else str(data)
    stream = EvalStream(model.bundle, grouped.groups, cfg, backtest, source=source, others=others)
    with _writers(
        (outputs.per_series, outputs.backtest),
        quote_hint(grouped.ids),
        fmt=outputs.fmt,
        time_units=grouped.time_units,
    ) as write:
        for per_series, points in stream:
            zone = grouped.time_zone  # (known once the first group is read)
            write(
                *(
                    as_written(t, zone, path)
                    for t, path in ((per_series, outputs.per_series), (points, outputs.backtest))
                )
            )
    found = Evaluation(
        _shard_note(stream.report, shard),
        specimens=stream.specimens,
        compared_specimens=stream.compared_specimens,
    )
    return Run(grouped.total, found)


EOL_TIMES = ("cutoff_time", "eol_true", "censor_time", "eol_pred", "eol_low", "eol_high", "horizon_end")


def _as_given(table: pd.DataFrame | None, ds: Dataset, schema: Schema, times=None) -> pd.DataFrame | None:
    """A result table in the caller's terms: integer ids (``ds.id_integer``) as integers in the id
    column and in ``specimen``, and where the time column holds dates, the times ``times`` (by
    default ``time`` and the end-of-life times, as :func:`_dated`) as dates, in the zone the
    table's dates had (``ds.time_zone``)."""
    if table is None:
        return None
    out = table
    if ds.id_integer:
        out = out.copy(deep=False)
        # an evaluation's ids are in `specimen` (its table may have a `lead` or `time` that the
        # caller's id column is called); a forecast's in the id column
        c = "specimen" if "specimen" in out.columns else schema.id_col
        if c in out.columns:
            out[c] = out[c].astype(str).astype("int64")
    from durability_cli.io import in_zone

    return in_zone(_dated(out, schema, times), ds.time_zone)  # the run's dates are UTC without a zone


def _as_written(table: pd.DataFrame | None, ds: Dataset, schema: Schema) -> pd.DataFrame | None:
    """An evaluation's table as ``durability evaluate`` writes it: :func:`_as_given`, its id and
    time columns named as the table names them (:func:`_own_names`)."""
    return _own_names(_as_given(table, ds, schema), schema)


_EVALUATION_COLUMNS = frozenset(
    ("specimen", "time", "model", "origin", "step", "lead", "y_true", "y_pred", "n", "mae", "rmse", "bias")
    + ("mase", "error", "rows", "cutoff_time", "censor_time", "horizon_end", "status")
)  # the columns of evaluate's tables (and end_of_life_backtest's), besides eol_* and quantiles


def _evaluation_names(schema: Schema) -> dict[str, str]:
    """The id and time columns of evaluate's tables (``specimen``, ``time``) -> the table's. A
    table without an id column keeps ``specimen`` (forecast writes none), and a name one of those
    tables has for another column (an id column called ``model`` or ``lead``) keeps the run's, in
    every one of them alike."""
    out = {}
    for run, own in (("specimen", None if schema.id_synthetic else schema.id_col), ("time", schema.time_col)):
        taken = (
            own in _EVALUATION_COLUMNS or str(own).startswith("eol_") or re.fullmatch(r"q[\d.]+", str(own))
        )
        if own and own != run and not taken:
            out[run] = own
    return out


def _own_names(table: pd.DataFrame | None, schema: Schema) -> pd.DataFrame | None:
    """``table`` (an evaluation's, in the run's names ``specimen`` and ``time``) with the id and
    time columns named as the caller's table names them, so that it joins that table and the
    forecast's; a name the table already has for another column (an id column called ``model``)
    leaves the run's."""
    if table is None:
        return None
    names = {
        a: b for a, b in _evaluation_names(schema).items() if a in table.columns and b not in table.columns
    }
    return table.rename(columns=names) if names else table


def _run_names(table: pd.DataFrame | None, schema: Schema) -> pd.DataFrame | None:
    """:func:`_own_names` undone: the run's ``specimen`` and ``time``, which metrics reads."""
    if table is None:
        return None
    names = {
        b: a for a, b in _evaluation_names(schema).items() if b in table.columns and a not in table.columns
    }
    return table.rename(columns=names) if names else table


def _as_run(table: pd.DataFrame | None, *_) -> pd.DataFrame | None:
    """A result table as the run made it (the other choice to :func:`_as_given`)."""
    return table


def _utc(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with dates in a zone (_as_given's) as the run holds them: UTC, without a zone."""
    import pandas as pd

    zoned = [c for c in table.columns if isinstance(table[c].dtype, pd.DatetimeTZDtype)]
    return (
        table.assign(**{c: table[c].dt.tz_convert("UTC").dt.tz_localize(None) for c in zoned})
        if zoned
        else table
    )


def _sheet_needs(table, sheet: str | None, name: str) -> None:
    """A sheet named for a table that is not given is refused, not passed over."""
    if sheet is not None and table is None:
        raise InputError(
            f"`{name}_sheet` names a sheet of the `{name}` workbook; give `{name}` FILE.xlsx too"
        )


def _on_clock(table: pd.DataFrame, zone) -> pd.DataFrame:
    """``table``'s dates as a clock in ``zone`` shows them, without a zone, for a figure's axis:
    a run's dates are UTC instants, and a result table's may carry the zone already; as
    :func:`_utc` gives them where ``zone`` is None."""
    import pandas as pd

    if zone is None:
        return _utc(table)
    dates = {}
    for c in table.columns:
        kind = table[c].dtype
        if isinstance(kind, pd.DatetimeTZDtype):
            dates[c] = table[c].dt.tz_convert(zone).dt.tz_localize(None)
        elif pd.api.types.is_datetime64_dtype(kind):
            dates[c] = table[c].dt.tz_localize("UTC").dt.tz_convert(zone).dt.tz_localize(None)
    return table.assign(**dates) if dates else table


def _dated(table: pd.DataFrame | None, schema: Schema, times=None) -> pd.DataFrame | None:
    """A backtest's point or per-series table as ``evaluate`` writes it: where the time column
    holds dates, its times and end-of-life times as dates (to the microsecond; an end later than
    the horizon, +inf in memory, empty), as ``forecast`` writes them; the spans (``lead``,
    ``eol_error``) stay numbers of days. In the run they are days since 1970-01-01. ``times``:
    the columns to turn into dates instead."""
    if table is None or not schema.time_is_datetime:
        return table
    import numpy as np

    from durability_cli.schema import dates_from_days

    out = table.copy(deep=False)
    for c in out.columns:
        dated = (
            c in times if times is not None else c == "time" or (c.startswith("eol_") and c != "eol_error")
        )
        if dated:
            out[c] = dates_from_days(out[c].to_numpy(dtype=np.float64))
    return out


def _compared(compare: dict | None) -> dict:
    """``evaluate(compare=...)``'s models as bundles by name; a value that is no loaded model (a
    file name, say) is refused with the fix."""
    if compare is not None and not isinstance(compare, dict):
        raise InputError(f"`compare` maps names to models (durability_cli.load(FILE)), got {compare!r}")
    for name, m in (compare or {}).items():
        if not isinstance(m, Model):
            raise InputError(
                f"`compare` maps names to models: {name!r} is {m!r}; load it first (durability_cli.load(FILE))"
            )
    return {name: m.bundle for name, m in (compare or {}).items()}


def comparison_names(paths: list[str]) -> list[str]:
    """A report column name for each compared model file: its file name without the extension,
    made unique (``_2``, ``_3``, ...) and never "model" or a baseline's name."""
    from durability_cli.metrics import BASELINES
    from durability_cli.mixed_effects import NAME

    taken = {"model", *BASELINES, NAME}
    names = []
    for path in paths:
        stem = Path(path).name.split(".")[0] or "model"
        name, k = stem, 2
        while name in taken:
            name, k = f"{stem}_{k}", k + 1
        taken.add(name)
        names.append(name)
    return names


def _shard_note(report: dict, shard: tuple[int, int] | None) -> dict:
    if shard is not None:  # the scores are this shard's specimens only
        report["settings"]["shard"] = f"{shard[0]}/{shard[1]}"
    return report
