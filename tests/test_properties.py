"""Properties that must hold for any input, checked with hypothesis on small generated cases.

- a table written and read back is the same table, in every format;
- scaling to model units and back is the identity;
- a specimen's forecast depends only on that specimen: not on the others in the batch, their order,
  the chunking or the padding to the longest specimen;
- the fused multi-step RNN and the step-by-step loop give the same rollout;
- the readers and the model loader answer any bytes with the project's own errors only.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from durability_cli.artifact import ModelBundle, load_bundle, save_bundle
from durability_cli.config import ModelConfig, TrainConfig
from durability_cli.data import Scaler, Series
from durability_cli.errors import DurabilityError, ModelFileError
from durability_cli.forecasting import ForecastConfig, rollout
from durability_cli.io import read_table, write_table
from durability_cli.model import FeedbackRNN
from durability_cli.schema import Schema, load_dataset

QUICK = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# -- write -> read round trips ---------------------------------------------------------------------
# Text cells start with a letter so that they cannot be read as a number, a date, a boolean or a
# missing-value marker such as NA (docs/RELIABILITY.md says why those are not kept as text in CSV).
_TEXT = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from("SCxé"),
    st.text(
        alphabet=st.one_of(
            st.sampled_from(',"\n\r\t ;|\\'),
            st.characters(blacklist_categories=("Cs", "Cc")),
        ),
        max_size=8,
    ),
)
_FLOAT = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.just(math.nan),
    st.sampled_from([0.1, 1 / 3, 1e-300, 5e-324, 1.7976931348623157e308, math.inf, -math.inf]),
).map(lambda x: x + 0.0)  # -0.0 -> 0.0: a column of whole numbers reads back as integers, which have no -0
_DATE = st.datetimes(
    min_value=pd.Timestamp("1900-01-01").to_pydatetime(), max_value=pd.Timestamp("2200-01-01").to_pydatetime()
).map(lambda d: pd.Timestamp(d).floor("s"))  # the CSV and JSON Lines writers keep whole seconds


@st.composite
def frames(draw) -> pd.DataFrame:
    n = draw(st.integers(1, 6))
    column = {
        "text": st.lists(_TEXT, min_size=n, max_size=n),
        "int": st.lists(st.integers(-(2**53), 2**53), min_size=n, max_size=n),
        "float": st.lists(_FLOAT, min_size=n, max_size=n).filter(lambda v: any(math.isfinite(x) for x in v)),
        "bool": st.lists(st.booleans(), min_size=n, max_size=n),
        "date": st.lists(_DATE, min_size=n, max_size=n),
    }
    # two columns at least: a one-column CSV row with an empty cell is an empty line, which readers
    # skip (every usable table has a time and a target column anyway)
    kinds = draw(st.lists(st.sampled_from(sorted(column)), min_size=2, max_size=5))
    data = {}
    for i, kind in enumerate(kinds):
        values = draw(column[kind])
        data[f"{kind}_{i}"] = pd.to_datetime(values) if kind == "date" else values
    return pd.DataFrame(data)


@QUICK
@given(df=frames(), ext=st.sampled_from(["csv", "csv.gz", "parquet", "jsonl"]))
def test_write_then_read_is_the_identity(tmp_path, df, ext):
    path = str(tmp_path / f"t.{ext}")
    write_table(df, path)
    back = read_table(path)
    assert list(back.columns) == list(df.columns)
    for name in df.columns:
        a, b = df[name], back[name]
        if name.startswith("float"):
            if ext == "jsonl":  # JSON has no infinity: written as null
                a = a.where(np.isfinite(a))
            np.testing.assert_array_equal(b.to_numpy(dtype=np.float64), a.to_numpy(dtype=np.float64))
        elif name.startswith("date"):
            assert (pd.to_datetime(b).to_numpy() == a.to_numpy()).all(), (a.tolist(), b.tolist())
        else:
            assert b.tolist() == a.tolist()


@QUICK
@given(df=frames())
def test_csv_is_byte_stable(tmp_path, df):
    """Writing what was read gives the same bytes: a second round trip changes nothing."""
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    write_table(df, str(first))
    write_table(read_table(str(first)), str(second))
    assert first.read_bytes() == second.read_bytes()


# -- scaling ---------------------------------------------------------------------------------------
_finite = st.floats(-1e6, 1e6, allow_nan=False)


@settings(max_examples=100, deadline=None)
@given(
    y=st.lists(_finite, min_size=1, max_size=20),
    mean=_finite,
    std=st.floats(1e-3, 1e6),
)
def test_scaling_inverts(y, mean, std):
    scaler = Scaler([], [], 0.0, 1.0, mean, std, 0.1)
    values = np.array(y)
    back = scaler.y_from_model(scaler.y_to_model(values))
    tol = 1e-12 * (np.abs(values) + abs(mean) + std)
    assert (np.abs(back - values) <= tol).all()
    # the other way round the rounding of y * std + mean is magnified by 1 / std
    tensor = torch.tensor(y, dtype=torch.float64)
    again = scaler.y_to_model(scaler.y_from_model(tensor))
    assert ((again - tensor).abs() <= 1e-12 * (tensor.abs() + abs(mean) / std + 1)).all()


def test_scaling_keeps_nan_for_unmeasured_steps():
    scaler = Scaler([], [], 0.0, 1.0, 2.0, 3.0, 0.1)
    assert np.isnan(scaler.y_to_model(np.array([np.nan]))).all()


# -- forecasts: one specimen at a time, whatever the batch --------------------------------------------
C = 2  # conditions


def _bundle(cell: str, lags: int, feedback: str, loss: str = "gaussian", seed: int = 0) -> ModelBundle:
    """A small untrained model with seeded weights: enough to check how the rollout is batched."""
    torch.manual_seed(seed)
    mcfg = ModelConfig(latent=0, trend_line=False, cell=cell, hidden=8, layers=2, lags=lags, loss=loss)
    scaler = Scaler([0.0] * C, [1.0] * C, 0.0, 0.5, 1.0, 0.2, 0.05)
    model = FeedbackRNN(mcfg, n_conditions=C, step_scale=scaler.step_scale, dt_log_std=scaler.dt_std)
    with torch.no_grad():  # larger weights than the initialisation, so every input visibly matters
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    schema = Schema("specimen_id", "time", "durability", tuple(f"c{j}" for j in range(C)))
    return ModelBundle(
        model, schema, scaler, mcfg, TrainConfig(feedback=feedback), {"scale_calibration": 1.3}
    )


def _series(seed: int, n: int) -> tuple[Series, np.ndarray]:
    """``n`` specimens of different lengths, uneven steps, gaps in the warm-up, padded with NaN."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, 14, size=n)
    T = int(lengths.max())
    valid = np.arange(T)[None, :] < lengths[:, None]  # [N, T]
    time = np.where(valid, np.cumsum(rng.uniform(0.2, 2.0, size=(n, T)), axis=1), np.nan)
    cond = np.where(valid[..., None], rng.normal(size=(n, T, C)), np.nan)
    y = np.where(valid, 1.0 - 0.05 * np.cumsum(rng.uniform(0, 1, size=(n, T)), axis=1), np.nan)
    last_obs = np.array([rng.integers(0, length - 1) for length in lengths])  # at least one future row
    y[np.arange(T)[None, :] > last_obs[:, None]] = np.nan
    gaps = (
        (rng.uniform(size=(n, T)) < 0.2)
        & (np.arange(T)[None, :] > 0)
        & (np.arange(T)[None, :] < last_obs[:, None])
    )
    y[gaps] = np.nan  # unmeasured steps inside the warm-up
    row = np.where(valid, np.arange(n * T).reshape(n, T), -1)
    series = Series(
        ids=[f"S{i}" for i in range(n)],
        lengths=lengths,
        time=time,
        cond=cond,
        y=y,
        row=row,
        static_numeric=np.zeros((n, 0)),
        static_categorical=np.zeros((n, 0), dtype=object),
    )
    return series, last_obs


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5, equal_nan=True)


def _assert_each_specimen_alone(bundle, series, last_obs, samples):
    """The batch forecast of every specimen equals its forecast alone, in another order, in chunks."""
    n = len(series.ids)
    mean, paths = rollout(bundle, series, last_obs, ForecastConfig(samples=samples, seed=7))
    assert np.isfinite(mean).any()

    def check(index, m, p):
        for k, i in enumerate(index):
            L = series.lengths[i]
            _close(m[k, :L], mean[i, :L])
            assert np.isnan(m[k, L:]).all()
            if samples:
                _close(p[k, :, :L], paths[i, :, :L])

    # alone: no other specimens, no padding to a longer one
    for i in range(n):
        m, p = rollout(bundle, series.take([i]), last_obs[[i]], ForecastConfig(samples=samples, seed=7))
        check([i], m, p)
    # in another order
    order = np.random.default_rng(n).permutation(n)
    m, p = rollout(bundle, series.take(order), last_obs[order], ForecastConfig(samples=samples, seed=7))
    check(order, m, p)
    # in chunks of two: other neighbours, other padding
    m, p = rollout(bundle, series, last_obs, ForecastConfig(samples=samples, seed=7, rollout_batch=2))
    check(range(n), m, p)


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(2, 6),
    cell=st.sampled_from(["lstm", "gru"]),
    lags=st.sampled_from([1, 3]),
    samples=st.sampled_from([0, 4]),
)
def test_forecast_of_a_specimen_ignores_the_rest_of_the_batch(seed, n, cell, lags, samples):
    """Models trained free-running on their mean (the default): paths are mean + spread x one draw."""
    series, last_obs = _series(seed, n)
    _assert_each_specimen_alone(_bundle(cell, lags, "mean"), series, last_obs, samples)


def test_sampled_feedback_paths_ignore_the_rest_of_the_batch():
    """Models trained with --feedback sample: each path feeds back its own draws (DeepAR)."""
    series, last_obs = _series(0, 2)  # lengths 12 and 9, gaps in the warm-up
    _assert_each_specimen_alone(_bundle("lstm", 1, "sample"), series, last_obs, 4)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), extra=st.integers(1, 5))
def test_forecast_ignores_extra_padding(seed, extra):
    """Padding columns past every specimen's end (row -1, NaN) change nothing."""
    bundle = _bundle("lstm", 2, "mean")
    series, last_obs = _series(seed, 3)
    n, T = series.y.shape
    pad = Series(
        ids=series.ids,
        lengths=series.lengths + 0,  # take() trims to the longest specimen: keep T + extra by hand
        time=np.concatenate([series.time, np.full((n, extra), np.nan)], axis=1),
        cond=np.concatenate([series.cond, np.full((n, extra, C), np.nan)], axis=1),
        y=np.concatenate([series.y, np.full((n, extra), np.nan)], axis=1),
        row=np.concatenate([series.row, np.full((n, extra), -1)], axis=1),
        static_numeric=series.static_numeric,
        static_categorical=series.static_categorical,
    )
    a, pa_ = rollout(bundle, series, last_obs, ForecastConfig(samples=3, seed=1))
    b, pb = rollout(bundle, pad, last_obs, ForecastConfig(samples=3, seed=1))
    _close(b[:, :T], a)
    _close(pb[:, :, :T], pa_)
    assert np.isnan(b[:, T:]).all()


# -- fused = stepwise ------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    B=st.integers(1, 5),
    T=st.integers(1, 12),
    cell=st.sampled_from(["lstm", "gru"]),
    lags=st.integers(1, 4),
    loss=st.sampled_from(["gaussian", "mse"]),
    shape=st.sampled_from([("none", True), ("decreasing", True), ("none", False)]),
    sample=st.booleans(),
)
def test_fused_and_stepwise_rollouts_agree_for_any_feed_pattern(seed, B, T, cell, lags, loss, shape, sample):
    monotonic, residual = shape
    torch.manual_seed(seed)
    cfg = ModelConfig(
        latent=0,
        trend_line=False,
        cell=cell,
        hidden=8,
        layers=2,
        lags=lags,
        loss=loss,
        monotonic=monotonic,
        residual=residual,
    )
    model = FeedbackRNN(cfg, n_conditions=C).eval()
    g = torch.Generator().manual_seed(seed)
    x, dt, y = (
        torch.randn(B, T, C, generator=g),
        torch.randn(B, T, generator=g),
        torch.randn(B, T, generator=g),
    )
    # any mix of measured and own values; often a shared measured prefix, so the fused call runs
    prefix = int(torch.randint(0, T + 1, (1,), generator=g))
    feed = torch.rand(B, T, generator=g) < 0.5
    feed[:, :prefix] = True
    noise = torch.randn(B, max(T - 1, 0), generator=g)
    with torch.no_grad():
        fused = model(x, dt, y, feed, sample=sample, noise=noise)
        stepwise = model(x, dt, y, feed, sample=sample, noise=noise, fused=False)
    torch.testing.assert_close(fused.mean, stepwise.mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fused.path, stepwise.path, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fused.fed, stepwise.fed, rtol=1e-5, atol=1e-5)
    if loss == "gaussian":
        torch.testing.assert_close(fused.scale, stepwise.scale, rtol=1e-5, atol=1e-5)


# -- readers and the model loader on any bytes ------------------------------------------------------
# tests/test_io.py fuzzes .csv files and stdin; here: the other formats, by name and by magic bytes.
_JSONISH = st.lists(
    st.one_of(
        st.sampled_from(
            ['{"a": 1}', '{"a": "x"}', '{"a": null}', '{"b": [1, 2]}', "{", "[]", "1", '"s"', "", "{}"]
        ),
        st.text(max_size=20),
    ),
    max_size=6,
).map(lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass"))
_ANY_BYTES = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=300).map(lambda b: b"PAR1" + b + b"PAR1"),
    st.binary(max_size=300).map(lambda b: b"\x1f\x8b" + b),
    _JSONISH,
)


@QUICK
@given(data=_ANY_BYTES, name=st.sampled_from(["f.parquet", "f.jsonl", "f.csv.gz", "f.dat", "f.tsv"]))
def test_readers_raise_only_durability_errors(tmp_path, data, name):
    path = tmp_path / name
    path.write_bytes(data)
    try:
        load_dataset(str(path))
    except DurabilityError:
        pass


@QUICK
@given(data=st.binary(max_size=200).map(lambda b: b"\x1f\x8b" + b) | _JSONISH)
def test_gzip_of_anything_as_csv_gz(tmp_path, data):
    import gzip

    path = tmp_path / "f.csv.gz"
    path.write_bytes(gzip.compress(data))
    try:
        load_dataset(str(path))
    except DurabilityError:
        pass


@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("model") / "m.safetensors"
    save_bundle(_bundle("lstm", 2, "mean"), path)
    return path.read_bytes()


def test_the_generated_model_file_loads(tmp_path, model_bytes):
    path = tmp_path / "m.safetensors"
    path.write_bytes(model_bytes)
    assert load_bundle(path).model_config.lags == 2


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.one_of(st.none(), st.floats(0, 1)),
)
def test_damaged_model_files_raise_only_model_file_errors(tmp_path, model_bytes, edits, cut):
    """Bytes changed anywhere (header length, JSON header, metadata, weights) or the file cut short."""
    raw = bytearray(model_bytes)
    for where, value in edits:
        raw[int(where * len(raw))] = value
    if cut is not None:
        raw = raw[: int(cut * len(raw))]
    assume(bytes(raw) != model_bytes)
    path = tmp_path / "m.safetensors"
    path.write_bytes(bytes(raw))
    try:
        bundle = load_bundle(path)
    except ModelFileError:
        return
    # a change the loader accepted (a weight's value, a digit in a number) still gives a usable model
    for p in bundle.model.parameters():
        assert torch.isfinite(p).all()


@QUICK
@given(data=st.binary(max_size=400))
def test_arbitrary_bytes_as_a_model_file(tmp_path, data):
    path = tmp_path / "m.safetensors"
    path.write_bytes(data)
    with pytest.raises(ModelFileError):
        load_bundle(path)


class _Groups:
    """What ensemble.resolve_auto and training.resolve_length read of a table given in groups:
    its specimen ids and its number of rows."""

    def __init__(self, n: int, rows_each: int = 100):
        self.ids = [f"S{i}" for i in range(n)]
        self.rows = n * rows_each


@given(
    n=st.integers(0, 400),
    share=st.sampled_from([0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.9]),
    asked=st.sampled_from([0, 0, 1, 3]),
)
@settings(max_examples=200, deadline=None)
def test_auto_ensemble_follows_the_number_of_validation_specimens(n, share, asked):
    """``ensemble = 0`` becomes 5 exactly when 1 to 14 specimens validate (the split's own count),
    1 otherwise; a number asked for is kept; the reason names the count it read."""
    from durability_cli.config import AUTO_MEMBERS, SMALL_VALIDATION
    from durability_cli.ensemble import resolve_auto
    from durability_cli.training import split_specimens

    cfg = TrainConfig(ensemble=asked, val_fraction=share)
    got, why = resolve_auto(_Groups(n), ModelConfig(latent=0, trend_line=False), cfg)
    if asked:
        assert got == cfg and why == ""
        return
    n_val = len(split_specimens(n, share, 0)[1])
    assert got.ensemble == (AUTO_MEMBERS if 0 < n_val < SMALL_VALIDATION else 1)
    assert got == TrainConfig(ensemble=got.ensemble, val_fraction=share)  # nothing else moved
    assert why.startswith("auto: ") and (str(n_val) in why or n_val == 0)


@given(
    n=st.integers(0, 3000),
    batch=st.sampled_from([0, 0, 1, 2, 4, 8, 32]),
    share=st.sampled_from([0.0, 0.2, 0.5]),
    epochs=st.sampled_from([0, 0, 7]),
    patience=st.sampled_from([0, 0, 3]),
    rows_each=st.sampled_from([1, 12, 50, 100, 200, 5000]),
    window=st.sampled_from([0, 0, 10, 64]),
)
@settings(max_examples=300, deadline=None)
def test_auto_length_gives_every_table_its_optimiser_steps(
    n, batch, share, epochs, patience, rows_each, window
):
    """``epochs = 0`` becomes enough epochs for AUTO_STEPS optimiser steps over the training
    specimens (at least MIN_AUTO_EPOCHS, and no more than that floor needs), ``patience = 0`` a
    share of them. ``batch_size = 0`` becomes BASE_BATCH, except at the automatic length on a
    table whose AUTO_STEPS steps do not depend on the batch: there about ROWS_PER_STEP rows a
    step (the specimens' rows or the window), within BASE_BATCH .. MAX_AUTO_BATCH and no more
    than the training specimens; the run then still makes its AUTO_STEPS steps. Numbers asked
    for are kept, and nothing else moves."""
    import math

    from durability_cli.config import (
        AUTO_STEPS,
        BASE_BATCH,
        MAX_AUTO_BATCH,
        MIN_AUTO_EPOCHS,
        MIN_AUTO_PATIENCE,
        PATIENCE_SHARE,
        ROWS_PER_STEP,
    )
    from durability_cli.training import resolve_length, split_specimens

    cfg = TrainConfig(epochs=epochs, patience=patience, batch_size=batch, val_fraction=share, window=window)
    got, why = resolve_length(_Groups(n, rows_each), cfg)
    if epochs and patience and batch:
        assert got == cfg and why == ""
        return
    n_fit = max(n - len(split_specimens(n, share, 0)[1]), 1)
    by_steps = not epochs and math.ceil(n_fit / BASE_BATCH) * MIN_AUTO_EPOCHS <= AUTO_STEPS
    if batch:
        assert got.batch_size == batch
    elif not by_steps:
        assert got.batch_size == BASE_BATCH and "batch" not in why
    else:
        rows = min(rows_each, window) if window else rows_each
        assert BASE_BATCH <= got.batch_size <= MAX_AUTO_BATCH
        assert got.batch_size <= max(n_fit, BASE_BATCH)
        wanted = ROWS_PER_STEP / rows  # the rows a step takes, as near as the bounds allow
        assert (
            got.batch_size in (BASE_BATCH, MAX_AUTO_BATCH, n_fit)
            or got.batch_size <= wanted < got.batch_size + 1
        )
        assert (f"batch {got.batch_size} (" in why) == (got.batch_size != BASE_BATCH)
        assert (
            math.ceil(n_fit / got.batch_size) * math.ceil(AUTO_STEPS / math.ceil(n_fit / got.batch_size))
            >= AUTO_STEPS
        )
    steps = math.ceil(n_fit / got.batch_size)
    if epochs:
        assert got.epochs == epochs
    else:
        assert got.epochs >= MIN_AUTO_EPOCHS and got.epochs * steps >= AUTO_STEPS
        assert got.epochs == MIN_AUTO_EPOCHS or (got.epochs - 1) * steps < AUTO_STEPS
        assert f"up to {got.epochs} epochs ({steps} optimiser step" in why
    if patience:
        assert got.patience == patience
    else:
        assert got.patience == max(MIN_AUTO_PATIENCE, math.ceil(PATIENCE_SHARE * got.epochs))
        assert f"patience {got.patience}" in why
    assert got == replace(cfg, epochs=got.epochs, patience=got.patience, batch_size=got.batch_size)
