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
        as a shaded span) and ``status`` (shown in the panel title when it is not "crosses").
    specimens : list of str, optional
        Specimen ids to draw, in this order. Default (None or empty): the first
        ``max_specimens`` in order of first appearance (history, then forecast, truth, eol).
    max_specimens : int
        Most panels drawn when ``specimens`` is not given.
    title : str, optional
        Figure title; default "<target> forecast".

    Returns
    -------
    matplotlib.figure.Figure
        The figure (write it with :func:`save_figure`).

    A table without ``id_col`` (a single-series data set) is accepted when only one specimen is
    drawn.
    """
    mean_col = f"{target}_mean"
    _require(history, "history", [time_col, target])
    _require(forecast, "forecast", [time_col, mean_col])
    if truth is not None:
        _require(truth, "truth", [time_col, target])
    if eol is not None:
        _require(eol, "end-of-life", ["eol_time"])
    if max_specimens < 1:
        raise InputError(f"max_specimens must be at least 1, got {max_specimens}")

    tables = {"history": history, "forecast": forecast, "truth": truth, "end-of-life": eol}
    all_ids, chosen = _choose_specimens(tables, id_col, specimens, max_specimens)
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
            ax.set_xlabel(time_col)
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    for ax in axes[n:]:
        ax.set_visible(False)

    _forecast_legend(fig, legend)
    shown = ""
    if not specimens and len(all_ids) > n:
        shown = f" (first {n} of {len(all_ids)} specimens)"
    fig.suptitle((title or f"{target} forecast") + shown)
    return fig


def _choose_specimens(
    tables: dict, id_col: str, specimens, max_specimens: int
) -> tuple[np.ndarray, list[str]]:
    """(every specimen id in order of first appearance, the ones to draw)."""
    all_ids = pd.unique(
        pd.concat(
            [t[id_col].astype(str) for t in tables.values() if t is not None and id_col in t.columns],
            ignore_index=True,
        )
    )
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
    else:
        chosen = list(all_ids[:max_specimens])
    if not chosen:
        raise InputError("no specimens to draw: the history and forecast tables are empty")
    return all_ids, chosen


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
    if pd.notna(row["eol_time"]):
        ax.axvline(
            row["eol_time"],
            color=PURPLE,
            linestyle="-.",
            linewidth=1.8,
            zorder=2,
            label="predicted end of life (mean path)",
        )


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
    if isinstance(status, str) and status and status != "crosses":
        return f"{sid}: {status}"
    if pd.notna(row["eol_time"]):
        return f"{sid}: end of life ≈ {_format_time(row['eol_time'])}"
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


def plot_horizon_errors(by_step: dict[str, list[float]], *, metric: str = "RMSE", unit: str = "") -> Figure:
    """Draw the backtest error at each forecast step for the model and the baselines.

    Parameters
    ----------
    by_step : dict of str to list of float
        ``{model name: [error at step 1, step 2, ...]}``, as in the ``rmse_by_step`` entries of
        ``durability evaluate --json``. ``None`` or NaN marks a step with no forecasts. The entry
        named "model" is drawn bold; "persistence", "linear" and "exponential" thinner, each with
        its own dash pattern.
    metric : str
        Name of the error, for the y label.
    unit : str
        Unit of the error, for the y label (empty: none shown).

    Returns
    -------
    matplotlib.figure.Figure
        The figure. The y axis is logarithmic when the errors span more than two decades.
    """
    if not by_step:
        raise InputError("no errors to draw: by_step is empty")
    series = {
        name: np.array([np.nan if v is None else v for v in values], dtype=float)
        for name, values in by_step.items()
    }
    finite = np.concatenate([v[np.isfinite(v)] for v in series.values()])
    if finite.size == 0:
        raise InputError("no errors to draw: every value is missing")

    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(7.0, 4.2), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    others = iter(OTHER_COLOURS * (len(series) // len(OTHER_COLOURS) + 1))
    # Baselines first so the model line is drawn on top of them.
    for name in sorted(series, key=lambda k: k == "model"):
        values = series[name]
        steps = np.arange(1, len(values) + 1)
        few = len(values) <= 30  # markers help on short horizons, clutter on long ones
        if name == "model":
            style = dict(color=BLUE, linestyle="-", marker="o", linewidth=2.6, markersize=5, zorder=5)
        else:
            style = dict(BASELINE_STYLES.get(name) or dict(color=next(others), linestyle="-", marker="v"))
            style.update(linewidth=1.3, markersize=3.5, zorder=3)
        if not few:
            style["marker"] = None
        ax.plot(steps, values, label=name, **style)
    positive = finite[finite > 0]
    if positive.size == finite.size and positive.max() / positive.min() > 100:
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=min(0.0, finite.min() * 1.05))
    ax.set_xlim(0.5, max(len(v) for v in series.values()) + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("forecast step (steps ahead of the last measurement)")
    ax.set_ylabel(f"{metric} [{unit}]" if unit else metric)
    ax.set_title(f"{metric} by forecast step: model vs baselines")
    ax.grid(True, which="major", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
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


# ----------------------------------------------------------------------------- training history


def plot_training_history(history: list[dict]) -> Figure:
    """Draw a model's training history in two stacked panels sharing the epoch axis.

    Parameters
    ----------
    history : list of dict
        One dict per epoch, as saved in the model file's summary: ``epoch``, ``train_loss``,
        ``val_rmse`` (free-running validation RMSE; None or NaN when not computed),
        ``teacher_forcing`` (the schedule's probability of feeding the measured value) and
        ``best`` (True on each epoch that improved the validation RMSE; the last such is the best
        epoch, whose weights the model file keeps). Other keys are ignored.

    Returns
    -------
    matplotlib.figure.Figure
        The figure. Upper panel: training loss (left axis) and validation RMSE (right axis)
        with the best epoch marked. Lower panel: teacher-forcing probability per epoch.
    """
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
    epoch, loss, rmse, forcing = (
        np.array([np.nan if e[k] is None else e[k] for e in history], dtype=float)
        for k in ("epoch", "train_loss", "val_rmse", "teacher_forcing")
    )
    best = _best_epoch(history, rmse)

    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(7.0, 5.6), dpi=DPI, layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2.2, 1])
    right = top.twinx()
    top.plot(epoch, loss, color=BLUE, marker="o", markersize=3, linewidth=1.6, label="training loss")
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
        top.axvline(epoch[best], color=GREY, linestyle=":", linewidth=1.2, zorder=0)
        bottom.axvline(epoch[best], color=GREY, linestyle=":", linewidth=1.2, zorder=0)
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
    for ax, values in ((top, loss), (right, rmse)):
        finite = values[np.isfinite(values)]
        if finite.size and finite.min() > 0 and finite.max() / finite.min() > 100:
            ax.set_yscale("log")
    top.set_ylabel("training loss", color=BLUE)
    top.tick_params(axis="y", colors=BLUE)
    right.set_ylabel("validation RMSE (free-running)", color=VERMILLION)
    right.tick_params(axis="y", colors=VERMILLION)
    top.set_title("Training history")
    top.grid(True, color="#dddddd", linewidth=0.6)
    top.set_axisbelow(True)
    handles = top.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    fig.legend(
        handles,
        [h.get_label() for h in handles],
        loc="outside lower center",
        ncols=2,
        frameon=False,
        fontsize=9,
    )

    bottom.step(epoch, forcing, where="mid", color=GREEN, linewidth=1.8)
    bottom.fill_between(epoch, forcing, step="mid", color=GREEN, alpha=0.15, linewidth=0)
    bottom.set_ylim(-0.03, 1.05)
    bottom.set_ylabel("teacher-forcing\nprobability")
    bottom.set_xlabel("epoch")
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.grid(True, color="#dddddd", linewidth=0.6)
    bottom.set_axisbelow(True)
    return fig


def _best_epoch(history: list[dict], rmse: np.ndarray) -> int | None:
    """The index of the best epoch: the last that improved, else the lowest RMSE, else None."""
    improved = [i for i, e in enumerate(history) if e["best"]]
    if improved:
        return improved[-1]
    return int(np.nanargmin(rmse)) if np.isfinite(rmse).any() else None


# ----------------------------------------------------------------------------- shared


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
