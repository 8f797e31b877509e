"""The measured datasets bundled with the benchmarks (benchmarks/data/README.md) must not rot: each
loads through `durability schema` with the specimens and columns its README promises, is what
the rebuild script makes of the fetched text, and has the documented benchmark split."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from durability_cli.cli import app

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data"


def test_device_b_loads_through_schema():
    r = CliRunner().invoke(app, ["schema", str(DATA / "device_b.csv"), "--target", "power_drop", "--json"])
    assert r.exit_code == 0, r.stderr
    info = json.loads(r.stdout)
    roles = {k: info["roles"][k] for k in ("id", "time", "target", "covariates", "static")}
    assert roles == {
        "id": "specimen_id",
        "time": "time",
        "target": "power_drop",
        "covariates": ["temperature"],
        "static": [],
    }
    assert (info["n_rows"], info["n_specimens"], info["n_observed_target"]) == (570, 34, 570)
    assert info["lengths"] == {"min": 9, "median": 17.0, "max": 33}
    assert info["spacing"]["regular"] and info["spacing"]["median_dt"] == 125.0
    assert info["ranges"]["temperature"] == {"min": 150.0, "max": 237.0}
    assert info["ranges"]["power_drop"] == {"min": -1.4423, "max": 0.0}
    assert set(info["missing"].values()) == {0}


def test_the_tables_are_the_rebuilds_of_the_fetched_texts(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(DATA))
    import make_tables

    assert make_tables.main(["--check"]) == 0  # also checks the sha256 of each fetched text
    out = capsys.readouterr().out
    assert "device_b.csv: matches" in out and "alloy_a.csv: matches" in out
    assert "laser.csv: matches" in out and "luminosity.csv: matches" in out


def test_alloy_a_loads_through_schema():
    r = CliRunner().invoke(app, ["schema", str(DATA / "alloy_a.csv"), "--target", "crack_length", "--json"])
    assert r.exit_code == 0, r.stderr
    info = json.loads(r.stdout)
    assert (info["roles"]["covariates"], info["roles"]["static"]) == ([], [])
    assert (info["n_rows"], info["n_specimens"], info["n_observed_target"]) == (262, 21, 262)
    assert info["lengths"] == {"min": 10, "median": 13.0, "max": 13}
    assert info["spacing"]["regular"] and info["spacing"]["median_dt"] == 0.01
    assert info["ranges"]["crack_length"] == {"min": 0.9, "max": 1.77}


def test_alloy_a_split_and_its_rising_end_of_life(monkeypatch):
    """Seven of the 21 specimens are held out, each forecast after the same 4 rows; its end of
    life is a crack that grows to 1.6 in, so the truth's crossing is found rising."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import realdata
    from benchmarks.accuracy import eol_truth, warmup_lengths

    split = realdata.split("alloy_a", seed=0)
    train, test, info = split["train"], split["test"], split["info"]
    assert set(train["specimen_id"]).isdisjoint(test["specimen_id"])
    assert (train["specimen_id"].nunique(), test["specimen_id"].nunique()) == (14, 7)
    assert realdata.split("alloy_a", seed=0)["test"].equals(test)
    assert not realdata.split("alloy_a", seed=1)["test"].equals(test)
    warmup = warmup_lengths(test, info)
    assert set(warmup) == {4}
    truth = eol_truth(split["test_clean"], warmup, info.target, info.eol_threshold, info.eol_direction)
    for sid, g in test.groupby("specimen_id"):
        crack = g["crack_length"].to_numpy()
        if crack.max() >= 1.6:  # crossed within its series: between the rows around 1.6 in
            i = int(np.argmax(crack >= 1.6))
            assert g["time"].iloc[i - 1] < truth.loc[sid, "eol_true"] <= g["time"].iloc[i]
        else:
            assert np.isnan(truth.loc[sid, "eol_true"])
    assert truth["eol_true"].notna().sum() == 2  # specimens 1 and 10; the other five stop short of 1.6


def test_laser_loads_through_schema_and_its_split(monkeypatch):
    """15 lasers of 17 rows each, no condition column; five are held out, each forecast after the
    same 6 rows, and only laser 110 reaches the 10 % end of life within its series (rising)."""
    r = CliRunner().invoke(app, ["schema", str(DATA / "laser.csv"), "--target", "current_increase", "--json"])
    assert r.exit_code == 0, r.stderr
    info = json.loads(r.stdout)
    assert (info["roles"]["covariates"], info["roles"]["static"]) == ([], [])
    assert (info["n_rows"], info["n_specimens"], info["n_observed_target"]) == (255, 15, 255)
    assert info["lengths"] == {"min": 17, "median": 17.0, "max": 17}
    assert info["spacing"]["regular"] and info["spacing"]["median_dt"] == 250.0
    assert info["ranges"]["current_increase"] == {"min": 0.0, "max": 12.21}
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import realdata
    from benchmarks.accuracy import eol_truth, warmup_lengths

    split = realdata.split("laser", seed=0)
    test = split["test"]
    assert sorted(test["specimen_id"].unique()) == ["104", "105", "107", "108", "110"]
    assert split["train"]["specimen_id"].nunique() == 10
    warmup = warmup_lengths(test, split["info"])
    assert set(warmup) == {6}
    truth = eol_truth(split["test_clean"], warmup, "current_increase", 10.0, "above")
    assert truth["eol_true"].notna().sum() == 1
    assert 3250.0 < truth.loc["110", "eol_true"] <= 3500.0


def test_luminosity_loads_through_schema_and_its_split(monkeypatch):
    """75 units of 29 rows at three temperatures; a third of each temperature's units are held
    out, each forecast after the same 10 rows; the end of life is a fall to half the luminosity."""
    r = CliRunner().invoke(app, ["schema", str(DATA / "luminosity.csv"), "--target", "luminosity", "--json"])
    assert r.exit_code == 0, r.stderr
    info = json.loads(r.stdout)
    assert (info["roles"]["covariates"], info["roles"]["static"]) == (["temperature"], [])
    assert (info["n_rows"], info["n_specimens"], info["n_observed_target"]) == (2175, 75, 2175)
    assert info["lengths"] == {"min": 29, "median": 29.0, "max": 29}
    assert info["spacing"]["regular"] and info["spacing"]["median_dt"] == 336.0
    assert info["ranges"]["temperature"] == {"min": 25.0, "max": 105.0}
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import realdata
    from benchmarks.accuracy import eol_truth, warmup_lengths

    split = realdata.split("luminosity", seed=0)
    train, test = split["train"], split["test"]
    assert set(train["specimen_id"]).isdisjoint(test["specimen_id"])
    assert test.groupby("temperature")["specimen_id"].nunique().to_dict() == {25: 8, 65: 8, 105: 8}
    assert train["specimen_id"].nunique() == 51
    warmup = warmup_lengths(test, split["info"])
    assert set(warmup) == {10}
    truth = eol_truth(split["test_clean"], warmup, "luminosity", 0.5, "below")
    crossed = test.groupby("specimen_id")["luminosity"].min() <= 0.5
    assert truth["eol_true"].notna().sum() <= crossed.sum()  # none crosses before its warm-up ends
    assert truth["eol_true"].notna().sum() > 0


def test_device_b_split_is_seeded_and_stratified_by_temperature(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import realdata

    split = realdata.split("device_b", seed=0)
    train, test = split["train"], split["test"]
    assert set(train["specimen_id"]).isdisjoint(test["specimen_id"])
    per_temperature = test.groupby("temperature")["specimen_id"].nunique().to_dict()
    assert per_temperature == {150: 2, 195: 4, 237: 5}
    assert train["specimen_id"].nunique() == 23
    assert realdata.split("device_b", seed=0)["test"].equals(test)
    lengths = test.groupby("specimen_id").size()
    warmup = realdata.warmup_rows(lengths, split["info"].warmup_fraction)
    assert {int(n): int(w) for n, w in zip(lengths, warmup, strict=True)} == {33: 11, 17: 6, 9: 3}


def test_the_benchmarks_end_of_life_interval_coverage(monkeypatch):
    """benchmarks/accuracy.py scores the end-of-life p10-p90 interval against the clean truth's
    crossing after the warm-up (linear between rows); a truth that never crosses, with an interval
    wholly past the series, is left out as evaluate leaves it (tests/test_benchmark_eol.py)."""
    import numpy as np
    import pandas as pd

    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.accuracy import eol_interval, eol_truth

    clean = pd.DataFrame(
        {
            "specimen_id": ["a"] * 4 + ["b"] * 4 + ["c"] * 4 + ["d"] * 4,
            "time": [0.0, 1.0, 2.0, 3.0] * 4,
            "y": [1.0, 0.9, 0.7, 0.3] + [1.0, 0.95, 0.9, 0.85] + [1.0, 0.4, 0.3, 0.2] + [1.0, 0.9, 0.6, 0.4],
        }
    )
    warm = pd.Series({"a": 2, "b": 2, "c": 2, "d": 2})
    truth = eol_truth(clean, warm, "y", 0.5)
    assert truth.loc["a", "eol_true"] == 2.5  # 0.7 -> 0.3 between times 2 and 3
    assert np.isnan(truth.loc["b", "eol_true"]) and truth.loc["b", "censor"] == 3.0
    assert truth.loc["c", "past"]  # already below at the end of its warm-up: not scored
    eol = pd.DataFrame(
        {
            "specimen_id": ["a", "b", "c", "d"],
            "status": ["crosses", "not within horizon", "already past", "crosses"],
            "eol_p10": [2.2, np.nan, np.nan, 2.0],
            "eol_p90": [2.8, np.nan, np.nan, 2.2],  # d's truth, 2.5, lies after its interval
        }
    )
    scored = eol_interval(eol, truth)
    assert (scored["eol_coverage80"], scored["eol_interval_n"], scored["eol_interval_undetermined"]) == (
        0.5,
        2,
        1,
    )
    assert (scored["eol_coverage80_later_held"], scored["eol_interval_n_later_held"]) == (2 / 3, 3)  # b held
    assert eol_interval(eol.drop(columns=["eol_p10", "eol_p90"]), truth) == {}  # a point model


def test_the_physics_oracles_replay_their_generators(monkeypatch):
    """benchmarks/oracles.py re-implements each generator's equations from the table's columns:
    told a crack's true coefficient and initial crack, its path is the clean truth to the bit;
    with a long warm-up its posterior mean must follow the clean truth far inside the noise, and on
    crack it must find what the benchmark notes claim: 20 rows say almost nothing about the Paris
    coefficient (posterior sd of its log near the prior's 0.2), 100 rows pin it down."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.oracles import measure

    for name in ("coating", "ageing"):
        r = measure(name, 0, 4, 4, warmup=80)
        assert r["rmse_clean"] < 0.4 * r["noise_floor"], (name, r["rmse_clean"])
        assert 0.7 < r["coverage80"] < 0.9, (name, r["coverage80"])
    # told a specimen's true Paris coefficient and initial crack, the replay is the clean truth
    from benchmarks import oracles
    from durability_cli.synthetic import make_split

    split, grid = make_split("crack", 0, 3, seed=1, hidden=True), oracles._grid2
    for _, g in split["test"].groupby("specimen_id"):
        true = (np.array([g["paris_c"].iloc[0]]), np.array([g["cracked0"].iloc[0]]), np.zeros(1))
        monkeypatch.setattr(oracles, "_grid2", lambda a, b, true=true: true)
        paths, _, _ = oracles.crack_paths(g)
        np.testing.assert_array_equal(paths[0], split["test_clean"].loc[g.index, "durability"].to_numpy())
    monkeypatch.setattr(oracles, "_grid2", grid)
    short, long = measure("crack", 0, 4, 4, warmup=20), measure("crack", 0, 4, 4, warmup=100)
    assert short["paris_c_posterior_log_sd"] > 0.15
    assert long["paris_c_posterior_log_sd"] < 0.1
    assert long["rmse_clean"] < 0.03 < short["rmse_clean"]


def test_the_what_if_benchmark_reads_each_coating_specimens_hidden_factors(monkeypatch):
    """benchmarks/whatif.py scores a plan against the physics: from a specimen's clean rows it must
    recover the generator's own s0 and lot (1 / s is linear in the dose of synthetic.coating_rate,
    the law the generator integrates)."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.whatif import hidden_factors
    from durability_cli.synthetic import make_coating

    _, clean = make_coating(n_specimens=6, seed=1, hidden=True)
    for _, g in clean.groupby("specimen_id"):
        inverse_s0, lot_over_s0, _dose = hidden_factors(g)
        s0, lot = g["s0"].iloc[0], g["lot"].iloc[0]
        assert abs(1 / inverse_s0 - s0) < 1e-9 and abs(lot_over_s0 / inverse_s0 - lot) < 1e-9


def test_the_accuracy_suite_takes_any_model_or_training_field(monkeypatch):
    """`benchmarks/run.py --set FIELD=VALUE`: each value typed and checked as `train --config`
    types it; an unknown field or a value the field refuses stops the run before anything trains."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.accuracy import parse_options

    got = parse_options(
        ["batch_size=16.0", "cell=gru", "residual=false", "lr=0.004", "transform=humidity=log"]
    )
    assert got == {
        "batch_size": 16,
        "cell": "gru",
        "residual": False,
        "lr": 0.004,
        "transform": "humidity=log",
    }
    assert isinstance(got["batch_size"], int)
    for bad, says in (
        ("bogus=1", "unknown option\\(s\\) bogus"),
        ("batch_size=-1", "batch_size must be between"),
        ("batch_size=abc", "batch_size must be a number"),
        ("residual=yes", "residual must be true or false"),
        ("cell=rnn", "cell must be one of lstm, gru"),
        ("seed=3", "the suite sets seed itself"),
        ("epochs=100", "the suite sets epochs itself"),
    ):
        with pytest.raises(ValueError, match=says):
            parse_options([bad])
    # through the command: one line, exit 2, before anything trains
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--only", "accuracy", "--set", "lags=x"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "--set: lags must be a number, got 'x'" in r.stderr.strip().splitlines()[-1]


def test_the_variant_studies_type_their_fields_as_a_config_file_does(monkeypatch):
    """`benchmarks/variants.py --variants` (and eol_variants.py): each variant's fields typed and
    checked as `train --config` does; a text value's own commas written as +."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.variants import parse_variants

    got = parse_variants(
        "default;norate:rate=false,batch_size=16.0;peck:transform=temperature=arrhenius+humidity=log"
    )
    assert got == {
        "default": ({}, {}),
        "norate": ({"rate": False}, {"batch_size": 16}),
        "peck": ({"transform": "temperature=arrhenius,humidity=log"}, {}),
    }
    assert isinstance(got["norate"][1]["batch_size"], int)
    for bad, says in (
        ("x:rate=off", "variant x: rate must be true or false"),  # no longer read as False
        ("x:bogus=1", "variant x: unknown option\\(s\\) bogus"),
        ("x:lr", "variant x lr: expected FIELD=VALUE"),
    ):
        with pytest.raises(ValueError, match=says):
            parse_variants(bad)
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "variants.py"), "--variants", "a:cell=rnn"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        r.returncode == 2 and "variant a: cell must be one of lstm, gru" in r.stderr.strip().splitlines()[-1]
    )


def test_the_patience_replay_stops_where_training_would(monkeypatch, tmp_path):
    """`benchmarks/patience.py`: a member stops after `patience` epochs without a strictly lower
    validation RMSE, keeping its best epoch; replayed at the patience a run had, every member
    keeps the epoch it kept and the ensemble runs as long; a longer patience than recorded is
    refused (the curve stops too early to say)."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.patience import longest_wait, replay, study

    assert replay([3.0, 2.0, 2.0, 2.0, 1.0], 2) == (4, 2)  # equal is not better
    assert replay([3.0, 2.0, 2.0, 2.0, 1.0], 3) == (5, 5)
    assert replay([1.0, 2.0], 5) == (2, 1)  # the end of the curve
    assert longest_wait([3.0, 2.0, 2.0, 2.0, 1.0, 0.5], 5) == 3  # best at 1, 2, 5 (then 6: not kept)
    curves = [[5.0, 4.0, 4.5, 4.6, 3.9, 4.0, 4.1, 4.2], [5.0, 4.0, 4.1, 4.2, 4.3, 4.4]]
    run = {
        "member_val_curves": curves,
        "member_best_epochs": [5, 2],
        "member_epochs_run": [8, 6],
        "epochs_max": 10,
        "patience": 4,
        "train_seconds": 80.0,
    }
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"datasets": {"x": {"model": {"runs": [run]}}}}))
    same, shorter = study(path, [0.4, 0.2], min_patience=1)
    assert (same["members_changed"], same["epochs_ratio"]) == (0, 1.0)
    assert same["share_needed"] == 3 / 10  # member 1 waited from epoch 2 to 5
    # patience 2: member 1 stops at epoch 4 keeping epoch 2 (4.0 against its 3.9), member 2 at 4
    assert shorter["members_changed"] == 1 and shorter["val_worse_max"] == pytest.approx(4.0 / 3.9 - 1)
    assert shorter["epochs_ratio"] == 4 / 8 and shorter["train_seconds_estimate"] == 40.0
    with pytest.raises(SystemExit, match="cannot replay 5"):
        study(path, [0.5], min_patience=1)


def test_warmup_lengths_script_trains_a_variant_and_scores_each_warm_up(monkeypatch, tmp_path):
    """`benchmarks/warmup_lengths.py` with `--field` and `--val-context`: the variant's fields
    reach the model (a GRU of 8 units, 2 epochs), one line per warm-up length, each scored on the
    same rows after the longest warm-up; an unknown field is refused in one line."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import warmup_lengths

    out = tmp_path / "lines.jsonl"
    fields = ["--field", "epochs=2", "--field", "hidden=8", "--field", "cell=gru", "--field", "ensemble=1"]
    argv = ["--set", "ball", "--shares", "1", "--val-context", "4", "--contexts", "3,6", "--label", "gru8"]
    assert warmup_lengths.main([*argv, *fields, "--out", str(out)]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(x["test_context"], x["val_context"], x["variant"]) for x in lines] == [
        (3, 4, "gru8"),
        (6, 4, "gru8"),
    ]
    assert lines[0]["common_rows"] == lines[1]["common_rows"] > 0
    assert lines[0]["rmse_common_rows"] != lines[1]["rmse_common_rows"]
    assert lines[0]["members"] == 1 and "cell=gru" in lines[0]["fields"]
    assert lines[0]["parameters"] < 2_000  # 2 GRU layers of 8 units (the set's default: ~50,000)
    with pytest.raises(SystemExit) as e:
        warmup_lengths.main([*argv, "--field", "no_such=1", "--out", str(out)])
    assert e.value.code == 2 and len(out.read_text().splitlines()) == 2
    with pytest.raises(SystemExit) as e:
        warmup_lengths.main([*argv, "--field", "warmup_min=0.5", "--out", str(out)])
    assert e.value.code == 2 and len(out.read_text().splitlines()) == 2


def test_the_splits_script_scores_a_variant_by_warm_up_on_several_splits(monkeypatch, tmp_path):
    """benchmarks/splits.py: one line per (split, variant), the suite's score split by warm-up
    length (the specimens add up to the test set) and the fixed warm-ups on common rows; a fixed
    warm-up the shortest specimen cannot leave rows after is refused."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    from benchmarks import splits

    out = tmp_path / "splits.jsonl"
    argv = [
        "--set",
        "alloy_a",
        "--splits",
        "0,1",
        "--variants",
        "short:epochs=2,ensemble=1",
        "--fixed",
        "2,3",
    ]
    assert splits.main([*argv, "--out", str(out)]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(x["split"], x["variant"]) for x in lines] == [(0, "short"), (1, "short")]
    for x in lines:
        assert x["fields"] == {"epochs": 2, "ensemble": 1} and x["members"] == 1
        assert sum(w["specimens"] for w in x["by_warmup"].values()) == x["test_specimens"]
        assert set(x["fixed"]) == {"2", "3"} and all(v > 0 for v in x["fixed"].values())
        assert x["rmse"] > 0 and x["rmse_deterministic"] > 0
    assert lines[0]["by_warmup"] != lines[1]["by_warmup"] or lines[0]["rmse"] != lines[1]["rmse"]
    with pytest.raises(SystemExit):
        splits.main(["--set", "alloy_a", "--fixed", "500", "--out", str(out)])
    assert len(out.read_text().splitlines()) == 2  # nothing appended
    # a synthetic set: another draw of its specimens, every test specimen from the set's warm-up
    other = tmp_path / "ball.jsonl"
    args = ["--set", "ball", "--splits", "1", "--variants", "short:epochs=1,ensemble=1", "--fixed", "3"]
    assert splits.main([*args, "--out", str(other)]) == 0
    line = json.loads(other.read_text())
    assert (
        list(line["by_warmup"]) == ["3"]
        and line["by_warmup"]["3"]["specimens"] == line["test_specimens"] == 16
    )
    assert line["fixed"]["3"] == pytest.approx(line["rmse_deterministic"])  # the same warm-up, the same rows


def test_the_measured_splits_suite_scores_the_model_and_baselines_per_split(monkeypatch):
    """benchmarks/measured_splits.py (run.py --only measured-splits), quick: the default model and the
    baselines on two test splits of Alloy-A; split 0's baselines are the accuracy suite's
    own (the same rows), the summary counts the splits won, and the report renders a row each."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import measured_splits, report

    payload = measured_splits.run(True, ["alloy_a"])
    lines = payload["sets"]["alloy_a"]["splits"]
    assert [x["split"] for x in lines] == [0, 1]
    assert all(
        set(x["baselines"]) == {"persistence", "linear", "exponential", "mixed_effects"} for x in lines
    )
    suite = json.loads((ROOT / "benchmarks" / "results" / "accuracy.json").read_text())
    for name, b in suite["datasets"]["alloy_a"]["baselines"].items():
        assert lines[0]["baselines"][name]["rmse"] == pytest.approx(b["rmse"], rel=1e-9), name
    # the mixed-effects path: as benchmarks/mixed_effects.py fitted it on the same splits
    fitted = json.loads((ROOT / "benchmarks" / "results" / "mixed-effects.json").read_text())
    for x, y in zip(lines, fitted["sets"]["alloy_a"]["splits"][:2], strict=True):
        assert x["baselines"]["mixed_effects"]["rmse"] == pytest.approx(
            y["baselines"]["mixed_effects"]["rmse"], rel=1e-9
        )
    assert lines[0]["baselines"] != lines[1]["baselines"]  # another draw of specimens
    summary = payload["sets"]["alloy_a"]["summary"]
    won = sum(x["rmse"] < min(b["rmse"] for b in x["baselines"].values()) for x in lines)
    assert summary["splits"] == 2 and summary["splits_below_every_baseline"] == won
    assert summary["rmse_mean"] == pytest.approx((lines[0]["rmse"] + lines[1]["rmse"]) / 2)
    text = "\n".join(report.splits_section(payload))
    assert "| alloy_a | 0 |" in text and "| alloy_a | 1 |" in text and f"{won} of 2" in text


def test_fresh_test_specimens_are_new_draws_of_the_generator(monkeypatch):
    """`run.py --fresh-test N`: N specimens the suite's split never holds (another seed of the
    same generator, ids marked), complete, with the set's noise, scored on the rows after each
    one's warm-up of `context` rows."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.accuracy import FRESH_SEED, fresh_split
    from durability_cli.synthetic import make_split

    split = make_split("coating", 32, 16, seed=0)
    info = split["info"]
    fresh = fresh_split("coating", 12, info)
    test, clean, rows, warmup = fresh["test"], fresh["clean"], fresh["rows"], fresh["warmup"]
    assert FRESH_SEED != 0 and test["specimen_id"].nunique() == 12
    assert test["specimen_id"].str.startswith("fresh-").all()
    assert list(test.columns) == list(split["test"].columns) and test[info.target].notna().all()
    noise = float(np.sqrt(np.mean((test[info.target] - clean[info.target]) ** 2)))
    assert 0.5 * info.noise < noise < 1.5 * info.noise
    suite = pd.concat([split["train"], split["test"]])
    assert not test.merge(suite, on=["time", info.target]).shape[0]  # no series of the split again
    assert set(warmup) == {info.context}
    assert len(rows) == len(test) - 12 * info.context and rows["specimen_id"].nunique() == 12


def test_line_rules_combine_the_two_candidates_members(monkeypatch):
    """line_rules.py's rules on three members: the vote keeps the line when most members
    validate better with it, `member` takes each member's better one, `both` averages all six."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.line_rules import rule_paths

    plain = pd.DataFrame({"member0": [1.0, 1.0], "member1": [2.0, 2.0], "member2": [3.0, 3.0]})
    line = plain + 10.0
    val0, val1 = [1.0, 1.0, 1.0], [0.5, 0.5, 2.0]  # members 0 and 1 better with the line
    paths, votes = rule_paths(plain, line, val0, val1)
    assert votes == 2
    np.testing.assert_allclose(paths["vote"], [12.0, 12.0])
    np.testing.assert_allclose(paths["mean"], [2.0, 2.0])  # mean validation 1.0 against 1.0: a tie
    np.testing.assert_allclose(paths["member"], [(11.0 + 12.0 + 3.0) / 3] * 2)
    np.testing.assert_allclose(paths["both"], [7.0, 7.0])
    np.testing.assert_allclose(paths["share"], [(2 * 12.0 + 2.0) / 3] * 2)
