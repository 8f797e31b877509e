"""--chunk-specimens: forecast and evaluate a group of specimens at a time, outputs written as they go."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from durability_cli import io as tables
from durability_cli.artifact import load_bundle
from durability_cli.cli import app
from durability_cli.forecasting import ForecastConfig, forecast
from durability_cli.schema import load_dataset
from durability_cli.streaming import SpecimenGroups, TableWriter

COMMON = ["--threshold", "0.6", "--samples", "20", "-q", "--precision", "0"]  # every digit, as the library


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def coating(coating_slice) -> Path:
    """12 coating specimens x 60 rows."""
    return coating_slice(12, 60)


@pytest.fixture(scope="module")
def model(coating, tiny_model) -> Path:
    return tiny_model(coating)


@pytest.fixture(scope="module")
def plans(coating, tmp_path_factory) -> dict[str, Path]:
    """The same plan (durability hidden after 20-24 rows) as CSV, as one Parquet file, and as a
    hive-partitioned folder in which every specimen's rows are split over two files."""
    folder = tmp_path_factory.mktemp("plans")
    df = pd.read_csv(coating)
    cut = 20 + df.specimen_id.str[-1].astype(int) % 5
    df.loc[df.groupby("specimen_id").cumcount() >= cut, "durability"] = np.nan
    df.to_csv(folder / "plan.csv", index=False)
    df.to_parquet(folder / "plan.parquet", index=False, row_group_size=100)
    split = df.sample(frac=1.0, random_state=0)  # rows shuffled, then split in two halves by time
    split["half"] = np.where(split.time < 15, "early", "late")
    split.to_parquet(folder / "hive", partition_cols=["half"], index=False)
    assert len(list((folder / "hive").rglob("*.parquet"))) == 2
    return {"csv": folder / "plan.csv", "parquet": folder / "plan.parquet", "hive": folder / "hive"}


def _library_forecast(model: Path, plan: Path, chunk: int = 0):
    """The whole-table forecast from the library (network batches of ``chunk`` specimens, 0 =
    sized by memory): a specimen's numbers do not depend on its batch, so any ``chunk`` gives
    the chunked command's numbers bit for bit."""
    bundle = load_bundle(str(model))
    ds = load_dataset(str(plan), schema=bundle.schema)
    cfg = ForecastConfig(samples=20, threshold=0.6, rollout_batch=chunk)
    return forecast(bundle, ds, cfg)


@pytest.mark.parametrize("source", ["parquet", "hive", "csv"])
def test_chunked_forecast_is_the_whole_forecast_byte_for_byte(model, plans, tmp_path, source):
    out, eol = tmp_path / "fc.csv", tmp_path / "eol.csv"
    r = invoke(
        "forecast", plans[source], "-m", model, *COMMON, "--chunk-specimens", 5, "-o", out, "--eol-out", eol
    )
    assert r.exit_code == 0, r.output
    whole = _library_forecast(model, plans["csv"], 3 if source == "csv" else 0)  # other batches
    tables.write_table(whole.forecast, str(tmp_path / "whole.csv"))
    tables.write_table(whole.eol, str(tmp_path / "whole_eol.csv"))
    assert out.read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert eol.read_bytes() == (tmp_path / "whole_eol.csv").read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["eol.csv", "fc.csv", "whole.csv", "whole_eol.csv"]


def test_specimens_of_like_lengths_share_a_batch_and_come_back_in_the_tables_order(model, coating, tmp_path):
    """Network batches group specimens of like lengths (forecasting.chunk_plan), so a batch's
    specimens are not the table's neighbours when lengths alternate: the forecast, end-of-life and
    path tables are the one-batch tables row for row, in the table's order."""
    df = pd.read_csv(coating)
    keep = np.where(df.specimen_id.str[-1].astype(int) % 2 == 0, 60, 34)  # long, short, long, ...
    row = df.groupby("specimen_id").cumcount()
    df = df[row < keep].copy()
    df.loc[df.groupby("specimen_id").cumcount() >= 22, "durability"] = np.nan
    df.to_csv(tmp_path / "plan.csv", index=False)
    bundle = load_bundle(str(model))
    ds = load_dataset(str(tmp_path / "plan.csv"), schema=bundle.schema)
    whole, batched = (
        forecast(bundle, ds, ForecastConfig(samples=20, threshold=0.6, rollout_batch=b), want_paths=True)
        for b in (0, 3)
    )
    for name in ("forecast", "eol", "paths"):
        pd.testing.assert_frame_equal(getattr(whole, name), getattr(batched, name), check_exact=True)
    order = list(dict.fromkeys(df.specimen_id))
    assert list(dict.fromkeys(batched.forecast.specimen_id)) == order
    assert list(batched.eol.specimen_id) == order
    assert list(dict.fromkeys(batched.paths.specimen_id)) == order
    times = batched.forecast.groupby("specimen_id", sort=False).time
    assert times.apply(lambda t: t.is_monotonic_increasing).all()


def test_chunked_forecast_agrees_with_the_unchunked_command(model, plans, tmp_path):
    for name, extra in (("all", []), ("chunked", ["--chunk-specimens", 4])):
        r = invoke(
            "forecast", plans["parquet"], "-m", model, *COMMON, *extra,
            "-o", tmp_path / f"{name}.csv", "--eol-out", tmp_path / f"{name}_eol.csv",
        )  # fmt: skip
        assert r.exit_code == 0, r.output
    # other network batches, the same numbers: bit for bit, the same bytes
    assert (tmp_path / "all.csv").read_bytes() == (tmp_path / "chunked.csv").read_bytes()
    assert (tmp_path / "all_eol.csv").read_bytes() == (tmp_path / "chunked_eol.csv").read_bytes()


@pytest.mark.parametrize("suffix", ["parquet", "jsonl", "csv.gz"])
def test_chunked_outputs_in_every_format(model, plans, tmp_path, suffix):
    out = tmp_path / f"fc.{suffix}"
    r = invoke("forecast", plans["hive"], "-m", model, *COMMON, "--chunk-specimens", 5, "-o", out)
    assert r.exit_code == 0, r.output
    whole = _library_forecast(model, plans["csv"], 5).forecast
    reference = tmp_path / f"whole.{suffix}"
    tables.write_table(whole, str(reference))
    if suffix != "parquet":
        assert out.read_bytes() == reference.read_bytes()
        return
    a, b = pq.read_table(out), pq.read_table(reference)
    assert a.schema.equals(b.schema, check_metadata=False) and a.equals(b)
    assert pq.ParquetFile(out).metadata.num_row_groups == 3  # one per group of 5 specimens
    meta = json.loads(a.schema.metadata[b"pandas"])
    stored = meta["attributes"]["durability"]
    assert (stored["samples"], stored["seed"], stored["quantiles"]) == (20, 0, [0.1, 0.5, 0.9])


def test_chunked_forecast_to_stdout_streams_the_same_table(model, plans, tmp_path):
    r = invoke("forecast", plans["parquet"], "-m", model, *COMMON, "--chunk-specimens", 5)
    assert r.exit_code == 0, r.output
    whole = _library_forecast(model, plans["csv"], 5).forecast
    assert r.stdout_bytes == tables._csv_bytes(whole)


def test_evaluate_pooled_scores_equal_the_unchunked_run(model, plans, tmp_path):
    args = ["-m", model, "--origins", 3, "--threshold", "0.6", "--samples", 20, "-q"]
    reports, series = {}, {}
    for name, data, extra in (
        ("all", plans["csv"], []),
        ("chunked", plans["hive"], ["--chunk-specimens", 5]),
    ):
        ps, bt = tmp_path / f"{name}_series.csv", tmp_path / f"{name}_bt.parquet"
        r = invoke("evaluate", data, *args, *extra, "--per-series", ps, "--backtest-out", bt)
        assert r.exit_code == 0, r.output
        reports[name] = json.loads(r.stdout)
        series[name] = pd.read_csv(ps).sort_values(["model", "specimen_id"]).reset_index(drop=True)
        assert len(pd.read_parquet(bt))
    whole, chunked = reports["all"], reports["chunked"]
    assert chunked["settings"]["source"] == str(plans["hive"])
    whole["settings"].pop("source"), chunked["settings"].pop("source")

    def close(a, b, path=""):
        if isinstance(a, dict):
            assert a.keys() == b.keys(), path
            for k in a:
                close(a[k], b[k], f"{path}.{k}")
        elif isinstance(a, list):
            assert len(a) == len(b), path
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                close(x, y, f"{path}[{i}]")
        elif isinstance(a, float):
            assert b == pytest.approx(a, rel=1e-5, abs=1e-7), path
        else:
            assert a == b, path

    assert "prognostics" in whole["models"]["model"] and "crps" in whole["models"]["model"]
    assert "below" in whole["models"]["model"] and "interval_early" in whole["models"]["model"]["eol"]
    assert set(whole["by_condition"]["columns"]) == {
        "temperature",
        "humidity",
    }  # each group's specimens pooled
    close(whole, chunked)
    assert series["all"].equals(series["chunked"])  # per specimen: the same numbers exactly


def test_an_error_in_the_third_group_leaves_no_output(model, plans, tmp_path):
    df = pd.read_parquet(plans["parquet"])
    third = sorted(df.specimen_id.unique())[9]  # groups of 4: the third holds specimens 9..12
    bad_row = int(np.flatnonzero(df.specimen_id == third)[3])
    df.loc[bad_row, "humidity"] = np.nan
    t = df.loc[bad_row, "time"]
    plan = tmp_path / "bad.parquet"
    df.to_parquet(plan, index=False, row_group_size=50)
    out, eol = tmp_path / "out" / "fc.csv", tmp_path / "out" / "eol.csv"
    out.parent.mkdir()
    eol.write_text("a good old file\n")
    r = invoke("forecast", plan, "-m", model, *COMMON, "--chunk-specimens", 4, "-o", out, "--eol-out", eol)
    assert r.exit_code == 2
    assert r.output.strip() == (
        f"Error: {plan}: condition 'humidity' is empty for specimen {third} at time {t:g} "
        f"(row {bad_row + 1}); conditions must be known at every step, including future ones: "
        "fill it in, or, when training, leave the column out of --covariates"
    )
    assert sorted(os.listdir(out.parent)) == ["eol.csv"] and eol.read_text() == "a good old file\n"


def test_errors_in_a_folder_name_the_file_and_its_row(model, plans, tmp_path):
    folder = tmp_path / "plan"
    df = pd.read_parquet(plans["parquet"])
    df.iloc[:300].to_parquet(tmp_path / "a.parquet", index=False)
    folder.mkdir()
    df.iloc[:300].to_parquet(folder / "a.parquet", index=False)
    late = df.iloc[300:].reset_index(drop=True)
    late.loc[7, "time"] = late.loc[6, "time"]  # a duplicate (specimen, time) in the second file
    late.to_parquet(folder / "b.parquet", index=False)
    r = invoke("forecast", folder, "-m", model, *COMMON, "--chunk-specimens", 3, "-o", tmp_path / "fc.csv")
    assert r.exit_code == 2
    sid, t = late.loc[6, "specimen_id"], late.loc[6, "time"]
    t = int(t) if float(t).is_integer() else t
    assert r.output.strip() == (
        f"Error: {folder}: specimen {sid} has two rows at time {t} "
        f"(row 7 of {folder / 'b.parquet'} and row 8 of {folder / 'b.parquet'}); "
        "each (specimen, time) must appear once: remove or merge one"
    )
    assert not (tmp_path / "fc.csv").exists()


def test_options_that_need_the_whole_table_are_refused(model, plans, tmp_path):
    r = invoke(
        "forecast", plans["parquet"], "-m", model, "--chunk-specimens", 4, "--plot", tmp_path / "f.png"
    )
    assert r.exit_code == 2 and r.output.startswith("Error: --plot draws from the whole table")
    for size in (0, 2**63):  # the second overflowed a C long: "unexpected OverflowError", exit 1
        for source in (plans["parquet"], plans["csv"]):
            r = invoke("forecast", source, "-m", model, "--chunk-specimens", size, "-o", tmp_path / "f.csv")
            assert r.exit_code == 2, r.output
            assert r.output == f"Error: --chunk-specimens must be between 1 and 1,000,000,000, got {size}\n"
    assert not list(tmp_path.iterdir())


def test_chunked_shards_concatenate_to_the_chunked_whole(model, plans, tmp_path):
    r = invoke(
        "forecast", plans["hive"], "-m", model, *COMMON, "--chunk-specimens", 2, "-o", tmp_path / "all.csv"
    )
    assert r.exit_code == 0, r.output
    whole = pd.read_csv(tmp_path / "all.csv")
    parts = []
    for i in range(3):
        out = tmp_path / f"s{i}.csv"
        r = invoke(
            "forecast",
            plans["hive"],
            "-m",
            model,
            *COMMON,
            "--chunk-specimens",
            2,
            "--shard",
            f"{i}/3",
            "-o",
            out,
        )
        assert r.exit_code == 0, r.output
        parts.append(pd.read_csv(out))
    pieces = pd.concat(parts).sort_values(["specimen_id", "time"]).reset_index(drop=True)
    assert pieces.equals(whole)


def test_groups_follow_the_sorted_ids_whatever_the_layout(tmp_path):
    """Integer ids sort as numbers (10 after 9), as the whole-table reader sorts them."""
    rows = [(i, t, 20.0 + t, 0.9 - 0.01 * t) for i in (10, 9, 1, 2) for t in range(3)]
    df = pd.DataFrame(rows, columns=["Unit", "Time", "Temp", "Durability"])
    df.sample(frac=1, random_state=1).to_parquet(tmp_path / "t.parquet", index=False, row_group_size=4)
    from durability_cli.schema import Schema

    schema = Schema("unit", "time", "durability", ("temp",))
    groups = list(SpecimenGroups(str(tmp_path / "t.parquet"), schema, size=3))
    assert [list(g.frame.unit.astype(str).unique()) for g in groups] == [["1", "2", "9"], ["10"]]
    assert list(groups[0].frame.columns) == ["unit", "time", "durability", "temp"]


def test_table_writer_matches_write_table_and_quotes_like_it(tmp_path):
    df = pd.DataFrame({"id": ["a", "b", "c, d", "e"], "x": [1.5, 2.0, np.nan, 4.25]})
    for name, quote in (("plain.csv", False), ("quoted.csv.gz", True)):
        frame = df if quote else df.iloc[[0, 1, 3]]
        with TableWriter(str(tmp_path / name), quote=quote) as w:
            w.write(frame.iloc[:2])
            w.write(frame.iloc[2:])
        tables.write_table(frame, str(tmp_path / f"ref-{name}"))
        assert (tmp_path / name).read_bytes() == (tmp_path / f"ref-{name}").read_bytes()
    assert b'"c, d"' in gzip.decompress((tmp_path / "quoted.csv.gz").read_bytes())
    # an error half way: nothing at the destination, no temporary file left
    with pytest.raises(RuntimeError), TableWriter(str(tmp_path / "broken.parquet")) as w:
        w.write(df)
        raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["plain.csv", "quoted.csv.gz", "ref-plain.csv", "ref-quoted.csv.gz"]
    )


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_peak_memory_is_flat_in_the_number_of_specimens(model, tmp_path, cli_peak):
    """8x the specimens, read and forecast 250 at a time: the peak stays within 1.3x."""
    from durability_cli.synthetic import make_coating

    peaks = []
    for n in (500, 4000):
        noisy, _ = make_coating(n_specimens=n, seed=3, missing_fraction=0.0, irregular_fraction=0.0)
        noisy = noisy[noisy.groupby("specimen_id").cumcount() < 60].copy()
        noisy.loc[noisy.groupby("specimen_id").cumcount() >= 20, "durability"] = np.nan
        plan = tmp_path / f"plan{n}.parquet"
        noisy.to_parquet(plan, index=False, row_group_size=20_000)
        del noisy
        args = ["forecast", str(plan), "-m", str(model), "--samples", "100", "--chunk-specimens", "250"]
        args += ["-o", str(tmp_path / f"fc{n}.parquet"), "-q"]
        peaks.append(cli_peak(args))
        assert pq.ParquetFile(tmp_path / f"fc{n}.parquet").metadata.num_rows == n * 40
    assert peaks[1] < 1.3 * peaks[0], peaks


@pytest.fixture(scope="module")
def history_and_future(coating, tmp_path_factory) -> dict[str, Path]:
    """The first 20 rows of each specimen as history (Parquet), the next 10 as a --future table
    (conditions only, CSV, rows shuffled)."""
    folder = tmp_path_factory.mktemp("future")
    df = pd.read_csv(coating)
    n = df.groupby("specimen_id").cumcount()
    df[n < 20].to_parquet(folder / "history.parquet", index=False, row_group_size=64)
    future = df[(n >= 20) & (n < 30)].drop(columns="durability").sample(frac=1.0, random_state=1)
    future.to_csv(folder / "future.csv", index=False)
    return {"history": folder / "history.parquet", "future": folder / "future.csv", "folder": folder}


def test_chunked_forecast_with_a_future_table_is_the_whole_forecast(model, history_and_future, tmp_path):
    h, fut = history_and_future["history"], history_and_future["future"]
    for name, extra in (
        ("whole", []),
        ("chunked", ["--chunk-specimens", 5]),
        ("shard", ["--chunk-specimens", 2]),
    ):
        for i in range(2 if name == "shard" else 1):
            shard = ["--shard", f"{i}/2"] if name == "shard" else []
            out = tmp_path / f"{name}{i}.csv"
            r = invoke("forecast", h, "-m", model, *COMMON, "--future", fut, *extra, *shard, "-o", out)
            assert r.exit_code == 0, r.output
    whole = (tmp_path / "whole0.csv").read_bytes()
    assert (tmp_path / "chunked0.csv").read_bytes() == whole
    assert len(pd.read_csv(tmp_path / "whole0.csv")) == 12 * 10
    lines = [x for i in range(2) for x in (tmp_path / f"shard{i}.csv").read_text().splitlines()[1:]]
    assert sorted(lines) == sorted(whole.decode().splitlines()[1:])


def test_a_plan_of_one_row_for_a_specimen_is_forecast(model, history_and_future, tmp_path):
    """A --future table giving a specimen a single planned row (the next inspection) was refused
    as a specimen "with only 1 row", although its history has 20: the two-row rule holds for the
    history and plan together. Whole and chunked, and the step is the first step of a longer plan."""
    h = history_and_future["history"]
    fut = pd.read_csv(history_and_future["future"]).sort_values(["specimen_id", "time"])
    n = fut.groupby("specimen_id").cumcount()
    ids = sorted(fut.specimen_id.unique())
    one = fut[(n == 0) | ((n < 3) & fut.specimen_id.isin(ids[:4]))]  # one row each; 3 for four of them
    plan = tmp_path / "one.csv"
    one.sample(frac=1.0, random_state=2).to_csv(plan, index=False)
    outs = {}
    for name, extra in (("whole", []), ("chunked", ["--chunk-specimens", 5])):
        outs[name] = tmp_path / f"{name}.csv"
        meta = tmp_path / f"{name}.json"
        r = invoke(
            "forecast",
            h,
            "-m",
            model,
            *COMMON,
            "--future",
            plan,
            *extra,
            "-o",
            outs[name],
            "--meta-out",
            meta,
        )
        assert r.exit_code == 0, r.output
        recorded = json.loads(meta.read_text())  # the run's inputs, to make it again
        assert (recorded["data"], recorded["future"]) == (str(h), str(plan))
    assert outs["chunked"].read_bytes() == outs["whole"].read_bytes()
    got = pd.read_csv(outs["whole"])
    assert len(got) == len(one) == len(ids) + 4 * 2
    r = invoke(
        "forecast",
        h,
        "-m",
        model,
        *COMMON,
        "--future",
        history_and_future["future"],
        "-o",
        tmp_path / "all.csv",
    )
    assert r.exit_code == 0, r.output
    full = pd.read_csv(tmp_path / "all.csv").set_index(["specimen_id", "time"])
    first = got.groupby("specimen_id").head(1).set_index(["specimen_id", "time"])
    np.testing.assert_allclose(first["durability_mean"], full.loc[first.index, "durability_mean"], rtol=1e-6)


@pytest.mark.parametrize("chunk", [[], ["--chunk-specimens", 5]])
def test_a_future_specimen_without_history_is_refused_before_any_output(
    model, history_and_future, tmp_path, chunk
):
    """Whole or chunked, the same line; a single planned row of such a specimen too (it was
    refused as a specimen "with only 1 row", or "with no measured durability" with more)."""
    fut = pd.read_csv(history_and_future["future"])
    for rows in (1, 3):
        stray = fut[fut.specimen_id == fut.specimen_id.iloc[0]].head(rows).assign(specimen_id="X999")
        bad = tmp_path / "future.csv"
        pd.concat([fut, stray]).to_csv(bad, index=False)
        out = tmp_path / "fc.csv"
        r = invoke("forecast", history_and_future["history"], "-m", model, "--future", bad, *chunk, "-o", out)
        assert r.exit_code == 2 and r.output.count("\n") == 1, r.output
        assert r.output.startswith(
            f"Error: {bad}: specimen 'X999' is not in {history_and_future['history']}; a --future row needs"
        ), r.output
        assert sorted(p.name for p in tmp_path.iterdir()) == ["future.csv"]
    # an id in another case, or with a space, is probably the history's
    who = fut.specimen_id.iloc[0]
    fut.loc[fut.specimen_id == who, "specimen_id"] = f" {who.lower()}"
    fut.to_csv(bad, index=False)
    r = invoke("forecast", history_and_future["history"], "-m", model, "--future", bad, *chunk, "-o", out)
    assert r.exit_code == 2 and f"specimen ' {who.lower()}' (did you mean '{who}'?) is not in" in r.output


@pytest.mark.parametrize("chunk", [[], ["--chunk-specimens", 5]])
def test_a_future_row_inside_the_history_is_named_in_its_own_file(model, history_and_future, tmp_path, chunk):
    """A --future row at or before its specimen's last history row was refused as two rows of
    the merged table, numbered in neither file; it is named by specimen and time in the future
    file, beside the history's last time."""
    h = history_and_future["history"]
    fut = pd.read_csv(history_and_future["future"])
    last = pd.read_parquet(h).groupby("specimen_id").time.max()
    who = fut.specimen_id.iloc[3]
    fut.loc[fut.index[3], "time"] = last[who] - 1.0  # inside the history, not on one of its rows
    bad = tmp_path / "future.csv"
    fut.to_csv(bad, index=False)
    out = tmp_path / "fc.csv"
    r = invoke("forecast", h, "-m", model, *COMMON, "--future", bad, *chunk, "-o", out)
    assert r.exit_code == 2 and r.output.count("\n") == 1, r.output
    assert r.output.startswith(
        f"Error: {bad}: specimen {who}'s row at time {last[who] - 1.0:g} is not after its last row in {h} "
        f"(time {last[who]:g})"
    ), r.output
    assert not out.exists()


def test_a_future_table_with_measurements_is_refused(model, history_and_future, tmp_path):
    """A value in the --future table's target column was appended as a measurement: the forecast
    warmed up on it and started after it, without a word."""
    h = history_and_future["history"]
    fut = pd.read_csv(history_and_future["future"])
    who, when = fut.specimen_id.iloc[0], fut.time.iloc[0]
    bad = tmp_path / "future.csv"
    fut.assign(durability=np.where(np.arange(len(fut)) == 0, 0.7, np.nan)).to_csv(bad, index=False)
    out = tmp_path / "fc.csv"
    r = invoke("forecast", h, "-m", model, *COMMON, "--future", bad, "-o", out)
    assert r.exit_code == 2 and r.output.count("\n") == 1, r.output
    assert r.output.startswith(
        f"Error: {bad}: column 'durability' holds a value for specimen {who} at time {when:g}; --future rows plan"
    ), r.output
    assert not out.exists()


def test_chunked_dates_keep_one_format_in_a_column(coating, tiny_model, tmp_path):
    """A group of whole-day specimens after one measured every 12 h: each group's CSV still
    writes its dates as the whole table's would (2024-05-30 00:00:00, never 2024-05-30 in the
    same column), so `forecast --chunk-specimens` gives the bytes of the one-piece forecast and a
    reader that infers one date format reads it."""
    df = pd.read_csv(coating)
    df = df[df.specimen_id.isin(sorted(df.specimen_id.unique())[:4])].copy()
    half_days = df.specimen_id == df.specimen_id.min()  # the first specimen only
    df["time"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(
        np.where(half_days, 0.5, 5.0) * df.time, unit="D"
    )
    df.loc[df.groupby("specimen_id").cumcount() >= 40, "durability"] = np.nan
    data = tmp_path / "dated.csv"
    df.to_csv(data, index=False)
    model = tiny_model(data)
    outputs = {}
    for chunk in (None, 1, 2):
        out, eol = tmp_path / f"f{chunk}.csv", tmp_path / f"e{chunk}.csv"
        extra = [] if chunk is None else ["--chunk-specimens", chunk]
        r = invoke("forecast", data, "-m", model, *COMMON, "-o", out, "--eol-out", eol, *extra)
        assert r.exit_code == 0, r.output
        outputs[chunk] = (out.read_bytes(), eol.read_bytes())
    assert outputs[1] == outputs[None] and outputs[2] == outputs[None]
    forecast = pd.read_csv(tmp_path / "f1.csv", dtype=str)
    assert forecast.time.str.len().eq(len("2024-01-01 00:00:00")).all()
    eol = pd.read_csv(tmp_path / "e1.csv", dtype=str)
    assert eol.horizon_end.str.len().eq(len("2024-01-01 00:00:00")).all()


@pytest.mark.parametrize(("shard", "tz"), [(None, None), ("0/2", None), (None, "UTC")])
def test_a_parquet_table_read_in_groups_writes_its_dates_as_the_whole_table(
    coating, tiny_model, tmp_path, shard, tz
):
    """A Parquet table read a group at a time whose first groups hold whole days and whose last
    specimen is measured every 12 h: the first groups' CSV already writes 2024-01-01 00:00:00 (the
    unit comes from the first pass over the file, SpecimenGroups.time_units), so the chunked
    forecast is the one-piece forecast's bytes, with --shard too (the whole table's unit), and
    for dates with a time zone (written in that zone, with the offset)."""
    df = pd.read_csv(coating)
    df = df[df.specimen_id.isin(sorted(df.specimen_id.unique())[:4])].copy()
    half_days = df.specimen_id == df.specimen_id.max()  # the last specimen only
    row = df.groupby("specimen_id").cumcount()  # whole days, and half days for the last
    df["time"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.where(half_days, 0.5, 1.0) * row, unit="D")
    df.loc[row >= 40, "durability"] = np.nan
    df.to_csv(tmp_path / "dated.csv", index=False)
    data = tmp_path / "dated.parquet"
    df.assign(time=df.time.dt.tz_localize(tz)).to_parquet(data, index=False, row_group_size=50)
    model = tiny_model(tmp_path / "dated.csv")
    extra = [] if shard is None else ["--shard", shard]
    outputs = {}
    for chunk in (None, 1):
        out, eol = tmp_path / f"f{chunk}.csv", tmp_path / f"e{chunk}.csv"
        more = [] if chunk is None else ["--chunk-specimens", chunk]
        r = invoke("forecast", data, "-m", model, *COMMON, "-o", out, "--eol-out", eol, *extra, *more)
        assert r.exit_code == 0, r.output
        outputs[chunk] = (out.read_bytes(), eol.read_bytes())
    assert outputs[1] == outputs[None]
    forecast = pd.read_csv(tmp_path / "f1.csv", dtype=str)
    width = len("2024-01-01 00:00:00")  # a shard too: the whole table's unit, which concatenates
    if tz is not None:  # an offset goes with a time of day
        width = len("2024-01-01 00:00:00+00:00")
    assert forecast.time.str.len().eq(width).all()


def test_dates_with_a_time_zone_are_written_in_that_zone(coating, tiny_model, tmp_path):
    """A table dated with one offset (+05:30; CSV or JSON Lines) gets its forecast, end-of-life and backtest times
    in that offset, the rows' own as written; a Parquet table in Europe/Berlin gets +01:00 before
    the clocks change and +02:00 after; a CSV whose offsets differ (summer and winter) gets UTC,
    said as +00:00. Always the same instants, and the same bytes read in groups. (Before, every
    one came back in UTC without a zone: 2024-01-01 00:00+05:30 as 2023-12-31 18:30:00.)"""
    df = pd.read_csv(coating)
    df = df[df.specimen_id.isin(sorted(df.specimen_id.unique())[:4])].copy()
    row = df.groupby("specimen_id").cumcount()
    local = pd.Timestamp("2024-02-10") + pd.to_timedelta(row, unit="D")  # the forecast rows span 31 March
    df.assign(time=local).to_csv(tmp_path / "plain.csv", index=False)
    model = tiny_model(tmp_path / "plain.csv")
    df.loc[row >= 40, "durability"] = np.nan
    india = local.dt.tz_localize("Asia/Kolkata")
    berlin = local.dt.tz_localize("Europe/Berlin")
    tables_in = {
        "india.csv": df.assign(time=india.map(lambda v: v.isoformat())),
        "india.jsonl": df.assign(time=india.map(lambda v: v.isoformat())),
        "berlin.parquet": df.assign(time=berlin),
        "berlin.csv": df.assign(time=berlin.map(lambda v: v.isoformat())),
    }
    for name, table in tables_in.items():
        data = tmp_path / name
        if name.endswith(".csv"):
            table.to_csv(data, index=False)
        elif name.endswith(".jsonl"):
            table.to_json(data, orient="records", lines=True)
        else:
            table.to_parquet(data, index=False, row_group_size=50)
        written = {}
        for chunk in ([], ["--chunk-specimens", "1"]):
            out, eol = tmp_path / "f.csv", tmp_path / "e.csv"
            r = invoke("forecast", data, "-m", model, *COMMON, "-o", out, "--eol-out", eol, *chunk)
            assert r.exit_code == 0, r.output
            written[len(chunk)] = (out.read_bytes(), eol.read_bytes())
        assert written[0] == written[2], name
        fc = pd.read_csv(tmp_path / "f.csv", dtype=str)
        truth = india if name.startswith("india") else berlin
        expected = truth[row >= 40].set_axis(fc.index)
        assert (pd.to_datetime(fc.time, utc=True) == expected.dt.tz_convert("UTC")).all(), name
        if name.startswith("india"):
            as_written = expected.map(lambda v: v.isoformat(sep=" "))
        elif name == "berlin.parquet":  # the zone itself: the offset moves with the clocks
            as_written = expected.map(lambda v: v.isoformat(sep=" "))
            assert {"+01:00", "+02:00"} <= set(fc.time.str[-6:]), fc.time
        else:  # offsets that differ name no one zone: UTC, said so
            as_written = expected.dt.tz_convert("UTC").map(lambda v: v.isoformat(sep=" "))
        assert (fc.time == as_written).all(), (name, fc.time[fc.time != as_written].head())
        ends = pd.read_csv(tmp_path / "e.csv", dtype=str)
        last = truth[row == 39].map(lambda v: v.isoformat(sep=" ")).set_axis(ends.index)
        if name == "berlin.csv":
            last = (
                truth[row == 39].dt.tz_convert("UTC").map(lambda v: v.isoformat(sep=" ")).set_axis(ends.index)
            )
        assert (ends.last_measured_time == last).all(), (name, ends.last_measured_time)
    backtest = tmp_path / "bt.csv"
    r = invoke(
        "evaluate",
        tmp_path / "india.csv",
        "-m",
        model,
        "--context",
        "20",
        "--samples",
        "0",
        "--backtest-out",
        backtest,
        "-o",
        tmp_path / "m.json",
        "-q",
    )
    assert r.exit_code == 0, r.output
    assert pd.read_csv(backtest, dtype=str).time.str.endswith("+05:30").all()
    # schema says so, and gives the range as the table has it (it gave 2024-02-09T18:30:00)
    r = invoke("schema", tmp_path / "india.csv", "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert (info["time_zone"], info["time_range"]["min"]) == ("UTC+05:30", "2024-02-10T00:00:00+05:30")
    r = invoke("schema", tmp_path / "berlin.parquet")
    assert "dates carry a time zone (Europe/Berlin): outputs give dates in it" in " ".join(r.output.split())


def test_a_group_s_error_names_the_file_s_row_and_leaves_a_quoted_cell_as_written(model, plans, tmp_path):
    """Read in groups, a bad cell is named by the file's row; a cell whose text reads "row 2" is
    quoted as written (it came out as 'row 302': the group's row numbers were rewritten anywhere
    in the message)."""
    df = pd.read_parquet(plans["parquet"])
    late = df.index[300]
    df["humidity"] = df.humidity.astype(str)
    df.loc[late, "humidity"] = "row 2"
    plan = tmp_path / "plan.parquet"
    df.to_parquet(plan, index=False, row_group_size=50)
    r = invoke("forecast", plan, "-m", model, *COMMON, "--chunk-specimens", 3, "-o", tmp_path / "fc.csv")
    assert r.exit_code == 2, r.output
    assert f"row {late + 1}: 'row 2' is not a number" in " ".join(r.output.split()), r.output
    assert not (tmp_path / "fc.csv").exists()


def test_dates_whose_offsets_are_written_apart_are_read_as_written(coating, tiny_model, tmp_path):
    """A compact ISO date keeps its offset (20240210T000000+0545); plain dates in JSON Lines claim
    no zone (2024-02-15 was read as the offset -15); a column where some dates carry an offset and
    some none is refused in one line, in CSV and JSON Lines (the ones without were read as UTC, or
    kept as written, silently: steps of 6:15 and 17:45 h where the table had 12 h); a message
    gives a zoned table's times in its zone (it gave them in UTC without one)."""
    df = pd.read_csv(coating)
    df = df[df.specimen_id.isin(sorted(df.specimen_id.unique())[:3])].copy()
    row = df.groupby("specimen_id").cumcount()
    df = df[row < 30]
    row = row[row < 30]
    local = pd.Timestamp("2024-02-10") + pd.to_timedelta(row, unit="D")
    df.assign(time=local).to_csv(tmp_path / "plain.csv", index=False)
    model = tiny_model(tmp_path / "plain.csv")
    nepal = local.dt.tz_localize("Asia/Kathmandu")  # +05:45
    df.assign(time=nepal.dt.strftime("%Y%m%dT%H%M%S%z")).to_csv(tmp_path / "compact.csv", index=False)
    df.assign(time=local.dt.strftime("%Y-%m-%d")).to_json(
        tmp_path / "days.jsonl", orient="records", lines=True
    )
    fc = tmp_path / "fc.csv"
    ahead = ["--horizon", 2, "--hold-conditions", "--samples", 0, "-o", fc, "-q"]
    for name, first in (("compact.csv", "2024-03-11 00:00:00+05:45"), ("days.jsonl", "2024-03-11")):
        r = invoke("forecast", tmp_path / name, "-m", model, *ahead)
        assert r.exit_code == 0, r.output
        assert pd.read_csv(fc, dtype=str).time.iloc[0] == first, name
    mixed = df.assign(
        time=[v.isoformat() if k % 2 else v.tz_localize(None).isoformat() for k, v in enumerate(nepal)]
    )
    mixed.to_csv(tmp_path / "mixed.csv", index=False)
    mixed.to_json(tmp_path / "mixed.jsonl", orient="records", lines=True)
    for name in ("mixed.csv", "mixed.jsonl"):
        r = invoke("forecast", tmp_path / name, "-m", model, "--samples", 0, "-o", fc, "-q")
        assert r.exit_code == 2, r.output
        assert r.output == (
            f"Error: {tmp_path / name}: column 'time', row 2: '2024-02-11T00:00:00+05:45' carries a time "
            "zone offset, but not every date does (row 1: '2024-02-10T00:00:00'); give every date its "
            "offset, or none, so that each names one instant\n"
        ), r.output
    twice = df.assign(time=nepal.map(lambda v: v.isoformat()))
    twice.iloc[[1], twice.columns.get_loc("time")] = twice.time.iloc[0]
    twice.to_csv(tmp_path / "twice.csv", index=False)
    r = invoke("forecast", tmp_path / "twice.csv", "-m", model, "--samples", 0, "-o", fc, "-q")
    assert r.exit_code == 2 and "has two rows at time 2024-02-10T00:00:00+05:45 (rows 1 and 2)" in r.output
