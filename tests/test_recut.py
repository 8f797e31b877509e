"""train --recut: training batches cut into shorter steps after the warm-up (recut.py)."""

from __future__ import annotations

import json

import torch

from durability_cli import api
from durability_cli.cli import app
from durability_cli.data import Tensors
from durability_cli.recut import PIECES, recut

STD = 0.7  # the scaler's sd of log step lengths


def batch(lengths=(7, 5), seed=0):
    """Two padded specimens with distinct conditions, steps and values; warm-ups of 3 and 2 rows."""
    g = torch.Generator().manual_seed(seed)
    B, T = len(lengths), max(lengths)
    valid = torch.arange(T).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    has_next = torch.zeros_like(valid)
    has_next[:, :-1] = valid[:, 1:]
    dt = torch.where(has_next, torch.randn(B, T, generator=g), torch.zeros(B, T))
    y = torch.where(valid, torch.randn(B, T, generator=g), torch.zeros(B, T))
    observed = valid.clone()
    observed[0, 4] = False  # an unmeasured row inside the first specimen
    y = torch.where(observed, y, torch.zeros(()))
    x = torch.randn(B, T, 2, generator=g)
    t = Tensors(x, dt, y, observed, valid, torch.zeros(B, 0), torch.zeros(B, 0, dtype=torch.long))
    pos = torch.arange(T).unsqueeze(0)
    feed = (observed & (pos < torch.tensor([[3], [2]]))) | ~valid
    feed[0, 5] = True  # a measured value fed in the free zone (scheduled sampling)
    return t, feed


def test_share_zero_draws_nothing_and_changes_nothing():
    t, feed = batch()
    gen = torch.Generator().manual_seed(3)
    before = gen.get_state()
    out, out_feed = recut(t, feed, 0.0, STD, gen)
    assert out is t and out_feed is feed
    assert torch.equal(gen.get_state(), before)


def times(dt: torch.Tensor, rows: int) -> torch.Tensor:
    """Each row's time (float64) from its series' scaled log step lengths."""
    steps = torch.exp(dt[:rows].double() * STD)
    return torch.cat([steps.new_zeros(1), torch.cumsum(steps[:-1], 0)])


def test_a_cut_batch_is_the_same_test_in_shorter_steps():
    t, feed = batch()
    cut, cut_feed = recut(t, feed, 1.0, STD, torch.Generator().manual_seed(5))
    assert cut.y.shape[1] > t.y.shape[1]  # some step was cut
    for b in range(2):
        n, rows = int(t.valid[b].sum()), int(cut.valid[b].sum())
        assert bool(cut.valid[b, :rows].all()) and not bool(cut.valid[b, rows:].any())
        assert bool(cut_feed[b, rows:].all())  # padding feeds its zeros, as batch_feed makes it
        old, new = times(t.dt[b], n), times(cut.dt[b], rows)
        # every original row comes back once, in order, at its own time ...
        orig = torch.tensor([int(torch.argmin((new - v).abs())) for v in old])
        assert torch.allclose(new[orig], old, rtol=1e-5, atol=1e-6)
        assert bool((orig[1:] > orig[:-1]).all()) and int(orig[-1]) == rows - 1
        assert bool(((orig[1:] - orig[:-1]) <= PIECES).all())
        # ... with its measurement, its conditions and its feed
        assert torch.equal(cut.y[b, orig], t.y[b, :n])
        assert torch.equal(cut.observed[b, orig], t.observed[b, :n])
        assert torch.equal(cut.x[b, orig], t.x[b, :n])
        assert torch.equal(cut_feed[b, orig], feed[b, :n])
        # the rows inserted after a row hold its conditions, cut its step into equal pieces,
        # and are neither measured nor fed
        for j, (lo, hi) in enumerate(zip(orig[:-1].tolist(), orig[1:].tolist(), strict=True)):
            assert all(torch.equal(cut.x[b, i], t.x[b, j]) for i in range(lo, hi))
            assert torch.allclose(cut.dt[b, lo:hi], cut.dt[b, lo].expand(hi - lo))
            assert not bool(cut.observed[b, lo + 1 : hi].any()) and not bool(cut_feed[b, lo + 1 : hi].any())
        # the warm-up (3 and 2 fed rows) comes first, as it was
        warm = (3, 2)[b]
        assert torch.equal(orig[:warm], torch.arange(warm))


def test_steps_inside_the_warm_up_are_never_cut():
    t, feed = batch()
    for seed in range(20):
        cut, cut_feed = recut(t, feed, 1.0, STD, torch.Generator().manual_seed(seed))
        # specimen 0 warms up on rows 0-2: its first three new rows are those rows, fed
        assert torch.equal(cut.y[0, :3], t.y[0, :3]) and bool(cut_feed[0, :3].all())
        assert torch.equal(cut.dt[0, :2], t.dt[0, :2])
        assert torch.equal(cut.dt[1, :1], t.dt[1, :1])


def test_recut_trains_other_weights_from_the_same_validation(coating_slice):
    data = coating_slice(8, 25)
    tiny = dict(hidden=8, layers=1, trend_line=False, latent=0, epochs=3, ensemble=1)
    plain = api.train(data, **tiny)
    cut = api.train(data, **tiny, recut=1.0)
    assert cut.summary["val_specimens"] == plain.summary["val_specimens"]
    assert cut.bundle.train_config.recut == 1.0
    curves = [[e["val_rmse"] for e in m.summary["history"]] for m in (plain, cut)]
    assert curves[0] != curves[1]
    # a share too small to cut any batch trains the run without it: the cuts have their own
    # random stream, the run's other draws are unchanged
    never = api.train(data, **tiny, recut=1e-12)
    assert [e["val_rmse"] for e in never.summary["history"]] == curves[0]


def test_recut_on_the_command_line(runner, coating_slice, tmp_path):
    out = tmp_path / "r.safetensors"
    data = str(coating_slice(8, 25))
    args = ["train", data, "-o", str(out), "--epochs", "2", "--hidden", "8", "--ensemble", "2"]
    r = runner.invoke(app, [*args, "--recut", "0.5", "--no-trend-line", "--latent", "0"])
    assert r.exit_code == 0, r.stderr
    r = runner.invoke(app, ["inspect", str(out), "--json"])
    assert json.loads(r.stdout)["train_config"]["recut"] == 0.5
    bad = tmp_path / "bad.safetensors"
    r = runner.invoke(app, ["train", data, "-o", str(bad), "--recut", "1.5"])
    assert r.exit_code == 2 and "--recut must be in [0, 1]" in r.stderr
    assert not bad.exists()
