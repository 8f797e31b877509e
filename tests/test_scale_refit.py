"""The scale head refitted after training (scale_refit.py): it moves the band, never the mean."""

from __future__ import annotations

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from durability_cli import scale_refit
from durability_cli.artifact import load_bundle
from durability_cli.cli import app
from durability_cli.config import ModelConfig, TrainConfig
from durability_cli.data import to_series, to_tensors
from durability_cli.model import head_scale
from durability_cli.schema import load_dataset
from durability_cli.training import scored_rows, train, warmup_feed, warmup_tensor

CONTEXT = 8


@pytest.fixture(scope="module")
def pair(coating_slice):
    """The same run with and without the refit, and the training specimens' tensors."""
    ds = load_dataset(str(coating_slice(12, 40)))
    mcfg = ModelConfig(hidden=8, layers=1, trend_line=False)
    kw = {"epochs": 15, "batch_size": 4, "val_context": CONTEXT, "ensemble": 1}
    on = train(ds, mcfg, TrainConfig(**kw))
    off = train(ds, mcfg, TrainConfig(refit_scale=False, **kw))
    series = to_series(ds)
    keep = [i for i, s in enumerate(series.ids) if s in set(on.summary["train_specimens"])]
    return on, off, to_tensors(series.take(keep), on.scaler)


def _run(bundle, t):
    ctx = warmup_tensor(t, CONTEXT)
    with torch.no_grad():
        return bundle.model.run(t, warmup_feed(t, ctx)), scored_rows(t, ctx)


def test_the_refit_moves_only_the_scale_head(pair):
    on, off, t = pair
    a, b = dict(on.model.named_parameters()), dict(off.model.named_parameters())
    for name in a:
        same = torch.equal(a[name], b[name])
        assert same != name.startswith("scale_head."), name
    (ra, mask), (rb, _) = _run(on, t), _run(off, t)
    assert torch.equal(ra.mean, rb.mean)  # the forecast's mean is the one early stopping kept
    assert not torch.allclose(ra.scale[mask], rb.scale[mask])


@pytest.mark.parametrize("latent", [False, True])
def test_the_written_out_gradient_takes_autograd_s_steps(pair, latent):
    """fit_head's hand-written gradient and Adam land where autograd and torch.optim.Adam do, on
    the features of a trained model's free run (a latent model's: with a column of z paths'
    variances beside them, and its factor fitted too)."""
    import copy

    from benchmarks.after_training import autograd_fit  # the code fit_head replaced

    _, off, t = pair
    ctx = warmup_tensor(t, CONTEXT)
    features, errors = scale_refit.free_run_features(off.model, t, warmup_feed(t, ctx), scored_rows(t, ctx))
    if latent:
        variance = torch.linspace(0.0, 0.05, len(errors), dtype=features.dtype).unsqueeze(1)
        features = torch.cat([features, variance], dim=1)
    ours, theirs = copy.deepcopy(off.model.scale_head), copy.deepcopy(off.model.scale_head)
    spread = scale_refit.fit_head(ours, features, errors, latent)
    expected = autograd_fit(theirs, features, errors, latent)
    moved = (theirs.weight - off.model.scale_head.weight).abs().max()
    assert moved > 1e-3  # the fit did something to compare
    assert torch.allclose(ours.weight, theirs.weight, rtol=1e-4, atol=1e-6)
    assert torch.allclose(ours.bias, theirs.bias, rtol=1e-4, atol=1e-6)
    if latent:
        assert abs(float(spread) - float(expected.detach())) < 1e-5 and abs(float(expected.detach())) > 1e-3
    else:
        assert spread is None


def test_the_refitted_band_holds_80_percent_of_the_training_errors(pair):
    """The head was fitted by the likelihood of these very errors: its 80 % band's factor on them
    lands near 1, nearer than the trained head's, and the file records both as measured here."""
    on, off, t = pair
    record = on.summary["scale_refit"]
    (r, mask), (r_off, _) = _run(on, t), _run(off, t)
    err = (t.y[:, 1:] - r.mean)[mask]
    assert record["rows"] == int(mask.sum()) >= scale_refit.MIN_ROWS

    def factor(scale):
        z = (err.abs() / scale[mask]).double()
        return float(torch.quantile(z, 0.8)) / scale_refit.Z80

    assert factor(r_off.scale) == pytest.approx(record["factor_before"], abs=1e-3)
    assert factor(r.scale) == pytest.approx(record["factor_after"], abs=1e-3)
    assert 0.8 < record["factor_after"] < 1.25
    assert abs(math.log(record["factor_after"])) < abs(math.log(record["factor_before"]))
    assert off.summary["scale_refit"] is None


def test_the_captured_features_rebuild_the_rollout_s_scale(pair):
    on, _, t = pair
    ctx = warmup_tensor(t, CONTEXT)
    feed, mask = warmup_feed(t, ctx), scored_rows(t, ctx)
    features, errors = scale_refit.free_run_features(on.model, t, feed, mask)
    r, _ = _run(on, t)
    with torch.no_grad():
        rebuilt = head_scale(on.model.scale_head, features)
    torch.testing.assert_close(rebuilt, r.scale[mask])
    torch.testing.assert_close(errors, (t.y[:, 1:] - r.mean)[mask])


@pytest.mark.parametrize(("lengths", "limit"), [([5, 0, 17, 3, 40], 16), ([10] * 9, 7), ([3, 4], 100)])
def test_the_fit_keeps_every_kth_row_of_a_table_too_large_for_it(lengths, limit):
    """A large table's rows are thinned as they come (every_kth): what is kept is rows 0, k, 2k,
    ... of the whole, in order, for the smallest power of 2 k that keeps at most ``limit``."""
    whole = torch.arange(sum(lengths), dtype=torch.float32)
    cuts = torch.split(whole, lengths)
    features, errors, n = scale_refit.every_kth(((c.unsqueeze(1) * 2, c) for c in cuts), limit)
    k = 1
    while len(whole[::k]) > limit:
        k *= 2
    assert n == len(whole)
    assert torch.equal(errors, whole[::k]) and torch.equal(features[:, 0], whole[::k] * 2)


@pytest.mark.parametrize("model", [{"loss": "mse"}, {"latent": 2}])
def test_point_models_keep_their_head_and_latent_models_size_their_z_paths_too(coating_slice, model):
    ds = load_dataset(str(coating_slice(8, 30)))
    bundle = train(
        ds,
        ModelConfig(hidden=8, layers=1, trend_line=False, **model),
        TrainConfig(epochs=2, batch_size=4, val_context=CONTEXT, ensemble=1),
    )
    record = bundle.summary["scale_refit"]
    if "loss" in model:
        assert record is None
    else:  # the head and the factor on the spread of z's paths (tests/test_latent.py checks both)
        assert record["rows"] >= scale_refit.MIN_ROWS and record["latent_spread"] > 0


def test_no_refit_scale_through_the_command(coating_slice, tmp_path):
    data = str(coating_slice(10, 30))
    runner = CliRunner()
    summaries = {}
    for flag in ("--refit-scale", "--no-refit-scale"):
        out = tmp_path / f"{flag}.safetensors"
        args = ["train", data, "-o", str(out), "--epochs", "3", "--hidden", "8", "--layers", "1"]
        r = runner.invoke(app, [*args, "--ensemble", "2", "--no-trend-line", "--val-context", "8", flag])
        assert r.exit_code == 0, r.output
        bundle = load_bundle(out)
        assert bundle.train_config.refit_scale is (flag == "--refit-scale")
        summaries[flag] = [m.summary["scale_refit"] for m in bundle.members]
        r = runner.invoke(app, ["inspect", str(out), "--json"])
        assert json.loads(r.stdout)["train_config"]["refit_scale"] is (flag == "--refit-scale")
        r = runner.invoke(app, ["inspect", str(out)])
        shown = " ".join((r.stdout + r.stderr).replace("│", " ").split())
        assert ("2 members' scale heads refitted" in shown) is (flag == "--refit-scale")
    assert all(s is not None and s["rows"] > 0 for s in summaries["--refit-scale"])  # every member's
    assert summaries["--no-refit-scale"] == [None, None]


def test_the_band_row_reads_every_member_and_survives_zero_errors():
    from durability_cli.render import band_text

    members = {
        "scale_refit": [
            {"rows": 100, "factor_before": 0.5, "factor_after": 1.0},
            {"rows": 50, "factor_before": 0.25, "factor_after": 1.0},
        ],
        "scale_calibration": [1.0, 1.2],
    }
    text = band_text({"ensemble": members, "scale_refit": members["scale_refit"][0]})
    assert text == (
        "2 members' scale heads refitted to the training specimens' free-running errors (150 rows): the "
        "80 % band was 2.00-4.00 x as wide as they needed, now 1.00 x; then widened x 1.00-1.20 on the "
        "validation specimens"
    )
    flat = band_text({"scale_refit": {"rows": 60, "factor_before": 0.0, "factor_after": 0.0}})
    assert "(60 rows): they were zero on most rows; then widened x 1.00" in flat
    assert band_text({"scale_refit": None, "scale_calibration": 1.3}) == ""  # --no-refit-scale, old files
    latent = {"rows": 80, "factor_before": 0.5, "factor_after": 1.0, "latent_spread": 0.46}
    assert "(80 rows), the spread of z's draws x 0.46: the 80 % band was 2.00 x" in band_text(
        {"scale_refit": latent}
    )
