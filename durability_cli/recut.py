"""``--recut``: training rollouts on plans cut into shorter steps (issue 14, session 49).

A row's conditions act from its time to the next row's, so a step cut into k equal pieces, each
holding the conditions of the row it starts from and no measurement, describes the same test. A
model trained only on its table's own schedule need not forecast it alike: on ``make demo``'s model
the unseen test specimens' RMSE went from 0.0298 to 0.1015 when their future steps were cut to at
most one day (benchmarks/substeps.py), and a what-if plan's forecast depended on its step length
(docs/GUIDE.md, "What if"). Measured at 0.5 in session 49 (docs/TRAINING.md): that cut 0.0857,
and on the measured Alloy-A set 4 pieces a step stopped mattering on 2 of 3 seeds, for 2 x the
training time.

With ``--recut SHARE``, that share of the training batches (drawn per batch) is cut so before the
rollout: every step that ends after a specimen's measured warm-up becomes 1 to ``PIECES`` equal
pieces (uniform, one draw per step). The inserted rows are never fed a measurement and never
scored; the loss is taken on the measured rows as before, so the network learns to reach the same
values through any cut. Warm-ups, validation, the band and the forecast read the rows as given.
"""

from __future__ import annotations

import numpy as np
import torch

from durability_cli.data import Tensors

PIECES = 4  # the most pieces one step is cut into


def stream(seed: int, epoch: int, batch: int) -> torch.Generator:
    """The draws of one training batch's cut: a stream of their own (the run's seed, the epoch,
    the batch's first position in the epoch's order), so that the run's other draws (order,
    warm-ups, teacher forcing, the fitted latent's share) are those of the run without ``--recut``."""
    words = np.random.SeedSequence([seed, epoch, batch, 0x5EC7]).generate_state(2)
    return torch.Generator().manual_seed(int(words[0]) << 32 | int(words[1]))


def recut(batch: Tensors, feed: torch.Tensor, share: float, dt_log_std: float, gen: torch.Generator):
    """``(batch, feed)``, or with probability ``share`` (drawn from ``gen``, :func:`stream`) the
    batch with each step after its specimen's warm-up cut into 1..PIECES equal pieces, and its
    feed mask.

    ``dt`` is the scaled log step length, (log d - mean) / ``dt_log_std``: a piece of d / k is
    dt - log(k) / dt_log_std. An inserted row copies its source row's conditions (they act until
    the next row) and is unmeasured, unfed, and inside its series; padding stays padding."""
    if not share or float(torch.rand(1, generator=gen)) >= share:
        return batch, feed
    B, T = batch.y.shape
    pos = torch.arange(T).unsqueeze(0)  # [1, T]
    free = ~feed & batch.valid
    first = torch.where(free.any(1), free.long().argmax(1), T)  # [B] first row predicted unfed
    has_next = torch.zeros_like(batch.valid)
    has_next[:, :-1] = batch.valid[:, 1:]
    cut = has_next & (pos >= (first - 1).unsqueeze(1))  # steps t -> t+1 that end unfed or later
    k = torch.randint(1, PIECES + 1, (B, T), generator=gen)
    k = torch.where(cut, k, torch.ones_like(k))  # [B, T] pieces of each row's step
    rows = k.sum(1)  # [B]
    width = int(rows.max())
    src = torch.full((B, width), T - 1, dtype=torch.long)  # source row of each new row
    piece = torch.zeros((B, width), dtype=torch.long)  # 0 = the source row itself
    for b in range(B):
        s = torch.repeat_interleave(torch.arange(T), k[b])
        starts = torch.cumsum(k[b], 0) - k[b]
        src[b, : len(s)] = s
        piece[b, : len(s)] = torch.arange(len(s)) - starts[s]
    inside = torch.arange(width).unsqueeze(0) < rows.unsqueeze(1)  # [B, width]
    original = (piece == 0) & inside

    def take(v: torch.Tensor) -> torch.Tensor:
        if v.dim() == 3:
            return torch.gather(v, 1, src.unsqueeze(-1).expand(-1, -1, v.shape[2]))
        return torch.gather(v, 1, src)

    pieces = take(k).to(batch.dt.dtype)
    dt = take(batch.dt) - torch.log(pieces) / float(dt_log_std)
    y = torch.where(original, take(batch.y), torch.zeros((), dtype=batch.y.dtype))
    valid = take(batch.valid) & inside
    observed = take(batch.observed) & original
    new_feed = (take(feed) & original) | ~valid
    new_feed[:, 0] = True
    cut_batch = Tensors(
        take(batch.x), dt, y, observed, valid, batch.static_num, batch.static_cat, batch.index
    )
    return cut_batch, new_feed
