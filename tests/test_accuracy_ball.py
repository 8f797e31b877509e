"""Does the model learn what it is for? Real training on the bundled ball sample (slow: about a
minute): the forecast from 3 observed heights follows the parabola instead of a flat
line. The coating decay is tests/test_accuracy.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_accuracy import SAMPLE, invoke

from durability_cli.synthetic import make_ball

pytestmark = pytest.mark.slow


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
        "--ensemble",  # one model: 47 s here, two members 89 s (RMSE 1.31 against 1.08 m; seed 1 1.31)
        "1",
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
    # models at 60 epochs 1.38-1.91 m; the one model here (100 epochs) 1.31 m, 0.34 x the spread
    # and 0.27 x persistence (seed 1: the same; two members 1.08 m, 0.28 x the spread, session 52)
    assert rmse < 0.4 * spread, (rmse, spread)
    assert rmse < 0.4 * persistence, (rmse, persistence)
    # the forecast bends down like gravity: second difference ~ -g dt^2 (drag makes it a bit larger)
    g_dt2 = 9.81 * 0.05**2
    second = fc.groupby("specimen_id").height_mean.transform(lambda h: h.diff().diff())
    median = float(np.nanmedian(second))
    assert -2.0 * g_dt2 < median < -0.5 * g_dt2, (median, g_dt2)
    assert (second.dropna() < 0).mean() > 0.9  # not a flat line, not a straight line
