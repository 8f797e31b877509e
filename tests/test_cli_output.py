"""What a person sees: evaluate's table and JSON, --help, the train bar, inspect without torch."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from durability_cli.cli import app


def invoke(*args, env=None):
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


@pytest.fixture(scope="module")
def metrics(small, model, tmp_path_factory):
    """evaluate with two cut-offs per specimen and a threshold: (the run, the -o file's JSON)."""
    out = tmp_path_factory.mktemp("metrics") / "metrics.json"
    args = ["--origins", "2", "--threshold", "0.9", "--samples", "20", "-o", out, "--json"]
    r = invoke("evaluate", small, "-m", model, *args)
    assert r.exit_code == 0, r.stderr
    return r, json.loads(out.read_text())


def test_evaluate_table_has_every_block_and_no_arrays(metrics):
    r, report = metrics
    assert json.loads(r.stdout) == report  # --json: the same report on stdout as in the -o file
    assert len(report["models"]["model"]["rmse_by_step"]) > 1
    table = r.stderr
    for text in ("persistence", "exponential", "RMSE", "skill vs baseline", "coverage 90/80/50%"):
        assert text in table
    for text in ("End of life", "truth crosses", "truth censored", "forecast crosses", "EOL MAE"):
        assert text in table
    assert "Prognostics" in table and "α-λ accuracy" in table and "prognostic horizon" in table
    assert "rmse_by_step" not in table and "[" not in table  # no per-step arrays on the terminal
    eol = report["models"]["model"]["eol"]
    crossed = eol["both_cross"] + eol["only_true"]
    assert next(x for x in table.splitlines() if x.startswith("truth crosses")).split()[2] == str(crossed)


def test_evaluate_table_fits_80_columns_and_shows_new_metrics(metrics):
    report = json.loads(json.dumps(metrics[1]))
    report["models"]["model"]["eol"]["eol_coverage"] = 0.75  # a score the table does not know yet
    report["models"]["model"]["brier"] = {"0.5": 0.125, "0.9": 0.25}
    console = Console(width=80, record=True, file=io.StringIO())
    from durability_cli.render import render_evaluation

    render_evaluation(console, report)
    lines = console.export_text().splitlines()
    # 45 lines before evaluate showed the skill's spread: two rows and a line naming the baselines
    # 47 before the sides of the band's and the end-of-life interval's misses: a row each
    # 49 before the fifth column (the mixed-effects baseline): the rows only the model fills
    # (band, end-of-life interval) then go to a table of their own, five lines more; 56 since the
    # mean column is the mean path (session 48): the notes under the table follow the numbers;
    # 59 since the table says how many steps --max-step auto cut (session 51: 2 lines here)
    assert max(map(len, lines)) <= 80 and len(lines) <= 59
    assert "The models' bands and end-of-life intervals" in [x.strip() for x in lines]
    rows = {x.split("  ")[0]: x.split() for x in lines}
    assert rows["eol coverage"] == ["eol", "coverage", "75%"]  # blank for the baselines
    assert rows["brier 0.5/0.9"][2] == "0.125/0.25"
    assert "EOL MAE incl. censored, ≥" in rows  # labels are not wrapped at 80 columns


@pytest.mark.parametrize("width", [80, 200])
def test_evaluate_prints_its_table_once(metrics, width):
    """Where the table fits the console (wide) and where its models' rows go to a table of their
    own (80 columns): the title and each score's row appear once."""
    from durability_cli.render import render_evaluation

    console = Console(width=width, record=True, file=io.StringIO())
    render_evaluation(console, metrics[1])
    text = console.export_text()
    assert text.count("Backtest: ") == 1, text
    rows = [x.split("  ")[0] for x in text.splitlines()]
    assert rows.count("RMSE") == 1 and rows.count("truth crosses") == 1, text
    assert ("The models' bands and end-of-life intervals" in text) == (width == 80)


def test_evaluate_tells_which_side_the_misses_fall_on(metrics):
    """Each central band's rows are inside, under or over it, and the table shows the 80 % band's
    two misses and the end-of-life interval's, as the JSON has them."""
    r, report = metrics
    m = report["models"]["model"]
    for key, held in m["coverage"].items():
        assert held + m["below"][key] + m["above"][key] == pytest.approx(1.0)
    eol = m["eol"]
    missed = round(eol["interval_n"] * (1 - eol["interval_coverage"]))
    assert eol["interval_early"] + eol["interval_late"] == missed
    rows = {x.split("  ")[0]: x.split() for x in r.stderr.splitlines()}
    under, over = (f"{100 * m[k]['80']:.0f}" for k in ("below", "above"))
    assert rows["under/over 80% band"][-1] == f"{under}/{over}%"
    assert rows["misses early/late"][-1] == f"{eol['interval_early']}/{eol['interval_late']}"


def test_evaluate_old_json_file_is_refused_with_the_fix(small, model, tmp_path):
    out = tmp_path / "metrics.json"
    r = invoke("evaluate", small, "-m", model, "--context", "5", "--json", out)
    assert r.exit_code == 2 and r.stdout == ""
    fix = f"write them to a file with -o {out}"
    assert r.stderr == f"Error: --json is a switch now (the metrics on stdout); {fix}\n"
    assert not out.exists()
    r = invoke("evaluate", small, "-m", model, "--context", "5", "extra")
    assert r.exit_code == 2
    assert r.stderr == "Error: unexpected extra argument (extra); see durability evaluate --help\n"


@pytest.mark.parametrize("quiet", [False, True])
def test_evaluate_on_a_terminal(small, model, monkeypatch, capsys, quiet):
    """stdout a terminal (a pty, as a person runs it): the table on stderr and nothing on stdout;
    with -q no table, and the JSON on stdout instead."""
    import threading

    from durability_cli.cli import main

    leader, follower = pty.openpty()
    shown = []

    def read():  # drain the terminal as it is written (a full pty buffer would block the writer)
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the writing side closed
                return
            if not chunk:
                return
            shown.append(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    args = ["evaluate", str(small), "-m", str(model), "--context", "20", "--samples", "0", *["-q"] * quiet]
    with open(follower, "w") as terminal:
        monkeypatch.setattr(sys, "stdout", terminal)
        monkeypatch.setattr(sys, "argv", ["durability", *args])
        with pytest.raises(SystemExit) as done:
            main()
        terminal.flush()
    reader.join(timeout=30)
    os.close(leader)
    assert done.value.code == 0
    table = capsys.readouterr().err
    if quiet:
        assert table == "" and json.loads(b"".join(shown))["n_specimens"] == 10
    else:
        assert shown == [] and "Backtest: 10 specimens, 1 cut-off each" in table and "persistence" in table


HELP_ENV = {"COLUMNS": "250", "TERMINAL_WIDTH": "250"}


@pytest.mark.parametrize(
    "command",
    [
        ["train"],
        ["tune"],
        ["forecast"],
        ["evaluate"],
        ["schema"],
        ["inspect"],
        ["plot", "forecast"],
        ["plot", "history"],
    ],
)
def test_help_says_what_goes_where(command):
    r = invoke(*command, "--help", env=HELP_ENV)
    assert r.exit_code == 0
    options = [x for x in r.stdout.splitlines() if " --" in x]  # (Typer types the arguments)
    for typed in ("<str>", "<int>", "<float>"):
        assert not any(typed in x for x in options), typed
    flags = [x for x in options if "<bool>" in x]
    assert all("--help" in x for x in flags), flags  # only Typer's own --help keeps its <bool>


def test_train_help_lists_choices_and_defaults():
    r = invoke("train", "--help", env=HELP_ENV)
    lines = {x.split()[1]: x for x in r.stdout.splitlines() if x.startswith("│ --")}
    for option, choices, default in [
        ("--cell", "<lstm|gru>", "lstm"),
        ("--loss", "<gaussian|mse|huber>", "gaussian"),
        ("--monotonic", "<none|decreasing|increasing>", "none"),
        ("--tf-schedule", "<constant|linear|exponential|inverse-sigmoid>", "constant"),
        ("--tf-unit", "<epoch|step>", "epoch"),
        ("--feedback", "<mean|sample>", "mean"),
    ]:
        assert choices in lines[option] and f"[default: {default}]" in lines[option], lines[option]
    assert "N" in lines["--hidden"].split() and "[default: residual]" in lines["--residual"]
    assert "Defaults:" not in r.stdout  # the old paragraph: each option shows its own now
    r = invoke("forecast", "--help", env=HELP_ENV)
    for text in ("<below|above>", "[default: below]", "<csv|parquet|jsonl>", "<auto|cpu|cuda[:N]>"):
        assert text in r.stdout, text
    r = invoke("--help", env=HELP_ENV)
    assert "--install-completion" in r.stdout and "--show-completion" in r.stdout


def test_choices_reach_the_library_as_plain_text(plan, model):
    r = invoke("forecast", plan, "-m", model, "--samples", "0", "--threshold", "0.9", "--direction", "ABOVE")
    assert r.exit_code == 0, r.stderr
    r = invoke("forecast", plan, "-m", model, "--direction", "sideways")
    said = " ".join(r.stderr.replace("│", "").split())  # Typer's framed box, unwrapped
    assert r.exit_code == 2 and "'sideways' is not one of 'below', 'above'" in said


def test_train_bar_fits_80_columns_with_elapsed_and_eta():
    from durability_cli.render import TrainProgress
    from durability_cli.training import EpochLog

    console = Console(width=80, record=True, file=io.StringIO(), force_terminal=True)
    bar = TrainProgress(console, epochs=1000)
    bar.start(0)
    bar.update(EpochLog(998, -12.3456, 0.0123456, 0.75, 0.7, 1.0, True))
    bar.stop()
    last = "epoch " + console.export_text().split("epoch ")[-1].rstrip("\n")
    assert len(last) <= 80 and "…" not in last, last
    assert last.startswith("epoch 998/1000") and "val RMSE 0.01235*" in last and "tf 0.75" in last
    assert last.split()[-2].count(":") == 2 and last.split()[-1].count(":") == 2  # elapsed, ETA


# -- inspect reads the header, not the weights: no torch -------------------------------------------
_INSPECT = """
import sys
from durability_cli.cli import main
sys.argv = ["durability", "inspect", sys.argv[1], "--json"]
try:
    main()
finally:
    print("torch" in sys.modules, file=sys.stderr)
"""


def test_inspect_never_imports_torch_and_shows_what_load_shows(model):
    from durability_cli import api

    r = subprocess.run([sys.executable, "-c", _INSPECT, model], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().splitlines()[-1] == "False"
    assert r.stdout == json.dumps(api.load(model).describe(str(model)), indent=2) + "\n"


def test_inspect_of_damaged_weights_shows_the_metadata_and_forecast_refuses(tmp_path, model, plan):
    raw = bytearray(Path(model).read_bytes())
    raw[-4:] = b"\x00\x00\xc0\x7f"  # the last float32 weight becomes NaN
    bad = tmp_path / "nan.safetensors"
    bad.write_bytes(bytes(raw))
    assert invoke("inspect", bad).exit_code == 0
    r = invoke("forecast", plan, "-m", bad)
    assert r.exit_code == 2 and "holds NaN or infinite weights" in r.stderr


def test_evaluate_s_tables_name_the_id_and_time_columns_as_the_table_does(small, runner, tmp_path):
    """--per-series and --backtest-out called them `specimen` and `time` whatever the table
    called them, so they joined neither the table nor the forecast; a name a column of theirs
    already has (an id column called `model`) keeps theirs."""
    import pandas as pd

    import durability_cli as dur

    # a name one of evaluate's tables has for another column keeps `specimen` in all of them
    # (`model` was the id in the specimens table, beside per-series tables where it is the model)
    for ids, times, want_id in (
        ("unit", "cycle", "unit"),
        ("model", "cycle", "specimen"),
        ("lead", "cycle", "specimen"),
    ):
        table = pd.read_csv(small).rename(columns={"specimen_id": ids, "time": times})
        data, model = tmp_path / f"{ids}.csv", tmp_path / f"{ids}.safetensors"
        table.to_csv(data, index=False)
        args = ["--id-col", ids, "--epochs", "1", "--hidden", "4", "--layers", "1", "--ensemble", "1"]
        r = runner.invoke(app, ["train", str(data), "-o", str(model), *args, "--no-trend-line", "-q"])
        assert r.exit_code == 0, r.stderr
        per, points = tmp_path / f"{ids}_per.csv", tmp_path / f"{ids}_points.csv"
        args = ["--context", "30", "--samples", "0", "--per-series", str(per), "--backtest-out", str(points)]
        r = runner.invoke(app, ["evaluate", str(data), "-m", str(model), *args, "-q"])
        assert r.exit_code == 0, r.stderr
        per, points = pd.read_csv(per), pd.read_csv(points)
        assert want_id in per.columns and want_id in points.columns and times in points.columns
        assert "time" not in points.columns
        own = points[points["model"] == "model"]
        joined = own.merge(table.rename(columns={ids: want_id}), on=[want_id, times])
        assert len(joined) == len(own) == 10 * 10  # every point found its measured row
        assert (joined["y_true"] == joined["durability"]).all()
        assert set(per.loc[per["model"] == "model", want_id]) == set(table[ids])
        python = dur.load(model).evaluate(table, context=30, samples=0)
        assert want_id in python.specimens.columns and want_id in python.backtest.columns
    # a table without an id column (one specimen): forecast writes none, evaluate `specimen`
    one = pd.read_csv(small)
    one = one[one.specimen_id == "C001"].drop(columns="specimen_id")
    data, model = tmp_path / "one.csv", tmp_path / "one.safetensors"
    one.to_csv(data, index=False)
    r = runner.invoke(app, ["train", str(data), "-o", str(model), "--epochs", "1", "--ensemble", "1", "-q"])
    assert r.exit_code == 0, r.stderr
    r = runner.invoke(
        app, ["evaluate", str(data), "-m", str(model), "--context", "30", "--backtest-out", "-", "-q"]
    )
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith("specimen,origin,time,")


def test_evaluate_s_tables_are_written_to_forecast_s_digits_and_blank_past_the_horizon(
    small, runner, tmp_path
):
    """--backtest-out wrote lead = 0.019999999999999997 and y_pred with 16 digits, and `inf` for
    an end of life past the horizon, where forecast writes 6 digits and an empty cell (as
    evaluate did itself for dates)."""
    import pandas as pd

    table = pd.read_csv(small)
    table["time"] = table["time"] * 0.01 + 0.07  # hundredths: their differences are not exact
    data, model = tmp_path / "hundredths.csv", tmp_path / "m.safetensors"
    table.to_csv(data, index=False)
    args = ["--epochs", "1", "--hidden", "4", "--layers", "1", "--ensemble", "1", "--no-trend-line", "-q"]
    r = runner.invoke(app, ["train", str(data), "-o", str(model), *args])
    assert r.exit_code == 0, r.stderr
    points, per = tmp_path / "points.csv", tmp_path / "per.csv"
    args = ["--context", "30", "--samples", "20", "--threshold", "0.5", "--per-series", str(per)]
    r = runner.invoke(
        app, ["evaluate", str(data), "-m", str(model), *args, "--backtest-out", str(points), "-q"]
    )
    assert r.exit_code == 0, r.stderr
    text = pd.read_csv(points, dtype=str, keep_default_na=False)

    def digits(cell: str) -> int:
        return len(cell.lstrip("-").split("e")[0].replace(".", "").lstrip("0"))

    assert max(map(digits, text["y_pred"])) == 6 and max(map(digits, text["q0.9"])) <= 6
    lead = text["lead"].astype(float)  # steps of 0.005: to the digits the times were typed with
    assert max(map(digits, text["lead"])) <= 3 and (lead == lead.round(3)).all()
    assert set(text["y_true"]) <= set(table["durability"].astype(str))  # the measured values as typed
    eol = text[["eol_time", "eol_p10", "eol_p50", "eol_p90"]].to_numpy().ravel()
    assert "inf" not in set(eol) and "" in set(eol)  # past the horizon: empty, as forecast writes it
    assert max(map(digits, pd.read_csv(per, dtype=str, keep_default_na=False)["rmse"])) <= 6

    def score(*more: str):
        r = runner.invoke(app, ["evaluate", str(data), "-m", str(model), *more, "-q"])
        assert r.exit_code == 0, r.stderr
        return r.stdout

    score(*args, "--precision", "0", "--backtest-out", str(points))  # 0: every digit
    assert max(map(digits, pd.read_csv(points, dtype=str)["y_pred"])) > 6
    # --output-format, as forecast's: the message for a name without a format said to pass it,
    # and evaluate had no such option
    out = score(*args[:4], "--backtest-out", "-", "--output-format", "jsonl")
    first = json.loads(out.splitlines()[0])
    assert first["specimen_id"] == "C001" and first["y_pred"] == round(first["y_pred"], 6)


def test_quantile_columns_come_in_order_of_level_each_once(plan, model, runner):
    """--quantiles 0.975,0.025,0.5,0.5 wrote p97_5, p2_5, p50 in the order given, p50 twice over."""
    levels = ["--samples", "20", "--quantiles", "0.975,0.025,0.5,0.5", "-q"]
    r = runner.invoke(app, ["forecast", str(plan), "-m", str(model), *levels])
    assert r.exit_code == 0, r.stderr
    header = r.stdout.splitlines()[0].split(",")
    bands = [c for c in header if c.startswith("durability_p")]
    assert bands == ["durability_p2_5", "durability_p50", "durability_p97_5"]


def test_evaluate_warns_of_specimens_it_left_out_or_the_model_trained_on(small, model, tmp_path):
    """The model trained on `small`'s 10 specimens. Scored: 2 of them under their own names, 7
    renamed, and one renamed and cut to 12 rows, which a 20-row warm-up leaves nothing to score.
    evaluate says both, on stderr, in the JSON report and through the Python API; a table of only
    new names with every specimen scored gets neither. (Before, it scored training specimens as
    if new, and left a short one out, without a word.)"""
    import pandas as pd

    import durability_cli

    df = pd.read_csv(small)
    ids = sorted(df.specimen_id.unique())
    df["specimen_id"] = df.specimen_id.where(df.specimen_id.isin(ids[:2]), "new_" + df.specimen_id)
    short = f"new_{ids[-1]}"
    df = df[(df.specimen_id != short) | (df.groupby("specimen_id").cumcount() < 12)]
    df.to_csv(tmp_path / "mixed.csv", index=False)
    r = invoke("evaluate", tmp_path / "mixed.csv", "-m", model, "--context", "20", "--samples", "0", "--json")
    assert r.exit_code == 0, r.output
    said = " ".join(r.stderr.split())
    left = (
        f"1 of 10 specimen(s) are not scored, with no measured durability after the first 20 rows ({short})"
    )
    seen = f"2 of the 9 specimen(s) scored have the names of specimens the model trained or validated on ({ids[0]}, {ids[1]})"
    assert f"Warning: {left}; lower --context to score them" in said
    assert f"Warning: {seen}" in said
    report = json.loads(r.stdout)
    assert [w[: len(x)] for w, x in zip(report["warnings"], (left, seen), strict=True)] == [left, seen]
    api = durability_cli.load(model).evaluate(str(tmp_path / "mixed.csv"), context=20, samples=0)
    assert any(w.startswith(left) for w in api.warnings) and any(w.startswith(seen) for w in api.warnings)

    df[df.specimen_id.str.startswith("new_") & (df.specimen_id != short)].to_csv(
        tmp_path / "new.csv", index=False
    )
    r = invoke("evaluate", tmp_path / "new.csv", "-m", model, "--context", "20", "--samples", "0", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["warnings"] == [] and "Warning" not in r.stderr, r.output


def test_evaluate_says_why_the_mixed_effects_baseline_is_missing(coating_slice, tmp_path):
    """A model trained on 2 specimens has no mixed-effects path (a population needs 3): evaluate
    says so instead of leaving the column out without a word; with --no-baselines it says
    nothing."""
    model = tmp_path / "two.safetensors"
    tiny = ["--epochs", "1", "--hidden", "8", "--layers", "1", "--ensemble", "1", "--no-trend-line"]
    r = invoke("train", coating_slice(2, 30), "-o", model, *tiny, "-q")
    assert r.exit_code == 0, r.output
    data = coating_slice(3, 30, first=5)
    r = invoke("evaluate", data, "-m", model, "--context", "10", "--samples", "0", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert "mixed_effects" not in report["models"]
    assert any(
        w.startswith("no mixed_effects baseline: the model file has no path fitted")
        for w in report["warnings"]
    )
    assert "Warning: no mixed_effects baseline" in r.stderr
    r = invoke("evaluate", data, "-m", model, "--context", "10", "--samples", "0", "--json", "--no-baselines")
    assert r.exit_code == 0 and json.loads(r.stdout)["warnings"] == [], r.output
