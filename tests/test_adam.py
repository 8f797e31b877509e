"""durability_cli/adam.py: torch.optim.Adam's arithmetic without torch._dynamo's import."""

from __future__ import annotations

import copy
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch

from durability_cli.adam import Adam

ROOT = Path(__file__).resolve().parents[1]


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = torch.nn.LSTM(3, 8, batch_first=True)
        self.head = torch.nn.Linear(8, 1)
        self.table = torch.nn.Parameter(torch.randn(5, 2))  # like the latent's table: a group of its own

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out).squeeze(-1).sum() + (self.table**2).sum()


def _groups(net):
    network = [p for name, p in net.named_parameters() if name != "table"]
    return [{"params": network}, {"params": [net.table], "lr_scale": 3.0, "weight_decay": 0.0}]


def _steps(net, optimizer, start: int, stop: int):
    for step in range(start, stop):
        gen = torch.Generator().manual_seed(step)
        for group in optimizer.param_groups:  # as training.py sets the schedule's rate each step
            group["lr"] = 1e-2 / (1 + step) * group.get("lr_scale", 1.0)
        optimizer.zero_grad(set_to_none=True)
        net(torch.randn(4, 6, 3, generator=gen)).backward()
        optimizer.step()


def _pair():
    torch.manual_seed(0)
    ours = _Net()
    theirs = _Net()
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))


def test_the_same_weights_as_torch_adam_bit_for_bit():
    ours, theirs = _pair()
    a = Adam(_groups(ours), lr=1e-2, weight_decay=1e-3)
    b = torch.optim.Adam(_groups(theirs), lr=1e-2, weight_decay=1e-3)
    _steps(ours, a, 0, 25)
    _steps(theirs, b, 0, 25)
    assert _same(ours, theirs)
    moved = sum(
        float((p - q).detach().abs().sum())
        for p, q in zip(ours.parameters(), _pair()[0].parameters(), strict=True)
    )
    assert moved > 0.1  # the steps did move the weights
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["state"].keys() == sb["state"].keys()
    for idx, slots in sb["state"].items():
        for key, value in slots.items():
            assert torch.equal(sa["state"][idx][key], value), (idx, key)
            assert sa["state"][idx][key].dtype == value.dtype
    for ga, gb in zip(sa["param_groups"], sb["param_groups"], strict=True):
        assert ga["params"] == gb["params"]
        assert {k: ga[k] for k in ("lr", "betas", "eps", "weight_decay")} == {
            k: gb[k] for k in ("lr", "betas", "eps", "weight_decay")
        }
        assert ga.get("lr_scale") == gb.get("lr_scale")


@pytest.mark.parametrize("first", ["torch", "ours"])
def test_a_saved_state_resumes_in_either_optimiser(first):
    """A checkpoint written before this class (torch.optim.Adam's state_dict) resumes here, and
    this class's state_dict is torch's layout."""
    ours, theirs = _pair()
    make = {"torch": torch.optim.Adam, "ours": Adam}
    other = "ours" if first == "torch" else "torch"
    a = make[first](_groups(ours), lr=1e-2, weight_decay=1e-3)
    _steps(ours, a, 0, 10)
    b = make[other](_groups(theirs), lr=1e-2, weight_decay=1e-3)
    theirs.load_state_dict(ours.state_dict())
    b.load_state_dict(copy.deepcopy(a.state_dict()))  # as a checkpoint holds it: not the same tensors
    _steps(ours, a, 10, 20)
    _steps(theirs, b, 10, 20)
    assert _same(ours, theirs)


def test_a_state_of_other_groups_is_refused():
    ours, theirs = _pair()
    a = Adam(_groups(ours))
    _steps(ours, a, 0, 2)
    b = Adam(list(theirs.parameters()))  # one group where the saved state has two
    with pytest.raises(ValueError, match="other parameter groups"):
        b.load_state_dict(copy.deepcopy(a.state_dict()))  # as a checkpoint holds it: not the same tensors


def test_train_and_forecast_do_not_import_torch_dynamo(tmp_path):
    """The point of the class: torch.optim imports torch._dynamo (1.5-2 s of every training
    process's start). A process that trains (stacked members and the scale head's refit
    included) and forecasts must not."""
    table = pd.read_csv(ROOT / "sample_data" / "coating.csv")
    table[table.specimen_id.isin(table.specimen_id.unique()[:6])].to_csv(tmp_path / "small.csv", index=False)
    script = textwrap.dedent(
        """
        import sys
        from durability_cli.cli import app
        train = "train small.csv --static material --epochs 1 --ensemble 2 -o m.safetensors --quiet"
        forecast = "forecast small.csv -m m.safetensors --horizon 5 --hold-conditions --samples 10"
        for args in (train.split(), forecast.split() + ["-o", "fc.csv", "--quiet"]):
            try:
                app(args)
            except SystemExit as exc:
                assert exc.code == 0, (args, exc.code)
        print("torch._dynamo" in sys.modules)
        """
    )
    env = {"DURABILITY_JOBS": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    r = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "False", r.stdout
    assert (tmp_path / "fc.csv").stat().st_size > 0
