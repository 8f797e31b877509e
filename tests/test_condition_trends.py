"""`evaluate` says when the model's error follows a condition (metrics.condition_trends): the
specimens with the most of it erred one way, those with the least the other."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import durability_cli as dur
from durability_cli.cli import app
from durability_cli.metrics import TREND_SPECIMENS, condition_trends, specimen_errors
from durability_cli.render import condition_notes


def _specimens(x, err, n=10) -> pd.DataFrame:
    return pd.DataFrame(
        {"specimen": [f"s{i}" for i in range(len(x))], "n": n, "error": np.asarray(err, dtype=float), "t": x}
    )


def test_a_trend_is_found_and_its_thirds_are_the_means_by_hand():
    x = np.arange(30.0)
    err = 0.01 * (x - 15) + 0.002 * np.sin(7 * x)  # rises with x, with a little wobble
    out = condition_trends(_specimens(x, err), rmse=0.1)
    c = out["columns"]["t"]
    assert out["specimens"] == 30 and c["specimens"] == 30
    assert c["follows"] and c["rank_correlation"] > 0.95
    assert c["low"]["value"] == pytest.approx(x[:10].mean()) and c["low"]["error"] == pytest.approx(
        err[:10].mean()
    )
    assert c["high"]["value"] == pytest.approx(x[20:].mean()) and c["high"]["error"] == pytest.approx(
        err[20:].mean()
    )


@pytest.mark.parametrize(
    "case, follows",
    [
        ("trend", True),
        ("shuffled", False),  # the same errors, in no order of x
        ("few", False),  # a perfect trend over fewer than TREND_SPECIMENS specimens
        ("small", False),  # a perfect trend whose thirds differ by less than TREND_SIZE x RMSE
    ],
)
def test_the_rule_needs_a_sure_and_large_trend_over_enough_specimens(case, follows):
    n = TREND_SPECIMENS - 1 if case == "few" else 40
    x = np.linspace(10, 70, n)
    err = 0.001 * (x - 40) * (0.01 if case == "small" else 1.0)
    if case == "shuffled":
        err = np.random.default_rng(0).permutation(err)
    c = condition_trends(_specimens(x, err), rmse=0.02)["columns"]["t"]
    assert c["follows"] is follows
    assert abs(c["rank_correlation"]) == pytest.approx(1.0) or case == "shuffled"


def test_a_constant_condition_or_unscored_specimens_give_no_trend():
    x = np.full(20, 25.0)
    c = condition_trends(_specimens(x, np.linspace(-1, 1, 20)), rmse=0.1)["columns"]["t"]
    assert not c["follows"] and np.isnan(c["rank_correlation"]) and "low" not in c
    frame = _specimens(np.arange(20.0), np.arange(20.0)).assign(n=0)  # no scored row anywhere
    out = condition_trends(frame, rmse=0.1)
    assert out["specimens"] == 0 and not out["columns"]["t"]["follows"]


def test_specimen_errors_pool_the_cut_offs_by_their_rows():
    points = pd.DataFrame(
        {
            "specimen": ["a", "a", "a", "a", "b", "b", "b"],
            "origin": [0, 0, 1, 1, 0, 0, 0],
            "model": ["model"] * 6 + ["persistence"],
            "y_true": [1.0, 1.0, 2.0, np.nan, 0.0, 0.0, 5.0],
            "y_pred": [1.5, 1.5, 1.0, 9.0, 0.25, 0.75, 0.0],
        }
    )
    drivers = pd.DataFrame(
        {
            "specimen": ["a", "a", "b"],
            "origin": [0, 1, 0],
            "rows": [2, 2, 2],
            "t": [10.0, 40.0, 5.0],
            "lot": [1.0, 1.0, np.nan],
        }
    )
    out = specimen_errors(points, drivers).set_index("specimen")
    # a: errors 0.5, 0.5, -1 over 3 scored rows (the NaN truth is not scored); b: the model's 2 rows only
    assert out.loc["a", "error"] == pytest.approx(0.0) and out.loc["a", "n"] == 3
    assert out.loc["b", "error"] == pytest.approx(0.5) and out.loc["b", "n"] == 2
    assert out.loc["a", "t"] == pytest.approx(25.0) and out.loc["b", "t"] == pytest.approx(5.0)
    assert out.loc["a", "lot"] == pytest.approx(1.0) and np.isnan(out.loc["b", "lot"])


@pytest.mark.parametrize(
    "threshold, direction, high_error, words",
    [
        (0.6, "below", 0.03, ("most (mean 60) wore faster", "least (mean 20) wore more slowly")),
        (0.6, "above", 0.03, ("most (mean 60) wore more slowly", "least (mean 20) wore faster")),
        (
            None,
            "below",
            0.03,
            ("most (mean 60) ran under the forecast", "least (mean 20) ran over the forecast"),
        ),
    ],
)
def test_the_note_says_which_way_each_third_erred(threshold, direction, high_error, words):
    block = {
        "specimens": 40,
        "rank_correlation": 0.5,
        "follows": True,
        "low": {"value": 20.0, "error": -0.01},
        "high": {"value": 60.0, "error": high_error},
    }
    report = {
        "threshold": threshold,
        "direction": direction,
        "by_condition": {"columns": {"temperature": block}},
    }
    (note,) = condition_notes(report)
    assert note.startswith("the error follows temperature (rank correlation +0.50, 40 specimens)")
    assert all(w in note for w in words), note
    assert "When the error follows a condition" in note
    block["follows"] = False
    assert condition_notes(report) == []


@pytest.fixture(scope="module")
def unseen(coating_slice) -> Path:
    """24 coating specimens the session's ``model`` did not train on (11th to 34th), 60 rows each."""
    return coating_slice(24, 60, first=10)


def test_evaluate_reports_each_conditions_trend_as_its_backtest_shows_it(runner, model, unseen, tmp_path):
    """The JSON's thirds are the means of the backtest's own rows: each specimen's mean error
    over its scored rows, against its mean condition over the rows it forecast."""
    bt = tmp_path / "bt.csv"
    args = ["evaluate", str(unseen), "-m", str(model), "--origins", "2", "--samples", "0"]
    r = runner.invoke(app, [*args, "--json", "--backtest-out", str(bt)])
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)["by_condition"]
    rows = pd.read_csv(bt)
    rows = rows[rows.model == "model"].merge(
        pd.read_csv(unseen).rename(columns={"specimen_id": "specimen"}), on=["specimen", "time"], how="left"
    )
    scored = rows.dropna(subset=["y_true", "y_pred"])
    err = (scored.y_pred - scored.y_true).groupby(scored.specimen).mean()
    assert report["specimens"] == len(err) == 24
    assert set(report["columns"]) == {"temperature", "humidity"}
    for name, c in report["columns"].items():
        cond = rows.groupby("specimen")[name].mean().loc[err.index]  # both cut-offs' rows
        order = np.argsort(cond.to_numpy(), kind="stable")
        low, high = order[:8], order[-8:]
        assert c["low"]["value"] == pytest.approx(cond.iloc[low].mean())
        assert c["high"]["value"] == pytest.approx(cond.iloc[high].mean())
        assert c["low"]["error"] == pytest.approx(err.iloc[low].mean())
        assert c["high"]["error"] == pytest.approx(err.iloc[high].mean())
        assert c["rank_correlation"] == pytest.approx(cond.rank().corr(err.rank()))


@pytest.fixture(scope="module")
def shifted(unseen, tmp_path_factory) -> Path:
    """``unseen`` with its measured values after the 20-row warm-up moved down (more wear) the
    hotter the specimen ran, up to 0.15 either side of the mean: the model cannot know."""
    df = pd.read_csv(unseen)
    after = df.groupby("specimen_id").cumcount() >= 20
    heat = df[after].groupby("specimen_id")["temperature"].mean()
    shift = 0.3 * (heat - heat.mean()) / (heat.max() - heat.min())
    df.loc[after, "durability"] -= df.loc[after, "specimen_id"].map(shift)
    path = tmp_path_factory.mktemp("shifted") / "shifted.csv"
    df.to_csv(path, index=False)
    return path


def test_evaluate_names_a_condition_the_specimens_followed_after_the_warm_up(runner, model, shifted):
    """The model's error follows temperature, and the table's note says that the hottest third
    wore faster than forecast."""
    args = [
        "evaluate",
        str(shifted),
        "-m",
        str(model),
        "--context",
        "20",
        "--samples",
        "0",
        "--threshold",
        "0.5",
    ]
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.stderr
    c = json.loads(r.stdout)["by_condition"]["columns"]["temperature"]
    assert c["follows"] and c["rank_correlation"] > 0.5 and c["high"]["error"] > c["low"]["error"]
    text = " ".join(runner.invoke(app, args).stderr.split())
    assert "the error follows temperature" in text and "the third with the most" in text
    assert "wore faster than forecast" in text.split("the error follows temperature")[1].split(";")[0]


def test_calibrate_warns_that_a_factor_by_step_cannot_follow_a_condition(model, shifted, unseen):
    kept = dur.load(model).calibrate(pd.read_csv(shifted), context=20, samples=20)
    block = kept.summary["calibration"]
    assert block["errors_follow"] == ["temperature"]
    assert any("the held-out errors follow temperature" in w for w in block["warnings"])
    plain = dur.load(model).calibrate(pd.read_csv(unseen), context=20, samples=20).summary["calibration"]
    trends = dur.load(model).evaluate(pd.read_csv(unseen), context=20, samples=20).report["by_condition"]
    assert plain["errors_follow"] == [n for n, c in trends["columns"].items() if c["follows"]]
    assert any("errors follow" in w for w in plain["warnings"]) == bool(plain["errors_follow"])


def test_plot_conditions_draws_each_specimen_and_the_thirds(runner, model, shifted, figures, tmp_path):
    out = tmp_path / "conditions.png"
    args = ["--context", "20", "--samples", "0", "-o", str(out)]
    r = runner.invoke(app, ["plot", "conditions", str(shifted), "-m", str(model), *args])
    assert r.exit_code == 0, r.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    evaluation = dur.load(model).evaluate(pd.read_csv(shifted), context=20, samples=0, baselines=False)
    panels = [ax for ax in figures[0].axes if ax.get_visible()]
    assert [ax.get_title().split(":")[0] for ax in panels] == ["temperature", "humidity"]
    assert "the error follows it" in panels[0].get_title()  # the shift follows temperature
    specimens = evaluation.specimens.set_index("specimen")
    for ax, name in zip(panels, ["temperature", "humidity"], strict=True):
        xy = ax.collections[0].get_offsets()  # the scatter: one point per specimen
        drawn = np.asarray(sorted(map(tuple, np.asarray(xy))))
        want = np.asarray(sorted(zip(specimens[name], specimens["error"], strict=True)))
        assert drawn.shape == (24, 2) and np.allclose(drawn, want)
        low, high = (
            np.asarray(ax.collections[k].get_segments()[0])[0, 1] for k in (1, 2)
        )  # the thirds' lines
        block = evaluation.report["by_condition"]["columns"][name]
        assert (low, high) == pytest.approx((block["low"]["error"], block["high"]["error"]))


def test_plot_conditions_needs_the_specimens_and_a_condition(model, unseen):
    """An evaluation without its per-specimen errors (a report read back), or with no condition
    ranked, is refused with one clear error."""
    evaluation = dur.load(model).evaluate(pd.read_csv(unseen), context=20, samples=0, baselines=False)
    with pytest.raises(dur.InputError, match="no condition to draw"):
        dur.load(model).plot_conditions(
            dur.Evaluation(evaluation.report | {"by_condition": {}}, specimens=evaluation.specimens)
        )
    with pytest.raises(dur.InputError, match="no per-specimen errors"):
        dur.load(model).plot_conditions(dur.Evaluation(evaluation.report))


def test_a_condition_named_like_a_column_of_the_specimens_table_keeps_its_own_column(
    runner, unseen, tmp_path
):
    """Conditions called "error" and "n" (legal column names) do not overwrite the specimens'
    mean error and row count: they are reported as "error (condition)" and "n (condition)"."""
    df = pd.read_csv(unseen).rename(columns={"temperature": "error", "humidity": "n"})
    data, out = tmp_path / "odd.csv", tmp_path / "odd.safetensors"
    df.to_csv(data, index=False)
    args = ["--covariates", "error,n", "--epochs", "1", "--hidden", "4", "--layers", "1", "--ensemble", "1"]
    r = runner.invoke(app, ["train", str(data), "-o", str(out), *args, "--quiet"])
    assert r.exit_code == 0, r.stderr
    evaluation = dur.load(out).evaluate(df, context=20, samples=0, baselines=False)
    assert set(evaluation.report["by_condition"]["columns"]) == {"error (condition)", "n (condition)"}
    spec = evaluation.specimens.set_index("specimen")
    after = df[df.groupby("specimen_id").cumcount() >= 20].groupby("specimen_id")
    assert np.allclose(spec["error (condition)"], after["error"].mean().loc[spec.index])  # as measured
    assert spec["n"].equals(after["durability"].count().loc[spec.index].rename("n"))  # the scored rows
    assert spec["error"].abs().max() < 1.0  # errors of durability, not temperatures
