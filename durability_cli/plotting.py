"""Report figures: forecasts per specimen, error by horizon step, and a model's training history.

Three pictures, each returned as a matplotlib ``Figure`` (a notebook shows it as it is);
:func:`save_figure` writes one to a ``.png`` (raster, 150 dpi) or ``.svg`` (vector) file chosen by
the file's extension. Only the command line writes files:

- :func:`plot_forecasts` answers "what will happen to each specimen, and how sure are we?": the
  measured history, the forecast median with its interval band, points where the model
  extrapolates beyond its training range, optional hidden true values, the end-of-life threshold and
  the predicted end of life with its interval. One panel per specimen, on a shared y axis.
- :func:`plot_horizon_errors` answers "does the model beat the simple baselines, and how far
  ahead?": the backtest error at each forecast step for the model and the baselines.
- :func:`plot_training_history` answers "did training go well?": the training loss, the
  free-running validation RMSE with the best epoch marked, and the teacher-forcing schedule.

matplotlib is imported inside the functions so that importing this module (and ``durability
--help``) stays fast. Figures are built with ``matplotlib.figure.Figure`` rather than pyplot: that
never opens a window or touches the user's chosen backend (a notebook keeps its own), and works the
same headless. Colours are the Okabe-Ito palette, readable with the common colour-vision
deficiencies, and lines also differ by style or marker so the figures survive greyscale printing.
Every file is written atomically: a failure while saving leaves an existing file as it was.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from durability_cli.errors import InputError
from durability_cli.io import PICTURE_FORMATS, atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 150  # sharp in a printed report, still small files
FORMATS = PICTURE_FORMATS

# Okabe & Ito (2008), "Color Universal Design".
BLACK, ORANGE, SKY, GREEN, YELLOW, BLUE, VERMILLION, PURPLE = (
    "#000000",
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#F0E442",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
)
GREY = "#555555"
MIN_COUNT = 3  # a horizon step scored on fewer forecasts than this is left out of the lines

# Baselines of durability evaluate: thin, each with its own colour and dash pattern.
BASELINE_STYLES = {
    "persistence": dict(color=ORANGE, linestyle="--", marker="s"),
    "linear": dict(color=GREEN, linestyle="-.", marker="^"),
    "exponential": dict(color=PURPLE, linestyle=":", marker="D"),
}
OTHER_COLOURS = [SKY, VERMILLION, GREY, YELLOW]


# ----------------------------------------------------------------------------- forecasts


def plot_forecasts(
    history: pd.DataFrame,
    forecast: pd.DataFrame,
    *,
    id_col: str,
    time_col: str,
    target: str,
    truth: pd.DataFrame | None = None,
    threshold: float | None = None,
    eol: pd.DataFrame | None = None,
    specimens: list[str] | None = None,
    max_specimens: int = 12,
    title: str | None = None,
    time_unit: str | None = None,
) -> Figure:
    """Draw history, forecast and uncertainty for each specimen, one panel each.

    Parameters
    ----------
    history : DataFrame
        Long table, one row per specimen and time: ``id_col``, ``time_col`` and ``target`` (the
        measured values; NaN = not measured). Other columns are ignored.
    forecast : DataFrame
        Long table of forecast rows: ``id_col``, ``time_col``, ``{target}_mean``; optionally
        quantile columns ``{target}_pXX`` (``_p10``, ``_p2_5`` for 2.5 %, ...) and a boolean
        ``extrapolated``. The line is the median (``_p50``) if present, else the mean; the band
        spans the lowest to the highest quantile, and a second, darker band the next pair inwards
        (e.g. p25-p75).
    id_col, time_col, target : str
        Column names. Time may be numeric or datetime64.
    truth : DataFrame, optional
        ``id_col``, ``time_col``, ``target``: the true values of the forecast rows (hollow markers).
    threshold : float, optional
        End-of-life threshold, drawn as a dashed horizontal line.
    eol : DataFrame, optional
        One row per specimen: ``id_col``, ``eol_time`` (where the mean path crosses the threshold,
        NaN if it does not), optionally ``eol_pXX`` interval columns (the lowest to highest is drawn
        as a shaded span) and ``status`` (shown in the panel title when it is not "crosses"). The
        end of life drawn is ``eol_p50`` (the median over the paths, matching the median line)
        when there is one, else ``eol_time``; the panel's title gives ``eol_time`` (the number
        ``forecast --eol-out`` writes), and the median beside it where they differ.
    specimens : list of str, optional
        Specimen ids to draw, in this order. Default (None or empty): the first
        ``max_specimens`` in order of first appearance (history, then forecast; the truth and
        the end-of-life table only add to those specimens' panels).
    max_specimens : int
        Most panels drawn when ``specimens`` is not given.
    title : str, optional
        Figure title; default "<target> forecast".
    time_unit : str, optional
        Unit of the time axis for its label, e.g. "cycles" -> "time (cycles)".

    Returns
    -------
    matplotlib.figure.Figure
        The figure (write it with :func:`save_figure`).

    A table without ``id_col`` (a single-series data set) is accepted when only one specimen is
    drawn.
    """
    tables = {"history": history, "forecast": forecast, "truth": truth, "end-of-life": eol}
    _check_forecast_tables(tables, time_col, target, max_specimens)
    all_ids, chosen, spread = _choose_specimens(tables, id_col, specimens, max_specimens, f"{target}_mean")
    by_id = {
        name: _split_by_specimen(t, name, id_col, None if name == "end-of-life" else time_col, chosen)
        for name, t in tables.items()
        if t is not None
    }

    from matplotlib.figure import Figure

    n = len(chosen)
    ncols = math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(max(6.4, 3.6 * ncols), 1.3 + 2.7 * nrows), dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False).ravel()
    legend: dict[str, object] = {}

    look = _PanelLook.of(forecast, time_col, target, threshold, _eol_interval_columns(eol))
    for index, (ax, sid) in enumerate(zip(axes, chosen, strict=False)):
        _draw_panel(ax, sid, by_id, look)
        _style_time_axis(ax, history[time_col])
        if index % ncols == 0:
            ax.set_ylabel(target)
        if index + ncols >= n:  # no panel below this one
            ax.set_xlabel(axis_label(time_col, time_unit))
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    for ax in axes[n:]:
        ax.set_visible(False)

    _forecast_legend(fig, legend)
    shown = ""
    if not specimens and len(all_ids) > n:
        how = "from the lowest forecast at the horizon to the highest" if spread else "the first"
        shown = f" ({n} of {len(all_ids)} specimens: {how})"
    fig.suptitle((title or f"{target} forecast") + shown)
    return fig


def _draw_error_lines(ax, x: np.ndarray, series: dict[str, np.ndarray]) -> None:
    """One line per model, the baselines first so that the model's is drawn on top."""
    others = iter(OTHER_COLOURS * (len(series) // len(OTHER_COLOURS) + 1))
    for name in sorted(series, key=lambda k: k == "model"):
        values = series[name]
        few = len(values) <= 30  # markers help on short horizons, clutter on long ones
        if name == "model":
            style = dict(color=BLUE, linestyle="-", marker="o", linewidth=2.6, markersize=5, zorder=5)
        else:
            style = dict(BASELINE_STYLES.get(name) or dict(color=next(others), linestyle="-", marker="v"))
            style.update(linewidth=1.3, markersize=3.5, zorder=3)
        if not few:
            style["marker"] = None
        ax.plot(x[: len(values)], values, label=name, **style)


def _check_forecast_tables(tables: dict, time_col: str, target: str, max_specimens: int) -> None:
    """The columns each table of :func:`plot_forecasts` must have (None tables are left out)."""
    needs = {
        "history": [time_col, target],
        "forecast": [time_col, f"{target}_mean"],
        "truth": [time_col, target],
        "end-of-life": ["eol_time"],
    }
    for name, table in tables.items():
        if table is not None:
            _require(table, name, needs[name])
    if max_specimens < 1:
        raise InputError(f"max_specimens must be at least 1, got {max_specimens}")


def _choose_specimens(
    tables: dict, id_col: str, specimens, max_specimens: int, mean_col: str = ""
) -> tuple[np.ndarray, list[str], bool]:
    """(every specimen id in order of first appearance, the ones to draw, whether they were spread
    over the forecasts). The specimens are those of the history and the forecast: the truth and
    the end-of-life table only add to their panels (a truth table of the whole test set drew
    panels of specimens that were never forecast). Without ``specimens`` and with more forecast
    than ``max_specimens``, the drawn ones are spread evenly from the lowest forecast at the
    horizon (``mean_col``'s last row) to the highest: the first ones by id were often all of one
    condition (eight at 25 °C and four at 65 °C, none of the 105 °C specimens that failed)."""
    with_ids = [name for name, t in tables.items() if t is not None and id_col in t.columns]
    drawn = [name for name in with_ids if name in ("history", "forecast")] or with_ids
    all_ids = pd.unique(pd.concat([tables[name][id_col].astype(str) for name in drawn], ignore_index=True))
    if len(all_ids) == 0:
        all_ids = np.array([""])
    if specimens:
        known = set(all_ids)
        for sid in specimens:
            if str(sid) not in known:
                sample = ", ".join(list(all_ids)[:5]) + (", ..." if len(all_ids) > 5 else "")
                raise InputError(
                    f"specimen {sid!r} is not in the data (specimens: {sample}); "
                    f"check the id in column '{id_col}'"
                )
        chosen = [str(s) for s in dict.fromkeys(specimens)]
    spread = None if specimens else _spread(tables.get("forecast"), id_col, mean_col, max_specimens)
    if spread is not None:  # in the tables' order
        order = {sid: k for k, sid in enumerate(all_ids)}
        chosen = sorted(spread, key=lambda sid: order.get(sid, len(order)))
    elif not specimens:
        chosen = list(all_ids[:max_specimens])
    if not chosen:
        raise InputError("no specimens to draw: the history and forecast tables are empty")
    return all_ids, chosen, spread is not None


def _spread(forecast, id_col: str, mean_col: str, k: int) -> list[str] | None:
    """``k`` forecast specimens evenly spaced from the lowest last forecast mean to the highest,
    or None (no forecast table, or no more forecast specimens than ``k``)."""
    if forecast is None or id_col not in forecast.columns or mean_col not in forecast.columns:
        return None
    last = forecast.groupby(forecast[id_col].astype(str), sort=False)[mean_col].last().dropna()
    if len(last) <= k:
        return None
    ranked = last.sort_values(kind="stable").index.to_numpy()
    picks = np.unique(np.round(np.linspace(0, len(ranked) - 1, k)).astype(int))
    return [str(s) for s in ranked[picks]]


@dataclass(frozen=True)
class _PanelLook:
    """What every forecast panel draws the same way."""

    time_col: str
    target: str
    line_col: str  # the median column, else the mean
    line_label: str
    bands: list  # (low column, high column, label), outermost first
    threshold: float | None
    eol_interval: tuple[str, str] | None

    @classmethod
    def of(cls, forecast: pd.DataFrame, time_col: str, target: str, threshold, eol_interval) -> _PanelLook:
        """The line is the median when there is one, else the mean; the bands are the quantile
        pairs from the outside in (at most two)."""
        mean_col = f"{target}_mean"
        quantiles = _quantile_columns(forecast, target)
        line_col = quantiles.get(50.0, mean_col)
        line_label = "forecast median" if line_col != mean_col else "forecast mean"
        levels = sorted(quantiles)
        bands = []  # (low column, high column, label), outermost first
        while len(levels) >= 2 and levels[0] < levels[-1]:
            lo, hi = levels.pop(0), levels.pop(-1)
            bands.append((quantiles[lo], quantiles[hi], f"{hi - lo:g} % interval (p{lo:g}-p{hi:g})"))
        return cls(time_col, target, line_col, line_label, bands[:2], threshold, eol_interval)


def _draw_panel(ax, sid: str, by_id: dict, look: _PanelLook) -> None:
    """One specimen: measured history, forecast line and bands, truth, threshold, end of life."""
    measured = dict(markersize=2.5, color=GREY, label="measured", zorder=3)
    _draw_measured(ax, by_id["history"].get(sid), look, **measured)
    fc = by_id["forecast"].get(sid)
    if fc is not None and len(fc):
        _draw_forecast(ax, fc, look)
    hidden = dict(markersize=4.5, markerfacecolor="none", markeredgecolor=BLACK, markeredgewidth=0.9)
    _draw_measured(ax, by_id.get("truth", {}).get(sid), look, **hidden, label="true value (hidden)", zorder=4)
    if look.threshold is not None:
        ax.axhline(
            look.threshold,
            color=VERMILLION,
            linestyle="--",
            linewidth=1.2,
            label="end-of-life threshold",
            zorder=2,
        )
    ax.set_title(_panel_title(sid, by_id.get("end-of-life", {}).get(sid)), fontsize=10)
    row = by_id.get("end-of-life", {}).get(sid)
    if row is not None and len(row):
        _draw_end_of_life(ax, row.iloc[0], look.eol_interval)


def _draw_measured(ax, rows: pd.DataFrame | None, look: _PanelLook, **style) -> None:
    """The measured values of ``rows`` (a specimen's history or hidden truth) as markers."""
    if rows is not None:
        rows = rows[rows[look.target].notna()]
        ax.plot(rows[look.time_col], rows[look.target], linestyle="none", marker="o", **style)


def _draw_forecast(ax, fc: pd.DataFrame, look: _PanelLook) -> None:
    x = fc[look.time_col].to_numpy()
    for i, (lo, hi, label) in enumerate(look.bands):
        ax.fill_between(
            x,
            fc[lo].to_numpy(float),
            fc[hi].to_numpy(float),
            color=BLUE,
            alpha=0.18 if i == 0 else 0.25,
            linewidth=0,
            label=label,
            zorder=1,
        )
    ax.plot(x, fc[look.line_col].to_numpy(float), color=BLUE, linewidth=1.8, label=look.line_label, zorder=4)
    population = f"{look.target}_population"  # a latent model's forecast with z = 0
    if population in fc.columns:
        style = dict(color=GREY, linestyle=":", linewidth=1.6, zorder=3)
        ax.plot(x, fc[population].to_numpy(float), label="population's forecast (z = 0)", **style)
    if "extrapolated" in fc.columns:
        flagged = fc[fc["extrapolated"].eq(True)]
        if len(flagged):
            ax.plot(
                flagged[look.time_col],
                flagged[look.line_col],
                linestyle="none",
                marker="x",
                markersize=5,
                markeredgewidth=1.2,
                color=VERMILLION,
                zorder=5,
                label="extrapolated (outside the training range)",
            )


def _draw_end_of_life(ax, row: pd.Series, eol_interval: tuple[str, str] | None) -> None:
    if eol_interval and pd.notna(row[eol_interval[0]]) and pd.notna(row[eol_interval[1]]):
        lo, hi = eol_interval
        ax.axvspan(
            row[lo],
            row[hi],
            color=PURPLE,
            alpha=0.15,
            linewidth=0,
            zorder=0,
            label=f"end-of-life interval ({lo.removeprefix('eol_')}-{hi.removeprefix('eol_')})",
        )
    column, label = _eol_column(row)
    if pd.notna(row[column]):
        ax.axvline(row[column], color=PURPLE, linestyle="-.", linewidth=1.8, zorder=2, label=label)


def _eol_column(row: pd.Series) -> tuple[str, str]:
    """The end of life to draw and its legend: the paths' median when known, else the mean path's."""
    if "eol_p50" in row.index:
        return "eol_p50", "predicted end of life (median)"
    return "eol_time", "predicted end of life (mean path)"


def _forecast_legend(fig, legend: dict) -> None:
    """One legend under the panels; markers a little bigger than in the panels, so they can be
    told apart."""
    from matplotlib.lines import Line2D

    handles = []
    for label, h in legend.items():
        if isinstance(h, Line2D) and h.get_linestyle() == "None":
            h = Line2D(
                [],
                [],
                linestyle="none",
                marker=h.get_marker(),
                markersize=6,
                markerfacecolor=h.get_markerfacecolor(),
                markeredgecolor=h.get_markeredgecolor(),
                markeredgewidth=h.get_markeredgewidth(),
                label=label,
            )
        handles.append(h)
    if handles:
        fig.legend(
            handles,
            list(legend),
            loc="outside lower center",
            ncols=min(4, len(handles)),
            frameon=False,
            fontsize=9,
        )


def _panel_title(sid: str, eol_rows: pd.DataFrame | None) -> str:
    if eol_rows is None or not len(eol_rows):
        return sid
    row = eol_rows.iloc[0]
    status = row.get("status")
    column, _ = _eol_column(row)
    drawn = pd.notna(row[column])
    if status == "not within horizon" and drawn:  # the median's line is drawn: say what crosses
        return f"{sid}: median end of life ≈ {_format_time(row[column])} (the mean path does not cross)"
    if isinstance(status, str) and status and status != "crosses":
        return f"{sid}: {status}"
    mean = row.get("eol_time")
    if pd.notna(mean):  # the number `forecast --eol-out` writes, and the drawn median beside it
        said = f"{sid}: end of life ≈ {_format_time(mean)}"
        if column != "eol_time" and drawn and _format_time(row[column]) != _format_time(mean):
            said += f" (median of the paths {_format_time(row[column])})"
        return said
    if drawn:
        return f"{sid}: end of life ≈ {_format_time(row[column])}"
    return sid


def _format_time(value) -> str:
    if isinstance(value, pd.Timestamp | np.datetime64):
        stamp = pd.Timestamp(value)
        return stamp.strftime("%Y-%m-%d" if stamp == stamp.normalize() else "%Y-%m-%d %H:%M")
    value = float(value)
    return f"{value:.0f}" if 1e3 <= abs(value) < 1e9 else f"{value:.4g}"


def _split_by_specimen(
    table: pd.DataFrame, name: str, id_col: str, time_col: str | None, chosen: list[str]
) -> dict[str, pd.DataFrame]:
    """The rows of each chosen specimen, in time order when ``time_col`` is given."""
    if time_col is not None:
        table = table.iloc[np.argsort(table[time_col].to_numpy(), kind="stable")]
    if id_col not in table.columns:
        if len(chosen) > 1:
            raise InputError(
                f"the {name} table has no column '{id_col}'; it is needed to tell the "
                f"{len(chosen)} specimens apart"
            )
        return {chosen[0]: table}
    keys = table[id_col].astype(str).to_numpy()
    mask = np.isin(keys, chosen)
    return dict(tuple(table[mask].groupby(keys[mask], sort=False)))


def _quantile_columns(forecast: pd.DataFrame, target: str) -> dict[float, str]:
    """{percent: column} for the ``{target}_pXX`` columns (``_p2_5`` is 2.5 %)."""
    pattern = re.compile(re.escape(target) + r"_p(\d+(?:_\d+)?)")
    found = {}
    for col in forecast.columns:
        match = pattern.fullmatch(str(col))
        if match:
            found[float(match.group(1).replace("_", "."))] = col
    return found


def _eol_interval_columns(eol: pd.DataFrame | None) -> tuple[str, str] | None:
    """The lowest and highest ``eol_pXX`` columns, if there are two different ones."""
    if eol is None:
        return None
    levels = {}
    for col in eol.columns:
        match = re.fullmatch(r"eol_p(\d+(?:_\d+)?)", str(col))
        if match:
            levels[float(match.group(1).replace("_", "."))] = col
    if len(levels) < 2:
        return None
    return levels[min(levels)], levels[max(levels)]


def _style_time_axis(ax, times: pd.Series) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.ticker import MaxNLocator

    if pd.api.types.is_datetime64_any_dtype(times):
        locator = AutoDateLocator(minticks=3, maxticks=6)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.grid(True, color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)


# ----------------------------------------------------------------------------- horizon errors


def plot_horizon_errors(
    by_step: dict[str, list[float]],
    *,
    metric: str = "RMSE",
    unit: str = "",
    times: list[float] | None = None,
    counts: list[int] | None = None,
    time_unit: str | None = None,
    min_count: int = MIN_COUNT,
    count_label: str = "specimens scored",
) -> Figure:
    """Draw the backtest error by forecast horizon for the model and the baselines.

    Parameters
    ----------
    by_step : dict of str to list of float
        ``{model name: [error at step 1, step 2, ...]}``, as in the ``rmse_by_step`` entries of
        ``durability evaluate --json``, or the error in each bin of time after the cut-off
        (``metrics.by_horizon``). ``None`` or NaN marks a step with no forecasts. The entry
        named "model" is drawn bold; "persistence", "linear" and "exponential" thinner, each with
        its own dash pattern.
    metric : str
        Name of the error, for the y label.
    unit : str
        Unit of the error, for the y label (empty: none shown).
    times : list of float, optional
        Time after the cut-off of each entry (the middles of the time bins): the x axis is then
        the time ahead in time units; None: the step number.
    counts : list of int, optional
        Forecasts scored in each entry (the report's ``n_by_step``, or ``forecasts`` of
        ``metrics.by_horizon``): drawn as bars in a lower panel; entries with fewer than
        ``min_count`` are left out of the error lines (their error rests on one or two
        specimens and is mostly noise; the title says how many).
    time_unit : str, optional
        Unit of the time axis for its label, e.g. "cycles".
    count_label : str
        Y label of the count panel.

    Returns
    -------
    matplotlib.figure.Figure
        The figure. The y axis is logarithmic when the errors span more than two decades.
    """
    if not by_step:
        raise InputError("no errors to draw: by_step is empty")
    series = {name: _floats(values) for name, values in by_step.items()}
    finite = np.concatenate([v[np.isfinite(v)] for v in series.values()])
    if finite.size == 0:
        raise InputError("no errors to draw: every value is missing")
    longest = max(len(v) for v in series.values())
    x, xlabel = _horizon_axis(longest, times, time_unit)
    keep, dropped = _enough(counts, longest, min_count)
    if keep.any():  # all steps too thin: draw them all rather than nothing
        series = {name: np.where(keep[: len(v)], v, np.nan) for name, v in series.items()}
        finite = np.concatenate([v[np.isfinite(v)] for v in series.values()])

    from matplotlib.figure import Figure

    counted = counts is not None
    fig = Figure(figsize=(7.0, 5.4 if counted else 4.2), dpi=DPI, layout="constrained")
    if counted:
        ax, below = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    else:
        ax, below = fig.subplots(), None
    _draw_error_lines(ax, x, series)
    positive = finite[finite > 0]
    if positive.size == finite.size and positive.max() / positive.min() > 100:
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=min(0.0, finite.min() * 1.05))
    ax.set_ylabel(f"{metric} [{unit}]" if unit else metric)
    from durability_cli.metrics import BASELINES
    from durability_cli.mixed_effects import NAME

    # the other columns: compared models by name (evaluate -m A -m B), the baselines as one word
    baselines = {*BASELINES, NAME}
    others = [n for n in series if n != "model" and n not in baselines]
    others += ["baselines"] if any(n in baselines for n in series) else []
    title = f"{metric} by forecast horizon" + (f": model vs {', '.join(others)}" if others else "")
    if dropped:
        title += f"\n({_left_out(dropped, times)} with fewer than {min_count} forecasts left out)"
    ax.set_title(title)
    _grid(ax)
    _horizon_ticks(ax, x, times)
    if below is not None:
        _draw_counts(below, x, counts, keep if dropped else None, count_label, times)
        below.set_xlabel(xlabel)
    else:
        ax.set_xlabel(xlabel)
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: labels[i] != "model")
    fig.legend(
        [handles[i] for i in order],
        [labels[i] for i in order],
        loc="outside right upper",
        frameon=False,
        fontsize=9,
    )
    return fig


def axis_label(name: str, unit: str | None) -> str:
    """``time (cycles)``; just ``time`` when the unit is not known."""
    return f"{name} ({unit})" if unit else name


def _floats(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _horizon_axis(steps: int, times, time_unit: str | None) -> tuple[np.ndarray, str]:
    """x positions of the entries and the axis label: their time ahead of the cut-off when it is
    known for every one, else the step number."""
    if times is not None:
        x = _floats(times)[:steps]
        if len(x) == steps and np.isfinite(x).all():
            return x, axis_label("time ahead of the last measurement", time_unit or "time units")
    return np.arange(1, steps + 1, dtype=float), "forecast step (steps ahead of the last measurement)"


def _enough(counts, steps: int, min_count: int) -> tuple[np.ndarray, int]:
    """(entries with at least ``min_count`` forecasts, how many non-empty ones that leaves out)."""
    if counts is None:
        return np.ones(steps, dtype=bool), 0
    n = np.zeros(steps)
    given = _floats(counts)[:steps]
    n[: len(given)] = np.nan_to_num(given)
    keep = n >= min_count
    return keep, int((~keep & (n > 0)).sum()) if keep.any() else 0


def _left_out(dropped: int, times) -> str:
    return f"{dropped} step(s)" if times is None else f"{dropped} time bin(s)"


def _log_time(x: np.ndarray, times) -> bool:
    """Whether the horizon axis is logarithmic: times over more than two decades (log bins)."""
    return times is not None and len(x) > 1 and x.min() > 0 and x.max() > 100 * x.min()


def _horizon_ticks(ax, x: np.ndarray, times) -> None:
    from matplotlib.ticker import MaxNLocator

    if _log_time(x, times):
        ax.set_xscale("log")
        ratio = (x[-1] / x[0]) ** (1 / (2 * (len(x) - 1)))  # half a bin, in the log scale
        ax.set_xlim(x[0] / ratio, x[-1] * ratio)
        return
    ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=times is None))
    span = (x.max() - x.min()) if len(x) > 1 else 1.0
    pad = span / max(len(x) - 1, 1) / 2 if len(x) > 1 else 0.5
    ax.set_xlim(x.min() - pad, x.max() + pad)


def _draw_counts(ax, x: np.ndarray, counts, keep: np.ndarray | None, label: str, times=None) -> None:
    """Forecasts per entry as bars; those left out of the lines grey."""
    n = np.nan_to_num(_floats(counts)[: len(x)])
    colours = [SKY if keep is None or keep[i] else "#cccccc" for i in range(len(n))]
    if _log_time(x, times):  # bars as wide as 80 % of their log bin
        ratio = (x[-1] / x[0]) ** (0.8 / (2 * (len(x) - 1)))
        ax.bar(x / ratio, n, width=x * ratio - x / ratio, align="edge", color=colours, edgecolor="none")
    else:
        gaps = np.diff(x)
        width = (gaps[gaps > 0].min() if (gaps > 0).any() else 1.0) * 0.8  # bars never overlap
        ax.bar(x[: len(n)], n, width=width, color=colours, edgecolor="none")
    ax.set_ylabel(label)
    ax.set_ylim(bottom=0)
    _grid(ax)


def _grid(ax) -> None:
    ax.grid(True, which="major", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)


# ----------------------------------------------------------------------------- training history


def plot_training_history(
    history: list[dict], *, loss: str | None = None, others: list[list[dict]] | None = None
) -> Figure:
    """Draw a model's training history: loss and validation error, and the teacher forcing.

    Parameters
    ----------
    history : list of dict
        One dict per epoch, as saved in the model file's summary: ``epoch``, ``train_loss``,
        ``val_rmse`` (free-running validation RMSE; None or NaN when not computed),
        ``teacher_forcing`` (the schedule's probability of feeding the measured value) and
        ``best`` (True on each epoch that improved the validation RMSE; the last such is the best
        epoch, whose weights the model file keeps). Other keys are ignored.
    loss : str, optional
        The model's training loss (gaussian, mse, huber), named in the loss axis label: a
        Gaussian negative log-likelihood can go below zero, unlike an error.
    others : list of histories, optional
        An ensemble's other members (``train --ensemble``): their validation RMSE per epoch is
        drawn in thin grey lines behind member 1's, which the rest of the figure shows.

    Returns
    -------
    matplotlib.figure.Figure
        The figure. Upper panel: training loss (left axis) and validation RMSE (right axis)
        with the best epoch marked. Lower panel: teacher-forcing probability per epoch, left
        out when it is the same every epoch (the title gives the value).
    """
    epoch, loss_values, rmse, forcing = _history_columns(history)
    best = _best_epoch(history, rmse)
    constant = np.nanmin(forcing) == np.nanmax(forcing) if np.isfinite(forcing).any() else True

    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(7.0, 4.4 if constant else 5.6), dpi=DPI, layout="constrained")
    if constant:
        top, bottom = fig.subplots(), None
    else:
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2.2, 1])
    right = top.twinx()
    loss_label = _LOSS_LABELS.get(loss or "", "training loss")
    top.plot(epoch, loss_values, color=BLUE, marker="o", markersize=3, linewidth=1.6, label=loss_label)
    right.plot(
        epoch,
        rmse,
        color=VERMILLION,
        marker="s",
        markersize=3,
        linewidth=1.6,
        linestyle="--",
        label="validation RMSE (free-running)",
    )
    if best is not None:
        for ax in (top, bottom):
            if ax is not None:
                ax.axvline(epoch[best], color=GREY, linestyle=":", linewidth=1.2, zorder=0)
        right.plot(
            [epoch[best]],
            [rmse[best]],
            linestyle="none",
            marker="*",
            markersize=14,
            markerfacecolor=YELLOW,
            markeredgecolor=BLACK,
            zorder=6,
            label=f"best epoch {epoch[best]:g} (RMSE {rmse[best]:.4g}): weights kept",
        )
    for k, member in enumerate(others or [], start=2):
        other_epoch, _, other_rmse, _ = _history_columns(member)
        right.plot(
            other_epoch,
            other_rmse,
            color=GREY,
            linewidth=0.9,
            alpha=0.8,
            zorder=1,
            label="validation RMSE, other members" if k == 2 else "_nolegend_",
        )
    for ax, values in ((top, loss_values), (right, rmse)):
        finite = values[np.isfinite(values)]
        if finite.size and finite.min() > 0 and finite.max() / finite.min() > 100:
            ax.set_yscale("log")
    _two_axes_labels(top, right, loss_label)
    title = "Training history" + (f", member 1 of {len(others) + 1}" if others else "")
    if constant and np.isfinite(forcing).any():
        title += f" (teacher forcing constant: p = {forcing[np.isfinite(forcing)][0]:g})"
    top.set_title(title)
    _grid(top)
    handles = top.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    fig.legend(
        handles,
        [h.get_label() for h in handles],
        loc="outside lower center",
        ncols=2,
        frameon=False,
        fontsize=9,
    )
    if bottom is None:
        top.set_xlabel("epoch")
        top.xaxis.set_major_locator(MaxNLocator(integer=True))
        return fig
    _draw_forcing(bottom, epoch, forcing)
    return fig


def _history_columns(history: list[dict]):
    """epoch, training loss, validation RMSE and teacher forcing per epoch as float arrays (NaN
    where not recorded); a history without those keys is an error."""
    if not history:
        raise InputError("no training history to draw: the model file records no epochs")
    keys = ("epoch", "train_loss", "val_rmse", "teacher_forcing", "best")
    for i, entry in enumerate(history):
        missing = [k for k in keys if k not in entry]
        if missing:
            raise InputError(
                f"training history entry {i} has no {', '.join(missing)}; "
                "re-train the model with this version of durability"
            )
    return tuple(
        np.array([np.nan if e[k] is None else e[k] for e in history], dtype=float)
        for k in ("epoch", "train_loss", "val_rmse", "teacher_forcing")
    )


def _two_axes_labels(top, right, loss_label: str) -> None:
    top.set_ylabel(loss_label, color=BLUE)
    top.tick_params(axis="y", colors=BLUE)
    right.set_ylabel("validation RMSE (free-running)", color=VERMILLION)
    right.tick_params(axis="y", colors=VERMILLION)


def _draw_forcing(bottom, epoch: np.ndarray, forcing: np.ndarray) -> None:
    """The lower panel: the teacher-forcing probability per epoch."""
    from matplotlib.ticker import MaxNLocator

    bottom.step(epoch, forcing, where="mid", color=GREEN, linewidth=1.8)
    bottom.fill_between(epoch, forcing, step="mid", color=GREEN, alpha=0.15, linewidth=0)
    bottom.set_ylim(-0.03, 1.05)
    bottom.set_ylabel("teacher-forcing\nprobability")
    bottom.set_xlabel("epoch")
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    _grid(bottom)


# The loss axis says what is minimised: a Gaussian negative log-likelihood goes below zero.
_LOSS_LABELS = {
    "gaussian": "training loss (Gaussian NLL)",
    "mse": "training loss (MSE)",
    "huber": "training loss (Huber)",
}


def _best_epoch(history: list[dict], rmse: np.ndarray) -> int | None:
    """The index of the best epoch: the last that improved, else the lowest RMSE, else None."""
    improved = [i for i, e in enumerate(history) if e["best"]]
    if improved:
        return improved[-1]
    return int(np.nanargmin(rmse)) if np.isfinite(rmse).any() else None


# ----------------------------------------------------------------------------- calibration


def plot_calibration(
    levels: pd.DataFrame,
    coverage: list[float],
    *,
    band_level: float = 0.8,
    times: list[float] | None = None,
    counts: list[int] | None = None,
    time_unit: str | None = None,
    min_count: int = MIN_COUNT,
    count_label: str = "specimens scored",
) -> Figure:
    """Draw whether the forecast quantiles can be trusted: a reliability diagram and the interval
    coverage by forecast horizon.

    Parameters
    ----------
    levels : DataFrame
        One row per quantile level: ``level`` (nominal, 0..1), ``observed`` (share of true values
        at or below the forecast quantile) and ``n`` (points scored), as
        ``metrics.quantile_calibration`` gives them.
    coverage : list of float
        Share of true values inside the central ``band_level`` interval, per forecast step or
        per bin of time after the cut-off (``coverage`` of ``metrics.by_horizon``).
    band_level : float
        Nominal coverage of that interval (0.8 for p10-p90).
    times, counts, time_unit, min_count, count_label
        As in :func:`plot_horizon_errors`: the x axis of the right panel in time units, and
        entries with fewer than ``min_count`` forecasts left out of the coverage line (grey bars).

    Returns
    -------
    matplotlib.figure.Figure
        Left: observed against nominal level, with the diagonal a calibrated forecast follows.
        Right: coverage of the interval at each horizon, the nominal level dashed, and the
        forecasts scored per step as bars on the right axis.
    """
    _require(levels, "calibration", ["level", "observed", "n"])
    if not len(levels) or not np.isfinite(levels["observed"].to_numpy(float)).any():
        raise InputError(
            "no quantiles to check: the backtest has no quantile forecasts (a Gaussian model "
            "with samples > 0 gives them)"
        )
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11.0, 4.6), dpi=DPI, layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.35])
    left.plot([0, 1], [0, 1], color=GREY, linestyle="--", linewidth=1.0, label="calibrated")
    left.plot(
        levels["level"],
        levels["observed"],
        color=BLUE,
        marker="o",
        markersize=5,
        linewidth=2.0,
        label="model",
    )
    left.set_xlim(0, 1)
    left.set_ylim(0, 1)
    left.set_aspect("equal")
    left.set_xlabel(
        "nominal quantile level\n(above the diagonal: forecasts too high;\n"
        "flatter than it: intervals too narrow, steeper: too wide)",
        fontsize=9,
    )
    left.set_ylabel("observed share of true values below the quantile")
    n = int(levels["n"].max())
    left.set_title(f"Reliability by quantile ({n:,} forecast points)", fontsize=11)
    left.legend(loc="lower right", frameon=False, fontsize=9)
    _grid(left)

    coverage = _floats(coverage)
    steps = len(coverage)
    n = np.nan_to_num(_floats(counts)) if counts is not None else np.zeros(steps)
    x, xlabel = _horizon_axis(steps, times, time_unit)
    keep, dropped = _enough(counts, steps, min_count)
    bars = right.twinx()
    _draw_counts(bars, x, n, keep if dropped else None, count_label, times)
    for bar in bars.patches:
        bar.set_alpha(0.35)
    bars.set_ylim(0, max(n.max(initial=1), 1) * 3)  # bars in the lower third
    bars.grid(False)
    right.set_zorder(bars.get_zorder() + 1)
    right.patch.set_visible(False)
    right.axhline(band_level, color=GREY, linestyle="--", linewidth=1.0, label=f"nominal {band_level:.0%}")
    shown = np.where(keep, coverage, np.nan) if keep.any() else coverage
    right.plot(x, shown, color=BLUE, marker="o", markersize=3.5, linewidth=1.8, label="observed")
    right.set_ylim(0, 1.02)
    right.set_ylabel(f"share inside the {band_level:.0%} interval")
    right.set_xlabel(xlabel)
    title = f"{band_level:.0%} interval coverage by forecast horizon"
    if dropped:
        title += f"\n({_left_out(dropped, times)} with fewer than {min_count} forecasts left out)"
    right.set_title(title, fontsize=11)
    right.legend(loc="lower left", frameon=False, fontsize=9)
    _grid(right)
    if steps:
        _horizon_ticks(right, x, times)
    return fig


# ----------------------------------------------------------------------------- end of life


def plot_end_of_life(
    table: pd.DataFrame,
    *,
    threshold: float,
    time_unit: str | None = None,
    interval: str = "p10-p90",
    direction: str = "below",
) -> Figure:
    """Draw predicted against true end of life, one point per specimen.

    Parameters
    ----------
    table : DataFrame
        One row per specimen, as ``evaluation.end_of_life_backtest`` gives it: ``eol_true``
        (measured first crossing; NaN when the data never reach the threshold), ``censor_time``
        (the last measured time: the true end of life is later than this when it is NaN),
        ``eol_pred`` (the predicted end of life), ``eol_low`` and ``eol_high`` (its interval;
        NaN where that share of the paths has not crossed by the end of the forecast),
        ``horizon_end`` (the last forecast time) and ``status`` ("already past" rows are not
        drawn: their end of life came before the cut-off).
    threshold : float
        The end-of-life threshold, for the title.
    time_unit : str, optional
        Unit of both axes, e.g. "cycles".
    interval : str
        Name of the interval, for the legend.

    Returns
    -------
    matplotlib.figure.Figure
        Filled circles: both crossed; open circles with a right arrow: the data end before the
        threshold (the true end of life is later than x); open triangles: the forecast does not
        cross within the horizon (drawn at its end). The diagonal is a perfect forecast.
    """
    _require(
        table,
        "end-of-life",
        ["eol_true", "censor_time", "eol_pred", "eol_low", "eol_high", "horizon_end", "status"],
    )
    rows = table.loc[table["status"] != "already past"]
    past = len(table) - len(rows)
    if not len(rows):
        other, moves = ("above", "rises") if direction == "below" else ("below", "falls")
        raise InputError(
            f"no end of life to draw: every specimen is already {direction} the threshold {threshold:g} at "
            f"its cut-off; if the target {moves} with wear, use --direction {other}, else a smaller context"
        )
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 6.0), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    true_x, pred_y, censored, crossed = _eol_xy(rows)
    # neither the truth nor the forecast crosses within the data: nothing to compare, and drawn at
    # (last measurement, horizon end) they piled up on the diagonal, reading as perfect forecasts
    neither = censored & ~crossed
    if neither.all():
        raise InputError(
            f"no end of life to draw: neither the measurements nor the forecasts of the {len(rows)} "
            f"specimen(s) cross the threshold {threshold:g} within the data; use a smaller context, or "
            "a threshold the measurements reach"
        )
    keep = ~neither
    rows = rows.loc[keep]
    true_x, pred_y, censored, crossed = points = true_x[keep], pred_y[keep], censored[keep], crossed[keep]
    lo, hi, pad = _draw_eol_points(ax, rows, points, interval)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_aspect("equal")
    ax.set_xlabel(axis_label("true end of life", time_unit or "time units"))
    ax.set_ylabel(axis_label("predicted end of life (median)", time_unit or "time units"))
    both_cross = ~censored & crossed
    title = f"End of life at threshold {threshold:g}: {len(rows) + int(neither.sum())} specimens"
    if both_cross.any():
        mae = float(np.mean(np.abs(pred_y[both_cross] - true_x[both_cross])))
        # of the median: evaluate's eol.mae is the mean path's crossing's, a different point
        title += f"\nMAE of the median {mae:.3g} over the {int(both_cross.sum())} that both cross"
    skipped = [f"{past} already past at the cut-off"] if past else []
    skipped += (
        [f"{int(neither.sum())} crossing within neither the data nor the forecast"] if neither.any() else []
    )
    if skipped:
        title += f"\n{' and '.join(skipped)}: not drawn"
    ax.set_title(title, fontsize=11)
    fig.legend(loc="outside lower center", ncols=2, frameon=False, fontsize=8)
    _grid(ax)
    return fig


# ----------------------------------------------------------------------------- error by condition


def plot_condition_errors(
    specimens: pd.DataFrame,
    trends: dict,
    *,
    target: str = "durability",
    compared: dict[str, tuple[pd.DataFrame, dict]] | None = None,
) -> Figure:
    """Draw each specimen's mean error against its mean of each condition, a panel per condition.

    Parameters
    ----------
    specimens : DataFrame
        One row per specimen, as ``Evaluation.specimens`` holds it: ``error`` (the model's mean
        forecast - measured over its scored rows), ``n`` (those rows) and a column per condition
        (its mean over the rows forecast).
    trends : dict
        The report's ``by_condition`` (metrics.condition_trends): each panel's title gives the
        rank correlation, and says when the error follows the condition.
    target : str
        The durability column, for the y axis.
    compared : dict, optional
        Other models of the same backtest (``evaluate -m A -m B``), by name: each one's
        specimens table (``Evaluation.compared_specimens``) and trends (the report's
        ``by_condition_compared``), drawn in a colour of its own beside the first model's.

    Returns
    -------
    matplotlib.figure.Figure
        Points: specimens. The two short lines: the mean error of the third of the specimens with
        the least of the condition and of the third with the most, over their spans. A model that
        has learned how the condition drives the wear scatters evenly around 0 across the range.
        A categorical static column (material A, B) gets a column of points per label and the
        label's mean error as a line.
    """
    _require(specimens, "specimens", ["error", "n"])
    models = [("model", specimens, trends)] + [(name, s, t) for name, (s, t) in (compared or {}).items()]
    for name, table, _ in models[1:]:
        _require(table, f"{name}'s specimens", ["error", "n"])
    names = []  # the panels: every column some model's trends hold and its table has
    for _, table, found in models:
        names += [c for c in found.get("columns") or {} if c in table.columns and c not in names]
    rows = specimens.loc[specimens["n"] > 0]
    if not names or not len(rows):
        raise InputError(
            "no condition to draw: the model reads no numeric condition, or no specimen was scored"
        )
    from matplotlib.figure import Figure

    cols = min(3, len(names))
    nrows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.6 * nrows), dpi=DPI, layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, cols, sharey=True, squeeze=False)).ravel()
    looks = _trend_looks([name for name, _, _ in models])
    for ax, column in zip(axes, names, strict=False):
        ax.axhline(0.0, color=GREY, linewidth=0.8)
        heads = []
        drawn = [
            (name, table, found) for name, table, found in models if column in (found.get("columns") or {})
        ]
        order = list(drawn[0][2]["columns"][column].get("groups") or {})  # one label order for all
        for k, (name, table, found) in enumerate(drawn):
            c, look = found["columns"][column], looks[name]
            part = table.loc[table["n"] > 0]
            if c.get("kind") == "category":
                heads.append(_category_panel(ax, part, column, c, look, order, (k, len(drawn))))
            else:
                heads.append(_numeric_points(ax, part, column, c, look))
        if len(models) == 1:
            head, follows = heads[0]
            title = f"{column}: {head}" + (f"\n{follows}" if follows else "")
        else:  # a line per model
            title = column + "".join(
                f"\n{name}: {head}" + (f", {follows}" if follows else "")
                for (name, _, _), (head, follows) in zip(drawn, heads, strict=True)
            )
        ax.set_title(title, fontsize=10 if len(models) == 1 else 9)
        _grid(ax)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    for ax in axes[::cols]:
        ax.set_ylabel(f"mean error of {target}\n(forecast - measured)")
    if len(models) > 1:
        from matplotlib.lines import Line2D

        handles = [
            Line2D([], [], color=looks[name]["points"], marker="o", linestyle="none", label=name)
            for name, _, _ in models
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=len(models), frameon=False, fontsize=8)
    fig.suptitle(
        f"Error by condition: {len(rows)} specimens (lines: the mean error of the third with the least, and with the most)",
        fontsize=11,
    )
    return fig


def _trend_looks(names: list[str]) -> dict[str, dict]:
    """Each model's colours in plot_condition_errors: one model's points blue and its lines
    vermillion; with compared models the first one's points and lines blue, each other's in a
    colour of its own, its lines dashed."""
    others = [VERMILLION, GREEN, PURPLE, SKY, YELLOW, GREY]
    looks = {names[0]: {"points": BLUE, "line": VERMILLION if len(names) == 1 else BLUE, "style": "-"}}
    for k, name in enumerate(names[1:]):
        colour = others[k % len(others)]
        looks[name] = {"points": colour, "line": colour, "style": "--"}
    return looks


def _numeric_points(ax, rows: pd.DataFrame, name: str, c: dict, look: dict) -> tuple[str, str]:
    """One model's points of a numeric condition's panel and its thirds' lines; returns its part
    of the panel's title: what was measured, and whether the error follows the condition."""
    ok = rows[[name, "error"]].dropna()
    ax.scatter(ok[name], ok["error"], s=14, color=look["points"], alpha=0.75, linewidths=0)
    third = len(ok) // 3
    if third:
        ordered = ok.sort_values(name, kind="stable")
        # a third at a single level (an accelerated test's few temperatures) still gets a line to
        # see: at least 6 % of the panel's range wide, centred on it
        pad = 0.03 * (float(ok[name].max() - ok[name].min()) or 1.0)
        for part in (ordered.iloc[:third], ordered.iloc[-third:]):
            lo, hi = float(part[name].min()), float(part[name].max())
            if hi - lo < 2 * pad:
                lo, hi = (lo + hi) / 2 - pad, (lo + hi) / 2 + pad
            ax.hlines(
                part["error"].mean(),
                lo,
                hi,
                color=look["line"],
                linewidth=2.2,
                linestyles=look["style"],
            )
    ax.set_xlabel(f"mean {name} over the rows forecast")
    rho = c.get("rank_correlation")
    head = f"rank correlation {rho:+.2f}" if _finite(rho) else "no trend to measure"
    return head, "the error follows it" if c.get("follows") else ""


def _category_panel(
    ax, rows: pd.DataFrame, name: str, c: dict, look: dict, labels: list[str], slot: tuple[int, int]
) -> tuple[str, str]:
    """One model's points of a categorical column's panel: each of ``labels``' specimens in a
    column of their own (spread sideways by their order, so that none hides another; ``slot``
    (k, of) puts the k-th model's columns beside the others') and the label's mean error as a
    short line. Returns its part of the panel's title, as :func:`_numeric_points` does."""
    k, of = slot
    width = 0.64 / of
    shift = -0.32 + width * (k + 0.5)
    half = 0.25 * width / 0.64  # one model: its points within 0.25 of the label's place
    for j, label in enumerate(labels):
        err = rows.loc[rows[name].astype(str) == label, "error"].dropna().to_numpy(float)
        x = j + shift
        spread = np.linspace(-half, half, len(err)) if len(err) > 1 else np.zeros(len(err))
        ax.scatter(x + spread, err, s=14, color=look["points"], alpha=0.75, linewidths=0)
        if len(err):
            ax.hlines(
                err.mean(),
                x - width / 2,
                x + width / 2,
                color=look["line"],
                linewidth=2.2,
                linestyles=look["style"],
            )
    if k == 0:
        ax.set_xticks(range(len(labels)), labels)
        ax.set_xlim(-0.6, len(labels) - 0.4)
        ax.set_xlabel(name)
    p = c.get("p_value")
    head = f"Kruskal-Wallis p {p:.2g}" if _finite(p) else "too few specimens to test"
    return head, "the error differs by it" if c.get("follows") else ""


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


# ----------------------------------------------------------------------------- shared


def _eol_xy(rows: pd.DataFrame):
    """Each specimen's point: x the true end of life (the last measured time when censored), y
    the predicted one (the horizon's end when the forecast does not cross)."""
    censored = rows["eol_true"].isna().to_numpy()
    true_x = np.where(censored, rows["censor_time"], rows["eol_true"]).astype(float)
    crossed = rows["eol_pred"].notna().to_numpy()
    pred_y = np.where(crossed, rows["eol_pred"], rows["horizon_end"]).astype(float)
    return true_x, pred_y, censored, crossed


def _draw_eol_points(ax, rows: pd.DataFrame, points, interval: str) -> tuple[float, float, float]:
    """The interval bars, the four kinds of markers (``points``: what ``_eol_xy`` gives), the
    censoring arrows and the diagonal; returns the axes' common range (lo, hi) and its padding."""
    true_x, pred_y, censored, crossed = points
    low = rows["eol_low"].to_numpy(float)
    high = np.where(rows["eol_high"].notna(), rows["eol_high"], rows["horizon_end"]).astype(float)
    low = np.where(np.isfinite(low), low, pred_y)
    ax.errorbar(
        true_x,
        pred_y,
        yerr=[np.maximum(pred_y - low, 0), np.maximum(high - pred_y, 0)],
        fmt="none",
        ecolor=BLUE,
        alpha=0.45,
        elinewidth=1.2,
        capsize=2,
        label=f"predicted {interval}",
        zorder=2,
    )
    kinds = [
        (~censored & crossed, dict(marker="o", color=BLUE), "both cross the threshold"),
        (censored & crossed, dict(marker="o", markerfacecolor="white", color=ORANGE), "true end of life later (data end first)"),
        (~censored & ~crossed, dict(marker="^", markerfacecolor="white", color=VERMILLION), "forecast does not cross (drawn at horizon end)"),
        (censored & ~crossed, dict(marker="^", markerfacecolor="white", color=GREY), "neither crosses within the data"),
    ]  # fmt: skip
    for mask, style, label in kinds:
        if mask.any():
            ax.plot(
                true_x[mask],
                pred_y[mask],
                linestyle="none",
                markersize=6,
                label=f"{label} ({mask.sum()})",
                zorder=4,
                **style,
            )
    both = np.concatenate([true_x, pred_y, low[np.isfinite(low)], high[np.isfinite(high)]])
    lo, hi = float(np.nanmin(both)), float(np.nanmax(both))
    pad = (hi - lo) * 0.05 or 1.0
    if censored.any():  # an arrow to the right: the truth lies beyond the last measurement
        ax.plot(
            true_x[censored] + pad * 0.4,
            pred_y[censored],
            linestyle="none",
            marker=5,
            markersize=6,
            color=ORANGE,
            label="true end of life beyond the last measurement",
            zorder=3,
        )
    ax.plot(
        [lo - pad, hi + pad],
        [lo - pad, hi + pad],
        color=GREY,
        linestyle="--",
        linewidth=1.0,
        label="perfect forecast",
        zorder=1,
    )
    return lo, hi, pad


def _picture_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: unsupported picture format; use .png or .svg")
    return fmt


def _require(table: pd.DataFrame, name: str, columns: list[str]) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(
            f"the {name} table has no column {', '.join(map(repr, missing))}; "
            f"it has {', '.join(map(str, table.columns))}"
        )


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` to a ``.png`` or ``.svg`` file (atomically: a failure leaves an existing
    file as it was); returns the path."""
    import matplotlib

    path = Path(path)
    fmt = _picture_format(path)
    # No date stamp and fixed element ids, so that the same figure gives the same SVG file.
    metadata = {"Date": None} if fmt == "svg" else None
    with atomic_path(path) as tmp, matplotlib.rc_context({"svg.hashsalt": "durability"}):
        fig.savefig(
            tmp,
            format=fmt,
            dpi=DPI,
            metadata=metadata,
            facecolor="white",
            bbox_inches="tight",
            pad_inches=0.1,
        )
    return path
