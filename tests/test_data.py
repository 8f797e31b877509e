"""Tables -> padded series -> scaled tensors: the block-wise passes give what one pass gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import durability_cli.data as data
from durability_cli.schema import load_dataset

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


@pytest.fixture(scope="module")
def coating_series():
    """48 specimens of 100-295 rows, irregular spacing and missing measurements."""
    return data.to_series(load_dataset(str(SAMPLE / "coating.csv"), static=["material"]))


def test_scaler_and_tensors_do_not_depend_on_the_block_size(coating_series, monkeypatch):
    whole = data.fit_scaler(coating_series, [], ["material"])
    tensors = data.to_tensors(coating_series, whole)
    monkeypatch.setattr(data, "BLOCK_CELLS", 700)  # 2 specimens per block, the last one partial
    blocked = data.fit_scaler(coating_series, [], ["material"])
    for name in ("cond_mean", "cond_std", "dt_mean", "dt_std", "y_mean", "y_std", "step_scale", "step_mean"):
        np.testing.assert_allclose(getattr(blocked, name), getattr(whole, name), rtol=1e-12, atol=1e-15)
    again = data.to_tensors(coating_series, whole)
    for name in ("x", "dt", "y", "observed", "valid", "static_cat"):
        assert torch.equal(getattr(again, name), getattr(tensors, name)), name


def test_scaler_statistics_match_numpy_on_the_measured_rows(coating_series):
    s = data.fit_scaler(coating_series, [], ["material"])
    valid = coating_series.row >= 0
    temperature = coating_series.cond[..., 0][valid]
    assert s.cond_mean[0] == pytest.approx(temperature.mean(), rel=1e-12)
    assert s.cond_std[0] == pytest.approx(temperature.std(), rel=1e-12)
    y = coating_series.y[np.isfinite(coating_series.y)]
    assert s.y_mean == pytest.approx(y.mean(), rel=1e-12) and s.y_std == pytest.approx(y.std(), rel=1e-12)
    steps = np.diff(coating_series.time, axis=1)
    log_dt = np.log(steps[steps > 0])
    assert s.dt_mean == pytest.approx(log_dt.mean(), rel=1e-12)
    diffs = np.diff(coating_series.y, axis=1)  # the drift a --monotonic head starts from
    assert s.step_mean == pytest.approx(np.nanmean(diffs) / s.y_std, rel=1e-9) and s.step_mean < 0


def test_a_large_constant_condition_keeps_its_precision():
    """Pairwise moments: a condition of 300 +- 1e-4 (kelvin with a fine controller) keeps its std."""
    m = data._Moments()
    rng = np.random.default_rng(0)
    values = 300.0 + 1e-4 * rng.standard_normal(100_000)
    for block in np.array_split(values, 37):
        m.add(block)
    assert m.std == pytest.approx(values.std(), rel=1e-9)


def test_equal_length_specimens_become_views_of_the_columns():
    ds = load_dataset(str(SAMPLE / "ball.csv"), target="height")
    lengths = ds.frame.groupby(ds.schema.id_col, observed=True).size()
    keep = ds.frame[ds.schema.id_col].isin(lengths.index[lengths >= 20]) & (
        ds.frame.groupby(ds.schema.id_col, observed=True).cumcount() < 20
    )
    from durability_cli.schema import validate

    equal = validate(ds.frame[keep.to_numpy()].reset_index(drop=True), ds.schema, source="equal")
    series = data.to_series(equal)
    assert series.y.shape[1] == 20 and (series.row >= 0).all()
    assert np.shares_memory(series.y, equal.frame[equal.schema.target].to_numpy())
