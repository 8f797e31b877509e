"""Scores, end-of-life crossings, prognostics metrics and baselines, on hand-computed cases."""

from __future__ import annotations

import json
import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from durability_cli import metrics as M

approx = pytest.approx


# -- point and probabilistic scores ----------------------------------------------------------------
def test_point_scores_known_answer():
    s = M.point_scores([1, 2, 3], [1, 2, 5])
    assert s["n"] == 3
    assert s["mae"] == approx(2 / 3)
    assert s["rmse"] == approx(math.sqrt(4 / 3))
    assert s["bias"] == approx(2 / 3)
    assert s["mape"] == approx(100 * (2 / 3) / 3)  # only the last row is off, by 2/3 of itself
    assert s["smape"] == approx(100 * (2 * 2 / 8) / 3)


def test_point_scores_skip_nan_and_zero_truth_in_mape():
    s = M.point_scores([0.0, 2.0, np.nan, 4.0], [1.0, 2.0, 9.0, 2.0])
    assert s["n"] == 3
    assert s["mae"] == approx(1.0)
    assert s["bias"] == approx(-1 / 3)
    assert s["mape"] == approx(100 * (0 + 0.5) / 2)  # the y = 0 row is left out of MAPE only
    empty = M.point_scores([np.nan], [1.0])
    assert empty["n"] == 0 and math.isnan(empty["mae"]) and math.isnan(empty["rmse"])


def test_mase_scale_drops_nan_and_needs_two_points():
    assert M.mase_scale([1.0, 3.0, np.nan, 2.0]) == approx(1.5)  # |3-1|, |2-3|
    assert math.isnan(M.mase_scale([np.nan, 1.0]))
    assert M.mase_scale([5.0, 5.0, 5.0]) == 0.0


def test_interval_scores_known_interval():
    s = M.interval_scores([0, 1, 2, 3], [0.5, 0, 0, 0], [1, 2, 2.5, 2.5], level=0.8)
    assert s["coverage"] == approx(0.5)
    assert (s["below"], s["above"]) == (approx(0.25), approx(0.25))  # y=0 under [0.5, 1], y=3 over
    assert s["width"] == approx((0.5 + 2 + 2.5 + 2.5) / 4)
    # misses by 0.5 below and 0.5 above, each penalised 2 / 0.2 = 10 times
    assert s["interval_score"] == approx((0.5 + 5 + 2 + 2.5 + 2.5 + 5) / 4)
    with pytest.raises(ValueError):
        M.interval_scores([1], [0], [2], level=80)


def test_pinball_median_is_half_mae_and_asymmetric():
    rng = np.random.default_rng(1)
    y, p = rng.normal(size=50), rng.normal(size=50)
    assert M.pinball_loss(y, p, 0.5) == approx(M.point_scores(y, p)["mae"] / 2)
    assert M.pinball_loss([1.0], [0.0], 0.1) == approx(0.1)  # under-forecast of a low quantile
    assert M.pinball_loss([0.0], [1.0], 0.1) == approx(0.9)  # over-forecast of it


def test_crps_from_quantiles_approximates_the_gaussian_closed_form():
    qs = [i / 100 for i in range(1, 100)]
    z = NormalDist()
    Q = np.array([[z.inv_cdf(q) for q in qs]])  # a standard normal forecast, truth at 0
    exact = 2 * z.pdf(0) - 1 / math.sqrt(math.pi)
    assert M.crps_from_quantiles([0.0], Q, qs) == approx(exact, rel=0.03)
    # with the median alone it is the MAE
    assert M.crps_from_quantiles([1.0, 3.0], [[0.0], [3.0]], [0.5]) == approx(0.5)


def test_to_jsonable_turns_nan_into_none():
    obj = {
        "a": np.float32(1.5),
        "b": [np.nan, np.int64(3)],
        2: np.array([1.0, np.inf]),
        "c": (np.bool_(True), None),
    }
    out = M.to_jsonable(obj)
    assert out == {"a": 1.5, "b": [None, 3], "2": [1.0, None], "c": [True, None]}
    json.dumps(out, allow_nan=False)


# -- end-of-life crossings -------------------------------------------------------------------------
def test_first_crossing_interpolates_between_the_straddling_rows():
    t = [0.0, 1.0, 2.0, 3.0]
    assert M.first_crossing(t, [1.0, 0.8, 0.4, 0.2], 0.5) == approx(1.75)
    assert M.first_crossing(t, [0.0, 0.3, 0.9, 1.0], 0.5, "above") == approx(1 + 0.2 / 0.6)
    assert M.first_crossing(t, [1.0, 0.5, 0.4, 0.2], 0.5) == approx(1.0)  # touching counts


def test_first_crossing_already_past_never_and_gaps():
    t = [0.0, 1.0, 2.0, 3.0]
    assert M.first_crossing(t, [0.4, 0.3, 0.2, 0.1], 0.5) == 0.0
    assert math.isnan(M.first_crossing(t, [1.0, 0.9, 0.8, 0.7], 0.5))
    assert M.first_crossing(t, [1.0, np.nan, 0.0, 0.0], 0.5) == approx(1.0)  # across the gap
    assert M.first_crossing([np.nan, 1.0, 2.0], [0.0, 1.0, 0.0], 0.5) == approx(1.5)
    with pytest.raises(ValueError):
        M.first_crossing(t, t, 0.5, "down")


def test_first_crossing_matrix_shapes_and_padding():
    times = np.array([[0.0, 1.0, 2.0, np.nan], [np.nan, 5.0, 6.0, 7.0]])  # [N=2, T=4]
    values = np.array([[1.0, 0.8, 0.4, np.nan], [np.nan, 1.0, 0.9, 0.8]])
    assert M.first_crossing_matrix(times, values, 0.5) == approx([1.75, np.nan], nan_ok=True)
    paths = np.stack([values, values - 0.5], axis=1)  # [N=2, S=2, T=4]
    out = M.first_crossing_matrix(times, paths, 0.5)
    assert out.shape == (2, 2)
    assert out[:, 1] == approx([0.0, 5.0])  # both already at/below 0.5 on their first valid row
    assert M.first_crossing_matrix(np.zeros((3, 0)), np.zeros((3, 0)), 0.5).shape == (3,)


@st.composite
def monotone_paths(draw):
    N, S, T = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.uniform(0.1, 2.0, size=(N, T)), axis=1)
    start = rng.uniform(0.3, 1.2, size=(N, S, 1))
    values = start - np.cumsum(rng.uniform(0.0, 0.2, size=(N, S, T)), axis=2)
    pad = rng.integers(0, T + 1, size=N)  # trailing NaN padding per specimen
    times[np.arange(T)[None, :] >= T - pad[:, None]] = np.nan
    values[rng.random((N, S, T)) < 0.15] = np.nan  # unmeasured rows
    return times, values


@settings(max_examples=60, deadline=None)
@given(monotone_paths(), st.floats(0.0, 1.0), st.sampled_from(["below", "above"]))
def test_first_crossing_matrix_equals_the_scalar_version(paths, threshold, direction):
    times, values = paths
    if direction == "above":
        values = 1.5 - values  # rising paths
    out = M.first_crossing_matrix(times, values, threshold, direction)  # [N, S]
    for i in range(values.shape[0]):
        for s in range(values.shape[1]):
            ref = M.first_crossing(times[i], values[i, s], threshold, direction)
            assert out[i, s] == approx(ref, nan_ok=True, abs=1e-12)
    two_d = M.first_crossing_matrix(times, values[:, 0, :], threshold, direction)  # [N]
    assert two_d == approx(out[:, 0], nan_ok=True)


def test_eol_scores_counts_censored_specimens():
    s = M.eol_scores([10.0, 12.0, np.nan, np.nan], [11.0, np.nan, 8.0, np.nan], 20.0)
    assert (s["both_cross"], s["only_pred"], s["only_true"], s["neither"]) == (1, 1, 1, 1)
    assert s["mae"] == approx(1.0) and s["bias"] == approx(-1.0)
    # lower bounds: 1 (both), 20 - 12 (truth is after 20), 20 - 8 (prediction after 20), 0
    assert s["mae_lower_bound"] == approx((1 + 8 + 12 + 0) / 4)


# -- prognostics metrics ---------------------------------------------------------------------------
def test_alpha_lambda_and_prognostic_horizon_on_a_constructed_case():
    t = [0.0, 25.0, 50.0, 75.0]  # true EOL at 100
    rul_true = [100.0, 75.0, 50.0, 25.0]
    rul_pred = [150.0, 80.0, 35.0, 26.0]  # in 20 % bounds at 25 and 75, not at 0 and 50
    out = M.alpha_lambda(t, rul_pred, rul_true, alpha=0.2, lambdas=(0.25, 0.3, 0.5, 0.75))
    assert out == {0.25: 1.0, 0.3: 1.0, 0.5: 0.0, 0.75: 1.0}  # 0.3 -> t = 30 -> origin at 25
    # PH bounds are +-0.2 * 100 = 20 absolute: errors 50, 5, 15, 1 -> in from t = 25 on
    assert M.prognostic_horizon(t, rul_pred, rul_true, 100.0, alpha=0.2) == approx(75.0)
    assert math.isnan(M.prognostic_horizon(t, [150.0, 80.0, 35.0, 60.0], rul_true, 100.0))
    # a missing prediction is outside the bounds
    assert M.alpha_lambda(t, [np.nan] * 4, rul_true)[0.5] == 0.0
    # times not counted from 0: the bound is alpha x the life since life_start
    shifted = M.prognostic_horizon(np.add(t, 1000), rul_pred, rul_true, 1100.0, life_start=1000.0)
    assert shifted == approx(75.0)


# -- baselines -------------------------------------------------------------------------------------
def test_persistence_and_linear_baselines():
    t = np.arange(20.0)
    y = np.where(t < 9, 5.0, 2.0 - 0.3 * t)
    y[-1] = np.nan  # the last 10 observed rows (t = 9..18) lie on a line
    future = np.array([20.0, 25.0])
    assert M.baseline_persistence(t, y, future) == approx([2 - 0.3 * 18] * 2)
    assert M.baseline_linear(t, y, future) == approx(2.0 - 0.3 * future)
    assert M.baseline_linear([0.0, np.nan], [3.0, 1.0], future) == approx([3.0, 3.0])
    assert np.isnan(M.baseline_persistence([], [], future)).all()


def test_exponential_baseline_recovers_exact_exponentials():
    t, future = np.arange(10.0), np.arange(10.0, 30.0)
    y = 2.0 + 3.0 * np.exp(-0.5 * t)
    assert M.baseline_exponential(t, y, future) == approx(2 + 3 * np.exp(-0.5 * future), abs=1e-7)
    y = 0.5 - 0.8 * np.exp(-0.05 * (t + 3))  # rising to an asymptote, times not from 0
    fit = M.baseline_exponential(t + 3, y, future)
    assert fit == approx(0.5 - 0.8 * np.exp(-0.05 * future), abs=1e-7)
    # two rows: the two-parameter y = a exp(-b t) through both
    assert M.baseline_exponential([0.0, 1.0], [1.0, 0.5], [2.0, 3.0]) == approx([0.25, 0.125])
    assert M.baseline_exponential(t, 1 - 0.01 * t, future) == approx(1 - 0.01 * future, abs=1e-3)


@settings(max_examples=80, deadline=None)
@given(
    st.integers(0, 12),
    st.sampled_from(["flat", "noisy", "negative", "spiky", "duplicate-times"]),
    st.integers(0, 2**32 - 1),
)
def test_exponential_baseline_never_raises(n, kind, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(float(n))
    y = {
        "flat": np.full(n, 0.7),
        "noisy": rng.normal(0.5, 0.3, n),
        "negative": -rng.uniform(1, 2, n),
        "spiky": rng.choice([0.0, 1e12], n),
        "duplicate-times": rng.normal(size=n),
    }[kind]
    if kind == "duplicate-times":
        t = np.zeros(n)
    y[rng.random(n) < 0.2] = np.nan
    future = np.arange(n, n + 5.0)
    out = M.baseline_exponential(t, y, future)
    assert out.shape == (5,)
    if np.isfinite(y).any():
        assert np.isfinite(out).all()
    else:
        assert np.isnan(out).all()


def _history_and_future():
    """Specimen A decays through 0.5 at t = 4.5; B stays at 0.9 (censored at t = 5)."""
    history = pd.DataFrame(
        {
            "specimen": ["A"] * 3 + ["B"] * 3,
            "origin": 0,
            "time": [0.0, 1.0, 2.0] * 2,
            "y": [1.0, 0.9, 0.8, 1.0, 1.0, 1.0],
        }
    )
    future = pd.DataFrame(
        {
            "specimen": ["A"] * 3 + ["B"] * 3,
            "origin": 0,
            "time": [3.0, 4.0, 5.0] * 2,
            "step": [1, 2, 3] * 2,
            "y_true": [0.7, 0.6, 0.4, 0.9, 0.9, 0.9],
        }
    )
    return history, future


@pytest.mark.parametrize("name", list(M.BASELINES))
def test_baseline_frame_matches_the_per_series_functions(name):
    rng = np.random.default_rng(0)
    rows = []
    for spec in ["s1", "s2", "s3"]:
        for origin, cut in enumerate([1, 4, 15]):
            t = np.arange(cut, dtype=float)
            rows.append(
                pd.DataFrame(
                    {
                        "specimen": spec,
                        "origin": origin,
                        "time": t,
                        "y": np.exp(-0.1 * t) + rng.normal(0, 0.01, cut),
                    }
                )
            )
    history = pd.concat(rows, ignore_index=True)
    history.loc[5, "y"] = np.nan
    future = history.drop(columns="y").assign(time=lambda d: d["time"] + 20.0, step=1, y_true=0.0).iloc[::-1]
    out = M.baseline_frame(history, future, name)
    assert out.index.equals(future.index) and (out["model"] == name).all()
    for (spec, origin), grp in out.groupby(["specimen", "origin"]):
        h = history[(history["specimen"] == spec) & (history["origin"] == origin)]
        ref = M.BASELINES[name](h["time"].to_numpy(), h["y"].to_numpy(), grp["time"].to_numpy())
        assert grp["y_pred"].to_numpy() == approx(ref, rel=1e-9)
    with pytest.raises(ValueError, match="unknown baseline"):
        M.baseline_frame(history, future, "prophet")


# -- the backtest report ---------------------------------------------------------------------------
def test_score_backtest_on_a_hand_built_frame():
    history, future = _history_and_future()
    model = future.assign(y_pred=[0.7, 0.5, 0.3, 0.8, 0.6, 0.4], model="model")
    model["q0.1"], model["q0.9"] = model["y_pred"] - 0.15, model["y_pred"] + 0.15
    persistence = M.baseline_frame(history, future, "persistence")
    assert persistence["y_pred"].tolist() == [0.8] * 3 + [1.0] * 3
    frame = pd.concat([persistence, model], ignore_index=True)
    report, per_series = M.score_backtest(frame, history, quantiles=[0.1, 0.9], threshold=0.5)

    assert list(report["models"]) == ["model", "persistence"]
    assert (report["n_specimens"], report["n_origins"]) == (2, 1)
    m = report["models"]["model"]
    err = np.array([0.0, -0.1, -0.1, -0.1, -0.3, -0.5])  # pred - true
    assert m["n"] == 6
    assert m["mae"] == approx(1.1 / 6) and m["bias"] == approx(-1.1 / 6)
    assert m["rmse"] == approx(math.sqrt((err**2).mean()))
    assert m["rmse_by_step"] == approx(np.sqrt([0.01 / 2, 0.1 / 2, 0.26 / 2]))
    assert m["mae_by_step"] == approx([0.05, 0.2, 0.3])
    assert m["mase"] == approx((0.2 / 3) / 0.1)  # B's warm-up is flat: no scale, left out
    assert m["coverage"] == {"80": approx(4 / 6)}  # B's last two rows are outside +-0.15
    assert m["pinball"]["0.1"] == approx(M.pinball_loss(future["y_true"], model["q0.1"], 0.1))
    assert m["crps"] == approx(m["pinball"]["0.1"] + m["pinball"]["0.9"])
    # EOL: A crosses at 4.0 (forecast) vs 4.5 (truth); B's forecast crosses at 4.5, truth never
    assert m["eol"] == {
        "n": 2,
        "both_cross": 1,
        "only_pred": 1,
        "only_true": 0,
        "neither": 0,
        "mae": approx(0.5),
        "bias": approx(-0.5),
        "mae_lower_bound": approx(0.5),
        "already_past": 0,
        "unmeasured": 0,
        "time_unit": "time",
    }
    assert "prognostics" not in m  # one cut-off only
    p = report["models"]["persistence"]
    assert "coverage" not in p and "pinball" not in p
    assert (p["eol"]["only_true"], p["eol"]["neither"]) == (1, 1)  # censored B is counted
    assert p["eol"]["mae_lower_bound"] == approx((5 - 4.5 + 0) / 2)
    assert report["skill"]["persistence"] == approx(1 - m["rmse"] / p["rmse"])

    assert list(per_series.columns) == [
        "model",
        "specimen",
        "n",
        "mae",
        "rmse",
        "bias",
        "mase",
        "eol_pred",
        "eol_true",
        "eol_error",
    ]
    row = per_series.set_index(["model", "specimen"])
    assert row.loc[("model", "A"), "eol_error"] == approx(-0.5)
    assert row.loc[("model", "B"), "eol_pred"] == approx(4.5)
    assert math.isnan(row.loc[("model", "B"), "eol_true"])
    assert math.isnan(row.loc[("model", "B"), "mase"])
    assert row.loc[("persistence", "B"), "mae"] == approx(0.1)
    json.dumps(M.to_jsonable(report), allow_nan=False)


def test_score_backtest_without_threshold_quantiles_or_model_column():
    history, future = _history_and_future()
    report, per_series = M.score_backtest(future.assign(y_pred=future["y_true"]), history)
    m = report["models"]["model"]
    assert m["rmse"] == 0.0 and "eol" not in m and "coverage" not in m
    assert "skill" not in report and report["threshold"] is None
    assert per_series["eol_pred"].isna().all()


def test_score_backtest_counts_forecasts_that_start_past_the_threshold():
    history, future = _history_and_future()
    history.loc[history["specimen"] == "B", "y"] = [0.6, 0.5, 0.4]  # B is dead before its cut-off
    frame = future.assign(y_pred=future["y_true"])
    report, _ = M.score_backtest(frame, history, threshold=0.5)
    eol = report["models"]["model"]["eol"]
    assert eol["already_past"] == 1 and eol["n"] == 1 and eol["both_cross"] == 1
    frame.loc[frame["specimen"] == "A", "y_true"] = np.nan  # nothing measured after A's cut-off
    eol = M.score_backtest(frame, history, threshold=0.5)[0]["models"]["model"]["eol"]
    assert (eol["already_past"], eol["unmeasured"], eol["n"]) == (1, 1, 0)


def test_score_backtest_prognostics_with_rolling_origins():
    t = np.arange(100.0)
    y = 1.0 - 0.01 * t  # reaches 0.5 at t = 50
    hist, fut = [], []
    for origin, cut in enumerate([10, 20, 30, 40, 60]):  # the last cut-off is after end of life
        hist.append(pd.DataFrame({"specimen": "A", "origin": origin, "time": t[:cut], "y": y[:cut]}))
        fut.append(
            pd.DataFrame(
                {
                    "specimen": "A",
                    "origin": origin,
                    "time": t[cut:],
                    "step": np.arange(1, 101 - cut),
                    "y_true": y[cut:],
                }
            )
        )
    history, future = pd.concat(hist), pd.concat(fut, ignore_index=True)
    late = future["origin"] == 0  # the first forecast crosses at 59 instead of 50
    frame = future.assign(y_pred=np.where(late, 1.0 - 0.01 * (future["time"] - 9), future["y_true"]))
    report, _ = M.score_backtest(frame, history, threshold=0.5, lambdas=(0.0, 0.25, 0.5))
    eol = report["models"]["model"]["eol"]
    assert eol["already_past"] == 1 and eol["both_cross"] == 4
    assert eol["mae"] == approx(9 / 4)
    prog = report["models"]["model"]["prognostics"]
    # Cut-offs at t = 9, 19, 29, 39; EOL 50. At t = 9 the predicted RUL is 50 vs 41 true: outside
    # the 20 % alpha-lambda cone (lambda = 0 judges that cut-off) but inside the PH bound of
    # +-0.2 * 50 = 10, so every prediction is in the PH bounds and PH = 50 - 9.
    assert prog["alpha_lambda"] == {"0": 0.0, "0.25": 1.0, "0.5": 1.0}
    assert prog["prognostic_horizon"] == approx(41.0)
    assert prog["prognostic_horizon_relative"] == approx(41.0 / 50.0)
    assert prog["n_specimens"] == 1 and prog["ph_found"] == 1


def _per_series(model_rmse, base_rmse, n=4):
    k = len(model_rmse)
    ids = [f"S{i:02d}" for i in range(k)]
    return pd.DataFrame(
        {
            "model": ["model"] * k + ["linear"] * k,
            "specimen": ids + ids,
            "n": [n] * (2 * k),
            "rmse": list(model_rmse) + list(base_rmse),
        }
    )


def test_the_skill_s_interval_resamples_specimens_and_counts_the_wins():
    rng = np.random.default_rng(1)
    model, base = rng.uniform(0.5, 1.0, 30), rng.uniform(0.6, 1.4, 30)
    table = _per_series(model, base)
    out = M.skill_spread(table, "linear")
    skill = 1 - math.sqrt((model**2).mean()) / math.sqrt((base**2).mean())
    assert (out["specimens"], out["specimens_better"]) == (30, int((model < base).sum()))
    assert out["low"] < skill < out["high"] and out["high"] - out["low"] < 0.5
    # the specimens' order does not move it (the interval of a chunked run equals the whole one's)
    again = M.skill_spread(table.sample(frac=1.0, random_state=3), "linear")
    assert (again["low"], again["high"]) == (out["low"], out["high"])
    # a baseline the model always matches: skill 0 surely; one specimen: no interval
    same = M.skill_spread(_per_series(model, model), "linear")
    assert same["specimens_better"] == 0 and same["low"] == approx(0.0) and same["high"] == approx(0.0)
    assert same["specimens_tied"] == 30 and out["specimens_tied"] == 0
    # ... is a tie under the table, not a baseline the model "is not surely better than"
    from durability_cli.render import skill_notes

    said = skill_notes({"skill_spread": {"linear": same, "persistence": out}})
    assert len(said) == 1 and "errs as linear's does on every specimen (a tie, not a loss" in said[0]
    one = M.skill_spread(_per_series([0.5], [1.0]), "linear")
    assert one["specimens"] == 1 and math.isnan(one["low"])
    # a specimen the baseline could not forecast (n = 0) is left out of both
    gap = _per_series(model, base)
    gap.loc[(gap["model"] == "linear") & (gap["specimen"] == "S00"), ["n", "rmse"]] = [0, np.nan]
    assert M.skill_spread(gap, "linear")["specimens"] == 29


def test_a_baseline_the_model_does_not_surely_beat_is_named():
    from durability_cli.render import skill_notes

    rng = np.random.default_rng(2)
    few = _per_series(rng.uniform(0.5, 1.5, 5), rng.uniform(0.5, 1.5, 5))
    sure = _per_series(rng.uniform(0.1, 0.2, 40), rng.uniform(0.8, 1.0, 40))
    for table, named in ((few, True), (sure, False)):
        report = {"skill_spread": {"linear": M.skill_spread(table, "linear")}}
        notes = skill_notes(report)
        assert bool(notes) == named
    worse = {"skill_spread": {"linear": M.skill_spread(_per_series([2.0] * 6, [1.0] * 6), "linear")}}
    assert skill_notes(worse) == ["the model is worse than linear here (skill p5/p95 over 6 specimens)"]
    both = {
        "skill_spread": {"persistence": M.skill_spread(few.replace({"linear": "persistence"}), "persistence")}
    }
    both["skill_spread"]["linear"] = worse["skill_spread"]["linear"]
    assert skill_notes(both) == [
        "the model is not surely better than persistence and worse than linear here (skill p5/p95 over 5-6 specimens)"
    ]


def test_horizon_bins_hold_one_step_each_on_a_regular_grid_with_float_noise():
    """Leads of k steps read from dates (5.2083333333 days, give or take 1e-12) straddled the
    edges of step-wide bins from 0: counts 7, 9, 3, 10 where every step had 8-11 specimens, and
    the first point drawn at half a step, where no forecast was."""
    from durability_cli.metrics import horizon_edges

    step = 125 / 24
    rng = np.random.default_rng(0)
    lead = np.repeat(np.arange(1, 24), 10) * step * (1 + rng.uniform(-1e-13, 1e-13, 230))
    edges = horizon_edges(lead)
    counts, _ = np.histogram(lead, edges)
    assert counts.tolist() == [10] * 23
    assert np.allclose((edges[:-1] + edges[1:]) / 2, np.arange(1, 24) * step)  # drawn at the steps
    # longer runs: two steps a bin, still whole steps in the middle of each
    lead = np.arange(1, 61) * 2.0
    counts, _ = np.histogram(lead, horizon_edges(lead))
    assert counts.tolist() == [2] * 30
