"""forecast outputs (--precision, static columns, --bounds, one table on stdout, --meta-out) and
what-if forecasts (--set, --scenarios), through the real command on the session's tiny model."""

from __future__ import annotations

import hashlib
import io
import json
import re

import numpy as np
import pandas as pd
import pytest

import durability_cli as dur
from durability_cli.cli import app
from durability_cli.errors import InputError

PREDICTED = ["durability_mean", "durability_p10", "durability_p50", "durability_p90"]


@pytest.fixture(scope="module")
def mono(small, tmp_path_factory):
    """A tiny model with a static column, trained --monotonic decreasing (1 epoch)."""
    from typer.testing import CliRunner

    out = tmp_path_factory.mktemp("mono") / "mono.safetensors"
    args = ["train", str(small), "-o", str(out), "--epochs", "1", "--hidden", "4", "--layers", "1"]
    r = CliRunner().invoke(
        app, [*args, "--static", "material", "--residual", "--monotonic", "decreasing", "-q"]
    )
    assert r.exit_code == 0, r.stderr
    return out


def _forecast(runner, plan, model, *args):
    r = runner.invoke(app, ["forecast", str(plan), "-m", str(model), "-q", "--samples", "20", *args])
    assert r.exit_code == 0, r.stderr
    return r


def _significant(text: str) -> int:
    digits = re.sub(r"e.*$", "", text.lstrip("-")).replace(".", "").lstrip("0")
    return len(digits)


def test_forecast_csv_has_six_significant_digits_and_the_static_columns(runner, plan, mono, tmp_path):
    eol = tmp_path / "eol.csv"
    r = _forecast(runner, plan, mono, "--threshold", "0.9", "--eol-out", str(eol))
    lines = r.stdout.splitlines()
    header = lines[0].split(",")
    assert header[:3] == ["specimen_id", "material", "time"]
    cells = [line.split(",") for line in lines[1:]]
    for name in PREDICTED:
        values = [row[header.index(name)] for row in cells]
        assert max(_significant(v) for v in values) <= 6
        assert max(_significant(v) for v in values) >= 4  # rounded, not truncated to nothing
    table = pd.read_csv(io.StringIO(r.stdout))
    plan_df = pd.read_csv(plan)
    materials = plan_df.groupby("specimen_id").material.first()
    assert (table.material == table.specimen_id.map(materials)).all()
    eol_df = pd.read_csv(eol)
    assert list(eol_df.columns[:2]) == ["specimen_id", "material"]
    assert (eol_df.material == eol_df.specimen_id.map(materials)).all()

    fewer = _forecast(runner, plan, mono, "--precision", "3")
    values = pd.read_csv(io.StringIO(fewer.stdout), dtype=str)["durability_mean"]
    assert max(_significant(v) for v in values) <= 3
    every = _forecast(runner, plan, mono, "--precision", "0")  # 0: every digit, as before
    values = pd.read_csv(io.StringIO(every.stdout), dtype=str)["durability_mean"]
    assert max(_significant(v) for v in values) > 12


def test_held_times_print_as_typed_and_parquet_keeps_every_digit(runner, small, model, tmp_path):
    df = pd.read_csv(small)
    df["time"] = [f"{k / 10:g}" for k in df.groupby("specimen_id").cumcount()]  # 0, 0.1, ... 3.9
    history = tmp_path / "history.csv"
    df.to_csv(history, index=False)
    r = _forecast(runner, history, model, "--horizon", "3", "--hold-conditions")
    times = pd.read_csv(io.StringIO(r.stdout), dtype=str).time
    assert sorted(set(times)) == ["4", "4.1", "4.2"] or sorted(set(times)) == ["4.0", "4.1", "4.2"]
    out = tmp_path / "f.parquet"
    _forecast(runner, history, model, "--horizon", "3", "--hold-conditions", "-o", str(out))
    full = pd.read_parquet(out)
    assert max(len(repr(v).replace(".", "").lstrip("0")) for v in full.durability_mean) > 7


def test_bounds_clip_mean_and_quantiles(runner, plan, model):
    plain = pd.read_csv(io.StringIO(_forecast(runner, plan, model).stdout))
    # clips about half of the p90 values; one of them, so that it is written as it was read
    hi = float(plain.durability_p90.quantile(0.5, interpolation="lower"))
    r = _forecast(runner, plan, model, "--bounds", f"0,{hi}")
    clipped = pd.read_csv(io.StringIO(r.stdout))
    assert (clipped[PREDICTED].to_numpy() <= hi).all()
    assert (clipped.durability_p90 == hi).sum() >= len(clipped) // 3
    low_only = pd.read_csv(io.StringIO(_forecast(runner, plan, model, "--bounds", "0.7,").stdout))
    assert low_only.durability_p10.min() == 0.7 and low_only.durability_p90.max() > 0.7


def test_evaluate_scores_the_forecast_clipped_as_forecast_writes_it(runner, small, model, tmp_path):
    points = tmp_path / "points.csv"
    args = ["evaluate", str(small), "-m", str(model), "--context", "20", "--samples", "20", "-q"]
    r = runner.invoke(
        app, [*args, "--bounds", ",0.95", "--backtest-out", str(points), "-o", str(tmp_path / "m.json")]
    )
    assert r.exit_code == 0, r.output
    rows = pd.read_csv(points)
    model_rows = rows[rows.model == "model"]
    assert model_rows[["y_pred", "q0.1", "q0.9", "q0.95"]].max().max() <= 0.95
    assert (model_rows["q0.95"] == 0.95).any()  # some were above it before
    assert rows[rows.model == "persistence"].y_pred.max() > 0.95  # the baselines are not clipped


@pytest.mark.parametrize(
    ("bounds", "message"),
    [
        ("1,0", "--bounds: the low bound 1 must be below the high bound 0"),
        ("a,1", "--bounds: 'a' is not a number"),
    ],
)
def test_bad_bounds_are_one_line(runner, plan, model, bounds, message):
    r = runner.invoke(app, ["forecast", str(plan), "-m", str(model), "--bounds", bounds])
    assert r.exit_code == 2 and r.stdout == ""
    assert message in r.stderr


def test_monotonic_model_clips_to_its_training_range_by_default(runner, small, plan, mono, tmp_path):
    out = mono
    info = json.loads(runner.invoke(app, ["inspect", str(out), "--json"]).stdout)
    lo, hi = info["summary"]["target_range"]
    measured = pd.read_csv(small).durability
    assert (lo, hi) == (measured.min(), measured.max())
    meta = tmp_path / "run.json"
    table = pd.read_csv(io.StringIO(_forecast(runner, plan, out, "--meta-out", str(meta)).stdout))
    assert ((table[PREDICTED] >= lo - 1e-6) & (table[PREDICTED] <= hi + 1e-6)).all().all()
    assert json.loads(meta.read_text())["bounds"] == [lo, hi]


def test_a_monotonic_forecast_never_rises_and_files_without_the_drift_forecast_alike(
    runner, plan, mono, tmp_path
):
    """From the last measured value on, the mean path never rises. A model file from before the
    scaling kept ``step_mean`` (it only chooses where training starts) forecasts byte for byte
    the same."""
    from safetensors.torch import load_file, save_file

    text = _forecast(runner, plan, mono, "--samples", "0").stdout
    table = pd.read_csv(io.StringIO(text))
    measured = pd.read_csv(plan).dropna(subset=["durability"]).groupby("specimen_id").durability.last()
    for sid, rows in table.groupby("specimen_id"):
        path = np.concatenate([[measured[sid]], rows.sort_values("time").durability_mean.to_numpy()])
        assert (np.diff(path) <= 1e-9).all(), sid
    raw = mono.read_bytes()
    meta = json.loads(
        json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])["__metadata__"]["durability"]
    )
    assert meta["scaler"].pop("step_mean") < 0  # the coating slice's drift, recorded
    old = tmp_path / "old.safetensors"
    save_file(load_file(mono), old, metadata={"durability": json.dumps(meta)})
    assert _forecast(runner, plan, old, "--samples", "0").stdout == text


@pytest.mark.parametrize(
    "extra", [["--paths-out", "-"], ["--threshold", "0.6", "--eol-out", "-"], ["--meta-out", "-"]]
)
def test_two_tables_on_stdout_are_refused(runner, plan, model, extra):
    r = runner.invoke(app, ["forecast", str(plan), "-m", str(model), *extra])
    assert r.exit_code == 2 and r.stdout == ""
    assert "both write to stdout (-); only one table can go there" in r.stderr
    assert r.stderr.count("\n") == 1


def test_meta_out_and_parquet_metadata_record_the_run(runner, plan, model, tmp_path):
    meta, out = tmp_path / "run.json", tmp_path / "f.parquet"
    _forecast(
        runner, plan, model, "--seed", "7", "--threshold", "0.6", "-o", str(out), "--meta-out", str(meta)
    )
    record = json.loads(meta.read_text())
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    assert record["model"] == {"file": model.name, "sha256": digest}
    assert (record["seed"], record["samples"], record["quantiles"], record["threshold"]) == (
        7,
        20,
        [0.1, 0.5, 0.9],
        0.6,
    )
    assert record["rows"] == len(pd.read_parquet(out))
    import pyarrow.parquet as pq

    pandas_meta = json.loads(pq.read_schema(out).metadata[b"pandas"])
    stored = pandas_meta["attributes"]["durability"]
    assert stored["model"]["sha256"] == digest and stored["seed"] == 7


def test_set_overrides_the_future_conditions(runner, plan, model):
    plain = pd.read_csv(io.StringIO(_forecast(runner, plan, model).stdout))
    hot = pd.read_csv(
        io.StringIO(_forecast(runner, plan, model, "--set", "temperature=70,Humidity=90").stdout)
    )
    assert (hot.temperature == 70).all() and (hot.humidity == 90).all()
    assert list(hot.time) == list(plain.time)
    assert not np.allclose(hot.durability_mean, plain.durability_mean)


def test_set_given_twice_merges_or_is_refused(runner, plan, model):
    """A second --set dropped the first without a word (Typer keeps the last of a repeated
    option); a condition given twice kept the last."""
    one = _forecast(runner, plan, model, "--set", "temperature=70,humidity=90").stdout
    assert _forecast(runner, plan, model, "--set", "temperature=70", "--set", "humidity=90").stdout == one
    for twice in (
        ["--set", "temperature=70", "--set", "temperature=71"],
        ["--set", "temperature=70,Temperature=71"],
    ):
        r = runner.invoke(app, ["forecast", str(plan), "-m", str(model), *twice])
        assert r.exit_code == 2 and r.stdout == ""
        assert r.stderr.strip().endswith("twice; give each condition once"), r.stderr
    with pytest.raises(InputError, match="gives the condition 'temperature' twice"):
        dur.load(model).forecast(str(plan), set={"temperature": 70, "Temperature": 71})


def test_scenario_names_stay_as_typed(runner, plan, model, tmp_path):
    """A CSV's scenario names were read as numbers: '1.50' came back as 1.5, '007' as 7.0, and
    '1' beside '01' was refused as a name given twice."""
    scen = tmp_path / "scenarios.csv"
    scen.write_text("scenario,temperature\n1.50,40\n007,60\n1,50\n01,55\n")
    table = pd.read_csv(
        io.StringIO(_forecast(runner, plan, model, "--scenarios", str(scen)).stdout), dtype={"scenario": str}
    )
    assert list(dict.fromkeys(table.scenario)) == ["1.50", "007", "1", "01"]


def test_set_unknown_column_names_the_known_ones(runner, plan, model):
    r = runner.invoke(app, ["forecast", str(plan), "-m", str(model), "--set", "temp=45"])
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr.strip() == (
        "Error: --set: 'temp' is not a condition column of the model; known: temperature, humidity"
    )
    bad = runner.invoke(app, ["forecast", str(plan), "-m", str(model), "--set", "temperature=hot"])
    assert bad.exit_code == 2 and "--set temperature: 'hot' is not a number" in bad.stderr


def test_scenarios_give_one_forecast_each_and_an_eol_table_that_compares_them(runner, plan, model, tmp_path):
    scen = tmp_path / "scenarios.csv"
    scen.write_text("scenario,temperature\nas planned,\ncool,20\nhot,80\n")
    eol = tmp_path / "eol.csv"
    args = ["--scenarios", str(scen), "--threshold", "0.75", "--eol-out", str(eol)]
    table = pd.read_csv(io.StringIO(_forecast(runner, plan, model, *args).stdout))
    plain = pd.read_csv(io.StringIO(_forecast(runner, plan, model).stdout))
    assert list(table.columns[:3]) == ["scenario", "specimen_id", "time"]
    assert len(table) == 3 * len(plain)
    by = {name: part.reset_index(drop=True) for name, part in table.groupby("scenario", sort=False)}
    assert list(by) == ["as planned", "cool", "hot"]
    # an empty cell keeps the data's conditions; the same draws in every scenario (common random numbers)
    pd.testing.assert_frame_equal(by["as planned"].drop(columns="scenario"), plain)
    assert (by["hot"].temperature == 80).all() and (by["cool"].temperature == 20).all()
    assert (by["hot"].humidity == plain.humidity).all()
    assert not np.allclose(by["hot"].durability_mean, by["cool"].durability_mean)
    # rows grouped by specimen, then scenario in the file's order
    first = table[table.specimen_id == table.specimen_id.iloc[0]]
    assert list(dict.fromkeys(first.scenario)) == ["as planned", "cool", "hot"]
    ends = pd.read_csv(eol)
    assert len(ends) == 3 * plain.specimen_id.nunique()
    assert set(ends.groupby("specimen_id").scenario.apply(tuple)) == {("as planned", "cool", "hot")}
    assert {"eol_time", "rul", "status"} <= set(ends.columns)


def test_scenarios_in_chunks_give_the_whole_table_bytes(runner, plan, model, tmp_path):
    scen = tmp_path / "scenarios.csv"
    scen.write_text("scenario,temperature,humidity\nbase,,\nhot,70,85\n")
    args = ["--scenarios", str(scen), "--set", "humidity=50", "--threshold", "0.7"]
    whole = _forecast(runner, plan, model, *args)
    chunked = _forecast(runner, plan, model, *args, "--chunk-specimens", "3")
    assert chunked.stdout == whole.stdout
    table = pd.read_csv(io.StringIO(whole.stdout))
    assert set(table[table.scenario == "base"].humidity) == {50}  # --set under the scenario's cell
    assert set(table[table.scenario == "hot"].humidity) == {85}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,temperature\na,40\n", "no 'scenario' column"),
        ("scenario,temperature\na,40\na,50\n", "scenario 'a' is given twice (row 2)"),
        ("scenario,pressure\na,40\n", "scenario 'a': 'pressure' is not a condition column of the model; known: temperature, humidity"),
    ],
)  # fmt: skip
def test_bad_scenario_files_are_one_line(runner, plan, model, tmp_path, text, message):
    scen = tmp_path / "scenarios.csv"
    scen.write_text(text)
    r = runner.invoke(app, ["forecast", str(plan), "-m", str(model), "--scenarios", str(scen)])
    assert r.exit_code == 2 and r.stdout == ""
    assert message in r.stderr and r.stderr.count("\n") == 1


def test_api_set_and_scenarios(plan, model):
    import durability_cli as dur

    m = dur.load(model)
    df = pd.read_csv(plan)
    fc = m.forecast(df, samples=10, set={"temperature": 45}, scenarios={"dry": {"humidity": 30}, "wet": {}})
    assert set(fc.table.scenario) == {"dry", "wet"}
    assert (fc.table.temperature == 45).all()
    assert (fc.table[fc.table.scenario == "dry"].humidity == 30).all()
    capped = m.forecast(df, samples=10, bounds=(None, 0.8)).table
    assert capped.durability_p90.max() == 0.8 and capped.durability_p10.min() < 0.8
    with pytest.raises(dur.DurabilityError, match="set: 'temp' is not a condition column"):
        m.forecast(df, set={"temp": 45})


def test_round_significant_gives_the_short_decimal():
    from durability_cli.outputs import round_significant

    values = np.array([39.105000000000004, 0.6815012788772583, -0.013912345, 0.0, np.nan, 1234567.0, 4.2e-9])
    got = round_significant(values, 6)
    assert [repr(float(v)) for v in got[[0, 1, 2, 3, 5, 6]]] == [
        "39.105",
        "0.681501",
        "-0.0139123",
        "0.0",
        "1234570.0",
        "4.2e-09",
    ]
    assert np.isnan(got[4])


def test_evaluate_runs_the_end_of_life_mean_clipped_as_forecast_does(small, mono):
    """A monotonic model's forecast is clipped to its training range unless --bounds says
    otherwise, and so is the mean that evaluate runs on past the horizon for the end-of-life
    interval (as forecast runs it): no mean can cross a threshold below that range."""
    import durability_cli as dur
    from durability_cli import eol_warp

    model = dur.load(mono)
    assert eol_warp.spread(model.bundle) is not None  # the interval runs the mean past the horizon
    lo, _ = model.summary["target_range"]
    frame = model.evaluate(str(small), context=20, samples=20, threshold=lo - 0.01, baselines=False).backtest
    assert frame["eol_p10"].notna().all() and np.isinf(frame["eol_p10"]).all()


def test_held_conditions_with_set_say_which_are_held(runner, small, model):
    """--horizon --hold-conditions --set said every condition was held at its last value."""
    args = ["forecast", str(small), "-m", str(model), "--horizon", "3", "--hold-conditions", "--samples", "0"]
    r = runner.invoke(app, [*args, "--set", "temperature=60"])
    assert r.exit_code == 0, r.stderr
    assert (
        "Warning: humidity (the others from --set) held at each specimen's last values for 3 steps"
        in r.stderr
    )
    table = pd.read_csv(io.StringIO(r.stdout))
    assert (table.temperature == 60).all() and table.humidity.nunique() > 1
    r = runner.invoke(app, [*args, "--set", "temperature=60,humidity=80"])
    assert "Warning: 3 steps added at each specimen's last spacing, the conditions from --set" in r.stderr


def test_a_future_table_that_changes_a_static_label_names_both_files(runner, plan, mono, tmp_path):
    """A --future row whose static label differs from its specimen's history was refused as two
    values in the merged table, at row numbers of neither file."""
    df = pd.read_csv(plan)
    history, future = tmp_path / "history.csv", tmp_path / "future.csv"
    n = df.groupby("specimen_id").cumcount()
    df[n < 20].to_csv(history, index=False)
    fut = df[n >= 20].drop(columns="durability")
    who = fut.specimen_id.iloc[0]
    was = fut.material.iloc[0]
    fut.loc[fut.specimen_id == who, "material"] = "Z"
    fut.to_csv(future, index=False)
    r = runner.invoke(app, ["forecast", str(history), "-m", str(mono), "--future", str(future)])
    assert r.exit_code == 2 and r.stdout == "" and r.stderr.count("\n") == 1
    first = fut[fut.specimen_id == who].time.min()
    assert r.stderr.startswith(
        f"Error: {future}: specimen {who}'s material is 'Z' at time {first:g}, but {was!r} in {history};"
    ), r.stderr


def test_hold_conditions_on_a_table_with_future_rows_names_the_specimens(runner, plan, model):
    r = runner.invoke(app, ["forecast", str(plan), "-m", str(model), "--horizon", "3", "--hold-conditions"])
    assert r.exit_code == 2 and r.stdout == "" and r.stderr.count("\n") == 1
    first = sorted(pd.read_csv(plan).specimen_id.unique())[0]
    assert r.stderr.startswith(
        f"Error: {plan}: specimen {first} (and 9 more) ends in rows without a measured durability (future rows)"
    ), r.stderr


def test_a_numeric_static_label_written_otherwise_in_the_plan_is_the_same_label():
    """A batch read as 2 in the history and 2.0 in a plan (a spreadsheet's export) is one label."""
    from durability_cli.forecasting import append_future
    from durability_cli.schema import Schema, validate

    schema = Schema(
        id_col="specimen_id", time_col="time", target="durability", covariates=("t",), static=("batch",)
    )
    history = validate(
        pd.DataFrame(
            {"specimen_id": "A", "time": [0.0, 1.0], "t": 20.0, "durability": [1.0, 0.9], "batch": 2}
        ),
        schema,
        source="h.csv",
    )
    plan = pd.DataFrame({"specimen_id": "A", "time": [2.0, 3.0], "t": 20.0, "batch": 2.0})
    merged = append_future(history, validate(plan, schema, source="f.csv", require_target=False))
    assert len(merged.frame) == 4
    with pytest.raises(InputError, match=r"f.csv: specimen A's batch is '3.0' at time 2, but '2' in h.csv"):
        append_future(history, validate(plan.assign(batch=3.0), schema, source="f.csv", require_target=False))
