"""The end-of-life interval's stretch in time (durability_cli/eol_warp.py): fitted on the
validation and training specimens when training, used by forecast and evaluate alike."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from durability_cli import eol_warp, scale_refit
from durability_cli.api import DEFAULT_QUANTILES, forecast_config, load, read
from durability_cli.cli import app
from durability_cli.data import Series, to_series, to_tensors
from durability_cli.evaluation import BacktestConfig, backtest_frames
from durability_cli.schema import load_dataset
from durability_cli.training import eol_warps


def _decay(t):
    return 1.0 - (t / 100.0) ** 2


@pytest.mark.parametrize("w", [1.5, 0.7, 1.0])
def test_a_known_stretch_is_recovered(w):
    t0 = 10.0
    times = np.arange(11.0, 81.0)
    truth = _decay(t0 + (times - t0) * w)  # the specimen runs w x as fast as the mean after t0
    lw = eol_warp.fit_one(times, truth, _decay(times), t0, _decay(t0))
    assert lw == pytest.approx(math.log(w), abs=0.011)


def test_a_flat_specimen_is_not_stretched():
    times = np.arange(1.0, 40.0)
    flat = np.full(len(times), 0.9)
    assert eol_warp.fit_one(times, flat, flat, 0.0, 0.9) == 0.0
    assert eol_warp.fit_one(times[:2], flat[:2], flat[:2], 0.0, 0.9) is None  # too few rows to say


def test_spread_pools_the_members_and_needs_enough_specimens():
    class _B:
        def __init__(self, values):
            self.summary = {"eol_warp": {"log_w": values}}

    class _Bundle:
        members = [_B([0.1, -0.1, 0.3]), _B([0.0, 0.2])]

    centre, sd, n = eol_warp.spread(_Bundle())
    assert (centre, n) == (pytest.approx(0.1), 5)
    assert sd == pytest.approx(eol_warp.SPREAD_FACTOR * np.std([0.1, -0.1, 0.3, 0.0, 0.2], ddof=1))
    _Bundle.members = [_B([0.1, 0.2])]
    assert eol_warp.spread(_Bundle()) is None  # 2 specimens: the paths alone decide
    _Bundle.members = [type("Old", (), {"summary": {}})()]
    assert eol_warp.spread(_Bundle()) is None  # a file from before


def test_extend_runs_each_specimen_on_with_its_last_conditions():
    nan = np.nan
    series = Series(
        ids=["a", "b"],
        lengths=np.array([4, 3]),
        time=np.array([[0.0, 1.0, 2.0, 3.0], [0.0, 2.0, 4.0, nan]]),
        cond=np.array([[[1.0], [1.0], [2.0], [2.0]], [[5.0], [5.0], [6.0], [nan]]]),
        y=np.array([[1.0, 0.9, nan, nan], [1.0, nan, nan, nan]]),
        row=np.array([[0, 1, 2, -1], [3, 4, 5, -1]]),  # a's last row is hidden (a backtest)
        static_numeric=np.zeros((2, 0)),
        static_categorical=np.zeros((2, 0), dtype=object),
    )
    longer = eol_warp.extend(series, np.array([1, 0]), stretch=3.0)
    # b: 4 time units from its cut-off to its end, 3 x that is 8 more, 4 rows of 2
    assert longer.time[1, 3:7].tolist() == [6.0, 8.0, 10.0, 12.0]
    # a: from its last shown row on, 1 time unit from its cut-off to it, so 2 more: its own need,
    # not b's (what a's run finds does not depend on b)
    assert longer.time[0, 3:5].tolist() == [3.0, 4.0] and np.isnan(longer.time[0, 5:]).all()
    assert (longer.cond[0, 3:5, 0] == 2.0).all() and (longer.cond[1, 3:, 0] == 6.0).all()
    assert np.isnan(longer.y[:, 3:]).all()
    assert (
        (longer.row[0, 3:5] == 2).all() and (longer.row[0, 5:] == -1).all() and (longer.row[1, 3:] == 5).all()
    )
    assert longer.lengths.tolist() == [3 + 2, 3 + 4]


def test_crossing_quantiles_envelope_and_probability():
    start, end = np.array([10.0, 10.0, 10.0]), np.array([50.0, 50.0, 50.0])
    crossing = np.array([30.0, np.nan, 45.0])  # the mean's crossing, run past the horizon
    qs = (0.1, 0.5, 0.9)
    lo, mid, hi = eol_warp.crossing_quantiles(crossing, start, end, 0.0, 0.5, qs)
    z = 1.2815515655446004
    assert lo[0] == pytest.approx(10 + 20 * math.exp(-0.5 * z))
    assert hi[0] == pytest.approx(10 + 20 * math.exp(0.5 * z))
    assert mid[0] == pytest.approx(30.0)
    assert np.isinf(lo[1]) and np.isinf(hi[2])  # no crossing; past the horizon
    paths = [
        np.array([25.0, np.inf, np.inf]),
        np.array([31.0, np.inf, np.inf]),
        np.array([33.0, np.inf, np.inf]),
    ]
    low, median, high = eol_warp.envelope(paths, [lo, mid, hi], qs)
    assert low[0] == 25.0  # enough paths cross: theirs stands below the median
    assert low[2] == lo[2] < 50.0  # none do: the stretched mean's
    assert high[0] == max(33.0, hi[0]) and np.isinf(high[2]) and np.isinf(low[1])
    assert median.tolist() == paths[1].tolist()


@pytest.fixture(scope="module")
def warped(coating_slice, tmp_path_factory):
    """A small model trained for real: its file holds the validation specimens' stretches."""
    table = coating_slice(24, 60)
    out = tmp_path_factory.mktemp("warp") / "m.safetensors"
    args = ["train", str(table), "-o", str(out), "--epochs", "6", "--hidden", "16", "--layers", "1"]
    args += ["--val-fraction", "0.34", "--ensemble", "1", "--seed", "3", "--quiet"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    return table, out


def test_training_records_each_validation_and_training_specimens_stretch(warped):
    _, path = warped
    model = load(path)
    log_w, train_w = model.summary["eol_warp"]["log_w"], model.summary["eol_warp"]["train_log_w"]
    assert 5 <= len(log_w) <= len(model.summary["val_specimens"])
    assert len(model.summary["val_specimens"]) < len(train_w) <= len(model.summary["train_specimens"])
    assert all(eol_warp.GRID[0] <= v <= eol_warp.GRID[-1] for v in log_w + train_w)
    centre, sd, n = eol_warp.spread(model.bundle)
    assert n == len(log_w) + len(train_w)  # both pooled
    assert sd == pytest.approx(eol_warp.SPREAD_FACTOR * np.std(log_w + train_w, ddof=1))
    r = CliRunner().invoke(app, ["inspect", str(path)], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "end-of-life pace" in r.output and f"from {n} fits of validation and training" in r.output


def test_a_file_with_the_validation_paces_alone_still_gives_a_spread():
    """Model files from session 29 hold only the validation specimens' log factors."""
    old = [{"eol_warp": {"log_w": [0.1, -0.2, 0.0, 0.3, 0.05]}}]
    centre, sd, n = eol_warp.spread_of(old)
    assert (centre, n) == (0.05, 5)
    assert sd == pytest.approx(eol_warp.SPREAD_FACTOR * np.std([0.1, -0.2, 0.0, 0.3, 0.05], ddof=1))
    both = [{"eol_warp": {"log_w": [0.1, -0.2], "train_log_w": [0.0, 0.3, 0.05]}}]
    assert eol_warp.spread_of(both) == (centre, sd, n)


def test_forecast_and_evaluate_widen_the_interval_alike(warped, tmp_path):
    table, path = warped
    model = load(path)
    plain = load(path)
    plain.bundle.summary.pop("eol_warp")
    data = pd.read_csv(table)
    threshold = float(data.groupby("specimen_id").durability.min().median()) + 0.02
    kw = {"threshold": threshold, "context": 20, "samples": 100}
    widened = model.end_of_life_backtest(data, **kw).set_index("specimen_id")
    alone = plain.end_of_life_backtest(data, **kw).set_index("specimen_id")
    lo, hi = (widened[c].fillna(np.inf) for c in ("eol_low", "eol_high"))
    lo0, hi0 = (alone[c].fillna(np.inf) for c in ("eol_low", "eol_high"))
    assert (lo <= lo0).all() and (hi >= hi0).all()
    assert ((lo < lo0) | (hi > hi0)).any()  # the stretch widened at least one interval
    assert (widened["eol_pred"].fillna(np.inf) == alone["eol_pred"].fillna(np.inf)).all()
    # evaluate's backtest scores the same widened interval
    cfg = forecast_config(100, DEFAULT_QUANTILES, threshold, "below", 0)
    scored = [
        backtest_frames(m.bundle, read(data, schema=m.schema), cfg, BacktestConfig(20))[0]
        .groupby("specimen")
        .first()
        for m in (model, plain)
    ]
    assert (scored[0]["eol_p10"] <= scored[1]["eol_p10"]).all()
    assert (scored[0]["eol_p90"] >= scored[1]["eol_p90"]).all()
    assert (
        (scored[0]["eol_p10"] < scored[1]["eol_p10"]) | (scored[0]["eol_p90"] > scored[1]["eol_p90"])
    ).any()


def test_the_training_paces_are_the_same_a_chunk_at_a_time(warped, monkeypatch):
    """eol_warps runs the training specimens about scale_refit.CHUNK_ROWS rows at a time: one
    specimen per free run gives the file's paces."""
    table, path = warped
    model = load(path)
    summary = model.summary
    ds = load_dataset(str(table), schema=model.bundle.schema)
    series = to_series(ds)
    part = series.take(np.array([series.ids.index(i) for i in summary["train_specimens"]]))
    t = to_tensors(part, model.bundle.scaler)
    ctx = summary["val_context"]
    whole = eol_warps(model.bundle.model, [(part, t)], model.bundle.scaler, ctx, 10**6)
    assert whole == pytest.approx(summary["eol_warp"]["train_log_w"], abs=1e-9)
    monkeypatch.setattr(scale_refit, "CHUNK_ROWS", series.y.shape[1])
    one_by_one = eol_warps(model.bundle.model, [(part, t)], model.bundle.scaler, ctx, 10**6)
    assert one_by_one == pytest.approx(whole, abs=1e-9)


def test_the_interval_past_the_horizon_is_kept_for_calibrate_and_moved_by_its_shift(warped):
    """calibrate's backtest (``eol_past_horizon``) keeps the interval's ends that the stretched
    mean puts past the horizon as times; evaluate and forecast report them as +inf. A shift moves
    those times, so that a p10 past the horizon can come within it (session 34's crack misses)."""
    from durability_cli.api import Model
    from durability_cli.calibration import calibrated, shift_crossing

    table, path = warped
    model = load(path)
    data = pd.read_csv(table)
    threshold = float(data.groupby("specimen_id").durability.min().median()) + 0.02
    cfg = forecast_config(100, DEFAULT_QUANTILES, threshold, "below", 0)

    def ends(m, past):
        frame = backtest_frames(
            m.bundle, read(data, schema=m.schema), cfg, BacktestConfig(20, horizon=8, eol_past_horizon=past)
        )[0]
        first = frame.groupby("specimen").agg(
            cut=("time", "min"), end=("time", "max"), lead=("lead", "min"), p10=("eol_p10", "first"),
            p50=("eol_p50", "first"), p90=("eol_p90", "first"),
        )  # fmt: skip
        first["start"] = first["cut"] - first["lead"]  # the last warm-up row
        return first

    reported, kept = ends(model, False), ends(model, True)
    beyond = np.isinf(reported["p10"]) & np.isfinite(kept["p10"])
    assert beyond.any()  # the stretched mean crosses past the horizon for some
    assert (kept.loc[beyond, "p10"] > kept.loc[beyond, "end"]).all()
    same = ~beyond
    assert np.array_equal(reported.loc[same, "p10"], kept.loc[same, "p10"])
    assert ((kept["p90"] <= kept["end"]) | np.isinf(reported["p90"])).all()
    # a calibration's widening: the p10s the shift brings within the horizon are reported there
    shift = 1.0
    moved = ends(Model(calibrated(model.bundle, {"eol": {"shift": shift}})), False)
    want = shift_crossing(
        kept["p10"].to_numpy(), 0.1, kept["p50"].to_numpy(), kept["start"].to_numpy(), shift
    )
    want = np.where(want <= kept["end"].to_numpy(), want, np.inf)
    assert np.allclose(moved["p10"].to_numpy(), want, rtol=1e-9)
    assert (np.isfinite(moved["p10"]) & beyond).any()  # ... one of them came within


@pytest.mark.parametrize("shift", [0.0, 0.6])
def test_prob_cross_agrees_with_the_interval_it_sits_beside(warped, tmp_path, shift):
    """prob_cross is at least q exactly where eol_pq lies within the horizon. It was the higher of
    the paths' share and the pace's chance while the levels above the median took the later of
    the two: 1.0 beside an empty eol_p90, 0.55 beside an empty eol_p50 (session 48's audit)."""
    from durability_cli.api import Model
    from durability_cli.calibration import calibrated

    table, path = warped
    model = load(path)
    if shift:
        block = {"edges": [], "centres": [1.0], "factors": [1.0], "eol": {"shift": shift}}
        model = Model(calibrated(model.bundle, block))
        path = tmp_path / "shifted.safetensors"
        model.save(path)
    data = pd.read_csv(table)
    threshold = float(data.groupby("specimen_id").durability.min().median()) + 0.02
    n = data.groupby("specimen_id").cumcount()
    plan = data[n < 20 + pd.factorize(data.specimen_id)[0] * 7 % 30].copy()  # horizons of 0-29 rows
    plan.loc[n >= 20, "durability"] = np.nan
    plan_path = tmp_path / "plan.csv"
    plan.to_csv(plan_path, index=False)
    eol = tmp_path / "eol.csv"
    args = [
        "forecast",
        plan_path,
        "-m",
        path,
        "--threshold",
        threshold,
        "--eol-out",
        eol,
        "-o",
        tmp_path / "f.csv",
    ]
    r = CliRunner().invoke(app, [*map(str, args), "--samples", "100", "-q"])
    assert r.exit_code == 0, r.output
    table = pd.read_csv(eol).query("status != 'already past'")
    assert len(table) >= 10
    for q in (0.1, 0.5, 0.9):
        within = np.isfinite(table[f"eol_p{q * 100:g}"])
        assert ((table.prob_cross >= q - 1e-9) == within).all(), table[["prob_cross", f"eol_p{q * 100:g}"]]
    assert ((table.prob_cross > 0) & (table.prob_cross < 1)).any()  # some are undecided


@pytest.fixture(scope="module")
def warped_pair(warped, tmp_path_factory):
    """Two members trained together, their forecast averaged with the mixed-effects path."""
    table, _ = warped
    out = tmp_path_factory.mktemp("warp2") / "m.safetensors"
    args = ["train", str(table), "-o", str(out), "--epochs", "4", "--hidden", "16", "--layers", "1"]
    args += [
        "--val-fraction",
        "0.34",
        "--ensemble",
        "2",
        "--combine",
        "mixed_effects",
        "--seed",
        "5",
        "--quiet",
    ]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    from durability_cli.forecasting import combination

    bundle = load(out).bundle
    assert len(bundle.members) == 2 and combination(bundle) is not None  # what the tests rely on
    return table, out


def _cut(model, table, contexts: np.ndarray, horizon: int):
    """The table's series with each specimen's first ``contexts[b]`` rows kept (its cut-off) and
    the ``horizon`` rows after them; the last kept rows' index [N]."""
    from dataclasses import replace

    from durability_cli.forecasting import limit_horizon

    series = to_series(load_dataset(str(table), schema=model.bundle.schema))
    contexts = np.resize(contexts, len(series.ids))
    y = np.where(np.arange(series.y.shape[1])[None, :] < contexts[:, None], series.y, np.nan)
    return limit_horizon(replace(series, y=y), contexts - 1, horizon), contexts - 1


@pytest.mark.parametrize("which", ["warped", "warped_pair"])
def test_the_run_past_the_horizon_stops_once_every_mean_has_crossed(which, request, monkeypatch):
    """The end-of-life run past the horizon makes the rows the whole run makes, bit for bit, and
    stops in the segment after the last mean has crossed: one member and an ensemble of two
    averaged with the mixed-effects path (--combine), clipped to bounds that bind, specimens with
    other cut-offs and spans (so other ends of their runs)."""
    from dataclasses import replace

    from durability_cli import forecasting
    from durability_cli.forecasting import path_crossings, rollout

    table, path = request.getfixturevalue(which)
    model = load(path)
    bundle = model.bundle
    series, last = _cut(model, table, np.array([20, 14, 26]), 12)
    longer = eol_warp.extend(series, last, eol_warp.MAX_FACTOR)
    ends = longer.lengths - 1  # each specimen's last row
    assert len(set(ends.tolist())) >= 3
    mean_path = rollout(bundle, series, last, forecast_config(0, DEFAULT_QUANTILES, None, "below", 0))[0]
    raw = rollout(bundle, longer, last, forecast_config(0, DEFAULT_QUANTILES))[0]
    bounds = (0.0, float(np.nanquantile(raw, 0.9)))
    assert (raw > bounds[1]).any()  # the clip binds
    whole = forecasting.clip(raw, bounds)
    horizon_rows = int(np.isfinite(mean_path).any(axis=0).nonzero()[0].max()) + 1
    monkeypatch.setattr(forecasting, "STRETCH_SEGMENT", 16)
    # every mean crosses within the horizon; some cross within it and the others after; none does
    for threshold, stop in (
        (float(np.nanmin(mean_path, axis=1).max()) + 1e-6, "early"),
        (float(np.median(np.nanmin(mean_path, axis=1))), None),
        (float(np.nanmin(whole)) - 0.01, "end"),
    ):
        cfg = replace(forecast_config(0, DEFAULT_QUANTILES, threshold, "below", 0), bounds=bounds)
        made = forecasting._mean_until_crossed(bundle, longer, last, cfg, "t.csv")
        ran = np.isfinite(made).any(axis=0).nonzero()[0].max() + 1  # rows made
        assert np.array_equal(made[:, :ran], whole[:, :ran], equal_nan=True)
        assert np.array_equal(
            path_crossings(longer, last, made[:, None, :], threshold, "below"),
            path_crossings(longer, last, whole[:, None, :], threshold, "below"),
            equal_nan=True,
        )
        if stop == "early":  # within a segment of the horizon's end (the fused warm-up comes first)
            assert ran <= horizon_rows + 16 < longer.y.shape[1]
        elif stop == "end":  # a mean that never crosses is run to its own end, each specimen
            assert ran == longer.y.shape[1]
            assert (np.isfinite(made[np.arange(len(ends)), ends])).all()


@pytest.mark.parametrize("which", ["warped", "warped_pair"])
def test_specimens_whose_mean_crosses_within_the_horizon_are_not_run_again(which, request, monkeypatch):
    """Given where the forecast's own mean crosses within the horizon, the run past it makes only
    the other specimens, and the interval is the same as when every specimen runs (to the bit for
    the model's own path)."""
    from durability_cli import forecasting
    from durability_cli.forecasting import interval_levels, path_crossings, rollout

    table, path = request.getfixturevalue(which)
    model = load(path)
    bundle = model.bundle
    series, last = _cut(model, table, np.array([20, 14, 26]), 12)
    cfg = forecast_config(50, DEFAULT_QUANTILES, None, "below", 0)
    mean, paths = rollout(bundle, series, last, cfg)
    threshold = float(np.median(np.nanmin(mean, axis=1)))  # some cross within the horizon, some not
    cfg = forecast_config(50, DEFAULT_QUANTILES, threshold, "below", 0)
    mean_eol = path_crossings(series, last, mean[:, None, :], threshold, "below")[:, 0]
    assert np.isfinite(mean_eol).any() and np.isnan(mean_eol).any()
    sample_eol = path_crossings(series, last, paths, threshold, "below")
    ran = []
    made = forecasting._mean_until_crossed
    monkeypatch.setattr(
        forecasting, "_mean_until_crossed", lambda b, sub, *a: ran.append(sub.ids) or made(b, sub, *a)
    )
    every = interval_levels(bundle, series, last, sample_eol, cfg, DEFAULT_QUANTILES)
    assert sorted(sum(ran, [])) == sorted(series.ids)
    ran.clear()
    fewer = interval_levels(bundle, series, last, sample_eol, cfg, DEFAULT_QUANTILES, mean_eol=mean_eol)
    assert sorted(sum(ran, [])) == sorted(np.asarray(series.ids)[np.isnan(mean_eol)].tolist())
    for a, b in zip(every[0] + [every[1]], fewer[0] + [fewer[1]], strict=True):
        # (--combine's mixed-effects path too: its sums over a chunk's rows run in row order)
        assert np.array_equal(a, b, equal_nan=True)


@pytest.mark.parametrize("horizon", [12, 1])
@pytest.mark.parametrize("which", ["warped", "warped_pair"])
def test_the_run_past_the_horizon_goes_on_from_where_the_forecast_left_it(
    which, horizon, request, monkeypatch
):
    """The forecast's rollout keeps where each member's mean run stands at each specimen's last row
    (forecasting.Ends), and the run past the horizon goes on from there instead of running the
    horizon again: the rows it makes are the whole run's bit for bit, and the interval is the same.
    A specimen not kept runs whole beside them."""
    from durability_cli import forecasting
    from durability_cli.forecasting import Ends, interval_levels, path_crossings, rollout

    table, path = request.getfixturevalue(which)
    model = load(path)
    bundle = model.bundle
    series, last = _cut(model, table, np.array([20, 14, 26]), horizon)
    cfg = forecast_config(50, DEFAULT_QUANTILES, None, "below", 0)
    ends = Ends()
    mean, paths = rollout(bundle, series, last, cfg, ends=ends)
    plain = rollout(bundle, series, last, cfg)
    assert np.array_equal(mean, plain[0], equal_nan=True) and np.array_equal(paths, plain[1], equal_nan=True)
    kept = ends.take(np.arange(len(series.ids)))
    assert len(kept) == len(bundle.members)
    stops = eol_warp.last_rows(series)
    resumed = kept[0].step.numpy() == stops
    # a specimen whose last step ran in the fused warm-up (a one-row horizon) is not kept
    # (tests/test_model.py); here the sample's missing values end the fused part sooner, so one
    # is marked so: the others go on, it runs whole
    assert resumed.all()
    if horizon == 1:
        for e in kept:
            e.step[int(np.argmin(last))] = -1
        resumed = kept[0].step.numpy() == stops
    # run on from the kept step to each specimen's end (a threshold never crossed): the whole run's rows
    longer = eol_warp.extend(series, last, eol_warp.MAX_FACTOR)
    whole = rollout(bundle, longer, last, forecast_config(0, DEFAULT_QUANTILES))[0]
    never = forecast_config(0, DEFAULT_QUANTILES, -1e9, "below", 0)
    on = np.flatnonzero(resumed)
    sub = longer.take(on)
    made = forecasting._mean_until_crossed(bundle, sub, last[on], never, "t.csv", [e.take(on) for e in kept])
    # (the first row it gives is the horizon's last, the kept value: a crossing just after it is
    # interpolated from there)
    past = np.arange(sub.y.shape[1])[None, :] >= stops[on, None]
    assert np.array_equal(made[past], whole[on, : sub.y.shape[1]][past], equal_nan=True)
    assert np.isfinite(made[past & (sub.row >= 0)]).all() and np.isnan(made[~past]).all()
    # the interval: the same with and without, and with it the horizon's rows are not made again;
    # some specimens cross within the horizon, some not; and one first crosses between the
    # horizon's last row and the first row after it
    first_after = whole[np.arange(len(stops)), stops + 1]
    lowest = np.nanmin(mean, axis=1)
    just = np.flatnonzero(resumed & (first_after < lowest))
    assert len(just), "no specimen whose mean falls below its horizon's lowest on the next row"
    resumes = []
    run = forecasting._mean_until_crossed
    monkeypatch.setattr(
        forecasting,
        "_mean_until_crossed",
        lambda b, s, la, c, so, r=None: resumes.append(r) or run(b, s, la, c, so, r),
    )
    for threshold in (float(np.median(lowest)), float((lowest[just[0]] + first_after[just[0]]) / 2)):
        cfg = forecast_config(50, DEFAULT_QUANTILES, threshold, "below", 0)
        mean_eol = path_crossings(series, last, mean[:, None, :], threshold, "below")[:, 0]
        sample_eol = path_crossings(series, last, paths, threshold, "below")
        resumes.clear()
        stretch = eol_warp.factor(*eol_warp.spread(bundle)[:2], DEFAULT_QUANTILES)
        whole_run = forecasting._stretched_crossings(bundle, series, last, cfg, stretch, "t", mean_eol)
        assert resumes and all(r is None for r in resumes)
        resumes.clear()
        resumed_run = forecasting._stretched_crossings(
            bundle, series, last, cfg, stretch, "t", mean_eol, kept
        )
        todo = np.isnan(mean_eol)
        assert any(r is not None for r in resumes) == bool((todo & resumed).any())
        assert np.array_equal(whole_run, resumed_run, equal_nan=True)
        before = interval_levels(bundle, series, last, sample_eol, cfg, DEFAULT_QUANTILES, mean_eol=mean_eol)
        after = interval_levels(
            bundle, series, last, sample_eol, cfg, DEFAULT_QUANTILES, mean_eol=mean_eol, ends=kept
        )
        for a, b in zip(before[0] + [before[1]], after[0] + [after[1]], strict=True):
            assert np.array_equal(a, b, equal_nan=True)


def test_the_reach_past_the_horizon_grows_with_a_calibrations_shift():
    """The run reaches as far as the lowest quantile needs, times how much sooner a calibration's
    shift puts it; a lengthening (sooner < 1) does not shorten it; MAX_FACTOR caps it."""
    from durability_cli.calibration import life_factor

    qs = (0.1, 0.5, 0.9)
    plain = eol_warp.factor(0.1, 0.3, qs)
    assert plain == pytest.approx(math.exp(0.1 + 0.3 * 1.2815515655446004))
    sooner = 1 / life_factor(0.1, 0.7)  # a shift of 0.7 moves p10's remaining life by exp(-0.7)
    assert sooner == pytest.approx(math.exp(0.7))
    assert eol_warp.factor(0.1, 0.3, qs, sooner) == pytest.approx(plain * math.exp(0.7))
    assert eol_warp.factor(0.1, 0.3, qs, 0.5) == plain
    assert eol_warp.factor(0.1, 0.3, qs, 100.0) == eol_warp.MAX_FACTOR
    assert life_factor(0.05, 0.7) == pytest.approx(math.exp(-0.7 * 1.6448536269514722 / 1.2815515655446004))


def test_a_specimens_interval_does_not_depend_on_the_specimens_beside_it(warped, tmp_path):
    """Each specimen's run past the horizon reaches as far as its own span asks, not as far as the
    longest span in the table: forecast alone, a specimen gets the end-of-life columns it gets
    beside others. Here its mean crosses after its own reach but within its neighbours' (their
    warm-ups are shorter, so their spans longer), where the whole table's run once found it."""
    from durability_cli import forecasting

    table, path = warped
    model = load(path)
    data = pd.read_csv(table)
    lone = data.specimen_id.iloc[0]
    row = data.groupby("specimen_id").cumcount()
    data.loc[row >= np.where(data.specimen_id == lone, 35, 15), "durability"] = np.nan
    data.to_csv(tmp_path / "all.csv", index=False)
    data[data.specimen_id == lone].to_csv(tmp_path / "one.csv", index=False)
    # where its own reach ends, and where the table's longest would
    series = to_series(load_dataset(str(tmp_path / "one.csv"), schema=model.bundle.schema))
    last = np.array([34])
    centre, sd, _ = eol_warp.spread(model.bundle)
    stretch = eol_warp.factor(centre, sd, DEFAULT_QUANTILES)
    own = int(eol_warp.extend(series, last, stretch).lengths[0])
    widest = int(eol_warp.extend(series, last, stretch * 45 / 25).lengths[0])  # a span of 45 rows, not 25
    assert widest > own + 4
    far = eol_warp.extend(series, last, eol_warp.MAX_FACTOR)
    cfg = forecast_config(0, DEFAULT_QUANTILES, -1e9, "below", 0)  # never crosses: the whole run
    mean = forecasting._mean_until_crossed(model.bundle, far, last, cfg, "one.csv")[0]
    mid = (own + widest) // 2
    threshold = float(np.nanmin(mean[:mid]))
    assert np.nanmin(mean[:own]) > threshold  # it crosses after its own reach, before the widest
    every = to_series(load_dataset(str(tmp_path / "all.csv"), schema=model.bundle.schema))
    at = every.ids.index(lone)
    cfg = forecast_config(0, DEFAULT_QUANTILES, threshold, "below", 0)
    found = [
        forecasting._stretched_crossings(model.bundle, s, cut, cfg, stretch, "t.csv")[i]
        for s, cut, i in ((series, last, 0), (every, np.where(np.arange(len(every.ids)) == at, 34, 14), at))
    ]
    assert np.isnan(found).all()  # alone and beside the others: not within its own reach
    frames = {}
    for name in ("all", "one"):
        eol = tmp_path / f"{name}_eol.csv"
        args = ["forecast", str(tmp_path / f"{name}.csv"), "-m", str(path), "--threshold", repr(threshold)]
        r = CliRunner().invoke(app, args + ["--eol-out", str(eol), "-o", str(tmp_path / f"{name}_f.csv")])
        assert r.exit_code == 0, r.output
        frames[name] = pd.read_csv(eol).set_index("specimen_id")
    pd.testing.assert_series_equal(frames["one"].loc[lone], frames["all"].loc[lone])


def test_a_chunk_of_one_row_specimens_keeps_nothing_and_the_others_go_on(warped):
    """A chunk whose specimens have one row each makes no step: its specimens are not kept (step
    -1), and the specimens of the other chunks are, each chunk's records joined in order.
    (A table cannot hold such a specimen; a chunk of the API's small ``rollout_batch`` can.)"""
    from dataclasses import replace

    from durability_cli.forecasting import Ends, rollout

    table, path = warped
    model = load(path)
    series, last = _cut(model, table, np.array([20, 14, 26]), 12)
    alone = 0
    T = series.y.shape[1]
    one = np.arange(T)[None, :] >= 1  # the first specimen's rows after its first: padding
    pad = one & (np.arange(len(series.ids))[:, None] == alone)
    series = replace(
        series,
        lengths=np.where(np.arange(len(series.ids)) == alone, 1, series.lengths),
        time=np.where(pad, np.nan, series.time),
        y=np.where(pad, np.nan, series.y),
        cond=np.where(pad[..., None], np.nan, series.cond),
        row=np.where(pad, -1, series.row),
    )
    last = np.where(np.arange(len(series.ids)) == alone, 0, last)
    cfg = replace(forecast_config(20, DEFAULT_QUANTILES, 0.5, "below", 0), rollout_batch=1)
    ends = Ends()
    mean, _ = rollout(model.bundle, series, last, cfg, ends=ends)
    assert np.isnan(mean[alone]).all()
    kept = ends.take(np.arange(len(series.ids)))  # a chunk each: kept across all of them
    assert kept is not None and kept[0].step[alone] == -1
    others = np.flatnonzero(np.arange(len(series.ids)) != alone)
    assert (kept[0].step.numpy()[others] == series.lengths[others] - 1).all()


def test_chunks_of_like_lengths_keep_each_specimens_run_in_the_tables_order(warped):
    """Specimens of like lengths share a chunk (forecasting.chunk_plan), so a chunk's specimens
    need not be neighbours in the table: each chunk pads only to its own longest, the forecast is
    the one-chunk forecast bit for bit, and each specimen's kept run (Ends) is its own."""
    from dataclasses import replace

    from durability_cli.forecasting import Ends, chunk_plan, rollout

    table, path = warped
    model = load(path)
    series, last = _cut(model, table, np.array([20, 14, 26]), 12)  # lengths 32, 26, 38, 32, ...
    cfg = forecast_config(20, DEFAULT_QUANTILES, 0.5, "below", 0)
    chunks = chunk_plan(series, 20, 2)
    assert any((np.diff(c) > 1).any() for c in chunks), "every chunk is a run of neighbours"
    assert sum(int(series.lengths[c].max()) * len(c) for c in chunks) < series.y.shape[1] * len(series.ids)
    assert all(len(set(series.lengths[c])) == 1 for c in chunks[:-1])  # like lengths together
    ends_one, ends_two = Ends(), Ends()
    one = rollout(model.bundle, series, last, cfg, ends=ends_one)
    two = rollout(model.bundle, series, last, replace(cfg, rollout_batch=2), ends=ends_two)
    for a, b in zip(one, two, strict=True):
        assert np.array_equal(a, b, equal_nan=True)
    index = np.random.default_rng(0).permutation(len(series.ids))
    for a, b in zip(ends_one.take(index), ends_two.take(index), strict=True):
        assert torch.equal(a.step, b.step) and torch.equal(a.last_path, b.last_path)
        assert torch.equal(a.history, b.history) and torch.equal(a.free, b.free)
        states = [s if isinstance(s, tuple) else (s,) for s in (a.state, b.state)]
        assert all(torch.equal(x, y) for x, y in zip(*states, strict=True))
    assert (ends_two.take(index)[0].step.numpy() == eol_warp.last_rows(series)[index]).all()


@pytest.mark.parametrize("which", ["warped", "warped_pair"])
def test_the_run_past_the_horizon_steps_several_chunks_specimens_together(
    which, request, monkeypatch, tmp_path
):
    """A forecast's chunks hold MEMORY_BUDGET cells of Monte Carlo paths; its end-of-life run past
    the horizon holds a row per specimen and member, so the run waits for several chunks and
    steps their specimens together (forecasting._PastHorizon): fewer runs than chunks, and the
    same tables as one chunk for the whole table, bit for bit (one member, and two averaged with
    the mixed-effects path)."""
    from durability_cli import forecasting

    table, path = request.getfixturevalue(which)
    df = pd.read_csv(table)
    rows = df.groupby("specimen_id").cumcount()
    cut = 14 + df.specimen_id.astype("category").cat.codes % 9  # warm-ups of 14-22 rows
    df.loc[rows >= cut, "durability"] = np.nan
    df = df[rows < cut + 12 + 3 * (df.specimen_id.astype("category").cat.codes % 4)]  # horizons of 12-21
    plan = tmp_path / "plan.csv"
    df.to_csv(plan, index=False)
    model = load(path)

    def tables():
        out = model.forecast(str(plan), samples=20, threshold=0.75)
        return out.table, out.end_of_life

    whole = tables()
    assert whole[1]["eol_p90"].notna().any() and (whole[1]["status"] == "not within horizon").any()
    runs, chunks = [], []
    run, rollout = forecasting._mean_until_crossed, forecasting.rollout_chunks

    def counted(*a, **k):
        for chunk in rollout(*a, **k):
            chunks.append(len(chunk[0]))
            yield chunk

    monkeypatch.setattr(forecasting, "_mean_until_crossed", lambda *a, **k: runs.append(1) or run(*a, **k))
    monkeypatch.setattr(forecasting, "rollout_chunks", counted)
    monkeypatch.setattr(forecasting, "MEMORY_BUDGET", 20 * 40 * 3)  # about 3 specimens of 20 paths a chunk
    # the run's chunks then hold MEMORY_BUDGET / steps specimens (without the attribute: the
    # library before session 52, one run per chunk)
    monkeypatch.setattr(forecasting, "RUN_CELL_COST", 0, raising=False)
    small = tables()
    assert len(chunks) >= 6 and 1 <= len(runs) < len(chunks) / 2, (runs, chunks)
    for a, b in zip(whole, small, strict=True):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
