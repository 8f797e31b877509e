"""Training: what is fed back under each schedule, interruption and resume, divergence."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file
from typer.testing import CliRunner

from durability_cli.artifact import load_bundle
from durability_cli.cli import app
from durability_cli.config import ModelConfig, TrainConfig
from durability_cli.schema import Schema, load_dataset, validate
from durability_cli.training import specimen_features, split_specimens, stratified_split, train

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


@pytest.fixture(scope="module")
def tiny(coating_slice) -> Path:
    return coating_slice(10, 40)


def _history(path, **train_kw):
    ds = load_dataset(str(path))
    cfg = TrainConfig(batch_size=4, val_context=5, **train_kw)
    bundle = train(ds, ModelConfig(hidden=8, layers=1), cfg)
    return pd.DataFrame(bundle.summary["history"])


@pytest.mark.parametrize(("share", "shortest"), [(0.0, 1), (0.5, 5), (0.3, 3), (1.0, 10)])
def test_training_warm_ups_are_drawn_from_the_share_of_val_context_up(share, shortest):
    """``--warmup-min``: each rollout's measured warm-up (the leading rows fed measured values when
    nothing else is) is between ceil(share x context) and context rows, and every length in that
    range is drawn; share 0 draws exactly what the code drew before the option (1 + floor(u x
    context) from the same generator)."""
    import torch

    from durability_cli.training import _Tally, batch_feed

    B, T, context = 4000, 30, 10
    feed = batch_feed(_measured_batch(B, T), context, torch.Generator().manual_seed(3), _Tally(p=0.0), share)
    warm = feed.int().argmin(dim=1)  # the first row not fed: the warm-up's length
    assert set(warm.tolist()) == set(range(shortest, context + 1))
    if share == 0.0:
        u = torch.rand(B, generator=torch.Generator().manual_seed(3))
        assert torch.equal(warm, 1 + (u * context).long())
    r = CliRunner().invoke(
        app, ["train", "no-such.csv", "-o", "m.safetensors", "--warmup-min", str(share + 1.01)]
    )
    assert r.exit_code == 2 and "--warmup-min must be in [0, 1] (a share of --val-context)" in r.stderr


@pytest.mark.parametrize(("warmup_min", "exact"), [(0.0, False), (1.0, True)])
def test_training_warm_ups_reach_each_specimen_s_own_count(warmup_min, exact):
    """With one count per specimen, each rollout's warm-up lies between ceil(warmup_min x its
    count) and its count, every length in that range drawn; warmup_min 1 feeds exactly its count."""
    import torch

    from durability_cli.training import _Tally, batch_feed

    counts = torch.tensor([3, 6, 11]).repeat(1000)  # --val-context-frac: one count per specimen
    feed = batch_feed(
        _measured_batch(3000, 40), counts, torch.Generator().manual_seed(0), _Tally(p=0.0), warmup_min
    )
    warm = feed.int().argmin(dim=1)  # the first row not fed: the warm-up's length
    for c in (3, 6, 11):
        drawn = set(warm[counts == c].tolist())
        assert drawn == ({c} if exact else set(range(1, c + 1)))


def _measured_batch(B: int, T: int):
    """What batch_feed reads of a batch of B specimens, T rows each, all measured."""
    from types import SimpleNamespace

    import torch

    return SimpleNamespace(
        y=torch.zeros(B, T),
        observed=torch.ones(B, T, dtype=torch.bool),
        valid=torch.ones(B, T, dtype=torch.bool),
    )


@pytest.mark.parametrize(("p", "lo", "hi"), [(1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (0.5, 0.35, 0.65)])
def test_constant_teacher_forcing_feeds_measured_values_at_rate_p(tiny, p, lo, hi):
    h = _history(tiny, epochs=2, teacher_forcing=p, tf_schedule="constant")
    assert (h.teacher_forcing == p).all()
    assert h.fed_measured.between(lo, hi).all(), h.fed_measured.tolist()


@pytest.mark.parametrize(
    ("schedule", "kw", "expected"),
    [
        ("linear", {"tf_c": 0.25}, [1.0, 0.75, 0.5, 0.25]),
        ("exponential", {"tf_k": 0.5}, [1.0, 0.5, 0.25, 0.125]),
    ],
)
def test_schedules_lower_what_is_fed_back(tiny, schedule, kw, expected):
    h = _history(tiny, epochs=4, teacher_forcing=1.0, tf_schedule=schedule, patience=100, **kw)
    assert h.teacher_forcing.tolist() == pytest.approx(expected)
    # the share of measured values actually fed back follows the schedule down
    assert h.fed_measured.iloc[0] == 1.0
    assert h.fed_measured.iloc[-1] < h.fed_measured.iloc[1]
    assert abs(h.fed_measured.iloc[2] - expected[2]) < 0.15


def test_ema_validates_and_keeps_the_averaged_weights(tiny):
    import torch

    from durability_cli.data import to_series, to_tensors
    from durability_cli.training import free_run_rmse

    ds = load_dataset(str(tiny))
    cfg = dict(batch_size=2, val_context=5, epochs=2, patience=100)
    plain = train(ds, ModelConfig(hidden=8, layers=1), TrainConfig(**cfg))
    averaged = train(ds, ModelConfig(hidden=8, layers=1), TrainConfig(ema=0.9, **cfg))
    a, b = plain.model.state_dict(), averaged.model.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)  # same seed and batches: only the average differs
    # the score written for the best epoch is the saved (averaged) weights' own score
    series = to_series(ds)
    val = series.take([i for i, sid in enumerate(series.ids) if sid in averaged.summary["val_specimens"]])
    rmse = free_run_rmse(averaged.model, to_tensors(val, averaged.scaler), averaged.scaler, 5)[0]
    assert rmse == pytest.approx(averaged.summary["best_val_rmse"], rel=1e-5)
    with pytest.raises(Exception, match="ema must be in"):
        TrainConfig(ema=1.0).validate()


def test_val_smoothing_picks_the_epoch_by_the_moving_average(tiny):
    ds = load_dataset(str(tiny))
    cfg = TrainConfig(batch_size=2, val_context=5, epochs=4, patience=100, val_smoothing=0.5)
    bundle = train(ds, ModelConfig(hidden=8, layers=1), cfg)
    rmse = [e["val_rmse"] for e in bundle.summary["history"]]
    smoothed = [rmse[0]]
    for v in rmse[1:]:
        smoothed.append(0.5 * smoothed[-1] + 0.5 * v)
    best = min(range(len(smoothed)), key=smoothed.__getitem__)
    assert bundle.summary["best_epoch"] == best + 1
    assert [e["best"] for e in bundle.summary["history"]] == [
        smoothed[i] < min(smoothed[:i], default=float("inf")) for i in range(len(smoothed))
    ]
    with pytest.raises(Exception, match="val_smoothing must be in"):
        TrainConfig(val_smoothing=1.0).validate()


def test_split_is_by_specimen_and_seeded():
    tr, va = split_specimens(50, 0.2, seed=3)
    assert len(va) == 10 and len(tr) == 40 and not set(tr) & set(va)
    tr2, va2 = split_specimens(50, 0.2, seed=3)
    assert (va == va2).all()
    assert not (split_specimens(50, 0.2, seed=4)[1] == va).all()


@given(
    n=st.integers(0, 60),
    fraction=st.sampled_from([0.0, 0.1, 0.2, 0.5, 0.9]),
    columns=st.integers(0, 3),
    seed=st.integers(0, 2**31),
)
@settings(max_examples=60, deadline=None)
def test_stratified_split_is_a_partition_of_the_same_sizes_as_the_random_one(n, fraction, columns, seed):
    features = np.random.default_rng(seed).normal(size=(n, columns)).round(1)
    tr, va = stratified_split(features, fraction, seed)
    assert len(va) == len(split_specimens(n, fraction, seed)[1])
    assert sorted([*tr, *va]) == list(range(n))
    again = stratified_split(features, fraction, seed)
    assert (again[1] == va).all() and (again[0] == tr).all()


def test_stratified_split_validates_on_every_group_of_similar_specimens():
    """23 specimens at three temperatures (7 / 8 / 8), 5 validate: every temperature is in
    validation for every seed, which a random split misses for some seeds."""
    temperature = np.repeat([150.0, 195.0, 237.0], [7, 8, 8])
    lengths = np.repeat([33, 17, 9], [7, 8, 8])
    features = np.column_stack([temperature, np.log(lengths)])
    missed = 0
    for seed in range(20):
        va = stratified_split(features, 0.2, seed)[1]
        assert len(va) == 5 and set(temperature[va]) == {150.0, 195.0, 237.0}
        missed += set(temperature[split_specimens(23, 0.2, seed)[1]]) != {150.0, 195.0, 237.0}
    assert missed > 0  # the random split does leave a temperature out
    assert len({tuple(stratified_split(features, 0.2, s)[1]) for s in range(20)}) > 5  # still drawn


def test_specimen_features_read_each_specimens_conditions_static_values_and_length():
    rows = [
        (sid, t, temp + t % 2, mat, 1.0 - 0.01 * t)
        for sid, temp, mat, n in [("A", 30.0, "x", 4), ("B", 50.0, "y", 8), ("C", 40.0, "x", 6)]
        for t in range(n)
    ]
    table = pd.DataFrame(rows, columns=["specimen_id", "time", "temperature", "material", "durability"])
    ds = validate(
        table, Schema("specimen_id", "time", "durability", ("temperature",), ("material",)), source="t"
    )
    x = specimen_features([ds])  # mean temperature, log rows, material one-hot
    np.testing.assert_allclose(x[:, 0], [30.5, 50.5, 40.5])
    np.testing.assert_allclose(x[:, 1], np.log([4, 8, 6]))
    np.testing.assert_array_equal(x[:, 2:], [[1, 0], [0, 1], [1, 0]])


def test_train_val_split_stratified_through_the_command(tmp_path):
    """--val-split stratified reads each specimen's mean conditions: with 12 specimens at four
    temperatures and 4 validating, each temperature gives one; a bad choice is exit 2."""
    rows = []
    for i in range(12):
        temp = 30.0 + 10 * (i % 4)
        for t in range(20):
            rows.append((f"S{i:02d}", t, temp, 1.0 - 0.002 * t * (temp / 30)))
    data = tmp_path / "d.csv"
    pd.DataFrame(rows, columns=["specimen_id", "time", "temperature", "durability"]).to_csv(data, index=False)
    out = tmp_path / "m.safetensors"
    args = ["train", str(data), "-o", str(out), "--epochs", "1", "--hidden", "8", "--layers", "1"]
    r = CliRunner().invoke(app, [*args, "--val-fraction", "0.34", "--val-split", "stratified", "-q"])
    assert r.exit_code == 0, r.output
    summary = load_bundle(out).summary
    assert sorted(int(s[1:]) % 4 for s in summary["val_specimens"]) == [0, 1, 2, 3]
    assert load_bundle(out).train_config.val_split == "stratified"
    bad = CliRunner().invoke(app, [*args, "--val-split", "balanced", "-q"])
    assert bad.exit_code == 2 and "balanced" in bad.output


def test_divergence_stops_with_advice(tiny, tmp_path):
    out = tmp_path / "m.safetensors"
    # lags 3 adds a linear autoregressive path that a huge step makes explode
    r = CliRunner().invoke(
        app,
        [
            "train",
            str(tiny),
            "-o",
            str(out),
            "--lr",
            "1e3",
            "--clip",
            "1e30",
            "--epochs",
            "30",
            "--hidden",
            "8",
            "--lags",
            "3",
            "--quiet",
        ],
    )
    assert r.exit_code == 1, r.output
    assert "training diverged at epoch 1" in r.output and "try a lower --lr (now 1000)" in r.output
    assert "Traceback" not in r.output
    assert not out.exists()  # no epoch finished, so there are no best weights to keep


# small, fixed training options shared by the subprocess and the in-process runs
# one candidate: the default (--trend-line auto) trains two, whose resume tests/test_line_choice.py covers
SMALL = "--hidden 8 --layers 1 --batch-size 2 --epochs 8 --patience 100 --no-trend-line".split()


def _train_cmd(data, out, *extra):
    return [
        sys.executable,
        "-m",
        "durability_cli",
        "train",
        str(data),
        "-o",
        str(out),
        *SMALL,
        "--quiet",
        *extra,
    ]


# One model in the first two (train's default on this table is an ensemble of 5, which the third
# covers with 2). SIGTERM runs with --ema: the checkpoint must carry the weights' moving average
# too; an ensemble's members train together (stacked.py), one checkpoint holding both (slow: three
# more processes; tests/test_ensemble.py resumes a stacked ensemble in-process)
@pytest.mark.parametrize(
    ("sig", "extra"),
    [
        (signal.SIGINT, ["--ensemble", "1"]),
        (signal.SIGTERM, ["--ema", "0.9", "--ensemble", "1"]),
        pytest.param(signal.SIGINT, ["--ensemble", "2"], marks=pytest.mark.slow),
    ],
)
def test_interrupt_then_resume_equals_uninterrupted(tiny, tmp_path, sig, extra, interrupt_at_checkpoint):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full = tmp_path / "full.safetensors"
    # the uninterrupted run in this process (the same command line; a child would only add the
    # start of a Python with torch): the interrupted run and its resume are the processes tested
    r = CliRunner().invoke(app, _train_cmd(tiny, full, *extra)[3:])
    assert r.exit_code == 0, r.output

    part = tmp_path / "part.safetensors"
    ckpt = Path(f"{part}.ckpt")
    code, stderr = interrupt_at_checkpoint(_train_cmd(tiny, part, *extra), ckpt, env=env, sig=sig)
    assert code == 130, stderr
    assert "continue with --resume" in stderr and "Traceback" not in stderr
    assert ckpt.exists() and not part.exists()

    done = subprocess.run(
        _train_cmd(tiny, part, "--resume", str(ckpt), *extra),
        env=env,
        timeout=300,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    a, b = load_file(full), load_file(part)
    assert a.keys() == b.keys()
    for key in a:
        assert bool((a[key] == b[key]).all()), key


def test_resume_refuses_other_data(tiny, tmp_path, interrupt_at_checkpoint):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "m.safetensors"
    ckpt = tmp_path / "m.ckpt"
    # a finished run removes its checkpoint, so keep one by stopping after 1 epoch of 8
    interrupt_at_checkpoint(_train_cmd(tiny, out, "--checkpoint", str(ckpt)), ckpt, env=env)
    other = tmp_path / "other.csv"
    df = pd.read_csv(tiny)
    df["durability"] = df["durability"] * 0.9
    df.to_csv(other, index=False)
    r = CliRunner().invoke(app, ["train", str(other), "-o", str(out), *SMALL, "--resume", str(ckpt)])
    assert r.exit_code == 2
    assert "made on a different table" in r.output
    # more epochs are allowed (to train on), but the model then is neither run's: said first
    # (the summary claimed the new length, silently)
    from durability_cli import api

    assert (
        api.resume_warnings(str(ckpt), {"epochs": 8}) == api.resume_warnings(str(ckpt), {"epochs": 0}) == []
    )
    longer = [*SMALL[: SMALL.index("--epochs")], "--epochs", "10", *SMALL[SMALL.index("--epochs") + 2 :]]
    r = CliRunner().invoke(app, ["train", str(tiny), "-o", str(out), *longer, "--resume", str(ckpt)])
    assert r.exit_code == 0, r.output
    said = " ".join(r.stderr.split())
    assert "Warning: the checkpoint's run planned 8 epochs and this one 10: from epoch" in said
    assert "(resume with --epochs 8 for that)" in said


def test_the_default_batch_takes_about_1600_rows_a_step_on_a_small_table(coating_slice, tmp_path):
    """``--batch-size`` left at 0 (auto): 20 specimens of 20 rows, 4 validating. The automatic
    length makes its 800 steps whatever the batch on so small a table, so a step takes about
    1,600 rows (80 specimens of 20), capped at the 16 training specimens: one step an epoch, 800
    epochs. The same from a Parquet file read 5 specimens at a time (its rows counted from the
    file's metadata). With ``--epochs`` given a larger batch would mean fewer steps: 8.
    What is checked is the length decided, not the training: ``--lr 1e-12`` leaves the weights as
    they start, so no epoch validates better than the first and each run stops after 3 epochs (at
    0.002 the 200-row run took 38 epochs, 14 s)."""
    from durability_cli import api

    table = coating_slice(20, 20)
    parquet = tmp_path / "t.parquet"
    pd.read_csv(table).to_parquet(parquet, index=False)
    out = tmp_path / "m.safetensors"
    tiny_run = "--hidden 8 --layers 1 --ensemble 1 --no-trend-line --patience 2 --lr 1e-12 --quiet".split()
    for source, extra in ((table, []), (parquet, ["--chunk-specimens", "5"])):
        r = CliRunner().invoke(app, ["train", str(source), "-o", str(out), *tiny_run, *extra])
        assert r.exit_code == 0, r.stderr
        bundle = api.load(out)
        assert (bundle.train_config.batch_size, bundle.train_config.epochs) == (16, 800), source
        assert bundle.summary["length_auto"] == (
            "auto: batch 16 (series of 20 rows on average; the aim is about 1,600 rows a step), "
            "up to 800 epochs (1 optimiser step each)"
        )
    r = CliRunner().invoke(app, ["train", str(table), "-o", str(out), *tiny_run, "--epochs", "3"])
    assert r.exit_code == 0, r.stderr
    bundle = api.load(out)
    assert bundle.train_config.batch_size == 8 and "length_auto" not in bundle.summary
    # long series on the same table keep 8: 1,600 rows are 8 specimens of 200
    r = CliRunner().invoke(app, ["train", str(coating_slice(20, 200)), "-o", str(out), *tiny_run])
    assert r.exit_code == 0, r.stderr
    assert api.load(out).train_config.batch_size == 8


def test_the_default_length_is_sized_in_optimiser_steps(small, tmp_path):
    """``--epochs`` and ``--patience`` left at 0 (auto): 10 specimens, 2 validating, 8 training in
    one batch of 8 make one optimiser step an epoch, so the run may take 800 epochs (800 steps)
    with a patience of 400; the progress, the summary row and the file say so. An explicit
    ``--patience`` is kept beside the automatic epochs. (``--lr 1e-12``: the weights stay as they
    start, so the early stop comes after 3 epochs; the length decided is what is checked.)"""
    from durability_cli import api

    assert (TrainConfig().epochs, TrainConfig().patience) == (0, 0)
    out = tmp_path / "m.safetensors"
    args = ["train", str(small), "-o", str(out), "--hidden", "8", "--layers", "1", "--ensemble", "1"]
    args += ["--lr", "1e-12"]
    r = CliRunner().invoke(app, [*args, "--patience", "2"])
    assert r.exit_code == 0, r.stderr
    said = " ".join(r.stderr.split())
    assert "epoch 1/800 " in said  # the progress counts to the decided length, not to 0
    assert "auto: up to 800" in said  # the summary's epochs row (the table may wrap the rest)
    bundle = api.load(out)
    assert (bundle.train_config.epochs, bundle.train_config.patience) == (800, 2)
    s = bundle.summary
    assert s["length_auto"] == "auto: up to 800 epochs (1 optimiser step each)"
    assert s["epochs_run"] < 800 and s["stopped"].startswith(
        "early stop: no better validation RMSE for 2 epochs"
    )
    # both asked for: nothing is decided and the summary says nothing
    r = CliRunner().invoke(app, [*args, "--batch-size", "2", "--epochs", "3", "--patience", "5", "--quiet"])
    assert r.exit_code == 0, r.stderr
    bundle = api.load(out)
    assert (bundle.train_config.epochs, bundle.train_config.patience) == (3, 5)
    assert "length_auto" not in bundle.summary


def test_a_resume_with_fewer_epochs_than_the_checkpoint_ran_is_refused():
    """A checkpoint of 5 epochs resumed with --epochs 2 trained on and wrote a model whose options
    said 2 epochs and whose summary said 5; the same or more epochs resume, with the same other
    options."""
    from durability_cli.config import as_dict
    from durability_cli.errors import InputError
    from durability_cli.training import check_resumable

    model, saved = ModelConfig(), TrainConfig(epochs=12)
    info = {"model_config": as_dict(model), "train_config": as_dict(saved), "epoch": 5, "data": "table"}
    with pytest.raises(InputError, match="this checkpoint has run 5 epochs, more than epochs 2; resume with"):
        check_resumable(info, "r.ckpt", model, TrainConfig(epochs=2), "table")
    for epochs in (5, 12, 40):
        check_resumable(info, "r.ckpt", model, TrainConfig(epochs=epochs), "table")
    # a stacked ensemble's checkpoint keeps each member's epoch
    stacked = {**info, "epoch": None, "members": [{"epoch": 4}, {"epoch": 5}]}
    with pytest.raises(InputError, match="this checkpoint has run 5 epochs"):
        check_resumable(stacked, "r.ckpt", model, TrainConfig(epochs=2), "table")


def test_rows_after_the_last_measurement_are_not_trained_on(coating_slice, tmp_path):
    """Specimens measured on their first 12 rows of 40, the rest planned but not measured (a table
    that holds a test's future): train gives the model it gives the measured rows alone, weights
    bit for bit, whole and read from Parquet in groups, and says what it left out. (Before, the
    automatic warm-up was 20 % of all 40 rows, 8; then of 160 rows, past every measurement: the
    validation scored nothing and the run ended 'training diverged at epoch 1', exit 1.)"""
    df = pd.read_csv(coating_slice(8, 160))
    row = df.groupby("specimen_id").cumcount()
    df.loc[row >= 12, "durability"] = np.nan
    df.to_csv(tmp_path / "planned.csv", index=False)
    df.to_parquet(tmp_path / "planned.parquet", index=False, row_group_size=100)
    df[row < 12].to_csv(tmp_path / "measured.csv", index=False)
    df[row < 12].to_parquet(tmp_path / "measured.parquet", index=False, row_group_size=100)
    tiny = ["--epochs", "2", "--hidden", "8", "--layers", "1", "--ensemble", "1", "--no-trend-line"]
    weights = {}
    for name, more in (
        ("measured.csv", []),
        ("planned.csv", []),
        ("measured.parquet", ["--chunk-specimens", "3"]),
        ("planned.parquet", ["--chunk-specimens", "3"]),
    ):
        out = tmp_path / f"{name}.safetensors"
        r = CliRunner().invoke(app, ["train", str(tmp_path / name), "-o", str(out), *tiny, *more])
        assert r.exit_code == 0, r.output
        if name == "planned.csv":
            dropped = f"{int((row >= 12).sum()):,} row(s) after their specimen's last measured durability"
            assert f"{dropped} are not trained on" in r.stderr
        weights[name] = load_file(out)
    for a, b in (("planned.csv", "measured.csv"), ("planned.parquet", "measured.parquet")):
        assert weights[a].keys() == weights[b].keys()
        assert all(weights[a][k].equal(weights[b][k]) for k in weights[a]), a


def test_without_validation_specimens_the_scores_are_called_training_scores(coating_slice, tmp_path):
    """Three specimens: none is held out, so the free-running scores are the training specimens'
    own, and the summary, inspect and the warnings say so. (Before, they said "validation RMSE"
    and "widened on the validation specimens" beside "3 train, 0 validation".)"""
    out = tmp_path / "m.safetensors"
    args = ["train", str(coating_slice(3, 30)), "-o", str(out), "--epochs", "2", "--hidden", "8"]
    r = CliRunner().invoke(app, [*args, "--layers", "1", "--ensemble", "1", "--no-trend-line"])
    assert r.exit_code == 0, r.output
    said = " ".join(r.stderr.replace("│", " ").split())  # the table's cells wrap
    assert (
        "3 train, 0 validation" in said
        and "training RMSE" in said
        and "(training RMSE, same warm-up)" in said
    )
    assert "validation RMSE" not in said.replace("val RMSE", "") and "on the validation specimens" not in said
    r = CliRunner().invoke(app, ["inspect", str(out)])
    shown = r.stdout + r.stderr
    assert r.exit_code == 0 and "training RMSE" in shown and "validation RMSE" not in shown, shown
