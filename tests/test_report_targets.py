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
