"""A corpus of bad inputs, each run through the real command line.

Every refusal must look the same to a user and to a script: exit code 2, exactly one line on stderr
that starts with "Error:" and names the problem, nothing on stdout, no traceback, no output file
created, and an output file that was already there left byte for byte as it was. A few inputs that
look odd but are fine (a UTF-8 BOM, rows out of order, 10,000 columns, a 5 MB cell) must work.

The files are made here, in the tests, so that each case reads as what it is.
"""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from typer.testing import CliRunner

from durability_cli.cli import app
from durability_cli.schema import load_dataset

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
FAST = ["--epochs", "2", "--hidden", "8", "--layers", "1", "--quiet"]
PREVIOUS = b"a good file from an earlier run\n"  # what an existing output holds before a failed command
HEADER = "specimen_id,time,temperature,humidity,durability"
# Two specimens, two measured rows and one future row each: the smallest table a model forecasts.
GOOD = [
    "A,0,20,50,1.0",
    "A,1,20,50,0.9",
    "A,2,20,50,",
    "B,0,30,60,1.0",
    "B,1,30,60,0.8",
    "B,2,30,60,",
]


def invoke(*args, input=None):
    return CliRunner().invoke(app, [str(a) for a in args], input=input)


def table(rows: list[str], header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def assert_refused(result, message: str, code: int = 2) -> None:
    """Exit ``code`` (2: bad input), one `Error:` line holding ``message``, empty stdout, no traceback."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert result.exit_code == code, (result.exit_code, result.stderr, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    assert message in lines[0], lines[0]
    assert result.stdout == ""


class Outputs:
    """An output file that already exists and one that does not; checks both after a failure."""

    def __init__(self, folder: Path, existing: str, new: str):
        self.folder = folder
        self.existing = folder / existing
        self.new = folder / new
        self.existing.write_bytes(PREVIOUS)
        self.before = set(os.listdir(folder))

    def assert_untouched(self) -> None:
        assert self.existing.read_bytes() == PREVIOUS
        assert not self.new.exists()
        assert set(os.listdir(self.folder)) == self.before  # no temp file or checkpoint left behind


# -- bad tables ------------------------------------------------------------------------------------
def _parquet(columns: dict) -> Callable[[Path], bytes]:
    def make(_: Path) -> bytes:
        sink = io.BytesIO()
        pq.write_table(pa.table(columns), sink)
        return sink.getvalue()

    return make


def _good_parquet_cut(_: Path) -> bytes:
    return _parquet({"specimen_id": ["A", "A"], "time": [0, 1], "durability": [1.0, 0.9]})(_)[:-30]


# (case id, file name, bytes or a maker, message from schema/train, message from forecast or None = same)
# A schema message of None: the table is fine on its own, only the model refuses it.
DATA_CASES = [
    ("empty file", "d.csv", b"", "the file is empty (it has no rows)", None),
    ("header only", "d.csv", table([]), "the table has no rows (columns: specimen_id, time", None),
    ("blank first line", "d.csv", b"\n" + table(GOOD), "the first line is empty", None),
    ("binary garbage", "d.csv", bytes(range(256)) * 40, "looks like a binary file, not CSV text", None),
    (
        "parquet without the target",
        "d.parquet",
        _parquet({"specimen_id": ["A", "A"], "time": [0, 1], "strength": [1.0, 0.9]}),
        "no target column 'durability' (columns: specimen_id, time, strength)",
        "the model needs target column 'durability', which this table lacks",
    ),
    ("truncated parquet", "d.parquet", _good_parquet_cut, "not a readable Parquet file", None),
    (
        "pipe-separated",
        "d.csv",
        table([r.replace(",", "|") for r in GOOD], HEADER.replace(",", "|")),
        "the file seems to be separated by '|', not commas",
        None,
    ),
    (
        "semicolons with decimal commas",
        "d.csv",
        table(["A;0;20;50;1,5", "A;1;20;50;0,9"], HEADER.replace(",", ";")),
        "column 'durability', row 1: '1,5' is not a number (use a dot as the decimal mark: 1.5)",
        None,
    ),
    (
        "text in a numeric column",
        "d.csv",
        table([*GOOD[:4], "B,1,hot,60,0.8", GOOD[5]]),
        "column 'temperature', row 5: 'hot' is not a number",
        None,
    ),
    (
        "thousands separators",
        "d.csv",
        table(['A,0,20,"1,050",1.0', *GOOD[1:]]),
        "column 'humidity', row 1: '1,050' is not a number (remove the thousands separator: 1050)",
        None,
    ),
    (
        "missing condition",
        "d.csv",
        table([*GOOD[:4], "B,1,,60,0.8", GOOD[5]]),
        "condition 'temperature' is empty for specimen B at time 1 (row 5)",
        None,
    ),
    (
        "NaN condition",
        "d.csv",
        table([*GOOD[:4], "B,1,NaN,60,0.8", GOOD[5]]),
        "condition 'temperature' is empty for specimen B at time 1 (row 5)",
        None,
    ),
    (
        "infinite condition",
        "d.csv",
        table([*GOOD[:4], "B,1,inf,60,0.8", GOOD[5]]),
        "condition 'temperature' is infinite for specimen B at time 1 (row 5)",
        None,
    ),
    (
        "infinite durability",
        "d.csv",
        table([GOOD[0], "A,1,20,50,-inf", *GOOD[2:]]),
        "column 'durability', row 2: -inf is not a measurement",
        None,
    ),
    (
        "duplicate times (a zero time step)",
        "d.csv",
        table([*GOOD[:3], "B,0,30,60,1.0", "B,0,30,60,0.8", GOOD[5]]),
        "specimen B has two rows at time 0 (rows 4 and 5)",
        None,
    ),
    ("empty time", "d.csv", table([GOOD[0], "A,,20,50,0.9", *GOOD[2:]]), "row 2: the time is empty", None),
    (
        "one-row specimen",
        "d.csv",
        table([*GOOD, "C,0,20,50,1.0"]),
        "specimen C has only 1 row (row 7)",
        None,
    ),
    (
        "empty specimen id",
        "d.csv",
        table([*GOOD[:3], ",0,30,60,1.0", *GOOD[4:]]),
        "column 'specimen_id', row 4: the specimen id is empty",
        None,
    ),
    (
        "all-missing target",
        "d.csv",
        table([r.rsplit(",", 1)[0] + "," for r in GOOD]),
        "no measured durability values (column 'durability' is empty in every row)",
        None,
    ),
    (
        "non-UTF-8 cell",
        "d.csv",
        table(GOOD).replace(b"B,0", b"caf\xe9,0"),
        "column 'specimen_id', row 4 is not UTF-8 text",
        None,
    ),
    ("non-UTF-8 header", "d.csv", table(GOOD).replace(b"humidity", b"humidit\xe9"), "not UTF-8", None),
    (
        "dates in two formats",
        "d.csv",
        table(["A,2024-01-01,20,50,1.0", "A,02/01/2024,20,50,0.9", "A,2024-01-03,20,50,"]),
        "column 'time', row 2: '02/01/2024' is not a date in the format of the rows before it",
        "column 'time', row 1: '2024-01-01' is not a number",
    ),
    (
        "a row with an extra field",
        "d.csv",
        table([*GOOD[:2], "A,2,20,50,,oops", *GOOD[3:]]),
        "row 3 has 6 fields but the header has 5",
        None,
    ),
    (
        "an unclosed quote",
        "d.csv",
        table([*GOOD[:3], 'B,0,30,60,"1.0', *GOOD[4:]]),
        "column 'durability', row 4: '1.0\\nB,1,30,60,0.8\\nB,2,30,60,\\n' is not a number",
        None,
    ),
    (
        "a column name twice",
        "d.csv",
        table(GOOD, HEADER.replace("humidity", "temperature")),
        "column 'temperature' appears twice in the header",
        None,
    ),
    (
        "two spellings of the time column",
        "d.csv",
        table([r + ",0" for r in GOOD], "specimen_id,Time,temperature,humidity,durability,TIME"),
        "'time' matches several columns (Time, TIME); give the exact spelling",
        None,
    ),
    (
        "corrupt gzip",
        "d.csv.gz",
        gzip.compress(table(GOOD))[:40],
        "the gzip data is corrupt or truncated",
        None,
    ),
    (
        "broken JSON Lines",
        "d.jsonl",
        b'{"specimen_id": "A", "time": 0}\n{"specimen_id": \n',
        "not valid JSON Lines",
        None,
    ),
    (
        "JSON Lines with text in a number",
        "d.jsonl",
        b'{"specimen_id":"A","time":0,"durability":1}\n{"specimen_id":"A","time":1,"durability":"high"}\n',
        "column 'durability', row 2: 'high' is not a number",
        "the model needs condition column 'temperature'",
    ),
    (
        "lacks a condition the model needs",
        "d.csv",
        table(
            [r.rsplit(",", 2)[0] + "," + r.rsplit(",", 1)[1] for r in GOOD],
            "specimen_id,time,temperature,durability",
        ),
        None,
        "the model needs condition column 'humidity', which this table lacks",
    ),
    (
        "a specimen with nothing measured",
        "d.csv",
        table([*GOOD[:3], "B,0,30,60,", "B,1,30,60,", "B,2,30,60,"]),
        None,
        "specimen B has no measured durability to warm up on",
    ),
]


def _write_case(folder: Path, name: str, content) -> Path:
    path = folder / name
    path.write_bytes(content(folder) if callable(content) else content)
    return path


@pytest.mark.parametrize(
    ("name", "content", "message", "forecast_message"),
    [case[1:] for case in DATA_CASES],
    ids=[case[0] for case in DATA_CASES],
)
def test_bad_table_is_refused_by_every_command(tmp_path, model, name, content, message, forecast_message):
    path = _write_case(tmp_path, name, content)
    source = path.read_bytes()
    if message is not None:
        assert_refused(invoke("schema", path, "--json"), message)
        out = Outputs(tmp_path, "old.safetensors", "new.safetensors")
        assert_refused(invoke("train", path, "-o", out.existing, *FAST), message)
        out.assert_untouched()
        assert_refused(invoke("train", path, "-o", out.new, *FAST), message)
        out.assert_untouched()
    out = Outputs(tmp_path, "old.csv", "eol.csv")
    r = invoke("forecast", path, "-m", model, "-o", out.existing, "--threshold", "0.5", "--eol-out", out.new)
    assert_refused(r, forecast_message or message)
    out.assert_untouched()
    assert path.read_bytes() == source


# -- stdin -----------------------------------------------------------------------------------------
STDIN_CASES = [
    ("empty", b"", "stdin: no input; pipe a table in"),
    ("cut gzip", gzip.compress(table(GOOD))[:30], "stdin: the gzip data is corrupt or truncated"),
    ("cut parquet", _good_parquet_cut(Path()), "stdin: not a readable Parquet file"),
    ("cut mid-row", table(GOOD)[:-8], "stdin: row 6 has 2 fields but the header has 5"),
    ("binary", b"\x00\x01\x02" * 100, "stdin: looks like a binary file"),
]


@pytest.mark.parametrize(("data", "message"), [c[1:] for c in STDIN_CASES], ids=[c[0] for c in STDIN_CASES])
def test_bad_stdin(tmp_path, model, data, message):
    assert_refused(invoke("schema", "-", input=data), message)
    out = Outputs(tmp_path, "old.csv", "new.csv")
    assert_refused(invoke("forecast", "-", "-m", model, "-o", out.existing, input=data), message)
    out.assert_untouched()


def test_closed_stdin_is_an_error_not_a_crash():
    """`durability schema - <&-`: Python then has no sys.stdin at all."""
    r = subprocess.run(
        [sys.executable, "-m", "durability_cli", "schema", "-"],
        stdin=None,
        capture_output=True,
        text=True,
        preexec_fn=lambda: os.close(0),
        timeout=60,
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        "Error: stdin: is closed; pipe a table in (cat data.csv | durability ...) or pass a file name"
    ]


# -- paths: folders, missing folders, outputs that are inputs ----------------------------------------
def test_a_folder_where_a_file_is_expected(tmp_path, model, plan):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a table")
    assert_refused(invoke("schema", folder), "is a folder with no .parquet files in it")
    out = Outputs(tmp_path, "old.csv", "new.csv")
    assert_refused(
        invoke("forecast", plan, "-m", folder, "-o", out.existing), "is a folder, not a model file"
    )
    assert_refused(invoke("inspect", folder), "is a folder, not a model file")
    assert_refused(invoke("forecast", plan, "-m", model, "-o", folder), "is a folder; give a file name")
    assert_refused(invoke("train", plan, "-o", folder, *FAST), "is a folder; give a file name")
    out.assert_untouched()


def test_parquet_folder_whose_files_disagree(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(
        pa.table({"specimen_id": ["A", "A"], "time": [0, 1], "durability": [1.0, 0.9]}), folder / "a.parquet"
    )
    pq.write_table(
        pa.table({"specimen_id": ["B", "B"], "time": [0, 1], "durability": ["x", "y"]}), folder / "b.parquet"
    )
    assert_refused(invoke("schema", folder), "the Parquet files in this folder cannot be read as one table")


def test_output_in_a_folder_that_does_not_exist(tmp_path, model, plan, small):
    missing = tmp_path / "no" / "such" / "folder"
    message = f"the folder {missing} does not exist; create it first (mkdir -p {missing})"
    assert_refused(invoke("forecast", plan, "-m", model, "-o", missing / "f.csv"), message)
    assert_refused(invoke("train", small, "-o", missing / "m.safetensors", *FAST), message)
    assert_refused(
        invoke("forecast", plan, "-m", model, "--threshold", "0.5", "--eol-out", missing / "e.csv"), message
    )
    assert not (tmp_path / "no").exists()


def test_output_that_is_an_input(tmp_path, model, plan, small):
    copy = tmp_path / "plan.csv"
    copy.write_bytes(plan.read_bytes())
    m = tmp_path / "m.safetensors"
    m.write_bytes(model.read_bytes())
    for args, victim in [
        (("forecast", copy, "-m", m, "-o", copy), copy),
        (("forecast", copy, "-m", m, "-o", m), m),
        (("forecast", copy, "-m", m, "-o", "-", "--threshold", "0.5", "--eol-out", copy), copy),
        (("train", copy, "-o", copy, *FAST), copy),
    ]:
        before = victim.read_bytes()
        assert_refused(invoke(*args), f"{victim}: the output would overwrite the input")
        assert victim.read_bytes() == before
    os.symlink(copy, tmp_path / "link.csv")  # the same file under another name
    assert_refused(
        invoke("forecast", copy, "-m", m, "-o", tmp_path / "link.csv"), "would overwrite the input"
    )
    assert copy.read_bytes() == plan.read_bytes()


def test_the_same_output_twice(tmp_path, model, plan):
    out = Outputs(tmp_path, "old.csv", "new.csv")
    r = invoke(
        "forecast", plan, "-m", model, "-o", out.existing, "--threshold", "0.5", "--eol-out", out.existing
    )
    assert_refused(r, "given as two different outputs")
    out.assert_untouched()


def test_missing_input_files(tmp_path, model):
    out = Outputs(tmp_path, "old.csv", "new.csv")
    assert_refused(invoke("schema", tmp_path / "nope.csv"), "nope.csv: no such file; check the path")
    r = invoke("forecast", tmp_path / "nope.csv", "-m", model, "-o", out.existing)
    assert_refused(r, "nope.csv: no such file; check the path")
    r = invoke("forecast", tmp_path / "nope.csv", "-m", tmp_path / "nope.safetensors", "-o", out.existing)
    assert_refused(r, "nope.safetensors: model file not found")
    out.assert_untouched()


@pytest.mark.parametrize(
    "option, name, message",
    [
        ("-o", "forecast.xyz", "cannot tell the output format from the name"),
        ("--eol-out", "eol.xlsx", "tables are not written as Excel; use .csv (Excel opens it)"),
        ("--paths-out", "paths", "cannot tell the output format from the name"),
        ("--plot", "forecast.jpg", "unsupported picture format; use .png or .svg"),
    ],
)
def test_unknown_output_extension_is_refused_before_any_work(tmp_path, model, plan, option, name, message):
    out = Outputs(tmp_path, "old.csv", name)
    args = ["--threshold", "0.6"] if option == "--eol-out" else []
    r = invoke("forecast", plan, "-m", model, option, out.new, *args, "--samples", "0", "-q")
    assert_refused(r, f"{out.new}: {message}")
    out.assert_untouched()


def test_unknown_history_extension_is_refused_before_training(tmp_path, small):
    """A typo in --history must not cost a training run: nothing is trained or written."""
    out = Outputs(tmp_path, "old.csv", "history.txt2")
    model_file = tmp_path / "m.safetensors"
    r = invoke("train", small, "-o", model_file, "--history", out.new, *FAST)
    assert_refused(r, "cannot tell the output format from the name")
    assert not model_file.exists()
    out.assert_untouched()


@pytest.mark.parametrize("chunked", [[], ["--chunk-specimens", "3"], ["--nproc", "2"]])
def test_a_specimen_never_measured_is_refused_by_train(tmp_path, small, chunked):
    """One specimen whose durability is empty in every row was trained on silently, and could be
    drawn as a validation specimen that scored nothing ("validating on 2", one scored)."""
    df = pd.read_csv(small)
    df.loc[df.specimen_id == "C004", "durability"] = np.nan
    data, model_file = tmp_path / "blank.csv", tmp_path / "m.safetensors"
    df.to_csv(data, index=False)
    r = invoke("train", data, "-o", model_file, *FAST, "--ensemble", "1", "--no-trend-line", *chunked)
    assert_refused(r, f"{data}: specimen C004 has no measured durability (every cell of 'durability' empty)")
    assert not model_file.exists()


@pytest.mark.parametrize("kind", ["model", "xz", "bz2"])
def test_a_model_file_or_another_compression_given_as_the_table_is_named(tmp_path, small, model, kind):
    """Each was 'a binary file, not CSV text ...; pass --format parquet if it is Parquet'."""
    import bz2
    import lzma

    if kind == "model":
        data, said = model, "is a model or checkpoint file (safetensors), not a table; a model goes after -m"
    else:
        data = tmp_path / f"t.csv.{kind}"
        data.write_bytes((lzma if kind == "xz" else bz2).compress(small.read_bytes()))
        said = f"is {'xz' if kind == 'xz' else 'bzip2'}-compressed, which is not read (gzip is)"
    assert_refused(invoke("schema", data), f"{data}: {said}")
    assert_refused(invoke("forecast", "-", "-m", model, input=data.read_bytes()), f"stdin: {said}")


def test_forecast_format_option_allows_any_output_name(tmp_path, model, plan):
    r = invoke("forecast", plan, "-m", model, "-o", tmp_path / "fc.out", "--output-format", "csv", "-q")
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "fc.out").read_text().startswith("specimen_id,")


def test_a_failed_write_is_one_line_and_keeps_the_old_file(tmp_path, model, plan, monkeypatch):
    """The disk fills up while the forecast is written: exit 1 (a failure, not bad input)."""

    def full(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    out = Outputs(tmp_path, "old.csv", "new.csv")
    monkeypatch.setattr(Path, "write_bytes", full)
    r = invoke("forecast", plan, "-m", model, "-o", out.existing, "--samples", "0", "-q")
    assert_refused(r, f"{out.existing}: could not write the file (No space left on device)", code=1)
    out.assert_untouched()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize(
    "command", [["forecast", "{plan}", "-m", "{model}", "-q"], ["schema", "{plan}", "--json"]]
)
def test_stdout_on_a_full_disk(model, plan, command):
    """`durability forecast ... > /dev/full`: one line, exit 1, no traceback; the JSON commands
    named no file ("No space left on device (OSError)")."""
    args = [a.format(plan=plan, model=model) for a in command]
    with open("/dev/full", "wb") as full:
        r = subprocess.run(
            [sys.executable, "-m", "durability_cli", *args],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    assert r.returncode == 1, r.stderr
    assert r.stderr.splitlines() == ["Error: stdout: could not write the output (No space left on device)"]


@pytest.mark.parametrize(
    "command", [["forecast", "{plan}", "-m", "{model}", "-q"], ["schema", "{plan}", "--json"]]
)
def test_stdout_closed(model, plan, command):
    """`durability forecast ... >&-` ended on "unexpected AttributeError: 'NoneType' object has no
    attribute 'flush'", exit 1."""
    args = [a.format(plan=plan, model=model) for a in command]
    r = subprocess.run(
        [sys.executable, "-m", "durability_cli", *args], stdout=None, stderr=subprocess.PIPE, text=True,
        timeout=120, preexec_fn=lambda: os.close(1),
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines() == ["Error: stdout: is closed; give -o FILE, or leave stdout open"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--quantiles", "0.1,1.5"], "--quantiles must lie strictly between 0 and 1, got 1.5"),
        (["--quantiles", "low,high"], "--quantiles must be numbers separated by commas"),
        (["--samples", "-1"], "--samples must be between 0 and 100000, got -1"),
        (["--samples", "1"], "--samples 1 draws one path, and every quantile of one path is that path"),
        (["--eol-out", "EOL"], "--eol-out needs --threshold"),
    ],
    ids=[
        "quantile above 1",
        "quantiles not numbers",
        "negative samples",
        "one sample: a band of width 0",
        "eol without threshold",
    ],
)
def test_bad_forecast_options(tmp_path, model, plan, args, message):
    out = Outputs(tmp_path, "old.csv", "eol.csv")
    args = [out.new if a == "EOL" else a for a in args]
    assert_refused(invoke("forecast", plan, "-m", model, "-o", out.existing, *args), message)
    out.assert_untouched()


# -- bad model files -------------------------------------------------------------------------------
def _parts(model: Path) -> tuple[dict, dict]:
    raw = model.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    meta = json.loads(json.loads(raw[8 : 8 + n])["__metadata__"]["durability"])
    return st_load(raw), meta


def _rebuilt(tensors=None, meta=None, meta_text=None, edit=None):
    """A maker of a model file that is the real one with its tensors or metadata edited."""

    def make(model: Path, folder: Path) -> bytes:
        t, m = _parts(model)
        t = {**t, **(tensors or {})}
        if edit:
            edit(t, m)
        m = {**m, **(meta or {})}
        return st_save(t, metadata={"durability": meta_text if meta_text is not None else json.dumps(m)})

    return make


class _Marker:
    """Unpickling this creates a marker file: proof that loading ran code from the file."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def _torch_pickle(model: Path, folder: Path) -> bytes:
    sink = io.BytesIO()
    torch.save({"weights": _Marker(folder / "PWNED")}, sink)
    return sink.getvalue()


def _plain_pickle(model: Path, folder: Path) -> bytes:
    return pickle.dumps(_Marker(folder / "PWNED"), protocol=2)


def _old_pickle(model: Path, folder: Path) -> bytes:
    return pickle.dumps(_Marker(folder / "PWNED"), protocol=0)  # text-like: no \x80 magic


def _drop(key):
    return lambda t, m: t.pop(key)


def _scaler(**values):
    return lambda t, m: m["scaler"].update(values)


# (case id, maker(model, folder) -> bytes, message)
MODEL_CASES = [
    ("torch.save pickle", _torch_pickle, "this is a pickle or torch.save file"),
    ("plain pickle", _plain_pickle, "this is a pickle or torch.save file"),
    ("protocol-0 pickle", _old_pickle, "not a durability model file, or truncated"),
    ("empty", lambda m, f: b"", "the file is truncated (only 0 bytes)"),
    ("cut to 5 bytes", lambda m, f: m.read_bytes()[:5], "the file is truncated (only 5 bytes)"),
    (
        "cut in half",
        lambda m, f: m.read_bytes()[: len(m.read_bytes()) // 2],
        "or truncated (bad safetensors header)",
    ),
    (
        "last bytes cut",
        lambda m, f: m.read_bytes()[:-16],
        "does not fit in the file; it is truncated or damaged",
    ),
    ("a CSV file", lambda m, f: table(GOOD), "not a durability model file, or truncated"),
    ("header length 2**60", lambda m, f: struct.pack("<Q", 2**60) + b"{}", "bad safetensors header"),
    (
        "metadata not JSON",
        _rebuilt(meta_text='{"format": "durability-model", '),
        "metadata is not valid JSON",
    ),
    ("metadata a JSON list", _rebuilt(meta_text="[1, 2]"), "the durability metadata is not a JSON object"),
    (
        "no durability metadata",
        lambda m, f: st_save(_parts(m)[0]),
        "a safetensors file, but not a durability model",
    ),
    (
        "tensor of the wrong shape",
        _rebuilt(tensors={"head.weight": torch.zeros(1, 9)}),
        "tensor 'head.weight' has shape (1, 9) torch.float32, the architecture needs (1, 8) torch.float32",
    ),
    (
        "tensor of the wrong dtype",
        _rebuilt(edit=lambda t, m: t.update({"head.weight": t["head.weight"].double()})),
        "tensor 'head.weight' has shape (1, 8) torch.float64, the architecture needs (1, 8) torch.float32",
    ),
    (
        "a tensor missing",
        _rebuilt(edit=_drop("head.bias")),
        "do not match the architecture in the metadata (missing",
    ),
    ("an extra tensor", _rebuilt(tensors={"extra": torch.zeros(2)}), "(unexpected ['extra'])"),
    (
        "NaN weights",
        _rebuilt(tensors={"head.bias": torch.tensor([float("nan")])}),
        "tensor 'head.bias' holds NaN or infinite weights",
    ),
    (
        "newer format version",
        _rebuilt(meta={"format_version": 99}),
        "made by a newer durability (format 99,",
    ),
    ("format version as text", _rebuilt(meta={"format_version": "1"}), "the metadata has no format version"),
    (
        "a training checkpoint",
        _rebuilt(meta={"format": "durability-checkpoint"}),
        "this is a training checkpoint, not a durability-model file (use it with --resume)",
    ),
    (
        "no scaling",
        _rebuilt(edit=lambda t, m: m.pop("scaler")),
        "the model metadata is incomplete or malformed",
    ),
    (
        "an unknown cell",
        _rebuilt(edit=lambda t, m: m["model_config"].update(cell="transformer")),
        "malformed (--cell must be one of lstm, gru; got 'transformer')",
    ),
    (
        "trend line left to choose",  # a trained model's line is decided: true or false
        _rebuilt(edit=lambda t, m: m["model_config"].update(trend_line="auto")),
        "trend_line is 'auto'; a trained model's is true or false",
    ),
    (
        "hidden size edited",
        _rebuilt(edit=lambda t, m: m["model_config"].update(hidden=9)),
        "the architecture needs (36, ",  # 4 x 9 units; the inputs depend on the trend line auto chose
    ),
    ("scale of zero", _rebuilt(edit=_scaler(y_std=0.0)), "malformed (y_std is 0.0, must be positive)"),
    ("scale as text", _rebuilt(edit=_scaler(y_std="big")), "malformed (y_std is 'big', not a finite number)"),
    ("one condition scale short", _rebuilt(edit=_scaler(cond_std=[1.0])), "the scaling has 2 condition(s)"),
    (
        "summary not an object",
        _rebuilt(meta={"summary": "fine"}),
        "the training summary is not a JSON object",
    ),
    (
        "envelope not a pair",
        _rebuilt(edit=lambda t, m: m["summary"].update(envelope={"temperature": 5})),
        "envelope 'temperature' is not a [low, high] pair",
    ),
    (
        "latent population score as text",
        _rebuilt(edit=lambda t, m: m["summary"].update(latent_val_rmse_population="low")),
        "latent_val_rmse_population is 'low', not a number",
    ),
]


# Damage found only by reading the weights or comparing them with the architecture: `inspect`
# reads the header and the metadata without torch and shows them; the commands that use the
# weights refuse the file.
WEIGHTS_ONLY = ("the architecture", "(unexpected", "NaN or infinite weights")


@pytest.mark.parametrize(("make", "message"), [c[1:] for c in MODEL_CASES], ids=[c[0] for c in MODEL_CASES])
def test_bad_model_file_is_refused(tmp_path, model, plan, make, message):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(make(model, tmp_path))
    out = Outputs(tmp_path, "old.csv", "eol.csv")
    r = invoke("forecast", plan, "-m", bad, "-o", out.existing, "--threshold", "0.5", "--eol-out", out.new)
    assert_refused(r, message)
    if any(found in message for found in WEIGHTS_ONLY):
        assert invoke("inspect", bad).exit_code == 0  # inspect reads the metadata, not the weights
    else:
        assert_refused(invoke("inspect", bad), message)
    assert_refused(invoke("evaluate", plan, "-m", bad, "--context", "5", "-o", out.new), message)
    assert_refused(invoke("train", plan, "--init-from", bad, "-o", out.new, *FAST), message)
    out.assert_untouched()
    assert not (tmp_path / "PWNED").exists()


def test_pickle_marker_would_really_be_created_by_unpickling(tmp_path):
    """The marker is a real proof: loading the same bytes with pickle does create it."""
    pickle.loads(_plain_pickle(Path(), tmp_path))
    assert (tmp_path / "PWNED").exists()


# -- odd but fine ----------------------------------------------------------------------------------
def _schema_json(path) -> dict:
    r = invoke("schema", path, "--json")
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def test_utf8_bom_is_read(tmp_path, model):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + table(GOOD))
    info = _schema_json(path)
    assert info["roles"]["id"] == "specimen_id" and info["n_specimens"] == 2
    r = invoke("forecast", path, "-m", model, "-q")
    assert r.exit_code == 0, r.stderr
    assert pd.read_csv(io.StringIO(r.stdout)).specimen_id.tolist() == ["A", "B"]


def test_rows_out_of_order_are_sorted_on_read(tmp_path, model):
    ordered = tmp_path / "ordered.csv"
    ordered.write_bytes(table(GOOD))
    shuffled = tmp_path / "shuffled.csv"
    shuffled.write_bytes(table([GOOD[i] for i in (5, 2, 1, 3, 0, 4)]))  # times decrease within A and B
    ds = load_dataset(str(shuffled))
    assert ds.frame.specimen_id.tolist() == ["A"] * 3 + ["B"] * 3
    assert ds.frame.time.tolist() == [0, 1, 2, 0, 1, 2]
    a = invoke("forecast", ordered, "-m", model, "-q", "--seed", "3")
    b = invoke("forecast", shuffled, "-m", model, "-q", "--seed", "3")
    assert a.exit_code == 0 and b.exit_code == 0, b.stderr
    assert a.stdout == b.stdout


def test_negative_times_are_fine(tmp_path):
    path = tmp_path / "neg.csv"
    path.write_bytes(
        table([r.replace(",0,", ",-2,").replace(",1,", ",-1,").replace(",2,", ",0,") for r in GOOD])
    )
    info = _schema_json(path)
    assert info["time_range"] == {"min": -2.0, "max": 0.0}


def test_ten_thousand_columns_work_quickly(tmp_path, model):
    """Decision: a wide table is read; the extra numeric columns become conditions (schema) or are
    ignored (a model reads only its own columns)."""
    extra = [f"c{i}" for i in range(10_000 - 5)]
    rows = [r + ",0.5" * len(extra) for r in GOOD]
    path = tmp_path / "wide.csv"
    path.write_bytes(table(rows, ",".join([HEADER, *extra])))
    start = time.perf_counter()
    info = _schema_json(path)
    r = invoke("forecast", path, "-m", model, "-q", "--samples", "10")
    elapsed = time.perf_counter() - start
    assert len(info["roles"]["covariates"]) == 2 + len(extra)
    assert r.exit_code == 0, r.stderr
    assert len(pd.read_csv(io.StringIO(r.stdout))) == 2
    assert elapsed < 30, f"{elapsed:.1f} s"


def test_a_five_megabyte_cell_is_read(tmp_path):
    """One cell longer than pyarrow's 1 MB read block (a pasted log, a JSON blob)."""
    note = "x" * 5_000_000
    path = tmp_path / "huge.csv"
    path.write_bytes(
        table([r + (f",{note}" if i == 0 else ",short") for i, r in enumerate(GOOD)], HEADER + ",note")
    )
    info = _schema_json(path)
    assert info["n_rows"] == 6
    assert any("ignored non-numeric column(s) 'note'" in n for n in info["notes"])


def test_a_line_break_in_a_name_still_gives_one_line(tmp_path):
    path = tmp_path / "nl.csv"
    path.write_bytes(b'specimen_id,time,"dura\nbility"\nA,0,1\nA,1,2\n')
    assert_refused(invoke("schema", path), "no target column 'durability'")


# -- a real pipeline: the reader goes away --------------------------------------------------------
@pytest.mark.parametrize("out", [[], ["-o", "/dev/stdout"]])
def test_sigpipe_ends_quietly(tmp_path, model, out):
    """`durability forecast ... | head -1` on an output larger than the pipe buffer; through
    `-o /dev/stdout` too (it said "could not write the output (Broken pipe)", exit 1)."""
    df = pd.read_csv(SAMPLE / "coating.csv")
    df.loc[df.groupby("specimen_id").cumcount() >= 20, "durability"] = np.nan
    plan = tmp_path / "plan.csv"
    df.to_csv(plan, index=False)  # about 8,000 forecast rows, some 800 kB of CSV
    err, status = tmp_path / "stderr.txt", tmp_path / "status.txt"
    cmd = (
        f"'{sys.executable}' -m durability_cli forecast '{plan}' -m '{model}' --samples 0 -q {' '.join(out)} 2>'{err}' "
        f"| head -1; echo ${{PIPESTATUS[0]}} >'{status}'"
    )
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120)
    assert r.stdout.startswith("specimen_id,time,durability_mean")
    assert len(r.stdout.splitlines()) == 1
    assert err.read_text() == ""
    assert int(status.read_text()) in (0, 141)  # 141 = 128 + SIGPIPE, what most tools exit with


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            [
                "forecast",
                "plan.csv",
                "--xyzzy",
                "1",
            ],  # no option looks like it (--bogus would suggest --bounds)
            "Error: No such option: --xyzzy; see durability forecast --help",
        ),
        (["train"], "Error: Missing argument 'DATA'; see durability train --help"),
        (  # a choice is checked by the parser (the API checks it too: test_cli_output)
            ["forecast", "plan.csv", "-m", "m.safetensors", "--direction", "sideways"],
            "Error: Invalid value for '--direction': 'sideways' is not one of 'below', 'above'; see durability forecast --help",
        ),
        (
            ["forecast", "plan.csv", "-m", "m.safetensors", "--samples", "many"],
            "Error: Invalid value for '--samples': ",
        ),
        (
            ["forcast", "plan.csv"],
            "Error: No such command 'forcast'. Did you mean 'forecast'? see durability --help",
        ),
    ],
)
def test_usage_errors_are_one_line_from_the_real_command(args, expected, tmp_path):
    """What the option parser rejects (unknown option or command, missing argument, a value of the
    wrong type) is one line and exit 2 like any other bad input, not the parser's framed box."""
    run = subprocess.run(
        [sys.executable, "-m", "durability_cli", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith(expected) and run.stderr.count("\n") == 1, run.stderr
    assert run.stdout == "" and not list(tmp_path.iterdir())


def test_no_arguments_still_show_the_help():
    run = subprocess.run([sys.executable, "-m", "durability_cli"], capture_output=True, text=True, timeout=60)
    assert run.stdout.count("Usage: durability") == 1 and "forecast" in run.stdout


@pytest.mark.parametrize("cut", [5, 12])
def test_a_truncated_model_whose_header_length_starts_with_0x80_is_not_called_a_pickle(tmp_path, cut):
    from durability_cli.errors import ModelFileError
    from durability_cli.modelfile import read_header

    path = tmp_path / "m.safetensors"
    path.write_bytes((struct.pack("<Q", 0x0380) + b'{"__metadata__": {}}' + b" " * 900)[:cut])
    with pytest.raises(ModelFileError, match="truncated") as caught:
        read_header(path, expect="durability-model")
    assert "pickle" not in str(caught.value)
    path.write_bytes(b"\x80\x02\x8a\x0alZ\xfc\x9cF\xf9 j\xa8P\x19.")  # how torch.save's legacy format starts
    with pytest.raises(ModelFileError, match="pickle"):
        read_header(path, expect="durability-model")
