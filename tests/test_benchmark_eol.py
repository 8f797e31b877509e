"""The accuracy suite scores the end-of-life interval as `evaluate` does (benchmarks/accuracy.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.accuracy import eol_interval, eol_truth
from durability_cli.metrics import eol_interval_coverage

NAN = np.nan


def _truth():
    """Five specimens' clean series (falling to 0.5 at 1 per row from 10 at time 0..9, or not):
    A crosses at t = 5, B at 7, C and D never within their ten rows, E was already past at the end
    of its warm-up."""
    rows = []
    for sid, values in {
        "A": [10, 9, 8, 7, 6, 0, 0, 0, 0, 0],
        "B": [10, 9, 8, 7, 6, 6, 6, 0, 0, 0],
        "C": [10] * 10,
        "D": [10] * 10,
        "E": [10, 9, 0, 0, 0, 0, 0, 0, 0, 0],
    }.items():
        rows += [{"specimen_id": sid, "time": float(t), "y": float(v)} for t, v in enumerate(values)]
    clean = pd.DataFrame(rows)
    warmup = pd.Series(4, index=list("ABCDE"))
    return eol_truth(clean, warmup, "y", threshold=0.5)


def test_suite_leaves_out_an_interval_wholly_past_the_horizon_as_evaluate_does():
    truth = _truth()
    assert truth["past"].tolist() == [False, False, False, False, True]
    assert truth.loc["A", "eol_true"] == pytest.approx(4 + 5.5 / 6)
    eol = pd.DataFrame(
        {
            "specimen_id": list("ABCDE"),
            # A held; B missed (interval ends before its crossing); C's interval runs from within
            # the series to past it: held; D's lies wholly past the horizon: undetermined
            "eol_p10": [4.5, 4.5, 8.0, NAN, NAN],
            "eol_p90": [6.0, 6.0, NAN, NAN, NAN],
            "status": ["crosses", "crosses", "crosses", "not within the horizon", "already past"],
        }
    )
    out = eol_interval(eol, truth)
    assert out["eol_interval_n"] == 3 and out["eol_interval_undetermined"] == 1
    assert out["eol_coverage80"] == pytest.approx(2 / 3)
    # the rule before session 31 read D's p10 as the horizon and counted it held
    assert out["eol_interval_n_later_held"] == 4
    assert out["eol_coverage80_later_held"] == pytest.approx(3 / 4)
    # E (already past) is not scored; the others' bounds are kept to score again (+inf: later)
    rows = out["eol_specimens"]
    assert rows["specimen_id"] == list("ABCD")
    assert rows["p10"] == [4.5, 4.5, 8.0, None] and rows["p90"] == [6.0, 6.0, None, None]
    assert rows["censor"] == [9.0] * 4 and rows["eol_true"][2:] == [None, None]
    # the same numbers as the library's metric on the bounds, +inf for "later than the horizon"
    lib = eol_interval_coverage(
        [4.5, 4.5, 8.0, np.inf], [6.0, 6.0, np.inf, np.inf], truth["eol_true"][:4], 9.0
    )
    assert (lib["interval_coverage"], lib["interval_n"]) == (out["eol_coverage80"], out["eol_interval_n"])


def test_suite_without_an_interval_scores_nothing():
    assert eol_interval(None, _truth()) == {}
    point = pd.DataFrame({"specimen_id": list("ABCDE"), "eol_time": [5.0] * 5, "status": ["crosses"] * 5})
    assert eol_interval(point, _truth()) == {}


def test_a_recorded_benchmark_command_names_no_folder_of_this_machine():
    from benchmarks.common import recorded_args

    args = [
        "--only",
        "accuracy",
        "--save-models",
        "/tmp/m",
        "--member-paths=/tmp/p",
        "--models",
        "x",
        "--tag",
        "t",
    ]
    assert recorded_args(args) == [
        "--only", "accuracy", "--save-models", "DIR", "--member-paths=DIR", "--models", "DIR", "--tag", "t",
    ]  # fmt: skip
