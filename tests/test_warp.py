"""train --warp: each epoch, each training specimen read at a pace of its own (warp.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from durability_cli import api, warp
from durability_cli.cli import app
from durability_cli.data import Tensors


def series(times, values, conditions=None, observed=None):
    """Tensors of specimens given as lists of times and values (padded), and their lengths."""
    B, T = len(times), max(len(t) for t in times)
    time = np.full((B, T), np.nan)
    y = torch.zeros(B, T)
    x = torch.zeros(B, T, 1)
    seen = torch.zeros(B, T, dtype=torch.bool)
    for b, (t, v) in enumerate(zip(times, values, strict=True)):
        time[b, : len(t)] = t
        y[b, : len(v)] = torch.tensor(v, dtype=torch.float32)
        x[b, : len(t), 0] = torch.tensor(conditions[b] if conditions else t, dtype=torch.float32)
        seen[b, : len(t)] = True if observed is None else torch.tensor(observed[b])
    valid = torch.zeros(B, T, dtype=torch.bool)
    lengths = torch.tensor([len(t) for t in times])
    valid[torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)] = True
    dt = (torch.arange(T).unsqueeze(0) < (lengths - 1).unsqueeze(1)).float()  # 0 at the last row
    t = Tensors(x, dt, y * seen, seen, valid, torch.zeros(B, 0), torch.zeros(B, 0, dtype=torch.long))
    return t, lengths, warp.elapsed(time)


def test_pace_one_reads_the_specimen_as_measured():
    t, lengths, since = series([[0, 1, 3, 4], [5, 7, 8]], [[1.0, 0.9, 0.7, 0.6], [1.0, 0.8, 0.75]])
    out, n = warp.warped(t, lengths, since, torch.ones(2, dtype=torch.float64))
    assert n.tolist() == [4, 3]
    for name in ("y", "x", "observed", "valid"):
        assert torch.equal(getattr(out, name), getattr(t, name)), name


def test_a_faster_specimen_is_its_later_rows_on_its_own_time_stamps():
    # y = 10 - t measured every hour for 7 h; at pace 2 row i reads the value at 2 i hours
    t, lengths, since = series([list(range(7))], [[10.0 - h for h in range(7)]])
    out, n = warp.warped(t, lengths, since, torch.tensor([2.0], dtype=torch.float64))
    assert n.tolist() == [4]  # 0, 2, 4, 6 h: rows past the last measurement are dropped
    assert out.y[0, :4].tolist() == [10.0, 8.0, 6.0, 4.0]
    assert out.x[0, :4, 0].tolist() == [0.0, 2.0, 4.0, 6.0]  # the conditions of the rows read
    assert out.valid[0].tolist() == [True] * 4 + [False] * 3
    assert out.dt[0].tolist() == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]  # the last row has no next row
    assert not out.observed[0, 4:].any() and not out.y[0, 4:].any()


def test_a_slower_specimen_interpolates_between_measured_rows():
    # irregular time stamps: 0, 1, 3, 4 h; at pace 0.5 the rows read 0, 0.5, 1.5, 2 h
    t, lengths, since = series([[0, 1, 3, 4]], [[1.0, 0.8, 0.4, 0.2]], observed=[[True, True, False, True]])
    out, n = warp.warped(t, lengths, since, torch.tensor([0.5], dtype=torch.float64))
    assert n.tolist() == [4]  # a slower specimen keeps every row, covering less of its path
    assert out.y[0, :2].tolist() == pytest.approx([1.0, 0.9])
    # 1.5 h and 2 h lie between the row at 1 h and an unmeasured row: not known, not scored
    assert out.observed[0].tolist() == [True, True, False, False]
    assert torch.equal(out.dt, t.dt)  # the step lengths stay the specimen's own


def test_paces_are_log_uniform_and_their_own_stream():
    a = warp.paces(4000, 0.3, seed=1, epoch=5)
    assert torch.equal(a, warp.paces(4000, 0.3, seed=1, epoch=5))
    assert not torch.equal(a, warp.paces(4000, 0.3, seed=1, epoch=6))
    logs = torch.log(a)
    assert logs.min() >= -math.log(1.3) and logs.max() <= math.log(1.3)
    assert abs(float(logs.mean())) < 0.02  # as many faster as slower


def test_warp_trains_other_weights_from_the_same_validation(coating_slice, tmp_path):
    data = coating_slice(8, 25)
    tiny = dict(hidden=8, layers=1, trend_line=False, epochs=3, ensemble=1)
    plain = api.train(data, **tiny)
    warped = api.train(data, **tiny, warp=0.3)
    assert warped.summary["val_specimens"] == plain.summary["val_specimens"]
    assert warped.bundle.train_config.warp == 0.3
    curves = [[e["val_rmse"] for e in m.summary["history"]] for m in (plain, warped)]
    assert curves[0] != curves[1]
    # a warp too small to move a row between its neighbours trains the run without it: the
    # paces have their own random stream, the run's other draws are unchanged
    tiny_warp = api.train(data, **tiny, warp=1e-12)
    again = [e["val_rmse"] for e in tiny_warp.summary["history"]]
    assert again == pytest.approx(curves[0], rel=1e-5)


def test_warp_on_the_command_line(runner, coating_slice, tmp_path):
    out = tmp_path / "w.safetensors"
    args = ["train", str(coating_slice(8, 25)), "-o", str(out), "--epochs", "2", "--hidden", "8"]
    r = runner.invoke(app, [*args, "--warp", "0.2", "--ensemble", "1"])
    assert r.exit_code == 0, r.stderr
    assert "read at a pace of its own, 0.8333-1.2 x as measured (--warp)" in " ".join(r.stderr.split())
    r = runner.invoke(app, ["inspect", str(out), "--json"])
    assert '"warp": 0.2' in r.stdout
    assert json.loads(r.stdout)["summary"]["warp"] == {"paces": [0.8333, 1.2]}
    bad = tmp_path / "bad.safetensors"
    r = runner.invoke(app, ["train", str(coating_slice(8, 25)), "-o", str(bad), "--warp", "1.5"])
    assert r.exit_code == 2 and "--warp must be in [0, 1]" in r.stderr
    assert not bad.exists()


def test_a_latent_model_is_not_warped(coating_slice):
    # its table row of z is its specimen's own pace: the run is the one without --warp
    data = coating_slice(8, 25)
    tiny = dict(hidden=8, layers=1, trend_line=False, epochs=2, ensemble=1, latent=2)
    plain = api.train(data, **tiny)
    warped = api.train(data, **tiny, warp=0.3)
    assert "latent model" in warped.summary["warp"]["skipped"]
    curves = [[e["val_rmse"] for e in m.summary["history"]] for m in (plain, warped)]
    assert curves[0] == curves[1]
