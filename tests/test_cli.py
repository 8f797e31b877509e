"""The real commands on small real files: train -> inspect -> forecast -> evaluate -> plot."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from durability_cli.artifact import load_bundle
from durability_cli.cli import app

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
FAST = ["--epochs", "3", "--hidden", "16", "--layers", "1", "--batch-size", "8", "--quiet"]


def invoke(*args, input=None):
    result = CliRunner().invoke(app, [str(a) for a in args], input=input)
    return result


@pytest.fixture(scope="module")
def small_coating(coating_slice) -> Path:
    """12 coating specimens cut to 60 rows: trains in a few seconds."""
    return coating_slice(12, 60)


@pytest.fixture(scope="module")
def model(small_coating, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model") / "m.safetensors"
    r = invoke("train", small_coating, "-o", out, "--static", "material", *FAST)
    assert r.exit_code == 0, r.output
    return out


def plan_from(df: pd.DataFrame, context: int) -> pd.DataFrame:
    """Hide durability after the first ``context`` rows of each specimen."""
    plan = df.copy()
    plan.loc[plan.groupby("specimen_id").cumcount() >= context, "durability"] = np.nan
    return plan


def test_help_version_and_unimplemented_nothing(runner):
    r = invoke("--help")
    assert r.exit_code == 0
    for cmd in ("train", "forecast", "evaluate", "schema", "inspect", "plot"):
        assert cmd in r.output
    assert invoke("-h").exit_code == 0
    r = invoke("--version")
    assert r.exit_code == 0 and r.output.startswith("durability ")


def test_train_writes_model_and_removes_checkpoint(model):
    assert model.exists()
    assert not Path(f"{model}.ckpt").exists()
    assert model.read_bytes()[:1] != b"\x80"  # not a pickle


def test_inspect_json(model):
    r = invoke("inspect", model, "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["format"] == "durability-model"
    assert info["schema"]["covariates"] == ["temperature", "humidity"]
    assert info["schema"]["static"] == ["material"]
    assert info["model_config"]["hidden"] == 16
    assert info["summary"]["epochs_run"] == 3
    assert len(info["summary"]["history"]) == 3
    assert set(info["summary"]["envelope"]) == {"temperature", "humidity", "dt"}
    assert info["parameters"] > 0


def test_same_seed_gives_identical_model_file(small_coating, model, tmp_path):
    again = tmp_path / "again.safetensors"
    r = invoke("train", small_coating, "-o", again, "--static", "material", *FAST)
    assert r.exit_code == 0, r.output
    a, b = model.read_bytes(), again.read_bytes()
    # the metadata holds the wall time; the weights must be bit-identical
    from safetensors.torch import load

    ta, tb = load(a), load(b)
    assert ta.keys() == tb.keys()
    for k in ta:
        assert bool((ta[k] == tb[k]).all()), k


def test_config_file_and_flags_override(small_coating, tmp_path):
    cfg = tmp_path / "train.toml"
    cfg.write_text('[model]\nhidden = 8\ncell = "gru"\n[train]\nepochs = 2\nbatch_size = 8\n')
    out = tmp_path / "m.safetensors"
    r = invoke("train", small_coating, "-o", out, "--config", cfg, "--epochs", "1", "--quiet")
    assert r.exit_code == 0, r.output
    info = json.loads(invoke("inspect", out, "--json").stdout)
    assert info["model_config"]["hidden"] == 8 and info["model_config"]["cell"] == "gru"
    assert info["train_config"]["epochs"] == 1  # the flag wins over the file


def test_config_file_unknown_key_is_an_error(small_coating, tmp_path):
    cfg = tmp_path / "train.toml"
    cfg.write_text("hiddden = 8\n")
    r = invoke("train", small_coating, "-o", tmp_path / "m.safetensors", "--config", cfg)
    assert r.exit_code == 2
    assert "unknown option(s) hiddden" in r.output
    assert not (tmp_path / "m.safetensors").exists()


def test_bad_option_value_exit_2(small_coating, tmp_path):
    r = invoke("train", small_coating, "-o", tmp_path / "m.safetensors", "--cell", "transformer")
    assert r.exit_code == 2
    assert "'transformer' is not one of 'lstm', 'gru'" in " ".join(r.output.replace("│", "").split())


def test_history_file(small_coating, tmp_path):
    hist = tmp_path / "history.csv"
    r = invoke("train", small_coating, "-o", tmp_path / "m.safetensors", "--history", hist, *FAST)
    assert r.exit_code == 0, r.output
    h = pd.read_csv(hist)
    # 12 specimens, 2 validating: the default trains 5 members, one block of epochs each
    assert list(h.member) == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5]
    assert list(h.epoch) == [1, 2, 3] * 5
    assert {"train_loss", "val_rmse", "teacher_forcing", "fed_measured"} <= set(h.columns)
    r = invoke(
        "train",
        small_coating,
        "-o",
        tmp_path / "one.safetensors",
        "--history",
        hist,
        *FAST,
        "--ensemble",
        "1",
    )
    assert r.exit_code == 0, r.output
    h = pd.read_csv(hist)
    assert list(h.epoch) == [1, 2, 3] and "member" not in h.columns


def test_forecast_rows_quantiles_and_repeatability(model, small_coating, tmp_path):
    df = pd.read_csv(small_coating)
    plan = tmp_path / "plan.csv"
    plan_from(df, 30).to_csv(plan, index=False)
    r = invoke("forecast", plan, "-m", model, "--samples", "50", "--seed", "3")
    assert r.exit_code == 0, r.output
    fc = pd.read_csv(pd.io.common.StringIO(r.stdout))
    assert len(fc) == 12 * 30  # every hidden row, nothing else
    assert list(fc.columns[:7]) == [
        "specimen_id",
        "material",  # the static column, next to the id
        "time",
        "durability_mean",
        "durability_p10",
        "durability_p50",
        "durability_p90",
    ]
    assert (fc.durability_p10 <= fc.durability_p50).all() and (fc.durability_p50 <= fc.durability_p90).all()
    again = invoke("forecast", plan, "-m", model, "--samples", "50", "--seed", "3")
    assert again.stdout == r.stdout
    other = invoke("forecast", plan, "-m", model, "--samples", "50", "--seed", "4")
    assert other.stdout != r.stdout


def test_forecast_samples_zero_is_the_mean_path(model, small_coating, tmp_path):
    from durability_cli.artifact import load_bundle
    from durability_cli.data import to_series
    from durability_cli.forecasting import ForecastConfig, last_observed, rollout
    from durability_cli.schema import load_dataset

    plan = tmp_path / "plan.csv"
    plan_from(pd.read_csv(small_coating), 30).to_csv(plan, index=False)
    # the plan as given: the default --max-step auto may cut its rarest steps (tests/test_long_steps.py)
    r = invoke(
        "forecast", plan, "-m", model, "--samples", "0", "--max-step", "off", "-o", tmp_path / "fc.csv"
    )
    assert r.exit_code == 0, r.output
    fc = pd.read_csv(tmp_path / "fc.csv")
    assert "durability_p10" not in fc.columns
    bundle = load_bundle(model)
    series = to_series(load_dataset(str(plan), schema=bundle.schema))
    mean, paths = rollout(bundle, series, last_observed(series), ForecastConfig(samples=0, seed=0))
    assert paths is None
    expected = mean[np.isfinite(mean)]
    # float32 arithmetic: the command's batches round a little differently from one rollout's
    np.testing.assert_allclose(fc.durability_mean.to_numpy(), expected, rtol=1e-5)


def test_forecast_independent_of_order_and_chunking(model, small_coating, tmp_path):
    from durability_cli.artifact import load_bundle
    from durability_cli.forecasting import ForecastConfig, forecast
    from durability_cli.schema import load_dataset

    df = plan_from(pd.read_csv(small_coating), 25)
    a = tmp_path / "a.csv"
    df.to_csv(a, index=False)
    b = tmp_path / "b.csv"
    df.sample(frac=1.0, random_state=1).to_csv(b, index=False)  # rows shuffled
    bundle = load_bundle(model)
    cfg = ForecastConfig(samples=20, seed=1)
    fa = forecast(bundle, load_dataset(str(a), schema=bundle.schema), cfg).forecast
    fb = forecast(bundle, load_dataset(str(b), schema=bundle.schema), cfg).forecast
    fc = forecast(
        bundle,
        load_dataset(str(a), schema=bundle.schema),
        ForecastConfig(samples=20, seed=1, rollout_batch=5),
    ).forecast
    for other in (fb, fc):
        pd.testing.assert_frame_equal(fa, other, rtol=1e-4, atol=1e-5)
    # one specimen alone gives the same numbers as inside the full table
    one = tmp_path / "one.csv"
    df[df.specimen_id == "C003"].to_csv(one, index=False)
    f1 = forecast(bundle, load_dataset(str(one), schema=bundle.schema), cfg).forecast
    np.testing.assert_allclose(
        f1.durability_mean, fa[fa.specimen_id == "C003"].durability_mean, rtol=1e-4, atol=1e-5
    )


def test_future_rows_equal_horizon_with_future_file(model, small_coating, tmp_path):
    df = pd.read_csv(small_coating)
    df = df[df.groupby("specimen_id").cumcount() < 50]
    plan = plan_from(df, 40)
    plan_path = tmp_path / "plan.csv"
    plan.to_csv(plan_path, index=False)
    history = plan[plan.durability.notna() | (plan.groupby("specimen_id").cumcount() < 40)]
    history = history[history.groupby("specimen_id").cumcount() < 40]
    future = plan[plan.groupby("specimen_id").cumcount() >= 40].drop(columns=["durability"])
    history.to_csv(tmp_path / "history.csv", index=False)
    future.to_csv(tmp_path / "future.csv", index=False)
    r1 = invoke("forecast", plan_path, "-m", model, "--samples", "0")
    r2 = invoke(
        "forecast",
        tmp_path / "history.csv",
        "-m",
        model,
        "--samples",
        "0",
        "--horizon",
        "10",
        "--future",
        tmp_path / "future.csv",
    )
    assert r1.exit_code == 0 and r2.exit_code == 0, r1.output + r2.output
    assert r1.stdout == r2.stdout


def test_hold_conditions_extends_with_last_spacing(model, small_coating, tmp_path):
    df = pd.read_csv(small_coating)
    r = invoke(
        "forecast", small_coating, "-m", model, "--horizon", "5", "--hold-conditions", "--samples", "0"
    )
    assert r.exit_code == 0, r.output
    assert "conditions held" in r.stderr
    fc = pd.read_csv(pd.io.common.StringIO(r.stdout))
    assert len(fc) == 12 * 5
    first = df[df.specimen_id == "C001"]
    step = first.time.iloc[-1] - first.time.iloc[-2]
    got = fc[fc.specimen_id == "C001"]
    np.testing.assert_allclose(got.time, first.time.iloc[-1] + step * np.arange(1, 6))
    assert (got.temperature == first.temperature.iloc[-1]).all()


def test_no_future_rows_is_a_clear_error(model, small_coating):
    r = invoke("forecast", small_coating, "-m", model)
    assert r.exit_code == 2
    assert "no rows to forecast" in r.output and "--horizon" in r.output
    assert "Traceback" not in r.output


def test_end_of_life_table(model, small_coating, tmp_path):
    plan = tmp_path / "plan.csv"
    plan_from(pd.read_csv(small_coating), 20).to_csv(plan, index=False)
    eol = tmp_path / "eol.csv"
    r = invoke(
        "forecast",
        plan,
        "-m",
        model,
        "--threshold",
        "0.9",
        "--eol-out",
        eol,
        "--samples",
        "40",
        "-o",
        tmp_path / "fc.parquet",
    )
    assert r.exit_code == 0, r.output
    table = pd.read_csv(eol)
    assert len(table) == 12
    assert {"eol_time", "prob_cross", "eol_p10", "eol_p90", "status", "rul"} <= set(table.columns)
    assert table.prob_cross.between(0, 1).all()
    assert set(table.status) <= {"crosses", "not within horizon", "already past"}
    assert pd.read_parquet(tmp_path / "fc.parquet").shape[0] == 12 * 40


def test_extrapolation_is_flagged_and_strict_refuses(model, small_coating, tmp_path):
    df = plan_from(pd.read_csv(small_coating), 30)
    df.loc[(df.specimen_id == "C002") & df.durability.isna(), "temperature"] = 150.0
    plan = tmp_path / "hot.csv"
    df.to_csv(plan, index=False)
    r = invoke("forecast", plan, "-m", model, "--samples", "0")
    assert r.exit_code == 0, r.output
    assert "specimen C002: temperature reaches 150" in r.stderr
    fc = pd.read_csv(pd.io.common.StringIO(r.stdout))
    assert fc[fc.specimen_id == "C002"].extrapolated.iloc[1:].all()
    assert not fc[fc.specimen_id == "C001"].extrapolated.any()
    out = tmp_path / "fc.csv"
    r = invoke("forecast", plan, "-m", model, "--strict", "-o", out)
    assert r.exit_code == 2 and "--strict forbids extrapolation" in r.output
    assert not out.exists()


def test_a_forecast_outside_the_measured_durability_is_flagged(model, small_coating, tmp_path):
    """Specimens already degraded far below anything measured in training (their warm-ups at 40 %):
    their forecast rows whose mean lies outside training's measured range are `extrapolated`
    (that value is the next step's input), with a line each, --strict refuses, and a threshold
    below that range is said to make every end of life an extrapolation. (Before, a forecast could
    run anywhere below the training range with `extrapolated` false and no word.)"""
    df = plan_from(pd.read_csv(small_coating), 30)
    low = df.specimen_id.isin(["C001", "C002"])
    df.loc[low, "durability"] *= 0.4
    df.to_csv(tmp_path / "low.csv", index=False)
    lo, hi = load_bundle(model).summary["target_range"]
    r = invoke("forecast", tmp_path / "low.csv", "-m", model, "--samples", "0", "--threshold", "0.05")
    assert r.exit_code == 0, r.output
    fc = pd.read_csv(pd.io.common.StringIO(r.stdout))
    beyond = ~fc.durability_mean.between(lo, hi)
    assert fc.extrapolated.equals(beyond) and beyond[fc.specimen_id.isin(["C001", "C002"])].any()
    said = " ".join(r.stderr.split())
    assert "specimen C001: the forecast durability reaches" in said
    assert f"every durability measured in training [{lo:.4g}, {hi:.4g}]" in said
    assert f"the threshold 0.05 lies below every value measured in training [{lo:.4g}, {hi:.4g}]" in said
    out = tmp_path / "fc.csv"
    r = invoke("forecast", tmp_path / "low.csv", "-m", model, "--samples", "0", "--strict", "-o", out)
    assert r.exit_code == 2 and "--strict forbids extrapolation" in r.stderr and not out.exists()


def test_a_step_equal_to_every_training_step_is_not_an_extrapolation(tmp_path):
    """Alloy-A (benchmarks/data/alloy_a.csv) measures every 0.01 (million cycles): the envelope of
    the step length has (to rounding) no width, and the forecast's own step (--horizon) lands 1e-17 beside it.
    Neither a warning nor --strict's refusal: rounding is not extrapolation."""
    data = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "alloy_a.csv"
    model = tmp_path / "alloy.safetensors"
    args = ["--target", "crack_length", *FAST, "--ensemble", "1", "--no-trend-line"]
    r = invoke("train", data, "-o", model, *args)
    assert r.exit_code == 0, r.output
    lo, hi = load_bundle(model).summary["envelope"]["dt"]
    assert 0 <= hi - lo < 1e-12 * hi  # every step the same, to rounding
    out = tmp_path / "fc.csv"
    # the specimens whose 3 added steps stay within the longest training specimen's span (0.12)
    table = pd.read_csv(data)
    young = table[table.groupby("specimen_id").time.transform("max") <= 0.09 + 1e-9]
    young.to_csv(tmp_path / "young.csv", index=False)
    r = invoke(
        "forecast",
        tmp_path / "young.csv",
        "-m",
        model,
        "--horizon",
        "3",
        "--hold-conditions",
        "--strict",
        "-o",
        out,
    )
    assert r.exit_code == 0, r.output
    assert "training range" not in r.stderr
    fc = pd.read_csv(out)
    assert len(fc) == 3 * young.specimen_id.nunique() > 0 and not fc.extrapolated.any()
    # a model without conditions has none to hold: --horizon alone adds the same rows, said nowhere
    # as "conditions held" (before: refused, "every specimen's last row is measured")
    r = invoke(
        "forecast",
        tmp_path / "young.csv",
        "-m",
        model,
        "--horizon",
        "3",
        "--strict",
        "-o",
        tmp_path / "h.csv",
    )
    assert r.exit_code == 0 and "held" not in r.stderr, r.output
    assert (tmp_path / "h.csv").read_bytes() == out.read_bytes()
    # past that span, a row is: no training specimen was measured that long
    r = invoke(
        "forecast", data, "-m", model, "--horizon", "3", "--hold-conditions", "--samples", "0", "-o", out
    )
    assert r.exit_code == 0, r.output
    fc = pd.read_csv(out)
    lo, hi = load_bundle(model).summary["target_range"]  # and a crack longer than any measured
    beyond = ~fc.crack_length_mean.between(lo, hi)
    assert fc.extrapolated.equals((fc.time > 0.12 + 1e-9) | beyond) and (fc.time > 0.12 + 1e-9).any()
    assert (
        "the forecast runs to 0.15 after its first row, 0.03 past the longest training specimen's 0.12"
        in r.stderr
    )
    # a step a tenth longer still is one
    longer = pd.read_csv(data)
    longer["time"] = longer.time * np.where(longer.specimen_id == 1, 1.1, 1.0)
    longer.to_csv(tmp_path / "longer.csv", index=False)
    r = invoke("forecast", tmp_path / "longer.csv", "-m", model, "--horizon", "3", "--hold-conditions")
    assert r.exit_code == 0, r.output
    assert "specimen 1: step length reaches 0.011" in r.stderr
    # the messages name the model's target, not the default's "durability"
    r = invoke("forecast", data, "-m", model, "-o", out)
    assert r.exit_code == 2 and "future rows with conditions and an empty crack_length" in r.stderr
    first = pd.read_csv(data)
    first.loc[first.specimen_id == 2, "crack_length"] = np.nan
    first.to_csv(tmp_path / "unmeasured.csv", index=False)
    r = invoke("forecast", tmp_path / "unmeasured.csv", "-m", model, "-o", out)
    assert r.exit_code == 2 and r.stderr.strip() == (
        f"Error: {tmp_path / 'unmeasured.csv'}: specimen 2 has no measured crack_length to warm up on; "
        "give each specimen at least its first measured crack_length, or leave it out"
    )


def test_dates_come_back_exact_and_the_remaining_life_readable(tmp_path):
    """Device-B (benchmarks/data/device_b.csv, every 125 h) on dates: the rows --horizon adds lie
    whole multiples of 125 h after the last date, the end-of-life table's row times are the rows'
    own dates (no float days' 1e-7 s), and `rul` is a duration in CSV (ISO 8601, as in JSON Lines)
    and Parquet, not a count of nanoseconds."""
    hours = pd.read_csv(Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "device_b.csv")
    start = pd.Timestamp("2024-01-01")
    hours["date"] = (start + pd.to_timedelta(hours.time, unit="h")).dt.strftime("%Y-%m-%dT%H:%M:%S")
    data = tmp_path / "dates.csv"
    hours.drop(columns="time").to_csv(data, index=False)
    model = tmp_path / "m.safetensors"
    r = invoke(
        "train", data, "--target", "power_drop", "-o", model, *FAST, "--ensemble", "1", "--no-trend-line"
    )
    assert r.exit_code == 0, r.output
    eol, out = tmp_path / "eol.csv", tmp_path / "fc.csv"
    plan = ["--horizon", "4", "--hold-conditions", "--threshold", "-0.5", "--samples", "0"]
    r = invoke("forecast", data, "-m", model, *plan, "--eol-out", eol, "-o", out)
    assert r.exit_code == 0, r.output
    last = hours.groupby("specimen_id").time.max()
    fc = pd.read_csv(out, dtype=str)
    fc["k"] = fc.groupby("specimen_id").cumcount() + 1
    want = start + pd.to_timedelta(fc.specimen_id.astype(int).map(last) + 125 * fc.k, unit="h")
    assert (fc.date == want.dt.strftime("%Y-%m-%d %H:%M:%S")).all(), fc.date[fc.date != want]
    table = pd.read_csv(eol, dtype=str).set_index("specimen_id")
    ends = start + pd.to_timedelta(last + 500, unit="h")
    assert (table.horizon_end == ends.dt.strftime("%Y-%m-%d %H:%M:%S").set_axis(table.index)).all()
    spans = table.rul[table.status == "crosses"].dropna()  # an already-past one: rul 0, eol_time its crossing
    assert len(spans) >= 3 and spans.str.startswith("P").all(), spans
    past = table[table.status == "already past"]
    assert len(past) >= 3 and (past.rul == "P0DT0H0M0S").all()
    assert (pd.to_datetime(past.eol_time) <= pd.to_datetime(past.last_measured_time)).all()
    crossed = table.loc[spans.index]
    gap = pd.to_datetime(crossed.eol_time) - pd.to_datetime(crossed.last_measured_time)
    assert (abs(pd.to_timedelta(spans) - gap) <= pd.Timedelta(microseconds=1)).all()
    r = invoke("forecast", data, "-m", model, *plan, "--eol-out", tmp_path / "eol.parquet", "-o", out)
    assert r.exit_code == 0, r.output
    kept = pd.read_parquet(tmp_path / "eol.parquet").set_index("specimen_id")
    assert pd.api.types.is_timedelta64_dtype(kept.rul)
    assert (kept.rul[spans.index] == pd.to_timedelta(spans)).all()
    # past 2262 (a nanosecond's last year) and with milliseconds: still exact, in the table's unit
    far = pd.Timestamp("2300-01-01 00:00:00.198")
    hours["date"] = (far + pd.to_timedelta(hours.time, unit="h")).dt.strftime("%Y-%m-%d %H:%M:%S.%f")
    hours.drop(columns="time").to_csv(tmp_path / "far.csv", index=False)
    r = invoke("forecast", tmp_path / "far.csv", "-m", model, *plan, "--eol-out", eol, "-o", out)
    assert r.exit_code == 0, r.output
    table = pd.read_csv(eol, dtype=str).set_index("specimen_id")
    wanted = (far + pd.to_timedelta(last + 500, unit="h")).dt.strftime("%Y-%m-%d %H:%M:%S.198")
    assert (table.horizon_end == wanted.set_axis(table.index)).all(), table.horizon_end
    wanted = (far + pd.to_timedelta(last, unit="h")).dt.strftime("%Y-%m-%d %H:%M:%S.198")
    assert (table.last_measured_time == wanted.set_axis(table.index)).all()
    # evaluate says its spans are days and names the target; another unit would relabel days
    backtest = ["--context", "5", "--threshold", "-0.5", "--samples", "0"]
    r = invoke("evaluate", data, "-m", model, *backtest, "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["time_unit"] == "days" and report["target"] == "power_drop"
    assert "end of life: power_drop below -0.5; errors and horizons in days" in " ".join(r.stderr.split())
    # its tables write dates as forecast does (they were days since 1970: 19780.29)
    points, series = tmp_path / "points.csv", tmp_path / "series.csv"
    r = invoke(
        "evaluate", data, "-m", model, *backtest, "--backtest-out", points, "--per-series", series, "-q"
    )
    assert r.exit_code == 0, r.output
    rows = pd.read_csv(points)
    measured = set(zip(hours.specimen_id, start + pd.to_timedelta(hours.time, unit="h"), strict=True))
    assert len(rows) and all(
        k in measured for k in zip(rows.specimen_id, pd.to_datetime(rows.date), strict=True)
    )
    crossed = pd.read_csv(series).dropna(subset=["eol_pred"])
    assert len(crossed) and pd.to_datetime(crossed.eol_pred).dt.year.eq(2024).all()
    # refused before the backtest (plot errors and plot eol ran it first, and said its warnings)
    for command in (["evaluate"], ["plot", "errors"], ["plot", "eol", "--threshold", "0.5"]):
        r = invoke(
            *command, data, "-m", model, *backtest[:2], "--time-unit", "hours", "-o", tmp_path / "x.png"
        )
        assert r.exit_code == 2 and r.stderr.startswith(
            "Error: --time-unit hours: the time column 'date' holds dates, whose spans are drawn and scored in days"
        ), r.stderr


def test_validation_specimens_shorter_than_the_warm_up_are_counted_out_loud(tmp_path):
    """Device-B's devices have 9, 17 or 33 rows: a 20-row validation warm-up leaves only the
    longest to score, which train said nowhere (its score then rests on 2 devices)."""
    data = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "device_b.csv"
    args = ["--target", "power_drop", "--val-context", "20", *FAST[:-1], "--ensemble", "1", "--no-trend-line"]
    r = invoke("train", data, "-o", tmp_path / "m.safetensors", *args)
    assert r.exit_code == 0, r.output
    said = " ".join(r.stderr.split())
    assert "validating on 7 (free run after 20 rows; only 2 of them longer than that, and scored)" in said
    together = [*args[:-3], "--ensemble", "2", "--no-trend-line"]  # members trained together (stacked.py)
    r = invoke("train", data, "-o", tmp_path / "m2.safetensors", *together)
    said = " ".join(r.stderr.split())
    assert r.exit_code == 0 and "trained together" in said, r.output
    assert "validating on 7 (free run after 20 rows; only 2 of them longer than that, and scored)" in said
    r = invoke(
        "train",
        data,
        "-o",
        tmp_path / "m.safetensors",
        *args[:2],
        *FAST[:-1],
        "--ensemble",
        "1",
        "--no-trend-line",
    )
    assert r.exit_code == 0 and "longer than that" not in r.stderr  # the automatic warm-up fits them all


def test_monotonic_against_the_data_is_named(tmp_path):
    """The laser's operating current rises on every one of its 15 devices: --monotonic decreasing
    forces every step down, trained without a word before (validation RMSE worse than
    persistence); increasing, the data's own direction, says nothing."""
    data = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "laser.csv"
    args = ["--target", "current_increase", *FAST[:-1], "--ensemble", "1", "--no-trend-line"]
    said = {}
    for way in ("decreasing", "increasing"):
        r = invoke("train", data, "-o", tmp_path / f"{way}.safetensors", *args, "--monotonic", way)
        assert r.exit_code == 0, r.output
        said[way] = " ".join(r.stderr.split())
    assert (
        "--monotonic decreasing forces every step down, but 15 of the 15 specimens rose from their first "
        "measurement to their last: drop --monotonic, or use --monotonic increasing" in said["decreasing"]
    )
    assert "forces every step" not in said["increasing"]
    assert load_bundle(tmp_path / "increasing.safetensors").summary["target_direction"] == {
        "rising": 15,
        "falling": 0,
    }
    # an end of life sought the other way (the default below, for a current that rises) is named
    # by forecast, evaluate and plot eol; plot eol's refusal names --direction, not only the context
    model = tmp_path / "increasing.safetensors"
    wrong = "--direction below seeks where the target first goes below 10, but 15 of the 15 training specimens rose"
    r = invoke(
        "forecast",
        data,
        "-m",
        model,
        "--horizon",
        3,
        "--hold-conditions",
        "--threshold",
        10,
        "-o",
        tmp_path / "f.csv",
    )
    assert r.exit_code == 0 and wrong in " ".join(r.stderr.split()), r.stderr
    r = invoke("evaluate", data, "-m", model, "--context-frac", 0.5, "--threshold", 10, "--samples", 0)
    assert r.exit_code == 0 and wrong in " ".join(r.stderr.split()), r.stderr
    r = invoke("forecast", data, "-m", model, "--horizon", 3, "--hold-conditions", "--threshold", 10,
               "--direction", "above", "-o", tmp_path / "f.csv")  # fmt: skip
    assert r.exit_code == 0 and "seeks where the target" not in r.stderr
    r = invoke(
        "plot", "eol", data, "-m", model, "--context", 12, "--threshold", 100, "-o", tmp_path / "e.png"
    )
    assert r.exit_code == 2 and r.stderr.strip().endswith(
        "every specimen is already below the threshold 100 at its cut-off; if the target rises with wear, use "
        "--direction above, else a smaller context"
    ), r.stderr


def test_held_rows_past_the_last_date_a_unit_holds_are_refused(write_csv):
    """Yearly steps held for 300,000 years run past what nanoseconds (or microseconds) can date:
    numpy's arithmetic would wrap to 1677 without a word and the rows sort before the history."""
    from durability_cli.errors import InputError
    from durability_cli.forecasting import extend_with_held_conditions
    from durability_cli.schema import load_dataset

    ds = load_dataset(write_csv("specimen,date,durability\nA,2024-01-01,1\nA,2025-01-01,0.9\n"))
    assert len(extend_with_held_conditions(ds, 3).frame) == 5
    with pytest.raises(InputError, match="would date rows past"):
        extend_with_held_conditions(ds, 300_000)


def test_three_specimens_say_whose_scores_choose_the_epoch(coating_slice, tmp_path):
    """Fewer than 4 specimens leave none to validate on: train says the scores it prints (and the
    epoch they choose) are the training specimens' own; a forecast of one specimen says so in the
    singular."""
    table = coating_slice(3, 30)
    out = tmp_path / "m.safetensors"
    r = invoke(
        "train", table, "-o", out, "--static", "material", *FAST[:-1], "--ensemble", "1", "--no-trend-line"
    )
    assert r.exit_code == 0, r.output
    said = " ".join(r.stderr.split())
    assert "Training on 3 specimens, none held out to validate on (--val-fraction 0, or fewer than 4" in said
    df = plan_from(pd.read_csv(table), 20)
    df[df.specimen_id == df.specimen_id.iloc[0]].to_csv(tmp_path / "one.csv", index=False)
    r = invoke("forecast", tmp_path / "one.csv", "-m", out, "--samples", "0", "-o", tmp_path / "fc.csv")
    assert r.exit_code == 0, r.output
    assert "Forecast 10 rows for 1 specimen (0 samples" in r.stderr


def test_a_warm_up_a_warmup_min_model_never_trained_on_is_named(small_coating, model, tmp_path):
    """A model trained with ``--warmup-min 0.5 --val-context 20`` fed its rollouts 10-20 measured
    rows: a forecast from 30 rows or 6 names those specimens on stderr (one line, the first ids,
    the range) and still forecasts; from 10-20 rows, or with a default model, nothing is said."""
    fixed = tmp_path / "fixed.safetensors"
    r = invoke(
        "train", small_coating, "-o", fixed, "--static", "material", *FAST, "--ensemble", "1",
        "--warmup-min", "0.5", "--val-context", "20",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    df = plan_from(pd.read_csv(small_coating), 15)
    rows = df.groupby("specimen_id").cumcount()
    long = df.specimen_id.isin(["C002", "C005"])
    df.loc[long & (rows < 30), "durability"] = pd.read_csv(small_coating).loc[
        long & (rows < 30), "durability"
    ]
    df.loc[(df.specimen_id == "C007") & (rows >= 6), "durability"] = np.nan
    plan = tmp_path / "plan.csv"
    df.to_csv(plan, index=False)
    r = invoke("forecast", plan, "-m", fixed, "--samples", "0")
    assert r.exit_code == 0, r.output
    line = [x for x in r.stderr.splitlines() if "--warmup-min" in x]
    assert len(line) == 1, r.stderr
    assert "specimen C002, C005, C007: forecast from a warm-up of 6-30 rows" in line[0]
    assert "trained only on warm-ups of 10-20 rows" in line[0]
    assert pd.read_csv(pd.io.common.StringIO(r.stdout)).specimen_id.nunique() == 12
    inside = tmp_path / "plan15.csv"
    plan_from(pd.read_csv(small_coating), 15).to_csv(inside, index=False)
    r = invoke("forecast", inside, "-m", fixed, "--samples", "0")
    assert r.exit_code == 0 and "--warmup-min" not in r.stderr, r.stderr
    r = invoke("forecast", plan, "-m", model, "--samples", "0")  # the default draw: any warm-up
    assert r.exit_code == 0 and "--warmup-min" not in r.stderr, r.stderr


def test_an_unseen_static_category_is_flagged_and_strict_refuses(model, small_coating, tmp_path):
    df = plan_from(pd.read_csv(small_coating), 30)
    df.loc[df.specimen_id == "C003", "material"] = "Z"
    plan = tmp_path / "new_material.csv"
    df.to_csv(plan, index=False)
    r = invoke("forecast", plan, "-m", model, "--samples", "0")
    assert r.exit_code == 0, r.output
    assert "static 'material' = 'Z' (specimen C003) was not seen in training (known: A, B)" in r.stderr
    fc = pd.read_csv(pd.io.common.StringIO(r.stdout))
    assert fc[fc.specimen_id == "C003"].extrapolated.all()
    assert not fc[fc.specimen_id == "C001"].extrapolated.any()
    r = invoke("forecast", plan, "-m", model, "--strict", "-o", tmp_path / "fc.csv")
    assert r.exit_code == 2 and "static 'material' = 'Z'" in r.stderr
    assert not (tmp_path / "fc.csv").exists()


def test_evaluate_json_keys_and_files(model, small_coating, tmp_path):
    per = tmp_path / "per.csv"
    png = tmp_path / "err.png"
    r = invoke(
        "evaluate",
        small_coating,
        "-m",
        model,
        "--context",
        "30",
        "--threshold",
        "0.9",
        "--samples",
        "30",
        "--per-series",
        per,
        "--plot",
        png,
    )
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    baselines = {"persistence", "linear", "exponential", "mixed_effects"}  # the last: the model file's fit
    assert set(report["models"]) == {"model", *baselines}
    m = report["models"]["model"]
    for key in ("mae", "rmse", "bias", "mape", "smape", "mase", "rmse_by_step", "coverage", "eol"):
        assert key in m, key
    assert len(m["rmse_by_step"]) == 30
    assert set(report["skill"]) == baselines
    table = pd.read_csv(per)
    assert table.shape[0] == 5 * 12
    # how surely the model beats each baseline, from the same per-specimen scores the file holds
    own = table[table["model"] == "model"].set_index("specimen_id")["rmse"]
    for name, spread in report["skill_spread"].items():
        theirs = table[table["model"] == name].set_index("specimen_id")["rmse"]
        assert spread["specimens"] == 12
        assert spread["specimens_better"] == int((own < theirs.reindex(own.index)).sum())
        assert spread["low"] <= report["skill"][name] <= spread["high"], name
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_compares_models_on_the_same_cut_offs(model, small_coating, small, tmp_path):
    """-m twice: the second model is a column of the report beside the baselines (named by its
    file), scored on the same rows; the first one's skill against it comes with its spread; a
    chunked run says the same; models of other conditions score as they do alone, and one of
    another durability column is refused before any output. The models trained here are single
    ones without the line's choice (``model`` is the default ensemble): any other model will do."""
    one = ["--ensemble", "1", "--no-trend-line"]
    other = tmp_path / "wide.safetensors"
    wide = ["--static", "material", *FAST[:2], "--hidden", "32", "--quiet", *one]
    r = invoke("train", small_coating, "-o", other, *wide)
    assert r.exit_code == 0, r.output
    per = tmp_path / "per.csv"
    args = ["-m", model, "-m", other, "--context", "20", "--samples", "20"]
    r = invoke("evaluate", small_coating, *args, "--per-series", per, "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert list(report["models"]) == [
        "model",
        "wide",
        "persistence",
        "linear",
        "exponential",
        "mixed_effects",
    ]
    first, second = report["models"]["model"], report["models"]["wide"]
    assert first["n"] == second["n"] and first["rmse"] != second["rmse"]
    assert report["skill"]["wide"] == pytest.approx(1 - first["rmse"] / second["rmse"])
    assert "coverage" in second  # a Gaussian model: its band is scored too
    spread = report["skill_spread"]["wide"]
    assert spread["specimens"] == 12 and spread["low"] <= report["skill"]["wide"] <= spread["high"]
    table = pd.read_csv(per)
    assert set(table["model"]) == {"model", "wide", "persistence", "linear", "exponential", "mixed_effects"}
    # alone, the second model scores what it scored beside the first
    r = invoke("evaluate", small_coating, "-m", other, "--context", "20", "--samples", "20", "--json")
    assert json.loads(r.stdout)["models"]["model"]["rmse"] == pytest.approx(second["rmse"])
    r = invoke("evaluate", small_coating, *args, "--chunk-specimens", "5", "--json")
    chunked = json.loads(r.stdout)
    assert chunked["models"]["wide"]["rmse"] == pytest.approx(second["rmse"], rel=1e-9)
    for name, whole in report["skill_spread"].items():
        assert chunked["skill_spread"][name] == pytest.approx(whole), name
    # models of other conditions or static columns each read their own columns of the same rows:
    # one without the static material, one of the temperature alone (does humidity matter?)
    elsewhere, narrow = tmp_path / "other.safetensors", tmp_path / "narrow.safetensors"
    assert invoke("train", small, "-o", elsewhere, *FAST, *one).exit_code == 0
    narrow_args = ["--covariates", "temperature", "--static", "material", *FAST, *one]
    r = invoke("train", small_coating, "-o", narrow, *narrow_args)
    assert r.exit_code == 0, r.output
    cut = ["--context", "20", "--samples", "0", "--json"]
    r = invoke("evaluate", small_coating, "-m", model, "-m", elsewhere, "-m", narrow, *cut)
    assert r.exit_code == 0, r.output
    mixed = json.loads(r.stdout)
    assert mixed["models"]["model"]["n"] == mixed["models"]["other"]["n"] == mixed["models"]["narrow"]["n"]
    for name, path in (("other", elsewhere), ("narrow", narrow)):
        alone = json.loads(invoke("evaluate", small_coating, "-m", path, *cut).stdout)["models"]["model"]
        assert mixed["models"][name]["rmse"] == pytest.approx(alone["rmse"], rel=1e-9), name
    r = invoke(
        "evaluate", small_coating, "-m", model, "-m", elsewhere, "-m", narrow, *cut, "--chunk-specimens", "5"
    )
    assert json.loads(r.stdout)["models"]["narrow"]["rmse"] == pytest.approx(
        mixed["models"]["narrow"]["rmse"]
    )
    # a model of another durability column: one line, exit 2, no file
    table = pd.read_csv(small_coating).rename(columns={"durability": "wear"})
    renamed, wear = tmp_path / "wear.csv", tmp_path / "wear.safetensors"
    table.to_csv(renamed, index=False)
    wear_args = ["--target", "wear", "--static", "material", *FAST, *one]
    assert invoke("train", renamed, "-o", wear, *wear_args).exit_code == 0
    out = tmp_path / "metrics.json"
    r = invoke("evaluate", small_coating, "-m", model, "-m", wear, "--context", "20", "-o", out)
    assert (
        r.exit_code == 2
        and "wear: it reads the specimens, times or durability from other columns" in r.stderr
    )
    assert "target: wear vs durability" in r.stderr and not out.exists()


def test_compared_models_get_distinct_report_names():
    from durability_cli.api import comparison_names

    paths = ["a/b.safetensors", "c/b.safetensors", "x/model.safetensors", "linear.safetensors", "y/v2.1.st"]
    assert comparison_names(paths) == ["b", "b_2", "model_2", "linear_2", "v2"]


def test_evaluate_needs_exactly_one_cutoff_option(model, small_coating):
    r = invoke("evaluate", small_coating, "-m", model)
    assert r.exit_code == 2
    assert "exactly one of --context N, --context-frac F or --origins K" in r.output


def test_plot_commands_write_pngs(model, small_coating, tmp_path):
    plan = tmp_path / "plan.csv"
    plan_from(pd.read_csv(small_coating), 30).to_csv(plan, index=False)
    for args in (
        [
            "plot",
            "forecast",
            plan,
            "-m",
            model,
            "-o",
            tmp_path / "f.png",
            "--threshold",
            "0.9",
            "--samples",
            "20",
            "--max",
            "4",
        ],
        ["plot", "history", model, "-o", tmp_path / "h.png"],
    ):
        r = invoke(*args)
        assert r.exit_code == 0, r.output
        png = Path(args[args.index("-o") + 1]).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", png[16:24])
        assert width > 300 and height > 200 and len(png) > 10_000


def test_model_file_checks(model, tmp_path, small_coating):
    import torch

    class Evil:
        def __reduce__(self):
            return (Path(tmp_path / "pwned").touch, ())

    evil = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, evil)
    r = invoke("forecast", small_coating, "-m", evil)
    assert r.exit_code == 2
    assert "pickle or torch.save file" in r.output
    assert not (tmp_path / "pwned").exists()
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(model.read_bytes()[:-100])
    r = invoke("inspect", broken)
    assert r.exit_code == 2 and "truncated or damaged" in r.output
    r = invoke("inspect", tmp_path / "nope.safetensors")
    assert r.exit_code == 2 and "model file not found" in r.output


def test_model_needs_its_columns(model, tmp_path, small_coating):
    df = pd.read_csv(small_coating).drop(columns=["humidity"])
    path = tmp_path / "nohum.csv"
    df.to_csv(path, index=False)
    r = invoke("evaluate", path, "-m", model, "--context", "10")
    assert r.exit_code == 2
    assert "humidity" in r.output


def test_device_cuda_without_gpu_is_a_usage_error(model, small_coating, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible here")
    r = invoke("evaluate", small_coating, "-m", model, "--context", "10", "--device", "cuda")
    assert r.exit_code == 2
    assert "no CUDA GPU is visible" in r.output
    r = invoke("evaluate", small_coating, "-m", model, "--context", "10", "--device", "tpu")
    assert r.exit_code == 2 and "--device must be auto, cpu or cuda" in r.output


def test_config_file_column_lists_may_be_strings(small_coating, tmp_path):
    cfg = tmp_path / "train.toml"
    cfg.write_text('[data]\nstatic = "material"\n[train]\nepochs = 1\n[model]\nhidden = 8\nlayers = 1\n')
    out = tmp_path / "m.safetensors"
    r = invoke("train", small_coating, "-o", out, "--config", cfg, "--quiet")
    assert r.exit_code == 0, r.output
    assert json.loads(invoke("inspect", out, "--json").stdout)["schema"]["static"] == ["material"]


def test_exponential_schedule_needs_k_at_most_one(small_coating, tmp_path):
    out = tmp_path / "m.safetensors"
    r = invoke(
        "train",
        small_coating,
        "-o",
        out,
        "--teacher-forcing",
        "1",
        "--tf-schedule",
        "exponential",
        "--tf-k",
        "10",
    )
    assert r.exit_code == 2
    assert "--tf-schedule exponential needs 0 < --tf-k <= 1" in r.output
    r = invoke(
        "train",
        small_coating,
        "-o",
        out,
        "--teacher-forcing",
        "1",
        "--tf-schedule",
        "exponential",
        "--epochs",
        "1",
        "--hidden",
        "8",
        "--quiet",
    )  # the schedule's own k (0.9) by default
    assert r.exit_code == 0, r.output


def test_train_help_lists_the_defaults():
    """Each model and training option shows its dataclass default (its CLI default is None:
    "from --config, else the dataclass")."""
    from dataclasses import fields

    from durability_cli.cli import CONFIG_OPTIONS
    from durability_cli.config import ModelConfig, TrainConfig

    defaults = {f.name: f.default for cls in (ModelConfig, TrainConfig) for f in fields(cls)}
    r = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "250", "TERMINAL_WIDTH": "250"})
    assert r.exit_code == 0
    lines: dict[str, str] = {}  # each option's help, its wrapped lines joined
    option = ""
    for line in r.output.splitlines():
        if line.startswith("│ --"):
            option = line.split()[1]
        if line.startswith("│ "):
            lines[option] = lines.get(option, "") + " " + " ".join(line.strip("│").split())
    for name, kind, *_ in CONFIG_OPTIONS:
        shown = lines[f"--{name.replace('_', '-')}"]
        default = defaults[name] if defaults[name] != "" else "none"
        assert ("[default: " if kind is bool else f"[default: {default}]") in shown, shown


def test_train_logs_plain_progress_lines_when_stderr_is_not_a_terminal(small_coating, tmp_path):
    """CliRunner's stderr is not a terminal: no bar, but dated lines a CI log can show."""
    r = invoke("train", small_coating, "-o", tmp_path / "m.safetensors", "--epochs", "3", "--hidden", "8")
    assert r.exit_code == 0, r.stderr
    lines = [x for x in r.stderr.splitlines() if x.startswith("epoch ")]
    assert lines[0].startswith("epoch 1/3  loss ") and "val RMSE" in lines[0]
    assert lines[-1].startswith("epoch 3/3  ")  # the last epoch is always logged
    quiet = invoke(
        "train", small_coating, "-o", tmp_path / "q.safetensors", "--epochs", "3", "--hidden", "8", "-q"
    )
    assert quiet.exit_code == 0 and "epoch " not in quiet.stderr


def _steady_rates(n: int, seed: int) -> pd.DataFrame:
    """Specimens that wear along straight lines at their own rates (no column records which),
    with a little measurement noise: 17 rows every 250 h, as the laser benchmark set."""
    rng = np.random.default_rng(seed)
    t = np.arange(17) * 250.0
    rows = []
    for i in range(n):
        rate = rng.uniform(1.0, 3.5) / 1000.0
        y = rate * t + rng.normal(0.0, 0.1, t.size)
        rows.append(pd.DataFrame({"specimen_id": f"{seed}-{i}", "time": t, "wear": y}))
    return pd.concat(rows, ignore_index=True)


def test_a_trend_line_model_extrapolates_each_specimen_s_own_rate(tmp_path):
    """`train --trend-line` stores the option (and the default, auto, chooses it); on specimens that wear at their own steady rates
    it forecasts new specimens from 6 rows far better than the same short training without it
    (it starts as each warm-up's line), it says so in its summary, and its file forecasts a plan
    read from stdin; fine-tuning it without the line is refused in one line, exit 2."""
    from durability_cli.artifact import load_bundle

    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    _steady_rates(20, 0).to_csv(train, index=False)
    _steady_rates(10, 1).to_csv(test, index=False)
    models = {}
    for name, flags in (("line", ["--trend-line"]), ("plain", ["--no-trend-line"]), ("auto", [])):
        models[name] = tmp_path / f"{name}.safetensors"
        args = [
            "train",
            train,
            "--target",
            "wear",
            "-o",
            models[name],
            *FAST[:-1],
            "--ensemble",
            "1",
            "--val-context",
            "6",
        ]
        r = invoke(*args, *flags)
        assert r.exit_code == 0, r.output
        assert ("monotonic none, trend line;" in r.output) == (name != "plain"), r.output
    assert load_bundle(models["line"]).model_config.trend_line
    assert not load_bundle(models["plain"]).model_config.trend_line
    # the default (auto) trains both and keeps the line, which validates far better here
    auto = load_bundle(models["auto"])
    assert auto.model_config.trend_line and auto.summary["trend_line_auto"].startswith("auto: with the line")
    assert auto.summary["best_val_rmse"] == load_bundle(models["line"]).summary["best_val_rmse"]
    r = invoke("evaluate", test, "-m", models["line"], "-m", models["plain"], "--context", "6", "--json")
    assert r.exit_code == 0, r.output
    scores = json.loads(r.stdout)["models"]
    assert list(scores)[:2] == ["model", "plain"]  # the first model, then the others by file name
    # three epochs: the line model is still about the warm-up's line (RMSE 0.20, the straight-line
    # baseline's 0.17), while the plain network has not yet learned any rate (3.3)
    assert scores["model"]["rmse"] < 0.25 * scores["plain"]["rmse"], scores
    assert scores["model"]["rmse"] < 2 * scores["linear"]["rmse"], scores
    plan = pd.read_csv(test)
    plan.loc[plan.groupby("specimen_id").cumcount() >= 6, "wear"] = np.nan
    r = invoke("forecast", "-", "-m", models["line"], "--samples", "0", input=plan.to_csv(index=False))
    assert r.exit_code == 0, r.output
    fc = pd.read_csv(pd.io.common.StringIO(r.stdout))
    assert len(fc) == 10 * 11 and fc["wear_mean"].notna().all()
    tuned = tmp_path / "tuned.safetensors"
    r = invoke(
        "train",
        train,
        "--target",
        "wear",
        "-o",
        tuned,
        "--init-from",
        models["line"],
        "--no-trend-line",
        *FAST,
    )
    assert r.exit_code == 2 and "--trend-line False differs from the --init-from model's True" in r.stderr
    assert not tuned.exists()


def test_a_rising_durability_read_with_direction_below_is_named(tmp_path):
    """Wear that rises (a current, a crack) with a threshold above it and the default --direction
    below: every specimen is already "past" at its last measured row, so forecast warns and
    evaluate adds a line, both naming --direction above; with it, no such line and the end of
    life is scored."""
    table = tmp_path / "wear.csv"
    _steady_rates(12, 2).to_csv(table, index=False)
    model = tmp_path / "m.safetensors"
    r = invoke(
        "train", table, "--target", "wear", "-o", model, *FAST, "--ensemble", "1", "--val-context", "6"
    )
    assert r.exit_code == 0, r.output
    plan = tmp_path / "plan.csv"
    df = pd.read_csv(table)
    df.loc[df.groupby("specimen_id").cumcount() >= 6, "wear"] = np.nan
    df.to_csv(plan, index=False)
    hint = "use --direction above"
    r = invoke("forecast", plan, "-m", model, "--threshold", "10", "--samples", "0", "-o", tmp_path / "f.csv")
    assert r.exit_code == 0 and hint in r.output and "already below the threshold 10" in r.output, r.output
    r = invoke(
        "forecast",
        plan,
        "-m",
        model,
        "--threshold",
        "10",
        "--direction",
        "above",
        "--samples",
        "0",
        "-o",
        tmp_path / "g.csv",
    )
    assert r.exit_code == 0 and hint not in r.output, r.output
    r = invoke("evaluate", table, "-m", model, "--context", "6", "--threshold", "10", "--samples", "0")
    assert r.exit_code == 0 and hint in r.output, r.output
    r = invoke(
        "evaluate",
        table,
        "-m",
        model,
        "--context",
        "6",
        "--threshold",
        "10",
        "--direction",
        "above",
        "--samples",
        "0",
        "--json",
    )
    assert r.exit_code == 0 and hint not in r.output
    eol = json.loads(r.stdout)["models"]["model"]["eol"]
    assert eol["already_past"] == 0 and eol["n"] == 12


def test_a_trend_model_trains_forecasts_and_keeps_its_input_when_fine_tuned(small_coating, tmp_path):
    """`train --trend` stores the option in the model file; the model forecasts from a plan (its
    input width is read back from the file) and in a pipeline of the same rows; fine-tuning it
    with --no-trend is refused in one line, exit 2, and writes nothing."""
    from durability_cli.artifact import load_bundle

    out = tmp_path / "trend.safetensors"
    r = invoke("train", small_coating, "-o", out, "--static", "material", *FAST, "--ensemble", "1", "--trend")
    assert r.exit_code == 0, r.output
    bundle = load_bundle(out)
    assert bundle.model_config.trend and bundle.model.rnn.input_size == 2 + 1 + 1 + 1 + 4 + 2
    plan = tmp_path / "plan.csv"
    plan_from(pd.read_csv(small_coating), 30).to_csv(plan, index=False)
    r = invoke("forecast", plan, "-m", out, "--samples", "0")
    assert r.exit_code == 0, r.output
    fc = pd.read_csv(pd.io.common.StringIO(r.stdout))
    assert len(fc) == 12 * 30 and fc.durability_mean.notna().all()
    tuned = tmp_path / "tuned.safetensors"
    r = invoke("train", small_coating, "-o", tuned, "--init-from", out, "--no-trend", *FAST)
    assert r.exit_code == 2 and "--trend False differs from the --init-from model's True" in r.stderr
    assert not tuned.exists()


def test_a_long_forecast_counts_its_specimens_on_a_terminal(coating_slice, tiny_model, tmp_path, monkeypatch):
    """forecast and evaluate were silent until the end (a 5,000-step plan ran 92 s without a
    word): on a terminal a line counts the specimens run, cleared at the end; a pipe or a log
    gets nothing, nor does --quiet."""
    from durability_cli import api, console
    from durability_cli.forecasting import reporting
    from durability_cli.render import ForecastProgress

    table = coating_slice(10, 40)
    model = tiny_model(table)
    counted = []
    with reporting(counted.append):  # the hook: each chunk's specimens, a scenario's again
        fc = api.load(model).forecast(
            str(table), horizon=3, hold_conditions=True, samples=5, set={"humidity": 50}
        )
        two = api.load(model).forecast(
            str(table), horizon=3, hold_conditions=True, samples=5, scenarios={"a": {"humidity": 40}, "b": {}}
        )
    assert sum(counted) == fc.result.specimens + 2 * two.result.specimens == 30
    monkeypatch.setattr(ForecastProgress, "DELAY", 0.0)
    runner = CliRunner()
    args = ["forecast", str(table), "-m", str(model), "--horizon", "3", "--hold-conditions", "--samples", "5"]
    said = {}
    for terminal, quiet in ((True, []), (True, ["-q"]), (False, [])):
        monkeypatch.setattr(console.err, "_force_terminal", terminal)  # as a console on a terminal is made
        monkeypatch.setattr(console.err, "is_interactive", terminal)
        r = runner.invoke(app, [*args, "-o", str(tmp_path / "f.csv"), *quiet])
        assert r.exit_code == 0, r.stderr
        said[terminal, bool(quiet)] = r.stderr
    assert "forecast: 10 specimen run(s)" in said[True, False]
    assert "specimen run(s)" not in said[True, True] + said[False, False]
    monkeypatch.setattr(console.err, "_force_terminal", True)
    monkeypatch.setattr(console.err, "is_interactive", True)
    evaluate = ["evaluate", str(table), "-m", str(model), "--context", "20", "--samples", "5"]
    r = runner.invoke(app, [*evaluate, "-o", str(tmp_path / "e.json")])
    assert r.exit_code == 0 and "backtest forecasts: " in r.stderr, r.stderr
