"""Reading and writing tables: round trips, stdin/stdout, atomic writes, output checks, errors."""

from __future__ import annotations

import gzip
import io
import json
import os
import stat

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from durability_cli.cli import app
from durability_cli.errors import InputError
from durability_cli.io import atomic_path, check_outputs, read_table, write_table
from durability_cli.schema import load_dataset

FRAME = pd.DataFrame(
    {
        "specimen_id": ["A", "A", "B", "B"],
        "cycle": [1, 2, 1, 2],
        "temp": [20.5, 21.0, 19.0, 18.5],
        "durability": [100.0, np.nan, 99.0, 97.5],
        "material": ["steel", "steel", "alu, cast", "alu, cast"],  # a comma: needs quoting in CSV
    }
)
ROOT = hasattr(os, "geteuid") and os.geteuid() == 0  # permission checks do not apply to root


# -- round trips -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz", "t.parquet", "t.pq", "t.jsonl", "t.ndjson", "T.CSV"])
def test_write_then_read_gives_the_same_table(tmp_path, name):
    path = str(tmp_path / name)
    write_table(FRAME, path)
    pd.testing.assert_frame_equal(read_table(path), FRAME)


def test_csv_gz_is_really_gzipped(tmp_path):
    write_table(FRAME, str(tmp_path / "t.csv.gz"))
    write_table(FRAME, str(tmp_path / "t.csv"))
    plain = (tmp_path / "t.csv").read_bytes()
    assert gzip.decompress((tmp_path / "t.csv.gz").read_bytes()) == plain


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_format_overrides_the_extension(tmp_path, fmt):
    path = str(tmp_path / "table.dat")
    write_table(FRAME, path, fmt=fmt)
    pd.testing.assert_frame_equal(read_table(path, fmt=fmt), FRAME)


def test_folder_of_parquet_files_with_hive_partitions(tmp_path):
    folder = tmp_path / "parts"
    for material, part in FRAME.groupby("material"):
        sub = folder / f"material={material}"
        sub.mkdir(parents=True)
        write_table(part.drop(columns="material"), str(sub / "part-0.parquet"))
    (folder / "_SUCCESS").write_text("")  # written by Spark; not data
    (folder / "README.txt").write_text("not a table")
    back = read_table(str(folder)).sort_values(["specimen_id", "cycle"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(back, FRAME, check_like=True, check_dtype=False)


def test_folder_of_plain_parquet_files(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    write_table(FRAME.iloc[:2], str(folder / "a.parquet"))
    write_table(FRAME.iloc[2:], str(folder / "b.parquet"))
    pd.testing.assert_frame_equal(read_table(str(folder)), FRAME)


def test_semicolon_separated_csv_is_read(write_csv):
    path = write_csv("specimen;cycle;durability\nA;1;100\nA;2;99\n")
    assert list(read_table(path).columns) == ["specimen", "cycle", "durability"]


def test_utf8_bom_is_not_part_of_the_first_name(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfspecimen,cycle\nA,1\n")
    assert list(read_table(str(path)).columns) == ["specimen", "cycle"]


# -- stdin and stdout ------------------------------------------------------------------------------
def _encoded(tmp_path, name: str) -> bytes:
    path = tmp_path / name
    write_table(FRAME, str(path))
    return path.read_bytes()


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz", "t.parquet", "t.jsonl"])
def test_stdin_format_is_sniffed(runner, tmp_path, name):
    result = runner.invoke(app, ["schema", "-", "--json"], input=_encoded(tmp_path, name))
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["source"] == "stdin"
    assert (info["n_rows"], info["n_specimens"], info["n_observed_target"]) == (4, 2, 3)
    assert info["roles"]["covariates"] == ["temp"]


def test_stdin_format_flag(runner, tmp_path):
    data = _encoded(tmp_path, "t.parquet")
    result = runner.invoke(app, ["schema", "-", "--json", "--format", "parquet"], input=data)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n_rows"] == 4


def test_stdin_text_input(runner):
    text = "specimen,cycle,durability\nA,1,100\nA,2,99\n"
    result = runner.invoke(app, ["schema", "-", "--json"], input=text)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n_rows"] == 2


@pytest.mark.parametrize("where", ["file", "txt file", "stdin", "gzip stdin"])
def test_a_json_array_is_named_with_the_conversion(runner, tmp_path, where):
    """A `jq -s` or pandas orient="records" file was read as a table of columns 0, 1, 2, ...
    (from a file) or as empty (from stdin)."""
    rows = [{"specimen": "A", "cycle": i, "durability": 1 - i / 10} for i in range(3)]
    path = tmp_path / ("rows.txt" if where == "txt file" else "rows.json")  # .txt: read as CSV
    path.write_text(json.dumps(rows, indent=1))
    if where.endswith("file"):
        result = runner.invoke(app, ["schema", str(path)])
        name = str(path)
    else:
        blob = path.read_bytes()
        result = runner.invoke(app, ["schema", "-"], input=gzip.compress(blob) if "gzip" in where else blob)
        name = "stdin"
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(
        f"Error: {name}: is one JSON array of rows ([{{...}}, ...]), not JSON Lines"
    )
    assert "jq -c '.[]'" in result.stderr


def test_a_csv_that_begins_as_bzip2_s_magic_is_read(tmp_path):
    """A header "BZh_id,..." was taken for a bzip2 file (its magic is BZh, a digit and a block's)."""
    path = tmp_path / "t.csv"
    path.write_text("BZh_id,cycle,durability\nA,1,1.0\nA,2,0.9\n")
    assert list(read_table(str(path)).columns) == ["BZh_id", "cycle", "durability"]


def test_a_json_true_among_numbers_is_not_read_as_1(runner, tmp_path):
    """pandas read `true` in a column of numbers as 1.0: a forecast moved, silently; CSV refuses
    TRUE. A column wholly of true/false stays a switch (0/1)."""
    rows = [
        {"specimen": "A", "cycle": i, "temp": 20.0 + i, "durability": 1 - i / 10, "lamp": i % 2 == 0}
        for i in range(4)
    ]
    rows[2]["durability"] = True
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = runner.invoke(app, ["schema", str(path)])
    assert result.exit_code == 2
    assert f"{path}: column 'durability', row 3: 'true' is not a number" in result.stderr
    rows[2]["durability"] = 0.8
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = runner.invoke(app, ["schema", str(path), "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["roles"]["covariates"] == ["temp", "lamp"]
    # a switch with an empty cell is still a switch (every true was blamed): the empty cell is
    # what train names
    rows[1]["lamp"] = None
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = runner.invoke(app, ["schema", str(path), "--covariates", "temp,lamp"])
    assert (
        result.exit_code == 2
        and "condition 'lamp' is empty for specimen A at time 1 (row 2)" in result.stderr
    )


def test_empty_stdin_is_an_error(runner):
    result = runner.invoke(app, ["schema", "-"], input=b"")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: stdin: no input; pipe a table in")


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_write_to_stdout(capsysbinary, fmt):
    write_table(FRAME, "-", fmt=None if fmt == "csv" else fmt)
    out = capsysbinary.readouterr().out
    if fmt == "csv":
        back = pd.read_csv(io.BytesIO(out))
    elif fmt == "parquet":
        back = pq.read_table(io.BytesIO(out)).to_pandas()
    else:
        back = pd.read_json(io.BytesIO(out), lines=True)
    pd.testing.assert_frame_equal(back, FRAME, check_dtype=False)


def test_csv_has_no_quotes_unless_a_value_needs_them(tmp_path):
    path = tmp_path / "t.csv"
    write_table(FRAME.drop(columns="material"), str(path))
    assert path.read_text().splitlines()[:3] == [
        "specimen_id,cycle,temp,durability",
        "A,1,20.5,100",
        "A,2,21,",
    ]
    write_table(FRAME, str(path))
    assert path.read_text().splitlines()[3] == '"B",1,19,99,"alu, cast"'


# -- atomic writes ---------------------------------------------------------------------------------
def test_atomic_path_keeps_the_old_file_when_the_block_fails(tmp_path):
    target = tmp_path / "model.safetensors"
    target.write_text("good")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half written")
            raise RuntimeError("boom")
    assert target.read_text() == "good"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_atomic_path_replaces_on_success(tmp_path):
    target = tmp_path / "fig.png"
    with atomic_path(str(target)) as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith("-fig.png")  # writers see the extension
        tmp.write_text("new")
    assert target.read_text() == "new"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.png"]


def test_atomic_path_keeps_the_mode_of_the_file_it_replaces(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    target.chmod(0o640)
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_failed_write_table_leaves_the_previous_file(tmp_path):
    path = tmp_path / "t.parquet"
    write_table(FRAME, str(path))
    before = path.read_bytes()
    unwritable = pd.DataFrame({"x": [object(), 1]})  # Arrow cannot store a bare object
    with pytest.raises(Exception):  # noqa: B017 - any failure will do
        write_table(unwritable, str(path))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]


def test_write_table_unknown_extension(tmp_path):
    with pytest.raises(InputError, match="cannot tell the output format from the name"):
        write_table(FRAME, str(tmp_path / "t.dat"))
    with pytest.raises(InputError, match=r"tables are not written as Excel; use \.csv \(Excel opens it\)"):
        write_table(FRAME, str(tmp_path / "t.xlsx"))


def test_output_format_decides_only_where_the_destination_names_none(tmp_path):
    """-o fc.xlsx --output-format csv wrote CSV under an Excel name; --output-format jsonl with -o
    fx.csv wrote JSON Lines into fx.csv, and could not reach --eol-out - on stdout."""
    from durability_cli.io import format_for

    assert format_for("-", "jsonl") == "jsonl" and format_for("-", None) == "csv"
    assert format_for(str(tmp_path / "fx.csv"), "jsonl") == "csv"  # the name decides
    assert format_for(str(tmp_path / "fx.parquet"), "csv") == "parquet"
    assert format_for(str(tmp_path / "out.txt"), "jsonl") == "jsonl"  # .txt names none
    assert format_for("/dev/null", "parquet") == "parquet" and format_for("/dev/null", None) == "csv"
    assert format_for(str(tmp_path / "results"), None) is None
    with pytest.raises(InputError, match="tables are not written as Excel"):
        check_outputs([str(tmp_path / "t.xlsx")], [], tables=(str(tmp_path / "t.xlsx"),), fmt="csv")
    with pytest.raises(InputError, match="comma-separated, not tab-separated"):
        check_outputs([str(tmp_path / "t.tsv")], [], tables=(str(tmp_path / "t.tsv"),))
    for name, fmt in (("t", "jsonl"), ("t.parquet", "csv"), ("t.txt", "jsonl")):
        check_outputs([str(tmp_path / name)], [], tables=(str(tmp_path / name),), fmt=fmt)
    check_outputs(["/dev/null"], [], tables=("/dev/null",), fmt="jsonl")


# -- output checks ---------------------------------------------------------------------------------
def test_check_outputs_accepts_new_files_stdout_and_none(tmp_path):
    inp = tmp_path / "in.csv"
    inp.write_text("x\n1\n")
    check_outputs([str(tmp_path / "out.csv"), None, "-"], [str(inp), None, "-"])


@pytest.mark.parametrize(
    "case, message",
    [
        ("same", "the output would overwrite the input"),
        ("same-spelled-differently", "the output would overwrite the input"),
        ("missing-folder", "does not exist; create it first (mkdir -p"),
        ("folder", "is a folder; give a file name for the output"),
        ("twice", "given as two different outputs"),
    ],
)
def test_check_outputs_errors(tmp_path, monkeypatch, case, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.csv").write_text("x\n1\n")
    (tmp_path / "sub").mkdir()
    outputs = {
        "same": ["in.csv"],
        "same-spelled-differently": ["sub/../in.csv"],
        "missing-folder": ["nope/out.csv"],
        "folder": ["sub"],
        "twice": ["out.csv", "./out.csv"],
    }[case]
    with pytest.raises(InputError) as info:
        check_outputs(outputs, ["in.csv"])
    assert message in str(info.value)
    assert str(info.value).startswith(outputs[-1])


def test_check_outputs_same_file_through_a_link(tmp_path):
    (tmp_path / "in.csv").write_text("x\n1\n")
    os.link(tmp_path / "in.csv", tmp_path / "alias.csv")
    with pytest.raises(InputError, match="would overwrite the input"):
        check_outputs([str(tmp_path / "alias.csv")], [str(tmp_path / "in.csv")])


@pytest.mark.skipif(ROOT, reason="root can write anywhere")
def test_check_outputs_unwritable_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(InputError, match="cannot write to the folder"):
            check_outputs([str(locked / "out.csv")], [])
    finally:
        locked.chmod(0o700)


# -- read errors -----------------------------------------------------------------------------------
def _write_bytes(tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("empty.csv", b"", "the file is empty (it has no rows)"),
        ("header.csv", b"a,b\n", "the table has no rows (columns: a, b)"),
        ("blank.csv", b"\n\n", "the first line is empty; the first line must be the column names"),
        ("garbage.csv", b"\x00\x01\x02\xff" * 20, "looks like a binary file, not CSV text"),
        ("latin1.csv", b"a,name\n1,ok\n2,caf\xe9\n", "column 'name', row 2 is not UTF-8 text"),
        ("latin1head.csv", b"a,caf\xe9\n1,2\n", "the header is not UTF-8 text"),
        ("ragged.csv", b"a,b\n1,2\n1,2,3\n", "row 2 has 3 fields but the header has 2"),
        ("twice.csv", b"a,b,a\n1,2,3\n", "column 'a' appears twice in the header"),
        ("bad.csv.gz", b"\x1f\x8b\x08\x00garbage", "the gzip data is corrupt or truncated"),
        ("bad.parquet", b"PAR1 not really PAR1", "not a readable Parquet file ("),
        ("bad.jsonl", b'{"a": 1}\n{"a": \n', "not valid JSON Lines ("),
    ],
)
def test_read_errors(tmp_path, name, data, message):
    path = _write_bytes(tmp_path, name, data)
    with pytest.raises(InputError) as info:
        read_table(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_missing_file(tmp_path):
    path = str(tmp_path / "nope.csv")
    with pytest.raises(InputError, match=r"nope\.csv: no such file; check the path$"):
        read_table(path)


def test_folder_without_parquet_files(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="is a folder with no .parquet files in it"):
        read_table(str(tmp_path))


@pytest.mark.skipif(ROOT, reason="root can read anything")
def test_unreadable_file(tmp_path):
    path = tmp_path / "secret.csv"
    path.write_text("a\n1\n")
    path.chmod(0)
    try:
        with pytest.raises(InputError, match="permission denied"):
            read_table(str(path))
    finally:
        path.chmod(0o600)


def test_unknown_format_flag(tmp_path):
    with pytest.raises(InputError, match="--format xls: unknown format; use one of csv, parquet"):
        read_table(str(tmp_path / "x"), fmt="xls")
    # the output's flag is named (it said --format), and stdout is never gzipped (csv.gz wrote CSV)
    for fmt in ("xyz", "csv.gz"):
        with pytest.raises(
            InputError, match=f"--output-format {fmt}: unknown format; use one of csv, parquet"
        ):
            write_table(FRAME, "-", fmt=fmt)


# -- property: readers never crash -----------------------------------------------------------------
_NAMES = ["specimen", "cycle", "time", "durability", "temp", "date", "material", "t", ""]
_CELLS = ["", "1", "2", "1.5", "-3", "inf", "nan", "A", "B", "1,234", "2024-01-01", '"x,y"', "é"]
csv_like = st.builds(
    lambda header, rows: (",".join(header) + "\n" + "\n".join(",".join(r) for r in rows)).encode(),
    st.lists(st.sampled_from(_NAMES), min_size=1, max_size=5),
    st.lists(st.lists(st.sampled_from(_CELLS), min_size=1, max_size=5), max_size=6),
)
arbitrary = st.one_of(st.binary(max_size=200), csv_like)
_FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_FUZZ
@given(data=arbitrary)
def test_arbitrary_bytes_as_a_csv_file_raise_only_input_error(tmp_path, data):
    path = _write_bytes(tmp_path, "fuzz.csv", data)
    try:
        read_table(path)
        load_dataset(path)
    except InputError:
        pass


@_FUZZ
@given(data=arbitrary)
def test_arbitrary_bytes_on_stdin_raise_only_input_error(runner, data):
    result = runner.invoke(app, ["schema", "-", "--json"], input=data)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert result.exit_code in (0, 2)
    assert "Traceback" not in result.output


def test_categorical_ids_are_written_as_plain_text(tmp_path):
    """Validated tables keep specimen ids as a categorical; files get the ids themselves."""
    frame = FRAME.assign(specimen_id=FRAME["specimen_id"].astype("category"))
    path = tmp_path / "t.parquet"
    write_table(frame, str(path))
    field = pq.read_schema(path).field("specimen_id")
    assert pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
    assert read_table(str(path))["specimen_id"].tolist() == ["A", "A", "B", "B"]
