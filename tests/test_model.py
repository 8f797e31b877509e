"""The feedback model itself: gradients through feedback, fused = stepwise, lags, schedules."""

from __future__ import annotations

import math

import pytest
import torch

from durability_cli.config import ModelConfig
from durability_cli.model import FeedbackRNN
from durability_cli.schedules import teacher_forcing_ratio


def _inputs(B=4, T=12, C=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, C, generator=g)
    dt = torch.randn(B, T, generator=g)
    y = torch.randn(B, T, generator=g)
    return x, dt, y


def test_the_trend_input_is_the_measured_rows_least_squares_slope():
    """``--trend``: at each step, the slope of the values fed so far against their position (the
    cumulated dt / typical dt), in typical one-step changes, and log1p(rows) / 4; values not fed
    (a gap, the free run) never enter, whatever they are; 0 before two rows."""
    model = FeedbackRNN(
        ModelConfig(latent=0, trend_line=False, hidden=8, trend=True),
        n_conditions=1,
        step_scale=0.5,
        dt_log_std=2.0,
    )
    B, T = 2, 8
    gaps = torch.tensor([[1.0, 2.0, 0.5, 1.0, 1.0, 3.0, 1.0, 1.0], [1.0] * 8])  # dt / typical dt
    dt = torch.log(gaps) / 2.0  # the model's scaled log step: exp(dt x dt_log_std) = the gap
    pos = torch.cat([torch.zeros(B, 1), torch.cumsum(gaps[:, :-1], 1)], 1)
    y = 1.0 - 0.3 * pos  # a straight line: -0.3 a typical step, -0.6 typical one-step changes
    feed = torch.ones(B, T, dtype=torch.bool)
    feed[0, 2] = False  # a missing measurement in the warm-up
    feed[:, 5:] = False  # the free run
    y[0, 2] = 1e6
    y[:, 5:] = -1e6
    trend = model._trend(dt, y, feed)
    assert trend.shape == (B, T, 2)
    assert torch.equal(trend[:, 0, 0], torch.zeros(B))  # one row: no slope yet
    torch.testing.assert_close(trend[:, 1:, 0], torch.full((B, T - 1), -0.6))
    rows = torch.cumsum(feed.double(), 1)
    torch.testing.assert_close(trend[..., 1], (torch.log1p(rows) / 4.0).float())
    noisy = y.clone()
    noisy[1, :5] += torch.tensor([0.1, -0.1, 0.1, -0.1, 0.1])  # the fitted slope, not the last step
    fitted = model._trend(dt, noisy, feed)[1, 4, 0]
    p, v = pos[1, :5].double(), noisy[1, :5].double()
    expected = ((p - p.mean()) * (v - v.mean())).sum() / ((p - p.mean()) ** 2).sum() / 0.5
    torch.testing.assert_close(fitted.double(), expected, rtol=1e-5, atol=1e-6)
    assert (
        FeedbackRNN(ModelConfig(latent=0, trend_line=False, hidden=8), n_conditions=1)._trend(dt, y, feed)
        is None
    )
    assert (
        model.rnn.input_size
        == FeedbackRNN(ModelConfig(latent=0, trend_line=False, hidden=8), n_conditions=1).rnn.input_size + 2
    )


def test_the_trend_line_starts_each_forecast_as_the_warm_up_s_straight_line():
    """``--trend-line`` with the network's own step silenced: the free run continues from the last
    measured value along the least-squares slope of the measured rows, at each step's length
    (irregular steps included), whatever the values the free run feeds back; the gain scales that
    line and gets a gradient; beside the lag path (lags >= 2) it starts at 0, so such a model
    starts as it did without the option; --monotonic and --no-residual have no line (the trend
    input, which the option also feeds, stays)."""
    torch.manual_seed(0)
    model = FeedbackRNN(
        ModelConfig(latent=0, hidden=8, trend_line=True), n_conditions=1, step_scale=0.5, dt_log_std=2.0
    )
    plain = FeedbackRNN(ModelConfig(latent=0, trend_line=False, hidden=8), n_conditions=1)
    assert model.rnn.input_size == plain.rnn.input_size + 2  # it reads the trend too (--trend)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
    B, T = 2, 9
    gaps = torch.tensor([[1.0, 2.0, 0.5, 1.0, 1.0, 3.0, 1.0, 0.5, 1.0], [1.0] * 9])  # dt / typical dt
    dt = torch.log(gaps) / 2.0
    pos = torch.cat([torch.zeros(B, 1), torch.cumsum(gaps[:, :-1], 1)], 1)
    y = 1.0 - 0.3 * pos + torch.tensor([0.05, -0.05, 0.02, 0.0, -0.03] + [0.0] * 4)  # a noisy line
    feed = torch.zeros(B, T, dtype=torch.bool)
    feed[:, :5] = True  # 5 measured rows, then the free run
    x = torch.zeros(B, T, 1)
    out = model(x, dt, y, feed)
    p, v = pos[:, :5].double(), y[:, :5].double()
    slope = ((p - p.mean(1, keepdim=True)) * (v - v.mean(1, keepdim=True))).sum(1) / (
        (p - p.mean(1, keepdim=True)) ** 2
    ).sum(1)  # per typical step
    line = v[:, -1:] + slope.unsqueeze(1) * (pos[:, 5:] - pos[:, 4:5]).double()  # rows 5..8
    torch.testing.assert_close(out.mean[:, 4:].double(), line, rtol=1e-5, atol=1e-6)
    out.mean[:, 4:].sum().backward()
    assert model.trend_gain.grad is not None and model.trend_gain.grad.abs() > 0
    with torch.no_grad():
        model.trend_gain.fill_(0.5)
    half = model(x, dt, y, feed).mean[:, 4:].double()
    torch.testing.assert_close(half, v[:, -1:] + 0.5 * (line - v[:, -1:]), rtol=1e-5, atol=1e-6)
    assert (
        FeedbackRNN(
            ModelConfig(latent=0, hidden=8, trend_line=True, lags=3), n_conditions=1
        ).trend_gain.item()
        == 0.0
    )
    for cfg in (
        ModelConfig(latent=0, trend_line=True, monotonic="decreasing"),
        ModelConfig(latent=0, trend_line=True, residual=False),
    ):
        other = FeedbackRNN(cfg, n_conditions=1)
        assert other.trend_gain is None and other.rnn.input_size == plain.rnn.input_size + 2


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("lags", [1, 3])
@pytest.mark.parametrize("loss", ["gaussian", "mse"])
@pytest.mark.parametrize("trend", [False, True, "line"])
def test_fused_and_stepwise_rollouts_agree(cell, lags, loss, trend):
    torch.manual_seed(0)
    line = trend == "line"
    cfg = ModelConfig(
        latent=0, cell=cell, lags=lags, hidden=16, loss=loss, trend=trend is True, trend_line=line
    )
    model = FeedbackRNN(cfg, n_conditions=2)
    if line:
        with torch.no_grad():
            model.trend_gain.fill_(0.7)  # not 0 beside the lag path: the line must count
    x, dt, y = _inputs()
    feed = torch.zeros(4, 12, dtype=torch.bool)
    feed[:, :5] = True
    feed[2, :8] = True  # specimens with different warm-up lengths in one batch
    fused = model(x, dt, y, feed)
    stepwise = model(x, dt, y, feed, fused=False)
    assert fused.mean.shape == (4, 11)
    torch.testing.assert_close(fused.mean, stepwise.mean, rtol=1e-5, atol=1e-6)
    if loss == "gaussian":
        torch.testing.assert_close(fused.scale, stepwise.scale, rtol=1e-5, atol=1e-6)


def test_fully_known_inputs_run_in_one_fused_call(monkeypatch):
    model = FeedbackRNN(ModelConfig(latent=0, trend_line=False, hidden=8), n_conditions=2)
    calls = []
    model.rnn.register_forward_hook(lambda mod, inp, out: calls.append(inp[0].shape[1]))
    x, dt, y = _inputs()
    model(x, dt, y, torch.ones(4, 12, dtype=torch.bool))
    assert calls == [11]  # teacher forcing 1: one call over all 11 steps
    calls.clear()
    feed = torch.zeros(4, 12, dtype=torch.bool)
    feed[:, :4] = True
    r = model(x, dt, y, feed)
    assert calls == [4] and r.mean.shape == (4, 11)  # fused warm-up; a small batch steps by cells
    calls.clear()
    monkeypatch.setattr("durability_cli.model.ONEDNN_MIN_BATCH", 0)  # as a large batch does
    model(x, dt, y, feed)
    assert calls == [4] + [1] * 7  # fused warm-up, then one module call per free step


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("prefix", [0, 4])
def test_small_batch_cell_steps_match_the_module(monkeypatch, cell, prefix):
    """Below ONEDNN_MIN_BATCH rows free steps run torch's cell functions on the module's weights:
    the same means, scales and weight gradients as stepping the module itself."""
    torch.manual_seed(0)
    model = FeedbackRNN(
        ModelConfig(latent=0, trend_line=False, cell=cell, hidden=8, lags=2, layers=2), n_conditions=2
    )
    x, dt, y = _inputs()
    feed = torch.zeros(4, 12, dtype=torch.bool)
    feed[:, :prefix] = True  # 0: no fused warm-up at all
    results = []
    for threshold in (64, 0):  # 64: cells (4 rows is a small batch), 0: the module at every step
        monkeypatch.setattr("durability_cli.model.ONEDNN_MIN_BATCH", threshold)
        model.zero_grad()
        r = model(x, dt, y, feed)
        (r.mean.pow(2).sum() + r.scale.sum()).backward()
        results.append((r.mean.detach(), r.scale.detach(), model.rnn.weight_hh_l0.grad.clone()))
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("detach", [False, True])
def test_gradient_flows_through_fed_back_prediction(detach):
    torch.manual_seed(0)
    model = FeedbackRNN(ModelConfig(latent=0, trend_line=False, hidden=8, lags=1), n_conditions=2)
    x, dt, y = _inputs()
    feed = torch.zeros(4, 12, dtype=torch.bool)
    feed[:, 0] = True  # teacher forcing 0: free run from the first row
    r = model(x, dt, y, feed, detach_feedback=detach)
    loss_t = r.mean[:, 6].pow(2).sum()  # the loss at row 7 ...
    (grad,) = torch.autograd.grad(loss_t, r.pieces[5], retain_graph=True, allow_unused=True)  # ... wrt row 6
    if detach:
        assert grad is None or float(grad.abs().sum()) == 0.0
    else:
        assert float(grad.abs().sum()) > 0.0
    # and the weights receive gradient through that path: compare with and without detaching
    model.zero_grad()
    loss_t.backward()
    w = model.rnn.weight_ih_l0.grad.clone()
    assert float(w.abs().sum()) > 0.0


def test_detaching_changes_the_weight_gradient():
    torch.manual_seed(0)
    model = FeedbackRNN(ModelConfig(latent=0, trend_line=False, hidden=8), n_conditions=2)
    x, dt, y = _inputs()
    feed = torch.zeros(4, 12, dtype=torch.bool)
    feed[:, 0] = True
    grads = []
    for detach in (False, True):
        model.zero_grad()
        model(x, dt, y, feed, detach_feedback=detach).mean.pow(2).sum().backward()
        grads.append(model.rnn.weight_ih_l0.grad.clone())
    assert not torch.allclose(grads[0], grads[1])


def test_lag_inputs_hold_measured_then_own_values_in_order(monkeypatch):
    monkeypatch.setattr("durability_cli.model.ONEDNN_MIN_BATCH", 0)  # every step through the module
    torch.manual_seed(0)
    C, K, T = 2, 3, 10
    model = FeedbackRNN(ModelConfig(latent=0, trend_line=False, hidden=8, lags=K), n_conditions=C)
    seen = []
    model.rnn.register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
    x, dt, y = _inputs(B=2, T=T)
    feed = torch.zeros(2, T, dtype=torch.bool)
    feed[:, :4] = True  # rows 0..3 measured, then the model's own values
    r = model(x, dt, y, feed)
    inputs = torch.cat(seen, dim=1)  # [B, T-1, F]
    lags = inputs[..., C + 1 : C + 1 + K]  # [B, T-1, K]
    own = r.path  # own[:, t] is the prediction of row t + 1
    fed = torch.cat([y[:, :4], own[:, 3 : T - 2]], dim=1)  # value fed at steps 0..T-2
    for t in range(T - 1):
        expected = torch.stack([fed[:, max(t - 2, 0)], fed[:, max(t - 1, 0)], fed[:, t]], dim=1)
        torch.testing.assert_close(lags[:, t], expected)
    torch.testing.assert_close(r.fed, fed)


def test_monotonic_decreasing_is_decreasing_by_construction():
    torch.manual_seed(0)
    model = FeedbackRNN(
        ModelConfig(latent=0, trend_line=False, hidden=8, monotonic="decreasing"), n_conditions=2
    )
    for p in model.parameters():
        torch.nn.init.normal_(p, std=2.0)  # even wild weights cannot make it rise
    x, dt, y = _inputs()
    feed = torch.zeros(4, 12, dtype=torch.bool)
    feed[:, 0] = True
    path = torch.cat([y[:, :1], model(x, dt, y, feed).mean], dim=1)
    assert bool((path[:, 1:] <= path[:, :-1]).all())


@pytest.mark.parametrize(
    ("monotonic", "drift", "start"),
    [
        ("decreasing", -0.1, 0.2),
        ("increasing", 0.1, 0.2),
        ("increasing", -0.1, 0.02),
        ("decreasing", -9.0, 1.0),
    ],
)
def test_a_monotonic_head_starts_at_the_data_drift(monotonic, drift, start):
    """softplus(bias) = drift / step_scale in the model's direction, within 0.02 to 1 typical
    steps; with every weight of the head at zero, the first step is exactly that start."""
    model = FeedbackRNN(
        ModelConfig(latent=0, trend_line=False, hidden=8, monotonic=monotonic), n_conditions=2, step_scale=0.5
    )
    model.start_monotonic(drift)
    assert float(torch.nn.functional.softplus(model.head.bias.detach())) == pytest.approx(start, rel=1e-5)
    with torch.no_grad():
        model.head.weight.zero_()
    x, dt, y = _inputs()
    feed = torch.zeros(4, 12, dtype=torch.bool)
    feed[:, 0] = True
    mean = model(x, dt.zero_(), y, feed).mean  # dt = typical dt: the rate factor is 1
    sign = -1.0 if monotonic == "decreasing" else 1.0
    torch.testing.assert_close(mean[:, 0], y[:, 0] + sign * start * 0.5)
    plain = FeedbackRNN(ModelConfig(latent=0, trend_line=False, hidden=8), n_conditions=2, step_scale=0.5)
    plain.start_monotonic(drift)  # a free-signed head keeps its "no change" start
    assert float(plain.head.bias.detach()) == 0.0


def test_monte_carlo_paths_use_given_noise():
    model = FeedbackRNN(ModelConfig(latent=0, trend_line=False, hidden=8), n_conditions=2)
    x, dt, y = _inputs()
    feed = torch.zeros(4, 12, dtype=torch.bool)
    feed[:, :3] = True
    noise = torch.randn(4, 11)
    a = model(x, dt, y, feed, sample=True, noise=noise)
    b = model(x, dt, y, feed, sample=True, noise=noise)
    c = model(x, dt, y, feed, sample=True, noise=noise * 2)
    torch.testing.assert_close(a.path, b.path)
    assert not torch.allclose(a.path[:, 3:], c.path[:, 3:])
    torch.testing.assert_close(a.path, a.mean + a.scale * noise)


@pytest.mark.parametrize(
    ("schedule", "i", "kwargs", "expected"),
    [
        ("constant", 7, {"start": 0.6}, 0.6),
        ("linear", 10, {"start": 1.0, "c": 0.05}, 0.5),
        ("linear", 100, {"start": 1.0, "c": 0.05, "minimum": 0.1}, 0.1),
        ("exponential", 3, {"k": 0.5}, 0.125),
        ("inverse-sigmoid", 0, {"k": 10.0}, 10 / 11),
        ("inverse-sigmoid", 50, {"k": 10.0}, 10 / (10 + math.exp(5))),
    ],
)
def test_schedules(schedule, i, kwargs, expected):
    assert teacher_forcing_ratio(schedule, i, **kwargs) == pytest.approx(expected)


def test_schedules_decrease_over_training():
    for schedule, kw in [
        ("linear", {"c": 0.1}),
        ("exponential", {"k": 0.9}),
        ("inverse-sigmoid", {"k": 5.0}),
    ]:
        values = [teacher_forcing_ratio(schedule, i, **kw) for i in range(30)]
        assert all(a >= b for a, b in zip(values, values[1:], strict=False))
        assert values[0] > values[-1]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_long_warm_up_without_gradients_runs_in_windows_with_the_same_result(monkeypatch, cell):
    """Forecasts and validation (no gradients) run a long fused warm-up in windows carrying the
    state, so activations do not grow with the warm-up; the outputs are those of one call."""
    monkeypatch.setattr("durability_cli.model.PREFIX_WINDOW", 3)
    torch.manual_seed(0)
    model = FeedbackRNN(ModelConfig(latent=0, trend_line=False, cell=cell, hidden=8, lags=2), n_conditions=2)
    calls = []
    model.rnn.register_forward_hook(lambda mod, inp, out: calls.append(inp[0].shape[1]))
    x, dt, y = _inputs()
    feed = torch.zeros(4, 12, dtype=torch.bool)
    feed[:, :8] = True  # 8 fused warm-up steps, then 3 free ones
    with_grad = model(x, dt, y, feed)
    assert calls == [8]
    calls.clear()
    with torch.no_grad():
        windowed = model(x, dt, y, feed)
    assert calls == [3, 3, 2]  # then the free steps run through the cell functions (4 rows)
    torch.testing.assert_close(windowed.mean, with_grad.mean.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(windowed.scale, with_grad.scale.detach(), rtol=1e-5, atol=1e-6)


def test_a_long_free_run_without_gradients_computes_the_scale_in_windows(monkeypatch):
    """Without gradients the scale head runs every PREFIX_WINDOW free steps instead of holding
    every step's state to the end: same scales, and models without a scale head keep no states."""
    torch.manual_seed(0)
    model = FeedbackRNN(ModelConfig(latent=0, trend_line=False, hidden=8), n_conditions=2)
    x, dt, y = _inputs(T=12)
    feed = torch.zeros(4, 12, dtype=torch.bool)
    feed[:, :2] = True  # 2 fused warm-up steps, 9 free ones: windows of 4, 4 and 1
    reference = model(x, dt, y, feed)
    monkeypatch.setattr("durability_cli.model.PREFIX_WINDOW", 4)
    calls = []
    head = model._scale
    monkeypatch.setattr(
        model, "_scale", lambda h, free, *rest: calls.append(h.shape[1]) or head(h, free, *rest)
    )
    with torch.no_grad():
        windowed = model(x, dt, y, feed)
    # the warm-up's, then one per window of free steps
    assert calls == [2, 4, 4, 1]
    torch.testing.assert_close(windowed.scale, reference.scale.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(windowed.mean, reference.mean.detach(), rtol=1e-5, atol=1e-6)
    point = FeedbackRNN(ModelConfig(latent=0, trend_line=False, hidden=8, loss="mse"), n_conditions=2)
    assert point(x, dt, y, feed).scale is None


@pytest.mark.parametrize(
    "cfg",
    [
        ModelConfig(latent=0, trend_line=False, hidden=16),
        ModelConfig(latent=0, trend_line=False, cell="gru", hidden=16, lags=3),
        ModelConfig(latent=0, trend_line=False, hidden=16, monotonic="decreasing", layers=1),
        ModelConfig(latent=0, trend_line=False, hidden=16, trend=True),
    ],
    ids=["lstm", "gru-lags3", "lstm-monotonic", "lstm-trend"],
)
def test_an_invariant_rollout_does_not_depend_on_its_batch(cfg):
    """Forecasts (``invariant=True``): a specimen's rollout is the same bit for bit alone, in a
    small batch or in a large one, whatever the other rows' warm-up lengths (so --shard and
    --chunk-specimens pieces concatenate to the whole-table output exactly). With one thread, as
    the commands run by default: with more, the kernels split a batch over threads by its size."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _check_batch_invariance(cfg)
    finally:
        torch.set_num_threads(threads)


def _check_batch_invariance(cfg):
    torch.manual_seed(3)
    model = FeedbackRNN(cfg, n_conditions=2)
    model.eval()
    B, T = 90, 40
    x, dt, y = torch.randn(B, T, 2), 0.3 * torch.randn(B, T), torch.randn(B, T)
    warm = torch.randint(1, 25, (B,))
    feed = torch.arange(T).unsqueeze(0) < warm.unsqueeze(1)  # other warm-ups: other fused prefixes
    noise = torch.randn(B, T - 1)
    with torch.no_grad():
        whole = model(x, dt, y, feed, sample=True, noise=noise, invariant=True)
        for rows in ([5], [0, 7], list(range(3, 13)), list(range(10, 80, 3)), list(range(B - 1, -1, -1))):
            idx = torch.tensor(rows)
            part = model(x[idx], dt[idx], y[idx], feed[idx], sample=True, noise=noise[idx], invariant=True)
            for name in ("mean", "scale", "path"):
                assert torch.equal(getattr(part, name), getattr(whole, name)[idx]), (name, rows)


def _warmed_up(cfg: ModelConfig, B: int, T: int, seed: int):
    """A model of ``cfg`` (evaluation mode) and B random rows of T columns measured for 30 rows
    (the first row for 44: the fused prefix is the shortest warm-up): model, tensors, feed and
    a latent z per row (None without one)."""
    from durability_cli.data import Tensors

    torch.manual_seed(seed)
    model = FeedbackRNN(cfg, n_conditions=2, latent_specimens=4 if cfg.latent else 0).eval()
    x, dt, y = torch.randn(B, T, 2), 0.1 * torch.randn(B, T), torch.randn(B, T)
    ones = torch.ones(B, T, dtype=torch.bool)
    t = Tensors(x, dt, y, ones, ones, torch.zeros(B, 0), torch.zeros(B, 0, dtype=torch.long))
    feed = torch.zeros(B, T, dtype=torch.bool)
    feed[:, :30] = True
    feed[0, :44] = True
    latent = torch.randn(B, cfg.latent) if cfg.latent else None
    return model, t, feed, latent


@pytest.mark.parametrize(
    "cfg, B",
    [
        (ModelConfig(latent=0, trend_line=False, hidden=16), 5),
        (ModelConfig(latent=0, trend_line=True, hidden=16, lags=3), 20),
        (ModelConfig(latent=2, trend_line=False, cell="gru", hidden=16), 3),
    ],
    ids=["lstm-5-rows", "lstm-line-20-rows", "gru-latent-3-rows"],
)
def test_the_streamed_mean_is_the_rollouts_piece_by_piece(cfg, B):
    """``stream_mean`` (the end-of-life run past the horizon) yields the warm-up's fused prefix and
    then ``every`` steps at a time, and joined they are the invariant rollout's mean bit for bit:
    fewer rows than INVARIANT_MIN_ROWS (padded alike), the warm-up's line, a latent z."""
    model, t, feed, latent = _warmed_up(cfg, B, 300, seed=5)
    with torch.no_grad():
        whole = model.run(t, feed, invariant=True, latent=latent).mean
    pieces = list(model.stream_mean(t, feed, latent=latent, every=64))
    assert [p.shape[1] for p in pieces] == [30, 64, 64, 64, 64, 13]  # rows 1-30 fed measured values
    assert torch.equal(torch.cat(pieces, dim=1), whole)
    # asked for the first pieces only, it stops there
    stream = model.stream_mean(t, feed, latent=latent, every=64)
    first = [next(stream), next(stream)]
    assert torch.equal(torch.cat(first, dim=1), whole[:, : 30 + 64])


@pytest.mark.parametrize(
    "cfg, B",
    [
        (ModelConfig(latent=0, trend_line=True, hidden=16, lags=3), 20),
        (ModelConfig(latent=2, trend_line=False, cell="gru", hidden=16), 3),
    ],
    ids=["lstm-line-20-rows", "gru-latent-3-rows"],
)
def test_the_mean_runs_on_from_where_each_rows_loop_was_kept(cfg, B):
    """A rollout keeps where each row's step loop stands after a step of its own (``capture``: a
    forecast's last row), and ``resume_mean`` runs on from there over the same rows, each from its
    own step, left-aligned: the invariant rollout's mean bit for bit, for fewer rows than
    INVARIANT_MIN_ROWS too. A row is kept after the fused prefix's last step, not inside it."""
    from durability_cli.data import Tensors

    T = 200
    model, t, feed, latent = _warmed_up(cfg, B, T, seed=6)
    x, dt, y, ones = t.x, t.dt, t.y, t.valid
    capture = torch.randint(40, 150, (B,))
    capture[-1] = 10  # inside the fused prefix (steps 0-29): not kept
    capture[-2] = 29  # the fused prefix's last step: kept from the state it ends in
    with torch.no_grad():
        whole = model.run(t, feed, invariant=True, latent=latent).mean  # [B, T-1]: row 1 on
        shorter = model.run(t, feed, invariant=True, latent=latent, capture=capture)
    kept = shorter.kept
    assert torch.equal(shorter.mean, whole)  # keeping changes nothing
    assert kept.step[-1] == -1 and torch.equal(kept.step[:-1], capture[:-1] + 1)
    rows = torch.arange(B - 1)
    some = Tensors(
        x[rows],
        dt[rows],
        y[rows],
        ones[rows],
        ones[rows],
        torch.zeros(B - 1, 0),
        torch.zeros(B - 1, 0, dtype=torch.long),
    )
    pieces = list(model.resume_mean(some, feed[rows], kept.take(rows), every=32))
    joined = torch.cat(pieces, dim=1)
    for b in rows.tolist():
        s = int(kept.step[b])  # the kept value is row s's mean (column s - 1), made already
        n = T - s
        assert torch.equal(joined[b, :n], whole[b, s - 1 :]), b
    with pytest.raises(ValueError, match="step >= 1"):
        next(model.resume_mean(t, feed, kept))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_step_loop_calls_the_rnns_kernel_as_the_module_does(cell, monkeypatch):
    """The step loop calls the RNN's kernel directly (FeedbackRNN._module_step) where it steps the
    module: a batch of 64 rows or more in training (dropout between layers drawn), and forecasts.
    The same means, scales and gradients as through the module, which it takes when a hook
    watches its calls (here a hook that changes nothing)."""
    cfg = ModelConfig(latent=0, trend_line=True, hidden=16, layers=2, dropout=0.3, lags=2, cell=cell)
    B, T = 64, 30
    torch.manual_seed(2)
    model = FeedbackRNN(cfg, n_conditions=2)
    x, dt, y = torch.randn(B, T, 2), 0.1 * torch.randn(B, T), torch.randn(B, T)
    feed = torch.zeros(B, T, dtype=torch.bool)
    feed[:, :6] = True

    def run(hooked: bool, train: bool):
        handle = model.rnn.register_forward_hook(lambda *a: None) if hooked else None
        model.train(train)
        model.zero_grad()
        torch.manual_seed(9)  # the same dropout draws
        r = model(x, dt, y, feed, invariant=not train)
        if train:
            (r.mean.square().mean() + r.scale.mean()).backward()
        if handle is not None:
            handle.remove()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None] if train else []
        return r.mean.detach(), r.scale.detach(), grads

    for train in (True, False):
        direct, module = run(False, train), run(True, train)
        assert torch.equal(direct[0], module[0]) and torch.equal(direct[1], module[1])
        assert len(direct[2]) == len(module[2]) and all(
            torch.equal(a, b) for a, b in zip(direct[2], module[2], strict=True)
        )
    # without a hook the module's forward runs for the fused warm-up alone, not for the steps
    calls = []
    forward = type(model.rnn).forward
    monkeypatch.setattr(
        type(model.rnn), "forward", lambda m, *a: calls.append(a[0].shape[1]) or forward(m, *a)
    )
    model.eval()
    with torch.no_grad():
        model(x, dt, y, feed, invariant=True)
    assert calls == [6]
