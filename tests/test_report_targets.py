"""RESULTS.md's targets table judges issue 14's targets per set: on the fresh specimens where a
set has them, else on the suite's test split."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import report  # noqa: E402


def per_seed(rmse, coverage, eol, specimens):
    return {"rmse": rmse, "coverage80": coverage, "eol_coverage80": eol, "specimens": specimens}


def rows_by_name(acc):
    return {r[0]: r for r in report._issue14_rows(acc)}


def test_fresh_specimens_decide_where_a_set_has_them():
    acc = {
        "synthetic": {
            "rmse": 1.0,
            "per_seed": {
                # fresh: steady seeds, bands in range; the 16 test specimens: neither
                "fresh": per_seed([1.0, 1.02, 0.98], [0.8, 0.78, 0.84], [0.8, None, 0.76], 96),
                "test": per_seed([1.0, 1.5, 0.6], [0.6, 0.9, 0.8], [0.5, 0.5, 0.5], 16),
            },
        }
    }
    rows = rows_by_name(acc)
    assert rows["seed spread, synthetic"][3] == report.ok(True)
    assert "on 16 test specimens" in rows["seed spread, synthetic"][2]
    band = rows["bands, synthetic"]
    assert band[3].startswith(report.ok(True)) and "(5 of 5 in range)" in band[3]  # None is skipped


def test_the_test_split_decides_without_fresh_specimens_and_one_seed_out_of_range_misses():
    acc = {
        "measured": {
            "rmse": 1.0,
            "per_seed": {"test": per_seed([1.0, 1.3, 0.7], [0.8, 0.851, 0.8], [None] * 3, 7)},
        }
    }
    rows = rows_by_name(acc)
    assert rows["seed spread, measured"][3] == report.ok(False)  # 30 %
    assert (
        rows["bands, measured"][3].startswith(report.ok(False))
        and "(2 of 3 in range)" in rows["bands, measured"][3]
    )
    assert "end of life" not in rows["bands, measured"][2]


def test_coating_is_held_against_its_oracle():
    acc = {"coating": {"rmse": 0.03, "oracle": 0.01, "per_seed": {}}}
    row = rows_by_name(acc)["accuracy, coating vs its oracle"]
    assert "3 × the oracle" in row[2] and row[3] == report.ok(False)


def test_the_bands_row_says_which_side_the_misses_fell_on():
    fresh = per_seed([1.0, 1.0], [0.72, 0.8], [0.8, 0.74], 96)
    fresh |= {"eol_interval_n": [91, 88], "sides": [(0.18, 0.1, 18, 0), (0.1, 0.1, 22, 1)]}
    old = per_seed([1.0, 1.0], [0.8, 0.8], [None] * 2, 16) | {"sides": [(None,) * 4] * 2}
    band = rows_by_name({"s": {"rmse": 1.0, "per_seed": {"fresh": fresh, "test": old}}})["bands, s"][2]
    assert "band 0.72 / 0.8 (under / over it: 18 / 10, 10 / 10 %)" in band
    assert "(of 91 / 88 decided; missed early / late: 18 / 0, 22 / 1)" in band
    assert "16 test specimens: band 0.8 / 0.8;" not in band and band.endswith("band 0.8 / 0.8")


def test_a_rescored_file_names_the_training_run_and_the_rescoring():
    from benchmarks import common

    result = {
        "command": "python benchmarks/rescore.py --runs benchmarks/results/accuracy-a-x-s0.json --models DIR",
        "rescored_from": {"command": "python benchmarks/run.py --only accuracy --tag a"},
        "date": "2026-12-05",
    }
    run = common.dataset_run(result, {})
    assert run["command"] == (
        "python benchmarks/run.py --only accuracy --tag a ; then python benchmarks/rescore.py "
        "--runs benchmarks/results/accuracy-a-x-s0.json --models DIR"
    )
    assert common.dataset_run(result, {"run": {"command": "kept"}}) == {"command": "kept"}
