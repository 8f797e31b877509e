"""Stacked ensembles: the members of ``train --ensemble N`` trained together, as one computation.

A small batch is dispatch-bound (8 specimens x ~100 steps through a Python step loop), so N
models cost nearly N times one. Here the members' weights are stacked into tensors with a leading
member dimension and one ``torch.func.vmap`` over ``functional_call`` of the ordinary model runs
all members' rollouts step by step together (the model's ``stacked`` switch: every step through
cells that vmap can batch); one Adam step moves all members (Adam is element-wise, so this is each
member's own Adam step), and the validation free runs are stacked too.

Each member is still the member the sequential path trains: seed ``seed + k`` gives its initial
weights, its validation specimens and its scaling, and its own generator draws its batch order,
windows, warm-ups, teacher-forcing coins and sampled-feedback noise, in the same order as
``training.train_one`` does. The batches are padded to a common length (padding feeds its ignored
zeros and never enters a loss). Gradients are clipped per member, and each member stops early on
its own: a stopped member keeps its best weights and its history ends there; the run ends when all
have stopped or at ``epochs``.

Used when the whole table is in memory, in one process, without ``latent``, ``ema`` or ``amp``
(``supported``); otherwise ensemble.py trains the members one after the other. The checkpoint holds
every member's state in one file, so Ctrl-C and ``--resume`` work as for one model.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap

from durability_cli.adam import Adam
from durability_cli.artifact import CHECKPOINT_FORMAT, ModelBundle, read_safetensors
from durability_cli.config import ModelConfig, TrainConfig, as_dict
from durability_cli.data import Tensors
from durability_cli.errors import ModelFileError
from durability_cli.io import atomic_path
from durability_cli.modelfile import SINGLE_FORMAT_VERSION, read_header
from durability_cli.schema import Dataset, specimen_starts
from durability_cli.training import (
    EpochLog,
    TrainingDiverged,
    TrainingInterrupted,
    TrainState,
    _batch_noise,
    _close_epoch,
    _Diverged,
    _free_run_errors,
    _GroupTraining,
    _rmse,
    _row_losses,
    _setup,
    _start_epoch,
    _start_info,
    _Tally,
    check_context,
    check_memory,
    check_resumable,
    load_optimizer,
    optimizer_tensors,
    training_batches,
    warmup_feed,
)


def supported(
    table, model_cfg: ModelConfig, cfg: TrainConfig, *, dist=None, resume=None, init_from=None
) -> bool:
    """Whether this ensemble run can train its members stacked (else: one after the other)."""
    latent = (init_from.model_config if init_from is not None else model_cfg).latent
    if dist is not None or not isinstance(table, Dataset) or latent or cfg.ema or cfg.amp:
        return False
    if resume is not None:  # a checkpoint of the sequential path resumes there
        return bool(read_header(resume, expect=CHECKPOINT_FORMAT)[2].get("stacked"))
    return True


class _MemberLoss(nn.Module):
    """One member's mean loss over a batch, the model's own ``_row_losses``: what vmap maps over
    the members (through ``functional_call`` with the stacked weights)."""

    def __init__(self, model, cfg: TrainConfig):
        super().__init__()
        self.model, self.cfg = model, cfg

    def forward(self, x, dt, y, observed, valid, static_num, static_cat, feed, noise):
        t = Tensors(x, dt, y, observed, valid, static_num, static_cat)
        per, mask, _ = _row_losses(self.model, t, feed, cfg=self.cfg, gen=None, noise=noise)
        return torch.where(mask, per, 0.0).sum() / mask.sum().clamp(min=1)  # []


class _MemberRun(nn.Module):
    """One member's free run (validation): its mean and scale [B, T-1]."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, dt, y, observed, valid, static_num, static_cat, feed):
        r = self.model(x, dt, y, feed, static_num=static_num, static_cat=static_cat)
        return r.mean, r.mean if r.scale is None else r.scale  # vmap returns tensors only


@dataclass
class _Rollout:
    """The fields of a rollout that scoring reads."""

    mean: torch.Tensor
    scale: torch.Tensor | None


def _stack(parts: list[Tensors], feeds: list[torch.Tensor] | None = None):
    """The members' batches padded to a common length and stacked: a tuple of [N, B, T, ...]
    tensors in ``Tensors`` order (without ``index``), and the feed masks [N, B, T] (padding feeds)."""
    T = max(p.y.shape[1] for p in parts)

    def pad(x: torch.Tensor, fill=0) -> torch.Tensor:
        if x.shape[1] == T:
            return x
        return torch.cat([x, torch.full((x.shape[0], T - x.shape[1], *x.shape[2:]), fill, dtype=x.dtype)], 1)

    fields = tuple(
        torch.stack([pad(getattr(p, f)) for p in parts]) for f in ("x", "dt", "y", "observed", "valid")
    ) + tuple(torch.stack([getattr(p, f) for p in parts]) for f in ("static_num", "static_cat"))
    feed = None if feeds is None else torch.stack([pad(f, True) for f in feeds])
    return fields, feed


class _Stack:
    """The members' weights as stacked tensors [N, ...], their one optimiser, and the models
    vmap runs (copies of member 0's on the meta device: the weights come from the stack)."""

    def __init__(self, states: list[TrainState], cfg: TrainConfig, device):
        models = [s.model for s in states]
        self.names = [name for name, _ in models[0].named_parameters()]
        self.params = {
            name: torch.stack([dict(m.named_parameters())[name].detach() for m in models]).requires_grad_()
            for name in self.names
        }
        self.buffers = {
            name: torch.stack([dict(m.named_buffers())[name] for m in models])
            for name, _ in models[0].named_buffers()
        }
        self.optimizer = Adam(list(self.params.values()), lr=cfg.lr, weight_decay=cfg.weight_decay)
        base = copy.deepcopy(models[0]).to("meta")
        base.stacked = True
        self.loss = _MemberLoss(base, cfg)
        self.run = _MemberRun(base)
        self.device = device

    def _weights(self, prefix: str = "model."):
        return (
            {prefix + k: v for k, v in self.params.items()},
            {prefix + k: v for k, v in self.buffers.items()},
        )

    def losses(self, fields, feed, noise) -> torch.Tensor:
        """[N] each member's mean loss over its batch."""
        p, b = self._weights()
        self.loss.train()

        def one(p, b, *args):
            return functional_call(self.loss, (p, b), args)

        dims = (0,) * (len(fields) + 3) + (None if noise is None else 0,)
        return vmap(one, in_dims=dims, randomness="different")(p, b, *fields, feed, noise)

    @torch.no_grad()
    def free_run(self, fields, feed):
        """[N, B, T-1] mean and scale of every member's free run (evaluation mode)."""
        p, b = self._weights()
        self.run.eval()

        def one(p, b, *args):
            return functional_call(self.run, (p, b), args)

        return vmap(one)(p, b, *fields, feed)

    def clip(self, max_norm: float, active: torch.Tensor) -> torch.Tensor:
        """Clip each member's gradient to norm ``max_norm`` (as clip_grad_norm_ does for one
        model); a stopped member's gradient becomes zero. Returns the norms [N]."""
        grads = [p.grad for p in self.params.values() if p.grad is not None]
        N = len(active)
        norms = torch.stack([g.reshape(N, -1).pow(2).sum(1) for g in grads]).sum(0).sqrt()  # [N]
        coef = torch.where(active, (max_norm / (norms + 1e-6)).clamp(max=1.0), 0.0)  # [N]
        for g in grads:
            shape = (N,) + (1,) * (g.dim() - 1)  # a stopped member's NaN times 0 stays NaN: where
            g.copy_(torch.where(active.view(shape), g * coef.view(shape), 0.0))
        return norms

    def unstack(self, k: int, model) -> None:
        """Copy member k's weights into its own model (its TrainState's, for the best weights)."""
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(self.params[name][k])


def train_stacked(
    table,
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    *,
    checkpoint=None,
    resume=None,
    init_from: ModelBundle | None = None,
    on_epoch=None,
    on_start=None,
    device="cpu",
    val_ids=None,
) -> list[ModelBundle]:
    """Train the ``cfg.ensemble`` members together; returns their bundles (ensemble.combine
    makes the model of them). The options are those of ``training.train_one``."""
    from durability_cli.ensemble import member_config
    from durability_cli.streaming import FrameGroups

    n = cfg.ensemble
    groups = FrameGroups(table, len(specimen_starts(table.frame, table.schema.id_col)))
    bases = [None] if init_from is None else init_from.members
    if init_from is not None:
        model_cfg = init_from.model_config
    runs, states = [], []
    for k in range(n):
        mcfg, base = member_config(cfg, k), bases[k % len(bases)]
        run = _GroupTraining(groups, mcfg, base, device, None, transform=model_cfg.transform, val_ids=val_ids)
        check_context(run.lengths[run.scored], run.context, bool(cfg.val_context), groups.source)
        # the members' batches run at once: N x the rows of one
        batches = replace(cfg, batch_size=cfg.batch_size * n)
        check_memory(run.lengths[run.is_train], len(run.train_idx) * n, model_cfg, batches, groups.source)
        run.state, _ = _setup(
            groups.schema, run.scaler, model_cfg, mcfg, base, None, run.data_hash, device, None
        )
        runs.append(run)
        states.append(run.state)
    stack = _Stack(states, cfg, device)
    if resume is not None:
        _load(resume, stack, states, model_cfg, cfg, runs[0].data_hash)
    if on_start:
        info = _start_info(
            states[0], len(runs[0].train_idx), len(runs[0].val_idx), runs[0].context, None, runs[0]
        )
        on_start({**info, "members": n, "stacked": True})
    started = time.perf_counter()
    try:
        while True:
            active = [s.epoch < cfg.epochs and s.stale < cfg.patience for s in states]
            if not any(active):
                break
            log = _epoch(stack, runs, active, cfg, device)
            if checkpoint is not None:
                _save(checkpoint, stack, states, model_cfg, cfg, runs[0].data_hash)
            if on_epoch:
                on_epoch(log)
    except KeyboardInterrupt:
        where = f"; continue with `resume` {checkpoint}" if checkpoint else ""
        raise TrainingInterrupted(
            f"training interrupted after {max(s.epoch for s in states)} complete epoch(s) of the {n} members trained "
            f"together; the checkpoint holds them{where}"
        ) from None
    except _MemberDiverged as exc:
        k, s = exc.member, states[exc.member]
        share = (time.perf_counter() - started) / n
        kept = [
            runs[j].bundle(model_cfg, share, f"diverged: {exc}") for j in range(n) if states[j].best_state
        ]
        from durability_cli.ensemble import combine

        raise TrainingDiverged(
            f"ensemble member {k + 1} of {n}: training diverged at epoch {s.epoch + 1} ({exc}); the members' "
            f"best weights so far are kept; try a lower `lr` (now {cfg.lr:g}) or a tighter `clip` (now {cfg.clip:g})",
            combine(kept, together=True) if kept else None,
        ) from None
    bundles, share = [], (time.perf_counter() - started) / n
    for run in runs:
        s = run.state
        reason = (
            f"early stop: no better validation RMSE for {cfg.patience} epochs"
            if s.stale >= cfg.patience
            else "max epochs"
        )
        bundles.append(run.bundle(model_cfg, share, reason))  # its time: a share of the run's
    return bundles


class _MemberDiverged(Exception):
    def __init__(self, member: int, what: str):
        super().__init__(what)
        self.member = member


def _epoch(stack: _Stack, runs, active: list[bool], cfg: TrainConfig, device) -> EpochLog:
    """One epoch of every member (the stopped ones run along, unscored and unchanged in their
    best weights); returns the line the progress shows: the active members' mean loss and RMSE."""
    t0 = time.perf_counter()
    states = [r.state for r in runs]
    tallies = [_Tally(_start_epoch(s, cfg)) for s in states]
    running = states[active.index(True)]  # the running members share the epoch (a stopped one's halts)
    for group in stack.optimizer.param_groups:
        group["lr"] = running.optimizer.param_groups[0]["lr"]
    on = torch.tensor(active, device=device)
    batches = [_batches(r, cfg, t) for r, t in zip(runs, tallies, strict=True)]
    losses = []
    for parts in zip(*batches, strict=True):
        fields, feed = _stack([b for b, _, _ in parts], [f for _, f, _ in parts])
        noise = None
        if cfg.feedback == "sample":
            noise = _stack_noise([z for _, _, z in parts], feed.shape[2] - 1)
        fields = tuple(f.to(device) for f in fields)
        loss = stack.losses(fields, feed.to(device), None if noise is None else noise.to(device))  # [N]
        bad = ~torch.isfinite(loss) & on
        if bool(bad.any()):
            k = int(bad.nonzero()[0])
            raise _MemberDiverged(k, f"loss {float(loss[k])}")
        stack.optimizer.zero_grad(set_to_none=True)
        torch.where(on, loss, 0.0).sum().backward()
        norms = stack.clip(cfg.clip, on)
        bad = ~torch.isfinite(norms) & on
        if bool(bad.any()):
            raise _MemberDiverged(int(bad.nonzero()[0]), "gradient norm is not finite")
        stack.optimizer.step()
        for s in states:
            s.step += 1
        losses.append(loss.detach())
    losses = torch.stack(losses).cpu() if losses else torch.zeros(0, len(runs))  # [steps, N]
    rmse = _validate(stack, runs)
    # --val-select joint: one criterion for every member, the running members' mean validation RMSE
    joint = (
        float(np.mean([r for r, on in zip(rmse, active, strict=True) if on]))
        if cfg.val_select == "joint"
        else None
    )
    logs = []
    for k, (run, tally) in enumerate(zip(runs, tallies, strict=True)):
        if not active[k]:
            continue
        tally.losses = losses[:, k].tolist()
        stack.unstack(k, run.state.model)
        try:
            logs.append(_close_epoch(run.state, rmse[k], tally, t0, cfg.val_smoothing, joint))
        except _Diverged as exc:
            raise _MemberDiverged(k, str(exc)) from None
    return EpochLog(
        epoch=max(log.epoch for log in logs),
        train_loss=float(np.mean([log.train_loss for log in logs])),
        val_rmse=float(np.mean([log.val_rmse for log in logs])),
        teacher_forcing=logs[0].teacher_forcing,
        fed_measured=float(np.mean([log.fed_measured for log in logs])),
        seconds=time.perf_counter() - t0,
        best=any(log.best for log in logs),
    )


def _batches(run, cfg: TrainConfig, tally: _Tally):
    """A member's training batches of one epoch, each with its feed mask and, for ``--feedback
    sample``, its noise: drawn from the member's generator in the order train_one draws them."""
    train_t, train_len = run.fit_part(0)
    for batch, feed in training_batches(run.state, train_t, train_len, run.context, cfg, tally):
        # the draws the model would make from the generator, in its order (as a torchrun rank does)
        yield batch, feed, _batch_noise(feed, run.state.gen) if cfg.feedback == "sample" else None


def _stack_noise(noises: list[torch.Tensor], steps: int) -> torch.Tensor:
    """[N, B, steps] the members' noise, padded with zeros (padding steps are never scored)."""
    return torch.stack([torch.cat([z, z.new_zeros(z.shape[0], steps - z.shape[1])], 1) for z in noises])


def _validate(stack: _Stack, runs) -> list[float]:
    """Every member's free-running validation RMSE on its own validation specimens."""
    context = runs[0].context
    vals = [r.val_all for r in runs]
    fields, feed = _stack(vals, [warmup_feed(t, context) for t in vals])
    mean, scale = stack.free_run(tuple(f.to(stack.device) for f in fields), feed.to(stack.device))
    out = []
    for k, (run, t) in enumerate(zip(runs, vals, strict=True)):
        steps = t.y.shape[1] - 1
        gaussian = run.state.model.cfg.loss == "gaussian"
        r = _Rollout(mean[k, :, :steps].cpu(), scale[k, :, :steps].cpu() if gaussian else None)
        err = _free_run_errors(run.state.model, t, context, rollout=r)[0]
        out.append(_rmse(err, run.scaler))
    return out


# -- checkpoints -----------------------------------------------------------------------------------
_KEPT = ("epoch", "step", "best_epoch", "stale", "criterion", "history")


def _save(path, stack: _Stack, states: list[TrainState], model_cfg, cfg, data_hash: str) -> None:
    """Every member's state after the last complete epoch in one checkpoint (no pickle)."""
    from safetensors.torch import save as st_save

    tensors = {f"stack.{k}": v.detach().cpu().contiguous() for k, v in stack.params.items()}
    tensors.update(optimizer_tensors(stack.optimizer))
    for k, s in enumerate(states):
        if s.best_state is not None:
            tensors.update({f"best{k}.{name}": v.contiguous() for name, v in s.best_state.items()})
        tensors[f"rng.generator{k}"] = s.gen.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    info = {
        "format": CHECKPOINT_FORMAT,
        "format_version": SINGLE_FORMAT_VERSION,
        "stacked": len(states),
        "members": [
            {
                **{key: getattr(s, key) for key in _KEPT},
                "best_rmse": s.best_rmse if math.isfinite(s.best_rmse) else None,
            }
            for s in states
        ],
        "param_groups": stack.optimizer.state_dict()["param_groups"],
        "model_config": as_dict(model_cfg),
        "train_config": as_dict(cfg),
        "data": data_hash,
    }
    blob = st_save(tensors, metadata={"durability": json.dumps(info)})
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(blob)


def _load(path, stack: _Stack, states: list[TrainState], model_cfg, cfg, data_hash: str) -> None:
    tensors, info = read_safetensors(path, expect=CHECKPOINT_FORMAT)
    check_resumable(info, path, model_cfg, cfg, data_hash)
    try:
        with torch.no_grad():
            for name, p in stack.params.items():
                p.copy_(tensors[f"stack.{name}"])
        load_optimizer(stack.optimizer, tensors, info["param_groups"])
        for k, (s, kept) in enumerate(zip(states, info["members"], strict=True)):
            for key in _KEPT:
                setattr(s, key, kept[key])
            s.history = list(s.history)
            s.best_rmse = kept["best_rmse"] if kept["best_rmse"] is not None else float("inf")
            best = {
                name[len(f"best{k}.") :]: v for name, v in tensors.items() if name.startswith(f"best{k}.")
            }
            s.best_state = best or None
            s.gen.set_state(tensors[f"rng.generator{k}"])
            stack.unstack(k, s.model)
        torch.set_rng_state(tensors["rng.torch"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        text = " ".join(str(exc).split())[:160]
        raise ModelFileError(
            f"{path}: the checkpoint's saved state does not fit this run ({type(exc).__name__}: {text}); "
            "it was altered or is damaged: start anew without `resume`"
        ) from None
