"""End of life from forecast paths, on cases whose crossing time is known by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from durability_cli.data import to_series
from durability_cli.forecasting import ForecastConfig, end_of_life, last_observed
from durability_cli.schema import Schema, validate


def _dataset(values_a, values_b):
    rows = []
    for sid, values in (("A", values_a), ("B", values_b)):
        for t, v in enumerate(values):
            rows.append({"specimen_id": sid, "time": float(t), "temp": 20.0, "durability": v})
    schema = Schema(id_col="specimen_id", time_col="time", target="durability", covariates=("temp",))
    return validate(pd.DataFrame(rows), schema, source="test")


def test_mean_path_crossing_is_interpolated_from_the_last_measurement():
    nan = np.nan
    # A: measured 1.0 .. 0.6 at t = 0..4, then forecast; B: already below the threshold
    ds = _dataset([1.0, 0.9, 0.8, 0.7, 0.6, nan, nan, nan], [0.6, 0.5, 0.4, nan, nan, nan, nan, nan])
    series = to_series(ds)
    last = last_observed(series)
    assert last.tolist() == [4, 2]
    mean = np.full(series.y.shape, np.nan)
    mean[0, 5:] = [0.5, 0.4, 0.3]  # A crosses 0.55 halfway between t=4 (0.6) and t=5 (0.5)
    mean[1, 3:] = [0.35, 0.3, 0.25, 0.2, 0.15]
    table = end_of_life(series, last, mean, None, ForecastConfig(threshold=0.55, samples=0), ds)
    a, b = table.iloc[0], table.iloc[1]
    assert a.eol_time == pytest.approx(4.5)
    assert a.rul == pytest.approx(0.5)
    assert a.status == "crosses" and a.prob_cross == 1.0
    assert b.status == "already past"
    # where its measurements crossed (0.6 at t=0, 0.5 at t=1), not its last measured time (2)
    assert b.eol_time == pytest.approx(0.5) and b.rul == 0.0 and b.prob_cross == 1.0
    # a latent model's population crossing: none for a specimen already past (it read its last time)
    cfg = ForecastConfig(threshold=0.55, samples=0)
    table = end_of_life(series, last, mean, None, cfg, ds, population=mean)
    assert table.eol_time_population.iloc[0] == pytest.approx(4.5) and np.isnan(
        table.eol_time_population.iloc[1]
    )


def test_sample_paths_give_crossing_quantiles_and_probability():
    nan = np.nan
    ds = _dataset([1.0, 0.9, nan, nan, nan, nan], [1.0, 0.95, nan, nan, nan, nan])
    series = to_series(ds)
    last = last_observed(series)
    S = 4
    paths = np.full((2, S, series.y.shape[1]), np.nan, dtype=np.float32)
    # A: four paths reaching 0.5 at t = 2, 3, 4, 5 exactly; B: never crosses
    for s in range(S):
        paths[0, s, 2:] = np.maximum(0.9 - 0.4 * (np.arange(2, 6) - 1) / (s + 1), 0.5)
        paths[0, s, 2 + s :] = 0.5
    paths[1, :, 2:] = 0.9
    mean = np.where(np.isfinite(paths[:, 0]), paths.mean(axis=1), np.nan)
    cfg = ForecastConfig(threshold=0.5, samples=S, quantiles=(0.25, 0.5, 1 - 1e-9))
    table = end_of_life(series, last, mean, paths, cfg, ds)
    a, b = table.iloc[0], table.iloc[1]
    assert a.prob_cross == 1.0
    assert a.eol_p25 == pytest.approx(2.0)
    assert a.eol_p50 == pytest.approx(3.0)
    assert b.prob_cross == 0.0 and np.isnan(b.eol_p50)
    assert b.status == "not within horizon"


def test_direction_above():
    nan = np.nan
    ds = _dataset([0.1, 0.2, nan, nan], [0.1, 0.1, nan, nan])
    series = to_series(ds)
    mean = np.full(series.y.shape, np.nan)
    mean[0, 2:] = [0.4, 0.6]
    mean[1, 2:] = [0.1, 0.1]
    table = end_of_life(
        series,
        last_observed(series),
        mean,
        None,
        ForecastConfig(threshold=0.5, direction="above", samples=0),
        ds,
    )
    assert table.iloc[0].eol_time == pytest.approx(2.5)
    assert np.isnan(table.iloc[1].eol_time)


def test_evaluate_with_rolling_origins_reports_prognostics(tmp_path):
    import json
    from pathlib import Path

    from typer.testing import CliRunner

    from durability_cli.cli import app

    sample = Path(__file__).resolve().parents[1] / "sample_data" / "coating.csv"
    df = pd.read_csv(sample)
    keep = sorted(df.specimen_id.unique())[:8]
    df = df[df.specimen_id.isin(keep) & (df.groupby("specimen_id").cumcount() < 60)]
    data = tmp_path / "d.csv"
    df.to_csv(data, index=False)
    model = tmp_path / "m.safetensors"
    runner = CliRunner()
    r = runner.invoke(
        app,
        ["train", str(data), "-o", str(model), "--epochs", "2", "--hidden", "8", "--layers", "1", "--quiet"],
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        app,
        [
            "evaluate",
            str(data),
            "-m",
            str(model),
            "--origins",
            "3",
            "--threshold",
            "0.9",
            "--samples",
            "10",
            "--quiet",
        ],
    )
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["n_origins"] == 3
    prognostics = report["models"]["model"]["prognostics"]
    assert {"alpha_lambda", "prognostic_horizon"} <= set(prognostics)
    # the model's paths give each forecast an end-of-life interval, scored against the truth
    eol = report["models"]["model"]["eol"]
    assert eol["interval_level"] == 0.8
    assert eol["interval_n"] + eol["interval_undetermined"] > 0
    assert eol["interval_coverage"] is None or 0.0 <= eol["interval_coverage"] <= 1.0
    assert "interval_coverage" not in report["models"]["persistence"]["eol"]  # no paths, no interval


def test_eol_interval_coverage_decides_censored_truths_only_where_the_interval_settles_it():
    from durability_cli.metrics import eol_interval_coverage

    inf, nan = np.inf, np.nan
    lower = [10, 10, 10, 10, 10, 30, nan]
    upper = [20, 20, inf, 15, inf, inf, nan]
    true = [15, 25, 50, nan, nan, nan, 12]  # NaN: not crossed by the censoring time
    censor = [60, 60, 60, 18, 18, 18, 60]
    out = eol_interval_coverage(lower, upper, true, censor)
    # inside; after the interval; inside an open-ended one; censored after an interval that
    # ended before the censoring (missed); censored inside [10, inf) (covered); censored at 18
    # with the interval from 30 on (undetermined); no interval at all (a point model: ignored)
    assert out["interval_n"] == 5
    assert out["interval_coverage"] == pytest.approx(3 / 5)
    assert out["interval_undetermined"] == 1
    assert out["interval_level"] == 0.8
    # the two misses both fall late: one crossed after the interval, one outlived it
    assert (out["interval_early"], out["interval_late"]) == (0, 2)


def test_eol_interval_misses_are_told_apart_by_side():
    from durability_cli.metrics import eol_interval_coverage

    inf, nan = np.inf, np.nan
    lower = [10, 10, 10, 10, 40, 10]
    upper = [20, 20, 20, inf, inf, inf]
    true = [5, 9.5, 25, 8, nan, nan]
    censor = [60, 60, 60, 60, 30, 15]
    out = eol_interval_coverage(lower, upper, true, censor)
    # crossed at 5, 9.5 and 8, before intervals starting at 10: early; crossed at 25 after one
    # ending at 20: late; censored at 30 before an interval from 40 on: undetermined; censored at
    # 15 inside [10, inf): held
    assert (out["interval_early"], out["interval_late"], out["interval_undetermined"]) == (3, 1, 1)
    assert out["interval_n"] == 5 and out["interval_coverage"] == pytest.approx(1 / 5)


def test_the_mean_column_is_the_mean_path_that_eol_time_crosses(model, plan, small, tmp_path):
    """The forecast's mean column is the mean path (as --samples 0), whatever the seed; eol_time is
    where that column crosses; evaluate scores the same numbers at the same cut-off. Before, the
    column averaged the paths: it moved with --seed and a calibration, and eol_time crossed
    elsewhere."""
    from typer.testing import CliRunner

    from durability_cli.cli import app

    def run(*args):
        r = CliRunner().invoke(app, [*map(str, args), "-q"])
        assert r.exit_code == 0, r.output
        return r

    tables = {}
    for name, extra in (("s0", ["--seed", 0]), ("s1", ["--seed", 1]), ("det", ["--samples", 0])):
        out = tmp_path / f"{name}.csv"
        run("forecast", plan, "-m", model, "-o", out, "--precision", 0, *extra)
        tables[name] = pd.read_csv(out)
    a, b, det = tables["s0"], tables["s1"], tables["det"]
    assert np.allclose(a.durability_mean, det.durability_mean, rtol=0, atol=1e-6)
    assert np.allclose(a.durability_mean, b.durability_mean, rtol=0, atol=1e-6)
    assert not np.allclose(a.durability_p10, b.durability_p10)  # the paths do differ by seed

    threshold = float(a.durability_mean.median())
    eol = tmp_path / "eol.csv"
    run(
        "forecast",
        plan,
        "-m",
        model,
        "-o",
        tmp_path / "f.csv",
        "--threshold",
        threshold,
        "--eol-out",
        eol,
        "--precision",
        0,
    )
    eol = pd.read_csv(eol).set_index("specimen_id")
    measured = pd.read_csv(plan).dropna(subset=["durability"]).groupby("specimen_id").last()
    crossed = 0
    for sid, rows in a.groupby("specimen_id"):
        t = np.r_[measured.time[sid], rows.time]
        y = np.r_[measured.durability[sid], rows.durability_mean]
        below = np.flatnonzero(y <= threshold)
        if not len(below) or below[0] == 0:
            continue
        i = below[0]
        expected = t[i - 1] + (t[i] - t[i - 1]) * (y[i - 1] - threshold) / (y[i - 1] - y[i])
        assert eol.eol_time[sid] == pytest.approx(expected, abs=1e-4)
        crossed += 1
    assert crossed >= 3

    bt = tmp_path / "bt.csv"
    run(
        "evaluate",
        small,
        "-m",
        model,
        "--context",
        20,
        "--backtest-out",
        bt,
        "--no-baselines",
        "--precision",
        0,
    )
    scored = pd.read_csv(bt).query("model == 'model'").merge(a, on=["specimen_id", "time"])
    assert len(scored) == len(a)
    assert np.allclose(scored.y_pred, scored.durability_mean, rtol=0, atol=1e-6)
    # and the same paths: the first cut-off draws as forecast does (it drew from "C001#0")
    assert np.allclose(scored["q0.1"], scored.durability_p10, rtol=0, atol=1e-6)
    assert np.allclose(scored["q0.9"], scored.durability_p90, rtol=0, atol=1e-6)


def test_a_specimen_not_forecast_has_no_end_of_life_row(model, plan, tmp_path):
    """A specimen without future rows is skipped with a warning; its end-of-life row read
    'not within horizon', prob_cross 0, as if it had survived a plan it never had."""
    from typer.testing import CliRunner

    from durability_cli.cli import app

    df = pd.read_csv(plan)
    skipped = sorted(df.specimen_id.unique())[:2]
    df = df[~df.specimen_id.isin(skipped) | df.durability.notna()]
    cut = tmp_path / "plan.csv"
    df.to_csv(cut, index=False)
    eol = tmp_path / "eol.csv"
    args = ["forecast", cut, "-m", model, "--threshold", 0.5, "--eol-out", eol, "-o", tmp_path / "f.csv"]
    r = CliRunner().invoke(app, [*map(str, args), "--samples", "20"])
    assert r.exit_code == 0, r.output
    assert f"have no future rows and are not forecast: {', '.join(skipped)}" in r.output
    table = pd.read_csv(eol)
    assert not set(skipped) & set(table.specimen_id)
    assert sorted(table.specimen_id) == sorted(pd.read_csv(tmp_path / "f.csv").specimen_id.unique())
