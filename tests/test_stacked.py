"""train --ensemble N with the whole table in memory: the members train together (stacked.py)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from durability_cli import api
from durability_cli.cli import app

TINY = dict(hidden=8, layers=1, trend_line=False)  # one candidate (auto trains two: test_line_choice.py)
# seeds 3 and 4: member 1 stops early after 2 epochs, member 2 after 4 (its learning rate must
# go on following the epochs when member 1 stops)
STOPS = dict(epochs=6, patience=1, lr=0.02, seed=3)
OTHERS = dict(epochs=2, cell="gru", feedback="sample", window=12, lags=2, tf_unit="step", teacher_forcing=0.5)
TREND = dict(epochs=3, trend=True, warmup_min=0.5)  # the trend input through vmap
WARP = dict(epochs=3, warp=0.3)  # each member's specimens at its own paces


@pytest.mark.parametrize(
    "options", [STOPS, OTHERS, TREND, WARP], ids=["early-stops", "gru-sampled-windows", "trend-input", "warp"]
)
def test_a_stacked_member_is_the_model_of_its_seed(coating_slice, plan, options):
    data = coating_slice(8, 25)
    ens = api.train(data, ensemble=2, **TINY, **options)
    assert ens.summary["ensemble"]["trained_together"] is True
    forecasts = []
    for k, member in enumerate(ens.bundle.members):
        # what the sequential path trains as member k
        alone = api.train(data, **TINY, **{**options, "seed": options.get("seed", 0) + k, "ensemble": 1})
        a, b = member.summary, alone.summary
        assert a["val_specimens"] == b["val_specimens"]
        # the same draws, weights and early stop; the stacked steps differ only by rounding
        assert (a["epochs_run"], a["best_epoch"], a["stopped"]) == (
            b["epochs_run"],
            b["best_epoch"],
            b["stopped"],
        )
        assert a["best_val_rmse"] == pytest.approx(b["best_val_rmse"], rel=1e-4)
        curves = [[e["val_rmse"] for e in m["history"]] for m in (a, b)]  # every epoch, not only the best
        assert curves[0] == pytest.approx(curves[1], rel=1e-4)
        mine = api.Model(dataclasses.replace(member, others=[])).forecast(plan, samples=0)
        theirs = alone.forecast(plan, samples=0)
        col = "durability_mean"
        np.testing.assert_allclose(mine.table[col], theirs.table[col], rtol=0, atol=1e-4)
        forecasts.append(mine.table[col].to_numpy())
    assert np.abs(forecasts[0] - forecasts[1]).max() > 1e-3  # the members differ
    if options is STOPS:  # each member stopped on its own
        assert ens.summary["ensemble"]["epochs_run"] == [2, 4]


def test_options_the_stack_lacks_train_one_member_after_the_other(coating_slice, runner, tmp_path):
    out = tmp_path / "ema.safetensors"
    args = ["train", str(coating_slice(8, 25)), "-o", str(out), "--epochs", "1", "--hidden", "8"]
    r = runner.invoke(app, [*args, "--layers", "1", "--ensemble", "2", "--ema", "0.9"])
    assert r.exit_code == 0, r.stderr
    assert "Ensemble member 2 of 2" in r.stderr and "trained together" not in r.stderr
    r = runner.invoke(app, ["inspect", str(out), "--json"])
    assert json.loads(r.stdout)["summary"]["ensemble"]["trained_together"] is False
