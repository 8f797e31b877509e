"""``--latent auto`` (latent_choice.py): where validation warms up on long stretches, the model is
also trained with a per-specimen latent and the one most members validate better is kept, exactly
the model training with that choice alone gives; on short warm-ups one model trains, without it;
an interrupted choice resumes to the same weights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

from durability_cli import latent_choice
from durability_cli.artifact import load_bundle
from durability_cli.cli import app
from durability_cli.config import ModelConfig, TrainConfig
from durability_cli.line_choice import member_val_rmse

SMALL = [
    "--hidden",
    "8",
    "--layers",
    "1",
    "--batch-size",
    "2",
    "--epochs",
    "5",
    "--patience",
    "100",
    "--seed",
    "3",
    "--no-trend-line",
    "--val-context",
    "40",
]


@pytest.fixture(scope="module")
def table(coating_slice) -> Path:
    return coating_slice(8, 60)


def _same_weights(a: Path, b: Path) -> bool:
    x, y = load_file(a), load_file(b)
    return x.keys() == y.keys() and all(bool((x[k] == y[k]).all()) for k in x)


def test_auto_keeps_the_candidate_most_members_validate_better(table, tmp_path):
    """Warm-ups of 40 rows: both models train, the file holds the kept one's latent size (a number)
    and why, the output names the candidate, and its weights are those of training with that
    choice given; the model without the latent is the first candidate's, `--latent 0`'s."""
    runner = CliRunner()
    auto = tmp_path / "auto.safetensors"
    r = runner.invoke(app, ["train", str(table), "-o", str(auto), *SMALL, "--latent", "auto"])
    assert r.exit_code == 0, r.output
    assert "With a per-specimen latent: Ensemble member 1 of 5" in r.stderr
    bundle = load_bundle(auto)
    scores = bundle.summary["latent_val_rmse"]
    assert len(scores["with"]) == len(scores["without"]) == len(bundle.members) == 5
    votes = sum(b < a for a, b in zip(scores["without"], scores["with"], strict=True))
    kept = votes >= 3
    assert bundle.model_config.latent == (latent_choice.AUTO_SIZE if kept else 0)
    assert bundle.model_config.trend_line is False  # --no-trend-line: the candidate keeps it out
    why = bundle.summary["latent_auto"]
    assert why.startswith(
        f"auto: {'with' if kept else 'without'} a latent of 2 (better on {votes} of 5 members"
    )
    assert "warm-ups of 40 rows" in why
    shown = runner.invoke(app, ["inspect", str(auto)])
    text = " ".join((shown.stdout + shown.stderr).replace("│", " ").split())
    assert shown.exit_code == 0 and f"latent choice {why[:40]}" in text
    assert not [e for e in ("", ".without-latent", ".member1") if Path(f"{auto}.ckpt{e}").exists()]
    alone = {}
    for name, size in (("latent", "2"), ("plain", "0")):
        alone[name] = tmp_path / f"{name}.safetensors"
        r = runner.invoke(app, ["train", str(table), "-o", str(alone[name]), *SMALL, "--latent", size])
        assert r.exit_code == 0, r.output
    assert _same_weights(auto, alone["latent" if kept else "plain"])
    scored = {n: member_val_rmse(load_bundle(p)) for n, p in alone.items()}
    assert scored["latent"] == pytest.approx(scores["with"])
    assert scored["plain"] == pytest.approx(scores["without"])


def test_short_warmups_train_one_model_without_the_latent(table):
    """Warm-ups of 10 rows cannot tell a specimen's hidden factors: one training, and why."""
    import durability_cli as dur

    model = dur.train(
        str(table), latent="auto", val_context=10, trend_line=False, hidden=8, layers=1, epochs=2, ensemble=1
    )
    assert model.bundle.model_config.latent == 0
    assert (
        "validation warms up on 10 rows; a latent is tried from 40 rows"
        in model.bundle.summary["latent_auto"]
    )
    assert "latent_val_rmse" not in model.bundle.summary
    tuned = dur.train(str(table), init_from=model, latent="auto", epochs=1)  # keeps the model's shape
    assert tuned.bundle.model_config.latent == 0
    assert tuned.bundle.summary["latent_auto"] == "auto: without a latent, as the model it fine-tunes"


def test_the_warmup_the_gate_reads(table):
    """The median of the validation warm-ups: val_context rows (no more than a specimen holds), a
    share of each specimen's rows, or the automatic 20 % of the median length."""
    import durability_cli as dur

    ds = dur.read(str(table))
    lengths = latent_choice.specimen_lengths(ds)
    assert lengths.tolist() == [60] * 8
    assert latent_choice.typical_warmup(ds, TrainConfig(val_context=45)) == 45
    assert latent_choice.typical_warmup(ds, TrainConfig(val_context=500)) == 60
    assert latent_choice.typical_warmup(ds, TrainConfig(val_context_frac=0.5)) == 30
    assert latent_choice.typical_warmup(ds, TrainConfig()) == 12  # 20 % of 60
    assert np.issubdtype(lengths.dtype, np.integer)


@pytest.mark.parametrize(
    ("given", "line"),
    [("auto", True), (True, True), (False, False)],
)
def test_the_candidate_carries_the_line_unless_it_is_left_out(given, line):
    cfg = latent_choice.candidate_config(ModelConfig(latent="auto", trend_line=given))
    assert cfg.latent == latent_choice.AUTO_SIZE and cfg.trend_line is line
    monotonic = latent_choice.candidate_config(replace(ModelConfig(latent="auto"), monotonic="decreasing"))
    assert monotonic.trend_line is False  # the line cannot sign a --monotonic step


@pytest.mark.parametrize(
    ("value", "message"), [("x", "--latent must be auto or a whole number"), ("65", "between 0 (off) and 64")]
)
def test_a_latent_that_is_not_auto_or_a_size_is_one_error_line(table, tmp_path, value, message):
    out = tmp_path / "m.safetensors"
    r = CliRunner().invoke(app, ["train", str(table), "-o", str(out), "--latent", value])
    assert r.exit_code == 2 and message in r.stderr, r.output
    assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()


def test_latent_auto_from_a_config_file(table, tmp_path):
    """`latent = "auto"` in a TOML config is the flag's auto; a number stays a number."""
    from durability_cli.api import configs
    from durability_cli.config import load_toml

    path = tmp_path / "c.toml"
    path.write_text('[model]\nlatent = "auto"\n')
    assert configs(load_toml(str(path)))[0].latent == "auto"
    path.write_text("[model]\nlatent = 3\n")
    assert configs(load_toml(str(path)))[0].latent == 3


def test_an_interrupted_choice_resumes_to_the_same_model(table, tmp_path, interrupt_at_checkpoint):
    """Stopped while the latent candidate trains (the model without it finished and kept beside the
    checkpoint), `--resume` reads that one and continues the candidate: the same model as an
    uninterrupted run."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def cmd(out: Path, *extra: str) -> list[str]:
        return [sys.executable, "-m", "durability_cli", "train", str(table), "-o", str(out), *SMALL] + [
            "--epochs",
            "30",
            "--ensemble",
            "1",
            "--latent",
            "auto",
            "--quiet",
            *extra,
        ]

    full = tmp_path / "full.safetensors"
    subprocess.run(cmd(full), check=True, env=env, timeout=300)
    part = tmp_path / "part.safetensors"
    ckpt = Path(f"{part}.ckpt")
    first = Path(f"{ckpt}.without-latent")
    code, stderr = interrupt_at_checkpoint(cmd(part), first, env=env, sig=signal.SIGINT)
    assert code == 130, stderr
    assert first.exists() and ckpt.exists() and not part.exists()
    done = subprocess.run(
        cmd(part, "--resume", str(ckpt)), env=env, timeout=300, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert _same_weights(full, part)
    assert load_bundle(part).summary["latent_auto"] == load_bundle(full).summary["latent_auto"]
    assert not first.exists() and not ckpt.exists()
