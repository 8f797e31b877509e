"""A forecast step whose length training never had at its conditions is an extrapolation
(forecasting.paired_steps): each alone lies within the training range, their pairing does not."""

from __future__ import annotations

import json

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
    """Hot specimens measured daily, cool ones fortnightly (as an accelerated test is measured)."""
    rows = []
    for i in range(8):
        hot = i % 2 == 0
        temperature, step, rate = (60.0, 1.0, 0.01) if hot else (25.0, 14.0, 0.001)
        for r in range(25):
            t = r * step
            rows.append((f"S{i}", t, temperature + 0.1 * i, 1.0 - rate * t))
    return pd.DataFrame(rows, columns=["specimen_id", "time", "temperature", "durability"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("pairs")
    data = d / "train.csv"
    schedule_table().to_csv(data, index=False)
    model = d / "m.safetensors"
    r = CliRunner().invoke(app, ["train", str(data), "-o", str(model), *FAST, "--quiet"])
    assert r.exit_code == 0, r.output
    return d, model


def plan(d, step: float, temperature: float):
    """Hot specimen S0's first 10 rows, then 5 rows ``step`` apart at ``temperature``."""
    h = schedule_table().query("specimen_id == 'S0'").iloc[:10]
    t0 = h.time.iloc[-1]
    h.loc[h.index[-1], "temperature"] = temperature  # a row's conditions act on the step after it
    future = pd.DataFrame(
        {"specimen_id": "S0", "time": t0 + step * np.arange(1, 6), "temperature": temperature}
    )
    path = d / f"plan-{step:g}-{temperature:g}.csv"
    pd.concat([h, future]).to_csv(path, index=False)
    return path


def test_the_model_file_keeps_the_conditions_of_each_step_length(trained):
    _, model = trained
    paired = load_bundle(model).summary["step_envelope"]["temperature"]
    # 1-day steps (bin 0) ran hot only, 14-day steps (bin floor(4 log2 14) = 15) cool only
    assert paired["0"] == pytest.approx([60.0, 60.6])
    assert paired["15"] == pytest.approx([25.1, 25.7])
    assert set(paired) == {"0", "15"}


def test_a_long_step_at_a_hot_condition_is_flagged(runner, trained):
    d, model = trained
    r = runner.invoke(app, ["forecast", str(plan(d, 14.0, 60.0)), "-m", str(model), "--samples", "0"])
    assert r.exit_code == 0, r.output
    line = " ".join(r.stderr.split())
    assert "specimen S0: a step of 14 at temperature 60, a pairing training never had" in line
    assert "ran at temperature 25.1 to 25.7" in line
    fc = pd.read_csv(pd.io.common.StringIO(r.stdout))
    assert len(fc) == 5 and fc.extrapolated.all()
    # --strict refuses it, as any extrapolation
    r = runner.invoke(app, ["forecast", str(plan(d, 14.0, 60.0)), "-m", str(model), "--strict"])
    assert r.exit_code == 2 and "a pairing training never had" in r.stderr


@pytest.mark.parametrize(("step", "temperature"), [(1.0, 60.0), (14.0, 25.3), (1.5, 60.0), (10.0, 26.5)])
def test_steps_like_the_training_s_at_their_conditions_are_not(runner, trained, step, temperature):
    d, model = trained
    r = runner.invoke(app, ["forecast", str(plan(d, step, temperature)), "-m", str(model), "--samples", "0"])
    assert r.exit_code == 0, r.output
    assert "pairing" not in r.stderr
    assert not pd.read_csv(pd.io.common.StringIO(r.stdout)).extrapolated.any()


def test_a_model_file_without_the_pairs_is_not_checked(runner, trained, tmp_path):
    """Model files written before the check carry no step_envelope: the forecast is as it was."""
    d, model = trained
    bundle = load_bundle(model)
    bundle.summary.pop("step_envelope")
    old = tmp_path / "old.safetensors"
    save_bundle(bundle, old)
    r = runner.invoke(app, ["forecast", str(plan(d, 14.0, 60.0)), "-m", str(old), "--samples", "0"])
    assert r.exit_code == 0 and "pairing" not in r.stderr


def test_a_damaged_step_envelope_is_refused(runner, trained, tmp_path):
    d, model = trained
    bundle = load_bundle(model)
    bundle.summary["step_envelope"] = {"temperature": {"x": [1, 2]}}
    bad = tmp_path / "bad.safetensors"
    save_bundle(bundle, bad)
    r = runner.invoke(app, ["forecast", str(plan(d, 1.0, 60.0)), "-m", str(bad)])
    assert r.exit_code == 2 and "step_envelope 'temperature' bin 'x'" in r.stderr


def test_max_step_forecasts_a_long_step_plan_as_its_fine_cut(runner, trained):
    """--max-step 1 on a plan of 14-day steps runs the network through the 1-day plan of the same
    test: the plan's rows get the very numbers the 1-day plan gets there (mean, quantiles, end of
    life), and only the plan's rows are written."""
    d, model = trained
    coarse, fine = plan(d, 14.0, 60.0), plan(d, 1.0, 60.0)
    # the 1-day plan, 70 days long: the coarse plan's 5 rows are every 14th of its 70
    table = pd.read_csv(fine)
    h, last = table.iloc[:10], table.time.iloc[9]
    future = pd.DataFrame({"specimen_id": "S0", "time": last + np.arange(1, 71), "temperature": 60.0})
    pd.concat([h, future]).to_csv(fine, index=False)
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
    assert "pairing" not in r.stderr  # the network's steps are 1 day long, as training's at 60
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


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "inf"])
def test_max_step_must_be_a_positive_length(runner, trained, bad, tmp_path):
    d, model = trained
    out = tmp_path / "fc.csv"
    r = runner.invoke(
        app, ["forecast", str(plan(d, 14.0, 60.0)), "-m", str(model), "--max-step", bad, "-o", str(out)]
    )
    assert r.exit_code == 2 and "max-step" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()
