"""``train --refit-all``: once validation chose each member's epoch, train it again on every specimen.

Early stopping holds a fifth of the specimens out of training (``--val-fraction``) to choose the
epoch. On a small table those are specimens the model is missing: with twice the training
specimens crack's RMSE fell 18 % and coating's 13 % (benchmarks/results/notes.md, session 34). So
after the run, each member is trained once more from its own start (its seed: the same initial
weights; its planned epochs: the same cosine learning rate) on all the specimens, nothing held
out, and stopped at the epoch its validation kept (training.train_one's ``stop_at``). What only
the held-out specimens could measure stays the first pass's: the band's validation factor, the
end-of-life paces, each member's validation scores and history, and the choices of the line and
the latent; the scale head is refitted on the new fit's specimens as training does. The cost is
one more run of each member to its chosen epoch, one member after the other; with ``jobs`` of 2 or
more (``train --jobs``) the members are shared among that many processes (aside.py), the longest
refits first, and the model is the same, tensor for tensor.

Checkpoints: with ``--checkpoint CKPT`` the first pass's model is written beside it
(``CKPT.chosen``) before the refit starts; ``--resume CKPT`` finds it and runs the refit again
from there (the refit itself keeps no checkpoint).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from durability_cli.artifact import ModelBundle, save_bundle
from durability_cli.config import TrainConfig

# what each member's refit replaces in its summary; the rest (validation scores, history, band
# factor, end-of-life paces, the automatic choices) is the first pass's
REFIT_KEYS = (
    "scale_refit",
    "envelope",
    "step_sample",
    "target_range",
    "longest_span",
    "trained_warmup_rows",
    "latent_train_std",
)


def chosen_path(checkpoint: str | Path) -> str:
    """Where the first pass's model waits for its refit, beside ``checkpoint``."""
    return f"{checkpoint}.chosen"


def refit(
    table, first: ModelBundle, *, checkpoint=None, on_start=None, dist=None, jobs: int = 1, **options
) -> ModelBundle:
    """``first`` (a trained model or ensemble whose members validated on held-out specimens)
    with every member trained again on all of ``table`` to its chosen epoch, in up to ``jobs``
    processes at once where the table is in memory on the CPU (aside.allowed). ``options``: the
    rest of ``training.train_one``'s keywords (device, on_epoch, init_from; resume and val_ids
    are not used: every specimen trains)."""
    from durability_cli.aside import allowed

    if not first.summary.get("val_specimens"):
        first.summary["refit_all"] = {"skipped": "no validation specimens: every specimen trained already"}
        return first
    if checkpoint is not None and (dist is None or dist.main):
        save_bundle(first, chosen_path(checkpoint))
    options.pop("resume", None)
    options.pop("val_ids", None)  # the specimens that validated are trained on now
    init_from = options.pop("init_from", None)
    bases = [None] if init_from is None else init_from.members
    n = len(first.members)
    stops = [max(1, int(m.summary.get("best_epoch") or 1)) for m in first.members]
    work = [(k, member, stops[k], bases[k % len(bases)]) for k, member in enumerate(first.members)]
    options = dict(options, dist=dist)
    shares = _shares(stops, jobs if allowed(table, options) else 1)
    started = time.perf_counter()
    if len(shares) > 1:
        refitted = _refit_beside(table, first, work, shares, checkpoint, on_start, options)
    else:
        refitted = [_refit_member(table, first, item, n, checkpoint, on_start, options) for item in work]
    out = refitted[0]  # member 0's summary is the whole model's: the ensemble block, the choices
    out.others = refitted[1:]
    seconds = sum(m.summary["refit_all"]["seconds"] for m in refitted)
    if out.summary.get("ensemble"):  # the members' band as render.band_text reads it
        out.summary["ensemble"] = {
            **out.summary["ensemble"],
            "scale_refit": [m.summary.get("scale_refit") for m in refitted],
        }
    out.summary["train_seconds"] = round((first.summary.get("train_seconds") or 0.0) + seconds, 3)
    out.summary["refit_all_seconds"] = round(seconds, 3)
    if len(shares) > 1:  # how long the shares took at the same time (refit_all_seconds: their sum)
        out.summary["refit_all_processes"] = len(shares)
        out.summary["refit_all_wall_seconds"] = round(time.perf_counter() - started, 3)
    return out


def _shares(stops: list[int], jobs: int) -> list[list[int]]:
    """The members (by index) shared among at most ``jobs`` processes, at most one per member:
    the longest refits (``stops``, epochs) first, each to the process with the fewest epochs so
    far; each share in the members' order, the first share member 1's (it trains here)."""
    count = max(1, min(jobs, len(stops)))
    shares: list[list[int]] = [[] for _ in range(count)]
    load = [0] * count
    for k in sorted(range(len(stops)), key=lambda k: (-stops[k], k)):
        p = min(range(count), key=lambda p: (load[p], p))
        shares[p].append(k)
        load[p] += stops[k]
    shares = [sorted(share) for share in shares if share]
    return sorted(shares, key=lambda share: share[0])


def _refit_member(table, first: ModelBundle, item, n: int, checkpoint, on_start, options) -> ModelBundle:
    """One member (``item``: index, first-pass member, epochs, initial weights) trained again on
    every specimen, merged with what its first pass measured. ``checkpoint``: the run's (None:
    none), beside which the first pass's model is kept, for the message of an interruption."""
    from durability_cli.training import TrainingDiverged, TrainingInterrupted, train_one

    k, member, stop, base = item

    def start(info: dict) -> None:
        on_start({**info, "refit_member": k + 1, "members": n, "refit_epochs": stop, "epochs": stop})

    t0 = time.perf_counter()
    try:
        again = train_one(
            table,
            first.model_config,
            _refit_config(member.train_config),
            init_from=base,
            on_start=None if on_start is None else start,
            stop_at=stop,
            **options,
        )
    except TrainingInterrupted:
        raise TrainingInterrupted(_interrupted(f"member {k + 1}", n, checkpoint)) from None
    except TrainingDiverged as exc:
        raise TrainingDiverged(
            f"refitting member {k + 1} of {n} on every specimen: {exc}; the model as validation chose it "
            "is kept only without --refit-all",
            None,
        ) from None
    return _merged(member, again, stop, time.perf_counter() - t0)


def _interrupted(which: str, n: int, checkpoint) -> str:
    """The message of a refit stopped while ``which`` ('member 2', 'member(s) 2, 4') trained."""
    kept = (
        f"the model validation chose is kept in {chosen_path(checkpoint)}: --resume {checkpoint} "
        "runs the refit again from it"
        if checkpoint is not None
        else "without --checkpoint nothing of the run is kept"
    )
    return f"training interrupted while refitting {which} of {n} on every specimen (--refit-all); {kept}"


def _refit_beside(
    table, first: ModelBundle, work, shares, checkpoint, on_start, options
) -> list[ModelBundle]:
    """``shares[0]`` refitted here and each other share in a process of its own (aside.py), at
    the same time; every member returned, in order. A child writes each member it refits to a
    scratch folder, where this process reads it."""
    import tempfile
    from contextlib import ExitStack

    from durability_cli.artifact import load_bundle
    from durability_cli.aside import Aside, one_based, polling
    from durability_cli.training import TrainingInterrupted

    n = len(work)
    child = {k: v for k, v in options.items() if k not in ("on_start", "on_epoch")}
    model_cfg, cfg = first.model_config, first.train_config  # the child's _refit_share reads neither
    with tempfile.TemporaryDirectory(prefix="durability-refit-") as scratch, ExitStack() as stack:
        asides = []
        for share in shares[1:]:
            task = (first, [work[k] for k in share], checkpoint, scratch)
            what = f"the refit of member(s) {one_based(share)} of {n}"
            asides.append(
                stack.enter_context(
                    Aside(_refit_share, table, model_cfg, cfg, {**child, "task": task}, None, what)
                )
            )
        others = [[k + 1 for k in share] for share in shares[1:]]

        def start(info: dict) -> None:
            if on_start is not None:
                on_start({**info, "refit_beside": others})

        here = {**options, "on_epoch": polling(asides, options.get("on_epoch"))}
        found = {k: _refit_member(table, first, work[k], n, checkpoint, start, here) for k in shares[0]}
        for aside, share in zip(asides, shares[1:], strict=True):
            try:
                aside.result(on_start, options.get("on_epoch"))
            except TrainingInterrupted:
                raise TrainingInterrupted(
                    _interrupted(f"member(s) {one_based(share)}", n, checkpoint) + " (in a second process)"
                ) from None
            for k in share:
                found[k] = load_bundle(_member_file(scratch, k))
    return [found[k] for k in range(n)]


def _member_file(folder: str, k: int) -> str:
    """Where a child writes member ``k`` once refitted."""
    return str(Path(folder) / f"refit-{k}.safetensors")


def _refit_share(table, model_cfg, cfg, *, task, on_start=None, **options) -> None:
    """A child's share of the refit (aside.py's ``train``): its members one after the other, each
    written to the scratch folder as it is done."""
    first, items, checkpoint, folder = task
    n = len(first.members)
    for item in items:
        bundle = _refit_member(table, first, item, n, checkpoint, on_start, options)
        save_bundle(bundle, _member_file(folder, item[0]))


def _refit_config(cfg: TrainConfig) -> TrainConfig:
    """A member's options for its refit: nothing held out, its own seed and planned epochs."""
    return replace(cfg, val_fraction=0.0, ensemble=1, refit_all=False)


def _merged(member: ModelBundle, again: ModelBundle, stop: int, seconds: float) -> ModelBundle:
    """The refitted weights and scaling with the first pass's options and validation results."""
    summary = dict(member.summary)
    for key in REFIT_KEYS:
        if key in again.summary:
            summary[key] = again.summary[key]
        else:
            summary.pop(key, None)
    summary["refit_all"] = {
        "epochs": stop,
        "specimens": len(again.summary.get("train_specimens") or []),
        "seconds": round(seconds, 3),
    }
    summary["train_seconds"] = round((member.summary.get("train_seconds") or 0.0) + seconds, 3)
    return ModelBundle(
        again.model, again.schema, again.scaler, member.model_config, member.train_config, summary
    )


def chosen(resume: str | Path, table, cfg: TrainConfig) -> ModelBundle | None:
    """The first pass's model an interrupted ``--refit-all`` run had finished (None: the
    checkpoint is still the first pass's)."""
    from durability_cli.training import load_finished

    return load_finished(resume, chosen_path(resume), table, cfg, "the model validation chose")
