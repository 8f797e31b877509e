"""Each specimen's latent vector z: the random effect of a mixed-effects feedback model.

Specimens of one material differ in ways no column records (a coating lot that ages 1.5x as fast,
a plate with a larger initial flaw). A model with ``ModelConfig.latent = D`` gives every specimen a
vector z of D numbers, fed to every step beside the static columns. In training each specimen's
z is a free parameter learned with the network under a N(0, I) prior (an auto-decoder); for a
specimen the model has not seen, z is fitted here to its measured warm-up with the network frozen
(the MAP estimate: the warm-up's squared errors plus the same prior), so that with a short warm-up
the prior wins and the forecast is the population's, and with a long one it is the specimen's own.
Training also runs a share of its specimens with z fitted here to the warm-up of the rollout
(training.FITTED_SHARE), so that the network learns to forecast from the z a forecast will have.
"""

from __future__ import annotations

import torch

from durability_cli.data import Tensors, slice_tensors
from durability_cli.model import FeedbackRNN

# Levenberg-Marquardt evaluations (z = 0, then 2 steps), each a run over the warm-up: a 4th
# moved the ageing forecasts no more, helped coating seed 0 (RMSE 0.059 -> 0.053) and costs 1/3 more
FIT_ITERATIONS = 3
FD_STEP = 1e-2  # finite-difference step in z for the Jacobian (z lives on the prior's scale, ~1)
FIT_FREE_FROM = (0.0, 0.5)  # shares of the warm-up fed measured values before the fit's free runs
LATENT_DRAWS = 16  # draws of z per specimen for Monte Carlo paths and their calibration
# Longest move of z in one iteration (a trust region, in prior standard deviations): fitted z
# reach 4.5 on the ageing benchmark, which 1.5 took three steps to travel.
MAX_STEP = 3.0
FIT_STEP_TOL = 0.05  # a specimen whose next step is shorter than this (prior sds) is fitted: it stops there
INVARIANT_ROWS = 8  # the model computes a row alike in any batch of at least this many rows (model.py)


def prior(model: FeedbackRNN, z: torch.Tensor) -> torch.Tensor:
    """The negative log prior of ``z`` [B, D] on the loss's scale: 0.5 * latent_prior * |z|^2 summed."""
    return 0.5 * model.cfg.latent_prior * (z.float() ** 2).sum()


def fit_latent(model: FeedbackRNN, t: Tensors, warm: torch.Tensor) -> torch.Tensor:
    """[B, D] the MAP estimate of each specimen's z from its warm-up; see :func:`fit_posterior`."""
    return fit_posterior(model, t, warm)[0]


def fit_posterior(
    model: FeedbackRNN, t: Tensors, warm: torch.Tensor, weight: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """MAP estimate of each specimen's z from its warm-up, the network frozen, and its
    uncertainty (the Laplace approximation of the posterior).

    The objective is the training loss's on the warm-up: the squared errors of the model's runs
    over the specimen's measured warm-up rows (free after the first row, and after half of it;
    see FIT_FREE_FROM) plus 0.5 * latent_prior * |z|^2. It is minimised by Levenberg-Marquardt
    with a finite-difference Jacobian: each iteration is one forward pass over the warm-up of
    every specimen at z and at z + h e_d (d = 1..D), no backward pass, and all of it row-wise
    (``invariant``), so a specimen's z does not depend on the other specimens in the batch.

    Parameters
    ----------
    t : the specimens' tensors, [B, T, ...].
    warm : [B] long, how many leading rows of each specimen are its warm-up (measured values
        fed in); only measured rows inside it are scored, nothing after it is read.
    weight : the weight of the warm-up's squared errors against the prior, 1 in training and
        in every forecast. 0: no fit, every z is the population's (0) with the prior's covariance
        (what training scores its validation specimens with beside the fit, to say whether z
        helps; benchmarks/latent_variants.py scores others).

    Returns
    -------
    z : [B, D], no gradient.
    cov : [B, D, D] the posterior covariance of z: the inverse Hessian of the objective at z in
        the prior's units, (2 weight J J^T / latent_prior + I)^-1 (the loss is read as a Gaussian
        log-likelihood of variance latent_prior / 2). No data (a one-row warm-up): I, the prior;
        many informative rows: small.
    """
    B, D = t.y.shape[0], model.cfg.latent
    z = t.y.new_zeros(B, D)
    eye = torch.eye(D, device=t.y.device)
    if B == 0 or D == 0 or weight == 0:
        return z, eye.expand(B, D, D).clone()
    W = max(2, int(warm.max()))  # nothing after the longest warm-up is read
    pos = torch.arange(W, device=t.y.device).unsqueeze(0)  # [1, W]
    inside = pos < warm.unsqueeze(1)  # [B, W]
    observed = t.observed[:, :W]
    # Each specimen's warm-up is run len(FIT_FREE_FROM) times: measured values fed in up to a
    # share f of it, its own predictions after that (f = 1: teacher forced throughout), as the
    # training loss runs a random warm-up and then free. Free-run errors carry the specimen's
    # rate far better than one-step errors, which the measurement noise swamps. The rows after
    # a warm-up are never scored and cannot reach the scored ones (the model is causal).
    F, K = len(FIT_FREE_FROM), D + 1  # runs per specimen; z and one step along each axis
    starts = [torch.clamp((f * warm.float()).round().long(), min=1) for f in FIT_FREE_FROM]
    feed = torch.stack([observed & (pos < s.unsqueeze(1)) for s in starts], dim=1)  # [B, F, W]
    feed[:, :, 0] = True
    scored = (observed & t.valid[:, :W] & inside)[:, 1:]  # [B, W-1]

    @torch.no_grad()
    def residuals(rows: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """rows [b] of the batch, points [b, K, D] -> masked errors [b, K, F*(W-1)] of each of
        those specimens at each of its points, all F*b*K runs side by side."""
        b = len(rows)
        # the model computes a row alike in any batch of INVARIANT_ROWS rows or more: a few
        # specimens left to fit run beside copies of themselves, so their z stays the same bits
        # whatever else was in the batch
        copies = -(-INVARIANT_ROWS // (F * K * b))
        rows, points = rows.repeat(copies), points.repeat(copies, 1, 1)
        n = len(rows)
        grow = rows.repeat_interleave(F * K)  # [n*F*K], run (i, f, k) at i*F*K + f*K + k
        runs = slice_tensors(t, grow, 0, W)
        runs_feed = feed[rows].repeat_interleave(K, dim=1).reshape(n * F * K, W)
        everywhere = points.unsqueeze(1).expand(n, F, K, D).reshape(n * F * K, D)
        r = model.run(runs, runs_feed, latent=everywhere, invariant=True)
        err = (r.mean.float() - runs.y[:, 1:]).reshape(n, F, K, W - 1)
        err = torch.where(scored[rows].view(n, 1, 1, W - 1), err, torch.zeros_like(err))
        return err[:b].transpose(1, 2).reshape(b, K, F * (W - 1))

    lam = float(model.cfg.latent_prior) / float(weight)  # the prior's weight against the warm-up's
    best_z, best_loss = z.clone(), torch.full((B,), float("inf"), device=t.y.device)
    best_J = t.y.new_zeros(B, D, F * (W - 1))
    best_r = t.y.new_zeros(B, F * (W - 1))
    damping = torch.full((B,), 1e-3, device=t.y.device)  # Levenberg-Marquardt's mu, per specimen
    active = torch.ones(B, dtype=torch.bool, device=t.y.device)  # specimens still moving
    was_training = model.training
    model.eval()
    try:
        for _ in range(FIT_ITERATIONS):
            rows = active.nonzero().squeeze(1)  # [b]
            if not len(rows):
                break
            zr = z[rows]  # [b, D]
            res = residuals(rows, torch.cat([zr.unsqueeze(1), zr.unsqueeze(1) + FD_STEP * eye], dim=1))
            r0 = res[:, 0]  # [b, R]
            J = (res[:, 1:] - r0.unsqueeze(1)) / FD_STEP  # [b, D, R]
            loss = _rowsum(r0 * r0) + 0.5 * lam * (zr**2).sum(-1)  # [b]
            better = loss < best_loss[rows]
            bz = best_z[rows] = torch.where(better.unsqueeze(1), zr, best_z[rows])
            best_loss[rows] = torch.where(better, loss, best_loss[rows])
            bJ = best_J[rows] = torch.where(better.view(-1, 1, 1), J, best_J[rows])
            br = best_r[rows] = torch.where(better.unsqueeze(1), r0, best_r[rows])
            mu = damping[rows] = torch.where(better, damping[rows] / 3, damping[rows] * 8)
            # the Gauss-Newton system of the objective around the best point so far, damped
            H = 2 * _gram(bJ) + lam * eye  # [b, D, D]
            H = H + mu.view(-1, 1, 1) * torch.diag_embed(torch.diagonal(H, dim1=1, dim2=2))
            g = 2 * _rowsum(bJ * br.unsqueeze(1)) + lam * bz  # [b, D]
            step = -torch.linalg.solve(H, g)  # [b, D]
            # |step| summed as _rowsum does: Tensor.norm's bits depend on the batch's size
            norm = torch.sqrt(_rowsum(step * step)).clamp(min=1e-12)  # [b]
            z[rows] = bz + step * (MAX_STEP / norm).clamp(max=1.0).unsqueeze(1)
            # a step this short would not move the forecast: the specimen is fitted
            active[rows] = norm > FIT_STEP_TOL
    finally:
        model.train(was_training)
    cov = torch.linalg.inv(2 * _gram(best_J) / lam + eye)  # [B, D, D]
    return best_z, 0.5 * (cov + cov.transpose(1, 2))


def draw_latent(z: torch.Tensor, cov: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Draws from N(z, cov): z [B, D], cov [B, D, D], noise [B, M, D] standard normal -> [B, M, D]."""
    chol = torch.linalg.cholesky(cov)  # [B, D, D]
    return z.unsqueeze(1) + (noise.unsqueeze(-1) * chol.transpose(1, 2).unsqueeze(1)).sum(-2)  # [B, M, D]


def latent_variance(model: FeedbackRNN, t: Tensors, feed: torch.Tensor, z: torch.Tensor, cov: torch.Tensor):
    """[B, T-1] the variance of each specimen's mean path over LATENT_DRAWS draws of its z from
    N(z, cov) (scaled units), the draws from a fixed generator: the z fit's share of the band."""
    B, D = z.shape
    gen = torch.Generator().manual_seed(0)
    draws = draw_latent(z, cov, torch.randn(B, LATENT_DRAWS, D, generator=gen).to(z.device))
    return mean_paths(model, t, feed, draws).var(dim=1, unbiased=False)


def _rowsum(x: torch.Tensor) -> torch.Tensor:
    """Sum over the last dimension in a fixed order, element after element (a running sum): a
    specimen's sum is then the same bits whatever the padding after its rows, which differs
    with the longest warm-up of its batch (a vectorised sum or a matrix product regroups the
    terms by length), so --shard and --chunk-specimens pieces still equal the whole run."""
    return x.cumsum(-1)[..., -1]


def _gram(J: torch.Tensor) -> torch.Tensor:
    """J [B, D, R] -> J J^T [B, D, D], summed as :func:`_rowsum` does."""
    return _rowsum(J.unsqueeze(2) * J.unsqueeze(1))


def mean_paths(model: FeedbackRNN, t: Tensors, feed: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """[B, M, T-1] each specimen's mean path (scaled units) under each of its M draws of z
    (``draws`` [B, M, D]), all B x M rollouts run together."""
    B, M, D = draws.shape
    r = run_copies(model, t, feed, M, latent=draws.reshape(B * M, D))
    return r.mean.float().reshape(B, M, -1)


def run_copies(model: FeedbackRNN, t: Tensors, feed: torch.Tensor, copies: int, **options):
    """The rollout of ``copies`` copies of every specimen of ``t`` side by side ([B * copies]
    rows, a specimen's copies next to each other), row-invariant: Monte Carlo paths, draws of
    z. ``options`` go to the model (``latent``, ``sample``, ``noise``), already [B * copies]."""

    def rep(x):
        return x.repeat_interleave(copies, dim=0)

    return model(
        rep(t.x),
        rep(t.dt),
        rep(t.y),
        rep(feed),
        static_num=rep(t.static_num),
        static_cat=rep(t.static_cat),
        invariant=True,
        **options,
    )
