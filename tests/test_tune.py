"""durability tune (settings search) and the baselines train scores beside the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomllib

from durability_cli.cli import app

TINY = ["--epochs", "2", "--folds", "2", "--budget", "5m"]
DEVICE_B = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "device_b.csv"


@pytest.fixture(scope="session")
def tiny_table(coating_slice):
    """6 coating specimens x 24 rows: a trial of 2 folds x 2 epochs takes about a second."""
    return coating_slice(6, 24)


def test_tune_writes_a_config_train_accepts_and_resumes(runner, tiny_table, tmp_path):
    import optuna

    from durability_cli import load
    from durability_cli.tuning import DEFAULT_TRIAL

    out, db, model = tmp_path / "best.toml", tmp_path / "tune.db", tmp_path / "best.safetensors"
    args = ["tune", str(tiny_table), "-o", str(out), "--storage", str(db), "--static", "material", *TINY]
    first = runner.invoke(app, [*args, "--trials", "2", "--model-out", str(model)])
    assert first.exit_code == 0, first.stderr
    assert "trial 0  complete" in first.stderr and "trial 1 " in first.stderr
    assert "Trials of study durability-" in first.stderr and "(defaults, trial 0: " in first.stderr
    assert f"Trained {model}" in first.stderr
    config = tomllib.loads(out.read_text())
    assert config["data"] == {"static": "material"}
    assert config["train"]["epochs"] == 2
    assert load(model).model_config.cell == config["model"]["cell"]
    # each trial trained one model per fold; the config leaves the ensemble to train's default,
    # which --model-out (a small table) and `train --config` below resolve to 5 members
    assert "ensemble" not in config["train"]
    assert load(model).summary["ensemble_auto"].startswith("auto: 5 members")

    # the same storage again: the study continues (3 trials), its trial 0 is still the defaults
    again = runner.invoke(app, [*args, "--trials", "1", "--quiet"])
    assert again.exit_code == 0, again.stderr
    assert again.stderr == ""
    (study,) = optuna.get_all_study_summaries(f"sqlite:///{db}")
    trials = optuna.load_study(study_name=study.study_name, storage=f"sqlite:///{db}").trials
    assert len(trials) == 3
    assert trials[0].params == DEFAULT_TRIAL

    retrained = tmp_path / "m.safetensors"
    r = runner.invoke(app, ["train", str(tiny_table), "--config", str(out), "-o", str(retrained), "-q"])
    assert r.exit_code == 0, r.stderr
    assert load(retrained).model_config.hidden == config["model"]["hidden"]
    assert load(retrained).summary["ensemble"]["members"] == 5
    assert load(retrained).schema.static == ("material",)


def test_the_config_leaves_the_length_to_train_unless_tune_is_given_one(
    runner, tiny_table, tmp_path, monkeypatch
):
    """Without --epochs the trials train SEARCH_EPOCHS (100; 3 here, to be quick) with patience
    30, since the pruner compares them epoch by epoch, and the config leaves the length to
    train's automatic rule, which sizes the run to the table as plain `train` does; with
    --epochs N (the test above) N is written, with the trials' patience. The defaults' batch is
    written as 0, so that train picks it as plain `train` does."""
    from durability_cli import tuning

    monkeypatch.setattr(tuning, "SEARCH_EPOCHS", 3)
    out = tmp_path / "best.toml"
    args = ["tune", str(tiny_table), "-o", str(out), "--static", "material", "--folds", "2", "--trials", "1"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.stderr
    assert "Trials of study durability-" in r.stderr and "-epochs3" in r.stderr
    text = out.read_text()
    assert (
        "# no epochs / patience: train sizes the run to the table (auto); each trial trained up to 3 " in text
    )
    config = tomllib.loads(text)
    assert not {"epochs", "patience"} & set(config["train"])
    assert config["train"]["seed"] == 0
    # the one trial is the defaults': its batch is train's automatic one, written as 0 (auto)
    assert config["train"]["batch_size"] == 0

    trial = {"epochs": 200, "patience": 30, "lr": 0.002}
    assert tuning.TuneConfig(epochs=200).written(trial) == trial
    assert tuning.TuneConfig(patience=50).written(trial) == {"patience": 30, "lr": 0.002}
    assert tuning.TuneConfig().written(trial) == {"lr": 0.002}


def test_a_fixed_length_is_refused_as_a_train_option(tiny_table):
    """The trials' length is tune's own setting (its study name and pruner follow it)."""
    from durability_cli.api import read
    from durability_cli.errors import InputError
    from durability_cli.tuning import TuneConfig, tune

    table = read(str(tiny_table))
    with pytest.raises(InputError, match="give epochs and patience as tune's own setting, not as a fixed"):
        tune(table, TuneConfig(), fixed={"epochs": 50, "patience": 10})


def test_tune_api_is_never_worse_than_the_defaults(tiny_table):
    import durability_cli as dur

    seen = []
    result = dur.tune(pd.read_csv(tiny_table), budget="5m", trials=2, folds=2, epochs=2, on_trial=seen.append)
    assert [row["number"] for row in seen] == [0, 1]
    assert result.best_score <= result.default_score
    assert list(result.trials["number"]) == [0, 1]
    assert set(result.best_params) >= {"cell", "hidden", "lr", "epochs"}


def test_where_the_defaults_win_the_settings_written_are_train_s_defaults(tiny_table):
    """Trial 0 scores the defaults with the line and the latent off (a fold cannot run auto's own
    choice); when it wins, the settings written are the defaults as `train` has them (auto), not
    trial 0's (which would switch the automatic choices off), and to_toml() keeps the columns the
    search was given."""
    import durability_cli as dur

    result = dur.tune(pd.read_csv(tiny_table), budget="5m", trials=1, folds=2, epochs=1, target="durability")
    assert result.best_score == result.default_score
    assert result.best_params["trend_line"] == "auto" and result.best_params["latent"] == "auto"
    text = result.to_toml()
    assert '[data]\ntarget = "durability"' in text and 'trend_line = "auto"' in text


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--budget", "ten minutes"],
            "Error: --budget must be a duration such as 90s, 10m or 1h, got 'ten minutes'",
        ),
        (["--folds", "1"], "Error: --folds must be at least 2, got 1"),
        (["--epochs", "-1"], "Error: --epochs must be between 0 and 1000000, got -1"),
        (["--check", "1.5"], "--check must be a share in [0, 1), e.g. 0.2, got 1.5"),
        (["--check", "0.6"], "6 specimen(s) leave too few to search after holding back 4 for the check"),
        (["--folds", "6"], "cannot make 6 folds with specimens left to train on; lower --folds (at most 5)"),
        (
            ["--budget", "1s", "--epochs", "1000"],
            "no trial completed within the budget (1 s); a trial trains 3 models",
        ),
        # a CSV given as the storage: SQLAlchemy's "file is not a database", exit 1, before
        (
            ["--storage", str(Path(__file__).parents[1] / "sample_data" / "ball.csv")],
            "ball.csv: is not a search's storage (a SQLite file that tune wrote); give a new file name",
        ),
    ],
)
def test_tune_bad_options(runner, tiny_table, tmp_path, args, message):
    out = tmp_path / "best.toml"
    r = runner.invoke(app, ["tune", str(tiny_table), "-o", str(out), *args])
    assert r.exit_code == 2
    assert message in r.stderr
    assert not out.exists()


def test_parse_duration():
    from durability_cli.tuning import parse_duration

    assert parse_duration("90s") == 90
    assert parse_duration("10m") == 600
    assert parse_duration("1h30m") == 5400
    assert parse_duration("45") == 45


# -- baselines in train's summary ------------------------------------------------------------------
def test_train_warns_when_persistence_beats_the_model(runner, tmp_path):
    # every specimen holds its own constant durability: persistence is exact, the model is not
    rows = [
        {"specimen_id": f"S{i}", "time": t, "temperature": 20.0 + t % 3, "durability": 0.5 + 0.05 * i}
        for i in range(8)
        for t in range(20)
    ]
    data = tmp_path / "flat.csv"
    pd.DataFrame(rows).to_csv(data, index=False)
    out = tmp_path / "m.safetensors"
    args = ["train", str(data), "-o", str(out), "--epochs", "2", "--hidden", "8", "--layers", "1"]
    r = runner.invoke(app, [*args, "--ensemble", "1"])
    assert r.exit_code == 0, r.stderr
    assert "baselines" in r.stderr
    assert "Warning: the persistence baseline (validation RMSE 0) beats the model" in r.stderr

    from durability_cli import load

    baselines = load(out).summary["val_baseline_rmse"]
    assert set(baselines) == {"persistence", "linear", "exponential", "mixed_effects"}
    assert baselines["persistence"] == 0.0
    assert np.isfinite(baselines["exponential"])
    # the default on 8 specimens, an ensemble: its members, each on its own validation specimens
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.stderr
    said = " ".join(r.stderr.split())
    assert "Warning: the persistence baseline (validation RMSE 0) beats the 5 members on their own" in said
    block = load(out).summary["ensemble"]
    assert [b["persistence"] for b in block["val_baseline_rmse"]] == [0.0] * 5
    assert "mean " + format(sum(block["best_val_rmse"]) / 5, ".4g") in said


def test_inspect_shows_the_baselines(runner, model):
    r = runner.invoke(app, ["inspect", str(model)])
    assert r.exit_code == 0, r.stderr
    assert "baselines" in r.stderr and "exponential" in r.stderr


def test_a_latent_trial_round_trips_through_the_config(runner, tiny_table, tmp_path):
    """The search space holds the per-specimen latent: a trial that takes it writes a config whose
    model `train --config` trains with the latent and its prior."""
    import optuna

    from durability_cli import load
    from durability_cli.api import configs
    from durability_cli.tuning import DEFAULT_TRIAL, TuneResult, suggest

    trial = optuna.trial.FixedTrial({**DEFAULT_TRIAL, "latent": 2, "latent_prior": 0.5})
    options = suggest(trial, median_length=24, longest=24) | {"epochs": 1}
    model_cfg, _ = configs(options)
    assert (model_cfg.latent, model_cfg.latent_prior) == (2, 0.5)
    assert suggest(optuna.trial.FixedTrial(DEFAULT_TRIAL), 24, 24)["latent"] == 0  # the defaults: off
    result = TuneResult(options, 0.1, 0.2, pd.DataFrame(), "s", 2, 5)
    config = tmp_path / "best.toml"
    config.write_text(result.to_toml({"static": "material"}))
    model = tmp_path / "m.safetensors"
    r = runner.invoke(app, ["train", str(tiny_table), "--config", str(config), "-o", str(model), "-q"])
    assert r.exit_code == 0, r.stderr
    assert (load(model).model_config.latent, load(model).model_config.latent_prior) == (2, 0.5)


def test_the_loss_is_searched_only_with_point_losses(runner, tiny_table, tmp_path):
    """By default every trial keeps the Gaussian loss (the band and end-of-life intervals stay);
    --point-losses searches mse and huber too, in a study of its own."""
    import optuna

    from durability_cli.tuning import DEFAULT_TRIAL, default_trial, suggest

    mse = optuna.trial.FixedTrial({**DEFAULT_TRIAL, "loss": "mse"})
    assert suggest(mse, 24, 24)["loss"] == "gaussian"  # not asked: the trial's mse is never read
    assert suggest(mse, 24, 24, point_losses=True)["loss"] == "mse"
    assert "loss" not in default_trial() and default_trial(True)["loss"] == "gaussian"

    db = tmp_path / "tune.db"
    args = [
        "tune",
        str(tiny_table),
        "--storage",
        str(db),
        "--static",
        "material",
        "--trials",
        "2",
        "-q",
        *TINY,
    ]
    for extra in ([], ["--point-losses"]):
        r = runner.invoke(app, [*args, *extra, "-o", str(tmp_path / f"best{len(extra)}.toml")])
        assert r.exit_code == 0, r.stderr
    studies = {s.study_name: s for s in optuna.get_all_study_summaries(f"sqlite:///{db}")}
    assert len(studies) == 2 and sum(name.endswith("-points") for name in studies) == 1
    for name in studies:
        trials = optuna.load_study(study_name=name, storage=f"sqlite:///{db}").trials
        searched = {"loss" in t.params for t in trials}
        assert searched == {name.endswith("-points")}  # the loss is a parameter only there
        assert trials[0].params == default_trial(name.endswith("-points"))


@pytest.mark.parametrize(
    "specimens, best, noted",
    [(23, 0.065, True), (60, 0.065, False), (23, 0.092, False)],
)
def test_a_small_tables_winner_comes_with_a_caution(specimens, best, noted):
    """Below 50 specimens, a winner that beats the defaults is shown with the advice to check it
    on specimens the search never saw (on device_b it was 15-22 % worse on new devices)."""
    import io

    from rich.console import Console

    from durability_cli.render import render_tune_trials
    from durability_cli.tuning import TuneResult

    trials = pd.DataFrame({"number": [0, 1], "state": "COMPLETE", "rmse": [0.092, best], "seconds": 1.0})
    result = TuneResult({}, best, 0.092, trials, "s", 3, 3, specimens=specimens)
    out = io.StringIO()
    render_tune_trials(Console(file=out, width=200), result, "best.toml")
    assert ("compare both on specimens the search never saw" in out.getvalue()) == noted
    assert (f"the folds hold {specimens} specimens" in out.getvalue()) == noted


def test_a_held_back_check_compares_the_best_with_the_defaults(runner, tiny_table, tmp_path):
    """--check holds specimens back from the whole search, scores the best settings and the
    defaults on them, and writes the defaults unless the best wins there."""
    import durability_cli as dur
    from durability_cli.tuning import DEFAULT_TRIAL

    table = pd.read_csv(tiny_table)
    result = dur.tune(table, budget="5m", trials=3, folds=2, epochs=2, check=0.2, static=["material"])
    check = result.check
    assert check["specimens"] == 1 and result.specimens == 5  # round(0.2 x 6) held back, 5 searched
    assert check["kept_defaults"] == (check["defaults"] <= check["best"])
    if check["kept_defaults"]:
        assert {k: result.best_params[k] for k in ("cell", "hidden", "layers", "lr")} == {
            k: DEFAULT_TRIAL[k] for k in ("cell", "hidden", "layers", "lr")
        }
    assert "held back from the search" in result.notes()[0]

    out = tmp_path / "best.toml"
    args = [
        "tune",
        str(tiny_table),
        "-o",
        str(out),
        "--static",
        "material",
        "--trials",
        "2",
        "--check",
        "0.2",
        *TINY,
    ]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.stderr
    assert "on 1 specimen(s) held back from the search" in r.stderr
    kept = "the defaults were kept" in r.stderr
    assert kept == ("the defaults written to" in r.stderr)
    header = out.read_text().splitlines()[:3]
    assert any("held back from the search" in line for line in header)
    assert tomllib.loads(out.read_text())["model"]["cell"] in ("lstm", "gru")


def test_a_trial_s_trend_reaches_the_config_and_the_model_it_trains(runner, tiny_table, tmp_path):
    """The search space holds the measured trend as one parameter, off (the defaults' trial), an
    input (`--trend`) or the line each step starts from (`--trend-line`): a trial's choice is
    written to the config, and `train --config` trains a model that reads it."""
    import optuna

    from durability_cli import load
    from durability_cli.api import configs
    from durability_cli.tuning import DEFAULT_TRIAL, TuneResult, suggest

    def chosen(trend):
        o = suggest(optuna.trial.FixedTrial({**DEFAULT_TRIAL, "trend": trend}), 24, 24)
        return o["trend"], o["trend_line"]

    assert DEFAULT_TRIAL["trend"] == "off" and chosen("off") == (False, False)
    assert chosen("input") == (True, False) and chosen("line") == (False, True)
    for trend, line in (("input", "trend = true"), ("line", "trend_line = true")):
        options = suggest(optuna.trial.FixedTrial({**DEFAULT_TRIAL, "trend": trend}), 24, 24) | {"epochs": 1}
        config = tmp_path / f"{trend}.toml"
        config.write_text(
            TuneResult(options, 0.1, 0.2, pd.DataFrame(), "s", 2, 5).to_toml({"static": "material"})
        )
        assert line in config.read_text()
        model = tmp_path / f"{trend}.safetensors"
        r = runner.invoke(app, ["train", str(tiny_table), "--config", str(config), "-o", str(model), "-q"])
        assert r.exit_code == 0, r.stderr
        got = load(model).model_config
        assert configs(options)[0].trend_line == (trend == "line")
        assert (got.trend, got.trend_line) == (trend == "input", trend == "line")


def test_the_check_scores_what_train_config_trains_and_how_sure_it_is(coating_slice):
    """--check backtests the best settings and the defaults as `train --config` trains them (the
    automatic ensemble on a small table, not its first member) on the held-back specimens, and
    says how surely the best beats the defaults there."""
    import durability_cli as dur
    from durability_cli.api import Columns
    from durability_cli.tuning import _check, _hold_back

    full = dur.read(pd.read_csv(coating_slice(12, 24)), columns=Columns(static=("material",)))
    searched, held = _hold_back(full, 0.25, seed=0)
    assert len(held) == 3 and not set(searched.frame["specimen_id"]) & set(
        full.frame["specimen_id"].unique()[held]
    )
    best = {"epochs": 2, "hidden": 8, "layers": 1}
    defaults = {"epochs": 2}
    check = _check(searched, full, held, best, defaults, context=8)
    # the same trainings through the API, backtested on the held-back specimens
    table = searched.frame
    held_table = full.frame[full.frame["specimen_id"].isin(full.frame["specimen_id"].unique()[held])]
    for name, options in (("best", best), ("defaults", defaults)):
        model = dur.train(table, static=["material"], **options)
        assert model.summary["ensemble"]["members"] == 5  # auto: a small table gets 5 members
        rmse = model.evaluate(held_table, context=8, samples=0, baselines=False).report["models"]["model"][
            "rmse"
        ]
        assert check[name] == pytest.approx(rmse, rel=1e-9), name
    spread = check["skill_spread"]
    assert (
        spread["specimens"] == 3 and spread["low"] <= 1 - check["best"] / check["defaults"] <= spread["high"]
    )
    assert _check(searched, full, held, defaults, defaults, context=8)["skill_spread"] is None


def test_a_fold_of_a_fixed_ensemble_scores_its_members_mean_path(coating_slice):
    """With `ensemble` fixed, a trial's fold is scored on the ensemble's forecast (its members'
    mean path, as `evaluate --samples 0` scores it), not on its first member; one model scores
    as before (training.free_run_rmse)."""
    import durability_cli as dur
    from durability_cli.data import to_series
    from durability_cli.training import free_run_rmse
    from durability_cli.tuning import held_out_rmse

    df = pd.read_csv(coating_slice(10, 24))
    ids = sorted(df["specimen_id"].unique())
    fit, new = df[df["specimen_id"].isin(ids[:7])], df[df["specimen_id"].isin(ids[7:])]
    options = dict(static=["material"], epochs=2, hidden=8, layers=1, val_context=8)
    ens = dur.train(fit, ensemble=3, **options)
    series = to_series(dur.read(new, schema=ens.schema))
    score = held_out_rmse(ens.bundle, series, 8)
    backtest = ens.evaluate(new, context=8, samples=0, baselines=False, bounds=(None, None))
    assert score == pytest.approx(backtest.report["models"]["model"]["rmse"], rel=1e-6)
    from durability_cli.data import to_tensors

    first = ens.bundle.members[0]
    alone = free_run_rmse(first.model, to_tensors(series, first.scaler), first.scaler, 8)[0]
    assert abs(score - alone) > 1e-6  # not the first member's
    single = dur.train(fit, ensemble=1, **options)
    assert (
        held_out_rmse(single.bundle, series, 8)
        == free_run_rmse(
            single.bundle.model, to_tensors(series, single.bundle.scaler), single.bundle.scaler, 8
        )[0]
    )


def test_a_share_of_each_specimen_scores_the_search_and_reaches_the_config(runner, tmp_path):
    """``tune --val-context-frac``: on the measured Device-B table (9, 17 or 33 rows a device)
    the trials validate and are scored from that share of each device's rows, the validation's
    row count is no longer searched, and the config trains a model that validates the same way;
    a fold's score is what `evaluate --context-frac` gives the same model."""
    import optuna

    import durability_cli as dur
    from durability_cli.config import RowShare
    from durability_cli.data import to_series
    from durability_cli.tuning import held_out_rmse

    data = str(DEVICE_B)
    out, db, model = tmp_path / "best.toml", tmp_path / "tune.db", tmp_path / "m.safetensors"
    args = ["tune", data, "--target", "power_drop", "-o", str(out), "--storage", str(db), *TINY]
    r = runner.invoke(app, [*args, "--trials", "3", "--val-context-frac", "0.34"])
    assert r.exit_code == 0, r.stderr
    said = " ".join(r.stderr.split())
    assert "specimen folds after 0.34 of each specimen's rows" in said
    config = tomllib.loads(out.read_text())
    assert config["train"]["val_context_frac"] == 0.34 and not config["train"].get("val_context")
    assert "after 0.34 of each specimen's rows" in out.read_text().splitlines()[1]
    (study,) = optuna.get_all_study_summaries(f"sqlite:///{db}")
    assert study.study_name.endswith("-frac0.34")
    trials = optuna.load_study(study_name=study.study_name, storage=f"sqlite:///{db}").trials
    assert all("val_context" not in t.params for t in trials) and len(trials) == 3
    r = runner.invoke(
        app, ["train", data, "--target", "power_drop", "--config", str(out), "-o", str(model), "-q"]
    )
    assert r.exit_code == 0, r.stderr
    assert dur.load(model).summary["val_context_frac"] == 0.34
    # a share outside [0, 1): refused before any trial
    r = runner.invoke(app, [*args, "--val-context-frac", "1.5"])
    assert r.exit_code == 2 and "--val-context-frac must be in [0, 1)" in r.stderr

    df = pd.read_csv(DEVICE_B)
    ids = sorted(df["specimen_id"].unique())
    fit, new = df[df["specimen_id"].isin(ids[::2])], df[~df["specimen_id"].isin(ids[::2])]
    ens = dur.train(fit, target="power_drop", ensemble=2, epochs=2, hidden=8, layers=1, val_context_frac=0.34)
    series = to_series(dur.read(new, schema=ens.schema))
    backtest = ens.evaluate(new, context_frac=0.34, samples=0, baselines=False, bounds=(None, None))
    score = held_out_rmse(ens.bundle, series, RowShare(0.34))
    assert score == pytest.approx(backtest.report["models"]["model"]["rmse"], rel=1e-6)


def test_two_jobs_train_a_trial_s_folds_at_once_with_the_same_scores(tiny_table, tmp_path):
    """tune --jobs 2: this process trains fold 1 of each trial alone, then fold 2 while a second
    process trains fold 3. The folds' scores are the ones one process finds, trial for trial (the
    pruner hears every epoch in the same order, fold 3's once fold 2 is done), and the study
    records how many processes trained each trial."""
    import optuna

    import durability_cli as dur

    found = {}
    for jobs in (1, 2):
        db = tmp_path / f"j{jobs}.db"
        result = dur.tune(
            pd.read_csv(tiny_table), budget="5m", trials=3, folds=3, epochs=2, jobs=jobs, storage=db
        )
        rows = result.trials.itertuples()
        found[jobs] = [(r.number, r.state, None if np.isnan(r.rmse) else r.rmse) for r in rows]
        study = optuna.load_study(study_name=result.study, storage=f"sqlite:///{db}")
        processes = [t.user_attrs.get("processes", 1) for t in study.trials]
        assert processes == [jobs] * 3
    assert found[1] == found[2]
    assert found[1][0][1] == "COMPLETE" and found[1][0][2] > 0


def test_an_interrupted_search_says_so_in_one_line(runner, tiny_table, tmp_path, monkeypatch, capfd):
    """Ctrl-C in a trial: Optuna logged the trial as failed with the interrupt's whole traceback
    (50 lines through training) before the command's one line and exit 130."""
    from durability_cli import tuning

    calls = []

    def stopped(*args, **kwargs):  # a fold scored, then Ctrl-C outside training (scoring a fold)
        calls.append(1)
        if len(calls) > calls_before_stop:
            raise KeyboardInterrupt
        return 0.1

    monkeypatch.setattr(tuning, "_fold_score", stopped)
    out, db = tmp_path / "best.toml", tmp_path / "t.db"
    args = ["tune", str(tiny_table), "-o", str(out), "--static", "material", *TINY, "--jobs", "1"]
    said = {}
    for calls_before_stop, storage in ((0, ["--storage", str(db)]), (2, ["--storage", str(db)]), (2, [])):
        calls.clear()
        r = runner.invoke(app, [*args, "--trials", "3", *storage])
        assert r.exit_code == 130, r.stderr
        said[calls_before_stop, bool(storage)] = " ".join(r.stderr.split()).partition("Error: ")[2]
        seen = capfd.readouterr()  # and nothing on the process's own stderr either
        assert "Traceback" not in seen.err and "failed with" not in seen.err
        assert not out.exists()
    # it said plain "Interrupted." where the interrupt came outside a trial's training
    assert said[0, True] == (
        f"tune interrupted; no trial had completed; running the same command again starts the search in {db}"
    )
    assert said[2, True].startswith(f"tune interrupted; 1 completed trial(s) are kept in {db}: run the same")
    assert said[2, False].startswith(
        "tune interrupted; its 1 completed trial(s) are not kept: give --storage"
    )
