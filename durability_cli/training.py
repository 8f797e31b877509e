"""Fit loop: split by specimen, scheduled sampling, free-running validation, checkpoints, resume.

The trainer reports progress through a callback and never prints. Early stopping and the best
weights are chosen on the *free-running* validation RMSE from a warm-up (the way the model is used),
in durability units, not on the teacher-forced loss, which can look perfect while the forecast is a
flat line.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from durability_cli import eol_warp, limits, mixed_effects, scale_refit, warp
from durability_cli.adam import Adam
from durability_cli.artifact import (
    CHECKPOINT_FORMAT,
    ModelBundle,
    build_model,
    load_bundle,
    read_safetensors,
)
from durability_cli.config import (
    AUTO_STEPS,
    BASE_BATCH,
    MAX_AUTO_BATCH,
    MIN_AUTO_EPOCHS,
    MIN_AUTO_PATIENCE,
    PATIENCE_SHARE,
    ROWS_PER_STEP,
    ModelConfig,
    RowShare,
    TrainConfig,
    as_dict,
    shortest_warmup,
    shortest_warmups,
    warmup_rows,
)
from durability_cli.data import (
    Scaler,
    ScalerFit,
    Series,
    Tensors,
    autocast,
    concat_series,
    move,
    slice_tensors,
    to_series,
    to_tensors,
)
from durability_cli.errors import InputError, ModelFileError, TrainingError
from durability_cli.io import atomic_path
from durability_cli.latent import fit_posterior, latent_variance, prior
from durability_cli.model import FeedbackRNN
from durability_cli.modelfile import SINGLE_FORMAT_VERSION
from durability_cli.parallel import Distributed
from durability_cli.recut import recut
from durability_cli.recut import stream as recut_stream
from durability_cli.schedules import teacher_forcing_ratio
from durability_cli.schema import Dataset, measured_only, specimen_starts
from durability_cli.transforms import apply as apply_transforms
from durability_cli.transforms import per_condition


class TrainingInterrupted(TrainingError):
    """Ctrl-C or SIGTERM: the last completed epoch is in the checkpoint."""

    exit_code = 130


class TrainingDiverged(TrainingError):
    """The loss became NaN or exploded; ``bundle`` holds the best weights so far (or None)."""

    def __init__(self, message: str, bundle: ModelBundle | None):
        super().__init__(message)
        self.bundle = bundle


@dataclass
class EpochLog:
    epoch: int
    train_loss: float
    val_rmse: float
    teacher_forcing: float  # the schedule's probability this epoch
    fed_measured: float  # share of free-run-eligible steps that actually got the measured value
    seconds: float
    best: bool


# -- splitting and windows -------------------------------------------------------------------------
def split_specimens(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of training and validation specimens. Never splits inside a specimen."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = _n_val(n, val_fraction)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _n_val(n: int, val_fraction: float) -> int:
    """How many of ``n`` specimens validate: the fraction, at least 1 and at most n - 1 (none
    for fewer than 4 specimens or a fraction of 0)."""
    if val_fraction > 0 and n >= 4:
        return min(max(int(round(n * val_fraction)), 1), n - 1)
    return 0


def stratified_split(features: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of training and validation specimens, the validation ones spread over the table:
    the specimens ordered along the first principal component of their standardised
    ``features`` [N, F] (e.g. mean conditions and log length), cut into as many consecutive
    groups as there are validation specimens, and one drawn at random from each group. A random
    split of 23 devices tested at three temperatures can validate on five of the hottest alone;
    this one takes one from each fifth of the temperature range. Columns that do not vary are
    ignored; if none varies the order is random."""
    n = len(features)
    n_val = _n_val(n, val_fraction)
    if not n_val:
        return np.arange(n), np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    x = np.asarray(features, dtype=np.float64).reshape(n, -1)
    sd = x.std(axis=0)
    keep = sd > 0
    x = (x[:, keep] - x[:, keep].mean(axis=0)) / sd[keep]
    if x.shape[1]:
        pc1 = np.linalg.svd(x, full_matrices=False)[0][:, 0]
        order = np.argsort(pc1, kind="stable")
    else:
        order = rng.permutation(n)
    val = np.array([g[rng.integers(len(g))] for g in np.array_split(order, n_val)], dtype=np.int64)
    return np.setdiff1d(np.arange(n), val), np.sort(val)


def specimen_features(groups) -> np.ndarray:
    """[N, F] what tells one specimen's circumstances from another's, for a stratified split:
    the mean of each condition over its rows, its numeric static values, its categorical static
    values one-hot, and the log of its row count (one pass over the groups)."""
    rows, labels = [], []
    for ds in groups:
        s = to_series(ds)
        with warnings.catch_warnings():  # a condition never measured for a specimen: NaN, set below
            warnings.simplefilter("ignore", RuntimeWarning)
            cond = np.nanmean(s.cond, axis=1) if s.cond.shape[2] else np.zeros((len(s.ids), 0))
        rows.append(
            np.concatenate([cond, s.static_numeric.astype(np.float64), np.log(s.lengths)[:, None]], axis=1)
        )
        labels.append(s.static_categorical.astype(str))
    if not rows:
        return np.zeros((0, 1))
    x = np.concatenate(rows)
    cats = np.concatenate(labels)
    onehot = [np.unique(cats[:, c], return_inverse=True)[1] for c in range(cats.shape[1])]
    onehot = [np.eye(int(codes.max()) + 1)[codes] for codes in onehot]
    with warnings.catch_warnings():  # a column with no finite value at all: 0
        warnings.simplefilter("ignore", RuntimeWarning)
        fill = np.nan_to_num(np.nanmean(np.where(np.isfinite(x), x, np.nan), axis=0))
    return np.concatenate([np.where(np.isfinite(x), x, fill), *onehot], axis=1)


def chosen_split(ids: np.ndarray, val_ids, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Indices of training and validation specimens when the validation ones are named."""
    named = {str(v) for v in val_ids}
    is_val = np.array([str(i) in named for i in ids], dtype=bool)
    if int(is_val.sum()) != len(named):
        raise InputError(f"{source}: `val_ids` names specimens that are not in the table")
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def auto_context(lengths: np.ndarray) -> int:
    """Default warm-up for validation: 20% of the median series length, at least 3 rows."""
    return int(max(3, round(0.2 * float(np.median(lengths)))))


def validation_warmup(cfg: TrainConfig, lengths: np.ndarray) -> int | RowShare:
    """The warm-up validation forecasts from: ``val_context_frac`` of each specimen's rows, else
    ``val_context`` rows, else (both 0) ``auto_context``."""
    if cfg.val_context_frac:
        return RowShare(cfg.val_context_frac)
    return cfg.val_context or auto_context(lengths)


def check_context(lengths: np.ndarray, context: int | RowShare, given: bool, source: str) -> None:
    """Refuse, before training, a warm-up that leaves no validation row to score: early stopping
    would then compare NaN errors and the run would end as 'diverged'."""
    if isinstance(context, RowShare):
        if len(lengths) and (context.rows(lengths) < lengths).any():
            return
        raise InputError(
            f"{source}: validation warms up on {context}, which leaves no row to forecast on any "
            f"validation specimen ({int(lengths.max()) if len(lengths) else 0} rows at most); lower "
            "`val_context_frac`"
        )
    longest = int(lengths.max()) if len(lengths) else 0
    if longest > context:
        return
    if given:
        fix = f"lower `val_context` below {longest}"
    else:
        fix = f"give each specimen more than {context} rows, or set `val_context` below {longest}"
    raise InputError(
        f"{source}: validation warms up on the first {context} rows of each specimen, and the longest "
        f"validation specimen has {longest} rows, so no forecast can be scored; {fix}"
    )


def check_memory(
    lengths: np.ndarray, n_train: int, model_cfg: ModelConfig, cfg: TrainConfig, source: str
) -> None:
    """Refuse, before training, a run whose backpropagation through time would not fit the memory
    budget. Measured (hidden 8, CPU): about 30 kB of autograd state per step of a batch, plus the
    activations of each specimen in it; a whole 1,000,000-row specimen needs tens of GB."""
    longest = int(lengths.max()) if len(lengths) else 0
    steps = min(cfg.window, longest) if cfg.window else longest
    batch = min(cfg.batch_size, max(n_train, 1))
    per_step = 30_000 + batch * model_cfg.hidden * model_cfg.layers * 64
    limits.check_memory(
        steps * per_step,
        f"{source}: training through {steps:,} steps at once (--window {cfg.window}, longest specimen "
        f"{longest:,} rows, batches of {batch})",
        "train on windows, e.g. --window 500, or a smaller --batch-size",
    )


def _window(t: Tensors, lengths: torch.Tensor, window: int, gen: torch.Generator) -> Tensors:
    """Random windows of ``window`` steps (truncated BPTT) starting at a measured row."""
    B, T = t.y.shape
    if window <= 0 or T <= window:
        return t
    span = (lengths - window).clamp(min=0)  # [B] last admissible start
    start = (torch.rand(B, generator=gen) * (span + 1).float()).long()  # [B]
    obs = t.observed.clone()
    obs[:, 0] = True
    # move each start forward to the next measured row so the window's state is known
    pos = torch.arange(T).unsqueeze(0)  # [1, T]
    candidates = torch.where(obs & (pos >= start.unsqueeze(1)), pos, T)  # [B, T]
    start = torch.minimum(candidates.min(dim=1).values, span)
    idx = start.unsqueeze(1) + torch.arange(window).unsqueeze(0)  # [B, W]
    idx = idx.clamp(max=T - 1)
    inside = (start.unsqueeze(1) + torch.arange(window).unsqueeze(0)) < lengths.unsqueeze(1)

    def g(x):
        if x.dim() == 3:
            return torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[2]))
        return torch.gather(x, 1, idx)

    observed = g(t.observed) & inside
    y = g(t.y)
    observed[:, 0] = True  # the start was chosen on a measured row (or row 0, which is filled)
    return Tensors(g(t.x), g(t.dt), y, observed, g(t.valid) & inside, t.static_num, t.static_cat, t.index)


# -- loss and validation ---------------------------------------------------------------------------
def rollout_loss(
    model: FeedbackRNN,
    t: Tensors,
    feed: torch.Tensor,
    *,
    cfg: TrainConfig,
    gen: torch.Generator | None,
) -> torch.Tensor:
    """Loss of one rollout over the rows that have a measured target (padding never counts)."""
    per, mask, r = _row_losses(model, t, feed, cfg=cfg, gen=gen)
    if not bool(mask.any()):
        return r.mean.sum() * 0.0
    if model.cfg.latent:  # MAP: the rows' errors plus each specimen's prior, per scored row
        return (per[mask].sum() + prior(model, _latent_rows(model, t))) / mask.sum()
    return per[mask].mean()


def _latent_rows(model: FeedbackRNN, t: Tensors) -> torch.Tensor | None:
    """[B, D] the batch's rows of the training specimens' latent table (None for models without
    one): what the prior is taken on."""
    if not model.cfg.latent:
        return None
    if t.index is None:
        raise TrainingError("a latent model's training batch must carry its specimens' rows (Tensors.index)")
    return model.latent_table[t.index.to(model.latent_table.device)]


def _blurred(model: FeedbackRNN, z: torch.Tensor | None) -> torch.Tensor | None:
    """The z a training rollout is fed: the table rows plus one draw of noise per batch.

    A blurred z cannot serve as a specimen's name (with a few dozen specimens two exact numbers
    would be enough to memorise each curve); it can still carry "fast" or "slow". The prior stays
    on the table rows themselves, so its gradient is exactly latent_prior * z."""
    if z is None or not (model.training and LATENT_TRAIN_NOISE):
        return z
    return z + LATENT_TRAIN_NOISE * torch.randn(z.shape, device=z.device)


LATENT_TRAIN_NOISE = 0.3  # sd of the noise added to a training specimen's z at each use


# Share of a latent model's training specimens (drawn per batch) that run with the z the forecast
# would give them, fitted to the warm-up the rollout feeds, instead of their own row of the table.
# A table row learns from the whole series (a late knee included), which no warm-up shows; fed
# only those, the network leans on what a forecast's z cannot carry (battery: validation best at
# epoch 3, test RMSE +44 % over the default). Fed the fitted z half the time, the network learns
# to forecast from what a warm-up reveals. Measured, 3 seeds (benchmarks/results/notes.md):
# battery 0.0304 -> 0.0193 (default 0.0211), ball 2.93 -> 2.35 (2.69); ageing 0.026 -> 0.035 and
# coating 0.043 -> 0.047 keep most of the gain (defaults 0.056, 0.092); device_b unchanged.
FITTED_SHARE = 0.5


def _training_latent(model: FeedbackRNN, t: Tensors, feed: torch.Tensor, gen) -> torch.Tensor | None:
    """[B, D] the z each specimen of a training batch is fed (None for models without a latent):
    its blurred table row, or for a share FITTED_SHARE of them (drawn from ``gen``) the z fitted
    to the warm-up the rollout feeds (``warmup_lengths(feed)``), the network frozen, as a
    forecast fits it. The fitted z carries no gradient: the network learns to use it."""
    z = _blurred(model, _latent_rows(model, t))
    if z is None or not (model.training and FITTED_SHARE):
        return z
    fitted = torch.rand(z.shape[0], generator=gen) < FITTED_SHARE  # [B], on the CPU as gen is
    if not bool(fitted.any()):
        return z
    rows = fitted.nonzero().squeeze(1).to(z.device)
    part = slice_tensors(t, rows)
    fit, _ = fit_posterior(model, part, warmup_lengths(feed[rows]))
    return z.index_copy(0, rows, fit.to(z.dtype))


def warmup_lengths(feed: torch.Tensor) -> torch.Tensor:
    """[B] long, each row's leading run of fed (measured) values in a feed mask [B, T]: the
    warm-up a rollout starts from (at least 2 rows, the least a warm-up fit reads)."""
    free = ~feed
    first_free = torch.where(free.any(1), free.long().argmax(1), feed.shape[1])
    return first_free.clamp(min=2)


def _row_losses(model, t: Tensors, feed, *, cfg: TrainConfig, gen, noise=None):
    """Per-row loss [B, T-1], the mask of rows that count [B, T-1], and the rollout."""
    r = model.run(
        t,
        feed,
        sample=cfg.feedback == "sample",
        generator=gen,
        detach_feedback=cfg.detach_feedback,
        noise=noise,
        latent=_training_latent(model, t, feed, gen),
    )
    target = t.y[:, 1:]  # [B, T-1]
    mask = (t.observed & t.valid)[:, 1:]  # [B, T-1]
    loss_kind = model.cfg.loss
    if loss_kind == "gaussian":
        # The mean learns by squared error and the scale by likelihood around the (detached) mean:
        # a plain Gaussian likelihood lets early, large free-run errors blow up through 1/scale^2.
        scale = r.scale.float()  # bfloat16 under --amp: the likelihood is taken in float32
        nll = 0.5 * ((target - r.mean.detach()) / scale) ** 2 + torch.log(scale)
        per = (r.mean - target) ** 2 + nll
    elif loss_kind == "huber":
        per = F.huber_loss(r.mean, target, reduction="none", delta=1.0)
    else:
        per = (r.mean - target) ** 2
    return per, mask, r


def warmup_tensor(t: Tensors, context: int | RowShare) -> torch.Tensor:
    """[B] each specimen's warm-up rows: ``context`` rows for all, or a share of each one's rows
    (its length in ``t``: whole specimens, not a training window)."""
    lengths = t.valid.sum(dim=1).cpu().numpy()
    return torch.as_tensor(warmup_rows(context, lengths), device=t.y.device)


def warmup_feed(t: Tensors, context: torch.Tensor | int | RowShare) -> torch.Tensor:
    """[B, T] feed mask: measured values before ``context`` rows (one count for all, [B] one
    each, or a share of each specimen's rows), own predictions after."""
    T = t.y.shape[1]
    pos = torch.arange(T, device=t.y.device).unsqueeze(0)
    ctx = context if isinstance(context, torch.Tensor) else warmup_tensor(t, context)
    feed = (t.observed & (pos < ctx.unsqueeze(1))) | ~t.valid  # padding: see _run_epoch
    feed[:, 0] = True
    return feed


def scored_rows(t: Tensors, ctx: torch.Tensor) -> torch.Tensor:
    """[B, T-1] the predictions a free run is scored on: measured rows after each specimen's
    ``ctx`` [B] warm-up rows."""
    pos = torch.arange(1, t.y.shape[1], device=t.y.device).unsqueeze(0)
    return (t.observed & t.valid)[:, 1:] & (pos >= ctx.unsqueeze(1))


@torch.no_grad()
def _free_run_errors(
    model: FeedbackRNN,
    t: Tensors,
    context: int | RowShare,
    spread: float = 0.0,
    rollout=None,
    weight: float = 1.0,
    run: tuple | None = None,
):
    """Over the rows scored (measured, after ``context`` warm-up rows): the free-running
    forecast's errors, persistence's errors (the last warm-up value held), both in scaled units,
    and |error / predicted scale| (None for point models). Flat float32 tensors.

    With ``spread`` > 0, a latent model's predicted spread also holds that of its z, times
    ``spread`` (the refit's factor, scale_refit.latent_spread): the forecast's Monte Carlo paths
    draw z from the warm-up fit's uncertainty (latent.LATENT_DRAWS draws), and the calibration
    measures the paths' spread as a whole. ``rollout``: the free run from
    ``warmup_feed(t, context)``, already made (a stacked ensemble's members, made together).
    ``weight``: the warm-up's weight in a latent model's fit of z (latent.fit_posterior). ``run``:
    :func:`_free_run`'s answer for ``t``, already made (which the other options then do not change)."""
    ctx, feed, latent, cov, r = run if run is not None else _free_run(model, t, context, weight, rollout)
    target = t.y[:, 1:]
    T = t.y.shape[1]
    dev = t.y.device
    mask = scored_rows(t, ctx)
    err = (r.mean - target)[mask]
    # persistence: the last measured value inside the warm-up
    rows = torch.arange(T, device=dev).unsqueeze(0)
    warm = t.observed & (rows < ctx.unsqueeze(1))
    idx = torch.where(warm, rows, 0).max(dim=1).values  # [B]
    last = t.y[torch.arange(len(idx), device=dev), idx].unsqueeze(1).expand_as(target)
    pers = (last - target)[mask]
    z = None
    if model.cfg.loss == "gaussian":
        scale = r.scale
        if spread and latent is not None:
            scale = torch.sqrt(scale**2 + spread**2 * latent_variance(model, t, feed, latent, cov))
        z = ((target - r.mean) / scale)[mask].abs()
    return err, pers, z


def _free_run(model: FeedbackRNN, t: Tensors, context: int | RowShare, weight: float = 1.0, rollout=None):
    """The free run of ``t`` after ``context`` warm-up rows: each specimen's warm-up rows [B], the
    feed mask, a latent model's fitted z and its covariance (else None), and the rollout."""
    model.eval()
    ctx = warmup_tensor(t, context)  # [B]
    feed = warmup_feed(t, ctx)
    latent = cov = None
    if model.cfg.latent:
        latent, cov = fit_posterior(model, t, ctx, weight)
    r = model.run(t, feed, latent=latent) if rollout is None else rollout
    return ctx, feed, latent, cov, r


def _paces(series: Series, scaler: Scaler, run) -> list[float]:
    """Each specimen's log time-stretch factor (eol_warp.fit) from ``run``, :func:`_free_run`'s
    answer for the tensors of ``series``."""
    ctx, r = run[0], run[4]
    mean = np.full(series.y.shape, np.nan)
    mean[:, 1:] = scaler.y_from_model(r.mean.float().cpu().numpy())[:, : series.y.shape[1] - 1]
    return eol_warp.fit(series, mean, ctx.cpu().numpy() - 1)


@torch.no_grad()
def eol_warps(model: FeedbackRNN, parts, scaler: Scaler, context: int | RowShare, limit: int) -> list[float]:
    """The log time-stretch factor of the first ``limit`` specimens of ``parts`` ((Series,
    tensors) pairs, read no further than that) from the model's free run after the validation's
    warm-up, run about scale_refit.CHUNK_ROWS rows at a time."""
    out: list[float] = []
    seen = 0
    for series, t in parts:
        if seen >= limit:
            break
        n = min(len(series.ids), limit - seen)
        size = max(1, scale_refit.chunk_rows(model) // max(1, t.y.shape[1]))
        for a in range(0, n, size):
            keep = np.arange(a, min(a + size, n))
            chunk, ct = series.take(keep), slice_tensors(t, torch.as_tensor(keep))
            out += _paces(chunk, scaler, _free_run(model, ct, context))
        seen += n
    return out


def free_run_rmse(
    model: FeedbackRNN, t: Tensors, scaler: Scaler, context: int | RowShare, weight: float = 1.0
) -> tuple[float, float]:
    """RMSE (durability units) of the free-running forecast after ``context`` measured rows, and
    the same for persistence (the last warm-up value held) on the same rows."""
    err, pers, _ = _free_run_errors(model, t, context, weight=weight)
    return _rmse(err, scaler), _rmse(pers, scaler)


def _rmse(err: torch.Tensor, scaler: Scaler) -> float:
    if not err.numel():
        return float("nan")
    return float(torch.sqrt((err**2).mean())) * scaler.y_std


def free_run_sse(
    model: FeedbackRNN, t: Tensors, context: int | RowShare, weight: float = 1.0
) -> tuple[float, int]:
    """Sum of squared free-running errors (scaled units) after ``context`` measured rows, and
    how many rows it sums: the pieces a distributed validation adds up over ranks. ``weight``:
    the warm-up's weight in a latent model's fit of z (latent.fit_posterior)."""
    err = _free_run_errors(model, t, context, weight=weight)[0].double()
    return float((err**2).sum()), int(err.numel())


def scale_calibration(z: torch.Tensor | None) -> float:
    """Factor k >= 1 for the predicted scale so that the central 80% interval (the default p10-p90)
    covers at least 80% of the free-running validation errors, from their |error / scale| ``z``
    (None for point models): k = quantile(z, 0.8) / z_0.9. A split-conformal style correction of
    one number; the scale head learns on training windows with random, often short warm-ups, and
    this matches it to how the model is used. 1.0 for point models or without validation rows."""
    if z is None or not z.numel():
        return 1.0
    k = scale_refit.needed_factor(z)
    # Only ever widen: the validation specimens chose the early-stopping epoch, so their errors
    # are optimistic, and narrowing on them gave 61% instead of 80% coverage on new coating
    # specimens (uncalibrated: 76%).
    return max(1.0, k) if math.isfinite(k) else 1.0


def population_rmse(model: FeedbackRNN, parts, scaler: Scaler, context: int | RowShare) -> float:
    """A latent model's free-running RMSE on the validation specimens (tensors, a group at a
    time) with z = 0 for every one: the population's forecast, which the forecast with each
    specimen's z fitted to its warm-up should beat (NaN for models without a latent)."""
    if not model.cfg.latent:
        return float("nan")
    sse, n = 0.0, 0
    for t in parts:
        a, b = free_run_sse(model, t, context, weight=0.0)
        sse, n = sse + a, n + b
    return math.sqrt(sse / n) * scaler.y_std if n else float("nan")


# -- the fit loop ----------------------------------------------------------------------------------
@dataclass
class TrainState:
    """Everything a checkpoint holds."""

    model: FeedbackRNN
    optimizer: Adam
    gen: torch.Generator
    epoch: int = 0  # epochs completed
    step: int = 0  # optimiser steps taken
    best_rmse: float = float("inf")
    best_epoch: int = 0
    best_state: dict | None = None
    history: list[dict] | None = None
    stale: int = 0  # epochs since the best
    average: dict | None = None  # --ema: the moving average of the weights (name -> tensor)
    criterion: float | None = None  # what picks the best epoch: the validation RMSE, or its average


STEP_SAMPLE = 2000  # training steps a model file keeps for forecast --max-step auto


class _EnvelopeFit:
    """The range of every condition and of the step length seen in training, gathered over any
    number of Series (the groups of a table)."""

    def __init__(self, covariates: tuple[str, ...]):
        self.names = covariates
        self.lo = np.full(len(covariates) + 1, np.inf)  # the conditions, then the step length
        self.hi = np.full(len(covariates) + 1, -np.inf)
        self.target = [np.inf, -np.inf]  # the measured durability's range: the default --bounds
        self.rising = self.falling = 0  # specimens whose last measurement is above / below their first
        # the longest time from a specimen's first row to its last measurement: a forecast that
        # runs longer from its specimen's start goes where no training specimen went
        self.span = -np.inf
        # a uniform sample of the training steps (their conditions, then their length), kept by
        # reservoir sampling over the groups: the forecast reads from it which future steps are
        # longer than training's at their conditions (forecasting.StepDomain, --max-step auto)
        self.sample = np.zeros((0, len(covariates) + 1))
        self.steps_seen = 0
        self.rng = np.random.default_rng(0x57E95)

    def add(self, series: Series) -> None:
        valid = series.row >= 0
        measured = np.isfinite(series.y) & valid
        if measured.size:
            b = np.arange(len(series.lengths))
            first = series.y[b, measured.argmax(1)]
            last_row = measured.shape[1] - 1 - measured[:, ::-1].argmax(1)
            last = series.y[b, last_row]
            two = measured.sum(1) >= 2
            spans = (series.time[b, last_row] - series.time[:, 0])[measured.any(1)]
            if spans.size:
                self.span = max(self.span, float(spans.max()))
            self.rising += int(((last > first) & two).sum())
            self.falling += int(((last < first) & two).sum())
        y = series.y[np.isfinite(series.y)]
        if y.size:
            self.target = [min(self.target[0], float(y.min())), max(self.target[1], float(y.max()))]
        for j in range(len(self.names)):
            col = series.cond[..., j][valid]
            if col.size:
                self.lo[j] = min(self.lo[j], col.min())
                self.hi[j] = max(self.hi[j], col.max())
        steps = valid.copy()
        steps[np.arange(len(series.lengths)), series.lengths - 1] = False
        dt = series.dt[steps]
        if dt.size:
            self.lo[-1] = min(self.lo[-1], dt.min())
            self.hi[-1] = max(self.hi[-1], dt.max())
        positive = dt > 0
        self._keep(np.column_stack([series.cond[steps][positive], dt[positive]]))

    def _keep(self, rows: np.ndarray) -> None:
        """Reservoir sampling (Algorithm R) of ``rows`` [n, C+1] into at most STEP_SAMPLE rows."""
        rows = rows[np.isfinite(rows).all(axis=1)]
        room = max(0, STEP_SAMPLE - len(self.sample))
        self.sample = np.concatenate([self.sample, rows[:room]])
        rest = rows[room:]
        seen = self.steps_seen + min(room, len(rows))
        if len(rest):
            slot = self.rng.integers(0, seen + np.arange(1, len(rest) + 1))  # each one's draw in 0..i
            take = slot < STEP_SAMPLE
            self.sample[slot[take]] = rest[take]
        self.steps_seen = seen + len(rest)

    def step_sample(self) -> dict:
        """The sampled training steps as the model file keeps them (6 significant digits)."""
        return {
            "columns": [*self.names, "dt"],
            "rows": [[float(f"{v:.6g}") for v in row] for row in self.sample],
        }

    def result(self) -> dict:
        out = {name: [float(self.lo[j]), float(self.hi[j])] for j, name in enumerate(self.names)}
        if np.isfinite(self.lo[-1]):
            out["dt"] = [float(self.lo[-1]), float(self.hi[-1])]
        return out


class _Fingerprint:
    """A short hash of the training table (schema, times, target), so --resume refuses a different
    dataset. Fed a group at a time, it hashes each group's times, then its targets, so the same
    table in groups of another size hashes differently (a resumed run needs the same groups)."""

    def __init__(self, schema):
        self.hash = hashlib.sha256(json.dumps(schema.to_dict(), sort_keys=True).encode())

    def add(self, ds: Dataset) -> None:
        self.hash.update(np.ascontiguousarray(ds.t).tobytes())
        self.hash.update(
            np.ascontiguousarray(ds.frame[ds.schema.target].to_numpy(dtype=np.float64)).tobytes()
        )

    def result(self) -> str:
        return self.hash.hexdigest()[:16]


def fingerprint(table) -> str:
    """The fingerprint (_Fingerprint) of a table to train on: a Dataset, or groups (each read)."""
    digest = _Fingerprint(table.schema)
    for group in [table] if isinstance(table, Dataset) else table:
        digest.add(group)
    return digest.result()


def _rank_share(t: Tensors, lengths: np.ndarray, dist: Distributed | None) -> Tensors:
    """This rank's rows (rank, rank + world, ...) of ``t``; all of it outside torchrun."""
    if dist is None:
        return t
    mine = np.arange(dist.rank, len(lengths), dist.world)
    return slice_tensors(t, torch.as_tensor(mine), 0, int(lengths[mine].max()) if len(mine) else 1)


def _setup(schema, scaler, model_cfg, cfg, init_from, resume, data_hash, device, dist, n_specimens=0):
    """The model (seeded, or from ``init_from``), its optimiser and generator, restored from
    ``resume`` when given; returns the TrainState and the model file's metadata."""
    torch.manual_seed(cfg.seed)
    meta = {
        "schema": schema.to_dict(),
        "scaler": scaler.to_dict(),
        "model_config": as_dict(model_cfg),
        "static_cardinalities": [len(v) + 1 for v in scaler.static_vocab.values()],
    }
    if model_cfg.latent:  # one z per specimen of the table (the validation ones stay at the prior)
        meta["latent_specimens"] = n_specimens
    model = build_model(meta)
    if scaler.step_mean is not None:  # a monotonic head starts at the data's drift
        model.start_monotonic(scaler.step_mean)
    if init_from is not None:  # the old specimens' z do not carry over to a new table
        old = {k: v for k, v in init_from.model.state_dict().items() if k != "latent_table"}
        model.load_state_dict(old, strict=model.latent_table is None)
    model.to(device)  # the data stays on the CPU; each batch moves once windowed
    network = [p for name, p in model.named_parameters() if name != "latent_table"]
    groups = [{"params": network}]
    if model.latent_table is not None:
        # A specimen's z gets one gradient per epoch (when its batch comes): a larger step than
        # the network's, and no weight decay (the prior is its regulariser).
        groups.append({"params": [model.latent_table], "lr_scale": LATENT_LR_SCALE, "weight_decay": 0.0})
    optimizer = Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    state = TrainState(model, optimizer, gen, history=[])
    if resume is not None:
        _load_checkpoint(state, resume, model_cfg, cfg, data_hash, rank=dist.rank if dist else 0)
    if dist is not None:
        dist.broadcast_parameters(model)
    return state, meta


def warmup_fields(context: int | RowShare, key: str) -> dict:
    """{key: rows, key_frac: share}, the one not given None: how a summary or a start line keeps
    the validation's warm-up (JSON, and readable by files from before the share)."""
    if isinstance(context, RowShare):
        return {key: None, f"{key}_frac": context.share}
    return {key: int(context), f"{key}_frac": None}


def _start_info(state, n_train, n_val, context, dist, run=None) -> dict:
    info = {
        "n_train": n_train,
        "n_val": n_val,
        **warmup_fields(context, "context"),
        "parameters": sum(p.numel() for p in state.model.parameters()),
        "start_epoch": state.epoch,
        "processes": dist.world if dist else 1,
    }
    if (
        run is not None and n_val
    ):  # the validation specimens with rows after the warm-up: the rest score nothing
        scored = run.lengths[run.scored]
        info["n_val_scored"] = int((warmup_rows(context, scored) < scored).sum())
    return info


def _fit(
    state, epoch, finish, checkpoint, model_cfg, cfg, data_hash, meta, on_epoch, dist, stop_at=None
) -> ModelBundle:
    """The epoch loop: ``epoch()`` runs one and returns its log; checkpoints after each, early
    stopping, and Ctrl-C / divergence turned into their errors. ``finish(reason)`` builds the
    bundle from the best weights. ``stop_at``: end after that many epochs (train_one)."""
    stop_reason = "max epochs" if stop_at is None else f"epoch {stop_at}, as validation chose"
    try:
        while state.epoch < (cfg.epochs if stop_at is None else min(stop_at, cfg.epochs)):
            if state.stale >= cfg.patience:
                stop_reason = f"early stop: no better validation RMSE for {cfg.patience} epochs"
                break
            log = epoch()
            if checkpoint is not None:
                rng = dist.gather_bytes(torch.get_rng_state()) if dist else None  # every rank takes part
                if dist is None or dist.main:
                    save_checkpoint(state, checkpoint, model_cfg, cfg, data_hash, meta, rank_rng=rng)
            if on_epoch:
                on_epoch(log)
        else:
            if state.stale >= cfg.patience:
                stop_reason = f"early stop: no better validation RMSE for {cfg.patience} epochs"
    except KeyboardInterrupt:
        where = f"; continue with `resume` {checkpoint}" if checkpoint else ""
        raise TrainingInterrupted(
            f"training interrupted after {state.epoch} complete epoch(s); the checkpoint holds them{where}"
        ) from None
    except _Diverged as exc:
        bundle = finish(f"diverged: {exc}") if state.best_state else None
        kept = (
            f"; the best weights (epoch {state.best_epoch}, validation RMSE {state.best_rmse:.4g}) are kept"
            if bundle
            else ""
        )
        raise TrainingDiverged(
            f"training diverged at epoch {state.epoch + 1} ({exc}){kept}; try a lower `lr` (now {cfg.lr:g}) "
            f"or a tighter `clip` (now {cfg.clip:g})",
            bundle,
        ) from None
    return finish(stop_reason)


# -- tables bigger than memory ---------------------------------------------------------------------
def train(table, model_cfg: ModelConfig, cfg: TrainConfig, **options) -> ModelBundle:
    """Train a model, or with ``cfg.ensemble`` > 1 an ensemble of models (ensemble.py), and return
    it with its metadata, best weights loaded; ``options`` are :func:`train_one`'s keywords
    (checkpoint, resume, init_from, on_epoch, on_start, device, dist, val_ids).
    ``epochs = 0`` / ``patience = 0`` (auto: resolve_length) and ``ensemble = 0`` (auto:
    ensemble.resolve_auto) are decided first; the model's summary says how (``length_auto``,
    ``ensemble_auto``). ``model_cfg.trend_line = "auto"`` then trains without and with the line
    and keeps the better on validation (line_choice.py; ``trend_line_auto`` says which);
    ``model_cfg.latent = "auto"`` is made a number before, by the validation warm-ups' length
    (latent_choice.py; ``latent_auto`` says which). ``jobs`` (an option, default 1): how many
    processes may train at once; with 2 the line's candidate trains beside the other, and the
    members of an ensemble that cannot train stacked, or of ``--refit-all``'s refit, split among
    them (aside.py)."""
    jobs = options.pop("jobs", 1)
    if isinstance(table, Dataset):  # (the command line's table comes trimmed: api._training_table)
        table = measured_only(table)
    why = ""
    sizes = None
    if not (cfg.epochs and cfg.patience and cfg.ensemble):  # an auto setting reads the split
        sizes = split_sizes(table, cfg.val_fraction, options.get("val_ids"))
    cfg, length_why = resolve_length(table, cfg, sizes=sizes, **options)
    if cfg.refit_all and options.get("resume") is not None:  # stopped in the refit: only it runs again
        from durability_cli import refit_all
        from durability_cli.ensemble import resolve_auto

        resolved = cfg if cfg.ensemble else resolve_auto(table, model_cfg, cfg, sizes=sizes, **options)[0]
        first = refit_all.chosen(options["resume"], table, resolved)
        if first is not None:
            return refit_all.refit(table, first, jobs=jobs, **options)
    if length_why and options.get("on_start") is not None:
        told = options["on_start"]
        options = {**options, "on_start": lambda info: told({**info, "epochs": cfg.epochs})}
    if cfg.ensemble == 0:
        from durability_cli.ensemble import resolve_auto

        cfg, why = resolve_auto(table, model_cfg, cfg, sizes=sizes, **options)
    latent_why, short = "", None
    if model_cfg.latent == "auto":
        from durability_cli.latent_choice import resolve

        model_cfg, latent_why = resolve(table, model_cfg, cfg, options.get("init_from"))
    elif model_cfg.latent and options.get("init_from") is None:
        from durability_cli.latent_choice import short_warmup

        short = short_warmup(table, cfg)
    if model_cfg.trend_line == "auto":
        from durability_cli.line_choice import train_choosing

        n_val = (sizes or split_sizes(table, cfg.val_fraction, options.get("val_ids")))[1]
        bundle = train_choosing(table, model_cfg, cfg, _train_resolved, n_val, jobs=jobs, **options)
    else:
        bundle = _train_resolved(table, model_cfg, cfg, jobs=jobs, **options)
    if latent_why:
        bundle.summary["latent_auto"] = latent_why
    if model_cfg.latent != "auto" and model_cfg.latent and short is not None:
        bundle.summary["latent_short_warmup"] = short
    if why:
        bundle.summary["ensemble_auto"] = why
    if length_why:
        bundle.summary["length_auto"] = length_why
    if cfg.refit_all:
        from durability_cli import refit_all

        bundle = refit_all.refit(table, bundle, jobs=jobs, **options)
    return bundle


def _train_resolved(
    table, model_cfg: ModelConfig, cfg: TrainConfig, *, jobs: int = 1, **options
) -> ModelBundle:
    """:func:`train` once its automatic settings are numbers: one model or an ensemble (whose
    members may train in ``jobs`` processes, ensemble.py)."""
    if cfg.ensemble > 1:
        from durability_cli.ensemble import train_ensemble

        return train_ensemble(table, model_cfg, cfg, jobs=jobs, **options)
    return train_one(table, model_cfg, cfg, **options)


def n_specimens(table) -> int:
    """How many specimens a table to train on holds (a Dataset in memory, or groups)."""
    from durability_cli.schema import Dataset, specimen_starts

    if isinstance(table, Dataset):
        return len(specimen_starts(table.frame, table.schema.id_col))
    return len(table.ids)


def split_sizes(table, val_fraction: float, val_ids=None) -> tuple[int, int]:
    """How many specimens a table to train on holds, and how many of them validate (the given
    ``val_ids``, else the share ``val_fraction`` that split_specimens would take)."""
    n = n_specimens(table)
    return n, len(val_ids) if val_ids is not None else _n_val(n, val_fraction)


def auto_batch(table, cfg: TrainConfig, n: int, n_fit: int) -> tuple[int, str]:
    """``batch_size = 0`` (auto) made a number, and how, in words where it is not BASE_BATCH
    (config.ROWS_PER_STEP).

    BASE_BATCH, unless the length is automatic and the table small enough that the run makes its
    AUTO_STEPS steps whatever the batch; then about ROWS_PER_STEP rows a step (at the mean specimen
    length, or ``--window``), BASE_BATCH to MAX_AUTO_BATCH specimens and no more than ``n_fit``,
    the training specimens. ``n``: the table's specimens (split_sizes), ``table`` a Dataset or
    groups with ``rows``."""
    if cfg.epochs or math.ceil(n_fit / BASE_BATCH) * MIN_AUTO_EPOCHS > AUTO_STEPS:
        return BASE_BATCH, ""
    rows = (len(table.frame) if isinstance(table, Dataset) else table.rows) / max(n, 1)
    what = "series of {:.0f} rows on average"
    if cfg.window and cfg.window < rows:
        rows, what = cfg.window, "windows of {:.0f} rows"
    batch = int(min(MAX_AUTO_BATCH, max(BASE_BATCH, ROWS_PER_STEP // max(rows, 1.0))))
    batch = min(batch, max(n_fit, BASE_BATCH))  # one step takes every training specimen at most
    if batch == BASE_BATCH:
        return batch, ""
    return batch, f"batch {batch} ({what.format(rows)}; the aim is about {ROWS_PER_STEP:,} rows a step)"


def resolve_length(
    table, cfg: TrainConfig, *, val_ids=None, sizes: tuple[int, int] | None = None, **_
) -> tuple[TrainConfig, str]:
    """``cfg`` with ``epochs = 0`` / ``patience = 0`` / ``batch_size = 0`` (auto) made numbers,
    and how, in words.

    The run is sized in optimiser steps: enough epochs for AUTO_STEPS steps of ``batch_size``
    training specimens (at least MIN_AUTO_EPOCHS), and a patience of PATIENCE_SHARE of them (at
    least MIN_AUTO_PATIENCE); an automatic batch is :func:`auto_batch`'s. Only the table's size,
    its mean specimen length and the options enter, so every way of training a table (together,
    one member after another, --nproc, --chunk-specimens) and a resumed run decide alike.
    ``sizes``: split_sizes's answer, when the caller has it."""
    if cfg.epochs and cfg.patience and cfg.batch_size:
        return cfg, ""
    n, n_val = sizes or split_sizes(table, cfg.val_fraction, val_ids)
    n_fit = max(n - n_val, 1)
    parts = []
    if not cfg.batch_size:
        batch, said = auto_batch(table, cfg, n, n_fit)
        cfg = replace(cfg, batch_size=batch)
        parts += [said] if said else []
    steps = math.ceil(n_fit / cfg.batch_size)  # optimiser steps per epoch
    epochs = cfg.epochs or max(MIN_AUTO_EPOCHS, math.ceil(AUTO_STEPS / steps))
    patience = cfg.patience or max(MIN_AUTO_PATIENCE, math.ceil(PATIENCE_SHARE * epochs))
    if not cfg.epochs:
        parts.append(f"up to {epochs} epochs ({steps} optimiser step{'s' * (steps != 1)} each)")
    if not cfg.patience:
        parts.append(f"patience {patience}")
    return replace(cfg, epochs=epochs, patience=patience), "auto: " + ", ".join(parts) if parts else ""


def train_one(
    table,
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    *,
    checkpoint: str | Path | None = None,
    resume: str | Path | None = None,
    init_from: ModelBundle | None = None,
    on_epoch: Callable[[EpochLog], None] | None = None,
    on_start: Callable[[dict], None] | None = None,
    device: str | torch.device = "cpu",
    dist: Distributed | None = None,
    val_ids: list[str] | None = None,
    stop_at: int | None = None,
) -> ModelBundle:
    """Train a model and return it with its metadata (best weights loaded).

    ``table`` is a Dataset (a table in memory: one group) or groups of specimens: a
    ``streaming.SpecimenGroups`` (a Parquet file or folder, read a group at a time) or
    ``streaming.FrameGroups`` (a table already in memory, cut): the specimens in sorted id order,
    ``groups.size`` per group, with ``ids``, ``n_groups``, ``group(g)`` and iteration.

    A first pass reads every group once: it checks the whole table before any training, fits
    the scaling on the training specimens and records the lengths, the envelope and the
    fingerprint. Each epoch then visits the groups in a new random order (drawn from the seed
    and the epoch, so the training generator is untouched), shuffles each group's training
    specimens and steps through them in batches. The validation specimens stay in memory when
    there are at most ``groups.size`` of them; otherwise they are read again, group by group,
    after every epoch. The split into training and validation specimens is the whole-table one:
    ``cfg.val_fraction`` of them drawn with ``cfg.seed``, or exactly the specimens ``val_ids``
    (the folds of ``durability tune``).

    ``resume`` continues an interrupted run from its checkpoint (same data, same settings);
    ``init_from`` starts from a trained model's weights and scaling and fine-tunes.
    ``dist`` (from ``parallel.from_env`` inside ``parallel.process_group``) makes this process one
    rank of a torchrun job: it runs its share of every global batch and of the validation set, and
    only rank 0 writes the checkpoint.

    ``stop_at`` (refit_all.py): train exactly that many epochs of the ``cfg.epochs`` planned (the
    learning rate follows the planned cosine), validate on nothing and keep the last weights.
    """
    if isinstance(table, Dataset):
        from durability_cli.streaming import FrameGroups

        table = FrameGroups(table, len(specimen_starts(table.frame, table.schema.id_col)))
    groups = table
    run = _GroupTraining(groups, cfg, init_from, device, dist, transform=model_cfg.transform, val_ids=val_ids)
    run.keep_last = stop_at is not None
    if init_from is not None:
        model_cfg = init_from.model_config
    # before anything is built: a warm-up that leaves nothing to score, or a run beyond the budget
    check_context(run.lengths[run.scored], run.context, bool(cfg.val_context), groups.source)
    check_memory(run.lengths[run.is_train], len(run.train_idx), model_cfg, cfg, groups.source)
    state, meta = _setup(
        groups.schema,
        run.scaler,
        model_cfg,
        cfg,
        init_from,
        resume,
        run.data_hash,
        device,
        dist,
        len(run.ids),
    )
    run.state = state
    if on_start:
        info = _start_info(state, len(run.train_idx), len(run.val_idx), run.context, dist, run)
        on_start({**info, "groups": groups.n_groups})
    started = time.perf_counter()

    def finish(reason: str) -> ModelBundle:
        return run.bundle(model_cfg, time.perf_counter() - started, reason)

    return _fit(
        state, run.epoch, finish, checkpoint, model_cfg, cfg, run.data_hash, meta, on_epoch, dist, stop_at
    )


train_groups = train  # the name for callers that hold groups of specimens


class _GroupTraining:
    """The state of :func:`train` between its epochs: the split, what the first pass
    learnt (the scaling, the warm-up, the fingerprint), the tensors kept in memory, and how to
    read a group's training or validation specimens."""

    state: TrainState  # set once the model is built (train)
    keep_last = False  # train_one's stop_at: no validation, every epoch's weights are the kept ones

    def __init__(
        self,
        groups,
        cfg: TrainConfig,
        init_from: ModelBundle | None,
        device,
        dist,
        transform: str = "",
        val_ids=None,
    ):
        self.groups, self.cfg, self.device, self.dist = groups, cfg, device, dist
        schema, source, self.size = groups.schema, groups.source, groups.size
        self.ids = ids = np.asarray(groups.ids, dtype=object)
        N = len(ids)
        if val_ids is None and cfg.val_split == "stratified":
            self.train_idx, self.val_idx = stratified_split(
                specimen_features(groups), cfg.val_fraction, cfg.seed
            )
        elif val_ids is None:
            self.train_idx, self.val_idx = split_specimens(N, cfg.val_fraction, cfg.seed)
        else:
            self.train_idx, self.val_idx = chosen_split(ids, val_ids, source)
        if len(self.train_idx) == 0:
            raise InputError(f"{source}: no specimens left for training; lower --val-fraction")
        self.is_train = np.zeros(N, dtype=bool)
        self.is_train[self.train_idx] = True
        # validated on (no validation set: the training set)
        self.scored = ~self.is_train if len(self.val_idx) else self.is_train
        self.cache_val = int(self.scored.sum()) <= self.size
        if init_from is not None:
            _check_compatible(init_from, schema, source)

        # -- pass 1: check, measure, fit the scaling
        transforms = dict(zip(schema.covariates, per_condition(transform, schema.covariates), strict=True))
        survey = _survey(groups, ids, self.is_train, self.scored if self.cache_val else None, transforms)
        numeric = survey.numeric_static
        categorical = [c for c in schema.static if c not in numeric]
        self.scaler = init_from.scaler if init_from is not None else survey.fit.result(numeric, categorical)
        self.context = validation_warmup(cfg, survey.lengths)
        self.lengths = survey.lengths
        self.data_hash = survey.digest.result()
        self.n_rows, self.env = survey.n_rows, survey.env

        self.val_all = None  # the validation specimens' tensors, when they stay in memory
        if self.cache_val:
            val_series = concat_series(survey.val_pieces)
            survey.val_pieces = []
            self.val_series = val_series  # raw: the baselines' forecasts (bundle)
            self.val_all = to_tensors(val_series, self.scaler)
            self.val_t = move(_rank_share(self.val_all, val_series.lengths, dist), device)
        self.cached_train = None  # a table that is one group: its training tensors, kept
        if survey.only is not None:
            part = survey.only.take(self.train_idx)
            survey.only = None
            self.train_series = part  # raw: the training specimens' paces (bundle)
            self.cached_train = (to_tensors(part, self.scaler), torch.as_tensor(part.lengths))
            self.cached_train[0].index = torch.as_tensor(self.train_idx)  # each specimen's z
            self.cached_since = warp.elapsed(part.time) if cfg.warp else None

    def train_part(self, g: int, since: bool = False):
        """Group g's training specimens as tensors and their lengths (None if it has none); with
        ``since``, also their elapsed times (warp.elapsed), which --warp reads."""
        if self.cached_train is not None:
            return (*self.cached_train, self.cached_since) if since else self.cached_train
        series = to_series(self.groups.group(int(g)))
        mine = np.flatnonzero(self.is_train[g * self.size : g * self.size + len(series.ids)])
        if not len(mine):
            return None
        part = series.take(mine)
        t = to_tensors(part, self.scaler)
        t.index = torch.as_tensor(g * self.size + mine)  # each specimen's z
        lengths = torch.as_tensor(part.lengths)
        return (t, lengths, warp.elapsed(part.time)) if since else (t, lengths)

    def fit_part(self, g: int):
        """Group g's training specimens as an epoch's optimiser steps read them: with
        ``--warp`` each at a pace of its own (warp.py), else as measured."""
        if not self.cfg.warp or self.state.model.cfg.latent:
            return self.train_part(g)  # a latent model's table row is its specimen's pace: as measured
        part = self.train_part(g, since=True)
        if part is None:
            return None
        t, lengths, since = part
        pace = warp.paces(len(lengths), self.cfg.warp, self.cfg.seed, self.state.epoch, g)
        return warp.warped(t, lengths, since, pace)

    def train_rollouts(self):
        """The training specimens as the scale head's refit reads them (scale_refit.refit), about
        scale_refit.CHUNK_ROWS rows at a time: tensors, the validation's warm-up feed and the rows
        scored after it."""
        for g in range(self.groups.n_groups) if self.cached_train is None else [0]:
            part = self.train_part(g)
            if part is None:
                continue
            t = part[0]
            B, T = t.y.shape
            size = max(1, scale_refit.chunk_rows(self.state.model) // T)
            for a in range(0, B, size):
                chunk = slice_tensors(t, torch.arange(a, min(a + size, B)))
                ctx = warmup_tensor(chunk, self.context)
                yield chunk, warmup_feed(chunk, ctx), scored_rows(chunk, ctx)

    def parts(self, chosen: np.ndarray):
        """The ``chosen`` [N] specimens (Series, tensors), a group at a time."""
        for g, ds in enumerate(self.groups):
            series = to_series(ds)
            mine = np.flatnonzero(chosen[g * self.size : g * self.size + len(series.ids)])
            if len(mine):
                part = series.take(mine)
                yield part, to_tensors(part, self.scaler)

    def scored_parts(self):
        """The validation specimens (Series, tensors), a group at a time, all of them: the caller
        takes this rank's share."""
        return self.parts(self.scored)

    def train_series_parts(self):
        """The training specimens (Series, tensors), a group at a time."""
        if self.cached_train is not None:
            return iter([(self.train_series, self.cached_train[0])])
        return self.parts(self.is_train)

    def validate(self) -> float:
        model, scaler, context, dist = self.state.model, self.scaler, self.context, self.dist
        if self.cache_val:
            if dist is None:
                return free_run_rmse(model, self.val_t, scaler, context)[0]
            return _shared_val_rmse(model, self.val_t, scaler, context, dist)
        sse, n = 0.0, 0
        for part, t in self.scored_parts():
            t = move(_rank_share(t, part.lengths, dist), self.device)
            if t.y.shape[0]:
                a, b = free_run_sse(model, t, context)
                sse, n = sse + a, n + b
        if dist is not None:
            sse, n = dist.sum([sse, n])
        return math.sqrt(sse / n) * scaler.y_std if n else float("nan")

    def epoch(self) -> EpochLog:
        state, cfg, n_groups = self.state, self.cfg, self.groups.n_groups
        context, device, dist = self.context, self.device, self.dist
        t0 = time.perf_counter()
        tally = _Tally(_start_epoch(state, cfg))
        order = np.random.default_rng([cfg.seed, state.epoch]).permutation(n_groups) if n_groups > 1 else [0]
        # Each group's specimens in a random order; full batches go at once, the rest waits for
        # the next group, so every batch but the epoch's last has --batch-size specimens.
        bs, waiting = cfg.batch_size, None
        for g in order:
            part = self.fit_part(int(g))
            if part is None:
                continue
            perm = torch.randperm(len(part[1]), generator=state.gen)
            t, lens = slice_tensors(part[0], perm, 0, int(part[1].max())), part[1][perm]
            if waiting is not None:
                t, lens = _cat_tensors(waiting[0], t), torch.cat([waiting[1], lens])
            full = len(lens) // bs * bs
            if full:
                head = slice_tensors(t, torch.arange(full), 0, int(lens[:full].max()))
                _train_part(state, head, lens[:full], context, cfg, tally, device, dist, shuffle=False)
            waiting = None
            if full < len(lens):
                rest = torch.arange(full, len(lens))
                waiting = (slice_tensors(t, rest, 0, int(lens[full:].max())), lens[full:])
        if waiting is not None:
            _train_part(state, waiting[0], waiting[1], context, cfg, tally, device, dist, shuffle=False)
        with _averaged(state):  # with --ema the average is what is validated and kept as the best
            if self.keep_last:  # refit_all: no validation, the last weights are kept
                return _close_epoch(state, math.nan, tally, t0, keep_last=True)
            return _close_epoch(state, self.validate(), tally, t0, cfg.val_smoothing)

    def _paths_key(self, context) -> str | None:
        """What the baselines and the mixed-effects path's choice read, hashed: the training and
        validation specimens (times, conditions, durability) and the warm-up; None where the
        training specimens are read in groups."""
        if self.cached_train is None:
            return None
        digest = hashlib.sha256(repr(context).encode())
        for series in (self.train_series, self.val_series):
            for a in (series.lengths, series.time, series.cond, series.y):
                digest.update(np.ascontiguousarray(a).tobytes())
            digest.update(b"|")
        return digest.hexdigest()

    def bundle(self, model_cfg: ModelConfig, seconds: float, reason: str) -> ModelBundle:
        """The model file's contents: the best weights and their scores on the validation set."""
        model, scaler, context = _best_model(self.state), self.scaler, self.context
        refitted = scale_refit.refit(model, self.train_rollouts()) if self.cfg.refit_scale else None
        spread = scale_refit.latent_spread({"scale_refit": refitted})
        if self.val_all is not None:
            population = population_rmse(model, [self.val_all], scaler, context)
            scores, warps = _validation_scores(
                model, [(self.val_series, self.val_all)], scaler, context, spread
            )
            key = self._paths_key(context)
            # the same specimens, split the same way (the other line candidate): what they gave
            seen = _PATHS_SEEN.get(key)
            baselines = dict(seen[2]) if seen else baseline_rmse([self.val_series], context)
            val_series = [self.val_series]
        else:  # pooled over the groups
            population = population_rmse(model, (t for _, t in self.scored_parts()), scaler, context)
            scores, warps = _validation_scores(model, self.scored_parts(), scaler, context, spread)
            baselines = baseline_rmse((part for part, _ in self.scored_parts()), context)
            val_series = (part for part, _ in self.scored_parts())
            key = seen = None  # a table read in groups: hashing it would read it again
        # the reliability textbooks' baseline: a population of paths fitted on the training specimens
        if seen:
            paths, by_family = seen[:2]
        else:
            paths, by_family = mixed_effects.choose(
                (part for part, _ in self.train_series_parts()), val_series, lambda n: warmup_rows(context, n)
            )
            if paths is not None and len(self.val_idx):  # what the file keeps: fitted on every specimen
                val_again = (
                    [self.val_series] if self.val_all is not None else (p for p, _ in self.scored_parts())
                )
                train_again = (part for part, _ in self.train_series_parts())
                again = itertools.chain(train_again, val_again)
                paths = mixed_effects.refit(again, paths.label, like=paths) or paths
            if key is not None and _PATHS_KEPT > 0:
                while len(_PATHS_SEEN) >= _PATHS_KEPT:
                    _PATHS_SEEN.pop(next(iter(_PATHS_SEEN)))
                _PATHS_SEEN[key] = (paths, by_family, dict(baselines))
        by_family = dict(by_family)
        if paths is not None:
            baselines[mixed_effects.NAME] = by_family[paths.label]
        # the training specimens' paces, in-sample: steadier than the few validation specimens'
        # (none apart when the training specimens are what was validated on)
        train_warps = (
            eol_warps(model, self.train_series_parts(), scaler, context, eol_warp.MAX_TRAIN_SPECIMENS)
            if len(self.val_idx)
            else []
        )
        fed = warmup_rows(context, self.lengths[self.is_train]) if self.is_train.any() else np.ones(1, int)
        bundle = _make_bundle(
            self.state,
            model,
            schema=self.groups.schema,
            source=self.groups.source,
            n_rows=self.n_rows,
            ids=self.ids,
            train_idx=self.train_idx,
            val_idx=self.val_idx,
            context=context,
            scores=scores,
            baselines=baselines,
            population=population,
            env=self.env,
            scaler=scaler,
            model_cfg=model_cfg,
            cfg=self.cfg,
            seconds=seconds,
            reason=reason,
        )
        # the warm-ups training's rollouts were fed (batch_feed): forecasting warns outside them
        shortest = int(shortest_warmups(self.cfg.warmup_min, fed).min())
        bundle.summary["trained_warmup_rows"] = [shortest, int(fed.max())]
        bundle.summary["scale_refit"] = refitted
        if paths is not None:  # evaluate scores it on new specimens
            fit = paths.to_json() | {"val_rmse": {label: _finite(v) for label, v in by_family.items()}}
            if self.cfg.combine == mixed_effects.NAME:  # the forecast averages it in (forecasting.py)
                fit["weight"] = mixed_effects.weight([_finite(scores[0])], [by_family[paths.label]])
            bundle.summary[mixed_effects.NAME] = fit
        # how much faster or slower the validation and training specimens ran than the mean (eol_warp.py)
        bundle.summary["eol_warp"] = {"log_w": warps, "train_log_w": train_warps}
        # the table's fingerprint, as a checkpoint holds it: which table a model was trained on
        bundle.summary["data_fingerprint"] = self.data_hash
        return bundle


# The baselines' validation RMSEs and the mixed-effects path chosen and refitted for a split
# (_GroupTraining._paths_key), kept for the runs of this process that split the same specimens the
# same way: --trend-line auto's two candidates give each ensemble member the same split, and
# neither reads the model. Deterministic, so a run that finds them here writes the same file as
# one that computes them.
_PATHS_SEEN: dict[str, tuple] = {}
_PATHS_KEPT = 16  # splits kept (the oldest goes first): an ensemble's members, and then some


@dataclass
class _Survey:
    """What the first pass over the groups learns (it also checks every group)."""

    fit: ScalerFit  # the scaling's statistics over the training specimens
    env: _EnvelopeFit
    digest: _Fingerprint
    lengths: np.ndarray  # [N] rows per specimen
    n_rows: int = 0
    numeric_static: list = field(default_factory=list)
    val_pieces: list = field(default_factory=list)  # the validation specimens, when cached
    only: Series | None = None  # the one group of a table that is one group


def refuse_unmeasured(series, schema, source: str) -> None:
    """A specimen whose target is empty in every row, refused in one line: it would be drawn to
    validate on nothing, or train on nothing."""
    blank = np.flatnonzero(~np.isfinite(series.y).any(axis=1))
    if len(blank):
        more = f" (and {len(blank) - 1} more)" if len(blank) > 1 else ""
        raise InputError(
            f"{source}: specimen {series.ids[blank[0]]}{more} has no measured {schema.target} (every "
            f"cell of '{schema.target}' empty): it can neither train nor validate; remove its rows, "
            "or fill in its measurements"
        )


def _survey(
    groups, ids: np.ndarray, is_train: np.ndarray, cached: np.ndarray | None, transforms=None
) -> _Survey:
    """Read every group once: check it is the listed specimens, measure the lengths, rows and
    envelope, fit the scaling on the training specimens, hash the data, and keep the ``cached``
    (validation) specimens' Series."""
    schema, source, size = groups.schema, groups.source, groups.size
    survey = _Survey(ScalerFit(len(schema.covariates), transforms), _EnvelopeFit(schema.covariates), _Fingerprint(schema),
                     np.zeros(len(ids), dtype=np.int64))  # fmt: skip
    measured, numeric_static = 0, None
    for g, ds in enumerate(groups):
        series = to_series(ds)
        lo, hi = g * size, g * size + len(series.ids)
        if hi > len(ids) or list(series.ids) != list(ids[lo:hi]):
            raise TrainingError(
                f"{source}: the specimens of group {g} are not the ones listed; was the table changed?"
            )
        if numeric_static is None:
            numeric_static = [c for c in schema.static if c in _numeric_static(ds)]
        refuse_unmeasured(series, schema, source)
        survey.lengths[lo:hi] = series.lengths
        survey.n_rows += len(ds.frame)
        survey.digest.add(ds)
        del ds
        survey.env.add(series)
        if transforms and any(transforms.values()):  # every specimen's conditions in the domain
            apply_transforms(series.cond, list(transforms.values()), list(transforms), series.ids, source)
        mine = np.flatnonzero(is_train[lo:hi])
        if len(mine):
            survey.fit.add(series.take(mine))
            measured += int(np.isfinite(series.y[mine]).sum())
        if cached is not None and cached[lo:hi].any():
            survey.val_pieces.append(series.take(np.flatnonzero(cached[lo:hi])))
        if groups.n_groups == 1:
            survey.only = series
    if not measured:
        raise InputError(
            f"{source}: no measured durability values in the training specimens (column '{schema.target}'); "
            "the model needs measurements to learn from"
        )
    survey.numeric_static = numeric_static or []
    return survey


@torch.no_grad()
def _validation_scores(
    model: FeedbackRNN, parts, scaler: Scaler, context: int | RowShare, latent_spread: float = 1.0
) -> tuple[tuple[float, float, float], list[float]]:
    """Free-running RMSE, persistence RMSE and scale calibration over the validation specimens
    given as (Series, tensors) a group at a time (the errors of all groups pooled), and each
    specimen's log pace factor (eol_warp.fit), from one free run of each group. ``latent_spread``:
    a latent model's factor on its z paths' spread (scale_refit.latent_spread), which the band is
    drawn with and so calibrated with."""
    errs, pers, zs, paces = [], [], [], []
    for series, t in parts:
        run = _free_run(model, t, context)
        e, p, z = _free_run_errors(model, t, context, spread=latent_spread, run=run)
        errs.append(e)
        pers.append(p)
        zs.append(z)
        paces += _paces(series, scaler, run)
    z = None if zs[0] is None else torch.cat(zs)  # point models: no z
    return (_rmse(torch.cat(errs), scaler), _rmse(torch.cat(pers), scaler), scale_calibration(z)), paces


def baseline_rmse(parts, context: int | RowShare) -> dict[str, float]:
    """{baseline: RMSE} of persistence, linear and exponential forecasts of the validation
    specimens (Series, pooled over ``parts``) from the same warm-up as the model's validation."""
    from durability_cli.metrics import warmup_baseline_errors

    errors: dict[str, list] = {}
    for part in parts:
        found = warmup_baseline_errors(part.time, part.y, part.lengths, warmup_rows(context, part.lengths))
        for name, err in found.items():
            errors.setdefault(name, []).append(err)
    return {
        name: float(np.sqrt(np.mean(np.concatenate(e) ** 2))) if sum(map(len, e)) else float("nan")
        for name, e in errors.items()
    }


def _cat_tensors(a: Tensors, b: Tensors) -> Tensors:
    """The specimens of ``a`` then ``b``, padded to the longer (the padding to_tensors writes)."""
    T = max(a.y.shape[1], b.y.shape[1])

    def pad(x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == T:
            return x
        shape = (x.shape[0], T - x.shape[1], *x.shape[2:])
        return torch.cat([x, torch.zeros(shape, dtype=x.dtype)], dim=1)

    def cat(name: str, padded: bool) -> torch.Tensor:
        x, y = getattr(a, name), getattr(b, name)
        return torch.cat([pad(x), pad(y)] if padded else [x, y])

    return Tensors(
        x=cat("x", True),
        dt=cat("dt", True),
        y=cat("y", True),
        observed=cat("observed", True),
        valid=cat("valid", True),
        static_num=cat("static_num", False),
        static_cat=cat("static_cat", False),
        index=None if a.index is None else torch.cat([a.index, b.index]),
    )


class _Diverged(Exception):
    pass


def _numeric_static(ds: Dataset) -> set[str]:
    import pandas as pd

    return {c for c in ds.schema.static if pd.api.types.is_numeric_dtype(ds.frame[c])}


LATENT_LR_SCALE = 50.0  # the training specimens' z learn this many times faster than the network


@dataclass
class _Tally:
    """What one epoch's batches add up: losses and how often the measured value was fed back."""

    p: float  # the teacher-forcing probability (changes per batch with --tf-unit step)
    losses: list | None = None
    fed_measured: int = 0
    eligible: int = 0

    def __post_init__(self):
        self.losses = []


def _start_epoch(state: TrainState, cfg: TrainConfig) -> float:
    """Training mode and this epoch's learning rate; returns the teacher-forcing probability."""
    state.model.train()
    p = teacher_forcing_ratio(
        cfg.tf_schedule, state.epoch, start=cfg.teacher_forcing, k=cfg.tf_k, c=cfg.tf_c, minimum=cfg.tf_min
    )
    # cosine learning-rate decay over the planned epochs: a pure function of the epoch, so a
    # resumed run follows the same curve without extra state
    lr = cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * state.epoch / max(cfg.epochs, 1))))
    for group in state.optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
    return p


def _train_part(
    state: TrainState,
    train_t: Tensors,
    train_len: torch.Tensor,
    context: int | RowShare,
    cfg: TrainConfig,
    tally: _Tally,
    device: str | torch.device = "cpu",
    dist: Distributed | None = None,
    shuffle: bool = True,
) -> None:
    """Optimiser steps over ``train_t`` in a fresh random order (or as it comes, ``shuffle``
    False), ``cfg.batch_size`` specimens per step."""
    model, gen = state.model, state.gen
    for batch, feed in training_batches(state, train_t, train_len, context, cfg, tally, shuffle):
        if dist is not None:
            tally.losses.append(_shared_step(state, batch, feed, cfg, device, dist))
            continue
        with autocast(device, cfg.amp):
            loss = rollout_loss(model, move(batch, device), feed.to(device), cfg=cfg, gen=gen)
        if not torch.isfinite(loss):
            raise _Diverged(f"loss {loss.item()}")
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        if not torch.isfinite(norm):
            raise _Diverged("gradient norm is not finite")
        state.optimizer.step()
        state.step += 1
        _update_average(state, cfg.ema)
        tally.losses.append(loss.item())


def training_batches(
    state: TrainState,
    train_t: Tensors,
    train_len: torch.Tensor,
    context: int | RowShare,
    cfg: TrainConfig,
    tally: _Tally,
    shuffle: bool = True,
):
    """The batches of ``train_t`` in a fresh random order (or as it comes, ``shuffle`` False),
    ``cfg.batch_size`` specimens each, windowed, with their feed masks (``batch_feed``); every
    draw from ``state.gen``. Read each batch before the next is drawn: with ``--tf-unit step``
    the probability follows ``state.step``."""
    gen = state.gen
    B = train_t.y.shape[0]
    order = torch.randperm(B, generator=gen) if shuffle else torch.arange(B)
    for lo in range(0, B, cfg.batch_size):
        idx = order[lo : lo + cfg.batch_size]
        lengths = train_len[idx]
        batch = slice_tensors(train_t, idx, 0, int(lengths.max()))
        batch = _window(batch, lengths, cfg.window, gen)
        if cfg.tf_unit == "step":
            tally.p = teacher_forcing_ratio(
                cfg.tf_schedule,
                state.step,
                start=cfg.teacher_forcing,
                k=cfg.tf_k,
                c=cfg.tf_c,
                minimum=cfg.tf_min,
            )
        # a share of each specimen's rows: of its whole length, not of the window
        longest = (
            torch.as_tensor(warmup_rows(context, lengths.numpy()))
            if isinstance(context, RowShare)
            else context
        )
        feed = batch_feed(batch, longest, gen, tally, cfg.warmup_min)
        if cfg.recut:
            cut = recut_stream(gen.initial_seed(), state.epoch, lo)
            batch, feed = recut(batch, feed, cfg.recut, float(state.model.dt_log_std), cut)
        yield batch, feed


def batch_feed(
    batch: Tensors, context: int | torch.Tensor, gen: torch.Generator, tally: _Tally, warmup_min: float = 0.0
) -> torch.Tensor:
    """[B, T] a training batch's feed mask: a random warm-up per specimen (``shortest``..``context``
    rows, ``shortest`` = ceil(``warmup_min`` x ``context``), at least 1; ``context`` one count for
    all or [B] one each), then the measured value with the probability ``tally.p`` (scheduled
    sampling); counts in ``tally`` how often a free-run-eligible step got the measured value. One
    draw per specimen whatever the range, so ``warmup_min`` 0 draws what it always drew."""
    Bb, T = batch.y.shape
    # a random warm-up per specimen, always fed measured values, as in forecasting
    if isinstance(context, torch.Tensor):
        shortest = torch.as_tensor(shortest_warmups(warmup_min, context.numpy()))
    else:
        shortest = shortest_warmup(warmup_min, context)
    ctx = shortest + (torch.rand(Bb, generator=gen) * (context - shortest + 1)).long()  # [Bb]
    coin = torch.rand(Bb, T, generator=gen) < tally.p  # [Bb, T] Bernoulli(p) per specimen per step
    pos = torch.arange(T).unsqueeze(0)
    free_zone = (pos >= ctx.unsqueeze(1)) & batch.observed & batch.valid
    feed = batch.observed & ((pos < ctx.unsqueeze(1)) | coin)
    # Padding "feeds" its (ignored) zeros: the fused prefix then runs to the first row that
    # really needs an own prediction, not to the end of the shortest specimen.
    feed |= ~batch.valid
    feed[:, 0] = True
    tally.fed_measured += int((feed & free_zone).sum())
    tally.eligible += int(free_zone.sum())
    return feed


def _close_epoch(
    state: TrainState,
    val_rmse: float,
    tally: _Tally,
    t0: float,
    smoothing: float = 0.0,
    joint: float | None = None,
    keep_last: bool = False,
) -> EpochLog:
    """Count the epoch, keep the best weights, and log it. With ``smoothing`` (--val-smoothing)
    the criterion is the validation RMSE's moving average, smoothing x the previous average +
    (1 - smoothing) x this epoch's: an epoch is best when the recent epochs were good together,
    not when a few validation specimens happened to fit it. ``joint`` (--val-select joint, an
    ensemble trained together): the members' mean validation RMSE stands in for this member's
    own, so that every member keeps the same epoch. ``keep_last`` (train_one's ``stop_at``): no
    validation RMSE; every epoch is kept as the best, and a loss that is not finite diverges."""
    if keep_last and not all(math.isfinite(x) for x in tally.losses):
        raise _Diverged("training loss is not finite")
    if not keep_last and not math.isfinite(val_rmse):
        raise _Diverged(f"validation RMSE {val_rmse}")
    state.epoch += 1
    value = val_rmse if joint is None else joint
    if smoothing and state.criterion is not None:
        state.criterion = smoothing * state.criterion + (1.0 - smoothing) * value
    else:
        state.criterion = value
    best = keep_last or state.criterion < state.best_rmse
    if best:
        state.best_rmse, state.best_epoch, state.stale = state.criterion, state.epoch, 0
        state.best_state = {k: v.detach().cpu().clone() for k, v in state.model.state_dict().items()}
    else:
        state.stale += 1
    log = EpochLog(
        epoch=state.epoch,
        train_loss=float(np.mean(tally.losses)) if tally.losses else float("nan"),
        val_rmse=val_rmse,
        teacher_forcing=tally.p,
        fed_measured=tally.fed_measured / tally.eligible if tally.eligible else 0.0,
        seconds=time.perf_counter() - t0,
        best=best,
    )
    state.history.append(log.__dict__.copy())
    return log


def _shared_step(
    state: TrainState, batch: Tensors, feed: torch.Tensor, cfg: TrainConfig, device, dist: Distributed
) -> float:
    """One optimiser step of a torchrun job; returns the global batch's loss.

    ``batch`` and ``feed`` are the whole global batch, windowed and drawn exactly as one process
    would; this rank runs rows rank, rank + world, ... of it. The loss is the sum over this rank's
    measured rows divided by the number of measured rows in the whole batch, so the summed
    gradients are the gradient of the single-process mean loss.
    """
    model = state.model
    Bb, T = batch.y.shape
    noise = _batch_noise(feed, state.gen) if cfg.feedback == "sample" else None
    mine = torch.arange(dist.rank, Bb, dist.world)  # [b] this rank's rows
    loss_sum, count = None, 0
    if len(mine):
        stop = int(batch.valid[mine].sum(dim=1).max())  # this rank's longest row
        local = slice_tensors(batch, mine, 0, stop)
        local_noise = None if noise is None else noise[mine, : stop - 1].to(device)
        with autocast(device, cfg.amp):
            per, mask, _ = _row_losses(
                model, move(local, device), feed[mine, :stop].to(device), cfg=cfg, gen=None, noise=local_noise
            )
        count = int(mask.sum())
        loss_sum = per[mask].sum() if count else None
        if count and model.cfg.latent:
            loss_sum = loss_sum + prior(model, _latent_rows(model, local))
    total, n, stop_requested = dist.sum([float(loss_sum.detach()) if count else 0.0, count, float(dist.stop)])
    if stop_requested:  # a rank got Ctrl-C or SIGTERM: all stop here, before the step
        raise KeyboardInterrupt
    loss = total / n if n else 0.0
    if not math.isfinite(loss):
        raise _Diverged(f"loss {loss}")
    state.optimizer.zero_grad(set_to_none=True)
    if count:
        (loss_sum / n).backward()
    dist.sum_gradients(model.parameters())
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
    if not torch.isfinite(norm):  # the same on every rank: the gradients are
        raise _Diverged("gradient norm is not finite")
    state.optimizer.step()
    state.step += 1
    _update_average(state, cfg.ema)
    return loss


def _update_average(state: TrainState, decay: float) -> None:
    """After an optimiser step: move the average of the weights (``--ema``) towards them. The
    decay ramps up as (1 + n) / (10 + n) over the first steps, so that the random start is soon
    forgotten."""
    if not decay:
        return
    weights = state.model.state_dict()
    if state.average is None:
        state.average = {k: v.detach().clone() for k, v in weights.items()}
        return
    keep = min(decay, (1 + state.step) / (10 + state.step))
    with torch.no_grad():
        for k, v in weights.items():
            state.average[k].lerp_(v.detach(), 1.0 - keep)


@contextmanager
def _averaged(state: TrainState):
    """The model holds the averaged weights inside the block (validation and the copy of the best
    weights see them), its own weights again after it."""
    if state.average is None:
        yield
        return
    own = {k: v.detach().clone() for k, v in state.model.state_dict().items()}
    state.model.load_state_dict(state.average)
    try:
        yield
    finally:
        state.model.load_state_dict(own)


def _batch_noise(feed: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """[B, T-1] the standard-normal draws a single process's rollout of this whole batch would make
    for ``--feedback sample``, in the same order and shapes (the fused prefix at once, then one
    step at a time), so the shared generator stays in step on every rank and each row gets the
    draws it would get in one process. It mirrors FeedbackRNN.forward's prefix rule; were that to
    change, distributed runs would still be valid, only no longer draw-for-draw equal."""
    B, T = feed.shape
    known = feed[:, : T - 1].all(dim=0)  # [T-1]
    prefix = int(known.long().cumprod(0).sum())
    pieces = [torch.randn(B, prefix, generator=gen)] if prefix else []
    pieces += [torch.randn(B, 1, generator=gen) for _ in range(prefix, T - 1)]
    return torch.cat(pieces, dim=1) if pieces else torch.zeros(B, 0)


def _shared_val_rmse(
    model: FeedbackRNN, val_t: Tensors, scaler: Scaler, context: int | RowShare, dist: Distributed
) -> float:
    """Free-running validation RMSE over every rank's validation specimens (``val_t`` holds this
    rank's): squared errors and row counts are summed over ranks."""
    sse, n = free_run_sse(model, val_t, context) if val_t.y.shape[0] else (0.0, 0)
    sse, n = dist.sum([sse, n])
    return math.sqrt(sse / n) * scaler.y_std if n else float("nan")


def _best_model(state: TrainState) -> FeedbackRNN:
    """The model with the best epoch's weights, on the CPU (the bundle lives there; forecasting
    moves it where asked), in evaluation mode."""
    model = state.model.cpu()
    if state.best_state is not None:
        model.load_state_dict(state.best_state)
    model.eval()
    return model


def _make_bundle(
    state,
    model,
    *,
    schema,
    source,
    n_rows,
    ids,
    train_idx,
    val_idx,
    context,
    scores,
    baselines,
    env,
    scaler,
    population=None,
    model_cfg,
    cfg,
    seconds,
    reason,
) -> ModelBundle:
    val_rmse, pers, calibration = scores
    summary = {
        "source": source,
        "n_rows": n_rows,
        "n_specimens": len(ids),
        "train_specimens": [str(ids[i]) for i in train_idx],
        "val_specimens": [str(ids[i]) for i in val_idx],
        **warmup_fields(context, "val_context"),
        "epochs_run": state.epoch,
        "best_epoch": state.best_epoch,
        "best_val_rmse": _finite(val_rmse),
        "val_persistence_rmse": _finite(pers),
        "val_baseline_rmse": {name: _finite(v) for name, v in baselines.items()},
        "stopped": reason,
        "scale_calibration": calibration,
        "train_seconds": round(seconds, 3),
        "parameters": sum(p.numel() for p in model.parameters()),
        "envelope": env.result(),
        "step_sample": env.step_sample(),
        "target_range": env.target if np.isfinite(env.target[0]) else None,
        "longest_span": env.span if np.isfinite(env.span) else None,
        # specimens measured higher / lower at their end than at their start (--monotonic's check)
        "target_direction": {"rising": env.rising, "falling": env.falling},
        "history": state.history,
    }
    if model.latent_table is not None:  # how far the training specimens sit from the population
        z = model.latent_table.detach()[torch.as_tensor(train_idx)]
        summary["latent_train_std"] = [round(float(v), 4) for v in z.std(dim=0, unbiased=False)]
    if model.cfg.latent:  # the same validation with z = 0: does fitting z to a warm-up help?
        summary["latent_val_rmse_population"] = _finite(population)
    if cfg.warp:
        summary["warp"] = warp.summary(cfg.warp, bool(model.cfg.latent))
    return ModelBundle(model, schema, scaler, model_cfg, cfg, summary)


def _finite(x: float):
    return float(x) if math.isfinite(x) else None


def _check_compatible(bundle: ModelBundle, schema, source: str) -> None:
    have = set(schema.covariates)
    need = set(bundle.schema.covariates)
    if have != need:
        raise InputError(
            f"{source}: `init_from` needs the same condition columns as the model "
            f"({', '.join(bundle.schema.covariates)}); this table has {', '.join(schema.covariates) or 'none'}"
        )


# -- checkpoints -----------------------------------------------------------------------------------
def save_checkpoint(
    state: TrainState, path, model_cfg, cfg, data_hash: str, meta: dict, rank_rng: list | None = None
) -> None:
    """Model, optimiser, best weights and random state after the last complete epoch. No pickle.

    ``rank_rng``: every rank's torch random state in a torchrun job (dropout draws from it)."""
    from safetensors.torch import save as st_save

    tensors = {
        f"model.{k}": v.detach().cpu().clone().contiguous() for k, v in state.model.state_dict().items()
    }
    if state.best_state is not None:
        tensors.update({f"best.{k}": v.contiguous() for k, v in state.best_state.items()})
    if state.average is not None:
        tensors.update(
            {f"average.{k}": v.detach().cpu().clone().contiguous() for k, v in state.average.items()}
        )
    tensors.update(optimizer_tensors(state.optimizer))
    tensors["rng.generator"] = state.gen.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    for r, rng in enumerate(rank_rng or []):
        if r:  # rank 0's state is rng.torch, as in a single-process run
            tensors[f"rng.torch.{r}"] = rng
    info = {
        "format": CHECKPOINT_FORMAT,
        "format_version": SINGLE_FORMAT_VERSION,
        "epoch": state.epoch,
        "step": state.step,
        "best_rmse": _finite(state.best_rmse),
        "best_epoch": state.best_epoch,
        "stale": state.stale,
        "criterion": state.criterion,
        "history": state.history,
        "param_groups": state.optimizer.state_dict()["param_groups"],
        "model_config": as_dict(model_cfg),
        "train_config": as_dict(cfg),
        "data": data_hash,
        "meta": meta,
    }
    blob = st_save(tensors, metadata={"durability": json.dumps(info)})
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(blob)


def optimizer_tensors(optimizer: Adam) -> dict[str, torch.Tensor]:
    """The optimiser's state as checkpoint tensors ``optim.{param}.{slot}`` (its param_groups go
    into the metadata)."""
    tensors = {}
    for idx, slots in optimizer.state_dict()["state"].items():
        for key, value in slots.items():
            tensor = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            tensors[f"optim.{idx}.{key}"] = tensor.detach().cpu().clone().contiguous()
    return tensors


def load_optimizer(optimizer: Adam, tensors: dict, param_groups: list) -> None:
    """Restore the optimiser from a checkpoint's ``optim.`` tensors and its param_groups."""
    opt_state: dict = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, slot = key.split(".", 2)
            opt_state.setdefault(int(idx), {})[slot] = value
    optimizer.load_state_dict({"state": opt_state, "param_groups": param_groups})


def _load_checkpoint(state: TrainState, path, model_cfg, cfg, data_hash: str, rank: int = 0) -> None:
    tensors, info = read_safetensors(path, expect=CHECKPOINT_FORMAT)
    try:
        _restore(state, tensors, info, path, model_cfg, cfg, data_hash, rank)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        # a checkpoint whose options and table match but whose state does not fit: altered or damaged
        text = " ".join(str(exc).split())[:160]
        raise ModelFileError(
            f"{path}: the checkpoint's saved state does not fit this run ({type(exc).__name__}: {text}); "
            "it was altered or is damaged: start anew without `resume`"
        ) from None


def train_options_diff(saved: dict, cfg: TrainConfig) -> str:
    """How the training options ``saved`` with a checkpoint differ from ``cfg``, in words ('' when
    alike): a resumed run may be given more epochs or patience; options added in later versions
    take their defaults in older checkpoints."""
    saved_cfg = {**as_dict(TrainConfig()), **saved}
    now = as_dict(cfg)
    for key in ("epochs", "patience"):
        saved_cfg.pop(key, None)
        now.pop(key, None)
    return "; ".join(
        f"{k} {saved_cfg.get(k)!r} in the checkpoint, {now[k]!r} now"
        for k in sorted(k for k in now if saved_cfg.get(k) != now[k])
    )


def load_finished(resume, path, table, cfg: TrainConfig, what: str, differs=None) -> ModelBundle | None:
    """A model an interrupted run had finished and kept at ``path`` beside its checkpoint
    ``resume`` (``--trend-line auto``'s first candidate, ``--refit-all``'s first pass), checked
    against this run's options and table; None when it is not there. ``what`` names it in the one
    error line; ``differs(bundle)`` says what else of it does not fit ('' when all does)."""
    if not Path(path).exists():
        return None
    try:
        bundle = load_bundle(path)
    except ModelFileError as exc:
        raise InputError(
            f"{resume}: {what} before the interruption cannot be read ({exc}); start anew without `resume`"
        ) from None
    diff = train_options_diff(as_dict(bundle.train_config), cfg) or (differs(bundle) if differs else "")
    if diff:
        raise InputError(
            f"{path}: {what} before the interruption was made with other training options ({diff}); resume "
            "with the same options, or start anew without `resume`"
        )
    if bundle.summary.get("data_fingerprint") != fingerprint(table):
        raise InputError(
            f"{path}: {what} before the interruption was made on a different table; resume with the same "
            "data, or start anew without `resume`"
        )
    return bundle


def check_resumable(info: dict, path, model_cfg, cfg, data_hash: str) -> None:
    """A checkpoint's options and table (its metadata ``info``) against this run's: one line
    naming what differs; a resumed run may be given more epochs or patience."""
    if info.get("model_config") != as_dict(model_cfg):
        raise InputError(
            f"{path}: this checkpoint was made with other model options; resume with the same options"
        )
    diff = train_options_diff(info.get("train_config", {}), cfg)
    if diff:
        raise InputError(
            f"{path}: this checkpoint was made with other training options ({diff}); resume with the same options"
        )
    # a stacked ensemble's checkpoint keeps each member's epoch
    done = max([int(info.get("epoch") or 0)] + [int(m.get("epoch") or 0) for m in info.get("members") or []])
    if isinstance(cfg.epochs, int) and 0 < cfg.epochs < done:  # the model would say it ran fewer
        raise InputError(
            f"{path}: this checkpoint has run {done} epochs, more than `epochs` {cfg.epochs}; resume with "
            f"`epochs` {done} or more (the same as before, or more to train on)"
        )
    # after the options: the fingerprint of a table read in groups is taken group by group
    if info.get("data") != data_hash:
        raise InputError(
            f"{path}: this checkpoint was made on a different table; resume with the same data, or start anew without `resume`"
        )


def _restore(
    state: TrainState, tensors: dict, info: dict, path, model_cfg, cfg, data_hash: str, rank: int
) -> None:
    check_resumable(info, path, model_cfg, cfg, data_hash)
    state.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
    state.best_state = best or None
    device = next(state.model.parameters()).device
    average = {k[8:]: v.to(device) for k, v in tensors.items() if k.startswith("average.")}
    state.average = average or None
    load_optimizer(state.optimizer, tensors, info["param_groups"])
    state.gen.set_state(tensors["rng.generator"])
    torch.set_rng_state(tensors.get(f"rng.torch.{rank}", tensors["rng.torch"]))
    state.epoch = int(info["epoch"])
    state.step = int(info["step"])
    state.best_rmse = info["best_rmse"] if info["best_rmse"] is not None else float("inf")
    state.best_epoch = int(info["best_epoch"])
    state.stale = int(info["stale"])
    state.criterion = info.get("criterion")
    state.history = list(info["history"])
