"""--amp: the network in bfloat16 (torch.autocast), on the CPU here; the same code runs on a GPU."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

from durability_cli.cli import app
from durability_cli.data import bfloat16_rnn_works

# --amp needs a CPU whose oneDNN runs the LSTM in bfloat16 (AVX512-BF16 or AMX); elsewhere the
# command refuses it in one line (test_amp_is_refused_where_the_cpu_cannot_run_it)
needs_bf16 = pytest.mark.skipif(not bfloat16_rnn_works(), reason="this CPU cannot run an LSTM in bfloat16")

SMALL = ["--hidden", "16", "--layers", "1", "--epochs", "4", "--batch-size", "4", "--quiet"]


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def data(coating_slice) -> Path:
    return coating_slice(12, 60)


@pytest.fixture(scope="module")
def models(data, tmp_path_factory) -> dict[str, Path]:
    """The default ensemble of 5 with and without --amp (whose members train one after the other),
    one candidate each: the line's choice would train both twice."""
    folder = tmp_path_factory.mktemp("amp")
    out = {"fp32": folder / "fp32.safetensors", "amp": folder / "amp.safetensors"}
    for name, path in out.items():
        amp = ["--amp"] if name == "amp" else []
        r = invoke("train", data, "-o", path, *SMALL, "--no-trend-line", "--device", "cpu", *amp)
        assert r.exit_code == 0, r.output
    return out


def _summary(path: Path) -> dict:
    r = invoke("inspect", path, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


@needs_bf16
def test_training_with_amp_is_recorded_and_learns_as_well(models):
    fp32, amp = _summary(models["fp32"]), _summary(models["amp"])
    assert amp["train_config"]["amp"] is True and fp32["train_config"]["amp"] is False
    wa, wb = load_file(models["amp"]), load_file(models["fp32"])
    assert any(not bool((wa[k] == wb[k]).all()) for k in wa)  # the bfloat16 arithmetic did run
    a, b = amp["summary"]["best_val_rmse"], fp32["summary"]["best_val_rmse"]
    assert a == pytest.approx(b, rel=0.2), (a, b)


@needs_bf16
def test_forecast_with_amp_stays_close_to_float32(models, data, tmp_path):
    outs = {}
    for name in ("fp32", "amp"):
        outs[name] = tmp_path / f"{name}.csv"
        args = [
            "forecast",
            data,
            "-m",
            models["fp32"],
            "--horizon",
            "30",
            "--hold-conditions",
            "--samples",
            "50",
        ]
        r = invoke(*args, "-o", outs[name], "-q", "--device", "cpu", *(["--amp"] if name == "amp" else []))
        assert r.exit_code == 0, r.output
    a, b = pd.read_csv(outs["fp32"]), pd.read_csv(outs["amp"])
    assert list(a.columns) == list(b.columns) and len(a) == len(b) == 12 * 30
    diff = np.abs(a["durability_mean"] - b["durability_mean"])
    assert 0 < diff.max() < 0.01, diff.max()  # bfloat16 moved it, by less than the noise (0.01)
    assert np.abs(a["durability_p90"] - b["durability_p90"]).max() < 0.02


@needs_bf16
def test_evaluate_with_amp_scores_like_float32(models, data):
    scores = {}
    for name in ("fp32", "amp"):
        r = invoke(
            "evaluate",
            data,
            "-m",
            models["fp32"],
            "--context",
            30,
            "-q",
            *(["--amp"] if name == "amp" else []),
        )
        assert r.exit_code == 0, r.output
        scores[name] = json.loads(r.stdout)
    rmse = {k: v["models"]["model"]["rmse"] for k, v in scores.items()}
    assert rmse["amp"] == pytest.approx(rmse["fp32"], rel=0.05), rmse


@pytest.mark.skipif(bfloat16_rnn_works(), reason="this CPU runs an LSTM in bfloat16")
def test_amp_is_refused_where_the_cpu_cannot_run_it(data, tmp_path):
    out = tmp_path / "m.safetensors"
    r = invoke("train", data, "-o", out, *SMALL, "--device", "cpu", "--amp")
    assert r.exit_code == 2, r.output
    assert "--amp: this CPU cannot run the recurrent layer in bfloat16" in r.output
    assert not out.exists() and not Path(f"{out}.ckpt").exists()
