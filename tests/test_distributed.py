"""Data-parallel training in two CPU processes (torchrun, gloo): one model file, close to one process.

Each test starts real torchrun jobs (about 6-8 s each on two cores, most of it importing torch in
three processes), so the file keeps to three jobs and tiny models.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

from durability_cli.cli import app
from durability_cli.parallel import from_env

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
# OMP_NUM_THREADS=1: two ranks on two cores; and no torchrun variables leaking in from outside
ENV = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
ENV["OMP_NUM_THREADS"] = "1"
# one model (the default on this table is an ensemble of 5, which torchrun trains one member after
# the other and one process stacked: equal only up to rounding, tests/test_stacked.py)
TINY = "--epochs 2 --hidden 8 --layers 1 --batch-size 4 --val-context 5 --quiet --ensemble 1".split()


@pytest.fixture(scope="module")
def tiny(coating_slice) -> Path:
    """10 coating specimens x 40 rows: 8 train, 2 validate."""
    return coating_slice(10, 40)


def _torchrun(*args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "durability_cli",
        *args,
    ]


def _summary(path: Path) -> dict:
    r = CliRunner().invoke(app, ["inspect", str(path), "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)["summary"]


def test_two_processes_write_one_model_close_to_one_process(tiny, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    run = subprocess.run(
        _torchrun("train", str(tiny), "-o", str(out / "m.safetensors"), *TINY),
        env=ENV,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr
    # rank 0 wrote the model; nobody left a checkpoint, a temp file or a second model behind
    assert sorted(p.name for p in out.iterdir()) == ["m.safetensors"]
    assert "Traceback" not in run.stderr

    one = tmp_path / "one.safetensors"
    r = CliRunner().invoke(app, ["train", str(tiny), "-o", str(one), *TINY])
    assert r.exit_code == 0, r.output

    two, single = _summary(out / "m.safetensors"), _summary(one)
    # Same global batch of 4 specimens, same shuffled order, same random draws: rank r runs rows
    # r, r+2 of each batch. What differs is only the order of float32 additions (gradients summed
    # per rank, then across ranks) and how long the fused RNN prefix is (it depends on which rows
    # share a forward call), each about 1e-7 relative per step; after a few Adam steps the two
    # runs agree to ~1e-7 (measured), so 1e-4 leaves wide room while a wrong sharding, a double
    # or missing gradient, or a per-rank mean instead of the global one is off by far more.
    assert two["best_val_rmse"] == pytest.approx(single["best_val_rmse"], rel=1e-4)
    for a, b in zip(two["history"], single["history"], strict=True):
        assert a["val_rmse"] == pytest.approx(b["val_rmse"], rel=1e-4)
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["fed_measured"] == b["fed_measured"]  # drawn for the whole batch: exactly equal
    assert two["train_specimens"] == single["train_specimens"]
    wa, wb = load_file(out / "m.safetensors"), load_file(one)
    for key in wb:
        assert (wa[key] - wb[key]).abs().max().item() < 1e-5, key


def test_two_processes_train_from_groups_like_one_process(tiny, tmp_path):
    """--chunk-specimens 1 under torchrun: both ranks read the groups in the same order, cut the
    same batches across groups and add up the validation read group by group. One candidate
    (--no-trend-line): the line's choice under torchrun is the test above's."""
    import pandas as pd

    table = tmp_path / "tiny.parquet"
    pd.read_csv(tiny).to_parquet(table, index=False, row_group_size=64)
    args = ["train", str(table), *TINY, "--chunk-specimens", "1", "--no-trend-line"]
    run = subprocess.run(
        _torchrun(*args, "-o", str(tmp_path / "two.safetensors")),
        env=ENV,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr
    r = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "one.safetensors")])
    assert r.exit_code == 0, r.output
    two, one = _summary(tmp_path / "two.safetensors"), _summary(tmp_path / "one.safetensors")
    assert two["best_val_rmse"] == pytest.approx(one["best_val_rmse"], rel=1e-4)
    assert [h["fed_measured"] for h in two["history"]] == [h["fed_measured"] for h in one["history"]]
    wa, wb = load_file(tmp_path / "two.safetensors"), load_file(tmp_path / "one.safetensors")
    for key in wb:
        assert (wa[key] - wb[key]).abs().max().item() < 1e-5, key


def test_nproc_launcher_interrupt_then_resume_equals_uninterrupted(tiny, tmp_path, interrupt_at_checkpoint):
    """`durability train --nproc 2` starts torchrun; Ctrl-C stops both ranks at the same step,
    and --resume in two processes reproduces the uninterrupted two-process run bit for bit."""
    args = "--hidden 8 --layers 1 --batch-size 2 --epochs 12 --patience 100 --quiet --nproc 2 --ensemble 1 --no-trend-line".split()
    full = tmp_path / "full.safetensors"
    done = subprocess.run(
        [sys.executable, "-m", "durability_cli", "train", str(tiny), "-o", str(full), *args],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr

    part = tmp_path / "part.safetensors"
    ckpt = Path(f"{part}.ckpt")
    cmd = [sys.executable, "-m", "durability_cli", "train", str(tiny), "-o", str(part), *args]
    code, stderr = interrupt_at_checkpoint(cmd, ckpt, env=ENV)
    assert code == 130, stderr
    assert stderr.count("continue with --resume") == 1  # rank 0 says it, rank 1 does not
    assert ckpt.exists() and not part.exists()

    resumed = subprocess.run(
        cmd + ["--resume", str(ckpt)], env=ENV, capture_output=True, text=True, timeout=180
    )
    assert resumed.returncode == 0, resumed.stderr
    assert not ckpt.exists()
    a, b = load_file(full), load_file(part)
    assert a.keys() == b.keys()
    for key in a:
        assert bool((a[key] == b[key]).all()), key


def test_nproc_reports_bad_input_once_before_starting_workers(tiny, tmp_path):
    r = CliRunner().invoke(
        app, ["train", str(tiny), "-o", str(tmp_path / "m.safetensors"), "--target", "nope", "--nproc", "2"]
    )
    assert r.exit_code == 2
    assert r.output.startswith("Error: ") and r.output.count("\n") == 1
    assert not list(tmp_path.iterdir())


def test_nproc_refuses_stdin_and_zero(tiny, tmp_path):
    out = str(tmp_path / "m.safetensors")
    r = CliRunner().invoke(app, ["train", "-", "-o", out, "--nproc", "2"], input=tiny.read_text())
    assert r.exit_code == 2
    assert "cannot come from stdin; pass a file name" in r.output
    r = CliRunner().invoke(app, ["train", str(tiny), "-o", out, "--nproc", "0"])
    assert r.exit_code == 2 and "--nproc must be at least 1, got 0" in r.output


def test_torchrun_environment():
    assert from_env({}) is None
    assert from_env({"WORLD_SIZE": "1", "RANK": "0"}) is None  # one process: the plain path
    master = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}  # torchrun sets them too
    d = from_env({"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "0", **master})
    assert (d.rank, d.world, d.local_rank, d.main) == (2, 4, 0, False)
    with pytest.raises(Exception, match="RANK=4 is outside 0..3"):
        from_env({"WORLD_SIZE": "4", "RANK": "4", **master})
    with pytest.raises(Exception, match="MASTER_ADDR and MASTER_PORT are not set; start it with torchrun"):
        from_env({"WORLD_SIZE": "4", "RANK": "2"})


def test_nproc_starts_torchrun_with_the_options_as_given(tiny, tmp_path, monkeypatch):
    import durability_cli.parallel as parallel

    started = []
    monkeypatch.setattr(parallel, "launch", lambda command: started.append(command) or 0)
    out = str(tmp_path / "m.safetensors")
    given = ["-o", out, "--no-residual", "--static", "material", "--lr", "0.001", "-q", "--threads", "2"]
    r = CliRunner().invoke(app, ["train", str(tiny), "--nproc", "3", *given])
    assert r.exit_code == 0, r.output
    assert started == [
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=3", "-m"]
        + ["durability_cli", "train", str(tiny), "--output", out, "--no-residual", "--lr", "0.001"]
        + ["--quiet", "--static", "material", "--threads", "2"]
    ]
    assert not list(tmp_path.iterdir())  # the launcher itself writes nothing
