"""train --refit-all: each member trained again on every specimen to the epoch its validation
chose (durability_cli/refit_all.py)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import durability_cli as dur
from durability_cli.cli import app
from durability_cli.training import TrainingInterrupted

TINY = dict(hidden=8, layers=1, epochs=5, trend_line=False, latent=0)


def _weights(bundle) -> list[dict[str, torch.Tensor]]:
    return [m.model.state_dict() for m in bundle.members]


def _same(a, b) -> bool:
    return all(
        x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
        for x, y in zip(_weights(a), _weights(b), strict=True)
    )


@pytest.fixture(scope="module")
def data(coating_slice) -> Path:
    return coating_slice(12, 40)


@pytest.fixture(scope="module")
def plain(data):
    return dur.train(data, ensemble=2, **TINY).bundle


@pytest.fixture(scope="module")
def refitted(data):
    return dur.train(data, ensemble=2, refit_all=True, **TINY).bundle


def test_each_member_trains_again_on_every_specimen_to_its_chosen_epoch(plain, refitted):
    """The first pass is the run without --refit-all (same seeds): what its validation measured
    is kept, member by member; the weights and the scaling are those of a fit on all 12."""
    assert not _same(plain, refitted)
    for a, b in zip(plain.members, refitted.members, strict=True):
        assert (
            b.train_config == replace(a.train_config, refit_all=True) and b.train_config.val_fraction == 0.2
        )
        for key in ("best_epoch", "best_val_rmse", "scale_calibration", "eol_warp", "val_specimens"):
            assert b.summary[key] == a.summary[key], key
        assert b.summary["refit_all"]["epochs"] == a.summary["best_epoch"] >= 1
        assert b.summary["refit_all"]["specimens"] == 12 > len(a.summary["train_specimens"])
        # the scaling is fitted on every specimen now, the validation ones included
        assert b.scaler.to_dict() != a.scaler.to_dict()
        assert b.summary["scale_refit"]["rows"] > a.summary["scale_refit"]["rows"]
    ens = refitted.summary["ensemble"]
    assert ens["scale_refit"] == [m.summary["scale_refit"] for m in refitted.members]
    assert refitted.summary["train_seconds"] > plain.summary["train_seconds"] * 0.5


def test_the_refit_is_the_planned_run_on_every_specimen_stopped_at_the_epoch(data, refitted, tmp_path):
    """Member 1 again: its seed, all 12 specimens and its planned epochs (the same cosine), stopped
    by Ctrl-C after its chosen epoch: the checkpoint holds the refit member's weights (all but the
    scale head, which training fits again after its last epoch)."""
    from durability_cli.artifact import CHECKPOINT_FORMAT, read_safetensors

    member = refitted.members[1]
    k = member.summary["best_epoch"]
    ckpt = tmp_path / "planned.ckpt"

    def stop(log):
        if log.epoch >= k:
            raise KeyboardInterrupt

    cfg = member.train_config
    with pytest.raises(TrainingInterrupted):
        dur.train(
            data,
            checkpoint=ckpt,
            on_epoch=stop,
            ensemble=1,
            seed=cfg.seed,
            val_fraction=0.0,
            batch_size=cfg.batch_size,
            patience=cfg.epochs,
            **TINY,
        )
    tensors, _ = read_safetensors(ckpt, expect=CHECKPOINT_FORMAT)
    kept = member.model.state_dict()
    differ = [name for name, value in kept.items() if not torch.equal(tensors[f"model.{name}"], value)]
    assert differ == ["scale_head.weight", "scale_head.bias"]  # refitted after training, as train does


@pytest.mark.parametrize("jobs", [1, 2])
def test_an_interrupted_refit_resumes_from_the_model_validation_chose(data, refitted, tmp_path, jobs):
    """Stopped in member 1's refit (with jobs 2, member 2 refits in a second process meanwhile,
    and is stopped too): the first pass's model is kept, and the resumed run, in one process or
    two, refits it into the uninterrupted model."""
    ckpt = tmp_path / "run.ckpt"

    def stop(log):
        if not math.isfinite(log.val_rmse):  # the refit's epochs validate on nothing
            raise KeyboardInterrupt

    with pytest.raises(
        TrainingInterrupted, match=r"refitting member 1 of 2 .* --resume .*run\.ckpt runs the refit"
    ):
        dur.train(data, ensemble=2, refit_all=True, checkpoint=ckpt, on_epoch=stop, jobs=jobs, **TINY)
    assert Path(f"{ckpt}.chosen").exists()
    resumed = dur.train(
        data, ensemble=2, refit_all=True, checkpoint=ckpt, resume=ckpt, jobs=3 - jobs, **TINY
    ).bundle
    assert _same(resumed, refitted)


def test_two_jobs_refit_the_members_at_once_into_the_same_model(data, tmp_path, same_weights):
    """train --refit-all --jobs 2: member 2 refits in a second process while member 1 refits
    here; the file holds the tensors and the refit's summary of --jobs 1, and the start lines and
    the refit row say where each refitted and how long the two took at once."""
    from durability_cli.artifact import load_bundle

    flags = "--hidden 8 --layers 1 --epochs 5 --no-trend-line --latent 0 --ensemble 2 --refit-all".split()
    out, text = {}, {}
    for jobs in ("1", "2"):
        out[jobs] = tmp_path / f"j{jobs}.safetensors"
        r = CliRunner().invoke(app, ["train", str(data), "-o", str(out[jobs]), *flags, "--jobs", jobs])
        assert r.exit_code == 0, r.stderr
        text[jobs] = " ".join(r.stderr.split())
    assert same_weights(out["1"], out["2"])
    one, two = load_bundle(out["1"]), load_bundle(out["2"])
    for a, b in zip(one.members, two.members, strict=True):
        assert a.summary["refit_all"]["epochs"] == b.summary["refit_all"]["epochs"]
        assert a.summary["scale_refit"] == b.summary["scale_refit"]
    assert two.summary["refit_all_processes"] == 2 and "refit_all_processes" not in one.summary
    assert "member(s) 2 refit at the same time in a second process" in text["2"]
    assert (
        "Refitting member 2 of 2" in text["2"]
        and "refitted at the same time in a second process" in text["2"]
    )
    assert "in 2 processes at the same time) (--refit-all)" in text["2"]
    assert "second process" not in text["1"] and "Refitting member 2 of 2" in text["1"]


def test_the_longest_refits_are_shared_out_first():
    """Members (their refit epochs) to processes: longest first, each to the least loaded."""
    from durability_cli.refit_all import _shares

    assert _shares([10, 3, 8, 2, 7], 2) == [[0, 1, 3], [2, 4]]  # 15 and 15 epochs
    assert _shares([10, 3, 8, 2, 7], 1) == [[0, 1, 2, 3, 4]]
    assert _shares([4, 4, 4], 8) == [[0], [1], [2]]  # no more processes than members
    assert _shares([1, 9], 2) == [[0], [1]]  # member 1's share trains here


def test_the_command_says_what_the_refit_did_and_the_model_forecasts(data, tmp_path):
    out = tmp_path / "m.safetensors"
    args = ["train", str(data), "-o", str(out), "--hidden", "8", "--layers", "1", "--epochs", "3"]
    ckpt = tmp_path / "m.ckpt"
    r = CliRunner().invoke(
        app, [*args, "--no-trend-line", "--ensemble", "1", "--refit-all", "--checkpoint", str(ckpt)]
    )
    assert r.exit_code == 0, r.stderr
    assert not ckpt.exists() and not Path(f"{ckpt}.chosen").exists()  # a finished run leaves neither
    shown = " ".join(CliRunner().invoke(app, ["inspect", str(out)]).stderr.split())
    assert "the model trained again on all 12 specimens" in shown
    text = " ".join(r.stderr.split())
    assert "Refitting member 1 of 1 on all 12 specimens" in text
    assert "the model trained again on all 12 specimens to the epoch its validation chose" in text
    fc = tmp_path / "fc.csv"
    r = CliRunner().invoke(
        app, ["forecast", str(data), "-m", str(out), "-o", str(fc), "--horizon", "5", "--hold-conditions"]
    )
    assert r.exit_code == 0, r.stderr
    assert pd.read_csv(fc)["durability_mean"].notna().any()


def test_without_validation_specimens_there_is_nothing_to_refit(data):
    m = dur.train(data, ensemble=1, val_fraction=0.0, refit_all=True, **TINY).bundle
    assert "no validation specimens" in m.summary["refit_all"]["skipped"]
