"""The per-specimen latent vector z (ModelConfig.latent): learned in training, fitted to a new
specimen's warm-up at forecast time, saved in the model file, used by every command."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from durability_cli import latent as latent_module
from durability_cli import training as training_module
from durability_cli.artifact import describe_bundle, load_bundle, save_bundle
from durability_cli.config import ModelConfig, TrainConfig
from durability_cli.data import fit_scaler, slice_tensors, to_series, to_tensors
from durability_cli.forecasting import ForecastConfig, forecast
from durability_cli.latent import fit_latent, fit_posterior
from durability_cli.model import FeedbackRNN
from durability_cli.render import latent_warnings
from durability_cli.schema import Schema, validate
from durability_cli.training import (
    _row_losses,
    _training_latent,
    free_run_rmse,
    rollout_loss,
    train,
    warmup_feed,
    warmup_lengths,
)

SCHEMA = Schema("specimen_id", "time", "durability", ("temperature",), ())


def decay_table(n: int, rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Exponential decay whose rate has a hidden per-specimen factor (lognormal, sd 0.4): the
    one thing a forecaster must read off the warm-up. Returns the table and the factors."""
    rng = np.random.default_rng(seed)
    factor = rng.lognormal(0.0, 0.4, n)
    t = np.arange(rows, dtype=float)
    temperature = rng.uniform(30, 50, (n, rows)).round(1)
    rate = 0.004 * factor[:, None] * np.exp((temperature - 40) / 20)  # per step
    dose = np.concatenate([np.zeros((n, 1)), np.cumsum(rate, axis=1)[:, :-1]], axis=1)
    y = np.exp(-dose) + rng.normal(0, 0.003, (n, rows))
    ids = np.repeat([f"S{i:03d}" for i in range(n)], rows)
    table = pd.DataFrame(
        {
            "specimen_id": ids,
            "time": np.tile(t, n),
            "temperature": temperature.ravel(),
            "durability": y.ravel(),
        }
    )
    return table, factor


@pytest.fixture(scope="module")
def latent_bundle():  # ~10 s on one core: the tests that use it are marked slow
    torch.manual_seed(0)
    table, _ = decay_table(32, 80, seed=0)
    ds = validate(table, SCHEMA, source="train")
    cfg = ModelConfig(trend_line=False, hidden=16, layers=1, latent=1)
    # trained for the 40-row warm-ups the tests fit z to: training fits z to the warm-ups it
    # draws (1..val_context rows) for half of each batch's specimens
    # one model, not train's default ensemble (5 members here, 5 x the time): the tests look at how
    # one model fits z
    return train(ds, cfg, TrainConfig(epochs=25, val_context=40, seed=0, patience=25, ensemble=1))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


@pytest.mark.slow
def test_fitted_z_orders_specimens_by_their_hidden_factor(latent_bundle):
    table, factor = decay_table(32, 80, seed=1)  # 32 specimens: a rank correlation of 16 is noisy
    ds = validate(table, SCHEMA, source="test")
    t = to_tensors(to_series(ds), latent_bundle.scaler)
    z = fit_latent(latent_bundle.model, t, torch.full((32,), 40))[:, 0].numpy()
    # z's sign is arbitrary: what matters is that it sorts the specimens as their factor does
    assert abs(spearman(z, factor)) >= 0.8


@pytest.mark.slow
def test_the_forecast_sets_each_specimen_beside_the_population(latent_bundle, monkeypatch):
    """A latent model's forecast also gives, per row, the population's forecast (z = 0, what the
    fit returns when a warm-up tells nothing) under the same conditions, and when it would cross
    the threshold: how much faster a specimen is forecast to decay than the population sorts the
    specimens by their hidden factor."""
    from durability_cli import forecasting

    table, factor = decay_table(32, 80, seed=1)
    pos = table.groupby("specimen_id").cumcount()
    plan = table.assign(durability=table["durability"].where(pos < 40))
    ds = validate(plan, SCHEMA, source="plan")
    result = forecast(latent_bundle, ds, ForecastConfig(samples=0, threshold=0.85))
    last = result.forecast.groupby("specimen_id").tail(1).set_index("specimen_id")
    start = table[pos == 39].set_index("specimen_id")["durability"]
    pace = (start - last["durability_mean"]) / (start - last["durability_population"])
    assert spearman(pace.to_numpy(), factor) >= 0.8
    eol = result.eol.set_index("specimen_id")
    # a specimen forecast to decay clearly slower than the population crosses later, or not at all
    slow = pace.index[pace < 0.95]
    assert len(slow) >= 4 and eol["eol_time_population"].notna().sum() >= 8
    later = eol.loc[slow, "eol_time"].fillna(np.inf) > eol.loc[slow, "eol_time_population"]
    assert later[eol.loc[slow, "eol_time_population"].notna()].all()
    # the population's path is the forecast with every z at 0
    monkeypatch.setattr(
        forecasting, "fit_posterior", lambda model, t, n: (torch.zeros(len(n), model.cfg.latent), None)
    )
    zero = forecast(latent_bundle, ds, ForecastConfig(samples=0)).forecast
    np.testing.assert_array_equal(zero["durability_mean"], zero["durability_population"])


@pytest.mark.slow
def test_a_short_warmup_leaves_z_near_the_prior(latent_bundle):
    table, _ = decay_table(16, 80, seed=2)
    t = to_tensors(to_series(validate(table, SCHEMA, source="test")), latent_bundle.scaler)
    short = fit_latent(latent_bundle.model, t, torch.full((16,), 3)).abs().mean()
    long = fit_latent(latent_bundle.model, t, torch.full((16,), 60)).abs().mean()
    assert short < long


@pytest.mark.slow
def test_latent_forecast_is_saved_loaded_and_batch_independent(latent_bundle, tmp_path):
    table, _ = decay_table(12, 80, seed=3)
    plan = table.copy()
    plan.loc[plan.groupby("specimen_id").cumcount() >= 40, "durability"] = np.nan
    ds = validate(plan, SCHEMA, source="plan")
    cfg = ForecastConfig(samples=0)
    whole = forecast(latent_bundle, ds, cfg).forecast
    path = tmp_path / "m.safetensors"
    save_bundle(latent_bundle, path)
    again = forecast(load_bundle(path), ds, cfg).forecast
    pd.testing.assert_frame_equal(whole, again)
    # one specimen alone is forecast as it is among the others (its z is fitted on its own rows)
    one = plan[plan.specimen_id == "S005"]
    alone = forecast(latent_bundle, validate(one, SCHEMA, source="one"), cfg).forecast
    mine = whole[whole.specimen_id == "S005"].reset_index(drop=True)
    np.testing.assert_allclose(alone["durability_mean"], mine["durability_mean"], rtol=0, atol=1e-6)
    # and z matters: the population's forecast (z = 0) is a different one
    zero = ModelConfig(trend_line=False, hidden=16, layers=1, latent=1)
    assert zero.latent == latent_bundle.model_config.latent
    assert latent_bundle.summary["latent_train_std"][0] > 0.05


@pytest.mark.slow
def test_training_scores_its_validation_specimens_with_z_fitted_and_with_z_zero(latent_bundle):
    """The model file keeps the validation RMSE of the population's forecast (z = 0) beside that
    of the forecast with each specimen's z fitted to its warm-up: whether the latent helps."""
    population = latent_bundle.summary["latent_val_rmse_population"]
    fitted = latent_bundle.summary["best_val_rmse"]
    # a 40-row warm-up says how fast a specimen of this set decays: trusting it beats the population
    assert fitted < 0.9 * population
    table, _ = decay_table(32, 80, seed=0)
    val = table[table.specimen_id.isin(latent_bundle.summary["val_specimens"])]
    t = to_tensors(to_series(validate(val, SCHEMA, source="val")), latent_bundle.scaler)
    assert free_run_rmse(latent_bundle.model, t, latent_bundle.scaler, 40, weight=0.0)[0] == pytest.approx(
        population, rel=1e-6
    )
    assert free_run_rmse(latent_bundle.model, t, latent_bundle.scaler, 40)[0] == pytest.approx(
        fitted, rel=1e-6
    )


def test_the_warmup_weight_scales_the_fit_against_the_prior():
    """fit_posterior's weight w on the warm-up's errors is the prior's weight divided by w, and 0
    returns the population's z (0) with the prior's covariance without running the model."""
    model, t = tiny_latent(6, 30)
    warm = torch.full((6,), 20)
    z, cov = fit_posterior(model, t, warm, weight=0.25)
    cfg = model.cfg
    model.cfg = dataclasses.replace(cfg, latent_prior=4 * cfg.latent_prior)
    z4, cov4 = fit_posterior(model, t, warm)
    torch.testing.assert_close(z, z4, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(cov, cov4, rtol=1e-5, atol=1e-6)
    model.cfg = cfg
    z1, _ = fit_posterior(model, t, warm)
    assert (z1 - z).abs().max() > 1e-3  # the weight moved the fit
    zero, prior_cov = fit_posterior(model, t, warm, weight=0.0)
    assert torch.equal(zero, torch.zeros(6, 2)) and torch.equal(prior_cov, torch.eye(2).expand(6, 2, 2))


def test_latent_warning_when_the_population_beats_the_fitted_z():
    assert latent_warnings({"best_val_rmse": 0.05, "latent_val_rmse_population": 0.08}) == []
    (line,) = latent_warnings({"best_val_rmse": 0.08, "latent_val_rmse_population": 0.05})
    assert "did not help" in line and "without `latent`" in line  # (--latent on the command line)
    assert latent_warnings({"best_val_rmse": 0.08}) == []


def test_latent_through_the_commands(runner, coating_slice, tmp_path):
    """train --latent, then evaluate (z fitted on each cut-off's warm-up only), forecast with
    intervals and end of life, and inspect showing the latent, through the real commands. (The
    default ensemble of 5, one candidate: the line's choice would train the members twice.)"""
    import json

    from durability_cli.cli import app

    data = str(coating_slice(10, 50))
    model = str(tmp_path / "m.safetensors")
    args = ["train", data, "-o", model, "--static", "material", "--latent", "2", "--epochs", "2"]
    result = runner.invoke(app, [*args, "--hidden", "8", "--layers", "1", "--no-trend-line", "-q"])
    assert result.exit_code == 0, result.output
    shown = runner.invoke(app, ["inspect", model, "--json"])
    info = json.loads(shown.stdout)
    assert info["model_config"]["latent"] == 2 and len(info["summary"]["latent_train_std"]) == 2
    assert info == json.loads(json.dumps(describe_bundle(load_bundle(model), model)))  # header only: the same
    assert info["summary"]["latent_val_rmse_population"] > 0  # the validation with z = 0, shown by inspect
    text = " ".join(runner.invoke(app, ["inspect", model]).stderr.split())
    assert "latent on validation" in text and "with z = 0" in text
    result = runner.invoke(app, ["evaluate", data, "-m", model, "--context", "20", "--samples", "20", "-q"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["models"]["model"]["rmse"] > 0
    plan = pd.read_csv(data)
    plan.loc[plan.groupby("specimen_id").cumcount() >= 20, "durability"] = np.nan
    plan.to_csv(tmp_path / "plan.csv", index=False)
    out = tmp_path / "fc.csv"
    args = ["forecast", str(tmp_path / "plan.csv"), "-m", model, "--samples", "40", "--threshold", "0.9"]
    result = runner.invoke(app, [*args, "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    fc = pd.read_csv(out)
    assert (fc["durability_p90"] >= fc["durability_p10"]).all()
    assert len(fc) >= int((plan.groupby("specimen_id").cumcount() >= 20).sum())
    assert fc["durability_population"].notna().all()  # the population.s forecast (z = 0), same conditions
    png = tmp_path / "fc.png"
    args = ["plot", "forecast", str(tmp_path / "plan.csv"), "-m", model, "--samples", "20", "-o", str(png)]
    assert runner.invoke(app, args).exit_code == 0 and png.stat().st_size > 0
    # the latent's own options are range-checked like every other
    bad = runner.invoke(app, ["train", data, "-o", str(tmp_path / "x.safetensors"), "--latent", "-1"])
    assert bad.exit_code == 2 and "--latent must be auto or between 0 (off) and 64" in bad.output


def test_latent_chunked_training_and_sharded_forecasts(runner, coating_slice, tmp_path):
    """A latent model trains a group of specimens at a time, and the shards of its forecast
    (each specimen's z fitted on its own warm-up) concatenate to the whole, bit for bit. (The
    default ensemble of 5, one candidate: the line's choice would train the members twice.)"""
    from durability_cli.cli import app

    data = str(coating_slice(9, 40))
    model = str(tmp_path / "m.safetensors")
    args = ["train", data, "-o", model, "--static", "material", "--latent", "2", "--epochs", "1"]
    args += ["--hidden", "8", "--layers", "1", "--chunk-specimens", "4", "--no-trend-line", "-q"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    plan = pd.read_csv(data)
    plan.loc[
        plan.groupby("specimen_id").cumcount() >= 15 + plan["specimen_id"].str[-1].astype(int) % 4,
        "durability",
    ] = np.nan
    plan.to_csv(tmp_path / "plan.csv", index=False)
    common = [str(tmp_path / "plan.csv"), "-m", model, "--samples", "30", "-q"]
    whole = runner.invoke(app, ["forecast", *common])
    assert whole.exit_code == 0, whole.output
    pieces = []
    for i in range(2):
        part = runner.invoke(
            app, ["forecast", *common, "--shard", f"{i}/2", "-o", str(tmp_path / f"{i}.csv")]
        )
        assert part.exit_code == 0, part.output
        pieces.append(pd.read_csv(tmp_path / f"{i}.csv"))
    from io import StringIO

    expected = pd.read_csv(StringIO(whole.stdout)).sort_values(["specimen_id", "time"]).reset_index(drop=True)
    got = pd.concat(pieces).sort_values(["specimen_id", "time"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_deepar_style_paths_draw_z_per_path():
    """A latent model trained with --feedback sample runs every Monte Carlo path through the RNN,
    each with its own draw of z: the paths spread, and the same seed gives the same paths."""
    table, _ = decay_table(8, 30, seed=4)
    ds = validate(table, SCHEMA, source="train")
    bundle = train(
        ds,
        ModelConfig(trend_line=False, hidden=8, layers=1, latent=2),
        TrainConfig(epochs=1, feedback="sample"),
    )
    plan = table.copy()
    plan.loc[plan.groupby("specimen_id").cumcount() >= 10, "durability"] = np.nan
    plan_ds = validate(plan, SCHEMA, source="plan")
    cfg = ForecastConfig(samples=12, seed=3)
    first = forecast(bundle, plan_ds, cfg, want_paths=True)
    again = forecast(bundle, plan_ds, cfg, want_paths=True)
    pd.testing.assert_frame_equal(first.paths, again.paths)
    spread = first.paths.groupby(["specimen_id", "time"])["value"].std()
    assert np.isfinite(first.paths["value"]).all() and (spread > 0).all()


def test_deepar_style_paths_take_the_refit_s_factor_on_their_draws_of_z(monkeypatch):
    """With --feedback sample each path runs with its own draw of z; the refit's factor on z's
    spread (scale_refit.latent_spread) scales each draw's distance from the fitted z."""
    from durability_cli import forecasting

    table, _ = decay_table(6, 30, seed=6)
    bundle = train(
        validate(table, SCHEMA, source="train"),
        ModelConfig(trend_line=False, hidden=8, layers=1, latent=2),
        TrainConfig(epochs=1, feedback="sample", ensemble=1),
    )
    plan = table.copy()
    plan.loc[plan.groupby("specimen_id").cumcount() >= 10, "durability"] = np.nan
    plan_ds = validate(plan, SCHEMA, source="plan")
    run_copies = forecasting.run_copies
    seen = []

    def spy(model, t, feed, copies, **options):
        seen.append(options["latent"].reshape(len(t.y), copies, -1))
        return run_copies(model, t, feed, copies, **options)

    monkeypatch.setattr(forecasting, "run_copies", spy)
    draws = {}
    for c in (0.0, 0.5, 1.0):
        summary = {
            **bundle.summary,
            "scale_refit": {**(bundle.summary["scale_refit"] or {}), "latent_spread": c},
        }
        seen.clear()
        forecast(dataclasses.replace(bundle, summary=summary), plan_ds, ForecastConfig(samples=8, seed=3))
        draws[c] = torch.cat(seen)
    fitted = draws[0.0][:, :1]
    assert torch.equal(draws[0.0], fitted.expand_as(draws[0.0]))  # no spread: every path at the fit
    assert (draws[1.0] - fitted).abs().max() > 1e-3
    torch.testing.assert_close(draws[0.5] - fitted, 0.5 * (draws[1.0] - fitted))


def tiny_latent(specimens: int, rows: int):
    """A small untrained latent model and the scaled tensors of ``specimens`` decay series."""
    table, _ = decay_table(specimens, rows, seed=5)
    series = to_series(validate(table, SCHEMA, source="train"))
    torch.manual_seed(0)
    model = FeedbackRNN(
        ModelConfig(trend_line=False, hidden=8, layers=1, latent=2),
        n_conditions=1,
        latent_specimens=specimens,
    )
    with torch.no_grad():
        model.latent_table.normal_()  # z far from 0: a prior on a noisy z would differ plainly
    return model, to_tensors(series, fit_scaler(series, [], []))


def test_training_loss_takes_the_prior_on_the_table_rows_and_draws_z_noise_once(monkeypatch):
    model, t = tiny_latent(6, 12)
    monkeypatch.setattr(training_module, "FITTED_SHARE", 0.0)  # every specimen runs with its table row
    t.index = torch.tensor([4, 0, 2, 5, 1, 3])  # the batch's rows of the latent table
    feed = torch.ones_like(t.observed)
    model.train()
    cfg = TrainConfig()
    torch.manual_seed(7)
    loss = rollout_loss(model, t, feed, cfg=cfg, gen=None)
    after = torch.randn(3)
    torch.manual_seed(7)  # the same draw by hand: one [B, D] of noise for the rollout
    per, mask, _ = _row_losses(model, t, feed, cfg=cfg, gen=None)
    assert torch.equal(torch.randn(3), after)  # no other draw of the generator
    table_rows = model.latent_table[t.index]
    expected = (per[mask].sum() + 0.5 * model.cfg.latent_prior * (table_rows**2).sum()) / mask.sum()
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=0)


def test_fit_stopping_early_keeps_each_specimens_z_independent_of_its_batch(monkeypatch):
    """A specimen leaves the fit when its step is short; its z is then the same bits alone,
    in any part of the batch (--shard, --chunk-specimens) and in the whole batch."""
    model, t = tiny_latent(12, 40)
    monkeypatch.setattr(latent_module, "FIT_STEP_TOL", 0.05)
    warm = torch.tensor([30, 12, 25, 30, 8, 40, 30, 17, 22, 30, 5, 36])
    whole, cov = latent_module.fit_posterior(model, t, warm)
    for rows in ([3], [0, 7], list(range(5, 12))):
        part, part_cov = latent_module.fit_posterior(model, slice_tensors(t, torch.tensor(rows)), warm[rows])
        assert torch.equal(part, whole[rows]) and torch.equal(part_cov, cov[rows])
    monkeypatch.setattr(latent_module, "FIT_STEP_TOL", 0.0)
    full, _ = latent_module.fit_posterior(model, t, warm)
    assert not torch.equal(full, whole)  # some specimens did stop early
    assert float((full - whole).abs().max()) < 0.2  # ... near where the full fit goes


def test_training_feeds_a_share_of_specimens_the_z_fitted_to_the_rollouts_warmup(monkeypatch):
    """Half of a training batch's specimens (drawn from the generator) run with the z a forecast
    would fit to the warm-up the rollout feeds, no gradient through it; the rest with their
    blurred table rows. The fitted z reads nothing after the warm-up."""
    model, t = tiny_latent(8, 30)
    t.index = torch.arange(8)
    warm = torch.tensor([4, 10, 2, 20, 7, 12, 30, 5])
    feed = warmup_feed(t, warm)
    assert torch.equal(warmup_lengths(feed), warm)
    model.train()
    expected = fit_latent(model, t, warm)
    monkeypatch.setattr(training_module, "FITTED_SHARE", 1.0)
    z = _training_latent(model, t, feed, torch.Generator().manual_seed(0))
    torch.testing.assert_close(z, expected)
    assert model.training  # the fit leaves the model in training mode
    z.sum().backward()
    assert not model.latent_table.grad.any()  # no gradient reaches a table row through a fitted z
    model.latent_table.grad = None
    changed = slice_tensors(t, torch.arange(8))
    changed.y = t.y.clone()
    changed.y[:, 20:] += 5.0  # rows after every warm-up but the 30-row one: only its z may move
    after = _training_latent(model, changed, feed, torch.Generator().manual_seed(0))
    assert torch.equal(after[warm < 20], z[warm < 20]) and not torch.equal(after[6], z[6])

    monkeypatch.setattr(training_module, "FITTED_SHARE", 0.5)
    gen = torch.Generator().manual_seed(3)
    coin = torch.rand(8, generator=torch.Generator().manual_seed(3)) < 0.5
    torch.manual_seed(1)  # the blur of the table rows
    mixed = _training_latent(model, t, feed, gen)
    fitted_now = fit_latent(model, t, warm)
    assert 0 < int(coin.sum()) < 8
    torch.testing.assert_close(mixed[coin], fitted_now[coin])
    torch.manual_seed(1)
    blurred = model.latent_table + training_module.LATENT_TRAIN_NOISE * torch.randn(8, 2)
    torch.testing.assert_close(mixed[~coin], blurred[~coin])
    mixed.sum().backward()
    learns = model.latent_table.grad.abs().sum(1) > 0
    assert torch.equal(learns, ~coin)  # the rows run with their own z still learn


@pytest.mark.slow
def test_the_refit_sizes_a_latent_model_s_head_and_its_z_paths_spread(latent_bundle):
    """A latent model's band is the head's scale and the spread of the mean path over draws of z;
    train refits both (scale_refit.py) on the training specimens' free-running errors, each one's
    z fitted to its warm-up as a forecast fits it: the file's record is what they measure again."""
    from durability_cli import scale_refit

    record = latent_bundle.summary["scale_refit"]
    assert record is not None and record["latent_spread"] > 0
    table, _ = decay_table(32, 80, seed=0)
    table = table[table.specimen_id.isin(latent_bundle.summary["train_specimens"])]
    t = to_tensors(to_series(validate(table, SCHEMA, source="train")), latent_bundle.scaler)
    ctx = training_module.warmup_tensor(t, 40)
    feed, mask = warmup_feed(t, ctx), training_module.scored_rows(t, ctx)
    features, errors = scale_refit.free_run_features(latent_bundle.model, t, feed, mask)
    assert record["rows"] == len(errors)
    head = latent_bundle.model.scale_head
    spread = record["latent_spread"]
    assert scale_refit.band_factor(head, features, errors, spread) == pytest.approx(
        record["factor_after"], abs=2e-3
    )
    assert 0.8 < record["factor_after"] < 1.25
    # the z paths' variance rides in the features' last column: 0 there leaves the head's own scale
    zeroed = torch.cat([features[:, :-1], torch.zeros_like(features[:, -1:])], dim=1)
    torch.testing.assert_close(
        scale_refit.band_scale(head, zeroed, spread), scale_refit.band_scale(head, features, 0.0)
    )


@pytest.mark.slow
def test_the_forecast_draws_the_z_paths_spread_times_the_refit_s_factor(latent_bundle):
    """Each path is the mean, plus the head's scale times its draw, plus its draw of z's path
    less the mean times the refit's factor: the paths move linearly in that factor."""
    table, _ = decay_table(6, 60, seed=4)
    plan = table.copy()
    plan.loc[plan.groupby("specimen_id").cumcount() >= 30, "durability"] = np.nan
    ds = validate(plan, SCHEMA, source="plan")

    def paths(spread: float) -> np.ndarray:
        summary = dict(latent_bundle.summary)
        summary["scale_refit"] = {**summary["scale_refit"], "latent_spread": spread}
        bundle = dataclasses.replace(latent_bundle, summary=summary)
        return (
            forecast(bundle, ds, ForecastConfig(samples=16, seed=3), want_paths=True)
            .paths["value"]
            .to_numpy()
        )

    p0, p1, p2 = paths(0.0), paths(1.0), paths(2.0)
    assert np.abs(p1 - p0).max() > 1e-4  # z's draws move the paths
    np.testing.assert_allclose(p2 - p0, 2 * (p1 - p0), rtol=1e-4, atol=1e-5)
