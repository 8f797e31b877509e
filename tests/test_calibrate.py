"""`durability calibrate` and Model.calibrate: the band scaled on held-out specimens."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import durability_cli as dur
from durability_cli.calibration import band_factor, coverage, needed, step_edges, step_factors, step_sides
from durability_cli.cli import app
from durability_cli.errors import InputError, cli_text


@pytest.fixture(scope="module")
def held(coating_slice) -> Path:
    """Ten coating specimens the session's ``model`` fixture did not train on (11th to 20th), 40 rows each."""
    return coating_slice(10, 40, first=10)


def test_needed_factor_puts_level_inside():
    # a band of half-width 1 around 0; truths at 0.5, 1.5, -2 and 0 need factors 0.5, 1.5, 2, 0
    bt = pd.DataFrame(
        {"y_true": [0.5, 1.5, -2.0, 0.0], "y_pred": 0.0, "q0.1": -1.0, "q0.9": 1.0, "step": [1, 2, 3, 4]}
    )
    ratios, steps = needed(bt, 0.8)
    assert ratios.tolist() == [0.5, 1.5, 2.0, 0.0] and steps.tolist() == [1, 2, 3, 4]
    c = band_factor(ratios, 0.8, "t")
    assert c == pytest.approx(2.0, rel=2e-5) and c > 2.0 and coverage(ratios, c) >= 0.8
    assert coverage(ratios) == 0.5
    # an asymmetric band: below the mean the lower half counts
    bt = pd.DataFrame({"y_true": [-1.0, np.nan], "y_pred": 0.0, "q0.1": -4.0, "q0.9": 0.5, "step": [3, 4]})
    assert [x.tolist() for x in needed(bt, 0.8)] == [[0.25], [3]]  # a row without truth is not scored


def test_step_bins_and_factors():
    steps = np.repeat(np.arange(1, 13), 10)  # 12 steps, 10 rows each
    edges = step_edges(steps, 4)
    assert edges == [3, 6, 9]
    assert step_edges(steps, 1) == [] and step_edges(np.full(5, 2), 4) == []  # one step: one bin
    block = {"edges": edges, "centres": [2.0, 5.0, 8.0, 11.0], "factors": [0.5, 1.0, 1.5, 2.0]}
    # flat before the first centre and after the last, linear in between
    assert step_factors(block, np.array([1, 2, 3, 5, 6.5, 11, 500])).tolist() == pytest.approx(
        [0.5, 0.5, 2 / 3, 1.0, 1.25, 2.0, 2.0]
    )
    assert step_factors(None, steps) == 1.0
    with pytest.raises(InputError, match="bins"):
        step_edges(steps, 0)


@pytest.mark.parametrize(
    "sides, under, over, specimens, hint",
    [
        ("both", 0.2, 0.05, 40, "--sides each scales them apart"),
        ("both", 0.2, 0.05, 12, "(with 30 or more specimens)"),
        ("both", 0.12, 0.08, 40, None),  # even enough
        ("each", 0.2, 0.05, 40, None),  # already apart
    ],
)
def test_calibrate_hints_at_sides_each_when_the_misses_were_one_sided(sides, under, over, specimens, hint):
    from durability_cli.calibration import warnings

    block = {"sides": sides, "under_before": under, "over_before": over, "specimens": specimens}
    found = [w for w in warnings(block, []) if "one-sided" in w]
    assert (found[0] if found else None) is None if hint is None else hint in found[0]


def test_a_half_without_width_is_refused_with_the_fix():
    from durability_cli.calibration import side_factor

    ratios = np.array([0.0] * 8 + [np.inf] * 2)  # 2 of 10 rows beyond a half of no width
    with pytest.raises(InputError, match="half over the mean has no width .* --sides both"):
        side_factor(ratios, 0.8, "held.csv", "over")
    assert side_factor(np.array([0.0] * 10), 0.8, "held.csv") == pytest.approx(0.05, rel=1e-4)  # MIN_SIDE


def test_no_rows_or_no_width_refused():
    with pytest.raises(InputError, match="no measured rows"):
        band_factor(np.array([]), 0.8, "held.csv")
    flat = pd.DataFrame({"y_true": [1.0, 2.0], "y_pred": 0.0, "q0.1": 0.0, "q0.9": 0.0, "step": 1})
    with pytest.raises(InputError, match="no width"):
        band_factor(needed(flat, 0.8)[0], 0.8, "held.csv")


def test_calibrated_band_covers_level_and_scales_paths(model, held):
    trained = dur.load(model)
    calibrated = trained.calibrate(str(held), context=20, samples=100, bins=4, sides="both")
    block = calibrated.summary["calibration"]
    df = pd.read_csv(held)
    measured_after = df[df.groupby("specimen_id").cumcount() >= 20]["durability"].notna().sum()
    assert block["specimens"] == 10 and block["rows"] == measured_after
    assert block["bins"] == 4 and len(block["edges"]) == 3 and len(set(block["factors"])) > 1
    assert block["coverage_after"] >= 0.8 > block["coverage_after"] - 0.05
    assert calibrated.summary.get("scale_calibration") == trained.summary.get("scale_calibration")
    assert trained.summary.get("calibration") is None  # the original is untouched
    # and stays so when the copy's summary is changed in place (its history was shared)
    rows = len(trained.summary["history"])
    calibrated.summary["history"].append({"epoch": -1})
    assert len(trained.summary["history"]) == rows
    # the same backtest with the calibrated model: its p10-p90 band covers >= 80 % of the rows
    ev = calibrated.evaluate(str(held), context=20, samples=100, baselines=False, bounds=(None, None))
    assert ev.report["models"]["model"]["coverage"]["80"] >= 0.8
    # every path moves away from the mean by exactly its step's factor
    a = trained.evaluate(str(held), context=20, samples=100, baselines=False, bounds=(None, None)).backtest
    b = ev.backtest
    centre = trained.evaluate(str(held), context=20, samples=0, baselines=False).backtest["y_pred"]
    c = step_factors(block, b["step"].to_numpy())
    for q in ("q0.1", "q0.9"):
        assert np.allclose(b[q] - centre, c * (a[q] - centre), atol=1e-6)
    # calibrating the calibrated model measures the model as trained: the same factors again
    again = calibrated.calibrate(str(held), context=20, samples=100, bins=4, sides="both")
    again = again.summary["calibration"]
    assert again["factors"] == block["factors"] and again["coverage_before"] == block["coverage_before"]
    # the default, one bin: one factor at every step, the level quantile over all the rows
    one = trained.calibrate(str(held), context=20, samples=100, sides="both").summary["calibration"]
    assert one["edges"] == [] and one["factors"] == [one["factor"]] and one["coverage_after"] >= 0.8


def test_each_half_of_the_band_is_calibrated_apart(model, held):
    """--sides each: at most a tenth of the calibration rows under the 80 % band and a tenth over
    it (a row or so of tolerance), the same in a backtest of the calibrated model; each quantile
    below the mean moves by the factor under it, each above by the factor over it; the mean (the
    mean path) does not move."""
    trained = dur.load(model)
    calibrated = trained.calibrate(str(held), context=20, samples=100, bins=2, sides="each")
    block = calibrated.summary["calibration"]
    assert block["sides"] == "each" and len(block["under"]) == len(block["over"]) == 2
    assert block["under"] != block["over"]
    slack = 2 / block["rows"]
    assert block["under_after"] <= 0.1 + slack and block["over_after"] <= 0.1 + slack
    assert block["coverage_after"] == pytest.approx(1 - block["under_after"] - block["over_after"])
    opts = dict(context=20, samples=100, baselines=False, bounds=(None, None))
    ev = calibrated.evaluate(str(held), **opts)
    m = ev.report["models"]["model"]
    assert m["below"]["80"] == pytest.approx(block["under_after"], abs=slack)
    assert m["above"]["80"] == pytest.approx(block["over_after"], abs=slack)
    a = trained.evaluate(str(held), **opts).backtest
    b = ev.backtest
    centre = trained.evaluate(str(held), context=20, samples=0, baselines=False).backtest["y_pred"].to_numpy()
    under, over = step_sides(block, b["step"].to_numpy())
    for q in ("q0.1", "q0.9"):
        dev = a[q].to_numpy() - centre
        side = np.where(dev < 0, under, over)
        assert np.allclose(b[q].to_numpy() - centre, side * dev, atol=1e-5)
    # the mean is the mean path: calibrated or not, and the same as --samples 0's
    assert np.allclose(a["y_pred"], b["y_pred"], rtol=0, atol=1e-6)
    assert np.allclose(b["y_pred"], centre, rtol=0, atol=1e-6)


def test_a_calibration_file_with_bad_side_factors_is_refused(runner, model, held, tmp_path):
    from durability_cli.artifact import load_bundle, save_bundle

    calibrated = dur.load(model).calibrate(str(held), context=20, samples=40, sides="each")
    path = tmp_path / "cal.safetensors"
    calibrated.save(path)
    assert load_bundle(path).summary["calibration"]["under"] == calibrated.summary["calibration"]["under"]
    bundle = load_bundle(path)
    bundle.summary["calibration"]["over"] = [-1.0]
    save_bundle(bundle, tmp_path / "bad.safetensors")
    r = runner.invoke(app, ["inspect", str(tmp_path / "bad.safetensors")])
    assert r.exit_code == 2 and "calibration over factor is -1.0, not a positive factor" in r.stderr
    del bundle.summary["calibration"]["over"]  # one half only: refused, not silently one factor
    save_bundle(bundle, tmp_path / "half.safetensors")
    r = runner.invoke(app, ["inspect", str(tmp_path / "half.safetensors")])
    assert r.exit_code == 2 and "one half of the band only" in r.stderr


def test_cli_sides_each_and_a_bad_sides_value(runner, model, held, tmp_path):
    out = tmp_path / "cal.safetensors"
    base = ["calibrate", str(held), "-m", str(model), "--context", "20", "--samples", "40", "-o", str(out)]
    r = runner.invoke(app, [*base, "--sides", "sideways"])
    assert r.exit_code == 2 and not out.exists()
    assert r.stderr == "Error: --sides must be one of both, each, got 'sideways'\n"
    r = runner.invoke(app, [*base, "--sides", "each"])
    assert r.exit_code == 0, r.stderr
    block = json.loads(r.stdout)
    assert block["sides"] == "each" and len(block["under"]) == len(block["over"]) == 1
    assert "values under / over it" in r.stderr and " under / " in r.stderr
    assert "--sides each on 10 specimens" in r.stderr  # fewer than 30: a warning
    shown = runner.invoke(app, ["inspect", str(out)])
    assert "under /" in shown.stderr + shown.stdout  # "band calibrated: x 0.9 under / 1.2 over ..."


def test_cli_writes_model_inspect_shows_it(runner, model, held, tmp_path):
    out = tmp_path / "cal.safetensors"
    r = runner.invoke(app, ["calibrate", str(held), "-m", str(model), "--context", "20", "-o", str(out)])
    assert r.exit_code == 0, r.stderr
    block = json.loads(r.stdout)  # not a terminal: the report on stdout
    assert block["level"] == 0.8 and block["factor"] > 0
    assert "Band calibration" in r.stderr and "80% band coverage" in r.stderr
    assert "rests on" not in r.stderr  # 10 specimens are not "few"
    info = runner.invoke(app, ["inspect", str(out), "--json"])
    assert json.loads(info.stdout)["summary"]["calibration"]["factor"] == block["factor"]
    shown = runner.invoke(app, ["inspect", str(out)])
    assert "band calibrated" in shown.stderr + shown.stdout


def test_calibrate_records_the_steps_its_backtests_ran(runner, model, held, tmp_path):
    """--max-step as evaluate's: the block records what ran (the model file keeps its training
    steps, so auto by default) and how many steps auto cut; off runs the table's steps."""
    blocks = {}
    for extra in ([], ["--max-step", "off"]):
        out = tmp_path / f"cal{len(extra)}.safetensors"
        args = ["calibrate", str(held), "-m", str(model), "--context", "20", "-o", str(out), *extra]
        r = runner.invoke(app, args)
        assert r.exit_code == 0, r.stderr
        block = json.loads(r.stdout)
        blocks[block["max_step"]] = block
        assert (
            json.loads(runner.invoke(app, ["inspect", str(out), "--json"]).stdout)["summary"]["calibration"][
                "max_step"
            ]
            == block["max_step"]
        )
        # and both say it where a person reads them (only --json did)
        said = f"backtests run with --max-step {block['max_step']}"
        assert said in " ".join(r.stderr.split())
        shown = runner.invoke(app, ["inspect", str(out)])
        assert said in " ".join((shown.stdout + shown.stderr).replace("│", " ").split())
    assert sorted(blocks) == ["auto", "off"] and blocks["off"]["cut_steps"] == 0


def test_a_forecast_on_other_steps_than_its_calibration_says_so(runner, model, held, plan, tmp_path):
    """The band's factors go by steps ahead: a forecast or evaluate run with another --max-step than
    the calibration's backtests gets a warning naming both; the same steps get none (auto that cut
    nothing ran them as off does)."""
    out = tmp_path / "cal-off.safetensors"
    args = ["calibrate", str(held), "-m", str(model), "--context", "20", "--max-step", "off", "-o", str(out)]
    assert runner.invoke(app, [*args, "-q"]).exit_code == 0
    said = "calibrated on backtests run with --max-step off, and this forecast runs --max-step auto"
    for extra, differs in (([], True), (["--max-step", "off"], False), (["--max-step", "2"], True)):
        f = tmp_path / f"f{len(extra)}.csv"
        r = runner.invoke(app, ["forecast", str(plan), "-m", str(out), "-o", str(f), *extra])
        assert r.exit_code == 0, r.stderr
        lines = [line for line in r.stderr.splitlines() if "calibrated on backtests" in line]
        assert len(lines) == int(differs), r.stderr
        if extra == []:
            assert said in " ".join(r.stderr.split()), r.stderr
    result = dur.load(out).forecast(str(plan), max_step=2)
    assert any("runs `max_step` 2:" in w for w in result.warnings)  # (--max-step 2 on the command line)
    # without paths the calibration moves nothing: the mean alone
    assert not any(
        "calibrated on" in w for w in dur.load(out).forecast(str(plan), max_step=2, samples=0).warnings
    )
    assert not any("calibrated on" in w for w in dur.load(out).forecast(str(plan), max_step="off").warnings)
    # evaluate says it in its table and records what the calibration ran
    for extra, differs in (([], True), (["--max-step", "off"], False), (["--samples", "0"], False)):
        r = runner.invoke(app, ["evaluate", str(held), "-m", str(out), "--context", "20", "--json", *extra])
        assert r.exit_code == 0, r.stderr
        assert json.loads(r.stdout)["settings"]["calibrated_max_step"] == "off"
        table = " ".join(r.stderr.split())
        assert (
            "calibrated on backtests run with --max-step off, and these backtests run" in table
        ) == differs
    # a compared model's own calibration and steps (evaluate -m A -m B), named
    r = runner.invoke(
        app, ["evaluate", str(held), "-m", str(model), "-m", str(out), "--context", "20", "--json"]
    )
    assert r.exit_code == 0, r.stderr
    settings = json.loads(r.stdout)["settings"]
    compared = settings["compared_steps"]["cal-off"]
    assert settings["calibrated_max_step"] is None and compared["calibrated_max_step"] == "off"
    assert compared["cut_steps"] == settings["cut_steps"] > 0  # the same network: the same steps cut
    assert "cal-off: the band was calibrated on backtests run with --max-step off" in " ".join(
        r.stderr.split()
    )
    # auto that cut nothing ran the steps as given, as off does: nothing to say
    from durability_cli.config import steps_differ_line

    assert steps_differ_line("off", 0, "auto", 0) is None and steps_differ_line("auto", 0, "off", 0) is None
    assert steps_differ_line(2, None, 2.0, 0) is None and steps_differ_line("auto", 5, "auto", 0) is None
    said = cli_text(steps_differ_line("auto", 5, "off", 0))  # (`max_step` auto in Python)
    assert "--max-step auto, and this forecast runs --max-step off" in said
    assert "`max_step` 0.5" in steps_differ_line("off", 0, 0.5, 0)


def test_forecast_with_calibrated_model_moves_band_by_step_factor(runner, model, held, plan, tmp_path):
    out = tmp_path / "cal.safetensors"
    args = ["calibrate", str(held), "-m", str(model), "--context", "20", "--bins", "4", "-o", str(out), "-q"]
    r = runner.invoke(app, [*args, "--sides", "both"])
    assert r.exit_code == 0, r.stderr
    block = json.loads(r.stdout)
    assert len(block["factors"]) == 4
    widths = []
    for m in (model, out):
        f = tmp_path / f"{Path(m).stem}.csv"
        r = runner.invoke(app, ["forecast", str(plan), "-m", str(m), "-o", str(f), "--bounds", ",", "-q"])
        assert r.exit_code == 0, r.stderr
        df = pd.read_csv(f)
        widths.append((df["durability_p90"] - df["durability_p10"]).to_numpy())
    step = (df.groupby("specimen_id").cumcount() + 1).to_numpy()  # the plan's future rows: steps 1..20
    assert np.allclose(widths[1], step_factors(block, step) * widths[0], rtol=0, atol=1e-5)  # 6 decimals


def test_eol_interval_reported_with_threshold(model, held):
    block = dur.load(model).calibrate(str(held), context=20, samples=50, threshold=0.9).summary["calibration"]
    assert {"eol_interval_coverage_before", "eol_interval_coverage_after", "eol_interval_n"} <= set(block)
    assert "eol" not in block  # the interval's own shift only with eol_interval
    # the 'before' is evaluate's, over evaluate's count of decided intervals: the block says which
    report = (
        dur.load(model).evaluate(str(held), context=20, samples=50, threshold=0.9, baselines=False).report
    )
    scored = report["models"]["model"]["eol"]
    assert block["eol_interval_n_before"] == scored["interval_n"]
    assert block["eol_interval_coverage_before"] == scored["interval_coverage"]
    from durability_cli.render import _eol_counted

    assert _eol_counted(5, 1) == "5 -> 1 forecasts" and _eol_counted(4, 4) == "4 forecasts"
    # 20 of 40 rows seen: too few forecasts cross 0.9 to calibrate the interval, so it is left alone
    eol = dur.load(model).calibrate(str(held), context=20, samples=50, threshold=0.9, eol_interval=True)
    block = eol.summary["calibration"]
    assert block["eol"]["shift"] == 0.0 and not block["eol"]["reached"]
    assert any("too few to calibrate" in w for w in block["warnings"])
    with pytest.raises(InputError, match="needs the threshold"):
        dur.load(model).calibrate(str(held), context=20, eol_interval=True)


def _eol_table(true, censor, p90, p10=5.0):
    """Six forecasts cut at time 0 whose paths cross at ``p10``, 10 (median) and ``p90``; each
    one's horizon is its last measured row."""
    return pd.DataFrame(
        {"t_cut": 0.0, "eol_p10": p10, "eol_p50": 10.0, "eol_p90": p90, "eol_true": true, "censor": censor,
         "horizon": censor}
    )  # fmt: skip


def _as_forecast_reports(values: np.ndarray, horizon) -> np.ndarray:
    """An interval's end as forecast reports it: +inf (later than the horizon) past the horizon."""
    return np.where(values <= np.asarray(horizon, dtype=float), values, np.inf)


def test_eol_shift_is_the_smallest_that_covers_level_of_n_plus_one():
    from durability_cli.calibration import eol_thresholds, measure_eol, shift_crossing
    from durability_cli.metrics import eol_interval_coverage

    inf, nan = np.inf, np.nan
    table = _eol_table(
        true=[8, 4, 40, 10, nan, nan], censor=[50, 50, 50, 50, 30, 30], p90=[20, 20, 20, 20, inf, 20]
    )
    cover, miss, crossed = eol_thresholds(table)
    # in log remaining life: 4 needs the p10 down by log(5/4), 40 the p90 up by log 2; 8 and the
    # median crossing are inside; an open interval holds a truth censored after its median; a
    # closed one ending at 20 misses a truth known to be after 30 until its p90 passes 30, and
    # then holds it: past the horizon (30) the forecast reports p90 as later than the horizon
    assert cover[:4] == pytest.approx([np.log(5 / 8), np.log(5 / 4), np.log(2), -inf])
    assert cover[4] == -inf and miss[4] == -inf
    assert cover[5] == pytest.approx(np.log(1.5)) and miss[5] == pytest.approx(np.log(1.5))
    assert crossed.tolist() == [True] * 4 + [False] * 2
    eol = measure_eol(table, "held.csv")
    # at log(1.5) 5 of 6 decided are covered (< ceil(0.8 x 7)); at log 2 all six
    assert eol["shift"] == pytest.approx(np.log(2)) and eol["reached"]
    assert (eol["coverage_before"], eol["coverage_after"], eol["n"]) == (0.5, 1.0, 6)
    # and it says why a share of 5 of 6 held was not enough: the warning named only the count
    from durability_cli.calibration import eol_warnings

    said = eol_warnings(eol)
    assert len(said) == 1 and "rests on 6 forecast(s)" in said[0]
    assert "it must hold 6 of these 6, every one" in said[0]
    # the same numbers from evaluate's scorer on the moved interval, as forecast reports it
    median, start = table["eol_p50"].to_numpy(), table["t_cut"].to_numpy()
    lo, hi = (
        _as_forecast_reports(
            shift_crossing(table[c].to_numpy(), q, median, start, eol["shift"]), table["horizon"]
        )
        for c, q in [("eol_p10", 0.1), ("eol_p90", 0.9)]
    )
    assert lo.tolist() == pytest.approx([2.5] * 6) and hi.tolist() == pytest.approx([40.0] * 4 + [inf, inf])
    scored = eol_interval_coverage(lo, hi, table["eol_true"], table["censor"])
    assert (scored["interval_coverage"], scored["interval_n"]) == (1.0, 6)


def test_a_p90_on_the_horizons_last_row_is_not_later_than_it():
    """A censored truth whose interval ends exactly on the horizon's last row: forecast reports
    that p90 as a time, not as later than the horizon, so the forecast is undecided at shift 0,
    as evaluate's scorer counts it (hypothesis found calibrate counting it covered)."""
    from durability_cli.calibration import eol_thresholds, measure_eol
    from durability_cli.metrics import eol_interval_coverage

    table = pd.DataFrame(
        {"t_cut": [10.0], "eol_p10": [10.5], "eol_p50": [10.5], "eol_p90": [10.5], "eol_true": [np.nan],
         "censor": [10.5], "horizon": [10.5]}
    )  # fmt: skip
    cover, miss, _ = eol_thresholds(table)
    assert cover[0] > 0.0 and miss[0] == -np.inf  # covered only once the p90 is moved past it
    eol = measure_eol(table, "t")
    scored = eol_interval_coverage(table["eol_p10"], table["eol_p90"], table["eol_true"], table["censor"])
    assert eol["n_before"] == scored["interval_n"] == 0


def test_a_p10_past_the_horizon_can_be_brought_within_it():
    """Session 34's crack: truths crossing in the last rows while the p10 lies just past the
    horizon. Given as +inf (later than the horizon) no shift could reach them; given as the times
    past the horizon that the stretched mean puts them at, the shift that covers them is found."""
    from durability_cli.calibration import measure_eol, shift_crossing
    from durability_cli.metrics import eol_interval_coverage

    true = [9.5, 9.0, 9.8, 9.6, 6.0, 7.0, 9.9, 8.0, 9.7, 9.2]
    p10 = [12.0, 11.0, 10.5, 13.0, 5.0, 5.0, 11.0, 6.0, 10.2, 10.4]
    table = pd.DataFrame(
        {"t_cut": 0.0, "eol_p10": p10, "eol_p50": np.inf, "eol_p90": np.inf, "eol_true": true,
         "censor": 10.0, "horizon": 10.0}
    )  # fmt: skip
    censored = measure_eol(table.assign(eol_p10=_as_forecast_reports(table["eol_p10"].to_numpy(), 10.0)), "t")
    assert not censored["reached"] and censored["shift"] == 0.0 and censored["coverage_before"] == 0.3
    eol = measure_eol(table, "t")
    assert eol["reached"] and eol["coverage_before"] == 0.3 and eol["coverage_after"] >= 0.8
    # the smallest shift that brings 9 of 10 p10s down to their truths (ceil(0.8 x 11)): all but
    # 13 against 9.6, the farthest
    assert eol["shift"] == pytest.approx(np.log(12.0 / 9.5), rel=1e-6)
    lo = _as_forecast_reports(
        shift_crossing(table["eol_p10"].to_numpy(), 0.1, np.full(10, np.inf), np.zeros(10), eol["shift"]),
        10.0,
    )
    scored = eol_interval_coverage(lo, np.full(10, np.inf), table["eol_true"], table["censor"])
    assert (scored["interval_coverage"], scored["interval_n"]) == (0.9, 10)


def test_eol_narrowing_stops_at_the_median_and_few_forecasts_are_left_alone():
    from durability_cli.calibration import eol_warnings, measure_eol, shift_crossing

    values, median, start = np.array([5.0, 9.0, np.inf]), np.array([10.0, 10.0, np.inf]), np.zeros(3)
    assert shift_crossing(values, 0.1, median, start, -2.0).tolist() == [10.0, 10.0, np.inf]
    assert shift_crossing(values, 0.1, median, start, 0.5).tolist() == pytest.approx(
        [5 * np.exp(-0.5), 9 * np.exp(-0.5), np.inf]
    )
    # other quantiles move in proportion to their normal score: p5 by 1.645 / 1.2816 of p10's shift
    assert shift_crossing(values, 0.05, median, start, 0.5)[0] == pytest.approx(
        5 * np.exp(-0.5 * 1.644854 / 1.281552)
    )
    assert shift_crossing(values, 0.5, median, start, 0.5) is values
    # every truth between 8 and 12 in intervals 5..20: the interval narrows until 8 is on its edge
    true = [9.0, 11.0, 9.5, 10.5, 8.0, 12.0, 9.0, 11.0]
    tight = measure_eol(_eol_table(true=true, censor=50.0, p90=20.0), "held.csv")
    assert (
        tight["reached"] and tight["shift"] == pytest.approx(np.log(5 / 8)) and tight["coverage_after"] == 1.0
    )
    # three forecasts cannot put 80 % of n + 1 inside: left alone, with a warning
    few = measure_eol(_eol_table(true=[8.0, 4.0, 40.0], censor=50.0, p90=20.0), "held.csv")
    assert (few["shift"], few["reached"], few["n"]) == (0.0, False, 3)
    assert "too few" in eol_warnings(few)[0]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_eol_shift_agrees_with_evaluates_scorer(data):
    """For any table of forecasts (crossed or censored truths, open or closed intervals), the
    coverage measure_eol reports for its shift is the one evaluate's scorer gives on the moved
    interval, and a reached shift covers ceil(0.8 (n + 1)) of the n decided."""
    from durability_cli.calibration import measure_eol, shift_crossing
    from durability_cli.metrics import eol_interval_coverage

    n = data.draw(st.integers(1, 25))

    def column(values):
        return np.array(data.draw(st.lists(values, min_size=n, max_size=n)))

    life = st.floats(0.5, 200.0)
    lo = column(life)
    mid = lo * column(st.floats(1.0, 3.0))
    hi = np.where(column(st.booleans()), np.inf, mid * column(st.floats(1.0, 3.0)))
    mid = np.where(np.isinf(hi) & column(st.booleans()), np.inf, mid)  # an open interval's median may be too
    censor = column(life)
    horizon = censor + column(st.sampled_from([0.0, 0.0, 1.0, 25.0]))  # unmeasured last rows
    true = column(life)
    true = np.where(true <= censor, true, np.nan)  # after the last measured row: censored
    start = 10.0
    # the interval's ends as calibrate's backtest gives them: past the horizon too
    table = pd.DataFrame(
        {"t_cut": start, "eol_p10": start + lo, "eol_p50": start + mid, "eol_p90": start + hi,
         "eol_true": start + true, "censor": start + censor, "horizon": start + horizon}
    )  # fmt: skip
    eol = measure_eol(table, "t")
    median, cut = table["eol_p50"].to_numpy(), table["t_cut"].to_numpy()
    moved = [  # ... and as forecast then reports them: +inf past the horizon
        _as_forecast_reports(
            shift_crossing(table[c].to_numpy(), q, median, cut, eol["shift"]), table["horizon"]
        )
        for c, q in (("eol_p10", 0.1), ("eol_p90", 0.9))
    ]
    scored = eol_interval_coverage(*moved, table["eol_true"], table["censor"])
    assert scored["interval_n"] == eol["n"]
    if eol["n"]:
        assert scored["interval_coverage"] == pytest.approx(eol["coverage_after"])
    if eol["reached"]:
        assert round(eol["coverage_after"] * eol["n"]) >= np.ceil(0.8 * (eol["n"] + 1) - 1e-9)
    else:
        assert eol["shift"] == 0.0


@pytest.mark.parametrize(
    "share, n, hinted", [(0.62, 47, True), (0.74, 47, False), (0.97, 30, True), (0.5, 10, False)]
)
def test_calibrate_points_to_eol_interval_when_the_interval_is_far_off(share, n, hinted):
    from durability_cli.calibration import eol_hint

    hint = eol_hint({"n_before": n, "coverage_before": share, "level": 0.8})
    assert bool(hint) == hinted
    assert not hint or ("--eol-interval" in hint[0] and f"{share:.0%} of {n}" in hint[0])


def test_calibrated_eol_interval_is_what_evaluate_and_forecast_see(runner, model, held, plan, tmp_path):
    """The end-of-life shift measured by calibrate is what evaluate then scores on the same
    specimens, and forecast --eol-out moves p10 and p90 by it (the median stays)."""
    from durability_cli.api import Model
    from durability_cli.calibration import calibrated

    out = tmp_path / "cal.safetensors"
    args = [
        "calibrate",
        str(held),
        "-m",
        str(model),
        "--context",
        "10",
        "--threshold",
        "0.8",
        "--samples",
        "50",
    ]
    r = runner.invoke(app, [*args, "--eol-interval", "-o", str(out)])
    assert r.exit_code == 0, r.stderr
    block = json.loads(r.stdout)
    eol = block["eol"]
    assert eol["reached"] and eol["n"] >= 4 and eol["shift"] != 0
    assert "end-of-life 80% interval coverage" in r.stderr and "of the remaining life" in r.stderr
    cal = dur.load(out)
    band_only = Model(calibrated(cal.bundle, {k: v for k, v in block.items() if k != "eol"}))
    options = dict(context=10, samples=50, threshold=0.8, baselines=False, bounds=(None, None))
    for m, share in ((cal, eol["coverage_after"]), (band_only, eol["coverage_before"])):
        scored = m.evaluate(str(held), **options).report["models"]["model"]["eol"]
        assert scored["interval_coverage"] == pytest.approx(share)
    assert block["eol_interval_coverage_after"] == eol["coverage_after"]
    # without --eol-interval the band's factor is the same and the interval only reported
    r = runner.invoke(app, [*args, "-o", str(tmp_path / "plain.safetensors")])
    plain_block = json.loads(r.stdout)
    assert "eol" not in plain_block and plain_block["factors"] == block["factors"]
    assert plain_block["eol_interval_coverage_after"] == eol["coverage_before"]
    assert "end-of-life 80% interval coverage" in r.stderr and "of the remaining life" not in r.stderr
    band_file = tmp_path / "band.safetensors"
    band_only.save(band_file)
    frames = []
    for m in (out, band_file):
        f = tmp_path / f"{m.stem}-eol.csv"
        r = runner.invoke(
            app,
            [
                "forecast",
                str(plan),
                "-m",
                str(m),
                "--threshold",
                "0.8",
                "--eol-out",
                str(f),
                "-o",
                str(tmp_path / "f.csv"),
                "-q",
            ],
        )
        assert r.exit_code == 0, r.stderr
        frames.append(pd.read_csv(f))
    moved, plain = (f.fillna({"eol_p10": np.inf, "eol_p50": np.inf, "eol_p90": np.inf}) for f in frames)
    assert np.isfinite(plain["eol_p10"]).sum() >= 3  # crossings to move
    assert np.array_equal(moved["eol_p50"], plain["eol_p50"])
    start, shift, median = plain["last_measured_time"], eol["shift"], plain["eol_p50"]
    end = plain["horizon_end"]
    for q, sign in (("eol_p10", -1), ("eol_p90", 1)):
        want = start + (plain[q] - start) * np.exp(sign * shift)
        want = np.minimum(want, median) if sign < 0 else np.maximum(want, median)
        want = np.where(want <= end, want, np.inf)  # moved past the horizon: later than it
        # plain[q] was read back from 6 significant digits (5e-6 of the value), and the remaining
        # life carries that rounding times exp(|shift|)
        finite = np.isfinite(plain[q])
        atol = 1e-5 * np.abs(plain[q][finite]).max() * np.exp(abs(shift))
        assert np.allclose(moved[q][finite], want[finite], rtol=1e-5, atol=atol)
        # an end past the horizon moves from where the mean run on past it put it: it stays past
        # the horizon or comes within it, never before the cut-off
        past = moved[q][~finite]
        assert (np.isinf(past) | ((past <= end[~finite]) & (past >= start[~finite]))).all()
    shown = runner.invoke(app, ["inspect", str(out)])
    assert "end-of-life interval p10 x" in " ".join((shown.stderr + shown.stdout).replace("│", " ").split())


def test_seen_specimens_warned(model, small):
    block = dur.load(model).calibrate(str(small), context=20, samples=50).summary["calibration"]
    assert block["seen_specimens"] == 10
    assert any("trained or validated on" in w for w in block["warnings"])


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "exactly one of"),
        (["--context", "20", "--level", "1.5"], "level must be between 0 and 1"),
        (["--context", "20", "--samples", "5"], "samples must be at least 20"),
        (["--context", "40"], "lower --context"),
    ],
)
def test_bad_calls_exit_2_and_write_nothing(runner, model, held, tmp_path, extra, message):
    out = tmp_path / "cal.safetensors"
    r = runner.invoke(app, ["calibrate", str(held), "-m", str(model), "-o", str(out), *extra])
    assert r.exit_code == 2, r.stderr
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_output_over_input_refused(runner, model, held):
    before = held.read_bytes()
    r = runner.invoke(app, ["calibrate", str(held), "-m", str(model), "--context", "20", "-o", str(held)])
    assert r.exit_code == 2 and "overwrite the input" in r.stderr
    assert held.read_bytes() == before


def test_point_model_refused(runner, small, held, tmp_path):
    point = tmp_path / "point.safetensors"
    fast = ["--epochs", "1", "--hidden", "8", "--layers", "1", "--quiet"]
    r = runner.invoke(app, ["train", str(small), "-o", str(point), "--loss", "mse", *fast])
    assert r.exit_code == 0, r.stderr
    r = runner.invoke(
        app, ["calibrate", str(held), "-m", str(point), "--context", "20", "-o", str(tmp_path / "c.st")]
    )
    assert r.exit_code == 2 and "forecasts points only" in r.stderr


def test_calibrated_file_with_bad_factor_refused(model, tmp_path):
    from durability_cli.artifact import load_bundle, save_bundle
    from durability_cli.errors import ModelFileError

    bundle = load_bundle(model)
    bundle.summary["scale_calibration"] = -1.0
    bad = tmp_path / "bad.safetensors"
    save_bundle(bundle, bad)
    with pytest.raises(ModelFileError, match="not a positive factor"):
        load_bundle(bad)


def test_pipeline_stdin_to_stdout(model, held, tmp_path):
    """A real process: the held-out table on stdin, the report on stdout for jq and friends."""
    out = tmp_path / "cal.safetensors"
    cmd = [
        sys.executable,
        "-m",
        "durability_cli",
        "calibrate",
        "-",
        "-m",
        str(model),
        "--context",
        "20",
        "-o",
        str(out),
        "-q",
    ]
    p = subprocess.run(cmd, input=held.read_bytes(), capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    assert json.loads(p.stdout)["specimens"] == 10 and out.exists()


@pytest.mark.parametrize(
    "held_share, specimens, expected",
    [(0.99, 12, "too wide"), (0.55, 12, "too narrow"), (0.8, 12, None), (0.99, 4, None)],
)
def test_evaluate_points_to_calibrate(held_share, specimens, expected):
    from durability_cli.render import band_notes

    report = {"n_specimens": specimens, "models": {"model": {"coverage": {"80": held_share}}}}
    notes = band_notes(report)
    if expected is None:
        assert notes == []
    else:
        assert len(notes) == 1 and expected in notes[0] and "durability calibrate" in notes[0]


@pytest.mark.parametrize(
    "direction, under, over, early, late, expected",
    [
        ("below", 0.24, 0.07, 24, 0, ["wore faster than forecast", "runs late"]),
        ("above", 0.24, 0.07, 0, 24, ["wore more slowly than forecast", "runs early"]),
        ("above", 0.03, 0.18, 2, 2, ["wore faster than forecast"]),
        ("below", 0.12, 0.06, 5, 0, []),  # under 15 % of the decided: no line
        ("below", 0.16, 0.10, 3, 2, []),  # 16 % against 10 %: not one-sided
    ],
)
def test_evaluate_says_when_the_misses_fall_on_one_side(direction, under, over, early, late, expected):
    from durability_cli.render import side_notes

    eol = {"interval_n": 40, "interval_early": early, "interval_late": late}
    model = {"below": {"80": under}, "above": {"80": over}, "eol": eol}
    report = {"n_specimens": 40, "direction": direction, "threshold": 0.5, "models": {"model": model}}
    notes = side_notes(report)
    assert len(notes) == len(expected)
    for note, text in zip(notes, expected, strict=True):
        assert text in note
    assert all(("--sides each" in n) == ("band's misses" in n) for n in notes)  # the band's note points on
    assert side_notes(report | {"n_specimens": 4}) == []  # too few specimens to say
    if expected and "wore" in expected[0]:  # without a threshold the direction is not known: plain words
        plain = side_notes(report | {"threshold": None})[0]
        assert "wore" not in plain and f"ran {'under' if under > over else 'over'} the forecast" in plain


def test_evaluate_cli_shows_the_pointer(runner, model, held):
    """The tiny model's band on ten unseen specimens: the table ends with the pointer exactly when
    its coverage is outside 70-90 %."""
    r = runner.invoke(app, ["evaluate", str(held), "-m", str(model), "--context", "20", "--json"])
    assert r.exit_code == 0, r.stderr
    held_share = json.loads(r.stdout)["models"]["model"]["coverage"]["80"]
    assert ("durability calibrate on held-out" in r.stderr) == (not 0.7 <= held_share <= 0.9)


@pytest.mark.parametrize(
    "block, message",
    [
        ({"edges": [3], "centres": [2.0, 5.0], "factors": [1.0, -0.5]}, "not a positive factor"),
        ({"edges": [3], "centres": [2.0], "factors": [1.0, 2.0]}, "a centre and a factor per bin"),
        (
            {"edges": [5, 3], "centres": [2.0, 4.0, 6.0], "factors": [1.0, 1.0, 1.0]},
            "not increasing whole steps",
        ),
        ({"edges": [3], "centres": [5.0, 2.0], "factors": [1.0, 1.0]}, "not increasing steps"),
        ({"edges": [], "centres": [2.0], "factors": ["wide"]}, "not a finite number"),
        ({"edges": [], "centres": [2.0], "factors": [1.0], "eol": {"level": 0.8}}, "end-of-life record"),
        ({"edges": [], "centres": [2.0], "factors": [1.0], "eol": {"shift": "wide"}}, "not a finite number"),
    ],
)
def test_tampered_calibration_block_refused(model, tmp_path, block, message):
    from durability_cli.artifact import load_bundle, save_bundle
    from durability_cli.errors import ModelFileError

    bundle = load_bundle(model)
    bundle.summary["calibration"] = block
    bad = tmp_path / "bad.safetensors"
    save_bundle(bundle, bad)
    with pytest.raises(ModelFileError, match=message):
        load_bundle(bad)
