"""``train --warp W``: each epoch, every training specimen runs at a pace of its own.

On a small table the specimens' hidden factors (a batch's rate, a flaw's growth coefficient) are
few draws, and the network learns those draws: twice the training specimens took crack's RMSE
down 18 % and coating's 13 % (benchmarks/results/notes.md, session 34). Many hidden factors of
degradation scale the rate: a specimen s times faster has the path y(s t) under the conditions
c(s t). So each epoch, each training specimen is read at a pace s drawn log-uniformly from
[1 / (1 + W), 1 + W]: on its own time stamps, its measured values are read at the times s x its
elapsed times (linear interpolation between the two measured rows around them), its conditions
at the nearest row, and the rows past its last measurement are dropped (a faster specimen is
observed for fewer rows, a slower one covers less of its path). The step lengths stay the
specimen's own, so what the network reads of time is unchanged; only the pace varies.

Validation specimens, the scale head's refit, the end-of-life paces and the forecast read the
specimens as measured. A model with a latent (``--latent``, or the one ``auto`` chooses) is not
warped: each training specimen's row of its latent table stands for that specimen's own pace.

Off by default: at 0.3 crack gained 14 % on new specimens (its end-of-life interval fell from
0.81 to 0.64), coating lost 9 %, ball (a projectile, whose time axis carries gravity) 4 x, and
the measured laser and Alloy-A sets 22 % and 13 % over five splits (docs/TRAINING.md).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from durability_cli.data import Tensors


def summary(warp: float, latent: bool) -> dict:
    """What the model file says of ``--warp``: the paces' range, or why none was applied."""
    if latent:
        return {"skipped": "a latent model: each training specimen's z is its own pace, read as measured"}
    return {"paces": [round(1.0 / (1.0 + warp), 4), round(1.0 + warp, 4)]}


def elapsed(time) -> torch.Tensor:
    """[N, T] float64 time since each specimen's first row (NaN in the padding)."""
    t = torch.as_tensor(time, dtype=torch.float64)
    return t - t[:, :1]


def paces(n: int, warp: float, seed: int, epoch: int, group: int = 0) -> torch.Tensor:
    """[n] float64 paces, log-uniform on [1 / (1 + warp), 1 + warp]: a stream of their own
    (seed, epoch, group), so that the run's other draws (order, windows, warm-ups, teacher
    forcing) are those of the run without ``--warp``."""
    u = torch.from_numpy(np.random.default_rng([seed, epoch, group, 0x57A9]).random(n))
    return torch.exp(math.log1p(warp) * (2.0 * u - 1.0))


def warped(t: Tensors, lengths: torch.Tensor, since: torch.Tensor, pace: torch.Tensor):
    """(Tensors, lengths): ``t``'s specimens read at ``pace`` [B] along their own time stamps
    ``since`` [B, T] (elapsed); a pace above 1 is a faster specimen, below 1 a slower one."""
    B, T = t.y.shape
    pos = torch.arange(T)
    inside = pos.unsqueeze(0) < lengths.unsqueeze(1)  # [B, T]
    stamps = torch.where(inside, since, torch.inf)  # sorted per row, +inf past the end
    last = since.gather(1, (lengths - 1).clamp(min=0).unsqueeze(1))  # [B, 1]
    wanted = since * pace.unsqueeze(1)  # [B, T] the times to read
    keep = inside & (wanted <= last + 1e-9 * last.abs().clamp(min=1.0))
    keep[:, 0] = True
    # the measured rows around each wanted time: j <= wanted < j + 1 (j + 1 clamped to the end)
    j = (
        torch.searchsorted(stamps.contiguous(), torch.where(keep, wanted, 0.0).contiguous(), right=True) - 1
    ).clamp(min=0)
    j = torch.minimum(j, (lengths - 1).clamp(min=0).unsqueeze(1))
    k = torch.minimum(j + 1, (lengths - 1).clamp(min=0).unsqueeze(1))
    tj, tk = stamps.gather(1, j), stamps.gather(1, k)
    gap = tk - tj
    w = torch.where(gap > 0, (wanted - tj) / torch.where(gap > 0, gap, 1.0), 0.0).clamp(0.0, 1.0)
    w = torch.where(keep, w, 0.0)

    yj, yk = t.y.gather(1, j), t.y.gather(1, k)
    oj, ok = t.observed.gather(1, j), t.observed.gather(1, k)
    w32 = w.to(t.y.dtype)
    y = torch.where(keep, (1 - w32) * yj + w32 * yk, 0.0)
    # a value between two rows is known where both are measured (or it sits on a measured row)
    observed = keep & torch.where(w == 0, oj, torch.where(w == 1, ok, oj & ok))
    y = torch.where(observed, y, 0.0)
    near = torch.where(w < 0.5, j, k)
    x = t.x.gather(1, near.unsqueeze(-1).expand(-1, -1, t.x.shape[2])) * keep.unsqueeze(-1)
    new_len = keep.sum(1)
    # the step lengths stay the specimen's own; the new last row has no next row
    dt = torch.where(pos.unsqueeze(0) < (new_len - 1).unsqueeze(1), t.dt, 0.0)
    observed[:, 0] = True  # the first row is the first row, read as it was
    y[:, 0] = t.y[:, 0]
    out = Tensors(x, dt, y, observed, keep, t.static_num, t.static_cat, t.index)
    return out, new_len
