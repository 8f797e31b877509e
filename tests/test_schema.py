"""Column roles, validation and description, through the real `durability schema` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from durability_cli.cli import app
from durability_cli.errors import InputError
from durability_cli.io import read_table, write_table
from durability_cli.schema import Schema, describe, load_dataset

# Specimen B comes first and A's rows are out of order: the loader sorts.
TABLE = """\
specimen,cycle,temp,humidity,material,durability
B,1,20,0.5,alu,100
B,3,20,0.5,alu,97
B,4,25,0.5,alu,96
A,2,21,0.5,steel,99
A,1,20,0.5,steel,100
A,3,22,0.6,steel,
"""


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in tmp_path, so that messages name plain "data.csv"."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def schema_json(runner, *args, input=None) -> dict:
    result = runner.invoke(app, ["schema", *args, "--json"], input=input)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def fails(runner, *args, input=None) -> str:
    """Run `durability schema ARGS`; assert it exits 2 with one clean line; return the message."""
    result = runner.invoke(app, ["schema", *args], input=input)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0].removeprefix("Error: ")


# -- detection and description ---------------------------------------------------------------------
EXPECTED = {
    "roles": {
        "id": "specimen",
        "id_synthetic": False,
        "time": "cycle",
        "time_is_datetime": False,
        "target": "durability",
        "covariates": ["temp", "humidity"],
        "static": [],
    },
    "n_rows": 6,
    "n_specimens": 2,
    "lengths": {"min": 3, "median": 3.0, "max": 3},
    "spacing": {
        "regular": False,
        "min_dt": 1.0,
        "median_dt": 1.0,
        "max_dt": 2.0,
        "n_irregular_specimens": 1,
        "unit": "time units",
    },
    "time_range": {"min": 1.0, "max": 4.0},
    "time_zone": None,
    "missing": {"specimen": 0, "cycle": 0, "durability": 1, "temp": 0, "humidity": 0},
    "ranges": {
        "cycle": {"min": 1.0, "max": 4.0},
        "durability": {"min": 96.0, "max": 100.0},
        "temp": {"min": 20.0, "max": 25.0},
        "humidity": {"min": 0.5, "max": 0.6},
    },
    "n_observed_target": 5,
    "n_ending_unmeasured": 1,
    "notes": [
        "specimen id: 'specimen' (auto-detected; --id-col to change)",
        "time: 'cycle' (auto-detected; --time-col to change)",
        "conditions: temp, humidity (every other numeric column; --covariates to choose)",
        "ignored non-numeric column(s) 'material'; "
        "pass --static NAME for per-specimen labels such as material or batch",
        "time spacing is irregular in 1 of 2 specimens (the step length is fed to the model)",
        "1 specimen(s) end in rows without a measured durability (A): forecast reads those rows as future "
        "steps to forecast",
    ],
}


@pytest.mark.parametrize("name", ["data.csv", "data.csv.gz", "data.parquet", "data.jsonl"])
def test_detects_roles_and_describes(runner, write_csv, in_tmp, name):
    csv = write_csv(TABLE, "source.csv")
    write_table(read_table(csv), name)
    info = schema_json(runner, name)
    assert info.pop("source") == name
    assert info == EXPECTED


def test_file_and_stdin_agree(runner, write_csv, in_tmp):
    write_csv(TABLE)
    from_file = schema_json(runner, "data.csv")
    from_stdin = schema_json(runner, "-", input=(in_tmp / "data.csv").read_bytes())
    assert (from_file.pop("source"), from_stdin.pop("source")) == ("data.csv", "stdin")
    assert from_file == from_stdin


def test_table_on_stderr_and_nothing_on_stdout(runner, write_csv, in_tmp):
    write_csv(TABLE)
    result = runner.invoke(app, ["schema", "data.csv"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    for text in ("Columns of data.csv", "specimen id", "condition", "5 of 6 rows", "irregular"):
        assert text in result.stderr


def test_names_match_in_any_case_and_options_choose_roles(runner, write_csv, in_tmp):
    write_csv(TABLE.replace("specimen,cycle", "Specimen,CYCLE").replace("durability", "Durability"))
    info = schema_json(runner, "data.csv", "--static", "MATERIAL", "--covariates", "Temp")
    assert info["roles"] == {
        "id": "Specimen",
        "id_synthetic": False,
        "time": "CYCLE",
        "time_is_datetime": False,
        "target": "Durability",
        "covariates": ["temp"],
        "static": ["material"],
    }
    assert "humidity" not in info["missing"]


def test_other_names_for_the_roles(runner, write_csv, in_tmp):
    write_csv("unit,t,load,capacity\nu1,0.5,1,10\nu1,1.0,2,9\n")
    info = schema_json(runner, "data.csv", "--target", "capacity")
    assert (info["roles"]["id"], info["roles"]["time"], info["roles"]["covariates"]) == (
        "unit",
        "t",
        ["load"],
    )
    assert info["spacing"]["regular"] is True


def test_no_id_column_is_one_specimen(runner, write_csv, in_tmp):
    write_csv("cycle,temp,durability\n1,20,100\n2,21,99\n3,22,\n")
    info = schema_json(runner, "data.csv")
    assert info["roles"]["id"] == "specimen_id" and info["roles"]["id_synthetic"] is True
    assert info["n_specimens"] == 1
    assert info["notes"][0].startswith("no specimen id column (looked for specimen_id, specimen")


@pytest.mark.parametrize("name", ["cell", "Battery_ID", "sample", "device", "serial_number"])
def test_a_battery_lab_s_id_column_is_found(name, runner, write_csv, in_tmp):
    """Cells, samples, devices and serial numbers name the specimens (before, a `cell` column made
    the table one specimen, refused for its repeated cycles, or silently one 300-row series)."""
    write_csv(f"{name},cycle,capacity\nB5,1,1.86\nB5,2,1.85\nB6,1,2.04\nB6,2,2.03\n")
    info = schema_json(runner, "data.csv", "--target", "capacity")
    assert info["roles"]["id"] == name and info["roles"]["id_synthetic"] is False
    assert info["n_specimens"] == 2 and info["roles"]["covariates"] == []


def test_a_table_without_an_id_column_that_holds_several_specimens_is_told_to_name_one(
    runner, write_csv, in_tmp
):
    write_csv("battery_no,cycle,grade,capacity\n5,1,a,1.86\n5,2,a,1.85\n6,1,b,2.04\n6,2,b,2.03\n")
    r = runner.invoke(app, ["schema", "data.csv", "--target", "capacity"])
    assert r.exit_code == 2
    assert r.stderr.strip().startswith(
        "Error: data.csv: no specimen id column was found, so the table is read as one specimen, and it "
        "has two rows at time 1 (rows 1 and 3); pass --id-col NAME, the column that names each specimen"
    ), r.stderr
    # its cycles counted on from one cell to the next: no time repeats, the grade changes
    write_csv("battery_no,cycle,grade,capacity\n5,1,a,1.86\n5,2,a,1.85\n6,3,b,2.04\n6,4,b,2.03\n")
    r = runner.invoke(app, ["schema", "data.csv", "--target", "capacity", "--static", "grade"])
    assert r.exit_code == 2 and "if 'grade' names the specimens, pass it as --id-col instead" in r.stderr, (
        r.stderr
    )


def test_date_time_column(runner, write_csv, in_tmp):
    write_csv(
        "specimen,date,temp,durability\n"
        "A,2024-01-01,20,100\nA,2024-01-02,20,99\nA,2024-01-04,20,98\n"
        "B,2024-01-01T00:00:00Z,20,100\nB,2024-01-01T12:00:00Z,20,99\n"
    )
    info = schema_json(runner, "data.csv")
    assert info["roles"]["time"] == "date" and info["roles"]["time_is_datetime"] is True
    assert info["spacing"] == {
        "regular": False,
        "min_dt": 0.5,
        "median_dt": 1.0,
        "max_dt": 2.0,
        "n_irregular_specimens": 1,
        "unit": "days",
    }
    assert info["time_range"] == {"min": "2024-01-01T00:00:00", "max": "2024-01-04T00:00:00"}
    assert info["time_zone"] is None  # some dates have no offset: read as UTC, and no zone is claimed
    assert "time 'date' holds dates: model time is days since 1970-01-01" in info["notes"]


def test_saved_index_and_empty_columns_are_not_conditions(runner, write_csv, in_tmp):
    write_csv(",specimen,cycle,temp,notes,durability\n0,A,1,20,,100\n1,A,2,21,,99\n")
    info = schema_json(runner, "data.csv")
    assert info["roles"]["covariates"] == ["temp"]
    assert "ignored '': looks like a saved row index" in info["notes"]
    assert "ignored empty column(s) 'notes'" in info["notes"]


# -- the Dataset and Schema objects ----------------------------------------------------------------
def test_dataset_is_sorted_and_typed(write_csv):
    ds = load_dataset(write_csv(TABLE), static=["material"])
    f = ds.frame
    assert list(f.columns) == ["specimen", "cycle", "durability", "temp", "humidity", "material"]
    assert list(f["specimen"]) == ["A", "A", "A", "B", "B", "B"]
    assert list(f["cycle"]) == [1, 2, 3, 1, 3, 4]
    assert ds.t.tolist() == [1.0, 2.0, 3.0, 1.0, 3.0, 4.0]
    assert f["temp"].dtype == np.float64 and f["durability"].dtype == np.float64
    assert np.isnan(f["durability"].iloc[2])
    assert list(f.index) == list(range(6))


def test_integer_ids_sort_as_numbers_and_become_text(write_csv):
    ds = load_dataset(write_csv("id,cycle,durability\n10,1,1\n10,2,1\n9,1,1\n9,2,1\n"))
    assert list(ds.frame["id"]) == ["9", "9", "10", "10"]


def test_dates_become_days_since_1970(write_csv):
    ds = load_dataset(write_csv("specimen,date,durability\nA,1970-01-02,1\nA,1970-01-03 12:00,1\n"))
    assert ds.t.tolist() == [1.0, 2.5]
    assert pd.api.types.is_datetime64_any_dtype(ds.frame["date"])


def test_schema_round_trips_through_a_dict():
    s = Schema("unit", "date", "capacity", ("temp", "load"), ("material",), False, True)
    assert Schema.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_model_schema_forces_columns_in_any_case(write_csv):
    path = write_csv("SPECIMEN,Cycle,TEMP,humidity,durability\nA,1,20,1,5\nA,2,21,1,4\n")
    model = Schema("specimen", "cycle", "durability", ("temp",))
    ds = load_dataset(path, schema=model)
    assert ds.schema == model
    assert list(ds.frame.columns) == ["specimen", "cycle", "durability", "temp"]


def test_model_schema_lacking_a_condition(write_csv, in_tmp):
    write_csv("specimen,cycle,temp,durability\nA,1,20,5\nA,2,21,4\n")
    model = Schema("specimen", "cycle", "durability", ("temp", "humidity"))
    with pytest.raises(InputError) as info:
        load_dataset("data.csv", schema=model)
    assert str(info.value) == (
        "data.csv: the model needs condition column 'humidity', which this table lacks "
        "(columns: specimen, cycle, temp, durability)"
    )


def test_plan_without_measurements_when_target_not_required(write_csv):
    path = write_csv("specimen,cycle,temp\nA,1,20\nA,2,21\n")
    ds = load_dataset(path, require_target=False)
    assert ds.schema.target == "durability"
    assert ds.frame["durability"].isna().all()
    model = Schema("specimen", "cycle", "durability", ("temp",))
    assert load_dataset(path, schema=model, require_target=False).frame["durability"].isna().all()


def test_describe_is_json_serialisable_with_an_empty_condition_range(write_csv):
    ds = load_dataset(write_csv("specimen,cycle,durability\nA,1,\nA,2,3\n"))
    info = json.loads(json.dumps(describe(ds), allow_nan=False))
    assert info["ranges"]["durability"] == {"min": 3.0, "max": 3.0}


# -- errors ----------------------------------------------------------------------------------------
HEAD = "specimen,cycle,temp,durability\n"
ERRORS = [
    (
        "no-target",
        "specimen,cycle,temp,capacity\nA,1,20,1\nA,2,20,1\n",
        [],
        "data.csv: no target column 'durability' (columns: specimen, cycle, temp, capacity); "
        "numeric columns: temp, capacity; pass --target NAME to name the measured durability column",
    ),
    (
        "no-numeric-target",
        "specimen,cycle,batch\nA,1,x\nA,2,y\n",
        [],
        "data.csv: no target column 'durability' (columns: specimen, cycle, batch); "
        "pass --target NAME to name the measured durability column",
    ),
    (
        "target-typo",
        "specimen,cycle,temp,durabilty\nA,1,20,1\nA,2,20,1\n",
        [],
        "data.csv: no target column 'durability' (columns: specimen, cycle, temp, durabilty); "
        "did you mean 'durabilty'? pass --target NAME to name the measured durability column",
    ),
    (
        "named-column-missing",
        HEAD + "A,1,20,1\nA,2,20,1\n",
        ["--time-col", "cylce"],
        "data.csv: no column 'cylce' (--time-col); did you mean 'cycle'? "
        "the columns are: specimen, cycle, temp, durability",
    ),
    (  # the padded name was suggested back: "did you mean ' temp '?"
        "padded-header",
        "specimen,cycle, temp ,durability\nA,1,20,1\nA,2,20,1\n",
        ["--covariates", "temp"],
        "data.csv: no column 'temp' (--covariates); is it ' temp ' (the header has spaces around the "
        "name: remove them)? the columns are: specimen, cycle,  temp , durability",
    ),
    (
        "named-condition-missing",
        HEAD + "A,1,20,1\nA,2,20,1\n",
        ["--covariates", "temp,humdity"],
        "data.csv: no column 'humdity' (--covariates); the columns are: specimen, cycle, temp, durability",
    ),
    (
        "text-in-condition",
        HEAD + "A,1,20,1\nA,2,warm,1\nA,3,20,1\n",
        [],
        "data.csv: column 'temp', row 2: 'warm' is not a number; "
        "fix the cell, or, when training, leave the column out of --covariates",
    ),
    (
        "thousands-separator",
        HEAD + 'A,1,20,1\nA,2,"1,234",1\n',
        [],
        "data.csv: column 'temp', row 2: '1,234' is not a number "
        "(remove the thousands separator: 1234); "
        "fix the cell, or, when training, leave the column out of --covariates",
    ),
    (
        "decimal-comma",
        HEAD + 'A,1,20,1\nA,2,20,"0,5"\n',
        [],
        "data.csv: column 'durability', row 2: '0,5' is not a number "
        "(use a dot as the decimal mark: 0.5); "
        "fix the cell, or leave it empty for an unmeasured step",
    ),
    (
        "text-in-time",
        HEAD + "A,1,20,1\nA,2,20,1\nA,3,20,1\nA,x,20,1\n",
        [],
        "data.csv: column 'cycle', row 4: 'x' is not a number; fix the cell",
    ),
    (
        "empty-condition",
        HEAD + "B,1,20,1\nA,1,20,1\nA,2,,1\n",
        [],
        "data.csv: condition 'temp' is empty for specimen A at time 2 (row 3); conditions must "
        "be known at every step, including future ones: fill it in, or, when training, leave the column out of "
        "--covariates",
    ),
    (
        "infinite-condition",
        HEAD + "A,1,20,1\nA,2.5,inf,1\n",
        [],
        "data.csv: condition 'temp' is infinite for specimen A at time 2.5 (row 2); conditions "
        "must be known at every step, including future ones: fill it in, or, when training, leave the column out "
        "of --covariates",
    ),
    (
        "duplicate",
        HEAD + "A,1,20,1\nB,1,20,1\nA,2,20,1\nB,2,20,1\nA,1,21,1\n",
        [],
        "data.csv: specimen A has two rows at time 1 (rows 1 and 5); "
        "each (specimen, time) must appear once: remove or merge one",
    ),
    (
        "short-specimen",
        HEAD + "A,1,20,1\nA,2,20,1\nB,1,20,1\nC,1,20,1\n",
        [],
        "data.csv: specimen B has only 1 row (row 3), and so do 1 more specimen(s); "
        "each specimen needs at least 2 time steps: drop it or check the id column",
    ),
    (
        "mixed-date-formats",
        "specimen,date,durability\nA,2024-01-01,1\nA,2024-01-02,1\nA,03/01/2024,1\n",
        [],
        "data.csv: column 'date', row 3: '03/01/2024' is not a date in the format of the rows "
        "before it (e.g. '2024-01-01'); use one date format throughout (ISO 2024-01-31 is safest)",
    ),
    (
        "not-a-date",
        "specimen,time,durability\nA,early,1\nA,late,1\n",
        [],
        "data.csv: column 'time', row 1: 'early' is not a date or a number; "
        "fix the cell, or pass --time-col NAME",
    ),
    (
        "empty-time",
        HEAD + "A,1,20,1\nA,,20,1\n",
        [],
        "data.csv: column 'cycle', row 2: the time is empty; every row needs a finite time",
    ),
    (
        "no-measurements",
        HEAD + "A,1,20,\nA,2,20,\n",
        [],
        "data.csv: no measured durability values (column 'durability' is empty in every row); "
        "the model needs measurements to learn from or to warm up on",
    ),
    (
        "static-not-constant",
        "specimen,cycle,material,durability\nA,1,steel,1\nA,2,steel,1\nA,3,alu,1\n",
        ["--static", "material"],
        "data.csv: static column 'material' has two values in specimen A ('steel' at row 1, "
        "'alu' at row 3); static columns must be constant per specimen: fix them, or pass the "
        "column as a condition",
    ),
    (
        "static-empty",
        "specimen,cycle,material,durability\nA,1,steel,1\nA,2,steel,1\nB,1,,1\nB,2,,1\n",
        ["--static", "material"],
        "data.csv: static column 'material' is empty for specimen B (row 3); fill it in",
    ),
    (
        "role-clash",
        HEAD + "A,1,20,1\nA,2,20,1\n",
        ["--covariates", "cycle"],
        "data.csv: column 'cycle' is the time column; it can't also be a condition (--covariates)",
    ),
    (
        "no-time",
        "specimen,temp,durability\nA,1,1\n",
        [],
        "data.csv: no time column (looked for time, cycle, step, day, t or a date column; "
        "columns: specimen, temp, durability); pass --time-col NAME",
    ),
    (
        "header-only",
        HEAD,
        [],
        "data.csv: the table has no rows (columns: specimen, cycle, temp, durability)",
    ),
    ("empty-file", "", [], "data.csv: the file is empty (it has no rows)"),
    (
        "ambiguous-name",
        "specimen,cycle,Temp,temp,durability\nA,1,1,1,1\nA,2,1,1,1\n",
        ["--covariates", "TEMP"],
        "data.csv: 'TEMP' matches several columns (Temp, temp); give the exact spelling",
    ),
]


@pytest.mark.parametrize("text, args, message", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors(runner, write_csv, in_tmp, text, args, message):
    write_csv(text)
    assert fails(runner, "data.csv", *args) == message


def test_missing_file(runner, in_tmp):
    assert fails(runner, "nope.csv") == "nope.csv: no such file; check the path"


def test_error_on_stdin_names_stdin(runner):
    text = HEAD + "A,1,20,1\nA,2,warm,1\n"
    assert fails(runner, "-", input=text).startswith("stdin: column 'temp', row 2: 'warm'")


def test_row_numbers_count_data_rows_in_file_order(runner, write_csv, in_tmp):
    # Row 5 of the file (unsorted) is A's bad cell, even though after sorting it is the second row.
    write_csv(HEAD + "B,1,20,1\nB,2,20,1\nB,3,20,1\nA,2,20,1\nA,1,20,oops\n")
    assert fails(runner, "data.csv").startswith("data.csv: column 'durability', row 5: 'oops'")


def test_bad_value_far_down_a_big_file_is_found(write_csv, in_tmp):
    rows = "".join(f"A,{i},20,1\n" for i in range(1, 30001)) + "A,30001,hot,1\n"
    write_csv(HEAD + rows)
    with pytest.raises(InputError, match=r"column 'temp', row 30001: 'hot' is not a number"):
        load_dataset("data.csv")


def test_missing_target_value_is_not_an_error(write_csv):
    ds = load_dataset(write_csv(HEAD + "A,1,20,1\nA,2,20,\n"))
    assert int(ds.frame["durability"].isna().sum()) == 1


# -- reading only the columns that play a role ------------------------------------------------------
def _with_unreadable_extra(tmp_path, kind: str) -> str:
    """A table whose 'notes' column would fail to load (Latin-1 bytes in a CSV), or is costly."""
    if kind == "csv":
        path = tmp_path / "plan.csv"
        path.write_bytes(b"specimen,cycle,temp,durability,notes\nA,1,20,5,caf\xe9\nA,2,21,4,ok\n")
    else:
        path = tmp_path / "plan.parquet"
        frame = pd.DataFrame(
            {
                "Specimen": ["A", "A"],
                "cycle": [1, 2],
                "TEMP": [20.0, 21.0],
                "durability": [5.0, 4.0],
                "notes": ["x" * 1000, "y"],
            }
        )
        frame.to_parquet(path)
    return str(path)


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_a_model_reads_only_its_own_columns(tmp_path, kind):
    path = _with_unreadable_extra(tmp_path, kind)
    model = Schema("specimen", "cycle", "durability", ("temp",))
    ds = load_dataset(path, schema=model)
    assert list(ds.frame.columns) == ["specimen", "cycle", "durability", "temp"]
    assert ds.frame["temp"].tolist() == [20.0, 21.0]


def test_training_with_given_conditions_reads_only_the_role_columns(tmp_path):
    path = _with_unreadable_extra(tmp_path, "csv")
    ds = load_dataset(path, covariates=["temp"])
    assert ds.schema.covariates == ("temp",) and ds.schema.id_col == "specimen"
    with pytest.raises(InputError, match="not UTF-8"):  # auto-detection must look at every column
        load_dataset(path)


def test_a_missing_column_is_reported_with_every_column_of_the_file(tmp_path):
    path = _with_unreadable_extra(tmp_path, "parquet")
    model = Schema("specimen", "cycle", "durability", ("temp", "humidty"))
    with pytest.raises(InputError) as info:
        load_dataset(path, schema=model)
    assert "(columns: Specimen, cycle, TEMP, durability, notes)" in str(info.value)


def test_specimen_ids_of_digits_are_kept_as_typed(runner, write_csv, in_tmp):
    """A CSV's ids read as numbers: '0007' became 7, and '01' and '1' one specimen."""
    csv = write_csv(
        "specimen_id,time,durability,temp\n01,0,1,20\n01,1,0.9,20\n1,1000,1,20\n1,1001,0.95,20\n"
        "0007,0,1,20\n0007,1,0.97,20\n",
        "ids.csv",
    )
    info = schema_json(runner, str(csv))
    assert info["n_specimens"] == 3
    ds = load_dataset(str(csv))
    assert sorted(ds.frame["specimen_id"].astype(str).unique()) == ["0007", "01", "1"]
    assert schema_json(runner, "-", input=Path(csv).read_text())["n_specimens"] == 3  # stdin too
    # in the order of their numbers, as integer ids sort, the text breaking ties
    assert list(pd.unique(ds.frame["specimen_id"].astype(str))) == ["01", "1", "0007"]


def test_a_forecast_table_read_back_keeps_its_plan_conditions_only(runner, model, plan):
    """`forecast | schema -`: the quantile columns and `extrapolated` are the forecast's output,
    not conditions; the plan's own conditions stay, and the mean is named as the target to use."""
    forecast = runner.invoke(app, ["forecast", str(plan), "-m", str(model), "--samples", "20", "--quiet"])
    assert forecast.exit_code == 0, forecast.stderr
    head = forecast.stdout.splitlines()[0].split(",")
    assert {"durability_p10", "durability_p90", "extrapolated"} <= set(head)

    info = schema_json(runner, "-", "--target", "durability_mean", input=forecast.stdout)
    assert info["roles"]["covariates"] == ["temperature", "humidity"]
    assert any("'durability_p10'" in n and "'extrapolated'" in n for n in info["notes"])

    missing = runner.invoke(app, ["schema", "-"], input=forecast.stdout)
    assert missing.exit_code == 2
    assert "it looks like a `durability forecast` table: 'durability_mean' is its mean" in missing.stderr


def test_a_measured_mean_condition_is_not_taken_for_a_forecast(write_csv):
    """Only `extrapolated` beside a `_mean` column marks a forecast: `temp_mean` alone is a condition."""
    path = write_csv("specimen,cycle,temp_mean,temp_p90,durability\nA,1,20,22,1\nA,2,21,23,0.9\n")
    assert load_dataset(path).schema.covariates == ("temp_mean", "temp_p90")
