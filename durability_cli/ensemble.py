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

import time
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
    """The finished members' files of an ensemble of ``n`` trained one after the other, and the
    checkpoints of the other processes that trained some of them (``--jobs``)."""
    for k in range(n):
        Path(member_path(checkpoint, k)).unlink(missing_ok=True)
    for _, path in process_checkpoints(checkpoint):
        Path(path).unlink(missing_ok=True)


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
    jobs: int = 1,
    **kwargs,
) -> ModelBundle:
    """``cfg.ensemble`` members trained together (stacked.py) where the run allows it, else one
    after the other (``kwargs``: the rest of ``train_one``'s arguments), in ``jobs`` processes at
    once where the table is in memory on the CPU (aside.py), returned as one bundle (member 0, the
    others in ``others``).
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
    main = dist is None or dist.main
    if resume is None and checkpoint is not None and main:  # what an earlier run left must not be resumed
        remove_members(checkpoint, n)
    finished, running = _resumed_members(resume, model_cfg, cfg)
    pending = [k for k in range(n) if k not in finished]
    from durability_cli.aside import allowed

    shares = _shares(pending, running, resume, jobs if allowed(table, {**kwargs, "dist": dist}) else 1)
    bases = [None] if init_from is None else init_from.members
    options = dict(kwargs, dist=dist)
    if len(shares) > 1:
        started = time.perf_counter()
        finished.update(
            _train_beside(table, model_cfg, cfg, shares, running, bases, checkpoint, on_start, options)
        )
        bundle = combine([finished[k] for k in range(n)])
        # how long the shares took at the same time (train_seconds stays the members' sum)
        bundle.summary["ensemble"].update(
            processes=len(shares), wall_seconds=round(time.perf_counter() - started, 3)
        )
        return bundle
    if shares:
        kept = [finished[k] for k in sorted(finished)]
        own = train_members(
            table, model_cfg, cfg, shares[0], running, bases, checkpoint, on_start, kept=kept, **options
        )
        finished.update(zip(shares[0], own, strict=True))
    return combine([finished[k] for k in range(n)])


def train_members(
    table,
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    ks: list[int],
    running: dict[int, str],
    bases: list,
    checkpoint,
    on_start=None,
    *,
    files=None,
    kept: list | None = None,
    **options,
) -> list[ModelBundle]:
    """Members ``ks`` trained one after the other with ``checkpoint``, each continuing from its
    checkpoint in ``running`` where it has one, and written once done to ``files`` (the base of
    member_path; default ``checkpoint``; none where both are None). ``kept``: members finished
    before, returned with a divergence's best weights."""
    dist = options.get("dist")
    main = dist is None or dist.main
    files = checkpoint if files is None else files
    n = cfg.ensemble
    done: list[ModelBundle] = []
    for k in ks:

        def start(info: dict, k: int = k) -> None:
            on_start({**info, "member": k + 1, "members": n})

        try:
            bundle = train_one(
                table,
                model_cfg,
                member_config(cfg, k),
                checkpoint=checkpoint,
                resume=running.get(k),
                init_from=bases[k % len(bases)],
                on_start=None if on_start is None else start,
                **options,
            )
        except TrainingDiverged as exc:
            kept = [*(kept or []), *done, *([exc.bundle] if exc.bundle is not None else [])]
            raise TrainingDiverged(
                f"ensemble member {k + 1} of {n}: {exc.template}", combine(kept) if kept else None
            ) from None
        if files is not None and main:
            save_bundle(bundle, member_path(files, k))
        done.append(bundle)
    return done


def _shares(pending: list[int], running: dict[int, str], resume, jobs: int) -> list[list[int]]:
    """The members still to train, split among ``jobs`` processes (at most one per member): a
    member whose checkpoint a process of this run writes (``resume`` the first's,
    process_checkpoint's the others') goes first to that process, so no process overwrites a
    checkpoint another has yet to read; the rest in turn to the process with the fewest."""
    count = max(1, min(jobs, len(pending)))
    shares: list[list[int]] = [[] for _ in range(count)]
    owners = {str(resume): 0} if resume is not None else {}
    owners.update({path: p - 1 for p, path in process_checkpoints(resume)} if resume is not None else {})
    placed = set()
    for k in pending:
        q = owners.get(running.get(k, ""), -1)
        if 0 <= q < count:
            shares[q].append(k)
            placed.add(k)
    for k in pending:
        if k not in placed:
            min(shares, key=len).append(k)
    return [share for share in shares if share] if pending else []


def _train_beside(
    table, model_cfg: ModelConfig, cfg: TrainConfig, shares, running, bases, checkpoint, on_start, options
) -> dict[int, ModelBundle]:
    """``shares[0]`` trained here and each other share in a process of its own (aside.py), at the
    same time: every member of the shares, by index. A child writes each member it finishes to its
    file (beside ``checkpoint``, or in a scratch folder without one), where this process reads it."""
    import tempfile
    from contextlib import ExitStack

    from durability_cli.aside import Aside, one_based, polling
    from durability_cli.training import TrainingInterrupted

    n = cfg.ensemble
    child = {k: v for k, v in options.items() if k not in ("on_start", "on_epoch")}
    with tempfile.TemporaryDirectory(prefix="durability-members-") as scratch, ExitStack() as stack:
        files = checkpoint if checkpoint is not None else str(Path(scratch) / "ensemble")
        asides = []
        for p, share in enumerate(shares[1:], start=2):
            mine = process_checkpoint(checkpoint, p) if checkpoint is not None else None
            what = f"ensemble member(s) {one_based(share)} of {n}"
            task = (share, {k: running[k] for k in share if k in running}, bases, mine, files)
            asides.append(
                stack.enter_context(Aside(_share, table, model_cfg, cfg, {**child, "task": task}, None, what))
            )
        others = [[k + 1 for k in share] for share in shares[1:]]

        def start(info: dict) -> None:
            if on_start is not None:
                on_start({**info, "members_beside": others})

        own = train_members(
            table,
            model_cfg,
            cfg,
            shares[0],
            running,
            bases,
            checkpoint,
            start,
            **{**options, "on_epoch": polling(asides, options.get("on_epoch"))},
        )
        found = dict(zip(shares[0], own, strict=True))
        for aside, share in zip(asides, shares[1:], strict=True):
            try:
                aside.result(on_start, options.get("on_epoch"))
            except TrainingDiverged as exc:  # the members finished so far keep their best weights
                kept = [found[k] for k in sorted(found)]
                raise TrainingDiverged(exc.template, combine(kept) if kept else None) from None
            except TrainingInterrupted:
                where = f"; continue with `resume` {checkpoint}" if checkpoint is not None else ""
                raise TrainingInterrupted(
                    f"training interrupted while ensemble member(s) {one_based(share)} "
                    f"of {n} trained in a second process; their completed epochs are in its checkpoint{where}"
                ) from None
            for k in share:
                found[k] = load_bundle(member_path(files, k))
    return found


def _share(table, model_cfg: ModelConfig, cfg: TrainConfig, *, task, on_start=None, **options) -> None:
    """A child's share of the members (aside.py's ``train``): they train one after the other, each
    written to its member file as it finishes."""
    share, running, bases, mine, files = task
    train_members(table, model_cfg, cfg, share, running, bases, mine, on_start, files=files, **options)


def process_checkpoint(checkpoint: str | Path, p: int) -> str:
    """The checkpoint of process ``p`` (2, 3, ...) of an ensemble whose members train in several
    processes (``train --jobs``), beside the run's ``checkpoint`` (process 1's)."""
    return f"{checkpoint}.process{p}"


def process_checkpoints(checkpoint: str | Path) -> list[tuple[int, str]]:
    """The other processes' checkpoints found beside ``checkpoint``: (p, path), by p."""
    folder, prefix = Path(checkpoint).parent, Path(checkpoint).name + ".process"
    if not folder.is_dir():
        return []
    found = []
    for entry in folder.iterdir():
        tail = entry.name[len(prefix) :] if entry.name.startswith(prefix) else ""
        if tail.isdigit() and int(tail) >= 2:
            found.append((int(tail), str(folder / entry.name)))
    return sorted(found)


def _resumed_members(
    resume, model_cfg: ModelConfig, cfg: TrainConfig
) -> tuple[dict[int, ModelBundle], dict[int, str]]:
    """What an interrupted ensemble left beside ``resume``: the members it finished, by index, and
    for each member it had begun, the checkpoint to continue it from (the run's own, or one of
    process_checkpoints' where members trained in several processes; the further on where two
    hold the same member)."""
    if resume is None:
        return {}, {}
    running: dict[int, tuple[int, str]] = {}
    for path in [str(resume), *(path for _, path in process_checkpoints(resume))]:
        _, _, info = read_header(path, expect=CHECKPOINT_FORMAT)
        if info.get("stacked"):
            raise InputError(
                f"{path}: this checkpoint is of an ensemble whose members train together (stacked), which "
                "--nproc, `chunk_specimens`, `latent`, `ema` and `amp` do not; resume with the options it was made with"
            )
        seed = (info.get("train_config") or {}).get("seed")
        k = seed - cfg.seed if isinstance(seed, int) and not isinstance(seed, bool) else -1
        if not 0 <= k < cfg.ensemble:
            raise InputError(
                f"{path}: this checkpoint is not one of this ensemble's members (its seed is {seed!r}, the "
                f"members' are {cfg.seed} to {cfg.seed + cfg.ensemble - 1}); resume with the same options"
            )
        epoch = int(info.get("epoch") or 0)
        if k not in running or epoch > running[k][0]:
            running[k] = (epoch, path)
    finished = {}
    for k in range(cfg.ensemble):
        path = member_path(resume, k)
        if not Path(path).exists():
            continue
        try:
            bundle = load_bundle(path)
        except ModelFileError as exc:
            raise InputError(
                f"{resume}: ensemble member {k + 1}, finished before the interruption, cannot be read ({exc}); "
                "start anew without `resume`"
            ) from None
        if bundle.train_config != member_config(cfg, k) or bundle.model_config != model_cfg:
            raise InputError(
                f"{path}: this finished ensemble member was trained with other options; start anew"
            )
        finished[k] = bundle
    return finished, {k: path for k, (_, path) in running.items() if k not in finished}


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
    paths = first.summary.get("mixed_effects")
    if paths is not None and "weight" in paths:  # --combine: from the members' mean validation RMSEs
        from durability_cli.mixed_effects import weight

        theirs = [(b or {}).get("mixed_effects") for b in each("val_baseline_rmse")]
        first.summary["mixed_effects"] = paths | {"weight": weight(each("best_val_rmse"), theirs)}
    return first
