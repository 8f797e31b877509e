"""--shard i/n on forecast and evaluate: job-array pieces that concatenate to the whole."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from durability_cli.cli import app
from durability_cli.parallel import parse_shard, shard_of

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


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
def plan(coating, tmp_path_factory) -> Path:
    """Durability hidden after 20-24 rows (different warm-ups, so the chunks differ by shard)."""
    df = pd.read_csv(coating)
    cut = 20 + df.specimen_id.str[-1].astype(int) % 5
    df.loc[df.groupby("specimen_id").cumcount() >= cut, "durability"] = np.nan
    path = tmp_path_factory.mktemp("plan") / "plan.csv"
    df.to_csv(path, index=False)
    return path


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys).reset_index(drop=True)


def test_forecast_shards_concatenate_to_the_unsharded_forecast(model, plan, tmp_path):
    common = ["-m", model, "--threshold", "0.6", "-q"]
    r = invoke("forecast", plan, *common, "-o", tmp_path / "all.csv", "--eol-out", tmp_path / "all_eol.csv")
    assert r.exit_code == 0, r.output
    parts, eols = [], []
    for i in range(3):
        out, eol = tmp_path / f"s{i}.csv", tmp_path / f"s{i}_eol.csv"
        r = invoke("forecast", plan, *common, "--shard", f"{i}/3", "-o", out, "--eol-out", eol)
        assert r.exit_code == 0, r.output
        parts.append(pd.read_csv(out))
        eols.append(pd.read_csv(eol))
    # every specimen is in exactly one shard, the one its id hashes to
    seen = [set(p.specimen_id) for p in parts]
    assert all(len(p) for p in parts) and not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    for i, ids in enumerate(seen):
        assert (shard_of(sorted(ids), 3) == i).all()

    keys = ["specimen_id", "time"]
    whole = _sorted(pd.read_csv(tmp_path / "all.csv"), keys)
    pieces = _sorted(pd.concat(parts, ignore_index=True), keys)
    assert list(pieces.columns) == list(whole.columns)
    assert pieces[keys].equals(whole[keys]) and pieces.extrapolated.equals(whole.extrapolated)
    # Bit for bit: a shard is another batch of specimens (other warm-up lengths, so another fused
    # prefix, other row counts), and without gradients the model computes each row alike in any
    # batch (model.py: the module steps, row-wise read-out heads, padding to 8 rows); each
    # specimen's Monte Carlo draws come from its own (seed, id) generator.
    assert pieces.equals(whole)

    whole_eol = _sorted(pd.read_csv(tmp_path / "all_eol.csv"), ["specimen_id"])
    pieces_eol = _sorted(pd.concat(eols, ignore_index=True), ["specimen_id"])
    assert pieces_eol.equals(whole_eol)
    # and as text: the concatenated CSV rows are the unsharded file's rows
    lines = sorted(x for i in range(3) for x in (tmp_path / f"s{i}.csv").read_text().splitlines()[1:])
    assert lines == sorted((tmp_path / "all.csv").read_text().splitlines()[1:])


def test_dated_shards_write_their_dates_as_the_whole_run(coating, plan, tiny_model, tmp_path):
    """Dates at whole days but one specimen's every 12 h: each shard writes its dates in the unit
    the whole table needs (2024-01-01 00:00:00), in memory and read in groups from Parquet, so the
    shards' rows concatenate to the whole run's text. (Before, a shard without the 12-hourly
    specimen wrote 2024-01-01 beside the whole run's 2024-01-01 00:00:00.)"""

    def dated(path: Path, name: str) -> Path:
        df = pd.read_csv(path)
        row = df.groupby("specimen_id").cumcount()
        step = np.where(df.specimen_id == df.specimen_id.max(), 0.5, 1.0)
        df["time"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(step * row, unit="D")
        df.to_csv(tmp_path / f"{name}.csv", index=False)
        df.to_parquet(tmp_path / f"{name}.parquet", index=False, row_group_size=60)
        return tmp_path / f"{name}.csv"

    model = tiny_model(dated(coating, "train"))
    data = dated(plan, "plan")
    common = ["-m", model, "--threshold", "0.6", "--samples", "0", "-q"]
    for table, more in ((data, []), (data.with_suffix(".parquet"), ["--chunk-specimens", "2"])):
        texts = {}
        for shard in (None, "0/3", "1/3", "2/3"):
            out, eol = tmp_path / f"f{shard}.csv".replace("/", "_"), tmp_path / "e.csv"
            extra = [] if shard is None else ["--shard", shard]
            r = invoke("forecast", table, *common, *more, *extra, "-o", out, "--eol-out", eol)
            assert r.exit_code == 0, r.output
            texts[shard] = (out.read_text().splitlines()[1:], eol.read_text().splitlines()[1:])
        for k in (0, 1):
            pieces = sorted(x for shard in ("0/3", "1/3", "2/3") for x in texts[shard][k])
            assert pieces == sorted(texts[None][k]), table
        times = pd.read_csv(tmp_path / "f0_3.csv", dtype=str).time
        assert times.str.len().eq(len("2024-01-01 00:00:00")).all() and times.str.endswith("00:00:00").all()


def test_evaluate_shards_split_the_per_specimen_scores(model, coating, tmp_path):
    common = ["-m", model, "--context", "20", "--samples", "50", "-q"]
    r = invoke("evaluate", coating, *common, "--per-series", tmp_path / "all.csv")
    assert r.exit_code == 0, r.output
    parts = []
    for i in range(2):
        out = tmp_path / f"s{i}.csv"
        r = invoke("evaluate", coating, *common, "--shard", f"{i}/2", "--per-series", out)
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["settings"]["shard"] == f"{i}/2"
        parts.append(pd.read_csv(out))
    whole = pd.read_csv(tmp_path / "all.csv")
    keys = [c for c in ("model", "specimen_id") if c in whole.columns]
    whole, pieces = _sorted(whole, keys), _sorted(pd.concat(parts, ignore_index=True), keys)
    assert pieces.equals(whole)


@pytest.mark.parametrize("spec", ["3/3", "1/0", "-1/4", "a/b", "2", "1/2/3"])
def test_bad_shard_spec_is_one_clear_line(model, plan, spec):
    r = invoke("forecast", plan, "-m", model, "--shard", spec)
    assert r.exit_code == 2
    assert r.output.startswith(f"Error: --shard {spec}: the index must be 0..N-1") or r.output.startswith(
        f"Error: --shard must be I/N (this job's index, then the number of jobs), e.g. 0/8; got '{spec}'"
    ), r.output
    assert r.output.count("\n") == 1


def test_parse_shard():
    assert parse_shard("0/1") == (0, 1)
    assert parse_shard(" 7 / 8 ") == (7, 8)


def test_an_empty_shard_writes_nothing_and_succeeds(model, plan, tmp_path):
    ids = sorted(pd.read_csv(plan).specimen_id.unique())
    empty = next(i for i in range(40) if i not in set(shard_of(ids, 40)))
    out = tmp_path / "f.csv"
    r = invoke("forecast", plan, "-m", model, "--shard", f"{empty}/40", "-o", out)
    assert r.exit_code == 0, r.output
    assert f"shard {empty}/40 holds none of the 12 specimens" in r.output
    assert not out.exists()


def test_shard_of_is_pinned():
    # Job arrays rely on the same id landing in the same shard on every machine and in every
    # release: changing the hash would silently split a rerun differently.
    assert shard_of(["C001", "C002", "C003", "C004", "1", "unit 7"], 8).tolist() == [7, 2, 6, 3, 6, 6]
