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
    rows = rows[rows.model == "model"].merge(pd.read_csv(unseen), on=["specimen_id", "time"], how="left")
    scored = rows.dropna(subset=["y_true", "y_pred"])
    err = (scored.y_pred - scored.y_true).groupby(scored.specimen_id).mean()
    assert report["specimens"] == len(err) == 24
    assert set(report["columns"]) == {"temperature", "humidity"}
    for name, c in report["columns"].items():
        cond = rows.groupby("specimen_id")[name].mean().loc[err.index]  # both cut-offs' rows
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


MEAN_PATHS = ["--context", "20", "--samples", "0"]  # 20 rows of warm-up, then the mean path


def _evaluated(runner, model, data, name: str, *extra) -> tuple[dict, list[str]]:
    """(``by_condition``'s block for ``name`` from ``evaluate --json``, the command's arguments
    without ``--json``): 20 rows of warm-up, mean paths, threshold 0.5."""
    args = ["evaluate", str(data), "-m", str(model), *MEAN_PATHS, "--threshold", "0.5"]
    r = runner.invoke(app, [*args, *extra, "--json"])
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)["by_condition"]["columns"][name], args


def test_evaluate_names_a_condition_the_specimens_followed_after_the_warm_up(runner, model, shifted):
    """The model's error follows temperature, and the table's note says that the hottest third
    wore faster than forecast."""
    c, args = _evaluated(runner, model, shifted, "temperature")
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
    specimens = evaluation.specimens.set_index("specimen_id")
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
    spec = evaluation.specimens.set_index("specimen_id")
    after = df[df.groupby("specimen_id").cumcount() >= 20].groupby("specimen_id")
    assert np.allclose(spec["error (condition)"], after["error"].mean().loc[spec.index])  # as measured
    assert spec["n"].equals(after["durability"].count().loc[spec.index].rename("n"))  # the scored rows
    assert spec["error"].abs().max() < 1.0  # errors of durability, not temperatures


def _labelled(labels, err) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "specimen": [f"s{i}" for i in range(len(labels))],
            "n": 10,
            "error": np.asarray(err, dtype=float),
            "lot": np.asarray(labels, dtype=object),
        }
    )


def test_a_categorical_column_is_tested_across_its_labels():
    """Two lots whose errors differ: the Kruskal-Wallis p-value is the chi-square tail of H with
    one degree of freedom, erfc(sqrt(H / 2)), H computed here from the ranks by hand; the groups
    come from the lowest mean error; a label of fewer than TREND_GROUP specimens is listed but
    not tested."""
    import math

    from durability_cli.metrics import TREND_GROUP

    rng = np.random.default_rng(4)
    labels = ["a"] * 14 + ["b"] * 16 + ["c"] * (TREND_GROUP - 1)
    err = np.concatenate([rng.normal(0.02, 0.01, 14), rng.normal(-0.01, 0.01, 16), [0.5, 0.6]])
    c = condition_trends(_labelled(labels, err), rmse=0.03)["columns"]["lot"]
    assert c["kind"] == "category" and c["specimens"] == 32
    assert list(c["groups"]) == ["b", "a", "c"]  # mean errors -0.01, 0.02, 0.55
    assert c["groups"]["a"] == {"specimens": 14, "error": pytest.approx(err[:14].mean())}
    tested = err[:30]
    ranks = pd.Series(tested).rank().to_numpy()
    n = 30
    h = 12 / (n * (n + 1)) * (ranks[:14].sum() ** 2 / 14 + ranks[14:].sum() ** 2 / 16) - 3 * (n + 1)
    assert c["p_value"] == pytest.approx(math.erfc(math.sqrt(h / 2)), rel=1e-9)
    assert c["p_value"] < 0.01 and c["follows"]
    # the same errors in no order of the labels: no difference
    mixed = condition_trends(_labelled(labels[:30], rng.permutation(tested)), rmse=0.03)["columns"]["lot"]
    assert not mixed["follows"] and mixed["p_value"] > 0.01
    # a sure difference too small against the RMSE, or one label alone: nothing flagged
    assert not condition_trends(_labelled(labels, err), rmse=1.0)["columns"]["lot"]["follows"]
    alone = condition_trends(_labelled(["a"] * 20, err[:20]), rmse=0.03)["columns"]["lot"]
    assert not alone["follows"] and np.isnan(alone["p_value"])


def test_the_note_names_the_labels_that_erred_most_and_least():
    block = {
        "kind": "category",
        "specimens": 30,
        "p_value": 0.0004,
        "follows": True,
        "groups": {
            "A": {"specimens": 12, "error": -0.02},
            "B": {"specimens": 16, "error": 0.04},
            "C": {"specimens": 2, "error": 0.3},
        },
    }
    report = {"threshold": 0.5, "direction": "below", "by_condition": {"columns": {"material": block}}}
    (note,) = condition_notes(report)
    assert note.startswith("the error differs by material (Kruskal-Wallis p 0.0004, 30 specimens)")
    # C has too few specimens to be compared: B erred most, A least
    assert "material B (16 specimens) wore faster than forecast, by 0.04" in note
    assert "material A (12 specimens) wore more slowly than forecast, by 0.02" in note


@pytest.fixture(scope="module")
def by_material(coating_slice, unseen, tmp_path_factory) -> tuple[Path, Path]:
    """(a tiny model that reads material as a static column, trained on the first 10 coating
    specimens; ``unseen`` with the measured values of material B moved down by 0.15 after the
    20-row warm-up: B wears faster than the model can know)."""
    from typer.testing import CliRunner

    out = tmp_path_factory.mktemp("material") / "m.safetensors"
    args = ["train", str(coating_slice(10, 60)), "-o", str(out), "--static", "material", "--epochs", "2"]
    r = CliRunner().invoke(app, [*args, "--hidden", "8", "--layers", "1", "--ensemble", "1", "--quiet"])
    assert r.exit_code == 0, r.stderr
    df = pd.read_csv(unseen)
    after = (df.groupby("specimen_id").cumcount() >= 20) & (df["material"] == "B")
    df.loc[after, "durability"] -= 0.15
    data = out.with_name("by_material.csv")
    df.to_csv(data, index=False)
    return out, data


def test_evaluate_calibrate_and_plot_name_a_label_that_wore_differently(
    runner, by_material, figures, tmp_path
):
    model, data = by_material
    c, args = _evaluated(runner, model, data, "material")
    assert c["kind"] == "category" and c["follows"] and list(c["groups"]) == ["A", "B"]
    assert (c["groups"]["A"]["specimens"], c["groups"]["B"]["specimens"]) == (8, 16)
    assert c["groups"]["B"]["error"] - c["groups"]["A"]["error"] > 0.04
    # read 5 specimens at a time: each group's specimens pooled, the same test
    pooled, _ = _evaluated(runner, model, data, "material", "--chunk-specimens", "5")
    assert list(pooled["groups"]) == list(c["groups"]) and pooled["p_value"] == pytest.approx(c["p_value"])
    for label, g in c["groups"].items():
        assert pooled["groups"][label] == {"specimens": g["specimens"], "error": pytest.approx(g["error"])}
    text = " ".join(runner.invoke(app, args).stderr.split())
    assert "the error differs by material" in text
    assert "material B (16 specimens) wore faster than forecast" in text
    kept = dur.load(model).calibrate(pd.read_csv(data), context=20, samples=20).summary["calibration"]
    assert "material" in kept["errors_follow"]
    out = tmp_path / "conditions.png"
    r = runner.invoke(app, ["plot", "conditions", str(data), "-m", str(model), *MEAN_PATHS, "-o", str(out)])
    assert r.exit_code == 0, r.stderr
    panels = {ax.get_title().split(":")[0]: ax for ax in figures[0].axes if ax.get_visible()}
    assert set(panels) == {"temperature", "humidity", "material"}
    ax = panels["material"]
    assert "the error differs by it" in ax.get_title()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["A", "B"]
    evaluation = dur.load(model).evaluate(pd.read_csv(data), context=20, samples=0, baselines=False)
    spec = evaluation.specimens
    for k, label in enumerate(["A", "B"]):  # a column of points per label, and its mean as a line
        xy = np.asarray(ax.collections[2 * k].get_offsets())
        want = np.sort(spec.loc[spec["material"] == label, "error"].to_numpy())
        assert np.allclose(np.sort(xy[:, 1]), want) and np.all(np.abs(xy[:, 0] - k) <= 0.25)
        line = np.asarray(ax.collections[2 * k + 1].get_segments()[0])
        assert line[0, 1] == pytest.approx(want.mean())


def test_evaluate_compares_each_models_trends_on_the_columns_any_of_them_reads(runner, model, by_material):
    """evaluate -m A -m B: by_condition is the first model's, on every column either model reads
    (here material, which only B reads); by_condition_compared holds B's, equal to B's report
    evaluated alone; the note lines of B are named."""
    with_material, data = by_material
    args = ["evaluate", str(data), "-m", str(model), "-m", str(with_material), *MEAN_PATHS]
    r = runner.invoke(app, [*args, "--threshold", "0.5", "--json"])
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    (name,) = report["by_condition_compared"]
    assert name == "m" and name in report["models"]
    first = report["by_condition"]["columns"]
    assert set(first) == {"temperature", "humidity", "material"}
    alone = dur.load(model).evaluate(pd.read_csv(data), context=20, samples=0, baselines=False).report
    mine = alone["by_condition"]["columns"]["temperature"]
    assert first["temperature"]["rank_correlation"] == pytest.approx(mine["rank_correlation"])
    assert (
        first["temperature"]["low"] == pytest.approx(mine["low"])
        and first["temperature"]["follows"] == mine["follows"]
    )
    theirs = report["by_condition_compared"][name]
    own = dur.load(with_material).evaluate(pd.read_csv(data), context=20, samples=0, baselines=False).report
    assert theirs["specimens"] == own["by_condition"]["specimens"] == 24
    for column, block in own["by_condition"]["columns"].items():
        got = theirs["columns"][column]
        assert got["follows"] == block["follows"]
        for key in ("rank_correlation", "p_value"):
            assert got.get(key) == pytest.approx(block.get(key), nan_ok=True)
    assert theirs["columns"]["material"]["follows"]  # B reads material, but not the shift after the warm-up
    text = " ".join(runner.invoke(app, [*args, "--threshold", "0.5"]).stderr.split())
    assert f"{name}: the error differs by material" in text


def test_plot_conditions_draws_each_compared_model_beside_the_first(
    runner, model, by_material, figures, tmp_path
):
    """plot conditions -m A -m B: every column either model reads gets a panel; each panel holds
    each model's points (the compared one's are its own errors, as evaluate -m A -m B ranks them)
    and names both models in its title; plot errors -m A -m B draws a line for each model."""
    with_material, data = by_material
    out = tmp_path / "both.png"
    args = [str(data), "-m", str(model), "-m", str(with_material), *MEAN_PATHS, "-o", str(out)]
    r = runner.invoke(app, ["plot", "conditions", *args])
    assert r.exit_code == 0, r.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig = figures[-1]
    panels = {ax.get_title().split("\n")[0]: ax for ax in fig.axes if ax.get_visible()}
    assert set(panels) == {"temperature", "humidity", "material"}
    evaluation = dur.load(model).evaluate(
        pd.read_csv(data), context=20, samples=0, baselines=False, compare={"m": dur.load(with_material)}
    )
    theirs = evaluation.compared_specimens["m"].set_index("specimen_id")
    mine = evaluation.specimens.set_index("specimen_id")
    ax = panels["temperature"]
    lines = ax.get_title().split("\n")[1:]
    assert lines[0].startswith("model: rank correlation") and lines[1].startswith("m: rank correlation")
    # the first model's scatter and its two thirds, then the compared one's
    first, second = (np.asarray(ax.collections[k].get_offsets()) for k in (0, 3))
    assert np.allclose(
        sorted(map(tuple, first)), sorted(zip(mine["temperature"], mine["error"], strict=True))
    )
    assert np.allclose(
        sorted(map(tuple, second)), sorted(zip(theirs["temperature"], theirs["error"], strict=True))
    )
    assert not np.allclose(np.sort(first[:, 1]), np.sort(second[:, 1]))  # two models, two sets of errors
    # material: only the compared model reads it, but both models' errors are set against it
    material = panels["material"]
    assert "model: Kruskal-Wallis" in material.get_title() and "m: Kruskal-Wallis" in material.get_title()
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["model", "m"]
    errors = tmp_path / "errors.png"
    r = runner.invoke(app, ["plot", "errors", *args[:-1], str(errors)])
    assert r.exit_code == 0, r.stderr
    labels = [line.get_label() for line in figures[-1].axes[0].get_lines()]
    assert "model" in labels and "m" in labels


def test_a_third_at_one_level_still_gets_a_line_to_see():
    """An accelerated test's few temperatures put each third at one level: its line had no
    length, and the panel promised lines it did not draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from durability_cli.plotting import _numeric_points

    rows = pd.DataFrame({"temperature": [25.0] * 4 + [65.0] * 4 + [105.0] * 4, "error": np.arange(12) / 100})
    fig, ax = plt.subplots()
    look = {"points": "k", "line": "r", "style": "solid"}
    _numeric_points(ax, rows, "temperature", {"rank_correlation": 0.9}, look)
    (low,), (high,) = (np.asarray(ax.collections[k].get_segments()) for k in (1, 2))
    for segment, level, error in ((low, 25.0, 0.015), (high, 105.0, 0.095)):
        (x0, y0), (x1, y1) = segment
        assert x1 - x0 == pytest.approx(0.06 * 80) and (x0 + x1) / 2 == pytest.approx(level)
        assert y0 == y1 == pytest.approx(error)
    plt.close(fig)
