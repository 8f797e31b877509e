"""Ensembles: ``train --ensemble N`` trains N models into one file.

Member k is the ordinary model trained with seed ``seed + k``: its own initial weights, batch order
and validation specimens (the split is drawn from the seed), so the members disagree where the
data leave the model unsure. A forecast averages the members' mean paths and gives each member an
equal share of the Monte Carlo paths (path s comes from member s mod N, moved onto the average:
forecasting.ENSEMBLE_PATHS), so the bands and the end-of-life distribution keep each member's own
calibrated spread around the better mean.

With the whole table in memory, in one process (no ``--nproc``, ``--chunk-specimens``,
``--latent``, ``--ema`` or ``--amp``), the members train together as one stacked computation
(stacked.py): each keeps its own seed's weights, split, draws and early stop, and the run costs
about 2 x one model instead of N x; its checkpoint holds every member. Otherwise the members run
one after the other through ``training.train_one``. Each finished member is then written beside the
checkpoint (``CKPT.member1``, ...), so an interrupted ensemble resumes from the member it was
training: ``--resume CKPT`` reads the finished ones and continues the one the checkpoint holds.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from durability_cli.artifact import ModelBundle, load_bundle, save_bundle
from durability_cli.config import AUTO_MEMBERS, SMALL_VALIDATION, ModelConfig, TrainConfig
from durability_cli.errors import InputError, ModelFileError
from durability_cli.line_choice import finished_line_path, finished_path, line_path
from durability_cli.modelfile import CHECKPOINT_FORMAT, read_header
from durability_cli.refit_all import chosen_path
from durability_cli.stacked import supported, train_stacked
from durability_cli.training import TrainingDiverged, train_one


def member_path(checkpoint: str | Path, k: int) -> str:
    """Where finished member k (0-based) of an ensemble trained with ``checkpoint`` is kept."""
    return f"{checkpoint}.member{k + 1}"


def remove_checkpoints(checkpoint: str | Path, cfg: TrainConfig) -> None:
    """The checkpoint and, for an ensemble, its finished members' files (after a complete run)."""
    Path(checkpoint).unlink(missing_ok=True)
    Path(finished_path(checkpoint)).unlink(missing_ok=True)  # --trend-line auto's first candidate
    Path(chosen_path(checkpoint)).unlink(missing_ok=True)  # --refit-all's first pass
    remove_members(checkpoint, cfg.ensemble if cfg.ensemble > 1 else 0)
    # --trend-line auto's second candidate, trained in a second process: its checkpoint, members, model
    Path(line_path(checkpoint)).unlink(missing_ok=True)
    Path(finished_line_path(checkpoint)).unlink(missing_ok=True)
    remove_members(line_path(checkpoint), cfg.ensemble if cfg.ensemble > 1 else 0)


def remove_members(checkpoint: str | Path, n: int) -> None:
    """The finished members' files of an ensemble of ``n`` trained one after the other."""
    for k in range(n):
        Path(member_path(checkpoint, k)).unlink(missing_ok=True)


def resolve_auto(
    table,
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    *,
    dist=None,
    resume=None,
    init_from: ModelBundle | None = None,
    val_ids=None,
    sizes: tuple[int, int] | None = None,
    **_,
) -> tuple[TrainConfig, str]:
    """``cfg`` with ``ensemble = 0`` (auto) made a number, and why, in words.

    AUTO_MEMBERS members when fewer than SMALL_VALIDATION specimens would choose the best epoch
    (a single model then depends on which ones they are), one model otherwise. Fine-tuning keeps
    the members of the model it starts from. The rule reads only the table's size and the
    options, not how the members would train (together, about 2 x one model's time; or one
    after the other with --nproc, --chunk-specimens, --latent, --ema or --amp, N x), so every
    way of training a table gives the same model, and a resumed run resolves as its start did.
    ``sizes``: training.split_sizes's answer, when the caller has it."""
    if cfg.ensemble:
        return cfg, ""
    if init_from is not None:
        n = len(init_from.members)
        return replace(cfg, ensemble=n), f"auto: the {n} member(s) of the model it fine-tunes"
    if sizes is None:
        from durability_cli.training import split_sizes

        sizes = split_sizes(table, cfg.val_fraction, val_ids)
    n_val = sizes[1]
    if not 0 < n_val < SMALL_VALIDATION:
        why = "no validation specimens" if n_val == 0 else f"{n_val} validation specimens"
        return replace(cfg, ensemble=1), f"auto: one model ({why})"
    several = replace(cfg, ensemble=AUTO_MEMBERS)
    together = supported(table, model_cfg, several, dist=dist, resume=resume)
    cost = "about half the time" if together else f"1/{AUTO_MEMBERS} of the time"
    return several, (
        f"auto: {AUTO_MEMBERS} members, since only {n_val} specimens choose each one's best epoch "
        f"(--ensemble 1: one model, {cost})"
    )


def member_config(cfg: TrainConfig, k: int) -> TrainConfig:
    """Member k's training options: the ensemble's, with seed ``seed + k``."""
    return replace(cfg, seed=cfg.seed + k)


def train_ensemble(
    table,
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    *,
    checkpoint=None,
    resume=None,
    init_from: ModelBundle | None = None,
    on_start=None,
    dist=None,
    **kwargs,
) -> ModelBundle:
    """``cfg.ensemble`` members trained together (stacked.py) where the run allows it, else one
    after the other (``kwargs``: the rest of ``train_one``'s arguments), returned as one bundle
    (member 0, the others in ``others``).
    ``init_from`` an ensemble fine-tunes member k from its member k (mod its size)."""
    n = cfg.ensemble
    if supported(table, model_cfg, cfg, dist=dist, resume=resume, init_from=init_from):
        found = train_stacked(
            table,
            model_cfg,
            cfg,
            checkpoint=checkpoint,
            resume=resume,
            init_from=init_from,
            on_start=on_start,
            **kwargs,
        )
        return combine(found, together=True)
    members, resume_at = _resumed_members(resume, cfg)
    bases = [None] if init_from is None else init_from.members
    main = dist is None or dist.main
    for k in range(len(members), n):

        def start(info: dict, k: int = k) -> None:
            on_start({**info, "member": k + 1, "members": n})

        try:
            bundle = train_one(
                table,
                model_cfg,
                member_config(cfg, k),
                checkpoint=checkpoint,
                resume=resume if k == resume_at else None,
                init_from=bases[k % len(bases)],
                on_start=None if on_start is None else start,
                dist=dist,
                **kwargs,
            )
        except TrainingDiverged as exc:
            kept = members + ([exc.bundle] if exc.bundle is not None else [])
            raise TrainingDiverged(
                f"ensemble member {k + 1} of {n}: {exc}", combine(kept) if kept else None
            ) from None
        if checkpoint is not None and main:
            save_bundle(bundle, member_path(checkpoint, k))
        members.append(bundle)
    return combine(members)


def _resumed_members(resume, cfg: TrainConfig) -> tuple[list[ModelBundle], int | None]:
    """The members an interrupted ensemble finished (read from beside ``resume``) and the index of
    the member the checkpoint holds (None: start the next member anew)."""
    if resume is None:
        return [], None
    _, _, info = read_header(resume, expect=CHECKPOINT_FORMAT)
    if info.get("stacked"):
        raise InputError(
            f"{resume}: this checkpoint is of an ensemble whose members train together (stacked), which "
            "--nproc, --chunk-specimens, --latent, --ema and --amp do not; resume with the options it was made with"
        )
    seed = (info.get("train_config") or {}).get("seed")
    k = seed - cfg.seed if isinstance(seed, int) and not isinstance(seed, bool) else -1
    if not 0 <= k < cfg.ensemble:
        raise InputError(
            f"{resume}: this checkpoint is not one of this ensemble's members (its seed is {seed!r}, the "
            f"members' are {cfg.seed} to {cfg.seed + cfg.ensemble - 1}); resume with the same options"
        )
    members = []
    for j in range(k + 1):
        path = member_path(resume, j)
        if j == k and not Path(path).exists():
            break  # the checkpoint's member is not finished: continue it
        try:
            bundle = load_bundle(path)
        except ModelFileError as exc:
            raise InputError(
                f"{resume}: ensemble member {j + 1}, finished before the interruption, cannot be read ({exc}); "
                "start anew without --resume"
            ) from None
        if bundle.train_config != member_config(cfg, j):
            raise InputError(
                f"{path}: this finished ensemble member was trained with other options; start anew"
            )
        members.append(bundle)
    return members, k if len(members) == k else None


def combine(members: list[ModelBundle], together: bool = False) -> ModelBundle:
    """One bundle of the trained members: member 0 holds the others and, in its summary, each
    member's scores (``ensemble``), the whole training time and whether the members trained
    ``together`` (stacked.py) or one after the other."""
    first = members[0]
    if len(members) == 1:
        return first

    def each(key: str) -> list:
        return [m.summary.get(key) for m in members]

    first.others = members[1:]
    first.summary = {
        **first.summary,
        "train_seconds": round(sum(s or 0.0 for s in each("train_seconds")), 3),
        "ensemble": {
            "members": len(members),
            "seeds": [m.train_config.seed for m in members],
            "best_val_rmse": each("best_val_rmse"),
            # each member's baselines on its own validation specimens (render.baseline_warnings)
            "val_baseline_rmse": each("val_baseline_rmse"),
            "best_epoch": each("best_epoch"),
            "epochs_run": each("epochs_run"),
            "train_seconds": each("train_seconds"),
            # each member's band: its scale head's refit and its validation factor (render.band_text)
            "scale_refit": each("scale_refit"),
            "scale_calibration": each("scale_calibration"),
            "trained_together": together,
            # how the members chose their epoch (--val-select; joint only when trained together)
            "val_select": first.train_config.val_select if together else "each",
        },
    }
    return first
