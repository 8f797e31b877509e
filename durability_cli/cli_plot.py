"""`durability plot ...`: the figure commands (forecast, history, calibration, errors, error by
condition, end of life).
Each maps its options onto one Model.plot_* call of the API and writes the Figure; cli.py adds
the sub-app to `durability`."""

from __future__ import annotations

from typing import Annotated

import typer

from durability_cli.cli_options import (
    FLOAT,
    LIST,
    NAME,
    PATH,
    BacktestMaxStep,
    DataArg,
    Debug,
    Direction,
    Fmt,
    ForecastMaxStep,
    Future,
    FutureSheet,
    Hold,
    Horizon,
    ModelArg,
    ModelOpt,
    N,
    Picture,
    Samples,
    SeedOpt,
    Sheet,
    Threads,
    Threshold,
    TimeUnit,
    _opt,
)
from durability_cli.console import (
    run_command,
)

plot_app = typer.Typer(
    help="Draw forecasts, backtest errors (by horizon and by condition), calibration, end of life and training histories (PNG or SVG).",
    no_args_is_help=True,
)


@plot_app.command("forecast")
def plot_forecast_cmd(
    data: DataArg,
    model: ModelOpt,
    output: Picture,
    truth: Annotated[
        str | None, _opt("Table with the true values of the forecast rows, drawn as markers.", metavar=PATH)
    ] = None,
    truth_sheet: Annotated[
        str | None,
        _opt("Sheet of an Excel (.xlsx) --truth workbook to read (default: the first).", metavar=NAME),
    ] = None,
    specimens: Annotated[
        str | None,
        _opt(
            "Comma-separated specimen ids to draw (default: --max of them, spread from the lowest forecast at the horizon to the highest).",
            metavar=LIST,
        ),
    ] = None,
    max_specimens: Annotated[int, _opt("Draw at most this many specimens.", None, "--max", metavar=N)] = 12,
    horizon: Horizon = None,
    future: Future = None,
    future_sheet: FutureSheet = None,
    hold_conditions: Hold = False,
    samples: Samples = 200,
    quantiles: Annotated[
        str,
        _opt(
            "Comma-separated quantiles; the outer two pairs are drawn as bands, 0.5 as the line.",
            metavar=LIST,
        ),
    ] = "0.1,0.25,0.5,0.75,0.9",
    threshold: Threshold = None,
    direction: Direction = "below",
    time_unit: TimeUnit = None,
    max_step: ForecastMaxStep = None,
    seed: SeedOpt = 0,
    fmt: Fmt = None,
    sheet: Sheet = None,
    threads: Threads = 1,
    debug: Debug = False,
) -> None:
    """Forecast and draw history, median, interval band, threshold and end of life per specimen.

    The forecast is forecast's (its --max-step cuts included), and so are its warnings.

    Example:  durability plot forecast plan.csv -m coating.safetensors --threshold 0.6 -o forecast.png
              durability plot forecast history.csv -m coating.safetensors --future plan.csv --time-unit days -o f.png
    """
    (model,) = model  # ModelOpt hands one path in a list (a repeated -m is refused)

    def go():
        from durability_cli import api
        from durability_cli.cli import _future_sheet
        from durability_cli.console import err
        from durability_cli.io import check_outputs
        from durability_cli.plotting import save_figure
        from durability_cli.render import render_warnings

        api.set_threads(threads)
        api._sheet_needs(truth, truth_sheet, "truth")  # before the tables are read
        check_outputs([output], [data if data != "-" else None, model, truth, future], pictures=(output,))
        how = dict(horizon=horizon, hold_conditions=hold_conditions, samples=samples, direction=direction)
        trained = api.load(model)
        future_rows = _future_sheet(api, trained, future, future_sheet)
        table = api.read(_table(api, trained, data, fmt, sheet), schema=trained.schema)
        forecast = trained.forecast(
            table,
            threshold=threshold,
            future=future_rows,
            quantiles=quantiles,
            seed=seed,
            max_step=max_step,
            **how,
        )
        figure = trained.plot_result(
            table,
            forecast,
            truth=truth,
            specimens=None if specimens is None else [s.strip() for s in specimens.split(",") if s.strip()],
            max_specimens=max_specimens,
            threshold=threshold,
            time_unit=time_unit,
            truth_sheet=truth_sheet,
        )
        render_warnings(err, forecast.warnings)  # (the direction's first, as forecast says them)
        save_figure(figure, output)

    run_command(debug, go)


@plot_app.command("history")
def plot_history_cmd(model: ModelArg, output: Picture, debug: Debug = False) -> None:
    """Draw a model's training history: loss, free-running validation RMSE, teacher forcing.

    Example:  durability plot history coating.safetensors -o history.png
    """

    def go():
        from durability_cli import api
        from durability_cli.io import check_outputs
        from durability_cli.plotting import save_figure

        check_outputs([output], [model], pictures=(output,))
        save_figure(api.load(model).plot_history(), output)

    run_command(debug, go)


# The backtest options of the plot commands (evaluate spells out its own).
_CUT = "Backtest cut-off (exactly one of these)"


PlotContext = Annotated[
    int | None, _opt("Rows observed per specimen before the forecast.", _CUT, "--context", metavar=N)
]


_FRAC = "Share of each specimen's rows observed before the forecast."


PlotContextFrac = Annotated[float | None, _opt(_FRAC, _CUT, "--context-frac", metavar=FLOAT)]


PlotOrigins = Annotated[int | None, _opt("K rolling cut-offs per specimen.", _CUT, "--origins", metavar="K")]


_PLOT_HORIZON = "Score at most N steps after each cut-off."


PlotHorizon = Annotated[int | None, _opt(_PLOT_HORIZON, None, "--horizon", metavar=N)]


def _table(api, trained, data: str, fmt: str | None, sheet: str | None, compare: dict | None = None):
    """DATA as the plot's API call reads it: the path, or with --format / --sheet the table read
    so (with every compared model's columns, as evaluate -m A -m B reads it)."""
    if fmt is None and sheet is None:
        return data
    from durability_cli.cli import _input_format
    from durability_cli.evaluation import check_comparable, naming_the_model

    others = {k: m.bundle for k, m in (compare or {}).items()}
    schema = check_comparable(trained.bundle, others) if compare else None
    columns = api.Columns.of(fmt=_input_format(fmt, sheet))
    with naming_the_model(trained.bundle, others):
        return api.read(data, columns=columns, schema=schema or trained.schema)


def _backtest_figure(
    output: str, data: str, model: str | list[str], threads: int, draw, fmt=None, sheet=None
) -> None:
    """Check the output, load the model, ``draw(model, table)`` a Figure (``table``: DATA as
    :func:`_table` reads it) and write it. ``model`` a list: the first is drawn with the others,
    loaded by their report names, as ``draw(model, table, compare)``."""
    from durability_cli import api
    from durability_cli.io import check_outputs
    from durability_cli.plotting import save_figure

    api.set_threads(threads)
    paths = model if isinstance(model, list) else [model]
    check_outputs([output], [data if data != "-" else None, *paths], pictures=(output,))
    if not isinstance(model, list):
        trained = api.load(model)
        save_figure(draw(trained, _table(api, trained, data, fmt, sheet)), output)
        return
    names = api.comparison_names(paths[1:])
    compare = {name: api.load(path) for name, path in zip(names, paths[1:], strict=True)}
    trained = api.load(paths[0])
    save_figure(draw(trained, _table(api, trained, data, fmt, sheet, compare), compare), output)


_COMPARED = (
    "Model file written by durability train. Give -m again to draw other models of the same "
    "backtest beside it, each in a colour of its own and named by its file name (as evaluate -m A -m B "
    "names them); the first is called model."
)


def _backtest_plot(name: str, doc: str, draw, compare: bool = False) -> None:
    """Add ``plot NAME``: the figure ``draw(model, DATA, backtest options, time_unit)`` of a
    backtest with the cut-off options, written to --output. ``compare``: -m may be given again,
    and ``draw`` takes the other models too (name -> Model) as ``compare=``."""
    model_type = (
        Annotated[list[str], typer.Option("--model", "-m", help=_COMPARED, metavar=PATH)]
        if compare
        else ModelOpt
    )

    def command(
        data: DataArg,
        model: ModelOpt,
        output: Picture,
        context: PlotContext = None,
        context_frac: PlotContextFrac = None,
        origins: PlotOrigins = None,
        horizon: PlotHorizon = None,
        samples: Samples = 200,
        time_unit: TimeUnit = None,
        max_step: BacktestMaxStep = None,
        seed: SeedOpt = 0,
        fmt: Fmt = None,
        sheet: Sheet = None,
        threads: Threads = 1,
        debug: Debug = False,
    ) -> None:
        def figure(trained, table, others=None):
            from durability_cli.api import time_unit_of

            time_unit_of(trained.schema, time_unit)  # a wrong one refused before the backtest
            cut = dict(context=context, context_frac=context_frac, origins=origins, horizon=horizon)
            backtest = dict(cut, samples=samples, seed=seed, max_step=max_step)
            if compare:
                return draw(trained, table, backtest, time_unit, compare=others or {})
            return draw(trained, table, backtest, time_unit)

        chosen = model if compare else model[0]  # ModelOpt: one path in a list
        run_command(debug, lambda: _backtest_figure(output, data, chosen, threads, figure, fmt, sheet))

    command.__doc__ = doc
    command.__annotations__["model"] = model_type  # a local type: not a name the string could find
    plot_app.command(name)(command)


def _said(evaluation):
    """``evaluation``, its lines on the steps it ran said on stderr, as evaluate's table says them:
    how many steps --max-step cut, and a calibration measured on other steps (each compared
    model's named)."""
    from durability_cli.console import err
    from durability_cli.render import render_warnings

    render_warnings(err, evaluation.warnings)
    return evaluation


def _calibration(trained, data, backtest: dict, time_unit):
    from durability_cli.api import CALIBRATION_LEVELS

    evaluation = trained.evaluate(data, **backtest, baselines=False, quantiles=CALIBRATION_LEVELS)
    return trained.plot_calibration(_said(evaluation), time_unit=time_unit)


def _errors(trained, data, backtest: dict, time_unit, compare: dict):
    evaluation = _said(trained.evaluate(data, **backtest, compare=compare))
    return trained.plot_errors(evaluation, time_unit=time_unit)


_backtest_plot(
    "calibration",
    """Backtest and draw whether the intervals hold: observed vs nominal quantiles, coverage by horizon.

    The left panel checks the quantile levels 0.05 to 0.95 against the hidden truth; the right
    one the p10-p90 coverage by time after the cut-off, with the specimens scored per time bin.

    Example:  durability plot calibration test.csv -m coating.safetensors --context 40 --time-unit days -o calib.png
    """,
    _calibration,
)


_backtest_plot(
    "errors",
    """Backtest and draw the RMSE by time after the cut-off, model vs baselines, with specimens per bin.

    Time bins scored on fewer than 3 specimens are left out of the lines (their bars are grey).

    Give -m again to draw other models' lines on the same cut-offs (as evaluate -m A -m B scores them).

    Example:  durability plot errors test.csv -m coating.safetensors --context 40 --time-unit days -o errors.png
              durability plot errors test.csv -m plain.safetensors -m trend.safetensors --context 40 -o errors.png
    """,
    _errors,
    compare=True,
)


def _conditions(trained, data, backtest: dict, time_unit, compare: dict):
    return trained.plot_conditions(
        _said(trained.evaluate(data, **backtest, baselines=False, compare=compare))
    )


_backtest_plot(
    "conditions",
    """Backtest and draw each specimen's mean error against its mean of each condition.

    One panel per condition (and numeric static column): a point per specimen, and the mean error of the third of the specimens with the least of it and of the third with the most. A categorical static column (material) gets a column of points per label and the label's mean error. Points that climb or fall across the range mean the model has not learned how that condition drives the wear (evaluate's by_condition; docs/GUIDE.md, "When the error follows a condition").

    Give -m again to draw other models of the same backtest in colours of their own (evaluate -m A -m B's by_condition_compared): whether a transform or another option flattens the trend.

    Example:  durability plot conditions held_out.csv -m coating.safetensors --context 40 -o conditions.png
              durability plot conditions held_out.csv -m plain.safetensors -m arrhenius.safetensors --context 40 -o conditions.png
    """,
    _conditions,
    compare=True,
)


@plot_app.command("eol")
def plot_eol_cmd(
    data: DataArg,
    model: ModelOpt,
    output: Picture,
    threshold: Annotated[
        float, _opt("End-of-life threshold in durability units.", None, "--threshold", metavar=FLOAT)
    ],
    context: PlotContext = None,
    context_frac: PlotContextFrac = None,
    horizon: PlotHorizon = None,
    samples: Samples = 200,
    direction: Direction = "below",
    time_unit: TimeUnit = None,
    max_step: BacktestMaxStep = None,
    seed: SeedOpt = 0,
    fmt: Fmt = None,
    sheet: Sheet = None,
    threads: Threads = 1,
    debug: Debug = False,
) -> None:
    """Backtest and draw predicted (median, p10-p90) against true end of life per specimen.

    Each specimen's truth is hidden after the cut-off; specimens whose data end before the threshold are drawn open at their last measurement, with an arrow (the truth is later).

    Example:  durability plot eol test.csv -m coating.safetensors --threshold 0.6 --context 40 -o eol.png
    """
    (model,) = model  # ModelOpt hands one path in a list (a repeated -m is refused)

    def draw(trained, rows):
        from durability_cli.api import time_unit_of

        time_unit_of(trained.schema, time_unit)  # a wrong one refused before the backtest
        cut = dict(context=context, context_frac=context_frac, horizon=horizon)
        how = dict(samples=samples, direction=direction, seed=seed, max_step=max_step)
        table = trained.end_of_life_backtest(rows, threshold=threshold, **cut, **how)
        from durability_cli.console import err
        from durability_cli.render import render_warnings

        figure = trained.plot_end_of_life(
            table, threshold=threshold, time_unit=time_unit, direction=direction
        )
        # drawn: warn, and say what the backtest's forecast says (steps cut, extrapolation, ...)
        render_warnings(err, table.attrs.get("warnings", []))
        return figure

    run_command(debug, lambda: _backtest_figure(output, data, model, threads, draw, fmt, sheet))
