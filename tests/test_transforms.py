"""--transform: physics-aware condition inputs, stored in the model file and applied at forecast time."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from durability_cli.api import load
from durability_cli.cli import app
from durability_cli.errors import InputError
from durability_cli.transforms import apply, parse


def test_parse_checks_names_and_columns():
    assert parse("temperature=arrhenius, humidity=log") == {"temperature": "arrhenius", "humidity": "log"}
    assert parse("") == {}
    with pytest.raises(InputError, match="unknown transform; choose from arrhenius"):
        parse("temperature=arrhenious")
    with pytest.raises(InputError, match="COLUMN=NAME"):
        parse("temperature")
    with pytest.raises(InputError, match="the conditions are: temperature, humidity"):
        parse("load=log", ("temperature", "humidity"))


def test_apply_transforms_columns_and_refuses_values_outside_the_domain():
    cond = np.array([[[25.0, 50.0], [np.nan, np.nan]]])  # one specimen, a padded second row
    out = apply(cond, ["arrhenius", "log"], ["temperature", "humidity"], ["S1"])
    assert out[0, 0, 0] == pytest.approx(1000 / 298.15)
    assert out[0, 0, 1] == pytest.approx(np.log(50.0))
    assert np.isnan(out[0, 1]).all()  # the padding stays NaN
    assert cond[0, 0, 0] == 25.0  # the input is not changed
    with pytest.raises(
        InputError, match=r"plan.csv: column 'humidity' has 0 \(specimen S1\); .*log transform"
    ):
        apply(np.array([[[25.0, 0.0]]]), ["", "log"], ["temperature", "humidity"], ["S1"], "plan.csv")


def test_train_with_transform_stores_it_and_forecast_applies_it(small, tmp_path, runner):
    out = tmp_path / "m.safetensors"
    args = ["train", str(small), "-o", str(out), "--epochs", "1", "--hidden", "8", "--layers", "1", "-q"]
    r = runner.invoke(app, [*args, "--transform", "temperature=arrhenius,humidity=log"])
    assert r.exit_code == 0, r.output
    bundle = load(out).bundle
    assert bundle.scaler.cond_transform == {"temperature": "arrhenius", "humidity": "log"}
    # the scaling is of the transformed values: 1000/K of 20-90 °C is near 3, log %RH near 4
    assert 2.5 < bundle.scaler.cond_mean[0] < 3.5 and 3 < bundle.scaler.cond_mean[1] < 5
    shown = runner.invoke(app, ["inspect", str(out), "--json"])  # from the header, without torch
    assert shown.stdout == json.dumps(load(out).describe(str(out)), indent=2) + "\n"

    plan = pd.read_csv(small)
    plan.loc[plan.groupby("specimen_id").cumcount() >= 30, "durability"] = np.nan
    plan_path = tmp_path / "plan.csv"
    plan.to_csv(plan_path, index=False)
    r = runner.invoke(app, ["forecast", str(plan_path), "-m", str(out), "--samples", "0", "-q"])
    assert r.exit_code == 0, r.output
    assert np.isfinite(pd.read_csv(pd.io.common.StringIO(r.stdout))["durability_mean"]).all()

    plan.loc[plan.index[-1], "humidity"] = -1.0  # a future row outside log's domain
    plan.to_csv(plan_path, index=False)
    fc = tmp_path / "fc.csv"
    r = runner.invoke(app, ["forecast", str(plan_path), "-m", str(out), "--samples", "0", "-o", str(fc)])
    assert r.exit_code == 2
    assert (
        "plan.csv: column 'humidity' has -1" in r.output and "log transform needs values above 0" in r.output
    )
    assert not fc.exists()


def test_unknown_transform_column_is_refused_before_training(small, tmp_path, runner):
    out = tmp_path / "m.safetensors"
    r = runner.invoke(app, ["train", str(small), "-o", str(out), "--transform", "temp=log", "-q"])
    assert r.exit_code == 2
    assert "--transform names 'temp', which is not a condition column" in r.output
    assert not out.exists()


def test_an_arrhenius_unit_that_does_not_fit_the_values_is_named(small, tmp_path, runner):
    """Kelvin given to `arrhenius` (which adds 273.15) trained without a word on 1000/(2 T). (One
    model of one candidate: the warning is the table's, said before any training.)"""
    kelvin = pd.read_csv(small).assign(temperature=lambda d: d.temperature + 273.15)
    table = tmp_path / "kelvin.csv"
    kelvin.to_csv(table, index=False)
    args = ["-o", str(tmp_path / "m.safetensors"), "--epochs", "1", "--hidden", "8", "--layers", "1"]
    args += ["--ensemble", "1", "--no-trend-line"]
    r = runner.invoke(app, ["train", str(table), *args, "--transform", "temperature=arrhenius"])
    assert r.exit_code == 0, r.output
    assert (
        "Warning: --transform temperature=arrhenius reads °C (1000 / (x + 273.15)), and 'temperature' runs"
        in (r.output)
    )
    assert "if that is kelvin, use temperature=arrhenius-kelvin" in r.output
    r = runner.invoke(app, ["train", str(table), *args, "--transform", "temperature=arrhenius-kelvin"])
    assert r.exit_code == 0 and "Warning: --transform" not in r.output, r.output
    r = runner.invoke(app, ["train", str(small), *args, "--transform", "temperature=arrhenius"])
    assert r.exit_code == 0 and "Warning: --transform" not in r.output, r.output
