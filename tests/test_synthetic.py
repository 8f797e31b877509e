"""The physics generators: deterministic, physically sane, and the committed samples up to date."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from durability_cli.synthetic import (
    BOLTZMANN_EV,
    DATASET_INFO,
    DATASETS,
    GRAVITY,
    KELVIN,
    make_ball,
    make_coating,
    make_crack,
    make_split,
)

ROOT = Path(__file__).resolve().parent.parent
SMALL = 12  # specimens per generated table: enough for the checks, fast


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "make_sample_data", ROOT / "scripts" / "make_sample_data.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def coating():
    return make_coating(seed=0)


@pytest.mark.parametrize("name", list(DATASETS))
def test_same_seed_same_tables_other_seed_other_tables(name):
    make = DATASETS[name]
    noisy, clean = make(n_specimens=SMALL, seed=3)
    again_noisy, again_clean = make(n_specimens=SMALL, seed=3)
    pd.testing.assert_frame_equal(noisy, again_noisy)
    pd.testing.assert_frame_equal(clean, again_clean)
    other, _ = make(n_specimens=SMALL, seed=4)
    assert not (len(other) == len(noisy) and other.equals(noisy))


@pytest.mark.parametrize("name", list(DATASETS))
def test_tables_follow_the_data_contract(name):
    info = DATASET_INFO[name]
    noisy, clean = DATASETS[name](n_specimens=SMALL, seed=1)
    expected = ["specimen_id", "time", *info.static, *info.covariates, info.target]
    assert list(noisy.columns) == expected
    assert list(clean.columns) == expected
    pd.testing.assert_frame_equal(noisy.drop(columns=info.target), clean.drop(columns=info.target))
    assert noisy["specimen_id"].nunique() == SMALL
    assert clean[info.target].notna().all()
    for _, group in clean.groupby("specimen_id"):
        time = group["time"].to_numpy()
        assert time[0] == 0.0 and np.all(np.diff(time) > 0)


@pytest.mark.parametrize("name", list(DATASETS))
def test_noise_is_iid_gaussian_with_the_stated_sigma(name):
    info = DATASET_INFO[name]
    noisy, clean = DATASETS[name](n_specimens=40, seed=2)
    residual = (noisy[info.target] - clean[info.target]).dropna()
    assert residual.std() == pytest.approx(info.noise, rel=0.2)
    assert abs(residual.mean()) < 0.2 * info.noise


def test_noise_zero_gives_the_clean_table():
    noisy, clean = make_coating(n_specimens=SMALL, seed=0, noise=0.0, missing_fraction=0.0)
    pd.testing.assert_frame_equal(noisy, clean)


def test_coating_strength_never_increases(coating):
    _, clean = coating
    steps = clean.groupby("specimen_id")["durability"].diff().dropna()
    assert (steps <= 0).all()
    first = clean.groupby("specimen_id")["durability"].first()
    assert first.between(0.97, 1.03).all()


@pytest.mark.parametrize("material, activation_ev, humidity_exponent", [("A", 0.65, 2.5), ("B", 0.78, 2.0)])
def test_coating_decays_faster_when_hotter_and_wetter(coating, material, activation_ev, humidity_exponent):
    # Second-order decay: s0/s grows by exactly rate * dt per step, and the Peck rate gives
    # log(rate) = log(A * lot) - Ea/(kB T) + n ln(RH). Regressing the per-step rates on 1/T and
    # ln(RH) within each specimen (the hidden lot factor drops out) recovers Ea and n.
    _, clean = coating
    table = clean[clean["material"] == material].copy()
    by_specimen = table.groupby("specimen_id")
    inverse = by_specimen["durability"].transform("first") / table["durability"]  # 1 + dose
    step = by_specimen["time"].shift(-1) - table["time"]
    rate = (inverse.groupby(table["specimen_id"]).shift(-1) - inverse) / step
    columns = pd.DataFrame(
        {
            "log_rate": np.log(rate),
            "inv_kt": 1.0 / (BOLTZMANN_EV * (table["temperature"] + KELVIN)),
            "log_rh": np.log(table["humidity"]),
            "specimen_id": table["specimen_id"],
        }
    ).dropna()
    centred = columns.drop(columns="specimen_id") - columns.groupby("specimen_id").transform("mean")
    design, target = centred[["inv_kt", "log_rh"]].to_numpy(), centred["log_rate"].to_numpy()
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    assert -coef[0] == pytest.approx(activation_ev, rel=1e-3)  # hotter -> faster
    assert coef[1] == pytest.approx(humidity_exponent, rel=1e-3)  # wetter -> faster


def test_coating_has_irregular_and_missing_specimens(coating):
    noisy, _ = coating
    steps = noisy.groupby("specimen_id")["time"].apply(lambda t: np.diff(t.to_numpy()))
    irregular = [sid for sid, dt in steps.items() if len(np.unique(dt)) > 1]
    assert 6 <= len(irregular) <= 18
    missing = noisy[noisy["durability"].isna()]
    assert 5 <= missing["specimen_id"].nunique() <= 15
    row_in_series = noisy.groupby("specimen_id").cumcount()
    last_row = noisy.groupby("specimen_id")["time"].transform("max") == noisy["time"]
    assert (row_in_series[missing.index] >= 3).all()
    assert not last_row[missing.index].any()


def test_ball_falls_with_gravity_at_the_top():
    _, clean = make_ball(n_specimens=30, seed=0)
    dt = 0.05
    for _, group in clean.groupby("specimen_id"):
        height = group["height"].to_numpy()
        top = int(np.argmax(height))
        assert 0 < top < len(height) - 1
        curvature = height[top + 1] - 2 * height[top] + height[top - 1]
        # Drag is nearly horizontal at the top, so the vertical acceleration is close to -g.
        assert curvature == pytest.approx(-GRAVITY * dt**2, rel=0.12)
        assert height.min() >= 0.0


def test_ball_series_lengths_and_step():
    noisy, _ = make_ball(seed=0)
    lengths = noisy.groupby("specimen_id").size()
    assert lengths.min() >= 15 and lengths.max() <= 100
    steps = noisy.groupby("specimen_id")["time"].diff().dropna()
    assert np.allclose(steps, 0.05)
    assert (noisy.groupby("specimen_id")["drag"].nunique() == 1).all()


def test_crack_ligament_shrinks_faster_and_faster():
    _, clean = make_crack(n_specimens=20, seed=0)
    checked = 0
    for _, group in clean.groupby("specimen_id"):
        ligament = group["durability"].to_numpy()
        assert np.all(np.diff(ligament) < 0)
        # Under the same load on two consecutive rows, the second step loses more ligament
        # (the crack length is convex in time, the ligament accelerates downwards).
        load = group[["stress_range", "r_ratio"]].to_numpy()
        same = np.all(load[1:-1] == load[:-2], axis=1)
        second = ligament[2:] - 2 * ligament[1:-1] + ligament[:-2]
        assert np.all(second[same] <= 1e-12)
        checked += same.sum()
        assert ligament.min() >= 0.2
    assert checked > 100


@pytest.mark.parametrize("name", list(DATASETS))
def test_split_keeps_specimens_apart(name):
    split = make_split(name, n_train=8, n_test=4, seed=5)
    train_ids = set(split["train"]["specimen_id"])
    test_ids = set(split["test"]["specimen_id"])
    assert len(train_ids) == 8 and len(test_ids) == 4 and not train_ids & test_ids
    info = split["info"]
    assert info.name == name and info.noise == DATASET_INFO[name].noise
    pd.testing.assert_series_equal(split["test"]["time"], split["test_clean"]["time"])
    assert split["train"][info.target].notna().all() and split["test"][info.target].notna().all()


def test_split_rejects_an_unknown_dataset():
    with pytest.raises(KeyError, match="unknown dataset 'tyre'"):
        make_split("tyre", 2, 2)


def test_committed_sample_data_is_what_the_script_writes(tmp_path):
    assert _load_script().main(["--out", str(tmp_path)]) == 0
    for name in ("coating.csv", "coating_clean.csv", "ball.csv"):
        assert (tmp_path / name).read_bytes() == (ROOT / "sample_data" / name).read_bytes(), name
    for name in ("coating.parquet", "ball.parquet"):
        fresh = pd.read_parquet(tmp_path / name)
        pd.testing.assert_frame_equal(fresh, pd.read_parquet(ROOT / "sample_data" / name))
    assert (ROOT / "sample_data" / "coating.csv").stat().st_size < 1_000_000


def test_sample_csv_reads_back_close_to_the_generator():
    table = pd.read_csv(ROOT / "sample_data" / "coating.csv")
    noisy, _ = make_coating(seed=0)
    assert list(table.columns) == list(noisy.columns)
    np.testing.assert_allclose(table["durability"], noisy["durability"], rtol=1e-5)
    np.testing.assert_array_equal(table["time"], noisy["time"])
