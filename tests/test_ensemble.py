"""train --ensemble N: N members in one model file, forecasts that mix them, resumable training."""

from __future__ import annotations

import dataclasses
import json
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from safetensors.torch import load_file

from durability_cli import api
from durability_cli.cli import app
from durability_cli.errors import InputError
from durability_cli.training import TrainingInterrupted

TINY = dict(epochs=2, hidden=8, layers=1, trend_line=False)  # one candidate (auto: test_line_choice.py)
TINY_FLAGS = ["--epochs", "2", "--hidden", "8", "--layers", "1"]


@pytest.fixture(scope="module")
def ensemble_file(small, tmp_path_factory) -> Path:
    """An ensemble of 3 tiny members trained through the command line (read-only)."""
    from typer.testing import CliRunner

    out = tmp_path_factory.mktemp("ensemble") / "ens.safetensors"
    history = out.with_suffix(".history.csv")
    args = ["train", str(small), "-o", str(out), *TINY_FLAGS, "--ensemble", "3", "--history", str(history)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.stderr
    # the whole table in memory: the members train together (stacked.py), one start line for all
    assert "Ensemble of 3 members trained together" in r.stderr and "3 members (seeds 0, 1, 2)" in r.stderr
    assert "--ensemble 5 trains" not in " ".join(r.stderr.split())
    return out


def _alone(bundle):
    """A member as a model of its own."""
    return api.Model(dataclasses.replace(bundle, others=[]))


def test_ensemble_file_holds_every_member(ensemble_file, runner):
    model = api.load(ensemble_file)
    members = model.bundle.members
    assert [m.train_config.seed for m in members] == [0, 1, 2]
    # each member drew its own validation specimens from its seed
    assert len({tuple(m.summary["val_specimens"]) for m in members}) > 1
    # and its own weights
    w = [m.model.head.weight.detach() for m in members]
    assert not bool((w[0] == w[1]).all())
    # inspect names each member's best epoch, so a member that never improved stands out
    text = runner.invoke(app, ["inspect", str(ensemble_file)])
    best = " / ".join(str(m.summary["best_epoch"]) for m in members)
    assert f"best epochs {best}" in " ".join(text.stderr.split()), text.stderr
    r = runner.invoke(app, ["inspect", str(ensemble_file), "--json"])
    assert r.exit_code == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["format_version"] == 2
    assert info["summary"]["ensemble"]["members"] == 3
    assert len(info["members"]) == 2
    single = sum(p.numel() for p in members[0].model.parameters())
    assert info["parameters"] == 3 * single
    history = pd.read_csv(ensemble_file.with_suffix(".history.csv"))
    assert sorted(history["member"].unique()) == [1, 2, 3]
    assert (history.groupby("member")["epoch"].max() == 2).all()


def test_ensemble_mean_is_the_members_average(ensemble_file, plan):
    model = api.load(ensemble_file)
    col = "durability_mean"
    ens = model.forecast(plan, samples=0).table[col].to_numpy()
    alone = [_alone(m).forecast(plan, samples=0).table[col].to_numpy() for m in model.bundle.members]
    np.testing.assert_allclose(ens, np.mean(alone, axis=0), rtol=0, atol=1e-12)
    assert np.std(alone, axis=0).max() > 0  # the members do disagree


@pytest.mark.parametrize("options", [{}, {"latent": 1}, {"feedback": "sample"}])
def test_ensemble_paths_come_from_every_member(coating_slice, ensemble_file, options):
    from durability_cli.data import to_series
    from durability_cli.forecasting import ForecastConfig, last_observed, rollout
    from durability_cli.schema import validate

    data = coating_slice(8, 25)
    if options:  # each way a member draws its paths: z draws, DeepAR-style sampled feedback
        model = api.train(data, ensemble=2, epochs=1, hidden=8, layers=1, **options)
    else:
        model = api.load(ensemble_file)
    plan = pd.read_csv(data)
    plan.loc[plan.groupby("specimen_id").cumcount() >= 12, "durability"] = np.nan
    series = to_series(validate(plan, model.schema, source="plan"))
    last = last_observed(series)
    cfg = ForecastConfig(samples=7)
    mean, paths = rollout(model.bundle, series, last, cfg)
    assert np.isfinite(paths[:, :, 12:]).all() and np.isnan(paths[:, :, :12]).all()
    members = model.bundle.members
    for k, member in enumerate(members):
        own_mean, own = rollout(dataclasses.replace(member, others=[]), series, last, cfg)
        pick = np.arange(k, 7, len(members))
        # path s of the ensemble is path s of member s mod N (same draws, same spread), moved
        # from the member's mean path onto the ensemble's
        np.testing.assert_allclose(
            paths[:, pick], own[:, pick] + (mean - own_mean)[:, None, :], rtol=0, atol=1e-5
        )
        assert np.abs(mean - own_mean)[:, 12:].max() > 0


def test_ensemble_forecast_and_evaluate_through_the_cli(ensemble_file, plan, small, runner, tmp_path):
    out = tmp_path / "fc.csv"
    r = runner.invoke(
        app, ["forecast", str(plan), "-m", str(ensemble_file), "--threshold", "0.6", "-o", str(out)]
    )
    assert r.exit_code == 0, r.stderr
    fc = pd.read_csv(out)
    assert {"durability_p10", "durability_p90"} <= set(fc.columns)
    assert (fc["durability_p10"] <= fc["durability_p90"]).all()
    r = runner.invoke(app, ["evaluate", str(small), "-m", str(ensemble_file), "--context", "20", "--json"])
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["models"]["model"]["rmse"] > 0


# Stacked (the members together, one checkpoint) and one after the other (--chunk-specimens: the
# members' finished files beside the checkpoint); `stop` = the epoch logs before Ctrl-C.
@pytest.mark.parametrize(("options", "stop"), [({}, 1), ({"chunk_specimens": 4}, 3)])
def test_interrupted_ensemble_resumes_to_the_same_weights(coating_slice, tmp_path, options, stop):
    data = coating_slice(8, 25)
    full = api.train(data, ensemble=2, **TINY, **options)
    together = not options
    assert full.summary["ensemble"]["trained_together"] is together
    ckpt = tmp_path / "run.ckpt"
    calls = []

    def interrupt(log):
        calls.append(log.epoch)
        if len(calls) == stop:  # stacked: epoch 1 of both; else member 2's first epoch
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        api.train(data, ensemble=2, checkpoint=ckpt, on_epoch=interrupt, **TINY, **options)
    assert Path(f"{ckpt}.member1").exists() is not together and not Path(f"{ckpt}.member2").exists()
    resumed = api.train(data, ensemble=2, checkpoint=ckpt, resume=ckpt, **TINY, **options)
    for a, b in zip(full.bundle.members, resumed.bundle.members, strict=True):
        sa, sb = a.model.state_dict(), b.model.state_dict()
        assert all(bool((sa[k] == sb[k]).all()) for k in sa)
        untimed = [[{**e, "seconds": 0} for e in m.summary["history"]] for m in (a, b)]
        assert untimed[0] == untimed[1]
    # a checkpoint of another ensemble (other seeds) is refused in one line
    match = (
        r"other training options \(seed \d+ in the checkpoint, \d+ now\)"
        if together
        else "not one of this ensemble's members"
    )
    with pytest.raises(InputError, match=match):
        api.train(data, ensemble=2, seed=5, checkpoint=ckpt, resume=ckpt, **TINY, **options)
    # a stacked checkpoint cannot go on one member at a time, and the other way round
    other = {"chunk_specimens": 4} if together else {}
    match = "members train together" if together else "other options"
    with pytest.raises(InputError, match=match):
        api.train(data, ensemble=2, checkpoint=ckpt, resume=ckpt, **TINY, **other)


def _rewrite_metadata(src: Path, dst: Path, change) -> None:
    raw = src.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    meta = json.loads(header["__metadata__"]["durability"])
    change(meta)
    header["__metadata__"]["durability"] = json.dumps(meta)
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    dst.write_bytes(struct.pack("<Q", len(blob)) + blob + raw[8 + n :])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m["members"][0].pop("scaler"), "ensemble member 1's metadata is incomplete"),
        (lambda m: m.__setitem__("members", "two"), "member list is malformed"),
        (lambda m: m["members"].pop(), "unexpected ['members.2."),
        (lambda m: m["members"][1]["scaler"].__setitem__("y_std", -1.0), "(ensemble member 2)"),
        (lambda m: m["summary"]["ensemble"].__setitem__("best_val_rmse", ["x"]), "ensemble best_val_rmse"),
        (lambda m: m["scaler"].__setitem__("step_mean", "fast"), "step_mean"),
    ],
)
def test_damaged_ensemble_files_are_refused_in_one_line(
    ensemble_file, plan, runner, tmp_path, change, message
):
    bad = tmp_path / "bad.safetensors"
    _rewrite_metadata(ensemble_file, bad, change)
    out = tmp_path / "fc.csv"
    r = runner.invoke(app, ["forecast", str(plan), "-m", str(bad), "-o", str(out)])
    assert r.exit_code == 2, r.stderr
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_single_models_keep_format_1(small, runner, tmp_path):
    single = tmp_path / "one.safetensors"
    r = runner.invoke(app, ["train", str(small), "-o", str(single), *TINY_FLAGS, "--ensemble", "1"])
    assert r.exit_code == 0, r.stderr
    assert json.loads(load_file_metadata(single))["format_version"] == 1
    assert not any(k.startswith("members.") for k in load_file(single))


def load_file_metadata(path: Path) -> str:
    raw = Path(path).read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8 : 8 + n])["__metadata__"]["durability"]


def test_ensemble_option_is_checked(small, runner, tmp_path):
    out = tmp_path / "m.safetensors"
    for bad in ("-1", "65"):
        r = runner.invoke(app, ["train", str(small), "-o", str(out), "--ensemble", bad])
        assert r.exit_code == 2 and "--ensemble must be between 0 and 64" in r.stderr
    r = runner.invoke(app, ["train", str(small), "-o", str(out), "--ensemble", "3", "--seed", str(2**63 - 2)])
    assert r.exit_code == 2 and "leaves no room" in r.stderr
    assert not out.exists()


def test_a_run_that_ends_still_improving_says_so(small, runner, tmp_path):
    from durability_cli.render import epoch_warnings

    improving = {"best_epoch": 95, "epochs_run": 100, "stopped": "max epochs"}
    assert "`epochs` 200" in epoch_warnings(improving, 100)[0]  # (--epochs 200 on the command line)
    assert epoch_warnings({**improving, "best_epoch": 60}, 100) == []
    assert epoch_warnings({**improving, "stopped": "early stop: ..."}, 100) == []
    out = tmp_path / "m.safetensors"
    r = runner.invoke(app, ["train", str(small), "-o", str(out), *TINY_FLAGS, "--ensemble", "1"])
    assert r.exit_code == 0, r.stderr
    best = api.load(out).summary["best_epoch"]
    assert ("still improving at the end" in r.stderr) == (best == 2)
    # 10 specimens, 2 in validation: one model, asked for, gets a note that suggests an ensemble
    assert "--ensemble 5 trains 5 seeds" in " ".join(r.stderr.split())


def test_auto_trains_five_members_where_few_specimens_choose_the_epoch(
    small, coating_slice, runner, tmp_path
):
    """``--ensemble 0`` (the default) trains 5 members when fewer than 15 validation specimens
    choose the best epoch (stacked, or one after the other where the options need it), one
    model with 15 or more, and says which in the summary, the inspect table and the file."""
    from durability_cli.config import TrainConfig

    assert TrainConfig().ensemble == 0
    few = tmp_path / "few.safetensors"
    r = runner.invoke(app, ["train", str(small), "-o", str(few), *TINY_FLAGS])
    assert r.exit_code == 0, r.stderr
    said = " ".join(r.stderr.split())
    assert "auto: 5" in said and "--ensemble 5 trains" not in said
    s = api.load(few).summary
    assert s["ensemble"]["members"] == 5 and s["ensemble"]["trained_together"] is True
    assert s["ensemble"]["seeds"] == [0, 1, 2, 3, 4]
    assert s["ensemble_auto"].startswith(
        "auto: 5 members, since only 2 specimens choose each one's best epoch"
    )
    shown = runner.invoke(app, ["inspect", str(few)])
    assert "auto: 5" in shown.stdout + shown.stderr
    # 48 specimens: 0.3 x 48 = 14.4 -> 14 validating, still 5 members; 0.32 x 48 -> 15, one model
    table = str(coating_slice(48, 12))
    many = tmp_path / "many.safetensors"
    for share, members in (("0.3", 5), ("0.32", 1)):
        args = ["train", table, "-o", str(many), *TINY_FLAGS, "--epochs", "1", "--val-fraction", share]
        r = runner.invoke(app, args)
        assert r.exit_code == 0, r.stderr
        s = api.load(many).summary
        assert (s.get("ensemble") or {}).get("members", 1) == members
    assert s["ensemble_auto"] == "auto: one model (15 validation specimens)"
    # few specimens and --ema, whose members train one after the other: still 5 (each way of
    # training a table gives the same model), at 5 x one model's time
    ema = tmp_path / "ema.safetensors"
    r = runner.invoke(app, ["train", str(small), "-o", str(ema), *TINY_FLAGS, "--ema", "0.9"])
    assert r.exit_code == 0, r.stderr
    s = api.load(ema).summary
    assert s["ensemble"]["members"] == 5 and s["ensemble"]["trained_together"] is False
    assert "(--ensemble 1: one model, 1/5 of the time)" in s["ensemble_auto"]
    # fine-tuning keeps the members of the model it starts from
    tuned = tmp_path / "tuned.safetensors"
    args = ["train", str(small), "-o", str(tuned), "--init-from", str(ema), "--epochs", "1"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.stderr
    assert api.load(tuned).summary["ensemble_auto"] == "auto: the 5 member(s) of the model it fine-tunes"
    assert api.load(tuned).summary["ensemble"]["members"] == 5


def test_plot_history_draws_every_member(ensemble_file, runner, tmp_path, figures):
    out = tmp_path / "history.png"
    r = runner.invoke(app, ["plot", "history", str(ensemble_file), "-o", str(out)])
    assert r.exit_code == 0, r.stderr
    assert out.stat().st_size > 0
    fig = figures[-1]
    assert "member 1 of 3" in fig.axes[0].get_title()
    grey = [line for ax in fig.axes for line in ax.get_lines() if line.get_linewidth() == 0.9]
    assert len(grey) == 2 and all(len(line.get_xdata()) == 2 for line in grey)


def test_calibrate_scales_every_member(ensemble_file, coating_slice, tmp_path):
    """`durability calibrate` on an ensemble: factors measured on the ensemble's own band (centred
    on the members' average) that every member's spread takes, and the file keeps its members."""
    from typer.testing import CliRunner

    from durability_cli.artifact import load_bundle

    df = pd.read_csv(coating_slice(20, 40))
    held = tmp_path / "held.csv"
    df[~df.specimen_id.isin(sorted(df.specimen_id.unique())[:10])].to_csv(held, index=False)
    out = tmp_path / "cal.safetensors"
    r = CliRunner().invoke(
        app, ["calibrate", str(held), "-m", str(ensemble_file), "--context", "20", "-o", str(out), "-q"]
    )
    assert r.exit_code == 0, r.stderr
    block = json.loads(r.stdout)
    before, after = load_bundle(ensemble_file), load_bundle(out)
    assert len(after.members) == len(before.members) == 3
    assert after.summary["calibration"]["factors"] == block["factors"]  # the ensemble's, on its band
    for b, a in zip(before.members, after.members, strict=True):
        assert a.summary.get("scale_calibration") == b.summary.get("scale_calibration")
    ev = api.load(out).evaluate(str(held), context=20, baselines=False, bounds=(None, None))
    assert ev.report["models"]["model"]["coverage"]["80"] >= 0.8


def test_joint_selection_keeps_one_epoch_where_the_members_mean_is_lowest(coating_slice, runner, tmp_path):
    """--val-select joint: every member keeps the epoch at which the mean of the members' own
    validation RMSEs was lowest (from their histories), and the summary says so; a run whose
    members train one after the other (--ema) chooses each its own, and says that."""
    data = coating_slice(12, 60)
    flags = ["--hidden", "8", "--layers", "1", "--ensemble", "3", "--no-trend-line"]
    # 25 epochs at a high learning rate: chosen each on its own, these members keep epochs 10, 18 and 12
    fast = ["--epochs", "25", "--lr", "0.05"]
    out = tmp_path / "joint.safetensors"
    r = runner.invoke(app, ["train", str(data), "-o", str(out), *flags, *fast, "--val-select", "joint", "-q"])
    assert r.exit_code == 0, r.stderr
    model = api.load(out)
    members = [model.bundle, *model.bundle.others]
    curves = np.array([[h["val_rmse"] for h in m.summary["history"]] for m in members])  # [members, epochs]
    chosen = int(np.argmin(curves.mean(axis=0))) + 1
    assert [m.summary["best_epoch"] for m in members] == [chosen] * 3
    block = model.summary["ensemble"]
    assert block["val_select"] == "joint" and block["best_epoch"] == [chosen] * 3
    assert block["best_val_rmse"] == pytest.approx(curves[:, chosen - 1].tolist())  # each its own RMSE
    assert f"one epoch for all (--val-select joint): epoch {chosen}" in " ".join(
        runner.invoke(app, ["inspect", str(out)]).stderr.split()
    )
    alone = tmp_path / "alone.safetensors"
    r = runner.invoke(
        app,
        [
            "train",
            str(data),
            "-o",
            str(alone),
            *flags,
            "--epochs",
            "2",
            "--val-select",
            "joint",
            "--ema",
            "0.5",
            "-q",
        ],
    )
    assert r.exit_code == 0, r.stderr
    block = api.load(alone).summary["ensemble"]
    assert not block["trained_together"] and block["val_select"] == "each"
    r = runner.invoke(
        app, ["train", str(data), "-o", str(tmp_path / "bad.safetensors"), "--val-select", "both"]
    )
    assert r.exit_code == 2 and "'both' is not one of" in r.stderr
    assert not (tmp_path / "bad.safetensors").exists()
