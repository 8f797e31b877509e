"""The mixed-effects path baseline (durability_cli/mixed_effects.py): its fit, its forecast, and
what `train` and `evaluate` do with it, through the real commands."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from durability_cli import load
from durability_cli import mixed_effects as me
from durability_cli.cli import app
from durability_cli.data import to_series
from durability_cli.metrics import baseline_linear
from durability_cli.schema import Schema, validate

SCHEMA = Schema("specimen_id", "time", "durability", [], [])


def quadratic_table(
    n: int, rows: int = 20, noise: float = 0.002, seed: int = 0, start: int = 0
) -> pd.DataFrame:
    """``n`` specimens, each y = 1 - a s - b s^2 (s = t / 100, a and b its own), measured every 5
    time units with Gaussian noise; ids from ``start``."""
    rng = np.random.default_rng(seed)
    parts = []
    for i in range(n):
        a, b = rng.normal(0.3, 0.08), rng.normal(0.4, 0.1)
        t = np.arange(rows) * 5.0
        s = t / 100
        y = 1 - a * s - b * s**2 + rng.normal(0, noise, rows)
        parts.append(pd.DataFrame({"specimen_id": f"S{start + i:03d}", "time": t, "durability": y}))
    return pd.concat(parts, ignore_index=True)


def series_of(df: pd.DataFrame):
    return to_series(validate(df, SCHEMA, source="test"))


def forecast_rmse(fit: me.PathFit, df: pd.DataFrame, warm: int) -> tuple[float, float]:
    """RMSE of the path and of the linear baseline over every specimen's rows after ``warm``."""
    ours, line = [], []
    for _, g in df.groupby("specimen_id"):
        t, y = g["time"].to_numpy(), g["durability"].to_numpy()
        ours.append(me.predict(fit, t[:warm], y[:warm], t[warm:]) - y[warm:])
        line.append(baseline_linear(t[:warm], y[:warm], t[warm:]) - y[warm:])
    return tuple(float(np.sqrt(np.mean(np.concatenate(e) ** 2))) for e in (ours, line))


def test_the_population_of_paths_is_learned_and_a_short_warm_up_leans_on_it():
    train, new = quadratic_table(30), quadratic_table(20, seed=1, start=100)
    fit, scores = me.cross_validated(series_of(train), lambda lengths: np.minimum(4, lengths - 1))
    assert fit.degree == 2 and fit.specimens == 30, scores  # the family the paths are drawn from
    assert scores["2"] < scores["1"] and scores["2"] < scores["3"]
    assert set(scores) == {"1", "2", "3"}  # no conditions: no family with them
    # the population's mean path and the noise, on the table's own scale: s = t / 95 here
    assert fit.tau == 95.0
    assert fit.mean == pytest.approx([1.0, -0.3 * 0.95, -0.4 * 0.95**2], abs=0.05)
    assert math.sqrt(fit.noise) == pytest.approx(0.002, rel=0.3)
    # from 4 rows the line through them runs off; the population's curve does not
    ours, line = forecast_rmse(fit, new, 4)
    assert ours < 0.25 * line, (ours, line)


def test_without_noise_the_warm_up_decides_and_with_much_noise_the_population_does():
    fit, _ = me.cross_validated(series_of(quadratic_table(12, noise=1e-7)), lambda n: np.minimum(5, n - 1))
    g = quadratic_table(1, seed=7, noise=0.0, start=50)
    t, y = g["time"].to_numpy(), g["durability"].to_numpy()
    assert me.predict(fit, t[:5], y[:5], t[5:]) == pytest.approx(y[5:], abs=1e-4)  # its own path
    deaf = me.PathFit(fit.degree, fit.tau, fit.mean, fit.cov, 1e12, fit.specimens)
    mean_path = me._basis((t[5:] - t[0]) / fit.tau, fit.degree) @ fit.mean
    assert me.predict(deaf, t[:5], y[:5], t[5:]) == pytest.approx(mean_path, abs=1e-6)
    assert np.isnan(me.predict(fit, [], [], t[5:])).all()  # no warm-up, no forecast


def test_too_few_specimens_give_no_fit():
    assert me.choose(
        [series_of(quadratic_table(2))], [series_of(quadratic_table(2, start=9))], lambda n: n - 1
    ) == (
        None,
        {},
    )


def test_a_fit_round_trips_and_a_bad_one_is_refused():
    fit, _ = me.cross_validated(series_of(quadratic_table(8)), lambda n: np.minimum(4, n - 1))
    again = me.PathFit.from_json(json.loads(json.dumps(fit.to_json())))
    assert again.degree == fit.degree and np.array_equal(again.cov, fit.cov) and again.noise == fit.noise
    good, k = fit.to_json(), fit.degree + 1
    for bad, message in (
        ({"degree": 5}, "degree must be one of (1, 2, 3), got 5"),
        ({"degree": True}, "degree must be one of"),
        ({"mean": [1.0]}, f"mean / cov must be {k} / {k}x{k} numbers"),
        ({"cov": [[float("nan")] * k] * k}, "non-finite"),
        ({"noise": -1.0}, "tau and noise must be positive"),
        ({"tau": "x"}, "is not a fit"),
    ):
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            me.PathFit.from_json(good | bad)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mixed")
    data = folder / "paths.csv"
    quadratic_table(24).to_csv(data, index=False)
    out = folder / "m.safetensors"
    args = ["train", str(data), "-o", str(out), "--epochs", "3", "--hidden", "8", "--layers", "1"]
    r = CliRunner().invoke(app, [*args, "--ensemble", "1", "--no-trend-line", "--val-context", "4"])
    assert r.exit_code == 0, r.stderr
    return data, out, r.stderr


def test_train_scores_the_path_on_its_validation_specimens_and_keeps_the_fit(trained):
    data, out, stderr = trained
    s = load(out).summary
    fit = me.PathFit.from_json(s["mixed_effects"])
    # refitted by hand on the training specimens, scored on the validation ones from 4 rows
    df = pd.read_csv(data)
    train = series_of(df[df["specimen_id"].isin(s["train_specimens"])])
    val = series_of(df[df["specimen_id"].isin(s["val_specimens"])])
    again, scores = me.choose([train], [val], lambda n: np.minimum(4, n))
    assert again.label == fit.label == str(fit.degree)
    # the file keeps that degree fitted again on every specimen, the validation ones included
    assert fit.specimens == 24 and np.allclose(me.refit([train, val], fit.label).mean, fit.mean)
    assert not np.allclose(again.mean, fit.mean)
    assert s["val_baseline_rmse"]["mixed_effects"] == pytest.approx(scores[fit.label], rel=1e-9)
    assert s["mixed_effects"]["val_rmse"] == {k: pytest.approx(v, rel=1e-9) for k, v in scores.items()}
    # the summary's baselines row names it; three epochs of a tiny network lose to it
    said = " ".join(stderr.split())
    assert "mixed_effects " in said and "Warning: the mixed_effects baseline" in said


def test_evaluate_scores_the_files_path_on_new_specimens(trained, tmp_path):
    _, out, _ = trained
    new = tmp_path / "new.csv"
    quadratic_table(10, seed=3, start=500).to_csv(new, index=False)
    report = tmp_path / "report.json"
    r = CliRunner().invoke(app, ["evaluate", str(new), "-m", str(out), "--context", "6", "-o", str(report)])
    assert r.exit_code == 0, r.stderr
    got = json.loads(report.read_text())
    fit = me.PathFit.from_json(load(out).summary["mixed_effects"])
    expected, _ = forecast_rmse(fit, pd.read_csv(new), 6)
    assert got["models"]["mixed_effects"]["rmse"] == pytest.approx(expected, rel=1e-9)
    assert got["models"]["mixed_effects"]["rmse"] < got["models"]["linear"]["rmse"]
    assert "mixed_effects" in got["skill"] and "mixed_effects" in r.stderr
    # a model file without the fit (trained before it existed) scores the three baselines alone
    from durability_cli.artifact import load_bundle, save_bundle

    bundle = load_bundle(out)
    bundle.summary.pop("mixed_effects")
    old = tmp_path / "old.safetensors"
    save_bundle(bundle, old)
    r = CliRunner().invoke(app, ["evaluate", str(new), "-m", str(old), "--context", "6", "-o", str(report)])
    assert r.exit_code == 0, r.stderr
    assert set(json.loads(report.read_text())["models"]) == {"model", "persistence", "linear", "exponential"}


def test_combine_weighs_the_path_in_by_inverse_squared_validation_rmse(trained, tmp_path):
    """`train --combine mixed_effects` keeps the model's weight b^2 / (m^2 + b^2) from its own
    validation RMSEs; the forecast's mean is that average of the model's mean and the path, and
    every quantile moves with it (the paths are moved, not redrawn)."""
    from durability_cli.artifact import load_bundle, save_bundle

    data, out, _ = trained
    combined = tmp_path / "c.safetensors"
    args = ["train", str(data), "-o", str(combined), "--epochs", "3", "--hidden", "8", "--layers", "1"]
    extra = ["--ensemble", "1", "--no-trend-line", "--val-context", "4", "--combine", "mixed_effects"]
    r = CliRunner().invoke(app, [*args, *extra])
    assert r.exit_code == 0, r.stderr
    s = load_bundle(combined).summary
    m, b = s["best_val_rmse"], s["val_baseline_rmse"]["mixed_effects"]
    assert s["mixed_effects"]["weight"] == pytest.approx(b * b / (m * m + b * b), rel=1e-12)
    said = " ".join(r.stderr.split())
    assert f"forecast = {s['mixed_effects']['weight']:.3g} x the model + " in said
    shown = CliRunner().invoke(app, ["inspect", str(combined)])
    assert shown.exit_code == 0 and "x the mixed-effects path" in " ".join(shown.stderr.split())
    assert "weight" not in load_bundle(out).summary["mixed_effects"]  # not asked for: the model alone

    # the same network with and without a weight of 0.3: the forecasts differ by the average alone
    bundle = load_bundle(out)
    bundle.summary["mixed_effects"] = bundle.summary["mixed_effects"] | {"weight": 0.3}
    save_bundle(bundle, combined)
    new = quadratic_table(6, seed=4, start=700)
    plan = new.copy()
    plan.loc[plan.groupby("specimen_id").cumcount() >= 5, "durability"] = np.nan
    plan_path = tmp_path / "plan.csv"
    plan.to_csv(plan_path, index=False)
    frames = {}
    for name, model in (("alone", out), ("combined", combined)):
        for samples in ("0", "40"):  # the mean path alone, then Monte Carlo paths and quantiles
            got = tmp_path / f"{name}{samples}.csv"
            args = ["forecast", str(plan_path), "-m", str(model), "--samples", samples, "-o", str(got)]
            r = CliRunner().invoke(app, args)
            assert r.exit_code == 0, r.stderr
            frames[name, samples] = pd.read_csv(got)
    a, c = frames["alone", "0"], frames["combined", "0"]
    fit = me.PathFit.from_json(bundle.summary["mixed_effects"])
    path = np.concatenate(
        [
            me.predict(fit, g["time"][:5], g["durability"][:5], g["time"][5:])
            for _, g in new.groupby("specimen_id", sort=False)
        ]
    )
    assert len(a) == len(path) == 6 * 15
    assert c["durability_mean"].to_numpy() == pytest.approx(0.3 * a["durability_mean"] + 0.7 * path, abs=1e-5)
    a, c = frames["alone", "40"], frames["combined", "40"]
    moved = c["durability_mean"] - a["durability_mean"]
    assert np.abs(moved).max() > 1e-3
    for q in [col for col in a.columns if col.startswith("durability_q")]:
        assert (c[q] - a[q]).to_numpy() == pytest.approx(moved.to_numpy(), abs=1e-4), q


# ---- the family with the conditions: an accelerated test, some specimens stepped midway ----

HEAT = Schema("specimen_id", "time", "durability", ["temperature"], [])
G = 0.01  # durability lost per degree above 60 C per 100 time units


def stepped_table(
    n: int, prefix: str, decay, rows: int = 20, noise: float = 0.002, seed: int = 0, start: int = 0
):
    """``n`` specimens held at 40, 60 or 80 C (every third stepped to another of them at row 10),
    measured every 5 time units with Gaussian noise: ``decay(temp, t, rng)``, ids ``prefix`` + number."""
    rng = np.random.default_rng(seed)
    parts = []
    for i in range(n):
        temp = np.full(rows, rng.choice([40.0, 60.0, 80.0]))
        if i % 3 == 0:
            temp[10:] = rng.choice([v for v in (40.0, 60.0, 80.0) if v != temp[0]])
        t = np.arange(rows) * 5.0
        y = decay(temp, t, rng) + rng.normal(0, noise, rows)
        parts.append(
            pd.DataFrame(
                {"specimen_id": f"{prefix}{start + i:03d}", "time": t, "temperature": temp, "durability": y}
            )
        )
    return pd.concat(parts, ignore_index=True)


def heat_table(n: int, **kw) -> pd.DataFrame:
    """y = 1 - a s - G x the integral of (T - 60) ds (s = t / 100; a row's temperature held until
    the next row), a each specimen's own."""

    def decay(temp, t, rng):
        s = t / 100
        heat = np.r_[0.0, np.cumsum((temp[:-1] - 60.0) * np.diff(s))]
        return 1 - rng.normal(0.3, 0.05) * s - G * heat

    return stepped_table(n, "H", decay, **kw)


def heat_rmse(fit: me.PathFit, df: pd.DataFrame, warm: int) -> float:
    errors = []
    for _, g in df.groupby("specimen_id"):
        y = g["durability"].to_numpy()
        pred = me.predict_rows(fit, g["time"], y, g[["temperature"]].to_numpy(), warm)
        errors.append(pred - y[warm:])
    return float(np.sqrt(np.mean(np.concatenate(errors) ** 2)))


def test_the_conditions_family_learns_how_much_faster_heat_decays():
    train = to_series(validate(heat_table(30), HEAT, source="test"))
    fit, scores = me.cross_validated(train, lambda lengths: np.minimum(4, lengths - 1))
    assert fit.label.endswith("+conditions"), scores  # its degree is a toss-up: the paths are straight
    assert scores[fit.label] < 0.5 * min(scores["1"], scores["2"], scores["3"])
    # per degree per tau (95 time units): G x 95 / 100
    assert fit.effect == pytest.approx([-G * 0.95], rel=0.1)
    assert math.sqrt(fit.noise) == pytest.approx(0.002, rel=0.3)
    again = me.PathFit.from_json(json.loads(json.dumps(fit.to_json())))
    assert np.array_equal(again.effect, fit.effect) and np.array_equal(again.centre, fit.centre)
    # new specimens from 4 rows, the stepped ones included: the plain line cannot know the heat
    new = heat_table(15, seed=5, start=100)
    plain = me.refit([train], "1")
    assert heat_rmse(fit, new, 4) < 0.3 * heat_rmse(plain, new, 4)
    with pytest.raises(ValueError, match="forecasts from rows with them"):
        me.predict(fit, [0.0], [1.0], [5.0])
    for bad, message in (
        ({"centre": [1.0], "effect": [1.0, 2.0]}, "one number per condition"),
        ({"centre": [float("nan")], "effect": [1.0]}, "non-finite"),
        ({"centre": [1.0]}, "conditions are not a fit"),
    ):
        with pytest.raises(ValueError, match=message):
            me.PathFit.from_json(fit.to_json() | {"conditions": bad})


K = 0.03  # log time scale per degree: at 80 C the clock runs exp(0.6) = 1.8 x faster than at 60 C


def clock_table(n: int, **kw) -> pd.DataFrame:
    """Heat runs the specimen's clock: y = 1 - a u - 0.4 u^2, u the equivalent time (the integral
    of exp(K (T - 60)) dt) / 100, a each specimen's own."""

    def decay(temp, t, rng):
        u = np.r_[0.0, np.cumsum(np.exp(K * (temp[:-1] - 60.0)) * np.diff(t))] / 100
        return 1 - rng.normal(0.3, 0.05) * u - 0.4 * u**2

    return stepped_table(n, "C", decay, **kw)


def test_the_accelerated_family_learns_how_much_faster_heat_runs_the_clock():
    train = to_series(validate(clock_table(30), HEAT, source="test"))
    fit, scores = me.cross_validated(train, lambda lengths: np.minimum(4, lengths - 1))
    assert fit.label == "2+accelerated", scores
    assert scores["2+accelerated"] < 0.5 * min(scores["1"], scores["2"], scores["3"])
    assert fit.rate == pytest.approx([K], rel=0.15)
    again = me.PathFit.from_json(json.loads(json.dumps(fit.to_json())))
    assert np.array_equal(again.rate, fit.rate) and again.label == fit.label
    new = clock_table(15, seed=5, start=100)
    plain = me.refit([train], "2")
    assert heat_rmse(fit, new, 4) < 0.3 * heat_rmse(plain, new, 4)
    # a fit on a table without conditions (a shelf at one temperature) has no such family
    flat = clock_table(12).assign(temperature=60.0)
    _, flat_scores = me.cross_validated(
        to_series(validate(flat, HEAT, source="t")), lambda n: np.minimum(4, n - 1)
    )
    assert not any(k.endswith("accelerated") for k in flat_scores), flat_scores
    both = fit.to_json() | {"conditions": {"centre": [60.0], "effect": [0.0]}}
    with pytest.raises(ValueError, match="one family"):
        me.PathFit.from_json(both)
    with pytest.raises(ValueError, match="accelerated' centre and rate"):
        me.PathFit.from_json(fit.to_json() | {"accelerated": {"centre": [1.0, 2.0], "rate": [0.1]}})


@pytest.mark.parametrize("table, family", [(heat_table, "conditions"), (clock_table, "accelerated")])
def test_train_evaluate_and_forecast_read_the_conditions_of_each_row(tmp_path, table, family):
    data, new = tmp_path / "heat.csv", tmp_path / "new.csv"
    table(24).to_csv(data, index=False)
    table(9, seed=6, start=300).to_csv(new, index=False)
    out = tmp_path / "m.safetensors"
    args = ["train", str(data), "-o", str(out), "--epochs", "2", "--hidden", "8", "--layers", "1"]
    r = CliRunner().invoke(app, [*args, "--ensemble", "1", "--no-trend-line", "--val-context", "4"])
    assert r.exit_code == 0, r.stderr
    s = load(out).summary
    fit = me.PathFit.from_json(s["mixed_effects"])
    assert fit.label.endswith(family) and fit.label in s["mixed_effects"]["val_rmse"]
    # train and inspect say what the path learned of the temperature
    said = {"conditions": "above its mean changes durability", "accelerated": "on the conditions' clock"}[
        family
    ]
    shown = CliRunner().invoke(app, ["inspect", str(out)])
    for text in (r.stderr, shown.stderr):
        assert said in " ".join(text.split()) and "temperature" in text
    report = tmp_path / "report.json"
    r = CliRunner().invoke(app, ["evaluate", str(new), "-m", str(out), "--context", "6", "-o", str(report)])
    assert r.exit_code == 0, r.stderr
    got = json.loads(report.read_text())["models"]
    assert got["mixed_effects"]["rmse"] == pytest.approx(heat_rmse(fit, pd.read_csv(new), 6), rel=1e-9)
    assert got["mixed_effects"]["rmse"] < 0.5 * got["linear"]["rmse"]
    # --combine with the model's weight 0: the forecast is the path, read from the plan's conditions
    from durability_cli.artifact import load_bundle, save_bundle

    bundle = load_bundle(out)
    bundle.summary["mixed_effects"] = bundle.summary["mixed_effects"] | {"weight": 0.0}
    path_only = tmp_path / "path.safetensors"
    save_bundle(bundle, path_only)
    plan = pd.read_csv(new)
    truth = plan.copy()
    plan.loc[plan.groupby("specimen_id").cumcount() >= 6, "durability"] = np.nan
    plan.to_csv(tmp_path / "plan.csv", index=False)
    fc = tmp_path / "fc.csv"
    args = ["forecast", str(tmp_path / "plan.csv"), "-m", str(path_only), "--samples", "0", "-o", str(fc)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.stderr
    mean = pd.read_csv(fc)["durability_mean"].to_numpy()
    expected = np.concatenate(
        [
            me.predict_rows(fit, g["time"], g["durability"], g[["temperature"]].to_numpy(), 6)
            for _, g in truth.groupby("specimen_id", sort=False)
        ]
    )
    assert mean == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize(
    "table, label", [(quadratic_table, "3"), (heat_table, "2+conditions"), (clock_table, "2+accelerated")]
)
def test_a_specimens_path_does_not_depend_on_its_chunk(table, label):
    """`--combine mixed_effects` moves every forecast by the path: like the model's own rollout, a
    specimen's path is the same bit for bit alone, in the whole table, and padded in a chunk with
    a longer neighbour (the sums over the warm-up's rows once regrouped with the padding: 2e-16)."""
    df = table(24)
    schema = SCHEMA if table is quadratic_table else HEAT
    fit = me.refit(
        [to_series(validate(df, schema, source="t"))], label, warmups=lambda n: np.minimum(4, n - 1)
    )
    assert fit.label == label
    rng = np.random.default_rng(7)  # ragged: each specimen cut to 8-20 rows, warm-ups of 3-6
    cut = pd.concat([g.iloc[: rng.integers(8, 21)] for _, g in df.groupby("specimen_id")])
    ser = to_series(validate(cut, schema, source="t"))
    last = rng.integers(2, 6, len(ser.ids))
    whole = me.forecast_block(fit, ser, last)
    longest = int(np.argmax(ser.lengths))
    assert np.isfinite(whole).sum() == (ser.lengths - last - 1).sum()
    for b in range(len(ser.ids)):
        n = int(ser.lengths[b])
        alone = me.forecast_block(fit, ser.take(np.array([b])), last[[b]])
        beside = me.forecast_block(fit, ser.take(np.array([b, longest])), last[[b, longest]])
        assert np.array_equal(alone[0, :n], whole[b, :n], equal_nan=True), ser.ids[b]
        assert np.array_equal(beside[0, :n], whole[b, :n], equal_nan=True), ser.ids[b]
