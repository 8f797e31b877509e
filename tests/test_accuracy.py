"""Does the model learn what it is for? Real training on the bundled samples (slow: ~1-2 min each).

These answer the issue's two questions with numbers: the ball forecast from 3 observed heights
follows the parabola instead of a flat line, and the coating decay forecast beats the baselines.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from durability_cli.cli import app
from durability_cli.synthetic import make_ball, make_coating

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
pytestmark = pytest.mark.slow


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def ball_model(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ball") / "ball.safetensors"
    r = invoke(
        "train",
        SAMPLE / "ball.csv",
        "--target",
        "height",
        "--lags",
        "3",
        "--val-context",
        "3",
        "--epochs",  # the old default: the automatic length (134 epochs here) costs 1.7 x the time
        "100",
        "--ensemble",  # two members: 78 s here, the default's 5 118 s, one model 49 s but 1.31 m
        "2",
        "--no-trend-line",  # one training: the default (auto) trains two (tests/test_line_choice.py)
        "-o",
        out,
        "--quiet",
    )
    assert r.exit_code == 0, r.output
    return out


def test_ball_forecast_from_three_heights_follows_the_parabola(ball_model, tmp_path):
    noisy, clean = make_ball(n_specimens=20, seed=7)  # balls the model never saw
    plan = noisy.copy()
    plan.loc[plan.groupby("specimen_id").cumcount() >= 3, "height"] = np.nan
    plan.to_csv(tmp_path / "plan.csv", index=False)
    r = invoke(
        "forecast", tmp_path / "plan.csv", "-m", ball_model, "--samples", "0", "-o", tmp_path / "fc.csv"
    )
    assert r.exit_code == 0, r.output
    fc = pd.read_csv(tmp_path / "fc.csv").merge(clean, on=["specimen_id", "time"])
    err = fc.height_mean - fc.height
    rmse = float(np.sqrt((err**2).mean()))
    spread = float(clean.height.std())
    persistence = float(
        np.sqrt(
            ((clean.groupby("specimen_id").height.transform(lambda h: h.iloc[2]) - clean.height) ** 2)[
                clean.groupby("specimen_id").cumcount() >= 3
            ].mean()
        )
    )
    # the velocity comes from 3 heights with 2 cm noise, 5 cm apart in time: about 0.3 m/s of
    # error, ~0.5 m after two seconds, is the floor; 100 epochs and 5 members on these 60 balls
    # get 0.88-1.08 m over three seeds (benchmarks/ensemble_threshold.py --set ball), single
    # models at 60 epochs 1.38-1.91 m; the 2 members here 1.08 m (0.28 x the spread)
    assert rmse < 0.4 * spread, (rmse, spread)
    assert rmse < 0.4 * persistence, (rmse, persistence)
    # the forecast bends down like gravity: second difference ~ -g dt^2 (drag makes it a bit larger)
    g_dt2 = 9.81 * 0.05**2
    second = fc.groupby("specimen_id").height_mean.transform(lambda h: h.diff().diff())
    median = float(np.nanmedian(second))
    assert -2.0 * g_dt2 < median < -0.5 * g_dt2, (median, g_dt2)
    assert (second.dropna() < 0).mean() > 0.9  # not a flat line, not a straight line


@pytest.fixture(scope="module")
def coating_model(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("coating") / "coating.safetensors"
    r = invoke(
        "train",
        SAMPLE / "coating.csv",
        "--static",
        "material",
        "--epochs",
        "40",
        # one model: the default's 5 members (tests/test_ensemble.py) cost 2.4 x its 57 s here, and
        # one scores 0.17-0.40 x each baseline on the held-out specimens below (the 5: 0.16-0.38 x)
        "--ensemble",
        "1",
        "--no-trend-line",  # one training: the default (auto) trains two (tests/test_line_choice.py)
        "-o",
        out,
        "--quiet",
    )
    assert r.exit_code == 0, r.output
    return out


def test_coating_validation_beats_persistence(coating_model):
    info = json.loads(invoke("inspect", coating_model, "--json").stdout)["summary"]
    assert info["best_val_rmse"] < 0.3 * info["val_persistence_rmse"], info


def test_coating_evaluate_beats_every_baseline_with_calibrated_intervals(coating_model, tmp_path):
    noisy, _ = make_coating(n_specimens=30, seed=5)  # held-out specimens
    noisy.to_csv(tmp_path / "test.csv", index=False)
    r = invoke(
        "evaluate",
        tmp_path / "test.csv",
        "-m",
        coating_model,
        "--context",
        "40",
        "--threshold",
        "0.6",
        "--quiet",
    )
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    model = report["models"]["model"]
    for name in ("persistence", "linear", "exponential"):
        assert model["rmse"] < 0.6 * report["models"][name]["rmse"], (name, model["rmse"])
        assert report["skill"][name] > 0.4
    assert 0.65 <= model["coverage"]["80"] <= 0.95, model["coverage"]


def test_coating_hotter_scenario_reaches_end_of_life_sooner(coating_model, tmp_path):
    """The what-if engineers ask: the same specimens run hotter age faster (Arrhenius in the sample
    data), and the scenarios' end-of-life table says so."""
    noisy, _ = make_coating(n_specimens=30, seed=5)  # held-out specimens
    noisy.loc[noisy.groupby("specimen_id").cumcount() >= 40, "durability"] = np.nan
    noisy.to_csv(tmp_path / "plan.csv", index=False)
    (tmp_path / "scenarios.csv").write_text("scenario,temperature\ncool,30\nhot,60\n")
    r = invoke(
        "forecast",
        tmp_path / "plan.csv",
        "-m",
        coating_model,
        "--scenarios",
        tmp_path / "scenarios.csv",
        "--threshold",
        "0.6",
        "--samples",
        "50",
        "--eol-out",
        tmp_path / "eol.csv",
        "-o",
        tmp_path / "forecast.csv",
        "--quiet",
    )
    assert r.exit_code == 0, r.output
    eol = pd.read_csv(tmp_path / "eol.csv")
    by = eol.pivot(index="specimen_id", columns="scenario", values="eol_time")
    both = by.dropna()
    assert len(both) >= 10, by
    # a specimen already at the threshold when its plan starts crosses at the same time in both
    assert (both.hot < both.cool).sum() >= 3 * (both.hot > both.cool).sum(), both
    assert (both.hot - both.cool).median() < 0, both
    assert by.hot.notna().sum() >= by.cool.notna().sum()
    share = eol.groupby("scenario").prob_cross.mean()
    assert share["hot"] > share["cool"], share
