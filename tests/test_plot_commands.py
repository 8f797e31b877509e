"""The backtest pictures (plot calibration, errors, eol), plot forecast --future/--quantiles,
--time-unit labels, the history plot's labels, and Excel input: the real commands on the small
coating table with the session's tiny model, and the Figures the API returns for them."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest

from durability_cli import api, metrics, plotting
from durability_cli.cli import app

PNG = b"\x89PNG\r\n\x1a\n"


def invoke(runner, *args):
    return runner.invoke(app, [str(a) for a in args])


def labels(ax) -> list[str]:
    return [line.get_label() for line in ax.get_lines()]


@pytest.fixture(scope="module")
def trained(model):
    return api.load(model)


def test_plot_calibration(runner, small, model, figures, tmp_path):
    out = tmp_path / "calib.png"
    args = ("--context", 20, "--samples", 20, "--time-unit", "days", "-o", out)
    r = invoke(runner, "plot", "calibration", small, "-m", model, *args)
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:8] == PNG

    left, right = figures[0].axes[:2]
    (model_line,) = [line for line in left.get_lines() if line.get_label() == "model"]
    levels, observed = model_line.get_data()
    assert np.allclose(levels, np.arange(1, 20) * 0.05)
    assert np.all(np.diff(observed) >= 0) and 0 <= observed.min() and observed.max() <= 1
    assert right.get_xlabel() == "time ahead of the last measurement (days)"
    (coverage,) = [line for line in right.get_lines() if line.get_label() == "observed"]
    x, _ = coverage.get_data()
    # bins of the time after each specimen's cut-off (its 20th row), counted from the data
    df = pd.read_csv(small)
    df["lead"] = df["time"] - df.groupby("specimen_id")["time"].transform(lambda t: t.iloc[19])
    hidden = df[df.groupby("specimen_id").cumcount() >= 20]
    edges = metrics.horizon_edges(hidden["lead"])
    middles = np.sqrt(edges[:-1] * edges[1:]) if edges[0] > 0 else (edges[:-1] + edges[1:]) / 2
    assert len(edges) - 1 <= 30 and x == pytest.approx(middles)
    per_bin = hidden.groupby(pd.cut(hidden["lead"], edges), observed=False)["specimen_id"].nunique()
    bars = figures[0].axes[2]  # the counts, on the right panel's twin axis
    assert [bar.get_height() for bar in bars.patches] == per_bin.tolist()


def test_plot_calibration_refuses_a_point_model(runner, small, tmp_path):
    point = tmp_path / "mse.safetensors"
    r = invoke(runner, "train", small, "-o", point, "--epochs", 1, "--hidden", 4, "--loss", "mse", "--quiet")
    assert r.exit_code == 0, r.output
    r = invoke(runner, "plot", "calibration", small, "-m", point, "--context", 20, "-o", tmp_path / "c.png")
    assert r.exit_code == 2
    assert (
        "the evaluation has no quantile forecasts: evaluate a Gaussian model with --samples > 0" in r.stderr
    )
    assert not (tmp_path / "c.png").exists()


def test_a_second_model_on_a_one_model_command_is_refused(runner, small, model, tmp_path):
    # the parser kept the last -m silently: plot calibration -m A -m B drew B
    out = tmp_path / "c.png"
    r = invoke(runner, "plot", "calibration", small, "-m", model, "-m", model, "--context", 20, "-o", out)
    assert r.exit_code == 2
    said = " ".join(r.output.replace("│", "").split())  # Typer's framed box, unwrapped: where it
    # wraps depends on the length of the model's path (a test once failed on it)
    assert "given 2 times" in said and "evaluate -m A -m B" in said
    assert not out.exists()
    r = invoke(
        runner, "forecast", small, "-m", model, "-m", tmp_path / "other.safetensors", "-o", tmp_path / "f.csv"
    )
    assert r.exit_code == 2 and "this command reads one model" in " ".join(r.output.replace("│", "").split())
    assert not (tmp_path / "f.csv").exists()


def test_plot_errors_by_time_with_specimen_counts(runner, small, model, figures, tmp_path):
    out = tmp_path / "errors.svg"
    args = ("--context", 20, "--samples", 0, "--time-unit", "cycles", "-o", out)
    r = invoke(runner, "plot", "errors", small, "-m", model, *args)
    assert r.exit_code == 0, r.output
    assert "<svg" in out.read_text()

    top, counts = figures[0].axes
    assert set(labels(top)) == {"model", "persistence", "linear", "exponential", "mixed_effects"}
    assert counts.get_xlabel() == "time ahead of the last measurement (cycles)"
    heights = [bar.get_height() for bar in counts.patches]
    assert max(heights) <= 10 and sum(heights) >= 20  # 10 specimens, each over several bins
    assert counts.get_ylabel() == "specimens scored"
    x, _ = next(line for line in top.get_lines() if line.get_label() == "model").get_data()
    assert len(x) == len(heights)


def test_errors_plot_leaves_out_thin_steps():
    fig = plotting.plot_horizon_errors(
        {"model": [0.1, 0.2, 0.3, 0.9], "persistence": [0.2, 0.3, 0.4, 2.0]},
        times=[2.0, 4.0, 6.0, 8.0],
        counts=[12, 5, 2, 1],
        time_unit="hours",
    )
    top, counts = fig.axes
    x, y = next(line for line in top.get_lines() if line.get_label() == "model").get_data()
    assert list(x) == [2.0, 4.0, 6.0, 8.0]
    assert np.isfinite(y).tolist() == [True, True, False, False]
    assert "2 time bin(s) with fewer than 3 forecasts left out" in top.get_title()


def test_evaluate_reports_counts_and_lead_times(runner, small, model, tmp_path):
    out, points = tmp_path / "e.png", tmp_path / "points.csv"
    args = ("--context", 30, "--samples", 0, "--plot", out, "--backtest-out", points, "-q")
    r = invoke(runner, "evaluate", small, "-m", model, *args)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["models"]["model"]["n_by_step"] == [10] * 10
    bt = pd.read_csv(points)
    df = pd.read_csv(small)
    cut = df[df.groupby("specimen_id").cumcount() == 29].set_index("specimen_id")["time"]  # 30th row
    expected = bt["time"] - bt["specimen_id"].map(cut)
    assert bt["lead"].to_numpy() == pytest.approx(expected.to_numpy())
    assert out.read_bytes()[:8] == PNG


def test_plot_eol(runner, small, model, trained, figures, tmp_path):
    out = tmp_path / "eol.png"
    args = ("--threshold", 0.9, "--context", 20, "--samples", 20, "--time-unit", "days", "-o", out)
    r = invoke(runner, "plot", "eol", small, "-m", model, *args)
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:8] == PNG

    table = trained.end_of_life_backtest(small, threshold=0.9, context=20, samples=20)
    assert len(table) == 10
    truth = pd.read_csv(small)
    for row in table.itertuples():
        measured = truth[truth.specimen_id == row.specimen_id].set_index("time")["durability"]
        after = measured[measured.index >= row.cutoff_time]
        if np.isnan(row.eol_true):  # censored: the data never reach the threshold
            assert after.min() > 0.9 and row.censor_time == measured.index.max()
        elif row.status != "already past":
            assert after[after.index < row.eol_true].min() > 0.9 >= after[after.index > row.eol_true].iloc[0]

    (ax,) = figures[0].axes
    assert ax.get_xlabel() == "true end of life (days)"
    assert ax.get_ylabel() == "predicted end of life (median) (days)"
    # a specimen whose truth and forecast both cross past the data is left out (and counted in the
    # title): drawn at (last measurement, horizon end) such points piled up on the diagonal
    neither = table.eol_true.isna() & table.eol_pred.isna() & (table.status != "already past")
    figures = table[(table.status != "already past") & ~neither]
    assert (f"{int(neither.sum())} crossing within neither" in ax.get_title()) == bool(neither.any())
    markers = [
        line for line in ax.get_lines() if "(" in line.get_label() and "perfect" not in line.get_label()
    ]
    assert sum(len(line.get_xdata()) for line in markers) == len(figures)
    # the censored specimens' arrows say what they mean in the legend
    arrows = [
        line for line in ax.get_lines() if line.get_label() == "true end of life beyond the last measurement"
    ]
    assert sum(len(line.get_xdata()) for line in arrows) == int(figures["eol_true"].isna().sum())
    legend = [t.get_text() for t in ax.figure.legends[0].get_texts()]
    assert ("true end of life beyond the last measurement" in legend) == bool(
        figures["eol_true"].isna().any()
    )


def test_plot_eol_needs_threshold_and_one_cutoff(runner, small, model, tmp_path):
    r = invoke(runner, "plot", "eol", small, "-m", model, "--context", 20, "-o", tmp_path / "e.png")
    assert r.exit_code == 2 and "--threshold" in r.stderr
    r = invoke(runner, "plot", "eol", small, "-m", model, "--threshold", 0.9, "-o", tmp_path / "e.png")
    assert r.exit_code == 2
    assert "exactly one of --context N, --context-frac F or --origins K" in r.stderr


def test_plot_forecast_future_quantiles_and_time_unit(runner, small, model, figures, tmp_path):
    df = pd.read_csv(small)
    row = df.groupby("specimen_id").cumcount()
    history, future = tmp_path / "history.csv", tmp_path / "future.csv"
    df[row < 20].to_csv(history, index=False)
    df[row >= 20].drop(columns="durability").to_csv(future, index=False)
    out = tmp_path / "f.png"
    args = ("--future", future, "--quantiles", "0.05,0.5,0.95", "--time-unit", "days", "--samples", 20)
    r = invoke(
        runner, "plot", "forecast", history, "-m", model, *args, "--threshold", 0.9, "--max", 2, "-o", out
    )
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:8] == PNG

    fig = figures[0]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "forecast median" in legend and "90 % interval (p5-p95)" in legend
    assert "predicted end of life (mean path)" not in legend
    assert fig.axes[0].get_xlabel() == "time (days)"
    line = next(ln for ln in fig.axes[0].get_lines() if ln.get_label() == "forecast median")
    assert len(line.get_xdata()) == 20  # the 20 future rows of the first specimen


def test_plot_forecast_with_the_whole_truth_draws_the_plan_s_specimens(
    runner, small, model, figures, tmp_path
):
    """A plan of 3 specimens and --truth the whole 10-specimen table: 3 panels, each with its
    forecast and its hidden values (the truth's other 7 specimens drew panels with no forecast)."""
    df = pd.read_csv(small)
    plan = df[df.specimen_id.isin(sorted(df.specimen_id.unique())[:3])].copy()
    plan.loc[plan.groupby("specimen_id").cumcount() >= 20, "durability"] = float("nan")
    plan.to_csv(tmp_path / "plan.csv", index=False)
    out = tmp_path / "f.png"
    args = ("--truth", small, "--samples", 0, "--max", 6, "-o", out)
    r = invoke(runner, "plot", "forecast", tmp_path / "plan.csv", "-m", model, *args)
    assert r.exit_code == 0, r.output
    panels = [ax for ax in figures[0].axes if ax.has_data()]
    assert len(panels) == 3
    for ax in panels:
        drawn = {ln.get_label() for ln in ax.get_lines()} | {c.get_label() for c in ax.collections}
        assert any("forecast" in x for x in drawn) and any("true value" in x for x in drawn), drawn


def test_history_names_the_loss_and_drops_a_constant_teacher_forcing_panel(runner, model, figures, tmp_path):
    r = invoke(runner, "plot", "history", model, "-o", tmp_path / "h.png")
    assert r.exit_code == 0, r.output
    fig = figures[0]
    top = fig.axes[0]
    assert top.get_ylabel() == "training loss (Gaussian NLL)"
    assert len(fig.axes) == 2  # the loss axis and its twin; no teacher-forcing panel
    # the session's model is the default's ensemble of 5 (10 specimens, 2 validating)
    assert top.get_title() == "Training history, member 1 of 5 (teacher forcing constant: p = 0)"


# -- Excel input ---------------------------------------------------------------------------------------
@pytest.fixture
def workbook(small, tmp_path):
    """small.csv as the first sheet ("measured"), the plan (durability hidden after 20 rows) as "plan"."""
    pytest.importorskip("openpyxl")
    df = pd.read_csv(small)
    plan = df.copy()
    plan.loc[plan.groupby("specimen_id").cumcount() >= 20, "durability"] = np.nan
    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path, engine="openpyxl") as book:
        df.to_excel(book, sheet_name="measured", index=False)
        plan.to_excel(book, sheet_name="plan", index=False)
    return path


def test_excel_schema_and_forecast(runner, workbook, model, tmp_path):
    r = invoke(runner, "schema", workbook, "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["n_specimens"] == 10 and info["n_rows"] == 400

    out = tmp_path / "fc.csv"
    r = invoke(runner, "forecast", workbook, "--sheet", "plan", "-m", model, "--samples", 10, "-o", out, "-q")
    assert r.exit_code == 0, r.output
    fc = pd.read_csv(out)
    assert len(fc) == 10 * 20 and fc["durability_mean"].notna().all()


@pytest.fixture
def split_plan(small, tmp_path):
    """(small's first 20 rows per specimen as CSV, a workbook of a "notes" sheet and a "future"
    sheet of the other rows without durability)."""
    pytest.importorskip("openpyxl")
    df = pd.read_csv(small)
    first = df.groupby("specimen_id").cumcount() < 20
    history = tmp_path / "history.csv"
    df[first].to_csv(history, index=False)
    book = tmp_path / "plan.xlsx"
    with pd.ExcelWriter(book, engine="openpyxl") as w:
        pd.DataFrame({"note": ["the plan is on the next sheet"]}).to_excel(w, sheet_name="notes", index=False)
        df[~first].drop(columns=["durability"]).to_excel(w, sheet_name="future", index=False)
    return history, book


def test_forecast_reads_its_future_rows_from_a_named_sheet(
    runner, workbook, model, small, split_plan, tmp_path
):
    """--future-sheet: the plan kept in a workbook beside other sheets; the forecast is the one of
    the same rows appended to the table, whole or a group of specimens at a time."""
    history, book = split_plan
    want = tmp_path / "want.csv"
    args = ["-m", model, "--samples", 10, "-q"]
    assert invoke(runner, "forecast", workbook, "--sheet", "plan", *args, "-o", want).exit_code == 0
    for extra in ([], ["--chunk-specimens", 3]):
        out = tmp_path / f"fc{len(extra)}.csv"
        r = invoke(
            runner,
            "forecast",
            history,
            "--future",
            book,
            "--future-sheet",
            "future",
            *args,
            "-o",
            out,
            *extra,
        )
        assert r.exit_code == 0, r.output
        assert out.read_bytes() == want.read_bytes()
    # the first sheet (the notes) is no plan; a sheet that is not there, or no workbook, is named
    r = invoke(runner, "forecast", history, "--future", book, *args, "-o", tmp_path / "x.csv")
    assert r.exit_code == 2 and "lacks (columns: note)" in r.stderr
    # ... and says where else to look (it said only what the notes lack)
    said = "this is the workbook's first sheet (the others: future): name the sheet that holds the table"
    assert said in " ".join(r.stderr.split()) and r.stderr.count("\n") == 1
    r = invoke(runner, "schema", book, "--covariates", "temperature")  # a column named by an option
    assert r.exit_code == 2 and said in " ".join(r.stderr.split())
    r = invoke(runner, "schema", book, "--target", "note")  # no time column found (it said no more)
    assert r.exit_code == 2 and "no time column" in r.stderr and said in " ".join(r.stderr.split())
    r = invoke(runner, "forecast", history, "--future", book, "--future-sheet", "plan", *args)
    assert r.exit_code == 2
    assert f"{book}: has no sheet 'plan' (sheets: notes, future); name one of them" in r.stderr
    r = invoke(runner, "forecast", history, "--future", small, "--future-sheet", "future", *args)
    assert r.exit_code == 2 and f"{small}: a sheet is named, but this is a csv file" in r.stderr
    r = invoke(runner, "forecast", history, "--future-sheet", "future", *args)
    assert r.exit_code == 2 and "give --future FILE.xlsx too" in r.stderr
    assert not (tmp_path / "x.csv").exists()


def _drawn(figure) -> list:
    """Every line's and collection's data of a figure, panel by panel."""
    out = []
    for ax in figure.axes:
        out += [np.asarray(line.get_xydata()) for line in ax.get_lines()]
        out += [np.asarray(c.get_offsets()) for c in ax.collections]
    return out


def _same_figures(a, b) -> bool:
    return len(_drawn(a)) == len(_drawn(b)) and all(
        np.array_equal(x, y, equal_nan=True) for x, y in zip(_drawn(a), _drawn(b), strict=True)
    )


def test_the_plot_commands_read_a_named_sheet(
    runner, workbook, model, small, plan, split_plan, figures, tmp_path
):
    """--sheet (and --format) on the plot commands, --future-sheet and --truth-sheet on plot
    forecast: the figures of a workbook's sheet are those of the same rows as CSV, a backtest's
    compared models too."""
    history, book = split_plan
    truths = tmp_path / "truths.xlsx"  # the truth on a second sheet, behind the plan
    with pd.ExcelWriter(truths, engine="openpyxl") as writer:
        pd.read_csv(plan).to_excel(writer, sheet_name="plan", index=False)
        pd.read_csv(small).to_excel(writer, sheet_name="truth", index=False)
    runs = {
        "truth": (
            ["forecast", plan, "-m", model, "--samples", 20, "--truth", small],
            ["forecast", plan, "-m", model, "--samples", 20, "--truth", truths, "--truth-sheet", "truth"],
        ),
        "forecast": (
            ["forecast", plan, "-m", model, "--samples", 20],
            ["forecast", workbook, "--sheet", "plan", "-m", model, "--samples", 20],
        ),
        "future": (
            ["forecast", plan, "-m", model, "--samples", 20],
            ["forecast", history, "--future", book, "--future-sheet", "future", "-m", model, "--samples", 20],
        ),
        "errors": (
            ["errors", small, "-m", model, "-m", model, "--context", 20, "--samples", 20],
            [
                "errors",
                workbook,
                "--format",
                "xlsx",
                "--sheet",
                "measured",
                "-m",
                model,
                "-m",
                model,
                "--context",
                20,
                "--samples",
                20,
            ],
        ),  # fmt: skip
        "eol": (
            ["eol", small, "-m", model, "--threshold", 0.9, "--context", 20, "--samples", 20],
            [
                "eol",
                workbook,
                "--sheet",
                "measured",
                "-m",
                model,
                "--threshold",
                0.9,
                "--context",
                20,
                "--samples",
                20,
            ],
        ),  # fmt: skip
        "calibration": (
            ["calibration", small, "-m", model, "--context", 20, "--samples", 20],
            ["calibration", workbook, "--sheet", "measured", "-m", model, "--context", 20, "--samples", 20],
        ),
    }
    for name, (csv, sheet) in runs.items():
        for k, args in enumerate((csv, sheet)):
            r = invoke(runner, "plot", *args, "-o", tmp_path / f"{name}{k}.png")
            assert r.exit_code == 0, (name, r.output)
        assert _same_figures(figures[-2], figures[-1]), name
    assert len(_drawn(figures[-1])) > 0
    r = invoke(runner, "plot", "errors", small, "--sheet", "measured", "-m", model, "--context", 20, "-o",
               tmp_path / "x.png")  # fmt: skip
    assert r.exit_code == 2 and f"{small}: a sheet is named, but this is a csv file" in r.stderr
    assert not (tmp_path / "x.png").exists()


def test_excel_unknown_sheet_and_sheet_on_csv(runner, workbook, small):
    r = invoke(runner, "schema", workbook, "--sheet", "Sheet9")
    assert r.exit_code == 2
    assert f"{workbook}: has no sheet 'Sheet9' (sheets: measured, plan); name one of them" in r.stderr
    r = invoke(runner, "schema", small, "--sheet", "plan")
    assert r.exit_code == 2
    assert f"{small}: a sheet is named, but this is a csv file, not an Excel workbook (.xlsx)" in r.stderr


def test_excel_without_openpyxl_says_what_to_install(runner, workbook, monkeypatch):
    monkeypatch.setitem(sys.modules, "openpyxl", None)  # what an install without the extra sees
    r = invoke(runner, "schema", workbook)
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1
    assert (
        "reading Excel workbooks needs openpyxl; install it with pip install 'durability[excel]'" in r.stderr
    )


def test_a_sheet_named_for_a_table_not_given_is_refused(runner, model, plan, tmp_path):
    """--truth-sheet without --truth was passed over (--future-sheet without --future is refused);
    in Python, `future_sheet=` without `future=` too."""
    from durability_cli import api
    from durability_cli.errors import InputError

    r = invoke(
        runner, "plot", "forecast", plan, "-m", model, "--truth-sheet", "truth", "-o", tmp_path / "f.png"
    )
    assert r.exit_code == 2
    assert (
        r.output == "Error: --truth-sheet names a sheet of the --truth workbook; give --truth FILE.xlsx too\n"
    )
    with pytest.raises(InputError, match="future_sheet names a sheet of the future workbook"):
        api.load(model).forecast(plan, future_sheet="plan")
    assert not list(tmp_path.iterdir())
