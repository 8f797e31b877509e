"""Hostile inputs, round two (issue 16), each through the real command line.

Special files as outputs, nesting bombs, gzip bombs, endless devices, model files whose metadata
lies, option and config values out of range, tables no model can be trained on, forecasts that
overflow, and a stray torchrun environment. Every refusal is the one-line, exit-2 refusal of
tests/test_bad_inputs.py (exit 1 for a write error), and leaves no output file behind.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save as st_save
from test_bad_inputs import FAST, Outputs, _parts, _rebuilt, assert_refused, invoke

from durability_cli.parallel import main_process


# -- class 1: outputs that are not regular files -----------------------------------------------------
def test_a_fifo_output_is_written_in_place(tmp_path, model, plan):
    fifo = tmp_path / "out.csv"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    r = invoke("forecast", plan, "-m", model, "-o", fifo, "-q")
    reader.join(timeout=30)
    assert r.exit_code == 0, r.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)  # still the FIFO, not a regular file put in its place
    rows = received[0].decode().splitlines()
    assert rows[0].startswith("specimen_id,time,durability_mean") and len(rows) == 201
    assert sorted(os.listdir(tmp_path)) == ["out.csv"]  # no temporary file left


def test_a_symlink_output_replaces_the_file_it_points_to(tmp_path, model, plan):
    target = tmp_path / "real.csv"
    target.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target.name)
    r = invoke("forecast", plan, "-m", model, "-o", link, "-q")
    assert r.exit_code == 0, r.stderr
    assert link.is_symlink() and os.readlink(link) == "real.csv"
    assert target.read_text().startswith("specimen_id,time,durability_mean")
    assert sorted(os.listdir(tmp_path)) == ["link.csv", "real.csv"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full here")
def test_a_full_device_is_one_line_and_exit_1(model, plan):
    r = invoke("forecast", plan, "-m", model, "-o", "/dev/full", "--output-format", "csv", "-q")
    assert_refused(r, "/dev/full: could not write the output (No space left on device)", code=1)
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_dev_null_stays_a_device(model, plan):
    r = invoke("forecast", plan, "-m", model, "-o", "/dev/null", "--output-format", "csv", "-q")
    assert r.exit_code == 0, r.stderr
    # without a format: a device takes CSV, as stdout does; and /dev/null may take every output
    args = ["-o", "/dev/null", "--threshold", "0.9", "--eol-out", "/dev/null", "--samples", "5", "-q"]
    r = invoke("forecast", plan, "-m", model, *args)
    assert r.exit_code == 0, r.stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_symlink_loops_are_refused(tmp_path, model, plan):
    loop = tmp_path / "loop.csv"
    loop.symlink_to(loop.name)
    out = Outputs(tmp_path, "old.csv", "new.csv")
    assert_refused(invoke("forecast", loop, "-m", model, "-o", out.new), "Too many levels of symbolic links")
    assert_refused(invoke("forecast", plan, "-m", model, "-o", loop), "loop.csv: is a symbolic link loop")
    out.assert_untouched()


# -- class 4 and 5: values out of range refused up front, nothing written ----------------------------
TRAIN_OPTIONS = [
    (["--lr", "nan"], "--lr must be a finite number, got nan"),
    (["--lr", "inf"], "--lr must be a finite number, got inf"),
    (["--weight-decay", "-1"], "--weight-decay must be between 0 and 10, got -1"),
    (["--weight-decay", "nan"], "--weight-decay must be a finite number, got nan"),
    (["--seed", "-1"], "--seed must be between 0 and 9223372036854775807, got -1"),
    (["--seed", str(2**70)], f"--seed must be between 0 and 9223372036854775807, got {2**70}"),
    (["--hidden", "1000000"], "--hidden must be between 1 and 4096, got 1000000"),
    (["--lags", "1000000"], "--lags must be between 1 and 1000, got 1000000"),
    (["--tf-k", "nan"], "--tf-k must be a finite number, got nan"),
    (["--clip", "-1"], "--clip must be positive (the largest gradient norm), got -1.0"),
    (["--threads", "1000000"], "--threads must be between 1 and"),
    (["--latent", "1000"], "--latent must be auto or between 0 (off) and 64, got 1000"),
    (["--latent-prior", "nan"], "--latent-prior must be a finite number, got nan"),
    (
        ["--val-context", "1000"],
        "validation warms up on the first 1000 rows of each specimen, and the longest",
    ),
]


@pytest.mark.parametrize(("args", "message"), TRAIN_OPTIONS, ids=[" ".join(a) for a, _ in TRAIN_OPTIONS])
def test_train_options_out_of_range(tmp_path, small, args, message):
    out = Outputs(tmp_path, "old.csv", "m.safetensors")  # also: no m.safetensors.ckpt left behind
    assert_refused(invoke("train", small, "-o", out.new, *FAST, *args), message)
    out.assert_untouched()


TOML_CASES = [
    ("lr = nan", "c.toml: lr must be a finite number, got nan"),
    ("lr = inf", "c.toml: lr must be a finite number, got inf"),
    ("[model]\nhidden = -3", "c.toml: hidden must be between 1 and 4096, got -3"),
    ('hidden = "big"', "c.toml: hidden must be a number, got 'big'"),
    ("hidden = 2.5", "c.toml: hidden must be a whole number, got 2.5"),
    ("epochs = nan", "c.toml: epochs must be a whole number, got nan"),
    ("cell = 5", "c.toml: cell must be text, got 5"),
    ("clip = -1.0", "c.toml: clip must be positive"),
    (b"lr = 0.01 # \xff\xfe\n", "c.toml: the config file is not UTF-8 text; save it as UTF-8"),
    (None, "c.toml: is a folder, not a config file; pass a .toml file"),
    # the [data] table's names (a traceback before), a misspelled table and a key given twice
    ("[data]\ntarget = 5", "c.toml: target must be a column name, got 5"),
    ('[data]\ncovariates = ["temperature", 3]', "c.toml: covariates must be a column name or a list of them"),
    ("[modle]\nhidden = 8", "c.toml: unknown table [modle]; the tables are [data], [model], [train]"),
    ("[model]\nhidden = 8\n[train]\nhidden = 16", "c.toml: hidden is given twice (in [train] and before it)"),
    (
        "[train]\nval-context = 5\nval_context = 9",
        "c.toml: an option is given twice in [train] (with - and with _)",
    ),
    # a value the file gave, refused by a check that names the option as a flag, names the file
    (
        "[train]\nval_context = 1000",
        "c.toml sets val_context = 1000",
    ),
    (
        "trend_line = true\nresidual = false",
        "c.toml sets trend_line = true",
    ),
]


@pytest.mark.parametrize(
    ("content", "message"), TOML_CASES, ids=[m.split(": ", 1)[-1][:40] for _, m in TOML_CASES]
)
def test_config_values_out_of_range(tmp_path, small, content, message):
    config = tmp_path / "c.toml"
    if content is None:
        config.mkdir()
    else:
        config.write_bytes(content if isinstance(content, bytes) else content.encode())
    out = Outputs(tmp_path, "old.csv", "m.safetensors")
    assert_refused(invoke("train", small, "-o", out.new, "--config", config, "--quiet"), message)
    out.assert_untouched()


def test_a_flag_over_a_config_value_is_not_said_to_come_from_the_file(tmp_path, small):
    config = tmp_path / "c.toml"
    config.write_text("val_context = 1000\n")
    r = invoke(
        "train", small, "-o", tmp_path / "m.safetensors", "--config", config, "--val-context", "900", "-q"
    )
    assert_refused(r, "validation warms up on the first 900 rows of each specimen")
    assert "c.toml" not in r.stderr


FORECAST_OPTIONS = [
    (["--threshold", "nan"], "--threshold must be a finite number, got nan"),
    (["--horizon", "0"], "--horizon must be at least 1 step, got 0"),
    (["--horizon", "-5"], "--horizon must be at least 1 step, got -5"),
    (["--samples", "1000000000"], "--samples must be between 0 and 100000, got 1000000000"),
    (["--seed", "-1"], "--seed must be between 0 and 9223372036854775807, got -1"),
    (["--threads", "1000000"], "--threads must be between 1 and"),
    (
        ["--quantiles", ",".join(str(i / 1000) for i in range(1, 1000))],
        "--quantiles: at most 99 levels, got 999",
    ),
    (["--horizon", "1000000000", "--hold-conditions"], "adds 10,000,000,000 rows, which needs about"),
    # a picture is refused on stdout before the forecast is written (it was refused after)
    (["--plot", "-"], "-: a picture cannot go to stdout; give a file name ending .png or .svg"),
    # float32 would make it inf and the network would saturate into plausible numbers
    (["--set", "temperature=1e308"], "--set temperature: '1e308' is larger than the model can compute with"),
    (["--quantiles", "0.1,0.1000001"], "--quantiles 0.1 and 0.1000001 would both be column p10"),
    # the name is checked before the value: a static column is no condition, whatever its value
    (["--set", "material=Z"], "--set: 'material' is not a condition column of the model; known: temperature"),
    (["--shard", "0/99999999999999999999"], "--shard 0/99999999999999999999: N must be below 2^63"),
]


@pytest.mark.parametrize(
    ("args", "message"), FORECAST_OPTIONS, ids=[" ".join(a)[:40] for a, _ in FORECAST_OPTIONS]
)
def test_forecast_options_out_of_range(tmp_path, small, plan, model, args, message):
    data = small if "--hold-conditions" in args else plan
    out = Outputs(tmp_path, "old.csv", "new.csv")
    assert_refused(invoke("forecast", data, "-m", model, "-o", out.existing, *args), message)
    out.assert_untouched()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--context", "5", "--horizon", "0"], "--horizon must be at least 1 step, got 0"),
        (["--origins", "1000000"], "10 specimen(s) x 1,000,000 origin(s)) over up to 40 steps"),
        (["--context", "5", "--plot", "-"], "-: a picture cannot go to stdout"),
        (
            ["--context", "5", "--per-series", "-", "--backtest-out", "-"],
            "--per-series and --backtest-out both write to stdout (-)",
        ),
        (["--context", "5", "--per-series", "-", "--json"], "--json and --per-series both write to stdout"),
    ],
)
def test_evaluate_options_out_of_range(tmp_path, small, model, args, message):
    out = Outputs(tmp_path, "old.csv", "m.json")
    assert_refused(invoke("evaluate", small, "-m", model, "-o", out.new, *args), message)
    out.assert_untouched()


def test_outputs_that_cannot_be_made_are_refused_before_any_work(tmp_path, small, plan, model, monkeypatch):
    """--paths-out with --samples 0 (it was silently not written, an old file kept), a model on
    stdout (it became a file named "-"), and a scenario's condition too large for the model."""
    out = Outputs(tmp_path, "old.csv", "paths.csv")
    r = invoke("forecast", plan, "-m", model, "-o", out.existing, "--samples", "0", "--paths-out", out.new)
    assert_refused(r, "--paths-out writes the Monte Carlo paths, and --samples 0 draws none")
    out.assert_untouched()
    point = tmp_path.parent / f"{tmp_path.name}-mse.safetensors"  # outside the folder checked
    assert (
        invoke(
            "train", small, "-o", point, "--loss", "mse", "--ensemble", "1", "--no-trend-line", *FAST
        ).exit_code
        == 0
    )
    r = invoke("forecast", plan, "-m", point, "-o", out.existing, "--paths-out", out.new)
    assert_refused(r, "--paths-out writes the Monte Carlo paths, and a mse model draws none")
    out.assert_untouched()
    monkeypatch.chdir(tmp_path)
    assert_refused(invoke("train", small, "-o", "-", *FAST), "-o -: a model file cannot go to stdout")
    r = invoke("tune", small, "-o", "best.toml", "--model-out", "-", "--trials", "1")
    assert_refused(r, "--model-out -: a model file cannot go to stdout")
    out.assert_untouched()
    file = tmp_path / "a.csv"
    file.write_text("x\n")
    r = invoke("forecast", plan, "-m", model, "-o", file / "x.csv")
    assert_refused(r, f"{file / 'x.csv'}: {file} is a file, not a folder; give another output name")
    assert_refused(
        invoke("forecast", plan, "-m", model, "-o", ""), "'': an empty output name; give a file name"
    )
    file.unlink()
    r = invoke("forecast", "-", "-m", model, "--future", "-", input=plan.read_text())
    assert_refused(
        r, "DATA and --future both read stdin (-), which can be read once; save one of them to a file"
    )
    scenarios = tmp_path / "hot.csv"
    scenarios.write_text("scenario,temperature\nhot,1e308\n")
    out = Outputs(tmp_path, "old2.csv", "new2.csv")
    r = invoke("forecast", plan, "-m", model, "-o", out.existing, "--scenarios", scenarios)
    assert_refused(r, "scenario 'hot' temperature: 1e+308 is larger than the model can compute with")
    out.assert_untouched()


@pytest.mark.parametrize("chunked", [False, True])
def test_an_interrupted_forecast_leaves_every_output_as_it_was(tmp_path, plan, model, monkeypatch, chunked):
    """Ctrl-C as the last output (--meta-out) is begun, after the table, the end-of-life file and
    the Monte Carlo paths were written: all four files are still the old ones, and no temporary
    file is left. Each file alone was atomic; before, such a forecast left new files beside old."""
    from durability_cli import io as tables

    real = tables.atomic_path

    def atomic_path(path):
        if str(path).endswith("meta.json"):
            raise KeyboardInterrupt
        return real(path)

    monkeypatch.setattr(tables, "atomic_path", atomic_path)
    names = {"-o": "old.csv", "--eol-out": "eol.csv", "--paths-out": "paths.csv", "--meta-out": "meta.json"}
    for name in names.values():
        (tmp_path / name).write_bytes(b"previous\n")
    args = [x for flag, name in names.items() for x in (flag, tmp_path / name)]
    args += ["--samples", "5", "--threshold", "0.9", *(["--chunk-specimens", "4"] if chunked else [])]
    r = invoke("forecast", plan, "-m", model, *args)
    assert r.exit_code == 130, (r.exit_code, r.stderr)
    assert sorted(os.listdir(tmp_path)) == sorted(names.values())
    assert all((tmp_path / name).read_bytes() == b"previous\n" for name in names.values())
    monkeypatch.undo()
    r = invoke("forecast", plan, "-m", model, *args)
    assert r.exit_code == 0, r.stderr
    assert all((tmp_path / name).read_bytes() != b"previous\n" for name in names.values())


@pytest.mark.parametrize(
    ("name", "code", "said"), [("SIGTERM", 143, "Terminated."), ("SIGHUP", 129, "Hung up.")]
)
def test_sigterm_is_taken_as_ctrl_c_is_and_exits_143(tmp_path, plan, model, monkeypatch, name, code, said):
    """SIGTERM (timeout, cron, a batch scheduler) ended the process at once: a temporary file was
    left in the output folder. It runs Ctrl-C's clean-up now: every output as it was, exit 143.
    SIGHUP (the terminal or ssh session closed) left them too (session 53): exit 129."""
    import signal

    from durability_cli import io as tables

    real = tables.atomic_path
    number = getattr(signal, name, None)
    if number is None:
        pytest.skip(f"no {name} here")

    def atomic_path(path):
        if str(path).endswith("paths.csv"):  # the table and end-of-life file already begun
            os.kill(os.getpid(), number)
        return real(path)

    monkeypatch.setattr(tables, "atomic_path", atomic_path)
    names = {"-o": "old.csv", "--eol-out": "eol.csv", "--paths-out": "paths.csv"}
    for name in names.values():
        (tmp_path / name).write_bytes(b"previous\n")
    args = [x for flag, name in names.items() for x in (flag, tmp_path / name)]
    before = signal.getsignal(number)
    r = invoke("forecast", plan, "-m", model, *args, "--samples", "5", "--threshold", "0.9")
    assert r.exit_code == code and r.stderr.strip() == said, (r.exit_code, r.stderr)
    assert sorted(os.listdir(tmp_path)) == sorted(names.values())
    assert all((tmp_path / name).read_bytes() == b"previous\n" for name in names.values())
    assert signal.getsignal(number) == before  # the command's handler is gone again


def test_one_table_on_stdout_takes_it_alone(tmp_path, small, model):
    """evaluate --per-series -: stdout is that CSV, whole and alone (the metrics' JSON was written
    after it, off a terminal)."""
    r = invoke("evaluate", small, "-m", model, "--context", "5", "--samples", "0", "--per-series", "-", "-q")
    assert r.exit_code == 0, r.stderr
    table = pd.read_csv(io.StringIO(r.stdout))
    assert len(table) > 10 and "{" not in r.stdout and table.columns[0] == "model"


def _edited(small: Path, folder: Path, edit) -> Path:
    path = folder / "t.csv"
    edit(pd.read_csv(small)).to_csv(path, index=False)
    return path


UNTRAINABLE = [
    (
        "ten specimens of 3 rows",
        lambda df: df[df.groupby("specimen_id").cumcount() < 3],
        "the longest validation specimen has 3 rows, so no forecast can be scored",
    ),
    (
        "conditions of 1e308",
        lambda df: df.assign(temperature=df.temperature * 1e306),
        "column 'temperature', row 1: 4.84e+307 is larger than the model can compute with",
    ),
    (
        "durability of 1e308",
        lambda df: df.assign(durability=df.durability * 1e308),
        "column 'durability', row 1: 9.6982e+307 is larger than the model can compute with",
    ),
    (
        "time spans of 1e300",
        lambda df: df.assign(time=df.time * 1e300),
        "column 'time', row 2: 5e+299 is larger than the model can compute with",
    ),
    (
        "a static number of 1e307",
        lambda df: df.assign(material=1e307),
        "column 'material', row 1: 1e+307 is larger than the model can compute with",
    ),
]


@pytest.mark.parametrize(("edit", "message"), [c[1:] for c in UNTRAINABLE], ids=[c[0] for c in UNTRAINABLE])
def test_tables_that_cannot_be_trained_on(tmp_path, small, edit, message):
    data = _edited(small, tmp_path, edit)
    out = Outputs(tmp_path, "old.csv", "m.safetensors")
    assert_refused(invoke("train", data, "-o", out.new, "--static", "material", *FAST), message)
    out.assert_untouched()


@pytest.mark.filterwarnings("error::RuntimeWarning")  # nor a numpy warning on stderr before the line
def test_a_forecast_that_overflows_is_an_error_not_missing_rows(tmp_path, model, plan):
    """Finite weights so large that the forecast overflows: refused, never rows silently dropped."""
    bad = tmp_path / "huge.safetensors"
    bad.write_bytes(_rebuilt(tensors={"head.weight": torch.full((1, 8), 3e38)})(model, tmp_path))
    out = Outputs(tmp_path, "old.csv", "eol.csv")
    r = invoke("forecast", plan, "-m", bad, "-o", out.existing, "--threshold", "0.5", "--eol-out", out.new)
    assert_refused(r, "the forecast of specimen C001 at time")
    assert "is not a finite number (the computation overflowed)" in r.stderr
    assert_refused(invoke("evaluate", plan, "-m", bad, "--context", "5"), "is not a finite number")
    out.assert_untouched()


# -- class 3: model metadata that lies, under a memory cap ------------------------------------------
def _meta_edit(key, **values):
    return _rebuilt(edit=lambda t, m: m[key].update(values))


def _nested_metadata(model: Path, folder: Path) -> bytes:
    t, m = _parts(model)
    text = json.dumps(m)[:-1] + ', "deep": ' + "[" * 100_000 + "]" * 100_000 + "}"
    return st_save(t, metadata={"durability": text})


HOSTILE_MODELS = [
    (
        "hidden 25000",
        _meta_edit("model_config", hidden=25000),
        "--hidden must be between 1 and 4096, got 25000",
    ),
    (
        "layers 10**6",
        _meta_edit("model_config", layers=10**6),
        "--layers must be between 1 and 64, got 1000000",
    ),
    (
        "hidden 4096 x 64 layers, tiny tensors",
        _meta_edit("model_config", hidden=4096, layers=64),
        "the weights do not match the architecture in the metadata (missing",
    ),
    (
        "10**9 static levels",
        _rebuilt(edit=lambda t, m: m.update(static_cardinalities=[10**9])),
        "static_cardinalities do not match the static vocabularies",
    ),
    (
        "target is also a condition",
        _meta_edit("schema", covariates=["durability", "humidity"]),
        "column 'durability' is both the target and a condition column",
    ),
    (
        "id column is the time column",
        _meta_edit("schema", time_col="specimen_id"),
        "column 'specimen_id' is both the id and a time column",
    ),
    ("hidden as text", _meta_edit("model_config", hidden="64"), "hidden must be a number, got '64'"),
    ("a scale of 1e308", _meta_edit("scaler", y_std=1e308), "y_std is 1e+308, beyond the 1e+16"),
    (
        "metadata nested 100,000 deep",
        _nested_metadata,
        "the durability metadata is nested more than 32 levels deep",
    ),
    (
        "a summary score as text",
        _meta_edit("summary", best_val_rmse="x"),
        "best_val_rmse is 'x', not a number",
    ),
    (
        "a mixed-effects path of degree 7",
        _meta_edit("summary", mixed_effects={"degree": 7}),
        "mixed_effects degree must be one of (1, 2, 3), got 7",
    ),
    (
        "a mixed-effects path that reads five conditions",
        _meta_edit(
            "summary",
            mixed_effects={
                "degree": 1,
                "tau": 1.0,
                "mean": [1.0, 0.0],
                "cov": [[0.0, 0.0], [0.0, 0.0]],
                "noise": 1e-4,
                "specimens": 5,
                "conditions": {"centre": [0.0] * 5, "effect": [0.0] * 5},
            },
        ),
        "mixed_effects reads 5 condition(s), the schema",
    ),
    (
        "10**30 latent specimens",
        _rebuilt(edit=lambda t, m: m.update(latent_specimens=10**30)),
        "latent_specimens is 1000000000000000000000000000000, not a count of specimens",
    ),
]

# The CLI in one child whose address space is capped at 3 GB, run once per command line (in
# process, to pay for importing torch once): a loader that trusted the metadata would need far
# more and fail with MemoryError (exit 1) or be killed, instead of refusing. Prints, as JSON, the
# exit code and stderr of each command line given as JSON in argv[1].
_CAPPED_CHILD = """
import contextlib, io, json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
from durability_cli.cli import main
results = []
for args in json.loads(sys.argv[1]):
    sys.argv = ["durability", *args]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main()
        except SystemExit as exc:
            results.append([exc.code, err.getvalue()])
print(json.dumps(results))
"""


def test_model_metadata_is_checked_before_anything_is_built(tmp_path, model, plan):
    out = Outputs(tmp_path, "old.csv", "new.csv")
    runs, expected = [], []
    for i, (case, make, message) in enumerate(HOSTILE_MODELS):
        bad = tmp_path / f"bad{i}.safetensors"
        bad.write_bytes(make(model, tmp_path))
        inspect = [] if "the architecture" in message else [["inspect", bad]]  # no weights read
        for args in (*inspect, ["forecast", plan, "-m", bad, "-o", out.existing]):
            runs.append([str(a) for a in args])
            expected.append((case, args[0], message))
    r = subprocess.run(
        [sys.executable, "-c", _CAPPED_CHILD, json.dumps(runs)], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr
    for (case, command, message), (code, stderr) in zip(expected, json.loads(r.stdout), strict=True):
        assert code == 2, (case, command, stderr)
        assert stderr.count("\n") == 1 and stderr.startswith("Error: ") and message in stderr, (case, stderr)
    for i in range(len(HOSTILE_MODELS)):
        (tmp_path / f"bad{i}.safetensors").unlink()
    out.assert_untouched()


def test_a_tampered_checkpoint_is_refused(tmp_path, small):
    from durability_cli.config import ModelConfig, TrainConfig
    from durability_cli.schema import load_dataset
    from durability_cli.training import train

    ckpt = tmp_path / "run.ckpt"
    data = load_dataset(str(small))
    # one model's checkpoint, and a stacked ensemble's (the default on 10 specimens)
    for ensemble, key, flags in ((1, "model.head.weight", ["--ensemble", "1"]), (0, "stack.head.weight", [])):
        train(
            data, ModelConfig(hidden=8, layers=1), TrainConfig(epochs=1, ensemble=ensemble), checkpoint=ckpt
        )
        tensors, info = _parts(ckpt)
        assert key in tensors
        tensors[key] = torch.zeros(1, 9)
        ckpt.write_bytes(st_save(tensors, metadata={"durability": json.dumps(info)}))
        out = Outputs(tmp_path, "old.csv", "m.safetensors")
        r = invoke("train", small, "-o", out.new, "--resume", ckpt, *FAST, *flags)
        assert_refused(r, "run.ckpt: the checkpoint's saved state does not fit this run (RuntimeError")
        out.assert_untouched()


def test_endless_devices_are_refused_at_once(tmp_path):
    assert_refused(invoke("schema", "/dev/zero", "--format", "jsonl"), "/dev/zero: looks like a binary file")
    assert_refused(invoke("inspect", "/dev/zero"), "/dev/zero: not a durability model file")


# -- class 2 and 6: nesting bombs, gzip bombs -------------------------------------------------------
def test_a_nesting_bomb_is_refused(tmp_path, model):
    deep = "[" * 100_000 + "1" + "]" * 100_000  # crashed pyarrow's reader with a segfault
    rows = [
        '{"specimen_id": "A", "time": 0, "durability": 1.0}',
        '{"specimen_id": "A", "time": 1, "durability": 0.9, "note": "[[[ in text is fine"}',
        '{"specimen_id": "A", "time": 2, "durability": 0.8, "x": ' + deep + "}",
    ]
    bomb = tmp_path / "bomb.jsonl"
    bomb.write_text("\n".join(rows) + "\n")
    out = Outputs(tmp_path, "old.csv", "new.csv")
    message = "bomb.jsonl: line 3: a value is nested more than 64 levels deep"
    assert_refused(invoke("schema", bomb), message)
    assert_refused(invoke("forecast", bomb, "-m", model, "-o", out.existing), message)
    assert_refused(invoke("train", bomb, "-o", out.new, *FAST), message)
    out.assert_untouched()


def test_a_gzip_bomb_is_refused_within_the_budget(tmp_path, model):
    bomb = tmp_path / "bomb.csv.gz"
    bomb.write_bytes(gzip.compress(b"specimen_id,time,durability\n" + b"A,1,1\n" * 20_000_000, 9))
    assert bomb.stat().st_size < 300_000  # 120 MB of text, four times the cap below
    out = Outputs(tmp_path, "old.csv", "new.csv")
    message = "bomb.csv.gz: the table text is more than 32.0 MB (after decompression)"
    assert_refused(invoke("--max-memory", "64M", "schema", bomb), message)
    assert_refused(invoke("--max-memory", "64M", "forecast", bomb, "-m", model, "-o", out.existing), message)
    assert_refused(invoke("--max-memory", "64M", "train", bomb, "-o", out.new, *FAST), message)
    out.assert_untouched()


def test_text_over_the_budget_is_refused_before_it_is_read_whole(tmp_path):
    big = tmp_path / "big.csv"
    big.write_bytes(b"specimen_id,time,durability\n" + b"A,1,1\n" * 2_000_000)  # 12 MB
    cap = "the table text is more than 8.0 MB (after decompression), over half the memory budget of 16.0 MB"
    assert_refused(invoke("--max-memory", "16M", "schema", big), f"big.csv: {cap}")
    assert_refused(invoke("--max-memory", "16M", "schema", "-", input=big.read_bytes()), f"stdin: {cap}")


def test_training_through_long_specimens_is_estimated_first(tmp_path):
    """Backpropagation through 5,000 steps at once (~150 MB here; a 1,000,000-row specimen needs
    tens of GB) against a 32 MB budget: refused before training, with the fix, no file left."""
    t = np.arange(5000)
    data = tmp_path / "long.csv"
    pd.DataFrame(
        {
            "specimen_id": np.repeat(["A", "B"], 5000),
            "time": np.tile(t, 2),
            "durability": np.tile(1 - t / 1e4, 2),
        }
    ).to_csv(data, index=False)
    out = Outputs(tmp_path, "old.csv", "m.safetensors")
    r = invoke("--max-memory", "32M", "train", data, "-o", out.new, *FAST)
    assert_refused(
        r, "long.csv: training through 5,000 steps at once (--window 0, longest specimen 5,000 rows"
    )
    assert "train on windows, e.g. --window 500" in r.stderr
    out.assert_untouched()


def test_the_memory_budget_refuses_a_forecast_with_the_number(tmp_path, model, plan):
    out = Outputs(tmp_path, "old.csv", "new.csv")
    r = invoke(
        "--max-memory",
        "100M",
        "forecast",
        plan,
        "-m",
        model,
        "--samples",
        "10000",
        "-o",
        out.existing,
        "--max-step",
        "off",  # the plan's own 40 steps (the default may cut the rarest of them)
    )
    assert_refused(r, "a forecast of 10 specimen(s) x 10,000 sample path(s) over up to 40 steps needs about")
    assert "more than the budget of 100.0 MB; lower --samples" in r.stderr
    assert_refused(invoke("--max-memory", "lots", "schema", plan), "--max-memory 'lots': not a size")
    # past any float: the size's own refusal, not an OverflowError
    assert_refused(invoke("--max-memory", "1e400", "schema", plan), "--max-memory 1e400: must be between 16M")
    assert_refused(invoke("--max-memory", "9" * 5000, "schema", plan), "must be between 16M")  # past int()
    out.assert_untouched()


# -- class 7 and 8: environment, odd columns ---------------------------------------------------------
def test_a_stray_rank_does_not_hide_errors(tmp_path):
    r = CliRunnerEnv({"RANK": "1"}).invoke("schema", tmp_path / "missing.csv")
    assert_refused(r, "missing.csv: no such file")
    assert main_process({"RANK": "1", "WORLD_SIZE": "4"})  # not started by torchrun
    assert not main_process({"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "TORCHELASTIC_RUN_ID": "x"})


def test_world_size_without_a_master_is_refused(tmp_path, small):
    out = Outputs(tmp_path, "old.csv", "m.safetensors")
    r = CliRunnerEnv({"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": None, "MASTER_PORT": None}).invoke(
        "train", small, "-o", out.new, *FAST
    )
    assert_refused(r, "WORLD_SIZE=2 asks for a distributed run, but MASTER_ADDR and MASTER_PORT are not set")
    out.assert_untouched()


def test_a_rendezvous_without_peers_times_out_with_a_message(tmp_path, small):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        "WORLD_SIZE": "2",
        "RANK": "0",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "DURABILITY_RENDEZVOUS_TIMEOUT": "1",
    }
    out = Outputs(tmp_path, "old.csv", "m.safetensors")
    r = CliRunnerEnv(env).invoke("train", small, "-o", out.new, *FAST)
    assert_refused(r, f"not all 2 ranks joined at 127.0.0.1:{port} within 1 s")
    out.assert_untouched()


def _bash(command: str, cwd: Path) -> subprocess.CompletedProcess:
    """``command`` in bash, with DURABILITY standing for this interpreter's durability command."""
    durability = f'"{sys.executable}" -m durability_cli'
    return subprocess.run(["bash", "-c", command.replace("DURABILITY", durability)], cwd=cwd, timeout=120)


@pytest.mark.parametrize("redirect", ["2>&-", "2>/dev/full"])
def test_a_closed_or_full_stderr_keeps_exit_2(tmp_path, redirect):
    if redirect.endswith("full") and not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    assert _bash(f"DURABILITY schema missing.csv {redirect}", tmp_path).returncode == 2


def test_the_reader_of_stderr_going_away_ends_quietly(tmp_path, small):
    """`schema` writes its report on stderr: `2>&1 >/dev/null | head -1` must end with 0, like `| head`."""
    r = _bash(
        f"DURABILITY schema {small} 2>&1 >/dev/null | head -1 >/dev/null; exit ${{PIPESTATUS[0]}}", tmp_path
    )
    assert r.returncode == 0


class CliRunnerEnv:
    """``invoke`` with environment variables set (None: unset) for the duration of one command."""

    def __init__(self, env: dict):
        self.env = env

    def invoke(self, *args):
        from typer.testing import CliRunner

        from durability_cli.cli import app

        return CliRunner().invoke(app, [str(a) for a in args], env=self.env)


def test_control_characters_are_escaped_in_error_lines(tmp_path):
    data = tmp_path / "ctl.csv"
    data.write_bytes(b"specimen_id,time,durability\nA\x1b[31m\x07,0,1\nA\x1b[31m\x07,0,2\n")
    r = invoke("schema", data)
    assert_refused(r, "specimen A\\x1b[31m\\x07 has two rows at time 0")
    assert "\x1b" not in r.stderr and "\x07" not in r.stderr


def test_a_hive_key_that_is_also_a_file_column_is_refused(tmp_path, small, model):
    folder = tmp_path / "hive" / "material=Z"
    folder.mkdir(parents=True)
    pd.read_csv(small).to_parquet(folder / "a.parquet")
    message = "the folder name 'material=Z' sets column 'material', which the files also hold"
    assert_refused(invoke("schema", tmp_path / "hive"), message)
    assert_refused(invoke("forecast", tmp_path / "hive", "-m", model, "--chunk-specimens", "3"), message)


def test_a_duration_time_column_is_refused_by_every_command(tmp_path, small, model):
    df = pd.read_csv(small)
    df["time"] = pd.to_timedelta(df["time"], unit="h")
    data = tmp_path / "d.parquet"
    df.to_parquet(data)
    message = "column 'time' holds durations (e.g. '0 days 00:00:00'), not numbers or dates"
    assert_refused(invoke("schema", data), message)
    assert_refused(invoke("train", data, "-o", tmp_path / "m.safetensors", *FAST), message)
    assert_refused(invoke("forecast", data, "-m", model), message)
    assert_refused(invoke("evaluate", data, "-m", model, "--context", "5"), message)


# -- session 53: what a hostile pass over the newer options found ------------------------------------
def test_a_column_named_twice_in_a_workbook_or_parquet_file_is_named(tmp_path, model, plan):
    """A workbook's header with a column twice crashed ("unexpected AttributeError", exit 1); a
    Parquet file with one was called corrupt. Both name the column, as a CSV header's does."""
    pytest.importorskip("openpyxl")
    import openpyxl
    import pyarrow as pa
    import pyarrow.parquet as pq

    df = pd.read_csv(plan)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append([*df.columns, "temperature"])
    for row in df.head(50).itertuples(index=False):
        sheet.append([*(None if pd.isna(v) else v for v in row), 20.0])
    book.save(tmp_path / "twice.xlsx")
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.append_column("temperature", table.column("temperature"))
    pq.write_table(table, tmp_path / "twice.parquet")
    for name in ("twice.xlsx", "twice.parquet"):
        out = Outputs(tmp_path, "old.csv", "fc.csv")
        r = invoke("forecast", tmp_path / name, "-m", model, "-o", out.new)
        assert_refused(r, f"{tmp_path / name}: column 'temperature' appears twice in the header; rename one")
        out.assert_untouched()
        (tmp_path / "old.csv").unlink()
        assert_refused(invoke("schema", tmp_path / name), "column 'temperature' appears twice")


def test_a_workbook_is_read_by_its_content_whatever_its_name(tmp_path, model, plan):
    """openpyxl refused a workbook named .csv by its name even with --format xlsx; and read as
    CSV, a zip file was told to try --format parquet."""
    pytest.importorskip("openpyxl")
    df = pd.read_csv(plan)
    df.to_excel(tmp_path / "book.xlsx", index=False)
    (tmp_path / "book.csv").write_bytes((tmp_path / "book.xlsx").read_bytes())
    want = invoke("forecast", tmp_path / "book.xlsx", "-m", model, "--samples", "5", "-q")
    assert want.exit_code == 0, want.stderr
    r = invoke("forecast", tmp_path / "book.csv", "--format", "xlsx", "-m", model, "--samples", "5", "-q")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == want.stdout
    r = invoke("forecast", tmp_path / "book.csv", "-m", model)
    assert_refused(r, "it is a zip file: pass --format xlsx if it is an Excel workbook")


def test_a_formula_no_program_has_calculated_is_named_not_read_as_empty(tmp_path, model, plan):
    """A workbook written by a program (openpyxl, pandas) holds its formulas without values: the
    cell was read as empty ("condition 'temperature' is empty for specimen ... (row 3)"). It is
    named with the cell Excel shows; a cell that is truly empty still says so, and a sheet whose
    only empty cells are not formulas is read, as is one whose uncalculated formula sits in a
    column the command does not read (a note beside the table)."""
    pytest.importorskip("openpyxl")
    import openpyxl

    df = pd.read_csv(plan)
    column = df.columns.get_loc("temperature")
    letter = "ABCDEFGHIJ"[column]
    (tmp_path / "out").mkdir()
    out = Outputs(tmp_path / "out", "old.csv", "fc.csv")
    for kind in ("formula", "empty", "full", "unread"):
        book = openpyxl.Workbook()
        sheet = book.active
        sheet.append([*df.columns, "note"])
        sheet.append([None] * (len(df.columns) + 1))  # a blank row, skipped: the sheet's rows still count it
        for i, row in enumerate(df.itertuples(index=False)):
            values = list(row)
            if i == 2 and kind in ("formula", "empty"):
                values[column] = f"={values[column]}+0" if kind == "formula" else None
            sheet.append([*values, "=B5*2" if kind == "unread" and i == 2 else None])
        path = tmp_path / f"{kind}.xlsx"
        book.save(path)
        r = invoke("forecast", path, "-m", model, "--samples", "5", "-o", out.new)
        if kind in ("full", "unread"):
            assert r.exit_code == 0, r.stderr
            out.new.unlink()
        elif kind == "formula":
            assert_refused(
                r, f"{path}: cell {letter}5 holds a formula (={df.iloc[2, column]}+0) with no value saved"
            )
            out.assert_untouched()
        else:  # the row as the sheet numbers it (it said "row 3": the header and the blank row uncounted)
            assert_refused(r, "condition 'temperature' is empty for specimen C001 at time 1 (sheet row 5)")
            out.assert_untouched()


def test_lengths_and_sizes_past_what_a_number_holds_are_refused(tmp_path, model, plan):
    """--max-step 5e-324 overflowed the piece count (two RuntimeWarnings, then "unexpected
    OverflowError", exit 1); --chunk-specimens 2**63 overflowed a C long. Both are one line now."""
    out = Outputs(tmp_path, "old.csv", "fc.csv")
    r = invoke("forecast", plan, "-m", model, "--max-step", "5e-324", "-o", out.new)
    assert_refused(r, "cuts the future steps into more than 1,000,000,000,000,000 pieces")
    assert "1,000,000+ TB" in r.stderr
    r = invoke("forecast", plan, "-m", model, "--chunk-specimens", str(2**63), "-o", out.new)
    assert_refused(r, f"--chunk-specimens must be between 1 and 1,000,000,000, got {2**63}")
    out.assert_untouched()


def test_a_column_only_a_compared_model_reads_is_named_with_that_model(tmp_path, small, model):
    """evaluate -m A -m B on a table without a column only B reads said "the model needs
    condition column 'humidity'", which A (the model) does not."""
    narrow = tmp_path / "narrow.safetensors"
    r = invoke("train", small, "-o", narrow, "--covariates", "temperature", *FAST)
    assert r.exit_code == 0, r.stderr
    table = tmp_path / "no_humidity.csv"
    pd.read_csv(small).drop(columns="humidity").to_csv(table, index=False)
    name = Path(model).stem
    for extra in ([], ["--chunk-specimens", "3"]):
        r = invoke("evaluate", table, "-m", narrow, "-m", model, "--context", "10", *extra)
        assert_refused(r, f"{table}: compared model '{name}' needs condition column 'humidity', which this")
    r = invoke(
        "plot",
        "errors",
        table,
        "-m",
        narrow,
        "-m",
        model,
        "--context",
        "10",
        "--format",
        "csv",
        "-o",
        tmp_path / "e.png",
    )
    assert_refused(r, f"compared model '{name}' needs condition column 'humidity'")


def test_names_that_pyarrow_reads_as_missing_are_kept_as_written(tmp_path, model, plan):
    """A scenario named NA was "row 2 has no scenario name"; a specimen named NA or null had "an
    empty id". Text columns keep such names; an empty cell is still missing, and a number's "NA"
    still a missing value."""
    scenarios = tmp_path / "s.csv"
    scenarios.write_text("scenario,temperature\nTrue,65\nNA,66\n")
    r = invoke("forecast", plan, "-m", model, "--scenarios", scenarios, "--samples", "5", "-q")
    assert r.exit_code == 0, r.stderr
    assert set(pd.read_csv(io.StringIO(r.stdout), keep_default_na=False).scenario) == {"True", "NA"}
    scenarios.write_text("scenario,temperature\nTrue,65\n,66\n")
    assert_refused(
        invoke("forecast", plan, "-m", model, "--scenarios", scenarios), "row 2 has no scenario name"
    )
    df = pd.read_csv(plan)
    first, second = df.specimen_id.unique()[:2]
    renamed = df.replace({"specimen_id": {first: "NA", second: "null"}})
    renamed.loc[renamed.index[3], "humidity"] = np.nan  # written NA below, as R writes a missing value
    table = tmp_path / "na.csv"
    renamed.to_csv(table, index=False, na_rep="NA")
    r = invoke("forecast", table, "-m", model, "--samples", "5", "-q")
    assert r.exit_code != 0 and "condition 'humidity' is empty" in r.stderr  # a number's NA: missing
    renamed.loc[renamed.index[3], "humidity"] = 50.0
    renamed.to_csv(table, index=False, na_rep="NA")
    r = invoke("forecast", table, "-m", model, "--samples", "5", "-q")
    assert r.exit_code == 0, r.stderr
    ids = set(pd.read_csv(io.StringIO(r.stdout), keep_default_na=False).specimen_id)
    assert {"NA", "null"} <= ids


def test_an_error_in_a_named_sheet_names_the_sheet(tmp_path, model, plan):
    """A bad cell of a sheet read with --sheet / --future-sheet was named by the workbook alone,
    and the workbook opens on its first sheet."""
    pytest.importorskip("openpyxl")
    df = pd.read_csv(plan)
    bad = df.copy()
    bad["temperature"] = bad["temperature"].astype(object)
    bad.loc[bad.index[1], "temperature"] = "hot"
    book = tmp_path / "lab.xlsx"
    with pd.ExcelWriter(book, engine="openpyxl") as writer:
        df.to_excel(writer, sheet_name="first", index=False)
        bad.to_excel(writer, sheet_name="plan", index=False)
    r = invoke("forecast", book, "--sheet", "plan", "-m", model)
    assert_refused(r, f"{book} sheet 'plan': column 'temperature', sheet row 3: 'hot' is not a number")


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_a_signal_while_the_outputs_are_moved_waits_until_all_are(tmp_path, plan, model, monkeypatch, name):
    """The outputs are moved onto their names one after the other at the end; a signal between
    two moves waits until the last (all new, no temporary file), then ends the command. SIGHUP
    did not wait: the rest stayed as .tmp files beside a mix of old and new outputs."""
    import signal

    number = getattr(signal, name, None)
    if number is None:
        pytest.skip(f"no {name} here")
    real, moved = os.replace, []

    def replace(src, dst):
        real(src, dst)
        moved.append(dst)
        if len(moved) == 1:
            os.kill(os.getpid(), number)

    monkeypatch.setattr(os, "replace", replace)
    names = {"-o": "old.csv", "--eol-out": "eol.csv", "--paths-out": "paths.csv"}
    for file in names.values():
        (tmp_path / file).write_bytes(b"previous\n")
    args = [x for flag, file in names.items() for x in (flag, tmp_path / file)]
    r = invoke("forecast", plan, "-m", model, *args, "--samples", "5", "--threshold", "0.9")
    assert r.exit_code == {"SIGTERM": 143, "SIGHUP": 129}[name], (r.exit_code, r.stderr)
    assert len(moved) == 3 and sorted(os.listdir(tmp_path)) == sorted(names.values())
    assert all((tmp_path / file).read_bytes() != b"previous\n" for file in names.values())


def test_an_id_column_named_twice_in_a_csv_is_named(tmp_path, model, plan):
    """Kept as text and looked at for names such as NA, a CSV's id column named twice raised
    pyarrow's KeyError ("unexpected", exit 1) before the header check could name it."""
    lines = pd.read_csv(plan).to_csv(index=False).splitlines()
    rows = [lines[0] + ",specimen_id"] + [line + ",X" for line in lines[1:]]
    table = tmp_path / "twice.csv"
    table.write_text("\n".join(rows) + "\n")
    assert_refused(invoke("forecast", table, "-m", model), "column 'specimen_id' appears twice in the header")
    scenarios = tmp_path / "s.csv"
    scenarios.write_text("scenario,temperature,scenario\nhot,65,x\n")
    r = invoke("forecast", plan, "-m", model, "--scenarios", scenarios)
    assert_refused(r, "column 'scenario' appears twice in the header")


def test_train_refuses_a_line_it_cannot_add_and_says_when_it_replaces_a_checkpoint(tmp_path, small):
    """--trend-line with --no-residual (or --monotonic) trained without the line and recorded
    trend_line true; the same train command run again after an interruption replaced the
    interrupted run's checkpoint without a word."""
    out = tmp_path / "m.safetensors"
    for extra in (["--no-residual"], ["--monotonic", "decreasing"]):
        r = invoke("train", small, "-o", out, *FAST, "--trend-line", *extra)
        assert_refused(r, "--trend-line cannot be used here")
        assert not out.exists()
    (tmp_path / "m.safetensors.ckpt").write_bytes(b"an interrupted run's checkpoint")
    loud = [x for x in FAST if x != "--quiet"]
    r = invoke("train", small, "-o", out, *loud, "--ensemble", "1", "--no-trend-line")
    assert r.exit_code == 0, r.stderr
    said = " ".join(r.stderr.split())
    assert f"{tmp_path / 'm.safetensors.ckpt'} holds the checkpoint of an interrupted run" in said
    assert f"give --resume {tmp_path / 'm.safetensors.ckpt'} to continue that run instead" in said
