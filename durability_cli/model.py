"""The recurrent feedback model: a stacked LSTM/GRU that feeds its own predicted durability back in.

One rollout serves training, validation and forecasting. At input step t the model sees
[scaled conditions_t, scaled step length dt_t, the last K fed-back durability values, static
features] and predicts the durability of row t + 1. The fed-back value v_t is either the measured
y_t (warm-up, teacher forcing) or the model's own prediction of row t (free run). Where every input
is known in advance the whole prefix runs through the fused multi-step RNN in one call; from the
first step whose input depends on an output it steps one at a time. Outputs are collected in lists
and stacked, never written into a preallocated tensor, so gradients flow through the feedback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import _VF, nn

from durability_cli.config import ModelConfig

ONEDNN_MIN_BATCH = 64  # below this many rows the training step loop runs without oneDNN
PREFIX_WINDOW = 256  # without gradients: warm-up rows per fused RNN call, free steps per scale-head call
INVARIANT_MIN_ROWS = 8  # invariant rollouts pad smaller batches to this many rows
TREND_FEATURES = 2  # the measured trend's slope and how many rows it rests on
HEAD_BLOCK_ROWS = 32_768  # rows per block of the row-wise read-out heads (bounds their temporary)


@dataclass
class Rollout:
    """What one rollout returns; index t is the prediction of row t + 1."""

    mean: torch.Tensor  # [B, T-1] predicted mean (scaled units)
    scale: torch.Tensor | None  # [B, T-1] predicted standard deviation, Gaussian head only
    path: torch.Tensor  # [B, T-1] the value fed back at the next step where free (mean or sample)
    fed: torch.Tensor  # [B, T-1] the fed-back value v_t actually used as input at steps 0..T-2
    pieces: list[torch.Tensor]  # the path pieces before stacking (the fused prefix, then one per step)
    kept: Resume | None = None  # with ``capture``: where each row's step loop stood (forward)


@dataclass
class _How:
    """How one rollout feeds back and draws (the options of :meth:`FeedbackRNN.forward`)."""

    sample: bool
    generator: torch.Generator | None
    noise: torch.Tensor | None
    detach_feedback: bool
    invariant: bool
    scale: bool = True  # False: the means alone (the scale head is not read; stream_mean)
    capture: torch.Tensor | None = None  # [B] long: keep each row's loop after its own step (-1: not)


@dataclass
class _Pieces:
    """A rollout's outputs as they are made: the fused prefix, then one entry per step."""

    means: list = field(default_factory=list)
    scales: list = field(default_factory=list)
    paths: list = field(default_factory=list)
    feds: list = field(default_factory=list)
    kept: Resume | None = None


@dataclass
class Resume:
    """Each row's step loop where it stood after its own step ``step[b] - 1`` of an invariant
    rollout (``forward(..., capture=)``): the step it runs next (-1: not kept, e.g. a step of the
    fused prefix), the RNN state, the last K fed-back values, the value it feeds back next (its
    prediction of row ``step[b]``), the steps run free and the static features it ran with (a
    latent model's z included). :meth:`FeedbackRNN.resume_mean` runs on from there."""

    step: torch.Tensor  # [B] long
    state: object  # nn.LSTM's (h, c), each [L, B, H], or nn.GRU's h [L, B, H]
    history: torch.Tensor  # [B, K]
    last_path: torch.Tensor  # [B]
    free: torch.Tensor  # [B]
    static: torch.Tensor | None  # [B, S]

    def apply(self, rowwise, statewise) -> Resume:
        """The record with ``rowwise`` applied to each field of rows first ([B, ...]) and
        ``statewise`` to each tensor of the RNN state ([L, B, H])."""
        static = None if self.static is None else rowwise(self.static)
        return Resume(
            rowwise(self.step),
            _state_map(statewise, self.state),
            rowwise(self.history),
            rowwise(self.last_path),
            rowwise(self.free),
            static,
        )

    def take(self, rows) -> Resume:
        """The rows ``rows`` (an index or a slice), on the CPU or wherever they are."""
        return self.apply(lambda v: v[rows], lambda s: s[:, rows])

    def to(self, device) -> Resume:
        return self.apply(lambda v: v.to(device), lambda s: s.to(device))

    @classmethod
    def cat(cls, parts: list[Resume]) -> Resume:
        """Rows of several records one after the other."""
        first = parts[0]
        static = None if first.static is None else torch.cat([p.static for p in parts])
        return cls(
            torch.cat([p.step for p in parts]),
            _state_map(lambda *states: torch.cat(states, dim=1), *(p.state for p in parts)),
            torch.cat([p.history for p in parts]),
            torch.cat([p.last_path for p in parts]),
            torch.cat([p.free for p in parts]),
            static,
        )


@dataclass
class _Carry:
    """Where a step loop stands: the next step, the RNN state, the last K fed-back values [B, K],
    the value fed back at the next free step [B], the steps run free so far [B] and the inputs
    the loop builds once for all its steps (None: not yet made)."""

    step: int
    state: object = None
    history: torch.Tensor | None = None
    last_path: torch.Tensor | None = None
    free: torch.Tensor | None = None
    inputs: tuple | None = None


class FeedbackRNN(nn.Module):
    """Recurrent model whose input includes its own previous outputs.

    ``stacked`` (a class attribute, set on the copy that ``torch.func.functional_call`` runs
    under ``vmap`` for the members of a stacked ensemble, stacked.py) steps every row through the
    cells written out below instead of the fused RNN and torch's cell functions, which have no
    batching rule.

    Parameters
    ----------
    cfg : ModelConfig
    n_conditions : int
        Number of condition (covariate) columns C.
    n_static_numeric : int
        Number of numeric static columns.
    static_cardinalities : list[int]
        Vocabulary size of each categorical static column.
    step_scale : float
        Typical one-step change of the scaled target; residual outputs are multiplied by it so the
        network works with numbers near 1 whatever the units.
    """

    stacked = False

    def __init__(
        self,
        cfg: ModelConfig,
        n_conditions: int,
        n_static_numeric: int = 0,
        static_cardinalities: list[int] | None = None,
        step_scale: float = 1.0,
        dt_log_std: float = 1.0,
        latent_specimens: int = 0,
    ):
        super().__init__()
        if cfg.trend_line not in (True, False):  # "auto" is decided by training (line_choice.py)
            raise ValueError(f"a model is built with trend_line true or false, not {cfg.trend_line!r}")
        if cfg.latent == "auto":  # decided by training (latent_choice.py)
            raise ValueError("a model is built with latent a number (0 = none), not 'auto'")
        self.cfg = cfg
        cards = static_cardinalities or []
        # nn.Embedding's own N(0, 1) start, drawn by torch.randn (the same numbers from the same
        # generator). On the meta device, where a model file's shapes are checked, torch computes
        # normal_ and arithmetic in Python kernels that import torch._dynamo (1.1 s of a short
        # forecast's 4.6 s: benchmarks/train_start.py), so nothing here does either there
        # (tests/test_adam.py checks that a forecast never imports it).
        self.embeddings = nn.ModuleList(
            nn.Embedding(n, cfg.static_embedding, _weight=torch.randn(n, cfg.static_embedding)) for n in cards
        )
        self.n_static = n_static_numeric + cfg.static_embedding * len(cards) + cfg.latent
        # The training specimens' latent vectors z (an auto-decoder: each one a free parameter
        # under a N(0, I) prior, learned with the network); a new specimen's z is fitted to its
        # warm-up by ``latent.fit_latent``. Kept in the model file for inspection.
        start = torch.randn(latent_specimens, cfg.latent) if cfg.latent else None
        self.latent_table = None if start is None else nn.Parameter(start if start.is_meta else 0.01 * start)
        n_in = n_conditions + 1 + cfg.lags + 1 + self.n_static  # +1: "the fed-back value was measured"
        # --trend feeds the warm-up's trend as an input; --trend-line does too (measured better
        # with it than the line alone: laser -6 %, Device-B -7 % over five test splits)
        self.reads_trend = cfg.trend or cfg.trend_line
        n_in += TREND_FEATURES if self.reads_trend else 0
        rnn_cls = nn.LSTM if cfg.cell == "lstm" else nn.GRU
        self.rnn = rnn_cls(
            n_in, cfg.hidden, cfg.layers, batch_first=True, dropout=cfg.dropout if cfg.layers > 1 else 0.0
        )
        self.head = nn.Linear(cfg.hidden, 1)
        # A linear autoregressive path from the lag differences (v_t - v_{t-k}) to the step: with
        # lags >= 2 it carries a velocity exactly, so a parabola or a steady trend needs no
        # precise arithmetic from the recurrent cell (LSTNet's "highway" idea).
        # (Not with --monotonic: a free-signed term would break the one-signed step.)
        use_skip = cfg.residual and cfg.lags > 1 and cfg.monotonic == "none"
        self.skip = nn.Linear(cfg.lags - 1, 1, bias=False) if use_skip else None
        # --trend-line: the warm-up's least-squares slope (per typical step) x a learned gain is
        # added to every step, so a forecast starts as the straight line through the specimen's
        # own measurements and the network learns where to bend it. The gain starts at 1, or at 0
        # beside the lag path above, which already starts from "keep the last step". (Like that
        # path, not with --monotonic, whose steps are one-signed by construction, nor without
        # --residual, which predicts levels.)
        use_line = cfg.trend_line and cfg.residual and cfg.monotonic == "none"
        self.trend_gain = nn.Parameter(torch.tensor(0.0 if use_skip else 1.0)) if use_line else None
        # The scale reads a detached hidden state: it learns how wrong the mean is without pulling
        # the recurrent weights away from the mean (early free-run errors are huge, 1/scale^2 more so).
        # It also sees how many steps the model has run on its own (log scale), since the spread
        # of a free run grows with that count and a linear read-out of the state cannot count.
        self.scale_head = nn.Linear(cfg.hidden + 1, 1) if cfg.loss == "gaussian" else None
        self.register_buffer("step_scale", torch.tensor(float(step_scale)))
        # turns the scaled log step length back into dt / typical dt for the Euler-style step
        self.register_buffer("dt_log_std", torch.tensor(float(dt_log_std)))
        with torch.no_grad():  # start near "no change" so early free runs are not wild
            self.head.weight.mul_(0.1)
            # softplus(-4) = 0.02 typical steps starts a monotonic model flat; training starts
            # it at the data's drift instead (start_monotonic), where softplus is not flat
            self.head.bias.fill_(-4.0 if cfg.residual and cfg.monotonic != "none" else 0.0)
            if self.skip is not None:  # start from "keep the last step" (a straight-line trend)
                self.skip.weight.zero_()
                self.skip.weight[0, -1] = 1.0

    # -- pieces ---------------------------------------------------------------------------------
    def _static(self, static_num, static_cat, latent, B: int):
        parts = []
        if static_num is not None and static_num.shape[1] > 0:
            parts.append(static_num)  # [B, Sn]
        for j, emb in enumerate(self.embeddings):
            parts.append(emb(static_cat[:, j]))  # [B, E]
        if self.cfg.latent:
            parts.append(
                latent if latent is not None else self.latent_table.new_zeros(B, self.cfg.latent)
            )  # [B, D]
        if not parts:
            return None
        return torch.cat(parts, dim=1)  # [B, S]

    def _inputs(self, x, dt, lags, measured, static, trend=None):
        """x [B, T, C], dt [B, T], lags [B, T, K], measured [B, T], static [B, S] or None,
        trend [B, T, 2] or None -> [B, T, F]."""
        parts = [x, dt.unsqueeze(-1), lags, measured.to(x.dtype).unsqueeze(-1)]
        if static is not None:
            parts.append(static.unsqueeze(1).expand(-1, x.shape[1], -1))
        if trend is not None:
            parts.append(trend)
        return torch.cat(parts, dim=-1)

    def _trend(self, dt: torch.Tensor, y: torch.Tensor, feed: torch.Tensor) -> torch.Tensor | None:
        """[B, T, 2] at each input step t (``--trend``): the least-squares slope of the measured
        values fed at rows 0..t against their position (in typical steps: the cumulated dt /
        typical dt), in typical one-step changes and clipped to +-10, and log1p(how many rows) / 4.
        Only measured values enter, so the whole tensor is known before the rollout starts, for a
        warm-up of any length, and the fused prefix and the steps read the same numbers. The sums
        run in float64 (positions squared over thousands of rows). Slope 0 before two rows."""
        if not self.reads_trend:
            return None
        dtype = torch.float64
        u = torch.exp(dt.to(dtype) * self.dt_log_std.to(dtype))  # [B, T] step t -> t+1, typical steps
        pos = torch.cat([u.new_zeros(u.shape[0], 1), torch.cumsum(u[:, :-1], dim=1)], dim=1)  # [B, T]
        m = feed.to(dtype)
        v = torch.where(feed, y.to(dtype), torch.zeros_like(pos))
        pos = pos - pos[:, :1]
        s0 = torch.cumsum(m, 1)
        s1 = torch.cumsum(m * pos, 1)
        s2 = torch.cumsum(m * pos * pos, 1)
        sy = torch.cumsum(v, 1)
        sty = torch.cumsum(v * pos, 1)
        den = s0 * s2 - s1 * s1
        ok = (s0 >= 2) & (den > 1e-9 * s0 * s0)
        slope = torch.where(ok, (s0 * sty - s1 * sy) / torch.where(ok, den, torch.ones_like(den)), 0.0)
        slope = (slope / self.step_scale.to(dtype)).clamp(-10.0, 10.0)
        return torch.stack([slope, torch.log1p(s0) / 4.0], dim=-1).to(y.dtype)

    def _rate(self, dt: torch.Tensor) -> torch.Tensor | None:
        """[B, T] dt / typical dt, the factor of a rate head's step (None without one)."""
        if self.cfg.residual and self.cfg.rate:
            return torch.exp(dt * self.dt_log_std)
        return None

    def start_monotonic(self, step_mean: float) -> None:
        """Start a monotonic head at the training data's mean one-step change ``step_mean``
        (scaled units): its bias becomes softplus^-1(drift / step_scale), the drift taken in the
        model's direction and kept within 0.02 to 1 typical steps.

        The constant start softplus(-4) = 0.02 typical steps left the head where softplus is flat
        (slope sigmoid(-4) = 0.018) and the bias some 4 units from where the data are, more than
        Adam moves it in a small table's few hundred steps: on device_b the model stayed too slow
        (RMSE 0.245 vs 0.172 from the drift; docs/TRAINING.md). Only the start changes: a trained
        model's arithmetic is the same, so model files of either start forecast alike."""
        if self.cfg.monotonic == "none" or not self.cfg.residual:
            return
        sign = 1.0 if self.cfg.monotonic == "increasing" else -1.0
        start = min(max(sign * step_mean / float(self.step_scale), 0.02), 1.0)  # typical steps
        with torch.no_grad():
            self.head.bias.fill_(float(torch.log(torch.expm1(torch.tensor(start)))))  # softplus = start

    def _mean(
        self,
        h: torch.Tensor,
        lags: torch.Tensor,
        rate: torch.Tensor | None,
        invariant: bool = False,
        line: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """h [B, T, H], lags [B, T, K] fed-back values (last = v_t), rate [B, T] or None, line
        [B, T] the warm-up line's step (``_line``) or None -> mean [B, T]."""
        step = _read_out(self.head, h, invariant)  # [B, T]
        if not self.cfg.residual:
            return step
        if self.cfg.monotonic == "decreasing":
            step = -_softplus(step, invariant)
        elif self.cfg.monotonic == "increasing":
            step = _softplus(step, invariant)
        if rate is not None:
            step = step * rate  # rate x (dt / typical dt)
        v = lags[..., -1]  # [B, T]
        mean = v + step * self.step_scale
        if self.skip is not None:
            mean = mean + _read_out(self.skip, v.unsqueeze(-1) - lags[..., :-1], invariant)  # [B, T]
        if line is not None:
            mean = mean + self.trend_gain * line
        return mean

    def _line(self, trend: torch.Tensor | None, dt: torch.Tensor) -> torch.Tensor | None:
        """[B, T] the step of the warm-up's straight line (``--trend-line``): its slope per
        typical step x this step's length in typical steps, in the durability's scaled units;
        None without the option."""
        if self.trend_gain is None or trend is None:
            return None
        return trend[..., 0] * torch.exp(dt * self.dt_log_std) * self.step_scale

    def _scale(self, h: torch.Tensor, free: torch.Tensor, invariant: bool = False) -> torch.Tensor | None:
        """h [B, T, H], free [B, T] steps run on own predictions -> scale [B, T] (Gaussian head)."""
        if self.scale_head is None:
            return None
        features = torch.cat([h.detach(), torch.log1p(free).unsqueeze(-1)], dim=-1)  # [B, T, H+1]
        return head_scale(self.scale_head, features, invariant)

    def _head(
        self,
        h: torch.Tensor,
        lags: torch.Tensor,
        dt: torch.Tensor,
        free: torch.Tensor,
        invariant: bool,
        trend: torch.Tensor | None = None,
    ):
        """Mean [B, T] and scale [B, T] or None; see ``_mean`` and ``_scale``."""
        mean = self._mean(h, lags, self._rate(dt), invariant, self._line(trend, dt))
        return mean, self._scale(h, free, invariant)

    # -- the rollout ----------------------------------------------------------------------------
    def forward(
        self,
        x: torch.Tensor,
        dt: torch.Tensor,
        y: torch.Tensor,
        feed: torch.Tensor,
        *,
        static_num: torch.Tensor | None = None,
        static_cat: torch.Tensor | None = None,
        sample: bool = False,
        generator: torch.Generator | None = None,
        detach_feedback: bool = False,
        fused: bool = True,
        noise: torch.Tensor | None = None,
        invariant: bool = False,
        latent: torch.Tensor | None = None,
        capture: torch.Tensor | None = None,
    ) -> Rollout:
        """Run the model over T rows.

        Parameters
        ----------
        x : [B, T, C] scaled conditions per row.
        dt : [B, T] scaled log step length from row t to row t + 1.
        y : [B, T] scaled measured durability; any value where ``feed`` is False is ignored.
            Column 0 must be finite (the starting state).
        feed : [B, T] bool; True = feed back the measured y_t at input step t, False = the model's
            own prediction of row t.
        sample : free-running steps feed back a draw from the predicted Gaussian instead of its
            mean (Monte Carlo paths, as DeepAR does). Draws use ``generator``.
        detach_feedback : cut the gradient through fed-back predictions.
        fused : use the fused multi-step RNN for the known-input prefix (False steps everywhere;
            only for tests that check both paths agree).
        noise : [B, T-1] standard-normal draws to use instead of ``generator`` (so that each
            specimen's Monte Carlo paths do not depend on the other specimens in the batch).
        invariant : compute every row alike in any batch (forecasts: --shard and
            --chunk-specimens pieces then equal the whole-table output bit for bit); see
            docs/ARCHITECTURE.md, "A forecast does not depend on its batch".
        latent : [B, D] each specimen's latent vector z (models with ``cfg.latent``; None = the
            population's z = 0).
        capture : [B] long, with ``invariant``: keep where each row's step loop stands after its
            step ``capture[b]`` (-1: nothing) in the rollout's ``kept`` (:class:`Resume`), for
            :meth:`resume_mean` to run on from there. A step of the fused prefix before its last
            is not kept (``kept.step`` -1): whether a row is kept depends on the warm-ups beside
            it.
        """
        B, T, _ = x.shape
        if capture is not None and (not invariant or self.stacked):
            raise ValueError(
                "a rollout keeps where its rows stand (capture) only with invariant=True, unstacked"
            )
        if invariant and 0 < B < INVARIANT_MIN_ROWS:
            return self._padded(
                x,
                dt,
                y,
                feed,
                static_num,
                static_cat,
                sample,
                generator,
                detach_feedback,
                fused,
                noise,
                latent,
                capture,
            )
        static = self._static(static_num, static_cat, latent, B)
        trend = self._trend(dt, y, feed)
        how = _How(sample, generator, noise, detach_feedback, invariant, capture=capture)
        out = _Pieces()
        if capture is not None:
            out.kept = self._unkept(x, B, static)
        carry = self._begin(x, dt, y, feed, static, how, out, trend, fused)
        if capture is not None and carry.step > 0:  # rows kept after the fused prefix's last step
            rows = torch.nonzero(capture == carry.step - 1)[:, 0]
            if len(rows):
                free = y.new_zeros(B)  # the loop starts counting here
                _keep(out.kept, rows, carry.step, carry.state, carry.history, carry.last_path, free)
        if carry.step < T - 1:
            self._run_steps(x, dt, y, feed, static, carry, how, out, trend)
        if not out.means:  # a single row: nothing to predict
            empty = x.new_zeros(B, 0)
            return Rollout(empty, empty if self.cfg.loss == "gaussian" else None, empty, empty, [], out.kept)
        return Rollout(
            mean=torch.cat(out.means, dim=1),
            scale=torch.cat(out.scales, dim=1) if self.cfg.loss == "gaussian" else None,
            path=torch.cat(out.paths, dim=1),
            fed=torch.cat(out.feds, dim=1),
            pieces=out.paths,
            kept=out.kept,
        )

    def _unkept(self, x: torch.Tensor, B: int, static) -> Resume:
        """A :class:`Resume` of ``B`` rows none of which is kept yet."""
        L, H, K = self.cfg.layers, self.cfg.hidden, self.cfg.lags
        zeros = x.new_zeros(L, B, H)
        state = (zeros, zeros.clone()) if self.cfg.cell == "lstm" else zeros
        step = torch.full((B,), -1, dtype=torch.long, device=x.device)
        return Resume(step, state, x.new_zeros(B, K), x.new_zeros(B), x.new_zeros(B), static)

    def _begin(self, x, dt, y, feed, static, how: _How, out: _Pieces, trend, fused: bool = True) -> _Carry:
        """Run the prefix where every fed-back value is measured, fused in one RNN call (none
        when not ``fused`` or ``stacked``); appends to ``out`` and returns where the step loop
        starts."""
        known = feed[:, : x.shape[1] - 1].all(dim=0)  # [T-1]
        prefix = int(known.long().cumprod(0).sum()) if fused and not self.stacked else 0
        if prefix == 0:
            return _Carry(0)
        state, history = self._run_prefix(x, dt, y, feed, static, prefix, how, out, trend)
        return _Carry(prefix, state, history, out.paths[-1][:, -1])

    def _run_prefix(self, x, dt, y, feed, static, prefix: int, how: _How, out: _Pieces, trend=None):
        """The first ``prefix`` steps, whose fed-back values are all measured, through the fused
        RNN; appends to ``out`` and returns the RNN state and the last K fed-back values [B, K]."""
        K = self.cfg.lags
        v = y[:, :prefix]  # [B, P] measured values
        first = v[:, :1].expand(-1, K - 1)  # [B, K-1] before row 0 we repeat row 0
        padded = torch.cat([first, v], dim=1)  # [B, P+K-1]
        lags = padded.unfold(1, K, 1)  # [B, P, K] window ending at each step
        # Without gradients (forecasts, validation) a long warm-up runs in windows that carry
        # the state: only [B, WINDOW, H] activations live at a time instead of [B, P, H] (plus
        # the head's features), which for 1,000 specimens x 3,000 warm-up rows is the
        # difference between ~40 MB and ~1.5 GB. With gradients backward needs them all anyway.
        window = prefix if torch.is_grad_enabled() else PREFIX_WINDOW
        pieces_mean, pieces_scale = [], []
        state = None
        for a in range(0, prefix, window):
            b = min(prefix, a + window)
            part = None if trend is None else trend[:, a:b]
            inp = self._inputs(x[:, a:b], dt[:, a:b], lags[:, a:b], feed[:, a:b], static, part)  # [B, W, F]
            h, state = self.rnn(inp, state)  # [B, W, H]
            m, sc = self._head(h, lags[:, a:b], dt[:, a:b], torch.zeros_like(v[:, a:b]), how.invariant, part)
            pieces_mean.append(m)
            pieces_scale.append(sc)
        mean = pieces_mean[0] if len(pieces_mean) == 1 else torch.cat(pieces_mean, dim=1)
        scale = None
        if self.scale_head is not None:
            scale = pieces_scale[0] if len(pieces_scale) == 1 else torch.cat(pieces_scale, dim=1)
        out.means.append(mean)
        out.scales.append(scale)
        noise = None if how.noise is None else how.noise[:, :prefix]
        out.paths.append(self._draw(mean, scale, how.sample, how.generator, noise))
        out.feds.append(v)
        return state, padded[:, -K:]

    def _run_steps(
        self,
        x,
        dt,
        y,
        feed,
        static,
        start: _Carry,
        how: _How,
        out: _Pieces,
        trend=None,
        stop: int | None = None,
    ) -> _Carry:
        """The steps from ``start.step`` (after the fused prefix, or where an earlier call stopped)
        to ``stop`` (None: the last), one at a time, each feeding back the measured value or the
        previous prediction; appends to ``out`` and returns where the loop stands."""
        B, T, _ = x.shape
        K, invariant = self.cfg.lags, how.invariant
        n_steps = T - 1 if stop is None else stop
        prefix, state, history, last_path = start.step, start.state, start.history, start.last_path
        # [B] steps since the last measured value was fed back
        free = y.new_zeros(B) if start.free is None else start.free
        # Everything the step loop reads that does not depend on its outputs, built once (and
        # kept in the carry for a loop that resumes).
        inputs = start.inputs
        if inputs is None:
            inputs = (
                self._rate(dt),  # [B, T] or None
                self._line(trend, dt),  # [B, T] or None
                torch.cat([x, dt.unsqueeze(-1)], dim=-1),  # [B, T, C+1] known in advance
                feed.to(x.dtype).unsqueeze(-1),  # [B, T, 1] "the fed-back value was measured"
            )
        rate, line, known, measured = inputs
        tail = [] if static is None else [static]
        # The scale does not feed back unless paths are sampled: then it is computed once for
        # all steps after the loop (fewer autograd nodes per step), or without gradients every
        # PREFIX_WINDOW steps (so that a long horizon does not hold every step's state).
        scale_inside = how.sample and self.scale_head is not None
        keep_h = self.scale_head is not None and not scale_inside and how.scale
        flush_every = n_steps if torch.is_grad_enabled() else PREFIX_WINDOW
        hs, frees = [], []
        # One step at a time. In training, a small batch steps through the plain cell functions
        # on the RNN's own weights (8 rows, 2 x 64 LSTM: 0.037 ms a step, vs 0.059 for nn.LSTM
        # without oneDNN and 0.105 with it; forward + backward of 141 steps 30 vs 41 ms); from
        # ONEDNN_MIN_BATCH rows the module with oneDNN's fused kernel wins (512 rows: 0.41 vs
        # 0.84 ms a step). The fused prefix always runs the module.
        # With ``invariant`` (forecasts) the module steps whatever the batch: its rows are then
        # computed alike in any batch of 8 or more rows and the fused prefix equals the steps bit
        # for bit, so a specimen's forecast does not depend on the other specimens in the batch.
        small = (B < ONEDNN_MIN_BATCH and not invariant) or self.stacked
        if small:
            state = self._cell_state(state, B, x)
            weights = self._cell_weights()
        else:
            module_step = self._module_step()
        # the steps after which some row's loop is kept (forward's capture), and those rows
        keep_at: dict[int, torch.Tensor] = {}
        if how.capture is not None and not small:
            for t in how.capture.unique().tolist():
                if prefix <= t < n_steps:
                    keep_at[t] = torch.nonzero(how.capture == t)[:, 0]
        with _without_onednn() if small else nullcontext():
            for t in range(prefix, n_steps):
                if t == 0:
                    v_t = y[:, 0]  # [B]
                    history = v_t.unsqueeze(1).expand(-1, K)  # [B, K]
                else:
                    own = last_path.detach() if how.detach_feedback else last_path
                    v_t = torch.where(feed[:, t], y[:, t], own)  # [B]
                    history = torch.cat([history[:, 1:], v_t.unsqueeze(1)], dim=1)  # [B, K]
                    free = torch.where(feed[:, t], torch.zeros_like(free), free + 1.0)
                extra = [] if trend is None else [trend[:, t]]
                inp = torch.cat([known[:, t], history, measured[:, t], *tail, *extra], dim=1)  # [B, F]
                if small:
                    h, state = self._cell_step(inp, state, weights)  # [B, 1, H]
                else:
                    h, state = module_step(inp.unsqueeze(1), state)  # [B, 1, H]
                mean = self._mean(
                    h,
                    history.unsqueeze(1),
                    None if rate is None else rate[:, t : t + 1],
                    invariant,
                    None if line is None else line[:, t : t + 1],
                )
                if scale_inside:
                    scale = self._scale(h, free.unsqueeze(1), invariant)
                    noise = None if how.noise is None else how.noise[:, t : t + 1]
                    path = self._draw(mean, scale, how.sample, how.generator, noise)  # [B, 1]
                    out.scales.append(scale)
                else:
                    path = mean
                    if keep_h:
                        hs.append(h)
                        frees.append(free)
                        if len(hs) == flush_every:
                            out.scales.append(
                                self._scale(torch.cat(hs, dim=1), torch.stack(frees, dim=1), invariant)
                            )
                            hs, frees = [], []
                out.means.append(mean)
                out.paths.append(path)
                out.feds.append(v_t.unsqueeze(1))
                last_path = path[:, 0]
                if t in keep_at:
                    _keep(out.kept, keep_at[t], t + 1, state, history, last_path, free)
            if hs:
                out.scales.append(self._scale(torch.cat(hs, dim=1), torch.stack(frees, dim=1), invariant))
        return _Carry(max(prefix, n_steps), state, history, last_path, free, inputs)

    def run(self, t, feed: torch.Tensor, **options) -> Rollout:
        """:meth:`forward` over a batch of specimens ``t`` (a ``data.Tensors``): its conditions,
        step lengths, durability and statics; ``options`` as for :meth:`forward`."""
        return self(t.x, t.dt, t.y, feed, static_num=t.static_num, static_cat=t.static_cat, **options)

    @torch.no_grad()
    def stream_mean(
        self, t, feed: torch.Tensor, *, latent: torch.Tensor | None = None, every: int = PREFIX_WINDOW
    ) -> Iterator[torch.Tensor]:
        """:meth:`run`'s mean path with ``invariant`` and the mean fed back where free, in pieces
        [B, n] of rows 1, 2, ... in order: the warm-up's fused prefix, then ``every`` steps at a
        time, each computed only when the next is asked for, so that a caller who has what it
        needs stops there (forecasting's end-of-life run past the horizon). The pieces joined are
        ``run(t, feed, invariant=True, latent=latent).mean`` bit for bit. The scale head is not
        read."""
        if every < 1:
            raise ValueError(f"stream_mean steps at least 1 step at a time, not {every}")
        x, dt, y, static_num, static_cat = t.x, t.dt, t.y, t.static_num, t.static_cat
        B, T, _ = x.shape
        if 0 < B < INVARIANT_MIN_ROWS:  # as forward pads them (_padded)
            x, dt, y, feed, static_num, static_cat, latent = (
                _pad_rows(v) for v in (x, dt, y, feed, static_num, static_cat, latent)
            )
        static = self._static(static_num, static_cat, latent, x.shape[0])
        trend = self._trend(dt, y, feed)
        n_steps = T - 1
        how = _How(False, None, None, False, True, scale=False)
        out = _Pieces()
        carry = self._begin(x, dt, y, feed, static, how, out, trend)
        if carry.step > 0:
            yield out.means[0][:B]
        yield from self._mean_pieces(x, dt, y, feed, static, carry, how, trend, n_steps, every, B)

    def _mean_pieces(
        self, x, dt, y, feed, static, carry: _Carry, how: _How, trend, n_steps: int, every: int, B: int
    ):
        """The step loop from ``carry`` to ``n_steps``, ``every`` steps at a time: each piece's
        means [B, n] (the first ``B`` rows), made only when asked for."""
        while carry.step < n_steps:
            out = _Pieces()
            stop = min(n_steps, carry.step + every)
            carry = self._run_steps(x, dt, y, feed, static, carry, how, out, trend, stop=stop)
            yield torch.cat(out.means, dim=1)[:B]

    @torch.no_grad()
    def resume_mean(
        self, t, feed: torch.Tensor, resume: Resume, *, every: int = PREFIX_WINDOW
    ) -> Iterator[torch.Tensor]:
        """:meth:`stream_mean` run on from where each row's loop was kept (``resume``, from
        ``run(..., invariant=True, capture=)`` over the same rows up to that step; every
        ``resume.step`` at least 1): pieces [B, n], column j of them joined being the mean of row
        ``resume.step[b] + j`` of row b, i.e. ``run(t, feed, invariant=True).mean[b, step[b] - 1 +
        j]`` bit for bit. The first piece is the one column already made (the kept value fed back
        next, the mean of row ``step[b]``), so that a crossing just after it is interpolated from
        it. ``t`` and ``feed`` are the rows' whole tensors (the warm-up's trend is read from them);
        each row's columns from its own step on run together, left-aligned, and a row past its
        last column repeats that column (its values there mean nothing)."""
        if every < 1:
            raise ValueError(f"resume_mean steps at least 1 step at a time, not {every}")
        x, dt, y = t.x, t.dt, t.y
        B, T, _ = x.shape
        start = resume.step.to(x.device)
        if B == 0 or bool((start < 1).any()):
            raise ValueError("resume_mean runs on rows kept after a step of their loop (step >= 1)")
        trend = self._trend(dt, y, feed)
        # column c of a row's left-aligned inputs is its column step - 1 + c: c = 1 is where it resumes
        W = T - int(start.min()) + 1
        cols = (start.unsqueeze(1) - 1 + torch.arange(W, device=x.device)).clamp(max=T - 1)  # [B, W]

        def aligned(v: torch.Tensor | None) -> torch.Tensor | None:
            if v is None:
                return None
            index = cols.view(B, W, *([1] * (v.dim() - 2))).expand(B, W, *v.shape[2:])
            return v.gather(1, index)

        xs, dts, ys, feeds, trends = (aligned(v) for v in (x, dt, y, feed, trend))
        kept = resume
        if B < INVARIANT_MIN_ROWS:  # as forward pads them (_padded)
            xs, dts, ys, feeds, trends = (_pad_rows(v) for v in (xs, dts, ys, feeds, trends))
            kept = resume.apply(
                _pad_rows, lambda s: _pad_rows(s.transpose(0, 1)).transpose(0, 1).contiguous()
            )
        how = _How(False, None, None, False, True, scale=False)
        yield resume.last_path.to(x.device).unsqueeze(1)  # the mean of row step[b], made already
        carry = _Carry(1, kept.state, kept.history, kept.last_path, kept.free)
        yield from self._mean_pieces(xs, dts, ys, feeds, kept.static, carry, how, trends, W - 1, every, B)

    def _padded(
        self,
        x,
        dt,
        y,
        feed,
        static_num,
        static_cat,
        sample,
        generator,
        detach_feedback,
        fused,
        noise,
        latent,
        capture=None,
    ):
        """The rollout of a batch of fewer than INVARIANT_MIN_ROWS rows, run with copies of its
        first row added (the kernels compute a row alike in any batch from that size on)."""
        B = x.shape[0]
        pad = _pad_rows
        r = self.forward(
            pad(x),
            pad(dt),
            pad(y),
            pad(feed),
            static_num=pad(static_num),
            static_cat=pad(static_cat),
            sample=sample,
            generator=generator,
            detach_feedback=detach_feedback,
            fused=fused,
            noise=pad(noise),
            invariant=True,
            latent=pad(latent),
            capture=None
            if capture is None
            else torch.cat([capture, capture.new_full((INVARIANT_MIN_ROWS - B,), -1)]),
        )
        return Rollout(
            mean=r.mean[:B],
            scale=None if r.scale is None else r.scale[:B],
            path=r.path[:B],
            fed=r.fed[:B],
            pieces=[p[:B] for p in r.pieces],
            kept=None if r.kept is None else r.kept.take(slice(0, B)),
        )

    def _module_step(self):
        """``step(inp [B, 1, F], state) -> (h [B, 1, H], state)``: what ``self.rnn(inp, state)``
        computes, through the same kernel (``torch._VF.lstm`` / ``gru`` on the module's flat
        weights, the module's own arguments), without the module's per-call Python (its argument
        checks and weight bookkeeping, about a tenth of a forecast step at a few dozen rows; the
        weights are brought up to date once, here). The module itself where hooks watch its calls
        (tests do), and on a torch without that bookkeeping's method."""
        rnn = self.rnn
        update = getattr(rnn, "_update_flat_weights", None)
        hooked = any(
            getattr(owner, name, None)
            for owner in (rnn, torch.nn.modules.module)
            for name in (
                "_forward_hooks",
                "_forward_pre_hooks",
                "_backward_hooks",
                "_backward_pre_hooks",
                "_global_forward_hooks",
                "_global_forward_pre_hooks",
                "_global_backward_hooks",
                "_global_backward_pre_hooks",
            )
        )
        if hooked or update is None or not hasattr(rnn, "_flat_weights") or getattr(rnn, "proj_size", 0):
            return rnn
        update()
        lstm = self.cfg.cell == "lstm"
        kernel = _VF.lstm if lstm else _VF.gru
        args = (
            rnn._flat_weights,
            rnn.bias,
            rnn.num_layers,
            float(rnn.dropout),
            rnn.training,
            rnn.bidirectional,
            rnn.batch_first,
        )
        L, H = rnn.num_layers, rnn.hidden_size

        def step(inp: torch.Tensor, state):
            if state is None:  # as the module starts: zeros
                zeros = inp.new_zeros(L, inp.shape[0], H)
                state = (zeros, zeros.clone()) if lstm else zeros
            out = kernel(inp, state, *args)
            return out[0], (out[1], out[2]) if lstm else out[1]

        return step

    def _cell_state(self, state, B: int, like: torch.Tensor) -> list:
        """nn.LSTM/GRU state (or None) -> one state per layer for ``_cell_step``."""
        L, H = self.cfg.layers, self.cfg.hidden
        if isinstance(state, list):  # already one per layer (a step loop resumed)
            return state
        if state is None:
            zeros = like.new_zeros(B, H)
            return [(zeros, zeros) if self.cfg.cell == "lstm" else zeros for _ in range(L)]
        if self.cfg.cell == "lstm":
            h, c = state
            return [(h[i], c[i]) for i in range(L)]
        return [state[i] for i in range(L)]

    def _cell_weights(self) -> list[tuple]:
        """Each layer's weights for ``_cell_step``: the RNN's (w_ih, w_hh, b_ih, b_hh). With
        ``stacked`` they are laid out once per rollout for the written-out cells: transposed, and
        an LSTM's joined into (w_ih | w_hh, b_ih + b_hh), so that a step makes one product instead
        of two (under vmap a transposed product per step costs about 10 % more)."""
        rnn, out = self.rnn, []
        for i in range(self.cfg.layers):
            w = tuple(
                getattr(rnn, f"{name}_l{i}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            )
            if self.stacked and self.cfg.cell == "lstm":
                w = (torch.cat(w[:2], dim=1).t().contiguous(), w[2] + w[3])  # [F + H, 4H], [4H]
            elif self.stacked:
                w = (w[0].t().contiguous(), w[1].t().contiguous(), w[2], w[3])  # [F, 3H], [H, 3H]
            out.append(w)
        return out

    def _cell_step(self, inp: torch.Tensor, state: list, weights: list[tuple]) -> tuple[torch.Tensor, list]:
        """One step of the stacked RNN through torch's cell functions and the module's weights
        (``_cell_weights``; the same arithmetic as nn.LSTM/GRU, dropout between layers included):
        inp [B, F] -> h [B, 1, H] and the new per-layer state."""
        lstm = self.cfg.cell == "lstm"
        if self.stacked:
            cell = _lstm_cell if lstm else _gru_cell
        else:
            cell = torch.lstm_cell if lstm else torch.gru_cell
        rnn, last = self.rnn, self.cfg.layers - 1
        new = []
        for i in range(self.cfg.layers):
            s = cell(inp, state[i], *weights[i])
            new.append(s)
            inp = s[0] if lstm else s
            if i < last and rnn.dropout and self.training:
                inp = F.dropout(inp, rnn.dropout, training=True)
        return inp.unsqueeze(1), new

    @staticmethod
    def _draw(mean, scale, sample: bool, generator, noise):
        if not sample or scale is None:
            return mean
        if noise is None:
            noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        return mean + scale * noise  # reparameterised: gradients reach mean and scale


def _keep(kept: Resume, rows: torch.Tensor, step: int, state, history, last_path, free) -> None:
    """Write where ``rows`` stand (the loop's ``state`` and values after step ``step - 1``) into
    ``kept``."""
    kept.step[rows] = step
    # in the loop's own dtypes (under autocast they can differ from the inputs')
    kept.state = _state_map(lambda into, now: _put(into, now, (slice(None), rows)), kept.state, state)
    kept.history = _put(kept.history, history, rows)
    kept.last_path = _put(kept.last_path, last_path, rows)
    kept.free = _put(kept.free, free, rows)


def _put(into: torch.Tensor, now: torch.Tensor, index) -> torch.Tensor:
    """``into`` in ``now``'s dtype with ``now``'s entries at ``index`` written in."""
    into = into.to(now.dtype)
    into[index] = now[index]
    return into


def _state_map(fn, *states):
    """``fn`` over RNN states: each tensor of nn.LSTM's (h, c) in turn (the states' h together,
    then their c), or nn.GRU's h."""
    if isinstance(states[0], tuple):
        return tuple(fn(*parts) for parts in zip(*states, strict=True))
    return fn(*states)


def _pad_rows(t: torch.Tensor | None) -> torch.Tensor | None:
    """``t`` [B, ...] with copies of its first row added up to INVARIANT_MIN_ROWS rows: the
    kernels compute a row alike in any batch from that size on."""
    if t is None:
        return None
    return torch.cat([t, t[:1].expand(INVARIANT_MIN_ROWS - t.shape[0], *t.shape[1:])])


def _lstm_cell(inp, state, w, b):
    """torch.lstm_cell's arithmetic (gates i, f, g, o) in functions vmap can batch; ``w`` [F+H, 4H]
    and ``b`` are the input and hidden weights joined (``FeedbackRNN._cell_weights``)."""
    h, c = state
    gates = torch.cat([inp, h], dim=-1) @ w + b  # [B, 4H]
    i, f, _, o = torch.sigmoid(gates).chunk(4, -1)  # [B, H] each
    c = f * c + i * torch.tanh(gates[..., 2 * c.shape[-1] : 3 * c.shape[-1]])
    return o * torch.tanh(c), c


def _gru_cell(inp, h, w_ih, w_hh, b_ih, b_hh):
    """torch.gru_cell's arithmetic (gates r, z, n) in functions vmap can batch; the weights
    transposed (``FeedbackRNN._cell_weights``)."""
    x_r, x_z, x_n = (inp @ w_ih + b_ih).chunk(3, -1)  # [B, H] each
    h_r, h_z, h_n = (h @ w_hh + b_hh).chunk(3, -1)
    r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h


def head_scale(head: nn.Linear, features: torch.Tensor, invariant: bool = False) -> torch.Tensor:
    """The scale head's standard deviation [...] from its input features [..., H+1] (the state
    and log1p of the steps run free): what every rollout predicts, and what scale_refit fits."""
    return 0.5 * _softplus(_read_out(head, features, invariant), invariant) + 1e-3


def _read_out(layer: nn.Linear, h: torch.Tensor, invariant: bool) -> torch.Tensor:
    """A one-output linear layer over the last dimension: h [..., F] -> [...].

    The layer itself, or with ``invariant`` the same sum written out row by row (a product and a
    sum over the last, contiguous dimension, HEAD_BLOCK_ROWS rows at a time): a matrix product
    with one output column picks its kernel by the number of rows, which would make a row's
    value depend on how many other rows share the call."""
    if not invariant:
        return layer(h)[..., 0]
    w = layer.weight[0]  # [F]
    flat = h.reshape(-1, h.shape[-1])
    if len(flat) <= HEAD_BLOCK_ROWS:  # one block (a step's few rows): the same sums, fewer calls
        out = (flat * w).sum(-1)
    else:
        out = torch.cat([(block * w).sum(-1) for block in flat.split(HEAD_BLOCK_ROWS)])
    if layer.bias is not None:
        out = out + layer.bias[0]
    return out.reshape(h.shape[:-1])


def _softplus(x: torch.Tensor, invariant: bool) -> torch.Tensor:
    """softplus; with ``invariant`` written as log1p(exp(x)) (torch's threshold at 20 kept), whose
    vectorised kernels give an element the same value wherever it sits in the tensor (the fused
    softplus kernel does not in its scalar tail)."""
    if not invariant:
        return F.softplus(x)
    return torch.where(x > 20.0, x, torch.log1p(torch.exp(x)))


@contextmanager
def _without_onednn():
    """Switch oneDNN off for the block (set the flag directly: ``flags()`` warns on every call)."""
    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = before
