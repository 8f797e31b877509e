"""``--latent auto`` (the default, latent_choice.py): a latent of 2 with the warm-up's line where
validation warms up on at least 50 rows, none on shorter warm-ups; the model is exactly the one
that choice given explicitly trains, and the file says which and why."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from durability_cli import latent_choice
from durability_cli.artifact import load_bundle
from durability_cli.cli import app
from durability_cli.config import ModelConfig, TrainConfig

SMALL = [
    "--hidden",
    "8",
    "--layers",
    "1",
    "--batch-size",
    "2",
    "--epochs",
    "3",
    "--ensemble",
    "2",
    "--seed",
    "3",
]


@pytest.fixture(scope="module")
def table(coating_slice) -> Path:
    return coating_slice(8, 70)


@pytest.mark.parametrize(
    ("warmup", "latent", "line"),
    [("50", 2, True), ("49", 0, None)],
)
def test_auto_is_the_latent_with_the_line_from_50_warmup_rows(
    table, tmp_path, warmup, latent, line, same_weights
):
    """By default (no --latent): validation warming up on 50 rows gives the model a latent of 2 and
    the line, the same weights as `--latent 2 --trend-line`; on 49 rows no latent, and the line
    left to its own vote, the same weights as `--latent 0`. The file and `inspect` say why."""
    runner = CliRunner()
    auto = tmp_path / "auto.safetensors"
    r = runner.invoke(app, ["train", str(table), "-o", str(auto), *SMALL, "--val-context", warmup])
    assert r.exit_code == 0, r.output
    bundle = load_bundle(auto)
    assert bundle.model_config.latent == latent
    why = bundle.summary["latent_auto"]
    assert f"validation warms up on {warmup} rows" in why
    if latent:
        assert why.startswith("auto: a latent of 2 and the warm-up's line")
        assert bundle.model_config.trend_line is True and "trend_line_auto" not in bundle.summary
        explicit = ["--latent", "2", "--trend-line"]
    else:
        assert why.startswith("auto: without a latent")
        assert "trend_line_auto" in bundle.summary  # the line's own vote ran
        explicit = ["--latent", "0"]
    shown = runner.invoke(app, ["inspect", str(auto)])
    text = " ".join((shown.stdout + shown.stderr).replace("│", " ").split())  # the table, unwrapped
    assert shown.exit_code == 0 and f"latent choice {why[:40]}" in text
    given = tmp_path / "given.safetensors"
    r = runner.invoke(
        app, ["train", str(table), "-o", str(given), *SMALL, "--val-context", warmup, *explicit]
    )
    assert r.exit_code == 0, r.output
    assert same_weights(auto, given)
    assert "latent_auto" not in load_bundle(given).summary  # given, not chosen
    # an automatic ensemble trained one member after the other (a latent's) leaves no member files
    assert not [e for e in ("", ".member1", ".member2") if Path(f"{auto}.ckpt{e}").exists()]


def test_fine_tuning_keeps_the_latent_of_the_model_it_starts_from(table):
    import durability_cli as dur

    model = dur.train(str(table), latent=0, trend_line=False, hidden=8, layers=1, epochs=2, ensemble=1)
    tuned = dur.train(str(table), init_from=model, val_context=60, epochs=1)  # long warm-ups, latent auto
    assert tuned.bundle.model_config.latent == 0
    assert tuned.bundle.summary["latent_auto"] == "auto: without a latent, as the model it fine-tunes"


def test_a_latent_given_on_short_warmups_is_named(table, tmp_path):
    """--latent 2 on warm-ups shorter than the 50 rows from which a latent was measured to help
    trained without a word; the file keeps the median warm-up and train warns."""
    out = tmp_path / "m.safetensors"
    args = ["train", str(table), "-o", str(out), *SMALL, "--latent", "2", "--ensemble", "1"]
    r = CliRunner().invoke(app, [*args, "--val-context", "10"])
    assert r.exit_code == 0, r.output
    assert load_bundle(out).summary["latent_short_warmup"] == 10
    assert (
        "Warning: --latent fits each specimen's hidden factors to its warm-up, and validation warms up on 10 rows"
        in (" ".join(r.output.split()))
    )
    r = CliRunner().invoke(app, [*args, "--val-context", "50"])
    assert r.exit_code == 0 and "latent_short_warmup" not in load_bundle(out).summary
    assert "Warning: --latent fits" not in r.output


def test_the_warmup_the_rule_reads(table):
    """The median of the validation warm-ups: val_context rows (no more than a specimen holds), a
    share of each specimen's rows, or the automatic 20 % of the median length."""
    import durability_cli as dur

    ds = dur.read(str(table))
    lengths = latent_choice.specimen_lengths(ds)
    assert lengths.tolist() == [70] * 8 and np.issubdtype(lengths.dtype, np.integer)
    assert latent_choice.typical_warmup(ds, TrainConfig(val_context=45)) == 45
    assert latent_choice.typical_warmup(ds, TrainConfig(val_context=500)) == 70
    assert latent_choice.typical_warmup(ds, TrainConfig(val_context_frac=0.5)) == 35
    assert latent_choice.typical_warmup(ds, TrainConfig()) == 14  # 20 % of 70


@pytest.mark.parametrize(("given", "line"), [("auto", True), (True, True), (False, False)])
def test_the_latent_carries_the_line_unless_it_is_left_out(given, line):
    cfg = latent_choice.candidate_config(ModelConfig(latent="auto", trend_line=given))
    assert cfg.latent == latent_choice.AUTO_SIZE and cfg.trend_line is line
    monotonic = latent_choice.candidate_config(replace(ModelConfig(latent="auto"), monotonic="decreasing"))
    assert monotonic.trend_line is False  # the line cannot sign a --monotonic step


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("x", "--latent must be auto or a whole number"),
        ("65", "--latent must be auto or between 0 (off) and 64"),
    ],
)
def test_a_latent_that_is_not_auto_or_a_size_is_one_error_line(table, tmp_path, value, message):
    out = tmp_path / "m.safetensors"
    r = CliRunner().invoke(app, ["train", str(table), "-o", str(out), "--latent", value])
    assert r.exit_code == 2 and message in r.stderr, r.output
    assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()


def test_latent_auto_from_a_config_file(tmp_path):
    """`latent = "auto"` in a TOML config is the flag's auto; a number stays a number; a trained
    model's file must hold a number."""
    from durability_cli.api import configs
    from durability_cli.config import load_toml, saved_model_config
    from durability_cli.errors import InputError

    path = tmp_path / "c.toml"
    path.write_text('[model]\nlatent = "auto"\n')
    assert configs(load_toml(str(path)))[0].latent == "auto"
    path.write_text("[model]\nlatent = 3\n")
    assert configs(load_toml(str(path)))[0].latent == 3
    with pytest.raises(InputError, match="a trained model's is a number"):
        saved_model_config({"latent": "auto"})


def test_a_network_is_built_with_a_latent_size_not_auto():
    """`auto` is the training run's to decide: the network itself needs a number."""
    from durability_cli.model import FeedbackRNN

    with pytest.raises(ValueError, match="latent a number"):
        FeedbackRNN(ModelConfig(trend_line=False), n_conditions=1)
    assert FeedbackRNN(ModelConfig(trend_line=False, latent=2, hidden=8), n_conditions=1).n_static == 2
