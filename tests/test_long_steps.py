"""A forecast step longer than training's steps at its conditions is an extrapolation, and
--max-step cuts the plan for the network (forecasting.StepDomain, long_steps, cut_steps)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from durability_cli.artifact import load_bundle, save_bundle
from durability_cli.cli import app

FAST = [
    "--epochs",
    "2",
    "--hidden",
    "8",
    "--layers",
    "1",
    "--ensemble",
    "1",
    "--no-trend-line",
    "--latent",
    "0",
]


def schedule_table() -> pd.DataFrame:
    """Hot specimens measured every 0.5-2 days, cool ones every 7-28 (as an accelerated test is
    measured: often where it is harsh)."""
    rng = np.random.default_rng(7)
    rows = []
    for i in range(8):
        hot = i % 2 == 0
        t = 0.0
        for _ in range(25):
            temperature = rng.uniform(55, 65) if hot else rng.uniform(20, 30)
            rows.append((f"S{i}", round(t, 3), round(temperature, 2), 1.0 - (0.01 if hot else 0.001) * t))
            t += rng.uniform(0.5, 2.0) if hot else rng.uniform(7.0, 28.0)
    return pd.DataFrame(rows, columns=["specimen_id", "time", "temperature", "durability"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("steps")
    data = d / "train.csv"
    schedule_table().to_csv(data, index=False)
    model = d / "m.safetensors"
    r = CliRunner().invoke(app, ["train", str(data), "-o", str(model), *FAST, "--quiet"])
    assert r.exit_code == 0, r.output
    return d, model


def plan(d, step: float, temperature: float, days: float = 70.0):
    """Hot specimen S0's first 10 rows, then ``days`` in steps of ``step`` at ``temperature``."""
    h = schedule_table().query("specimen_id == 'S0'").iloc[:10]
    t0 = h.time.iloc[-1]
    h.loc[h.index[-1], "temperature"] = temperature  # a row's conditions act on the step after it
    times = t0 + step * np.arange(1, int(round(days / step)) + 1)
    future = pd.DataFrame({"specimen_id": "S0", "time": times, "temperature": temperature})
    path = d / f"plan-{step:g}-{temperature:g}-{days:g}.csv"
    pd.concat([h, future]).to_csv(path, index=False)
    return path


def forecast(runner, path, model, *extra):
    r = runner.invoke(app, ["forecast", str(path), "-m", str(model), "--samples", "0", *extra])
    assert r.exit_code == 0, r.output
    return r, pd.read_csv(pd.io.common.StringIO(r.stdout))


def test_the_model_file_keeps_a_sample_of_the_training_steps(trained):
    _, model = trained
    kept = load_bundle(model).summary["step_sample"]
    assert kept["columns"] == ["temperature", "dt"]
    table = schedule_table()
    assert len(kept["rows"]) == len(table) - 8  # every step of the table: fewer than 2,000
    steps = {(round(r[0], 2), round(r[1], 3)) for r in kept["rows"]}
    after = table.groupby("specimen_id").time.shift(-1) - table.time  # conditions act until the next row
    want = {(round(c, 2), round(v, 3)) for c, v in zip(table.temperature, after, strict=True) if v == v}
    assert steps == want


def test_a_long_step_at_a_hot_condition_is_flagged(runner, trained):
    """Forecast as given (--max-step off), a 14-day step at 60 C is an extrapolation."""
    d, model = trained
    r, fc = forecast(runner, plan(d, 14.0, 60.0), model, "--max-step", "off")
    line = " ".join(r.stderr.split())
    assert (
        "specimen S0: a step of 14 at temperature 60, longer than training's steps at such conditions" in line
    )
    assert "cut them with --max-step" in line
    assert len(fc) == 5 and fc.extrapolated.all()
    args = ["forecast", str(plan(d, 14.0, 60.0)), "-m", str(model), "--strict", "--max-step", "off"]
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and "longer than training's steps" in r.stderr


def test_by_default_the_long_steps_are_cut_and_said_so(runner, trained, tmp_path):
    """The default is --max-step auto where the model file keeps its training steps: the 14-day
    plan is forecast in pieces typical of training (the forecast of --max-step auto, not the plan
    as given), one line says how many steps were cut, --meta-out records it, and --strict has
    nothing to refuse."""
    d, model = trained
    coarse = plan(d, 14.0, 60.0)
    r, default = forecast(runner, coarse, model, "--meta-out", str(tmp_path / "m.json"))
    assert "5 future step(s) of 1 specimen(s) were longer than training's steps" in " ".join(r.stderr.split())
    assert (
        "longer than training's steps at such conditions" not in r.stderr and not default.extrapolated.any()
    )
    pd.testing.assert_frame_equal(default, forecast(runner, coarse, model, "--max-step", "auto")[1])
    as_given = forecast(runner, coarse, model, "--max-step", "off")[1]
    assert not np.allclose(default.durability_mean, as_given.durability_mean, rtol=0, atol=1e-6)
    meta = json.loads((tmp_path / "m.json").read_text())
    assert (meta["max_step"], meta["cut_steps"]) == ("auto", 5)
    r = runner.invoke(app, ["forecast", str(coarse), "-m", str(model), "--samples", "0", "--strict"])
    assert r.exit_code == 0, r.output


def test_a_length_given_records_the_steps_it_cut(runner, trained, tmp_path):
    """--max-step LENGTH recorded cut_steps 0 in --meta-out, evaluate's settings and a
    calibration's block, although it cut: now the count, with evaluate's table saying so; forecast
    warns of what auto cuts, not of the cut that was asked for."""
    d, model = trained
    coarse = plan(d, 14.0, 60.0)
    r, fc = forecast(runner, coarse, model, "--max-step", "7", "--meta-out", str(tmp_path / "m.json"))
    meta = json.loads((tmp_path / "m.json").read_text())
    assert (meta["max_step"], meta["cut_steps"]) == (7.0, 5)
    assert "were cut" not in r.stderr and "were longer" not in r.stderr
    truth = pd.read_csv(coarse)
    truth["durability"] = truth["durability"].fillna(0.5)
    measured = tmp_path / "measured.csv"
    truth.to_csv(measured, index=False)
    args = [
        "evaluate",
        str(measured),
        "-m",
        str(model),
        "--context",
        "10",
        "--samples",
        "0",
        "--max-step",
        "7",
    ]
    r = runner.invoke(app, [*args, "-o", str(tmp_path / "e.json")])
    assert r.exit_code == 0, r.output
    settings = json.loads((tmp_path / "e.json").read_text())["settings"]
    assert (settings["max_step"], settings["cut_steps"], settings["cut_backtests"]) == (7.0, 5, 1)
    assert "5 future step(s) of 1 backtest(s) were longer than 7 and were cut" in " ".join(r.stderr.split())


def test_evaluate_scores_the_end_of_life_forecast_writes_on_the_cut_steps(runner, trained, tmp_path):
    """The mean's crossing between two of the plan's rows: forecast finds it on the pieces auto
    ran, and evaluate scored the crossing interpolated between the plan's rows (another time)."""
    d, model = trained
    coarse = plan(d, 14.0, 60.0)
    _, fc = forecast(runner, coarse, model)
    a, b = fc.durability_mean.iloc[1], fc.durability_mean.iloc[2]
    assert abs(a - b) > 1e-4, (a, b)
    threshold, direction = f"{(a + b) / 2:.6f}", "below" if b < a else "above"
    how = ["--threshold", threshold, "--direction", direction]
    r = runner.invoke(
        app,
        [
            "forecast",
            str(coarse),
            "-m",
            str(model),
            "--samples",
            "0",
            *how,
            "--precision",
            "0",
            "--eol-out",
            str(tmp_path / "e.csv"),
        ],
    )
    assert r.exit_code == 0, r.output
    eol_time = pd.read_csv(tmp_path / "e.csv").eol_time.iloc[0]
    assert fc.time.iloc[1] < eol_time < fc.time.iloc[2]
    truth = pd.read_csv(coarse)
    truth["durability"] = truth["durability"].fillna(0.5)
    measured = tmp_path / "measured.csv"
    truth.to_csv(measured, index=False)
    args = ["evaluate", str(measured), "-m", str(model), "--context", "10", "--samples", "0", *how]
    r = runner.invoke(
        app, [*args, "--per-series", str(tmp_path / "s.csv"), "--precision", "0"]
    )  # every digit
    assert r.exit_code == 0, r.output
    scored = pd.read_csv(tmp_path / "s.csv").query("model == 'model'")
    assert scored.eol_pred.iloc[0] == pytest.approx(eol_time, rel=1e-9, abs=1e-6)


def test_the_plots_run_the_steps_forecast_and_evaluate_run_and_say_so(runner, trained, tmp_path):
    """The plot commands had no --max-step and said nothing of the steps auto cut: plot errors
    drew auto's backtest where evaluate --max-step off scored another. Now each takes
    --max-step and says what evaluate's table and forecast's warnings say."""
    d, model = trained
    coarse = plan(d, 14.0, 60.0)
    truth = pd.read_csv(coarse)
    truth["durability"] = truth["durability"].fillna(0.5)
    measured = tmp_path / "measured.csv"
    truth.to_csv(measured, index=False)
    line = "5 future step(s) of 1 backtest(s) were longer than training's steps"
    for kind in ("errors", "calibration", "conditions"):
        for extra, said in (([], True), (["--max-step", "off"], False)):
            args = ["plot", kind, str(measured), "-m", str(model), "--context", "10", "--samples", "20"]
            r = runner.invoke(app, [*args, *extra, "-o", str(tmp_path / f"{kind}.png")])
            assert r.exit_code == 0, r.output
            assert (line in " ".join(r.stderr.split())) is said, (kind, extra, r.stderr)
    r = runner.invoke(app, ["plot", "forecast", str(coarse), "-m", str(model), "-o", str(tmp_path / "f.png")])
    assert r.exit_code == 0, r.output
    assert "5 future step(s) of 1 specimen(s) were longer" in " ".join(r.stderr.split())
    r = runner.invoke(
        app,
        [
            "plot",
            "forecast",
            str(coarse),
            "-m",
            str(model),
            "--max-step",
            "off",
            "-o",
            str(tmp_path / "f.png"),
        ],
    )
    assert r.exit_code == 0 and "longer than training's steps at such conditions" in " ".join(
        r.stderr.split()
    )
    # plot eol's backtest: the end of life forecast finds on the steps asked for, and its lines
    import durability_cli as dur

    m = dur.load(model)
    mean = m.forecast(coarse, samples=0).table.durability_mean
    how = dict(
        threshold=float(mean.iloc[1:3].mean()), direction="below" if mean.iloc[2] < mean.iloc[1] else "above"
    )
    a = m.end_of_life_backtest(measured, context=10, samples=0, **how)
    b = m.end_of_life_backtest(measured, context=10, samples=0, max_step="off", **how)
    f = m.forecast(coarse, samples=0, **how).end_of_life
    eol_args = ["plot", "eol", str(measured), "-m", str(model), "--context", "10", "--samples", "20"]
    eol_args += ["--threshold", str(how["threshold"]), "--direction", how["direction"]]
    r = runner.invoke(app, [*eol_args, "-o", str(tmp_path / "eol.png")])
    assert r.exit_code == 0 and "5 future step(s) of 1 specimen(s) were longer" in " ".join(r.stderr.split())
    assert a.eol_pred.iloc[0] == pytest.approx(f.eol_time.iloc[0], rel=1e-9)
    assert a.eol_pred.iloc[0] != pytest.approx(b.eol_pred.iloc[0], rel=1e-6)


def test_with_scenarios_the_line_counts_each_cut_specimen_once(runner, trained, tmp_path):
    """Two scenarios that both cut the same specimen's steps: the line counts every scenario's
    steps, the specimen once, and says over how many scenarios."""
    d, model = trained
    scen = tmp_path / "scen.csv"
    pd.DataFrame({"scenario": ["hot", "hotter"], "temperature": [60.0, 65.0]}).to_csv(scen, index=False)
    r, both = forecast(runner, plan(d, 14.0, 60.0), model, "--scenarios", str(scen))
    assert set(both.scenario) == {"hot", "hotter"}
    assert "10 future step(s) of 1 specimen(s) over 2 scenarios were longer" in " ".join(r.stderr.split())


def test_evaluate_scores_the_cut_forecast_forecast_writes(runner, trained, tmp_path):
    """evaluate's backtest runs the same cuts as forecast: a table whose measured future is in
    14-day steps at 60 C scores forecast's numbers at its own rows, by default and with
    --max-step off; its report says what it ran and how many steps auto cut, and its table a line."""
    d, model = trained
    truth = pd.read_csv(plan(d, 14.0, 60.0))
    truth["durability"] = truth["durability"].fillna(0.5)  # the backtest's "measured" future
    measured = tmp_path / "measured.csv"
    truth.to_csv(measured, index=False)
    scores = {}
    for extra in ([], ["--max-step", "off"]):
        _, fc = forecast(runner, plan(d, 14.0, 60.0), model, *extra)
        args = ["evaluate", str(measured), "-m", str(model), "--context", "10", "--samples", "0", *extra]
        r = runner.invoke(
            app, [*args, "--backtest-out", str(tmp_path / "b.csv"), "-o", str(tmp_path / "m.json")]
        )
        assert r.exit_code == 0, r.output
        scored = pd.read_csv(tmp_path / "b.csv").query("model == 'model'")
        np.testing.assert_allclose(scored.y_pred.to_numpy(), fc.durability_mean.to_numpy(), rtol=1e-5)
        assert scored.step.tolist() == [1, 2, 3, 4, 5]
        settings = json.loads((tmp_path / "m.json").read_text())["settings"]
        scores[settings["max_step"]] = scored.y_pred.to_numpy()
        line = "5 future step(s) of 1 backtest(s) were longer than training's steps"
        if extra:
            assert (settings["cut_steps"], settings["cut_backtests"]) == (0, 0)
            assert line not in " ".join(r.stderr.split())
        else:
            assert (settings["cut_steps"], settings["cut_backtests"]) == (5, 1)
            assert line in " ".join(r.stderr.split())
    assert sorted(scores) == ["auto", "off"] and not np.allclose(scores["auto"], scores["off"], rtol=1e-4)
    # the library: the same backtest, the same settings
    import durability_cli as dur

    report = dur.load(model).evaluate(measured, context=10, samples=0, max_step="off").report
    assert (report["settings"]["max_step"], report["settings"]["cut_steps"]) == ("off", 0)
    assert report["models"]["model"]["rmse"] == pytest.approx(
        float(np.sqrt(np.mean((scores["off"] - truth.durability.to_numpy()[10:]) ** 2))), rel=1e-6
    )


@pytest.mark.parametrize(("step", "temperature"), [(1.0, 60.0), (14.0, 25.0), (1.0, 25.0), (0.6, 60.0)])
def test_steps_like_the_training_s_or_finer_are_not(runner, trained, step, temperature):
    d, model = trained
    r, fc = forecast(runner, plan(d, step, temperature), model)
    assert "longer than training" not in r.stderr
    assert not fc.extrapolated.any()


def test_a_step_finer_than_training_s_is_neither_flagged_nor_cut():
    """Cool conditions measured every 5-56 days, warm ones every 0.25-14: a 1-day step at 14.5 °C
    is atypical of training, and its halves looked typical beside the warm short steps, so it was
    called "longer than training's steps" and auto cut it finer still. Only a step longer than
    training's at its conditions is."""
    from durability_cli.forecasting import FLAG_QUANTILE, StepDomain

    rng = np.random.default_rng(0)
    temperature = rng.uniform(10, 70, 2000)
    cool = temperature < 20
    length = np.where(
        cool, rng.choice([5.0, 14.0, 28.0, 56.0], 2000), np.exp(rng.uniform(np.log(0.25), np.log(14.0), 2000))
    )
    rows = np.column_stack([temperature, rng.uniform(40, 90, 2000), length])
    for quantile in (FLAG_QUANTILE, 0.99):  # the flag's domain and auto's
        domain = StepDomain(rows, quantile)
        fine = domain.pieces(np.array([[14.5, 60.0]] * 3), np.array([0.5, 1.0, 2.0]))
        assert fine.tolist() == [1, 1, 1]
        assert domain.pieces(np.array([[60.0, 60.0]]), np.array([60.0]))[0] > 1  # long and hot: cut
        assert domain.pieces(np.array([[14.5, 60.0]]), np.array([14.0]))[0] == 1  # like training's


def test_max_step_auto_cuts_the_long_steps_as_the_warning_says(runner, trained):
    d, model = trained
    coarse = plan(d, 14.0, 60.0)
    r, plain = forecast(runner, coarse, model, "--max-step", "off")
    piece = float(re.search(r"--max-step auto: pieces of ([0-9.]+)", " ".join(r.stderr.split())).group(1))
    r, auto = forecast(runner, coarse, model, "--max-step", "auto")
    assert "longer than training's steps at such" not in r.stderr and not auto.extrapolated.any()
    assert auto.time.tolist() == plain.time.tolist()
    pieces = round(14.0 / piece)  # the message rounds the piece to 4 digits
    _, given = forecast(runner, coarse, model, "--max-step", f"{14.0 / pieces * (1 + 1e-6):.9f}")
    pd.testing.assert_frame_equal(auto, given)
    assert not np.allclose(auto.durability_mean, plain.durability_mean, rtol=0, atol=1e-6)
    # a plan already typical is forecast as it is
    fine = plan(d, 1.0, 60.0)
    pd.testing.assert_frame_equal(
        forecast(runner, fine, model, "--max-step", "off")[1],
        forecast(runner, fine, model, "--max-step", "auto")[1],
    )


def test_a_model_file_without_the_sample_is_not_checked(runner, trained, tmp_path):
    """Model files written before session 49 keep no sample of their steps: no check, and --max-step
    auto says why it cannot run."""
    d, model = trained
    bundle = load_bundle(model)
    bundle.summary.pop("step_sample")
    old = tmp_path / "old.safetensors"
    save_bundle(bundle, old)
    r, _ = forecast(runner, plan(d, 14.0, 60.0), old)
    assert "longer than training" not in r.stderr
    r = runner.invoke(app, ["forecast", str(plan(d, 14.0, 60.0)), "-m", str(old), "--max-step", "auto"])
    assert r.exit_code == 2 and "--max-step auto reads the training steps" in r.stderr


def test_a_damaged_step_sample_is_refused(runner, trained, tmp_path):
    d, model = trained
    bundle = load_bundle(model)
    bundle.summary["step_sample"]["rows"][0] = [1.0, "x"]
    bad = tmp_path / "bad.safetensors"
    save_bundle(bundle, bad)
    r = runner.invoke(app, ["forecast", str(plan(d, 1.0, 60.0)), "-m", str(bad)])
    assert r.exit_code == 2 and "step_sample value" in r.stderr


def test_max_step_forecasts_a_long_step_plan_as_its_fine_cut(runner, trained):
    """--max-step 1 on a plan of 14-day steps runs the network through the 1-day plan of the same
    test: the plan's rows get the very numbers the 1-day plan gets there (mean, quantiles, end of
    life), and only the plan's rows are written."""
    d, model = trained
    coarse, fine = plan(d, 14.0, 60.0), plan(d, 1.0, 60.0)  # the coarse plan's 5 rows are every 14th
    last = pd.read_csv(fine).time.iloc[9]
    args = ["-m", str(model), "--threshold", "0.9", "--seed", "3"]
    r = runner.invoke(
        app,
        [
            "forecast",
            str(coarse),
            *args,
            "--max-step",
            "1",
            "--eol-out",
            str(d / "ec.csv"),
            "--meta-out",
            str(d / "m.json"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "longer than training" not in r.stderr  # the network's steps are 1 day long, as training's
    assert json.loads((d / "m.json").read_text())["max_step"] == 1.0
    cut = pd.read_csv(pd.io.common.StringIO(r.stdout))
    r = runner.invoke(app, ["forecast", str(fine), *args, "--eol-out", str(d / "ef.csv")])
    assert r.exit_code == 0, r.output
    whole = pd.read_csv(pd.io.common.StringIO(r.stdout))
    assert cut.time.tolist() == (last + 14 * np.arange(1, 6)).tolist() and not cut.extrapolated.any()
    same = whole.set_index("time").loc[cut.time].reset_index()[cut.columns]
    pd.testing.assert_frame_equal(cut, same)
    pd.testing.assert_frame_equal(pd.read_csv(d / "ec.csv"), pd.read_csv(d / "ef.csv"))
    # without it the 14-day steps forecast otherwise (and are flagged)
    r = runner.invoke(app, ["forecast", str(coarse), *args])
    plain = pd.read_csv(pd.io.common.StringIO(r.stdout))
    assert not np.allclose(plain.durability_mean, cut.durability_mean, rtol=0, atol=1e-6)


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "inf", "often"])
def test_max_step_must_be_a_positive_length(runner, trained, bad, tmp_path):
    d, model = trained
    out = tmp_path / "fc.csv"
    r = runner.invoke(
        app, ["forecast", str(plan(d, 14.0, 60.0)), "-m", str(model), "--max-step", bad, "-o", str(out)]
    )
    assert r.exit_code == 2 and "max-step" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_a_max_step_that_would_fill_memory_is_refused_before_the_rows_are_made(runner, trained, tmp_path):
    d, model = trained
    out = tmp_path / "fc.csv"
    r = runner.invoke(
        app, ["forecast", str(plan(d, 14.0, 60.0)), "-m", str(model), "--max-step", "1e-9", "-o", str(out)]
    )
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1
    assert (
        "--max-step 1e-09 cuts the future steps into" in r.stderr and "give a longer --max-step" in r.stderr
    )
    assert not out.exists()


def test_the_default_cuts_a_specimen_however_long_its_run_grows(runner, trained, tmp_path):
    """The default cuts every step auto finds too long, however many times its specimen's rows the
    run grows to: here 3 warm-up rows and 5 steps of 14 days at 60 C become 33 rows, 4.1 x (until
    session 51 such a specimen was left as given: a long run padded every batch it shared, and the
    rollout now batches specimens of like lengths). It is --max-step auto's forecast, not the plan
    as given, and the same beside a specimen whose run grows less."""
    d, model = trained
    short = pd.read_csv(plan(d, 14.0, 60.0)).iloc[7:]  # the last 3 of the 10 warm-up rows
    path = tmp_path / "short.csv"
    short.to_csv(path, index=False)
    r, default = forecast(runner, path, model)
    assert "5 future step(s) of 1 specimen(s) were longer" in " ".join(r.stderr.split())
    pd.testing.assert_frame_equal(default, forecast(runner, path, model, "--max-step", "auto")[1])
    off = forecast(runner, path, model, "--max-step", "off")[1]
    assert not np.allclose(off.durability_mean, default.durability_mean, rtol=0, atol=1e-6)
    both = pd.concat([short, pd.read_csv(plan(d, 14.0, 60.0)).assign(specimen_id="S9")])
    both.to_csv(tmp_path / "both.csv", index=False)
    r, mixed = forecast(runner, tmp_path / "both.csv", model)
    assert "10 future step(s) of 2 specimen(s) were longer" in " ".join(r.stderr.split())
    pd.testing.assert_frame_equal(mixed.query("specimen_id == 'S0'").reset_index(drop=True), default)
