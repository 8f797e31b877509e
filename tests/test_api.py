"""The Python API: docs/API.md runs as written, and the API's own promises."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import durability_cli as dur
from durability_cli.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


def test_the_api_walkthrough_runs(monkeypatch):
    """Every ```python block of docs/API.md, in order, in one namespace, from the repo root."""
    text = (ROOT / "docs" / "API.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 7
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "docs/API.md", "exec"), namespace)  # noqa: S102
    assert isinstance(namespace["fc"].table, pd.DataFrame)
    assert namespace["report"].table().index[0] == "model"
    side = namespace["side"].table()  # the compared model: a row after the model's
    assert list(side.index[:2]) == ["model", "gru"]
    assert side.loc["gru", "skill_p5"] <= side.loc["gru", "skill"] <= side.loc["gru", "skill_p95"]
    assert 0 <= side.loc["linear", "specimens_won"] <= namespace["side"].report["n_specimens"]
    from matplotlib.figure import Figure

    assert all(isinstance(namespace[k], Figure) for k in ("fig", "history_fig", "errors_fig"))


def test_import_is_light():
    import subprocess
    import sys

    code = "import time, sys; t = time.perf_counter(); import durability_cli; print(time.perf_counter() - t, 'torch' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[1:] == ["False", "False"]
    assert float(out[0]) < 0.3


def test_the_public_api_shows_no_private_parameter():
    """help(Model.evaluate) showed calibrate's private switch (`_internal`) among the options."""
    import inspect

    shown = set()
    for name in dur._API:
        obj = getattr(dur, name)
        members = (
            [obj] if inspect.isfunction(obj) else [m for k, m in vars(obj).items() if not k.startswith("_")]
        )
        for fn in [m for m in members if callable(m)]:
            params = inspect.signature(fn).parameters
            shown |= {f"{name}.{fn.__name__}({p})" for p in params if p.startswith("_")}
    assert shown == set()
    assert "sheet" in inspect.signature(dur.Model.evaluate).parameters  # the walk reached it


def test_errors_name_the_argument_in_python_and_the_flag_on_the_command_line():
    with pytest.raises(InputError) as err:
        dur.train(pd.DataFrame({"time": [0, 1], "durability": [1.0, 0.9]}), epochs=-1)
    assert str(err.value) == "epochs must be between 0 and 1000000, got -1"
    assert err.value.cli_message() == "--epochs must be between 0 and 1000000, got -1"
    assert err.value.arguments == ("epochs",)
    with pytest.raises(InputError, match="unknown option"):
        dur.train(pd.DataFrame({"time": [0, 1], "durability": [1.0, 0.9]}), epoch=3)
    # the column roles too: a Python user is told the argument, the command line the flag
    with pytest.raises(InputError) as err:
        dur.train(pd.DataFrame({"time": [0, 1], "capacity": [1.0, 0.9]}))
    assert "pass target NAME" in str(err.value) and "--target" not in str(err.value)
    assert "pass --target NAME" in err.value.cli_message()
    with pytest.raises(InputError) as err:
        dur.train(pd.DataFrame({"time": [0, 1], "durability": [1.0, 0.9]}), static=["lot"])
    assert "no column 'lot' (static)" in str(err.value)
    assert "no column 'lot' (--static)" in err.value.cli_message()


def test_arguments_of_the_wrong_type_are_named_not_type_errors(coating_slice, tiny_model):
    """A notebook passes "50" for 50 or a model's file name for the model: each is one InputError
    naming the argument (Python's TypeError said "'<=' not supported between ...")."""
    table = coating_slice(10, 40)
    model = dur.load(tiny_model(table))
    plan = pd.read_csv(table)
    plan.loc[plan.groupby("specimen_id").cumcount() >= 20, "durability"] = float("nan")
    calls = [
        (lambda: model.forecast(plan, samples="50"), "samples must be a whole number, got '50'"),
        (lambda: model.forecast(plan, threshold="0.6"), "threshold must be a number, got '0.6'"),
        (lambda: model.forecast(plan, quantiles=0.5), "quantiles must be a list of levels such as"),
        (lambda: model.forecast(plan, quantiles=(0.1, "0.9")), "quantiles must be a number, got '0.9'"),
        (lambda: model.evaluate(str(table), context="20"), "context must be a whole number, got '20'"),
        (lambda: model.calibrate(str(table), context=20, bins="4"), "bins must be a whole number, got '4'"),
        (lambda: dur.tune(plan, trials="1"), "trials must be a whole number, got '1'"),
        (lambda: dur.set_threads("1"), "threads must be a whole number, got '1'"),
        (
            lambda: model.evaluate(str(table), context=20, compare={"x": "m.safetensors"}),
            "compare maps names to models: 'x' is 'm.safetensors'; load it first",
        ),
        # each of these raised Python's own TypeError, ValueError or AttributeError (session 54)
        (lambda: model.forecast(plan, seed=None), "seed must be a whole number, got None"),
        (lambda: model.evaluate(str(table), context=20, seed=None), "seed must be a whole number, got None"),
        (lambda: model.forecast(plan, horizon=5.5, hold_conditions=True), "horizon must be a whole number"),
        (lambda: model.forecast(plan, horizon="5", hold_conditions=True), "horizon must be a whole number"),
        (lambda: model.forecast(plan, scenarios={"hot": 65}), "scenario 'hot' must map conditions to values"),
        (lambda: model.forecast(plan, bounds=1), "bounds must be (low, high), each a number or None, got 1"),
        (
            lambda: model.plot_errors({"models": {}}),
            "evaluation must be what Model.evaluate returns, got dict",
        ),
        (lambda: model.plot_calibration({}), "pass the Evaluation itself, not its report"),
        (
            lambda: model.plot_result(plan, "fc.csv"),
            "result must be a forecast (what Model.forecast returns)",
        ),
        (lambda: dur.Model(str(table)).forecast(plan), "Model() takes a trained model, not a file name"),
        (lambda: dur.train(plan, epochs=1, on_epoch=5), "on_epoch must be a function"),
    ]
    for call, message in calls:
        with pytest.raises(InputError) as err:
            call()
        assert message in str(err.value), (message, str(err.value))
    assert (
        model.forecast(plan, samples=np.int64(5), seed=np.int32(1)).table is not None
    )  # numpy ints are numbers


def test_a_pyarrow_table_is_read_like_a_dataframe(coating_slice):
    import pyarrow as pa

    df = pd.read_csv(coating_slice(4, 20))
    a = dur.read(df)
    b = dur.read(pa.Table.from_pandas(df, preserve_index=False))
    assert a.schema == b.schema and a.frame.equals(b.frame)
    with pytest.raises(InputError, match="data must be a DataFrame"):
        dur.read(42)


def test_train_init_from_with_a_different_model_option_is_an_error(coating_slice, tmp_path):
    from typer.testing import CliRunner

    from durability_cli.cli import app

    data = coating_slice(6, 20)
    base = tmp_path / "base.safetensors"
    fast = ["--epochs", "1", "--hidden", "8", "--layers", "1", "-q"]
    r = CliRunner().invoke(app, ["train", str(data), "-o", str(base), *fast])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(
        app,
        [
            "train",
            str(data),
            "-o",
            str(tmp_path / "b.safetensors"),
            "--init-from",
            str(base),
            "--lags",
            "3",
            *fast,
        ],
    )
    assert r.exit_code == 2
    assert r.output.startswith("Error: --lags 3 differs from the --init-from model's 1;")
    assert len(r.output.strip().splitlines()) == 1
    # the same flags as the old model are fine
    r = CliRunner().invoke(
        app, ["train", str(data), "-o", str(tmp_path / "c.safetensors"), "--init-from", str(base), *fast]
    )
    assert r.exit_code == 0, r.output


def test_fine_tuning_names_new_labels_and_the_model_it_started_from(coating_slice, tmp_path):
    """--init-from on a table with a static label the model never saw trained it into the
    embedding every unseen label shares without a word; and the fine-tuned file did not say what
    it started from."""
    from typer.testing import CliRunner

    from durability_cli.cli import app

    data = coating_slice(6, 20)
    base = tmp_path / "base.safetensors"
    fast = ["--epochs", "1", "--hidden", "8", "--layers", "1", "--ensemble", "1"]
    r = CliRunner().invoke(app, ["train", str(data), "-o", str(base), "--static", "material", *fast, "-q"])
    assert r.exit_code == 0, r.output
    df = pd.read_csv(data)
    df.loc[df.specimen_id == df.specimen_id.iloc[0], "material"] = "Z"
    new = tmp_path / "new.csv"
    df.to_csv(new, index=False)
    tuned = tmp_path / "tuned.safetensors"
    r = CliRunner().invoke(app, ["train", str(new), "-o", str(tuned), "--init-from", str(base), *fast])
    assert r.exit_code == 0, r.output
    assert "Warning: static 'material' = 'Z' is not among the --init-from model's labels (" in r.output
    r = CliRunner().invoke(app, ["inspect", str(tuned), "--json"])
    assert json.loads(r.stdout)["summary"]["fine_tuned_from"] == {
        "model": str(base),
        "source": str(data),
        "n_specimens": 6,
    }
    # the labels it knows: no warning
    r = CliRunner().invoke(app, ["train", str(data), "-o", str(tuned), "--init-from", str(base), *fast])
    assert r.exit_code == 0 and "Warning: static" not in r.output, r.output


def test_one_pipeline_gives_the_old_entry_points_numbers(coating_slice, tmp_path):
    """forecast() / evaluate() on a table in memory are the grouped streams over one group:
    the same tables as the streams over several groups (forecast bit for bit), and the whole-table
    scores exactly (the grouped ones up to float rounding)."""
    from durability_cli.evaluation import BacktestConfig, EvalStream, evaluate
    from durability_cli.forecasting import ForecastConfig, ForecastStream, forecast
    from durability_cli.streaming import split_dataset

    df = pd.read_csv(coating_slice(8, 40))
    model = dur.train(df, epochs=1, hidden=8, layers=1)
    plan = df.copy()
    plan.loc[plan.groupby("specimen_id").cumcount() >= 25, "durability"] = float("nan")
    ds = dur.read(plan, schema=model.schema)
    cfg = ForecastConfig(samples=10, threshold=0.6)
    whole = forecast(model.bundle, ds, cfg)
    stream = ForecastStream(model.bundle, split_dataset(ds, 3), cfg, source=ds.source)
    parts = list(stream)
    assert pd.concat([p.forecast for p in parts], ignore_index=True).equals(whole.forecast)
    assert pd.concat([p.eol for p in parts], ignore_index=True).equals(whole.eol)
    assert stream.result.info == whole.info and stream.result.warnings == whole.warnings

    truth = dur.read(df, schema=model.schema)
    backtest = BacktestConfig(context=20)
    one = evaluate(model.bundle, truth, cfg, backtest)
    grouped = EvalStream(model.bundle, split_dataset(truth, 3), cfg, backtest, source=truth.source)
    series = pd.concat([p[0] for p in grouped], ignore_index=True)

    def by_specimen(t):  # the groups' rows come model by model within each group
        return t.sort_values(["model", "specimen"], kind="stable").reset_index(drop=True)

    pd.testing.assert_frame_equal(
        by_specimen(series), by_specimen(one.per_series), check_exact=False, rtol=1e-12
    )
    a, b = one.report["models"]["model"], grouped.report["models"]["model"]
    assert a["rmse"] == pytest.approx(b["rmse"], rel=1e-12) and a["n"] == b["n"]


def test_results_give_ids_and_times_as_the_caller_s_table_has_them(coating_slice, tmp_path):
    """Integer ids came back as text ('1'), so merging a forecast onto the caller's table found no
    row, without an error; on a table of dates, evaluate's and end_of_life_backtest's times were
    days since 1970 (19743.0) where `durability evaluate` writes dates and forecast gives them."""
    from typer.testing import CliRunner

    from durability_cli.cli import app

    df = pd.read_csv(coating_slice(8, 40))
    df = df.assign(
        specimen_id=df.specimen_id.str[1:].astype(int) * 10,  # 10, 20, ...: they sort as numbers
        time=pd.Timestamp("2024-01-01") + pd.to_timedelta(df.time, unit="D"),
    )
    plan = df.copy()
    plan.loc[plan.groupby("specimen_id").cumcount() >= 25, "durability"] = np.nan
    model = dur.train(df, epochs=2, hidden=8, layers=1, ensemble=1, trend_line=False, seed=0)
    fc = model.forecast(plan, samples=10, threshold=0.9)
    joined = plan.merge(fc.table[["specimen_id", "time", "durability_mean"]], on=["specimen_id", "time"])
    assert len(joined) == len(fc.table) > 0  # every forecast row finds its row of the plan
    assert fc.end_of_life.specimen_id.dtype == np.int64
    assert set(fc.end_of_life.specimen_id) == set(df.specimen_id)

    report = model.evaluate(df, context=25, samples=10, threshold=0.9)
    points = report.backtest
    # named as the table names them: they join it
    assert points["specimen_id"].dtype == np.int64 and pd.api.types.is_datetime64_any_dtype(points["time"])
    assert len(points.merge(df, on=["specimen_id", "time"])) == len(points)
    # as the command line writes the same backtest
    table, model_file, out = tmp_path / "d.csv", tmp_path / "m.safetensors", tmp_path / "bt.csv"
    df.to_csv(table, index=False)
    model.save(model_file)
    args = ["evaluate", str(table), "-m", str(model_file), "--context", "25", "--samples", "10"]
    r = CliRunner().invoke(app, [*args, "--threshold", "0.9", "--backtest-out", str(out), "-q"])
    assert r.exit_code == 0, r.stderr
    written = pd.read_csv(out, parse_dates=["time"])
    assert (written["time"].to_numpy() == points["time"].to_numpy()).all()
    assert np.allclose(written["y_pred"], points["y_pred"])
    per = report.per_series.dropna(subset=["eol_true"])
    assert len(per) and pd.api.types.is_datetime64_any_dtype(per["eol_true"])

    eol = model.end_of_life_backtest(df, threshold=0.9, context=25, samples=10)
    assert eol["specimen_id"].dtype == np.int64
    assert all(
        pd.api.types.is_datetime64_any_dtype(eol[c]) for c in ("cutoff_time", "eol_pred", "horizon_end")
    )
    assert (eol["cutoff_time"] == df.groupby("specimen_id").time.nth(24).to_numpy()).all()
    from matplotlib.figure import Figure

    assert isinstance(model.plot_end_of_life(eol, threshold=0.9), Figure)  # the plot takes the dates
    # the plots take the forecast with integer ids (the run holds them as text), its table alone too
    drawn = model.plot_result(plan, fc.table, max_specimens=2)
    assert [len(ax.get_lines()) > 1 for ax in drawn.axes[:2]] == [True, True]
    drawn = model.plot_forecast(plan, samples=10, max_specimens=2)
    assert [len(ax.get_lines()) > 1 for ax in drawn.axes[:2]] == [True, True]
    calibrated = model.calibrate(df, context=25, samples=20)  # reads the backtest in model time
    assert calibrated.summary["calibration"]["coverage_after"] is not None


def test_what_the_command_line_warns_of_reaches_a_python_user(coating_slice, tmp_path):
    """train's warnings after its summary (a baseline beat the model, ...) and forecast's or
    evaluate's line on an end of life sought against the data's direction were printed by the
    command line alone: the Forecast, the Evaluation and the Model held none of them."""
    from typer.testing import CliRunner

    from durability_cli.cli import app

    table = coating_slice(8, 40)
    out = tmp_path / "m.safetensors"
    args = ["train", str(table), "-o", str(out), "--epochs", "2", "--hidden", "8", "--layers", "1"]
    r = CliRunner().invoke(app, [*args, "--ensemble", "1", "--no-trend-line"])
    assert r.exit_code == 0, r.stderr
    model = dur.load(out)
    said = " ".join(r.stderr.split())
    from durability_cli.errors import cli_text  # (`epochs` in Python, --epochs on the command line)

    assert model.warnings and all(" ".join(cli_text(w).split()) in said for w in model.warnings)
    assert "beats the model" in model.warnings[0]  # two epochs: exponential decay forecasts better

    plan = pd.read_csv(table)
    plan.loc[plan.groupby("specimen_id").cumcount() >= 20, "durability"] = np.nan
    fc = model.forecast(plan, samples=10, threshold=1.5, direction="above")  # they fall: never above
    assert (
        "`direction` above seeks where the target first goes above 1.5" in fc.warnings[0]
    )  # (--direction on the CLI)
    report = model.evaluate(str(table), context=20, samples=10, threshold=1.5, direction="above")
    assert fc.warnings[0] in report.warnings
    eol = model.end_of_life_backtest(str(table), threshold=1.5, context=20, samples=10, direction="above")
    assert eol.attrs["warnings"][0] == fc.warnings[0]


def test_a_named_index_is_read_as_its_columns_and_results_print_short(coating_slice):
    """df.set_index(["specimen_id", "time"]) was dropped ("no time column"); a Forecast printed
    its table twice and an Evaluation about 14,000 characters."""
    df = pd.read_csv(coating_slice(8, 40))
    plan = df.copy()
    plan.loc[plan.groupby("specimen_id").cumcount() >= 25, "durability"] = np.nan
    model = dur.train(df.set_index(["specimen_id", "time"]), epochs=2, hidden=8, layers=1, ensemble=1, seed=0)
    fc = model.forecast(plan.set_index("specimen_id"), samples=10, threshold=0.9)
    assert fc.table.equals(model.forecast(plan, samples=10, threshold=0.9).table)
    # an index that fills no role the columns lack (a row counter, even named) is dropped as before
    for counter in ("row", "step", "specimen_id"):  # (step: a time name, but the table has its time)
        read = dur.read(df.rename_axis(counter), columns=dur.Columns(static=["material"]))
        assert read.schema.covariates == ("temperature", "humidity") and read.schema.time_col == "time"
    with pytest.raises(InputError, match="the model needs time column .time., which this table lacks"):
        model.forecast(plan.set_index("time").rename_axis(None), samples=10)
    report = model.evaluate(df, context=25, samples=10)
    assert repr(fc).startswith("Forecast(120 rows of 8 specimen(s); end_of_life: 8 rows; paths: none; ")
    assert repr(report).startswith("Evaluation(RMSE model ") and len(repr(report)) < 300
    assert "over 8 specimen(s); backtest: 600 rows" in repr(report)
    assert repr(dur.read(df, columns=dur.Columns(static=["material"]))) == (
        "Dataset(DataFrame: 8 specimen(s), 320 rows; id 'specimen_id', time 'time', target 'durability', "
        "conditions temperature, humidity, static material)"
    )


def test_dates_with_a_time_zone_come_back_in_that_zone(coating_slice):
    """Dates in Europe/Berlin came back in UTC without a zone (00:00+01:00 as 23:00 the day
    before), and merging them onto the caller's table raised ValueError."""
    df = pd.read_csv(coating_slice(6, 40))
    df = df.assign(
        time=(pd.Timestamp("2024-01-01") + pd.to_timedelta(df.time, unit="D")).dt.tz_localize("Europe/Berlin")
    )
    plan = df.assign(durability=df.durability.where(df.groupby("specimen_id").cumcount() < 25))
    model = dur.train(df, epochs=2, hidden=8, layers=1, ensemble=1, trend_line=False, seed=0)
    fc = model.forecast(plan, samples=10, threshold=0.9, paths=True)
    assert str(fc.table.time.dt.tz) == "Europe/Berlin"
    joined = plan.merge(fc.table[["specimen_id", "time", "durability_mean"]], on=["specimen_id", "time"])
    assert len(joined) == len(fc.table) > 0
    assert (
        str(fc.paths.time.dt.tz) == "Europe/Berlin"
        and str(fc.end_of_life.last_measured_time.dt.tz) == "Europe/Berlin"
    )
    assert (
        fc.end_of_life.last_measured_time.to_numpy() == plan.groupby("specimen_id").time.nth(24).to_numpy()
    ).all()
    report = model.evaluate(df, context=25, samples=10)
    assert len(report.backtest.merge(df, on=["specimen_id", "time"])) == len(report.backtest)
    eol = model.end_of_life_backtest(df, threshold=0.9, context=25, samples=10)
    assert str(eol.cutoff_time.dt.tz) == "Europe/Berlin"
    from matplotlib.figure import Figure

    assert isinstance(model.plot_end_of_life(eol, threshold=0.9), Figure)
    # a zone whose name is no zone's key comes back as it was given (it raised ZoneInfoNotFoundError)
    import datetime

    lab = datetime.timezone(datetime.timedelta(hours=5), "Lab time")
    there = plan.assign(time=plan.time.dt.tz_convert(lab))
    assert model.forecast(there, samples=10).table.time.iloc[0] == fc.table.time.iloc[0]
    assert model.forecast(there, samples=10).table.time.dt.tz == lab
    # history and plan, one with a zone and one without: hours apart, refused (one was read as UTC)
    early = plan.groupby("specimen_id").cumcount() < 25
    naive = plan.assign(time=plan.time.dt.tz_localize(None))
    with pytest.raises(InputError, match="the history's dates .DataFrame. carry a time zone .Europe/Berlin."):
        model.forecast(plan[early], future=naive[~early], samples=10)
    drawn = model.plot_result(plan, fc, max_specimens=2)  # history and forecast on one time axis:
    starts = [line.get_xdata()[0] for line in drawn.axes[0].get_lines()]  # (a zone mixed in shifted it)
    assert len(starts) > 1 and all(getattr(x, "tzinfo", None) is None for x in starts), starts
    # at Berlin's clock times, as the table has them (they were drawn in UTC: 23:00 the day before)
    first = plan[plan.specimen_id == drawn.axes[0].get_title().split(":")[0]].time.iloc[0]
    assert pd.Timestamp(starts[0]) == first.tz_localize(None), (starts[0], first)


def test_an_error_reworded_keeps_its_type_fields_and_argument_names():
    """reworded copied with copy.copy, which calls the type with its message alone: a
    TrainingDiverged (which also takes the weights kept) raised TypeError there."""
    from durability_cli.errors import MissingColumn
    from durability_cli.training import TrainingDiverged

    diverged = TrainingDiverged("diverged; try a lower `lr`", "the kept weights")
    again = diverged.reworded(f"{diverged.template}; best.toml sets lr = 0.5")
    assert type(again) is TrainingDiverged and again.bundle == "the kept weights"
    assert again.cli_message() == "diverged; try a lower --lr; best.toml sets lr = 0.5"
    missing = MissingColumn("no column 'x' (`covariates`)", column="x", role="condition", model=True)
    moved = missing.reworded(missing.template + "; elsewhere")
    assert (moved.column, moved.role, moved.model, str(moved)) == (
        "x",
        "condition",
        True,
        "no column 'x' (covariates); elsewhere",
    )


def test_a_dataframe_s_bad_row_is_named_with_its_index_label_too(coating_slice):
    """A filtered DataFrame's rows were named by place alone ("row 4"), where the caller finds
    them by index label (3866)."""
    df = pd.read_csv(coating_slice(6, 40))
    later = df[df.specimen_id != df.specimen_id.iloc[0]].copy()  # index labels from 40 on
    later.loc[later.index[3], "temperature"] = np.nan
    with pytest.raises(InputError) as err:
        dur.read(later)
    assert "(row 4, index 43);" in str(err.value)
    twice = pd.concat([later.dropna(), later.dropna().iloc[[5]]])
    with pytest.raises(InputError) as err:
        dur.read(twice)
    assert f"(rows 6 and {len(twice)}, index 46 and 46)" in str(err.value)
    worded = later.astype({"temperature": object})
    worded.loc[later.index[3], "temperature"] = "row 2"  # a cell's value is never taken for a row
    with pytest.raises(InputError) as err:
        dur.read(worded)
    assert "column 'temperature', row 4, index 43: 'row 2' is not a number" in str(err.value)
    same = df.copy()
    same.loc[3, "temperature"] = np.nan  # an index that is the rows' places: no label to add
    with pytest.raises(InputError) as err:
        dur.read(same)
    assert "(row 4);" in str(err.value)


def test_a_workbook_s_sheet_is_named_in_python_too(coating_slice, tiny_model, tmp_path):
    """Model.forecast, evaluate, calibrate and end_of_life_backtest took no sheet: a table on a
    workbook's second sheet was out of reach but through an undocumented Columns(fmt="xlsx:NAME")."""
    pytest.importorskip("openpyxl")
    table = coating_slice(10, 40)
    model = dur.load(tiny_model(table))
    df = pd.read_csv(table)
    plan = df.assign(durability=df.durability.where(df.groupby("specimen_id").cumcount() < 25))
    early = plan.groupby("specimen_id").cumcount() < 25
    history, future = plan[early], plan[~early]
    book = tmp_path / "lab.xlsx"
    with pd.ExcelWriter(book) as writer:
        pd.DataFrame({"note": ["the oven ran hot on day 3"]}).to_excel(
            writer, sheet_name="notes", index=False
        )
        df.to_excel(writer, sheet_name="measured", index=False)
        plan.to_excel(writer, sheet_name="plan", index=False)
        future.to_excel(writer, sheet_name="future", index=False)
    want = model.forecast(plan, samples=5).table
    assert model.forecast(book, sheet="plan", samples=5).table.equals(want)
    split = model.forecast(history, future=book, future_sheet="future", samples=5).table
    assert np.allclose(split["durability_mean"], want["durability_mean"])
    with pytest.raises(
        InputError, match="this is the workbook's first sheet .the others: measured, plan, future."
    ):
        model.forecast(book, samples=5)
    scored = model.evaluate(book, sheet="measured", context=25, samples=5).report["models"]["model"]["rmse"]
    assert scored == model.evaluate(df, context=25, samples=5).report["models"]["model"]["rmse"]
    eol = model.end_of_life_backtest(book, sheet="measured", threshold=0.9, context=25, samples=5)
    assert len(eol) == 10
    with pytest.raises(InputError, match="sheet 'plan' names a sheet of a workbook's path"):
        model.forecast(plan, sheet="plan")
    with pytest.raises(InputError, match="sheet 'plan' names a sheet of a workbook's path"):
        dur.train(plan, sheet="plan", epochs=1)  # (it was ignored)
    with pytest.raises(InputError, match="a sheet is named, but this is a csv file"):
        model.forecast(str(table), sheet="plan")


def test_a_member_s_divergence_names_the_flags_on_the_command_line(coating_slice):
    """An ensemble whose members train one after the other put its member's message together from
    str(error), whose argument names had lost their marks: the command line said "try a lower lr"."""
    from durability_cli.training import TrainingDiverged, _Diverged

    def diverge(log):
        raise _Diverged("loss is nan")

    table = str(coating_slice(6, 20))
    for members in ({"ensemble": 1}, {"ensemble": 2, "ema": 0.9}):
        with pytest.raises(TrainingDiverged) as err:
            dur.train(
                table, epochs=1, hidden=8, layers=1, trend_line=False, latent=0, on_epoch=diverge, **members
            )
        assert "try a lower --lr (now 0.002) or a tighter --clip (now 1)" in err.value.cli_message()
        assert "try a lower lr (now 0.002)" in str(err.value)
