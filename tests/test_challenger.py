"""benchmarks/challenger.py compares a challenger with the default's kept candidate by the same
member vote `train --trend-line auto` uses, matched by set and seed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import challenger  # noqa: E402


def run(seed, rmse, members, line=None, both=None, fresh=None):
    out = {
        "seed": seed,
        "train_seconds": 10.0,
        "scores": {"rmse": rmse, "coverage80": 0.8},
        "member_val_curves": [[v + 0.1, v, None] for v in members],
    }
    if line is not None:
        out |= {"trend_line": line, "trend_line_val_rmse": both}
    if fresh is not None:
        out["scores_fresh"] = {"rmse": fresh, "coverage80": 0.7}
    return out


def results_file(path: Path, runs: list[dict]) -> Path:
    path.write_text(
        json.dumps(
            {
                "command": "python run.py",
                "code": {"commit": "abc"},
                "datasets": {"s": {"model": {"runs": runs}}},
            }
        )
    )
    return path


def test_the_vote_reads_the_kept_candidates_members_and_keeps_the_challenger_on_a_majority(tmp_path):
    both = {"without": [0.1, 0.1, 0.1], "with": [0.5, 0.5, 0.5]}
    default = results_file(
        tmp_path / "d.json",
        [
            run(0, 1.0, [9, 9, 9], line=False, both=both, fresh=2.0),  # kept: without (0.1 each)
            run(1, 1.0, [9, 9, 9], line=True, both=both, fresh=2.0),  # kept: with (0.5 each)
        ],
    )
    chall = results_file(
        tmp_path / "c.json",
        [run(0, 0.5, [0.2, 0.05, 0.2], fresh=1.0), run(1, 0.5, [0.2, 0.05, 0.6], fresh=1.0)],
    )
    out = tmp_path / "out.json"
    assert challenger.main(["--default", str(default), "--challenger", str(chall), "--out", str(out)]) == 0
    s = json.loads(out.read_text())["sets"]["s"]
    # seed 0: 1 of 3 members beats 0.1 -> the default stays; seed 1: 2 of 3 beat 0.5 -> challenger
    assert [(r["members_for_challenger"], r["vote_keeps"]) for r in s["runs"]] == [
        (1, "default"),
        (2, "challenger"),
    ]
    assert s["fresh_mean_rmse"] == {"default": 2.0, "challenger": 1.0, "vote": 1.5}
    assert s["test_mean_rmse"]["vote"] == 0.75


def test_a_missing_file_is_one_line_and_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        challenger.main(["--default", str(tmp_path / "none.json"), "--challenger", str(tmp_path / "x.json")])
    assert e.value.code == 2
    assert "no such results file" in capsys.readouterr().err
