"""`train --val-context-frac`: validation (and training's warm-ups) from a share of each
specimen's own rows, as `evaluate --context-frac` cuts, on the measured Device-B table whose
devices have 9, 17 or 33 rows."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from durability_cli.artifact import load_bundle
from durability_cli.cli import app
from durability_cli.config import ModelConfig, RowShare, TrainConfig, warmup_rows
from durability_cli.data import to_series, to_tensors
from durability_cli.evaluation import BacktestConfig, cutoffs
from durability_cli.metrics import warmup_baseline_errors
from durability_cli.schema import load_dataset
from durability_cli.training import free_run_sse, train

DEVICE_B = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "device_b.csv"
SHARE = 1 / 3


@pytest.fixture(scope="module")
def device_b():
    return load_dataset(str(DEVICE_B), target="power_drop")


@pytest.fixture(scope="module", params=[0, 3], ids=["in-memory", "3-specimens-at-a-time"])
def trained(device_b, request):
    """One model validated from a third of each device's rows; with chunk_specimens 3 its 7
    validation devices are scored a group at a time (training._GroupTraining.scored_parts)."""
    from durability_cli.streaming import FrameGroups

    cfg = TrainConfig(epochs=3, patience=100, ensemble=1, val_context_frac=SHARE, seed=1)
    table = FrameGroups(device_b, request.param) if request.param else device_b
    return train(table, ModelConfig(hidden=8, layers=1), cfg)  # 7 validation devices > 3: in groups


@given(
    lengths=st.lists(st.integers(1, 400), min_size=1, max_size=30),
    share=st.floats(0.01, 0.99),
)
def test_a_share_cuts_each_specimen_where_evaluate_context_frac_does(lengths, share):
    lengths = np.asarray(lengths)
    spec, cut = cutoffs(lengths, BacktestConfig(context_frac=share))
    rows = warmup_rows(RowShare(share), lengths)
    assert (rows >= 1).all()
    # evaluate leaves out a specimen with nothing after its cut; the others are cut alike
    np.testing.assert_array_equal(rows[spec], cut)
    left_out = np.setdiff1d(np.arange(len(lengths)), spec)
    assert (rows[left_out] >= lengths[left_out]).all()


@given(st.lists(st.integers(1, 80), min_size=1, max_size=6), st.integers(1, 300))
def test_rolling_cut_offs_are_each_taken_once(lengths, origins):
    """--origins K above a specimen's rows repeated cut-offs (60 rows, K 200: the first one 10
    times), each weighted in every score as often as it came."""
    lengths = np.asarray(lengths)
    spec, cut = cutoffs(lengths, BacktestConfig(origins=origins))
    pairs = list(zip(spec.tolist(), cut.tolist(), strict=True))
    assert len(set(pairs)) == len(pairs) and pairs == sorted(pairs)
    assert ((cut >= 2) & (cut < lengths[spec])).all()
    for i, n in enumerate(lengths):  # K cut-offs, or every one the specimen has when K is more
        assert (spec == i).sum() <= min(origins, max(n - 2, 0))
    if origins >= lengths.max():
        assert len(pairs) == int(np.maximum(lengths - 2, 0).sum())


def test_validation_scores_each_specimen_after_its_own_share(device_b, trained):
    """The validation RMSE and baselines a share-trained model keeps equal each validation device
    scored on its own after round(share x its rows) rows, pooled: 3, 6 or 11 rows here."""
    s = trained.summary
    assert s["val_context"] is None and s["val_context_frac"] == pytest.approx(SHARE)
    series = to_series(device_b)
    val = series.take(np.flatnonzero(np.isin([str(i) for i in series.ids], s["val_specimens"])))
    rows = warmup_rows(RowShare(SHARE), val.lengths)
    assert set(rows) <= {3, 6, 11} and len(set(rows)) > 1  # the devices' lengths differ
    sse = n = 0.0
    base: dict[str, list] = {}
    for i in range(len(val.ids)):
        one = val.take([i])
        a, b = free_run_sse(trained.model, to_tensors(one, trained.scaler), int(rows[i]))
        sse, n = sse + a, n + b
        for name, err in warmup_baseline_errors(one.time, one.y, one.lengths, int(rows[i])).items():
            base.setdefault(name, []).append(err)
    assert s["best_val_rmse"] == pytest.approx(math.sqrt(sse / n) * trained.scaler.y_std, rel=1e-5)
    for name, errs in base.items():
        expected = float(np.sqrt(np.mean(np.concatenate(errs) ** 2)))
        assert s["val_baseline_rmse"][name] == pytest.approx(expected, rel=1e-9)
    # a row count for all would have scored other rows
    _, b = free_run_sse(trained.model, to_tensors(val, trained.scaler), 6)
    assert b != n
    # the warm-ups training fed: 1 row up to the longest training device's share (33 rows -> 11)
    assert s["trained_warmup_rows"] == [1, 11]


def test_the_cli_trains_reports_and_refuses_a_share(runner, tmp_path):
    out = tmp_path / "m.safetensors"
    args = ["train", str(DEVICE_B), "--target", "power_drop", "--epochs", "2", "--hidden", "8"]
    args += ["--layers", "1", "--ensemble", "2", "-o", str(out)]  # members trained together
    r = runner.invoke(app, [*args, "--val-context-frac", "0.34"])
    assert r.exit_code == 0, r.output
    said = " ".join(r.stderr.split())  # the console wraps long lines
    assert "(free run after 0.34 of each specimen's rows)" in said
    assert "free-running after 0.34 of each specimen's rows" in said
    bundle = load_bundle(out)
    assert [m.summary["val_context_frac"] for m in bundle.members] == [0.34, 0.34]
    before = out.read_bytes()
    refusals = {
        ("--val-context", "5", "--val-context-frac", "0.3"): "give one of --val-context (rows)",
        ("--val-context-frac", "1"): "--val-context-frac must be in [0, 1)",
        # 9, 17 and 33 rows: 0.99 of each leaves nothing to forecast
        ("--val-context-frac", "0.99"): "lower --val-context-frac",
    }
    for extra, message in refusals.items():
        r = runner.invoke(app, [*args, *extra])
        errors = [line for line in r.stderr.splitlines() if line.startswith("Error")]
        assert r.exit_code == 2 and len(errors) == 1 and message in errors[0], r.output
        assert out.read_bytes() == before  # nothing overwritten


def test_a_forecast_outside_the_warm_ups_a_share_fed_is_named(device_b):
    """``--val-context-frac 1/3 --warmup-min 1`` fed each training device exactly its own third:
    3, 6 or 11 rows. A device forecast from 2 rows is named; from its own third, none is."""
    from durability_cli.forecasting import ForecastConfig, forecast
    from durability_cli.schema import validate

    cfg = TrainConfig(epochs=2, patience=100, ensemble=1, val_context_frac=SHARE, warmup_min=1.0)
    bundle = train(device_b, ModelConfig(hidden=8, layers=1), cfg)
    assert bundle.summary["trained_warmup_rows"] == [3, 11]
    frame = device_b.frame.copy()
    row = frame.groupby("specimen_id").cumcount()
    rows = frame.groupby("specimen_id")["time"].transform("size")
    own = row >= warmup_rows(RowShare(SHARE), rows.to_numpy())
    short = frame.specimen_id.astype(str) == "101"
    for hidden, named in ((own, 0), (own | (short & (row >= 2)), 1)):
        plan = frame.copy()
        plan.loc[hidden, "power_drop"] = np.nan
        result = forecast(bundle, validate(plan, bundle.schema, source="plan"), ForecastConfig(samples=0))
        assert result.n_off_warmup == named
        assert result.off_warmup == (["101"] if named else [])


@pytest.mark.parametrize("cut", [["--context-frac", "0.5"], ["--origins", "3"]], ids=["share", "origins"])
def test_evaluate_cuts_a_table_with_planned_rows_as_its_measured_rows(
    cut, runner, coating_slice, tiny_model, tmp_path
):
    """A table that holds, after each specimen's 24 measured rows, 36 planned rows with an empty
    durability: evaluate's share and rolling origins cut each specimen's measured rows, so it
    scores what the measured rows alone score. (Before, half of 60 rows cut at row 30, past every
    measurement: 0 points scored, a table of n/a, exit 0.)"""
    import json

    import pandas as pd

    data = coating_slice(6, 60)
    df = pd.read_csv(data)
    row = df.groupby("specimen_id").cumcount()
    df.loc[row >= 24, "durability"] = np.nan
    df.to_csv(tmp_path / "planned.csv", index=False)
    df[row < 24].to_csv(tmp_path / "measured.csv", index=False)
    model = tiny_model(data)
    reports = {}
    for name in ("planned", "measured"):
        args = ["evaluate", str(tmp_path / f"{name}.csv"), "-m", str(model), *cut, "--samples", "0", "--json"]
        r = runner.invoke(app, args)
        assert r.exit_code == 0, r.output
        reports[name] = json.loads(r.stdout)["models"]
    assert reports["planned"]["model"]["n"] > 0
    for scores in ("model", "persistence"):
        for k in ("n", "rmse", "mae"):
            assert reports["planned"][scores][k] == pytest.approx(reports["measured"][scores][k], rel=1e-9)
