"""train --chunk-specimens: training on a table held one group of specimens at a time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from durability_cli.artifact import CHECKPOINT_FORMAT, load_bundle, read_safetensors
from durability_cli.cli import app
from durability_cli.config import ModelConfig, TrainConfig
from durability_cli.data import to_series, to_tensors
from durability_cli.schema import load_dataset
from durability_cli.streaming import FrameGroups
from durability_cli.training import eol_warps, free_run_rmse, train_groups

# one model: the default ensemble would train stacked on the whole table and one member after the
# other in groups, equal only up to rounding (tests/test_stacked.py)
SMALL = ["--hidden", "8", "--layers", "1", "--epochs", "3", "--patience", "100", "--quiet", "--ensemble", "1"]


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def summary(path: Path) -> dict:
    r = invoke("inspect", path, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def tables(coating_slice, tmp_path_factory) -> dict[str, Path]:
    """20 coating specimens x 50 rows as CSV, as one Parquet file (row groups of 150 rows, so a
    group's specimens straddle row groups), and as a folder partitioned by material (the
    specimens' rows then come out of id order: the reader's random-access path)."""
    csv = coating_slice(20, 50)
    folder = tmp_path_factory.mktemp("tables")
    df = pd.read_csv(csv)
    df.to_parquet(folder / "t.parquet", index=False, row_group_size=150)
    df.to_parquet(folder / "hive", partition_cols=["material"], index=False)
    return {"csv": csv, "parquet": folder / "t.parquet", "hive": folder / "hive"}


def test_one_group_trains_exactly_as_the_whole_table(tables, tmp_path, same_weights):
    whole, grouped = tmp_path / "whole.safetensors", tmp_path / "grouped.safetensors"
    assert invoke("train", tables["parquet"], "-o", whole, "--static", "material", *SMALL).exit_code == 0
    r = invoke(
        "train", tables["parquet"], "-o", grouped, "--static", "material", *SMALL, "--chunk-specimens", 20
    )
    assert r.exit_code == 0, r.output
    assert same_weights(whole, grouped)
    a, b = summary(whole)["summary"], summary(grouped)["summary"]
    assert (
        a["best_val_rmse"] == b["best_val_rmse"]
        and a["history"][-1]["val_rmse"] == b["history"][-1]["val_rmse"]
    )
    assert a["eol_warp"] == b["eol_warp"] and len(a["eol_warp"]["train_log_w"]) > 0


def test_every_reader_gives_the_same_groups_and_model(tables, tmp_path, same_weights):
    """CSV (read whole, cut in groups), one Parquet file and a partitioned folder (read a group
    at a time): the same groups of 6 specimens, so the same model to the bit. (One candidate: the
    line's choice in groups is test_one_group_trains_exactly_as_the_whole_table's.)"""
    paths = {}
    for name, source in tables.items():
        paths[name] = tmp_path / f"{name}.safetensors"
        args = ["--static", "material", *SMALL, "--chunk-specimens", 6, "--no-trend-line"]
        r = invoke("train", source, "-o", paths[name], *args)
        assert r.exit_code == 0, r.output
    assert same_weights(paths["csv"], paths["parquet"])
    assert same_weights(paths["csv"], paths["hive"])


def test_small_groups_keep_the_split_the_scaling_and_the_scores(tables, tmp_path, same_weights):
    """Groups of 3 (4 validation specimens: validation is read again group by group): the split,
    the scaling and the envelope are the whole table's, and the reported validation RMSE is the
    saved model's on the whole validation set. (One candidate, as the test above.)"""
    whole, grouped = tmp_path / "whole.safetensors", tmp_path / "grouped.safetensors"
    one = ["--static", "material", *SMALL, "--no-trend-line"]
    assert invoke("train", tables["hive"], "-o", whole, *one).exit_code == 0
    r = invoke("train", tables["hive"], "-o", grouped, *one, "--chunk-specimens", 3)
    assert r.exit_code == 0, r.output
    a, b = summary(whole), summary(grouped)
    for key in ("train_specimens", "val_specimens", "n_rows", "n_specimens", "envelope", "val_context"):
        assert a["summary"][key] == b["summary"][key], key
    # the baselines' validation RMSEs, pooled over the groups: the whole table's
    assert set(b["summary"]["val_baseline_rmse"]) == {"persistence", "linear", "exponential", "mixed_effects"}
    # the mixed-effects path, fitted on the training specimens a group at a time: the whole table's
    assert b["summary"]["mixed_effects"]["degree"] == a["summary"]["mixed_effects"]["degree"]
    assert b["summary"]["mixed_effects"]["mean"] == pytest.approx(
        a["summary"]["mixed_effects"]["mean"], rel=1e-9
    )
    for name, value in a["summary"]["val_baseline_rmse"].items():
        assert b["summary"]["val_baseline_rmse"][name] == pytest.approx(value, rel=1e-9), name
    # the same statistics, summed in another order
    assert b["scaler"].keys() == a["scaler"].keys()
    assert b["scaler"]["static_vocab"] == a["scaler"]["static_vocab"] == {"material": ["A", "B"]}
    for key in ("cond_mean", "cond_std", "dt_mean", "dt_std", "y_mean", "y_std", "step_scale"):
        assert np.allclose(b["scaler"][key], a["scaler"][key], rtol=1e-12, atol=0), key
    assert not same_weights(whole, grouped)  # other batches: another model

    bundle = load_bundle(grouped)
    ds = load_dataset(str(tables["csv"]), schema=bundle.schema)
    series = to_series(ds)
    val = [series.ids.index(i) for i in b["summary"]["val_specimens"]]
    t = to_tensors(series.take(np.array(val)), bundle.scaler)
    rmse, pers = free_run_rmse(bundle.model, t, bundle.scaler, b["summary"]["val_context"])
    assert b["summary"]["best_val_rmse"] == pytest.approx(rmse, rel=1e-5)
    assert b["summary"]["val_persistence_rmse"] == pytest.approx(pers, rel=1e-5)
    # the paces of the end-of-life interval (eol_warp.py), read group by group: the whole table's
    ctx = b["summary"]["val_context"]
    for key, names in (("log_w", "val_specimens"), ("train_log_w", "train_specimens")):
        part = series.take(np.array([series.ids.index(i) for i in b["summary"][names]]))
        whole_table = eol_warps(
            bundle.model, [(part, to_tensors(part, bundle.scaler))], bundle.scaler, ctx, 10**6
        )
        assert b["summary"]["eol_warp"][key] == pytest.approx(whole_table, abs=1e-9), key
        first = eol_warps(bundle.model, [(part, to_tensors(part, bundle.scaler))], bundle.scaler, ctx, 3)
        assert first == pytest.approx(whole_table[: len(first)]) and len(first) <= 3  # the limit holds


def test_groups_know_each_specimen_s_length_as_the_whole_table_does(tmp_path):
    """8 specimens of 150 rows and 6 of 700: the whole table's median length is 150, their mean
    386. Read a few specimens at a time, the groups gave every specimen the mean, so the latent's
    automatic choice (validation warm-ups of 50 rows or more) took a latent the whole table did not
    (`train --chunk-specimens 100` on 14 specimens: another model). Both readers count each one."""
    from durability_cli.config import TrainConfig
    from durability_cli.latent_choice import specimen_lengths, typical_warmup
    from durability_cli.streaming import SpecimenGroups

    rows = [(f"S{k:02d}", t, 1.0 - 0.001 * t) for k in range(14) for t in range(150 if k < 8 else 700)]
    table = pd.DataFrame(rows, columns=["specimen_id", "time", "durability"]).sample(frac=1, random_state=0)
    table.to_parquet(tmp_path / "mixed.parquet")
    table.to_csv(tmp_path / "mixed.csv", index=False)
    whole = load_dataset(str(tmp_path / "mixed.parquet"))
    want = [150] * 8 + [700] * 6
    assert list(specimen_lengths(whole)) == want
    for groups in (
        SpecimenGroups(str(tmp_path / "mixed.parquet"), whole.schema, size=3),
        FrameGroups(load_dataset(str(tmp_path / "mixed.csv")), 3),
    ):
        assert list(groups.ids) == [f"S{k:02d}" for k in range(14)]
        assert list(specimen_lengths(groups)) == want
        assert typical_warmup(groups, TrainConfig()) == typical_warmup(whole, TrainConfig()) == 30


def test_batches_stay_full_across_groups(tables, tmp_path):
    """Groups of 5 specimens with batches of 4: the leftovers of a group wait for the next one,
    so an epoch takes ceil(training specimens / 4) optimiser steps, as on the whole table."""
    ds = load_dataset(str(tables["csv"]), static=["material"])
    # one model without the line's choice: the checkpoint is that one run's
    cfg = TrainConfig(epochs=2, batch_size=4, chunk_specimens=5, patience=100, ensemble=1)
    ckpt = tmp_path / "m.ckpt"
    tiny = ModelConfig(hidden=8, layers=1, trend_line=False)
    bundle = train_groups(FrameGroups(ds, 5), tiny, cfg, checkpoint=ckpt)
    n_train = len(bundle.summary["train_specimens"])
    _, info = read_safetensors(ckpt, expect=CHECKPOINT_FORMAT)
    assert n_train == 16 and info["step"] == 2 * -(-n_train // 4)


def test_warp_reads_each_group_at_paces_of_its_own(tables):
    """--warp on a table trained a group at a time: each group's specimens warped as they are read
    (the same validation, other weights than the run without it). One model each, without the
    line's choice (the default would train 2 candidates of 5 members, one after the other)."""
    ds = load_dataset(str(tables["csv"]), static=["material"])
    runs = [
        train_groups(
            FrameGroups(ds, 5),
            ModelConfig(hidden=8, layers=1, trend_line=False),
            TrainConfig(epochs=2, batch_size=4, chunk_specimens=5, patience=100, warp=w, ensemble=1),
        )
        for w in (0.0, 0.3)
    ]
    plain, warped = (b.summary for b in runs)
    assert warped["val_specimens"] == plain["val_specimens"]
    assert warped["warp"] == {"paces": [0.7692, 1.3]} and "warp" not in plain
    assert [e["train_loss"] for e in warped["history"]] != [e["train_loss"] for e in plain["history"]]


def test_a_bad_row_in_a_later_group_stops_before_training(tables, tmp_path):
    df = pd.read_parquet(tables["parquet"])
    last = df.index[df.specimen_id == df.specimen_id.max()][10]
    df.loc[last, "time"] = df.loc[last - 1, "time"]  # a repeated time in the last specimen
    bad = tmp_path / "bad.parquet"
    df.to_parquet(bad, index=False, row_group_size=150)
    out = tmp_path / "m.safetensors"
    r = invoke("train", bad, "-o", out, *SMALL, "--chunk-specimens", 4)
    assert r.exit_code == 2
    assert r.output.startswith(f"Error: {bad}") and r.output.count("\n") == 1
    assert f"row {last + 1}" in r.output or f"rows {last} and {last + 1}" in r.output, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.parquet"]


def test_resume_needs_the_same_groups(tables, tmp_path, interrupt_at_checkpoint):
    out = tmp_path / "m.safetensors"
    ckpt = tmp_path / "m.ckpt"
    args = [
        "train",
        str(tables["parquet"]),
        "-o",
        str(out),
        *SMALL,
        "--checkpoint",
        str(ckpt),
        "--chunk-specimens",
        "4",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "durability_cli", *args, "--epochs", "40"]
    code, stderr = interrupt_at_checkpoint(cmd, ckpt, env=env)
    assert code == 130, stderr
    r = invoke(*args[:-1], "5", "--resume", ckpt, "--epochs", "40")
    assert (
        r.exit_code == 2 and "other training options (chunk_specimens 4 in the checkpoint, 5 now)" in r.output
    )


def test_interrupt_then_resume_equals_uninterrupted(tables, tmp_path, interrupt_at_checkpoint, same_weights):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def cmd(out, *extra):
        return [sys.executable, "-m", "durability_cli", "train", str(tables["hive"]), "-o", str(out)] + [
            "--hidden", "8", "--layers", "1", "--batch-size", "2", "--epochs", "6", "--patience", "100",
            "--quiet", "--chunk-specimens", "3", "--ensemble", "1", "--no-trend-line", *extra,
        ]  # fmt: skip

    full = tmp_path / "full.safetensors"
    r = invoke(*cmd(full)[3:])  # the uninterrupted run in this process: the same command line
    assert r.exit_code == 0, r.output
    part = tmp_path / "part.safetensors"
    ckpt = Path(f"{part}.ckpt")
    code, stderr = interrupt_at_checkpoint(cmd(part), ckpt, env=env)
    assert code == 130, stderr
    done = subprocess.run(
        cmd(part, "--resume", str(ckpt)), env=env, timeout=300, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert same_weights(full, part)


def test_group_size_must_be_positive(tables, tmp_path):
    r = invoke("train", tables["parquet"], "-o", tmp_path / "m.safetensors", "--chunk-specimens", 0)
    assert r.exit_code == 2 and "--chunk-specimens must be at least 1" in r.output


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_peak_memory_is_flat_in_the_number_of_specimens(tmp_path, cli_peak):
    """10x the specimens, one epoch, 100 at a time: the peak stays within 1.5x (the scaler's
    and the split's per-specimen arrays are all that grow)."""
    from durability_cli.synthetic import make_coating

    peaks = []
    for n in (300, 3000):
        noisy, _ = make_coating(n_specimens=n, seed=3, missing_fraction=0.0, irregular_fraction=0.0)
        noisy = noisy[noisy.groupby("specimen_id").cumcount() < 40]
        table = tmp_path / f"t{n}.parquet"
        noisy.to_parquet(table, index=False, row_group_size=4_000)
        del noisy
        args = ["train", str(table), "-o", str(tmp_path / f"m{n}.safetensors"), "--epochs", "1"]
        args += "--hidden 8 --layers 1 --batch-size 50 --chunk-specimens 100 --no-trend-line -q".split()
        peaks.append(cli_peak(args))
        assert torch.is_tensor(load_file(tmp_path / f"m{n}.safetensors")["rnn.weight_ih_l0"])
    assert peaks[1] < 1.5 * peaks[0], peaks
