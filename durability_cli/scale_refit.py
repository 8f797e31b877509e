"""Refit a trained model's scale head to the mean it is kept with.

The Gaussian head predicts a mean and a scale. Both learn together, on training rollouts whose
warm-ups are drawn at random, but early stopping keeps the epoch whose *mean* validates best, and
the scale head at that epoch has not caught up with that mean: on five of six benchmark cases its
band was 1.4-2.4 x wider than the kept mean's own errors on its training specimens
(benchmarks/scale_refit.py, results/scale-refit.jsonl). The validation factor
(training.scale_calibration) only ever widens, so a band that is too wide stays too wide.

So after training, the head alone is fitted again: by the Gaussian likelihood of the kept mean's
free-running errors on the training specimens, each forecast from the validation's warm-up (the
way the model is used); every other weight stays as it is, so the mean does not move. The
validation factor then widens the refitted band where new specimens err more than the training
ones did. The head reads the network's state and how many steps the forecast has run on its own
predictions (model.head_scale); those features are computed once, in one free run, and
the fit is a small regression on them.

A latent model's band has two parts: the head's scale and the spread of the mean path over draws
of the specimen's z from its warm-up fit (latent.fit_posterior's Laplace covariance, which reads
the fit's squared errors as a Gaussian likelihood of a fixed variance, not of the errors the
model makes). As trained, the band held 98-99 % of new ageing specimens' rows where 80 % were
asked for, mostly the head's doing (one ageing model: the head alone 2.3 x too wide, the z
paths' factor fitted to 0.46). Its refit fits both: the head, and one factor on the z paths'
spread (``latent_spread``, kept in the model file's summary and applied wherever the band is
drawn: on the paths' spread, or on the draws' distance from z where each path feeds back its
own samples), each training specimen's z fitted to its warm-up as a forecast fits a new
specimen's, by the likelihood of those errors under the variance head^2 + latent_spread^2 x
the z paths' variance.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from durability_cli.adam import adam_update
from durability_cli.data import Tensors
from durability_cli.latent import LATENT_DRAWS, fit_posterior, latent_variance
from durability_cli.model import head_scale

MIN_ROWS = 50  # fewer scored training rows than this: the head is kept as trained
MAX_ROWS = 100_000  # at most this many rows enter the fit (every k-th, k a power of 2)
CHUNK_ROWS = 200_000  # specimens x steps per free run (their features, ~50 MB, live at once)
STEPS = 300  # Adam steps from the trained head (measured with benchmarks/scale_refit.py)
LR = 1e-2
Z80 = 1.2815515655446004  # the standard normal's 0.9 quantile: the half-width of an 80 % band


def free_run_features(model, t: Tensors, feed: torch.Tensor, mask: torch.Tensor):
    """One free run of ``model`` over ``t`` from ``feed``: the scale head's input features and the
    mean's errors (scaled units) on the rows of ``mask`` [B, T-1], flat. A latent model runs each
    specimen with its z fitted to the fed warm-up, as a forecast does, and its features carry
    one more column, last: the variance of the mean path over draws of that z (latent_variance)."""
    latent = spread = None
    if model.cfg.latent:
        rows = torch.arange(feed.shape[1], device=feed.device)
        warm = torch.where(feed, rows, 0).max(dim=1).values + 1  # up to the last row fed
        latent, cov = fit_posterior(model, t, warm)
        with torch.no_grad():
            spread = latent_variance(model, t, feed, latent, cov)  # [B, T-1]
    captured: list[torch.Tensor] = []
    hook = model.scale_head.register_forward_hook(lambda _m, inp, _out: captured.append(inp[0]))
    try:
        with torch.no_grad():
            r = model.run(t, feed, latent=latent)
    finally:
        hook.remove()
    features = torch.cat(captured, dim=1)  # [B, T-1, F], in the rollout's order of pieces
    if features.shape[:2] != r.mean.shape:
        raise RuntimeError(
            f"scale head features {tuple(features.shape)} do not match the rollout's {tuple(r.mean.shape)}"
        )
    if spread is not None:
        features = torch.cat([features, spread.unsqueeze(-1).to(features.dtype)], dim=-1)
    return features[mask], (t.y[:, 1:] - r.mean)[mask]


def chunk_rows(model) -> int:
    """Specimens x steps per free run of the refit: CHUNK_ROWS, or for a latent model a
    LATENT_DRAWS-th of it, since each of its specimens also runs once per draw of z."""
    return CHUNK_ROWS // LATENT_DRAWS if model.cfg.latent else CHUNK_ROWS


def band_scale(head: torch.nn.Linear, features: torch.Tensor, latent_spread: torch.Tensor | float | None):
    """The band's standard deviation on rows of ``features`` (free_run_features'): the head's,
    and for a latent model (``latent_spread`` not None) with the z paths' share added in variance."""
    if latent_spread is None:
        return head_scale(head, features)
    return torch.sqrt(head_scale(head, features[:, :-1]) ** 2 + latent_spread**2 * features[:, -1])


def needed_factor(z: torch.Tensor) -> float:
    """The factor on the predicted scale that puts 80 % of the rows inside the central 80 % band,
    from each row's |error / scale| ``z`` (1 = the band is right; training._calibration widens by
    it, never narrows)."""
    # numpy: torch.quantile refuses more than 16 million values (a large validation set)
    return float(np.quantile(z.detach().double().cpu().numpy(), 0.8)) / Z80


def band_factor(
    head: torch.nn.Linear, features: torch.Tensor, errors: torch.Tensor, latent_spread=None
) -> float:
    """The factor that would make the 80 % band (band_scale) hold 80 % of ``errors`` (1 = right)."""
    with torch.no_grad():
        return round(needed_factor(errors.abs() / band_scale(head, features, latent_spread)), 4)


def every_kth(pieces: Iterable[tuple[torch.Tensor, torch.Tensor]], limit: int):
    """Rows 0, k, 2k, ... of the (features, errors) pieces taken end to end, k the smallest power
    of 2 that keeps at most ``limit`` of them: the stride doubles, and what is kept is thinned to
    match, whenever more would be kept, so that memory stays bounded. Returns the kept features,
    errors and how many rows the pieces held in all."""
    feats, errs, n, stride = [], [], 0, 1
    for f, e in pieces:
        first = (-n) % stride  # this piece's first row whose index in the whole is a multiple of k
        feats.append(f[first::stride])
        errs.append(e[first::stride])
        n += len(e)
        while sum(len(x) for x in errs) > limit:
            feats, errs, stride = [torch.cat(feats)[::2]], [torch.cat(errs)[::2]], stride * 2
    if not errs:
        return torch.zeros(0, 0), torch.zeros(0), 0
    return torch.cat(feats), torch.cat(errs), n


def refit(model, parts: Iterable[tuple[Tensors, torch.Tensor, torch.Tensor]]) -> dict | None:
    """Fit ``model.scale_head`` again, in place, on the free-running errors of ``parts`` (tensors,
    feed, mask of the scored rows), and for a latent model the factor on its z paths' spread.
    Returns what the model file records (rows used, the in-sample 80 % band factor before and
    after, a latent model's ``latent_spread``), or None where the head is kept as trained: point
    models and fewer than MIN_ROWS scored rows."""
    if model.scale_head is None:
        return None
    model.eval()
    features, errors, n = every_kth((free_run_features(model, *p) for p in parts), MAX_ROWS)
    if n < MIN_ROWS:
        return None
    head = model.scale_head
    latent = bool(model.cfg.latent)
    before = band_factor(head, features, errors, 1.0 if latent else None)
    log_spread = fit_head(head, features, errors, latent)
    out = {"rows": int(n), "factor_before": before}
    if latent:
        spread = round(float(log_spread.exp()), 4)
        out["factor_after"] = band_factor(head, features, errors, spread)
        out["latent_spread"] = spread
    else:
        out["factor_after"] = band_factor(head, features, errors)
    return out


def fit_head(head: torch.nn.Linear, features: torch.Tensor, errors: torch.Tensor, latent: bool):
    """STEPS steps of Adam (lr LR, torch's other defaults) from the trained ``head``, in place, on
    the mean Gaussian negative log-likelihood of ``errors`` under band_scale, and for a latent
    model on the log of its z paths' factor too (from 0: the Laplace covariance as it is), which it
    returns (None otherwise). The gradient is written out and the update is torch.optim.Adam's
    (adam.adam_update), operation for operation: on a few fixed features autograd's graph and the
    optimiser's per-step bookkeeping cost ~10 x the arithmetic, and every member of every training
    pays for it."""
    X = features[:, :-1] if latent else features
    v = features[:, -1] if latent else None
    e2, n = errors**2, errors.numel()
    log_spread = torch.zeros((), dtype=features.dtype, device=features.device) if latent else None
    with torch.no_grad():
        params = [head.weight, head.bias] + ([log_spread] if latent else [])
        moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
        for step in range(1, STEPS + 1):
            a = torch.nn.functional.linear(X, head.weight, head.bias)[:, 0]
            h = 0.5 * torch.nn.functional.softplus(a) + 1e-3  # model.head_scale
            if latent:
                s2 = log_spread.exp() ** 2
                sd = torch.sqrt(h**2 + s2 * v)
            else:
                sd = h
            d_sd = (1.0 / sd - e2 / sd**3) / n  # d mean(log sd + e^2 / (2 sd^2)) / d sd
            d_h = d_sd * h / sd if latent else d_sd
            # softplus' derivative as torch takes it: 1 past its threshold of 20, else the sigmoid
            d_a = d_h * 0.5 * torch.where(a > 20.0, torch.ones_like(a), torch.sigmoid(a))
            grads = [(d_a @ X).unsqueeze(0), d_a.sum().reshape(1)]
            if latent:
                grads.append((d_sd * s2 * v / sd).sum())
            for p, g, (m, m2) in zip(params, grads, moments, strict=True):
                adam_update(p, g, m, m2, step, lr=LR)
    return log_spread


def latent_spread(summary: dict) -> float:
    """The factor on a latent model's z paths' spread that its refit fitted (1: none, as a model
    file from before it, or trained with --no-refit-scale, draws them)."""
    return float((summary.get("scale_refit") or {}).get("latent_spread", 1.0))
