"""``train --jobs 2`` on an ensemble whose members train one after the other (``--latent``,
``--ema``, ``--amp``; ensemble.py): a share of the members trains in a second process (aside.py),
and the model is the one a single process writes; an interrupted run resumes from what both
processes left, with either number of processes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from durability_cli.artifact import load_bundle
from durability_cli.cli import app
from durability_cli.ensemble import _shares, process_checkpoint, process_checkpoints
from durability_cli.render import _time_text

# four members of a small model with a moving average of the weights: they cannot train stacked
SMALL = [
    *("--hidden", "8", "--layers", "1", "--batch-size", "2", "--patience", "100", "--seed", "3"),
    *("--ensemble", "4", "--ema", "0.9", "--no-trend-line"),
]


@pytest.fixture(scope="module")
def table(coating_slice) -> Path:
    return coating_slice(8, 30)


def _cmd(table: Path, out: Path, *extra: str) -> list[str]:
    """The command line of the interrupted runs below: 16 epochs a member. Enough that this
    process is still training when the second one has written its first epoch (measured: member 1
    finished and member 3 at epoch 6 of 16; the second process takes 6-8 s to start)."""
    return [sys.executable, "-m", "durability_cli", "train", str(table), "-o", str(out), *SMALL] + [
        *("--epochs", "16", "--quiet", *extra)
    ]


def test_two_jobs_split_the_members_into_the_same_model(table, tmp_path, same_weights):
    """--jobs 2: members 1 and 3 train here, 2 and 4 in a second process, at the same time. The
    file holds the tensors --jobs 1 writes, with the same scores; the start lines say which trains
    where, the summary's time row how long the four took at once, and no checkpoint or member
    file is left behind."""
    runner = CliRunner()
    out = {}
    for jobs in ("1", "2"):
        out[jobs] = tmp_path / f"j{jobs}.safetensors"
        r = runner.invoke(
            app, ["train", str(table), "-o", str(out[jobs]), *SMALL, "--epochs", "4", "--jobs", jobs]
        )
        assert r.exit_code == 0, r.output
        text = " ".join(r.stderr.split())
        assert ("member(s) 2, 4 train at the same time in a second process" in text) is (jobs == "2")
        assert ("Ensemble member 2 of 4" in text) and ("Ensemble member 4 of 4" in text)
    assert same_weights(out["1"], out["2"])
    one, two = (load_bundle(out[j]).summary["ensemble"] for j in ("1", "2"))
    assert one["best_val_rmse"] == two["best_val_rmse"] and one["best_epoch"] == two["best_epoch"]
    assert "processes" not in one and two["processes"] == 2 and two["wall_seconds"] > 0
    said = _time_text(load_bundle(out["2"]).summary)  # the summary's time row
    assert said.endswith("s of training: the members in 2 processes at the same time)")
    assert [p.name for p in tmp_path.iterdir() if ".ckpt" in p.name] == []


def test_members_are_shared_out_so_no_process_overwrites_a_checkpoint_it_has_not_read(tmp_path):
    """A member begun in a process's checkpoint goes to that process, first; the others go in turn
    to the process with the fewest; one process takes everything, whoever began it."""
    ckpt = tmp_path / "run.ckpt"
    for p in (2, 3):
        Path(process_checkpoint(ckpt, p)).write_bytes(b"")
    (tmp_path / "run.ckpt.process").write_bytes(b"")  # not a process's checkpoint
    (tmp_path / "run.ckpt.process1x").write_bytes(b"")
    found = process_checkpoints(ckpt)
    assert found == [(2, str(tmp_path / "run.ckpt.process2")), (3, str(tmp_path / "run.ckpt.process3"))]
    running = {3: str(ckpt), 1: found[0][1], 4: found[1][1]}
    assert _shares([0, 1, 2, 3, 4], running, ckpt, 2) == [[3, 0, 4], [1, 2]]
    assert _shares([0, 1, 2, 3, 4], running, ckpt, 3) == [[3, 0], [1, 2], [4]]
    assert _shares([0, 1, 2, 3, 4], running, ckpt, 1) == [[3, 0, 1, 2, 4]]
    assert _shares([2], {}, None, 2) == [[2]] and _shares([], {}, None, 2) == []


@pytest.fixture(scope="module")
def uninterrupted(table, tmp_path_factory) -> Path:
    """The model an uninterrupted run of ``_cmd`` writes (one process: this one, the same command
    line; the interrupted run and its resumes are the processes tested)."""
    full = tmp_path_factory.mktemp("full") / "full.safetensors"
    r = CliRunner().invoke(app, _cmd(table, full, "--jobs", "1")[3:])
    assert r.exit_code == 0, r.output
    return full


def test_an_interrupted_split_resumes_to_the_same_model_in_one_or_two_processes(
    table, tmp_path, interrupt_at_checkpoint, same_weights, uninterrupted
):
    """SIGINT once the second process has written its checkpoint (CKPT.process2): the parent
    passes the signal on and waits for it, the run exits 130 naming the checkpoint, and both
    processes' checkpoints are kept. Resumed from that layout with --jobs 2, and from a copy of it
    with --jobs 1, the run writes the model of an uninterrupted run and leaves nothing behind."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = tmp_path / "two"
    first.mkdir()
    part = first / "part.safetensors"
    ckpt = Path(f"{part}.ckpt")
    code, stderr = interrupt_at_checkpoint(
        _cmd(table, part, "--jobs", "2"), Path(process_checkpoint(ckpt, 2)), env=env, sig=signal.SIGINT
    )
    assert code == 130, stderr
    assert "interrupted" in stderr and f"--resume {ckpt}" in stderr
    assert ckpt.exists() and Path(process_checkpoint(ckpt, 2)).exists() and not part.exists()
    one = tmp_path / "one"
    shutil.copytree(first, one)
    for folder, jobs in ((first, "2"), (one, "1")):
        out, resume = folder / "part.safetensors", folder / "part.safetensors.ckpt"
        done = subprocess.run(
            _cmd(table, out, "--resume", str(resume), "--jobs", jobs),
            env=env,
            timeout=300,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert same_weights(uninterrupted, out)
        assert [p.name for p in folder.iterdir() if ".ckpt" in p.name] == []


def test_a_fresh_run_does_not_keep_what_an_earlier_one_left(table, tmp_path):
    """A run started anew (no --resume) with a checkpoint whose earlier run left another process's
    checkpoint and a finished member removes them first: a later --resume cannot pick them up. It
    resumes in three processes, each training one member."""
    import durability_cli as dur
    from durability_cli.training import TrainingInterrupted

    ckpt = tmp_path / "run.ckpt"
    stale = [Path(process_checkpoint(ckpt, 2)), Path(f"{ckpt}.member2")]
    for path in stale:
        path.write_bytes(b"left by an earlier run")

    def stop(log):
        raise KeyboardInterrupt

    small = dict(hidden=8, layers=1, epochs=2, ensemble=3, ema=0.9, trend_line=False)
    with pytest.raises(TrainingInterrupted):
        dur.train(str(table), checkpoint=ckpt, on_epoch=stop, **small)
    assert ckpt.exists() and not any(path.exists() for path in stale)
    resumed = dur.train(str(table), checkpoint=ckpt, resume=ckpt, jobs=3, **small).bundle  # two children
    assert len(resumed.members) == 3 and resumed.summary["ensemble"]["processes"] == 3
    assert [m.train_config.seed for m in resumed.members] == [0, 1, 2]
