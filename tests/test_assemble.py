"""benchmarks/assemble.py puts tagged accuracy runs in section 1's place and keeps an earlier run's
Darts runs only where they are of the same split and seeds, saying where they came from."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import assemble  # noqa: E402


def entry(seeds, test_ids=("T1", "T2"), darts=True, seconds=100.0):
    """A dataset's block as accuracy.run writes it, with only what assemble and the report read."""
    curve = [{"epoch": e, "seconds": 10.0 * e, "val_rmse": 1.0 / e} for e in range(1, 11)]
    return {
        "info": {
            "target": "y",
            "train_specimens": 10,
            "test_specimens": len(test_ids),
            "train_rows": 100,
            "forecast_rows": 40,
            "test_ids": list(test_ids),
        },
        "model": {"runs": [{"seed": s, "train_seconds": seconds, "val_curve": curve} for s in seeds]},
        "darts": {
            "runs": [
                {"seed": s, "best_val_rmse": 0.25, "time_to_best": 50.0, "fit_seconds": seconds}
                for s in seeds
            ]
            if darts
            else [],
        },
    }


def results(datasets, command="python benchmarks/run.py --only accuracy", commit="abc1234"):
    return {
        "suite": "accuracy",
        "mode": "full",
        "command": command,
        "date": "2026-12-01T00:00:00",
        "code": {"commit": commit, "library_changes": []},
        "settings": {"seeds": [0, 1], "darts_budget_factor": 1.0},
        "darts_status": "ok",
        "datasets": datasets,
    }


def write(path: Path, payload: dict) -> Path:
    path.write_text(json.dumps(payload))
    return path


def test_darts_is_reused_with_its_run_and_the_time_table_is_recomputed(tmp_path):
    source = write(tmp_path / "old.json", results({"a": entry([0, 1], seconds=80.0)}, commit="old0001"))
    new = write(
        tmp_path / "new.json",
        results(
            {"a": entry([0, 1], darts=False, seconds=200.0)},
            command="python run.py --tag new",
            commit="new0002",
        ),
    )
    out = assemble.assemble([new], source)
    a = out["datasets"]["a"]
    assert a["run"]["command"] == "python run.py --tag new" and a["run"]["code"]["commit"] == "new0002"
    reused = a["darts"]["reused"]
    assert reused["code"]["commit"] == "old0001"
    assert reused["budget_model_seconds"] == [80.0, 80.0]  # the old model's time, not this one's
    assert [r["seed"] for r in a["darts"]["runs"]] == [0, 1]
    # this model's curve first reaches Darts' 0.25 at epoch 4 (40 s); Darts took 50 s
    assert [p["model_time_to_reach"] for p in a["training_speed"]["pairs"]] == [40.0, 40.0]
    assert out["assembled_from"] == ["new.json"]


@pytest.mark.parametrize(
    ("old", "why"),
    [
        (entry([0, 1], test_ids=("T1", "T3")), "another split"),
        (entry([0]), "Darts seeds [0]"),
        (entry([0, 1], darts=False), "no Darts runs"),
    ],
)
def test_darts_is_not_reused_from_another_split_or_other_seeds(tmp_path, old, why):
    source = write(tmp_path / "old.json", results({"a": old}))
    new = write(tmp_path / "new.json", results({"a": entry([0, 1], darts=False)}))
    a = assemble.assemble([new], source)["datasets"]["a"]
    assert a["darts"]["runs"] == [] and why in a["darts"]["error"]
    assert "reused" not in a["darts"]


def test_a_set_given_twice_is_refused(tmp_path):
    source = write(tmp_path / "old.json", results({"a": entry([0, 1])}))
    one = write(tmp_path / "one.json", results({"a": entry([0, 1], darts=False)}))
    two = write(tmp_path / "two.json", results({"a": entry([0, 1], darts=False)}))
    with pytest.raises(SystemExit, match="a is in two of the runs"):
        assemble.assemble([one, two], source)


def test_sets_keep_the_suite_order(tmp_path):
    source = write(tmp_path / "old.json", results({"b": entry([0, 1]), "a": entry([0, 1])}))
    new = write(tmp_path / "new.json", results({"a": entry([0, 1]), "c": entry([0, 1]), "b": entry([0, 1])}))
    assert list(assemble.assemble([new], source)["datasets"]) == ["b", "a", "c"]


def test_assembling_again_keeps_the_run_darts_was_trained_in(tmp_path):
    source = write(tmp_path / "old.json", results({"a": entry([0, 1], seconds=80.0)}, commit="old0001"))
    first = write(
        tmp_path / "first.json",
        assemble.assemble([write(tmp_path / "n1.json", results({"a": entry([0, 1], darts=False)}))], source),
    )
    again = assemble.assemble(
        [write(tmp_path / "n2.json", results({"a": entry([0, 1], darts=False)}, commit="new0003"))], first
    )
    reused = again["datasets"]["a"]["darts"]["reused"]
    assert reused["code"]["commit"] == "old0001" and reused["budget_model_seconds"] == [80.0, 80.0]


def test_a_set_replaced_by_runs_of_one_seed_each_merges_them(tmp_path):
    """--replace-with: a set's seeds run in separate files replace that set of --runs, merged in
    seed order with the summary computed again and every file's command kept; Darts is still
    reused (same split, same seeds); a seed in two files is refused."""

    def scored(seeds, rmse):
        e = entry(seeds)
        for r in e["model"]["runs"]:
            r["scores"] = {"rmse": rmse + r["seed"], "mae": 1.0}
        return e

    old = write(tmp_path / "old.json", results({"a": scored([0, 1], 10.0), "b": scored([0, 1], 10.0)}))
    base = write(tmp_path / "base.json", results({"a": scored([0, 1], 10.0), "b": scored([0, 1], 10.0)}))
    s1 = write(tmp_path / "s1.json", results({"a": scored([1], 2.0)}, command="run s1", commit="new"))
    s0 = write(tmp_path / "s0.json", results({"a": scored([0], 2.0)}, command="run s0", commit="new"))
    out = assemble.assemble([base], old, [s1, s0])
    a, b = out["datasets"]["a"], out["datasets"]["b"]
    assert [r["seed"] for r in a["model"]["runs"]] == [0, 1]
    assert [r["scores"]["rmse"] for r in a["model"]["runs"]] == [2.0, 3.0]
    assert a["model"]["summary"]["rmse"]["mean"] == pytest.approx(2.5)
    assert a["run"]["command"] == "run s1 ; run s0" and a["run"]["merged_from"] == ["s1.json", "s0.json"]
    assert a["darts"]["runs"] and b["model"]["runs"][0]["scores"]["rmse"] == 10.0
    assert out["assembled_from"][-2:] == ["s1.json", "s0.json"]
    twice = write(tmp_path / "twice.json", results({"a": scored([0], 2.0)}))
    with pytest.raises(SystemExit, match="repeat"):
        assemble.assemble([base], old, [s0, twice])
    with pytest.raises(SystemExit, match="no --runs file has"):
        assemble.assemble([write(tmp_path / "only_b.json", results({"b": scored([0, 1], 1.0)}))], old, [s0])
