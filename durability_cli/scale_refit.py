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
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from durability_cli.data import Tensors
from durability_cli.model import head_scale

MIN_ROWS = 50  # fewer scored training rows than this: the head is kept as trained
MAX_ROWS = 100_000  # at most this many rows enter the fit (every k-th, k a power of 2)
CHUNK_ROWS = 200_000  # specimens x steps per free run (their features, ~50 MB, live at once)
STEPS = 300  # Adam steps from the trained head (measured with benchmarks/scale_refit.py)
LR = 1e-2
Z80 = 1.2815515655446004  # the standard normal's 0.9 quantile: the half-width of an 80 % band


def free_run_features(model, t: Tensors, feed: torch.Tensor, mask: torch.Tensor):
    """One free run of ``model`` over ``t`` from ``feed``: the scale head's input features and the
    mean's errors (scaled units) on the rows of ``mask`` [B, T-1], flat."""
    captured: list[torch.Tensor] = []
    hook = model.scale_head.register_forward_hook(lambda _m, inp, _out: captured.append(inp[0]))
    try:
        with torch.no_grad():
            r = model.run(t, feed)
    finally:
        hook.remove()
    features = torch.cat(captured, dim=1)  # [B, T-1, F], in the rollout's order of pieces
    if features.shape[:2] != r.mean.shape:
        raise RuntimeError(
            f"scale head features {tuple(features.shape)} do not match the rollout's {tuple(r.mean.shape)}"
        )
    return features[mask], (t.y[:, 1:] - r.mean)[mask]


def needed_factor(z: torch.Tensor) -> float:
    """The factor on the predicted scale that puts 80 % of the rows inside the central 80 % band,
    from each row's |error / scale| ``z`` (1 = the band is right; training._calibration widens by
    it, never narrows)."""
    # numpy: torch.quantile refuses more than 16 million values (a large validation set)
    return float(np.quantile(z.detach().double().cpu().numpy(), 0.8)) / Z80


def band_factor(head: torch.nn.Linear, features: torch.Tensor, errors: torch.Tensor) -> float:
    """The factor that would make the head's 80 % band hold 80 % of ``errors`` (1 = right)."""
    with torch.no_grad():
        return round(needed_factor(errors.abs() / head_scale(head, features)), 4)


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
    feed, mask of the scored rows). Returns what the model file records (rows used, the in-sample
    80 % band factor before and after), or None where the head is kept as trained: point models,
    latent models (whose band also holds z's spread, training.scale_calibration) and fewer than
    MIN_ROWS scored rows."""
    if model.scale_head is None or model.cfg.latent:
        return None
    model.eval()
    features, errors, n = every_kth((free_run_features(model, *p) for p in parts), MAX_ROWS)
    if n < MIN_ROWS:
        return None
    head = model.scale_head
    before = band_factor(head, features, errors)
    params = list(head.parameters())
    was = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(True)
        opt = torch.optim.Adam(params, lr=LR)
        with torch.enable_grad():
            for _ in range(STEPS):
                sd = head_scale(head, features)
                loss = (torch.log(sd) + 0.5 * (errors / sd) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
    finally:
        for p, g in zip(params, was, strict=True):
            p.requires_grad_(g)
    return {"rows": int(n), "factor_before": before, "factor_after": band_factor(head, features, errors)}
